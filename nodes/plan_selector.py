"""plan_selector: picks the Pareto plan that best fits the user's preference, by active inference.

Subscribes: pareto_plans (ParetoPlanArray), preference (embodied_aif_msgs/Preference),
plan_outcome (PlanOutcome, logged as the learning curve). Publishes: selected_plan (ParetoPlan,
latched), ~/markers (the front with the chosen plan highlighted), /diagnostics (every plan's
EFE = risk - epistemic_weight * info_gain). `method` may be aif (expected free energy), uniform,
topsis or weights; `epistemic_weight` can be changed at run time and overrides the preference's
when >= 0. A malformed preference is rejected with a reason and the current choice stays.
"""
from __future__ import annotations

import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from visualization_msgs.msg import MarkerArray

from embodied_aif.models.selector import (
    METHODS,
    SelectionError,
    candidates_from_dicts,
    preference_from_dict,
    select,
)
from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, Param, ParamNode, node_main
from embodied_aif.nodes._task_msgs import front_markers, plans_to_dict, preference_to_dict
from embodied_aif_msgs.msg import ParetoPlan, ParetoPlanArray, PlanOutcome, Preference


class PlanSelector(ParamNode):
    """Selects one plan of the latest Pareto set for the latest preference."""

    PARAMETERS = (
        Param('method', 'aif', 'selection rule', choices=METHODS),
        Param('epistemic_weight', -1.0, 'weight of information gain (< 0: the preference\'s)',
              low=-1.0, high=1000.0),
        Param('samples', 128, 'Monte Carlo samples of the information gain', low=2, high=100000),
        Param('seed', 0, 'seed of the Monte Carlo sampling', low=0, high=2**31 - 1),
        Param('marker_frame', 'pareto_front', 'frame of the front markers', read_only=True),
        Param('marker_scale', 0.05, 'metres per unit of cost in the markers', low=1e-6,
              high=100.0),
    )

    def __init__(self, **kwargs):
        super().__init__('plan_selector', **kwargs)
        self.plans: ParetoPlanArray | None = None
        self.preference: Preference | None = None
        self.rng = np.random.default_rng(self.param('seed'))
        self.status = ('waiting for plans and a preference', DiagnosticStatus.OK)
        self.terms = {}
        self.outcomes = []
        self.pub_selected = self.create_publisher(ParetoPlan, 'selected_plan', LATCHED_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, '~/markers', LATCHED_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(ParetoPlanArray, 'pareto_plans', self._on_plans, LATCHED_QOS)
        self.create_subscription(Preference, 'preference', self._on_preference, LATCHED_QOS)
        self.create_subscription(PlanOutcome, 'plan_outcome', self._on_outcome, COMMAND_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.add_post_set_parameters_callback(lambda params: self._select())

    def _on_plans(self, msg: ParetoPlanArray) -> None:
        self.plans = msg
        self._select()

    def _on_preference(self, msg: Preference) -> None:
        previous, self.preference = self.preference, msg
        if not self._select() and previous is not None:
            self.preference = previous  # keep the last good preference

    def _on_outcome(self, msg: PlanOutcome) -> None:
        self.outcomes.append((msg.plan_id, msg.step_index, list(msg.realised_cost),
                              msg.success))

    def _select(self) -> bool:
        """Select for the current plans and preference; publish; False if rejected."""
        if self.plans is None or self.preference is None:
            return True
        if not self.plans.plans:
            self.status = (f'no plan to select: {self.plans.reason}', DiagnosticStatus.WARN)
            return True
        empty = next((p for p in self.plans.plans if not p.steps), None)
        if empty is not None:  # the task already holds: nothing to choose
            self.pub_selected.publish(empty)
            self.status = ('the task already holds in the current state', DiagnosticStatus.OK)
            return True
        try:
            objectives, candidates = candidates_from_dicts(plans_to_dict(self.plans),
                                                           'pareto_plans')
        except SelectionError as exc:
            self.status = (f'plans rejected, current plan kept: {exc}', DiagnosticStatus.ERROR)
            self.get_logger().error(self.status[0], throttle_duration_sec=1.0)
            return True
        try:
            data = preference_to_dict(self.preference)
            if self.param('epistemic_weight') >= 0:
                data['epistemic_weight'] = self.param('epistemic_weight')
            preference = preference_from_dict(data, 'preference', objectives)
        except (SelectionError, ValueError) as exc:
            self.status = (f'preference rejected, current plan kept: {exc}',
                           DiagnosticStatus.ERROR)
            self.get_logger().error(self.status[0], throttle_duration_sec=1.0)
            return False
        choice = select(candidates, preference, self.param('method'), self.rng,
                        n_samples=self.param('samples'))
        chosen = self.plans.plans[choice.index]
        self.pub_selected.publish(chosen)
        self.pub_markers.publish(front_markers(self.plans, self.param('marker_frame'),
                                               'selected', chosen=choice.index,
                                               scale=self.param('marker_scale')))
        self.terms = choice.to_dict()
        self.status = (f'{choice.method}: plan {chosen.id} of {len(self.plans.plans)}',
                       DiagnosticStatus.OK)
        self.get_logger().info(self.status[0])
        return True

    def _publish_diagnostics(self) -> None:
        message, level = self.status
        values = [KeyValue(key=f"plan_{t['index']}",
                           value=f"efe={t['efe']:.4f} risk={t['risk']:.4f} "
                                 f"info_gain={t['info_gain']:.4f}")
                  for t in self.terms.get('terms', [])]
        values.append(KeyValue(key='outcomes', value=str(len(self.outcomes))))
        msg = DiagnosticArray(status=[DiagnosticStatus(level=level, name='plan_selector',
                                                       message=message[:500], values=values)])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


NODE_CLASS = PlanSelector
main = node_main(PlanSelector)

if __name__ == '__main__':
    sys.exit(main())
