"""Categorical state inference over factorised hidden states (mean-field fixed-point iteration).

With one hidden-state factor the posterior is exact: q(s) = softmax(ln P(o | s) + ln P(s)).
With several factors every marginal is updated from the expected log-likelihood under the other
marginals (all factors at once from the previous iterate), until the variational free energy
changes by less than ``df_tol`` or ``num_iter`` sweeps are done.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embodied_aif.models.aif.maths import log_stable, softmax
from embodied_aif.models.aif.model import GenerativeModel, check_beliefs, uniform_beliefs


def check_observation(model: GenerativeModel, obs) -> list[int]:
    """Return ``obs`` (an int for one modality, or one int per modality) as a list of indices."""
    if np.isscalar(obs):
        obs = [obs]
    obs = list(obs)
    if len(obs) != model.num_modalities:
        raise ValueError(f'observation {obs} has {len(obs)} entries for '
                         f'{model.num_modalities} modalities')
    out = []
    for m, o in enumerate(obs):
        if isinstance(o, (bool, np.bool_)) or not float(o).is_integer() or \
                not 0 <= int(o) < model.num_obs[m]:
            raise ValueError(f'observation {o!r} of modality {m} must be an integer in '
                             f'0..{model.num_obs[m] - 1}')
        out.append(int(o))
    return out


def log_likelihoods(model: GenerativeModel, obs) -> list[np.ndarray]:
    """Return ln P(o_m | s) per modality, shaped like the factors in ``A_factor_list[m]``."""
    obs = check_observation(model, obs)
    return [log_stable(a[o]) for a, o in zip(model.A, obs)]


def predict_states(model: GenerativeModel, qs: Sequence[np.ndarray], action) -> list[np.ndarray]:
    """Return the predicted belief B[f][:, :, u_f] @ q_f for every factor (empirical prior)."""
    action = np.atleast_1d(np.asarray(action)).astype(int)
    if action.shape != (model.num_factors,):
        raise ValueError(f'action {action.tolist()} must have one entry per factor '
                         f'({model.num_factors})')
    for f, u in enumerate(action):
        if not 0 <= u < model.num_controls[f]:
            raise ValueError(f'action {u} of factor {f} is outside 0..{model.num_controls[f] - 1}')
    qs = check_beliefs(qs, model.num_states)
    return [np.asarray(model.B_ops[f][u] @ q) for f, (u, q) in enumerate(zip(action, qs))]


def _expected_loglik(loglik: np.ndarray, qs: list, factors: list[int], keep: int) -> np.ndarray:
    """Contract ``loglik`` over every factor of ``factors`` except ``keep`` with its marginal."""
    out = loglik
    # contract from the last axis down so the remaining axis positions stay valid
    for axis in range(len(factors) - 1, -1, -1):
        if factors[axis] == keep:
            continue
        out = np.tensordot(out, qs[factors[axis]], axes=([axis], [0]))
    return out


def free_energy(qs: list, log_prior: list, modality_logliks: list, factor_lists: list) -> float:
    """Return the variational free energy sum_f E_q[ln q_f - ln p_f] - E_q[ln P(o | s)]."""
    vfe = 0.0
    for q, lp in zip(qs, log_prior):
        vfe += float(q @ (np.log(q + 1e-16) - lp))
    for ll, fl in zip(modality_logliks, factor_lists):
        val = ll
        for axis in range(len(fl) - 1, -1, -1):
            val = np.tensordot(val, qs[fl[axis]], axes=([axis], [0]))
        vfe -= float(val)
    return vfe


def infer_states(model: GenerativeModel, obs, prior: Sequence[np.ndarray] | None = None,
                 num_iter: int = 10, df_tol: float = 1e-3) -> list[np.ndarray]:
    """Return the posterior marginals q(s_f) after observing ``obs`` under ``prior`` (default D).

    ``obs`` is one observation index per modality. One factor: exact Bayes. Several factors:
    fixed-point iteration from flat marginals, stopping when |dF| < ``df_tol`` or after
    ``num_iter`` sweeps.
    """
    if num_iter < 1:
        raise ValueError(f'num_iter must be >= 1, got {num_iter}')
    logliks = log_likelihoods(model, obs)
    prior = model.D if prior is None else check_beliefs(prior, model.num_states, 'prior')
    log_prior = [log_stable(p) for p in prior]
    n_factors = model.num_factors
    if n_factors == 1:
        total = log_prior[0].copy()
        for ll in logliks:
            total = total + ll
        return [softmax(total)]
    factor_lists = model.A_factor_list
    qs = uniform_beliefs(model.num_states)
    prev = free_energy(qs, log_prior, logliks, factor_lists)
    for _ in range(num_iter):
        new = []
        for f in range(n_factors):
            q_l = np.zeros(model.num_states[f])
            for m in model.A_modality_list[f]:
                q_l = q_l + _expected_loglik(logliks[m], qs, factor_lists[m], f)
            new.append(softmax(q_l + log_prior[f]))
        qs = new
        vfe = free_energy(qs, log_prior, logliks, factor_lists)
        if abs(prev - vfe) < df_tol:
            break
        prev = vfe
    return qs


__all__ = ['check_observation', 'free_energy', 'infer_states', 'log_likelihoods',
           'predict_states']
