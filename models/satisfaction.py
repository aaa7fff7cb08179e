"""Probability that a plan satisfies its task, and planning under a satisfaction threshold.

The transition system is deterministic, but executing a step can fail (a grasp slips, a door
is shut). Each transition t has a Beta(success_t, failure_t) belief over its probability of
succeeding, updated from PlanOutcome.success. A plan satisfies the task only if every step
succeeds; with executions independent given the posterior mean p_t = s_t / (s_t + f_t),

    P(plan satisfies the task) = prod_k p_{t_k}    (one factor per executed step).

`plan_with_threshold` returns the exact Pareto set of the plans whose probability is at least
TaskSpec.satisfaction_threshold. It plans with -log p_t as an extra additive objective: a plan
that is Pareto-optimal among the feasible ones is Pareto-optimal in the extended objectives
(anything dominating it there is feasible too), so filtering the extended set by probability
and then by dominance in the task's objectives is exact, unlike filtering the unconstrained
Pareto set (which would lose feasible plans dominated only by infeasible ones).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from embodied_aif.models.pareto import (
    PlanResult,
    TaskError,
    checked_system,
    pareto_filter,
    plan,
)
from embodied_aif.models.transition_system import (
    CostBeliefs,
    TransitionSystem,
    path_cost_distribution,
)

__all__ = ['SuccessBeliefs', 'plan_probability', 'plan_with_threshold']


@dataclass(frozen=True)
class SuccessBeliefs:
    """Beta pseudo-counts of success and failure, one pair per transition, both > 0."""

    success: np.ndarray
    failure: np.ndarray

    def __post_init__(self):
        s = np.asarray(self.success, dtype=float).reshape(-1)
        f = np.asarray(self.failure, dtype=float).reshape(-1)
        if s.shape != f.shape:
            raise ValueError(f'success {s.shape} and failure {f.shape} must have one entry per '
                             'transition')
        if not (np.isfinite(s).all() and np.isfinite(f).all()) or (s <= 0).any() \
                or (f <= 0).any():
            raise ValueError('success and failure pseudo-counts must be finite and > 0')
        object.__setattr__(self, 'success', s)
        object.__setattr__(self, 'failure', f)

    @classmethod
    def prior(cls, n_transitions: int, mean: float = 0.99, strength: float = 10.0
              ) -> SuccessBeliefs:
        """Beliefs with prior success probability `mean` worth `strength` observations."""
        if not 0 < mean < 1 or not math.isfinite(strength) or strength <= 0:
            raise ValueError(f'need 0 < mean < 1 and strength > 0, got {mean}, {strength}')
        return cls(success=np.full(n_transitions, mean * strength),
                   failure=np.full(n_transitions, (1 - mean) * strength))

    def probability(self) -> np.ndarray:
        """Posterior mean success probability of each transition, (T,)."""
        return self.success / (self.success + self.failure)

    def update(self, index: int, success: bool) -> SuccessBeliefs:
        """Return the beliefs after one execution of transition `index`."""
        if not 0 <= index < self.success.shape[0]:
            raise ValueError(f'transition index {index} outside 0..{self.success.shape[0] - 1}')
        s, f = self.success.copy(), self.failure.copy()
        if success:
            s[index] += 1
        else:
            f[index] += 1
        return SuccessBeliefs(success=s, failure=f)


def plan_probability(successes: SuccessBeliefs, transitions: Sequence[int]) -> float:
    """Probability that every step of a plan (TS transition indices) succeeds."""
    p = successes.probability()
    return float(np.prod(p[np.asarray(transitions, dtype=np.int64)])) if len(transitions) \
        else 1.0


def plan_with_threshold(ts: TransitionSystem, task, successes: SuccessBeliefs,
                        threshold: float, optimism: float = 0.0, objectives=None,
                        max_labels: int = 5_000_000) -> PlanResult:
    """Every Pareto-optimal plan whose probability of satisfying the task is >= threshold.

    threshold in [0, 1]; 0 is plain `pareto.plan`. Other arguments as for `pareto.plan`.
    The result's stats gain 'satisfaction_threshold', 'plan_probabilities' (per returned
    plan) and 'excluded' (Pareto plans of the unconstrained problem below the threshold);
    when no plan reaches the threshold the result is unsatisfiable with the reason.
    """
    if not math.isfinite(threshold) or not 0 <= threshold <= 1:
        raise TaskError(f'satisfaction_threshold must be in [0, 1], got {threshold}')
    if successes.success.shape[0] != ts.n_transitions:
        raise ValueError(f'success beliefs have {successes.success.shape[0]} transitions, the '
                         f'system has {ts.n_transitions}')
    if threshold <= 0:
        result = plan(ts, task, optimism=optimism, objectives=objectives, max_labels=max_labels)
        result.stats['satisfaction_threshold'] = 0.0
        result.stats['plan_probabilities'] = [plan_probability(successes, p.transitions)
                                              for p in result.plans]
        result.stats['excluded'] = 0
        return result
    ts = checked_system(ts, objectives, optimism)
    d = len(ts.objectives)
    # Extended system: the task's planning costs plus -log p per step, planned on as given.
    nats = -np.log(successes.probability())
    b = ts.beliefs
    psi = np.zeros((ts.n_transitions, d + 1, d + 1))
    psi[:, :d, :d] = b.psi
    psi[:, d, d] = 1.0
    extended = replace(ts, objectives=(*ts.objectives, '(failure nats)'),
                       beliefs=CostBeliefs(mu=np.column_stack([ts.costs(optimism), nats]),
                                           kappa=b.kappa, nu=b.nu + 1, psi=psi,
                                           count=b.count))
    wide = plan(extended, task, optimism=0.0, max_labels=max_labels)
    stats = dict(wide.stats, satisfaction_threshold=float(threshold))
    if not wide.satisfiable:
        return replace(wide, objectives=ts.objectives, optimism=optimism, stats=stats)
    log_threshold = math.log(threshold)
    probs = np.array([math.exp(-float(p.cost[d])) for p in wide.plans])
    feasible = [i for i, p in enumerate(wide.plans) if -float(p.cost[d]) >= log_threshold - 1e-12]
    unconstrained = pareto_filter(wide.costs()[:, :d])
    stats['excluded'] = int(sum(1 for i in unconstrained if i not in feasible))
    if not feasible:
        stats['plan_probabilities'] = []
        best = float(probs.max())
        return PlanResult(objectives=ts.objectives, formula=wide.formula, plans=(),
                          satisfiable=False, optimism=optimism, stats=stats,
                          reason=f'no plan satisfies the task {wide.formula!r} with probability '
                                 f'>= {threshold:g} under the step success beliefs; the most '
                                 f'reliable plan reaches {best:.4g}')
    costs = wide.costs()[feasible, :d]
    # Among plans with equal task costs keep the most reliable one (pareto_filter keeps the
    # first of equal rows, so order by probability first).
    order = sorted(range(len(feasible)), key=lambda j: -probs[feasible[j]])
    kept = pareto_filter(costs[order])
    chosen = sorted((feasible[order[j]] for j in kept),
                    key=lambda i: tuple(wide.plans[i].cost[:d]))
    plans = []
    for i in chosen:
        p = wide.plans[i]
        ids = list(p.transitions)
        mean, cov = path_cost_distribution(ts.beliefs, p.transitions)
        plans.append(replace(
            p, cost=np.asarray(p.cost[:d], dtype=float), expected_cost=mean, cost_cov=cov,
            step_costs=ts.beliefs.mu[ids].reshape(len(ids), d),
            step_covs=ts.beliefs.expected_cov()[ids].reshape(len(ids), d, d),
            step_counts=ts.beliefs.count[ids].copy()))
    stats['plan_probabilities'] = [float(probs[i]) for i in chosen]
    stats['n_plans'] = len(plans)
    return PlanResult(objectives=ts.objectives, formula=wide.formula, plans=tuple(plans),
                      satisfiable=True, reason='', optimism=optimism, stats=stats)
