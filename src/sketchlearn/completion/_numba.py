"""Numba kernels for matrix completion on CSR (or CSC, as CSR of the transpose) arrays.

Every kernel runs in parallel over rows (``prange`` over blocks of rows, each
block with its own scratch space) and reads the observed entries of a row from
``indptr`` / ``indices`` / ``data``. The same kernels serve the column half-steps:
a CSC description of the matrix is the CSR description of its transpose.
Scratch vectors and sums are float64 whatever the input dtype; results are
written into arrays of the input dtype.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import njit

# No "nnan"/"ninf" (DESIGN: NaN and infinity must propagate) and no "afn".
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

_BLOCK = 64  # rows per parallel task: one scratch allocation per task, not per row
# Below this much work (multiply-adds) a kernel runs on one thread: starting a parallel
# region costs tens of microseconds, and on a loaded machine a time slice.
_PARALLEL_MIN_WORK = 2**20
_NULL_TOL = 1e-10  # CG stops when p^T A p <= _NULL_TOL * mean(diag A) * |p|^2


def _parallel(work) -> bool:
    return work >= _PARALLEL_MIN_WORK


def _rows(A):
    """C order for the factors: the kernels read rows, and each memory layout a kernel
    meets is one more compilation (three layouts cost 3 s of a first fit)."""
    return np.ascontiguousarray(A)


@njit(cache=True, fastmath=FASTMATH)
def _predict_rows(indptr, indices, U, V, out, i0, i1):
    k = U.shape[1]
    for i in range(i0, i1):
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            acc = 0.0
            for c in range(k):
                acc += U[i, c] * V[j, c]
            out[q] = acc


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _predict_observed_kernel(indptr, indices, U, V, out):
    m = indptr.shape[0] - 1
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _predict_rows(indptr, indices, U, V, out, b * _BLOCK, min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _predict_observed_serial(indptr, indices, U, V, out):
    _predict_rows(indptr, indices, U, V, out, 0, indptr.shape[0] - 1)


def predict_observed(xp, indptr, indices, rows, U, V):
    """``out[q] = U[i] . V[indices[q]]`` for every stored entry ``q`` of row ``i``."""
    U, V = _rows(U), _rows(V)
    out = np.empty(indices.shape[0], dtype=U.dtype)
    kernel = (_predict_observed_kernel if _parallel(indices.shape[0] * U.shape[1])
              else _predict_observed_serial)
    kernel(indptr, indices, U, V, out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def _spmm_rows(indptr, indices, data, D, out, i0, i1):
    r = D.shape[1]
    acc = np.empty(r)
    for i in range(i0, i1):
        acc[:] = 0.0
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            w = data[q]
            for c in range(r):
                acc[c] += w * D[j, c]
        for c in range(r):
            out[i, c] = acc[c]


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _spmm_kernel(indptr, indices, data, D, out):
    m = indptr.shape[0] - 1
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _spmm_rows(indptr, indices, data, D, out, b * _BLOCK, min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _spmm_serial(indptr, indices, data, D, out):
    _spmm_rows(indptr, indices, data, D, out, 0, indptr.shape[0] - 1)


def spmm(xp, indptr, indices, data, D):
    """Sparse (CSR) times dense: ``out[i] = sum_q data[q] D[indices[q]]``."""
    D = _rows(D)
    out = np.empty((indptr.shape[0] - 1, D.shape[1]), dtype=D.dtype)
    kernel = _spmm_kernel if _parallel(indices.shape[0] * D.shape[1]) else _spmm_serial
    kernel(indptr, indices, data, D, out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, i0, i1):
    k = X0.shape[1]
    x = np.empty(k)
    r = np.empty(k)
    z = np.empty(k)
    p = np.empty(k)
    ap = np.empty(k)
    d = np.empty(k)
    for i in range(i0, i1):
        s = indptr[i]
        e = indptr[i + 1]
        for c in range(k):
            x[c] = X0[i, c]
            r[c] = -lam * x[c]
            d[c] = lam
        # r = b - A x with A = V_i^T V_i + lam I, b = V_i^T data_i; d = diag(A)
        for q in range(s, e):
            j = indices[q]
            t = 0.0
            for c in range(k):
                t += V[j, c] * x[c]
            res = data[q] - t
            for c in range(k):
                v = V[j, c]
                r[c] += res * v
                d[c] += v * v
        rz = 0.0
        dmean = 0.0
        for c in range(k):
            z[c] = r[c] / d[c] if d[c] > 0.0 else 0.0
            p[c] = z[c]
            rz += r[c] * z[c]
            dmean += d[c] / k
        for _ in range(n_iter):
            if not rz > 0.0:
                break
            for c in range(k):
                ap[c] = lam * p[c]
            for q in range(s, e):
                j = indices[q]
                t = 0.0
                for c in range(k):
                    t += V[j, c] * p[c]
                for c in range(k):
                    ap[c] += t * V[j, c]
            pap = 0.0
            pp = 0.0
            for c in range(k):
                pap += p[c] * ap[c]
                pp += p[c] * p[c]
            # Stop in a (numerically) null direction: rows with fewer entries than k
            # and no ridge have singular systems; a step there would explode.
            if not pap > _NULL_TOL * dmean * pp:
                break
            a = rz / pap
            rz_new = 0.0
            for c in range(k):
                x[c] += a * p[c]
                r[c] -= a * ap[c]
                z[c] = r[c] / d[c] if d[c] > 0.0 else 0.0
                rz_new += r[c] * z[c]
            beta = rz_new / rz
            rz = rz_new
            for c in range(k):
                p[c] = z[c] + beta * p[c]
        for c in range(k):
            out[i, c] = x[c]


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _cg_rows_kernel(indptr, indices, data, X0, V, lam, n_iter, out):
    m = X0.shape[0]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, b * _BLOCK,
                       min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _cg_rows_serial(indptr, indices, data, X0, V, lam, n_iter, out):
    _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, np.int64(0), X0.shape[0])


def cg_rows(xp, indptr, indices, data, X0, V, lam, n_iter):
    """Warm-started Jacobi-preconditioned CG on each row's restricted normal equations.

    Row ``i`` solves ``(V_i^T V_i + lam I) x = V_i^T data_i`` approximately with
    ``n_iter`` CG steps from ``X0[i]``, where ``V_i`` are the rows of ``V`` at the
    observed columns of row ``i``. Cost O(nnz k n_iter).
    """
    X0, V = _rows(X0), _rows(V)
    out = np.empty_like(X0)
    work = indices.shape[0] * X0.shape[1] * (int(n_iter) + 1)
    kernel = _cg_rows_kernel if _parallel(work) else _cg_rows_serial
    kernel(indptr, indices, data, X0, V, float(lam), int(n_iter), out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def _chol_solve(G, rhs, x, k):
    """Solve ``G x = rhs`` in place of ``G`` by Cholesky; False if G is not positive
    definite."""
    for a in range(k):
        s = G[a, a]
        for c in range(a):
            s -= G[a, c] * G[a, c]
        if not s > 0.0:
            return False
        s = math.sqrt(s)
        G[a, a] = s
        for b in range(a + 1, k):
            t = G[b, a]
            for c in range(a):
                t -= G[b, c] * G[a, c]
            G[b, a] = t / s
    for a in range(k):  # forward: L y = rhs
        t = rhs[a]
        for c in range(a):
            t -= G[a, c] * x[c]
        x[a] = t / G[a, a]
    for a in range(k - 1, -1, -1):  # backward: L^T x = y
        t = x[a]
        for c in range(a + 1, k):
            t -= G[c, a] * x[c]
        x[a] = t / G[a, a]
    return True


@njit(cache=True, fastmath=FASTMATH)
def _solve_rows_block(indptr, indices, data, V, lam, jitter, out, i0, i1):
    k = V.shape[1]
    G = np.empty((k, k))
    G0 = np.empty((k, k))
    rhs = np.empty(k)
    x = np.empty(k)
    for i in range(i0, i1):
        G0[:, :] = 0.0
        rhs[:] = 0.0
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            w = data[q]
            for a in range(k):
                va = V[j, a]
                rhs[a] += w * va
                for c in range(a + 1):
                    G0[a, c] += va * V[j, c]
        trace = 0.0
        for a in range(k):
            G0[a, a] += lam
            trace += G0[a, a]
        if trace == 0.0:  # no observed entry and no ridge
            for a in range(k):
                out[i, a] = 0.0
            continue
        # Positive semi-definite only (fewer entries than k, no ridge): add a
        # small multiple of the identity until Cholesky succeeds.
        eps = 0.0
        for _ in range(8):
            for a in range(k):
                for c in range(a + 1):
                    G[a, c] = G0[a, c]
                G[a, a] += eps
            if _chol_solve(G, rhs, x, k):
                break
            eps = jitter * trace / k if eps == 0.0 else eps * 100.0
        for a in range(k):
            out[i, a] = x[a]


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _solve_rows_kernel(indptr, indices, data, V, lam, jitter, out):
    m = indptr.shape[0] - 1
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _solve_rows_block(indptr, indices, data, V, lam, jitter, out, b * _BLOCK,
                          min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _solve_rows_serial(indptr, indices, data, V, lam, jitter, out):
    _solve_rows_block(indptr, indices, data, V, lam, jitter, out, np.int64(0),
                      indptr.shape[0] - 1)


def solve_rows(xp, indptr, indices, data, V, lam):
    """Exact per-row ridge solves ``(V_i^T V_i + lam I) x = V_i^T data_i`` (Cholesky).

    Cost O(nnz k^2 + m k^3). Rows whose system is singular get a tiny ridge.
    """
    V = _rows(V)
    out = np.empty((indptr.shape[0] - 1, V.shape[1]), dtype=V.dtype)
    jitter = 1e-12 if V.dtype == np.float64 else 1e-6
    k = V.shape[1]
    work = indices.shape[0] * k * k + (indptr.shape[0] - 1) * k**3
    kernel = _solve_rows_kernel if _parallel(work) else _solve_rows_serial
    kernel(indptr, indices, data, V, float(lam), jitter, out)
    return out
