"""Unit tests of the discrete active-inference core against hand-computed values."""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
import math

import numpy as np
import pytest

from embodied_aif.models.aif.agent import AgentConfig, AgentState, step
from embodied_aif.models.aif.control import (
    PolicyTree,
    action_marginals,
    construct_policies,
    expected_free_energy,
    infer_policies,
    policy_posterior,
    rollout_beliefs,
    select_action,
)
from embodied_aif.models.aif.gridworld import grid_model_arrays, grid_transitions
from embodied_aif.models.aif.inference import infer_states, predict_states
from embodied_aif.models.aif.learning import update_pA, update_pB, update_pD, with_counts
from embodied_aif.models.aif.maths import dirichlet_novelty, entropy, kl_categorical, softmax
from embodied_aif.models.aif.model import GenerativeModel

A2 = np.array([[0.9, 0.5], [0.1, 0.5]])  # state 0 is informative, state 1 is ambiguous
B2 = np.stack([np.eye(2), np.array([[1.0, 1.0], [0.0, 0.0]]),
               np.array([[0.0, 0.0], [1.0, 1.0]])], axis=2)  # stay, go to 0, go to 1


def h(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


def test_one_step_efe_terms_match_hand_computation():
    model = GenerativeModel(A=[A2], B=[B2], C=[np.array([2.0, 0.0])])
    tree = PolicyTree(construct_policies(model.num_controls, 1))
    terms = expected_free_energy(model, [np.array([0.5, 0.5])], tree)
    p0 = math.exp(2) / (math.exp(2) + 1)
    ln_c = [math.log(p0), math.log(1 - p0)]
    # stay: q(s) = (0.5, 0.5), q(o) = (0.7, 0.3)
    cost = -(0.7 * ln_c[0] + 0.3 * ln_c[1])
    amb = 0.5 * h(0.9, 0.1) + 0.5 * h(0.5, 0.5)
    info = h(0.7, 0.3) - amb
    assert terms.expected_cost[0] == pytest.approx(cost, abs=1e-9)
    assert terms.ambiguity[0] == pytest.approx(amb, abs=1e-6)
    assert terms.state_info_gain[0] == pytest.approx(info, abs=1e-6)
    assert terms.risk[0] == pytest.approx(0.7 * math.log(0.7 / p0) + 0.3 * math.log(0.3 / (1 - p0)),
                                          abs=1e-6)
    # go to state 0: fully known state, no information to gain, low ambiguity
    assert terms.state_info_gain[1] == pytest.approx(0.0, abs=1e-6)
    assert terms.ambiguity[1] == pytest.approx(h(0.9, 0.1), abs=1e-6)
    assert terms.efe[1] == pytest.approx(-(0.9 * ln_c[0] + 0.1 * ln_c[1]), abs=1e-6)
    # the decomposition identities hold for every policy
    np.testing.assert_allclose(terms.efe, terms.expected_cost - terms.state_info_gain)
    np.testing.assert_allclose(terms.risk + terms.ambiguity, terms.efe, atol=1e-12)
    assert np.all(terms.state_info_gain >= -1e-12) and np.all(terms.risk >= -1e-12)


def test_switches_select_terms_and_posterior_is_softmax():
    model = GenerativeModel(A=[A2], B=[B2], C=[np.array([2.0, 0.0])])
    tree = PolicyTree(construct_policies(model.num_controls, 2))
    qs = [np.array([0.3, 0.7])]
    only_info = expected_free_energy(model, qs, tree, use_utility=False)
    only_cost = expected_free_energy(model, qs, tree, use_states_info_gain=False)
    np.testing.assert_allclose(only_info.efe, -only_info.state_info_gain)
    np.testing.assert_allclose(only_cost.efe, only_cost.expected_cost)
    q_pi, terms = infer_policies(model, qs, tree, gamma=4.0)
    expected = np.exp(-4.0 * terms.efe)
    np.testing.assert_allclose(q_pi, expected / expected.sum(), atol=1e-12)
    # policy prior E shifts the posterior by ln E
    E = np.linspace(1.0, 2.0, tree.num_policies)
    E /= E.sum()
    with_e = policy_posterior(terms.efe, 4.0, E)
    np.testing.assert_allclose(with_e, expected * E / (expected * E).sum(), atol=1e-12)


def test_tree_shares_prefixes_and_sums_along_paths():
    policies = construct_policies([5], 3)
    assert policies.shape == (125, 3, 1)
    assert policies[1].ravel().tolist() == [0, 0, 1] and policies[5].ravel().tolist() == [0, 1, 0]
    tree = PolicyTree(policies)
    assert tree.num_nodes == 1 + 5 + 25 + 125
    assert [len(level) for level in tree.levels] == [5, 25, 125]
    # policies 0..4 differ only in their last step: same parent node
    assert len(set(tree.parent[tree.leaf[:5]].tolist())) == 1
    # EFE of a length-3 policy = sum of its steps evaluated one at a time
    arrays = grid_model_arrays(3, 3, obs_noise=0.2, slip=0.1)
    model = GenerativeModel(**arrays)
    qs = [softmax(np.random.default_rng(0).normal(size=9))]
    efe3 = expected_free_energy(model, qs, tree).efe
    one = PolicyTree(construct_policies([5], 1))
    p = 87
    q, total = qs, 0.0
    for u in policies[p, :, 0]:
        total += expected_free_energy(model, q, one).efe[u]
        q = predict_states(model, q, [u])
    assert efe3[p] == pytest.approx(total, abs=1e-10)


def test_sparse_and_dense_operators_give_identical_numbers():
    arrays = grid_model_arrays(4, 5, obs_noise=0.3, slip=0.2)
    dense = GenerativeModel(**arrays, sparse_threshold=0.0)
    sparse = GenerativeModel(**arrays, sparse_threshold=1.0)
    assert not hasattr(dense.B_ops[0][1], 'tocsr') and hasattr(sparse.B_ops[0][1], 'tocsr')
    tree = PolicyTree(construct_policies([5], 2))
    qs = infer_states(dense, [7])
    np.testing.assert_allclose(expected_free_energy(dense, qs, tree).efe,
                               expected_free_energy(sparse, qs, tree).efe, atol=1e-12)


def test_single_factor_inference_is_bayes_rule():
    model = GenerativeModel(A=[A2], B=[B2], D=[np.array([0.2, 0.8])])
    qs = infer_states(model, [1])
    post = np.array([0.1 * 0.2, 0.5 * 0.8])
    np.testing.assert_allclose(qs[0], post / post.sum(), atol=1e-12)
    prior = predict_states(model, [np.array([0.6, 0.4])], [1])
    np.testing.assert_allclose(prior[0], [1.0, 0.0])


def test_two_independent_factors_fixed_point_is_exact():
    rng = np.random.default_rng(2)
    A0 = rng.dirichlet(np.ones(3), size=4).T
    A1 = rng.dirichlet(np.ones(4), size=2).T
    B = [np.eye(4)[:, :, None], np.eye(2)[:, :, None]]
    D = [np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.7, 0.3])]
    model = GenerativeModel(A=[A0, A1], B=B, D=D, A_factor_list=[[0], [1]])
    qs = infer_states(model, [2, 1])
    e0 = A0[2] * D[0]
    e1 = A1[1] * D[1]
    np.testing.assert_allclose(qs[0], e0 / e0.sum(), atol=1e-9)
    np.testing.assert_allclose(qs[1], e1 / e1.sum(), atol=1e-9)


def test_maths_properties():
    rng = np.random.default_rng(4)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
    assert kl_categorical(p, q) > 0 and kl_categorical(p, p) == pytest.approx(0.0, abs=1e-12)
    assert entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))
    counts = np.array([[1.0, 0.0], [3.0, 2.0]])
    w = dirichlet_novelty(counts)
    np.testing.assert_allclose(w, [[1.0 - 0.25, 0.0], [1 / 3 - 0.25, 0.5 - 0.5]], atol=1e-12)


def test_learning_updates_counts_where_allowed():
    B = grid_transitions(2, 2)
    pB = [B * 2.0 + (B > 0)]
    model = GenerativeModel(A=[np.eye(4)], B=[B], pB=pB, pA=[np.eye(4) + 0.5])
    new = update_pB(model, [4], [np.array([0, 1.0, 0, 0])], [np.array([1.0, 0, 0, 0])], lr=2.0)
    diff = new[0] - pB[0]
    assert diff[1, 0, 4] == pytest.approx(2.0) and np.count_nonzero(diff) == 1
    newA = update_pA(model, [3], [np.array([0.5, 0, 0, 0.5])])
    # A[3, 0] = 0 is a structural zero: its count does not move
    np.testing.assert_allclose(newA[0][3] - model.pA[0][3], [0.0, 0, 0, 0.5])
    learned = with_counts(model, pA=newA)
    np.testing.assert_allclose(learned.A[0].sum(axis=0), 1.0)
    assert learned.A[0][3, 3] == pytest.approx(2.0 / 3.5)
    pD = update_pD([np.array([1.0, 0.0])], [np.array([0.25, 0.75])])
    np.testing.assert_allclose(pD[0], [1.25, 0.0])


def test_novelty_prefers_less_visited_transition():
    B = np.stack([np.eye(2), np.array([[0.0, 0.0], [1.0, 1.0]])], axis=2)
    pB = [np.stack([np.eye(2) * 50 + 0.01, np.array([[0.1, 0.1], [1.0, 1.0]])], axis=2)]
    model = GenerativeModel(A=[np.eye(2)], B=[B], pB=pB)
    tree = PolicyTree(construct_policies([2], 1))
    terms = expected_free_energy(model, [np.array([1.0, 0.0])], tree, use_param_info_gain=True)
    assert terms.novelty_B[1] > terms.novelty_B[0] > 0
    assert terms.efe[1] < terms.efe[0]


def test_agent_reaches_goal_in_grid():
    arrays = grid_model_arrays(4, 4, goal=15, preference=4.0)
    model = GenerativeModel(**arrays)
    tree = PolicyTree(construct_policies([5], 3))
    rng = np.random.default_rng(0)
    state, s = AgentState(), 10  # two moves from the goal: within the policy horizon
    B = arrays['B'][0]
    for _ in range(4):
        state, action, info = step(model, tree, state, [s], rng, AgentConfig())
        assert info['q_pi'].sum() == pytest.approx(1.0)
        s = int(np.argmax(B[:, s, action[0]]))
    assert s == 15


def test_action_marginals_and_selection():
    policies = construct_policies([3], 2)
    q_pi = np.zeros(9)
    q_pi[[3, 4]] = 0.3
    q_pi[0] = 0.4
    marg = action_marginals(q_pi, policies, [3])[0]
    np.testing.assert_allclose(marg, [0.4, 0.6, 0.0])
    assert select_action(q_pi, policies, [3], np.random.default_rng(0)).tolist() == [1]


@pytest.mark.parametrize('bad', [
    {'A': [np.array([[0.5, 0.5], [0.4, 0.5]])], 'B': [B2]},
    {'A': [A2], 'B': [np.ones((2, 3, 1)) / 2]},
    {'A': [A2], 'B': [B2], 'C': [np.zeros(3)]},
    {'A': [A2], 'B': [B2], 'A_factor_list': [[1]]},
])
def test_invalid_models_raise_value_error(bad):
    with pytest.raises(ValueError):
        GenerativeModel(**bad)


def test_bad_observations_and_actions_raise():
    model = GenerativeModel(A=[A2], B=[B2])
    with pytest.raises(ValueError, match='observation'):
        infer_states(model, [2])
    with pytest.raises(ValueError, match='action'):
        predict_states(model, [np.array([0.5, 0.5])], [3])
    with pytest.raises(ValueError, match='controls'):
        expected_free_energy(model, [np.array([0.5, 0.5])], PolicyTree(np.array([[[5]]])))


def test_rollout_beliefs_match_repeated_prediction():
    arrays = grid_model_arrays(3, 3, obs_noise=0.1, slip=0.2)
    model = GenerativeModel(**arrays)
    tree = PolicyTree(construct_policies([5], 2))
    qs = infer_states(model, [4])
    beliefs = rollout_beliefs(model, qs, tree)[0]
    assert beliefs.shape == (9, tree.num_nodes)
    p = 13  # actions (2, 3)
    q = predict_states(model, predict_states(model, qs, [2]), [3])
    np.testing.assert_allclose(beliefs[:, tree.leaf[p]], q[0], atol=1e-12)
    np.testing.assert_allclose(beliefs.sum(axis=0), 1.0)
