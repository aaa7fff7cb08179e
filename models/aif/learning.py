"""Dirichlet learning of the likelihood A, the transitions B and the initial-state prior D.

Each update adds the expected sufficient statistics (outer products of the observed outcome and
the posterior beliefs) to the counts, scaled by a learning rate, only where the model allows
non-zero probability (structural zeros stay zero). The expected model is the normalised counts.
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from embodied_aif.models.aif.inference import check_observation
from embodied_aif.models.aif.maths import normalise
from embodied_aif.models.aif.model import GenerativeModel, check_beliefs


def _check_lr(lr: float) -> float:
    if not lr >= 0.0:
        raise ValueError(f'learning rate must be >= 0, got {lr}')
    return float(lr)


def _joint(qs: list[np.ndarray], factors: list[int]) -> np.ndarray:
    joint = qs[factors[0]]
    for f in factors[1:]:
        joint = np.multiply.outer(joint, qs[f])
    return joint


def update_pA(model: GenerativeModel, obs, qs: Sequence[np.ndarray], lr: float = 1.0,
              modalities: Sequence[int] | None = None) -> list[np.ndarray]:
    """Return new A counts: pA[m][o_m, s...] += lr * q(s...) where A[m] > 0."""
    if model.pA is None:
        raise ValueError('update_pA: the model has no pA counts')
    lr = _check_lr(lr)
    obs = check_observation(model, obs)
    qs = check_beliefs(qs, model.num_states)
    mods = range(model.num_modalities) if modalities is None else modalities
    new = [p.copy() for p in model.pA]
    for m in mods:
        delta = lr * _joint(qs, model.A_factor_list[m]) * (model.A[m][obs[m]] > 0)
        new[m][obs[m]] += delta
    return new


def update_pB(model: GenerativeModel, action, qs: Sequence[np.ndarray],
              qs_prev: Sequence[np.ndarray], lr: float = 1.0,
              factors: Sequence[int] | None = None) -> list[np.ndarray]:
    """Return new B counts: pB[f][s', s, u_f] += lr * q(s') q_prev(s) where B[f] > 0."""
    if model.pB is None:
        raise ValueError('update_pB: the model has no pB counts')
    lr = _check_lr(lr)
    action = np.atleast_1d(np.asarray(action)).astype(int)
    if action.shape != (model.num_factors,) or np.any(action < 0) or \
            np.any(action >= np.array(model.num_controls)):
        raise ValueError(f'action {action.tolist()} must give one valid control per factor '
                         f'(controls {model.num_controls})')
    qs = check_beliefs(qs, model.num_states)
    qs_prev = check_beliefs(qs_prev, model.num_states, 'qs_prev')
    facs = range(model.num_factors) if factors is None else factors
    new = [p.copy() for p in model.pB]
    for f in facs:
        u = action[f]
        new[f][:, :, u] += lr * np.outer(qs[f], qs_prev[f]) * (model.B[f][:, :, u] > 0)
    return new


def update_pD(pD: Sequence[np.ndarray], qs: Sequence[np.ndarray],
              lr: float = 1.0) -> list[np.ndarray]:
    """Return new initial-state counts: pD[f] += lr * q(s_f) where pD[f] > 0."""
    lr = _check_lr(lr)
    pD = [np.asarray(p, dtype=float) for p in pD]
    qs = check_beliefs(qs, [p.shape[0] for p in pD])
    return [p + lr * q * (p > 0) for p, q in zip(pD, qs)]


def with_counts(model: GenerativeModel, pA: Sequence[np.ndarray] | None = None,
                pB: Sequence[np.ndarray] | None = None) -> GenerativeModel:
    """Return a copy of ``model`` whose A / B are the expectations of the given counts."""
    changes = {}
    if pA is not None:
        changes.update(pA=list(pA), A=[normalise(p) for p in pA])
    if pB is not None:
        changes.update(pB=list(pB), B=[normalise(p) for p in pB])
    return dataclasses.replace(model, **changes)


__all__ = ['update_pA', 'update_pB', 'update_pD', 'with_counts']
