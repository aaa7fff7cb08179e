"""Numerical helpers of the discrete active-inference core: stable logs, softmax, Dirichlet terms.

Conventions shared by the whole core:

- categorical distributions live in the leading axis (``A[o, s...]``, ``B[s', s, u]``);
- ``EPS`` is added inside every log of a probability, ``SUPPORT`` is the probability below which
  a hidden state is treated as outside the support of a predictive belief when the expected
  information gain is computed (the same constants as SPM / pymdp, so numbers can be compared).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

EPS = 1e-16
SUPPORT = float(np.exp(-16.0))


def log_stable(x: np.ndarray) -> np.ndarray:
    """Return log(x + EPS): the logarithm of probabilities that may contain zeros."""
    return np.log(np.asarray(x, dtype=float) + EPS)


def softmax(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Return the normalised exponential of ``x`` along ``axis`` (max-shifted for stability)."""
    x = np.asarray(x, dtype=float)
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def normalise(counts: np.ndarray) -> np.ndarray:
    """Return ``counts`` divided by their sum over the leading axis (Dirichlet expectation)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=0, keepdims=True)
    if np.any(total <= 0.0):
        raise ValueError('normalise: a column of the counts sums to zero or less; '
                         f'column sums range {total.min()}..{total.max()}')
    return counts / total


def entropy(p: np.ndarray, axis: int = 0) -> np.ndarray:
    """Return the Shannon entropy (nats) of the categorical distributions along ``axis``."""
    p = np.asarray(p, dtype=float)
    return -np.sum(p * log_stable(p), axis=axis)


def kl_categorical(p: np.ndarray, q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Return KL[p || q] (nats) between categorical distributions along ``axis``; always >= 0."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    return np.sum(p * (log_stable(p) - log_stable(q)), axis=axis)


def dirichlet_novelty(counts: np.ndarray) -> np.ndarray:
    """Return the per-entry novelty weights 1/a - 1/a0 of Dirichlet counts ``a`` (>= 0).

    ``a0`` is the column total over the leading axis. The expected information gain about the
    parameters when an outcome is seen in a column is the expected value of these weights under
    the predicted outcome distribution: rarely seen entries (small counts) are worth exploring.
    Entries with zero count are structural zeros and get weight 0.
    """
    a = np.asarray(counts, dtype=float) + EPS
    a0 = a.sum(axis=0, keepdims=True)
    w = 1.0 / a - 1.0 / a0
    return np.where(np.asarray(counts) > 0, w, 0.0)


def as_operator(matrix: np.ndarray, sparse_threshold: float):
    """Return ``matrix`` (2-D) as a CSR array when its fill fraction is <= threshold, else dense."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f'as_operator: need a 2-D matrix, got shape {matrix.shape}')
    rows, cols = np.nonzero(matrix)
    if rows.size <= sparse_threshold * matrix.size and matrix.size >= 64:
        return sp.csr_array((matrix[rows, cols], (rows, cols)), shape=matrix.shape)
    return np.ascontiguousarray(matrix)


def column_sums_of(matrix: np.ndarray, fn) -> np.ndarray:
    """Return sum over rows of fn(x) for the non-zero entries x of each column (fn(0) = 0)."""
    matrix = np.asarray(matrix, dtype=float)
    rows, cols = np.nonzero(matrix)
    vals = matrix[rows, cols]
    return np.bincount(cols, weights=fn(vals), minlength=matrix.shape[1])


def rows_times_transpose(rows: np.ndarray, operator) -> np.ndarray:
    """Return ``rows @ operator.T`` for a batch of row vectors and a dense or sparse matrix."""
    if sp.issparse(operator):
        return np.asarray((operator @ rows.T).T)
    return rows @ operator.T
