"""World of the goal-image navigation part of `bench world_model`: furnished by default."""
import pytest

from embodied_aif.bench import _common
from embodied_aif.bench import world_model as bench


def parse(monkeypatch, argv):
    """Parse `argv` with the benchmark's own parser; the benchmark body is not run."""
    seen = []
    real = _common.run_benchmark
    monkeypatch.setattr(bench, 'run_benchmark',
                        lambda _body, parser, argv=None: real(
                            lambda args: seen.append(args) or {}, parser, argv))
    assert bench.main(argv) == 0
    return seen[0]


def test_navigation_runs_in_the_furnished_default_scenario_unless_asked_for_the_ring(
        monkeypatch):
    args = parse(monkeypatch, [])
    assert args.nav_scenario == 'default'
    assert bench.nav_scenario(args.nav_scenario) == 'default'
    ring = bench.nav_scenario(parse(monkeypatch, ['--nav-scenario', 'ring']).nav_scenario)
    assert ring.furniture.per_room == {}
    assert ring.building.rows == ring.building.cols == 2


def test_unknown_navigation_scenario_is_refused_with_its_name(monkeypatch):
    with pytest.raises(ValueError, match='tiled'):
        bench.nav_scenario('tiled')
    with pytest.raises(SystemExit):
        parse(monkeypatch, ['--nav-scenario', 'tiled'])
