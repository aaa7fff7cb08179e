"""The whole agent on a real robot (no simulator): `ros2 launch embodied_aif robot.launch.py`.

The robot's drivers must provide the topics listed in README.md ("On a real robot").
Arguments: namespace, use_sim_time, params_file (default config/robot.yaml), rviz.
"""
from embodied_aif.cli.launch_description import generate


def generate_launch_description():
    """Return the launch description of config/robot.yaml."""
    return generate('robot.yaml')
