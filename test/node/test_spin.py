"""A node's executor survives middleware errors raised out of its callbacks."""
import threading
import time

from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import MultiThreadedExecutor

from embodied_aif.nodes._common import spin_through_transport_errors


def test_a_failed_reply_is_logged_and_the_node_keeps_spinning(ros_node):
    calls = []

    def tick():
        calls.append(time.monotonic())
        if len(calls) == 1:  # as rmw does when a service client went away before its reply
            raise RCLError('client will not receive response')

    ros_node.create_timer(0.02, tick)
    executor = MultiThreadedExecutor(num_threads=2, context=ros_node.context)
    executor.add_node(ros_node)
    spinner = threading.Thread(target=spin_through_transport_errors, args=(executor, ros_node),
                               daemon=True)
    spinner.start()
    deadline = time.monotonic() + 30.0
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) >= 5, 'the timer stopped firing after the first callback raised'
    assert spinner.is_alive()
    executor.shutdown(timeout_sec=5.0)
    spinner.join(timeout=10.0)
    assert not spinner.is_alive(), 'spinning did not end when the executor shut down'
