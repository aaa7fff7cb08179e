"""LTLf task formulas: parser, finite-trace semantics and translation to a minimal DFA.

Grammar (lowest precedence first; binary operators ``->`` and ``U`` associate to the right,
``|`` and ``&`` to the left)::

    formula  := implies
    implies  := or ( '->' implies )?
    or       := and ( '|' and )*
    and      := until ( '&' until )*
    until    := unary ( 'U' until )?
    unary    := ( '!' | 'X' | 'F' | 'G' ) unary | primary
    primary  := 'true' | 'false' | ATOM | '(' formula ')'
    ATOM     := [a-z_][a-z0-9_]*

Semantics over a finite, non-empty trace ``w = w_0 ... w_{n-1}`` of label sets (one per trace
position; for a plan, the labels of every visited state including the initial one): an atom
holds at i when it is in ``w_i``; ``X f`` (strong next) needs a position i+1 < n where f holds;
``F f``: f holds at some j >= i; ``G f``: f holds at every j >= i up to the end;
``f U g``: g holds at some j >= i and f at every k in [i, j).

The DFA reads one label set per trace position starting from its initial state (which stands
for the empty trace); it accepts a trace iff the state reached after its last letter is
accepting. The construction progresses the formula in negation normal form through the letters,
keeps each residual obligation as a monotone DNF (canonical antichain of cubes), and minimises
the result by partition refinement.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    'DFA', 'Formula', 'LTLSyntaxError', 'atoms_of', 'evaluate', 'parse', 'to_dfa',
    'MAX_ATOMS', 'all_traces', 'random_formula',
]

# Letters are subsets of the formula's atoms, so the alphabet has 2**len(atoms) letters.
MAX_ATOMS = 16

_ATOM_RE = re.compile(r'[a-z_][a-z0-9_]*')
_KEYWORDS = {'true', 'false'}
_UNARY = {'!', 'X', 'F', 'G'}


class LTLSyntaxError(ValueError):
    """A formula that does not parse; the message names the position and what was expected."""

    def __init__(self, text: str, position: int, expected: str, found: str):
        self.text = text
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(
            f'syntax error at position {position} of {text!r}: expected {expected}, '
            f'found {found}')


@dataclass(frozen=True)
class Formula:
    """An LTLf syntax tree node.

    op is 'atom', 'true', 'false', '!', '&', '|', '->', 'X', 'WX' (weak next, produced by
    negation normal form), 'F', 'G', 'U' or 'R' (release); name is the atom's name.
    """

    op: str
    args: tuple[Formula, ...] = ()
    name: str = ''

    def __str__(self) -> str:
        if self.op == 'atom':
            return self.name
        if self.op in ('true', 'false'):
            return self.op
        if len(self.args) == 1:
            return f'{self.op} {_wrap(self.args[0])}'
        return f'{_wrap(self.args[0])} {self.op} {_wrap(self.args[1])}'


def _wrap(f: Formula) -> str:
    text = str(f)
    return text if f.op in ('atom', 'true', 'false') or len(f.args) == 1 else f'({text})'


TRUE = Formula('true')
FALSE = Formula('false')


# ----------------------------------------------------------------------------------- parsing

def _tokenize(text: str) -> list[tuple[str, int]]:
    tokens = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if text.startswith('->', i):
            tokens.append(('->', i))
            i += 2
            continue
        if ch in '!&|()' or ch in 'XFGU':
            tokens.append((ch, i))
            i += 1
            continue
        match = _ATOM_RE.match(text, i)
        if match:
            tokens.append((match.group(), i))
            i = match.end()
            continue
        raise LTLSyntaxError(text, i, 'an atom [a-z_][a-z0-9_]*, an operator or a parenthesis',
                             f'{ch!r}')
    tokens.append(('<end>', len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][0]

    def fail(self, expected: str):
        token, pos = self.tokens[self.i]
        found = 'the end of the formula' if token == '<end>' else repr(token)
        raise LTLSyntaxError(self.text, pos, expected, found)

    def take(self) -> str:
        token = self.tokens[self.i][0]
        self.i += 1
        return token

    def formula(self) -> Formula:
        left = self.disjunction()
        if self.peek() == '->':
            self.take()
            return Formula('->', (left, self.formula()))
        return left

    def disjunction(self) -> Formula:
        left = self.conjunction()
        while self.peek() == '|':
            self.take()
            left = Formula('|', (left, self.conjunction()))
        return left

    def conjunction(self) -> Formula:
        left = self.until()
        while self.peek() == '&':
            self.take()
            left = Formula('&', (left, self.until()))
        return left

    def until(self) -> Formula:
        left = self.unary()
        if self.peek() == 'U':
            self.take()
            return Formula('U', (left, self.until()))
        return left

    def unary(self) -> Formula:
        if self.peek() in _UNARY:
            return Formula(self.take(), (self.unary(),))
        return self.primary()

    def primary(self) -> Formula:
        token = self.peek()
        if token == '(':
            self.take()
            inner = self.formula()
            if self.peek() != ')':
                self.fail("')' or a binary operator (&, |, ->, U)")
            self.take()
            return inner
        if token in _KEYWORDS:
            self.take()
            return Formula(token)
        if token != '<end>' and _ATOM_RE.fullmatch(token):
            self.take()
            return Formula('atom', name=token)
        self.fail("an atom, 'true', 'false', '(' or a unary operator (!, X, F, G)")
        raise AssertionError('unreachable')  # pragma: no cover


def parse(text: str) -> Formula:
    """Parse an LTLf formula; raise LTLSyntaxError naming the position and what was expected."""
    if not isinstance(text, str):
        raise TypeError(f'formula must be a string, got {type(text).__name__}')
    parser = _Parser(text)
    try:
        result = parser.formula()
    except RecursionError:
        raise LTLSyntaxError(text, 0, 'a formula nested at most a few hundred levels deep',
                             'deeper nesting') from None
    if parser.peek() != '<end>':
        parser.fail("a binary operator (&, |, ->, U) or the end of the formula")
    return result


def atoms_of(formula: Formula | str) -> tuple[str, ...]:
    """Return the sorted atomic propositions a formula mentions."""
    f = parse(formula) if isinstance(formula, str) else formula
    found: set[str] = set()
    stack = [f]
    while stack:
        node = stack.pop()
        if node.op == 'atom':
            found.add(node.name)
        stack.extend(node.args)
    return tuple(sorted(found))


# --------------------------------------------------------------------------------- semantics

def evaluate(formula: Formula | str, trace) -> bool:
    """Decide whether a finite non-empty trace (a sequence of label sets) satisfies a formula.

    A direct recursive evaluation of the finite-trace semantics, independent of the DFA.
    """
    f = parse(formula) if isinstance(formula, str) else formula
    trace = [frozenset(step) for step in trace]
    if not trace:
        raise ValueError('trace must have at least one position')
    n = len(trace)
    cache: dict[tuple[int, int], bool] = {}

    def holds(g: Formula, i: int) -> bool:
        key = (id(g), i)
        if key in cache:
            return cache[key]
        op, args = g.op, g.args
        if op == 'true':
            value = True
        elif op == 'false':
            value = False
        elif op == 'atom':
            value = g.name in trace[i]
        elif op == '!':
            value = not holds(args[0], i)
        elif op == '&':
            value = holds(args[0], i) and holds(args[1], i)
        elif op == '|':
            value = holds(args[0], i) or holds(args[1], i)
        elif op == '->':
            value = (not holds(args[0], i)) or holds(args[1], i)
        elif op == 'X':
            value = i + 1 < n and holds(args[0], i + 1)
        elif op == 'WX':
            value = i + 1 >= n or holds(args[0], i + 1)
        elif op == 'F':
            value = any(holds(args[0], j) for j in range(i, n))
        elif op == 'G':
            value = all(holds(args[0], j) for j in range(i, n))
        elif op == 'U':
            value = any(holds(args[1], j) and all(holds(args[0], k) for k in range(i, j))
                        for j in range(i, n))
        elif op == 'R':
            value = all(holds(args[1], j) or any(holds(args[0], k) for k in range(i, j))
                        for j in range(i, n))
        else:
            raise ValueError(f'unknown operator {op!r}')
        cache[key] = value
        return value

    return holds(f, 0)


# ---------------------------------------------------------------------- DFA by progression

def _nnf(f: Formula, negate: bool = False) -> Formula:
    """Negation normal form: negations only on atoms; uses WX and R as duals of X and U."""
    op, args = f.op, f.args
    if op == 'true':
        return FALSE if negate else TRUE
    if op == 'false':
        return TRUE if negate else FALSE
    if op == 'atom':
        return Formula('!', (f,)) if negate else f
    if op == '!':
        return _nnf(args[0], not negate)
    if op == '->':
        return _nnf(Formula('|', (Formula('!', (args[0],)), args[1])), negate)
    if op in ('&', '|'):
        new_op = {'&': '|', '|': '&'}[op] if negate else op
        return Formula(new_op, (_nnf(args[0], negate), _nnf(args[1], negate)))
    if op in ('X', 'WX'):
        new_op = {'X': 'WX', 'WX': 'X'}[op] if negate else op
        return Formula(new_op, (_nnf(args[0], negate),))
    if op in ('F', 'G'):
        new_op = {'F': 'G', 'G': 'F'}[op] if negate else op
        return Formula(new_op, (_nnf(args[0], negate),))
    if op in ('U', 'R'):
        new_op = {'U': 'R', 'R': 'U'}[op] if negate else op
        return Formula(new_op, (_nnf(args[0], negate), _nnf(args[1], negate)))
    raise ValueError(f'unknown operator {op!r}')


# A residual is a monotone Boolean function of obligations, kept as a minimal DNF: a frozenset
# of cubes, each cube a frozenset of obligations. An obligation (strong, g) means "the rest of
# the trace is non-empty and satisfies g"; (weak, g) means "the rest is empty or satisfies g".
_R_TRUE = frozenset({frozenset()})
_R_FALSE: frozenset = frozenset()


def _minimise(cubes) -> frozenset:
    cubes = sorted(set(cubes), key=len)
    kept: list[frozenset] = []
    for cube in cubes:
        if not any(k <= cube for k in kept):
            kept.append(cube)
    return frozenset(kept)


def _r_or(a: frozenset, b: frozenset) -> frozenset:
    return _minimise(a | b)


def _r_and(a: frozenset, b: frozenset) -> frozenset:
    return _minimise(x | y for x in a for y in b)


def _r_atom(obligation) -> frozenset:
    return frozenset({frozenset({obligation})})


def _progress(g: Formula, letter: frozenset, memo: dict) -> frozenset:
    """Residual of NNF formula g after reading one letter (the current position exists)."""
    key = (g, letter)
    if key in memo:
        return memo[key]
    op, args = g.op, g.args
    if op == 'true':
        r = _R_TRUE
    elif op == 'false':
        r = _R_FALSE
    elif op == 'atom':
        r = _R_TRUE if g.name in letter else _R_FALSE
    elif op == '!':  # NNF: only on atoms
        r = _R_FALSE if args[0].name in letter else _R_TRUE
    elif op == '&':
        r = _r_and(_progress(args[0], letter, memo), _progress(args[1], letter, memo))
    elif op == '|':
        r = _r_or(_progress(args[0], letter, memo), _progress(args[1], letter, memo))
    elif op == 'X':
        r = _r_atom(('S', args[0]))
    elif op == 'WX':
        r = _r_atom(('W', args[0]))
    elif op == 'F':
        r = _r_or(_progress(args[0], letter, memo), _r_atom(('S', g)))
    elif op == 'G':
        r = _r_and(_progress(args[0], letter, memo), _r_atom(('W', g)))
    elif op == 'U':
        r = _r_or(_progress(args[1], letter, memo),
                  _r_and(_progress(args[0], letter, memo), _r_atom(('S', g))))
    elif op == 'R':
        r = _r_and(_progress(args[1], letter, memo),
                   _r_or(_progress(args[0], letter, memo), _r_atom(('W', g))))
    else:
        raise ValueError(f'unknown operator {op!r}')
    memo[key] = r
    return r


def _progress_residual(residual: frozenset, letter: frozenset, memo: dict) -> frozenset:
    result = _R_FALSE
    for cube in residual:
        term = _R_TRUE
        for _kind, g in cube:
            term = _r_and(term, _progress(g, letter, memo))
            if not term:
                break
        result = _r_or(result, term)
        if result == _R_TRUE:
            break
    return result


def _accepts_empty(residual: frozenset) -> bool:
    return any(all(kind == 'W' for kind, _ in cube) for cube in residual)


@dataclass(frozen=True)
class DFA:
    """A complete deterministic automaton over letters = subsets of `atoms`.

    A letter is encoded as a bit mask: bit k set iff atoms[k] holds. `delta[q, mask]` is the
    successor state; state `initial` stands for the empty trace and is never accepting.
    """

    atoms: tuple[str, ...]
    initial: int
    delta: np.ndarray
    accepting: np.ndarray
    formula: str = ''
    _live: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        delta = np.asarray(self.delta)
        accepting = np.asarray(self.accepting, dtype=bool)
        n = accepting.shape[0] if accepting.ndim == 1 else -1
        if accepting.ndim != 1 or n < 1:
            raise ValueError(f'accepting must be a non-empty 1-D array, got shape '
                             f'{accepting.shape}')
        if delta.shape != (n, 2 ** len(self.atoms)):
            raise ValueError(f'delta must have shape ({n}, {2 ** len(self.atoms)}) for '
                             f'{len(self.atoms)} atoms, got {delta.shape}')
        if delta.size and (delta.min() < 0 or delta.max() >= n):
            raise ValueError('delta has a successor outside 0..n_states-1')
        if not 0 <= self.initial < n:
            raise ValueError(f'initial state {self.initial} outside 0..{n - 1}')
        object.__setattr__(self, 'delta', delta.astype(np.int64))
        object.__setattr__(self, 'accepting', accepting)
        object.__setattr__(self, '_live', _co_reachable(delta, accepting))

    @property
    def n_states(self) -> int:
        """Number of states."""
        return int(self.accepting.shape[0])

    def letter(self, labels) -> int:
        """Bit mask of a label set (labels that are not atoms of the formula are ignored)."""
        labels = set(labels)
        return sum(1 << k for k, atom in enumerate(self.atoms) if atom in labels)

    def step(self, state: int, labels) -> int:
        """Successor of a state after reading one label set."""
        return int(self.delta[state, self.letter(labels)])

    def run(self, trace) -> int:
        """State reached from the initial state after reading a trace of label sets."""
        q = self.initial
        for labels in trace:
            q = self.step(q, labels)
        return q

    def accepts(self, trace) -> bool:
        """Whether a finite trace of label sets is accepted (the empty trace never is)."""
        return bool(self.accepting[self.run(trace)])

    def is_live(self, state: int) -> bool:
        """Whether some continuation from this state reaches an accepting state."""
        return bool(self._live[state])

    @property
    def satisfiable(self) -> bool:
        """Whether some finite non-empty trace satisfies the formula."""
        return bool(self._live[self.initial])


def _co_reachable(delta: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    live = accepting.copy()
    while True:
        new = live | live[delta].any(axis=1)
        if (new == live).all():
            return live
        live = new


def _minimise_dfa(delta: np.ndarray, accepting: np.ndarray, initial: int):
    """Moore partition refinement; return (delta, accepting, initial) of the minimal DFA."""
    block = accepting.astype(np.int64)
    n_blocks = len(np.unique(block))
    while True:
        signature = np.concatenate([block[:, None], block[delta]], axis=1)
        _, new_block = np.unique(signature, axis=0, return_inverse=True)
        new_block = new_block.reshape(-1)
        new_n = int(new_block.max()) + 1
        block = new_block
        if new_n == n_blocks:
            break
        n_blocks = new_n
    # Renumber blocks in breadth-first order from the initial state for a stable layout.
    order = {int(block[initial]): 0}
    queue = [int(block[initial])]
    representative = {int(b): int(np.flatnonzero(block == b)[0]) for b in range(n_blocks)}
    while queue:
        b = queue.pop(0)
        for succ in block[delta[representative[b]]]:
            if int(succ) not in order:
                order[int(succ)] = len(order)
                queue.append(int(succ))
    new_delta = np.zeros((len(order), delta.shape[1]), dtype=np.int64)
    new_accepting = np.zeros(len(order), dtype=bool)
    for b, idx in order.items():
        rep = representative[b]
        new_delta[idx] = [order[int(block[s])] for s in delta[rep]]
        new_accepting[idx] = accepting[rep]
    return new_delta, new_accepting, 0


def to_dfa(formula: Formula | str, atoms=None) -> DFA:
    """Translate an LTLf formula into its minimal complete DFA over subsets of its atoms.

    `atoms` may add propositions beyond those of the formula (they never change acceptance);
    by default the alphabet is exactly the formula's atoms.
    """
    text = formula if isinstance(formula, str) else str(formula)
    f = parse(formula) if isinstance(formula, str) else formula
    names = set(atoms_of(f)) | set(atoms or ())
    names = tuple(sorted(names))
    if len(names) > MAX_ATOMS:
        raise ValueError(f'formula uses {len(names)} atoms; at most {MAX_ATOMS} are supported')
    letters = [frozenset(a for k, a in enumerate(names) if mask >> k & 1)
               for mask in range(2 ** len(names))]
    start = _r_atom(('S', _nnf(f)))
    index = {start: 0}
    residuals = [start]
    rows: list[list[int]] = []
    memo: dict = {}
    i = 0
    while i < len(residuals):
        row = []
        for letter in letters:
            nxt = _progress_residual(residuals[i], letter, memo)
            if nxt not in index:
                index[nxt] = len(residuals)
                residuals.append(nxt)
            row.append(index[nxt])
        rows.append(row)
        i += 1
    delta = np.array(rows, dtype=np.int64).reshape(len(residuals), len(letters))
    accepting = np.array([_accepts_empty(r) for r in residuals], dtype=bool)
    accepting[0] = False  # the empty trace
    delta, accepting, initial = _minimise_dfa(delta, accepting, 0)
    return DFA(atoms=names, initial=initial, delta=delta, accepting=accepting, formula=text)


def all_traces(atoms, max_len: int):
    """Yield every trace (tuple of label frozensets) of length 1..max_len over the atoms."""
    letters = [frozenset(c) for r in range(len(atoms) + 1)
               for c in itertools.combinations(atoms, r)]
    for n in range(1, max_len + 1):
        yield from itertools.product(letters, repeat=n)


def random_formula(rng: np.random.Generator, atoms, depth: int = 3) -> Formula:
    """Draw a random formula over the atoms with at most `depth` nested operators."""
    atoms = tuple(atoms)
    if not atoms:
        raise ValueError('random_formula needs at least one atom')
    if depth <= 0 or rng.random() < 0.2:
        return Formula('atom', name=atoms[int(rng.integers(len(atoms)))])
    op = ('!', 'X', 'F', 'G', '&', '|', '->', 'U')[int(rng.integers(8))]
    if op in _UNARY:
        return Formula(op, (random_formula(rng, atoms, depth - 1),))
    return Formula(op, (random_formula(rng, atoms, depth - 1),
                        random_formula(rng, atoms, depth - 1)))
