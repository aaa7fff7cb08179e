"""The launch files build their node list from the same stack files as `embodied-aif run`.

This machine has no `launch`/`launch_ros` (they are not on PyPI), so small stand-ins record
what the launch files construct; the mapping from stack to Node actions is what is tested.
"""
import runpy
import sys
import types

import pytest

from embodied_aif.cli.launch_description import node_actions
from embodied_aif.cli.stack import load_stack

from conftest import REPO


class Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch):
    launch = types.ModuleType('launch')
    launch.LaunchDescription = Recorder
    actions = types.ModuleType('launch.actions')
    actions.DeclareLaunchArgument = Recorder
    actions.OpaqueFunction = Recorder
    subs = types.ModuleType('launch.substitutions')

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    subs.LaunchConfiguration = LaunchConfiguration
    launch_ros = types.ModuleType('launch_ros')
    ros_actions = types.ModuleType('launch_ros.actions')
    ros_actions.Node = Recorder
    for name, module in {'launch': launch, 'launch.actions': actions,
                         'launch.substitutions': subs, 'launch_ros': launch_ros,
                         'launch_ros.actions': ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize('launch_file', ['sim.launch.py', 'robot.launch.py'])
def test_launch_file_matches_stack(fake_launch, launch_file):
    module = runpy.run_path(str(REPO / 'launch' / launch_file))
    description = module['generate_launch_description']()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs for e in entities if 'default_value' in e.kwargs}
    assert set(declared) == {'namespace', 'use_sim_time', 'params_file', 'rviz'}
    assert all(kw['description'] for kw in declared.values())
    stack_file = declared['params_file']['default_value']
    opaque = entities[-1].kwargs['function']
    nodes = opaque({'namespace': 'robot1', 'use_sim_time': '', 'params_file': stack_file,
                    'rviz': 'true'})
    stack = load_stack(stack_file, namespace='robot1')
    expected = node_actions(stack)
    got = [n.kwargs for n in nodes if n.kwargs['package'] == 'embodied_aif']
    assert got == expected and len(got) == len(stack.nodes) >= 1
    assert all(kw['namespace'] == '/robot1' for kw in got)
    assert any(n.kwargs['executable'] == 'rviz2' for n in nodes)
    for kw in got:
        assert kw['parameters'][0]['use_sim_time'] == stack.use_sim_time
