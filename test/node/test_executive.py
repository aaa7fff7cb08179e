"""executive in-process against scripted Navigate/Pick/Place servers and a probe planner.

One context: the executive, a `fakes` node serving navigate/pick/place with scripted outcomes,
and the probe, which plays task planner and selector (task, selected_plan, cognitive_map) and
sends Execute goals like a client would.
"""
import time

import pytest
from rclpy.action import ActionClient, ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from stack_harness import StackHarness, overrides

from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS
from embodied_aif.nodes.executive import Executive
from embodied_aif_msgs.action import Execute, Navigate, Pick, Place
from embodied_aif_msgs.msg import (
    CognitiveMap,
    ParetoPlan,
    ParetoPlanArray,
    PlanOutcome,
    PlanStep,
    Preference,
    TaskSpec,
)
from embodied_aif_msgs.msg import (
    Place as PlaceMsg,
)
from embodied_aif_msgs.srv import PlanApproach


class Fakes:
    """Scripted action servers: script[(action, target)] = (seconds, success, reason)."""

    def __init__(self, node):
        self.node = node
        self.script = {}
        self.calls = []
        self.canceled = []
        group = ReentrantCallbackGroup()
        self.servers = [
            ActionServer(node, Navigate, 'navigate', self._serve('move', navigate_key),
                         cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group),
            ActionServer(node, Place, 'place', self._serve('place', lambda g: g.object_id),
                         cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group)]

    def _serve(self, action, key):
        def execute(handle):
            target = key(handle.request)
            self.calls.append((action, target))
            seconds, ok, reason = self.script.get((action, target), (0.3, True, 'done'))
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if handle.is_cancel_requested:
                    self.canceled.append((action, target))
                    handle.canceled()
                    return _result(action, False, 'canceled')
                time.sleep(0.02)
            (handle.succeed if ok else handle.abort)()
            return _result(action, ok, reason)
        return execute


def navigate_key(goal):
    """A place id, or 'pose_<x>' for a pose goal (x to 0.1 m)."""
    if goal.mode == Navigate.Goal.GOAL_PLACE:
        return goal.place_id
    return f'pose_{goal.pose.pose.position.x:.1f}' + ('_aligned' if goal.align_heading else '')


def _result(action, ok, reason):
    kind = {'move': Navigate, 'place': Place, 'pick': Pick}[action]
    return kind.Result(success=ok, reason=reason)


def make_nodes(context):
    import rclpy
    executive = Executive(context=context, parameter_overrides=overrides(
        {'server_timeout': 1.0, 'plan_timeout': 5.0, 'step_timeout': 10.0,
         'unplannable_wait': 0.5}))
    fakes = rclpy.create_node('fakes', context=context)
    return [executive, fakes]


class Harness(StackHarness):
    def __init__(self):
        super().__init__(make_nodes, {'/plan_outcome': (PlanOutcome, COMMAND_QOS)})
        self.executive, fakes_node = self.nodes
        self.fakes = Fakes(fakes_node)
        p = self.probe
        self.pub_task = p.create_publisher(TaskSpec, '/task', LATCHED_QOS)
        self.pub_pref = p.create_publisher(Preference, '/preference', LATCHED_QOS)
        self.pub_plan = p.create_publisher(ParetoPlan, '/selected_plan', LATCHED_QOS)
        self.pub_map = p.create_publisher(CognitiveMap, '/cognitive_map', LATCHED_QOS)
        self.pub_plans = p.create_publisher(ParetoPlanArray, '/pareto_plans', LATCHED_QOS)
        self.set_place(0)

    def prepare(self):
        self.client = ActionClient(self.probe, Execute, '/execute')

    def set_place(self, current):
        cmap = CognitiveMap(current_place=current, num_places=5)
        cmap.header.frame_id = 'odom'
        for k in range(5):
            place = PlaceMsg(id=k)
            place.pose.position.x = float(k)
            place.pose.orientation.w = 1.0
            cmap.places.append(place)
        self.pub_map.publish(cmap)

    def execute(self, goal=None):
        """Send an Execute goal; return the goal handle's result future."""
        assert self.client.wait_for_server(timeout_sec=10)
        future = self.client.send_goal_async(goal or Execute.Goal(max_replans=-1))
        assert self.wait(future.done, 10) and future.result().accepted
        return future.result()

    def result(self, handle, timeout=40.0):
        future = handle.get_result_async()
        assert self.wait(future.done, timeout), 'no Execute result'
        return future.result().result


def plan_msg(plan_id, places, start=0, extra=()):
    """A plan of move steps through `places` from `start`, labelled like the planner does."""
    msg = ParetoPlan(id=plan_id, expected_cost=[1.0, 1.0, 0.0],
                     initial_labels=[f'at_place_{start}', 'hand_empty'])
    here = start
    for k in places:
        msg.steps.append(PlanStep(action='move', target=f'place_{k}',
                                  from_state=f'place_{here}|-|', to_state=f'place_{k}|-|',
                                  labels=[f'at_place_{k}', 'hand_empty'],
                                  expected_cost=[1.0, 1.0, 0.0]))
        here = k
    msg.steps.extend(extra)
    return msg


@pytest.fixture(scope='module')
def harness():
    h = Harness()
    yield h
    h.close()


def new_task(h, task_id, formula):
    h.pub_task.publish(TaskSpec(id=task_id, formula=formula))
    time.sleep(0.3)


def outcomes_of(h, plan_prefix):
    return [m for m in h.all('/plan_outcome')
            if m.plan_id.startswith(plan_prefix) and m.step_index >= 0]


def test_plan_is_executed_and_each_step_reported(harness):
    h = harness
    new_task(h, 'a', 'F at_place_2')
    h.pub_plan.publish(plan_msg('a/0', [1, 2]))
    result = h.result(h.execute())
    assert result.success, result.reason
    assert result.plan_id == 'a/0' and result.steps_done == 2 and result.replans == 0
    assert list(result.objectives) == ['time', 'energy', 'risk']
    assert result.realised_cost[0] >= 0.5  # two scripted steps of 0.3 s
    assert ('move', 1) in h.fakes.calls and ('move', 2) in h.fakes.calls
    assert h.wait(lambda: len(outcomes_of(h, 'a/')) >= 2)
    steps = outcomes_of(h, 'a/')
    assert [m.step_index for m in steps] == [0, 1] and all(m.success for m in steps)
    assert all(m.realised_cost[0] >= 0.25 for m in steps)
    assert steps[1].step.to_state == 'place_2|-|'
    assert h.wait(lambda: any(m.plan_id == 'a/0' and m.step_index == -1
                              for m in h.all('/plan_outcome')))  # published after the steps'
    whole = [m for m in h.all('/plan_outcome') if m.plan_id == 'a/0' and m.step_index == -1]
    assert len(whole) == 1 and whole[0].success
    assert whole[0].realised_cost[0] >= sum(m.realised_cost[0] for m in steps) - 1e-6


def test_a_step_that_would_violate_the_task_is_never_taken(harness):
    h = harness
    new_task(h, 'b', 'F at_place_2 & G !at_place_1')
    h.pub_plan.publish(plan_msg('b/0', [1, 2]))
    calls = len(h.fakes.calls)
    result = h.result(h.execute())
    assert not result.success
    assert 'refused' in result.reason and 'at_place_1' in result.reason, result.reason
    assert len(h.fakes.calls) == calls, 'nothing was executed'


def first_step_fails(h, task_id, place, why):
    """Execute task_id's plan to place then place 2, whose first move fails with why."""
    new_task(h, task_id, 'F at_place_2')
    h.fakes.script[('move', place)] = (0.2, False, why)
    h.pub_plan.publish(plan_msg(f'{task_id}/0', [place, 2]))
    handle = h.execute()
    assert h.wait(lambda: any(not m.success for m in outcomes_of(h, f'{task_id}/0')), 20)
    return handle, [m for m in outcomes_of(h, f'{task_id}/0') if not m.success][0]


def test_failed_step_waits_for_a_replanned_route_and_goes_on(harness):
    h = harness
    handle, failed = first_step_fails(h, 'c', 1, 'edge 0-1 blocked')
    assert failed.step_index == 0 and 'blocked' in failed.reason
    time.sleep(0.3)
    h.pub_plan.publish(plan_msg('c/1', [3, 2]))  # the planner's detour
    result = h.result(handle)
    assert result.success, result.reason
    assert result.replans == 1 and result.plan_id == 'c/1'
    assert ('move', 3) in h.fakes.calls


def test_a_task_the_planner_cannot_plan_any_more_ends_the_wait_with_its_reason(harness):
    h = harness
    handle, _ = first_step_fails(h, 'gone', 4, 'unknown_object: obj_7 is gone')
    why = "the task 'F at_place_2' uses atom(s) 'obj_7_on_place_2' that no state carries"
    h.pub_plans.publish(ParetoPlanArray(task_id='gone', formula='F at_place_2',
                                        satisfiable=False, reason=why))
    start = time.monotonic()
    result = h.result(handle)
    assert not result.success
    assert "cannot plan task 'gone'" in result.reason and 'obj_7_on_place_2' in result.reason
    assert time.monotonic() - start < 4.0  # not the 5 s plan_timeout
    # a satisfiable answer for the task clears it: the next wait is for a plan again
    h.pub_plans.publish(ParetoPlanArray(task_id='gone', formula='F at_place_2',
                                        satisfiable=True))
    time.sleep(0.3)
    assert h.executive.unplannable is None


def test_missing_servers_and_bad_steps_fail_with_a_reason(harness):
    h = harness
    new_task(h, 'd', 'F holding_mug')
    pick = PlanStep(action='pick', target='mug', labels=['at_place_0', 'holding_mug'])
    h.pub_plan.publish(plan_msg('d/0', [], extra=[pick]))
    result = h.result(h.execute(Execute.Goal(max_replans=0)))
    assert not result.success and "no 'plan_approach' service" in result.reason, result.reason
    new_task(h, 'e', 'F mug_on_place_9')
    bad = PlanStep(action='place', target='mug@place_9', labels=['mug_on_place_9'])
    h.pub_plan.publish(plan_msg('e/0', [], extra=[bad]))
    result = h.result(h.execute(Execute.Goal(max_replans=0)))
    assert not result.success and 'place 9' in result.reason, result.reason
    new_task(h, 'f', 'F (at_place_1 &')  # rejected with the reason; the task stays 'e'
    assert h.wait(lambda: 'rejected' in h.executive.last_result, 10)
    assert 'position' in h.executive.last_result and h.executive.task.id == 'e'
    # the executive still works afterwards
    new_task(h, 'g', 'F at_place_3')
    h.pub_plan.publish(plan_msg('g/0', [3]))
    assert h.result(h.execute()).success


def test_new_task_preempts_the_running_step(harness):
    h = harness
    new_task(h, 'h', 'F at_place_4')
    h.fakes.script[('move', 4)] = (30.0, True, 'done')
    h.pub_plan.publish(plan_msg('h/0', [4]))
    handle = h.execute()
    assert h.wait(lambda: ('move', 4) in h.fakes.calls, 10)
    # an invalid task and a malformed preference are rejected and preempt nothing
    new_task(h, 'bad', 'F at_place_3 U')
    h.pub_pref.publish(Preference(objectives=['time'], mean=[1.0], covariance=[1.0, 0.0]))
    assert h.wait(lambda: 'preference rejected' in h.executive.last_result, 10)
    assert h.executive.counts['rejected_inputs'] >= 2 and ('move', 4) not in h.fakes.canceled
    new_task(h, 'i', 'F at_place_3')
    h.pub_plan.publish(plan_msg('i/0', [3]))
    result = h.result(handle)
    assert result.success, result.reason
    assert result.plan_id == 'i/0' and ('move', 4) in h.fakes.canceled
    assert 'at_place_3' in result.reason


def test_cancel_stops_the_child_action(harness):
    h = harness
    new_task(h, 'j', 'F at_place_4')
    h.pub_plan.publish(plan_msg('j/0', [4]))
    canceled = len(h.fakes.canceled)
    handle = h.execute()
    assert h.wait(lambda: h.fakes.calls[-1] == ('move', 4), 10)
    cancel = handle.cancel_goal_async()
    assert h.wait(cancel.done, 10)
    result = h.result(handle)
    assert not result.success and 'canceled' in result.reason
    assert h.wait(lambda: len(h.fakes.canceled) > canceled, 10)
    # the interrupted step is reported, as a failure, with what it cost so far
    step = [m for m in outcomes_of(h, 'j/') if m.step_index == 0]
    assert len(step) == 1 and not step[0].success and 'interrupted' in step[0].reason


def test_a_pick_first_drives_to_a_stand_point_and_asks_again_when_one_is_unreachable(harness):
    h = harness
    asked = []

    def approach(request, response):
        asked.append((request.object_id, [(p.x, p.y) for p in request.exclude]))
        if request.object_id == 'far_mug':
            response.success, response.reason = False, 'unreachable: no free base pose'
            return response
        response.success = True
        response.base_pose.header.frame_id = 'odom'
        response.base_pose.pose.position.x = float(len(asked))  # stand-point k at x = k
        response.base_pose.pose.orientation.w = 1.0
        return response

    group = ReentrantCallbackGroup()
    node = h.fakes.node
    h.fakes.servers += [
        node.create_service(PlanApproach, 'plan_approach', approach, callback_group=group),
        ActionServer(node, Pick, 'pick', h.fakes._serve('pick', lambda g: g.object_id),
                     cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group)]
    h.fakes.script[('move', 'pose_1.0_aligned')] = (0.2, False, 'stalled: table top ahead')
    new_task(h, 'k', 'F holding_mug')
    pick = PlanStep(action='pick', target='mug', labels=['at_place_0', 'holding_mug'])
    h.pub_plan.publish(plan_msg('k/0', [], extra=[pick]))
    first = len(h.fakes.calls)
    result = h.result(h.execute(Execute.Goal(max_replans=0)))
    assert result.success, result.reason
    assert h.fakes.calls[first:] == [('move', 'pose_1.0_aligned'), ('move', 'pose_2.0_aligned'),
                                     ('pick', 'mug')]
    assert asked == [('mug', []), ('mug', [(1.0, 0.0)])]  # the failed stand-point left out
    step = [m for m in outcomes_of(h, 'k/') if m.step_index == 0]
    assert len(step) == 1 and step[0].success  # approach and pick are one step's cost
    # no stand-point at all: the step fails with the manipulator's reason, nothing is driven
    new_task(h, 'l', 'F holding_far_mug')
    pick = PlanStep(action='pick', target='far_mug', labels=['at_place_0', 'holding_far_mug'])
    h.pub_plan.publish(plan_msg('l/0', [], extra=[pick]))
    first = len(h.fakes.calls)
    result = h.result(h.execute(Execute.Goal(max_replans=0)))
    assert not result.success and 'approach: unreachable' in result.reason, result.reason
    assert h.fakes.calls[first:] == []
    # reached, but the pick cannot be planned from there (the base stopped within its
    # tolerance): another stand-point is asked for, each failed one left out
    h.fakes.script[('pick', 'wedged_mug')] = (0.1, False, 'collision: every grasp collides')
    asked.clear()
    new_task(h, 'm', 'F holding_wedged_mug')
    pick = PlanStep(action='pick', target='wedged_mug', labels=['at_place_0',
                                                                'holding_wedged_mug'])
    h.pub_plan.publish(plan_msg('m/0', [], extra=[pick]))
    first = len(h.fakes.calls)
    result = h.result(h.execute(Execute.Goal(max_replans=0)))
    assert not result.success and 'worked in 3 tries' in result.reason, result.reason
    assert 'collision' in result.reason, result.reason
    assert h.fakes.calls[first:] == [('move', 'pose_1.0_aligned'), ('move', 'pose_2.0_aligned'),
                                     ('pick', 'wedged_mug'), ('move', 'pose_3.0_aligned'),
                                     ('pick', 'wedged_mug')]
    assert asked == [('wedged_mug', []), ('wedged_mug', [(1.0, 0.0)]),
                     ('wedged_mug', [(1.0, 0.0), (2.0, 0.0)])]
