"""Navigation: exploration, goal reaching, map quality and decision latency of the place agent.

The agent runs on the :class:`~embodied_aif.sim.simulation.Simulation` facade without ROS, with
the model functions the cognitive_map and navigator nodes call: per control period (10 Hz) the
laser scan is re-projected to the base (:func:`~embodied_aif.models.occupancy.scan_in_base`),
the map observes odometry + scan + the head camera's image code
(:func:`~embodied_aif.models.cognitive_map.observe`), and
:func:`~embodied_aif.models.place_planning.navigation_step` plans by expected free energy over
the places graph and drives with the local controller. Like the navigator node, a stall with a
clear scan leaves a virtual obstacle. Odometry drifts like the sim_bridge's (2 % of distance
and of turn, seeded); ground truth is used only to score.

- Exploration (2x2 ``default`` and 3x3 ``grid3x3``, same seeds for every explorer): a run
  succeeds when the laser has seen >= 90 % of the true free floor (the building's occupancy
  grid less walls and furniture footprints) within the step budget. Baselines: frontier
  exploration (nearest frontier cell of a log-odds grid from the scans, reached by grid BFS and
  the same local controller) and a random walk (random headings, same controller).
- Goal reaching after the agent's exploration: pose goals in free space of other rooms
  (clearance >= 0.6 m), given in the odometry frame; success = the navigator reports the goal
  reached and the true position is within 0.5 m of it; SPL = success * shortest / max(travelled,
  shortest) with the simulator's ground-truth shortest path for the robot footprint.
- Map quality: visited places per room; a loop closure (or revisit) is false when the robot's
  true position is more than radius + 0.5 m from where the place really is, or a wall lies
  between them; measured in the normal layouts and in ``aliased`` (look-alike rooms).
- Decision latency: one planning step of the navigator (EFE plan over the graph + the local
  controller) on synthetic maps of 50 and 200 places.

Run: ``embodied-aif bench navigation [--quick] [--seeds A:B] [--jobs N] [--explorers aif,...]
[--layouts 2x2,...] [--verbose]`` (``--verbose``: one line per goal on stderr).
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models import cognitive_map as cm
from embodied_aif.models import occupancy as occ
from embodied_aif.models import place_planning as pp
from embodied_aif.models.local_control import ControllerConfig, local_command
from embodied_aif.sim.robot import RobotConfig
from embodied_aif.sim.sensors import CameraConfig
from embodied_aif.sim.simulation import Rates, Simulation

LAYOUTS = {'2x2': 'default', '3x3': 'grid3x3'}
EXPLORERS = ('aif', 'frontier', 'random')
BUDGET = {'2x2': 1500, '3x3': 3000}        # control periods (10 Hz) for exploring
QUICK_BUDGET = {'2x2': 800, '3x3': 1200}
GOAL_STEPS = 1500                           # per goal
COVERAGE = 0.9
CONTROL_DT = 0.1
ODOM_NOISE = 0.02
CAMERA_EVERY = 2                            # image code every 2nd period (5 Hz)
COVER_EVERY = 2                             # laser coverage every 2nd period
COVER_RES = 0.1                             # m, coverage cells
STALL_STEPS = 4                             # 0.4 s driving without moving: virtual obstacle
STALL_MEMORY = 600                          # periods a virtual obstacle is kept (60 s)
WORLD_MARGIN = 3.0                          # the navigator's 'outside the known world' margin
SUCCESS_RADIUS = 0.5
ROBOT = RobotConfig()
LASER_POSE = (ROBOT.laser_xyz[0], ROBOT.laser_xyz[1], 0.0)
# the navigator's parameters in config/embodied_aif.yaml (robot_radius, safety_margin, ...)
CONTROL = ControllerConfig(max_v=0.5, max_w=1.2, robot_radius=0.36, margin=0.05)
MAP = cm.MapConfig(radius=1.5)
MAX_BLOCKED = 8


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


class Episode:
    """One simulated robot: true pose, drifting odometry, scan, camera code, laser coverage."""

    def __init__(self, scenario: str, seed: int, camera: bool = True):
        rates = Rates(physics_hz=60.0, control_hz=30.0, head_camera_hz=0.0,
                      wrist_camera_hz=0.0, scan_hz=0.0)
        cams = {'head_camera': CameraConfig('head_camera_optical_frame', 64, 48, 60.0)}
        self.sim = Simulation(scenario, seed, rates=rates, cameras=cams)
        self.physics_per_period = int(round(CONTROL_DT * rates.physics_hz))
        self.rng = np.random.default_rng(10_000 + seed)
        self.camera = camera
        world = self.sim.world
        occupied = world.occupancy
        h, w = occupied.shape[0] // 2 * 2, occupied.shape[1] // 2 * 2
        # coverage on 0.1 m cells: a floor cell is one whose four 0.05 m cells are all free
        self.free = ~occupied[:h, :w].reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
        self.size = (w // 2 * COVER_RES, h // 2 * COVER_RES)
        self.seen = np.zeros_like(self.free)
        self.true = np.array(self.sim.base_pose())
        self.odom = np.zeros(3)
        self.travelled = 0.0
        self.steps = 0
        self.code = None
        self.bumps: deque = deque()            # (step, odom-frame points)
        self.stall = 0
        self.bump_count = 0
        self.commanded_v = 0.0
        self.sense()

    # -------------------------------------------------------------- sensing
    def sense(self) -> None:
        """Scan (base frame), image code, coverage."""
        scan = self.sim.laser_scan()
        self.angles = scan.angle_min + scan.angle_increment * np.arange(len(scan.ranges))
        self.range_min, self.range_max = float(scan.range_min), float(scan.range_max)
        raw = np.asarray(scan.ranges, dtype=float)
        self.ranges = occ.scan_in_base(raw, self.angles, LASER_POSE)
        if self.steps % COVER_EVERY == 0:
            laser = occ.compose_planar(self.true, LASER_POSE)
            centred = laser - np.array([self.size[0] / 2, self.size[1] / 2, 0.0])
            self.seen |= occ.seen_cells(self.free.shape, centred, raw, self.angles,
                                        self.range_min, self.range_max, COVER_RES)
        if self.camera and (self.code is None or self.steps % CAMERA_EVERY == 0):
            self.code = cm.image_code(self.sim.render('head_camera').rgb)

    def coverage(self) -> float:
        """Fraction of the true free floor seen by the laser so far."""
        return float(np.sum(self.seen & self.free) / np.sum(self.free))

    def ranges_with_bumps(self) -> np.ndarray:
        """The base-frame scan with the remembered virtual obstacles (odometry frame) added."""
        while self.bumps and self.steps - self.bumps[0][0] > STALL_MEMORY:
            self.bumps.popleft()
        if not self.bumps:
            return self.ranges
        pts = np.vstack([p for _, p in self.bumps])
        return occ.fuse_points(self.ranges, self.angles, self.odom, pts, self.range_max)

    # -------------------------------------------------------------- acting
    def act(self, v: float, w: float) -> None:
        """Drive one control period, integrate the odometry, detect stalls, sense again."""
        self.sim.set_base_velocity(v, w)
        self.commanded_v = v
        for _ in range(self.physics_per_period):
            self.sim.step()
        new = np.array(self.sim.base_pose())
        ds = math.hypot(*(new[:2] - self.true[:2]))
        dyaw = _wrap(new[2] - self.true[2])
        moved = ds
        self.travelled += ds
        ds *= 1.0 + ODOM_NOISE * self.rng.standard_normal()
        dyaw += abs(dyaw) * ODOM_NOISE * self.rng.standard_normal()
        mid = self.odom[2] + dyaw / 2
        self.odom = np.array([self.odom[0] + ds * math.cos(mid), self.odom[1] + ds * math.sin(mid),
                              _wrap(self.odom[2] + dyaw)])
        self.true = new
        self.steps += 1
        if v >= 0.05 and moved < 0.2 * v * CONTROL_DT:
            self.stall += 1
        else:
            self.stall = 0
        self.sense()
        if self.stall >= STALL_STEPS:
            self.stall = 0
            reach = CONTROL.robot_radius + CONTROL.margin
            if occ.clear_ahead(self.ranges, self.angles, reach + 0.15):
                self.bumps.append((self.steps, occ.stall_points(self.odom, reach + 0.02, 0.2)))
                self.bump_count += 1

    def odom_from_world(self, xy) -> np.ndarray:
        """A world point expressed in the odometry frame (via the current true/odometry pose)."""
        d = np.asarray(xy, dtype=float) - self.true[:2]
        c, s = math.cos(-self.true[2]), math.sin(-self.true[2])
        local = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
        c, s = math.cos(self.odom[2]), math.sin(self.odom[2])
        return self.odom[:2] + np.array([c * local[0] - s * local[1],
                                         s * local[0] + c * local[1]])

    def close(self) -> None:
        """Disconnect the simulation."""
        self.sim.close()


# ------------------------------------------------------------------ the agent
@dataclass
class Agent:
    """The place agent: the cognitive map and the navigator state, as in the nodes."""

    map_config: cm.MapConfig = MAP
    nav_config: pp.NavigatorConfig = field(default_factory=lambda: pp.NavigatorConfig(
        map=MAP, control=CONTROL, max_blocked=MAX_BLOCKED))
    cmap: cm.CognitiveMap = field(default_factory=cm.CognitiveMap)
    state: pp.NavigatorState = field(default_factory=pp.NavigatorState)
    truth: dict = field(default_factory=dict)        # place -> true (x, y) where it was made
    closures: int = 0
    false_closures: list = field(default_factory=list)
    blocked_marks: int = 0
    statuses: dict = field(default_factory=dict)

    def step(self, ep: Episode, goal: pp.Goal | None) -> dict:
        """One control period: map update, navigation step, drive."""
        self.cmap, event = cm.observe(self.cmap, ep.odom, ep.code, ep.ranges, ep.angles,
                                      ep.range_min, ep.range_max, self.map_config)
        self._score_event(ep, event)
        before = self.state.blocked_marks
        ranges = ep.ranges_with_bumps()
        self.cmap, self.state, (v, w), info = pp.navigation_step(
            self.cmap, self.state, ep.odom, ranges, ep.angles, ep.range_min, ep.range_max,
            goal, self.nav_config)
        self.blocked_marks += self.state.blocked_marks - before
        self.statuses[info['status']] = self.statuses.get(info['status'], 0) + 1
        if info['status'] in pp.TERMINAL_STATUSES:
            v = w = 0.0
        ep.act(v, w)
        return info

    def _score_event(self, ep: Episode, event: cm.MapEvent) -> None:
        if event.kind in ('start', 'new_place', 'visit'):
            self.truth[event.place] = ep.true[:2].copy()
        elif event.kind in ('loop_closure', 'revisit') and event.place in self.truth:
            self.closures += 1
            here, there = ep.true[:2], self.truth[event.place]
            far = np.linalg.norm(here - there) > self.map_config.radius + 0.5
            if far or _wall_between(ep.sim.world, here, there):
                self.false_closures.append((event.kind, event.place,
                                            here.round(2).tolist(), there.round(2).tolist()))

    def places_per_room(self, world) -> dict:
        """Visited places per room (from the true positions where they were made)."""
        counts = dict.fromkeys(world.scenario.building.rooms, 0)
        for k, xy in self.truth.items():
            if k < self.cmap.num_places and self.cmap.visits[k] > 0:
                room = world.room_of(*xy)
                if room is not None:
                    counts[room] += 1
        return counts


def _wall_between(world, a, b) -> bool:
    """True when the segment a-b crosses a wall cell (not furniture) of the building."""
    n = max(2, int(np.linalg.norm(b - a) / 0.025))
    pts = a[None] + np.linspace(0.0, 1.0, n)[:, None] * (b - a)[None]
    rooms = {world.room_of(*p) for p in pts}
    if len(rooms) <= 1:
        return False
    rows = np.clip((pts[:, 1] / 0.05).astype(int), 0, world.occupancy.shape[0] - 1)
    cols = np.clip((pts[:, 0] / 0.05).astype(int), 0, world.occupancy.shape[1] - 1)
    hit = world.occupancy[rows, cols]
    # furniture is not a wall: only count cells on a wall line (room boundaries)
    w, d = world.scenario.building.room_size
    on_line = (np.abs(pts[:, 0] / w - np.round(pts[:, 0] / w)) * w < 0.1) | \
        (np.abs(pts[:, 1] / d - np.round(pts[:, 1] / d)) * d < 0.1)
    return bool(np.any(hit & on_line))


# ------------------------------------------------------------------ baselines
def _bfs(passable: np.ndarray, start: tuple[int, int]):
    """Breadth-first distances (cells, 8-connected) and parents over ``passable``."""
    h, w = passable.shape
    dist = np.full((h, w), -1, dtype=int)
    parent = np.full((h, w), -1, dtype=int)
    if not (0 <= start[0] < h and 0 <= start[1] < w):
        return dist, parent
    dist[start] = 0
    queue = deque([start])
    moves = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
    while queue:
        i, j = queue.popleft()
        for di, dj in moves:
            a, b = i + di, j + dj
            if 0 <= a < h and 0 <= b < w and dist[a, b] < 0 and passable[a, b]:
                dist[a, b] = dist[i, j] + 1
                parent[a, b] = i * w + j
                queue.append((a, b))
    return dist, parent


class FrontierExplorer:
    """Nearest-frontier exploration on a log-odds grid from the scans (odometry frame)."""

    def __init__(self):
        self.config = occ.GridConfig(resolution=0.1, size=30.0)
        self.grid = occ.empty_grid(self.config)
        self.path: list = []
        self.best = math.inf
        self.since = 0
        self.ignored: set = set()
        self.target_key = None
        self.done = False

    def step(self, ep: Episode) -> None:
        """Update the grid, (re)plan to the nearest frontier when needed, drive one period."""
        laser = occ.compose_planar(ep.odom, (0.0, 0.0, 0.0))
        ranges = ep.ranges_with_bumps()
        self.grid = occ.integrate_scan(self.grid, laser, ranges, ep.angles, ep.range_min,
                                       ep.range_max, self.config)
        if self.done:
            ep.act(0.0, 0.0)
            return
        if not self.path or self.since > 40:
            if self.path and self.since > 40:
                self.ignored.add(self.target_key)
            self._plan(ep)
            if not self.path:
                self.done = True
                ep.act(0.0, 0.0)
                return
        pts = np.asarray(list(self.path), dtype=float)
        d = np.linalg.norm(pts - ep.odom[:2], axis=1)
        k = int(np.argmin(d))
        ahead = [i for i in range(k, len(pts)) if d[i] >= 0.6]
        target = pts[ahead[0]] if ahead else pts[-1]
        remaining = float(np.linalg.norm(pts[-1] - ep.odom[:2]))
        if remaining < self.best - 0.05:
            self.best, self.since = remaining, 0
        else:
            self.since += 1
        if remaining < 0.3:
            self.path = []
            ep.act(0.0, 0.0)
            return
        local = _to_robot(ep.odom, target)
        v, w = local_command(ranges, ep.angles, local, ep.range_min, ep.range_max, CONTROL)
        ep.act(v, w)

    def _plan(self, ep: Episode) -> None:
        res, shape = self.config.resolution, self.grid.shape
        free = self.grid < -0.1
        occupied = self.grid > 0.1
        unknown = ~free & ~occupied
        from scipy import ndimage
        clearance = ndimage.distance_transform_edt(~occupied) * res
        passable = free & (clearance >= CONTROL.robot_radius + CONTROL.margin)
        rows, cols = occ.world_to_cell(ep.odom[None, :2], shape, res)
        start = (int(rows[0]), int(cols[0]))
        if not passable[start]:
            near = np.argwhere(passable)
            if len(near) == 0:
                self.path = []
                return
            k = int(np.argmin(np.sum((near - np.array(start)) ** 2, axis=1)))
            if np.sum((near[k] - np.array(start)) ** 2) > 36:
                self.path = []
                return
            start = tuple(near[k])
        dist, parent = _bfs(passable, start)
        grown = ndimage.binary_dilation(unknown, iterations=1)
        frontier = passable & grown & (dist > 3)
        cand = np.argwhere(frontier)
        cand = [tuple(c) for c in cand if (int(c[0]) // 5, int(c[1]) // 5) not in self.ignored]
        if not cand:
            self.path = []
            return
        best = min(cand, key=lambda c: dist[c])
        cells = [best]
        w = shape[1]
        while parent[cells[-1]] >= 0:
            p = int(parent[cells[-1]])
            cells.append((p // w, p % w))
        cells = cells[::-1][::3] + [best]
        xy = occ.cell_to_world([c[0] for c in cells], [c[1] for c in cells], shape, res)
        self.path = [tuple(p) for p in xy]
        self.target_key = (best[0] // 5, best[1] // 5)
        self.best, self.since = math.inf, 0


class RandomWalker:
    """Random walk: a random heading held 2-5 m (or until stuck), with the local controller."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.target = None
        self.best = math.inf
        self.since = 0

    def step(self, ep: Episode) -> None:
        """Pick a new random heading when needed; drive one period."""
        if self.target is None or self.since > 20:
            heading = self.rng.uniform(-math.pi, math.pi)
            dist = self.rng.uniform(2.0, 5.0)
            self.target = ep.odom[:2] + dist * np.array([math.cos(heading), math.sin(heading)])
            self.best, self.since = math.inf, 0
        remaining = float(np.linalg.norm(self.target - ep.odom[:2]))
        if remaining < self.best - 0.05:
            self.best, self.since = remaining, 0
        else:
            self.since += 1
        if remaining < 0.3:
            self.target = None
        ranges = ep.ranges_with_bumps()
        target = self.target if self.target is not None else ep.odom[:2]
        v, w = local_command(ranges, ep.angles, _to_robot(ep.odom, target), ep.range_min,
                             ep.range_max, CONTROL)
        ep.act(v, w)


def _to_robot(pose, xy) -> np.ndarray:
    c, s = math.cos(pose[2]), math.sin(pose[2])
    dx, dy = xy[0] - pose[0], xy[1] - pose[1]
    return np.array([c * dx + s * dy, -s * dx + c * dy])


# ------------------------------------------------------------------ runs
def _explore(ep: Episode, explorer: str, budget: int, seed: int):
    """Run an explorer for ``budget`` periods; return (agent or None, result dict)."""
    agent = Agent() if explorer == 'aif' else None
    other = FrontierExplorer() if explorer == 'frontier' else \
        RandomWalker(np.random.default_rng(seed + 777)) if explorer == 'random' else None
    reached_at = None
    ended = 'budget'
    while ep.steps < budget:
        if agent is not None:
            info = agent.step(ep, None)
            if info['status'] == 'explored':
                ended = 'explored'
                break
        else:
            other.step(ep)
            if explorer == 'frontier' and other.done:
                ended = 'explored'
                break
        if reached_at is None and ep.steps % 10 == 0 and ep.coverage() >= COVERAGE:
            reached_at = ep.steps
            if agent is None:  # a baseline's run is decided; the agent goes on to map it all
                ended = 'covered'
                break
    cover = ep.coverage()
    if reached_at is None and cover >= COVERAGE:
        reached_at = ep.steps
    return agent, {'coverage': round(cover, 4), 'success': cover >= COVERAGE,
                   'steps_to_90': reached_at, 'steps': ep.steps, 'ended': ended,
                   'travelled': round(ep.travelled, 2)}


def _goal_runs(ep: Episode, agent: Agent, goals: int, rng: np.random.Generator) -> list[dict]:
    world = ep.sim.world
    out = []
    clearance = world.clearance
    free = np.argwhere(clearance >= 0.6)
    for _ in range(goals):
        here = world.room_of(*ep.true[:2])
        goal_xy, shortest = None, math.inf
        for _ in range(200):
            i, j = free[rng.integers(len(free))]
            xy = np.array([(j + 0.5) * 0.05, (i + 0.5) * 0.05])
            if world.room_of(*xy) == here:
                continue
            shortest = ep.sim.shortest_path_length(ep.true[:2], xy)
            if math.isfinite(shortest):
                goal_xy = xy
                break
        if goal_xy is None:
            continue
        start_xy = ep.true[:2].copy()
        goal_odom = ep.odom_from_world(goal_xy)
        goal = pp.Goal(pose=tuple(goal_odom))
        agent.state = pp.NavigatorState()
        agent.statuses = {}
        start_travel, start_steps = ep.travelled, ep.steps
        start_marks, start_bumps = agent.blocked_marks, ep.bump_count
        status, reason = 'timeout', f'not reached in {GOAL_STEPS} periods'
        gap = float(np.min(np.linalg.norm(agent.cmap.poses[:, :2] - goal_odom, axis=1)))
        if gap > WORLD_MARGIN:
            status, reason = 'outside_known_world', f'{gap:.2f} m from the nearest place'
        else:
            while ep.steps - start_steps < GOAL_STEPS:
                info = agent.step(ep, goal)
                if info['status'] in ('goal_reached', 'goal_unreachable'):
                    status, reason = info['status'], info.get('reason', '')
                    break
        travelled = ep.travelled - start_travel
        error = float(np.linalg.norm(ep.true[:2] - goal_xy))
        success = status == 'goal_reached' and error <= SUCCESS_RADIUS
        spl = shortest / max(travelled, shortest) if success and shortest > 0 else 0.0
        out.append({'success': bool(success), 'spl': round(spl, 4), 'status': status,
                    'reason': reason[:120], 'error_m': round(error, 3),
                    'shortest_m': round(shortest, 2), 'travelled_m': round(travelled, 2),
                    'periods': ep.steps - start_steps,
                    'blocked_marks': agent.blocked_marks - start_marks,
                    'stalls': ep.bump_count - start_bumps,
                    'start_xy': [round(float(v), 2) for v in start_xy],
                    'goal_xy': [round(float(v), 2) for v in goal_xy],
                    'statuses': dict(sorted(agent.statuses.items()))})
    return out


def run_one(task: tuple) -> dict:
    """One (layout, explorer, seed) run (a process-pool task); returns its figures."""
    layout, scenario, explorer, seed, budget, goals = task
    start = time.perf_counter()
    ep = Episode(scenario, seed, camera=explorer == 'aif')
    try:
        agent, res = _explore(ep, explorer, budget, seed)
        res.update({'layout': layout, 'explorer': explorer, 'seed': seed})
        if agent is not None:
            rooms = agent.places_per_room(ep.sim.world)
            res.update({'places': int(np.sum(agent.cmap.visits > 0)),
                        'hypothesised_left': int(np.sum(agent.cmap.visits == 0)),
                        'places_per_room': round(float(np.mean(list(rooms.values()))), 2),
                        'rooms_without_place': sum(1 for c in rooms.values() if c == 0),
                        'loop_closures': agent.closures,
                        'false_loop_closures': len(agent.false_closures),
                        'false_examples': agent.false_closures[:3],
                        'blocked_marks': agent.blocked_marks})
            if goals:
                res['goals'] = _goal_runs(ep, agent, goals, np.random.default_rng(seed + 99))
                res['blocked_marks_goals'] = agent.blocked_marks - res['blocked_marks']
    finally:
        ep.close()
    res['wall_s'] = round(time.perf_counter() - start, 1)
    return res


# ------------------------------------------------------------------ decision latency
def synthetic_map(n: int, rng: np.random.Generator) -> cm.CognitiveMap:
    """A lattice of ``n`` places 1.5 m apart (a fifth hypothesised), experienced edges."""
    side = int(math.ceil(math.sqrt(n)))
    xy = np.array([(1.5 * (k % side), 1.5 * (k // side)) for k in range(n)], dtype=float)
    xy += rng.normal(scale=0.1, size=xy.shape)
    codes = rng.normal(size=(n, 80))
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    visits = (rng.random(n) > 0.2).astype(int)
    visits[0] = 1
    codes[visits == 0] = 0.0
    cmap = cm.CognitiveMap(poses=np.column_stack([xy, np.zeros(n)]), codes=codes,
                           radius=np.full(n, 1.5), visits=visits, belief=np.eye(n)[0], current=0)
    for k in range(n):
        for j in (k + 1, k + side):
            if j < n and (j != k + 1 or j % side):
                if visits[k] and visits[j]:
                    cmap = cm.mark_traversed(cmap, k, j)
                else:
                    cmap = cm.add_imagined_edge(cmap, k, j)
    return cmap


def decision_latency(n: int, repeats: int) -> float:
    """Median ms of one navigator planning step (plan + route + local control) at n places."""
    rng = np.random.default_rng(n)
    cmap = synthetic_map(n, rng)
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    ranges = np.full(360, 3.0)
    goal = pp.Goal(pose=tuple(cmap.poses[n - 1, :2]))
    config = pp.NavigatorConfig(map=MAP, control=CONTROL, max_blocked=MAX_BLOCKED)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pp.navigation_step(cmap, pp.NavigatorState(), cmap.poses[0], ranges, angles, 0.05, 8.0,
                           goal, config)
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


# ------------------------------------------------------------------ summary
def _mean(values) -> float | None:
    values = [float(v) for v in values]
    return round(statistics.fmean(values), 4) if values else None


def summarise(results: list[dict]) -> dict:
    """Figures over all runs: per explorer, per layout, goals, map quality."""
    out: dict = {}
    by = {}
    for r in results:
        by.setdefault((r['layout'], r['explorer']), []).append(r)
    for explorer, key in (('aif', 'exploration_success'),
                          ('frontier', 'exploration_success_frontier'),
                          ('random', 'exploration_success_random')):
        runs = [r for r in results if r['explorer'] == explorer and r['layout'] in LAYOUTS]
        out[key] = _mean(r['success'] for r in runs)
        for layout in LAYOUTS:
            rs = by.get((layout, explorer), [])
            if rs:
                out[f'{key}_{layout}'] = _mean(r['success'] for r in rs)
                out[f'coverage_{explorer}_{layout}'] = _mean(r['coverage'] for r in rs)
                steps = [r['steps_to_90'] for r in rs if r['steps_to_90'] is not None]
                out[f'steps_to_90_{explorer}_{layout}'] = _mean(steps)
    goals = [g for r in results if r['explorer'] == 'aif' for g in r.get('goals', [])]
    out['goal_success'] = _mean(g['success'] for g in goals)
    out['spl'] = _mean(g['spl'] for g in goals)
    out['goals'] = len(goals)
    fails: dict = {}
    for g in goals:
        if not g['success']:
            fails[g['status']] = fails.get(g['status'], 0) + 1
    out['goal_failures'] = fails
    for layout in LAYOUTS:
        gs = [g for r in by.get((layout, 'aif'), []) for g in r.get('goals', [])]
        if gs:
            out[f'goal_success_{layout}'] = _mean(g['success'] for g in gs)
            out[f'spl_{layout}'] = _mean(g['spl'] for g in gs)
    aif = [r for r in results if r['explorer'] == 'aif']
    out['false_loop_closures'] = sum(r['false_loop_closures'] for r in aif
                                     if r['layout'] in LAYOUTS)
    for layout in sorted({r['layout'] for r in aif}):
        rs = [r for r in aif if r['layout'] == layout]
        out[f'places_per_room_{layout}'] = _mean(r['places_per_room'] for r in rs)
        out[f'loop_closures_{layout}'] = sum(r['loop_closures'] for r in rs)
        out[f'false_loop_closures_{layout}'] = sum(r['false_loop_closures'] for r in rs)
        out[f'rooms_without_place_{layout}'] = sum(r['rooms_without_place'] for r in rs)
        out[f'blocked_marks_{layout}'] = sum(r['blocked_marks'] for r in rs)
    examples = [e for r in aif for e in r.get('false_examples', [])]
    if examples:
        out['false_loop_closure_examples'] = examples[:5]
    return out


def body(args) -> dict:
    """Run every (layout, explorer, seed), then the latency measure; return the figures."""
    seeds = list(args.seeds)[:1] if args.quick else list(args.seeds)
    budgets = QUICK_BUDGET if args.quick else BUDGET
    goals = 1 if args.quick else 3
    explorers = _choices(args.explorers, EXPLORERS, '--explorers')
    layouts = _choices(args.layouts, (*LAYOUTS, 'aliased'), '--layouts')
    tasks = []
    for layout, scenario in LAYOUTS.items():
        for seed in seeds:
            for explorer in explorers:
                if layout in layouts:
                    tasks.append((layout, scenario, explorer, seed, budgets[layout],
                                  goals if explorer == 'aif' else 0))
    aliased_seeds = seeds[:1] if args.quick else seeds[:3]
    if 'aif' in explorers and 'aliased' in layouts:
        for seed in aliased_seeds:
            tasks.append(('aliased', 'aliased', 'aif', seed, budgets['2x2'], 0))
    tasks.sort(key=lambda t: (t[3], -t[4]))  # seed by seed (partial runs stay balanced)
    jobs = max(1, min(args.jobs, len(tasks)))
    results = []
    progress(f'navigation: {len(tasks)} runs on {jobs} processes')
    if jobs == 1:
        for t in tasks:
            results.append(run_one(t))
            _report(results[-1], args.verbose)
    else:
        ctx = multiprocessing.get_context('spawn')
        with ctx.Pool(jobs) as pool:
            for r in pool.imap_unordered(run_one, tasks):
                results.append(r)
                _report(r, args.verbose)
    out = summarise(results)
    repeats = 20 if args.quick else 100
    out['decision_ms_50'] = round(decision_latency(50, repeats), 3)
    out['decision_ms_200'] = round(decision_latency(200, repeats), 3)
    out['runs'] = sorted(results, key=lambda r: (r['layout'], r['explorer'], r['seed']))
    out['protocol'] = {'budget_periods': budgets, 'control_dt_s': CONTROL_DT,
                       'coverage_goal': COVERAGE, 'goals_per_run': goals,
                       'goal_periods': GOAL_STEPS, 'success_radius_m': SUCCESS_RADIUS,
                       'odom_noise': ODOM_NOISE, 'aliased_seeds': len(aliased_seeds)}
    return out


def _choices(text: str, allowed: tuple, option: str) -> list[str]:
    """Parse a comma-separated subset of ``allowed``; raise ValueError naming the bad entry."""
    picked = [t.strip() for t in text.split(',') if t.strip()]
    bad = [t for t in picked if t not in allowed]
    if bad or not picked:
        raise ValueError(f'{option} takes a comma-separated subset of {", ".join(allowed)}, '
                         f'got {text!r}')
    return picked


def _report(r: dict, verbose: bool = False) -> None:
    extra = ''
    if 'goals' in r:
        extra = ' goals ' + ''.join('+' if g['success'] else '-' for g in r['goals'])
    if 'false_loop_closures' in r:
        extra += f" places {r['places']} false_lc {r['false_loop_closures']}"
    progress(f"  {r['layout']} {r['explorer']} seed {r['seed']}: coverage {r['coverage']:.3f} "
             f"({r['ended']} after {r['steps']}){extra} [{r['wall_s']} s]")
    progress('  run ' + json.dumps(r, sort_keys=True))
    if verbose:
        for k, g in enumerate(r.get('goals', [])):
            progress(f"    goal {k}: {'ok ' if g['success'] else 'FAIL'} {g['status']} "
                     f"({g['reason']}) spl {g['spl']:.2f} shortest {g['shortest_m']} m "
                     f"travelled {g['travelled_m']} m periods {g['periods']} blocked "
                     f"{g['blocked_marks']} stalls {g['stalls']} from {g['start_xy']} to "
                     f"{g['goal_xy']} statuses {g['statuses']}")


def main(argv=None) -> int:
    """Entry point of ``embodied-aif bench navigation``."""
    parser = make_parser('navigation', __doc__.splitlines()[0], default_seeds='0:20')
    parser.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1),
                        help='worker processes (default: 2 or the CPU count if smaller)')
    parser.add_argument('--explorers', default=','.join(EXPLORERS),
                        help='comma-separated explorers to run (default: all; goals and map '
                             'quality come from aif)')
    parser.add_argument('--layouts', default='2x2,3x3,aliased',
                        help='comma-separated layouts to run (default: 2x2,3x3,aliased)')
    parser.add_argument('--verbose', action='store_true',
                        help='print one line per goal (status, reason, SPL, blocked marks, '
                             'stalls, navigator statuses) on stderr')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
