"""TfListener and InputThread over real rclpy: inputs keep coming while the node's executor is busy.

A node whose executor sits in a long callback (perception segmenting a frame) must still get
every /tf message: with the subscription on that executor, a 100-deep queue overflows and the
history of the base has holes, across which a moving camera's pose is interpolated off its arc
(the fault behind a table edge placed 3 cm off). The listener's own thread fills them.
"""
import threading
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from embodied_aif.nodes._common import InputThread
from embodied_aif.nodes._tf import NS, TfBuffer, TfListener

RATE_HZ = 200.0
BUSY_S = 1.5  # 300 messages arrive while the node's executor is busy: more than the queue


def _stamped(k: int) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = 'odom', 'base_link'
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1 + k // 200, (k % 200) * 5_000_000
    msg.transform.translation.x = 0.005 * k
    msg.transform.rotation.w = 1.0
    return msg


def _gaps(spin_thread: bool) -> tuple[int, float]:
    """Messages received and the longest hole (s) in the base's history."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('busy', context=context)
        talker = rclpy.create_node('talker', context=context)
        pub = talker.create_publisher(TFMessage, '/tf', 1000)
        buffer = TfBuffer(cache_s=60.0)
        listener = TfListener(node, buffer, spin_thread=spin_thread)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        busy = threading.Event()

        def hog():  # one long callback, as a frame being segmented
            busy.set()
            time.sleep(BUSY_S)
        timer = node.create_timer(0.05, hog)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        time.sleep(0.5)  # discovery
        assert busy.wait(5.0)
        n = int(RATE_HZ * 2 * BUSY_S)
        for k in range(n):
            pub.publish(TFMessage(transforms=[_stamped(k)]))
            time.sleep(1.0 / RATE_HZ)
        time.sleep(BUSY_S + 0.5)
        node.destroy_timer(timer)
        time.sleep(BUSY_S)  # the last long callback ends; the queue drains
        stamps = np.array(buffer._edges['base_link'].stamps) / NS  # noqa: SLF001
        executor.shutdown(timeout_sec=2.0)
        listener.destroy()
        talker.destroy_node()
        node.destroy_node()
        return len(stamps), float(np.max(np.diff(stamps))) if len(stamps) > 1 else np.inf
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize('spin_thread', [True, False])
def test_transforms_arrive_while_the_node_is_busy_only_on_the_listeners_own_thread(spin_thread):
    received, gap = _gaps(spin_thread)
    n = int(RATE_HZ * 2 * BUSY_S)
    if spin_thread:
        assert received == n and gap < 0.011, (received, gap)
    else:  # the fault it removes: the busy executor loses most of them, in long holes
        assert received < 0.8 * n and gap > 0.5, (received, gap)


def test_an_input_thread_takes_the_topic_as_its_node_names_it_and_stops_on_destroy():
    """The helper node follows the owning node's namespace and remapping; destroy ends it."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('arm', namespace='robot', context=context,
                                 cli_args=['--ros-args', '-r', 'states:=driver/states'])
        talker = rclpy.create_node('talker', context=context)
        remapped = talker.create_publisher(String, '/robot/driver/states', 10)
        unmapped = talker.create_publisher(String, '/robot/states', 10)
        got = []
        inputs = InputThread(node, 'states')
        inputs.create_subscription(String, 'states', lambda m: got.append(m.data), 10)
        deadline = time.monotonic() + 5.0
        while remapped.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remapped.get_subscription_count() == 1
        assert unmapped.get_subscription_count() == 0
        for k in range(5):  # nobody spins ``node``: the input thread takes them
            remapped.publish(String(data=f'm{k}'))
            unmapped.publish(String(data='wrong topic'))
            time.sleep(0.05)
        deadline = time.monotonic() + 5.0
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [f'm{k}' for k in range(5)]
        thread = inputs._thread  # noqa: SLF001
        inputs.destroy()
        assert not thread.is_alive()
        deadline = time.monotonic() + 5.0
        while remapped.get_subscription_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remapped.get_subscription_count() == 0
        inputs.destroy()  # twice is harmless
        talker.destroy_node()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
