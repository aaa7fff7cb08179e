"""Goal images through the learned world model: sim_bridge + cognitive_map + navigator.

The robot explores, is sent to a place, and the navigation camera's view there is kept; from a
place farther away that view is sent back as a GOAL_IMAGE goal, and the robot has to end up
where the picture was taken, facing its way. Bad goal images and a corrupt weights file
give clear reasons.
"""
import dataclasses
import math

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from stack_harness import StackHarness
from std_msgs.msg import String

from embodied_aif.models import cognitive_map as cm
from embodied_aif.models import imagination as im
from embodied_aif.models.transforms import quaternion_yaw
from embodied_aif.nodes._common import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from embodied_aif.nodes.cognitive_map import CognitiveMapNode
from embodied_aif.nodes.navigator import Navigator
from embodied_aif.nodes.sim_bridge import SimBridge
from embodied_aif_msgs.action import Navigate
from embodied_aif_msgs.msg import CognitiveMap, PlaceEdge

from conftest import REPO

BRIDGE = {'scenario': str(REPO / 'test' / 'fixtures' / 'rooms_2x2_no_furniture.yaml'),
          'real_time_factor': 3.0, 'physics_rate': 120.0, 'control_rate': 30.0,
          'head_camera_width': 64, 'head_camera_height': 48, 'head_camera_rate': 5.0,
          'wrist_camera_rate': 0.0, 'odom_rate': 20.0, 'joint_state_rate': 2.0}
EXPLORE_SIM_S = 200.0
CAMERA = '/robot/nav_camera/color/image_raw'  # the world model's camera


def _params(values):
    return [Parameter('use_sim_time', value=True)] + [Parameter(k, value=v)
                                                      for k, v in values.items()]


class Stack(StackHarness):
    """The three nodes in namespace 'robot' plus a Navigate client on the probe."""

    def __init__(self):
        self.bridge = None

        def make(context):
            self.bridge = SimBridge(context=context, namespace='robot', parameter_overrides=[
                Parameter(k, value=v) for k, v in BRIDGE.items()])
            self.navigator = Navigator(context=context, namespace='robot',
                                       parameter_overrides=_params({'max_linear_speed': 0.6}))
            return [self.bridge, CognitiveMapNode(context=context, namespace='robot',
                                                  parameter_overrides=_params({})),
                    self.navigator]

        super().__init__(make, {
            '/clock': (Clock, 10), '/robot/cognitive_map': (CognitiveMap, LATCHED_QOS),
            '/robot/ground_truth/robot_pose': (PoseStamped, 10),
            '/robot/ground_truth/room': (String, LATCHED_QOS),
            CAMERA: (Image, SENSOR_QOS), '/diagnostics': (DiagnosticArray, 50)}, threads=6)
        self.goal_image = self.probe.create_publisher(Image, '/robot/goal_image', COMMAND_QOS)
        self.rooms = set()

    def prepare(self):
        self.navigate = ActionClient(self.probe, Navigate, '/robot/navigate')

    def send(self, goal, timeout=150.0):
        assert self.navigate.wait_for_server(timeout_sec=10.0)
        future = self.navigate.send_goal_async(goal)
        assert self.wait(future.done, 20.0), 'goal not answered'
        handle = future.result()
        assert handle.accepted
        result = handle.get_result_async()
        assert self.wait(result.done, timeout), 'no result in time'
        return result.result().result

    def truth(self):
        msg = self.latest('/robot/ground_truth/robot_pose')
        return np.array([msg.pose.position.x, msg.pose.position.y])

    def truth_yaw(self):
        o = self.latest('/robot/ground_truth/robot_pose').pose.orientation
        return quaternion_yaw([o.x, o.y, o.z, o.w])

    def close(self):
        self.navigator.abort('test over')
        super().close()


def navigator_values(stack):
    for msg in reversed(stack.all('/diagnostics')):
        for status in msg.status:
            if status.name == '/robot/navigator':
                return {kv.key: kv.value for kv in status.values}
    return {}


def go_to_place(stack, place_id):
    """GOAL_PLACE, sent again (at most twice) after an 'unreachable' abort (issue 4)."""
    reasons = []
    for _ in range(3):
        result = stack.send(Navigate.Goal(mode=Navigate.Goal.GOAL_PLACE, place_id=place_id,
                                          tolerance=0.3))
        if result.success:
            return
        reasons.append(result.reason)
    raise AssertionError(f'place {place_id} not reached: {reasons}')


@pytest.fixture(scope='module')
def stack():
    s = Stack()
    yield s
    s.close()


def _span(places) -> float:
    """The largest distance between two of the places (m)."""
    return max((float(np.linalg.norm(a - b)) for a in places.values() for b in places.values()),
               default=0.0)


def _visited(cmap):
    return {p.id: np.array([p.pose.position.x, p.pose.position.y])
            for p in cmap.places if p.visit_count > 0}


def test_a_goal_image_brings_the_robot_back_to_where_it_was_taken(stack):
    s = stack
    assert s.wait(lambda: s.sim_time() > 0, 60), 'no /clock'
    assert s.navigator.world is not None, s.navigator.world_error
    # explore on its own until the map has places in several rooms
    s.wait(lambda: (cmap := s.latest('/robot/cognitive_map')) is not None and
           len(_visited(cmap)) >= 6 and _span(_visited(cmap)) >= 3.0 or
           s.sim_time() > EXPLORE_SIM_S, 300)
    s.navigator.set_parameters([Parameter('explore_when_idle', value=False)])
    cmap = s.latest('/robot/cognitive_map')
    places = _visited(cmap)
    assert len(places) >= 3, f'explored only {len(places)} places'
    # two visited places about 3.5 m apart: take a picture at the one nearer the robot
    here = places.get(cmap.current_place, next(iter(places.values())))
    pair = min(((a, b) for a in places for b in places if a < b),
               key=lambda ab: abs(np.linalg.norm(places[ab[0]] - places[ab[1]]) - 3.5))
    target, far = sorted(pair, key=lambda k: np.linalg.norm(places[k] - here))
    go_to_place(s, target)
    s.wait_sim(2.0)  # standing still: the navigator has filtered the view too
    s.forget(CAMERA)
    assert s.wait(lambda: s.latest(CAMERA) is not None, 30)
    picture, taken_at, taken_yaw = s.latest(CAMERA), s.truth(), s.truth_yaw()
    assert int(navigator_values(s).get('views', 0)) > 0
    # drive to the other one
    go_to_place(s, far)
    start = s.truth()
    assert np.linalg.norm(start - taken_at) > 1.5, (start, taken_at)
    # the picture as a goal: the robot returns to where it was taken
    # (sent again, at most twice, after an 'unreachable' abort: issue 4)
    reasons = []
    for _ in range(3):
        result = s.send(Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE, goal_image=picture))
        if result.success:
            break
        assert result.reason, 'an aborted goal must say why'
        reasons.append(result.reason)
    assert result.success, reasons
    assert result.distance_travelled > 1.0
    end, end_yaw = s.truth(), s.truth_yaw()
    # where the best-matching view was seen from: near the picture's viewpoint, facing its way
    # (odometry drift and the matched view's spacing allow some error)
    assert np.linalg.norm(end - taken_at) < 1.0, (end, taken_at, start)
    turn = abs(math.remainder(end_yaw - taken_yaw, math.tau))
    assert turn < math.radians(45), (math.degrees(end_yaw), math.degrees(taken_yaw))
    assert s.wait(lambda: navigator_values(s).get('last_result', '').startswith(
        'succeeded: navigate: image (place'), 30), navigator_values(s)


def test_bad_goal_images_are_refused_with_a_reason(stack):
    s = stack
    image = Image(height=4, width=4, encoding='mono16', step=8, data=bytes(32))
    result = s.send(Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE, goal_image=image), 30.0)
    assert not result.success and 'bad goal image' in result.reason
    s.goal_image.publish(image)
    assert s.wait(lambda: navigator_values(s).get('rejected_goal_images') == '1', 30), \
        navigator_values(s)
    assert 'mono16' in navigator_values(s).get('last_result', '')
    # a good picture on the topic is taken as a goal
    s.goal_image.publish(s.latest(CAMERA))
    assert s.wait(lambda: 'goal_image topic: image (place' in
                  navigator_values(s).get('goal', '') + navigator_values(s).get(
                      'last_result', ''), 30), navigator_values(s)


def test_a_corrupt_weights_file_is_reported_and_goal_images_refused(tmp_path):
    bad = tmp_path / 'weights.pt'
    bad.write_bytes(b'not a checkpoint at all')
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Navigator(context=context, namespace='corrupt', parameter_overrides=[
            Parameter('world_model_weights', value=str(bad))])
        assert node.world is None
        assert 'corrupt' in node.world_error and str(bad) in node.world_error
        image = Image(height=8, width=8, encoding='rgb8', step=24, data=bytes(192))
        job, why = node._job_from_action(Navigate.Goal(mode=Navigate.Goal.GOAL_IMAGE,
                                                       goal_image=image))
        assert job is None and 'world model' in why and 'corrupt' in why
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_an_unknown_world_model_objective_is_reported():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Navigator(context=context, namespace='unknown', parameter_overrides=[
            Parameter('world_model', value='pixels')])
        assert node.world is None and "'pixels'" in node.world_error
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_without_the_world_model_goal_images_use_the_map_codes():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Navigator(context=context, namespace='none', parameter_overrides=[
            Parameter('world_model', value='none')])
        assert node.world is None and node.world_error == 'world_model is none'
        image = Image(height=8, width=8, encoding='rgb8', step=24, data=bytes(192))
        node._on_goal_image(image)  # no map yet: refused with the reason, no world model error
        assert node.counts['rejected_goal_images'] == 1
        assert node.last_result == 'goal_image rejected: no cognitive map yet'
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_imagined_links_enter_the_map_and_a_failure_blocks_them(monkeypatch):
    """The cognitive_map node's imagination round, called directly on a hand-made map.

    What the model imagines is measured by the benchmarks; here judge_links is replaced
    by a stand-in that records its inputs, to check what the node gives it and does with it.
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = CognitiveMapNode(context=context, namespace='imagine', parameter_overrides=[
            Parameter('imagination_threshold', value=0.01)])
        assert node.world is not None, node.world_error
        cmap, image = cm.CognitiveMap(), np.full((48, 64, 3), 120, np.uint8)
        for x in np.arange(0.0, 4.6, 0.1):  # three places along a corridor: 0--1--2
            cmap, _ = cm.observe(cmap, np.array([x, 0.0, 0.0]), cm.image_code(image),
                                 config=node.config)
        assert cmap.num_places == 3 and cmap.edge(0, 2) is None
        node.cmap = cmap
        rng = np.random.default_rng(0)
        state, memory = None, im.empty_views(node.world)
        for k in range(3):
            view = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            state = im.filter_step(node.world, state, (0.6, 0.0), view)
            memory = im.remember_view(memory, state.features[0], view, cmap.poses[k])
        node.view_memory = memory
        calls = []

        def stand_in(model, views, place_poses, places=None, known=(), threshold=0.1,
                     **kwargs):
            calls.append((views.size, list(places), sorted(known), threshold))
            return [im.LinkProposal(0, 2, 0.8, np.zeros((10, 2), np.float32))], []

        monkeypatch.setattr(im, 'judge_links', stand_in)
        node._imagine()
        assert node.counts['imagination_rounds'] == 1
        assert calls == [(3, [0, 1, 2], [(0, 1), (1, 2)], 0.01)]
        assert [(link.a, link.b) for link, _, _ in node.pending_links] == [(0, 2)]
        node._imagine()  # nothing changed: no second round
        assert node.counts['imagination_rounds'] == 1
        node._apply_imagined()
        edge = node.cmap.edge(0, 2)
        assert edge is not None and edge.kind == cm.IMAGINED
        assert node.counts['imagined_links'] == 1
        # the navigator failed to get through: the edge turns blocked and is not proposed again
        node._on_edge_event(PlaceEdge(from_id=0, to_id=2, kind=PlaceEdge.BLOCKED))
        assert node.cmap.edge(0, 2).kind == cm.BLOCKED
        node._imagine()  # each pair is imagined once: no new round re-adds it
        assert len(calls) == 1
        node._apply_imagined()
        assert node.cmap.edge(0, 2).kind == cm.BLOCKED
        # a wall the laser saw between places 0 and 2 (in place 1's scan): not imagined
        node.cmap = dataclasses.replace(cmap, scans={1: np.array([[0.3, 0.05], [0.3, -0.05]])})
        node.judged_pairs = set()
        node._imagine()
        assert len(calls) == 1 and node.counts['imagined_links_vetoed'] == 1
        assert (0, 2) in node.judged_pairs and node.cmap.edge(0, 2) is None
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
