"""The building: walls and furniture stop the base, free-space paths, looks, objects."""
import math

import numpy as np
import pytest

from embodied_aif.sim.scenario import ScenarioError, parse_scenario
from embodied_aif.sim.simulation import Rates, Simulation

QUIET = Rates(head_camera_hz=0, wrist_camera_hz=0, scan_hz=0)


def scenario(rows=1, cols=1, **sections):
    data = {'name': 'test', 'building': {'rows': rows, 'cols': cols, 'room_size': 4.0},
            'furniture': {'per_room': {}}, 'objects': {'categories': ['can'],
                                                       'instances_per_category': 0},
            'robot': {'start_room': [0, 0], 'start_pose': [0.0, 0.0, 0.0]}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_scenario(data)


def drive(sim, v, w, seconds):
    """Resend a velocity command every 0.25 s (under the command timeout)."""
    for _ in range(int(seconds / 0.25)):
        sim.set_base_velocity(v, w)
        sim.step(int(0.25 * sim.rates.physics_hz))


def test_wall_stops_the_base():
    with Simulation(scenario(), seed=0, rates=QUIET, settle_s=0.0) as sim:
        drive(sim, 1.0, 0.0, 3.0)
        x, y, _ = sim.base_pose()
        wall_face = 4.0 - 0.05
        front = x + sim.robot_config.base_size[0] / 2  # the base's front edge
        assert wall_face - 0.1 < front <= wall_face + 0.05, front  # up to the wall, not in it
        assert sim.base_blocked
        assert sim.base_velocity()[0] == 0.0
        assert abs(y - 2.0) < 1e-9


def test_closed_door_keeps_the_base_in_its_room_and_open_door_lets_it_through():
    closed = scenario(1, 2, building={'closed_doors': [[[0, 0], [0, 1]]]})
    with Simulation(closed, seed=0, rates=QUIET, settle_s=0.0) as sim:
        drive(sim, 1.0, 0.0, 4.0)
        assert sim.ground_truth().robot_room == (0, 0)
        assert math.isinf(sim.shortest_path_length((2.0, 2.0), (6.0, 2.0)))
    with Simulation(scenario(1, 2), seed=0, rates=QUIET, settle_s=0.0) as sim:
        drive(sim, 1.0, 0.0, 4.0)
        assert sim.ground_truth().robot_room == (0, 1)
        length = sim.shortest_path_length((2.0, 2.0), (6.0, 2.0))
        assert 4.0 - 1e-6 <= length < 4.2


def test_furniture_stops_the_base():
    scen = scenario(furniture={'fixed': [{'kind': 'table', 'room': [0, 0], 'x': 1.0,
                                          'yaw_deg': 90}]})
    with Simulation(scen, seed=0, rates=QUIET, settle_s=0.0) as sim:
        table = sim.world.furniture[0]
        drive(sim, 1.0, 0.0, 2.0)
        front = sim.base_pose()[0] + sim.robot_config.base_size[0] / 2
        edge = table.center[0] - table.half[0]
        assert edge - 0.1 < front <= edge + 0.05, (front, edge)  # its front at the table's edge
        assert sim.base_blocked
        # and it can back away from the table
        drive(sim, -1.0, 0.0, 0.5)
        assert not sim.base_blocked


def test_shortest_path_goes_around_a_closed_door():
    scen = scenario(2, 2, building={'closed_doors': [[[0, 0], [0, 1]]]})
    with Simulation(scen, seed=0, rates=QUIET, settle_s=0.0) as sim:
        direct = 4.0
        around = sim.shortest_path_length((2.0, 2.0), (6.0, 2.0))
        assert around > 2 * direct - 0.5  # via rooms (1, 0) and (1, 1)
        assert math.isfinite(around)
        assert sim.shortest_path_length((2.0, 2.0), (2.0, 2.0)) == 0.0


def test_objects_carry_ground_truth_and_are_seeded():
    spec = {'categories': ['can', 'box', 'mug', 'bottle', 'bowl'], 'instances_per_category': 2,
            'surfaces': ['floor']}
    scen = scenario(objects=spec)
    with Simulation(scen, seed=4, rates=QUIET) as sim:
        truth = sim.ground_truth()
        assert not truth.unplaced
        cats = [o.category for o in truth.objects]
        assert sorted(set(cats)) == ['bottle', 'bowl', 'box', 'can', 'mug']
        assert all(cats.count(c) == 2 for c in set(cats))
        assert all(o.room == (0, 0) and o.support == 'floor' for o in truth.objects)
        assert all(abs(o.position[2]) < 0.1 for o in truth.objects)  # resting on the floor
        cans = [o.shape for o in truth.objects if o.category == 'can']
        assert cans[0] != cans[1]  # instances differ in shape
        first = [(o.name, o.shape, o.rgba) for o in truth.objects]
        sim.reset(seed=5)
        assert [(o.name, o.shape, o.rgba) for o in sim.ground_truth().objects] != first
        sim.reset(seed=4)
        assert [(o.name, o.shape, o.rgba) for o in sim.ground_truth().objects] == first


def test_aliased_rooms_share_a_look_and_distinct_rooms_do_not():
    scen = scenario(2, 2, appearance={'mode': 'aliased', 'alias_groups': [[[0, 0], [1, 1]]]},
                    furniture={'per_room': {'table': 1}})
    with Simulation(scen, seed=2, rates=QUIET, settle_s=0.0) as sim:
        looks = sim.world.looks
        assert looks[(0, 0)].floor_rgba == looks[(1, 1)].floor_rgba
        assert looks[(0, 0)].look_id == looks[(1, 1)].look_id
        assert len({looks[r].floor_rgba for r in [(0, 0), (0, 1), (1, 0)]}) == 3
        tables = {f.room: f for f in sim.world.furniture}
        offset = np.subtract(tables[(1, 1)].center, tables[(0, 0)].center)
        assert np.allclose(offset, (4.0, 4.0))  # same layout relative to the room


def test_distractor_mode_redraws_looks_per_seed():
    scen = scenario(2, 2, appearance={'mode': 'distractor'})
    with Simulation(scen, seed=0, rates=QUIET, settle_s=0.0) as sim:
        a = {r: (k.floor_rgba, k.floor_texture) for r, k in sim.world.looks.items()}
        sim.reset(seed=1)
        b = {r: (k.floor_rgba, k.floor_texture) for r, k in sim.world.looks.items()}
        assert a != b


def test_shipped_3x3_scenario_builds_with_furniture_and_objects():
    with Simulation('grid3x3', seed=0, rates=QUIET, settle_s=0.1) as sim:
        truth = sim.ground_truth()
        assert len(truth.objects) >= 20
        assert len({o.category for o in truth.objects}) >= 5
        assert {f.kind for f in sim.world.furniture} == {'table', 'shelf', 'tray'}
        assert truth.robot_room == (1, 1)


@pytest.mark.parametrize('bad', [{'seed': -1}, {'seed': 1.5}])
def test_bad_seed_is_rejected(bad):
    with Simulation(scenario(), seed=0, rates=QUIET, settle_s=0.0) as sim, \
            pytest.raises(ValueError, match='seed'):
        sim.reset(**bad)


def test_a_bad_reset_names_the_problem_and_keeps_the_running_world():
    with Simulation(scenario(), seed=0, rates=QUIET, settle_s=0.0) as sim:
        sim.step(10)
        with pytest.raises(ScenarioError, match="unknown scenario 'no_such_world'"):
            sim.reset('no_such_world')
        assert sim.step().step == 11 and sim.scenario.name == 'test'
