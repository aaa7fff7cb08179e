"""recorder: records topics to an MCAP file (ROS 2 profile), like `ros2 bag record -s mcap`.

Topics are discovered periodically; every topic matching `topics` (all when empty) and not in
`exclude` is subscribed raw (serialized CDR, no decoding cost) with a QoS compatible with its
publishers, and written with its receive time on the node clock (sim time under use_sim_time).
Topics whose type has no message definition on this machine are skipped with a warning.
"""
from __future__ import annotations

import importlib
import sys
import time as wallclock
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from embodied_aif.nodes._common import Param, ParamNode, node_main
from embodied_aif.nodes._mcap import DefinitionError, McapRecorder


def message_class(type_name: str):
    """The Python class of 'pkg/msg/Type'."""
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


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
    )

    def __init__(self, **kwargs):
        super().__init__('recorder', **kwargs)
        path = self.param('path') or f"runs/recording-{wallclock.strftime('%Y%m%d-%H%M%S')}.mcap"
        self.mcap = McapRecorder(Path(path))
        self.wanted = {t for t in self.param('topics') if t}
        self.excluded = {t for t in self.param('exclude') if t}
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
            self.subscriptions_by_topic[topic] = self.create_subscription(
                msg_class, topic, self._writer(topic), self._qos(topic), raw=True)
        self._publish_diagnostics()

    def _writer(self, topic: str):
        def write(data: bytes) -> None:
            self.mcap.write(topic, data, self.get_clock().now().nanoseconds)
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
