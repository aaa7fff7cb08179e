import math

import numpy as np
import pytest

from embodied_aif.models.transforms import (
    compose,
    matrix,
    quat_rotate,
    quaternion_yaw,
    relative_pose,
    yaw_quaternion,
)


def test_relative_pose_inverts_compose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        qa, qb = rng.normal(size=4), rng.normal(size=4)
        a = (rng.normal(size=3), qa / np.linalg.norm(qa))
        b = (rng.normal(size=3), qb / np.linalg.norm(qb))
        world_b = compose(a, b)
        rel = relative_pose(a, world_b)
        np.testing.assert_allclose(rel[0], b[0], atol=1e-9)
        assert abs(abs(np.dot(rel[1], b[1])) - 1) < 1e-9
        np.testing.assert_allclose(matrix(*world_b), matrix(*a) @ matrix(*b), atol=1e-9)


def test_yaw_rotation_by_hand():
    q = yaw_quaternion(math.pi / 2)
    np.testing.assert_allclose(quat_rotate(q, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)


def _random_pose(rng):
    q = rng.normal(size=4)
    return rng.normal(size=3), q / np.linalg.norm(q)


def test_invert_undoes_compose():
    from embodied_aif.models.transforms import invert
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = _random_pose(rng)
        ident = compose(a, invert(a))
        np.testing.assert_allclose(ident[0], 0.0, atol=1e-9)
        assert abs(abs(ident[1][3]) - 1.0) < 1e-9
        np.testing.assert_allclose(matrix(*invert(a)), np.linalg.inv(matrix(*a)), atol=1e-9)


def test_slerp_by_hand_and_shortest_arc():
    from embodied_aif.models.transforms import interpolate_pose, quat_slerp
    q0, q1 = yaw_quaternion(0.0), yaw_quaternion(math.pi / 2)
    # a quarter of the way from 0 to 90 degrees about z is 22.5 degrees
    np.testing.assert_allclose(quat_slerp(q0, q1, 0.25), yaw_quaternion(math.pi / 8), atol=1e-12)
    np.testing.assert_allclose(quat_slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(quat_slerp(q0, q1, 1.0), q1, atol=1e-12)
    # -q1 is the same rotation: slerp must still take the 90-degree arc, not the 270-degree one
    mid = quat_slerp(q0, -q1, 0.5)
    assert abs(abs(mid @ yaw_quaternion(math.pi / 4)) - 1.0) < 1e-12
    # nearly equal quaternions (the lerp branch) stay unit and in between
    q2 = yaw_quaternion(1e-4)
    mid = quat_slerp(q0, q2, 0.5)
    assert abs(np.linalg.norm(mid) - 1.0) < 1e-12
    assert abs(abs(mid @ yaw_quaternion(5e-5)) - 1.0) < 1e-12
    p, q = interpolate_pose(([0.0, 0.0, 0.0], q0), ([2.0, -4.0, 1.0], q1), 0.5)
    np.testing.assert_allclose(p, [1.0, -2.0, 0.5])
    np.testing.assert_allclose(q, yaw_quaternion(math.pi / 4), atol=1e-12)


def test_quaternion_from_rotation_inverts_matrix():
    from embodied_aif.models.transforms import quaternion_from_rotation
    rng = np.random.default_rng(2)
    quats = [rng.normal(size=4) for _ in range(50)]
    # the four branches of Shepperd's method: rotations by pi about x, y, z and identity
    quats += [np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0]), np.array([0, 0, 1.0, 0]),
              np.array([0, 0, 0, 1.0])]
    for q in quats:
        q = q / np.linalg.norm(q)
        back = quaternion_from_rotation(matrix(np.zeros(3), q)[:3, :3])
        assert back[3] >= 0.0
        assert abs(abs(back @ q) - 1.0) < 1e-9


def test_covariance_ellipsoid_axes():
    from embodied_aif.models.transforms import covariance_ellipsoid, quaternion_from_rotation
    # variances 0.04, 0.01, 0.0025 along z, x, y: 3-sigma diameters 1.2, 0.6, 0.3
    diam, q = covariance_ellipsoid(np.diag([0.01, 0.0025, 0.04]), 3.0)
    np.testing.assert_allclose(sorted(diam), [0.3, 0.6, 1.2], atol=1e-12)
    rot = matrix(np.zeros(3), q)[:3, :3]
    # a rotated covariance: the ellipsoid's axes are the rotated axes with the same diameters
    r = matrix(np.zeros(3), quaternion_from_rotation(
        matrix(np.zeros(3), [0.2, -0.3, 0.5, 0.8])[:3, :3]))[:3, :3]
    cov = r @ np.diag([0.01, 0.0025, 0.04]) @ r.T
    diam2, q2 = covariance_ellipsoid(cov, 3.0)
    rot2 = matrix(np.zeros(3), q2)[:3, :3]
    np.testing.assert_allclose(rot2 @ np.diag((diam2 / 6.0) ** 2) @ rot2.T, cov, atol=1e-12)
    np.testing.assert_allclose(rot @ np.diag((diam / 6.0) ** 2) @ rot.T,
                               np.diag([0.01, 0.0025, 0.04]), atol=1e-12)
    import pytest
    with pytest.raises(ValueError, match='3x3'):
        covariance_ellipsoid(np.eye(2))


def test_quaternion_yaw_reads_the_heading_and_rejects_non_rotations():
    for yaw in (-3.0, -1.2, 0.0, 0.7, 2.9):
        assert quaternion_yaw(yaw_quaternion(yaw)) == pytest.approx(yaw)
        assert quaternion_yaw(3.0 * yaw_quaternion(yaw)) == pytest.approx(yaw)  # normalised
    assert quaternion_yaw([0.0, 0.0, 0.0, 1.0]) == 0.0
    assert quaternion_yaw([0.0, 0.0, 1.0, 0.0]) == pytest.approx(math.pi)
    for bad in ([0.0, 0.0, 0.0, 0.0], [math.nan, 0.0, 0.0, 1.0], [1.0, 0.0]):
        with pytest.raises(ValueError, match='quaternion'):
            quaternion_yaw(bad)
