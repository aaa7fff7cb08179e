"""LTLf parser, semantics and DFA translation against hand-computed automata and traces."""
import itertools

import numpy as np
import pytest

from embodied_aif.models import ltl

A, B, C, EMPTY = frozenset('a'), frozenset('b'), frozenset('c'), frozenset()
AB = frozenset('ab')


def test_precedence_and_associativity():
    assert str(ltl.parse('a | b & c')) == 'a | (b & c)'
    assert str(ltl.parse('a -> b -> c')) == 'a -> (b -> c)'
    assert str(ltl.parse('a U b U c')) == 'a U (b U c)'
    assert ltl.parse('!a U b') == ltl.parse('(!a) U b')
    assert ltl.parse('F a & G !b') == ltl.parse('(F a) & (G (!b))')
    assert ltl.parse('X F G a') == ltl.parse('X (F (G a))')
    assert ltl.parse('a -> b | c') == ltl.parse('a -> (b | c)')
    assert str(ltl.parse('a & b | c')) == '(a & b) | c'
    assert ltl.atoms_of('F (pick_mug & F place_mug_table) & G !enter_hazard') == (
        'enter_hazard', 'pick_mug', 'place_mug_table')


@pytest.mark.parametrize('text, position, expected', [
    ('F (a', 4, "')'"),
    ('a &', 3, 'an atom'),
    ('a b', 2, 'a binary operator'),
    ('Ab', 0, 'an atom [a-z_]'),
    ('(a))', 3, 'the end of the formula'),
    ('', 0, 'an atom'),
    ('a -> ', 5, 'an atom'),
    ('G # a', 2, 'an atom'),
])
def test_syntax_errors_name_position_and_expectation(text, position, expected):
    with pytest.raises(ltl.LTLSyntaxError) as info:
        ltl.parse(text)
    assert info.value.position == position
    assert expected in str(info.value)
    assert f'position {position}' in str(info.value)
    assert isinstance(info.value, ValueError)


def test_absurd_nesting_is_a_syntax_error():
    with pytest.raises(ltl.LTLSyntaxError, match='nested'):
        ltl.parse('(' * 5000 + 'a' + ')' * 5000)


def test_finite_trace_semantics_by_hand():
    ev = ltl.evaluate
    assert ev('X a', [EMPTY, A]) and not ev('X a', [A])  # strong next needs a position
    assert ev('!X a', [A])  # ... so its negation holds at the last position
    assert ev('G a', [A, AB]) and not ev('G a', [A, B])
    assert ev('F b', [A, A, B]) and not ev('F b', [A, A])
    assert ev('a U b', [A, A, B]) and not ev('a U b', [A, EMPTY, B]) and not ev('a U b', [A])
    assert ev('G F a', [EMPTY, A]) and not ev('G F a', [A, EMPTY])  # last position has a
    assert ev('a -> X b', [EMPTY]) and not ev('a -> X b', [A])
    assert ev('true', [EMPTY]) and not ev('false', [EMPTY])


@pytest.mark.parametrize('formula, n_states, accepting_traces, rejecting_traces', [
    # F a: q0 (waiting, = the initial state) and the accepting sink.
    ('F a', 2, [[A], [EMPTY, A, EMPTY]], [[EMPTY], [B, B]]),
    # G a: initial, "all a so far" (accepting), dead.
    ('G a', 3, [[A], [A, AB]], [[B], [A, B, A]]),
    # X a: initial, after one letter, accepting sink, dead.
    ('X a', 4, [[EMPTY, A], [B, A, B]], [[A], [A, B]]),
    # G F a: accept iff the last letter has a; initial state doubles as "last had no a".
    ('G F a', 2, [[A], [B, A]], [[A, B], [EMPTY]]),
    ('true', 2, [[EMPTY]], []),
    ('false', 1, [], [[A], [EMPTY]]),
    ('F a & G !a', 1, [], [[A], [EMPTY, EMPTY]]),
    # F (a & F b) & G !c: initial/waiting-for-a, waiting-for-b, accepted-but-c-free, dead.
    ('F (a & F b) & G !c', 4, [[A, B], [AB], [EMPTY, A, EMPTY, B, EMPTY]],
     [[B, A], [A, frozenset('bc')], [A, B, C]]),
])
def test_minimal_dfa_sizes_and_runs(formula, n_states, accepting_traces, rejecting_traces):
    dfa = ltl.to_dfa(formula)
    assert dfa.n_states == n_states
    assert not dfa.accepting[dfa.initial]
    for trace in accepting_traces:
        assert dfa.accepts(trace), trace
    for trace in rejecting_traces:
        assert not dfa.accepts(trace), trace


def _distinguishable(dfa, p, q):
    """Search state pairs breadth-first for a word that accepts from exactly one of p, q."""
    seen = {(p, q)}
    frontier = [(p, q)]
    while frontier:
        x, y = frontier.pop()
        if dfa.accepting[x] != dfa.accepting[y]:
            return True
        for letter in range(dfa.delta.shape[1]):
            nxt = (int(dfa.delta[x, letter]), int(dfa.delta[y, letter]))
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def test_random_formulas_match_direct_semantics_and_are_minimal():
    rng = np.random.default_rng(7)
    atoms = ('a', 'b')
    traces = list(ltl.all_traces(atoms, 4))
    for _ in range(60):
        f = ltl.random_formula(rng, atoms, depth=3)
        dfa = ltl.to_dfa(f, atoms=atoms)
        for trace in traces:
            assert dfa.accepts(trace) == ltl.evaluate(f, trace), (str(f), trace)
        # Minimality: every state reachable and every pair of states distinguishable.
        reached = {dfa.initial}
        frontier = [dfa.initial]
        while frontier:
            for nxt in dfa.delta[frontier.pop()]:
                if int(nxt) not in reached:
                    reached.add(int(nxt))
                    frontier.append(int(nxt))
        assert reached == set(range(dfa.n_states))
        # The initial state reads the empty trace as rejecting by convention, so it may only
        # coincide in behaviour on non-empty words; compare the other states pairwise.
        for p, q in itertools.combinations(range(dfa.n_states), 2):
            assert _distinguishable(dfa, p, q), (str(f), p, q)
        # The round trip through the printer parses to the same formula.
        assert ltl.parse(str(f)) == f


def test_dfa_validation_and_liveness():
    dfa = ltl.to_dfa('F a & G !b')
    assert dfa.satisfiable
    dead = dfa.step(dfa.initial, {'b'})
    assert not dfa.is_live(dead)
    assert dfa.letter({'a', 'b', 'zzz'}) == 3
    with pytest.raises(ValueError, match='delta must have shape'):
        ltl.DFA(atoms=('a',), initial=0, delta=np.zeros((2, 3), int), accepting=[0, 1])
    with pytest.raises(ValueError, match='at most'):
        ltl.to_dfa(' & '.join(f'a{i}' for i in range(ltl.MAX_ATOMS + 1)))
