"""Sensors, rates and determinism: depth in metres, intrinsics, laser ranges, due times."""
import math

import numpy as np
import pybullet as p
import pytest

from embodied_aif.sim.render_worker import RenderWorker, snapshot
from embodied_aif.sim.scenario import parse_scenario
from embodied_aif.sim.sensors import (
    CameraConfig,
    OdometryNoise,
    depth_buffer_to_metres,
    integrate_odometry,
    render_camera,
)
from embodied_aif.sim.simulation import Rates, Simulation

SMALL = {'head_camera': CameraConfig('head_camera_optical_frame', 64, 48, 60.0),
         'wrist_camera': CameraConfig('wrist_camera_optical_frame', 32, 24, 70.0, 0.02, 3.0)}


def empty_room(**objects):
    spec = {'categories': ['can', 'box'], 'instances_per_category': 0, 'surfaces': ['floor']}
    spec.update(objects)
    return parse_scenario({'name': 'empty', 'building': {'rows': 1, 'cols': 1, 'room_size': 4.0},
                           'appearance': {'textures': False}, 'furniture': {'per_room': {}},
                           'objects': spec, 'robot': {'start_pose': [0.0, 0.0, 0.0]}})


def test_depth_buffer_conversion_is_exact_at_the_clip_planes():
    near, far = 0.1, 10.0
    depth = depth_buffer_to_metres(np.array([0.0, 0.5, 1.0]), near, far)
    assert depth[0] == pytest.approx(near)
    assert near < depth[1] < far and math.isinf(depth[2])
    assert depth.dtype == np.float32


def test_depth_in_metres_matches_a_known_distance():
    client = p.connect(p.DIRECT)
    try:
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.05, 3, 3], physicsClientId=client)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.05, 3, 3], physicsClientId=client)
        p.createMultiBody(0, col, vis, basePosition=[2.05, 0, 0], physicsClientId=client)
        # Optical frame looking along world +x: columns x = -y_w, y = -z_w, z = +x_w.
        rot = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
        quat = _quaternion(rot)
        frame = render_camera(CameraConfig('cam', 64, 48, 60.0, 0.1, 10.0), client,
                              (0, 0, 0), quat)
        assert frame.depth.shape == (48, 64) and frame.rgb.shape == (48, 64, 3)
        assert np.allclose(frame.depth, 2.0, atol=0.01)  # z-depth of a fronto-parallel wall
    finally:
        p.disconnect(client)


def _quaternion(rot):
    w = math.sqrt(max(0.0, 1 + rot[0, 0] + rot[1, 1] + rot[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + rot[0, 0] - rot[1, 1] - rot[2, 2])) / 2,
                      rot[2, 1] - rot[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - rot[0, 0] + rot[1, 1] - rot[2, 2])) / 2,
                      rot[0, 2] - rot[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - rot[0, 0] - rot[1, 1] + rot[2, 2])) / 2,
                      rot[1, 0] - rot[0, 1])
    return (x, y, z, w)


def test_head_camera_depth_and_intrinsics_agree_with_independent_ray_casts():
    with Simulation(empty_room(), seed=0, cameras=SMALL, settle_s=0.0) as sim:
        sim.set_base_velocity(0.0, 1.0)
        sim.step(50)  # look at a corner: floor and two walls at many distances
        frame = sim.render('head_camera')
        k = frame.intrinsics
        pos, quat = sim.robot.link_pose('head_camera_optical_frame')
        rot = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
        v, u = np.mgrid[0:48:3, 0:64:3]
        # A ray through pixel (u, v) with optical z = 1: its hit fraction * far is the z-depth.
        rays = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones(u.shape)], -1)
        rays = rays.reshape(-1, 3) @ rot.T
        hits = p.rayTestBatch([list(pos)] * len(rays), (pos + 10.0 * rays).tolist(),
                              physicsClientId=sim.client)
        expected = np.array([h[2] * 10.0 for h in hits])
        error = np.abs(expected - frame.depth[v, u].reshape(-1))
        assert expected.max() - expected.min() > 2.0
        assert np.median(error) < 0.002 and np.percentile(error, 90) < 0.01
        assert k.k[0] == k.fx and k.p[10] == 1.0


def test_laser_ranges_match_the_walls():
    with Simulation(empty_room(), seed=0, cameras=SMALL, settle_s=0.0) as sim:
        scan = sim.laser_scan()
        angles = scan.angle_min + scan.angle_increment * np.arange(len(scan.ranges))
        laser_x = 2.0 + sim.robot_config.laser_xyz[0]
        inner = 0.05  # half the wall thickness lies inside the room
        ahead = int(np.argmin(np.abs(angles)))
        behind = int(np.argmin(np.abs(np.abs(angles) - math.pi)))
        assert scan.ranges[ahead] == pytest.approx(4.0 - inner - laser_x, abs=1e-3)
        assert scan.ranges[behind] == pytest.approx(laser_x - inner, abs=1e-3)
        assert np.all(np.isfinite(scan.ranges))  # a closed room: every beam returns
        assert scan.ranges.min() > 1.0  # the robot does not see its own base


def test_sensors_fall_due_at_their_rates():
    rates = Rates(physics_hz=240, control_hz=60, head_camera_hz=10, wrist_camera_hz=5,
                  scan_hz=20)
    with Simulation(empty_room(), seed=0, rates=rates, cameras=SMALL, settle_s=0.0) as sim:
        counts = dict.fromkeys(('head_camera', 'wrist_camera', 'scan'), 0)
        for _ in range(240):
            for name in sim.step().due:
                counts[name] += 1
        assert counts == {'head_camera': 10, 'wrist_camera': 5, 'scan': 20}
        assert sim.time == pytest.approx(1.0)
        assert sim.step(24).due == ('head_camera', 'scan')


def test_the_nav_camera_is_the_world_models_training_view():
    from embodied_aif.sim.trajectories import make_simulation

    rates = Rates(physics_hz=240, control_hz=60, head_camera_hz=0, wrist_camera_hz=0,
                  scan_hz=0, nav_camera_hz=5)
    scen = empty_room(instances_per_category=1)
    with Simulation(scen, seed=2, rates=rates, settle_s=0.0) as sim:
        nav = sim.render('nav_camera')
        assert nav.rgb.shape == (64, 64, 3) and nav.frame == 'head_camera_optical_frame'
        due = [name for _ in range(240) for name in sim.step().due]
        assert due == ['nav_camera'] * 5
    # the same picture as the square 90 deg camera the trajectory collector renders
    train = make_simulation(scen, 2)
    try:
        assert np.array_equal(train.render('head_camera').rgb, nav.rgb)
    finally:
        train.close()


@pytest.mark.parametrize('kwargs, match', [
    ({'physics_hz': 240, 'control_hz': 100}, 'whole number'),
    ({'scan_hz': -1}, 'scan_hz'),
    ({'head_camera_hz': math.nan}, 'head_camera_hz'),
    ({'wrist_camera_hz': 1000}, 'exceeds'),
])
def test_bad_rates_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rates(**kwargs)


def _run(sim):
    out = []
    x, y, _ = sim.base_pose()
    sim.move_arm_to((x + 0.5, y + 0.1, 0.6))
    sim.set_gripper(0.02)
    for k in range(4):
        sim.set_base_velocity(0.4, 0.5 * (-1) ** k)
        sim.step(30)
        head, wrist = sim.render('head_camera'), sim.render('wrist_camera')
        truth = sim.ground_truth()
        out.append((sim.base_pose(), sim.joint_states().positions.tolist(), head.rgb, head.depth,
                    wrist.rgb, sim.laser_scan().ranges, [o.position for o in truth.objects]))
    return out


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def test_same_seed_scenario_and_commands_give_identical_trajectories_and_images():
    scen = empty_room(instances_per_category=2)
    with Simulation(scen, seed=7, cameras=SMALL) as one, \
            Simulation(scen, seed=7, cameras=SMALL) as two:
        first = _run(one)
        assert _same(first, _run(two))
        one.reset(seed=7)
        assert _same(first, _run(one))  # a reset reproduces a fresh simulation
        one.reset(seed=8)
        assert not _same(first, _run(one))


def test_render_worker_frames_equal_in_process_renders():
    scen = empty_room(instances_per_category=2)
    with Simulation(scen, seed=3, cameras=SMALL) as sim:
        worker = RenderWorker(scen, 3, sim.cameras, sim.robot_config)
        try:
            sim.set_base_velocity(0.3, 0.5)
            sim.move_arm_to((2.5, 2.2, 0.7))
            sim.step(90)
            tickets = {name: worker.submit(name, snapshot(sim)) for name in SMALL}
            for name, ticket in tickets.items():
                remote, local = worker.result(ticket), sim.render(name)
                assert np.array_equal(remote.rgb, local.rgb)
                assert np.array_equal(remote.depth, local.depth)
                assert remote.stamp == local.stamp and remote.frame == local.frame
            sim.reset(seed=4)
            worker.reset(scen, 4)
            ticket = worker.submit('head_camera', snapshot(sim))
            assert np.array_equal(worker.result(ticket).rgb, sim.render('head_camera').rgb)
        finally:
            worker.close()


def test_odometry_is_exact_without_noise_and_drifts_with_it():
    rng = np.random.default_rng(0)
    pose = (0.0, 0.0, 0.0)
    for _ in range(100):  # v = w = pi / 2 for 1 s: a quarter circle of radius 1 m
        pose, measured = integrate_odometry(pose, math.pi / 2, math.pi / 2, 0.01,
                                            OdometryNoise(), rng)
    assert np.allclose(pose, (1.0, 1.0, math.pi / 2), atol=1e-9)
    assert measured == (math.pi / 2, math.pi / 2)
    drifting = OdometryNoise(linear_bias=0.1, yaw_drift=0.05)
    pose = (0.0, 0.0, 0.0)
    for _ in range(100):
        pose, _ = integrate_odometry(pose, 1.0, 0.0, 0.01, drifting, rng)
    assert pose[2] == pytest.approx(0.05) and 1.09 < math.hypot(pose[0], pose[1]) < 1.11
    pose, measured = integrate_odometry((0.0, 0.0, 0.0), 0.0, 0.0, 0.01, drifting, rng)
    assert measured == (0.0, 0.0)  # no drift while standing still
    with pytest.raises(ValueError, match='noise'):
        OdometryNoise(linear_noise=-0.1)
