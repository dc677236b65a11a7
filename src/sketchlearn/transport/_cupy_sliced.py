"""CuPy versions of the per-slice kernels (imported only when a CuPy array arrives).

The slices are sorted together on the device (``cupy.sort`` / ``cupy.argsort`` along
the last axis, a segmented radix sort), then reduced by a fused ``ReductionKernel``
(sort path) or by cumulative sums and row-wise gathers (merge and pooled paths),
all in float64 like the CPU kernels. Nothing leaves the device.
"""

from __future__ import annotations

from functools import cache

import cupy


@cache
def _abs_pow_mean():
    return cupy.ReductionKernel(
        "float64 x, float64 y, float64 p", "float64 out",
        "(p == 1.0 ? fabs(x - y) : (p == 2.0 ? (x - y) * (x - y) : pow(fabs(x - y), p)))",
        "a + b", "out = a / _in_ind.size() * _out_ind.size()", "0", "abs_pow_mean",
    )


def _sorted_with_cdf(P, w):
    L, n = P.shape
    P = P.astype(cupy.float64, copy=False)
    if w is None:
        s = cupy.sort(P, axis=1)
        c = cupy.broadcast_to(cupy.arange(1, n + 1, dtype=cupy.float64) / n, (L, n))
        return s, c
    order = cupy.argsort(P, axis=1)
    s = cupy.take_along_axis(P, order, axis=1)
    return s, cupy.cumsum(w.astype(cupy.float64)[order], axis=1)


def slice_wasserstein(xp, PX, PY, a, b, p):
    """W_p^p of each slice; see :func:`._sliced_ops._slice_wasserstein_reference`."""
    L, n = PX.shape
    m = PY.shape[1]
    if a is None and b is None and n == m:
        sx = cupy.sort(PX.astype(cupy.float64, copy=False), axis=1)
        sy = cupy.sort(PY.astype(cupy.float64, copy=False), axis=1)
        return _abs_pow_mean()(sx, sy, float(p), axis=1)
    sx, cx = _sorted_with_cdf(PX, a)
    sy, cy = _sorted_with_cdf(PY, b)
    u = cupy.concatenate([cx, cy], axis=1)
    lab = cupy.concatenate([cupy.ones((L, n), dtype=cupy.int64),
                            cupy.zeros((L, m), dtype=cupy.int64)], axis=1)
    order = cupy.argsort(u, axis=1)
    us = cupy.take_along_axis(u, order, axis=1)
    lab = cupy.take_along_axis(lab, order, axis=1)
    prev = cupy.concatenate([cupy.zeros((L, 1), dtype=cupy.float64), us[:, :-1]], axis=1)
    length = cupy.clip(us - prev, 0.0, None)
    ix = cupy.clip(cupy.cumsum(lab, axis=1) - lab, 0, n - 1)
    iy = cupy.clip(cupy.cumsum(1 - lab, axis=1) - (1 - lab), 0, m - 1)
    d = cupy.abs(cupy.take_along_axis(sx, ix, axis=1) - cupy.take_along_axis(sy, iy, axis=1))
    return cupy.sum(length * (d if p == 1 else d**p), axis=1)


def _pooled(PX, PY, a, b):
    n = PX.shape[1]
    m = PY.shape[1]
    z = cupy.concatenate([PX.astype(cupy.float64, copy=False),
                          PY.astype(cupy.float64, copy=False)], axis=1)
    wa = cupy.full((n,), 1.0 / n) if a is None else a.astype(cupy.float64)
    wb = cupy.full((m,), 1.0 / m) if b is None else b.astype(cupy.float64)
    w = cupy.concatenate([wa, -wb])
    order = cupy.argsort(z, axis=1)
    return cupy.take_along_axis(z, order, axis=1), w[order], order


def slice_energy(xp, PX, PY, a, b):
    """1-D energy distance of each slice; see :func:`._sliced_ops._slice_energy_reference`."""
    zs, ws, _ = _pooled(PX, PY, a, b)
    D = cupy.cumsum(ws, axis=1)
    return 2.0 * cupy.sum(D[:, :-1] ** 2 * cupy.diff(zs, axis=1), axis=1)


def slice_energy_grad(xp, PX, PY, a, b):
    """Energy and its derivative in each projected x; see the reference in ``_ops``."""
    n = PX.shape[1]
    zs, ws, order = _pooled(PX, PY, a, b)
    D = cupy.cumsum(ws, axis=1)
    energy = 2.0 * cupy.sum(D[:, :-1] ** 2 * cupy.diff(zs, axis=1), axis=1)
    g_sorted = -2.0 * ws * (2.0 * D - ws)
    inv = cupy.argsort(order, axis=1)  # inverse permutation of each row
    return energy, cupy.take_along_axis(g_sorted, inv, axis=1)[:, :n]
