"""recorder: records topics to an MCAP file (ROS 2 profile), like `ros2 bag record -s mcap`.

Topics are discovered periodically; every topic matching `topics` (all when empty) and not in
`exclude` is subscribed raw (serialized CDR, no decoding cost) with a QoS compatible with its
publishers, and written with its receive time on the node clock (sim time under use_sim_time);
`max_rates` thins heavy topics (camera images) to a rate on that clock.
Topics whose type has no message definition on this machine are skipped with a warning.
"""
from __future__ import annotations

import importlib
import sys
import time as wallclock
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from embodied_aif.nodes._common import Param, ParamNode, node_main
from embodied_aif.nodes._mcap import DefinitionError, McapRecorder


def message_class(type_name: str):
    """The Python class of 'pkg/msg/Type'."""
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def parse_rates(specs) -> dict[str, float]:
    """{topic: hz} of 'TOPIC=HZ' strings (empty strings ignored); ValueError names the entry."""
    rates = {}
    for spec in specs:
        if not spec:
            continue
        topic, sep, hz = str(spec).rpartition('=')
        try:
            value = float(hz)
        except ValueError:
            value = -1.0
        if not sep or not topic.startswith('/') or not 0 < value < 1e6:
            raise ValueError(f"max_rates entry {spec!r}: expected '/absolute/topic=HZ' with "
                             'HZ > 0')
        rates[topic] = value
    return rates


def _rates_problem(value) -> str | None:
    try:
        parse_rates(value)
    except ValueError as exc:
        return str(exc)
    return None


class Recorder(ParamNode):
    """Subscribes to the selected topics raw and appends them to one MCAP file."""

    PARAMETERS = (
        Param('path', '', 'output .mcap file (empty: runs/recording-<wall time>.mcap)',
              read_only=True),
        Param('topics', [''], 'topics to record (absolute names; [""] = every topic)',
              read_only=True),
        Param('exclude', [''], 'topics never recorded (absolute names)', read_only=True),
        Param('discovery_period', 1.0, 'seconds between topic discoveries', low=0.05, high=60.0,
              read_only=True),
        Param('max_rates', [''], "per-topic rate limits 'TOPIC=HZ' (e.g. camera images at 1 Hz "
              'on the node clock); other topics are recorded in full', read_only=True,
              validate=lambda value: _rates_problem(value)),
    )

    def __init__(self, **kwargs):
        super().__init__('recorder', **kwargs)
        path = self.param('path') or f"runs/recording-{wallclock.strftime('%Y%m%d-%H%M%S')}.mcap"
        self.mcap = McapRecorder(Path(path))
        self.wanted = {t for t in self.param('topics') if t}
        self.excluded = {t for t in self.param('exclude') if t}
        self.min_period_ns = {t: int(1e9 / hz) for t, hz in
                              parse_rates(self.param('max_rates')).items()}
        self.subscriptions_by_topic = {}
        self.skipped = {}
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(self.param('discovery_period'), self._discover)
        self._discover()
        self.get_logger().info(f'recording to {self.mcap.path}')

    def _qos(self, topic: str) -> QoSProfile:
        infos = self.get_publishers_info_by_topic(topic)
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for i in infos)
        latched = bool(infos) and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                          else ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                          else DurabilityPolicy.VOLATILE)

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscriptions_by_topic or topic in self.skipped \
                    or topic in self.excluded or (self.wanted and topic not in self.wanted) \
                    or any(part.startswith('_') for part in topic.split('/')):
                continue
            type_name = types[0]
            try:
                msg_class = message_class(type_name)
                self.mcap.add_channel(topic, type_name)
            except (DefinitionError, ValueError, AttributeError, ModuleNotFoundError) as exc:
                self.skipped[topic] = str(exc)
                self.get_logger().warning(f'not recording {topic} ({type_name}): {exc}')
                continue
            # no QoS event handlers: the QoS is the publishers' own (_qos), and each handler
            # is one more entity the executor walks on every message of every topic
            self.subscriptions_by_topic[topic] = self.create_subscription(
                msg_class, topic, self._writer(topic), self._qos(topic), raw=True,
                event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        self._publish_diagnostics()

    def _writer(self, topic: str):
        period = self.min_period_ns.get(topic, 0)
        last = [None]

        def write(data: bytes) -> None:
            now = self.get_clock().now().nanoseconds
            if period and last[0] is not None and 0 <= now - last[0] < period:
                return  # rate-limited (a clock jumping back restarts the limit)
            last[0] = now
            self.mcap.write(topic, data, now)
        return write

    def _publish_diagnostics(self) -> None:
        values = [KeyValue(key=topic, value=str(n))
                  for topic, n in sorted(self.mcap.counts.items())]
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name='recorder',
                                  message=f'{len(self.mcap.counts)} topics to {self.mcap.path}',
                                  values=values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def destroy_node(self):
        """Finish the MCAP file, then destroy the node."""
        for sub in self.subscriptions_by_topic.values():
            self.destroy_subscription(sub)
        self.mcap.close()
        return super().destroy_node()


NODE_CLASS = Recorder
main = node_main(Recorder)

if __name__ == '__main__':
    sys.exit(main())
