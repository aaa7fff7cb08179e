"""Imagination with the learned world model: shortcut proposals and goal-image preferences.

Pure functions over a trained :class:`~embodied_aif.models.world_model.WorldModel` and a
:class:`PlaceMemory` (one filtered state and one observation per known place); no ROS, no map
mutation. The cognitive map can turn the results into imagined edges
(``cognitive_map.add_imagined_edge``) and into place preferences.

Place matching uses the goal-image EFE of :func:`~embodied_aif.models.world_model.goal_efe`
with every place's observation as a candidate goal: p(b | s) = softmax_b(-G_b(s) / tau).
For the contrastive model G_b(s) = -f(o_b, s) + log mean_j exp f(o_j, s), so with tau = 1 this
is exactly the InfoNCE classifier "which place's observation does this state explain";
for the likelihood model G_b is the per-pixel Gaussian NLL of o_b under the decoder and tau
sets how sharp the match is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

from embodied_aif.models.world_model import (
    State,
    WorldModel,
    embed_observation,
    goal_efe,
    imagine,
    observe,
    preprocess,
)

LIKELIHOOD_TEMPERATURE = 0.002
NULL_COSINE = 0.7
NULL_NLL = 0.01
EMBEDDING_TEMPERATURE = 0.1


@dataclass
class PlaceMemory:
    """Known places: a filtered state (batch N) and the observation (N, H, W, 3) uint8."""

    state: State
    images: np.ndarray

    def __post_init__(self):
        n = self.state.deter.shape[0]
        if self.state.deter.dim() != 2:
            raise ValueError(f'state must have a batch of places (N, D), got '
                             f'{tuple(self.state.deter.shape)}')
        if self.images.ndim != 4 or self.images.shape[0] != n or self.images.shape[-1] != 3:
            raise ValueError(f'images must be ({n}, H, W, 3), got {self.images.shape}')

    @property
    def size(self) -> int:
        """Number of places."""
        return self.images.shape[0]


@dataclass(frozen=True)
class LinkProposal:
    """A hypothesised link a -> b: confidence in [0, 1], the imagined action sequence."""

    a: int
    b: int
    confidence: float
    actions: np.ndarray


@torch.no_grad()
def filter_trajectory(model: WorldModel, images: np.ndarray, actions: np.ndarray) -> State:
    """Posterior states (T, ...) of one trajectory: images (T, H, W, 3), actions (T, A).

    actions[t] is the action taken after images[t] (the collect format); the mean of the
    posterior is used (no sampling), so the result is deterministic.
    """
    prev = np.zeros_like(actions, dtype=np.float32)
    prev[1:] = actions[:-1]
    post, _ = observe(model, images[None], prev[None], sample=False)
    return post.index(0)


def place_memory(model: WorldModel, images: np.ndarray, actions: np.ndarray,
                 indices) -> PlaceMemory:
    """Filter one trajectory and keep the states and observations at `indices` as places."""
    idx = np.asarray(indices, dtype=int)
    states = filter_trajectory(model, images, actions)
    return PlaceMemory(states.index(torch.as_tensor(idx)), np.asarray(images)[idx])


@torch.no_grad()
def place_efe(model: WorldModel, memory: PlaceMemory, features: torch.Tensor) -> torch.Tensor:
    """G_b(s) for every place observation b and state features (M, F) -> (M, N)."""
    n = memory.size
    if model.config.objective == 'contrastive':
        h = model.obs_embedding(model.encoder(preprocess(memory.images)))
        f = model.score(h, model.state_embedding(features))  # (N, M)
        return (-f + torch.logsumexp(f, 0, keepdim=True) - np.log(n)).T
    recon = model.decoder(features)  # (M, 3, H, W)
    obs = preprocess(memory.images)  # (N, 3, H, W)
    return torch.stack([0.5 * ((recon - o) ** 2).mean(dim=(-3, -2, -1)) for o in obs], 1)


def match_probabilities(model: WorldModel, memory: PlaceMemory, features: torch.Tensor,
                        temperature: float | None = None, null_level: float | None = None
                        ) -> torch.Tensor:
    """p(b | s) for states (M, F) -> (M, N): softmax over the places plus a "none" option.

    Logits are -G_b(s) / tau up to a per-state constant: f(o_b, s) for the contrastive model
    (tau = 1), minus the per-pixel NLL of o_b / tau for the likelihood model. The "none"
    option has the logit of a place that matches at `null_level` (contrastive: a cosine
    similarity between h(o) and g(s), default NULL_COSINE; likelihood: a per-pixel NLL,
    default NULL_NLL), so a state that matches no place well gives small probabilities to
    all of them instead of picking the least bad.
    """
    contrastive = model.config.objective == 'contrastive'
    tau = temperature if temperature is not None else (
        1.0 if contrastive else LIKELIHOOD_TEMPERATURE)
    if not tau > 0:
        raise ValueError(f'temperature must be > 0, got {tau}')
    if contrastive:
        h = model.obs_embedding(model.encoder(preprocess(memory.images)))
        logits = model.score(h, model.state_embedding(features)).T  # f(o_b, s): (M, N)
        null = (NULL_COSINE if null_level is None else null_level) / model.config.nce_temperature
    else:
        logits = -place_efe(model, memory, features)
        null = -(NULL_NLL if null_level is None else null_level)
    logits = torch.cat([logits, torch.full((logits.shape[0], 1), float(null))], 1) / tau
    return torch.softmax(logits, dim=1)[:, :-1]


def candidate_actions(horizon: int = 10, turn_steps: int = 5, linear: float = 0.6,
                      angular: float = 1.2) -> np.ndarray:
    """Turn-then-go action sequences (K, horizon, 2).

    Sequence k turns for |k| periods (k in -turn_steps..turn_steps), then drives straight
    for the rest of the horizon.
    """
    if horizon < 1 or turn_steps < 0 or turn_steps >= horizon:
        raise ValueError(f'need horizon >= 1 and 0 <= turn_steps < horizon, got {horizon}, '
                         f'{turn_steps}')
    out = []
    for k in range(-turn_steps, turn_steps + 1):
        seq = np.zeros((horizon, 2), np.float32)
        seq[:abs(k), 1] = np.sign(k) * angular
        seq[abs(k):, 0] = linear
        out.append(seq)
    return np.stack(out)


def dead_reckon(pose, actions: np.ndarray, action_period: float) -> np.ndarray:
    """Poses (H, 3) after each (linear, angular) action held for `action_period` seconds.

    Exact unicycle arcs from `pose` (x, y, yaw), ignoring obstacles: where odometry says the
    robot would be if nothing stopped it.
    """
    x, y, yaw = (float(v) for v in pose)
    acts = np.asarray(actions, dtype=float).reshape(-1, 2)
    out = np.zeros((len(acts), 3))
    for k, (v, w) in enumerate(acts):
        nyaw = yaw + w * action_period
        if abs(w) > 1e-9:
            x += v / w * (np.sin(nyaw) - np.sin(yaw))
            y -= v / w * (np.cos(nyaw) - np.cos(yaw))
        else:
            x += v * action_period * np.cos(yaw)
            y += v * action_period * np.sin(yaw)
        yaw = float(np.arctan2(np.sin(nyaw), np.cos(nyaw)))
        out[k] = (x, y, yaw)
    return out


@torch.no_grad()
def propose_links(model: WorldModel, memory: PlaceMemory, candidates: np.ndarray,
                  known=(), threshold: float = 0.5, min_steps: int = 1,
                  temperature: float | None = None, null_level: float | None = None,
                  place_poses: np.ndarray | None = None, action_period: float = 0.5,
                  pose_sigma: float = 0.5) -> list[LinkProposal]:
    """Links between places never travelled between, from open-loop rollouts.

    For every place a and candidate sequence k the prior is rolled out from a's state;
    the imagined state after h >= min_steps actions is matched against every place. The
    confidence of a -> b is the best p(b | imagined state) over (k, h); pairs in `known`
    (either direction) and a == b are skipped; proposals with confidence >= threshold are
    returned, most confident first, each with the action prefix that reached b.

    With `place_poses` (N, 3, map frame) the imagined state also carries a pose: the
    dead-reckoned end of the action prefix (:func:`dead_reckon`), and the confidence is
    p(b | imagined state) * exp(-d^2 / (2 pose_sigma^2)), d the distance from that pose to
    place b. The pose says where the actions lead; the learned model says whether the robot
    gets there, i.e. whether it would see place b rather than, say, a wall or a closed door.
    """
    cands = np.asarray(candidates, dtype=np.float32)
    if cands.ndim != 3 or cands.shape[-1] != model.config.action_dim:
        raise ValueError(f'candidates must be (K, H, {model.config.action_dim}), got '
                         f'{cands.shape}')
    k_num, horizon = cands.shape[:2]
    known_set = {(int(i), int(j)) for i, j in known} | {(int(j), int(i)) for i, j in known}
    proposals = []
    for a in range(memory.size):
        start = memory.state.index(torch.full((k_num,), a, dtype=torch.long))
        traj = imagine(model, start, cands, sample=False)  # (K, H, ...)
        feats = traj.features.reshape(k_num * horizon, -1)
        probs = match_probabilities(model, memory, feats, temperature, null_level)
        probs = probs.reshape(k_num, horizon, -1)
        if place_poses is not None:
            poses = np.asarray(place_poses, dtype=float)
            if poses.shape != (memory.size, 3):
                raise ValueError(f'place_poses must be ({memory.size}, 3), got {poses.shape}')
            ends = np.stack([dead_reckon(poses[a], seq, action_period) for seq in cands])
            d2 = ((ends[:, :, None, :2] - poses[None, None, :, :2]) ** 2).sum(-1)
            probs = probs * torch.as_tensor(np.exp(-d2 / (2 * pose_sigma ** 2)),
                                            dtype=probs.dtype)
        probs = probs[:, min_steps - 1:]
        for b in range(memory.size):
            if b == a or (a, b) in known_set:
                continue
            pb = probs[:, :, b]
            best = int(torch.argmax(pb))
            k, h = divmod(best, pb.shape[1])
            conf = float(pb[k, h])
            if conf >= threshold:
                proposals.append(LinkProposal(a, b, conf, cands[k, :h + min_steps].copy()))
    proposals.sort(key=lambda p: -p.confidence)
    return proposals


@torch.no_grad()
def goal_preference(model: WorldModel, memory: PlaceMemory, goal_image: np.ndarray,
                    gamma: float = 1.0, reference_images: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Goal image -> (efe per place (N,), preference softmax(-gamma efe) over places).

    Contrastive negatives are the place observations unless `reference_images` are given.
    The lowest efe is the place that looks most like the goal.
    """
    goal = np.asarray(goal_image)
    if goal.shape != memory.images.shape[1:]:
        raise ValueError(f'goal image must have shape {memory.images.shape[1:]}, got '
                         f'{goal.shape}')
    refs = memory.images if reference_images is None else reference_images
    efe = goal_efe(model, goal, memory.state.features, refs).numpy().astype(np.float64)
    logits = -gamma * (efe - efe.min())
    pref = np.exp(logits)
    return efe, pref / pref.sum()


# ---------------------------------------------------------------------------- camera views
def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop an (H, W, 3) uint8 image to a square and box-filter it to (size, size, 3).

    Any input size works: whole blocks of pixels are averaged first, then fractional pixels
    are weighted by their overlap (the square may lose up to side // size - 1 pixels at its
    edges), so a camera of another resolution can feed a model trained on `size`-pixel images.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3 or min(img.shape[:2]) < 1:
        raise ValueError(f'image must be (H, W, 3), got shape {img.shape}')
    if size < 1:
        raise ValueError(f'size must be >= 1, got {size}')
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[top:top + side, left:left + side].astype(np.float32)
    k = side // size
    if k > 1:  # integer pooling first (cheap), trimming at most k - 1 pixels at the edges
        n = side // k
        cut = (side - n * k) // 2
        crop = crop[cut:cut + n * k, cut:cut + n * k].reshape(n, k, n, k, 3).mean(axis=(1, 3))
        side = n
    edges = np.arange(size + 1) * side / size
    cells = np.arange(side)
    weights = np.clip(np.minimum(edges[1:, None], cells[None] + 1)
                      - np.maximum(edges[:-1, None], cells[None]), 0.0, None)
    weights = (weights / weights.sum(1, keepdims=True)).astype(np.float32)  # (size, side)
    rows = (weights @ crop.reshape(side, -1)).reshape(size, side, 3)  # filter the rows
    out = weights[None] @ rows  # then the columns: (size, size, 3)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass
class ViewMemory:
    """Camera views the robot has filtered, with the poses it saw them from.

    features (N, F) state features, images (N, S, S, 3) uint8, poses (N, 3) odometry
    (x, y, yaw).
    """

    features: torch.Tensor
    images: np.ndarray
    poses: np.ndarray

    def __post_init__(self):
        n = self.images.shape[0] if self.images.ndim == 4 else -1
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f'images must be (N, S, S, 3), got {self.images.shape}')
        if self.features.dim() != 2 or self.features.shape[0] != n:
            raise ValueError(f'features must be ({n}, F), got {tuple(self.features.shape)}')
        if self.poses.shape != (n, 3):
            raise ValueError(f'poses must be ({n}, 3), got {self.poses.shape}')

    @property
    def size(self) -> int:
        """Number of views."""
        return self.images.shape[0]


def empty_views(model: WorldModel) -> ViewMemory:
    """A view memory with no views, sized for `model`."""
    s = model.config.image_size
    return ViewMemory(torch.zeros(0, model.config.feature_dim), np.zeros((0, s, s, 3), np.uint8),
                      np.zeros((0, 3)))


def remember_view(memory: ViewMemory, features: torch.Tensor, image: np.ndarray, pose,
                  spacing: float = 0.5, angle: float = np.pi / 4, capacity: int = 400,
                  replace: bool = False) -> ViewMemory:
    """Add a view (features (F,), image (S, S, 3), pose (x, y, yaw)); return the new memory.

    A view seen from within `spacing` metres and `angle` radians of a remembered one adds
    nothing (the memory is returned as it is), so the memory covers the places and headings
    visited rather than the time spent there, unless `replace` (e.g. the robot stands still
    and sees clearly), when the new view takes the place of those near ones. Beyond
    `capacity` views the oldest is dropped.
    """
    pose = np.asarray(pose, dtype=float).reshape(3)
    idx = np.arange(memory.size)
    if memory.size:
        d = np.linalg.norm(memory.poses[:, :2] - pose[:2], axis=1)
        turn = np.abs(np.angle(np.exp(1j * (memory.poses[:, 2] - pose[2]))))
        near = (d <= spacing) & (turn <= angle)
        if np.any(near) and not replace:
            return memory
        idx = idx[~near]
    idx = idx[max(0, len(idx) + 1 - capacity):]  # the oldest go first
    feats = torch.as_tensor(features, dtype=torch.float32).reshape(1, -1)
    return ViewMemory(torch.cat([memory.features[torch.as_tensor(idx, dtype=torch.long)],
                                 feats]),
                      np.concatenate([memory.images[idx], np.asarray(image, np.uint8)[None]]),
                      np.concatenate([memory.poses[idx], pose[None]]))


@torch.no_grad()
def filter_step(model: WorldModel, state: State | None, prev_action, image: np.ndarray
                ) -> State:
    """One posterior update of a single state (batch 1) with an (S, S, 3) uint8 image.

    `prev_action` is the (linear, angular) action since the previous image; `state` None
    starts from the model's initial state. Deterministic (posterior mean).
    """
    act = torch.as_tensor(np.asarray(prev_action, dtype=np.float32).reshape(1, 1, -1))
    post, _ = observe(model, np.asarray(image)[None, None], act, state=state, sample=False)
    return post.index((slice(None), -1))


@torch.no_grad()
def view_place_preference(model: WorldModel, memory: ViewMemory, goal_image: np.ndarray,
                          place_poses: np.ndarray, place_radius: float,
                          gamma: float | None = None, match: str = 'state') -> dict:
    """Goal image -> a preference over places, from the goal EFE of the remembered views.

    Each view belongs to the nearest place within `place_radius` (others are ignored); a
    place's EFE is the least goal EFE of its views. `match` 'state': the goal EFE of the
    view's filtered state (:func:`goal_efe`, the other views as contrastive references);
    'embedding': the same InfoNCE form with the view's observation embedding standing in for
    the state, G_v = -c_v / 0.1 + log mean_j exp(c_j / 0.1), c the cosine between the goal's
    and the views' embeddings (:func:`embed_observation`; either objective), which does not
    depend on how well the state was filtered. `gamma` sharpens the softmax: default 1
    (InfoNCE log ratios) or 1 / LIKELIHOOD_TEMPERATURE (likelihood model, state match).
    Returns ``efe`` (P,) (inf where a place has no view), ``preference`` (P,) summing to 1,
    ``best_view`` (P,) (-1 where none) and ``view_efe`` (N,).
    """
    poses = np.asarray(place_poses, dtype=float)
    if poses.ndim != 2 or poses.shape[1] < 2 or len(poses) == 0:
        raise ValueError(f'place_poses must be (P, 2 or 3) with P >= 1, got {poses.shape}')
    if memory.size == 0:
        raise ValueError('no camera views remembered yet')
    goal = np.asarray(goal_image)
    if goal.shape != memory.images.shape[1:]:
        raise ValueError(f'goal image must have shape {memory.images.shape[1:]}, got '
                         f'{goal.shape}')
    if match not in ('state', 'embedding'):
        raise ValueError(f"match must be 'state' or 'embedding', got {match!r}")
    if gamma is None:
        gamma = 1.0 if model.config.objective == 'contrastive' or match == 'embedding' \
            else 1.0 / LIKELIHOOD_TEMPERATURE
    if match == 'state':
        view_efe = goal_efe(model, goal, memory.features, memory.images).numpy()
    else:
        emb = F.normalize(embed_observation(model, np.concatenate([goal[None], memory.images])),
                          dim=-1)
        logits = (emb[1:] @ emb[0]) / EMBEDDING_TEMPERATURE
        view_efe = (-logits + torch.logsumexp(logits, 0) - np.log(len(logits))).numpy()
    view_efe = view_efe.astype(float)
    d = np.linalg.norm(memory.poses[:, None, :2] - poses[None, :, :2], axis=2)  # (N, P)
    owner = np.where(d.min(1) <= place_radius, d.argmin(1), -1)
    efe = np.full(len(poses), np.inf)
    best = np.full(len(poses), -1)
    for v in np.argsort(view_efe):
        k = owner[v]
        if k >= 0 and best[k] < 0:
            best[k], efe[k] = v, view_efe[v]
    if not np.any(best >= 0):
        raise ValueError(f'no remembered view lies within {place_radius} m of a place')
    finite = np.isfinite(efe)
    logits = np.where(finite, -gamma * (efe - efe[finite].min()), -np.inf)
    pref = np.exp(logits)
    return {'efe': efe, 'preference': pref / pref.sum(), 'best_view': best,
            'view_efe': view_efe}


@torch.no_grad()
def imagined_links(model: WorldModel, views: dict, known=(), threshold: float = 0.3,
                   candidates: np.ndarray | None = None, action_period: float = 0.5,
                   pose_sigma: float = 0.5) -> list[LinkProposal]:
    """Links between map places from one remembered view per place.

    `views` maps a place id to (state (batch 1), image (S, S, 3), pose (x, y, yaw) the view
    was seen from, map frame); `known` holds place-id pairs that already have an edge. The
    imagined rollouts start at each view's pose and heading (:func:`propose_links` with
    `place_poses`); the proposals carry place ids.
    """
    ids = sorted(int(k) for k in views)
    if len(ids) < 2:
        return []
    states = [views[k][0] for k in ids]
    state = State(*(torch.cat([getattr(s, f) for s in states], 0)
                    for f in ('deter', 'stoch', 'mean', 'std')))
    memory = PlaceMemory(state, np.stack([np.asarray(views[k][1]) for k in ids]))
    poses = np.stack([np.asarray(views[k][2], dtype=float) for k in ids])
    index = {k: n for n, k in enumerate(ids)}
    local = [(index[i], index[j]) for i, j in known if i in index and j in index]
    cands = candidate_actions() if candidates is None else candidates
    found = propose_links(model, memory, cands, known=local, threshold=threshold,
                          place_poses=poses, action_period=action_period,
                          pose_sigma=pose_sigma)
    return [LinkProposal(ids[p.a], ids[p.b], p.confidence, p.actions) for p in found]
