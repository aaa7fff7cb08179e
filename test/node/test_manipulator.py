"""manipulator in-process: Pick lifts an object, Place puts it down, bad goals fail with reasons.

One context, one MultiThreadedExecutor: sim_bridge on test/fixtures/tabletop_reach.yaml (the
tabletop scenario with the robot 0.1 m closer to the table, cameras and laser off), the
manipulator, and a probe that stands in for perception: it publishes the objects' ground-truth
poses from ground_truth/objects, in the odom frame, as an ObjectBeliefArray on objects (with
extents from the objects' shapes), plus a belief of an object far out of reach.
"""
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.action import ActionClient
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from stack_harness import StackHarness, overrides

from embodied_aif.models import manipulation as mp
from embodied_aif.models.transforms import matrix, quaternion_from_rotation
from embodied_aif.nodes._common import LATCHED_QOS
from embodied_aif.nodes.manipulator import Manipulator
from embodied_aif.nodes.sim_bridge import SimBridge
from embodied_aif_msgs.action import Pick, Place
from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray
from embodied_aif_msgs.srv import PlanApproach

SCENARIO = str(Path(__file__).resolve().parent.parent / 'fixtures' / 'tabletop_reach.yaml')
TARGET = 'bottle_0'
MERGED = 'obj_7'  # a retired track id of the target
PLACE_AT = (0.70, -0.17)  # odom = base_link at the start (the base never moves here)
GOAL_TIMEOUT = 120.0      # wall s per goal (a pick or place takes ~10 s of sim time)
TOPICS = {
    '/clock': (Clock, 10), '/robot/odom': (Odometry, 10),
    '/robot/joint_states': (JointState, 10),
    '/robot/ground_truth/objects': (ObjectBeliefArray, LATCHED_QOS),
    '/robot/ground_truth/robot_pose': (PoseStamped, 10),
}


def make_nodes(context):
    bridge = SimBridge(context=context, namespace='robot', parameter_overrides=overrides(
        {'scenario': SCENARIO, 'real_time_factor': 1.0, 'head_camera_rate': 0.0,
         'wrist_camera_rate': 0.0, 'scan_rate': 0.0, 'odom_noise_linear': 0.0,
         'odom_noise_angular': 0.0}))
    manipulator = Manipulator(context=context, namespace='robot', parameter_overrides=overrides(
        {'use_sim_time': True, 'motion_timeout_margin': 20.0, 'gripper_timeout': 5.0,
         'input_timeout': 10.0, 'tf_timeout': 10.0, 'verify_timeout': 3.0}))
    return [bridge, manipulator]


def extent(truth) -> tuple:
    """Size of an object's box in its own frame, from its ground-truth shape."""
    shape = truth.shape
    if truth.category in ('can', 'bottle'):
        return (2 * shape['radius'], 2 * shape['radius'], shape['height'])
    if truth.category == 'box':
        return tuple(shape['size'])
    if truth.category == 'mug':
        return (2 * shape['radius'] + shape['handle'], 2 * shape['radius'], shape['height'])
    return (0.1, 0.1, 0.1)


class Harness(StackHarness):
    """Bridge, manipulator, and a probe publishing object beliefs and sending goals."""

    def __init__(self, nodes=make_nodes, topics=None):
        super().__init__(nodes, {**TOPICS, **(topics or {})}, namespace='robot')
        self.bridge, self.manipulator = self.nodes[:2]
        with self.bridge._lock:
            truth = self.bridge.sim.ground_truth()
        self.shapes = {o.name: extent(o) for o in truth.objects}
        self.pub_objects = self.probe.create_publisher(ObjectBeliefArray, 'objects', 10)
        self.approach = self.probe.create_client(PlanApproach, 'plan_approach')
        self.feedback = []
        self.probe.create_timer(0.25, self.publish_beliefs)

    def prepare(self):
        self.pick = ActionClient(self.probe, Pick, 'pick')
        self.place = ActionClient(self.probe, Place, 'place')

    def truth(self):
        """The simulator's ground truth (objects, attached object), under the bridge's lock."""
        with self.bridge._lock:
            return self.bridge.sim.ground_truth()

    def t_odom_world(self):
        """Return odom <- world from the first ground-truth pose and odometry.

        With noise-free odometry it never changes; computed from later pairs it would mix
        stamps while the base drives.
        """
        if getattr(self, '_t_odom_world', None) is not None:
            return self._t_odom_world
        robot = self.latest('/robot/ground_truth/robot_pose')
        odom = self.latest('/robot/odom')
        if robot is None or odom is None:
            return None
        p, q = robot.pose.position, robot.pose.orientation
        t_world_base = matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        p, q = odom.pose.pose.position, odom.pose.pose.orientation
        self._t_odom_world = matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w]) @ \
            np.linalg.inv(t_world_base)
        return self._t_odom_world

    def publish_beliefs(self):
        """Perfect perception: every object's true pose (box centre) in odom, stamped now."""
        truth = self.latest('/robot/ground_truth/objects')
        t_odom_world = self.t_odom_world()
        if truth is None or t_odom_world is None:
            return
        msg = ObjectBeliefArray()
        msg.header.stamp = truth.header.stamp  # when the poses were true
        msg.header.frame_id = 'odom'
        for obj in truth.objects:
            p, q = obj.pose.pose.position, obj.pose.pose.orientation
            size = self.shapes[obj.id]
            t = t_odom_world @ matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
            centre = t @ [0.0, 0.0, size[2] / 2, 1.0]  # parametric bodies stand on their origin
            msg.objects.append(self.belief(obj.id, obj.category_names[0], centre[:3],
                                           quaternion_from_rotation(t[:3, :3]), size, msg))
            if obj.id == TARGET:  # perception had merged an older track of it into this one
                msg.objects[-1].merged_ids = [MERGED]
        msg.objects.append(self.belief('far_cup', 'mug', (2.5, 0.0, 0.7), (0, 0, 0, 1),
                                       (0.06, 0.06, 0.09), msg))
        # a belief of an object that is not there, on a free spot of the table
        msg.objects.append(self.belief('ghost', 'can', (0.50, 0.0, 0.66), (0, 0, 0, 1),
                                       (0.05, 0.05, 0.08), msg))
        self.pub_objects.publish(msg)

    @staticmethod
    def belief(name, category, centre, quat, size, msg):
        b = ObjectBelief(id=name, category_names=[category], category_probs=[1.0],
                         last_seen=msg.header.stamp, in_view=True)
        b.header = msg.header
        pos, ori = b.pose.pose.position, b.pose.pose.orientation
        pos.x, pos.y, pos.z = (float(v) for v in centre)
        ori.x, ori.y, ori.z, ori.w = (float(v) for v in quat)
        b.extent.x, b.extent.y, b.extent.z = (float(v) for v in size)
        return b

    def run_goal(self, client, goal):
        """Send a goal, wait for its result; return (result, feedback phases)."""
        assert client.wait_for_server(timeout_sec=30.0), 'action server not available'
        phases = []
        lock = threading.Lock()

        def on_feedback(msg):
            with lock:
                phases.append(msg.feedback.phase)
        sent = client.send_goal_async(goal, feedback_callback=on_feedback)
        assert self.wait(sent.done, 30.0), 'goal not answered'
        handle = sent.result()
        assert handle.accepted
        result = handle.get_result_async()
        assert self.wait(result.done, GOAL_TIMEOUT), 'no result'
        with lock:
            return result.result().result, list(phases)


@pytest.fixture(scope='module')
def harness():
    h = Harness()
    assert h.wait(lambda: h.latest('/robot/joint_states') is not None
                  and h.manipulator.objects is not None, 60.0), 'no joint_states or beliefs'
    yield h
    h.close()


def true_object(harness, name):
    return next(o for o in harness.truth().objects if o.name == name)


def test_bad_goals_are_aborted_with_reasons(harness):
    result, _ = harness.run_goal(harness.pick, Pick.Goal(object_id='no_such_object'))
    assert not result.success and result.reason.startswith('unknown_object:'), result.reason
    assert TARGET in result.reason  # the known ids are listed
    result, _ = harness.run_goal(harness.pick, Pick.Goal(object_id='far_cup'))
    assert not result.success and result.reason.startswith('unreachable:'), result.reason
    target = PoseStamped()
    target.header.frame_id = 'odom'
    target.pose.position.x, target.pose.position.y, target.pose.position.z = 0.7, 0.0, 0.62
    result, _ = harness.run_goal(harness.place, Place.Goal(target=target))
    assert not result.success and result.reason.startswith('nothing_held:'), result.reason
    # the arm did not move for any of them: still stowed
    assert harness.truth().attached is None
    # run-time parameter changes are validated
    bad = harness.manipulator.set_parameters([Parameter('base_boxes', value=[0.0, 1.0]),
                                              Parameter('velocity_scale', value=3.0)])
    assert not any(r.successful for r in bad)
    assert 'base_boxes' in bad[0].reason and 'velocity_scale' in bad[1].reason


def grid_msg(value: int) -> OccupancyGrid:
    """A 10 m x 10 m grid around the odom origin, every cell ``value`` (0 free, 100 occupied)."""
    msg = OccupancyGrid()
    msg.header.frame_id = 'odom'
    msg.info.resolution, msg.info.width, msg.info.height = 0.1, 100, 100
    msg.info.origin.position.x = msg.info.origin.position.y = -5.0
    msg.info.origin.orientation.w = 1.0
    msg.data = [value] * 10000
    return msg


def ask_approach(harness, object_id, exclude=(), radius=0.0):
    """Call plan_approach; return the response."""
    request = PlanApproach.Request(object_id=object_id, exclude_radius=float(radius),
                                   exclude=[Point(x=float(x), y=float(y)) for x, y in exclude])
    assert harness.approach.wait_for_service(timeout_sec=30.0), 'no plan_approach service'
    future = harness.approach.call_async(request)
    assert harness.wait(future.done, GOAL_TIMEOUT), 'plan_approach did not answer'
    return future.result()


def test_plan_approach_stands_the_base_where_the_arm_reaches_the_object(harness):
    answer = ask_approach(harness, TARGET)
    assert not answer.success and answer.reason.startswith('no_input:'), answer.reason
    assert 'occupancy' in answer.reason
    grids = harness.probe.create_publisher(OccupancyGrid, '/robot/cognitive_map/occupancy',
                                           LATCHED_QOS)
    grids.publish(grid_msg(0))
    assert harness.wait(lambda: harness.manipulator.grid is not None, 30.0), 'grid not received'
    belief = next(b for b in harness.manipulator.objects.objects if b.id == TARGET)
    obj = np.array([belief.pose.pose.position.x, belief.pose.pose.position.y])
    answer = ask_approach(harness, TARGET)
    assert answer.success, answer.reason
    assert answer.base_pose.header.frame_id == 'odom'
    p, q = answer.base_pose.pose.position, answer.base_pose.pose.orientation
    stand = np.array([p.x, p.y])
    assert 0.44 < np.linalg.norm(obj - stand) < 0.76
    assert abs(np.linalg.norm(obj - stand) - answer.standoff) < 1e-3
    heading = matrix([0, 0, 0], [q.x, q.y, q.z, q.w])[:2, 0]
    assert heading @ (obj - stand) / np.linalg.norm(obj - stand) > 0.99  # facing the object
    # a task chosen on a track that was merged since still finds the object
    alias = ask_approach(harness, MERGED)
    assert alias.success and 0.44 < alias.standoff < 0.76, alias.reason
    # a stand-in the base could not reach is left out on request
    other = ask_approach(harness, TARGET, exclude=[stand], radius=0.3)
    assert other.success, other.reason
    p2 = other.base_pose.pose.position
    assert math.hypot(p2.x - stand[0], p2.y - stand[1]) >= 0.3
    answer = ask_approach(harness, 'no_such_object')
    assert not answer.success and answer.reason.startswith('unknown_object:'), answer.reason
    grids.publish(grid_msg(100))  # nowhere to stand
    assert harness.wait(lambda: harness.manipulator.grid[0].data[0, 0] == 100, 30.0)
    # ... but where the base stands (the bottle in reach) it can pick without a drive
    answer = ask_approach(harness, TARGET)
    assert answer.success, answer.reason
    robot = harness.latest('/robot/odom').pose.pose.position
    here = answer.base_pose.pose.position
    assert math.hypot(here.x - robot.x, here.y - robot.y) < 0.01
    # unless that was left out: then nowhere
    answer = ask_approach(harness, TARGET, exclude=[np.array([robot.x, robot.y])], radius=0.3)
    assert not answer.success and answer.reason.startswith('unreachable:'), answer.reason
    assert 'no free base pose' in answer.reason
    assert harness.truth().attached is None  # planning moved nothing


def test_pick_of_an_object_that_is_not_there_fails(harness):
    result, phases = harness.run_goal(harness.pick, Pick.Goal(object_id='ghost'))
    assert not result.success and result.reason.startswith('grasp_failed:'), result.reason
    assert 'grasp' in phases  # it went there and closed the gripper
    js = harness.latest('/robot/joint_states')
    width = sum(p for n, p in zip(js.name, js.position) if 'finger' in n)
    assert width > 0.07  # and opened it again
    # and took the arm back to the carry pose: the executive drives off next
    arm = dict(zip(js.name, js.position))
    assert max(abs(arm[n] - q) for n, q in zip(mp.ARM_JOINTS, mp.CARRY)) < 0.05, arm


def test_pick_lifts_the_object(harness):
    before = true_object(harness, TARGET)
    result, phases = harness.run_goal(harness.pick, Pick.Goal(object_id=TARGET))
    assert result.success, result.reason
    assert result.reason.startswith(f'picked {TARGET}')
    assert 'perception sees it' in result.reason  # verified from the beliefs too
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == \
        ['approach', 'grasp', 'lift', 'verify']
    truth = harness.truth()
    after = next(o for o in truth.objects if o.name == TARGET)
    assert truth.attached == TARGET
    assert after.position[2] > before.position[2] + 0.05, (before.position, after.position)
    js = harness.latest('/robot/joint_states')
    width = sum(p for n, p in zip(js.name, js.position) if 'finger' in n)
    assert 0.005 < width < 0.07  # closed on the bottle, not on nothing


def test_place_puts_it_down_at_the_target(harness):
    before = true_object(harness, TARGET)
    target = PoseStamped()
    target.header.frame_id = 'odom'
    target.pose.position.x, target.pose.position.y = PLACE_AT
    target.pose.position.z = 0.62  # the table top
    target.pose.orientation.w = 1.0
    far = PoseStamped()
    far.header.frame_id = 'odom'
    far.pose.position.x, far.pose.position.z = 2.0, 0.62
    result, _ = harness.run_goal(harness.place, Place.Goal(object_id=TARGET, target=far))
    assert not result.success and result.reason.startswith('unreachable:'), result.reason
    assert harness.truth().attached == TARGET  # still held
    result, phases = harness.run_goal(harness.place, Place.Goal(object_id=TARGET, target=target))
    assert result.success, result.reason
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == \
        ['approach', 'release', 'retreat', 'verify']
    truth = harness.truth()
    after = next(o for o in truth.objects if o.name == TARGET)
    assert truth.attached is None
    t_odom_world = harness.t_odom_world()
    placed = (t_odom_world @ [*after.position, 1.0])[:3]
    assert math.hypot(placed[0] - PLACE_AT[0], placed[1] - PLACE_AT[1]) < 0.03, placed
    assert abs(after.position[2] - 0.62) < 0.01  # standing on the table, not lifted
    assert before.position[2] > after.position[2] + 0.05
    # upright: the bottle's axis still points up
    q = after.orientation
    assert matrix([0, 0, 0], q)[2, 2] > 0.98
    # nothing held any more
    result, _ = harness.run_goal(harness.place, Place.Goal(target=target))
    assert not result.success and result.reason.startswith('nothing_held:')


def test_a_cancelled_pick_stops_the_arm(harness):
    assert harness.pick.wait_for_server(timeout_sec=30.0)
    phases = []
    sent = harness.pick.send_goal_async(Pick.Goal(object_id=TARGET),
                                        feedback_callback=lambda m: phases.append(
                                            (m.feedback.phase, m.feedback.progress)))
    assert harness.wait(sent.done, 30.0)
    handle = sent.result()
    assert harness.wait(lambda: ('approach', 0.5) in phases, GOAL_TIMEOUT), phases
    cancel = handle.cancel_goal_async()
    assert harness.wait(cancel.done, 30.0)
    result = handle.get_result_async()
    assert harness.wait(result.done, GOAL_TIMEOUT)
    assert result.result().status == GoalStatus.STATUS_CANCELED
    assert result.result().result.reason.startswith('canceled:')
    assert 'grasp' not in [p for p, _ in phases]
    # the arm holds still where it stopped
    harness.wait_sim(0.5)
    q0 = np.array(harness.latest('/robot/joint_states').position[:7])
    harness.wait_sim(1.0)
    q1 = np.array(harness.latest('/robot/joint_states').position[:7])
    assert np.max(np.abs(q1 - q0)) < 0.01
    assert harness.truth().attached is None
