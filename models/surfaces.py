"""Support surfaces (table tops, shelf boards, trays) from the planes of RGB-D frames.

Segmentation removes the horizontal planes it finds under objects (models.segmentation); this
module keeps them. Each frame's points within ``inlier_distance`` of a horizontal plane between
``min_height`` and ``max_height`` are binned into ``cell``-sized cells of the map's x-y plane;
a surface is a height and the cells seen on it. A frame's cells first go through a 3x3
opening, which drops thin bands (a wall cut at the plane's height would otherwise join the
table standing against it and stretch it along the wall). Cells of a new frame join a surface
of the same height (within ``height_tolerance``) that they touch, so a table seen piecewise
from several viewpoints grows into one surface; surfaces that a frame connects are merged.

``place_spots`` answers where a held object may be put down: cells of a surface at least
``edge_margin`` inside its edge (every cell that near is surface too) and clear of the objects
on it, nearest a point first. ``Surface.rectangle`` summarises a surface for messages and
markers (centre, yaw, length, width of the least-area rectangle around its cells).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from embodied_aif.models.transforms import min_area_rectangle

RECTANGLE_YAWS = np.deg2rad(np.arange(0.0, 90.0, 1.0))
OUTLINE_SHARE = 0.2  # of the median cell's points: fewer, and a cell is not in the outline


@dataclass(frozen=True)
class SurfaceConfig:
    """What counts as a support surface and how finely it is kept (metres, radians)."""

    cell: float = 0.04
    min_height: float = 0.15          # the floor is not a surface to put things on
    max_height: float = 1.6
    max_tilt: float = 0.2             # plane normals this close to vertical
    inlier_distance: float = 0.015    # points this near a plane belong to it
    height_tolerance: float = 0.03    # surfaces this close in height are one
    min_cells: int = 6                # smaller patches (an object's top face) are ignored
    min_width: float = 0.1            # and narrower ones (a wall cut at a table's height)
    edge_margin: float = 0.08         # place spots keep this far inside the edge

    def __post_init__(self):
        for name in ('cell', 'inlier_distance', 'height_tolerance'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1.0):
                raise ValueError(f'{name} must be in (0, 1] m, got {value!r}')
        if not (math.isfinite(self.min_height) and math.isfinite(self.max_height)
                and self.min_height < self.max_height):
            raise ValueError(f'need min_height < max_height, got {self.min_height!r}, '
                             f'{self.max_height!r}')
        if not 0 <= self.max_tilt < math.pi / 2 or self.min_cells < 1 or \
                not (math.isfinite(self.min_width) and self.min_width >= 0) or \
                not (math.isfinite(self.edge_margin) and self.edge_margin >= 0):
            raise ValueError(f'need 0 <= max_tilt < pi/2, min_cells >= 1, min_width >= 0, '
                             f'edge_margin >= 0; got {self.max_tilt!r}, {self.min_cells!r}, '
                             f'{self.min_width!r}, {self.edge_margin!r}')


@dataclass
class Surface:
    """One support surface: its height (m) and the cells (i, j) seen on it, with hit counts."""

    id: int
    height: float
    cells: dict[tuple[int, int], int] = field(default_factory=dict)
    weight: float = 0.0  # points behind the height estimate

    def centres(self, cell: float) -> np.ndarray:
        """(n, 2) x-y centres of its cells."""
        ij = np.array(sorted(self.cells), dtype=float).reshape(-1, 2)
        return (ij + 0.5) * cell

    def rectangle(self, cell: float) -> tuple[float, float, float, float, float]:
        """(cx, cy, yaw, length, width) of the least-area box around its cells.

        The least-area heading (1 degree steps) lines up with the table's straight edges also
        when only part of it was seen; the principal axes of a ragged part had turned the box
        10 degrees and so reached 15 cm past the table's edge (a place spot fell off it).
        ``length`` is the longer side. Cells seen with fewer than ``OUTLINE_SHARE`` of the
        median cell's points are left out of the outline: a band of such cells lay 4-10 cm
        past a table's near edge (a median of 71 points on the table, at most 11 in the band).
        """
        xy = self.centres(cell)
        hits = np.array([self.cells[k] for k in sorted(self.cells)], dtype=float)
        firm = hits >= OUTLINE_SHARE * np.median(hits)
        if np.count_nonzero(firm) >= 3:
            xy = xy[firm]
        mean = xy.mean(axis=0)
        k, _, (lo, hi) = min_area_rectangle(xy - mean, RECTANGLE_YAWS)
        yaw = float(RECTANGLE_YAWS[k])
        lo, hi = lo - cell / 2, hi + cell / 2
        if hi[1] - lo[1] > hi[0] - lo[0]:  # the long side first, as a table's length
            yaw, lo, hi = yaw + math.pi / 2, np.array([lo[1], -hi[0]]), np.array([hi[1], -lo[0]])
        c, s = math.cos(yaw), math.sin(yaw)
        mid = 0.5 * (lo + hi)
        centre = mean + np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]])
        length, width = hi - lo
        return float(centre[0]), float(centre[1]), yaw, float(length), float(width)

    def distance_to(self, xy, cell: float) -> float:
        """Distance (m) from a point to its nearest cell centre."""
        return float(np.min(np.linalg.norm(self.centres(cell) - np.asarray(xy, float)[:2],
                                           axis=1)))


def plane_points(points: np.ndarray, planes: Iterable, config: SurfaceConfig
                 ) -> list[tuple[float, np.ndarray]]:
    """(height, (n, 2) x-y of its points) for each horizontal plane in the height range.

    ``points``: (N, 3) map-frame points of a frame; ``planes``: (a, b, c, d) with
    a x + b y + c z + d = 0 in the same frame (segmentation's ``planes``).
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    points = points[np.all(np.isfinite(points), axis=1)]
    out = []
    for plane in planes:
        a, b, c, d = (float(v) for v in plane)
        norm = math.sqrt(a * a + b * b + c * c)
        if not norm > 0 or abs(c) / norm < math.cos(config.max_tilt):
            continue
        near = np.abs(points @ np.array([a, b, c]) + d) / norm < config.inlier_distance
        if not near.any():
            continue
        height = float(np.median(points[near, 2]))
        if config.min_height <= height <= config.max_height:
            out.append((height, points[near, :2]))
    return out


def _touches(cells: dict, new: Iterable[tuple[int, int]]) -> bool:
    return any((i + di, j + dj) in cells for i, j in new for di in (-1, 0, 1)
               for dj in (-1, 0, 1))


def _opened(cells: dict) -> dict:
    """The cells that survive a 3x3 opening (erosion, then dilation).

    Thin bands (a wall cut at the plane's height, the rim of a tray) go, so they cannot join
    a table they touch and stretch it along the wall; a table's own edge cells come back
    with the dilation.
    """
    if not cells:
        return cells
    ij = np.array(list(cells), dtype=int)
    lo = ij.min(axis=0) - 1
    grid = np.zeros(tuple(ij.max(axis=0) - lo + 2), dtype=bool)
    grid[tuple((ij - lo).T)] = True
    kept = ndimage.binary_opening(grid, structure=np.ones((3, 3), dtype=bool))
    return {key: n for key, n in cells.items() if kept[key[0] - lo[0], key[1] - lo[1]]}


def _components(cells: dict) -> list[dict]:
    """The 8-connected parts of a cell set."""
    left, parts = set(cells), []
    while left:
        stack, part = [left.pop()], {}
        while stack:
            i, j = stack.pop()
            part[(i, j)] = cells[(i, j)]
            for key in ((i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)):
                if key in left:
                    left.remove(key)
                    stack.append(key)
        parts.append(part)
    return parts


class SurfaceMap:
    """The support surfaces seen so far, grown and merged frame by frame."""

    def __init__(self, config: SurfaceConfig | None = None):
        self.config = config or SurfaceConfig()
        self.surfaces: list[Surface] = []
        self._next_id = 0

    def integrate(self, observed: Sequence[tuple[float, np.ndarray]]) -> None:
        """Add one frame's plane points (``plane_points``) to the surfaces."""
        cfg = self.config
        for height, xy in observed:
            ij, counts = np.unique(np.floor(np.asarray(xy, float) / cfg.cell).astype(int),
                                   axis=0, return_counts=True)
            cells = _opened({(int(i), int(j)): int(n) for (i, j), n in zip(ij, counts)})
            for part in _components(cells):
                self._add(height, part)

    def _add(self, height: float, new: dict) -> None:
        """Add one connected patch of a frame's plane (grows the surfaces it touches)."""
        cfg = self.config
        if len(new) < cfg.min_cells or \
                Surface(-1, height, new).rectangle(cfg.cell)[4] < cfg.min_width:
            return
        weight = float(sum(new.values()))
        hits = [s for s in self.surfaces
                if abs(s.height - height) <= cfg.height_tolerance and _touches(s.cells, new)]
        if not hits:
            self.surfaces.append(Surface(self._next_id, height, new, weight))
            self._next_id += 1
            return
        into = hits[0]
        for other in hits[1:]:  # this patch connects them: one surface
            self._merge(into, other.cells, other.height, other.weight)
            self.surfaces.remove(other)
        self._merge(into, new, height, weight)

    @staticmethod
    def _merge(into: Surface, cells: dict, height: float, weight: float) -> None:
        total = into.weight + weight
        into.height = (into.height * into.weight + height * weight) / total
        into.weight = total
        for key, n in cells.items():
            into.cells[key] = into.cells.get(key, 0) + n

    def nearest(self, xy, within: float = math.inf) -> list[Surface]:
        """Surfaces with a cell within ``within`` of a point, nearest first."""
        cell = self.config.cell
        found = [(s.distance_to(xy, cell), s.id, s) for s in self.surfaces]
        return [s for d, _, s in sorted(found) if d <= within]


def place_spots(surface: Surface, config: SurfaceConfig, near=None,
                keep_clear: Sequence[tuple[Sequence[float], float]] = (),
                limit: int | None = None) -> np.ndarray:
    """(k, 2) points of ``surface`` where an object may be put down, nearest ``near`` first.

    A spot is a cell centre whose every cell within ``edge_margin`` is also on the surface,
    and no closer than ``radius`` to any ``keep_clear`` (x-y, radius), e.g. the objects already
    there plus the held object's half-size. Without ``near`` the most central spots come first.
    """
    reach = int(math.ceil(config.edge_margin / config.cell))
    offsets = [(di, dj) for di in range(-reach, reach + 1) for dj in range(-reach, reach + 1)
               if math.hypot(di, dj) * config.cell <= config.edge_margin + 1e-9]
    inner = [(i, j) for i, j in surface.cells
             if all((i + di, j + dj) in surface.cells for di, dj in offsets)]
    if not inner:
        return np.zeros((0, 2))
    xy = (np.array(inner, dtype=float) + 0.5) * config.cell
    return _clear_and_sorted(xy, keep_clear, near if near is not None else
                             surface.centres(config.cell).mean(axis=0), limit)


def rectangle_spots(centre, yaw: float, length: float, width: float, margin: float,
                    spacing: float, near=None,
                    keep_clear: Sequence[tuple[Sequence[float], float]] = (),
                    limit: int | None = None, depth: float = 0.0) -> np.ndarray:
    """As :func:`place_spots`, on a surface known only as a rectangle (e.g. from a message).

    A grid of ``spacing`` inside the rectangle shrunk by ``margin``; empty when nothing is left.
    Spots at least ``depth`` inside the edge come first (nearest ``near`` first), then the
    shallower ones, deepest first: a perceived edge may lie beyond the true one.
    """
    half = np.array([length, width], dtype=float) / 2 - margin
    if not np.all(np.isfinite(half)) or np.any(half < 0) or not spacing > 0:
        return np.zeros((0, 2))
    u = np.arange(-half[0], half[0] + 1e-9, spacing)
    v = np.arange(-half[1], half[1] + 1e-9, spacing)
    uu, vv = np.meshgrid(u - (u.mean() if len(u) else 0), v - (v.mean() if len(v) else 0))
    uv = np.column_stack([uu.ravel(), vv.ravel()])
    inside = np.min(np.array([length, width]) / 2 - np.abs(uv), axis=1)
    c, s = math.cos(yaw), math.sin(yaw)
    xy = uv @ np.array([[c, s], [-s, c]]) + np.asarray(centre, float)[:2]
    return _clear_and_sorted(xy, keep_clear, near if near is not None else centre, limit,
                             rank=np.where(inside >= depth - 1e-9, -depth, -inside))


def _clear_and_sorted(xy: np.ndarray, keep_clear, anchor, limit,
                      rank: np.ndarray | None = None) -> np.ndarray:
    """The points clear of every (centre, radius), by ``rank`` then nearest ``anchor`` first."""
    keep = np.ones(len(xy), dtype=bool)
    for centre, radius in keep_clear:
        keep &= np.linalg.norm(xy - np.asarray(centre, float)[:2], axis=1) >= radius
    xy = xy[keep]
    distance = np.linalg.norm(xy - np.asarray(anchor, float)[:2], axis=1)
    xy = xy[np.lexsort((distance,) if rank is None else (distance, rank[keep]))]
    return xy.reshape(-1, 2) if limit is None else xy[:limit].reshape(-1, 2)


__all__ = ['Surface', 'SurfaceConfig', 'SurfaceMap', 'place_spots', 'plane_points',
           'rectangle_spots']
