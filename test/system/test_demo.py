"""A short version of the main job (`embodied-aif demo`) end to end, through the real stack."""
import json
import os
import subprocess
import sys

from mcap.reader import make_reader

from conftest import REPO


def test_short_demo_explores_plans_executes_and_records(tmp_path):
    out = tmp_path / 'demo'
    result = subprocess.run(
        [sys.executable, '-m', 'embodied_aif.cli.main', 'demo', '--explore-s', '25',
         '--episodes', '1', '--step-timeout-s', '60', '--out', str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / 'summary.json').read_text())
    assert {'sim_bridge', 'cognitive_map', 'navigator', 'task_planner',
            'plan_selector'} <= set(summary['stack'])
    assert summary['map']['places'] >= 2 and summary['sim_time_s'] > 25
    assert summary['task']['front'], summary['stages']
    assert len(summary['episodes']) == 1
    for name in summary['plots']:
        assert (out / name).stat().st_size > 1000
    with open(out / 'recording.mcap', 'rb') as stream:
        channels = {c.topic for c in make_reader(stream).get_summary().channels.values()}
    assert {'/odom', '/scan', '/cognitive_map', '/pareto_plans', '/selected_plan'} <= channels
