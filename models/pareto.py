"""Exact multi-objective planning: every Pareto-optimal plan of a transition system for a task.

The product of a transition system (TS) with the task's DFA has nodes (TS state, DFA state);
its initial node is (s0, delta(q0, L(s0))), so the trace of a plan has one letter per visited
state, the initial one included. A plan is a path from the initial node to the first node
whose DFA state is accepting; its cost is the sum of its transitions' cost vectors.

`plan` returns one plan for every Pareto-optimal cost vector (sorted lexicographically). The
search is a multi-objective label-setting A* in the NAMOA*dr form: labels leave the open list
in lexicographic order of f = g + h, so dominance against closed labels and solutions only has
to compare the last d - 1 objectives (a scalar for two objectives, as in bi-objective A*; a
2-D staircase for three). The heuristic h is, per objective, the exact single-objective
distance to acceptance in the product (consistent, hence admissible); nodes that cannot reach
acceptance are never entered. Costs must be non-negative.
"""
from __future__ import annotations

import bisect
import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from embodied_aif.models.ltl import DFA, to_dfa
from embodied_aif.models.transition_system import TransitionSystem, path_cost_distribution

__all__ = ['Plan', 'PlanResult', 'Product', 'TaskError', 'build_product', 'plan',
           'pareto_filter', 'dominates']

# Relative tolerance under which two cost sums count as equal in dominance checks.
TOLERANCE = 1e-9


class TaskError(ValueError):
    """A task that cannot be posed on a model (unknown atoms, bad optimism)."""


@dataclass(frozen=True)
class Product:
    """The reachable part of TS x DFA.

    ts_state, dfa_state: (N,) components of each node; initial: index of the initial node;
    accepting: (N,) DFA state accepting; edge_src, edge_dst, edge_transition: (E,) edges and
    the TS transition behind each (accepting nodes have no outgoing edges: plans stop there);
    live: (N,) whether the node can reach an accepting node.
    """

    ts_state: np.ndarray
    dfa_state: np.ndarray
    initial: int
    accepting: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_transition: np.ndarray
    live: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of reachable product nodes."""
        return int(self.ts_state.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of product edges."""
        return int(self.edge_src.shape[0])


def build_product(ts: TransitionSystem, dfa: DFA) -> Product:
    """Build the product reachable from the initial node (accepting nodes are terminal)."""
    letters = np.array([dfa.letter(labels) for labels in ts.labels], dtype=np.int64)
    out: list[list[int]] = [[] for _ in ts.states]
    for t, s in enumerate(ts.src):
        out[s].append(t)
    start = (ts.initial, int(dfa.delta[dfa.initial, letters[ts.initial]]))
    index = {start: 0}
    nodes = [start]
    e_src, e_dst, e_tr = [], [], []
    i = 0
    while i < len(nodes):
        s, q = nodes[i]
        if not dfa.accepting[q]:
            for t in out[s]:
                s2 = int(ts.dst[t])
                nxt = (s2, int(dfa.delta[q, letters[s2]]))
                j = index.get(nxt)
                if j is None:
                    j = index[nxt] = len(nodes)
                    nodes.append(nxt)
                e_src.append(i)
                e_dst.append(j)
                e_tr.append(t)
        i += 1
    arr = np.asarray(nodes, dtype=np.int64).reshape(-1, 2)
    accepting = dfa.accepting[arr[:, 1]]
    e_src = np.asarray(e_src, dtype=np.int64)
    e_dst = np.asarray(e_dst, dtype=np.int64)
    live = accepting.copy()
    # Backward reachability from accepting nodes.
    rev: list[list[int]] = [[] for _ in nodes]
    for a, b in zip(e_src.tolist(), e_dst.tolist(), strict=True):
        rev[b].append(a)
    stack = list(np.flatnonzero(accepting))
    while stack:
        b = stack.pop()
        for a in rev[b]:
            if not live[a]:
                live[a] = True
                stack.append(a)
    return Product(ts_state=arr[:, 0].copy(), dfa_state=arr[:, 1].copy(), initial=0,
                   accepting=accepting, edge_src=e_src, edge_dst=e_dst,
                   edge_transition=np.asarray(e_tr, dtype=np.int64), live=live)


def _distances_to_goal(product: Product, edge_cost: np.ndarray) -> np.ndarray:
    """Single-objective distance of every node to acceptance (inf where unreachable)."""
    n = product.n_nodes
    dist = np.full(n, np.inf)
    rev: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for a, b, c in zip(product.edge_src.tolist(), product.edge_dst.tolist(),
                       edge_cost.tolist(), strict=True):
        rev[b].append((a, c))
    heap = [(0.0, int(v)) for v in np.flatnonzero(product.accepting)]
    for _, v in heap:
        dist[v] = 0.0
    heapq.heapify(heap)
    done = np.zeros(n, dtype=bool)
    while heap:
        dv, v = heapq.heappop(heap)
        if done[v]:
            continue
        done[v] = True
        for u, c in rev[v]:
            du = dv + c
            if du < dist[u]:
                dist[u] = du
                heapq.heappush(heap, (du, u))
    return dist


def dominates(a, b, tol: float = TOLERANCE) -> bool:
    """Whether cost vector a weakly dominates b (a <= b componentwise, within tolerance)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return bool(np.all(a <= b + tol * np.maximum(1.0, np.abs(b))))


def pareto_filter(costs) -> np.ndarray:
    """Return the indices of the non-dominated rows of a cost matrix (one per distinct vector)."""
    costs = np.asarray(costs, dtype=float)
    order = np.lexsort(costs.T[::-1])
    kept: list[int] = []
    for i in order:
        if not any(dominates(costs[k], costs[i]) for k in kept):
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


class _Front:
    """Closed (truncated) cost vectors at one node, for 'is v weakly dominated?' queries.

    Vectors are added in lexicographic order of the full vector, so a stored vector never
    loses on the dropped first objective and comparing the remaining k entries suffices.
    """

    __slots__ = ('k', 'xs', 'ys', 'rows', 'nonempty')

    def __init__(self, k: int):
        self.k = k
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.rows: list[tuple[float, ...]] = []
        self.nonempty = False

    def dominates(self, v) -> bool:
        if not self.nonempty:
            return False
        k = self.k
        if k == 0:
            return True
        if k == 1:
            return self.xs[0] <= v[0] + TOLERANCE * max(1.0, abs(v[0]))
        if k == 2:
            x = v[0] + TOLERANCE * max(1.0, abs(v[0]))
            i = bisect.bisect_right(self.xs, x) - 1
            return i >= 0 and self.ys[i] <= v[1] + TOLERANCE * max(1.0, abs(v[1]))
        arr = np.asarray(self.rows)
        vv = np.asarray(v)
        return bool(np.all(arr <= vv + TOLERANCE * np.maximum(1.0, np.abs(vv)), axis=1).any())

    def add(self, v) -> None:
        self.nonempty = True
        k = self.k
        if k == 0:
            return
        if k == 1:
            if not self.xs:
                self.xs.append(v[0])
            else:
                self.xs[0] = min(self.xs[0], v[0])
            return
        if k == 2:
            p = bisect.bisect_left(self.xs, v[0])
            j = p
            while j < len(self.xs) and self.ys[j] >= v[1]:
                j += 1
            self.xs[p:j] = [v[0]]
            self.ys[p:j] = [v[1]]
            return
        self.rows = [r for r in self.rows if not all(a <= b for a, b in zip(v, r, strict=True))]
        self.rows.append(tuple(v))


@dataclass(frozen=True)
class Plan:
    """One Pareto-optimal plan.

    cost: (d,) total planning cost (mean costs, or optimistic ones when planned with
    optimism); transitions: TS transition indices; states: visited TS state names from the
    initial state to the first state where the task holds; actions / targets: per step;
    dfa_states: DFA state after each visited state; expected_cost / cost_cov: predicted total
    cost N(mean, cov) under the cost beliefs; step_costs (k, d), step_covs (k, d, d) and
    step_counts (k,): each step's belief (mean, expected covariance, observation count).
    """

    cost: np.ndarray
    transitions: tuple[int, ...]
    states: tuple[str, ...]
    actions: tuple[str, ...]
    targets: tuple[str, ...]
    dfa_states: tuple[int, ...]
    expected_cost: np.ndarray
    cost_cov: np.ndarray
    step_costs: np.ndarray
    step_covs: np.ndarray
    step_counts: np.ndarray
    labels: tuple[frozenset, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready form (the `plans` entries of ``embodied-aif plan --json``)."""
        steps = [{
            'action': self.actions[k], 'target': self.targets[k],
            'from': self.states[k], 'to': self.states[k + 1],
            'transition': int(self.transitions[k]),
            'cost': _floats(self.step_costs[k]),
            'cost_cov': [_floats(row) for row in self.step_covs[k]],
            'count': float(self.step_counts[k]),
        } for k in range(len(self.transitions))]
        return {
            'cost': _floats(self.cost),
            'states': list(self.states),
            'actions': list(self.actions),
            'expected_cost': _floats(self.expected_cost),
            'cost_cov': [_floats(row) for row in self.cost_cov],
            'steps': steps,
        }


def _floats(values) -> list[float]:
    return [float(v) for v in values]


@dataclass(frozen=True)
class PlanResult:
    """The Pareto set of plans for a task, or why there is none.

    plans are sorted lexicographically by cost; satisfiable is False when no plan can satisfy
    the task, with the reason; stats holds sizes and timings of the search.
    """

    objectives: tuple[str, ...]
    formula: str
    plans: tuple[Plan, ...]
    satisfiable: bool
    reason: str = ''
    optimism: float = 0.0
    stats: dict = field(default_factory=dict)

    def costs(self) -> np.ndarray:
        """Planning costs of all plans as an (n_plans, d) array."""
        return np.asarray([p.cost for p in self.plans], dtype=float).reshape(
            len(self.plans), len(self.objectives))

    def to_dict(self) -> dict:
        """JSON-ready form of ``embodied-aif plan --json``."""
        return {
            'objectives': list(self.objectives),
            'formula': self.formula,
            'optimism': self.optimism,
            'satisfiable': self.satisfiable,
            'reason': self.reason,
            'plans': [p.to_dict() for p in self.plans],
            'stats': dict(self.stats),
        }


def _unsatisfiable_reason(ts: TransitionSystem, dfa: DFA, product: Product) -> str:
    if not dfa.satisfiable:
        return f'the formula {dfa.formula!r} is unsatisfiable: no finite trace satisfies it'
    init_state = ts.states[ts.initial]
    q0 = int(product.dfa_state[product.initial])
    if not dfa.is_live(q0):
        return (f'the initial state {init_state!r} (labels {sorted(ts.labels[ts.initial])}) '
                f'already violates the task {dfa.formula!r}')
    reachable = {int(s) for s in product.ts_state}
    seen = frozenset().union(*(ts.labels[s] for s in reachable))
    missing = [a for a in dfa.atoms if a not in seen]
    detail = (f'atom(s) {", ".join(repr(a) for a in missing)} never hold in a state reachable '
              f'from {init_state!r}' if missing else
              f'none of the {product.n_nodes} reachable (state, automaton) pairs can reach '
              f'acceptance')
    return f'no run of the transition system satisfies the task {dfa.formula!r}: {detail}'


def checked_system(ts: TransitionSystem, objectives, optimism: float) -> TransitionSystem:
    """The system restricted to `objectives` (None/empty: all), with optimism checked.

    TaskError for unknown objectives or an optimism that is not a finite number >= 0.
    """
    if objectives:
        try:
            ts = ts.restrict(objectives)
        except ValueError as exc:
            raise TaskError(str(exc)) from None
    if not math.isfinite(optimism) or optimism < 0:
        raise TaskError(f'optimism must be a finite number >= 0, got {optimism}')
    return ts


def plan(ts: TransitionSystem, task: str | DFA, optimism: float = 0.0,
         objectives=None, max_labels: int = 5_000_000) -> PlanResult:
    """Compute every Pareto-optimal plan of `ts` for an LTLf task (formula text or DFA).

    optimism = 0 plans on mean costs; optimism > 0 on lower confidence bounds (see
    CostBeliefs.lower_bound). objectives (names, e.g. TaskSpec.objectives) restricts the
    optimisation to those objectives; None or empty means all. Raises TaskError for atoms that
    no state of the model carries or unknown objectives, LTLSyntaxError for formulas that do
    not parse; an unsatisfiable task gives a result with satisfiable=False and the reason.
    max_labels bounds the search (RuntimeError beyond it).
    """
    started = time.perf_counter()
    ts = checked_system(ts, objectives, optimism)
    dfa = task if isinstance(task, DFA) else to_dfa(task)
    known = ts.all_labels()
    unknown = [a for a in dfa.atoms if a not in known]
    if unknown:
        raise TaskError(f'the task {dfa.formula!r} uses atom(s) '
                        f'{", ".join(repr(a) for a in unknown)} that no state of the model '
                        f'carries; known labels: {", ".join(sorted(known)) or "none"}')
    costs = ts.costs(optimism)
    d = costs.shape[1]
    product = build_product(ts, dfa)
    t_product = time.perf_counter()
    stats = {'dfa_states': dfa.n_states, 'product_nodes': product.n_nodes,
             'product_edges': product.n_edges, 'labels_created': 0, 'labels_expanded': 0}
    if not product.live[product.initial]:
        stats['time_s'] = time.perf_counter() - started
        return PlanResult(objectives=ts.objectives, formula=dfa.formula, plans=(),
                          satisfiable=False, reason=_unsatisfiable_reason(ts, dfa, product),
                          optimism=optimism, stats=stats)
    edge_cost = costs[product.edge_transition]
    h = np.stack([_distances_to_goal(product, edge_cost[:, k]) for k in range(d)], axis=1)
    solutions, labels, counts = _search(product, edge_cost, h, d, max_labels)
    lab_node, lab_g, lab_parent, lab_edge = labels
    plans = []
    for lab in solutions:
        edges = []
        node_seq = []
        cur = lab
        while cur >= 0:
            node_seq.append(lab_node[cur])
            if lab_edge[cur] >= 0:
                edges.append(lab_edge[cur])
            cur = lab_parent[cur]
        edges.reverse()
        node_seq.reverse()
        transitions = tuple(int(product.edge_transition[e]) for e in edges)
        mean, cov = path_cost_distribution(ts.beliefs, transitions)
        plans.append(Plan(
            cost=np.asarray(lab_g[lab], dtype=float),
            transitions=transitions,
            states=tuple(ts.states[int(product.ts_state[v])] for v in node_seq),
            actions=tuple(ts.actions[t] for t in transitions),
            targets=tuple(ts.targets[t] for t in transitions),
            dfa_states=tuple(int(product.dfa_state[v]) for v in node_seq),
            expected_cost=mean, cost_cov=cov,
            step_costs=ts.beliefs.mu[list(transitions)].reshape(len(transitions), d),
            step_covs=ts.beliefs.expected_cov()[list(transitions)].reshape(
                len(transitions), d, d),
            step_counts=ts.beliefs.count[list(transitions)].copy(),
            labels=tuple(ts.labels[int(product.ts_state[v])] for v in node_seq)))
    stats.update(counts)
    stats['product_time_s'] = t_product - started
    stats['time_s'] = time.perf_counter() - started
    stats['n_plans'] = len(plans)
    return PlanResult(objectives=ts.objectives, formula=dfa.formula, plans=tuple(plans),
                      satisfiable=True, reason='', optimism=optimism, stats=stats)


def _search(product: Product, edge_cost: np.ndarray, h: np.ndarray, d: int, max_labels: int):
    """NAMOA*dr label-setting search; returns solution label ids, label arrays and counters."""
    n = product.n_nodes
    succ: list[list[tuple[int, int, tuple]]] = [[] for _ in range(n)]
    live = product.live
    ecost = [tuple(row) for row in edge_cost.tolist()]
    for e, (a, b) in enumerate(zip(product.edge_src.tolist(), product.edge_dst.tolist(),
                                   strict=True)):
        if live[b]:
            succ[a].append((e, b, ecost[e]))
    hh = [tuple(row) for row in h.tolist()]
    goal = product.accepting.tolist()
    fronts = [_Front(d - 1) for _ in range(n)]
    sol_front = _Front(d - 1)
    lab_node = [product.initial]
    lab_g = [tuple(0.0 for _ in range(d))]
    lab_parent = [-1]
    lab_edge = [-1]
    heap = [(hh[product.initial], 0)]
    solutions = []
    expanded = 0
    while heap:
        f, lab = heapq.heappop(heap)
        tail_f = f[1:]
        if sol_front.dominates(tail_f):
            continue
        node = lab_node[lab]
        g = lab_g[lab]
        front = fronts[node]
        if front.dominates(g[1:]):
            continue
        front.add(g[1:])
        if goal[node]:
            solutions.append(lab)
            sol_front.add(g[1:])
            continue
        expanded += 1
        for e, m, c in succ[node]:
            g2 = tuple(a + b for a, b in zip(g, c, strict=True))
            if fronts[m].dominates(g2[1:]):
                continue
            f2 = tuple(a + b for a, b in zip(g2, hh[m], strict=True))
            if sol_front.dominates(f2[1:]):
                continue
            lab_node.append(m)
            lab_g.append(g2)
            lab_parent.append(lab)
            lab_edge.append(e)
            heapq.heappush(heap, (f2, len(lab_node) - 1))
            if len(lab_node) > max_labels:
                raise RuntimeError(f'Pareto search exceeded {max_labels} labels')
    counts = {'labels_created': len(lab_node), 'labels_expanded': expanded}
    return solutions, (lab_node, lab_g, lab_parent, lab_edge), counts
