"""Gauss-Markov least squares (OLS, WLS) on tall Dask arrays, to the in-memory digits.

Never the normal equations: summing ``X^T X`` over chunks squares the condition
number (NIST's Filip loses every digit). Instead, pass by pass over the row chunks:

1. **TSQR** of the whitened ``[v | X | y]`` (``v`` the intercept column): each chunk's
   ``R``, merged up a tree by QR of stacked ``R`` factors (:class:`.._summaries.TSQR`).
   ``R`` gives everything the in-memory path takes from its factorization: the column
   scales (``R``'s column norms are ``X``'s), the column pivoting (a pivoted QR of the
   small scaled ``R``: ``A D P = Q R D P = (Q Q') R'``), the rank, ``Q^T y`` and the
   centered total sum of squares. The tree keeps each merge's small orthogonal
   factor, so chunk ``i``'s rows of the basis ``Q Q'`` are ``Q_i W_i``: its local
   ``Q`` refactored in a later pass times a ``k x k`` matrix sent with the task.
2. **Iterative refinement** of the augmented system ``[I A; A^T 0] [r; x] = [y; 0]``,
   as :func:`._gauss_markov._refine` does in memory. Where the design allows it
   (:func:`_gram_cond_limit`: ``k eps^2 cond^2 <= 1e-10``, NIST Filip included), on
   the driver with no further pass: the first pass also sums ``[v | X | y]^T [v | X |
   y]`` as unrounded (high, low) pairs of exact products (:func:`gram_pair_op`), so
   ``A^T (y - A x)`` is known to doubled precision for any ``x``
   (:func:`_gram_refinement`), and so are ``(A^T A)^{-1}`` (:func:`_gram_inverse`)
   and the residual sum of squares. Otherwise one pass a step: each chunk forms its
   residuals in doubled precision and returns ``-A_i^T r_i`` as an unrounded
   (high, low) pair; the pairs are merged by compensated addition
   (:func:`.._summaries.add_pairs`), so the sum over chunks keeps its digits whatever
   the chunking. The residual iterate ``r`` is never stored: each pass rebuilds its
   chunk's share from the corrections so far (a few ``O(n_i k)`` products).
3. In the passes of step 2, for designs too ill-conditioned for the in-memory fast
   path (condition estimate above 1e3), ``(A^T A)^{-1}`` is corrected for the
   rounding of the factorization in the first refinement pass
   (:class:`_FactorResidual`): the same digits as the in-memory iterative refinement
   of its columns, without its passes.
4. Each refinement pass sums the squared residuals (and, for White's HC0-HC3
   covariances, the ``k x k`` meat ``Q^T diag(e^2) Q``, which always takes passes).

Per-row outputs (residuals, leverages, the basis) are lazy Dask arrays.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import scipy.linalg
from sklearn.utils import Bunch

from .._array_api import Dispatch, move_to, to_numpy
from .._dask import (
    aligned_vector,
    map_row_chunks,
    memory_for_cache,
    persist_items,
    persist_row_chunks,
    reduce_row_chunks,
    row_chunked,
)
from .._summaries import TSQR, ChunkQ, add_pairs
from .._validation import user_stacklevel
from ._gauss_markov import (
    _FAST_QR_RCOND,
    _MAX_REFINE_STEPS,
    _block_factors,
    _BlockDiagonalWhitener,
    _rank_tolerance,
    ar1_from_sums,
    feasible_gls_done,
    is_block_list,
    unbiased_sigma2,
    warn_rank_deficient,
)
from ._refinement import (
    _column_sums,
    _ill_conditioned,
    _row_dots,
    _two_prod,
    refinement_residuals_op,
)
from ._refinement import _two_sum as _two_sum_ref
from ._robust import check_cov_kwds

__all__ = ["gauss_markov_dask"]

DASK_COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


# ---------------------------------------------------------------------------
# the per-chunk operation
# ---------------------------------------------------------------------------

def _chunk_refinement_sums_reference(xp, A, B, R, X, Q):
    """One row chunk's share of a refinement step of ``[I A; A^T 0] [R; X] = [B; C]``:
    ``F = B - R - A X`` (doubled precision, rounded once per entry), ``-A^T R`` as an
    unrounded renormalised (high, low) pair, and ``Q^T F`` in float64."""
    s, c = _two_sum_ref(B, -R)
    F = _row_dots(xp, s, c, A, X)
    h, e = _two_prod(A[:, :, None], -R[:, None, :])
    S, C = _column_sums(xp, h, e)
    high, low = _two_sum_ref(S, C)
    return F, high, low, xp.matmul(xp.matrix_transpose(Q), F)


def _chunk_refinement_examples(xp, rng):
    out = []
    for n, k, m in ((40, 4, 1), (33, 5, 5)):
        A = _ill_conditioned(rng, n, k)[0]
        Q = np.linalg.qr(A)[0]
        X = rng.normal(size=(k, m))
        R = rng.normal(size=(n, m)) * 1e-3
        B = A @ X + R if m == 1 else np.zeros((n, m))
        out.append(tuple(move_to(np.ascontiguousarray(a), xp) for a in (A, B, R, X, Q)))
    return [(args, {}) for args in out]


chunk_refinement_sums_op = Dispatch(
    _chunk_refinement_sums_reference,
    numba="sketchlearn.linear_model._numba:chunk_refinement_sums",
    examples=_chunk_refinement_examples)


def _product_residual_reference(xp, B, A, X):
    """``B - A X`` in doubled precision, rounded once per entry: (n, m), (n, k), (k, m)."""
    return _row_dots(xp, B, xp.zeros_like(B), A, X)


def _product_residual_examples(xp, rng):
    """A chunk against its QR (``A - Q R``: R upper triangular, the use here), a full
    ``X``, and a square triangular inverse (``I - R R^{-1}``)."""
    A = _ill_conditioned(rng, 30, 5)[0]
    Q, R = np.linalg.qr(A)
    Rinv = np.linalg.inv(R)
    cases = ((A, Q, R), (rng.normal(size=(7, 3)), rng.normal(size=(7, 4)),
                         rng.normal(size=(4, 3))), (np.eye(5), R, Rinv))
    return [(tuple(move_to(np.ascontiguousarray(a), xp) for a in case), {})
            for case in cases]


product_residual_op = Dispatch(
    _product_residual_reference,
    numba="sketchlearn.linear_model._numba:product_residual",
    examples=_product_residual_examples)


_GRAM_BLOCK_ROWS = 256  # as _numba.GRAM_BLOCK_ROWS: the same sums in the same order


def _gram_pair_reference(xp, M):
    """``M^T M`` as an unrounded (high, low) pair: per entry, the exact products of
    blocks of rows summed with TwoSum (Dot2), each block's pair folded into the totals
    the same way. ``M`` (n, m) in, two (m, m) out."""
    m = M.shape[1]
    total_s = xp.zeros((m, m), dtype=M.dtype)
    total_c = xp.zeros((m, m), dtype=M.dtype)
    for i0 in range(0, M.shape[0], _GRAM_BLOCK_ROWS):
        s = xp.zeros((m, m), dtype=M.dtype)
        c = xp.zeros((m, m), dtype=M.dtype)
        for i in range(i0, min(M.shape[0], i0 + _GRAM_BLOCK_ROWS)):
            row = M[i, :]
            h, e = _two_prod(row[:, None], row[None, :])
            s, d = _two_sum_ref(s, h)
            c = c + (d + e)
        total_s, d = _two_sum_ref(total_s, s)
        total_c = total_c + (c + d)
    return _two_sum_ref(total_s, total_c)


def _gram_pair_examples(xp, rng):
    """A polynomial design with its response (the first pass's ``[v | X | y]``) over
    more than one block of rows, and a short one."""
    out = []
    for n, k in ((600, 5), (9, 3)):
        A, y, _ = _ill_conditioned(rng, n, k)
        out.append(((move_to(np.ascontiguousarray(np.column_stack([A, y])), xp),), {}))
    return out


gram_pair_op = Dispatch(
    _gram_pair_reference,
    numba="sketchlearn.linear_model._numba:gram_pair",
    examples=_gram_pair_examples)


# ---------------------------------------------------------------------------
# chunk functions (module level: they are pickled to the workers)
# ---------------------------------------------------------------------------

def _whitened(Xb, yb, wb, start, item=None, *, intercept, rho=None):
    """The chunk's whitened ``[v | X | y]`` in float64 (``v``: the intercept column).

    With ``rho`` (AR(1) errors) the Prais-Winsten transform: row ``t`` minus ``rho``
    times row ``t - 1``, which for the chunk's first row is ``item``, the raw ``[X |
    y]`` row before the chunk (None for the first chunk, whose first row is scaled by
    ``sqrt(1 - rho^2)`` instead). Without ``rho``, an ``item`` is the chunk's
    block-diagonal whitener (its chunk holds whole blocks).
    """
    # CuPy chunks come to the host: the doubled-precision refinement kernels and the
    # reflector products (ormqr) that give the certified digits are CPU code
    X, y = _host(Xb), _host(yb)
    rows = f"rows {start} to {start + X.shape[0] - 1}"
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError(f"X or y contains NaN or infinity ({rows}); drop or impute those "
                         "rows first.")
    cols = [X, y[:, None]]
    if wb is not None:
        w = _host(wb)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"sample_weight must be finite and non-negative ({rows}).")
        sw = np.sqrt(w)
        cols = [X * sw[:, None], (y * sw)[:, None]]
        v = sw
    else:
        v = np.ones(X.shape[0])
    if intercept:
        cols.insert(0, v[:, None])
    M = np.concatenate(cols, axis=1)
    if rho is not None and M.shape[0]:
        out = np.empty_like(M)
        out[1:] = M[1:] - rho * M[:-1]
        if item is None:  # the series' first row
            out[0] = math.sqrt(1.0 - rho**2) * M[0]
        else:
            out[0] = M[0] - rho * np.concatenate([[1.0] if intercept else [], item])
        M = out
    elif item is not None:
        M = item(M)
    return np.ascontiguousarray(M)


def _host(block):
    """A chunk's block as a float64 NumPy array (a CuPy block is copied to the host)."""
    return np.asarray(to_numpy(block), dtype=np.float64)


class _Layout:
    """How a chunk's whitened rows map to the factored, scaled, pivoted matrix (small:
    it travels with every task; each chunk's ``W_i`` is passed to its own task)."""

    def __init__(self, intercept, scale, order, k, Rf=None, rho=None):
        self.intercept = intercept
        self.scale = scale
        self.order = order
        self.k = k
        self.Rf = Rf  # set: apply the basis as A Rf^{-1}, no QR (well-conditioned designs)
        self.rho = rho  # AR(1) whitening

    @property
    def column_scale(self):
        """The divisor of each whitened column of ``[v | X]`` (1 for the intercept's),
        in the user's order: ``A = ([v | X] / column_scale)[:, order]``."""
        return np.concatenate([np.ones(int(self.intercept)), self.scale])

    def chunk(self, blocks, start, item):
        """``(A_i, y_i, basis)``: the chunk's factored columns, response and rows of the
        basis (its local ``Q`` times ``W``, applied without being formed; or ``A_i
        Rf^{-1}``). ``blocks``: the chunk's ``(X, y, w)`` blocks, or its
        :class:`_KeptChunk`; ``item``: the chunk's ``(W, whitening item)``."""
        W, whitening = item
        if len(blocks) == 1:
            kept = blocks[0]
            M, factor = kept.M, kept.factor
        else:
            M = _whitened(*blocks, start, whitening, intercept=self.intercept, rho=self.rho)
            factor = None
        # take, not A[:, order]: that is Fortran-ordered, and the kernels want rows
        A = np.take(M, self.order, axis=1)
        A /= self.column_scale[self.order]
        if self.Rf is not None:
            return A, M[:, self.k], _SeminormalBasis(A, self.Rf)
        return A, M[:, self.k], _ChunkBasis(factor or ChunkQ(M), W)


class _KeptChunk:
    """A chunk's whitened ``[v | X | y]`` and its QR, computed in the first pass and
    kept in its worker's memory for the refinement passes, when the data fit (see
    :func:`_fit_once`): those passes then neither read nor refactor the chunk."""

    def __init__(self, Xb, yb, wb, start, index, whitening, intercept, rho):
        self.M = _whitened(Xb, yb, wb, start, whitening, intercept=intercept, rho=rho)
        self.factor = ChunkQ(self.M)


class _FirstPass:
    """The first pass: each chunk's ``R`` (a :class:`.._summaries.TSQR` summary) and,
    with ``gram``, the chunk's ``M^T M`` for ``M = [v | X | y]`` whitened, as an
    unrounded (high, low) pair (:func:`_gram_pair_reference`), summed over the chunks
    by compensated addition (see :func:`_gram_refinement`)."""

    def __init__(self, intercept, rho, gram):
        self.intercept, self.rho, self.gram = intercept, rho, gram
        self.tsqr = TSQR(_given_factor)

    def partial(self, *args):
        *blocks, start, index, item = args
        if len(blocks) == 1:  # a _KeptChunk
            M, factor = blocks[0].M, blocks[0].factor
        else:
            M = _whitened(*blocks, start, item, intercept=self.intercept, rho=self.rho)
            factor = ChunkQ(M)
        return (self.tsqr.partial(factor, start, index),
                gram_pair_op(np, M) if self.gram else None)

    @staticmethod
    def merge(*parts):
        gram = None if parts[0][1] is None else add_pairs(*[p[1] for p in parts])
        return TSQR.merge(*[p[0] for p in parts]), gram

    # the TSQR tree comes to the driver node by node, not up the tree (see TSQR)
    @staticmethod
    def node_part(merged):
        return TSQR.node_part(merged[0])

    @staticmethod
    def assemble(root, tree):
        return TSQR.assemble(root[0], tree), root[1]


def _given_factor(factor, start):
    """A TSQR ``build`` for a chunk factored already."""
    return factor


class _SeminormalBasis:
    """A chunk's rows of the basis as ``A_i Rf^{-1}`` (no QR of the chunk).

    Refinement with this basis is the corrected seminormal-equations iteration
    (Bjorck): each step shrinks the error by about ``eps cond^2`` instead of ``eps
    cond``, so it is used only where ``cond`` (of the column-scaled factor) is below
    1e3, where two steps reach rounding level as with the true ``Q``.
    """

    def __init__(self, A, Rf):
        self.A, self.Rf = A, Rf

    def rmatmul(self, F):
        return scipy.linalg.solve_triangular(self.Rf, self.A.T @ F, trans="T")

    def matmul(self, D):
        return self.A @ scipy.linalg.solve_triangular(self.Rf, D)

    def explicit(self):
        return np.ascontiguousarray(
            scipy.linalg.solve_triangular(self.Rf, self.A.T, trans="T").T)


class _ChunkBasis:
    """A chunk's rows ``Q_i W`` of the global basis, as products."""

    def __init__(self, factor, W):
        self.factor, self.W = factor, W

    def rmatmul(self, F):
        """``(Q_i W)^T F``."""
        return self.W.T @ self.factor.rmatmul(F)

    def matmul(self, D):
        """``Q_i W D``."""
        return self.factor.matmul(self.W @ D)

    def explicit(self):
        return np.ascontiguousarray(self.factor.matmul(self.W))


def _sums(A, B, R, X, basis):
    """``chunk_refinement_sums`` with ``Q^T F`` from the basis' reflectors."""
    F, high, low, _ = chunk_refinement_sums_op(np, A, B, R, X, _NO_COLUMNS)
    return F, high, low, basis.rmatmul(F)


_NO_COLUMNS = np.zeros((0, 0))


class _System:
    """One refinement iteration of ``[I A; A^T 0] [R; X] = [B; C]`` on the driver:
    the current ``X`` and the previous step ``(X_prev, D_prev)``, from which each chunk
    rebuilds its share of the residual iterate, ``R = B - A X_prev - Q D_prev`` (the
    in-memory recursion ``R <- R + F - Q D`` with ``F = B - R - A X_prev`` collapsed:
    nothing per row is stored between passes)."""

    def __init__(self, X):
        self.X = X
        self.prev = None  # (X_prev, D_prev) once a correction was taken
        self.last = np.inf
        self.steps = 0
        self.active = True

    def residual_iterate(self, A, B, basis):
        if self.prev is None:
            X = self.X
        else:
            X = self.prev[0]
        # B - A X in doubled precision (rounded once), then the correction's share
        F = product_residual_op(np, B, A, X)
        return F if self.prev is None else F - basis.matmul(self.prev[1])


class _RefinementPass:
    """One pass over the row chunks: a refinement step of the solution and/or of the
    columns of ``(A^T A)^{-1}`` (whichever is still active), and the statistics at
    the current solution (squared residuals, the HC meat)."""

    def __init__(self, layout, solution, inverse, cov_type):
        self.layout, self.solution, self.inverse = layout, solution, inverse
        self.cov_type = cov_type

    def partial(self, *args):
        *blocks, start, index, item = args
        A, y, basis = self.layout.chunk(blocks, start, item)
        out = {}
        sol = self.solution
        B = y[:, None]
        r = sol.residual_iterate(A, B, basis)
        if sol.active:
            _, high, low, QtF = _sums(A, B, r, sol.X, basis)
            out["solution"] = ((high, low), QtF)
        r = r[:, 0]
        # y - A x at the current solution: on the first pass the iterate is exactly that
        wres = r if sol.prev is None else product_residual_op(np, B, A, sol.X)[:, 0]
        out["rss"], out["refined"] = float(wres @ wres), float(r @ r)
        if self.cov_type != "nonrobust":
            Qf = basis.explicit()
            h = np.sum(Qf * Qf, axis=1)
            out["n_one"] = int(np.sum(h >= 1.0 - 1e3 * np.finfo(np.float64).eps))
            e = r
            with np.errstate(divide="ignore", invalid="ignore"):
                if self.cov_type == "HC2":
                    e = e / np.sqrt(1.0 - h)
                elif self.cov_type == "HC3":
                    e = e / (1.0 - h)
                S = Qf * e[:, None]
            out["meat"] = S.T @ S
        if self.inverse is not None and self.inverse.active:
            out["inverse"] = self.inverse.partial(A)
        return out

    @staticmethod
    def merge(*parts):
        out = {}
        for key in parts[0]:
            values = [p[key] for p in parts]
            if key == "solution":
                out[key] = (add_pairs(*[v[0] for v in values]), sum(v[1] for v in values))
            elif key == "inverse":
                out[key] = tuple(sum(v[i] for v in values) for i in range(3))
            else:
                out[key] = sum(values[1:], values[0])
        return out


def _correction(system, Rf, pair, QtF):
    """The step ``D`` and correction ``dX`` of one refinement iteration from the merged
    sums: ``G = -A^T R`` rounded once, ``H = Rf^{-T} G``, ``D = Q^T F - H``."""
    high, low = pair
    G = high + low
    H = scipy.linalg.solve_triangular(Rf, G, trans="T")
    D = QtF - H
    return D, scipy.linalg.solve_triangular(Rf, D)


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------

def _not_distributed(what, instead):
    return TypeError(f"gauss_markov on Dask arrays does not support {what} yet; {instead}")


def gauss_markov_dask(X, y, *, sigma=None, sample_weight=None, fit_intercept=True, rho=None,
                      rcond=None, refine=True, max_iter=20, tol=1e-8, cov_type="nonrobust",
                      cov_kwds=None, use_t=None, solver="auto", split_every=None):
    """:func:`~sketchlearn.linear_model.gauss_markov` for a tall Dask array ``X``.

    Same arguments and result (see there); OLS, WLS (``sample_weight``), block-diagonal
    GLS (``sigma`` a list of diagonal blocks: the row chunks are moved onto block
    boundaries) and AR(1) errors (``sigma="ar1"``, ``rho`` known or estimated by
    feasible GLS) with the ``"nonrobust"`` and HC0-HC3 covariances. ``residuals``,
    ``whitened_residuals``, ``leverage`` and ``basis`` are lazy Dask arrays chunked
    like the (block-aligned) rows of ``X``.
    """
    from .._dask import DEFAULT_SPLIT_EVERY, is_dask_array

    if not is_dask_array(X):
        raise TypeError("y or sample_weight is a Dask array but X is not: pass X as a Dask "
                        "array too (dask.array.from_array(X, chunks=(rows, -1))), or "
                        "compute the others (y.compute()).")
    ar1 = isinstance(sigma, str) and sigma == "ar1"
    if callable(sigma) and not ar1:
        sigma = sigma(int(X.shape[0]))
    blocks = is_block_list(sigma)
    if sigma is not None and not (ar1 or blocks):
        raise _not_distributed(
            "a covariance matrix or vector sigma=", "use sample_weight= for WLS (a vector "
            "of variances v is sample_weight=1/v), a list of diagonal blocks for a "
            "block-diagonal covariance, sigma='ar1' for AR(1) errors, or fit the computed "
            "arrays (X.compute(), y.compute()) if they fit in memory.")
    if blocks and sample_weight is not None:
        raise ValueError("sample_weight cannot be combined with a block-diagonal sigma; "
                         "fold the weights into its blocks (block / sqrt(outer(w, w))).")
    if ar1 and sample_weight is not None:
        raise ValueError("sample_weight cannot be combined with sigma='ar1'; pass one of "
                         "them.")
    if solver == "svd":
        raise _not_distributed(
            "solver='svd'", "the distributed fit is a column-pivoted QR (TSQR), which "
            "solver='auto' or 'pivoted-qr' selects.")
    if cov_type not in DASK_COV_TYPES:
        raise _not_distributed(
            f"cov_type={cov_type!r}", f"use one of {DASK_COV_TYPES}, or fit the computed "
            "arrays if they fit in memory.")
    if use_t is not None and not isinstance(use_t, (bool, np.bool_)):
        raise TypeError(f"use_t must be None, True or False, got {use_t!r}.")
    split_every = split_every or DEFAULT_SPLIT_EVERY
    X = row_chunked(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got a Dask array of shape {X.shape}.")
    y = aligned_vector(y, X, "y")
    w = aligned_vector(sample_weight, X, "sample_weight")
    n, p = (int(s) for s in X.shape)
    if n == 0 or p == 0 and not fit_intercept:
        raise ValueError(f"X is empty (shape {X.shape}).")
    check_cov_kwds(cov_type, cov_kwds, n)
    fit = functools.partial(_fit_once, fit_intercept=fit_intercept, rcond=rcond,
                            refine=refine, cov_type=cov_type, use_t=use_t,
                            split_every=split_every)
    if blocks:
        X, y, whiteners = _block_whiteners(sigma, X, y)
        return fit(X, y, None, whiteners, None)
    if not ar1:
        return fit(X, y, w, [None] * len(X.chunks[0]), None)
    # AR(1): each chunk's first row is whitened with the raw row before it (one pass
    # gathers them); feasible GLS iterates rho from the residuals, as in memory
    import dask
    import dask.array as da

    starts = np.cumsum(X.chunks[0])[:-1]
    before_X, before_y = dask.compute(X[starts - 1], y[starts - 1])
    boundary = [None] + [np.concatenate([bx, [by]]).astype(np.float64)
                         for bx, by in zip(before_X, before_y, strict=True)]
    if rho is not None:
        res = fit(X, y, w, boundary, float(rho))
        res.n_passes += 1
        return res
    rho_now, n_iter, passes = 0.0, 0, 1
    while True:
        res = fit(X, y, w, boundary, rho_now)
        n_iter, passes = n_iter + 1, passes + res.n_passes + 1
        r = res.residuals.astype(np.float64)
        lagged, squares = dask.compute(da.sum(r[1:] * r[:-1]), da.sum(r * r))
        rho_new = ar1_from_sums(float(lagged), float(squares))
        if feasible_gls_done(rho_new, rho_now, tol, n_iter, max_iter):
            break
        rho_now = rho_new
    res.rho, res.n_iter, res.n_passes = rho_now, n_iter, passes
    return res


def _block_whiteners(blocks, X, y):
    """``X`` and ``y`` with every row-chunk boundary on a boundary of ``sigma``'s
    diagonal blocks (a chunk's end moved to the end of the block it cuts, if it cuts
    one), and each chunk's block-diagonal whitener. The blocks' Cholesky factors
    are computed here, once; each travels with its own chunk's task only."""
    n = int(X.shape[0])
    factors = _block_factors(blocks, n, xp=np, dtype=np.float64)
    ends = np.cumsum([L.shape[0] for L in factors])
    chunk_ends = np.unique(ends[np.searchsorted(ends, np.cumsum(X.chunks[0]))])
    chunks = tuple(int(c) for c in np.diff(np.concatenate([[0], chunk_ends])))
    if chunks != X.chunks[0]:
        X, y = X.rechunk({0: chunks}), y.rechunk({0: chunks})
    first = np.searchsorted(ends, np.concatenate([[0], chunk_ends[:-1]]), side="right")
    last = np.searchsorted(ends, chunk_ends, side="right")
    return X, y, [_BlockDiagonalWhitener(factors[a:b], np) for a, b in zip(first, last,
                                                                           strict=True)]


def _fit_once(X, y, w, boundary, rho, *, fit_intercept, rcond, refine, cov_type, use_t,
              split_every):
    """One fit of the whitened model in 2-4 passes (``rho``: AR(1) whitening, else
    None); ``boundary``: each chunk's whitening item (see :func:`_whitened`): the raw
    ``[X | y]`` row before it for AR(1), its block whitener for a block-diagonal sigma,
    else None."""
    n, p = (int(s) for s in X.shape)
    out_dtype = np.float32 if X.dtype == np.float32 else np.float64
    off = int(bool(fit_intercept))
    k = p + off
    eps = float(np.finfo(np.float64).eps)

    # pass 1: TSQR of the whitened [v | X | y]. When the whitened chunks and their
    # factors fit in a quarter of the memory, they stay where they were computed, and
    # the refinement passes start from them (no reading, no refactoring); otherwise
    # each pass reads and factors its chunk again, and memory is bounded by a chunk
    kept = None
    more_passes = refine or cov_type != "nonrobust"
    # the Gram matrix for refining on the driver (see _gram_refinement)
    first = _FirstPass(bool(fit_intercept), rho, gram=bool(refine) and cov_type == "nonrobust")
    if more_passes and 3.0 * n * (k + 1) * 8 <= memory_for_cache():  # M, reflectors, Q
        kept = persist_row_chunks(_KeptChunk, X, y, w, per_chunk=boundary,
                                  context=(bool(fit_intercept), rho))
        (R_aug, tree), gram = reduce_row_chunks(first, kept=kept, per_chunk=boundary,
                                                split_every=split_every)
    else:
        (R_aug, tree), gram = reduce_row_chunks(first, X, y, w, per_chunk=boundary,
                                                split_every=split_every)
    source = {"kept": kept} if kept is not None else {}
    arrays = () if kept is not None else (X, y, w)
    full = np.zeros((k + 1, k + 1))
    full[:R_aug.shape[0]] = R_aug
    R, z = full[:k, :k], full[:k, k]
    y_norm2 = float(np.sum(full[:, k] ** 2))
    tss = float(np.sum(full[off:, k] ** 2))

    # scales (R's column norms are X's), then the trailing block pivoted as in memory
    norms = np.linalg.norm(R[:, off:], axis=0)
    scale = np.where(norms > 0, 2.0 ** np.round(np.log2(np.where(norms > 0, norms, 1.0))), 1.0)
    Rs = R.copy()
    Rs[:, off:] /= scale
    Qp = np.eye(k)
    Rf = Rs.copy()
    order = np.arange(k)
    if p:
        Q22, R22, piv = scipy.linalg.qr(Rs[off:, off:], pivoting=True)
        Qp[off:, off:] = Q22
        Rf[:off, off:] = Rs[:off, off:][:, piv]
        Rf[off:, off:] = R22
        order[off:] = off + piv
    tol_rank = _rank_tolerance(rcond, n, p, X.dtype)
    rank = off + int(np.sum(np.abs(np.diag(Rf)[off:]) > tol_rank))
    # each chunk's factor from its local Q to its rows of the pivoted basis Q Qp
    leaf = TSQR.leaf_transforms(tree)
    W = [leaf[i][:, :k] @ Qp for i in range(len(leaf))]
    layout = _Layout(bool(fit_intercept), scale, order, k, rho=rho)
    items = list(zip(W, boundary, strict=True))
    zf = Qp.T @ z

    Rinv = None
    inverse = None
    cond = np.inf
    if rank == k:
        Rinv = scipy.linalg.solve_triangular(Rf, np.eye(k))
        x = Rinv @ zf
        R2 = Rf[off:, off:]
        well = True
        if p:
            (trcon,) = scipy.linalg.get_lapack_funcs(("trcon",), (R2,))
            rc, info = trcon(R2, norm="1", uplo="U", diag="N")
            well = info == 0 and rc > max(100 * tol_rank, _FAST_QR_RCOND)
        # cond of the factored matrix with every column scaled alike (the intercept
        # column too): below 1e3 the refinement needs no QR of the chunks. A step
        # shrinks the error by about k eps cond (k eps cond^2 without the QR)
        Rn = Rf / np.linalg.norm(Rf, axis=0) if k else Rf
        rc, info = (scipy.linalg.get_lapack_funcs(("trcon",), (Rn,))[0](
            Rn, norm="1", uplo="U", diag="N") if k else (1.0, 0))
        cond = 1.0 / rc if info == 0 and rc > 0 else np.inf
        contraction = k * eps * cond
        if well and k and cond < 1.0 / _FAST_QR_RCOND:
            layout.Rf = Rf
            contraction = k * eps * cond**2
        if refine and refine != "coef" and k and not well and cov_type == "nonrobust":
            inverse = _FactorResidual(Rf)
    else:
        # minimum norm in the user's units, as in memory: from the unscaled, unpivoted R
        x_raw, cov_raw = _minimum_norm(R, z, rank, off)
        unscale = layout.column_scale
        x = (x_raw * unscale)[order]
        cov_pivoted = (cov_raw * (unscale[:, None] * unscale[None, :]))[np.ix_(order, order)]
        warn_rank_deficient(rank, k, tol_rank)
    solution = _System(x[:, None])
    solution.active = bool(refine and rank == k and k)

    # refinement passes, the statistics of the current solution computed in each (as
    # in memory, a step stops its system when it no longer shrinks or is below
    # rounding level; a step accepted below rounding level leaves the statistics of
    # the pass before it, a difference below the rounding of the coefficients)
    passes = 1  # the TSQR
    # Below the Gram matrix's condition limit, the refinement runs on the driver from
    # the first pass's sums. Without refinement, a full-rank fit with the non-robust
    # covariance needs no second pass either: the last diagonal entry of the R of
    # [A | y] is the residual norm
    use_gram = gram is not None and solution.active and cond <= _gram_cond_limit(k)
    one_pass = use_gram or (not (solution.active or inverse is not None) and rank == k
                            and cov_type == "nonrobust")
    if use_gram:
        G = _pivoted_gram(gram, layout)
        solution.X, stats = _gram_refinement(G, Rf, solution.X)
        if inverse is not None:
            inverse.X = _gram_inverse(G, Rf, Rinv)
    elif one_pass:
        stats = {"rss": float(full[k, k] ** 2), "refined": float(full[k, k] ** 2)}
    # the lazy outputs keep the items as values (they may be computed on another
    # scheduler later); the passes refer to them on the workers
    pass_items = None if one_pass else persist_items(items)
    while not one_pass:
        sums = reduce_row_chunks(_RefinementPass(layout, solution, inverse, cov_type),
                                 *arrays, per_chunk=pass_items, split_every=split_every,
                                 **source)
        passes += kept is None  # a pass over kept chunks reads no data
        stats = sums
        if solution.active:
            D, dX = _correction(solution, Rf, *sums["solution"])
            size = float(np.max(np.abs(dX)))
            if not np.isfinite(size) or size >= solution.last:
                solution.active = False
            else:
                solution.prev = (solution.X, D)
                solution.X = solution.X + dX
                solution.last, solution.steps = size, solution.steps + 1
                # stop when this step, or the next one (contraction times this one), is
                # below rounding level: the next pass would only confirm it (and give
                # the statistics at the new solution; they differ by less than rounding
                # unless the fit is nearly exact, which therefore takes that pass)
                tiny = 4 * eps * float(np.max(np.abs(solution.X)))
                exact_fit = sums["refined"] <= 1e-16 * y_norm2
                if (size <= tiny or (size * contraction <= tiny and not exact_fit)
                        or solution.steps >= _MAX_REFINE_STEPS):
                    solution.active = False
        if inverse is not None and inverse.active:
            inverse.finish(Rinv, *sums["inverse"])
        if not (solution.active or (inverse is not None and inverse.active)):
            break
    x = solution.X[:, 0]
    if rank == k:
        cov_pivoted = Rinv @ Rinv.T if inverse is None else inverse.X

    dof = n - rank
    rss = min(stats["rss"], stats["refined"])
    sigma2 = unbiased_sigma2(rss, n, rank)

    theta = np.empty(k)
    theta[order] = x
    cov = np.empty((k, k))
    cov[np.ix_(order, order)] = cov_pivoted
    unscale = layout.column_scale
    theta = theta / unscale
    if cov_type == "nonrobust":
        cov_full = sigma2 * cov / (unscale[:, None] * unscale[None, :])
    else:
        if stats["n_one"] and cov_type in ("HC2", "HC3"):
            warnings.warn(f"{stats['n_one']} observation(s) have leverage 1: {cov_type} "
                          "divides by 1 - h and its covariance is infinite or NaN there. Use "
                          "cov_type='HC0' or 'HC1', or drop those rows.", RuntimeWarning,
                          stacklevel=user_stacklevel())
        factor = np.empty((k, k))
        factor[order, :] = Rinv if Rinv is not None else np.linalg.pinv(Rf)
        factor /= unscale[:, None]
        full_cov = factor @ stats["meat"] @ factor.T
        if cov_type == "HC1":
            full_cov = full_cov * (n / dof if dof > 0 else float("nan"))
        cov_full = (full_cov + full_cov.T) / 2
    coef = theta[off:]
    intercept = float(theta[0]) if off else 0.0
    use_t_ = (cov_type == "nonrobust") if use_t is None else bool(use_t)
    lazy = _lazy_outputs(layout, items, X, y, w, coef, intercept, x, rank)
    cov = cov_full[off:, off:]
    return Bunch(
        coef=coef.astype(out_dtype),
        intercept=intercept,
        cov_params=cov.astype(out_dtype),
        bse=np.sqrt(np.abs(np.diag(cov))).astype(out_dtype),
        intercept_bse=math.sqrt(abs(float(cov_full[0, 0]))) if off else 0.0,
        intercept_cov=cov_full[0, 1:].astype(out_dtype) if off else None,
        cov_params_full=cov_full,
        cov_type=cov_type,
        use_t=use_t_,
        df_inference=dof,
        sigma2=sigma2,
        rank=rank,
        dof_resid=dof,
        rho=rho,
        n_iter=1,
        whitened_tss=tss,
        whitened_rss=rss,
        n_passes=passes,
        **lazy,
    )


def _minimum_norm(Rf, zf, rank, off):
    """Minimum-norm solution of a rank-deficient design and its unit covariance, from
    the triangular factor alone (``A = Q Rf``, ``zf = Q^T y``); the intercept (first
    column when ``off``) is not part of the norm."""
    k = Rf.shape[0]
    x = np.zeros(k)
    cov = np.zeros((k, k))
    R22, z2 = Rf[off:, off:], zf[off:]
    U, s, Vt = np.linalg.svd(R22)
    r = rank - off
    U, s, Vt = U[:, :r], s[:r], Vt[:r]
    b = Vt.T @ ((U.T @ z2) / s)
    Vs = Vt.T / s
    cov_b = Vs @ Vs.T
    x[off:] = b
    cov[off:, off:] = cov_b
    if off:
        r00, r0 = Rf[0, 0], Rf[0, off:]
        x[0] = (zf[0] - r0 @ b) / r00
        cov[0, off:] = cov[off:, 0] = -(r0 @ cov_b) / r00
        cov[0, 0] = (1.0 + r0 @ cov_b @ r0) / r00**2
    return x, cov


class _FactorResidual:
    """``(A^T A)^{-1}`` to working precision from one pass over the chunks.

    ``Rf^{-1} Rf^{-T}`` from the TSQR's ``Rf`` is off by about ``cond eps`` (the
    factorization's rounding). For any ``Q``, with ``D = A - Q Rf``, ``A^T A = Rf^T (G
    + Z + Z^T + Y) Rf`` exactly, where ``G = Q^T Q``, ``Z = Q^T D Rf^{-1}`` and ``Y =
    Rf^{-T} D^T D Rf^{-1}``; so ``(A^T A)^{-1} = Rf^{-1} M^{-1} Rf^{-T}`` with ``M = G
    + Z + Z^T + Y``. Each chunk takes ``Q_i = A_i Rf^{-1}`` (a triangular solve: no QR
    of the chunk), which a backward-stable ``Rf`` makes orthonormal to about ``cond
    eps``, so ``M`` is within that of ``I`` and its float64 sums are exact enough;
    ``D_i`` is formed in doubled precision (``O(n_i k^2 / 2)``: ``Rf`` is triangular)
    and the chunk sends the ``k x k`` sums ``Q_i^T Q_i``, ``Q_i^T D_i`` and ``D_i^T
    D_i``; ``Rf^{-1}`` is refined on the driver. Measured against the in-memory
    iterative refinement of the inverse (:func:`._gauss_markov._refine_inverse`: two
    ``O(n k^2)`` doubled products a step, a pass each): the same standard errors to
    15 digits on NIST Filip, Longley, Wampler 4-5 and a condition-1e8 design, with
    an eighth of the doubled-precision work and no pass of its own (its pass is the
    first coefficient refinement's).
    """

    def __init__(self, Rf):
        self.Rf = Rf
        self.active = True
        self.X = None

    def partial(self, A):
        Q = np.ascontiguousarray(
            scipy.linalg.solve_triangular(self.Rf, A.T, trans="T").T)
        D = product_residual_op(np, A, Q, self.Rf)
        return Q.T @ Q, Q.T @ D, D.T @ D

    def finish(self, Rinv, G, QtD, DtD):
        Rinv = _refined_inverse(self.Rf, Rinv)
        Z = QtD @ Rinv
        self.X = _inverse_through(Rinv, G + Z + Z.T + Rinv.T @ DtD @ Rinv)
        self.active = False


def _refined_inverse(Rf, Rinv):
    """``Rf^{-1}`` to working precision: iterative refinement with the residual ``I -
    Rf R^{-1}`` in doubled precision."""
    eye = np.eye(Rf.shape[0])
    eps = float(np.finfo(np.float64).eps)
    last = np.inf
    for _ in range(_MAX_REFINE_STEPS):
        step = Rinv @ product_residual_op(np, eye, Rf, Rinv)
        size = float(np.max(np.abs(step))) / max(float(np.max(np.abs(Rinv))), 1e-300)
        if not np.isfinite(size) or size >= last:
            break
        Rinv, last = Rinv + step, size
        if size <= 4 * eps:
            break
    return Rinv


def _inverse_through(Rinv, M):
    """``(A^T A)^{-1} = Rf^{-1} M^{-1} Rf^{-T}`` for ``A^T A = Rf^T M Rf``, symmetric."""
    C = Rinv @ np.linalg.solve(M, Rinv.T)
    return (C + C.T) / 2


# ---------------------------------------------------------------------------
# refinement on the driver, from the first pass's Gram matrix
# ---------------------------------------------------------------------------

def _gram_cond_limit(k):
    """The largest condition number (of the column-scaled factor) at which the
    refinement runs from the first pass's Gram matrix.

    Its entries are exact to about ``eps^2`` (relative to ``|A|^T |A|``: Dot2 sums of
    exact products); the normal equations' condition is ``cond^2``, so the solution
    they pin down differs from the in-memory refined one by about ``k eps^2 cond^2``,
    relative (measured: 1-3 times that on random designs of condition 1e8-1e12). The
    limit keeps that at 1e-10, the agreement the distributed path promises: NIST
    Filip, cond 6e9, is inside (measured 1e-12; storing its data in float64 alone
    moves the solution by 1e-6). Beyond it, refinement takes passes over the chunks
    with their ``Q``, whose steps need only ``k eps cond < 1``.
    """
    return math.sqrt(1e-10 / max(k, 1)) / float(np.finfo(np.float64).eps)


def _pivoted_gram(gram, layout):
    """The first pass's Gram pair of ``[v | X | y]`` as that of ``[A | y]``: columns in
    the factored order and scaled as ``A`` (powers of two: exact)."""
    hi, lo = gram
    k = layout.k
    index = np.concatenate([layout.order, [k]])
    d = np.append(layout.column_scale, 1.0)[index]
    d = d[:, None] * d[None, :]
    return hi[np.ix_(index, index)] / d, lo[np.ix_(index, index)] / d


def _gram_times(G, u):
    """``G u`` for a Gram pair ``G`` in doubled precision: each entry's exact products
    summed with TwoSum, as a (sum, error) pair of vectors."""
    hi, lo = G
    h, e = _two_prod(hi, u[None, :])
    return _column_sums(np, h.T, (e + lo * u[None, :]).T)


def _gram_refinement(G, Rf, x):
    """Iterative refinement of the least-squares solution ``x`` (k, 1) of ``A``, ``y``
    from the Gram pair ``G`` of ``[A | y]`` alone, on the driver: no pass over the data.

    A step solves ``Rf^T Rf dx = A^T (y - A x)`` with the right-hand side, ``G [-x;
    1]``'s first ``k`` entries, in doubled precision. ``Rf^T Rf`` differs from ``A^T
    A`` by the factorization's rounding, so a step shrinks the error by about ``k eps
    cond``, as a refinement step with ``Q`` does; the fixed point is the solution of
    the normal equations held to doubled precision (see :func:`_gram_cond_limit`).
    Returns ``x`` and the statistics a refinement pass would give: the residual sum
    of squares, ``[-x; 1]^T G [-x; 1]`` in doubled precision.
    """
    k = Rf.shape[0]
    eps = float(np.finfo(np.float64).eps)
    x = x[:, 0].copy()
    last = np.inf
    for _ in range(_MAX_REFINE_STEPS):
        s, c = _gram_times(G, np.concatenate([-x, [1.0]]))
        g = (s + c)[:k]
        dx = scipy.linalg.solve_triangular(Rf, scipy.linalg.solve_triangular(
            Rf, g, trans="T"))
        size = float(np.max(np.abs(dx)))
        if not np.isfinite(size) or size >= last:
            break
        x, last = x + dx, size
        if size <= 4 * eps * float(np.max(np.abs(x))):
            break
    u = np.concatenate([-x, [1.0]])
    s, c = _gram_times(G, u)
    h, e = _two_prod(u, s)
    total, error = _column_sums(np, h, e + u * c)
    rss = max(float(total + error), 0.0)
    return x[:, None], {"rss": rss, "refined": rss}


def _gram_inverse(G, Rf, Rinv):
    """``(A^T A)^{-1}`` to working precision from the Gram pair: ``A^T A = Rf^T M Rf``
    with ``M = I + Rf^{-T} E Rf^{-1}`` and ``E = A^T A - Rf^T Rf`` in doubled precision
    (about ``cond eps`` in size, as :class:`_FactorResidual`'s ``M - I``)."""
    hi, lo = G
    k = Rf.shape[0]
    E = product_residual_op(np, hi[:k, :k], np.ascontiguousarray(Rf.T), Rf) + lo[:k, :k]
    Rinv = _refined_inverse(Rf, Rinv)
    return _inverse_through(Rinv, np.eye(k) + Rinv.T @ E @ Rinv)


def _lazy_outputs(layout, items, X, y, w, coef, intercept, x, rank):
    """Per-row results as lazy Dask arrays chunked like ``X``'s rows (``items``: each
    chunk's ``(W, row before)``, see :meth:`_Layout.chunk`)."""
    import dask.array as da

    dtype = X.dtype

    def residuals(Xb, yb, start, index):
        return (_host(yb) - _host(Xb) @ coef - intercept).astype(dtype)

    def whitened(Xb, yb, wb, start, index, item):
        A, yw, _ = layout.chunk((Xb, yb, wb), start, item)
        return refinement_residuals_op(np, A, yw, np.zeros_like(yw), x)[0].astype(dtype)

    def basis(Xb, yb, wb, start, index, item):
        return layout.chunk((Xb, yb, wb), start, item)[2].explicit()[:, :rank]

    def leverage(Xb, yb, wb, start, index, item):
        Q = basis(Xb, yb, wb, start, index, item)
        return np.sum(Q * Q, axis=1).astype(dtype)

    rows = X.chunks[0]

    def column(parts, dtype, width=None):
        shapes = [(r,) if width is None else (r, width) for r in rows]
        arrays = [da.from_delayed(part, shape=s, dtype=dtype)
                  for part, s in zip(parts, shapes, strict=True)]
        return da.concatenate(arrays, axis=0)

    return {
        "residuals": column(map_row_chunks(residuals, X, y), dtype),
        "whitened_residuals": column(map_row_chunks(whitened, X, y, w, per_chunk=items),
                                     dtype),
        "leverage": column(map_row_chunks(leverage, X, y, w, per_chunk=items), dtype),
        "basis": column(map_row_chunks(basis, X, y, w, per_chunk=items), np.float64, rank),
    }
