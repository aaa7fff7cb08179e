"""TfBuffer without a node: lookups, inversion, chains, interpolation, tolerance and errors."""
import math

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from tf2_msgs.msg import TFMessage

from embodied_aif.models.transforms import matrix, yaw_quaternion
from embodied_aif.nodes._tf import TfBuffer, TransformError, to_ns


def tf(parent, child, t, xyz=(0.0, 0.0, 0.0), q=(0.0, 0.0, 0.0, 1.0)):
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp.sec = int(math.floor(t))
    msg.header.stamp.nanosec = int(round((t - math.floor(t)) * 1e9))
    tr, rot = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in xyz)
    rot.x, rot.y, rot.z, rot.w = (float(v) for v in q)
    return msg


def yaw(angle):
    return tuple(yaw_quaternion(angle))


@pytest.fixture
def robot():
    """A tree: odom -> base_link (moving, turning) -> camera (static), and a world tree."""
    buf = TfBuffer(cache_s=10.0)
    buf.set_message(TFMessage(transforms=[
        tf('base_link', 'camera_link', 0.0, (0.1, 0.0, 1.0)),
        # optical frame: z forward (= base x), x right (= base -y), y down (= base -z)
        tf('camera_link', 'camera_optical', 0.0, q=(-0.5, 0.5, -0.5, 0.5))]), static=True)
    for k in range(11):  # 1 m/s along x and 0.1 rad/s for 1 s
        t = 0.1 * k
        buf.set_transform(tf('odom', 'base_link', t, (t, 0.0, 0.0), yaw(0.1 * t)))
    buf.set_transform(tf('map', 'odom', 0.5, (2.0, 3.0, 0.0), yaw(math.pi / 2)))
    buf.set_transform(tf('world', 'table', 0.5, (5.0, 5.0, 0.7)))
    return buf


def test_direct_lookup_is_the_message(robot):
    m = robot.lookup('odom', 'base_link', 0.5)
    np.testing.assert_allclose(m, matrix([0.5, 0.0, 0.0], yaw(0.05)), atol=1e-12)


def test_inverse_direction(robot):
    forward = robot.lookup('odom', 'base_link', 0.3)
    backward = robot.lookup('base_link', 'odom', 0.3)
    np.testing.assert_allclose(backward, np.linalg.inv(forward), atol=1e-12)
    # a point at the odom origin seen from the base at t = 0.3 (x = 0.3, yaw 0.03)
    p = backward @ [0.0, 0.0, 0.0, 1.0]
    c, s = math.cos(0.03), math.sin(0.03)
    np.testing.assert_allclose(p[:3], [-0.3 * c, 0.3 * s, 0.0], atol=1e-12)


def test_chain_of_static_and_dynamic_edges(robot):
    m = robot.lookup('map', 'camera_optical', 0.5)
    expected = (matrix([2.0, 3.0, 0.0], yaw(math.pi / 2)) @ matrix([0.5, 0, 0], yaw(0.05))
                @ matrix([0.1, 0.0, 1.0], (0, 0, 0, 1)) @ matrix([0, 0, 0], (-0.5, 0.5, -0.5, 0.5)))
    np.testing.assert_allclose(m, expected, atol=1e-12)
    # the optical axis (z) points along the base's heading, rotated by map's 90 degrees
    forward = m[:3, :3] @ [0.0, 0.0, 1.0]
    np.testing.assert_allclose(forward, [-math.sin(0.05), math.cos(0.05), 0.0], atol=1e-12)
    # between two branches of the tree: camera -> odom -> ... the common ancestor is odom
    across = robot.lookup('camera_optical', 'odom', 0.5)
    np.testing.assert_allclose(across, np.linalg.inv(
        robot.lookup('odom', 'camera_optical', 0.5)), atol=1e-12)
    np.testing.assert_allclose(robot.lookup('camera_link', 'camera_link', 0.5), np.eye(4))


def test_interpolation_between_stamps(robot):
    m = robot.lookup('odom', 'base_link', 0.25)  # halfway between 0.2 and 0.3
    np.testing.assert_allclose(m[:3, 3], [0.25, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(m, matrix([0.25, 0, 0], yaw(0.025)), atol=1e-12)
    # stamps as builtin Time messages and as nanoseconds-carrying objects agree
    stamp = tf('a', 'b', 0.25).header.stamp
    np.testing.assert_allclose(robot.lookup('odom', 'base_link', stamp), m, atol=1e-12)
    assert to_ns(stamp) == 250_000_000


def test_latest_common_time(robot):
    # stamp None: the latest time at which every edge of the path is known
    np.testing.assert_allclose(robot.lookup('odom', 'base_link'),
                               matrix([1.0, 0, 0], yaw(0.1)), atol=1e-12)
    # map -> odom is known only at 0.5: the latest common time of map <- base_link is 0.5
    m = robot.lookup('map', 'base_link', None, tolerance_s=0.0)
    np.testing.assert_allclose(m, matrix([2.0, 3.0, 0.0], yaw(math.pi / 2))
                               @ matrix([0.5, 0, 0], yaw(0.05)), atol=1e-12)
    # that time itself, in ns (what a caller waits on before planning); 0 for static paths
    assert robot.latest_ns('map', 'base_link') == to_ns(0.5)
    assert robot.latest_ns('odom', 'camera_optical') == to_ns(1.0)
    assert robot.latest_ns('base_link', 'camera_optical') == 0
    with pytest.raises(TransformError, match='unknown frame'):
        robot.latest_ns('odom', 'nowhere')


def test_extrapolation_errors_and_tolerance(robot):
    with pytest.raises(TransformError, match='future') as err:
        robot.lookup('odom', 'camera_optical', 1.3)
    assert err.value.reason == 'future'
    assert "'camera_optical'" in str(err.value) and "'odom'" in str(err.value)
    assert 'odom -> base_link' in str(err.value)
    with pytest.raises(TransformError, match='past') as err:
        robot.lookup('map', 'base_link', 0.2)  # map -> odom only known at 0.5
    assert err.value.reason == 'past' and 'map -> odom' in str(err.value)
    # within the tolerance the nearest transform is used
    near = robot.lookup('odom', 'base_link', 1.04, tolerance_s=0.05)
    np.testing.assert_allclose(near, robot.lookup('odom', 'base_link', 1.0), atol=1e-12)
    tolerant = TfBuffer(tolerance_s=0.05)
    tolerant.set_transform(tf('odom', 'base_link', 1.0, (1.0, 0.0, 0.0)))
    np.testing.assert_allclose(tolerant.lookup('odom', 'base_link', 0.96)[:3, 3], [1.0, 0, 0])
    with pytest.raises(TransformError):
        tolerant.lookup('odom', 'base_link', 1.06)


def test_unknown_frame_and_no_path(robot):
    with pytest.raises(TransformError, match="unknown frame 'nowhere'") as err:
        robot.lookup('odom', 'nowhere', 0.5)
    assert err.value.reason == 'unknown_frame'
    with pytest.raises(TransformError, match='no path') as err:
        robot.lookup('map', 'table', 0.5)
    assert err.value.reason == 'no_path'
    assert "'world'" in str(err.value) and "'map'" in str(err.value)
    assert not robot.can_transform('map', 'table')
    assert robot.can_transform('map', 'camera_optical', 0.5)
    assert {'map', 'odom', 'base_link', 'camera_optical', 'world'} <= robot.frames()


def test_history_is_bounded_and_clock_jumps_back_restart_it():
    buf = TfBuffer(cache_s=1.0)
    for k in range(31):
        buf.set_transform(tf('odom', 'base_link', 0.1 * k, (0.1 * k, 0.0, 0.0)))
    with pytest.raises(TransformError, match='past'):
        buf.lookup('odom', 'base_link', 1.5)
    assert buf.lookup('odom', 'base_link', 2.5)[0, 3] == pytest.approx(2.5)
    # out-of-order arrival inside the cache is slotted in
    buf.set_transform(tf('odom', 'base_link', 2.95, (7.0, 0.0, 0.0)))
    assert buf.lookup('odom', 'base_link', 2.95)[0, 3] == pytest.approx(7.0)
    # a simulation reset: time restarts at 0, the old history is dropped
    buf.set_transform(tf('odom', 'base_link', 0.0, (-1.0, 0.0, 0.0)))
    assert buf.lookup('odom', 'base_link', 0.0)[0, 3] == pytest.approx(-1.0)
    with pytest.raises(TransformError, match='future'):
        buf.lookup('odom', 'base_link', 2.0)
    buf.clear()
    assert buf.frames() == set()


def test_malformed_transforms_are_rejected(robot):
    problems = robot.set_message(TFMessage(transforms=[
        tf('odom', 'odom', 0.5), tf('', 'x', 0.5), tf('odom', 'bad', 0.5, q=(0, 0, 0, 0)),
        tf('odom', 'nan', 0.5, (math.nan, 0, 0)), tf('/odom', 'ok', 0.5, (1.0, 0, 0))]))
    assert len(problems) == 4 and 'odom' in problems[0]
    assert 'bad' not in robot.frames() and 'nan' not in robot.frames()
    # a leading slash is ignored, as in tf2
    assert robot.lookup('odom', '/ok', 0.5)[0, 3] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        TfBuffer(cache_s=0.0)


def test_clear_can_keep_the_static_transforms(robot):
    robot.clear(static=False)
    assert robot.lookup('base_link', 'camera_optical')[2, 3] == pytest.approx(1.0)
    assert not robot.can_transform('odom', 'camera_optical')
    robot.clear()
    assert not robot.can_transform('base_link', 'camera_optical')


def test_a_stale_transform_after_a_reset_does_not_poison_the_new_history():
    buf = TfBuffer(cache_s=10.0, jump_back_s=1.0)
    buf.set_transform(tf('odom', 'base_link', 5.3, (9.0, 0.0, 0.0)))  # in flight at the reset
    buf.set_transform(tf('odom', 'base_link', 0.1, (0.0, 0.0, 0.0)))
    buf.set_transform(tf('odom', 'base_link', 0.2, (0.1, 0.0, 0.0)))
    with pytest.raises(TransformError, match='future'):
        buf.lookup('odom', 'base_link', 0.5)
    assert buf.lookup('odom', 'base_link', 0.15)[0, 3] == pytest.approx(0.05)
    # out-of-order arrival within jump_back_s is slotted in, not a reset
    buf.set_transform(tf('odom', 'base_link', 1.0, (0.9, 0.0, 0.0)))
    buf.set_transform(tf('odom', 'base_link', 0.5, (0.4, 0.0, 0.0)))
    assert buf.lookup('odom', 'base_link', 0.15)[0, 3] == pytest.approx(0.05)


def test_a_hole_in_the_history_is_not_interpolated_across_when_asked(robot):
    # the base turns 0.5 rad along an arc between 1.0 s and 2.0 s, but the transforms in
    # between were lost: the straight-line interpolation is off the arc by centimetres
    robot.set_transform(tf('odom', 'base_link', 2.0, (1.8, 0.4, 0.0), yaw(0.6)))
    across = robot.lookup('odom', 'camera_optical', 1.5)  # interpolated, as tf2 would
    np.testing.assert_allclose(across[:3, 3] - robot.lookup('odom', 'camera_link', 1.5)[:3, 3],
                               0.0, atol=1e-12)
    with pytest.raises(TransformError, match='not interpolated across the gap') as err:
        robot.lookup('odom', 'camera_optical', 1.5, max_gap_s=0.25)
    assert err.value.reason == 'gap'
    assert 'odom -> base_link' in str(err.value) and '1.000 s' in str(err.value)
    # within the dense part of the history the limit changes nothing
    np.testing.assert_allclose(robot.lookup('odom', 'base_link', 0.25, max_gap_s=0.25),
                               robot.lookup('odom', 'base_link', 0.25), atol=1e-12)
    # and a sample exactly at the stamp needs no interpolation at all
    np.testing.assert_allclose(robot.lookup('odom', 'base_link', 2.0, max_gap_s=0.25)[:3, 3],
                               [1.8, 0.4, 0.0])
