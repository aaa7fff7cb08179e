"""MCAP recording of ROS 2 topics: serialized CDR as received, with full message definitions.

The files follow the MCAP ROS 2 profile (schema encoding `ros2msg`, message encoding `cdr`),
so ROS 2 bag tools (rosbag2's MCAP storage) and Foxglove read them.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mcap.writer import CompressionType, Writer

PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
              'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring'}
SEPARATOR = '=' * 80


class DefinitionError(LookupError):
    """A message definition (.msg file) that cannot be found."""


def _share_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    return [Path(p) / 'share' for p in dict.fromkeys(prefixes)]


def _msg_file(type_name: str) -> Path:
    package, _, name = type_name.partition('/msg/')
    for share in _share_dirs():
        path = share / package / 'msg' / f'{name}.msg'
        if path.is_file():
            return path
    raise DefinitionError(f'no definition for {type_name} (looked for {package}/msg/{name}.msg '
                          f'under {", ".join(str(s) for s in _share_dirs())})')


def _field_types(text: str, package: str) -> list[str]:
    """Fully qualified non-primitive types used by the fields of a .msg text."""
    out = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(' ')
        if '=' in rest:
            continue  # a constant
        base = re.sub(r'\[[^\]]*\]$', '', kind)  # arrays: T[], T[N], T[<=N]
        base = re.sub(r'<=\d+$', '', base)  # bounded strings: string<=N
        if base in PRIMITIVES or base.startswith(('string<', 'wstring<')):
            continue
        if '/' not in base:
            base = f'{package}/{base}'
        pkg, name = base.split('/')[0], base.split('/')[-1]
        out.append(f'{pkg}/msg/{name}')
    return out


def message_definition(type_name: str) -> str:
    """The full ros2msg definition of 'pkg/msg/Type': its text plus every dependency's."""
    main_text = _msg_file(type_name).read_text()
    parts = [main_text.rstrip('\n')]
    seen = {type_name}
    queue = _field_types(main_text, type_name.split('/')[0])
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = _msg_file(dep).read_text()
        short = dep.replace('/msg/', '/')
        parts.append(f'{SEPARATOR}\nMSG: {short}\n{text.rstrip(chr(10))}')
        queue.extend(_field_types(text, dep.split('/')[0]))
    return '\n'.join(parts) + '\n'


class McapRecorder:
    """Writes serialized messages to an MCAP file, registering schemas and channels lazily."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = open(self.path, 'wb')  # noqa: SIM115 - closed in close()
        self._writer = Writer(self._stream, compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='embodied_aif')
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def add_channel(self, topic: str, type_name: str) -> None:
        """Register a topic of a type ('pkg/msg/Type'); DefinitionError if it has no .msg."""
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(
                name=type_name, encoding='ros2msg',
                data=message_definition(type_name).encode())
        if topic not in self._channels:
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding='cdr', schema_id=self._schemas[type_name])
            self.counts[topic] = 0

    def write(self, topic: str, data: bytes, log_time_ns: int) -> None:
        """Append one serialized (CDR) message of a registered topic."""
        self._writer.add_message(channel_id=self._channels[topic], log_time=log_time_ns,
                                 publish_time=log_time_ns, data=data,
                                 sequence=self.counts[topic])
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the file (summary, index) and close it."""
        if not self._stream.closed:
            self._writer.finish()
            self._stream.close()
