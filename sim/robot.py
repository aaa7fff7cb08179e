"""The mobile manipulator: a kinematic differential-drive base carrying a Franka Panda.

One URDF is generated at load time: a box base (``base_link`` at ground level under the base
centre, x forward, z up), a laser frame inside the base, a mast with the head camera, the Panda
(pybullet_data meshes) on top of the base, and a wrist camera on the hand. The base is the
fixed root of the multibody and is moved kinematically (teleported every physics step by the
facade after a collision check on the world's occupancy grid), so it cannot pass through walls
or furniture; the arm and the fingers are simulated dynamically with position control.

Grasping: fingers make real contacts; in addition, when the gripper is commanded to close and
both fingers touch the same object, a fixed constraint attaches the object to the hand
(attach-on-contact) until the gripper is opened. This keeps grasps stable while the base moves.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import pybullet as p

from embodied_aif.sim.objects import DATA

ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
FINGER_JOINTS = ('panda_finger_joint1', 'panda_finger_joint2')
# Stowed over the back of the base (out of the head camera's view); READY seeds the IK.
HOME = (2.8, 0.2, 0.0, -2.9, 0.0, 3.0, 0.785)
READY = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
EE_LINK = 'panda_grasptarget'


@dataclass(frozen=True)
class RobotConfig:
    """Geometry and limits of the robot (metres, radians)."""

    base_size: tuple[float, float, float] = (0.56, 0.42, 0.25)
    base_clearance: float = 0.05
    footprint_radius: float = 0.36
    arm_mount: tuple[float, float] = (0.12, 0.0)
    head_camera_xyz: tuple[float, float, float] = (-0.22, 0.0, 1.25)
    head_camera_pitch: float = 0.6
    laser_xyz: tuple[float, float, float] = (0.2, 0.0, 0.2)
    gripper_force: float = 40.0

    def __post_init__(self):
        if len(self.base_size) != 3 or min(self.base_size) <= 0:
            raise ValueError(f'base_size must be 3 positive lengths, got {self.base_size!r}')
        half_diag = math.hypot(self.base_size[0] / 2, self.base_size[1] / 2)
        if self.footprint_radius < half_diag:
            raise ValueError(f'footprint_radius {self.footprint_radius} must cover the base '
                             f'(half diagonal {half_diag:.3f})')
        if self.gripper_force <= 0:
            raise ValueError(f'gripper_force must be > 0, got {self.gripper_force}')

    @property
    def base_top(self) -> float:
        """Height of the base's top plate."""
        return self.base_clearance + self.base_size[2]


def _fixed(name, parent, child, xyz, rpy=(0, 0, 0)) -> str:
    return (f'<joint name="{name}" type="fixed"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="{xyz[0]} {xyz[1]} {xyz[2]}" rpy="{rpy[0]} {rpy[1]} {rpy[2]}"/></joint>')


def _frame(name) -> str:
    return (f'<link name="{name}"><inertial><mass value="0.001"/>'
            '<inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial></link>')


def robot_urdf(config: RobotConfig) -> str:
    """Return the URDF text of the whole robot (base, sensors frames, Panda, wrist camera)."""
    panda = (DATA / 'franka_panda' / 'panda.urdf').read_text()
    body = panda[panda.index('>', panda.index('<robot')) + 1:panda.rindex('</robot>')]
    # The low-poly collision meshes serve as visuals too: the visual meshes (about 1 MB each)
    # would roughly double the CPU renderer's time per frame.
    body = body.replace('package://meshes/visual/', 'package://meshes/collision/')
    body = body.replace('package://meshes/', str(DATA / 'franka_panda' / 'meshes') + '/')
    lx, ly, lz = config.base_size
    zc = config.base_clearance + lz / 2
    hx, hy, hz = config.head_camera_xyz
    top = config.base_top
    opt = (-math.pi / 2, 0.0, -math.pi / 2)
    parts = [
        '<?xml version="1.0"?><robot name="mobile_panda">',
        '<material name="base_grey"><color rgba="0.25 0.27 0.3 1"/></material>',
        '<link name="base_link"><inertial><mass value="50"/>'
        '<inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial>'
        f'<visual><origin xyz="0 0 {zc}"/><geometry><box size="{lx} {ly} {lz}"/></geometry>'
        '<material name="base_grey"/></visual>'
        f'<collision><origin xyz="0 0 {zc}"/><geometry><box size="{lx} {ly} {lz}"/></geometry>'
        '</collision></link>',
        _frame('laser_link'), _fixed('laser_joint', 'base_link', 'laser_link', config.laser_xyz),
        '<link name="head_mast"><inertial><mass value="0.001"/>'
        '<inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial>'
        f'<visual><origin xyz="0 0 {(hz - top) / 2}"/><geometry><cylinder radius="0.025" '
        f'length="{hz - top}"/></geometry><material name="base_grey"/></visual></link>',
        _fixed('head_mast_joint', 'base_link', 'head_mast', (hx, hy, top)),
        '<link name="head_camera_link"><inertial><mass value="0.001"/>'
        '<inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial>'
        '<visual><geometry><box size="0.04 0.12 0.04"/></geometry>'
        '<material name="base_grey"/></visual></link>',
        _fixed('head_camera_joint', 'base_link', 'head_camera_link', (hx, hy, hz),
               (0.0, config.head_camera_pitch, 0.0)),
        _frame('head_camera_optical_frame'),
        _fixed('head_camera_optical_joint', 'head_camera_link', 'head_camera_optical_frame',
               (0, 0, 0), opt),
        body,
        _fixed('arm_mount_joint', 'base_link', 'panda_link0', (*config.arm_mount, top)),
        _frame('wrist_camera_link'),
        _fixed('wrist_camera_joint', 'panda_hand', 'wrist_camera_link', (0.06, 0.0, 0.03),
               (0.0, -math.pi / 2, 0.0)),
        _frame('wrist_camera_optical_frame'),
        _fixed('wrist_camera_optical_joint', 'wrist_camera_link', 'wrist_camera_optical_frame',
               (0, 0, 0), opt),
        '</robot>',
    ]
    return '\n'.join(parts)


@dataclass(frozen=True)
class JointStates:
    """Names, positions, velocities and efforts of the robot's movable joints."""

    names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray


class Robot:
    """The robot's multibody in one physics client: poses, joints, arm and gripper commands."""

    def __init__(self, client: int, config: RobotConfig, pose=(0.0, 0.0, 0.0)):
        self.client = client
        self.config = config
        fd, path = tempfile.mkstemp(suffix='.urdf', prefix='mobile_panda_')
        try:
            with os.fdopen(fd, 'w') as handle:
                handle.write(robot_urdf(config))
            self.body = p.loadURDF(path, useFixedBase=True, physicsClientId=client,
                                   flags=p.URDF_USE_INERTIA_FROM_FILE)
        finally:
            os.unlink(path)
        self.links = {'base_link': -1}
        self.parents = {}
        self.fixed = set()  # links attached to their parent by a fixed joint
        self.joints = {}
        for j in range(p.getNumJoints(self.body, physicsClientId=client)):
            info = p.getJointInfo(self.body, j, physicsClientId=client)
            child = info[12].decode()
            self.links[child] = j
            self.joints[info[1].decode()] = j
            parent_index = info[16]
            self.parents[child] = next(n for n, k in self.links.items() if k == parent_index)
            if info[2] == p.JOINT_FIXED:
                self.fixed.add(child)
        self.arm = [self.joints[n] for n in ARM_JOINTS]
        self.fingers = [self.joints[n] for n in FINGER_JOINTS]
        self.movable = self.arm + self.fingers
        self.names = ARM_JOINTS + FINGER_JOINTS
        info = [p.getJointInfo(self.body, j, physicsClientId=client) for j in self.arm]
        self.lower = np.array([i[8] for i in info])
        self.upper = np.array([i[9] for i in info])
        self.ee = self.links[EE_LINK]
        self._sent = {}  # last motor targets sent (PyBullet keeps them until changed)
        self.attached = None  # (object body, constraint id)
        self._held_half = 0.0  # finger position where they met the attached object
        self.set_base_pose(*pose)
        for j, q in zip(self.arm, HOME):
            p.resetJointState(self.body, j, q, physicsClientId=client)
        for j in self.fingers:
            p.resetJointState(self.body, j, 0.04, physicsClientId=client)
        self.command_arm(np.array(HOME))
        self.command_gripper(0.08)

    def set_base_pose(self, x: float, y: float, yaw: float) -> None:
        """Teleport the base (kinematic) to planar pose (x, y, yaw)."""
        p.resetBasePositionAndOrientation(self.body, (x, y, 0.0),
                                          p.getQuaternionFromEuler((0.0, 0.0, yaw)),
                                          physicsClientId=self.client)

    def command_arm(self, q: np.ndarray) -> None:
        """Position-control targets for the 7 arm joints (sent only when they change)."""
        target = tuple(float(v) for v in q)
        if target == self._sent.get('arm'):
            return
        p.setJointMotorControlArray(self.body, self.arm, p.POSITION_CONTROL,
                                    targetPositions=target, forces=ARM_FORCES,
                                    positionGains=[0.05] * 7, physicsClientId=self.client)
        self._sent['arm'] = target

    def command_gripper(self, width: float) -> None:
        """Position-control target for the gripper opening (sum of both fingers, m).

        While an object is attached, the fingers close no further than where they met it:
        it blocks them, as a real object would (see update_grasp).
        """
        half = float(width) / 2
        if self.attached is not None:
            half = max(half, self._held_half)
        if half == self._sent.get('gripper'):
            return
        p.setJointMotorControlArray(self.body, self.fingers, p.POSITION_CONTROL,
                                    targetPositions=[half, half],
                                    forces=[self.config.gripper_force] * 2,
                                    physicsClientId=self.client)
        self._sent['gripper'] = half

    def joint_states(self) -> JointStates:
        """Current positions, velocities and applied efforts of arm and finger joints."""
        states = p.getJointStates(self.body, self.movable, physicsClientId=self.client)
        return JointStates(self.names, np.array([s[0] for s in states]),
                           np.array([s[1] for s in states]), np.array([s[3] for s in states]))

    def arm_positions(self) -> np.ndarray:
        """The 7 arm joint positions."""
        return self.joint_states().positions[:7]

    def gripper_width(self) -> float:
        """Current opening of the gripper (m)."""
        return float(self.joint_states().positions[7:].sum())

    def link_pose(self, name: str):
        """World pose (position, quaternion xyzw) of a named link or frame."""
        index = self.links[name]
        if index < 0:
            pos, quat = p.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
            return np.array(pos), np.array(quat)
        state = p.getLinkState(self.body, index, computeForwardKinematics=True,
                               physicsClientId=self.client)
        return np.array(state[4]), np.array(state[5])

    def link_poses(self) -> dict:
        """World poses of every named link and frame of the robot."""
        indices = [k for k in self.links.values() if k >= 0]
        states = p.getLinkStates(self.body, indices, computeForwardKinematics=True,
                                 physicsClientId=self.client)
        out = {'base_link': self.link_pose('base_link')}
        for name, state in zip((n for n, k in self.links.items() if k >= 0), states):
            out[name] = (np.array(state[4]), np.array(state[5]))
        return out

    def inverse_kinematics(self, position, orientation=None,
                           iterations: int = 3) -> tuple[np.ndarray, float]:
        """Arm joint positions putting the grasp target at a world position (and orientation).

        Returns (q, residual): the 7 joint positions and the distance (m) the grasp target
        would remain from the requested position (large when the pose is out of reach).

        Uses PyBullet's damped least squares started from the READY configuration, refined by
        solving again from the previous answer, on a scratch joint state that is restored
        afterwards (the simulation state is left untouched).
        """
        saved = p.getJointStates(self.body, self.movable, physicsClientId=self.client)
        ranges = list(self.upper - self.lower) + [0.04, 0.04]
        kwargs = {'lowerLimits': list(self.lower) + [0.0, 0.0],
                  'upperLimits': list(self.upper) + [0.04, 0.04], 'jointRanges': ranges,
                  'restPoses': list(READY) + [0.04, 0.04], 'maxNumIterations': 200,
                  'residualThreshold': 1e-5, 'physicsClientId': self.client}
        if orientation is not None:
            kwargs['targetOrientation'] = list(orientation)
        q = None
        try:
            for j, v in zip(self.arm, READY):
                p.resetJointState(self.body, j, v, physicsClientId=self.client)
            for _ in range(iterations):
                q = p.calculateInverseKinematics(self.body, self.ee, list(position), **kwargs)
                q = list(np.clip(q[:7], self.lower, self.upper)) + list(q[7:])
                for j, v in zip(self.movable, q):
                    p.resetJointState(self.body, j, v, physicsClientId=self.client)
            residual = float(np.linalg.norm(self.link_pose(EE_LINK)[0] - np.asarray(position)))
        finally:
            for j, s in zip(self.movable, saved):
                p.resetJointState(self.body, j, s[0], s[1], physicsClientId=self.client)
        return np.array(q[:7]), residual

    def update_grasp(self, closing: bool, candidates) -> None:
        """Attach an object touched by both fingers while closing; release when opening.

        The attachment is a fixed constraint to the hand. The fingers then hold where they
        met the object and stop colliding with it: fingers still squeezing an object that a
        constraint also holds had fought the constraint, and in a turn of the base pressed it
        out from between them (a bottle dropped during a carry with nothing touching it).
        """
        if not closing:
            self.release()
            return
        if self.attached is not None:
            return
        touching = []
        for finger in self.fingers:
            contacts = p.getContactPoints(bodyA=self.body, linkIndexA=finger,
                                          physicsClientId=self.client)
            touching.append({c[2] for c in contacts if c[2] in candidates})
        both = sorted(touching[0] & touching[1])
        if not both:
            return
        obj = both[0]
        hand = self.links['panda_hand']
        # Constraint frames are relative to the centres of mass (PyBullet's convention).
        hpos, hquat = p.getLinkState(self.body, hand, physicsClientId=self.client)[:2]
        opos, oquat = p.getBasePositionAndOrientation(obj, physicsClientId=self.client)
        inv_pos, inv_quat = p.invertTransform(hpos, hquat)
        rel_pos, rel_quat = p.multiplyTransforms(inv_pos, inv_quat, opos, oquat)
        cid = p.createConstraint(self.body, hand, obj, -1, p.JOINT_FIXED, (0, 0, 0), rel_pos,
                                 (0, 0, 0), rel_quat, (0, 0, 0, 1), physicsClientId=self.client)
        p.changeConstraint(cid, maxForce=200.0, physicsClientId=self.client)
        for finger in self.fingers:
            p.setCollisionFilterPair(self.body, obj, finger, -1, 0, physicsClientId=self.client)
        self._held_half = float(np.mean([s[0] for s in p.getJointStates(
            self.body, self.fingers, physicsClientId=self.client)]))
        self.attached = (obj, cid)
        self._sent.pop('gripper', None)  # re-send the target, now limited to the held width

    def release(self) -> None:
        """Remove the attach constraint, if any."""
        if self.attached is not None:
            obj, cid = self.attached
            p.removeConstraint(cid, physicsClientId=self.client)
            for finger in self.fingers:
                p.setCollisionFilterPair(self.body, obj, finger, -1, 1,
                                         physicsClientId=self.client)
            self.attached = None
            self._held_half = 0.0
            self._sent.pop('gripper', None)
