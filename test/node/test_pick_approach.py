"""Approach, pick, approach, place, through the real nodes on the simulator.

The executive asks the manipulator's plan_approach where to stand, the navigator drives
there, the manipulator picks; then plan_approach finds a free spot on the support surface
nearest the plan's place and where to stand to put the object down there, and the manipulator
places it. One context: sim_bridge on test/fixtures/tabletop_approach.yaml (no object in reach
from the start; laser and a small head camera on), cognitive_map (the occupancy grid a
stand-point must be free on, with its depth layer), navigator, manipulator, executive and
perception (its support surfaces; its object beliefs go to a topic nobody reads). The probe
stands in for the object beliefs (ground truth, as in test_manipulator.py) and for the
planner and selector.
"""
import math
from pathlib import Path

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from rclpy.action import ActionClient
from stack_harness import overrides
from test_manipulator import Harness

from embodied_aif.nodes._common import LATCHED_QOS
from embodied_aif.nodes.cognitive_map import CognitiveMapNode
from embodied_aif.nodes.executive import Executive
from embodied_aif.nodes.manipulator import Manipulator
from embodied_aif.nodes.navigator import Navigator
from embodied_aif.nodes.perception import Perception
from embodied_aif.nodes.sim_bridge import SimBridge
from embodied_aif_msgs.action import Execute
from embodied_aif_msgs.msg import (
    ObjectBelief,
    ObjectBeliefArray,
    ParetoPlan,
    PlanOutcome,
    PlanStep,
    TaskSpec,
)

SCENARIO = str(Path(__file__).resolve().parent.parent / 'fixtures' / 'tabletop_approach.yaml')
SIM = {'use_sim_time': True}


def make_nodes(context):
    bridge = SimBridge(context=context, namespace='robot', parameter_overrides=overrides(
        {'scenario': SCENARIO, 'real_time_factor': 2.0, 'head_camera_rate': 2.0,
         'head_camera_width': 128, 'head_camera_height': 96,
         'wrist_camera_rate': 0.0, 'odom_noise_linear': 0.0, 'odom_noise_angular': 0.0}))
    manipulator = Manipulator(context=context, namespace='robot', parameter_overrides=overrides(
        {**SIM, 'motion_timeout_margin': 20.0, 'gripper_timeout': 5.0, 'input_timeout': 10.0,
         'tf_timeout': 10.0, 'verify_timeout': 3.0}))
    cmap = CognitiveMapNode(context=context, namespace='robot', parameter_overrides=overrides(
        {**SIM, 'world_model': 'none', 'depth_stride': 2, 'occupancy_resolution': 0.05,
         'occupancy_size': 12.0}))
    navigator = Navigator(context=context, namespace='robot', parameter_overrides=overrides(
        {**SIM, 'world_model': 'none', 'explore_when_idle': False}))
    executive = Executive(context=context, namespace='robot', parameter_overrides=overrides(
        {**SIM, 'step_timeout': 240.0}))
    perception = Perception(context=context, namespace='robot', parameter_overrides=overrides(
        {**SIM, 'max_rate': 2.0, 'publish_points': False}),
        cli_args=['--ros-args', '-r', 'objects:=perceived_objects'])
    return [bridge, manipulator, cmap, navigator, executive, perception]


class ApproachHarness(Harness):
    """The manipulator's harness, with an Execute client for the executive."""

    def prepare(self):
        super().prepare()
        self.execute = ActionClient(self.probe, Execute, 'execute')


@pytest.fixture(scope='module')
def harness():
    h = ApproachHarness(make_nodes, {
        '/robot/plan_outcome': (PlanOutcome, 10),
        '/robot/cognitive_map/overhead': (OccupancyGrid, LATCHED_QOS),
        '/robot/surfaces': (ObjectBeliefArray, LATCHED_QOS)})
    assert h.wait(lambda: h.latest('/robot/joint_states') is not None
                  and h.manipulator.objects is not None
                  and h.manipulator.grid is not None, 120.0), 'no joint_states, beliefs or grid'
    # the table top, which the scan plane passes under, is on the grid from the head camera
    overhead = '/robot/cognitive_map/overhead'
    assert h.wait(lambda: h.latest(overhead) is not None and
                  sum(v > 65 for v in h.latest(overhead).data) > 20, 120.0), 'no table top seen'
    # and the floor round the robot is known free, from the scan: stand-points need it
    assert h.wait(lambda: np.count_nonzero((h.manipulator.grid[0].data >= 0) &
                                           (h.manipulator.grid[0].data < 50)) > 300,
                  120.0), 'no free floor on the occupancy grid'
    h.wait_sim(2.0)
    yield h
    h.close()


def most_isolated_graspable(h) -> str:
    """The can, bottle or box farthest from any other object."""
    objects = h.truth().objects

    def room(o):
        return min(math.hypot(o.position[0] - p.position[0], o.position[1] - p.position[1])
                   for p in objects if p is not o)
    return max((o for o in objects if o.category in ('can', 'bottle', 'box')), key=room).name


def execute(h, plan_id):
    """Run the selected plan ``plan_id`` through the executive; its Execute result."""
    executive = h.nodes[4]
    assert h.wait(lambda: executive.plan is not None and executive.plan.id == plan_id, 120.0)
    client = h.execute
    assert client.wait_for_server(timeout_sec=60.0)
    sent = client.send_goal_async(Execute.Goal(plan_id=plan_id, max_replans=0))
    assert h.wait(sent.done, 60.0) and sent.result().accepted
    result = sent.result().get_result_async()
    assert h.wait(result.done, 900.0), 'no Execute result'
    return result.result().result


def test_a_pick_out_of_reach_drives_to_a_stand_point_then_lifts_the_object(harness):
    h = harness
    target = most_isolated_graspable(h)
    start = h.latest('/robot/ground_truth/robot_pose').pose.position
    task = h.probe.create_publisher(TaskSpec, 'task', LATCHED_QOS)
    selected = h.probe.create_publisher(ParetoPlan, 'selected_plan', LATCHED_QOS)
    task.publish(TaskSpec(id='pick', formula=f'F holding_{target}'))
    plan = ParetoPlan(id='pick/0', expected_cost=[1.0, 1.0, 0.0], initial_labels=['hand_empty'])
    plan.steps.append(PlanStep(action='pick', target=target, labels=[f'holding_{target}'],
                               expected_cost=[1.0, 1.0, 0.0]))
    selected.publish(plan)
    res = execute(h, 'pick/0')
    assert res.success, res.reason
    truth = h.truth()
    assert truth.attached == target
    end = h.latest('/robot/ground_truth/robot_pose').pose.position
    assert math.hypot(end.x - start.x, end.y - start.y) > 0.3  # it drove to pick
    # the fingers' measure of the object is kept, and a later belief of it (e.g. merged into
    # another track, seen too wide to grasp after a place) is no wider between the fingers
    manipulator = h.nodes[1]
    shape = next(o.shape for o in truth.objects if o.name == target)
    sides = [2 * shape['radius']] if 'radius' in shape else shape['size'][:2]
    width = manipulator.gripped[target]
    assert 0.5 * min(sides) < width <= max(sides) + 0.003, (width, shape)
    later = ObjectBelief(id='obj_999', merged_ids=[target])
    later.pose.pose.orientation.w = 1.0
    later.extent.x, later.extent.y, later.extent.z = 0.09, 0.085, 0.1
    box = manipulator._object_box(later, np.eye(4))
    assert box.extent.tolist() == [0.09, width, 0.1]

    def step_outcomes():
        return [m for m in h.all('/robot/plan_outcome') if m.plan_id == 'pick/0'
                and m.step_index == 0]
    # the outcome comes on a topic, the result on the action: the result may come first (CI)
    assert h.wait(lambda: bool(step_outcomes()), 10.0), 'no PlanOutcome of the pick step'
    outcome = step_outcomes()
    assert outcome[-1].success
    assert outcome[-1].realised_cost[1] > 0.3  # the drive's energy is the pick step's cost


def test_the_held_object_is_put_down_on_the_surface_nearest_the_place(harness):
    h = harness
    held = h.truth().attached
    assert held, 'the pick test holds an object'
    # perception's support surfaces: the table top (and the tray on it)
    assert h.wait(lambda: h.latest('/robot/surfaces') is not None and
                  len(h.latest('/robot/surfaces').objects) > 0, 120.0), 'no surfaces'
    executive = h.nodes[4]
    assert h.wait(lambda: executive.map_msg is not None and executive.map_msg.places, 60.0)
    place = executive.map_msg.places[0]
    task = h.probe.create_publisher(TaskSpec, 'task', LATCHED_QOS)
    selected = h.probe.create_publisher(ParetoPlan, 'selected_plan', LATCHED_QOS)
    task.publish(TaskSpec(id='place', formula=f'F {held}_on_place_{place.id}'))
    plan = ParetoPlan(id='place/0', expected_cost=[1.0, 1.0, 0.0],
                      initial_labels=[f'holding_{held}'])
    plan.steps.append(PlanStep(action='place', target=f'{held}@place_{place.id}',
                               labels=[f'{held}_on_place_{place.id}', 'hand_empty'],
                               expected_cost=[1.0, 1.0, 0.0]))
    selected.publish(plan)
    res = execute(h, 'place/0')
    assert res.success, res.reason
    h.wait_sim(2.0)
    truth = h.truth()
    assert truth.attached in ('', None)
    obj = next(o for o in truth.objects if o.name == held)
    # it stands on a surface perception reported, inside it, at its height
    t_world_odom = np.linalg.inv(h.t_odom_world())
    on = []
    for s in h.latest('/robot/surfaces').objects:
        p, q = s.pose.pose.position, s.pose.pose.orientation
        centre = t_world_odom @ [p.x, p.y, p.z, 1.0]
        yaw = 2 * math.atan2(q.z, q.w) + math.atan2(t_world_odom[1, 0], t_world_odom[0, 0])
        c, si = math.cos(yaw), math.sin(yaw)
        local = np.array([[c, si], [-si, c]]) @ (np.array(obj.position[:2]) - centre[:2])
        if np.all(np.abs(local) <= [s.extent.x / 2, s.extent.y / 2]) and \
                abs(obj.position[2] - centre[2]) < 0.1:
            on.append(s.id)
    assert on, (obj.position, [(s.id, s.pose.pose.position) for s in
                               h.latest('/robot/surfaces').objects])
