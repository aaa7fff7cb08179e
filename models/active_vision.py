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
from embodied_aif.models.segmentation import validate_transform

__all__ = [
    "CandidateConfig",
    "CategoryGoal",
    "EfeConfig",
    "ViewGoal",
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
        if min(self.n_around_objects, self.n_around_goal, self.n_local) < 0:
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
                        config: EfeConfig) -> dict[str, np.ndarray]:
    """Expected free energy of each candidate camera pose (V, 4, 4); lower is better.

    Returns arrays (V,): ``efe`` = ``pragmatic`` + ``epistemic``, ``epistemic`` =
    -(w_position ``info_gain_position`` + w_category ``info_gain_category``), the info gains
    summed over objects, each weighted by the probability that it exists and is detected.
    ``goal`` may be None (pure exploration) or a ``ViewGoal`` / ``CategoryGoal``.
    """
    views = np.asarray(views, dtype=float)
    if views.ndim != 3 or views.shape[1:] != (4, 4):
        raise ValueError(f"views must be (V, 4, 4), got shape {views.shape}")
    pd, ig_pos, ig_cat = _information_gain(scene, views, sensor, config)
    existence = np.array([o.existence for o in scene.objects]).reshape(-1)
    seen = pd * existence[None]  # probability that object k exists and is detected from v
    info_pos = np.sum(seen * ig_pos, axis=1)
    info_cat = np.sum(seen * ig_cat, axis=1)
    epistemic = -(config.w_position * info_pos + config.w_category * info_cat)
    if not config.use_epistemic:
        epistemic = np.zeros_like(epistemic)
    if goal is None or not config.use_pragmatic:
        pragmatic = np.zeros(views.shape[0])
    else:
        pragmatic = _pragmatic(scene, views, goal, pd, config)
    return {"efe": pragmatic + epistemic, "pragmatic": pragmatic, "epistemic": epistemic,
            "info_gain_position": info_pos, "info_gain_category": info_cat}


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
    object when ``goal`` is a ``ViewGoal``, and jittered copies of the current pose; positions
    are clipped to the configured bounds.
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
         feasible: Callable[[np.ndarray], np.ndarray] | None = None
         ) -> tuple[np.ndarray, dict]:
    """One active-vision step: sample candidates, score by EFE, move a bounded step to argmin.

    ``feasible`` (optional) maps candidate poses (V, 4, 4) to reachable ones (e.g. a head
    camera constrained by the base, a wrist camera by the arm's workspace). Returns the next
    camera pose and an info dict: ``best`` (the chosen candidate pose), ``terms`` (the EFE terms
    of the chosen candidate, floats) and ``n_candidates``.
    """
    views = sample_viewpoints(scene, current, goal, rng, candidate_config)
    if feasible is not None:
        views = np.asarray(feasible(views), dtype=float)
        if views.ndim != 3 or views.shape[1:] != (4, 4) or views.shape[0] == 0:
            raise ValueError(f"feasible() must return (V, 4, 4) poses, got {views.shape}")
    terms = evaluate_viewpoints(scene, views, sensor, goal, efe_config)
    best = int(np.argmin(terms["efe"]))
    nxt = bounded_step(current, views[best], candidate_config.max_step_m,
                       candidate_config.max_step_rad)
    return nxt, {"best": views[best], "terms": {k: float(v[best]) for k, v in terms.items()},
                 "n_candidates": int(views.shape[0])}
