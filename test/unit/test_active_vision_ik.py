"""The active_vision node's arm kinematics: forward kinematics, limit-aware IK, table clearance."""
import numpy as np
import pytest

from embodied_aif.models.active_vision import bounded_step, pose_error
from embodied_aif.models.segmentation import look_at
from embodied_aif.nodes._arm_ik import ArmIk, table_clearance
from embodied_aif.nodes.active_vision import ARM_JOINTS, ActiveVision
from embodied_aif.sim.robot import HOME, RobotConfig, robot_urdf

# the node test's table in base_link (the base at the odom origin): top 0.62 m high
TABLE_CENTRE, TABLE_HALF = np.array([0.7, 0.0, 0.62]), np.array([0.4, 0.6])
REST = next(p.default for p in ActiveVision.PARAMETERS if p.name == 'rest_joints')


@pytest.fixture(scope='module')
def ik():
    solver = ArmIk(robot_urdf(RobotConfig()), ARM_JOINTS, 'wrist_camera_optical_frame')
    yield solver
    solver.close()


def test_forward_kinematics_and_ik_agree(ik):
    q = np.array(HOME) + np.array([0.1, -0.2, 0.1, 0.3, -0.1, -0.2, 0.1])
    t = ik.forward(q)
    assert np.allclose(t[:3, :3].T @ t[:3, :3], np.eye(3), atol=1e-6)
    sol, dist, ang = ik.solve(t, np.array(HOME))
    assert dist < 0.005 and ang < 0.01
    assert np.all(sol >= ik.lower) and np.all(sol <= ik.upper)
    # the reported misses are those of the solution's own forward kinematics
    d, a = pose_error(ik.forward(sol), t)
    assert d == pytest.approx(dist, abs=1e-9) and a == pytest.approx(ang, abs=1e-9)


def test_forward_kinematics_matches_the_simulated_arm():
    # an independent check: the simulator's own link pose for the same joints
    from embodied_aif.sim.scenario import load_scenario
    from embodied_aif.sim.simulation import Simulation
    with Simulation(load_scenario('tabletop'), seed=0, settle_s=0.1) as sim:
        pos, quat = sim.link_poses()['wrist_camera_optical_frame']
        base = np.asarray(sim.base_pose())
        js = sim.joint_states()
    q = np.array([dict(zip(js.names, js.positions))[n] for n in ARM_JOINTS])
    solver = ArmIk(robot_urdf(RobotConfig()), ARM_JOINTS, 'wrist_camera_optical_frame')
    try:
        t = solver.forward(q)
    finally:
        solver.close()
    c, s = np.cos(base[2]), np.sin(base[2])
    world = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ t[:3, 3] + [*base[:2], 0.0]
    assert np.linalg.norm(world - np.asarray(pos)) < 0.02, (world, pos)


def test_bounded_steps_reach_a_reachable_viewpoint(ik):
    # the goal viewpoint of the node test (base frame): the mug on the table seen from the
    # front-right. Clipping an unconstrained IK solution to the joint limits pinned joint 1 at
    # its limit 0.27 m short of it for ten steps; the limit-aware IK walks straight there.
    target = look_at([0.5, -0.15, 0.94], [0.8087, -0.0027, 0.65])
    q = np.array(HOME)
    cam = ik.forward(q)
    start = pose_error(cam, target)[0]
    errors = []
    for _ in range(24):   # 19 bounded steps cover the distance
        q, dist, ang = ik.solve(bounded_step(cam, target, 0.05, 0.15), q)
        assert np.all(q >= ik.lower) and np.all(q <= ik.upper)
        cam = ik.forward(q)
        errors.append(pose_error(cam, target))
    assert start > 0.8
    final = errors[-1]
    assert final[0] < 0.02 and final[1] < 0.05, final
    # no step undoes the progress of earlier ones by more than a step's length
    dists = [e[0] for e in errors]
    assert all(b < a + 0.05 for a, b in zip(dists, dists[1:]))


def _walk(ik, target, move, steps=30):
    """Bounded steps from the stowed arm; (final pose error, least link clearance on the way)."""
    q = np.array(HOME)
    least = np.inf
    for _ in range(steps):
        q = move(bounded_step(ik.forward(q), target, 0.05, 0.15), q)
        least = min(least, table_clearance(ik.link_points(q), TABLE_CENTRE, TABLE_HALF))
    return pose_error(ik.forward(q), target), least


def test_solve_clear_keeps_the_links_above_the_table(ik):
    target = look_at([0.5, -0.15, 0.94], [0.8087, -0.0027, 0.65])
    # plain steps: the shoulder pitches back to its limit and the links sweep 7 cm below
    # the table top on the way (the arm's third link met the table in the node)
    (d, a), least = _walk(ik, target, lambda t, q: ik.solve(t, q)[0])
    assert d < 0.02 and a < 0.05
    assert least < 0.0, least

    def clear(t, q):
        q, dist, ang, c = ik.solve_clear(
            t, ik.forward(q), q, REST,
            lambda pts: table_clearance(pts, TABLE_CENTRE, TABLE_HALF), 0.06, 0.05)
        assert c >= 0.06 and c == pytest.approx(
            table_clearance(ik.link_points(q), TABLE_CENTRE, TABLE_HALF))
        return q

    # drawn elbow-up or lifted first where needed: the same goal, every link kept clear
    (d, a), least = _walk(ik, target, clear, steps=40)
    assert d < 0.02 and a < 0.05, (d, a)
    assert least >= 0.06, least


def test_solve_clear_returns_the_clearest_when_none_is_clear(ik):
    target = look_at([0.5, -0.15, 0.94], [0.8087, -0.0027, 0.65])
    q = np.array(HOME)
    scores = []

    def clearance(pts):
        scores.append(float(np.min(pts[:, 2])))
        return scores[-1]

    sol, _, _, c = ik.solve_clear(bounded_step(ik.forward(q), target, 0.05, 0.15),
                                  ik.forward(q), q, REST, clearance, 10.0, 0.05)
    assert len(scores) == 4 and c == max(scores)
    assert np.all(sol >= ik.lower) and np.all(sol <= ik.upper)


def test_link_points_follow_the_tip(ik):
    q = np.array(HOME)
    pts = ik.link_points(q)
    assert pts.ndim == 2 and pts.shape[1] == 3 and len(pts) >= 14
    tip = ik.forward(q)[:3, 3]
    assert np.min(np.linalg.norm(pts - tip, axis=1)) < 1e-6  # the tip's own frame is one


def test_table_clearance_by_hand():
    centre, half = np.array([1.0, 0.0, 0.5]), np.array([0.2, 0.3])
    pts = np.array([[1.0, 0.0, 0.9],     # over the table, 0.4 above it
                    [1.24, 0.0, 0.6],    # over its margin (0.05): 0.1 above
                    [1.3, 0.0, 0.1],     # beside it: ignored
                    [0.0, 0.0, -1.0]])   # far away: ignored
    assert table_clearance(pts, centre, half) == pytest.approx(0.1)
    assert table_clearance(pts, centre, half, margin=0.0) == pytest.approx(0.4)
    assert table_clearance(pts[2:], centre, half) == np.inf
    with pytest.raises(ValueError, match='half extents'):
        table_clearance(pts, centre, [0.2, 0.3, 0.1])


def test_bad_input_names_what_is_wrong(ik):
    with pytest.raises(ValueError, match='q_seed'):
        ik.solve(np.eye(4), np.zeros(6))
    with pytest.raises(ValueError, match='tip pose'):
        ik.solve(np.full((4, 4), np.nan), np.array(HOME))
    with pytest.raises(ValueError, match='rest'):
        ik.solve(np.eye(4), np.array(HOME), rest=np.zeros(3))
    with pytest.raises(ValueError, match='lacks'):
        ArmIk(robot_urdf(RobotConfig()), ARM_JOINTS, 'no_such_link')


def test_rest_joints_parameter_is_checked():
    spec = next(p for p in ActiveVision.PARAMETERS if p.name == 'rest_joints')
    assert spec.check(list(REST)) is None
    assert '7 finite joint positions' in spec.check([0.0] * 6)
    assert '7 finite joint positions' in spec.check([0.0] * 6 + [float('nan')])
