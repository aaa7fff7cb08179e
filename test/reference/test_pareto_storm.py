"""Pareto planning against Storm's multi-objective Pareto curves (stormpy) on the same products.

Storm allows randomised schedulers, so its curve is the lower convex hull of the achievable
costs: only our supported (hull) points are compared. The product is posed as an MDP without
the states that cannot reach acceptance, so "fail early" is never a cheap way out. Storm runs
in exact arithmetic (its floating-point multi-objective engine was seen to miss true
vertices on larger grids; bench/planning.py reports how often).
"""
import dataclasses

import numpy as np

from embodied_aif.bench.planning import (
    hulls_match,
    product_drn,
    storm_pareto,
    supported_vertices,
)
from embodied_aif.models.ltl import to_dfa
from embodied_aif.models.pareto import build_product, plan
from embodied_aif.models.transition_system import grid_system, random_system

TASKS = ('F a & F b', 'F (a & F b)', 'F a & G !c', '!b U a', 'F (a & F (b & F c))')


def _compare(ts, task):
    result = plan(ts, task)
    if not result.satisfiable or len(result.plans[0].transitions) == 0:
        return None
    product = build_product(ts, to_dfa(task))
    edge_cost = ts.costs()[product.edge_transition]
    under, over, _, _ = storm_pareto(product, edge_cost, ts.objectives, exact=True)
    assert len(over) > 0 and len(under) > 0
    costs = result.costs()
    assert hulls_match(costs, under, over), (task, costs, under, over)
    # The comparison has teeth: losing a hull vertex, or pretending one is cheaper, fails.
    hull = supported_vertices(costs, 1e-5)
    if len(hull) >= 2:
        assert not hulls_match(hull[1:], under, over)
        better = hull.copy()
        better[0] -= 0.01
        assert not hulls_match(better, under, over)
    return len(hull)


def test_random_systems_match_storm():
    rng = np.random.default_rng(5)
    compared, hull_sizes = 0, []
    for trial in range(16):
        d = 2 + trial % 2
        ts = random_system(rng, n_states=8, atoms=('a', 'b', 'c'), n_objectives=d,
                           out_degree=3, low=0.2, high=3.0)
        ts = dataclasses.replace(ts, labels=(frozenset(),) + ts.labels[1:])
        if not {'a', 'b', 'c'} <= ts.all_labels():
            continue
        size = _compare(ts, TASKS[trial % len(TASKS)])
        if size is not None:
            compared += 1
            hull_sizes.append(size)
    assert compared >= 8 and max(hull_sizes) >= 3


def test_grids_match_storm():
    hull_sizes = []
    for seed in range(6):
        d = 2 + seed % 2
        ts = grid_system(np.random.default_rng(seed), 5, 5,
                         ('time', 'energy', 'risk')[:d])
        size = _compare(ts, TASKS[seed % 2 * 4])  # 'F a & F b' or the 3-step sequence
        assert size is not None
        hull_sizes.append(size)
    assert max(hull_sizes) >= 3


def test_drn_export_drops_states_that_cannot_reach_acceptance():
    ts = grid_system(np.random.default_rng(0), 3, 3, ('time', 'energy'),
                     regions={'a': 1, 'c': 2})
    product = build_product(ts, to_dfa('F a & G !c'))
    text, n_states = product_drn(product, ts.costs()[product.edge_transition], ts.objectives)
    assert n_states == int(product.live.sum()) < product.n_nodes
    assert text.count('goal') == int((product.accepting & product.live).sum())
    assert '@reward_models\ntime energy' in text
