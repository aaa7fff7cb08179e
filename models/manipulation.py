"""Arm kinematics and motion for the Franka Panda: FK, IK, grasp poses, trajectories, collisions.

Pure numpy (a real robot has no physics engine): everything here works on 4x4 homogeneous
matrices in the robot's base frame (``base_link``: x forward, z up) and on 7-vectors of joint
positions (radians).

- :func:`panda_arm` builds an :class:`ArmModel`: the kinematic chain of the Panda written from
  the joint origins of its URDF (franka_panda/panda.urdf of pybullet_data; equivalently Craig's
  modified DH table a = (0, 0, 0, 0.0825, -0.0825, 0, 0.088), d = (0.333, 0, 0.316, 0, 0.384,
  0, 0), alpha = (0, -pi/2, pi/2, pi/2, -pi/2, pi/2, pi/2)), the flange, hand and grasp-target
  offsets, the joint limits and a set of collision spheres per link; ``mount`` places the arm's
  ``panda_link0`` in the base frame.
- :func:`forward_kinematics` and :func:`jacobian`; :func:`solve_ik`: damped least squares with
  joint limits, a null-space pull towards a rest posture and seeded restarts.
- :func:`grasp_candidates` / :func:`place_candidates`: top-down and side approach, grasp, lift,
  release and retreat poses from an :class:`ObjectBox` (the object belief in the base frame).
- :func:`time_parameterise`: rest-to-rest, joint-synchronised trapezoidal profiles under
  velocity and acceleration limits, sampled at a fixed period.
- :func:`first_collision`: the arm's link spheres against axis-aligned boxes (the table top
  under the object, the robot's own base and mast, other objects), densely along a path.
- :func:`plan_pick` / :func:`plan_place` put these together and return a :class:`MotionPlan`
  or a :class:`PlanFailure` with a reason code.

The tool frame is ``panda_grasptarget``: its z axis points from the palm towards the
fingertips (the approach direction), its y axis is the direction in which the fingers close.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
FINGER_JOINTS = ('panda_finger_joint1', 'panda_finger_joint2')
READY = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
# Hand pointing down 0.32 m ahead of and 0.63 m above the mount: held objects clear tables.
CARRY = (0.0, -0.9, 0.0, -2.0, 0.0, 1.1, 0.785)
# The 7 revolute joints: origin (xyz, rpy) of each child link in its parent link; axes are z.
PANDA_JOINT_ORIGINS = (
    ((0.0, 0.0, 0.333), (0.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (-math.pi / 2, 0.0, 0.0)),
    ((0.0, -0.316, 0.0), (math.pi / 2, 0.0, 0.0)),
    ((0.0825, 0.0, 0.0), (math.pi / 2, 0.0, 0.0)),
    ((-0.0825, 0.384, 0.0), (-math.pi / 2, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (math.pi / 2, 0.0, 0.0)),
    ((0.088, 0.0, 0.0), (math.pi / 2, 0.0, 0.0)),
)
PANDA_FLANGE = ((0.0, 0.0, 0.107), (0.0, 0.0, 0.0))         # link7 -> link8 (flange)
PANDA_HAND = ((0.0, 0.0, 0.0), (0.0, 0.0, -math.pi / 4))     # link8 -> panda_hand
PANDA_GRASP_TARGET = ((0.0, 0.0, 0.105), (0.0, 0.0, 0.0))    # panda_hand -> grasp target
PANDA_LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671)
PANDA_UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671)
PANDA_MAX_VELOCITY = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
PANDA_MAX_ACCELERATION = (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)
PANDA_MAX_WIDTH = 0.08
# Collision spheres (frame, x, y, z, radius): frames 1..7 are panda_link1..7, 8 the hand,
# 9 the grasp target (fingertips). A rough, slightly generous cover of the links.
PANDA_SPHERES = (
    (1, 0.0, 0.0, -0.10, 0.07), (1, 0.0, 0.0, 0.0, 0.07),
    (2, 0.0, -0.12, 0.0, 0.06), (2, 0.0, -0.22, 0.0, 0.06),
    (3, 0.0, 0.0, -0.08, 0.065), (3, 0.0825, 0.0, 0.0, 0.065),
    (4, 0.0, 0.0, 0.0, 0.065), (4, -0.0825, 0.10, 0.0, 0.06),
    (5, 0.0, 0.03, -0.26, 0.055), (5, 0.0, 0.04, -0.17, 0.055), (5, 0.0, 0.02, -0.08, 0.05),
    (5, 0.0, 0.0, 0.0, 0.06),
    (6, 0.0, 0.0, 0.0, 0.06), (6, 0.088, 0.0, 0.0, 0.055),
    (7, 0.0, 0.0, 0.07, 0.05),
    (8, 0.0, 0.0, 0.025, 0.035), (8, 0.0, 0.06, 0.025, 0.035), (8, 0.0, -0.06, 0.025, 0.035),
    (9, 0.0, 0.05, -0.03, 0.01), (9, 0.0, -0.05, -0.03, 0.01),
    (9, 0.0, 0.05, -0.005, 0.01), (9, 0.0, -0.05, -0.005, 0.01),
)
FINGER_FRAME = 9
N_FRAMES = 10  # link0, link1..link7, hand, grasp target


def rpy_matrix(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """4x4 transform of a URDF origin (translation xyz, fixed-axis roll, pitch, yaw)."""
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = (math.cos(r), math.sin(r), math.cos(p), math.sin(p),
                              math.cos(y), math.sin(y))
    m = np.eye(4)
    m[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    m[:3, 3] = xyz
    return m


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    m = np.eye(4)
    m[0, 0], m[0, 1], m[1, 0], m[1, 1] = c, -s, s, c
    return m


def translation(xyz: Sequence[float]) -> np.ndarray:
    """4x4 pure translation."""
    m = np.eye(4)
    m[:3, 3] = xyz
    return m


@dataclass(frozen=True)
class ArmModel:
    """A 7-joint serial arm: joint origins, tool offsets, limits, collision spheres, mount."""

    origins: np.ndarray                      # (7, 4, 4) joint origins in the parent link
    hand: np.ndarray                         # (4, 4) link7 -> hand
    tool: np.ndarray                         # (4, 4) hand -> grasp target
    lower: np.ndarray                        # (7,) joint limits, rad
    upper: np.ndarray
    max_velocity: np.ndarray                 # (7,) rad/s
    max_acceleration: np.ndarray             # (7,) rad/s^2
    sphere_frames: np.ndarray                # (n,) frame index 1..9 of each sphere
    sphere_centres: np.ndarray               # (n, 3) centres in their frames
    sphere_radii: np.ndarray                 # (n,)
    mount: np.ndarray = field(default_factory=lambda: np.eye(4))  # base -> link0
    rest: np.ndarray = field(default_factory=lambda: np.array(READY))
    max_width: float = PANDA_MAX_WIDTH

    def __post_init__(self):
        shapes = {'origins': (7, 4, 4), 'hand': (4, 4), 'tool': (4, 4), 'lower': (7,),
                  'upper': (7,), 'max_velocity': (7,), 'max_acceleration': (7,),
                  'mount': (4, 4), 'rest': (7,)}
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(f'{name} must be a finite array of shape {shape}, got '
                                 f'shape {value.shape}')
            object.__setattr__(self, name, value)
        if np.any(self.lower >= self.upper):
            raise ValueError(f'lower limits {self.lower.tolist()} must be below upper '
                             f'{self.upper.tolist()}')
        if np.any(self.max_velocity <= 0) or np.any(self.max_acceleration <= 0):
            raise ValueError('max_velocity and max_acceleration must be > 0')
        frames = np.asarray(self.sphere_frames, dtype=int).reshape(-1)
        centres = np.asarray(self.sphere_centres, dtype=float).reshape(-1, 3)
        radii = np.asarray(self.sphere_radii, dtype=float).reshape(-1)
        if not len(frames) == len(centres) == len(radii):
            raise ValueError(f'sphere arrays disagree: {len(frames)} frames, {len(centres)} '
                             f'centres, {len(radii)} radii')
        if np.any((frames < 1) | (frames >= N_FRAMES)) or np.any(radii <= 0):
            raise ValueError(f'sphere frames must be in 1..{N_FRAMES - 1} and radii > 0')
        object.__setattr__(self, 'sphere_frames', frames)
        object.__setattr__(self, 'sphere_centres', centres)
        object.__setattr__(self, 'sphere_radii', radii)
        if not 0 < self.max_width <= 0.5:
            raise ValueError(f'max_width must be in (0, 0.5] m, got {self.max_width}')

    def clip(self, q) -> np.ndarray:
        """Joint positions clipped to the limits."""
        return np.clip(np.asarray(q, dtype=float), self.lower, self.upper)

    def within_limits(self, q, tolerance: float = 1e-6) -> bool:
        """Whether q lies within the joint limits."""
        q = np.asarray(q, dtype=float)
        return bool(np.all(q >= self.lower - tolerance) and np.all(q <= self.upper + tolerance))


def panda_arm(mount=None, velocity_scale: float = 1.0,
              acceleration_scale: float = 1.0) -> ArmModel:
    """The Franka Panda with its grasp target as the tool; ``mount``: base -> panda_link0."""
    if not (0 < velocity_scale <= 1 and 0 < acceleration_scale <= 1):
        raise ValueError(f'velocity_scale {velocity_scale} and acceleration_scale '
                         f'{acceleration_scale} must be in (0, 1]')
    spheres = np.array(PANDA_SPHERES)
    return ArmModel(
        origins=np.stack([rpy_matrix(*o) for o in PANDA_JOINT_ORIGINS]),
        hand=rpy_matrix(*PANDA_FLANGE) @ rpy_matrix(*PANDA_HAND),
        tool=rpy_matrix(*PANDA_GRASP_TARGET),
        lower=np.array(PANDA_LOWER), upper=np.array(PANDA_UPPER),
        max_velocity=velocity_scale * np.array(PANDA_MAX_VELOCITY),
        max_acceleration=acceleration_scale * np.array(PANDA_MAX_ACCELERATION),
        sphere_frames=spheres[:, 0].astype(int), sphere_centres=spheres[:, 1:4],
        sphere_radii=spheres[:, 4], mount=np.eye(4) if mount is None else mount)


# ---------------------------------------------------------------------------- kinematics
def forward_kinematics(arm: ArmModel, q) -> np.ndarray:
    """Frames (10, 4, 4) in the base frame: link0, link1..link7, hand, grasp target."""
    q = np.asarray(q, dtype=float).reshape(-1)
    if q.shape != (7,):
        raise ValueError(f'q must have 7 joint positions, got shape {q.shape}')
    frames = np.empty((N_FRAMES, 4, 4))
    frames[0] = arm.mount
    for i in range(7):
        frames[i + 1] = frames[i] @ arm.origins[i] @ _rot_z(q[i])
    frames[8] = frames[7] @ arm.hand
    frames[9] = frames[8] @ arm.tool
    return frames


def tool_pose(arm: ArmModel, q) -> np.ndarray:
    """4x4 pose of the grasp target in the base frame."""
    return forward_kinematics(arm, q)[9]


def jacobian(arm: ArmModel, q, frames: np.ndarray | None = None) -> np.ndarray:
    """Geometric Jacobian (6, 7) of the grasp target: rows (linear xyz, angular xyz)."""
    frames = forward_kinematics(arm, q) if frames is None else frames
    tip = frames[9, :3, 3]
    axes = frames[1:8, :3, 2]
    origins = frames[1:8, :3, 3]
    return np.vstack([np.cross(axes, tip - origins).T, axes.T])


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector w (3,) with exp([w]) @ current = target (3x3 rotations)."""
    r = np.asarray(target)[:3, :3] @ np.asarray(current)[:3, :3].T
    cos = float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos)
    skew = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-9:
        return 0.5 * skew
    if angle < math.pi - 1e-4:
        return angle / (2.0 * math.sin(angle)) * skew
    # near pi: the axis is the column of (r + I) / 2 with the largest norm
    sym = (r + np.eye(3)) / 2.0
    k = int(np.argmax(np.diag(sym)))
    axis = sym[:, k] / math.sqrt(max(sym[k, k], 1e-12))
    if axis @ skew < 0:
        axis = -axis
    return angle * axis / np.linalg.norm(axis)


def pose_error(target: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(position error m, orientation error rad) between two 4x4 poses."""
    return (float(np.linalg.norm(target[:3, 3] - current[:3, 3])),
            float(np.linalg.norm(rotation_error(target, current))))


@dataclass(frozen=True)
class IkConfig:
    """Damped least squares settings and the acceptance tolerances."""

    accept_position: float = 0.005      # m: a solution farther than this is unreachable
    accept_orientation: float = 0.05    # rad
    converge_position: float = 2e-4     # m: stop iterating below these
    converge_orientation: float = 2e-3  # rad
    damping: float = 0.02
    max_iterations: int = 150
    restarts: int = 6
    max_step: float = 0.25               # rad per iteration (largest joint change)
    nullspace_gain: float = 0.05
    limit_margin: float = 0.01           # rad kept from the joint limits
    # an attempt that has stalled far from the target stops early: the error (m, + 0.1 x rad)
    # fell by less than stall_progress over the last stall_iterations while still farther than
    # stall_far (0: never). On 120 random object poses x 6 grasps x 7 starts this halved the
    # time of IK and lost 1 of 293 reachable grasps (another start still found the rest).
    stall_iterations: int = 30
    stall_progress: float = 0.001
    stall_far: float = 0.03

    def __post_init__(self):
        for name in ('accept_position', 'accept_orientation', 'converge_position',
                     'converge_orientation', 'damping', 'max_step'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be finite and > 0, got {value!r}')
        if self.stall_iterations < 0 or not self.stall_progress >= 0 or not self.stall_far >= 0:
            raise ValueError(f'stall_iterations {self.stall_iterations}, stall_progress '
                             f'{self.stall_progress} and stall_far {self.stall_far} must be >= 0')
        if self.max_iterations < 1 or self.restarts < 0:
            raise ValueError(f'max_iterations {self.max_iterations} must be >= 1, restarts '
                             f'{self.restarts} >= 0')
        if not 0 <= self.nullspace_gain <= 1 or not 0 <= self.limit_margin < 0.5:
            raise ValueError('nullspace_gain must be in [0, 1], limit_margin in [0, 0.5)')


@dataclass(frozen=True)
class IkResult:
    """An IK answer: joints, remaining errors, whether within the acceptance tolerances."""

    q: np.ndarray
    position_error: float
    orientation_error: float
    success: bool
    iterations: int


def _dls(arm: ArmModel, target: np.ndarray, q0: np.ndarray, config: IkConfig,
         lower: np.ndarray, upper: np.ndarray) -> IkResult:
    q = np.clip(q0, lower, upper)
    lam2 = config.damping ** 2
    eye6 = np.eye(6)
    it, errors, window = 0, [], config.stall_iterations
    for it in range(1, config.max_iterations + 1):  # noqa: B007 - reported below
        frames = forward_kinematics(arm, q)
        e_p = target[:3, 3] - frames[9, :3, 3]
        e_o = rotation_error(target, frames[9])
        d_p, d_o = float(np.linalg.norm(e_p)), float(np.linalg.norm(e_o))
        if d_p < config.converge_position and d_o < config.converge_orientation:
            break
        if window:
            errors.append(d_p + 0.1 * d_o)
            if len(errors) > window and d_p > config.stall_far and \
                    errors[-1 - window] - errors[-1] < config.stall_progress:
                break
        j = jacobian(arm, q, frames)
        jjt = j @ j.T + lam2 * eye6
        pinv = j.T @ np.linalg.solve(jjt, eye6)
        dq = pinv @ np.concatenate([e_p, e_o])
        # the posture pull fades out near the target (the damped pseudo-inverse is not an exact
        # projector, so a constant pull would stall the last millimetres)
        fade = min(1.0, d_p / 0.05)
        dq += (np.eye(7) - pinv @ j) @ (fade * config.nullspace_gain * (arm.rest - q))
        step = float(np.max(np.abs(dq)))
        if step > config.max_step:
            dq *= config.max_step / step
        q = np.clip(q + dq, lower, upper)
    pos, ori = pose_error(target, tool_pose(arm, q))
    ok = pos <= config.accept_position and ori <= config.accept_orientation
    return IkResult(q, pos, ori, ok, it)


def ik_solutions(arm: ArmModel, target: np.ndarray, seeds: Sequence = (),
                 config: IkConfig | None = None, rng: np.random.Generator | None = None):
    """Every attempt at putting the grasp target at ``target`` (4x4, base frame), in order.

    Tries each seed, then the rest posture, then ``config.restarts`` random configurations
    from ``rng`` (seeded; default ``default_rng(0)``), yielding each :class:`IkResult`
    (accepted or not): a caller that rejects one solution (it collides) takes the next.
    """
    config = config or IkConfig()
    target = np.asarray(target, dtype=float)
    if target.shape != (4, 4) or not np.all(np.isfinite(target)):
        raise ValueError(f'target must be a finite 4x4 matrix, got shape {target.shape}')
    rng = rng if rng is not None else np.random.default_rng(0)
    lower = arm.lower + config.limit_margin
    upper = arm.upper - config.limit_margin
    starts = [np.asarray(s, dtype=float).reshape(7) for s in seeds] + [arm.rest]
    starts += [rng.uniform(lower, upper) for _ in range(config.restarts)]
    for start in starts:
        yield _dls(arm, target, start, config, lower, upper)


def _score(result: IkResult) -> float:
    return result.position_error + 0.1 * result.orientation_error


def solve_ik(arm: ArmModel, target: np.ndarray, seeds: Sequence = (),
             config: IkConfig | None = None, rng: np.random.Generator | None = None
             ) -> IkResult:
    """Joint positions putting the grasp target at ``target`` (4x4, base frame).

    The first accepted attempt of :func:`ik_solutions`, or the best attempt with
    ``success=False`` when the pose is out of reach.
    """
    best = None
    for result in ik_solutions(arm, target, seeds, config, rng):
        if result.success:
            return result
        if best is None or _score(result) < _score(best):
            best = result
    return best


# ---------------------------------------------------------------------------- geometry
def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


def yaw_of(rotation) -> float:
    """Yaw (about z) of a 3x3 rotation (or 4x4 pose)."""
    r = np.asarray(rotation)
    return math.atan2(r[1, 0], r[0, 0])


@dataclass(frozen=True)
class ObjectBox:
    """An object belief in the base frame: centre (m), extent of its box (m), yaw (rad)."""

    center: np.ndarray
    extent: np.ndarray
    yaw: float = 0.0

    def __post_init__(self):
        c = np.asarray(self.center, dtype=float).reshape(-1)
        e = np.asarray(self.extent, dtype=float).reshape(-1)
        if c.shape != (3,) or e.shape != (3,):
            raise ValueError(f'center and extent must have 3 values, got shapes {c.shape}, '
                             f'{e.shape}')
        if not (np.all(np.isfinite(c)) and np.all(np.isfinite(e)) and math.isfinite(self.yaw)):
            raise ValueError('center, extent and yaw must be finite')
        if np.any(e <= 0):
            raise ValueError(f'extent must be > 0, got {e.tolist()}')
        object.__setattr__(self, 'center', c)
        object.__setattr__(self, 'extent', e)
        object.__setattr__(self, 'yaw', float(self.yaw))

    @property
    def bottom(self) -> float:
        """Height of the object's underside (the support surface)."""
        return float(self.center[2] - self.extent[2] / 2)

    @property
    def top(self) -> float:
        """Height of the object's top."""
        return float(self.center[2] + self.extent[2] / 2)

    def width_along(self, angle: float) -> float:
        """Horizontal size of the box along the direction at ``angle`` (rad, base frame)."""
        d = angle - self.yaw
        return abs(math.cos(d)) * self.extent[0] + abs(math.sin(d)) * self.extent[1]

    def box(self, margin: float = 0.0, name: str = 'object') -> Box:
        """The axis-aligned box (base frame) around the object, grown by ``margin``."""
        half = np.array([self.width_along(0.0), self.width_along(math.pi / 2),
                         self.extent[2]]) / 2 + margin
        return Box(self.center - half, self.center + half, name)

    def gripped(self, width: float | None) -> ObjectBox:
        """The box with its narrower horizontal side no wider than ``width``, when given.

        ``width``: what the fingers measured across the object when they last held it, a
        truer size than a view's (perception's boxes of one object vary by several mm
        between views, and one a few mm too wide leaves no grasp).
        """
        k = int(np.argmin(self.extent[:2]))
        if width is None or not 0.0 < width < self.extent[k]:
            return self
        extent = self.extent.copy()
        extent[k] = width
        return ObjectBox(self.center, extent, self.yaw)


@dataclass(frozen=True)
class Box:
    """An axis-aligned obstacle box in the base frame; spheres of ``ignore_frames`` skip it."""

    lower: np.ndarray
    upper: np.ndarray
    name: str = 'box'
    ignore_frames: tuple[int, ...] = ()

    def __post_init__(self):
        lo = np.asarray(self.lower, dtype=float).reshape(-1)
        hi = np.asarray(self.upper, dtype=float).reshape(-1)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(hi < lo) or \
                not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError(f'box {self.name!r}: lower {lo.tolist()} and upper {hi.tolist()} '
                             'must be finite 3-vectors with lower <= upper')
        object.__setattr__(self, 'lower', lo)
        object.__setattr__(self, 'upper', hi)


def support_box(top: float, center_xy, near_x: float, depth: float = 0.8,
                half_width: float = 0.8, name: str = 'support') -> Box:
    """The table under an object, conservatively, as a box up to ``top``.

    It reaches from ``near_x`` (the base's front edge) to ``depth`` beyond the object,
    ``half_width`` to each side, and down to the floor.
    """
    cx, cy = float(center_xy[0]), float(center_xy[1])
    return Box((near_x, cy - half_width, -1.0), (max(cx + depth, near_x), cy + half_width,
                                                 top), name)


def support_near(point, surfaces: Sequence[ObjectBox], default: float, margin: float = 0.05,
                 above: float = 0.08) -> float:
    """Where the support under ``point`` (base frame) begins, for :func:`support_box`.

    ``default`` (the base's front edge) assumes the table may reach back to the robot. When
    perceived support surfaces (base frame; ``center`` z is the top) hold the point, the
    support begins at the nearest corner of any of them (less ``margin``) if that is farther:
    every surface whose footprint holds the point's x, y (within ``margin``) and whose top is
    at most ``above`` over the point counts, so a table under a tray is kept too.
    """
    px, py, pz = (float(v) for v in point)
    nearest = math.inf
    for s in surfaces:
        if s.center[2] > pz + above or not _holds(s, px, py, margin):
            continue
        nearest = min(nearest, s.center[0] - _half_spans(s, 0.0)[0])
    if not math.isfinite(nearest):
        return default
    return max(default, nearest - margin)


PLACE_GAP = 0.1  # m: a surface less high over a place's support is taken for a piece of it


def surfaces_over(point, top: float, surfaces: Sequence[ObjectBox], thickness: float = 0.03,
                  margin: float = 0.05, gap: float = 0.02) -> list[Box]:
    """The perceived surfaces over ``point`` (base frame x, y) and above ``top``, as obstacles.

    A shelf's upper board over an object on a lower one: every surface (``center`` z is its
    top) whose footprint holds the point (within ``margin``) and whose top is more than
    ``gap`` over ``top`` (the object's) becomes the axis-aligned box round its footprint,
    grown by ``margin``, from ``thickness`` under its top up to it. Planned against like the
    base's boxes, it keeps the hand and the arm's links from coming down through the board
    (the chooser of fetches leaves such objects out: see docs/manipulation.md).
    """
    px, py = float(point[0]), float(point[1])
    out = []
    for s in surfaces:
        z = float(s.center[2])
        if z <= top + gap or not _holds(s, px, py, margin):
            continue
        hx, hy = _half_spans(s, margin)
        out.append(Box((s.center[0] - hx, s.center[1] - hy, z - thickness),
                       (s.center[0] + hx, s.center[1] + hy, z),
                       f'the surface over it at {z:.2f} m'))
    return out


def _holds(surface: ObjectBox, x: float, y: float, margin: float) -> bool:
    """Whether a surface's footprint, grown by ``margin``, holds the point (x, y)."""
    c, si = math.cos(surface.yaw), math.sin(surface.yaw)
    dx, dy = x - surface.center[0], y - surface.center[1]
    half = surface.extent[:2] / 2 + margin
    return abs(c * dx + si * dy) <= half[0] and abs(-si * dx + c * dy) <= half[1]


def _half_spans(surface: ObjectBox, margin: float) -> tuple[float, float]:
    """Half sizes along x and y of the axis-aligned box round a footprint grown by margin."""
    c, si = abs(math.cos(surface.yaw)), abs(math.sin(surface.yaw))
    hx, hy = surface.extent[0] / 2 + margin, surface.extent[1] / 2 + margin
    return c * hx + si * hy, si * hx + c * hy


# ---------------------------------------------------------------------------- collisions
def sphere_positions(arm: ArmModel, q, frames: np.ndarray | None = None) -> np.ndarray:
    """Centres (n, 3) of the arm's collision spheres in the base frame at q."""
    frames = forward_kinematics(arm, q) if frames is None else frames
    f = frames[arm.sphere_frames]
    return np.einsum('nij,nj->ni', f[:, :3, :3], arm.sphere_centres) + f[:, :3, 3]


def clearances(arm: ArmModel, q, boxes: Sequence[Box]) -> np.ndarray:
    """Signed distance (n_spheres, n_boxes) of each sphere's surface to each box (< 0: inside).

    Pairs a box ignores are +inf.
    """
    centres = sphere_positions(arm, q)
    out = np.full((len(centres), len(boxes)), np.inf)
    for k, box in enumerate(boxes):
        inside = np.all((centres >= box.lower) & (centres <= box.upper), axis=1)
        outside = np.linalg.norm(np.maximum(np.maximum(box.lower - centres,
                                                       centres - box.upper), 0.0), axis=1)
        depth = np.min(np.minimum(centres - box.lower, box.upper - centres), axis=1)
        d = np.where(inside, -depth, outside) - arm.sphere_radii
        skip = np.isin(arm.sphere_frames, box.ignore_frames)
        out[:, k] = np.where(skip, np.inf, d)
    return out


def overlaps_robot(arm: ArmModel, q, box: Box, base_boxes: Sequence[Box]) -> bool:
    """Whether ``box`` overlaps the robot's own body: one of its base boxes, or the arm at q.

    Nothing else can be where the robot is: an object perceived there is a view of the robot
    itself (or of what it holds) or a belief out of date, and as an obstacle it would block
    every motion.
    """
    if any(np.all(box.lower < b.upper) and np.all(b.lower < box.upper) for b in base_boxes):
        return True
    return bool(np.any(clearances(arm, q, [box]) < 0.0))


@dataclass(frozen=True)
class Collision:
    """Where a path first comes closer than the margin to an obstacle."""

    index: int          # path sample index
    q: np.ndarray
    frame: int          # arm frame (1..7 link, 8 hand, 9 fingers)
    box: str
    clearance: float    # m (negative: penetration)

    def describe(self) -> str:
        """One line for a failure reason."""
        names = {8: 'hand', 9: 'fingers'}
        link = names.get(self.frame, f'panda_link{self.frame}')
        return f'{link} within {self.clearance:+.3f} m of {self.box}'


def interpolate_path(waypoints, resolution: float = 0.05) -> np.ndarray:
    """Joint-space path through the waypoints; no joint moves more than ``resolution`` rad."""
    w = np.asarray(waypoints, dtype=float).reshape(-1, 7)
    out = [w[0]]
    for a, b in zip(w[:-1], w[1:]):
        n = max(1, int(math.ceil(float(np.max(np.abs(b - a))) / resolution)))
        out.extend(a + (b - a) * (k / n) for k in range(1, n + 1))
    return np.array(out)


def first_collision(arm: ArmModel, waypoints, boxes: Sequence[Box], margin: float = 0.0,
                    resolution: float = 0.05, allow_start: bool = False) -> Collision | None:
    """The first configuration along the joint-space path closer than ``margin`` to a box.

    With ``allow_start``, sphere-box pairs already too close at the first configuration are
    excused while they do not come closer still (leaving a stowed pose is allowed).
    """
    if not boxes:
        return None
    path = interpolate_path(waypoints, resolution)
    excused = None
    for i, q in enumerate(path):
        c = clearances(arm, q, boxes)
        if i == 0 and allow_start:
            # the start may already be too close (a stowed arm): those sphere-box pairs are
            # excused until they first clear, as long as they do not get closer
            excused = c < margin
            floor = np.where(excused, c, np.inf)
        if excused is not None:
            excused &= c < margin
            worse = excused & (c < floor - 1e-3)
            c = np.where(excused & ~worse, np.inf, c)
        k = np.unravel_index(int(np.argmin(c)), c.shape)
        if c[k] < margin:
            return Collision(i, q, int(arm.sphere_frames[k[0]]), boxes[k[1]].name,
                             float(c[k]))
    return None


# ---------------------------------------------------------------------------- trajectories
@dataclass(frozen=True)
class Trajectory:
    """Joint trajectory samples: times (n,) from the start, positions and velocities (n, 7)."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    @property
    def duration(self) -> float:
        """Time of the last sample (s)."""
        return float(self.times[-1]) if len(self.times) else 0.0


def time_parameterise(waypoints, max_velocity, max_acceleration, dt: float = 0.05
                      ) -> Trajectory:
    """Rest-to-rest trapezoidal profile through joint waypoints, joints synchronised per segment.

    Each segment uses one normalised profile s(t) for every joint, with peak rate V and
    acceleration A chosen so that ``|dq_j| * V <= v_j`` and ``|dq_j| * A <= a_j`` for all
    joints and the duration ``1/V + V/A`` is the shortest (triangular when that is shorter).
    Sampled every ``dt`` plus each segment's end; the first sample is the first waypoint at t = 0.
    """
    w = np.asarray(waypoints, dtype=float)
    if w.ndim != 2 or w.shape[0] < 1 or not np.all(np.isfinite(w)):
        raise ValueError(f'waypoints must be a finite (k, n) array, got shape {w.shape}')
    vmax = np.broadcast_to(np.asarray(max_velocity, dtype=float), w.shape[1:])
    amax = np.broadcast_to(np.asarray(max_acceleration, dtype=float), w.shape[1:])
    if np.any(vmax <= 0) or np.any(amax <= 0) or not dt > 0:
        raise ValueError('velocity and acceleration limits and dt must be > 0')
    times, pos, vel = [0.0], [w[0]], [np.zeros(w.shape[1])]
    t0 = 0.0
    for a, b in zip(w[:-1], w[1:]):
        d = b - a
        dist = np.abs(d)
        if float(np.max(dist)) < 1e-9:
            continue
        moving = dist > 1e-12
        v_lim = float(np.min(vmax[moving] / dist[moving]))
        a_lim = float(np.min(amax[moving] / dist[moving]))
        v_peak = min(v_lim, math.sqrt(a_lim))
        duration = 1.0 / v_peak + v_peak / a_lim
        ramp = v_peak / a_lim
        n = int(math.ceil(duration / dt - 1e-9))
        for k in range(1, n + 1):
            t = min(k * dt, duration)
            if t < ramp:
                s, ds = 0.5 * a_lim * t * t, a_lim * t
            elif t <= duration - ramp:
                s, ds = 0.5 * a_lim * ramp * ramp + v_peak * (t - ramp), v_peak
            else:
                r = duration - t
                s, ds = 1.0 - 0.5 * a_lim * r * r, a_lim * r
            times.append(t0 + t)
            pos.append(a + d * s)
            vel.append(d * ds)
        t0 += duration
    return Trajectory(np.array(times), np.array(pos), np.array(vel))


# ---------------------------------------------------------------------------- grasps
def top_down_pose(position, yaw: float) -> np.ndarray:
    """Tool pose pointing straight down, fingers closing along the direction ``yaw``."""
    y = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    m = np.eye(4)
    m[:3, :3] = np.column_stack([np.cross(y, z), y, z])
    m[:3, 3] = position
    return m


def side_pose(position, heading: float, flip: bool = False) -> np.ndarray:
    """Tool pose approaching horizontally along ``heading``, fingers closing horizontally."""
    z = np.array([math.cos(heading), math.sin(heading), 0.0])
    y = np.array([-math.sin(heading), math.cos(heading), 0.0]) * (-1.0 if flip else 1.0)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([np.cross(y, z), y, z])
    m[:3, 3] = position
    return m


@dataclass(frozen=True)
class GraspConfig:
    """Geometry of grasping and placing (metres)."""

    approach_distance: float = 0.10    # pre-grasp / pre-place offset against the approach
    lift_height: float = 0.10
    retreat_distance: float = 0.10
    finger_clearance: float = 0.006    # free space each side of the object in the open gripper
    finger_depth: float = 0.035        # how far the fingertips reach below an object's top
    min_finger_height: float = 0.02    # fingertips above the support surface (top grasp)
    side_min_height: float = 0.05      # grasp target above the support (side grasp)
    place_clearance: float = 0.01      # object bottom above the surface when released
    waypoint_spacing: float = 0.02     # Cartesian steps of the straight approach / lift

    def fits(self, max_width: float) -> float:
        """The widest object the open gripper takes with ``finger_clearance`` either side."""
        return max_width - 2 * self.finger_clearance

    def __post_init__(self):
        for name in ('approach_distance', 'lift_height', 'retreat_distance', 'finger_depth',
                     'waypoint_spacing'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1.0):
                raise ValueError(f'{name} must be in (0, 1] m, got {value!r}')
        for name in ('finger_clearance', 'min_finger_height', 'side_min_height',
                     'place_clearance'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 0.5):
                raise ValueError(f'{name} must be in [0, 0.5] m, got {value!r}')


@dataclass(frozen=True)
class GraspCandidate:
    """Tool poses of one way to take (or put down) an object, base frame."""

    kind: str                 # 'top' or 'side'
    approach: np.ndarray      # pre-grasp / pre-place pose
    contact: np.ndarray       # grasp / release pose
    depart: np.ndarray        # lift / retreat pose
    width: float = 0.0        # object width between the fingers (m)
    tool_height: float = 0.0  # grasp target above the object's underside (m)


def grasp_candidates(obj: ObjectBox, config: GraspConfig, max_width: float = PANDA_MAX_WIDTH,
                     shoulder_xy=(0.12, 0.0)) -> list[GraspCandidate]:
    """Grasp poses for an object, top-down ones first.

    Top-down: fingers across each horizontal axis narrow enough, both hand flips. Side: from
    the shoulder's direction. Empty when the object is too wide for the gripper.
    """
    fits = config.fits(max_width)
    out = []
    top_z = max(obj.center[2], obj.top - config.finger_depth)
    top_z = min(max(top_z, obj.bottom + config.min_finger_height), obj.top)
    axes = sorted((obj.width_along(obj.yaw + k * math.pi / 2), obj.yaw + k * math.pi / 2)
                  for k in (0, 1))
    heading = math.atan2(obj.center[1] - shoulder_xy[1], obj.center[0] - shoulder_xy[0])
    for width, angle in axes:
        if width > fits:
            continue
        # of the two flips, first the one whose hand x axis points away from the robot
        flips = sorted((_wrap(angle), _wrap(angle + math.pi)),
                       key=lambda a: abs(_wrap(a - heading - math.pi / 2)))
        for yaw in flips:
            grasp = top_down_pose((obj.center[0], obj.center[1], top_z), yaw)
            out.append(GraspCandidate(
                'top', grasp @ translation((0, 0, -config.approach_distance)), grasp,
                translation((0, 0, config.lift_height)) @ grasp, width, top_z - obj.bottom))
    width = obj.width_along(heading + math.pi / 2)
    if width <= fits:
        z = min(max(obj.center[2], obj.bottom + config.side_min_height), obj.top)
        for flip in (False, True):
            grasp = side_pose((obj.center[0], obj.center[1], z), heading, flip)
            out.append(GraspCandidate(
                'side', grasp @ translation((0, 0, -config.approach_distance)), grasp,
                translation((0, 0, config.lift_height)) @ grasp, width, z - obj.bottom))
    return out


def place_candidates(target, held: GraspCandidate, config: GraspConfig,
                     shoulder_xy=(0.12, 0.0), yaws: int = 8) -> list[GraspCandidate]:
    """Release poses for a held object at ``target`` (a point on the support, base frame).

    The object's underside ends ``place_clearance`` above the target; the hand comes down from
    above and retreats along its approach axis. Top grasps try ``yaws`` hand yaws; side grasps
    face away from the shoulder.
    """
    target = np.asarray(target, dtype=float).reshape(3)
    z = target[2] + held.tool_height + config.place_clearance
    pos = np.array([target[0], target[1], z])
    above = translation((0, 0, config.approach_distance))
    out = []
    if held.kind == 'top':
        base = yaw_of(held.contact)
        for k in range(yaws):
            release = top_down_pose(pos, _wrap(base + k * 2 * math.pi / yaws))
            out.append(GraspCandidate('top', above @ release, release,
                                      release @ translation((0, 0, -config.retreat_distance)),
                                      held.width, held.tool_height))
    else:
        heading = math.atan2(target[1] - shoulder_xy[1], target[0] - shoulder_xy[0])
        for flip in (False, True):
            release = side_pose(pos, heading, flip)
            out.append(GraspCandidate('side', above @ release, release,
                                      release @ translation((0, 0, -config.retreat_distance)),
                                      held.width, held.tool_height))
    return out


# ---------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class MotionPlan:
    """A pick or place: the chosen candidate and joint waypoints of each arm motion.

    ``transit``: from the start to the approach pose (through ``via`` if the direct path
    collides); ``approach``: the straight move to contact; ``depart``: lift or retreat.
    """

    candidate: GraspCandidate
    transit: np.ndarray
    approach: np.ndarray
    depart: np.ndarray


@dataclass(frozen=True)
class PlanFailure:
    """Why no plan was found: ``reason`` is 'unreachable' or 'collision'."""

    reason: str
    message: str


def max_reach(arm: ArmModel) -> float:
    """An upper bound of the tool's distance from the shoulder (joint 2), m."""
    links = [np.linalg.norm(o[:3, 3]) for o in arm.origins[2:]]
    return float(sum(links) + np.linalg.norm(arm.hand[:3, 3]) + np.linalg.norm(arm.tool[:3, 3]))


def cartesian_path(arm: ArmModel, start_q, start: np.ndarray, goal: np.ndarray,
                   config: GraspConfig, ik: IkConfig) -> np.ndarray | None:
    """Joint waypoints along the straight line from pose ``start`` to ``goal``.

    The orientation is that of ``start``; each waypoint is solved from the previous one.
    None when a step fails or jumps.
    """
    distance = float(np.linalg.norm(goal[:3, 3] - start[:3, 3]))
    n = max(1, int(math.ceil(distance / config.waypoint_spacing)))
    local = dataclasses.replace(ik, restarts=0)
    out = [np.asarray(start_q, dtype=float)]
    for k in range(1, n + 1):
        pose = start.copy()
        pose[:3, 3] = start[:3, 3] + (goal[:3, 3] - start[:3, 3]) * (k / n)
        result = _dls(arm, pose, out[-1], local, arm.lower + ik.limit_margin,
                      arm.upper - ik.limit_margin)
        if not result.success or float(np.max(np.abs(result.q - out[-1]))) > 0.5:
            return None
        out.append(result.q)
    return np.array(out)


def _plan_from(arm: ArmModel, q_start: np.ndarray, q_approach: np.ndarray,
               cand: GraspCandidate, transit_boxes, contact_boxes, depart_boxes,
               config: GraspConfig, ik: IkConfig, margin: float, via
               ) -> tuple[MotionPlan | None, str | None]:
    """The motions of one candidate from one arm posture at its approach pose.

    (plan, None), or (None, the collision that stopped it), or (None, None) when a straight
    approach or depart cannot be followed from that posture.
    """
    approach = cartesian_path(arm, q_approach, cand.approach, cand.contact, config, ik)
    if approach is None:
        return None, None
    depart = cartesian_path(arm, approach[-1], cand.contact, cand.depart, config, ik)
    if depart is None:
        return None, None
    hit = first_collision(arm, approach, contact_boxes, margin) or \
        first_collision(arm, depart, depart_boxes, margin)
    if hit is not None:
        return None, f'{cand.kind}: {hit.describe()}'
    for transit in ([q_start, q_approach], [q_start, via, q_approach]):
        if via is None and len(transit) == 3:
            continue
        hit = first_collision(arm, transit, transit_boxes, margin, allow_start=True)
        if hit is None:
            return MotionPlan(cand, np.array(transit, dtype=float), approach, depart), None
    return None, f'{cand.kind} transit: {hit.describe()}'


def _plan(arm: ArmModel, q_start, candidates: Sequence[GraspCandidate],
          transit_boxes: Sequence[Box], contact_boxes: Sequence[Box], depart_boxes: Sequence[Box],
          config: GraspConfig, ik: IkConfig, margin: float, via, rng, what: str,
          ik_postures: int = 3) -> MotionPlan | PlanFailure:
    """The first candidate, in order, with collision-free motions; else why none.

    For each candidate up to ``ik_postures`` different arm postures at its approach pose are
    tried (IK from other starts), so that an elbow that would hit the table is not the end.
    """
    q_start = np.asarray(q_start, dtype=float)
    if not candidates:
        return PlanFailure('unreachable', f'no {what} pose fits the gripper')
    shoulder = forward_kinematics(arm, q_start)[2, :3, 3]
    gap = min(float(np.linalg.norm(c.approach[:3, 3] - shoulder)) for c in candidates) - \
        max_reach(arm)
    if gap > 0:
        return PlanFailure('unreachable', f'{what} pose {gap:.2f} m beyond the arm\'s reach')
    best_ik, collisions = None, []
    for cand in candidates:
        solutions, tried = 0, []
        for first in ik_solutions(arm, cand.approach, (q_start,), ik, rng):
            if not first.success:
                if best_ik is None or _score(first) < _score(best_ik):
                    best_ik = first
                continue
            if any(float(np.max(np.abs(first.q - q))) < 0.1 for q in tried):
                continue  # the same arm posture as one already found colliding
            solutions += 1
            plan, hit = _plan_from(arm, q_start, first.q, cand, transit_boxes, contact_boxes,
                                   depart_boxes, config, ik, margin, via)
            if plan is not None:
                return plan
            if hit is not None:
                collisions.append(hit)
            tried.append(first.q)
            if solutions >= ik_postures:
                break
    if collisions:
        return PlanFailure('collision', f'every reachable {what} collides: '
                           + '; '.join(collisions[:3]))
    if best_ik is None:
        return PlanFailure('unreachable', f'no straight {what} approach is reachable')
    return PlanFailure('unreachable', f'{what} pose out of reach: best IK leaves '
                       f'{best_ik.position_error:.3f} m, {best_ik.orientation_error:.2f} rad')


def plan_pick(arm: ArmModel, q_start, obj: ObjectBox, obstacles: Sequence[Box],
              support: Box | None, config: GraspConfig | None = None,
              ik: IkConfig | None = None, margin: float = 0.005, via=READY,
              rng: np.random.Generator | None = None) -> MotionPlan | PlanFailure:
    """Plan transit -> pre-grasp -> grasp -> lift for ``obj``.

    ``obstacles`` (robot base, other objects) are avoided on every motion; the ``support``
    (table top) too, except that the fingers may go down beside the object to its bottom plus
    ``min_finger_height``; the object itself is avoided during the transit only.
    """
    config = config or GraspConfig()
    ik = ik or IkConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    shoulder = tuple(arm.mount[:2, 3])
    cands = grasp_candidates(obj, config, arm.max_width, shoulder)
    if not cands:
        return PlanFailure('unreachable', 'no grasp pose fits the gripper: the object is '
                           f'{obj.extent[0]:.3f} x {obj.extent[1]:.3f} m across, the open '
                           f'gripper takes {config.fits(arm.max_width):.3f} m '
                           f'with {config.finger_clearance:.3f} m free on each side')
    table = [] if support is None else [support]
    target = obj.box(0.0, 'the target object')
    hand_only = Box(target.lower, target.upper, target.name, ignore_frames=(FINGER_FRAME,))
    return _plan(arm, q_start, cands, [*obstacles, *table, target],
                 [*obstacles, *table, hand_only], [*obstacles, *table], config, ik, margin,
                 via, rng, 'grasp')


def grasp_where_stopped(arm: ArmModel, q, plan: MotionPlan, max_above: float,
                        config: GraspConfig | None = None, ik: IkConfig | None = None
                        ) -> tuple[MotionPlan, np.ndarray, float] | None:
    """A top-down pick whose hand stopped at ``q`` on its way down, taken from there.

    The hand stopped between 1 cm and ``max_above`` above the grasp pose has met the top of
    an object taller than its belief: the fingers straddle what stopped it. Returns the plan
    with the grasp there (its lift and the grasp's height above the object's underside from
    there), the joint path back up to the pre-grasp pose, and how far above it stopped; None
    for a side grasp, a stop outside that band, or no straight lift from there.
    """
    config = config or GraspConfig()
    ik = ik or IkConfig()
    if plan.candidate.kind != 'top':
        return None
    tool = tool_pose(arm, q)
    above = float(tool[2, 3] - plan.candidate.contact[2, 3])
    if not 0.01 < above <= max_above:
        return None
    lift = tool.copy()
    lift[2, 3] += config.lift_height
    depart = cartesian_path(arm, q, tool, lift, config, ik)
    if depart is None:
        return None
    candidate = dataclasses.replace(plan.candidate, contact=tool,
                                    tool_height=plan.candidate.tool_height + above)
    back = cartesian_path(arm, q, tool, plan.candidate.approach, config, ik)
    if back is None:
        back = np.array([np.asarray(q, dtype=float), plan.approach[0]])
    return dataclasses.replace(plan, candidate=candidate, depart=depart), back, above


def release_where_stopped(arm: ArmModel, q, plan: MotionPlan, max_above: float,
                          config: GraspConfig | None = None, ik: IkConfig | None = None,
                          max_off: float = 0.02) -> tuple[MotionPlan, float] | None:
    """A place whose hand stopped at ``q`` on its way down, released from there.

    The hand stopped above its release pose, at most ``max_above`` higher and ``max_off``
    aside, has set the object down on something higher than the target: a support whose top
    is above its belief, or an object hanging lower in the hand than its grasp had it.
    Returns the plan with the release there and its retreat from there, and how far above
    it stopped; None for a stop outside that band or no straight retreat from there.
    """
    config = config or GraspConfig()
    ik = ik or IkConfig()
    tool = tool_pose(arm, q)
    release = plan.candidate.contact
    above = float(tool[2, 3] - release[2, 3])
    if not 0.0 < above <= max_above \
            or np.linalg.norm(tool[:2, 3] - release[:2, 3]) > max_off:
        return None
    retreat = tool @ translation((0, 0, -config.retreat_distance))
    depart = cartesian_path(arm, q, tool, retreat, config, ik)
    if depart is None:
        return None
    candidate = dataclasses.replace(plan.candidate, contact=tool, depart=retreat)
    return dataclasses.replace(plan, candidate=candidate, depart=depart), above


def plan_place(arm: ArmModel, q_start, target, held: GraspCandidate, obstacles: Sequence[Box],
               support: Box | None, config: GraspConfig | None = None,
               ik: IkConfig | None = None, margin: float = 0.005, via=None,
               rng: np.random.Generator | None = None) -> MotionPlan | PlanFailure:
    """Plan transit -> above the target -> release pose -> retreat for a held object."""
    config = config or GraspConfig()
    ik = ik or IkConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    shoulder = tuple(arm.mount[:2, 3])
    cands = place_candidates(target, held, config, shoulder)
    table = [] if support is None else [support]
    return _plan(arm, q_start, cands, [*obstacles, *table], [*obstacles, *table],
                 [*obstacles, *table], config, ik, margin, via, rng, 'place')


# ---------------------------------------------------------------------------- base approach
NO_FREE_POSE = 'no free base pose'  # plan_approach's words when no stand-point is known free


@dataclass(frozen=True)
class Approach:
    """Where the base should stand to pick (or place): a map-frame pose and the arm's plan.

    ``x``, ``y``, ``heading``: the base pose (facing the object or target); ``standoff``: its
    distance to it; ``plan``: the pick or place planned from there (base frame); ``target``:
    for a place, the map-frame point to put the object down at; ``short_of_slack``: '' when
    the plan also holds from the pose's slack around it, else why not (no pose allowed that).
    """

    x: float
    y: float
    heading: float
    standoff: float
    plan: MotionPlan
    target: np.ndarray | None = None
    short_of_slack: str = ''


def base_to_map(x: float, y: float, heading: float) -> np.ndarray:
    """4x4 map-from-base transform of a planar base pose."""
    c, s = math.cos(heading), math.sin(heading)
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    t[:2, 3] = (x, y)
    return t


def _in_base(box: ObjectBox, to_base: np.ndarray, heading: float) -> ObjectBox:
    return ObjectBox((to_base @ [*box.center, 1.0])[:3], box.extent, _wrap(box.yaw - heading))


def _obstacles_from(base_boxes: Sequence[Box], others, to_base: np.ndarray,
                    heading: float) -> list[Box]:
    """The base's boxes and the other objects (map frame) in a base pose's frame."""
    return list(base_boxes) + [_in_base(o, to_base, heading).box(0.0, f'object {name}')
                               for name, o in others]


def _stand_points(target_xy, free, plan_at, *, start_xy, headings: int,
                  standoffs: Sequence[float], slack: float, heading_slack: float, what: str,
                  current=None, deadline: float | None = None) -> Approach | PlanFailure:
    """The first free base pose facing ``target_xy`` from which ``plan_at`` plans.

    ``plan_at(x, y, heading)`` must also plan from ``slack`` back or aside and from
    ``heading_slack`` turned either way (see :func:`plan_approach`). ``current`` (x, y,
    heading), where the base stands now, is tried first, as it is: no drive, no slack, and
    not asked about ``free`` (the base stands there). When no free pose allows the slack, the
    first one that plans as it is is returned, its ``short_of_slack`` saying why it is short:
    a pose at the edge of reach may still work where the base stops, where none is a failure.
    ``deadline`` (``time.monotonic()``): no pose is begun after it; the answer is what was
    found by then (a pose at the edge of reach, or a failure that says how many were tried).
    """
    if headings < 1 or not standoffs or min(standoffs) <= 0:
        raise ValueError(f'need headings >= 1 and standoffs > 0, got {headings}, '
                         f'{list(standoffs)}')
    cx, cy = float(target_xy[0]), float(target_xy[1])
    if current is not None:
        x, y, heading = (float(v) for v in current)
        r = math.hypot(cx - x, cy - y)
        if r <= max(standoffs):  # the base is there: no need to ask whether it fits
            plan = plan_at(x, y, heading)
            if isinstance(plan, MotionPlan):
                return Approach(x, y, heading, r, plan)
    poses = []
    for k in range(headings):
        heading = 2 * math.pi * k / headings
        for r in standoffs:
            poses.append((cx - r * math.cos(heading), cy - r * math.sin(heading), heading,
                          float(r)))
    if start_xy is not None:
        sx, sy = float(start_xy[0]), float(start_xy[1])
        poses.sort(key=lambda p: math.hypot(p[0] - sx, p[1] - sy))
    free_poses = [p for p in poses if free(p[0], p[1], p[2])]
    if not free_poses:
        return PlanFailure('unreachable', f'{NO_FREE_POSE} within {max(standoffs):.2f} m '
                           f'of the {what} at ({cx:.2f}, {cy:.2f})')
    last = edge = None
    tried = 0
    for x, y, heading, r in free_poses:
        if deadline is not None and time.monotonic() > deadline and tried:
            break
        tried += 1
        plan = plan_at(x, y, heading)
        nominal = plan
        c, s = math.cos(heading), math.sin(heading)
        offsets = [(-slack * c, -slack * s, 0.0), (-slack * s, slack * c, 0.0),
                   (slack * s, -slack * c, 0.0)] if slack > 0 else []
        offsets += [(0.0, 0.0, heading_slack), (0.0, 0.0, -heading_slack)] \
            if heading_slack > 0 else []
        for dx, dy, dh in offsets:
            if not isinstance(plan, MotionPlan):
                break
            off = plan_at(x + dx, y + dy, heading + dh)
            if not isinstance(off, MotionPlan):
                turned = f'{slack:.2f} m off' if dh == 0 else f'{dh:+.2f} rad off'
                plan = PlanFailure(off.reason, f'not from {turned} the pose: {off.message}')
        if isinstance(plan, MotionPlan):
            return Approach(x, y, heading, r, plan)
        if edge is None and isinstance(nominal, MotionPlan):
            edge = Approach(x, y, heading, r, nominal, short_of_slack=plan.message)
        last = plan
    if edge is not None:
        return edge
    if tried < len(free_poses):
        return PlanFailure('unreachable', f'none of the {tried} of {len(free_poses)} free base '
                           f'poses around ({cx:.2f}, {cy:.2f}) tried in the planning time '
                           f'reaches the {what}: {last.message}')
    return PlanFailure('unreachable', f'none of {len(free_poses)} free base poses around '
                       f'({cx:.2f}, {cy:.2f}) reaches the {what}: {last.message}')


def plan_approach(arm: ArmModel, q_start, obj: ObjectBox, base_boxes: Sequence[Box], free,
                  *, start_xy=None, headings: int = 16,
                  standoffs: Sequence[float] = (0.45, 0.55, 0.65, 0.75),
                  support_near_x: float = 0.30, config: GraspConfig | None = None,
                  ik: IkConfig | None = None, margin: float = 0.005,
                  rng: np.random.Generator | None = None, slack: float = 0.0,
                  heading_slack: float = 0.0, others: Sequence[tuple[str, ObjectBox]] = (),
                  current=None, surfaces: Sequence[ObjectBox] = (),
                  deadline: float | None = None) -> Approach | PlanFailure:
    """Find a base pose facing ``obj`` (map frame) from which :func:`plan_pick` succeeds.

    Candidates stand ``standoffs`` from the object's centre at ``headings`` directions around
    it, facing it; ``free(x, y, heading)`` says whether the base may stand there (e.g. its
    footprint at that heading covers only free cells of a map). They are tried nearest to
    ``start_xy`` (the robot now) first, so the first success is also a short drive. The
    object's support is assumed to reach back to ``support_near_x`` in the base frame, or to
    the near edge of the perceived ``surfaces`` (map frame) under it (:func:`support_near`),
    as the manipulator does. A base that drives there may stop up to ``slack`` away from the
    pose: the pick must then also succeed from ``slack`` farther back and from ``slack`` to
    either side, so that a pose at the edge of the arm's reach is not chosen while another is free
    (failing that, the first that plans as it is: ``Approach.short_of_slack``); likewise
    from ``heading_slack`` rad turned either way (the base's heading tolerance). ``others``: the
    other objects, (name, box in the map frame), kept clear of as the manipulator does.
    ``current``: the base pose now (x, y, heading), tried first as it is. ``deadline``
    (``time.monotonic()``): when to stop trying poses.
    """
    def pick_from(x: float, y: float, heading: float):
        to_base = np.linalg.inv(base_to_map(x, y, heading))
        local = _in_base(obj, to_base, heading)
        tops = [_in_base(t, to_base, heading) for t in surfaces]
        near = support_near((*local.center[:2], local.bottom), tops, support_near_x)
        support = support_box(local.bottom, local.center[:2], near)
        return plan_pick(arm, q_start, local,
                         _obstacles_from(base_boxes, others, to_base, heading)
                         + surfaces_over(local.center, local.top, tops),
                         support, config, ik, margin, rng=rng)

    return _stand_points(obj.center[:2], free, pick_from, start_xy=start_xy, headings=headings,
                         standoffs=standoffs, slack=slack, heading_slack=heading_slack,
                         what='object', current=current, deadline=deadline)


def plan_place_approach(arm: ArmModel, q_start, targets, held: GraspCandidate,
                        base_boxes: Sequence[Box], free, *, start_xy=None, headings: int = 16,
                        standoffs: Sequence[float] = (0.45, 0.55, 0.65, 0.75),
                        support_near_x: float = 0.30, config: GraspConfig | None = None,
                        ik: IkConfig | None = None, margin: float = 0.005,
                        rng: np.random.Generator | None = None, slack: float = 0.0,
                        heading_slack: float = 0.0,
                        others: Sequence[tuple[str, ObjectBox]] = (), current=None,
                        surfaces: Sequence[ObjectBox] = (), deadline: float | None = None
                        ) -> Approach | PlanFailure:
    """As :func:`plan_approach`, to put ``held`` down with :func:`plan_place`.

    ``targets``: (k, 3) map-frame points on a support surface, in order of preference; the
    answer's ``target`` is the point chosen.
    """
    targets = np.asarray(targets, dtype=float).reshape(-1, 3)
    if not len(targets):
        return PlanFailure('unreachable', 'no free spot on the surface to put it down')
    last = None
    for target in targets:
        if deadline is not None and time.monotonic() > deadline and last is not None:
            break

        def place_from(x: float, y: float, heading: float, target=target):
            to_base = np.linalg.inv(base_to_map(x, y, heading))
            local = (to_base @ [*target, 1.0])[:3]
            tops = [_in_base(t, to_base, heading) for t in surfaces]
            near = support_near(local, tops, support_near_x)
            support = support_box(local[2], local[:2], near)
            return plan_place(arm, q_start, local, held,
                              _obstacles_from(base_boxes, others, to_base, heading)
                              + surfaces_over(local, local[2], tops, gap=PLACE_GAP), support,
                              config, ik, margin, rng=rng)

        found = _stand_points(target[:2], free, place_from, start_xy=start_xy,
                              headings=headings, standoffs=standoffs, slack=slack,
                              heading_slack=heading_slack, what='place spot',
                              current=current, deadline=deadline)
        if isinstance(found, Approach):
            return dataclasses.replace(found, target=target.copy())
        last = found
    return PlanFailure(last.reason, f'none of {len(targets)} spots: {last.message}')


