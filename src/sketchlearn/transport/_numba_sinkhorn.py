"""Numba log-sum-exp kernels of Sinkhorn (rows in parallel, two passes per row).

Mirror :mod:`._sinkhorn_ops`: the first pass finds the row maximum of
``(h_j - C_ij) / reg``, the second sums the shifted exponentials, so every term is
at most 1 and tiny ``reg`` cannot overflow. The on-the-fly version computes one
row of costs into a thread-local buffer of length ``m``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import FASTMATH, exp_for_sums, is_finite, njit, on_row_blocks


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _lse_row(z, inv_reg, reg):
    mx = -np.inf
    for j in range(z.shape[0]):
        if z[j] > mx:
            mx = z[j]
    if not is_finite(mx):
        return mx
    s = 0.0
    for j in range(z.shape[0]):
        s += exp_for_sums((z[j] - mx) * inv_reg)
    return mx + reg * math.log(s)


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _lse_rows(C, h, reg):
    n, m = C.shape
    out = np.empty(n, dtype=np.float64)
    inv_reg = 1.0 / reg
    for i in prange(n):
        z = np.empty(m, dtype=np.float64)
        Ci = C[i]  # 1-D slices vectorise; 2-D indexing in the inner loop does not
        for j in range(m):
            z[j] = h[j] - Ci[j]
        out[i] = _lse_row(z, inv_reg, reg)
    return out


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _lse_points(X, YT, h, reg, power):
    """Rows of the log-sum-exp with costs ``|x_i - y_j|^power`` made on the fly.

    ``Y`` comes transposed (``YT``, shape ``(d, m)``) so the distance loop runs over
    contiguous memory, coordinate by coordinate, and vectorises.
    """
    n, d = X.shape
    m = YT.shape[1]
    out = np.empty(n, dtype=np.float64)
    inv_reg = 1.0 / reg
    for i in prange(n):
        z = np.zeros(m, dtype=np.float64)
        for t in range(d):
            xt = np.float64(X[i, t])
            yt = YT[t]
            for j in range(m):
                diff = xt - np.float64(yt[j])
                z[j] += diff * diff
        if power == 2.0:
            for j in range(m):
                z[j] = h[j] - z[j]
        elif power == 1.0:
            for j in range(m):
                z[j] = h[j] - math.sqrt(z[j])
        else:
            for j in range(m):
                z[j] = h[j] - math.sqrt(z[j]) ** power
        out[i] = _lse_row(z, inv_reg, reg)
    return out


def lse_rows(xp, C, h, reg):
    """See :func:`._sinkhorn_ops._lse_rows_reference`."""
    return _lse_rows(np.ascontiguousarray(C), np.ascontiguousarray(h, dtype=np.float64),
                     float(reg))


def lse_points(xp, X, Y, h, reg, power):
    """See :func:`._sinkhorn_ops._lse_points_reference`."""
    return _lse_points(np.ascontiguousarray(X), np.ascontiguousarray(Y.T),
                       np.ascontiguousarray(h, dtype=np.float64), float(reg), float(power))


# The two kernels of the scaling domain run on row blocks of Python threads
# (``on_row_blocks``), not in ``prange``: each is followed by BLAS matrix-vector
# products, which Numba's spinning OpenMP threads would slow down.
@njit(cache=True, nogil=True, fastmath={"contract", "nsz"})
def _gibbs_rows(C, f, g, inv_eps, out, lo, hi):
    m = C.shape[1]
    for i in range(lo, hi):
        fi = f[i]
        Ci = C[i]
        oi = out[i]
        for j in range(m):
            x = (fi + g[j] - Ci[j]) * inv_eps
            # exp_for_sums is exact to 1e-14 relative up to 2^1023; above e^700 the
            # entry is reported as inf, which the scaling loop treats as out of range.
            oi[j] = exp_for_sums(x) if x <= 700.0 else math.inf


def gibbs_kernel(xp, C, f, g, eps):
    """``exp((f_i + g_j - C_ij) / eps)`` (float64, row blocks on threads, vectorised
    exp)."""
    C = np.ascontiguousarray(C, dtype=np.float64)
    out = np.empty(C.shape, dtype=np.float64)
    f = np.ascontiguousarray(f, dtype=np.float64)
    g = np.ascontiguousarray(g, dtype=np.float64)
    on_row_blocks(lambda lo, hi: _gibbs_rows(C, f, g, 1.0 / eps, out, lo, hi),
                  C.shape[0], C.size)
    return out


@njit(cache=True, nogil=True, fastmath={"contract", "nsz"})
def _scale_rows_cols(K, u, v, C, row_cost, row_sum, lo, hi):
    m = K.shape[1]
    for i in range(lo, hi):
        ui = u[i]
        Ki = K[i]
        Ci = C[i]
        c = 0.0
        s = 0.0
        for j in range(m):
            p = ui * Ki[j] * v[j]
            Ki[j] = p
            c += p * Ci[j]
            s += p
        row_cost[i] = c
        row_sum[i] = s


def plan_from_kernel(xp, K, u, v, C):
    """Overwrite ``K`` with ``diag(u) K diag(v)``; return it, ``<P, C>`` and ``P 1``
    (one pass over ``K`` and ``C``, row blocks on threads)."""
    row_cost = np.empty(K.shape[0])
    row_sum = np.empty(K.shape[0])
    u = np.ascontiguousarray(u, dtype=np.float64)
    v = np.ascontiguousarray(v, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=np.float64)
    on_row_blocks(lambda lo, hi: _scale_rows_cols(K, u, v, C, row_cost, row_sum, lo, hi),
                  K.shape[0], K.size)
    return K, float(row_cost.sum()), row_sum
