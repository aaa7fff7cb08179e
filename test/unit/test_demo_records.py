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

    from embodied_aif.cli.demo import carried_to, delivered, true_object, truth_snapshot
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
    # the belief's nearest object at the start was not the one the robot moved onto the table
    # (a bottle and a lego beside it seen as one cluster): the one moved there is found
    before = truth_snapshot(Op)
    assert before['can_0'] == ((1.0, 1.05, 0.7), 'can')
    assert carried_to(Op, before, 'surface_1') is None  # nothing moved
    Op.truth_objects = ObjectBeliefArray(objects=[belief('can_0', 'can', 1.0, 3.0, 0.7),
                                                  belief('mug_1', 'mug', 1.0, 3.25, 0.66),
                                                  belief('box_2', 'box', 1.0, 3.3, 0.62),
                                                  belief('box_3', 'box', 4.0, 3.1, 0.05)])
    assert carried_to(Op, before, 'surface_1') == ('can_0', 'can')
    # ... one moved far but not onto the table, or moved only a little, is not
    del before['can_0']
    assert carried_to(Op, before, 'surface_1') is None


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
    from embodied_aif.cli.demo import _failed_places
    fetch = {'object': 'obj_7', 'surface': 'surface_9', 'place': 20, 'delivered': False}
    moved = [{'action': 'pick', 'target': 'obj_7', 'success': True}]
    assert _failed_places({'reason': 'timed out', 'steps': moved, 'fetch': fetch}) == set()
    for steps, reason in (
            (moved + [{'action': 'place', 'target': 'place_20', 'success': False}], ''),
            (moved + [{'action': 'move', 'target': 'place_20', 'success': False}], ''),
            (moved, "the task planner cannot plan task 'demo-0': place(s) 4, 20 of the map "
                    'cannot be reached from place 3: no way there ...')):
        assert _failed_places({'reason': reason, 'steps': steps, 'fetch': fetch}) == {'surface_9'}
    assert _failed_places({'reason': 'place(s) 2 of the map cannot be reached', 'steps': moved,
                           'fetch': fetch}) == set()
    kept = _attempt(record)  # what an earlier attempt leaves in its episode's record
    assert kept['reason'] == record['reason'] and kept['fetch']['object'] == 'obj_7'
    assert 'steps' not in kept and 'selection' not in kept


def _fake_stack(monkeypatch, run_episode, next_fetch=None):
    """demo.run_episodes' stack faked: an operator, the episode runner, task posing.

    Returns (the operator, the (task id, formula) posed, the places navigated to).
    """
    from types import SimpleNamespace

    from embodied_aif.cli import demo

    posed, visits = [], []

    class Op:
        map = SimpleNamespace(current_place=0)
        held = None

        @staticmethod
        def navigate_to_place(place, timeout):
            visits.append(place)
            return True, 'reached', None

        @staticmethod
        def wait_sim(condition, seconds, wall_limit=None):
            return True

    monkeypatch.setattr(demo, 'run_episode', run_episode)
    if next_fetch is not None:
        monkeypatch.setattr(demo, 'next_fetch', next_fetch)
    monkeypatch.setattr(demo, 'move_formula', lambda cmap, regions: 'F at_place_9')
    monkeypatch.setattr(demo, 'pose_task', lambda op, task_id, formula:
                        posed.append((task_id, formula)) or True)
    return Op, posed, visits


def _record(episode, success) -> dict:
    return {'episode': episode, 'success': success, 'reason': 'x', 'steps': [],
            'entered_hazard': False, 'realised': [1.0, 1.0, 0.0], 'predicted': [],
            'plan': f'p{episode}', 'rooms': []}


def test_an_episode_with_no_fetch_left_falls_back_to_a_move_and_the_rest_follow(monkeypatch):
    from types import SimpleNamespace

    from embodied_aif.cli import demo

    def run_episode(args, op, episode, summary, fetch, truth=None):
        record = _record(episode, fetch is None)
        if fetch is not None:  # every fetch fails: its pick closes on nothing
            record['steps'] = [{'action': 'pick', 'target': fetch.object_id, 'success': False}]
            record['fetch'] = {'surface': fetch.surface_id}
        return record

    def next_fetch(op, args, fetch, regions, failed_picks, failed_places, picked):
        return 'no graspable mug, can, bottle or box in reach' if failed_picks else fetch

    op, posed, visits = _fake_stack(monkeypatch, run_episode, next_fetch)
    fetch = SimpleNamespace(object_id='obj_1', surface_id='surface_0', category='mug',
                            formula='F obj_1_on_place_3')
    args = SimpleNamespace(episodes=3, fetch_attempts=2, step_timeout_s=60.0, fetch='mug')
    episodes = demo.run_episodes(args, op, {}, fetch, {})
    # episode 0 failed its one fetch (no second choice); 1 and 2 are moves, and succeed
    assert [e['success'] for e in episodes] == [False, True, True]
    assert 'fetch' in episodes[0] and 'fetch' not in episodes[1]
    assert posed == [('demo-1-move', 'F at_place_9')]
    assert visits == [0, 0]  # home before the fallback move, and between the moves


def test_a_failed_move_is_posed_again_rather_than_repeated(monkeypatch):
    from types import SimpleNamespace

    from embodied_aif.cli import demo

    # in a demo run the move's place was cut off from the map mid-episode: the planner could
    # no longer plan that task, and each later episode re-ran it and failed the same way
    op, posed, visits = _fake_stack(monkeypatch, lambda args, op, episode, summary, fetch,
                                    truth=None: _record(episode, episode != 0))
    args = SimpleNamespace(episodes=4, fetch_attempts=2, step_timeout_s=60.0, fetch='mug')
    episodes = demo.run_episodes(args, op, {}, None, {})
    assert [e['success'] for e in episodes] == [False, True, True, True]
    assert posed == [('demo-1-move', 'F at_place_9')]  # after the failure only
    assert visits == [0, 0, 0, 0]  # home after each move, and before posing it again


def test_the_move_task_goes_to_the_farthest_place_the_robot_can_reach():
    from embodied_aif.cli.demo import move_formula
    from embodied_aif_msgs.msg import CognitiveMap, Place, PlaceEdge

    def place(k, x, visits=1):
        p = Place(id=k, visit_count=visits)
        p.pose.position.x = x
        return p

    cmap = CognitiveMap(places=[place(0, 0.0), place(1, 2.0), place(2, 4.0), place(3, 9.0),
                                place(4, 6.0), place(5, 8.0, visits=0)], current_place=1)
    cmap.edges = [PlaceEdge(from_id=0, to_id=1), PlaceEdge(from_id=1, to_id=2),
                  PlaceEdge(from_id=2, to_id=3, kind=PlaceEdge.BLOCKED),  # found blocked
                  PlaceEdge(from_id=2, to_id=4),
                  PlaceEdge(from_id=4, to_id=5)]  # never visited: perhaps out of the way
    assert move_formula(cmap, {}) == 'F at_place_4'
    for p in cmap.places:  # none visited yet (the map is young): any reachable place
        p.visit_count = 0
    assert move_formula(cmap, {}) == 'F at_place_5'
    for p in cmap.places:
        p.visit_count = int(p.id != 5)
    # place 4 in the hazard: the farthest reachable outside it
    hazard = {'hazard': ((5.0, -1.0), (7.0, -1.0), (7.0, 1.0), (5.0, 1.0))}
    assert move_formula(cmap, hazard) == 'F at_place_2 & G !in_hazard'


def test_a_task_without_plans_says_what_the_task_planner_said():
    import threading
    from types import SimpleNamespace

    from embodied_aif.cli.demo import why_no_plan

    op = SimpleNamespace(lock=threading.Lock(), plans=None, planner_message='')
    assert why_no_plan(op, 'demo-0') == \
        'no plan selected: no Pareto set for demo-0 came in the wait'
    op.planner_message = "task 'demo-0' rejected, keeping the last good plans: bad atom"
    assert why_no_plan(op, 'demo-0').endswith("(task planner: task 'demo-0' rejected, "
                                              'keeping the last good plans: bad atom)')


def test_objects_and_tables_are_placed_at_places_the_robot_has_stood_at():
    from embodied_aif.cli.demo import object_places
    from embodied_aif_msgs.msg import CognitiveMap, Place

    def place(k, x, visits):
        p = Place(id=k, visit_count=visits)
        p.pose.position.x = x
        return p
    cmap = CognitiveMap(places=[place(0, 0.0, 3), place(1, 1.0, 0), place(2, 2.0, 1)])
    assert object_places(cmap) == {0: (0.0, 0.0), 2: (2.0, 0.0)}  # 1 is a hypothesis
    cmap.places = [place(1, 1.0, 0)]
    assert object_places(cmap) == {1: (1.0, 0.0)}


def test_a_first_fetch_without_plans_falls_back_to_a_move(monkeypatch):
    import threading
    from types import SimpleNamespace

    from embodied_aif.cli import demo

    op, posed, _ = _fake_stack(monkeypatch, run_episode=None)
    op.lock, op.planner_message = threading.Lock(), "task 'demo-0' rejected: why"
    op.plans = SimpleNamespace(task_id='demo', plans=[1, 2], reason='')
    fetch = SimpleNamespace(object_id='obj_1', formula='F obj_1_on_place_3')
    monkeypatch.setattr(demo, 'pose_task', lambda op, task_id, formula:
                        posed.append((task_id, formula)) or task_id == 'demo')
    stages = {'fetch': 'bring obj_1'}
    assert demo.pose_first_task(op, fetch, fetch.formula, {}, stages) == (None, 'F at_place_9')
    assert posed == [('demo-0', 'F obj_1_on_place_3'), ('demo', 'F at_place_9')]
    assert stages['fetch'].startswith('bring obj_1; not planned (no plan selected: no Pareto '
                                      "set for demo-0 came in the wait (task planner: task "
                                      "'demo-0' rejected: why)): a move-only task")
    assert stages['task'] == "task 'F at_place_9': 2 Pareto plans"
    # a fetch planned goes on as it is; a move that gets no plan either ends the mission
    posed.clear()
    monkeypatch.setattr(demo, 'pose_task', lambda op, task_id, formula: task_id == 'demo-0')
    assert demo.pose_first_task(op, fetch, fetch.formula, {}, stages) == (fetch, fetch.formula)
    monkeypatch.setattr(demo, 'pose_task', lambda op, task_id, formula: False)
    assert demo.pose_first_task(op, fetch, fetch.formula, {}, stages) == (None, None)
    assert stages['task'].startswith("task 'F at_place_9': no plan selected")


def test_exploration_goes_on_while_nothing_to_fetch_is_seen(monkeypatch):
    from types import SimpleNamespace

    from embodied_aif.cli import demo

    class Op:
        clock = 150.0
        waits = []

        @classmethod
        def wait_sim(cls, condition, seconds, wall_limit=None):
            cls.waits.append(seconds)
            cls.clock += seconds
            return False

    task = SimpleNamespace(object_id='obj_4')
    offers = iter(['no graspable mug seen', 'no graspable mug seen', task])
    asked = []
    monkeypatch.setattr(demo, 'fetch_task', lambda op, categories, regions, unreachable:
                        asked.append(categories) or next(offers))
    names = {'perception', 'manipulator'}
    args = SimpleNamespace(task=None, fetch='mug,,can', search_s=50.0)
    # nothing, nothing, then a mug: two looks at the beliefs SEARCH_CHECK_S apart
    assert demo.search_for_fetch(args, Op, names, {}) == 2 * demo.SEARCH_CHECK_S
    assert Op.waits == [demo.SEARCH_CHECK_S] * 2 and asked == [['mug', 'can']] * 3
    # never anything: the last wait is what is left of --search-s, then it gives up
    Op.waits.clear()
    monkeypatch.setattr(demo, 'fetch_task',
                        lambda op, categories, regions, unreachable: 'none seen')
    assert demo.search_for_fetch(args, Op, names, {}) == 50.0
    check = demo.SEARCH_CHECK_S
    assert Op.waits == [check, check, 50.0 - 2 * check]
    # a zero budget: one look, no more; none at all for a given task, no fetch, or a stack
    # that cannot fetch
    Op.waits.clear()
    assert demo.search_for_fetch(SimpleNamespace(**{**vars(args), 'search_s': 0.0}), Op,
                                 names, {}) == 0.0
    for case, stack in (({'task': 'F at_place_3'}, names), ({'fetch': 'none'}, names),
                        ({}, {'perception'})):
        assert demo.search_for_fetch(SimpleNamespace(**{**vars(args), **case}), Op, stack,
                                     {}) is None
    assert Op.waits == []


def test_an_object_with_no_known_free_floor_near_it_is_looked_at_from_nearer(monkeypatch):
    from types import SimpleNamespace

    from embodied_aif.cli import demo
    from embodied_aif.models.manipulation import NO_FREE_POSE

    class Op:
        clock = 150.0
        visits, waits = [], []

        @classmethod
        def navigate_to_place(cls, place, timeout):
            cls.visits.append((place, timeout))
            cls.clock += 12.0
            return True, 'reached', None

        @classmethod
        def wait_sim(cls, condition, seconds, wall_limit=None):
            cls.waits.append(seconds)
            cls.clock += seconds
            return False

    def fetch_task(op, categories, regions, unreachable):
        # obj_5: no stand-point known free until the robot has been near it; obj_6: never
        # reachable for another reason (an arm that cannot plan), so not gone to
        unreachable['obj_6'] = 'unreachable: every reachable grasp collides'
        if not Op.visits:
            unreachable['obj_5'] = f'unreachable: {NO_FREE_POSE} within 0.80 m of the object'
            return 'no such mug the arm can reach'
        return SimpleNamespace(object_id='obj_5')
    monkeypatch.setattr(demo, 'fetch_task', fetch_task)
    monkeypatch.setattr(demo, 'place_near', lambda op, oid: {'obj_5': 7, 'obj_6': 8}[oid])
    args = SimpleNamespace(task=None, fetch='mug', search_s=60.0)
    assert demo.search_for_fetch(args, Op, {'perception', 'manipulator'}, {}) == 12.0
    assert Op.visits == [(7, 60.0)] and Op.waits == []
    # an object gone to once is not gone to again: the search explores on instead
    Op.visits, Op.clock = [], 150.0

    def still_blocked(op, categories, regions, unreachable):
        unreachable['obj_5'] = f'unreachable: {NO_FREE_POSE} within 0.80 m of the object'
        return 'no such mug the arm can reach'
    monkeypatch.setattr(demo, 'fetch_task', still_blocked)
    assert demo.search_for_fetch(args, Op, {'perception', 'manipulator'}, {}) == 60.0
    assert Op.visits == [(7, 60.0)] and Op.waits == [demo.SEARCH_CHECK_S] * 2 + [8.0]


def test_the_place_near_an_object_is_the_nearest_one_the_robot_stood_at():
    import threading
    from types import SimpleNamespace

    from embodied_aif.cli.demo import place_near
    from embodied_aif_msgs.msg import CognitiveMap, ObjectBelief, ObjectBeliefArray, Place

    def place(k, x, visits):
        p = Place(id=k, visit_count=visits)
        p.pose.position.x = x
        return p
    mug = ObjectBelief(id='obj_4', category_names=['mug'], category_probs=[1.0])
    mug.pose.pose.position.x, mug.pose.pose.orientation.w = 2.2, 1.0
    op = SimpleNamespace(lock=threading.Lock(), objects=ObjectBeliefArray(objects=[mug]),
                         map=CognitiveMap(places=[place(0, 0.0, 3), place(1, 2.0, 0),
                                                  place(2, 3.0, 1)]))
    assert place_near(op, 'obj_4') == 2  # place 1 is nearer, but only a hypothesis
    assert place_near(op, 'obj_9') is None
    op.map = None
    assert place_near(op, 'obj_4') is None
