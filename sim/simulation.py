"""The simulation facade: one headless PyBullet client with a world, a robot and its sensors.

Physics steps at a fixed ``dt = 1 / physics_hz``; the controller (command timeout, arm
trajectory interpolation, motor targets, grasp attachment) runs every ``physics_hz /
control_hz`` steps; the kinematic base integrates its velocity command every physics step.
Sensors are never rendered inside :meth:`Simulation.step`: ``step`` reports which sensors fell
due, and the caller renders only those it needs (``render``, ``laser_scan``).

Bad commands: NaN or infinite values are rejected (the command is ignored and the result says
why); finite values beyond the limits are clamped, and the result flags it, so a ROS node can
warn. Everything (world, robot, commands, constraints, time) is rebuilt by :meth:`reset`, so
a reset mid-run leaves no stale state. Same scenario + seed + command sequence gives identical
poses and images.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pybullet as p

from embodied_aif.sim.objects import SpawnedObject, scatter_objects
from embodied_aif.sim.robot import HOME, JointStates, Robot, RobotConfig
from embodied_aif.sim.scenario import Scenario, load_scenario
from embodied_aif.sim.sensors import (
    CameraConfig,
    CameraFrame,
    Laser,
    LaserConfig,
    LaserScanData,
    PhysicsClientOwner,
    render_camera,
)
from embodied_aif.sim.world import World, build_world

CAMERAS = ('head_camera', 'wrist_camera', 'nav_camera')
SENSORS = CAMERAS + ('scan',)
#: A wide, small navigation camera in the head camera's housing (same optical frame): the view
#: the world model is trained on (sim.trajectories renders the same square 90 deg picture).
#: The head camera proper is pitched down at table tops and sees mostly floor.
NAV_CAMERA = CameraConfig('head_camera_optical_frame', 64, 64, 90.0)


def _rate(value, name: str, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f'{name} must be {">= 0" if allow_zero else "> 0"}, got {value!r}')
    return float(value)


def check_display() -> None:
    """ValueError unless a display is set for PyBullet's GUI window."""
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        raise ValueError('gui=True needs a display, and neither DISPLAY nor WAYLAND_DISPLAY '
                         'is set: run headless (the default) or from a desktop session')


@dataclass(frozen=True)
class Rates:
    """Physics, control and sensor rates in Hz (a sensor rate of 0 turns it off)."""

    physics_hz: float = 240.0
    control_hz: float = 60.0
    head_camera_hz: float = 10.0
    wrist_camera_hz: float = 5.0
    scan_hz: float = 10.0
    nav_camera_hz: float = 0.0

    def __post_init__(self):
        _rate(self.physics_hz, 'physics_hz', False)
        _rate(self.control_hz, 'control_hz', False)
        ratio = self.physics_hz / self.control_hz
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f'physics_hz / control_hz must be a whole number >= 1, got '
                             f'{self.physics_hz} / {self.control_hz}')
        for name in ('head_camera_hz', 'wrist_camera_hz', 'scan_hz', 'nav_camera_hz'):
            if _rate(getattr(self, name), name, True) > self.physics_hz:
                raise ValueError(f'{name} {getattr(self, name)} exceeds physics_hz '
                                 f'{self.physics_hz}')

    @property
    def control_every(self) -> int:
        """Physics steps per control step."""
        return int(round(self.physics_hz / self.control_hz))


@dataclass(frozen=True)
class Limits:
    """Command limits: base speeds (m/s, rad/s), command timeout (sim s; 0 = none)."""

    max_linear: float = 1.0
    max_angular: float = 1.5
    cmd_timeout: float = 0.5
    max_gripper_width: float = 0.08

    def __post_init__(self):
        for name in ('max_linear', 'max_angular', 'max_gripper_width'):
            _rate(getattr(self, name), name, False)
        _rate(self.cmd_timeout, 'cmd_timeout', True)


@dataclass(frozen=True)
class CommandResult:
    """What happened to a command: accepted or rejected, clamped, the value applied, why."""

    accepted: bool
    clamped: bool = False
    value: tuple = ()
    message: str = ''


@dataclass(frozen=True)
class StepInfo:
    """After stepping: the step count, sim time (s) and the sensors that fell due."""

    step: int
    time: float
    due: tuple[str, ...]


@dataclass(frozen=True)
class ObjectTruth:
    """Ground truth of one object: identity, shape, pose (position, quaternion xyzw), room."""

    name: str
    category: str
    family: str
    shape: dict
    rgba: tuple
    position: tuple
    orientation: tuple
    room: tuple | None
    support: str


@dataclass(frozen=True)
class GroundTruth:
    """Evaluation-only truth: objects, robot pose and room, room looks, doors."""

    time: float
    objects: tuple[ObjectTruth, ...]
    robot_pose: tuple[float, float, float]
    robot_room: tuple | None
    room_looks: dict
    unplaced: tuple[str, ...] = ()
    attached: str | None = None


@dataclass
class _State:
    """Everything a reset rebuilds."""

    scenario: Scenario
    seed: int
    world: World
    robot: Robot
    objects: list[SpawnedObject]
    unplaced: list[str]
    laser: Laser
    pose: list[float]
    step: int = 0
    cmd: tuple[float, float] = (0.0, 0.0)
    velocity: tuple[float, float] = (0.0, 0.0)
    cmd_time: float = 0.0
    arm_target: np.ndarray = field(default_factory=lambda: np.array(HOME))
    trajectory: list | None = None
    trajectory_start: float = 0.0
    trajectory_q0: np.ndarray = field(default_factory=lambda: np.array(HOME))
    gripper_target: float = 0.08
    blocked: bool = False


class Simulation(PhysicsClientOwner):
    """A headless simulation: ``reset``, ``step``, commands, sensors and ground truth."""

    def __init__(self, scenario: str | Scenario = 'default', seed: int = 0,
                 rates: Rates | None = None, limits: Limits | None = None,
                 cameras: dict | None = None, laser: LaserConfig | None = None,
                 robot: RobotConfig | None = None, settle_s: float = 0.3, gui: bool = False):
        self.rates = rates or Rates()
        self.limits = limits or Limits()
        self.robot_config = robot or RobotConfig()
        self.cameras = {'head_camera': CameraConfig('head_camera_optical_frame', 320, 240, 60.0),
                        'wrist_camera': CameraConfig('wrist_camera_optical_frame', 160, 120,
                                                     70.0, near=0.02, far=3.0),
                        'nav_camera': NAV_CAMERA}
        for name, cfg in (cameras or {}).items():
            if name not in CAMERAS:
                raise ValueError(f'unknown camera {name!r} (known: {list(CAMERAS)})')
            self.cameras[name] = cfg
        self.laser_config = laser or LaserConfig()
        if not 0 <= settle_s <= 10:
            raise ValueError(f'settle_s must be in [0, 10], got {settle_s}')
        self.settle_s = settle_s
        scenario = load_scenario(scenario)  # fail before connecting on a bad scenario
        if gui:
            check_display()
        self.client = p.connect(p.GUI if gui else p.DIRECT)
        if self.client < 0:
            raise RuntimeError('PyBullet could not open its GUI window')
        if gui:  # the 3D view only: PyBullet's own panels would hide the robot
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=self.client)
        self._state: _State | None = None
        try:
            self.reset(scenario, seed)
        except Exception:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def reset(self, scenario: str | Scenario | None = None, seed: int | None = None) -> None:
        """Rebuild everything from a scenario (name, path or Scenario) and a seed."""
        scen = load_scenario(scenario) if scenario is not None else self._state.scenario
        if seed is None:
            seed = self._state.seed if self._state is not None else 0
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
        rng = np.random.default_rng(int(seed))
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / self.rates.physics_hz,
                                    numSolverIterations=50, deterministicOverlappingPairs=1,
                                    physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        start_room = scen.robot.start_room
        w, d = scen.building.room_size
        centre = ((start_room[1] + 0.5) * w, (start_room[0] + 0.5) * d)
        world = build_world(scen, rng, c)
        if scen.robot.start_pose is not None:
            x, y, yaw_deg = scen.robot.start_pose
            pose = [centre[0] + x, centre[1] + y, math.radians(yaw_deg)]
        else:
            pose = [centre[0], centre[1], float(rng.uniform(-math.pi, math.pi))]
        robot = Robot(c, self.robot_config, pose)
        cfg = self.robot_config
        blocked = [(*f.center, *f.half) for f in world.furniture if not f.on_table]
        blocked.append((pose[0], pose[1], cfg.footprint_radius + 0.2,
                        cfg.footprint_radius + 0.2))
        objects, unplaced = scatter_objects(scen.objects, world.surfaces, blocked, rng, c)
        lx, ly, lz = cfg.laser_xyz
        box_centre = (-lx, -ly, cfg.base_clearance + cfg.base_size[2] / 2 - lz)
        laser = Laser(self.laser_config, box_centre, [s / 2 for s in cfg.base_size])
        self._state = _State(scen, int(seed), world, robot, objects, unplaced, laser, pose)
        for _ in range(int(round(self.settle_s * self.rates.physics_hz))):
            p.stepSimulation(physicsClientId=c)
        self._state.step = 0

    # ----------------------------------------------------------------- properties
    @property
    def scenario(self) -> Scenario:
        """The current scenario."""
        return self._state.scenario

    @property
    def world(self) -> World:
        """The current world (building, furniture, occupancy)."""
        return self._state.world

    @property
    def robot(self) -> Robot:
        """The current robot."""
        return self._state.robot

    @property
    def dt(self) -> float:
        """Physics time step (s)."""
        return 1.0 / self.rates.physics_hz

    @property
    def time(self) -> float:
        """Simulation time since the last reset (s)."""
        return self._state.step / self.rates.physics_hz

    # ----------------------------------------------------------------- stepping
    def _due(self, step: int) -> list[str]:
        out = []
        for name, hz in (('head_camera', self.rates.head_camera_hz),
                         ('wrist_camera', self.rates.wrist_camera_hz),
                         ('nav_camera', self.rates.nav_camera_hz),
                         ('scan', self.rates.scan_hz)):
            if hz <= 0:
                continue
            period = self.rates.physics_hz / hz
            if math.floor(step / period + 1e-9) != math.floor((step - 1) / period + 1e-9):
                out.append(name)
        return out

    def step(self, n: int = 1) -> StepInfo:
        """Advance n physics steps; return the step count, time and sensors that fell due."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'n must be an integer >= 1, got {n!r}')
        s = self._state
        due = []
        for _ in range(n):
            if s.step % self.rates.control_every == 0:
                self._control()
            self._move_base()
            p.stepSimulation(physicsClientId=self.client)
            s.step += 1
            for name in self._due(s.step):
                if name not in due:
                    due.append(name)
        return StepInfo(s.step, self.time, tuple(sorted(due, key=SENSORS.index)))

    def _control(self) -> None:
        s = self._state
        t = self.time
        if self.limits.cmd_timeout > 0 and t - s.cmd_time > self.limits.cmd_timeout:
            s.cmd = (0.0, 0.0)
        if s.trajectory is not None:
            s.arm_target = self._interpolate(t - s.trajectory_start)
        s.robot.command_arm(s.arm_target)
        s.robot.command_gripper(s.gripper_target)
        closing = s.gripper_target < s.robot.gripper_width() + 1e-3 and s.gripper_target < 0.07
        s.robot.update_grasp(closing, {o.body for o in s.objects})

    def _interpolate(self, t: float) -> np.ndarray:
        traj = self._state.trajectory
        times = [pt[0] for pt in traj]
        if t >= times[-1]:
            return traj[-1][1]
        k = int(np.searchsorted(times, t, side='right'))
        if k == 0:
            t0, q0 = 0.0, self._state.trajectory_q0
        else:
            t0, q0 = traj[k - 1]
        t1, q1 = traj[k]
        a = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return q0 + a * (q1 - q0)

    def _move_base(self) -> None:
        s = self._state
        v, w = s.cmd
        x, y, yaw = s.pose
        dt = self.dt
        nyaw = yaw + w * dt
        if abs(w) > 1e-9:
            nx = x + v / w * (math.sin(nyaw) - math.sin(yaw))
            ny = y - v / w * (math.cos(nyaw) - math.cos(yaw))
        else:
            nx, ny = x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw)
        # the base's rectangle, not a circle around it, so that its front can come up to a
        # table's edge as a real base's can; turning on the spot is not checked (its corners
        # sweep at most footprint_radius, an approximation kept from the circular check)
        half_l, half_w = self.robot_config.base_size[0] / 2, self.robot_config.base_size[1] / 2
        s.blocked = False
        if (nx, ny) != (x, y):
            there = s.world.footprint_hits(nx, ny, nyaw, half_l, half_w)
            s.blocked = there > 0 and there >= s.world.footprint_hits(x, y, yaw, half_l, half_w)
        if s.blocked:
            nx, ny = x, y
        nyaw = math.atan2(math.sin(nyaw), math.cos(nyaw))
        s.velocity = (0.0 if s.blocked else v, w)
        if (nx, ny, nyaw) != (x, y, yaw):
            s.pose = [nx, ny, nyaw]
            s.robot.set_base_pose(nx, ny, nyaw)

    # ----------------------------------------------------------------- commands
    def set_base_velocity(self, linear: float, angular: float) -> CommandResult:
        """Command base speeds (m/s, rad/s); NaN/inf rejected, values clamped to the limits."""
        try:
            v, w = float(linear), float(angular)
        except (TypeError, ValueError):
            return CommandResult(False, message=f'base velocity must be numbers, got '
                                                f'{linear!r}, {angular!r}')
        if not (math.isfinite(v) and math.isfinite(w)):
            return CommandResult(False, message=f'base velocity not finite: ({v}, {w}); ignored')
        cv = min(max(v, -self.limits.max_linear), self.limits.max_linear)
        cw = min(max(w, -self.limits.max_angular), self.limits.max_angular)
        self._state.cmd = (cv, cw)
        self._state.cmd_time = self.time
        clamped = (cv, cw) != (v, w)
        msg = f'base velocity ({v}, {w}) clamped to ({cv}, {cw})' if clamped else ''
        return CommandResult(True, clamped, (cv, cw), msg)

    def _check_q(self, q) -> tuple[np.ndarray | None, bool, str]:
        try:
            arr = np.asarray(q, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return None, False, f'arm target must be 7 numbers, got {q!r}'
        if arr.shape != (7,):
            return None, False, f'arm target must have 7 joint values, got shape {arr.shape}'
        if not np.all(np.isfinite(arr)):
            return None, False, f'arm target not finite: {arr.tolist()}; ignored'
        lo, hi = self._state.robot.lower, self._state.robot.upper
        clipped = np.clip(arr, lo, hi)
        clamped = bool(np.any(clipped != arr))
        msg = (f'arm target clamped to joint limits on joints '
               f'{[i + 1 for i in np.flatnonzero(clipped != arr)]}') if clamped else ''
        return clipped, clamped, msg

    def set_arm_joint_targets(self, q: Sequence[float]) -> CommandResult:
        """Set 7 arm joint position targets (rad); NaN rejected, clamped to joint limits."""
        arr, clamped, msg = self._check_q(q)
        if arr is None:
            return CommandResult(False, message=msg)
        self._state.trajectory = None
        self._state.arm_target = arr
        return CommandResult(True, clamped, tuple(arr), msg)

    def set_arm_trajectory(self, points: Sequence[tuple[float, Sequence[float]]]
                           ) -> CommandResult:
        """Follow (time_from_now_s, q) points, linearly interpolated from the current target."""
        checked, clamped_any, msgs = [], False, []
        last = 0.0
        for k, pt in enumerate(points):
            try:
                t, q = float(pt[0]), pt[1]
            except (TypeError, ValueError, IndexError):
                return CommandResult(False, message=f'trajectory point {k} must be (t, q)')
            if not math.isfinite(t) or t < last or (k == 0 and t <= 0):
                return CommandResult(False, message=f'trajectory point {k}: times must be '
                                                    f'finite and increasing, got {t}')
            arr, clamped, msg = self._check_q(q)
            if arr is None:
                return CommandResult(False, message=f'trajectory point {k}: {msg}')
            clamped_any |= clamped
            if msg:
                msgs.append(f'point {k}: {msg}')
            checked.append((t, arr))
            last = t
        if not checked:
            return CommandResult(False, message='trajectory has no points')
        s = self._state
        s.trajectory_q0 = np.array(s.arm_target)
        s.trajectory = checked
        s.trajectory_start = self.time
        return CommandResult(True, clamped_any, tuple(tuple(q) for _, q in checked),
                             '; '.join(msgs))

    def move_arm_to(self, position, orientation=None) -> CommandResult:
        """Set arm targets by inverse kinematics for a grasp-target pose in the world frame."""
        try:
            pos = np.asarray(position, dtype=float).reshape(3)
            orn = None if orientation is None else np.asarray(orientation, float).reshape(4)
        except (TypeError, ValueError):
            return CommandResult(False, message='position must be 3 numbers, orientation 4')
        if not np.all(np.isfinite(pos)) or (orn is not None and not np.all(np.isfinite(orn))):
            return CommandResult(False, message='arm pose target not finite; ignored')
        q, residual = self._state.robot.inverse_kinematics(pos, orn)
        result = self.set_arm_joint_targets(q)
        if residual > 0.01:
            return CommandResult(True, True, result.value, f'pose out of reach: the grasp '
                                 f'target will stay {residual:.3f} m from it')
        return result

    def set_gripper(self, width: float | str) -> CommandResult:
        """Set the gripper opening (m), or 'open' / 'close'; clamped to [0, max width]."""
        if width == 'open':
            width = self.limits.max_gripper_width
        elif width == 'close':
            width = 0.0
        try:
            value = float(width)
        except (TypeError, ValueError):
            return CommandResult(False, message=f"gripper width must be a number, 'open' or "
                                                f"'close', got {width!r}")
        if not math.isfinite(value):
            return CommandResult(False, message=f'gripper width not finite: {value}; ignored')
        clipped = min(max(value, 0.0), self.limits.max_gripper_width)
        self._state.gripper_target = clipped
        clamped = clipped != value
        return CommandResult(True, clamped, (clipped,),
                             f'gripper width {value} clamped to {clipped}' if clamped else '')

    # ----------------------------------------------------------------- sensors / state
    def render(self, camera: str) -> CameraFrame:
        """Render camera 'head_camera' or 'wrist_camera' now: RGB, depth (m), intrinsics."""
        if camera not in self.cameras:
            raise ValueError(f'unknown camera {camera!r} (known: {list(self.cameras)})')
        cfg = self.cameras[camera]
        pos, quat = self._state.robot.link_pose(cfg.frame)
        return render_camera(cfg, self.client, pos, quat, self.time)

    def laser_scan(self) -> LaserScanData:
        """Cast the laser now; ranges in metres from the laser frame (+inf: no return)."""
        pos, quat = self._state.robot.link_pose(self.laser_config.frame)
        return self._state.laser.scan(self.client, pos, quat, self.time)

    def camera_intrinsics(self, camera: str):
        """Intrinsics of a camera (for camera_info) without rendering."""
        return self.cameras[camera].intrinsics()

    def base_pose(self) -> tuple[float, float, float]:
        """True planar base pose (x, y, yaw) in the world frame."""
        return tuple(self._state.pose)

    def base_velocity(self) -> tuple[float, float]:
        """Achieved base speeds (linear m/s, angular rad/s) during the last physics step."""
        return self._state.velocity

    @property
    def base_blocked(self) -> bool:
        """Whether the last base motion was stopped by an obstacle."""
        return self._state.blocked

    def joint_states(self) -> JointStates:
        """Arm and finger joint names, positions, velocities, efforts."""
        return self._state.robot.joint_states()

    def link_poses(self) -> dict:
        """World poses {name: (position, quaternion xyzw)} of all robot links and frames."""
        return self._state.robot.link_poses()

    def frame_parents(self) -> dict:
        """{child: parent} for every robot link/frame below base_link (for the TF tree)."""
        return dict(self._state.robot.parents)

    def frame_transforms(self) -> list[tuple[str, str, tuple, tuple, bool]]:
        """(parent, child, translation, quaternion xyzw, static) for every robot frame.

        Transforms are of the child in its parent's frame; `static` is True for fixed joints
        (constant: publish them once on tf_static). The base itself (world -> base_link) is
        not included: that is odometry.
        """
        poses = self.link_poses()
        out = []
        for child, parent in self._state.robot.parents.items():
            ppos, pquat = poses[parent]
            inv_pos, inv_quat = p.invertTransform(ppos.tolist(), pquat.tolist())
            pos, quat = p.multiplyTransforms(inv_pos, inv_quat, poses[child][0].tolist(),
                                             poses[child][1].tolist())
            out.append((parent, child, tuple(pos), tuple(quat),
                        child in self._state.robot.fixed))
        return out

    def ground_truth(self) -> GroundTruth:
        """Evaluation-only truth: object categories, shapes, poses and rooms; robot room."""
        s = self._state
        objs = []
        for o in s.objects:
            pos, quat = p.getBasePositionAndOrientation(o.body, physicsClientId=self.client)
            objs.append(ObjectTruth(o.desc.name, o.desc.category, o.desc.family, dict(o.desc.shape),
                                    o.desc.rgba, tuple(pos), tuple(quat),
                                    s.world.room_of(pos[0], pos[1]), o.support))
        attached = None
        if s.robot.attached is not None:
            attached = next(o.desc.name for o in s.objects if o.body == s.robot.attached[0])
        looks = {room: look.look_id for room, look in s.world.looks.items()}
        return GroundTruth(self.time, tuple(objs), tuple(s.pose),
                           s.world.room_of(s.pose[0], s.pose[1]), looks, tuple(s.unplaced),
                           attached)

    def shortest_path_length(self, a, b) -> float:
        """Ground-truth shortest base path length (m) between world points a and b (x, y)."""
        return self._state.world.shortest_path_length(a, b, self.robot_config.footprint_radius)

    def object_body(self, name: str) -> int:
        """PyBullet body id of a named object (for tests and ground-truth tools)."""
        for o in self._state.objects:
            if o.desc.name == name:
                return o.body
        raise ValueError(f'no object named {name!r}')
