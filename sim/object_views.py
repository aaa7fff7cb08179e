"""Renders of single objects from sampled viewpoints, for training the object model.

A lightweight headless scene of its own (one PyBullet DIRECT client, no robot): a table top
(a large box whose top face is z = 0, table-coloured) and one object instance of
:mod:`embodied_aif.sim.objects` resting on it at the origin with yaw 0, so the object frame is
the world frame. A viewpoint is given in that frame by azimuth (about +z, from +x), elevation
(above the table plane) and range to the look-at point (the object's box centre, jittered);
the camera's focal length is that of the stack's head or wrist camera so that objects cover as
many pixels as they do in the robot's images.

Each render returns RGB, depth (metres along the optical axis), the object mask (its pixels
more than ``plane_margin`` above the table, as the segmentation's plane removal leaves them)
and the optical-frame camera pose. No ROS, no physics stepping: renders are deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as p

from embodied_aif.sim.objects import ObjectDesc, body_extent, spawn_object
from embodied_aif.sim.sensors import PhysicsClientOwner, depth_buffer_to_metres

# Focal lengths (pixels) of the stack's cameras: head 320x240 at 60 deg vertical field of
# view, wrist 160x120 at 70 deg (sim/simulation.py). Views use one or the other.
HEAD_FOCAL = 120.0 / math.tan(math.radians(30.0))
WRIST_FOCAL = 60.0 / math.tan(math.radians(35.0))
TABLE_RGBA = (0.55, 0.38, 0.22, 1.0)


@dataclass(frozen=True)
class Viewpoint:
    """A camera viewpoint in the object frame.

    ``azimuth`` (rad, about +z from +x), ``elevation`` (rad above the table plane) and
    ``range`` (m) place the camera on a sphere around the look-at point, which is the object's
    box centre shifted by ``offset`` (m, object frame); ``focal`` is in pixels.
    """

    azimuth: float
    elevation: float
    range: float
    focal: float
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if not (0.0 < self.range < 10.0 and math.isfinite(self.azimuth)):
            raise ValueError(f'viewpoint range must be in (0, 10) m and azimuth finite, got '
                             f'range={self.range}, azimuth={self.azimuth}')
        if not -math.pi / 2 < self.elevation < math.pi / 2:
            raise ValueError(f'elevation {self.elevation} rad must lie in (-pi/2, pi/2)')
        if not self.focal > 0.0:
            raise ValueError(f'focal must be > 0, got {self.focal}')


def sample_viewpoints(n: int, rng: np.random.Generator, elevation_deg=(8.0, 75.0),
                      head_range=(0.35, 1.5), wrist_range=(0.18, 0.9),
                      p_wrist: float = 0.35, jitter: float = 0.02) -> list[Viewpoint]:
    """Sample ``n`` viewpoints: azimuth uniform, elevation uniform in degrees, range uniform.

    With probability ``p_wrist`` a view uses the wrist camera's focal length and range
    interval, otherwise the head camera's; the look-at point is jittered by up to ``jitter``
    metres on each axis.
    """
    if n < 1:
        raise ValueError(f'need at least one viewpoint, got n={n}')
    views = []
    for _ in range(n):
        wrist = rng.uniform() < p_wrist
        lo, hi = wrist_range if wrist else head_range
        views.append(Viewpoint(
            azimuth=float(rng.uniform(-math.pi, math.pi)),
            elevation=math.radians(float(rng.uniform(*elevation_deg))),
            range=float(rng.uniform(lo, hi)),
            focal=WRIST_FOCAL if wrist else HEAD_FOCAL,
            offset=tuple(float(x) for x in rng.uniform(-jitter, jitter, 3))))
    return views


@dataclass(frozen=True)
class ObjectView:
    """One render: RGB (H, W, 3) uint8, depth (H, W) float32 m, mask (H, W) bool, camera."""

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    t_obj_cam: np.ndarray  # (4, 4) optical frame (z forward, x right, y down) in object frame
    focal: float


def look_at_pose(eye, target) -> np.ndarray:
    """Optical-frame pose (4, 4) of a camera at ``eye`` looking at ``target`` (z up)."""
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, 0], t[:3, 1], t[:3, 2], t[:3, 3] = x, y, z, eye
    return t


class ObjectScene(PhysicsClientOwner):
    """A DIRECT-mode table top with one object at a time, rendered by TinyRenderer.

    Use as a context manager (or call ``close``). ``size`` is the square image side in pixels;
    ``near`` / ``far`` are the clip planes.
    """

    def __init__(self, size: int = 128, near: float = 0.02, far: float = 4.0,
                 plane_margin: float = 0.012):
        if not 16 <= size <= 1024:
            raise ValueError(f'size must be in [16, 1024], got {size}')
        self.size, self.near, self.far, self.plane_margin = size, near, far, plane_margin
        self.client = p.connect(p.DIRECT)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[2.0, 2.0, 0.02],
                                     physicsClientId=self.client)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[2.0, 2.0, 0.02],
                                  rgbaColor=list(TABLE_RGBA), physicsClientId=self.client)
        self.table = p.createMultiBody(0.0, col, vis, basePosition=[0.0, 0.0, -0.02],
                                       physicsClientId=self.client)
        self.body: int | None = None
        self.centre = np.zeros(3)

    def place(self, desc: ObjectDesc) -> None:
        """Replace the current object by a new instance resting on the table at the origin."""
        if self.body is not None:
            p.removeBody(self.body, physicsClientId=self.client)
        self.body = spawn_object(desc, self.client, (0.0, 0.0, 1.0), 0.0)
        _, z_offset, _ = body_extent(self.body, self.client)
        p.resetBasePositionAndOrientation(self.body, (0.0, 0.0, z_offset + 0.001),
                                          (0.0, 0.0, 0.0, 1.0), physicsClientId=self.client)
        lo, hi = p.getAABB(self.body, -1, physicsClientId=self.client)
        self.centre = 0.5 * (np.asarray(lo) + np.asarray(hi))

    def camera_pose(self, view: Viewpoint) -> np.ndarray:
        """Optical-frame pose (4, 4) of a viewpoint around the current object."""
        target = self.centre + np.asarray(view.offset)
        ce = math.cos(view.elevation)
        eye = target + view.range * np.array([ce * math.cos(view.azimuth),
                                              ce * math.sin(view.azimuth),
                                              math.sin(view.elevation)])
        return look_at_pose(eye, target)

    def render(self, view: Viewpoint) -> ObjectView:
        """Render the current object from a viewpoint."""
        if self.body is None:
            raise ValueError('no object placed: call place() first')
        t = self.camera_pose(view)
        eye, fwd, down = t[:3, 3], t[:3, 2], t[:3, 1]
        c = self.client
        vmat = p.computeViewMatrix(eye.tolist(), (eye + fwd).tolist(), (-down).tolist(),
                                   physicsClientId=c)
        fov = math.degrees(2.0 * math.atan(0.5 * self.size / view.focal))
        pmat = p.computeProjectionMatrixFOV(fov, 1.0, self.near, self.far, physicsClientId=c)
        _, _, rgba, buf, seg = p.getCameraImage(self.size, self.size, vmat, pmat, shadow=0,
                                                renderer=p.ER_TINY_RENDERER,
                                                physicsClientId=c)
        n = self.size
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(n, n, 4)[:, :, :3]
        depth = depth_buffer_to_metres(np.asarray(buf, dtype=np.float32).reshape(n, n),
                                       self.near, self.far)
        seg = np.asarray(seg).reshape(n, n)
        # Height above the table of every pixel (principal point as in sim/sensors.Intrinsics).
        v, u = np.mgrid[0:n, 0:n].astype(float)
        f = 0.5 * n / math.tan(math.radians(fov) / 2)
        z = np.where(np.isfinite(depth), depth, 0.0)
        pts = np.stack([(u - n / 2) / f * z, (v - (n / 2 - 1)) / f * z, z], axis=-1)
        height = pts @ t[:3, :3].T[:, 2] + t[2, 3]
        mask = (seg == self.body) & np.isfinite(depth) & (height > self.plane_margin)
        return ObjectView(np.ascontiguousarray(rgb), depth, mask, t, float(f))
