"""Topological cognitive map: places (pose + observation code) linked by evidence-weighted edges.

Rules (SEEDS.md section 1, high level):

- A *place* stores a pose (x, y, yaw in the map frame), an observation code (unit vector, plus
  extra views), an influence radius, a visit count and the scan seen there. Places with visit
  count 0 are *hypothesised* (open space seen in the scan, e.g. through a doorway, never
  visited) and have no code yet.
- While the pose stays inside the current place's radius nothing is created (it moves on to an
  overlapping place only when that one is closer by ``hysteresis``). When it leaves: if some
  other place contains the pose *and* its code matches the observation (cosine distance below
  ``code_threshold``, any view), the loop is closed there (the places are linked); if the pose
  is outside every place, or the observation matches none of the places that contain it, a new
  place grows. A hypothesised place containing the pose is visited: it becomes a real place at
  the pose where its code is observed (when that is farther than ``same_place_radius`` from
  the guess, its imagined links, checked against the guess, are dropped and re-made from the
  scan there). A visited place within ``same_place_radius`` whose code
  does not match gets the code as another view (the same spot seen from elsewhere, e.g. a
  doorway seen from the other room).
- Every edge carries Beta/Dirichlet evidence over {traversable, not}: travelled edges get large
  success counts (EXPERIENCED) and keep the path travelled (waypoints, the action that made the
  transition; success saturates at ``max_success``), failed attempts failure counts (BLOCKED;
  ``blocked_count`` each, so a write-off takes repeated failures, and the failure evidence
  decays when the scan shows the way clear), hypothesised links (imagination,
  places in clear view) small symmetric counts (IMAGINED). ``confidence`` is the expected
  probability of success, ``count`` the total evidence.
- The belief over places combines a pose likelihood and a code likelihood with a prior carried
  along the edges. After an odometry jump the pose is not trusted: the belief is recomputed
  from codes only; when its maximum is below ``lost_threshold`` the robot is *lost*
  (``current = -1``) and growth stops. While lost, each hypothesis "I was at place h when the
  jump happened" predicts where the robot is now (place h + the odometry displacement since),
  and is weighted by how well the code there matches; once one hypothesis is confident the
  odometry is re-based (``offset``) onto the map, refined by matching the scan stored with the
  place. Epistemic moves that best separate the hypotheses are chosen in
  :mod:`embodied_aif.models.place_planning`.

Entry points: :func:`observe` (everything a map node does per observation), :func:`update`
(the growth / closure / localisation rules alone), :func:`mark_blocked` /
:func:`mark_traversed` / :func:`clear_blocked` (edge evidence), :func:`to_message_fields`
(CognitiveMap.msg layout).
Everything is a pure function of an immutable :class:`CognitiveMap`; updates return a new map.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.local_control import nearest_beam

EXPERIENCED = 0
IMAGINED = 1
BLOCKED = 2
KIND_NAMES = {EXPERIENCED: 'experienced', IMAGINED: 'imagined', BLOCKED: 'blocked'}


@dataclass(frozen=True)
class MapConfig:
    """Thresholds and evidence weights of the map rules (metres, radians, pseudo-counts)."""

    radius: float = 1.5
    code_threshold: float = 0.15
    pose_sigma: float = 0.75
    code_precision: float = 20.0
    experienced_count: float = 5.0
    max_success: float = 10.0
    blocked_count: float = 6.0
    blocked_decay: float = 0.5
    imagined_count: float = 0.5
    carry_over: float = 0.2
    lost_threshold: float = 0.6
    max_jump: float = 1.0
    hysteresis: float = 0.3
    same_place_radius: float = 0.5
    scan_match_score: float = 0.5
    trail_spacing: float = 0.3
    frontier_clearance: float = 0.4

    def __post_init__(self):
        if not 0.0 <= self.same_place_radius < self.radius:
            raise ValueError('MapConfig.same_place_radius must be in [0, radius), got '
                             f'{self.same_place_radius}')
        if not 0.0 <= self.hysteresis < self.radius:
            raise ValueError(f'MapConfig.hysteresis must be in [0, radius), got {self.hysteresis}')
        for name in ('radius', 'pose_sigma', 'code_precision', 'experienced_count',
                     'blocked_count', 'imagined_count', 'max_jump', 'frontier_clearance'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'MapConfig.{name} must be a finite positive number, got {value}')
        if not 0.0 < self.code_threshold < 2.0:
            raise ValueError(f'MapConfig.code_threshold is a cosine distance in (0, 2), got '
                             f'{self.code_threshold}')
        if not self.max_success >= self.experienced_count or not 0.0 <= self.blocked_decay < 1.0:
            raise ValueError(f'need max_success >= experienced_count and 0 <= blocked_decay < 1, '
                             f'got {self.max_success}, {self.blocked_decay}')
        if not 0.0 <= self.carry_over < 1.0 or not 0.0 < self.lost_threshold <= 1.0:
            raise ValueError(f'need 0 <= carry_over < 1 and 0 < lost_threshold <= 1, got '
                             f'{self.carry_over}, {self.lost_threshold}')


@dataclass(frozen=True)
class Edge:
    """Undirected link between places ``a < b`` with success / failure pseudo-counts.

    ``waypoints`` are map-frame (x, y) points of the last path travelled along it, from a to b
    (the action that made the transition; empty for imagined edges).
    """

    a: int
    b: int
    success: float
    failure: float
    kind: int
    length: float
    waypoints: tuple = ()

    @property
    def confidence(self) -> float:
        """Expected probability that the transition succeeds."""
        return self.success / (self.success + self.failure)

    @property
    def count(self) -> float:
        """Total pseudo-count of evidence."""
        return self.success + self.failure


def _edge_key(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


@dataclass(frozen=True)
class CognitiveMap:
    """Places (arrays indexed by place id), edges, current place, belief over places."""

    poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    radius: np.ndarray = field(default_factory=lambda: np.zeros(0))
    visits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    edges: dict = field(default_factory=dict)
    current: int = -1
    belief: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_pose: np.ndarray | None = None
    loop_closures: int = 0
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    hypotheses: np.ndarray | None = None
    lost_anchor: np.ndarray | None = None
    views: dict = field(default_factory=dict)
    scans: dict = field(default_factory=dict)
    trail: tuple = ()

    def __post_init__(self):
        n = self.poses.shape[0]
        if self.poses.shape != (n, 3) or self.radius.shape != (n,) or \
                self.visits.shape != (n,) or self.belief.shape != (n,) or \
                (n and self.codes.shape[0] != n):
            raise ValueError(f'inconsistent place arrays: poses {self.poses.shape}, codes '
                             f'{self.codes.shape}, radius {self.radius.shape}, visits '
                             f'{self.visits.shape}, belief {self.belief.shape}')
        if not -1 <= self.current < n:
            raise ValueError(f'current place {self.current} is not -1 or a place id < {n}')

    @property
    def num_places(self) -> int:
        """Number of places (visited and hypothesised)."""
        return self.poses.shape[0]

    @property
    def confidence(self) -> float:
        """Belief mass on the most probable place (0 with no places)."""
        return float(self.belief.max()) if self.belief.size else 0.0

    @property
    def lost(self) -> bool:
        """True when the map has places but the robot is not localised on one."""
        return self.num_places > 0 and self.current < 0

    def edge(self, i: int, j: int) -> Edge | None:
        """Return the edge between places i and j, or None."""
        return self.edges.get(_edge_key(i, j))

    def neighbours(self, i: int) -> list[int]:
        """Return the places linked to place i (any edge kind)."""
        return sorted(e.b if e.a == i else e.a for e in self.edges.values() if i in (e.a, e.b))


@dataclass(frozen=True)
class MapEvent:
    """What an update did, the place concerned and why.

    ``kind`` is one of 'start', 'stay', 'new_place', 'loop_closure', 'revisit', 'new_view', 'visit',
    'jump', 'lost', 'relocalised', 'invalid'.
    """

    kind: str
    place: int
    reason: str = ''


def _unit(code: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(code)
    return code / norm if norm > 0 else code


def _check_inputs(pose, code) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    pose = np.asarray(pose, dtype=float).ravel()
    if pose.shape not in ((2,), (3,)):
        raise ValueError(f'pose must be (x, y) or (x, y, yaw), got shape {pose.shape}')
    if pose.shape == (2,):
        pose = np.append(pose, 0.0)
    code = np.asarray(code, dtype=float).ravel()
    if code.size == 0:
        raise ValueError('the observation code is empty')
    if not np.all(np.isfinite(pose)):
        return None, None, f'pose {pose.tolist()} is not finite'
    if not np.all(np.isfinite(code)) or not np.any(code):
        return None, None, 'the observation code is not finite or all zero'
    return pose, _unit(code), ''


def cosine_distance(codes: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Return 1 - cos between every row of ``codes`` (unit or zero rows) and unit ``code``."""
    if codes.size == 0:
        return np.zeros(codes.shape[0])
    return 1.0 - codes @ code


def code_distances(cmap: CognitiveMap, code: np.ndarray) -> np.ndarray:
    """Return, per place, the smallest cosine distance between ``code`` and any of its views."""
    dist = cosine_distance(cmap.codes, code)
    for k, extra in cmap.views.items():
        dist[k] = min(dist[k], float(np.min(1.0 - extra @ code)))
    return dist


def place_likelihood(cmap: CognitiveMap, pose: np.ndarray | None, code: np.ndarray,
                     config: MapConfig) -> np.ndarray:
    """Return ln P(pose, code | place) up to a constant, for every place.

    Hypothesised places (no code) get the code likelihood of a code at the match threshold.
    With ``pose`` None only the codes count (odometry not trusted).
    """
    dist = np.where(cmap.visits > 0, code_distances(cmap, code), config.code_threshold)
    log_lik = -config.code_precision * dist
    if pose is not None:
        d2 = np.sum((cmap.poses[:, :2] - pose[:2]) ** 2, axis=1)
        log_lik = log_lik - d2 / (2.0 * config.pose_sigma ** 2)
    return log_lik


def transition_prior(cmap: CognitiveMap, config: MapConfig) -> np.ndarray:
    """Return the belief predicted one move ahead: stay, or move along edges by confidence."""
    n = cmap.num_places
    if n == 0:
        return np.zeros(0)
    if cmap.belief.sum() <= 0:
        return np.full(n, 1.0 / n)
    moved = np.zeros(n)
    for e in cmap.edges.values():
        moved[e.b] += cmap.belief[e.a] * e.confidence
        moved[e.a] += cmap.belief[e.b] * e.confidence
    prior = (1.0 - config.carry_over) * cmap.belief + config.carry_over * moved
    prior = prior + 1e-6
    return prior / prior.sum()


def _posterior(log_prior: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    z = log_prior + log_lik
    z = np.exp(z - z.max())
    return z / z.sum()


def _with_place(cmap: CognitiveMap, pose: np.ndarray, code: np.ndarray | None, radius: float,
                visits: int) -> CognitiveMap:
    codes = cmap.codes
    dim = code.size if code is not None else codes.shape[1]
    if codes.size == 0:
        codes = np.zeros((cmap.num_places, dim))
    if code is not None and codes.shape[1] != code.size:
        raise ValueError(f'observation code has {code.size} entries, the map uses {codes.shape[1]}')
    new_code = code if code is not None else np.zeros(codes.shape[1])
    return dataclasses.replace(
        cmap, poses=np.vstack([cmap.poses, pose[None]]),
        codes=np.vstack([codes, new_code[None]]), radius=np.append(cmap.radius, radius),
        visits=np.append(cmap.visits, visits), belief=np.append(cmap.belief, 0.0))


def add_edge_evidence(cmap: CognitiveMap, i: int, j: int, success: float = 0.0,
                      failure: float = 0.0, kind: int | None = None,
                      waypoints=None) -> CognitiveMap:
    """Return a map with evidence added to the edge i--j (created if missing).

    ``waypoints`` (k, 2), given in the i -> j direction, replace the edge's stored path.
    """
    n = cmap.num_places
    if not (0 <= i < n and 0 <= j < n) or i == j:
        raise ValueError(f'edge {i}--{j} needs two distinct place ids in 0..{n - 1}')
    if success < 0 or failure < 0:
        raise ValueError(f'evidence must be >= 0, got success {success}, failure {failure}')
    key = _edge_key(i, j)
    old = cmap.edges.get(key)
    length = float(np.linalg.norm(cmap.poses[i, :2] - cmap.poses[j, :2]))
    if old is None:
        new = Edge(key[0], key[1], success, failure, IMAGINED if kind is None else kind, length)
    else:
        new = Edge(key[0], key[1], old.success + success, old.failure + failure,
                   old.kind if kind is None else kind, length, old.waypoints)
    if waypoints is not None:
        pts = tuple((float(x), float(y)) for x, y in np.asarray(waypoints).reshape(-1, 2))
        new = dataclasses.replace(new, waypoints=pts if i == key[0] else pts[::-1])
    if new.count <= 0:
        raise ValueError(f'edge {i}--{j} would have no evidence')
    edges = dict(cmap.edges)
    edges[key] = new
    return dataclasses.replace(cmap, edges=edges)


def mark_traversed(cmap: CognitiveMap, i: int, j: int, config: MapConfig = MapConfig(),  # noqa: B008
                   waypoints=None) -> CognitiveMap:
    """Return a map where the robot travelled i -> j: success evidence, kind EXPERIENCED.

    The small pseudo-counts of an imagined edge are dropped once it is really travelled;
    ``waypoints`` (the path taken, i -> j) are kept on the edge. Success evidence saturates at
    ``max_success``, so that a well-travelled edge found closed (a door shut since) loses its
    preference after a few failed attempts, not after as many as it was travelled.
    """
    old = cmap.edge(i, j)
    if old is not None and old.kind == IMAGINED:
        edges = dict(cmap.edges)
        del edges[_edge_key(i, j)]
        cmap = dataclasses.replace(cmap, edges=edges)
        old = None
    have = 0.0 if old is None else old.success
    gain = max(0.0, min(config.experienced_count, config.max_success - have))
    return add_edge_evidence(cmap, i, j, success=gain, kind=EXPERIENCED, waypoints=waypoints)


def edge_route(cmap: CognitiveMap, i: int, j: int) -> np.ndarray:
    """Return the points (k, 2) to drive from place i to place j: stored path, then j's pose."""
    e = cmap.edge(i, j)
    if e is None:
        raise ValueError(f'no edge between places {i} and {j}')
    pts = list(e.waypoints if e.a == i else e.waypoints[::-1])
    return np.array(pts + [tuple(cmap.poses[j, :2])], dtype=float).reshape(-1, 2)


def mark_blocked(cmap: CognitiveMap, i: int, j: int, config: MapConfig = MapConfig()
                 ) -> CognitiveMap:  # noqa: B008
    """Return a map where an attempt i -> j failed: failure evidence, kind BLOCKED.

    One failure adds ``blocked_count`` (less than the evidence of travelling the edge twice),
    so a single failed attempt (the local controller trapped, a person in the way) does not
    write an edge off: it takes repeated failures, and :func:`clear_blocked` forgets part of
    the failure evidence when the scan shows the way clear.
    """
    return add_edge_evidence(cmap, i, j, failure=config.blocked_count, kind=BLOCKED)


def clear_blocked(cmap: CognitiveMap, i: int, j: int, config: MapConfig = MapConfig()
                  ) -> CognitiveMap:  # noqa: B008
    """Return a map where the way i -> j was seen clear: failure evidence decays.

    The failure count is multiplied by ``blocked_decay``; once success outweighs failure again
    the edge is no longer BLOCKED (EXPERIENCED if it was ever travelled, else IMAGINED).
    """
    e = cmap.edge(i, j)
    if e is None or e.failure <= 0.0:
        return cmap
    failure = e.failure * config.blocked_decay
    if e.kind == IMAGINED or (e.kind == BLOCKED and not e.waypoints and
                              e.success < config.experienced_count):
        failure = max(failure, config.imagined_count)  # an imagined link keeps its doubt
    kind = e.kind
    if kind == BLOCKED and e.success >= failure:
        kind = EXPERIENCED if e.waypoints or e.success >= config.experienced_count \
            else IMAGINED
    edges = dict(cmap.edges)
    edges[_edge_key(i, j)] = dataclasses.replace(e, failure=failure, kind=kind)
    return dataclasses.replace(cmap, edges=edges)


def add_imagined_edge(cmap: CognitiveMap, i: int, j: int, config: MapConfig = MapConfig(),
                      count: float | None = None) -> CognitiveMap:  # noqa: B008
    """Return a map with a hypothesised link i--j (small symmetric evidence) unless one exists."""
    if cmap.edge(i, j) is not None:
        return cmap
    c = config.imagined_count if count is None else float(count)
    return add_edge_evidence(cmap, i, j, success=c, failure=c, kind=IMAGINED)


def scan_blocks_link(cmap: CognitiveMap, i: int, j: int, clearance: float) -> bool:
    """True when a place's stored scan saw an obstacle on the straight way from place i to j.

    An obstacle point (any place's scan, map frame) within `clearance` of the segment
    between the two places' poses, away from its ends by `clearance`, is laser evidence that
    the straight trip is not free: a wall between two rooms, a closed door. An imagined link
    against such evidence is not worth a try. No stored scans: no evidence, False.
    """
    a, b = cmap.poses[i, :2], cmap.poses[j, :2]
    d = b - a
    length = float(np.linalg.norm(d))
    if length <= 2 * clearance or not cmap.scans:
        return False
    pts = np.concatenate([np.asarray(pts, dtype=float).reshape(-1, 2) + cmap.poses[k, :2]
                          for k, pts in cmap.scans.items() if k < cmap.num_places])
    along = (pts - a) @ d / length
    across = np.abs((pts - a) @ np.array([-d[1], d[0]]) / length)
    inside = (along > clearance) & (along < length - clearance)
    return bool(np.any(inside & (across < clearance)))


def abandoned_places(cmap: CognitiveMap) -> np.ndarray:
    """Return a mask of the hypothesised places that every attempt failed to reach.

    Such guesses (all their edges blocked) no longer stop new guesses nearby.
    """
    mask = np.zeros(cmap.num_places, dtype=bool)
    has_other = np.zeros(cmap.num_places, dtype=bool)
    for e in cmap.edges.values():
        for k in (e.a, e.b):
            if e.kind == BLOCKED:
                mask[k] = True
            else:
                has_other[k] = True
    return mask & ~has_other & (cmap.visits == 0)


def _covered(cmap: CognitiveMap, point: np.ndarray, config: MapConfig,
             dead: np.ndarray | None = None) -> bool:
    """Whether a live place covers ``point`` (abandoned guesses only within same_place_radius)."""
    if cmap.num_places == 0:
        return False
    d = np.linalg.norm(cmap.poses[:, :2] - point[:2], axis=1)
    dead = abandoned_places(cmap) if dead is None else dead
    return bool(np.any((d <= cmap.radius) & ~dead) or
                np.any((d <= config.same_place_radius) & dead))


def add_hypothesised_place(cmap: CognitiveMap, pose, from_place: int,
                           config: MapConfig = MapConfig()) -> tuple[CognitiveMap, int]:  # noqa: B008
    """Return (map, id) with an unvisited place at ``pose`` imagined-linked to ``from_place``.

    Nothing is added (the existing id is returned) when a place already covers the pose.
    """
    pose = np.asarray(pose, dtype=float).ravel()
    pose = np.append(pose, 0.0) if pose.shape == (2,) else pose
    if pose.shape != (3,) or not np.all(np.isfinite(pose)):
        raise ValueError(f'hypothesised place pose must be finite (x, y[, yaw]), got {pose}')
    if _covered(cmap, pose, config):
        d = np.linalg.norm(cmap.poses[:, :2] - pose[:2], axis=1)
        return cmap, int(np.argmin(d))
    new = _with_place(cmap, pose, None, config.radius, 0)
    new_id = new.num_places - 1
    if 0 <= from_place < cmap.num_places:
        new = add_imagined_edge(new, from_place, new_id, config)
    return new, new_id


def _localised(cmap: CognitiveMap, belief: np.ndarray, place: int, pose,
               trail: tuple | None = None) -> CognitiveMap:
    return dataclasses.replace(cmap, belief=belief, current=place,
                               last_pose=None if pose is None else pose.copy(),
                               trail=cmap.trail if trail is None else trail)


_MAX_TRAIL = 400
_MAX_VIEWS = 8
_MAX_WAYPOINTS = 16


def _extend_trail(trail: tuple, xy: np.ndarray, spacing: float) -> tuple:
    if trail and math.hypot(xy[0] - trail[-1][0], xy[1] - trail[-1][1]) < spacing:
        return trail
    return (trail + ((float(xy[0]), float(xy[1])),))[-_MAX_TRAIL:]


def _waypoints(trail: tuple, xy: np.ndarray) -> np.ndarray:
    """The path since the last place (at most _MAX_WAYPOINTS points, ending at ``xy``)."""
    pts = np.array(trail + ((float(xy[0]), float(xy[1])),)).reshape(-1, 2)
    if len(pts) > _MAX_WAYPOINTS:
        pts = pts[np.linspace(0, len(pts) - 1, _MAX_WAYPOINTS).round().astype(int)]
    return pts


def update(cmap: CognitiveMap, pose, code, config: MapConfig = MapConfig()  # noqa: B008
           ) -> tuple[CognitiveMap, MapEvent]:
    """Return (new map, event) after observing ``code`` at odometry ``pose`` (x, y[, yaw]).

    Invalid input (NaN pose or code) leaves the map unchanged with an 'invalid' event; a pose
    jump larger than ``max_jump`` since the last update re-localises from codes only.
    """
    pose, code, why = _check_inputs(pose, code)
    if pose is None:
        return cmap, MapEvent('invalid', cmap.current, why)
    if cmap.num_places and cmap.codes.shape[1] != code.size:
        raise ValueError(f'observation code has {code.size} entries, the map uses '
                         f'{cmap.codes.shape[1]}')
    if cmap.num_places == 0:
        new = _with_place(cmap, pose, code, config.radius, 1)
        trail = ((float(pose[0]), float(pose[1])),)
        return _localised(new, np.ones(1), 0, pose, trail), MapEvent('start', 0, 'first place')

    raw = pose
    pose = raw + cmap.offset
    jumped = cmap.last_pose is not None and \
        np.linalg.norm(pose[:2] - cmap.last_pose[:2]) > config.max_jump
    if jumped or cmap.current < 0:
        return _relocalise(cmap, raw, code, config, jumped)

    cur = cmap.current
    log_prior = np.log(transition_prior(cmap, config))
    d = np.linalg.norm(cmap.poses[:, :2] - pose[:2], axis=1)
    inside = np.flatnonzero(d <= cmap.radius)
    inside = inside[inside != cur]
    code_dist = code_distances(cmap, code)
    matching = [k for k in inside if cmap.visits[k] > 0 and code_dist[k] <= config.code_threshold]
    hypothesised = [k for k in inside if cmap.visits[k] == 0]
    # the same spot seen differently (e.g. a doorway from the other room): a new view
    same_spot = [k for k in inside if cmap.visits[k] > 0 and d[k] <= config.same_place_radius]
    if d[cur] <= cmap.radius[cur]:
        # still inside the current place: move on only to a clearly closer place
        closer = d[cur] - config.hysteresis
        matching = [k for k in matching if d[k] < closer]
        hypothesised = [k for k in hypothesised if d[k] < closer]
        same_spot = [k for k in same_spot if d[k] < closer]
        if not matching and not hypothesised and not same_spot:
            belief = _posterior(log_prior, place_likelihood(cmap, pose, code, config))
            trail = _extend_trail(cmap.trail, pose, config.trail_spacing)
            return _localised(cmap, belief, cur, pose, trail), MapEvent('stay', cur)
    path = _waypoints(cmap.trail, pose)
    if matching:
        k = int(min(matching, key=lambda i: d[i]))
        known = cmap.edge(cur, k)
        kind = 'revisit' if known is not None and known.kind == EXPERIENCED else 'loop_closure'
        new = mark_traversed(cmap, cur, k, config, path)
        new = dataclasses.replace(new, visits=_bump(new.visits, k),
                                  loop_closures=new.loop_closures + (kind == 'loop_closure'))
        reason = f'pose within {d[k]:.2f} m and code distance {code_dist[k]:.3f}'
    elif same_spot:
        k = int(min(same_spot, key=lambda i: d[i]))
        views = dict(cmap.views)
        views[k] = code[None] if k not in views else \
            np.vstack([views[k], code[None]])[-_MAX_VIEWS:]
        new = mark_traversed(dataclasses.replace(cmap, views=views), cur, k, config, path)
        new = dataclasses.replace(new, visits=_bump(new.visits, k))
        kind, reason = 'new_view', f'pose within {d[k]:.2f} m of place {k}: view added'
    elif hypothesised:
        k = int(min(hypothesised, key=lambda i: d[i]))
        codes = cmap.codes.copy()
        codes[k] = code
        # the guess becomes a real place where its code is observed
        poses = cmap.poses.copy()
        poses[k, :2] = pose[:2]
        new = dataclasses.replace(cmap, codes=codes, poses=poses, visits=_bump(cmap.visits, k))
        if d[k] > config.same_place_radius:
            # the guess moved: links imagined to where it was may now cross walls
            new = _drop_imagined(new, k)
        new = _refresh_lengths(new, k)
        new = mark_traversed(new, cur, k, config, path)
        kind, reason = 'visit', f'reached hypothesised place {k} ({d[k]:.2f} m from its guess)'
    else:
        new = _with_place(cmap, pose, code, config.radius, 1)
        k = new.num_places - 1
        new = mark_traversed(new, cur, k, config, path)
        kind = 'new_place'
        reason = ('pose outside every place' if inside.size == 0 else
                  f'code matches none of the {inside.size} places containing the pose')
    prior = np.append(np.exp(log_prior), np.zeros(new.num_places - cmap.num_places))
    prior[k] += 1.0
    belief = _posterior(np.log(prior / prior.sum() + 1e-12),
                        place_likelihood(new, pose, code, config))
    trail = ((float(pose[0]), float(pose[1])),)
    return _localised(new, belief, k, pose, trail), MapEvent(kind, k, reason)


def _drop_imagined(cmap: CognitiveMap, k: int) -> CognitiveMap:
    """Remove the imagined edges of place k (the scan re-links what is in clear view)."""
    edges = {key: e for key, e in cmap.edges.items() if not (k in key and e.kind == IMAGINED)}
    return dataclasses.replace(cmap, edges=edges)


def _refresh_lengths(cmap: CognitiveMap, k: int) -> CognitiveMap:
    """Recompute the lengths of the edges of place k (after its pose changed)."""
    edges = dict(cmap.edges)
    for key, e in cmap.edges.items():
        if k in key:
            length = float(np.linalg.norm(cmap.poses[e.a, :2] - cmap.poses[e.b, :2]))
            edges[key] = dataclasses.replace(e, length=length)
    return dataclasses.replace(cmap, edges=edges)


def _bump(visits: np.ndarray, k: int) -> np.ndarray:
    out = visits.copy()
    out[k] += 1
    return out


def predicted_positions(cmap: CognitiveMap, raw_pose: np.ndarray) -> np.ndarray:
    """Return, per lost-hypothesis place h, where the robot is now: place h + odometry since."""
    if cmap.lost_anchor is None:
        raise ValueError('predicted_positions: the map is not lost (no anchor)')
    delta = np.asarray(raw_pose, dtype=float)[:2] - cmap.lost_anchor[:2]
    return cmap.poses[:, :2] + delta


def nearest_place(cmap: CognitiveMap, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (index, distance) of the nearest place for every row of ``xy`` (n, 2)."""
    d = np.linalg.norm(cmap.poses[None, :, :2] - np.asarray(xy)[:, None, :2], axis=2)
    k = np.argmin(d, axis=1)
    return k, d[np.arange(len(k)), k]


def _relocalise(cmap: CognitiveMap, raw: np.ndarray, code: np.ndarray, config: MapConfig,
                jumped: bool) -> tuple[CognitiveMap, MapEvent]:
    """Multi-hypothesis re-localisation with codes (odometry trusted only locally)."""
    visited = cmap.visits > 0
    if jumped or cmap.hypotheses is None or cmap.lost_anchor is None:
        # fresh start: the robot may be at any visited place; weigh by the code seen now
        log_lik = np.where(visited, -config.code_precision * code_distances(cmap, code),
                           -np.inf)
        hyp = np.exp(log_lik - log_lik.max())
        anchor = raw.copy()
        cmap = dataclasses.replace(cmap, lost_anchor=anchor)
    else:
        if cmap.hypotheses.size < cmap.num_places:  # places hypothesised while lost
            cmap = dataclasses.replace(cmap, hypotheses=np.append(
                cmap.hypotheses, np.zeros(cmap.num_places - cmap.hypotheses.size)))
        pred = predicted_positions(cmap, raw)
        k, d = nearest_place(cmap, pred)
        inside = (d <= cmap.radius[k]) & visited[k]
        dist = code_distances(cmap, code)[k]
        # only the code is evidence: how near a place centre a hypothesis puts the robot says
        # nothing about it (and would pile up, period after period, for the wrong one). A
        # hypothesis that puts the robot where no place is predicts no particular code: its
        # likelihood is the code's marginal under the others (neither evidence for nor against)
        lik = np.exp(-config.code_precision * dist)
        prior = cmap.hypotheses * inside
        marginal = float(prior @ lik / prior.sum()) if prior.sum() > 0 else \
            math.exp(-config.code_precision * config.code_threshold)
        # repeated looks from the same spot are not independent evidence: the update counts
        # in proportion to the distance driven since the last one (full after trail_spacing)
        last = cmap.last_pose
        moved = float(np.linalg.norm(raw[:2] - (last[:2] - cmap.offset[:2]))) \
            if last is not None and np.all(np.isfinite(last[:2])) else config.trail_spacing
        weight = min(1.0, moved / config.trail_spacing)
        hyp = cmap.hypotheses * np.where(inside, lik, marginal) ** weight
        if not hyp.sum() > 0:
            hyp = cmap.hypotheses.copy()
    hyp = hyp / hyp.sum()
    pred = predicted_positions(cmap, raw)
    at, d = nearest_place(cmap, pred)
    belief = np.bincount(at, weights=hyp, minlength=cmap.num_places)
    h = int(np.argmax(hyp))
    if hyp[h] >= config.lost_threshold and d[h] <= cmap.radius[at[h]] and visited[at[h]] and \
            code_distances(cmap, code)[at[h]] <= config.code_threshold:
        place = int(at[h])
        offset = np.zeros(3)
        offset[:2] = pred[h] - raw[:2]
        new = dataclasses.replace(cmap, belief=belief, current=place, offset=offset,
                                  last_pose=raw + offset, hypotheses=None, lost_anchor=None,
                                  trail=())
        return new, MapEvent('relocalised', place, f'hypothesis {h} holds {hyp[h]:.2f}')
    new = dataclasses.replace(cmap, belief=belief, current=-1, hypotheses=hyp,
                              last_pose=raw + cmap.offset, trail=())
    reason = (f'odometry jumped more than {config.max_jump} m' if jumped else
              f'best hypothesis {hyp[h]:.2f} below {config.lost_threshold}')
    return new, MapEvent('jump' if jumped else 'lost', -1, reason)


def resume(cmap: CognitiveMap, raw_pose) -> tuple[CognitiveMap, MapEvent]:
    """Re-localise a map restored from a checkpoint at odometry ``raw_pose``, trusting the pose.

    For a map process that restarted while odometry ran on: the robot may have driven farther
    than ``max_jump`` since the checkpoint, but along continuous odometry, so it is placed on
    the visited place nearest its corrected pose (the next update grows the map from there if
    it is outside that place) instead of re-localising from codes alone.
    """
    pose = map_pose(cmap, raw_pose)
    if not np.all(np.isfinite(pose)):
        return cmap, MapEvent('invalid', cmap.current, f'pose {pose.tolist()} is not finite')
    visited = np.flatnonzero(cmap.visits > 0)
    if visited.size == 0:
        return cmap, MapEvent('stay', cmap.current, 'no visited place to resume on')
    d = np.linalg.norm(cmap.poses[visited, :2] - pose[:2], axis=1)
    k = int(visited[int(np.argmin(d))])
    belief = np.zeros(cmap.num_places)
    belief[k] = 1.0
    new = _localised(dataclasses.replace(cmap, hypotheses=None, lost_anchor=None), belief, k,
                     pose, ((float(pose[0]), float(pose[1])),))
    return new, MapEvent('relocalised', k, f'resumed on place {k}, {float(d.min()):.2f} m away, '
                         'from continuous odometry')


def map_pose(cmap: CognitiveMap, raw_pose) -> np.ndarray:
    """Return the odometry pose (x, y[, yaw]) corrected into the map frame (x, y, yaw)."""
    pose = np.asarray(raw_pose, dtype=float).ravel()
    pose = np.append(pose, 0.0) if pose.shape == (2,) else pose
    if pose.shape != (3,):
        raise ValueError(f'pose must be (x, y) or (x, y, yaw), got shape {pose.shape}')
    return pose + cmap.offset


def propose_frontiers(cmap: CognitiveMap, raw_pose, ranges: np.ndarray, angles: np.ndarray,
                      range_min: float, range_max: float,
                      config: MapConfig = MapConfig(),  # noqa: B008
                      clearance: float = 0.45, max_points: int = 12,
                      min_reach: float = 1.2) -> np.ndarray:
    """Return map-frame points (k, 2) worth hypothesising: open space not covered by a place.

    Every beam direction is a candidate: the free length of a corridor of half-width
    ``clearance`` along it is measured in the scan (NaN beams count as obstacles at
    ``range_min``). Directions whose corridor reaches ``min_reach`` radii propose a point up to
    two radii away, deepest openings first (so doorways are found), unless a place
    (visited or hypothesised, but not an abandoned guess) or an earlier proposal covers it.
    """
    pose = map_pose(cmap, raw_pose)
    if not np.all(np.isfinite(pose)):
        return np.zeros((0, 2))
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    r = np.maximum(np.where(np.isnan(r), range_min, r), range_min)
    hit = r < range_max
    pts = np.column_stack([r[hit] * np.cos(a[hit]), r[hit] * np.sin(a[hit])])
    dirs = np.column_stack([np.cos(a), np.sin(a)])
    if len(pts):
        along = dirs @ pts.T  # (directions, points)
        lateral = np.abs(dirs[:, 0:1] * pts[None, :, 1] - dirs[:, 1:2] * pts[None, :, 0])
        blocking = np.where((along > 0) & (lateral < clearance), along, np.inf)
        free = np.minimum(blocking.min(axis=1), range_max)
    else:
        free = np.full(len(a), range_max)
    reach = np.minimum(free - clearance, 2.0 * config.radius)
    c, s_ = math.cos(pose[2]), math.sin(pose[2])
    rot = np.array([[c, -s_], [s_, c]])
    out: list[np.ndarray] = []
    dead = abandoned_places(cmap)
    # deepest (capped) openings first; among equals prefer the middle of wide openings
    from scipy.ndimage import minimum_filter1d
    width = max(1, int(round(math.radians(10.0) / (2 * math.pi / max(len(a), 1)))))
    eroded = minimum_filter1d(free, size=2 * width + 1, mode='wrap')
    for k in np.lexsort((-eroded, -np.round(reach, 1))):
        if reach[k] < min_reach * config.radius or len(out) >= max_points:
            break
        point = pose[:2] + rot @ (reach[k] * dirs[k])
        if _covered(cmap, point, config, dead):
            continue
        if any(np.linalg.norm(q - point) <= config.radius for q in out):
            continue
        out.append(point)
    return np.array(out).reshape(-1, 2)


def link_visible_places(cmap: CognitiveMap, raw_pose, ranges: np.ndarray, angles: np.ndarray,
                        range_min: float, range_max: float,
                        config: MapConfig = MapConfig(),  # noqa: B008
                        clearance: float = 0.45, max_distance: float | None = None,
                        via: bool = False) -> CognitiveMap:
    """Return the map with imagined edges from the current place to places in clear view.

    A place within ``max_distance`` (default two radii) is linked when the scan shows a free
    corridor of half-width ``clearance`` all the way to it. Existing edges keep their evidence,
    except that an edge with failure evidence seen clear is retried (:func:`clear_blocked`).
    With ``via``, a place not in straight view is linked when a two-leg path through a point
    in clear view is seen free (:func:`via_point`; e.g. through a doorway at an angle); the
    edge keeps that path as its route. Off by default (and in :func:`observe`): in the
    simulator benchmark the extra links through one doorway each needed their own failed
    attempts once the door was blocked, and goal success dropped.
    """
    if cmap.current < 0:
        return cmap
    pose = map_pose(cmap, raw_pose)
    reach = 2.0 * config.radius if max_distance is None else float(max_distance)
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    r = np.maximum(np.where(np.isnan(r), range_min, r), range_min)
    hit = r < range_max
    local = np.column_stack([r[hit] * np.cos(a[hit]), r[hit] * np.sin(a[hit])])
    c, s_ = math.cos(pose[2]), math.sin(pose[2])
    pts = pose[:2] + local @ np.array([[c, s_], [-s_, c]])
    for k in range(cmap.num_places):
        known = cmap.edge(cmap.current, k)
        if k == cmap.current or (known is not None and known.failure <= 0.0):
            continue
        delta = cmap.poses[k, :2] - pose[:2]
        dist = float(np.linalg.norm(delta))
        if dist > reach or dist == 0.0:
            continue
        u = delta / dist
        rel = pts - pose[:2]
        along = rel @ u
        lateral = np.abs(rel[:, 0] * u[1] - rel[:, 1] * u[0])
        if not np.any((along > 0) & (along < dist + clearance) & (lateral < clearance)):
            cmap = add_imagined_edge(cmap, cmap.current, k, config) if known is None else \
                clear_blocked(cmap, cmap.current, k, config)
        elif known is None and via:
            # no straight view (e.g. the line grazes a door jamb): a two-leg path through a
            # point in clear view, both legs seen free for the footprint, is an imagined link
            # that keeps the path (from here, through that point) as its route
            target = (delta @ np.array([[c, -s_], [s_, c]]))
            point = via_point(r, a, target, range_min, range_max, clearance)
            if point is not None:
                bend = pose[:2] + np.array([[c, -s_], [s_, c]]) @ point
                cmap = add_edge_evidence(cmap, cmap.current, k, config.imagined_count,
                                         config.imagined_count, IMAGINED,
                                         waypoints=(tuple(pose[:2]), tuple(bend)))
    return cmap


def via_point(ranges: np.ndarray, angles: np.ndarray, target, range_min: float,
              range_max: float, clearance: float, max_detour: float = 1.3,
              angle_step: float = math.radians(5.0), radius_step: float = 0.25,
              samples: int = 12):
    """Return a robot-frame point v such that origin -> v -> ``target`` is seen clear, or None.

    Both legs must keep every scan return farther than ``clearance`` (the footprint fits) and
    be seen free: each of ``samples`` points per leg no farther than the return of the beam
    along its bearing (NaN beams are obstacles at ``range_min``, beams without a return free
    up to ``range_max``). Candidates lie on a polar grid around the robot within ``max_detour``
    times the straight distance; the one with the shortest two-leg path is returned.
    """
    t = np.asarray(target, dtype=float).ravel()
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    straight = float(np.linalg.norm(t)) if t.shape == (2,) else 0.0
    if not np.all(np.isfinite(t)) or straight == 0.0 or straight >= range_max or not r.size:
        return None
    r = np.maximum(np.where(np.isnan(r), range_min, r), range_min)
    seen = np.where(r >= range_max, range_max, r)
    hit = r < range_max
    pts = np.column_stack([r[hit] * np.cos(a[hit]), r[hit] * np.sin(a[hit])])
    th = np.arange(-math.pi, math.pi, angle_step)
    rad = np.arange(radius_step, min(straight * max_detour, range_max), radius_step)
    cand = (rad[None, :, None] * np.stack([np.cos(th), np.sin(th)], axis=1)[:, None, :])
    cand = cand.reshape(-1, 2)
    total = np.linalg.norm(cand, axis=1) + np.linalg.norm(t[None, :] - cand, axis=1)
    keep = total <= max_detour * straight
    # the bend itself must be seen free with room for the footprint (cheap pre-filter; the
    # polar grid's angles match the beams' to within half a step)
    beam_of = nearest_beam(th, a)
    room = np.repeat(seen[beam_of], len(rad)) - clearance
    keep &= np.linalg.norm(cand, axis=1) <= room
    cand, total = cand[keep], total[keep]
    if not len(cand):
        return None

    order = np.argsort(total)
    cand = cand[order]
    tree = None
    if len(pts):
        from scipy.spatial import cKDTree
        tree = cKDTree(pts)
    for lo in range(0, len(cand), 64):  # shortest paths first, a chunk at a time
        found = _first_clear_bend(cand[lo:lo + 64], t, tree, seen, a, clearance, straight,
                                  max_detour, samples)
        if found is not None:
            return found
    return None


def _first_clear_bend(cand: np.ndarray, t: np.ndarray, tree, seen: np.ndarray,
                      a: np.ndarray, clearance: float, straight: float, max_detour: float,
                      samples: int):
    """The first candidate bend (in order) whose two legs are clear and seen free, or None."""
    # clearance of both legs, sampled every 0.1 m (the true minimum is at most 0.05 m less:
    # required on top of the clearance)
    step = 0.1
    n = max(2, int(math.ceil((straight * max_detour) / step)) + 1)
    f = np.linspace(0.0, 1.0, n)[None, :, None]
    path = np.concatenate([f * cand[:, None, :],
                           cand[:, None, :] + f * (t[None, None, :] - cand[:, None, :])], axis=1)
    ok = np.ones(len(cand), dtype=bool)
    if tree is not None:
        near = tree.query(path.reshape(-1, 2))[0].reshape(path.shape[:2])
        ok = near.min(axis=1) > clearance + step / 2
    if not np.any(ok):
        return None
    idx = np.flatnonzero(ok)
    f = np.linspace(0.0, 1.0, samples)[None, :, None]
    c = cand[idx]
    legs = np.concatenate([f * c[:, None, :], c[:, None, :] + f * (t[None, None, :] -
                                                                    c[:, None, :])], axis=1)
    dist = np.linalg.norm(legs, axis=2)
    bearing = np.arctan2(legs[..., 1], legs[..., 0])
    beam = nearest_beam(bearing, a)
    visible = np.all((dist <= seen[beam]) | (dist < 1e-9), axis=1)
    if not np.any(visible):
        return None
    return c[int(np.argmax(visible))]


def add_frontiers(cmap: CognitiveMap, points: np.ndarray,
                  config: MapConfig = MapConfig()) -> CognitiveMap:  # noqa: B008
    """Return the map with a hypothesised place at every point, imagined-linked to the current."""
    for point in np.asarray(points, dtype=float).reshape(-1, 2):
        cmap, _ = add_hypothesised_place(cmap, point, cmap.current, config)
    return cmap


def _scan_local(ranges, angles, range_min: float, range_max: float) -> np.ndarray:
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    keep = np.isfinite(r) & (r >= range_min) & (r < range_max)
    return np.column_stack([r[keep] * np.cos(a[keep]), r[keep] * np.sin(a[keep])])


def _rotate(points: np.ndarray, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return points @ np.array([[c, s], [-s, c]])


def match_scan(stored: np.ndarray, local: np.ndarray, yaw: float, search: float,
               step: float = 0.1, resolution: float = 0.05, sigma: float = 0.1
               ) -> tuple[np.ndarray, float]:
    """Return (t, score): where the robot is relative to a place, from its stored scan.

    ``stored`` are scan points relative to the place centre (map axes); ``local`` the current
    scan in the robot frame with heading ``yaw``. Every translation t on a grid of ``step``
    within ``search`` is scored by the mean of exp(-d^2 / 2 sigma^2), d the distance of each
    current point (placed at t) to the nearest stored point; score 1 is a perfect overlap.
    """
    from scipy.ndimage import distance_transform_edt

    if len(stored) < 3 or len(local) < 3:
        return np.zeros(2), 0.0
    world = _rotate(local, yaw)
    lo = stored.min(axis=0) - search - 1.0
    hi = stored.max(axis=0) + search + 1.0
    shape = np.ceil((hi - lo) / resolution).astype(int) + 1
    occupied = np.ones(shape, dtype=bool)
    cells = np.floor((stored - lo) / resolution).astype(int)
    occupied[cells[:, 0], cells[:, 1]] = False
    dist = distance_transform_edt(occupied) * resolution
    offsets = np.arange(-search, search + 1e-9, step)
    tx, ty = np.meshgrid(offsets, offsets, indexing='ij')
    cand = np.column_stack([tx.ravel(), ty.ravel()])
    cand = cand[np.linalg.norm(cand, axis=1) <= search]
    pts = cand[:, None, :] + world[None, :, :]
    idx = np.floor((pts - lo) / resolution).astype(int)
    inside = np.all((idx >= 0) & (idx < shape), axis=2)
    idx = np.clip(idx, 0, shape - 1)
    d = np.where(inside, dist[idx[..., 0], idx[..., 1]], np.inf)
    score = np.exp(-d ** 2 / (2.0 * sigma ** 2)).mean(axis=1)
    best = int(np.argmax(score))
    return cand[best], float(score[best])


PLACE_EVENTS = ('start', 'new_place', 'visit', 'loop_closure', 'revisit', 'new_view',
                'relocalised')


def observe(cmap: CognitiveMap, raw_pose, code, ranges: np.ndarray | None = None,
            angles: np.ndarray | None = None, range_min: float = 0.0,
            range_max: float = float('inf'),
            config: MapConfig = MapConfig()  # noqa: B008
            ) -> tuple[CognitiveMap, MapEvent]:
    """Return (map, event): :func:`update`, then, on arriving at a place, scan-based hypotheses.

    With a scan, arriving at a place (any place event) adds hypothesised places in the open
    directions (:func:`propose_frontiers`) and imagined edges to places in clear view
    (:func:`link_visible_places`); the scan seen when a place is created is stored with it, and
    on re-localisation the current scan is matched against it (:func:`match_scan`) to re-base
    the odometry precisely rather than on the place centre.
    """
    cmap, event = update(cmap, raw_pose, code, config)
    if ranges is None or event.kind not in PLACE_EVENTS or cmap.current < 0:
        return cmap, event
    if angles is None or not math.isfinite(range_max):
        raise ValueError('observe: a scan needs its angles and a finite range_max')
    local = _scan_local(ranges, angles, range_min, range_max)
    pose = map_pose(cmap, raw_pose)
    k = cmap.current
    if event.kind in ('start', 'new_place', 'visit') and k not in cmap.scans and len(local):
        scans = dict(cmap.scans)
        scans[k] = _rotate(local, pose[2]) + (pose[:2] - cmap.poses[k, :2])
        cmap = dataclasses.replace(cmap, scans=scans)
    elif event.kind == 'relocalised' and k in cmap.scans:
        # the place only says "within its radius": the stored scan says where exactly
        t, score = match_scan(cmap.scans[k], local, pose[2], float(cmap.radius[k]))
        if score >= config.scan_match_score:
            offset = cmap.offset.copy()
            offset[:2] = cmap.poses[k, :2] + t - np.asarray(raw_pose, dtype=float)[:2]
            cmap = dataclasses.replace(cmap, offset=offset, last_pose=map_pose(
                dataclasses.replace(cmap, offset=offset), raw_pose))
            event = MapEvent('relocalised', k, f'{event.reason}; scan match {score:.2f}')
    clear = config.frontier_clearance
    points = propose_frontiers(cmap, raw_pose, ranges, angles, range_min, range_max, config,
                               clearance=clear)
    cmap = add_frontiers(cmap, points, config)
    cmap = link_visible_places(cmap, raw_pose, ranges, angles, range_min, range_max, config,
                               clearance=clear)
    return cmap, event


def image_code(rgb: np.ndarray, bins: int = 4, grid: tuple[int, int] = (2, 4)) -> np.ndarray:
    """Return a simple appearance code of an RGB image: a joint colour histogram + grid means.

    The histogram (bins**3 entries) is invariant to small viewpoint changes; the grid of mean
    colours keeps coarse layout. The code is mean-centred and unit-normalised.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[0] < grid[0] or rgb.shape[1] < grid[1]:
        raise ValueError(f'image must be (H, W, 3) with H >= {grid[0]}, W >= {grid[1]}, got '
                         f'{rgb.shape}')
    img = rgb[:, :, :3].astype(float)
    if img.max() > 1.0:
        img = img / 255.0
    q = np.clip((img * bins).astype(int), 0, bins - 1)
    idx = (q[:, :, 0] * bins + q[:, :, 1]) * bins + q[:, :, 2]
    hist = np.bincount(idx.ravel(), minlength=bins ** 3).astype(float)
    hist /= hist.sum()
    h, w = img.shape[:2]
    cells = []
    for r in range(grid[0]):
        for c in range(grid[1]):
            patch = img[r * h // grid[0]:(r + 1) * h // grid[0],
                        c * w // grid[1]:(c + 1) * w // grid[1]]
            cells.append(patch.reshape(-1, 3).mean(axis=0))
    code = np.concatenate([np.sqrt(hist), 0.5 * np.concatenate(cells)])
    return _unit(code - code.mean())


def scan_code(ranges: np.ndarray, range_max: float, bins: int = 8) -> np.ndarray:
    """Return a rotation-invariant code of a laser scan: the histogram of valid ranges.

    NaN beams are ignored; +inf (no return) counts as ``range_max``.
    """
    r = np.asarray(ranges, dtype=float).ravel()
    r = r[~np.isnan(r)]
    if r.size == 0:
        raise ValueError('the scan has no valid (non-NaN) range')
    r = np.minimum(r, range_max)
    hist = np.histogram(r, bins=bins, range=(0.0, range_max))[0].astype(float)
    hist = np.sqrt(hist / hist.sum())
    return _unit(hist - hist.mean())


def to_message_fields(cmap: CognitiveMap) -> dict:
    """Return plain data laid out like embodied_aif_msgs/CognitiveMap (poses as x, y, yaw)."""
    places = [{'id': i, 'x': float(p[0]), 'y': float(p[1]), 'yaw': float(p[2]),
               'visit_count': int(cmap.visits[i]),
               'observation_code': cmap.codes[i].astype(float).tolist(),
               'radius': float(cmap.radius[i]), 'belief': float(cmap.belief[i])}
              for i, p in enumerate(cmap.poses)]
    edges = [{'from_id': e.a, 'to_id': e.b, 'kind': e.kind, 'confidence': e.confidence,
              'count': e.count, 'length': e.length} for e in cmap.edges.values()]
    return {'places': places, 'edges': edges, 'current_place': int(cmap.current),
            'localisation_confidence': cmap.confidence}


__all__ = ['BLOCKED', 'EXPERIENCED', 'IMAGINED', 'CognitiveMap', 'Edge', 'MapConfig',
           'MapEvent', 'abandoned_places', 'add_edge_evidence', 'add_frontiers',
           'add_hypothesised_place',
           'add_imagined_edge', 'clear_blocked', 'code_distances', 'cosine_distance',
           'edge_route', 'image_code',
           'link_visible_places', 'map_pose', 'mark_blocked', 'mark_traversed', 'match_scan',
           'nearest_place', 'observe', 'resume',
           'place_likelihood', 'predicted_positions', 'propose_frontiers',
           'scan_blocks_link',
           'scan_code', 'to_message_fields', 'transition_prior', 'update', 'via_point']


CHECKPOINT_VERSION = 1


def map_to_checkpoint(cmap: CognitiveMap) -> dict:
    """The whole map as a JSON-ready document (exact; see models.state_codec)."""
    from embodied_aif.models.state_codec import encode

    return {'version': CHECKPOINT_VERSION, 'map': encode(cmap, 'map')}


def map_from_checkpoint(doc, source: str = '<checkpoint>') -> CognitiveMap:
    """Rebuild a map from map_to_checkpoint(); ValueError naming the source and the problem."""
    from embodied_aif.models.state_codec import CodecError, decode

    if not isinstance(doc, dict) or doc.get('version') != CHECKPOINT_VERSION:
        raise ValueError(f'{source}: not a cognitive-map checkpoint of version '
                         f'{CHECKPOINT_VERSION}')
    try:
        cmap = decode(doc.get('map'), {'CognitiveMap': CognitiveMap, 'Edge': Edge}, 'map')
    except (CodecError, TypeError, ValueError) as exc:
        raise ValueError(f'{source}: {exc}') from None
    if not isinstance(cmap, CognitiveMap):
        raise ValueError(f'{source}: the document holds no cognitive map')
    return cmap
