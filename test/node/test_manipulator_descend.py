"""manipulator: a top-down hand stopped short by an object taller than its belief grasps there."""
import numpy as np
import pytest
import rclpy

from embodied_aif.models import manipulation as mp
from embodied_aif.nodes.manipulator import GoalError, Manipulator


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    n = Manipulator(context=context, namespace='descend_test')
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=context)


def _stalled_on(node, q_stop, moves):
    """Make the arm stop at ``q_stop`` on the way down (the approach times out there)."""
    def move(handle, arm, waypoints, what):
        moves.append(what)
        if what == 'approach':
            node._arm_state = lambda: (q_stop, np.zeros(7))
            raise GoalError('timeout', f'{what}: the arm is still 0.100 rad from its goal')
    node._move = move


def _bottle_pick(node):
    """The arm (mounted as on the simulated robot) and its top-down pick of a small bottle."""
    arm = mp.panda_arm(mp.translation((0.12, 0.0, 0.30)))
    bottle = mp.ObjectBox((0.70, 0.0, 0.66), (0.05, 0.05, 0.08))
    table = mp.support_box(bottle.bottom, bottle.center[:2], 0.30)
    plan = mp.plan_pick(arm, np.array(node.param('carry_position')), bottle, [], table)
    assert isinstance(plan, mp.MotionPlan) and plan.candidate.kind == 'top', plan
    return arm, plan


def test_a_hand_stopped_above_the_grasp_grasps_there_and_lifts_from_there(node):
    arm, plan = _bottle_pick(node)
    # perceived 8 cm tall; the real bottle stops the hand 6 cm above the planned grasp
    stop = plan.candidate.contact.copy()
    stop[2, 3] += 0.06
    q_stop = mp.cartesian_path(arm, plan.approach[-1], plan.candidate.contact, stop,
                               node._grasp_config(), node._ik_config())[-1]
    moves = []
    _stalled_on(node, q_stop, moves)
    got, back = node._descend(None, arm, plan, 'bottle')
    assert moves == ['approach']
    assert node.counts['guarded_grasps'] == 1
    assert got.candidate.tool_height == pytest.approx(plan.candidate.tool_height + 0.06,
                                                      abs=0.005)
    # the lift starts where the hand stopped and rises by the lift height
    assert np.allclose(got.depart[0], q_stop)
    lifted = mp.tool_pose(arm, got.depart[-1])[:3, 3]
    assert lifted[2] == pytest.approx(stop[2, 3] + node._grasp_config().lift_height, abs=0.005)
    assert np.allclose(lifted[:2], stop[:2, 3], atol=0.005)
    # backing off after a miss goes up from there too, to the pre-grasp pose
    assert np.allclose(back[0], q_stop)
    assert np.allclose(mp.tool_pose(arm, back[-1])[:3, 3], plan.candidate.approach[:3, 3],
                       atol=0.005)


def test_a_hand_stopped_far_above_or_a_side_grasp_stopped_fails_as_before(node):
    arm, plan = _bottle_pick(node)
    # stopped at the pre-grasp pose, 0.1 m up (beyond guarded_stop here): not a grasp
    node.set_parameters([rclpy.parameter.Parameter('guarded_stop', value=0.05)])
    _stalled_on(node, plan.approach[0], [])
    with pytest.raises(GoalError, match='timeout'):
        node._descend(None, arm, plan, 'bottle')
    side = mp.MotionPlan(mp.GraspCandidate('side', plan.candidate.approach,
                                           plan.candidate.contact, plan.candidate.depart),
                         plan.transit, plan.approach, plan.depart)
    node.set_parameters([rclpy.parameter.Parameter('guarded_stop', value=0.2)])
    _stalled_on(node, plan.approach[len(plan.approach) // 2], [])
    with pytest.raises(GoalError, match='timeout'):
        node._descend(None, arm, side, 'bottle')
    assert node.counts['guarded_grasps'] == 0


def _held_place(node):
    """The arm, its top-down place of the bottle held as its pick had it, and the target."""
    arm, pick = _bottle_pick(node)
    target = np.array([0.65, 0.15, 0.62])
    table = mp.support_box(target[2], target[:2], 0.30)
    plan = mp.plan_place(arm, np.array(node.param('carry_position')), target, pick.candidate,
                         [], table)
    assert isinstance(plan, mp.MotionPlan), plan
    return arm, plan


def _stop_above(node, arm, plan, rise: float, aside: float = 0.0) -> np.ndarray:
    """Joints with the hand ``rise`` above and ``aside`` beside the release pose."""
    stop = plan.candidate.contact.copy()
    stop[2, 3] += rise
    stop[1, 3] += aside
    return mp.cartesian_path(arm, plan.approach[-1], plan.candidate.contact, stop,
                             node._grasp_config(), node._ik_config())[-1]


def test_a_hand_stopped_above_the_release_lets_go_there_and_retreats_from_there(node):
    arm, plan = _held_place(node)
    # the table's top is 3 cm above its belief: the bottle meets it early
    q_stop = _stop_above(node, arm, plan, 0.03)
    moves = []

    def move(handle, arm_, waypoints, what):
        moves.append(what)
        node._arm_state = lambda: (q_stop, np.zeros(7))
        raise GoalError('timeout', f'{what}: the arm is still 0.100 rad from its goal')
    node._move = move
    got = node._lower(None, arm, plan, 'bottle')
    assert moves == ['lower'] and node.counts['guarded_releases'] == 1
    stopped = mp.tool_pose(arm, q_stop)[:3, 3]
    assert np.allclose(got.candidate.contact[:3, 3], stopped, atol=1e-9)
    # the retreat starts where the hand stopped and goes up by the retreat distance
    assert np.allclose(got.depart[0], q_stop)
    retreated = mp.tool_pose(arm, got.depart[-1])[:3, 3]
    assert retreated[2] == pytest.approx(stopped[2] + node._grasp_config().retreat_distance,
                                         abs=0.005)
    assert np.allclose(retreated[:2], stopped[:2], atol=0.005)


def test_a_hand_stopped_high_or_aside_while_lowering_fails_as_before(node):
    arm, plan = _held_place(node)
    for rise, aside in ((0.08, 0.0), (0.02, 0.05)):  # above guarded_release; pushed aside
        q_stop = _stop_above(node, arm, plan, rise, aside)

        def move(handle, arm_, waypoints, what, q_stop=q_stop):
            node._arm_state = lambda: (q_stop, np.zeros(7))
            raise GoalError('timeout', f'{what}: the arm is still 0.100 rad from its goal')
        node._move = move
        with pytest.raises(GoalError, match='timeout'):
            node._lower(None, arm, plan, 'bottle')
    # a lowering that ends otherwise (e.g. cancelled) is not taken for a stop on the table
    node._move = lambda handle, arm_, waypoints, what: (_ for _ in ()).throw(
        GoalError('canceled', 'the goal was cancelled'))
    with pytest.raises(GoalError, match='cancelled'):
        node._lower(None, arm, plan, 'bottle')
    assert node.counts['guarded_releases'] == 0
