"""Simulation speed: real-time factor with and without cameras, render time per frame.

Every figure is given side by side with bare PyBullet on the same world: the same bodies
stepped with ``p.stepSimulation`` in a plain loop, and the same frames rendered with
``p.getCameraImage`` from precomputed matrices. `rtf_sensors` / `rtf_no_cameras` are the
sim_bridge node's (ROS 2 topics published, sensor topics subscribed); `facade_rtf_*` the
simulation facade's without ROS; `bridge_overhead*` the fraction of the bare rate the bridge
loses (from CPU time).

Run: ``embodied-aif bench sim [--quick] [--seeds A:B]``.
"""
from __future__ import annotations

import math
import statistics
import sys
import time

import numpy as np
import pybullet as p

from embodied_aif.bench._bridge import bridge_rtf
from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.sim.render_worker import RenderWorker, snapshot
from embodied_aif.sim.sensors import CameraConfig
from embodied_aif.sim.simulation import Rates, Simulation

DEFAULT_RATES = Rates()
NO_CAMERAS = Rates(head_camera_hz=0.0, wrist_camera_hz=0.0)
NO_SENSORS = Rates(head_camera_hz=0.0, wrist_camera_hz=0.0, scan_hz=0.0)
DRIVE = (0.3, 0.4)  # base command during the runs (m/s, rad/s): a slow arc, cameras move


def run_facade(sim: Simulation, seconds: float) -> dict:
    """Step the facade for `seconds` of sim time, serving every due sensor.

    Returns {'rtf': sim time / wall time, 'cpu_rtf': sim time / this process's CPU time}.
    """
    steps = int(round(seconds * sim.rates.physics_hz))
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(steps):
        if k % sim.rates.control_every == 0:
            sim.set_base_velocity(*DRIVE)
        for name in sim.step().due:
            if name == 'scan':
                sim.laser_scan()
            else:
                sim.render(name)
    return {'rtf': seconds / (time.perf_counter() - start),
            'cpu_rtf': seconds / (time.process_time() - cpu)}


def run_facade_render_worker(sim: Simulation, worker: RenderWorker, seconds: float) -> float:
    """Like run_facade, but cameras render in a RenderWorker process while physics goes on.

    At most two frames are in flight; the rest of the loop waits for the oldest.
    """
    steps = int(round(seconds * sim.rates.physics_hz))
    start = time.perf_counter()
    tickets = []
    for k in range(steps):
        if k % sim.rates.control_every == 0:
            sim.set_base_velocity(*DRIVE)
        for name in sim.step().due:
            if name == 'scan':
                sim.laser_scan()
                continue
            tickets.append(worker.submit(name, snapshot(sim)))
            if worker.pending > 2:
                worker.result(tickets[-3])
    worker.collect(block=True)
    return seconds / (time.perf_counter() - start)


def _camera_matrices(sim: Simulation, name: str):
    cfg = sim.cameras[name]
    pos, quat = sim.robot.link_pose(cfg.frame)
    rot = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
    view = p.computeViewMatrix(pos.tolist(), (pos + rot[:, 2]).tolist(), (-rot[:, 1]).tolist(),
                               physicsClientId=sim.client)
    proj = p.computeProjectionMatrixFOV(cfg.fov_deg, cfg.width / cfg.height, cfg.near, cfg.far,
                                        physicsClientId=sim.client)
    return cfg, view, proj


def run_bare(sim: Simulation, seconds: float, rates: Rates | None = None,
             drive: tuple[float, float] = DRIVE) -> dict:
    """Bare PyBullet on `sim`'s world: the same workload with no facade in between.

    Each physics step teleports the base along the same unicycle motion (no collision check)
    and calls stepSimulation; due cameras are rendered with getCameraImage from their link
    poses (getLinkState, computeViewMatrix) and the laser casts the same rays with
    rayTestBatch, at the given rates (the facade's when None); no image conversion, command
    handling or bookkeeping. Returns {'rtf', 'cpu_rtf', 'steps_per_s'} (cpu_rtf: sim time per
    CPU second of this process). Advances the simulation's state; reset it afterwards.
    """
    rates = rates or sim.rates
    client, body = sim.client, sim.robot.body
    physics_hz = rates.physics_hz
    dt = 1.0 / physics_hz
    steps = int(round(seconds * physics_hz))
    periods = {}
    for name, hz in (('head_camera', rates.head_camera_hz),
                     ('wrist_camera', rates.wrist_camera_hz), ('scan', rates.scan_hz)):
        if hz > 0:
            periods[name] = int(round(physics_hz / hz))
    cams = {}
    for name in ('head_camera', 'wrist_camera'):
        cfg = sim.cameras[name]
        proj = p.computeProjectionMatrixFOV(cfg.fov_deg, cfg.width / cfg.height, cfg.near,
                                            cfg.far, physicsClientId=client)
        cams[name] = (cfg, sim.robot.links[cfg.frame], proj)
    laser = sim._state.laser  # noqa: SLF001 - the same ray set as the facade casts
    laser_link = sim.robot.links['laser_link']
    x, y, yaw = sim.base_pose()
    v, w = drive
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(1, steps + 1):
        x, y, yaw = x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw), yaw + w * dt
        p.resetBasePositionAndOrientation(body, (x, y, 0.0), p.getQuaternionFromEuler((0, 0, yaw)),
                                          physicsClientId=client)
        p.stepSimulation(physicsClientId=client)
        for name, period in periods.items():
            if k % period:
                continue
            if name == 'scan':
                pos, quat = p.getLinkState(body, laser_link, computeForwardKinematics=True,
                                           physicsClientId=client)[4:6]
                rot = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
                dirs = laser.dirs @ rot.T
                p.rayTestBatch((pos + dirs * laser.start[:, None]).tolist(),
                               (pos + dirs * laser.config.range_max).tolist(),
                               physicsClientId=client)
                continue
            cfg, link, proj = cams[name]
            pos, quat = p.getLinkState(body, link, computeForwardKinematics=True,
                                       physicsClientId=client)[4:6]
            rot = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
            eye = np.array(pos)
            view = p.computeViewMatrix(pos, (eye + rot[:, 2]).tolist(), (-rot[:, 1]).tolist(),
                                       physicsClientId=client)
            p.getCameraImage(cfg.width, cfg.height, view, proj, shadow=0,
                             renderer=p.ER_TINY_RENDERER, flags=p.ER_NO_SEGMENTATION_MASK,
                             physicsClientId=client)
    wall = time.perf_counter() - start
    return {'rtf': seconds / wall, 'cpu_rtf': seconds / (time.process_time() - cpu),
            'steps_per_s': steps / wall}


def render_ms(sim: Simulation, width: int, height: int, frames: int) -> tuple[float, float]:
    """Mean ms per head-camera RGB-D frame at width x height: (facade, bare getCameraImage)."""
    sim.cameras['head_camera'] = CameraConfig('head_camera_optical_frame', width, height, 60.0)
    sim.render('head_camera')  # warm-up
    start = time.perf_counter()
    for _ in range(frames):
        sim.render('head_camera')
    facade = (time.perf_counter() - start) / frames * 1000
    cfg, view, proj = _camera_matrices(sim, 'head_camera')
    start = time.perf_counter()
    for _ in range(frames):
        p.getCameraImage(width, height, view, proj, shadow=0, renderer=p.ER_TINY_RENDERER,
                         flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=sim.client)
    bare = (time.perf_counter() - start) / frames * 1000
    return facade, bare


def measure(scenario: str, seed: int, seconds: float, frames: int, repeats: int) -> dict:
    """All figures for one scenario and seed.

    Facade and bare runs alternate `repeats` times from the same reset state and the best of
    each is kept: other processes on the machine only ever slow a run down, so the best run is
    the least disturbed one.
    """
    out = {}
    for key, rates in (('sensors', DEFAULT_RATES), ('no_cameras', NO_CAMERAS),
                       ('physics_only', NO_SENSORS)):
        with Simulation(scenario, seed=seed, rates=rates) as sim:
            out['bodies'] = p.getNumBodies(physicsClientId=sim.client)
            out['objects'] = len(sim.ground_truth().objects)
            facade, bare = [], []
            for _ in range(repeats):
                sim.reset(seed=seed)
                facade.append(run_facade(sim, seconds))
                sim.reset(seed=seed)
                bare.append(run_bare(sim, seconds))
            out[f'facade_rtf_{key}'] = max(f['rtf'] for f in facade)
            out[f'facade_cpu_rtf_{key}'] = max(f['cpu_rtf'] for f in facade)
            out[f'bare_cpu_rtf_{key}'] = max(b['cpu_rtf'] for b in bare)
            if key == 'sensors':
                worker = RenderWorker(scenario, seed, sim.cameras, sim.robot_config)
                try:
                    runs = []
                    for _ in range(repeats):
                        sim.reset(seed=seed)
                        runs.append(run_facade_render_worker(sim, worker, seconds))
                    out['facade_rtf_sensors_render_worker'] = max(runs)
                finally:
                    worker.close()
            out[f'bare_rtf_{key}'] = max(b['rtf'] for b in bare)
            if key in ('sensors', 'no_cameras'):
                bridge = [bridge_rtf(scenario, seed, seconds, cameras=key == 'sensors')
                          for _ in range(repeats)]
                out[f'rtf_{key}'] = max(b['rtf'] for b in bridge)
                out[f'bridge_cpu_rtf_{key}'] = max(b['cpu_rtf'] for b in bridge)
            if key == 'physics_only':
                out['bare_steps_per_s'] = max(b['steps_per_s'] for b in bare)
                for w, h in ((320, 240), (640, 480)):
                    pairs = [render_ms(sim, w, h, frames) for _ in range(repeats)]
                    out[f'render_ms_{w}x{h}'] = min(f for f, _ in pairs)
                    out[f'bare_render_ms_{w}x{h}'] = min(b for _, b in pairs)
    return out


def body(args) -> dict:
    """Run the benchmark over scenarios and seeds; average the figures."""
    scenarios = ['default'] if args.quick else ['default', 'grid3x3']
    seconds = 3.0 if args.quick else 15.0
    frames = 5 if args.quick else 20
    repeats = 2 if args.quick else 3
    seeds = list(args.seeds)[:1] if args.quick else list(args.seeds)
    per_scenario = {}
    for scen in scenarios:
        rows = []
        for seed in seeds:
            progress(f'bench sim: {scen} seed {seed} ({seconds:g} s of sim time per run)')
            rows.append(measure(scen, seed, seconds, frames, repeats))
        per_scenario[scen] = {k: round(statistics.fmean(r[k] for r in rows), 3) for k in rows[0]}
    main_figures = dict(per_scenario['default'])
    # Costs from CPU time, which other processes on the machine do not inflate.
    for key in ('sensors', 'no_cameras', 'physics_only'):
        main_figures[f'facade_cost_{key}'] = round(
            1.0 - main_figures[f'facade_cpu_rtf_{key}'] / main_figures[f'bare_cpu_rtf_{key}'], 3)
    for key in ('sensors', 'no_cameras'):
        main_figures[f'bridge_overhead_{key}'] = round(
            1.0 - main_figures[f'bridge_cpu_rtf_{key}'] / main_figures[f'bare_cpu_rtf_{key}'], 3)
    main_figures['bridge_overhead'] = main_figures['bridge_overhead_sensors']
    main_figures['per_scenario'] = per_scenario
    main_figures['sim_seconds'] = seconds
    main_figures['seeds'] = f'{seeds[0]}:{seeds[-1] + 1}'
    main_figures['rates'] = {'physics_hz': DEFAULT_RATES.physics_hz,
                             'control_hz': DEFAULT_RATES.control_hz,
                             'head_camera': f'320x240 @ {DEFAULT_RATES.head_camera_hz:g} Hz',
                             'wrist_camera': f'160x120 @ {DEFAULT_RATES.wrist_camera_hz:g} Hz',
                             'scan_hz': DEFAULT_RATES.scan_hz}
    main_figures['goals_met'] = {'rtf_sensors>=1': main_figures['rtf_sensors'] >= 1.0,
                                 'rtf_no_cameras>=4': main_figures['rtf_no_cameras'] >= 4.0}
    return main_figures


def main(argv=None) -> int:
    """Entry point of `embodied-aif bench sim`."""
    parser = make_parser('sim', __doc__.splitlines()[0], default_seeds='0:3')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
