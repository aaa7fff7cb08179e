"""task_planner and plan_selector in-process: plans equal the models', bad input keeps plans."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from stack_harness import StackHarness, overrides

from embodied_aif.models.pareto import plan
from embodied_aif.models.selector import candidates_from_dicts, preference_from_dict, select
from embodied_aif.models.transition_system import load_model
from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS
from embodied_aif.nodes._task_msgs import plans_to_dict
from embodied_aif.nodes.plan_selector import PlanSelector
from embodied_aif.nodes.task_planner import TaskPlanner
from embodied_aif_msgs.msg import (
    CognitiveMap,
    ParetoPlan,
    ParetoPlanArray,
    Place,
    PlaceEdge,
    PlanOutcome,
    Preference,
    TaskSpec,
)

from conftest import REPO

MODEL = REPO / 'config' / 'examples' / 'task' / 'fetch_mug.json'
TASK = 'F (holding_mug & F mug_on_table)'


TOPICS = {'pareto_plans': (ParetoPlanArray, LATCHED_QOS),
          'selected_plan': (ParetoPlan, LATCHED_QOS), '/diagnostics': (DiagnosticArray, 10)}


class Harness(StackHarness):
    """task_planner and plan_selector, and a probe that publishes tasks, preferences, maps."""

    def __init__(self, planner_params):
        super().__init__(lambda context: [
            TaskPlanner(context=context, parameter_overrides=overrides(planner_params)),
            PlanSelector(context=context)], TOPICS, threads=3)
        self.planner, self.selector = self.nodes
        self.task_pub = self.probe.create_publisher(TaskSpec, 'task', LATCHED_QOS)
        self.pref_pub = self.probe.create_publisher(Preference, 'preference', LATCHED_QOS)
        self.outcome_pub = self.probe.create_publisher(PlanOutcome, 'plan_outcome', COMMAND_QOS)
        self.map_pub = self.probe.create_publisher(CognitiveMap, 'cognitive_map', LATCHED_QOS)

    @property
    def got(self):
        return {'plans': self.all('pareto_plans'), 'selected': self.all('selected_plan'),
                'diag': self.all('/diagnostics')}

    def diag(self, name):
        for msg in reversed(self.all('/diagnostics')):
            for status in msg.status:
                if status.name == name:
                    return status
        return None


@pytest.fixture
def harness():
    h = Harness({'model_file': str(MODEL)})
    yield h
    h.close()


def preference(mean, var, weight=1.0):
    return Preference(objectives=['time', 'energy'], mean=mean,
                      covariance=[var, 0.0, 0.0, var], epistemic_weight=weight)


def model_after(step, n, cost):
    """The example model after n realised costs of the transition of a plan step."""
    ts = load_model(MODEL)
    index = next(k for k in range(ts.n_transitions)
                 if ts.states[ts.src[k]] == step.from_state and ts.actions[k] == step.action
                 and ts.states[ts.dst[k]] == step.to_state)
    for _ in range(n):
        ts = ts.observe(index, cost)
    return ts


def test_plans_and_selection_match_the_models(harness):
    harness.task_pub.publish(TaskSpec(id='fetch', formula=TASK))
    assert harness.wait(lambda: harness.got['plans'])
    msg = harness.got['plans'][-1]
    expected = plan(load_model(MODEL), TASK)
    assert msg.satisfiable and len(msg.plans) == len(expected.plans) >= 2
    for got, want in zip(msg.plans, expected.plans, strict=True):
        np.testing.assert_allclose(got.expected_cost, want.expected_cost)
        assert [s.to_state for s in got.steps] == list(want.states[1:])
    harness.pref_pub.publish(preference([4.0, 6.0], 1.0))
    assert harness.wait(lambda: harness.got['selected'])
    objectives, candidates = candidates_from_dicts(plans_to_dict(msg))
    pref = preference_from_dict({'objectives': ['time', 'energy'], 'mean': [4.0, 6.0],
                                 'covariance': [[1.0, 0.0], [0.0, 1.0]],
                                 'epistemic_weight': 1.0}, objectives=objectives)
    want = select(candidates, pref, 'aif', np.random.default_rng(0))
    assert harness.got['selected'][-1].id == msg.plans[want.index].id


def test_bad_inputs_keep_the_last_good_plans(harness):
    harness.task_pub.publish(TaskSpec(id='fetch', formula=TASK))
    assert harness.wait(lambda: harness.got['plans'])
    n = len(harness.got['plans'])
    harness.task_pub.publish(TaskSpec(id='broken', formula='F (holding_mug &'))
    assert harness.wait(lambda: (s := harness.diag('task_planner')) is not None
                        and 'broken' in s.message)
    status = harness.diag('task_planner')
    assert status.level == status.ERROR and 'position' in status.message
    assert len(harness.got['plans']) == n
    harness.task_pub.publish(TaskSpec(id='unknown', formula='F at_moon'))
    assert harness.wait(lambda: 'at_moon' in harness.diag('task_planner').message)
    assert len(harness.got['plans']) == n
    # unsatisfiable is a result, not an error
    harness.task_pub.publish(TaskSpec(id='never', formula='F at_home & G !at_home'))
    assert harness.wait(lambda: len(harness.got['plans']) == n + 1)
    assert not harness.got['plans'][-1].satisfiable and harness.got['plans'][-1].reason
    # a malformed preference is rejected; the selection stays
    harness.task_pub.publish(TaskSpec(id='fetch', formula=TASK))
    harness.pref_pub.publish(preference([4.0, 6.0], 1.0))
    assert harness.wait(lambda: harness.got['selected'])
    k = len(harness.got['selected'])
    harness.pref_pub.publish(Preference(objectives=['time', 'energy'], mean=[1.0, 2.0],
                                        covariance=[1.0, 0.0, 0.0]))
    assert harness.wait(lambda: 'rejected' in harness.diag('plan_selector').message)
    assert len(harness.got['selected']) == k


def test_outcomes_update_beliefs_and_replan(harness):
    harness.task_pub.publish(TaskSpec(id='fetch', formula=TASK))
    assert harness.wait(lambda: harness.got['plans'])
    first = harness.got['plans'][-1]
    n = len(harness.got['plans'])
    step = first.plans[0].steps[0]
    for _ in range(5):
        harness.outcome_pub.publish(PlanOutcome(plan_id=first.plans[0].id, step_index=0,
                                                step=step, objectives=['time', 'energy'],
                                                realised_cost=[40.0, 40.0], success=True))
    expected = plan(model_after(step, 5, [40.0, 40.0]), TASK)
    # the planner learned the same beliefs and re-planned: the same Pareto set as the models'
    assert harness.wait(lambda: len(harness.got['plans']) > n
                        and len(harness.got['plans'][-1].plans) == len(expected.plans)
                        and np.allclose([p.expected_cost for p in harness.got['plans'][-1].plans],
                                        [p.expected_cost for p in expected.plans]))
    assert not np.allclose([p.expected_cost for p in first.plans[:len(expected.plans)]],
                           [p.expected_cost for p in expected.plans])


def test_replans_on_a_new_map():
    h = Harness({})
    try:
        h.task_pub.publish(TaskSpec(id='go', formula='F at_place_2'))
        places = [Place(id=i) for i in range(3)]
        for i, place in enumerate(places):
            place.pose.position.x = 2.0 * i
        edges = [PlaceEdge(from_id=0, to_id=1, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                           length=2.0),
                 PlaceEdge(from_id=1, to_id=2, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                           length=2.0)]
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: h.got['plans'] and h.got['plans'][-1].plans)
        assert [s.target for s in h.got['plans'][-1].plans[0].steps] == ['place_1', 'place_2']
        # the map again, a place 2 cm off and an edge a little more certain: the same plans,
        # not planned again
        n = len(h.got['plans'])
        places[1].pose.position.y = 0.02
        edges[0].confidence = 0.99
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert not h.wait(lambda: len(h.got['plans']) > n, 1.5)
        # a shortcut appears: the planner re-plans on the new map
        edges.append(PlaceEdge(from_id=0, to_id=2, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                               length=3.0))
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: any(len(p.steps) == 1 for p in h.got['plans'][-1].plans))
        # the shortcut turns out blocked: back to the long way
        edges[-1].kind = PlaceEdge.BLOCKED
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: all(len(p.steps) == 2 for p in h.got['plans'][-1].plans))
        # every way to place 2 is blocked: it drops out of the system (only states the robot
        # can reach are built), and the reason says so before the planner's own words
        edges[1].kind = PlaceEdge.BLOCKED
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: not h.got['plans'][-1].satisfiable)
        reason = h.got['plans'][-1].reason
        assert reason.startswith('place(s) 2 of the map cannot be reached from place 0: no way '
                                 'there over edges not found blocked; ') and 'at_place_2' in reason
    finally:
        h.close()


def test_plans_start_holding_what_the_manipulator_holds():
    from std_msgs.msg import String

    from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

    h = Harness({})
    try:
        held = h.probe.create_publisher(String, 'held_object', LATCHED_QOS)
        objects = h.probe.create_publisher(ObjectBeliefArray, 'objects', 10)
        places = [Place(id=i) for i in range(2)]
        places[1].pose.position.x = 2.0
        edges = [PlaceEdge(from_id=0, to_id=1, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                           length=2.0)]
        h.task_pub.publish(TaskSpec(id='fetch', formula='F obj_3_on_place_1'))
        mug = ObjectBelief(id='obj_3')  # the belief still where it was picked: at place 0
        objects.publish(ObjectBeliefArray(objects=[mug]))
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: h.got['plans'] and h.got['plans'][-1].plans)
        assert [s.action for s in h.got['plans'][-1].plans[0].steps] == ['pick', 'move',
                                                                         'place']
        held.publish(String(data='obj_3'))  # picked: the plans start holding it
        assert h.wait(lambda: [s.action for s in h.got['plans'][-1].plans[0].steps]
                      == ['move', 'place'])
        assert 'holding_obj_3' in h.got['plans'][-1].plans[0].initial_labels
        held.publish(String(data=''))  # put down again where the belief says
        assert h.wait(lambda: [s.action for s in h.got['plans'][-1].plans[0].steps]
                      == ['pick', 'move', 'place'])
        # a broken task, then beliefs as perception sends them: rejected with the reason,
        # and the node keeps planning when a good task follows
        h.task_pub.publish(TaskSpec(id='broken', formula='F (obj_3_on_place_1 &'))
        assert h.wait(lambda: (d := h.diag('task_planner')) is not None
                      and 'broken' in d.message)
        n = len(h.got['plans'])
        for _ in range(3):
            objects.publish(ObjectBeliefArray(objects=[mug]))
        h.task_pub.publish(TaskSpec(id='again', formula='F obj_3_on_place_1'))
        assert h.wait(lambda: len(h.got['plans']) > n and h.got['plans'][-1].plans)
        # perception merges obj_3 into an older track of the same mug, now seen at place 1:
        # the task still names obj_3 and is found to hold already
        merged = ObjectBelief(id='obj_1', merged_ids=['obj_3'])
        merged.pose.pose.position.x = 2.0
        objects.publish(ObjectBeliefArray(objects=[merged]))
        assert h.wait(lambda: h.got['plans'][-1].plans and
                      h.got['plans'][-1].plans[0].steps == [])
        # then the mug is gone (its track dropped): the task names what no state carries, and
        # the planner says so on pareto_plans (an executive stops waiting for plans of it)
        objects.publish(ObjectBeliefArray(objects=[]))
        assert h.wait(lambda: (last := h.got['plans'][-1]).task_id == 'again'
                      and not last.satisfiable and not last.plans
                      and 'obj_3_on_place_1' in last.reason)
    finally:
        h.close()


def test_a_task_that_comes_while_the_one_before_is_planned_gets_its_own_plans(monkeypatch):
    # the demo's second fetch attempt had the first one's plans under its own id (the planner
    # read the task once to plan and again to name the result), and the executive refused them
    from embodied_aif.nodes import task_planner
    from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

    first = TaskSpec(id='first', formula='F obj_3_on_place_1')
    second = TaskSpec(id='second', formula='F obj_5_on_place_1')
    h = Harness({})
    planned = []
    real = task_planner.plan_with_threshold

    def plan_while_the_next_task_arrives(ts, formula, *args, **kwargs):
        planned.append(formula)
        if formula == first.formula and h.planner.task is not second:
            h.planner._on_task(second)  # as the subscription would, from another thread
        return real(ts, formula, *args, **kwargs)

    monkeypatch.setattr(task_planner, 'plan_with_threshold', plan_while_the_next_task_arrives)
    try:
        objects = h.probe.create_publisher(ObjectBeliefArray, 'objects', 10)
        places = [Place(id=i) for i in range(2)]
        places[1].pose.position.x = 2.0
        edges = [PlaceEdge(from_id=0, to_id=1, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                           length=2.0)]
        objects.publish(ObjectBeliefArray(objects=[ObjectBelief(id='obj_3'),
                                                   ObjectBelief(id='obj_5')]))
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        h.task_pub.publish(first)
        assert h.wait(lambda: any(m.task_id == 'second' and m.plans for m in h.got['plans']))
        assert first.formula in planned
        for msg in h.got['plans']:
            formula = first.formula if msg.task_id == 'first' else second.formula
            assert msg.formula == formula, (msg.task_id, msg.formula)
            for p in msg.plans:
                assert formula.split()[1] in p.steps[-1].labels, (msg.task_id, p.id)
    finally:
        h.close()


def test_a_task_that_already_holds_selects_the_empty_plan(harness):
    harness.pref_pub.publish(preference([4.0, 6.0], 1.0))
    harness.task_pub.publish(TaskSpec(id='here', formula='F at_home'))
    assert harness.wait(lambda: harness.got['selected'])
    assert harness.got['plans'][-1].plans[0].steps == []
    assert harness.got['selected'][-1].steps == []
    assert harness.wait(lambda: (s := harness.diag('plan_selector')) is not None
                        and 'already holds' in s.message)


def test_satisfaction_threshold_drops_plans_through_failing_steps(harness):
    harness.task_pub.publish(TaskSpec(id='fetch', formula=TASK, satisfaction_threshold=0.9))
    assert harness.wait(lambda: harness.got['plans'] and harness.got['plans'][-1].plans)
    first = harness.got['plans'][-1]
    assert len(first.plans) == 3 and any(s.action == 'stairs' for s in first.plans[0].steps)
    stairs = first.plans[0].steps[0]
    for _ in range(3):  # the stairs fail: the plans through them drop below 0.9
        harness.outcome_pub.publish(PlanOutcome(plan_id=first.plans[0].id, step_index=0,
                                                step=stairs, success=False,
                                                reason='slipped'))

    def without_stairs():
        plans = harness.got['plans'][-1].plans
        return plans and all(s.action != 'stairs' for p in plans for s in p.steps)

    assert harness.wait(without_stairs)
    # the exact front among the reliable plans: the walk via the ramp comes back
    costs = [list(p.expected_cost) for p in harness.got['plans'][-1].plans]
    np.testing.assert_allclose(costs, [[8.0, 7.0], [11.0, 5.0]])
    assert harness.wait(lambda: (s := harness.diag('task_planner')) is not None
                        and 'below the satisfaction threshold' in s.message)


def test_map_built_beliefs_keep_realised_costs_across_replans():
    h = Harness({})
    try:
        h.task_pub.publish(TaskSpec(id='go', formula='F at_place_1'))
        places = [Place(id=i) for i in range(2)]
        places[1].pose.position.x = 2.0
        edges = [PlaceEdge(from_id=0, to_id=1, kind=PlaceEdge.EXPERIENCED, confidence=1.0,
                           length=2.0)]
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: h.got['plans'] and h.got['plans'][-1].plans)
        first = h.got['plans'][-1].plans[0]
        before = np.asarray(first.expected_cost)
        n = len(h.got['plans'])
        objectives = list(h.got['plans'][-1].objectives)
        h.outcome_pub.publish(PlanOutcome(plan_id=first.id, step_index=0, step=first.steps[0],
                                          objectives=objectives,
                                          realised_cost=list(before * 10.0 + 1.0),
                                          success=True))
        # the outcome re-plans on the map-built system without losing the new evidence
        assert h.wait(lambda: len(h.got['plans']) > n)
        assert np.all(np.asarray(h.got['plans'][-1].plans[0].expected_cost) > before + 1e-6)
        # ... and a new map (rebuilt system: place 1 found 40 cm nearer, which alone would
        # cost less) still carries it
        places[1].pose.position.x = 1.6
        edges[0].length = 1.6
        h.map_pub.publish(CognitiveMap(places=places, edges=edges, current_place=0))
        assert h.wait(lambda: len(h.got['plans']) > n + 1)
        assert np.all(np.asarray(h.got['plans'][-1].plans[0].expected_cost) > before + 1e-6)
    finally:
        h.close()


def test_learned_costs_survive_a_restart_and_a_corrupt_checkpoint_is_set_aside(tmp_path):
    import json

    state = tmp_path / 'planner.json'
    params = {'model_file': str(MODEL), 'state_file': str(state)}

    def first_plans():
        h = Harness(params)
        try:
            h.task_pub.publish(TaskSpec(id='fetch', formula=TASK))
            assert h.wait(lambda: h.got['plans'])
            return h, h.got['plans'][-1]
        except BaseException:
            h.close()
            raise

    h, prior = first_plans()
    try:
        step = prior.plans[0].steps[0]
        for _ in range(5):
            h.outcome_pub.publish(PlanOutcome(plan_id=prior.plans[0].id, step_index=0,
                                              step=step, objectives=['time', 'energy'],
                                              realised_cost=[40.0, 40.0], success=True))

        def saved():
            try:
                costs = json.loads(state.read_text())['costs']['observations']
            except (OSError, ValueError, KeyError):
                return 0
            return sum(len(v) for v in costs.values())
        assert h.wait(lambda: saved() == 5)
    finally:
        h.close()
    learned = [p.expected_cost for p in plan(model_after(step, 5, [40.0, 40.0]), TASK).plans]
    # a new planner process (here: a new node) resumes with what the old one learned
    h, resumed = first_plans()
    h.close()
    assert np.allclose([p.expected_cost for p in resumed.plans], learned)
    # a corrupt checkpoint is moved aside, named, and planning starts from the priors
    state.write_text('{"costs": ')
    h, fresh = first_plans()
    try:
        assert np.allclose([p.expected_cost for p in fresh.plans],
                           [p.expected_cost for p in prior.plans])
        aside = list(tmp_path.glob('planner.json.corrupt-*'))
        assert len(aside) == 1 and aside[0].read_text() == '{"costs": '
    finally:
        h.close()
