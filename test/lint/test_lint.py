"""Lint tier: ruff (pyflakes, pycodestyle, pep257 docstrings, imports) and layering rules."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

ROS_MODULES = ('rclpy', 'launch', 'launch_ros', 'tf2_ros', 'message_filters', 'rosidl_runtime_py',
               'ament_index_python', 'rosbag2_py')


def test_ruff_clean():
    ruff = Path(sys.executable).parent / 'ruff'
    result = subprocess.run([str(ruff), 'check', '--no-cache', str(REPO)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def ros_imports(path: Path) -> list[str]:
    """Names of ROS modules (rclpy, *_msgs, *_srvs, launch, ...) a Python file imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split('.')[0]
            if top in ROS_MODULES or top.endswith(('_msgs', '_srvs', '_interfaces')):
                found.append(f'{path.relative_to(REPO)}:{node.lineno}: {name}')
    return found


def test_models_and_sim_are_free_of_ros():
    files = sorted((REPO / 'models').rglob('*.py')) + sorted((REPO / 'sim').rglob('*.py'))
    assert files, 'models/ and sim/ should hold Python modules'
    offenders = [hit for path in files for hit in ros_imports(path)]
    assert not offenders, 'models/ and sim/ must not import ROS:\n' + '\n'.join(offenders)


def test_ros_import_check_catches_an_offender(tmp_path):
    bad = REPO / 'models' / '_tmp_offender_for_test.py'
    bad.write_text('"""Offender."""\nfrom geometry_msgs.msg import Pose\nimport rclpy.node\n')
    try:
        hits = ros_imports(bad)
    finally:
        bad.unlink()
    assert len(hits) == 2


def test_every_node_module_has_main_and_node_class():
    import importlib

    nodes = sorted(p.stem for p in (REPO / 'nodes').glob('*.py') if not p.stem.startswith('_'))
    for name in nodes:
        module = importlib.import_module(f'embodied_aif.nodes.{name}')
        assert callable(getattr(module, 'main', None)), f'nodes/{name}.py has no main()'
        assert getattr(module, 'NODE_CLASS', None) is not None, f'nodes/{name}.py: NODE_CLASS'
