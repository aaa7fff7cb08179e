"""Rules of the topological cognitive map: growth, loop closure, evidence, re-localisation."""
import dataclasses

import numpy as np
import pytest

from embodied_aif.models.cognitive_map import (
    BLOCKED,
    EXPERIENCED,
    IMAGINED,
    CognitiveMap,
    MapConfig,
    add_frontiers,
    add_hypothesised_place,
    add_imagined_edge,
    clear_blocked,
    edge_route,
    image_code,
    link_visible_places,
    mark_blocked,
    mark_traversed,
    match_scan,
    observe,
    propose_frontiers,
    scan_blocks_link,
    scan_code,
    to_message_fields,
    update,
)

CFG = MapConfig(radius=1.5)


def room_codes(n, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, dim))
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def walk(cmap, points, code_fn):
    events = []
    for p in points:
        cmap, ev = update(cmap, p, code_fn(p), CFG)
        events.append(ev)
    return cmap, events


def line(x0, x1, y=0.0, step=0.25):
    return [(x, y) for x in np.arange(x0, x1 + 1e-9, step)]


def test_growth_creates_places_when_leaving_the_radius():
    code = room_codes(1)[0]
    cmap, events = walk(CognitiveMap(), line(0.0, 6.0), lambda p: code)
    kinds = [e.kind for e in events]
    assert kinds[0] == 'start' and kinds.count('new_place') == cmap.num_places - 1
    # a place every time the robot is more than 1.5 m from the last one: 0, 1.75, 3.5, 5.25
    np.testing.assert_allclose(cmap.poses[:, 0], [0.0, 1.75, 3.5, 5.25])
    assert len(cmap.edges) == 3
    for e in cmap.edges.values():
        assert e.kind == EXPERIENCED and abs(e.b - e.a) == 1
        assert e.length == pytest.approx(1.75)
    assert cmap.current == 3 and cmap.confidence > 0.5


def test_loop_closure_when_pose_and_code_match():
    code = room_codes(1)[0]
    square = (line(0, 4) + [(4.0, y) for y in np.arange(0.25, 4.01, 0.25)]
              + [(x, 4.0) for x in np.arange(3.75, -0.01, -0.25)]
              + [(0.0, y) for y in np.arange(3.75, -0.01, -0.25)])
    cmap, events = walk(CognitiveMap(), square, lambda p: code)
    closures = [e for e in events if e.kind == 'loop_closure']
    assert closures and closures[-1].place == 0
    assert cmap.current == 0 and cmap.loop_closures == len(closures)
    # place 0 now has two neighbours: the first and the last place of the loop
    assert len(cmap.neighbours(0)) == 2


def test_aliased_rooms_do_not_close_loops_across_the_building():
    codes = room_codes(2)
    aliased = codes[0]

    def code_at(p):  # rooms at x < 3 and x > 9 look the same; a corridor in between
        return aliased if p[0] < 3 or p[0] > 9 else codes[1]

    cmap, events = walk(CognitiveMap(), line(0.0, 12.0), code_at)
    assert not any(e.kind == 'loop_closure' for e in events)
    assert cmap.loop_closures == 0
    # every place keeps a distinct position along the corridor
    assert np.all(np.diff(cmap.poses[:, 0]) > CFG.radius)


def test_pose_match_with_different_code_grows_a_new_place():
    codes = room_codes(2)
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: codes[0])
    assert cmap.num_places == 2
    # come back into place 0's radius (1 m from its centre) but the view is different
    back = [(1.75 - 1.45 * t, 1.0 * t) for t in np.linspace(0.05, 1.0, 20)]
    cmap, events = walk(cmap, back, lambda p: codes[1])
    ev = next(e for e in events if e.kind != 'stay')
    assert ev.kind == 'new_place' and 'code matches none' in ev.reason
    assert cmap.num_places == 3 and cmap.loop_closures == 0


def test_same_spot_seen_differently_adds_a_view():
    codes = room_codes(2)
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: codes[0])
    cmap, events = walk(cmap, line(0.0, 1.75)[::-1], lambda p: codes[1])
    ev = next(e for e in events if e.kind != 'stay')
    assert ev.kind == 'new_view' and ev.place == 0 and cmap.num_places == 2
    assert cmap.current == 0 and cmap.visits[0] == 2
    # both views now recognise place 0
    cmap, events = walk(cmap, line(0.25, 2.0), lambda p: codes[0])
    cmap, events = walk(cmap, line(0.0, 1.75)[::-1], lambda p: codes[0])
    ev = next(e for e in events if e.kind != 'stay')
    assert ev.kind == 'revisit' and ev.place == 0


def test_edge_kinds_carry_different_evidence():
    code = room_codes(1)[0]
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: code)
    e = cmap.edge(0, 1)
    assert e.kind == EXPERIENCED and e.confidence == pytest.approx(1.0) and e.count == 5.0
    blocked = mark_blocked(cmap, 1, 0, CFG)
    e = blocked.edge(0, 1)
    assert e.kind == BLOCKED and e.confidence == pytest.approx(5.0 / 11.0) and e.count == 11.0
    cmap, hyp = add_hypothesised_place(cmap, (1.75, 3.0), 1, CFG)
    e = cmap.edge(1, hyp)
    assert e.kind == IMAGINED and e.confidence == pytest.approx(0.5) and e.count == 1.0
    assert cmap.visits[hyp] == 0
    # an imagined edge never overrides real evidence
    assert add_imagined_edge(blocked, 0, 1, CFG).edge(0, 1).kind == BLOCKED


def test_hypothesised_place_is_visited_not_duplicated():
    code = room_codes(1)[0]
    cmap, _ = walk(CognitiveMap(), line(0.0, 1.0), lambda p: code)
    cmap, hyp = add_hypothesised_place(cmap, (3.0, 0.0), 0, CFG)
    cmap, events = walk(cmap, line(1.25, 3.0), lambda p: code)
    assert events[-1].kind == 'visit' or any(e.kind == 'visit' for e in events)
    assert cmap.num_places == 2 and cmap.visits[hyp] == 1
    assert cmap.edge(0, hyp).kind == EXPERIENCED
    np.testing.assert_allclose(cmap.codes[hyp], code)


def test_invalid_inputs_leave_the_map_unchanged():
    code = room_codes(1)[0]
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: code)
    same, ev = update(cmap, (np.nan, 0.0), code, CFG)
    assert ev.kind == 'invalid' and same is cmap
    same, ev = update(cmap, (2.0, 0.0), np.full(16, np.nan), CFG)
    assert ev.kind == 'invalid' and same is cmap
    with pytest.raises(ValueError, match='code has 3 entries'):
        update(cmap, (2.0, 0.0), np.ones(3), CFG)
    with pytest.raises(ValueError, match='pose'):
        update(cmap, (1.0, 2.0, 3.0, 4.0), code, CFG)
    with pytest.raises(ValueError, match='radius'):
        MapConfig(radius=-1.0)


def smooth_code(p):
    """Appearance changing smoothly along x: 0.25 m apart looks alike, 1.75 m apart does not."""
    code = np.zeros(16)
    code[:2] = np.cos(0.4 * p[0]), np.sin(0.4 * p[0])
    return code


def test_odometry_jump_relocalises_on_a_distinctive_place():
    code_at = smooth_code
    cmap, _ = walk(CognitiveMap(), line(0.0, 9.0), code_at)
    n = cmap.num_places
    # odometry jumps by +7 m while the robot really stays at x = 9
    cmap, ev = update(cmap, (16.0, 0.0), code_at((9.0, 0.0)), CFG)
    assert cmap.offset[0] == pytest.approx(-7.25)  # re-based on the place centre (8.75)
    assert ev.kind == 'relocalised'
    assert np.linalg.norm(cmap.poses[ev.place, :2] - [9.0, 0.0]) <= CFG.radius
    # afterwards the corrected odometry matches the map: walking back creates no place
    cmap, events = walk(cmap, [(16.0 - d, 0.0) for d in np.arange(0.25, 9.01, 0.25)],
                        lambda p: code_at((p[0] - 7.0, 0.0)))
    assert cmap.num_places == n
    assert cmap.current == 0


def test_aliased_jump_is_lost_until_a_move_disambiguates():
    codes = room_codes(3, seed=5)

    def code_at(p):  # rooms 0 and 2 look alike; room 1 (middle) differs; beyond x=6 unique
        x = p[0]
        if x < 2 or 4 <= x < 6:
            return codes[0]
        return codes[1] if x < 4 else codes[2]

    cmap, _ = walk(CognitiveMap(), line(0.0, 8.0), code_at)
    # true position x = 4.5 (aliased with x = 0.5); odometry jumps far away
    cmap, ev = update(cmap, (30.0, 0.0), code_at((4.5, 0.0)), CFG)
    assert ev.kind == 'jump' and cmap.current == -1 and cmap.lost
    assert cmap.confidence < CFG.lost_threshold
    # moving +3.5 m: from x=4.5 that is x=8 (unique code); from x=0.5 it would be x=4
    cmap, ev = update(cmap, (33.5, 0.0), code_at((8.0, 0.0)), CFG)
    assert ev.kind == 'relocalised' and not cmap.lost
    assert abs(cmap.poses[ev.place, 0] - 8.0) <= CFG.radius


def test_message_fields_follow_the_interface():
    code = room_codes(1)[0]
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: code)
    cmap = mark_blocked(cmap, 0, 1, CFG)
    msg = to_message_fields(cmap)
    assert set(msg) == {'places', 'edges', 'current_place', 'localisation_confidence'}
    assert msg['current_place'] == 1 and len(msg['places']) == 2
    assert set(msg['places'][0]) == {'id', 'x', 'y', 'yaw', 'visit_count', 'observation_code',
                                     'radius', 'belief'}
    assert msg['edges'][0]['kind'] == BLOCKED == 2
    assert sum(p['belief'] for p in msg['places']) == pytest.approx(1.0)


def test_observation_codes():
    rng = np.random.default_rng(0)
    red = np.zeros((24, 32, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros_like(red)
    blue[..., 2] = 200
    noisy_red = np.clip(red + rng.integers(0, 10, red.shape), 0, 255).astype(np.uint8)
    c_red, c_blue, c_noisy = image_code(red), image_code(blue), image_code(noisy_red)
    assert np.linalg.norm(c_red) == pytest.approx(1.0)
    assert 1 - c_red @ c_noisy < CFG.code_threshold < 1 - c_red @ c_blue
    ranges = np.concatenate([np.full(90, 1.0), np.full(270, 4.0)])
    s = scan_code(ranges, 8.0)
    np.testing.assert_allclose(scan_code(np.roll(ranges, 77), 8.0), s)
    with_nan = ranges.copy()
    with_nan[::30] = np.nan
    assert 1 - s @ scan_code(with_nan, 8.0) < 0.01
    with pytest.raises(ValueError):
        scan_code(np.full(10, np.nan), 8.0)


def corridor_scan(y_walls=1.0, n=360, rmax=8.0, x=0.0, blocked_at=None):
    """Ranges seen from (x, 0) heading +x in a corridor with walls at y = +-y_walls."""
    angles = np.linspace(-np.pi, np.pi, n, endpoint=False)
    with np.errstate(divide='ignore'):
        r = np.where(np.abs(np.sin(angles)) > 1e-9, y_walls / np.abs(np.sin(angles)), np.inf)
    if blocked_at is not None:  # a wall across the corridor at x = blocked_at
        with np.errstate(divide='ignore', invalid='ignore'):
            rx = np.where(np.cos(angles) > 1e-9, (blocked_at - x) / np.cos(angles), np.inf)
        r = np.minimum(r, rx)
    return np.where(r < rmax, r, np.inf), angles


def test_frontiers_follow_open_space_and_skip_covered_points():
    code = room_codes(1)[0]
    cmap, _ = update(CognitiveMap(), (0.0, 0.0, 0.0), code, CFG)
    ranges, angles = corridor_scan()
    pts = propose_frontiers(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG)
    # only along the corridor, both ways, two radii out
    assert len(pts) == 2
    np.testing.assert_allclose(np.sort(pts[:, 0]), [-3.0, 3.0], atol=0.05)
    np.testing.assert_allclose(pts[:, 1], 0.0, atol=0.05)
    cmap = add_frontiers(cmap, pts, CFG)
    assert cmap.num_places == 3 and np.all(cmap.visits[1:] == 0)
    assert all(e.kind == IMAGINED for e in cmap.edges.values())
    # the same scan again proposes nothing new: the points are covered
    assert len(propose_frontiers(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG)) == 0
    # a wall 1 m ahead: no frontier that way
    ranges, angles = corridor_scan(blocked_at=1.0)
    fresh, _ = update(CognitiveMap(), (0.0, 0.0, 0.0), code, CFG)
    pts = propose_frontiers(fresh, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG)
    assert len(pts) == 1 and pts[0, 0] < 0


def test_visible_places_get_imagined_links_only_in_clear_view():
    code = room_codes(1)[0]
    cmap, _ = update(CognitiveMap(), (0.0, 0.0, 0.0), code, CFG)
    cmap, far = add_hypothesised_place(cmap, (2.5, 0.0), -1, CFG)
    assert cmap.edge(0, far) is None
    ranges, angles = corridor_scan(blocked_at=1.2)
    assert link_visible_places(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0,
                               CFG).edge(0, far) is None
    ranges, angles = corridor_scan()
    linked = link_visible_places(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG)
    assert linked.edge(0, far).kind == IMAGINED


def test_a_link_the_stored_scans_saw_blocked_is_vetoed():
    code = room_codes(1)[0]
    cmap, _ = update(CognitiveMap(), (0.0, 0.0, 0.0), code, CFG)
    cmap, far = add_hypothesised_place(cmap, (3.0, 0.0), -1, CFG)
    assert not scan_blocks_link(cmap, 0, far, 0.15)  # no scans: no evidence
    # a wall across the corridor 1.5 m ahead, seen from place 0
    ranges, angles = corridor_scan(blocked_at=1.5)
    seen, _ = observe(CognitiveMap(), (0.0, 0.0, 0.0), code, ranges, angles, 0.05, 8.0, CFG)
    walled, far = add_hypothesised_place(seen, (3.0, 0.0), -1, CFG)
    assert scan_blocks_link(walled, 0, far, 0.15) and scan_blocks_link(walled, far, 0, 0.15)
    # the corridor walls are 1 m to the side: a link along it is free, one into a wall is not
    ranges, angles = corridor_scan()
    clear, _ = observe(CognitiveMap(), (0.0, 0.0, 0.0), code, ranges, angles, 0.05, 8.0, CFG)
    clear, ahead = add_hypothesised_place(clear, (3.0, 0.0), -1, CFG)
    clear, beyond = add_hypothesised_place(clear, (0.0, 2.0), -1, CFG)
    assert not scan_blocks_link(clear, 0, ahead, 0.15)
    assert scan_blocks_link(clear, 0, beyond, 0.15)
    # an obstacle within the clearance of an end does not count (the place stands there)
    short, near = add_hypothesised_place(seen, (1.6, 0.0), -1, CFG)
    assert not scan_blocks_link(short, 0, near, 0.15)
    assert scan_blocks_link(short, 0, near, 0.05)


def test_scan_matching_recovers_the_offset_within_a_place():
    ranges, angles = corridor_scan(blocked_at=3.0)
    stored = np.column_stack([ranges * np.cos(angles), ranges * np.sin(angles)])
    stored = stored[np.isfinite(ranges)]
    # the robot is 0.6 m back and 0.3 m to the side of where the place's scan was taken
    ranges2, _ = corridor_scan(y_walls=1.0, x=-0.6, blocked_at=3.0)
    shifted = np.column_stack([ranges2 * np.cos(angles), ranges2 * np.sin(angles)])
    local = shifted[np.isfinite(ranges2)]
    t, score = match_scan(stored, local, 0.0, 1.5)
    assert score > 0.8
    assert t[0] == pytest.approx(-0.6, abs=0.11)
    # the observe wrapper stores the scan of a new place
    code = room_codes(1)[0]
    cmap, ev = observe(CognitiveMap(), (0.0, 0.0, 0.0), code, ranges, angles, 0.05, 8.0, CFG)
    assert ev.kind == 'start' and 0 in cmap.scans and len(cmap.scans[0]) > 100


def test_blocked_evidence_needs_repeats_saturates_and_decays_when_seen_clear():
    code = room_codes(1)[0]
    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), lambda p: code)
    for _ in range(5):  # travelled again and again: success saturates at max_success
        cmap = mark_traversed(cmap, 0, 1, CFG)
    assert cmap.edge(0, 1).success == pytest.approx(CFG.max_success)
    once = mark_blocked(cmap, 0, 1, CFG)
    twice = mark_blocked(once, 1, 0, CFG)
    assert once.edge(0, 1).kind == BLOCKED
    assert once.edge(0, 1).confidence > 0.5 > twice.edge(0, 1).confidence
    # the way seen clear: half the failure evidence is forgotten, the edge is usable again
    cleared = clear_blocked(twice, 0, 1, CFG)
    assert cleared.edge(0, 1).failure == pytest.approx(twice.edge(0, 1).failure * 0.5)
    assert cleared.edge(0, 1).kind == EXPERIENCED and cleared.edge(0, 1).waypoints
    assert clear_blocked(cmap, 0, 1, CFG) is cmap  # no failure: nothing to forget
    # observe's scan check does it: at place 1 a clear corridor back to place 0
    at1 = dataclasses.replace(twice, current=1)
    ranges, angles = corridor_scan()
    seen = link_visible_places(at1, (2.0, 0.0, np.pi), ranges, angles, 0.05, 8.0, CFG)
    assert seen.edge(0, 1).failure < twice.edge(0, 1).failure
    # a closed door (wall across the corridor) keeps the evidence
    ranges, angles = corridor_scan(blocked_at=1.0)
    shut = link_visible_places(at1, (2.0, 0.0, np.pi), ranges, angles, 0.05, 8.0, CFG)
    assert shut.edge(0, 1).failure == twice.edge(0, 1).failure
    # a failed imagined link keeps some doubt however often it is seen clear
    guess, k = add_hypothesised_place(cmap, (1.0, 2.5), 1, CFG)
    guess = mark_blocked(guess, 1, k, CFG)
    for _ in range(10):
        guess = clear_blocked(guess, 1, k, CFG)
    assert guess.edge(1, k).kind == IMAGINED
    assert guess.edge(1, k).failure == pytest.approx(CFG.imagined_count)


def test_a_guess_visited_far_from_where_it_was_guessed_drops_its_imagined_links():
    code = room_codes(1)[0]
    cmap, _ = update(CognitiveMap(), (0.0, 0.0), code, CFG)
    cmap, near = add_hypothesised_place(cmap, (2.0, 0.0), 0, CFG)
    cmap, other = add_hypothesised_place(cmap, (2.0, 3.2), -1, CFG)
    cmap = add_imagined_edge(cmap, near, other, CFG)
    # the robot walks towards the guess: it is visited (its code observed) 0.75 m short of it
    cmap, events = walk(cmap, line(0.25, 1.6), lambda p: code)
    visits = [e for e in events if e.kind == 'visit']
    assert len(visits) == 1 and visits[0].place == near
    assert cmap.poses[near, 0] == pytest.approx(1.25)
    assert cmap.edge(0, near).kind == EXPERIENCED
    assert cmap.edge(near, other) is None


def test_checkpoint_round_trip_is_exact_and_bad_files_are_named():
    import json

    from embodied_aif.models.cognitive_map import map_from_checkpoint, map_to_checkpoint

    codes = room_codes(3)
    cmap, _ = walk(CognitiveMap(), line(0.0, 4.0), lambda p: codes[int(p[0] // 1.5)])
    cmap, _ = observe(cmap, (4.0, 0.0, 0.0), codes[2], *corridor_scan(), 0.1, 8.0, CFG)
    cmap = mark_blocked(cmap, 0, 1, CFG)
    cmap, hyp = add_hypothesised_place(cmap, (1.0, 3.0), 1, CFG)
    back = map_from_checkpoint(json.loads(json.dumps(map_to_checkpoint(cmap))))
    for f in dataclasses.fields(CognitiveMap):
        a, b = getattr(cmap, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif f.name in ('views', 'scans'):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
        else:
            assert a == b, f.name
    # the restored map keeps working: the same update gives the same result
    nxt, ev = update(cmap, (4.25, 0.0), codes[2], CFG)
    nxt_back, ev_back = update(back, (4.25, 0.0), codes[2], CFG)
    assert ev == ev_back and nxt.current == nxt_back.current
    with pytest.raises(ValueError, match='map.json: not a cognitive-map checkpoint'):
        map_from_checkpoint({'version': 7}, 'map.json')
    doc = map_to_checkpoint(cmap)
    doc['map']['fields']['poses']['shape'] = [1]
    with pytest.raises(ValueError, match='map.json: map.poses: malformed'):
        map_from_checkpoint(doc, 'map.json')


def test_a_resumed_map_trusts_continuous_odometry_instead_of_getting_lost():
    from embodied_aif.models.cognitive_map import resume

    codes = room_codes(3, seed=5)

    def code_at(p):  # aliased rooms: re-localising from codes alone would be lost
        return codes[0] if p[0] < 2 or 4 <= p[0] < 6 else codes[1]

    cmap, _ = walk(CognitiveMap(), line(0.0, 2.0), code_at)
    n = cmap.num_places
    # the map process restarted while the robot drove on to x = 4.5 (more than max_jump)
    jumped, ev = update(cmap, (4.5, 0.0), code_at((4.5, 0.0)), CFG)
    assert ev.kind == 'jump' and jumped.lost
    resumed, ev = resume(cmap, (4.5, 0.0))
    assert ev.kind == 'relocalised' and not resumed.lost
    assert resumed.current == int(np.argmin(np.abs(cmap.poses[:, 0] - 4.5)))
    # mapping goes on from there: growth, no jump, no lost state
    resumed, events = walk(resumed, line(4.5, 6.0), code_at)
    assert not resumed.lost and resumed.num_places > n
    assert not {e.kind for e in events} & {'jump', 'lost'}
    with pytest.raises(ValueError, match='pose must be'):
        resume(cmap, (1.0, 2.0, 3.0, 4.0))
    assert resume(cmap, (np.nan, 0.0))[1].kind == 'invalid'


def test_lost_robot_standing_still_does_not_relocalise_on_repeated_noisy_looks():
    codes = room_codes(2, seed=7)
    rng = np.random.default_rng(3)

    def code_at(p):  # two look-alike rooms side by side: only the room's code, plus noise
        return codes[0] + 0.05 * rng.normal(size=codes.shape[1])

    cmap, _ = walk(CognitiveMap(), line(0.0, 8.0), code_at)
    cmap, ev = update(cmap, (40.0, 0.0), code_at(None), CFG)
    assert ev.kind == 'jump' and cmap.lost
    # the robot stands still for a long time: the same view again and again is no evidence
    for _ in range(300):
        cmap, ev = update(cmap, (40.0, 0.0), code_at(None), CFG)
    assert cmap.lost and ev.kind == 'lost'
    assert cmap.hypotheses.max() < CFG.lost_threshold


def test_a_hypothesis_off_the_map_is_neither_favoured_nor_penalised():
    codes = room_codes(2, seed=9)

    def code_at(p):  # everything looks alike up to x = 6; the map ends at x = 6
        return codes[0]

    cmap, _ = walk(CognitiveMap(), line(0.0, 6.0), code_at)
    cmap, ev = update(cmap, (50.0, 0.0), code_at(None), CFG)
    assert cmap.lost
    before = cmap.hypotheses.copy()
    # drive +2 m: hypotheses from the last places end up beyond the map (no place there)
    for d in np.arange(0.25, 2.01, 0.25):
        cmap, ev = update(cmap, (50.0 + d, 0.0), code_at(None), CFG)
    assert cmap.lost
    pred = cmap.poses[:, :2] + [2.0, 0.0]
    gap = np.linalg.norm(pred[:, None] - cmap.poses[None, :, :2], axis=2).min(axis=1)
    off_map = np.flatnonzero(gap > CFG.radius)
    on_map = np.flatnonzero(gap <= CFG.radius)
    assert off_map.size and on_map.size
    # the code matched wherever a place was: the ratio off/on the map is what it was
    ratio_before = before[off_map].sum() / before[on_map].sum()
    ratio_after = cmap.hypotheses[off_map].sum() / cmap.hypotheses[on_map].sum()
    assert ratio_after == pytest.approx(ratio_before, rel=0.05)


def wall_ranges(segments, angles, rmax=8.0):
    """Ranges from the origin to wall segments ((x0, y0), (x1, y1)) along ``angles``."""
    segs = np.asarray(segments, dtype=float)
    d = np.column_stack([np.cos(angles), np.sin(angles)])
    a, e = segs[:, 0], segs[:, 1] - segs[:, 0]
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (a[None, :, 0] * e[None, :, 1] - a[None, :, 1] * e[None, :, 0]) / den
        s = (a[None, :, 0] * d[:, None, 1] - a[None, :, 1] * d[:, None, 0]) / den
    r = np.where((np.abs(den) > 1e-12) & (t > 0) & (s >= 0) & (s <= 1), t, np.inf).min(axis=1)
    return np.where(r < rmax, r, np.inf)


def test_a_place_seen_at_an_angle_through_a_doorway_gets_a_link_through_it():
    code = room_codes(1)[0]
    cmap, _ = update(CognitiveMap(), (0.0, 0.0, 0.0), code, CFG)
    cmap, far = add_hypothesised_place(cmap, (2.0, 2.0), -1, CFG)
    angles = np.linspace(-np.pi, np.pi, 720, endpoint=False)
    door = [((-3.0, 1.0), (0.0, 1.0)), ((1.2, 1.0), (4.0, 1.0))]  # a 1.2 m door at y = 1
    ranges = wall_ranges(door, angles)
    # the straight line grazes the door jamb at (1.2, 1): no straight link (nor by default)
    straight = link_visible_places(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG,
                                   clearance=0.4)
    assert straight.edge(0, far) is None
    # through a point in the doorway both legs are clear: an imagined link with that route
    linked = link_visible_places(cmap, (0.0, 0.0, 0.0), ranges, angles, 0.05, 8.0, CFG,
                                 clearance=0.4, via=True)
    edge = linked.edge(0, far)
    assert edge is not None and edge.kind == IMAGINED
    route = edge_route(linked, 0, far)
    assert len(route) == 3 and 0.0 < route[1][0] < 1.2 and route[1][1] > 0.6
    # a wall with no door: nothing
    wall = wall_ranges([((-3.0, 1.0), (4.0, 1.0))], angles)
    assert link_visible_places(cmap, (0.0, 0.0, 0.0), wall, angles, 0.05, 8.0, CFG,
                               clearance=0.4, via=True).edge(0, far) is None
