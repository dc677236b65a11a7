"""Log-sum-exp reductions of Sinkhorn: array-API references and their dispatch.

``lse_rows(xp, C, h, reg)`` returns ``reg * log sum_j exp((h_j - C_ij) / reg)`` for each
row ``i`` of an explicit cost matrix; ``lse_points(xp, X, Y, h, reg, power)`` does the
same with ``C_ij = ||x_i - y_j||^power`` computed on the fly, in blocks of rows, so
the cost matrix is never stored. Results are float64.
"""

from __future__ import annotations

from .._array_api import Dispatch

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


lse_rows_op = Dispatch(
    _lse_rows_reference,
    numba="sketchlearn.transport._numba_sinkhorn:lse_rows",
    cupy="sketchlearn.transport._cupy_sinkhorn:lse_rows",
)
lse_points_op = Dispatch(
    _lse_points_reference,
    numba="sketchlearn.transport._numba_sinkhorn:lse_points",
    cupy="sketchlearn.transport._cupy_sinkhorn:lse_points",
)
