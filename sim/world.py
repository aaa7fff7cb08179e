"""The building: rooms on a grid, walls with doorways, room appearance, furniture, free space.

Room (row, col) spans x in [col * W, (col + 1) * W] and y in [row * D, (row + 1) * D] (W, D =
room_size), so the building's south-west corner is the world origin. Each room's walls are
half-thickness slabs on its own side of every wall line, so two rooms sharing a wall can look
different; an open interior wall has a doorway of ``door_width`` in its middle. Static geometry
is merged: one floor body and one wall body (many box shapes) per room, one body per piece of
furniture. Furniture yaw is a multiple of 90 degrees, so footprints are axis-aligned rectangles;
they, the walls and the outside of the building make the occupancy grid used for base collision
and for ground-truth shortest paths.
"""
from __future__ import annotations

import functools
import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import pybullet as p
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from embodied_aif.sim.objects import DATA
from embodied_aif.sim.scenario import Room, Scenario

TEXTURES = ('checker_grid.jpg', 'tex256.png', 'uvmap.png',
            'table/table.png', 'tray/tray.jpg', 'domino/domino.jpg', 'jenga/jenga.png')
# Room colours (floor, wall) far apart from each other; distinct rooms draw without replacement.
PALETTE = (
    ((0.75, 0.70, 0.60), (0.90, 0.85, 0.70)), ((0.45, 0.55, 0.70), (0.70, 0.80, 0.95)),
    ((0.50, 0.65, 0.45), (0.80, 0.95, 0.75)), ((0.70, 0.45, 0.40), (0.95, 0.75, 0.70)),
    ((0.55, 0.50, 0.70), (0.85, 0.80, 0.95)), ((0.65, 0.65, 0.65), (0.95, 0.95, 0.95)),
    ((0.70, 0.60, 0.35), (0.95, 0.90, 0.60)), ((0.40, 0.60, 0.60), (0.70, 0.95, 0.90)),
    ((0.60, 0.40, 0.55), (0.90, 0.70, 0.85)), ((0.35, 0.35, 0.45), (0.65, 0.65, 0.80)),
)
GRID_RES = 0.05
TABLE_HEIGHT = 0.62


@dataclass(frozen=True)
class Surface:
    """A horizontal support rectangle (world frame, axis-aligned) objects can stand on."""

    kind: str
    room: Room
    center: tuple[float, float]
    half: tuple[float, float]
    z: float
    clearance: float = 1.0


@dataclass
class Furniture:
    """A piece of furniture: kind, room, centre, yaw and footprint half extents (world axes)."""

    kind: str
    room: Room
    center: tuple[float, float]
    yaw: float
    size: tuple[float, float, float]
    rgba: tuple[float, float, float, float]
    on_table: bool = False
    base_z: float = 0.0
    body: int = -1

    @property
    def half(self) -> tuple[float, float]:
        """Footprint half extents along world x and y."""
        w, d = self.size[0] / 2, self.size[1] / 2
        return (d, w) if round(math.cos(self.yaw)) == 0 else (w, d)


@dataclass
class RoomLook:
    """How one room looks: colours and textures (texture names from pybullet_data or None)."""

    floor_rgba: tuple
    wall_rgba: tuple
    floor_texture: str | None
    wall_texture: str | None
    look_id: int


@dataclass
class World:
    """The built building: bodies, furniture, support surfaces, occupancy and free space."""

    scenario: Scenario
    looks: dict
    furniture: list
    surfaces: list
    occupancy: np.ndarray
    clearance: np.ndarray
    wall_bodies: dict = field(default_factory=dict)
    floor_bodies: dict = field(default_factory=dict)
    _graph: object = None
    _graph_radius: float = -1.0

    @property
    def size(self) -> tuple[float, float]:
        """Building extent (x, y) in metres."""
        b = self.scenario.building
        return b.cols * b.room_size[0], b.rows * b.room_size[1]

    def static_bodies(self) -> list[int]:
        """Ids of all static bodies (floors, walls, furniture)."""
        return (list(self.floor_bodies.values()) + list(self.wall_bodies.values())
                + [f.body for f in self.furniture])

    def room_of(self, x: float, y: float) -> Room | None:
        """Return the (row, col) of the room containing (x, y), or None outside the building."""
        b = self.scenario.building
        c, r = math.floor(x / b.room_size[0]), math.floor(y / b.room_size[1])
        if 0 <= r < b.rows and 0 <= c < b.cols:
            return (r, c)
        return None

    def room_center(self, room: Room) -> tuple[float, float]:
        """Return the world (x, y) of a room's centre."""
        w, d = self.scenario.building.room_size
        return ((room[1] + 0.5) * w, (room[0] + 0.5) * d)

    def cell(self, x: float, y: float) -> tuple[int, int]:
        """Grid (row, col) index of world point (x, y) (may be outside the grid)."""
        return int(math.floor(y / GRID_RES)), int(math.floor(x / GRID_RES))

    def clearance_at(self, x: float, y: float) -> float:
        """Distance (m) from (x, y) to the nearest occupied cell; 0 outside the building."""
        i, j = self.cell(x, y)
        if 0 <= i < self.clearance.shape[0] and 0 <= j < self.clearance.shape[1]:
            return float(self.clearance[i, j])
        return 0.0

    def footprint_hits(self, x: float, y: float, yaw: float, half_length: float,
                       half_width: float) -> int:
        """Occupied cells under a rectangle: a base at (x, y) facing ``yaw``.

        Counted at points spaced at most half a cell apart; points outside the building count.
        """
        u, v = _rectangle_samples(half_length, half_width)
        c, s = math.cos(yaw), math.sin(yaw)
        px, py = x + c * u - s * v, y + s * u + c * v
        rows, cols = np.floor(py / GRID_RES).astype(int), np.floor(px / GRID_RES).astype(int)
        on = ((rows >= 0) & (rows < self.occupancy.shape[0]) & (cols >= 0)
              & (cols < self.occupancy.shape[1]))
        return int(np.count_nonzero(~on) + np.count_nonzero(self.occupancy[rows[on], cols[on]]))

    def shortest_path_length(self, a, b, radius: float = 0.0) -> float:
        """Length (m) of the shortest 8-connected grid path from a to b keeping `radius` clear.

        Ends that fall in blocked cells snap to the nearest free cell within 1 m; returns inf
        when there is no path (e.g. a closed door).
        """
        free = self.clearance >= radius
        if self._graph is None or self._graph_radius != radius:
            self._graph = _grid_graph(free)
            self._graph_radius = radius
        nodes = []
        for x, y in (a, b):
            cell = _snap(free, self.cell(x, y), int(round(1.0 / GRID_RES)))
            if cell is None:
                return math.inf
            nodes.append(cell[0] * free.shape[1] + cell[1])
        if nodes[0] == nodes[1]:
            return 0.0
        dist = csgraph.dijkstra(self._graph, directed=False, indices=nodes[0])
        return float(dist[nodes[1]] * GRID_RES)


@functools.lru_cache(maxsize=8)
def _rectangle_samples(half_length: float, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (u, v) of a centred rectangle at most half a grid cell apart (built once)."""
    step = GRID_RES / 2
    n_l = int(math.ceil(2 * half_length / step)) + 1
    n_w = int(math.ceil(2 * half_width / step)) + 1
    u, v = np.meshgrid(np.linspace(-half_length, half_length, n_l),
                       np.linspace(-half_width, half_width, n_w))
    u.flags.writeable = v.flags.writeable = False
    return u, v


def _grid_graph(free: np.ndarray):
    """Sparse 8-connected graph over free cells (edge weights in cells, no corner cutting)."""
    h, w = free.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, weights = [], [], []
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        si, di_ = slice(max(0, -di), h - max(0, di)), slice(max(0, di), h - max(0, -di))
        sj, dj_ = slice(max(0, -dj), w - max(0, dj)), slice(max(0, dj), w - max(0, -dj))
        ok = free[si, sj] & free[di_, dj_]
        if di and dj:
            ok &= free[si, dj_] & free[di_, sj]
        rows.append(idx[si, sj][ok])
        cols.append(idx[di_, dj_][ok])
        weights.append(np.full(int(ok.sum()), math.hypot(di, dj)))
    data = (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols)))
    return sparse.csr_matrix(data, shape=(h * w, h * w))


def _snap(free: np.ndarray, cell, max_cells: int):
    """Nearest free cell to `cell` within max_cells (breadth-first), or None."""
    h, w = free.shape
    i0, j0 = cell
    if 0 <= i0 < h and 0 <= j0 < w and free[i0, j0]:
        return cell
    best, seen = [], set()
    heapq.heappush(best, (0, i0, j0))
    while best:
        d, i, j = heapq.heappop(best)
        if (i, j) in seen or d > max_cells:
            continue
        seen.add((i, j))
        if 0 <= i < h and 0 <= j < w and free[i, j]:
            return (i, j)
        for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            if (i + di, j + dj) not in seen:
                heapq.heappush(best, (d + 1, i + di, j + dj))
    return None


def _looks(scenario: Scenario, rng: np.random.Generator) -> dict:
    """Assign each room its colours and textures according to the appearance mode."""
    app, rooms = scenario.appearance, scenario.building.rooms
    looks = {}
    order = rng.permutation(len(PALETTE))
    tex_order = rng.permutation(len(TEXTURES))
    for k, room in enumerate(rooms):
        if app.mode == 'distractor':
            floor, wall = PALETTE[int(rng.integers(len(PALETTE)))]
            jitter = rng.uniform(-0.15, 0.15, 6)
            floor = tuple(float(np.clip(c + j, 0, 1)) for c, j in zip(floor, jitter[:3]))
            wall = tuple(float(np.clip(c + j, 0, 1)) for c, j in zip(wall, jitter[3:]))
            ftex = TEXTURES[int(rng.integers(len(TEXTURES)))]
            wtex = TEXTURES[int(rng.integers(len(TEXTURES)))]
        else:
            floor, wall = PALETTE[int(order[k % len(PALETTE)])]
            ftex = TEXTURES[int(tex_order[k % len(TEXTURES)])]
            wtex = TEXTURES[int(tex_order[(k + 3) % len(TEXTURES)])]
        if not app.textures:
            ftex = wtex = None
        looks[room] = RoomLook((*floor, 1.0), (*wall, 1.0), ftex, wtex, look_id=k)
    for group in app.alias_groups:
        for room in group[1:]:
            src = looks[group[0]]
            looks[room] = RoomLook(src.floor_rgba, src.wall_rgba, src.floor_texture,
                                   src.wall_texture, look_id=src.look_id)
    return looks


def _wall_boxes(scenario: Scenario, room: Room) -> list[tuple]:
    """Wall slabs of a room as (centre xyz, half extents) boxes, with doorway gaps."""
    b = scenario.building
    w, d = b.room_size
    t, h, dw = b.wall_thickness / 2, b.wall_height, b.door_width
    r, c = room
    x0, y0, x1, y1 = c * w, r * d, (c + 1) * w, (r + 1) * d
    boxes = []
    # (neighbour, fixed coordinate, axis along which the slab runs)
    sides = (((r - 1, c), ('y', y0 + t / 2)), ((r + 1, c), ('y', y1 - t / 2)),
             ((r, c - 1), ('x', x0 + t / 2)), ((r, c + 1), ('x', x1 - t / 2)))
    for nb, (axis, fixed) in sides:
        interior = 0 <= nb[0] < b.rows and 0 <= nb[1] < b.cols
        lo, hi = (x0, x1) if axis == 'y' else (y0, y1)
        spans = [(lo, hi)]
        if interior and b.door_open(room, nb):
            mid = (lo + hi) / 2
            spans = [(lo, mid - dw / 2), (mid + dw / 2, hi)]
        for a, e in spans:
            centre_along, half_along = (a + e) / 2, (e - a) / 2
            if axis == 'y':
                boxes.append(((centre_along, fixed, h / 2), (half_along, t / 2, h / 2)))
            else:
                boxes.append(((fixed, centre_along, h / 2), (t / 2, half_along, h / 2)))
    return boxes


def _door_zones(scenario: Scenario, room: Room) -> list[tuple]:
    """Rectangles (cx, cy, hx, hy) in front of each interior doorway, kept free of furniture."""
    b = scenario.building
    w, d = b.room_size
    r, c = room
    depth, half_w = 0.9, b.door_width / 2 + 0.3
    zones = []
    if r > 0:
        zones.append(((c + 0.5) * w, r * d, half_w, depth))
    if r < b.rows - 1:
        zones.append(((c + 0.5) * w, (r + 1) * d, half_w, depth))
    if c > 0:
        zones.append((c * w, (r + 0.5) * d, depth, half_w))
    if c < b.cols - 1:
        zones.append(((c + 1) * w, (r + 0.5) * d, depth, half_w))
    return zones


def _overlap(a, b, margin: float) -> bool:
    """Whether rectangles (cx, cy, hx, hy) a and b overlap once b is grown by margin."""
    return (abs(a[0] - b[0]) < a[2] + b[2] + margin) and (abs(a[1] - b[1]) < a[3] + b[3] + margin)


def _furniture_size(kind: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """Sample (width, depth, height) of a piece of furniture."""
    if kind == 'table':
        return (float(rng.uniform(0.9, 1.3)), float(rng.uniform(0.6, 0.8)), TABLE_HEIGHT)
    if kind == 'shelf':
        return (float(rng.uniform(0.7, 1.0)), 0.35, 0.95)
    return (float(rng.uniform(0.35, 0.45)), float(rng.uniform(0.25, 0.32)), 0.05)


def _layout_room(scenario: Scenario, room: Room, rng: np.random.Generator,
                 centre_free: tuple[float, float] | None) -> list[Furniture]:
    """Place the random furniture of one room (fixed pieces are added by the caller)."""
    b = scenario.building
    w, d = b.room_size
    x0, y0 = room[1] * w, room[0] * d
    t = b.wall_thickness / 2
    blocked = list(_door_zones(scenario, room))
    if centre_free is not None:
        blocked.append((centre_free[0], centre_free[1], 0.75, 0.75))
    items = []
    counts = scenario.furniture.per_room
    for kind in ('shelf', 'table'):
        for _ in range(counts.get(kind, 0)):
            size = _furniture_size(kind, rng)
            for _attempt in range(60):
                yaw = float(rng.integers(4)) * math.pi / 2
                if kind == 'shelf':  # back against a wall, facing into the room
                    side = int(rng.integers(4))
                    # Local -y (the back panel) faces the wall: south, north, west, east.
                    yaw = (0.0, math.pi, -math.pi / 2, math.pi / 2)[side]
                piece = Furniture(kind, room, (0.0, 0.0), yaw, size, (0, 0, 0, 1))
                hx, hy = piece.half
                lo_x, hi_x = x0 + t + hx + 0.02, x0 + w - t - hx - 0.02
                lo_y, hi_y = y0 + t + hy + 0.02, y0 + d - t - hy - 0.02
                if lo_x >= hi_x or lo_y >= hi_y:
                    break
                cx, cy = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
                if kind == 'shelf':
                    cx, cy = [(cx, lo_y), (cx, hi_y), (lo_x, cy), (hi_x, cy)][side]
                rect = (cx, cy, hx, hy)
                if any(_overlap(rect, z, 0.0) for z in blocked):
                    continue
                if any(_overlap(rect, (*f.center, *f.half), 0.5) for f in items):
                    continue
                piece.center = (cx, cy)
                piece.rgba = _furniture_colour(kind, rng)
                items.append(piece)
                break
    tables = [f for f in items if f.kind == 'table']
    for _ in range(counts.get('tray', 0)):
        size = _furniture_size('tray', rng)
        if tables:
            table = tables[int(rng.integers(len(tables)))]
            hx, hy = table.half
            yaw = table.yaw
            piece = Furniture('tray', room, (0.0, 0.0), yaw, size, _furniture_colour('tray', rng),
                              on_table=True, base_z=table.size[2])
            px, py = piece.half
            cx = table.center[0] + float(rng.uniform(-1, 1)) * max(0.0, hx - px - 0.05)
            cy = table.center[1] + float(rng.uniform(-1, 1)) * max(0.0, hy - py - 0.05)
            piece.center = (cx, cy)
            items.append(piece)
    return items


def _furniture_colour(kind: str, rng: np.random.Generator) -> tuple:
    base = {'table': (0.55, 0.38, 0.22), 'shelf': (0.45, 0.32, 0.2), 'tray': (0.3, 0.3, 0.35)}
    jitter = rng.uniform(-0.12, 0.12, 3)
    return (*(float(np.clip(c + j, 0, 1)) for c, j in zip(base[kind], jitter)), 1.0)


def _furniture_boxes(piece: Furniture) -> list[tuple]:
    """Boxes (local centre, half extents) of a piece in its own frame (x along width)."""
    w, d, h = piece.size
    if piece.kind == 'table':
        top, leg = 0.03, 0.025
        boxes = [((0, 0, h - top / 2), (w / 2, d / 2, top / 2))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                boxes.append(((sx * (w / 2 - leg), sy * (d / 2 - leg), (h - top) / 2),
                              (leg, leg, (h - top) / 2)))
        return boxes
    if piece.kind == 'shelf':
        board, side = 0.02, 0.02
        boxes = [((sx * (w / 2 - side / 2), 0, h / 2), (side / 2, d / 2, h / 2)) for sx in (-1, 1)]
        boxes.append(((0, -d / 2 + 0.01, h / 2), (w / 2, 0.01, h / 2)))  # back panel
        for z in _shelf_levels(h):
            boxes.append(((0, 0, z - board / 2), (w / 2 - side, d / 2, board / 2)))
        return boxes
    rim, base = 0.01, 0.01
    boxes = [((0, 0, base / 2), (w / 2, d / 2, base / 2))]
    for sx in (-1, 1):
        boxes.append(((sx * (w / 2 - rim / 2), 0, h / 2), (rim / 2, d / 2, h / 2)))
    for sy in (-1, 1):
        boxes.append(((0, sy * (d / 2 - rim / 2), h / 2), (w / 2, rim / 2, h / 2)))
    return boxes


def _shelf_levels(h: float) -> tuple[float, ...]:
    """Top heights of a shelf's boards."""
    return (0.04, h * 0.5, h)


def _surfaces(piece: Furniture) -> list[Surface]:
    """Support surfaces of a piece of furniture (world frame)."""
    hx, hy = piece.half
    if piece.kind == 'table':
        return [Surface('table', piece.room, piece.center, (hx - 0.05, hy - 0.05), piece.size[2])]
    if piece.kind == 'tray':
        return [Surface('tray', piece.room, piece.center, (hx - 0.03, hy - 0.03),
                        piece.base_z + 0.01, clearance=1.0)]
    levels = _shelf_levels(piece.size[2])
    # The usable depth is the full footprint minus the side panels/back: shrink both axes.
    out = []
    for k, z in enumerate(levels):
        gap = (levels[k + 1] - z - 0.03) if k + 1 < len(levels) else 1.0
        out.append(Surface('shelf', piece.room, piece.center, (hx - 0.06, hy - 0.06), z, gap))
    return out


def _multi_box_body(boxes, client: int, position=(0, 0, 0), yaw: float = 0.0,
                    collision: bool = True) -> int:
    """One static body made of several boxes (centres relative to the body frame)."""
    centres = [list(c) for c, _ in boxes]
    halves = [list(h) for _, h in boxes]
    n = len(boxes)
    vis = p.createVisualShapeArray(shapeTypes=[p.GEOM_BOX] * n, halfExtents=halves,
                                   visualFramePositions=centres, physicsClientId=client)
    col = -1
    if collision:
        col = p.createCollisionShapeArray(shapeTypes=[p.GEOM_BOX] * n, halfExtents=halves,
                                          collisionFramePositions=centres,
                                          physicsClientId=client)
    return p.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=col,
                             baseVisualShapeIndex=vis, basePosition=list(position),
                             baseOrientation=p.getQuaternionFromEuler((0, 0, yaw)),
                             physicsClientId=client)


def build_world(scenario: Scenario, rng: np.random.Generator, client: int,
                robot_start: tuple[float, float] | None = None) -> World:
    """Create the building of `scenario` in `client` (an empty simulation); return the World."""
    b = scenario.building
    w, d = b.room_size
    looks = _looks(scenario, rng)
    textures = {}

    def texture(name):
        if name not in textures:
            textures[name] = p.loadTexture(str(DATA / name), physicsClientId=client)
        return textures[name]

    # Furniture: fixed pieces, then random ones; aliased rooms copy their group leader's layout.
    furniture = []
    for item in scenario.furniture.fixed:
        cx, cy = (item.room[1] + 0.5) * w + item.x, (item.room[0] + 0.5) * d + item.y
        size = _furniture_size(item.kind, rng)
        piece = Furniture(item.kind, item.room, (cx, cy), math.radians(item.yaw_deg), size,
                          _furniture_colour(item.kind, rng))
        if item.kind == 'tray':
            below = [f for f in furniture if f.kind == 'table' and f.room == item.room
                     and abs(f.center[0] - cx) < f.half[0] and abs(f.center[1] - cy) < f.half[1]]
            if below:
                piece.on_table, piece.base_z = True, below[0].size[2]
        furniture.append(piece)
    leaders = {room: group[0] for group in scenario.appearance.alias_groups for room in group}
    per_room = {}
    for room in b.rooms:
        leader = leaders.get(room, room)
        if leader != room and leader in per_room:
            dx, dy = (room[1] - leader[1]) * w, (room[0] - leader[0]) * d
            per_room[room] = [Furniture(f.kind, room, (f.center[0] + dx, f.center[1] + dy), f.yaw,
                                        f.size, f.rgba, f.on_table, f.base_z)
                              for f in per_room[leader]]
            continue
        centre = ((room[1] + 0.5) * w, (room[0] + 0.5) * d)
        per_room[room] = _layout_room(scenario, room, rng, centre)
    for room in b.rooms:
        furniture.extend(per_room[room])

    floor_bodies, wall_bodies = {}, {}
    for room in b.rooms:
        look = looks[room]
        centre = ((room[1] + 0.5) * w, (room[0] + 0.5) * d)
        floor = _multi_box_body([((0, 0, -0.025), (w / 2, d / 2, 0.025))], client,
                                position=(*centre, 0.0))
        walls = _multi_box_body(_wall_boxes(scenario, room), client)
        for body, rgba, tex in ((floor, look.floor_rgba, look.floor_texture),
                                (walls, look.wall_rgba, look.wall_texture)):
            kwargs = {'rgbaColor': list(rgba)}
            if tex is not None:
                kwargs['textureUniqueId'] = texture(tex)
            p.changeVisualShape(body, -1, physicsClientId=client, **kwargs)
        floor_bodies[room], wall_bodies[room] = floor, walls
    surfaces = []
    for piece in furniture:
        piece.body = _multi_box_body(_furniture_boxes(piece), client,
                                     position=(*piece.center, piece.base_z), yaw=piece.yaw)
        p.changeVisualShape(piece.body, -1, rgbaColor=list(piece.rgba), physicsClientId=client)
        surfaces.extend(_surfaces(piece))
    for room in b.rooms:
        cx, cy = (room[1] + 0.5) * w, (room[0] + 0.5) * d
        surfaces.append(Surface('floor', room, (cx, cy), (w / 2 - 0.3, d / 2 - 0.3), 0.0))

    # Occupancy grid: walls and furniture footprints (trays on tables add nothing).
    nx, ny = int(round(b.cols * w / GRID_RES)), int(round(b.rows * d / GRID_RES))
    occ = np.zeros((ny, nx), dtype=bool)
    rects = [(c, h) for room in b.rooms for c, h in _wall_boxes(scenario, room)]
    rects += [((*f.center, 0.0), (*f.half, 0.0)) for f in furniture if not f.on_table]
    for (cx, cy, _), (hx, hy, _) in rects:
        j0, j1 = int(math.floor((cx - hx) / GRID_RES)), int(math.ceil((cx + hx) / GRID_RES))
        i0, i1 = int(math.floor((cy - hy) / GRID_RES)), int(math.ceil((cy + hy) / GRID_RES))
        occ[max(i0, 0):max(i1, 0), max(j0, 0):max(j1, 0)] = True
    padded = np.pad(occ, 1, constant_values=True)
    clearance = ndimage.distance_transform_edt(~padded)[1:-1, 1:-1] * GRID_RES
    world = World(scenario, looks, furniture, surfaces, occ, clearance.astype(np.float32),
                  wall_bodies, floor_bodies)
    return world
