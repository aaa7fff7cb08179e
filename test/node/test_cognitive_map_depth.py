"""cognitive_map's height layer: a depth frame is placed with the odometry pose of its stamp."""
import math

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, LaserScan

from embodied_aif.models.occupancy import cell_to_world
from embodied_aif.models.transforms import quaternion_from_rotation, yaw_quaternion
from embodied_aif.nodes.cognitive_map import CognitiveMapNode

CAMERA = 'head_camera_optical_frame'
WIDTH, HEIGHT, FOCAL = 32, 24, 20.0


def stamp_of(msg, seconds: float):
    msg.header.stamp.sec = int(seconds)
    msg.header.stamp.nanosec = int(round((seconds % 1.0) * 1e9))
    return msg


def odometry(seconds: float, x: float, y: float, yaw: float) -> Odometry:
    msg = stamp_of(Odometry(), seconds)
    msg.header.frame_id, msg.child_frame_id = 'odom', 'base_link'
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    q = yaw_quaternion(yaw)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    return msg


def wall_depth(seconds: float, distance: float) -> Image:
    """A depth frame of a wall ``distance`` m in front of the camera."""
    msg = stamp_of(Image(height=HEIGHT, width=WIDTH, encoding='32FC1', step=4 * WIDTH), seconds)
    msg.header.frame_id = CAMERA
    msg.data = np.full((HEIGHT, WIDTH), distance, dtype=np.float32).tobytes()
    return msg


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    n = CognitiveMapNode(context=context, namespace='depth_test')
    # the camera 1 m above the base origin, looking along the base's x axis
    mount = TransformStamped(child_frame_id=CAMERA)
    mount.header.frame_id = 'base_link'
    mount.transform.translation.z = 1.0
    q = quaternion_from_rotation(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0],
                                           [0.0, -1.0, 0.0]]))
    r = mount.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    n.laser.buffer.set_transform(mount, static=True)
    n.camera_info = CameraInfo(width=WIDTH, height=HEIGHT,
                               k=[FOCAL, 0.0, WIDTH / 2, 0.0, FOCAL, HEIGHT / 2, 0.0, 0.0, 1.0])
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=context)


def occupied_xy(n) -> np.ndarray:
    rows, cols = np.nonzero(n.heights > 0)
    return cell_to_world(rows, cols, n.heights.shape, n.grid_config.resolution)


def test_a_depth_frame_taken_before_a_turn_is_placed_where_the_base_was_then(node):
    # the base turns a quarter left on the spot between the depth frame and the latest odometry
    for k in range(11):
        node._on_odom(odometry(10.0 + 0.05 * k, 0.0, 0.0, math.pi / 2 * k / 10))
    scan = stamp_of(LaserScan(angle_min=-math.pi, angle_increment=math.pi / 180,
                              range_min=0.1, range_max=5.0, ranges=[math.inf] * 360), 10.5)
    scan.header.frame_id = 'base_link'
    node._on_scan(scan)
    node._on_depth(wall_depth(10.0, 2.0))  # taken facing +x, before the turn
    node._update_grid()
    xy = occupied_xy(node)
    assert len(xy), node.depth_problem
    # the wall 2 m along +x (where the camera looked then), not along +y (where it looks now)
    assert np.all(np.abs(xy[:, 0] - 2.0) < 0.2), xy
    assert np.all(np.abs(xy[:, 1]) < 1.7), xy
    # a frame stamped after the latest odometry waits for it; one older than the history goes
    node._on_depth(wall_depth(11.0, 1.0))
    node._update_grid()
    assert len(occupied_xy(node)) == len(xy)
    node._on_odom(odometry(11.0, 0.0, 0.0, math.pi / 2))
    node._update_grid()
    later = occupied_xy(node)
    assert np.any((np.abs(later[:, 1] - 1.0) < 0.2) & (np.abs(later[:, 0]) < 0.7)), later
    node._on_depth(wall_depth(0.5, 1.5))
    node._update_grid()
    assert 'no odometry at its stamp (past)' in node.depth_problem
    assert len(occupied_xy(node)) == len(later)


def test_a_base_frame_named_like_the_odometry_frame_is_reported_not_raised():
    from rclpy.parameter import Parameter
    context = rclpy.Context()
    rclpy.init(context=context)
    n = CognitiveMapNode(context=context, namespace='depth_test_bad',
                         parameter_overrides=[Parameter('base_frame', value='odom')])
    try:
        n._on_odom(odometry(1.0, 0.0, 0.0, 0.0))  # logged; the callback does not raise
        assert n.odom is not None
        pose, why = n._pose_at(odometry(1.0, 0.0, 0.0, 0.0).header.stamp)
        assert pose is None and why
    finally:
        n.destroy_node()
        rclpy.try_shutdown(context=context)


def test_frames_across_a_hole_in_the_odometry_are_placed_up_to_a_second_and_reported_beyond(
        node):

    def scan_at(seconds: float) -> LaserScan:
        msg = stamp_of(LaserScan(angle_min=0.0, angle_increment=math.pi / 180, range_min=0.1,
                                 range_max=5.0, ranges=[1.5] * 10), seconds)
        msg.header.frame_id = 'base_link'
        return msg

    # a busy machine: odometry at 10 s, then none until 10.8 s (the hole CI met)
    node._on_odom(odometry(10.0, 0.0, 0.0, 0.0))
    node._on_odom(odometry(10.8, 0.4, 0.0, 0.0))
    node._on_scan(scan_at(10.4))
    node._on_depth(wall_depth(10.4, 2.0))
    node._update_grid()
    assert node.scan_problem == node.depth_problem == ''
    assert len(occupied_xy(node)), 'a depth frame inside a 0.8 s hole was not placed'
    assert np.any(node.grid > 0), 'a scan inside a 0.8 s hole was not placed'
    # a longer hole: neither frame is placed, and each is counted and reported
    grid, heights = node.grid.copy(), node.heights.copy()
    node._on_odom(odometry(13.0, 1.2, 0.0, 0.0))
    node._on_scan(scan_at(12.0))
    node._on_depth(wall_depth(12.0, 1.0))
    node._update_grid()
    assert node.scan_problem == 'scan frame skipped: no odometry at its stamp (gap)'
    assert node.depth_problem == 'depth frame skipped: no odometry at its stamp (gap)'
    assert node.counts['scan_frames_skipped'] == node.counts['depth_frames_skipped'] == 1
    assert np.array_equal(node.grid, grid) and np.array_equal(node.heights, heights)
    node._update_grid()  # a frame is judged once
    assert node.counts['scan_frames_skipped'] == 1
    sent = []
    node.pub_diag.publish = sent.append
    node._publish_diagnostics()
    status = sent[0].status[0]
    assert status.message == node.scan_problem and status.level == DiagnosticStatus.WARN
    assert {v.key: v.value for v in status.values}['depth_frames_skipped'] == '1'


def test_a_scan_waits_for_lagging_odometry_while_newer_ones_come(node):
    def beam(seconds: float, bearing: float) -> LaserScan:
        """One beam hitting something 1.5 m away at ``bearing``; the others see nothing."""
        msg = stamp_of(LaserScan(angle_min=-math.pi, angle_increment=math.pi / 2,
                                 range_min=0.1, range_max=5.0), seconds)
        msg.ranges = [math.inf] * 4
        msg.ranges[int(round((bearing + math.pi) / (math.pi / 2))) % 4] = 1.5
        msg.header.frame_id = 'base_link'
        return msg

    def hit(x: float, y: float) -> bool:
        rows, cols = np.nonzero(node.grid > 0)
        xy = cell_to_world(rows, cols, node.grid.shape, node.grid_config.resolution)
        return bool(np.any(np.hypot(xy[:, 0] - x, xy[:, 1] - y) < 0.2))

    node._on_odom(odometry(10.0, 0.0, 0.0, 0.0))
    for k, bearing in enumerate((0.0, math.pi / 2, -math.pi / 2)):  # each ahead of the odometry
        node._on_scan(beam(10.1 + 0.1 * k, bearing))
        node._update_grid()
    assert not np.any(node.grid > 0)  # all waiting
    # the odometry of the second scan's time comes: it is placed (the third still waits), not
    # lost because a newer scan came meanwhile; the first, older, is left out
    node._on_odom(odometry(10.25, 0.0, 0.0, 0.0))
    node._update_grid()
    assert hit(0.0, 1.5) and not hit(1.5, 0.0) and not hit(0.0, -1.5)
    node._on_odom(odometry(10.4, 0.0, 0.0, 0.0))
    node._update_grid()
    assert hit(0.0, -1.5)
    assert not node.unplaced['scan'] and node.counts['scan_frames_skipped'] == 0
