"""Build a `ros2 launch` description from a stack configuration (shared by launch/*.launch.py).

The launch files and `embodied-aif run` read the same stack YAML through cli/stack.py, so the
graph started by `ros2 launch embodied_aif sim.launch.py` is the graph `embodied-aif run` starts.
Launch arguments (all documented by `ros2 launch ... --show-args`):
  namespace     robot namespace (default: the stack file's)
  use_sim_time  follow /clock (default: the stack file's)
  params_file   stack configuration file (default: config/<sim|robot>.yaml)
  rviz          start RViz with config/embodied_aif.rviz (default false)
"""
from __future__ import annotations

from pathlib import Path

from embodied_aif.cli.stack import Stack, default_config_dir, load_stack, validate


def node_actions(stack: Stack) -> list[dict]:
    """Keyword arguments of one launch_ros Node action per node of the stack."""
    return [dict(package='embodied_aif', executable=entry.module.rsplit('.', 1)[-1],
                 name=entry.name, namespace=entry.namespace or None,
                 parameters=[entry.parameters], remappings=list(entry.remappings.items()),
                 output='screen')
            for entry in stack.nodes]


def generate(default_stack: str):
    """Return a LaunchDescription for config/<default_stack> (needs a full ROS 2 install)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    config = default_config_dir()

    def nodes(context):
        def arg(name):
            return LaunchConfiguration(name).perform(context)

        sim_time = arg('use_sim_time')
        stack = load_stack(arg('params_file'), namespace=arg('namespace') or None,
                           use_sim_time=None if sim_time == '' else sim_time.lower() == 'true')
        validate(stack)
        actions = [Node(**kwargs) for kwargs in node_actions(stack)]
        if arg('rviz').lower() == 'true':
            actions.append(Node(package='rviz2', executable='rviz2', name='rviz2',
                                namespace=stack.namespace or None,
                                arguments=['-d', str(config / 'embodied_aif.rviz')],
                                parameters=[{'use_sim_time': stack.use_sim_time}]))
        return actions

    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='robot namespace ("" = the stack file\'s)'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description='true/false; "" = the stack file\'s setting'),
        DeclareLaunchArgument('params_file', default_value=str(Path(config) / default_stack),
                              description='stack configuration (nodes, parameters, remappings)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='start RViz with config/embodied_aif.rviz'),
        OpaqueFunction(function=nodes),
    ])
