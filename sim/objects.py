"""Seeded object families: parametric primitives, scaled pybullet_data meshes, distractors.

Each instance is first described (:class:`ObjectDesc`: category, family, shape parameters,
colour, mass) by a pure seeded sampler, then spawned into a physics client. The description is
the ground truth the evaluation reads back together with the body's pose.

Parametric families (varied proportions, sizes and colours; cans, boxes, mugs and bottles are
at most 7.2 cm across one horizontal axis so the Panda's 8 cm gripper can take them): ``can``
(cylinder), ``box``,
``mug`` (cylinder and a handle), ``bottle`` (body, shoulder, neck), ``bowl`` (a base and a ring
of tilted wall staves). Mesh families from pybullet_data at varied scales: ``duck``, ``teddy``,
``lego``, ``jenga``, ``mug_mesh``. Distractors are pybullet_data random_urdfs (category
``distractor``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

from embodied_aif.sim.scenario import CATEGORIES, MESH_CATEGORIES

DATA = Path(pybullet_data.getDataPath())

# Mesh categories: URDF file and the range of global scales used for instances.
MESH_FILES = {
    'duck': ('duck_vhacd.urdf', (0.8, 1.3)),
    'teddy': ('teddy_vhacd.urdf', (0.9, 1.4)),
    'lego': ('lego/lego.urdf', (1.5, 2.5)),
    'jenga': ('jenga/jenga.urdf', (0.6, 1.0)),
    'mug_mesh': ('objects/mug.urdf', (0.7, 1.0)),
}
N_RANDOM_URDFS = 1000


@dataclass(frozen=True)
class ObjectDesc:
    """A sampled object instance before it is spawned: its ground-truth description."""

    name: str
    category: str
    family: str
    shape: dict
    rgba: tuple[float, float, float, float]
    mass: float

    def __post_init__(self):
        if self.family not in ('parametric', 'mesh', 'distractor'):
            raise ValueError(f'family must be parametric, mesh or distractor, got {self.family!r}')
        if not (self.mass > 0 and math.isfinite(self.mass)):
            raise ValueError(f'mass must be finite and > 0, got {self.mass!r}')
        if len(self.rgba) != 4:
            raise ValueError(f'rgba must have 4 entries, got {self.rgba!r}')


@dataclass
class SpawnedObject:
    """An object in the world: its description, body id and support it was placed on."""

    desc: ObjectDesc
    body: int
    half_height: float
    radius: float
    support: str = 'floor'
    room: tuple[int, int] = (0, 0)
    extra: dict = field(default_factory=dict)


def _colour(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A saturated random colour (HSV with high saturation and value)."""
    h = rng.uniform(0.0, 1.0)
    s = rng.uniform(0.5, 1.0)
    v = rng.uniform(0.5, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    q, t, pp = v * (1 - s * f), v * (1 - s * (1 - f)), v * (1 - s)
    r, g, b = [(v, t, pp), (q, v, pp), (pp, v, t), (pp, q, v), (t, pp, v), (v, pp, q)][i]
    return (round(r, 4), round(g, 4), round(b, 4), 1.0)


def sample_object(category: str, index: int, rng: np.random.Generator) -> ObjectDesc:
    """Sample one instance of `category` (shape parameters, colour, mass) from rng."""
    u = rng.uniform
    name = f'{category}_{index}'
    if category == 'can':
        shape = {'radius': u(0.025, 0.036), 'height': u(0.08, 0.16)}
    elif category == 'box':
        shape = {'size': [u(0.04, 0.07), u(0.04, 0.12), u(0.04, 0.14)]}
    elif category == 'mug':
        shape = {'radius': u(0.028, 0.036), 'height': u(0.07, 0.11), 'handle': u(0.02, 0.035)}
    elif category == 'bottle':
        shape = {'radius': u(0.022, 0.034), 'height': u(0.14, 0.22), 'neck_radius': u(0.01, 0.016),
                 'neck_fraction': u(0.2, 0.35)}
    elif category == 'bowl':
        shape = {'radius': u(0.05, 0.08), 'height': u(0.03, 0.06), 'flare': u(0.2, 0.5)}
    elif category in MESH_FILES:
        file, (lo, hi) = MESH_FILES[category]
        shape = {'file': file, 'scale': u(lo, hi)}
    elif category == 'distractor':
        k = int(rng.integers(0, N_RANDOM_URDFS))
        shape = {'file': f'random_urdfs/{k:03d}/{k:03d}.urdf', 'scale': u(0.8, 1.2)}
    else:
        raise ValueError(f'unknown object category {category!r} (known: {list(CATEGORIES)})')
    shape = {k: ([round(float(x), 4) for x in v] if isinstance(v, list)
                 else round(float(v), 4) if isinstance(v, float) else v)
             for k, v in shape.items()}
    family = ('distractor' if category == 'distractor'
              else 'mesh' if category in MESH_CATEGORIES else 'parametric')
    return ObjectDesc(name=name, category=category, family=family, shape=shape,
                      rgba=_colour(rng), mass=round(float(u(0.08, 0.3)), 4))


def _parts(desc: ObjectDesc) -> list[tuple]:
    """Primitive parts of a parametric object: (type, dims, position, quaternion)."""
    s = desc.shape
    ident = (0.0, 0.0, 0.0, 1.0)
    if desc.category == 'can':
        return [('cyl', (s['radius'], s['height']), (0, 0, s['height'] / 2), ident)]
    if desc.category == 'box':
        half = [x / 2 for x in s['size']]
        return [('box', half, (0, 0, half[2]), ident)]
    if desc.category == 'mug':
        r, h, a = s['radius'], s['height'], s['handle']
        return [('cyl', (r, h), (0, 0, h / 2), ident),
                ('box', (a / 2, 0.006, h * 0.3), (r + a / 2, 0, h / 2), ident)]
    if desc.category == 'bottle':
        r, h, rn, fn = s['radius'], s['height'], s['neck_radius'], s['neck_fraction']
        body_h, neck_h = h * (1 - fn), h * fn
        shoulder = min(0.02, body_h * 0.2)
        return [('cyl', (r, body_h - shoulder), (0, 0, (body_h - shoulder) / 2), ident),
                ('cyl', ((r + rn) / 2, shoulder), (0, 0, body_h - shoulder / 2), ident),
                ('cyl', (rn, neck_h), (0, 0, body_h + neck_h / 2), ident)]
    if desc.category == 'bowl':
        r, h, flare = s['radius'], s['height'], s['flare']
        parts = [('cyl', (r * 0.6, 0.008), (0, 0, 0.004), ident)]
        n = 10
        stave = 2 * math.pi * r / n * 0.6
        for k in range(n):
            a = 2 * math.pi * k / n
            rr = r * 0.6 + math.sin(flare) * h / 2 + 0.005
            quat = p.getQuaternionFromEuler((0.0, -flare, a))
            parts.append(('box', (0.004, stave, h / 2),
                          (rr * math.cos(a), rr * math.sin(a), h / 2 + 0.004), quat))
        return parts
    raise ValueError(f'{desc.category!r} is not a parametric category')


def spawn_object(desc: ObjectDesc, client: int, position, yaw: float) -> int:
    """Create the body of `desc` at position with yaw; return its body id."""
    orn = p.getQuaternionFromEuler((0.0, 0.0, yaw))
    if desc.family == 'parametric':
        parts = _parts(desc)
        kw_col = {'shapeTypes': [], 'radii': [], 'halfExtents': [], 'lengths': [],
                  'collisionFramePositions': [], 'collisionFrameOrientations': []}
        kw_vis = {'shapeTypes': [], 'radii': [], 'halfExtents': [], 'lengths': [],
                  'visualFramePositions': [], 'visualFrameOrientations': []}
        for kind, dims, pos, quat in parts:
            shape_type = p.GEOM_CYLINDER if kind == 'cyl' else p.GEOM_BOX
            radius, length = (dims[0], dims[1]) if kind == 'cyl' else (0.0, 0.0)
            half = list(dims) if kind == 'box' else [0.0, 0.0, 0.0]
            for kw, frame in ((kw_col, 'collision'), (kw_vis, 'visual')):
                kw['shapeTypes'].append(shape_type)
                kw['radii'].append(radius)
                kw['halfExtents'].append(half)
                kw['lengths'].append(length)
                kw[f'{frame}FramePositions'].append(list(pos))
                kw[f'{frame}FrameOrientations'].append(list(quat))
        col = p.createCollisionShapeArray(physicsClientId=client, **kw_col)
        vis = p.createVisualShapeArray(physicsClientId=client, **kw_vis)
        body = p.createMultiBody(baseMass=desc.mass, baseCollisionShapeIndex=col,
                                 baseVisualShapeIndex=vis, basePosition=list(position),
                                 baseOrientation=orn, physicsClientId=client)
    else:
        body = p.loadURDF(str(DATA / desc.shape['file']), basePosition=list(position),
                          baseOrientation=orn, globalScaling=desc.shape['scale'],
                          physicsClientId=client)
    p.changeVisualShape(body, -1, rgbaColor=list(desc.rgba), physicsClientId=client)
    # Resting objects may sleep (deterministically): about 30 % faster steps in large worlds.
    p.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.002,
                     rollingFriction=0.002, activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING,
                     physicsClientId=client)
    if desc.family == 'parametric':
        p.changeDynamics(body, -1, mass=desc.mass, physicsClientId=client)
    return body


def body_extent(body: int, client: int) -> tuple[float, float, float]:
    """Return (half_height above the base origin's z, base z offset, footprint radius)."""
    lo, hi = p.getAABB(body, -1, physicsClientId=client)
    pos, _ = p.getBasePositionAndOrientation(body, physicsClientId=client)
    radius = math.hypot(max(hi[0] - pos[0], pos[0] - lo[0]), max(hi[1] - pos[1], pos[1] - lo[1]))
    return hi[2] - lo[2], pos[2] - lo[2], radius


def scatter_objects(spec, surfaces, blocked_rects, rng: np.random.Generator,
                    client: int) -> tuple[list[SpawnedObject], list[str]]:
    """Sample and place the objects of an ObjectSpec on the matching support surfaces.

    `surfaces` are world.Surface records; floor placements avoid `blocked_rects` (cx, cy, hx,
    hy). Objects that find no free spot in 60 tries are removed and their names returned.
    """
    descs = [sample_object(cat, i, rng) for cat in spec.categories
             for i in range(spec.instances_per_category)]
    descs += [sample_object('distractor', i, rng) for i in range(spec.distractors)]
    usable = [s for s in surfaces if s.kind in spec.surfaces
              and (not spec.rooms or s.room in spec.rooms)]
    placed, unplaced = [], []
    for k, desc in enumerate(descs):
        body = spawn_object(desc, client, (-50.0 - 2.0 * k, -50.0, 1.0), 0.0)
        height, z_offset, radius = body_extent(body, client)
        spot = None
        fits = [s for s in usable if height < s.clearance
                and min(s.half) > 0.6 * radius]
        for _ in range(60 if fits else 0):
            surf = fits[int(rng.integers(len(fits)))]
            mx, my = max(surf.half[0] - 0.6 * radius, 0.0), max(surf.half[1] - 0.6 * radius, 0.0)
            x = surf.center[0] + float(rng.uniform(-mx, mx))
            y = surf.center[1] + float(rng.uniform(-my, my))
            if any(math.hypot(x - o.extra['xy'][0], y - o.extra['xy'][1])
                   < 0.6 * (radius + o.radius) and abs(o.extra['z'] - surf.z) < 0.05
                   for o in placed):
                continue
            if surf.kind == 'floor' and any(abs(x - r[0]) < r[2] + radius
                                            and abs(y - r[1]) < r[3] + radius
                                            for r in blocked_rects):
                continue
            spot = (surf, x, y)
            break
        if spot is None:
            p.removeBody(body, physicsClientId=client)
            unplaced.append(desc.name)
            continue
        surf, x, y = spot
        yaw = float(rng.uniform(-math.pi, math.pi))
        p.resetBasePositionAndOrientation(body, (x, y, surf.z + z_offset + 0.003),
                                          p.getQuaternionFromEuler((0.0, 0.0, yaw)),
                                          physicsClientId=client)
        placed.append(SpawnedObject(desc, body, height, radius, surf.kind, surf.room,
                                    {'xy': (x, y), 'z': surf.z}))
    return placed, unplaced
