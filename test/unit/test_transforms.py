import math

import numpy as np

from embodied_aif.models.transforms import (
    compose,
    matrix,
    quat_rotate,
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
