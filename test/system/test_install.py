"""The package installs under one namespace, and both packages build with colcon."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

VENV = Path(sys.prefix)


def test_no_generic_top_level_names_leak():
    code = ('import importlib.util as u, sys; '
            'print([n for n in ("models", "sim", "nodes", "cli", "bench") if u.find_spec(n)])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd='/', check=True).stdout.strip()
    assert out == '[]'
    import embodied_aif.models
    import embodied_aif.nodes
    import embodied_aif.sim

    assert Path(embodied_aif.models.__file__).parent == REPO / 'models'
    assert Path(embodied_aif.sim.__file__).parent == REPO / 'sim'
    assert Path(embodied_aif.nodes.__file__).parent == REPO / 'nodes'


def test_cli_help_documents_every_subcommand():
    from embodied_aif.cli.main import SUBCOMMANDS

    out = subprocess.run([str(VENV / 'bin' / 'embodied-aif'), '--help'], capture_output=True,
                         text=True, check=True).stdout
    for name in SUBCOMMANDS:
        assert name in out
        sub = subprocess.run([str(VENV / 'bin' / 'embodied-aif'), name, '--help'],
                             capture_output=True, text=True)
        assert sub.returncode == 0 and 'usage: embodied-aif' in sub.stdout, sub.stderr


def test_colcon_builds_both_packages(tmp_path):
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV),
               PATH=f"{VENV / 'bin'}:{os.environ['PATH']}", COLCON_HOME=str(tmp_path / 'colcon'))
    result = subprocess.run(
        [str(VENV / 'bin' / 'colcon'), '--log-base', str(tmp_path / 'log'), 'build',
         '--base-paths', str(REPO), str(REPO / 'interfaces'),
         '--build-base', str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
         '--cmake-args', '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}'],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    install = tmp_path / 'install'
    site = next(install.glob('embodied_aif/lib/python3*/site-packages'))
    assert (site / 'embodied_aif' / 'nodes' / '__init__.py').is_file()
    assert (site / 'embodied_aif' / 'models' / '__init__.py').is_file()
    assert not (site / 'models').exists() and not (site / 'sim').exists()
    share = install / 'embodied_aif' / 'share' / 'embodied_aif'
    assert (share / 'package.xml').is_file()
    assert (install / 'embodied_aif_msgs' / 'share' / 'embodied_aif_msgs' / 'msg' /
            'ObjectBelief.msg').is_file()
    msgs_site = next(install.glob('embodied_aif_msgs/lib/python3*/site-packages'))
    assert (msgs_site / 'embodied_aif_msgs' / 'msg' / '_object_belief.py').is_file()
