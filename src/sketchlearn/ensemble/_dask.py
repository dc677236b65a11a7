"""Ridge ensembles and sketched least squares on tall Dask arrays.

Subsampled members (:class:`RidgeEnsemble`, :class:`RidgeEnsembleCV`) are fitted in
passes over the row chunks, each a mergeable summary (see :mod:`.._summaries`):

1. **Moments.** Member ``m``'s rows are keyed by global row (:func:`._core.member_plan`
   splits its ``k`` rows over fixed row blocks; :func:`._core.member_rows` draws a
   block's rows), so each chunk finds its share of every member without any ``O(n)``
   state. Per member, a chunk gives its row count, the mean of ``z = [x | y]`` and
   either its centred Gram matrix ``Z_c^T Z_c`` (merged by Chan, Golub and LeVeque's
   pairwise update: ``M2 = M2_a + M2_b + n_a n_b / n (mu_b - mu_a)(mu_b - mu_a)^T``,
   never raw sums minus ``n mu mu^T``) or, when a penalty is too small for a Gram
   matrix (``(lam_max + alpha) / (lam_min + alpha) > 1e7``, the in-memory rule, or
   ``alpha = 0``), the ``R``
   of a QR of ``Z_c`` (merged by QR of ``[R_a; R_b; sqrt(n_a n_b / n) (mu_b -
   mu_a)]``, the same update for the factor). One eigendecomposition of the Gram
   matrix (or SVD of ``R``'s ``X`` block) per member then gives every penalty, as
   :func:`._core.factorize_member` does in memory.
2. **Residuals.** Each chunk predicts with every member at every penalty and adds
   its share of the ``M x M`` Gram matrices of the residuals (one per penalty), and
   for ECV the out-of-bag sums of :func:`._core.ecv_sums` (the chunk redraws which
   of its rows each member holds). GCV, CGCV, ECV and the risk estimate of the fitted
   ensemble come from these sums.

:class:`SketchedLeastSquares` sketches ``[1 | X | y]`` in one pass (the chunk
products of :mod:`..sketching._dask`, which equal the in-memory sketch with the same
seed for "uniform", "countsketch", "gaussian" and "srht") together with the column
sums, then solves in memory.
"""

from __future__ import annotations

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import DEFAULT_SPLIT_EVERY, map_row_chunks, reduce_row_chunks
from ._core import (
    ecv_sums,
    factorize_member,
    gram_is_accurate,
    member_coefs,
    member_df,
    member_rows,
    predictions,
    residual_grams,
)

__all__ = ["fit_members_dask", "residual_sums_dask", "lazy_member_rows",
           "ensemble_residuals_dask", "sketched_lstsq_dask", "DASK_SKETCH_KINDS"]

DASK_SKETCH_KINDS = ("uniform", "countsketch", "gaussian", "srht")


def _not_on_dask(what, instead):
    return TypeError(f"{what} has no distributed version for Dask arrays; {instead}, or "
                     "compute the arrays first if they fit in memory (X.compute()).")


# ---------------------------------------------------------------------------
# pass 1: per-member moments
# ---------------------------------------------------------------------------

class MemberMoments:
    """Per member of every plan: ``(count, mean of [x | y], S)`` with ``S`` the centred
    Gram matrix (``mode="gram"``) or the ``R`` of a QR of the centred rows
    (``mode="qr"``). Without an intercept nothing is centred (the means stay 0)."""

    def __init__(self, plans, n, centre, mode):
        self.plans, self.n, self.centre, self.mode = plans, n, centre, mode

    def partial(self, Xb, yb, start, index):
        xp = get_namespace(Xb)
        # [X | y] in float64 once per chunk, shifted by the chunk's mean: a member's rows
        # then need one copy (the take), and its mean differs from the shift by its
        # sampling error only, so the Gram matrix's correction below cancels nothing
        Z = xp.concat([xp.astype(Xb, xp.float64), xp.astype(yb, xp.float64)[:, None]],
                      axis=1)
        shift = xp.mean(Z, axis=0) if self.centre and Z.shape[0] else None
        if shift is not None:
            Z -= shift
            shift = np.asarray(to_numpy(shift), dtype=np.float64)
        stop = start + Xb.shape[0]
        out = []
        for seed, counts in self.plans:
            for m in range(counts.shape[0]):
                rows = member_rows(seed, m, counts[m], self.n, start, stop) - start
                out.append(self._one(xp, Z, shift, rows))
        return out

    def _one(self, xp, Z, shift, rows):
        if rows.size == 0:
            return (0, None, None)
        Zm = xp.take(Z, move_to(rows, xp), axis=0)
        d = xp.mean(Zm, axis=0) if shift is not None else None
        if self.mode == "gram":
            S = Zm.T @ Zm
            if d is not None:  # centred at the member's own mean
                S = S - float(rows.size) * (d[:, None] * d[None, :])
        else:
            if d is not None:
                Zm = Zm - d
            # LAPACK's geqrf alone on the host; the reduced QR's R elsewhere
            S = np.linalg.qr(Zm, mode="r") if isinstance(Zm, np.ndarray) else \
                xp.linalg.qr(Zm, mode="reduced")[1]
        mu = np.zeros(Z.shape[1]) if d is None else \
            shift + np.asarray(to_numpy(d), dtype=np.float64)
        return (int(rows.size), mu, np.asarray(to_numpy(S), dtype=np.float64))

    def merge(self, *parts):
        out = list(parts[0])
        for part in parts[1:]:
            out = [self._merge2(a, b) for a, b in zip(out, part, strict=True)]
        return out

    def _merge2(self, a, b):
        if a[0] == 0:
            return b
        if b[0] == 0:
            return a
        (na, mua, Sa), (nb, mub, Sb) = a, b
        n = na + nb
        d = mub - mua
        w = na * nb / n
        mu = mua + d * (nb / n)
        if self.mode == "gram":
            S = Sa + Sb + w * np.outer(d, d)
        else:
            stack = [Sa, Sb] + ([np.sqrt(w) * d[None, :]] if self.centre else [])
            S = np.linalg.qr(np.concatenate(stack, axis=0), mode="r")
        return (n, mu, S)


def _factor(summary, p, centre, mode, eps):
    """:func:`._core.factorize_member`'s dict from one member's merged moments."""
    k, mu, S = summary
    if mode == "gram":
        lam, V = np.linalg.eigh(S[:p, :p])
        lam = np.where(lam > 0, lam, 0.0)
        W, c = V, V.T @ S[:p, p]
        tol = max(k, p) * eps
    else:
        U, s, Vt = np.linalg.svd(S[:, :p], full_matrices=False)
        lam, W, c = s * s, Vt.T, s * (U.T @ S[:, p])
        tol = (max(k, p) * eps) ** 2
    lam_max = float(lam.max()) if lam.size else 0.0
    lam_min = float(lam.min()) if lam.size else 0.0
    return {"x_mean": mu[:p], "y_mean": mu[p], "lam": lam, "W": W, "c": c,
            "rank_mask": lam > tol * lam_max, "lam_max": lam_max, "lam_min": lam_min,
            "fit_intercept": centre}


def fit_members_dask(X, y, alphas, plans, *, fit_intercept=True, split_every=None):
    """Every subsampled member of every plan (:func:`._core.member_plan`) for every
    alpha, from one pass over Dask ``X, y`` (two when a penalty is too small for the
    members' Gram matrices and ``alpha = 0`` was not in the grid).

    Returns NumPy float64 ``coefs (n_members, n_alphas, p)``, ``intercepts
    (n_members, n_alphas)`` and ``dfs (n_members, n_alphas)``, members in plan order.
    """
    split_every = split_every or DEFAULT_SPLIT_EVERY
    n, p = X.shape
    eps = float(np.finfo(np.float32 if X.dtype == np.float32 else np.float64).eps)
    alphas = np.asarray(alphas, dtype=np.float64)
    min_alpha = float(alphas.min())
    mode = "qr" if min_alpha == 0 else "gram"
    while True:
        moments = reduce_row_chunks(MemberMoments(plans, n, fit_intercept, mode), X, y,
                                    split_every=split_every)
        factors = [_factor(s, p, fit_intercept, mode, eps) for s in moments]
        if mode == "qr" or all(gram_is_accurate(f, min_alpha) for f in factors):
            break
        mode = "qr"  # the Gram matrix squares the condition number
    coefs, intercepts, dfs = [], [], []
    for f in factors:
        c, b = member_coefs(np, f, alphas)
        coefs.append(c)
        intercepts.append(b)
        dfs.append(member_df(np, f, alphas))
    return np.stack(coefs), np.stack(intercepts), np.stack(dfs)


# ---------------------------------------------------------------------------
# pass 2: residual Gram matrices (and out-of-bag sums)
# ---------------------------------------------------------------------------

class ResidualSums:
    """Per plan: the ``(A, M, M)`` Gram matrices of the members' residuals and, with
    ``oob``, the :func:`._core.ecv_sums` of their out-of-bag residuals."""

    def __init__(self, coefs, intercepts, plans, n, oob):
        self.coefs, self.intercepts = coefs, intercepts
        self.plans, self.n, self.oob = plans, n, oob

    def partial(self, Xb, yb, start, index):
        xp = get_namespace(Xb)
        X = xp.astype(Xb, xp.float64)
        yv = xp.astype(yb, xp.float64)
        out, first = [], 0
        for seed, counts in self.plans:
            M = counts.shape[0]
            C = move_to(self.coefs[first:first + M], xp)
            B = move_to(self.intercepts[first:first + M], xp)
            first += M
            E = yv[None, None, :] - predictions(xp, X, C, B)       # (M, A, rows)
            G = np.asarray(to_numpy(residual_grams(xp, E)), dtype=np.float64)
            sums = None
            if self.oob:
                rows = X.shape[0]
                oob = np.ones((rows, M), dtype=bool)
                for m in range(M):
                    oob[member_rows(seed, m, counts[m], self.n, start, start + rows) - start,
                        m] = False
                sums = ecv_sums(E, oob)
            out.append((G, sums))
        return out

    @staticmethod
    def merge(*parts):
        out = []
        for group in zip(*parts, strict=True):
            G = sum(g for g, _ in group[1:]) + group[0][0]
            sums = None
            if group[0][1] is not None:
                sums = tuple(sum(s[1][i] for s in group[1:]) + group[0][1][i]
                             for i in range(len(group[0][1])))
            out.append((G, sums))
        return out


def residual_sums_dask(X, y, coefs, intercepts, plans, *, oob=False, split_every=None):
    """One pass: per plan, ``(G (A, M, M), ecv sums or None)`` (see :class:`ResidualSums`)."""
    return reduce_row_chunks(ResidualSums(coefs, intercepts, plans, X.shape[0], oob), X, y,
                             split_every=split_every or DEFAULT_SPLIT_EVERY)


def ensemble_residuals_dask(X, y, coefs, intercepts, scale=1.0):
    """Lazy ``scale * (y - mean_m (X b_m + c_m))``, the ensemble's residuals (1-D Dask
    array chunked like ``X``'s rows)."""
    coefs = np.asarray(coefs, dtype=np.float64)
    intercepts = np.asarray(intercepts, dtype=np.float64)

    def block(Xb, yb):
        xp = get_namespace(Xb)
        F = xp.astype(Xb, xp.float64) @ move_to(coefs.T, xp) + move_to(intercepts, xp)
        return (xp.astype(yb, xp.float64) - xp.mean(F, axis=1)) * scale

    import dask.array as da

    return da.blockwise(block, "i", X, "ij", y, "i", dtype=np.float64, concatenate=True)


def lazy_member_rows(X, seed, m, counts):
    """Member ``m``'s sorted global rows as a lazy 1-D Dask array (length ``k`` when
    computed; drawn chunk by chunk, so unknown chunk sizes)."""
    import dask.array as da

    n = X.shape[0]

    def rows_in(Xb, start, index):
        return member_rows(seed, m, counts, n, start, start + Xb.shape[0])

    parts = map_row_chunks(rows_in, X)
    return da.concatenate([da.from_delayed(part, shape=(np.nan,), dtype=np.int64)
                           for part in parts])


# ---------------------------------------------------------------------------
# sketched least squares
# ---------------------------------------------------------------------------

class _SketchAndSums:
    """``S [1 | X | y]`` and the column sums of ``[1 | X | y]``, over row chunks."""

    def __init__(self, S):
        self.S = S

    def partial(self, Xb, yb, start, index):
        from ..sketching._dask import _chunk_product

        xp = get_namespace(Xb)
        Z = xp.concat([xp.ones((Xb.shape[0], 1), dtype=xp.float64),
                       xp.astype(Xb, xp.float64), xp.astype(yb, xp.float64)[:, None]], axis=1)
        return (_chunk_product(self.S, Z, start),
                np.asarray(to_numpy(xp.sum(Z, axis=0)), dtype=np.float64))

    @staticmethod
    def merge(*parts):
        return (sum(q[0] for q in parts[1:]) + parts[0][0],
                sum(q[1] for q in parts[1:]) + parts[0][1])


def sketched_lstsq_dask(X, y, kind, size, rng, fit_intercept, split_every=None):
    """Minimum-norm least squares on the row sketch ``(S X, S y)`` of Dask ``X, y``
    (centred with the full-data means when ``fit_intercept``): one pass, then an SVD
    in memory, as :class:`RidgeEnsemble` with ``alpha=0, n_estimators=1, sketch=kind``
    fits in memory with the same generator. Returns ``(coef (p,), intercept)``."""
    from ..sketching import make_sketch

    if kind not in DASK_SKETCH_KINDS:
        raise _not_on_dask(f"sketch={kind!r}",
                           f"use sketch= one of {DASK_SKETCH_KINDS} (each equals the "
                           "in-memory sketch with the same seed)")
    n, p = X.shape
    S = make_sketch(kind, size, n, random_state=rng)
    SZ, sums = reduce_row_chunks(_SketchAndSums(S), X, y,
                                 split_every=split_every or DEFAULT_SPLIT_EVERY)
    s1, SX, Sy = SZ[:, 0], SZ[:, 1:p + 1], SZ[:, p + 1]
    x_bar, y_bar = np.zeros(p), 0.0
    if fit_intercept:
        x_bar, y_bar = sums[1:p + 1] / n, float(sums[p + 1] / n)
        SX = SX - s1[:, None] * x_bar[None, :]
        Sy = Sy - s1 * y_bar
    f = factorize_member(np, SX, Sy, False, "svd")
    coef = member_coefs(np, f, [0.0])[0][0]
    return coef, y_bar - float(coef @ x_bar)
