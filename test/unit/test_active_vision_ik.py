"""The active_vision node's arm kinematics: camera pose from joints, limit-aware IK steps."""
import numpy as np
import pytest

from embodied_aif.models.active_vision import bounded_step, pose_error
from embodied_aif.models.segmentation import look_at
from embodied_aif.nodes._arm_ik import ArmIk
from embodied_aif.nodes.active_vision import ARM_JOINTS, _forward_kinematics, _solve_ik
from embodied_aif.sim.robot import HOME, RobotConfig, robot_urdf


@pytest.fixture(scope='module')
def ik():
    solver = ArmIk(robot_urdf(RobotConfig()), ARM_JOINTS, 'wrist_camera_optical_frame')
    yield solver
    solver.close()


def test_forward_kinematics_and_ik_agree(ik):
    q = np.array(HOME) + np.array([0.1, -0.2, 0.1, 0.3, -0.1, -0.2, 0.1])
    t = _forward_kinematics(ik, q)
    assert np.allclose(t[:3, :3].T @ t[:3, :3], np.eye(3), atol=1e-6)
    sol, dist, ang = _solve_ik(ik, t, np.array(HOME))
    assert dist < 0.005 and ang < 0.01
    assert np.all(sol >= ik.lower) and np.all(sol <= ik.upper)
    # the reported residuals are those of the solution's own forward kinematics
    d, a = pose_error(_forward_kinematics(ik, sol), t)
    assert d == pytest.approx(dist, abs=1e-9) and a == pytest.approx(ang, abs=1e-9)


def test_bounded_steps_reach_a_reachable_viewpoint(ik):
    # the goal viewpoint of the node test (base frame): the mug on the table seen from the
    # front-right. Clipping an unconstrained IK solution to the joint limits pinned joint 1 at
    # its limit 0.27 m short of it for ten steps (still 0.26 m away after 24); the limit-aware
    # IK walks straight there.
    target = look_at([0.5, -0.15, 0.94], [0.8087, -0.0027, 0.65])
    q = np.array(HOME)
    cam = _forward_kinematics(ik, q)
    start = pose_error(cam, target)[0]
    errors = []
    for _ in range(24):   # 19 bounded steps cover the distance
        q, dist, ang = _solve_ik(ik, bounded_step(cam, target, 0.05, 0.15), q)
        assert np.all(q >= ik.lower) and np.all(q <= ik.upper)
        cam = _forward_kinematics(ik, q)
        errors.append(pose_error(cam, target))
    assert start > 0.8
    final = errors[-1]
    assert final[0] < 0.02 and final[1] < 0.05, final
    # no step undoes the progress of earlier ones by more than a step's length
    dists = [e[0] for e in errors]
    assert all(b < a + 0.05 for a, b in zip(dists, dists[1:]))
