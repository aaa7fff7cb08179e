"""The robot through the facade: arm reaching, grasp and lift, bad commands, reset."""
import math

import numpy as np
import pybullet as p
import pytest

from embodied_aif.sim.scenario import parse_scenario
from embodied_aif.sim.simulation import Rates, Simulation

QUIET = Rates(head_camera_hz=0, wrist_camera_hz=0, scan_hz=0)
DOWN = p.getQuaternionFromEuler((math.pi, 0.0, 0.0))


def table_scene(categories=('can',), start=(0.0, 0.0, 0.0)):
    return parse_scenario({
        'name': 'one_table',
        'building': {'rows': 1, 'cols': 1, 'room_size': 4.0},
        'furniture': {'per_room': {}, 'fixed': [{'kind': 'table', 'x': 0.75, 'yaw_deg': 90}]},
        'objects': {'categories': list(categories), 'instances_per_category': 1,
                    'surfaces': ['table']},
        'robot': {'start_pose': list(start)}})


@pytest.fixture(scope='module')
def sim():
    with Simulation(table_scene(), seed=0, rates=QUIET) as s:
        yield s


def test_arm_reaches_a_commanded_pose(sim):
    sim.reset(seed=0)
    x, y, _ = sim.base_pose()
    target = (x + 0.55, y + 0.1, 0.9)
    result = sim.move_arm_to(target, DOWN)
    assert result.accepted and not result.clamped
    sim.step(480)
    pos, quat = sim.robot.link_pose('panda_grasptarget')
    assert np.linalg.norm(pos - target) < 0.02
    # The gripper points down: the grasp frame's z axis is close to world -z.
    z_axis = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)[:, 2]
    assert z_axis[2] < -0.98


def test_arm_joint_targets_are_tracked(sim):
    sim.reset(seed=0)
    q = np.array([0.2, -0.5, 0.1, -2.0, 0.0, 1.8, 0.5])
    assert sim.set_arm_joint_targets(q).accepted
    sim.step(360)
    assert np.allclose(sim.joint_states().positions[:7], q, atol=0.02)


def test_gripper_lifts_an_object(sim):
    sim.reset(seed=0)
    can = sim.ground_truth().objects[0]
    x, y, z = can.position
    height = can.shape['height']
    sim.set_gripper('open')
    sim.move_arm_to((x, y, z + height + 0.08), DOWN)
    sim.step(360)
    sim.move_arm_to((x, y, z + height * 0.5), DOWN)
    sim.step(240)
    sim.set_gripper('close')
    sim.step(60)
    assert sim.ground_truth().attached == can.name
    sim.move_arm_to((x, y, z + height + 0.2), DOWN)
    sim.step(360)
    lifted = sim.ground_truth().objects[0]
    assert lifted.position[2] > z + 0.1
    sim.set_gripper('open')
    sim.step(240)
    assert sim.ground_truth().attached is None
    assert sim.ground_truth().objects[0].position[2] < lifted.position[2] - 0.05  # it drops


def test_a_bottle_held_by_its_neck_stays_in_the_hand_while_the_base_turns_and_drives():
    """The fingers hold where they met the object; they had squeezed it out during a turn."""
    # seed 0 puts the bottle 0.7 m ahead and 0.54 m left of the room centre: start by it
    with Simulation(table_scene(('bottle',), start=(0.1, 0.5, 0.0)), seed=0, rates=QUIET) as sim:
        bottle = sim.ground_truth().objects[0]
        x, y, z = bottle.position
        top = z + bottle.shape['height']
        sim.set_gripper('open')
        sim.move_arm_to((x, y, top + 0.1), DOWN)
        sim.step(360)
        sim.move_arm_to((x, y, top - 0.03), DOWN)  # by the narrow top
        sim.step(240)
        sim.set_gripper('close')
        sim.step(120)
        assert sim.ground_truth().attached == bottle.name
        held = sim.robot.gripper_width()
        assert 0.02 < held < 0.06
        sim.move_arm_to((x - 0.2, y, top + 0.25), DOWN)
        sim.step(480)
        widths = []
        for v, w in ((-0.3, 0.0), (0.0, 1.5), (0.5, 1.0), (0.5, -1.5), (0.0, 0.0)):
            for _ in range(90):  # 1.5 s each, commands renewed as a controller would
                sim.set_base_velocity(v, w)
                sim.step(sim.rates.control_every)
                widths.append(sim.robot.gripper_width())
        assert sim.ground_truth().attached == bottle.name
        assert max(abs(np.array(widths) - held)) < 0.003
        hand = sim.robot.link_pose('panda_hand')[0]
        carried = next(o for o in sim.ground_truth().objects if o.name == bottle.name)
        assert np.linalg.norm(np.array(carried.position[:2]) - hand[:2]) < 0.05
        sim.set_gripper('open')  # and it still lets go
        sim.step(240)
        assert sim.ground_truth().attached is None
        assert sim.robot.gripper_width() > held + 0.02


def test_bad_commands_are_rejected_or_clamped(sim):
    sim.reset(seed=0)
    for bad in [(math.nan, 0.0), (0.0, math.inf), ('fast', 0.0)]:
        result = sim.set_base_velocity(*bad)
        assert not result.accepted and result.message
    result = sim.set_base_velocity(5.0, -9.0)
    assert result.accepted and result.clamped
    assert result.value == (sim.limits.max_linear, -sim.limits.max_angular)
    result = sim.set_arm_joint_targets([10.0] * 7)
    assert result.accepted and result.clamped and 'joints' in result.message
    assert np.all(np.array(result.value) <= sim.robot.upper)
    assert not sim.set_arm_joint_targets([0.0] * 6).accepted
    assert not sim.set_arm_joint_targets([math.nan] * 7).accepted
    assert not sim.set_arm_trajectory([(1.0, [0.0] * 7), (0.5, [0.0] * 7)]).accepted
    assert not sim.set_gripper('wide').accepted
    result = sim.set_gripper(0.5)
    assert result.clamped and result.value == (sim.limits.max_gripper_width,)
    assert not sim.move_arm_to((math.nan, 0.0, 1.0)).accepted
    far = sim.move_arm_to((sim.base_pose()[0] + 3.0, 2.0, 1.0))
    assert far.accepted and 'out of reach' in far.message


def test_command_timeout_stops_the_base(sim):
    sim.reset(seed=0)
    sim.set_base_velocity(0.0, 1.0)
    sim.step(int(0.4 * sim.rates.physics_hz))
    turning = sim.base_velocity()[1]
    sim.step(int(0.3 * sim.rates.physics_hz))
    assert turning == 1.0 and sim.base_velocity() == (0.0, 0.0)


def test_arm_trajectory_is_interpolated(sim):
    sim.reset(seed=0)
    q1 = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
    assert sim.set_arm_trajectory([(1.0, q1), (2.0, [0.3] + q1[1:])]).accepted
    sim.step(int(2.5 * sim.rates.physics_hz))
    assert np.allclose(sim.joint_states().positions[:7], [0.3] + q1[1:], atol=0.03)


def test_reset_mid_run_leaves_no_stale_state(sim):
    sim.reset(seed=0)
    start = sim.base_pose()
    can = sim.ground_truth().objects[0]
    sim.set_base_velocity(0.0, 1.0)
    sim.set_gripper('close')
    sim.move_arm_to((can.position[0], can.position[1], 1.0))
    sim.step(100)
    sim.reset(seed=0)
    assert sim.time == 0.0 and sim.base_velocity() == (0.0, 0.0)
    assert sim.ground_truth().attached is None
    sim.step(60)
    assert sim.base_pose() == start
    assert sim.robot.gripper_width() > 0.07  # gripper target back to open


def test_tf_frames_follow_the_conventions(sim):
    sim.reset(seed=0)
    poses = sim.link_poses()
    parents = sim.frame_parents()
    for name in ('base_link', 'laser_link', 'head_camera_optical_frame',
                 'wrist_camera_optical_frame', 'panda_link0', 'panda_hand'):
        assert name in poses
    assert parents['head_camera_optical_frame'] == 'head_camera_link'
    assert parents['panda_link0'] == 'base_link'
    # Optical frame: z forward (= camera link x), x right (= camera link -y).
    rot = {n: np.array(p.getMatrixFromQuaternion(poses[n][1])).reshape(3, 3)
           for n in ('head_camera_link', 'head_camera_optical_frame')}
    optical, link = rot['head_camera_optical_frame'], rot['head_camera_link']
    assert np.allclose(optical[:, 2], link[:, 0], atol=1e-6)
    assert np.allclose(optical[:, 0], -link[:, 1], atol=1e-6)
    states = sim.joint_states()
    assert states.names[:7] == tuple(f'panda_joint{i}' for i in range(1, 8))
    assert states.positions.shape == (9,)


def test_frame_transforms_compose_back_to_the_link_poses(sim):
    sim.reset(seed=0)
    sim.set_arm_joint_targets([0.3, -0.4, 0.2, -2.0, 0.1, 1.7, 0.4])
    sim.step(120)
    poses = sim.link_poses()
    transforms = sim.frame_transforms()
    assert {child for _, child, *_ in transforms} == set(poses) - {'base_link'}
    static = {child for _, child, _, _, fixed in transforms if fixed}
    assert 'head_camera_optical_frame' in static and 'panda_link1' not in static
    for parent, child, pos, quat, _ in transforms:
        world_pos, world_quat = p.multiplyTransforms(poses[parent][0].tolist(),
                                                     poses[parent][1].tolist(), pos, quat)
        assert np.allclose(world_pos, poses[child][0], atol=1e-6)
        assert abs(abs(np.dot(world_quat, poses[child][1])) - 1.0) < 1e-6
