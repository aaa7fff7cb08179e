"""active_vision in-process: category and goal-image goals move the wrist camera, bad ones fail.

One context, one MultiThreadedExecutor: sim_bridge on the tabletop scenario (wrist camera
only), perception on the wrist camera, active_vision, and a probe with a LookFor client.
"""
import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from rosgraph_msgs.msg import Clock
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, JointState
from stack_harness import StackHarness, overrides
from trajectory_msgs.msg import JointTrajectory

from embodied_aif.models.active_vision import pose_error
from embodied_aif.models.segmentation import look_at
from embodied_aif.nodes.active_vision import ARM_JOINTS, ActiveVision
from embodied_aif.nodes.perception import Perception
from embodied_aif.nodes.sim_bridge import SimBridge
from embodied_aif.sim.robot import HOME
from embodied_aif.sim.sensors import render_camera
from embodied_aif_msgs.action import LookFor

TOPICS = {
    '/clock': (Clock, 10),
    '/robot/joint_states': (JointState, 10),
    '/robot/arm_controller/joint_trajectory': (JointTrajectory, 10),
}


def make_nodes(context):
    bridge = SimBridge(context=context, namespace='robot', parameter_overrides=overrides(
        {'scenario': 'tabletop', 'real_time_factor': 1.0, 'head_camera_rate': 0.0,
         'wrist_camera_rate': 5.0, 'scan_rate': 0.0}))
    perception = Perception(context=context, namespace='robot', parameter_overrides=overrides(
        {'use_sim_time': True, 'camera': 'wrist_camera', 'publish_points': False}))
    vision = ActiveVision(context=context, namespace='robot', parameter_overrides=overrides(
        {'use_sim_time': True, 'step_period': 0.5, 'n_candidates': 512}))
    return [bridge, perception, vision]


class Harness(StackHarness):
    """Bridge, perception, active_vision and a probe with a LookFor action client."""

    def __init__(self):
        super().__init__(make_nodes, TOPICS)
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 100)

    def prepare(self):
        self.client = ActionClient(self.probe, LookFor, '/robot/look_for')

    def _on_diag(self, msg):
        for status in msg.status:
            if status.name == 'active_vision: efe':
                self.recorder('efe')(status)

    def run_goal(self, goal, timeout=90.0):
        """Send a goal; return (accepted, feedback list, result or None)."""
        assert self.client.wait_for_server(timeout_sec=30.0), 'look_for server not found'
        feedback = []
        sent = self.client.send_goal_async(goal, feedback_callback=feedback.append)
        assert self.wait(sent.done, 30.0), 'goal response timed out'
        handle = sent.result()
        if not handle.accepted:
            return False, feedback, None
        done = handle.get_result_async()
        assert self.wait(done.done, timeout), 'no result'
        return True, feedback, done.result().result


@pytest.fixture(scope='module')
def harness():
    h = Harness()
    yield h
    h.close()


def camera_pose(harness):
    """The wrist camera's true world pose (4, 4), read from the simulation between steps."""
    bridge = harness.nodes[0]
    with bridge._lock:
        pos, quat = bridge.sim.link_poses()['wrist_camera_optical_frame']
    t = np.eye(4)
    t[:3, :3] = Rotation.from_quat(quat).as_matrix()
    t[:3, 3] = pos
    return t


def goal_image_from(harness, t_world_cam):
    """A LookFor IMAGE goal: the wrist camera's RGB-D and camera_info rendered from a pose."""
    bridge = harness.nodes[0]
    with bridge._lock:
        config = bridge.sim.cameras['wrist_camera']
        frame = render_camera(config, bridge.sim.client, t_world_cam[:3, 3],
                              Rotation.from_matrix(t_world_cam[:3, :3]).as_quat())
    h, w = frame.depth.shape
    rgb = Image(height=h, width=w, encoding='rgb8', step=3 * w, data=frame.rgb.tobytes())
    depth = Image(height=h, width=w, encoding='32FC1', step=4 * w,
                  data=frame.depth.astype('<f4').tobytes())
    info = CameraInfo(height=h, width=w, k=[float(v) for v in frame.intrinsics.k])
    return LookFor.Goal(mode=LookFor.Goal.IMAGE, goal_image=rgb, goal_depth=depth,
                        goal_camera_info=info)


def diag_values(status):
    return {kv.key: kv.value for kv in status.values}


def test_bad_goals_are_rejected_with_a_reason(harness):
    accepted, feedback, result = harness.run_goal(
        LookFor.Goal(mode=LookFor.Goal.CATEGORY, category='unicorn', max_steps=3), 30.0)
    assert accepted and result is not None
    assert not result.success and result.steps == 0 and feedback == []
    assert result.reason.startswith('rejected: ') and 'unicorn' in result.reason
    empty = LookFor.Goal(mode=LookFor.Goal.IMAGE, goal_image=Image(), goal_depth=Image())
    accepted, _, result = harness.run_goal(empty, 30.0)
    assert accepted and not result.success
    assert result.reason.startswith('rejected: ') and 'empty' in result.reason
    accepted, _, result = harness.run_goal(LookFor.Goal(mode=7), 30.0)
    assert not result.success and 'mode 7' in result.reason


def test_category_goal_moves_the_wrist_camera_and_reports_a_result(harness):
    steps = 6
    accepted, feedback, result = harness.run_goal(
        LookFor.Goal(mode=LookFor.Goal.CATEGORY, category='mug', max_steps=steps))
    assert accepted and result is not None
    # perception's categories stay uniform (no classifier yet): the search runs out of steps,
    # unless a classifier makes a mug probable enough to count as found
    assert result.reason == 'max_steps' or result.reason.startswith('found: '), result.reason
    assert result.success == result.reason.startswith('found: ')
    assert 1 <= result.steps <= steps
    assert result.final_viewpoint.header.frame_id == 'odom'
    # every move was reported: feedback with the EFE terms, and a diagnostics status
    assert 1 <= len(feedback) <= steps
    for fb in feedback:
        terms = fb.feedback
        assert all(math.isfinite(v) for v in (terms.efe, terms.pragmatic, terms.epistemic))
        assert terms.efe == pytest.approx(terms.pragmatic + terms.epistemic, abs=1e-3)
        assert terms.info_gain_position >= 0.0 and terms.info_gain_coverage >= 0.0
        assert terms.target_viewpoint.header.frame_id == 'odom'
    assert harness.wait(lambda: harness.latest('efe') is not None, 10.0)
    values = diag_values(harness.latest('efe'))
    assert {'efe', 'pragmatic', 'epistemic', 'info_gain_coverage', 'step'} <= set(values)
    # the arm was commanded (7 finite joint targets) and left its stowed pose
    trajs = harness.all('/robot/arm_controller/joint_trajectory')
    assert len(trajs) == len(feedback)
    for traj in trajs:
        assert list(traj.joint_names) == list(ARM_JOINTS) and len(traj.points) == 1
        assert all(math.isfinite(q) for q in traj.points[0].positions)
    joints = harness.latest('/robot/joint_states')
    q = np.array([dict(zip(joints.name, joints.position))[n] for n in ARM_JOINTS])
    assert np.linalg.norm(q - np.array(HOME)) > 0.2
    shown = {k: values[k] for k in ('efe', 'pragmatic', 'epistemic', 'info_gain_coverage',
                                    'ik_position_error')}
    print(f"\nlook_for 'mug': {result.reason} after {result.steps} steps; last terms {shown}")


def test_goal_image_brings_the_camera_toward_the_goal_viewpoint(harness):
    # the goal: the mug on the table seen from the front-right, a pose the arm can reach;
    # bounds in steps (sim time), the wall-clock timeout only catches a hang
    bridge = harness.nodes[0]
    with bridge._lock:
        truth = bridge.sim.ground_truth()
        base = np.asarray(bridge.sim.base_pose())
    mug = np.asarray(next(o.position for o in truth.objects if o.category == 'mug'))
    eye = np.array([base[0] + 0.5, base[1] - 0.15, mug[2] + 0.32])
    target = look_at(eye, mug + [0.0, 0.0, 0.03])
    goal = goal_image_from(harness, target)
    goal.max_steps = 60
    start = camera_pose(harness)
    start_distance, _ = pose_error(start, target)
    harness.forget('efe')
    t_sim, t_wall = harness.sim_time(), time.monotonic()
    accepted, feedback, result = harness.run_goal(goal, timeout=900.0)
    t_sim, t_wall = harness.sim_time() - t_sim, time.monotonic() - t_wall
    assert accepted and result is not None
    assert not result.reason.startswith('rejected'), result.reason
    assert feedback and all(math.isfinite(fb.feedback.efe) for fb in feedback)
    harness.wait_sim(1.0)  # let the last commanded move finish
    final = camera_pose(harness)
    distance, angle = pose_error(final, target)
    trace = [diag_values(s) for s in harness.all('efe')]
    trace = [v for v in trace if 'efe' in v]
    print(f'\nlook_for image: {result.reason} after {result.steps} steps '
          f'({t_sim:.1f} s sim, {t_wall:.0f} s wall); camera '
          f'{start_distance:.3f} m -> {distance:.3f} m (angle {angle:.2f} rad) from the goal')
    steps = [f"{v['step']}: {v['goal_localised'][0]} {float(v['goal_match']):.2f} "
             f"{v['goal_rejected'][:-5]} {v['n_beliefs'][:-5]} {v['goal_focus'][0]} "
             f"{float(v['link_clearance']):.2f} {float(v['step_cpu_s']):.2f}" for v in trace]
    print('step: localised, match, rejected, beliefs, focus, link clearance (m), step CPU (s): '
          + '; '.join(steps))
    # the goal image was explained by the beliefs (a localised goal gives a pragmatic term),
    # the node found the goal view (at its localised viewpoint, its frame agreeing with the
    # goal image) and the camera ended there. Loaded runs (load 5-10 on 2 cores), 0.955 m
    # away at the start: found in 34-42 steps, 0.006-0.007 m and 0.01 rad from the goal
    # (before the camera pose from joint states, the limit-aware IK and the goal-object
    # focus: max_steps after 50, 0.11-0.24 m and 0.33-1.30 rad). From 0.80 m with the arm
    # left low over the table, load 10: found in 32-34 steps, localised at step 11-12 (before
    # the workspace beliefs and the 0.15 match: 2 of 3 runs and one CI run out of steps)
    assert any(fb.feedback.pragmatic != 0.0 for fb in feedback)
    assert any(v['goal_localised'] == '1.0000' for v in trace)
    assert result.success and result.reason == 'found: goal view', result.reason
    assert distance < 0.04 and angle < 0.2, (start_distance, distance, angle)
    # only beliefs on the table count: the wrist camera also sees the robot's own base and arm
    # and the floor, and perception tracks some of them
    vision = harness.nodes[2]
    centre = np.asarray(vision.param('workspace_centre'))
    half = np.asarray(vision.param('workspace_half')) + vision.param('workspace_margin')
    height = vision.param('workspace_height')
    with vision._lock:
        n_believed = len(vision._objects.objects)
    used = vision._scene().objects
    print(f'beliefs: {n_believed} from perception, {len(used)} on the workspace')
    assert used and all(np.all(np.abs(o.mean[:2] - centre[:2]) <= half)
                        and -0.05 <= o.mean[2] - centre[2] <= height for o in used)
    # the arm's links were kept above the table top (0.06 m asked; never below 0.03 m)
    clearance = [float(v['link_clearance']) for v in trace]
    assert clearance and min(clearance) > 0.03, clearance
