"""The whole agent with the PyBullet simulator: `ros2 launch embodied_aif sim.launch.py`.

Arguments: namespace, use_sim_time, params_file (default config/sim.yaml), rviz.
"""
from embodied_aif.cli.launch_description import generate


def generate_launch_description():
    """Return the launch description of config/sim.yaml."""
    return generate('sim.yaml')
