"""Labelled transition systems with vector costs and Normal-Inverse-Wishart cost beliefs.

A transition system (TS) has named states, each with a set of labels (atomic propositions),
a named initial state and deterministic transitions ``from --action--> to``. Every transition
has a cost vector (one entry per objective, e.g. time, energy, risk) that is stochastic in the
world: ``c ~ N(mu, Sigma)``. The planner's knowledge of (mu, Sigma) is a Normal-Inverse-Wishart
belief per transition, updated by conjugate Bayes from realised costs.

Two ways to get one: `load_model` reads the JSON model format of ``embodied-aif plan``
(docs/task_planning.md), `build_pick_place_system` builds the move / pick / place system of a
mobile manipulator from places (cognitive map) and object locations (object beliefs).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

__all__ = [
    'DEFAULT_OBJECTIVES', 'CostBeliefs', 'ModelError', 'TransitionSystem',
    'build_pick_place_system', 'grid_system', 'load_model', 'model_from_dict',
    'path_cost_distribution', 'random_system',
]

DEFAULT_OBJECTIVES = ('time', 'energy', 'risk')

# Default relative standard deviation of a cost when a model gives no covariance.
DEFAULT_REL_STD = 0.1
MIN_STD = 1e-3


class ModelError(ValueError):
    """A transition-system model that is malformed; the message names the file and key."""


@dataclass(frozen=True)
class CostBeliefs:
    """Normal-Inverse-Wishart beliefs over the cost law N(mu, Sigma) of T transitions.

    mu: (T, d) location, kappa: (T,) mean pseudo-count, nu: (T,) degrees of freedom (> d + 1 so
    the expected covariance exists), psi: (T, d, d) scale matrices; count: (T,) number of
    observations (pseudo and real) behind each belief, used by the optimistic bound.
    """

    mu: np.ndarray
    kappa: np.ndarray
    nu: np.ndarray
    psi: np.ndarray
    count: np.ndarray

    def __post_init__(self):
        mu = np.asarray(self.mu, dtype=float)
        if mu.ndim != 2:
            raise ValueError(f'mu must be (T, d), got shape {mu.shape}')
        n, d = mu.shape
        kappa = np.asarray(self.kappa, dtype=float).reshape(-1)
        nu = np.asarray(self.nu, dtype=float).reshape(-1)
        psi = np.asarray(self.psi, dtype=float)
        count = np.asarray(self.count, dtype=float).reshape(-1)
        for name, arr in (('kappa', kappa), ('nu', nu), ('count', count)):
            if arr.shape != (n,):
                raise ValueError(f'{name} must have shape ({n},), got {arr.shape}')
        if psi.shape != (n, d, d):
            raise ValueError(f'psi must have shape ({n}, {d}, {d}), got {psi.shape}')
        if not np.isfinite(mu).all():
            raise ValueError('mu has non-finite entries')
        if (kappa <= 0).any() or not np.isfinite(kappa).all():
            raise ValueError(f'kappa must be positive and finite, got {kappa}')
        if (nu <= d + 1).any():
            raise ValueError(f'nu must exceed d + 1 = {d + 1}, got {nu}')
        if (count <= 0).any():
            raise ValueError(f'count must be positive, got {count}')
        if n and (np.linalg.eigvalsh(psi).min(axis=1) <= 0).any():
            raise ValueError('psi must be symmetric positive definite for every transition')
        for name, arr in (('mu', mu), ('kappa', kappa), ('nu', nu), ('psi', psi),
                          ('count', count)):
            object.__setattr__(self, name, arr)

    @classmethod
    def from_costs(cls, mean, cov=None, count=None) -> CostBeliefs:
        """Beliefs whose mean is `mean` (T, d) and expected covariance `cov` (T, d, d).

        `count` (T,) pseudo-observations (default 1) set kappa = count, nu = count + d + 1 and
        psi = count * cov, so that E[mu] = mean and E[Sigma] = cov. The default covariance is
        diagonal with standard deviation max(10% of the mean, 1e-3).
        """
        mean = np.asarray(mean, dtype=float)
        if mean.ndim != 2:
            raise ValueError(f'mean must be (T, d), got shape {mean.shape}')
        n, d = mean.shape
        if cov is None:
            std = np.maximum(DEFAULT_REL_STD * np.abs(mean), MIN_STD)
            cov = np.einsum('ti,ij->tij', std ** 2, np.eye(d))
        cov = np.asarray(cov, dtype=float)
        count = np.ones(n) if count is None else np.asarray(count, dtype=float).reshape(-1)
        return cls(mu=mean, kappa=count.copy(), nu=count + d + 1, psi=count[:, None, None] * cov,
                   count=count.copy())

    @property
    def n_objectives(self) -> int:
        """Number of cost objectives d."""
        return int(self.mu.shape[1])

    def mean(self) -> np.ndarray:
        """Posterior mean of the cost mean, (T, d)."""
        return self.mu

    def expected_cov(self) -> np.ndarray:
        """Posterior mean of the cost covariance, E[Sigma] = psi / (nu - d - 1), (T, d, d)."""
        d = self.n_objectives
        return self.psi / (self.nu - d - 1)[:, None, None]

    def lower_bound(self, optimism: float) -> np.ndarray:
        """Optimistic costs mu - optimism * sqrt(log k / n), clipped at 0, (T, d).

        k is the total number of observations over all transitions (at least 2) and n the
        transition's own count; optimism = 0 gives the mean costs.
        """
        if not math.isfinite(optimism) or optimism < 0:
            raise ValueError(f'optimism must be a finite number >= 0, got {optimism}')
        if optimism == 0:
            return self.mu.copy()
        k = max(float(self.count.sum()), 2.0)
        bonus = optimism * np.sqrt(math.log(k) / self.count)
        return np.maximum(self.mu - bonus[:, None], 0.0)

    def update(self, index: int, cost) -> CostBeliefs:
        """Return the beliefs after observing one realised cost vector of transition `index`."""
        x = np.asarray(cost, dtype=float).reshape(-1)
        d = self.n_objectives
        if x.shape != (d,) or not np.isfinite(x).all():
            raise ValueError(f'realised cost must be {d} finite numbers, got {cost!r}')
        if not 0 <= index < self.mu.shape[0]:
            raise ValueError(f'transition index {index} outside 0..{self.mu.shape[0] - 1}')
        mu, kappa, nu, psi, count = (a.copy() for a in
                                     (self.mu, self.kappa, self.nu, self.psi, self.count))
        k0, m0 = kappa[index], mu[index]
        diff = x - m0
        mu[index] = (k0 * m0 + x) / (k0 + 1)
        psi[index] = psi[index] + (k0 / (k0 + 1)) * np.outer(diff, diff)
        kappa[index] = k0 + 1
        nu[index] += 1
        count[index] += 1
        return CostBeliefs(mu=mu, kappa=kappa, nu=nu, psi=psi, count=count)


@dataclass(frozen=True)
class TransitionSystem:
    """A deterministic labelled transition system with vector transition costs.

    states: state names; labels: one frozenset of atomic propositions per state; initial: index
    of the initial state; src, dst: (T,) state indices of each transition; actions: (T,) action
    kind ('move', 'pick', 'place' or a model's own name); targets: (T,) what the action acts on;
    beliefs: NIW cost beliefs, one per transition; vocabulary: atoms known to the model that no
    state carries yet (e.g. a region no place lies in): tasks may name them.
    """

    objectives: tuple[str, ...]
    states: tuple[str, ...]
    labels: tuple[frozenset, ...]
    initial: int
    src: np.ndarray
    dst: np.ndarray
    actions: tuple[str, ...]
    targets: tuple[str, ...]
    beliefs: CostBeliefs
    vocabulary: frozenset = frozenset()

    def __post_init__(self):
        n_states = len(self.states)
        if n_states == 0:
            raise ValueError('a transition system needs at least one state')
        if len(set(self.states)) != n_states:
            raise ValueError('state names must be unique')
        if len(self.labels) != n_states:
            raise ValueError(f'labels has {len(self.labels)} entries for {n_states} states')
        if not 0 <= self.initial < n_states:
            raise ValueError(f'initial state index {self.initial} outside 0..{n_states - 1}')
        if len(self.objectives) < 1 or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f'objectives must be unique names, got {self.objectives}')
        src = np.asarray(self.src, dtype=np.int64).reshape(-1)
        dst = np.asarray(self.dst, dtype=np.int64).reshape(-1)
        n = src.shape[0]
        if dst.shape != (n,) or len(self.actions) != n or len(self.targets) != n:
            raise ValueError('src, dst, actions and targets must have one entry per transition')
        if n and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_states):
            raise ValueError('a transition refers to a state index out of range')
        if self.beliefs.mu.shape != (n, len(self.objectives)):
            raise ValueError(f'beliefs must be ({n}, {len(self.objectives)}), got '
                             f'{self.beliefs.mu.shape}')
        if (self.beliefs.mu < 0).any():
            raise ValueError('transition costs must be non-negative')
        object.__setattr__(self, 'src', src)
        object.__setattr__(self, 'dst', dst)
        object.__setattr__(self, 'labels', tuple(frozenset(x) for x in self.labels))

    @property
    def n_transitions(self) -> int:
        """Number of transitions T."""
        return int(self.src.shape[0])

    def all_labels(self) -> frozenset:
        """Every label that holds in some state, and the model's vocabulary."""
        return frozenset(self.vocabulary).union(*self.labels)

    def index(self, state: str) -> int:
        """Index of a named state; ModelError if unknown."""
        try:
            return self.states.index(state)
        except ValueError:
            raise ModelError(f'unknown state {state!r}') from None

    def costs(self, optimism: float = 0.0) -> np.ndarray:
        """Planning costs (T, d): mean costs, or lower confidence bounds when optimism > 0."""
        return self.beliefs.lower_bound(optimism)

    def with_beliefs(self, beliefs: CostBeliefs) -> TransitionSystem:
        """Return a copy with other cost beliefs (same shape)."""
        return replace(self, beliefs=beliefs)

    def restrict(self, objectives: Sequence[str]) -> TransitionSystem:
        """Return a copy that keeps only the named objectives (in the given order).

        The beliefs are the exact marginals: mu and psi lose the dropped rows and columns and
        nu drops by the number of objectives removed (Inverse-Wishart marginalisation).
        """
        names = tuple(objectives)
        unknown = [o for o in names if o not in self.objectives]
        if unknown or not names or len(set(names)) != len(names):
            raise ModelError(f'objectives {list(names)} must be a non-empty list of distinct '
                             f'names among {list(self.objectives)}')
        idx = [self.objectives.index(o) for o in names]
        b = self.beliefs
        dropped = len(self.objectives) - len(idx)
        beliefs = CostBeliefs(mu=b.mu[:, idx], kappa=b.kappa, nu=b.nu - dropped,
                              psi=b.psi[:, idx][:, :, idx], count=b.count)
        return replace(self, objectives=names, beliefs=beliefs)

    def observe(self, index: int, cost) -> TransitionSystem:
        """Return a copy whose belief about transition `index` absorbed one realised cost."""
        return self.with_beliefs(self.beliefs.update(index, cost))


# ------------------------------------------------------------------------------ JSON models

def _fail(source: str, key: str, message: str):
    raise ModelError(f'{source}: {key}: {message}')


def _numbers(value, source: str, key: str, length: int | None = None) -> np.ndarray:
    if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        _fail(source, key, f'expected a list of numbers, got {value!r}')
    arr = np.asarray(value, dtype=float)
    if length is not None and arr.shape != (length,):
        _fail(source, key, f'expected {length} numbers, got {len(value)}')
    if not np.isfinite(arr).all():
        _fail(source, key, f'costs must be finite, got {value!r}')
    return arr


def model_from_dict(data, source: str = '<model>') -> TransitionSystem:
    """Build a TransitionSystem from the JSON model format (see docs/task_planning.md).

    Raises ModelError naming `source` and the offending key for any malformed content.
    """
    if not isinstance(data, Mapping):
        _fail(source, '(top level)', 'expected a JSON object')
    for key in ('objectives', 'initial', 'states', 'transitions'):
        if key not in data:
            _fail(source, key, 'missing required key')
    unknown = set(data) - {'objectives', 'initial', 'states', 'transitions', 'description'}
    if unknown:
        _fail(source, sorted(unknown)[0], 'unknown key')
    objectives = data['objectives']
    if (not isinstance(objectives, list) or not objectives
            or not all(isinstance(o, str) and o for o in objectives)
            or len(set(objectives)) != len(objectives)):
        _fail(source, 'objectives', f'expected a non-empty list of unique names, got '
                                    f'{objectives!r}')
    d = len(objectives)
    states = data['states']
    if not isinstance(states, Mapping) or not states:
        _fail(source, 'states', 'expected a non-empty object of state name -> {"labels": [...]}')
    names = tuple(states)
    labels = []
    for name in names:
        entry = states[name]
        key = f'states.{name}'
        if not isinstance(entry, Mapping):
            _fail(source, key, 'expected an object with "labels"')
        extra = set(entry) - {'labels'}
        if extra:
            _fail(source, f'{key}.{sorted(extra)[0]}', 'unknown key')
        lab = entry.get('labels', [])
        if not isinstance(lab, list) or not all(isinstance(x, str) and x for x in lab):
            _fail(source, f'{key}.labels', f'expected a list of names, got {lab!r}')
        labels.append(frozenset(lab))
    initial = data['initial']
    if initial not in states:
        _fail(source, 'initial', f'unknown state {initial!r}')
    transitions = data['transitions']
    if not isinstance(transitions, list):
        _fail(source, 'transitions', 'expected a list')
    src, dst, actions, means, covs, counts = [], [], [], [], [], []
    index = {name: i for i, name in enumerate(names)}
    for i, tr in enumerate(transitions):
        key = f'transitions[{i}]'
        if not isinstance(tr, Mapping):
            _fail(source, key, 'expected an object')
        extra = set(tr) - {'from', 'to', 'action', 'cost', 'cost_cov', 'count'}
        if extra:
            _fail(source, f'{key}.{sorted(extra)[0]}', 'unknown key')
        for k in ('from', 'to', 'action', 'cost'):
            if k not in tr:
                _fail(source, f'{key}.{k}', 'missing required key')
        for k in ('from', 'to'):
            if tr[k] not in index:
                _fail(source, f'{key}.{k}', f'unknown state {tr[k]!r}')
        if not isinstance(tr['action'], str) or not tr['action']:
            _fail(source, f'{key}.action', f'expected a non-empty name, got {tr["action"]!r}')
        cost = _numbers(tr['cost'], source, f'{key}.cost', d)
        if (cost < 0).any():
            _fail(source, f'{key}.cost', f'costs must be non-negative, got {tr["cost"]!r}')
        if 'cost_cov' in tr:
            rows = tr['cost_cov']
            if not isinstance(rows, list) or len(rows) != d:
                _fail(source, f'{key}.cost_cov', f'expected a {d}x{d} matrix')
            cov = np.stack([_numbers(r, source, f'{key}.cost_cov', d) for r in rows])
            if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
                _fail(source, f'{key}.cost_cov', 'must be symmetric positive definite')
        else:
            std = np.maximum(DEFAULT_REL_STD * cost, MIN_STD)
            cov = np.diag(std ** 2)
        count = tr.get('count', 1)
        if (isinstance(count, bool) or not isinstance(count, int | float)
                or not math.isfinite(count) or count <= 0):
            _fail(source, f'{key}.count', f'expected a positive number, got {count!r}')
        src.append(index[tr['from']])
        dst.append(index[tr['to']])
        actions.append(tr['action'])
        means.append(cost)
        covs.append(cov)
        counts.append(float(count))
    mean = np.asarray(means, dtype=float).reshape(len(means), d)
    cov = np.asarray(covs, dtype=float).reshape(len(covs), d, d)
    beliefs = CostBeliefs.from_costs(mean, cov, np.asarray(counts, dtype=float))
    return TransitionSystem(
        objectives=tuple(objectives), states=names, labels=tuple(labels),
        initial=index[initial], src=np.asarray(src, dtype=np.int64),
        dst=np.asarray(dst, dtype=np.int64), actions=tuple(actions),
        targets=tuple(names[j] for j in dst), beliefs=beliefs)


def load_model(path) -> TransitionSystem:
    """Read a JSON model file; ModelError names the file and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelError(f'{path}: cannot read: {exc.strerror}') from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ModelError(f'{path}: malformed JSON at line {exc.lineno} column {exc.colno}: '
                         f'{exc.msg}') from None
    except ValueError as exc:
        raise ModelError(f'{path}: {exc}') from None
    return model_from_dict(data, str(path))


def _reject_constant(name: str):
    raise ValueError(f'{name} is not a valid cost (NaN and infinities are rejected)')


# -------------------------------------------------------------- mobile-manipulation systems

def build_pick_place_system(
        places: Sequence[str],
        edges: Sequence[tuple[str, str, Sequence[float]]],
        objects: Mapping[str, str],
        start: str,
        *,
        holding: str | None = None,
        pick_cost: Sequence[float] | None = None,
        place_cost: Sequence[float] | None = None,
        objectives: Sequence[str] = DEFAULT_OBJECTIVES,
        capacity_per_place: int | None = None,
        place_labels: Mapping[str, Iterable[str]] | None = None,
        vocabulary: Iterable[str] = (),
) -> TransitionSystem:
    """Build the move / pick / place transition system of a one-armed mobile manipulator.

    places: place names (cognitive-map nodes); edges: undirected (a, b, move cost vector);
    objects: object -> place where it lies (object beliefs); start: the robot's place;
    holding: the object in the gripper, if any. A state is (robot place, held object, object
    locations); its labels are ``at_<place>``, ``holding_<object>`` or ``hand_empty``, and
    ``<object>_on_<place>`` for every object lying somewhere, plus place_labels[place] of the
    robot's place (e.g. ``in_hazard`` for places inside a user's region); vocabulary: further
    atoms tasks may name though no state carries them yet. Pick/place costs
    default to 1 in every objective. Only states reachable from the start are built.
    """
    places = tuple(places)
    objectives = tuple(objectives)
    d = len(objectives)
    place_set = set(places)
    if start not in place_set:
        raise ModelError(f'start: unknown place {start!r}')
    adjacency: dict[str, list[tuple[str, np.ndarray]]] = {p: [] for p in places}
    for i, edge in enumerate(edges):
        a, b, cost = edge
        for end in (a, b):
            if end not in place_set:
                raise ModelError(f'edges[{i}]: unknown place {end!r}')
        cost = np.asarray(cost, dtype=float)
        if cost.shape != (d,) or not np.isfinite(cost).all() or (cost < 0).any():
            raise ModelError(f'edges[{i}]: cost must be {d} finite non-negative numbers')
        adjacency[a].append((b, cost))
        adjacency[b].append((a, cost))
    for obj, where in objects.items():
        if where not in place_set:
            raise ModelError(f'objects.{obj}: unknown place {where!r}')
    if holding is not None and holding in objects:
        raise ModelError(f'holding: object {holding!r} cannot also lie at a place')
    names = tuple(sorted(set(objects) | ({holding} if holding else set())))
    pick = np.ones(d) if pick_cost is None else np.asarray(pick_cost, dtype=float)
    put = np.ones(d) if place_cost is None else np.asarray(place_cost, dtype=float)
    for label, arr in (('pick_cost', pick), ('place_cost', put)):
        if arr.shape != (d,) or not np.isfinite(arr).all() or (arr < 0).any():
            raise ModelError(f'{label}: must be {d} finite non-negative numbers')

    extra = {p: frozenset(labs) for p, labs in (place_labels or {}).items()}
    unknown = sorted(set(extra) - place_set)
    if unknown:
        raise ModelError(f'place_labels: unknown places {unknown}')

    def state_name(state) -> str:
        robot, held, where = state
        lying = ','.join(f'{o}@{p}' for o, p in zip(names, where, strict=True) if p)
        return f'{robot}|{held or "-"}|{lying}'

    def state_labels(state) -> frozenset:
        robot, held, where = state
        labs = {f'at_{robot}', f'holding_{held}' if held else 'hand_empty'}
        labs.update(extra.get(robot, ()))
        labs.update(f'{o}_on_{p}' for o, p in zip(names, where, strict=True) if p)
        return frozenset(labs)

    first = (start, holding, tuple(objects.get(o, '') for o in names))
    index = {first: 0}
    order = [first]
    src, dst, actions, targets, means = [], [], [], [], []
    i = 0
    while i < len(order):
        state = order[i]
        robot, held, where = state
        successors = []
        for nxt, cost in adjacency[robot]:
            successors.append(('move', nxt, (nxt, held, where), cost))
        if held is None:
            for k, o in enumerate(names):
                if where[k] == robot:
                    new_where = where[:k] + ('',) + where[k + 1:]
                    successors.append(('pick', o, (robot, o, new_where), pick))
        else:
            k = names.index(held)
            occupied = sum(1 for p in where if p == robot)
            if capacity_per_place is None or occupied < capacity_per_place:
                new_where = where[:k] + (robot,) + where[k + 1:]
                successors.append(('place', f'{held}@{robot}', (robot, None, new_where), put))
        for action, target, nxt_state, cost in successors:
            if nxt_state not in index:
                index[nxt_state] = len(order)
                order.append(nxt_state)
            src.append(i)
            dst.append(index[nxt_state])
            actions.append(action)
            targets.append(target)
            means.append(cost)
        i += 1
    mean = np.asarray(means, dtype=float).reshape(len(means), d)
    return TransitionSystem(
        objectives=objectives, states=tuple(state_name(s) for s in order),
        labels=tuple(state_labels(s) for s in order), initial=0,
        src=np.asarray(src, dtype=np.int64), dst=np.asarray(dst, dtype=np.int64),
        actions=tuple(actions), targets=tuple(targets),
        beliefs=CostBeliefs.from_costs(mean), vocabulary=frozenset(vocabulary))


def path_cost_distribution(beliefs: CostBeliefs, transitions: Sequence[int]):
    """Predicted total cost N(mean, cov) of executing a sequence of transitions once each.

    The mean sums the posterior means; the covariance sums, per distinct transition used m
    times, m * E[Sigma] (execution noise) + m**2 * E[Sigma] / kappa (uncertainty of the mean).
    """
    d = beliefs.n_objectives
    mean = np.zeros(d)
    cov = np.zeros((d, d))
    if len(transitions) == 0:
        return mean, cov
    ids, counts = np.unique(np.asarray(transitions, dtype=np.int64), return_counts=True)
    expected = beliefs.expected_cov()[ids]
    mean = (counts[:, None] * beliefs.mu[ids]).sum(axis=0)
    scale = counts + counts ** 2 / beliefs.kappa[ids]
    cov = (scale[:, None, None] * expected).sum(axis=0)
    return mean, cov


def random_system(rng: np.random.Generator, n_states: int, atoms, n_objectives: int = 2,
                  out_degree: int = 2, low: float = 0.0, high: float = 3.0,
                  integer: bool = False) -> TransitionSystem:
    """Draw a random transition system.

    Each atom holds in each state with probability 1/3 and in at least one state; every state
    has out_degree random successors; costs are uniform in [low, high] (rounded if integer).
    """
    atoms = tuple(atoms)
    names = tuple(f's{i}' for i in range(n_states))
    sets = [{a for a in atoms if rng.random() < 1 / 3} for _ in names]
    for a in atoms:
        sets[int(rng.integers(n_states))].add(a)
    labels = tuple(frozenset(x) for x in sets)
    src = np.repeat(np.arange(n_states), out_degree)
    dst = rng.integers(0, n_states, size=src.shape[0])
    mean = rng.uniform(low, high, size=(src.shape[0], n_objectives))
    if integer:
        mean = np.round(mean)
    objectives = tuple(f'c{k}' for k in range(n_objectives))
    return TransitionSystem(
        objectives=objectives, states=names, labels=labels, initial=0, src=src, dst=dst,
        actions=tuple(f'a{i}' for i in range(src.shape[0])),
        targets=tuple(names[j] for j in dst), beliefs=CostBeliefs.from_costs(mean))


def grid_system(rng: np.random.Generator, width: int, height: int,
                objectives: Sequence[str] = ('time', 'energy'),
                regions: Mapping[str, int] | None = None,
                hazard_fraction: float = 0.0) -> TransitionSystem:
    """Draw a 4-connected grid world: moves between neighbouring cells ``x_y``.

    The robot starts at 0_0 (label ``home``). regions maps an atom to how many random cells
    carry it (default a, b, c on 2 cells each); a fraction of cells are labelled ``hazard``.
    Each cell has a random terrain vector in [0.1, 1]^d; moving into a cell costs its terrain,
    so objectives conflict where terrains differ.
    """
    if width < 1 or height < 1:
        raise ValueError(f'grid must be at least 1x1, got {width}x{height}')
    objectives = tuple(objectives)
    d = len(objectives)
    regions = {'a': 2, 'b': 2, 'c': 2} if regions is None else dict(regions)
    n = width * height
    names = tuple(f'{x}_{y}' for y in range(height) for x in range(width))
    labels: list[set] = [set() for _ in range(n)]
    labels[0].add('home')
    for atom, count in regions.items():
        for cell in rng.choice(np.arange(1, n), size=min(count, n - 1), replace=False):
            labels[int(cell)].add(atom)
    if hazard_fraction > 0:
        k = int(round(hazard_fraction * (n - 1)))
        for cell in rng.choice(np.arange(1, n), size=k, replace=False):
            labels[int(cell)].add('hazard')
    terrain = rng.uniform(0.1, 1.0, size=(n, d))
    src, dst, actions = [], [], []
    for y in range(height):
        for x in range(width):
            i = y * width + x
            for action, dx, dy in (('east', 1, 0), ('west', -1, 0), ('north', 0, 1),
                                   ('south', 0, -1)):
                if 0 <= x + dx < width and 0 <= y + dy < height:
                    src.append(i)
                    dst.append((y + dy) * width + x + dx)
                    actions.append(action)
    dst_arr = np.asarray(dst, dtype=np.int64)
    return TransitionSystem(
        objectives=objectives, states=names, labels=tuple(frozenset(x) for x in labels),
        initial=0, src=np.asarray(src, dtype=np.int64), dst=dst_arr, actions=tuple(actions),
        targets=tuple(names[j] for j in dst), beliefs=CostBeliefs.from_costs(terrain[dst_arr]))
