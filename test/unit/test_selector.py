"""Plan selection: EFE terms against closed forms and independent computations, baselines."""
import numpy as np
import pytest
from scipy import integrate, special, stats

from embodied_aif.models.pareto import plan
from embodied_aif.models.selector import (
    Candidate,
    Preference,
    SelectionError,
    candidates_from_dicts,
    candidates_from_result,
    cross_entropy,
    efe_terms,
    info_gain,
    plan_info_gain,
    preference_from_dict,
    select,
)
from embodied_aif.models.transition_system import CostBeliefs, model_from_dict


def _candidates(means, covs=None, counts=None):
    means = np.asarray(means, dtype=float)
    out = []
    for i, m in enumerate(means):
        cov = np.diag((0.1 * m) ** 2) if covs is None else np.asarray(covs[i], dtype=float)
        n = 1.0 if counts is None else float(counts[i])
        out.append(Candidate(mean=m, cov=cov,
                             beliefs=CostBeliefs.from_costs(m[None], cov[None], np.array([n])),
                             multiplicity=np.array([1])))
    return out


def test_cross_entropy_closed_form():
    p_mean, p_cov = np.array([1.0, 2.0]), np.array([[2.0, 0.3], [0.3, 1.0]])
    # H[p, p] is the entropy of p.
    h = cross_entropy(p_mean[None], p_cov[None], p_mean, p_cov)
    np.testing.assert_allclose(h, [stats.multivariate_normal(p_mean, p_cov).entropy()])
    # H[q, p] = -E_q[log p(x)] by Monte Carlo.
    q_mean, q_cov = np.array([2.0, 0.5]), np.array([[0.5, 0.0], [0.0, 0.2]])
    x = np.random.default_rng(0).multivariate_normal(q_mean, q_cov, size=200_000)
    mc = -stats.multivariate_normal(p_mean, p_cov).logpdf(x).mean()
    np.testing.assert_allclose(cross_entropy(q_mean[None], q_cov[None], p_mean, p_cov), [mc],
                               rtol=5e-3)


def _nig_entropy(kappa, nu, psi):
    """Entropy of (mu, sigma^2) under sigma^2 ~ IG(nu/2, psi/2), mu | sigma^2 ~ N(m, s^2/k)."""
    a, b = nu / 2, psi / 2
    h_ig = a + np.log(b) + special.gammaln(a) - (1 + a) * special.digamma(a)
    e_log_var = np.log(b) - special.digamma(a)
    return h_ig + 0.5 * (np.log(2 * np.pi * np.e / kappa) + e_log_var)


def test_info_gain_matches_entropy_drop_in_one_dimension():
    m, var, n = 2.0, 0.5, 3.0
    beliefs = CostBeliefs.from_costs(np.array([[m]]), np.array([[[var]]]), np.array([n]))
    k, nu, psi = beliefs.kappa[0], beliefs.nu[0], beliefs.psi[0, 0, 0]
    # Expected posterior entropy by quadrature over the Student-t predictive of one cost.
    scale = np.sqrt(psi * (k + 1) / (k * nu))

    def integrand(x):
        post = _nig_entropy(k + 1, nu + 1, psi + k / (k + 1) * (x - m) ** 2)
        return stats.t.pdf(x, nu, loc=m, scale=scale) * post

    expected_post, _ = integrate.quad(integrand, -np.inf, np.inf)
    exact = _nig_entropy(k, nu, psi) - expected_post
    estimate = info_gain(beliefs, [1], np.random.default_rng(1), n_samples=40_000)
    np.testing.assert_allclose(estimate, [exact], rtol=0.03)


def test_info_gain_properties():
    rng = np.random.default_rng(2)
    mean = np.tile([[3.0, 1.0, 0.5]], (3, 1))
    beliefs = CostBeliefs.from_costs(mean, count=np.array([1.0, 5.0, 50.0]))
    gain = info_gain(beliefs, [1, 1, 1], rng, n_samples=4000)
    assert (gain >= 0).all() and gain[0] > gain[1] > gain[2]  # more data, less to learn
    twice = info_gain(beliefs, [2, 2, 2], rng, n_samples=4000)
    assert (twice > gain).all()  # two executions reveal more than one
    assert (twice < 2 * gain + 0.05).all()  # ... but with diminishing returns


def test_plan_info_gain_closed_form_when_covariances_are_known():
    # nu -> infinity pins Sigma: the belief over M = 2 mu_1 + mu_2 is Gaussian with covariance
    # 4 S1 / k1 + S2 / k2 before and 4 S1 / (k1 + 2) + S2 / (k2 + 1) after, whatever is seen.
    d, nu = 2, 1e7
    s1, s2 = np.array([[1.0, 0.3], [0.3, 0.5]]), 2.0 * np.eye(2)
    beliefs = CostBeliefs(mu=[[1.0, 2.0], [3.0, 1.0]], kappa=[1.0, 4.0], nu=[nu, nu],
                          psi=np.stack([s1, s2]) * (nu - d - 1), count=[1.0, 4.0])
    cand = Candidate(mean=np.zeros(2), cov=np.eye(2), beliefs=beliefs,
                     multiplicity=np.array([2, 1]))
    before, after = 4 * s1 + s2 / 4, 4 * s1 / 3 + s2 / 5
    exact = 0.5 * (np.linalg.slogdet(before)[1] - np.linalg.slogdet(after)[1])
    gain = plan_info_gain([cand, cand], np.random.default_rng(0), n_samples=64)
    np.testing.assert_allclose(gain, [exact, exact], rtol=1e-4)


def test_plan_info_gain_is_per_plan_not_per_step():
    rng = np.random.default_rng(4)
    one = _candidates([[3.0, 2.0]], counts=[1])[0]
    steps = CostBeliefs.from_costs(np.full((30, 2), 0.1), np.tile(np.eye(2) * 1e-4, (30, 1, 1)))
    long = Candidate(mean=[3.0, 3.0], cov=np.eye(2) * 3e-3, beliefs=steps,
                     multiplicity=np.ones(30, dtype=int))
    known = _candidates([[3.0, 2.0]], counts=[50])[0]
    gain = plan_info_gain([one, long, known], rng, n_samples=4000)
    per_step = info_gain(steps, np.ones(30), rng, n_samples=500)
    # A plan of 30 unknown steps is about as informative about its total as one unknown
    # step; summing the steps' mutual informations would count it 30 times over.
    assert gain[1] < 1.5 * gain[0] and per_step.sum() > 10 * gain[1]
    assert gain[0] > 5 * gain[2] > 0  # well-known plans have little left to teach
    empty = Candidate(mean=[0.0, 0.0], cov=np.eye(2), beliefs=CostBeliefs.from_costs(
        np.zeros((0, 2))), multiplicity=np.zeros(0, dtype=int))
    assert plan_info_gain([empty, one], rng)[0] == 0.0


def test_efe_terms_add_up_and_pragmatic_choice():
    cands = _candidates([[5, 8], [8, 6], [11, 5]], counts=[1, 5, 20])
    pref = Preference(('time', 'energy'), [8.0, 6.0], np.eye(2), epistemic_weight=0.5)
    terms = efe_terms(cands, pref, np.random.default_rng(0))
    np.testing.assert_allclose(terms['efe'], terms['risk'] - 0.5 * terms['info_gain'])
    assert terms['info_gain'][0] > terms['info_gain'][2]
    pragmatic = Preference(('time', 'energy'), [8.0, 6.0], np.eye(2), epistemic_weight=0.0)
    sel = select(cands, pragmatic, 'aif', np.random.default_rng(0))
    assert sel.index == 1 and (sel.info_gain == 0).all()
    # A strong epistemic drive picks the least-known plan instead.
    curious = Preference(('time', 'energy'), [8.0, 6.0], 100 * np.eye(2), epistemic_weight=5.0)
    assert select(cands, curious, 'aif', np.random.default_rng(0)).index == 0


def test_baselines_by_hand():
    cands = _candidates([[1, 4], [2, 2], [4, 1]])
    pref = Preference(('a', 'b'), [0.0, 0.0], np.eye(2), weights=[0.8, 0.2])
    top = select(cands, Preference(('a', 'b'), [0.0, 0.0], np.eye(2)), 'topsis')
    np.testing.assert_allclose(top.scores, [0.5, 2 / 3, 0.5])
    assert top.index == 1
    lin = select(cands, pref, 'weights')
    np.testing.assert_allclose(-lin.scores, [0.2, 1 / 3, 0.8])
    assert lin.index == 0
    picks = {select(cands, pref, 'uniform', np.random.default_rng(s)).index for s in range(20)}
    assert picks == {0, 1, 2}
    with pytest.raises(ValueError, match='unknown method'):
        select(cands, pref, 'greedy')


def test_candidates_from_result_and_dicts_agree():
    data = {'objectives': ['time', 'energy'], 'initial': 's0',
            'states': {'s0': {'labels': []}, 's1': {'labels': ['a']}, 's2': {'labels': []}},
            'transitions': [
                {'from': 's0', 'action': 'x', 'to': 's1', 'cost': [1.0, 3.0], 'count': 4},
                {'from': 's0', 'action': 'y', 'to': 's2', 'cost': [1.0, 0.5]},
                {'from': 's2', 'action': 'z', 'to': 's1', 'cost': [1.0, 0.5]}]}
    ts = model_from_dict(data)
    result = plan(ts, 'F a')
    from_result = candidates_from_result(result, ts.beliefs)
    _, from_json = candidates_from_dicts(result.to_dict(), 'plans.json')
    for a, b in zip(from_result, from_json, strict=True):
        np.testing.assert_allclose(a.mean, b.mean)
        np.testing.assert_allclose(a.cov, b.cov)
        np.testing.assert_allclose(a.beliefs.psi, b.beliefs.psi)
        np.testing.assert_allclose(a.beliefs.kappa, b.beliefs.kappa)


def test_repeated_steps_share_one_belief():
    step = {'cost': [1.0], 'cost_cov': [[0.01]], 'count': 2}
    data = {'objectives': ['t'], 'plans': [
        {'cost': [2.0], 'steps': [dict(step, transition=['a', 'go', 'b']),
                                  dict(step, transition=['a', 'go', 'b'])]},
        {'cost': [2.0], 'steps': [dict(step), dict(step)]}]}
    _, (same, distinct) = candidates_from_dicts(data, 'plans.json')
    assert same.multiplicity.tolist() == [2] and distinct.multiplicity.tolist() == [1, 1]
    rng = np.random.default_rng(0)
    gain_same = info_gain(same.beliefs, same.multiplicity, rng, 4000)
    gain_distinct = info_gain(distinct.beliefs, distinct.multiplicity, rng, 4000)
    # Two draws of one unknown cost teach less than one draw each of two unknown costs.
    assert gain_same.sum() < gain_distinct.sum()


def test_bad_preferences_and_plans():
    with pytest.raises(SelectionError, match='pref.json: covariance'):
        preference_from_dict({'objectives': ['t'], 'mean': [1.0], 'covariance': [[-1.0]]},
                             'pref.json')
    with pytest.raises(SelectionError, match='do not match'):
        preference_from_dict({'objectives': ['t', 'r'], 'mean': [1.0, 1.0],
                              'covariance': [[1.0, 0.0], [0.0, 1.0]]}, 'p', ['t', 'e'])
    swapped = preference_from_dict({'objectives': ['e', 't'], 'mean': [1.0, 2.0],
                                    'covariance': [[1.0, 0.0], [0.0, 4.0]]}, 'p', ['t', 'e'])
    np.testing.assert_allclose(swapped.mean, [2.0, 1.0])
    np.testing.assert_allclose(np.diag(swapped.covariance), [4.0, 1.0])
    with pytest.raises(SelectionError, match=r'plans\[1\].cost'):
        candidates_from_dicts({'objectives': ['t'], 'plans': [{'cost': [1.0]}, {'cost': []}]},
                              'plans.json')
    with pytest.raises(SelectionError, match='the planner said: no way'):
        candidates_from_dicts({'objectives': ['t'], 'plans': [], 'reason': 'no way'}, 'p')
    with pytest.raises(ValueError, match='epistemic_weight'):
        Preference(('t',), [1.0], [[1.0]], epistemic_weight=-1)


def test_benchmark_metrics_by_hand():
    from embodied_aif.bench.selection import pareto_regret, wasserstein2

    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    assert pareto_regret([2.0, 2.0], front) == 0.0  # on the front
    assert pareto_regret([4.0, 4.0], front) == 1.0  # (4, 4) - 1 = (3, 3) escapes
    assert pareto_regret([1.5, 5.0], front) == 0.5
    assert wasserstein2(front, front[::-1]) == pytest.approx(0.0, abs=1e-9)
    assert wasserstein2([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(5.0)
    # Two points against their midpoint: each moves half the segment.
    assert wasserstein2(front, [[2.0, 2.0]]) == pytest.approx(np.sqrt(2.0))


def test_plan_info_gain_of_one_step_is_the_student_t_mutual_information():
    # One execution of one step: the belief about its mean mu is Student-t before and after,
    # and the expected log-determinant of the updated scale has a closed form, so
    # I(mu; x) = H[mu] - E H[mu | x] can be written down and checked against the estimate.
    d, k = 2, 1.0
    psi = np.array([[1.0, 0.4], [0.4, 0.8]])
    for nu in (d + 2.0, d + 5.0):
        beliefs = CostBeliefs(mu=[[2.0, 1.0]], kappa=[k], nu=[nu], psi=psi[None], count=[k])
        cand = Candidate(mean=[2.0, 1.0], cov=np.eye(2), beliefs=beliefs,
                         multiplicity=np.array([1]))
        df0, df1 = nu - d + 1, nu - d + 2
        before = stats.multivariate_t(np.zeros(d), psi / (k * df0), df=df0).entropy()
        # psi' = psi + k/(k+1) (x - m)(x - m)^T with x from the predictive: the quadratic form
        # is a ratio of independent chi-squares, E log(1 + q) = digamma((df0+d)/2) - digamma(df0/2).
        e_logdet = (np.linalg.slogdet(psi)[1] + special.digamma((df0 + d) / 2)
                    - special.digamma(df0 / 2) - d * np.log((k + 1) * df1))
        after = stats.multivariate_t(np.zeros(d), np.eye(d), df=df1).entropy() + 0.5 * e_logdet
        gain = plan_info_gain([cand], np.random.default_rng(5), n_samples=20_000)
        np.testing.assert_allclose(gain, [before - after], rtol=0.03)


def test_plan_info_gain_shrinks_as_beliefs_sharpen_and_is_seeded():
    def plans(n):
        one = _candidates([[3.0, 2.0]], covs=[np.eye(2)], counts=[n])[0]
        steps = CostBeliefs.from_costs(np.ones((3, 2)), np.tile(0.2 * np.eye(2), (3, 1, 1)),
                                       np.full(3, float(n)))
        three = Candidate(mean=[3.0, 3.0], cov=np.eye(2), beliefs=steps,
                          multiplicity=np.array([1, 2, 1]))
        return [one, three]

    gains = np.stack([plan_info_gain(plans(n), np.random.default_rng(6), n_samples=2000)
                      for n in (1, 2, 5, 20, 200)])
    assert (gains >= 0).all()
    assert (np.diff(gains, axis=0) < 0).all()  # every plan: more data, less to learn
    assert (gains[-1] < 0.02).all()  # roughly d / (2 n) nats once the belief is sharp
    again = plan_info_gain(plans(2), np.random.default_rng(6), n_samples=2000)
    np.testing.assert_array_equal(again, gains[1])  # same generator seed, same estimate


def test_known_costs_pick_the_preference_optimal_plan_whatever_the_epistemic_weight():
    # Five plans on a front, all costs well known: the information gain is negligible, and
    # the choice is the plan of least surprise under the preference, its nearest plan here.
    means = np.array([[1.0, 9.0], [3.0, 5.0], [5.0, 3.0], [7.0, 2.0], [9.0, 1.0]])
    cands = _candidates(means, covs=[0.1 * np.eye(2)] * 5, counts=[1e4] * 5)
    for target in range(5):
        for weight in (0.0, 1.0, 3.0):
            pref = Preference(('time', 'energy'), means[target] + 0.3, 2.0 * np.eye(2),
                              epistemic_weight=weight)
            sel = select(cands, pref, 'aif', np.random.default_rng(target))
            assert sel.index == target
            np.testing.assert_allclose(sel.efe, sel.risk - weight * sel.info_gain)
            assert sel.info_gain.max() < 1e-3


def test_benchmark_preference_regret_bookkeeping():
    from embodied_aif.bench.selection import _plan_law, _run_front, user_preference

    true_mu = np.array([[1.0, 2.0], [0.5, 0.5]])
    std = np.array([[0.1, 0.2], [0.3, 0.4]])
    mean, cov = _plan_law(true_mu, std, (0, 1, 0))  # a repeated step counts twice
    np.testing.assert_allclose(mean, [2.5, 4.5])
    np.testing.assert_allclose(cov, np.diag([0.02 + 0.09, 0.08 + 0.16]))
    # Two plans on the front, one of them the preference's mean: Pareto regret is 0 whatever
    # is chosen, preference regret counts the picks of the other plan.
    mu = np.array([[1.0, 6.0], [6.0, 1.0]])
    sd = np.full((2, 2), 0.1)
    pref = user_preference(mu, np.random.default_rng(0), 0.5, 1.0)
    best = int(np.argmin(np.abs(mu - pref.mean).sum(axis=1)))
    surprise = cross_entropy(mu, np.stack([np.diag(s ** 2) for s in sd]), pref.mean,
                             pref.covariance)
    excess = surprise[1 - best] - surprise[best]
    assert excess > 1.0
    regret, _, pref_regret = _run_front(mu, sd, 'aif', 6, pref, 1, 2, 32, 0.0)
    assert regret == 0.0 and pref_regret == 0.0
    regret, _, pref_regret = _run_front(mu, sd, 'uniform', 20, pref, 1, 2, 32, 0.0)
    picks_of_other = pref_regret / excess
    assert regret == 0.0 and 1 <= picks_of_other <= 19
    assert picks_of_other == pytest.approx(round(picks_of_other))
