"""The tridiagonal ridge path's O(r) steps as operations (references beside the Numba
kernels of ``_numba.py``).

A member's Gram matrix is reduced once to ``Q T Q^T`` (LAPACK ``?sytrd``); each
penalty then needs ``(T + alpha)^{-1} Q^T b`` and ``tr(T (T + alpha)^{-1})``. The
references below do it densely (a solve and an eigendecomposition of ``T``): O(r^3),
the oracle of the O(r) kernels.
"""

from __future__ import annotations

import numpy as np

from .._array_api import Dispatch, move_to

__all__ = ["gram_block_op", "tridiagonal_df_op", "tridiagonal_ridge_solve_op"]


def _dense_tridiagonal(xp, d, e):
    """``T`` with diagonal ``d`` and off-diagonal ``e`` (float64)."""
    m = d.shape[0]
    d64 = xp.astype(d, xp.float64)
    T = xp.eye(m, dtype=xp.float64) * d64[None, :]
    if m > 1:
        upper = xp.concat([xp.astype(e, xp.float64), xp.zeros(1, dtype=xp.float64)])
        U = xp.eye(m, k=1, dtype=xp.float64) * upper[:, None]
        T = T + U + xp.matrix_transpose(U)
    return T


def _tridiagonal_ridge_solve_reference(xp, d, e, b, alphas):
    """``(Z, bad)``: ``Z[:, j] = (T + alphas[j] I)^{-1} b`` (dtype of ``d``) and the first
    ``j`` whose ``T + alphas[j] I`` is not positive definite (then ``Z[:, j:]`` is NaN),
    else -1."""
    m = d.shape[0]
    T = _dense_tridiagonal(xp, d, e)
    rhs = xp.reshape(xp.astype(b, xp.float64), (m, 1))
    cols, bad = [], -1
    for j in range(alphas.shape[0]):
        S = T + float(alphas[j]) * xp.eye(m, dtype=xp.float64)
        try:
            L = xp.linalg.cholesky(S)
            positive = bool(xp.all(xp.isfinite(L)))
        except Exception:  # not positive definite: numpy's LinAlgError and kin
            positive = False
        if not positive:
            bad = j
            break
        cols.append(xp.linalg.solve(S, rhs))
    if bad >= 0:
        cols += [xp.full((m, 1), xp.nan, dtype=xp.float64)] * (alphas.shape[0] - bad)
    Z = xp.concat(cols, axis=1) if cols else xp.zeros((m, 0), dtype=xp.float64)
    return xp.astype(Z, d.dtype), bad


def _tridiagonal_df_reference(xp, d, e, alphas):
    """``tr(T (T + alpha)^{-1}) = m - alpha sum_i 1 / (lam_i + alpha)`` per alpha, from
    the eigenvalues ``lam`` of ``T`` (float64)."""
    m = d.shape[0]
    lam = xp.linalg.eigvalsh(_dense_tridiagonal(xp, d, e))
    a = xp.reshape(xp.astype(alphas, xp.float64), (-1, 1))
    return m - xp.sum(a / (lam[None, :] + a), axis=1)


def _gram_block_reference(xp, G, rows, centre):
    """``P G[rows][:, rows] P`` with ``P = I - 1 1^T / k`` when ``centre`` (the Gram
    matrix of the member's centred rows, from that of all rows), else ``P = I``."""
    B = xp.take(xp.take(G, rows, axis=0), rows, axis=1)
    if not centre or rows.shape[0] == 0:
        return B
    means = xp.mean(B, axis=1)
    return B - means[:, None] - means[None, :] + xp.mean(means)


def _tridiagonal(rng, m, dtype):
    d = (1.0 + 5.0 * rng.random(m)).astype(dtype)
    e = rng.normal(size=max(m - 1, 0)).astype(dtype)
    return d, e


def _tridiagonal_ridge_solve_examples(xp, rng):
    """Positive definite T + alpha for sizes 1, 2, 9, 60 in both dtypes, and penalties
    whose second leaves T + alpha negative definite (reported, NaN from there)."""
    out = []
    for dtype in (np.float64, np.float32):
        for m in (1, 2, 9, 60):
            d, e = _tridiagonal(rng, m, dtype)
            shift = max(0.0, -float(np.linalg.eigvalsh(
                np.diag(d.astype(float)) + np.diag(e.astype(float), 1)
                + np.diag(e.astype(float), -1))[0])) + 0.1
            alphas = shift * np.array([1.0, 3.0, 100.0])
            b = rng.normal(size=m).astype(dtype)
            out.append((tuple(move_to(v, xp) for v in (d, e, b, alphas)), {}))
    d, e = _tridiagonal(rng, 9, np.float64)
    b = rng.normal(size=9)
    alphas = np.array([10.0, -50.0, 1.0])
    out.append((tuple(move_to(v, xp) for v in (d, e, b, alphas)), {}))
    return out


def _tridiagonal_df_examples(xp, rng):
    """Sizes 1, 2, 9, 60 in both dtypes, with penalties from 0 (df = m) to 1000."""
    out = []
    for dtype in (np.float64, np.float32):
        for m in (1, 2, 9, 60):
            d, e = _tridiagonal(rng, m, dtype)
            d = d + 2.0 * np.abs(np.concatenate([e, [0.0]])).astype(dtype)  # definite
            alphas = np.array([0.0, 0.01, 1.0, 1000.0])
            out.append((tuple(move_to(v, xp) for v in (d, e, alphas)), {}))
    return out


def _gram_block_examples(xp, rng):
    """Members of 5 and 12 of 20 rows (k <= p and k > p), centred or not, both dtypes."""
    out = []
    for dtype in (np.float64, np.float32):
        X = rng.normal(size=(20, 8)).astype(dtype)
        G = X @ X.T
        for k in (5, 12):
            rows = np.sort(rng.choice(20, size=k, replace=False)).astype(np.int64)
            for centre in (True, False):
                out.append(((move_to(G, xp), move_to(rows, xp), centre), {}))
    return out


tridiagonal_ridge_solve_op = Dispatch(
    _tridiagonal_ridge_solve_reference,
    numba="sketchlearn.ensemble._numba:tridiagonal_ridge_solve",
    examples=_tridiagonal_ridge_solve_examples)
tridiagonal_df_op = Dispatch(
    _tridiagonal_df_reference,
    numba="sketchlearn.ensemble._numba:tridiagonal_df",
    examples=_tridiagonal_df_examples)
gram_block_op = Dispatch(
    _gram_block_reference,
    numba="sketchlearn.ensemble._numba:gram_block",
    examples=_gram_block_examples)
