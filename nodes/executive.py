"""executive: runs the selected plan step by step through the Navigate / Pick / Place actions.

Action server: execute (embodied_aif_msgs/Execute). Subscribes: task (TaskSpec), preference
(Preference), selected_plan (ParetoPlan), pareto_plans (ParetoPlanArray: whether the task can
be planned at all), cognitive_map (CognitiveMap: where the robot is, the
poses of places), odom, scan, joint_states (realised cost). Publishes: plan_outcome (PlanOutcome
per step and per plan: realised time, energy, risk, so the planner and selector learn),
/diagnostics. Action clients: navigate, pick, place; service client: plan_approach.

A pick step first asks the manipulator's plan_approach where the base should stand to pick
the object and drives there (Navigate to the pose, turning to face the object); a stand-point
the base cannot reach, or from where the pick cannot be planned after all, is left out of the
next answer (approach_attempts). The approach and the pick are one step: one realised cost.

Before acting, every plan is checked against the task's automaton from the trace executed so
far: a step after which the task could no longer hold is never taken (the plan is refused with
the reason). After a failed step it waits for a re-planned, re-selected plan that starts where
the robot is and goes on (up to max_replans); when the task planner says the task cannot be
planned any more (an object it names is gone) for unplannable_wait, it stops with that reason
instead of waiting out plan_timeout. A new task preempts at once (the running step is
cancelled); a new preference switches to the newly selected plan at the next step boundary.
"""
from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from sensor_msgs.msg import JointState, LaserScan

from embodied_aif.models.execution import (
    COST_OBJECTIVES,
    CostMeter,
    TaskGuard,
    parse_target,
    place_id,
)
from embodied_aif.models.ltl import LTLSyntaxError
from embodied_aif.models.selector import SelectionError, preference_from_dict
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    Param,
    ParamNode,
    node_main,
)
from embodied_aif.nodes._task_msgs import preference_to_dict
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
from embodied_aif_msgs.srv import PlanApproach

# Pick failures that leave the arm where it was: another stand-point may still do.
PLANNING_FAILURES = ('collision:', 'unreachable:')


class PreemptedError(Exception):
    """The running plan was preempted (new task, new Execute goal, cancel, shutdown)."""


class Executive(ParamNode):
    """Executes selected plans, guards them against the task, measures realised costs."""

    PARAMETERS = (
        Param('step_timeout', 120.0, 'clock seconds allowed per plan step', low=1.0,
              high=36000.0),
        Param('server_timeout', 10.0, 'wall seconds to wait for an action server', low=0.1,
              high=600.0),
        Param('plan_timeout', 60.0, 'clock seconds to wait for a (re-)selected plan', low=0.1,
              high=3600.0),
        Param('unplannable_wait', 5.0, 'clock seconds the task planner may say the task '
              'cannot be planned before a wait for a plan stops with its reason', low=0.0,
              high=3600.0),
        Param('max_replans', 2, 'default re-plans after failed steps (goal value < 0)', low=0,
              high=1000),
        Param('risk_distance', 0.5, 'metres: closer obstacles add risk', low=0.01, high=10.0),
        Param('arm_energy_per_rad', 0.2, 'energy per radian of arm joint travel', low=0.0,
              high=100.0),
        Param('arm_joint_prefix', 'panda_joint', 'joint_states names counted as arm joints'),
        Param('approach_before_pick', True, "before a pick, ask the manipulator's plan_approach "
              'where to stand and drive there (off: pick from where the move step ended)'),
        Param('approach_before_place', True, "before a place, ask the manipulator's "
              'plan_approach for a free spot on the surface nearest the place and a stand-point '
              'to put the object down from, and drive there'),
        Param('approach_attempts', 3, 'stand-points tried before a pick fails (one the base '
              'could not reach is left out of the next answer)', low=1, high=20),
        Param('approach_tolerance', 0.03, 'how close to the stand-point the base must get, m',
              low=0.01, high=1.0),
        Param('approach_exclude_radius', 0.3, 'around a stand-point the base failed to reach, '
              'others are left out too, m', low=0.0, high=5.0),
    )

    def __init__(self, **kwargs):
        super().__init__('executive', **kwargs)
        self.lock = threading.Lock()
        self.wake = threading.Event()  # set by every input a waiting goal may be waiting for
        self.meter = CostMeter(risk_distance=self.param('risk_distance'),
                               arm_energy_per_rad=self.param('arm_energy_per_rad'))
        self.task: TaskSpec | None = None
        self.plan: ParetoPlan | None = None
        self.plan_seq = 0
        self.unplannable: tuple[str, str, float] | None = None  # task id, why, since (clock)
        self.map_msg: CognitiveMap | None = None
        self.last_scan_s: float | None = None
        self.run_id = 0
        self.events = {'task': 0, 'preference': 0}
        self.counts = {'succeeded': 0, 'failed': 0, 'refused': 0, 'steps': 0,
                       'failed_steps': 0, 'replans': 0, 'preempted': 0, 'rejected_inputs': 0}
        self.current = ''
        self.last_result = ''
        self.pub_outcome = self.create_publisher(PlanOutcome, 'plan_outcome', COMMAND_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        inputs = MutuallyExclusiveCallbackGroup()
        for msg_type, topic, callback, qos in (
                (TaskSpec, 'task', self._on_task, LATCHED_QOS),
                (Preference, 'preference', self._on_preference, LATCHED_QOS),
                (ParetoPlan, 'selected_plan', self._on_plan, LATCHED_QOS),
                (ParetoPlanArray, 'pareto_plans', self._on_plans, LATCHED_QOS),
                (CognitiveMap, 'cognitive_map', self._on_map, LATCHED_QOS),
                (Odometry, 'odom', self._on_odom, SENSOR_QOS),
                (LaserScan, 'scan', self._on_scan, SENSOR_QOS),
                (JointState, 'joint_states', self._on_joints, SENSOR_QOS)):
            self.create_subscription(msg_type, topic, callback, qos, callback_group=inputs)
        clients = ReentrantCallbackGroup()
        self.action_names = {'move': 'navigate', 'pick': 'pick', 'place': 'place'}
        self.clients_by_action = {
            'move': ActionClient(self, Navigate, 'navigate', callback_group=clients),
            'pick': ActionClient(self, Pick, 'pick', callback_group=clients),
            'place': ActionClient(self, Place, 'place', callback_group=clients)}
        self.approach_client = self.create_client(PlanApproach, 'plan_approach',
                                                  callback_group=clients)
        self.server = ActionServer(self, Execute, 'execute', execute_callback=self._execute,
                                   goal_callback=lambda _: GoalResponse.ACCEPT,
                                   cancel_callback=lambda _: CancelResponse.ACCEPT,
                                   callback_group=ReentrantCallbackGroup())
        self.create_timer(1.0, self._publish_diagnostics)

    # -------------------------------------------------------------- inputs (cheap)
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_task(self, msg: TaskSpec) -> None:
        try:  # an invalid task never preempts the running one
            TaskGuard(msg.formula)
        except (LTLSyntaxError, ValueError) as exc:
            self._reject(f'task {msg.id!r} rejected, the current one goes on: {exc}')
            return
        with self.lock:
            self.task = msg
            self.events['task'] += 1
        self.wake.set()

    def _on_preference(self, msg: Preference) -> None:
        try:
            preference_from_dict(preference_to_dict(msg), 'preference')
        except (SelectionError, ValueError) as exc:
            self._reject(f'preference rejected, the current plan goes on: {exc}')
            return
        with self.lock:
            self.events['preference'] += 1
        self.wake.set()

    def _reject(self, why: str) -> None:
        self.counts['rejected_inputs'] += 1
        self.last_result = why
        self.get_logger().error(why)

    def _on_plan(self, msg: ParetoPlan) -> None:
        with self.lock:
            self.plan = msg
            self.plan_seq += 1
        self.wake.set()

    def _on_plans(self, msg: ParetoPlanArray) -> None:
        with self.lock:
            if msg.satisfiable or msg.plans:
                self.unplannable = None
            elif self.unplannable is None or self.unplannable[0] != msg.task_id:
                self.unplannable = (msg.task_id, msg.reason or 'no plan satisfies it',
                                    self._now())
        self.wake.set()

    def _on_map(self, msg: CognitiveMap) -> None:
        self.map_msg = msg
        self.wake.set()

    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose.position
        self.meter.on_base(p.x, p.y)

    def _on_scan(self, msg: LaserScan) -> None:
        ranges = np.asarray(msg.ranges, dtype=float)
        ranges = ranges[np.isfinite(ranges) & (ranges >= msg.range_min)]
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if self.last_scan_s is not None and ranges.size:
            self.meter.on_clearance(float(ranges.min()), stamp - self.last_scan_s)
        self.last_scan_s = stamp

    def _on_joints(self, msg: JointState) -> None:
        prefix = self.param('arm_joint_prefix')
        arm = [(n, q) for n, q in zip(msg.name, msg.position) if n.startswith(prefix)]
        if arm:
            self.meter.on_joints(*zip(*arm))

    # -------------------------------------------------------------- execution
    def _execute(self, handle) -> Execute.Result:
        with self.lock:
            self.run_id += 1
            run = self.run_id
        goal = handle.request
        max_replans = goal.max_replans if goal.max_replans >= 0 else self.param('max_replans')
        start = self.meter.snapshot(self._now())
        result = Execute.Result(objectives=list(COST_OBJECTIVES))
        outcome, reason = 'aborted', ''
        try:
            outcome, reason = self._run(handle, run, goal.plan_id, max_replans, result)
        except PreemptedError as exc:
            outcome, reason = ('canceled' if handle.is_cancel_requested else 'aborted'), str(exc)
            self.counts['preempted'] += 1
        result.reason = reason
        result.realised_cost = self.meter.since(start, self._now())
        result.success = outcome == 'succeeded'
        self._publish_outcome(result.plan_id, -1, None, result.realised_cost, result.success,
                              reason)
        self.counts['succeeded' if result.success else 'failed'] += 1
        self.last_result = f'{outcome}: {reason}'
        self.current = ''
        if result.success:
            self.get_logger().info(f'execute succeeded: {reason}')
        else:
            self.get_logger().warning(f'execute {outcome}: {reason}')
        getattr(handle, {'succeeded': 'succeed', 'canceled': 'canceled'}.get(outcome, 'abort'))()
        return result

    def _run(self, handle, run, plan_id, max_replans, result) -> tuple[str, str]:
        with self.lock:
            task, seq = self.task, self.plan_seq
        if task is None:
            return 'aborted', 'no task on the task topic yet'
        try:
            guard = TaskGuard(task.formula)
        except (LTLSyntaxError, ValueError) as exc:
            return 'aborted', f'the task {task.formula!r} is invalid: {exc}'
        plan = self._await_plan(handle, run, seq - 1, task, plan_id)
        while True:
            events = dict(self.events)
            if not guard.started:
                guard.advance(plan.initial_labels)
            k, why = guard.check([s.labels for s in plan.steps])
            if k >= 0:
                self.counts['refused'] += 1
                return 'aborted', f'plan {plan.id} refused: {why}'
            result.plan_id = plan.id
            done, failure = self._run_steps(handle, run, plan, guard, events)
            result.steps_done += done
            seq = self.plan_seq
            if failure is None:
                if guard.accepted:
                    return 'succeeded', f'plan {plan.id}: the task {task.formula!r} holds'
                return 'aborted', f'plan {plan.id} ended without satisfying {task.formula!r}'
            if failure == 'task':  # a new task: start over with its automaton
                with self.lock:
                    task = self.task
                try:
                    guard = TaskGuard(task.formula)
                except (LTLSyntaxError, ValueError) as exc:
                    return 'aborted', f'the new task {task.formula!r} is invalid: {exc}'
                seq -= 1  # its plan may already be selected
            elif failure == 'preference':
                seq -= 1  # the re-selected plan is already there
            elif result.replans >= max_replans:
                return 'aborted', f'{failure} (after {result.replans} re-plans)'
            else:
                result.replans += 1
                self.counts['replans'] += 1
            plan = self._await_plan(handle, run, seq, task, '')

    def _await_plan(self, handle, run, seq, task, plan_id) -> ParetoPlan:
        """The latest selected plan newer than seq, of the task, starting where the robot is."""
        self._feedback(handle, None, -1, 'waiting for a plan')
        deadline = self._now() + self.param('plan_timeout')
        wall = time.monotonic() + 10.0 * self.param('plan_timeout') + 30.0
        while True:
            self._check_preempt(handle, run)
            with self.lock:
                plan, current_seq = self.plan, self.plan_seq
            if (plan is not None and current_seq > seq and (not plan_id or plan.id == plan_id)
                    and (not task.id or plan.id.split('/')[0] == task.id)
                    and self._starts_here(plan)):
                return plan
            unplannable = self.unplannable
            if unplannable is not None and unplannable[0] == task.id and \
                    self._now() - unplannable[2] >= self.param('unplannable_wait'):
                raise PreemptedError(f'the task planner cannot plan task {task.id!r}: '
                                     f'{unplannable[1]}')
            if self._now() > deadline or time.monotonic() > wall:
                what = f'plan {plan_id!r}' if plan_id else f'plan selected for task {task.id!r}'
                raise PreemptedError(f'no {what} starts where the robot is within '
                                f"{self.param('plan_timeout'):.0f} s")
            self._idle(0.05)

    def _starts_here(self, plan: ParetoPlan) -> bool:
        """Whether the plan's first state is the robot's current place (when both are known)."""
        at = [label for label in plan.initial_labels if label.startswith('at_place_')]
        cmap = self.map_msg
        if not at or cmap is None or cmap.current_place < 0:
            return True
        return f'at_place_{cmap.current_place}' in at

    def _run_steps(self, handle, run, plan, guard, events) -> tuple[int, str | None]:
        """Execute the plan's steps; return (steps done, None or why it stopped)."""
        for k, step in enumerate(plan.steps):
            self._check_preempt(handle, run)
            with self.lock:
                if self.events['task'] != events['task']:
                    return k, 'task'
                if self.events['preference'] != events['preference'] and k > 0:
                    return k, 'preference'
            self._feedback(handle, plan, k, 'acting')
            snap = self.meter.snapshot(self._now())
            try:
                ok, reason = self._run_step(handle, run, step, events)
            except PreemptedError as exc:  # the step was interrupted: report it, then stop
                self._publish_outcome(plan.id, k, step, self.meter.since(snap, self._now()),
                                      False, f'interrupted: {exc}')
                raise
            cost = self.meter.since(snap, self._now())
            self._publish_outcome(plan.id, k, step, cost, ok, reason)
            self.counts['steps' if ok else 'failed_steps'] += 1
            if not ok:
                if reason == 'task':
                    return k, 'task'
                return k, f'step {k} ({step.action} {step.target}) failed: {reason}'
            guard.advance(step.labels)
        return len(plan.steps), None

    def _goal_for(self, step) -> tuple[object, str]:
        """The action goal of a plan step, or (None, why not)."""
        try:
            obj, place = parse_target(step.action, step.target)
            if step.action == 'move':
                return Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE,
                                     place_id=place_id(place)), ''
            if step.action == 'pick':
                return Pick.Goal(object_id=obj), ''
            k = place_id(place)
        except ValueError as exc:
            return None, str(exc)
        cmap = self.map_msg
        poses = {p.id: p.pose for p in cmap.places} if cmap is not None else {}
        if k not in poses:
            return None, f'place {k} of the step is not on the cognitive map'
        target = PoseStamped(pose=poses[k])
        target.header.frame_id = cmap.header.frame_id
        return Place.Goal(object_id=obj, target=target), ''

    def _run_step(self, handle, run, step, events) -> tuple[bool, str]:
        goal, why = self._goal_for(step)
        if goal is None:
            return False, why
        if step.action == 'pick' and self.param('approach_before_pick') or \
                step.action == 'place' and self.param('approach_before_place'):
            return self._approach_and_act(step.action, goal, handle, run, events)
        return self._run_action(step.action, goal, handle, run, events)

    def _approach_and_act(self, action: str, goal, handle, run, events) -> tuple[bool, str]:
        """Drive to a stand-point the manipulator can pick (or place) from, then act.

        For a place, plan_approach also chooses the spot on the surface nearest the step's
        place. A stand-point the base cannot reach, or from where the arm's motion cannot be
        planned after all (the base stopped within its tolerance but the arm cannot reach
        from there), is left out of the next answer, up to approach_attempts stand-points.
        """
        client = self.approach_client
        if not client.wait_for_service(timeout_sec=self.param('server_timeout')):
            return False, "approach: no 'plan_approach' service is running (the manipulator)"
        request = PlanApproach.Request(
            object_id=goal.object_id, place=action == 'place',
            exclude_radius=float(self.param('approach_exclude_radius')))
        if action == 'place':
            request.place_near = goal.target.pose.position
        why = ''
        for _attempt in range(self.param('approach_attempts')):
            future = client.call_async(request)
            future.add_done_callback(lambda _: self.wake.set())
            if not self._wait(future.done, 300.0, handle, run):
                return False, 'approach: plan_approach did not answer'
            answer = future.result()
            if not answer.success:
                return False, f'approach: {answer.reason}'
            move = Navigate.Goal(mode=Navigate.Goal.GOAL_POSE, pose=answer.base_pose,
                                 align_heading=True,
                                 tolerance=float(self.param('approach_tolerance')))
            ok, why = self._run_action('move', move, handle, run, events)
            if ok:
                if action == 'place':
                    goal = Place.Goal(object_id=goal.object_id, target=answer.place_target)
                ok, why = self._run_action(action, goal, handle, run, events)
                if ok or not why.startswith(PLANNING_FAILURES):
                    return ok, why
                what = f'the {action} cannot be planned from it'
            elif why == 'task':
                return ok, why
            else:
                what = 'stand-point not reached'
            request.exclude.append(answer.base_pose.pose.position)
            self.get_logger().warning(f'approach to {action} {goal.object_id}: {what} ({why}); '
                                      'asking for another')
        return False, (f"approach: no stand-point to {action} {goal.object_id} worked in "
                       f"{self.param('approach_attempts')} tries (last: {why})")

    def _run_action(self, action: str, goal, handle, run, events) -> tuple[bool, str]:
        """Send one action goal and follow it to its result; return (success, reason)."""
        client = self.clients_by_action[action]
        if not client.wait_for_server(timeout_sec=self.param('server_timeout')):
            return False, f"no '{self.action_names[action]}' action server is running"
        future = client.send_goal_async(goal)
        future.add_done_callback(lambda _: self.wake.set())
        if not self._wait(future.done, 10.0, handle, run) or not future.result().accepted:
            return False, f"the '{self.action_names[action]}' server did not accept the goal"
        child = future.result()
        result_future = child.get_result_async()
        result_future.add_done_callback(lambda _: self.wake.set())
        try:
            finished = self._wait(result_future.done, self.param('step_timeout'), handle, run,
                                  events)
        except PreemptedError:
            child.cancel_goal_async()
            raise
        if finished == 'task':
            child.cancel_goal_async()
            return False, 'task'
        if not finished:
            child.cancel_goal_async()
            return False, f"timed out after {self.param('step_timeout'):.0f} s"
        res = result_future.result().result
        return bool(res.success), res.reason or ('done' if res.success else 'failed')

    def _wait(self, predicate, clock_s, handle, run, events=None):
        """Wait for predicate() up to clock_s seconds of the node's clock (wall-bounded).

        Returns True when it holds, False on timeout, 'task' when a new task arrived
        (only when events is given); raises PreemptedError on cancel or a newer Execute goal.
        """
        deadline = self._now() + clock_s
        wall = time.monotonic() + 10.0 * clock_s + 30.0
        while not predicate():
            self._check_preempt(handle, run)
            if events is not None and self.events['task'] != events['task']:
                return 'task'
            if self._now() > deadline or time.monotonic() > wall:
                return predicate()
            self._idle(0.02)
        return True

    def _idle(self, longest_s: float) -> None:
        """Until an input arrives or a future completes; the bound only catches a cancel."""
        self.wake.wait(longest_s)
        self.wake.clear()

    def _check_preempt(self, handle, run) -> None:
        if handle.is_cancel_requested:
            raise PreemptedError('canceled by the client')
        if run != self.run_id:
            raise PreemptedError('preempted by a newer execute goal')
        if not self.context.ok() or self.closing.is_set():
            raise PreemptedError('the executive is shutting down')

    def _feedback(self, handle, plan, k, phase) -> None:
        fb = Execute.Feedback(plan_id=plan.id if plan else '', step_index=k, phase=phase)
        if plan is not None and 0 <= k < len(plan.steps):
            fb.action, fb.target = plan.steps[k].action, plan.steps[k].target
        self.current = f'{fb.plan_id} step {k} {fb.action} {fb.target}: {phase}'
        handle.publish_feedback(fb)

    def _publish_outcome(self, plan_id, k, step, cost, ok, reason) -> None:
        msg = PlanOutcome(plan_id=plan_id, step_index=k, step=step or PlanStep(),
                          objectives=list(COST_OBJECTIVES),
                          realised_cost=[float(c) if math.isfinite(c) else 0.0 for c in cost],
                          success=ok, reason=reason if reason != 'task' else 'preempted')
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_outcome.publish(msg)

    def _publish_diagnostics(self) -> None:
        values = [KeyValue(key=k, value=str(v)) for k, v in self.counts.items()]
        values += [KeyValue(key='current', value=self.current),
                   KeyValue(key='last_result', value=self.last_result[:300]),
                   KeyValue(key='energy_total', value=f'{self.meter.energy:.2f}'),
                   KeyValue(key='risk_total', value=f'{self.meter.risk:.2f}')]
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name='executive',
                                  message=self.current or 'idle', values=values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


NODE_CLASS = Executive
main = node_main(Executive)

if __name__ == '__main__':
    sys.exit(main())
