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


def test_beliefs_become_seen_objects_with_their_most_probable_category_and_box():
    import math

    from embodied_aif.cli.demo import odom_from_world, seen
    from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

    mug = ObjectBelief(id='obj_4', category_names=['can', 'mug'], category_probs=[0.3, 0.7])
    mug.pose.pose.position.x, mug.pose.pose.position.y, mug.pose.pose.position.z = 1, 2, 0.7
    mug.pose.pose.orientation.z = math.sin(0.25)  # yaw 0.5
    mug.pose.pose.orientation.w = math.cos(0.25)
    mug.extent.x, mug.extent.y, mug.extent.z = 0.06, 0.05, 0.09
    blank = ObjectBelief(id='obj_5')  # no categories: none, with probability 0
    got = seen(ObjectBeliefArray(objects=[mug, blank]))
    assert got['obj_4'].category == 'mug' and math.isclose(got['obj_4'].prob, 0.7, rel_tol=1e-6)
    assert (got['obj_4'].x, got['obj_4'].z, got['obj_4'].length) == (1.0, 0.7, 0.06)
    assert math.isclose(got['obj_4'].height, 0.09, rel_tol=1e-6)
    assert math.isclose(got['obj_4'].yaw, 0.5, abs_tol=1e-9)
    assert (got['obj_5'].category, got['obj_5'].prob) == ('', 0.0)
    assert seen(None) == {}
    # the odom frame at (2, 1) in the world, turned a quarter: world (2, 2) is 1 m ahead
    x, y = odom_from_world(2.0, 2.0, (2.0, 1.0, math.pi / 2))
    assert math.isclose(x, 1.0, abs_tol=1e-9) and math.isclose(y, 0.0, abs_tol=1e-9)


def test_a_fetch_is_judged_on_the_simulated_object_nearest_the_belief():
    import math
    import threading

    from embodied_aif.cli.demo import delivered, true_object
    from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

    def belief(name, category, x, y, z, length=0.0, width=0.0):
        b = ObjectBelief(id=name, category_names=[category], category_probs=[1.0])
        b.pose.pose.position.x, b.pose.pose.position.y, b.pose.pose.position.z = x, y, z
        b.pose.pose.orientation.w = 1.0
        b.extent.x, b.extent.y = length, width
        return b

    class Op:  # the operator's latest messages; odom is the world turned a quarter at (1, 0)
        lock = threading.Lock()
        objects = ObjectBeliefArray(objects=[belief('obj_3', 'mug', 1.0, 0.0, 0.7)])
        surfaces = ObjectBeliefArray(objects=[belief('surface_1', 'surface', 3.0, 0.0, 0.62,
                                                     1.0, 0.6)])
        truth_objects = ObjectBeliefArray(objects=[belief('can_0', 'can', 1.0, 1.05, 0.7),
                                                   belief('mug_1', 'mug', 1.0, 3.2, 0.66),
                                                   # origin at its underside, on the table
                                                   belief('box_2', 'box', 1.0, 3.3, 0.62),
                                                   belief('box_3', 'box', 1.0, 3.1, 0.05)])

        @staticmethod
        def world_from_odom():
            return 1.0, 0.0, math.pi / 2

    assert true_object(Op, 'obj_3') == ('can_0', 'can')  # world (1, 1.05) is odom (1.05, 0)
    assert true_object(Op, 'obj_9') is None
    assert delivered(Op, 'mug_1', 'surface_1')  # world (1, 3.2): odom (3.2, 0) on the table
    assert not delivered(Op, 'can_0', 'surface_1') and not delivered(Op, None, 'surface_1')
    assert delivered(Op, 'box_2', 'surface_1')  # the demo's first delivery was counted a failure
    assert not delivered(Op, 'box_3', 'surface_1')  # under the table, on the floor


def test_the_plots_leave_out_an_episode_that_found_no_task(tmp_path):
    from embodied_aif.cli.demo import plot_beliefs

    chosen = {'episode': 0, 'success': False, 'predicted': [10.0, 5.0, 0.0], 'realised': [],
              'selection': {'chosen': 0, 'plans': [{'efe': 1.0, 'risk': 1.0, 'info_gain': 0.0}]}}
    none = {'episode': 1, 'success': False, 'reason': 'no fetch task', 'realised': [],
            'predicted': []}  # as the demo records it
    plot_beliefs(tmp_path / 'b.png', [chosen, none], [])
    assert (tmp_path / 'b.png').stat().st_size > 0


def test_a_fetch_is_chosen_again_from_its_category_first_then_the_others():
    from types import SimpleNamespace

    from embodied_aif.cli.demo import _attempt, _categories, _failed_picks
    args = SimpleNamespace(fetch='mug,can,,bottle,box')
    assert _categories(args, SimpleNamespace(category='can')) == ['can', 'mug', 'bottle', 'box']
    record = {'plan': 'demo-0/1', 'reason': 'step 0 (pick obj_7) failed: unknown_object',
              'realised': [3.0, 1.0, 0.1], 'rooms': ['0,0'], 'entered_hazard': False,
              'steps': [{'action': 'move', 'target': 'place_2', 'success': True},
                        {'action': 'pick', 'target': 'obj_7', 'success': False}],
              'selection': {}, 'fetch': {'object': 'obj_7', 'delivered': False}}
    assert _failed_picks(record) == {'obj_7'}
    kept = _attempt(record)  # what an earlier attempt leaves in its episode's record
    assert kept['reason'] == record['reason'] and kept['fetch']['object'] == 'obj_7'
    assert 'steps' not in kept and 'selection' not in kept
