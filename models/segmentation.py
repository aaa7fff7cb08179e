"""Object segmentation and geometry from one registered RGB-D frame.

The pipeline is: validate the frame and the pinhole intrinsics, back-project every valid depth
pixel into the map frame, downsample on a voxel grid, remove up to ``max_planes`` planes found
by RANSAC (seeded, numpy; large planes of any tilt such as walls and floor first, then smaller
horizontal supports such as table tops), cluster the remaining voxels by DBSCAN (open3d), keep
clusters that rest on a support plane and are not too large (furniture, the robot itself) and
summarise each (centroid, axis-aligned box in the map frame, mean colour, the pixels it covers).

Camera convention: the optical frame has z forward, x right and y down; ``t_map_cam`` is the 4x4
transform taking camera-frame points to the map frame. Depth is float32 metres along the optical
axis; NaN, inf, zero and negative depth mean "no return" and are ignored. Bad input (missing
depth, wrong shapes, absent or inconsistent intrinsics) raises ``ValueError`` naming the cause.

A tiny ray caster of boxes on a plane (``render_boxes``) provides synthetic frames for tests and
for ``measure_latency``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from embodied_aif.models.transforms import min_area_rectangle

__all__ = [
    "CameraIntrinsics",
    "Cluster",
    "SegmentationConfig",
    "SegmentationResult",
    "backproject",
    "fit_plane_ransac",
    "look_at",
    "measure_latency",
    "project_points",
    "render_boxes",
    "segment_frame",
    "segment_points",
    "validate_transform",
]


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of a camera (the useful part of sensor_msgs/CameraInfo)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"camera_info: {name}={value} is not finite")
        if self.fx <= 0.0 or self.fy <= 0.0:
            raise ValueError(f"camera_info: focal lengths must be > 0, got fx={self.fx}, "
                             f"fy={self.fy}")
        if int(self.width) != self.width or int(self.height) != self.height \
                or self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera_info: width={self.width}, height={self.height} must be "
                             "positive integers")
        if not (0.0 <= self.cx <= self.width and 0.0 <= self.cy <= self.height):
            raise ValueError(f"camera_info: principal point ({self.cx}, {self.cy}) lies outside "
                             f"the {self.width}x{self.height} image")

    @classmethod
    def from_k(cls, k, width: int, height: int) -> CameraIntrinsics:
        """Build from a row-major 3x3 camera matrix K (CameraInfo.k) and the image size."""
        k = np.asarray(k, dtype=float).reshape(-1)
        if k.shape != (9,):
            raise ValueError(f"camera_info: K must have 9 entries, got shape {k.shape}")
        if not np.all(np.isfinite(k)) or np.all(k == 0.0):
            raise ValueError("camera_info: K is all zeros or not finite (uncalibrated camera)")
        return cls(fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]),
                   width=int(width), height=int(height))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_rad: float) -> CameraIntrinsics:
        """Square-pixel intrinsics with the given horizontal field of view, centred."""
        if not 0.0 < hfov_rad < np.pi:
            raise ValueError(f"hfov_rad={hfov_rad} must lie in (0, pi)")
        f = 0.5 * width / np.tan(0.5 * hfov_rad)
        return cls(fx=f, fy=f, cx=0.5 * width, cy=0.5 * height, width=width, height=height)


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of ``segment_frame`` (metres unless stated)."""

    min_depth: float = 0.05
    max_depth: float = 4.0
    crop_min: tuple[float, float, float] | None = None  # map-frame box kept (None: all)
    crop_max: tuple[float, float, float] | None = None
    voxel_size: float = 0.01
    plane_distance: float = 0.012
    plane_iterations: int = 128
    ransac_cell: float | None = 0.1   # triples drawn within cells of this size (None: anywhere)
    max_score_points: int = 2048      # RANSAC hypotheses are scored on this many points
    max_planes: int = 6
    min_plane_area: float = 0.04      # m^2: smallest horizontal support plane removed
    min_wall_area: float | None = 0.25  # m^2: smallest plane of any tilt removed (None: never)
    support_tilt: float = 0.35        # rad: planes this close to horizontal are supports
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    cluster_eps: float = 0.025
    min_cluster_voxels: int = 8
    max_cluster_extent: float = 0.5   # larger clusters are furniture or walls, not objects
    require_support: bool = True      # keep only clusters resting on a horizontal support plane
    support_gap: float = 0.1          # m: its bottom at most this far above it (occlusion)
    min_object_height: float = 0.015  # m: and its top at least this far above it
    # A cluster whose upright box is at most band_height tall and either at least band_length
    # along and band_aspect times longer than across, or at most band_width across, is a band
    # of furniture (a side of a tray's rim, or its end seen edge on), not an object: the
    # objects here are at most 0.12 m along a side (a bowl's rim is wider, but round) and at
    # least 4 cm across; a bowl's rim seen as a thin arc may go too.
    band_length: float = 0.1
    band_aspect: float = 3.0
    band_width: float = 0.015
    band_height: float = 0.07
    min_valid_fraction: float = 0.01

    def __post_init__(self):
        if not 0.0 <= self.min_depth < self.max_depth:
            raise ValueError(f"depth range [{self.min_depth}, {self.max_depth}] is empty")
        for name in ("voxel_size", "plane_distance", "cluster_eps"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.plane_iterations < 1 or self.max_planes < 0 or self.min_cluster_voxels < 1:
            raise ValueError(f"plane_iterations={self.plane_iterations}, max_planes="
                             f"{self.max_planes}, min_cluster_voxels={self.min_cluster_voxels} "
                             "out of range")
        if not self.min_plane_area > 0.0 or not self.max_cluster_extent > 0.0 \
                or (self.min_wall_area is not None and not self.min_wall_area > 0.0):
            raise ValueError(f"min_plane_area={self.min_plane_area}, min_wall_area="
                             f"{self.min_wall_area} and max_cluster_extent="
                             f"{self.max_cluster_extent} must be > 0")
        if (self.crop_min is None) != (self.crop_max is None):
            raise ValueError("give both crop_min and crop_max, or neither")
        if not (self.band_length > 0.0 and self.band_aspect >= 1.0
                and self.band_width >= 0.0 and self.band_height >= 0.0):
            raise ValueError(f"band_length={self.band_length} must be > 0, band_aspect="
                             f"{self.band_aspect} >= 1, band_width={self.band_width} and "
                             f"band_height={self.band_height} >= 0")
        if np.linalg.norm(self.up) == 0.0:
            raise ValueError("up must be a non-zero vector")


@dataclass(frozen=True)
class Cluster:
    """One segmented object hypothesis, in the map frame."""

    centroid: np.ndarray       # (3,) mean of the cluster's points
    center: np.ndarray         # (3,) centre of its bounding box (upright, turned by yaw)
    extent: np.ndarray         # (3,) size of that box: along yaw, across it, height
    colour: np.ndarray         # (3,) mean RGB in [0, 1]
    pixel_indices: np.ndarray  # (n,) flat indices (row * width + col) into the image
    n_points: int
    truncated: bool = False    # touches the image border: the object may extend beyond it
    yaw: float = 0.0           # heading of the box's first axis about up, in [0, pi/2)


@dataclass(frozen=True)
class SegmentationResult:
    """Output of ``segment_frame``: clusters, removed planes and counts for diagnostics."""

    clusters: tuple[Cluster, ...]
    planes: tuple[np.ndarray, ...]  # each (4,) = (a, b, c, d), a x + b y + c z + d = 0, map frame
    n_valid_points: int
    n_plane_points: int
    labels: np.ndarray = field(repr=False)  # (H, W): cluster, -1 none, -2 plane, -3 rejected


def _dot3(p: np.ndarray, v) -> np.ndarray:
    """Row-wise dot products of (N, 3) points with a 3-vector, without BLAS threads."""
    return p[:, 0] * v[0] + p[:, 1] * v[1] + p[:, 2] * v[2]


def _affine(p: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``p @ r.T + t`` for (N, 3) points, elementwise (small BLAS calls thrash under load)."""
    out = np.empty_like(p)
    for k in range(3):
        out[:, k] = r[k, 0] * p[:, 0] + r[k, 1] * p[:, 1] + r[k, 2] * p[:, 2] + t[k]
    return out


def validate_transform(t_map_cam) -> np.ndarray:
    """Return ``t_map_cam`` as a float (4, 4) rigid transform or raise ValueError."""
    t = np.asarray(t_map_cam, dtype=float)
    if t.shape != (4, 4):
        raise ValueError(f"t_map_cam must be 4x4, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t_map_cam contains NaN or inf")
    r = t[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0.0 \
            or not np.allclose(t[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError("t_map_cam is not a rigid transform (rotation not orthonormal)")
    return t


def _check_frame(depth, rgb, intrinsics) -> tuple[np.ndarray, np.ndarray | None]:
    if intrinsics is None:
        raise ValueError("camera_info absent: no intrinsics for this frame")
    if not isinstance(intrinsics, CameraIntrinsics):
        raise ValueError(f"intrinsics must be CameraIntrinsics, got {type(intrinsics).__name__}")
    if depth is None:
        raise ValueError("depth image missing")
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be HxW, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be float metres (32FC1), got dtype {depth.dtype}")
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth shape {depth.shape} does not match camera_info "
                         f"{intrinsics.height}x{intrinsics.width} (wrong camera_info?)")
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != depth.shape + (3,):
            raise ValueError(f"rgb shape {rgb.shape} does not match depth {depth.shape} + (3,)")
    return depth, rgb


def backproject(depth, intrinsics: CameraIntrinsics, t_map_cam, min_depth: float = 0.0,
                max_depth: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Back-project valid depth pixels into the map frame.

    Returns ``(points (N, 3), pixel_indices (N,))``; pixels with NaN, inf or depth outside
    ``(min_depth, max_depth]`` (and never <= 0) are left out.
    """
    depth, _ = _check_frame(depth, None, intrinsics)
    t = validate_transform(t_map_cam)
    flat = depth.reshape(-1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(flat) & (flat > max(min_depth, 0.0)) & (flat <= max_depth)
    idx = np.flatnonzero(valid)
    z = flat[idx]
    u = (idx % intrinsics.width).astype(np.float64)
    v = (idx // intrinsics.width).astype(np.float64)
    cam = np.empty((idx.size, 3))
    cam[:, 0] = (u - intrinsics.cx) * z / intrinsics.fx
    cam[:, 1] = (v - intrinsics.cy) * z / intrinsics.fy
    cam[:, 2] = z
    return _affine(cam, t[:3, :3], t[:3, 3]), idx


def project_points(points, intrinsics: CameraIntrinsics, t_map_cam) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Project map-frame points (N, 3) into the image: ``(uv (N, 2), depth (N,))``."""
    t = validate_transform(t_map_cam)
    p = np.atleast_2d(np.asarray(points, dtype=float))
    if p.shape[-1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {p.shape}")
    cam = (p - t[:3, 3]) @ t[:3, :3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * cam[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * cam[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=1), z


def fit_plane_ransac(points, distance: float, iterations: int, rng: np.random.Generator,
                     up=None, max_tilt: float | None = None,
                     max_score_points: int = 2048,
                     local_cell: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit one plane by RANSAC, refined by least squares on its inliers.

    ``iterations`` hypotheses from random point triples are scored at once; with ``up`` and
    ``max_tilt`` only planes whose normal is within ``max_tilt`` rad of ``up`` are accepted.
    Returns ``(model (4,), inlier mask (N,))`` with a unit normal oriented along ``up`` when
    given; an all-false mask and a zero model when no plane qualifies. Hypotheses are scored on
    a random subset of at most ``max_score_points`` points (the refit uses all of them). With
    ``local_cell`` (m), the second and third point of each triple come from the first point's
    cell of that size, so that small planes in clutter are still hit by enough hypotheses.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {p.shape}")
    groups = _cell_groups(p, local_cell) if local_cell is not None and len(p) else None
    return _ransac(p, np.arange(p.shape[0]), distance, iterations, rng, up, max_tilt,
                   max_score_points, groups)


def _cell_groups(p: np.ndarray, cell: float):
    """Group points by cubic cells: ``(order, starts, counts, group of each point)``."""
    c = np.floor(p / cell).astype(np.int64)
    c -= c.min(axis=0)
    span = c.max(axis=0) + 1
    key = (c[:, 0] * span[1] + c[:, 1]) * span[2] + c[:, 2]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    first[1:] = sorted_key[1:] != sorted_key[:-1]
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, key.size))
    group = np.empty(key.size, dtype=np.int64)
    group[order] = np.cumsum(first) - 1
    return order, starts, counts, group


def _ransac(p: np.ndarray, active: np.ndarray, distance: float, iterations: int,
            rng: np.random.Generator, up, max_tilt, max_score_points: int, groups
            ) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC over the points ``p[active]``; returns the model and a mask over ``active``."""
    n = active.size
    none = (np.zeros(4), np.zeros(n, dtype=bool))
    if n < 3:
        return none
    idx = np.empty((iterations, 3), dtype=np.int64)
    idx[:, 0] = active[rng.integers(0, n, size=iterations)]
    if groups is None:
        idx[:, 1:] = active[rng.integers(0, n, size=(iterations, 2))]
    else:  # the other two from the first point's cell (possibly already removed points)
        order, starts, counts, group = groups
        g = group[idx[:, 0]]
        pick = starts[g, None] + np.floor(rng.random((iterations, 2))
                                          * counts[g, None]).astype(np.int64)
        idx[:, 1:] = order[pick]
    tri = p[idx]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    normals[ok] /= norms[ok, None]
    if up is not None:
        up = np.asarray(up, dtype=float) / np.linalg.norm(up)
        if max_tilt is not None:
            ok &= np.abs(normals @ up) >= np.cos(max_tilt)
    if not np.any(ok):
        return none
    normals = normals[ok]
    offsets = -np.einsum("hk,hk->h", normals, tri[ok, 0])
    q = p[active]
    score = q if n <= max_score_points else q[rng.integers(0, n, size=max_score_points)]
    counts_in = (np.abs(score[:, 0:1] * normals[:, 0] + score[:, 1:2] * normals[:, 1]
                        + score[:, 2:3] * normals[:, 2] + offsets) <= distance).sum(axis=0)
    best = int(np.argmax(counts_in))
    inliers = np.abs(_dot3(q, normals[best]) + offsets[best]) <= distance
    if inliers.sum() < 3:
        return none
    model = np.append(normals[best], offsets[best])
    reference = up if up is not None else normals[best]
    if model[:3] @ reference < 0.0:
        model = -model
    for _ in range(2):  # least-squares refinement on the inliers, then re-collect them
        refit = _refit_plane(q[inliers], reference)
        if up is not None and max_tilt is not None and abs(refit[:3] @ up) < np.cos(max_tilt):
            break
        model = refit
        inliers = np.abs(_dot3(q, model[:3]) + model[3]) <= distance
    return model, inliers


def _refit_plane(q: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares plane through points q, normal oriented along ``reference``."""
    mean = q.mean(axis=0)
    d = q - mean
    normal = np.linalg.eigh(np.einsum("ni,nj->ij", d, d))[1][:, 0]  # least variance
    if normal @ reference < 0.0:
        normal = -normal
    return np.append(normal, -normal @ mean)


def _voxelise(points: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Group points by voxel: ``(voxel means (M, 3), point->voxel index (N,), M)``."""
    keys = np.floor(points / voxel).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, inverse = np.unique(flat, return_inverse=True)
    m = int(inverse.max()) + 1
    counts = np.bincount(inverse, minlength=m).astype(float)
    means = np.stack([np.bincount(inverse, weights=points[:, k], minlength=m) for k in range(3)],
                     axis=1) / counts[:, None]
    return means, inverse, m


def segment_points(points, config: SegmentationConfig,
                   rng: np.random.Generator) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Label map-frame points: cluster >= 0, -1 noise, -2 plane, -3 rejected cluster.

    Rejected clusters are larger than ``max_cluster_extent`` or, with ``require_support``, do
    not rest on a horizontal support plane.

    Returns ``(labels (N,), planes)``. Clusters are numbered by decreasing size.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points contain NaN or inf")
    labels = np.full(p.shape[0], -1, dtype=np.int64)
    if p.shape[0] == 0:
        return labels, ()
    vox, inverse, m = _voxelise(p, config.voxel_size)
    vlabel = np.full(m, -1, dtype=np.int64)
    remaining = np.arange(m)
    planes = []
    groups = (_cell_groups(vox, config.ransac_cell)
              if config.ransac_cell is not None and config.max_planes else None)
    # Pass 1: large planes of any orientation (walls, floor); pass 2: smaller horizontal
    # support planes (tables, shelves, trays). Object faces are smaller than both.
    passes = [(config.min_plane_area, config.support_tilt)]
    if config.min_wall_area is not None:
        passes.insert(0, (config.min_wall_area, None))
    for area, tilt in passes:
        min_voxels = area / config.voxel_size ** 2
        while len(planes) < config.max_planes and remaining.size >= max(3, min_voxels):
            model, inl = _ransac(vox, remaining, config.plane_distance,
                                 config.plane_iterations, rng, config.up, tilt,
                                 config.max_score_points, groups)
            if inl.sum() < min_voxels:
                break
            planes.append(model)
            vlabel[remaining[inl]] = -2
            remaining = remaining[~inl]
    if remaining.size >= config.min_cluster_voxels:
        cloud = o3d.geometry.PointCloud()
        cloud.points = o3d.utility.Vector3dVector(vox[remaining])
        lab = np.asarray(cloud.cluster_dbscan(config.cluster_eps, config.min_cluster_voxels,
                                              print_progress=False), dtype=np.int64)
        if lab.size and lab.max() >= 0:
            n_lab = int(lab.max()) + 1
            sizes = np.bincount(lab[lab >= 0], minlength=n_lab)
            q = vox[remaining]
            lo = np.full((n_lab, 3), np.inf)
            hi = np.full((n_lab, 3), -np.inf)
            np.minimum.at(lo, lab[lab >= 0], q[lab >= 0])
            np.maximum.at(hi, lab[lab >= 0], q[lab >= 0])
            small = np.all(hi - lo <= config.max_cluster_extent, axis=1)
            if config.require_support:
                small &= _supported(q, lab, n_lab, planes, config)
            keep = np.flatnonzero((sizes >= config.min_cluster_voxels) & small)
            order = keep[np.argsort(-sizes[keep], kind="stable")]
            remap = np.where(small, -1, -3).astype(np.int64)
            remap[order] = np.arange(order.size)
            vlabel[remaining] = np.where(lab >= 0, remap[np.maximum(lab, 0)], -1)
    labels[:] = vlabel[inverse]
    return labels, tuple(planes)


def _supported(q: np.ndarray, lab: np.ndarray, n_lab: int, planes, config) -> np.ndarray:
    """Which DBSCAN labels rest on a horizontal support plane (bottom near it, top above)."""
    up = np.asarray(config.up, dtype=float) / np.linalg.norm(config.up)
    ok = np.zeros(n_lab, dtype=bool)
    sel = lab >= 0
    for model in planes:
        if abs(model[:3] @ up) < np.cos(config.support_tilt):
            continue
        h = _dot3(q[sel], model[:3]) + model[3]
        bottom = np.full(n_lab, np.inf)
        top = np.full(n_lab, -np.inf)
        np.minimum.at(bottom, lab[sel], h)
        np.maximum.at(top, lab[sel], h)
        ok |= ((bottom >= -config.plane_distance) & (bottom <= config.support_gap)
               & (top >= config.min_object_height))
    return ok


def _extend_to_support(q, lo, hi, planes, config):
    """Extend a cluster's box down to the support plane it rests on (its foot was removed)."""
    up = np.asarray(config.up, dtype=float) / np.linalg.norm(config.up)
    for model in planes:
        if abs(model[:3] @ up) < np.cos(config.support_tilt):
            continue
        gap = float(np.min(_dot3(q, model[:3]) + model[3]))
        if -config.plane_distance <= gap <= 3.0 * config.plane_distance:
            lo = lo + np.minimum(0.0, -gap * up)
            hi = hi + np.maximum(0.0, -gap * up)
            break
    return lo, hi


def _is_band(size, config: SegmentationConfig) -> bool:
    """Whether an upright box (along, across, height) is a thin band of furniture."""
    thin, long = sorted(size[:2])
    return size[2] <= config.band_height and (
        long >= max(config.band_length, config.band_aspect * thin) or thin <= config.band_width)


_BOX_YAWS = np.deg2rad(np.arange(0.0, 90.0, 3.0))


def _upright_box(q, lo, hi, config, min_gain: float = 0.05):
    """The smallest upright box of a cluster: (yaw, lo, hi) in the frame turned by yaw.

    The heading is searched in 3 degree steps over a quarter turn for the least footprint
    area; the axis-aligned box (yaw 0) is kept unless a turned one is ``min_gain`` smaller
    (round objects keep a stable heading). With an ``up`` other than +z the box stays
    axis-aligned. ``lo``/``hi`` come in axis-aligned (their z range is kept).
    """
    up = np.asarray(config.up, dtype=float)
    if len(q) < 3 or not np.allclose(up / np.linalg.norm(up), (0.0, 0.0, 1.0)):
        return 0.0, lo, hi
    k, area, bounds = min_area_rectangle(q[:, :2], _BOX_YAWS)
    if area[k] > (1.0 - min_gain) * area[0]:
        return 0.0, lo, hi
    lo, hi = lo.copy(), hi.copy()
    lo[:2], hi[:2] = bounds
    return float(_BOX_YAWS[k]), lo, hi


def near_capsules(points: np.ndarray, chain: np.ndarray, radius: float) -> np.ndarray:
    """Which points (N, 3) lie within ``radius`` of the polyline ``chain`` (K, 3).

    The robot's own body as capsules between consecutive link origins (a self filter: the
    arm seen by a camera is not an object). A chain of one point is a sphere.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    chain = np.asarray(chain, dtype=float).reshape(-1, 3)
    near = np.zeros(len(points), dtype=bool)
    if not len(chain) or not len(points):
        return near
    # only points in the chain's bounding box (grown by the radius) can be near: a frame's
    # tens of thousands of points shrink to the few on the arm before the distances
    box = np.all((points >= chain.min(axis=0) - radius) & (points <= chain.max(axis=0) + radius),
                 axis=1)
    idx = np.flatnonzero(box)
    pts = points[idx]
    segments = [(chain[0], chain[0])] if len(chain) == 1 else list(zip(chain[:-1], chain[1:]))
    for a, b in segments:
        ab = b - a
        t = np.clip((pts - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        near[idx] |= np.linalg.norm(pts - (a + t[:, None] * ab), axis=1) <= radius
    return near


def in_boxes(points: np.ndarray, t_frame_map: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which points (N, 3) lie inside one of ``boxes`` (M, 6: min xyz, max xyz).

    The boxes are axis-aligned in a frame (the robot's base) that ``t_frame_map`` (4x4) maps
    the points' frame into: the rigid parts of the robot's body, for the self filter.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 6)
    inside = np.zeros(len(points), dtype=bool)
    if not len(points) or not len(boxes):
        return inside
    t = np.asarray(t_frame_map, dtype=float)
    local = points @ t[:3, :3].T + t[:3, 3]
    for box in boxes:
        inside |= np.all((local >= box[:3]) & (local <= box[3:]), axis=1)
    return inside


def segment_frame(depth, rgb, intrinsics: CameraIntrinsics, t_map_cam,
                  config: SegmentationConfig, rng: np.random.Generator,
                  ignore_mask=None, self_chain=None, self_radius: float = 0.1,
                  self_boxes=None) -> SegmentationResult:
    """Segment a registered RGB-D frame into object clusters in the map frame.

    ``depth`` is (H, W) float metres, ``rgb`` (H, W, 3) uint8 registered to it (or None).
    Pixels where ``ignore_mask`` (H, W) is true, points of the robot's own body and points
    outside the optional crop box are ignored. The body is the points within ``self_radius``
    of ``self_chain`` (the arm's link origins in the map frame, see near_capsules) and those
    in ``self_boxes``, a pair (t_base_map 4x4, boxes (M, 6)) of boxes in the base frame (see
    in_boxes). Clusters that are thin bands of furniture (a tray's
    rim; ``config.band_*``) are rejected like those of :func:`segment_points` (label -3).
    Raises ValueError naming the cause on a bad frame, bad intrinsics or too little valid
    depth.
    """
    depth, rgb = _check_frame(depth, rgb, intrinsics)
    points, pix = backproject(depth, intrinsics, t_map_cam, config.min_depth, config.max_depth)
    if pix.size < config.min_valid_fraction * depth.size:
        raise ValueError(f"missing depth: only {pix.size} of {depth.size} pixels are valid "
                         f"(need {config.min_valid_fraction:.0%})")
    if ignore_mask is not None:
        ignore_mask = np.asarray(ignore_mask, dtype=bool)
        if ignore_mask.shape != depth.shape:
            raise ValueError(f"ignore_mask shape {ignore_mask.shape} does not match depth "
                             f"{depth.shape}")
        keep = ~ignore_mask.reshape(-1)[pix]
        points, pix = points[keep], pix[keep]
    if self_chain is not None and len(self_chain):
        keep = ~near_capsules(points, self_chain, self_radius)
        points, pix = points[keep], pix[keep]
    if self_boxes is not None:
        keep = ~in_boxes(points, *self_boxes)
        points, pix = points[keep], pix[keep]
    if config.crop_min is not None:
        keep = np.all((points >= config.crop_min) & (points <= config.crop_max), axis=1)
        points, pix = points[keep], pix[keep]
    labels, planes = segment_points(points, config, rng)
    colours = (rgb.reshape(-1, 3)[pix].astype(float) / 255.0 if rgb is not None
               else np.zeros((pix.size, 3)))
    clusters = []
    n_clusters = max(int(labels.max()) + 1, 0) if labels.size else 0
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    renumber = np.full(n_clusters, -3, dtype=np.int64)
    for c in range(n_clusters):
        sel = order[bounds[c]:bounds[c + 1]]
        q = points[sel]
        lo, hi = q.min(axis=0), q.max(axis=0)
        lo, hi = _extend_to_support(q, lo, hi, planes, config)
        yaw, lo, hi = _upright_box(q, lo, hi, config)
        if _is_band(hi - lo, config):
            continue
        renumber[c] = len(clusters)
        col, row = pix[sel] % intrinsics.width, pix[sel] // intrinsics.width
        truncated = bool(np.any((col <= 1) | (col >= intrinsics.width - 2) | (row <= 1)
                                | (row >= intrinsics.height - 2)))
        centre = 0.5 * (lo + hi)
        cos, sin = np.cos(yaw), np.sin(yaw)
        centre[:2] = (cos * centre[0] - sin * centre[1], sin * centre[0] + cos * centre[1])
        clusters.append(Cluster(centroid=q.mean(axis=0), center=centre,
                                extent=hi - lo, colour=colours[sel].mean(axis=0),
                                pixel_indices=pix[sel], n_points=int(sel.size),
                                truncated=truncated, yaw=yaw))
    if n_clusters:  # the bands' points are rejected, the later clusters renumbered
        labels = np.where(labels >= 0, renumber[np.maximum(labels, 0)], labels)
    image_labels = np.full(depth.size, -1, dtype=np.int64)
    image_labels[pix] = labels
    return SegmentationResult(clusters=tuple(clusters), planes=planes,
                              n_valid_points=int(pix.size),
                              n_plane_points=int(np.sum(labels == -2)),
                              labels=image_labels.reshape(depth.shape))


def render_boxes(intrinsics: CameraIntrinsics, t_map_cam, box_centres, box_sizes,
                 box_colours=None, plane_z: float | None = 0.0,
                 plane_colour=(120, 120, 120)) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast axis-aligned boxes (and a horizontal plane z = plane_z) into a depth/RGB frame.

    Returns ``(depth (H, W) float32 metres with NaN where nothing is hit, rgb (H, W, 3) uint8)``.
    """
    t = validate_transform(t_map_cam)
    centres = np.atleast_2d(np.asarray(box_centres, dtype=float)).reshape(-1, 3)
    sizes = np.atleast_2d(np.asarray(box_sizes, dtype=float)).reshape(-1, 3)
    if centres.shape != sizes.shape:
        raise ValueError(f"box_centres {centres.shape} and box_sizes {sizes.shape} differ")
    nb = centres.shape[0]
    if box_colours is None:
        box_colours = np.tile([200, 50, 50], (nb, 1))
    box_colours = np.asarray(box_colours, dtype=np.uint8).reshape(nb, 3)
    h, w = intrinsics.height, intrinsics.width
    v, u = np.mgrid[0:h, 0:w]
    d_cam = np.stack([(u.ravel() - intrinsics.cx) / intrinsics.fx,
                      (v.ravel() - intrinsics.cy) / intrinsics.fy,
                      np.ones(h * w)], axis=1)
    d = d_cam @ t[:3, :3].T  # ray o + s d has optical depth s
    o = t[:3, 3]
    best = np.full(h * w, np.inf)
    colour = np.zeros((h * w, 3), dtype=np.uint8)
    if plane_z is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (plane_z - o[2]) / d[:, 2]
        hit = np.isfinite(s) & (s > 0.0)
        best[hit] = s[hit]
        colour[hit] = plane_colour
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
    for b in range(nb):
        lo = centres[b] - 0.5 * sizes[b]
        hi = centres[b] + 0.5 * sizes[b]
        with np.errstate(invalid="ignore"):
            t1 = (lo - o) * inv
            t2 = (hi - o) * inv
        tmin = np.nanmax(np.minimum(t1, t2), axis=1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (tmax >= tmin) & (tmin > 0.0) & (tmin < best)
        best[hit] = tmin[hit]
        colour[hit] = box_colours[b]
    depth = np.where(np.isfinite(best), best, np.nan).astype(np.float32).reshape(h, w)
    return depth, colour.reshape(h, w, 3)


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-map transform of an optical-frame camera at ``eye`` looking at ``target``."""
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    if np.linalg.norm(x) < 1e-6:  # looking along up: pick any perpendicular
        x = np.cross(z, [1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, 0], t[:3, 1], t[:3, 2], t[:3, 3] = x, y, z, eye
    return t


def _latency_scene(rng: np.random.Generator, n_objects: int):
    intr = CameraIntrinsics.from_fov(320, 240, np.deg2rad(60.0))
    t = look_at([0.0, -0.7, 0.75], [0.0, 0.0, 0.0])
    angles = np.linspace(0.0, 2 * np.pi, n_objects, endpoint=False)
    centres_xy = 0.22 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    sizes = rng.uniform(0.05, 0.09, size=(n_objects, 3))
    centres = np.column_stack([centres_xy, 0.5 * sizes[:, 2]])
    colours = rng.integers(0, 256, size=(n_objects, 3))
    depth, rgb = render_boxes(intr, t, centres, sizes, colours)
    return intr, t, depth, rgb, centres


def measure_latency(rng: np.random.Generator, n_objects: int = 5, repeats: int = 20,
                    config: SegmentationConfig | None = None) -> dict:
    """Time ``segment_frame`` on a synthetic 320x240 frame of boxes on a table.

    Returns a dict with ``median_ms``, ``p90_ms``, ``n_clusters`` and ``n_objects``.
    """
    config = config or SegmentationConfig()
    intr, t, depth, rgb, _ = _latency_scene(rng, n_objects)
    times = []
    result = None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = segment_frame(depth, rgb, intr, t, config, rng)
        times.append(time.perf_counter() - start)
    times_ms = 1e3 * np.asarray(times)
    return {"median_ms": float(np.median(times_ms)), "p90_ms": float(np.percentile(times_ms, 90)),
            "n_clusters": len(result.clusters), "n_objects": n_objects,
            "frame": f"{intr.width}x{intr.height}"}
