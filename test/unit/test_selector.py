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
    decision_info_gain,
    dominance_risk,
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
    terms = efe_terms(cands, pref, np.random.default_rng(0), info='parameters')
    np.testing.assert_allclose(terms['efe'], terms['risk'] - 0.5 * terms['info_gain'])
    assert terms['info_gain'][0] > terms['info_gain'][2]
    # About the decision there is nothing to learn: (8, 6) is the preference's mean, well
    # known, and no other plan could be closer to it.
    decision = efe_terms(cands, pref, np.random.default_rng(0))
    np.testing.assert_allclose(decision['efe'], decision['risk'] - 0.5 * decision['info_gain'])
    np.testing.assert_allclose(decision['risk'], terms['risk'])
    assert (decision['info_gain'] == 0).all()
    pragmatic = Preference(('time', 'energy'), [8.0, 6.0], np.eye(2), epistemic_weight=0.0)
    sel = select(cands, pragmatic, 'aif', np.random.default_rng(0))
    assert sel.index == 1 and (sel.info_gain == 0).all()
    # A strong drive to learn the costs themselves picks the least-known plan instead.
    curious = Preference(('time', 'energy'), [8.0, 6.0], 100 * np.eye(2), epistemic_weight=5.0)
    assert select(cands, curious, 'aif', np.random.default_rng(0), info='parameters').index == 0


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


def _known(means, var=1e-2):
    """Candidates whose mean costs are known (huge pseudo-counts), execution variance var."""
    return _candidates(means, covs=[var * np.eye(len(means[0]))] * len(means),
                       counts=[1e8] * len(means))


def test_dominance_risk_by_hand_and_against_sampling():
    floor = -np.log(1e-12)
    # Known costs: plans on the front cost nothing, a plan beaten by three others costs the
    # floor three times over.
    risk = dominance_risk(_known([[1.0, 3.0], [3.0, 1.0], [2.0, 2.0], [3.5, 3.5]]))
    np.testing.assert_allclose(risk[:3], 0.0, atol=1e-9)
    np.testing.assert_allclose(risk[3], 3 * floor, rtol=1e-9)
    # Uncertain means, nearly Gaussian beliefs (large nu): -log(1 - P(M_2 <= M_1)), the
    # probability estimated by sampling the two means independently.
    d, nu = 2, 1e7
    cov = [np.array([[0.5, 0.0], [0.0, 0.2]]), np.array([[0.3, 0.0], [0.0, 0.6]])]
    kappa = [2.0, 3.0]
    means = [np.array([2.0, 3.0]), np.array([1.5, 3.2])]
    cands = [Candidate(mean=m, cov=c, multiplicity=np.array([1]),
                       beliefs=CostBeliefs(mu=m[None], kappa=[k], nu=[nu],
                                           psi=(c * (nu - d - 1))[None], count=[k]))
             for m, c, k in zip(means, cov, kappa, strict=True)]
    rng = np.random.default_rng(0)
    draws = [rng.multivariate_normal(m, c / k, size=400_000)
             for m, c, k in zip(means, cov, kappa, strict=True)]
    p21 = ((draws[1] <= draws[0]).all(axis=1)).mean()
    p12 = ((draws[0] <= draws[1]).all(axis=1)).mean()
    np.testing.assert_allclose(dominance_risk(cands), [-np.log(1 - p21), -np.log(1 - p12)],
                               rtol=0.02)


def test_dominance_risk_uses_shared_steps():
    # Two plans share an uncertain step and differ by a known one: the second is surely
    # dominated although each plan's own total is uncertain. Without step ids the shared step
    # is not recognised and the comparison looks uncertain.
    shared = CostBeliefs.from_costs(np.array([[5.0, 5.0]]), np.eye(2)[None], np.array([1.0]))
    cheap = CostBeliefs.from_costs(np.array([[1.0, 1.0]]), 1e-4 * np.eye(2)[None],
                                   np.array([1e8]))
    dear = CostBeliefs.from_costs(np.array([[1.5, 1.5]]), 1e-4 * np.eye(2)[None],
                                  np.array([1e8]))

    def two(ids):
        out = []
        for k, own in enumerate((cheap, dear)):
            beliefs = CostBeliefs(*(np.concatenate([getattr(shared, f), getattr(own, f)])
                                    for f in ('mu', 'kappa', 'nu', 'psi', 'count')))
            out.append(Candidate(mean=beliefs.mu.sum(axis=0), cov=np.eye(2), beliefs=beliefs,
                                 multiplicity=np.array([1, 1]),
                                 steps=None if ids is None else ('shared', f'own{k}')))
        return out

    with_ids = dominance_risk(two('ids'))
    without = dominance_risk(two(None))
    assert with_ids[0] < 1e-6 and with_ids[1] > 20
    assert 0.01 < without[1] < 2  # the same plans, compared as if unrelated
    with pytest.raises(ValueError, match='one id per step'):
        Candidate(mean=[1.0, 1.0], cov=np.eye(2), beliefs=cheap, multiplicity=np.array([1]),
                  steps=('a', 'b'))


def test_restricted_preference_rejects_a_slightly_dominated_plan():
    # The preference's mean is on the front; (4.05, 4.15) is nearer to it than (3.6, 4.1) but
    # is beaten by it on both costs. The Gaussian alone prefers the dominated plan.
    cands = _known([[3.6, 4.1], [4.05, 4.15], [6.0, 2.0]])
    for restrict, expected in ((False, 1), (True, 0)):
        pref = Preference(('time', 'energy'), [4.0, 4.0], np.eye(2), epistemic_weight=0.0,
                          restrict_to_front=restrict)
        sel = select(cands, pref, 'aif', np.random.default_rng(0))
        assert sel.index == expected
        plain = cross_entropy(np.stack([c.mean for c in cands]),
                              np.stack([c.cov for c in cands]), pref.mean, pref.covariance)
        np.testing.assert_allclose(sel.risk, plain + sel.dominance)
        assert (sel.dominance > 0).any() == restrict
    terms = sel.to_dict()['terms']
    assert terms[1]['dominance'] > 20 and terms[0]['dominance'] < 1e-6
    loaded = preference_from_dict({'objectives': ['t'], 'mean': [1.0], 'covariance': [[1.0]],
                                   'restrict_to_front': False}, 'pref.json')
    assert loaded.restrict_to_front is False
    with pytest.raises(SelectionError, match='pref.json: restrict_to_front'):
        preference_from_dict({'objectives': ['t'], 'mean': [1.0], 'covariance': [[1.0]],
                              'restrict_to_front': 'no'}, 'pref.json')


def test_decision_info_gain_against_quadrature_in_one_dimension():
    # One objective: the front is the cheapest plan. A known plan costs v, the other's mean
    # is believed N(m, s2) (Gaussian: nu large) and one execution adds noise of variance n2.
    # a* = [M < v]; given x, M is N(pm, ps2) and P(a* | x) = Phi((v - pm) / ps), so
    # I(a*; x) = h(P(M < v)) - E_x h(Phi((v - pm(x)) / ps)) by quadrature over x.
    v, m, k, n2, nu = 2.0, 2.3, 2.0, 0.5, 1e7
    s2 = n2 / k
    unknown = Candidate(mean=[m], cov=[[n2 + s2]], multiplicity=np.array([1]),
                        beliefs=CostBeliefs(mu=[[m]], kappa=[k], nu=[nu],
                                            psi=[[[n2 * (nu - 3)]]], count=[k]))
    known = _known([[v]])[0]

    def h(p):
        p = np.clip(p, 1e-300, 1 - 1e-16)
        return -(p * np.log(p) + (1 - p) * np.log1p(-p))

    ps2 = 1 / (1 / s2 + 1 / n2)

    def integrand(x):
        pm = ps2 * (m / s2 + x / n2)
        return stats.norm.pdf(x, m, np.sqrt(s2 + n2)) * h(stats.norm.cdf((v - pm) / np.sqrt(ps2)))

    expected_after, _ = integrate.quad(integrand, m - 12, m + 12)
    exact = h(stats.norm.cdf((v - m) / np.sqrt(s2))) - expected_after
    pref = Preference(('t',), [0.0], [[1.0]])
    gain = decision_info_gain([known, unknown], pref, np.random.default_rng(3), n_samples=3000)
    assert gain[0] == 0.0  # a known plan has nothing to reveal
    np.testing.assert_allclose(gain[1], exact, rtol=0.1)
    assert 0.05 < exact < np.log(2)


def test_decision_info_gain_counts_only_what_can_change_the_choice():
    # A known plan and an equally near, unknown one compete for the preference; a third plan,
    # as unknown as the second, is far off and dominated whatever its cost turns out to be.
    cands = _candidates([[3.0, 5.0], [5.0, 3.0], [20.0, 20.0]], covs=[np.eye(2)] * 3,
                        counts=[1e8, 1, 1])
    pref = Preference(('time', 'energy'), [4.0, 4.0], 4 * np.eye(2))
    rng = np.random.default_rng(0)
    decision = decision_info_gain(cands, pref, rng, n_samples=512)
    params = plan_info_gain(cands, rng, n_samples=512)
    assert decision[1] > 0.05 and decision[2] < 0.25 * decision[1] and decision[0] < 1e-6
    assert decision.max() <= np.log(3)
    # About the parameters themselves, the two unknown plans have as much to teach.
    np.testing.assert_allclose(params[1], params[2], rtol=0.05)
    # Known costs everywhere: the choice is certain, nothing is worth learning.
    assert (decision_info_gain(_known([[3.0, 5.0], [6.0, 3.0]]), pref, rng) == 0).all()
    with pytest.raises(ValueError, match='unknown info term'):
        efe_terms(cands, pref, rng, info='everything')


def test_switches_give_back_the_plain_terms_and_the_benchmark_runs_them(capsys):
    import json

    from embodied_aif.bench.selection import main

    cands = _candidates([[5, 8], [8, 6], [9, 7]], counts=[1, 5, 2])
    plain = Preference(('time', 'energy'), [8.0, 6.0], 4 * np.eye(2), restrict_to_front=False)
    terms = efe_terms(cands, plain, np.random.default_rng(7), n_samples=64, info='parameters')
    means, covs = np.stack([c.mean for c in cands]), np.stack([c.cov for c in cands])
    np.testing.assert_allclose(terms['risk'], cross_entropy(means, covs, plain.mean,
                                                            plain.covariance))
    np.testing.assert_array_equal(terms['info_gain'],
                                  plan_info_gain(cands, np.random.default_rng(7), 64))
    assert (terms['dominance'] == 0).all()
    # (9, 7) is beaten by (8, 6) on both costs: only the restricted preference says so.
    restricted = efe_terms(cands, Preference(('time', 'energy'), [8.0, 6.0], 4 * np.eye(2)),
                           np.random.default_rng(7), n_samples=64, info='parameters')
    assert restricted['dominance'][2] > 1.0 > restricted['dominance'][0]
    code = main(['--quick', '--seeds', '0:1', '--per-size', '1', '--grids', '0', '--rounds', '3',
                 '--ablations'])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for name in ('aif', 'aif_w0', 'aif_plain', 'aif_gauss', 'aif_params', 'weights'):
        assert out[f'regret_{name}'] >= 0 and f'pref_regret_{name}_k72' in out
