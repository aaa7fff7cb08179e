"""`embodied-aif demo`: the main job: the stack in simulation, on defaults, with a JSON summary.

It composes the nodes of config/sim.yaml in this process (each node on an executor of its own,
headless, at --speed times real time), then plays the mission with what the stack has:
  1. explore and map (when the stack has `navigator` and `cognitive_map`),
  2. pose a task (LTLf) and a preference: the task planner publishes the Pareto set, the
     selector picks a plan,
  3. execute the selected plan through the executive's Execute action (it runs the steps
     through Navigate / Pick / Place, guards them against the task, measures each step's
     realised time, energy and risk and reports PlanOutcome so costs are learned), and repeat
     for several episodes.
Whatever a stage needs and the stack lacks is skipped and said so. Results: a JSON summary on
stdout (progress on stderr); summary.json, PNG plots and an MCAP recording of the topics
(camera images thinned to --image-rate; readable by ROS 2 bag tools and Foxglove) in --out.
"""
from __future__ import annotations

import argparse
import json
import math
import re
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


def _compose_stack(args, out: Path):
    """The stack of --config set up for this run; learned state is checkpointed in out/state."""
    stack = load_stack(args.config, use_sim_time=True)
    for entry in stack.nodes:
        if entry.name == 'sim_bridge':
            entry.parameters.update(scenario=args.scenario, seed=args.seed,
                                    real_time_factor=args.speed,
                                    wrist_camera_rate=0.0, gui=bool(args.gui))
        if entry.name in ('cognitive_map', 'task_planner'):  # a respawned node resumes
            entry.parameters['state_file'] = str(out / 'state' / f'{entry.name}.json')
    validate(stack)
    return stack


def _farthest_place(cmap, regions=None) -> int:
    """The visited place farthest from the first one that the robot can reach from where it is.

    Reached over edges not blocked and through places outside every region (e.g. the
    hazard), as the task planner's system allows: a place whose edges were all found
    blocked had been chosen, and no plan could reach it. Of those, the places the robot has
    been at (any, if none): a place it got to once it can get to again. A place still drops
    out of the planner's system when a failed move blocks the last way to it (the system holds
    only what the robot can reach); the planner then says so, and the demo poses a move again.
    """
    from embodied_aif.models.task_world import region_labels

    def allowed(p) -> bool:
        return not region_labels((p.pose.position.x, p.pose.position.y), regions or {})

    by_id = {p.id: p for p in cmap.places}
    links = {}
    for e in cmap.edges:
        if e.kind != e.BLOCKED:
            links.setdefault(e.from_id, set()).add(e.to_id)
            links.setdefault(e.to_id, set()).add(e.from_id)
    here = cmap.current_place if cmap.current_place in by_id else cmap.places[0].id
    reached, frontier = {here}, [here]
    while frontier:
        for k in links.get(frontier.pop(), ()):
            if k in by_id and k not in reached and allowed(by_id[k]):
                reached.add(k)
                frontier.append(k)
    start = cmap.places[0].pose.position
    candidates = [by_id[k] for k in reached if allowed(by_id[k])] or [by_id[here]]
    candidates = [p for p in candidates if p.visit_count > 0] or candidates
    return max(candidates, key=lambda p: (math.hypot(p.pose.position.x - start.x,
                                                     p.pose.position.y - start.y), -p.id)).id


def move_formula(cmap, regions: dict) -> str:
    """The move-only task: reach the farthest place, outside the hazard when one is marked."""
    if regions:
        return f'F at_place_{_farthest_place(cmap, regions)} & G !in_hazard'
    return f'F at_place_{_farthest_place(cmap)}'


def hazard_region(building, room: tuple[int, int], world_from_odom) -> str:
    """A room of the simulated building as a region polygon of the odom frame.

    world_from_odom: (x, y, yaw) of the odom frame in the world (the robot's start pose, as
    odometry starts there). This is how a user would mark a zone on the map; the robot does
    not know rooms.
    """
    w, d = building.room_size
    r, c = room
    corners = [odom_from_world(x, y, world_from_odom)
               for x, y in ((c * w, r * d), ((c + 1) * w, r * d), ((c + 1) * w, (r + 1) * d),
                            (c * w, (r + 1) * d))]
    return 'hazard:' + ';'.join(f'{x:.3f},{y:.3f}' for x, y in corners)


def odom_from_world(x: float, y: float, world_from_odom) -> tuple[float, float]:
    """A world-frame point in the odom frame whose pose in the world is (x0, y0, yaw)."""
    x0, y0, yaw = world_from_odom
    cos, sin = math.cos(yaw), math.sin(yaw)
    return cos * (x - x0) + sin * (y - y0), -sin * (x - x0) + cos * (y - y0)


def hazard_room(args) -> tuple[tuple[int, int] | None, object]:
    """The hazard room of --hazard-room (default: opposite the start room) and the building.

    Raises StackError naming a bad value or scenario.
    """
    from embodied_aif.sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, ValueError, OSError) as exc:
        raise StackError(f'--scenario {args.scenario!r}: {exc}') from None
    b = scenario.building
    if args.hazard_room == 'none':
        return None, b
    if not args.hazard_room:
        r, c = scenario.robot.start_room
        room = (b.rows - 1 - r, b.cols - 1 - c)
        return (None if room == (r, c) else room), b
    try:
        room = tuple(int(v) for v in args.hazard_room.split(','))
    except ValueError:
        room = ()
    if len(room) != 2 or not (0 <= room[0] < b.rows and 0 <= room[1] < b.cols):
        raise StackError(f'--hazard-room {args.hazard_room!r}: expected ROW,COL inside the '
                         f'{b.rows}x{b.cols} building, or none')
    return room, b


def mark_hazard(args, op, summary: dict) -> None:
    """Give the task planner the hazard room as a region (the default task avoids it)."""
    room, building = summary.pop('_hazard')
    if room is None:
        return
    if not op.wait_sim(lambda: op.world_from_odom() is not None, float('inf'), wall_limit=60):
        raise RuntimeError('no odometry and ground-truth pose to place the hazard room')
    region = hazard_region(building, room, op.world_from_odom())
    why = op.set_parameter('task_planner', 'regions', [region])
    if why:
        raise RuntimeError(f'the task planner rejected the hazard region: {why}')
    summary['hazard_room'] = ','.join(str(v) for v in room)
    summary['regions'] = [region]


def play(args, op, names: set, summary: dict) -> None:
    """The mission, stage by stage, with what the stack has (op: the demo's Operator)."""
    from embodied_aif.cli._operator import preference_msg
    from embodied_aif.models.task_world import parse_regions

    stages = summary['stages']
    if not op.wait_sim(lambda: op.clock > 0.5, 5.0, wall_limit=120):
        raise RuntimeError('the simulator published no /clock: sim_bridge did not start')
    stages['simulation'] = f'scenario {args.scenario!r} seed {args.seed}: running'
    if 'task_planner' in names:
        mark_hazard(args, op, summary)
    regions = parse_regions(summary.get('regions', []))
    has_nav = {'navigator', 'cognitive_map'} <= names
    if has_nav:
        log(f'exploring for up to {args.explore_s:.0f} s of simulated time')
        wall, sim = time.monotonic(), op.clock
        op.wait_sim(lambda: False, args.explore_s, wall_limit=args.explore_s * 3 + 60)
        searched = search_for_fetch(args, op, names, regions)
        n_places = len(op.map.places) if op.map else 0
        log(f'explored: {n_places} places, {op.clock - sim:.0f} s of simulated time in '
            f'{time.monotonic() - wall:.0f} s')
        stages['exploration'] = (f'{n_places} places, rooms visited: {sorted(op.rooms)}')
        if searched is not None:
            stages['exploration'] += (f'; {searched:.0f} s of it after --explore-s, looking '
                                      'for something to fetch')
        summary['map'] = {'places': n_places, 'edges': len(op.map.edges) if op.map else 0,
                          'rooms_visited': sorted(op.rooms)}
        # the map is made: stop exploring when idle, and go back to the start for the task
        why = op.set_parameter('navigator', 'explore_when_idle', False)
        if why:
            log(f'could not stop idle exploration: {why}')
        if n_places:
            ok, reason, _ = op.navigate_to_place(op.map.places[0].id, args.step_timeout_s)
            log(f"back at the start place: {'yes' if ok else 'no'} ({reason})")
    else:
        stages['exploration'] = 'skipped: the stack has no navigator/cognitive_map yet'
    if not {'task_planner', 'plan_selector'} <= names:
        stages['task'] = 'skipped: the stack has no task_planner/plan_selector'
        return
    if op.map is None or not op.map.places:
        stages['task'] = 'skipped: no cognitive map to plan on'
        return
    preference = json.loads(Path(args.preference).read_text()) if args.preference \
        else DEFAULT_PREFERENCE
    op.pub_pref.publish(preference_msg(preference))
    fetch = None
    if args.task:
        formula = args.task
    else:
        fetch = default_fetch(args, op, names, regions, summary)
        formula = fetch.formula if fetch is not None else move_formula(op.map, regions)
    fetch, formula = pose_first_task(op, fetch, formula, regions, stages)
    if formula is None:
        return
    summary['task'] = {'formula': formula, 'preference': preference,
                       'front': [list(p.expected_cost) for p in op.plans.plans]}
    if 'executive' not in names:
        stages['execution'] = 'skipped: the stack has no executive'
        return
    episodes = run_episodes(args, op, summary, fetch, regions)
    summary['episodes'] = episodes
    summary['learning_curve'] = learning_curve(episodes)
    summary['hazard_entries'] = sum(a['entered_hazard'] for e in episodes
                                    for a in [e, *e.get('earlier_attempts', [])])
    stages['execution'] = (f'{sum(e["success"] for e in episodes)}/{len(episodes)} episodes '
                           f'succeeded')


SEARCH_CHECK_S = 20.0  # simulated seconds between looks at the beliefs while searching


def search_for_fetch(args, op, names: set, regions: dict) -> float | None:
    """Explore on while no fetch is offered; the simulated seconds that took.

    None when no fetch is asked for (a --task, --fetch none, or a stack without perception
    and manipulator), 0 when one is offered right after --explore-s.

    In a large building --explore-s may cover only part of it, and the default fetch then
    falls back to a move although the objects asked for stand in rooms not seen yet. Every
    SEARCH_CHECK_S the fetch is chosen over the beliefs, for up to --search-s more. An object
    left out only because no stand-point near it is known free (seen from afar, the floor
    around it not yet) is looked at from nearer: the robot goes to the map place nearest it,
    once per object, and the fetch is chosen again.
    """
    from embodied_aif.models.manipulation import NO_FREE_POSE

    if args.task or args.fetch == 'none' or not {'perception', 'manipulator'} <= names:
        return None
    categories = [c for c in args.fetch.split(',') if c]
    start, looked = op.clock, set()
    while True:
        unreachable = {}
        fetch = fetch_task(op, categories, regions, unreachable=unreachable)
        left = args.search_s - (op.clock - start)
        if not isinstance(fetch, str) or left <= 0:
            return op.clock - start
        nearer = [(oid, place) for oid, why in sorted(unreachable.items())
                  if NO_FREE_POSE in why and oid not in looked
                  for place in [place_near(op, oid)] if place is not None]
        if nearer:
            oid, place = nearer[0]
            looked.add(oid)
            log(f'{oid}: no stand-point near it is known free yet: to place {place} to look '
                'from nearer')
            op.navigate_to_place(place, left)
            continue
        step = min(SEARCH_CHECK_S, left)
        log(f'nothing to fetch seen yet ({fetch}): exploring on for {step:.0f} s')
        op.wait_sim(lambda: False, step, wall_limit=step * 3 + 60)


def place_near(op, object_id: str) -> int | None:
    """The map place (of those the robot has stood at) nearest an object's belief."""
    with op.lock:
        obj = seen(op.objects).get(object_id)
        places = object_places(op.map) if op.map is not None else {}
    if obj is None or not places:
        return None
    return min(places, key=lambda k: math.hypot(places[k][0] - obj.x, places[k][1] - obj.y))


def pose_first_task(op, fetch, formula: str, regions: dict, stages: dict):
    """Pose the first task; (fetch, formula) of the one planned, formula None if none.

    A fetch the task planner gives no plans for falls back to the move-only task, as when no
    fetch is offered (the reason goes into ``stages['fetch']``); ``stages['task']`` says what
    was planned, or why nothing was.
    """
    task_id = 'demo-0' if fetch else 'demo'
    planned = pose_task(op, task_id, formula)
    if not planned and fetch is not None:
        why = why_no_plan(op, task_id)
        log(f'no plan for the fetch ({why}): a move-only task instead')
        stages['fetch'] = f"{stages.get('fetch', '')}; not planned ({why}): a move-only task"
        fetch, formula, task_id = None, move_formula(op.map, regions), 'demo'
        planned = pose_task(op, task_id, formula)
    if not planned:
        stages['task'] = f'task {formula!r}: {why_no_plan(op, task_id)}'
        return fetch, None
    stages['task'] = f'task {formula!r}: {len(op.plans.plans)} Pareto plans'
    return fetch, formula


def run_episodes(args, op, summary: dict, fetch, regions: dict) -> list[dict]:
    """The mission's episodes, from the task already posed (``fetch``: its fetch, or None).

    Each episode after the first chooses its fetch again, and an episode makes up to
    ``--fetch-attempts``; with no fetch left, the episode and the rest are move-only tasks.
    """
    episodes, failed_picks, failed_places, picked = [], set(), set(), set()
    home = op.map.current_place

    def attempt(episode: int, fetch, truth) -> dict:
        """Run one attempt; remember the picks and tables it failed on, and what it picked."""
        record = run_episode(args, op, episode, summary, fetch, truth)
        failed_picks.update(_failed_picks(record))
        failed_places.update(_failed_places(record))
        picked.update(s['target'] for s in record['steps']
                      if s['action'] == 'pick' and s['success'])
        return record

    def pose_move(episode: int) -> bool:
        """Pose a move-only task from the start place; False (and the episode failed) if none."""
        op.navigate_to_place(home, args.step_timeout_s)
        task_id = f'demo-{episode}-move'
        if pose_task(op, task_id, move_formula(op.map, regions)):
            return True
        episodes.append({'episode': episode, 'success': False, 'reason': why_no_plan(op, task_id),
                         'entered_hazard': False, 'realised': [], 'predicted': []})
        return False

    for episode in range(args.episodes):
        truth = None
        if fetch is not None and episode:  # the next fetch: to the farthest table from it now
            before = fetch
            fetch = next_fetch(op, args, fetch, regions, failed_picks, failed_places, picked)
            truth = _same_object(episodes[-1] if episodes else None, before, fetch)
            if isinstance(fetch, str) or not pose_task(op, f'demo-{episode}', fetch.formula):
                why = fetch if isinstance(fetch, str) else why_no_plan(op, f'demo-{episode}')
                # as when no fetch was offered at all: this episode and the next are moves
                log(f'episode {episode}: no fetch task ({why}): a move-only task instead')
                fetch, truth = None, None
                if not pose_move(episode):
                    break
        elif episode and not episodes[-1]['success']:
            # a move that failed (its place may be cut off or gone from the map since): the
            # farthest place reachable now, rather than the same task again
            log(f'episode {episode}: the last move failed: a move-only task posed again')
            if not pose_move(episode):
                break
        record = attempt(episode, fetch, truth)
        earlier = []
        while fetch is not None and not record['success'] and \
                len(earlier) + 1 < args.fetch_attempts:
            # the object was gone on arrival, out of reach, dropped...: choose again (the
            # same object if it is still there and was not the pick that failed) and go on
            again = next_fetch(op, args, fetch, regions, failed_picks, failed_places, picked)
            task_id = f'demo-{episode}-{len(earlier) + 1}'
            if isinstance(again, str) or not pose_task(op, task_id, again.formula):
                log(f'episode {episode}: no other attempt: ' + (again if isinstance(again, str)
                    else why_no_plan(op, task_id)))
                break
            log(f'episode {episode}: attempt {len(earlier) + 2}: bring {again.object_id} '
                f'({again.category}) to {again.surface_id}')
            earlier.append(_attempt(record))
            truth = _same_object(record, fetch, again)
            fetch = again
            record = attempt(episode, fetch, truth)
        if earlier:
            record['earlier_attempts'] = earlier
        episodes.append(record)
        if fetch is None and episode + 1 < args.episodes:  # back to the start place
            op.navigate_to_place(home, args.step_timeout_s)
            op.wait_sim(lambda: False, 2.0)
    return episodes


def _categories(args, fetch) -> list[str]:
    """The categories to fetch next: the current fetch's first, then the other --fetch ones."""
    return [fetch.category] + [c for c in args.fetch.split(',') if c and c != fetch.category]


def _failed_picks(record: dict) -> set:
    return {s['target'] for s in record['steps'] if s['action'] == 'pick' and not s['success']}


def _failed_places(record: dict) -> set:
    """The fetch's table, when its place step or a move to its place failed.

    Or when the planner could no longer reach its place: a failed move can block the last way
    there, and the same table chosen again would fail the same way.
    """
    if 'fetch' not in record:
        return set()
    place = str(record['fetch'].get('place', ''))
    failed = any(not s['success'] and (s['action'] == 'place' or s['target'] == f'place_{place}')
                 for s in record['steps'])
    cut = re.match(r'.*?place\(s\) ([\d, ]+) of the map cannot be reached',
                   record.get('reason', ''))
    if cut:
        failed |= place in cut.group(1).replace(' ', '').split(',')
    return {record['fetch']['surface']} if failed else set()


def _same_object(record: dict | None, before, after) -> tuple[str, str] | None:
    """The simulated object a record's fetch found, when the next fetch is of it too."""
    if record is None or before is None or after is None or isinstance(after, str) \
            or after.object_id != before.object_id or 'fetch' not in record \
            or record['fetch']['true_object'] is None:
        return None
    return record['fetch']['true_object'], record['fetch']['true_category']


def _attempt(record: dict) -> dict:
    """What an attempt that failed leaves in its episode's record."""
    keep = ('plan', 'reason', 'realised', 'rooms', 'entered_hazard')
    out = {k: record[k] for k in keep}
    if 'fetch' in record:
        out['fetch'] = record['fetch']
    return out


def pose_task(op, task_id: str, formula: str) -> bool:
    """Publish a task; wait (wall-clock bounded) until a plan of it is selected."""
    from embodied_aif_msgs.msg import TaskSpec

    op.pub_task.publish(TaskSpec(id=task_id, formula=formula))
    return op.wait_sim(lambda: op.selected is not None and op.plans is not None
                       and op.plans.task_id == task_id
                       and op.selected.id.startswith(f'{task_id}/'), float('inf'),
                       wall_limit=180)


def why_no_plan(op, task_id: str) -> str:
    """Why posing task ``task_id`` ended without a selected plan of it."""
    with op.lock:
        plans, planner = op.plans, op.planner_message
    if plans is None or plans.task_id != task_id:
        return (f'no plan selected: no Pareto set for {task_id} came in the wait'
                + (f' (task planner: {planner})' if planner else ''))
    return f'no plan selected: {plans.reason or f"{len(plans.plans)} Pareto plans, none chosen"}'


def run_episode(args, op, episode: int, summary: dict, fetch, truth=None) -> dict:
    """Execute the selected plan; the episode's record (fetch: checked on ground truth).

    ``truth``: the simulated (name, category) of the fetch's object when already known (it is
    in the hand); else it is found from the object's belief.
    """
    plan = op.selected
    log(f'episode {episode}: plan {plan.id} predicted cost {np.round(plan.expected_cost, 2)}')
    selection = selection_record(op, plan)
    if truth is None and fetch is not None:
        truth = true_object(op, fetch.object_id)
    at_start = truth_snapshot(op)
    t_start = op.clock
    result, steps = op.execute(plan.id, args.step_timeout_s * max(1, len(plan.steps)))
    rooms = op.rooms_between(t_start, op.clock)
    record = {'episode': episode, 'plan': result.plan_id or plan.id,
              'predicted': list(plan.expected_cost), 'steps': steps,
              'success': bool(result.success), 'reason': result.reason,
              'replans': int(result.replans), 'rooms': sorted(rooms),
              'entered_hazard': summary.get('hazard_room', '-') in rooms,
              'realised': [round(float(c), 3) for c in result.realised_cost],
              'selection': selection}
    if fetch is not None:
        op.wait_sim(lambda: False, 2.0)  # the ground truth of the object at rest
        done = delivered(op, truth[0] if truth else None, fetch.surface_id)
        carried = None if done else carried_to(op, at_start, fetch.surface_id)
        record['fetch'] = {'category': fetch.category, 'object': fetch.object_id,
                           'surface': fetch.surface_id,
                           'place': fetch.place, 'formula': fetch.formula,
                           'true_object': truth[0] if truth else None,
                           'true_category': truth[1] if truth else None,
                           'delivered': done or carried is not None}
        if carried is not None:
            # the belief's nearest object at the start was another (e.g. a cluster of it and
            # a neighbour): the one the robot moved onto the table is the one it fetched
            record['fetch'].update(true_object=carried[0], true_category=carried[1],
                                   nearest_at_start=truth[0] if truth else None)
        # success means the object really is on the table, not only that every step ended well
        record['success'] = record['success'] and record['fetch']['delivered']
    log(f"episode {episode}: {'succeeded' if record['success'] else 'failed'} "
        f'({result.reason}); realised cost {record["realised"]}')
    return record


def default_fetch(args, op, names: set, regions: dict, summary: dict):
    """The default fetch task (--fetch CATEGORY to the farthest table), or None and why not."""
    stages = summary['stages']
    if args.fetch == 'none':
        return None
    if not {'perception', 'manipulator'} <= names:
        stages['fetch'] = 'skipped: the stack has no perception/manipulator'
        return None
    op.wait_sim(lambda: op.surfaces is not None and op.objects is not None, 10.0,
                wall_limit=60)
    with op.lock:
        objects, surfaces = seen(op.objects), seen(op.surfaces)
    summary['perceived'] = {  # what the task was chosen from
        'objects': {k: [o.category, round(o.prob, 3),
                        *(round(v, 3) for v in (o.x, o.y, o.z, o.length, o.width, o.height,
                                                o.yaw))]
                    for k, o in objects.items()},
        'surfaces': {k: [round(v, 3) for v in (o.x, o.y, o.z, o.length, o.width)]
                     for k, o in surfaces.items()}}
    fetch = fetch_task(op, [c for c in args.fetch.split(',') if c], regions)
    if isinstance(fetch, str):
        stages['fetch'] = f'no fetch task ({fetch}): a move-only task instead'
        log(stages['fetch'])
        return None
    stages['fetch'] = (f'bring {fetch.object_id} ({fetch.category}) to {fetch.surface_id} at '
                       f'place {fetch.place}')
    log(stages['fetch'])
    return fetch


def seen(msg) -> dict:
    """Beliefs (ObjectBeliefArray) as task_world.Seen by id: most probable category, box."""
    from embodied_aif.models.task_world import Seen
    from embodied_aif.models.transforms import quaternion_yaw

    out = {}
    for o in msg.objects if msg is not None else ():
        p, q = o.pose.pose.position, o.pose.pose.orientation
        probs = list(o.category_probs)
        k = int(np.argmax(probs)) if probs else -1
        category = o.category_names[k] if 0 <= k < len(o.category_names) else ''
        out[o.id] = Seen(p.x, p.y, p.z, category, float(probs[k]) if probs else 0.0,
                         quaternion_yaw([q.x, q.y, q.z, q.w]), o.extent.x, o.extent.y,
                         o.extent.z)
    return out


def next_fetch(op, args, fetch, regions: dict, failed_picks: set, failed_places: set,
               picked: set = frozenset()):
    """The fetch to try after ``fetch``.

    What the hand holds, to the nearest table a place has not failed on (``choose_delivery``);
    else a fetch chosen again from what perception sees (the same object first, if it still
    qualifies and its pick has not failed; the objects in ``picked`` have been held, so their
    width in a view does not leave them out).
    """
    if op.held:
        return delivery_task(op, op.held, fetch.category, regions, failed_places)
    return fetch_task(op, _categories(args, fetch), regions, prefer=fetch.object_id,
                      exclude=failed_picks, held_before=picked)


def object_places(cmap) -> dict[int, tuple[float, float]]:
    """The places of the map an object or table may be at: those the robot has stood at.

    A hypothesised place (never visited) may lie under a table: a table's nearest place had
    been one, and no move reached it (session 18's default seed 3). None visited: all.
    """
    visited = [p for p in cmap.places if p.visit_count > 0] or list(cmap.places)
    return {p.id: (p.pose.position.x, p.pose.position.y) for p in visited}


def delivery_task(op, object_id: str, category: str, regions: dict, exclude=()):
    """models.task_world.choose_delivery from where the robot is now."""
    from embodied_aif.models.task_world import choose_delivery

    with op.lock:
        surfaces, places = seen(op.surfaces), object_places(op.map)
    at = op.odom_xy if op.odom_xy is not None else places.get(op.map.current_place, (0.0, 0.0))
    task = choose_delivery(object_id, category, at, surfaces, places, regions=regions,
                           exclude=exclude)
    if not isinstance(task, str):
        log(f'{object_id} is in the hand: put it on {task.surface_id} at place {task.place}')
    return task


def fetch_task(op, categories, regions: dict, prefer: str | None = None, exclude=(),
               held_before=(), unreachable: dict | None = None):
    """models.task_world.choose_fetch over the operator's latest beliefs and map.

    The categories are tried in order; the first that gives a task wins, else the reasons.
    ``unreachable`` (a dict) collects why the manipulator found no stand-point, by object.
    """
    from embodied_aif.models.task_world import choose_fetch

    with op.lock:
        objects, surfaces, places = seen(op.objects), seen(op.surfaces), object_places(op.map)

    def reachable(object_id: str) -> bool:
        why = op.approach_reason(object_id)
        if why:
            log(f'not fetching {object_id}: {why}')
            if unreachable is not None:
                unreachable[object_id] = why
        return not why

    reasons = []
    for category in categories:
        fetch = choose_fetch(objects, surfaces, places, category, regions=regions,
                             prefer=prefer, exclude=exclude, reachable=reachable,
                             held_before=held_before)
        if not isinstance(fetch, str):
            return fetch
        reasons.append(fetch)
    return '; '.join(reasons) or 'no category to fetch'


def true_object(op, object_id: str) -> tuple[str, str] | None:
    """Evaluation: the simulated object (name, category) nearest a belief, within 0.15 m."""
    with op.lock:
        belief, truth = seen(op.objects).get(object_id), op.truth_objects
    pose = op.world_from_odom()
    if belief is None or truth is None or pose is None:
        return None
    best = None
    for o in truth.objects:
        xy = odom_from_world(o.pose.pose.position.x, o.pose.pose.position.y, pose)
        d = math.hypot(xy[0] - belief.x, xy[1] - belief.y)
        if d < 0.15 and (best is None or d < best[0]):
            best = (d, o.id, o.category_names[0] if o.category_names else '')
    return best[1:] if best else None


def truth_snapshot(op) -> dict[str, tuple[tuple[float, float, float], str]]:
    """Evaluation: every simulated object's position (world frame) and category now."""
    with op.lock:
        truth = op.truth_objects
    if truth is None:
        return {}
    return {o.id: ((o.pose.pose.position.x, o.pose.pose.position.y, o.pose.pose.position.z),
                   o.category_names[0] if o.category_names else '') for o in truth.objects}


def carried_to(op, before: dict, surface_id: str, min_move: float = 0.3
               ) -> tuple[str, str] | None:
    """Evaluation: an object moved onto the surface since ``before``, as (name, category).

    Of the simulated objects moved at least ``min_move`` since ``before`` (a
    :func:`truth_snapshot`), the farthest moved that stands on the surface now; None if none.
    Nothing but the robot carries an object onto a table.
    """
    now = truth_snapshot(op)
    moved = sorted((-math.dist(xyz, before[name][0]), name) for name, (xyz, _) in now.items()
                   if name in before and math.dist(xyz, before[name][0]) >= min_move)
    for _, name in moved:
        if delivered(op, name, surface_id):
            return name, now[name][1]
    return None


def delivered(op, name: str | None, surface_id: str) -> bool:
    """Evaluation: whether the simulated object stands on the believed surface now.

    Its origin (the simulator's pose) over the surface and from 5 cm below the surface's top
    (a mesh's origin may sit at its underside, and the perceived top has centimetres of error)
    to 30 cm above it.
    """
    with op.lock:
        surface, truth = seen(op.surfaces).get(surface_id), op.truth_objects
    pose = op.world_from_odom()
    if name is None or surface is None or truth is None or pose is None:
        return False
    for o in truth.objects:
        if o.id == name:
            p = o.pose.pose.position
            return surface.contains(*odom_from_world(p.x, p.y, pose), margin=0.05) \
                and surface.z - 0.05 < p.z < surface.z + 0.3
    return False


def selection_record(op, plan) -> dict:
    """What the selector weighed for this choice: the EFE terms of every Pareto plan.

    From the plan_selector's diagnostics (published once a second of the node clock): waits up
    to 3 s of sim time for diagnostics that name this choice and cover exactly the current
    Pareto set, so that the terms belong to this decision; otherwise no terms are recorded.
    """
    def current() -> bool:  # the diagnostics name this choice and cover the current set
        n = len(op.plans.plans) if op.plans is not None else 0
        return f'plan {plan.id} of {n}' in op.selector_message and \
            sorted(op.selector_terms) == list(range(n))

    op.wait_sim(current, 3.0, wall_limit=30)
    with op.lock:
        terms, plans, ok = dict(op.selector_terms), op.plans, current()
    ids = [p.id for p in plans.plans] if plans is not None else []
    if not ok:
        return {'chosen': ids.index(plan.id) if plan.id in ids else -1, 'plans': []}
    return {'chosen': ids.index(plan.id) if plan.id in ids else -1,
            'plans': [{'id': ids[k], **{n: round(v, 4) for n, v in terms[k].items()}}
                      for k in range(len(ids))]}


def learning_curve(episodes: list[dict]) -> list[dict]:
    """Per episode: how far the chosen plan's predicted cost was from the realised one.

    relative_error[i] = |realised_i - predicted_i| / max(|realised_i|, 1e-3) per objective,
    for episodes that ran to the end (a failed episode's cost is of a partial plan).
    """
    curve = []
    for e in episodes:
        if not e['success'] or len(e['realised']) != len(e['predicted']):
            continue
        real, pred = np.asarray(e['realised'], float), np.asarray(e['predicted'], float)
        err = np.abs(real - pred) / np.maximum(np.abs(real), 1e-3)
        curve.append({'episode': e['episode'],
                      'relative_error': [round(float(v), 4) for v in err]})
    return curve


def plot(out: Path, op, summary: dict) -> list[str]:
    """PNG plots: trajectory and map; Pareto front and choices; beliefs, EFE, learning."""
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
            if len(e['predicted']) < 2:  # an episode that found no task to plan
                continue
            ax.scatter(*e['predicted'][:2], marker='x', c='tab:red')
            ax.annotate(str(e['episode']), e['predicted'][:2], fontsize=7)
        ax.set_xlabel('time (s)')
        ax.set_ylabel('energy')
        ax.legend(fontsize=7)
        fig.savefig(out / 'pareto_front.png', dpi=100)
        plt.close(fig)
        files.append('pareto_front.png')
    episodes = summary.get('episodes', [])
    if episodes:
        plot_beliefs(out / 'belief_efe.png', episodes, summary.get('learning_curve', []))
        files.append('belief_efe.png')
    return files


def plot_beliefs(path: Path, episodes: list[dict], curve: list[dict]) -> None:
    """EFE of the Pareto plans at each choice, predicted vs realised cost, learning curve."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    for e in episodes:
        plans = e.get('selection', {}).get('plans', [])
        if not plans:
            continue
        chosen = e['selection']['chosen']
        ax.scatter([e['episode']] * len(plans), [p['efe'] for p in plans], c='tab:gray', s=12)
        if 0 <= chosen < len(plans):
            c = plans[chosen]
            ax.scatter(e['episode'], c['efe'], c='tab:red', s=30, zorder=3)
            ax.scatter(e['episode'], c['risk'], marker='^', c='tab:orange', s=20)
            ax.scatter(e['episode'], -c['info_gain'], marker='v', c='tab:blue', s=20)
    ax.set_title('EFE per plan (red: chosen; ^ risk, v -info gain)', fontsize=8)
    ax.set_xlabel('episode')
    ax = axes[1]
    ep = [e['episode'] for e in episodes]
    ax.plot(ep, [e['predicted'][0] if e['predicted'] else np.nan for e in episodes], 'o-',
            label='predicted (belief mean)')
    ax.plot(ep, [e['realised'][0] if e['realised'] else np.nan for e in episodes], 's--',
            label='realised')
    ax.set_title('time cost of the chosen plan', fontsize=8)
    ax.set_xlabel('episode')
    ax.legend(fontsize=7)
    ax = axes[2]
    if curve:
        errors = np.array([c['relative_error'] for c in curve])
        for i, name in enumerate(['time', 'energy', 'risk'][:errors.shape[1]]):
            ax.plot([c['episode'] for c in curve], errors[:, i], 'o-', label=name)
        ax.legend(fontsize=7)
    ax.set_title('learning curve: |realised - predicted| / realised', fontsize=8)
    ax.set_xlabel('episode')
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Compose the stack, play the mission, write the summary and plots."""
    import rclpy
    from rclpy.parameter import Parameter

    from embodied_aif.cli._operator import Operator
    from embodied_aif.cli.run import Supervisor, compose
    from embodied_aif.nodes._common import IsolatedExecutors
    from embodied_aif.nodes.recorder import Recorder
    from embodied_aif.sim.simulation import check_display

    out = Path(args.out or f'runs/demo-{time.strftime("%Y%m%d-%H%M%S")}')
    try:
        stack = _compose_stack(args, out.resolve())
        hazard = hazard_room(args)
        if args.respawn and args.composed:
            raise StackError('--respawn needs a process per node, not --composed')
        if args.gui:  # before any node process starts
            check_display()
        if args.fetch_attempts < 1:
            raise StackError(f'--fetch-attempts must be >= 1, got {args.fetch_attempts}')
        for name in ('explore_s', 'search_s'):
            value = getattr(args, name)
            if not math.isfinite(value) or value < 0:
                flag = '--' + name.replace('_', '-')
                raise StackError(f'{flag} must be a finite number >= 0, got {value}')
    except (StackError, ValueError) as exc:
        print(f'embodied-aif demo: error: {exc}', file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / 'state').glob('*.json'):  # a new run starts from nothing learned
        old.unlink()
    names = {e.name for e in stack.nodes}
    summary = {'stack': sorted(names), 'scenario': args.scenario, 'seed': args.seed,
               'mode': 'composed' if args.composed else 'processes', 'stages': {},
               'not_yet_in_the_stack': sorted(
                   {'perception', 'cognitive_map', 'navigator', 'active_vision',
                    'manipulator', 'executive'} - names), '_hazard': hazard}
    wall0 = time.monotonic()
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes, supervisor, watching, executors = [], None, threading.Event(), None
    try:
        try:
            if not args.composed:  # one process per node, supervised in a thread of this one
                supervisor = Supervisor(stack, respawn=args.respawn)
                supervisor.start()
                threading.Thread(target=_supervise, args=(supervisor, watching),
                                 daemon=True).start()
            else:
                nodes = compose(stack, context)
        except (StackError, ValueError, RuntimeError) as exc:
            print(f'embodied-aif demo: error: {exc}', file=sys.stderr)
            return 2
        images = [f'/{cam}/{kind}' for cam in ('head_camera', 'wrist_camera')
                  for kind in ('color/image_raw', 'depth/image_rect')]
        recorder = Recorder(context=context, parameter_overrides=[
            Parameter('path', value=str(out / 'recording.mcap')),
            Parameter('exclude', value=[''] + images if args.image_rate <= 0 else ['']),
            Parameter('max_rates', value=[''] + [f'{t}={args.image_rate}' for t in images]
                      if args.image_rate > 0 else ['']),
            Parameter('use_sim_time', value=True)])
        nodes.append(recorder)
        op = Operator(context)
        executors = IsolatedExecutors([*nodes, op.node], serial=[recorder])
        executors.start()
        try:
            play(args, op, names, summary)
        except RuntimeError as exc:
            summary['error'] = str(exc)
        if executors.error is not None:
            summary.setdefault('error', f'a node stopped on an exception: {executors.error!r}')
        summary.pop('_hazard', None)
        summary['sim_time_s'] = round(op.clock, 2)
        summary['distance_m'] = round(op.distance, 2)
        summary['plots'] = plot(out, op, summary)
        if supervisor is not None:
            summary['restarts'] = supervisor.restarts()
        executors.stop()
        op.node.destroy_node()
        summary['recording'] = {'path': str(recorder.mcap.path),
                                'messages': dict(sorted(recorder.mcap.counts.items()))}
    finally:
        watching.set()
        if executors is not None:
            executors.stop()
        if supervisor is not None:
            supervisor.stop()
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


def _supervise(supervisor, stop: threading.Event) -> None:
    while not stop.is_set() and supervisor.poll():
        time.sleep(0.1)


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser(
        'demo', help='the main job: the whole stack in simulation, with a JSON summary',
        description='Run the stack of config/sim.yaml in simulation (headless, a process per '
                    'node): explore and map, plan a task over the map (Pareto set), select a '
                    'plan by active inference, execute it for several episodes while learning '
                    'costs. Prints a JSON summary; writes summary.json and PNG plots to --out.')
    parser.add_argument('--config', default=str(default_config_dir() / 'sim.yaml'),
                        help='stack file (default config/sim.yaml)')
    parser.add_argument('--scenario', default='default', help='simulator scenario')
    parser.add_argument('--seed', type=int, default=0, help='seed of world and noise')
    parser.add_argument('--task', help="LTLf task (default: the --fetch task, else 'F "
                                       "at_place_<farthest place>')")
    parser.add_argument('--preference', help='PREFERENCE.json (default: a balanced one)')
    parser.add_argument('--fetch', default='mug,can,bottle,box',
                        help='default task: bring an object of these categories (the first that '
                             'perception offers graspable and reachable) to the farthest table '
                             "in reach outside the hazard room, once per episode; 'none' or a "
                             'stack without perception and manipulator: a move-only task '
                             '(default mug,can,bottle,box)')
    parser.add_argument('--hazard-room', default='',
                        help="ROW,COL of a room the default task avoids (G !in_hazard); default "
                             "the room opposite the start room; 'none' for no hazard")
    parser.add_argument('--episodes', type=int, default=3, help='episodes (default 3)')
    parser.add_argument('--fetch-attempts', type=int, default=2,
                        help='fetch tasks tried per episode: after a failed one the fetch is '
                             'chosen again from what perception sees then (default 2)')
    parser.add_argument('--explore-s', type=float, default=150.0,
                        help='simulated seconds of exploration (default 150)')
    parser.add_argument('--search-s', type=float, default=60.0,
                        help='simulated seconds to explore on after --explore-s while nothing '
                             'of the --fetch categories is seen graspable and reachable (checked '
                             f'every {SEARCH_CHECK_S:.0f} s; default 60; 0 = none)')
    parser.add_argument('--step-timeout-s', type=float, default=90.0,
                        help='simulated seconds allowed per plan step (default 90)')
    parser.add_argument('--speed', type=float, default=3.0,
                        help='simulated seconds per wall second (default 3; 0 = as fast as the '
                             'simulator goes, which can outrun the other nodes on 2 cores)')
    parser.add_argument('--image-rate', type=float, default=0.5,
                        help='camera images per simulated second in the recording (default 0.5; '
                             '0 = no images)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--processes', dest='composed', action='store_false',
                      help='one process per node (the default)')
    mode.add_argument('--composed', action='store_true',
                      help='every node in this process, each on an executor and thread of its '
                           'own: less memory, but the nodes share one interpreter lock (the '
                           'perception node then processes about half as many frames)')
    parser.add_argument('--respawn', action='store_true',
                        help='restart a node process that dies (learned state is '
                             'checkpointed; not with --composed)')
    parser.add_argument('--gui', action='store_true',
                        help='show the PyBullet GUI window (needs a display; default headless)')
    parser.add_argument('--out', help='output folder (default runs/demo-<time>)')
    parser.set_defaults(func=run, composed=False)
