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

from .._array_api import blas_single_thread, get_namespace, is_numpy_namespace, move_to

__all__ = [
    "draw_members",
    "factorize_member",
    "factorize_member_tridiag",
    "member_coefs",
    "member_df",
    "fit_members",
    "subset_average_mse",
    "gcv_cgcv",
    "ecv",
]


def draw_members(n, k, n_estimators, rng):
    """Index arrays of ``n_estimators`` subsamples of ``k`` rows without replacement."""
    return [np.sort(rng.choice(n, size=k, replace=False)) for _ in range(n_estimators)]


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
    return {"x_mean": x_mean, "y_mean": y_mean, "lam": lam, "W": W, "c": c,
            "rank_mask": lam > tol * lam_max, "fit_intercept": fit_intercept}


def factorize_member_tridiag(Xm, ym, fit_intercept):
    """NumPy-only factorisation by Householder tridiagonalisation (LAPACK ``?sytrd``).

    The smaller Gram matrix ``G`` (``Xm^T Xm`` or ``Xm Xm^T``) is reduced to
    ``Q T Q^T`` with ``T`` tridiagonal, about three times cheaper than a full
    eigendecomposition. Each penalty then costs one tridiagonal solve
    ``(T + alpha) z = Q^T rhs`` (``?ptsv``, O(r)) and the reflectors are applied
    once for the whole alpha block (Numba); the degrees of freedom come from the
    eigenvalues of ``T`` (O(r^2)).
    """
    from ._lapack import sytrd_lower, tridiagonal_eigenvalues
    from ._numba import apply_reflectors

    k, p = Xm.shape
    if fit_intercept:
        x_mean = Xm.mean(axis=0)
        y_mean = ym.mean()
        Xm = Xm - x_mean
        ym = ym - y_mean
    else:
        x_mean = np.zeros(p, dtype=Xm.dtype)
        y_mean = Xm.dtype.type(0)
    tall = k >= p
    G = Xm.T @ Xm if tall else Xm @ Xm.T
    rhs = Xm.T @ ym if tall else np.array(ym, copy=True)
    # Both LAPACK calls and the reflectors run without the GIL (members in threads).
    c, d, e, tau = sytrd_lower(G)
    Z = np.ascontiguousarray(rhs, dtype=G.dtype)[:, None].copy()
    apply_reflectors(c, tau, Z, True)
    lam = np.maximum(tridiagonal_eigenvalues(d, e), 0).astype(G.dtype, copy=False)
    eps = float(np.finfo(G.dtype).eps)
    lam_max = float(lam.max()) if lam.size else 0.0
    return {"kind": "tridiag", "x_mean": x_mean, "y_mean": y_mean, "lam": lam, "c": c,
            "tau": tau, "d": d, "e": e, "qtb": Z[:, 0], "post": None if tall else Xm.T,
            "rank_mask": lam > max(k, p) * eps * lam_max, "fit_intercept": fit_intercept}


def _tridiag_coefs(f, alphas):
    import scipy.linalg.lapack as lapack

    from ._numba import apply_reflectors

    d, e, b = f["d"], f["e"], f["qtb"]
    ptsv = lapack.sptsv if d.dtype == np.float32 else lapack.dptsv
    Z = np.empty((d.size, len(alphas)), dtype=d.dtype)
    for j, a in enumerate(alphas):
        if d.size == 1:
            Z[:, j] = b / (d + a)
            continue
        _, _, z, info = ptsv(d + a, e, b)
        if info != 0:
            raise np.linalg.LinAlgError(f"tridiagonal solve failed for alpha={a} "
                                        f"(info={info}); use solver='svd'.")
        Z[:, j] = z
    apply_reflectors(f["c"], f["tau"], Z, False)
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
        Rows of each member (subsampling).
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
        only); "auto" is "tridiag" for NumPy and "eigh" otherwise when every alpha
        exceeds ``1e-7`` times the largest squared singular value, else "svd".
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
    if solver == "auto":
        solver = "tridiag-auto" if is_numpy_namespace(xp) else "eigh-auto"
    n_members = len(sketch_ops) if sketch_ops is not None else len(index_sets)
    centre = None
    if sketch_ops is not None and fit_intercept:
        centre = (xp.mean(X, axis=0), xp.mean(y))

    def fit_one(m):
        return _fit_member(xp, X, y, alphas, m, index_sets, sketch_ops, feature_ops,
                           fit_intercept, solver, centre)

    workers = _member_workers(xp, n_jobs, n_members)
    if workers == 1:
        fitted = [fit_one(m) for m in range(n_members)]
    else:
        from joblib import Parallel, delayed

        with blas_single_thread(xp):
            fitted = Parallel(n_jobs=workers, prefer="threads")(
                delayed(fit_one)(m) for m in range(n_members))
    coefs, intercepts, dfs = zip(*fitted, strict=True)
    return xp.stack(coefs), xp.stack(intercepts), xp.stack(dfs)


def _member_workers(xp, n_jobs, n_members):
    """Threads for :func:`fit_members`: 1 for CuPy and for a single member."""
    from joblib import effective_n_jobs

    if not is_numpy_namespace(xp) or n_members < 2:
        return 1
    return max(1, min(effective_n_jobs(n_jobs), n_members))


def _fit_member(xp, X, y, alphas, m, index_sets, sketch_ops, feature_ops, fit_intercept,
                solver, centre):
    """Coefficients, intercepts and degrees of freedom of member ``m`` (per alpha)."""
    min_alpha = float(np.min(alphas))
    if sketch_ops is not None:
        S = sketch_ops[m]
        Xm, ym = (_sketch_centred(xp, S, X, y, *centre) if centre is not None
                  else (S @ X, S @ y))
    else:
        rows = move_to(index_sets[m], xp)
        Xm, ym = xp.take(X, rows, axis=0), xp.take(y, rows, axis=0)
    F = None if feature_ops is None else feature_ops[m]
    if F is not None:
        Xm = F.apply(Xm, axis=1)                      # X_m S, shape (k, q)
    center = fit_intercept and sketch_ops is None
    auto = solver.endswith("-auto")
    first = solver.removesuffix("-auto") if min_alpha > 0 or not auto else "svd"
    if first == "tridiag":
        f = factorize_member_tridiag(Xm, ym, center)
    else:
        f = factorize_member(xp, Xm, ym, center, first)
    if auto and first != "svd" and f["lam"].shape[0] and \
            min_alpha < 1e-7 * float(xp.max(f["lam"])):
        f = factorize_member(xp, Xm, ym, center, "svd")  # Gram squares the condition
    c, b = member_coefs(xp, f, alphas)
    if F is not None:
        # back to the original space: S b (the intercept, computed with the sketched
        # column means S^T x_bar, is unchanged)
        c = xp.astype(F.rmatmul(c.T).T, Xm.dtype)
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
    """Member predictions ``(M, n_alphas, n)`` on ``X``."""
    return xp.stack([c @ X.T + b[:, None] for c, b in zip(coefs, intercepts, strict=True)])


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
    S1, cross = _np(S1), _np(cross)
    counts, single_num, single_cnt = _np(counts), _np(single_num), _np(single_cnt)
    M = counts.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        r1_each = np.where(single_cnt > 0, single_num / np.where(single_cnt > 0, single_cnt, 1),
                           np.nan)
        pair = (S1 + np.swapaxes(S1, 1, 2) + 2 * cross) / (4 * counts[None])
    iu = np.triu_indices(M, 1)
    pair = pair[:, iu[0], iu[1]]
    valid = counts[iu] > 0
    if not np.any(single_cnt > 0) or not np.any(valid):
        return np.full((E.shape[1], len(Ms)), np.nan)
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
