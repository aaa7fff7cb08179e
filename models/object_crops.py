"""Object crops (RGB-D + mask, fixed size) and the on-disk format of object-view datasets.

A crop is cut the same way in training data and in perception: the window is turned so that
the world's up points up in the crop (``image_up``; off the image centre and with a rolled
camera vertical edges are not image columns), it is the square around the bounding box of the
object's pixels in that turned frame (its side ``margin`` times the box's longer side, so the
aspect ratio is kept), resampled to ``size`` x ``size`` by nearest neighbour, with pixels
outside the object zeroed. Channels: RGB in [0, 1], depth relative to the object's median
depth (metres), and the object mask. The window's metric side (pixels times median depth over
the focal length) is kept as ``scale``: the crop itself no longer shows how big the object is.

Dataset format (a directory, written by ``embodied-aif collect objects``; docs/object_model.md):
``manifest.json`` (format name and version, categories, instances with split and shape
parameters, viewpoints, shards with their sha256) and shards ``shard_XXXX.npz`` holding
``rgb`` (N, S, S, 3) uint8, ``depth`` (N, S, S) float16 relative metres, ``mask``
(N, S, S) uint8 and per-sample ``category``, ``instance``, ``view`` (int32), ``scale``,
``azimuth``, ``elevation``, ``range``, ``focal`` (float32) and ``t_obj_cam`` (N, 4, 4).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = 'embodied_aif.object_views'
FORMAT_VERSION = 1
SAMPLE_KEYS = ('rgb', 'depth', 'mask', 'category', 'instance', 'view', 'scale', 'azimuth',
               'elevation', 'range', 'focal', 't_obj_cam')


def image_up(t_cam, point, fx: float, fy: float, cx: float, cy: float,
             up=(0.0, 0.0, 1.0), length: float = 0.05) -> np.ndarray:
    """Image direction (du, dv), unit, in which the world's ``up`` points at a 3-D point.

    ``t_cam`` is the optical-frame camera pose (4, 4) in the frame of ``point`` and ``up``.
    Used to cut gravity-aligned crops: off the image centre (perspective) or with a rolled
    camera, vertical edges do not run along the image columns.
    """
    t = np.asarray(t_cam, dtype=float)
    p = np.asarray(point, dtype=float)
    ends = np.stack([p, p + length * np.asarray(up, dtype=float)])
    cam = (ends - t[:3, 3]) @ t[:3, :3]
    if np.any(cam[:, 2] <= 1e-6):
        return np.array([0.0, -1.0])
    uv = np.stack([fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy], 1)
    d = uv[1] - uv[0]
    n = np.linalg.norm(d)
    return d / n if n > 1e-9 else np.array([0.0, -1.0])


def crop_object(rgb, depth, pixels, focal: float, size: int = 64, margin: float = 1.15,
                up=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Cut the crop of one object from a registered RGB-D frame.

    ``pixels`` is a boolean mask (H, W) or flat pixel indices (row * W + col) of the object.
    ``up`` (optional, ``image_up``) is the image direction of the world's up at the object:
    the crop is rotated so that it points up in the crop (None: no rotation). Returns
    ``(rgb (S, S, 3) uint8, depth (S, S) float32 relative m, mask (S, S) bool, scale m)``.
    Raises ValueError on mismatched shapes, no pixels or no valid depth on them.
    """
    rgb = np.asarray(rgb)
    depth = np.asarray(depth, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or depth.shape != rgb.shape[:2]:
        raise ValueError(f'rgb (H, W, 3) and depth (H, W) must match, got {rgb.shape} and '
                         f'{depth.shape}')
    h, w = depth.shape
    pix = np.asarray(pixels)
    if pix.dtype == bool:
        if pix.shape != (h, w):
            raise ValueError(f'mask shape {pix.shape} does not match the image {(h, w)}')
        mask = pix
    else:
        mask = np.zeros(h * w, dtype=bool)
        mask[pix.reshape(-1).astype(np.int64)] = True
        mask = mask.reshape(h, w)
    mask = mask & np.isfinite(depth) & (depth > 0.0)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError('the object has no pixels with valid depth')
    ux, uy = (0.0, -1.0) if up is None else (float(up[0]), float(up[1]))
    norm = np.hypot(ux, uy)
    ux, uy = (ux / norm, uy / norm) if norm > 1e-9 else (0.0, -1.0)
    down = (-ux, -uy)          # the crop's rows, in image (x, y)
    right = (-uy, ux)          # the crop's columns
    px, py = cols + 0.5, rows + 0.5
    xr = px * right[0] + py * right[1]
    yr = px * down[0] + py * down[1]
    x0, x1, y0, y1 = xr.min() - 0.5, xr.max() + 0.5, yr.min() - 0.5, yr.max() + 0.5
    side = max(x1 - x0, y1 - y0) * margin + 2.0
    grid = (np.arange(size) + 0.5) / size * side - 0.5 * side
    gx = 0.5 * (x0 + x1) + grid[None, :]
    gy = 0.5 * (y0 + y1) + grid[:, None]
    ci = np.floor(gx * right[0] + gy * down[0]).astype(np.int64)
    ri = np.floor(gx * right[1] + gy * down[1]).astype(np.int64)
    inside = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
    rr, cc = np.clip(ri, 0, h - 1), np.clip(ci, 0, w - 1)
    m = mask[rr, cc] & inside
    median = float(np.median(depth[rows, cols]))
    out_depth = np.where(m, depth[rr, cc] - median, 0.0).astype(np.float32)
    out_rgb = np.where(m[..., None], rgb[rr, cc], 0).astype(np.uint8)
    return out_rgb, out_depth, m, float(side * median / focal)


def crop_arrays(crops) -> dict:
    """Stack a list of ``crop_object`` results into the arrays the model takes."""
    return {'rgb': np.stack([c[0] for c in crops]), 'depth': np.stack([c[1] for c in crops]),
            'mask': np.stack([c[2] for c in crops]).astype(np.uint8),
            'scale': np.asarray([c[3] for c in crops], dtype=np.float32)}


def sha256(path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for block in iter(lambda: fh.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_shard(directory, index: int, samples: dict) -> dict:
    """Write one shard ``shard_XXXX.npz``; return its manifest entry (file, count, sha256)."""
    missing = [k for k in SAMPLE_KEYS if k not in samples]
    if missing:
        raise ValueError(f'shard {index}: missing arrays {missing}')
    n = len(samples['category'])
    if any(len(samples[k]) != n for k in SAMPLE_KEYS):
        raise ValueError(f'shard {index}: arrays of different lengths '
                         f'{ {k: len(samples[k]) for k in SAMPLE_KEYS} }')
    name = f'shard_{index:04d}.npz'
    path = Path(directory) / name
    np.savez_compressed(path, **{k: samples[k] for k in SAMPLE_KEYS})
    return {'file': name, 'count': int(n), 'sha256': sha256(path)}


@dataclass
class ObjectViews:
    """A loaded dataset: the manifest and all samples as arrays (index 0 = first sample)."""

    manifest: dict
    arrays: dict

    @property
    def categories(self) -> list[str]:
        """Category names, indexed by the ``category`` array."""
        return list(self.manifest['categories'])

    def split_indices(self, split: str) -> np.ndarray:
        """Sample indices whose instance belongs to ``split`` ('train' or 'test')."""
        ids = [i['id'] for i in self.manifest['instances'] if i['split'] == split]
        return np.flatnonzero(np.isin(self.arrays['instance'], ids))


def load_views(directory, verify: bool = True) -> ObjectViews:
    """Read a dataset directory; with ``verify`` check every shard's sha256.

    Raises ValueError naming the file and the problem (missing, wrong format or version,
    checksum mismatch, count mismatch, missing arrays).
    """
    directory = Path(directory)
    path = directory / 'manifest.json'
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f'{path}: no manifest (not an object-views dataset)') from None
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: not valid JSON: {exc}') from None
    if manifest.get('format') != FORMAT or manifest.get('version') != FORMAT_VERSION:
        raise ValueError(f"{path}: format {manifest.get('format')!r} version "
                         f"{manifest.get('version')!r}, expected {FORMAT!r} {FORMAT_VERSION}")
    parts: dict[str, list] = {k: [] for k in SAMPLE_KEYS}
    for shard in manifest['shards']:
        file = directory / shard['file']
        if not file.exists():
            raise ValueError(f'{file}: shard listed in the manifest is missing')
        if verify and sha256(file) != shard['sha256']:
            raise ValueError(f'{file}: sha256 does not match the manifest (corrupt or changed)')
        with np.load(file) as data:
            missing = [k for k in SAMPLE_KEYS if k not in data]
            if missing:
                raise ValueError(f'{file}: missing arrays {missing}')
            if len(data['category']) != shard['count']:
                raise ValueError(f"{file}: {len(data['category'])} samples, the manifest says "
                                 f"{shard['count']}")
            for k in SAMPLE_KEYS:
                parts[k].append(data[k])
    if not parts['category']:
        raise ValueError(f'{path}: the dataset has no shards')
    return ObjectViews(manifest, {k: np.concatenate(v) for k, v in parts.items()})
