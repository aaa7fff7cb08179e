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

import dataclasses
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
    posterior,
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
    ``best_view`` (P,) (-1 where none), ``view_efe`` (N,), ``place`` (the preferred place)
    and ``goal_pose`` (x, y, yaw; the frame of the views' poses): where the best view of the
    preferred place was seen from, i.e. where to stand to see what the goal image shows.
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
    place = int(np.argmax(pref))
    return {'efe': efe, 'preference': pref / pref.sum(), 'best_view': best,
            'view_efe': view_efe, 'place': place,
            'goal_pose': memory.poses[best[place]].astype(float).copy()}


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


# ---------------------------------------------------------------------------- straight links
# Imagined trips along the straight line between two known places, for the shortcut home.
# The turn-then-go rollouts of `propose_links` start from one view per place, whatever way it
# faced, and stop at 10 actions (3 m); these start from the remembered view that already
# faces the target (what the robot saw that way is in that state), take as many actions of
# the training data's scale (0.5 s, 0.6 m/s, 1.2 rad/s) as the distance needs, and compare
# each imagined prior with the posteriors of all the views the robot remembers (KL, SEEDS.md
# section 1), so each step of the trip says where the model expects to be.
@dataclass(frozen=True)
class LinkJudgement:
    """The imagined straight trip a -> b and the model's verdict.

    ``confidence`` in [0, 1]: the mean p(near b | imagined state) over the actions that
    dead-reckon to within `near` of b (0 when no view faced b). Per action (H,): ``arrive``
    the match probability of the views seen within `near` of b, ``along`` of those seen
    within `near` of the action's dead-reckoned pose, ``imagined_xy`` (H, 2) the views'
    positions weighted by the match (where the model thinks it is), ``reckoned`` (H, 3) the
    dead-reckoned poses (where odometry says it would be if nothing stopped it).
    ``start_view``: index of the view the trip started from (-1: none), ``actions`` (H, 2),
    ``start`` its pose.
    """

    a: int
    b: int
    confidence: float
    arrive: np.ndarray
    along: np.ndarray
    imagined_xy: np.ndarray
    reckoned: np.ndarray
    start_view: int
    actions: np.ndarray
    start: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))

    def free(self, threshold: float) -> bool:
        """Whether the trip is judged free at `threshold` confidence."""
        return self.confidence >= threshold

    def imagined_progress(self) -> np.ndarray:
        """(H,) how far along the trip the model thinks it got, over how far odometry says.

        Both are projections on the trip direction from the start view's position
        (``reckoned`` before the first action): 1 as far as odometry says, 0 stayed put;
        nan where the reckoned pose has not moved along the trip (the turn).
        """
        if not len(self.actions):
            return np.zeros(0)
        start = self.start[:2]
        u = self.reckoned[-1, :2] - start
        norm = float(np.linalg.norm(u))
        if norm == 0:
            return np.full(len(self.actions), np.nan)
        u = u / norm
        reck = (self.reckoned[:, :2] - start) @ u
        imag = (self.imagined_xy - start) @ u
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(reck > 1e-6, imag / np.where(reck > 1e-6, reck, 1.0), np.nan)


def straight_actions(pose, target, action_period: float = 0.5, linear: float = 0.6,
                     angular: float = 1.2) -> np.ndarray:
    """Commands (H, 2) that turn `pose` (x, y, yaw) in place to face `target` (x, y), then drive.

    The turn takes the fewest periods at most `angular` rad/s, the drive periods `linear` m/s
    (the last one slower), so the dead-reckoned end (:func:`dead_reckon`) is the target.
    """
    if not (action_period > 0 and linear > 0 and angular > 0):
        raise ValueError(f'action_period, linear and angular must be > 0, got {action_period}, '
                         f'{linear}, {angular}')
    x, y, yaw = (float(v) for v in np.asarray(pose, dtype=float).reshape(3))
    tx, ty = (float(v) for v in np.asarray(target, dtype=float).reshape(-1)[:2])
    dist = float(np.hypot(tx - x, ty - y))
    turn = float(np.angle(np.exp(1j * (np.arctan2(ty - y, tx - x) - yaw)))) if dist > 0 else 0.0
    n_turn = int(np.ceil(abs(turn) / (angular * action_period) - 1e-9))
    step = linear * action_period
    n_go = int(np.ceil(dist / step - 1e-9))
    acts = np.zeros((n_turn + n_go, 2), np.float32)
    if n_turn:
        acts[:n_turn, 1] = turn / (n_turn * action_period)
    if n_go:
        acts[n_turn:, 0] = linear
        acts[-1, 0] = (dist - (n_go - 1) * step) / action_period
    return acts


def state_from_features(model: WorldModel, features: torch.Tensor) -> State:
    """A state from features [h, z] (..., F) as remembered by a ViewMemory: z as the mean."""
    feats = torch.as_tensor(features, dtype=torch.float32)
    if feats.shape[-1] != model.config.feature_dim:
        raise ValueError(f'features must be (..., {model.config.feature_dim}), got '
                         f'{tuple(feats.shape)}')
    deter, stoch = feats[..., :model.config.deter], feats[..., model.config.deter:]
    return State(deter, stoch, stoch, torch.full_like(stoch, model.config.min_std))


@torch.no_grad()
def view_match(model: WorldModel, views: ViewMemory, features: torch.Tensor,
               temperature: float | None = None, null_level: float | None = None
               ) -> torch.Tensor:
    """p(view v | s) for states (M, F) -> (M, N): :func:`match_probabilities` over the views."""
    memory = PlaceMemory(state_from_features(model, views.features), views.images)
    return match_probabilities(model, memory, features, temperature, null_level)


@torch.no_grad()
def view_posteriors(model: WorldModel, views: ViewMemory) -> State:
    """The posteriors q(z | h, o) of the remembered views (N, ...), from their h and image.

    A ViewMemory keeps the features [h, z mean]; the posterior's spread is recomputed from
    h and the view's observation embedding, exactly as filtering computed it.
    """
    deter = torch.as_tensor(views.features, dtype=torch.float32)[:, :model.config.deter]
    return posterior(model, deter, model.encoder(preprocess(views.images)))


def kl_match(model: WorldModel, posteriors: State, priors: State,
             temperature: float | None = None) -> torch.Tensor:
    """p(view v | imagined prior) (M, N) = softmax_v(-KL[q_v || p_m] / temperature).

    How close each imagined prior state (M, ...) is to each remembered view's posterior
    (N, ...), SEEDS.md's "KL to B", as a distribution over the views; `temperature` in nats
    (default: the stochastic state's size, one nat per latent dimension). Objective-agnostic.
    """
    tau = float(model.config.stoch) if temperature is None else float(temperature)
    if not tau > 0:
        raise ValueError(f'temperature must be > 0, got {tau}')
    mq, sq = posteriors.mean[None], posteriors.std[None]
    mp, sp = priors.mean[:, None], priors.std[:, None]
    kl = 0.5 * (torch.log(sp ** 2 / sq ** 2) + (sq ** 2 + (mq - mp) ** 2) / sp ** 2 - 1).sum(-1)
    return torch.softmax(-kl / tau, dim=1)


@torch.no_grad()
def judge_link(model: WorldModel, views: ViewMemory, pose_a, pose_b, a: int = 0, b: int = 1,
               action_period: float = 0.5, start_radius: float = 0.75,
               max_turn: float = np.pi / 2, near: float = 1.0,
               match: str = 'kl', temperature: float | None = None,
               null_level: float | None = None, samples: int = 0,
               generator: torch.Generator | None = None) -> LinkJudgement:
    """Imagine the straight trip from place a (map pose_a) to place b (pose_b) and judge it.

    The trip starts from the remembered view within `start_radius` of a that needs the least
    turn toward b, at most `max_turn` (none: confidence 0, the model has not seen that way).
    The prior is rolled out from that view's state along :func:`straight_actions` from its
    pose (`samples` > 0: that many sampled rollouts with `generator`, the match probabilities
    averaged; 0: the deterministic mean rollout); after each action the imagined state is
    matched against every remembered view: `match` 'kl' (default) by the KL from each view's
    posterior to the imagined prior (:func:`kl_match`, `temperature` in nats), 'observation'
    by p(o_v | s) (:func:`view_match`, with its "none" option; `temperature`, `null_level`
    as there). The confidence is the mean p(near b) over the actions that dead-reckon to
    within `near` of b: whether the model, having seen what lies toward b, expects to end up
    in a state like those it was in around b (free) rather than, say, facing the wall of a
    shut door.
    """
    pa = np.asarray(pose_a, dtype=float).reshape(-1)
    pb = np.asarray(pose_b, dtype=float).reshape(-1)
    if pa.shape[0] < 2 or pb.shape[0] < 2:
        raise ValueError(f'pose_a and pose_b need (x, y[, yaw]), got {pa.shape}, {pb.shape}')
    if views.size == 0:
        raise ValueError('no camera views remembered yet')
    if samples < 0:
        raise ValueError(f'samples must be >= 0, got {samples}')
    if match not in ('kl', 'observation'):
        raise ValueError(f"match must be 'kl' or 'observation', got {match!r}")
    bearing = float(np.arctan2(pb[1] - pa[1], pb[0] - pa[0]))
    d_start = np.linalg.norm(views.poses[:, :2] - pa[:2], axis=1)
    turn = np.abs(np.angle(np.exp(1j * (bearing - views.poses[:, 2]))))
    ok = (d_start <= start_radius) & (turn <= max_turn)
    if not np.any(ok):
        return LinkJudgement(a, b, 0.0, np.zeros(0), np.zeros(0), np.zeros((0, 2)),
                             np.zeros((0, 3)), -1, np.zeros((0, 2), np.float32))
    v0 = int(np.flatnonzero(ok)[np.argmin(turn[ok])])
    start = views.poses[v0]
    acts = straight_actions(start, pb[:2], action_period, *model.config.action_scale)
    if len(acts) == 0:
        return LinkJudgement(a, b, 1.0, np.zeros(0), np.zeros(0), np.zeros((0, 2)),
                             np.zeros((0, 3)), v0, acts, start.copy())
    n = max(1, samples)
    state = state_from_features(model, views.features[v0:v0 + 1].expand(n, -1))
    traj = imagine(model, state, np.repeat(acts[None], n, 0), sample=samples > 0,
                   generator=generator)
    flat = State(*(getattr(traj, f).reshape(n * len(acts), -1)
                   for f in ('deter', 'stoch', 'mean', 'std')))
    if match == 'kl':
        probs = kl_match(model, view_posteriors(model, views), flat, temperature)
    else:
        probs = view_match(model, views, flat.features, temperature, null_level)
    probs = probs.reshape(n, len(acts), -1).mean(0).numpy().astype(float)
    ends = dead_reckon(start, acts, action_period)
    to_b = np.linalg.norm(views.poses[:, :2] - pb[:2], axis=1) <= near
    arrive = probs[:, to_b].sum(1)
    d_views = np.linalg.norm(views.poses[None, :, :2] - ends[:, None, :2], axis=2)
    along = (probs * (d_views <= near)).sum(1)
    weights = probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)
    there = np.linalg.norm(ends[:, :2] - pb[:2], axis=1) <= near
    conf = float(np.clip(arrive[there].mean(), 0.0, 1.0)) if np.any(there) else 0.0
    return LinkJudgement(a, b, conf, arrive, along, weights @ views.poses[:, :2], ends, v0, acts,
                         start.copy())


def judge_links(model: WorldModel, views: ViewMemory, place_poses, places=None, known=(),
                max_distance: float = 6.0, threshold: float = 0.1, **kwargs
                ) -> tuple[list[LinkProposal], list[LinkJudgement]]:
    """Judge the straight trips between map places without an edge; propose the free ones.

    `place_poses` (P, 2 or 3) map frame; `places` the ids to consider (default all), e.g.
    the visited ones; `known` id pairs with an edge (either direction, skipped); pairs more
    than `max_distance` apart are skipped. Both directions of a pair are imagined
    (:func:`judge_link`, `kwargs` passed on) and the more confident one speaks for the
    link. Returns (proposals with confidence >= `threshold`, most confident first, as
    :class:`LinkProposal` with the imagined actions; every judgement made, for evaluation).
    """
    poses = np.asarray(place_poses, dtype=float)
    if poses.ndim != 2 or poses.shape[1] < 2:
        raise ValueError(f'place_poses must be (P, 2 or 3), got {poses.shape}')
    ids = range(len(poses)) if places is None else sorted({int(k) for k in places})
    for k in ids:
        if not 0 <= k < len(poses):
            raise ValueError(f'place {k} has no pose (place_poses has {len(poses)} rows)')
    known_set = {(int(i), int(j)) for i, j in known} | {(int(j), int(i)) for i, j in known}
    proposals, judged = [], []
    for i in ids:
        for j in ids:
            if j <= i or (i, j) in known_set or \
                    np.linalg.norm(poses[i, :2] - poses[j, :2]) > max_distance:
                continue
            both = [judge_link(model, views, poses[i], poses[j], i, j, **kwargs),
                    judge_link(model, views, poses[j], poses[i], j, i, **kwargs)]
            judged += both
            best = max(both, key=lambda q: q.confidence)
            if best.confidence >= threshold:
                proposals.append(LinkProposal(best.a, best.b, best.confidence, best.actions))
    proposals.sort(key=lambda q: -q.confidence)
    return proposals, judged
