"""Planning over the places graph by expected free energy, with backward preference propagation.

A policy is "go along edges, then stop at a place t". Its expected free energy (lower is better):

    efe = sum over its edges of edge_cost + terminal(t)
    edge_cost(i, j) = cost_per_metre * length - risk_weight * ln P(success) - novelty(i, j)
    terminal(t)     = -ln P(t | C) - info_gain(t)

- ``-ln P(t | C)`` is the risk of ending at t under the preferences C over places (from a goal
  pose, a goal place or a goal image; flat when exploring);
- ``info_gain(t)`` is the expected information gain of visiting a hypothesised (unvisited)
  place; ``novelty(i, j)`` the expected information gain about an edge's Beta/Dirichlet
  transition counts (large for imagined edges, ~0 for well-travelled ones);
- ``-ln P(success)`` is the risk of not arriving: blocked edges (failure evidence) cost more.

The value of every place, V(i) = min over policies starting at i, is computed by propagating the
terminal values backward through the graph (a multi-source Dijkstra on edge costs clipped to be
positive), so goals far beyond any fixed horizon still pull. The action posterior at the current
place is softmax(-gamma * Q) over {stop, move to neighbour j} with Q(i, j) = edge_cost + V(j).
A blocked edge raises its cost, so re-planning after :func:`mark_blocked` yields a detour.

:func:`navigation_step` is the whole navigator loop as one pure function: plan, follow the
stored paths of the plan's edges with the local controller
(:mod:`embodied_aif.models.local_control`), cutting straight to the farthest point of the
route the scan shows clear for the footprint (and to a pose goal itself), declare an edge
blocked when no progress is made (then re-plan), approach the goal point from its place (from
another place satisfying the goal if that fails), and drive epistemic re-localisation moves
(preferring ones the scan shows drivable) while the map is lost.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.cognitive_map import (
    CognitiveMap,
    MapConfig,
    code_distances,
    edge_route,
    map_pose,
    mark_blocked,
    nearest_place,
    predicted_positions,
)
from embodied_aif.models.local_control import ControllerConfig, local_command, segment_clear


@dataclass(frozen=True)
class PlanConfig:
    """Weights of the EFE terms over the places graph (nats, metres)."""

    gamma: float = 16.0
    cost_per_metre: float = 0.1
    risk_weight: float = 2.0
    novelty_weight: float = 1.0
    unvisited_gain: float = 5.0
    goal_sigma: float = 1.0
    goal_precision: float = 10.0
    image_precision: float = 40.0
    min_edge_cost: float = 1e-3

    def __post_init__(self):
        for name in ('gamma', 'cost_per_metre', 'risk_weight', 'novelty_weight',
                     'unvisited_gain', 'goal_precision', 'image_precision', 'min_edge_cost'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'PlanConfig.{name} must be finite and >= 0, got {value}')
        if not self.goal_sigma > 0:
            raise ValueError(f'PlanConfig.goal_sigma must be > 0, got {self.goal_sigma}')


@dataclass(frozen=True)
class Goal:
    """A goal: a pose (x, y) in the map frame, a place id, or an observation code (image)."""

    pose: tuple[float, float] | None = None
    place: int | None = None
    code: np.ndarray | None = None

    def __post_init__(self):
        given = [x is not None for x in (self.pose, self.place, self.code)]
        if sum(given) != 1:
            raise ValueError('a Goal needs exactly one of pose, place or code, got '
                             f'{sum(given)}')
        if self.pose is not None:
            pose = tuple(float(v) for v in self.pose)[:2]
            if len(pose) != 2 or not all(math.isfinite(v) for v in pose):
                raise ValueError(f'goal pose must be finite (x, y), got {self.pose}')
            object.__setattr__(self, 'pose', pose)
        if self.code is not None:
            code = np.asarray(self.code, dtype=float).ravel()
            norm = np.linalg.norm(code)
            if not np.all(np.isfinite(code)) or norm == 0:
                raise ValueError('goal code must be finite and not all zero')
            object.__setattr__(self, 'code', code / norm)


@dataclass(frozen=True)
class PlacePlan:
    """A decision at the current place with everything needed to log and display it.

    ``status``: 'goal_reached', 'to_goal', 'exploring_to_goal', 'goal_unreachable', 'exploring',
    'explored' or 'lost'. ``actions`` lists the options (-1 = stop, else a neighbour place),
    ``q_actions`` their posterior, ``efe`` their Q values; ``path`` the places to follow.
    """

    status: str
    start: int
    next_place: int
    path: list[int]
    actions: list[int] = field(default_factory=list)
    q_actions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    efe: np.ndarray = field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    terminal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reason: str = ''


def edge_novelty(success: float, failure: float) -> float:
    """Expected information gain about a Beta(success, failure) transition from one attempt."""
    a0 = success + failure
    p = success / a0
    return p * (1.0 / success - 1.0 / a0) + (1.0 - p) * (1.0 / failure - 1.0 / a0) \
        if success > 0 and failure > 0 else 0.0


def log_preferences(cmap: CognitiveMap, goal: Goal | None, config: PlanConfig,
                    map_config: MapConfig = MapConfig()) -> np.ndarray:  # noqa: B008
    """Return ln P(place | C) for every place (flat without a goal)."""
    n = cmap.num_places
    if goal is None:
        scores = np.zeros(n)
    elif goal.pose is not None:
        # places that satisfy the goal are preferred by goal_precision nats; among the others
        # the nearer the better (pulls exploration towards a goal outside the map)
        d = np.linalg.norm(cmap.poses[:, :2] - np.asarray(goal.pose), axis=1)
        scores = np.where(d <= cmap.radius, 0.0, -config.goal_precision - d / config.goal_sigma)
    elif goal.place is not None:
        if not 0 <= goal.place < n:
            raise ValueError(f'goal place {goal.place} is not a place id in 0..{n - 1}')
        scores = np.zeros(n)
        scores[goal.place] = config.goal_precision
    else:
        if cmap.codes.shape[1] != goal.code.size:
            raise ValueError(f'goal code has {goal.code.size} entries, the map uses '
                             f'{cmap.codes.shape[1]}')
        dist = np.where(cmap.visits > 0, code_distances(cmap, goal.code),
                        map_config.code_threshold)
        scores = -config.image_precision * dist
    return scores - (scores.max() + math.log(np.exp(scores - scores.max()).sum()))


def goal_reached_at(cmap: CognitiveMap, place: int, goal: Goal,
                    map_config: MapConfig = MapConfig()) -> bool:  # noqa: B008
    """Return True when being at ``place`` satisfies ``goal``."""
    if goal.place is not None:
        return place == goal.place
    if goal.pose is not None:
        return bool(np.linalg.norm(cmap.poses[place, :2] - goal.pose) <= cmap.radius[place])
    return bool(cmap.visits[place] > 0 and
                code_distances(cmap, goal.code)[place] <=
                map_config.code_threshold)


def edge_costs(cmap: CognitiveMap, config: PlanConfig) -> dict[tuple[int, int], float]:
    """Return the (symmetric) cost of every edge, keyed both ways."""
    costs = {}
    for e in cmap.edges.values():
        c = config.cost_per_metre * e.length - config.risk_weight * math.log(e.confidence) \
            - config.novelty_weight * edge_novelty(e.success, e.failure)
        c = max(c, config.min_edge_cost)
        costs[(e.a, e.b)] = costs[(e.b, e.a)] = c
    return costs


def terminal_values(cmap: CognitiveMap, goal: Goal | None, config: PlanConfig,
                    map_config: MapConfig = MapConfig()) -> np.ndarray:  # noqa: B008
    """Return the EFE of stopping at every place: risk under C minus the visit info gain."""
    risk = -log_preferences(cmap, goal, config, map_config)
    gain = np.where(cmap.visits > 0, 0.0, config.unvisited_gain)
    return risk - gain


def propagate_values(cmap: CognitiveMap, terminal: np.ndarray,
                     costs: dict[tuple[int, int], float]) -> tuple[np.ndarray, np.ndarray]:
    """Return (V, successor): V(i) = min(terminal(i), min_j cost(i, j) + V(j)).

    Backward propagation of the terminal values through the whole graph (multi-source
    Dijkstra); ``successor[i]`` is the next place on the best policy from i (-1 = stop).
    Hypothesised (unvisited) places are terminal: plans end there.
    """
    n = cmap.num_places
    value = terminal.astype(float).copy()
    successor = np.full(n, -1, dtype=int)
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (i, j), c in costs.items():
        adjacency[j].append((i, c))  # reverse: value flows from j back to i
    heap = [(value[i], i) for i in range(n)]
    heapq.heapify(heap)
    done = np.zeros(n, dtype=bool)
    while heap:
        v, j = heapq.heappop(heap)
        if done[j] or v > value[j]:
            continue
        done[j] = True
        for i, c in adjacency[j]:
            if done[i] or cmap.visits[i] == 0:
                continue
            if v + c < value[i] - 1e-12:
                value[i] = v + c
                successor[i] = j
                heapq.heappush(heap, (value[i], i))
    return value, successor


def plan(cmap: CognitiveMap, goal: Goal | None = None,
         config: PlanConfig = PlanConfig(),  # noqa: B008
         map_config: MapConfig = MapConfig(),  # noqa: B008
         start: int | None = None, exclude=()) -> PlacePlan:
    """Return the EFE decision at ``start`` (default: the current place) for ``goal``/exploring.

    ``exclude``: places that do not count as satisfying the goal (e.g. the goal point turned
    out unreachable from them: across a wall within their radius); they keep their other
    terms but lose the goal's preference.
    """
    start = cmap.current if start is None else int(start)
    if cmap.num_places == 0 or start < 0:
        return PlacePlan('lost', -1, -1, [], reason='not localised on a place')
    if start >= cmap.num_places:
        raise ValueError(f'start place {start} is not a place id < {cmap.num_places}')
    exclude = {int(k) for k in exclude if 0 <= int(k) < cmap.num_places}
    terminal = terminal_values(cmap, goal, config, map_config)
    if goal is not None and exclude:
        terminal = terminal.copy()
        terminal[sorted(exclude)] += config.goal_precision
    costs = edge_costs(cmap, config)
    value, successor = propagate_values(cmap, terminal, costs)
    actions = [-1] + cmap.neighbours(start)
    q = np.array([terminal[start]] + [costs[(start, j)] + value[j] for j in actions[1:]])
    z = -config.gamma * (q - q.min())
    q_actions = np.exp(z) / np.exp(z).sum()
    path = [start]
    seen = {start}
    while successor[path[-1]] >= 0 and successor[path[-1]] not in seen:
        path.append(int(successor[path[-1]]))
        seen.add(path[-1])
    end = path[-1]
    nxt = path[1] if len(path) > 1 else -1
    if goal is None:
        status = 'exploring' if cmap.visits[end] == 0 else 'explored'
        reason = (f'{int(np.sum(cmap.visits == 0))} hypothesised places; heading to {end}'
                  if status == 'exploring' else 'no place is worth visiting')
    elif start not in exclude and goal_reached_at(cmap, start, goal, map_config):
        status, reason = 'goal_reached', f'place {start} satisfies the goal'
    elif end not in exclude and goal_reached_at(cmap, end, goal, map_config):
        status, reason = 'to_goal', f'{len(path) - 1} moves to place {end}'
    elif cmap.visits[end] == 0:
        status, reason = 'exploring_to_goal', f'the goal is not mapped; exploring place {end}'
    else:
        status = 'goal_unreachable'
        reason = ('no known or hypothesised place satisfies the goal; best place '
                  f'{end} is {_goal_gap(cmap, end, goal):.2f} away')
    return PlacePlan(status, start, nxt, path, actions, q_actions, q, value, terminal, reason)


def _goal_gap(cmap: CognitiveMap, place: int, goal: Goal) -> float:
    if goal.pose is not None:
        return float(np.linalg.norm(cmap.poses[place, :2] - goal.pose))
    if goal.code is not None:
        return float(code_distances(cmap, goal.code)[place])
    return float('inf')


@dataclass(frozen=True)
class RelocalisationMove:
    """An epistemic move while lost: a displacement (odometry frame) and its expected gain."""

    displacement: np.ndarray
    info_gain: float
    efe: float


def _observation_classes(codes: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy grouping of predicted codes that would look alike (-1: nothing known there)."""
    labels = np.full(len(codes), -1, dtype=int)
    reps: list[np.ndarray] = []
    for i in np.flatnonzero(valid):
        for k, rep in enumerate(reps):
            if 1.0 - rep @ codes[i] <= threshold:
                labels[i] = k
                break
        else:
            labels[i] = len(reps)
            reps.append(codes[i])
    return labels


def relocalisation_move(cmap: CognitiveMap, raw_pose, config: PlanConfig = PlanConfig(),  # noqa: B008
                        map_config: MapConfig = MapConfig(),  # noqa: B008
                        drivable=None) -> RelocalisationMove:
    """Return the move that best tells the lost hypotheses apart (max info gain - travel cost).

    Candidates are the displacements that take the most probable hypothesis to one of the
    places. Under each hypothesis the observation after the move is the code of the place it
    then lies in; the expected information gain is the entropy of that predicted observation.
    ``drivable`` (optional): a predicate on a displacement (odometry frame); candidates it
    rejects (e.g. through a wall the scan shows) are skipped, unless it rejects all of them.
    """
    if drivable is not None:
        picked = _best_move(cmap, raw_pose, config, map_config, drivable)
        if picked.info_gain > 0:
            return picked
    return _best_move(cmap, raw_pose, config, map_config, None)


def _best_move(cmap: CognitiveMap, raw_pose, config: PlanConfig, map_config: MapConfig,
               drivable) -> RelocalisationMove:
    """The best relocalisation move among the candidates ``drivable`` accepts (all if None)."""
    if not cmap.lost or cmap.hypotheses is None:
        raise ValueError('relocalisation_move: the map is not lost')
    hyp = cmap.hypotheses
    pred = predicted_positions(cmap, np.asarray(raw_pose, dtype=float))
    best_h = int(np.argmax(hyp))
    live = np.flatnonzero(hyp > 1e-6)
    best = RelocalisationMove(np.zeros(2), 0.0, 0.0)
    for target in np.flatnonzero(cmap.visits > 0):
        delta = cmap.poses[target, :2] - pred[best_h]
        at, d = nearest_place(cmap, pred[live] + delta)
        valid = (d <= cmap.radius[at]) & (cmap.visits[at] > 0)
        labels = _observation_classes(cmap.codes[at], valid, map_config.code_threshold)
        weights = hyp[live] / hyp[live].sum()
        probs = np.bincount(labels + 1, weights=weights)
        probs = probs[probs > 0]
        gain = float(-np.sum(probs * np.log(probs)))
        efe = config.cost_per_metre * float(np.linalg.norm(delta)) - gain
        if efe < best.efe - 1e-12 and (drivable is None or drivable(delta)):
            best = RelocalisationMove(delta, gain, efe)
    return best


@dataclass(frozen=True)
class NavigatorConfig:
    """Settings of the place-to-place navigation loop (steps are control periods).

    ``shortcut`` (m): the farthest point of the planned route within this distance that the
    scan shows straight-line clear for the footprint is driven to directly (0: follow the
    stored paths point by point). ``nudge`` (m): a pose goal this near is driven to directly
    whatever the scan shows (a small correction at a table, where no route through places
    would be shorter; the local controller still keeps the footprint clear).
    """

    plan: PlanConfig = field(default_factory=PlanConfig)
    map: MapConfig = field(default_factory=MapConfig)
    control: ControllerConfig = field(default_factory=ControllerConfig)
    stuck_steps: int = 80
    progress: float = 0.05
    unstick_w: float = 0.5
    waypoint_reach: float = 0.5
    goal_tolerance: float = 0.3
    max_blocked: int = 20
    shortcut: float = 4.0
    nudge: float = 0.3

    def __post_init__(self):
        if not (math.isfinite(self.nudge) and self.nudge >= 0):
            raise ValueError(f'NavigatorConfig.nudge must be finite and >= 0, got {self.nudge}')
        if self.stuck_steps < 1 or not self.progress > 0 or self.max_blocked < 1:
            raise ValueError(f'need stuck_steps >= 1, progress > 0 and max_blocked >= 1, got '
                             f'{self.stuck_steps}, {self.progress}, {self.max_blocked}')
        if not (math.isfinite(self.shortcut) and self.shortcut >= 0):
            raise ValueError(f'NavigatorConfig.shortcut must be finite and >= 0 (0: follow the '
                             f'stored paths only), got {self.shortcut}')


@dataclass(frozen=True)
class NavigatorState:
    """Where the navigator is heading and how long it has made no progress."""

    target: int = -1
    best_distance: float = math.inf
    since_progress: int = 0
    blocked_marks: int = 0
    relocalise_to: tuple[float, float] | None = None
    last_plan: PlacePlan | None = None
    route: tuple = ()
    route_index: int = 0
    approaching: bool = False
    origin: int = -1
    approach_failed: tuple = ()


TERMINAL_STATUSES = ('goal_reached', 'explored', 'goal_unreachable')


def _to_robot_frame(pose: np.ndarray, xy: np.ndarray) -> np.ndarray:
    c, s = math.cos(pose[2]), math.sin(pose[2])
    dx, dy = xy[0] - pose[0], xy[1] - pose[1]
    return np.array([c * dx + s * dy, -s * dx + c * dy])


def plan_route(cmap: CognitiveMap, path: list[int], goal: Goal | None = None,
               goal_radius: float | None = None) -> np.ndarray:
    """Return the points (k, 2) to drive along a places path: each edge's route, in order.

    Travelled edges give the path stored on them, imagined ones a straight line. A pose goal
    within ``goal_radius`` of the last place (default: that place's radius) is appended, so the
    drive can head for the goal itself rather than the place centre first.
    """
    if len(path) < 2:
        raise ValueError(f'a route needs a path of at least two places, got {path!r}')
    pieces = [edge_route(cmap, int(a), int(b)) for a, b in zip(path[:-1], path[1:])]
    route = np.vstack(pieces)
    if goal is not None and goal.pose is not None:
        end = int(path[-1])
        radius = cmap.radius[end] if goal_radius is None else goal_radius
        point = np.asarray(goal.pose, dtype=float)
        if np.linalg.norm(cmap.poses[end, :2] - point) <= radius:
            route = np.vstack([route, point[None]])
    return route


def shortcut_index(route: np.ndarray, index: int, pose: np.ndarray, ranges: np.ndarray,
                   angles: np.ndarray, range_min: float, range_max: float,
                   config: NavigatorConfig) -> int:
    """Return the farthest route index >= ``index`` that can be driven to in a straight line.

    Candidates lie within ``config.shortcut`` of the robot; the straight segment must be clear
    for the footprint (radius + margin) in the scan (:func:`segment_clear`). Without such a
    point (or with ``shortcut`` 0) ``index`` itself is returned.
    """
    if config.shortcut <= 0 or index >= len(route) - 1:
        return index
    clearance = config.control.robot_radius + config.control.margin
    reach = min(config.shortcut, range_max)
    for j in range(len(route) - 1, index, -1):
        if np.linalg.norm(route[j] - pose[:2]) > reach:
            continue
        local = _to_robot_frame(pose, route[j])
        if segment_clear(ranges, angles, local, range_min, range_max, clearance):
            return j
    return index


def _goal_point(cmap: CognitiveMap, goal: Goal, place: int) -> np.ndarray:
    if goal.pose is not None:
        return np.asarray(goal.pose, dtype=float)
    return cmap.poses[goal.place if goal.place is not None else place, :2]


def _goal_in_clear_view(pose, goal: Goal, ranges, angles, range_min: float, range_max: float,
                        config: NavigatorConfig) -> bool:
    """Whether a pose goal lies within ``config.shortcut`` along a scan-clear straight line."""
    local = _to_robot_frame(pose, np.asarray(goal.pose, dtype=float))
    if config.shortcut <= 0 or np.linalg.norm(local) > min(config.shortcut, range_max):
        return False
    return segment_clear(ranges, angles, local, range_min, range_max,
                         config.control.robot_radius + config.control.margin)


def _final_approach(cmap, state, pose, ranges, angles, range_min, range_max, goal, config, p):
    """Drive from the goal's place to the goal point; done within ``goal_tolerance``."""
    point = _goal_point(cmap, goal, p.start)
    dist = float(np.linalg.norm(point - pose[:2]))
    if not state.approaching:
        state = dataclasses.replace(state, approaching=True, best_distance=math.inf,
                                    since_progress=0)
    if dist <= config.goal_tolerance:
        state = dataclasses.replace(state, target=-1, approaching=False)
        return cmap, state, (0.0, 0.0), {'status': 'goal_reached', 'target': -1,
                                         'reason': f'{dist:.2f} m from the goal', 'plan': p}
    if dist < state.best_distance - config.progress:
        state = dataclasses.replace(state, best_distance=dist, since_progress=0)
    else:
        state = dataclasses.replace(state, since_progress=state.since_progress + 1)
    if state.since_progress > config.stuck_steps:
        reason = f'the goal point is not reachable from place {p.start} ({dist:.2f} m left)'
        state = dataclasses.replace(state, target=-1, approaching=False)
        if goal.pose is not None and state.blocked_marks + 1 < config.max_blocked:
            # e.g. the goal lies across a wall within the place's radius: try from another
            # place that satisfies the goal (counts as a blocked attempt)
            state = dataclasses.replace(
                state, approach_failed=(*state.approach_failed, p.start),
                blocked_marks=state.blocked_marks + 1)
            return cmap, state, (0.0, 0.0), {'status': 'blocked', 'target': -1,
                                             'reason': reason, 'plan': p,
                                             'final_approach': True}
        return cmap, state, (0.0, 0.0), {'status': 'goal_unreachable', 'target': -1,
                                         'reason': reason, 'plan': p}
    # the controller's own stopping distance must not end the drive outside the goal's
    control = config.control if config.control.goal_tolerance < config.goal_tolerance else \
        dataclasses.replace(config.control, goal_tolerance=0.5 * config.goal_tolerance)
    v, w = local_command(ranges, angles, _to_robot_frame(pose, point), range_min, range_max,
                         control)
    state = dataclasses.replace(state, target=-1)
    return cmap, state, (v, w), {'status': 'approaching_goal', 'target': -1,
                                 'reason': f'{dist:.2f} m to go', 'plan': p}


def navigation_step(cmap: CognitiveMap, state: NavigatorState, raw_pose, ranges: np.ndarray,
                    angles: np.ndarray, range_min: float, range_max: float,
                    goal: Goal | None = None,
                    config: NavigatorConfig = NavigatorConfig()  # noqa: B008
                    ) -> tuple[CognitiveMap, NavigatorState, tuple[float, float], dict]:
    """One control period: (map, state, (v, w), info) from the map, odometry pose and scan.

    Plans over the places graph when a target is needed (none yet, or the current place is the
    target or a later place of the plan), drives with the local controller along the paths
    stored on the plan's edges (the way they were travelled; straight for imagined edges),
    heading straight for the farthest route point within ``shortcut`` that the scan shows
    clear, and marks the edge blocked (then re-plans: a detour) after ``stuck_steps`` periods
    without progress. A pose goal is reached as soon as the robot is within
    ``goal_tolerance`` of it, whichever place it is on. While the
    map is lost it drives the most informative re-localisation move. ``info['status']`` is a
    :class:`PlacePlan` status or 'relocalising' / 'blocked' / 'approaching_goal' (the last
    metres from the goal's place to the goal point) / 'invalid_input' (non-finite odometry:
    stand still); with a terminal status ('goal_reached' within ``goal_tolerance``,
    'explored', 'goal_unreachable', also after ``max_blocked`` blocked attempts: start a new
    :class:`NavigatorState` per goal) the command is (0, 0). ``info['final_approach']`` is
    True on a 'blocked' step when the last metres to the goal point stalled.
    """
    raw = np.asarray(raw_pose, dtype=float).ravel()
    if raw.shape != (3,):
        raise ValueError(f'raw_pose must be (x, y, yaw), got {raw_pose!r}')
    if not np.all(np.isfinite(raw)):
        return cmap, state, (0.0, 0.0), {'status': 'invalid_input', 'target': state.target,
                                         'reason': f'odometry pose {raw.tolist()} not finite'}
    if state.blocked_marks >= config.max_blocked:
        status = 'goal_unreachable' if goal is not None else 'explored'
        return cmap, state, (0.0, 0.0), {
            'status': status, 'target': -1, 'plan': state.last_plan,
            'reason': f'gave up after {state.blocked_marks} blocked attempts'}
    if cmap.lost:
        if state.relocalise_to is None:
            # moves the scan shows drivable in a straight line first (not into a wall)
            def drivable(delta):
                local = _to_robot_frame(raw, raw[:2] + delta)
                return segment_clear(ranges, angles, local, range_min, range_max,
                                     config.control.robot_radius)
            move = relocalisation_move(cmap, raw, config.plan, config.map, drivable)
            state = dataclasses.replace(state, relocalise_to=tuple(raw[:2] + move.displacement),
                                        target=-1, best_distance=math.inf, since_progress=0)
        goal_xy = np.asarray(state.relocalise_to)
        dist = float(np.linalg.norm(goal_xy - raw[:2]))
        if dist < state.best_distance - config.progress:
            state = dataclasses.replace(state, best_distance=dist, since_progress=0)
        else:
            state = dataclasses.replace(state, since_progress=state.since_progress + 1)
        v, w = local_command(ranges, angles, _to_robot_frame(raw, goal_xy), range_min,
                             range_max, config.control)
        if (v == 0.0 and w == 0.0) or state.since_progress > config.stuck_steps // 2:
            # arrived and still lost, or the move is not getting anywhere: pick the next one
            state = dataclasses.replace(state, relocalise_to=None)
        return cmap, state, (v, w), {'status': 'relocalising', 'target': -1}
    if state.relocalise_to is not None:
        state = dataclasses.replace(state, relocalise_to=None, target=-1)
    pose = map_pose(cmap, raw)
    if goal is not None and goal.pose is not None and \
            np.linalg.norm(pose[:2] - goal.pose) <= config.goal_tolerance:
        # the goal point itself is reached (e.g. by a shortcut), whichever place we are on
        state = dataclasses.replace(state, target=-1, approaching=False)
        reason = f'{np.linalg.norm(pose[:2] - goal.pose):.2f} m from the goal'
        here = cmap.current
        p = PlacePlan('goal_reached', here, -1, [here] if here >= 0 else [], reason=reason)
        return cmap, state, (0.0, 0.0), {'status': 'goal_reached', 'target': -1, 'plan': p,
                                         'reason': reason}
    if goal is not None and goal.pose is not None and \
            cmap.current not in state.approach_failed and \
            (state.approaching or
             np.linalg.norm(pose[:2] - goal.pose) <= config.nudge or
             _goal_in_clear_view(pose, goal, ranges, angles, range_min, range_max, config)):
        # the goal point itself is near and the scan shows the straight way to it clear for
        # the footprint: drive there, whichever place satisfies the goal (unless that already
        # failed from this place: then the plan tries it from another one)
        here = cmap.current
        p = PlacePlan('goal_reached', here, -1, [here] if here >= 0 else [],
                      reason='the goal point is in clear view')
        return _final_approach(cmap, state, pose, ranges, angles, range_min, range_max, goal,
                               config, p)
    ahead_on_plan = state.last_plan is not None and cmap.current != state.origin and \
        cmap.current in state.last_plan.path[1:]
    if state.target < 0 or cmap.current == state.target or state.target >= cmap.num_places \
            or ahead_on_plan:
        p = plan(cmap, goal, config.plan, config.map, exclude=state.approach_failed)
        if p.status != 'goal_reached' and state.approaching:
            state = dataclasses.replace(state, approaching=False)
        if p.status != 'goal_reached' or goal is None:
            state = dataclasses.replace(state, target=p.next_place, best_distance=math.inf,
                                        since_progress=0, last_plan=p, route=(),
                                        route_index=0, origin=cmap.current)
        if p.status == 'goal_reached' and goal is not None:
            # at the goal's place: the last metres to the goal itself
            return _final_approach(cmap, state, pose, ranges, angles, range_min, range_max,
                                   goal, config, p)
        if p.status in TERMINAL_STATUSES or p.next_place < 0:
            return cmap, dataclasses.replace(state, target=-1), (0.0, 0.0), \
                {'status': p.status, 'target': -1, 'reason': p.reason, 'plan': p}
        # follow the paths that made the edges (if travelled) along the whole plan, from the
        # point of the first edge nearest to us
        first = len(edge_route(cmap, cmap.current, p.next_place))
        route = plan_route(cmap, p.path, goal if p.status == 'to_goal' else None)
        start = int(np.argmin(np.linalg.norm(route[:first] - pose[:2], axis=1)))
        state = dataclasses.replace(state, route=tuple(map(tuple, route)), route_index=start)
    route = np.asarray(state.route, dtype=float).reshape(-1, 2)
    if len(route) == 0:
        route = cmap.poses[state.target:state.target + 1, :2]
    idx = min(state.route_index, len(route) - 1)
    # where we are along the route: the nearest point within a short stretch ahead (the route
    # may come back near us on the far side of a wall; skipping further needs a clear view)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(route[idx:], axis=0),
                                                            axis=1))])
    window = route[idx:][along <= 3.0 * config.waypoint_reach]
    idx += int(np.argmin(np.linalg.norm(window - pose[:2], axis=1)))
    while idx < len(route) - 1 and \
            np.linalg.norm(route[idx] - pose[:2]) < config.waypoint_reach:
        idx += 1
    # a waypoint just beside the robot that it cannot close on (turning in place between an
    # obstacle ahead and the waypoint to the side) is passed: aim at the next one
    if idx < len(route) - 1 and state.since_progress > config.stuck_steps // 4 and \
            np.linalg.norm(route[idx] - pose[:2]) < 2.0 * config.waypoint_reach:
        idx += 1
    # a later point of the route in clear straight view: drive there directly
    idx = shortcut_index(route, idx, pose, ranges, angles, range_min, range_max, config)
    state = dataclasses.replace(state, route_index=idx)
    target_xy = route[idx]
    # progress = length of the route still to drive
    dist = float(np.linalg.norm(target_xy - pose[:2]) +
                 np.sum(np.linalg.norm(np.diff(route[idx:], axis=0), axis=1)))
    if dist < state.best_distance - config.progress:
        state = dataclasses.replace(state, best_distance=dist, since_progress=0)
    else:
        state = dataclasses.replace(state, since_progress=state.since_progress + 1)
    if state.since_progress > config.stuck_steps:
        reason = f'no progress towards place {state.target} for {config.stuck_steps} steps'
        # the edge we set out on (the current place may have changed on the way)
        origin = state.origin if state.origin >= 0 else cmap.current
        if origin != state.target and cmap.edge(origin, state.target) is not None:
            cmap = mark_blocked(cmap, origin, state.target, config.map)
            state = dataclasses.replace(state, blocked_marks=state.blocked_marks + 1)
        state = dataclasses.replace(state, target=-1)
        return cmap, state, (0.0, 0.0), {'status': 'blocked', 'target': -1, 'reason': reason}
    v, w = local_command(ranges, angles, _to_robot_frame(pose, target_xy), range_min, range_max,
                         config.control)
    if v == 0.0 and w == 0.0:  # at the place centre but not yet localised there: turn to look
        w = config.unstick_w
    status = state.last_plan.status if state.last_plan is not None else 'moving'
    return cmap, state, (v, w), {'status': status, 'target': state.target}


__all__ = ['TERMINAL_STATUSES', 'Goal', 'NavigatorConfig', 'NavigatorState', 'PlacePlan',
           'PlanConfig', 'RelocalisationMove', 'edge_costs', 'edge_novelty', 'goal_reached_at',
           'log_preferences', 'navigation_step', 'plan', 'plan_route', 'propagate_values',
           'relocalisation_move', 'shortcut_index', 'terminal_values']
