"""models.manipulation: FK against PyBullet's FK of the same URDF, IK, trajectories, collisions."""
import math
import time

import numpy as np
import pybullet as p
import pybullet_data
import pytest

from embodied_aif.models import manipulation as m

MOUNT = m.translation((0.12, 0.0, 0.30))
FRAMES = ('panda_link1', 'panda_link2', 'panda_link3', 'panda_link4', 'panda_link5',
          'panda_link6', 'panda_link7', 'panda_hand', 'panda_grasptarget')
BASE = [m.Box((-0.28, -0.21, 0.0), (0.28, 0.21, 0.30), 'base', ignore_frames=(1,)),
        m.Box((-0.25, -0.03, 0.30), (-0.19, 0.03, 1.27), 'mast')]


@pytest.fixture(scope='module')
def bullet_panda():
    client = p.connect(p.DIRECT)
    body = p.loadURDF(str(pybullet_data.getDataPath()) + '/franka_panda/panda.urdf',
                      basePosition=(0.12, 0.0, 0.30), useFixedBase=True, physicsClientId=client)
    links = {p.getJointInfo(body, j, physicsClientId=client)[12].decode(): j
             for j in range(p.getNumJoints(body, physicsClientId=client))}
    yield client, body, links
    p.disconnect(client)


def test_forward_kinematics_matches_pybullet(bullet_panda):
    client, body, links = bullet_panda
    arm = m.panda_arm(MOUNT)
    rng = np.random.default_rng(3)
    for _ in range(25):
        q = rng.uniform(arm.lower, arm.upper)
        for j in range(7):
            p.resetJointState(body, j, q[j], physicsClientId=client)
        frames = m.forward_kinematics(arm, q)
        for k, name in enumerate(FRAMES):
            state = p.getLinkState(body, links[name], computeForwardKinematics=True,
                                   physicsClientId=client)
            rot = np.array(p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
            np.testing.assert_allclose(frames[k + 1][:3, 3], state[4], atol=1e-6, err_msg=name)
            np.testing.assert_allclose(frames[k + 1][:3, :3], rot, atol=1e-6, err_msg=name)


def test_jacobian_matches_finite_differences():
    arm = m.panda_arm(MOUNT)
    q = np.array(m.READY) + 0.1
    j = m.jacobian(arm, q)
    t0 = m.tool_pose(arm, q)
    eps = 1e-6
    for i in range(7):
        dq = np.zeros(7)
        dq[i] = eps
        t1 = m.tool_pose(arm, q + dq)
        np.testing.assert_allclose((t1[:3, 3] - t0[:3, 3]) / eps, j[:3, i], atol=1e-4)
        np.testing.assert_allclose(m.rotation_error(t1, t0) / eps, j[3:, i], atol=1e-4)


def test_rotation_error_handles_half_turns():
    for axis in np.eye(3):
        r = np.eye(4)
        r[:3, :3] = 2 * np.outer(axis, axis) - np.eye(3)  # rotation by pi about axis
        w = m.rotation_error(r, np.eye(4))
        assert abs(np.linalg.norm(w) - math.pi) < 1e-6
        assert abs(abs(w @ axis) - math.pi) < 1e-6


def test_ik_reaches_reachable_targets_within_5mm():
    arm = m.panda_arm(MOUNT)
    rng = np.random.default_rng(7)
    for _ in range(20):
        q_true = rng.uniform(arm.lower + 0.1, arm.upper - 0.1)
        target = m.tool_pose(arm, q_true)
        result = m.solve_ik(arm, target, (m.READY,), rng=rng)
        assert result.success, (result.position_error, result.orientation_error)
        reached = m.tool_pose(arm, result.q)
        assert np.linalg.norm(reached[:3, 3] - target[:3, 3]) < 0.005
        assert np.linalg.norm(m.rotation_error(target, reached)) < 0.05
        assert arm.within_limits(result.q)


def test_an_ik_attempt_that_stalls_far_from_its_target_stops_early():
    arm = m.panda_arm(MOUNT)
    far = m.top_down_pose((1.1, 0.0, 0.45), 0.0)  # just past the reach, top-down
    early = m.solve_ik(arm, far, (m.READY,), rng=np.random.default_rng(0))
    config = m.IkConfig(stall_iterations=0)
    full = m.solve_ik(arm, far, (m.READY,), config, rng=np.random.default_rng(0))
    assert not early.success and not full.success
    assert early.iterations < config.max_iterations == full.iterations
    # where the full search got nearer, it was by little
    assert early.position_error < full.position_error + 0.02
    with pytest.raises(ValueError, match='stall_iterations'):
        m.IkConfig(stall_iterations=-1)


def test_ik_reports_unreachable_targets():
    arm = m.panda_arm(MOUNT)
    far = m.top_down_pose((1.6, 0.0, 0.7), 0.0)  # twice the arm's reach
    result = m.solve_ik(arm, far, (m.READY,), rng=np.random.default_rng(0))
    assert not result.success
    assert result.position_error > 0.5
    assert arm.within_limits(result.q)
    # the bound of the reach holds for every configuration
    rng = np.random.default_rng(2)
    reach = m.max_reach(arm)
    assert 1.0 < reach < 1.3
    for q in rng.uniform(arm.lower, arm.upper, (200, 7)):
        frames = m.forward_kinematics(arm, q)
        assert np.linalg.norm(frames[9, :3, 3] - frames[2, :3, 3]) <= reach
    # in reach but below the joint limits' workspace: right under the mount, pointing up
    under = m.translation((0.12, 0.0, -0.5))
    assert not m.solve_ik(arm, under, rng=np.random.default_rng(0)).success


def test_trajectory_respects_limits_and_passes_waypoints():
    arm = m.panda_arm(MOUNT, velocity_scale=0.5, acceleration_scale=0.5)
    rng = np.random.default_rng(1)
    waypoints = np.vstack([m.READY, rng.uniform(arm.lower, arm.upper, (3, 7)),
                           np.array(m.READY) + 0.001])
    dt = 0.02
    traj = m.time_parameterise(waypoints, arm.max_velocity, arm.max_acceleration, dt)
    assert traj.times[0] == 0.0 and np.all(np.diff(traj.times) > 0)
    np.testing.assert_allclose(traj.positions[0], waypoints[0])
    np.testing.assert_allclose(traj.positions[-1], waypoints[-1], atol=1e-9)
    for w in waypoints[1:]:  # every waypoint is a sample (rest-to-rest)
        assert np.min(np.max(np.abs(traj.positions - w), axis=1)) < 1e-9
    assert np.all(np.abs(traj.velocities) <= arm.max_velocity * (1 + 1e-9))
    np.testing.assert_allclose(traj.velocities[-1], 0.0, atol=1e-9)
    # finite differences of the samples (mean velocities) respect the limits too
    v = np.diff(traj.positions, axis=0) / np.diff(traj.times)[:, None]
    assert np.all(np.abs(v) <= arm.max_velocity * (1 + 1e-6))
    mid = (traj.times[1:] + traj.times[:-1]) / 2
    a = np.diff(v, axis=0) / np.diff(mid)[:, None]
    assert np.all(np.abs(a) <= arm.max_acceleration * (1 + 1e-6))
    # and the slowest joint of a segment uses its limit: the profile is not needlessly slow
    assert np.max(np.abs(traj.velocities) / arm.max_velocity) > 0.99


def test_collision_check_catches_a_path_through_the_table():
    arm = m.panda_arm(MOUNT)
    table = m.support_box(0.62, (0.7, 0.0), near_x=0.30)
    above = m.solve_ik(arm, m.top_down_pose((0.65, 0.0, 0.85), 0.0), (m.READY,))
    below = m.solve_ik(arm, m.top_down_pose((0.65, 0.0, 0.50), 0.0), (above.q,))
    assert above.success and below.success
    assert m.first_collision(arm, [m.READY, above.q], [table, *BASE], margin=0.005) is None
    hit = m.first_collision(arm, [above.q, below.q], [table, *BASE], margin=0.005)
    assert hit is not None and hit.box == 'support' and hit.clearance < 0.005
    assert hit.index > 0  # the start was clear; the collision is on the way down
    # the robot's own base: bending the arm down onto the base's top plate
    assert np.min(m.clearances(arm, m.READY, BASE)) > 0.02
    folded = (0.0, 1.0, 0.0, -2.5, 0.0, 1.5, 0.785)
    assert m.tool_pose(arm, folded)[2, 3] < 0.4
    hit = m.first_collision(arm, [m.READY, folded], BASE)
    assert hit is not None and hit.box == 'base' and hit.index > 0


def test_start_collisions_are_excused_only_while_they_do_not_deepen():
    arm = m.panda_arm(MOUNT)
    table = m.support_box(0.62, (0.7, 0.0), near_x=0.30)
    deep = m.solve_ik(arm, m.top_down_pose((0.65, 0.0, 0.55), 0.0), (m.READY,)).q
    deeper = m.solve_ik(arm, m.top_down_pose((0.65, 0.0, 0.45), 0.0), (deep,)).q
    up = m.solve_ik(arm, m.top_down_pose((0.65, 0.0, 0.9), 0.0), (deep,)).q
    assert m.first_collision(arm, [deep, up], [table], allow_start=True) is None
    assert m.first_collision(arm, [deep, up], [table]) is not None
    assert m.first_collision(arm, [deep, deeper], [table], allow_start=True) is not None


def test_grasp_candidates_fit_the_gripper():
    config = m.GraspConfig()
    narrow = m.ObjectBox((0.7, 0.0, 0.7), (0.05, 0.12, 0.16), yaw=0.3)
    cands = m.grasp_candidates(narrow, config)
    tops = [c for c in cands if c.kind == 'top']
    assert len(tops) == 2  # only across the 5 cm side, both hand flips
    for c in tops:
        closing = c.contact[:3, 1]
        assert abs(abs(math.atan2(closing[1], closing[0]) - 0.3) % math.pi) < 1e-9
        np.testing.assert_allclose(c.contact[:3, 2], [0, 0, -1])
        assert c.approach[2, 3] == pytest.approx(c.contact[2, 3] + config.approach_distance)
        assert c.depart[2, 3] == pytest.approx(c.contact[2, 3] + config.lift_height)
        assert narrow.bottom + config.min_finger_height <= c.contact[2, 3] <= narrow.top
    wide = m.ObjectBox((0.7, 0.0, 0.7), (0.2, 0.15, 0.1))
    assert m.grasp_candidates(wide, config) == []


def test_a_box_the_fingers_have_held_is_no_wider_than_they_closed_on_it():
    config = m.GraspConfig()
    # a mug seen 7.3 x 6.9 cm after its place: no grasp fits; the fingers held it at 6.5 cm
    seen = m.ObjectBox((0.7, 0.0, 0.7), (0.073, 0.069, 0.1), yaw=0.4)
    assert m.grasp_candidates(seen, config) == []
    held = seen.gripped(0.065)
    np.testing.assert_allclose(held.extent, [0.073, 0.065, 0.1])
    assert held.yaw == seen.yaw and np.array_equal(held.center, seen.center)
    tops = [c for c in m.grasp_candidates(held, config) if c.kind == 'top']
    assert tops and all(c.width == pytest.approx(0.065) for c in tops)
    # no measure, or one wider than the view: the view stands
    for width in (None, 0.07, 0.0):
        assert seen.gripped(width) is seen


def test_plan_pick_and_place_on_a_table():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    home = np.array((2.8, 0.2, 0.0, -2.9, 0.0, 3.0, 0.785))  # stowed: touches the mast
    bottle = m.ObjectBox((0.73, -0.09, 0.70), (0.058, 0.058, 0.167))
    neighbour = m.ObjectBox((0.72, 0.10, 0.66), (0.08, 0.08, 0.09)).box(0.0, 'mug')
    table = m.support_box(bottle.bottom, bottle.center[:2], 0.30)
    plan = m.plan_pick(arm, home, bottle, [*BASE, neighbour], table)
    assert isinstance(plan, m.MotionPlan), plan
    grasp = m.tool_pose(arm, plan.approach[-1])
    assert np.linalg.norm(grasp[:3, 3] - plan.candidate.contact[:3, 3]) < 0.005
    lifted = m.tool_pose(arm, plan.depart[-1])
    assert lifted[2, 3] == pytest.approx(grasp[2, 3] + 0.10, abs=0.005)
    # the approach goes straight down: every waypoint within 5 mm of the vertical line
    for q in plan.approach:
        assert np.linalg.norm(m.tool_pose(arm, q)[:2, 3] - grasp[:2, 3]) < 0.005
    assert np.allclose(plan.transit[0], home)
    target = (0.70, 0.12, bottle.bottom)
    place = m.plan_place(arm, plan.depart[-1], target, plan.candidate, BASE, table)
    assert isinstance(place, m.MotionPlan), place
    release = m.tool_pose(arm, place.approach[-1])
    expected_z = bottle.bottom + plan.candidate.tool_height + m.GraspConfig().place_clearance
    np.testing.assert_allclose(release[:3, 3], (0.70, 0.12, expected_z), atol=0.005)
    # out of reach and blocked goals fail with their reasons
    far = m.ObjectBox((1.5, 0.0, 0.7), (0.05, 0.05, 0.1))
    fail = m.plan_pick(arm, home, far, BASE, m.support_box(0.65, (1.5, 0.0), 0.30))
    assert isinstance(fail, m.PlanFailure) and fail.reason == 'unreachable'
    wall = m.Box((0.5, -0.5, 0.0), (0.6, 0.5, 2.0), 'wall')
    fail = m.plan_pick(arm, home, bottle, [*BASE, wall], table)
    assert isinstance(fail, m.PlanFailure) and fail.reason == 'collision', fail
    # wider than the open gripper (less the free space beside the fingers) both ways: the
    # reason gives the sizes
    wide = m.ObjectBox((0.6, 0.0, bottle.center[2]), (0.077, 0.070, 0.1))
    fail = m.plan_pick(arm, home, wide, BASE, table)
    assert isinstance(fail, m.PlanFailure) and fail.reason == 'unreachable', fail
    assert '0.077 x 0.070 m across' in fail.message and 'takes 0.068 m' in fail.message, fail


def test_models_validate_their_inputs():
    with pytest.raises(ValueError, match='shape'):
        m.forward_kinematics(m.panda_arm(), np.zeros(6))
    with pytest.raises(ValueError, match='extent'):
        m.ObjectBox((0, 0, 0), (0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match='lower'):
        m.Box((0, 0, 1), (1, 1, 0))
    with pytest.raises(ValueError, match='velocity_scale'):
        m.panda_arm(velocity_scale=0.0)
    with pytest.raises(ValueError, match='approach_distance'):
        m.GraspConfig(approach_distance=-0.1)
    with pytest.raises(ValueError, match='waypoints'):
        m.time_parameterise(np.array([[np.nan] * 7]), 1.0, 1.0)


def test_plan_approach_finds_a_free_base_pose_facing_the_object_and_says_when_none():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    # a bottle on a 0.62 m table that fills x in [3, 4], y in [1, 2] of the map; walls around
    # the room [0, 6] x [0, 4]; the base (footprint radius 0.4) may not overlap either
    bottle = m.ObjectBox((3.3, 1.6, 0.62 + 0.1), (0.06, 0.06, 0.2), 0.0)

    def free(x, y, heading=0.0):
        in_room = 0.4 <= x <= 5.6 and 0.4 <= y <= 3.6
        off_table = not (3.0 - 0.4 <= x <= 4.0 + 0.4 and 1.0 - 0.4 <= y <= 2.0 + 0.4)
        return in_room and off_table

    found = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, free, start_xy=(1.0, 1.0))
    assert isinstance(found, m.Approach), found
    assert free(found.x, found.y)
    # facing the object, at the standoff it reports
    to_object = math.atan2(1.6 - found.y, 3.3 - found.x)
    assert abs(math.atan2(math.sin(to_object - found.heading),
                          math.cos(to_object - found.heading))) < 1e-9
    assert math.hypot(3.3 - found.x, 1.6 - found.y) == pytest.approx(found.standoff)
    # from the west, the side nearest the start and the table edge nearest the bottle
    assert found.x < 3.0
    # the plan grasps the bottle where it is: the grasp pose, back in the map frame
    grasp = m.base_to_map(found.x, found.y, found.heading) @ m.tool_pose(
        arm, found.plan.approach[-1])
    assert np.linalg.norm(grasp[:2, 3] - [3.3, 1.6]) < 0.03

    high = m.ObjectBox((3.3, 1.6, 1.9), (0.06, 0.06, 0.2), 0.0)  # above any reach
    failure = m.plan_approach(arm, np.array(m.CARRY), high, BASE, free)
    assert isinstance(failure, m.PlanFailure) and failure.reason == 'unreachable'
    assert 'reaches the object' in failure.message
    walled = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, lambda x, y, heading: False)
    assert isinstance(walled, m.PlanFailure) and 'no free base pose' in walled.message
    with pytest.raises(ValueError, match='headings'):
        m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, free, headings=0)


def off_table(x, y, heading=0.0):
    """Room for the base (footprint radius 0.4) off a 0.62 m table over [3, 4] x [1, 2]."""
    return not (3.0 - 0.4 <= x <= 4.0 + 0.4 and 1.0 - 0.4 <= y <= 2.0 + 0.4)


def pick_from(arm, obj, x, y, heading):
    """plan_pick of a map-frame object from the base pose (x, y, heading), its table under it."""
    to_base = np.linalg.inv(m.base_to_map(x, y, heading))
    local = m.ObjectBox((to_base @ [*obj.center, 1.0])[:3], obj.extent, obj.yaw - heading)
    table = m.support_box(local.bottom, local.center[:2], 0.30)
    return m.plan_pick(arm, np.array(m.CARRY), local, BASE, table)


def test_plan_approach_leaves_room_for_the_bases_heading_error():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    bottle = m.ObjectBox((3.3, 1.6, 0.62 + 0.1), (0.06, 0.06, 0.2), 0.0)
    found = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, off_table,
                            start_xy=(1.0, 1.6), heading_slack=0.15)
    assert isinstance(found, m.Approach), found
    # the pick is planned again from the pose turned by the slack, either way: both work
    for turn in (0.15, -0.15):
        assert isinstance(pick_from(arm, bottle, found.x, found.y, found.heading + turn),
                          m.MotionPlan)


def test_plan_approach_falls_back_to_a_pose_at_the_edge_of_reach_when_none_has_room():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    bottle = m.ObjectBox((3.3, 1.6, 0.62 + 0.1), (0.06, 0.06, 0.2), 0.0)
    robust = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, off_table,
                             start_xy=(1.0, 1.6), slack=0.05)
    assert isinstance(robust, m.Approach) and robust.short_of_slack == '', robust
    # no base can stop 0.5 m off a pose and still reach: every pose fails its slack, so the
    # first that plans as it is comes back, saying why it is short of the slack
    edge = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, off_table,
                           start_xy=(1.0, 1.6), slack=0.5)
    assert isinstance(edge, m.Approach), edge
    assert edge.short_of_slack.startswith('not from 0.50 m off the pose'), edge.short_of_slack
    assert off_table(edge.x, edge.y)
    assert isinstance(pick_from(arm, bottle, edge.x, edge.y, edge.heading), m.MotionPlan)
    # still a failure where no pose plans at all
    high = m.ObjectBox((3.3, 1.6, 1.9), (0.06, 0.06, 0.2), 0.0)
    failure = m.plan_approach(arm, np.array(m.CARRY), high, BASE, off_table, slack=0.05)
    assert isinstance(failure, m.PlanFailure) and failure.reason == 'unreachable'
    # out of planning time: one pose is tried, and the answer says how many of how many
    late = m.plan_approach(arm, np.array(m.CARRY), high, BASE, lambda x, y, heading: True,
                           slack=0.05, deadline=time.monotonic())
    assert isinstance(late, m.PlanFailure) and 'none of the 1 of 64 ' in late.message, late
    late = m.plan_approach(arm, np.array(m.CARRY), bottle, BASE, off_table,
                           start_xy=(1.0, 1.6), slack=0.05, deadline=time.monotonic())
    assert isinstance(late, m.Approach) and (late.x, late.y) == (robust.x, robust.y)


def test_ik_offers_other_arm_postures_for_one_pose():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    target = m.top_down_pose((0.6, -0.1, 0.75), 0.3)
    found = [r.q for r in m.ik_solutions(arm, target, (np.array(m.CARRY),)) if r.success]
    assert len(found) >= 2
    for q in found:
        assert m.pose_error(target, m.tool_pose(arm, q))[0] < 0.005
    # at least two of them are postures the planner tries separately (0.1 rad apart)
    spread = max(float(np.max(np.abs(a - b))) for a in found for b in found)
    assert spread > 0.1


def test_plan_place_approach_finds_where_to_stand_to_put_the_held_object_down():
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    bottle = m.ObjectBox((0.73, 0.0, 0.72), (0.058, 0.058, 0.167))
    held = m.plan_pick(arm, np.array(m.CARRY), bottle, BASE,
                       m.support_box(bottle.bottom, bottle.center[:2], 0.30))
    assert isinstance(held, m.MotionPlan), held

    free = off_table
    # the first spot is in the middle of the table, out of reach from every side
    spots = [(3.5, 1.5, 0.62), (3.2, 1.3, 0.62), (3.15, 1.8, 0.62)]
    found = m.plan_place_approach(arm, held.depart[-1], spots, held.candidate, BASE, free,
                                  start_xy=(1.0, 1.5))
    assert isinstance(found, m.Approach), found
    assert found.target is not None and tuple(found.target) in spots[1:]
    assert free(found.x, found.y)
    release = m.base_to_map(found.x, found.y, found.heading) @ m.tool_pose(
        arm, found.plan.approach[-1])
    assert np.linalg.norm(release[:2, 3] - found.target[:2]) < 0.01
    none = m.plan_place_approach(arm, held.depart[-1], spots[:1], held.candidate, BASE, free)
    assert isinstance(none, m.PlanFailure) and 'none of 1 spots' in none.message
    empty = m.plan_place_approach(arm, held.depart[-1], np.zeros((0, 3)), held.candidate, BASE,
                                  free)
    assert isinstance(empty, m.PlanFailure) and 'no free spot' in empty.message


def test_the_support_under_an_object_begins_at_the_perceived_tables_near_edge():
    # a 1.2 x 0.6 m table top at 0.62 m, its near edge 0.55 m ahead of the base, turned 90 deg
    table = m.ObjectBox((0.85, 0.0, 0.62), (1.2, 0.6, 0.01), math.pi / 2)
    on_table = (0.75, 0.1, 0.62)
    assert m.support_near(on_table, [table], 0.30) == pytest.approx(0.55 - 0.05)
    # nothing perceived, a point off every surface, or a surface above the point: assumed
    assert m.support_near(on_table, [], 0.30) == 0.30
    assert m.support_near((0.75, 0.9, 0.62), [table], 0.30) == 0.30
    shelf = m.ObjectBox((0.85, 0.0, 0.95), (1.2, 0.6, 0.01), math.pi / 2)
    assert m.support_near(on_table, [shelf], 0.30) == 0.30
    # a tray on the table: the table under it still counts, so the support reaches its edge
    tray = m.ObjectBox((0.9, 0.1, 0.64), (0.3, 0.4, 0.01), 0.0)
    assert m.support_near((0.9, 0.1, 0.64), [tray, table], 0.30) == pytest.approx(0.50)
    assert m.support_near((0.9, 0.1, 0.64), [tray], 0.30) == pytest.approx(0.75 - 0.05)
    # never nearer the base than assumed: a surface reaching under the base changes nothing
    long_table = m.ObjectBox((0.5, 0.0, 0.62), (1.2, 0.6, 0.01), 0.0)
    assert m.support_near(on_table, [long_table], 0.30) == 0.30
    # a pick over a table perceived to end 0.5 m ahead plans an elbow the assumed one refuses
    arm = m.panda_arm(MOUNT, 0.5, 0.5)
    box = m.ObjectBox((0.78, -0.05, 0.62 + 0.03), (0.06, 0.06, 0.06), 0.0)
    assumed = m.support_box(box.bottom, box.center[:2], 0.30)
    perceived = m.support_box(box.bottom, box.center[:2],
                              m.support_near((*box.center[:2], box.bottom), [table], 0.30))
    assert perceived.lower[0] == pytest.approx(0.50) and assumed.lower[0] == 0.30
    assert isinstance(m.plan_pick(arm, np.array(m.CARRY), box, BASE, perceived), m.MotionPlan)


def test_a_board_over_the_object_is_an_obstacle_the_pick_plans_against():
    # a shelf (turned 90 deg, 0.8 x 0.3 m boards at 0.475 and 0.95 m, its front 0.35 m ahead)
    # and a 0.2 m bottle on the middle board: only the upper board is over it
    lower = m.ObjectBox((0.5, 0.0, 0.475), (0.8, 0.3, 0.01), math.pi / 2)
    upper = m.ObjectBox((0.5, 0.0, 0.95), (0.8, 0.3, 0.01), math.pi / 2)
    table = m.ObjectBox((0.5, 2.0, 1.2), (0.8, 0.6, 0.01), 0.0)  # high, but elsewhere
    bottle = m.ObjectBox((0.5, 0.05, 0.575), (0.06, 0.06, 0.2))
    over = m.surfaces_over(bottle.center, bottle.top, [lower, upper, table])
    assert len(over) == 1 and over[0].name == 'the surface over it at 0.95 m'
    np.testing.assert_allclose(over[0].lower, (0.5 - 0.2, -0.45, 0.92))
    np.testing.assert_allclose(over[0].upper, (0.5 + 0.2, 0.45, 0.95))
    # a surface just above the object's top is taken for a misperceived piece of its support
    assert m.surfaces_over(bottle.center, 0.94, [upper]) == []
    # top-down, the forearm comes down through the board: the pick says so instead (this
    # arm, 0.3 m up on the base, reaches no object on such a board: docs/manipulation.md)
    arm = m.panda_arm(MOUNT)
    support = m.support_box(bottle.bottom, bottle.center[:2], 0.30)
    assert isinstance(m.plan_pick(arm, np.array(m.CARRY), bottle, BASE, support), m.MotionPlan)
    fail = m.plan_pick(arm, np.array(m.CARRY), bottle, BASE + over, support)
    assert isinstance(fail, m.PlanFailure) and fail.reason == 'collision', fail
    assert 'the surface over it at 0.95 m' in fail.message


def test_an_object_believed_inside_the_robot_is_told_apart_from_one_on_the_table():
    arm = m.panda_arm(MOUNT)
    body = [m.Box((-0.28, -0.21, 0.0), (0.28, 0.21, 0.30), 'base')]
    q = np.array(m.READY)
    hand = m.forward_kinematics(arm, q)[8, :3, 3]  # the hand link, not the gap of the fingers
    on_base = m.ObjectBox((0.2, 0.0, 0.28), (0.06, 0.06, 0.1))
    at_hand = m.ObjectBox(hand, (0.05, 0.05, 0.05))
    on_table = m.ObjectBox((0.75, 0.1, 0.70), (0.06, 0.06, 0.12))
    assert m.overlaps_robot(arm, q, on_base.box(), body)
    assert m.overlaps_robot(arm, q, at_hand.box(), body)
    assert not m.overlaps_robot(arm, q, on_table.box(), body)
    # where the hand was is free once the arm has turned away
    turned = q.copy()
    turned[0] = 1.5
    assert not m.overlaps_robot(arm, turned, at_hand.box(), body)


def test_a_shelf_board_under_another_is_not_a_surface_to_place_on():
    from embodied_aif.nodes.manipulator import covered
    from embodied_aif_msgs.msg import ObjectBelief

    def board(x, y, z, length, width, yaw=0.0):
        b = ObjectBelief()
        b.pose.pose.position.x, b.pose.pose.position.y, b.pose.pose.position.z = x, y, z
        b.pose.pose.orientation.z, b.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        b.extent.x, b.extent.y = length, width
        return b

    low, high = board(0.8, 1.7, 0.475, 0.95, 0.38), board(0.8, 1.72, 0.95, 1.0, 0.44)
    table = board(1.2, -0.84, 0.62, 1.1, 0.66)
    boards = [low, high, table]
    assert covered(low, boards) and not covered(high, boards) and not covered(table, boards)
    # a narrow board turned across the lower one still covers its centre; one beside it not
    assert covered(low, [low, board(0.8, 1.7, 0.95, 1.0, 0.1, yaw=math.pi / 2)])
    assert not covered(low, [low, board(0.8, 2.3, 0.95, 1.0, 0.4)])
