"""Kinematics of the arm for a camera frame, from the robot's URDF (robot_description).

A private headless PyBullet client holds the robot with its base fixed at the origin, so poses
are in base_link. The tip may be any link or fixed frame of the URDF (e.g. the wrist camera's
optical frame), so no hand-to-camera offset is needed.

``solve`` is PyBullet's null-space IK with the arm's joint limits, seeded at the current
joints and drawn toward them (or a given rest pose): clipping an unconstrained solution to the
limits instead pins a joint at its limit and stalls the camera in a local minimum (0.2-0.3 m
short of a reachable viewpoint).
``forward`` gives the tip's pose for joint positions (the node's camera pose from the newest
joint states), ``link_points`` points along the arm's links, and ``table_clearance`` how high
such points are above a table (to keep the links off it).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pybullet as p
from scipy.spatial.transform import Rotation


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def table_clearance(points, centre, half, margin: float = 0.05) -> float:
    """Least height (m) above a table top of the points over it (+inf when none is over it).

    ``points`` (n, 3) and the table (top at ``centre[2]``, horizontal ``centre[:2]`` +-
    ``half`` widened by ``margin``) in one frame with z up.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    centre, half = np.asarray(centre, dtype=float), np.asarray(half, dtype=float)
    if centre.shape != (3,) or half.shape != (2,):
        raise ValueError(f'table centre must be (3,) and half extents (2,), got '
                         f'{centre.shape} and {half.shape}')
    over = np.all(np.abs(points[:, :2] - centre[:2]) <= half + margin, axis=1)
    if not np.any(over):
        return float('inf')
    return float(np.min(points[over, 2]) - centre[2])


class ArmIk:
    """Kinematics of ``arm_joints`` for link ``tip``, poses in the base frame."""

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
        # links moved by the arm: every link below the first arm joint's child in the tree
        parent = {j: info[16] for j, info in joints.values()}
        moved = set()
        for j in parent:
            k = j
            while k != -1 and k not in self.arm:
                k = parent[k]
            if k != -1:
                moved.add(j)
        self.moved_links = sorted(moved)

    def _set(self, q) -> None:
        for j, v in zip(self.arm, q):
            p.resetJointState(self.body, j, float(v), physicsClientId=self.client)

    def forward(self, q) -> np.ndarray:
        """Pose (4, 4) of the tip in the base frame for arm joint positions ``q`` (7,)."""
        self._set(q)
        state = p.getLinkState(self.body, self.tip, computeForwardKinematics=True,
                               physicsClientId=self.client)
        t = np.eye(4)
        t[:3, :3] = Rotation.from_quat(state[5]).as_matrix()
        t[:3, 3] = state[4]
        return t

    def link_points(self, q) -> np.ndarray:
        """Frames' origins and centres of mass (n, 3) of the arm-moved links, base frame."""
        self._set(q)
        pts = []
        for link in self.moved_links:
            state = p.getLinkState(self.body, link, computeForwardKinematics=True,
                                   physicsClientId=self.client)
            pts += [state[0], state[4]]
        return np.asarray(pts, dtype=float)

    def solve(self, t_base_tip: np.ndarray, q_seed, rest=None, rounds: int = 4
              ) -> tuple[np.ndarray, float, float]:
        """Joint positions (7,) within the limits for the pose; position (m), rotation (rad) misses.

        Seeded at ``q_seed`` (the current joints); the null-space rest pose is ``rest``
        (default ``q_seed``, so the solution stays near the current configuration). The misses
        are those of the solution's own forward kinematics.
        """
        t_base_tip = np.asarray(t_base_tip, dtype=float)
        q_seed = np.asarray(q_seed, dtype=float)
        if t_base_tip.shape != (4, 4) or not np.all(np.isfinite(t_base_tip)):
            raise ValueError(f'tip pose must be a finite (4, 4) matrix, got {t_base_tip.shape}')
        if q_seed.shape != (len(self.arm),) or not np.all(np.isfinite(q_seed)):
            raise ValueError(f'q_seed must be {len(self.arm)} finite joint positions, '
                             f'got shape {q_seed.shape}')
        rest = q_seed if rest is None else np.asarray(rest, dtype=float)
        if rest.shape != q_seed.shape or not np.all(np.isfinite(rest)):
            raise ValueError(f'rest must be {len(self.arm)} finite joint positions, '
                             f'got shape {rest.shape}')
        n = len(self.movable)  # PyBullet's IK works on every movable joint (fingers too)
        lower, upper, rest = [-10.0] * n, [10.0] * n, [0.0] * n
        for slot, lo, hi, q0 in zip(self.arm_slots, self.lower, self.upper, rest):
            lower[slot], upper[slot] = float(lo), float(hi)
            rest[slot] = float(np.clip(q0, lo, hi))
        ranges = [hi - lo for lo, hi in zip(lower, upper)]
        pos = t_base_tip[:3, 3].tolist()
        quat = Rotation.from_matrix(t_base_tip[:3, :3]).as_quat().tolist()
        q = np.clip(q_seed, self.lower, self.upper)
        self._set(q)
        for _ in range(rounds):
            sol = p.calculateInverseKinematics(
                self.body, self.tip, pos, quat, lowerLimits=lower, upperLimits=upper,
                jointRanges=ranges, restPoses=rest, maxNumIterations=200,
                residualThreshold=1e-5, physicsClientId=self.client)
            q = np.clip([sol[s] for s in self.arm_slots], self.lower, self.upper)
            self._set(q)
        best = self._miss(q, t_base_tip)
        # the null-space pull leaves a few mm: one plain round from there polishes it
        sol = p.calculateInverseKinematics(self.body, self.tip, pos, quat, maxNumIterations=200,
                                           residualThreshold=1e-6, physicsClientId=self.client)
        polished = np.clip([sol[s] for s in self.arm_slots], self.lower, self.upper)
        miss = self._miss(polished, t_base_tip)
        if miss[0] + 0.1 * miss[1] < best[0] + 0.1 * best[1]:
            q, best = polished, miss
        return np.asarray(q), best[0], best[1]

    def _miss(self, q, t_base_tip) -> tuple[float, float]:
        t = self.forward(q)
        return (float(np.linalg.norm(t[:3, 3] - t_base_tip[:3, 3])),
                _angle(t[:3, :3], t_base_tip[:3, :3]))

    def solve_clear(self, t_base_tip: np.ndarray, t_base_now: np.ndarray, q_seed, rest,
                    clearance, min_clearance: float, lift: float
                    ) -> tuple[np.ndarray, float, float, float]:
        """IK for a step of the tip that keeps the links clear (e.g. of a table).

        ``clearance(points)`` scores the link points (base frame) of a solution, higher is
        clearer. Tried in turn: the step drawn toward ``q_seed``, then toward ``rest`` (e.g.
        elbow up), then a straight lift by ``lift`` from the tip's current pose ``t_base_now``
        (from below a table top it must rise before it can go over), drawn toward either; the
        first solution within 2 cm of its own target whose clearance reaches ``min_clearance``
        is taken, else the clearest. Returns (q, position and rotation miss of the step's
        target, clearance).
        """
        up = np.array(t_base_tip, dtype=float)
        up[:3, 3] = np.asarray(t_base_now, dtype=float)[:3, 3] + [0.0, 0.0, lift]
        best = None
        for target, bias in ((t_base_tip, None), (t_base_tip, rest), (up, None), (up, rest)):
            q, dist, ang = self.solve(target, q_seed, rest=bias)
            clear = float(clearance(self.link_points(q)))
            miss = (dist, ang) if target is t_base_tip else self._miss(q, t_base_tip)
            if clear >= min_clearance and dist < 0.02:
                return q, *miss, clear
            if best is None or clear > best[3]:
                best = (q, *miss, clear)
        return best

    def close(self) -> None:
        """Disconnect the private client."""
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None
