"""Planar scan geometry and occupancy grids (pure numpy, no ROS).

- :func:`scan_in_base` re-projects a scan from the laser mount to the base origin (which every
  model of this stack assumes), on the same beams; :func:`compose_planar` composes planar poses.
- :func:`beam_cells` / :func:`integrate_scan`: a log-odds occupancy grid (rows = y, columns =
  x, centred on the frame's origin) updated by ray casting each beam; :func:`seen_cells` marks
  what a scan observed (for coverage measures).
- :func:`stall_points`, :func:`fuse_points`, :func:`clear_ahead`: obstacles the laser does not
  see (a table top above the scan plane) kept as virtual returns in the scan.
- :func:`depth_points`, :func:`integrate_heights`: a second layer from a depth camera for
  what the planar scan passes under (table tops, shelf boards): cells with points in a height
  band become obstacles, cells where only the floor was seen become free.
- :class:`OccupancyView`: a published grid (0..100, -1 unknown, any origin) read back to ask
  whether a round footprint fits at a point (where the base may stand).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridConfig:
    """Size and log-odds increments of the occupancy grid (metres, nats)."""

    resolution: float = 0.1
    size: float = 30.0
    hit: float = 0.85
    miss: float = -0.4
    clamp: float = 5.0

    def __post_init__(self):
        if not (self.resolution > 0 and self.size > self.resolution and self.clamp > 0):
            raise ValueError(f'GridConfig needs resolution > 0, size > resolution, clamp > 0; '
                             f'got {self.resolution}, {self.size}, {self.clamp}')


def empty_grid(config: GridConfig) -> np.ndarray:
    """Return a zero log-odds grid (rows = y, columns = x) centred on the frame's origin."""
    n = int(round(config.size / config.resolution))
    return np.zeros((n, n))


def world_to_cell(xy, shape: tuple[int, int], resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (row, col) indices of points (k, 2) on a grid centred on the origin (unchecked)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    half_x, half_y = shape[1] * resolution / 2.0, shape[0] * resolution / 2.0
    return (np.floor((xy[:, 1] + half_y) / resolution).astype(int),
            np.floor((xy[:, 0] + half_x) / resolution).astype(int))


def cell_to_world(rows, cols, shape: tuple[int, int], resolution: float) -> np.ndarray:
    """Return the centres (k, 2) of grid cells (rows, cols) on a grid centred on the origin."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    half_x, half_y = shape[1] * resolution / 2.0, shape[0] * resolution / 2.0
    return np.column_stack([(cols + 0.5) * resolution - half_x,
                            (rows + 0.5) * resolution - half_y])


def beam_cells(shape: tuple[int, int], pose, ranges: np.ndarray, angles: np.ndarray,
               range_min: float, range_max: float, resolution: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Return boolean masks (free, occupied) of the cells a scan at ``pose`` passed / hit.

    Cells along each beam before its return are free; the cell of the return is occupied
    (beams without a return, +inf, are free up to ``range_max``); NaN beams and returns below
    ``range_min`` carry no information. Points beyond the grid are ignored.
    """
    x, y, yaw = (float(v) for v in pose)
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    if r.shape != a.shape:
        raise ValueError(f'ranges {r.shape} and angles {a.shape} differ in shape')
    a = a + yaw
    keep = ~np.isnan(r) & (r >= range_min)
    r, a = r[keep], a[keep]
    hit = r < range_max
    reach = np.minimum(r, range_max)
    steps = np.arange(0.0, range_max, resolution / 2)  # half a cell: no cell is skipped
    along = steps[None, :] < (reach[:, None] - resolution / 2)
    px = x + steps[None, :] * np.cos(a)[:, None]
    py = y + steps[None, :] * np.sin(a)[:, None]

    def mask(xs, ys):
        out = np.zeros(shape, dtype=bool)
        rows, cols = world_to_cell(np.column_stack([xs, ys]), shape, resolution)
        ok = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        out[rows[ok], cols[ok]] = True
        return out

    free = mask(px[along], py[along])
    occupied = mask(x + r[hit] * np.cos(a[hit]), y + r[hit] * np.sin(a[hit]))
    return free & ~occupied, occupied


def integrate_scan(logodds: np.ndarray, pose, ranges: np.ndarray, angles: np.ndarray,
                   range_min: float, range_max: float, config: GridConfig) -> np.ndarray:
    """Return the log-odds grid after one scan taken at ``pose`` (x, y, yaw) of the laser.

    Free cells (see :func:`beam_cells`) get ``miss``, the cells of returns ``hit``; the result
    is clipped to +-``clamp``.
    """
    free, occupied = beam_cells(logodds.shape, pose, ranges, angles, range_min, range_max,
                                config.resolution)
    out = logodds.copy()
    out[free] += config.miss
    out[occupied] += config.hit
    return np.clip(out, -config.clamp, config.clamp)


def seen_cells(shape: tuple[int, int], pose, ranges: np.ndarray, angles: np.ndarray,
               range_min: float, range_max: float, resolution: float) -> np.ndarray:
    """Return the mask of cells a scan observed (passed through or hit)."""
    free, occupied = beam_cells(shape, pose, ranges, angles, range_min, range_max, resolution)
    return free | occupied


def compose_planar(pose, offset) -> np.ndarray:
    """Return the planar pose ``pose`` (x, y, yaw) composed with ``offset`` in its frame."""
    x, y, yaw = (float(v) for v in pose)
    ox, oy, oyaw = (float(v) for v in offset)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([x + c * ox - s * oy, y + s * ox + c * oy, yaw + oyaw])


def scan_in_base(ranges: np.ndarray, angles: np.ndarray, laser_pose) -> np.ndarray:
    """Return the ranges of a planar scan re-projected to the base origin, on the same beams.

    ``laser_pose`` is (x, y, yaw) of the laser in the base frame. Every return is moved into the
    base frame and kept in the beam nearest its bearing (the nearest return wins); beams that
    receive no return are +inf (no return); NaN beams stay NaN (unknown). The models assume the
    scan is taken at the base origin.
    """
    r = np.asarray(ranges, dtype=float).ravel()
    a = np.asarray(angles, dtype=float).ravel()
    x, y, yaw = (float(v) for v in laser_pose)
    if x == 0.0 and y == 0.0 and yaw == 0.0 or r.size < 2:
        return r.copy()
    out = np.full(r.shape, np.inf)
    hit = np.isfinite(r)
    px = x + r[hit] * np.cos(a[hit] + yaw)
    py = y + r[hit] * np.sin(a[hit] + yaw)
    step = (a[-1] - a[0]) / (a.size - 1)
    beam = np.round((np.arctan2(py, px) - a[0]) / step).astype(int)
    covers = abs(step * a.size - 2.0 * math.pi) < 1.5 * abs(step)  # a full circle wraps
    beam = np.mod(beam, a.size) if covers else beam
    ok = (beam >= 0) & (beam < a.size)
    np.minimum.at(out, beam[ok], np.hypot(px, py)[ok])
    out[np.isnan(r)] = np.nan
    return out


def stall_points(pose, distance: float, half_width: float, spacing: float = 0.05
                 ) -> np.ndarray:
    """Return frame points (k, 2) of a short virtual wall ``distance`` ahead of ``pose``.

    Where the base stalls against something the scan does not show (a table top above the scan
    plane), the wall is remembered as an obstacle for a while.
    """
    x, y, yaw = (float(v) for v in pose)
    c, s = math.cos(yaw), math.sin(yaw)
    lateral = np.arange(-half_width, half_width + 1e-9, spacing)
    return np.column_stack([x + distance * c - lateral * s, y + distance * s + lateral * c])


def fuse_points(ranges: np.ndarray, angles: np.ndarray, pose, points: np.ndarray,
                range_max: float) -> np.ndarray:
    """Return base-frame ``ranges`` with frame obstacle ``points`` added as returns.

    Each point within ``range_max`` shortens the beam nearest to its bearing; NaN beams stay NaN.
    """
    out = np.asarray(ranges, dtype=float).copy()
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) == 0 or out.size == 0:
        return out
    x, y, yaw = (float(v) for v in pose)
    dist = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
    keep = dist < range_max
    if not np.any(keep):
        return out
    bearing = np.arctan2(pts[keep, 1] - y, pts[keep, 0] - x) - yaw
    diff = np.angle(np.exp(1j * (bearing[:, None] - np.asarray(angles, dtype=float)[None, :])))
    np.minimum.at(out, np.argmin(np.abs(diff), axis=1), dist[keep])
    return out


def clear_ahead(ranges: np.ndarray, angles: np.ndarray, distance: float,
                half_angle: float = math.pi / 4) -> bool:
    """Return True when no return (NaN = unknown = blocking) lies within ``distance`` ahead."""
    r = np.asarray(ranges, dtype=float)
    ahead = np.abs(np.angle(np.exp(1j * np.asarray(angles, dtype=float)))) <= half_angle
    near = np.isnan(r[ahead]) | (r[ahead] < distance)
    return not bool(np.any(near))


def depth_points(depth: np.ndarray, k: np.ndarray, t_frame_camera: np.ndarray,
                 stride: int = 4, max_range: float = 3.0) -> np.ndarray:
    """Return the points (n, 3) of a depth image (metres, optical frame) in another frame.

    Every ``stride``-th pixel in both directions; depths that are not finite, not positive or
    beyond ``max_range`` are dropped. ``k``: the 3x3 intrinsics; ``t_frame_camera``: 4x4.
    """
    depth = np.asarray(depth, dtype=float)
    if depth.ndim != 2 or stride < 1:
        raise ValueError(f'depth_points needs a 2-D depth image and stride >= 1, got shape '
                         f'{depth.shape} and stride {stride}')
    k = np.asarray(k, dtype=float).reshape(3, 3)
    if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0):
        raise ValueError(f'camera intrinsics need fx, fy > 0 and finite values, got {k.ravel()}')
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
    z = depth[v, u]
    keep = np.isfinite(z) & (z > 0) & (z <= max_range)
    z, u, v = z[keep], u[keep] + 0.5, v[keep] + 0.5
    x = (u - k[0, 2]) * z / k[0, 0]
    y = (v - k[1, 2]) * z / k[1, 1]
    camera = np.column_stack([x, y, z, np.ones_like(z)])
    return (camera @ np.asarray(t_frame_camera, dtype=float).T)[:, :3]


def integrate_heights(logodds: np.ndarray, points: np.ndarray, config: GridConfig,
                      band: tuple[float, float], floor_below: float) -> np.ndarray:
    """Return a height layer after one cloud of frame ``points`` (z up, 0 at the floor).

    Cells with a point whose height lies in ``band`` (what the base or its mast would hit)
    get ``hit``; cells where only points lower than ``floor_below`` were seen (the floor)
    get ``miss``; clipped to +-``clamp``. Points off the grid are ignored.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    out = logodds.copy()
    if len(pts) == 0:
        return out
    rows, cols = world_to_cell(pts[:, :2], out.shape, config.resolution)
    on = (rows >= 0) & (rows < out.shape[0]) & (cols >= 0) & (cols < out.shape[1])
    rows, cols, z = rows[on], cols[on], pts[on, 2]
    hit = np.zeros(out.shape, dtype=bool)
    hit[rows[(z >= band[0]) & (z <= band[1])], cols[(z >= band[0]) & (z <= band[1])]] = True
    floor = np.zeros(out.shape, dtype=bool)
    floor[rows[z < floor_below], cols[z < floor_below]] = True
    out[hit] += config.hit
    out[floor & ~hit] += config.miss
    return np.clip(out, -config.clamp, config.clamp)


def combine_layers(scan: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Return one log-odds grid of the scan layer and a height layer.

    An obstacle seen in either is an obstacle; where the height layer knows nothing or says
    free, the scan layer decides (0 stays unknown).
    """
    return np.where(heights > 0, np.maximum(scan, heights), scan)


@dataclass(frozen=True)
class OccupancyView:
    """A read-only occupancy grid as published.

    ``data``: rows = y, cols = x; 0..100, -1 unknown; ``resolution``: cell size, m;
    ``origin``: x, y, yaw of cell (0, 0)'s corner.
    """

    data: np.ndarray
    resolution: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if np.ndim(self.data) != 2 or not self.resolution > 0 or \
                not np.all(np.isfinite(self.origin)):
            raise ValueError(f'an occupancy grid needs 2-D data, resolution > 0 and a finite '
                             f'origin; got shape {np.shape(self.data)}, resolution '
                             f'{self.resolution}, origin {self.origin}')

    def footprint_free(self, x: float, y: float, radius: float, occupied: int = 50,
                       unknown_is_free: bool = False) -> bool:
        """Whether every cell within ``radius`` of (x, y) is known and below ``occupied``.

        Unknown cells count as free only with ``unknown_is_free``; off the grid is unknown.
        """
        res = float(self.resolution)
        n = int(math.ceil(radius / (res / 2)))
        u, v = np.meshgrid(np.linspace(-radius, radius, 2 * n + 1),
                           np.linspace(-radius, radius, 2 * n + 1))
        disk = np.hypot(u, v) <= radius
        return self._points_free(x + u[disk], y + v[disk], occupied, unknown_is_free)

    def occupied_points(self, x: float, y: float, radius: float,
                        occupied: int = 50) -> np.ndarray:
        """Return the centres (k, 2) of cells at or above ``occupied`` within ``radius``."""
        ox, oy, yaw = (float(v) for v in self.origin)
        c, s = math.cos(yaw), math.sin(yaw)
        lx, ly = c * (x - ox) + s * (y - oy), -s * (x - ox) + c * (y - oy)
        res = float(self.resolution)
        r0 = max(0, int(math.floor((ly - radius) / res)))
        r1 = min(self.data.shape[0], int(math.floor((ly + radius) / res)) + 1)
        c0 = max(0, int(math.floor((lx - radius) / res)))
        c1 = min(self.data.shape[1], int(math.floor((lx + radius) / res)) + 1)
        if r0 >= r1 or c0 >= c1:
            return np.zeros((0, 2))
        rows, cols = np.nonzero(self.data[r0:r1, c0:c1] >= occupied)
        gx, gy = (cols + c0 + 0.5) * res, (rows + r0 + 0.5) * res
        near = np.hypot(gx - lx, gy - ly) <= radius
        gx, gy = gx[near], gy[near]
        return np.column_stack([ox + c * gx - s * gy, oy + s * gx + c * gy])

    def _points_free(self, px, py, occupied: int, unknown_is_free: bool) -> bool:
        ox, oy, yaw = (float(v) for v in self.origin)
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = np.ravel(px) - ox, np.ravel(py) - oy
        lx, ly = c * dx + s * dy, -s * dx + c * dy  # the points in the grid's own axes
        cols = np.floor(lx / self.resolution).astype(int)
        rows = np.floor(ly / self.resolution).astype(int)
        n_rows, n_cols = self.data.shape
        on = (rows >= 0) & (rows < n_rows) & (cols >= 0) & (cols < n_cols)
        if not np.all(on) and not unknown_is_free:
            return False
        values = self.data[rows[on], cols[on]]
        if np.any(values >= occupied):
            return False
        return unknown_is_free or not np.any(values < 0)


__all__ = ['GridConfig', 'OccupancyView', 'beam_cells', 'cell_to_world', 'clear_ahead',
           'combine_layers', 'compose_planar', 'depth_points', 'empty_grid', 'fuse_points',
           'integrate_heights', 'integrate_scan', 'scan_in_base', 'seen_cells', 'stall_points',
           'world_to_cell']
