"""Residuals in doubled precision for iterative refinement (Gauss-Markov), as operations.

Each entry is a compensated sum (Ogita, Rump and Oishi's Dot2) of exact products
(Dekker's TwoProduct with Veltkamp's splitting) rounded once to float64, so the
residual of a nearly consistent least-squares problem keeps the digits that plain
float64 arithmetic cancels. The array-API references below are the oracles of the
Numba kernels in ``_numba.py`` and of the CUDA kernels in ``_cupy.py`` (fused
multiply-adds and round-to-nearest intrinsics, so NVRTC cannot contract them):
elementwise error-free transformations over rows, and column sums merged pairwise
with TwoSum.

The transformations need IEEE rounding of every operation; array libraries evaluate
each expression as written (no reassociation, no fused multiply-add in elementwise
code), which is what they rely on.
"""

from __future__ import annotations

import numpy as np

from .._array_api import Dispatch, move_to

__all__ = ["refinement_residuals_op", "inverse_refinement_residuals_op"]

_SPLITTER = 134217729.0  # 2^27 + 1: Veltkamp's split of a float64 into two halves
# Entries of the (rows, k, m) product blocks held at once (32 MiB in float64).
_BLOCK_ELEMENTS = 2**22


def _two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    """``a * b = p + e`` exactly (Dekker, with Veltkamp's splitting)."""
    p = a * b
    t = _SPLITTER * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLITTER * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _row_dots(xp, s, c, A, X):
    """Add ``-A X`` to the running (sum, error) pair ``(s, c)`` of each row, one column
    of ``A`` at a time, in the order of the Numba kernels; ``X`` is (k,) or (k, m)."""
    for q in range(A.shape[1]):
        a = A[:, q] if X.ndim == 1 else A[:, q:q + 1]
        b = -X[q] if X.ndim == 1 else -X[q:q + 1, :]
        h, e = _two_prod(a, b)
        s, d = _two_sum(s, h)
        c = c + (d + e)
    return s + c


def _column_sums(xp, S, C):
    """Compensated sums over axis 0 of the (sum, error) pairs ``(S, C)``, merged
    pairwise with TwoSum: ``(sum, error)`` of shape ``S.shape[1:]``."""
    while S.shape[0] > 1:
        half = S.shape[0] // 2
        s, d = _two_sum(S[:half, ...], S[half:2 * half, ...])
        c = C[:half, ...] + C[half:2 * half, ...] + d
        if S.shape[0] % 2:
            s = xp.concat([s, S[2 * half:, ...]], axis=0)
            c = xp.concat([c, C[2 * half:, ...]], axis=0)
        S, C = s, c
    if S.shape[0] == 0:
        return xp.zeros(S.shape[1:], dtype=S.dtype), xp.zeros(S.shape[1:], dtype=S.dtype)
    return S[0, ...], C[0, ...]


def _minus_at_r(xp, A, R, start_s, start_c):
    """``start - A^T R`` in doubled precision: (n, k) and (n, m) in, (k, m) out, over
    blocks of rows (each block's products and their errors summed with TwoSum, the
    blocks' pairs merged the same way)."""
    n, k = A.shape
    m = R.shape[1]
    rows = max(1, _BLOCK_ELEMENTS // max(1, k * m))
    s, c = start_s, start_c
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        h, e = _two_prod(A[i0:i1, :, None], -R[i0:i1, None, :])
        bs, bc = _column_sums(xp, h, e)
        s, d = _two_sum(s, bs)
        c = c + (d + bc)
    return s + c


def _refinement_residuals_reference(xp, A, y, r, x):
    """``f = y - r - A x`` and ``g = -A^T r`` as if in twice the float64 precision."""
    s, c = _two_sum(y, -r)
    f = _row_dots(xp, s, c, A, x)
    k = A.shape[1]
    zero = xp.zeros((k, 1), dtype=A.dtype)
    g = _minus_at_r(xp, A, xp.reshape(r, (-1, 1)), zero, zero)
    return f, xp.reshape(g, (k,))


def _inverse_refinement_residuals_reference(xp, A, R, X, Q):
    """``F = -R - A X``, ``G = -I - A^T R`` in doubled precision and ``Q^T F`` (plain
    float64): the residuals of the augmented systems whose solutions are the columns of
    ``(A^T A)^{-1}`` (see ``_numba.inverse_refinement_residuals``)."""
    F = _row_dots(xp, -R, xp.zeros_like(R), A, X)
    k, m = A.shape[1], X.shape[1]
    minus_eye = -xp.eye(k, m, dtype=A.dtype)
    G = _minus_at_r(xp, A, R, minus_eye, xp.zeros_like(minus_eye))
    return F, G, xp.matmul(xp.matrix_transpose(Q), F)


def _ill_conditioned(rng, n, k):
    """A polynomial design on [0, 1] (condition number about 10^k) and a nearly
    consistent response: the residual cancels most digits of y."""
    t = np.sort(rng.random(n))
    A = np.stack([t**j for j in range(k)], axis=1)
    coef = rng.normal(size=k)
    return A, A @ coef + 1e-9 * rng.normal(size=n), coef


def _refinement_examples(xp, rng):
    """A nearly consistent polynomial fit at its rounded solution (n = 200, k = 6, the
    residual iterate after one step), and a small well-conditioned one (n = 7)."""
    out = []
    for n, k in ((200, 6), (7, 3)):
        A, y, coef = _ill_conditioned(rng, n, k)
        x = np.linalg.lstsq(A, y, rcond=None)[0]
        r = 1e-10 * rng.normal(size=n)
        out.append((tuple(move_to(v, xp) for v in (A, y, r, x)), {}))
    return out


def _inverse_refinement_examples(xp, rng):
    """The columns of (A^T A)^{-1} from R^{-1} R^{-T} for a polynomial design (n = 150,
    k = 5) and a small square-ish one (n = 6, k = 4), with the Q of A's QR."""
    out = []
    for n, k in ((150, 5), (6, 4)):
        A = _ill_conditioned(rng, n, k)[0]
        Q, Rf = np.linalg.qr(A)
        Rinv = np.linalg.inv(Rf)
        X = Rinv @ Rinv.T
        R = -(Q @ Rinv.T)
        out.append((tuple(move_to(v, xp) for v in (A, R, X, np.ascontiguousarray(Q))), {}))
    return out


refinement_residuals_op = Dispatch(
    _refinement_residuals_reference,
    numba="sketchlearn.linear_model._numba:refinement_residuals",
    cupy="sketchlearn.linear_model._cupy:refinement_residuals",
    examples=_refinement_examples)
inverse_refinement_residuals_op = Dispatch(
    _inverse_refinement_residuals_reference,
    numba="sketchlearn.linear_model._numba:inverse_refinement_residuals",
    cupy="sketchlearn.linear_model._cupy:inverse_refinement_residuals",
    examples=_inverse_refinement_examples)
