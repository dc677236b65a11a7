"""Numba kernels for NumPy inputs: one slice per thread, sort and reduction fused.

Each function mirrors its array-API reference in :mod:`._ops` (same arguments, same
float64 results) and runs the slices in parallel with ``prange``: a thread copies its
row, sorts it, and reduces it (sort path, quantile merge, or pooled CDF walk) without
any intermediate array of the size of the whole problem. For Wasserstein with
uniform weights the rows are sorted beforehand by NumPy (faster than the sort Numba
compiles), in threads and in bounded blocks of slices, and the kernel only reduces.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Fast-math without nnan/ninf, so NaN and infinity keep their meaning.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _power(d, p):
    if p == 1.0:
        return d
    if p == 2.0:
        return d * d
    return d**p


@njit(cache=True, fastmath=FASTMATH)
def _sorted_row(P, l, w, uniform, presorted=False):
    """Sorted row l of P (float64) and the cumulative weights at the sorted values.

    With ``presorted`` (uniform weights only) the rows of ``P`` are sorted already.
    """
    n = P.shape[1]
    row = np.empty(n, dtype=np.float64)
    for i in range(n):
        row[i] = P[l, i]
    cdf = np.empty(n, dtype=np.float64)
    if uniform:
        if not presorted:
            row.sort()
        for i in range(n):
            cdf[i] = (i + 1.0) / n
        return row, cdf
    order = np.argsort(row, kind="mergesort")
    s = np.empty(n, dtype=np.float64)
    acc = 0.0
    for i in range(n):
        s[i] = row[order[i]]
        acc += w[order[i]]
        cdf[i] = acc
    return s, cdf


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _wasserstein_rows(PX, PY, a, b, uniform_a, uniform_b, p, presorted):
    L, n = PX.shape
    m = PY.shape[1]
    out = np.empty(L, dtype=np.float64)
    equal = uniform_a and uniform_b and n == m
    for l in prange(L):
        sx, cx = _sorted_row(PX, l, a, uniform_a, presorted)
        sy, cy = _sorted_row(PY, l, b, uniform_b, presorted)
        total = 0.0
        if equal:
            for i in range(n):
                total += _power(abs(sx[i] - sy[i]), p)
            out[l] = total / n
            continue
        # Merge of the breakpoints of the two quantile functions.
        i = 0
        j = 0
        t = 0.0
        while i < n and j < m:
            nxt = min(cx[i], cy[j])
            if nxt > t:
                total += (nxt - t) * _power(abs(sx[i] - sy[j]), p)
                t = nxt
            if cx[i] <= cy[j]:
                i += 1
            else:
                j += 1
        # Rounding can leave one cumulative sum a hair below the other at the end.
        if i < n and j >= m:
            last = cx[n - 1]
            if last > t:
                total += (last - t) * _power(abs(sx[i] - sy[m - 1]), p)
        elif j < m and i >= n:
            last = cy[m - 1]
            if last > t:
                total += (last - t) * _power(abs(sx[n - 1] - sy[j]), p)
        out[l] = total
    return out


@njit(cache=True, fastmath=FASTMATH)
def _pooled_row(PX, PY, l, a, b, uniform_a, uniform_b):
    n = PX.shape[1]
    m = PY.shape[1]
    z = np.empty(n + m, dtype=np.float64)
    for i in range(n):
        z[i] = PX[l, i]
    for j in range(m):
        z[n + j] = PY[l, j]
    order = np.argsort(z, kind="mergesort")
    zs = np.empty(n + m, dtype=np.float64)
    ws = np.empty(n + m, dtype=np.float64)
    for k in range(n + m):
        o = order[k]
        zs[k] = z[o]
        if o < n:
            ws[k] = 1.0 / n if uniform_a else a[o]
        else:
            ws[k] = -1.0 / m if uniform_b else -b[o - n]
    return zs, ws, order


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _energy_rows(PX, PY, a, b, uniform_a, uniform_b):
    # Sort each sample on its own (cheaper than sorting the pooled one), then walk
    # the merged order accumulating D = F - G.
    L, n = PX.shape
    m = PY.shape[1]
    out = np.empty(L, dtype=np.float64)
    for l in prange(L):
        sx, cx = _sorted_row(PX, l, a, uniform_a)
        sy, cy = _sorted_row(PY, l, b, uniform_b)
        i = 0
        j = 0
        D = 0.0
        total = 0.0
        prev = 0.0
        first = True
        while i < n or j < m:
            if j >= m or (i < n and sx[i] <= sy[j]):
                z = sx[i]
                w = cx[i] - (cx[i - 1] if i > 0 else 0.0)
                i += 1
            else:
                z = sy[j]
                w = -(cy[j] - (cy[j - 1] if j > 0 else 0.0))
                j += 1
            if not first:
                total += D * D * (z - prev)
            first = False
            D += w
            prev = z
        out[l] = 2.0 * total
    return out


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _energy_grad_rows(PX, PY, a, b, uniform_a, uniform_b):
    L, n = PX.shape
    out = np.empty(L, dtype=np.float64)
    grad = np.empty((L, n), dtype=np.float64)
    for l in prange(L):
        zs, ws, order = _pooled_row(PX, PY, l, a, b, uniform_a, uniform_b)
        D = 0.0
        total = 0.0
        K = zs.shape[0]
        for k in range(K):
            D += ws[k]
            if k + 1 < K:
                total += D * D * (zs[k + 1] - zs[k])
            o = order[k]
            if o < n:
                grad[l, o] = -2.0 * ws[k] * (2.0 * D - ws[k])
        out[l] = 2.0 * total
    return out, grad


def _weights(w, like):
    if w is None:
        return np.empty(0, dtype=np.float64), True
    return np.ascontiguousarray(w, dtype=np.float64), False


# Slices sorted per block with uniform weights: about this many values per cloud
# (128 MiB of float64), so the sorted copies stay bounded.
_SORT_BLOCK_VALUES = 2**24


def _sort_rows(P, pool, n_parts):
    """A sorted copy of each row of ``P`` by NumPy's sort, ``n_parts`` row ranges in
    the threads of ``pool``.

    NumPy's sort (vectorised, SIMD where the CPU has it) is about twice as fast as
    the sort Numba compiles, and it releases the GIL, so threads split the rows.
    """
    out = np.array(P, dtype=np.float64, order="C")
    bounds = np.linspace(0, out.shape[0], n_parts + 1).astype(int)
    list(pool.map(lambda lo_hi: out[lo_hi[0]:lo_hi[1]].sort(axis=1),
                  zip(bounds[:-1], bounds[1:], strict=True)))
    return out


def _by_sorted_blocks(PX, PY, reduce):
    """``reduce(SX, SY)`` over blocks of slices whose rows NumPy has sorted.

    Blocks of about ``_SORT_BLOCK_VALUES`` values per cloud bound the sorted copies;
    the sorts of a block run in a thread pool, the reduction in Numba.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numba

    L = PX.shape[0]
    step = max(1, _SORT_BLOCK_VALUES // max(PX.shape[1], PY.shape[1]))
    out = np.empty(L, dtype=np.float64)
    workers = numba.get_num_threads()
    with ThreadPoolExecutor(workers) as pool:
        for l0 in range(0, L, step):
            out[l0:l0 + step] = reduce(_sort_rows(PX[l0:l0 + step], pool, workers),
                                       _sort_rows(PY[l0:l0 + step], pool, workers))
    return out


def slice_wasserstein(xp, PX, PY, a, b, p):
    """W_p^p of each slice; see :func:`._ops._slice_wasserstein_reference`."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    if not (ua and ub):
        return _wasserstein_rows(np.ascontiguousarray(PX), np.ascontiguousarray(PY), wa, wb,
                                 ua, ub, float(p), False)
    return _by_sorted_blocks(PX, PY, lambda SX, SY: _wasserstein_rows(
        SX, SY, wa, wb, True, True, float(p), True))


def slice_energy(xp, PX, PY, a, b):
    """1-D energy distance of each slice; see :func:`._ops._slice_energy_reference`."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    # No NumPy presort here (as for Wasserstein): the merge walk dominates, measured
    # no faster at n = 2e5, L = 100.
    return _energy_rows(np.ascontiguousarray(PX), np.ascontiguousarray(PY), wa, wb, ua, ub)


def slice_energy_grad(xp, PX, PY, a, b):
    """Energy and its derivative in each projected x; see the reference in ``_ops``."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    return _energy_grad_rows(np.ascontiguousarray(PX), np.ascontiguousarray(PY), wa, wb,
                             ua, ub)
