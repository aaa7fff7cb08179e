"""`embodied-aif plan` and `embodied-aif select` on the hand-written examples and bad input."""
import json
from pathlib import Path

import pytest

from embodied_aif.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / 'config' / 'examples' / 'task'
MODEL = str(EXAMPLES / 'fetch_mug.json')


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_json_lists_every_pareto_plan(capsys):
    code, out, err = _run(capsys, 'plan', '--model', MODEL, '--task', 'F mug_on_table', '--json')
    assert code == 0 and err == ''
    result = json.loads(out)
    assert result['objectives'] == ['time', 'energy']
    assert [p['cost'] for p in result['plans']] == [[5.0, 8.0], [8.0, 6.0], [11.0, 5.0]]
    first = result['plans'][0]
    assert first['states'] == ['home', 'kitchen', 'kitchen_mug', 'ramp_mug', 'table_mug',
                               'table_done']
    assert first['actions'] == ['stairs', 'pick', 'move', 'move', 'place']
    assert result['stats']['product_nodes'] >= 8 and 'time_s' in result['stats']


def test_plan_text_and_optimism(capsys):
    code, out, _ = _run(capsys, 'plan', '--model', MODEL, '--task', 'F mug_on_table')
    assert code == 0 and '3 Pareto-optimal plan(s)' in out
    code, out, _ = _run(capsys, 'plan', '--model', MODEL, '--task', 'F mug_on_table',
                        '--optimism', '0.5', '--json')
    optimistic = json.loads(out)
    assert code == 0 and optimistic['optimism'] == 0.5
    assert all(p['cost'][0] < p['expected_cost'][0] for p in optimistic['plans'])


def test_plan_unsatisfiable_exits_1_with_reason(capsys):
    code, out, err = _run(capsys, 'plan', '--model', MODEL, '--task',
                          'F mug_on_table & G hand_empty', '--json')
    result = json.loads(out)
    assert code == 1 and result['plans'] == [] and not result['satisfiable']
    assert 'no run of the transition system' in result['reason'] and 'unsatisfiable' in err


@pytest.mark.parametrize('argv, message', [
    (['--task', 'F (mug_on_table'], "--task: syntax error at position 15"),
    (['--task', 'F at_garage'], "'at_garage'"),
    (['--task', 'F at_table', '--optimism', '-1'], '--optimism'),
    (['--task', 'F at_table', '--optimism', 'nan'], '--optimism'),
])
def test_plan_bad_input_exits_2(capsys, argv, message):
    code, out, err = _run(capsys, 'plan', '--model', MODEL, *argv)
    assert code == 2 and out == ''
    assert err.startswith('embodied-aif plan: error: ') and message in err


def test_plan_bad_model_files(capsys, tmp_path):
    bad = tmp_path / 'model.json'
    bad.write_text('{"objectives": ')
    code, _, err = _run(capsys, 'plan', '--model', str(bad), '--task', 'F a')
    assert code == 2 and 'model.json: malformed JSON' in err
    data = json.loads(Path(MODEL).read_text())
    data['transitions'][2]['to'] = 'garage'
    bad.write_text(json.dumps(data))
    code, _, err = _run(capsys, 'plan', '--model', str(bad), '--task', 'F at_table')
    assert code == 2 and "transitions[2].to: unknown state 'garage'" in err
    data['transitions'][2]['to'] = 'kitchen'
    data['transitions'][2]['cost'] = [-1.0, 1.0]
    bad.write_text(json.dumps(data))
    code, _, err = _run(capsys, 'plan', '--model', str(bad), '--task', 'F at_table')
    assert code == 2 and 'transitions[2].cost: costs must be non-negative' in err


def test_select_on_plan_output_and_examples(capsys, tmp_path):
    _, out, _ = _run(capsys, 'plan', '--model', MODEL, '--task', 'F mug_on_table', '--json')
    plans = tmp_path / 'plans.json'
    plans.write_text(out)
    pref = str(EXAMPLES / 'preference_hurry.json')
    code, out, err = _run(capsys, 'select', '--plans', str(plans), '--preference', pref,
                          '--json')
    chosen = json.loads(out)
    assert code == 0 and err == ''
    # Purely pragmatic preference for (4, 9) with a tight time spread: the quick plan.
    assert chosen['chosen'] == 0 and chosen['plan']['cost'] == [5.0, 8.0]
    assert len(chosen['terms']) == 3
    assert all(abs(t['efe'] - t['risk']) < 1e-12 for t in chosen['terms'])
    # TOPSIS closeness (0.606, 0.548, 0.5) by hand; min-max weights (0.5, 0.417, 0.5).
    for method, expected in (('topsis', 0), ('weights', 1)):
        code, out, _ = _run(capsys, 'select', '--plans', str(EXAMPLES / 'fetch_mug_plans.json'),
                            '--preference', str(EXAMPLES / 'preference_balanced.json'),
                            '--method', method, '--json')
        assert code == 0 and json.loads(out)['chosen'] == expected, method
    code, out, _ = _run(capsys, 'select', '--plans', str(EXAMPLES / 'fetch_mug_plans.json'),
                        '--preference', str(EXAMPLES / 'preference_balanced.json'),
                        '--epistemic-weight', '0')
    assert code == 0 and 'method aif: plan [1]' in out


def test_select_bad_input_exits_2(capsys, tmp_path):
    pref = tmp_path / 'pref.json'
    pref.write_text(json.dumps({'objectives': ['time', 'risk'], 'mean': [1, 1],
                                'covariance': [[1, 0], [0, 1]]}))
    code, _, err = _run(capsys, 'select', '--plans', str(EXAMPLES / 'fetch_mug_plans.json'),
                        '--preference', str(pref))
    assert code == 2 and err.startswith('embodied-aif select: error: ')
    assert 'pref.json: objectives' in err
    code, _, err = _run(capsys, 'select', '--plans', str(tmp_path / 'none.json'),
                        '--preference', str(pref))
    assert code == 2 and 'none.json: cannot read' in err
