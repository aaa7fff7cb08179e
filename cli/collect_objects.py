"""Render the simulator's object families from many viewpoints (object-model training data).

For every category, ``--train`` + ``--test`` seeded instances are sampled
(``sim.objects.sample_object``); the last ``--test`` of each category are held out. Each
instance is placed alone on a table top (``sim.object_views.ObjectScene``) and rendered from
the same ``--views`` viewpoints (shared by all instances, so two instances of a category can be
compared at one viewpoint); the object's crop (``models.object_crops.crop_object``) is stored
with its labels in sharded .npz files and a manifest.json with sha256 checksums.
Deterministic for a given seed and arguments. Format: docs/object_model.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from embodied_aif.models.object_crops import (
    FORMAT,
    FORMAT_VERSION,
    crop_object,
    image_up,
    write_shard,
)
from embodied_aif.sim.object_views import ObjectScene, sample_viewpoints
from embodied_aif.sim.objects import sample_object
from embodied_aif.sim.scenario import CATEGORIES

MIN_PIXELS = 12  # views where the object covers fewer pixels are skipped


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def collect(out, categories=CATEGORIES, n_train: int = 16, n_test: int = 4, n_views: int = 40,
            seed: int = 0, crop_size: int = 64, render_size: int = 128,
            shard_size: int = 2048, quiet: bool = False) -> dict:
    """Render and write a dataset to directory ``out``; return its manifest."""
    out = Path(out)
    categories = list(categories)
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown or not categories:
        raise ValueError(f'unknown categories {unknown} (known: {list(CATEGORIES)})')
    if n_train < 1 or n_test < 0 or n_views < 1:
        raise ValueError(f'need --train >= 1, --test >= 0, --views >= 1, got {n_train}, '
                         f'{n_test}, {n_views}')
    out.mkdir(parents=True, exist_ok=True)
    if (out / 'manifest.json').exists():
        (out / 'manifest.json').unlink()  # a half-rewritten dataset must not look valid
    views = sample_viewpoints(n_views, np.random.default_rng([seed, 0]))
    instances, shards = [], []
    buffer: dict[str, list] = {}
    n_skipped, start = 0, time.perf_counter()

    def flush() -> None:
        if buffer.get('category'):
            arrays = {k: np.asarray(v) for k, v in buffer.items()}
            shards.append(write_shard(out, len(shards), arrays))
            buffer.clear()

    with ObjectScene(size=render_size) as scene:
        for ci, category in enumerate(categories):
            for k in range(n_train + n_test):
                desc = sample_object(category, k, np.random.default_rng([seed, 1, ci, k]))
                iid = len(instances)
                instances.append({'id': iid, 'name': desc.name, 'category': category,
                                  'split': 'train' if k < n_train else 'test',
                                  'shape': desc.shape, 'rgba': list(desc.rgba)})
                scene.place(desc)
                for vi, view in enumerate(views):
                    frame = scene.render(view)
                    if frame.mask.sum() < MIN_PIXELS:
                        n_skipped += 1
                        continue
                    n = frame.depth.shape[0]  # principal point as in sim/sensors.Intrinsics
                    up = image_up(frame.t_obj_cam, scene.centre, frame.focal, frame.focal,
                                  n / 2, n / 2 - 1)
                    rgb, depth, mask, scale = crop_object(frame.rgb, frame.depth, frame.mask,
                                                          frame.focal, crop_size, up=up)
                    sample = {'rgb': rgb, 'depth': depth.astype(np.float16),
                              'mask': mask.astype(np.uint8), 'category': np.int32(ci),
                              'instance': np.int32(iid), 'view': np.int32(vi),
                              'scale': np.float32(scale),
                              'azimuth': np.float32(view.azimuth),
                              'elevation': np.float32(view.elevation),
                              'range': np.float32(view.range), 'focal': np.float32(view.focal),
                              't_obj_cam': frame.t_obj_cam.astype(np.float32)}
                    for key, value in sample.items():
                        buffer.setdefault(key, []).append(value)
                    if len(buffer['category']) >= shard_size:
                        flush()
            if not quiet:
                _progress(f'collect objects: {category} done ({ci + 1}/{len(categories)}, '
                          f'{time.perf_counter() - start:.0f} s)')
    flush()
    manifest = {
        'format': FORMAT, 'version': FORMAT_VERSION, 'seed': seed,
        'categories': categories, 'crop_size': crop_size, 'render_size': render_size,
        'n_train': n_train, 'n_test': n_test,
        'n_samples': int(sum(s['count'] for s in shards)), 'n_skipped_views': n_skipped,
        'viewpoints': [asdict(v) for v in views], 'instances': instances, 'shards': shards,
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> int:
    """Entry point of `embodied-aif collect objects`."""
    parser = argparse.ArgumentParser(prog='embodied-aif collect objects',
                                     description=(__doc__ or '').strip().splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory (created)')
    parser.add_argument('--categories', default=','.join(CATEGORIES),
                        help='comma-separated categories (default: all of sim/scenario.py)')
    parser.add_argument('--train', type=int, default=16, help='training instances per category')
    parser.add_argument('--test', type=int, default=4, help='held-out instances per category')
    parser.add_argument('--views', type=int, default=40, help='viewpoints per instance')
    parser.add_argument('--seed', type=int, default=0, help='seed of instances and viewpoints')
    parser.add_argument('--crop-size', type=int, default=64, help='crop side in pixels')
    parser.add_argument('--render-size', type=int, default=128,
                        help='side of the rendered image in pixels')
    args = parser.parse_args(argv)
    try:
        manifest = collect(args.out, [c for c in args.categories.split(',') if c],
                           args.train, args.test, args.views, args.seed, args.crop_size,
                           args.render_size)
    except ValueError as exc:
        print(f'embodied-aif collect objects: error: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({'out': str(args.out), 'samples': manifest['n_samples'],
                      'skipped_views': manifest['n_skipped_views'],
                      'instances': len(manifest['instances']),
                      'shards': len(manifest['shards'])}))
    return 0
