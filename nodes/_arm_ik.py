"""Inverse kinematics of the arm for a camera frame, from the robot's URDF (robot_description).

A private headless PyBullet client holds the robot with its base fixed at the origin, so the
solution is for a pose in base_link. The target link may be any link or fixed frame of the
URDF (e.g. the wrist camera's optical frame), so no hand-to-camera offset is needed.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pybullet as p
from scipy.spatial.transform import Rotation


class ArmIk:
    """IK for ``arm_joints`` putting link ``tip`` at a pose in the base frame."""

    def __init__(self, urdf: str, arm_joints, tip: str):
        self.client = p.connect(p.DIRECT)
        fd, path = tempfile.mkstemp(suffix='.urdf', prefix='active_vision_ik_')
        try:
            with os.fdopen(fd, 'w') as handle:
                handle.write(urdf)
            self.body = p.loadURDF(path, useFixedBase=True, physicsClientId=self.client)
        except Exception:
            p.disconnect(self.client)
            raise
        finally:
            os.unlink(path)
        joints, links = {}, {}
        for j in range(p.getNumJoints(self.body, physicsClientId=self.client)):
            info = p.getJointInfo(self.body, j, physicsClientId=self.client)
            joints[info[1].decode()] = (j, info)
            links[info[12].decode()] = j
        missing = [n for n in arm_joints if n not in joints]
        if missing or tip not in links:
            p.disconnect(self.client)
            raise ValueError(f'robot_description lacks joints {missing} or link {tip!r}')
        self.movable = [j for j, info in joints.values() if info[2] != p.JOINT_FIXED]
        self.arm = [joints[n][0] for n in arm_joints]
        self.arm_slots = [self.movable.index(j) for j in self.arm]
        self.lower = np.array([joints[n][1][8] for n in arm_joints])
        self.upper = np.array([joints[n][1][9] for n in arm_joints])
        self.tip = links[tip]

    def solve(self, t_base_tip: np.ndarray, q_seed) -> tuple[np.ndarray, float, float]:
        """Joint positions (7,) for the pose; position (m) and rotation (rad) residuals."""
        for j, q in zip(self.arm, q_seed):
            p.resetJointState(self.body, j, float(q), physicsClientId=self.client)
        pos = t_base_tip[:3, 3].tolist()
        quat = Rotation.from_matrix(t_base_tip[:3, :3]).as_quat().tolist()
        q = None
        for _ in range(3):
            sol = p.calculateInverseKinematics(self.body, self.tip, pos, quat,
                                               maxNumIterations=200, residualThreshold=1e-5,
                                               physicsClientId=self.client)
            q = np.clip([sol[s] for s in self.arm_slots], self.lower, self.upper)
            for j, v in zip(self.arm, q):
                p.resetJointState(self.body, j, float(v), physicsClientId=self.client)
        state = p.getLinkState(self.body, self.tip, computeForwardKinematics=True,
                               physicsClientId=self.client)
        dist = float(np.linalg.norm(np.asarray(state[4]) - t_base_tip[:3, 3]))
        r = Rotation.from_quat(state[5]).as_matrix()
        cos = (np.trace(r.T @ t_base_tip[:3, :3]) - 1.0) / 2.0
        return np.asarray(q), dist, float(np.arccos(np.clip(cos, -1.0, 1.0)))

    def close(self) -> None:
        """Disconnect the private client."""
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None
