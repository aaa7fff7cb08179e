"""bench mission: a run's output is kept on request, also when the run times out."""
import json
import subprocess
from pathlib import Path

from embodied_aif.bench import mission


def _fake_demo(summary, timeout=False):
    """subprocess.run standing in for `embodied-aif demo`: writes its summary to --out."""
    def run(cmd, **kwargs):
        out = Path(cmd[cmd.index('--out') + 1])
        if timeout:
            raise subprocess.TimeoutExpired(cmd, kwargs['timeout'], stderr=b'[demo] exploring')
        out.mkdir(parents=True, exist_ok=True)
        (out / 'summary.json').write_text(json.dumps(summary))
        return subprocess.CompletedProcess(cmd, 0, stdout='', stderr='[demo] episode 0: ok\n')
    return run


def test_a_run_is_kept_with_its_log_only_when_asked(monkeypatch, tmp_path):
    monkeypatch.setattr(mission.subprocess, 'run', _fake_demo({'wall_s': 3.0}))
    assert mission.run_demo('grid3x3', 4, 80.0, 3, 3.0, 900.0) == {'wall_s': 3.0}
    assert mission.run_demo('grid3x3', 4, 80.0, 3, 3.0, 900.0, tmp_path) == {'wall_s': 3.0}
    kept = tmp_path / 'grid3x3-4'
    assert json.loads((kept / 'summary.json').read_text()) == {'wall_s': 3.0}
    assert (kept / 'demo.log').read_text() == '[demo] episode 0: ok\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['grid3x3-4']
    # a run that timed out leaves what it printed
    monkeypatch.setattr(mission.subprocess, 'run', _fake_demo({}, timeout=True))
    result = mission.run_demo('default', 5, 80.0, 3, 3.0, 60.0, tmp_path)
    assert result['error'].startswith('timed out after 60 s') and 'exploring' in result['error']
    assert (tmp_path / 'default-5' / 'demo.log').read_text() == '[demo] exploring'
