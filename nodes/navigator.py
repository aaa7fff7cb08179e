"""navigator: Navigate action server, place-level EFE planning and safe local control.

Action server: navigate (embodied_aif_msgs/Navigate): a goal pose (in the odometry frame; with
``align_heading`` the base turns in place to the pose's heading on arrival, as it always does
for goal_pose, whose heading is the one dragged in RViz), a
place id of the cognitive map, a goal image or EXPLORE. A new goal (action or topic) pre-empts
the running one, which is aborted with the reason "preempted by a new goal".
Subscribes: goal_pose (geometry_msgs/PoseStamped, RViz's "2D Goal Pose"), goal_image
(sensor_msgs/Image: a goal given as a picture), cognitive_map (CognitiveMap, latched) and
cognitive_map/edge_paths (PlaceEdgePathArray, latched), odom (nav_msgs/Odometry), scan
(sensor_msgs/LaserScan), ``world_model_camera``/color/image_raw (sensor_msgs/Image; default
nav_camera, the wide view the world model was trained on), /tf_static (the laser mount),
cognitive_map/overhead (nav_msgs/OccupancyGrid, latched: what the head camera saw above the
scan plane).
Publishes: cmd_vel (geometry_msgs/Twist, reliable), plan (nav_msgs/Path, latched: the places
to visit, then the goal), the edges it finds blocked on ``edge_events_topic``
(embodied_aif_msgs/PlaceEdge, read by cognitive_map), /diagnostics.

A control timer (its own callback group, sim time) steps
:func:`embodied_aif.models.place_planning.navigation_step` on the latest map, odometry and scan:
places are chosen by expected free energy over the places graph, the robot is driven by the
local controller, and an edge without progress is marked blocked and re-planned around (a
detour); the model also drives the last metres from the goal's place to the goal point.
Obstacles above the scan plane (table tops, shelf boards) enter the scan as virtual returns:
with ``overhead_obstacles`` (on by default: without it the demo's robot wedged itself under
a table top while exploring) the overhead layer's occupied cells within ``overhead_range``;
and, where the base stalls with a clear scan, a short virtual obstacle kept for
``stall_memory`` seconds. A pose goal is kept in the odometry frame (it moves with the map's
correction when the map re-localises). Within ``dock_distance`` of a
goal with a heading the base docks (slow, the front's clearance); a docking approach that
stalls is aborted at once ("docking stopped short"), so that whoever chose the stand-point
(the executive, from the manipulator's plan_approach) can choose another. With no goal
and ``explore_when_idle`` it explores. A goal ends with a clear result: reached; or aborted
with a reason (outside the known world, unknown place, unreachable, stuck, lost, no input,
timed out, pre-empted); or cancelled.

Goal images: with ``world_model`` contrastive or likelihood, the learned world model (loaded
once at start) filters its camera (``world_model_camera``) in its own callback group (one
posterior update per ``world_model_period``, the odometry twist as the action) and
remembers each view (image, filtered state, the pose it was seen from;
:mod:`embodied_aif.models.imagination`). A goal image becomes a preference over the map's
places by the goal EFE of their views
(:func:`~embodied_aif.models.imagination.view_place_preference`; ``goal_match``: the
views' observation embeddings or their filtered states); the robot drives to where the
best view of the preferred place was seen from and turns to that view's heading (a goal
with a heading: it docks at the end). With ``world_model`` none, the cognitive map's
hand-made image codes are matched instead (when the map uses them).
"""
from __future__ import annotations

import dataclasses
import math
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from sensor_msgs.msg import Image, LaserScan

from embodied_aif.models import cognitive_map as cm
from embodied_aif.models import place_planning as pp
from embodied_aif.models.local_control import ControllerConfig, scan_points, turn_to_heading
from embodied_aif.models.occupancy import (  # noqa: F401 - re-exported for tests
    clear_ahead,
    fuse_points,
    stall_points,
)
from embodied_aif.models.transforms import quaternion_yaw
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    InputThread,
    Param,
    ParamNode,
    node_main,
    occupancy_view,
)
from embodied_aif.nodes.cognitive_map import (
    WORLD_MODELS,
    LaserMount,
    filter_latest_image,
    finite_odom_pose,
    image_array,
    load_world_model,
    map_from_msg,
    scan_arrays,
    scan_in_base,
    with_paths,
)
from embodied_aif_msgs.action import Navigate
from embodied_aif_msgs.msg import CognitiveMap, PlaceEdge, PlaceEdgePathArray

NO_WORLD_MODEL = 'goal images need the world model'
VIEW_ANGLE = math.radians(30.0)  # views this close in heading (and view_spacing) are one
STALL_COMMAND_AGE_NS = 300_000_000  # a command older than this (sim) may have timed out
STALL_SETTLE_NS = 500_000_000       # a forward command this young (sim) may not be applied yet


@dataclass
class Job:
    """One goal being carried out (an action goal, a goal_pose, or exploring when idle)."""

    kind: str                      # 'goal', 'explore' or 'idle'
    goal: pp.Goal | None
    final_xy: np.ndarray | None    # the exact point to reach after the goal place
    tolerance: float
    start_ns: int
    label: str
    handle: object = None          # ServerGoalHandle of an action goal
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple = ()            # (status, reason): 'succeeded' / 'aborted' / 'canceled'
    blocked: int = 0
    travelled: float = 0.0
    last_xy: np.ndarray | None = None
    lost_ns: int | None = None
    waiting_ns: int | None = None
    status: str = 'starting'
    heading: float | None = None   # turn to this yaw (odom frame) on arrival, if set


class Navigator(ParamNode):
    """Navigate action server driving the base over the cognitive map."""

    PARAMETERS = (
        Param('control_rate', 10.0, 'control periods per second (sim time)', low=1.0,
              high=50.0, read_only=True),
        Param('explore_when_idle', True, 'explore the building while no goal is active'),
        Param('goal_tolerance', 0.3, 'distance to a goal point that counts as reached, m '
              '(when the goal does not say)', low=0.05, high=5.0),
        Param('heading_tolerance', 0.04, 'a goal heading counts as reached within this, rad',
              low=0.01, high=1.0),
        Param('world_margin', 3.0, 'a goal pose farther than this from every known or '
              'hypothesised place is outside the known world, m', low=0.1, high=100.0),
        Param('goal_timeout', 300.0, 'abort a goal not reached after this long, s (sim)',
              low=1.0, high=86400.0),
        Param('stuck_steps', 80, 'control periods without progress before an edge is marked '
              'blocked (or the goal point given up)', low=5, high=10000),
        Param('max_blocked_edges', 8, 'abort a goal after this many edges found blocked',
              low=1, high=1000),
        Param('lost_timeout', 20.0, 'abort when the map stays lost this long, s', low=0.5,
              high=600.0),
        Param('input_timeout', 2.0, 'odom, scan and map older than this stop the robot, s',
              low=0.1, high=60.0),
        Param('max_linear_speed', 0.5, 'local controller speed limit, m/s', low=0.05,
              high=3.0, read_only=True),
        Param('max_angular_speed', 1.2, 'local controller turn-rate limit, rad/s', low=0.1,
              high=6.0, read_only=True),
        Param('robot_radius', 0.36, 'radius of the robot footprint, m', low=0.05, high=2.0,
              read_only=True),
        Param('safety_margin', 0.05, 'extra clearance kept from obstacles, m', low=0.0,
              high=1.0, read_only=True),
        Param('dock_radius', 0.32, "footprint radius near a goal with a heading (docking, "
              "e.g. at a table to pick from it): the base's front half length plus a little, "
              'so its front may come up to an edge the full radius keeps away from', low=0.05,
              high=2.0),
        Param('dock_distance', 1.0, 'the docking footprint applies this close to such a goal, m',
              low=0.0, high=5.0),
        Param('place_radius', 1.5, 'place radius of the cognitive map (same as its node), m',
              low=0.3, high=10.0, read_only=True),
        Param('stall_time', 0.4, 'driving forward without moving this long, with nothing '
              'in the scan to explain it, leaves a virtual obstacle ahead, s', low=0.05,
              high=10.0),
        Param('overhead_obstacles', True, "treat the cognitive map's overhead layer (what the "
              'head camera saw above the scan plane: table tops, shelves) as obstacles',
              read_only=True),
        Param('overhead_range', 2.5, 'overhead obstacles within this of the robot are added '
              'to the scan, m', low=0.5, high=20.0),
        Param('overhead_threshold', 65, 'overhead cells from this occupancy up are obstacles',
              low=1, high=100),
        Param('stall_memory', 60.0, 'how long such a virtual obstacle is kept, s (0 = never '
              'kept)', low=0.0, high=3600.0),
        Param('look_around_speed', 0.4, 'turn rate while lost, rad/s', low=0.0, high=3.0),
        Param('world_model', 'contrastive', 'objective of the learned world model that '
              'recognises goal images (none: the map\'s hand-made image codes)',
              choices=WORLD_MODELS, read_only=True),
        Param('world_model_weights', '', 'world model checkpoint (empty: the shipped weights '
              'of world_model)', read_only=True),
        Param('world_model_period', 0.5, 'seconds (sim) between world model updates from the '
              'world_model_camera (the action period the model was trained with)', low=0.05,
              high=10.0, read_only=True),
        Param('world_model_camera', 'nav_camera', "camera (topic prefix) the world model "
              "observes: the wide navigation camera, like the model's training view; goal "
              'images should come from the same camera', read_only=True),
        Param('goal_match', 'embedding', 'how a goal image is matched to the remembered views: '
              'goal EFE of their filtered states, or of their observation embeddings',
              choices=('state', 'embedding')),
        Param('view_spacing', 0.3, 'a camera view is remembered unless one was seen from '
              'this close (and within 30 deg; standing still, it replaces those), m',
              low=0.05, high=10.0, read_only=True),
        Param('max_views', 400, 'camera views remembered (the oldest are dropped)', low=1,
              high=100000, read_only=True),
        Param('edge_events_topic', 'cognitive_map/edge_events', 'where blocked edges are '
              'reported (cognitive_map subscribes ~/edge_events)', read_only=True),
        Param('odom_frame', 'odom', 'frame of goals, the map and the plan', read_only=True),
        Param('base_frame', 'base_link', 'robot base frame (the laser mount is looked up in '
              '/tf_static)', read_only=True),
    )

    def __init__(self, **kwargs):
        super().__init__('navigator', **kwargs)
        control = ControllerConfig(max_v=self.param('max_linear_speed'),
                                   max_w=self.param('max_angular_speed'),
                                   robot_radius=self.param('robot_radius'),
                                   margin=self.param('safety_margin'))
        self.nav_config = pp.NavigatorConfig(
            map=cm.MapConfig(radius=self.param('place_radius')), control=control,
            stuck_steps=self.param('stuck_steps'), max_blocked=self.param('max_blocked_edges'),
            goal_tolerance=self.param('goal_tolerance'))
        self.lock = threading.RLock()
        self.odom: tuple | None = None       # (pose, receive ns)
        self.scan: tuple | None = None       # (LaserScan, receive ns)
        self.map_msg: tuple | None = None    # (CognitiveMap, receive ns)
        self.paths_msg: PlaceEdgePathArray | None = None
        self.cmap: cm.CognitiveMap | None = None
        self.cmap_source = None
        self.pending_blocked: dict[tuple[int, int], float] = {}  # edge -> failure evidence
        self.state = pp.NavigatorState()
        self.job: Job | None = None
        self.moving = False
        self.last_plan = None
        self.bumps: list[tuple[int, np.ndarray]] = []  # (stamp ns, points): virtual obstacles
        self.overhead = None  # OccupancyView of the cognitive map's overhead layer
        self.commanded_v = 0.0
        self.drive_ns: int | None = None   # when the last drive command was sent
        self.forward_ns: int | None = None  # since when the base is commanded forward
        self.stall_ns: int | None = None
        self.counts = {'succeeded': 0, 'aborted': 0, 'canceled': 0, 'blocked_edges': 0,
                       'invalid_odom': 0, 'rejected_goal_poses': 0, 'stalls': 0}
        self.last_result = ''
        self.status = ('waiting for odom, scan and cognitive_map', DiagnosticStatus.OK)
        self.counts['rejected_goal_images'] = 0
        self.camera: tuple | None = None     # (Image, receive ns)
        self.twist = (0.0, 0.0)              # odometry (linear, angular) velocity
        self.world, self.world_error = load_world_model(
            self, self.param('world_model'), self.param('world_model_weights'))
        self.views = None                    # imagination.ViewMemory, replaced, never mutated
        self.world_state = None              # the filtered world model state
        self.world_seen = None               # the camera message last filtered

        self.laser = LaserMount(self, self.param('base_frame'))
        self.pub_cmd = self.create_publisher(Twist, 'cmd_vel', COMMAND_QOS)
        self.pub_plan = self.create_publisher(Path, 'plan', LATCHED_QOS)
        self.pub_edge = self.create_publisher(PlaceEdge, self.param('edge_events_topic'),
                                              COMMAND_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        inputs = MutuallyExclusiveCallbackGroup()
        # odometry and scan on a thread of their own: served late by the executor of a busy
        # process, they had a turn declared aligned 43 deg short of where the base had got to
        self.sensor_input = InputThread(self, 'sensors')
        self.sensor_input.create_subscription(Odometry, 'odom', self._on_odom, SENSOR_QOS)
        self.sensor_input.create_subscription(LaserScan, 'scan', self._on_scan, SENSOR_QOS)
        self.create_subscription(CognitiveMap, 'cognitive_map', self._on_map, LATCHED_QOS,
                                 callback_group=inputs)
        self.create_subscription(PlaceEdgePathArray, 'cognitive_map/edge_paths',
                                 self._on_paths, LATCHED_QOS, callback_group=inputs)
        if self.param('overhead_obstacles'):
            self.create_subscription(OccupancyGrid, 'cognitive_map/overhead', self._on_overhead,
                                     LATCHED_QOS, callback_group=inputs)
        self.create_subscription(PoseStamped, 'goal_pose', self._on_goal_pose, COMMAND_QOS,
                                 callback_group=inputs)
        self.action = ActionServer(self, Navigate, 'navigate', execute_callback=self._execute,
                                   goal_callback=self._on_goal_request,
                                   cancel_callback=lambda _: CancelResponse.ACCEPT,
                                   callback_group=ReentrantCallbackGroup())
        self.create_timer(1.0 / self.param('control_rate'), self._control,
                          callback_group=MutuallyExclusiveCallbackGroup())
        world = MutuallyExclusiveCallbackGroup()  # world model inference, off the control loop
        if self.world is not None:
            self.create_subscription(Image, f"{self.param('world_model_camera')}/color/image_raw",
                                     self._on_camera, SENSOR_QOS, callback_group=inputs)
            self.create_timer(self.param('world_model_period'), self._observe,
                              callback_group=world)
        self.create_subscription(Image, 'goal_image', self._on_goal_image, COMMAND_QOS,
                                 callback_group=world)
        self.create_timer(1.0, self._publish_diagnostics)

    # -------------------------------------------------------------- inputs (cheap)
    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_odom(self, msg: Odometry) -> None:
        pose = finite_odom_pose(self, msg, self.counts)
        if pose is None:
            return
        self.odom = (pose, float(msg.twist.twist.linear.x), self._now())
        self.twist = (float(msg.twist.twist.linear.x), float(msg.twist.twist.angular.z))

    def _on_scan(self, msg: LaserScan) -> None:
        self.scan = (msg, self._now())

    def _on_overhead(self, msg: OccupancyGrid) -> None:
        frame = msg.header.frame_id.lstrip('/')
        try:
            if frame not in ('', self.param('odom_frame')):
                raise ValueError(f"frame '{frame}' is not the odometry frame "
                                 f"'{self.param('odom_frame')}'")
            self.overhead = occupancy_view(msg)
        except ValueError as exc:
            self.get_logger().warning(f'overhead grid ignored: {exc}', throttle_duration_sec=10.0)

    def _on_camera(self, msg: Image) -> None:
        self.camera = (msg, self._now())

    # -------------------------------------------------------------- world model
    def _observe(self) -> None:
        """Filter the latest head-camera image into the world model state; remember the view."""
        from embodied_aif.models import imagination as im
        odom = self.odom
        image = filter_latest_image(self, self.camera) if odom is not None else None
        if image is None:
            return
        views = self.views if self.views is not None else im.empty_views(self.world)
        self.views = im.remember_view(views, self.world_state.features[0], image, odom[0],
                                      spacing=self.param('view_spacing'), angle=VIEW_ANGLE,
                                      capacity=self.param('max_views'),
                                      replace=abs(self.twist[0]) < 0.02 and
                                      abs(self.twist[1]) < 0.05)

    def _image_job(self, msg: Image, tolerance: float, label: str) -> tuple[Job | None, str]:
        """A goal at the place whose remembered views best explain the image (goal EFE)."""
        from embodied_aif.models import imagination as im
        if self.world is None:
            return None, f'{NO_WORLD_MODEL} ({self.world_error})'
        try:
            goal = im.fit_image(image_array(msg), self.world.config.image_size)
        except ValueError as exc:
            return None, f'bad goal image: {exc}'
        with self.lock:
            cmap = self._map()
        views = self.views
        if cmap is None or cmap.num_places == 0:
            return None, 'no cognitive map yet'
        if views is None or views.size == 0:
            return None, 'no head-camera views remembered yet'
        try:
            pref = im.view_place_preference(self.world, views, goal, cmap.poses,
                                            self.param('place_radius'),
                                            match=self.param('goal_match'))
        except ValueError as exc:
            return None, f'goal image not matched: {exc}'
        # the views' poses and the message's places are both odometry: the goal is where the
        # best view of the preferred place was seen from, facing the way it looked
        k, (x, y, yaw) = pref['place'], pref['goal_pose']
        xy = np.array([x, y])
        return Job('goal', pp.Goal(pose=(x, y)), xy, self._tolerance(tolerance), self._now(),
                   f"{label}: image (place {k}, p={pref['preference'][k]:.2f}, "
                   f"efe {pref['efe'][k]:.2f}; view at ({x:.2f}, {y:.2f}, "
                   f"{math.degrees(yaw):.0f} deg))", heading=float(yaw)), ''

    def _on_goal_image(self, msg: Image) -> None:
        if self.param('world_model') == 'none':  # the hand-made codes, as for the action
            with self.lock:
                job, why = self._job_from_action(Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE,
                                                               goal_image=msg))
        else:
            job, why = self._image_job(msg, 0.0, 'goal_image topic')
        if job is None:
            self.counts['rejected_goal_images'] += 1
            self.get_logger().error(f'goal_image rejected: {why}')
            self.last_result = f'goal_image rejected: {why}'
            return
        self._start(job)

    def _on_map(self, msg: CognitiveMap) -> None:
        self.map_msg = (msg, self._now())

    def _on_paths(self, msg: PlaceEdgePathArray) -> None:
        self.paths_msg = msg

    def _on_goal_pose(self, msg: PoseStamped) -> None:
        # RViz's "2D Goal Pose" carries the heading the user dragged: the base turns to it
        job, why = self._goal_job_from_pose(msg, 0.0, 'goal_pose topic', align=True)
        if job is None:
            self.counts['rejected_goal_poses'] += 1
            self.get_logger().error(f'goal_pose rejected: {why}')
            self.last_result = f'goal_pose rejected: {why}'
            return
        self._start(job)

    # -------------------------------------------------------------- goals
    def _goal_job_from_pose(self, pose: PoseStamped, tolerance: float, label: str,
                            align: bool = False):
        frame = pose.header.frame_id.lstrip('/')
        if frame not in ('', self.param('odom_frame')):
            return None, (f"goal frame '{frame}' is not the odometry frame "
                          f"'{self.param('odom_frame')}' (no TF lookup here)")
        xy = np.array([pose.pose.position.x, pose.pose.position.y], dtype=float)
        if not np.all(np.isfinite(xy)):
            return None, f'goal position {xy.tolist()} is not finite'
        heading = None
        if align:
            o = pose.pose.orientation
            try:
                heading = quaternion_yaw([o.x, o.y, o.z, o.w])
            except ValueError as exc:
                return None, f'goal heading: {exc}'
        text = f'{label}: pose ({xy[0]:.2f}, {xy[1]:.2f}' + \
            (f', heading {math.degrees(heading):.0f} deg)' if heading is not None else ')')
        return Job('goal', pp.Goal(pose=tuple(xy)), xy, self._tolerance(tolerance),
                   self._now(), text, heading=heading), ''

    def _tolerance(self, requested: float) -> float:
        ok = math.isfinite(requested) and requested > 0
        return float(requested) if ok else float(self.param('goal_tolerance'))

    def _on_goal_request(self, goal: Navigate.Goal) -> GoalResponse:
        return GoalResponse.ACCEPT  # bad goals are accepted and aborted with a reason

    def _job_from_action(self, request: Navigate.Goal) -> tuple[Job | None, str]:
        now = self._now()
        if request.mode == Navigate.Goal.GOAL_POSE:
            return self._goal_job_from_pose(request.pose, request.tolerance, 'navigate',
                                            align=request.align_heading)
        if request.mode == Navigate.Goal.EXPLORE:
            return Job('explore', None, None, 0.0, now, 'navigate: explore'), ''
        if request.mode == Navigate.Goal.GOAL_IMAGE and self.param('world_model') != 'none':
            return self._image_job(request.goal_image, request.tolerance, 'navigate')
        cmap = self._map()
        if cmap is None or cmap.num_places == 0:
            return None, 'no cognitive map yet'
        if request.mode == Navigate.Goal.GOAL_PLACE:
            k = int(request.place_id)
            if not 0 <= k < cmap.num_places:
                return None, f'unknown place {k}: the map has places 0..{cmap.num_places - 1}'
            return Job('goal', pp.Goal(place=k), cmap.poses[k, :2].copy(),
                       self._tolerance(request.tolerance), now, f'navigate: place {k}'), ''
        if request.mode == Navigate.Goal.GOAL_IMAGE:
            try:
                code = cm.image_code(image_array(request.goal_image))
            except ValueError as exc:
                return None, f'bad goal image: {exc}'
            if cmap.codes.shape[1] != code.size or not np.any(cmap.visits > 0):
                return None, NO_WORLD_MODEL
            return Job('goal', pp.Goal(code=code), None, self._tolerance(request.tolerance),
                       now, 'navigate: image'), ''
        return None, f'unknown mode {request.mode}'

    def _execute(self, goal_handle) -> Navigate.Result:
        request = goal_handle.request
        image = request.mode == Navigate.Goal.GOAL_IMAGE and self.param('world_model') != 'none'
        if image:  # world model inference outside the lock: the control loop keeps running
            job, why = self._job_from_action(request)
        with self.lock:
            if not image:
                job, why = self._job_from_action(request)
            if job is not None:
                job.handle = goal_handle
                self._start(job)
        if job is None:
            self.counts['aborted'] += 1
            self.last_result = f'aborted: {why}'
            self.get_logger().error(f'navigate goal aborted: {why}')
            goal_handle.abort()
            return Navigate.Result(success=False, reason=why, reached_place=-1)
        while not job.done.wait(0.5):  # woken by the control loop; the timeout checks shutdown
            if not self.context.ok() or self.closing.is_set():
                job.outcome = ('aborted', 'the navigator is shutting down')
                break
        status, reason = job.outcome
        result = Navigate.Result(success=status == 'succeeded', reason=reason,
                                 reached_place=self.cmap.current if self.cmap is not None else -1,
                                 distance_travelled=float(job.travelled))
        if status == 'succeeded':
            goal_handle.succeed()
        elif status == 'canceled':
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return result

    def _start(self, job: Job) -> None:
        with self.lock:
            if self.job is not None and self.job.kind != 'idle':
                self._finish(self.job, 'aborted', f'preempted by a new goal ({job.label})')
            self.job = job
            self.state = pp.NavigatorState()
            job.best_ns = job.start_ns
            self.get_logger().info(f'new goal: {job.label}')

    def _finish(self, job: Job, status: str, reason: str) -> None:
        with self.lock:
            if job.done.is_set():
                return
            job.outcome = (status, reason)
            if job.kind != 'idle':
                self.counts[status] += 1
                self.last_result = f'{status}: {job.label}: {reason}'
                if status == 'succeeded':
                    self.get_logger().info(self.last_result)
                else:
                    self.get_logger().warning(self.last_result)
            if self.job is job:
                self.job = None
                self.state = pp.NavigatorState()
            self._stop_base()
            job.done.set()

    # -------------------------------------------------------------- control loop
    def _fresh(self, received) -> bool:
        return received is not None and \
            self._now() - received[-1] <= self.param('input_timeout') * 1e9

    def _map(self) -> cm.CognitiveMap | None:
        """The latest map as a model map, with the blocked edges not yet in it re-applied."""
        if self.map_msg is None:
            return None
        msg = self.map_msg[0]
        source = (msg, self.paths_msg)
        if self.cmap_source is None or any(a is not b for a, b in zip(self.cmap_source, source)):
            try:
                cmap = with_paths(map_from_msg(msg), self.paths_msg)
            except ValueError as exc:
                self.status = (f'cognitive_map ignored: {exc}', DiagnosticStatus.ERROR)
                return self.cmap
            for (i, j), failure in list(self.pending_blocked.items()):
                edge = cmap.edge(i, j)
                if edge is None or edge.failure >= failure - 1e-3:
                    del self.pending_blocked[(i, j)]  # the map has it (or lost the edge)
                else:
                    cmap = cm.mark_blocked(cmap, i, j, self.nav_config.map)
            self.cmap, self.cmap_source = cmap, source
        return self.cmap

    def _stop_base(self) -> None:
        if self.moving and self.context.ok():  # at shutdown the context may be gone already
            self.pub_cmd.publish(Twist())
        self.moving = False
        self.commanded_v = 0.0
        self.forward_ns = None

    def _drive(self, v: float, w: float) -> None:
        cmd = Twist()
        cmd.linear.x, cmd.angular.z = float(v), float(w)
        self.pub_cmd.publish(cmd)
        self.moving = True
        now = self._now()
        if v < 0.05:
            self.forward_ns = None
        elif self.forward_ns is None:
            self.forward_ns = now
        self.commanded_v = float(v)
        self.drive_ns = now

    def _control(self) -> None:
        with self.lock:
            job = self.job
            if job is None:
                if not self.param('explore_when_idle'):
                    return
                job = self.job = Job('idle', None, None, 0.0, self._now(), 'exploring (idle)')
            if job.handle is not None and job.handle.is_cancel_requested:
                self._finish(job, 'canceled', 'cancelled by the client')
                return
            try:
                self._step(job)
            except Exception as exc:  # noqa: BLE001 - end the goal with the reason, keep running
                why = f'navigation failed: {type(exc).__name__}: {exc}'
                self.status = (why, DiagnosticStatus.ERROR)
                self.get_logger().error(why, throttle_duration_sec=2.0)
                self._finish(job, 'aborted', why)

    def _step(self, job: Job) -> None:
        now = self._now()
        if job.kind != 'idle' and now - job.start_ns > self.param('goal_timeout') * 1e9:
            self._finish(job, 'aborted', f"timed out after {self.param('goal_timeout'):.0f} s "
                         f'({job.status})')
            return
        missing = [name for name, value in (('odom', self.odom), ('scan', self.scan),
                                            ('cognitive_map', self.map_msg))
                   if not self._fresh(value) and not (name == 'cognitive_map' and
                                                      value is not None)]
        cmap = self._map()
        if missing or cmap is None or cmap.num_places == 0:
            self._stop_base()
            what = ', '.join(missing) or 'a place in the cognitive map'
            self.status = (f'waiting for {what}', DiagnosticStatus.WARN if job.kind != 'idle'
                           else DiagnosticStatus.OK)
            job.waiting_ns = job.waiting_ns or now
            if job.kind != 'idle' and now - job.waiting_ns > 2 * self.param('input_timeout') \
                    * 1e9:
                self._finish(job, 'aborted', f'no input: waiting for {what}')
            return
        job.waiting_ns = None
        pose = self.odom[0]
        if job.last_xy is not None:
            job.travelled += float(np.linalg.norm(pose[:2] - job.last_xy))
        job.last_xy = pose[:2].copy()
        if not self._check_world(job, cmap):
            return
        scan = self.scan[0]
        ranges, angles = scan_arrays(scan)
        ranges = scan_in_base(ranges, angles, self.laser.pose(scan.header.frame_id))
        ranges = self._with_stalls(now, pose, ranges, angles, scan.range_max)
        if cmap.lost:
            self._lost(job, now)
            return
        job.lost_ns = None
        before = self.state
        config = self.nav_config if job.tolerance <= 0 else \
            dataclasses.replace(self.nav_config, goal_tolerance=job.tolerance)
        docking = job.heading is not None and job.final_xy is not None and \
            np.linalg.norm(pose[:2] - job.final_xy) <= self.param('dock_distance')
        if docking:
            # docking: slow, with the front's clearance instead of the full circle's
            control = dataclasses.replace(config.control, robot_radius=self.param('dock_radius'),
                                          margin=0.0, max_v=min(config.control.max_v, 0.2))
            config = dataclasses.replace(config, control=control)
        cmap2, state, (v, w), info = pp.navigation_step(
            cmap, before, pose, ranges, angles, scan.range_min, scan.range_max,
            self._map_goal(job, cmap), config)
        self.state, job.status = state, info['status']
        status, reason = info['status'], info.get('reason', '')
        if state.last_plan is not None and state.last_plan is not before.last_plan:
            self._publish_plan(cmap, state.last_plan, job)
        if cmap2 is not cmap:
            self._report_blocked(job, cmap, cmap2, reason)
        self.status = (f'{job.label}: {status} {reason}'.strip(), DiagnosticStatus.OK)
        self._feedback(job, cmap, pose, info)
        if docking and status == 'blocked' and info.get('final_approach'):
            # a stand-point the front cannot get to (something new on the way or at it): say
            # so at once, whoever sent it picks another; no detour through distant places
            near = scan_points(ranges, angles, scan.range_min, scan.range_max)
            what = ''
            if len(near):
                k = int(np.argmin(np.linalg.norm(near, axis=1)))
                what = (f'; nearest return {np.linalg.norm(near[k]):.2f} m at '
                        f'{math.degrees(math.atan2(near[k][1], near[k][0])):.0f} deg')
            self._finish(job, 'aborted', f'unreachable: docking stopped short: {reason}{what}')
        elif status == 'goal_reached' and job.heading is not None:
            w, aligned = turn_to_heading(float(pose[2]), job.heading,
                                         self.param('max_angular_speed'),
                                         self.param('heading_tolerance'))
            if aligned:
                self._finish(job, 'succeeded', f'goal reached at heading '
                             f'{math.degrees(float(pose[2])):.0f} deg')
            else:
                job.status = 'turning to the goal heading'
                self._drive(0.0, w)
        elif status == 'goal_reached':
            self._finish(job, 'succeeded', reason or 'goal reached')
        elif status == 'goal_unreachable':
            self._finish(job, 'aborted', f'unreachable: {reason}')
        elif status == 'explored' and job.kind == 'explore':
            self._finish(job, 'succeeded', f'explored: {cmap.num_places} places; {reason}')
        elif status in pp.TERMINAL_STATUSES or (v == 0.0 and w == 0.0):
            self._stop_base()
        else:
            self._drive(v, w)

    def _with_stalls(self, now: int, pose, ranges, angles, range_max: float) -> np.ndarray:
        """Add virtual obstacles where the base stalled with a clear scan; return the ranges."""
        memory = self.param('stall_memory') * 1e9
        self.bumps = [(t, pts) for t, pts in self.bumps if now - t <= memory]
        speed = self.odom[1]
        # a stall only while the command is live and has had time to reach the base: on a
        # busy machine a late control period finds the base stopped by the bridge's command
        # timeout, and the first odometry after a start from rest may predate the command
        live = self.drive_ns is not None and now - self.drive_ns <= STALL_COMMAND_AGE_NS and \
            self.odom[2] > self.drive_ns and self.forward_ns is not None and \
            now - self.forward_ns >= STALL_SETTLE_NS
        if self.commanded_v < 0.05 or abs(speed) > 0.2 * self.commanded_v or not live:
            self.stall_ns = None
        else:
            self.stall_ns = self.stall_ns or now
            if now - self.stall_ns >= self.param('stall_time') * 1e9:
                self.stall_ns = None
                reach = self.param('robot_radius') + self.param('safety_margin')
                if memory > 0 and clear_ahead(ranges, angles, reach + 0.15):
                    self.bumps.append((now, stall_points(pose, reach + 0.02, 0.2)))
                    self.counts['stalls'] += 1
                    self.get_logger().warning(
                        f'base stalled at ({pose[0]:.2f}, {pose[1]:.2f}) with a clear scan: '
                        'an obstacle the laser does not see; kept as a virtual obstacle',
                        throttle_duration_sec=2.0)
        points = [pts for _, pts in self.bumps]
        if self.overhead is not None:  # table tops and shelves the scan plane passes under
            points.append(self.overhead.occupied_points(
                float(pose[0]), float(pose[1]), self.param('overhead_range'),
                self.param('overhead_threshold')))
        if not points:
            return ranges
        return fuse_points(ranges, angles, pose, np.vstack(points), range_max)

    @staticmethod
    def _map_goal(job: Job, cmap: cm.CognitiveMap):
        """The job's goal for the planner: a pose goal, given in odom, in the map frame now.

        Odometry is continuous where the map's correction (offset) may jump when the map
        re-localises; the goal stays where odometry put it, so it moves with the correction.
        """
        if job.goal is None or job.goal.pose is None or job.final_xy is None:
            return job.goal
        return pp.Goal(pose=tuple(float(v) for v in np.asarray(job.final_xy) + cmap.offset[:2]))

    def _check_world(self, job: Job, cmap: cm.CognitiveMap) -> bool:
        goal = self._map_goal(job, cmap)
        if goal is None or goal.pose is None:
            return True
        gap = float(np.min(np.linalg.norm(cmap.poses[:, :2] - np.asarray(goal.pose), axis=1)))
        if gap > self.param('world_margin'):
            self._finish(job, 'aborted', f'goal ({job.goal.pose[0]:.2f}, {job.goal.pose[1]:.2f})'
                         f' is outside the known world: {gap:.2f} m from the nearest known or '
                         f"hypothesised place (limit {self.param('world_margin'):.2f} m)")
            return False
        return True

    def _lost(self, job: Job, now: int) -> None:
        job.lost_ns = job.lost_ns or now
        job.status = 'lost'
        self.status = ('lost: the cognitive map is not localised; looking around',
                       DiagnosticStatus.WARN)
        if job.kind != 'idle' and now - job.lost_ns > self.param('lost_timeout') * 1e9:
            self._finish(job, 'aborted', f"lost: not localised on the map for "
                         f"{self.param('lost_timeout'):.0f} s (odometry jump?)")
            return
        self._drive(0.0, self.param('look_around_speed'))

    def _report_blocked(self, job: Job, cmap, cmap2, reason: str) -> None:
        """Report the edges the model just marked blocked (more failure evidence) to the map."""
        for key, edge in cmap2.edges.items():
            old = cmap.edges.get(key)
            if old is not None and edge.failure <= old.failure + 1e-9:
                continue
            job.blocked += 1
            self.counts['blocked_edges'] += 1
            self.pending_blocked[key] = edge.failure
            self.pub_edge.publish(PlaceEdge(from_id=key[0], to_id=key[1],
                                            kind=PlaceEdge.BLOCKED, confidence=0.0, count=0.0,
                                            length=0.0))
            self.get_logger().warning(f'edge {key[0]}--{key[1]} blocked ({reason}); re-planning')
        self.cmap = cmap2

    def _publish_plan(self, cmap: cm.CognitiveMap, plan: pp.PlacePlan, job: Job) -> None:
        msg = Path()
        msg.header.frame_id = self.param('odom_frame')
        msg.header.stamp = self.get_clock().now().to_msg()
        points = [cmap.poses[k, :2] for k in plan.path]
        if job.final_xy is not None and plan.status in ('to_goal', 'goal_reached'):
            points.append(job.final_xy)
        for xy in points:
            p = PoseStamped()
            p.header = msg.header
            p.pose.position.x, p.pose.position.y = float(xy[0]), float(xy[1])
            p.pose.orientation.w = 1.0
            msg.poses.append(p)
        self.pub_plan.publish(msg)
        self.last_plan = plan

    def _feedback(self, job: Job, cmap: cm.CognitiveMap, pose, info: dict) -> None:
        if job.handle is None:
            return
        fb = Navigate.Feedback()
        fb.current_pose.position.x, fb.current_pose.position.y = float(pose[0]), float(pose[1])
        fb.current_pose.orientation.z = math.sin(pose[2] / 2)
        fb.current_pose.orientation.w = math.cos(pose[2] / 2)
        fb.current_place = int(cmap.current)
        target = job.final_xy if job.final_xy is not None else (
            cmap.poses[self.state.target, :2] if 0 <= self.state.target < cmap.num_places
            else pose[:2])
        fb.distance_remaining = float(np.linalg.norm(np.asarray(target) - pose[:2]))
        fb.status = f"{info['status']}: {info.get('reason', '')}".strip(': ')
        job.handle.publish_feedback(fb)

    # -------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        message, level = self.status
        job = self.job
        values = {'goal': job.label if job else 'none', 'job_status': job.status if job else '',
                  'target_place': self.state.target,
                  'map_places': self.cmap.num_places if self.cmap is not None else 0,
                  'world_model': self.param('world_model') if self.world is not None
                  else self.world_error,
                  'views': self.views.size if self.views is not None else 0,
                  'last_result': self.last_result, **self.counts}
        status = DiagnosticStatus(level=level, name=self.get_fully_qualified_name(),
                                  message=message[:500],
                                  values=[KeyValue(key=k, value=str(v)[:500])
                                          for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def abort(self, reason: str) -> None:
        """Abort the running goal with ``reason`` (releasing its action thread) and stop."""
        with self.lock:
            if self.job is not None:
                self._finish(self.job, 'aborted', reason)

    def destroy_node(self):
        """Abort the running goal, stop the base, destroy the node."""
        self.abort('the navigator is shutting down')
        if getattr(self, 'sensor_input', None) is not None:
            self.sensor_input.destroy()
        return super().destroy_node()


NODE_CLASS = Navigator
main = node_main(Navigator)

if __name__ == '__main__':
    sys.exit(main())
