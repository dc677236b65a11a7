"""Log-sum-exp reductions of Sinkhorn: array-API references and their dispatch.

``lse_rows(xp, C, h, reg)`` returns ``reg * log sum_j exp((h_j - C_ij) / reg)`` for each
row ``i`` of an explicit cost matrix; ``lse_points(xp, X, Y, h, reg, power)`` does the
same with ``C_ij = ||x_i - y_j||^power`` computed on the fly, in blocks of rows, so
the cost matrix is never stored. Results are float64.
"""

from __future__ import annotations

import numpy as np

from .._array_api import Dispatch, move_to

__all__ = ["lse_rows_op", "lse_points_op", "pairwise_cost", "ROW_BLOCK"]

# Rows per block of the on-the-fly references (block x m floats at a time).
ROW_BLOCK = 256


def pairwise_cost(xp, X, Y, power):
    """||x_i - y_j||^power for a block of rows (float64)."""
    X = xp.astype(X, xp.float64)
    Y = xp.astype(Y, xp.float64)
    sq = (xp.sum(X * X, axis=1)[:, None] + xp.sum(Y * Y, axis=1)[None, :]
          - 2.0 * xp.matmul(X, Y.T))
    sq = xp.clip(sq, 0.0, None)
    return sq if power == 2 else xp.sqrt(sq) if power == 1 else xp.sqrt(sq) ** power


def _lse_block(xp, C, h, reg):
    Z = (xp.reshape(h, (1, -1)) - C) / reg
    mx = xp.max(Z, axis=1, keepdims=True)
    mx = xp.where(xp.isfinite(mx), mx, 0.0)
    return reg * (mx[:, 0] + xp.log(xp.sum(xp.exp(Z - mx), axis=1)))


def _lse_rows_reference(xp, C, h, reg):
    """reg * log sum_j exp((h_j - C_ij) / reg) for each row of C."""
    return _lse_block(xp, xp.astype(C, xp.float64), h, reg)


def _lse_points_reference(xp, X, Y, h, reg, power):
    """As ``lse_rows`` with C_ij = ||x_i - y_j||^power, in blocks of rows."""
    n = X.shape[0]
    out = []
    for s in range(0, n, ROW_BLOCK):
        e = min(s + ROW_BLOCK, n)  # array-API slices must stay in bounds
        out.append(_lse_block(xp, pairwise_cost(xp, X[s:e, :], Y, power), h, reg))
    return out[0] if len(out) == 1 else xp.concat(out)


def _example_potential(rng, m, zero_weights=0):
    """``g + reg log b`` as the Sinkhorn loops pass it; ``zero_weights`` points of
    weight zero give -inf."""
    h = rng.normal(size=m)
    h[rng.choice(m, size=zero_weights, replace=False)] = -np.inf
    return h


def _lse_rows_examples(xp, rng):
    """Row and column reductions (the cost and its transposed copy) of a squared
    Euclidean cost at a loose and a sharp ``reg``, and points of weight zero."""
    out = []
    for n, m, reg, zero in ((30, 25, 1.0, 0), (30, 25, 0.01, 0), (20, 35, 0.1, 3)):
        X, Y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 0.5
        C = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(axis=2)
        out.append(((move_to(C, xp), move_to(_example_potential(rng, m, zero), xp), reg),
                    {}))
        CT = np.ascontiguousarray(C.T)
        out.append(((move_to(CT, xp), move_to(_example_potential(rng, n, zero), xp), reg),
                    {}))
    return out


def _lse_points_examples(xp, rng):
    """Costs made on the fly for both metrics (power 2 and 1), more rows than one
    reference block, a cloud against itself (the debiasing terms of the Sinkhorn
    divergence), float32 clouds (these never get a stored cost), weights of zero."""
    out = []
    for n, m, power, reg, dtype, zero in ((300, 40, 2.0, 0.5, np.float64, 0),
                                          (40, 300, 1.0, 0.1, np.float64, 2),
                                          (50, 45, 2.0, 0.05, np.float32, 0),
                                          (60, 60, 1.0, 1.0, np.float32, 1)):
        X = rng.normal(size=(n, 3)).astype(dtype)
        Y = (rng.normal(size=(m, 3)) + 0.3).astype(dtype)
        h = move_to(_example_potential(rng, m, zero), xp)
        out.append(((move_to(X, xp), move_to(Y, xp), h, reg, power), {}))
    for power in (2.0, 1.0):
        Z = move_to(rng.normal(size=(70, 2)), xp)
        out.append(((Z, Z, move_to(_example_potential(rng, 70), xp), 0.2, power), {}))
    return out


lse_rows_op = Dispatch(
    _lse_rows_reference,
    numba="sketchlearn.transport._numba_sinkhorn:lse_rows",
    cupy="sketchlearn.transport._cupy_sinkhorn:lse_rows",
    examples=_lse_rows_examples,
)
lse_points_op = Dispatch(
    _lse_points_reference,
    numba="sketchlearn.transport._numba_sinkhorn:lse_points",
    cupy="sketchlearn.transport._cupy_sinkhorn:lse_points",
    examples=_lse_points_examples,
)
