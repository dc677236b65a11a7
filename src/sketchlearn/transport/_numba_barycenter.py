"""Numba loop of the scaling-domain entropic barycenter (iterative Bregman projections).

Mirrors :func:`._barycenter._scaling_barycenter_reference` in one compiled call: per
iteration the two products with the kernel go to BLAS through ``np.dot`` (so large
supports keep BLAS's speed and threads), and the elementwise work between them, the
division, the logarithms and the weighted sum, the exponential, the debiasing step and
the error, runs in fused loops over preallocated buffers. At small supports the
reference spends its time in the overhead of some 15 NumPy calls an iteration; here
they are gone. No ``prange``: the BLAS products carry the parallel work, and Numba's
OpenMP threads would spin against BLAS's (see :func:`.._jit.on_row_blocks`).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import FASTMATH, is_finite, njit
from ._barycenter import _CHECK_EVERY

__all__ = ["scaling_barycenter"]


@njit(cache=True, fastmath=FASTMATH)
def _error(V, KtU, new_bar, bar, have_bar):
    """The reference's check: the largest L1 distance of a column marginal
    ``V_k * KtU_k`` to ``new_bar``, then the L1 change of the barycenter when
    ``have_bar``, combined as Python's ``max(first, second)``; NaN as NumPy's max
    propagates it."""
    K, m = V.shape
    err = 0.0
    seen_nan = False
    for k in range(K):
        Vk = V[k]
        Tk = KtU[k]
        s = 0.0
        for j in range(m):
            s += abs(Vk[j] * Tk[j] - new_bar[j])
        if s > err:
            err = s
        elif not s <= err:  # NaN (no nnan flag: the comparisons keep their meaning)
            seen_nan = True
    if seen_nan:
        return math.nan
    if have_bar:
        s = 0.0
        for j in range(m):
            s += abs(new_bar[j] - bar[j])
        if s > err:
            err = s
    return err


@njit(cache=True)
def _copy_into(V_out, V, d_out, d):
    for k in range(V.shape[0]):
        for j in range(V.shape[1]):
            V_out[k, j] = V[k, j]
    for j in range(d.shape[0]):
        d_out[j] = d[j]


# error_model='numpy': a division by zero gives inf or NaN, as in the reference (and
# the float-range check sees it), instead of raising ZeroDivisionError.
@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _iterate(At, Kmat, w, debiased, tol, max_iter, check_every):
    K, n = At.shape
    m = Kmat.shape[1]
    KT = Kmat.T
    V = np.empty((K, m))
    d = np.empty(m)
    good_V = np.empty((K, m))
    good_d = np.empty(m)
    for j in range(m):
        d[j] = 1.0
        for k in range(K):
            V[k, j] = 1.0
    _copy_into(good_V, V, good_d, d)
    KV = np.empty((K, n))       # K v_k, then overwritten by u_k = a_k / (K v_k)
    KtU = np.empty((K, m))
    Kd = np.empty(m)
    bar = np.empty(m)           # the previous iteration's barycenter
    new_bar = np.empty(m)
    have_bar = False
    err = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        np.dot(V, KT, KV)
        for k in range(K):
            Ak = At[k]
            Uk = KV[k]
            for i in range(n):
                Uk[i] = Ak[i] / Uk[i]
        np.dot(KV, Kmat, KtU)
        for j in range(m):
            new_bar[j] = 0.0
        for k in range(K):
            wk = w[k]
            Tk = KtU[k]
            for j in range(m):
                new_bar[j] += wk * math.log(Tk[j])
        if debiased:
            for j in range(m):
                new_bar[j] = math.exp(new_bar[j]) * d[j]
        else:
            for j in range(m):
                new_bar[j] = math.exp(new_bar[j])
        if it % check_every == 0 or it == 1 or it == max_iter:
            err = _error(V, KtU, new_bar, bar, have_bar)
            if not is_finite(err):
                return it, err, 2, have_bar, bar, good_V, good_d
            _copy_into(good_V, V, good_d, d)
            if err <= tol:
                return it, err, 1, True, new_bar, V, d
        bar, new_bar = new_bar, bar
        have_bar = True
        for k in range(K):
            Vk = V[k]
            Tk = KtU[k]
            for j in range(m):
                Vk[j] = bar[j] / Tk[j]
        if debiased:
            np.dot(d, Kmat, Kd)
            for j in range(m):
                d[j] = math.sqrt(d[j] * bar[j] / Kd[j])
    return it, err, 0, have_bar, bar, V, d


def scaling_barycenter(xp, At, Kmat, w, debiased, tol, max_iter):
    """See :func:`._barycenter._scaling_barycenter_reference` (NumPy arrays; float64,
    C order inside)."""
    At = np.ascontiguousarray(At, dtype=np.float64)
    Kmat = np.ascontiguousarray(Kmat, dtype=np.float64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    it, err, status, have_bar, bar, V, d = _iterate(At, Kmat, w, bool(debiased),
                                                    float(tol), int(max_iter),
                                                    _CHECK_EVERY)
    return int(it), (bar if have_bar else None), float(err), V, d, status != 2
