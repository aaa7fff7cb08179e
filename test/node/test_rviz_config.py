"""config/embodied_aif.rviz: every topic is published by the sim stack, type and QoS matching.

The displays' QoS must be compatible with the publishers': a Reliable display needs a reliable
publisher, a Transient Local one a latched publisher.
"""
import yaml
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from stack_harness import StackHarness

from embodied_aif.cli.run import compose
from embodied_aif.cli.stack import load_stack, validate

from conftest import REPO

TYPES = {
    'rviz_default_plugins/RobotModel': 'std_msgs/msg/String',
    'rviz_default_plugins/LaserScan': 'sensor_msgs/msg/LaserScan',
    'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
    'rviz_default_plugins/Map': 'nav_msgs/msg/OccupancyGrid',
    'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
    'rviz_default_plugins/PointCloud2': 'sensor_msgs/msg/PointCloud2',
    'rviz_default_plugins/Path': 'nav_msgs/msg/Path',
}


def rviz_topics():
    config = yaml.safe_load((REPO / 'config' / 'embodied_aif.rviz').read_text())
    out = {}
    for display in config['Visualization Manager']['Displays']:
        qos = display.get('Topic') or display.get('Description Topic')
        if qos:
            out[qos['Value']] = (TYPES[display['Class']], qos)
    return out


def test_every_rviz_topic_is_published_with_a_matching_type_and_qos():
    topics = rviz_topics()
    assert len(topics) == 11
    stack = load_stack(REPO / 'config' / 'sim.yaml')
    for entry in stack.nodes:
        if entry.name == 'sim_bridge':
            entry.parameters.update(real_time_factor=0.0, head_camera_width=64,
                                    head_camera_height=48)
    validate(stack)
    h = StackHarness(lambda context: compose(stack, context), {})
    try:
        def published():
            return all(h.probe.get_publishers_info_by_topic(t) for t in topics)
        assert h.wait(published, 30), [t for t in topics
                                        if not h.probe.get_publishers_info_by_topic(t)]
        for topic, (kind, qos) in topics.items():
            infos = h.probe.get_publishers_info_by_topic(topic)
            assert {i.topic_type for i in infos} == {kind}, topic
            for info in infos:
                if qos['Reliability Policy'] == 'Reliable':
                    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, topic
                if qos['Durability Policy'] == 'Transient Local':
                    assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL, topic
    finally:
        h.close()
