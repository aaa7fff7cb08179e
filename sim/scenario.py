"""Scenario files: YAML loading and validation with errors that name the file and the key.

A scenario describes the building (a grid of rooms with doorways), how the rooms look, which
furniture stands in them, which objects are scattered on it and where the robot starts. The
schema is documented in docs/simulation.md; the shipped scenarios live in sim/scenarios/.
Every section is a small frozen dataclass that validates itself in ``__post_init__`` (raising
``ValueError``), so scenarios can be built in code too; the loader wraps those errors in a
:class:`ScenarioError` that names the file and the dotted key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

SCENARIO_DIR = Path(__file__).resolve().parent / 'scenarios'

PARAMETRIC_CATEGORIES = ('can', 'box', 'mug', 'bottle', 'bowl')
MESH_CATEGORIES = ('duck', 'teddy', 'lego', 'jenga', 'mug_mesh')
CATEGORIES = PARAMETRIC_CATEGORIES + MESH_CATEGORIES
FURNITURE_KINDS = ('table', 'shelf', 'tray')
SURFACE_KINDS = ('table', 'shelf', 'tray', 'floor')
APPEARANCE_MODES = ('distinct', 'aliased', 'distractor')

Room = tuple[int, int]


class ScenarioError(ValueError):
    """A scenario could not be found or is malformed; the message names the file and key."""


def _room(value, what: str) -> Room:
    """Return value as a (row, col) tuple of ints or raise ValueError naming `what`."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ValueError(f'{what} must be a [row, col] pair of integers, got {value!r}')
    return int(value[0]), int(value[1])


def _positive(value, what: str) -> float:
    """Return value as a finite float > 0 or raise ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'{what} must be a number, got {value!r}')
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{what} must be finite and > 0, got {value!r}')
    return float(value)


def _check_room_in(room: Room, rows: int, cols: int, what: str) -> None:
    if not (0 <= room[0] < rows and 0 <= room[1] < cols):
        raise ValueError(f'{what} {list(room)} is outside the {rows}x{cols} layout')


@dataclass(frozen=True)
class BuildingSpec:
    """A rows x cols grid of rooms; interior walls have a doorway that can be open or closed."""

    rows: int = 2
    cols: int = 2
    room_size: tuple[float, float] = (4.0, 4.0)
    wall_height: float = 1.5
    wall_thickness: float = 0.1
    door_width: float = 1.0
    doors: str = 'open'
    closed_doors: tuple[tuple[Room, Room], ...] = ()
    open_doors: tuple[tuple[Room, Room], ...] = ()

    def __post_init__(self):
        for name in ('rows', 'cols'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
                raise ValueError(f'{name} must be an integer in [1, 8], got {value!r}')
        size = self.room_size
        if isinstance(size, (int, float)) and not isinstance(size, bool):
            size = (size, size)
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise ValueError(f'room_size must be a number or [width, depth], got {size!r}')
        size = tuple(_positive(s, 'room_size') for s in size)
        object.__setattr__(self, 'room_size', size)
        for name in ('wall_height', 'wall_thickness', 'door_width'):
            object.__setattr__(self, name, _positive(getattr(self, name), name))
        if min(size) < 2.0:
            raise ValueError(f'room_size must be at least 2 m per side, got {list(size)}')
        if self.door_width >= min(size) - 2 * self.wall_thickness:
            raise ValueError(f'door_width {self.door_width} does not fit a wall of the room '
                             f'size {list(size)}')
        if self.doors not in ('open', 'closed'):
            raise ValueError(f"doors must be 'open' or 'closed', got {self.doors!r}")
        for name in ('closed_doors', 'open_doors'):
            pairs = []
            for i, pair in enumerate(getattr(self, name)):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(f'{name}[{i}] must be a pair of rooms, got {pair!r}')
                a = _room(pair[0], f'{name}[{i}][0]')
                b = _room(pair[1], f'{name}[{i}][1]')
                for room in (a, b):
                    _check_room_in(room, self.rows, self.cols, f'{name}[{i}] room')
                if abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1:
                    raise ValueError(f'{name}[{i}]: rooms {list(a)} and {list(b)} are not '
                                     'adjacent, so they share no doorway')
                pairs.append(tuple(sorted((a, b))))
            object.__setattr__(self, name, tuple(pairs))

    def door_open(self, a: Room, b: Room) -> bool:
        """Return whether the doorway between adjacent rooms a and b is open."""
        pair = tuple(sorted((tuple(a), tuple(b))))
        if self.doors == 'open':
            return pair not in self.closed_doors
        return pair in self.open_doors

    @property
    def rooms(self) -> list[Room]:
        """All rooms as (row, col), row-major."""
        return [(r, c) for r in range(self.rows) for c in range(self.cols)]


@dataclass(frozen=True)
class AppearanceSpec:
    """How rooms look: distinct, aliased groups that look alike, or randomised distractors."""

    mode: str = 'distinct'
    alias_groups: tuple[tuple[Room, ...], ...] = ()
    textures: bool = True

    def __post_init__(self):
        if self.mode not in APPEARANCE_MODES:
            raise ValueError(f'mode must be one of {list(APPEARANCE_MODES)}, got {self.mode!r}')
        if not isinstance(self.textures, bool):
            raise ValueError(f'textures must be true or false, got {self.textures!r}')
        groups, seen = [], set()
        for i, group in enumerate(self.alias_groups):
            if not isinstance(group, (list, tuple)) or len(group) < 2:
                raise ValueError(f'alias_groups[{i}] must list at least 2 rooms, got {group!r}')
            rooms = tuple(_room(r, f'alias_groups[{i}] room') for r in group)
            for room in rooms:
                if room in seen:
                    raise ValueError(f'alias_groups[{i}]: room {list(room)} is in two groups')
                seen.add(room)
            groups.append(rooms)
        object.__setattr__(self, 'alias_groups', tuple(groups))
        if self.mode == 'aliased' and not groups:
            raise ValueError("mode 'aliased' needs at least one group in alias_groups")


@dataclass(frozen=True)
class FurnitureItem:
    """One piece of furniture at a fixed pose relative to its room's centre (yaw in degrees)."""

    kind: str
    room: Room = (0, 0)
    x: float = 0.0
    y: float = 0.0
    yaw_deg: float = 0.0

    def __post_init__(self):
        if self.kind not in FURNITURE_KINDS:
            raise ValueError(f'kind must be one of {list(FURNITURE_KINDS)}, got {self.kind!r}')
        object.__setattr__(self, 'room', _room(self.room, 'room'))
        for name in ('x', 'y', 'yaw_deg'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number, got {value!r}')
            object.__setattr__(self, name, float(value))
        if self.yaw_deg % 90.0 != 0.0:
            raise ValueError(f'yaw_deg must be a multiple of 90, got {self.yaw_deg}')


@dataclass(frozen=True)
class FurnitureSpec:
    """Random furniture per room (kind -> count) plus pieces at fixed poses."""

    per_room: dict = field(default_factory=lambda: {'table': 1, 'shelf': 1, 'tray': 1})
    fixed: tuple[FurnitureItem, ...] = ()

    def __post_init__(self):
        if not isinstance(self.per_room, dict):
            raise ValueError(f'per_room must be a mapping kind -> count, got {self.per_room!r}')
        for kind, count in self.per_room.items():
            if kind not in FURNITURE_KINDS:
                raise ValueError(f'per_room: unknown furniture kind {kind!r} '
                                 f'(known: {list(FURNITURE_KINDS)})')
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 4:
                raise ValueError(f'per_room.{kind} must be an integer in [0, 4], got {count!r}')


@dataclass(frozen=True)
class ObjectSpec:
    """Which object categories are scattered, how many instances each, and on what."""

    categories: tuple[str, ...] = PARAMETRIC_CATEGORIES
    instances_per_category: int = 3
    distractors: int = 0
    surfaces: tuple[str, ...] = ('table', 'shelf', 'tray')
    rooms: tuple[Room, ...] = ()

    def __post_init__(self):
        cats = tuple(self.categories)
        if not cats:
            raise ValueError('categories must not be empty')
        for cat in cats:
            if cat not in CATEGORIES:
                raise ValueError(f'unknown object category {cat!r} (known: {list(CATEGORIES)})')
        if len(set(cats)) != len(cats):
            raise ValueError(f'categories has duplicates: {list(cats)}')
        object.__setattr__(self, 'categories', cats)
        for name, top in (('instances_per_category', 20), ('distractors', 50)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ValueError(f'{name} must be an integer in [0, {top}], got {value!r}')
        surfaces = tuple(self.surfaces)
        if not surfaces:
            raise ValueError('surfaces must not be empty')
        for kind in surfaces:
            if kind not in SURFACE_KINDS:
                raise ValueError(f'unknown surface {kind!r} (known: {list(SURFACE_KINDS)})')
        object.__setattr__(self, 'surfaces', surfaces)
        object.__setattr__(self, 'rooms', tuple(_room(r, 'rooms entry') for r in self.rooms))


@dataclass(frozen=True)
class RobotSpec:
    """Robot start: a room and an optional pose [x, y, yaw_deg] relative to its centre."""

    start_room: Room = (0, 0)
    start_pose: tuple[float, float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, 'start_room', _room(self.start_room, 'start_room'))
        if self.start_pose is not None:
            pose = self.start_pose
            if not isinstance(pose, (list, tuple)) or len(pose) != 3 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in pose):
                raise ValueError(f'start_pose must be [x, y, yaw_deg] finite numbers, got {pose!r}')
            object.__setattr__(self, 'start_pose', tuple(float(v) for v in pose))


@dataclass(frozen=True)
class Scenario:
    """A whole scenario: building, appearance, furniture, objects and robot start."""

    name: str
    description: str = ''
    building: BuildingSpec = field(default_factory=BuildingSpec)
    appearance: AppearanceSpec = field(default_factory=AppearanceSpec)
    furniture: FurnitureSpec = field(default_factory=FurnitureSpec)
    objects: ObjectSpec = field(default_factory=ObjectSpec)
    robot: RobotSpec = field(default_factory=RobotSpec)
    source: str = '<code>'

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'name must be a non-empty string, got {self.name!r}')
        b = self.building
        _check_room_in(self.robot.start_room, b.rows, b.cols, 'robot.start_room')
        for group in self.appearance.alias_groups:
            for room in group:
                _check_room_in(room, b.rows, b.cols, 'appearance.alias_groups room')
        for item in self.furniture.fixed:
            _check_room_in(item.room, b.rows, b.cols, 'furniture.fixed room')
        for room in self.objects.rooms:
            _check_room_in(room, b.rows, b.cols, 'objects.rooms entry')


_SECTIONS = {'building': BuildingSpec, 'appearance': AppearanceSpec, 'furniture': FurnitureSpec,
             'objects': ObjectSpec, 'robot': RobotSpec}


def _make(cls, data, where: str, key: str):
    """Build dataclass cls from a mapping, naming file and key in any error."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f'{where}: {key}: expected a mapping, got {type(data).__name__}')
    known = {f.name for f in fields(cls)} - {'source'}
    for name in data:
        if name not in known:
            raise ScenarioError(f'{where}: {key}.{name}: unknown key (known: {sorted(known)})')
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f'{where}: {key}: {exc}') from None


def parse_scenario(data, source: str = '<dict>') -> Scenario:
    """Validate a scenario mapping (as read from YAML) and return a Scenario."""
    if not isinstance(data, dict):
        raise ScenarioError(f'{source}: the top level must be a mapping, '
                            f'got {type(data).__name__}')
    allowed = {'name', 'description', *_SECTIONS}
    for key in data:
        if key not in allowed:
            raise ScenarioError(f'{source}: {key}: unknown key (known: {sorted(allowed)})')
    if 'name' not in data:
        raise ScenarioError(f'{source}: name: missing (every scenario needs a name)')
    sections = {}
    for key, cls in _SECTIONS.items():
        section = dict(data.get(key) or {}) if isinstance(data.get(key), dict) else data.get(key)
        if cls is FurnitureSpec and isinstance(section, dict) and 'fixed' in section:
            fixed = section['fixed'] or []
            if not isinstance(fixed, list):
                raise ScenarioError(f'{source}: furniture.fixed: expected a list')
            section['fixed'] = tuple(_make(FurnitureItem, item, source, f'furniture.fixed[{i}]')
                                     for i, item in enumerate(fixed))
        sections[key] = _make(cls, section, source, key)
    try:
        return Scenario(name=data['name'], description=str(data.get('description', '')),
                        source=source, **sections)
    except ValueError as exc:
        raise ScenarioError(f'{source}: {exc}') from None


def available_scenarios() -> list[str]:
    """Names of the scenarios shipped in sim/scenarios/."""
    return sorted(p.stem for p in SCENARIO_DIR.glob('*.yaml'))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a YAML file by path; raise ScenarioError if bad."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    text = str(name_or_path)
    path = SCENARIO_DIR / f'{text}.yaml'
    if not path.is_file():
        path = Path(text)
        if not path.is_file():
            raise ScenarioError(f'unknown scenario {text!r}: neither a shipped scenario '
                                f'({", ".join(available_scenarios())}) nor a file')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f'{path}: not valid YAML: {exc}') from None
    return parse_scenario(data, source=str(path))
