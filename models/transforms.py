"""Rigid transforms as (position (3,), quaternion xyzw (4,)) pairs, numpy only."""
from __future__ import annotations

import math

import numpy as np


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions in xyzw order."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (xyzw)."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector v by unit quaternion q (xyzw)."""
    u = np.asarray(q[:3], float)
    w = float(q[3])
    v = np.asarray(v, float)
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def yaw_quaternion(yaw: float) -> np.ndarray:
    """Quaternion (xyzw) of a rotation by yaw about z."""
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def quaternion_yaw(q) -> float:
    """Yaw (rad) of a quaternion (xyzw), normalised first; ValueError if not finite or zero."""
    q = np.asarray(q, dtype=float).reshape(-1)
    norm = float(np.linalg.norm(q)) if q.shape == (4,) else 0.0
    if not (math.isfinite(norm) and norm > 1e-9):
        raise ValueError(f'orientation {q.tolist()} is not a finite non-zero quaternion (xyzw)')
    x, y, z, w = q / norm
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def relative_pose(parent: tuple, child: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Pose of child in parent's frame, both given in a common frame."""
    pp, pq = np.asarray(parent[0], float), np.asarray(parent[1], float)
    cp, cq = np.asarray(child[0], float), np.asarray(child[1], float)
    inv = quat_conjugate(pq)
    q = quat_multiply(inv, cq)
    return quat_rotate(inv, cp - pp), q / np.linalg.norm(q)


def compose(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Pose b (given in a's frame) expressed in a's parent frame."""
    ap, aq = np.asarray(a[0], float), np.asarray(a[1], float)
    q = quat_multiply(aq, np.asarray(b[1], float))
    return ap + quat_rotate(aq, b[0]), q / np.linalg.norm(q)


def matrix(position, quaternion) -> np.ndarray:
    """4x4 homogeneous matrix of a pose."""
    x, y, z, w = np.asarray(quaternion, float) / np.linalg.norm(quaternion)
    m = np.eye(4)
    m[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    m[:3, 3] = position
    return m


def invert(pose: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of a pose: if pose maps child to parent, the result maps parent to child."""
    p, q = np.asarray(pose[0], float), np.asarray(pose[1], float)
    inv = quat_conjugate(q / np.linalg.norm(q))
    return -quat_rotate(inv, p), inv


def quat_slerp(q0, q1, s: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (xyzw), s in [0, 1], shortest arc."""
    a = np.asarray(q0, float) / np.linalg.norm(q0)
    b = np.asarray(q1, float) / np.linalg.norm(q1)
    dot = float(a @ b)
    if dot < 0.0:  # q and -q are the same rotation: take the short way round
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly parallel: normalised lerp avoids dividing by sin(~0)
        q = a + s * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    sin_theta = math.sin(theta)
    q = (math.sin((1.0 - s) * theta) * a + math.sin(s * theta) * b) / sin_theta
    return q / np.linalg.norm(q)


def interpolate_pose(a: tuple, b: tuple, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Pose a fraction s of the way from a to b: linear in translation, slerp in rotation."""
    pa, pb = np.asarray(a[0], float), np.asarray(b[0], float)
    return pa + s * (pb - pa), quat_slerp(a[1], b[1], s)


def quaternion_from_rotation(r) -> np.ndarray:
    """Unit quaternion (xyzw, w >= 0) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(r, float)
    if m.shape != (3, 3):
        raise ValueError(f'rotation must be 3x3, got shape {m.shape}')
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q) / np.linalg.norm(q)
    return -q if q[3] < 0.0 else q


def min_area_rectangle(xy, yaws) -> tuple[int, np.ndarray, np.ndarray]:
    """The heading of least bounding area among ``yaws`` for points ``xy`` (n, 2).

    Returns (index into ``yaws``, areas (len(yaws),), (lo, hi) (2, 2) of the points along the
    best heading and across it). Unlike the principal axes, the least-area box lines up with a
    straight edge of the points even when the rest of the outline is ragged.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    yaws = np.asarray(yaws, dtype=float).ravel()
    c, s = np.cos(yaws), np.sin(yaws)
    u = xy[:, :1] * c + xy[:, 1:2] * s          # (n, angles): along each heading
    v = -xy[:, :1] * s + xy[:, 1:2] * c         # across it
    area = (u.max(axis=0) - u.min(axis=0)) * (v.max(axis=0) - v.min(axis=0))
    k = int(np.argmin(area))
    return k, area, np.array([[u[:, k].min(), v[:, k].min()], [u[:, k].max(), v[:, k].max()]])


def covariance_ellipsoid(cov, n_sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Axes of the n-sigma ellipsoid of a 3x3 covariance: ``(diameters (3,), quaternion xyzw)``.

    The quaternion rotates the ellipsoid's own x, y, z axes onto the covariance's principal
    directions; ``diameters[k]`` is ``2 * n_sigma * sqrt(eigenvalue k)`` (an RViz SPHERE's scale).
    """
    c = np.asarray(cov, float)
    if c.shape != (3, 3) or not np.all(np.isfinite(c)):
        raise ValueError(f'covariance must be a finite 3x3 matrix, got shape {c.shape}')
    values, vectors = np.linalg.eigh(0.5 * (c + c.T))
    if np.linalg.det(vectors) < 0.0:  # keep a right-handed frame (a proper rotation)
        vectors[:, 2] = -vectors[:, 2]
    return 2.0 * n_sigma * np.sqrt(np.maximum(values, 0.0)), quaternion_from_rotation(vectors)


def boxes_from_values(values) -> np.ndarray:
    """Boxes (M, 6) from a flat list [xmin, ymin, zmin, xmax, ymax, zmax, ...].

    Raises ValueError naming what is wrong: a count that is not a multiple of 6, a value that
    is not finite, or a box whose minimum is not below its maximum.
    """
    flat = np.asarray([float(v) for v in values], dtype=float)
    if flat.size % 6:
        raise ValueError(f'needs 6 numbers per box [xmin, ymin, zmin, xmax, ymax, zmax], '
                         f'got {flat.size}')
    boxes = flat.reshape(-1, 6)
    if not np.all(np.isfinite(boxes)):
        raise ValueError('box bounds must be finite')
    bad = np.flatnonzero(np.any(boxes[:, :3] >= boxes[:, 3:], axis=1))
    if bad.size:
        raise ValueError(f'box {int(bad[0])}: minimum {boxes[bad[0], :3].tolist()} is not '
                         f'below maximum {boxes[bad[0], 3:].tolist()}')
    return boxes
