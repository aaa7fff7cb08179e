"""A short version of the main job (`embodied-aif demo`) end to end, through the real stack."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcap.reader import make_reader

from conftest import REPO


def test_short_demo_explores_plans_executes_and_records(tmp_path):
    out = tmp_path / 'demo'
    result = subprocess.run(
        [sys.executable, '-m', 'embodied_aif.cli.main', 'demo', '--explore-s', '25',
         '--episodes', '1', '--step-timeout-s', '120', '--out', str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO, env=dict(os.environ))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / 'summary.json').read_text())
    assert {'sim_bridge', 'perception', 'cognitive_map', 'navigator', 'task_planner',
            'plan_selector', 'manipulator', 'executive'} <= set(summary['stack'])
    assert summary['map']['places'] >= 2 and summary['sim_time_s'] > 25
    assert summary['task']['front'], summary['stages']
    # perception kept up: it saw objects and the surfaces under them, and the default task
    # was a fetch of an object seen on a table, or says why not
    assert summary['perceived']['objects'] and summary['perceived']['surfaces'], summary
    assert summary['stages']['fetch'].startswith(('bring obj_', 'no fetch task')), summary
    # it looked for something to fetch after --explore-s (for up to --search-s)
    assert re.search(r'; \d+ s of it after --explore-s, looking for something to fetch$',
                     summary['stages']['exploration']), summary['stages']
    assert len(summary['episodes']) == 1
    episode = summary['episodes'][0]  # run by the executive, step by step, with its costs
    assert episode['reason'] and len(episode['realised']) == 3, episode
    assert episode['steps'] and all(len(s['cost']) == 3 for s in episode['steps']), episode
    assert episode['steps'][0]['plan'] == episode['plan'] or episode['replans'] > 0, episode
    # what the selector weighed (EFE terms per Pareto plan, when its diagnostics named this
    # choice in time) and how far the cost beliefs were from the realised costs
    selection = episode['selection']
    assert selection['chosen'] < len(summary['task']['front'])
    assert all({'id', 'efe', 'risk', 'info_gain'} <= set(p) for p in selection['plans'])
    assert len(summary['learning_curve']) == int(episode['success'])
    assert {'map_trajectory.png', 'pareto_front.png', 'belief_efe.png'} <= set(summary['plots'])
    for name in summary['plots']:
        assert (out / name).stat().st_size > 1000
    with open(out / 'recording.mcap', 'rb') as stream:
        channels = {c.topic for c in make_reader(stream).get_summary().channels.values()}
    assert {'/odom', '/scan', '/cognitive_map', '/pareto_plans', '/selected_plan',
            '/plan_outcome', '/head_camera/color/image_raw'} <= channels
    # images thinned to 0.5 Hz of sim time: at least 2 s of the recorder's clock apart
    with open(out / 'recording.mcap', 'rb') as stream:
        stamps = [m.log_time for _, _, m in make_reader(stream).iter_messages(
            topics=['/head_camera/color/image_raw'])]
    assert len(stamps) == summary['recording']['messages']['/head_camera/color/image_raw'] > 0
    assert min(b - a for a, b in zip(stamps, stamps[1:])) >= 2_000_000_000, stamps


def test_demo_rejects_a_gui_without_display_and_a_bad_hazard_room(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    for extra, message in ((['--gui'], 'DISPLAY'), (['--hazard-room', '5,5'], "'5,5'"),
                           (['--search-s', 'nan'], '--search-s must be a finite')):
        result = subprocess.run(
            [sys.executable, '-m', 'embodied_aif.cli.main', 'demo', '--out',
             str(tmp_path / 'x'), *extra], capture_output=True, text=True, timeout=300,
            cwd=REPO, env=env)
        assert result.returncode == 2, result.stderr[-2000:]
        assert 'embodied-aif demo: error' in result.stderr and message in result.stderr, \
            result.stderr[-2000:]


def _children(pid):
    """{pid: command line} of the processes whose parent is pid (from /proc)."""
    out = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
            if int(fields[1]) == pid:
                cmd = (stat.parent / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
                out[int(stat.parent.name)] = cmd
        except (OSError, IndexError, ValueError):
            continue
    return out


def test_killed_nodes_respawn_and_resume_their_map_and_costs(tmp_path):
    out = tmp_path / 'demo'
    demo = subprocess.Popen(
        [sys.executable, '-m', 'embodied_aif.cli.main', 'demo', '--processes', '--respawn',
         '--explore-s', '40', '--episodes', '1', '--step-timeout-s', '120', '--out', str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ))
    try:
        checkpoint = out / 'state' / 'cognitive_map.json'
        deadline = time.monotonic() + 400
        places_at_kill = 0
        while time.monotonic() < deadline and demo.poll() is None:
            if checkpoint.exists():
                doc = json.loads(checkpoint.read_text())
                places_at_kill = doc['map']['fields']['poses']['shape'][0]
                if places_at_kill >= 3:
                    break
            time.sleep(1.0)
        assert places_at_kill >= 3, 'the map was never checkpointed with 3 places'
        victims = [pid for pid, cmd in _children(demo.pid).items()
                   if 'embodied_aif.nodes.cognitive_map' in cmd]
        assert len(victims) == 1, _children(demo.pid)
        os.kill(victims[0], signal.SIGKILL)
        stdout, stderr = demo.communicate(timeout=900)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, stdout[-2000:] + stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary['mode'] == 'processes' and summary['restarts']['cognitive_map'] >= 1
    assert 'places from' in stderr  # the respawned node said what it resumed
    # and it re-localised by the continuous odometry, not lost among look-alike places
    assert 'resumed on place' in stderr, stderr[-3000:]
    # the respawned map resumed from its checkpoint: it did not start over from one place
    assert summary['map']['places'] >= places_at_kill, (summary['map'], places_at_kill)
    assert summary['episodes'] and summary['task']['front'], summary['stages']
