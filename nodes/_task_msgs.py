"""Conversions between the task-layer models and embodied_aif_msgs (no maths, only copying)."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from embodied_aif.models.pareto import Plan, PlanResult
from embodied_aif_msgs.msg import ParetoPlan, ParetoPlanArray, PlanStep, Preference


def _flat(matrix) -> list[float]:
    return [float(v) for v in np.asarray(matrix, dtype=float).ravel()]


def plan_to_msg(plan: Plan, plan_id: str) -> ParetoPlan:
    """ParetoPlan message of a model plan: steps with their cost beliefs, total N(mean, cov)."""
    msg = ParetoPlan(id=plan_id, expected_cost=_flat(plan.expected_cost),
                     cost_covariance=_flat(plan.cost_cov),
                     initial_labels=sorted(plan.labels[0]) if plan.labels else [])
    for k in range(len(plan.transitions)):
        msg.steps.append(PlanStep(
            action=plan.actions[k], target=plan.targets[k],
            from_state=plan.states[k], to_state=plan.states[k + 1],
            expected_cost=_flat(plan.step_costs[k]),
            cost_covariance=_flat(plan.step_covs[k]), count=float(plan.step_counts[k]),
            labels=sorted(plan.labels[k + 1]) if plan.labels else []))
    return msg


def result_to_msg(result: PlanResult, task_id: str) -> ParetoPlanArray:
    """ParetoPlanArray of a planning result (header left for the caller to stamp)."""
    msg = ParetoPlanArray(task_id=task_id, formula=result.formula,
                          objectives=list(result.objectives), satisfiable=result.satisfiable,
                          reason=result.reason)
    msg.plans = [plan_to_msg(plan, f'{task_id}/{i}') for i, plan in enumerate(result.plans)]
    return msg


def plans_to_dict(msg: ParetoPlanArray) -> dict:
    """The PLANS.json form of a ParetoPlanArray (what models.selector reads)."""
    d = len(msg.objectives)

    def square(values):
        return np.asarray(values, dtype=float).reshape(d, d).tolist()

    plans = []
    for plan in msg.plans:
        steps = [{'cost': list(step.expected_cost), 'cost_cov': square(step.cost_covariance),
                  'count': step.count, 'transition': (step.from_state, step.action,
                                                      step.to_state)}
                 for step in plan.steps]
        entry = {'id': plan.id, 'expected_cost': list(plan.expected_cost),
                 'cost_cov': square(plan.cost_covariance)}
        if steps:
            entry['steps'] = steps
        plans.append(entry)
    return {'objectives': list(msg.objectives), 'plans': plans, 'reason': msg.reason}


def preference_to_dict(msg: Preference) -> dict:
    """The PREFERENCE.json form of a Preference message."""
    d = len(msg.mean)
    if len(msg.covariance) != d * d:
        raise ValueError(f'preference covariance has {len(msg.covariance)} entries, '
                         f'expected {d}x{d} = {d * d} for {d} means')
    return {'objectives': list(msg.objectives), 'mean': list(msg.mean),
            'covariance': np.asarray(msg.covariance, dtype=float).reshape(d, d).tolist(),
            'epistemic_weight': msg.epistemic_weight}


def front_markers(msg: ParetoPlanArray, frame: str, namespace: str, chosen: int = -1,
                  scale: float = 1.0) -> MarkerArray:
    """Spheres at the plans' expected costs (first three objectives), chosen one highlighted."""
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL, ns=namespace)
    clear.header = msg.header
    out.markers.append(clear)
    for i, plan in enumerate(msg.plans):
        cost = list(plan.expected_cost) + [0.0] * (3 - len(plan.expected_cost))
        marker = Marker(ns=namespace, id=i, type=Marker.SPHERE, action=Marker.ADD)
        marker.header = msg.header
        marker.header.frame_id = frame
        marker.pose.position = Point(x=cost[0] * scale, y=cost[1] * scale, z=cost[2] * scale)
        marker.pose.orientation.w = 1.0
        size = 0.3 if i == chosen else 0.15
        marker.scale.x = marker.scale.y = marker.scale.z = size
        marker.color = (ColorRGBA(r=1.0, g=0.6, b=0.0, a=1.0) if i == chosen
                        else ColorRGBA(r=0.2, g=0.5, b=1.0, a=0.8))
        out.markers.append(marker)
    return out
