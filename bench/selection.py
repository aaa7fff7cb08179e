"""Online plan selection: cumulative Pareto regret and Pareto bias, AIF against baselines.

Protocol (after the published one, re-implemented): an instance is a set of candidate plans
with true mean costs mu_i and covariances Sigma_i that the agent does not know. The agent holds
a Normal-Inverse-Wishart belief per plan (or per transition on grids), initialised from one
noisy observation. Every round it offers the plans that are Pareto-optimal under its current
mean estimates, a method picks one, a cost is drawn from N(mu_i, Sigma_i) and the belief is
updated. Regret of a round: the smallest eps such that the chosen plan's true mean minus eps
is not dominated by the true Pareto front (0 for a truly Pareto-optimal plan); reported summed
over the rounds and averaged over instances. Pareto bias: the Wasserstein-2 distance between
the estimated front (estimated means of the offered plans) and the true front after the last
round. Instances: synthetic fronts of 10, 32 and 72 plans (half of them pushed off the front
by a random amount) and random 20x20 grid worlds with the task 'F a & F b' (plans re-computed
each round from the transition beliefs). The preference is N(centre of the estimated front,
(s * spread)^2 I); s = 0.5 is "moderate", and full runs also sweep s.
Selection time: median milliseconds of one AIF decision over 72 plans.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from scipy.optimize import linprog

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.pareto import pareto_filter, plan
from embodied_aif.models.selector import (
    METHODS,
    Candidate,
    Preference,
    candidates_from_result,
    select,
)
from embodied_aif.models.transition_system import CostBeliefs, grid_system

OBJECTIVES = ('time', 'energy')


def pareto_regret(cost, front) -> float:
    """Smallest eps >= 0 such that cost - eps is not dominated by any point of front."""
    cost = np.asarray(cost, dtype=float)
    front = np.asarray(front, dtype=float)
    return float(max(0.0, (cost[None, :] - front).min(axis=1).max()))


def wasserstein2(a, b) -> float:
    """W2 distance between two uniform point clouds (exact transport by linear programming)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n, m = len(a), len(b)
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).reshape(-1)
    rows = np.kron(np.eye(n), np.ones((1, m)))
    cols = np.kron(np.ones((1, n)), np.eye(m))
    res = linprog(cost, A_eq=np.vstack([rows, cols]),
                  b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]),
                  bounds=(0, None), method='highs')
    return float(np.sqrt(max(res.fun, 0.0)))


def _preference(estimated: np.ndarray, scale: float, weight: float,
                anchor: str = 'ideal') -> Preference:
    """Return the preference N(anchor, (scale * spread)^2 I).

    anchor is the ideal point (per-objective minimum) of the estimated front, or its centre;
    spread is the front's extent per objective.
    """
    point = estimated.min(axis=0) if anchor == 'ideal' else estimated.mean(axis=0)
    spread = np.maximum(estimated.max(axis=0) - estimated.min(axis=0), 1e-3)
    cov = np.diag((scale * spread) ** 2)
    return Preference(OBJECTIVES, point, cov, epistemic_weight=weight)


# ------------------------------------------------------------------------ synthetic fronts

def _front_instance(rng: np.random.Generator, k: int):
    x = np.sort(rng.uniform(0, 1, k))
    curve = np.stack([1 + 9 * x, 1 + 9 * (1 - x) ** 2], axis=1)
    shift = np.where(rng.random(k) < 0.5, rng.uniform(0.2, 1.5, k), 0.0)
    mu = curve + shift[:, None] * rng.uniform(0.5, 1.0, (k, 2))
    std = rng.uniform(0.3, 1.0, (k, 2))
    return mu, std


def _run_front(mu, std, method, rounds, scale, weight, noise_seed, select_seed, n_samples,
               anchor):
    k = mu.shape[0]
    noise = np.random.default_rng(noise_seed)
    pick_rng = np.random.default_rng(select_seed)
    first = mu + std * noise.standard_normal(mu.shape)
    prior_cov = np.einsum('ki,ij->kij', np.full_like(mu, 1.0) ** 2, np.eye(2))
    beliefs = CostBeliefs.from_costs(first, prior_cov, np.ones(k))
    true_front = mu[pareto_filter(mu)]
    regret = 0.0
    for _ in range(rounds):
        offered = pareto_filter(beliefs.mu)
        expected = beliefs.expected_cov()
        cands = []
        for i in offered:
            cov = expected[i] * (1 + 1 / beliefs.kappa[i])
            sub = CostBeliefs(mu=beliefs.mu[i:i + 1], kappa=beliefs.kappa[i:i + 1],
                              nu=beliefs.nu[i:i + 1], psi=beliefs.psi[i:i + 1],
                              count=beliefs.count[i:i + 1])
            cands.append(Candidate(mean=beliefs.mu[i], cov=cov, beliefs=sub,
                                   multiplicity=np.array([1])))
        pref = _preference(beliefs.mu[offered], scale, weight, anchor)
        choice = select(cands, pref, method, pick_rng, n_samples=n_samples)
        i = int(offered[choice.index])
        regret += pareto_regret(mu[i], true_front)
        beliefs = beliefs.update(i, mu[i] + std[i] * noise.standard_normal(2))
    offered = pareto_filter(beliefs.mu)
    return regret, wasserstein2(beliefs.mu[offered], true_front)


# ----------------------------------------------------------------------------- grid worlds

def _grid_instance(seed: int, size: int):
    rng = np.random.default_rng(seed)
    ts = grid_system(rng, size, size, OBJECTIVES, regions={'a': 2, 'b': 2})
    true_mu = ts.beliefs.mu.copy()
    std = rng.uniform(0.05, 0.3, true_mu.shape)
    return ts, true_mu, std


def _run_grid(ts, true_mu, std, method, rounds, scale, weight, noise_seed, select_seed,
              n_samples, anchor):
    noise = np.random.default_rng(noise_seed)
    pick_rng = np.random.default_rng(select_seed)
    task = 'F a & F b'
    true_front = plan(ts, task).costs()
    first = np.maximum(true_mu + std * noise.standard_normal(true_mu.shape), 0.0)
    cov = np.einsum('ti,ij->tij', np.full_like(true_mu, 0.3) ** 2, np.eye(2))
    model = ts.with_beliefs(CostBeliefs.from_costs(first, cov))
    regret = 0.0
    for _ in range(rounds):
        result = plan(model, task)
        cands = candidates_from_result(result, model.beliefs)
        pref = _preference(result.costs(), scale, weight, anchor)
        choice = select(cands, pref, method, pick_rng, n_samples=n_samples)
        chosen = result.plans[choice.index]
        regret += pareto_regret(true_mu[list(chosen.transitions)].sum(axis=0), true_front)
        beliefs = model.beliefs
        for t in chosen.transitions:
            realised = np.maximum(true_mu[t] + std[t] * noise.standard_normal(2), 0.0)
            beliefs = beliefs.update(t, realised)
        model = model.with_beliefs(beliefs)
    final = plan(model, task)
    return regret, wasserstein2(final.costs(), true_front)


# ----------------------------------------------------------------------------------- body

def _time_decisions(seed: int, k: int, repeats: int, n_samples: int) -> list[float]:
    """Milliseconds of AIF decisions over k plans with learned (varied-count) beliefs."""
    rng = np.random.default_rng(seed)
    mu, std = _front_instance(rng, k)
    cov = np.einsum('ki,ij->kij', std ** 2, np.eye(2))
    counts = rng.integers(1, 20, k).astype(float)
    cands = [Candidate(mean=mu[i], cov=cov[i],
                       beliefs=CostBeliefs.from_costs(mu[i:i + 1], cov[i:i + 1], counts[i:i + 1]),
                       multiplicity=np.array([1])) for i in range(k)]
    pref = _preference(mu, 0.5, 1.0)
    pick_rng = np.random.default_rng(seed + 1)
    select(cands, pref, 'aif', pick_rng, n_samples=n_samples)  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        select(cands, pref, 'aif', pick_rng, n_samples=n_samples)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def _body(args) -> dict:
    seeds = list(args.seeds)
    quick = args.quick
    per_size = args.per_size or (10 if quick else 90)  # instances per front size; 3 sizes
    n_grids = args.grids if args.grids is not None else (4 if quick else 30)
    rounds = args.rounds or (25 if quick else 40)
    grid_rounds = args.grid_rounds or (8 if quick else 20)
    grid_size = 20
    scales = args.scales or ((0.5,) if quick else (0.1, 0.5, 2.0))
    n_samples = args.samples
    figures: dict = {}
    timings = _time_decisions(seeds[0], 72, 20 if quick else 200, n_samples)
    for scale in scales:
        variants = [(m, args.epistemic_weight) for m in METHODS] + [
            (f'aif_w{w:g}', w) for w in args.extra_weights]
        regret = {name: [] for name, _ in variants}
        bias = {name: [] for name, _ in variants}
        for k in (10, 32, 72):
            for j in range(per_size):
                seed = seeds[j % len(seeds)] * 100_003 + j * 7 + k
                mu, std = _front_instance(np.random.default_rng(seed), k)
                for name, weight in variants:
                    r, b = _run_front(mu, std, name[:3] if name.startswith('aif') else name,
                                      rounds, scale, weight, seed + 1, seed + 2, n_samples,
                                      args.anchor)
                    regret[name].append(r)
                    bias[name].append(b)
            progress(f's={scale}: fronts of {k} done; mean regret so far ' + ', '.join(
                f'{m} {np.mean(v):.3f}' for m, v in regret.items()))
        for j in range(n_grids):
            seed = seeds[j % len(seeds)] * 100_003 + 50_000 + j
            ts, true_mu, std = _grid_instance(seed, grid_size)
            for name, weight in variants:
                r, b = _run_grid(ts, true_mu, std, name[:3] if name.startswith('aif') else name,
                                 grid_rounds, scale, weight, seed + 1, seed + 2, n_samples,
                                 args.anchor)
                regret[name].append(r)
                bias[name].append(b)
        progress(f's={scale}: grids done; mean regret ' + ', '.join(
            f'{m} {np.mean(v):.3f}' for m, v in regret.items()))
        tag = '' if scale == 0.5 else f'_s{scale:g}'
        for name in regret:
            figures[f'regret_{name}{tag}'] = round(float(np.mean(regret[name])), 4)
            figures[f'bias_{name}{tag}'] = round(float(np.mean(bias[name])), 4)
        figures[f'instances{tag}'] = len(regret['aif'])
    figures['select_ms_median_72'] = round(statistics.median(timings), 3) if timings else None
    figures['select_decisions_timed'] = len(timings)
    figures['select_ms_p90_72'] = round(float(np.percentile(timings, 90)), 3)
    figures['rounds_per_instance'] = rounds
    figures['grid_rounds_per_instance'] = grid_rounds
    figures['grid_size'] = grid_size
    figures['epistemic_weight'] = args.epistemic_weight
    figures['preference_anchor'] = args.anchor
    figures['mc_samples'] = n_samples
    return figures


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(',') if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers separated by commas, got {text!r}') \
            from None
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f'weights must be >= 0, got {text!r}')
    return values


def main(argv=None) -> int:
    """Run the selection benchmark; print one JSON object."""
    parser = make_parser('selection', __doc__.splitlines()[0], '0:3')
    parser.add_argument('--epistemic-weight', type=float, default=1.0,
                        help='weight of the information gain in the AIF selector (default 1)')
    parser.add_argument('--extra-weights', type=_weights, default=(0.0, 0.3),
                        metavar='W,W', help='further epistemic weights to run AIF with, '
                                            'reported as regret_aif_wW (default 0,0.3)')
    parser.add_argument('--scales', type=_weights, default=None, metavar='S,S',
                        help='preference spreads s (default 0.5 with --quick, else 0.1,0.5,2)')
    parser.add_argument('--per-size', type=int, default=None,
                        help='instances per front size (default 10 with --quick, else 90)')
    parser.add_argument('--grids', type=int, default=None,
                        help='grid instances (default 4 with --quick, else 30)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='rounds per front instance (default 25 with --quick, else 40)')
    parser.add_argument('--grid-rounds', type=int, default=None,
                        help='rounds per grid instance (default 8 with --quick, else 20)')
    parser.add_argument('--anchor', choices=('ideal', 'centre'), default='ideal',
                        help='preference mean: the estimated front\'s ideal point (default) or '
                             'its centre')
    parser.add_argument('--samples', type=int, default=64,
                        help='Monte Carlo samples of the information gain (default 64)')
    return run_benchmark(_body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
