"""cognitive_map: the topological map of places, grown from odometry, the scan and the camera.

Subscribes (sensor QoS): odom (nav_msgs/Odometry: the pose history scan and depth frames are
placed with at their stamps), scan (sensor_msgs/LaserScan),
head_camera/color/image_raw (sensor_msgs/Image rgb8: hand-made place codes, with
``code_source`` image, and the world model's view; ``world_model_camera`` names another),
head_camera/depth/image_rect (32FC1) and head_camera/camera_info (the occupancy
grid's height layer); ``~/edge_events``
(embodied_aif_msgs/PlaceEdge, reliable): a navigator reports an edge it found BLOCKED (or
travelled, EXPERIENCED).
Publishes: cognitive_map (embodied_aif_msgs/CognitiveMap, latched, in the odometry frame:
places, edges, current place, localisation confidence), cognitive_map/edge_paths
(embodied_aif_msgs/PlaceEdgePathArray, latched, same header: the way each edge was travelled,
which the navigator follows), ``~/markers``
(visualization_msgs/MarkerArray: a sphere per place sized by its visits, edges coloured by
kind, experienced green, imagined blue and dashed, blocked red, alpha by confidence, text ids),
``~/occupancy`` (nav_msgs/OccupancyGrid in the odometry frame: log-odds from the scans, and
a height layer from the head camera's depth for what the scan plane passes under, such as
table tops: points between obstacle_min_height and obstacle_max_height mark obstacles, the
floor seen alone frees a cell; the robot's own arm is filtered out by distance; scans and
depth frames are placed with the odometry pose of their own stamps, interpolated, a frame
newer than the latest odometry waiting for it),
``~/overhead`` (the height layer alone, for the navigator), /diagnostics.

The map is updated at ``update_rate`` (sim time) in its own callback group by
:func:`embodied_aif.models.cognitive_map.observe`; sensor callbacks only keep the latest message.
The scan is re-projected from the laser mount (looked up in /tf_static) to the base origin,
which the models assume. Bad input never stops the node: NaN scans are handled by the model
(NaN = unknown), NaN odometry is dropped, an odometry jump (a discontinuity between two odometry
messages, not a late update) makes the model re-localise (current place -1 while lost).

Imagined shortcuts: with ``world_model`` contrastive or likelihood, the learned world model
(loaded once at start) filters its camera (``world_model_camera``) in its own callback group
and remembers the views seen along the way (filtered state, image, pose). Every
``imagination_period`` (sim time) a bounded round imagines straight trips between visited
places that have no edge yet, from the remembered view that faces the other place
(:func:`embodied_aif.models.imagination.judge_links`); each proposal above
``imagination_threshold`` enters the map as an imagined edge, which the navigator may take
and reports BLOCKED when it fails. A pair whose straight way a stored place scan saw
blocked (within ``imagination_scan_clearance``;
:func:`embodied_aif.models.cognitive_map.scan_blocks_link`) is not imagined: the laser's
evidence overrides the model.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CameraInfo, Image, LaserScan
from std_msgs.msg import ColorRGBA
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from embodied_aif.models import cognitive_map as cm
from embodied_aif.models.occupancy import (  # noqa: F401 - re-exported for the nodes
    GridConfig,
    combine_layers,
    compose_planar,
    depth_points,
    empty_grid,
    integrate_heights,
    integrate_scan,
    scan_in_base,
)
from embodied_aif.models.transforms import quaternion_yaw, yaw_quaternion
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    Param,
    ParamNode,
    image_pixels,
    node_main,
)
from embodied_aif.nodes._state import StateFile
from embodied_aif.nodes._tf import TfBuffer, TransformError, to_ns, transform_msg
from embodied_aif_msgs.msg import (
    CognitiveMap,
    Place,
    PlaceEdge,
    PlaceEdgePath,
    PlaceEdgePathArray,
)

WORLD_MODELS = ('contrastive', 'likelihood', 'none')
ODOM_GAP_S = 1.0  # no pose interpolated across a longer hole in the odometry, s
KIND_COLOURS = {cm.EXPERIENCED: (0.1, 0.8, 0.2), cm.IMAGINED: (0.2, 0.4, 1.0),
                cm.BLOCKED: (1.0, 0.1, 0.1)}


# ---------------------------------------------------------------- conversions (no ROS state)
def yaw_of(q) -> float:
    """Return the yaw of a geometry_msgs/Quaternion (rotation about z)."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def odom_pose(msg: Odometry) -> np.ndarray:
    """Return (x, y, yaw) of an Odometry message (may contain NaN: the caller checks)."""
    p = msg.pose.pose
    return np.array([p.position.x, p.position.y, yaw_of(p.orientation)])


def finite_odom_pose(node, msg: Odometry, counts: dict) -> np.ndarray | None:
    """(x, y, yaw) of an Odometry message, or None (counted and warned) when not finite."""
    pose = odom_pose(msg)
    if np.all(np.isfinite(pose)):
        return pose
    counts['invalid_odom'] += 1
    node.get_logger().warning(f'odometry ignored: pose {pose.tolist()} is not finite',
                              throttle_duration_sec=5.0)
    return None


def scan_arrays(msg: LaserScan) -> tuple[np.ndarray, np.ndarray]:
    """Return (ranges, angles) of a LaserScan as float arrays."""
    ranges = np.asarray(msg.ranges, dtype=float)
    angles = msg.angle_min + msg.angle_increment * np.arange(ranges.size)
    return ranges, angles


def image_array(msg: Image) -> np.ndarray:
    """Return an (H, W, 3) uint8 array of an rgb8/bgr8 Image; ValueError on other encodings."""
    if msg.encoding not in ('rgb8', 'bgr8'):
        raise ValueError(f'image encoding {msg.encoding!r} is not rgb8 or bgr8')
    if msg.height == 0 or msg.width == 0 or msg.step < 3 * msg.width or \
            len(msg.data) < msg.step * msg.height:
        raise ValueError(f'image {msg.width}x{msg.height} step {msg.step} has '
                         f'{len(msg.data)} bytes')
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8)[:msg.step * msg.height]
    img = rows.reshape(msg.height, msg.step)[:, :3 * msg.width].reshape(msg.height, msg.width, 3)
    return img[:, :, ::-1] if msg.encoding == 'bgr8' else img


def map_to_msg(cmap: cm.CognitiveMap, frame: str, stamp=None) -> CognitiveMap:
    """Return the CognitiveMap message of a model map, with poses in the odometry frame.

    The model keeps places in its map frame (odometry + ``offset`` after a re-localisation);
    the message subtracts the offset so that places line up with the odometry the navigator
    sees.
    """
    fields = cm.to_message_fields(cmap)
    ox, oy = float(cmap.offset[0]), float(cmap.offset[1])
    msg = CognitiveMap()
    msg.header.frame_id = frame
    if stamp is not None:
        msg.header.stamp = stamp
    for p in fields['places']:
        place = Place(id=p['id'], visit_count=p['visit_count'],
                      observation_code=[float(v) for v in p['observation_code']],
                      radius=p['radius'], belief=p['belief'])
        place.pose.position.x, place.pose.position.y = p['x'] - ox, p['y'] - oy
        q = yaw_quaternion(p['yaw'])
        place.pose.orientation.z, place.pose.orientation.w = float(q[2]), float(q[3])
        msg.places.append(place)
    for e in fields['edges']:
        msg.edges.append(PlaceEdge(from_id=e['from_id'], to_id=e['to_id'], kind=e['kind'],
                                   confidence=e['confidence'], count=e['count'],
                                   length=e['length']))
    msg.current_place = fields['current_place']
    msg.localisation_confidence = fields['localisation_confidence']
    return msg


def paths_to_msg(cmap: cm.CognitiveMap, header) -> PlaceEdgePathArray:
    """Return the travelled paths of the map's edges (odometry frame, like map_to_msg)."""
    ox, oy = float(cmap.offset[0]), float(cmap.offset[1])
    msg = PlaceEdgePathArray(header=header)
    for edge in cmap.edges.values():
        if edge.waypoints:
            msg.paths.append(PlaceEdgePath(from_id=edge.a, to_id=edge.b, points=[
                Point(x=float(x) - ox, y=float(y) - oy) for x, y in edge.waypoints]))
    return msg


def with_paths(cmap: cm.CognitiveMap, msg: PlaceEdgePathArray | None) -> cm.CognitiveMap:
    """Return the map with the travelled paths of ``msg`` stored on its edges (when they exist)."""
    if msg is None:
        return cmap
    edges = dict(cmap.edges)
    for path in msg.paths:
        key = (min(path.from_id, path.to_id), max(path.from_id, path.to_id))
        if key not in edges or not path.points:
            continue
        pts = tuple((float(p.x), float(p.y)) for p in path.points)
        if not all(math.isfinite(v) for xy in pts for v in xy):
            continue
        edges[key] = dataclasses.replace(edges[key],
                                         waypoints=pts if path.from_id == key[0] else pts[::-1])
    return dataclasses.replace(cmap, edges=edges)


def map_from_msg(msg: CognitiveMap) -> cm.CognitiveMap:
    """Return a model map (odometry frame, zero offset) rebuilt from a CognitiveMap message.

    What the message does not carry (the paths stored on edges, extra views, scans, lost
    hypotheses) is left empty: edges are then driven straight, place to place.
    """
    places = sorted(msg.places, key=lambda p: p.id)
    if [p.id for p in places] != list(range(len(places))):
        raise ValueError(f'place ids must be 0..{len(places) - 1}, got '
                         f'{[p.id for p in places]}')
    n = len(places)
    dim = max((len(p.observation_code) for p in places), default=0)
    codes = np.zeros((n, dim))
    for i, p in enumerate(places):
        if len(p.observation_code) not in (0, dim):
            raise ValueError(f'place {p.id} has a code of {len(p.observation_code)} entries, '
                             f'others {dim}')
        codes[i, :len(p.observation_code)] = p.observation_code
    poses = np.array([[p.pose.position.x, p.pose.position.y, yaw_of(p.pose.orientation)]
                      for p in places], dtype=float).reshape(n, 3)
    edges = {}
    for e in msg.edges:
        a, b = sorted((int(e.from_id), int(e.to_id)))
        if not (0 <= a < b < n):
            raise ValueError(f'edge {e.from_id}--{e.to_id} does not join two places of {n}')
        count = max(float(e.count), 1e-6)
        success = min(max(float(e.confidence), 0.0), 1.0) * count
        edges[(a, b)] = cm.Edge(a, b, max(success, 1e-6), max(count - success, 0.0),
                                int(e.kind), float(e.length))
    current = int(msg.current_place) if -1 <= msg.current_place < n else -1
    belief = np.array([p.belief for p in places], dtype=float).reshape(n)
    return cm.CognitiveMap(poses=poses, codes=codes,
                           radius=np.array([p.radius for p in places], dtype=float).reshape(n),
                           visits=np.array([p.visit_count for p in places], dtype=int).reshape(n),
                           edges=edges, current=current, belief=belief)


class LaserMount:
    """Where the laser sits on the base, from /tf_static (identity until it is known)."""

    def __init__(self, node, base_frame: str):
        self.node, self.base_frame = node, base_frame
        self.buffer = TfBuffer()
        self.poses: dict[str, np.ndarray] = {}
        self.problem = ''
        node.create_subscription(TFMessage, '/tf_static',
                                 lambda msg: self.buffer.set_message(msg, static=True),
                                 LATCHED_QOS)

    def pose(self, frame: str) -> np.ndarray:
        """Return (x, y, yaw) of ``frame`` in the base frame (zeros while unknown)."""
        frame = frame.lstrip('/') or self.base_frame
        if frame in self.poses:
            return self.poses[frame]
        if frame == self.base_frame:
            self.poses[frame] = np.zeros(3)
            return self.poses[frame]
        try:
            position, q = self.buffer.lookup_pose(self.base_frame, frame)
        except TransformError as exc:
            self.problem = f'{exc}; assuming the scan is taken at the base origin'
            return np.zeros(3)
        yaw = math.atan2(2.0 * (q[3] * q[2] + q[0] * q[1]), 1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2))
        self.poses[frame] = np.array([position[0], position[1], yaw])
        self.problem = ''
        return self.poses[frame]


def _colour(rgb, alpha: float) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def _point(x: float, y: float, z: float = 0.0) -> Point:
    return Point(x=float(x), y=float(y), z=float(z))


def map_markers(msg: CognitiveMap, namespace: str = 'cognitive_map',
                dash: float = 0.2) -> MarkerArray:
    """Return RViz markers of a CognitiveMap message (same frame and stamp).

    Places: spheres sized by visit count (hypothesised places small and grey, the current
    place yellow), alpha by belief, a text id above each. Edges: one LINE_LIST per kind,
    experienced green, imagined blue and dashed (every other ``dash`` metres), blocked red,
    alpha by the edge's confidence.
    """
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header = msg.header
    out.markers.append(clear)
    poses = {p.id: p.pose.position for p in msg.places}
    for p in msg.places:
        visited = p.visit_count > 0
        size = 0.15 + 0.05 * min(p.visit_count, 10) if visited else 0.12
        rgb = (1.0, 0.9, 0.0) if p.id == msg.current_place else \
            (1.0, 0.5, 0.0) if visited else (0.6, 0.6, 0.6)
        sphere = Marker(ns=f'{namespace}/places', id=int(p.id), type=Marker.SPHERE,
                        action=Marker.ADD)
        sphere.header = msg.header
        sphere.pose.position = _point(p.pose.position.x, p.pose.position.y, 0.1)
        sphere.pose.orientation.w = 1.0
        sphere.scale.x = sphere.scale.y = sphere.scale.z = float(size)
        sphere.color = _colour(rgb, 0.4 + 0.6 * min(max(p.belief, 0.0), 1.0) if visited else 0.5)
        text = Marker(ns=f'{namespace}/ids', id=int(p.id), type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, text=str(p.id))
        text.header = msg.header
        text.pose.position = _point(p.pose.position.x, p.pose.position.y, 0.45)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.25
        text.color = _colour((1.0, 1.0, 1.0), 0.9)
        out.markers += [sphere, text]
    for kind, rgb in KIND_COLOURS.items():
        lines = Marker(ns=f'{namespace}/edges_{cm.KIND_NAMES[kind]}', id=0,
                       type=Marker.LINE_LIST, action=Marker.ADD)
        lines.header = msg.header
        lines.pose.orientation.w = 1.0
        lines.scale.x = 0.04 if kind == cm.IMAGINED else 0.06
        for e in msg.edges:
            if e.kind != kind or e.from_id not in poses or e.to_id not in poses:
                continue
            a, b = poses[e.from_id], poses[e.to_id]
            colour = _colour(rgb, 0.2 + 0.8 * min(max(e.confidence, 0.0), 1.0))
            length = math.hypot(b.x - a.x, b.y - a.y)
            pieces = max(1, int(length / dash)) if kind == cm.IMAGINED else 1
            for k in range(0, pieces, 2 if kind == cm.IMAGINED and pieces > 1 else 1):
                s0, s1 = k / pieces, min(k + 1, pieces) / pieces
                lines.points += [_point(a.x + s0 * (b.x - a.x), a.y + s0 * (b.y - a.y), 0.1),
                                 _point(a.x + s1 * (b.x - a.x), a.y + s1 * (b.y - a.y), 0.1)]
                lines.colors += [colour, colour]
        if lines.points:
            out.markers.append(lines)
    return out


# ---------------------------------------------------------------- occupancy message
def grid_to_msg(logodds: np.ndarray, config: GridConfig, frame: str, stamp=None
                ) -> OccupancyGrid:
    """Return the OccupancyGrid of a log-odds grid: -1 unknown, else 0..100 occupancy."""
    msg = OccupancyGrid()
    msg.header.frame_id = frame
    if stamp is not None:
        msg.header.stamp = stamp
    n = logodds.shape[0]
    msg.info.resolution = float(config.resolution)
    msg.info.width = msg.info.height = n
    msg.info.origin.position.x = msg.info.origin.position.y = -n * config.resolution / 2.0
    msg.info.origin.orientation.w = 1.0
    prob = 1.0 / (1.0 + np.exp(-logodds))
    data = np.where(logodds == 0.0, -1, np.round(100 * prob)).astype(np.int8)
    msg.data = data.ravel().tolist()
    return msg



def filter_latest_image(node, latest) -> np.ndarray | None:
    """Filter the latest camera message (``(Image, receive ns)``) into ``node.world_state``.

    Shared by cognitive_map and navigator: each message is filtered once (``node.world_seen``),
    fitted to the world model's image size, with the odometry twist as the action. Returns the
    fitted image, or None when there is nothing new or the frame is bad (logged).
    """
    from embodied_aif.models import imagination as im

    if latest is None or latest[0] is node.world_seen:
        return None
    node.world_seen = latest[0]
    try:
        small = im.fit_image(image_array(latest[0]), node.world.config.image_size)
    except ValueError as exc:
        node.get_logger().warning(f'world model: camera image ignored: {exc}',
                                  throttle_duration_sec=5.0)
        return None
    node.world_state = im.filter_step(node.world, node.world_state, node.twist, small)
    return small


def load_world_model(node, objective: str, path: str):
    """Load the world model for a node: (model, '') or (None, why not), the error logged.

    ``objective`` none gives (None, 'world_model is none'); an empty ``path`` means the
    shipped weights of the objective. torch runs on one thread.
    """
    if objective == 'none':
        return None, 'world_model is none'
    if objective not in WORLD_MODELS:
        why = f'world_model {objective!r} is not one of {list(WORLD_MODELS)}'
        node.get_logger().error(why)
        return None, why
    import torch  # only a node that uses the world model pays for torch

    from embodied_aif.models import world_model as wm
    torch.set_num_threads(1)
    path = path or str(wm.shipped_weights(objective))
    try:
        model, _ = wm.load_checkpoint(path, objective=objective)
    except (wm.CheckpointError, ValueError) as exc:
        why = f'world model not loaded: {exc}'
        node.get_logger().error(why)
        return None, why
    node.get_logger().info(f'world model ({objective}) loaded from {path}')
    return model, ''


# ---------------------------------------------------------------- the node
class CognitiveMapNode(ParamNode):
    """Keeps the model map, feeds it odometry, scans and image codes, publishes it."""

    PARAMETERS = (
        Param('update_rate', 10.0, 'map updates per second (sim time)', low=0.5, high=50.0,
              read_only=True),
        Param('publish_period', 1.0, 'republish the map at least this often, s', low=0.1,
              high=60.0),
        Param('occupancy_rate', 2.0, 'occupancy grid updates per second (0 = off)', low=0.0,
              high=20.0, read_only=True),
        Param('occupancy_resolution', 0.1, 'occupancy cell size, m', low=0.02, high=1.0,
              read_only=True),
        Param('occupancy_size', 30.0, 'occupancy grid side, m, centred on the odom origin',
              low=2.0, high=200.0, read_only=True),
        Param('code_source', 'image', 'observation code of a place: head camera image or scan',
              choices=('image', 'scan'), read_only=True),
        Param('place_radius', 1.5, 'influence radius of a place, m', low=0.3, high=10.0,
              read_only=True),
        Param('code_threshold', 0.15, 'cosine distance below which codes match', low=0.001,
              high=1.99, read_only=True),
        Param('max_jump', 1.0, 'odometry jump that makes the map re-localise, m', low=0.05,
              high=100.0, read_only=True),
        Param('max_speed', 2.0, 'the fastest the base can drive, m/s: odometry that moves '
              'faster between two messages has jumped', low=0.1, high=50.0),
        Param('lost_threshold', 0.6, 'belief needed to be localised on a place', low=0.01,
              high=1.0, read_only=True),
        Param('sensor_timeout', 1.0, 'skip updates when odom/scan/image are older than this, s',
              low=0.05, high=60.0),
        Param('odom_frame', 'odom', 'frame of the map, the markers and the occupancy grid',
              read_only=True),
        Param('base_frame', 'base_link', 'robot base frame (the laser mount is looked up in '
              '/tf_static)', read_only=True),
        Param('state_file', '', 'JSON checkpoint of the map, resumed at start (empty: not kept)',
              read_only=True),
        Param('save_period', 5.0, 'seconds (node clock) between map checkpoints', low=0.5,
              high=3600.0, read_only=True),
        Param('world_model', 'contrastive', 'objective of the learned world model that '
              'imagines shortcuts (none: no imagined shortcuts)', choices=WORLD_MODELS,
              read_only=True),
        Param('world_model_weights', '', 'world model checkpoint (empty: the shipped weights '
              'of world_model)', read_only=True),
        Param('world_model_period', 0.5, 'seconds (sim) between world model updates from the '
              'world_model_camera', low=0.05, high=10.0, read_only=True),
        Param('world_model_camera', 'head_camera', 'camera (topic prefix) the world model '
              'observes for imagined shortcuts: the head camera, with which the imagination '
              'threshold was chosen and the home run measured (the wide nav_camera proposed '
              'more false shortcuts at that threshold)', read_only=True),
        Param('imagination_period', 10.0, 'seconds (sim) between imagination rounds (0 = '
              'never)', low=0.0, high=3600.0, read_only=True),
        Param('imagination_threshold', 0.1, 'confidence an imagined link needs to enter the '
              'map', low=0.01, high=1.0),
        Param('imagination_scan_clearance', 0.15, 'm: a place pair whose straight way passes '
              'this close to an obstacle in a place scan is not imagined (chosen on the home '
              'run tuning seeds)', low=0.0, high=1.0),
        Param('imagination_pairs', 6, 'place pairs imagined per round (the nearest not yet '
              'imagined; each pair once)', low=1, high=1000),
        Param('depth_obstacles', True, 'add what the head camera sees above the scan plane '
              '(table tops, shelves) to the occupancy grid', read_only=True),
        Param('obstacle_min_height', 0.15, 'depth points from this height up are obstacles, m',
              low=0.0, high=5.0),
        Param('obstacle_max_height', 1.4, 'depth points up to this height are obstacles (the '
              "robot's height), m", low=0.05, high=10.0),
        Param('floor_height', 0.05, 'depth points lower than this are the floor (free), m',
              low=-1.0, high=1.0),
        Param('depth_max_range', 3.0, 'depth farther than this is ignored, m', low=0.2,
              high=20.0),
        Param('depth_stride', 4, 'use every n-th depth pixel in both directions', low=1,
              high=64),
        Param('self_filter_radius', 0.5, 'depth points this close to the base origin are the '
              'robot itself (its arm), m', low=0.0, high=3.0),
    )

    def __init__(self, **kwargs):
        super().__init__('cognitive_map', **kwargs)
        self.config = cm.MapConfig(radius=self.param('place_radius'),
                                   code_threshold=self.param('code_threshold'),
                                   max_jump=self.param('max_jump'),
                                   lost_threshold=self.param('lost_threshold'))
        self.grid_config = GridConfig(resolution=self.param('occupancy_resolution'),
                                      size=self.param('occupancy_size'))
        self.cmap = cm.CognitiveMap()
        self.grid = empty_grid(self.grid_config)
        self.heights = empty_grid(self.grid_config)  # the depth camera's layer
        # the frames waiting for the odometry of their stamps, oldest first (2 s of each)
        self.unplaced = {'scan': deque(maxlen=20), 'depth': deque(maxlen=4)}
        self.camera_info: CameraInfo | None = None
        self.depth_problem = self.scan_problem = ''
        self.odom: tuple | None = None  # (pose, stamp msg, receive time ns)
        self.scan: LaserScan | None = None
        self.image: Image | None = None
        self.world_image: tuple | None = None  # latest world_model_camera image, receive ns
        self.counts = {'updates': 0, 'invalid_odom': 0, 'bad_images': 0, 'edge_events': 0,
                       'rejected_events': 0, 'errors': 0, 'late_updates': 0,
                       'scan_frames_skipped': 0, 'depth_frames_skipped': 0}
        self.last_event = cm.MapEvent('start', -1, 'no update yet')
        self.odom_jumped = False
        self.last_update_pose: np.ndarray | None = None
        self.last_update_stamp_ns: int | None = None
        self.status = ('waiting for odom, scan and image', DiagnosticStatus.OK)
        self.update_ms = 0.0
        self.last_publish_ns = 0
        self.signature = None
        self.state_file = StateFile(self.param('state_file'))
        self.saved_signature = None
        self.resumed_stamp_ns: int | None = None  # odometry stamp of a resumed checkpoint
        self._load_state()
        self.world, self.world_error = load_world_model(
            self, self.param('world_model'), self.param('world_model_weights'))
        self.world_state = None   # the filtered world model state (batch 1)
        self.world_seen = None    # the camera message last filtered
        self.twist = (0.0, 0.0)   # odometry (linear, angular) velocity
        self.place_views: dict = {}  # place -> (state, image, map pose, distance to centre)
        self.view_memory = None  # imagination.ViewMemory of the views seen along the way
        self.judged_pairs: set = set()  # place pairs already imagined (each once)
        self.pending_links: list = []  # (proposal, pose a, pose b) for the map's group to add
        self.counts.update(imagined_links=0, imagined_links_vetoed=0, imagination_rounds=0)

        self.laser = LaserMount(self, self.param('base_frame'))
        self.pub_map = self.create_publisher(CognitiveMap, 'cognitive_map', LATCHED_QOS)
        self.pub_paths = self.create_publisher(PlaceEdgePathArray, 'cognitive_map/edge_paths',
                                               LATCHED_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, '~/markers', LATCHED_QOS)
        self.pub_grid = self.create_publisher(OccupancyGrid, '~/occupancy', LATCHED_QOS)
        self.pub_overhead = self.create_publisher(OccupancyGrid, '~/overhead', LATCHED_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # odometry in a group of its own: image callbacks in the sensor group took long enough
        # on a busy machine that the odometry queue dropped the history frames are placed with
        # (the queue stays shallow: a deep one, served more slowly than 30 Hz by a busy node,
        # fell seconds behind and no frame could be placed)
        self.create_subscription(Odometry, 'odom', self._on_odom, SENSOR_QOS,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        sensors = MutuallyExclusiveCallbackGroup()
        self.create_subscription(LaserScan, 'scan', self._on_scan, SENSOR_QOS,
                                 callback_group=sensors)
        # one subscription per camera: the codes and the world model may share the head camera
        head, world = 'head_camera/color/image_raw', None
        if self.world is not None:
            world = f"{self.param('world_model_camera')}/color/image_raw"
        self._world_on_head = world == head
        if self.param('code_source') == 'image' or self._world_on_head:
            self.create_subscription(Image, head, self._on_image, SENSOR_QOS,
                                     callback_group=sensors)
        if world is not None and not self._world_on_head:
            self.create_subscription(Image, world, self._on_world_image, SENSOR_QOS,
                                     callback_group=sensors)
        if self.param('depth_obstacles') and self.param('occupancy_rate') > 0:
            self.create_subscription(Image, 'head_camera/depth/image_rect', self._on_depth,
                                     SENSOR_QOS, callback_group=sensors)
            self.create_subscription(CameraInfo, 'head_camera/camera_info', self._on_info,
                                     SENSOR_QOS, callback_group=sensors)
        work = MutuallyExclusiveCallbackGroup()  # the map is only touched in this group
        self.create_subscription(PlaceEdge, '~/edge_events', self._on_edge_event, COMMAND_QOS,
                                 callback_group=work)
        self.create_timer(1.0 / self.param('update_rate'), self._update, callback_group=work)
        if self.state_file:
            self.create_timer(self.param('save_period'), self._save_state, callback_group=work)
        if self.world is not None:  # inference in its own group; the map gets the results
            world = MutuallyExclusiveCallbackGroup()
            self.create_timer(self.param('world_model_period'), self._observe_world,
                              callback_group=world)
            if self.param('imagination_period') > 0:
                self.create_timer(self.param('imagination_period'), self._imagine,
                                  callback_group=world)
        if self.param('occupancy_rate') > 0:
            self.create_timer(1.0 / self.param('occupancy_rate'), self._update_grid,
                              callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0, self._publish_diagnostics)

    # -------------------------------------------------------------- checkpoint
    def _load_state(self) -> None:
        doc, why = self.state_file.load()
        if why:
            self.get_logger().error(f'{why}; starting with an empty map')
        if doc is None:
            return
        try:
            self.cmap = cm.map_from_checkpoint(doc, str(self.state_file.path))
        except ValueError as exc:
            self.get_logger().error(f'checkpoint ignored, starting with an empty map: {exc}')
            return
        stamp = doc.get('odom_stamp_ns')
        self.resumed_stamp_ns = int(stamp) if isinstance(stamp, int) and stamp >= 0 else None
        self.last_event = cm.MapEvent('resumed', self.cmap.current,
                                      f'{self.cmap.num_places} places from {self.state_file.path}')
        self.get_logger().info(self.last_event.reason)

    def _save_state(self) -> None:
        signature = (self.cmap.num_places, int(self.cmap.visits.sum()), self.cmap.current,
                     len(self.cmap.edges), self.cmap.loop_closures)
        if signature == self.saved_signature:
            return
        doc = cm.map_to_checkpoint(self.cmap)
        if self.last_update_stamp_ns is not None:
            doc['odom_stamp_ns'] = self.last_update_stamp_ns
        why = self.state_file.save(doc)
        if why:
            self.status = (why, DiagnosticStatus.WARN)
            self.get_logger().warning(why, throttle_duration_sec=30.0)
            return
        self.saved_signature = signature

    def destroy_node(self):
        """Checkpoint the map (when a state file is set), then destroy the node."""
        if self.state_file:
            self.saved_signature = None
            self._save_state()
        return super().destroy_node()

    # -------------------------------------------------------------- inputs (cheap)
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_odom(self, msg: Odometry) -> None:
        pose = finite_odom_pose(self, msg, self.counts)
        if pose is None:
            return
        if self.odom is not None:
            # a discontinuity: farther than max_jump plus what the base can drive in between
            # (messages may be dropped on a busy machine)
            last_pose, last_stamp, _ = self.odom
            dt = max(0.0, (msg.header.stamp.sec - last_stamp.sec) +
                     (msg.header.stamp.nanosec - last_stamp.nanosec) * 1e-9)
            reach = self.config.max_jump + self.param('max_speed') * dt
            if np.linalg.norm(pose[:2] - last_pose[:2]) > reach:
                self.odom_jumped = True
        self.odom = (pose, msg.header.stamp, self._now_ns())
        self.twist = (float(msg.twist.twist.linear.x), float(msg.twist.twist.angular.z))
        # the history the scan and depth frames are placed with, at their own stamps
        try:
            self.laser.buffer.set_transform(transform_msg(
                self.param('odom_frame'), self.param('base_frame'),
                ((pose[0], pose[1], 0.0), yaw_quaternion(pose[2])), msg.header.stamp))
        except ValueError as exc:  # e.g. base_frame set to the odometry frame
            self.get_logger().error(f'odometry not kept for placing frames: {exc}',
                                    throttle_duration_sec=10.0)

    def _on_scan(self, msg: LaserScan) -> None:
        self.scan = (msg, self._now_ns())
        self.unplaced['scan'].append(msg)

    def _on_image(self, msg: Image) -> None:
        self.image = (msg, self._now_ns())
        if self._world_on_head:
            self.world_image = self.image

    def _on_world_image(self, msg: Image) -> None:
        self.world_image = (msg, self._now_ns())

    def _on_depth(self, msg: Image) -> None:
        self.unplaced['depth'].append(msg)

    def _on_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_edge_event(self, msg: PlaceEdge) -> None:
        i, j, n = int(msg.from_id), int(msg.to_id), self.cmap.num_places
        why = ''
        if not (0 <= i < n and 0 <= j < n) or i == j:
            why = f'edge event {i}->{j}: not two distinct places of {n}'
        elif msg.kind == PlaceEdge.BLOCKED:
            if self.cmap.edge(i, j) is None:
                why = f'edge event: no edge {i}--{j} to mark blocked'
            else:
                self.cmap = cm.mark_blocked(self.cmap, i, j, self.config)
        elif msg.kind == PlaceEdge.EXPERIENCED:
            self.cmap = cm.mark_traversed(self.cmap, i, j, self.config)
        else:
            why = f'edge event {i}->{j}: kind {msg.kind} is not BLOCKED or EXPERIENCED'
        if why:
            self.counts['rejected_events'] += 1
            self.get_logger().warning(why, throttle_duration_sec=2.0)
            return
        self.counts['edge_events'] += 1
        self.get_logger().info(f'edge {i}--{j} marked '
                               f'{cm.KIND_NAMES.get(int(msg.kind), msg.kind)}')
        self._publish(force=True)

    # -------------------------------------------------------------- map update
    def _fresh(self, received) -> bool:
        timeout = self.param('sensor_timeout') * 1e9
        return received is not None and self._now_ns() - received[-1] <= timeout

    def _code(self, scan: LaserScan, ranges: np.ndarray):
        if self.param('code_source') == 'scan':
            return cm.scan_code(ranges, scan.range_max)
        return cm.image_code(image_array(self.image[0]))

    def _update(self) -> None:
        if self.pending_links:
            self._apply_imagined()
        need = [name for name, value in (('odom', self.odom), ('scan', self.scan),
                                         ('image', self.image))
                if not self._fresh(value) and not (name == 'image' and
                                                   self.param('code_source') == 'scan')]
        if need:
            self.status = (f'waiting for {", ".join(need)}', DiagnosticStatus.WARN
                           if self.counts['updates'] else DiagnosticStatus.OK)
            return
        start = time.perf_counter()
        pose, stamp, _ = self.odom
        scan = self.scan[0]
        ranges, angles = scan_arrays(scan)
        ranges = scan_in_base(ranges, angles, self.laser.pose(scan.header.frame_id))
        self._resume_from_checkpoint(pose, stamp)
        config = self._config_for(pose)
        try:
            code = self._code(scan, ranges)
            self.cmap, event = cm.observe(self.cmap, pose, code, ranges, angles,
                                          scan.range_min, scan.range_max, config)
        except Exception as exc:  # noqa: BLE001 - a bad image or scan: keep the map, say why
            self.counts['errors'] += 1
            self.status = (f'update skipped: {type(exc).__name__}: {exc}',
                           DiagnosticStatus.WARN)
            self.get_logger().warning(self.status[0], throttle_duration_sec=5.0)
            return
        self.counts['updates'] += 1
        self.last_update_stamp_ns = stamp.sec * 10**9 + stamp.nanosec
        self.update_ms = 1000.0 * (time.perf_counter() - start)
        if event.kind not in ('stay',):
            self.last_event = event
            if event.kind != 'invalid':
                self.get_logger().info(f'{event.kind} place {event.place}: {event.reason}')
        self.status = (('lost: ' + event.reason) if self.cmap.lost else
                       f'{self.cmap.num_places} places, at place {self.cmap.current}',
                       DiagnosticStatus.WARN if self.cmap.lost else DiagnosticStatus.OK)
        self._publish(stamp=stamp)

    # -------------------------------------------------------------- world model
    def _observe_world(self) -> None:
        """Filter the latest camera image; keep the view nearest each place's centre."""
        odom, cmap = self.odom, self.cmap
        small = filter_latest_image(self, self.world_image) if odom is not None else None
        if small is None:
            return
        k = cmap.current
        if cmap.lost or not 0 <= k < cmap.num_places:
            return
        pose = odom[0] + cmap.offset  # the map frame
        from embodied_aif.models import imagination as im
        memory = self.view_memory if self.view_memory is not None else \
            im.empty_views(self.world)
        # replaced, not mutated: the imagination reads it from another callback group
        self.view_memory = im.remember_view(memory, self.world_state.features[0], small, pose,
                                            spacing=0.3, angle=math.radians(30))
        gap = float(np.linalg.norm(pose[:2] - cmap.poses[k, :2]))
        old = self.place_views.get(k)
        if gap <= 0.5 * self.config.radius and (old is None or gap < old[3] or
                                                 np.linalg.norm(old[2][:2] -
                                                                cmap.poses[k, :2]) > gap + 0.5):
            # replaced, not mutated: the imagination reads it from another callback group
            self.place_views = {**self.place_views,
                                k: (self.world_state, small, pose.copy(), gap)}

    def _imagine(self) -> None:
        """Propose imagined edges between places with a remembered view (rate-limited).

        Runs in the world model's callback group on a snapshot of the map; the map's own
        group adds the proposals (:meth:`_apply_imagined`).
        """
        from embodied_aif.models import imagination as im
        cmap = self.cmap
        memory = self.view_memory
        visited = [k for k in range(cmap.num_places) if cmap.visits[k] > 0]
        if memory is None or len(visited) < 2:
            return
        # a bounded round: the nearest pairs not judged yet (each pair is judged once)
        edges = {tuple(sorted(e)) for e in cmap.edges}
        pairs = sorted(((i, j) for n, i in enumerate(visited) for j in visited[n + 1:]
                        if (i, j) not in edges and (i, j) not in self.judged_pairs and
                        np.linalg.norm(cmap.poses[i, :2] - cmap.poses[j, :2]) <= 6.0),
                       key=lambda ij: np.linalg.norm(cmap.poses[ij[0], :2] -
                                                     cmap.poses[ij[1], :2]))
        chosen = set()
        for i, j in pairs:  # a straight trip the laser saw blocked is not worth imagining
            if len(chosen) == self.param('imagination_pairs'):
                break
            if cm.scan_blocks_link(cmap, i, j, self.param('imagination_scan_clearance')):
                self.judged_pairs.add((i, j))  # the scans only add evidence: for good
                self.counts['imagined_links_vetoed'] += 1
            else:
                chosen.add((i, j))
        if not chosen:
            return
        self.judged_pairs |= chosen
        self.counts['imagination_rounds'] += 1
        skip = [(i, j) for n, i in enumerate(visited) for j in visited[n + 1:]
                if (i, j) not in chosen]
        try:
            links, _ = im.judge_links(self.world, memory, cmap.poses, places=visited,
                                      known=skip, max_distance=6.0,
                                      threshold=self.param('imagination_threshold'),
                                      action_period=self.param('world_model_period'))
        except (ValueError, RuntimeError) as exc:
            self.counts['errors'] += 1
            self.get_logger().warning(f'imagination skipped: {exc}', throttle_duration_sec=10.0)
            return
        self.pending_links = [(link, cmap.poses[link.a, :2].copy(), cmap.poses[link.b, :2].copy())
                              for link in links]

    def _apply_imagined(self) -> None:
        """Add the pending imagined links whose places are still where they were imagined."""
        pending, self.pending_links = self.pending_links, []
        added = 0
        for link, pose_a, pose_b in pending:
            cmap = self.cmap
            if max(link.a, link.b) >= cmap.num_places or cmap.edge(link.a, link.b) is not None:
                continue
            if np.linalg.norm(cmap.poses[link.a, :2] - pose_a) > 0.5 or \
                    np.linalg.norm(cmap.poses[link.b, :2] - pose_b) > 0.5:
                continue
            self.cmap = cm.add_imagined_edge(cmap, link.a, link.b, self.config)
            added += 1
            self.get_logger().info(f'imagined edge {link.a}--{link.b} (confidence '
                                   f'{link.confidence:.2f}, {len(link.actions)} actions)')
        if added:
            self.counts['imagined_links'] += added
            self._publish(force=True)

    def _resume_from_checkpoint(self, pose: np.ndarray, stamp) -> None:
        """On the first update after a resumed checkpoint, trust continuous odometry.

        The robot may have driven on while this node was down. If the odometry stamp moved
        forward and the pose is within what the base could drive since the checkpoint, the map
        is re-localised by pose (cm.resume); otherwise (a reset simulation, another odometry
        frame) the next update treats the gap as a jump and re-localises from observations.
        """
        saved, self.resumed_stamp_ns = self.resumed_stamp_ns, None
        if saved is None or self.cmap.last_pose is None:
            return
        dt = (stamp.sec * 10**9 + stamp.nanosec - saved) * 1e-9
        moved = float(np.linalg.norm(cm.map_pose(self.cmap, pose)[:2] -
                                     self.cmap.last_pose[:2]))
        if dt < 0 or moved > self.config.max_jump + self.param('max_speed') * dt:
            self.get_logger().warning(f'resumed map: odometry moved {moved:.2f} m in {dt:.1f} s '
                                      'since the checkpoint; re-localising from observations')
            return
        self.cmap, event = cm.resume(self.cmap, pose)
        self.last_update_pose = pose.copy()
        self.last_event = event
        self.get_logger().info(event.reason)

    def _config_for(self, pose: np.ndarray) -> cm.MapConfig:
        """The map rules for this update: a late update is not an odometry jump.

        The model calls a move of more than ``max_jump`` since the last update a jump. When the
        update comes late (a busy machine) the robot may have moved that far along continuous
        odometry; only a discontinuity between two odometry messages is a jump.
        """
        last, self.last_update_pose = self.last_update_pose, pose.copy()
        jumped, self.odom_jumped = self.odom_jumped, False
        moved = 0.0 if last is None else float(np.linalg.norm(pose[:2] - last[:2]))
        if jumped or moved <= self.config.max_jump:
            return self.config
        self.counts['late_updates'] += 1
        return dataclasses.replace(self.config, max_jump=moved + self.config.max_jump)

    def _publish(self, force: bool = False, stamp=None) -> None:
        cmap = self.cmap
        signature = (cmap.num_places, int(cmap.visits.sum()), cmap.current,
                     tuple((k, e.kind, round(e.count, 3)) for k, e in cmap.edges.items()))
        now = self._now_ns()
        due = now - self.last_publish_ns >= self.param('publish_period') * 1e9
        if not force and not due and signature == self.signature:
            return
        self.signature, self.last_publish_ns = signature, now
        msg = map_to_msg(cmap, self.param('odom_frame'),
                         stamp if stamp is not None else self.get_clock().now().to_msg())
        self.pub_paths.publish(paths_to_msg(cmap, msg.header))
        self.pub_map.publish(msg)
        self.pub_markers.publish(map_markers(msg))

    def _pose_at(self, stamp) -> tuple[np.ndarray | None, str]:
        """The odometry pose (x, y, yaw) at a sensor stamp, interpolated; (None, why) if unknown.

        Placed with the latest pose instead, a depth frame taken while the base turned put the
        edge of a door it passed a quarter turn off, at the robot's side: rings of such cells
        built up around a robot turning in place, and the navigator saw itself walled in.
        """
        try:
            position, q = self.laser.buffer.lookup_pose(
                self.param('odom_frame'), self.param('base_frame'), stamp,
                tolerance_s=0.0, max_gap_s=ODOM_GAP_S)
        except TransformError as exc:
            return None, exc.reason
        return np.array([position[0], position[1], quaternion_yaw(q)]), ''

    def _update_grid(self) -> None:
        if not (self._fresh(self.odom) and self._fresh(self.scan)):
            return
        stamp = self.odom[1]
        placed = self._newest_placeable('scan')
        if placed is not None:
            scan, pose = placed
            ranges, angles = scan_arrays(scan)
            laser = compose_planar(pose, self.laser.pose(scan.header.frame_id))
            self.grid = integrate_scan(self.grid, laser, ranges, angles, scan.range_min,
                                       scan.range_max, self.grid_config)
            self.scan_problem = ''
        placed = self._newest_placeable('depth') if self.param('depth_obstacles') else None
        if placed is not None:
            self._integrate_depth(*placed)
            self.pub_overhead.publish(grid_to_msg(self.heights, self.grid_config,
                                                  self.param('odom_frame'), stamp))
        self.pub_grid.publish(grid_to_msg(combine_layers(self.grid, self.heights),
                                          self.grid_config, self.param('odom_frame'), stamp))

    def _newest_placeable(self, kind: str) -> tuple | None:
        """The newest waiting scan or depth frame whose odometry has come, and its pose.

        It and the older frames leave the queue (one frame per update, as the grid's rate
        allows); newer ones, whose odometry is yet to come, wait. Only the latest frame had
        waited before: when the odometry kept lagging the scans, each scan was replaced by the
        next before it could be placed, and the grid stayed unknown. A frame the history
        cannot place (older than it, across a hole) is counted and reported.
        """
        queue = self.unplaced[kind]
        for frame in reversed(list(queue)):
            pose, why = self._pose_at(frame.header.stamp)
            if why == 'future':
                continue
            done = to_ns(frame.header.stamp)
            while queue and to_ns(queue[0].header.stamp) <= done:
                queue.popleft()
            if pose is None:
                setattr(self, f'{kind}_problem', self._frame_skipped(kind, why))
                return None
            return frame, pose
        return None

    def _frame_skipped(self, kind: str, why: str) -> str:
        """Count and log a scan or depth frame left off the grid; the problem it reports."""
        self.counts[f'{kind}_frames_skipped'] += 1
        problem = f'{kind} frame skipped: no odometry at its stamp ({why})'
        self.get_logger().warning(problem, throttle_duration_sec=10.0)
        return problem

    def _integrate_depth(self, msg: Image, pose) -> None:
        """Add a head-camera depth frame to the height layer (odometry ``pose`` at its stamp)."""
        info = self.camera_info
        try:
            if info is None:
                raise ValueError('no head_camera/camera_info yet')
            depth = image_pixels(msg, '32FC1', 'f4', 1)
            if (info.width, info.height) != (msg.width, msg.height):
                raise ValueError(f'camera_info is {info.width}x{info.height}, the depth image '
                                 f'{msg.width}x{msg.height}')
            t_base_cam = self.laser.buffer.lookup(self.param('base_frame'),
                                                  msg.header.frame_id.lstrip('/'))
            points = depth_points(depth, np.asarray(info.k), t_base_cam,
                                  self.param('depth_stride'), self.param('depth_max_range'))
        except (ValueError, TransformError) as exc:
            self.depth_problem = f'depth obstacles skipped: {exc}'
            self.get_logger().warning(self.depth_problem, throttle_duration_sec=10.0)
            return
        self.depth_problem = ''
        points = points[np.hypot(points[:, 0], points[:, 1]) > self.param('self_filter_radius')]
        x, y, yaw = (float(v) for v in pose)
        c, s = math.cos(yaw), math.sin(yaw)
        points = np.column_stack([x + c * points[:, 0] - s * points[:, 1],
                                  y + s * points[:, 0] + c * points[:, 1], points[:, 2]])
        self.heights = integrate_heights(
            self.heights, points, self.grid_config,
            (self.param('obstacle_min_height'), self.param('obstacle_max_height')),
            self.param('floor_height'))

    def _publish_diagnostics(self) -> None:
        message, level = self.status
        if self.laser.problem and level == DiagnosticStatus.OK:
            message, level = self.laser.problem, DiagnosticStatus.WARN
        for problem in (self.scan_problem, self.depth_problem):
            if problem and level == DiagnosticStatus.OK:
                message, level = problem, DiagnosticStatus.WARN
        cmap = self.cmap
        kinds = [e.kind for e in cmap.edges.values()]
        values = {'places': cmap.num_places, 'visited': int(np.sum(cmap.visits > 0)),
                  'experienced_edges': kinds.count(cm.EXPERIENCED),
                  'imagined_edges': kinds.count(cm.IMAGINED),
                  'blocked_edges': kinds.count(cm.BLOCKED),
                  'loop_closures': cmap.loop_closures, 'current_place': cmap.current,
                  'localisation_confidence': f'{cmap.confidence:.3f}',
                  'last_event': f'{self.last_event.kind} {self.last_event.place} '
                                f'{self.last_event.reason}',
                  'update_ms': f'{self.update_ms:.1f}',
                  'world_model': self.param('world_model') if self.world is not None
                  else self.world_error, 'place_views': len(self.place_views),
                  'views': self.view_memory.size if self.view_memory is not None else 0,
                  **self.counts}
        status = DiagnosticStatus(level=level, name=self.get_fully_qualified_name(),
                                  message=message[:500],
                                  values=[KeyValue(key=k, value=str(v)) for k, v in
                                          values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)


NODE_CLASS = CognitiveMapNode
main = node_main(CognitiveMapNode)

if __name__ == '__main__':
    sys.exit(main())
