"""Per-slice 1-D transport kernels: array-API references and their dispatch.

Every operation takes projected samples with one slice per row, ``PX`` of shape
``(L, n)`` and ``PY`` of shape ``(L, m)``, and the weights ``a`` (n,) and ``b`` (m,),
or ``None`` for uniform weights. Sums are accumulated in float64 whatever the
input dtype; results are float64 arrays of length ``L``.

1-D facts used (F, G the CDFs, F^-1, G^-1 the quantile functions):

* ``W_p^p = int_0^1 |F^-1(t) - G^-1(t)|^p dt``; for equal-size uniform samples it is
  ``mean_i |x_(i) - y_(i)|^p`` (sort path); otherwise the quantile functions are
  step functions whose breakpoints are the cumulative weights, and the integral is
  a sum over the merged breakpoints (merge path).
* Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'| = 2 int (F(t) - G(t))^2 dt``, a sum
  over the pooled sorted sample; its derivative in ``x_i`` is
  ``-2 a_i (D_k + D_{k-1})`` where ``D`` is ``F - G`` just after / before ``x_i``
  (position ``k`` in the pooled order).
"""

from __future__ import annotations

import numpy as np

from .._array_api import Dispatch, move_to

__all__ = ["slice_wasserstein_op", "slice_energy_op", "slice_energy_grad_op"]


def _take_rows(xp, A, idx):
    """A[l, idx[l, k]] for a 2-D A and 2-D integer idx (row-wise gather)."""
    L, n = A.shape
    offs = xp.reshape(xp.arange(L, dtype=idx.dtype) * n, (L, 1))
    flat = xp.reshape(A, (L * n,))
    return xp.reshape(xp.take(flat, xp.reshape(idx + offs, (-1,))), idx.shape)


def _sorted_with_cdf(xp, P, w):
    """Row-sorted values and the cumulative weights at each sorted value (float64)."""
    L, n = P.shape
    P = xp.astype(P, xp.float64)
    if w is None:
        s = xp.sort(P, axis=1)
        c = xp.reshape(xp.arange(1, n + 1, dtype=xp.float64) / n, (1, n))
        return s, xp.broadcast_to(c, (L, n))
    order = xp.argsort(P, axis=1, stable=True)
    s = _take_rows(xp, P, order)
    ww = xp.take(xp.astype(w, xp.float64), xp.reshape(order, (-1,)))
    return s, xp.cumulative_sum(xp.reshape(ww, (L, n)), axis=1)


def _slice_wasserstein_reference(xp, PX, PY, a, b, p):
    """W_p^p of each slice (row) between the weighted 1-D samples PX[l] and PY[l]."""
    L, n = PX.shape
    m = PY.shape[1]
    if a is None and b is None and n == m:
        d = xp.abs(xp.sort(xp.astype(PX, xp.float64), axis=1)
                   - xp.sort(xp.astype(PY, xp.float64), axis=1))
        return xp.mean(d if p == 1 else d**p, axis=1)
    sx, cx = _sorted_with_cdf(xp, PX, a)
    sy, cy = _sorted_with_cdf(xp, PY, b)
    u = xp.concat([cx, cy], axis=1)
    is_x = xp.concat([xp.ones((L, n), dtype=xp.int64), xp.zeros((L, m), dtype=xp.int64)], axis=1)
    order = xp.argsort(u, axis=1, stable=True)
    us = _take_rows(xp, u, order)
    lab = _take_rows(xp, is_x, order)
    prev = xp.concat([xp.zeros((L, 1), dtype=xp.float64), us[:, :-1]], axis=1)
    length = xp.clip(us - prev, 0.0, None)
    ix = xp.clip(xp.cumulative_sum(lab, axis=1) - lab, 0, n - 1)
    iy = xp.clip(xp.cumulative_sum(1 - lab, axis=1) - (1 - lab), 0, m - 1)
    d = xp.abs(_take_rows(xp, sx, ix) - _take_rows(xp, sy, iy))
    return xp.sum(length * (d if p == 1 else d**p), axis=1)


def _pooled(xp, PX, PY, a, b):
    """Pooled row-sorted values, their signed weights (+a, -b) and the order."""
    L, n = PX.shape
    m = PY.shape[1]
    z = xp.concat([xp.astype(PX, xp.float64), xp.astype(PY, xp.float64)], axis=1)
    wa = (xp.full((n,), 1.0 / n, dtype=xp.float64) if a is None
          else xp.astype(a, xp.float64))
    wb = (xp.full((m,), 1.0 / m, dtype=xp.float64) if b is None
          else xp.astype(b, xp.float64))
    w = xp.concat([wa, -wb])
    order = xp.argsort(z, axis=1, stable=True)
    zs = _take_rows(xp, z, order)
    ws = xp.reshape(xp.take(w, xp.reshape(order, (-1,))), (L, n + m))
    return zs, ws, order


def _slice_energy_reference(xp, PX, PY, a, b):
    """1-D energy distance 2 int (F - G)^2 of each slice (row)."""
    zs, ws, _ = _pooled(xp, PX, PY, a, b)
    D = xp.cumulative_sum(ws, axis=1)
    gaps = zs[:, 1:] - zs[:, :-1]
    return 2.0 * xp.sum(D[:, :-1] ** 2 * gaps, axis=1)


def _slice_energy_grad_reference(xp, PX, PY, a, b):
    """Per-slice energy and its derivative in each projected x_i, shape (L, n)."""
    L, n = PX.shape
    zs, ws, order = _pooled(xp, PX, PY, a, b)
    D = xp.cumulative_sum(ws, axis=1)
    gaps = zs[:, 1:] - zs[:, :-1]
    energy = 2.0 * xp.sum(D[:, :-1] ** 2 * gaps, axis=1)
    g_sorted = -2.0 * ws * (2.0 * D - ws)  # -2 w (D_k + D_{k-1}); used at x positions only
    # Scatter back to the original order: inverse permutation of each row.
    inv = xp.argsort(order, axis=1)
    g = _take_rows(xp, g_sorted, inv)[:, :n]
    return energy, g


# Example slices: (n, m, weights, dtype, ties, transposed); weights "none", "both" or
# "b" (the second sample alone weighted); transposed: the exact 1-D distance passes
# X.T itself (a view) instead of projections. 3000 points take the Numba kernels'
# radix sort.
_SLICE_CASES = (
    (40, 40, "none", np.float64, False, False),  # equal sizes, uniform: the sort path
    (40, 27, "none", np.float64, False, False),  # unequal sizes: the merge path
    (40, 33, "both", np.float64, False, False),
    (40, 40, "b", np.float64, True, False),      # tied values: a stable order decides
    (36, 29, "both", np.float32, False, False),
    (30, 30, "none", np.float32, False, True),
    (3000, 2000, "b", np.float64, False, False),
)


def _slice_examples(xp, rng, powers=(None,)):
    """Projections ``D X^T`` of two clouds on unit directions, one slice per row, as
    the sliced distances make them (directions in the clouds' dtype), or ``X.T``
    itself; probability weights of the clouds' dtype or None. The power ``p``, where
    the operation takes one, cycles through ``powers``."""
    out = []
    for k, (n, m, weights, dtype, ties, transposed) in enumerate(_SLICE_CASES):
        X = rng.normal(size=(n, 3)).astype(dtype)
        Y = (rng.normal(size=(m, 3)) * np.array([1.0, 2.0, 0.5]) + 0.7).astype(dtype)
        if ties:
            X, Y = np.round(X, 1), np.round(Y, 1)
        if transposed:
            PX, PY = move_to(X, xp).T, move_to(Y, xp).T
        else:
            D = rng.normal(size=(2 if n > 100 else 4, 3))
            D = (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(dtype)
            PX, PY = move_to(D @ X.T, xp), move_to(D @ Y.T, xp)
        a = rng.random(n).astype(dtype) if weights == "both" else None
        b = rng.random(m).astype(dtype) if weights != "none" else None
        a, b = (None if w is None else move_to(w / w.sum(), xp) for w in (a, b))
        p = powers[k % len(powers)]
        out.append(((PX, PY, a, b) + (() if p is None else (p,)), {}))
    return out


def _slice_wasserstein_examples(xp, rng):
    return _slice_examples(xp, rng, powers=(2.0, 1.0, 3.5))


def _slice_energy_examples(xp, rng):
    return _slice_examples(xp, rng)


slice_wasserstein_op = Dispatch(
    _slice_wasserstein_reference,
    numba="sketchlearn.transport._numba_sliced:slice_wasserstein",
    cupy="sketchlearn.transport._cupy_sliced:slice_wasserstein",
    examples=_slice_wasserstein_examples,
)
slice_energy_op = Dispatch(
    _slice_energy_reference,
    numba="sketchlearn.transport._numba_sliced:slice_energy",
    cupy="sketchlearn.transport._cupy_sliced:slice_energy",
    examples=_slice_energy_examples,
)
slice_energy_grad_op = Dispatch(
    _slice_energy_grad_reference,
    numba="sketchlearn.transport._numba_sliced:slice_energy_grad",
    cupy="sketchlearn.transport._cupy_sliced:slice_energy_grad",
    examples=_slice_energy_examples,
)
