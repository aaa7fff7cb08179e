"""Benchmark: the object model's categories in simulated table scenes, and perception latency.

Scenes: the tabletop scenario reduced to its table with 5 objects of distinct random
categories (all ten of sim/scenario.py) at random places and headings. Per seed, an RGB-D
camera (the wrist camera's optics, 160x120, or the head camera's, 320x240, alternating)
looks at the table from ``--views`` random viewpoints (0.35-0.9 m from a point on the table,
0.5-1.2 rad above the horizontal); each frame is segmented (models.segmentation), every
cluster is classified by the shipped object model (one batch per frame) and fused into the
scene beliefs (classifier_likelihood, update), as the perception node does.

Figures: ``view_accuracy`` (clusters within 5 cm of a true object whose most probable
category in that single view is right), ``view_accuracy_height`` (the same with the
likelihood of the cluster's measured height fused in, ``scene_beliefs.height_likelihood``, as
perception does), ``fused_accuracy`` (true objects whose nearest belief, after all views, has
the right most probable category; objects never matched count as wrong),
``perception_ms`` (median per frame of segmentation + crops + batched inference + belief
update, 160x120 frame with the 5 objects in view), ``classify_ms`` (the crops and inference
alone), ``heldout_view_accuracy`` (from the weights' training record); with ``--data`` (a
``collect objects`` dataset) also the latent figures of ``latent_figures``.

Trays (``tray_rims``): in the ``default`` and ``grid3x3`` worlds of each seed, the head camera
(320x240) looks at every tray from each side, 1.0 and 1.4 m away; each frame is segmented with
the band rule (``SegmentationConfig.band_*``, what perception runs) and, side by side, without
it. ``tray_spurious_per_view[_no_band]``: clusters over a tray that are no object (none within
4 cm of a true one) per view; ``tray_crowded_rate[_no_band]``: views of a mug, can, bottle or
box in a tray in which such a cluster's box comes within 4 cm of it and its top is over 2 cm
above the object's foot (what the fetch chooser's clearance and the grasp check refuse);
``tray_found_rate[_no_band]``: views in which a cluster is centred within 3 cm of it.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.models.object_crops import image_up, load_views
from embodied_aif.models.object_model import CATEGORY_HEIGHTS, ObjectClassifier, camera_move
from embodied_aif.models.scene_beliefs import (
    BeliefConfig,
    SensorModel,
    classifier_likelihood,
    detection_from_cluster,
    empty_scene,
    height_likelihood,
    size_temperature,
    update,
)
from embodied_aif.models.segmentation import (
    CameraIntrinsics,
    SegmentationConfig,
    look_at,
    segment_frame,
)
from embodied_aif.models.transforms import matrix
from embodied_aif.sim.scenario import CATEGORIES, FurnitureItem, FurnitureSpec, load_scenario
from embodied_aif.sim.sensors import CameraConfig, render_camera
from embodied_aif.sim.simulation import Simulation

N_OBJECTS = 5
CAMERAS = (CameraConfig('wrist', 160, 120, 70.0, near=0.02, far=3.0),
           CameraConfig('head', 320, 240, 60.0))
SEGMENTATION = SegmentationConfig(max_depth=2.5)
MATCH_M = 0.05


def _scenario(seed: int):
    base = load_scenario('tabletop')
    rng = np.random.default_rng(20_000 + seed)
    cats = tuple(str(c) for c in rng.choice(CATEGORIES, size=N_OBJECTS, replace=False))
    table = FurnitureItem('table', (0, 0), 0.7, 0.0, 90.0)
    return dataclasses.replace(
        base, name='tabletop_5', furniture=FurnitureSpec(per_room={}, fixed=(table,)),
        objects=dataclasses.replace(base.objects, categories=cats, instances_per_category=1,
                                    surfaces=('table',)))


class Perceiver:
    """Segmentation, batched classification and belief update of one frame at a time."""

    def __init__(self, classifier: ObjectClassifier, full_pixels: float = 150.0,
                 upright: bool = True, height_temperature: float = 0.5):
        self.classifier = classifier
        self.height_temperature = height_temperature
        self.upright = upright
        self.full_pixels = full_pixels
        self.scene = empty_scene(CATEGORIES)
        self.rng = np.random.default_rng(0)
        self.stamp = 0.0

    def observe(self, frame, t_map_cam) -> tuple[list, np.ndarray, float, float]:
        """Return (clusters, fused likelihood per cluster, total ms, classification ms).

        The likelihood is the tempered q(category) times the height likelihood (rows all
        zero where no crop could be cut); ``last_probs`` keeps q(category) alone.
        """
        start = time.perf_counter()
        intr = CameraIntrinsics.from_k(frame.intrinsics.k, frame.intrinsics.width,
                                       frame.intrinsics.height)
        result = segment_frame(frame.depth, frame.rgb, intr, t_map_cam, SEGMENTATION, self.rng)
        t0 = time.perf_counter()
        ups = [image_up(t_map_cam, c.center, intr.fx, intr.fy, intr.cx, intr.cy)
               for c in result.clusters] if self.upright else None
        probs = self.classifier.classify(frame.rgb, frame.depth,
                                         [c.pixel_indices for c in result.clusters], intr.fx,
                                         ups)
        classify_ms = 1e3 * (time.perf_counter() - t0)
        sensor = SensorModel(intr, min_range=SEGMENTATION.min_depth,
                             max_range=SEGMENTATION.max_depth)
        temps = size_temperature([c.n_points for c in result.clusters], 0.5,
                                 self.full_pixels)
        liks = classifier_likelihood(probs, temps)
        if self.height_temperature > 0.0 and result.clusters:
            liks = liks * height_likelihood([c.extent[2] for c in result.clusters],
                                            [CATEGORY_HEIGHTS.get(n) for n in CATEGORIES],
                                            temperature=self.height_temperature)
        dets = [detection_from_cluster(c, sensor, t_map_cam, lik / lik.sum()) for c, lik in
                zip(result.clusters, liks)]
        self.stamp += 0.2
        self.scene, _ = update(self.scene, dets, t_map_cam, sensor, self.stamp, BeliefConfig(),
                               depth=frame.depth)
        self.last_probs = probs
        known = probs.sum(axis=1, keepdims=True) > 0
        return (list(result.clusters), np.where(known, liks, 0.0),
                1e3 * (time.perf_counter() - start), classify_ms)


def _render(sim, config, t_map_cam):
    quat = Rotation.from_matrix(t_map_cam[:3, :3]).as_quat()
    return render_camera(config, sim.client, t_map_cam[:3, 3], quat)


def _episode(seed: int, n_views: int, classifier: ObjectClassifier, full_pixels: float,
             height_temperature: float = 0.5) -> dict:
    rng = np.random.default_rng(seed)
    with Simulation(_scenario(seed), seed=seed, settle_s=0.3) as sim:
        truth = [(o.category, np.asarray(o.position)) for o in sim.ground_truth().objects]
        table = next(f for f in sim.world.furniture if f.kind == 'table')
        centre = np.array([table.center[0], table.center[1], table.size[2]])
        half = np.asarray(table.half, dtype=float)
        perceiver = Perceiver(classifier, full_pixels, height_temperature=height_temperature)
        hits = total = height_hits = 0
        for k in range(n_views):
            aim = centre + rng.uniform(-0.6, 0.6, 3) * [half[0], half[1], 0.0]
            d, el, az = rng.uniform(0.35, 0.9), rng.uniform(0.5, 1.2), rng.uniform(-np.pi,
                                                                                   np.pi)
            eye = aim + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                      np.sin(el)])
            cam = look_at(eye, aim)
            clusters, liks, _, _ = perceiver.observe(_render(sim, CAMERAS[k % 2], cam), cam)
            for c, q, lik in zip(clusters, perceiver.last_probs, liks):
                dist = [np.linalg.norm(c.center[:2] - pos[:2]) for _, pos in truth]
                j = int(np.argmin(dist))
                if dist[j] < MATCH_M and q.sum() > 0:
                    total += 1
                    hits += CATEGORIES[int(np.argmax(q))] == truth[j][0]
                    height_hits += CATEGORIES[int(np.argmax(lik))] == truth[j][0]
        fused = 0
        for cat, pos in truth:
            objs = perceiver.scene.objects
            dist = [np.linalg.norm(o.mean[:2] - pos[:2]) for o in objs]
            if dist and min(dist) < MATCH_M:
                best = objs[int(np.argmin(dist))]
                fused += CATEGORIES[int(np.argmax(best.category_probs))] == cat
    return {'view_hits': hits, 'view_height_hits': height_hits, 'view_total': total,
            'fused_hits': fused,
            'fused_total': len(truth)}


TRAY_DISTANCES = (1.0, 1.4)  # m from the tray's centre, on each side
GRASPABLE = ('mug', 'can', 'bottle', 'box')


def _tray_frames(sim):
    """(tray, its objects, frame, t_map_cam) for head-camera views of each tray."""
    objects = [o for o in sim.ground_truth().objects if o.support == 'tray']
    for tray in (f for f in sim.world.furniture if f.kind == 'tray'):
        (cx, cy), (hx, hy) = tray.center, tray.half
        inside = [o for o in objects
                  if abs(o.position[0] - cx) < hx and abs(o.position[1] - cy) < hy]
        for side in range(4):
            for distance in TRAY_DISTANCES:
                a = side * math.pi / 2
                x, y = cx + distance * math.cos(a), cy + distance * math.sin(a)
                if sim.world.clearance_at(x, y) < 0.35:
                    continue
                sim.robot.set_base_pose(x, y, a + math.pi)
                frame = sim.render('head_camera')
                pos, quat = sim.robot.link_poses()['head_camera_optical_frame']
                yield tray, inside, frame, matrix(pos, quat)


def _tray_counts(tray, inside, clusters) -> dict:
    """Spurious clusters over a tray; per graspable object: crowded by one, found."""
    (cx, cy), (hx, hy) = tray.center, tray.half
    over = [c for c in clusters if abs(c.center[0] - cx) < hx + 0.03
            and abs(c.center[1] - cy) < hy + 0.03]
    xy = np.array([o.position[:2] for o in inside]).reshape(-1, 2)
    spurious = [c for c in over if not len(xy)
                or np.min(np.linalg.norm(xy - c.center[:2], axis=1)) >= 0.04]
    out = {'views': 1, 'spurious': len(spurious), 'objects': 0, 'crowded': 0, 'found': 0}
    for o in (o for o in inside if o.category in GRASPABLE):
        at = np.asarray(o.position[:2])
        out['objects'] += 1
        out['found'] += any(np.linalg.norm(c.center[:2] - at) < 0.03 for c in over)
        out['crowded'] += any(
            np.linalg.norm(c.center[:2] - at) < max(c.extent[:2]) / 2 + 0.035 + 0.04
            and c.center[2] + c.extent[2] / 2 > o.position[2] + 0.02 for c in spurious)
    return out


def tray_rims(seeds) -> dict:
    """Spurious clusters over trays, with the band rule and without it (see the docstring)."""
    configs = {'': SEGMENTATION, '_no_band': dataclasses.replace(SEGMENTATION, band_height=0.0)}
    totals = {k: dict.fromkeys(('views', 'spurious', 'objects', 'crowded', 'found'), 0)
              for k in configs}
    for seed in seeds:
        for scenario in ('default', 'grid3x3'):
            with Simulation(scenario, seed=seed, settle_s=0.3) as sim:
                for tray, inside, frame, t_map_cam in _tray_frames(sim):
                    intr = CameraIntrinsics.from_k(frame.intrinsics.k, frame.intrinsics.width,
                                                   frame.intrinsics.height)
                    for key, config in configs.items():
                        seg = segment_frame(frame.depth, frame.rgb, intr, t_map_cam, config,
                                            np.random.default_rng(0))
                        for k, v in _tray_counts(tray, inside, seg.clusters).items():
                            totals[key][k] += v
    out = {}
    for key, t in totals.items():
        out[f'tray_spurious_per_view{key}'] = round(t['spurious'] / max(t['views'], 1), 3)
        out[f'tray_crowded_rate{key}'] = round(t['crowded'] / max(t['objects'], 1), 3)
        out[f'tray_found_rate{key}'] = round(t['found'] / max(t['objects'], 1), 3)
    out['tray_views'], out['tray_object_views'] = totals['']['views'], totals['']['objects']
    return out


def _latency(classifier: ObjectClassifier, repeats: int) -> tuple[float, float, int]:
    with Simulation(_scenario(0), seed=0, settle_s=0.3) as sim:
        table = next(f for f in sim.world.furniture if f.kind == 'table')
        centre = np.array([table.center[0], table.center[1], table.size[2]])
        cam = look_at(centre + [-table.half[0] - 0.1, 0.0, 0.7], centre)
        frame = _render(sim, CAMERAS[0], cam)
        totals, classify = [], []
        n = 0
        for _ in range(repeats):
            perceiver = Perceiver(classifier)
            clusters, _, ms, cms = perceiver.observe(frame, cam)
            totals.append(ms)
            classify.append(cms)
            n = len(clusters)
    return statistics.median(totals), statistics.median(classify), n


def _r2(features: np.ndarray, targets: np.ndarray, train: np.ndarray) -> float:
    """R^2 on the other half of a ridge regression fitted on ``train`` rows."""
    x = np.hstack([features, np.ones((len(features), 1))])
    test = ~train
    w = np.linalg.solve(x[train].T @ x[train] + 1e-3 * np.eye(x.shape[1]),
                        x[train].T @ targets[train])
    resid = targets[test] - x[test] @ w
    return float(1.0 - resid.var(0).sum() / targets[test].var(0).sum())


def latent_figures(classifier: ObjectClassifier, data_dir: str) -> dict:
    """Disentanglement and transition figures on a dataset's held-out instances.

    ``shape_within_instance`` / ``pose_within_instance``: the fraction of each code's variance
    that lies between views of one instance (disentangled: small for shape, large for pose);
    ``elevation_r2_pose`` / ``elevation_r2_shape``: R^2 of a linear map from the code to the
    camera elevation, fitted on half of the instances, tested on the others (azimuth is left
    out: it is ambiguous for the symmetric families); ``transition_error_ratio``: mean squared
    error of the transition's predicted pose code for a random other view of the same
    instance, over that of predicting no change.
    """
    data = load_views(data_dir)
    idx = data.split_indices('test')
    a = {k: v[idx] for k, v in data.arrays.items()}
    model = classifier.model
    with torch.no_grad():
        x, ls = model.prepare(a['rgb'], a['depth'], a['mask'], a['scale'])
        q = model.encode(x, ls)
    pose, shape = q['pose_mu'].numpy(), q['shape_mu'].numpy()
    elevation = a['elevation'][:, None].astype(float)
    rng = np.random.default_rng(0)
    train = np.isin(a['instance'], rng.permutation(np.unique(a['instance']))[::2])
    other = np.array([rng.choice(np.flatnonzero((a['instance'] == a['instance'][i])
                                                & (a['view'] != a['view'][i])))
                      for i in range(len(idx))])
    vp = np.stack([a['azimuth'], a['elevation'], a['range']], 1)
    with torch.no_grad():
        pred, _ = model.predict_pose(q['pose_mu'][torch.as_tensor(other)],
                                     torch.as_tensor(camera_move(vp[other], vp)))
    err = float(((pred.numpy() - pose) ** 2).sum(1).mean())
    still = float(((pose[other] - pose) ** 2).sum(1).mean())
    def within(z):
        parts = [z[a['instance'] == i].var(0).sum() for i in np.unique(a['instance'])]
        return round(float(np.mean(parts) / z.var(0).sum()), 3)

    return {'shape_within_instance': within(shape), 'pose_within_instance': within(pose),
            'elevation_r2_pose': round(_r2(pose, elevation, train), 3),
            'elevation_r2_shape': round(_r2(shape, elevation, train), 3),
            'transition_error_ratio': round(err / still, 3)}


def body(args) -> dict:
    """Run the scenes and the latency measurement; return the figures."""
    classifier = ObjectClassifier.from_file(args.weights, CATEGORIES, args.threads)
    views = 4 if args.quick else args.views
    seeds = list(args.seeds)[:3] if args.quick else list(args.seeds)
    rows = []
    for seed in seeds:
        rows.append(_episode(seed, views, classifier, args.full_pixels,
                             args.height_temperature))
        progress(f'seed {seed}: {rows[-1]}')
    latents = latent_figures(classifier, args.data) if args.data else {}
    trays = tray_rims(seeds[:2] if args.quick else seeds)
    progress(f'trays: {trays}')
    total_ms, classify_ms, n = _latency(classifier, 5 if args.quick else 20)
    progress(f'latency frame: {n} clusters')
    view_total = sum(r['view_total'] for r in rows)
    return {
        'view_accuracy': round(sum(r['view_hits'] for r in rows) / max(view_total, 1), 4),
        'view_accuracy_height': round(sum(r['view_height_hits'] for r in rows)
                                      / max(view_total, 1), 4),
        'fused_accuracy': round(sum(r['fused_hits'] for r in rows)
                                / max(sum(r['fused_total'] for r in rows), 1), 4),
        'views_per_scene': views, 'classified_clusters': view_total,
        'perception_ms': round(total_ms, 2), 'classify_ms': round(classify_ms, 2),
        'latency_clusters': n, 'heldout_view_accuracy': classifier.meta.get(
            'history', [{}])[-1].get('test_view_accuracy'),
        'chance': round(1.0 / len(CATEGORIES), 4), **trays, **latents,
    }


def main(argv=None) -> int:
    """Entry point of `embodied-aif bench object_model`."""
    parser = make_parser('object_model', __doc__.splitlines()[0], '0:20')
    parser.add_argument('--views', type=int, default=8, help='views per scene (default 8)')
    parser.add_argument('--weights', default='', help='weights file (default: shipped)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    parser.add_argument('--data', default='',
                        help='object-views dataset: add latent figures on its held-out split')
    parser.add_argument('--full-pixels', type=float, default=150.0,
                        help='clusters smaller than this get a lower likelihood temperature '
                             '(0: off)')
    parser.add_argument('--height-temperature', type=float, default=0.5,
                        help='tempering of the measured-height likelihood fused with the '
                             'category evidence (0: off; default 0.5)')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    raise SystemExit(main())
