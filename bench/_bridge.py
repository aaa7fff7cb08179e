"""The sim_bridge node's speed: real-time factor with every sensor topic subscribed.

The bridge runs unpaced (real_time_factor 0) in this process with a probe subscribed raw (no
deserialisation) to every sensor topic, so cameras render as they would for real subscribers;
the real-time factor is simulated time over wall time (and over this process's CPU time, which
other processes on the machine do not inflate).
"""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, LaserScan

from embodied_aif.nodes._common import SENSOR_QOS
from embodied_aif.nodes.sim_bridge import SimBridge

SENSOR_TOPICS = [(Image, f'{cam}/{kind}') for cam in ('head_camera', 'wrist_camera')
                 for kind in ('color/image_raw', 'depth/image_rect')]
SENSOR_TOPICS += [(CameraInfo, f'{cam}/camera_info') for cam in ('head_camera', 'wrist_camera')]
SENSOR_TOPICS += [(LaserScan, 'scan')]


def bridge_rtf(scenario: str, seed: int, seconds: float, cameras: bool) -> dict:
    """Run the bridge for `seconds` of sim time; return {'rtf', 'cpu_rtf', 'frames'}."""
    context = rclpy.Context()
    rclpy.init(context=context)
    params = {'scenario': scenario, 'seed': seed, 'real_time_factor': 0.0}
    if not cameras:
        params.update(head_camera_rate=0.0, wrist_camera_rate=0.0)
    bridge = SimBridge(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    probe = rclpy.create_node('bench_probe', context=context)
    frames = {'n': 0}

    def on_frame(_data):
        frames['n'] += 1

    for kind, topic in SENSOR_TOPICS:
        probe.create_subscription(kind, topic, on_frame, SENSOR_QOS, raw=True)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(bridge)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        # warm-up: subscriptions matched, first frames rendered
        while bridge.sim.time < 0.5:
            time.sleep(0.005)
        t0, wall0, cpu0, n0 = bridge.sim.time, time.perf_counter(), time.process_time(), frames['n']
        while bridge.sim.time - t0 < seconds:
            time.sleep(0.005)
        sim = bridge.sim.time - t0
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {'rtf': sim / wall, 'cpu_rtf': sim / cpu, 'frames': frames['n'] - n0}
    finally:
        executor.remove_node(probe)
        executor.remove_node(bridge)
        executor.shutdown()
        bridge.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)
