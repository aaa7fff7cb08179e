"""The task-level world from the agent's maps: places and objects -> a move/pick/place system.

Places come from the cognitive map (id, position, edges with length and confidence), objects
from the object beliefs (name, position, most probable category). Each object lies at its
nearest place. Move costs per objective follow a simple, documented cost model; they are the
prior means of the cost beliefs that execution then refines.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from embodied_aif.models.ltl import LTLSyntaxError, atoms_of
from embodied_aif.models.transition_system import (
    DEFAULT_OBJECTIVES,
    TransitionSystem,
    build_pick_place_system,
)


@dataclass(frozen=True)
class CostModel:
    """Prior move and manipulation costs (time s, energy, risk).

    Moving along an edge: time = length / speed, energy = length * energy_per_m,
    risk = risk_per_m * length + uncertain_edge_risk * (1 - confidence).
    """

    speed: float = 0.5
    energy_per_m: float = 1.0
    risk_per_m: float = 0.05
    uncertain_edge_risk: float = 2.0
    pick: tuple[float, float, float] = (8.0, 2.0, 0.3)
    place: tuple[float, float, float] = (6.0, 1.5, 0.2)

    def __post_init__(self):
        for name in ('speed', 'energy_per_m', 'risk_per_m', 'uncertain_edge_risk'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == 'speed' and value == 0):
                raise ValueError(f'{name} must be a finite number >= 0 (speed > 0), got {value}')

    def move(self, length: float, confidence: float) -> np.ndarray:
        """Cost vector (time, energy, risk) of moving along an edge."""
        return np.array([length / self.speed, length * self.energy_per_m,
                         self.risk_per_m * length
                         + self.uncertain_edge_risk * (1.0 - min(max(confidence, 0.0), 1.0))])


def place_name(place_id: int) -> str:
    """Name (and label suffix) of a cognitive-map place: place_<id>."""
    return f'place_{int(place_id)}'


REGION_NAME = re.compile(r'[a-z_][a-z0-9_]*\Z')


def parse_regions(specs: Sequence[str]) -> dict[str, tuple[tuple[float, float], ...]]:
    """Named polygons of the map frame from 'name:...' strings.

    'name:xmin,ymin,xmax,ymax' is a box, 'name:x1,y1;x2,y2;x3,y3[;...]' a polygon. A place
    inside a region gets the label ``in_<name>`` (e.g. a hazard zone a task avoids
    with ``G !in_hazard``). Raises ValueError naming the malformed entry.
    """
    regions = {}
    for i, spec in enumerate(specs):
        name, sep, text = str(spec).partition(':')
        name = name.strip()
        if not sep or not REGION_NAME.match(name):
            raise ValueError(f"regions[{i}] {spec!r}: expected 'name:xmin,ymin,xmax,ymax' or "
                             "'name:x1,y1;x2,y2;x3,y3' with a lower-case name")
        try:
            rows = [[float(v) for v in part.split(',')] for part in text.split(';')]
        except ValueError:
            rows = [[]]
        if not all(math.isfinite(v) for row in rows for v in row):
            rows = [[]]
        if len(rows) == 1 and len(rows[0]) == 4:
            x0, y0, x1, y1 = rows[0]
            if x0 >= x1 or y0 >= y1:
                raise ValueError(f'regions[{i}] {spec!r}: a box needs xmin < xmax and '
                                 'ymin < ymax')
            rows = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        if len(rows) < 3 or any(len(row) != 2 for row in rows):
            raise ValueError(f'regions[{i}] {spec!r}: need 4 finite numbers (a box) or at least '
                             '3 finite x,y vertices (a polygon)')
        if name in regions:
            raise ValueError(f'regions[{i}]: region {name!r} given twice')
        regions[name] = tuple((row[0], row[1]) for row in rows)
    return regions


def _inside(x: float, y: float, polygon) -> bool:
    """Even-odd rule; points on a box's edge count as inside."""
    xs = [v[0] for v in polygon]
    ys = [v[1] for v in polygon]
    if not (min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)):
        return False
    inside = False
    for (xa, ya), (xb, yb) in zip(polygon, polygon[1:] + polygon[:1]):
        if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
            inside = not inside
    return inside or any(abs(x - v[0]) + abs(y - v[1]) < 1e-12 for v in polygon)


def region_labels(xy: Sequence[float], regions: Mapping[str, Sequence]) -> set[str]:
    """Labels ``in_<name>`` of the regions that contain the point xy."""
    x, y = float(xy[0]), float(xy[1])
    return {f'in_{name}' for name, polygon in regions.items()
            if _inside(x, y, tuple(tuple(v) for v in polygon))}


def objects_named(objects: Mapping[str, Sequence[float]],
                  atoms: Iterable[str]) -> dict[str, Sequence[float]]:
    """The objects a task's atoms mention (``holding_<o>``, ``<o>_on_<place>``).

    Objects a task never mentions cannot change whether it holds, and each object multiplies
    the pick/place state space by the number of places, so the planner leaves them out.
    """
    atoms = list(atoms)
    return {name: pos for name, pos in objects.items()
            if any(a == f'holding_{name}' or a.startswith(f'{name}_on_') for a in atoms)}


def system_from_map(places: Mapping[int, Sequence[float]],
                    edges: Sequence[tuple[int, int, float, float]],
                    objects: Mapping[str, Sequence[float]],
                    robot_place: int, holding: str | None = None,
                    cost_model: CostModel | None = None,
                    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
                    regions: Mapping[str, Sequence] | None = None,
                    object_places: Iterable[int] | None = None) -> TransitionSystem:
    """Build the move/pick/place transition system of the agent's maps.

    places {id: (x, y)}; edges (a, b, length, confidence); objects {name: (x, y)}, each put
    at its nearest place of ``object_places`` (None or none of them on the map: every place;
    the places the robot has stood at, since a hypothesised one may lie under a table); the
    robot at robot_place, holding `holding` if not None; regions {name: polygon vertices}
    (parse_regions) label the places inside them ``in_<name>``.
    """
    model = cost_model or CostModel()
    if tuple(objectives) != DEFAULT_OBJECTIVES:
        raise ValueError(f'the map cost model knows {DEFAULT_OBJECTIVES}, got {objectives}')
    if robot_place not in places:
        raise ValueError(f'robot place {robot_place} is not a place of the map')
    ids = sorted(places)
    anchors = sorted(set(object_places or ()) & set(ids)) or ids
    xy = np.array([places[i][:2] for i in anchors], dtype=float).reshape(len(anchors), 2)
    where = {}
    for name, pos in objects.items():
        if name == holding:
            continue
        k = int(np.argmin(np.linalg.norm(xy - np.asarray(pos[:2], float), axis=1)))
        where[name] = place_name(anchors[k])
    move_edges = [(place_name(a), place_name(b), model.move(length, conf))
                  for a, b, length, conf in edges if a in places and b in places]
    place_labels = {place_name(i): region_labels(places[i], regions) for i in ids} \
        if regions else None
    return build_pick_place_system([place_name(i) for i in ids], move_edges, where,
                                   place_name(robot_place), holding=holding,
                                   pick_cost=model.pick, place_cost=model.place,
                                   objectives=objectives, place_labels=place_labels,
                                   vocabulary={f'in_{name}' for name in regions or {}})


def cut_off_places(formula: str, ts: TransitionSystem, place_ids: Iterable[int]) -> list[int]:
    """Map places that ``formula`` names but ``ts`` does not carry (by sorted atom).

    A place is named by ``at_place_<id>`` or ``<object>_on_place_<id>``. ``system_from_map``
    builds only the states reachable from the robot over edges not found blocked, so a place
    on the map drops out of the system once every way to it is blocked: its ``at_place_<id>``
    label is then on no state. (An object's atom may also be missing because the object is,
    e.g. gone from the beliefs; its place is not cut off for that.) A formula that does not
    parse names none.
    """
    try:
        atoms = atoms_of(formula)
    except LTLSyntaxError:
        return []
    known = ts.all_labels()
    names = {place_name(i): int(i) for i in place_ids}
    cut = []
    for atom in atoms:
        name = atom[len('at_'):] if atom.startswith('at_') else atom.rpartition('_on_')[2]
        if name in names and f'at_{name}' not in known and names[name] not in cut:
            cut.append(names[name])
    return cut


def transition_key(ts: TransitionSystem, index: int) -> str:
    """What a realised cost is evidence about: action, target and the robot's place.

    In a map-built system a state name starts with the robot's place ('place_3|mug|...'),
    so moving place_3 -> place_5 is the same transition whatever the robot holds; for other
    models the source state's full name is used.
    """
    src = ts.states[int(ts.src[index])]
    return f'{ts.actions[index]} {ts.targets[index]} from {src.split("|")[0]}'


class CostMemory:
    """Realised costs by transition key, kept across re-built systems and restarts.

    The task planner rebuilds its transition system whenever the map or the objects change;
    the memory re-applies every observation to the new system's prior beliefs (conjugate
    updates commute, so the order does not matter), and saves itself as JSON so a restarted
    planner keeps what it learned.
    """

    VERSION = 1

    def __init__(self, objectives: Sequence[str] = DEFAULT_OBJECTIVES):
        self.objectives = tuple(objectives)
        self.observations: dict[str, list[list[float]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.observations.values())

    def record(self, key: str, cost: Sequence[float]) -> None:
        """Remember one realised cost vector of a transition (finite, non-negative)."""
        x = [float(c) for c in cost]
        if len(x) != len(self.objectives) or not all(math.isfinite(c) and c >= 0 for c in x):
            raise ValueError(f'realised cost of {key!r} must be {len(self.objectives)} finite '
                             f'non-negative numbers, got {list(cost)}')
        self.observations.setdefault(key, []).append(x)

    def apply(self, ts: TransitionSystem) -> TransitionSystem:
        """The system with every remembered observation absorbed by its transition's belief."""
        if not self.observations or tuple(ts.objectives) != self.objectives:
            return ts
        beliefs = ts.beliefs
        for index in range(ts.n_transitions):
            for cost in self.observations.get(transition_key(ts, index), ()):
                beliefs = beliefs.update(index, cost)
        return ts.with_beliefs(beliefs)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {'version': self.VERSION, 'objectives': list(self.objectives),
                'observations': self.observations}

    @classmethod
    def from_dict(cls, data, source: str = '<memory>') -> CostMemory:
        """Rebuild from to_dict(); ValueError naming the source and the problem."""
        if not isinstance(data, dict) or data.get('version') != cls.VERSION:
            raise ValueError(f'{source}: not a cost memory of version {cls.VERSION}')
        memory = cls(data.get('objectives', ()))
        observations = data.get('observations')
        if not isinstance(observations, dict):
            raise ValueError(f'{source}: observations must be an object')
        for key, costs in observations.items():
            if not isinstance(costs, list):
                raise ValueError(f'{source}: observations[{key!r}] must be a list')
            for cost in costs:
                try:
                    memory.record(str(key), cost)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f'{source}: {exc}') from None
        return memory


# ----------------------------------------------------------------------- fetch tasks
@dataclass(frozen=True)
class Seen:
    """An object or a support surface as the beliefs have it (map-plane rectangle).

    x, y, z: centre (a surface's z is its top); yaw, length, width: the footprint rectangle;
    height: an object's (0: unknown); category and prob: the most probable category of an
    object.
    """

    x: float
    y: float
    z: float
    category: str = 'surface'
    prob: float = 1.0
    yaw: float = 0.0
    length: float = 0.0
    width: float = 0.0
    height: float = 0.0

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether (x, y) lies on the rectangle, grown by margin."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        u = c * (x - self.x) + s * (y - self.y)
        v = -s * (x - self.x) + c * (y - self.y)
        return abs(u) <= self.length / 2 + margin and abs(v) <= self.width / 2 + margin


@dataclass(frozen=True)
class FetchTask:
    """'Bring the <category> to the table at place N': the object, where to, the formula."""

    object_id: str
    surface_id: str
    place: int
    formula: str
    category: str = ''


@dataclass(frozen=True)
class FetchRules:
    """What the fetch chooser counts as a graspable object and as a table to put it on.

    heights: support-surface heights the arm reaches (m); min_prob: the least probability of
    the wanted category; max_grip: the widest an object's narrower side may be (what
    ``manipulation.grasp_candidates`` fits: the Panda's 8 cm opening less 6 mm each side);
    min_side / max_side: a receiving table's shorter side (trays and shelf boards are left
    out) and longer side (a wider 'surface' is several merged or a
    misperceived one); min_distance: how far the table must be from the object (m); min_gap:
    the least free space between the object's footprint and another object's, measured along
    the line between their centres (m; less leaves the fingers no room; beliefs centred within
    ``same`` of it are taken for duplicates of it, and ones whose top stays ``finger_reach``
    below the object's, e.g. a tray's rim under a bottle, leave the fingers room above);
    free_gap: an object with at least this much on every side is chosen before the more
    probable ones with less (the arm's links above the hand are wider than the fingers, and
    neighbours first seen on arrival crowd it further).
    """

    heights: tuple[float, float] = (0.4, 0.85)
    min_prob: float = 0.4
    max_grip: float = 0.068
    min_side: float = 0.5
    max_side: float = 2.0
    min_distance: float = 1.5
    min_gap: float = 0.04
    free_gap: float = 0.15
    same: float = 0.03
    finger_reach: float = 0.06
    support_margin: float = 0.05

    def reachable(self, height: float) -> bool:
        """Whether a support surface at this height is in the arm's reach."""
        return self.heights[0] <= height <= self.heights[1]


def _half_along(obj: Seen, angle: float) -> float:
    """Half the width of an object's footprint rectangle along a direction."""
    return 0.5 * (obj.length * abs(math.cos(angle - obj.yaw))
                  + obj.width * abs(math.sin(angle - obj.yaw)))


def _support(obj: Seen, surfaces: Mapping[str, Seen], margin: float,
             sized: Callable[[Seen], bool] | None = None) -> str | None:
    """The surface an object stands on: the highest under it, below its centre.

    Of the surfaces at that height (within 3 cm) the smallest: the tightest summary of it.
    With ``sized``, the smallest of those for which it holds, where there is one: a piece of a
    table perceived apart from it (a 0.24 m square beside a 0.85 m table, in one demo) does
    not hide the table.
    """
    under = [(s.z, s.length * s.width, sid) for sid, s in surfaces.items()
             if s.z < obj.z and s.contains(obj.x, obj.y, margin)]
    if not under:
        return None
    top = max(z for z, _, _ in under)
    level = [(area, sid) for z, area, sid in under if z > top - 0.03]
    if sized is not None:
        level = [(area, sid) for area, sid in level if sized(surfaces[sid])] or level
    return min(level)[1]


def _table_sized(s: Seen, rules: FetchRules) -> bool:
    return rules.min_side <= min(s.length, s.width) and max(s.length, s.width) <= rules.max_side


def _destinations(at, surfaces: Mapping[str, Seen], places: Mapping[int, Sequence[float]],
                  regions: Mapping[str, Sequence], rules: FetchRules, skip: Iterable[str] = (),
                  min_distance: float | None = None) -> list[tuple[float, str, int]]:
    """(distance from ``at``, surface id, place) of each table an object at ``at`` may go to.

    The table: in reach, table-sized, outside every region, not in ``skip``, at least
    ``min_distance`` (default rules.min_distance) from ``at``. Its place: the map place
    nearest its centre, outside every region, with that table as its nearest surface (the
    executive puts the object on the surface nearest the step's place) and, when a minimum
    distance applies, not the place nearest ``at``.
    """
    min_distance = rules.min_distance if min_distance is None else min_distance
    ids = sorted(places)
    xy = np.array([places[i][:2] for i in ids], dtype=float).reshape(len(ids), 2)

    def nearest_place(x: float, y: float) -> int:
        return ids[int(np.argmin(np.hypot(xy[:, 0] - x, xy[:, 1] - y)))]

    def nearest_surface(x: float, y: float) -> str:
        return min(surfaces, key=lambda sid: math.hypot(surfaces[sid].x - x,
                                                        surfaces[sid].y - y))

    skip = set(skip)
    out = []
    for sid, table in surfaces.items():
        if sid in skip or not rules.reachable(table.z) or not _table_sized(table, rules) \
                or region_labels((table.x, table.y), regions):
            continue
        distance = math.hypot(table.x - at[0], table.y - at[1])
        place = nearest_place(table.x, table.y)
        if distance < min_distance or (min_distance > 0 and place == nearest_place(*at[:2])) \
                or region_labels(places[place][:2], regions) \
                or nearest_surface(*places[place][:2]) != sid:
            continue
        out.append((distance, sid, place))
    return out


def _task(object_id: str, surface_id: str, place: int, regions: Mapping[str, Sequence],
          category: str) -> FetchTask:
    avoid = ''.join(f' & G !in_{name}' for name in sorted(regions))
    return FetchTask(object_id, surface_id, place,
                     f'F {object_id}_on_{place_name(place)}{avoid}', category)


def choose_delivery(object_id: str, category: str, at, surfaces: Mapping[str, Seen],
                    places: Mapping[int, Sequence[float]], *,
                    regions: Mapping[str, Sequence] | None = None,
                    exclude: Iterable[str] = (), rules: FetchRules | None = None
                    ) -> FetchTask | str:
    """A task to put down an object the robot holds, or the reason there is none.

    The table nearest ``at`` (the robot) of those :func:`_destinations` allows at any
    distance, other than the surfaces in ``exclude`` (e.g. those a place failed on). Formula
    as :func:`choose_fetch`'s.
    """
    rules = rules or FetchRules()
    regions = regions or {}
    if not places:
        return 'no places on the map'
    options = _destinations(at, surfaces, places, regions, rules, skip=exclude, min_distance=0.0)
    if not options:
        return f'no table in reach to put {object_id} on (outside the regions, with a place ' \
               'of its own, not one a place failed on)'
    _, sid, place = min(options)
    return _task(object_id, sid, place, regions, category)


def choose_fetch(objects: Mapping[str, Seen], surfaces: Mapping[str, Seen],
                 places: Mapping[int, Sequence[float]], category: str, *,
                 regions: Mapping[str, Sequence] | None = None, prefer: str | None = None,
                 exclude: Iterable[str] = (), rules: FetchRules | None = None,
                 reachable: Callable[[str], bool] | None = None,
                 held_before: Iterable[str] = ()) -> FetchTask | str:
    """A fetch task over the beliefs, or the reason there is none.

    The object: of `category` (at least rules.min_prob), narrow enough to grasp (or in
    `held_before`: the gripper has held it, whatever width a view gives it), clear of the
    other objects, standing on a table-sized surface in reach, not in `exclude` (e.g. objects
    a pick failed on); `prefer` if it qualifies, else the most probable of those with
    rules.free_gap on every side, else the most probable. With `reachable`,
    only an object for which reachable(id) holds (e.g. the manipulator finds a stand-point to
    pick it from), asked in that order and only for objects with a table to go to.

    The table: a surface in reach, table-sized, outside every region, at least
    rules.min_distance from the object, the farthest such. Its place is the map place nearest
    its centre, which must lie outside every region, differ from the object's nearest place,
    and have that table as its nearest surface (the executive puts the object on the surface
    nearest the step's place). Formula: ``F <object>_on_place_<N>``, and ``G !in_<region>``
    for every region.
    """
    rules = rules or FetchRules()
    regions = regions or {}
    if not places:
        return 'no places on the map'

    def clearance(oid: str, obj: Seen) -> float:
        """The least free space between the object's footprint and a neighbour's (m)."""
        low = obj.z + obj.height / 2 - rules.finger_reach
        gap = math.inf
        for k, o in objects.items():
            d = math.hypot(o.x - obj.x, o.y - obj.y)
            if k == oid or d <= rules.same or o.z + o.height / 2 < low:
                continue
            a = math.atan2(o.y - obj.y, o.x - obj.x)
            gap = min(gap, d - _half_along(obj, a) - _half_along(o, a))
        return gap

    excluded, held = set(exclude), set(held_before)
    candidates = []
    for oid, obj in objects.items():
        if obj.category != category or obj.prob < rules.min_prob or oid in excluded \
                or (oid not in held and min(obj.length, obj.width) > rules.max_grip):
            continue
        free = clearance(oid, obj)
        if free < rules.min_gap:
            continue
        support = _support(obj, surfaces, rules.support_margin,
                           sized=lambda s: _table_sized(s, rules))
        if support is None or not rules.reachable(surfaces[support].z) \
                or not _table_sized(surfaces[support], rules) \
                or region_labels((obj.x, obj.y), regions):
            continue
        candidates.append((oid != prefer, free < rules.free_gap, -obj.prob, oid, support))
    if not candidates:
        return f'no graspable {category} seen standing on a table in reach'
    for *_, oid, support in sorted(candidates):
        obj = objects[oid]
        options = _destinations((obj.x, obj.y), surfaces, places, regions, rules, skip=[support])
        if options and (reachable is None or reachable(oid)):
            _, sid, place = max(options)
            return _task(oid, sid, place, regions, category)
    return f'no table in reach to bring a {category} to (outside the regions, ' \
           f'{rules.min_distance} m away, nearest to a place of its own)' + \
        (f', or no such {category} the arm can reach' if reachable is not None else '')
