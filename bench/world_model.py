"""World model: contrastive vs likelihood representation cost, goal images, imagined links.

Figures (JSON keys):

- ``macs_*`` / ``params_*``: multiply-adds and parameters per observation of the
  representation part (likelihood: encoder + pixel decoder; contrastive: encoder + the two
  projection heads) of the shipped models, ``macs_ratio_likelihood_over_contrastive``, and
  the same ratio with an equally wide encoder (``macs_ratio_equal_encoder``), which isolates
  the decoder's cost from the narrower contrastive encoder.
- ``train_s_per_step_*`` and ``train_time_ratio_likelihood_over_contrastive``: wall-clock per
  update (batch 16 x 20 steps, 1 thread) of fresh models with the shipped configuration.
- ``goal_image_success_contrastive`` / ``_likelihood`` / ``goal_image_success_distractor``
  (contrastive) and ``goal_image_success_distractor_likelihood``: goal-image *navigation* in
  simulation, as the navigator node does it. In a held-out world (seed 1,000,000 + s) of
  the ``default`` scenario (2x2 rooms, a table, shelf and tray placed per seed; with
  ``--nav-scenario ring`` the furniture-free 2x2 ring of the earlier figures, whose four
  rooms are quarter-turn twins once the looks are retextured) the place agent of
  ``bench/navigation.py`` explores for a while; every 0.5 s each model filters the
  navigation camera (64x64, 90 deg: ``nav_camera``, what the nodes' world model observes;
  ``--nav-camera head_camera`` uses the 64x48 60 deg head camera of the earlier figures,
  fitted to the model's input) and remembers the view (``imagination.remember_view``,
  map-frame pose); goal images come from the same camera (``goal_image_nav_camera``).
  Goal images are rendered where the robot once stood (+-0.1 m, +-10 deg), at least 2 m
  from it; ``_distractor`` renders them in the same world with every wall and floor
  retextured (``sim.textures.retexture``: the generator that ``collect trajectories
  --retextured`` trains with, other draws). The goal becomes a place
  (``imagination.view_place_preference``, embedding match as the navigator's default) and
  the pose its best-matching view was seen from, and the navigator's model drives to that
  pose; success when the robot ends within 1 m of where the picture was taken.
  ``goal_image_goals`` counts goals, ``goal_image_nav_scenario`` names the world.
  ``goal_image_place_right_[distractor_]<objective>``: how often the preferred place is the
  map place made nearest the goal pose (recognition within the navigation part; a wrong
  pick can still end within 1 m, a right one can still fail to get there).
- ``goal_image_recognition_*``: goal-image *place recognition* on held-out worlds (seeds
  1,000,000 + s, never trained on): the robot explores, places are frames >= 1 m apart, the
  goal image of each place is rendered near its pose (+-0.1 m, +-10 deg); success when the
  place of least goal EFE is the right one. ``_distractor`` re-renders the goal images after
  giving every wall and floor a random colour and texture (the place states were filtered
  with the original looks). ``_handmade``: the cognitive map's hand-made appearance code
  (``cognitive_map.image_code``, cosine); ``_<objective>_embedding``: the encoder's
  embedding alone (cosine), the drop-in replacement for that code. This is recognition,
  the part of goal-image navigation the world model does; driving there is the navigator's.
- ``open_loop_accuracy_by_horizon_*``: imagination accuracy per horizon h = 1..8: the
  prior rolled out along the recorded actions from the filtered state at t, matched against
  every frame of the trajectory; correct when the best frame's pose is within 0.5 m and
  30 deg of the true pose at t + h.
- ``imagined_link_precision_*``: links proposed between places not consecutive on the
  route, checked against ground truth by replaying the proposed actions from place a's
  true pose with the simulator's base model: correct when unblocked and ending within 1 m of
  place b. ``imagined_links_*`` counts proposals. Plain keys: the model's match times the
  dead-reckoned pose term (``propose_links(place_poses=...)``), threshold 0.1 (``_at_0.3``,
  ``_at_0.5``: stricter); ``_visual_only``: the model's match alone; ``_pose_only``: odometry
  alone (every pair whose best candidate ends within 1 m of b), the baseline the model has
  to beat by rejecting walls; ``imagined_link_chance_precision``: a random (pair,
  candidate, length).

Run: ``embodied-aif bench world_model [--quick] [--seeds A:B] [--nav-scenario default|ring]``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.bench.home_run import scenario as ring_scenario
from embodied_aif.bench.navigation import Agent, Episode
from embodied_aif.models import imagination as im
from embodied_aif.models import place_planning as pp
from embodied_aif.models import world_model as wm
from embodied_aif.models.cognitive_map import image_code
from embodied_aif.sim.textures import retexture
from embodied_aif.sim.trajectories import (
    CollectConfig,
    integrate_actions,
    make_simulation,
    run_episode,
    trace_actions,
)

HELD_OUT = 1_000_000
PLACE_SPACING = 1.0
LINK_TOLERANCE = 1.0
THRESHOLDS = (0.1, 0.3, 0.5)
HORIZON = 8


def representation_figures(models: dict) -> dict:
    """Cost of the representation part of each model, side by side."""
    out = {}
    for name, model in models.items():
        cost = wm.representation_cost(model)
        out[f'macs_{name}'] = cost['macs']
        out[f'params_{name}'] = cost['params']
    out['macs_ratio_likelihood_over_contrastive'] = round(
        out['macs_likelihood'] / out['macs_contrastive'], 2)
    out['params_ratio_likelihood_over_contrastive'] = round(
        out['params_likelihood'] / out['params_contrastive'], 2)
    wide = wm.WorldModel(wm.preset('contrastive',
                                   cnn_depth=models['likelihood'].config.cnn_depth))
    out['macs_contrastive_equal_encoder'] = wm.representation_cost(wide)['macs']
    out['macs_ratio_equal_encoder'] = round(
        out['macs_likelihood'] / out['macs_contrastive_equal_encoder'], 2)
    return out


def training_speed(models: dict, steps: int) -> dict:
    """Seconds per update (median) of fresh models with the shipped configurations.

    The models take turns step by step, so a change in the machine's load hits all alike;
    ``contrastive_no_augment`` is the contrastive model without its colour augmentation
    (one encoder pass fewer), the bare objective against the pixel decoder.
    """
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    configs = {name: model.config for name, model in models.items()}
    configs['contrastive_no_augment'] = dataclasses.replace(configs['contrastive'], augment=0.0)
    runs = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        fresh = wm.WorldModel(config)
        size = config.image_size
        runs[name] = (fresh, torch.optim.Adam(fresh.parameters(), lr=1e-4),
                      rng.integers(0, 255, (16, 20, size, size, 3), dtype=np.uint8),
                      rng.normal(size=(16, 20, 2)).astype(np.float32), [])
    for k in range(steps + 1):
        for fresh, opt, images, acts, times in runs.values():
            start = time.perf_counter()
            loss = wm.loss_terms(fresh, images, acts)['loss']
            opt.zero_grad()
            loss.backward()
            opt.step()
            if k:  # the first update warms up
                times.append(time.perf_counter() - start)
    out = {f'train_s_per_step_{name}': round(float(np.median(run[-1])), 4)
           for name, run in runs.items()}
    out['train_time_ratio_likelihood_over_contrastive'] = round(
        out['train_s_per_step_likelihood'] / out['train_s_per_step_contrastive'], 2)
    return out


def choose_places(poses: np.ndarray, spacing: float, skip: int = 5) -> np.ndarray:
    """Frame indices (in time order) at least `spacing` metres from every earlier place."""
    chosen = []
    for t in range(skip, len(poses)):
        if all(np.hypot(*(poses[t, :2] - poses[c, :2])) >= spacing for c in chosen):
            chosen.append(t)
    return np.array(chosen, dtype=int)


def goal_images(sim, poses: np.ndarray, rng: np.random.Generator,
                camera: str = 'head_camera') -> np.ndarray:
    """Render a camera near each pose (+-0.1 m, +-10 deg); the robot is put back."""
    out = []
    here = sim.base_pose()
    for x, y, yaw in poses:
        dx, dy = rng.uniform(-0.1, 0.1, 2)
        sim.robot.set_base_pose(float(x + dx), float(y + dy),
                                float(yaw + math.radians(rng.uniform(-10, 10))))
        out.append(sim.render(camera).rgb)
    sim.robot.set_base_pose(*here)
    return np.stack(out)


def open_loop_hits(model, images: np.ndarray, actions: np.ndarray, poses: np.ndarray,
                   horizon: int, every: int = 5) -> np.ndarray:
    """Open-loop prediction accuracy per horizon: hits (horizon,) over the start times.

    From the filtered state at t the prior is rolled out along the recorded actions; the
    imagined state at t + h is matched (least goal EFE) against every frame of the
    trajectory; a hit when that frame's pose is within 0.5 m and 30 deg of the true pose.
    """
    states = im.filter_trajectory(model, images, actions)
    memory = im.PlaceMemory(states, images)
    starts = np.arange(5, len(images) - horizon, every)
    start = states.index(torch.as_tensor(starts))
    acts = np.stack([actions[t:t + horizon] for t in starts])
    with torch.no_grad():
        traj = wm.imagine(model, start, acts)
        efe = im.place_efe(model, memory, traj.features.reshape(-1, traj.features.shape[-1]))
    best = efe.argmin(1).numpy().reshape(len(starts), horizon)
    truth = starts[:, None] + np.arange(1, horizon + 1)[None]
    dist = np.hypot(*(poses[best, :2] - poses[truth, :2]).transpose(2, 0, 1))
    dyaw = np.abs(np.angle(np.exp(1j * (poses[best, 2] - poses[truth, 2]))))
    return ((dist < 0.5) & (dyaw < math.radians(30))).sum(0), len(starts)


def evaluate_world(models: dict, seed: int, steps: int) -> dict:
    """Explore one held-out world; goal recognition and imagined links for each model."""
    cfg = CollectConfig(steps=steps, seed=seed)
    sim = make_simulation('default', HELD_OUT + seed, cfg.image_size, cfg.fov_deg)
    try:
        data = run_episode(sim, cfg, np.random.default_rng(HELD_OUT + seed))
        places = choose_places(data['poses'], PLACE_SPACING)
        rng = np.random.default_rng(seed)
        goals = {'normal': goal_images(sim, data['poses'][places], rng)}
        retexture(sim, rng)
        goals['distractor'] = goal_images(sim, data['poses'][places], rng)
        world, radius = sim.world, sim.robot_config.footprint_radius
        physics_hz = sim.rates.physics_hz
    finally:
        sim.close()
    known = list(zip(range(len(places) - 1), range(1, len(places))))
    candidates = im.candidate_actions(horizon=8, turn_steps=4)

    def reaches(world, pose_a, pose_b, actions) -> int:
        end, blocked = integrate_actions(world, pose_a, actions, cfg.action_period, radius,
                                         physics_hz)
        return int(not blocked and np.hypot(end[0] - pose_b[0], end[1] - pose_b[1])
                   < LINK_TOLERANCE)

    out = {'places': len(places)}
    # The hand-made appearance code of the cognitive map, matched by cosine similarity.
    place_codes = np.stack([image_code(img) for img in data['images'][places]])
    for look, imgs in goals.items():
        sims = np.stack([image_code(g) for g in imgs]) @ place_codes.T
        out[f'handmade_{look}_hits'] = int((sims.argmax(1) == np.arange(len(places))).sum())
    for name, model in models.items():
        size = model.config.image_size
        images = wm.resize_images(data['images'], size)
        memory = im.place_memory(model, images, data['actions'], places)
        for look, imgs in goals.items():
            small = wm.resize_images(imgs, size)
            hits = [int(np.argmin(im.goal_preference(model, memory, g)[0])) == k
                    for k, g in enumerate(small)]
            out[f'{name}_{look}_hits'] = int(sum(hits))
            with torch.no_grad():  # the encoder alone, as a drop-in place code
                codes = torch.nn.functional.normalize(
                    wm.embed_observation(model, memory.images), dim=-1)
                goal_codes = torch.nn.functional.normalize(
                    wm.embed_observation(model, small), dim=-1)
            best = (goal_codes @ codes.T).argmax(1).numpy()
            out[f'{name}_embedding_{look}_hits'] = int((best == np.arange(len(places))).sum())
        hits, n = open_loop_hits(model, images, data['actions'], data['poses'], HORIZON)
        out[f'{name}_open_loop_hits'] = hits
        out['open_loop_starts'] = n
        place_poses = data['poses'][places]
        for mode, kwargs in (('', {'place_poses': place_poses,
                                   'action_period': cfg.action_period}),
                             ('_visual_only', {})):
            proposals = im.propose_links(model, memory, candidates, known=known,
                                         threshold=min(THRESHOLDS), **kwargs)
            for threshold in THRESHOLDS:
                chosen = [q for q in proposals if q.confidence >= threshold]
                out[f'{name}{mode}_links@{threshold}'] = len(chosen)
                out[f'{name}{mode}_links_correct@{threshold}'] = sum(
                    reaches(world, place_poses[q.a], place_poses[q.b], q.actions)
                    for q in chosen)
    # Pose only: the candidate prefix whose dead-reckoned end is nearest to b, if within
    # 1 m (what odometry alone would propose, ignoring walls and doors).
    pose_links = pose_correct = 0
    for a in range(len(places)):
        ends = [im.dead_reckon(place_poses[a], seq, cfg.action_period) for seq in candidates]
        for b in range(len(places)):
            if a == b or abs(a - b) == 1:
                continue
            d = np.array([np.hypot(*(e[:, :2] - place_poses[b, :2]).T) for e in ends])
            k, h = np.unravel_index(int(np.argmin(d)), d.shape)
            if d[k, h] < LINK_TOLERANCE:
                pose_links += 1
                pose_correct += reaches(world, place_poses[a], place_poses[b],
                                        candidates[k, :h + 1])
    out['pose_only_links'], out['pose_only_correct'] = pose_links, pose_correct
    # Chance: how often a random (unknown pair, candidate, horizon) would be a true link.
    hits = total = 0
    xy = data['poses'][places, :2]
    for a in range(len(places)):
        others = np.array([b for b in range(len(places)) if b != a and abs(a - b) != 1])
        if not len(others):
            continue
        for seq in candidates:
            ends, blocked = trace_actions(world, data['poses'][places[a]], seq,
                                          cfg.action_period, radius, physics_hz)
            near = np.hypot(*(ends[:, None, :2] - xy[None, others]).transpose(2, 0, 1))
            hits += int(((near < LINK_TOLERANCE) & ~blocked[:, None]).sum())
            total += near.size
    out['chance_hits'], out['chance_total'] = hits, total
    return out


NAV_SUCCESS = 1.0       # m from where the goal picture was taken
NAV_STEPS = 1000        # control periods per goal
NAV_MIN_START = 2.0     # m: goals at least this far from the robot
NAV_SCENARIOS = ('default', 'ring')


def nav_scenario(name: str):
    """The world of the navigation part: ``default`` (furnished) or ``ring`` (no furniture).

    The ring's rooms are equal squares with centred doors, so with every wall and floor
    retextured the four rooms look alike but for the light direction; the default
    scenario's furniture, placed per seed, tells them apart.
    """
    if name == 'default':
        return 'default'
    if name == 'ring':
        return ring_scenario(False)
    raise ValueError(f'unknown navigation scenario {name!r}: expected one of {NAV_SCENARIOS}')


def _filter_views(models: dict, ep, cmap, filters: dict, views: dict, act,
                  camera: str) -> None:
    """One 0.5 s world model update of every model; remember the view (map frame)."""
    rgb = ep.sim.render(camera).rgb
    still = abs(act[0]) < 0.02 and abs(act[1]) < 0.05
    for name, model in models.items():
        image = im.fit_image(rgb, model.config.image_size)
        filters[name] = im.filter_step(model, filters[name], act, image)
        views[name] = im.remember_view(views[name], filters[name].features[0], image,
                                       ep.odom + cmap.offset, spacing=0.3,
                                       angle=math.radians(30), replace=still)


def navigate_world(models: dict, seed: int, explore_steps: int, goals: int,
                   scenario: str = 'default', camera: str = 'nav_camera') -> dict:
    """Explore a held-out world, then drive to goal images: hits per (model, look)."""
    world_seed = HELD_OUT + seed
    ep = Episode(nav_scenario(scenario), world_seed)
    other = None
    out = {'goals': 0}
    try:
        agent = Agent()
        filters = dict.fromkeys(models)
        views = {name: im.empty_views(model) for name, model in models.items()}
        stood, last = [], ep.odom.copy()
        for step in range(explore_steps):
            info = agent.step(ep, None)
            if step % 5 == 4:  # the action: the odometry's motion over the last 0.5 s
                d = ep.odom - last
                ahead = d[0] * math.cos(last[2]) + d[1] * math.sin(last[2])
                act = (ahead / 0.5, math.atan2(math.sin(d[2]), math.cos(d[2])) / 0.5)
                last = ep.odom.copy()
                _filter_views(models, ep, agent.cmap, filters, views, act, camera)
                stood.append(ep.true.copy())
            if info['status'] == 'explored':
                break
        rng = np.random.default_rng(seed)
        stood = np.asarray(stood)
        picks = []
        for k in rng.permutation(len(stood)):
            if len(picks) == goals:
                break
            if all(np.linalg.norm(stood[k, :2] - stood[j, :2]) > 1.5 for j in picks):
                picks.append(k)
        poses = stood[picks]
        looks = {'normal': goal_images(ep.sim, poses, np.random.default_rng(seed), camera)}
        other = Episode(nav_scenario(scenario), world_seed, camera=False)
        retexture(other.sim, np.random.default_rng(seed + 1))
        looks['distractor'] = goal_images(other.sim, poses, np.random.default_rng(seed),
                                          camera)
        for g, goal_pose in enumerate(poses):
            for look, imgs in looks.items():
                for name, model in models.items():
                    if np.linalg.norm(ep.true[:2] - goal_pose[:2]) < NAV_MIN_START:
                        _drive_away(ep, agent, goal_pose)
                    goal = im.fit_image(imgs[g], model.config.image_size)
                    pref = im.view_place_preference(model, views[name], goal, agent.cmap.poses,
                                                    agent.map_config.radius,
                                                    match='embedding')
                    place = pref['place']
                    known = [k for k in agent.truth if k < agent.cmap.num_places]
                    if known:  # recognition alone: the place made nearest the goal pose
                        nearest = min(known, key=lambda k: np.linalg.norm(
                            agent.truth[k] - goal_pose[:2]))
                        key = f'{name}_{look}_place_hits'
                        out[key] = out.get(key, 0) + int(place == nearest)
                    agent.state = pp.NavigatorState()
                    target = pp.Goal(pose=tuple(pref['goal_pose'][:2]))  # as the navigator
                    for _ in range(NAV_STEPS):
                        info = agent.step(ep, target)
                        if info['status'] in ('goal_reached', 'goal_unreachable'):
                            break
                    hit = np.linalg.norm(ep.true[:2] - goal_pose[:2]) < NAV_SUCCESS
                    key = f'{name}_{look}_nav_hits'
                    out[key] = out.get(key, 0) + int(hit)
            out['goals'] += 1
    finally:
        ep.close()
        if other is not None:
            other.close()
    return out


def _drive_away(ep, agent, goal_pose) -> None:
    """Drive to the visited place farthest from the goal (so that every goal is a trip)."""
    cmap = agent.cmap
    visited = [k for k in range(cmap.num_places) if cmap.visits[k] > 0 and k in agent.truth]
    if not visited:
        return
    far = max(visited, key=lambda k: np.linalg.norm(agent.truth[k] - goal_pose[:2]))
    agent.state = pp.NavigatorState()
    for _ in range(NAV_STEPS):
        info = agent.step(ep, pp.Goal(place=far))
        if info['status'] in ('goal_reached', 'goal_unreachable'):
            break


def body(args) -> dict:
    """Run every part; return the figures."""
    torch.set_num_threads(1)
    models = {name: wm.load_checkpoint(args.weights_dir / f'world_model_{name}.pt'
                                       if args.weights_dir else wm.shipped_weights(name),
                                       objective=name)[0]
              for name in ('contrastive', 'likelihood')}
    figures = representation_figures(models)
    progress(f'representation MACs: likelihood {figures["macs_likelihood"]:,}, contrastive '
             f'{figures["macs_contrastive"]:,} '
             f'(x{figures["macs_ratio_likelihood_over_contrastive"]})')
    figures.update(training_speed(models, 3 if args.quick else 10))
    progress(f'training s/step: {figures["train_s_per_step_likelihood"]} vs '
             f'{figures["train_s_per_step_contrastive"]}')
    seeds = list(args.seeds)[:2] if args.quick else list(args.seeds)
    steps = 120 if args.quick else 200
    totals: dict = {}
    for seed in seeds:
        res = evaluate_world(models, seed, steps)
        progress(f'world {seed}: ' + ', '.join(f'{k} {v}' for k, v in res.items()
                                               if not isinstance(v, np.ndarray)))
        for k, v in res.items():
            totals[k] = totals.get(k, 0) + v
    n = max(totals['places'], 1)
    for name in models:
        for look in ('normal', 'distractor'):
            key = f'goal_image_recognition_{name}' if look == 'normal' else \
                f'goal_image_recognition_distractor_{name}'
            figures[key] = round(totals[f'{name}_{look}_hits'] / n, 3)
        for mode in ('', '_visual_only'):
            for threshold in THRESHOLDS:
                links = totals[f'{name}{mode}_links@{threshold}']
                suffix = mode + ('' if threshold == THRESHOLDS[0] else f'_at_{threshold}')
                figures[f'imagined_links_{name}{suffix}'] = links
                figures[f'imagined_link_precision_{name}{suffix}'] = (
                    round(totals[f'{name}{mode}_links_correct@{threshold}'] / links, 3)
                    if links else None)
        figures[f'open_loop_accuracy_by_horizon_{name}'] = [
            round(float(h) / max(totals['open_loop_starts'], 1), 3)
            for h in totals[f'{name}_open_loop_hits']]
    figures['imagined_links_pose_only'] = totals['pose_only_links']
    figures['imagined_link_precision_pose_only'] = round(
        totals['pose_only_correct'] / max(totals['pose_only_links'], 1), 3)
    figures['imagined_link_chance_precision'] = round(
        totals['chance_hits'] / max(totals['chance_total'], 1), 3)
    for name in ('handmade', 'contrastive_embedding', 'likelihood_embedding'):
        figures[f'goal_image_recognition_{name}'] = round(totals[f'{name}_normal_hits'] / n, 3)
        figures[f'goal_image_recognition_distractor_{name}'] = round(
            totals[f'{name}_distractor_hits'] / n, 3)
    figures['goal_image_places'] = totals['places']
    figures['worlds'] = len(seeds)
    nav: dict = {}
    for seed in seeds:
        res = navigate_world(models, seed, 400 if args.quick else 900, 2 if args.quick else 5,
                             args.nav_scenario, args.nav_camera)
        progress(f'goal-image navigation, world {seed}: ' +
                 ', '.join(f'{k} {v}' for k, v in res.items()))
        for k, v in res.items():
            nav[k] = nav.get(k, 0) + v
    goals = max(nav['goals'], 1)
    for name in models:
        figures[f'goal_image_success_{name}'] = round(nav.get(f'{name}_normal_nav_hits', 0)
                                                      / goals, 3)
        figures[f'goal_image_success_distractor_{name}'] = round(
            nav.get(f'{name}_distractor_nav_hits', 0) / goals, 3)
        figures[f'goal_image_place_right_{name}'] = round(
            nav.get(f'{name}_normal_place_hits', 0) / goals, 3)
        figures[f'goal_image_place_right_distractor_{name}'] = round(
            nav.get(f'{name}_distractor_place_hits', 0) / goals, 3)
    figures['goal_image_success_distractor'] = figures['goal_image_success_distractor_contrastive']
    figures['goal_image_goals'] = nav['goals']
    figures['goal_image_nav_scenario'] = args.nav_scenario
    figures['goal_image_nav_camera'] = args.nav_camera
    return figures


def main(argv=None) -> int:
    """Entry point: ``embodied-aif bench world_model``."""
    parser = make_parser('world_model', __doc__.strip().splitlines()[0], '0:6')
    parser.add_argument('--weights-dir', type=Path,
                        default=None, help='directory with world_model_<objective>.pt '
                                           '(default: the shipped weights)')
    parser.add_argument('--nav-camera', choices=('nav_camera', 'head_camera'),
                        default='nav_camera',
                        help="camera of the navigation part: nav_camera (64x64, 90 deg, the "
                             "nodes' world model camera) or head_camera (64x48, 60 deg)")
    parser.add_argument('--nav-scenario', choices=NAV_SCENARIOS, default='default',
                        help='world of the goal-image navigation part: default (furnished, '
                             'rooms told apart by their furniture) or ring (furniture-free, '
                             'rotation-symmetric; the earlier figures)')
    return run_benchmark(body, parser, argv)


if __name__ == '__main__':
    raise SystemExit(main())
