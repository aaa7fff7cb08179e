"""Pareto planning and cost beliefs on hand-computed systems."""
import json
from pathlib import Path

import numpy as np
import pytest

from embodied_aif.models import ltl
from embodied_aif.models.pareto import TaskError, build_product, pareto_filter, plan
from embodied_aif.models.transition_system import (
    CostBeliefs,
    ModelError,
    build_pick_place_system,
    load_model,
    model_from_dict,
    path_cost_distribution,
)

EXAMPLE = Path(__file__).resolve().parents[2] / 'config' / 'examples' / 'task' / 'fetch_mug.json'


def _model(**changes):
    data = {
        'objectives': ['time', 'energy'], 'initial': 's0',
        'states': {'s0': {'labels': ['home']}, 's1': {'labels': ['a']},
                   's2': {'labels': ['b']}, 's3': {'labels': []}},
        'transitions': [
            {'from': 's0', 'action': 'east', 'to': 's1', 'cost': [1.0, 5.0]},
            {'from': 's0', 'action': 'north', 'to': 's2', 'cost': [2.0, 1.0]},
            {'from': 's1', 'action': 'south', 'to': 's2', 'cost': [1.0, 1.0]},
            {'from': 's2', 'action': 'west', 'to': 's3', 'cost': [3.0, 3.0]},
            {'from': 's3', 'action': 'up', 'to': 's1', 'cost': [1.0, 1.0]},
            {'from': 's2', 'action': 'back', 'to': 's1', 'cost': [1.0, 1.0]},
        ]}
    data.update(changes)
    return data


def test_hand_computed_front():
    ts = model_from_dict(_model())
    result = plan(ts, 'F a & F b')
    # s0-s1-s2 costs (2, 6); s0-s2-s1 costs (3, 2); s0-s2-s3-s1 costs (6, 5) is dominated.
    assert result.satisfiable
    np.testing.assert_allclose(result.costs(), [[2, 6], [3, 2]])
    assert [p.states for p in result.plans] == [('s0', 's1', 's2'), ('s0', 's2', 's1')]
    assert [p.actions for p in result.plans] == [('east', 'south'), ('north', 'back')]
    out = result.to_dict()
    assert out['plans'][0]['cost'] == [2.0, 6.0]
    assert out['plans'][1]['steps'][1]['from'] == 's2' and out['plans'][1]['steps'][1]['to'] == 's1'
    json.dumps(out)


def test_fetch_mug_example_front():
    ts = load_model(EXAMPLE)
    result = plan(ts, 'F mug_on_table')
    # stairs+ramp (5, 8), stairs+hall (8, 6), hall+hall (11, 5); hall+ramp (8, 7) is dominated.
    np.testing.assert_allclose(result.costs(), [[5, 8], [8, 6], [11, 5]])
    avoid = plan(ts, 'F mug_on_table & G !at_ramp')
    np.testing.assert_allclose(avoid.costs(), [[8, 6], [11, 5]])
    assert plan(ts, 'F at_table').plans[0].states[-1] == 'table_mug'


def test_plan_stops_at_first_satisfaction_and_zero_length_plan():
    ts = model_from_dict(_model())
    result = plan(ts, 'F home')
    assert len(result.plans) == 1 and result.plans[0].states == ('s0',)
    np.testing.assert_allclose(result.plans[0].cost, [0, 0])


def test_single_and_four_objectives():
    data = _model()
    one = model_from_dict(dict(data, objectives=['time'], transitions=[
        dict(t, cost=t['cost'][:1]) for t in data['transitions']]))
    assert plan(one, 'F a & F b').costs().tolist() == [[2.0]]
    four = model_from_dict(dict(data, objectives=['t', 'e', 'r', 'q'], transitions=[
        dict(t, cost=t['cost'] + [float(i % 2), 1.0]) for i, t in enumerate(data['transitions'])]))
    costs = plan(four, 'F a & F b').costs()
    np.testing.assert_allclose(costs, [[2, 6, 0, 2], [3, 2, 2, 2]])


def test_unsatisfiable_tasks_name_the_cause():
    ts = model_from_dict(_model())
    r = plan(ts, 'F a & G !a')
    assert not r.satisfiable and 'unsatisfiable' in r.reason and r.plans == ()
    r = plan(ts, 'G !home & F a')
    assert not r.satisfiable and "initial state 's0'" in r.reason
    r = plan(ts, 'F (a & X home)')
    assert not r.satisfiable and 'can reach acceptance' in r.reason
    data = _model()
    data['states']['s4'] = {'labels': ['c']}
    r = plan(model_from_dict(data), 'F c')
    assert not r.satisfiable and "'c' never hold" in r.reason


def test_unknown_atoms_are_rejected():
    ts = model_from_dict(_model())
    with pytest.raises(TaskError, match="'kitchen'"):
        plan(ts, 'F kitchen')
    with pytest.raises(ltl.LTLSyntaxError, match='position 5'):
        plan(ts, 'F a &')


@pytest.mark.parametrize('change, message', [
    ({'initial': 'nowhere'}, "initial: unknown state 'nowhere'"),
    ({'objectives': []}, 'objectives'),
    ({'transitions': [{'from': 's0', 'action': 'x', 'to': 's9', 'cost': [1, 1]}]},
     "transitions[0].to: unknown state 's9'"),
    ({'transitions': [{'from': 's0', 'action': 'x', 'to': 's1', 'cost': [-1, 1]}]},
     'transitions[0].cost: costs must be non-negative'),
    ({'transitions': [{'from': 's0', 'action': 'x', 'to': 's1', 'cost': [1]}]},
     'transitions[0].cost: expected 2 numbers'),
    ({'transitions': [{'from': 's0', 'action': 'x', 'to': 's1', 'cost': [1, 1],
                       'cost_cov': [[1, 2], [2, 1]]}]}, 'positive definite'),
    ({'transitions': [{'from': 's0', 'action': 'x', 'to': 's1', 'cost': [1, 1],
                       'count': 0}]}, 'transitions[0].count'),
    ({'extra': 1}, 'extra: unknown key'),
])
def test_bad_models_name_the_key(change, message):
    with pytest.raises(ModelError) as info:
        model_from_dict(_model(**change), 'm.json')
    assert 'm.json' in str(info.value) and message in str(info.value)


def test_bad_json_files(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"objectives": ["t"],')
    with pytest.raises(ModelError, match='bad.json: malformed JSON at line 1'):
        load_model(bad)
    nan = tmp_path / 'nan.json'
    text = json.dumps(_model()).replace('[1.0, 5.0]', '[NaN, 5.0]')
    nan.write_text(text)
    with pytest.raises(ModelError, match='NaN'):
        load_model(nan)
    with pytest.raises(ModelError, match='cannot read'):
        load_model(tmp_path / 'missing.json')


def test_niw_update_matches_batch_posterior():
    rng = np.random.default_rng(3)
    mu0 = np.array([[1.0, 2.0]])
    cov0 = np.array([[[0.5, 0.1], [0.1, 0.3]]])
    b = CostBeliefs.from_costs(mu0, cov0, np.array([2.0]))
    xs = rng.normal(size=(5, 2)) + [1.5, 1.0]
    for x in xs:
        b = b.update(0, x)
    # Batch conjugate formulas (Murphy 2007): kappa_n = k0 + n, mu_n = (k0 mu0 + n xbar)/kappa_n,
    # psi_n = psi0 + S + k0 n / kappa_n (xbar - mu0)(xbar - mu0)^T.
    k0, n = 2.0, 5
    xbar = xs.mean(axis=0)
    scatter = (xs - xbar).T @ (xs - xbar)
    psi0 = k0 * cov0[0]
    np.testing.assert_allclose(b.kappa, [k0 + n])
    np.testing.assert_allclose(b.nu, [k0 + 3 + n])
    np.testing.assert_allclose(b.mu[0], (k0 * mu0[0] + n * xbar) / (k0 + n))
    np.testing.assert_allclose(
        b.psi[0], psi0 + scatter + k0 * n / (k0 + n) * np.outer(xbar - mu0[0], xbar - mu0[0]))
    assert b.count[0] == 7


def test_optimism_and_path_distribution():
    b = CostBeliefs.from_costs(np.array([[2.0, 1.0], [1.0, 1.0]]), count=np.array([1.0, 3.0]))
    lcb = b.lower_bound(1.0)
    k = 4.0
    np.testing.assert_allclose(lcb, [[2 - np.sqrt(np.log(k)), 0.0],
                                     [1 - np.sqrt(np.log(k) / 3), 1 - np.sqrt(np.log(k) / 3)]])
    np.testing.assert_allclose(b.lower_bound(0.0), b.mu)
    with pytest.raises(ValueError, match='optimism'):
        b.lower_bound(-1)
    mean, cov = path_cost_distribution(b, [0, 1, 1])
    np.testing.assert_allclose(mean, [4.0, 3.0])
    e = b.expected_cov()
    np.testing.assert_allclose(cov, (1 + 1 / 1) * e[0] + (2 + 4 / 3) * e[1])


def test_optimistic_planning_prefers_rarely_tried_edges():
    data = _model()
    for t in data['transitions']:
        t['count'] = 50
    data['transitions'][0]['count'] = 1  # east: tried once
    ts = model_from_dict(data)
    mean_plans = plan(ts, 'F a')
    optimistic = plan(ts, 'F a', optimism=2.0)
    assert mean_plans.costs()[0, 0] == 1.0
    assert optimistic.costs()[0, 0] < mean_plans.costs()[0, 0]
    np.testing.assert_allclose(optimistic.plans[0].expected_cost, [1.0, 5.0])


def test_pick_place_system_and_product():
    ts = build_pick_place_system(
        ['kitchen', 'hall', 'table'],
        [('kitchen', 'hall', [2.0, 1.0, 0.1]), ('hall', 'table', [2.0, 1.0, 0.1]),
         ('kitchen', 'table', [3.0, 3.0, 0.5])],
        {'mug': 'kitchen'}, 'hall', pick_cost=[1.0, 0.5, 0.2], place_cost=[1.0, 0.5, 0.2])
    assert 'mug_on_kitchen' in ts.labels[0] and 'at_hall' in ts.labels[0]
    result = plan(ts, 'F mug_on_table')
    # hall->kitchen, pick, then either kitchen->hall->table or kitchen->table, place.
    np.testing.assert_allclose(result.costs(), [[7.0, 5.0, 1.0], [8.0, 4.0, 0.7]])
    assert result.plans[0].actions == ('move', 'pick', 'move', 'place')
    assert result.plans[0].targets == ('kitchen', 'mug', 'table', 'mug@table')
    assert result.plans[1].actions == ('move', 'pick', 'move', 'move', 'place')
    assert 'holding_mug' in ts.labels[ts.index(result.plans[1].states[2])]
    product = build_product(ts, ltl.to_dfa('F mug_on_table'))
    assert product.live[product.initial] and product.accepting.any()
    with pytest.raises(ModelError, match='start'):
        build_pick_place_system(['a'], [], {}, 'b')


def test_pareto_filter():
    costs = np.array([[1, 5], [2, 2], [2, 2], [3, 1], [3, 3], [1, 6]])
    np.testing.assert_array_equal(pareto_filter(costs), [0, 1, 3])


def test_objective_subset_uses_marginal_beliefs():
    data = _model()
    data['objectives'] = ['time', 'energy', 'risk']
    for i, t in enumerate(data['transitions']):
        t['cost'] = t['cost'] + [float(i)]
    ts = model_from_dict(data)
    energy = plan(ts, 'F a & F b', objectives=['energy'])
    assert energy.objectives == ('energy',) and energy.costs().tolist() == [[2.0]]
    both = plan(ts, 'F a & F b', objectives=['risk', 'time'])
    np.testing.assert_allclose(both.costs(), [[2.0, 2.0]])  # (risk, time) of (6, 3) is dominated
    sub = ts.restrict(['energy'])
    np.testing.assert_allclose(sub.beliefs.expected_cov()[:, 0, 0],
                               ts.beliefs.expected_cov()[:, 1, 1])
    with pytest.raises(TaskError, match='objectives'):
        plan(ts, 'F a', objectives=['comfort'])
    with pytest.raises(TaskError, match='optimism'):
        plan(ts, 'F a', optimism=float('nan'))
