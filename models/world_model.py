"""Learned low-level world model: an RSSM trained by a likelihood or a contrastive objective.

State s_t = (h_t, z_t): a deterministic GRU state h_t and a diagonal-Gaussian stochastic state
z_t (SEEDS.md section 1).

- prior      p(z_t | h_t),        h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])
- posterior  q(z_t | h_t, e_t),   e_t = encoder(o_t)

Objective (``WorldModelConfig.objective``):

- ``likelihood``: F = KL[q || p] - E_q[log p(o_t | s_t)], a transposed-conv pixel decoder with a
  unit-variance Gaussian on images scaled to [-0.5, 0.5].
- ``contrastive`` (SEEDS.md section 3): F = KL[q || p] - I_NCE, with
  I_NCE = E[f(o, s)] - E[log mean_j exp f(o_j, s)], f(o, s) = h(o)^T g(s) / tau on unit
  vectors, negatives o_j the other observations of the batch; no decoder.

The KL uses balancing (``kl_balance`` of the gradient trains the prior toward the posterior,
the rest regularises the posterior) and free nats (no KL gradient below ``free_nats`` per
step). Goal-image expected free energy (lower is better):

- contrastive: G(s) = -f(o*, s) + log mean_j exp f(o_j, s) (o_j: the goal and reference
  observations);
- likelihood: G(s) = -log p(o* | s), the goal image's Gaussian negative log-likelihood under
  the decoder (per pixel, constants dropped).

Checkpoints hold only tensors and plain values (``torch.load(weights_only=True)``) with a
format name, a version and the config; :func:`load_checkpoint` names the file and the
problem when it is corrupt or does not match. :func:`representation_cost` counts the
multiply-adds and parameters of the representation (encoder + decoder, or encoder +
projection heads) for one observation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

OBJECTIVES = ('likelihood', 'contrastive')
CHECKPOINT_FORMAT = 'embodied_aif.world_model'
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, of another format/version or does not match."""


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes and loss settings of the RSSM (all stored in checkpoints)."""

    objective: str = 'contrastive'
    image_size: int = 64
    action_dim: int = 2
    deter: int = 128
    stoch: int = 16
    hidden: int = 128
    embed: int = 128
    cnn_depth: int = 16
    proj_dim: int = 64
    nce_temperature: float = 0.1
    free_nats: float = 1.0
    kl_balance: float = 0.8
    kl_scale: float = 1.0
    min_std: float = 0.1
    action_scale: tuple = (0.6, 1.2)
    augment: float = 0.0
    retexture: float = 0.0
    retexture_posterior: float = 0.0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f'objective must be one of {OBJECTIVES}, got {self.objective!r}')
        size = self.image_size
        if not isinstance(size, int) or size < 16 or size & (size - 1):
            raise ValueError(f'image_size must be a power of two >= 16, got {size!r}')
        for name in ('action_dim', 'deter', 'stoch', 'hidden', 'embed', 'cnn_depth',
                     'proj_dim'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        if not 0.0 <= self.kl_balance <= 1.0:
            raise ValueError(f'kl_balance must be in [0, 1], got {self.kl_balance}')
        for name in ('nce_temperature', 'min_std'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        for name in ('augment', 'retexture', 'retexture_posterior'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be a probability in [0, 1], got '
                                 f'{getattr(self, name)}')
        if self.free_nats < 0 or self.kl_scale < 0:
            raise ValueError('free_nats and kl_scale must be >= 0')
        if len(tuple(self.action_scale)) != self.action_dim:
            raise ValueError(f'action_scale needs {self.action_dim} values, got '
                             f'{self.action_scale!r}')
        object.__setattr__(self, 'action_scale', tuple(float(a) for a in self.action_scale))

    @property
    def conv_layers(self) -> int:
        """Stride-2 conv layers from image_size down to 4x4."""
        return int(math.log2(self.image_size)) - 2

    @property
    def feature_dim(self) -> int:
        """Size of the state features [h, z]."""
        return self.deter + self.stoch

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        out = dataclasses.asdict(self)
        out['action_scale'] = list(self.action_scale)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> WorldModelConfig:
        """Build from a dict, rejecting unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f'unknown world model config keys {sorted(unknown)}')
        return cls(**data)


def preset(objective: str, size: str = 'small', **overrides) -> WorldModelConfig:
    """Named configurations: 'small' (shipped weights) and 'tiny' (tests, seconds on a CPU).

    The contrastive model has no decoder to feed, so its encoder is narrower: the
    representation cost comparison in bench/world_model.py reports both this and an
    equal-encoder comparison. The shipped contrastive model trains with colour augmentation
    of the observations on the h(o) side (``augment``) and, on data collected with
    retextured views, puts those views on the h(o) side (``retexture``), for goal images
    whose wall and floor looks differ from what the robot saw.
    """
    if size == 'small':
        base = {'image_size': 32, 'deter': 128, 'stoch': 16, 'hidden': 128, 'embed': 128,
                'cnn_depth': 5 if objective == 'contrastive' else 16,
                'augment': 0.8 if objective == 'contrastive' else 0.0,
                'retexture': 0.8 if objective == 'contrastive' else 0.0}
    elif size == 'tiny':
        base = {'image_size': 16, 'deter': 32, 'stoch': 8, 'hidden': 32, 'embed': 32,
                'cnn_depth': 4, 'proj_dim': 16}
    else:
        raise ValueError(f"size must be 'small' or 'tiny', got {size!r}")
    base.update(overrides)
    return WorldModelConfig(objective=objective, **base)


# ---------------------------------------------------------------------------- network parts
class Encoder(nn.Module):
    """Stride-2 4x4 convolutions (depth doubling) down to 4x4, then a linear embedding."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        layers, cin = [], 3
        for k in range(config.conv_layers):
            cout = config.cnn_depth * 2 ** k
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.ELU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(cin * 16, config.embed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (..., 3, H, W) in [-0.5, 0.5] -> embeddings (..., embed)."""
        lead = images.shape[:-3]
        x = self.convs(images.reshape(-1, *images.shape[-3:]))
        return self.out(x.flatten(1)).reshape(*lead, -1)


class Decoder(nn.Module):
    """State features -> mean image (transposed convolutions mirroring the encoder)."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        n = config.conv_layers
        self.top = config.cnn_depth * 2 ** (n - 1)
        self.inp = nn.Linear(config.feature_dim, self.top * 16)
        layers, cin = [], self.top
        for k in reversed(range(n)):
            cout = 3 if k == 0 else config.cnn_depth * 2 ** (k - 1)
            layers.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1))
            if k:
                layers.append(nn.ELU())
            cin = cout
        self.deconvs = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """State features (..., F) -> mean images (..., 3, H, W)."""
        lead = features.shape[:-1]
        x = self.inp(features.reshape(-1, features.shape[-1])).reshape(-1, self.top, 4, 4)
        out = self.deconvs(x)
        return out.reshape(*lead, *out.shape[1:])


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ELU(), nn.Linear(hidden, out))


@dataclass
class State:
    """RSSM state: deterministic h (..., deter), stochastic sample z and its Gaussian."""

    deter: torch.Tensor
    stoch: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def features(self) -> torch.Tensor:
        """[h, z] (..., deter + stoch)."""
        return torch.cat([self.deter, self.stoch], -1)

    def detach(self) -> State:
        """A copy cut from the graph."""
        return State(self.deter.detach(), self.stoch.detach(), self.mean.detach(),
                     self.std.detach())

    def index(self, idx) -> State:
        """Index every field by idx (e.g. a time step)."""
        return State(self.deter[idx], self.stoch[idx], self.mean[idx], self.std[idx])


def stack_states(states: list[State], dim: int = 1) -> State:
    """Stack a list of states along a new axis."""
    return State(*(torch.stack([getattr(s, f) for s in states], dim)
                   for f in ('deter', 'stoch', 'mean', 'std')))


class WorldModel(nn.Module):
    """The RSSM with an encoder and either a pixel decoder or two projection heads."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = Encoder(c)
        self.img_in = nn.Sequential(nn.Linear(c.stoch + c.action_dim, c.hidden), nn.ELU())
        self.gru = nn.GRUCell(c.hidden, c.deter)
        self.prior_net = _mlp(c.deter, c.hidden, 2 * c.stoch)
        self.post_net = _mlp(c.deter + c.embed, c.hidden, 2 * c.stoch)
        if c.objective == 'likelihood':
            self.decoder = Decoder(c)
        else:
            self.obs_head = _mlp(c.embed, c.hidden, c.proj_dim)
            self.state_head = _mlp(c.feature_dim, c.hidden, c.proj_dim)
        self.register_buffer('action_scale', torch.tensor(c.action_scale, dtype=torch.float32))

    # ------------------------------------------------------------------ pieces
    def initial_state(self, batch: int) -> State:
        """The all-zero state for `batch` sequences."""
        c = self.config
        dev = self.action_scale.device
        zeros = torch.zeros(batch, c.stoch, device=dev)
        return State(torch.zeros(batch, c.deter, device=dev), zeros, zeros,
                     torch.ones(batch, c.stoch, device=dev))

    def _gaussian(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = raw.chunk(2, -1)
        return mean, F.softplus(std) + self.config.min_std

    def _sample(self, mean, std, generator, sample: bool) -> torch.Tensor:
        if not sample:
            return mean
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + std * noise

    def img_step(self, state: State, action: torch.Tensor, sample: bool = True,
                 generator: torch.Generator | None = None) -> State:
        """Prior transition p(s_t | s_{t-1}, a_{t-1})."""
        x = self.img_in(torch.cat([state.stoch, action / self.action_scale], -1))
        deter = self.gru(x, state.deter)
        mean, std = self._gaussian(self.prior_net(deter))
        return State(deter, self._sample(mean, std, generator, sample), mean, std)

    def obs_step(self, state: State, action: torch.Tensor, embed: torch.Tensor,
                 sample: bool = True, generator: torch.Generator | None = None
                 ) -> tuple[State, State]:
        """Posterior q(s_t | s_{t-1}, a_{t-1}, o_t) and the prior it was corrected from."""
        prior = self.img_step(state, action, sample, generator)
        mean, std = self._gaussian(self.post_net(torch.cat([prior.deter, embed], -1)))
        post = State(prior.deter, self._sample(mean, std, generator, sample), mean, std)
        return post, prior

    def obs_embedding(self, embed: torch.Tensor) -> torch.Tensor:
        """Contrastive h(o) as a unit vector (from encoder outputs)."""
        return F.normalize(self.obs_head(embed), dim=-1)

    def state_embedding(self, features: torch.Tensor) -> torch.Tensor:
        """Contrastive g(s) as a unit vector (from state features)."""
        return F.normalize(self.state_head(features), dim=-1)

    def score(self, obs_emb: torch.Tensor, state_emb: torch.Tensor) -> torch.Tensor:
        """f(o_i, s_j) for every pair: (..., N_o, D) x (..., N_s, D) -> (..., N_o, N_s)."""
        return obs_emb @ state_emb.transpose(-1, -2) / self.config.nce_temperature


def preprocess(images) -> torch.Tensor:
    """uint8 (..., H, W, 3) images -> float (..., 3, H, W) in [-0.5, 0.5]."""
    x = torch.as_tensor(np.asarray(images)) if not torch.is_tensor(images) else images
    if x.dtype == torch.uint8:
        x = x.float() / 255.0 - 0.5
    return x.movedim(-1, -3).contiguous()


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Average-pool uint8 (..., H, W, 3) images down to (..., size, size, 3)."""
    h = images.shape[-3]
    if h == size:
        return images
    if h % size:
        raise ValueError(f'cannot pool {h}px images to {size}px (not a divisor)')
    k = h // size
    lead = images.shape[:-3]
    x = images.reshape(*lead, size, k, size, k, 3).astype(np.float32).mean(axis=(-4, -2))
    return np.round(x).astype(np.uint8)


def _checked(model: WorldModel, images) -> torch.Tensor:
    """Preprocess images, raising ValueError when their size is not the model's."""
    shape = tuple(images.shape)
    size = model.config.image_size
    if len(shape) < 3 or shape[-3:] != (size, size, 3):
        raise ValueError(f'images must be (..., {size}, {size}, 3) for this model, got {shape} '
                         f'(resize_images pools larger ones)')
    return preprocess(images)


# ---------------------------------------------------------------------------- inference
def observe(model: WorldModel, images, prev_actions, state: State | None = None,
            sample: bool = True, generator: torch.Generator | None = None
            ) -> tuple[State, State]:
    """Filter a sequence: images (B, T, H, W, 3) uint8, prev_actions (B, T, A) = a_{t-1}.

    Returns (posteriors, priors), each a State with fields (B, T, ...).
    """
    x = _checked(model, np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dim() != 5:
        raise ValueError(f'images must be (B, T, H, W, 3), got shape {tuple(images.shape)}')
    acts = torch.as_tensor(prev_actions, dtype=torch.float32)
    if acts.shape[:2] != x.shape[:2] or acts.shape[-1] != model.config.action_dim:
        raise ValueError(f'prev_actions must be (B, T, {model.config.action_dim}) matching '
                         f'images {tuple(x.shape[:2])}, got {tuple(acts.shape)}')
    embeds = model.encoder(x)
    state = state if state is not None else model.initial_state(x.shape[0])
    posts, priors = [], []
    for t in range(x.shape[1]):
        state, prior = model.obs_step(state, acts[:, t], embeds[:, t], sample, generator)
        posts.append(state)
        priors.append(prior)
    return stack_states(posts), stack_states(priors)


def imagine(model: WorldModel, state: State, actions, sample: bool = False,
            generator: torch.Generator | None = None) -> State:
    """Open-loop prior rollout from `state` (B, ...) along actions (B, H, A) -> (B, H, ...)."""
    acts = torch.as_tensor(actions, dtype=torch.float32)
    if acts.dim() != 3 or acts.shape[0] != state.deter.shape[0]:
        raise ValueError(f'actions must be (B, H, A) with B = {state.deter.shape[0]}, got '
                         f'{tuple(acts.shape)}')
    out = []
    for k in range(acts.shape[1]):
        state = model.img_step(state, acts[:, k], sample, generator)
        out.append(state)
    return stack_states(out)


def posterior(model: WorldModel, deter: torch.Tensor, embed: torch.Tensor,
              sample: bool = False, generator: torch.Generator | None = None) -> State:
    """q(z | h, e) for deterministic states h (..., deter) and encoder outputs e (..., embed).

    The posterior half of :meth:`WorldModel.obs_step` on its own, e.g. to recover the
    spread of a remembered state from its h and its observation.
    """
    mean, std = model._gaussian(model.post_net(torch.cat([deter, embed], -1)))
    return State(deter, model._sample(mean, std, generator, sample), mean, std)


def embed_observation(model: WorldModel, images) -> torch.Tensor:
    """Observation embedding of uint8 images (..., H, W, 3): h(o) (contrastive) or e(o)."""
    e = model.encoder(_checked(model, np.asarray(images)))
    return model.obs_embedding(e) if model.config.objective == 'contrastive' else e


def goal_efe(model: WorldModel, goal_image, features: torch.Tensor,
             reference_images=None) -> torch.Tensor:
    """Expected free energy of states (N, F features) toward a goal image (H, W, 3); lower better.

    Contrastive: G = -f(o*, s) + log mean_j exp f(o_j, s) over o_j in {o*} + reference_images.
    Likelihood: G = mean per-pixel squared error / 2 of the goal under the decoder (the
    Gaussian negative log-likelihood per pixel without constants).
    """
    goal = _checked(model, np.asarray(goal_image)[None])
    if model.config.objective == 'contrastive':
        obs = goal
        if reference_images is not None and len(reference_images):
            obs = torch.cat([goal, preprocess(np.asarray(reference_images))], 0)
        h = model.obs_embedding(model.encoder(obs))
        f = model.score(h, model.state_embedding(features))  # (N_o, N_s)
        return -f[0] + torch.logsumexp(f, 0) - math.log(f.shape[0])
    recon = model.decoder(features)
    return 0.5 * ((recon - goal) ** 2).mean(dim=(-3, -2, -1))


# ---------------------------------------------------------------------------- losses
def _kl(mean_q, std_q, mean_p, std_p) -> torch.Tensor:
    """KL[N(q) || N(p)] summed over the last axis."""
    var_q, var_p = std_q ** 2, std_p ** 2
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p
                  - 1).sum(-1)


def kl_loss(post: State, prior: State, config: WorldModelConfig
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced KL with free nats; returns (loss, mean KL value)."""
    value = _kl(post.mean, post.std, prior.mean, prior.std)
    lhs = _kl(post.mean.detach(), post.std.detach(), prior.mean, prior.std).mean()
    rhs = _kl(post.mean, post.std, prior.mean.detach(), prior.std.detach()).mean()
    free = torch.tensor(config.free_nats)
    loss = (config.kl_balance * torch.maximum(lhs, free)
            + (1 - config.kl_balance) * torch.maximum(rhs, free))
    return config.kl_scale * loss, value.mean()


def infonce(model: WorldModel, embeds: torch.Tensor, features: torch.Tensor
            ) -> torch.Tensor:
    """I_NCE estimate over a batch of N (observation embedding, state) pairs (nats)."""
    h = model.obs_embedding(embeds.reshape(-1, embeds.shape[-1]))
    g = model.state_embedding(features.reshape(-1, features.shape[-1]))
    f = model.score(h, g)  # f[i, j] = f(o_i, s_j)
    n = f.shape[0]
    return (f.diagonal() - torch.logsumexp(f, 0)).mean() + math.log(n)


def loss_terms(model: WorldModel, images, prev_actions,
               generator: torch.Generator | None = None, retextured=None) -> dict:
    """Free energy of a batch of sequences and its terms (tensors; 'loss' is minimised).

    `retextured` (optional, like `images`): the same camera poses with random wall and floor
    looks (``images_retextured`` of the trajectory data). While training, each sequence's
    posterior sees them instead of `images` with probability ``config.retexture_posterior``
    (the likelihood decoder still targets `images`), and each observation on the h(o) side of
    InfoNCE is its retextured view with probability ``config.retexture``; colour changes
    (``config.augment``) apply on top. Without `retextured` both are off.
    """
    c = model.config
    x = preprocess(images)
    acts = torch.as_tensor(prev_actions, dtype=torch.float32)
    alt = None
    if retextured is not None and model.training:
        alt = preprocess(retextured)
        if alt.shape != x.shape:
            raise ValueError(f'retextured images {tuple(alt.shape)} must match images '
                             f'{tuple(x.shape)}')
    post_x = x
    if alt is not None and c.retexture_posterior > 0:
        pick = torch.rand(x.shape[0], generator=generator) < c.retexture_posterior
        post_x = torch.where(pick[:, None, None, None, None], alt, x)
    embeds = model.encoder(post_x)
    state = model.initial_state(x.shape[0])
    posts, priors = [], []
    for t in range(x.shape[1]):
        state, prior = model.obs_step(state, acts[:, t], embeds[:, t], True, generator)
        posts.append(state)
        priors.append(prior)
    post, prior = stack_states(posts), stack_states(priors)
    kl, kl_value = kl_loss(post, prior, c)
    out = {'kl': kl_value}
    if c.objective == 'likelihood':
        recon = model.decoder(post.features)
        nll = 0.5 * ((recon - x) ** 2).sum(dim=(-3, -2, -1)).mean()
        out.update(nll=nll, loss=kl + nll)
    else:
        obs_x, obs_embeds = x, (embeds if post_x is x else None)
        if alt is not None and c.retexture > 0:
            pick = torch.rand(x.shape[:2], generator=generator) < c.retexture
            obs_x, obs_embeds = torch.where(pick[..., None, None, None], alt, x), None
        if model.training and c.augment > 0:
            obs_x, obs_embeds = augment_colours(obs_x, c.augment, generator), None
        if obs_embeds is None:
            obs_embeds = model.encoder(obs_x)
        nce = infonce(model, obs_embeds, post.features)
        out.update(nce=nce, loss=kl - nce)
    return out


_PERMUTATIONS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def augment_colours(x: torch.Tensor, prob: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Random colour changes of images (..., 3, H, W) in [-0.5, 0.5], each with prob `prob`.

    A channel permutation, per-channel gain (0.6-1.4) and offset (+-0.15), and grey in a
    third of the cases: the InfoNCE positive pairs (augmented o_t, s_t) then teach h(o) to
    recognise a place whatever colour its walls and floor have.
    """
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    n = flat.shape[0]

    def uniform(*size):
        return torch.rand(*size, generator=generator)

    perm = _PERMUTATIONS[torch.randint(6, (n,), generator=generator)]
    out = flat[torch.arange(n)[:, None], perm]
    out = out * (0.6 + 0.8 * uniform(n, 3, 1, 1)) + 0.3 * (uniform(n, 3, 1, 1) - 0.5)
    grey = uniform(n, 1, 1, 1) < 1 / 3
    out = torch.where(grey, out.mean(1, keepdim=True).expand_as(out), out)
    apply = uniform(n, 1, 1, 1) < prob
    out = torch.where(apply, out.clamp(-0.5, 0.5), flat)
    return out.reshape(shape)


# ---------------------------------------------------------------------------- cost
def _count(module: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Multiply-adds of Linear / Conv2d / ConvTranspose2d layers for one input, and the output."""
    macs = 0

    def hook(mod, inp, out):
        nonlocal macs
        if isinstance(mod, nn.Linear):
            macs += mod.in_features * mod.out_features
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs += out.shape[-1] * out.shape[-2] * mod.out_channels * mod.in_channels * k
        elif isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs += inp[0].shape[-1] * inp[0].shape[-2] * mod.in_channels * mod.out_channels * k
    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    return macs, out


def representation_cost(model: WorldModel) -> dict:
    """Multiply-adds and parameters per observation of the representation part.

    Likelihood: encoder + decoder. Contrastive: encoder + observation head h + state head g.
    """
    c = model.config
    img = torch.zeros(1, 3, c.image_size, c.image_size)
    enc_macs, emb = _count(model.encoder, img)
    parts = {'encoder': (enc_macs, sum(p.numel() for p in model.encoder.parameters()))}
    feat = torch.zeros(1, c.feature_dim)
    if c.objective == 'likelihood':
        macs, _ = _count(model.decoder, feat)
        parts['decoder'] = (macs, sum(p.numel() for p in model.decoder.parameters()))
    else:
        macs, _ = _count(model.obs_head, emb)
        parts['obs_head'] = (macs, sum(p.numel() for p in model.obs_head.parameters()))
        macs, _ = _count(model.state_head, feat)
        parts['state_head'] = (macs, sum(p.numel() for p in model.state_head.parameters()))
    return {'macs': sum(m for m, _ in parts.values()),
            'params': sum(n for _, n in parts.values()),
            'parts': {k: {'macs': m, 'params': n} for k, (m, n) in parts.items()}}


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, model: WorldModel, extra: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write weights + config (+ optimizer state and training extras) atomically."""
    path = Path(path)
    payload = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION,
               'config': model.config.to_dict(),
               'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
               'extra': dict(extra or {})}
    if optimizer is not None:
        payload['optimizer'] = optimizer.state_dict()
    tmp = path.with_name(path.name + '.tmp')
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint payload (weights only); raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: no such checkpoint file')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f'{path}: corrupt or not a torch checkpoint '
                              f'({type(exc).__name__}: {str(exc)[:200]})') from None
    if not isinstance(payload, dict) or payload.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{path}: not a world model checkpoint (format '
                              f'{payload.get("format") if isinstance(payload, dict) else None!r},'
                              f' expected {CHECKPOINT_FORMAT!r})')
    if payload.get('version') != CHECKPOINT_VERSION:
        raise CheckpointError(f'{path}: checkpoint version {payload.get("version")!r}, this '
                              f'code reads version {CHECKPOINT_VERSION}')
    try:
        payload['config'] = WorldModelConfig.from_dict(dict(payload['config']))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{path}: bad config in checkpoint: {exc}') from None
    return payload


def load_checkpoint(path: str | Path, expect: WorldModelConfig | None = None,
                    objective: str | None = None) -> tuple[WorldModel, dict]:
    """Build the model stored in `path`; return (model in eval mode, payload).

    `expect` (a config) or `objective` must match what is stored, else CheckpointError.
    """
    payload = read_checkpoint(path)
    config = payload['config']
    if objective is not None and config.objective != objective:
        raise CheckpointError(f'{path}: checkpoint objective is {config.objective!r}, '
                              f'expected {objective!r}')
    if expect is not None and expect != config:
        diff = {k: (v, getattr(config, k)) for k, v in expect.to_dict().items()
                if config.to_dict()[k] != v}
        raise CheckpointError(f'{path}: config mismatch (expected, stored): {diff}')
    model = WorldModel(config)
    try:
        model.load_state_dict(payload['state_dict'])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f'{path}: weights do not match the stored config: '
                              f'{str(exc)[:300]}') from None
    model.eval()
    return model, payload


WEIGHTS_DIR = Path(__file__).resolve().parent / 'weights'


def shipped_weights(objective: str) -> Path:
    """Path of the shipped weights for an objective (models/weights/world_model_<obj>.pt)."""
    if objective not in OBJECTIVES:
        raise ValueError(f'objective must be one of {OBJECTIVES}, got {objective!r}')
    return WEIGHTS_DIR / f'world_model_{objective}.pt'
