"""Numba kernels of the sparse sketches (CountSketch and row sampling adjoints).

Both reduce to one primitive, a scatter-add of rows: ``out[idx[i]] += V[i]``.
Rows are processed in order; with several Numba threads the columns are split
into one contiguous range per thread, so no two threads write the same entry and
each reads its part of every row once.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .._jit import FASTMATH, njit

# fastmath without nnan / ninf (NaN and infinity keep their IEEE meaning).

_BLOCK = 64  # fewest columns per parallel task
# Below this many entries a parallel region costs more than it saves (2 cores).
_PARALLEL_MIN = 1 << 22


@njit(cache=True, fastmath=FASTMATH)
def _scatter_add_signed_serial(idx, signs, V, out):
    n, q = V.shape
    for i in range(n):
        r = idx[i]
        s = signs[i]
        for j in range(q):
            out[r, j] += s * V[i, j]


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _scatter_add_signed_parallel(idx, signs, V, out, n_blocks):
    n, q = V.shape
    width = (q + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        j0 = b * width
        j1 = min(q, j0 + width)
        for i in range(n):
            r = idx[i]
            s = signs[i]
            for j in range(j0, j1):
                out[r, j] += s * V[i, j]


def scatter_add_rows(xp, idx, weights, V, n_out):
    """``out[idx[i]] += weights[i] * V[i]`` for every row ``i``; ``out`` has ``n_out`` rows.

    Numba version of :func:`sketchlearn.sketching._core.scatter_add_rows_reference`.
    """
    V = np.ascontiguousarray(V)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    w = np.ascontiguousarray(weights, dtype=V.dtype)
    out = np.zeros((n_out, V.shape[1]), dtype=V.dtype)
    if V.shape[0] == 0:
        return out
    threads = numba.get_num_threads()
    if threads > 1 and V.shape[1] >= 2 * _BLOCK and V.size >= _PARALLEL_MIN:
        # one contiguous column range per thread: each reads its slice of every row once
        _scatter_add_signed_parallel(idx, w, V, out, min(threads, V.shape[1] // _BLOCK))
    else:
        _scatter_add_signed_serial(idx, w, V, out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def _fwht_row(x):
    N = x.shape[0]
    h = 1
    while h < N:
        for i in range(0, N, 2 * h):
            for j in range(i, i + h):
                a = x[j]
                b = x[j + h]
                x[j] = a + b
                x[j + h] = a - b
        h *= 2


@njit(cache=True, fastmath=FASTMATH)
def _fwht_serial(Xt, scale):
    for c in range(Xt.shape[0]):
        _fwht_row(Xt[c])
        for j in range(Xt.shape[1]):
            Xt[c, j] *= scale


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _fwht_parallel(Xt, scale):
    for c in prange(Xt.shape[0]):
        _fwht_row(Xt[c])
        for j in range(Xt.shape[1]):
            Xt[c, j] *= scale


def fwht(xp, X):
    """Orthonormal Walsh-Hadamard transform along axis 0 (Numba version of
    :func:`sketchlearn.sketching._core.fwht_reference`): in-place butterflies on a
    column-contiguous copy, columns in parallel for large inputs."""
    X = np.asarray(X)
    Xt = np.array(X.T, order="C", copy=True)  # (q, N): each column contiguous
    scale = 1.0 / np.sqrt(X.shape[0])
    if Xt.size >= _PARALLEL_MIN and Xt.shape[0] > 1:
        _fwht_parallel(Xt, scale)
    else:
        _fwht_serial(Xt, scale)
    return Xt.T
