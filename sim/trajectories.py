"""Headless trajectory collection for the learned world model (no ROS).

A scripted explorer drives the simulated base: it picks a random free goal anywhere in the
building, follows the shortest grid path to it with a noisy heading controller, takes random
actions now and then, and backs off and turns after a collision. Every action is a base
velocity ``(linear, angular)`` held for ``action_period`` seconds; the head camera is rendered
only once per action period (before the action), at a small resolution, so collection runs far
faster than real time.

On disk (documented in docs/world_model.md): shards ``shard_XXXXX.npz``, each holding
``episodes_per_shard`` episodes of equal length T::

    images      uint8   (E, T, H, W, 3)   head camera before action t
    poses       float32 (E, T, 3)         true base pose (x, y, yaw) when images[t] was taken
    actions     float32 (E, T, 2)         (linear m/s, angular rad/s) applied after images[t]
    collisions  bool    (E, T)            the base was blocked during action t
    rooms       int16   (E, T, 2)         true (row, col) room of poses[t] (-1 outside)
    world_seeds int64   (E,)              Simulation seed of each episode

and, when collected with ``retextured`` (optional; data without it stays valid)::

    images_retextured uint8 (E, T, H, W, 3)  the same camera pose as images[t], every wall
                                             and floor wearing a random look (sim/textures.py)

plus ``manifest.json`` (format name and version, settings, one entry per shard with its
SHA-256). :func:`load_trajectories` verifies the checksums.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from embodied_aif.sim.sensors import CameraConfig
from embodied_aif.sim.simulation import Limits, Rates, Simulation
from embodied_aif.sim.textures import Retexturer, random_looks

#: Field of view of the square training camera (at the head camera's pose). Wide: the head
#: camera itself (60 deg, pitched down for table tops) sees mostly floor, and models trained
#: on its view recognised places from goal images about half as often (docs/world_model.md).
DEFAULT_FOV_DEG = 90.0

FORMAT = 'embodied_aif.trajectories'
VERSION = 1
GRID_RES = 0.05  # metres per cell of World.clearance (sim/world.py)


@dataclass(frozen=True)
class CollectConfig:
    """Settings of one collection run (all recorded in the manifest)."""

    scenario: str = 'default'
    episodes: int = 8
    steps: int = 200
    seed: int = 0
    image_size: int = 64
    fov_deg: float = DEFAULT_FOV_DEG
    action_period: float = 0.5
    episodes_per_shard: int = 4
    max_linear: float = 0.6
    max_angular: float = 1.2
    random_action_prob: float = 0.15
    linear_noise: float = 0.08
    angular_noise: float = 0.25
    retextured: bool = False
    retexture_every: int = 10

    def __post_init__(self):
        for name in ('episodes', 'steps', 'image_size', 'episodes_per_shard',
                     'retexture_every'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        if not 8 <= self.image_size <= 256:
            raise ValueError(f'image_size must be in [8, 256], got {self.image_size}')
        if not 10.0 <= self.fov_deg <= 150.0:
            raise ValueError(f'fov_deg must be in [10, 150], got {self.fov_deg!r}')
        if not isinstance(self.retextured, bool):
            raise ValueError(f'retextured must be True or False, got {self.retextured!r}')
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f'seed must be a non-negative integer, got {self.seed!r}')
        if not 0.05 <= self.action_period <= 5.0:
            raise ValueError(f'action_period must be in [0.05, 5] s, got {self.action_period}')
        if not 0.0 <= self.random_action_prob <= 1.0:
            raise ValueError(f'random_action_prob must be in [0, 1], got '
                             f'{self.random_action_prob}')

    def world_seed(self, episode: int) -> int:
        """Simulation seed of an episode (distinct worlds per episode and per run seed)."""
        return self.seed * 100_003 + episode

    def texture_rng(self, episode: int) -> np.random.Generator:
        """Generator of an episode's random wall and floor looks.

        Apart from the explorer's generator, so that the recorded images and actions are the
        same with and without ``retextured``.
        """
        return np.random.default_rng([self.seed, episode, 0x7E7])


def make_simulation(scenario: str, seed: int, image_size: int = 64,
                    fov_deg: float = DEFAULT_FOV_DEG, physics_hz: float = 120.0) -> Simulation:
    """A Simulation with no periodic sensors and a small square head camera.

    The base is kinematic and the arm only holds its home pose, so a coarser physics step
    than the default 240 Hz changes nothing the camera sees and halves the cost.
    """
    camera = CameraConfig('head_camera_optical_frame', image_size, image_size, fov_deg)
    return Simulation(scenario, seed, rates=Rates(physics_hz=physics_hz, control_hz=60.0,
                                                 head_camera_hz=0.0, wrist_camera_hz=0.0,
                                                 scan_hz=0.0),
                      limits=Limits(cmd_timeout=0.0), cameras={'head_camera': camera},
                      settle_s=0.0)


class _Planner:
    """Shortest 4-connected grid paths over cells with enough clearance for the base."""

    def __init__(self, clearance: np.ndarray, radius: float):
        self.free = clearance >= radius
        h, w = self.free.shape
        idx = np.arange(h * w).reshape(h, w)
        rows, cols = [], []
        for a, b in ((self.free[:, :-1] & self.free[:, 1:], (idx[:, :-1], idx[:, 1:])),
                     (self.free[:-1, :] & self.free[1:, :], (idx[:-1, :], idx[1:, :]))):
            rows.append(b[0][a])
            cols.append(b[1][a])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        self.graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)),
                                       shape=(h * w, h * w)).tocsr()
        self.shape = (h, w)

    def cell(self, x: float, y: float) -> tuple[int, int]:
        return int(math.floor(y / GRID_RES)), int(math.floor(x / GRID_RES))

    def path(self, start, goal) -> list[tuple[float, float]] | None:
        """World waypoints (every ~0.4 m) from start to goal, or None if unreachable."""
        h, w = self.shape
        si, sj = self.cell(*start)
        gi, gj = self.cell(*goal)
        if not (0 <= si < h and 0 <= sj < w and self.free[gi, gj]):
            return None
        if not self.free[si, sj]:  # start in a tight spot: begin at the nearest free cell
            ii, jj = np.nonzero(self.free)
            k = int(np.argmin((ii - si) ** 2 + (jj - sj) ** 2))
            si, sj = int(ii[k]), int(jj[k])
        s, g = si * w + sj, gi * w + gj
        _, pred = csgraph.dijkstra(self.graph, directed=False, indices=s,
                                   return_predecessors=True, unweighted=True)
        if pred[g] < 0 and g != s:
            return None
        cells = [g]
        while cells[-1] != s:
            cells.append(int(pred[cells[-1]]))
        cells.reverse()
        pts = [((c % w + 0.5) * GRID_RES, (c // w + 0.5) * GRID_RES) for c in cells]
        return pts[::8][1:] + [pts[-1]]


class Explorer:
    """Random goal-directed wandering with action noise and collision recovery."""

    def __init__(self, sim: Simulation, config: CollectConfig, rng: np.random.Generator):
        self.sim, self.config, self.rng = sim, config, rng
        radius = sim.robot_config.footprint_radius
        self.planner = _Planner(sim.world.clearance, radius + 0.1)
        ii, jj = np.nonzero(sim.world.clearance >= radius + 0.3)
        self.goal_cells = np.stack([(jj + 0.5) * GRID_RES, (ii + 0.5) * GRID_RES], axis=1)
        self.waypoints: list = []
        self.recover = 0
        self.recover_turn = 0.0
        self.since_goal = 0

    def _new_goal(self, pose) -> None:
        for _ in range(20):
            goal = self.goal_cells[int(self.rng.integers(len(self.goal_cells)))]
            path = self.planner.path(pose[:2], goal)
            if path:
                self.waypoints, self.since_goal = path, 0
                return
        self.waypoints = []

    def act(self, pose, blocked: bool) -> tuple[float, float]:
        """The next (linear, angular) command for the current pose and collision flag."""
        cfg, rng = self.config, self.rng
        if blocked:
            self.recover = 2
            self.recover_turn = float(rng.choice([-1.0, 1.0])) * cfg.max_angular
            self.waypoints = []
        if self.recover > 0:
            self.recover -= 1
            return -0.2, self.recover_turn
        if rng.random() < cfg.random_action_prob:
            return (float(rng.uniform(-0.1, cfg.max_linear)),
                    float(rng.uniform(-cfg.max_angular, cfg.max_angular)))
        x, y, yaw = pose
        while self.waypoints and math.hypot(self.waypoints[0][0] - x,
                                            self.waypoints[0][1] - y) < 0.3:
            self.waypoints.pop(0)
        self.since_goal += 1
        if not self.waypoints or self.since_goal > 60:
            self._new_goal(pose)
            if not self.waypoints:
                return 0.0, cfg.max_angular
        tx, ty = self.waypoints[0]
        err = math.atan2(math.sin(math.atan2(ty - y, tx - x) - yaw),
                         math.cos(math.atan2(ty - y, tx - x) - yaw))
        w = float(np.clip(2.0 * err, -cfg.max_angular, cfg.max_angular))
        v = cfg.max_linear * max(0.0, math.cos(err)) ** 4
        v += float(rng.normal(0.0, cfg.linear_noise))
        w += float(rng.normal(0.0, cfg.angular_noise))
        return (float(np.clip(v, -0.2, cfg.max_linear)),
                float(np.clip(w, -cfg.max_angular, cfg.max_angular)))


def run_episode(sim: Simulation, config: CollectConfig, rng: np.random.Generator,
                texture_rng: np.random.Generator | None = None) -> dict:
    """Drive one episode of `config.steps` actions; return its arrays (see module docstring).

    With ``config.retextured`` each step is rendered a second time from the same pose with
    every wall and floor wearing random looks (``images_retextured``), a new draw from
    `texture_rng` every ``config.retexture_every`` steps; the world's own looks are put back
    before the next step.
    """
    period = int(round(config.action_period * sim.rates.physics_hz))
    explorer = Explorer(sim, config, rng)
    t_max, size = config.steps, config.image_size
    out = {'images': np.zeros((t_max, size, size, 3), np.uint8),
           'poses': np.zeros((t_max, 3), np.float32),
           'actions': np.zeros((t_max, 2), np.float32),
           'collisions': np.zeros(t_max, bool),
           'rooms': np.full((t_max, 2), -1, np.int16)}
    retexturer = None
    if config.retextured:
        if texture_rng is None:
            raise ValueError('retextured collection needs a texture_rng')
        retexturer = Retexturer(sim)
        out['images_retextured'] = np.zeros((t_max, size, size, 3), np.uint8)
    blocked = False
    looks = None
    for t in range(t_max):
        pose = sim.base_pose()
        out['images'][t] = sim.render('head_camera').rgb
        if retexturer is not None:
            if t % config.retexture_every == 0:
                looks = random_looks(sim.world, texture_rng)
            with retexturer.swapped(looks):
                out['images_retextured'][t] = sim.render('head_camera').rgb
        out['poses'][t] = pose
        room = sim.world.room_of(pose[0], pose[1])
        if room is not None:
            out['rooms'][t] = room
        v, w = explorer.act(pose, blocked)
        result = sim.set_base_velocity(v, w)
        out['actions'][t] = result.value
        blocked = False
        for _ in range(period):
            sim.step()
            blocked |= sim.base_blocked
        out['collisions'][t] = blocked
    sim.set_base_velocity(0.0, 0.0)
    return out


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def collect(config: CollectConfig, out_dir: str | Path,
            progress: Callable[[str], None] | None = None) -> dict:
    """Collect `config.episodes` episodes into shards under out_dir; return the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / 'manifest.json').exists():
        raise FileExistsError(f'{out / "manifest.json"} exists; choose an empty --out')
    rng = np.random.default_rng(config.seed)
    sim = make_simulation(config.scenario, config.world_seed(0), config.image_size,
                          config.fov_deg)
    shards, buffer, first = [], [], 0
    try:
        for ep in range(config.episodes):
            sim.reset(seed=config.world_seed(ep))
            data = run_episode(sim, config, np.random.default_rng(rng.integers(2 ** 63)),
                               config.texture_rng(ep))
            data['world_seed'] = config.world_seed(ep)
            buffer.append(data)
            if progress:
                progress(f'episode {ep + 1}/{config.episodes}: {int(data["collisions"].sum())} '
                         f'collisions, rooms visited '
                         f'{len({tuple(r) for r in data["rooms"].tolist()})}')
            if len(buffer) == config.episodes_per_shard or ep == config.episodes - 1:
                name = f'shard_{len(shards):05d}.npz'
                arrays = {k: np.stack([d[k] for d in buffer]) for k in
                          ('images', 'poses', 'actions', 'collisions', 'rooms',
                           'images_retextured') if k in buffer[0]}
                arrays['world_seeds'] = np.array([d['world_seed'] for d in buffer], np.int64)
                np.savez_compressed(out / name, **arrays)
                shards.append({'file': name, 'sha256': sha256(out / name),
                               'episodes': len(buffer), 'first_episode': first,
                               'world_seeds': arrays['world_seeds'].tolist()})
                first += len(buffer)
                buffer = []
    finally:
        sim.close()
    manifest = {'format': FORMAT, 'version': VERSION, 'config': asdict(config),
                'steps_per_episode': config.steps, 'episodes': config.episodes,
                'image_shape': [config.image_size, config.image_size, 3],
                'physics_hz': sim.rates.physics_hz, 'shards': shards}
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=2))
    return manifest


class DatasetError(ValueError):
    """A trajectory directory is missing, malformed or fails its checksums."""


def load_manifest(data_dir: str | Path) -> dict:
    """Read and check manifest.json of a trajectory directory."""
    path = Path(data_dir) / 'manifest.json'
    if not path.is_file():
        raise DatasetError(f'{path}: no manifest (collect with `embodied-aif collect '
                           f'trajectories --out {data_dir}`)')
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f'{path}: not valid JSON ({exc})') from None
    if manifest.get('format') != FORMAT or manifest.get('version') != VERSION:
        raise DatasetError(f'{path}: format {manifest.get("format")!r} version '
                           f'{manifest.get("version")!r}, expected {FORMAT!r} version {VERSION}')
    return manifest


def load_trajectories(data_dir: str | Path, verify: bool = True) -> dict:
    """Load every shard (checksums verified) into arrays with a leading episode axis."""
    manifest = load_manifest(data_dir)
    parts = []
    for shard in manifest['shards']:
        path = Path(data_dir) / shard['file']
        if not path.is_file():
            raise DatasetError(f'{path}: shard listed in the manifest is missing')
        if verify and sha256(path) != shard['sha256']:
            raise DatasetError(f'{path}: checksum mismatch (file corrupt or changed)')
        with np.load(path) as z:
            parts.append({k: z[k] for k in z.files})
    if not parts:
        raise DatasetError(f'{data_dir}: the manifest lists no shards')
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    data['manifest'] = manifest
    return data


def trace_actions(world, pose, actions: np.ndarray, action_period: float, radius: float,
                  physics_hz: float = 240.0) -> tuple[np.ndarray, np.ndarray]:
    """Replay (linear, angular) actions from a pose with the sim's kinematic base model.

    Returns the pose after each action (H, 3) and whether any step so far was blocked (H,)
    (clearance below `radius`, the rule of the simulator's base motion); ground truth for
    imagined links.
    """
    x, y, yaw = (float(v) for v in pose)
    dt = 1.0 / physics_hz
    n = int(round(action_period * physics_hz))
    acts = np.asarray(actions, dtype=float).reshape(-1, 2)
    poses = np.zeros((len(acts), 3))
    blocked = np.zeros(len(acts), bool)
    blocked_any = False
    for k, (v, w) in enumerate(acts):
        for _ in range(n):
            nyaw = yaw + w * dt
            if abs(w) > 1e-9:
                nx = x + v / w * (math.sin(nyaw) - math.sin(yaw))
                ny = y - v / w * (math.cos(nyaw) - math.cos(yaw))
            else:
                nx, ny = x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw)
            here, there = world.clearance_at(x, y), world.clearance_at(nx, ny)
            if there < radius and there <= here and (nx, ny) != (x, y):
                blocked_any = True
                nx, ny = x, y
            x, y, yaw = nx, ny, math.atan2(math.sin(nyaw), math.cos(nyaw))
        poses[k] = (x, y, yaw)
        blocked[k] = blocked_any
    return poses, blocked


def integrate_actions(world, pose, actions: np.ndarray, action_period: float,
                      radius: float, physics_hz: float = 240.0) -> tuple[np.ndarray, bool]:
    """End pose after replaying actions (see :func:`trace_actions`) and whether any was blocked."""
    poses, blocked = trace_actions(world, pose, actions, action_period, radius, physics_hz)
    if not len(poses):
        return np.asarray(pose, dtype=float), False
    return poses[-1], bool(blocked[-1])
