"""Scene beliefs: per-object category posterior, position belief and existence, over time.

Each tracked object carries
- a categorical posterior over categories, fused over views by Bayes' rule with the detection's
  category likelihood p(y | c) (mixed with a small floor so a wrong early label can be undone);
- a Gaussian belief over its map-frame position, updated by a Kalman filter with an identity
  observation model; between updates the covariance grows as a random walk, slowly while the
  object is expected in view and faster when it is out of view (object permanence: beliefs out
  of view are kept, only less certain);
- an existence probability (Bernoulli filter): raised by detections, lowered when the object
  should have been seen (in view, in range, not occluded) but was not; tracks below
  ``remove_below`` are dropped;
- a diagonal Gaussian belief over the object model's shape latent (``fuse_shape``): the
  model's prior N(0, I) times each view's likelihood q(s | x) / p(s), tempered like the
  category likelihood because views of one object are not independent; a view whose code is
  inconsistent with the belief (chi-square gate) restarts it, since the track then most
  likely took another object's detection.

Data association gates each (track, detection) pair by the Mahalanobis distance of the
innovation and solves the assignment with the Hungarian method on a negative log-likelihood
cost that includes the category agreement. Unmatched detections start new tracks. A track that
keeps being missed in view (its existence falls below ``relocate_below``) is merged into a
younger track within ``relocate_max_distance`` that looks like it (category and colour) and
was first seen after it was last seen: the object has moved, and it keeps its identity (a
look-alike farther off is another object: in a cluttered building, an unbounded search gave a
box's identity, and the fetch task posed on it, to a look-alike on the floor 3 m away).
Two tracks of one object (views from opposite sides put the centre of the visible surface
outside the gate) merge when their centres lie within the object's extent, they look alike
and they were never detected in the same frame.

The sensor model (``SensorModel``: field of view, range limits, detection probability, position
noise growing with range and off-axis angle, classifier accuracy falling with range) is shared
with ``active_vision``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import ndtr
from scipy.stats import chi2

from embodied_aif.models.segmentation import CameraIntrinsics, Cluster, validate_transform

__all__ = [
    "BeliefConfig",
    "Detection",
    "ObjectBelief",
    "SceneBeliefs",
    "SensorModel",
    "belief_summary",
    "categorical_entropy",
    "classifier_likelihood",
    "detection_from_cluster",
    "empty_scene",
    "fuse_category_likelihoods",
    "fuse_shape",
    "height_likelihood",
    "pose_covariance_6x6",
    "size_temperature",
    "update",
]


def categorical_entropy(p) -> np.ndarray:
    """Entropy in nats of categorical distributions along the last axis."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0.0, p * np.log(p), 0.0), axis=-1)


def _as_transforms(t_map_cam) -> tuple[np.ndarray, bool]:
    """Validate one (4, 4) or a batch (V, 4, 4) of camera poses: ``(batch, was_batched)``."""
    t = np.asarray(t_map_cam, dtype=float)
    if t.ndim == 2:
        return validate_transform(t)[None], False
    if t.ndim != 3 or t.shape[1:] != (4, 4):
        raise ValueError(f"camera poses must be (4, 4) or (V, 4, 4), got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("camera poses contain NaN or inf")
    return t, True


@dataclass(frozen=True)
class SensorModel:
    """Visibility and observation-noise model of an RGB-D camera with an object detector.

    Position noise, in the camera frame, has standard deviation
    ``sigma_floor + sigma_lateral * r`` across the ray and ``sigma_floor + sigma_depth * r**2``
    along it (r: range), both scaled by ``1 + angle_gain * a**2`` (a: angle off the optical
    axis). Classifier accuracy is ``1/K + (accuracy_max - 1/K) * exp(-(r / accuracy_range)**2)
    * cos(a)**2``. Detection probability is ``p_detect`` inside the image (minus
    ``border_px``) and the range limits, 0 outside.
    """

    intrinsics: CameraIntrinsics
    min_range: float = 0.1
    max_range: float = 3.0
    p_detect: float = 0.9
    border_px: float = 2.0
    sigma_floor: float = 0.003
    sigma_lateral: float = 0.004
    sigma_depth: float = 0.006
    angle_gain: float = 1.0
    accuracy_max: float = 0.9
    accuracy_range: float = 1.2
    occlusion_margin: float = 0.05

    def __post_init__(self):
        if not 0.0 <= self.min_range < self.max_range:
            raise ValueError(f"range [{self.min_range}, {self.max_range}] is empty")
        if not 0.0 < self.p_detect < 1.0:
            raise ValueError(f"p_detect={self.p_detect} must lie in (0, 1)")
        if not 0.0 < self.accuracy_max <= 1.0:
            raise ValueError(f"accuracy_max={self.accuracy_max} must lie in (0, 1]")
        for name in ("sigma_floor", "sigma_lateral", "sigma_depth", "accuracy_range"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")

    def geometry(self, t_map_cam, points) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
        """Return ``(uv, depth, range, off-axis angle)`` of map points seen from a camera.

        ``t_map_cam`` is one pose (4, 4), giving shapes (N, 2), (N,), (N,), (N,), or a batch
        (V, 4, 4), giving (V, N, 2), (V, N), (V, N), (V, N).
        """
        ts, batched = _as_transforms(t_map_cam)
        p = np.atleast_2d(np.asarray(points, dtype=float))
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got shape {p.shape}")
        rel = p[None, :, :] - ts[:, None, :3, 3]                 # (V, N, 3)
        cam = np.einsum("vnk,vkj->vnj", rel, ts[:, :3, :3])      # camera-frame coordinates
        z = cam[..., 2]
        intr = self.intrinsics
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([intr.fx * cam[..., 0] / z + intr.cx,
                           intr.fy * cam[..., 1] / z + intr.cy], axis=-1)
        rng = np.linalg.norm(rel, axis=-1)
        angle = np.arccos(np.clip(z / np.maximum(rng, 1e-12), -1.0, 1.0))
        if batched:
            return uv, z, rng, angle
        return uv[0], z[0], rng[0], angle[0]

    def detection_probability(self, t_map_cam, points, depth=None) -> np.ndarray:
        """Probability that each map point would be detected from this camera pose (or batch).

        With a depth image (H, W) (single pose only), points whose pixel shows a surface nearer
        than their own depth by ``occlusion_margin`` count as occluded (probability 0); pixels
        without valid depth leave the point visible.
        """
        uv, z, _, _ = self.geometry(t_map_cam, points)
        b = self.border_px
        with np.errstate(invalid="ignore"):
            inside = ((z > self.min_range) & (z < self.max_range)
                      & (uv[..., 0] >= b) & (uv[..., 0] <= self.intrinsics.width - 1 - b)
                      & (uv[..., 1] >= b) & (uv[..., 1] <= self.intrinsics.height - 1 - b))
        if depth is not None and np.any(inside):
            if inside.ndim != 1:
                raise ValueError("a depth image needs a single camera pose, not a batch")
            depth = np.asarray(depth, dtype=float)
            if depth.shape != (self.intrinsics.height, self.intrinsics.width):
                raise ValueError(f"depth shape {depth.shape} does not match the sensor's "
                                 f"{self.intrinsics.height}x{self.intrinsics.width}")
            idx = np.flatnonzero(inside)
            col = np.round(uv[idx, 0]).astype(int)
            row = np.round(uv[idx, 1]).astype(int)
            seen = depth[row, col]
            with np.errstate(invalid="ignore"):
                occluded = np.isfinite(seen) & (seen > 0.0) & (seen < z[idx]
                                                               - self.occlusion_margin)
            inside[idx[occluded]] = False
        return np.where(inside, self.p_detect, 0.0)

    def position_covariance(self, t_map_cam, points) -> np.ndarray:
        """Map-frame covariance (N, 3, 3) (or (V, N, 3, 3)) of a position measurement."""
        ts, batched = _as_transforms(t_map_cam)
        p = np.atleast_2d(np.asarray(points, dtype=float))
        _, _, r, angle = self.geometry(ts, p)
        gain = 1.0 + self.angle_gain * angle ** 2
        lat = (self.sigma_floor + self.sigma_lateral * r) * gain
        dep = (self.sigma_floor + self.sigma_depth * r ** 2) * gain
        ray = p[None, :, :] - ts[:, None, :3, 3]
        ray = ray / np.maximum(np.linalg.norm(ray, axis=-1, keepdims=True), 1e-12)
        outer = ray[..., :, None] * ray[..., None, :]
        cov = (lat ** 2)[..., None, None] * (np.eye(3) - outer) \
            + (dep ** 2)[..., None, None] * outer
        return cov if batched else cov[0]

    def class_accuracy(self, t_map_cam, points, n_categories: int) -> np.ndarray:
        """Probability (N,) (or (V, N)) that the detector reports each point's true category."""
        _, _, r, angle = self.geometry(t_map_cam, points)
        chance = 1.0 / n_categories
        quality = np.exp(-(r / self.accuracy_range) ** 2) * np.cos(angle) ** 2
        return chance + (self.accuracy_max - chance) * np.clip(quality, 0.0, 1.0)

    @staticmethod
    def confusion(accuracy, n_categories: int) -> np.ndarray:
        """Detector likelihoods p(y | c), shape accuracy.shape + (K, K) indexed [..., c, y]."""
        a = np.atleast_1d(np.asarray(accuracy, dtype=float))
        k = n_categories
        off = (1.0 - a) / max(k - 1, 1)
        out = np.broadcast_to(off[..., None, None], a.shape + (k, k)).copy()
        out[..., np.arange(k), np.arange(k)] = a[..., None]
        return out


@dataclass(frozen=True)
class Detection:
    """One object detection in the map frame, with its measurement model."""

    position: np.ndarray           # (3,)
    position_cov: np.ndarray       # (3, 3)
    category_likelihood: np.ndarray  # (K,) p(y | c) of the observed label y, any positive scale
    extent: np.ndarray = field(default_factory=lambda: np.zeros(3))
    colour: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    shape_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (D,) or (0,): none
    shape_var: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (D,) q(s | x) variance
    yaw: float = 0.0               # heading of the extent's first axis (map frame)

    def __post_init__(self):
        pos = np.asarray(self.position, dtype=float)
        cov = np.asarray(self.position_cov, dtype=float)
        lik = np.asarray(self.category_likelihood, dtype=float)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f"detection position must be 3 finite numbers, got {pos}")
        if cov.shape != (3, 3) or not np.allclose(cov, cov.T) \
                or np.any(np.linalg.eigvalsh(cov) <= 0.0):
            raise ValueError(f"detection position_cov must be 3x3 symmetric positive definite, "
                             f"got shape {cov.shape}")
        if lik.ndim != 1 or lik.size < 1 or np.any(lik < 0.0) or not np.any(lik > 0.0) \
                or not np.all(np.isfinite(lik)):
            raise ValueError(f"category_likelihood must be a non-negative, non-zero vector, "
                             f"got {lik}")
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "position_cov", cov)
        object.__setattr__(self, "category_likelihood", lik)
        object.__setattr__(self, "extent", np.asarray(self.extent, dtype=float).reshape(3))
        object.__setattr__(self, "colour", np.asarray(self.colour, dtype=float).reshape(3))
        if not np.isfinite(self.yaw):
            raise ValueError(f"detection yaw must be finite, got {self.yaw}")
        mean, var = _shape_arrays(self.shape_mean, self.shape_var, "detection shape_mean",
                                  "shape_var")
        object.__setattr__(self, "shape_mean", mean)
        object.__setattr__(self, "shape_var", var)


def _shape_arrays(mean, spread, what: str, spread_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a shape code and its (positive) variances or precisions: both (D,) or both empty."""
    mean = np.asarray(mean, dtype=float).reshape(-1)
    spread = np.asarray(spread, dtype=float).reshape(-1)
    if mean.shape != spread.shape:
        raise ValueError(f"{what} has shape {mean.shape} but its {spread_name} {spread.shape}")
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(spread)) \
            or np.any(spread <= 0.0):
        raise ValueError(f"{what} must be finite with positive {spread_name}")
    return mean, spread


@dataclass(frozen=True)
class ObjectBelief:
    """The belief about one tracked object."""

    id: str
    category_probs: np.ndarray  # (K,) sums to 1
    mean: np.ndarray            # (3,) map-frame position
    cov: np.ndarray             # (3, 3)
    extent: np.ndarray          # (3,)
    colour: np.ndarray          # (3,) mean RGB in [0, 1] (NaN unknown)
    existence: float
    last_seen: float
    n_detections: int = 1
    n_misses: int = 0           # consecutive misses while expected in view
    in_view: bool = True
    first_seen: float = 0.0
    shape_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))       # (D,), (0,): none
    shape_precision: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (D,) diagonal
    distinct: frozenset = frozenset()  # ids of nearby tracks seen in the same frame as this one
    yaw: float = 0.0            # heading of the extent's first axis (map frame)
    merged: frozenset = frozenset()    # ids of tracks merged into this one (its aliases)

    def __post_init__(self):
        mean, prec = _shape_arrays(self.shape_mean, self.shape_precision,
                                   f"object {self.id}: shape_mean", "shape_precision")
        object.__setattr__(self, "shape_mean", mean)
        object.__setattr__(self, "shape_precision", prec)
        p = np.asarray(self.category_probs, dtype=float)
        if p.ndim != 1 or np.any(p < 0.0) or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"object {self.id}: category_probs must be a distribution, got {p}")
        if np.asarray(self.mean).shape != (3,) or np.asarray(self.cov).shape != (3, 3):
            raise ValueError(f"object {self.id}: mean {np.shape(self.mean)} / cov "
                             f"{np.shape(self.cov)} must be (3,) / (3, 3)")
        if not 0.0 <= self.existence <= 1.0:
            raise ValueError(f"object {self.id}: existence={self.existence} not in [0, 1]")


@dataclass(frozen=True)
class SceneBeliefs:
    """All object beliefs at time ``stamp`` (seconds), with the category names."""

    objects: tuple[ObjectBelief, ...]
    category_names: tuple[str, ...]
    stamp: float = 0.0
    next_id: int = 0

    def __post_init__(self):
        k = len(self.category_names)
        if k < 1:
            raise ValueError("category_names must not be empty")
        for obj in self.objects:
            if obj.category_probs.shape != (k,):
                raise ValueError(f"object {obj.id}: {obj.category_probs.shape[0]} category "
                                 f"probabilities for {k} categories")

    def get(self, object_id: str) -> ObjectBelief | None:
        """Return the belief with this id, or None."""
        return next((o for o in self.objects if o.id == object_id), None)


def empty_scene(category_names, stamp: float = 0.0) -> SceneBeliefs:
    """Scene beliefs with no objects."""
    return SceneBeliefs(objects=(), category_names=tuple(category_names), stamp=stamp)


@dataclass(frozen=True)
class BeliefConfig:
    """Parameters of ``update``."""

    q_in_view: float = 1e-5        # position random-walk rate (m^2/s) while expected in view
    q_out_of_view: float = 2e-5    # faster growth out of view
    max_variance: float = 1.0      # cap on each position variance (m^2)
    gate_chi2: float = 16.27       # chi-square(3) 99.9% gate on the innovation
    category_weight: float = 1.0   # weight of category disagreement in the association cost
    category_floor: float = 1e-4   # mixing with uniform before each fusion
    birth_existence: float = 0.6
    p_false_alarm: float = 0.1
    max_existence: float = 0.999
    remove_below: float = 0.1
    extent_rate: float = 0.3       # exponential averaging of extent and colour
    relocate: bool = True
    relocate_below: float = 0.6    # a track missed in view down to this existence has moved
    relocate_colour_gate: float = 0.2
    relocate_min_category_ratio: float = 0.5
    relocate_max_distance: float = 1.0  # a moved object is looked for this near (m)
    shape_temperature: float = 0.5     # each view's shape likelihood counts this much
    shape_prior_precision: float = 1.0  # the object model's prior N(0, I) on the shape code
    shape_max_precision: float = 400.0  # cap per dimension (older views fade beyond it)
    shape_gate: float = 0.9999         # chi-square quantile of the restart gate
    merge: bool = True
    merge_fraction: float = 0.75   # duplicates: centres closer than this times the larger extent
    merge_min_distance: float = 0.04  # ... or than this (m)
    distinct_radius: float = 0.3   # tracks seen together within this (m) are kept apart

    def __post_init__(self):
        if not 0.0 < self.remove_below < self.birth_existence < 1.0:
            raise ValueError(f"need 0 < remove_below={self.remove_below} < birth_existence="
                             f"{self.birth_existence} < 1")
        if self.gate_chi2 <= 0.0 or self.q_in_view < 0.0 or self.q_out_of_view < 0.0:
            raise ValueError("gate_chi2 must be > 0 and process noise rates >= 0")
        if not self.relocate_max_distance > 0.0:
            raise ValueError(f"relocate_max_distance={self.relocate_max_distance} must be > 0")
        if not 0.0 < self.p_false_alarm < 1.0:
            raise ValueError(f"p_false_alarm={self.p_false_alarm} must lie in (0, 1)")
        if not (self.merge_fraction > 0.0
                and 0.0 <= self.merge_min_distance < self.distinct_radius):
            raise ValueError(f"need merge_fraction={self.merge_fraction} > 0 and 0 <= "
                             f"merge_min_distance={self.merge_min_distance} < "
                             f"distinct_radius={self.distinct_radius}")
        if not 0.0 < self.shape_temperature <= 1.0 or not 0.0 < self.shape_gate < 1.0 \
                or not 0.0 < self.shape_prior_precision < self.shape_max_precision:
            raise ValueError(f"need 0 < shape_temperature={self.shape_temperature} <= 1, "
                             f"0 < shape_gate={self.shape_gate} < 1 and 0 < "
                             f"shape_prior_precision={self.shape_prior_precision} < "
                             f"shape_max_precision={self.shape_max_precision}")


def detection_from_cluster(cluster: Cluster, sensor: SensorModel, t_map_cam,
                           category_likelihood, shape_fraction: float = 0.15,
                           truncation_sigma: float = 0.03, shape_mean=None,
                           shape_var=None) -> Detection:
    """Turn a segmented cluster into a Detection with its measurement covariance.

    The covariance adds to the sensor's noise at the cluster centre a term
    ``(shape_fraction * size)**2`` on each axis (the box of the visible surface is not the
    object's box), where size is the height vertically and the box's footprint diagonal over
    sqrt(2) on both horizontal axes, so that it does not depend on how the box is turned (a
    single visible face gives a box turned to it, nearly flat)
    and, for a cluster truncated by the image border, ``truncation_sigma**2`` on every axis.
    ``shape_mean`` / ``shape_var`` (optional, (D,)): the object model's q(shape) of the
    cluster's crop; a row with NaNs (no crop could be cut) counts as no shape observation.
    """
    cov = sensor.position_covariance(t_map_cam, cluster.center)[0]
    ex, ey, ez = (float(v) for v in cluster.extent)
    across = np.hypot(ex, ey) / np.sqrt(2.0)  # the same however the box is turned
    cov = cov + np.diag((shape_fraction * np.array([across, across, ez])) ** 2)
    if cluster.truncated:
        cov = cov + truncation_sigma ** 2 * np.eye(3)
    mean = np.zeros(0) if shape_mean is None else np.asarray(shape_mean, dtype=float)
    var = np.zeros(0) if shape_var is None else np.asarray(shape_var, dtype=float)
    if mean.size and var.shape == mean.shape \
            and not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
        mean = var = np.zeros(0)
    return Detection(position=cluster.center, position_cov=cov,
                     category_likelihood=category_likelihood, extent=cluster.extent,
                     colour=cluster.colour, shape_mean=mean, shape_var=var,
                     yaw=float(cluster.yaw))


def classifier_likelihood(probs, temperature=0.5, floor: float = 0.02) -> np.ndarray:
    """Category likelihoods (..., K) for fusion from a classifier's posteriors q(c | x).

    The object model is trained with balanced categories, so q(c | x) is proportional to
    p(x | c). Successive views of one object are far from independent and the network is
    overconfident, so the likelihood is tempered, q**temperature (0 < temperature <= 1; a
    scalar or one value per row, e.g. smaller for small crops), and mixed with the uniform
    likelihood by ``floor``: no single view can rule a category out, and fusing n views of one
    object counts as about ``temperature * n`` independent ones. Rows that are all zero (no
    classifier output) come out uniform.
    """
    temp = np.asarray(temperature, dtype=float)
    if np.any(~(temp > 0.0)) or np.any(temp > 1.0) or not 0.0 <= floor < 1.0:
        raise ValueError(f"need 0 < temperature={temperature} <= 1 and 0 <= floor={floor} < 1")
    q = np.asarray(probs, dtype=float)
    if q.ndim < 1 or q.shape[-1] < 1 or np.any(q < 0.0) or not np.all(np.isfinite(q)):
        raise ValueError(f"classifier posteriors must be finite, non-negative (..., K), got "
                         f"shape {q.shape}")
    k = q.shape[-1]
    t = q ** (temp[..., None] if temp.ndim else temp)
    total = t.sum(axis=-1, keepdims=True)
    t = np.where(total > 0.0, t / np.where(total > 0.0, total, 1.0), 1.0 / k)
    return (1.0 - floor) * t + floor / k


def height_likelihood(heights, ranges, sigma: float = 0.015, partial: float = 0.2,
                      outlier: float = 0.02, max_height: float = 0.5,
                      temperature=1.0) -> np.ndarray:
    """Category likelihoods (N, K) of measured object heights, from each category's height range.

    ``heights`` (N,) are the measured heights above the support (a cluster's vertical extent,
    extended down to its support plane by segmentation); ``ranges`` has one ``(low, high)``
    per category (metres: the heights its generator produces) or None for a category of
    unknown size. The true height H of a category is uniform on its range, and the measurement
    - with probability ``1 - partial``: H plus Gaussian noise of ``sigma`` (voxel size, plane
      margin), that is a uniform density smoothed by a Gaussian;
    - with probability ``partial``: uniform on [0, H] (the top is hidden or only a fragment of
      the object was segmented: occlusion only ever makes an object look lower), whose
      density after integrating H out is log(high / max(low, h)) / (high - low) below ``high``;
    - mixed with ``outlier`` of a uniform density on [0, ``max_height``] (clusters merging two
      objects, wrong support planes), so no height rules a category out.
    A category of unknown size gets the uniform density 1 / ``max_height`` before the outlier
    mixing. The result is raised to ``temperature`` (a scalar or one value per row, in
    [0, 1]; 0 gives no evidence: views of one object repeat the same error, like the
    classifier's in ``classifier_likelihood``) and normalised per row.
    """
    h = np.atleast_1d(np.asarray(heights, dtype=float))
    if h.ndim != 1 or not np.all(np.isfinite(h)):
        raise ValueError(f"heights must be finite numbers (N,), got shape {h.shape}")
    ranges = list(ranges)
    if not ranges:
        raise ValueError("need at least one category height range")
    if not (sigma > 0.0 and 0.0 <= partial <= 1.0 and 0.0 < outlier <= 1.0
            and max_height > 0.0):
        raise ValueError(f"need sigma={sigma} > 0, 0 <= partial={partial} <= 1, "
                         f"0 < outlier={outlier} <= 1 and max_height={max_height} > 0")
    temp = np.asarray(temperature, dtype=float)
    if np.any(~(temp >= 0.0)) or np.any(temp > 1.0):
        raise ValueError(f"height temperature must lie in [0, 1], got {temperature}")
    h = np.maximum(h, 0.0)
    columns = []
    for k, span in enumerate(ranges):
        if span is None:
            columns.append(np.full(h.shape, 1.0 / max_height))
            continue
        low, high = (float(v) for v in span)
        if not 0.0 < low < high:
            raise ValueError(f"category {k}: height range ({low}, {high}) needs 0 < low < high")
        width = high - low
        full = (ndtr((high - h) / sigma) - ndtr((low - h) / sigma)) / width
        cut = np.where(h < high, np.log(high / np.clip(h, low, high)) / width, 0.0)
        columns.append((1.0 - partial) * full + partial * cut)
    dens = (1.0 - outlier) * np.stack(columns, axis=1) + outlier / max_height
    out = dens ** (temp[:, None] if temp.ndim else temp)
    return out / out.sum(axis=1, keepdims=True)


def size_temperature(n_pixels, temperature: float = 0.5, full_pixels: float = 150.0
                     ) -> np.ndarray:
    """Per-detection temperatures: ``temperature`` scaled down for objects seen small.

    A cluster of n pixels gets ``temperature * clip(n / full_pixels, 0.1, 1)``: fragments and
    far objects say less about the category (``full_pixels`` <= 0: no scaling).
    """
    n = np.asarray(n_pixels, dtype=float)
    if full_pixels <= 0.0:
        return np.full(n.shape, float(temperature))
    return float(temperature) * np.clip(n / full_pixels, 0.1, 1.0)


def fuse_category_likelihoods(likelihoods, prior=None) -> np.ndarray:
    """Posterior (K,) from a prior (uniform by default) and per-view likelihoods (V, K)."""
    lik = np.atleast_2d(np.asarray(likelihoods, dtype=float))
    k = lik.shape[-1]
    log_post = np.log(np.full(k, 1.0 / k) if prior is None else np.asarray(prior, float))
    log_post = log_post + np.log(np.maximum(lik, 1e-300)).sum(axis=0)
    post = np.exp(log_post - log_post.max())
    return post / post.sum()


@lru_cache(maxsize=32)
def _chi2_quantile(quantile: float, dof: int) -> float:
    return float(chi2.ppf(quantile, dof))


def fuse_shape(mean, precision, obs_mean, obs_var, config: BeliefConfig
               ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Fuse one view's q(shape) into a diagonal Gaussian shape belief.

    The encoder's posterior q(s | x) = N(obs_mean, obs_var) already contains the prior
    N(0, 1 / shape_prior_precision), so the view's likelihood q / p has precision
    ``max(1 / obs_var - prior, 0)`` and information ``obs_mean / obs_var``; it is tempered by
    ``shape_temperature`` and added to the belief's natural parameters (an empty belief
    starts from the prior). Beyond ``shape_max_precision`` both natural parameters are scaled
    down together: the mean is kept, older views fade. A view whose squared innovation
    ``sum (obs_mean - mean)**2 / (obs_var + 1 / precision)`` exceeds the chi-square
    ``shape_gate`` quantile restarts the belief from the prior and that view. Returns
    ``(mean, precision, restarted)``; an empty observation returns the belief unchanged.
    """
    mean, precision = _shape_arrays(mean, precision, "shape belief", "precision")
    obs_mean, obs_var = _shape_arrays(obs_mean, obs_var, "shape observation", "variance")
    if obs_mean.size == 0:
        return mean, precision, False
    prior = config.shape_prior_precision
    restarted = False
    if mean.size:
        if mean.shape != obs_mean.shape:
            raise ValueError(f"shape observation has {obs_mean.size} dimensions, the belief "
                             f"{mean.size}")
        d2 = float(np.sum((obs_mean - mean) ** 2 / (obs_var + 1.0 / precision)))
        restarted = d2 > _chi2_quantile(config.shape_gate, obs_mean.size)
    if mean.size == 0 or restarted:
        mean, precision = np.zeros_like(obs_mean), np.full_like(obs_var, prior)
    t = config.shape_temperature
    new_precision = precision + t * np.maximum(1.0 / obs_var - prior, 0.0)
    info = precision * mean + t * obs_mean / obs_var
    scale = np.minimum(1.0, config.shape_max_precision / new_precision)
    new_precision = new_precision * scale
    return info * scale / new_precision, new_precision, restarted


def _fuse_category(p: np.ndarray, lik: np.ndarray, floor: float) -> np.ndarray:
    prior = (1.0 - floor) * p + floor / p.size
    post = prior * lik
    return post / post.sum()


def _category_ratio(p: np.ndarray, lik: np.ndarray) -> float:
    """Evidence ratio sum_c p(c) lik(c) / mean_c lik(c): > 1 when the label agrees with p."""
    return float(p @ lik / lik.mean())


def _existence_hit(r: float, pd: float, config: BeliefConfig) -> float:
    pd = max(pd, config.p_false_alarm)
    post = r * pd / (r * pd + (1.0 - r) * config.p_false_alarm)
    return min(post, config.max_existence)


def _existence_miss(r: float, pd: float) -> float:
    return r * (1.0 - pd) / (1.0 - r * pd)


def _colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    if np.any(np.isnan(a)) or np.any(np.isnan(b)):
        return 0.0
    return float(np.linalg.norm(a - b))


def _blend(old: np.ndarray, new: np.ndarray, rate: float) -> np.ndarray:
    if np.any(np.isnan(old)):
        return new.copy()
    if np.any(np.isnan(new)):
        return old
    return (1.0 - rate) * old + rate * new


def _blend_box(yaw: float, extent: np.ndarray, new_yaw: float, new_extent: np.ndarray,
               rate: float) -> tuple[float, np.ndarray]:
    """Blend an upright box (heading, extent) toward another by ``rate``.

    A box's heading is defined up to quarter turns: the new box is first turned by the
    quarter turns that bring its heading nearest (its length and width swap on odd ones).
    """
    if np.any(np.isnan(extent)):
        return float(new_yaw), new_extent.copy()
    turns = int(np.round((new_yaw - yaw) / (np.pi / 2)))
    d = new_yaw - yaw - turns * np.pi / 2
    new_extent = new_extent[[1, 0, 2]] if turns % 2 else new_extent
    return float(yaw + rate * d), _blend(extent, new_extent, rate)


def _merge_shapes(old: ObjectBelief, young: ObjectBelief, config: BeliefConfig
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Shape belief of a relocated track: both beliefs' evidence, or the young one's alone.

    Each belief is the prior times its own views' likelihoods, so the merge adds their
    natural parameters and subtracts the prior once; if the two codes fail the chi-square
    gate (or only one track has a shape) the current, young track's belief is kept.
    """
    if old.shape_mean.size == 0 or young.shape_mean.size != old.shape_mean.size:
        return young.shape_mean, young.shape_precision
    d2 = float(np.sum((old.shape_mean - young.shape_mean) ** 2
                      / (1.0 / old.shape_precision + 1.0 / young.shape_precision)))
    if d2 > _chi2_quantile(config.shape_gate, old.shape_mean.size):
        return young.shape_mean, young.shape_precision
    precision = old.shape_precision + young.shape_precision - config.shape_prior_precision
    precision = np.maximum(precision, config.shape_prior_precision)
    info = old.shape_precision * old.shape_mean + young.shape_precision * young.shape_mean
    mean = info / precision
    return mean, np.minimum(precision, config.shape_max_precision)


def _look_alike(a: ObjectBelief, b: ObjectBelief, config: BeliefConfig) -> float | None:
    """How well two beliefs agree in category and colour (higher: better), None if not.

    The gates: ratio K sum_c p_a(c) p_b(c) >= ``relocate_min_category_ratio`` and colour
    distance <= ``relocate_colour_gate``.
    """
    ratio = a.category_probs.size * float(a.category_probs @ b.category_probs)
    colour_d = _colour_distance(a.colour, b.colour)
    if ratio < config.relocate_min_category_ratio or colour_d > config.relocate_colour_gate:
        return None
    return float(np.log(ratio)) - colour_d


def _combined(old: ObjectBelief, young: ObjectBelief, config: BeliefConfig,
              **changes) -> ObjectBelief:
    """One belief from two tracks of one object: the old id, both tracks' evidence.

    Each track's category posterior is its own views' likelihoods times the uniform prior,
    so their product is the posterior given all views; ``changes`` override the rest of the
    young track's fields. The young id and its own aliases become aliases of the old: a task
    that named the young track still finds its object.
    """
    fused = old.category_probs * young.category_probs
    shape_mean, shape_precision = _merge_shapes(old, young, config)
    yaw, extent = _blend_box(old.yaw, old.extent, young.yaw, young.extent, 0.5)
    return replace(
        young, id=old.id, category_probs=fused / fused.sum(), extent=extent, yaw=yaw,
        colour=_blend(old.colour, young.colour, 0.5),
        n_detections=old.n_detections + young.n_detections, first_seen=old.first_seen,
        shape_mean=shape_mean, shape_precision=shape_precision,
        distinct=(old.distinct | young.distinct) - {old.id, young.id},
        merged=(old.merged | young.merged | {young.id}) - {old.id}, **changes)


def _relocate(objects: list, config: BeliefConfig) -> list[tuple[str, str]]:
    """Merge tracks that went missing in view into younger look-alike tracks (in place).

    An old track qualifies once repeated misses have brought its existence below
    ``relocate_below``; a partner must have been first seen after the old one was last seen
    (so the two were never seen together), be seen currently, lie within
    ``relocate_max_distance`` of it and look like it (``_look_alike``). The merged track
    keeps the old id and the partner's position.
    Returns [(old id, merged-in id)].
    """
    pairs = []
    olds = [i for i, o in enumerate(objects)
            if o is not None and o.n_misses > 0 and o.existence < config.relocate_below]
    for i in sorted(olds, key=lambda i: objects[i].existence):
        old = objects[i]
        best, best_score = None, -np.inf
        for j, young in enumerate(objects):
            if young is None or j == i or young.n_misses > 0 \
                    or young.first_seen <= old.last_seen \
                    or np.linalg.norm(young.mean - old.mean) > config.relocate_max_distance:
                continue
            score = _look_alike(old, young, config)
            if score is not None and score > best_score:
                best, best_score = j, score
        if best is None:
            continue
        objects[i] = _combined(old, objects[best], config)
        pairs.append((old.id, objects[best].id))
        objects[best] = None
    return pairs


def _record_together(objects: list, seen: list[int], config: BeliefConfig) -> None:
    """Mark the tracks of one frame's detections that lie near each other as distinct."""
    for a in seen:
        near = {objects[b].id for b in seen if b != a and np.linalg.norm(
            objects[a].mean - objects[b].mean) < config.distinct_radius}
        if near - objects[a].distinct:
            objects[a] = replace(objects[a], distinct=objects[a].distinct | near)


def _merge_duplicates(objects: list, config: BeliefConfig) -> list[tuple[str, str]]:
    """Merge pairs of tracks that are one object seen from two sides (in place).

    The centre of a detection is the centre of the surface in view, so views from opposite
    sides of an object can land outside each other's gate and start a second track. Two
    tracks merge when their centres lie within ``merge_fraction`` of the larger extent (or
    ``merge_min_distance``), they look alike (``_look_alike``) and they were never detected
    in the same frame (``distinct``). The merged belief keeps the older id and the position
    of the track seen last: the object is where it was seen (an object put down a few
    centimetres from where it was last seen held must not be believed between the two).
    Returns [(kept id, merged-in id)], nearest pairs first.
    """
    live = [i for i, o in enumerate(objects) if o is not None]
    candidates = []
    for n, a in enumerate(live):
        for b in live[n + 1:]:
            oa, ob = objects[a], objects[b]
            limit = max(config.merge_min_distance,
                        config.merge_fraction * float(max(np.max(oa.extent), np.max(ob.extent))))
            d = float(np.linalg.norm(oa.mean - ob.mean))
            if d < limit and ob.id not in oa.distinct and oa.id not in ob.distinct \
                    and _look_alike(oa, ob, config) is not None:
                candidates.append((d, a, b))
    pairs = []
    for _, a, b in sorted(candidates):
        if objects[a] is None or objects[b] is None or objects[b].id in objects[a].distinct:
            continue
        old, young = (a, b) if objects[a].first_seen <= objects[b].first_seen else (b, a)
        o, y = objects[old], objects[young]
        now = o if o.last_seen > y.last_seen else y
        objects[old] = _combined(
            o, y, config, mean=now.mean, cov=now.cov, existence=max(o.existence, y.existence),
            last_seen=max(o.last_seen, y.last_seen), n_misses=min(o.n_misses, y.n_misses),
            in_view=o.in_view or y.in_view)
        objects[young] = None
        pairs.append((o.id, y.id))
    return pairs


def carried(scene: SceneBeliefs, object_id: str, position, sigma: float = 0.05
            ) -> SceneBeliefs:
    """The scene with the track of an object in the robot's hand moved to ``position``.

    The hand hides what it holds, and a self filter drops it with the robot's body, so no
    frame confirms or refutes the track while it is carried: it follows the hand instead
    (``position``, map frame, with ``sigma`` (m) of uncertainty each way and no misses), and
    :func:`update` leaves it out of view while its id is in ``held``. Once the hand lets go,
    the frames see the object where it was put down, inside the track's gate: it keeps its
    id. ``object_id`` may also be an id merged into a track. Unknown ids: the scene as it is.
    """
    position = np.asarray(position, dtype=float).reshape(-1)
    if position.shape != (3,) or not np.all(np.isfinite(position)) or not sigma > 0:
        raise ValueError(f'carried {object_id!r}: position must be 3 finite values and sigma '
                         f'> 0, got {position.tolist()}, {sigma!r}')
    objects = list(scene.objects)
    for i, obj in enumerate(objects):
        if obj.id == object_id or object_id in obj.merged:
            objects[i] = replace(obj, mean=position, cov=sigma ** 2 * np.eye(3), n_misses=0,
                                 in_view=False)
            return replace(scene, objects=tuple(objects))
    return scene


def update(scene: SceneBeliefs, detections, t_map_cam, sensor: SensorModel, stamp: float,
           config: BeliefConfig, depth=None, held=()) -> tuple[SceneBeliefs, dict]:
    """Advance the scene beliefs to ``stamp`` and fuse one frame's detections.

    ``t_map_cam`` is the pose of the camera that produced ``detections`` (used to decide which
    tracks were expected in view); ``depth`` (optional, H x W metres) marks occluded tracks.
    ``held``: ids of tracks in the robot's hand (see :func:`carried`), neither expected in
    view nor matched to a detection.
    Returns the new beliefs and an info dict: ``matched`` [(id, detection index)], ``born``,
    ``relocated`` [(kept id, merged-in id)], ``merged`` [(kept id, merged-in id)]
    (duplicates, see ``_merge_duplicates``), ``removed`` ids, ``missed`` ids,
    ``shape_restarted`` ids (matched tracks whose shape belief the view restarted, see
    ``fuse_shape``) and ``cost`` (the association cost matrix).
    """
    detections = list(detections)
    k = len(scene.category_names)
    for j, det in enumerate(detections):
        if det.category_likelihood.shape != (k,):
            raise ValueError(f"detection {j}: category_likelihood has shape "
                             f"{det.category_likelihood.shape}, expected ({k},)")
    dt = float(stamp) - scene.stamp
    if dt < 0.0:
        raise ValueError(f"stamp {stamp} is earlier than the beliefs' stamp {scene.stamp}")
    objects = list(scene.objects)
    n, m = len(objects), len(detections)

    # Predict: random-walk growth, faster out of view.
    means = np.array([o.mean for o in objects]).reshape(n, 3)
    pd = (sensor.detection_probability(t_map_cam, means, depth) if n else np.zeros(0))
    in_hand = {i for i, obj in enumerate(objects) if obj.id in held}
    pd[list(in_hand)] = 0.0
    covs = []
    for i, obj in enumerate(objects):
        q = config.q_in_view if pd[i] > 0.0 else config.q_out_of_view
        cov = obj.cov + q * dt * np.eye(3)
        d = np.minimum(np.diag(cov), config.max_variance)
        scale = np.sqrt(d / np.maximum(np.diag(cov), 1e-300))
        covs.append(cov * np.outer(scale, scale))

    # Association cost: negative log-likelihood of the innovation plus category disagreement.
    big = 1e6
    cost = np.full((n, m), big)
    for i in set(range(n)) - in_hand:
        for j, det in enumerate(detections):
            s = covs[i] + det.position_cov
            innov = det.position - means[i]
            d2 = float(innov @ np.linalg.solve(s, innov))
            if d2 > config.gate_chi2:
                continue
            ratio = _category_ratio(objects[i].category_probs, det.category_likelihood)
            cost[i, j] = (0.5 * d2 + 0.5 * np.linalg.slogdet(2.0 * np.pi * s)[1]
                          - config.category_weight * np.log(max(ratio, 1e-12)))
    matched = []
    if n and m:
        rows, cols = linear_sum_assignment(cost)
        matched = [(int(i), int(j)) for i, j in zip(rows, cols) if cost[i, j] < big]
    matched_tracks = {i for i, _ in matched}
    matched_dets = {j for _, j in matched}

    new_objects: list[ObjectBelief | None] = [None] * n
    shape_restarted = []
    for i, j in matched:
        obj, det = objects[i], detections[j]
        s = covs[i] + det.position_cov
        gain = covs[i] @ np.linalg.inv(s)
        mean = means[i] + gain @ (det.position - means[i])
        cov = (np.eye(3) - gain) @ covs[i]
        if det.shape_mean.size and obj.shape_mean.size \
                and det.shape_mean.size != obj.shape_mean.size:
            raise ValueError(f"detection {j}: shape code of {det.shape_mean.size} dimensions, "
                             f"object {obj.id} has {obj.shape_mean.size}")
        shape_mean, shape_precision, restarted = fuse_shape(
            obj.shape_mean, obj.shape_precision, det.shape_mean, det.shape_var, config)
        if restarted:
            shape_restarted.append(obj.id)
        yaw, extent = _blend_box(obj.yaw, obj.extent, det.yaw, det.extent, config.extent_rate)
        new_objects[i] = replace(
            obj, mean=mean, cov=0.5 * (cov + cov.T), shape_mean=shape_mean,
            shape_precision=shape_precision,
            category_probs=_fuse_category(obj.category_probs, det.category_likelihood,
                                          config.category_floor),
            extent=extent, yaw=yaw,
            colour=_blend(obj.colour, det.colour, config.extent_rate),
            existence=_existence_hit(obj.existence, pd[i], config), last_seen=float(stamp),
            n_detections=obj.n_detections + 1, n_misses=0, in_view=True)

    missed = []
    for i, obj in enumerate(objects):
        if i in matched_tracks:
            continue
        if pd[i] > 0.0:
            missed.append(i)
            new_objects[i] = replace(obj, cov=covs[i], existence=_existence_miss(obj.existence,
                                                                                 pd[i]),
                                     n_misses=obj.n_misses + 1, in_view=True)
        else:
            new_objects[i] = replace(obj, cov=covs[i], in_view=False)

    free = [j for j in range(m) if j not in matched_dets]

    born = []
    next_id = scene.next_id
    for j in free:
        det = detections[j]
        uniform = np.full(k, 1.0 / k)
        shape_mean, shape_precision, _ = fuse_shape(np.zeros(0), np.zeros(0), det.shape_mean,
                                                    det.shape_var, config)
        obj = ObjectBelief(
            id=f"obj_{next_id}", category_probs=_fuse_category(uniform, det.category_likelihood,
                                                               0.0),
            mean=det.position.copy(), cov=det.position_cov.copy(), extent=det.extent.copy(),
            colour=det.colour.copy(), existence=config.birth_existence, yaw=det.yaw,
            last_seen=float(stamp), first_seen=float(stamp), shape_mean=shape_mean,
            shape_precision=shape_precision)
        next_id += 1
        new_objects.append(obj)
        born.append(obj.id)

    _record_together(new_objects, sorted(matched_tracks) + list(range(n, len(new_objects))),
                     config)
    relocated = _relocate(new_objects, config) if config.relocate else []
    merged = _merge_duplicates(new_objects, config) if config.merge else []
    new_objects = [o for o in new_objects if o is not None]

    kept = [o for o in new_objects if o.existence >= config.remove_below]
    removed = [o.id for o in new_objects if o.existence < config.remove_below]
    info = {
        "matched": [(objects[i].id, j) for i, j in matched],
        "born": born,
        "relocated": relocated,
        "merged": merged,
        "removed": removed,
        "missed": [objects[i].id for i in missed],
        "shape_restarted": shape_restarted,
        "cost": cost,
    }
    return SceneBeliefs(objects=tuple(kept), category_names=scene.category_names,
                        stamp=float(stamp), next_id=next_id), info


def pose_covariance_6x6(obj: ObjectBelief, orientation_variance: float = np.pi ** 2
                        ) -> np.ndarray:
    """6x6 (x, y, z, roll, pitch, yaw) covariance: the position block and unknown orientation."""
    cov = np.zeros((6, 6))
    cov[:3, :3] = obj.cov
    cov[3:, 3:] = orientation_variance * np.eye(3)
    return cov


def belief_summary(obj: ObjectBelief, category_names) -> dict:
    """Plain-data view of one belief with the fields of the ObjectBelief message."""
    return {
        "id": obj.id,
        "category_names": list(category_names),
        "category_probs": [float(x) for x in obj.category_probs],
        "position": [float(x) for x in obj.mean],
        "orientation_xyzw": [0.0, 0.0, float(np.sin(obj.yaw / 2)), float(np.cos(obj.yaw / 2))],
        "covariance": [float(x) for x in pose_covariance_6x6(obj).reshape(-1)],
        "extent": [float(x) for x in obj.extent],
        "shape_code": [float(x) for x in obj.shape_mean],
        "last_seen": float(obj.last_seen),
        "in_view": bool(obj.in_view),
        "existence": float(obj.existence),
        "merged_ids": sorted(obj.merged),
    }
