"""Sensors: RGB-D cameras (depth in metres, pinhole intrinsics) and a 2D laser by ray casts.

Cameras render with PyBullet's CPU TinyRenderer from an optical frame (z forward, x right,
y down). The depth buffer is non-linear in [0, 1]; :func:`depth_buffer_to_metres` converts it to
the distance along the optical axis (what ROS depth images hold, 32FC1 metres); pixels that hit
nothing before the far plane are +inf. The laser sits inside the base: every ray starts where
it leaves the base box, so the robot never sees itself, and ranges are measured from the laser
origin (+inf when nothing is hit within range_max).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as p


class PhysicsClientOwner:
    """Owns one PyBullet client (``self.client``): ``close()`` and use as a context manager."""

    client: int | None = None

    def close(self) -> None:
        """Disconnect the physics client."""
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def depth_buffer_to_metres(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convert an OpenGL depth buffer (values in [0, 1]) to z-depth in metres (float32)."""
    buf = np.asarray(buffer, dtype=np.float64)
    depth = far * near / (far - (far - near) * buf)
    depth[buf >= 1.0 - 1e-7] = np.inf
    return depth.astype(np.float32)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics for camera_info (no distortion), pixel (u, v) at integer indices.

    TinyRenderer samples pixel column u at x_ndc = 2 u / W - 1 and row v (top row 0) at
    y_ndc = 1 - 2 (v + 1) / H, so the principal point is (W / 2, H / 2 - 1), not the image
    centre; checked against ray casts to sub-millimetre depth error.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def k(self) -> tuple[float, ...]:
        """Row-major 3x3 camera matrix K."""
        return (self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)

    @property
    def p(self) -> tuple[float, ...]:
        """Row-major 3x4 projection matrix P (monocular)."""
        return (self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class CameraConfig:
    """An RGB-D camera: optical frame link, resolution, vertical field of view and clip planes."""

    frame: str
    width: int = 320
    height: int = 240
    fov_deg: float = 60.0
    near: float = 0.05
    far: float = 10.0

    def __post_init__(self):
        for name in ('width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 4096:
                raise ValueError(f'{name} must be an integer in [8, 4096], got {value!r}')
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f'fov_deg must be in [1, 170], got {self.fov_deg!r}')
        if not 0 < self.near < self.far or not math.isfinite(self.far):
            raise ValueError(f'need 0 < near < far < inf, got near={self.near}, far={self.far}')

    def intrinsics(self) -> Intrinsics:
        """Pinhole intrinsics matching the OpenGL projection used for rendering."""
        f = self.height / 2 / math.tan(math.radians(self.fov_deg) / 2)
        return Intrinsics(self.width, self.height, f, f, self.width / 2, self.height / 2 - 1)


@dataclass(frozen=True)
class CameraFrame:
    """One rendered frame: RGB (H, W, 3) uint8, depth (H, W) float32 metres, intrinsics."""

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    stamp: float
    frame: str


def render_camera(config: CameraConfig, client: int, position, quaternion,
                  stamp: float = 0.0) -> CameraFrame:
    """Render from an optical-frame pose (position, quaternion xyzw) in the world."""
    rot = np.array(p.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
    eye = np.asarray(position, dtype=float)
    view = p.computeViewMatrix(eye.tolist(), (eye + rot[:, 2]).tolist(), (-rot[:, 1]).tolist(),
                               physicsClientId=client)
    proj = p.computeProjectionMatrixFOV(config.fov_deg, config.width / config.height,
                                        config.near, config.far, physicsClientId=client)
    _, _, rgba, depth, _ = p.getCameraImage(config.width, config.height, view, proj,
                                            shadow=0, renderer=p.ER_TINY_RENDERER,
                                            flags=p.ER_NO_SEGMENTATION_MASK,
                                            physicsClientId=client)
    rgba = np.asarray(rgba, dtype=np.uint8).reshape(config.height, config.width, 4)
    depth = np.asarray(depth, dtype=np.float32).reshape(config.height, config.width)
    return CameraFrame(np.ascontiguousarray(rgba[:, :, :3]),
                       depth_buffer_to_metres(depth, config.near, config.far),
                       config.intrinsics(), stamp, config.frame)


@dataclass(frozen=True)
class LaserConfig:
    """A planar laser: beam count, angular span (rad, laser frame), range limits (m)."""

    frame: str = 'laser_link'
    beams: int = 360
    angle_min: float = -math.pi
    angle_max: float = math.pi * (1 - 2 / 360)
    range_min: float = 0.05
    range_max: float = 8.0

    def __post_init__(self):
        if isinstance(self.beams, bool) or not isinstance(self.beams, int) or self.beams < 2:
            raise ValueError(f'beams must be an integer >= 2, got {self.beams!r}')
        if not self.angle_min < self.angle_max:
            raise ValueError(f'need angle_min < angle_max, got {self.angle_min}, '
                             f'{self.angle_max}')
        if not 0 <= self.range_min < self.range_max or not math.isfinite(self.range_max):
            raise ValueError(f'need 0 <= range_min < range_max < inf, got {self.range_min}, '
                             f'{self.range_max}')

    @property
    def angle_increment(self) -> float:
        """Angle between consecutive beams."""
        return (self.angle_max - self.angle_min) / (self.beams - 1)

    def angles(self) -> np.ndarray:
        """Beam angles in the laser frame."""
        return self.angle_min + self.angle_increment * np.arange(self.beams)


@dataclass(frozen=True)
class LaserScanData:
    """One scan: ranges (m, +inf for no return) and the geometry needed for LaserScan."""

    ranges: np.ndarray
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    stamp: float
    frame: str


class Laser:
    """Ray-cast laser; `box` is the base box (centre, half extents) in the laser frame."""

    def __init__(self, config: LaserConfig, box_centre, box_half):
        self.config = config
        angles = config.angles()
        self.dirs = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
        # Distance along each beam from the laser origin to where it leaves the base box.
        c, h = np.asarray(box_centre, float), np.asarray(box_half, float)
        if np.any(np.abs(c[:2]) >= h[:2]):
            raise ValueError(f'the laser origin must lie inside the base box (centre {c}, '
                             f'half extents {h} in the laser frame)')
        exits = []
        for axis in (0, 1):
            d = self.dirs[:, axis]
            with np.errstate(divide='ignore', invalid='ignore'):
                exits.append(np.where(d > 1e-12, (c[axis] + h[axis]) / d,
                                      np.where(d < -1e-12, (c[axis] - h[axis]) / d, np.inf)))
        self.start = np.maximum(config.range_min, np.minimum(*exits) + 0.005)

    def scan(self, client: int, position, quaternion, stamp: float = 0.0) -> LaserScanData:
        """Cast all beams from the laser pose (world) and return the ranges."""
        cfg = self.config
        rot = np.array(p.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
        dirs = self.dirs @ rot.T
        origin = np.asarray(position, float)
        start = origin + dirs * self.start[:, None]
        end = origin + dirs * cfg.range_max
        hits = p.rayTestBatch(start.tolist(), end.tolist(), physicsClientId=client)
        frac = np.array([h[2] if h[0] >= 0 else np.nan for h in hits])
        ranges = self.start + frac * (cfg.range_max - self.start)
        ranges = np.where(np.isnan(ranges), np.inf, ranges).astype(np.float32)
        return LaserScanData(ranges, cfg.angle_min, cfg.angle_increment, cfg.range_min,
                             cfg.range_max, stamp, cfg.frame)


@dataclass(frozen=True)
class OdometryNoise:
    """Wheel-odometry error model: relative speed noise (1-sigma) and constant drift biases.

    ``linear_noise`` and ``angular_noise`` scale white noise on the measured speeds (fraction
    of the speed); ``linear_bias`` (fraction) and ``yaw_drift`` (rad/s while moving) bias them.
    All zero gives perfect odometry.
    """

    linear_noise: float = 0.0
    angular_noise: float = 0.0
    linear_bias: float = 0.0
    yaw_drift: float = 0.0

    def __post_init__(self):
        for name in ('linear_noise', 'angular_noise', 'linear_bias', 'yaw_drift'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number, got {value!r}')
        if self.linear_noise < 0 or self.angular_noise < 0:
            raise ValueError(f'noise levels must be >= 0, got {self.linear_noise}, '
                             f'{self.angular_noise}')


def integrate_odometry(pose, linear: float, angular: float, dt: float, noise: OdometryNoise,
                       rng: np.random.Generator) -> tuple[tuple[float, float, float],
                                                          tuple[float, float]]:
    """Advance an odometry pose (x, y, yaw) by measured speeds; return (pose, (v, w) measured).

    The true speeds (e.g. ``Simulation.base_velocity()``) are corrupted by `noise` with draws
    from `rng`, then integrated exactly along the arc over `dt`.
    """
    moving = abs(linear) > 1e-9 or abs(angular) > 1e-9
    v = linear * (1.0 + noise.linear_bias + noise.linear_noise * rng.standard_normal())
    w = angular * (1.0 + noise.angular_noise * rng.standard_normal())
    w += noise.yaw_drift if moving else 0.0
    x, y, yaw = pose
    nyaw = yaw + w * dt
    if abs(w) > 1e-9:
        x += v / w * (math.sin(nyaw) - math.sin(yaw))
        y -= v / w * (math.cos(nyaw) - math.cos(yaw))
    else:
        x += v * dt * math.cos(yaw)
        y += v * dt * math.sin(yaw)
    return (x, y, math.atan2(math.sin(nyaw), math.cos(nyaw))), (v, w)
