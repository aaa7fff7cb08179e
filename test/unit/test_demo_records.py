"""The demo's records of choices and learning: selector diagnostics parsing, learning curve."""
from diagnostic_msgs.msg import KeyValue

from embodied_aif.cli._operator import selector_terms
from embodied_aif.cli.demo import learning_curve


def test_selector_terms_are_read_per_plan_and_malformed_entries_left_out():
    values = [KeyValue(key='plan_0', value='efe=1.5000 risk=2.0000 info_gain=0.5000'),
              KeyValue(key='plan_1', value='efe=0.2 risk=0.3 info_gain=0.1'),
              KeyValue(key='plan_2', value='efe=nan risk=0.3 info_gain=0.1'),
              KeyValue(key='plan_3', value='efe=x risk=0.3 info_gain=0.1'),
              KeyValue(key='plan_4', value='risk=0.3'),
              KeyValue(key='plan_x', value='efe=1 risk=1 info_gain=0'),
              KeyValue(key='outcomes', value='3')]
    terms = selector_terms(values)
    assert terms == {0: {'efe': 1.5, 'risk': 2.0, 'info_gain': 0.5},
                     1: {'efe': 0.2, 'risk': 0.3, 'info_gain': 0.1}}


def test_learning_curve_compares_predicted_and_realised_costs_of_finished_episodes():
    episodes = [
        {'episode': 0, 'success': True, 'predicted': [10.0, 5.0, 0.0],
         'realised': [20.0, 5.0, 0.5]},
        {'episode': 1, 'success': False, 'predicted': [10.0, 5.0, 0.0],
         'realised': [3.0, 1.0, 0.0]},
        {'episode': 2, 'success': True, 'predicted': [19.0, 5.5, 0.4], 'realised': []},
        {'episode': 3, 'success': True, 'predicted': [19.0, 5.5, 0.4],
         'realised': [20.0, 5.0, 0.5]},
    ]
    curve = learning_curve(episodes)
    assert [c['episode'] for c in curve] == [0, 3]
    assert curve[0]['relative_error'] == [0.5, 0.0, 1.0]
    assert curve[1]['relative_error'] == [0.05, 0.1, 0.2]
