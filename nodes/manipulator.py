"""manipulator: Pick and Place action servers for the arm and the gripper.

Action servers (relative names, in the node's namespace):
  pick  (embodied_aif_msgs/Pick):  grasp an object known to perception and lift it
  place (embodied_aif_msgs/Place): put the held object down at a target pose on a surface
Service:
  plan_approach (embodied_aif_msgs/PlanApproach): where the base should stand, facing the
  object, for a pick to be possible from there (the arm's reachability, the object's belief,
  and room for the base on the occupancy grid); the caller drives there, then picks.
Subscribes: objects (embodied_aif_msgs/ObjectBeliefArray: the perception node's beliefs),
joint_states (sensor_msgs/JointState), /tf and /tf_static (the beliefs' frame into
``base_frame``, and the arm's mount ``base_frame`` -> ``arm_base_frame``), ``occupancy_topic``
(nav_msgs/OccupancyGrid: the cognitive map's grid, for plan_approach only).
joint_states and /tf are taken on threads of their own (``InputThread``), however busy the
process's executor.
Publishes: arm_controller/joint_trajectory (trajectory_msgs/JointTrajectory, positions and
velocities, time-parameterised), gripper/command (std_msgs/Float64: opening width, m),
held_object (std_msgs/String, latched: the held object's id, '' for none), /diagnostics.

A goal is planned by :mod:`embodied_aif.models.manipulation` (top-down or side grasp poses
from the object belief, IK, straight approach and lift, collision checks against the table
under the object, the robot's base and mast and the other objects), then carried out one
motion at a time, each followed on joint_states until it is reached (or timed out). The grasp
is verified from signals a real robot has: the gripper's width after closing and after the
lift (closed fully = nothing held), and, when perception updates the object's belief after the
lift, that the object rose with the hand. One goal runs at a time.

Results: ``success`` and a ``reason`` that starts with one of :data:`REASONS` followed by
': ' and the details, e.g. ``unknown_object: no belief with id 'cup_9' (known: ...)``.
Feedback: the phase (Pick: approach, grasp, lift, verify; Place: approach, release, retreat,
verify) and the progress in [0, 1].
"""
from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from embodied_aif.models import manipulation as mp
from embodied_aif.models.surfaces import rectangle_spots
from embodied_aif.models.task_world import Seen
from embodied_aif.models.transforms import boxes_from_values, matrix, quaternion_yaw, yaw_quaternion
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    InputThread,
    Param,
    ParamNode,
    names_object,
    node_main,
    occupancy_view,
)
from embodied_aif.nodes._tf import TfBuffer, TfListener, TransformError, to_ns
from embodied_aif_msgs.action import Pick, Place
from embodied_aif_msgs.msg import ObjectBeliefArray
from embodied_aif_msgs.srv import PlanApproach

HERE = 0.05  # m: an excluded point this near the base means "not from where it stands"
REASONS = ('unknown_object', 'unreachable', 'collision', 'grasp_failed', 'grasp_lost',
           'nothing_held', 'timeout', 'no_input', 'busy', 'bad_goal', 'canceled', 'error')
DEFAULT_BOXES = [-0.28, -0.21, 0.0, 0.28, 0.21, 0.30,    # the base (the arm's link1 ignores it)
                 -0.25, -0.03, 0.30, -0.19, 0.03, 1.27]  # the mast of the head camera
NS = 1_000_000_000
LIST_PARAMETERS = ('base_boxes', 'carry_position', 'approach_standoffs')


class GoalError(Exception):
    """A goal ends unsuccessfully: ``code`` is one of REASONS."""

    def __init__(self, code: str, message: str):
        super().__init__(f'{code}: {message}')
        self.code = code


def boxes_from_list(values) -> list[mp.Box]:
    """Boxes from a flat list [xmin, ymin, zmin, xmax, ymax, zmax, ...] (base frame)."""
    return [mp.Box(b[:3], b[3:], f'robot base box {k}', ignore_frames=(1,))
            for k, b in enumerate(boxes_from_values(values))]


def _belief_pose(belief, t_base_frame: np.ndarray) -> np.ndarray:
    """The 4x4 pose of an ObjectBelief in the base frame (``t_base_frame``: 4x4)."""
    pose = belief.pose.pose
    quat = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    if not np.all(np.isfinite(quat)) or np.linalg.norm(quat) < 1e-9:
        quat = [0.0, 0.0, 0.0, 1.0]  # no orientation: the box is axis-aligned in its frame
    return t_base_frame @ matrix([pose.position.x, pose.position.y, pose.position.z], quat)


def belief_box(belief, t_base_frame: np.ndarray, default_extent: float) -> mp.ObjectBox:
    """An ObjectBelief as an ObjectBox in the base frame (``t_base_frame``: 4x4)."""
    t_obj = _belief_pose(belief, t_base_frame)
    ext = np.array([belief.extent.x, belief.extent.y, belief.extent.z], dtype=float)
    if not np.all(np.isfinite(ext)) or np.any(ext <= 0):
        ext = np.full(3, default_extent)
    return mp.ObjectBox(t_obj[:3, 3], ext, mp.yaw_of(t_obj))


def surface_box(belief, t_base_frame: np.ndarray) -> mp.ObjectBox | None:
    """A support surface's belief (centre at its top, extent x, y) as a thin ObjectBox."""
    t_surface = _belief_pose(belief, t_base_frame)
    length, width = float(belief.extent.x), float(belief.extent.y)
    if not (math.isfinite(length) and math.isfinite(width) and length > 0 and width > 0 and
            np.all(np.isfinite(t_surface))):
        return None
    return mp.ObjectBox(t_surface[:3, 3], (length, width, 0.01), mp.yaw_of(t_surface))


def covered(surface, surfaces, above: float = 0.05) -> bool:
    """Whether another of ``surfaces`` lies over the centre of ``surface``, ``above`` m higher.

    Surface beliefs (ObjectBelief, one frame); a covered one is e.g. a shelf's lower board.
    """
    p = surface.pose.pose.position
    for other in surfaces:
        o, q = other.pose.pose.position, other.pose.pose.orientation
        if o.z > p.z + above and Seen(o.x, o.y, o.z, yaw=quaternion_yaw([q.x, q.y, q.z, q.w]),
                                      length=other.extent.x,
                                      width=other.extent.y).contains(p.x, p.y):
            return True
    return False


class Manipulator(ParamNode):
    """Pick and Place action servers driving the arm trajectory and gripper topics."""

    PARAMETERS = (
        Param('base_frame', 'base_link', 'robot base frame: planning frame', read_only=True),
        Param('arm_base_frame', 'panda_link0', 'frame of the arm mount (looked up in TF)',
              read_only=True),
        Param('trajectory_topic', 'arm_controller/joint_trajectory', 'arm trajectory command',
              read_only=True),
        Param('gripper_topic', 'gripper/command', 'gripper opening width command (m)',
              read_only=True),
        Param('velocity_scale', 0.5, 'fraction of the joint velocity limits used', low=0.05,
              high=1.0),
        Param('acceleration_scale', 0.5, 'fraction of the joint acceleration limits used',
              low=0.05, high=1.0),
        Param('trajectory_period', 0.05, 'time between trajectory points, s', low=0.005,
              high=0.5),
        Param('approach_distance', 0.10, 'pre-grasp / pre-place offset, m', low=0.02, high=0.3),
        Param('lift_height', 0.10, 'lift after grasping, m', low=0.02, high=0.3),
        Param('retreat_distance', 0.10, 'retreat after releasing, m', low=0.02, high=0.3),
        Param('finger_clearance', 0.006, 'free space each side of an object in the open '
              'gripper, m', low=0.0, high=0.03),
        Param('collision_margin', 0.005, 'clearance kept from obstacles, m', low=0.0, high=0.1),
        Param('ik_tolerance', 0.005, 'IK position tolerance (beyond: unreachable), m',
              low=0.0005, high=0.05),
        Param('gripper_open_width', 0.08, 'opening width of the open gripper, m', low=0.01,
              high=0.08),
        Param('hold_min_width', 0.004, 'a closed gripper narrower than this holds nothing, m',
              low=0.0, high=0.05),
        Param('gripper_timeout', 3.0, 'longest wait for the gripper to settle, s', low=0.2,
              high=30.0),
        Param('joint_tolerance', 0.03, 'a motion has arrived within this, rad', low=0.001,
              high=0.5),
        Param('motion_timeout_factor', 2.0, 'a motion times out after factor x its duration '
              '+ margin', low=1.0, high=10.0),
        Param('motion_timeout_margin', 5.0, 'see motion_timeout_factor, s', low=0.0,
              high=120.0),
        Param('input_timeout', 2.0, 'joint_states older than this stop a goal, s', low=0.1,
              high=60.0),
        Param('tf_timeout', 2.0, 'longest wait for a transform, s', low=0.0, high=30.0),
        Param('rest_window', 0.3, 'a goal is planned once the base has not moved in TF for '
              'this long (node clock), s', low=0.0, high=5.0),
        Param('rest_tolerance', 0.003, 'how little it may move in that window, m (and rad at '
              '1 m)', low=0.0, high=0.1),
        Param('default_extent', 0.06, 'object size assumed when a belief has none, m',
              low=0.01, high=0.5),
        Param('support_near_x', 0.30, "the table under an object is assumed to reach back to "
              "this x in the base frame (the base's front edge), m, unless perceived support "
              'surfaces under it end farther', low=-1.0, high=2.0),
        Param('base_boxes', list(DEFAULT_BOXES), "the robot's own body as boxes in the base "
              'frame: [xmin, ymin, zmin, xmax, ymax, zmax] per box'),
        Param('avoid_other_objects', True, 'keep clear of the other objects believed in'),
        Param('duplicate_radius', 0.03, 'another belief centred this near the object picked '
              'is a second track of it, not an obstacle, m', low=0.0, high=0.2),
        Param('carry_after_pick', True, 'move the held object to carry_position after a pick'),
        Param('stow_after_place', True, 'move the arm to carry_position after a place'),
        Param('carry_position', list(mp.CARRY), 'arm joints (7) of the carry / stow pose, rad'),
        Param('verify_timeout', 1.5, 'wait this long for perception to see the lifted or '
              'placed object, s (0 = gripper width only)', low=0.0, high=30.0),
        Param('verify_tolerance', 0.06, 'perception within this of the expected object '
              'position counts as confirmed, m', low=0.005, high=0.5),
        Param('seed', 0, 'seed of the IK restarts', low=0, high=2**31 - 1),
        Param('occupancy_topic', 'cognitive_map/occupancy', 'occupancy grid the base must fit '
              'on (plan_approach)', read_only=True),
        Param('stand_clearance', 0.34, 'every grid cell within this of a stand-point must be '
              "known and free: the navigator's dock_radius (the footprint it keeps clear when "
              'docking at a goal with a heading) and a little, m', low=0.05, high=2.0),
        Param('occupied_threshold', 50, 'grid values from this up are obstacles', low=1,
              high=100),
        Param('approach_headings', 16, 'directions around the object tried by plan_approach',
              low=1, high=72),
        Param('approach_slack', 0.05, 'a stand-point must also allow the pick from this far '
              'back or aside (the navigator stops within its tolerance), m', low=0.0, high=0.5),
        Param('surfaces_topic', 'surfaces', 'support surfaces (perception), where plan_approach '
              'finds spots to put the held object down', read_only=True),
        Param('guarded_stop', 0.2, 'a top-down hand stopped this near above its grasp pose '
              'grasps where it stopped (the object is taller than its belief), m', low=0.0,
              high=0.5),
        Param('guarded_release', 0.05, 'a hand lowering an object that stops this near above '
              'its release pose lets go where it stopped (the object met its support sooner '
              'than planned), m', low=0.0, high=0.2),
        Param('place_edge_margin', 0.1, 'place spots keep this far (plus half the held '
              "object's size) inside a surface's edge, m", low=0.0, high=1.0),
        Param('place_depth', 0.2, 'place spots this far inside the edge are tried first, '
              'then the deepest others (a perceived edge lies a few cm past the true one, and '
              'a release may end off its spot), m', low=0.0, high=1.0),
        Param('place_clearance', 0.03, 'and this far from other objects, m', low=0.0, high=1.0),
        Param('place_spacing', 0.05, 'grid of the place spots tried, m', low=0.01, high=0.5),
        Param('place_spots', 12, 'most place spots tried, nearest the requested point first '
              '(of those place_depth inside)',
              low=1, high=200),
        Param('approach_budget', 20.0, 'plan_approach stops trying stand-points after this '
              'long (wall clock, s) and answers with what it found', low=1.0, high=600.0),
        Param('approach_heading_slack', 0.1, 'and from this far turned either way (the '
              "navigator's heading_tolerance), rad", low=0.0, high=0.5),
        Param('approach_standoffs', [0.45, 0.55, 0.65, 0.72, 0.8], 'distances from the base origin '
              'to the object tried by plan_approach, m'),
    )

    def __init__(self, **kwargs):
        super().__init__('manipulator', **kwargs)
        self.closing = threading.Event()  # set by destroy_node: running goals end
        self._check_lists({name: self.param(name) for name in LIST_PARAMETERS},
                          raise_error=True)
        self.lock = threading.Lock()
        self.busy = threading.Lock()
        self.joint_event = threading.Event()
        self.joints: tuple | None = None     # (positions dict, velocities dict, ns)
        self.objects: ObjectBeliefArray | None = None
        self._held: dict | None = None       # id, candidate, box of the held object
        self.gripped: dict[str, float] = {}   # object id -> finger opening when last held
        self.phase = 'idle'
        self.last_result = ''
        self.counts = {'pick_succeeded': 0, 'pick_failed': 0, 'place_succeeded': 0,
                       'place_failed': 0, 'guarded_grasps': 0, 'guarded_releases': 0}
        self.rng = np.random.default_rng(self.param('seed'))

        inputs = MutuallyExclusiveCallbackGroup()
        self.tf = TfBuffer(cache_s=10.0, tolerance_s=0.5)
        self.tf_listener = TfListener(self, self.tf, callback_group=inputs)
        # joint states on a thread of their own, as /tf: in the composed demo the shared
        # executor had left them unserved for 2 s, and a pick stopped for want of input
        self.joint_input = InputThread(self, 'joint_states')
        self.joint_input.create_subscription(JointState, 'joint_states', self._on_joints, 10)
        self.create_subscription(ObjectBeliefArray, 'objects', self._on_objects, 10,
                                 callback_group=inputs)
        self.surfaces: ObjectBeliefArray | None = None
        self.create_subscription(ObjectBeliefArray, self.param('surfaces_topic'),
                                 self._on_surfaces, LATCHED_QOS, callback_group=inputs)
        self.grid: tuple | None = None  # (OccupancyView, its frame)
        self.create_subscription(OccupancyGrid, self.param('occupancy_topic'), self._on_grid,
                                 LATCHED_QOS, callback_group=inputs)
        self.pub_traj = self.create_publisher(JointTrajectory, self.param('trajectory_topic'),
                                              COMMAND_QOS)
        self.pub_gripper = self.create_publisher(Float64, self.param('gripper_topic'),
                                                 COMMAND_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.pub_held = self.create_publisher(String, 'held_object', LATCHED_QOS)
        self.held = None  # published: '' (nothing held)
        goals = ReentrantCallbackGroup()
        self.pick_server = ActionServer(
            self, Pick, 'pick', execute_callback=self._execute_pick,
            goal_callback=lambda _: GoalResponse.ACCEPT,
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=goals)
        self.place_server = ActionServer(
            self, Place, 'place', execute_callback=self._execute_place,
            goal_callback=lambda _: GoalResponse.ACCEPT,
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=goals)
        self.approach_service = self.create_service(
            PlanApproach, 'plan_approach', self._serve_approach,
            callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0, self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())

    # -------------------------------------------------------------- parameters
    @staticmethod
    def _check_lists(values: dict, raise_error: bool = False) -> list[str]:
        problems = []
        if 'base_boxes' in values:
            try:
                boxes_from_list(values['base_boxes'])
            except (TypeError, ValueError) as exc:
                problems.append(f'base_boxes: {exc}')
        if 'approach_standoffs' in values:
            r = values['approach_standoffs']
            if not r or not all(isinstance(v, (int, float)) and 0.0 < v < 3.0 for v in r):
                problems.append(f'approach_standoffs: expected distances in (0, 3) m, got {r!r}')
        if 'carry_position' in values:
            q = values['carry_position']
            if len(q) != 7 or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                      for v in q):
                problems.append(f'carry_position: expected 7 finite joint positions, got {q!r}')
        if problems and raise_error:
            raise ValueError('; '.join(problems))
        return problems

    def _check_parameter_change(self, params) -> SetParametersResult:
        result = super()._check_parameter_change(params)
        problems = self._check_lists({p.name: p.value for p in params
                                      if p.name in LIST_PARAMETERS})
        if problems:
            reason = '; '.join(filter(None, [result.reason, *problems]))
            return SetParametersResult(successful=False, reason=reason)
        return result

    # -------------------------------------------------------------- inputs (cheap)
    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_joints(self, msg: JointState) -> None:
        pos = dict(zip(msg.name, msg.position))
        vel = dict(zip(msg.name, msg.velocity)) if len(msg.velocity) == len(msg.name) else {}
        self.joints = (pos, vel, self._now())
        self.joint_event.set()

    def _on_objects(self, msg: ObjectBeliefArray) -> None:
        self.objects = msg

    def _on_surfaces(self, msg: ObjectBeliefArray) -> None:
        self.surfaces = msg

    def _on_grid(self, msg: OccupancyGrid) -> None:
        try:
            view = occupancy_view(msg)
        except ValueError as exc:
            self.get_logger().warning(f'occupancy grid ignored, the last good one kept: {exc}',
                                      throttle_duration_sec=10.0)
            return
        self.grid = (view, msg.header.frame_id.lstrip('/'))

    # -------------------------------------------------------------- helpers
    def _arm(self) -> mp.ArmModel:
        try:
            mount = self._lookup(self.param('base_frame'), self.param('arm_base_frame'))
        except GoalError as exc:
            raise GoalError('no_input', f'arm mount unknown: {exc}') from exc
        return mp.panda_arm(mount, self.param('velocity_scale'),
                            self.param('acceleration_scale'))

    def _lookup(self, target: str, source: str, stamp=None, tolerance_s=None) -> np.ndarray:
        """Transform (4x4) of ``source`` into ``target``, waiting up to tf_timeout for it.

        The latest one, or the one at ``stamp`` (``tolerance_s``: how stale it may be).
        """
        deadline = time.monotonic() + self.param('tf_timeout')
        while True:
            try:
                return self.tf.lookup(target, source, stamp, tolerance_s)
            except TransformError as exc:
                if time.monotonic() >= deadline or self.closing.is_set():
                    raise GoalError('no_input', f'tf: {exc}') from exc
            self.closing.wait(0.05)  # a pause that ends at shutdown

    def _lookup_at_rest(self, target: str, source: str) -> np.ndarray:
        """The transform once the base is at rest in it (a goal's planning frame).

        Not one from before the goal arrived (under load /tf lags by seconds) and not one
        while the base still turns after the navigator's stop: the latest transform must be
        stamped after now, and agree with the one ``rest_window`` before it within
        ``rest_tolerance`` (m; rad at 1 m). After ``tf_timeout`` the latest is used, with a
        warning.
        """
        start = self.get_clock().now().nanoseconds
        window = int(self.param('rest_window') * 1e9)
        deadline = time.monotonic() + self.param('tf_timeout')
        while True:
            try:
                t = self.tf.latest_ns(target, source)
                latest = self.tf.lookup(target, source, Time(nanoseconds=t))
                if t == 0:
                    return latest  # a fixed transform
                if t < start:
                    why = f'the latest transform is {(start - t) / 1e9:.2f} s old'
                else:
                    before = self.tf.lookup(target, source, Time(nanoseconds=t - window), 0.0)
                    moved = float(np.max(np.abs(latest[:3, :] - before[:3, :])))
                    if moved <= self.param('rest_tolerance'):
                        return latest
                    why = f'the base moved {moved:.3f} in {window / 1e9:.1f} s'
            except TransformError as exc:
                why = str(exc)
            if time.monotonic() >= deadline or self.closing.is_set():
                self.get_logger().warning(f'planning with the latest transform: {why}')
                return self._lookup(target, source)
            self.closing.wait(0.05)  # a pause that ends at shutdown

    def _wait_joints(self, handle) -> None:
        """Block until a joint_states message arrives (input_timeout); raise on cancel."""
        if self.closing.is_set():
            raise GoalError('error', 'the manipulator is shutting down')
        self.joint_event.clear()
        if not self.joint_event.wait(self.param('input_timeout')):
            raise GoalError('no_input', 'no joint_states for '
                          f"{self.param('input_timeout'):.1f} s")
        if handle is not None and handle.is_cancel_requested:
            raise GoalError('canceled', 'cancelled by the client')

    def _arm_state(self) -> tuple[np.ndarray, np.ndarray]:
        if self.joints is None:
            raise GoalError('no_input', 'no joint_states received yet')
        pos, vel, _ = self.joints
        try:
            q = np.array([pos[n] for n in mp.ARM_JOINTS])
        except KeyError as exc:
            raise GoalError('no_input', f'joint_states lack arm joint {exc}') from exc
        v = np.array([vel.get(n, 0.0) for n in mp.ARM_JOINTS])
        return q, v

    def _gripper_width(self) -> float:
        pos = self.joints[0] if self.joints else {}
        if not all(n in pos for n in mp.FINGER_JOINTS):
            raise GoalError('no_input', f'joint_states lack the finger joints {mp.FINGER_JOINTS}')
        return float(sum(pos[n] for n in mp.FINGER_JOINTS))

    def _feedback(self, handle, kind, phase: str, progress: float) -> None:
        self.phase = f'{kind.__name__.lower()}: {phase}'
        fb = kind.Feedback(phase=phase, progress=float(progress))
        handle.publish_feedback(fb)

    def _ik_config(self) -> mp.IkConfig:
        return mp.IkConfig(accept_position=self.param('ik_tolerance'))

    def _grasp_config(self) -> mp.GraspConfig:
        return mp.GraspConfig(approach_distance=self.param('approach_distance'),
                              lift_height=self.param('lift_height'),
                              retreat_distance=self.param('retreat_distance'),
                              finger_clearance=self.param('finger_clearance'))

    # -------------------------------------------------------------- motions
    def _move(self, handle, arm: mp.ArmModel, waypoints: np.ndarray, what: str) -> None:
        """Send a time-parameterised trajectory and follow joint_states until it arrives."""
        traj = mp.time_parameterise(waypoints, arm.max_velocity, arm.max_acceleration,
                                    self.param('trajectory_period'))
        if traj.duration <= 0.0:
            return
        msg = JointTrajectory(joint_names=list(mp.ARM_JOINTS))
        msg.header.frame_id = self.param('base_frame')
        for t, q, v in zip(traj.times[1:], traj.positions[1:], traj.velocities[1:]):
            sec = int(t)
            msg.points.append(JointTrajectoryPoint(
                positions=q.tolist(), velocities=v.tolist(),
                time_from_start=Duration(sec=sec, nanosec=int((t - sec) * NS))))
        start = self._now()
        self.pub_traj.publish(msg)
        goal = traj.positions[-1]
        limit = (self.param('motion_timeout_factor') * traj.duration
                 + self.param('motion_timeout_margin')) * NS
        while True:
            try:
                self._wait_joints(handle)
            except GoalError as exc:
                if exc.code == 'canceled':
                    self._hold()
                raise
            q, v = self._arm_state()
            error = float(np.max(np.abs(q - goal)))
            elapsed = self._now() - start
            if elapsed >= traj.duration * NS and error < self.param('joint_tolerance') \
                    and float(np.max(np.abs(v))) < 0.05:
                return
            if elapsed > limit:
                self._hold()
                raise GoalError('timeout', f'{what}: the arm is still {error:.3f} rad from its '
                              f'goal after {elapsed / NS:.1f} s (planned {traj.duration:.1f} s)')

    def _hold(self) -> None:
        """Stop the arm where it is (a one-point trajectory to the measured position)."""
        try:
            q, _ = self._arm_state()
        except GoalError:
            return
        msg = JointTrajectory(joint_names=list(mp.ARM_JOINTS))
        msg.points.append(JointTrajectoryPoint(positions=q.tolist(), velocities=[0.0] * 7,
                                               time_from_start=Duration(nanosec=100_000_000)))
        self.pub_traj.publish(msg)

    def _gripper(self, handle, width: float) -> float:
        """Command the gripper opening and wait until the fingers stop; return the width."""
        self.pub_gripper.publish(Float64(data=float(width)))
        start = self._now()
        still_since = None
        last = first = None
        while True:
            self._wait_joints(handle)
            now = self._now()
            current = self._gripper_width()
            first = current if first is None else first
            if abs(current - width) < 0.002 and now - start > 0.1 * NS:
                return current
            # still fingers mean an object between them only once they have moved: under load
            # the command can reach the driver after several joint_states (CI saw an empty
            # grasp taken for a held object that way, then 'lost' during the lift)
            if last is not None and abs(current - last) < 2e-4 and abs(current - first) > 0.002:
                still_since = still_since or now
                if now - still_since > 0.3 * NS and now - start > 0.3 * NS:
                    return current  # stopped against an object
            else:
                still_since = None
            last = current
            if now - start > self.param('gripper_timeout') * NS:
                return current

    # -------------------------------------------------------------- perception checks
    def _belief(self, object_id: str):
        msg = self.objects
        if msg is None:
            raise GoalError('unknown_object', f"no object beliefs received yet on 'objects', "
                          f'so {object_id!r} is unknown')
        for belief in msg.objects:
            if names_object(belief, object_id):
                frame = belief.header.frame_id or msg.header.frame_id
                return belief, frame, msg
        known = ', '.join(sorted(b.id for b in msg.objects)[:20]) or 'none'
        raise GoalError('unknown_object', f'no belief with id {object_id!r} (known: {known})')

    def _object_box(self, belief, t_base_frame: np.ndarray) -> mp.ObjectBox:
        """An object's belief as a box in the base frame, as wide as the fingers found it.

        An object this node has held (under the belief's id or one merged into it) is no
        wider between the fingers than they closed on it (``mp.ObjectBox.gripped``): the
        close view after a place can see it a few mm too wide to grasp again.
        """
        box = belief_box(belief, t_base_frame, self.param('default_extent'))
        widths = [self.gripped[k] for k in (belief.id, *belief.merged_ids) if k in self.gripped]
        return box.gripped(min(widths) if widths else None)

    def _obstacles(self, msg: ObjectBeliefArray | None, skip: str, arm: mp.ArmModel,
                   q) -> list[mp.Box]:
        """The robot's base boxes and the other objects, but those inside the robot itself."""
        body = boxes_from_list(self.param('base_boxes'))
        out = list(body)
        for name, obj in self._other_objects(msg, skip, self.param('base_frame')):
            box = obj.box(0.0, f'object {name}')
            if mp.overlaps_robot(arm, q, box, body):
                self.get_logger().warning(
                    f'not avoiding {name} at ({obj.center[0]:.2f}, {obj.center[1]:.2f}, '
                    f'{obj.center[2]:.2f}): it overlaps the robot itself (a view of the robot '
                    'or a belief out of date)', throttle_duration_sec=5.0)
                continue
            out.append(box)
        return out

    def _other_objects(self, msg: ObjectBeliefArray | None, skip: str,
                       frame: str) -> list[tuple[str, mp.ObjectBox]]:
        """Return (id, box in ``frame``) of every believed object but ``skip``.

        Empty when other objects are not avoided; beliefs TF cannot place are left out, and
        so are those centred within ``duplicate_radius`` of ``skip`` (a second track of it,
        e.g. its rim or handle: the fetch chooser takes them for the same object too).
        """
        if msg is None or not self.param('avoid_other_objects'):
            return []
        out, centre = [], None
        for belief in msg.objects:
            source = belief.header.frame_id or msg.header.frame_id
            try:
                box = belief_box(belief, self.tf.lookup(frame, source),
                                 self.param('default_extent'))
            except (TransformError, ValueError):
                continue
            if names_object(belief, skip):
                centre = box.center[:2]
            else:
                out.append((belief.id, box))
        if centre is None:
            return out
        radius = self.param('duplicate_radius')
        return [(k, b) for k, b in out if np.hypot(*(b.center[:2] - centre)) > radius]

    def _surface_boxes(self, frame: str) -> list[mp.ObjectBox]:
        """The perceived support surfaces in ``frame``; those TF cannot place are left out."""
        msg = self.surfaces
        out = []
        for belief in (msg.objects if msg is not None else []):
            source = belief.header.frame_id or msg.header.frame_id
            try:
                box = surface_box(belief, self.tf.lookup(frame, source))
            except TransformError:
                continue
            if box is not None:
                out.append(box)
        return out

    def _support(self, point, top: float, gap: float = 0.02) -> tuple[mp.Box, list[mp.Box]]:
        """The table assumed under a base-frame point, and the surfaces over it.

        The table (``models.manipulation.support_near``) reaches back to ``support_near_x``,
        or to the near edge of the perceived surfaces under it. Over it: the perceived
        surfaces more than ``gap`` above ``top`` (``models.manipulation.surfaces_over``: a
        shelf's board above), obstacles for the arm.
        """
        surfaces = self._surface_boxes(self.param('base_frame'))
        near = mp.support_near(point, surfaces, self.param('support_near_x'))
        return (mp.support_box(point[2], point[:2], near),
                mp.surfaces_over(point, top, surfaces, gap=gap))

    def _seen_at(self, object_id: str, after_ns: int, near=None) -> np.ndarray | None:
        """Base-frame position of ``object_id`` in a belief observed after ``after_ns``.

        Observed: the belief's ``last_seen`` (its header stamp where a publisher leaves that
        unset). The header is the stamp of the frame the beliefs were published with: a track
        kept where the object was picked, not seen since, had passed for a sighting there and
        failed the place of the object carried across the building ('grasp_lost').

        With ``near`` (x, y in the base frame), look on until a belief lies within
        ``verify_tolerance`` of it (a track takes a few frames to follow an object that moved
        several centimetres) and return the last one seen.
        """
        timeout = self.param('verify_timeout')
        deadline = self._now() + timeout * NS
        wall_deadline = time.monotonic() + 10.0 * timeout  # should the clock stop
        last = None
        while self._now() < deadline and time.monotonic() < wall_deadline and \
                not self.closing.is_set():
            msg = self.objects
            for belief in (msg.objects if msg is not None else []):
                seen = to_ns(belief.last_seen) or to_ns(belief.header.stamp)
                if not names_object(belief, object_id) or seen <= after_ns:
                    continue
                frame = belief.header.frame_id or msg.header.frame_id
                try:
                    t = self.tf.lookup(self.param('base_frame'), frame)
                except TransformError:
                    return last
                p = belief.pose.pose.position
                last = (t @ [p.x, p.y, p.z, 1.0])[:3]
                if near is None or np.linalg.norm(last[:2] - np.asarray(near)[:2]) \
                        <= self.param('verify_tolerance'):
                    return last
                break
            self.closing.wait(0.05)  # a pause that ends at shutdown
        return last

    # -------------------------------------------------------------- goals
    def _run(self, handle, kind, body) -> object:
        """Run ``body(handle)`` for one goal, turning failures into results with reasons."""
        name = kind.__name__.lower()
        if not self.busy.acquire(blocking=False):
            handle.abort()
            return kind.Result(success=False, reason=f'busy: another goal ({self.phase}) is '
                               'running')
        try:
            reason = body(handle)
            success = True
        except GoalError as exc:
            success, reason = False, str(exc)
            if exc.code == 'canceled':
                handle.canceled()
        except Exception as exc:  # noqa: BLE001 - end the goal with the reason, keep running
            success, reason = False, f'error: {type(exc).__name__}: {exc}'
        finally:
            self.phase = 'idle'
            self.busy.release()
        if success:
            handle.succeed()
            self.get_logger().info(f'{name} succeeded: {reason}')
        else:
            if not reason.startswith('canceled'):
                handle.abort()
            self.get_logger().warning(f'{name} failed: {reason}')
        self.counts[f'{name}_{"succeeded" if success else "failed"}'] += 1
        self.last_result = f'{name}: {reason}'
        return kind.Result(success=success, reason=reason)

    def _execute_pick(self, handle) -> Pick.Result:
        return self._run(handle, Pick, self._pick)

    def _execute_place(self, handle) -> Place.Result:
        return self._run(handle, Place, self._place)

    def _pick(self, handle) -> str:
        object_id = handle.request.object_id.strip()
        if not object_id:
            raise GoalError('bad_goal', 'empty object_id')
        if self.held is not None:
            self._wait_joints(handle)
            if self._gripper_width() >= self.param('hold_min_width'):
                raise GoalError('bad_goal', f"already holding {self.held['id']!r}: place it "
                                'first')
            self.get_logger().warning(f"{self.held['id']} was dropped (the gripper is closed)")
            self.held = None
        belief, frame, msg = self._belief(object_id)
        base = self.param('base_frame')
        to_base = self._lookup_at_rest(base, frame)
        obj = self._object_box(belief, to_base)
        arm = self._arm()
        self._wait_joints(handle)
        q0, _ = self._arm_state()
        support, over = self._support((*obj.center[:2], obj.bottom), obj.top)
        config = self._grasp_config()
        plan = mp.plan_pick(arm, q0, obj, self._obstacles(msg, object_id, arm, q0) + over, support,
                            config, self._ik_config(), self.param('collision_margin'),
                            via=np.array(self.param('carry_position')), rng=self.rng)
        if isinstance(plan, mp.PlanFailure):
            here = np.linalg.inv(to_base)
            raise GoalError(plan.reason, f'{object_id} at ({obj.center[0]:.2f}, '
                          f'{obj.center[1]:.2f}, {obj.center[2]:.2f}) in {base}, the base at '
                          f'({here[0, 3]:.2f}, {here[1, 3]:.2f}, heading '
                          f'{math.degrees(math.atan2(here[1, 0], here[0, 0])):.0f} deg) in '
                          f'{frame}: {plan.message}')
        c = plan.candidate.contact[:3, 3]
        self.get_logger().info(f'pick {object_id}: {plan.candidate.kind} grasp at ({c[0]:.3f}, '
                               f'{c[1]:.3f}, {c[2]:.3f}) in {base}')
        self._feedback(handle, Pick, 'approach', 0.0)
        self._gripper(handle, self.param('gripper_open_width'))
        self._move(handle, arm, plan.transit, 'transit to the pre-grasp pose')
        self._feedback(handle, Pick, 'approach', 0.5)
        grasped, back_off = self._descend(handle, arm, plan, object_id)
        held_box = obj
        if grasped is not plan:  # the hand met the object's top above its belief: it is taller
            taller = grasped.candidate.tool_height - plan.candidate.tool_height
            held_box = mp.ObjectBox(obj.center + [0.0, 0.0, taller / 2],
                                    obj.extent + [0.0, 0.0, taller], obj.yaw)
            plan = grasped
        self._feedback(handle, Pick, 'grasp', 0.0)
        width = self._gripper(handle, 0.0)
        if width < self.param('hold_min_width'):
            self._gripper(handle, self.param('gripper_open_width'))
            self._move(handle, arm, back_off, 'back off')
            self._stow_failed(handle, arm, support, over, 'carry_after_pick')
            raise GoalError('grasp_failed', f'the gripper closed on nothing (width {width:.4f} m)')
        self._feedback(handle, Pick, 'lift', 0.0)
        self._move(handle, arm, plan.depart, 'lift')
        self._feedback(handle, Pick, 'verify', 0.0)
        lifted = self._now()
        self._wait_joints(handle)
        width = self._gripper_width()
        if width < self.param('hold_min_width'):
            self._stow_failed(handle, arm, support, over, 'carry_after_pick')
            raise GoalError('grasp_lost', f'the gripper closed during the lift (width '
                          f'{width:.4f} m)')
        evidence = f'gripper width {width:.3f} m'
        if self.param('verify_timeout') > 0:
            seen = self._seen_at(object_id, lifted)
            if seen is not None:
                rose = seen[2] - obj.center[2]
                if rose < 0.5 * self.param('lift_height'):
                    self._gripper(handle, self.param('gripper_open_width'))
                    self._stow_failed(handle, arm, support, over, 'carry_after_pick')
                    raise GoalError('grasp_lost', f'perception sees {object_id} {rose:+.3f} m '
                                  'from where it was: it did not rise with the hand')
                evidence += f', perception sees it {rose:+.3f} m higher'
        self.held = {'id': object_id, 'candidate': plan.candidate, 'box': held_box}
        self.gripped[belief.id] = width
        if self.param('carry_after_pick'):
            self._carry(handle, arm, plan.depart[-1], support, tuple(over))
            width = self._gripper_width()
            if width < self.param('hold_min_width'):
                self.held = None
                raise GoalError('grasp_lost', f'dropped while moving to the carry pose (width '
                              f'{width:.4f} m)')
        self._feedback(handle, Pick, 'verify', 1.0)
        return f'picked {object_id} ({plan.candidate.kind} grasp; {evidence})'

    def _descend(self, handle, arm: mp.ArmModel, plan: mp.MotionPlan, object_id: str
                 ) -> tuple[mp.MotionPlan, np.ndarray]:
        """Lower the hand to the grasp; the plan from where it stopped, and the way back.

        A top-down hand that stops short of its grasp pose (the motion times out, the hand
        no higher than ``guarded_stop`` above it) has met the top of an object taller than
        its belief (a bottle perceived 0.153 m tall of its 0.186 m): the grasp closes there
        (``mp.grasp_where_stopped``).
        """
        try:
            self._move(handle, arm, plan.approach, 'approach')
            return plan, plan.approach[::-1]
        except GoalError as exc:
            if exc.code != 'timeout':
                raise
            q, _ = self._arm_state()
            found = mp.grasp_where_stopped(arm, q, plan, self.param('guarded_stop'),
                                           self._grasp_config(), self._ik_config())
            if found is None:
                raise
            grasped, back, above = found
            self.get_logger().warning(f'pick {object_id}: the hand stopped {above:.3f} m above '
                                      f'the grasp pose ({exc}): grasping there')
            self.counts['guarded_grasps'] += 1
            return grasped, back

    def _lower(self, handle, arm: mp.ArmModel, plan: mp.MotionPlan, held_id: str
               ) -> mp.MotionPlan:
        """Lower the held object to its release pose; the plan from where the hand stopped.

        A hand that stops short of the release pose (the motion times out, the hand no
        higher than ``guarded_release`` above it, straight above it) has set the object down
        on something higher than the target: it lets go there (``mp.release_where_stopped``).
        """
        try:
            self._move(handle, arm, plan.approach, 'lower')
            return plan
        except GoalError as exc:
            if exc.code != 'timeout':
                raise
            found = mp.release_where_stopped(arm, self._arm_state()[0], plan,
                                             self.param('guarded_release'),
                                             self._grasp_config(), self._ik_config())
            if found is None:
                raise
            released, above = found
            self.get_logger().warning(f'place {held_id}: the hand stopped {above:.3f} m above '
                                      f'the release pose ({exc}): releasing there')
            self.counts['guarded_releases'] += 1
            return released

    def _stow_failed(self, handle, arm: mp.ArmModel, support: mp.Box, over: list[mp.Box],
                     flag: str) -> None:
        """After a pick or place that failed with the arm out: to the carry pose, if ``flag``.

        The base drives off next (the executive re-plans), and an arm left stretched over the
        table would sweep it and stand in the depth camera's obstacles ahead of the base. A
        stow that cannot be done (the way is not free, the motion fails) is logged, and the
        goal's own failure is the one reported.
        """
        if not self.param(flag):
            return
        try:
            self._carry(handle, arm, self._arm_state()[0], support, tuple(over))
        except GoalError as exc:
            self.get_logger().warning(f'the arm was not stowed after the failure: {exc}')

    def _carry(self, handle, arm: mp.ArmModel, q: np.ndarray, support: mp.Box | None,
               keep_clear: tuple[mp.Box, ...] = ()) -> None:
        """Move to carry_position when the way there is free (else stay where the arm is)."""
        carry = np.array(self.param('carry_position'))
        boxes = boxes_from_list(self.param('base_boxes')) + ([support] if support else []) + \
            list(keep_clear)
        hit = mp.first_collision(arm, [q, carry], boxes, self.param('collision_margin'),
                                 allow_start=True)
        if hit is not None:
            self.get_logger().warning(f'not moving to the carry pose: {hit.describe()}')
            return
        self._move(handle, arm, np.array([q, carry]), 'carry')

    def _place(self, handle) -> str:
        request = handle.request
        if self.held is None:
            raise GoalError('nothing_held', 'no object was picked by this node')
        held_id = self.held['id']
        if request.object_id.strip() and request.object_id.strip() != held_id:
            raise GoalError('bad_goal', f'holding {held_id!r}, not {request.object_id!r}')
        self._wait_joints(handle)
        if self._gripper_width() < self.param('hold_min_width'):
            self.held = None
            raise GoalError('grasp_lost', f'the gripper is closed: {held_id} was dropped')
        pose = request.target.pose
        xyz = np.array([pose.position.x, pose.position.y, pose.position.z], dtype=float)
        frame = request.target.header.frame_id.lstrip('/')
        if not frame:
            raise GoalError('bad_goal', 'the target pose has no frame_id')
        if not np.all(np.isfinite(xyz)):
            raise GoalError('bad_goal', f'target position {xyz.tolist()} is not finite')
        base = self.param('base_frame')
        target = (self._lookup_at_rest(base, frame) @ [*xyz, 1.0])[:3]
        arm = self._arm()
        q0, _ = self._arm_state()
        support, over = self._support(target, target[2], gap=mp.PLACE_GAP)
        plan = mp.plan_place(arm, q0, target, self.held['candidate'],
                             self._obstacles(self.objects, held_id, arm, q0) + over, support,
                             self._grasp_config(), self._ik_config(),
                             self.param('collision_margin'), rng=self.rng)
        if isinstance(plan, mp.PlanFailure):
            raise GoalError(plan.reason, f'target ({target[0]:.2f}, {target[1]:.2f}, '
                          f'{target[2]:.2f}) in {base}: {plan.message}')
        c = plan.candidate.contact[:3, 3]
        self.get_logger().info(f'place {held_id}: {plan.candidate.kind} release at ({c[0]:.3f}, '
                               f'{c[1]:.3f}, {c[2]:.3f}) in {base}, for the target '
                               f'({xyz[0]:.3f}, {xyz[1]:.3f}, {xyz[2]:.3f}) in {frame}')
        self._feedback(handle, Place, 'approach', 0.0)
        self._move(handle, arm, plan.transit, 'transit above the target')
        self._feedback(handle, Place, 'approach', 0.5)
        plan = self._lower(handle, arm, plan, held_id)
        self._feedback(handle, Place, 'release', 0.0)
        self._gripper(handle, self.param('gripper_open_width'))
        released = self._now()
        extent = np.asarray(self.held['box'].extent, dtype=float)
        self.held = None
        self._feedback(handle, Place, 'retreat', 0.0)
        self._move(handle, arm, plan.depart, 'retreat')
        self._feedback(handle, Place, 'verify', 0.0)
        evidence = 'gripper opened'
        if self.param('verify_timeout') > 0:
            seen = self._seen_at(held_id, released, near=target[:2])
            if seen is not None:
                off = float(np.linalg.norm(seen[:2] - target[:2]))
                if off > self.param('verify_tolerance'):
                    self._stow_failed(handle, arm, support, over, 'stow_after_place')
                    raise GoalError('grasp_lost', f'perception sees {held_id} {off:.3f} m from '
                                  'the target')
                evidence += f', perception sees it {off:.3f} m from the target'
        if self.param('stow_after_place'):
            self._wait_joints(handle)
            placed = mp.ObjectBox((target[0], target[1], target[2] + extent[2] / 2), extent,
                                  0.0).box(0.01, f'the placed {held_id}')
            self._carry(handle, arm, self._arm_state()[0], support, (placed, *over))
        self._feedback(handle, Place, 'verify', 1.0)
        return f'placed {held_id} ({evidence})'

    # -------------------------------------------------------------- approach
    def _serve_approach(self, request, response):
        try:
            pose, standoff, target = self._approach(request)
        except GoalError as exc:
            response.success, response.reason = False, str(exc)
            self.get_logger().info(f'plan_approach for {request.object_id!r}: {exc}')
            return response
        except Exception as exc:  # noqa: BLE001 - answer with the reason, keep running
            response.success, response.reason = False, f'error: {type(exc).__name__}: {exc}'
            return response
        response.success, response.base_pose, response.standoff = True, pose, float(standoff)
        p = pose.pose.position
        what = request.object_id
        if target is not None:
            response.place_target = target
            t = target.pose.position
            what = f'the place spot ({t.x:.2f}, {t.y:.2f}, {t.z:.2f})'
        response.reason = (f'stand at ({p.x:.2f}, {p.y:.2f}) in {pose.header.frame_id}, '
                           f'{standoff:.2f} m from {what}')
        return response

    def _approach(self, request) -> tuple[PoseStamped, float, PoseStamped | None]:
        """Where the base should stand (beliefs' frame), its standoff, and a place's target."""
        exclude = [(p.x, p.y) for p in request.exclude]
        radius = float(request.exclude_radius) or 0.3
        if not (all(math.isfinite(v) for xy in exclude for v in xy) and
                math.isfinite(radius) and radius >= 0):
            raise GoalError('bad_goal', 'exclude points and exclude_radius must be finite')
        if self.grid is None:
            raise GoalError('no_input', "no occupancy grid received on "
                            f"'{self.param('occupancy_topic')}': free space unknown")
        grid, grid_frame = self.grid
        if request.place:
            near = request.place_near
            if not all(math.isfinite(v) for v in (near.x, near.y)):
                raise GoalError('bad_goal', 'place_near must be finite')
            if self.held is None:
                raise GoalError('nothing_held', 'no object was picked by this node')
            if request.object_id.strip() not in ('', self.held['id']):
                raise GoalError('bad_goal', f"holding {self.held['id']!r}, not "
                                f'{request.object_id!r}')
            if self.surfaces is None or not self.surfaces.objects:
                raise GoalError('no_input', 'no support surfaces received on '
                                f"'{self.param('surfaces_topic')}'")
            frame = self.surfaces.header.frame_id.lstrip('/') or self.param('base_frame')
            skip = self.held['id']
        else:
            skip = request.object_id.strip()
            if not skip:
                raise GoalError('bad_goal', 'empty object_id')
            belief, frame, _ = self._belief(skip)
        t_grid = np.eye(4) if grid_frame in ('', frame) else self._lookup(grid_frame, frame)
        clearance, occupied = self.param('stand_clearance'), self.param('occupied_threshold')

        def free(x: float, y: float, _heading: float) -> bool:
            if any(math.hypot(x - ex, y - ey) < radius for ex, ey in exclude):
                return False
            gx, gy = (t_grid @ [x, y, 0.0, 1.0])[:2]
            return grid.footprint_free(gx, gy, clearance, occupied)

        others = self._other_objects(self.objects, skip, frame)
        q0, _ = self._arm_state()
        here = self._lookup(frame, self.param('base_frame'))
        # where the base stands is tried first, unless the caller left it out (it already
        # failed from there); a stand-point it could not reach leaves it in
        current = None if any(math.hypot(here[0, 3] - ex, here[1, 3] - ey) < HERE
                              for ex, ey in exclude) else \
            (here[0, 3], here[1, 3], math.atan2(here[1, 0], here[0, 0]))
        common = dict(start_xy=here[:2, 3], current=current,
                      headings=self.param('approach_headings'),
                      standoffs=tuple(self.param('approach_standoffs')),
                      support_near_x=self.param('support_near_x'),
                      config=self._grasp_config(), ik=self._ik_config(),
                      margin=self.param('collision_margin'), rng=self.rng,
                      slack=self.param('approach_slack'),
                      heading_slack=self.param('approach_heading_slack'), others=others,
                      surfaces=self._surface_boxes(frame),
                      deadline=time.monotonic() + self.param('approach_budget'))
        if request.place:
            spots = self._place_spots((near.x, near.y), others)
            found = mp.plan_place_approach(self._arm(), q0, spots, self.held['candidate'],
                                           boxes_from_list(self.param('base_boxes')), free,
                                           **common)
            where = f'the surface nearest ({near.x:.2f}, {near.y:.2f}) in {frame}'
        else:
            obj = self._object_box(belief, np.eye(4))
            found = mp.plan_approach(self._arm(), q0, obj,
                                     boxes_from_list(self.param('base_boxes')), free, **common)
            c = obj.center
            where = f'{skip} at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}) in {frame}'
        if isinstance(found, mp.PlanFailure):
            raise GoalError(found.reason, f'{where}: {found.message}')
        if found.short_of_slack:
            self.get_logger().info(f'plan_approach for {where}: no stand-point leaves room '
                                   f'for the base stopping off it; the nearest that plans as '
                                   f'it is: ({found.x:.2f}, {found.y:.2f}): '
                                   f'{found.short_of_slack}')
        stamp = self.get_clock().now().to_msg()
        pose = PoseStamped()
        pose.header.frame_id, pose.header.stamp = frame, stamp
        pose.pose.position.x, pose.pose.position.y = float(found.x), float(found.y)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in yaw_quaternion(found.heading))
        target = None
        if found.target is not None:
            target = PoseStamped()
            target.header.frame_id, target.header.stamp = frame, stamp
            t = target.pose.position
            t.x, t.y, t.z = (float(v) for v in found.target)
            target.pose.orientation.w = 1.0
        return pose, found.standoff, target

    def _place_spots(self, near, others) -> np.ndarray:
        """Free points (x, y, z) on the surface nearest ``near`` (surfaces' frame), best first.

        Of the surfaces open above: the hand comes down from above, so a shelf's lower board,
        under another surface, is not placed on.
        """
        boards = list(self.surfaces.objects)
        surfaces = sorted((s for s in boards if not covered(s, boards)), key=lambda s: math.hypot(
            s.pose.pose.position.x - near[0], s.pose.pose.position.y - near[1]))
        if not surfaces:
            return np.zeros((0, 3))
        surface = surfaces[0]
        p, q = surface.pose.pose.position, surface.pose.pose.orientation
        held = self.held['box'].extent
        size = 0.5 * math.hypot(held[0], held[1])
        clear = [(o.center[:2], 0.5 * math.hypot(o.extent[0], o.extent[1]) + size +
                  self.param('place_clearance')) for _, o in others]
        xy = rectangle_spots((p.x, p.y), quaternion_yaw([q.x, q.y, q.z, q.w]),
                             surface.extent.x, surface.extent.y,
                             self.param('place_edge_margin') + size, self.param('place_spacing'),
                             near=near, keep_clear=clear, limit=self.param('place_spots'),
                             depth=self.param('place_depth'))
        return np.column_stack([xy, np.full(len(xy), p.z)])

    # -------------------------------------------------------------- diagnostics
    @property
    def held(self) -> dict | None:
        """The held object (id, candidate, box), or None."""
        return self._held

    @held.setter
    def held(self, value: dict | None) -> None:
        """Set, and tell the task planner on ``held_object`` (its id, '' for none)."""
        self._held = value
        self.pub_held.publish(String(data=value['id'] if value else ''))

    def _publish_diagnostics(self) -> None:
        age = 'never' if self.joints is None else \
            f'{(self._now() - self.joints[2]) / NS:.2f}'
        values = {'phase': self.phase, 'held': self.held['id'] if self.held else '',
                  'joint_states_age_s': age,
                  'objects': len(self.objects.objects) if self.objects is not None else 0,
                  'last_result': self.last_result, **self.counts}
        level = DiagnosticStatus.OK if self.joints is not None else DiagnosticStatus.WARN
        message = self.phase if self.joints is not None else 'waiting for joint_states'
        status = DiagnosticStatus(level=level, name=self.get_fully_qualified_name(),
                                  message=message,
                                  values=[KeyValue(key=k, value=str(v)[:500])
                                          for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def destroy_node(self):
        """End a running goal (it aborts with a reason), then destroy the node."""
        for event in (getattr(self, 'closing', None), getattr(self, 'joint_event', None)):
            if event is not None:  # absent when the constructor failed
                event.set()
        for receiver in (getattr(self, 'tf_listener', None), getattr(self, 'joint_input', None)):
            if receiver is not None:
                receiver.destroy()
        return super().destroy_node()


NODE_CLASS = Manipulator
main = node_main(Manipulator)

if __name__ == '__main__':
    sys.exit(main())
