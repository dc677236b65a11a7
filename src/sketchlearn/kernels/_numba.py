"""Numba kernels for NumPy inputs: kernel values computed on the fly, never stored.

``kernel_row`` evaluates one point against a range of rows (the fast path of every
kernel sum, here and in ``sketchlearn.thinning``); ``kernel_value`` evaluates one
pair. Both mirror ``_reference.kernel_block`` term by term.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .._jit import FASTMATH, exp_for_sums, njit
from ._kernels import (
    GAUSSIAN,
    IMQ,
    MATERN,
    MATERN_HALF,
    MATERN_QUAD_CUTOFF,
    MATERN_QUAD_PEAK,
    MATERN_QUAD_STEP,
    MATERN_TINY_T,
    RIESZ,
    SINC,
    matern_half_coefficients,
)

# Rows of X and Y per tile, so a tile of Y stays in L1/L2 while a block of X reuses it.
TILE_I = 32
TILE_J = 256

_MAX_HALF = 21
_HALF_COEFFS = np.zeros((_MAX_HALF, _MAX_HALF))
for _p in range(_MAX_HALF):
    _HALF_COEFFS[_p, : _p + 1] = matern_half_coefficients(_p)


@njit(cache=True, fastmath=FASTMATH)
def _matern_general(t, nu, log_const):
    # Same quadrature and stopping rule as _kernels.matern_quadrature_nodes.
    if t <= 0.0:
        return 1.0
    t = max(t, MATERN_TINY_T)
    step = min(MATERN_QUAD_STEP, MATERN_QUAD_PEAK / math.sqrt(math.hypot(t, nu)))
    peak = math.asinh(nu / t)
    log_scale = max(0.0, nu * (math.log(2.0 * nu / t) - 1.0))
    total = 0.0
    k = 0
    while True:
        s = k * step
        x = nu * s
        log_term = (x + math.log1p(math.exp(-2.0 * x)) - math.log(2.0)
                    - 2.0 * t * math.sinh(0.5 * s) ** 2 - log_scale)
        total += math.exp(log_term) * (0.5 if k == 0 else 1.0)
        if s > peak and total > 0.0 and log_term < math.log(total) - MATERN_QUAD_CUTOFF:
            break
        k += 1
    return math.exp(log_const + nu * math.log(t) - t + log_scale + math.log(total * step))


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _component_value(code, nu, a, b, sq, x, Y, j, y_transposed):
    """One kernel component at squared distance ``sq`` between ``x`` and point ``j`` of
    ``Y`` (rows, or columns when ``y_transposed``; only the sinc kernel reads them)."""
    if code == GAUSSIAN:
        return math.exp(-a * sq)
    if code == MATERN_HALF:
        t = a * math.sqrt(sq)
        p = int(b)
        poly = _HALF_COEFFS[p, p]
        for q in range(p - 1, -1, -1):
            poly = poly * t + _HALF_COEFFS[p, q]
        return math.exp(-t) * poly
    if code == MATERN:
        return _matern_general(a * math.sqrt(sq), nu, b)
    if code == IMQ:
        return (1.0 + a * sq) ** (-nu)
    if code == SINC:
        value = 1.0
        for t in range(x.shape[0]):
            yt = Y[t, j] if y_transposed else Y[j, t]
            u = a * (np.float64(x[t]) - np.float64(yt))
            if u != 0.0:
                value *= math.sin(u) / u
        return value
    if code == RIESZ:
        return -((a * math.sqrt(sq)) ** nu)
    return math.nan


@njit(cache=True, fastmath=FASTMATH)
def kernel_value(X, i, Y, j, codes, params, weights):
    """k(X[i], Y[j]) for the kernel described by ``(codes, params, weights)``."""
    sq = 0.0
    for t in range(X.shape[1]):
        diff = np.float64(X[i, t]) - np.float64(Y[j, t])
        sq += diff * diff
    out = 0.0
    for c in range(codes.shape[0]):
        out += weights[c] * _component_value(codes[c], params[c, 1], params[c, 2],
                                             params[c, 3], sq, X[i], Y, j, False)
    return out




@njit(cache=True, fastmath=FASTMATH, inline="always")
def _sq_dists(x, YT, j0, j1, sq):
    """``sq[:j1 - j0] = ||x - Y[j0:j1]||^2`` with ``YT = Y.T`` (coordinate-major).

    The inner loop reads a 1-D slice of ``YT``: with 2-D indexing LLVM vectorises it
    far less well (about 3x slower per coordinate, measured at d = 10).
    """
    m = j1 - j0
    for jj in range(m):
        sq[jj] = 0.0
    for t in range(YT.shape[0]):
        xt = x[t]
        row = YT[t, j0:j1]
        for jj in range(m):
            diff = xt - np.float64(row[jj])
            sq[jj] += diff * diff


@njit(cache=True, fastmath=FASTMATH)
def kernel_row(x, YT, j0, j1, codes, params, weights, sq, out, for_sums=True):
    """``out[:j1 - j0] = k(x, Y[j0:j1])`` for one float64 point ``x``; ``YT = Y.T``.

    ``Y`` is passed transposed (shape ``(d, m)``, contiguous) so the loops over its
    points run over contiguous memory and vectorise.

    Squared distances go to the buffer ``sq`` first; each kernel component is then
    applied in its own loop, so the family branch sits outside the inner loops
    (which stay short and vectorisable). This is the fast path of every Numba
    kernel sum; ``kernel_value`` is for single pairs. With ``for_sums`` the
    Gaussian uses ``exp_for_sums`` (values below 1e-304 become 0, negligible in
    any kernel sum); kernel matrices pass ``for_sums=False`` for exact tiny values.

    Callers pass ``j0`` and ``j1`` as int64 variables (``np.int64(0)``, not ``0``):
    Numba compiles a separate copy for each literal or integer width it is called with.
    """
    m = j1 - j0
    d = YT.shape[0]
    for jj in range(m):
        out[jj] = 0.0
    _sq_dists(x, YT, j0, j1, sq)
    for c in range(codes.shape[0]):
        code = codes[c]
        w = weights[c]
        nu = params[c, 1]
        a = params[c, 2]
        if code == GAUSSIAN and for_sums:
            for jj in range(m):
                out[jj] += w * exp_for_sums(-a * sq[jj])
        elif code == GAUSSIAN:
            for jj in range(m):
                out[jj] += w * math.exp(-a * sq[jj])
        elif code == MATERN_HALF:
            p = int(params[c, 3])
            for jj in range(m):
                r = a * math.sqrt(sq[jj])
                poly = _HALF_COEFFS[p, p]
                for q in range(p - 1, -1, -1):
                    poly = poly * r + _HALF_COEFFS[p, q]
                out[jj] += w * math.exp(-r) * poly
        elif code == MATERN:
            for jj in range(m):
                out[jj] += w * _matern_general(a * math.sqrt(sq[jj]), nu, params[c, 3])
        elif code == IMQ:
            for jj in range(m):
                out[jj] += w * (1.0 + a * sq[jj]) ** (-nu)
        elif code == SINC:
            for jj in range(m):
                value = 1.0
                for t in range(d):
                    u = a * (x[t] - np.float64(YT[t, j0 + jj]))
                    if u != 0.0:
                        value *= math.sin(u) / u
                out[jj] += w * value
        elif code == RIESZ:
            for jj in range(m):
                out[jj] -= w * (a * math.sqrt(sq[jj])) ** nu
        else:
            for jj in range(m):
                out[jj] = math.nan


@njit(cache=True, fastmath=FASTMATH)
def kernel_row_pair(x, YT, j0, j1, codes, params, weights, tweights, sq, out, tout):
    """``kernel_row`` for two weightings of the same components in one evaluation.

    ``out`` gets ``sum_c weights[c] k_c(x, Y[j])`` and ``tout`` ``sum_c tweights[c]
    k_c(x, Y[j])``: kernel halving with KT+ walks with the split kernel ``k + k_rt``
    and also needs the target kernel ``k`` (weights with zeros on the ``k_rt``
    components), whose exponentials are the same. Gaussian components use
    ``exp_for_sums`` as in ``kernel_row``.
    """
    m = j1 - j0
    for jj in range(m):
        out[jj] = 0.0
        tout[jj] = 0.0
    _sq_dists(x, YT, j0, j1, sq)
    for c in range(codes.shape[0]):
        code = codes[c]
        w = weights[c]
        tw = tweights[c]
        a = params[c, 2]
        if code == GAUSSIAN:
            for jj in range(m):
                v = exp_for_sums(-a * sq[jj])
                out[jj] += w * v
                tout[jj] += tw * v
        else:
            nu, b = params[c, 1], params[c, 3]
            for jj in range(m):
                v = _component_value(code, nu, a, b, sq[jj], x, YT, j0 + jj, True)
                out[jj] += w * v
                tout[jj] += tw * v


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _matvec_kernel(X, YT, VT, codes, params, weights, out):
    """``out[i, c] += sum_j k(X_i, Y_j) V[j, c]`` with ``V`` given as ``VT = V.T``
    (contiguous rows: the inner loops read 1-D slices, which vectorise)."""
    n, m, k = X.shape[0], YT.shape[1], VT.shape[0]
    d = X.shape[1]
    for ib in prange((n + TILE_I - 1) // TILE_I):
        i0 = ib * TILE_I
        i1 = min(n, i0 + TILE_I)
        x = np.empty(d)
        sq = np.empty(TILE_J)
        row = np.empty(TILE_J)
        for j0 in range(0, m, TILE_J):
            j1 = min(m, j0 + TILE_J)
            for i in range(i0, i1):
                for t in range(d):
                    x[t] = X[i, t]
                kernel_row(x, YT, j0, j1, codes, params, weights, sq, row)
                for c in range(k):
                    v = VT[c, j0:j1]
                    acc = 0.0
                    for jj in range(j1 - j0):
                        acc += row[jj] * v[jj]
                    out[i, c] += acc


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _symmetric_matvec_kernel(X, XT, VT, codes, params, weights, partial):
    """K(X, X) @ V from the tiles on and above the diagonal (half the evaluations).

    Tile rows ``b`` and ``n_tiles - 1 - b`` go to the same task so every task has
    about the same work; each thread accumulates into its own ``partial[thread]``
    (shape ``(k, n)``, like ``VT = V.T``: 1-D slices in the inner loops).
    """
    n, k, d = X.shape[0], VT.shape[0], X.shape[1]
    n_tiles = (n + TILE_I - 1) // TILE_I
    for task in prange((n_tiles + 1) // 2):
        tid = numba.get_thread_id()
        out = partial[tid]
        x = np.empty(d)
        sq = np.empty(n)
        row = np.empty(n)
        for which in range(2):
            ib = np.int64(task) if which == 0 else n_tiles - 1 - np.int64(task)
            if which == 1 and ib == task:
                break
            i0 = ib * TILE_I
            i1 = min(n, i0 + TILE_I)
            for i in range(i0, i1):
                for t in range(d):
                    x[t] = X[i, t]
                # Row i against columns i..n-1: the diagonal once, the rest twice.
                kernel_row(x, XT, i, n, codes, params, weights, sq, row)
                for c in range(k):
                    v = VT[c, i:n]
                    o = out[c, i:n]
                    vi = v[0]
                    acc = 0.0
                    for jj in range(n - i):
                        acc += row[jj] * v[jj]
                    for jj in range(1, n - i):
                        o[jj] += row[jj] * vi
                    o[0] += acc


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _matrix_kernel(X, YT, codes, params, weights, out):
    m, d = YT.shape[1], X.shape[1]
    for i in prange(X.shape[0]):
        x = np.empty(d)
        for t in range(d):
            x[t] = X[i, t]
        sq = np.empty(m)
        kernel_row(x, YT, np.int64(0), m, codes, params, weights, sq, out[i], False)


def kernel_matvec(xp, X, Y, V, kernel):
    """Numba version of ``kernel_matvec_reference``: O(n + m) memory, parallel over rows.

    When ``Y is X`` only the upper triangle is evaluated (half the work).
    """
    codes, params, weights = kernel.spec()
    if Y is X and X.shape[0] >= 2 * TILE_I:
        partial = np.zeros((numba.get_num_threads(), V.shape[1], X.shape[0]))
        _symmetric_matvec_kernel(np.ascontiguousarray(X), np.ascontiguousarray(X.T),
                                 np.ascontiguousarray(V.T, dtype=np.float64), codes, params,
                                 weights, partial)
        return np.ascontiguousarray(partial.sum(axis=0).T, dtype=X.dtype)
    out = np.zeros((X.shape[0], V.shape[1]), dtype=np.float64)
    _matvec_kernel(np.ascontiguousarray(X), np.ascontiguousarray(Y.T),
                   np.ascontiguousarray(V.T, dtype=np.float64), codes, params, weights, out)
    return out.astype(X.dtype, copy=False)


def kernel_matrix(xp, X, Y, kernel):
    """Numba version of ``kernel_matrix_reference``."""
    codes, params, weights = kernel.spec()
    out = np.empty((X.shape[0], Y.shape[0]), dtype=np.float64)
    _matrix_kernel(np.ascontiguousarray(X), np.ascontiguousarray(Y.T), codes, params,
                   weights, out)
    return out.astype(X.dtype, copy=False)
