"""Pareto planning against exhaustive enumeration on small random systems and formulas.

Two references: (1) enumeration of transition-system paths judged by the direct finite-trace
semantics (no automaton involved), long enough that every longer path is provably dominated;
(2) enumeration of all simple paths of the product with the DFA, with zero costs and ties.
"""
import dataclasses

import numpy as np

from embodied_aif.models import ltl
from embodied_aif.models.pareto import pareto_filter, plan
from embodied_aif.models.transition_system import random_system

ATOMS = ('a', 'b', 'c')
TASKS = ('F a & F b', 'F (a & F b)', 'F a & G !c', '!b U a', 'F (a & X b)', 'G !c & F (b & F a)')


def _system(rng, d, low, high, n_states=6, out_degree=3):
    ts = random_system(rng, n_states=n_states, atoms=ATOMS, n_objectives=d,
                       out_degree=out_degree, low=low, high=high, integer=True)
    # Start from an unlabelled state so that few tasks are decided by the first letter.
    labels = [frozenset()] + [set(x) for x in ts.labels[1:]]
    for atom in ATOMS:  # keep every atom somewhere
        labels[1 + int(rng.integers(n_states - 1))].add(atom)
    return dataclasses.replace(ts, labels=tuple(frozenset(x) for x in labels))


def _canonical(costs):
    costs = np.asarray(costs, dtype=float).reshape(-1, costs.shape[-1] if len(costs) else 1)
    if len(costs) == 0:
        return []
    return sorted(tuple(np.round(c, 9)) for c in costs[pareto_filter(costs)])


def _check_plan_is_sound(ts, formula, p):
    names = list(ts.states)
    trace = [ts.labels[names.index(s)] for s in p.states]
    assert ltl.evaluate(formula, trace)
    assert not any(ltl.evaluate(formula, trace[:k]) for k in range(1, len(trace)))
    total = np.zeros(len(ts.objectives))
    for k, t in enumerate(p.transitions):
        assert ts.states[ts.src[t]] == p.states[k] and ts.states[ts.dst[t]] == p.states[k + 1]
        total += ts.beliefs.mu[t]
    np.testing.assert_allclose(p.cost, total, atol=1e-9)


def _trace_enumeration(ts, formula, max_len):
    """Costs of every path of at most max_len moves that first satisfies formula at its end."""
    out = [[] for _ in ts.states]
    for t, s in enumerate(ts.src):
        out[s].append(t)
    found = []
    f = ltl.parse(formula)

    def dfs(state, trace, cost, depth):
        if ltl.evaluate(f, trace):
            found.append(cost)
            return
        if depth == max_len:
            return
        for t in out[state]:
            s2 = int(ts.dst[t])
            dfs(s2, trace + [ts.labels[s2]], cost + ts.beliefs.mu[t], depth + 1)

    d = len(ts.objectives)
    dfs(ts.initial, [ts.labels[ts.initial]], np.zeros(d), 0)
    return np.asarray(found).reshape(-1, d)


def test_equals_trace_enumeration_with_dominance_bound():
    rng = np.random.default_rng(2024)
    checked = satisfiable = 0
    sizes = []
    for trial in range(24):
        d = 2 + trial % 2
        ts = _system(rng, d, low=1.6, high=8.4, n_states=8)  # every cost in {2, ..., 8}
        formula = TASKS[trial % len(TASKS)]
        result = plan(ts, formula)
        if result.satisfiable:
            satisfiable += 1
            for p in result.plans:
                _check_plan_is_sound(ts, formula, p)
            # Any path longer than M / 2 moves costs more than M in every objective, where M
            # is the smallest worst objective among our plans: it is dominated, so stop there.
            bound = int(np.floor(result.costs().max(axis=1).min() / 2.0))
            reference = _trace_enumeration(ts, formula, bound)
            assert _canonical(result.costs()) == _canonical(reference), (trial, formula)
            assert len(result.plans) == len(_canonical(reference))
            sizes.append(len(result.plans))
        else:
            assert result.reason
            assert len(_trace_enumeration(ts, formula, 6)) == 0
        checked += 1
    assert checked == 24 and satisfiable >= 10
    assert max(sizes) >= 3 and np.mean(sizes) > 1.5  # non-trivial fronts were compared


def _product_enumeration(ts, dfa):
    """Costs of every simple path in TS x DFA from the initial node to its first acceptance."""
    out = [[] for _ in ts.states]
    for t, s in enumerate(ts.src):
        out[s].append(t)
    d = len(ts.objectives)
    found = []
    start = (ts.initial, dfa.step(dfa.initial, ts.labels[ts.initial]))

    def dfs(node, visited, cost):
        s, q = node
        if dfa.accepting[q]:
            found.append(cost)
            return
        for t in out[s]:
            s2 = int(ts.dst[t])
            nxt = (s2, dfa.step(q, ts.labels[s2]))
            if nxt not in visited:
                visited.add(nxt)
                dfs(nxt, visited, cost + ts.beliefs.mu[t])
                visited.remove(nxt)

    dfs(start, {start}, np.zeros(d))
    return np.asarray(found).reshape(-1, d)


def test_equals_simple_product_path_enumeration_with_zero_costs_and_ties():
    rng = np.random.default_rng(11)
    n_nonempty = 0
    sizes = []
    for trial in range(40):
        d = 2 + trial % 3
        ts = _system(rng, d, low=-0.4, high=3.4, n_states=7)  # costs in {0, 1, 2, 3}
        formula = str(ltl.random_formula(rng, ATOMS, depth=3)) if trial % 2 else \
            TASKS[trial % len(TASKS)]
        dfa = ltl.to_dfa(formula, atoms=ATOMS)
        known = ts.all_labels()
        if not set(dfa.atoms) <= known:
            continue
        result = plan(ts, dfa)
        reference = _product_enumeration(ts, dfa)
        if len(reference) == 0:
            assert not result.satisfiable and result.plans == ()
            continue
        n_nonempty += 1
        assert result.satisfiable
        ours = _canonical(result.costs())
        assert ours == _canonical(reference), (trial, formula)
        assert len(ours) == len(result.plans)  # one plan per distinct cost vector
        sizes.append(len(ours))
        for p in result.plans:
            _check_plan_is_sound(ts, ltl.parse(formula), p)
    assert n_nonempty >= 15
    assert max(sizes) >= 3 and np.mean(sizes) > 1.5
