"""A small TF buffer and listener (no tf2_ros on pip-only ROS 2).

``TfBuffer`` stores the transforms of /tf (with a bounded time history per parent -> child
edge) and /tf_static (timeless), and answers ``lookup(target_frame, source_frame, stamp)``
with the 4x4 matrix that takes points in ``source_frame`` to ``target_frame``, composing along
the frame tree in both directions and interpolating in time (linear translation, slerp
rotation; the maths is in ``models.transforms``). A stamp just outside the stored history is
answered with the nearest transform when it lies within ``tolerance``; otherwise, and for
unknown frames or frames in different trees, ``TransformError`` is raised with a message that
names the frames and the cause, and ``reason`` one of ``REASONS``. A lookup may also refuse
to interpolate across a hole in the history longer than ``max_gap_s`` (reason ``gap``): a
moving camera placed with a pose interpolated over a second had put a table's edge 3 cm off.

``TfListener`` fills a buffer from /tf and /tf_static (the latter latched). Like tf2_ros's
listener with ``spin_thread``, it receives on a small node and executor of its own, in its own
thread: in a process of several busy nodes, one shared executor had taken /tf so rarely that
the 10-deep queue overflowed and perception's history of the base had holes of 1-2 s.
"""
from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from embodied_aif.models.transforms import compose, interpolate_pose, invert, matrix
from embodied_aif.nodes._common import LATCHED_QOS, InputThread

NS = 1_000_000_000
REASONS = ('unknown_frame', 'no_path', 'future', 'past', 'gap')
# tf2's depth. The listener's own thread keeps up with it; on the shared executor of a busy
# process a queue this deep had been worked through a message per cycle, seconds late.
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE)
IDENTITY = (np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))


class TransformError(LookupError):
    """A lookup that cannot be answered; ``reason`` is one of REASONS."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def to_ns(stamp) -> int:
    """Nanoseconds of a stamp: builtin_interfaces/Time, rclpy Time, or seconds; None -> 0."""
    if stamp is None:
        return 0
    if hasattr(stamp, 'nanosec'):
        return int(stamp.sec) * NS + int(stamp.nanosec)
    if hasattr(stamp, 'nanoseconds'):
        return int(stamp.nanoseconds)
    return int(round(float(stamp) * NS))


def transform_msg(parent: str, child: str, pose, t: Time) -> TransformStamped:
    """TransformStamped of ``child`` in ``parent`` at ``t``: pose ((x, y, z), (qx, qy, qz, qw))."""
    msg = TransformStamped()
    msg.header.stamp = t
    msg.header.frame_id = parent
    msg.child_frame_id = child
    (x, y, z), (qx, qy, qz, qw) = pose
    tr = msg.transform
    tr.translation.x, tr.translation.y, tr.translation.z = float(x), float(y), float(z)
    tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w = (float(qx), float(qy),
                                                                  float(qz), float(qw))
    return msg


def _seconds(ns: int) -> str:
    return f'{ns / NS:.3f} s'


def _frame(name: str) -> str:
    return name[1:] if name.startswith('/') else name


class _Edge:
    """Transforms of one child frame in its parent: timeless (static) or a time history."""

    def __init__(self, parent: str, static: bool):
        self.parent = parent
        self.static = static
        self.stamps: list[int] = []
        self.poses: list[tuple[np.ndarray, np.ndarray]] = []

    def insert(self, t: int, pose, cache_ns: int, jump_ns: int) -> None:
        if self.static:
            self.stamps, self.poses = [t], [pose]
            return
        if self.stamps and t < self.stamps[-1] - jump_ns:  # the clock jumped back: restart
            self.stamps, self.poses = [], []
        k = bisect.bisect_left(self.stamps, t)
        if k < len(self.stamps) and self.stamps[k] == t:
            self.poses[k] = pose
        else:
            self.stamps.insert(k, t)
            self.poses.insert(k, pose)
        drop = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_ns)
        if drop:
            del self.stamps[:drop], self.poses[:drop]

    def at(self, t: int, tolerance_ns: int, child: str, why: str, max_gap_ns: int = 0):
        """Pose at time t (ns), interpolated; raises TransformError outside the history.

        With ``max_gap_ns`` > 0, also when t falls in a hole of the history longer than that.
        """
        if self.static:
            return self.poses[0]
        first, last = self.stamps[0], self.stamps[-1]
        if t > last:
            if t - last <= tolerance_ns:
                return self.poses[-1]
            raise TransformError(
                f'{why}: extrapolation into the future: requested time {_seconds(t)} is '
                f'{(t - last) / NS:.3f} s after the latest transform {self.parent} -> {child} '
                f'at {_seconds(last)}', 'future')
        if t < first:
            if first - t <= tolerance_ns:
                return self.poses[0]
            raise TransformError(
                f'{why}: extrapolation into the past: requested time {_seconds(t)} is '
                f'{(first - t) / NS:.3f} s before the oldest transform {self.parent} -> {child} '
                f'at {_seconds(first)}', 'past')
        k = bisect.bisect_left(self.stamps, t)
        if self.stamps[k] == t:
            return self.poses[k]
        t0, t1 = self.stamps[k - 1], self.stamps[k]
        if 0 < max_gap_ns < t1 - t0:
            raise TransformError(
                f'{why}: {self.parent} -> {child} is not known between {_seconds(t0)} and '
                f'{_seconds(t1)} ({(t1 - t0) / NS:.3f} s without a transform, more than '
                f'{max_gap_ns / NS:.3f} s): not interpolated across the gap', 'gap')
        return interpolate_pose(self.poses[k - 1], self.poses[k], (t - t0) / (t1 - t0))


class TfBuffer:
    """Transforms of a frame tree over the last ``cache_s`` seconds; thread-safe.

    A transform stamped more than ``jump_back_s`` before the newest one of its edge means the
    clock jumped back (a simulation reset): that edge's history restarts from it.
    """

    def __init__(self, cache_s: float = 10.0, tolerance_s: float = 0.0, jump_back_s: float = 1.0):
        if not cache_s > 0.0 or tolerance_s < 0.0 or not jump_back_s > 0.0:
            raise ValueError(f'cache_s={cache_s} and jump_back_s={jump_back_s} must be > 0, '
                             f'tolerance_s={tolerance_s} >= 0')
        self.cache_ns = int(cache_s * NS)
        self.jump_ns = int(min(jump_back_s, cache_s) * NS)
        self.tolerance_ns = int(tolerance_s * NS)
        self._edges: dict[str, _Edge] = {}
        self._lock = threading.Lock()

    def clear(self, static: bool = True) -> None:
        """Forget the transforms; with ``static=False`` keep the timeless ones (clock jumps)."""
        with self._lock:
            if static:
                self._edges.clear()
            else:
                self._edges = {c: e for c, e in self._edges.items() if e.static}

    def frames(self) -> set[str]:
        """Every frame name known to the buffer."""
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def set_transform(self, msg, static: bool = False) -> None:
        """Store one geometry_msgs/TransformStamped; raises ValueError when it is malformed."""
        parent, child = _frame(msg.header.frame_id), _frame(msg.child_frame_id)
        if not parent or not child or parent == child:
            raise ValueError(f'transform {parent!r} -> {child!r}: frame ids must be non-empty '
                             'and differ')
        tr, rot = msg.transform.translation, msg.transform.rotation
        # plain floats: /tf brings thousands of these a second to every listener
        p, q = (tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w)
        norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
        if not (math.isfinite(norm) and all(map(math.isfinite, p))) or norm < 1e-6:
            raise ValueError(f'transform {parent} -> {child}: translation {list(p)} or '
                             f'rotation {list(q)} is not finite or not a rotation')
        p = np.array(p, dtype=float)
        q = np.array(q, dtype=float)
        t = to_ns(msg.header.stamp)
        with self._lock:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = self._edges[child] = _Edge(parent, static)
            edge.insert(t, (p, q / norm), self.cache_ns, self.jump_ns)

    def set_message(self, msg: TFMessage, static: bool = False) -> list[str]:
        """Store every transform of a tf2_msgs/TFMessage; return why any were rejected."""
        problems = []
        for transform in msg.transforms:
            try:
                self.set_transform(transform, static)
            except ValueError as exc:
                problems.append(str(exc))
        return problems

    def _ancestors(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._edges and len(chain) <= len(self._edges):
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def lookup_pose(self, target_frame: str, source_frame: str, stamp=None,
                    tolerance_s: float | None = None,
                    max_gap_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Pose (position, quaternion xyzw) of source_frame in target_frame at stamp.

        ``stamp`` None or zero means the latest time at which every transform on the path is
        known (tf2's convention). ``max_gap_s`` > 0: no interpolation across a longer hole in
        an edge's history (reason ``gap``). Raises TransformError naming the frames and cause.
        """
        target, source = _frame(target_frame), _frame(source_frame)
        tol = self.tolerance_ns if tolerance_s is None else int(tolerance_s * NS)
        gap = int(max_gap_s * NS)
        why = f'cannot transform {source!r} into {target!r}'
        with self._lock:
            known = set(self._edges) | {e.parent for e in self._edges.values()}
            unknown = [f for f in (source, target) if f not in known]
            if unknown:
                raise TransformError(f'{why}: unknown frame {unknown[0]!r} (known frames: '
                                     f'{", ".join(sorted(known)) or "none"})', 'unknown_frame')
            up_source, up_target = self._ancestors(source), self._ancestors(target)
            common = next((f for f in up_source if f in set(up_target)), None)
            if common is None:
                raise TransformError(f'{why}: no path between them: {source!r} is in the tree of '
                                     f'{up_source[-1]!r} and {target!r} in the tree of '
                                     f'{up_target[-1]!r}', 'no_path')
            path_s = up_source[:up_source.index(common)]
            path_t = up_target[:up_target.index(common)]
            t = to_ns(stamp)
            if t == 0:
                t = self._latest(path_s + path_t)
            common_from_source = self._chain(path_s, t, tol, why, gap)
            common_from_target = self._chain(path_t, t, tol, why, gap)
        return compose(invert(common_from_target), common_from_source)

    def _latest(self, frames: list[str]) -> int:
        dynamic = [self._edges[f].stamps[-1] for f in frames if not self._edges[f].static]
        return min(dynamic) if dynamic else 0

    def latest_ns(self, target_frame: str, source_frame: str) -> int:
        """The latest time (ns) at which source_frame is known in target_frame (0: timeless).

        Raises TransformError as lookup does when there is no path.
        """
        target, source = _frame(target_frame), _frame(source_frame)
        with self._lock:
            for f in (source, target):
                if f not in self._edges and f not in {e.parent for e in self._edges.values()}:
                    raise TransformError(f'unknown frame {f!r}', 'unknown_frame')
            up_source, up_target = self._ancestors(source), self._ancestors(target)
            common = next((f for f in up_source if f in set(up_target)), None)
            if common is None:
                raise TransformError(f'no path between {source!r} and {target!r}', 'no_path')
            return self._latest(up_source[:up_source.index(common)] +
                                up_target[:up_target.index(common)])

    def _chain(self, path: list[str], t: int, tol: int, why: str, gap: int = 0):
        """Pose of path[0] in the parent of path[-1], composing each edge at time t."""
        pose = IDENTITY
        for child in path:
            pose = compose(self._edges[child].at(t, tol, child, why, gap), pose)
        return pose

    def lookup(self, target_frame: str, source_frame: str, stamp=None,
               tolerance_s: float | None = None, max_gap_s: float = 0.0) -> np.ndarray:
        """4x4 matrix taking points in source_frame to target_frame at stamp (see lookup_pose)."""
        return matrix(*self.lookup_pose(target_frame, source_frame, stamp, tolerance_s,
                                        max_gap_s))

    def can_transform(self, target_frame: str, source_frame: str, stamp=None) -> bool:
        """Whether lookup would succeed."""
        try:
            self.lookup_pose(target_frame, source_frame, stamp)
        except TransformError:
            return False
        return True


class TfListener:
    """Fills a TfBuffer from /tf and /tf_static (latched); calls ``on_update`` after each.

    With ``spin_thread`` (the default) the subscriptions live on a small node of their own
    (``<node>_tf_listener``, same namespace and context), spun by its own executor in a
    thread, so that transforms are taken as they come however busy the node's executor is;
    ``on_update`` then runs in that thread. Without it they are the node's, in
    ``callback_group``.
    """

    def __init__(self, node, buffer: TfBuffer, on_update: Callable[[], None] | None = None,
                 callback_group=None, spin_thread: bool = True):
        self.node = node
        self.buffer = buffer
        self.on_update = on_update
        self._thread = InputThread(node, 'tf_listener') if spin_thread else None
        if self._thread is not None:
            subscribe = self._thread.create_subscription
        else:
            def subscribe(msg_type, topic, callback, qos):
                return node.create_subscription(msg_type, topic, callback, qos,
                                                callback_group=callback_group)
        self._subs = [subscribe(TFMessage, '/tf', lambda m: self._on_tf(m, False), TF_QOS),
                      subscribe(TFMessage, '/tf_static', lambda m: self._on_tf(m, True),
                                LATCHED_QOS)]

    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        problems = self.buffer.set_message(msg, static)
        if problems:
            self.node.get_logger().warning(f'ignored {len(problems)} transform(s): '
                                           f'{problems[0]}', throttle_duration_sec=5.0)
        if self.on_update is not None:
            self.on_update()

    def destroy(self) -> None:
        """Stop receiving: destroy the subscriptions (and the listener's own node and thread)."""
        if self._thread is not None:
            self._thread.destroy()  # its node's subscriptions with it
            self._thread = None
        else:
            for sub in self._subs:
                self.node.destroy_subscription(sub)
        self._subs = []
