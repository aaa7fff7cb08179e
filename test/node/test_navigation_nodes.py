"""cognitive_map + navigator in-process with the simulator: explore, reach a goal, bad input."""
import dataclasses
import math
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, LaserScan
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from embodied_aif.models import cognitive_map as cm
from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from embodied_aif.nodes.cognitive_map import (
    CognitiveMapNode,
    GridConfig,
    empty_grid,
    grid_to_msg,
    integrate_scan,
    map_from_msg,
    map_markers,
    map_to_msg,
    paths_to_msg,
    scan_in_base,
    with_paths,
)
from embodied_aif.nodes.navigator import Navigator, clear_ahead, fuse_points, stall_points
from embodied_aif.nodes.sim_bridge import SimBridge
from embodied_aif_msgs.action import Navigate
from embodied_aif_msgs.msg import CognitiveMap

from conftest import REPO

# Furniture traps the robot now and then (the laser sees only table legs): these node tests use
# the default building without it until obstacles above the laser are mapped (issue 4).
BRIDGE = {'scenario': str(REPO / 'test' / 'fixtures' / 'rooms_2x2_no_furniture.yaml'),
          'real_time_factor': 3.0, 'physics_rate': 120.0, 'control_rate': 30.0,
          'head_camera_width': 64, 'head_camera_height': 48, 'head_camera_rate': 5.0,
          'wrist_camera_rate': 0.0, 'odom_rate': 20.0, 'joint_state_rate': 2.0}
SIM_TIME = [Parameter('use_sim_time', value=True)]
EXPLORE_SIM_S = 240.0


def _params(values):
    return SIM_TIME + [Parameter(k, value=v) for k, v in values.items()]


class Harness:
    """Bridge, cognitive_map and navigator in namespace 'robot'; a second pair in 'bad'.

    The probe feeds the 'bad' pair by hand; everything spins on one executor.
    """

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.lock = threading.Lock()
        self.last = {}
        self.rooms_at_places = {}
        self.probe = rclpy.create_node('probe', context=self.context)
        topics = {'/robot/cognitive_map': (CognitiveMap, LATCHED_QOS),
                  '/robot/cognitive_map/markers': (MarkerArray, LATCHED_QOS),
                  '/robot/cognitive_map/occupancy': (OccupancyGrid, LATCHED_QOS),
                  '/robot/plan': (Path, LATCHED_QOS),
                  '/robot/cmd_vel': (Twist, COMMAND_QOS),
                  '/robot/ground_truth/room': (String, LATCHED_QOS),
                  '/robot/ground_truth/robot_pose': (PoseStamped, 10),
                  '/clock': (Clock, 10), '/diagnostics': (DiagnosticArray, 50),
                  '/bad/cognitive_map': (CognitiveMap, LATCHED_QOS),
                  '/bad/cmd_vel': (Twist, COMMAND_QOS),
                  '/robot/nav_camera/color/image_raw': (Image, SENSOR_QOS)}
        for topic, (kind, qos) in topics.items():
            self.probe.create_subscription(kind, topic, self._keep(topic), qos)
        self.bad_odom = self.probe.create_publisher(Odometry, '/bad/odom', SENSOR_QOS)
        self.bad_scan = self.probe.create_publisher(LaserScan, '/bad/scan', SENSOR_QOS)
        self.bad_image = self.probe.create_publisher(Image, '/bad/head_camera/color/image_raw',
                                                     SENSOR_QOS)
        self.goal_pose = self.probe.create_publisher(PoseStamped, '/robot/goal_pose',
                                                     COMMAND_QOS)
        self.navigate = ActionClient(self.probe, Navigate, '/robot/navigate')
        self.bad_navigate = ActionClient(self.probe, Navigate, '/bad/navigate')
        self.nodes = [
            CognitiveMapNode(context=self.context, namespace='robot',
                             parameter_overrides=_params({})),
            Navigator(context=self.context, namespace='robot', parameter_overrides=_params(
                {'max_linear_speed': 0.6})),
            CognitiveMapNode(context=self.context, namespace='bad',
                             parameter_overrides=_params({})),
            Navigator(context=self.context, namespace='bad', parameter_overrides=_params(
                {'explore_when_idle': False, 'lost_timeout': 2.0})),
        ]
        self.bridge = SimBridge(context=self.context, namespace='robot',
                                parameter_overrides=[Parameter(k, value=v)
                                                     for k, v in BRIDGE.items()])
        with self.bridge._lock:  # the robot has not moved yet: the odom origin in the world
            self.start_pose = np.array(self.bridge.sim.base_pose())
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        for node in [self.probe, self.bridge] + self.nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _keep(self, topic):
        def callback(msg):
            with self.lock:
                self.last.setdefault(topic, []).append(msg)
                del self.last[topic][:-200]
                if topic == '/robot/cognitive_map' and msg.current_place >= 0:
                    room = self.latest('/robot/ground_truth/room')
                    if room is not None and room.data:
                        self.rooms_at_places.setdefault(room.data, set()).add(msg.current_place)
        return callback

    def latest(self, topic):
        return self.last.get(topic, [None])[-1]

    def all(self, topic):
        with self.lock:
            return list(self.last.get(topic, []))

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def sim_time(self):
        clock = self.latest('/clock')
        return -1.0 if clock is None else clock.clock.sec + clock.clock.nanosec * 1e-9

    def send(self, client, goal, timeout=120.0):
        assert client.wait_for_server(timeout_sec=10.0)
        future = client.send_goal_async(goal)
        assert self.wait(future.done, 10.0), 'goal not answered'
        handle = future.result()
        assert handle.accepted
        result = handle.get_result_async()
        assert self.wait(result.done, timeout), 'no result in time'
        return result.result().result

    def truth_xy(self):
        with self.lock:
            pose = self.latest('/robot/ground_truth/robot_pose').pose.position
        return np.array([pose.x, pose.y])

    def world_xy(self, odom_xy):
        x, y, yaw = self.start_pose
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([x + c * odom_xy[0] - s * odom_xy[1], y + s * odom_xy[0] + c * odom_xy[1]])

    def close(self):
        for node in self.nodes:  # the navigators end their goals, freeing the action threads
            if isinstance(node, Navigator):
                node.abort('test over')
        nodes = self.nodes + [self.bridge, self.probe]
        for node in nodes:  # stop taking new work, and let running callbacks end, before the
            self.executor.remove_node(node)  # executor's shutdown destroys its guard condition
        time.sleep(0.2)
        self.executor.shutdown()
        self.thread.join(timeout=5.0)  # no wait set is being built while the nodes go
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope='module')
def harness():
    h = Harness()
    yield h
    h.close()


def diag(h, name):
    for msg in reversed(h.all('/diagnostics')):
        for status in msg.status:
            if status.name == name:
                return status, {kv.key: kv.value for kv in status.values}
    return None, {}


def summary(cmap):
    places = [(p.id, round(p.pose.position.x, 2), round(p.pose.position.y, 2), p.visit_count)
              for p in cmap.places]
    edges = [(e.from_id, e.to_id, e.kind, round(e.confidence, 2)) for e in cmap.edges]
    return f'current {cmap.current_place} places {places} edges {edges}'


def test_explores_on_its_own_and_publishes_map_markers_occupancy(harness):
    h = harness
    assert h.wait(lambda: h.sim_time() > 0, 30), 'no /clock'
    start = time.monotonic()
    h.wait(lambda: len(h.rooms_at_places) >= 3 or h.sim_time() > EXPLORE_SIM_S, 100)
    print(f'explored rooms {sorted(h.rooms_at_places)} in {h.sim_time():.0f} sim s, '
          f'{time.monotonic() - start:.0f} wall s')
    assert len(h.rooms_at_places) >= 3, (h.rooms_at_places, diag(h, '/robot/navigator'),
                                         summary(h.latest('/robot/cognitive_map')))
    cmap = h.latest('/robot/cognitive_map')
    assert cmap.header.frame_id == 'odom' and len(cmap.places) >= 4
    assert any(e.kind == e.EXPERIENCED for e in cmap.edges)
    markers = h.all('/robot/cognitive_map/markers')[-1]
    spaces = {m.ns for m in markers.markers}
    assert {'cognitive_map/places', 'cognitive_map/ids', 'cognitive_map/edges_experienced'} \
        <= spaces
    # the markers show the map message with the same stamp: a sphere and an id per place
    stamp = markers.markers[0].header.stamp
    drawn = [m for m in h.all('/robot/cognitive_map') if m.header.stamp == stamp][-1]
    spheres = [m for m in markers.markers if m.ns == 'cognitive_map/places']
    assert len(spheres) == len(drawn.places) and markers.markers[0].header.frame_id == 'odom'
    grid = h.latest('/robot/cognitive_map/occupancy')
    data = np.asarray(grid.data)
    free = (data >= 0) & (data <= 20)
    assert grid.header.frame_id == 'odom' and np.sum(data >= 65) > 100 and np.sum(free) > 500
    # every visited place lies in the free space of the 8 m x 8 m building (the robot was
    # there): inside, and clear of walls and furniture, up to the odometry drift
    world = h.bridge.sim.world
    for p in cmap.places:
        if p.visit_count > 0:
            x, y = h.world_xy((p.pose.position.x, p.pose.position.y))
            assert -0.2 < x < 8.2 and -0.2 < y < 8.2
            assert world.clearance_at(x, y) > 0.15, (p.id, x, y)
    # the robot's trajectory only ever approached the walls to the footprint radius
    assert all(math.isfinite(c.linear.x) and math.isfinite(c.angular.z)
               for c in h.all('/robot/cmd_vel'))
    status, values = diag(h, '/robot/cognitive_map')
    assert status is not None and int(values['places']) >= 4
    assert 'cannot transform' not in status.message  # the laser mount came from /tf_static
    assert h.nodes[0].laser.pose('laser_link')[0] > 0.1  # the laser sits ahead of the base


def test_goal_to_a_known_place_is_reached(harness):
    h = harness
    cmap = h.latest('/robot/cognitive_map')
    # a visited place 1-3 m away (long trips across rooms still fail now and then: issue 4)
    here = next(p for p in cmap.places if p.id == cmap.current_place).pose.position
    candidates = [p for p in cmap.places if p.visit_count > 0 and 1.0 < math.hypot(
        p.pose.position.x - here.x, p.pose.position.y - here.y) < 3.0]
    assert candidates, 'no visited place 1-3 m away'
    place = candidates[0]
    goal = Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE, place_id=place.id, tolerance=0.3)
    # Known weakness (issue 4): about one goal in three is aborted "unreachable" after blocked
    # attempts; a client (the executive) sends it again, and so does this test, at most twice.
    # The abort comes after max_blocked_edges (8) edges without progress for stuck_steps (80)
    # control periods each: CI waited 100 s and saw four of them, no abort and no retry.
    reasons = []
    for _ in range(3):
        result = h.send(h.navigate, goal, timeout=200.0)
        if result.success:
            break
        assert result.reason, 'an aborted goal must say why'
        reasons.append(result.reason)
    assert result.success, reasons
    assert result.distance_travelled > 0.5
    target = h.world_xy((place.pose.position.x, place.pose.position.y))
    # within the tolerance plus the odometry drift of the run
    assert np.linalg.norm(h.truth_xy() - target) < 0.3 + 0.5
    plan = h.latest('/robot/plan')
    assert plan.header.frame_id == 'odom' and len(plan.poses) >= 1
    # RViz's "2D Goal Pose": a goal in another frame is rejected, one in odom is driven to
    wrong = PoseStamped()
    wrong.header.frame_id = 'map'
    h.goal_pose.publish(wrong)
    assert h.wait(lambda: diag(h, '/robot/navigator')[1].get('rejected_goal_poses') == '1', 20)
    cmap = h.latest('/robot/cognitive_map')
    here = np.array([place.pose.position.x, place.pose.position.y])
    # a visited place beyond the reached place's radius: reached along the map's edges (when
    # exploration left none that far, the farthest visited one: still a pose goal to drive to)
    def away(p):
        return float(np.linalg.norm([p.pose.position.x - here[0], p.pose.position.y - here[1]]))
    visited = [p for p in cmap.places if p.visit_count > 0 and away(p) > 0.5]
    assert visited, 'no other visited place'
    beyond = [p for p in visited if away(p) > place.radius + 0.5]
    other = min(beyond, key=away) if beyond else max(visited, key=away)
    goal = PoseStamped()
    goal.header.frame_id = 'odom'
    goal.pose.position.x, goal.pose.position.y = other.pose.position.x, other.pose.position.y
    h.goal_pose.publish(goal)
    assert h.wait(lambda: diag(h, '/robot/navigator')[1].get('last_result', '').startswith(
        'succeeded: goal_pose topic'), 60), diag(h, '/robot/navigator')


def test_a_goal_pose_with_align_heading_ends_turned_to_its_heading(harness):
    h = harness

    def true_yaw():
        q = h.latest('/robot/ground_truth/robot_pose').pose.orientation
        return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))

    cmap = h.latest('/robot/cognitive_map')
    here = next(p for p in cmap.places if p.id == cmap.current_place).pose.position
    # about a half-turn from where the base faces now (odom yaw ~ true yaw - start yaw)
    heading = math.remainder(true_yaw() - h.start_pose[2] + 2.5, 2 * math.pi)
    goal = Navigate.Goal(mode=Navigate.Goal.GOAL_POSE, tolerance=0.5, align_heading=True)
    goal.pose.header.frame_id = 'odom'
    goal.pose.pose.position.x, goal.pose.pose.position.y = here.x, here.y
    goal.pose.pose.orientation.z, goal.pose.pose.orientation.w = (math.sin(heading / 2),
                                                                  math.cos(heading / 2))
    result = h.send(h.navigate, goal, timeout=100.0)
    assert result.success and 'at heading' in result.reason, result.reason
    # the navigator's own (odometry) heading, and the simulator's, allowing for yaw drift
    said = math.radians(float(result.reason.split('at heading ')[1].split()[0]))
    assert abs(math.remainder(said - heading, 2 * math.pi)) < math.radians(8)
    assert abs(math.remainder(true_yaw() - h.start_pose[2] - heading, 2 * math.pi)) < 0.35
    # a heading that is not a rotation is refused with the reason
    goal.pose.pose.orientation.z = goal.pose.pose.orientation.w = 0.0
    result = h.send(h.navigate, goal, timeout=30.0)
    assert not result.success and 'goal heading' in result.reason, result.reason


def test_goal_outside_the_known_world_is_aborted_with_a_reason(harness):
    h = harness
    goal = Navigate.Goal(mode=Navigate.Goal.GOAL_POSE)
    goal.pose.header.frame_id = 'odom'
    goal.pose.pose.position.x, goal.pose.pose.position.y = 100.0, -40.0
    result = h.send(h.navigate, goal, timeout=30.0)
    assert not result.success and 'outside the known world' in result.reason
    result = h.send(h.navigate, Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE, place_id=9999),
                    timeout=30.0)
    assert not result.success and 'unknown place 9999' in result.reason
    image = Image(height=4, width=4, encoding='mono16', step=8, data=bytes(32))
    result = h.send(h.navigate, Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE, goal_image=image),
                    timeout=30.0)
    assert not result.success and 'bad goal image' in result.reason


def test_goal_image_of_the_current_view_is_reached(harness):
    h = harness
    # the view of the camera the world model observes (nav_camera)
    assert h.wait(lambda: h.latest('/robot/nav_camera/color/image_raw') is not None, 20)
    view = h.latest('/robot/nav_camera/color/image_raw')
    goal = Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE, goal_image=view)
    result = h.send(h.navigate, goal, timeout=60.0)
    assert result.success, result.reason
    assert result.reached_place >= 0


def _scan(stamp, value):
    msg = LaserScan(angle_min=-math.pi, angle_increment=2 * math.pi / 360, range_min=0.05,
                    range_max=8.0)
    msg.header.stamp, msg.header.frame_id = stamp, 'laser_link'
    msg.angle_max = msg.angle_min + 359 * msg.angle_increment
    msg.ranges = [value] * 360
    return msg


def test_nan_scans_bad_odometry_and_a_jump_do_not_crash_the_nodes(harness):
    h = harness
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    state = {'x': 0.0, 'nan': False}

    def publish():
        stamp = h.latest('/clock').clock
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id = stamp, 'odom'
        odom.pose.pose.position.x = float('nan') if state['nan'] else state['x']
        odom.pose.pose.orientation.w = 1.0
        h.bad_odom.publish(odom)
        h.bad_scan.publish(_scan(stamp, float('nan')))
        image = Image(height=48, width=64, encoding='rgb8', step=64 * 3,
                      data=pixels.tobytes())
        image.header.stamp = stamp
        h.bad_image.publish(image)

    timer = h.probe.create_timer(0.05, publish)
    try:
        assert h.wait(lambda: h.latest('/bad/cognitive_map') is not None, 20)
        first = h.latest('/bad/cognitive_map')
        assert len(first.places) >= 1 and first.current_place == 0
        # a goal with only NaN ranges: nothing is known to be free, the robot never drives
        goal = Navigate.Goal(mode=Navigate.Goal.GOAL_POSE)
        goal.pose.pose.position.x = 1.0
        client_result = {}

        def run_goal():
            client_result['r'] = h.send(h.bad_navigate, goal, timeout=60.0)
        thread = threading.Thread(target=run_goal)
        thread.start()
        h.wait(lambda: len(h.all('/bad/cmd_vel')) > 5, 20)
        state['nan'] = True  # odometry with NaN: dropped
        h.wait(lambda: int(diag(h, '/bad/navigator')[1].get('invalid_odom', 0)) > 0, 20)
        state['nan'], state['x'] = False, 50.0  # a 50 m odometry jump
        thread.join(timeout=70.0)
        result = client_result['r']
        assert not result.success and result.reason  # aborted with a reason, no hang
        cmds = h.all('/bad/cmd_vel')
        assert cmds and all(c.linear.x == 0.0 and math.isfinite(c.angular.z) for c in cmds)
        # both nodes are still alive and answer on /diagnostics
        now = h.sim_time()
        assert h.wait(lambda: diag(h, '/bad/cognitive_map')[0] is not None and
                      diag(h, '/bad/navigator')[0] is not None, 10)
        _, values = diag(h, '/bad/cognitive_map')
        assert int(values['invalid_odom']) > 0
        # after the jump the map did not grow phantom places 50 m away
        last = h.latest('/bad/cognitive_map')
        assert sum(p.visit_count > 0 for p in last.places) <= 2
        assert h.sim_time() >= now
    finally:
        h.probe.destroy_timer(timer)


# ---- the nodes' message conversions and helpers (no executor needed) ------------------------

def test_map_message_round_trip_keeps_places_edges_and_odom_frame():
    code, config = np.eye(4), cm.MapConfig(max_jump=5.0)
    cmap, _ = cm.update(cm.CognitiveMap(), (0.0, 0.0, 0.0), code[0], config)
    cmap, _ = cm.update(cmap, (2.0, 0.0, 0.0), code[1], config)
    cmap, _ = cm.add_hypothesised_place(cmap, (2.0, 2.5), cmap.current, config)
    assert cmap.num_places == 3
    cmap = cm.mark_blocked(cmap, 1, 2)
    cmap = dataclasses.replace(cmap, offset=np.array([0.5, -1.0, 0.0]))
    msg = map_to_msg(cmap, 'odom')
    # poses are published in the odometry frame: map pose minus the re-localisation offset
    assert msg.places[1].pose.position.x == pytest.approx(2.0 - 0.5)
    assert msg.places[1].pose.position.y == pytest.approx(0.0 + 1.0)
    back = map_from_msg(msg)
    np.testing.assert_allclose(back.poses[:, :2], cmap.poses[:, :2] - cmap.offset[:2], atol=1e-6)
    np.testing.assert_array_equal(back.visits, cmap.visits)
    assert back.current == cmap.current and set(back.edges) == set(cmap.edges)
    for key, edge in cmap.edges.items():
        assert back.edges[key].kind == edge.kind
        assert back.edges[key].confidence == pytest.approx(edge.confidence, abs=1e-5)
        assert back.edges[key].count == pytest.approx(edge.count, rel=1e-5)
    markers = map_markers(msg)
    lines = {m.ns: m for m in markers.markers if m.type == m.LINE_LIST}
    assert set(lines) == {'cognitive_map/edges_experienced', 'cognitive_map/edges_blocked'}
    assert lines['cognitive_map/edges_blocked'].colors[0].r == pytest.approx(1.0)
    # the blocked edge has confidence 0.5 / 10.5: nearly transparent
    assert lines['cognitive_map/edges_blocked'].colors[0].a < 0.3
    spheres = [m for m in markers.markers if m.ns == 'cognitive_map/places']
    assert spheres[2].scale.x < spheres[0].scale.x  # hypothesised places are drawn small
    # the travelled paths ride along on their own message, in the same frame
    paths = paths_to_msg(cmap, msg.header)
    assert [(p.from_id, p.to_id) for p in paths.paths] == [(0, 1)]
    assert paths.paths[0].points[-1].x == pytest.approx(2.0 - 0.5)
    routed = with_paths(back, paths)
    np.testing.assert_allclose(cm.edge_route(routed, 1, 0),
                               np.array(cm.edge_route(cmap, 1, 0)) - cmap.offset[:2])
    assert back.edges[(0, 1)].waypoints == ()
    bad = map_to_msg(cmap, 'odom')
    bad.places[0].id = 7
    with pytest.raises(ValueError, match='place ids'):
        map_from_msg(bad)


def test_occupancy_grid_marks_free_beams_and_returns():
    config = GridConfig(resolution=0.1, size=10.0)
    angles = np.array([0.0, math.pi / 2, math.pi, -math.pi / 2])
    ranges = np.array([2.03, np.inf, np.nan, 1.03])
    grid = integrate_scan(empty_grid(config), (0.0, 0.0, 0.0), ranges, angles, 0.05, 3.0,
                          config)
    cell = lambda x, y: grid[int((y + 5.0) / 0.1), int((x + 5.0) / 0.1)]  # noqa: E731
    assert cell(2.05, 0.05) > 0 and cell(1.0, 0.05) < 0  # return at 2 m, free before it
    assert cell(0.05, 2.5) < 0                           # no return: free up to range_max
    assert cell(-1.0, 0.05) == 0                         # NaN beam: unknown
    assert cell(0.05, -1.05) > 0
    msg = grid_to_msg(grid, config, 'odom')
    data = np.asarray(msg.data).reshape(msg.info.height, msg.info.width)
    assert msg.info.origin.position.x == pytest.approx(-5.0)
    assert data[int(5.05 / 0.1), int(7.05 / 0.1)] > 50 and data[50, 60] < 50
    assert data[50, 40] == -1


def test_scan_is_reprojected_from_the_laser_mount_to_the_base_origin():
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    ranges = np.full(360, np.inf)
    front, back, side = np.argmin(np.abs(angles)), 0, np.argmin(np.abs(angles - 1.0))
    ranges[front] = 1.8   # 2.0 m ahead of the base, seen from a laser 0.2 m forward
    ranges[back] = 1.2    # 1.0 m behind the base
    ranges[side] = np.nan
    out = scan_in_base(ranges, angles, (0.2, 0.0, 0.0))
    assert out[front] == pytest.approx(2.0) and out[back] == pytest.approx(1.0)
    assert np.isnan(out[side]) and np.sum(np.isfinite(out)) == 2
    np.testing.assert_array_equal(scan_in_base(ranges, angles, (0.0, 0.0, 0.0)), ranges)



def test_a_stall_with_a_clear_scan_becomes_a_virtual_obstacle():
    pose = (1.0, 2.0, math.pi / 2)
    wall = stall_points(pose, 0.4, 0.2)
    np.testing.assert_allclose(wall.mean(axis=0), [1.0, 2.4], atol=1e-9)
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    ranges = np.full(360, np.inf)
    ranges[0] = np.nan  # straight behind: unknown stays unknown
    fused = fuse_points(ranges, angles, pose, wall, 8.0)
    ahead = np.argmin(np.abs(angles))  # the robot faces +y: the wall is straight ahead
    assert fused[ahead] == pytest.approx(0.4, abs=1e-6)
    assert np.isnan(fused[0]) and np.isinf(fused[90])
    assert clear_ahead(ranges, angles, 0.5) and not clear_ahead(fused, angles, 0.5)
