"""Drive the simulated robot headless and record image/pose/action trajectories (world model).

Example: ``embodied-aif collect trajectories --scenario default --episodes 24 --steps 200
--out /tmp/wm_data/default``. Format: docs/world_model.md.
"""
import argparse
import json
import sys
import time

from embodied_aif.sim.trajectories import DEFAULT_FOV_DEG, CollectConfig, collect


def main(argv=None) -> int:
    """Parse arguments, collect, print the manifest summary as JSON; 0 on success."""
    parser = argparse.ArgumentParser(prog='embodied-aif collect trajectories',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--scenario', default='default', help='scenario name or YAML path')
    parser.add_argument('--episodes', type=int, default=8, help='number of episodes')
    parser.add_argument('--steps', type=int, default=200, help='actions per episode')
    parser.add_argument('--out', required=True, help='output directory (must be empty)')
    parser.add_argument('--seed', type=int, default=0, help='run seed (worlds and explorer)')
    parser.add_argument('--image-size', type=int, default=64, help='square image side (px)')
    parser.add_argument('--action-period', type=float, default=0.5,
                        help='seconds each (linear, angular) command is held')
    parser.add_argument('--episodes-per-shard', type=int, default=4)
    parser.add_argument('--fov', type=float, default=DEFAULT_FOV_DEG,
                        help='field of view of the square camera at the head camera pose '
                             '(deg, default 90)')
    parser.add_argument('--retextured', action='store_true',
                        help='also render every step with random wall and floor looks '
                             '(images_retextured, for training texture-blind place codes)')
    parser.add_argument('--retexture-every', type=int, default=10,
                        help='steps between new random looks (with --retextured)')
    args = parser.parse_args(argv)
    try:
        config = CollectConfig(scenario=args.scenario, episodes=args.episodes, steps=args.steps,
                               seed=args.seed, image_size=args.image_size, fov_deg=args.fov,
                               action_period=args.action_period,
                               episodes_per_shard=args.episodes_per_shard,
                               retextured=args.retextured,
                               retexture_every=args.retexture_every)
    except ValueError as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    try:
        manifest = collect(config, args.out,
                           progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (OSError, ValueError) as exc:
        print(f'embodied-aif collect trajectories: error: {exc}', file=sys.stderr)
        return 1
    wall = time.perf_counter() - start
    sim_time = config.episodes * config.steps * config.action_period
    print(json.dumps({'out': args.out, 'shards': len(manifest['shards']),
                      'episodes': config.episodes, 'steps': config.steps,
                      'wall_s': round(wall, 2), 'sim_s': sim_time,
                      'speedup_vs_real_time': round(sim_time / max(wall, 1e-9), 1)}))
    return 0
