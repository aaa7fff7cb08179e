"""Policies as trees, expected free energy with separate terms, policy posterior, action choice.

Expected free energy of a policy pi (lower is better), summed over its future steps tau:

    efe = expected_cost - state_info_gain - param_info_gain
    expected_cost   = -E_Q(o)[ln P(o | C)]                      (pragmatic; "utility" negated)
    state_info_gain = H[Q(o)] - E_Q(s)[H[P(o | s)]]             (epistemic, about states)
    param_info_gain = novelty of the Dirichlet counts of A and B (epistemic, about parameters)

and equivalently ``expected_cost - state_info_gain = risk + ambiguity`` with
``risk = KL[Q(o) || P(o | C)]`` and ``ambiguity = E_Q(s)[H[P(o | s)]]``. Every term is returned
per policy so it can be logged; each can be switched off.

Policies of length T over the same actions share prefixes: the tree evaluates every prefix once
(levels of the tree are batched matrix products, sparse where B is sparse), so the cost grows
with the number of tree nodes, not with policies x steps.
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.aif.maths import SUPPORT, log_stable, softmax
from embodied_aif.models.aif.model import GenerativeModel, check_beliefs


def construct_policies(num_controls: Sequence[int], policy_len: int) -> np.ndarray:
    """Return every action sequence as an int array (num_policies, policy_len, num_factors).

    Order: lexicographic over (step 0 factor 0, step 0 factor 1, ..., last step last factor),
    the order pymdp's ``construct_policies`` uses.
    """
    num_controls = [int(n) for n in num_controls]
    if policy_len < 1 or not num_controls or min(num_controls) < 1:
        raise ValueError(f'need policy_len >= 1 and num_controls >= 1, got {policy_len}, '
                         f'{num_controls}')
    ranges = [range(n) for n in num_controls] * int(policy_len)
    flat = np.array(list(itertools.product(*ranges)), dtype=int)
    return flat.reshape(-1, int(policy_len), len(num_controls))


@dataclass
class PolicyTree:
    """Prefix tree of a policy set; node 0 is the root (now), node i > 0 ends a prefix.

    ``parent[i]`` and ``action[i]`` (one entry per factor) give the step that leads to node i;
    ``levels[k]`` are the nodes at depth k + 1 (``position`` is a node's index in its level);
    ``leaf[p]`` is the node where policy p ends.
    """

    policies: np.ndarray
    parent: np.ndarray = field(init=False)
    action: np.ndarray = field(init=False)
    depth: np.ndarray = field(init=False)
    levels: list[np.ndarray] = field(init=False)
    leaf: np.ndarray = field(init=False)
    position: np.ndarray = field(init=False)

    def __post_init__(self):
        pol = np.asarray(self.policies)
        if pol.ndim != 3 or pol.shape[0] < 1 or pol.shape[1] < 1:
            raise ValueError(f'policies must have shape (num_policies, policy_len, num_factors),'
                             f' got {pol.shape}')
        if not np.issubdtype(pol.dtype, np.integer):
            if not np.all(np.equal(np.mod(pol, 1), 0)):
                raise ValueError('policies must hold integer action indices')
            pol = pol.astype(int)
        if pol.min() < 0:
            raise ValueError(f'policies hold a negative action {pol.min()}')
        self.policies = pol
        n_pol, horizon, n_fac = pol.shape
        parents, actions, depths, levels = [-1], [np.zeros(n_fac, int)], [0], []
        node_of = np.zeros(n_pol, dtype=int)  # node of each policy's current prefix
        for t in range(horizon):
            keys = {}
            level = []
            for p in range(n_pol):
                key = (node_of[p], tuple(pol[p, t]))
                if key not in keys:
                    keys[key] = len(parents)
                    parents.append(node_of[p])
                    actions.append(pol[p, t].copy())
                    depths.append(t + 1)
                    level.append(keys[key])
                node_of[p] = keys[key]
            levels.append(np.array(level, dtype=int))
        self.parent = np.array(parents, dtype=int)
        self.action = np.array(actions, dtype=int)
        self.depth = np.array(depths, dtype=int)
        self.levels = levels
        self.leaf = node_of
        self.position = np.zeros(len(parents), dtype=int)
        for level in levels:
            self.position[level] = np.arange(len(level))

    @property
    def num_nodes(self) -> int:
        """Number of nodes including the root."""
        return len(self.parent)

    @property
    def num_policies(self) -> int:
        """Number of policies (leaves)."""
        return self.policies.shape[0]


@dataclass
class EFETerms:
    """Expected free energy of every policy with its separate terms (arrays of num_policies)."""

    efe: np.ndarray
    expected_cost: np.ndarray
    state_info_gain: np.ndarray
    risk: np.ndarray
    ambiguity: np.ndarray
    novelty_A: np.ndarray
    novelty_B: np.ndarray

    @property
    def param_info_gain(self) -> np.ndarray:
        """Total expected information gain about the Dirichlet parameters of A and B."""
        return self.novelty_A + self.novelty_B

    def as_dict(self) -> dict[str, list[float]]:
        """Return the terms as plain lists (for logging / JSON)."""
        return {name: np.asarray(getattr(self, name)).tolist()
                for name in ('efe', 'expected_cost', 'state_info_gain', 'risk', 'ambiguity',
                             'novelty_A', 'novelty_B')}


def _check_tree(model: GenerativeModel, tree: PolicyTree) -> None:
    if tree.action.shape[1] != model.num_factors:
        raise ValueError(f'policies have {tree.action.shape[1]} factors, the model has '
                         f'{model.num_factors}')
    too_big = tree.action.max(axis=0) >= np.array(model.num_controls)
    if np.any(too_big):
        f = int(np.argmax(too_big))
        raise ValueError(f'policies use action {tree.action[:, f].max()} of factor {f}, which '
                         f'has {model.num_controls[f]} controls')


def rollout_beliefs(model: GenerativeModel, qs: Sequence[np.ndarray],
                    tree: PolicyTree) -> list[np.ndarray]:
    """Return predicted beliefs at every tree node: per factor an array (S_f, num_nodes)."""
    qs = check_beliefs(qs, model.num_states)
    _check_tree(model, tree)
    beliefs = []
    for f in range(model.num_factors):
        q = np.empty((model.num_states[f], tree.num_nodes))
        q[:, 0] = qs[f]
        for level in tree.levels:
            acts = tree.action[level, f]
            for u in np.unique(acts):
                nodes = level[acts == u]
                q[:, nodes] = model.B_ops[f][u] @ q[:, tree.parent[nodes]]
        beliefs.append(q)
    return beliefs


def _joint_columns(beliefs: list[np.ndarray], factors: list[int]) -> np.ndarray:
    """Return per-node joint beliefs over ``factors`` (mean-field product), flattened, by column."""
    joint = beliefs[factors[0]]
    for f in factors[1:]:
        joint = (joint[:, None, :] * beliefs[f][None, :, :]).reshape(-1, joint.shape[1])
    return joint


def _neg_entropy_columns(p: np.ndarray) -> np.ndarray:
    """Return sum_i p_i ln(p_i + EPS) for every column of ``p``."""
    return np.einsum('ij,ij->j', p, log_stable(p))


TERM_NAMES = ('expected_cost', 'state_info_gain', 'risk', 'ambiguity', 'novelty_A',
              'novelty_B')


def _chunk_terms(model: GenerativeModel, q: list[np.ndarray], q_parent: list[np.ndarray],
                 acts: np.ndarray, use_param_info_gain: bool) -> dict[str, np.ndarray]:
    """Return the one-step EFE terms of a batch of nodes (beliefs by column)."""
    k = q[0].shape[1]
    out = {name: np.zeros(k) for name in TERM_NAMES}
    for m in range(model.num_modalities):
        qx = _joint_columns(q, model.A_factor_list[m])
        qo = np.asarray(model.A_ops[m] @ qx)
        cost_m = -(model.log_C[m] @ qo)
        supported = np.where(qx > SUPPORT, qx, 0.0)
        qo_s = np.asarray(model.A_ops[m] @ supported)
        neg_h_o = _neg_entropy_columns(qo_s)
        neg_amb = model.A_neg_entropy[m] @ supported
        out['expected_cost'] += cost_m
        out['state_info_gain'] += neg_amb - neg_h_o
        out['ambiguity'] -= neg_amb
        out['risk'] += neg_h_o + cost_m
        if use_param_info_gain and model.novelty_A_ops is not None:
            out['novelty_A'] += np.einsum('ij,ij->j', qo,
                                          np.asarray(model.novelty_A_ops[m] @ qx))
    if use_param_info_gain and model.novelty_B_ops is not None:
        for f in range(model.num_factors):
            for u in np.unique(acts[:, f]):
                sel = acts[:, f] == u
                pred = np.asarray(model.novelty_B_ops[f][u] @ q_parent[f][:, sel])
                out['novelty_B'][sel] += np.einsum('ij,ij->j', q[f][:, sel], pred)
    return out


def node_efe_terms(model: GenerativeModel, qs: Sequence[np.ndarray], tree: PolicyTree,
                   use_param_info_gain: bool = False,
                   chunk: int = 32) -> dict[str, np.ndarray]:
    """Return the one-step EFE terms at every node (zeros at the root), keyed by term name.

    Beliefs are predicted level by level, in batches of ``chunk`` nodes; only the beliefs of
    one level are kept (none of the last level), so memory stays small for many policies.
    """
    out = {name: np.zeros(tree.num_nodes) for name in TERM_NAMES}
    prev = [np.asarray(q, dtype=float)[:, None] for q in qs]
    last = len(tree.levels) - 1
    for depth, level in enumerate(tree.levels):
        parent_col = tree.position[tree.parent[level]]
        acts = tree.action[level]
        keep = [np.empty((n, len(level))) for n in model.num_states] if depth < last else None
        for start in range(0, len(level), chunk):
            cols = slice(start, start + chunk)
            p_cols, a_cols = parent_col[cols], acts[cols]
            parents = [p[:, p_cols] for p in prev]
            cur = []
            for f in range(model.num_factors):
                q = np.empty((model.num_states[f], len(p_cols)))
                for u in np.unique(a_cols[:, f]):
                    sel = np.flatnonzero(a_cols[:, f] == u)
                    q[:, sel] = model.B_ops[f][u] @ parents[f][:, sel]
                cur.append(q)
                if keep is not None:
                    keep[f][:, cols] = q
            terms = _chunk_terms(model, cur, parents, a_cols, use_param_info_gain)
            for name, value in terms.items():
                out[name][level[cols]] = value
        prev = keep
    return out


def _accumulate(tree: PolicyTree, per_node: np.ndarray) -> np.ndarray:
    """Return the sum of ``per_node`` along the path from the root to every policy's leaf."""
    total = per_node.copy()
    for level in tree.levels:
        total[level] += total[tree.parent[level]]
    return total[tree.leaf]


def expected_free_energy(model: GenerativeModel, qs: Sequence[np.ndarray], tree: PolicyTree,
                         use_utility: bool = True, use_states_info_gain: bool = True,
                         use_param_info_gain: bool = False) -> EFETerms:
    """Return the EFE of every policy of ``tree`` from current beliefs ``qs``, with its terms.

    ``efe`` sums the switched-on terms; the others are returned whatever the switches say
    (novelty terms are zero unless ``use_param_info_gain`` and the model has pA / pB).
    """
    qs = check_beliefs(qs, model.num_states)
    _check_tree(model, tree)
    per_node = node_efe_terms(model, qs, tree, use_param_info_gain)
    terms = {k: _accumulate(tree, v) for k, v in per_node.items()}
    efe = np.zeros(tree.num_policies)
    if use_utility:
        efe += terms['expected_cost']
    if use_states_info_gain:
        efe -= terms['state_info_gain']
    if use_param_info_gain:
        efe -= terms['novelty_A'] + terms['novelty_B']
    return EFETerms(efe=efe, **terms)


def policy_posterior(efe: np.ndarray, gamma: float = 16.0,
                     E: np.ndarray | None = None) -> np.ndarray:
    """Return q(pi) = softmax(-gamma * efe + ln E) (E: prior over policies, default flat)."""
    efe = np.asarray(efe, dtype=float)
    if efe.ndim != 1 or efe.size == 0 or not np.all(np.isfinite(efe)):
        raise ValueError(f'efe must be a non-empty finite vector, got shape {efe.shape}')
    if not gamma >= 0:
        raise ValueError(f'gamma must be >= 0, got {gamma}')
    if E is None:
        log_e = np.full(efe.shape, np.log(1.0 / efe.size + 1e-16))
    else:
        E = np.asarray(E, dtype=float)
        if E.shape != efe.shape or np.any(E < 0):
            raise ValueError(f'E has shape {E.shape}, need non-negative {efe.shape}')
        log_e = log_stable(E)
    return softmax(-gamma * efe + log_e)


def infer_policies(model: GenerativeModel, qs: Sequence[np.ndarray], tree: PolicyTree,
                   gamma: float = 16.0, E: np.ndarray | None = None, use_utility: bool = True,
                   use_states_info_gain: bool = True,
                   use_param_info_gain: bool = False) -> tuple[np.ndarray, EFETerms]:
    """Return (q(pi), EFE terms) for the policies of ``tree`` from beliefs ``qs``."""
    terms = expected_free_energy(model, qs, tree, use_utility, use_states_info_gain,
                                 use_param_info_gain)
    return policy_posterior(terms.efe, gamma, E), terms


def action_marginals(q_pi: np.ndarray, policies: np.ndarray,
                     num_controls: Sequence[int]) -> list[np.ndarray]:
    """Return, per factor, the posterior probability of each first action."""
    q_pi = np.asarray(q_pi, dtype=float)
    policies = np.asarray(policies)
    if q_pi.shape != (policies.shape[0],):
        raise ValueError(f'q_pi has shape {q_pi.shape} for {policies.shape[0]} policies')
    out = []
    for f, n in enumerate(num_controls):
        marg = np.bincount(policies[:, 0, f], weights=q_pi, minlength=int(n))
        out.append(marg / marg.sum())
    return out


def select_action(q_pi: np.ndarray, policies: np.ndarray, num_controls: Sequence[int],
                  rng: np.random.Generator, alpha: float | None = None) -> np.ndarray:
    """Return one action per factor: the most probable first action (ties broken by ``rng``).

    With ``alpha`` the action is sampled from softmax(alpha * ln marginal) instead.
    """
    actions = []
    for marg in action_marginals(q_pi, policies, num_controls):
        if alpha is None:
            best = np.flatnonzero(np.abs(marg - marg.max()) <= 1e-8)
            actions.append(int(best[0] if best.size == 1 else rng.choice(best)))
        else:
            p = softmax(alpha * log_stable(marg))
            actions.append(int(rng.choice(p.size, p=p)))
    return np.array(actions, dtype=int)


__all__ = ['EFETerms', 'PolicyTree', 'action_marginals', 'construct_policies',
           'expected_free_energy', 'infer_policies', 'node_efe_terms', 'policy_posterior',
           'rollout_beliefs', 'select_action']
