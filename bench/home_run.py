"""Home run: after an outbound route, the robot returns to its start, by a shortcut if it can.

The building is the 2x2 ring of the default scenario without furniture (1.4 m doors): the
robot starts in room (0, 0) and is driven out the long way round, (0, 0) -> (0, 1) ->
(1, 1) -> (1, 0), to the centre of room (1, 0) (``--outbound`` also stops after the first or
second room), by a scripted route through the doorways with the local controller, while the
cognitive map observes as in the nodes (odometry with 2 % drift, scan, image codes;
:class:`bench.navigation.Episode` / :class:`bench.navigation.Agent`). The doorway between
(1, 0) and (0, 0) is the shortcut, never travelled; it is open or closed.

On the way the learned world model (shipped contrastive weights unless ``--objective``;
``--weights-dir DIR`` reads DIR/world_model_<objective>.pt instead)
filters the head camera (64x48 at 60 deg, as the cognitive_map node's world model; ``--camera
nav_camera``: the 64x64 90 deg navigation camera; fitted to the model's 32x32 input) every
0.5 s with the mean
command of that half second as the action and remembers every view with its map pose. At
the end of the outbound route it imagines the straight trip between every two visited
places that have no edge and lie within 6 m
(:func:`embodied_aif.models.imagination.judge_links`: from the view at one place that faces
the other, the prior rolled out along turn-then-drive actions of the training data's scale,
each imagined prior compared with the posterior of every remembered view by their KL); a
pair whose confidence (the mean match of the views around the far place where odometry
says the robot would be there) is at least THRESHOLD enters the map as an imagined edge.
THRESHOLD 0.1: on seeds 10:15 the false-open rate was 0.13-0.15 at every threshold from
0.02 to 0.3 (0.149 at 0.1), and 0.1 still lets most shortcut trips through. A proposal
whose straight way passes within SCAN_CLEARANCE of an obstacle point in a place's stored
scan is vetoed, as the cognitive_map node does (``cognitive_map.scan_blocks_link``; 0.15 m,
chosen on seeds 10:20, where 0.15 and 0.25 both left no false link and 0.15 kept more).
Then the navigator's model (:func:`place_planning.navigation_step`) drives to the start
pose, marking edges blocked when it cannot get through.

Figures (JSON keys), means over the runs that got home (``home_success_*`` says how many):

- ``path_ratio_open`` / ``path_ratio_closed``: distance driven home / ground-truth shortest
  path home (robot footprint) with the shortcut open / closed.
- ``retrace_ratio_closed`` (``_open``): the outbound route's length (what retracing it would
  drive) / the shortest path home. Goals: path_ratio_open <= 1.3, path_ratio_closed <=
  retrace_ratio_closed.
  These are means over every outbound length run; ``by_outbound`` gives them per length
  (only the long way round, 3 rooms, ends next to the shortcut).
- ``shortcut_taken_open``: fraction of open runs whose true path home crossed the shortcut
  doorway.
- ``false_open_rate``: of the world model's imagined links, the fraction that are not truly
  open (no path between the two places' true positions within 1 m of their distance);
  ``imagined_links_wm`` counts them (``null`` rate when there were none),
  ``imagined_links_vetoed_by_scan`` the proposals the scans vetoed;
  ``false_open_rate_scan`` / ``imagined_links_scan``: the same for the map's own links to
  places in clear view of the scan.
- Shortcut classification (3-room routes): ``shortcut_confidence_open`` / ``_closed``: the
  mean world model confidence for the pair of places in the start room and the last room
  (the shortcut pair), ``shortcut_proposed_*`` the fraction of runs where it reached
  THRESHOLD. ``wm_candidate_pairs`` counts the judged pairs, ``wm_candidate_open_rate`` the
  truly open fraction (the base rate), ``wm_link_auc`` how well the confidence ranks truly
  open pairs above closed ones (0.5: chance), ``wm_false_open_by_threshold`` {threshold:
  [false-open rate, links]}; ``wm_link_auc_faced_only`` / ``wm_false_open_faced_only``
  [rate, links]: the same for the model-free rule "link every pair where a view faced the
  other place", the baseline the model's confidence has to beat.
- Imagination accuracy per horizon (predicted free vs blocked), h = 1..12 drive actions of
  every imagined trip (0.3 m each): the trip is predicted free at h when the model's
  imagined progress (the matched views' position projected on the trip) is at least half
  the dead-reckoned progress, truly free when the same actions replayed from the start
  view's true pose with the simulator's base model are not blocked by then.
  ``imagination_accuracy_by_horizon``, ``imagination_balanced_accuracy_by_horizon`` (mean
  of the free and blocked recalls: 0.5 is chance), ``imagination_auc_by_horizon``
  (imagined progress as a score), ``imagination_truly_free_by_horizon`` (base rate),
  ``imagination_predicted_free_by_horizon`` and ``imagination_trips_by_horizon``.

Run: ``embodied-aif bench home_run [--quick] [--seeds A:B] [--outbound 1,2,3]
[--objective contrastive|likelihood|none]``.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from embodied_aif.bench._common import make_parser, progress, run_benchmark
from embodied_aif.bench.navigation import CONTROL, Agent, Episode, _to_robot
from embodied_aif.models import cognitive_map as cm
from embodied_aif.models import imagination as im
from embodied_aif.models import place_planning as pp
from embodied_aif.models import world_model as wm
from embodied_aif.models.local_control import local_command
from embodied_aif.sim.scenario import FurnitureSpec, load_scenario
from embodied_aif.sim.trajectories import trace_actions

ROUTE = ((0, 1), (1, 1), (1, 0))   # rooms of the outbound route, after the start room
SHORTCUT = ((0, 0), (1, 0))
WM_EVERY = 5                       # control periods (0.1 s) per world model update
HOME_STEPS = 1500
LEG_STEPS = 400
THRESHOLD = 0.1                    # confidence an imagined trip needs to become a link
MAX_LINK = 6.0                     # m: places farther apart are not imagined
HORIZONS = 12                      # drive actions scored for free vs blocked
PROGRESS = 0.5                     # imagined progress that counts as 'free'
LINK_THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.3)
OPEN_SLACK = 1.0                   # a link is truly open when a path is this close to straight
SCAN_CLEARANCE = 0.15              # m: a link this close to a scanned obstacle is vetoed


def scenario(closed: bool):
    """The furniture-free 2x2 ring with 1.4 m doors, the shortcut door open or closed."""
    base = load_scenario('default')
    building = dataclasses.replace(base.building, door_width=1.4,
                                   closed_doors=(SHORTCUT,) if closed else ())
    return dataclasses.replace(base, name='home_run', building=building,
                               furniture=FurnitureSpec(per_room={}))


class Imagination:
    """The world model part of the cognitive_map node: filtered views and imagined links."""

    def __init__(self, model, camera: str = 'head_camera'):
        self.model = model
        self.camera = camera
        self.state = None
        self.views: dict = {}  # place -> (state, image, map pose, distance to centre)
        self.seen: list = []   # every update: (features, image, map pose, true pose)
        self.actions: list = []

    def step(self, ep: Episode, agent: Agent, v: float, w: float) -> None:
        """Record the command; every WM_EVERY periods filter the camera and keep the view."""
        if self.model is None:
            return
        self.actions.append((v, w))
        if len(self.actions) < WM_EVERY:
            return
        act = np.mean(self.actions, axis=0)
        self.actions = []
        image = im.fit_image(ep.sim.render(self.camera).rgb, self.model.config.image_size)
        self.state = im.filter_step(self.model, self.state, act, image)
        cmap, k = agent.cmap, agent.cmap.current
        if cmap.lost or not 0 <= k < cmap.num_places:
            return
        pose = ep.odom + cmap.offset
        self.seen.append((self.state.features[0], image, pose.copy(), ep.true.copy()))
        gap = float(np.linalg.norm(pose[:2] - cmap.poses[k, :2]))
        old = self.views.get(k)
        if gap <= 0.5 * agent.map_config.radius and (old is None or gap < old[3]):
            self.views[k] = (self.state, image, pose.copy(), gap)

    def view_memory(self) -> im.ViewMemory:
        """Every filtered view so far, map-frame poses (no thinning: a bench, not a node)."""
        if not self.seen:
            return im.empty_views(self.model)
        return im.ViewMemory(torch.stack([f for f, *_ in self.seen]),
                             np.stack([i for _, i, *_ in self.seen]),
                             np.stack([p for _, _, p, _ in self.seen]))

    def links(self, cmap: cm.CognitiveMap) -> tuple[list, list]:
        """Imagined straight trips between visited places with no edge: (proposals, judged)."""
        if self.model is None or not self.seen:
            return [], []
        visited = [k for k in range(cmap.num_places) if cmap.visits[k] > 0]
        return im.judge_links(self.model, self.view_memory(), cmap.poses, places=visited,
                              known=list(cmap.edges), max_distance=MAX_LINK,
                              threshold=THRESHOLD, action_period=WM_EVERY * 0.1)


def _drive_to(ep: Episode, agent: Agent, imag: Imagination, world_xy, tolerance: float):
    """Scripted leg: the local controller to a world point (via odometry), the map observing."""
    for _ in range(LEG_STEPS):
        agent.cmap, event = cm.observe(agent.cmap, ep.odom, ep.code, ep.ranges, ep.angles,
                                       ep.range_min, ep.range_max, agent.map_config)
        agent._score_event(ep, event)
        if np.linalg.norm(ep.true[:2] - np.asarray(world_xy)) < tolerance:
            return True
        target = ep.odom_from_world(world_xy)
        v, w = local_command(ep.ranges_with_bumps(), ep.angles, _to_robot(ep.odom, target),
                             ep.range_min, ep.range_max, CONTROL)
        ep.act(v, w)
        imag.step(ep, agent, v, w)
    return False


def _door(world, a, b) -> tuple[float, float]:
    """World (x, y) of the doorway between adjacent rooms a and b."""
    (xa, ya), (xb, yb) = world.room_center(a), world.room_center(b)
    return (xa + xb) / 2, (ya + yb) / 2


def _truly_open(world, a, b) -> bool:
    length = world.shortest_path_length(a, b, CONTROL.robot_radius)
    return bool(length <= np.linalg.norm(np.asarray(a) - np.asarray(b)) + OPEN_SLACK)


def _score_trips(ep: Episode, imag: Imagination, agent: Agent, judgements: list) -> dict:
    """Every imagined trip against the truth: per drive action, and per place pair.

    ``horizon``: (h, imagined progress, truly free) for the h-th drive action of each trip
    that had a start view (the model's progress over the dead-reckoned one: predicted free
    when >= PROGRESS), truly free when the same actions replayed from the start view's
    true pose with the simulator's base model are not blocked by then. ``pairs``: (best
    confidence of the pair, truly open, is the shortcut pair, a view faced the other place)
    per judged place pair.
    """
    world = ep.sim.world
    radius, hz = ep.sim.robot_config.footprint_radius, ep.sim.rates.physics_hz
    horizon, best, faced = [], {}, set()
    for j in judgements:
        key = tuple(sorted((j.a, j.b)))
        best[key] = max(best.get(key, 0.0), j.confidence)
        if j.start_view >= 0:
            faced.add(key)
        if j.start_view < 0 or not len(j.actions):
            continue
        _, blocked = trace_actions(world, imag.seen[j.start_view][3], j.actions,
                                   WM_EVERY * 0.1, radius, hz)
        progress = j.imagined_progress()
        drive = np.flatnonzero(j.actions[:, 0] > 0)[:HORIZONS]
        for h, t in enumerate(drive, start=1):
            horizon.append((h, float(np.nan_to_num(progress[t], nan=0.0)),
                            not bool(blocked[t])))
    pairs = []
    for (i, k), conf in best.items():
        if i in agent.truth and k in agent.truth:
            rooms = {world.room_of(*agent.truth[i]), world.room_of(*agent.truth[k])}
            pairs.append((conf, _truly_open(world, agent.truth[i], agent.truth[k]),
                          rooms == set(SHORTCUT), (i, k) in faced))
    return {'horizon': horizon, 'pairs': pairs}


def run(seed: int, closed: bool, legs: int, model, camera: str = 'head_camera') -> dict:
    """One outbound route and the run home; the figures of this run."""
    ep = Episode(scenario(closed), seed)
    try:
        agent, imag = Agent(), Imagination(model, camera)
        world = ep.sim.world
        start = ep.true.copy()
        rooms = [world.room_of(*start[:2]), *ROUTE[:legs]]
        out_ok = True
        for a, b in zip(rooms, rooms[1:]):
            out_ok &= _drive_to(ep, agent, imag, _door(world, a, b), 0.4)
            out_ok &= _drive_to(ep, agent, imag, world.room_center(b), 0.6)
        outbound = ep.travelled
        # imagined links, judged against the truth of where the places are
        links, judgements = imag.links(agent.cmap)
        trips = _score_trips(ep, imag, agent, judgements)
        wm_pairs, vetoed = set(), 0
        for link in links:
            if cm.scan_blocks_link(agent.cmap, link.a, link.b, SCAN_CLEARANCE):
                vetoed += 1  # the laser saw something on the way: as the cognitive_map node
            elif agent.cmap.edge(link.a, link.b) is None:
                agent.cmap = cm.add_imagined_edge(agent.cmap, link.a, link.b, agent.map_config)
                wm_pairs.add(tuple(sorted((link.a, link.b))))
        judged = {'wm': [], 'scan': []}
        for (i, j), edge in agent.cmap.edges.items():
            if edge.kind == cm.IMAGINED and i in agent.truth and j in agent.truth:
                kind = 'wm' if (i, j) in wm_pairs else 'scan'
                judged[kind].append(_truly_open(world, agent.truth[i], agent.truth[j]))
        # home: back to the start pose (odometry origin)
        here = ep.true[:2].copy()
        shortest = world.shortest_path_length(here, start[:2], CONTROL.robot_radius)
        before, path = ep.travelled, [ep.true[:2].copy()]
        goal = pp.Goal(pose=(0.0, 0.0))
        status = ''
        for _ in range(HOME_STEPS):
            info = agent.step(ep, goal)
            path.append(ep.true[:2].copy())
            status = info['status']
            if status in ('goal_reached', 'goal_unreachable'):
                break
        home = ep.travelled - before
        reached = status == 'goal_reached' and \
            np.linalg.norm(ep.true[:2] - start[:2]) < 0.6
        path = np.asarray(path)
        door = _door(world, *SHORTCUT)
        crossed = bool(np.any((np.abs(path[:, 0] - door[0]) < 0.9) &
                              (np.abs(path[:, 1] - door[1]) < 0.3)))
        return {'seed': seed, 'closed': closed, 'legs': legs, 'outbound_ok': bool(out_ok),
                'reached': bool(reached), 'status': status, 'home': home,
                'shortest': shortest, 'outbound': outbound, 'crossed_shortcut': crossed,
                'wm_links': judged['wm'], 'scan_links': judged['scan'], **trips,
                'wm_vetoed': vetoed,
                'blocked_marks': agent.blocked_marks}
    finally:
        ep.close()


def _mean(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(values)), 3) if values else None


def _false_rate(flags):
    return round(1.0 - float(np.mean(flags)), 3) if flags else None


def _ratios(runs: list[dict]) -> dict:
    out = {}
    for name, closed in (('open', False), ('closed', True)):
        these = [r for r in runs if r['closed'] == closed]
        got = [r for r in these if r['reached']]
        out[f'path_ratio_{name}'] = _mean([r['home'] / r['shortest'] for r in got])
        out[f'retrace_ratio_{name}'] = _mean([r['outbound'] / r['shortest'] for r in these])
    return out


def _auc(scores, labels) -> float | None:
    """Probability that a truly open pair scores above a closed one (ties count half)."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    if not y.any() or y.all():
        return None
    pos, neg = s[y][:, None], s[~y][None]
    return round(float(np.mean((pos > neg) + 0.5 * (pos == neg))), 3)


def _imagination_figures(runs: list[dict]) -> dict:
    """Imagination accuracy per horizon (free vs blocked) and the pair classification."""
    rows = np.array([h for r in runs for h in r.get('horizon', [])], dtype=float).reshape(-1, 3)
    acc, bal, auc, free, pred, count = [], [], [], [], [], []
    for h in range(1, HORIZONS + 1):
        these = rows[rows[:, 0] == h]
        count.append(len(these))
        p, t = these[:, 1] >= PROGRESS, these[:, 2].astype(bool)
        rates = [float(np.mean(p[t == v] == v)) for v in (True, False) if np.any(t == v)]
        acc.append(round(float(np.mean(p == t)), 3) if len(these) else None)
        bal.append(round(float(np.mean(rates)), 3) if rates else None)
        auc.append(_auc(these[:, 1], t))
        free.append(round(float(np.mean(t)), 3) if len(these) else None)
        pred.append(round(float(np.mean(p)), 3) if len(these) else None)
    pairs = [q for r in runs for q in r.get('pairs', [])]
    out = {'imagination_accuracy_by_horizon': acc,
           'imagination_balanced_accuracy_by_horizon': bal,
           'imagination_auc_by_horizon': auc,
           'imagination_truly_free_by_horizon': free,
           'imagination_predicted_free_by_horizon': pred,
           'imagination_trips_by_horizon': count,
           'wm_candidate_pairs': len(pairs),
           'wm_candidate_open_rate': _mean([float(q[1]) for q in pairs]),
           'wm_link_auc': _auc([q[0] for q in pairs], [q[1] for q in pairs]),
           'wm_link_auc_faced_only': _auc([float(q[3]) for q in pairs], [q[1] for q in pairs]),
           'wm_false_open_faced_only': [_false_rate([q[1] for q in pairs if q[3]]),
                                        sum(q[3] for q in pairs)],
           'wm_false_open_by_threshold': {
               str(th): [_false_rate([q[1] for q in pairs if q[0] >= th]),
                         sum(q[0] >= th for q in pairs)] for th in LINK_THRESHOLDS}}
    for name, closed in (('open', False), ('closed', True)):
        conf = [max((q[0] for q in r.get('pairs', []) if q[2]), default=0.0)
                for r in runs if r['closed'] == closed and r['legs'] == len(ROUTE)]
        out[f'shortcut_confidence_{name}'] = _mean(conf)
        out[f'shortcut_proposed_{name}'] = _mean([float(c >= THRESHOLD) for c in conf])
    return out


def summarise(runs: list[dict]) -> dict:
    """The JSON figures from the runs (``by_outbound``: the ratios per outbound length)."""
    out = {'by_outbound': {str(n): _ratios([r for r in runs if r['legs'] == n])
                           for n in sorted({r['legs'] for r in runs})}}
    for name, closed in (('open', False), ('closed', True)):
        these = [r for r in runs if r['closed'] == closed]
        got = [r for r in these if r['reached']]
        out[f'home_success_{name}'] = f'{len(got)}/{len(these)}'
        out[f'path_ratio_{name}'] = _mean([r['home'] / r['shortest'] for r in got])
        out[f'retrace_ratio_{name}'] = _mean([r['outbound'] / r['shortest'] for r in these])
        out[f'blocked_marks_{name}'] = sum(r['blocked_marks'] for r in these)
    out['shortcut_taken_open'] = _mean([float(r['crossed_shortcut']) for r in runs
                                        if not r['closed'] and r['reached']])
    wm_flags = [f for r in runs for f in r['wm_links']]
    scan_flags = [f for r in runs for f in r['scan_links']]
    out['false_open_rate'] = _false_rate(wm_flags)
    out['imagined_links_wm'] = len(wm_flags)
    out['imagined_links_vetoed_by_scan'] = sum(r['wm_vetoed'] for r in runs)
    out['false_open_rate_scan'] = _false_rate(scan_flags)
    out['imagined_links_scan'] = len(scan_flags)
    out.update(_imagination_figures(runs))
    out['runs'] = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                    if k not in ('wm_links', 'scan_links', 'horizon', 'pairs')} |
                   {'wm_links': f"{sum(r['wm_links'])}/{len(r['wm_links'])} open"}
                   for r in runs]
    return out


def body(args) -> dict:
    """Run every (seed, door, outbound length) and summarise."""
    torch.set_num_threads(1)
    model = None
    if args.objective != 'none':
        path = (args.weights_dir / f'world_model_{args.objective}.pt' if args.weights_dir
                else wm.shipped_weights(args.objective))
        model, _ = wm.load_checkpoint(path, objective=args.objective)
    seeds = list(args.seeds)[:2] if args.quick else list(args.seeds)
    legs = [3] if args.quick else [int(x) for x in args.outbound.split(',')]
    runs = []
    for n in legs:
        for seed in seeds:
            for closed in (False, True):
                r = run(seed, closed, n, model, args.camera)
                progress(f"home_run seed {seed} legs {n} {'closed' if closed else 'open'}: "
                         f"{r['status']} home {r['home']:.1f} m, shortest "
                         f"{r['shortest']:.1f} m, outbound {r['outbound']:.1f} m, "
                         f"wm links {sum(r['wm_links'])}/{len(r['wm_links'])} open")
                runs.append(r)
    out = summarise(runs)
    out['objective'] = args.objective
    out['seeds'] = ','.join(str(s) for s in seeds)
    out['outbound_legs'] = legs
    out['camera'] = args.camera
    return out


def main(argv=None) -> int:
    """Entry point of `embodied-aif bench home_run`."""
    parser = make_parser('home_run', __doc__.split('\n')[0], '0:5')
    parser.add_argument('--outbound', default='3',
                        help='outbound lengths in rooms past the start, comma separated '
                             '(1-3; default 3: the long way round to the shortcut)')
    parser.add_argument('--objective', default='contrastive',
                        choices=('contrastive', 'likelihood', 'none'))
    parser.add_argument('--weights-dir', type=Path, default=None,
                        help='directory with world_model_<objective>.pt (default: the shipped '
                             'weights)')
    parser.add_argument('--camera', choices=('head_camera', 'nav_camera'),
                        default='head_camera',
                        help="camera the world model filters (default head_camera, as the "
                             "cognitive_map node's default world_model_camera)")
    return run_benchmark(body, parser, argv)
