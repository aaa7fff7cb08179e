"""Online plan selection: cumulative Pareto regret and Pareto bias, AIF against baselines.

Protocol (after the published one, re-implemented). An instance has candidate plans whose
true mean costs mu_i and covariances Sigma_i the agent does not know; it holds a
Normal-Inverse-Wishart belief per plan (synthetic fronts) or per transition (grids), set from
one noisy observation. The user's preference is fixed for the instance: N(p, (s * extent)^2 I)
with p a point of the true Pareto front drawn at random (--anchor ideal: the true front's
ideal point) and extent the true front's range per objective; s sets its width (narrow 0.1,
moderate 0.5, wide 2). Every episode the agent plans on optimistic costs (lower confidence
bounds mean - alpha * sqrt(log k / n); --front-optimism, --grid-optimism), a method picks one
of the resulting Pareto plans from its posterior predictive cost, the plan is executed (costs
drawn from the true laws) and the beliefs are updated by conjugate Bayes. Regret of an
episode: the smallest eps such that the chosen plan's true mean cost minus eps is not
dominated by the true front (0 for a truly Pareto-optimal plan); summed over the episodes and
averaged over instances. Preference regret (a secondary figure, not the published one): the
chosen plan's true expected surprise under the preference, H[N(mu_i, Sigma_i), preference],
minus that of the preference-optimal plan (fronts: of all plans; grids: of the true Pareto
plans, an episode's excess clipped at 0), summed and averaged likewise; it is measured at the
moderate width only. Pareto bias: the Wasserstein-2 distance between the estimated front
(Pareto set of the posterior means) and the true front after the last episode. Instances:
synthetic fronts of 10, 32 and 72 plans (about half pushed off the front) and random 20x20
grid worlds with the task 'F a & F b'. Selection time: median milliseconds of one AIF
decision over 72 plans.

Keys: regret_<method> and bias_<method> (all instances, moderate width), the same with
_k10, _k32, _k72, _grid (per front size / grids) and with _narrow, _wide (other widths);
methods aif (--epistemic-weight, default 1), aif_w<W> (other weights), uniform, topsis,
weights (the baselines ignore the width, so they repeat under every width); lowest_regret[_w].
With --ablations also aif_gauss (the user's Gaussian preference not restricted to the front),
aif_params (information gain about each plan's own mean cost instead of about the choice) and
aif_plain (both, i.e. the selector before those two changes), at --epistemic-weight.
pref_regret_<method>[_<group>] and lowest_pref_regret: preference regret at the moderate width.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy.optimize import linprog

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.pareto import pareto_filter, plan
from embodied_aif.models.selector import (
    METHODS,
    Candidate,
    Preference,
    candidates_from_result,
    cross_entropy,
    select,
)
from embodied_aif.models.transition_system import CostBeliefs, grid_system

OBJECTIVES = ('time', 'energy')
TASK = 'F a & F b'
SIZES = (10, 32, 72)
# Preference widths s (standard deviation as a fraction of the true front's extent).
WIDTHS = {'narrow': 0.1, 'moderate': 0.5, 'wide': 2.0}
FRONT_PRIOR_STD = 1.0  # prior std of a plan's cost on synthetic fronts
GRID_PRIOR_STD = 0.3  # prior std of a step's cost on grids


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


def user_preference(true_front: np.ndarray, rng: np.random.Generator, width: float,
                    weight: float, anchor: str = 'front',
                    restrict_to_front: bool = True) -> Preference:
    """The user's fixed preference N(point, (width * extent)^2 I).

    point is a true-front point drawn at random (anchor 'front') or the true front's ideal
    point, its per-objective minimum (anchor 'ideal'); extent is the front's range.
    restrict_to_front is passed on to the selector's Preference.
    """
    point = true_front[int(rng.integers(len(true_front)))]
    if anchor == 'ideal':
        point = true_front.min(axis=0)
    extent = np.maximum(true_front.max(axis=0) - true_front.min(axis=0), 1e-3)
    return Preference(OBJECTIVES, point, np.diag((width * extent) ** 2),
                      epistemic_weight=weight, restrict_to_front=restrict_to_front)


def _method(name: str) -> str:
    return 'aif' if name.startswith('aif') else name


# Ablations of the AIF selector (--ablations): name -> (preference restricted to the front,
# epistemic term). 'aif_plain' is the selector before both changes: the user's Gaussian as it
# is and the information gain about each plan's own mean cost.
ABLATIONS = {'aif_plain': (False, 'parameters'), 'aif_gauss': (False, 'decision'),
             'aif_params': (True, 'parameters')}


def _variant(name: str) -> tuple[bool, str]:
    """(restrict_to_front, info) of an AIF variant's name; the defaults for the others."""
    return ABLATIONS.get(name, (True, 'decision'))


# ------------------------------------------------------------------------ synthetic fronts

def _front_instance(rng: np.random.Generator, k: int):
    x = np.sort(rng.uniform(0, 1, k))
    curve = np.stack([1 + 9 * x, 1 + 9 * (1 - x) ** 2], axis=1)
    shift = np.where(rng.random(k) < 0.5, rng.uniform(0.2, 1.5, k), 0.0)
    mu = curve + shift[:, None] * rng.uniform(0.5, 1.0, (k, 2))
    std = rng.uniform(0.3, 1.0, (k, 2))
    return mu, std


def _run_front(mu, std, method, rounds, pref, noise_seed, select_seed, n_samples, optimism,
               info='decision'):
    k = mu.shape[0]
    noise = np.random.default_rng(noise_seed)
    pick_rng = np.random.default_rng(select_seed)
    first = mu + std * noise.standard_normal(mu.shape)
    prior_cov = np.broadcast_to(FRONT_PRIOR_STD ** 2 * np.eye(2), (k, 2, 2))
    beliefs = CostBeliefs.from_costs(first, prior_cov, np.ones(k))
    true_front = mu[pareto_filter(mu)]
    # The true expected surprise of every plan under the preference; its minimum is the
    # preference-optimal plan.
    surprise = cross_entropy(mu, np.einsum('ki,ij->kij', std ** 2, np.eye(2)), pref.mean,
                             pref.covariance)
    regret = 0.0
    pref_regret = 0.0
    for _ in range(rounds):
        offered = pareto_filter(beliefs.lower_bound(optimism))
        expected = beliefs.expected_cov()
        cands = []
        for i in offered:
            # Posterior predictive covariance of one execution: E[Sigma] (1 + 1 / kappa).
            cov = expected[i] * (1 + 1 / beliefs.kappa[i])
            sub = CostBeliefs(mu=beliefs.mu[i:i + 1], kappa=beliefs.kappa[i:i + 1],
                              nu=beliefs.nu[i:i + 1], psi=beliefs.psi[i:i + 1],
                              count=beliefs.count[i:i + 1])
            cands.append(Candidate(mean=beliefs.mu[i], cov=cov, beliefs=sub,
                                   multiplicity=np.array([1])))
        choice = select(cands, pref, method, pick_rng, n_samples=n_samples, info=info)
        i = int(offered[choice.index])
        regret += pareto_regret(mu[i], true_front)
        pref_regret += surprise[i] - surprise.min()
        beliefs = beliefs.update(i, mu[i] + std[i] * noise.standard_normal(2))
    estimated = beliefs.mu[pareto_filter(beliefs.mu)]
    return regret, wasserstein2(estimated, true_front), pref_regret


# ----------------------------------------------------------------------------- grid worlds

def _grid_instance(seed: int, size: int):
    rng = np.random.default_rng(seed)
    ts = grid_system(rng, size, size, OBJECTIVES, regions={'a': 2, 'b': 2})
    true_mu = ts.beliefs.mu.copy()
    std = rng.uniform(0.05, 0.3, true_mu.shape)
    front = plan(ts, TASK)
    laws = [_plan_law(true_mu, std, p.transitions) for p in front.plans]
    return ts, true_mu, std, front.costs(), laws


def _plan_law(true_mu, std, transitions):
    """True mean and covariance of a grid plan's total cost (independent step costs)."""
    ids = list(transitions)
    return true_mu[ids].sum(axis=0), np.diag((std[ids] ** 2).sum(axis=0))


def _surprise(law, pref: Preference) -> float:
    return float(cross_entropy(law[0][None], law[1][None], pref.mean, pref.covariance)[0])


def _run_grid(ts, true_mu, std, true_front, laws, method, rounds, pref, noise_seed,
              select_seed, n_samples, optimism, info='decision'):
    noise = np.random.default_rng(noise_seed)
    pick_rng = np.random.default_rng(select_seed)
    first = np.maximum(true_mu + std * noise.standard_normal(true_mu.shape), 0.0)
    cov = np.broadcast_to(GRID_PRIOR_STD ** 2 * np.eye(2), (true_mu.shape[0], 2, 2))
    model = ts.with_beliefs(CostBeliefs.from_costs(first, cov))
    # Preference-optimal reference: the true Pareto plan of least expected surprise (plans off
    # the front are not enumerated, so an episode's excess is clipped at 0).
    best = min(_surprise(law, pref) for law in laws)
    regret = 0.0
    pref_regret = 0.0
    for _ in range(rounds):
        result = plan(model, TASK, optimism=optimism)
        cands = candidates_from_result(result, model.beliefs)
        choice = select(cands, pref, method, pick_rng, n_samples=n_samples, info=info)
        chosen = result.plans[choice.index]
        regret += pareto_regret(true_mu[list(chosen.transitions)].sum(axis=0), true_front)
        pref_regret += max(0.0, _surprise(_plan_law(true_mu, std, chosen.transitions), pref)
                           - best)
        beliefs = model.beliefs
        for t in chosen.transitions:
            realised = np.maximum(true_mu[t] + std[t] * noise.standard_normal(2), 0.0)
            beliefs = beliefs.update(t, realised)
        model = model.with_beliefs(beliefs)
    final = plan(model, TASK)
    return regret, wasserstein2(final.costs(), true_front), pref_regret


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
    pref = user_preference(mu[pareto_filter(mu)], rng, WIDTHS['moderate'], 1.0, 'ideal')
    pick_rng = np.random.default_rng(seed + 1)
    select(cands, pref, 'aif', pick_rng, n_samples=n_samples)  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        select(cands, pref, 'aif', pick_rng, n_samples=n_samples)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def _instances(seeds, per_size: int, n_grids: int):
    """(group, seed, builder) of every instance; the same for every method and width."""
    out = []
    for k in SIZES:
        for j in range(per_size):
            out.append((f'k{k}', seeds[j % len(seeds)] * 100_003 + j * 7 + k, k))
    for j in range(n_grids):
        out.append(('grid', seeds[j % len(seeds)] * 100_003 + 50_000 + j, None))
    return out


class _Serial:
    """In-process stand-in for a process pool (one job)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, items):
        return map(fn, items)


def _instance_runs(spec) -> list[tuple[str, str | None, float, float, float]]:
    """Run every method on one instance: (name, width name, regret, bias, pref regret) rows.

    The width name is None for baselines, which ignore the preference's width in choosing;
    their preference regret is measured at the moderate width.
    """
    group, seed, k, cfg = spec
    if k is not None:
        mu, std = _front_instance(np.random.default_rng(seed), k)
        true_front = mu[pareto_filter(mu)]
    else:
        ts, true_mu, std, true_front, laws = _grid_instance(seed, 20)
    point_seed = int(np.random.default_rng(seed + 3).integers(2**31))
    runs = [(name, w_name, w, s) for name, w in cfg['aif_variants']
            for w_name, s in cfg['widths'].items()]
    runs += [(name, None, 0.0, WIDTHS['moderate']) for name in cfg['baselines']]
    rows = []
    for name, w_name, w, s in runs:
        restrict, info = _variant(name)
        pref = user_preference(true_front, np.random.default_rng(point_seed), s, w,
                               cfg['anchor'], restrict)
        if k is not None:
            r, b, e = _run_front(mu, std, _method(name), cfg['rounds'], pref, seed + 1,
                                 seed + 2, cfg['n_samples'], cfg['front_optimism'], info)
        else:
            r, b, e = _run_grid(ts, true_mu, std, true_front, laws, _method(name),
                                cfg['grid_rounds'], pref, seed + 1, seed + 2, cfg['n_samples'],
                                cfg['grid_optimism'], info)
        rows.append((name, w_name, r, b, e))
    return rows


def _body(args) -> dict:
    seeds = list(args.seeds)
    quick = args.quick
    per_size = args.per_size if args.per_size is not None else (10 if quick else 100)
    n_grids = args.grids if args.grids is not None else (4 if quick else 30)
    rounds = args.rounds or (25 if quick else 40)
    grid_rounds = args.grid_rounds or (8 if quick else 20)
    widths = {name: WIDTHS[name] for name in (('moderate',) if quick and not args.widths
                                               else args.widths or tuple(WIDTHS))}
    n_samples = args.samples
    weight = args.epistemic_weight
    extra = args.extra_weights if args.extra_weights is not None else (
        (0.0,) if quick else (0.0, 0.3, 1.0))
    aif_variants = [('aif', weight)] + [(f'aif_w{w:g}', w) for w in extra if w != weight]
    if args.ablations:
        aif_variants += [(name, weight) for name in ABLATIONS]
    baselines = [m for m in METHODS if m != 'aif']
    timings = _time_decisions(seeds[0], 72, 20 if quick else 200, n_samples)
    # regret[width][name][group] and bias likewise; baselines ignore the preference's
    # width, so they run once and are reported under every width.
    regret: dict = {w: {} for w in widths}
    bias: dict = {w: {} for w in widths}
    # Preference regret depends on the width it is measured at; the baselines ran with the
    # moderate preference, so it is only kept (and reported) at the moderate width.
    pref_regret: dict = {}
    settings = dict(widths=widths, aif_variants=aif_variants, baselines=baselines,
                    rounds=rounds, grid_rounds=grid_rounds, n_samples=n_samples,
                    anchor=args.anchor, front_optimism=args.front_optimism,
                    grid_optimism=args.grid_optimism)
    specs = [(group, seed, k, settings) for group, seed, k in _instances(seeds, per_size,
                                                                          n_grids)]
    totals = {f'k{k}': per_size for k in SIZES} | {'grid': n_grids}
    built: dict = {}
    with ProcessPoolExecutor(max_workers=args.jobs) if args.jobs > 1 else _Serial() as pool:
        for (group, _, _, _), rows in zip(specs, pool.map(_instance_runs, specs),
                                          strict=True):
            for name, w_name, r, b, e in rows:
                for target in (widths if w_name is None else (w_name,)):
                    regret[target].setdefault(name, {}).setdefault(group, []).append(r)
                    bias[target].setdefault(name, {}).setdefault(group, []).append(b)
                if w_name in (None, 'moderate'):
                    pref_regret.setdefault(name, {}).setdefault(group, []).append(e)
            built[group] = built.get(group, 0) + 1
            if built[group] == totals[group]:
                for w_name in widths:
                    progress(f'{group}: {built[group]} instances done; mean regret at {w_name} '
                             + ', '.join(f'{m} {np.mean(v[group]):.3f}'
                                         for m, v in regret[w_name].items()))
    figures: dict = {}
    for w_name in widths:
        tag = '' if w_name == 'moderate' else f'_{w_name}'
        for name in regret[w_name]:
            by_group_r = regret[w_name][name]
            by_group_b = bias[w_name][name]
            all_r = [x for v in by_group_r.values() for x in v]
            all_b = [x for v in by_group_b.values() for x in v]
            figures[f'regret_{name}{tag}'] = round(float(np.mean(all_r)), 4)
            figures[f'bias_{name}{tag}'] = round(float(np.mean(all_b)), 4)
            for group in by_group_r:
                figures[f'regret_{name}_{group}{tag}'] = round(float(np.mean(by_group_r[group])),
                                                               4)
                figures[f'bias_{name}_{group}{tag}'] = round(float(np.mean(by_group_b[group])),
                                                             4)
        ranking = sorted((figures[f'regret_{n}{tag}'], n) for n in regret[w_name])
        figures[f'lowest_regret{tag}'] = ranking[0][1]
    if 'moderate' in widths:
        for name, by_group in pref_regret.items():
            figures[f'pref_regret_{name}'] = round(float(np.mean(
                [x for v in by_group.values() for x in v])), 4)
            for group, v in by_group.items():
                figures[f'pref_regret_{name}_{group}'] = round(float(np.mean(v)), 4)
        ranking = sorted((figures[f'pref_regret_{n}'], n) for n in pref_regret)
        figures['lowest_pref_regret'] = ranking[0][1]
    figures['instances'] = 3 * per_size + n_grids
    figures['instances_fronts'] = 3 * per_size
    figures['instances_grids'] = n_grids
    figures['preference_widths'] = widths
    figures['select_ms_median_72'] = round(statistics.median(timings), 3) if timings else None
    figures['select_decisions_timed'] = len(timings)
    figures['select_ms_p90_72'] = round(float(np.percentile(timings, 90)), 3)
    figures['rounds_per_instance'] = rounds
    figures['grid_rounds_per_instance'] = grid_rounds
    figures['grid_size'] = 20
    figures['epistemic_weight'] = weight
    figures['mc_samples'] = n_samples
    figures['preference_anchor'] = args.anchor
    figures['optimism_fronts'] = args.front_optimism
    figures['optimism_grids'] = args.grid_optimism
    return figures


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(',') if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers separated by commas, got {text!r}') \
            from None
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f'values must be >= 0, got {text!r}')
    return values


def _widths(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(',') if x.strip())
    unknown = [n for n in names if n not in WIDTHS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f'widths must be among {", ".join(WIDTHS)}, '
                                         f'got {text!r}')
    return names


def main(argv=None) -> int:
    """Run the selection benchmark; print one JSON object."""
    parser = make_parser('selection', __doc__.splitlines()[0], '0:3')
    parser.add_argument('--epistemic-weight', type=float, default=1.0,
                        help='weight of the information gain in the AIF selector (default 1)')
    parser.add_argument('--extra-weights', type=_numbers, default=None,
                        metavar='W,W', help='further epistemic weights to run AIF with, '
                                            'reported as regret_aif_wW (default 0 with '
                                            '--quick, else 0,0.3,1)')
    parser.add_argument('--widths', type=_widths, default=None, metavar='NAME,NAME',
                        help='preference widths among narrow (s=0.1), moderate (0.5), wide (2) '
                             '(default moderate with --quick, else all three)')
    parser.add_argument('--per-size', type=int, default=None,
                        help='instances per front size (default 10 with --quick, else 100)')
    parser.add_argument('--grids', type=int, default=None,
                        help='grid instances (default 4 with --quick, else 30)')
    parser.add_argument('--rounds', type=int, default=None,
                        help='episodes per front instance (default 25 with --quick, else 40)')
    parser.add_argument('--grid-rounds', type=int, default=None,
                        help='episodes per grid instance (default 8 with --quick, else 20)')
    parser.add_argument('--anchor', choices=('front', 'ideal'), default='front',
                        help='preference mean: a random true-front point (default) or the '
                             'true front\'s ideal point')
    parser.add_argument('--front-optimism', type=float, default=0.5,
                        help='alpha of the lower confidence bounds on fronts (default 0.5)')
    parser.add_argument('--grid-optimism', type=float, default=0.05,
                        help='alpha of the lower confidence bounds per grid step (default 0.05)')
    parser.add_argument('--ablations', action='store_true',
                        help='also run the AIF selector without the restriction of the '
                             'preference to the front (aif_gauss), with the information gain '
                             'about each plan\'s own cost (aif_params), and without both '
                             '(aif_plain), at --epistemic-weight')
    parser.add_argument('--jobs', type=int, default=1,
                        help='worker processes over instances (default 1; results do not '
                             'depend on it)')
    parser.add_argument('--samples', type=int, default=64,
                        help='Monte Carlo samples of the information gain (default 64)')
    return run_benchmark(_body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
