"""Discrete POMDP generative model: likelihoods A, transitions B, preferences C, priors D.

Shapes (factorised hidden states, several observation modalities):

- ``A[m]``: ``(num_obs[m], *num_states[f] for f in A_factor_list[m])``, columns sum to 1;
- ``B[f]``: ``(num_states[f], num_states[f], num_controls[f])``, ``B[f][s', s, u]``;
- ``C[m]``: ``(num_obs[m],)`` relative log-preferences (turned into P(o | C) by a softmax);
- ``D[f]``: ``(num_states[f],)`` prior over the initial state;
- ``pA`` / ``pB``: optional Dirichlet counts with the shapes of ``A`` / ``B``.

The model pre-computes what planning needs (per-action transition operators, sparse where the
matrices are sparse; flattened likelihoods; their conditional entropies; log-preferences), so
every policy evaluation reuses them. Make a changed model with :func:`dataclasses.replace`.
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.aif.maths import (
    SUPPORT,
    as_operator,
    column_sums_of,
    dirichlet_novelty,
    log_stable,
    softmax,
)

_NORM_TOL = 1e-6


def _as_list(arrays, name: str) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray) and arrays.dtype != object:
        arrays = [arrays]
    try:
        return [np.asarray(a, dtype=float) for a in arrays]
    except TypeError:
        raise ValueError(f'{name} must be a sequence of arrays, got {type(arrays).__name__}') \
            from None


def _check_columns(array: np.ndarray, name: str) -> None:
    sums = array.sum(axis=0)
    if np.any(array < 0) or not np.allclose(sums, 1.0, atol=_NORM_TOL):
        raise ValueError(f'{name} with shape {array.shape} is not a conditional distribution over '
                         f'its leading axis: column sums range {sums.min():.6g}..{sums.max():.6g}'
                         f', min entry {array.min():.6g}')


@dataclass
class GenerativeModel:
    """A factorised discrete POMDP; validates shapes and normalisation on construction."""

    A: Sequence[np.ndarray]
    B: Sequence[np.ndarray]
    C: Sequence[np.ndarray] | None = None
    D: Sequence[np.ndarray] | None = None
    A_factor_list: Sequence[Sequence[int]] | None = None
    pA: Sequence[np.ndarray] | None = None
    pB: Sequence[np.ndarray] | None = None
    sparse_threshold: float = 0.1

    num_obs: list[int] = field(init=False)
    num_states: list[int] = field(init=False)
    num_controls: list[int] = field(init=False)
    A_modality_list: list[list[int]] = field(init=False, repr=False)
    B_ops: list[list] = field(init=False, repr=False)
    A_flat: list[np.ndarray] = field(init=False, repr=False)
    A_ops: list = field(init=False, repr=False)
    A_neg_entropy: list[np.ndarray] = field(init=False, repr=False)
    log_C: list[np.ndarray] = field(init=False, repr=False)
    novelty_A_ops: list | None = field(init=False, repr=False)
    novelty_B_ops: list[list] | None = field(init=False, repr=False)

    def __post_init__(self):
        self.A = _as_list(self.A, 'A')
        self.B = _as_list(self.B, 'B')
        if not self.A or not self.B:
            raise ValueError(f'need at least one modality and one factor, got {len(self.A)} A '
                             f'and {len(self.B)} B arrays')
        for f, b in enumerate(self.B):
            if b.ndim != 3 or b.shape[0] != b.shape[1]:
                raise ValueError(f'B[{f}] must have shape (S, S, U), got {b.shape}')
            _check_columns(b, f'B[{f}]')
        self.num_states = [b.shape[0] for b in self.B]
        self.num_controls = [b.shape[2] for b in self.B]
        n_factors = len(self.B)
        if self.A_factor_list is None:
            self.A_factor_list = [list(range(n_factors)) for _ in self.A]
        self.A_factor_list = [[int(f) for f in fl] for fl in self.A_factor_list]
        if len(self.A_factor_list) != len(self.A):
            raise ValueError(f'A_factor_list has {len(self.A_factor_list)} entries for '
                             f'{len(self.A)} modalities')
        for m, (a, fl) in enumerate(zip(self.A, self.A_factor_list)):
            if not fl or any(f < 0 or f >= n_factors for f in fl) or len(set(fl)) != len(fl):
                raise ValueError(f'A_factor_list[{m}] = {fl} must list distinct factor indices '
                                 f'in 0..{n_factors - 1}')
            want = tuple(self.num_states[f] for f in fl)
            if a.ndim != 1 + len(fl) or a.shape[1:] != want:
                raise ValueError(f'A[{m}] has shape {a.shape}; with factors {fl} it must be '
                                 f'(num_obs, {", ".join(map(str, want))})')
            _check_columns(a, f'A[{m}]')
        self.num_obs = [a.shape[0] for a in self.A]
        self.A_modality_list = [[m for m, fl in enumerate(self.A_factor_list) if f in fl]
                                for f in range(n_factors)]
        self.C = ([np.zeros(n) for n in self.num_obs] if self.C is None
                  else _as_list(self.C, 'C'))
        if [c.shape for c in self.C] != [(n,) for n in self.num_obs]:
            raise ValueError(f'C shapes {[c.shape for c in self.C]} must be '
                             f'{[(n,) for n in self.num_obs]}')
        self.D = ([np.full(n, 1.0 / n) for n in self.num_states] if self.D is None
                  else _as_list(self.D, 'D'))
        if [d.shape for d in self.D] != [(n,) for n in self.num_states]:
            raise ValueError(f'D shapes {[d.shape for d in self.D]} must be '
                             f'{[(n,) for n in self.num_states]}')
        for f, d in enumerate(self.D):
            _check_columns(d, f'D[{f}]')
        if self.pA is not None:
            self.pA = _as_list(self.pA, 'pA')
            if [p.shape for p in self.pA] != [a.shape for a in self.A] or \
                    any(np.any(p < 0) for p in self.pA):
                raise ValueError(f'pA shapes {[p.shape for p in self.pA]} must equal A shapes '
                                 f'{[a.shape for a in self.A]} with non-negative counts')
        if self.pB is not None:
            self.pB = _as_list(self.pB, 'pB')
            if [p.shape for p in self.pB] != [b.shape for b in self.B] or \
                    any(np.any(p < 0) for p in self.pB):
                raise ValueError(f'pB shapes {[p.shape for p in self.pB]} must equal B shapes '
                                 f'{[b.shape for b in self.B]} with non-negative counts')
        if not 0.0 <= self.sparse_threshold <= 1.0:
            raise ValueError(f'sparse_threshold must be in [0, 1], got {self.sparse_threshold}')
        self._precompute()

    def _precompute(self) -> None:
        thr = self.sparse_threshold
        self.B_ops = [[as_operator(b[:, :, u], thr) for u in range(b.shape[2])] for b in self.B]
        self.A_flat = [a.reshape(a.shape[0], -1) for a in self.A]
        self.A_ops = [as_operator(a, thr) for a in self.A_flat]
        # sum_o A log(A + SUPPORT): minus the conditional entropy of o given s (SPM's epsilon)
        self.A_neg_entropy = [column_sums_of(a, lambda x: x * np.log(x + SUPPORT))
                              for a in self.A_flat]
        self.log_C = [log_stable(softmax(c)) for c in self.C]
        self.novelty_A_ops = None if self.pA is None else [
            as_operator(dirichlet_novelty(p).reshape(p.shape[0], -1), thr) for p in self.pA]
        self.novelty_B_ops = None
        if self.pB is not None:
            self.novelty_B_ops = []
            for p in self.pB:
                w = dirichlet_novelty(p)
                self.novelty_B_ops.append([as_operator(w[:, :, u], thr)
                                           for u in range(w.shape[2])])

    @property
    def num_factors(self) -> int:
        """Number of hidden-state factors."""
        return len(self.B)

    @property
    def num_modalities(self) -> int:
        """Number of observation modalities."""
        return len(self.A)


def uniform_beliefs(num_states: Sequence[int]) -> list[np.ndarray]:
    """Return flat categorical beliefs, one per factor."""
    return [np.full(int(n), 1.0 / int(n)) for n in num_states]


def check_beliefs(qs: Sequence[np.ndarray], num_states: Sequence[int], name: str = 'qs') -> list:
    """Return ``qs`` as float arrays after checking one normalised vector per factor."""
    qs = _as_list(qs, name)
    if [q.shape for q in qs] != [(n,) for n in num_states]:
        raise ValueError(f'{name} shapes {[q.shape for q in qs]} must be '
                         f'{[(n,) for n in num_states]}')
    for f, q in enumerate(qs):
        _check_columns(q, f'{name}[{f}]')
    return qs


__all__ = ['GenerativeModel', 'check_beliefs', 'uniform_beliefs', 'SUPPORT']
