"""Grid-world POMDPs for tests and benchmarks of the core (location factor, 5 moves).

Actions: 0 stay, 1 north (row - 1), 2 south (row + 1), 3 west (col - 1), 4 east (col + 1);
moves into the border leave the agent in place. ``slip`` is the chance a move fails (stays).
Observations are cell indices; with ``obs_noise`` > 0 the cell is reported correctly with
probability 1 - obs_noise and otherwise as one of its 4-neighbours (uniformly).
"""
# ruff: noqa: N802, N803, N806, N815 - A, B, C, D, E, pA, pB are the standard POMDP names
from __future__ import annotations

import numpy as np

MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def _cell(rows: int, cols: int, r: int, c: int) -> int:
    return r * cols + c


def grid_transitions(rows: int, cols: int, slip: float = 0.0) -> np.ndarray:
    """Return B with shape (N, N, 5) for a rows x cols grid (N = rows * cols)."""
    if rows < 1 or cols < 1 or not 0.0 <= slip < 1.0:
        raise ValueError(f'need rows, cols >= 1 and 0 <= slip < 1, got {rows}, {cols}, {slip}')
    n = rows * cols
    B = np.zeros((n, n, len(MOVES)))
    for r in range(rows):
        for c in range(cols):
            s = _cell(rows, cols, r, c)
            for u, (dr, dc) in enumerate(MOVES):
                rr, cc = r + dr, c + dc
                t = _cell(rows, cols, rr, cc) if 0 <= rr < rows and 0 <= cc < cols else s
                B[t, s, u] += 1.0 - (slip if u else 0.0)
                B[s, s, u] += slip if u else 0.0
    return B


def grid_likelihood(rows: int, cols: int, obs_noise: float = 0.0) -> np.ndarray:
    """Return A with shape (N, N): identity when obs_noise = 0, else confusable with neighbours."""
    if not 0.0 <= obs_noise < 1.0:
        raise ValueError(f'obs_noise must be in [0, 1), got {obs_noise}')
    n = rows * cols
    A = np.zeros((n, n))
    for r in range(rows):
        for c in range(cols):
            s = _cell(rows, cols, r, c)
            nbrs = [_cell(rows, cols, r + dr, c + dc) for dr, dc in MOVES[1:]
                    if 0 <= r + dr < rows and 0 <= c + dc < cols]
            if obs_noise == 0.0 or not nbrs:
                A[s, s] = 1.0
                continue
            A[s, s] = 1.0 - obs_noise
            for o in nbrs:
                A[o, s] += obs_noise / len(nbrs)
    return A


def grid_model_arrays(rows: int, cols: int, obs_noise: float = 0.0, slip: float = 0.0,
                      goal: int | None = None, preference: float = 3.0) -> dict:
    """Return the A, B, C, D arrays (lists, one modality / factor) of a grid world.

    C prefers observing ``goal`` (default: the last cell) by ``preference`` nats; D is flat.
    """
    n = rows * cols
    goal = n - 1 if goal is None else int(goal)
    if not 0 <= goal < n:
        raise ValueError(f'goal {goal} is outside 0..{n - 1}')
    C = np.zeros(n)
    C[goal] = preference
    return {'A': [grid_likelihood(rows, cols, obs_noise)],
            'B': [grid_transitions(rows, cols, slip)],
            'C': [C], 'D': [np.full(n, 1.0 / n)]}


def sample_observation(A: np.ndarray, state: int, rng: np.random.Generator) -> int:
    """Return an observation index drawn from the column ``state`` of A."""
    return int(rng.choice(A.shape[0], p=A[:, state]))


def sample_next_state(B: np.ndarray, state: int, action: int, rng: np.random.Generator) -> int:
    """Return the next state drawn from B[:, state, action]."""
    return int(rng.choice(B.shape[0], p=B[:, state, action]))


__all__ = ['MOVES', 'grid_likelihood', 'grid_model_arrays', 'grid_transitions',
           'sample_next_state', 'sample_observation']
