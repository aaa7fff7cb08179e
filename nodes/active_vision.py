"""active_vision: move the wrist camera, through the arm, to where the goal is seen.

Action ``look_for`` (embodied_aif_msgs/LookFor): the goal is a category name ("find a mug")
or a goal image (RGB-D + camera_info: "see this object from there"). Each step the node takes
the latest object beliefs (``objects``, from perception), the camera pose (forward
kinematics of the newest joint_states on the base's pose from TF: under load the arm links' TF
lags the arm by seconds, and steps bounded from a stale pose undo each other; the base is
assumed still during a goal), scores a few thousand candidate camera poses by expected free
energy (models.active_vision: pragmatic + epistemic terms), moves a bounded step toward the
best reachable one (limit-aware IK on the camera frame of ``robot_description``, from the
current joints) and commands it as a one-point trajectory on
``arm_controller/joint_trajectory``; then it waits ``step_period`` of sim time for the arm and
the beliefs to follow. A move whose solution would bring an arm link within
``table_clearance`` of the workspace's table top (over the table) is solved again drawn
toward an elbow-up posture (``rest_joints``), or replaced by a straight lift.

Success: CATEGORY, an object in view whose category probability reaches
``found_probability``; IMAGE, the camera at the viewpoint the goal image was localised to
(``models.active_vision.localise_goal``, against a surface map the node builds from the
camera's depth frames; again every ``localise_every`` steps, it is most of a step's CPU) and
its current frame agreeing with the goal image. Once the goal image is localised to one
object and the camera is within ``focus_distance`` of the goal viewpoint, the epistemic term
counts only information about that object (no other objects, no table coverage: summed over
many objects and cells it outweighed the goal term near the goal). Otherwise the result
reports ``max_steps`` (or ``cancelled``). Bad goals (unknown category, empty or malformed
image, bad camera_info) end at once with success false and ``reason = "rejected: ..."``.

Subscribes: objects (ObjectBeliefArray), joint_states, robot_description (latched),
{camera}/camera_info, {camera}/depth/image_rect and {camera}/color/image_raw, /tf, /tf_static.
Publishes: arm_controller/joint_trajectory, /diagnostics (the EFE terms of each step, the IK
misses, the links' clearance of the table, whether the goal is localised, CPU times).
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from embodied_aif.models.active_vision import (
    CandidateConfig,
    CategoryGoal,
    Coverage,
    EfeConfig,
    GoalImage,
    LocaliseConfig,
    SurfaceMap,
    ViewGoal,
    interpret_goal_image,
    localise_goal,
    pose_error,
    reach_shell,
    step,
    view_agreement,
)
from embodied_aif.models.scene_beliefs import ObjectBelief as Belief
from embodied_aif.models.scene_beliefs import SceneBeliefs, SensorModel
from embodied_aif.models.segmentation import CameraIntrinsics, SegmentationConfig, backproject
from embodied_aif.nodes._arm_ik import ArmIk, table_clearance
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    Param,
    ParamNode,
    node_main,
)
from embodied_aif.nodes._tf import TfBuffer, TfListener, TransformError
from embodied_aif_msgs.action import LookFor
from embodied_aif_msgs.msg import ObjectBeliefArray

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
CATEGORY_NAMES = ['can', 'box', 'mug', 'bottle', 'bowl', 'duck', 'teddy', 'lego', 'jenga',
                  'mug_mesh']
NS = 1e9
# a frame taken this close to the localised goal view is compared with the goal image
VERIFY_M, VERIFY_RAD = 0.03, 0.15


class GoalError(ValueError):
    """A goal that cannot be pursued (the message says why)."""


def _image(msg: Image, encoding: str, dtype: str, channels: int) -> np.ndarray:
    if msg.width == 0 or msg.height == 0 or not msg.data:
        raise GoalError(f'{encoding} image is empty')
    if msg.encoding != encoding:
        raise GoalError(f'image encoding {msg.encoding!r}, expected {encoding!r}')
    size = np.dtype(dtype).itemsize * channels
    if msg.step != msg.width * size or len(msg.data) != msg.step * msg.height:
        raise GoalError(f'{encoding} image of {len(msg.data)} bytes does not match '
                       f'{msg.width}x{msg.height}')
    arr = np.frombuffer(bytes(msg.data), dtype=np.dtype(dtype).newbyteorder(
        '>' if msg.is_bigendian else '<'))
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return arr.reshape(shape).astype(dtype)


def _reachable(reach, t_map_cam) -> bool:
    """Whether the arm's reach shell holds a camera pose to within the verification distance."""
    return float(np.linalg.norm(reach(t_map_cam[None])[0, :3, 3] - t_map_cam[:3, 3])) < VERIFY_M


def _seven_finite(value) -> str | None:
    if len(value) != len(ARM_JOINTS) or not all(
            isinstance(v, (int, float)) and np.isfinite(v) for v in value):
        return f'expected {len(ARM_JOINTS)} finite joint positions, got {value!r}'
    return None


def _pose_msg(t: np.ndarray, frame: str, stamp) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id, msg.header.stamp = frame, stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in t[:3, 3])
    q = Rotation.from_matrix(t[:3, :3]).as_quat()
    (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
     msg.pose.orientation.w) = (float(v) for v in q)
    return msg


class ActiveVision(ParamNode):
    """LookFor action server: EFE-driven wrist-camera moves through the arm."""

    PARAMETERS = (
        Param('camera', 'wrist_camera', 'topic prefix of the moved RGB-D camera', read_only=True),
        Param('camera_frame', 'wrist_camera_optical_frame', 'optical frame of that camera',
              read_only=True),
        Param('map_frame', 'odom', 'frame of the beliefs and viewpoints', read_only=True),
        Param('base_frame', 'base_link', 'frame the arm is mounted in', read_only=True),
        Param('shoulder_frame', 'panda_link0', 'frame at the arm base (reach centre below)',
              read_only=True),
        Param('category_names', list(CATEGORY_NAMES), 'categories of the beliefs',
              read_only=True),
        Param('max_steps', 40, 'default most camera moves per goal', low=1, high=2000),
        Param('step_period', 0.6, 'sim time per camera move, s', low=0.05, high=10.0),
        Param('max_step_m', 0.05, 'largest camera translation per move, m', low=0.005,
              high=0.5),
        Param('max_step_rad', 0.15, 'largest camera rotation per move, rad', low=0.01,
              high=1.5),
        Param('shoulder_height', 0.333, 'reach centre above shoulder_frame, m', low=0.0,
              high=2.0),
        Param('reach_min', 0.3, 'nearest camera distance from the reach centre, m', low=0.0,
              high=2.0),
        Param('reach_max', 0.75, 'farthest camera distance from the reach centre, m', low=0.1,
              high=2.0),
        Param('min_height', 0.75, 'lowest camera height in map_frame, m', low=-10.0, high=10.0),
        Param('found_probability', 0.5, 'category probability that counts as found', low=0.0,
              high=1.0),
        Param('n_candidates', 1024, 'candidate viewpoints sampled per step', low=16,
              high=20000),
        Param('w_position', 1.0, 'weight of the position information gain', low=0.0,
              high=100.0),
        Param('w_category', 1.0, 'weight of the category information gain', low=0.0,
              high=100.0),
        Param('w_coverage', 0.5, 'weight of the coverage (unexplored table) gain', low=0.0,
              high=100.0),
        Param('use_epistemic', True, 'include the epistemic terms in the EFE'),
        Param('workspace_centre', [0.7, 0.0, 0.62], 'centre of the table workspace in '
              'map_frame (x, y, surface z), m'),
        Param('workspace_half', [0.4, 0.6], 'half extents of the workspace (x, y), m'),
        Param('workspace_margin', 0.1, 'beliefs this far beyond the workspace\'s edges still '
              'count as on it, m', low=0.0, high=2.0),
        Param('workspace_height', 0.5, 'beliefs at most this far above the workspace surface '
              '(and at most 5 cm below it) count as on it, m', low=0.0, high=3.0),
        Param('table_clearance', 0.06, 'least height of the arm links above the workspace '
              'surface where they are over it, m', low=0.0, high=1.0),
        Param('rest_joints', [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785], 'arm joints '
              '(elbow up) that IK is drawn toward when a move would bring a link near the '
              'table', validate=_seven_finite),
        Param('localise_every', 4, 'steps between localisations of a localised goal image',
              low=1, high=100),
        Param('focus_distance', 0.3, 'camera distance from the localised goal viewpoint '
              'within which only the goal object\'s information counts, m', low=0.0,
              high=10.0),
        Param('seed', 0, 'seed of the viewpoint sampler', low=0, high=2**31 - 1,
              read_only=True),
    )

    def __init__(self, **kwargs):
        super().__init__('active_vision', **kwargs)
        self._names = tuple(self.param('category_names'))
        if not self._names:
            raise ValueError('category_names must not be empty')
        why = _seven_finite(self.param('rest_joints'))
        if why is not None:
            raise ValueError(f'rest_joints: {why}')
        self._lock = threading.Lock()
        self._objects: ObjectBeliefArray | None = None
        self._joints: dict[str, float] = {}
        self._urdf: str | None = None
        self._info: CameraInfo | None = None
        # recent wrist frames: the newest whose camera pose TF can give is fused (under load
        # TF lags the images, and the newest frame alone would never resolve)
        self._frames: dict[str, deque] = {'depth': deque(maxlen=12), 'color': deque(maxlen=12)}
        self._ik: ArmIk | None = None
        self._rng = np.random.default_rng(self.param('seed'))
        self._busy = False
        self.tf = TfBuffer(cache_s=10.0)
        inputs, work = ReentrantCallbackGroup(), ReentrantCallbackGroup()
        self._tf_listener = TfListener(self, self.tf, callback_group=inputs)
        self.create_subscription(ObjectBeliefArray, 'objects', self._keep('objects'), 10,
                                 callback_group=inputs)
        self.create_subscription(JointState, 'joint_states', self._on_joints, 10,
                                 callback_group=inputs)
        self.create_subscription(String, 'robot_description', self._keep('urdf'), LATCHED_QOS,
                                 callback_group=inputs)
        camera = self.param('camera')
        self.create_subscription(CameraInfo, f'{camera}/camera_info', self._keep('info'),
                                 SENSOR_QOS, callback_group=inputs)
        self.create_subscription(Image, f'{camera}/depth/image_rect', self._keep('depth'),
                                 SENSOR_QOS, callback_group=inputs)
        self.create_subscription(Image, f'{camera}/color/image_raw', self._keep('color'),
                                 SENSOR_QOS, callback_group=inputs)
        self.pub_traj = self.create_publisher(JointTrajectory, 'arm_controller/joint_trajectory',
                                              COMMAND_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._server = ActionServer(self, LookFor, 'look_for', self._execute,
                                    goal_callback=self._on_goal,
                                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                                    callback_group=work)

    # ------------------------------------------------------------------ inputs
    def _keep(self, key: str):
        def callback(msg) -> None:
            with self._lock:
                if key == 'objects':
                    self._objects = msg
                elif key == 'urdf':
                    self._urdf = msg.data
                elif key == 'info':
                    self._info = msg
                else:
                    self._frames[key].append(msg)
        return callback

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self._joints.update(zip(msg.name, msg.position))

    def _on_goal(self, _request) -> GoalResponse:
        with self._lock:
            if self._busy:
                self.get_logger().warning('look_for goal refused: another goal is running')
                return GoalResponse.REJECT
            self._busy = True
        return GoalResponse.ACCEPT

    # ------------------------------------------------------------------ helpers
    def _scene(self) -> SceneBeliefs:
        """The believed objects on the workspace, within margins of its table top.

        Over the table (``workspace_margin`` beyond its edges) and at most
        ``workspace_height`` above its surface. The wrist camera also sees the robot's own
        base and arm and things on the floor; perception tracks some as objects, and their
        information gain drew the camera away from the table for many steps.
        """
        with self._lock:
            msg = self._objects
        centre = np.asarray(self.param('workspace_centre'), dtype=float)
        half = np.asarray(self.param('workspace_half'), dtype=float) \
            + self.param('workspace_margin')
        objs = []
        for o in (msg.objects if msg is not None else ()):
            if list(o.category_names) != list(self._names):
                continue
            p = o.pose.pose.position
            if np.any(np.abs([p.x - centre[0], p.y - centre[1]]) > half) \
                    or not -0.05 <= p.z - centre[2] <= self.param('workspace_height'):
                continue
            probs = np.asarray(o.category_probs, dtype=float)
            cov = np.reshape(np.asarray(o.pose.covariance, dtype=float), (6, 6))[:3, :3]
            objs.append(Belief(id=o.id, category_probs=probs / probs.sum(),
                               mean=np.array([p.x, p.y, p.z]), cov=cov,
                               extent=np.array([o.extent.x, o.extent.y, o.extent.z]),
                               colour=np.full(3, np.nan), existence=0.9,
                               last_seen=o.last_seen.sec + o.last_seen.nanosec / NS,
                               in_view=bool(o.in_view)))
        return SceneBeliefs(objects=tuple(objs), category_names=self._names)

    def _parse(self, goal: LookFor.Goal):
        if goal.mode == LookFor.Goal.CATEGORY:
            if goal.category not in self._names:
                raise GoalError(f'unknown category {goal.category!r} (known: '
                               f'{", ".join(self._names)})')
            return CategoryGoal(self._names.index(goal.category))
        if goal.mode == LookFor.Goal.IMAGE:
            rgb = _image(goal.goal_image, 'rgb8', 'u1', 3)
            depth = _image(goal.goal_depth, '32FC1', 'f4', 1)
            info = goal.goal_camera_info
            try:
                intr = CameraIntrinsics.from_k(info.k, info.width, info.height)
                image = GoalImage(rgb, depth, intr)
                view = interpret_goal_image(image, SegmentationConfig(), self._rng)
            except ValueError as exc:
                raise GoalError(str(exc)) from exc
            return image, view
        raise GoalError(f'mode {goal.mode} is neither CATEGORY (0) nor IMAGE (1)')

    def _wait_sim(self, seconds: float, stall_s: float = 10.0) -> None:
        """Let ``seconds`` of node-clock time pass; give up if the clock stops for ``stall_s``.

        A slow clock (a loaded simulator) is waited for: cutting the wait by wall time would
        make steps shorter in sim time than the arm's moves.
        """
        clock = self.get_clock()
        now = clock.now().nanoseconds
        end = now + seconds * NS
        last, last_wall = now, time.monotonic()
        pause = threading.Event()
        while now < end:
            pause.wait(0.02)
            now = clock.now().nanoseconds
            if now != last:
                last, last_wall = now, time.monotonic()
            elif time.monotonic() - last_wall > stall_s:
                return

    def _ready(self) -> str | None:
        """Why the node cannot move yet (None when it can)."""
        with self._lock:
            urdf, info = self._urdf, self._info
            have_joints = all(n in self._joints for n in ARM_JOINTS)
        if urdf is None:
            return 'no robot_description yet'
        if info is None:
            return 'no camera_info yet'
        if not have_joints:
            return 'no joint_states yet'
        if self._ik is None:
            self._ik = ArmIk(urdf, ARM_JOINTS, self.param('camera_frame'))
        return None

    def _candidates(self) -> CandidateConfig:
        centre = np.asarray(self.param('workspace_centre'), dtype=float)
        half = np.asarray(self.param('workspace_half'), dtype=float)
        n = self.param('n_candidates')
        return CandidateConfig(
            n_around_objects=n // 2, n_around_goal=n // 8, n_local=n // 8, n_explore=n // 4,
            distance_range=(0.25, 0.6), elevation_range=(0.45, 1.35),
            workspace_centre=tuple(centre), workspace_radius=float(max(half)),
            position_min=(-np.inf, -np.inf, self.param('min_height')),
            max_step_m=self.param('max_step_m'), max_step_rad=self.param('max_step_rad'))

    def _fuse_frame(self, state: dict) -> None:
        """Add the newest depth + colour pair to the surface map and coverage."""
        def key(msg) -> tuple[int, int]:
            return msg.header.stamp.sec, msg.header.stamp.nanosec

        with self._lock:
            colors = {key(m): m for m in self._frames['color']}
            pairs = [(d, colors[key(d)]) for d in reversed(self._frames['depth'])
                     if key(d) in colors]
        fused = state.get('fused', (-1, -1))
        problem = None
        for depth_msg, color_msg in pairs:  # newest first
            if key(depth_msg) <= fused:
                break
            try:
                depth = _image(depth_msg, '32FC1', 'f4', 1)
                rgb = _image(color_msg, 'rgb8', 'u1', 3)
                stamp = depth_msg.header.stamp.sec + depth_msg.header.stamp.nanosec / NS
                t_map_cam = self.tf.lookup(self.param('map_frame'), depth_msg.header.frame_id,
                                           stamp, tolerance_s=0.1)
                break
            except (GoalError, TransformError) as exc:
                problem = problem or exc  # the newest frame's reason
        else:
            if problem is not None:
                self.get_logger().warning(f'camera frame not fused: {problem}',
                                          throttle_duration_sec=5.0)
            return
        if key(depth_msg) <= fused:
            return
        state['fused'] = key(depth_msg)
        state['frame'] = (depth, rgb, t_map_cam)
        pts, pix = backproject(depth, state['sensor'].intrinsics, t_map_cam, 0.05, 2.0)
        state['smap'].add(pts, rgb.reshape(-1, 3)[pix] / 255.0, eye=t_map_cam[:3, 3])
        state['coverage'] = state['coverage'].observe(t_map_cam, state['sensor'], depth)
        ws_z = float(self.param('workspace_centre')[2])
        state['support_z'] = ws_z

    def _focus(self, scene: SceneBeliefs, goal, info: dict, cam) -> SceneBeliefs | None:
        """The goal object alone, once the goal image is localised to it and the camera is near.

        None (all objects and the table coverage count) before that.
        """
        if not isinstance(goal, ViewGoal) or goal.object_id is None \
                or info.get('t_map_goal') is None:
            return None
        target = scene.get(goal.object_id)
        if target is None \
                or pose_error(cam, info['t_map_goal'])[0] > self.param('focus_distance'):
            return None
        return SceneBeliefs(objects=(target,), category_names=scene.category_names)

    def _move(self, t_map_base, cam, nxt, q_now):
        """Joints for the step to ``nxt``, the arm's links kept off the workspace's table.

        ``ArmIk.solve_clear``: the step drawn toward the current joints, toward
        ``rest_joints`` (elbow up), or a straight lift of ``max_step_m``, whichever first
        keeps every link point over the workspace ``table_clearance`` above its surface.
        Returns (q, position miss, rotation miss, clearance of the links, m).
        """
        t_base_map = np.linalg.inv(t_map_base)
        centre = np.asarray(self.param('workspace_centre'), dtype=float)
        half = np.asarray(self.param('workspace_half'), dtype=float)

        def clearance(points: np.ndarray) -> float:
            return table_clearance(points @ t_map_base[:3, :3].T + t_map_base[:3, 3],
                                   centre, half)

        return self._ik.solve_clear(t_base_map @ nxt, t_base_map @ cam, q_now,
                                    np.asarray(self.param('rest_joints'), dtype=float),
                                    clearance, self.param('table_clearance'),
                                    self.param('max_step_m'))

    def _diagnostics(self, terms: dict, step_index: int, status: str) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        values = [KeyValue(key='step', value=str(step_index)), KeyValue(key='status', value=status)]
        values += [KeyValue(key=k, value=f'{v:.4f}') for k, v in terms.items()]
        msg.status = [DiagnosticStatus(level=DiagnosticStatus.OK, name='active_vision: efe',
                                       message=status, hardware_id='active_vision',
                                       values=values)]
        self.pub_diag.publish(msg)

    # ------------------------------------------------------------------ the action
    def _execute(self, handle):
        try:
            return self._run(handle)
        finally:
            with self._lock:
                self._busy = False

    def _finish(self, handle, success: bool, reason: str, cam, steps: int, how: str):
        result = LookFor.Result(success=success, reason=reason, steps=steps)
        if cam is not None:
            result.final_viewpoint = _pose_msg(cam, self.param('map_frame'),
                                               self.get_clock().now().to_msg())
        getattr(handle, how)()
        self.get_logger().info(f'look_for ended: success={success}, {reason}, {steps} steps')
        return result

    def _run(self, handle):
        request = handle.request
        try:
            goal = self._parse(request)
        except GoalError as exc:
            self._diagnostics({}, 0, f'rejected: {exc}')
            return self._finish(handle, False, f'rejected: {exc}', None, 0, 'abort')
        max_steps = int(request.max_steps) or self.param('max_steps')
        map_frame = self.param('map_frame')
        efe_config = EfeConfig(w_position=self.param('w_position'),
                               w_category=self.param('w_category'),
                               w_coverage=self.param('w_coverage'),
                               use_epistemic=self.param('use_epistemic'))
        centre = np.asarray(self.param('workspace_centre'), dtype=float)
        half = np.asarray(self.param('workspace_half'), dtype=float)
        state = {'coverage': Coverage.grid(centre[:2], half, centre[2] + 0.03, 0.05),
                 'smap': SurfaceMap.empty(centre - [half[0] + 0.6, half[1] + 0.6, centre[2]],
                                          centre + [half[0] + 0.6, half[1] + 0.6, 0.6], 0.02)}
        cam, rejected, info, efe_goal, localised = None, [], {}, None, 0
        for k in range(1, max_steps + 1):
            if handle.is_cancel_requested:
                return self._finish(handle, False, 'cancelled', cam, k - 1, 'canceled')
            why = self._ready()
            if why is not None:
                self._diagnostics({}, k, f'waiting: {why}')
                self._wait_sim(self.param('step_period'))
                continue
            with self._lock:
                info_msg = self._info
                q_now = np.array([self._joints[n] for n in ARM_JOINTS])
            try:
                intr = CameraIntrinsics.from_k(info_msg.k, info_msg.width, info_msg.height)
                t_map_base = self.tf.lookup(map_frame, self.param('base_frame'))
                shoulder = self.tf.lookup(map_frame, self.param('shoulder_frame'))
                cam = t_map_base @ self._ik.forward(q_now)
            except (ValueError, TransformError) as exc:
                self._diagnostics({}, k, f'waiting: {exc}')
                self._wait_sim(self.param('step_period'))
                continue
            state['sensor'] = SensorModel(intr, max_range=2.0)
            reach = reach_shell(shoulder[:3, 3] + shoulder[:3, 2] * self.param('shoulder_height'),
                                self.param('reach_min'), self.param('reach_max'))
            started = time.thread_time()
            scene = self._scene()
            self._fuse_frame(state)
            timing = {'fuse_cpu_s': time.thread_time() - started}
            if isinstance(goal, CategoryGoal):
                seen = [o for o in scene.objects if o.in_view
                        and o.category_probs[goal.category] >= self.param('found_probability')]
                if seen:
                    return self._finish(handle, True, f'found: {seen[0].id}', cam, k - 1,
                                        'succeed')
                efe_goal = goal
            else:
                image, view = goal
                if 'frame' in state and efe_goal is not None:
                    depth, rgb, t_frame = state['frame']
                    d, a = pose_error(cam, info['t_map_goal'])
                    d_frame, a_frame = pose_error(t_frame, info['t_map_goal'])
                    # compare a frame taken there: under load the newest frame TF can place
                    # may be from a step or two earlier
                    if max(d, d_frame) < VERIFY_M and max(a, a_frame) < VERIFY_RAD:
                        # frames of another size cannot be compared pixel by pixel: trust
                        # the localisation then
                        if depth.shape != image.depth.shape \
                                or view_agreement(image, depth, rgb) >= 0.5:
                            return self._finish(handle, True, 'found: goal view', cam, k - 1,
                                                'succeed')
                        rejected.append((info['object_id'], info['heading']))
                        efe_goal = None
                # localising costs most of a step (it grows with the surface map): again
                # every few steps, or when it is missing or its object is not believed
                if efe_goal is None or scene.get(efe_goal.object_id) is None \
                        or k - localised >= self.param('localise_every'):
                    before = time.thread_time()
                    efe_goal, info = localise_goal(view, scene, state['smap'],
                                                   state.get('support_z', centre[2]),
                                                   LocaliseConfig(), rejected)
                    timing['localise_cpu_s'] = time.thread_time() - before
                    localised = k
                    if efe_goal is not None and not _reachable(reach, info['t_map_goal']):
                        # a view the arm cannot take can neither be verified nor reached:
                        # the next step tries the next hypothesis
                        rejected.append((info['object_id'], info['heading']))
                        efe_goal = None
            coverage = state['coverage'] if efe_config.use_epistemic else None
            focus = self._focus(scene, efe_goal, info, cam)
            if focus is not None:
                scene, coverage = focus, None
            nxt, out = step(scene, cam, state['sensor'], efe_goal, self._rng, efe_config,
                            self._candidates(),
                            feasible=reach,
                            coverage=coverage)
            before = time.thread_time()
            q, dist, ang, clearance = self._move(t_map_base, cam, nxt, q_now)
            timing['ik_cpu_s'] = time.thread_time() - before
            timing['step_cpu_s'] = time.thread_time() - started
            point = JointTrajectoryPoint(positions=[float(v) for v in q])
            period = self.param('step_period')
            point.time_from_start = DurationMsg(sec=int(0.8 * period),
                                                nanosec=int((0.8 * period % 1.0) * 1e9))
            traj = JointTrajectory(joint_names=list(ARM_JOINTS), points=[point])
            traj.header.stamp = self.get_clock().now().to_msg()
            self.pub_traj.publish(traj)
            terms = dict(out['terms'])
            terms.update(ik_position_error=dist, ik_rotation_error=ang,
                         link_clearance=clearance,
                         goal_localised=float(isinstance(efe_goal, ViewGoal)),
                         goal_match=float(info.get('match', 0.0)),
                         goal_rejected=float(len(rejected)),
                         n_beliefs=float(len(scene.objects)),
                         goal_focus=float(focus is not None), **timing)
            if info.get('t_map_goal') is not None and not isinstance(efe_goal, CategoryGoal):
                terms['goal_distance'], terms['goal_angle'] = pose_error(cam, info['t_map_goal'])
            status = f'step {k}: efe {terms["efe"]:.3f}'
            fb = LookFor.Feedback(step=k, status=status,
                                  target_viewpoint=_pose_msg(out['best'], map_frame,
                                                             traj.header.stamp))
            for key in ('efe', 'pragmatic', 'epistemic', 'info_gain_position',
                        'info_gain_category', 'info_gain_coverage'):
                setattr(fb, key, float(terms[key]))
            handle.publish_feedback(fb)
            self._diagnostics(terms, k, status)
            self._wait_sim(period)
        return self._finish(handle, False, 'max_steps', cam, max_steps, 'abort')

    def destroy_node(self):
        """Release the IK client and the TF listener too."""
        if self._ik is not None:
            self._ik.close()
        if getattr(self, '_tf_listener', None) is not None:
            self._tf_listener.destroy()
        super().destroy_node()


NODE_CLASS = ActiveVision
main = node_main(ActiveVision)

if __name__ == '__main__':
    main()
