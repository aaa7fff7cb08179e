"""`embodied-aif bench mission`: the main job over many seeds and two building layouts.

Each run is `embodied-aif demo` in a subprocess (the whole stack, a process per node,
headless) on one seed: explore, map, perceive (exploring on for up to the demo's default
`--search-s` while no object to fetch is seen), plan the default task with the default
preference, select, execute for several episodes while learning costs. The default task is a
fetch: bring a perceived mug, can, bottle or box (the demo's `--fetch` categories, the first
perception offers graspable and reachable) to the farthest table in reach outside the hazard
room (`F obj_N_on_place_M & G !in_hazard`, chosen again each episode from where it is now);
when perception offers no such object and table (at the start, or for a later episode once
every choice has failed), the demo falls back to reaching the farthest place outside the
hazard room (`F at_place_N & G !in_hazard`). Layouts: the default 2x2 building and an unseen
3x3 one (grid3x3, never used to tune anything). Reported:

- success_rate / success_rate_unseen_layout: episodes whose task holds, over all episodes
  (a fetch episode succeeds only if the simulator's object really stands on the table);
- fetch_rate: the fraction of episodes that were fetches (the rest fell back to moves);
  fetch_success_rate: succeeded fetches over fetch episodes; fetch_true_category_rate: of
  the fetched objects, the fraction that really were of the asked category;
- dfa_violations: episodes whose ground-truth robot trail entered the hazard room (the
  simulator's room topic, independent of the agent's own labels) — must be 0;
- mean_episode_time_s: realised time of successful episodes;
- pareto_regret: per episode, the smallest eps such that the realised cost vector minus eps
  is not dominated by the realised costs of the other episodes of the same run (normalised by
  each objective's mean), averaged: how far the choices were from the best seen trade-offs;
- demo_wall_s: median wall-clock of one demo run (the README's main job on defaults runs
  longer: 150 s of exploration and 3 episodes);
- runs: per-run summaries (seed, layout, places, episodes, failures and their reasons);
  `--keep DIR` leaves each run's whole output and log for a closer look.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from embodied_aif.bench._common import make_parser, progress, run_benchmark

LAYOUTS = {'default': 'default', 'unseen': 'grid3x3'}


def empirical_regret(costs: np.ndarray) -> list[float]:
    """Per row: smallest eps >= 0 such that row - eps is dominated by no other row (scaled)."""
    costs = np.asarray(costs, dtype=float)
    if len(costs) < 2:
        return [0.0] * len(costs)
    scale = np.maximum(np.abs(costs).mean(axis=0), 1e-9)
    z = costs / scale
    out = []
    for i, row in enumerate(z):
        others = np.delete(z, i, axis=0)
        # row - eps is dominated by o iff o <= row - eps everywhere: eps <= min(row - o)
        out.append(float(max(0.0, np.max(np.min(row - others, axis=1)))))
    return out


def run_demo(scenario: str, seed: int, explore_s: float, episodes: int, speed: float,
             timeout_s: float, keep: Path | None = None) -> dict:
    """One demo run in a subprocess; its summary (or the failure) as a dict.

    ``keep``: a directory to leave the run's output in (summary, plots, recording, and its
    log as ``demo.log``), as ``<scenario>-<seed>``; by default it goes with a temporary one.
    """
    with tempfile.TemporaryDirectory(prefix='mission-') as tmp:
        out = Path(tmp) if keep is None else Path(keep) / f'{scenario}-{seed}'
        cmd = [sys.executable, '-m', 'embodied_aif.cli.main', 'demo', '--scenario', scenario,
               '--seed', str(seed), '--explore-s', str(explore_s), '--episodes',
               str(episodes), '--speed', str(speed), '--out', str(out)]
        env = dict(os.environ)
        env['ROS_DOMAIN_ID'] = str(100 + seed % 100)
        env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  env=env)
            log = proc.stderr
        except subprocess.TimeoutExpired as exc:  # what it printed so far says where it was
            log = exc.stderr or b''
            log = log.decode(errors='replace') if isinstance(log, bytes) else log
            proc = None
        if keep is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / 'demo.log').write_text(log)
        if proc is None:
            return {'error': f'timed out after {timeout_s:.0f} s; its last output: '
                             f'{log[-500:]}'}
        path = out / 'summary.json'
        if not path.exists():
            return {'error': f'exit {proc.returncode}: {log[-500:]}'}
        return json.loads(path.read_text())


def measure(args) -> dict:
    """Run the demo over seeds and layouts; aggregate."""
    explore_s, episodes = (40.0, 2) if args.quick else (80.0, 3)
    seeds = list(args.seeds)[:1] if args.quick else list(args.seeds)
    figures, runs, walls, times, regrets, violations = {}, [], [], [], [], 0
    fetches = []
    for layout, scenario in LAYOUTS.items():
        successes = total = 0
        for seed in seeds:
            summary = run_demo(scenario, seed, explore_s, episodes, args.speed,
                               args.run_timeout, args.keep)
            eps = summary.get('episodes', [])
            ok = [e for e in eps if e.get('success')]
            total += episodes  # an episode that never ran counts as a failure
            successes += len(ok)
            violations += sum(bool(a.get('entered_hazard')) for e in eps
                              for a in [e, *e.get('earlier_attempts', [])])
            fetches += [e for e in eps if 'fetch' in e]
            times += [e['realised'][0] for e in ok if e.get('realised')]
            realised = [e['realised'] for e in eps if len(e.get('realised', [])) == 3]
            regrets += empirical_regret(np.array(realised)) if realised else []
            if 'wall_s' in summary:
                walls.append(summary['wall_s'])
            run = {'layout': layout, 'seed': seed, 'succeeded': len(ok), 'episodes': len(eps),
                   'task': summary.get('stages', {}).get('fetch', ''),
                   'places': summary.get('map', {}).get('places', 0),
                   'wall_s': summary.get('wall_s'),
                   'failures': [e.get('reason', '') for e in eps if not e.get('success')]}
            if 'error' in summary or len(eps) < episodes:
                run['error'] = summary.get('error') or summary.get('stages', {}).get('task', '')
            runs.append(run)
            progress(f"mission {layout} seed {seed}: {len(ok)}/{episodes} episodes, "
                     f"wall {summary.get('wall_s')} s {run.get('error', '')}")
        key = 'success_rate' if layout == 'default' else 'success_rate_unseen_layout'
        figures[key] = successes / max(total, 1)
    n_runs = len(LAYOUTS) * len(seeds) * episodes
    figures.update({
        'fetch_rate': len(fetches) / max(n_runs, 1),
        'fetch_success_rate': (sum(bool(e.get('success')) for e in fetches) / len(fetches)
                               if fetches else None),
        'fetch_true_category_rate': (
            sum(e['fetch']['true_category'] == e['fetch']['category'] for e in fetches)
            / len(fetches)
            if fetches else None),
        'dfa_violations': violations,
        'mean_episode_time_s': statistics.fmean(times) if times else None,
        'pareto_regret': statistics.fmean(regrets) if regrets else None,
        'demo_wall_s': statistics.median(walls) if walls else None,
        'explore_s': explore_s, 'episodes_per_run': episodes, 'speed': args.speed,
        'runs': runs, 'seeds': f'{seeds[0]}:{seeds[-1] + 1}',
    })
    return figures


def main(argv=None) -> int:
    """Entry point of `embodied-aif bench mission`."""
    parser = make_parser('mission', __doc__.splitlines()[0], '0:20')
    parser.add_argument('--speed', type=float, default=3.0,
                        help='simulated seconds per wall second of each demo (default 3)')
    parser.add_argument('--run-timeout', type=float, default=900.0,
                        help='wall seconds allowed per demo run (default 900)')
    parser.add_argument('--keep', type=Path,
                        help='leave each run\'s output here (DIR/<scenario>-<seed>: summary, '
                             'plots, recording, demo.log); default: none is kept')
    return run_benchmark(measure, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
