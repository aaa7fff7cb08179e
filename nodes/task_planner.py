"""task_planner: the exact Pareto set of plans that satisfy a temporal-logic task.

Subscribes: task (embodied_aif_msgs/TaskSpec), cognitive_map (CognitiveMap), objects
(ObjectBeliefArray), held_object (std_msgs/String, latched: the manipulator's held object, ''
for none; plans start holding it), plan_outcome (PlanOutcome: realised step costs update the
cost beliefs).
Publishes: pareto_plans (ParetoPlanArray, latched), ~/markers (the Pareto front in cost space),
/diagnostics. The transition system comes from `model_file` (the JSON format of
`embodied-aif plan`) when given, else from the cognitive map and the object beliefs. It
re-plans whenever the task, the map, the objects or the cost beliefs change (a map or object
message that moves nothing by 10 cm, 0.05 of an edge's confidence, and keeps the current
place, changes no plan and is not planned on again). Each re-plan reads the task once: a task
that comes during a re-plan is planned in the next one. A bad task or
model is rejected with a reason on /diagnostics and in the log; the last good plans stay.
When a task planned before names what no state carries any more (an object that is gone), it
is published as unsatisfiable with that reason, so the executive stops waiting for its plans.

TaskSpec.satisfaction_threshold (0..1) is the minimal probability that a plan satisfies the
task: step outcomes (PlanOutcome.success) update a Beta belief of each step's success
probability (prior `success_prior_mean`, worth `success_prior_strength` executions), and only
plans whose steps all succeed with at least that probability are published (the exact Pareto
set among them, models.satisfaction); 0 accepts every plan.
"""
from __future__ import annotations

import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from embodied_aif.models.ltl import LTLSyntaxError, atoms_of
from embodied_aif.models.pareto import TaskError
from embodied_aif.models.satisfaction import SuccessBeliefs, plan_with_threshold
from embodied_aif.models.task_world import (
    CostMemory,
    cut_off_places,
    objects_named,
    parse_regions,
    system_from_map,
    transition_key,
)
from embodied_aif.models.transition_system import ModelError, load_model
from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, Param, ParamNode, node_main
from embodied_aif.nodes._state import StateFile
from embodied_aif.nodes._task_msgs import front_markers, result_to_msg
from embodied_aif_msgs.msg import (
    CognitiveMap,
    ObjectBeliefArray,
    ParetoPlanArray,
    PlanOutcome,
    TaskSpec,
)


def _regions_problem(value) -> str | None:
    try:
        parse_regions([r for r in value if r])
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def map_key(msg: CognitiveMap) -> tuple:
    """What of a cognitive map the plans depend on, to 10 cm and 0.05 of confidence."""
    places = tuple((p.id, round(p.pose.position.x / 0.1), round(p.pose.position.y / 0.1))
                   for p in msg.places)
    edges = tuple((e.from_id, e.to_id, e.kind, round(e.length / 0.1), round(e.confidence / 0.05))
                  for e in msg.edges)
    return msg.current_place, places, edges


class TaskPlanner(ParamNode):
    """Keeps the task, the transition system and its cost beliefs; publishes Pareto plans."""

    PARAMETERS = (
        Param('model_file', '', 'transition-system JSON (empty: build from the map and objects)'),
        Param('optimism', 0.0, 'plan on lower-confidence-bound costs (0 = mean costs)',
              low=0.0, high=100.0),
        Param('success_prior_mean', 0.999, 'prior probability that a step succeeds',
              low=1e-6, high=1.0 - 1e-9),
        Param('success_prior_strength', 10.0, 'executions the success prior is worth',
              low=1e-6, high=1e9),
        Param('max_labels', 2_000_000, 'bound on the multi-objective search', low=1000,
              high=100_000_000),
        Param('marker_frame', 'pareto_front', 'frame of the Pareto-front markers', read_only=True),
        Param('marker_scale', 0.05, 'metres per unit of cost in the front markers', low=1e-6,
              high=100.0),
        Param('state_file', '', 'JSON checkpoint of the learned costs and step outcomes, '
              'resumed at start (empty: not kept)', read_only=True),
        Param('regions', [''], "named zones of the map frame, 'name:xmin,ymin,xmax,ymax' or "
              "'name:x1,y1;x2,y2;x3,y3': places inside get the label in_<name>",
              validate=lambda value: _regions_problem(value)),
    )

    def __init__(self, **kwargs):
        super().__init__('task_planner', **kwargs)
        self.task: TaskSpec | None = None
        self.ts = None
        self.map_msg: CognitiveMap | None = None
        self.objects: ObjectBeliefArray | None = None
        self.dirty = False
        self.last_good: ParetoPlanArray | None = None
        # transition key (models.task_world.transition_key) -> [successes, failures]
        self.step_outcomes: dict[str, list[int]] = {}
        # realised costs by transition key, replayed onto every rebuilt system
        self.memory = CostMemory()
        self.state_file = StateFile(self.param('state_file'))
        self._load_state()
        self.rebuild = False
        self.status = ('no task yet', DiagnosticStatus.OK)
        self.pub_plans = self.create_publisher(ParetoPlanArray, 'pareto_plans', LATCHED_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, '~/markers', LATCHED_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(TaskSpec, 'task', self._on_task, LATCHED_QOS)
        self.create_subscription(CognitiveMap, 'cognitive_map', self._on_map, LATCHED_QOS)
        self.create_subscription(ObjectBeliefArray, 'objects', self._on_objects, 10)
        self.holding = ''  # the manipulator's held object: the plans start holding it
        self.objects_key = None  # the named objects' places, last time they made a re-plan
        self.map_key = None  # the same for the cognitive map (map_key)
        self.create_subscription(String, 'held_object', self._on_held, LATCHED_QOS)
        self.create_subscription(PlanOutcome, 'plan_outcome', self._on_outcome, COMMAND_QOS)
        self.create_timer(0.1, self._replan_if_dirty,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0, self._publish_diagnostics)
        if self.param('model_file'):
            self._load_model_file()
        self.regions = parse_regions([r for r in self.param('regions') if r])
        self.add_post_set_parameters_callback(self._on_parameters)

    def _on_parameters(self, params) -> None:
        if any(p.name == 'regions' for p in params):
            self.regions = parse_regions([r for r in self.param('regions') if r])
            self.dirty = self.rebuild = True

    # -------------------------------------------------------------- inputs (cheap)
    def _on_task(self, msg: TaskSpec) -> None:
        self.task = msg
        self.dirty = self.rebuild = True  # the objects a task names are part of its system

    def _on_map(self, msg: CognitiveMap) -> None:
        self.map_msg = msg
        if self.param('model_file'):
            return
        # the cognitive map is published every update: one that moves no place or changes no
        # edge's length by 10 cm, no edge's confidence by 0.05, no edge's kind and not the
        # current place gives the same plans (re-planning on each was 150-400 ms every 2-3 s)
        key = map_key(msg)
        if key != self.map_key:
            self.map_key = key
            self.dirty = self.rebuild = True

    def _on_held(self, msg: String) -> None:
        if msg.data != self.holding:
            self.holding = msg.data
            self.dirty = self.rebuild = True

    def _on_objects(self, msg: ObjectBeliefArray) -> None:
        self.objects = msg
        if self.param('model_file') or self.task is None:
            return
        # only the objects the task names enter the system, each at its nearest place: a
        # belief update that moves none of them by 5 cm leaves the plans as they are (the
        # perception node publishes every frame; re-planning on each was most of this node's
        # work during a fetch). The object in the hand moves with it, wherever it is believed.
        try:
            key = tuple(sorted((name, round(x / 0.05), round(y / 0.05))
                               for name, (x, y) in self._named_objects().items()
                               if name != self.holding))
        except LTLSyntaxError:
            key = None  # a broken task: the re-plan reports it, the last good plans stay
        if key is None or key != self.objects_key:
            self.objects_key = key
            self.dirty = self.rebuild = True

    def _named_objects(self, task: TaskSpec | None = None) -> dict:
        task = task or self.task
        objects = self.objects
        if objects is None or task is None:
            return {}
        # a task that named a track perception has since merged into another names that one
        return objects_named({name: (o.pose.pose.position.x, o.pose.pose.position.y)
                              for o in objects.objects for name in (*o.merged_ids, o.id)},
                             atoms_of(task.formula))

    def _on_outcome(self, msg: PlanOutcome) -> None:
        if self.ts is None or msg.step_index < 0:
            return
        step = msg.step
        try:
            index = next(k for k in range(self.ts.n_transitions)
                         if self.ts.states[self.ts.src[k]] == step.from_state
                         and self.ts.states[self.ts.dst[k]] == step.to_state
                         and self.ts.actions[k] == step.action)
            key = transition_key(self.ts, index)
            counts = self.step_outcomes.setdefault(key, [0, 0])
            counts[0 if msg.success else 1] += 1
            if not msg.success:  # a failed step's cost says nothing about its cost law
                self.dirty = True
                self._save_state()
                return
            cost = np.asarray(msg.realised_cost, dtype=float)
            if msg.objectives and list(msg.objectives) != list(self.ts.objectives):
                by_name = dict(zip(msg.objectives, cost, strict=True))
                cost = np.array([by_name[name] for name in self.ts.objectives])
            self.ts = self.ts.observe(index, cost)
            if not len(self.memory) and self.memory.objectives != tuple(self.ts.objectives):
                self.memory = CostMemory(self.ts.objectives)  # a model with its own objectives
            if tuple(self.ts.objectives) == self.memory.objectives:
                self.memory.record(key, cost)
            self._save_state()
        except StopIteration:
            self._fail(f'plan_outcome for an unknown step {step.from_state} --{step.action}--> '
                       f'{step.to_state}; beliefs unchanged')
            return
        except (ValueError, KeyError) as exc:
            self._fail(f'plan_outcome rejected (objectives {list(msg.objectives)}, costs '
                       f'{list(msg.realised_cost)}): {exc}')
            return
        self.dirty = True

    # -------------------------------------------------------------- planning
    def _load_model_file(self) -> None:
        try:
            self.ts = self.memory.apply(load_model(self.param('model_file')))
        except ModelError as exc:
            self._fail(str(exc))

    def _system_from_map(self, task: TaskSpec):
        msg = self.map_msg
        places = {p.id: (p.pose.position.x, p.pose.position.y) for p in msg.places}
        edges = [(e.from_id, e.to_id, e.length, e.confidence) for e in msg.edges
                 if e.kind != e.BLOCKED]
        return system_from_map(places, edges, self._named_objects(task), msg.current_place,
                               holding=self.holding or None, regions=self.regions,
                               object_places=[p.id for p in msg.places if p.visit_count > 0])

    def _explained(self, task: TaskSpec, exc: TaskError) -> str:
        """The planning error, led by the places it names that no unblocked way reaches."""
        if self.param('model_file') or self.map_msg is None or self.ts is None:
            return str(exc)
        cut = cut_off_places(task.formula, self.ts, (p.id for p in self.map_msg.places))
        if not cut:
            return str(exc)
        return (f'place(s) {", ".join(map(str, cut))} of the map cannot be reached from place '
                f'{self.map_msg.current_place}: no way there over edges not found blocked; '
                f'{exc}')

    def _replan_if_dirty(self) -> None:
        # the inputs are read once: a task (or map, held object) that arrives while this runs
        # sets the flags again for the next pass. Read twice, a task that came mid-way gave
        # its id to the plans of the one before (the executive then refused them)
        task = self.task
        if not self.dirty or task is None:
            return
        self.dirty = False
        rebuild, self.rebuild = self.rebuild, False
        if not self.param('model_file') and (rebuild or self.ts is None) and \
                not self._rebuild(task):
            self.rebuild = True  # no map yet, lost, or a broken task: the next pass tries again
            return
        self._plan(task)

    def _rebuild(self, task: TaskSpec) -> bool:
        """Build the transition system of ``task`` from the map; False (and why) if not."""
        if self.map_msg is None:
            self._fail('waiting for a cognitive map to plan on', DiagnosticStatus.OK)
            return False
        if self.map_msg.current_place < 0:
            self._fail('waiting for the robot to be localised on the map (it is lost)',
                       DiagnosticStatus.WARN)
            return False
        try:
            self.ts = self._replay(self._system_from_map(task))
        except (LTLSyntaxError, TaskError, ValueError) as exc:
            self._fail(f'task {task.id!r} rejected, keeping the last good plans: {exc}')
            return False
        return True

    def _plan(self, task: TaskSpec) -> None:
        """Plan ``task`` on the current system; publish the Pareto set or say why not."""
        try:
            if self.ts is None:
                self._fail('no transition system (model_file failed to load)')
                return
            optimism = task.optimism or self.param('optimism')
            result = plan_with_threshold(
                self.ts, task.formula, self._success_beliefs(),
                task.satisfaction_threshold, optimism=optimism,
                objectives=list(task.objectives) or None,
                max_labels=self.param('max_labels'))
        except TaskError as exc:
            why = self._explained(task, exc)
            if self.last_good is None or self.last_good.task_id != task.id:
                self._fail(f'task {task.id!r} rejected, keeping the last good plans: {why}')
                return
            # a task planned before that this world no longer grounds (an object it names is
            # gone, or a place every way to which is blocked): say so, so that whoever waits
            # for its plans stops waiting
            self._fail(f'task {task.id!r} cannot be planned any more: {why}')
            msg = ParetoPlanArray(task_id=task.id, formula=task.formula,
                                  satisfiable=False, reason=why)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.pub_plans.publish(msg)
            return
        except (LTLSyntaxError, ModelError, ValueError, RuntimeError) as exc:
            self._fail(f'task {task.id!r} rejected, keeping the last good plans: {exc}')
            return
        msg = result_to_msg(result, task.id)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_plans.publish(msg)
        self.pub_markers.publish(front_markers(msg, self.param('marker_frame'), 'pareto_front',
                                               scale=self.param('marker_scale')))
        self.last_good = msg
        excluded = result.stats.get('excluded', 0)
        state = (f'{len(msg.plans)} Pareto plans for {result.formula!r} in '
                 f"{result.stats.get('time_s', 0.0) * 1000:.1f} ms"
                 + (f' ({excluded} below the satisfaction threshold)' if excluded else '')
                 if result.satisfiable else f'unsatisfiable: {result.reason}')
        self.status = (state, DiagnosticStatus.OK if result.satisfiable else DiagnosticStatus.WARN)
        self.get_logger().info(state)

    def _replay(self, ts):
        """Apply the realised costs seen so far to a freshly built system's beliefs."""
        return self.memory.apply(ts)

    def _load_state(self) -> None:
        state, why = self.state_file.load()
        if why:
            self._fail(f'{why}; starting without learned costs')
        if state is None:
            return
        try:
            memory = CostMemory.from_dict(state.get('costs'), str(self.state_file.path))
            outcomes = {str(k): [int(v[0]), int(v[1])]
                        for k, v in dict(state.get('outcomes', {})).items()}
        except (ValueError, TypeError, IndexError) as exc:
            self._fail(f'checkpoint {self.state_file.path} ignored: {exc}')
            return
        self.memory, self.step_outcomes = memory, outcomes
        self.get_logger().info(f'resumed {len(memory)} realised costs and '
                               f'{len(outcomes)} step records from {self.state_file.path}')

    def _save_state(self) -> None:
        why = self.state_file.save({'costs': self.memory.to_dict(),
                                    'outcomes': self.step_outcomes})
        if why:
            self._fail(why, DiagnosticStatus.WARN)

    def _success_beliefs(self) -> SuccessBeliefs:
        prior = SuccessBeliefs.prior(self.ts.n_transitions, self.param('success_prior_mean'),
                                     self.param('success_prior_strength'))
        success, failure = prior.success, prior.failure
        for k in range(self.ts.n_transitions):
            key = transition_key(self.ts, k)
            if key in self.step_outcomes:
                success[k] += self.step_outcomes[key][0]
                failure[k] += self.step_outcomes[key][1]
        return SuccessBeliefs(success=success, failure=failure)

    def _fail(self, reason: str, level=DiagnosticStatus.ERROR) -> None:
        # the same error again (a rejected task re-checked on every map or objects update) is
        # logged once; diagnostics keep carrying it. _fail can run before status is set.
        repeated = getattr(self, 'status', None) == (reason, level)
        self.status = (reason, level)
        if level == DiagnosticStatus.ERROR and not repeated:
            self.get_logger().error(reason)

    def _publish_diagnostics(self) -> None:
        message, level = self.status
        values = [KeyValue(key='plans', value=str(len(self.last_good.plans)
                                                  if self.last_good else 0)),
                  KeyValue(key='task', value=self.task.formula if self.task else '')]
        msg = DiagnosticArray(status=[DiagnosticStatus(level=level, name='task_planner',
                                                       message=message[:500], values=values)])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


NODE_CLASS = TaskPlanner
main = node_main(TaskPlanner)

if __name__ == '__main__':
    sys.exit(main())
