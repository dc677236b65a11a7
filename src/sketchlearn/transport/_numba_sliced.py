"""Numba kernels for NumPy inputs: one range of slices per thread, sort and reduction fused.

Each function mirrors its array-API reference in :mod:`._sliced_ops` (same arguments, same
float64 results) and runs the slices in parallel with ``prange``: a thread sorts
each of its rows into buffers it allocated once (a radix sort on the bits of the
doubles, stable, so it also gives the weighted paths their permutation) and reduces
it (sort path, quantile merge, or pooled CDF walk) without any intermediate array of
the size of the whole problem.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from .._jit import FASTMATH, njit, on_row_blocks

# Fast-math without nnan/ninf, so NaN and infinity keep their meaning.


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _power(d, p):
    if p == 1.0:
        return d
    if p == 2.0:
        return d * d
    return d**p


# Radix sort of doubles. Sorting is the whole cost of a slice, and an LSD radix sort
# on order-preserving integer keys runs 3-4x faster than NumPy's sort at n = 1e5 (9
# against 40 ns a value here); up to _INSERTION_MAX values an insertion sort wins.
_SIGN = np.uint64(1) << np.uint64(63)
_INSERTION_MAX = 24
_MAX_DIGITS = 8  # 64 bits in digits of 8 bits (the narrowest width used)


@njit(cache=True, inline="always")
def _float_key(bits):
    """Unsigned key with the order of the double whose bits are ``bits``."""
    if bits == _SIGN:  # -0.0 sorts with +0.0
        bits = np.uint64(0)
    if bits & _SIGN:
        return ~bits
    return bits | _SIGN


@njit(cache=True, inline="always")
def _key_float_bits(key):
    if key & _SIGN:
        return key & ~_SIGN
    return ~key


@njit(cache=True)
def _sort_space(n):
    """Scratch for sorting rows of up to ``n`` values: two key buffers, two index
    buffers and the digit counts. One per thread, reused across rows (fresh large
    buffers would page-fault on every row)."""
    return (np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64),
            np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty((_MAX_DIGITS, 1 << 11), dtype=np.int64))


@njit(cache=True)
def _insertion_sort(row, out, with_order):
    """Stable insertion sort of a short row (see ``_sort_into``)."""
    n = row.shape[0]
    order = np.empty(n if with_order else 0, dtype=np.int64)
    for i in range(n):
        v = row[i]
        j = i
        while j > 0 and out[j - 1] > v:
            out[j] = out[j - 1]
            if with_order:
                order[j] = order[j - 1]
            j -= 1
        out[j] = v
        if with_order:
            order[j] = i
    return order


@njit(cache=True, boundscheck=False)
def _sort_into(row, out, space, with_order):
    """Sort ``row`` into ``out``; return the stable sorting permutation when
    ``with_order`` (else an empty array).

    LSD radix sort: 11-bit digits while the counts fit in cache (2^12 <= n <= 2^18),
    8-bit ones elsewhere (fewer counts to clear for short rows); a digit that all keys
    share costs no pass. Short rows take an insertion sort. No call of NumPy's sorts:
    compiling them took 4.5 of the 15 s of a first ``sliced_wasserstein`` call.
    """
    n = row.shape[0]
    if n <= _INSERTION_MAX:
        return _insertion_sort(row, out, with_order)
    bits = 11 if (1 << 12) <= n <= (1 << 18) else 8
    n_digits = (64 + bits - 1) // bits
    mask = np.uint64((1 << bits) - 1)
    src, dst = space[0][:n], space[1][:n]
    isrc, idst = space[2][:n], space[3][:n]
    counts = space[4]
    counts[:n_digits, :1 << bits] = 0
    raw = row.view(np.uint64)
    for i in range(n):
        k = _float_key(raw[i])
        src[i] = k
        for b in range(n_digits):
            counts[b, (k >> np.uint64(bits * b)) & mask] += 1
    if with_order:
        for i in range(n):
            isrc[i] = i
    for b in range(n_digits):
        c = counts[b]
        start = 0
        shared = False
        for j in range(1 << bits):
            cj = c[j]
            if cj == n:
                shared = True
                break
            c[j] = start
            start += cj
        if shared:
            continue
        shift = np.uint64(bits * b)
        for i in range(n):
            k = src[i]
            pos = c[(k >> shift) & mask]
            c[(k >> shift) & mask] = pos + 1
            dst[pos] = k
            if with_order:
                idst[pos] = isrc[i]
        src, dst = dst, src
        isrc, idst = idst, isrc
    res = out.view(np.uint64)
    for i in range(n):
        res[i] = _key_float_bits(src[i])
    if with_order:
        return isrc
    return np.empty(0, dtype=np.int64)


@njit(cache=True, fastmath=FASTMATH)
def _sorted_row(row, w, uniform, space, s, cdf):
    """Sort ``row`` into ``s``; for weights ``w`` also write the cumulative weights
    at the sorted values into ``cdf`` (left alone for uniform weights: the caller
    fills ``(i + 1) / n`` once)."""
    order = _sort_into(row, s, space, not uniform)
    if uniform:
        return
    acc = 0.0
    for i in range(row.shape[0]):
        acc += w[order[i]]
        cdf[i] = acc


@njit(cache=True)
def _pair_buffers(n, m):
    """One thread's buffers for sorting a slice of both clouds: sort scratch, sorted
    values and cumulative weights (filled with the uniform ones, see ``_sorted_row``)."""
    return (_sort_space(max(n, m)), np.empty(n, dtype=np.float64),
            np.empty(m, dtype=np.float64), (np.arange(n) + 1.0) / n, (np.arange(m) + 1.0) / m)


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _wasserstein_rows(PX, PY, a, b, uniform_a, uniform_b, p, bounds):
    L, n = PX.shape
    m = PY.shape[1]
    out = np.empty(L, dtype=np.float64)
    equal = uniform_a and uniform_b and n == m
    for t in prange(bounds.shape[0] - 1):
        space, sx, sy, cx, cy = _pair_buffers(n, m)
        for l in range(bounds[t], bounds[t + 1]):
            _sorted_row(PX[l], a, uniform_a, space, sx, cx)
            _sorted_row(PY[l], b, uniform_b, space, sy, cy)
            total = 0.0
            if equal:
                for i in range(n):
                    total += _power(abs(sx[i] - sy[i]), p)
                out[l] = total / n
                continue
            # Merge of the breakpoints of the two quantile functions.
            i = 0
            j = 0
            u = 0.0
            while i < n and j < m:
                nxt = min(cx[i], cy[j])
                if nxt > u:
                    total += (nxt - u) * _power(abs(sx[i] - sy[j]), p)
                    u = nxt
                if cx[i] <= cy[j]:
                    i += 1
                else:
                    j += 1
            # Rounding can leave one cumulative sum a hair below the other at the end.
            if i < n and j >= m:
                last = cx[n - 1]
                if last > u:
                    total += (last - u) * _power(abs(sx[i] - sy[m - 1]), p)
            elif j < m and i >= n:
                last = cy[m - 1]
                if last > u:
                    total += (last - u) * _power(abs(sx[n - 1] - sy[j]), p)
            out[l] = total
    return out


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _energy_rows(PX, PY, a, b, uniform_a, uniform_b, bounds):
    # Sort each sample on its own (cheaper than sorting the pooled one), then walk
    # the merged order accumulating D = F - G.
    L, n = PX.shape
    m = PY.shape[1]
    out = np.empty(L, dtype=np.float64)
    for t in prange(bounds.shape[0] - 1):
        space, sx, sy, cx, cy = _pair_buffers(n, m)
        for l in range(bounds[t], bounds[t + 1]):
            _sorted_row(PX[l], a, uniform_a, space, sx, cx)
            _sorted_row(PY[l], b, uniform_b, space, sy, cy)
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
def _energy_grad_rows(PX, PY, a, b, uniform_a, uniform_b, bounds):
    # Pooled sort of x and y, then one walk: D = F - G and the derivative in each x.
    L, n = PX.shape
    m = PY.shape[1]
    out = np.empty(L, dtype=np.float64)
    grad = np.empty((L, n), dtype=np.float64)
    for t in prange(bounds.shape[0] - 1):
        space = _sort_space(n + m)
        z = np.empty(n + m, dtype=np.float64)
        zs = np.empty(n + m, dtype=np.float64)
        for l in range(bounds[t], bounds[t + 1]):
            z[:n] = PX[l]
            z[n:] = PY[l]
            order = _sort_into(z, zs, space, True)
            D = 0.0
            total = 0.0
            for k in range(n + m):
                o = order[k]
                if o < n:
                    wk = 1.0 / n if uniform_a else a[o]
                else:
                    wk = -1.0 / m if uniform_b else -b[o - n]
                D += wk
                if k + 1 < n + m:
                    total += D * D * (zs[k + 1] - zs[k])
                if o < n:
                    grad[l, o] = -2.0 * wk * (2.0 * D - wk)
            out[l] = 2.0 * total
    return out, grad


def _thread_rows(L):
    """Slice ranges, one per thread: each thread allocates its sort buffers once.

    (Computed here: ``numba.get_num_threads`` inside a kernel stops it caching.)
    """
    parts = max(1, min(L, numba.get_num_threads()))
    return np.linspace(0, L, parts + 1).astype(np.int64)


def _float64_rows(P):
    """C-ordered float64 rows: the kernels sort on the bits of doubles."""
    return np.ascontiguousarray(P, dtype=np.float64)


def _weights(w, like):
    if w is None:
        return np.empty(0, dtype=np.float64), True
    return np.ascontiguousarray(w, dtype=np.float64), False


def slice_wasserstein(xp, PX, PY, a, b, p):
    """W_p^p of each slice; see :func:`._sliced_ops._slice_wasserstein_reference`."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    return _wasserstein_rows(_float64_rows(PX), _float64_rows(PY), wa, wb, ua, ub, float(p),
                             _thread_rows(PX.shape[0]))


def slice_energy(xp, PX, PY, a, b):
    """1-D energy distance of each slice; see :func:`._sliced_ops._slice_energy_reference`."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    return _energy_rows(_float64_rows(PX), _float64_rows(PY), wa, wb, ua, ub,
                        _thread_rows(PX.shape[0]))


def slice_energy_grad(xp, PX, PY, a, b):
    """Energy and its derivative in each projected x; see the reference in ``_ops``."""
    wa, ua = _weights(a, PX)
    wb, ub = _weights(b, PY)
    return _energy_grad_rows(_float64_rows(PX), _float64_rows(PY), wa, wb, ua, ub,
                             _thread_rows(PX.shape[0]))


# Products of at most this many multiply-adds run on the calling thread.
_SERIAL_PRODUCT = 2**20


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS, built once: limiting it through a kept
    controller takes microseconds; ``threadpool_limits`` looks the libraries up again on
    every call (0.3 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def slice_projection(xp, D, Z):
    """``D Z^T`` with one-thread BLAS, rows of ``D`` split over Numba's thread count;
    see :func:`._sliced._slice_projection_reference` for why."""
    k, n = D.shape[0], Z.shape[0]
    P = np.empty((k, n), dtype=np.result_type(D, Z))

    def rows(lo, hi):
        np.matmul(D[lo:hi], Z.T, out=P[lo:hi])

    with _blas_controller().limit(limits=1, user_api="blas"):
        on_row_blocks(rows, k, k * n * D.shape[1], serial_work=_SERIAL_PRODUCT)
    return P
