"""Shared test set-up: an isolated ROS environment and helpers to spin a probe node."""
import os
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault('ROS_LOG_DIR', str(REPO / 'ros_logs'))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')


@pytest.fixture
def ros_node():
    """An initialised rclpy context and a probe node, torn down after the test."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f'probe_{uuid.uuid4().hex[:8]}', context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def spin_until(node, predicate, timeout: float) -> bool:
    """Spin node until predicate() is true or timeout (wall seconds) passes; return predicate()."""
    import rclpy

    executor = rclpy.executors.SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not predicate():
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    return predicate()
