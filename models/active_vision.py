"""Active vision: choose where to look next by expected free energy over camera viewpoints.

For a batch of candidate camera poses v (sampled around the object beliefs, around the poses
the goal implies and around the current pose), the expected free energy is

    G(v) = pragmatic(v) + epistemic(v),     lower is better,

- epistemic(v) = -sum_k r_k pD_k(v) [w_pos IG_pos,k + w_cat IG_cat,k]: minus the expected
  information gain about each object's position (Gaussian belief P_k, measurement noise R_k(v)
  from the sensor model: IG = 1/2 log det(I + P_k R_k^-1), with R_k inflated by the position
  resolution the task needs so that sub-resolution detail earns nothing) and category (mutual
  information between the category and the detector's label, whose confusion depends on range
  and angle), weighted by the probability r_k pD_k(v) that the object exists (r_k) and is
  detected from v (pD_k);
- pragmatic(v) = -log of the preference for the outcome of looking from v:
  for a ``ViewGoal`` (a goal image: an object, or any object of a category, seen from a camera
  pose ``t_obj_cam`` relative to it) -log sum_k w_k exp(-c_k(v)), w_k the probability that
  object k is the goal object and c_k the expected negative log preference (Gaussian in the
  camera position around the goal-implied position, with the object's position uncertainty
  taken in expectation, and a von Mises-like cost on the rotation angle to the goal
  orientation); for a ``CategoryGoal`` ("find an object of category X") -log P(an object of
  category X is seen from v).

A third, optional epistemic term counts what is not yet known at all: ``Coverage`` holds cells
of the workspace surface with the entropy of "is there an undiscovered object here"; a view
gains the entropy of the cells it would see (``info_gain_coverage``, weight ``w_coverage``),
so an agent with no object beliefs yet still has a reason to look around.

A goal image (``GoalImage``: RGB-D + intrinsics, no pose) becomes a ``ViewGoal`` in two steps,
both from the image and the agent's own beliefs, never from the true goal pose:
``interpret_goal_image`` finds the support plane (gravity), the object nearest the image
centre (the target) and the point cloud of the goal view in a gravity-aligned frame;
``localise_goal`` then explains that cloud with the agent's beliefs: for each believed object
that could be the target, and each heading about the vertical, it scores how many goal points
land on surfaces the agent has seen (``SurfaceMap``, with matching colour) minus how many its
observations contradict (another colour, space seen empty), and returns the best hypothesis
as a ``ViewGoal`` relative to that object (or None while nothing explains the goal view well
enough). ``view_agreement`` compares the frame seen at a hypothesised goal viewpoint with the
goal image, so that a wrong hypothesis can be excluded and the next one tried.

``step`` samples candidates, scores them, and moves the camera a bounded step (translation and
rotation) toward the argmin; repeated, this converges to the goal viewpoint. Reachability
(wrist camera via the arm, head camera via the base) enters through ``CandidateConfig``'s
position bounds or a ``feasible`` projection passed to ``step`` (``reach_shell`` for an arm,
``fixed_height_camera`` for a camera carried by the base).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from embodied_aif.models.scene_beliefs import SceneBeliefs, SensorModel, categorical_entropy
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    backproject,
    fit_plane_ransac,
    segment_frame,
    validate_transform,
)

__all__ = [
    "CandidateConfig",
    "CategoryGoal",
    "Coverage",
    "EfeConfig",
    "GoalImage",
    "GoalView",
    "LocaliseConfig",
    "SurfaceMap",
    "ViewGoal",
    "interpret_goal_image",
    "localise_goal",
    "view_agreement",
    "bounded_step",
    "fixed_height_camera",
    "reach_shell",
    "evaluate_viewpoints",
    "goal_poses",
    "pose_error",
    "sample_viewpoints",
    "step",
]


@dataclass(frozen=True)
class ViewGoal:
    """Goal image: see an object from camera pose ``t_obj_cam`` relative to the object.

    The object frame has its origin at the object's centre and map-aligned axes (the object
    model supplies orientation later). The goal object is ``object_id`` when given, otherwise
    any object, weighted by the probability that its category is ``category`` (all equally when
    ``category`` is None).
    """

    t_obj_cam: np.ndarray
    category: int | None = None
    object_id: str | None = None
    sigma_position: float = 0.05
    kappa_rotation: float = 4.0

    def __post_init__(self):
        object.__setattr__(self, "t_obj_cam", validate_transform(self.t_obj_cam))
        if self.sigma_position <= 0.0 or self.kappa_rotation < 0.0:
            raise ValueError(f"sigma_position={self.sigma_position} must be > 0 and "
                             f"kappa_rotation={self.kappa_rotation} >= 0")


@dataclass(frozen=True)
class CategoryGoal:
    """Goal: see some object of category ``category`` (index into the scene's categories)."""

    category: int
    floor: float = 1e-3  # keeps -log P finite where no such object can be seen

    def __post_init__(self):
        if self.category < 0 or not 0.0 < self.floor < 1.0:
            raise ValueError(f"category={self.category} must be >= 0 and floor={self.floor} "
                             "in (0, 1)")


@dataclass(frozen=True)
class EfeConfig:
    """Weights and switches of the EFE terms."""

    w_position: float = 1.0
    w_category: float = 1.0
    w_coverage: float = 1.0
    position_resolution: float = 0.01  # m: position detail finer than this is worth nothing
    use_epistemic: bool = True
    use_pragmatic: bool = True
    min_existence: float = 0.0  # objects below this existence are ignored


@dataclass(frozen=True)
class CandidateConfig:
    """How candidate viewpoints are sampled, and the bounded step."""

    n_around_objects: int = 1536
    n_around_goal: int = 256
    n_local: int = 256
    n_explore: int = 0  # look-at views of random workspace points (for coverage)
    distance_range: tuple[float, float] = (0.25, 0.8)
    elevation_range: tuple[float, float] = (0.3, 1.3)  # rad above the horizontal
    goal_jitter_m: float = 0.02
    goal_jitter_rad: float = 0.05
    local_jitter_m: float = 0.05
    local_jitter_rad: float = 0.15
    workspace_centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    workspace_radius: float = 0.5
    position_min: tuple[float, float, float] = (-np.inf, -np.inf, 0.05)
    position_max: tuple[float, float, float] = (np.inf, np.inf, np.inf)
    max_step_m: float = 0.05
    max_step_rad: float = 0.15

    def __post_init__(self):
        if min(self.n_around_objects, self.n_around_goal, self.n_local, self.n_explore) < 0:
            raise ValueError("candidate counts must be >= 0")
        if not 0.0 < self.distance_range[0] <= self.distance_range[1]:
            raise ValueError(f"distance_range={self.distance_range} must be 0 < lo <= hi")
        if self.max_step_m <= 0.0 or self.max_step_rad <= 0.0:
            raise ValueError(f"max_step_m={self.max_step_m}, max_step_rad={self.max_step_rad} "
                             "must be > 0")


def pose_error(a, b) -> tuple[float, float]:
    """Distance (m) between the positions and rotation angle (rad) between two poses."""
    a, b = validate_transform(a), validate_transform(b)
    dist = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    return dist, _rotation_angle(a[None, :3, :3], b[:3, :3])[0]


def _rotation_angle(rs: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Geodesic angles between rotations rs (V, 3, 3) and r (3, 3)."""
    cos = (np.einsum("vij,ij->v", rs, r) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))


def bounded_step(current, target, max_translation: float, max_rotation: float) -> np.ndarray:
    """Move from ``current`` toward ``target`` by at most the given translation and rotation."""
    cur, tgt = validate_transform(current), validate_transform(target)
    out = np.eye(4)
    delta = tgt[:3, 3] - cur[:3, 3]
    dist = np.linalg.norm(delta)
    out[:3, 3] = cur[:3, 3] + (delta if dist <= max_translation else delta * max_translation
                               / dist)
    rotvec = Rotation.from_matrix(cur[:3, :3].T @ tgt[:3, :3]).as_rotvec()
    angle = np.linalg.norm(rotvec)
    if angle > max_rotation:
        rotvec *= max_rotation / angle
    out[:3, :3] = cur[:3, :3] @ Rotation.from_rotvec(rotvec).as_matrix()
    return out


def fixed_height_camera(height: float, pitch: float) -> Callable[[np.ndarray], np.ndarray]:
    """Feasibility map for a camera carried by a mobile base (e.g. the head camera).

    The camera keeps the candidate's x, y and the heading of its optical axis, at a fixed
    ``height`` and a fixed downward ``pitch`` (rad), without roll.
    """
    if not -np.pi / 2 < pitch < np.pi / 2:
        raise ValueError(f"pitch={pitch} must lie in (-pi/2, pi/2)")

    def project(views: np.ndarray) -> np.ndarray:
        views = np.asarray(views, dtype=float)
        axis = views[:, :3, 2]
        yaw = np.arctan2(axis[:, 1], axis[:, 0])
        out = np.tile(np.eye(4), (views.shape[0], 1, 1))
        z = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw),
                      np.full_like(yaw, -np.sin(pitch))], axis=1)
        x = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], axis=1)
        out[:, :3, 0], out[:, :3, 1], out[:, :3, 2] = x, np.cross(z, x), z
        out[:, :2, 3] = views[:, :2, 3]
        out[:, 2, 3] = height
        return out

    return project


def reach_shell(centre, r_min: float, r_max: float) -> Callable[[np.ndarray], np.ndarray]:
    """Feasibility map for an arm-mounted camera: positions pulled into a spherical shell.

    The shell ``r_min <= |p - centre| <= r_max`` around the shoulder approximates the arm's
    reachable workspace; orientations are kept.
    """
    centre = np.asarray(centre, dtype=float)
    if centre.shape != (3,) or not 0.0 <= r_min < r_max:
        raise ValueError(f"need a 3-d centre and 0 <= r_min < r_max, got {centre}, {r_min}, "
                         f"{r_max}")

    def project(views: np.ndarray) -> np.ndarray:
        out = np.array(views, dtype=float)
        rel = out[:, :3, 3] - centre
        dist = np.linalg.norm(rel, axis=1, keepdims=True)
        scale = np.clip(dist, max(r_min, 1e-9), r_max) / np.maximum(dist, 1e-9)
        out[:, :3, 3] = centre + rel * scale
        return out

    return project


def _goal_weights(scene: SceneBeliefs, goal: ViewGoal, config: EfeConfig) -> np.ndarray:
    """Probability w_k that object k is the goal object (may sum to < 1: maybe not seen yet)."""
    w = np.zeros(len(scene.objects))
    for k, obj in enumerate(scene.objects):
        if obj.existence < config.min_existence:
            continue
        if goal.object_id is not None:
            w[k] = float(obj.id == goal.object_id)
        elif goal.category is not None:
            w[k] = obj.existence * obj.category_probs[goal.category]
        else:
            w[k] = obj.existence
    total = w.sum()
    return w / total if total > 0.0 else w


def goal_poses(scene: SceneBeliefs, goal: ViewGoal) -> np.ndarray:
    """Camera poses (K, 4, 4) the goal implies for each object (its mean as the origin)."""
    out = np.tile(goal.t_obj_cam, (len(scene.objects), 1, 1))
    for k, obj in enumerate(scene.objects):
        out[k, :3, 3] += obj.mean
    return out


def _information_gain(scene: SceneBeliefs, views: np.ndarray, sensor: SensorModel,
                      config: EfeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pD (V, K), position IG (V, K), category IG (V, K))`` in nats."""
    v, k = views.shape[0], len(scene.objects)
    if k == 0:
        z = np.zeros((v, 0))
        return z, z, z
    means = np.array([o.mean for o in scene.objects])
    covs = np.array([o.cov for o in scene.objects])
    probs = np.array([o.category_probs for o in scene.objects])           # (K, C)
    alive = np.array([o.existence >= config.min_existence for o in scene.objects])
    pd = sensor.detection_probability(views, means) * alive[None]
    r = sensor.position_covariance(views, means)                           # (V, K, 3, 3)
    # IG_pos = 1/2 log det(R' + P) - 1/2 log det(R'), R' = R + resolution^2 I
    r = r + config.position_resolution ** 2 * np.eye(3)
    ig_pos = 0.5 * (np.linalg.slogdet(r + covs[None])[1] - np.linalg.slogdet(r)[1])
    n_cat = probs.shape[1]
    acc = sensor.class_accuracy(views, means, n_cat)                       # (V, K)
    conf = SensorModel.confusion(acc, n_cat)                               # (V, K, C, Y)
    p_y = np.einsum("kc,vkcy->vky", probs, conf)
    h_y = categorical_entropy(p_y)
    h_y_given_c = np.einsum("kc,vkc->vk", probs, categorical_entropy(conf))
    ig_cat = np.maximum(h_y - h_y_given_c, 0.0)
    return pd, np.maximum(ig_pos, 0.0), ig_cat


def _pragmatic(scene: SceneBeliefs, views: np.ndarray, goal, pd: np.ndarray,
               config: EfeConfig) -> np.ndarray:
    v = views.shape[0]
    if isinstance(goal, CategoryGoal):
        if goal.category >= len(scene.category_names):
            raise ValueError(f"goal category {goal.category} out of range for "
                             f"{len(scene.category_names)} categories")
        if not scene.objects:
            return np.full(v, -np.log(goal.floor))
        p_cat = np.array([o.existence * o.category_probs[goal.category]
                          for o in scene.objects])
        p_seen = 1.0 - np.prod(1.0 - pd * p_cat[None], axis=1)
        return -np.log(goal.floor + (1.0 - goal.floor) * p_seen)
    if not isinstance(goal, ViewGoal):
        raise ValueError(f"goal must be ViewGoal or CategoryGoal, got {type(goal).__name__}")
    if goal.category is not None and goal.category >= len(scene.category_names):
        raise ValueError(f"goal category {goal.category} out of range for "
                         f"{len(scene.category_names)} categories")
    w = _goal_weights(scene, goal, config)
    s2 = goal.sigma_position ** 2
    const = 1.5 * np.log(2.0 * np.pi * s2)
    if not np.any(w > 0.0):
        # No candidate goal object yet: the goal is equally out of reach from every view (the
        # cost of a view 3 sigma and 180 degrees off); the epistemic term alone decides.
        return np.full(v, const + 2.0 * goal.kappa_rotation + 0.5 * 9.0)
    targets = goal_poses(scene, goal)
    traces = np.array([np.trace(o.cov) for o in scene.objects])
    rot_cost = goal.kappa_rotation * (1.0 - np.cos(_rotation_angle(views[:, :3, :3],
                                                                   goal.t_obj_cam[:3, :3])))
    d2 = np.sum((views[:, None, :3, 3] - targets[None, :, :3, 3]) ** 2, axis=-1)  # (V, K)
    cost = const + 0.5 * (d2 + traces[None]) / s2 + rot_cost[:, None]
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    a = logw[None] - cost
    top = np.max(a, axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.sum(np.exp(a - top), axis=1)))


def evaluate_viewpoints(scene: SceneBeliefs, views, sensor: SensorModel, goal,
                        config: EfeConfig, coverage: Coverage | None = None
                        ) -> dict[str, np.ndarray]:
    """Expected free energy of each candidate camera pose (V, 4, 4); lower is better.

    Returns arrays (V,): ``efe`` = ``pragmatic`` + ``epistemic``, ``epistemic`` =
    -(w_position ``info_gain_position`` + w_category ``info_gain_category`` + w_coverage
    ``info_gain_coverage``), the object info gains summed over objects, each weighted by the
    probability that it exists and is detected, the coverage gain summed over the unexplored
    cells of ``coverage`` (zero without one). ``goal`` may be None (pure exploration) or a
    ``ViewGoal`` / ``CategoryGoal``.
    """
    views = np.asarray(views, dtype=float)
    if views.ndim != 3 or views.shape[1:] != (4, 4):
        raise ValueError(f"views must be (V, 4, 4), got shape {views.shape}")
    pd, ig_pos, ig_cat = _information_gain(scene, views, sensor, config)
    existence = np.array([o.existence for o in scene.objects]).reshape(-1)
    seen = pd * existence[None]  # probability that object k exists and is detected from v
    info_pos = np.sum(seen * ig_pos, axis=1)
    info_cat = np.sum(seen * ig_cat, axis=1)
    info_cov = (coverage.information_gain(views, sensor) if coverage is not None
                else np.zeros(views.shape[0]))
    epistemic = -(config.w_position * info_pos + config.w_category * info_cat
                  + config.w_coverage * info_cov)
    if not config.use_epistemic:
        epistemic = np.zeros_like(epistemic)
    if goal is None or not config.use_pragmatic:
        pragmatic = np.zeros(views.shape[0])
    else:
        pragmatic = _pragmatic(scene, views, goal, pd, config)
    return {"efe": pragmatic + epistemic, "pragmatic": pragmatic, "epistemic": epistemic,
            "info_gain_position": info_pos, "info_gain_category": info_cat,
            "info_gain_coverage": info_cov}


def _look_at_batch(eyes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Vectorised ``look_at`` (z up) for (V, 3) eyes and targets."""
    z = targets - eyes
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    x = np.cross(z, [0.0, 0.0, 1.0])
    vertical = np.linalg.norm(x, axis=1) < 1e-6
    x[vertical] = np.cross(z[vertical], [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = np.tile(np.eye(4), (eyes.shape[0], 1, 1))
    out[:, :3, 0], out[:, :3, 1], out[:, :3, 2], out[:, :3, 3] = x, np.cross(z, x), z, eyes
    return out


def _random_rotations(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    return Rotation.from_rotvec(rng.normal(0.0, scale, size=(n, 3))).as_matrix()


def sample_viewpoints(scene: SceneBeliefs, current, goal, rng: np.random.Generator,
                      config: CandidateConfig) -> np.ndarray:
    """Candidate camera poses (V, 4, 4): the current pose first, then samples.

    Samples are look-at views on shells around each believed object (or around the workspace
    when there are none), jittered goal-implied poses (the exact ones included) for every
    object when ``goal`` is a ``ViewGoal``, look-at views of random workspace points
    (``n_explore``) and jittered copies of the current pose; positions are clipped to the
    configured bounds.
    """
    current = validate_transform(current)
    views = [current[None]]
    centres = (np.array([o.mean for o in scene.objects]) if scene.objects
               else np.asarray(config.workspace_centre, dtype=float)[None])
    n = config.n_around_objects
    if n:
        which = rng.integers(0, centres.shape[0], size=n)
        aim = centres[which]
        if not scene.objects:
            aim = aim + rng.uniform(-config.workspace_radius, config.workspace_radius,
                                    size=(n, 3)) * [1.0, 1.0, 0.0]
        dist = rng.uniform(*config.distance_range, size=n)
        az = rng.uniform(0.0, 2.0 * np.pi, size=n)
        el = rng.uniform(*config.elevation_range, size=n)
        eyes = aim + dist[:, None] * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                               np.sin(el)], axis=1)
        eyes = np.clip(eyes, config.position_min, config.position_max)
        views.append(_look_at_batch(eyes, aim))
    if isinstance(goal, ViewGoal) and scene.objects and config.n_around_goal:
        exact = goal_poses(scene, goal)
        views.append(exact)
        pick = exact[rng.integers(0, exact.shape[0], size=config.n_around_goal)]
        jit = pick.copy()
        jit[:, :3, 3] += rng.normal(0.0, config.goal_jitter_m, size=(config.n_around_goal, 3))
        jit[:, :3, :3] = pick[:, :3, :3] @ _random_rotations(rng, config.n_around_goal,
                                                             config.goal_jitter_rad)
        views.append(jit)
    if config.n_explore:
        n = config.n_explore
        aim = (np.asarray(config.workspace_centre, dtype=float)
               + rng.uniform(-config.workspace_radius, config.workspace_radius, size=(n, 3))
               * [1.0, 1.0, 0.0])
        dist = rng.uniform(*config.distance_range, size=n)
        az = rng.uniform(0.0, 2.0 * np.pi, size=n)
        el = rng.uniform(*config.elevation_range, size=n)
        eyes = aim + dist[:, None] * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                               np.sin(el)], axis=1)
        views.append(_look_at_batch(np.clip(eyes, config.position_min, config.position_max),
                                    aim))
    if config.n_local:
        loc = np.tile(current, (config.n_local, 1, 1))
        loc[:, :3, 3] += rng.normal(0.0, config.local_jitter_m, size=(config.n_local, 3))
        loc[:, :3, :3] = current[:3, :3] @ _random_rotations(rng, config.n_local,
                                                             config.local_jitter_rad)
        views.append(loc)
    out = np.concatenate(views, axis=0)
    out[:, :3, 3] = np.clip(out[:, :3, 3], config.position_min, config.position_max)
    return out


def step(scene: SceneBeliefs, current, sensor: SensorModel, goal, rng: np.random.Generator,
         efe_config: EfeConfig, candidate_config: CandidateConfig,
         feasible: Callable[[np.ndarray], np.ndarray] | None = None,
         coverage: Coverage | None = None) -> tuple[np.ndarray, dict]:
    """One active-vision step: sample candidates, score by EFE, move a bounded step to argmin.

    ``feasible`` (optional) maps candidate poses (V, 4, 4) to reachable ones (e.g. a head
    camera constrained by the base, a wrist camera by the arm's workspace). Returns the next
    camera pose and an info dict: ``best`` (the chosen candidate pose), ``terms`` (the EFE terms
    of the chosen candidate, floats) and ``n_candidates``. ``coverage`` adds the exploration
    term (see ``evaluate_viewpoints``).
    """
    views = sample_viewpoints(scene, current, goal, rng, candidate_config)
    if feasible is not None:
        views = np.asarray(feasible(views), dtype=float)
        if views.ndim != 3 or views.shape[1:] != (4, 4) or views.shape[0] == 0:
            raise ValueError(f"feasible() must return (V, 4, 4) poses, got {views.shape}")
    terms = evaluate_viewpoints(scene, views, sensor, goal, efe_config, coverage)
    best = int(np.argmin(terms["efe"]))
    nxt = bounded_step(current, views[best], candidate_config.max_step_m,
                       candidate_config.max_step_rad)
    return nxt, {"best": views[best], "terms": {k: float(v[best]) for k, v in terms.items()},
                 "n_candidates": int(views.shape[0])}


# ---------------------------------------------------------------- exploration (coverage)
def _bernoulli_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1.0 - 1e-12)
    return -(p * np.log(p) + (1.0 - p) * np.log(1.0 - p))


@dataclass(frozen=True)
class Coverage:
    """Cells of the workspace surface and the entropy (nats) left about each.

    ``entropy[c]`` is the uncertainty about whether an undiscovered object sits at cell c:
    the Bernoulli entropy of the prior while the cell has not been seen, 0 once it has (the
    detector then tells whether something is there, and the object beliefs take over).
    """

    points: np.ndarray   # (C, 3) cell centres in the map frame
    entropy: np.ndarray  # (C,)

    def __post_init__(self):
        pts = np.asarray(self.points, dtype=float).reshape(-1, 3)
        ent = np.asarray(self.entropy, dtype=float).reshape(-1)
        if pts.shape[0] != ent.shape[0] or np.any(ent < 0.0) or not np.all(np.isfinite(pts)):
            raise ValueError(f"coverage: points {pts.shape} and entropy {ent.shape} must match, "
                             "entropy >= 0, points finite")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "entropy", ent)

    @classmethod
    def grid(cls, centre, half_size, height: float, cell: float = 0.05,
             prior: float = 0.1) -> Coverage:
        """Cells of ``cell`` metres over a rectangle ``centre`` +- ``half_size`` at ``height``."""
        if cell <= 0.0 or not 0.0 < prior < 1.0 or min(half_size) <= 0.0:
            raise ValueError(f"need cell > 0, 0 < prior < 1, half_size > 0; got {cell}, "
                             f"{prior}, {half_size}")
        xs = np.arange(-half_size[0] + cell / 2, half_size[0], cell) + centre[0]
        ys = np.arange(-half_size[1] + cell / 2, half_size[1], cell) + centre[1]
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, float(height))], axis=1)
        return cls(pts, np.full(pts.shape[0], float(_bernoulli_entropy(prior))))

    @property
    def remaining(self) -> float:
        """Total entropy left (nats)."""
        return float(self.entropy.sum())

    def information_gain(self, views, sensor: SensorModel) -> np.ndarray:
        """Expected entropy removed by looking from each view (V,): sum_c pD(v, c) H_c."""
        views = np.asarray(views, dtype=float)
        live = self.entropy > 0.0
        if not np.any(live):
            return np.zeros(views.shape[0])
        pd = sensor.detection_probability(views, self.points[live])
        return pd @ self.entropy[live]

    def observe(self, t_map_cam, sensor: SensorModel, depth=None) -> Coverage:
        """Cells visible from this camera pose (not occluded in ``depth``) become known."""
        pd = sensor.detection_probability(t_map_cam, self.points, depth)
        return Coverage(self.points, np.where(pd > 0.0, 0.0, self.entropy))


# ---------------------------------------------------------------- surface map
@dataclass(frozen=True)
class SurfaceMap:
    """A dense voxel grid of the surfaces seen so far, with their mean colour.

    The box ``origin`` + [0, shape * voxel) of the map frame is covered; points outside are
    ignored. ``colour`` holds the mean RGB in [0, 1] of each occupied voxel, NaN elsewhere;
    ``free`` counts how often a ray passed through a voxel to a surface behind it.
    """

    origin: np.ndarray
    voxel: float
    colour: np.ndarray  # (X, Y, Z, 3)
    count: np.ndarray   # (X, Y, Z)
    free: np.ndarray    # (X, Y, Z)

    @classmethod
    def empty(cls, box_min, box_max, voxel: float = 0.02) -> SurfaceMap:
        """An empty map of the box [box_min, box_max]."""
        lo, hi = np.asarray(box_min, dtype=float), np.asarray(box_max, dtype=float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo) or voxel <= 0.0:
            raise ValueError(f"need box_min < box_max (3-d) and voxel > 0, got {lo}, {hi}, "
                             f"{voxel}")
        shape = tuple(int(n) for n in np.ceil((hi - lo) / voxel))
        if np.prod(shape) > 2e7:
            raise ValueError(f"surface map of {shape} voxels is too large")
        return cls(lo, float(voxel), np.full(shape + (3,), np.nan, dtype=np.float32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32))

    def _index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.floor((np.asarray(points, dtype=float) - self.origin) / self.voxel)
        inside = np.all((idx >= 0) & (idx < self.count.shape), axis=-1)
        return np.where(inside[..., None], idx, 0).astype(np.int64), inside

    def add(self, points, colours, eye=None,
            free_fractions=(0.3, 0.5, 0.65, 0.8, 0.9)) -> SurfaceMap:
        """Fuse map-frame points (N, 3) with colours (N, 3) in [0, 1] (in place; returns self).

        With the camera position ``eye``, the voxels at ``free_fractions`` of the way from the
        eye to each point are counted as seen free (the ray passed through them).
        """
        if eye is not None:
            pts = np.asarray(points, dtype=float).reshape(-1, 3)
            eye = np.asarray(eye, dtype=float)
            along = eye + (pts[None] - eye) * np.asarray(free_fractions)[:, None, None]
            fidx, finside = self._index(along.reshape(-1, 3))
            fidx = fidx[finside]
            if fidx.size:
                flat = np.unique(np.ravel_multi_index(fidx.T, self.free.shape))
                self.free.reshape(-1)[flat] += 1
        idx, inside = self._index(points)
        idx, col = idx[inside], np.asarray(colours, dtype=float).reshape(-1, 3)[inside]
        if idx.size == 0:
            return self
        flat = np.ravel_multi_index(idx.T, self.count.shape)
        uniq, inv = np.unique(flat, return_inverse=True)
        n_new = np.bincount(inv).astype(np.float64)
        mean_new = np.stack([np.bincount(inv, weights=col[:, k]) for k in range(3)], 1) \
            / n_new[:, None]
        count = self.count.reshape(-1)
        colour = self.colour.reshape(-1, 3)
        n_old = count[uniq].astype(np.float64)
        old = np.nan_to_num(colour[uniq].astype(np.float64))
        colour[uniq] = ((old * n_old[:, None] + mean_new * n_new[:, None])
                        / (n_old + n_new)[:, None]).astype(np.float32)
        count[uniq] = np.minimum(n_old + n_new, 1e6).astype(np.int32)
        return self

    def lookup(self, points) -> np.ndarray:
        """Colours (..., 3) of the voxels holding ``points`` (NaN: unseen or outside)."""
        idx, inside = self._index(points)
        out = self.colour[idx[..., 0], idx[..., 1], idx[..., 2]]
        return np.where(inside[..., None], out, np.nan)

    def is_free(self, points) -> np.ndarray:
        """Whether each point's voxel was seen free more often than occupied (bool (...))."""
        idx, inside = self._index(points)
        i, j, k = idx[..., 0], idx[..., 1], idx[..., 2]
        return inside & (self.free[i, j, k] > 2 * self.count[i, j, k])

    @property
    def n_occupied(self) -> int:
        """Number of voxels seen occupied."""
        return int(np.count_nonzero(self.count))


# ---------------------------------------------------------------- goal images
@dataclass(frozen=True)
class GoalImage:
    """A goal view: registered RGB (H, W, 3) uint8 and depth (H, W) metres, and intrinsics."""

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: CameraIntrinsics

    def __post_init__(self):
        rgb, depth = np.asarray(self.rgb), np.asarray(self.depth, dtype=float)
        if depth.ndim != 2 or depth.size == 0:
            raise ValueError(f"goal depth must be a non-empty HxW image, got {depth.shape}")
        if rgb.shape != depth.shape + (3,):
            raise ValueError(f"goal rgb {rgb.shape} does not match depth {depth.shape} + (3,)")
        if depth.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"goal depth {depth.shape} does not match the intrinsics "
                             f"{self.intrinsics.height}x{self.intrinsics.width}")
        object.__setattr__(self, "rgb", rgb)
        object.__setattr__(self, "depth", depth)


@dataclass(frozen=True)
class GoalView:
    """What the agent read from a goal image, in a gravity-aligned goal frame G.

    G has its origin at the goal camera, z up (the support plane's normal), x the optical
    axis's heading. ``t_g_cam`` is the goal camera in G; ``target`` the target object's centre
    in G, ``target_colour`` its mean colour; ``points``/``colours`` a subsample of the goal
    view's points in G; ``support_height`` the support plane's z in G (negative: below).
    """

    t_g_cam: np.ndarray
    target: np.ndarray
    target_colour: np.ndarray
    target_extent: np.ndarray
    points: np.ndarray
    colours: np.ndarray
    support_height: float


def interpret_goal_image(goal: GoalImage, config: SegmentationConfig,
                         rng: np.random.Generator, max_points: int = 600) -> GoalView:
    """Read a goal image: gravity from the support plane, the target object, the view's cloud.

    The largest plane of the goal view is taken as the support (its normal, turned toward the
    camera, is "up"); the target is the segmented object whose pixels are nearest the image
    centre. Raises ValueError when the image has no usable depth, no plane or no object.
    """
    intr = goal.intrinsics
    cam_pts, pix = backproject(goal.depth, intr, np.eye(4), config.min_depth, config.max_depth)
    if pix.size < max(50, config.min_valid_fraction * goal.depth.size):
        raise ValueError(f"goal image: only {pix.size} pixels with valid depth")
    model, inliers = fit_plane_ransac(cam_pts, config.plane_distance,
                                      max(config.plane_iterations, 128), rng)
    if inliers.sum() < 0.1 * pix.size:
        raise ValueError("goal image: no support plane found (cannot tell which way is up)")
    normal, offset = model[:3], model[3]
    if offset < 0.0:  # the camera (origin) lies on the positive side: the normal points up
        normal, offset = -normal, -offset
    heading = np.array([0.0, 0.0, 1.0]) - normal[2] * normal
    if np.linalg.norm(heading) < 1e-3:  # looking straight down: heading from the image's up
        heading = np.array([0.0, -1.0, 0.0]) - normal[1] * normal
    x = heading / np.linalg.norm(heading)
    y = np.cross(normal, x)
    r_cam_g = np.stack([x, y, normal], axis=1)  # columns: G axes in camera coordinates
    t_g_cam = np.eye(4)
    t_g_cam[:3, :3] = r_cam_g.T
    seg = segment_frame(goal.depth, goal.rgb, intr, t_g_cam, config, rng)
    if not seg.clusters:
        raise ValueError("goal image: no object segmented")
    centre = np.array([intr.cx, intr.cy])

    def pixel_distance(c):
        uv = np.stack([c.pixel_indices % intr.width, c.pixel_indices // intr.width], axis=1)
        return float(np.linalg.norm(uv.mean(axis=0) - centre))

    target = min(seg.clusters, key=pixel_distance)
    pts_g = cam_pts @ r_cam_g
    colours = goal.rgb.reshape(-1, 3)[pix].astype(float) / 255.0
    if pts_g.shape[0] > max_points:  # objects are what tells views apart: keep them first
        on_object = np.flatnonzero(seg.labels.reshape(-1)[pix] >= 0)
        rest = np.setdiff1d(np.arange(pts_g.shape[0]), on_object)
        if on_object.size > max_points // 2:
            on_object = rng.choice(on_object, size=max_points // 2, replace=False)
        rest = rng.choice(rest, size=min(rest.size, max_points - on_object.size),
                          replace=False)
        keep = np.concatenate([on_object, rest])
        pts_g, colours = pts_g[keep], colours[keep]
    return GoalView(t_g_cam=t_g_cam, target=target.center.copy(),
                    target_colour=target.colour.copy(), target_extent=target.extent.copy(),
                    points=pts_g, colours=colours, support_height=-float(offset))


@dataclass(frozen=True)
class LocaliseConfig:
    """Parameters of ``localise_goal``."""

    n_headings: int = 72
    n_refine: int = 3            # best headings per object refined by small shifts
    shift_m: float = 0.03        # refinement shifts in [-shift_m, shift_m], x and y
    shift_steps: int = 5
    colour_gate: float = 0.2     # a goal point matches a voxel of colour within this
    target_colour_gate: float = 0.3  # objects of a more different colour are not the target
    # the best hypothesis must explain this fraction of goal points to be pursued: low, since
    # a view from the hypothesised viewpoint then confirms or rejects it
    min_match: float = 0.15
    exclude_rad: float = 0.35    # headings this close to an excluded (rejected) one are skipped
    sigma_position: float = 0.05
    kappa_rotation: float = 4.0

    def __post_init__(self):
        if self.n_headings < 1 or self.n_refine < 1 or self.shift_steps < 1:
            raise ValueError("n_headings, n_refine and shift_steps must be >= 1")
        if not 0.0 <= self.min_match <= 1.0:
            raise ValueError(f"min_match={self.min_match} must lie in [0, 1]")


def _yaw_matrices(yaws: np.ndarray) -> np.ndarray:
    c, s = np.cos(yaws), np.sin(yaws)
    r = np.zeros((yaws.size, 3, 3))
    r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1], r[:, 2, 2] = c, -s, s, c, 1.0
    return r


def _match_fraction(view: GoalView, smap: SurfaceMap, rots: np.ndarray, shifts: np.ndarray,
                    gate: float) -> np.ndarray:
    """Score per hypothesis (H,): goal points explained minus contradicted by the map.

    A point is explained when it lands on a seen surface of its colour (within ``gate``),
    contradicted when it lands on a seen surface of a clearly different colour (beyond 2.5
    ``gate``: texture is not a contradiction) or in space seen empty; points landing where
    the agent has not looked are neutral. The score is a fraction of the goal points.
    """
    pts = np.einsum("hij,nj->hni", rots, view.points) + shifts[:, None, :]
    seen = smap.lookup(pts)                                         # (H, N, 3)
    with np.errstate(invalid="ignore"):
        dist = np.linalg.norm(seen - view.colours[None], axis=-1)
    ok = dist < gate
    wrong = (dist >= 2.5 * gate) | smap.is_free(pts)   # NaN (unseen) compares False
    return (ok.astype(float) - wrong).mean(axis=1)


def localise_goal(view: GoalView, scene: SceneBeliefs, smap: SurfaceMap, support_z: float,
                  config: LocaliseConfig, exclude=()) -> tuple[ViewGoal | None, dict]:
    """Explain a goal view with the beliefs: which object, seen from which heading.

    For every believed object whose colour is within ``target_colour_gate`` of the goal's
    target, the goal cloud is placed with the target's centre on the object's mean (the
    support plane at ``support_z``, the agent's own estimate of its height) at
    ``n_headings`` headings; the best headings are refined by small horizontal shifts. The
    score of a hypothesis is the share of goal points that land on voxels of ``smap`` seen
    with their colour, minus the share that land on seen voxels of another colour or where
    the agent has seen empty space.
    Hypotheses within ``exclude_rad`` of an ``exclude`` entry (object id,
    heading), e.g. ones already visited and found not to look like the goal, are skipped.
    Returns the best hypothesis as a ``ViewGoal`` (the goal camera relative
    to that object, ``object_id`` set), or None when no hypothesis reaches ``min_match``, and
    an info dict: ``match`` (best fraction), ``object_id``, ``heading``, ``t_map_goal`` and
    ``n_hypotheses``.
    """
    info = {"match": 0.0, "object_id": None, "heading": None, "t_map_goal": None,
            "n_hypotheses": 0}
    yaws = np.linspace(-np.pi, np.pi, config.n_headings, endpoint=False)
    rots = _yaw_matrices(yaws)
    steps = np.linspace(-config.shift_m, config.shift_m, config.shift_steps)
    grid = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
    best = None
    dz = support_z - view.support_height
    for obj in scene.objects:
        if np.all(np.isfinite(obj.colour)) \
                and np.linalg.norm(obj.colour - view.target_colour) > config.target_colour_gate:
            continue
        # translation putting the target's centre (x, y) on the object's mean
        shifts = np.empty((yaws.size, 3))
        shifts[:, :2] = obj.mean[:2] - np.einsum("hij,j->hi", rots, view.target)[:, :2]
        shifts[:, 2] = dz
        score = _match_fraction(view, smap, rots, shifts, config.colour_gate)
        banned = np.zeros(yaws.size, dtype=bool)
        for oid, heading in exclude:
            if oid == obj.id:
                banned |= np.abs(np.angle(np.exp(1j * (yaws - heading)))) < config.exclude_rad
        score[banned] = -1.0
        info["n_hypotheses"] += yaws.size
        for h in np.argsort(-score)[:config.n_refine]:
            if banned[h]:
                continue
            fine_yaws = yaws[h] + np.array([-1.0, 0.0, 1.0]) * np.pi / config.n_headings
            fine_rots = _yaw_matrices(fine_yaws)
            r = np.repeat(fine_rots, grid.shape[0], axis=0)
            base = np.empty((fine_yaws.size, 3))
            base[:, :2] = obj.mean[:2] - np.einsum("hij,j->hi", fine_rots, view.target)[:, :2]
            base[:, 2] = dz
            sh = np.repeat(base, grid.shape[0], axis=0)
            sh[:, :2] += np.tile(grid, (fine_yaws.size, 1))
            fine = _match_fraction(view, smap, r, sh, config.colour_gate)
            info["n_hypotheses"] += fine.size
            j = int(np.argmax(fine))
            if best is None or fine[j] > best[0]:
                best = (float(fine[j]), obj, fine_yaws[j // grid.shape[0]], r[j], sh[j])
    if best is None:
        return None, info
    match, obj, yaw, rot, shift = best
    t_map_g = np.eye(4)
    t_map_g[:3, :3], t_map_g[:3, 3] = rot, shift
    t_map_goal = t_map_g @ view.t_g_cam
    info.update(match=match, object_id=obj.id, heading=float(yaw), t_map_goal=t_map_goal)
    if match < config.min_match:
        return None, info
    rel = t_map_goal.copy()
    rel[:3, 3] -= obj.mean
    return ViewGoal(t_obj_cam=rel, object_id=obj.id, sigma_position=config.sigma_position,
                    kappa_rotation=config.kappa_rotation), info


def view_agreement(goal: GoalImage, depth, rgb, depth_tol: float = 0.03,
                   colour_tol: float = 0.25) -> float:
    """Fraction of the goal's valid pixels that the current frame reproduces.

    A pixel agrees when both frames have valid depth within ``depth_tol`` (m) and colours
    within ``colour_tol`` (RGB in [0, 1]). This is the observation-level check of a
    hypothesised goal viewpoint: near 1 where the camera sees what the goal image shows.
    """
    depth = np.asarray(depth, dtype=float)
    rgb = np.asarray(rgb)
    if depth.shape != goal.depth.shape or rgb.shape != goal.rgb.shape:
        raise ValueError(f"frame {depth.shape}/{rgb.shape} does not match the goal image "
                         f"{goal.depth.shape}/{goal.rgb.shape}")
    valid_goal = np.isfinite(goal.depth) & (goal.depth > 0.0)
    if not np.any(valid_goal):
        return 0.0
    with np.errstate(invalid="ignore"):
        close = np.abs(depth - goal.depth) < depth_tol
    colour = np.linalg.norm((rgb.astype(float) - goal.rgb.astype(float)) / 255.0, axis=-1)
    agree = valid_goal & close & (colour < colour_tol)
    return float(agree.sum() / valid_goal.sum())
