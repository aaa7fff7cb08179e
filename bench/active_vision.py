"""Benchmark: the "move-to" task of active vision (SEEDS.md section 2) in this simulator.

Scene: the tabletop scenario reduced to its table (about 1.1 m x 0.7 m) with 1-5 objects of
distinct, randomly chosen categories at random places and headings. Goal: an RGB-D image
(80x60, the wrist camera's 70 degree field of view) of one target object, rendered from a
target viewpoint that looks at the object from 0.3-0.45 m, 0.6-1.1 rad above the horizontal, at
a random azimuth (the object must be unoccluded). The agent starts at a fixed viewpoint above
the table's near edge and moves its camera in bounded steps (5 cm, 0.15 rad); success = the
camera within 7.5 cm and 0.5 rad of the target pose within 350 steps.

The camera is a free-floating wrist-camera model (same optics as the wrist camera, rendered by
the simulator from any pose), not moved through the arm: the Panda on the robot at the table's
near side reaches neither the far half of the table nor views of it from beyond, so arm IK
would make most targets infeasible for every agent alike. The active_vision node does command
the arm (IK on the wrist camera frame).

Agents (all get the goal image only, never its pose):
- ``aif``: perception (segmentation -> detections -> scene beliefs, a surface map of what it
  has seen, a coverage map of the table), the goal image read by
  ``models.active_vision.interpret_goal_image`` and explained by ``localise_goal`` (re-run
  every few steps as the beliefs grow), one EFE step per frame with the pragmatic term (the
  localised goal view) and the epistemic terms (object position / category info gain and
  coverage of the unexplored table);
- ``no_epistemic``: the same agent with the epistemic terms off;
- ``random``: bounded steps toward random look-at viewpoints over the table.
An agent whose camera has not moved for ``STALL_STEPS`` steps (and whose beliefs therefore
cannot change any more) ends its episode early, as a failure.

Figures: success rates, mean final azimuth / elevation / range errors (camera relative to the
target object, against the target viewpoint), steps to success, ``perception_ms``
(segmentation + detections + belief update per 160x120 RGB-D frame with 5 objects in view,
wall clock, and ``perception_cpu_ms`` the same in CPU time, which a loaded machine does not
inflate; ``perception_ms_80x60`` at the benchmark's resolution), both including the object
model's encoding of every cluster (q(category) and q(shape), fused as in `perception`), and
``category_accuracy`` of the fused beliefs (q(category) of the shipped object model per view,
tempered, times the likelihood of the cluster's measured height, and fused as in
`perception`; in the ``aif`` agent's final beliefs, each true object once, by the track with
the most detections among those within 6 cm of it), ``duplicate_track_rate`` (the fraction of
those objects that had more than one track; ``objects_tracked`` counts them),
``category_accuracy_view`` (the same evidence of single views, per cluster),
``category_confusion`` (true category -> counts of the fused beliefs' most probable ones) and
``episode_s_<agent>`` (mean wall time of one episode).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pybullet as p
from scipy.spatial.transform import Rotation

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.active_vision import (
    CandidateConfig,
    Coverage,
    EfeConfig,
    GoalImage,
    LocaliseConfig,
    SurfaceMap,
    bounded_step,
    interpret_goal_image,
    localise_goal,
    pose_error,
    step,
    view_agreement,
)
from embodied_aif.models.object_model import ObjectClassifier
from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    SensorModel,
    detection_from_cluster,
    empty_scene,
    update,
)
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    backproject,
    look_at,
    segment_frame,
)
from embodied_aif.sim.scenario import FurnitureItem, FurnitureSpec, load_scenario
from embodied_aif.sim.sensors import CameraConfig, render_camera
from embodied_aif.sim.simulation import Simulation

MAX_STEPS = 350
VERIFY_M, VERIFY_RAD = 0.02, 0.1   # at the hypothesised goal pose: compare views
MIN_AGREEMENT = 0.5
SUCCESS_M = 0.075
SUCCESS_RAD = 0.5
STALL_STEPS = 12
LOCALISE_EVERY = 5
N_TARGETS = 5
OBJECT_COUNTS = (1, 2, 3, 4, 5)
CATEGORIES = ('can', 'box', 'mug', 'bottle', 'bowl', 'duck', 'lego', 'jenga')
AGENTS = ('aif', 'no_epistemic', 'random')
BENCH_CAMERA = CameraConfig('wrist_camera_optical_frame', 80, 60, 70.0, near=0.02, far=3.0)
NATIVE_CAMERA = CameraConfig('wrist_camera_optical_frame', 160, 120, 70.0, near=0.02, far=3.0)
SEGMENTATION = SegmentationConfig(max_depth=2.0, voxel_size=0.01, min_cluster_voxels=5,
                                  plane_iterations=96, max_planes=3)


def _intrinsics(config: CameraConfig) -> CameraIntrinsics:
    intr = config.intrinsics()
    return CameraIntrinsics.from_k(intr.k, intr.width, intr.height)


def _scenario(n_objects: int, seed: int):
    """The tabletop scenario with only its table and ``n_objects`` random categories."""
    base = load_scenario('tabletop')
    rng = np.random.default_rng(10_000 + 97 * seed + n_objects)
    cats = tuple(str(c) for c in rng.choice(CATEGORIES, size=n_objects, replace=False))
    table = FurnitureItem('table', (0, 0), 0.7, 0.0, 90.0)
    return dataclasses.replace(
        base, name=f'tabletop_{n_objects}', furniture=FurnitureSpec(per_room={}, fixed=(table,)),
        objects=dataclasses.replace(base.objects, categories=cats, instances_per_category=1,
                                    surfaces=('table',)))


def _render(sim: Simulation, config: CameraConfig, t_map_cam: np.ndarray):
    quat = Rotation.from_matrix(t_map_cam[:3, :3]).as_quat()
    return render_camera(config, sim.client, t_map_cam[:3, 3], quat)


@dataclasses.dataclass
class Workspace:
    """What every agent is told about the task: the table region and the start viewpoint."""

    centre: np.ndarray
    half: np.ndarray
    height: float
    start: np.ndarray
    candidates: CandidateConfig


def _workspace(sim: Simulation) -> Workspace:
    table = next(f for f in sim.world.furniture if f.kind == 'table')
    centre = np.array([table.center[0], table.center[1], table.size[2]])
    half = np.asarray(table.half, dtype=float)
    start = look_at(centre + [-half[0] - 0.15, 0.0, 0.5], centre)
    radius = float(max(half))
    candidates = CandidateConfig(
        n_around_objects=768, n_around_goal=192, n_local=192, n_explore=384,
        distance_range=(0.25, 0.6), elevation_range=(0.45, 1.35),
        workspace_centre=tuple(centre), workspace_radius=radius,
        position_min=(centre[0] - half[0] - 0.5, centre[1] - half[1] - 0.5, centre[2] + 0.08),
        position_max=(centre[0] + half[0] + 0.5, centre[1] + half[1] + 0.5, centre[2] + 0.9))
    return Workspace(centre, half, float(centre[2]), start, candidates)


def _target(sim: Simulation, truth, index: int, rng: np.random.Generator):
    """A target viewpoint looking at object ``index`` unoccluded; None if none found."""
    obj = truth.objects[index]
    centre = np.asarray(obj.position, dtype=float)
    body = sim.object_body(obj.name)
    for _ in range(50):
        r, el = rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.1)
        az = rng.uniform(-np.pi, np.pi)
        eye = centre + r * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                     np.sin(el)])
        hit = p.rayTest(eye.tolist(), centre.tolist(), physicsClientId=sim.client)[0]
        if hit[0] == body:
            return look_at(eye, centre), centre
    return None, centre


def _spherical(t_map_cam: np.ndarray, centre: np.ndarray) -> np.ndarray:
    rel = t_map_cam[:3, 3] - centre
    r = np.linalg.norm(rel)
    return np.array([np.arctan2(rel[1], rel[0]), np.arcsin(rel[2] / max(r, 1e-9)), r])


@functools.lru_cache(maxsize=1)
def _classifier() -> ObjectClassifier:
    """The shipped object model, loaded once per process, for the benchmark's categories."""
    return ObjectClassifier.from_file('', CATEGORIES)


class Perceiver:
    """The agent's perception: frames -> scene beliefs, surface map, coverage, support height."""

    def __init__(self, ws: Workspace, intr: CameraIntrinsics, seed: int):
        self.sensor = SensorModel(intr, min_range=SEGMENTATION.min_depth, max_range=2.0)
        self.intr = intr
        self.rng = np.random.default_rng(seed)
        self.scene = empty_scene(CATEGORIES)
        lo = ws.centre - [ws.half[0] + 0.6, ws.half[1] + 0.6, ws.height + 0.05]
        hi = ws.centre + [ws.half[0] + 0.6, ws.half[1] + 0.6, 0.5]
        self.smap = SurfaceMap.empty(lo, hi, 0.02)
        self.coverage = Coverage.grid(ws.centre[:2], ws.half, ws.height + 0.03, 0.05)
        self.support_z = None
        self.stamp = 0.0
        self.times_ms: list[float] = []
        self.cpu_ms: list[float] = []
        self.views: list[tuple[np.ndarray, int]] = []  # (xy, most likely category) per cluster

    def observe(self, frame, t_map_cam: np.ndarray) -> None:
        """Fuse one rendered frame taken from ``t_map_cam`` (kept as ``last_frame``)."""
        self.last_frame = frame
        start, cpu = time.perf_counter(), time.process_time()
        self.stamp += 0.2
        try:
            seg = segment_frame(frame.depth, frame.rgb, self.intr, t_map_cam, SEGMENTATION,
                                self.rng)
        except ValueError:
            return
        seen = _classifier().observe(frame.rgb, frame.depth, self.intr, t_map_cam,
                                     seg.clusters) if seg.clusters else None
        self.views.extend((c.center[:2].copy(), int(np.argmax(lik)))
                          for c, lik in zip(seg.clusters, seen['likelihoods'] if seen else ()))
        dets = [detection_from_cluster(c, self.sensor, t_map_cam, seen['likelihoods'][i],
                                       shape_mean=seen['shape_mean'][i],
                                       shape_var=seen['shape_var'][i])
                for i, c in enumerate(seg.clusters)]
        self.scene, _ = update(self.scene, dets, t_map_cam, self.sensor, self.stamp,
                               BeliefConfig(), depth=frame.depth)
        self.times_ms.append(1e3 * (time.perf_counter() - start))
        self.cpu_ms.append(1e3 * (time.process_time() - cpu))
        for plane in seg.planes:
            if abs(plane[2]) > 0.95:
                z = -plane[3] / plane[2]
                if z > 0.3 and (self.support_z is None or z > self.support_z - 0.05):
                    self.support_z = float(z)
        pts, pix = backproject(frame.depth, self.intr, t_map_cam, 0.05, 2.0)
        self.smap.add(pts, frame.rgb.reshape(-1, 3)[pix] / 255.0, eye=t_map_cam[:3, 3])
        self.coverage = self.coverage.observe(t_map_cam, self.sensor, frame.depth)


def _run_agent(agent: str, sim: Simulation, ws: Workspace, goal: GoalImage,
               target: np.ndarray, seed: int, localise: LocaliseConfig | None = None) -> dict:
    """One episode; returns success, steps, final pose errors and timing."""
    rng = np.random.default_rng(seed)
    cam = ws.start.copy()
    cc = ws.candidates
    perceiver = Perceiver(ws, _intrinsics(BENCH_CAMERA), seed) if agent != 'random' else None
    efe_cfg = EfeConfig(use_epistemic=(agent == 'aif'), w_coverage=0.5)
    view = None
    if perceiver is not None:
        try:
            view = interpret_goal_image(goal, SEGMENTATION, np.random.default_rng(seed + 1))
        except ValueError:
            view = None
    vgoal, info, last_localised, n_objects_seen = None, {}, -LOCALISE_EVERY, -1
    rejected: list[tuple[str, float]] = []
    wander = None
    still, moved = 0, True
    success, steps = False, 0
    for steps in range(1, MAX_STEPS + 1):
        if agent == 'random':
            if wander is None or pose_error(cam, wander)[0] < 1e-3:
                wander = step_random(ws, rng)
            nxt = bounded_step(cam, wander, cc.max_step_m, cc.max_step_rad)
        else:
            relocalise = False
            if moved:
                perceiver.observe(_render(sim, BENCH_CAMERA, cam), cam)
                if vgoal is not None and info.get('t_map_goal') is not None:
                    d, a = pose_error(cam, info['t_map_goal'])
                    if d < VERIFY_M and a < VERIFY_RAD and view_agreement(
                            goal, perceiver.last_frame.depth,
                            perceiver.last_frame.rgb) < MIN_AGREEMENT:
                        rejected.append((info['object_id'], info['heading']))
                        relocalise = True
            n_obj = len(perceiver.scene.objects)
            if view is not None and perceiver.support_z is not None and (relocalise or (
                    moved and (steps - last_localised >= LOCALISE_EVERY
                               or n_obj != n_objects_seen))):
                vgoal, info = localise_goal(view, perceiver.scene, perceiver.smap,
                                            perceiver.support_z, localise or LocaliseConfig(),
                                            rejected)
                last_localised, n_objects_seen = steps, n_obj
            if vgoal is not None and perceiver.scene.get(vgoal.object_id) is None:
                vgoal = None
            nxt, _ = step(perceiver.scene, cam, perceiver.sensor, vgoal, rng, efe_cfg, cc,
                          coverage=perceiver.coverage if efe_cfg.use_epistemic else None)
        dist, ang = pose_error(nxt, cam)
        moved = dist > 1e-4 or ang > 1e-3
        still = 0 if moved else still + 1
        cam = nxt
        err = pose_error(cam, target)
        if err[0] < SUCCESS_M and err[1] < SUCCESS_RAD:
            success = True
            break
        if still >= STALL_STEPS:
            break
    return {'success': success, 'steps': steps, 'cam': cam,
            'perception_ms': list(perceiver.times_ms) if perceiver else [],
            'scene': perceiver.scene if perceiver else None,
            'views': perceiver.views if perceiver else []}


def step_random(ws: Workspace, rng: np.random.Generator) -> np.ndarray:
    """A random look-at viewpoint over the table (the random agent's next waypoint)."""
    cc = ws.candidates
    aim = ws.centre + rng.uniform(-1.0, 1.0, 3) * [ws.half[0], ws.half[1], 0.0]
    d, el, az = rng.uniform(*cc.distance_range), rng.uniform(*cc.elevation_range), \
        rng.uniform(-np.pi, np.pi)
    eye = aim + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at(np.clip(eye, cc.position_min, cc.position_max), aim)


def _nearest(xy, truth) -> int | None:
    """Index of the true object within 6 cm (horizontally) of ``xy``, or None."""
    d = [np.linalg.norm(np.asarray(xy[:2]) - np.asarray(o.position[:2])) for o in truth.objects]
    k = int(np.argmin(d))
    return k if d[k] < 0.06 else None


def _category_pairs(scene, views, truth) -> tuple[list, list, int]:
    """(true, believed) category pairs of the fused beliefs and of single-view clusters.

    Each true object counts once in the fused pairs: of the tracks within 6 cm of it (each
    track given to its nearest true object), the one with the most detections (then the
    nearest). The third value is the number of true objects that had more than one track.
    """
    fused, single = [], []
    tracks: dict[int, list] = {}
    for obj in scene.objects if scene is not None else ():
        k = _nearest(obj.mean, truth)
        if k is not None:
            dist = float(np.linalg.norm(np.asarray(obj.mean[:2])
                                        - np.asarray(truth.objects[k].position[:2])))
            tracks.setdefault(k, []).append((-obj.n_detections, dist, obj))
    for k in sorted(tracks):
        best = min(tracks[k], key=lambda t: t[:2])[2]
        fused.append((truth.objects[k].category,
                      CATEGORIES[int(np.argmax(best.category_probs))]))
    duplicated = sum(len(v) > 1 for v in tracks.values())
    for xy, c in views:
        k = _nearest(xy, truth)
        if k is not None:
            single.append((truth.objects[k].category, CATEGORIES[c]))
    return fused, single, duplicated


def _scene_job(job: tuple[int, int, tuple[str, ...], float]) -> list[dict]:
    """All targets and agents of one scene (n objects, seed, agents, min_match)."""
    n_objects, seed, agents, min_match = job
    localise = LocaliseConfig(min_match=min_match)
    scen = _scenario(n_objects, seed)
    out = []
    with Simulation(scen, seed=seed, settle_s=0.3) as sim:
        truth = sim.ground_truth()
        ws = _workspace(sim)
        for t in range(N_TARGETS):
            index = t % len(truth.objects)
            rng = np.random.default_rng(1_000_003 * seed + 1009 * n_objects + t)
            target, centre = _target(sim, truth, index, rng)
            if target is None:
                continue
            frame = _render(sim, BENCH_CAMERA, target)
            goal = GoalImage(frame.rgb, frame.depth, _intrinsics(BENCH_CAMERA))
            want = _spherical(target, centre)
            for agent in agents:
                start = time.perf_counter()
                res = _run_agent(agent, sim, ws, goal, target, seed * 100 + t, localise)
                wall_s = time.perf_counter() - start
                got = _spherical(res['cam'], centre)
                fused, single, duplicated = _category_pairs(res['scene'], res['views'], truth)
                out.append({'agent': agent, 'n_objects': n_objects, 'seed': seed, 'target': t,
                            'success': res['success'], 'steps': res['steps'],
                            'azimuth_error': float(abs(np.angle(np.exp(1j * (got[0]
                                                                              - want[0]))))),
                            'elevation_error': float(abs(got[1] - want[1])),
                            'range_error': float(abs(got[2] - want[2])),
                            'perception_ms': res['perception_ms'], 'wall_s': wall_s,
                            'category_pairs': fused, 'view_category_pairs': single,
                            'duplicated_objects': duplicated})
    return out


def _perception_latency(repeats: int) -> tuple[float, float]:
    """Median wall and CPU ms of segmentation + detections + update, 160x120, 5 objects."""
    scen = _scenario(5, 0)
    with Simulation(scen, seed=0, settle_s=0.3) as sim:
        ws = _workspace(sim)
        cam = look_at(ws.centre + [-ws.half[0] - 0.1, 0.0, 0.7], ws.centre)
        frame = _render(sim, NATIVE_CAMERA, cam)
        perceiver = Perceiver(ws, _intrinsics(NATIVE_CAMERA), 0)
        for _ in range(repeats):
            perceiver.observe(frame, cam)
        n_seen = len(perceiver.scene.objects)
    progress(f'perception latency: {n_seen} objects tracked from the 160x120 frame')
    if not perceiver.times_ms:
        return float('nan'), float('nan')
    return (float(statistics.median(perceiver.times_ms)),
            float(statistics.median(perceiver.cpu_ms)))


def _summarise(rows: list[dict]) -> dict:
    out = {}
    for agent in AGENTS:
        mine = [r for r in rows if r['agent'] == agent]
        if not mine:
            continue
        ok = [r for r in mine if r['success']]
        out[f'success_{agent}'] = round(len(ok) / len(mine), 4)
        for key in ('azimuth_error', 'elevation_error', 'range_error'):
            out[f'{key}_{agent}'] = round(float(np.mean([r[key] for r in mine])), 4)
        out[f'steps_to_success_{agent}'] = (round(float(np.mean([r['steps'] for r in ok])), 1)
                                            if ok else None)
        out[f'episodes_{agent}'] = len(mine)
        out[f'episode_s_{agent}'] = round(float(np.mean([r['wall_s'] for r in mine])), 2)
        by_n = {}
        for n in OBJECT_COUNTS:
            sub = [r for r in mine if r['n_objects'] == n]
            if sub:
                by_n[str(n)] = round(sum(r['success'] for r in sub) / len(sub), 3)
        out[f'success_by_objects_{agent}'] = by_n
    aif = [r for r in rows if r['agent'] == 'aif']
    fused = [pair for r in aif for pair in r['category_pairs']]
    single = [pair for r in aif for pair in r['view_category_pairs']]
    out['category_accuracy'] = (round(sum(a == b for a, b in fused) / len(fused), 4)
                                if fused else None)
    out['objects_tracked'] = len(fused)
    out['duplicate_track_rate'] = (round(sum(r['duplicated_objects'] for r in aif) / len(fused), 4)
                                   if fused else None)
    out['category_accuracy_view'] = (round(sum(a == b for a, b in single) / len(single), 4)
                                     if single else None)
    confusion: dict[str, dict[str, int]] = {}
    for true, believed in fused:
        row = confusion.setdefault(true, {})
        row[believed] = row.get(believed, 0) + 1
    out['category_confusion'] = {c: confusion[c] for c in CATEGORIES if c in confusion}
    times = [t for r in aif for t in r['perception_ms']]
    out['perception_ms_80x60'] = round(float(np.median(times)), 2) if times else None
    return out


def body(args) -> dict:
    """Run the scenes (in parallel with --jobs) and summarise."""
    counts = (1, 3, 5) if args.quick else OBJECT_COUNTS
    seeds = list(args.seeds)[:1] if args.quick else list(args.seeds)
    agents = tuple(args.agents.split(','))
    jobs = [(n, s, agents, args.min_match) for s in seeds for n in counts]
    rows: list[dict] = []
    start = time.perf_counter()
    sink = open(args.rows, 'w') if args.rows else None  # noqa: SIM115 - closed below

    def collect(k: int, part: list[dict]) -> None:
        rows.extend(part)
        if sink is not None:
            for row in part:
                sink.write(json.dumps({key: v for key, v in row.items() if key != 'perception_ms'})
                           + '\n')
            sink.flush()
        progress(f'scene {k + 1}/{len(jobs)} done, {time.perf_counter() - start:.0f} s')

    try:
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                for k, part in enumerate(pool.map(_scene_job, jobs)):
                    collect(k, part)
        else:
            for k, job in enumerate(jobs):
                collect(k, _scene_job(job))
    finally:
        if sink is not None:
            sink.close()
    figures = _summarise(rows)
    wall_ms, cpu_ms = _perception_latency(5 if args.quick else 20)
    figures['perception_ms'] = round(wall_ms, 2)
    figures['perception_cpu_ms'] = round(cpu_ms, 2)  # the same, CPU time: robust to load
    figures['seeds'] = f'{seeds[0]}:{seeds[-1] + 1}'

    figures['episodes'] = len(rows) // max(len(agents), 1)
    figures['targets_per_scene'] = N_TARGETS
    figures['object_counts'] = list(counts)
    figures['max_steps'] = MAX_STEPS
    figures['min_match'] = args.min_match
    return figures


def main(argv=None) -> int:
    """Entry point of `embodied-aif bench active_vision`."""
    parser = make_parser('active_vision', __doc__.splitlines()[0], '0:20')
    parser.add_argument('--jobs', type=int, default=2, help='worker processes (default 2)')
    parser.add_argument('--rows', default='',
                        help='also write one JSON line per episode to this file')
    parser.add_argument('--min-match', type=float, default=LocaliseConfig.min_match,
                        help='share of the goal image a hypothesis must explain to be pursued '
                             '(LocaliseConfig.min_match, default %(default)s)')
    parser.add_argument('--agents', default=','.join(AGENTS),
                        help=f'comma-separated subset of {",".join(AGENTS)}')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
