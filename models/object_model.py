"""A disentangled generative object model: category, shape and pose latents (torch).

An RGB-D object crop x (models/object_crops.py: RGB, relative depth, mask, plus the crop's
metric ``scale``) is encoded into
- q(c | x): a categorical posterior over the categories,
- q(s | x) = N(mu_s, sigma_s^2): a shape code (``shape_dim``, about 16),
- q(p | x) = N(mu_p, sigma_p^2): a pose code (``pose_dim``, about 8), the viewpoint relative
  to the object;
a decoder renders the crop from (s, p, c) and a transition predicts the pose code after a
relative camera move m (``camera_move``: change of azimuth, elevation and log range),
p' ~ N(f(p, m), sigma_t^2).

Training (``training_losses``) samples, for an anchor view x_a(v) of instance a at viewpoint v,
an instance b of the same category and another viewpoint w (datasets render every instance
from the same viewpoints): the decoder must render x_b(v) from the shape code of x_b(w) and the
pose code of x_a(v) (shape swapped across views and instances, so the pose code carries only
the viewpoint and the shape code only the instance), optionally (``LossWeights.recon``) also
x_a(v) from its own codes; the transition maps the pose code of x_b(w) through the move
w -> v onto the pose code of x_a(v). Loss: swap reconstruction (squared error on RGB and
depth, cross-entropy on the mask) + beta * KL of the Gaussians to N(0, I) + category
cross-entropy + transition negative log-likelihood. ``occlude_crop`` augments encoder inputs
with parts of objects (segmentation in clutter splits and truncates them).

Checkpoints are weights-only files (``torch.load(weights_only=True)``) holding a format tag,
a version, the configuration and the state dict; ``load_checkpoint`` raises
``CheckpointError`` naming the file and what is wrong.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch convention
from torch import nn

from embodied_aif.models.object_crops import crop_arrays, crop_object

__all__ = [
    'CATEGORY_HEIGHTS',
    'CHECKPOINT_FORMAT',
    'CHECKPOINT_VERSION',
    'CheckpointError',
    'LossWeights',
    'ObjectClassifier',
    'ObjectModel',
    'ObjectModelConfig',
    'PairSampler',
    'camera_move',
    'category_accuracy',
    'default_weights_path',
    'load_checkpoint',
    'make_batch',
    'occlude_crop',
    'predict_categories',
    'predict_inputs',
    'predict_latents',
    'prepare_dataset',
    'save_checkpoint',
    'train_epoch',
    'training_losses',
]

CHECKPOINT_FORMAT = 'embodied_aif.object_model'
CHECKPOINT_VERSION = 1
MOVE_DIM = 4


# Height above the support (m) of each category's instances, from the generators of
# sim/objects.py: the parametric ranges (a bowl: its tilted staves on a base, measured at the
# extremes of radius, height and flare) and the pybullet_data meshes' bounding boxes at the
# ends of their scale ranges. test/unit/test_object_heights.py checks them against sampled
# instances. Perception fuses the measured height of each cluster as category evidence
# (scene_beliefs.height_likelihood, ObjectClassifier.observe).
CATEGORY_HEIGHTS = {
    'can': (0.08, 0.16),
    'box': (0.04, 0.14),
    'mug': (0.07, 0.11),
    'bottle': (0.14, 0.22),
    'bowl': (0.034, 0.065),
    'duck': (0.054, 0.084),
    'teddy': (0.064, 0.096),
    'lego': (0.036, 0.060),
    'jenga': (0.018, 0.030),
    'mug_mesh': (0.076, 0.106),
}


def default_weights_path() -> Path:
    """The shipped weights (models/weights/object_model.pt)."""
    return Path(__file__).resolve().parent / 'weights' / 'object_model.pt'


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ObjectModelConfig:
    """Sizes of the object model; ``categories`` fixes the order of q(category)."""

    categories: tuple[str, ...]
    crop_size: int = 64          # side of the stored crops (object_crops.crop_object)
    input_size: int = 32         # crops are average-pooled to this side
    shape_dim: int = 16
    pose_dim: int = 8
    channels: tuple[int, ...] = (32, 64, 64)
    hidden: int = 128
    depth_scale: float = 0.05    # relative depth is divided by this and clipped to +-3
    min_logvar: float = -8.0

    def __post_init__(self):
        object.__setattr__(self, 'categories', tuple(str(c) for c in self.categories))
        object.__setattr__(self, 'channels', tuple(int(c) for c in self.channels))
        if len(self.categories) < 2 or len(set(self.categories)) != len(self.categories):
            raise ValueError(f'need at least two distinct categories, got {self.categories}')
        down = 2 ** len(self.channels)
        if self.input_size % down or self.crop_size % self.input_size:
            raise ValueError(f'input_size {self.input_size} must be divisible by {down} and '
                             f'divide crop_size {self.crop_size}')
        for name in ('shape_dim', 'pose_dim', 'hidden'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if not self.channels or min(self.channels) < 1 or not self.depth_scale > 0.0:
            raise ValueError(f'bad channels {self.channels} or depth_scale {self.depth_scale}')

    @property
    def n_categories(self) -> int:
        """Number of categories K."""
        return len(self.categories)


def camera_move(src, dst) -> np.ndarray:
    """Relative camera move features (..., 4) from viewpoint ``src`` to ``dst``.

    Both are arrays (..., 3) of (azimuth, elevation, range); the features are
    (sin d_az, cos d_az - 1, d_el, log(range_dst / range_src)).
    """
    src, dst = np.asarray(src, dtype=float), np.asarray(dst, dtype=float)
    if src.shape[-1] != 3 or dst.shape[-1] != 3:
        raise ValueError(f'viewpoints must be (..., 3) (azimuth, elevation, range), got '
                         f'{src.shape} and {dst.shape}')
    if np.any(src[..., 2] <= 0.0) or np.any(dst[..., 2] <= 0.0):
        raise ValueError('viewpoint ranges must be > 0')
    d_az = dst[..., 0] - src[..., 0]
    return np.stack([np.sin(d_az), np.cos(d_az) - 1.0, dst[..., 1] - src[..., 1],
                     np.log(dst[..., 2] / src[..., 2])], axis=-1).astype(np.float32)


class ObjectModel(nn.Module):
    """Encoder, decoder and pose transition of the disentangled object model."""

    def __init__(self, config: ObjectModelConfig):
        super().__init__()
        self.config = config
        c, k = config.channels, config.n_categories
        layers, prev = [], 5
        for ch in c:
            layers += [nn.Conv2d(prev, ch, 4, 2, 1), nn.LeakyReLU(0.1)]
            prev = ch
        self.conv = nn.Sequential(*layers)
        self.side = config.input_size // 2 ** len(c)
        flat = c[-1] * self.side ** 2
        self.trunk = nn.Sequential(nn.Linear(flat + 1, config.hidden), nn.LeakyReLU(0.1))
        self.head_category = nn.Linear(config.hidden, k)
        self.head_shape = nn.Linear(config.hidden, 2 * config.shape_dim)
        self.head_pose = nn.Linear(config.hidden, 2 * config.pose_dim)
        self.dec_in = nn.Sequential(
            nn.Linear(config.shape_dim + config.pose_dim + k + 1, config.hidden),
            nn.LeakyReLU(0.1), nn.Linear(config.hidden, flat), nn.LeakyReLU(0.1))
        layers = []
        rev = list(reversed(c)) + [5]
        for a, b in zip(rev[:-1], rev[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.LeakyReLU(0.1)]
        self.deconv = nn.Sequential(*layers[:-1])
        self.transition = nn.Sequential(
            nn.Linear(config.pose_dim + MOVE_DIM, 64), nn.LeakyReLU(0.1),
            nn.Linear(64, 64), nn.LeakyReLU(0.1), nn.Linear(64, 2 * config.pose_dim))

    # ------------------------------------------------------------------ inputs
    def prepare(self, rgb, depth, mask, scale) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop arrays (B, S, S, 3) uint8, (B, S, S), (B, S, S), (B,) -> model inputs.

        Returns ``(x (B, 5, s, s) float, log_scale (B, 1))`` with s = ``input_size``.
        """
        cfg = self.config
        rgb = torch.as_tensor(np.asarray(rgb))
        b = rgb.shape[0]
        expect = (b, cfg.crop_size, cfg.crop_size)
        if tuple(rgb.shape) != expect + (3,):
            raise ValueError(f'rgb crops must be (B, {cfg.crop_size}, {cfg.crop_size}, 3), got '
                             f'{tuple(rgb.shape)}')
        depth = torch.as_tensor(np.asarray(depth, dtype=np.float32))
        mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
        scale = torch.as_tensor(np.asarray(scale, dtype=np.float32)).reshape(-1)
        if tuple(depth.shape) != expect or tuple(mask.shape) != expect or scale.shape[0] != b:
            raise ValueError(f'depth {tuple(depth.shape)}, mask {tuple(mask.shape)} and scale '
                             f'{tuple(scale.shape)} must match {b} crops of {cfg.crop_size}')
        d = torch.clamp(depth / cfg.depth_scale, -3.0, 3.0)
        x = torch.cat([rgb.float().permute(0, 3, 1, 2) / 255.0, d[:, None], mask[:, None]], 1)
        factor = cfg.crop_size // cfg.input_size
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        log_scale = torch.log(torch.clamp(scale, min=1e-3))[:, None]
        return x, log_scale

    # ------------------------------------------------------------------ networks
    def encode(self, x: torch.Tensor, log_scale: torch.Tensor) -> dict:
        """q(category) logits (B, K) and Gaussian (mean, logvar) of shape and pose."""
        h = self.conv(x).flatten(1)
        h = self.trunk(torch.cat([h, log_scale], 1))
        lo = self.config.min_logvar
        s_mu, s_lv = self.head_shape(h).chunk(2, 1)
        p_mu, p_lv = self.head_pose(h).chunk(2, 1)
        return {'logits': self.head_category(h), 'shape_mu': s_mu,
                'shape_logvar': torch.clamp(s_lv, lo, 4.0), 'pose_mu': p_mu,
                'pose_logvar': torch.clamp(p_lv, lo, 4.0)}

    def decode(self, shape: torch.Tensor, pose: torch.Tensor, category: torch.Tensor,
               log_scale: torch.Tensor) -> torch.Tensor:
        """Render crops (B, 5, s, s): RGB in [0, 1], depth (normalised), mask logits."""
        h = self.dec_in(torch.cat([shape, pose, category, log_scale], 1))
        c = self.config.channels[-1]
        out = self.deconv(h.view(-1, c, self.side, self.side))
        return torch.cat([torch.sigmoid(out[:, :3]), 3.0 * torch.tanh(out[:, 3:4] / 3.0),
                          out[:, 4:5]], 1)

    def predict_pose(self, pose: torch.Tensor, move: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transition: (mean, logvar) of the pose code after camera move ``move`` (B, 4)."""
        mu, lv = self.transition(torch.cat([pose, move], 1)).chunk(2, 1)
        return pose + mu, torch.clamp(lv, self.config.min_logvar, 4.0)


# ---------------------------------------------------------------------- inference helpers
def predict_latents(model: ObjectModel, crops: dict, batch: int = 256) -> dict:
    """q(category) and q(shape) of crop arrays (keys rgb, depth, mask, scale), no gradients.

    Returns numpy arrays ``probs`` (B, K), ``shape_mean`` (B, D) and ``shape_var`` (B, D).
    """
    n = len(crops['scale'])
    parts: dict[str, list] = {'probs': [], 'shape_mean': [], 'shape_var': []}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, n, batch):
            x, ls = model.prepare(*(crops[k][i:i + batch] for k in ('rgb', 'depth', 'mask',
                                                                     'scale')))
            q = model.encode(x, ls)
            parts['probs'].append(torch.softmax(q['logits'], 1).numpy())
            parts['shape_mean'].append(q['shape_mu'].numpy())
            parts['shape_var'].append(q['shape_logvar'].exp().numpy())
    model.train(was_training)
    widths = {'probs': model.config.n_categories, 'shape_mean': model.config.shape_dim,
              'shape_var': model.config.shape_dim}
    return {key: np.concatenate(v) if v else np.zeros((0, widths[key]))
            for key, v in parts.items()}


def predict_categories(model: ObjectModel, crops: dict, batch: int = 256) -> np.ndarray:
    """q(category) (B, K) for crop arrays (keys rgb, depth, mask, scale), without gradients."""
    return predict_latents(model, crops, batch)['probs']


def predict_inputs(model: ObjectModel, x: torch.Tensor, log_scale: torch.Tensor,
                   batch: int = 512) -> np.ndarray:
    """q(category) (N, K) for prepared inputs (``prepare`` / ``prepare_dataset``)."""
    out = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model.encode(x[i:i + batch], log_scale[i:i + batch])['logits']
            out.append(torch.softmax(logits, 1).numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.config.n_categories))


def category_accuracy(model: ObjectModel, crops: dict, labels) -> float:
    """Fraction of crops whose most probable category is the label."""
    probs = predict_categories(model, crops)
    return float(np.mean(probs.argmax(1) == np.asarray(labels))) if len(probs) else float('nan')


# ---------------------------------------------------------------------- training
@dataclass(frozen=True)
class LossWeights:
    """Weights of the training loss terms (reconstruction terms are sums over pixels)."""

    recon: float = 0.0         # reconstruction of the anchor from its own codes (0: skipped)
    beta: float = 1.0          # KL of shape and pose to N(0, I)
    category: float = 20.0     # cross-entropy of q(category)
    transition: float = 1.0    # Gaussian NLL of the next pose code
    swap: float = 1.0          # reconstruction with swapped shape codes
    mask: float = 1.0          # cross-entropy of the mask channel


class PairSampler:
    """Seeded sampler of (anchor, other instance of the same category, other view) triples.

    ``instance``, ``view``, ``category`` are per-sample arrays; ``indices`` restricts sampling
    to a subset (e.g. the training split). For each anchor (instance a, view v) it picks an
    instance b of the same category (b != a where possible) that was rendered at v and at
    another view w; it falls back to b = a, and to w = v when an instance has one view.
    """

    def __init__(self, instance, view, category, indices=None):
        instance, view = np.asarray(instance), np.asarray(view)
        category = np.asarray(category)
        self.indices = np.arange(len(instance)) if indices is None else np.asarray(indices)
        if self.indices.size == 0:
            raise ValueError('no samples to train on')
        self.instance, self.view, self.category = instance, view, category
        self.lookup: dict[tuple[int, int], int] = {
            (int(instance[i]), int(view[i])): int(i) for i in self.indices}
        self.views_of: dict[int, np.ndarray] = {}
        self.instances_of: dict[int, np.ndarray] = {}
        for i in self.indices:
            self.views_of.setdefault(int(instance[i]), []).append(int(view[i]))
        self.views_of = {k: np.asarray(sorted(v)) for k, v in self.views_of.items()}
        for iid in self.views_of:
            c = int(category[self.lookup[(iid, int(self.views_of[iid][0]))]])
            self.instances_of.setdefault(c, []).append(iid)
        self.instances_of = {k: np.asarray(sorted(v)) for k, v in self.instances_of.items()}

    def sample(self, anchors, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sample indices ``(x_b(v), x_b(w))`` for each anchor sample index x_a(v)."""
        same_view, other_view = [], []
        for s in np.asarray(anchors):
            a, v = int(self.instance[s]), int(self.view[s])
            peers = self.instances_of[int(self.category[s])]
            b = a
            if peers.size > 1:
                cand = peers[peers != a]
                b = int(cand[rng.integers(cand.size)])
                if (b, v) not in self.lookup:
                    b = a
            views = self.views_of[b]
            others = views[views != v]
            w = int(others[rng.integers(others.size)]) if others.size else v
            same_view.append(self.lookup[(b, v)])
            other_view.append(self.lookup[(b, w)])
        return np.asarray(same_view), np.asarray(other_view)


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, exp(logvar)) || N(0, I)] summed over the last axis."""
    return 0.5 * torch.sum(mu ** 2 + logvar.exp() - 1.0 - logvar, dim=1)


def _reconstruction(pred: torch.Tensor, target: torch.Tensor, mask_weight: float
                    ) -> torch.Tensor:
    """Per-sample reconstruction loss: squared error on RGB-D, cross-entropy on the mask."""
    se = ((pred[:, :4] - target[:, :4]) ** 2).sum((1, 2, 3))
    ce = F.binary_cross_entropy_with_logits(pred[:, 4], target[:, 4], reduction='none')
    return se + mask_weight * ce.sum((1, 2))


def training_losses(model: ObjectModel, batch: dict, weights: LossWeights,
                    generator: torch.Generator | None = None) -> dict:
    """Loss terms (scalars) of one batch; ``loss`` is the total to minimise.

    ``batch`` holds model inputs for the anchor x_a(v) (``x``, ``log_scale``), the other
    instance at the same viewpoint x_b(v) (``x_bv``, ``ls_bv``), the other instance at another
    viewpoint x_b(w) (``x_bw``, ``ls_bw``), ``move`` (B, 4) from w to v and ``category`` (B,).
    """
    k = model.config.n_categories
    onehot = F.one_hot(batch['category'], k).float()

    def sample(mu, logvar):
        eps = torch.randn(mu.shape, generator=generator)
        return mu + eps * (0.5 * logvar).exp()

    q_a = model.encode(batch['x'], batch['log_scale'])
    q_b = model.encode(batch['x_bw'], batch['ls_bw'])
    shape_a = sample(q_a['shape_mu'], q_a['shape_logvar']) if weights.recon > 0.0 else None
    pose_a = sample(q_a['pose_mu'], q_a['pose_logvar'])
    shape_b = sample(q_b['shape_mu'], q_b['shape_logvar'])
    pose_b = sample(q_b['pose_mu'], q_b['pose_logvar'])
    recon = torch.zeros(())
    if weights.recon > 0.0:
        recon = _reconstruction(model.decode(shape_a, pose_a, onehot, batch['log_scale']),
                                batch['x'], weights.mask).mean()
    swap = _reconstruction(model.decode(shape_b, pose_a, onehot, batch['ls_bv']),
                           batch['x_bv'], weights.mask)
    kl = _kl(q_a['shape_mu'], q_a['shape_logvar']) + _kl(q_a['pose_mu'], q_a['pose_logvar']) \
        + _kl(q_b['shape_mu'], q_b['shape_logvar']) + _kl(q_b['pose_mu'], q_b['pose_logvar'])
    ce = F.cross_entropy(q_a['logits'], batch['category']) \
        + F.cross_entropy(q_b['logits'], batch['category'])
    t_mu, t_lv = model.predict_pose(pose_b, batch['move'])
    target = q_a['pose_mu'].detach()
    nll = 0.5 * torch.sum((target - t_mu) ** 2 / t_lv.exp() + t_lv + math.log(2 * math.pi), 1)
    loss = (weights.recon * recon + weights.swap * swap.mean() + weights.beta * 0.5 * kl.mean()
            + weights.category * 0.5 * ce + weights.transition * nll.mean())
    acc = (q_a['logits'].argmax(1) == batch['category']).float().mean()
    return {'loss': loss, 'recon': recon.detach(), 'swap': swap.mean().detach(),
            'kl': kl.mean().detach(), 'ce': ce.detach(), 'transition': nll.mean().detach(),
            'accuracy': acc.detach()}


def prepare_dataset(model: ObjectModel, arrays: dict, chunk: int = 1024) -> dict:
    """Model inputs of every sample of a dataset's arrays, computed once for training.

    Returns tensors ``x`` (N, 5, s, s), ``log_scale`` (N, 1), ``view`` (N, 3) (azimuth,
    elevation, range) and ``category`` (N,).
    """
    xs, lss = [], []
    for i in range(0, len(arrays['scale']), chunk):
        x, ls = model.prepare(*(arrays[k][i:i + chunk] for k in ('rgb', 'depth', 'mask',
                                                                  'scale')))
        xs.append(x)
        lss.append(ls)
    view = np.stack([arrays[k] for k in ('azimuth', 'elevation', 'range')], 1)
    return {'x': torch.cat(xs), 'log_scale': torch.cat(lss), 'view': view,
            'category': torch.as_tensor(np.asarray(arrays['category']).astype(np.int64)),
            'arrays': arrays}


def occlude_crop(rgb, depth, mask, scale: float, rng: np.random.Generator,
                 keep=(0.3, 0.8)) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A crop of the part of an object on one side of a random line (augmentation).

    Segmentation in cluttered scenes splits objects (a bowl's rim, a bottle's neck) and
    occlusion hides parts of them: the crop is cut again around the kept part, as perception
    would, keeping a fraction of the object's pixels drawn from ``keep``. Returns the input
    unchanged when the object has too few pixels.
    """
    size = mask.shape[0]
    rows, cols = np.nonzero(mask)
    if rows.size < 16:
        return rgb, depth, mask, scale
    theta = rng.uniform(0.0, 2.0 * np.pi)
    proj = (rows - rows.mean()) * np.sin(theta) + (cols - cols.mean()) * np.cos(theta)
    cut = np.quantile(proj, rng.uniform(*keep))
    kept = np.zeros_like(mask, dtype=bool)
    kept[rows[proj <= cut], cols[proj <= cut]] = True
    if kept.sum() < 8:
        return rgb, depth, mask, scale
    # in crop pixels at 1 m, the crop's metric size gives the focal length
    return crop_object(rgb, depth.astype(np.float32) + 1.0, kept, size / scale, size)


def make_batch(inputs: dict, anchors, sampler: PairSampler, rng: np.random.Generator,
               occlude: float = 0.0, model: ObjectModel | None = None) -> dict:
    """The batch of ``training_losses`` for anchor sample indices (``prepare_dataset``).

    With ``occlude`` > 0 (needs ``model`` and ``inputs['arrays']``) that fraction of the
    encoder inputs (the anchors and x_b(w)) are replaced by ``occlude_crop`` parts; the
    rendered target x_b(v) stays whole.
    """
    anchors = np.asarray(anchors)
    bv, bw = sampler.sample(anchors, rng)
    a, v, w = (torch.as_tensor(i) for i in (anchors, bv, bw))
    move = camera_move(inputs['view'][bw], inputs['view'][anchors])
    batch = {'x': inputs['x'][a], 'log_scale': inputs['log_scale'][a],
             'x_bv': inputs['x'][v], 'ls_bv': inputs['log_scale'][v],
             'x_bw': inputs['x'][w], 'ls_bw': inputs['log_scale'][w],
             'move': torch.as_tensor(move), 'category': inputs['category'][a]}
    if occlude > 0.0:
        arrays = inputs['arrays']
        for key, ls_key, idx in (('x', 'log_scale', anchors), ('x_bw', 'ls_bw', bw)):
            rows = np.flatnonzero(rng.uniform(size=idx.size) < occlude)
            if rows.size == 0:
                continue
            crops = [occlude_crop(arrays['rgb'][i], arrays['depth'][i], arrays['mask'][i],
                                  float(arrays['scale'][i]), rng) for i in idx[rows]]
            x, ls = model.prepare(*(np.stack([c[j] for c in crops]) for j in range(3)),
                                  [c[3] for c in crops])
            batch[key], batch[ls_key] = batch[key].clone(), batch[ls_key].clone()
            batch[key][rows], batch[ls_key][rows] = x, ls
    return batch


def train_epoch(model: ObjectModel, optimizer: torch.optim.Optimizer, inputs: dict,
                sampler: PairSampler, rng: np.random.Generator, generator: torch.Generator,
                batch_size: int = 64, weights: LossWeights | None = None,
                max_steps: int | None = None, on_step=None, occlude: float = 0.0) -> dict:
    """One pass over the sampler's anchors in random order; return the mean loss terms.

    ``occlude``: fraction of encoder inputs cut to a part of the object (``make_batch``).

    ``on_step(step, terms)`` (optional) is called after each optimiser step.
    """
    weights = weights or LossWeights()
    model.train()
    order = rng.permutation(sampler.indices)
    sums: dict[str, float] = {}
    steps = 0
    for start in range(0, order.size, batch_size):
        if max_steps is not None and steps >= max_steps:
            break
        batch = make_batch(inputs, order[start:start + batch_size], sampler, rng, occlude,
                           model)
        terms = training_losses(model, batch, weights, generator)
        optimizer.zero_grad(set_to_none=True)
        terms['loss'].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
        steps += 1
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        if on_step is not None:
            on_step(steps, terms)
    return {key: value / max(steps, 1) for key, value in sums.items()} | {'steps': steps}


# ---------------------------------------------------------------------- checkpoints
@dataclass
class CheckpointInfo:
    """What ``load_checkpoint`` read besides the weights."""

    path: Path
    meta: dict = field(default_factory=dict)


def save_checkpoint(path, model: ObjectModel, meta: dict | None = None) -> None:
    """Write weights, configuration and plain-data ``meta`` (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    data = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION,
            'config': {**asdict(model.config), 'categories': list(model.config.categories),
                       'channels': list(model.config.channels)},
            'state_dict': state, 'meta': dict(meta or {})}
    tmp = path.with_name(path.name + '.tmp')
    torch.save(data, tmp)
    tmp.replace(path)


def load_checkpoint(path, categories=None) -> tuple[ObjectModel, CheckpointInfo]:
    """Load a checkpoint written by ``save_checkpoint``; the model is in eval mode.

    With ``categories`` the checkpoint's categories must equal them (in order). Raises
    ``CheckpointError`` naming the file for a missing, unreadable, corrupt, wrong-format,
    wrong-version or mismatched file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: object model checkpoint not found')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on corrupt files
        # torch's own message is long and suggests weights_only=False: keep only its kind
        raise CheckpointError(f'{path}: not a readable weights-only torch file (corrupt, '
                              f'truncated or not a checkpoint; torch.load raised '
                              f'{type(exc).__name__})') from None
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        found = data.get('format') if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f'{path}: not an object model checkpoint (format {found!r}, '
                              f'expected {CHECKPOINT_FORMAT!r})')
    if data.get('version') != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')!r}, this code "
                              f'reads version {CHECKPOINT_VERSION}')
    try:
        config = ObjectModelConfig(**data['config'])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{path}: bad model configuration: {exc}') from None
    if categories is not None and tuple(categories) != config.categories:
        raise CheckpointError(f'{path}: trained for categories {list(config.categories)}, '
                              f'expected {list(categories)}')
    model = ObjectModel(config)
    state = data.get('state_dict')
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: no state_dict')
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f'{path}: weights do not match the configuration: '
                              f'{" ".join(first[:3])}') from None
    model.eval()
    return model, CheckpointInfo(path, dict(data.get('meta') or {}))


# ---------------------------------------------------------------------- perception
class ObjectClassifier:
    """q(category) for segmented objects of an RGB-D frame, from a loaded object model.

    ``names`` are the categories the caller tracks (in its order); categories the model does
    not know get probability 0 (``scene_beliefs.classifier_likelihood`` then gives them only
    its floor). Inference runs on ``threads`` torch threads (0: torch's setting): a batch of a
    few 32x32 crops gains nothing from more, and on a loaded machine two OpenMP threads
    spin-waiting for each other made it 50x slower (415 ms instead of 7 ms for 5 crops).
    """

    def __init__(self, model: ObjectModel, names, meta: dict | None = None, threads: int = 1):
        self.model = model.eval()
        self.names = tuple(names)
        self.meta = dict(meta or {})
        self.threads = int(threads)
        known = {c: i for i, c in enumerate(model.config.categories)}
        self.columns = np.array([known.get(n, -1) for n in self.names])

    @classmethod
    def from_file(cls, path, names, threads: int = 1) -> ObjectClassifier:
        """Load weights (empty path or None: the shipped default); CheckpointError if bad."""
        model, info = load_checkpoint(path or default_weights_path())
        return cls(model, names, info.meta, threads)

    def classify(self, rgb, depth, objects, focal: float, ups=None) -> np.ndarray:
        """Posteriors (N, len(names)) for N objects given as pixel masks or flat indices.

        ``ups`` (optional, one per object): the image direction of the world's up at each
        object (``object_crops.image_up``), for gravity-aligned crops as in training. Objects
        whose crop cannot be cut (no valid depth) get an all-zero row.
        """
        return self.encode(rgb, depth, objects, focal, ups)['probs']

    def encode(self, rgb, depth, objects, focal: float, ups=None) -> dict:
        """q(category) and q(shape) of N objects (pixel masks or flat indices), one batch.

        Returns ``probs`` (N, len(names)) as ``classify``, and ``shape_mean`` / ``shape_var``
        (N, D) of the shape latent; objects whose crop cannot be cut get a zero ``probs`` row
        and NaN shape rows.
        """
        size = self.model.config.crop_size
        dim = self.model.config.shape_dim
        out = np.zeros((len(objects), len(self.names)))
        shape_mean = np.full((len(objects), dim), np.nan)
        shape_var = np.full((len(objects), dim), np.nan)
        result = {'probs': out, 'shape_mean': shape_mean, 'shape_var': shape_var}
        crops, rows = [], []
        ups = [None] * len(objects) if ups is None else list(ups)
        for i, (pixels, up) in enumerate(zip(objects, ups)):
            try:
                crops.append(crop_object(rgb, depth, pixels, focal, size, up=up))
                rows.append(i)
            except ValueError:
                continue
        if not crops:
            return result
        before = torch.get_num_threads()
        if self.threads > 0 and self.threads != before:
            torch.set_num_threads(self.threads)
        try:
            q = predict_latents(self.model, crop_arrays(crops))
        finally:
            if self.threads > 0 and self.threads != before:
                torch.set_num_threads(before)
        known = self.columns >= 0
        out[np.ix_(rows, np.flatnonzero(known))] = q['probs'][:, self.columns[known]]
        shape_mean[rows] = q['shape_mean']
        shape_var[rows] = q['shape_var']
        return result

    def observe(self, rgb, depth, intrinsics, t_map_cam, clusters, temperature: float = 0.5,
                full_pixels: float = 150.0, floor: float = 0.02,
                height_temperature: float = 0.5) -> dict:
        """Category likelihoods and shape codes of segmented clusters, ready for fusion.

        Gravity-aligned crops of every cluster in one batch, then q(category) tempered (less
        for clusters seen small) and floored (scene_beliefs.classifier_likelihood), times the
        likelihood of each cluster's measured height (its vertical extent) under the
        categories' height ranges ``CATEGORY_HEIGHTS`` (scene_beliefs.height_likelihood,
        tempered by ``height_temperature``, 0: not used). Returns ``likelihoods``
        (N, len(names)) and ``shape_mean`` / ``shape_var`` (N, D) of q(shape) (NaN rows for
        clusters without a crop).
        """
        from embodied_aif.models.object_crops import image_up
        from embodied_aif.models.scene_beliefs import (
            classifier_likelihood,
            height_likelihood,
            size_temperature,
        )

        i = intrinsics
        ups = [image_up(t_map_cam, c.center, i.fx, i.fy, i.cx, i.cy) for c in clusters]
        q = self.encode(rgb, depth, [c.pixel_indices for c in clusters], i.fx, ups)
        temps = size_temperature([c.n_points for c in clusters], temperature, full_pixels)
        lik = classifier_likelihood(q['probs'], temps, floor)
        if height_temperature > 0.0 and clusters:
            lik = lik * height_likelihood([c.extent[2] for c in clusters],
                                          [CATEGORY_HEIGHTS.get(n) for n in self.names],
                                          temperature=height_temperature)
            lik = lik / lik.sum(axis=1, keepdims=True)
        return {'likelihoods': lik, 'shape_mean': q['shape_mean'], 'shape_var': q['shape_var']}

    def likelihoods(self, rgb, depth, intrinsics, t_map_cam, clusters, temperature: float = 0.5,
                    full_pixels: float = 150.0, floor: float = 0.02,
                    height_temperature: float = 0.5) -> np.ndarray:
        """Category likelihoods (N, len(names)) of segmented clusters (``observe``'s first)."""
        return self.observe(rgb, depth, intrinsics, t_map_cam, clusters, temperature,
                            full_pixels, floor, height_temperature)['likelihoods']
