"""Render in a second process: a mirror of the world in its own DIRECT client.

Rendering dominates the cost of a simulated second (PyBullet's TinyRenderer runs on the CPU in
the calling thread). :class:`RenderWorker` builds the same scenario with the same seed in a
child process (the build is deterministic, so body ids match), and for each request copies the
poses that can change (robot base and joints, objects) into it and renders there, while the
parent keeps stepping physics. Frames are identical to in-process renders of the same state.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
from dataclasses import dataclass

import pybullet as p

from embodied_aif.sim.sensors import CameraFrame, render_camera


@dataclass(frozen=True)
class Snapshot:
    """The state a render needs: time, base pose, joint positions, object poses."""

    stamp: float
    base: tuple
    joints: tuple
    objects: tuple


def _serve(conn, scenario, seed, cameras, robot_config) -> None:
    """Child process: keep a mirror simulation and answer render requests until told to stop."""
    from embodied_aif.sim.simulation import Rates, Simulation

    quiet = Rates(head_camera_hz=0, wrist_camera_hz=0, scan_hz=0)
    sim = Simulation(scenario, seed=seed, rates=quiet, cameras=cameras, robot=robot_config,
                     settle_s=0.0)
    conn.send(('ready',))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            break
        if message[0] == 'stop':
            break
        if message[0] == 'reset':
            sim.reset(message[1], message[2])
            conn.send(('ready',))
            continue
        _, ticket, camera, snap = message
        robot = sim.robot
        robot.set_base_pose(*snap.base)
        for j, q in zip(robot.movable, snap.joints):
            p.resetJointState(robot.body, j, q, physicsClientId=sim.client)
        for body, pos, quat in snap.objects:
            p.resetBasePositionAndOrientation(body, pos, quat, physicsClientId=sim.client)
        cfg = sim.cameras[camera]
        pos, quat = robot.link_pose(cfg.frame)
        frame = render_camera(cfg, sim.client, pos, quat, snap.stamp)
        conn.send(('frame', ticket, frame.rgb, frame.depth))
    sim.close()


class RenderWorker:
    """A child process rendering camera frames from snapshots of the parent's simulation."""

    def __init__(self, scenario, seed: int, cameras: dict, robot_config):
        ctx = mp.get_context('spawn')
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, scenario, seed, cameras,
                                                       robot_config), daemon=True)
        self._proc.start()
        self._cameras = cameras
        self._pending = {}
        self._ready = {}
        self._next = 0
        self._expect('ready')

    def _expect(self, kind: str, timeout: float = 120.0):
        if not self._conn.poll(timeout):
            self.close()
            raise RuntimeError(f'render worker gave no {kind!r} answer within {timeout} s')
        message = self._conn.recv()
        if message[0] != kind:
            raise RuntimeError(f'render worker answered {message[0]!r}, expected {kind!r}')
        return message

    def reset(self, scenario, seed: int) -> None:
        """Rebuild the mirror for a new scenario/seed; drop pending frames."""
        self.collect(block=True)
        self._ready.clear()
        self._conn.send(('reset', scenario, seed))
        self._expect('ready')

    def submit(self, camera: str, snapshot: Snapshot) -> int:
        """Queue a render of `camera` for `snapshot`; return a ticket."""
        ticket = self._next
        self._next += 1
        self._pending[ticket] = (camera, snapshot)
        self._conn.send(('render', ticket, camera, snapshot))
        return ticket

    @property
    def pending(self) -> int:
        """Number of submitted frames not yet collected from the pipe."""
        return len(self._pending)

    def collect(self, block: bool = False) -> None:
        """Move finished frames from the pipe to the ready set (all of them if block)."""
        while self._pending and (block or self._conn.poll()):
            _, ticket, rgb, depth = self._conn.recv()
            camera, snap = self._pending.pop(ticket)
            cfg = self._cameras[camera]
            self._ready[ticket] = CameraFrame(rgb, depth, cfg.intrinsics(), snap.stamp,
                                              cfg.frame)

    def done(self, ticket: int) -> bool:
        """Whether the frame of a ticket has been collected (see :meth:`collect`)."""
        return ticket in self._ready

    def result(self, ticket: int) -> CameraFrame:
        """Wait for and return the frame of a ticket."""
        while ticket not in self._ready:
            if ticket not in self._pending:
                raise KeyError(f'unknown render ticket {ticket}')
            _, got, rgb, depth = self._conn.recv()
            camera, snap = self._pending.pop(got)
            cfg = self._cameras[camera]
            self._ready[got] = CameraFrame(rgb, depth, cfg.intrinsics(), snap.stamp, cfg.frame)
        return self._ready.pop(ticket)

    def close(self) -> None:
        """Stop the child process."""
        if self._proc.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(('stop',))
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()


def snapshot(sim) -> Snapshot:
    """Capture what a render of `sim` needs (cheap: a few PyBullet state queries)."""
    state = sim._state  # noqa: SLF001 - the facade's own helper
    joints = p.getJointStates(state.robot.body, state.robot.movable, physicsClientId=sim.client)
    objects = tuple((o.body, *p.getBasePositionAndOrientation(o.body,
                                                             physicsClientId=sim.client))
                    for o in state.objects)
    return Snapshot(sim.time, tuple(state.pose), tuple(s[0] for s in joints), objects)

