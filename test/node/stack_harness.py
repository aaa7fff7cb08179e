"""Nodes under test plus a probe, in one rclpy context, spun by a background executor."""
import threading
import time

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter


def overrides(values: dict) -> list:
    """Parameter overrides for a node constructor."""
    return [Parameter(k, value=v) for k, v in values.items()]


class StackHarness:
    """make_nodes(context) -> nodes; topics {name: (type, qos)} recorded by the probe.

    The probe lives in `namespace`, so relative topic names resolve as the nodes' do.
    """

    def __init__(self, make_nodes, topics: dict, threads: int = 4, keep: int = 200,
                 namespace: str | None = None):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.nodes = make_nodes(self.context)
        self.probe = rclpy.create_node('probe', namespace=namespace, context=self.context)
        self.lock = threading.Lock()
        self.keep = keep
        self.last = {}
        for topic, (kind, qos) in topics.items():
            self.probe.create_subscription(kind, topic, self.recorder(topic), qos)
        self.prepare()
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        for node in [*self.nodes, self.probe]:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def prepare(self):
        """Create the probe's action clients here, before the executor spins it.

        rclpy adds an ActionClient to its node before the client is complete: an executor
        thread that meets it half-made dies (``'ActionClient' object has no attribute
        '_lock'``) and takes every node of the harness with it.
        """

    def recorder(self, key):
        """A callback that appends what it receives under `key`."""
        def callback(msg):
            with self.lock:
                self.last.setdefault(key, []).append(msg)
                del self.last[key][:-self.keep]
        return callback

    def forget(self, *keys):
        with self.lock:
            for key in keys:
                self.last.pop(key, None)

    def all(self, key):
        with self.lock:
            return list(self.last.get(key, []))

    def latest(self, key):
        with self.lock:
            return self.last.get(key, [None])[-1]

    def wait(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def sim_time(self, clock_topic='/clock'):
        clock = self.latest(clock_topic)
        return -1.0 if clock is None else clock.clock.sec + clock.clock.nanosec * 1e-9

    def wait_sim(self, seconds, timeout=60.0):
        end = self.sim_time() + seconds
        assert self.wait(lambda: self.sim_time() >= end, timeout), 'sim time stalled'

    def close(self):
        nodes = [*self.nodes, self.probe]
        for node in nodes:  # stop taking new work first, then let the executor drain
            self.executor.remove_node(node)
            if isinstance(getattr(node, 'closing', None), threading.Event):
                node.closing.set()  # running action goals end instead of waiting on
        time.sleep(0.2)
        self.executor.shutdown()
        self.thread.join(timeout=10)
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=self.context)
