"""`embodied-aif run` starts real nodes (composed and as processes) that publish over Fast DDS."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from std_msgs.msg import String

from conftest import REPO, spin_until

FIXTURES = REPO / 'test' / 'fixtures'
STACK = FIXTURES / 'stack_talker.yaml'


def start_run(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(FIXTURES), **(env_extra or {}))
    return subprocess.Popen([sys.executable, '-m', 'embodied_aif.cli.main', 'run', *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(node, topic, count, timeout):
    received = []
    node.create_subscription(String, topic, lambda m: received.append(m.data), 10)
    spin_until(node, lambda: len(received) >= count, timeout)
    return received


def stop(proc, timeout=15):
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_composed_run_applies_params_remaps_and_namespace(ros_node):
    proc = start_run('--config', str(STACK))
    try:
        msgs = collect(ros_node, '/robot_t/talk', 5, timeout=20)
    finally:
        code, err = stop(proc)
    assert len(msgs) >= 5, err
    # prefix from the params file, remapped topic, namespace from the stack file
    assert all(m.startswith('configured ') for m in msgs)
    assert code == 0, err
    assert 'composed /robot_t/talker' in err


def test_process_run_and_respawn(ros_node):
    proc = start_run('--config', str(STACK), '--processes', '--respawn')
    pids = set()
    received = []

    def on_msg(msg):
        received.append(msg.data)
        pids.add(msg.data.split()[1])

    ros_node.create_subscription(String, '/robot_t/talk', on_msg, 10)
    try:
        assert spin_until(ros_node, lambda: len(received) >= 3, 20), 'no messages from process'
        first = next(iter(pids))
        os.kill(int(first), signal.SIGKILL)  # the node process dies
        assert spin_until(ros_node, lambda: len(pids) >= 2, 25), 'node was not respawned'
    finally:
        code, err = stop(proc)
    assert 'respawning' in err
    assert code == 0, err
    # no node process is left behind
    time.sleep(0.5)
    for pid in pids:
        assert not Path(f'/proc/{pid}').exists() or \
            Path(f'/proc/{pid}/status').read_text().find('State:\tZ') >= 0


def test_duration_stops_cleanly():
    proc = start_run('--config', str(STACK), '--duration', '2')
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert 'stopped' in err


def run_and_fail(*args):
    proc = start_run(*args)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_unknown_node_is_an_error_and_starts_nothing():
    code, err = run_and_fail('--config', str(STACK), '--nodes', 'talker,nosuchnode')
    assert code == 2
    assert 'nosuchnode' in err and 'talker' in err
    assert 'started' not in err and 'composed' not in err


def test_missing_and_malformed_config(tmp_path):
    code, err = run_and_fail('--config', str(tmp_path / 'absent.yaml'))
    assert code == 2 and 'absent.yaml' in err and 'not found' in err
    bad = tmp_path / 'bad.yaml'
    bad.write_text('stack: {nodes: [unclosed\n')
    code, err = run_and_fail('--config', str(bad))
    assert code == 2 and 'bad.yaml' in err and 'malformed YAML' in err
    wrong_key = tmp_path / 'wrong.yaml'
    wrong_key.write_text('stack: {nodez: {}}\n')
    code, err = run_and_fail('--config', str(wrong_key))
    assert code == 2 and 'nodez' in err


def test_parameter_out_of_range_names_key_and_value(tmp_path):
    cfg = tmp_path / 'stack.yaml'
    cfg.write_text('stack:\n  nodes:\n    talker:\n      module: fixture_talker\n'
                   '      parameters: {rate: 500.0, colour: red}\n')
    code, err = run_and_fail('--config', str(cfg))
    assert code == 2
    assert 'talker.rate: 500.0 is above the maximum 100.0' in err
    assert 'talker.colour: unknown parameter' in err
    assert 'started' not in err and 'composed' not in err
