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

from .._jit import FASTMATH, njit, prefetch

# No "nnan"/"ninf" (DESIGN: NaN and infinity must propagate) and no "afn".

_BLOCK = 64  # rows per parallel task: one scratch allocation per task, not per row
# Below this much work (multiply-adds) a kernel runs on one thread: starting a parallel
# region costs tens of microseconds, and on a loaded machine a time slice.
_PARALLEL_MIN_WORK = 2**20
_NULL_TOL = 1e-10  # CG stops when p^T A p <= _NULL_TOL * mean(diag A) * |p|^2
# Entries ahead whose factor row CG's first pass prefetches: that pass meets each
# gathered row cold, and its misses were about 60% of the kernel's time (the later
# passes find the row's factors in cache). A row of 20 float64 spans 3 cache lines.
_PREFETCH_AHEAD = 16
_LINE = 8  # elements 64 bytes apart in float64 (a prefetch per 64-byte cache line)


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
def _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, sse, slot, i0, i1):
    k = X0.shape[1]
    nnz = indices.shape[0]
    total = 0.0  # squared residuals of the start, from the pass that forms r
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
            if q + _PREFETCH_AHEAD < nnz:  # every cache line of a later row
                ahead = indices[q + _PREFETCH_AHEAD]
                for c in range(0, k, _LINE):
                    prefetch(V, ahead, c)
                prefetch(V, ahead, k - 1)
            j = indices[q]
            t = 0.0
            for c in range(k):
                t += V[j, c] * x[c]
            res = data[q] - t
            total += res * res
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
    sse[slot] = total


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _cg_rows_kernel(indptr, indices, data, X0, V, lam, n_iter, out, sse):
    m = X0.shape[0]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, sse, b, b * _BLOCK,
                       min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _cg_rows_serial(indptr, indices, data, X0, V, lam, n_iter, out, sse):
    _cg_rows_block(indptr, indices, data, X0, V, lam, n_iter, out, sse, np.int64(0),
                   np.int64(0), X0.shape[0])


def cg_rows(xp, indptr, indices, data, X0, V, lam, n_iter, residual=False):
    """Warm-started Jacobi-preconditioned CG on each row's restricted normal equations.

    Row ``i`` solves ``(V_i^T V_i + lam I) x = V_i^T data_i`` approximately with
    ``n_iter`` CG steps from ``X0[i]``, where ``V_i`` are the rows of ``V`` at the
    observed columns of row ``i``. Cost O(nnz k n_iter). With ``residual``, also the
    squared residuals of the start, summed in the pass that forms CG's first residual
    (a separate ``predict_observed`` pass reads every gathered row once more).
    """
    X0, V = _rows(X0), _rows(V)
    out = np.empty_like(X0)
    work = indices.shape[0] * X0.shape[1] * (int(n_iter) + 1)
    parallel = _parallel(work)
    sse = np.zeros((X0.shape[0] + _BLOCK - 1) // _BLOCK if parallel else 1)
    kernel = _cg_rows_kernel if parallel else _cg_rows_serial
    kernel(indptr, indices, data, X0, V, float(lam), int(n_iter), out, sse)
    return (out, float(np.sum(sse))) if residual else out


@njit(cache=True, fastmath=FASTMATH)
def _chol_factor(G, k):
    """Cholesky ``G = L L^T`` in the lower triangle of ``G``; False if not positive
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
    return True


@njit(cache=True, fastmath=FASTMATH)
def _chol_apply(L, r, w, z, k):
    """``w = L^{-1} r`` and ``z = L^{-T} w = (L L^T)^{-1} r`` (``L`` in the lower triangle;
    ``z`` may be ``w``); returns ``|w|^2 = r^T z``."""
    ww = 0.0
    for a in range(k):
        t = r[a]
        for c in range(a):
            t -= L[a, c] * w[c]
        w[a] = t / L[a, a]
        ww += w[a] * w[a]
    for a in range(k - 1, -1, -1):
        t = w[a]
        for c in range(a + 1, k):
            t -= L[c, a] * z[c]
        z[a] = t / L[a, a]
    return ww


@njit(cache=True, fastmath=FASTMATH)
def _chol_solve(G, rhs, x, k):
    """Solve ``G x = rhs`` in place of ``G`` by Cholesky; False if G is not positive
    definite."""
    if not _chol_factor(G, k):
        return False
    _chol_apply(G, rhs, x, x, k)  # in place: forward into x, then backward over it
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
        solved = False
        for _ in range(8):
            for a in range(k):
                for c in range(a + 1):
                    G[a, c] = G0[a, c]
                G[a, a] += eps
            if _chol_solve(G, rhs, x, k):
                solved = True
                break
            eps = jitter * trace / k if eps == 0.0 else eps * 100.0
        if not solved:  # NaN/inf in the data, or an indefinite system (lam < 0)
            x[:] = np.nan
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

    Cost O(nnz k^2 + m k^3). Rows whose system is singular get a tiny ridge; a row
    where Cholesky fails even then (NaN or inf in the data, an indefinite system from a
    negative ``lam``) is NaN, as in the reference.
    """
    V = _rows(V)
    out = np.empty((indptr.shape[0] - 1, V.shape[1]), dtype=V.dtype)
    jitter = 1e-12 if V.dtype == np.float64 else 1e-6
    k = V.shape[1]
    work = indices.shape[0] * k * k + (indptr.shape[0] - 1) * k**3
    kernel = _solve_rows_kernel if _parallel(work) else _solve_rows_serial
    kernel(indptr, indices, data, V, float(lam), jitter, out)
    return out


# ------------------------------------------------------------------- sketch-preconditioned CG

_SM_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SM_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_SM_MUL2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _splitmix64(key):
    """SplitMix64 of a uint64 key: the sketch's hash (the same in the reference)."""
    z = key + _SM_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _SM_MUL1
    z = (z ^ (z >> np.uint64(27))) * _SM_MUL2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, fastmath=FASTMATH)
def _sketched_gram(indices, V, s, e, sketch_rows, nnz_sketch, seed, SA, G):
    """``G = (S A)^T (S A)`` (lower triangle), ``A = V[indices[s:e]]``: ``S`` hashes each
    entry ``q`` into ``nnz_sketch`` of ``sketch_rows`` rows with signs +-1/sqrt(nnz_sketch)
    (SplitMix64 of ``seed + q nnz_sketch + t``); ``S = I`` when ``e - s <= sketch_rows``."""
    k = V.shape[1]
    if e - s <= sketch_rows:
        n_s = e - s
        for q in range(s, e):
            for a in range(k):
                SA[q - s, a] = V[indices[q], a]
    else:
        n_s = sketch_rows
        SA[:, :] = 0.0
        scale = 1.0 / math.sqrt(nnz_sketch)
        for q in range(s, e):
            j = indices[q]
            base = seed + np.uint64(q) * np.uint64(nnz_sketch)
            for t in range(nnz_sketch):
                h = _splitmix64(base + np.uint64(t))
                row = np.int64((h >> np.uint64(33)) % np.uint64(sketch_rows))
                sg = scale if (h & np.uint64(1)) else -scale
                for a in range(k):
                    SA[row, a] += sg * V[j, a]
    G[:, :] = 0.0
    for rr in range(n_s):
        for a in range(k):
            va = SA[rr, a]
            for b in range(a + 1):
                G[a, b] += va * SA[rr, b]


@njit(cache=True, fastmath=FASTMATH)
def _normal_matvec(indices, V, s, e, lam, p, ap):
    """``ap = (A^T A + lam I) p`` with ``A = V[indices[s:e]]``."""
    k = V.shape[1]
    for a in range(k):
        ap[a] = lam * p[a]
    for q in range(s, e):
        j = indices[q]
        t = 0.0
        for a in range(k):
            t += V[j, a] * p[a]
        for a in range(k):
            ap[a] += t * V[j, a]


@njit(cache=True, fastmath=FASTMATH)
def _sketch_cg_block(indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows, nnz_sketch,
                     seed, jitter, out, info, i0, i1):
    k = V.shape[1]
    SA = np.empty((sketch_rows, k))
    G0 = np.empty((k, k))
    L = np.empty((k, k))
    x = np.empty(k)
    r = np.empty(k)
    w = np.empty(k)
    z = np.empty(k)
    p = np.empty(k)
    ap = np.empty(k)
    for i in range(i0, i1):
        s = indptr[i]
        e = indptr[i + 1]
        # preconditioner L L^T = (S A)^T (S A) + lam I
        _sketched_gram(indices, V, s, e, sketch_rows, nnz_sketch, seed, SA, G0)
        trace = 0.0
        dmean = 0.0  # mean diagonal of A^T A + lam I, for the null-direction test
        for a in range(k):
            G0[a, a] += lam
            trace += G0[a, a]
            x[a] = X0[i, a]
            r[a] = 0.0
        for q in range(s, e):  # r = A^T b
            j = indices[q]
            for a in range(k):
                r[a] += data[q] * V[j, a]
                dmean += V[j, a] * V[j, a]
        dmean = dmean / k + lam
        # Semi-definite only (fewer entries than k, no ridge): a small multiple of the
        # identity until Cholesky succeeds, as in the exact solves.
        eps = 0.0
        ok = trace > 0.0
        for _ in range(8 if ok else 0):
            for a in range(k):
                for b in range(a + 1):
                    L[a, b] = G0[a, b]
                L[a, a] += eps
            if _chol_factor(L, k):
                break
            eps = jitter * trace / k if eps == 0.0 else eps * 100.0
        cc = _chol_apply(L, r, w, z, k) if ok else 0.0  # |A^T b|^2, preconditioner norm
        if not cc > 0.0:  # no entry, or b = 0 on the row: the solution is 0
            for a in range(k):
                out[i, a] = 0.0
            info[i, 0] = 0.0
            info[i, 1] = 0.0
            continue
        # PCG on (A^T A + lam I) x = A^T b from X0[i], to |r|_{M^-1} <= tol |A^T b|_{M^-1}
        _normal_matvec(indices, V, s, e, lam, x, ap)
        for a in range(k):
            r[a] -= ap[a]
        rz = _chol_apply(L, r, w, z, k)
        for a in range(k):
            p[a] = z[a]
        target = tol * tol * cc
        it = 0
        while rz > target and it < max_iter:
            _normal_matvec(indices, V, s, e, lam, p, ap)
            pap = 0.0
            pp = 0.0
            for a in range(k):
                pap += p[a] * ap[a]
                pp += p[a] * p[a]
            if not pap > _NULL_TOL * dmean * pp:  # singular system: null direction
                break
            alpha = rz / pap
            for a in range(k):
                x[a] += alpha * p[a]
                r[a] -= alpha * ap[a]
            rz_new = _chol_apply(L, r, w, z, k)
            beta = rz_new / rz
            rz = rz_new
            for a in range(k):
                p[a] = z[a] + beta * p[a]
            it += 1
        for a in range(k):
            out[i, a] = x[a]
        info[i, 0] = math.sqrt(max(rz, 0.0) / cc)
        info[i, 1] = it


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _sketch_cg_kernel(indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows, nnz_sketch,
                      seed, jitter, out, info):
    m = X0.shape[0]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        _sketch_cg_block(indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows,
                         nnz_sketch, seed, jitter, out, info, b * _BLOCK,
                         min(m, (b + 1) * _BLOCK))


@njit(cache=True, fastmath=FASTMATH)
def _sketch_cg_serial(indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows, nnz_sketch,
                      seed, jitter, out, info):
    _sketch_cg_block(indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows, nnz_sketch,
                     seed, jitter, out, info, np.int64(0), X0.shape[0])


def sketch_cg_rows(xp, indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows, nnz_sketch,
                   seed):
    """Sketch-preconditioned CG on each row's restricted normal equations, to a target.

    Row ``i`` solves ``(V_i^T V_i + lam I) x = V_i^T data_i`` from ``X0[i]`` by CG
    preconditioned with ``L L^T = (S V_i)^T (S V_i) + lam I``, ``S`` a sparse sign
    embedding of the row's entries into ``sketch_rows`` rows (``nnz_sketch`` signs
    per entry, hashed from ``seed`` and the entry's position), until the residual in
    the preconditioner's norm is below ``tol`` times that of the start at 0, or after
    ``max_iter`` steps. Returns ``(X, info)``: ``info[i] = (achieved relative
    residual, CG steps)``. Cost O(nnz k (nnz_sketch + 2 steps) + m sketch_rows k^2).
    """
    X0, V = _rows(X0), _rows(V)
    out = np.empty_like(X0)
    info = np.empty((X0.shape[0], 2))
    jitter = 1e-12 if V.dtype == np.float64 else 1e-6
    k = V.shape[1]
    work = indices.shape[0] * k * (nnz_sketch + 8) + X0.shape[0] * sketch_rows * k * k // 2
    kernel = _sketch_cg_kernel if _parallel(work) else _sketch_cg_serial
    kernel(indptr, indices, data, X0, V, float(lam), float(tol), int(max_iter),
           int(sketch_rows), int(nnz_sketch), np.uint64(seed), jitter, out, info)
    return out, info
