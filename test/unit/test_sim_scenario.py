"""Scenario loading and validation: shipped files load, bad files name the file and key."""
import pytest

from embodied_aif.sim.scenario import (
    BuildingSpec,
    ObjectSpec,
    ScenarioError,
    available_scenarios,
    load_scenario,
    parse_scenario,
)


def test_shipped_scenarios_load_and_cover_the_required_layouts():
    names = available_scenarios()
    for required in ('default', 'grid3x3', 'aliased', 'distractor', 'tabletop'):
        assert required in names
    layouts = {(s.building.rows, s.building.cols) for s in map(load_scenario, names)}
    assert (2, 2) in layouts and (3, 3) in layouts
    assert load_scenario('aliased').appearance.mode == 'aliased'
    assert load_scenario('distractor').appearance.mode == 'distractor'


def test_unknown_scenario_name_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'.*default"):
        load_scenario('nope')


@pytest.mark.parametrize('text, key', [
    ('name: x\nbuilding: {rows: 0}\n', 'building'),
    ('name: x\nbuilding: {colour: red}\n', 'building.colour'),
    ('name: x\nobjects: {categories: [can, spoon]}\n', 'objects'),
    ('name: x\nbuilding: {closed_doors: [[[0, 0], [1, 1]]]}\n', 'building'),
    ('name: x\nrobot: {start_room: [5, 5]}\n', 'robot.start_room'),
    ('name: x\nfurniture: {fixed: [{kind: sofa}]}\n', 'furniture.fixed[0]'),
    ('description: no name\n', 'name'),
    ('name: x\nlights: on\n', 'lights'),
])
def test_malformed_files_name_the_file_and_key(tmp_path, text, key):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    message = str(info.value)
    assert str(path) in message
    assert key in message


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('name: [unclosed\n')
    with pytest.raises(ScenarioError, match='broken.yaml: not valid YAML'):
        load_scenario(str(path))


def test_dataclasses_validate_in_code():
    with pytest.raises(ValueError, match='door_width'):
        BuildingSpec(room_size=(3.0, 3.0), door_width=3.0)
    with pytest.raises(ValueError, match='instances_per_category'):
        ObjectSpec(instances_per_category=-1)
    spec = BuildingSpec(rows=1, cols=2, doors='closed', open_doors=(((0, 1), (0, 0)),))
    assert spec.door_open((0, 0), (0, 1))
    closed = BuildingSpec(rows=1, cols=2, closed_doors=(((0, 0), (0, 1)),))
    assert not closed.door_open((0, 1), (0, 0))


def test_parse_scenario_from_a_mapping():
    scen = parse_scenario({'name': 'tiny', 'building': {'rows': 1, 'cols': 1},
                           'furniture': {'per_room': {}}, 'objects': {'categories': ['can']}})
    assert scen.building.rooms == [(0, 0)]
    assert scen.objects.categories == ('can',)
