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

from embodied_aif.models.world_model import (
    State,
    WorldModel,
    goal_efe,
    imagine,
    observe,
    preprocess,
)

LIKELIHOOD_TEMPERATURE = 0.002
NULL_COSINE = 0.7
NULL_NLL = 0.01


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
