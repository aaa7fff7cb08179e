"""The demo's operator: a client node that watches the stack, sends goals, measures costs."""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from embodied_aif_msgs.action import Navigate
from embodied_aif_msgs.msg import (
    CognitiveMap,
    ParetoPlan,
    ParetoPlanArray,
    PlanOutcome,
    Preference,
    TaskSpec,
)


class Operator:
    """The demo's client side: watches the stack, sends goals, measures outcomes."""

    def __init__(self, context):
        self.node = rclpy.create_node('demo_operator', context=context)
        self.lock = threading.Lock()
        self.clock = 0.0
        self.map = None
        self.plans = None
        self.selected = None
        self.truth_path = []
        self.rooms = set()
        self.odom_xy = None
        self.distance = 0.0
        self.proximity = 0.0
        n = self.node
        n.create_subscription(Clock, '/clock', self._on_clock, 10)
        n.create_subscription(CognitiveMap, 'cognitive_map', self._set('map'), LATCHED_QOS)
        n.create_subscription(ParetoPlanArray, 'pareto_plans', self._set('plans'), LATCHED_QOS)
        n.create_subscription(ParetoPlan, 'selected_plan', self._set('selected'), LATCHED_QOS)
        n.create_subscription(PoseStamped, 'ground_truth/robot_pose', self._on_truth, 10)
        n.create_subscription(String, 'ground_truth/room', self._on_room, LATCHED_QOS)
        n.create_subscription(Odometry, 'odom', self._on_odom, 10)
        n.create_subscription(LaserScan, 'scan', self._on_scan, SENSOR_QOS)
        self.pub_task = n.create_publisher(TaskSpec, 'task', LATCHED_QOS)
        self.pub_pref = n.create_publisher(Preference, 'preference', LATCHED_QOS)
        self.pub_outcome = n.create_publisher(PlanOutcome, 'plan_outcome', COMMAND_QOS)
        self.navigate = ActionClient(n, Navigate, 'navigate')

    # ------------------------------------------------------------ inputs
    def _set(self, name):
        def callback(msg):
            with self.lock:
                setattr(self, name, msg)
        return callback

    def _on_clock(self, msg) -> None:
        self.clock = msg.clock.sec + msg.clock.nanosec * 1e-9

    def _on_truth(self, msg) -> None:
        with self.lock:
            self.truth_path.append((self.clock, msg.pose.position.x, msg.pose.position.y))

    def _on_room(self, msg) -> None:
        if msg.data:
            self.rooms.add(msg.data)

    def _on_odom(self, msg) -> None:
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

    def navigate_to_place(self, place_id: int, sim_timeout: float):
        """Send a Navigate goal to a place; return (success, reason, cost vector)."""
        goal = Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE, place_id=int(place_id))
        t0, d0, r0 = self.clock, self.distance, self.proximity
        future = self.navigate.send_goal_async(goal)
        if not self.wait_sim(future.done, 10.0) or not future.result().accepted:
            return False, 'goal not accepted', None
        result_future = future.result().get_result_async()
        if not self.wait_sim(result_future.done, sim_timeout):
            future.result().cancel_goal_async()
            return False, f'timed out after {sim_timeout:.0f} s sim', None
        result = result_future.result().result
        cost = [self.clock - t0, self.distance - d0, self.proximity - r0]
        return result.success, result.reason, cost


def preference_msg(data: dict) -> Preference:
    """Preference message of the PREFERENCE.json form."""
    return Preference(objectives=data['objectives'], mean=[float(v) for v in data['mean']],
                      covariance=[float(v) for row in data['covariance'] for v in row],
                      epistemic_weight=float(data.get('epistemic_weight', 1.0)))
