"""`embodied-aif demo`: the main job: the stack in simulation, on defaults, with a JSON summary.

It composes the nodes of config/sim.yaml in this process (one MultiThreadedExecutor, headless,
at --speed times real time), then plays the mission with what the stack has:
  1. explore and map (when the stack has `navigator` and `cognitive_map`),
  2. pose a task (LTLf) and a preference: the task planner publishes the Pareto set, the
     selector picks a plan,
  3. execute the plan's moves through the Navigate action, measure each step's realised cost
     (time from the sim clock, energy from the distance driven, risk from obstacle proximity),
     report PlanOutcome so costs are learned, and repeat for several episodes.
Whatever a stage needs and the stack lacks is skipped and said so. Results: a JSON summary on
stdout (progress on stderr); summary.json, PNG plots and an MCAP recording of the topics
(camera images excluded; readable by ROS 2 bag tools and Foxglove) in --out.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np

from embodied_aif.cli.stack import StackError, default_config_dir, load_stack, validate

DEFAULT_PREFERENCE = {'objectives': ['time', 'energy', 'risk'], 'mean': [20.0, 8.0, 0.2],
                      'covariance': [[100.0, 0, 0], [0, 25.0, 0], [0, 0, 1.0]],
                      'epistemic_weight': 1.0}


def log(message: str) -> None:
    """Progress on stderr."""
    print(f'[demo] {message}', file=sys.stderr, flush=True)


def _compose_stack(args):
    stack = load_stack(args.config, use_sim_time=True)
    for entry in stack.nodes:
        if entry.name == 'sim_bridge':
            entry.parameters.update(scenario=args.scenario, seed=args.seed,
                                    real_time_factor=args.speed,
                                    wrist_camera_rate=0.0)
    validate(stack)
    return stack


def _farthest_place(cmap) -> int:
    start = cmap.places[0].pose.position
    return max(cmap.places, key=lambda p: math.hypot(p.pose.position.x - start.x,
                                                     p.pose.position.y - start.y)).id


def play(args, op, names: set, summary: dict) -> None:
    """The mission, stage by stage, with what the stack has (op: the demo's Operator)."""
    from embodied_aif.cli._operator import preference_msg
    from embodied_aif_msgs.msg import PlanOutcome, TaskSpec

    stages = summary['stages']
    if not op.wait_sim(lambda: op.clock > 0.5, 5.0, wall_limit=120):
        raise RuntimeError('the simulator published no /clock: sim_bridge did not start')
    stages['simulation'] = f'scenario {args.scenario!r} seed {args.seed}: running'
    has_nav = {'navigator', 'cognitive_map'} <= names
    if has_nav:
        log(f'exploring for up to {args.explore_s:.0f} s of simulated time')
        op.wait_sim(lambda: False, args.explore_s, wall_limit=args.explore_s * 3 + 60)
        n_places = len(op.map.places) if op.map else 0
        stages['exploration'] = (f'{n_places} places, rooms visited: {sorted(op.rooms)}')
        summary['map'] = {'places': n_places, 'edges': len(op.map.edges) if op.map else 0,
                          'rooms_visited': sorted(op.rooms)}
    else:
        stages['exploration'] = 'skipped: the stack has no navigator/cognitive_map yet'
    if not {'task_planner', 'plan_selector'} <= names:
        stages['task'] = 'skipped: the stack has no task_planner/plan_selector'
        return
    if op.map is None or not op.map.places:
        stages['task'] = 'skipped: no cognitive map to plan on'
        return
    formula = args.task or f'F at_place_{_farthest_place(op.map)}'
    preference = json.loads(Path(args.preference).read_text()) if args.preference \
        else DEFAULT_PREFERENCE
    op.pub_pref.publish(preference_msg(preference))
    op.pub_task.publish(TaskSpec(id='demo', formula=formula))
    if not op.wait_sim(lambda: op.selected is not None, 30.0, wall_limit=120):
        why = op.plans.reason if op.plans else 'no plans'
        stages['task'] = f'task {formula!r}: no plan selected ({why})'
        return
    stages['task'] = f'task {formula!r}: {len(op.plans.plans)} Pareto plans'
    summary['task'] = {'formula': formula, 'preference': preference,
                       'front': [list(p.expected_cost) for p in op.plans.plans]}
    episodes = []
    home = op.map.current_place
    for episode in range(args.episodes):
        plan = op.selected
        record = {'episode': episode, 'plan': plan.id, 'predicted': list(plan.expected_cost),
                  'steps': [], 'success': True}
        log(f'episode {episode}: plan {plan.id} predicted cost {np.round(plan.expected_cost, 2)}')
        for k, step in enumerate(plan.steps):
            if step.action != 'move':
                continue
            target = int(step.target.split('_')[-1])
            ok, reason, cost = op.navigate_to_place(target, args.step_timeout_s)
            record['steps'].append({'target': step.target, 'success': ok, 'reason': reason,
                                    'cost': cost})
            outcome = PlanOutcome(plan_id=plan.id, step_index=k, step=step,
                                                  objectives=['time', 'energy', 'risk'],
                                                  realised_cost=cost or [0.0, 0.0, 0.0],
                                                  success=ok, reason=reason)
            outcome.header.stamp = op.node.get_clock().now().to_msg()
            op.pub_outcome.publish(outcome)
            if not ok:
                record['success'] = False
                break
        record['realised'] = [sum(s['cost'][i] for s in record['steps'] if s['cost'])
                              for i in range(3)]
        episodes.append(record)
        if episode + 1 < args.episodes:  # go back to the start place for the next episode
            op.navigate_to_place(home, args.step_timeout_s)
            op.wait_sim(lambda: False, 2.0)
    summary['episodes'] = episodes
    stages['execution'] = (f'{sum(e["success"] for e in episodes)}/{len(episodes)} episodes '
                           f'succeeded')


def plot(out: Path, op, summary: dict) -> list[str]:
    """PNG plots: trajectory with the map; the Pareto front with the chosen plans."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(6, 6))
    if op.truth_path:
        path = np.array(op.truth_path)
        ax.plot(path[:, 1], path[:, 2], lw=1, label='robot (ground truth, world frame)')
    if op.map is not None and op.map.places:
        xy = np.array([[p.pose.position.x, p.pose.position.y] for p in op.map.places])
        ax.scatter(xy[:, 0], xy[:, 1], c='tab:green', s=20, label='places (odom frame)')
    ax.set_aspect('equal')
    ax.legend(loc='upper right', fontsize=7)
    ax.set_title('trajectory and cognitive map')
    fig.savefig(out / 'map_trajectory.png', dpi=100)
    plt.close(fig)
    files.append('map_trajectory.png')
    if summary.get('task', {}).get('front'):
        front = np.array(summary['task']['front'])
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(front[:, 0], front[:, 1], label='Pareto plans (predicted)')
        for e in summary.get('episodes', []):
            ax.scatter(*e['predicted'][:2], marker='x', c='tab:red')
            ax.annotate(str(e['episode']), e['predicted'][:2], fontsize=7)
        ax.set_xlabel('time (s)')
        ax.set_ylabel('energy')
        ax.legend(fontsize=7)
        fig.savefig(out / 'pareto_front.png', dpi=100)
        plt.close(fig)
        files.append('pareto_front.png')
    return files


def run(args: argparse.Namespace) -> int:
    """Compose the stack, play the mission, write the summary and plots."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from embodied_aif.cli._operator import Operator
    from embodied_aif.cli.run import compose
    from embodied_aif.nodes.recorder import Recorder

    try:
        stack = _compose_stack(args)
    except StackError as exc:
        print(f'embodied-aif demo: error: {exc}', file=sys.stderr)
        return 2
    out = Path(args.out or f'runs/demo-{time.strftime("%Y%m%d-%H%M%S")}')
    out.mkdir(parents=True, exist_ok=True)
    names = {e.name for e in stack.nodes}
    summary = {'stack': sorted(names), 'scenario': args.scenario, 'seed': args.seed,
               'stages': {}, 'not_yet_in_the_stack': sorted(
                   {'perception', 'cognitive_map', 'navigator', 'active_vision',
                    'manipulator', 'executive'} - names)}
    wall0 = time.monotonic()
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    try:
        nodes = compose(stack, context)
        recorder = Recorder(context=context, parameter_overrides=[
            Parameter('path', value=str(out / 'recording.mcap')),
            Parameter('exclude', value=[f'/{cam}/{kind}' for cam in ('head_camera', 'wrist_camera')
                                        for kind in ('color/image_raw', 'depth/image_rect')]),
            Parameter('use_sim_time', value=True)])
        nodes.append(recorder)
        op = Operator(context)
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in [*nodes, op.node]:
            executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        try:
            play(args, op, names, summary)
        except RuntimeError as exc:
            summary['error'] = str(exc)
        summary['sim_time_s'] = round(op.clock, 2)
        summary['distance_m'] = round(op.distance, 2)
        summary['plots'] = plot(out, op, summary)
        executor.shutdown()
        op.node.destroy_node()
        summary['recording'] = {'path': str(recorder.mcap.path),
                                'messages': dict(sorted(recorder.mcap.counts.items()))}
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    summary['wall_s'] = round(time.monotonic() - wall0, 1)
    summary['output'] = str(out)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    for stage, what in summary['stages'].items():
        log(f'{stage}: {what}')
    print(json.dumps(summary))
    return 1 if 'error' in summary else 0


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser(
        'demo', help='the main job: the whole stack in simulation, with a JSON summary',
        description='Run the stack of config/sim.yaml in simulation (headless, composed in one '
                    'process): explore and map, plan a task over the map (Pareto set), select a '
                    'plan by active inference, execute it for several episodes while learning '
                    'costs. Prints a JSON summary; writes summary.json and PNG plots to --out.')
    parser.add_argument('--config', default=str(default_config_dir() / 'sim.yaml'),
                        help='stack file (default config/sim.yaml)')
    parser.add_argument('--scenario', default='default', help='simulator scenario')
    parser.add_argument('--seed', type=int, default=0, help='seed of world and noise')
    parser.add_argument('--task', help="LTLf task (default: 'F at_place_<farthest place>')")
    parser.add_argument('--preference', help='PREFERENCE.json (default: a balanced one)')
    parser.add_argument('--episodes', type=int, default=3, help='episodes (default 3)')
    parser.add_argument('--explore-s', type=float, default=150.0,
                        help='simulated seconds of exploration (default 150)')
    parser.add_argument('--step-timeout-s', type=float, default=90.0,
                        help='simulated seconds allowed per plan step (default 90)')
    parser.add_argument('--speed', type=float, default=3.0,
                        help='simulated seconds per wall second (default 3; 0 = as fast as the '
                             'simulator goes, which can outrun the other nodes on 2 cores)')
    parser.add_argument('--out', help='output folder (default runs/demo-<time>)')
    parser.set_defaults(func=run)
