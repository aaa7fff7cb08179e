"""The executive's models: the task guard on executed traces, the cost meter, step targets."""
import math

import pytest

from embodied_aif.models.execution import CostMeter, TaskGuard, parse_target, place_id
from embodied_aif.models.ltl import LTLSyntaxError


def test_guard_refuses_a_step_into_a_forbidden_place_and_accepts_a_detour():
    guard = TaskGuard('F at_place_2 & G !at_place_1')
    guard.advance({'at_place_0'})
    assert guard.started and guard.live and not guard.accepted
    k, why = guard.check([{'at_place_1'}, {'at_place_2'}])
    assert k == 0 and 'at_place_1' in why and 'can no longer hold' in why
    assert guard.check([{'at_place_3'}, {'at_place_2'}]) == (-1, '')
    k, why = guard.check([{'at_place_3'}])
    assert k == 1 and 'end before' in why
    # the check does not move the guard; advancing does
    guard.advance({'at_place_3'})
    guard.advance({'at_place_2'})
    assert guard.accepted and guard.trace[-1] == frozenset({'at_place_2'})


def test_guard_follows_progress_already_made():
    guard = TaskGuard('F (holding_mug & F at_place_4)')
    guard.advance({'at_place_0', 'hand_empty'})
    guard.advance({'at_place_0', 'holding_mug'})
    # after the pick, reaching place 4 is enough; without the pick it would not be
    assert guard.check([{'at_place_4', 'holding_mug'}]) == (-1, '')
    fresh = TaskGuard('F (holding_mug & F at_place_4)')
    fresh.advance({'at_place_0', 'hand_empty'})
    assert fresh.check([{'at_place_4', 'hand_empty'}])[0] == 1


def test_guard_rejects_bad_formulas_with_the_position():
    with pytest.raises(LTLSyntaxError, match='position'):
        TaskGuard('F (at_place_1 &')


def test_cost_meter_integrates_distance_arm_motion_and_clearance():
    meter = CostMeter(risk_distance=0.5, arm_energy_per_rad=0.5)
    snap = meter.snapshot(10.0)
    for x in (0.0, 0.3, 0.6, 25.0, 25.4):  # the 24.4 m jump is a reset, not travel
        meter.on_base(x, 0.0)
    meter.on_base(math.nan, 0.0)
    meter.on_joints(['j1', 'j2'], [0.0, 0.0])
    meter.on_joints(['j1', 'j2'], [1.0, -1.0])
    meter.on_clearance(0.25, 2.0)   # half the risk distance for 2 s -> 1.0
    meter.on_clearance(1.0, 5.0)    # far: no risk
    meter.on_clearance(math.inf, 1.0)
    meter.on_collision()
    time_s, energy, risk = meter.since(snap, 13.5)
    assert time_s == pytest.approx(3.5)
    assert energy == pytest.approx(0.6 + 0.4 + 0.5 * 2.0)
    assert risk == pytest.approx(1.0 + 1.0)
    with pytest.raises(ValueError, match='risk_distance'):
        CostMeter(risk_distance=0.0)


def test_step_targets():
    assert parse_target('move', 'place_3') == ('place_3', 'place_3')
    assert parse_target('pick', 'mug') == ('mug', '')
    assert parse_target('place', 'mug@place_3') == ('mug', 'place_3')
    assert place_id('place_12') == 12
    for action, target, match in (('place', 'mug', "'<object>@<place>'"),
                                  ('pick', 'mug@place_1', 'object id'),
                                  ('fly', 'x', "unknown plan action 'fly'")):
        with pytest.raises(ValueError, match=match):
            parse_target(action, target)
    with pytest.raises(ValueError, match='kitchen'):
        place_id('kitchen')
