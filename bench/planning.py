"""Exact Pareto planning against Storm's multi-objective Pareto query on the same products.

For random grid worlds (10x10, 20x20, 40x40) with a 2-3 step task and 2-3 objectives, the
product of the grid with the task's DFA is planned by `models.pareto.plan` (every Pareto-optimal
plan) and handed to Storm as an MDP (one choice per product edge, accepting nodes absorbing
and cost-free, nodes that cannot reach acceptance removed) with the query
``multi(R{"c0"}min=? [F "goal"], ...)``. Storm returns the convex Pareto curve achievable with
randomised schedulers; its vertices must equal the vertices of the lower convex hull of our
Pareto costs. Storm's floating-point engine (policy iteration) is timed; where its curve
disagrees with ours, Storm's exact engine is run as the reference (floating-point runs were
seen to miss true vertices). Figures: time_ratio_vs_storm (our planning time / Storm's
floating-point query time, median), hull_match (fraction of compared instances whose hull
vertices agree with Storm's reference), hull_match_float_only (agreement with the
floating-point curves alone).
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from scipy.optimize import linprog

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.ltl import to_dfa
from embodied_aif.models.pareto import Product, build_product, plan
from embodied_aif.models.transition_system import grid_system

TASKS = {2: 'F a & F b', 3: 'F (a & F (b & F c))'}
OBJECTIVES = {2: ('time', 'energy'), 3: ('time', 'energy', 'risk')}


def product_drn(product: Product, edge_cost: np.ndarray, objectives) -> tuple[str, int]:
    """Write the live part of a product as a Storm DRN MDP; return (text, number of states).

    States that cannot reach acceptance are dropped (so that failing early is never a cheap
    way out), accepting states become cost-free self-loops labelled "goal".
    """
    live = np.flatnonzero(product.live)
    if not product.live[product.initial]:
        raise ValueError('the initial product node cannot reach acceptance')
    order = [product.initial] + [int(v) for v in live if v != product.initial]
    index = {v: i for i, v in enumerate(order)}
    choices: list[list[tuple[int, np.ndarray]]] = [[] for _ in order]
    for e, (a, b) in enumerate(zip(product.edge_src.tolist(), product.edge_dst.tolist(),
                                   strict=True)):
        if a in index and b in index:
            choices[index[a]].append((index[b], edge_cost[e]))
    d = len(objectives)
    zero = np.zeros(d)
    lines = ['@type: MDP', '@parameters', '', '@reward_models', ' '.join(objectives),
             '@nr_states', str(len(order)), '@nr_choices', '', '@model']
    n_choices = 0
    for i, v in enumerate(order):
        tags = []
        if i == 0:
            tags.append('init')
        if product.accepting[v]:
            tags.append('goal')
        lines.append(f'state {i} ' + ' '.join(tags))
        outs = [(i, zero)] if product.accepting[v] else choices[i]
        for k, (j, cost) in enumerate(outs):
            lines.append(f'\taction {k} [' + ', '.join(repr(float(c)) for c in cost) + ']')
            lines.append(f'\t\t{j} : 1')
            n_choices += 1
    lines[8] = str(n_choices)
    return '\n'.join(lines) + '\n', len(order)


def storm_pareto(product: Product, edge_cost: np.ndarray, objectives,
                 precision: str = '1/1000000', workdir=None, exact: bool = False):
    """Ask Storm for the Pareto curve of the product.

    Return (under, over, build_s, check_s): the vertices of Storm's under-approximation
    (points its schedulers achieve) and over-approximation (outer bound) of the curve, and the
    seconds spent building the model and answering the query. Floating point mode uses policy
    iteration for the weighted sub-problems; exact mode builds the model over rationals (the
    costs' binary values, exactly) and computes exactly. precision: absolute precision of the
    curve, a rational as text.
    """
    import tempfile
    from pathlib import Path

    import stormpy
    import stormpy.developer as storm_dev
    import stormpy.developer._core as storm_core

    text, _ = product_drn(product, edge_cost, objectives)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / 'product.drn'
        path.write_text(text)
        start = time.perf_counter()
        if exact:
            model = storm_dev._build_explicit_drn_model_Rational(str(path))
        else:
            model = stormpy.build_model_from_drn(str(path))
        built = time.perf_counter()
    query = 'multi(' + ', '.join(f'R{{"{o}"}}min=? [F "goal"]' for o in objectives) + ')'
    prop = stormpy.parse_properties(query)[0]
    if exact:
        env = storm_dev.get_exact_environment()
    else:
        env = stormpy.Environment()
        env.solver().min_max().method = storm_core.MinMaxMethod.POLICY_ITERATION
    env.modelchecker().multi().precision = stormpy.Rational(precision)
    checked = time.perf_counter()
    result = stormpy.model_checking(model, prop, environment=env)
    done = time.perf_counter()
    d = len(objectives)

    def points(polytope):
        return np.asarray([[float(x) for x in v] for v in polytope.vertices],
                          dtype=float).reshape(-1, d)

    return (points(result.get_under_approximation()), points(result.get_over_approximation()),
            built - start, done - checked)


def storm_pareto_timed(product: Product, edge_cost: np.ndarray, objectives,
                       timeout_s: float, precision: str = '1/1000000', exact: bool = False):
    """Run storm_pareto in a child process; return its result, or None after timeout_s."""
    import multiprocessing as mp

    ctx = mp.get_context('fork')
    queue = ctx.Queue()

    def target():
        # Storm logs warnings on the process's stdout, which carries the benchmark's JSON.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        queue.put(storm_pareto(product, edge_cost, objectives, precision, exact=exact))

    child = ctx.Process(target=target, daemon=True)
    child.start()
    try:
        return queue.get(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - queue.Empty on timeout, or the child died
        return None
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def supported_vertices(points, tol: float = 1e-6) -> np.ndarray:
    """Return the vertices of conv(points) + R^d_+ (the supported extreme Pareto points).

    A point is dropped when, within tol (relative to the spread of the points), it is weakly
    dominated by a convex combination of the others; near-duplicates are merged first.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or len(pts) == 0:
        return pts.reshape(0, pts.shape[-1] if pts.ndim == 2 else 0)
    scale = max(1.0, float(np.abs(pts).max()))
    eps = tol * scale
    from scipy.spatial import cKDTree

    pts = pts[np.lexsort(pts.T[::-1])]
    dropped = np.zeros(len(pts), dtype=bool)
    for i, j in sorted(cKDTree(pts).query_pairs(eps, p=np.inf)):
        if not dropped[i]:
            dropped[j] = True  # keep the lexicographically first of near-duplicates
    pts = pts[~dropped]
    # Vertices of conv(P) + R^d_+ are vertices of conv(P): let qhull shortlist them, then
    # decide each candidate by linear programming against the shortlist only.
    if len(pts) > pts.shape[1] + 1:
        try:
            from scipy.spatial import ConvexHull

            pts = pts[np.sort(ConvexHull(pts).vertices)]
        except Exception:  # noqa: BLE001 - degenerate (e.g. coplanar) sets: test every point
            pass
    keep = []
    for i, p in enumerate(pts):
        others = np.delete(pts, i, axis=0)
        if len(others) == 0:
            keep.append(i)
            continue
        # Feasible lambda >= 0, sum lambda = 1, others^T lambda <= p + eps  -> not a vertex.
        res = linprog(np.zeros(len(others)), A_ub=others.T, b_ub=p + eps,
                      A_eq=np.ones((1, len(others))), b_eq=[1.0], bounds=(0, None),
                      method='highs')
        if res.status != 0:
            keep.append(i)
    return pts[keep]


def same_vertices(a, b, tol: float = 1e-4) -> bool:
    """Whether two point sets have the same supported vertices within tol (relative)."""
    a = supported_vertices(a, tol / 10)
    b = supported_vertices(b, tol / 10)
    if len(a) != len(b):
        return False
    scale = max(1.0, float(np.abs(a).max()) if len(a) else 1.0)
    return all(np.abs(b - p).max(axis=1).min() <= tol * scale for p in a) and \
        all(np.abs(a - q).max(axis=1).min() <= tol * scale for q in b)


def above_hull(points, hull_points, tol: float = 1e-4) -> bool:
    """Whether every point lies in conv(hull_points) + R^d_+ (within tol, relative)."""
    hull = np.asarray(hull_points, dtype=float)
    scale = max(1.0, float(np.abs(hull).max()))
    for p in np.asarray(points, dtype=float):
        res = linprog(np.zeros(len(hull)), A_ub=hull.T, b_ub=p + tol * scale,
                      A_eq=np.ones((1, len(hull))), b_eq=[1.0], bounds=(0, None),
                      method='highs')
        if res.status != 0:
            return False
    return True


def hulls_match(ours, under, over, tol: float = 1e-4) -> bool:
    """Compare our Pareto costs with Storm's curve.

    Storm's curve lies between its under-approximation (points its schedulers achieve) and
    its over-approximation (an outer bound); at a tight precision both touch the curve at its
    vertices, but each was seen to omit a vertex now and then (2-D: the under-approximation,
    3-D: the over-approximation on a degenerate face). Storm's vertices are therefore the
    supported vertices of both vertex sets together. Match: they equal the vertices of our
    lower convex hull, and every point Storm achieved lies on or above our hull.
    """
    ours = np.asarray(ours, dtype=float)
    d = ours.shape[1]
    storm = np.vstack([np.reshape(under, (-1, d)), np.reshape(over, (-1, d))])
    return same_vertices(ours, storm, tol) and above_hull(under, ours, tol)


def storm_vertices(under, over, d: int, tol: float = 1e-5) -> np.ndarray:
    """Return the supported vertices of Storm's under- and over-approximation together."""
    return supported_vertices(np.vstack([np.reshape(under, (-1, d)),
                                         np.reshape(over, (-1, d))]), tol)


def _instance(seed: int, size: int, d: int):
    rng = np.random.default_rng(seed)
    regions = {'a': 2, 'b': 2, 'c': 2}
    ts = grid_system(rng, size, size, OBJECTIVES[d], regions=regions)
    return ts, TASKS[2 if seed % 2 == 0 else 3]


def _body(args) -> dict:
    if args.quick:
        configs = [(10, 2), (10, 3), (20, 2)]
        seeds = list(args.seeds)[:2]
    else:
        configs = [(size, d) for size in (10, 20, 40) for d in (2, 3)]
        seeds = list(args.seeds)
    if args.sizes or args.objectives:
        configs = [(size, d) for size in (args.sizes or (10, 20, 40))
                   for d in (args.objectives or (2, 3))]
    for _, d in configs:
        if d not in OBJECTIVES:
            raise ValueError(f'--objectives must be 2 or 3, got {d}')
    ratios, matches, rows = [], [], []
    for size, d in configs:
        for seed in seeds:
            ts, task = _instance(seed, size, d)
            ours = plan(ts, task)
            ours_s = ours.stats['time_s']
            product = build_product(ts, to_dfa(task))
            edge_cost = ts.costs()[product.edge_transition]
            storm = storm_pareto_timed(product, edge_cost, ts.objectives, args.storm_timeout,
                                       args.storm_precision)
            match_float = match_exact = None
            if storm is None:
                under = over = np.zeros((0, d))
                build_s, check_s, match = float('nan'), args.storm_timeout, None
                progress(f'Storm timed out after {args.storm_timeout}s')
            else:
                under, over, build_s, check_s = storm
                match = match_float = hulls_match(ours.costs(), under, over)
                if not match_float:
                    # Floating-point PCAA was seen to miss true vertices in both of its
                    # approximations; the exact engine is the reference then.
                    exact = storm_pareto_timed(product, edge_cost, ts.objectives,
                                               args.storm_timeout, args.storm_precision,
                                               exact=True)
                    if exact is not None:
                        under, over = exact[0], exact[1]
                        match = match_exact = hulls_match(ours.costs(), under, over)
                    else:
                        match = None
                        progress('exact Storm timed out')
                if match is not None:
                    matches.append(match)
            ratios.append(ours_s / check_s)
            rows.append({'size': size, 'objectives': d, 'seed': seed, 'task': task,
                         'pareto_plans': len(ours.plans),
                         'hull_vertices': int(len(supported_vertices(ours.costs(), 1e-5))),
                         'storm_vertices': int(len(storm_vertices(under, over, d))),
                         'ours_s': round(ours_s, 4), 'storm_check_s': round(check_s, 4),
                         'storm_build_s': None if storm is None else round(build_s, 4),
                         'storm_timed_out': storm is None, 'hull_match': match,
                         'hull_match_float': match_float, 'hull_match_exact': match_exact})
            progress(f'{size}x{size} d={d} seed={seed}: {len(ours.plans)} plans in '
                     f'{ours_s:.3f}s, Storm {check_s:.3f}s, hull match {match}')
    return {
        'time_ratio_vs_storm': round(statistics.median(ratios), 4),
        'time_ratio_vs_storm_max': round(max(ratios), 4),
        'hull_match': _fraction(matches),
        'storm_timeouts': sum(r['storm_timed_out'] for r in rows),
        'hull_match_float_only': _fraction([r['hull_match_float'] for r in rows]),
        'instances': rows,
    }


def _fraction(flags) -> float | None:
    known = [bool(f) for f in flags if f is not None]
    return sum(known) / len(known) if known else None


def main(argv=None) -> int:
    """Run the planning benchmark; print one JSON object."""
    parser = make_parser('planning', __doc__.splitlines()[0], '0:5')
    parser.add_argument('--storm-timeout', type=float, default=300.0,
                        help='seconds allowed to each Storm query (timeouts count with this '
                             'time in the ratio and are left out of hull_match)')
    parser.add_argument('--storm-precision', default='1/1000000', metavar='P',
                        help="Storm's absolute precision of the Pareto curve, a rational "
                             '(default 1/1000000)')
    parser.add_argument('--sizes', type=_ints, default=None, metavar='N,N',
                        help='grid sizes (default 10,20 with --quick, else 10,20,40)')
    parser.add_argument('--objectives', type=_ints, default=None, metavar='D,D',
                        help='numbers of objectives (default 2,3; --quick: 2 and 3 on 10x10, '
                             '2 on 20x20)')
    return run_benchmark(_body, parser, argv)


def _ints(text: str) -> tuple[int, ...]:
    import argparse

    try:
        values = tuple(int(x) for x in text.split(',') if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected integers separated by commas, got {text!r}') \
            from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f'expected positive integers, got {text!r}')
    return values


if __name__ == '__main__':
    sys.exit(main())
