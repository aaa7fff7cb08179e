"""The demo's operator: a client node that watches the stack, sends goals, measures costs."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from embodied_aif_msgs.action import Execute, Navigate
from embodied_aif_msgs.msg import (
    CognitiveMap,
    ObjectBeliefArray,
    ParetoPlan,
    ParetoPlanArray,
    PlanOutcome,
    Preference,
    TaskSpec,
)
from embodied_aif_msgs.srv import PlanApproach


class Operator:
    """The demo's client side: watches the stack, sends goals, measures outcomes."""

    def __init__(self, context):
        self.node = rclpy.create_node('demo_operator', context=context)
        self.lock = threading.Lock()
        self.clock = 0.0
        self.map = None
        self.plans = None
        self.selected = None
        self.objects = self.surfaces = self.truth_objects = None
        self.held = ''  # what the manipulator holds (held_object), '' for nothing
        self.truth_path = []
        self.rooms = set()
        self.room_log = []
        self.param_clients = {}
        self.truth_pose = self.odom_pose = None
        self.odom_xy = None
        self.distance = 0.0
        self.proximity = 0.0
        n = self.node
        n.create_subscription(Clock, '/clock', self._on_clock, 10)
        n.create_subscription(CognitiveMap, 'cognitive_map', self._set('map'), LATCHED_QOS)
        n.create_subscription(ParetoPlanArray, 'pareto_plans', self._set('plans'), LATCHED_QOS)
        n.create_subscription(ParetoPlan, 'selected_plan', self._set('selected'), LATCHED_QOS)
        n.create_subscription(ObjectBeliefArray, 'objects', self._set('objects'), 10)
        n.create_subscription(ObjectBeliefArray, 'surfaces', self._set('surfaces'), LATCHED_QOS)
        n.create_subscription(String, 'held_object', self._on_held, LATCHED_QOS)
        n.create_subscription(ObjectBeliefArray, 'ground_truth/objects',
                              self._set('truth_objects'), 10)
        n.create_subscription(PoseStamped, 'ground_truth/robot_pose', self._on_truth, 10)
        n.create_subscription(String, 'ground_truth/room', self._on_room, LATCHED_QOS)
        n.create_subscription(Odometry, 'odom', self._on_odom, 10)
        n.create_subscription(LaserScan, 'scan', self._on_scan, SENSOR_QOS)
        self.pub_task = n.create_publisher(TaskSpec, 'task', LATCHED_QOS)
        self.pub_pref = n.create_publisher(Preference, 'preference', LATCHED_QOS)
        self.outcomes = []
        n.create_subscription(PlanOutcome, 'plan_outcome', self._on_outcome, COMMAND_QOS)
        self.selector_terms: dict[int, dict[str, float]] = {}
        self.selector_message = ''
        self.planner_message = ''  # the task planner's last diagnostics message (why no plans)
        n.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.navigate = ActionClient(n, Navigate, 'navigate')
        self.executive = ActionClient(n, Execute, 'execute')
        self.approach = n.create_client(PlanApproach, 'plan_approach')

    # ------------------------------------------------------------ inputs
    def _set(self, name):
        def callback(msg):
            with self.lock:
                setattr(self, name, msg)
        return callback

    def _on_held(self, msg) -> None:
        self.held = msg.data.strip()

    def _on_outcome(self, msg) -> None:
        with self.lock:
            self.outcomes.append(msg)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == 'plan_selector':
                terms = selector_terms(status.values)
                with self.lock:
                    self.selector_terms, self.selector_message = terms, status.message
            elif status.name == 'task_planner':
                with self.lock:
                    self.planner_message = status.message

    def _on_clock(self, msg) -> None:
        self.clock = msg.clock.sec + msg.clock.nanosec * 1e-9

    def _on_truth(self, msg) -> None:
        with self.lock:
            self.truth_path.append((self.clock, msg.pose.position.x, msg.pose.position.y))
            self.truth_pose = (msg.header.stamp, _planar(msg.pose))

    def _on_room(self, msg) -> None:
        if msg.data:
            self.rooms.add(msg.data)
            with self.lock:
                self.room_log.append((self.clock, msg.data))

    def rooms_between(self, t0: float, t1: float) -> set[str]:
        """Rooms (ground truth) the robot was in between two clock times."""
        with self.lock:
            log = list(self.room_log)
        before = [room for t, room in log if t <= t0]
        return set(before[-1:]) | {room for t, room in log if t0 < t <= t1}

    def world_from_odom(self) -> tuple[float, float, float] | None:
        """Pose (x, y, yaw) of the odom frame in the world (None until both are seen).

        From the latest ground-truth pose and odometry: exact while the robot stands (as at
        the start), a few centimetres off while it drives.
        """
        with self.lock:
            truth, odom = self.truth_pose, self.odom_pose
        if truth is None or odom is None:
            return None
        (xw, yw, aw), (xo, yo, ao) = truth[1], odom[1]
        yaw = aw - ao
        cos, sin = math.cos(yaw), math.sin(yaw)
        return xw - (cos * xo - sin * yo), yw - (sin * xo + cos * yo), yaw

    def _on_odom(self, msg) -> None:
        with self.lock:
            self.odom_pose = (msg.header.stamp, _planar(msg.pose.pose))
        xy = np.array([msg.pose.pose.position.x, msg.pose.pose.position.y])
        if self.odom_xy is not None:
            self.distance += float(np.linalg.norm(xy - self.odom_xy))
        self.odom_xy = xy

    def _on_scan(self, msg) -> None:
        ranges = np.asarray(msg.ranges, dtype=float)
        ranges = ranges[np.isfinite(ranges)]
        if ranges.size:
            # risk accrues while closer than 0.5 m to an obstacle (per scan, 0..1)
            self.proximity += max(0.0, 0.5 - float(ranges.min())) / 0.5 * msg.scan_time

    # ------------------------------------------------------------ helpers
    def wait_sim(self, predicate, sim_seconds: float, wall_limit: float = 600.0) -> bool:
        """Wait until predicate() or sim_seconds of simulated time pass (wall-clock bounded)."""
        start, wall = self.clock, time.monotonic()
        while not predicate():
            if self.clock - start > sim_seconds or time.monotonic() - wall > wall_limit:
                return predicate()
            time.sleep(0.05)
        return True

    def wait_reply(self, future, wall_seconds: float = 60.0) -> bool:
        """Wait for a service or action reply on the wall clock.

        A reply's delay is the other process's load, not simulated time (a headless
        simulation runs faster than real time).
        """
        return self.wait_sim(future.done, float('inf'), wall_limit=wall_seconds)

    def set_parameter(self, node_name: str, name: str, value) -> str:
        """Set a parameter of a node of the stack; return '' or why it failed."""
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        if node_name not in self.param_clients:
            self.param_clients[node_name] = AsyncParameterClient(self.node, node_name)
        client = self.param_clients[node_name]
        if not client.wait_for_services(timeout_sec=30.0):
            return f'{node_name} offers no parameter services'
        for _attempt in range(3):  # setting is idempotent: ask again if a reply got lost
            future = client.set_parameters([Parameter(name, value=value)])
            if self.wait_reply(future, 20.0):
                break
        else:
            return f'{node_name} did not answer (3 tries, 20 s each)'
        result = future.result().results[0]
        return '' if result.successful else result.reason

    def navigate_to_place(self, place_id: int, sim_timeout: float):
        """Send a Navigate goal to a place; return (success, reason, cost vector)."""
        goal = Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE, place_id=int(place_id))
        t0, d0, r0 = self.clock, self.distance, self.proximity
        future = self.navigate.send_goal_async(goal)
        if not self.wait_reply(future) or not future.result().accepted:
            return False, 'goal not accepted', None
        result_future = future.result().get_result_async()
        if not self.wait_sim(result_future.done, sim_timeout):
            future.result().cancel_goal_async()
            return False, f'timed out after {sim_timeout:.0f} s sim', None
        result = result_future.result().result
        cost = [self.clock - t0, self.distance - d0, self.proximity - r0]
        return result.success, result.reason, cost


    def approach_reason(self, object_id: str) -> str:
        """'' when the manipulator finds a stand-point to pick the object from, else why not."""
        if not self.approach.wait_for_service(timeout_sec=30.0):
            return 'no plan_approach service'
        future = self.approach.call_async(PlanApproach.Request(object_id=object_id))
        if not self.wait_reply(future, 60.0):
            return 'plan_approach did not answer'
        reply = future.result()
        return '' if reply.success else reply.reason

    def execute(self, plan_id: str, sim_timeout: float, max_replans: int = 2):
        """Run a plan through the executive; return (Execute result, step records)."""
        with self.lock:
            first = len(self.outcomes)
        if not self.executive.wait_for_server(timeout_sec=30.0):
            return Execute.Result(reason='no executive (execute action server)'), []
        future = self.executive.send_goal_async(Execute.Goal(plan_id=plan_id,
                                                             max_replans=max_replans))
        if not self.wait_reply(future) or not future.result().accepted:
            return Execute.Result(reason='the executive did not accept the goal'), []
        result_future = future.result().get_result_async()
        if not self.wait_sim(result_future.done, sim_timeout):
            future.result().cancel_goal_async()
            self.wait_reply(result_future, 30.0)
        result = (result_future.result().result if result_future.done()
                  else Execute.Result(reason=f'timed out after {sim_timeout:.0f} s sim'))
        # the steps' PlanOutcomes come on a topic, the result on the action: wait for the
        # executive's closing outcome (step -1, published after the steps' and before the
        # result) so that none is still on its way
        self.wait_sim(lambda: any(m.step_index < 0 for m in self.outcomes[first:]), 5.0,
                      wall_limit=10.0)
        with self.lock:
            steps = [{'plan': m.plan_id, 'step': int(m.step_index), 'action': m.step.action,
                      'target': m.step.target, 'success': bool(m.success), 'reason': m.reason,
                      'cost': [round(float(c), 3) for c in m.realised_cost]}
                     for m in self.outcomes[first:] if m.step_index >= 0]
        return result, steps


def selector_terms(values) -> dict[int, dict[str, float]]:
    """The plan selector's EFE terms per plan index from its diagnostics key/values.

    Keys ``plan_<index>``, values ``efe=<x> risk=<x> info_gain=<x>``; anything else (or a
    malformed entry) is left out.
    """
    out = {}
    for kv in values:
        if not kv.key.startswith('plan_') or not kv.key[5:].isdigit():
            continue
        try:
            terms = {k: float(v) for k, _, v in (part.partition('=')
                                                 for part in kv.value.split())}
        except ValueError:
            continue
        if {'efe', 'risk', 'info_gain'} <= set(terms) and \
                all(math.isfinite(v) for v in terms.values()):
            out[int(kv.key[5:])] = terms
    return out


def _planar(pose) -> tuple[float, float, float]:
    q = pose.orientation
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    return pose.position.x, pose.position.y, yaw


def preference_msg(data: dict) -> Preference:
    """Preference message of the PREFERENCE.json form."""
    return Preference(objectives=data['objectives'], mean=[float(v) for v in data['mean']],
                      covariance=[float(v) for row in data['covariance'] for v in row],
                      epistemic_weight=float(data.get('epistemic_weight', 1.0)))
