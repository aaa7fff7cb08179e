"""Choosing one plan of a Pareto set: expected free energy and classical baselines.

For plan pi with predicted total cost q = N(m_pi, S_pi) and the user's preference
p = N(m_pref, S_pref) over total costs,

    efe(pi) = risk(pi) - epistemic_weight * info_gain(pi)
    risk(pi) = H[q, p~] = H[q, p] + dominance(pi)   (up to a constant shared by all plans)
    H[q, p] = 0.5 * (d log 2 pi + log|S_pref| + tr(S_pref^-1 S_pi)
                     + (m_pi - m_pref)^T S_pref^-1 (m_pi - m_pref))
    info_gain(pi) = I(a*; x_pi)   (nats, one value per plan).

p~ is the preference restricted to the front: the outcomes of a plan are weighted by
A_pi = P(no other plan's mean total cost is at most pi's on every objective). Costs are
costs; a Gaussian centred on an achievable cost is flat there and cannot tell a front plan
from a slightly dominated one. `dominance_risk` gives -log A_pi from the NIW beliefs (steps
two plans share cancel in their comparison); Preference.restrict_to_front = False drops it.
a* is the plan the restricted preference would choose if the costs were known (the
Pareto-optimal plan of least H[., p]); it is a function of the cost parameters, and
`decision_info_gain` estimates the mutual information between it and the total cost x_pi of
one execution of pi by Monte Carlo, vectorised over plans and samples: information about the
parameters counted only as far as it can change the decision (0 once the choice is certain,
about 0 for plans that cannot become the choice). `plan_info_gain` (info='parameters') is the
alternative: the mutual information between the plan's own mean total cost
M_pi = sum_u m_u mu_u (its distinct steps u, each executed m_u times, with Normal-Inverse-Wishart
beliefs over (mu_u, Sigma_u)) and the step costs of one execution, with the Student-t belief
of the NIW marginals (exact for one distinct step; for several, the Student-t with their
summed covariance and Satterthwaite's degrees of freedom). `info_gain` gives the exact
per-transition mutual information between (mu, Sigma) and the costs (Monte Carlo with the
sequential Student-t predictive). The predicted total cost N(m_pi, S_pi) is the posterior
predictive (candidates_from_result: parameter uncertainty included); a cross-entropy to a
Gaussian depends only on the first two moments, so the moment-matched predictive gives the
cross-entropy of the Student-t predictive exactly. Lower efe is better.

Baselines: 'uniform' (any plan at random), 'topsis' (closeness to the ideal point with equal or
given weights), 'weights' (fixed linear weights on min-max normalised costs).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln, log_ndtr

from embodied_aif.models.transition_system import (
    DEFAULT_REL_STD,
    MIN_STD,
    CostBeliefs,
    path_cost_distribution,
)

__all__ = ['INFO_TERMS', 'METHODS', 'Candidate', 'Preference', 'SelectionError', 'Selection',
           'candidates_from_dicts', 'candidates_from_result', 'cross_entropy',
           'decision_info_gain', 'dominance_risk', 'efe_terms', 'info_gain', 'plan_info_gain',
           'preference_from_dict', 'select']

METHODS = ('aif', 'uniform', 'topsis', 'weights')
# What the epistemic term is information about: 'decision' (which plan the preference would
# pick if the costs were known) or 'parameters' (each plan's own mean total cost).
INFO_TERMS = ('decision', 'parameters')
# Smallest probability of not being dominated that the dominance risk uses (about 27.6 nats
# per dominating plan): keeps a plan that is certainly dominated finite.
_NOT_DOMINATED_FLOOR = 1e-12


class SelectionError(ValueError):
    """Malformed plans or preference; the message names the source and key."""


def _check_cov(cov: np.ndarray, d: int, name: str) -> np.ndarray:
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (d, d):
        raise ValueError(f'{name} must be {d}x{d}, got shape {cov.shape}')
    if not np.isfinite(cov).all() or not np.allclose(cov, cov.T, atol=1e-12):
        raise ValueError(f'{name} must be finite and symmetric')
    return cov


@dataclass(frozen=True)
class Preference:
    """The user's preferred distribution N(mean, covariance) over total plan costs.

    epistemic_weight scales the information-gain term (0: purely pragmatic); weights (d,)
    are used by the 'topsis' and 'weights' baselines (default equal). restrict_to_front
    (default True) restricts the preference to outcomes no other plan is expected to beat on
    every objective, which adds the dominance risk (`dominance_risk`) to the risk.
    """

    objectives: tuple[str, ...]
    mean: np.ndarray
    covariance: np.ndarray
    epistemic_weight: float = 1.0
    weights: np.ndarray | None = None
    restrict_to_front: bool = True

    def __post_init__(self):
        d = len(self.objectives)
        mean = np.asarray(self.mean, dtype=float).reshape(-1)
        if mean.shape != (d,) or not np.isfinite(mean).all():
            raise ValueError(f'mean must be {d} finite numbers, got {self.mean!r}')
        cov = _check_cov(self.covariance, d, 'covariance')
        if np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError('covariance must be positive definite')
        w = float(self.epistemic_weight)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f'epistemic_weight must be a finite number >= 0, got {w}')
        weights = np.full(d, 1.0 / d) if self.weights is None else np.asarray(
            self.weights, dtype=float).reshape(-1)
        if weights.shape != (d,) or not np.isfinite(weights).all() or (weights < 0).any() \
                or weights.sum() <= 0:
            raise ValueError(f'weights must be {d} non-negative numbers, not all 0')
        object.__setattr__(self, 'objectives', tuple(self.objectives))
        object.__setattr__(self, 'mean', mean)
        object.__setattr__(self, 'covariance', cov)
        object.__setattr__(self, 'epistemic_weight', w)
        object.__setattr__(self, 'weights', weights / weights.sum())
        object.__setattr__(self, 'restrict_to_front', bool(self.restrict_to_front))


@dataclass(frozen=True)
class Candidate:
    """A plan as the selector sees it.

    mean (d,), cov (d, d): predicted total cost; beliefs: NIW beliefs of the plan's distinct
    steps (transitions), each executed multiplicity[i] times. steps (optional): one hashable
    id per distinct step; plans whose steps share an id share that transition (one belief, one
    unknown cost law), so their costs are correlated. Without ids a plan's steps are its own.
    """

    mean: np.ndarray
    cov: np.ndarray
    beliefs: CostBeliefs
    multiplicity: np.ndarray
    steps: tuple | None = None

    def __post_init__(self):
        mean = np.asarray(self.mean, dtype=float).reshape(-1)
        d = mean.shape[0]
        if not np.isfinite(mean).all():
            raise ValueError(f'mean must be finite, got {self.mean!r}')
        cov = _check_cov(self.cov, d, 'cov')
        mult = np.asarray(self.multiplicity, dtype=np.int64).reshape(-1)
        if self.beliefs.mu.shape[1] != d and self.beliefs.mu.shape[0]:
            raise ValueError(f'beliefs have {self.beliefs.mu.shape[1]} objectives, plan has {d}')
        if mult.shape != (self.beliefs.mu.shape[0],) or (mult < 1).any():
            raise ValueError('multiplicity needs one positive count per step belief')
        if self.steps is not None:
            steps = tuple(self.steps)
            if len(steps) != mult.shape[0]:
                raise ValueError(f'steps needs one id per step belief ({mult.shape[0]}), '
                                 f'got {len(steps)}')
            try:
                if len(set(steps)) != len(steps):
                    raise ValueError(f'step ids must be distinct, got {steps!r}')
            except TypeError:
                raise ValueError(f'step ids must be hashable, got {steps!r}') from None
            object.__setattr__(self, 'steps', steps)
        object.__setattr__(self, 'mean', mean)
        object.__setattr__(self, 'cov', cov)
        object.__setattr__(self, 'multiplicity', mult)


@dataclass(frozen=True)
class Selection:
    """The chosen plan and every plan's terms (efe = risk - epistemic_weight * info_gain).

    dominance is the part of the risk due to restricting the preference to the front (zero
    when the preference is not restricted).
    """

    index: int
    method: str
    efe: np.ndarray
    risk: np.ndarray
    info_gain: np.ndarray
    scores: np.ndarray
    epistemic_weight: float = 1.0
    extra: dict = field(default_factory=dict)
    dominance: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON-ready form of ``embodied-aif select --json`` (without the plan itself)."""
        dominance = np.zeros(len(self.efe)) if self.dominance is None else self.dominance
        return {
            'method': self.method,
            'chosen': int(self.index),
            'epistemic_weight': self.epistemic_weight,
            'terms': [{'index': i, 'efe': float(self.efe[i]), 'risk': float(self.risk[i]),
                       'dominance': float(dominance[i]), 'info_gain': float(self.info_gain[i]),
                       'score': float(self.scores[i])}
                      for i in range(len(self.efe))],
        }


# ------------------------------------------------------------------------------- candidates

def candidates_from_result(result, beliefs: CostBeliefs) -> list[Candidate]:
    """Candidates for the plans of a pareto.PlanResult, with the TS's current beliefs."""
    out = []
    for p in result.plans:
        ids, counts = np.unique(np.asarray(p.transitions, dtype=np.int64), return_counts=True)
        mean, cov = path_cost_distribution(beliefs, p.transitions)
        sub = CostBeliefs(mu=beliefs.mu[ids], kappa=beliefs.kappa[ids], nu=beliefs.nu[ids],
                          psi=beliefs.psi[ids], count=beliefs.count[ids])
        out.append(Candidate(mean=mean, cov=cov, beliefs=sub, multiplicity=counts,
                             steps=tuple(int(i) for i in ids)))
    return out


# Marks the id of a step that belongs to one plan only (no user id can equal it).
_OWN_STEP = object()


def _fail(source: str, key: str, message: str):
    raise SelectionError(f'{source}: {key}: {message}')


def _vector(value, d: int, source: str, key: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != d or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        _fail(source, key, f'expected {d} numbers, got {value!r}')
    arr = np.asarray(value, dtype=float)
    if not np.isfinite(arr).all():
        _fail(source, key, f'expected finite numbers, got {value!r}')
    return arr


def _matrix(value, d: int, source: str, key: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != d:
        _fail(source, key, f'expected a {d}x{d} matrix')
    m = np.stack([_vector(r, d, source, key) for r in value])
    if not np.allclose(m, m.T) or np.linalg.eigvalsh(m).min() <= 0:
        _fail(source, key, 'must be symmetric positive definite')
    return m


def _default_cov(mean: np.ndarray) -> np.ndarray:
    return np.diag(np.maximum(DEFAULT_REL_STD * np.abs(mean), MIN_STD) ** 2)


def candidates_from_dicts(data, source: str = '<plans>') -> tuple[tuple[str, ...],
                                                                 list[Candidate]]:
    """Read the PLANS.json format (docs/task_planning.md); return (objectives, candidates).

    Each plan needs `cost` (or `expected_cost`); optional `cost_cov`, `count` and `steps`
    (per-step beliefs: cost, cost_cov, count, optional transition id for repeated steps).
    """
    if not isinstance(data, Mapping):
        _fail(source, '(top level)', 'expected a JSON object')
    objectives = data.get('objectives')
    if not isinstance(objectives, list) or not objectives or not all(
            isinstance(o, str) for o in objectives):
        _fail(source, 'objectives', 'expected a non-empty list of names')
    d = len(objectives)
    plans = data.get('plans')
    if not isinstance(plans, list) or not plans:
        reason = data.get('reason') if isinstance(data, Mapping) else None
        _fail(source, 'plans', 'expected a non-empty list of plans'
              + (f' (the planner said: {reason})' if reason else ''))
    out = []
    for i, p in enumerate(plans):
        key = f'plans[{i}]'
        if not isinstance(p, Mapping):
            _fail(source, key, 'expected an object')
        mean_key = 'expected_cost' if 'expected_cost' in p else 'cost'
        if mean_key not in p:
            _fail(source, f'{key}.cost', 'missing required key')
        mean = _vector(p[mean_key], d, source, f'{key}.{mean_key}')
        if (mean < 0).any():
            _fail(source, f'{key}.{mean_key}', 'costs must be non-negative')
        cov = (_matrix(p['cost_cov'], d, source, f'{key}.cost_cov') if 'cost_cov' in p
               else _default_cov(mean))
        steps = p.get('steps')
        if steps:
            if not isinstance(steps, list):
                _fail(source, f'{key}.steps', 'expected a list')
            groups: dict = {}
            for k, st in enumerate(steps):
                skey = f'{key}.steps[{k}]'
                if not isinstance(st, Mapping) or 'cost' not in st:
                    _fail(source, skey, 'expected an object with "cost"')
                m = _vector(st['cost'], d, source, f'{skey}.cost')
                c = (_matrix(st['cost_cov'], d, source, f'{skey}.cost_cov')
                     if 'cost_cov' in st else _default_cov(m))
                n = st.get('count', 1)
                if isinstance(n, bool) or not isinstance(n, int | float) or not n > 0:
                    _fail(source, f'{skey}.count', f'expected a positive number, got {n!r}')
                ident = st.get('transition')
                if ident is None:
                    ident = (_OWN_STEP, i, k)  # this plan's own step, shared with no other
                elif isinstance(ident, list):
                    ident = tuple(ident)
                if not isinstance(ident, str | int | tuple) or isinstance(ident, bool):
                    _fail(source, f'{skey}.transition', f'expected an id, got {ident!r}')
                if ident in groups:
                    groups[ident][3] += 1
                else:
                    groups[ident] = [m, c, float(n), 1]
            vals = list(groups.values())
            beliefs = CostBeliefs.from_costs(np.stack([v[0] for v in vals]),
                                             np.stack([v[1] for v in vals]),
                                             np.array([v[2] for v in vals]))
            mult = np.array([v[3] for v in vals])
            ids = tuple(groups)
        else:
            n = p.get('count', 1)
            if isinstance(n, bool) or not isinstance(n, int | float) or not n > 0:
                _fail(source, f'{key}.count', f'expected a positive number, got {n!r}')
            beliefs = CostBeliefs.from_costs(mean[None], cov[None], np.array([float(n)]))
            mult = np.array([1])
            ids = None
        out.append(Candidate(mean=mean, cov=cov, beliefs=beliefs, multiplicity=mult, steps=ids))
    return tuple(objectives), out


def preference_from_dict(data, source: str = '<preference>',
                         objectives: Sequence[str] | None = None) -> Preference:
    """Read the PREFERENCE.json format; reorder to `objectives` when given (names must match)."""
    if not isinstance(data, Mapping):
        _fail(source, '(top level)', 'expected a JSON object')
    names = data.get('objectives')
    if not isinstance(names, list) or not names or not all(isinstance(o, str) for o in names):
        _fail(source, 'objectives', 'expected a non-empty list of names')
    d = len(names)
    if 'mean' not in data:
        _fail(source, 'mean', 'missing required key')
    mean = _vector(data['mean'], d, source, 'mean')
    if 'covariance' not in data:
        _fail(source, 'covariance', 'missing required key')
    cov = _matrix(data['covariance'], d, source, 'covariance')
    w = data.get('epistemic_weight', 1.0)
    if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
        _fail(source, 'epistemic_weight', f'expected a number >= 0, got {w!r}')
    weights = data.get('weights')
    if weights is not None:
        weights = _vector(weights, d, source, 'weights')
        if (weights < 0).any() or weights.sum() <= 0:
            _fail(source, 'weights', 'expected non-negative numbers, not all 0')
    restrict = data.get('restrict_to_front', True)
    if not isinstance(restrict, bool):
        _fail(source, 'restrict_to_front', f'expected true or false, got {restrict!r}')
    if objectives is not None and list(objectives) != names:
        if sorted(objectives) != sorted(names):
            _fail(source, 'objectives', f'{names} do not match the plans\' objectives '
                                        f'{list(objectives)}')
        order = [names.index(o) for o in objectives]
        mean, cov = mean[order], cov[np.ix_(order, order)]
        weights = None if weights is None else weights[order]
        names = list(objectives)
    return Preference(objectives=tuple(names), mean=mean, covariance=cov,
                      epistemic_weight=float(w), weights=weights, restrict_to_front=restrict)


# ------------------------------------------------------------------------------------ terms

def cross_entropy(mean, cov, pref_mean, pref_cov) -> np.ndarray:
    """H[N(mean, cov), N(pref_mean, pref_cov)] in nats; mean (n, d), cov (n, d, d) -> (n,)."""
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    cov = np.asarray(cov, dtype=float).reshape(mean.shape[0], mean.shape[1], mean.shape[1])
    d = mean.shape[1]
    _, logdet = np.linalg.slogdet(pref_cov)
    inv = np.linalg.inv(pref_cov)
    diff = mean - pref_mean
    maha = np.einsum('ni,ij,nj->n', diff, inv, diff)
    trace = np.einsum('ij,nji->n', inv, cov)
    return 0.5 * (d * math.log(2 * math.pi) + logdet + trace + maha)


def _log_normal(x, mu, chol):
    """Log N(x; mu, L L^T) for batched x, mu (..., d) and Cholesky factors (..., d, d)."""
    d = x.shape[-1]
    z = np.linalg.solve(chol, (x - mu)[..., None])[..., 0]
    logdet = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * (d * math.log(2 * math.pi) + logdet + (z ** 2).sum(-1))


def _log_student(x, loc, scale, df):
    """Log St(x; loc, scale, df), batched; df broadcasts against x[..., 0]."""
    d = x.shape[-1]
    chol = np.linalg.cholesky(scale)
    z = np.linalg.solve(chol, (x - loc)[..., None])[..., 0]
    logdet = 2 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    maha = (z ** 2).sum(-1)
    return (gammaln((df + d) / 2) - gammaln(df / 2) - 0.5 * d * np.log(df * math.pi)
            - 0.5 * logdet - 0.5 * (df + d) * np.log1p(maha / df))


def _sample_niw(beliefs: CostBeliefs, rng: np.random.Generator, s: int):
    """Draw s parameter samples per belief: mu (U, s, d) and Cholesky factors of Sigma."""
    n_units, d = beliefs.mu.shape
    # Sigma ~ IW(nu, psi) by Bartlett: W = L A A^T L^T ~ Wishart(nu, psi^-1), Sigma = W^-1.
    chol_inv_psi = np.linalg.cholesky(np.linalg.inv(beliefs.psi))
    a = np.zeros((n_units, s, d, d))
    dfs = beliefs.nu[:, None, None] - np.arange(d)[None, None, :]
    a[..., np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(np.broadcast_to(
        dfs, (n_units, s, d))))
    rows, cols = np.tril_indices(d, -1)
    a[..., rows, cols] = rng.standard_normal((n_units, s, rows.shape[0]))
    la = chol_inv_psi[:, None] @ a
    sigma = np.linalg.inv(la @ np.swapaxes(la, -1, -2))
    sigma = 0.5 * (sigma + np.swapaxes(sigma, -1, -2))
    chol_sigma = np.linalg.cholesky(sigma)
    mu = beliefs.mu[:, None, :] + (chol_sigma @ rng.standard_normal((n_units, s, d, 1)))[
        ..., 0] / np.sqrt(beliefs.kappa)[:, None, None]
    return mu, chol_sigma


def _sample_means(beliefs: CostBeliefs, rng: np.random.Generator, s: int) -> np.ndarray:
    """Draw s samples of each belief's mean mu, (U, s, d): Student-t, nu - d + 1 dof."""
    n_units, d = beliefs.mu.shape
    df = beliefs.nu - d + 1
    chol = np.linalg.cholesky(beliefs.psi / (beliefs.kappa * df)[:, None, None])
    z = rng.standard_normal((n_units, s, d)) @ np.swapaxes(chol, 1, 2)
    scale = np.sqrt(rng.chisquare(np.broadcast_to(df[:, None], (n_units, s))) / df[:, None])
    return beliefs.mu[:, None, :] + z / scale[..., None]


def info_gain(beliefs: CostBeliefs, multiplicity, rng: np.random.Generator,
              n_samples: int = 128) -> np.ndarray:
    """Estimate the information gain of executing each belief's transition by Monte Carlo.

    Returns the mutual information (nats, clipped at 0) between each belief's parameters
    (mu, Sigma) and the costs of multiplicity[u] executions of its transition, a (U,) array.
    This is the per-transition quantity; the selector scores plans with `plan_info_gain`.
    """
    mult = np.asarray(multiplicity, dtype=np.int64).reshape(-1)
    n_units, d = beliefs.mu.shape
    if n_units == 0:
        return np.zeros(0)
    if n_samples < 2:
        raise ValueError(f'n_samples must be >= 2, got {n_samples}')
    s = n_samples
    mu, chol_sigma = _sample_niw(beliefs, rng, s)
    loc = np.broadcast_to(beliefs.mu[:, None, :], (n_units, s, d)).copy()
    psi = np.broadcast_to(beliefs.psi[:, None], (n_units, s, d, d)).copy()
    kappa = beliefs.kappa[:, None].repeat(s, axis=1)
    nu = beliefs.nu[:, None].repeat(s, axis=1)
    total = np.zeros((n_units, s))
    for i in range(int(mult.max())):
        active = (i < mult)[:, None]
        x = mu + (chol_sigma @ rng.standard_normal((n_units, s, d, 1)))[..., 0]
        df = nu - d + 1
        scale = psi * ((kappa + 1) / (kappa * df))[..., None, None]
        term = _log_normal(x, mu, chol_sigma) - _log_student(x, loc, scale, df)
        total += np.where(active, term, 0.0)
        diff = x - loc
        psi = psi + (kappa / (kappa + 1))[..., None, None] * diff[..., :, None] * diff[..., None, :]
        loc = (kappa[..., None] * loc + x) / (kappa + 1)[..., None]
        kappa = kappa + 1
        nu = nu + 1
    return np.maximum(total.mean(axis=1), 0.0)


def _t_entropy(cov: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Entropy (nats) of multivariate Student-t laws given by covariance and degrees of freedom.

    cov (..., d, d) is the covariance (not the scale), df (...) > 2; the scale is
    cov * (df - 2) / df. Tends to the Gaussian entropy 0.5 log|2 pi e cov| as df grows.
    """
    d = cov.shape[-1]
    _, logdet = np.linalg.slogdet(cov)
    half = 0.5 * (df + d)
    return (0.5 * logdet + 0.5 * d * np.log((df - 2) * math.pi)
            + gammaln(0.5 * df) - gammaln(half) + half * (digamma(half) - digamma(0.5 * df)))


def _effective_df(var: np.ndarray, df: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Degrees of freedom of a sum of independent Student-t terms (Satterthwaite's rule).

    var (U, ...) is each term's variance size, df (U, ...) its degrees of freedom; terms are
    summed per segment beginning at `starts`. One term keeps its own df exactly; many similar
    terms give a larger df (the sum is closer to Gaussian). Never below the smallest df.
    """
    total = np.add.reduceat(var, starts, axis=0)
    spread = np.add.reduceat(var ** 2 / df, starts, axis=0)
    return total ** 2 / spread


def plan_info_gain(candidates: Sequence[Candidate], rng: np.random.Generator,
                   n_samples: int = 128) -> np.ndarray:
    """Expected information gain (nats) about each plan's mean total cost, by Monte Carlo.

    The parameter of a plan that its predicted cost N(sum m_u mu_u, ...) depends on is its
    mean total cost M = sum_u m_u mu_u over its distinct steps u, each executed m_u times.
    Under the NIW beliefs each mu_u is Student-t with nu_u - d + 1 degrees of freedom and
    covariance psi_u / (kappa_u (nu_u - d - 1)). The belief about M is taken as the Student-t
    with the exact covariance C = sum_u m_u^2 cov(mu_u) and Satterthwaite's degrees of freedom
    (exact for a plan of one distinct step, Gaussian in the limit of many). The gain is the
    expected drop of its entropy, H[M] - E_x H[M | x], where x are the step costs of one
    execution drawn from the current beliefs (vectorised over plans, steps and samples), i.e.
    the mutual information between M and x. Using the Student-t entropy rather than that of a
    moment-matched Gaussian matters while beliefs rest on few observations: the heavy tails
    inflate the variance far more than the entropy. One value per plan, whatever the number of
    steps, so it is on the scale of the risk term; plans without steps gain nothing. (n,)
    array, >= 0.
    """
    if n_samples < 2:
        raise ValueError(f'n_samples must be >= 2, got {n_samples}')
    n_plans = len(candidates)
    sizes = np.array([c.beliefs.mu.shape[0] for c in candidates], dtype=np.int64)
    gain = np.zeros(n_plans)
    busy = np.flatnonzero(sizes > 0)
    if busy.size == 0:
        return gain
    units = [candidates[i].beliefs for i in busy]
    b = CostBeliefs(mu=np.concatenate([u.mu for u in units]),
                    kappa=np.concatenate([u.kappa for u in units]),
                    nu=np.concatenate([u.nu for u in units]),
                    psi=np.concatenate([u.psi for u in units]),
                    count=np.concatenate([u.count for u in units]))
    m = np.concatenate([candidates[i].multiplicity for i in busy]).astype(float)
    n_units, d = b.mu.shape
    s = n_samples
    mu, chol_sigma = _sample_niw(b, rng, s)
    # Sufficient statistics of m_u draws: their mean and scatter about it.
    mmax = int(m.max())
    x = mu[:, :, None, :] + (chol_sigma[:, :, None] @ rng.standard_normal(
        (n_units, s, mmax, d, 1)))[..., 0]
    valid = (np.arange(mmax)[None, :] < m[:, None])[:, None, :, None]
    x = np.where(valid, x, 0.0)
    xbar = x.sum(axis=2) / m[:, None, None]
    dev = np.where(valid, x - xbar[:, :, None, :], 0.0)
    scatter = np.einsum('usji,usjk->usik', dev, dev)
    diff = xbar - b.mu[:, None, :]
    shrink = (b.kappa * m / (b.kappa + m))[:, None, None, None]
    psi_after = b.psi[:, None] + scatter + shrink * diff[..., :, None] * diff[..., None, :]
    now = (m ** 2 / (b.kappa * (b.nu - d - 1)))[:, None, None] * b.psi
    after = (m ** 2 / ((b.kappa + m) * (b.nu + m - d - 1)))[:, None, None, None] * psi_after
    starts = np.concatenate([[0], np.cumsum(sizes[busy])[:-1]])
    cov_now = np.add.reduceat(now, starts, axis=0)
    cov_after = np.add.reduceat(after, starts, axis=0)
    df_now = _effective_df(np.trace(now, axis1=-2, axis2=-1), b.nu - d + 1, starts)
    df_after = _effective_df(np.trace(after, axis1=-2, axis2=-1),
                             (b.nu + m - d + 1)[:, None], starts)
    h_now = _t_entropy(cov_now, df_now)
    h_after = _t_entropy(cov_after, df_after)
    gain[busy] = np.maximum(h_now - h_after.mean(axis=1), 0.0)
    return gain


def _shared_units(candidates: Sequence[Candidate]) -> tuple[CostBeliefs, np.ndarray]:
    """The distinct steps of all candidates, shared by id: (beliefs of U steps, (n, U) counts).

    counts[i, u] is how often plan i executes step u. A step id seen in several plans is one
    step (its first plan's belief is used); a plan without ids has steps of its own.
    """
    key_index: dict = {}
    rows: list[tuple[int, int]] = []
    entries: list[tuple[int, int, int]] = []
    for i, c in enumerate(candidates):
        keys = c.steps if c.steps is not None else [(_OWN_STEP, i, r) for r in range(
            c.multiplicity.shape[0])]
        for r, key in enumerate(keys):
            u = key_index.setdefault(key, len(rows))
            if u == len(rows):
                rows.append((i, r))
            entries.append((i, u, int(c.multiplicity[r])))
    counts = np.zeros((len(candidates), len(rows)))
    for i, u, m in entries:
        counts[i, u] += m
    d = candidates[0].mean.shape[0]
    if not rows:
        empty = CostBeliefs.from_costs(np.zeros((0, d)))
        return empty, counts
    parts = [candidates[i].beliefs for i, _ in rows]
    pick = [r for _, r in rows]
    beliefs = CostBeliefs(mu=np.stack([b.mu[r] for b, r in zip(parts, pick, strict=True)]),
                          kappa=np.array([b.kappa[r] for b, r in zip(parts, pick, strict=True)]),
                          nu=np.array([b.nu[r] for b, r in zip(parts, pick, strict=True)]),
                          psi=np.stack([b.psi[r] for b, r in zip(parts, pick, strict=True)]),
                          count=np.array([b.count[r] for b, r in zip(parts, pick, strict=True)]))
    return beliefs, counts


def dominance_risk(candidates: Sequence[Candidate]) -> np.ndarray:
    """Surprise of each plan under the preference restricted to the front, in nats, (n,) >= 0.

    Costs are costs: an outcome that another plan is expected to beat on every objective is
    one no user prefers, whatever N(m_pref, S_pref) says (a Gaussian centred on an achievable
    cost is flat there and would not tell a plan from a slightly dominated one). Restricting
    the preference to what is not dominated multiplies it by A_i = P(no other plan j has
    M_j <= M_i), M the plans' mean total costs under the current beliefs, so the cross-entropy
    gains -log A_i (up to a constant shared by all plans). With the plans treated as
    independent and the objectives of a difference M_j - M_i as independent Gaussians
    (variances from the NIW beliefs; steps that two plans share cancel in their difference),
    -log A_i = -sum_j log(1 - prod_k Phi((m_ik - m_jk) / sd_ijk)). It tends to 0 for plans
    surely on the front and grows without bound (floored at 1e-12 per pair) for plans surely
    dominated.
    """
    n = len(candidates)
    if n < 2:
        return np.zeros(n)
    mean = np.stack([c.mean for c in candidates])
    d = mean.shape[1]
    beliefs, counts = _shared_units(candidates)
    if counts.shape[1]:
        var_mu = np.diagonal(beliefs.psi, axis1=1, axis2=2) / (
            beliefs.kappa * (beliefs.nu - d - 1))[:, None]
        own = (counts ** 2) @ var_mu
        cross = np.stack([(counts * var_mu[:, k]) @ counts.T for k in range(d)], axis=-1)
        var = np.maximum(own[:, None, :] + own[None, :, :] - 2 * cross, 0.0)
    else:
        var = np.zeros((n, n, d))
    diff = mean[:, None, :] - mean[None, :, :]  # [i, j]: m_i - m_j, > 0 where j is cheaper
    sd = np.sqrt(var)
    z = np.where(sd > 0, diff / np.where(sd > 0, sd, 1.0),
                 np.where(diff > 0, np.inf, np.where(diff < 0, -np.inf, 0.0)))
    beaten = np.exp(log_ndtr(z).sum(axis=-1))  # P(M_j <= M_i) on every objective
    beaten[np.arange(n), np.arange(n)] = 0.0
    return -np.log(np.maximum(1.0 - beaten, _NOT_DOMINATED_FLOOR)).sum(axis=1)


def _nondominated(costs: np.ndarray) -> np.ndarray:
    """(S, n) mask of the points of each of S sets of n cost vectors (S, n, d) on their front."""
    if costs.shape[2] == 2:
        # Sorted by the first objective (then the second), a point is dominated when an
        # earlier one is cheaper on the second. (Exact unless two points tie on exactly one
        # objective, which continuous draws do not.)
        order = np.lexsort((costs[..., 1], costs[..., 0]), axis=-1)
        second = np.take_along_axis(costs[..., 1], order, axis=-1)
        before = np.minimum.accumulate(second, axis=-1)
        before = np.concatenate([np.full((costs.shape[0], 1), np.inf), before[:, :-1]], axis=1)
        mask = np.empty(costs.shape[:2], dtype=bool)
        np.put_along_axis(mask, order, ~(before < second), axis=-1)
        return mask
    no_worse = np.ones((costs.shape[0], costs.shape[1], costs.shape[1]), dtype=bool)
    equal = no_worse.copy()
    for k in range(costs.shape[2]):
        c = costs[:, :, k]
        no_worse &= c[:, None, :] <= c[:, :, None]  # [s, i, j]: j no worse than i on k
        equal &= c[:, None, :] == c[:, :, None]
    return ~(no_worse & ~equal).any(axis=2)


def decision_info_gain(candidates: Sequence[Candidate], preference: Preference,
                       rng: np.random.Generator, n_samples: int = 128) -> np.ndarray:
    """Expected information gain (nats) about which plan the user should get, per plan.

    Not every parameter is worth learning: knowing a plan's cost better only matters if it can
    change the choice. Let a* be the plan the restricted preference would pick if the costs
    were known: the Pareto-optimal plan (on mean total costs M) of least cross-entropy to the
    preference. a* is a function of the cost parameters; the gain of plan pi is the mutual
    information I(a*; x_pi) between a* and the total cost x_pi of one execution of pi,
    H[a*] - E_x H[a* | x]. Monte Carlo, vectorised over plans and samples: S joint draws of
    every step's mean from the NIW beliefs (steps shared by plans are drawn once) give S draws
    of M and of a*; x is drawn for each plan and each draw (noise covariance
    sum_u m_u E[Sigma_u]), and p(a* | x) is the draws' a* reweighted by the likelihood of x.
    It is 0 when the choice is already certain (e.g. well-known costs) and for plans whose cost
    cannot change it; at most log(number of plans). (n,) array, >= 0.
    """
    if n_samples < 2:
        raise ValueError(f'n_samples must be >= 2, got {n_samples}')
    n = len(candidates)
    gain = np.zeros(n)
    if n < 2:
        return gain
    beliefs, counts = _shared_units(candidates)
    if counts.shape[1] == 0:
        return gain
    d = beliefs.mu.shape[1]
    s = n_samples
    mu = _sample_means(beliefs, rng, s)  # (U, S, d)
    own = np.tensordot(counts, mu, axes=(1, 0))  # (n, S, d) mean total costs
    noise = np.tensordot(counts, beliefs.expected_cov(), axes=(1, 0))  # (n, d, d)
    inv = np.linalg.inv(preference.covariance)
    diff = own - preference.mean
    surprise = 0.5 * (((diff @ inv) * diff).sum(axis=-1)
                      + np.einsum('ij,nji->n', inv, noise)[:, None])  # (n, S)
    front = _nondominated(np.swapaxes(own, 0, 1)).T
    best = np.where(front, surprise, np.inf).argmin(axis=0)
    _, label = np.unique(best, return_inverse=True)
    onehot = (label[:, None] == np.arange(label.max() + 1)[None, :]).astype(float)
    if onehot.shape[1] == 1:
        return gain
    prior = onehot.mean(axis=0)
    h_prior = -(prior * np.log(prior)).sum()
    busy = np.flatnonzero(counts.sum(axis=1) > 0)
    chol = np.linalg.cholesky(noise[busy])
    inv_chol_t = np.swapaxes(np.linalg.inv(chol), 1, 2)
    own = own[busy]  # (b, S, d)
    x = own + rng.standard_normal((s, d)) @ np.swapaxes(chol, 1, 2)
    # Whitened, -0.5 |L^-1 (x_s - M_t)|^2 = wx_s . wm_t - 0.5 |wm_t|^2 + (terms of s only).
    # Single precision for the (plans, S, S) block: it only sets the weights of the draws.
    wx = (x @ inv_chol_t).astype(np.float32)
    wm = (own @ inv_chol_t).astype(np.float32)
    loglik = np.broadcast_to(-0.5 * (wm ** 2).sum(axis=-1)[:, None, :], (busy.size, s, s)).copy()
    for k in range(d):  # (b, S draws of x, S draws of the costs); d is small
        loglik += wx[:, :, k, None] * wm[:, None, :, k]
    loglik -= loglik.max(axis=-1, keepdims=True)
    weight = np.exp(loglik, out=loglik)
    weight /= weight.sum(axis=-1, keepdims=True)
    post = (weight @ onehot.astype(np.float32)).astype(float)
    h_post = -(post * np.log(np.where(post > 0, post, 1.0))).sum(axis=-1)
    gain[busy] = np.maximum(h_prior - h_post.mean(axis=1), 0.0)
    return gain


def efe_terms(candidates: Sequence[Candidate], preference: Preference,
              rng: np.random.Generator, n_samples: int = 128,
              info: str = 'decision') -> dict[str, np.ndarray]:
    """Return {'risk', 'dominance', 'info_gain', 'efe'} arrays over the candidates.

    risk is the cross-entropy of each plan's predicted cost to the preference, restricted to
    the front when preference.restrict_to_front (then risk includes `dominance_risk`, also
    returned alone; else dominance is 0). info_gain is `decision_info_gain` (info='decision')
    or `plan_info_gain` (info='parameters'). efe = risk - epistemic_weight * info_gain, lower
    is better.
    """
    if not candidates:
        raise ValueError('no candidate plans to select from')
    if info not in INFO_TERMS:
        raise ValueError(f'unknown info term {info!r}; choose one of {", ".join(INFO_TERMS)}')
    d = len(preference.objectives)
    for i, c in enumerate(candidates):
        if c.mean.shape != (d,):
            raise ValueError(f'plan {i} has {c.mean.shape[0]} objectives, preference has {d}')
    mean = np.stack([c.mean for c in candidates])
    cov = np.stack([c.cov for c in candidates])
    risk = cross_entropy(mean, cov, preference.mean, preference.covariance)
    dominance = (dominance_risk(candidates) if preference.restrict_to_front
                 else np.zeros(len(candidates)))
    risk = risk + dominance
    if preference.epistemic_weight == 0:
        gain = np.zeros(len(candidates))
    elif info == 'decision':
        gain = decision_info_gain(candidates, preference, rng, n_samples)
    else:
        gain = plan_info_gain(candidates, rng, n_samples)
    return {'risk': risk, 'dominance': dominance, 'info_gain': gain,
            'efe': risk - preference.epistemic_weight * gain}


def _topsis(costs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    norm = np.sqrt((costs ** 2).sum(axis=0))
    v = weights * costs / np.where(norm > 0, norm, 1.0)
    best, worst = v.min(axis=0), v.max(axis=0)
    d_best = np.sqrt(((v - best) ** 2).sum(axis=1))
    d_worst = np.sqrt(((v - worst) ** 2).sum(axis=1))
    denom = d_best + d_worst
    return np.where(denom > 0, d_worst / np.where(denom > 0, denom, 1.0), 0.5)


def _linear(costs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    lo, hi = costs.min(axis=0), costs.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return ((costs - lo) / span) @ weights


def select(candidates: Sequence[Candidate], preference: Preference, method: str = 'aif',
           rng: np.random.Generator | None = None, n_samples: int = 128,
           info: str = 'decision') -> Selection:
    """Choose one candidate by `method` ('aif', 'uniform', 'topsis' or 'weights').

    EFE terms are computed for every method so they can be logged; scores are the quantity
    each method optimises (aif: -efe, topsis: closeness, weights: -weighted cost, uniform: 0).
    info chooses the epistemic term (`efe_terms`).
    """
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; choose one of {", ".join(METHODS)}')
    rng = np.random.default_rng(0) if rng is None else rng
    if not candidates:
        raise ValueError('no candidate plans to select from')
    # The uniform draw comes first so that the baseline's choices do not depend on the
    # Monte Carlo draws of the (logged) EFE terms.
    uniform_index = int(rng.integers(len(candidates))) if method == 'uniform' else -1
    terms = efe_terms(candidates, preference, rng, n_samples, info)
    costs = np.stack([c.mean for c in candidates])
    if method == 'aif':
        scores = -terms['efe']
        index = int(np.argmax(scores))
    elif method == 'uniform':
        scores = np.zeros(len(candidates))
        index = uniform_index
    elif method == 'topsis':
        scores = _topsis(costs, preference.weights)
        index = int(np.argmax(scores))
    else:
        scores = -_linear(costs, preference.weights)
        index = int(np.argmax(scores))
    return Selection(index=index, method=method, efe=terms['efe'], risk=terms['risk'],
                     info_gain=terms['info_gain'], scores=scores,
                     epistemic_weight=preference.epistemic_weight,
                     dominance=terms['dominance'])
