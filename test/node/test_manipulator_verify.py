"""manipulator: a pick or place is verified only by sightings made after it, not by old tracks."""
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.parameter import Parameter

from embodied_aif.nodes.manipulator import Manipulator
from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray

NS = 1_000_000_000


def stamp(ns: int):
    from builtin_interfaces.msg import Time
    return Time(sec=ns // NS, nanosec=ns % NS)


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    n = Manipulator(context=context, namespace='verify_test',
                    parameter_overrides=[Parameter('verify_timeout', value=0.3)])
    base = TransformStamped(child_frame_id='base_link')
    base.header.frame_id = 'odom'
    base.transform.translation.x = 1.0
    base.transform.rotation.w = 1.0
    n.tf.set_transform(base, static=True)
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=context)


def beliefs(frame_ns: int, last_seen_ns: int | None, x: float) -> ObjectBeliefArray:
    msg = ObjectBeliefArray()
    msg.header.frame_id, msg.header.stamp = 'odom', stamp(frame_ns)
    belief = ObjectBelief(header=msg.header, id='bottle')
    if last_seen_ns is not None:
        belief.last_seen = stamp(last_seen_ns)
    belief.pose.pose.position.x = x
    msg.objects.append(belief)
    return msg


def test_an_old_track_in_a_new_frame_is_not_a_sighting(node):
    now = node.get_clock().now().nanoseconds
    released = now - 1 * NS
    # the track of the bottle where it was picked, last seen a minute ago, in this frame
    node.objects = beliefs(now, now - 60 * NS, 3.0)
    assert node._seen_at('bottle', released) is None
    # seen after the release, at the target: that is evidence (in the base frame)
    node.objects = beliefs(now, now, 1.5)
    seen = node._seen_at('bottle', released)
    assert seen is not None and abs(seen[0] - 0.5) < 1e-9
    # a publisher that leaves last_seen unset: the frame's stamp is all there is
    node.objects = beliefs(now, None, 1.5)
    assert node._seen_at('bottle', released) is not None
    node.objects = beliefs(released - NS, None, 1.5)
    assert node._seen_at('bottle', released) is None
