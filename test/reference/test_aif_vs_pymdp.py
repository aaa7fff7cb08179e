"""The discrete active-inference core against pymdp (its numpy `legacy` implementation)."""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
import numpy as np
import pytest
from pymdp.legacy import learning as pl_learning
from pymdp.legacy import utils as pl_utils
from pymdp.legacy.agent import Agent

from embodied_aif.models.aif.control import PolicyTree, construct_policies, infer_policies
from embodied_aif.models.aif.gridworld import (
    grid_model_arrays,
    sample_next_state,
    sample_observation,
)
from embodied_aif.models.aif.inference import infer_states, predict_states
from embodied_aif.models.aif.learning import update_pA, update_pB
from embodied_aif.models.aif.model import GenerativeModel

TOL = 1e-5


def obj(arrays):
    out = pl_utils.obj_array(len(arrays))
    for i, a in enumerate(arrays):
        out[i] = np.array(a, dtype=float)
    return out


def run_side_by_side(model, agent, tree, true_A, true_B, steps, rng, use_param=False):
    """Feed both the same observations and actions; return the largest difference seen."""
    state = 0
    qs = None
    action = None
    worst = 0.0
    for _ in range(steps):
        o = [sample_observation(true_A, state, rng)]
        qs_ref = agent.infer_states(o)
        q_pi_ref, neg_efe_ref = agent.infer_policies()
        prior = model.D if action is None else predict_states(model, qs, action)
        qs = infer_states(model, o, prior)
        q_pi, terms = infer_policies(model, qs, tree, use_param_info_gain=use_param)
        # independent checks that the numbers are meaningful, not just equal
        assert np.isclose(q_pi.sum(), 1.0) and np.isclose(qs[0].sum(), 1.0)
        worst = max(worst,
                    max(np.abs(a - b).max() for a, b in zip(qs_ref, qs)),
                    np.abs(q_pi_ref - q_pi).max(),
                    np.abs(neg_efe_ref + terms.efe).max())
        u = int(rng.integers(model.num_controls[0]))
        action = [u]
        agent.action = np.array([float(u)])
        agent.step_time()
        state = sample_next_state(true_B, state, u, rng)
    return worst


@pytest.mark.parametrize('obs_noise,slip', [(0.0, 0.0), (0.25, 0.15)])
@pytest.mark.parametrize('policy_len', [1, 3])
def test_grid_world_posteriors_match_pymdp(obs_noise, slip, policy_len):
    arrays = grid_model_arrays(4, 4, obs_noise=obs_noise, slip=slip, goal=11)
    model = GenerativeModel(**arrays)
    agent = Agent(A=obj(arrays['A']), B=obj(arrays['B']), C=obj(arrays['C']),
                  D=obj(arrays['D']), policy_len=policy_len)
    tree = PolicyTree(construct_policies(model.num_controls, policy_len))
    assert tree.num_policies == len(agent.policies) == 5 ** policy_len
    for p, pol in enumerate(agent.policies):
        assert np.array_equal(tree.policies[p], pol)
    rng = np.random.default_rng(3)
    worst = run_side_by_side(model, agent, tree, arrays['A'][0], arrays['B'][0], 5, rng)
    assert worst < TOL


def test_grid_world_with_parameter_novelty_matches_pymdp():
    arrays = grid_model_arrays(3, 4, obs_noise=0.2, slip=0.1)
    A, B = arrays['A'][0], arrays['B'][0]
    pA = [4.0 * A + 0.5 * (A > 0)]
    pB = [3.0 * B + 0.25 * (B > 0)]
    model = GenerativeModel(**arrays, pA=pA, pB=pB)
    agent = Agent(A=obj([A]), B=obj([B]), C=obj(arrays['C']), pA=obj(pA), pB=obj(pB),
                  policy_len=2, use_param_info_gain=True)
    agent.A, agent.B = obj([A]), obj([B])  # pymdp resets A, B to E[pA], E[pB]; use true ones
    tree = PolicyTree(construct_policies(model.num_controls, 2))
    worst = run_side_by_side(model, agent, tree, A, B, 4, np.random.default_rng(5), True)
    assert worst < TOL


def test_two_factors_two_modalities_match_pymdp():
    rng = np.random.default_rng(11)

    def cond(shape, conc):
        x = rng.gamma(conc, size=shape)
        return x / x.sum(axis=0)

    A = [cond((5, 6), 0.3), cond((4, 6, 3), 0.5)]
    B = [cond((6, 6, 3), 0.2), cond((3, 3, 1), 5.0)]
    C = [rng.normal(size=5), rng.normal(size=4)]
    pA = [4.0 * A[0] + 0.3, 2.0 * A[1] + 0.2]
    pB = [3.0 * B[0] + 0.1, 2.0 * B[1] + 0.5]
    factor_list = [[0], [0, 1]]
    model = GenerativeModel(A=A, B=B, C=C, A_factor_list=factor_list, pA=pA, pB=pB)
    agent = Agent(A=obj(A), B=obj(B), C=obj(C), A_factor_list=factor_list, policy_len=2,
                  pA=obj(pA), pB=obj(pB), use_param_info_gain=True)
    agent.A, agent.B = obj(A), obj(B)
    tree = PolicyTree(construct_policies(model.num_controls, 2))
    qs, action = None, None
    for _ in range(5):
        o = [int(rng.integers(5)), int(rng.integers(4))]
        qs_ref = agent.infer_states(o)
        q_pi_ref, neg_efe_ref = agent.infer_policies()
        prior = model.D if action is None else predict_states(model, qs, action)
        qs = infer_states(model, o, prior)
        q_pi, terms = infer_policies(model, qs, tree, use_param_info_gain=True)
        for f in range(2):
            np.testing.assert_allclose(qs[f], qs_ref[f], atol=TOL)
        np.testing.assert_allclose(q_pi, q_pi_ref, atol=TOL)
        np.testing.assert_allclose(terms.efe, -neg_efe_ref, atol=TOL)
        # the learning updates agree too
        new_pA = update_pA(model, o, qs)
        ref_pA = pl_learning.update_obs_likelihood_dirichlet_factorized(
            obj(pA), obj(A), o, obj(qs), factor_list)
        for m in range(2):
            np.testing.assert_allclose(new_pA[m], ref_pA[m], atol=1e-12)
        action = np.array([int(rng.integers(3)), 0])
        new_pB = update_pB(model, action, qs, model.D)
        ref_pB = pl_learning.update_state_likelihood_dirichlet(
            obj(pB), obj(B), action, obj(qs), obj(model.D))
        for f in range(2):
            np.testing.assert_allclose(new_pB[f], ref_pB[f], atol=1e-12)
        agent.action = action.astype(float)
        agent.step_time()
