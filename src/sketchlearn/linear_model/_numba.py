"""Numba kernels: linear stochastic approximation (the per-sample loop) and the
doubled-precision residuals of least-squares iterative refinement (of the solution
and of the columns of ``(A^T A)^{-1}``, which give the standard errors).

Each chain is sequential over its samples; independent chains (Richardson-Romberg
pairs, bootstrap ensembles) run in parallel. Rank-one samples cost O(p) a step and
dense ones O(p^2). The state (iterate, running average) is float64 for float32 and
float64 data alike; see :mod:`sketchlearn.linear_model._lsa` for the reference.
"""

from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from .._jit import FASTMATH, is_finite, njit

# No nnan/ninf: the kernels test for non-finite iterates.


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _average_in(th, av, t, burn_in):
    """Fold iterate number ``t`` into the running Polyak-Ruppert average after burn-in."""
    if t > burn_in:
        m = float(t - burn_in)
        for q in range(th.shape[0]):
            av[q] += (th[q] - av[q]) / m


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _final_status(th, T):
    """-1 when the last iterate is finite, else the last step's position."""
    for q in range(th.shape[0]):
        if not is_finite(th[q]):
            return T - 1
    return -1


@njit(cache=True, fastmath=FASTMATH)
def _rank_one_chain(U, V, c, idx, th, av, t0, step, burn_in):
    """Advance one chain in place; return -1, or where it became non-finite."""
    p = th.shape[0]
    T = idx.shape[0]
    for j in range(T):
        i = idx[j]
        r = 0.0
        for q in range(p):
            r += V[i, q] * th[q]
        r -= c[i]
        if not is_finite(r):
            return j
        g = step * r
        for q in range(p):
            th[q] -= g * U[i, q]
        _average_in(th, av, t0 + j + 1, burn_in)
    return _final_status(th, T)


@njit(cache=True, fastmath=FASTMATH)
def _dense_chain(A, b, idx, th, av, t0, step, burn_in, r):
    """Dense version of :func:`_rank_one_chain`; ``r`` is scratch of length p."""
    p = th.shape[0]
    T = idx.shape[0]
    for j in range(T):
        i = idx[j]
        finite = True
        for a in range(p):
            s = 0.0
            for q in range(p):
                s += A[i, a, q] * th[q]
            s -= b[i, a]
            r[a] = s
            if not is_finite(s):
                finite = False
        if not finite:
            return j
        for a in range(p):
            th[a] -= step * r[a]
        _average_in(th, av, t0 + j + 1, burn_in)
    return _final_status(th, T)


@njit(cache=True, parallel=True)
def _rank_one_chains(U, V, c, index, theta, avg, t0, steps, burn_in, status):
    for k in prange(index.shape[0]):
        status[k] = _rank_one_chain(U, V, c, index[k], theta[k], avg[k], t0, steps[k],
                                    burn_in)


@njit(cache=True, parallel=True)
def _dense_chains(A, b, index, theta, avg, t0, steps, burn_in, status):
    for k in prange(index.shape[0]):
        r = np.empty(theta.shape[1])
        status[k] = _dense_chain(A, b, index[k], theta[k], avg[k], t0, steps[k], burn_in, r)


def _state(theta, avg):
    return (np.array(theta, dtype=np.float64, order="C", copy=True),
            np.array(avg, dtype=np.float64, order="C", copy=True))


def lsa_rank_one(xp, U, V, c, index, theta, avg, t0, steps, burn_in):
    """Numba version of :func:`~sketchlearn.linear_model._lsa.lsa_rank_one_reference`."""
    theta, avg = _state(theta, avg)
    index = np.ascontiguousarray(index, dtype=np.int64)
    status = np.full(index.shape[0], -1, dtype=np.int64)
    dtype = np.float32 if U.dtype == np.float32 else np.float64
    _rank_one_chains(np.ascontiguousarray(U, dtype=dtype), np.ascontiguousarray(V, dtype=dtype),
                     np.ascontiguousarray(c, dtype=dtype), index, theta, avg, np.int64(t0),
                     np.ascontiguousarray(steps, dtype=np.float64), np.int64(burn_in), status)
    return theta, avg, status


def lsa_dense(xp, A, b, index, theta, avg, t0, steps, burn_in):
    """Numba version of :func:`~sketchlearn.linear_model._lsa.lsa_dense_reference`."""
    theta, avg = _state(theta, avg)
    index = np.ascontiguousarray(index, dtype=np.int64)
    status = np.full(index.shape[0], -1, dtype=np.int64)
    dtype = np.float32 if A.dtype == np.float32 else np.float64
    _dense_chains(np.ascontiguousarray(A, dtype=dtype), np.ascontiguousarray(b, dtype=dtype),
                  index, theta, avg, np.int64(t0), np.ascontiguousarray(steps, dtype=np.float64),
                  np.int64(burn_in), status)
    return theta, avg, status


# --------------------------------------------------------------------------------
# Doubled-precision residuals for iterative refinement (Gauss-Markov). Error-free
# transformations (Knuth's TwoSum, Dekker's TwoProduct with Veltkamp splitting)
# need IEEE rounding of every operation, so these kernels run WITHOUT fastmath.
# --------------------------------------------------------------------------------

_SPLITTER = 134217729.0  # 2^27 + 1


@njit(cache=True, inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always")
def _two_prod(a, b):
    p = a * b
    t = _SPLITTER * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLITTER * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (LLVM's ``llvm.fma``: the FMA instruction where
    the CPU has one, else the C library's correctly rounded ``fma``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@njit(cache=True, inline="always")
def _two_prod_fma(a, b):
    """TwoProduct by one fused multiply-add: ``a * b = p + e`` exactly. Same result as
    :func:`_two_prod` (barring overflow of the split), in 2 operations instead of 17."""
    p = a * b
    return p, _fma(a, b, -p)


@njit(cache=True)
def _refinement_residuals(A, y, r, x):
    """``f = y - r - A x`` and ``g = -A^T r`` as if in twice the float64 precision.

    Each entry is a compensated sum (Ogita, Rump & Oishi's Dot2) rounded once to
    float64; ``A`` is (n, k) float64, read row by row (C order is fastest). ``g`` is
    accumulated over blocks of rows, then the blocks' (sum, error) pairs are added
    with the same error-free transformations. One thread: it runs between LAPACK
    calls, whose OpenBLAS threads are still spinning, and a parallel loop there
    fought them for the two cores (5-7x slower in the OLS benchmark).
    """
    n, k = A.shape
    f = np.empty(n)
    for i in range(n):
        s, c = _two_sum(y[i], -r[i])
        for j in range(k):
            h, e = _two_prod(A[i, j], -x[j])
            s, q = _two_sum(s, h)
            c += q + e
        f[i] = s + c
    n_blocks = min(n, 64)
    block_s = np.zeros((n_blocks, k))
    block_c = np.zeros((n_blocks, k))
    for b in range(n_blocks):
        for i in range(b * n // n_blocks, (b + 1) * n // n_blocks):
            ri = -r[i]
            for j in range(k):
                h, e = _two_prod(A[i, j], ri)
                sj, q = _two_sum(block_s[b, j], h)
                block_s[b, j] = sj
                block_c[b, j] += q + e
    g = np.empty(k)
    for j in range(k):
        s = 0.0
        c = 0.0
        for b in range(n_blocks):
            s, q = _two_sum(s, block_s[b, j])
            c += q + block_c[b, j]
        g[j] = s + c
    return f, g


@njit(cache=True)
def _inverse_refinement_residuals(A, R, X, Q):
    """Residuals of the augmented systems whose solutions are the columns of ``(A^T A)^{-1}``.

    Column ``j`` of ``X`` (k x k) solves ``[I A; A^T 0] [r_j; x_j] = [0; -e_j]``, i.e.
    ``A^T A x_j = e_j`` with ``r_j = -A x_j``. Returns ``F = -R - A X`` (n x k),
    ``G = -I - A^T R`` (k x k) and ``Q^T F`` (k x k, plain float64, accumulated row by
    row while ``F`` is formed: a BLAS product with an inner dimension of n was the
    slowest step under a busy multi-threaded BLAS). ``F`` and ``G`` have each entry
    a compensated sum (Dot2) rounded once to
    float64, as :func:`_refinement_residuals` does for one right-hand side, but with
    the exact products from a fused multiply-add (3x faster than Dekker's split here,
    bit for bit the same). The inner loops run over the k independent columns, so
    they vectorise; ``G`` is accumulated over blocks of rows whose (sum, error) pairs
    are then merged. ``O(n k^2)``; single-threaded for the same reason as
    :func:`_refinement_residuals`.
    """
    n, k = A.shape
    m = X.shape[1]
    F = np.empty((n, m))
    QtF = np.zeros((Q.shape[1], m))
    s = np.empty(m)
    c = np.empty(m)
    for i in range(n):
        for j in range(m):
            s[j] = -R[i, j]
            c[j] = 0.0
        _minus_row_product(s, c, A, i, X, False)
        for j in range(m):
            F[i, j] = s[j] + c[j]
        for q in range(Q.shape[1]):
            w = Q[i, q]
            for j in range(m):
                QtF[q, j] += w * F[i, j]
    total_s = np.zeros((k, m))
    total_c = np.zeros((k, m))
    for q in range(min(k, m)):
        total_s[q, q] = -1.0
    block_s = np.empty((k, m))
    block_c = np.empty((k, m))
    n_blocks = min(n, 64)
    for b in range(n_blocks):
        block_s[:, :] = 0.0
        block_c[:, :] = 0.0
        for i in range(b * n // n_blocks, (b + 1) * n // n_blocks):
            for q in range(k):
                a = A[i, q]
                for j in range(m):
                    h, e = _two_prod_fma(a, -R[i, j])
                    t, d = _two_sum(block_s[q, j], h)
                    block_s[q, j] = t
                    block_c[q, j] += d + e
        for q in range(k):
            for j in range(m):
                t, d = _two_sum(total_s[q, j], block_s[q, j])
                total_s[q, j] = t
                total_c[q, j] += d + block_c[q, j]
    G = np.empty((k, m))
    for q in range(k):
        for j in range(m):
            G[q, j] = total_s[q, j] + total_c[q, j]
    return F, G, QtF


@njit(cache=True, inline="always")
def _row_residual(s, c, A, i, X):
    """``s + c - A[i] X[:, 0]`` as a compensated sum rounded once, from the running
    (sum, error) pair ``(s, c)``: the one-column case of the kernels below, with scalar
    accumulators (an inner loop over one column keeps its running sums in memory and
    ran 5-8x slower)."""
    for q in range(A.shape[1]):
        h, e = _two_prod_fma(A[i, q], -X[q, 0])
        s, d = _two_sum(s, h)
        c += d + e
    return s + c


@njit(cache=True, inline="always")
def _minus_row_product(s, c, A, i, X, upper):
    """Add ``-A[i] X`` to the running (sum, error) pairs ``(s, c)`` of row ``i``'s ``m``
    entries (Dot2 with exact products by FMA). The inner loop runs over the columns,
    so it vectorises; with ``upper`` (``X`` upper triangular) each row of ``X`` starts
    at a multiple of 8 below its diagonal: LLVM vectorises that form (a start at the
    diagonal itself ran 4x slower), and the few zeros added are exact."""
    m = X.shape[1]
    for q in range(A.shape[1]):
        a = A[i, q]
        j0 = (q // 8) * 8 if upper else 0
        for jj in range(m - j0):
            j = j0 + jj
            h, e = _two_prod_fma(a, -X[q, j])
            t, d = _two_sum(s[j], h)
            s[j] = t
            c[j] += d + e


@njit(cache=True)
def _product_residual(B, A, X):
    """``B - A X`` with each entry a compensated sum (Dot2) rounded once, as
    :func:`_chunk_refinement_sums` forms ``F``; (n, k) ``A``, (k, m) ``X``. Where ``X``
    is upper triangular (a QR's ``R``, an inverse of one), the products with its zero
    entries are skipped: they would add exact zeros, so the result is the same bit for
    bit, in half the operations."""
    n, k = A.shape
    m = X.shape[1]
    upper = True
    for q in range(k):
        for j in range(min(q, m)):
            if X[q, j] != 0.0:
                upper = False
    F = np.empty((n, m))
    if m == 1:
        for i in range(n):
            F[i, 0] = _row_residual(B[i, 0], 0.0, A, i, X)
        return F
    s = np.empty(m)
    c = np.empty(m)
    for i in range(n):
        for j in range(m):
            s[j] = B[i, j]
            c[j] = 0.0
        _minus_row_product(s, c, A, i, X, upper)
        for j in range(m):
            F[i, j] = s[j] + c[j]
    return F


def product_residual(xp, B, A, X):
    """See :func:`._gauss_markov_dask._product_residual_reference`."""
    return _product_residual(_f64(B), _f64(A), _f64(X))


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def refinement_residuals(xp, A, y, r, x):
    """See :func:`._refinement._refinement_residuals_reference`."""
    return _refinement_residuals(_f64(A), _f64(y), _f64(r), _f64(x))


def inverse_refinement_residuals(xp, A, R, X, Q):
    """See :func:`._refinement._inverse_refinement_residuals_reference`."""
    return _inverse_refinement_residuals(_f64(A), _f64(R), _f64(X), _f64(Q))


@njit(cache=True)
def _chunk_refinement_sums(A, B, R, X, Q):
    """One row chunk's share of a refinement step of ``[I A; A^T 0] [R; X] = [B; C]``.

    Returns ``F = B - R - A X`` (each entry a compensated sum rounded once, as
    :func:`_inverse_refinement_residuals` forms it), ``-A^T R`` as a renormalised
    (high, low) pair that is not rounded to float64 (the chunks' pairs are summed
    before rounding, so the total keeps its doubled precision whatever the
    chunking) and ``Q^T F`` in plain float64. ``A`` (n, k), ``B``, ``R`` (n, m),
    ``X`` (k, m), ``Q`` (n, q).
    """
    n, k = A.shape
    m = X.shape[1]
    F = np.empty((n, m))
    QtF = np.zeros((Q.shape[1], m))
    s = np.empty(m)
    c = np.empty(m)
    for i in range(n):
        if m == 1:
            s0, c0 = _two_sum(B[i, 0], -R[i, 0])
            F[i, 0] = _row_residual(s0, c0, A, i, X)
        else:
            for j in range(m):
                s[j], c[j] = _two_sum(B[i, j], -R[i, j])
            _minus_row_product(s, c, A, i, X, False)
            for j in range(m):
                F[i, j] = s[j] + c[j]
        for q in range(Q.shape[1]):
            w = Q[i, q]
            for j in range(m):
                QtF[q, j] += w * F[i, j]
    # -A^T R with the totals held as (m, k): the loop over k, innermost, reads a row of
    # A and vectorises for any m (one column included); each entry still sums the
    # rows in order
    total_s = np.zeros((m, k))
    total_c = np.zeros((m, k))
    for i in range(n):
        for j in range(m):
            r = -R[i, j]
            for q in range(k):
                h, e = _two_prod_fma(A[i, q], r)
                t, d = _two_sum(total_s[j, q], h)
                total_s[j, q] = t
                total_c[j, q] += d + e
    high = np.empty((k, m))
    low = np.empty((k, m))
    for q in range(k):
        for j in range(m):
            high[q, j], low[q, j] = _two_sum(total_s[j, q], total_c[j, q])
    return F, high, low, QtF


def chunk_refinement_sums(xp, A, B, R, X, Q):
    """See :func:`._gauss_markov_dask._chunk_refinement_sums_reference`."""
    return _chunk_refinement_sums(_f64(A), _f64(B), _f64(R), _f64(X), _f64(Q))


# rows of a block whose (sum, error) pairs are accumulated before they are folded into
# the totals: the errors' float64 sums grow with the rows summed in a row, not with n
GRAM_BLOCK_ROWS = 256


@njit(cache=True)
def _gram_pair(M):
    """``M^T M`` as an unrounded (high, low) pair, each entry a compensated sum (Dot2)
    of exact products: blocks of :data:`GRAM_BLOCK_ROWS` rows, each block's pairs
    folded into the totals with TwoSum. The upper triangle is computed, the lower one
    mirrored (products commute exactly)."""
    n, m = M.shape
    total_s = np.zeros((m, m))
    total_c = np.zeros((m, m))
    s = np.empty((m, m))
    c = np.empty((m, m))
    for i0 in range(0, n, GRAM_BLOCK_ROWS):
        s[:] = 0.0
        c[:] = 0.0
        for i in range(i0, min(n, i0 + GRAM_BLOCK_ROWS)):
            row = M[i]
            for a in range(m):
                x = row[a]
                sa, ca = s[a], c[a]
                for j in range(m - a):
                    # an unsigned index: no negative-index wraparound, so LLVM
                    # vectorises the loop (4x measured at 102 columns)
                    b = types.uint64(a + j)
                    h, e = _two_prod_fma(x, row[b])
                    t, d = _two_sum(sa[b], h)
                    sa[b] = t
                    ca[b] += d + e
        for a in range(m):
            for b in range(a, m):
                t, d = _two_sum(total_s[a, b], s[a, b])
                total_s[a, b] = t
                total_c[a, b] += c[a, b] + d
    high = np.empty((m, m))
    low = np.empty((m, m))
    for a in range(m):
        for b in range(a, m):
            high[a, b], low[a, b] = _two_sum(total_s[a, b], total_c[a, b])
            high[b, a], low[b, a] = high[a, b], low[a, b]
    return high, low


def gram_pair(xp, M):
    """See :func:`._gauss_markov_dask._gram_pair_reference`."""
    return _gram_pair(_f64(M))
