"""What every node shares: declared parameters with ranges, validation, QoS, main()."""
from __future__ import annotations

import contextlib
import itertools
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Sensor streams: best effort, keep last 5 (rclpy's sensor-data profile).
SENSOR_QOS = qos_profile_sensor_data
# Maps and plans: late joiners get the last message.
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Commands: reliable, shallow.
COMMAND_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class Param:
    """One node parameter: default, description, optional numeric range or choices."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    read_only: bool = False
    validate: Callable[[Any], str | None] | None = None  # content check, after the type's

    def check(self, value: Any) -> str | None:
        """Return why value is not acceptable for this parameter, or None when it is."""
        kind = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                return f'expected true or false, got {value!r}'
        elif kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f'expected a number, got {value!r}'
            if kind is int and not isinstance(value, int):
                return f'expected an integer, got {value!r}'
            if not math.isfinite(value):
                return f'expected a finite number, got {value!r}'
            if self.low is not None and value < self.low:
                return f'{value!r} is below the minimum {self.low}'
            if self.high is not None and value > self.high:
                return f'{value!r} is above the maximum {self.high}'
        elif kind is str:
            if not isinstance(value, str):
                return f'expected a string, got {value!r}'
        elif kind is list and not isinstance(value, list):
            return f'expected a list, got {value!r}'
        if self.choices is not None and value not in self.choices:
            return f'{value!r} is not one of {list(self.choices)}'
        return self.validate(value) if self.validate is not None else None

    def descriptor(self) -> ParameterDescriptor:
        """Return the ROS parameter descriptor (description, range, read-only)."""
        desc = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices is not None:
            desc.additional_constraints = f'one of {list(self.choices)}'
        bounded = self.low is not None and self.high is not None
        if bounded and type(self.default) is float:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(self.low), to_value=float(self.high), step=0.0)]
        elif bounded and type(self.default) is int:
            desc.integer_range = [IntegerRange(
                from_value=int(self.low), to_value=int(self.high), step=0)]
        return desc


def validate_parameters(specs: Sequence[Param], values: dict[str, Any]) -> list[str]:
    """Check parameter values against their specs; return one message per problem."""
    by_name = {spec.name: spec for spec in specs}
    problems = []
    for key, value in values.items():
        if key == 'use_sim_time':
            if not isinstance(value, bool):
                problems.append(f'use_sim_time: expected true or false, got {value!r}')
            continue
        spec = by_name.get(key)
        if spec is None:
            known = ', '.join(sorted(by_name)) or 'none'
            problems.append(f'{key}: unknown parameter (known: {known})')
            continue
        if isinstance(spec.default, float) and isinstance(value, int) \
                and not isinstance(value, bool):
            value = float(value)
        why = spec.check(value)
        if why:
            problems.append(f'{key}: {why}')
    return problems


def coerce_parameters(specs: Sequence[Param], values: dict[str, Any]) -> dict[str, Any]:
    """Return values with integers given for float parameters turned into floats."""
    floats = {s.name for s in specs if isinstance(s.default, float)}
    return {k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in values.items()}


class ParamNode(Node):
    """A Node that declares its PARAMETERS and validates run-time changes against them."""

    PARAMETERS: tuple[Param, ...] = ()

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        # set when the node is being shut down: long waits inside callbacks (action goals)
        # end on it, so that an executor shutting down does not wait for them forever
        self.closing = threading.Event()
        for spec in self.PARAMETERS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        self.add_on_set_parameters_callback(self._check_parameter_change)

    def param(self, name: str) -> Any:
        """Return the current value of a declared parameter."""
        return self.get_parameter(name).value

    def destroy_node(self):
        """End the waits of running callbacks (``closing``), then destroy the node."""
        self.closing.set()
        return super().destroy_node()

    def _check_parameter_change(self, params) -> SetParametersResult:
        values = {p.name: p.value for p in params}
        problems = validate_parameters(self.PARAMETERS, values)
        return SetParametersResult(successful=not problems, reason='; '.join(problems))


def image_pixels(msg, encoding: str, dtype: str, channels: int) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image as (H, W) or (H, W, C).

    ValueError names a wrong encoding or a size that does not match the data.
    """
    if msg.encoding != encoding:
        raise ValueError(f'{msg.encoding!r} image where {encoding} is required')
    dt = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row = msg.width * channels * dt.itemsize
    if msg.height == 0 or msg.width == 0 or msg.step < row \
            or len(msg.data) != msg.step * msg.height:
        raise ValueError(f'{encoding} image {msg.width}x{msg.height} with step '
                         f'{msg.step} has {len(msg.data)} bytes of data')
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dt).astype(dt.newbyteorder('='))
    return pixels.reshape(msg.height, msg.width, channels) if channels > 1 \
        else pixels.reshape(msg.height, msg.width)


def occupancy_view(msg):
    """An OccupancyView of a nav_msgs/OccupancyGrid; ValueError names what is malformed."""
    from embodied_aif.models.occupancy import OccupancyView
    from embodied_aif.models.transforms import quaternion_yaw

    info = msg.info
    if len(msg.data) != info.width * info.height:
        raise ValueError(f'{len(msg.data)} cells for {info.width} x {info.height}')
    o = info.origin
    return OccupancyView(
        np.asarray(msg.data, dtype=np.int16).reshape(info.height, info.width), info.resolution,
        (o.position.x, o.position.y,
         quaternion_yaw([o.orientation.x, o.orientation.y, o.orientation.z, o.orientation.w])))


_INPUT_THREAD_IDS = itertools.count()


class InputThread:
    """Subscriptions taken as they come, on a small node and executor in a thread of their own.

    In a process of several busy nodes one shared executor serves each subscription about a
    message per wait cycle, behind callbacks that hold their group for hundreds of ms: a
    stream the node must not miss (/tf, joint states) then loses most of its messages, and a
    goal waiting on it stops for want of input. The helper node is ``<node>_<name>_<k>`` in
    the node's namespace and context; topic names are resolved by the node, so its own
    remappings apply. Callbacks run in this thread.
    """

    def __init__(self, node: Node, name: str):
        self.node = node
        self.host = rclpy.create_node(
            f'{node.get_name()}_{name}_{next(_INPUT_THREAD_IDS)}',
            namespace=node.get_namespace(), context=node.context,
            start_parameter_services=False, enable_rosout=False)
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(self.host)
        self._thread = threading.Thread(target=self._spin, daemon=True,
                                        name=f'{node.get_name()}_{name}')
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(ExternalShutdownException, ShutdownException):
            self._executor.spin()

    def create_subscription(self, msg_type, topic: str, callback, qos):
        """Subscribe ``topic`` (as the node would name it) on the helper node."""
        return self.host.create_subscription(msg_type, self.node.resolve_topic_name(topic),
                                             callback, qos)

    def destroy(self) -> None:
        """Stop the thread and destroy the helper node (and its subscriptions)."""
        if self._executor is None:
            return
        self._executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self._executor = None
        self.host.destroy_node()


class IsolatedExecutors:
    """Composed nodes, each on an executor and thread of its own (rclcpp's isolated container).

    rclpy's executor rebuilds its wait set in Python, from every entity of every node it holds
    (each publisher and subscription brings two QoS event handlers), whenever anything is
    ready. On one executor for the whole stack every /clock, /tf or joint-state message costs
    a walk over several hundred entities, and that walk took half the process's time in the
    demo. Isolated, a message wakes only the executors of the nodes that take it, and each
    walks its own node's entities. The nodes in ``serial`` (short callbacks only, e.g. a
    recorder) get a single-threaded executor, which hands each callback over with less cost.
    A callback's exception is logged by its node and kept in ``error``; that node is no
    longer served.
    """

    def __init__(self, nodes: Sequence[Node], threads: int = 2, serial: Sequence[Node] = ()):
        self.error: BaseException | None = None
        self._running = threading.Event()
        self._spinners = []
        for node in nodes:
            executor = SingleThreadedExecutor(context=node.context) \
                if any(node is n for n in serial) \
                else MultiThreadedExecutor(num_threads=threads, context=node.context)
            executor.add_node(node)
            self._spinners.append((node, executor, threading.Thread(
                target=self._spin, args=(node, executor), daemon=True,
                name=f'spin_{node.get_name()}')))

    def start(self) -> None:
        """Spin every node in its thread."""
        self._running.set()
        for _, _, thread in self._spinners:
            thread.start()

    def _spin(self, node: Node, executor) -> None:
        # spin_once in a loop that stop() can end before the executors shut down (rclpy's
        # shutdown races its own pool's tasks)
        while self._running.is_set() and executor.context.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except (ExternalShutdownException, ShutdownException):
                return
            except RCLError as exc:
                if not executor.context.ok():
                    return  # Ctrl-C shut the context down during the wait: a clean stop
                _log_transport_error(node, exc)
            except Exception as exc:  # reported, and kept for the owner
                if not executor.context.ok():
                    return
                node.get_logger().error(f'a callback raised, {node.get_name()} stops: '
                                        f'{type(exc).__name__}: {exc}')
                self.error = self.error or exc
                return

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the spin loops, let handed-out callbacks finish, shut the executors down."""
        self._running.clear()
        for _, _, thread in self._spinners:
            if thread.is_alive():
                thread.join(timeout=timeout_s)
        for _, executor, _ in self._spinners:
            executor.shutdown(timeout_sec=timeout_s)
        self._spinners = []


def names_object(belief, object_id: str) -> bool:
    """Whether an ObjectBelief is the object ``object_id`` names: its id or a merged-in id."""
    return object_id == belief.id or object_id in belief.merged_ids


def spin_through_transport_errors(executor, node: Node) -> None:
    """Spin until shutdown, logging middleware errors raised out of callbacks.

    A service reply whose client went away (or is not yet discovered) raises out of the
    executor; one lost reply must not take the node, and what it has learned, down.
    """
    while rclpy.ok(context=executor.context):
        try:
            executor.spin()
            return
        except RCLError as exc:
            if not rclpy.ok(context=executor.context):
                return
            _log_transport_error(node, exc)


def _log_transport_error(node: Node, exc: RCLError) -> None:
    node.get_logger().error(f'a callback failed in the middleware, node keeps running: {exc}',
                            throttle_duration_sec=5.0)


def spin_node(factory: Callable[[], Node], args: Sequence[str] | None = None,
              threads: int = 2) -> int:
    """Create a node and spin it on a MultiThreadedExecutor until Ctrl-C or shutdown."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        spin_through_transport_errors(executor, node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def node_main(node_class: type[Node]) -> Callable[[Sequence[str] | None], int]:
    """Return a console-script main(args=None) for a node class."""
    def main(args: Sequence[str] | None = None) -> int:
        return spin_node(node_class, args if args is not None else sys.argv)
    main.__doc__ = f'Run the {node_class.__name__} node until Ctrl-C.'
    return main
