"""perception: RGB-D frames in, object beliefs (category, position, existence) out.

Subscribes (sensor QoS, relative to the node's namespace; ``camera`` is the prefix):
  {camera}/color/image_raw      sensor_msgs/Image rgb8
  {camera}/depth/image_rect     sensor_msgs/Image 32FC1, metres, registered to the colour image
  {camera}/camera_info          sensor_msgs/CameraInfo
  /tf, /tf_static               tf2_msgs/TFMessage (a small buffer of our own, nodes/_tf.py)
  held_object                   std_msgs/String, latched (the manipulator's: the id of the
                                object in the hand, '' for none)
The three camera messages are paired by identical header stamps. The newest complete frame is
handed to a worker (its own mutually exclusive callback group, woken by a guard condition):
frames that arrive while it is busy replace the waiting one (latest wins) and are counted as
skipped. The worker looks up map_frame <- optical frame at the frame's stamp (waiting up to
``tf_timeout`` for transforms still on their way), segments the frame
(models.segmentation.segment_frame), turns clusters into detections and updates the scene
beliefs (models.scene_beliefs.update, with the depth image so occluded objects are not missed).
While the hand holds an object its track follows ``held_frame`` (models.scene_beliefs.carried,
keeping the object's offset from the hand when the hold began) and is neither expected in
view nor matched: the hand hides it and the self filter drops it. Put down, it is seen
where its track already is, so it keeps its id from the pick to the place.

Publishes, stamped with the frame's stamp, in map_frame:
  objects                       embodied_aif_msgs/ObjectBeliefArray
  ~/markers                     visualization_msgs/MarkerArray: a box, a label (most probable
                                category and its probability) and the 3-sigma position
                                ellipsoid per object; DELETE markers for objects that are gone
  ~/points                      sensor_msgs/PointCloud2 of the object points (x, y, z, rgb)
  surfaces                      embodied_aif_msgs/ObjectBeliefArray of the support surfaces
                                (table tops, shelf boards, trays: the horizontal planes the
                                segmentation removed, grown over frames by models.surfaces),
                                each an ObjectBelief of category 'surface': the centre of its
                                top, its yaw, extent (length, width, 0); also as flat boxes on
                                ~/markers (namespace 'surface')
  /diagnostics                  diagnostic_msgs/DiagnosticArray: latency, objects tracked,
                                frames processed and skipped, by cause, tracks born, matched,
                                removed and whose shape belief a view restarted

A bad frame (missing depth, no valid depth, bad or absent camera_info, an encoding other than
rgb8 / 32FC1, a frame TF cannot resolve) is skipped with a throttled warning naming the cause;
the beliefs are kept. A backward jump of the clock (simulation reset) clears the transforms and
the beliefs.

Categories and shapes: each cluster is cropped from the frame (the box of its pixels) and the
crops of a frame go through the object model's encoder in one batch (models.object_model,
weights from the ``object_model`` parameter, empty = the shipped models/weights/object_model.pt,
loaded once); its q(category) becomes a tempered likelihood (scene_beliefs.classifier_likelihood,
less trusted for clusters of fewer than ``category_full_pixels`` pixels), times the
likelihood of the cluster's measured height under each category's height range
(scene_beliefs.height_likelihood, tempered by ``height_temperature``), fused over views in
the beliefs, and its q(shape) is fused over views into each object's shape belief
(scene_beliefs.fuse_shape), whose mean is the message's ``shape_code``. A missing or corrupt
weights file is logged as an error and perception goes on with uniform category likelihoods
and empty shape codes.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker, MarkerArray

from embodied_aif.models.object_model import CheckpointError, ObjectClassifier
from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    SensorModel,
    belief_summary,
    carried,
    detection_from_cluster,
    empty_scene,
    update,
)
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    backproject,
    segment_frame,
)
from embodied_aif.models.surfaces import SurfaceConfig, SurfaceMap, plane_points
from embodied_aif.models.transforms import boxes_from_values, covariance_ellipsoid
from embodied_aif.nodes._common import (
    LATCHED_QOS,
    SENSOR_QOS,
    Param,
    ParamNode,
    image_pixels,
    node_main,
)
from embodied_aif.nodes._tf import NS, TfBuffer, TfListener, TransformError
from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

CATEGORY_NAMES = ['can', 'box', 'mug', 'bottle', 'bowl', 'duck', 'teddy', 'lego', 'jenga',
                  'mug_mesh']
SYNC_QUEUE = 6          # stamps waiting for their other parts before the oldest is dropped
WARN_PERIOD_S = 5.0     # throttle of the skip warnings, per cause (node clock)
JUMP_BACK_S = 1.0       # a frame this much older than the beliefs: the clock jumped back
PARTS = ('color', 'depth', 'info')
# The simulated robot's rigid body in base_link (sim/robot.py), 3 cm beyond its surfaces: the
# base box, the head camera's mast, and the space the arm's first two links turn in (their
# housings reach past the self filter's radius around the link origins).
SELF_BOXES = (-0.31, -0.24, 0.0, 0.31, 0.24, 0.34,
              -0.28, -0.06, 0.30, -0.16, 0.06, 1.30,
              -0.01, -0.13, 0.30, 0.25, 0.13, 0.76)
PART_TOPICS = {'color': 'color/image_raw', 'depth': 'depth/image_rect', 'info': 'camera_info'}
QUIET = ('busy', 'rate')  # normal under load: counted, never warned about
POINT_FIELDS = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1)
                for k, n in enumerate(('x', 'y', 'z', 'rgb'))]
POINT_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('rgb', '<u4')])


@dataclass
class Frame:
    """The three messages of one camera frame (one stamp)."""

    stamp_ns: int
    color: Image | None = None
    depth: Image | None = None
    info: CameraInfo | None = None

    def missing(self) -> list[str]:
        """Names of the parts not received yet."""
        return [p for p in PARTS if getattr(self, p) is None]


@dataclass
class Stats:
    """Counters and timings for /diagnostics."""

    received: int = 0
    processed: int = 0
    skipped: dict = field(default_factory=dict)
    last_skip: str = ''
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    age_ms: deque = field(default_factory=lambda: deque(maxlen=100))


class FrameError(Exception):
    """A frame that cannot be used: ``cause`` (a short key) and a message naming why."""

    def __init__(self, cause: str, message: str):
        super().__init__(message)
        self.cause = cause


def _boxes_problem(values) -> str | None:
    try:
        boxes_from_values(values)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _stamp_msg(ns: int) -> Time:
    return Time(sec=ns // NS, nanosec=ns % NS)


def _image_array(msg: Image, encoding: str, dtype: str, channels: int) -> np.ndarray:
    """The pixels of an Image as (H, W) or (H, W, C); FrameError on a wrong encoding or size."""
    if msg.encoding != encoding:
        raise FrameError('encoding', f'{msg.encoding!r} image where {encoding} is required')
    try:
        return image_pixels(msg, encoding, dtype, channels)
    except ValueError as exc:
        raise FrameError('bad_image', str(exc)) from exc


class Perception(ParamNode):
    """Segments RGB-D frames and keeps scene beliefs; publishes them with markers and points."""

    PARAMETERS = (
        Param('camera', 'head_camera', 'topic prefix of the RGB-D camera', read_only=True),
        Param('map_frame', 'odom', 'frame of the beliefs and outputs (odom until a map exists)',
              read_only=True),
        Param('category_names', list(CATEGORY_NAMES), 'object categories of the beliefs',
              read_only=True),
        Param('max_rate', 5.0, 'most frames processed per second (node clock), Hz', low=0.1,
              high=60.0),
        Param('tf_tolerance', 0.0, 'a transform this close to a stamp outside the TF history '
              'is used as is, s (0: the frame waits for the transform at its stamp; an older '
              'one places a moving camera where it was)', low=0.0, high=1.0),
        Param('tf_max_gap', 0.25, 'a frame whose stamp falls in a hole of the TF history '
              'longer than this is skipped, not placed with an interpolated pose, s (0: any)',
              low=0.0, high=10.0),
        Param('tf_timeout', 3.0, 'how long a frame waits for its transforms, s (in the demo '
              'the transforms reached this node up to 2.9 s after the images)', low=0.0,
              high=10.0),
        Param('min_depth', 0.05, 'nearest depth used, m', low=0.0, high=10.0),
        Param('max_depth', 3.0, 'farthest depth used (and sensor range), m', low=0.2,
              high=20.0),
        Param('voxel_size', 0.01, 'voxel grid of the segmentation, m', low=0.001, high=0.2),
        Param('plane_distance', 0.012, 'RANSAC plane inlier distance, m', low=0.001, high=0.1),
        Param('max_planes', 6, 'most planes (walls, floor, tables) removed', low=0, high=20),
        Param('cluster_eps', 0.025, 'DBSCAN neighbourhood radius, m', low=0.002, high=0.5),
        Param('min_cluster_voxels', 8, 'smallest object, voxels', low=1, high=100000),
        Param('max_cluster_extent', 0.5, 'largest object (bigger is furniture), m', low=0.01,
              high=5.0),
        Param('band_length', 0.1, 'a cluster at most band_height tall and at least this long '
              '(m) and band_aspect times longer than wide, or at most band_width wide, is a '
              'band of furniture (a side or end of a tray rim), not an object', low=0.01,
              high=5.0),
        Param('band_aspect', 3.0, 'length over width of a band of furniture', low=1.0,
              high=100.0),
        Param('band_width', 0.015, 'widest band of furniture of any length, m', low=0.0,
              high=1.0),
        Param('band_height', 0.07, 'tallest band of furniture, m (0: none)', low=0.0, high=1.0),
        Param('seed', 0, 'seed of the RANSAC generator', low=0, high=2**31 - 1,
              read_only=True),
        Param('publish_points', True, 'publish the object points on ~/points'),
        Param('self_filter_frames', ['panda_link0', 'panda_link2', 'panda_link3', 'panda_link4',
                                     'panda_link5', 'panda_link6', 'panda_link7', 'panda_hand',
                                     'panda_leftfinger'],
              'robot frames along the arm, in chain order: depth within self_filter_radius of '
              'the polyline through them is the robot, not an object ([""]: no filter)'),
        Param('self_filter_radius', 0.1, 'radius of the robot self filter around the chain, m',
              low=0.0, high=1.0),
        Param('self_filter_base_frame', 'base_link', 'frame of self_filter_boxes (empty: no '
              'boxes)'),
        Param('self_filter_boxes', list(SELF_BOXES), "the robot's rigid body as boxes in "
              'self_filter_base_frame, [xmin, ymin, zmin, xmax, ymax, zmax] per box: depth '
              'inside them is the robot, not an object', validate=_boxes_problem),
        Param('object_model', '', 'object model weights (empty: the shipped default); '
              'missing or corrupt: uniform category likelihoods', read_only=True),
        Param('category_temperature', 0.5, 'tempering of the per-view category likelihood '
              '(1: trust each view fully)', low=0.01, high=1.0),
        Param('category_floor', 0.02, 'mixing of each view\'s category likelihood with '
              'uniform', low=0.0, high=0.99),
        Param('inference_threads', 1, 'torch threads of the object model (0: torch\'s '
              'default)', low=0, high=64, read_only=True),
        Param('category_full_pixels', 150.0, 'clusters with fewer pixels get a '
              'proportionally lower temperature (0: off)', low=0.0, high=1e6),
        Param('height_temperature', 0.5, 'tempering of the per-view likelihood of a '
              'cluster\'s measured height under the categories\' height ranges (0: off)',
              low=0.0, high=1.0),
        Param('surface_cell', 0.04, 'grid of the support surfaces, m', low=0.01, high=0.5,
              read_only=True),
        Param('surface_min_height', 0.15, 'lowest support surface (the floor is not one), m',
              low=0.0, high=5.0, read_only=True),
        Param('held_frame', 'panda_grasptarget', 'frame between the fingers: the track of the '
              'object named on held_object follows it (empty: not followed)'),
    )

    def __init__(self, **kwargs):
        super().__init__('perception', **kwargs)
        self._names = tuple(self.param('category_names'))
        if not self._names:
            raise ValueError('category_names must not be empty')
        self._lock = threading.Lock()
        self._pending: dict[int, Frame] = {}
        self._ready: Frame | None = None
        self._reset_requested = False
        self._warned: dict[str, float] = {}
        self._held = (0, '')  # (count of held_object messages, the id held: '' none)
        self._stats = Stats()
        # worker state (only touched in the worker's callback group)
        self._scene = empty_scene(self._names)
        self._rng = np.random.default_rng(self.param('seed'))
        self._last_processed_ns: int | None = None
        self._held_offset: tuple[int, str, np.ndarray] | None = None  # in held_frame
        self._marker_ids: dict[str, int] = {}
        self._next_marker = 0
        self._surface_markers: set[int] = set()  # ids of the surface markers last published
        self._surfaces = SurfaceMap(SurfaceConfig(cell=self.param('surface_cell'),
                                                  min_height=self.param('surface_min_height')))
        self._classifier: ObjectClassifier | None = None
        try:
            self._classifier = ObjectClassifier.from_file(
                self.param('object_model'), self._names, self.param('inference_threads'))
        except CheckpointError as exc:
            self.get_logger().error(f'object model not loaded, categories stay uniform: {exc}')

        self.tf = TfBuffer(cache_s=10.0)
        self.pub_objects = self.create_publisher(ObjectBeliefArray, 'objects', 10)
        self.pub_surfaces = self.create_publisher(ObjectBeliefArray, 'surfaces', LATCHED_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, '~/markers', 10)
        self.pub_points = self.create_publisher(PointCloud2, '~/points', SENSOR_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        # cheap, lock-protected callbacks run concurrently; the heavy worker one at a time
        inputs, work = ReentrantCallbackGroup(), MutuallyExclusiveCallbackGroup()
        self._wake = self.create_guard_condition(self._work, work)
        self._tf_listener = TfListener(self, self.tf, on_update=self._on_tf,
                                       callback_group=inputs)
        self.create_subscription(String, 'held_object', self._on_held, LATCHED_QOS,
                                 callback_group=inputs)
        camera = self.param('camera')
        for part, kind in (('color', Image), ('depth', Image), ('info', CameraInfo)):
            self.create_subscription(kind, f'{camera}/{PART_TOPICS[part]}',
                                     self._receiver(part), SENSOR_QOS, callback_group=inputs)
        self._jump = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-JUMP_BACK_S),
                          on_clock_change=False), post_callback=self._on_clock_jump)

    # ------------------------------------------------------------------ callbacks (cheap)
    def _receiver(self, part: str):
        def callback(msg) -> None:
            self._on_part(part, msg)
        return callback

    def _on_part(self, part: str, msg) -> None:
        """Pair the camera messages by identical stamps; hand complete frames to the worker."""
        stamp_ns = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        dropped = []
        with self._lock:
            frame = self._pending.setdefault(stamp_ns, Frame(stamp_ns))
            setattr(frame, part, msg)
            if frame.missing():
                while len(self._pending) > SYNC_QUEUE:
                    dropped.append(self._pending.pop(min(self._pending)))
                complete = None
            else:
                complete = self._pending.pop(stamp_ns)
                dropped += [self._pending.pop(t) for t in sorted(self._pending) if t < stamp_ns]
                self._stats.received += 1
                if self._ready is not None:
                    self._count('busy', 'the worker was busy: a newer frame replaced it')
                self._ready = complete
        for old in dropped:
            missing = ', '.join(f'{self.param("camera")}/{PART_TOPICS[p]}'
                                for p in old.missing())
            self._skip(FrameError('incomplete', f'frame at {old.stamp_ns / NS:.3f} s never got '
                                  f'{missing} with the same stamp'))
        if complete is not None:
            self._wake.trigger()

    def _on_held(self, msg: String) -> None:
        with self._lock:
            self._held = (self._held[0] + 1, msg.data.strip())

    def _on_tf(self) -> None:
        with self._lock:
            waiting = self._ready is not None
        if waiting:
            self._wake.trigger()

    def _on_clock_jump(self, jump) -> None:
        self.tf.clear(static=False)  # /tf_static is latched and timeless: keep it
        with self._lock:
            self._pending.clear()
            self._ready = None
            self._reset_requested = True

    # ------------------------------------------------------------------ bookkeeping
    def _count(self, cause: str, message: str) -> None:
        """Count a skipped frame (call with the lock held)."""
        self._stats.skipped[cause] = self._stats.skipped.get(cause, 0) + 1
        self._stats.last_skip = f'{cause}: {message}'

    def _skip(self, exc: FrameError) -> None:
        """Count a skipped frame, warn (throttled per cause) and report on /diagnostics."""
        now = self.get_clock().now().nanoseconds / NS
        with self._lock:
            self._count(exc.cause, str(exc))
            last = self._warned.get(exc.cause)
            warn = exc.cause not in QUIET and (last is None or now - last >= WARN_PERIOD_S
                                               or now < last)
            if warn:
                self._warned[exc.cause] = now
        if warn:
            self.get_logger().warning(f'frame skipped ({exc.cause}), beliefs kept: {exc}')
        self._publish_diagnostics(None)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        """Process the newest complete frame (runs in the worker's callback group)."""
        with self._lock:
            frame, self._ready = self._ready, None
            if self._reset_requested:
                self._reset_requested = False
                self._scene = empty_scene(self._names)
                self._surfaces = SurfaceMap(self._surfaces.config)
                self._last_processed_ns = None
                self.get_logger().info('clock jumped back: beliefs and transforms cleared')
        if frame is None:
            return
        try:
            self._process(frame)
        except FrameError as exc:
            if exc.cause == 'tf_wait':
                with self._lock:  # transforms may still be on their way: retry on the next
                    if self._ready is None:
                        self._ready = frame
                        return
                    self._count('busy', 'a newer frame replaced one waiting for transforms')
                return
            self._skip(exc)

    def _segmentation_config(self) -> SegmentationConfig:
        try:
            return SegmentationConfig(
                min_depth=self.param('min_depth'), max_depth=self.param('max_depth'),
                voxel_size=self.param('voxel_size'), plane_distance=self.param('plane_distance'),
                max_planes=self.param('max_planes'), cluster_eps=self.param('cluster_eps'),
                min_cluster_voxels=self.param('min_cluster_voxels'),
                max_cluster_extent=self.param('max_cluster_extent'),
                band_length=self.param('band_length'), band_aspect=self.param('band_aspect'),
                band_width=self.param('band_width'), band_height=self.param('band_height'))
        except ValueError as exc:
            raise FrameError('config', f'segmentation parameters: {exc}') from exc

    def _lookup_at(self, frame: Frame, source: str, wait_for=('future',)) -> np.ndarray:
        """The transform map_frame <- ``source`` at the frame's stamp (or TransformError).

        A transform that fails for a reason in ``wait_for`` while the frame is younger than
        ``tf_timeout`` may still be on its way: FrameError('tf_wait'), the frame is retried.
        """
        try:
            return self.tf.lookup(self.param('map_frame'), source, frame.stamp_ns / NS,
                                  tolerance_s=self.param('tf_tolerance'),
                                  max_gap_s=self.param('tf_max_gap'))
        except TransformError as exc:
            age = self.get_clock().now().nanoseconds - frame.stamp_ns
            if exc.reason in wait_for and age < self.param('tf_timeout') * NS:
                raise FrameError('tf_wait', str(exc)) from exc
            raise

    def _transform(self, frame: Frame) -> np.ndarray:
        source = frame.depth.header.frame_id
        try:
            return self._lookup_at(frame, source, wait_for=('future', 'unknown_frame'))
        except TransformError as exc:
            raise FrameError('tf', f'frame id {source!r}: {exc}') from exc

    def _self_body(self, frame: Frame) -> dict:
        """The robot's own body at the frame's stamp, as segment_frame's self filter takes it.

        The arm: origins of the self-filter frames in the map frame (``self_chain``); the
        rigid body: ``self_boxes`` with the map-to-base transform. Lagging transforms are
        waited for, as the camera's (unfiltered, the robot in view becomes objects and support
        surface); a robot without those frames goes on unfiltered, and says so.
        """
        body = {'self_radius': self.param('self_filter_radius')}
        names = [f for f in self.param('self_filter_frames') if f]
        base = self.param('self_filter_base_frame')
        try:
            if names and body['self_radius'] > 0:
                body['self_chain'] = np.array([self._lookup_at(frame, n)[:3, 3] for n in names])
            if base:
                body['self_boxes'] = (np.linalg.inv(self._lookup_at(frame, base)),
                                      boxes_from_values(self.param('self_filter_boxes')))
        except TransformError as exc:  # no arm on this robot (or its TF stopped): say so
            self.get_logger().warning(f'self filter off for this frame: {exc}',
                                      throttle_duration_sec=10.0)
            return {}
        return body

    def _follow_hand(self, frame: Frame) -> set[str]:
        """Move the track of the held object with the hand; the ids of tracks in the hand.

        The object's offset from ``held_frame`` is taken when the hold begins (its track then
        is where it was last seen, lifted; 0.3 m or more away it is a stale track, and the
        object is taken to be at the frame). A hand TF cannot place leaves the track where it
        is, still not expected in view.
        """
        with self._lock:
            serial, held_id = self._held
        hand = self.param('held_frame')
        if not held_id or not hand:  # the usual frame: nothing in the hand
            return set()
        track = next((o for o in self._scene.objects
                      if o.id == held_id or held_id in o.merged), None)
        if track is None:
            return set()
        try:
            t_map_hand = self._lookup_at(frame, hand)
        except TransformError as exc:
            self.get_logger().warning(f'held {held_id} not moved with the hand: {exc}',
                                      throttle_duration_sec=10.0)
            return {track.id}
        if self._held_offset is None or self._held_offset[:2] != (serial, track.id):
            local = (np.linalg.inv(t_map_hand) @ [*track.mean, 1.0])[:3]
            self._held_offset = (serial, track.id,
                                 local if np.linalg.norm(local) < 0.3 else np.zeros(3))
        self._scene = carried(self._scene, track.id,
                              (t_map_hand @ [*self._held_offset[2], 1.0])[:3])
        return {track.id}

    def _process(self, frame: Frame) -> None:
        start = time.perf_counter()
        period = NS / self.param('max_rate')
        if self._last_processed_ns is not None \
                and 0 <= frame.stamp_ns - self._last_processed_ns < period - 1e6:
            raise FrameError('rate', 'less than 1/max_rate after the last processed frame')
        if frame.stamp_ns < (self._scene.stamp - JUMP_BACK_S) * NS:
            self.get_logger().info(f'frame stamped {frame.stamp_ns / NS:.3f} s, beliefs at '
                                   f'{self._scene.stamp:.3f} s: the clock jumped back, beliefs '
                                   'cleared')
            self._scene = empty_scene(self._names)
            self._surfaces = SurfaceMap(self._surfaces.config)
        elif frame.stamp_ns < self._scene.stamp * NS - 1e3:
            raise FrameError('stale', f'stamp {frame.stamp_ns / NS:.3f} s is older than the '
                             f'beliefs ({self._scene.stamp:.3f} s)')
        rgb = _image_array(frame.color, 'rgb8', 'u1', 3)
        depth = _image_array(frame.depth, '32FC1', 'f4', 1)
        info = frame.info
        try:
            intrinsics = CameraIntrinsics.from_k(info.k, info.width, info.height)
        except ValueError as exc:
            raise FrameError('camera_info', str(exc)) from exc
        t_map_cam = self._transform(frame)
        config = self._segmentation_config()
        try:
            result = segment_frame(depth, rgb, intrinsics, t_map_cam, config, self._rng,
                                   **self._self_body(frame))
        except ValueError as exc:
            cause = next((c for c in ('camera_info', 'depth') if c in str(exc)), 'image')
            raise FrameError(cause, str(exc)) from exc
        previous = self._scene
        try:
            sensor = SensorModel(intrinsics, min_range=config.min_depth,
                                 max_range=config.max_depth)
            seen = self._observe_objects(rgb, depth, intrinsics, t_map_cam, result.clusters)
            detections = [detection_from_cluster(c, sensor, t_map_cam, lik, shape_mean=mean,
                                                 shape_var=var)
                          for c, lik, mean, var in zip(result.clusters, seen['likelihoods'],
                                                       seen['shape_mean'], seen['shape_var'])]
            held = self._follow_hand(frame)
            self._scene, info_update = update(self._scene, detections, t_map_cam, sensor,
                                              frame.stamp_ns / NS, BeliefConfig(), depth=depth,
                                              held=held)
        except ValueError as exc:
            raise FrameError('update', f'belief update failed: {exc}') from exc
        self._last_processed_ns = frame.stamp_ns
        header = Header(stamp=_stamp_msg(frame.stamp_ns), frame_id=self.param('map_frame'))
        self._update_surfaces(depth, intrinsics, t_map_cam, result, config)
        self._publish_objects(header)
        self._publish_markers(header, previous, self._publish_surfaces(header))
        if self.param('publish_points'):
            self._publish_points(header, depth, rgb, intrinsics, t_map_cam, result.labels,
                                 config)
        latency_ms = 1e3 * (time.perf_counter() - start)
        age_ms = (self.get_clock().now().nanoseconds - frame.stamp_ns) / 1e6
        with self._lock:
            self._stats.processed += 1
            self._stats.latency_ms.append(latency_ms)
            self._stats.age_ms.append(age_ms)
        self._publish_diagnostics(info_update)

    def _observe_objects(self, rgb, depth, intrinsics, t_map_cam, clusters) -> dict:
        """Per-cluster category likelihoods and shape codes (uniform, none: no classifier)."""
        k, n = len(self._names), len(clusters)
        if self._classifier is None or not clusters:
            return {'likelihoods': np.full((n, k), 1.0 / k), 'shape_mean': [None] * n,
                    'shape_var': [None] * n}
        return self._classifier.observe(
            rgb, depth, intrinsics, t_map_cam, clusters, self.param('category_temperature'),
            self.param('category_full_pixels'), self.param('category_floor'),
            self.param('height_temperature'))

    # ------------------------------------------------------------------ outputs
    def _publish_objects(self, header: Header) -> None:
        msg = ObjectBeliefArray(header=header)
        for obj in self._scene.objects:
            s = belief_summary(obj, self._names)
            belief = ObjectBelief(header=header, id=s['id'], category_names=s['category_names'],
                                  category_probs=s['category_probs'], shape_code=s['shape_code'],
                                  last_seen=_stamp_msg(int(round(s['last_seen'] * NS))),
                                  in_view=s['in_view'], merged_ids=s['merged_ids'])
            p, q = belief.pose.pose.position, belief.pose.pose.orientation
            p.x, p.y, p.z = s['position']
            q.x, q.y, q.z, q.w = s['orientation_xyzw']
            belief.pose.covariance = s['covariance']
            belief.extent.x, belief.extent.y, belief.extent.z = s['extent']
            msg.objects.append(belief)
        self.pub_objects.publish(msg)

    def _update_surfaces(self, depth, intrinsics, t_map_cam, result, config) -> None:
        """Grow the support surfaces by the frame's horizontal planes."""
        plane = np.where(result.labels == -2, depth, np.nan)
        points, _ = backproject(plane, intrinsics, t_map_cam, config.min_depth, config.max_depth)
        self._surfaces.integrate(plane_points(points, result.planes, self._surfaces.config))

    def _publish_surfaces(self, header: Header) -> list[Marker]:
        """Publish the surfaces; return their markers (published with the objects')."""
        msg, markers = ObjectBeliefArray(header=header), []
        cell = self._surfaces.config.cell
        for surface in self._surfaces.surfaces:
            cx, cy, yaw, length, width = surface.rectangle(cell)
            belief = ObjectBelief(header=header, id=f'surface_{surface.id}',
                                  category_names=['surface'], category_probs=[1.0],
                                  last_seen=header.stamp)
            p, q = belief.pose.pose.position, belief.pose.pose.orientation
            p.x, p.y, p.z = cx, cy, float(surface.height)
            q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)
            belief.extent.x, belief.extent.y = length, width
            msg.objects.append(belief)
            box = Marker(header=header, ns='surface', id=surface.id, type=Marker.CUBE,
                         action=Marker.ADD)
            box.pose = belief.pose.pose
            box.scale.x, box.scale.y, box.scale.z = length, width, 0.01
            box.color.g, box.color.b, box.color.a = 0.6, 0.9, 0.35
            markers.append(box)
        alive = {s.id for s in self._surfaces.surfaces}
        markers += [Marker(header=header, ns='surface', id=gone, action=Marker.DELETE)
                    for gone in sorted(self._surface_markers - alive)]  # merged into another
        self._surface_markers = alive
        self.pub_surfaces.publish(msg)
        return markers

    def _marker_id(self, object_id: str) -> int:
        if object_id not in self._marker_ids:
            self._marker_ids[object_id] = self._next_marker
            self._next_marker += 1
        return self._marker_ids[object_id]

    def _publish_markers(self, header: Header, previous, extra: list[Marker]) -> None:
        markers = MarkerArray(markers=list(extra))
        for obj in self._scene.objects:
            mid = self._marker_id(obj.id)
            colour = obj.colour if np.all(np.isfinite(obj.colour)) else (0.6, 0.6, 0.6)
            best = int(np.argmax(obj.category_probs))
            box = Marker(header=header, ns='box', id=mid, type=Marker.CUBE, action=Marker.ADD)
            box.pose.position.x, box.pose.position.y, box.pose.position.z = (
                float(v) for v in obj.mean)
            box.pose.orientation.z = math.sin(obj.yaw / 2)
            box.pose.orientation.w = math.cos(obj.yaw / 2)
            box.scale.x, box.scale.y, box.scale.z = (max(float(v), 0.005) for v in obj.extent)
            box.color.r, box.color.g, box.color.b = (float(v) for v in colour)
            box.color.a = 0.6
            label = Marker(header=header, ns='label', id=mid, type=Marker.TEXT_VIEW_FACING,
                           action=Marker.ADD,
                           text=f'{obj.id}: {self._names[best]} {obj.category_probs[best]:.2f}')
            label.pose.position.x, label.pose.position.y = box.pose.position.x, \
                box.pose.position.y
            label.pose.position.z = box.pose.position.z + 0.5 * box.scale.z + 0.04
            label.pose.orientation.w = 1.0
            label.scale.z = 0.04
            label.color.r = label.color.g = label.color.b = label.color.a = 1.0
            diameters, quaternion = covariance_ellipsoid(obj.cov, 3.0)
            ellipsoid = Marker(header=header, ns='covariance', id=mid, type=Marker.SPHERE,
                               action=Marker.ADD)
            ellipsoid.pose.position = box.pose.position
            o = ellipsoid.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in quaternion)
            ellipsoid.scale.x, ellipsoid.scale.y, ellipsoid.scale.z = (
                max(float(v), 0.001) for v in diameters)
            ellipsoid.color.r, ellipsoid.color.g, ellipsoid.color.a = 1.0, 0.8, 0.3
            markers.markers += [box, label, ellipsoid]
        alive = {obj.id for obj in self._scene.objects}
        for obj in previous.objects:
            if obj.id in alive or obj.id not in self._marker_ids:
                continue
            mid = self._marker_ids.pop(obj.id)
            markers.markers += [Marker(header=header, ns=ns, id=mid, action=Marker.DELETE)
                                for ns in ('box', 'label', 'covariance')]
        for gone in set(self._marker_ids) - alive - {o.id for o in previous.objects}:
            mid = self._marker_ids.pop(gone)  # beliefs cleared by a clock jump
            markers.markers += [Marker(header=header, ns=ns, id=mid, action=Marker.DELETE)
                                for ns in ('box', 'label', 'covariance')]
        self.pub_markers.publish(markers)

    def _publish_points(self, header: Header, depth, rgb, intrinsics, t_map_cam, labels,
                        config: SegmentationConfig) -> None:
        object_depth = np.where(labels >= 0, depth, np.nan)
        points, pixels = backproject(object_depth, intrinsics, t_map_cam, config.min_depth,
                                     config.max_depth)
        colours = rgb.reshape(-1, 3)[pixels].astype(np.uint32)
        cloud = np.empty(len(points), dtype=POINT_DTYPE)
        cloud['x'], cloud['y'], cloud['z'] = points[:, 0], points[:, 1], points[:, 2]
        cloud['rgb'] = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
        msg = PointCloud2(header=header, height=1, width=len(points), fields=POINT_FIELDS,
                          is_bigendian=False, point_step=POINT_DTYPE.itemsize,
                          row_step=POINT_DTYPE.itemsize * len(points), is_dense=True)
        msg.data = cloud.tobytes()
        self.pub_points.publish(msg)

    def _publish_diagnostics(self, info_update: dict | None) -> None:
        with self._lock:
            stats = self._stats
            skipped = dict(stats.skipped)
            lat = list(stats.latency_ms)
            age = list(stats.age_ms)
            values = {'frames_received': stats.received, 'frames_processed': stats.processed,
                      'frames_skipped': sum(skipped.values()), 'last_skip': stats.last_skip}
        values['objects_tracked'] = len(self._scene.objects)
        values.update({f'skipped_{cause}': n for cause, n in sorted(skipped.items())})
        if lat:
            values.update({'latency_ms': f'{lat[-1]:.1f}', 'latency_mean_ms':
                           f'{np.mean(lat):.1f}', 'latency_max_ms': f'{np.max(lat):.1f}',
                           'age_ms': f'{age[-1]:.1f}', 'age_mean_ms': f'{np.mean(age):.1f}'})
        if info_update is not None:
            values.update({'born': len(info_update['born']),
                           'removed': len(info_update['removed']),
                           'matched': len(info_update['matched']),
                           'merged': len(info_update['merged']),
                           'shape_restarted': len(info_update['shape_restarted'])})
        ok = info_update is not None
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
            name=f'{self.get_name()}: {self.param("camera")}', hardware_id=self.param('camera'),
            message=(f'tracking {len(self._scene.objects)} objects' if ok
                     else f'frame skipped: {values["last_skip"]}'),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def destroy_node(self):
        """Release the clock jump callback and the TF subscriptions, then destroy the node."""
        if self._jump is not None:
            self._jump.unregister()
            self._jump = None
        self._tf_listener.destroy()
        return super().destroy_node()


NODE_CLASS = Perception
main = node_main(Perception)

if __name__ == '__main__':
    sys.exit(main())
