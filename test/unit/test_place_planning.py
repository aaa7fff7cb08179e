"""EFE planning over the places graph and the local controller."""
import copy
import dataclasses
import math

import numpy as np
import pytest

from embodied_aif.models.cognitive_map import (
    BLOCKED,
    CognitiveMap,
    MapConfig,
    add_hypothesised_place,
    add_imagined_edge,
    clear_blocked,
    mark_blocked,
    mark_traversed,
    observe,
    update,
)
from embodied_aif.models.local_control import (
    ControllerConfig,
    local_command,
    scan_to_base,
    segment_clear,
    turn_to_heading,
)
from embodied_aif.models.place_planning import (
    TERMINAL_STATUSES,
    Goal,
    NavigatorConfig,
    NavigatorState,
    PlanConfig,
    edge_novelty,
    navigation_step,
    plan,
    plan_route,
    relocalisation_move,
    shortcut_index,
)

CFG = MapConfig(radius=0.9)


def make_map(xy, edges, current=0, codes=None):
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if codes is None:
        codes = np.eye(n)
    cmap = CognitiveMap(poses=np.column_stack([xy, np.zeros(n)]), codes=np.asarray(codes, float),
                        radius=np.full(n, CFG.radius), visits=np.ones(n, dtype=int),
                        belief=np.eye(n)[current], current=current)
    for i, j in edges:
        cmap = mark_traversed(cmap, i, j, CFG)
    return cmap


def corridor(n=12, spacing=2.0):
    return make_map([(spacing * i, 0.0) for i in range(n)], [(i, i + 1) for i in range(n - 1)])


def test_far_goal_pulls_through_the_whole_graph():
    cmap = corridor()
    p = plan(cmap, Goal(pose=(22.0, 0.0)), map_config=CFG)
    assert p.status == 'to_goal' and p.next_place == 1
    assert p.path == list(range(12))
    # values decrease monotonically towards the goal: the preference was propagated backward
    assert np.all(np.diff(p.values) < 0)
    assert p.q_actions.sum() == pytest.approx(1.0)
    assert p.actions[int(np.argmax(p.q_actions))] == 1
    assert plan(cmap, Goal(place=0), map_config=CFG).status == 'goal_reached'


def ring():
    #  3 --- 4
    #  |     |
    #  0 -1- 2      short way 0-1-2, long way 0-3-4-2
    xy = [(0, 0), (2, 0), (4, 0), (0, 2), (4, 2)]
    return make_map(xy, [(0, 1), (1, 2), (0, 3), (3, 4), (4, 2)])


def test_blocked_edge_triggers_a_detour():
    cmap = ring()
    goal = Goal(place=2)
    assert plan(cmap, goal, map_config=CFG).path == [0, 1, 2]
    blocked = mark_blocked(cmap, 1, 2, CFG)
    p = plan(blocked, goal, map_config=CFG)
    assert p.path == [0, 3, 4, 2] and p.status == 'to_goal'
    # from place 1 (where the door was found closed) the robot turns back
    assert plan(blocked, goal, map_config=CFG, start=1).next_place == 0


def test_a_door_travelled_many_times_then_found_closed_is_detoured_after_one_failure():
    # 0 -1- 2 is a door used six times; one failed attempt must still turn the plan round
    # (success evidence saturates); a stuck controller is not a wall: the way seen clear
    # again (twice) from place 1 makes the short way preferred once more
    cmap = ring()
    for _ in range(5):
        cmap = mark_traversed(cmap, 1, 2, CFG)
    goal = Goal(place=2)
    assert plan(cmap, goal, map_config=CFG).path == [0, 1, 2]
    closed = mark_blocked(cmap, 1, 2, CFG)
    assert plan(closed, goal, map_config=CFG).path == [0, 3, 4, 2]
    assert plan(closed, goal, map_config=CFG, start=1).next_place == 0
    # without the saturation the well-travelled door would keep being tried
    unsaturated = MapConfig(radius=0.9, max_success=1000.0)
    stubborn = ring()
    for _ in range(5):
        stubborn = mark_traversed(stubborn, 1, 2, unsaturated)
    stubborn = mark_blocked(stubborn, 1, 2, unsaturated)
    assert plan(stubborn, goal, map_config=CFG).path == [0, 1, 2]
    reopened = clear_blocked(clear_blocked(closed, 1, 2, CFG), 1, 2, CFG)
    assert plan(reopened, goal, map_config=CFG).path == [0, 1, 2]


def test_exploration_goes_to_the_nearest_hypothesised_place_then_stops():
    cmap = corridor(4)
    explored = plan(cmap, None, map_config=CFG)
    assert explored.status == 'explored' and explored.next_place == -1
    cmap, far = add_hypothesised_place(cmap, (6.0, 2.0), 3, CFG)
    cmap, near = add_hypothesised_place(cmap, (0.0, 2.0), 0, CFG)
    p = plan(cmap, None, map_config=CFG)
    assert p.status == 'exploring' and p.path == [0, near]
    p3 = plan(cmap, None, map_config=CFG, start=3)
    assert p3.path == [3, far]


def test_image_goal_and_pose_goal_outside_the_map():
    codes = np.random.default_rng(0).normal(size=(12, 8))
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    cmap = make_map([(2.0 * i, 0.0) for i in range(12)], [(i, i + 1) for i in range(11)],
                    codes=codes)
    p = plan(cmap, Goal(code=codes[7] + 0.05), map_config=CFG)
    assert p.status == 'to_goal' and p.path[-1] == 7
    outside = Goal(pose=(40.0, 10.0))
    p = plan(cmap, outside, map_config=CFG)
    assert p.status == 'goal_unreachable' and 'best place 11' in p.reason
    cmap, hyp = add_hypothesised_place(cmap, (24.0, 0.0), 11, CFG)
    p = plan(cmap, outside, map_config=CFG)
    assert p.status == 'exploring_to_goal' and p.path[-1] == hyp


def test_imagined_shortcut_is_tried_when_it_is_worth_it():
    # a long corridor 0..5 and back along y = 2 (6..10); an imagined link 0 -- 10
    xy = [(2.0 * i, 0.0) for i in range(6)] + [(2.0 * (10 - i), 2.0) for i in range(6, 11)]
    edges = [(i, i + 1) for i in range(10)]
    cmap = make_map(xy, edges, current=0)
    cmap = add_imagined_edge(cmap, 0, 10, CFG)
    p = plan(cmap, Goal(place=10), map_config=CFG)
    assert p.path == [0, 10]
    assert edge_novelty(0.5, 0.5) == pytest.approx(1.0)
    # hand value: p = 5.5 / 6, (1/5.5 - 1/6) p + (1/0.5 - 1/6)(1 - p)
    assert edge_novelty(5.5, 0.5) == pytest.approx(
        (1 / 5.5 - 1 / 6) * 5.5 / 6 + (2 - 1 / 6) * 0.5 / 6)
    assert edge_novelty(5.0, 0.0) == 0.0


def test_relocalisation_move_separates_aliased_hypotheses():
    rng = np.random.default_rng(5)
    codes = rng.normal(size=(3, 16))
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)

    def code_at(x):
        if x < 2 or 4 <= x < 6:
            return codes[0]
        return codes[1] if x < 4 else codes[2]

    cfg = MapConfig(radius=1.5)
    cmap = CognitiveMap()
    for x in np.arange(0.0, 8.01, 0.25):
        cmap, _ = update(cmap, (x, 0.0), code_at(x), cfg)
    cmap, ev = update(cmap, (30.0, 0.0), code_at(4.5), cfg)
    assert cmap.lost
    # places 0, 1 and 3 (x = 0, 1.75, 5.25) all look like room 0: three equal hypotheses
    live = np.flatnonzero(cmap.hypotheses > 0.01)
    assert live.tolist() == [0, 1, 3]
    move = relocalisation_move(cmap, (30.0, 0.0), map_config=cfg)
    # the best move makes the three predicted observations all different: gain ln 3
    assert move.info_gain == pytest.approx(math.log(3), abs=1e-6)
    assert move.efe == pytest.approx(0.1 * np.linalg.norm(move.displacement) - math.log(3))
    assert plan(cmap, None, map_config=cfg).status == 'lost'
    # carry the move out (in odometry), observe, and the robot knows where it is again
    dx, dy = move.displacement
    cmap, ev = update(cmap, (30.0 + dx, dy), code_at(4.5 + dx), cfg)
    assert ev.kind == 'relocalised' and not cmap.lost
    assert abs(cmap.poses[ev.place, 0] - (4.5 + dx)) <= cfg.radius


def test_bad_goals_raise():
    with pytest.raises(ValueError):
        Goal()
    with pytest.raises(ValueError):
        Goal(pose=(np.nan, 1.0))
    with pytest.raises(ValueError, match='goal place 99'):
        plan(corridor(3), Goal(place=99), map_config=CFG)
    with pytest.raises(ValueError):
        PlanConfig(goal_sigma=0.0)


# ---- local controller -------------------------------------------------------------------

ANGLES = np.linspace(-math.pi, math.pi, 360, endpoint=False)
CTRL = ControllerConfig()


def wall_scan(distance, half_width_deg=60.0, far=np.inf):
    ranges = np.full(360, far)
    front = np.abs(np.degrees(ANGLES)) <= half_width_deg
    ranges[front] = distance / np.cos(ANGLES[front])
    return ranges


def test_free_space_drives_forward_and_turns_toward_goal():
    v, w = local_command(np.full(360, np.inf), ANGLES, (3.0, 0.0), 0.05, 8.0, CTRL)
    assert v > 0.3 and abs(w) < 0.2
    v, w = local_command(np.full(360, np.inf), ANGLES, (2.0, 1.5), 0.05, 8.0, CTRL)
    assert v > 0 and w > 0
    v, w = local_command(np.full(360, np.inf), ANGLES, (-2.0, -0.5), 0.05, 8.0, CTRL)
    assert v == 0.0 and w < 0
    assert local_command(np.full(360, np.inf), ANGLES, (0.1, 0.0), 0.05, 8.0, CTRL) == (0.0, 0.0)


def test_wall_ahead_and_nan_ahead_stop_forward_motion():
    v, _ = local_command(wall_scan(0.4), ANGLES, (3.0, 0.0), 0.05, 8.0, CTRL)
    assert v == 0.0
    nan_front = wall_scan(np.nan)
    v, _ = local_command(nan_front, ANGLES, (3.0, 0.0), 0.05, 8.0, CTRL)
    assert v == 0.0
    with pytest.raises(ValueError):
        local_command(np.full(360, np.inf), ANGLES, (np.nan, 0.0), 0.05, 8.0, CTRL)


def test_docking_up_to_an_edge_does_not_crawl():
    # docking (the navigator's footprint, slow, tight tolerance) to a point 6 cm short of where
    # a table's edge comes within the footprint: only the slowest arc is clear of it over the
    # horizon, and slowing that one down again near the goal had crawled at 8 mm/s
    dock = ControllerConfig(max_v=0.2, robot_radius=0.32, margin=0.0, goal_tolerance=0.015)
    edge = 0.32 + 0.06 + 0.02
    x, steps = 0.0, 0
    while steps < 200:
        v, w = local_command(wall_scan(edge - x), ANGLES, (0.06 - x, 0.0), 0.05, 8.0, dock)
        if (v, w) == (0.0, 0.0):
            break
        assert v >= 0.2 * dock.max_v - 1e-9, (x, v)  # never slower than the slowest arc
        x, steps = x + v * 0.1, steps + 1
    assert abs(0.06 - x) <= dock.goal_tolerance and steps <= 20, (x, steps)


def segment_scan(segments, x, y, yaw, beams=ANGLES):
    """Ranges from (x, y, yaw) to wall segments ((x0, y0), (x1, y1)) on the given beams."""
    segs = np.asarray(segments, dtype=float)
    d = np.column_stack([np.cos(beams + yaw), np.sin(beams + yaw)])
    a, e = segs[:, 0], segs[:, 1] - segs[:, 0]
    ao = a - np.array([x, y])
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (ao[None, :, 0] * e[None, :, 1] - ao[None, :, 1] * e[None, :, 0]) / den
        s = (ao[None, :, 0] * d[:, None, 1] - ao[None, :, 1] * d[:, None, 0]) / den
    ok = (np.abs(den) > 1e-12) & (t > 0) & (s >= 0) & (s <= 1)
    return np.where(ok, t, np.inf).min(axis=1)


def test_a_corner_just_ahead_does_not_trap_the_controller():
    # a box whose corner is ahead-right, the goal straight ahead along its top side: every
    # forward arc grazes the corner at first, so turning to the goal alone would dead-lock
    ctrl = ControllerConfig(robot_radius=0.36, margin=0.05)
    safe = ctrl.robot_radius + ctrl.margin
    box = [((0.25, -0.35), (3.0, -0.35)), ((0.25, -0.35), (0.25, -2.0))]
    x, y, yaw = 0.0, 0.0, 0.0
    goal = np.array([2.5, 0.05])
    closest = np.inf
    for _ in range(300):
        ranges = segment_scan(box, x, y, yaw)
        closest = min(closest, float(ranges.min()))
        c, s = math.cos(yaw), math.sin(yaw)
        local = ((goal[0] - x) * c + (goal[1] - y) * s, -(goal[0] - x) * s + (goal[1] - y) * c)
        v, w = local_command(ranges, ANGLES, local, 0.05, 8.0, ctrl)
        if (v, w) == (0.0, 0.0):
            break
        x, y, yaw = x + v * math.cos(yaw) * 0.1, y + v * math.sin(yaw) * 0.1, yaw + w * 0.1
    assert math.hypot(goal[0] - x, goal[1] - y) <= ctrl.goal_tolerance + 1e-9
    assert closest >= safe - 0.05


def integrate(v, w, seconds, dt=0.01):
    x = y = th = 0.0
    out = []
    for _ in range(int(seconds / dt)):
        x += v * math.cos(th) * dt
        y += v * math.sin(th) * dt
        th += w * dt
        out.append((x, y))
    return np.array(out)


def test_commands_never_drive_into_random_clutter():
    rng = np.random.default_rng(7)
    moved = 0
    for _ in range(60):
        obstacles = rng.uniform(-3, 3, size=(rng.integers(1, 6), 2))
        obstacles = obstacles[np.linalg.norm(obstacles, axis=1) > CTRL.robot_radius + 0.1]
        # ray-cast point obstacles of radius 0.15 into a scan
        ranges = np.full(360, np.inf)
        for ox, oy in obstacles:
            d = math.hypot(ox, oy)
            bearing = math.atan2(oy, ox)
            diff = np.abs(np.angle(np.exp(1j * (ANGLES - bearing))))
            hit = diff <= math.asin(min(1.0, 0.15 / d))
            ranges[hit] = np.minimum(ranges[hit], d - 0.15)
        goal = rng.uniform(-4, 4, size=2)
        v, w = local_command(ranges, ANGLES, goal, 0.05, 8.0, CTRL)
        assert 0.0 <= v <= CTRL.max_v and abs(w) <= CTRL.max_w
        if v > 0:
            moved += 1
            path = integrate(v, w, CTRL.horizon)
            hit = np.isfinite(ranges)
            pts = np.column_stack([ranges[hit] * np.cos(ANGLES[hit]),
                                   ranges[hit] * np.sin(ANGLES[hit])])
            if len(pts):
                gap = np.linalg.norm(path[:, None] - pts[None], axis=2).min()
                now = np.linalg.norm(pts, axis=1).min()
                # outside the safety radius, or (already inside it) never closer than now
                assert gap >= min(CTRL.robot_radius + CTRL.margin, now) - 0.01
    assert moved > 20


# ---- closed loop in a kinematic 2-D building: map + plan + local control ------------------

BEAMS = np.linspace(-math.pi, math.pi, 180, endpoint=False)


def building(n=2, size=4.0, door=1.2):
    side = n * size
    segs = [((0, 0), (side, 0)), ((side, 0), (side, side)), ((side, side), (0, side)),
            ((0, side), (0, 0))]
    for k in range(1, n):
        c = k * size
        for r in range(n):
            lo, hi = r * size, (r + 1) * size
            mid = (lo + hi) / 2
            segs += [((c, lo), (c, mid - door / 2)), ((c, mid + door / 2), (c, hi))]
            segs += [((lo, c), (mid - door / 2, c)), ((mid + door / 2, c), (hi, c))]
    return np.array(segs, dtype=float)


def raycast(segs, x, y, yaw, rmax=8.0):
    r = segment_scan(segs, x, y, yaw, BEAMS)
    return np.where(r < rmax, r, np.inf)


class Robot:
    """A unicycle in a walled building running the map (observe) and the navigator step."""

    def __init__(self, segs, codes, pose, n):
        self.segs, self.codes, self.n = segs, codes, n
        self.x, self.y, self.yaw = pose
        self.cfg = NavigatorConfig(map=MapConfig(radius=1.5))
        self.ctrl = self.cfg.control
        self.cmap, self.nav = CognitiveMap(), NavigatorState()
        self.rooms, self.min_range, self.travelled = set(), np.inf, 0.0
        self.rng = np.random.default_rng(1)
        self.odom_error = np.zeros(3)  # odometry = true pose + this
        self.statuses = []

    @property
    def blocked(self):
        return self.nav.blocked_marks

    def room(self):
        return int(min(self.x // 4, self.n - 1) + self.n * min(self.y // 4, self.n - 1))

    def run(self, goal=None, steps=3000):
        for _ in range(steps):
            pose = (self.x, self.y, self.yaw)
            ranges = raycast(self.segs, *pose)
            self.min_range = min(self.min_range, ranges.min())
            self.rooms.add(self.room())
            code = self.codes[self.room()] + 0.02 * self.rng.normal(size=self.codes.shape[1])
            odom = np.asarray(pose) + self.odom_error
            self.cmap, _ = observe(self.cmap, odom, code, ranges, BEAMS, 0.05, 8.0, self.cfg.map)
            self.cmap, self.nav, (v, w), info = navigation_step(
                self.cmap, self.nav, odom, ranges, BEAMS, 0.05, 8.0, goal, self.cfg)
            self.statuses.append(info['status'])
            if info['status'] in TERMINAL_STATUSES:
                return info['plan']
            self.x += v * math.cos(self.yaw) * 0.1
            self.y += v * math.sin(self.yaw) * 0.1
            self.yaw += w * 0.1
            self.travelled += v * 0.1
        return None


@pytest.fixture(scope='module')
def explored():
    """A robot that explored the 2x2 building once (the tests get copies)."""
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(4, 16))
    robot = Robot(building(2), codes / np.linalg.norm(codes, axis=1, keepdims=True),
                  (1.5, 1.5, 0.3), 2)
    plan_at_end = robot.run(None, steps=2500)
    return robot, plan_at_end


def test_explores_building_reaches_goal_and_detours_around_a_closed_door(explored):
    robot, p = copy.deepcopy(explored)
    segs = robot.segs
    assert p is not None and p.status == 'explored'
    assert robot.rooms == {0, 1, 2, 3}
    assert robot.min_range > robot.ctrl.robot_radius  # never touched a wall
    assert np.all(robot.cmap.visits > 0)
    # every place lies inside the building and places are spread over all rooms
    assert np.all((robot.cmap.poses[:, :2] > 0) & (robot.cmap.poses[:, :2] < 8))
    # a pose goal in room 1 (bottom right)
    start_xy = np.array([robot.x, robot.y])
    start_travel = robot.travelled
    p = robot.run(Goal(pose=(6.0, 2.0)), steps=1500)
    assert p is not None and p.status == 'goal_reached'
    assert math.hypot(robot.x - 6.0, robot.y - 2.0) <= robot.cfg.goal_tolerance + 0.05
    first_leg = robot.travelled - start_travel
    # a sensible route: at most twice the straight line plus a doorway detour
    assert first_leg < 2.0 * np.linalg.norm(start_xy - [6.0, 2.0]) + 4.0
    # close the door between rooms 0 and 1 (x = 4, y in [1.4, 2.6]), then go to room 0
    robot.segs = np.vstack([segs, [[[4.0, 1.3], [4.0, 2.7]]]])
    blocked_before = robot.blocked
    p = robot.run(Goal(pose=(2.0, 2.0)), steps=3000)
    assert p is not None and p.status == 'goal_reached'
    assert robot.room() == 0 and robot.min_range > robot.ctrl.robot_radius
    # the door was tried, found blocked, and the robot went round through rooms 3 and 2
    assert robot.blocked > blocked_before
    assert any(e.kind == BLOCKED for e in robot.cmap.edges.values())
    assert {2, 3} <= robot.rooms


def test_odometry_jump_relocalises_by_epistemic_moves_then_reaches_goal(explored):
    robot, p = copy.deepcopy(explored)
    assert p.status == 'explored'
    n_places = robot.cmap.num_places
    robot.odom_error = np.array([20.0, -7.0, 0.0])  # the odometry jumps far away
    robot.statuses = []
    here = robot.room()
    goal_xy = (6.0 if here in (0, 2) else 2.0, 6.0 if here in (0, 1) else 2.0)
    p = robot.run(Goal(pose=goal_xy), steps=1500)
    # every place of a room looks the same: the robot was lost and moved to find out where
    assert 'relocalising' in robot.statuses
    assert p is not None and p.status == 'goal_reached'
    assert math.hypot(robot.x - goal_xy[0], robot.y - goal_xy[1]) < 0.5
    # the odometry was re-based (offset ~ -error) and no phantom places were grown
    np.testing.assert_allclose(robot.cmap.offset[:2], -robot.odom_error[:2], atol=0.3)
    assert robot.cmap.num_places <= n_places + 2


def test_navigation_step_bad_input_gives_clear_statuses():
    cmap = corridor(4)
    free = np.full(360, np.inf)
    cfg = NavigatorConfig(map=CFG, stuck_steps=3, max_blocked=2)
    # NaN odometry: stand still, say why
    _, _, cmd, info = navigation_step(cmap, NavigatorState(), (np.nan, 0.0, 0.0), free, ANGLES,
                                      0.05, 8.0, Goal(place=3), cfg)
    assert cmd == (0.0, 0.0) and info['status'] == 'invalid_input'
    # a goal far outside the known world with nothing to explore: unreachable, with a reason
    _, _, cmd, info = navigation_step(cmap, NavigatorState(), (0.0, 0.0, 0.0), free, ANGLES,
                                      0.05, 8.0, Goal(pose=(50.0, 50.0)), cfg)
    assert cmd == (0.0, 0.0) and info['status'] == 'goal_unreachable' and info['reason']
    # an all-NaN scan (blind): never drives forward; the edges get blocked, then it gives up
    blind = np.full(360, np.nan)
    state, statuses = NavigatorState(), []
    for _ in range(40):
        cmap, state, (v, w), info = navigation_step(cmap, state, (0.0, 0.0, 0.0), blind, ANGLES,
                                                    0.05, 8.0, Goal(place=3), cfg)
        assert v == 0.0
        statuses.append(info['status'])
        if info['status'] == 'goal_unreachable':
            break
    assert 'blocked' in statuses and statuses[-1] == 'goal_unreachable'
    assert 'blocked attempts' in info['reason']


def test_scan_to_base_moves_the_origin_to_the_base():
    angles = np.array([0.0, math.pi / 2, math.pi, -math.pi / 2])
    ranges = np.array([1.0, np.nan, np.inf, 0.5])
    r, a = scan_to_base(ranges, angles, (0.2, 0.0, 0.0), 0.05, 8.0)
    assert r[0] == pytest.approx(1.2) and a[0] == pytest.approx(0.0)
    # NaN: an obstacle at range_min from the laser (unknown is unsafe)
    assert r[1] == pytest.approx(math.hypot(0.2, 0.05))
    assert np.isinf(r[2]) and abs(a[2]) == pytest.approx(math.pi)
    assert r[3] == pytest.approx(math.hypot(0.2, 0.5)) and a[3] < 0
    # a laser turned by 90 degrees: its forward beam points along the base's +y
    r, a = scan_to_base(np.array([1.0]), np.array([0.0]), (0.0, 0.0, math.pi / 2), 0.05, 8.0)
    assert r[0] == pytest.approx(1.0) and a[0] == pytest.approx(math.pi / 2)


# ---- straight-line shortcuts along the planned route --------------------------------------

DOOR_WALL = [((2.0, -3.0), (2.0, -0.6)), ((2.0, 0.6), (2.0, 3.0))]  # a 1.2 m door at x = 2


def test_segment_clear_needs_footprint_room_and_a_seen_free_line():
    ranges = segment_scan(DOOR_WALL, 0.0, 0.0, 0.0)
    # straight through the middle of the door: 0.6 m each side, room for 0.45
    assert segment_clear(ranges, ANGLES, (3.5, 0.0), 0.05, 8.0, 0.45)
    # too close to the door jamb, or through the wall itself
    assert not segment_clear(ranges, ANGLES, (3.5, 0.8), 0.05, 8.0, 0.45)
    assert not segment_clear(ranges, ANGLES, (3.5, -2.0), 0.05, 8.0, 0.1)
    # nothing in the way but the end lies beyond the laser's reach: not known free
    assert not segment_clear(np.full(360, np.inf), ANGLES, (9.0, 0.0), 0.05, 8.0, 0.45)
    # NaN beams along the line are unknown (unsafe)
    blind = np.full(360, np.inf)
    blind[np.abs(ANGLES) < 0.2] = np.nan
    assert not segment_clear(blind, ANGLES, (2.0, 0.0), 0.05, 8.0, 0.0)
    with pytest.raises(ValueError, match='end_xy'):
        segment_clear(ranges, ANGLES, (np.nan, 0.0), 0.05, 8.0, 0.45)


def zigzag_map():
    """Three places in a row, the edges' stored paths wiggling sideways (as driven)."""
    cmap = make_map([(0.0, 0.0), (2.0, 0.0), (4.0, 0.0)], [])
    cmap = mark_traversed(cmap, 0, 1, CFG, waypoints=((0.5, 0.6), (1.0, -0.6), (1.5, 0.6)))
    return mark_traversed(cmap, 1, 2, CFG, waypoints=((2.5, -0.6), (3.0, 0.6), (3.5, -0.6)))


def test_plan_route_chains_the_stored_paths_and_ends_at_a_nearby_goal():
    cmap = zigzag_map()
    route = plan_route(cmap, [0, 1, 2])
    assert route.shape == (8, 2)
    np.testing.assert_allclose(route[3], [2.0, 0.0])
    np.testing.assert_allclose(route[-1], [4.0, 0.0])
    # backwards the stored paths are reversed
    np.testing.assert_allclose(plan_route(cmap, [2, 1])[0], [3.5, -0.6])
    with_goal = plan_route(cmap, [0, 1, 2], Goal(pose=(4.5, 0.3)))
    np.testing.assert_allclose(with_goal[-1], [4.5, 0.3])
    assert len(plan_route(cmap, [0, 1, 2], Goal(pose=(9.0, 0.0)))) == 8  # too far: not added
    with pytest.raises(ValueError):
        plan_route(cmap, [0])


def test_shortcut_takes_the_farthest_route_point_in_clear_view():
    cmap = zigzag_map()
    route = plan_route(cmap, [0, 1, 2])
    cfg = NavigatorConfig(map=CFG, control=CTRL, shortcut=4.0)
    pose = np.array([0.0, 0.0, 0.0])
    free = np.full(360, np.inf)
    # open floor: straight to the last point within 4 m (the place at x = 4)
    assert shortcut_index(route, 0, pose, free, ANGLES, 0.05, 8.0, cfg) == 7
    # a wall across at x = 2.5: the place at x = 2 (0.5 m short of it) is the farthest
    ranges = segment_scan([((2.5, -3.0), (2.5, 3.0))], 0.0, 0.0, 0.0)
    assert shortcut_index(route, 0, pose, ranges, ANGLES, 0.05, 8.0, cfg) == 3
    # disabled, or nothing clear: stays where it was
    off = NavigatorConfig(map=CFG, control=CTRL, shortcut=0.0)
    assert shortcut_index(route, 2, pose, free, ANGLES, 0.05, 8.0, off) == 2
    boxed = np.full(360, 0.3)
    assert shortcut_index(route, 2, pose, boxed, ANGLES, 0.05, 8.0, cfg) == 2
    with pytest.raises(ValueError, match='shortcut'):
        NavigatorConfig(shortcut=-1.0)


def test_navigation_step_cuts_across_the_wiggles_and_stops_at_the_goal_point():
    cmap = zigzag_map()
    cfg = NavigatorConfig(map=CFG, control=CTRL)
    free = np.full(360, np.inf)
    goal = Goal(pose=(3.8, 0.2))
    cmap, state, (v, w), info = navigation_step(cmap, NavigatorState(), (0.0, 0.0, 0.0), free,
                                                ANGLES, 0.05, 8.0, goal, cfg)
    # the goal point is in clear view: it drives there straight, not along the wiggles
    assert info['status'] == 'approaching_goal' and state.approaching
    assert v > 0.3 and abs(w) < 0.3
    # without the shortcut (stored paths only) it follows the route, aiming at the goal
    # straight ahead, not at the first wiggle at (0.5, 0.6)
    _, route_state, (v, w), info = navigation_step(
        cmap, NavigatorState(), (0.0, 0.0, 0.0), free, ANGLES, 0.05, 8.0, goal,
        dataclasses.replace(cfg, shortcut=0.0))
    assert info['status'] == 'to_goal' and route_state.target == 1
    # within goal_tolerance of the goal point: reached, even though the map's current place
    # (0, far behind) is not the goal's place
    _, state, cmd, info = navigation_step(cmap, state, (3.6, 0.1, 0.0), free, ANGLES, 0.05,
                                          8.0, goal, cfg)
    assert info['status'] == 'goal_reached' and cmd == (0.0, 0.0)
    assert info['plan'].status == 'goal_reached'


def test_progress_along_the_route_does_not_jump_through_a_wall():
    # the route goes out of the room through a far door and comes back to just behind the
    # wall beside the robot: the nearest route point is behind the wall, not the way to go
    cmap = make_map([(0.0, 0.0), (1.0, -3.0)], [])
    back = ((0.0, 3.0), (3.0, 3.0), (3.0, -3.0), (1.0, -3.0), (0.6, -0.8))
    cmap = mark_traversed(cmap, 0, 1, CFG, waypoints=back[:-1])
    wall = [((-3.0, -0.5), (2.0, -0.5))]
    ranges = segment_scan(wall, 0.0, 0.0, 0.0)
    cfg = NavigatorConfig(map=CFG, control=CTRL)
    state = NavigatorState(target=1, route=(*back, (1.0, -3.0)), route_index=0, origin=0,
                           last_plan=plan(cmap, Goal(place=1), map_config=CFG))
    _, state, (v, w), _ = navigation_step(cmap, state, (0.0, 0.0, 0.0), ranges, ANGLES, 0.05,
                                          8.0, Goal(place=1), cfg)
    assert state.route_index <= 1  # still heading out through the door at y = 3
    assert w >= 0.0  # turning left (towards +y), not right into the wall


def test_relocalisation_moves_prefer_ones_the_scan_shows_drivable():
    codes = np.eye(6)[[0, 0, 1, 0, 0, 2]]
    cmap = make_map([(0.0, 0.0), (2.0, 0.0), (4.0, 0.0), (0.0, 2.0), (2.0, 2.0), (4.0, 2.0)],
                    [], codes=codes)
    cmap = dataclasses.replace(cmap, current=-1, hypotheses=np.array([0.5, 0.5, 0, 0, 0, 0]),
                               lost_anchor=np.zeros(3))
    free = relocalisation_move(cmap, (0.0, 0.0, 0.0), map_config=CFG)
    assert free.info_gain > 0
    # whatever the best move was, a predicate that refuses it yields another informative one
    refused = tuple(np.round(free.displacement, 6))
    other = relocalisation_move(cmap, (0.0, 0.0, 0.0), map_config=CFG,
                                drivable=lambda d: tuple(np.round(d, 6)) != refused)
    assert other.info_gain > 0 and not np.allclose(other.displacement, free.displacement)
    # refusing every move falls back to the best one
    fallback = relocalisation_move(cmap, (0.0, 0.0, 0.0), map_config=CFG,
                                   drivable=lambda d: False)
    np.testing.assert_allclose(fallback.displacement, free.displacement)


def test_a_goal_point_unreachable_from_its_place_is_tried_from_another_one():
    # the goal lies within the radius of both places; from place 0 it cannot be reached (the
    # robot makes no progress, e.g. a wall in between): the next try is from place 1
    cmap = make_map([(0.0, 0.0), (1.6, 0.0)], [(0, 1)])
    cfg = NavigatorConfig(map=CFG, control=CTRL, stuck_steps=5)
    goal = Goal(pose=(0.8, 0.4))
    free = np.full(360, np.inf)
    state, statuses = NavigatorState(), []
    for _ in range(12):
        cmap, state, _, info = navigation_step(cmap, state, (0.0, 0.0, 0.0), free, ANGLES,
                                               0.05, 8.0, goal, cfg)
        statuses.append(info['status'])
        if info['status'] == 'blocked':
            break
    assert statuses[0] == 'approaching_goal' and statuses[-1] == 'blocked'
    assert state.approach_failed == (0,) and state.blocked_marks == 1
    cmap, state, _, info = navigation_step(cmap, state, (0.0, 0.0, 0.0), free, ANGLES, 0.05,
                                           8.0, goal, cfg)
    assert info['status'] == 'to_goal' and state.target == 1
    # the plan itself: place 0 excluded no longer satisfies the goal
    assert plan(cmap, goal, map_config=CFG, exclude=(0,)).path == [0, 1]
    assert plan(cmap, goal, map_config=CFG).status == 'goal_reached'


def test_goal_behind_a_side_wall_in_a_corridor_turns_round_instead_of_dead_locking():
    # a 0.9 m corridor along x, the goal behind the robot: facing a side wall half-way round,
    # turning away from the nearest obstacle would undo every turn towards the goal; turning
    # in place all the way round, then driving, must reach it
    ctrl = ControllerConfig(robot_radius=0.36, margin=0.05)
    walls = [((-6.0, -0.45), (6.0, -0.45)), ((-6.0, 0.45), (6.0, 0.45))]
    x, y, yaw = 0.0, -0.03, 0.0
    goal = np.array([-2.0, 0.0])
    for _ in range(300):
        ranges = segment_scan(walls, x, y, yaw)
        c, s = math.cos(yaw), math.sin(yaw)
        local = ((goal[0] - x) * c + (goal[1] - y) * s, -(goal[0] - x) * s + (goal[1] - y) * c)
        v, w = local_command(ranges, ANGLES, local, 0.05, 8.0, ctrl)
        if (v, w) == (0.0, 0.0):
            break
        x, y, yaw = x + v * math.cos(yaw) * 0.1, y + v * math.sin(yaw) * 0.1, yaw + w * 0.1
    assert math.hypot(goal[0] - x, goal[1] - y) <= ctrl.goal_tolerance + 1e-9
    assert abs(y) < 0.45 - 0.36


def test_turn_to_heading_turns_the_short_way_and_stops_within_the_tolerance():
    w, aligned = turn_to_heading(0.0, 0.5, max_angular=1.2, tolerance=0.1)
    assert w > 0 and not aligned
    w, aligned = turn_to_heading(3.0, -3.0, max_angular=1.2, tolerance=0.1)  # across +-pi
    assert w > 0 and not aligned
    w, aligned = turn_to_heading(0.0, -2.5, max_angular=1.2, tolerance=0.1)
    assert w == -1.2 and not aligned  # limited
    w, aligned = turn_to_heading(0.0, 0.12, max_angular=1.2, tolerance=0.1)
    assert 0.15 <= w < 0.2  # never so slow that it stalls short
    assert turn_to_heading(1.0, 1.05, max_angular=1.2, tolerance=0.1) == (0.0, True)
    with pytest.raises(ValueError, match='finite'):
        turn_to_heading(math.nan, 0.0, 1.2, 0.1)
    with pytest.raises(ValueError, match='min_angular'):
        turn_to_heading(0.0, 1.0, 0.1, 0.1)


def test_a_tight_pose_goal_is_driven_into_not_stopped_at_the_controllers_tolerance():
    # a stand-point 10 cm ahead with a 3 cm tolerance (the executive's approach before a
    # pick): the local controller's own 15 cm stopping distance must not end the drive short
    cmap = corridor(4)
    free = np.full(360, np.inf)
    cfg = NavigatorConfig(map=CFG, goal_tolerance=0.03)
    assert cfg.control.goal_tolerance > 0.1
    state, (x, y) = NavigatorState(), (0.0, 0.0)
    for _ in range(60):
        cmap, state, (v, w), info = navigation_step(cmap, state, (x, y, 0.0), free, ANGLES,
                                                    0.05, 8.0, Goal(pose=(0.1, 0.0)), cfg)
        if info['status'] == 'goal_reached':
            break
        assert v > 0.0, info
        x += v * 0.1
    assert info['status'] == 'goal_reached' and abs(x - 0.1) <= 0.03
