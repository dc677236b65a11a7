"""Balanced Sinkhorn in the log domain over the epsilon stages (any ``reg > 0``; the cost
stored or recomputed on the fly by the log-sum-exp operations)."""

from __future__ import annotations

import math

from .._array_api import transposed_copy
from ._sinkhorn_ops import lse_points_op, lse_rows_op

__all__ = ["lse_pair", "log_loop", "STAGE_TOL", "STAGE_MAX_ITER"]

# Epsilon-scaling: the marginal error that ends an intermediate stage, and its cap.
STAGE_TOL = 1e-2
STAGE_MAX_ITER = 200


def lse_pair(xp, kind, A, B, power):
    """``(row_lse, col_lse)``: ``h -> eps log sum_j exp((h_j - C_ij) / eps)`` per row of
    the cost, and the same per column, on the stored cost or on the fly."""
    if kind == "matrix":
        AT = transposed_copy(xp, A)  # the column reductions read rows of the transpose
        return (lambda h, eps: lse_rows_op(xp, A, h, eps),
                lambda h, eps: lse_rows_op(xp, AT, h, eps))
    return (lambda h, eps: lse_points_op(xp, A, B, h, eps, power),
            lambda h, eps: lse_points_op(xp, B, A, h, eps, power))


def log_loop(xp, row_lse, col_lse, a, la, lb, f, g, stages, tol, max_iter, switch_tol):
    """Balanced log-domain Sinkhorn over the epsilon stages; the last stage stops at
    ``switch_tol`` when given (Newton takes over). Returns ``(f, g, n_iter, err)``, the
    error being the row marginal's L1 violation (the columns are exact)."""
    n_iter = 0
    err = math.inf
    for k, eps in enumerate(stages):
        last = k == len(stages) - 1
        stage_tol = tol if last else max(tol, STAGE_TOL)
        if last and switch_tol is not None:
            stage_tol = max(tol, switch_tol)
        stage_iter = 0
        f_next = None
        while n_iter < max_iter and (last or stage_iter < STAGE_MAX_ITER):
            if f_next is not None:
                f = f_next
            g = -col_lse(f + eps * la, eps)
            f_next = -row_lse(g + eps * lb, eps)
            n_iter += 1
            stage_iter += 1
            # Row marginal of the plan (f, g): a_i exp((f_i - f_next_i) / eps).
            err = float(xp.sum(a * xp.abs(xp.exp((f - f_next) / eps) - 1.0)))
            if not math.isfinite(err):
                raise FloatingPointError(
                    "Sinkhorn produced non-finite potentials; check that a and b have "
                    "positive mass where the cost is finite.")
            if err <= stage_tol:
                break
        if n_iter >= max_iter:
            if not last:  # out of iterations before reg itself was reached
                err = math.inf
            break
    return f, g, n_iter, err
