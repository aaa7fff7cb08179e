"""Training loop of the world model: sequence batches, Adam, progress, checkpoints, resume.

Batches are drawn by a generator seeded from (seed, step), so a run resumed from a checkpoint
at step k draws exactly the batches an uninterrupted run would have drawn from step k on.
The resumable training state (weights, optimizer, step) lives next to the output file as
``<out>.train.pt``; the final ``<out>`` holds weights and config only (small, for shipping).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from embodied_aif.models.world_model import (
    CheckpointError,
    WorldModel,
    WorldModelConfig,
    loss_terms,
    read_checkpoint,
    resize_images,
    save_checkpoint,
)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    steps: int = 1000
    batch: int = 16
    seq_len: int = 20
    lr: float = 6e-4
    grad_clip: float = 100.0
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 200

    def __post_init__(self):
        for name in ('steps', 'batch', 'seq_len', 'log_every', 'checkpoint_every'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        if self.batch < 2:
            raise ValueError('batch must be >= 2 (contrastive negatives come from the batch)')
        if not self.lr > 0:
            raise ValueError(f'lr must be > 0, got {self.lr}')


@dataclass
class Sequences:
    """Episodes held in memory: images (E, T, S, S, 3) uint8, actions (E, T, A) float32.

    ``retextured`` (optional, like ``images``): each step seen again with random wall and
    floor looks (``images_retextured`` of the trajectory data); None for data without them.
    """

    images: np.ndarray
    actions: np.ndarray
    retextured: np.ndarray | None = None

    def __post_init__(self):
        if self.images.ndim != 5 or self.images.shape[-1] != 3:
            raise ValueError(f'images must be (E, T, H, W, 3), got {self.images.shape}')
        if self.actions.shape[:2] != self.images.shape[:2]:
            raise ValueError(f'actions {self.actions.shape} do not match images '
                             f'{self.images.shape}')
        if self.retextured is not None and self.retextured.shape != self.images.shape:
            raise ValueError(f'retextured images {self.retextured.shape} do not match images '
                             f'{self.images.shape}')

    @classmethod
    def from_trajectories(cls, data: dict, image_size: int) -> Sequences:
        """From :func:`embodied_aif.sim.trajectories.load_trajectories` output."""
        alt = data.get('images_retextured')
        return cls(resize_images(data['images'], image_size),
                   data['actions'].astype(np.float32),
                   None if alt is None else resize_images(alt, image_size))

    def sample(self, rng: np.random.Generator, batch: int, length: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Random windows: images (B, L, ...), previous actions (B, L, A) (zero at t = 0)."""
        images, prev, _ = self.sample_views(rng, batch, length)
        return images, prev

    def sample_views(self, rng: np.random.Generator, batch: int, length: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Like :meth:`sample`, plus the same windows' retextured images (or None)."""
        e, t = self.images.shape[:2]
        if length > t:
            raise ValueError(f'seq_len {length} exceeds the episode length {t}')
        eps = rng.integers(e, size=batch)
        starts = rng.integers(t - length + 1, size=batch)
        idx = starts[:, None] + np.arange(length)[None]
        images = self.images[eps[:, None], idx]
        prev = np.zeros((batch, length, self.actions.shape[-1]), np.float32)
        shifted = idx - 1
        ok = shifted >= 0
        prev[ok] = self.actions[np.broadcast_to(eps[:, None], idx.shape)[ok], shifted[ok]]
        alt = None if self.retextured is None else self.retextured[eps[:, None], idx]
        return images, prev, alt


def train_state_path(out: str | Path) -> Path:
    """Where the resumable training state of `out` lives."""
    out = Path(out)
    return out.with_name(out.name + '.train.pt')


def train(model_config: WorldModelConfig, train_config: TrainConfig, data: Sequences,
          out: str | Path, resume: bool = False,
          progress: Callable[[str], None] | None = None,
          max_seconds: float | None = None) -> dict:
    """Train, checkpointing to ``<out>.train.pt``; write final weights to `out`.

    Returns a summary (steps, final losses, seconds per step). With ``resume`` the training
    state must exist and match `model_config`, else CheckpointError.
    """
    out = Path(out)
    state_file = train_state_path(out)
    torch.manual_seed(train_config.seed)
    model = WorldModel(model_config)
    opt = torch.optim.Adam(model.parameters(), lr=train_config.lr, eps=1e-6)
    step = 0
    history: list = []
    if resume:
        payload = read_checkpoint(state_file)
        if payload['config'] != model_config:
            raise CheckpointError(f'{state_file}: stored config differs from the requested '
                                  f'one; resume with the same --objective/--size')
        model.load_state_dict(payload['state_dict'])
        if 'optimizer' in payload:
            opt.load_state_dict(payload['optimizer'])
        step = int(payload['extra'].get('step', 0))
        history = list(payload['extra'].get('history', []))
        if progress:
            progress(f'resumed from {state_file} at step {step}')
    model.train()
    start = time.perf_counter()
    window: dict = {}
    t_window = time.perf_counter()
    first_step = step
    while step < train_config.steps:
        rng = np.random.default_rng([train_config.seed, step])
        gen = torch.Generator().manual_seed(train_config.seed * 1_000_003 + step)
        images, prev, alt = data.sample_views(rng, train_config.batch, train_config.seq_len)
        terms = loss_terms(model, images, prev, gen, retextured=alt)
        opt.zero_grad(set_to_none=True)
        terms['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        opt.step()
        step += 1
        for k, v in terms.items():
            window.setdefault(k, []).append(float(v.detach()))
        if step % train_config.log_every == 0 or step == train_config.steps:
            means = {k: float(np.mean(v)) for k, v in window.items()}
            dt = (time.perf_counter() - t_window) / len(window['loss'])
            history.append({'step': step, **{k: round(v, 4) for k, v in means.items()}})
            if progress:
                terms_text = ' '.join(f'{k} {v:.3f}' for k, v in means.items())
                progress(f'step {step}/{train_config.steps} {terms_text} '
                         f'({dt:.2f} s/step)')
            window, t_window = {}, time.perf_counter()
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if step % train_config.checkpoint_every == 0 or step == train_config.steps \
                or out_of_time:
            save_checkpoint(state_file, model, {'step': step, 'history': history,
                                                'train_config': _plain(train_config)}, opt)
        if out_of_time:
            if progress:
                progress(f'stopped at step {step}: time limit; continue with --resume')
            break
    elapsed = time.perf_counter() - start
    finished = step >= train_config.steps
    if finished:
        save_checkpoint(out, model, {'step': step, 'history': history[-20:],
                                     'train_config': _plain(train_config)})
    last = history[-1] if history else {}
    return {'steps': step, 'finished': finished, 'out': str(out) if finished else None,
            'train_state': str(state_file), 'last': last,
            's_per_step': elapsed / max(step - first_step, 1)}


def _plain(config) -> dict:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
            for k, v in config.__dict__.items()}
