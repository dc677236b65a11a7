"""Numba kernels of the tridiagonal ridge path (all ``nogil``: members run in threads).

A member's Gram matrix is reduced once to ``Q T Q^T`` (LAPACK ``?sytrd``, see
:mod:`._lapack`); every penalty then costs O(r) here: the solve ``(T + alpha)^{-1}``
and the degrees of freedom ``tr(T (T + alpha)^{-1})``. Arithmetic is in float64 for
float32 members too (it is O(r) per penalty).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit


@njit(cache=True, nogil=True)
def _tridiagonal_ridge_solve(d, e, b, alphas, Z):
    """``Z[:, j] = (T + alphas[j] I)^{-1} b`` for the symmetric tridiagonal ``T`` with
    diagonal ``d`` and off-diagonal ``e``, by ``L D L^T`` (as LAPACK ``?pttrf`` /
    ``?pttrs``). Returns the index of the first penalty whose matrix is not
    numerically positive definite (its column and those after it are NaN), or -1."""
    m = d.shape[0]
    piv = np.empty(m, dtype=np.float64)
    w = np.empty(m, dtype=np.float64)
    for j in range(alphas.shape[0]):
        a = alphas[j]
        piv[0] = d[0] + a
        if not piv[0] > 0.0:
            Z[:, j:] = np.nan
            return j
        w[0] = b[0]
        for i in range(1, m):
            lo = e[i - 1] / piv[i - 1]
            piv[i] = d[i] + a - lo * e[i - 1]
            if not piv[i] > 0.0:
                Z[:, j:] = np.nan
                return j
            w[i] = b[i] - lo * w[i - 1]
        z = w[m - 1] / piv[m - 1]
        Z[m - 1, j] = z
        for i in range(m - 2, -1, -1):
            z = (w[i] - e[i] * z) / piv[i]
            Z[i, j] = z
    return -1


@njit(cache=True, nogil=True)
def _tridiagonal_df(d, e, alphas, out):
    """``out[j] = tr(T (T + alphas[j])^{-1}) = r - alpha tr((T + alpha)^{-1})``.

    The diagonal of the inverse comes from the twisted factorisation: with forward
    pivots ``D+`` and backward pivots ``D-`` of ``S = T + alpha``,
    ``(S^{-1})_ii = 1 / (D+_i - e_i^2 / D-_{i+1})``, O(r) per penalty instead of the
    O(r^2) eigenvalues of ``T``."""
    m = d.shape[0]
    fwd = np.empty(m, dtype=np.float64)
    for j in range(alphas.shape[0]):
        a = alphas[j]
        fwd[0] = d[0] + a
        for i in range(1, m):
            fwd[i] = d[i] + a - e[i - 1] * e[i - 1] / fwd[i - 1]
        s = a / fwd[m - 1]
        bwd = d[m - 1] + a
        for i in range(m - 2, -1, -1):
            ee = e[i] * e[i] / bwd
            s += a / (fwd[i] - ee)
            bwd = d[i] + a - ee
        out[j] = m - s


@njit(cache=True, nogil=True)
def _gram_block(G, rows, centre, out):
    """``out = P G[rows][:, rows] P`` with ``P = I - 1 1^T / k`` when ``centre`` (the
    Gram matrix of the member's centred rows from that of all rows), else ``P = I``."""
    k = rows.shape[0]
    for a in range(k):
        ra = rows[a]
        for b in range(k):
            out[a, b] = G[ra, rows[b]]
    if centre and k > 0:
        means = np.zeros(k, dtype=np.float64)
        for a in range(k):
            acc = 0.0
            for b in range(k):
                acc += out[a, b]
            means[a] = acc / k
        grand = means.sum() / k
        for a in range(k):
            for b in range(k):
                out[a, b] = out[a, b] - means[a] - means[b] + grand


def tridiagonal_ridge_solve(xp, d, e, b, alphas):
    """See :func:`._tridiagonal._tridiagonal_ridge_solve_reference`; ``Z`` is Fortran
    ordered in the dtype of ``d`` (what ``?ormtr`` takes next)."""
    Z = np.empty((d.shape[0], alphas.shape[0]), dtype=d.dtype, order="F")
    bad = _tridiagonal_ridge_solve(d, e, b, np.asarray(alphas, dtype=np.float64), Z)
    return Z, int(bad)


def tridiagonal_df(xp, d, e, alphas):
    """See :func:`._tridiagonal._tridiagonal_df_reference`."""
    out = np.empty(alphas.shape[0], dtype=np.float64)
    _tridiagonal_df(d, e, np.asarray(alphas, dtype=np.float64), out)
    return out


def gram_block(xp, G, rows, centre):
    """See :func:`._tridiagonal._gram_block_reference`."""
    out = np.empty((rows.shape[0], rows.shape[0]), dtype=G.dtype)
    _gram_block(G, rows, bool(centre), out)
    return out
