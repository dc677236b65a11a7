"""Ridge(less) ensembles on subsamples or sketches, and their risk estimates.

Every member is factorised once (thin SVD of its centred design); coefficients,
degrees of freedom and predictions for a whole grid of penalties then cost one
small matrix product each. Risk estimates for every ensemble size ``M' <= M`` come
from the ``M x M`` Gram matrix of the members' residuals: the mean squared error of
the average of a uniformly random ``M'``-subset of the members is exactly
``diag_mean / M' + (1 - 1/M') offdiag_mean`` (divided by the number of rows), so no
subset is ever enumerated.

Formulas (``t = mean_m df_m / n``, ``df_m = sum_j s_j^2 / (s_j^2 + alpha)`` over the
singular values of member ``m``'s design, ``k`` the subsample size):

- GCV for ensembles (Du, Patil and Kuchibhotla 2023):
  ``GCV_M = (||y - X b_M||^2 / n) / (1 - t)^2``.
- Corrected GCV (Bellec, Du, Koriyama, Patil, Tan 2023):
  ``CGCV_M = GCV_M - (1/M) t^2 / (1 - t)^2 (n/k - 1) R``, where
  ``R = mean_m (||y - X b_m||^2 / n) / (1 - 2t + n t^2 / k)``.
- ECV (Du, Patil, Roeder, Kuchibhotla 2023): out-of-bag risks ``R_1`` of single
  members and ``R_2`` of pairs, then ``R_M = -(1 - 2/M) R_1 + 2 (1 - 1/M) R_2``.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg

from .._array_api import blas_single_thread, get_namespace, is_numpy_namespace, move_to
from .._random import ROW_BLOCK
from ._tridiagonal import gram_block_op, tridiagonal_df_op, tridiagonal_ridge_solve_op

__all__ = [
    "draw_members",
    "member_plan",
    "member_rows",
    "factorize_member",
    "factorize_member_tridiag",
    "member_coefs",
    "member_df",
    "fit_members",
    "resolve_solver",
    "member_grams",
    "subset_average_mse",
    "gcv_cgcv",
    "ecv",
    "ecv_sums",
    "ecv_from_sums",
]


def member_plan(n, k, n_estimators, rng):
    """The seed and per-block row counts of ``n_estimators`` subsamples of ``k`` rows.

    The rows ``0..n-1`` are cut into the fixed blocks of
    :data:`.._random.ROW_BLOCK`. One seed is drawn from ``rng``; member ``m`` splits
    its ``k`` rows over the blocks by a multivariate hypergeometric draw (the counts a
    uniform ``k``-subset puts in each block) from a generator seeded by ``(seed, m)``.
    The counts are ``n_estimators x n_blocks`` integers: no ``O(n)`` state per member.

    Returns
    -------
    seed : int
    counts : ndarray of int64, shape (n_estimators, n_blocks)
    """
    seed = int(rng.integers(2**63 - 1))
    sizes = _block_sizes(n)
    counts = np.stack([np.random.default_rng([seed, m]).multivariate_hypergeometric(sizes, k)
                       for m in range(n_estimators)]) if n_estimators else \
        np.zeros((0, sizes.size), dtype=np.int64)
    return seed, counts.astype(np.int64)


def _block_sizes(n):
    blocks = -(-n // ROW_BLOCK)
    sizes = np.full(blocks, ROW_BLOCK, dtype=np.int64)
    sizes[-1] = n - (blocks - 1) * ROW_BLOCK
    return sizes


def member_rows(seed, m, counts, n, start=0, stop=None):
    """Sorted global rows of member ``m`` (of :func:`member_plan`) in ``[start, stop)``.

    Block ``b`` picks its ``counts[b]`` rows without replacement from a generator
    seeded by ``(seed, m, b)``, so a row's membership depends on the seed, the member
    and the global row only: any range of rows (a Dask chunk, even one holding parts
    of blocks) draws the blocks it overlaps and keeps its own rows.
    """
    stop = n if stop is None else stop
    if stop <= start:
        return np.zeros(0, dtype=np.int64)
    parts = []
    for b in range(start // ROW_BLOCK, (stop - 1) // ROW_BLOCK + 1):
        size = min(ROW_BLOCK, n - b * ROW_BLOCK)
        c = int(counts[b])
        if c == 0:
            continue
        pick = np.random.default_rng([seed, m, b]).choice(size, size=c, replace=False)
        parts.append(np.sort(pick).astype(np.int64) + b * ROW_BLOCK)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    rows = np.concatenate(parts)
    if rows[0] < start or rows[-1] >= stop:
        rows = rows[(rows >= start) & (rows < stop)]
    return rows


def draw_members(n, k, n_estimators, rng):
    """Index arrays (sorted) of ``n_estimators`` subsamples of ``k`` rows without
    replacement, keyed by global row (:func:`member_plan`, :func:`member_rows`): a
    distributed fit draws the same rows chunk by chunk."""
    seed, counts = member_plan(n, k, n_estimators, rng)
    return [member_rows(seed, m, counts[m], n) for m in range(n_estimators)]


def factorize_member(xp, Xm, ym, fit_intercept, solver="svd"):
    """Factorise a member once so that every penalty costs one small product.

    Writes the ridge solution as ``coef(alpha) = W diag(1 / (lam + alpha)) c`` with
    ``lam`` the squared singular values of the (centred) member design ``Xm``:

    - ``"svd"``: ``Xm = U diag(s) V^T``, ``W = V``, ``c = s * U^T y`` (most accurate;
      used for ``alpha = 0``, the minimum-norm ridgeless fit).
    - ``"eigh"``: eigendecomposition of the smaller Gram matrix, ``Xm^T Xm`` (``W =
      V``, ``c = V^T Xm^T y``) or ``Xm Xm^T`` (``W = Xm^T U``, ``c = U^T y``); about
      three times cheaper, accurate for penalties well above ``eps * lam_max``.

    Returns a dict with ``x_mean``, ``y_mean``, ``lam``, ``W``, ``c``, ``rank_mask``
    and ``fit_intercept``.
    """
    k, p = Xm.shape
    if fit_intercept:
        x_mean = xp.mean(Xm, axis=0)
        y_mean = xp.mean(ym, axis=0)
        Xm = Xm - x_mean
        ym = ym - y_mean
    else:
        x_mean = xp.zeros((p,), dtype=Xm.dtype)
        y_mean = xp.zeros((), dtype=Xm.dtype)
    eps = float(np.finfo(np.float32 if Xm.dtype == xp.float32 else np.float64).eps)
    if solver == "svd":
        U, s, Vt = xp.linalg.svd(Xm, full_matrices=False)
        lam, W, c = s * s, Vt.T, s * (U.T @ ym)
        tol = (max(k, p) * eps) ** 2
    elif k >= p:
        lam, V = xp.linalg.eigh(Xm.T @ Xm)
        lam = xp.where(lam > 0, lam, xp.zeros_like(lam))
        W, c = V, V.T @ (Xm.T @ ym)
        tol = max(k, p) * eps
    else:
        lam, U = xp.linalg.eigh(Xm @ Xm.T)
        lam = xp.where(lam > 0, lam, xp.zeros_like(lam))
        W, c = Xm.T @ U, U.T @ ym
        tol = max(k, p) * eps
    lam_max = float(xp.max(lam)) if lam.shape[0] else 0.0
    lam_min = float(xp.min(lam)) if lam.shape[0] else 0.0
    return {"x_mean": x_mean, "y_mean": y_mean, "lam": lam, "W": W, "c": c,
            "rank_mask": lam > tol * lam_max, "lam_max": lam_max, "lam_min": lam_min,
            "fit_intercept": fit_intercept}


# A ridge solution from the Gram matrix is accurate to about eps times the condition
# number of G + alpha I; above this condition number (errors above ~1e-9) a member is
# factored by the SVD of its rows instead.
GRAM_COND_MAX = 1e7


def gram_is_accurate(f, alpha) -> bool:
    """Whether the Gram-matrix factorization ``f`` (its ``lam_max`` and ``lam_min``)
    gives the ridge solution at penalty ``alpha`` to about 1e-9 relative."""
    return bool(f["lam_max"] + alpha <= GRAM_COND_MAX * (max(f["lam_min"], 0.0) + alpha))


def factorize_member_tridiag(Xm, ym, fit_intercept):
    """NumPy-only factorisation by Householder tridiagonalisation (LAPACK ``?sytrd``).

    The smaller Gram matrix ``G`` (``Xm^T Xm`` or ``Xm Xm^T``) is reduced to
    ``Q T Q^T`` with ``T`` tridiagonal, about three times cheaper than a full
    eigendecomposition. Each penalty then costs one tridiagonal solve
    ``(T + alpha) z = Q^T rhs`` (O(r)), the reflectors are applied once for the whole
    alpha block (``?ormqr``), and the degrees of freedom ``tr(T (T + alpha)^{-1})``
    cost O(r) too (:mod:`._numba`).
    """
    k, p = Xm.shape
    if fit_intercept:
        x_mean = Xm.mean(axis=0)
        y_mean = ym.mean()
        Xm = Xm - x_mean
        ym = ym - y_mean
    else:
        x_mean = np.zeros(p, dtype=Xm.dtype)
        y_mean = Xm.dtype.type(0)
    if k >= p:
        return _tridiag_factor(Xm.T @ Xm, Xm.T @ ym, None, x_mean, y_mean, fit_intercept)
    return _tridiag_factor(Xm @ Xm.T, ym, Xm.T, x_mean, y_mean, fit_intercept)


def _tridiag_factor(G, rhs, post, x_mean, y_mean, fit_intercept):
    """Tridiagonalise the member's Gram matrix ``G`` (overwritten) for the normal
    equations ``(G + alpha) z = rhs``; the coefficients are ``z`` (``post`` None) or
    ``post @ z`` (the dual form, ``post = Xm^T``)."""
    from ._lapack import ormtr_lower, sytrd_lower

    # Both LAPACK calls run without the GIL (members in threads).
    c, d, e, tau = sytrd_lower(G, overwrite=True)
    Z = np.array(rhs, dtype=G.dtype).reshape(-1, 1)  # a copy; one column is Fortran-ordered
    ormtr_lower(c, tau, Z, True)
    # The extreme eigenvalues of T for the conditioning switch to the SVD in
    # _fit_member (gram_is_accurate): the largest from Gershgorin (at most 3 lam_max
    # for a positive semi-definite T), the smallest by bisection, O(p)
    ad = np.abs(e)
    radius = np.zeros(d.size, dtype=np.float64)
    radius[:-1] += ad
    radius[1:] += ad
    lam_max = float(np.max(d + radius)) if d.size else 0.0
    lam_min = float(scipy.linalg.eigvalsh_tridiagonal(
        d, e, select="i", select_range=(0, 0))[0]) if d.size else 0.0
    return {"kind": "tridiag", "x_mean": x_mean, "y_mean": y_mean, "c": c, "tau": tau,
            "d": d, "e": e, "qtb": Z[:, 0], "post": post, "lam_max": lam_max,
            "lam_min": lam_min, "fit_intercept": fit_intercept}


# above this many rows X X^T (n x n) is never formed for the members to share
_SHARED_GRAM_MAX_ROWS = 4096


def member_grams(X, y, fit_intercept, sizes):
    """Products of all the rows that subsampled members' Gram matrices are cut from.

    A member of ``k <= p`` rows takes its ``k x k`` block of ``X X^T`` (formed when
    ``n <= 4096`` and the members' own products would cost more); one of ``k > p``
    rows with ``k > n / 2`` takes ``X^T X`` minus the product of the ``n - k`` rows
    it leaves out. The data are centred with the full-data means first, so that a
    member's own centring is a small rank-one correction of its Gram matrix.

    Parameters
    ----------
    X, y : NumPy arrays
    fit_intercept : bool
    sizes : sequence of int
        Subsample size of each member that will use them.

    Returns
    -------
    dict or None
        None for non-NumPy data or when sharing would not save work.
    """
    if not is_numpy_namespace(get_namespace(X, y)):
        return None
    n, p = X.shape
    # a member's own Gram costs k^2 p (dual) or k p^2 (primal); the shared ones n^2 p
    # and n p^2, and the complement trick (n - k) p^2
    dual = sum(k * k for k in sizes if k <= p)
    use_xxt = n <= _SHARED_GRAM_MAX_ROWS and dual >= n * n
    use_xtx = sum(2 * k - n for k in sizes if k > p and 2 * k > n) >= n
    if not (use_xxt or use_xtx):
        return None
    if fit_intercept:
        x_mean, y_mean = X.mean(axis=0), y.mean()
        X0, y0 = X - x_mean, y - y_mean
    else:
        x_mean, y_mean = np.zeros(p, dtype=X.dtype), X.dtype.type(0)
        X0, y0 = np.ascontiguousarray(X), y
    return {"X0": X0, "y0": y0, "x_mean": x_mean, "y_mean": y_mean,
            "centre": fit_intercept, "col_sums": X0.sum(axis=0), "y_sum": y0.sum(),
            "XXt": X0 @ X0.T if use_xxt else None,
            "XtX": X0.T @ X0 if use_xtx else None, "Xty": X0.T @ y0 if use_xtx else None}


def _shared_tridiag(grams, rows):
    """:func:`factorize_member_tridiag` of the member on ``rows`` from
    :func:`member_grams`, or None when this member has nothing to take from them."""
    X0, y0, centre = grams["X0"], grams["y0"], grams["centre"]
    n, p = X0.shape
    k = rows.size
    mu = np.zeros(p, dtype=X0.dtype)
    nu = X0.dtype.type(0)
    if grams["XXt"] is not None and k <= p:
        Xk, yk = X0[rows], y0[rows]
        G = gram_block_op(np, grams["XXt"], rows, centre)
        if centre:
            mu, nu = Xk.mean(axis=0), yk.mean()
            Xk -= mu
            yk = yk - nu
        G_rhs_post = (G, yk, Xk.T)
    elif grams["XtX"] is not None and k > p and 2 * k > n:
        out = np.ones(n, dtype=bool)
        out[rows] = False
        Xo, yo = X0[out], y0[out]
        G = grams["XtX"] - Xo.T @ Xo
        rhs = grams["Xty"] - Xo.T @ yo
        if centre:
            mu = (grams["col_sums"] - Xo.sum(axis=0)) / k
            nu = (grams["y_sum"] - yo.sum()) / k
            G -= k * np.outer(mu, mu)
            rhs -= (k * nu) * mu
        G_rhs_post = (G, rhs, None)
    else:
        return None
    return _tridiag_factor(*G_rhs_post, grams["x_mean"] + mu, grams["y_mean"] + nu, centre)


def _tridiag_coefs(f, alphas):
    from ._lapack import ormtr_lower

    Z, bad = tridiagonal_ridge_solve_op(np, f["d"], f["e"], f["qtb"],
                                        np.asarray(alphas, dtype=np.float64))
    Z = np.asfortranarray(Z)  # ?ormtr works in place on Fortran order
    if bad >= 0:
        raise np.linalg.LinAlgError(f"the tridiagonal system is not positive definite for "
                                    f"alpha={alphas[bad]}; use solver='svd'.")
    ormtr_lower(f["c"], f["tau"], Z, False)
    if f["post"] is not None:
        Z = f["post"] @ Z
    return np.ascontiguousarray(Z.T)


def _inverse(xp, f, alphas):
    """``1 / (lam + alpha)`` per alpha (rows); alpha=0 inverts the nonzero ``lam`` only."""
    lam = f["lam"]
    a = xp.asarray(alphas, dtype=lam.dtype)[:, None]
    mask = f["rank_mask"][None, :]
    denom = lam[None, :] + a
    keep = (a > 0) | mask
    safe = xp.where(keep, denom, xp.ones_like(denom))
    return xp.where(keep, 1.0 / safe, xp.zeros_like(denom))


def member_coefs(xp, f, alphas):
    """Coefficients ``(n_alphas, p)`` and intercepts ``(n_alphas,)`` of one member."""
    if f.get("kind") == "tridiag":
        coef = _tridiag_coefs(f, [float(a) for a in alphas])
    else:
        coef = (_inverse(xp, f, alphas) * f["c"][None, :]) @ f["W"].T
    intercept = f["y_mean"] - coef @ f["x_mean"]
    return coef, intercept


def member_df(xp, f, alphas):
    """Degrees of freedom ``sum lam/(lam+alpha)`` (+1 with intercept), per alpha."""
    if f.get("kind") == "tridiag":
        df = tridiagonal_df_op(np, f["d"], f["e"], np.asarray(alphas, dtype=np.float64))
        df = df.astype(f["d"].dtype, copy=False)
    else:
        df = xp.sum(_inverse(xp, f, alphas) * f["lam"][None, :], axis=1)
    return df + (1.0 if f["fit_intercept"] else 0.0)


def fit_members(X, y, alphas, index_sets=None, *, sketch_ops=None, feature_ops=None,
                fit_intercept=True, solver="auto", n_jobs=None):
    """Fit every member for every alpha.

    Parameters
    ----------
    X, y : arrays
        Data (``y`` 1-D).
    alphas : sequence of float
        Penalties (scikit-learn ``Ridge`` meaning on each member's rows).
    index_sets : list of int arrays, optional
        Rows of each member (subsampling; sizes may differ between members). Their
        Gram matrices are cut from products of all rows when that saves work
        (:func:`member_grams`), so fitting every size of a grid in one call is
        cheaper than one call per size.
    sketch_ops : list of SketchOperator, optional
        Row sketches of each member (instead of ``index_sets``); data are centred
        with the full-data means first.
    feature_ops : list of SketchOperator, optional
        Feature sketches of each member (shape ``(q, p)`` operators ``T`` with
        ``E[T^T T] = I``; the paper's ``S`` is ``T^T``, ``p x q``): member ``m`` fits
        ridge on ``X_m T_m^T`` (rows already subsampled or sketched) and its
        coefficients in the original space are ``T_m^T b_m``. Degrees of freedom are
        those of the sketched design.
    fit_intercept : bool
        Centre (member rows, or the full data for sketches) and fit an intercept.
    solver : {"auto", "svd", "eigh", "tridiag"}
        See :func:`factorize_member` and :func:`factorize_member_tridiag` (NumPy
        only). "auto" (:func:`resolve_solver`) is "tridiag" where the tridiagonal
        operations (``tridiagonal_ridge_solve``, ``tridiagonal_df``) have an
        accelerated backend for the data's namespace in the operation registry (today
        Numba, for NumPy data) and "eigh" elsewhere, when the Gram matrix gives the
        ridge solution at the smallest alpha to about 1e-9, i.e. ``(lam_max + alpha)
        / (lam_min + alpha) <= 1e7`` for the extreme squared singular values of the
        member (for "tridiag", a Gershgorin bound on ``lam_max``, at most three times
        larger); else "svd".
    n_jobs : int, optional
        Members fitted at once (joblib threads, scikit-learn's meaning: None is 1
        unless in a ``joblib.parallel_config`` context, -1 all cores). For NumPy
        data each member's BLAS then runs on one thread, and its LAPACK calls
        (:mod:`._lapack`) release the GIL, so the members' factorisations run side
        by side. CuPy data are fitted one member after the other (the GPU is already
        parallel).

    Returns
    -------
    coefs : array (M, n_alphas, p)
        In the original feature space (also with ``feature_ops``).
    intercepts : array (M, n_alphas)
    dfs : array (M, n_alphas)
    """
    xp = get_namespace(X, y)
    solver = resolve_solver(solver, xp)
    n_members = len(sketch_ops) if sketch_ops is not None else len(index_sets)
    centre = None
    if sketch_ops is not None and fit_intercept:
        centre = (xp.mean(X, axis=0), xp.mean(y))
    grams = None
    if sketch_ops is None and feature_ops is None and solver.startswith("tridiag"):
        grams = member_grams(X, y, fit_intercept, [len(rows) for rows in index_sets])

    def fit_one(m):
        return _fit_member(xp, X, y, alphas, m, index_sets, sketch_ops, feature_ops,
                           fit_intercept, solver, centre, grams)

    workers = _member_workers(xp, n_jobs, n_members)
    if workers == 1:
        fitted = [fit_one(m) for m in range(n_members)]
    else:
        from joblib import Parallel, delayed

        # largest members first, so that no thread is left with a big one at the end
        order = list(range(n_members))
        if index_sets is not None:
            order.sort(key=lambda m: -len(index_sets[m]))
        with blas_single_thread(xp):
            done = Parallel(n_jobs=workers, prefer="threads")(
                delayed(fit_one)(m) for m in order)
        fitted = [None] * n_members
        for m, result in zip(order, done, strict=True):
            fitted[m] = result
    coefs, intercepts, dfs = zip(*fitted, strict=True)
    return xp.stack(coefs), xp.stack(intercepts), xp.stack(dfs)


def resolve_solver(solver, xp):
    """The factorisation ``solver="auto"`` of :func:`fit_members` stands for.

    The rule: the tridiagonal path where the registry has an accelerated (not the
    array-API reference) backend of both tridiagonal operations for namespace ``xp``
    (their references are dense O(r^3) oracles of the O(r) kernels), the
    eigendecomposition of the
    smaller Gram matrix elsewhere; the ``"-auto"`` suffix lets each member fall back to
    the SVD for penalties too small for a Gram matrix. Other solvers are returned as
    they are.
    """
    if solver != "auto":
        return solver
    accelerated = all(op.backend_for(xp) != "reference"
                      for op in (tridiagonal_ridge_solve_op, tridiagonal_df_op))
    return "tridiag-auto" if accelerated else "eigh-auto"


def _member_workers(xp, n_jobs, n_members):
    """Threads for :func:`fit_members`: 1 for CuPy and for a single member."""
    from joblib import effective_n_jobs

    if not is_numpy_namespace(xp) or n_members < 2:
        return 1
    return max(1, min(effective_n_jobs(n_jobs), n_members))


def _fit_member(xp, X, y, alphas, m, index_sets, sketch_ops, feature_ops, fit_intercept,
                solver, centre, grams=None):
    """Coefficients, intercepts and degrees of freedom of member ``m`` (per alpha)."""
    min_alpha = float(np.min(alphas))
    F = None if feature_ops is None else feature_ops[m]
    center = fit_intercept and sketch_ops is None
    auto = solver.endswith("-auto")
    first = solver.removesuffix("-auto") if min_alpha > 0 or not auto else "svd"

    def member_data():
        if sketch_ops is not None:
            S = sketch_ops[m]
            Xm, ym = (_sketch_centred(xp, S, X, y, *centre) if centre is not None
                      else (S @ X, S @ y))
        else:
            rows = move_to(index_sets[m], xp)
            Xm, ym = xp.take(X, rows, axis=0), xp.take(y, rows, axis=0)
        if F is not None:
            Xm = F.apply(Xm, axis=1)                  # X_m S, shape (k, q)
        return Xm, ym

    f = None
    if first == "tridiag" and grams is not None:
        f = _shared_tridiag(grams, np.asarray(index_sets[m]))
    if f is None:
        Xm, ym = member_data()
        if first == "tridiag":
            f = factorize_member_tridiag(Xm, ym, center)
        else:
            f = factorize_member(xp, Xm, ym, center, first)
    if auto and first != "svd" and not gram_is_accurate(f, min_alpha):
        # the Gram matrix squares the condition number
        f = factorize_member(xp, *member_data(), center, "svd")
    c, b = member_coefs(xp, f, alphas)
    if F is not None:
        # back to the original space: S b (the intercept, computed with the sketched
        # column means S^T x_bar, is unchanged)
        c = xp.astype(F.rmatmul(c.T).T, X.dtype)
    d = member_df(xp, f, alphas)
    if centre is not None:
        x_bar, y_bar = centre
        b = y_bar - c @ x_bar
        d = d + 1.0
    return c, b, d


def _sketch_centred(xp, S, X, y, x_bar, y_bar):
    """``S (X - 1 x_bar^T)`` and ``S (y - y_bar)`` without a centred copy of ``X``."""
    s1 = S @ xp.ones((X.shape[0],), dtype=X.dtype)
    return (S @ X) - s1[:, None] * x_bar[None, :], (S @ y) - s1 * y_bar


def predictions(xp, X, coefs, intercepts):
    """Member predictions ``(M, n_alphas, n)`` on ``X`` (one matrix product for all)."""
    M, A, p = coefs.shape
    F = xp.reshape(coefs, (M * A, p)) @ X.T
    return xp.reshape(F, (M, A, X.shape[0])) + intercepts[:, :, None]


def residual_grams(xp, E):
    """Per-alpha Gram matrices of residuals: ``E`` is (M, A, n); returns (A, M, M)."""
    Ea = xp.permute_dims(E, (1, 0, 2))  # (A, M, n)
    return Ea @ xp.permute_dims(Ea, (0, 2, 1))


def subset_average_mse(G, n_rows, Ms):
    """Mean over uniformly random ``M'``-subsets of ``||mean of their residuals||^2 / n``.

    ``G`` is a stack of Gram matrices (..., M, M); returns (..., len(Ms)).
    """
    G = np.asarray(G, dtype=np.float64)
    M = G.shape[-1]
    diag = np.trace(G, axis1=-2, axis2=-1) / M
    off = (G.sum(axis=(-2, -1)) - diag * M) / (M * (M - 1)) if M > 1 else np.zeros_like(diag)
    Ms = np.asarray(Ms, dtype=np.float64)
    return (diag[..., None] / Ms + (1 - 1 / Ms) * off[..., None]) / n_rows


def gcv_cgcv(G, dfs, n, k, Ms):
    """GCV and CGCV for each alpha and ensemble size.

    Parameters
    ----------
    G : array (A, M, M)
        Gram of the members' training residuals on all ``n`` rows.
    dfs : array (M, A)
        Members' degrees of freedom.
    n, k : int
        Rows of the data and of each member.
    Ms : sequence of int
        Ensemble sizes.

    Returns
    -------
    gcv, cgcv : arrays (A, len(Ms))
    """
    train = subset_average_mse(G, n, Ms)                      # (A, |Ms|)
    t = np.asarray(dfs, dtype=np.float64).mean(axis=0) / n   # (A,)
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = train / (1 - t[:, None]) ** 2
        single = np.trace(G, axis1=-2, axis2=-1) / G.shape[-1] / n
        R = single / (1 - 2 * t + n * t**2 / k)
        Ms = np.asarray(Ms, dtype=np.float64)
        corr = (t**2 / (1 - t) ** 2 * (n / k - 1) * R)[:, None] / Ms[None, :]
    return gcv, gcv - corr


def ecv(E, oob, Ms):
    """Extrapolated CV from out-of-bag errors of single members and pairs.

    Parameters
    ----------
    E : array (M, A, n)
        Residuals ``y - f_m(x)`` of every member on every training row.
    oob : array (n, M) of bool
        Row ``i`` is out of member ``m``'s subsample.
    Ms : sequence of int
        Ensemble sizes to extrapolate to.

    Returns
    -------
    risk : array (A, len(Ms))
        NaN where no out-of-bag rows exist (subsample size n).
    """
    return ecv_from_sums(ecv_sums(E, oob), Ms)


def ecv_sums(E, oob):
    """The sums over rows that :func:`ecv` needs, as float64 NumPy arrays: additive over
    any partition of the rows (a distributed fit adds them over row chunks).

    Returns ``(counts (M, M), single_num (A, M), single_cnt (M,), S1 (A, M, M), cross
    (A, M, M))``: out-of-bag row counts of pairs and of members, and the sums of
    squared and crossed out-of-bag residuals.
    """
    xp = get_namespace(E)
    O = xp.astype(move_to(oob, xp), E.dtype)            # (n, M)
    counts = O.T @ O                                     # (M, M)
    E_a = xp.permute_dims(E, (1, 2, 0))                  # (A, n, M)
    B = E_a * O[None, :, :]
    A2 = E_a * B                                         # O * E^2
    single_num = xp.sum(A2, axis=1)                      # (A, M)
    single_cnt = xp.sum(O, axis=0)                       # (M,)
    S1 = xp.permute_dims(A2, (0, 2, 1)) @ O[None, :, :]  # (A, M, M): sum_i O_il O_im E_im^2
    cross = xp.permute_dims(B, (0, 2, 1)) @ B            # (A, M, M)
    return tuple(_np(a) for a in (counts, single_num, single_cnt, S1, cross))


def ecv_from_sums(sums, Ms):
    """:func:`ecv` from the (summed) :func:`ecv_sums`."""
    counts, single_num, single_cnt, S1, cross = sums
    M = counts.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        r1_each = np.where(single_cnt > 0, single_num / np.where(single_cnt > 0, single_cnt, 1),
                           np.nan)
        pair = (S1 + np.swapaxes(S1, 1, 2) + 2 * cross) / (4 * counts[None])
    iu = np.triu_indices(M, 1)
    pair = pair[:, iu[0], iu[1]]
    valid = counts[iu] > 0
    if not np.any(single_cnt > 0) or not np.any(valid):
        return np.full((single_num.shape[0], len(Ms)), np.nan)
    R1 = np.nanmean(r1_each, axis=1)
    R2 = pair[:, valid].mean(axis=1)
    Ms = np.asarray(Ms, dtype=np.float64)
    return -(1 - 2 / Ms)[None, :] * R1[:, None] + 2 * (1 - 1 / Ms)[None, :] * R2[:, None]


def _np(a):
    from .._array_api import to_numpy

    return np.asarray(to_numpy(a), dtype=np.float64)


def resolve_size(size, n, name="subsample_size", unit="rows"):
    """An int size from an int count or a float fraction of ``n``; checks ``1 <= size <= n``.

    ``unit`` is "rows" (``n`` = samples) or "features" (``n`` = features), for the
    error messages.
    """
    total = "number of samples" if unit == "rows" else "number of features"
    what = "samples" if unit == "rows" else "features"
    if isinstance(size, bool) or not isinstance(size, (numbers.Integral, numbers.Real)):
        raise TypeError(f"{name} must be an int ({unit}) or a float in (0, 1] (fraction of the "
                        f"{unit}), got {size!r}.")
    if isinstance(size, numbers.Integral):
        k = int(size)
    else:
        if not 0 < size <= 1:
            raise ValueError(f"{name}={size!r}: a float is a fraction of the {what} and must "
                             "be in (0, 1].")
        k = max(1, int(round(size * n)))
    if not 1 <= k <= n:
        raise ValueError(f"{name}={size!r} gives {k} {unit}, but it must be between 1 and the "
                         f"{total} ({n}).")
    return k
