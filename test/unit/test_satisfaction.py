"""TaskSpec.satisfaction_threshold: the exact Pareto set of plans likely enough to succeed."""
import dataclasses

import numpy as np
import pytest

from embodied_aif.models.ltl import to_dfa
from embodied_aif.models.pareto import build_product, pareto_filter, plan
from embodied_aif.models.satisfaction import (
    SuccessBeliefs,
    plan_probability,
    plan_with_threshold,
)
from embodied_aif.models.transition_system import model_from_dict, random_system

MODEL = {
    'objectives': ['time', 'energy'], 'initial': 's0',
    'states': {'s0': {'labels': []}, 'r': {'labels': []}, 'm': {'labels': []},
               'n': {'labels': []}, 'g': {'labels': ['goal']}},
    'transitions': [
        {'from': 's0', 'action': 'risky', 'to': 'r', 'cost': [0.5, 0.5]},
        {'from': 'r', 'action': 'go', 'to': 'g', 'cost': [0.5, 0.5]},
        {'from': 's0', 'action': 'safe', 'to': 'm', 'cost': [1.0, 1.0]},
        {'from': 'm', 'action': 'go', 'to': 'g', 'cost': [1.0, 1.0]},
        {'from': 's0', 'action': 'side', 'to': 'n', 'cost': [0.5, 1.5]},
        {'from': 'n', 'action': 'go', 'to': 'g', 'cost': [0.5, 1.5]}]}


def test_threshold_excludes_unreliable_plans_and_recovers_the_feasible_front():
    ts = model_from_dict(MODEL)
    successes = SuccessBeliefs.prior(ts.n_transitions, mean=0.99, strength=10.0)
    for _ in range(5):
        successes = successes.update(0, success=False)  # the risky step failed 5 times
    assert plan(ts, 'F goal').costs().tolist() == [[1.0, 1.0]]
    # Threshold 0 is the plain Pareto set.
    assert plan_with_threshold(ts, 'F goal', successes, 0.0).costs().tolist() == [[1.0, 1.0]]
    result = plan_with_threshold(ts, 'F goal', successes, 0.9)
    # The risky plan (p = 0.66 * 0.99) is out; the two safe plans it dominated come back.
    assert result.satisfiable and result.costs().tolist() == [[1.0, 3.0], [2.0, 2.0]]
    assert result.stats['excluded'] == 1
    probs = result.stats['plan_probabilities']
    np.testing.assert_allclose(probs, [0.99 ** 2, 0.99 ** 2])
    for p, prob in zip(result.plans, probs, strict=True):
        assert plan_probability(successes, p.transitions) == pytest.approx(prob)
        np.testing.assert_allclose(p.expected_cost, p.cost)  # mean beliefs, no optimism
    strict = plan_with_threshold(ts, 'F goal', successes, 0.999)
    assert not strict.satisfiable and not strict.plans
    assert '0.999' in strict.reason and 'probability' in strict.reason


def _simple_paths(ts, task, p_step):
    """(cost, probability) of every simple accepting path of the product with the DFA."""
    product = build_product(ts, to_dfa(task))
    out = [[] for _ in range(product.n_nodes)]
    for e in range(product.n_edges):
        out[product.edge_src[e]].append(e)
    found = []
    stack = [(product.initial, frozenset([product.initial]), np.zeros(2), 1.0)]
    while stack:
        node, seen, cost, prob = stack.pop()
        if product.accepting[node]:
            found.append((cost, prob))
            continue
        for e in out[node]:
            nxt = int(product.edge_dst[e])
            if nxt not in seen:
                t = int(product.edge_transition[e])
                stack.append((nxt, seen | {nxt}, cost + ts.beliefs.mu[t], prob * p_step[t]))
    return found


def test_threshold_matches_enumeration_of_product_paths():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(12):
        ts = random_system(rng, n_states=5, atoms=('a', 'b'), n_objectives=2, out_degree=2,
                           low=1.0, high=3.0, integer=True)
        ts = dataclasses.replace(ts, labels=(frozenset(),) + ts.labels[1:])
        task = 'F a & F b'
        succ = SuccessBeliefs(success=rng.uniform(1.0, 20.0, ts.n_transitions),
                              failure=rng.uniform(0.05, 2.0, ts.n_transitions))
        found = _simple_paths(ts, task, succ.probability())
        if not found:
            continue
        threshold = float(np.median([p for _, p in found]))
        feasible = np.array([c for c, p in found if p >= threshold])
        want = sorted(map(tuple, feasible[pareto_filter(feasible)]))
        result = plan_with_threshold(ts, task, succ, threshold)
        assert sorted(map(tuple, result.costs())) == want
        assert min(result.stats['plan_probabilities']) >= threshold - 1e-12
        checked += 1
    assert checked >= 8


def test_bad_thresholds_and_beliefs():
    ts = model_from_dict(MODEL)
    successes = SuccessBeliefs.prior(ts.n_transitions)
    with pytest.raises(ValueError, match='satisfaction_threshold'):
        plan_with_threshold(ts, 'F goal', successes, 1.5)
    with pytest.raises(ValueError, match='transitions'):
        plan_with_threshold(ts, 'F goal', SuccessBeliefs.prior(2), 0.5)
    with pytest.raises(ValueError, match='> 0'):
        SuccessBeliefs(success=[1.0], failure=[0.0])
