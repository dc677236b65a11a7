"""Gauss-Markov estimation (OLS, WLS, GLS, feasible GLS) by orthogonal factorizations.

The estimate is never computed from the normal equations. The model is whitened
(``sigma`` and ``sample_weight``), the intercept column is split off with one
Householder reflection (a "centering" that is exact for any whitening), the
remaining columns are scaled by powers of two (exact) and factored by
column-pivoted Householder QR (NumPy) or an SVD (other namespaces, e.g. CuPy).
Standard errors come from the triangular factor's inverse, never from inverting
``R^T R``. On NumPy, float64 solutions are polished by iterative refinement of
the augmented system ``[I A; A^T 0] [r; x] = [y; 0]`` with residuals in doubled precision
(compensated dot products), which recovers the digits an ill-conditioned problem
loses to the factorization. On designs the pivoted path takes (condition number
above about 1e3), the columns of ``(A^T A)^{-1}`` are refined the same way, from
``[I A; A^T 0] [r_j; c_j] = [0; -e_j]``, and ``sigma2`` takes the residual sum of
squares of refinement's residual iterate: coefficients and standard errors are
then the exact ones of the float64 data to 14-15 digits on every NIST StRD set,
Filip included (``R^{-1} R^{-T}`` alone gives 7.3 digits there). Long double
input takes a pivoted Householder QR in long double instead.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.linalg
from sklearn.utils import Bunch
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)

from .._array_api import (
    get_namespace,
    is_numpy_namespace,
    public_function,
    solve_lower,
    to_numpy,
)
from .._validation import COUNT, NON_NEGATIVE, check_array, user_stacklevel
from ._refinement import inverse_refinement_residuals_op, refinement_residuals_op
from ._robust import COV_TYPES, check_cov_kwds, robust_covariance

__all__ = ["gauss_markov", "make_whitener", "ar1_coefficient"]

_MAX_REFINE_STEPS = 4
_FAST_QR_RCOND = 1e-3

# The factorizations of the whitened design (gauss_markov's ``solver``).
SOLVERS = ("auto", "pivoted-qr", "svd")
# An AR(1) coefficient (stationary errors).
AR1_RHO = [Interval(numbers.Real, -1, 1, closed="neither")]
# Parameter constraints of gauss_markov, checked once by public_function (the
# estimator checks the same ones and skips these).
GAUSS_MARKOV_PARAMS = {
    "sigma": [None, StrOptions({"ar1"}), callable, "array-like"],
    "sample_weight": ["array-like", None],
    "fit_intercept": ["boolean"],
    "rho": [*AR1_RHO, None],
    "rcond": [*NON_NEGATIVE, None],
    "refine": ["boolean", StrOptions({"coef"})],
    "max_iter": COUNT,
    "tol": NON_NEGATIVE,
    "cov_type": [StrOptions(set(COV_TYPES))],
    "cov_kwds": [dict, None],
    "use_t": ["boolean", None],
    "solver": [StrOptions(set(SOLVERS))],
}


# ---------------------------------------------------------------------------
# whitening: sigma = L L^T  ->  apply L^{-1}
# ---------------------------------------------------------------------------

class _DiagonalWhitener:
    """Rows scaled by ``1 / sqrt(variance)`` (WLS and known heteroscedastic variances)."""

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, M):
        return self.scale[:, None] * M if M.ndim == 2 else self.scale * M


class _CholeskyWhitener:
    """Dense SPD covariance: solve with its lower Cholesky factor."""

    def __init__(self, L, xp):
        self.L, self.xp = L, xp

    def __call__(self, M):
        return solve_lower(self.xp, self.L, M)


class _BlockDiagonalWhitener:
    """Block-diagonal SPD covariance (clustered or panel errors): each block's rows
    solved with its own lower Cholesky factor, blocks of one size in one batched
    solve (a Python loop over many small blocks would dominate the fit)."""

    def __init__(self, factors, xp):
        self.xp = xp
        starts = np.concatenate([[0], np.cumsum([L.shape[0] for L in factors])[:-1]])
        groups = {}
        for L, s in zip(factors, starts, strict=True):
            Ls, firsts = groups.setdefault(int(L.shape[0]), ([], []))
            Ls.append(L)
            firsts.append(int(s))
        # per block size: the stacked factors and the rows of its blocks, (B, size)
        self.groups = [(xp.stack(Ls), xp.asarray(np.add.outer(s, np.arange(size))))
                       for size, (Ls, s) in groups.items()]

    def __call__(self, M):
        xp = self.xp
        parts, order = [], []
        for Ls, rows in self.groups:
            block = xp.take(M, xp.reshape(rows, (-1,)), axis=0)
            block = xp.reshape(block, (*rows.shape, *M.shape[1:]))
            solved = xp.linalg.solve(Ls, block if M.ndim == 2 else block[..., None])
            parts.append(xp.reshape(solved, (-1, *M.shape[1:])))
            order.append(xp.reshape(rows, (-1,)))
        # the groups' rows back in their places (one gather, no scattered writes)
        inverse = xp.argsort(xp.concat(order))
        return xp.take(xp.concat(parts, axis=0), inverse, axis=0)


def is_block_list(sigma) -> bool:
    """Whether ``sigma`` is a list (or tuple) of square blocks, the diagonal blocks of a
    block-diagonal covariance (a nested list of numbers is one matrix: its items are
    1-D)."""
    return (isinstance(sigma, (list, tuple)) and len(sigma) > 0
            and all(np.ndim(block) == 2 for block in sigma))


def _block_factors(blocks, n, *, xp, dtype):
    """The lower Cholesky factors of ``sigma``'s diagonal blocks, checked."""
    factors = []
    for i, block in enumerate(blocks):
        S = check_array(block, f"sigma[{i}]")
        if dtype is not None:
            S = xp.astype(xp.asarray(S), dtype)
        if S.shape[0] != S.shape[1]:
            raise ValueError(f"sigma[{i}] has shape {tuple(S.shape)}; the diagonal blocks of "
                             "a block-diagonal covariance must be square.")
        factors.append(_cholesky(S, xp, f"sigma[{i}]"))
    total = sum(int(L.shape[0]) for L in factors)
    if total != n:
        raise ValueError(f"sigma's {len(factors)} diagonal blocks cover {total} rows, but the "
                         f"data has {n} samples; the blocks' sizes must add up to n.")
    return factors


def _cholesky(S, xp, name):
    """The lower Cholesky factor of the symmetric positive definite ``S`` (named
    ``name`` in the errors)."""
    asym = float(xp.max(xp.abs(S - S.T)))
    if asym > 1e-10 * max(float(xp.max(xp.abs(S))), 1e-300):
        raise ValueError(f"{name} is not symmetric (max |{name} - {name}.T| = {asym:.3g}); a "
                         "covariance matrix must be symmetric positive definite.")
    failed = ValueError(f"{name} is not positive definite (its Cholesky factorization "
                        "failed); a covariance matrix must be symmetric positive definite.")
    try:
        if is_numpy_namespace(xp):
            L = scipy.linalg.cholesky(S, lower=True, check_finite=False)
        else:
            L = xp.linalg.cholesky(S)
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError) as exc:
        raise failed from exc
    if not bool(xp.all(xp.isfinite(L))):
        raise failed
    return L


class _AR1Whitener:
    """Stationary AR(1) errors, ``corr(e_s, e_t) = rho^|s-t|``: the Prais-Winsten transform."""

    def __init__(self, rho, xp):
        self.rho, self.xp = rho, xp

    def __call__(self, M):
        xp = self.xp
        first = math.sqrt(1.0 - self.rho**2) * M[:1, ...]
        rest = M[1:, ...] - self.rho * M[:-1, ...]
        return xp.concat([first, rest], axis=0)


def make_whitener(sigma, n, *, xp=np, dtype=None, sample_weight=None, rho=None):
    """Return ``W`` with ``W(M) = L^{-1} M`` for the error covariance ``sigma = L L^T``.

    Parameters
    ----------
    sigma : None, "ar1", callable, array of shape (n,) or (n, n), or list of blocks
        None: independent errors of equal variance (OLS, or WLS with
        ``sample_weight``). A vector: the errors' variances. A matrix: their SPD
        covariance. A list of square SPD matrices: the diagonal blocks, in row order,
        of a block-diagonal covariance (clustered or panel errors; sizes adding up to
        ``n``). ``"ar1"``: stationary AR(1) errors with coefficient ``rho``. A
        callable is called as ``sigma(n)`` and must return one of these.
    n : int
        Number of observations.
    xp : namespace
        Array namespace of the data.
    dtype : dtype, optional
        Floating dtype of the data.
    sample_weight : array of shape (n,), optional
        Non-negative weights; an observation with weight ``w`` has error variance
        ``variance / w``. Only with ``sigma=None`` or a vector.
    rho : float in (-1, 1), optional
        AR(1) coefficient when ``sigma="ar1"``.

    Returns
    -------
    whiten : callable or None
        None when there is nothing to whiten (OLS).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import make_whitener
    >>> W = make_whitener(np.array([1.0, 4.0]), 2)
    >>> W(np.array([2.0, 2.0]))
    array([2., 1.])
    """
    if isinstance(sigma, str) and sigma == "ar1":  # rho matters for AR(1) errors only
        validate_parameter_constraints({"rho": AR1_RHO}, {"rho": rho},
                                       caller_name="make_whitener")
    return _whitener(sigma, n, xp=xp, dtype=dtype, sample_weight=sample_weight, rho=rho)


def _whitener(sigma, n, *, xp, dtype, sample_weight, rho):
    """:func:`make_whitener` once ``rho`` is checked (by it, or by :func:`gauss_markov`'s
    parameter constraints)."""
    if callable(sigma) and not isinstance(sigma, str):
        sigma = sigma(n)
        if sigma is None or isinstance(sigma, str):
            raise TypeError("A callable sigma must return a vector, a matrix or a list of "
                            "diagonal blocks of covariances.")
    if isinstance(sigma, str):
        if sigma != "ar1":
            raise ValueError(f"sigma={sigma!r} is not understood; the only string is 'ar1'.")
        if sample_weight is not None:
            raise ValueError("sample_weight cannot be combined with sigma='ar1'; pass one of "
                             "them.")
        return _AR1Whitener(float(rho), xp)
    weight = None
    if sample_weight is not None:
        weight = check_array(sample_weight, "sample_weight", ensure_2d=False)
        if weight.shape[0] != n:
            raise ValueError(f"sample_weight has length {weight.shape[0]}, but the data has "
                             f"{n} samples.")
        if bool(xp.any(weight < 0)):
            raise ValueError("sample_weight has negative entries; weights must be >= 0.")
        if not bool(xp.any(weight > 0)):
            raise ValueError("sample_weight is all zero; at least one weight must be positive.")
        weight = xp.astype(xp.asarray(weight), dtype) if dtype is not None else weight
    if sigma is None:
        return None if weight is None else _DiagonalWhitener(xp.sqrt(weight))
    if is_block_list(sigma):
        if weight is not None:
            raise ValueError("sample_weight cannot be combined with a block-diagonal sigma; "
                             "fold the weights into its blocks (block / sqrt(outer(w, w))).")
        return _BlockDiagonalWhitener(_block_factors(sigma, n, xp=xp, dtype=dtype), xp)
    S = check_array(sigma, "sigma", ensure_2d=False) if getattr(sigma, "ndim", np.ndim(sigma)) \
        == 1 else check_array(sigma, "sigma")
    if dtype is not None:
        S = xp.astype(xp.asarray(S), dtype)
    if S.ndim == 1:
        if S.shape[0] != n:
            raise ValueError(f"sigma has {S.shape[0]} variances, but the data has {n} samples.")
        if not bool(xp.all(S > 0)):
            raise ValueError("sigma (a vector of error variances) must be strictly positive.")
        scale = 1.0 / xp.sqrt(S)
        return _DiagonalWhitener(scale if weight is None else scale * xp.sqrt(weight))
    if S.shape != (n, n):
        raise ValueError(f"sigma has shape {tuple(S.shape)}; a covariance matrix for {n} "
                         f"samples must be ({n}, {n}).")
    if weight is not None:
        raise ValueError("sample_weight cannot be combined with a covariance matrix sigma; "
                         "fold the weights into sigma (sigma / sqrt(outer(w, w))).")
    return _CholeskyWhitener(_cholesky(S, xp, "sigma"), xp)


@public_function(arrays=("residuals",))
def ar1_coefficient(residuals) -> float:
    """Lag-one autocorrelation of a residual series, ``sum r_t r_{t-1} / sum r_t^2``.

    Used by feasible GLS with ``sigma="ar1"``; clipped to ``(-0.999, 0.999)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import ar1_coefficient
    >>> round(ar1_coefficient(np.array([1.0, -1.0, 1.0, -1.0])), 2)
    -0.75
    """
    xp = get_namespace(residuals)
    r = residuals
    return ar1_from_sums(float(xp.sum(r[1:] * r[:-1])), float(xp.sum(r * r)))


def ar1_from_sums(lagged, squares):
    """``sum r_t r_{t-1} / sum r_t^2`` clipped to ``(-0.999, 0.999)`` (0 for no residual)."""
    if squares == 0.0:
        return 0.0
    return min(max(lagged / squares, -0.999), 0.999)


def feasible_gls_done(rho_new, rho_now, tol, n_iter, max_iter) -> bool:
    """Whether feasible GLS stops: ``rho`` changed by less than ``tol``, or the
    iterations ran out (then with a warning)."""
    change = abs(rho_new - rho_now)
    if change < tol:
        return True
    if n_iter >= max_iter:
        warnings.warn(f"Feasible GLS did not converge in {max_iter} iterations (rho changed "
                      f"by {change:.2e} > tol={tol:g}).", RuntimeWarning,
                      stacklevel=user_stacklevel())
        return True
    return False


# ---------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------

def unbiased_sigma2(rss, n, rank):
    """``rss / (n - rank)``, or NaN with a warning when no residual dof is left."""
    if n > rank:
        return rss / (n - rank)
    warnings.warn(f"No residual degrees of freedom (n_samples={n}, rank={rank}); sigma2, "
                  "standard errors and intervals are NaN.", RuntimeWarning,
                  stacklevel=user_stacklevel())
    return float("nan")


def warn_rank_deficient(rank, n_columns, tol):
    """The warning of a rank-deficient design (the minimum-norm solution follows)."""
    warnings.warn(
        f"The design is rank deficient (numerical rank {rank} of {n_columns} columns, "
        f"tolerance rcond={tol:.3g}); returning the minimum-norm solution. Remove "
        "collinear or constant columns for unique estimates.", RuntimeWarning,
        stacklevel=user_stacklevel())


def _power_of_two_scales(A, xp):
    """Column scales 2^k near each column's norm (exact to divide by); 1 for zero columns."""
    norms = xp.linalg.vector_norm(A, axis=0)
    safe = xp.where(norms > 0, norms, xp.ones_like(norms))
    return xp.where(norms > 0, 2.0 ** xp.round(xp.log2(safe)), xp.ones_like(norms))


def _householder(v, xp):
    """Vector ``u`` and scalars with ``(I - u u^T / beta) v = alpha e_1``.

    The scalars stay 0-d arrays of ``v``'s dtype (long double keeps its digits).
    """
    nv = xp.linalg.vector_norm(v)
    alpha = -nv if bool(v[0] >= 0) else nv
    e0 = xp.where(xp.arange(v.shape[0]) == 0, xp.ones_like(v), xp.zeros_like(v))
    u = v - alpha * e0
    beta = xp.sum(u * u) / 2
    return u, beta, alpha


def _reflect(u, beta, M):
    """Apply ``I - u u^T / beta`` to a vector or the columns of a matrix."""
    if M.ndim == 1:
        return M - u * ((u @ M) / beta)
    return M - u[:, None] * ((u @ M) / beta)[None, :]


def _pivoted_qr_longdouble(A):
    """Householder QR with column pivoting in ``numpy.longdouble`` (LAPACK has none).

    Returns the thin ``Q`` (n x k), ``R`` (k x p) and the pivot order, ``k = min(n, p)``.
    ``O(n p^2)`` NumPy operations: meant for the small, badly conditioned problems
    where the extra digits matter.
    """
    A = np.array(A, dtype=np.longdouble, copy=True)
    n, p = A.shape
    k = min(n, p)
    piv = np.arange(p)
    reflections = []
    for j in range(k):
        m = j + int(np.argmax(np.sum(A[j:, j:] ** 2, axis=0)))
        if m != j:
            A[:, [j, m]] = A[:, [m, j]]
            piv[[j, m]] = piv[[m, j]]
        x = A[j:, j]
        nx = np.sqrt(np.sum(x * x))
        if nx == 0:
            reflections.append(None)
            continue
        u = x.copy()
        u[0] += nx if x[0] >= 0 else -nx
        beta = np.sum(u * u) / 2
        A[j:, j:] -= np.outer(u, (u @ A[j:, j:]) / beta)
        reflections.append(u)
    R = np.triu(A[:k, :])
    Q = np.zeros((n, k), dtype=np.longdouble)
    Q[np.arange(k), np.arange(k)] = 1
    for j in reversed(range(k)):
        u = reflections[j]
        if u is not None:
            Q[j:, :] -= np.outer(u, (u @ Q[j:, :]) / (np.sum(u * u) / 2))
    return Q, R, piv


def _solve_upper(R, B):
    """Back substitution ``R X = B`` (upper triangular) in R's dtype, any float type."""
    if R.dtype != np.longdouble:
        return scipy.linalg.solve_triangular(R, B, check_finite=False)
    X = np.array(B, dtype=np.longdouble, copy=True)
    for i in reversed(range(R.shape[0])):
        X[i] = (X[i] - R[i, i + 1:] @ X[i + 1:]) / R[i, i]
    return X


def _rank_tolerance(rcond, n, p, dtype):
    """Default ``10 max(sqrt(n), p) eps``. The rounding of the data moves each unit-norm
    column by about eps whatever n, and the QR's rounding errors grow like sqrt(n)
    (random signs), not like the worst-case bound n eps of NumPy's ``matrix_rank``:
    with that bound, repeating a design's rows changes its rank (NIST Filip, whose
    smallest scaled pivot is 1.3e-9, would count as rank-deficient past 6e6 rows)."""
    if rcond is not None:
        return float(rcond)
    eps = float(np.finfo(np.dtype(str(dtype).split(".")[-1])).eps)
    return 10.0 * max(math.sqrt(n), p) * eps


def _solve_reduced_numpy(A2, z2, tol):
    """Column-pivoted QR of ``A2`` (columns of norm about 1) and its numerical rank.

    Only designs that :func:`_fast_qr` finds badly conditioned (or long double) come
    here: ``geqp3`` is largely level-2 BLAS and slower than the blocked QR.
    """
    if A2.dtype == np.longdouble:
        Q2, R2, piv = _pivoted_qr_longdouble(A2)
    else:
        Q2, R2, piv = scipy.linalg.qr(A2, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(R2))
    rank = int(np.sum(diag > tol))
    return Q2, R2, piv, rank


def _min_norm(B, z, rank, xp):
    """Minimum-norm least squares ``B b = z`` keeping the top ``rank`` singular values."""
    U, s, Vt = xp.linalg.svd(B, full_matrices=False)
    U, s, Vt = U[:, :rank], s[:rank], Vt[:rank, :]
    b = Vt.T @ ((U.T @ z) / s)
    Vs = Vt.T / s[None, :]
    return b, Vs @ Vs.T, U, Vs


def _refine(Ap, yw, Qf, Rf, x, r):
    """Iterative refinement of ``min ||yw - Ap x||`` through its augmented system.

    Residuals ``f = yw - r - Ap x`` and ``g = -Ap^T r`` are formed in doubled
    precision (compensated dot products, :data:`._refinement.refinement_residuals_op`);
    corrections use the computed QR factors ``Ap = Qf Rf``. Stops when a
    correction no longer shrinks or is below rounding level. Returns the solution,
    the residual iterate ``r`` and the number of corrections taken. After at least
    one correction ``r`` is nearer the exact least-squares residual than ``yw - Ap
    x`` at the rounded ``x`` (it does not carry the rounding of ``x`` to float64):
    the residual sum of squares and the robust covariances use it.
    """
    last = np.inf
    steps = 0
    for _ in range(_MAX_REFINE_STEPS):
        f, g = refinement_residuals_op(np, Ap, yw, r, x)
        h = scipy.linalg.solve_triangular(Rf, g, trans="T", check_finite=False)
        d = Qf.T @ f - h
        dx = scipy.linalg.solve_triangular(Rf, d, check_finite=False)
        size = float(np.max(np.abs(dx)))
        if not np.isfinite(size) or size >= last:
            break
        x = x + dx
        r = r + (f - Qf @ d)
        last = size
        steps += 1
        if size <= 4 * np.finfo(np.float64).eps * float(np.max(np.abs(x))):
            break
    return x, r, steps


def _refine_inverse(Ap, Qf, Rf, Rinv):
    """``(Ap^T Ap)^{-1}`` refined column by column from ``Rinv Rinv^T``.

    ``R^{-1} R^{-T}`` is the exact inverse for a perturbed ``Ap + dA`` with ``|dA|``
    about ``eps |Ap|``, so it carries a relative error near ``eps cond(Ap)``
    (7.3 digits on NIST's Filip). Column ``j`` of the inverse is the ``x`` part of
    the augmented system ``[I Ap; Ap^T 0] [r; x] = [0; -e_j]``; the k systems are
    refined together as in :func:`_refine` (residuals in doubled precision,
    :data:`._refinement.inverse_refinement_residuals_op`; corrections through ``Qf`` and
    ``Rf``), which gains about ``-log10(eps cond(Ap))`` digits a step. ``O(n k^2)``
    a step. Each step shrinks the error by a factor ``rho`` near ``eps cond(Ap)``,
    so after a correction of relative size ``s`` about ``rho s`` is left: it stops
    when that is below rounding level (``rho`` from LAPACK's condition estimate of
    ``Rf``, times ``k``, or ``s`` itself if larger: the first correction measures
    the factorization's error, which is of the order of ``rho`` too), or when a
    correction no longer shrinks. Returns the symmetrised inverse and the number of
    corrections taken.
    """
    eps = np.finfo(np.float64).eps
    k = Rf.shape[0]
    (trcon,) = scipy.linalg.get_lapack_funcs(("trcon",), (Rf,))
    rcond, info = trcon(Rf, norm="1", uplo="U", diag="N")
    rho = k * eps / rcond if info == 0 and rcond > 0 else np.inf
    C = Rinv @ Rinv.T
    resid = -(Qf @ Rinv.T)
    Qc = np.ascontiguousarray(Qf)  # the kernel reads it by rows, one compiled layout
    last = np.inf
    steps = 0
    for _ in range(_MAX_REFINE_STEPS):
        F, G, QtF = inverse_refinement_residuals_op(np, Ap, resid, C, Qc)
        H = scipy.linalg.solve_triangular(Rf, G, trans="T", check_finite=False)
        D = QtF - H
        dC = scipy.linalg.solve_triangular(Rf, D, check_finite=False)
        size = float(np.max(np.max(np.abs(dC), axis=0) / np.max(np.abs(C), axis=0)))
        if not np.isfinite(size) or size >= last:
            break
        C = C + dC
        last = size
        steps += 1
        if size <= 4 * eps or size * max(size, rho) <= eps:
            break
        resid = resid + (F - Qf @ D)
    return (C + C.T) / 2, steps


def _fast_qr(Xw, v, scale, tol):
    """Unpivoted blocked QR of ``[v, Xw / scale]``, or None when pivoting is needed.

    The first Householder step on the column ``v`` is the same reflection the
    pivoted path applies, so both give the same factorization of a well-conditioned
    design; LAPACK's condition estimate of the intercept-free block decides.
    """
    n, p = Xw.shape
    k = p + (v is not None)
    Ap = np.empty((n, k), dtype=Xw.dtype, order="F")
    if v is not None:
        Ap[:, 0] = v
    np.divide(Xw, scale[None, :], out=Ap[:, k - p:])
    Q, R = scipy.linalg.qr(Ap, mode="economic", overwrite_a=True, check_finite=False)
    R2 = R[k - p:, k - p:]
    (trcon,) = scipy.linalg.get_lapack_funcs(("trcon",), (R2,))
    rcond, info = trcon(R2, norm="1", uplo="U", diag="N")
    # pivoting also sharpens R^{-1} (the standard errors) on graded, ill-conditioned
    # designs such as Longley (rcond 1e-4), so only condition numbers below 1e3 skip it
    if info != 0 or not rcond > max(100 * tol, _FAST_QR_RCOND):
        return None
    return Q, R


def _full_rank_result(Qf, Rf, order, Xw, yw, v, scale, refine, refine_cov=True):
    """Solution, unit covariances and leverages from ``[v, Xw / scale][:, order] = Qf Rf``.

    With ``refine`` (float64), the solution is polished by :func:`_refine` and, when
    ``refine_cov`` too, the unit covariance ``(A^T A)^{-1}`` by :func:`_refine_inverse`
    (the fast path of well-conditioned designs skips the latter: there ``R^{-1}
    R^{-T}`` is already accurate to about ``cond eps`` with ``cond < 1e3``).
    """
    k = Rf.shape[0]
    dtype = Rf.dtype
    Rinv = _solve_upper(Rf, np.eye(k, dtype=dtype))
    x = Rinv @ (Qf.T @ yw)
    cov_pivoted = None
    if refine and dtype == np.float64:
        # the factored matrix again, C-ordered: the residual kernel reads it by rows
        n, p = Xw.shape
        Ap = np.empty((n, k))
        if v is not None:
            Ap[:, 0] = v
        np.divide(Xw, scale[None, :], out=Ap[:, k - p:])
        if not np.array_equal(order, np.arange(k)):
            Ap = np.ascontiguousarray(Ap[:, order])
        x, refined_resid, steps = _refine(Ap, yw, Qf, Rf, x, yw - Ap @ x)
        if not steps:
            refined_resid = None  # no correction taken: not better than a compensated residual
        if refine_cov:
            cov_pivoted = _refine_inverse(Ap, Qf, Rf, Rinv)[0]
    else:
        refined_resid = None
    if cov_pivoted is None:
        cov_pivoted = Rinv @ Rinv.T
    theta = np.empty(k, dtype=dtype)
    theta[order] = x
    cov = np.empty((k, k), dtype=dtype)
    cov[np.ix_(order, order)] = cov_pivoted
    # theta = factor @ Qf.T @ yw: the rows of R^{-1} in the user's order and units
    factor = np.empty((k, k), dtype=dtype)
    factor[order, :] = Rinv
    factor[k - scale.shape[0]:, :] /= scale[:, None]
    if v is not None:
        c, b_s, var_c, cov_cb = theta[0], theta[1:], cov[0, 0], cov[0, 1:] / scale
        cov_s = cov[1:, 1:]
    else:
        c, b_s, var_c, cov_cb, cov_s = 0.0, theta, 0.0, None, cov
    return Bunch(coef=b_s / scale, intercept=c, cov_unit=cov_s / (scale[:, None] * scale[None, :]),
                 intercept_var_unit=var_c, intercept_cov_unit=cov_cb, rank=k,
                 leverage=np.sum(Qf * Qf, axis=1), basis=Qf, factor=factor,
                 refined_resid=refined_resid)


def resolve_solver(solver, xp, *, long_double=False) -> str:
    """The factorization of the whitened design :func:`gauss_markov` uses.

    ``"pivoted-qr"``: host LAPACK through SciPy (a blocked QR, column-pivoted Householder
    QR when that QR finds the design ill-conditioned), with iterative refinement and long
    double support; NumPy arrays only. ``"svd"``: the array API's SVD, any namespace.
    ``"auto"`` is ``"pivoted-qr"`` where the namespace is NumPy, ``"svd"`` elsewhere.

    Raises
    ------
    ValueError
        For ``"pivoted-qr"`` on arrays that are not NumPy's, and ``"svd"`` on long
        double data (``long_double``: no long double SVD exists).
    """
    if solver == "auto":
        return "pivoted-qr" if is_numpy_namespace(xp) else "svd"
    if solver == "pivoted-qr" and not is_numpy_namespace(xp):
        raise ValueError(f"solver='pivoted-qr' factors with host LAPACK (SciPy) and takes "
                         f"NumPy arrays; got arrays of {xp.__name__}. Use solver='svd' (or "
                         "'auto'), or pass NumPy arrays.")
    if solver == "svd" and long_double:
        raise ValueError("solver='svd' has no long double version; use solver='pivoted-qr' "
                         "(or 'auto') for long double data, or cast it to float64.")
    return solver


def _fit_whitened(Xw, yw, v, *, tol, refine, xp, factorization, refine_cov=True):
    """Solve ``min ||yw - v c - Xw b||`` (``v`` None: no intercept).

    ``factorization`` is ``"pivoted-qr"`` (NumPy) or ``"svd"``
    (:func:`resolve_solver`). ``refine_cov=False`` skips the refinement of ``(A^T
    A)^{-1}`` (robust covariances do not use it).

    Returns ``b``, ``c``, unit-scale covariances (multiply by sigma^2) of ``b``,
    of ``c`` and between them, the numerical rank (intercept included) and the
    leverages (squared row norms of an orthonormal basis of the fitted space).
    """
    n, p = Xw.shape
    numpy_path = factorization == "pivoted-qr"
    scale = _power_of_two_scales(Xw, xp)
    if numpy_path and p and Xw.dtype != np.longdouble and n >= p + (v is not None):
        fast = _fast_qr(Xw, v, scale, tol)
        if fast is not None:
            res = _full_rank_result(*fast, np.arange(p + (v is not None)), Xw, yw, v, scale,
                                    refine, refine_cov=False)
            res.well_conditioned = True
            return res
    A = Xw / scale[None, :]
    if v is not None:
        u, beta, r00 = _householder(v, xp)
        HA, Hy = _reflect(u, beta, A), _reflect(u, beta, yw)
        r0, z0, A2, z2 = HA[0, :], Hy[0], HA[1:, :], Hy[1:]
    else:
        A2, z2 = A, yw
    if numpy_path:
        Q2, R2, piv, rank = _solve_reduced_numpy(A2, z2, tol) if p else (None, None, None, 0)
    else:
        s = xp.linalg.svdvals(A2) if p else xp.zeros(0)
        rank = int(xp.sum(xp.astype(s > tol, xp.int32)))
    full = rank == p
    if p == 0:
        b_s, cov_s = xp.zeros(0, dtype=A.dtype), xp.zeros((0, 0), dtype=A.dtype)
        basis = xp.zeros((A2.shape[0], 0), dtype=A.dtype)
        Vs_s = xp.zeros((0, 0), dtype=A.dtype)
    elif full and numpy_path:
        if v is None:
            return _full_rank_result(Q2, R2, piv, Xw, yw, v, scale, refine, refine_cov)
        # [v, A[:, piv]] = H1 [e1, [0; Q2]] [[r00, r0[piv]], [0, R2]]
        Rf = np.zeros((p + 1, p + 1), dtype=A.dtype)
        Rf[0, 0], Rf[0, 1:], Rf[1:, 1:] = r00, r0[piv], R2
        M = np.zeros((n, p + 1), dtype=A.dtype)
        M[0, 0], M[1:, 1:] = 1, Q2
        return _full_rank_result(_reflect(u, beta, M), Rf, np.concatenate([[0], 1 + piv]), Xw,
                                 yw, v, scale, refine, refine_cov)
    elif numpy_path and A.dtype == np.longdouble:
        # no long-double SVD: the minimum-norm solution of a rank-deficient design
        # is computed in float64
        b, cov_b, basis, Vs = _min_norm((A2 * scale[None, :]).astype(np.float64),
                                        z2.astype(np.float64), rank, xp)
        b_s = b.astype(A.dtype) * scale
        cov_s = cov_b.astype(A.dtype) * (scale[:, None] * scale[None, :])
        basis = basis.astype(A.dtype)
        Vs_s = Vs.astype(A.dtype) * scale[:, None]
    elif full:
        b_s, cov_s, basis, Vs_s = _min_norm(A2, z2, p, xp)
    else:
        # minimum norm in the user's units, so unscale before the SVD
        b, cov_b, basis, Vs = _min_norm(A2 * scale[None, :], z2, rank, xp)
        b_s, cov_s = b * scale, cov_b * (scale[:, None] * scale[None, :])
        Vs_s = Vs * scale[:, None]
    if v is not None:
        c = (z0 - r0 @ b_s) / r00
        var_c = (1 + r0 @ (cov_s @ r0)) / r00**2
        cov_cb_s = -(cov_s @ r0) / r00
        # orthonormal basis of the fitted space: H1 [e1, [0; basis]]
        M = xp.concat([xp.zeros((1, basis.shape[1]), dtype=A.dtype), basis], axis=0)
        e1 = xp.where(xp.arange(n) == 0, xp.ones_like(v), xp.zeros_like(v))
        Qf = _reflect(u, beta, xp.concat([e1[:, None], M], axis=1))
        # theta = factor @ Qf.T @ yw, with Qf.T yw = [z0, basis.T z2]
        top = xp.concat([xp.asarray([1.0], dtype=A.dtype), -(r0 @ Vs_s)])[None, :] / r00
        low = xp.concat([xp.zeros((p, 1), dtype=A.dtype), Vs_s / scale[:, None]], axis=1)
        factor = xp.concat([top, low], axis=0)
    else:
        c, var_c, cov_cb_s, Qf = 0.0, 0.0, None, basis
        factor = Vs_s / scale[:, None]
    b = b_s / scale
    cov_b = cov_s / (scale[:, None] * scale[None, :])
    cov_cb = None if cov_cb_s is None else cov_cb_s / scale
    leverage = xp.sum(Qf * Qf, axis=1)
    return Bunch(coef=b, intercept=c, cov_unit=cov_b, intercept_var_unit=var_c,
                 intercept_cov_unit=cov_cb, rank=rank + (v is not None), leverage=leverage,
                 basis=Qf, factor=factor)


@public_function(arrays=("X", "y", "sigma", "sample_weight"), params=GAUSS_MARKOV_PARAMS,
                 dask="sketchlearn.linear_model._gauss_markov_dask:gauss_markov_dask")
def gauss_markov(X, y, *, sigma=None, sample_weight=None, fit_intercept=True, rho=None,
                 rcond=None, refine=True, max_iter=20, tol=1e-8, cov_type="nonrobust",
                 cov_kwds=None, use_t=None, solver="auto"):
    """Best linear unbiased estimate of a linear model (OLS, WLS, GLS, feasible GLS).

    Fits ``y = intercept + X coef + e`` with ``Cov(e) = sigma2 * Sigma`` by least
    squares on the whitened model, through a column-pivoted Householder QR (an SVD
    for non-NumPy arrays; see ``solver``), never the normal equations. See
    :class:`GaussMarkovRegressor` for the estimator with inference methods.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Design matrix (no constant column needed when ``fit_intercept``): NumPy,
        CuPy, or a tall Dask array chunked by rows (OLS, WLS, block-diagonal GLS, AR(1) errors,
        covariances ``"nonrobust"`` and HC0-HC3: TSQR and refinement over the chunks,
        the same numbers as in memory; see the user guide's Dask page).
    y : array of shape (n_samples,)
        Responses.
    sigma : None, "ar1", callable, array of shape (n,) or (n, n), list of blocks, \
default=None
        Error covariance up to the scale ``sigma2`` (estimated): None for equal
        variances, a vector of variances, an SPD matrix, a list of square SPD
        matrices (the diagonal blocks, in row order, of a block-diagonal covariance:
        clustered or panel errors, whitened block by block without forming the
        ``n x n`` matrix; on Dask the only covariance matrix accepted), ``"ar1"`` for
        AR(1) errors (``rho`` known, or estimated by feasible GLS when ``rho`` is
        None), or a callable ``sigma(n)`` returning one of these.
    sample_weight : array of shape (n,), optional
        WLS weights: observation ``i`` has error variance ``sigma2 / w_i``.
    fit_intercept : bool, default=True
        Estimate an intercept (not penalised, not scaled).
    rho : float in (-1, 1), optional
        AR(1) coefficient with ``sigma="ar1"``; None estimates it (feasible GLS,
        iterated from the OLS residuals until it changes by less than ``tol``).
    rcond : float, optional
        Rank tolerance: after whitening, removing the intercept direction and
        scaling each column to unit norm, a pivoted-QR diagonal entry below
        ``rcond`` marks a dependent column. Default ``10 * max(sqrt(n), p) * eps``
        with ``eps`` of the data's dtype: repeating the rows of a design does not
        change its rank.
    refine : bool or "coef", default=True
        With ``solver="pivoted-qr"``, polish float64 solutions by iterative
        refinement in extended precision (``O(n p)`` extra work per step) and, on
        designs too ill-conditioned for the fast unpivoted QR (condition number
        above about 1e3), the unit covariance ``(A^T A)^{-1}`` behind the
        non-robust standard errors (``O(n p^2)`` extended-precision work a step,
        usually two steps); ``sigma2`` then uses the refined residual sum of
        squares. ``"coef"`` refines the coefficients only: the standard errors keep
        the digits of the QR factor (about ``16 - log10(cond)``), for a fraction of
        the work when ``p`` is large. On Dask each step is a pass over the data,
        and the unit covariance is corrected in the first one instead (one
        ``O(n p^2 / 2)`` extended-precision product, the same digits; see the Dask
        user guide); ``refine=False`` fits in one pass (full rank, ``"nonrobust"``).
    max_iter : int, default=20
        Feasible-GLS iterations.
    tol : float, default=1e-8
        Feasible-GLS convergence tolerance on ``rho``.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster"}, \
default="nonrobust"
        Covariance of the estimates, named and defined as in statsmodels'
        ``OLS(...).fit(cov_type=...)``: ``"nonrobust"`` is ``sigma2 (A^T A)^{-1}``
        of the whitened design ``A``; the others are sandwiches
        ``(A^T A)^{-1} A^T Omega A (A^T A)^{-1}`` built from the whitened residuals
        (White's HC0-HC3, Newey-West HAC, one-way cluster). See the user guide.
    cov_kwds : dict, optional
        Options of ``cov_type``: for ``"HAC"``, ``maxlags`` (required, ``0 <=
        maxlags < n``), ``kernel`` (``"bartlett"``, default, or ``"uniform"``) and
        ``use_correction`` (default False: multiply by ``n / (n - k)``); for
        ``"cluster"``, ``groups`` (required, one label per sample, at least two
        clusters), ``use_correction`` (default True: ``G/(G-1) (n-1)/(n-k)``) and
        ``df_correction`` (default True: inference with ``G - 1`` dof).
    use_t : bool, optional
        Student t (and F) reference distributions instead of the normal (and
        chi-square). Default as statsmodels: True for ``"nonrobust"``, else False.
    solver : {"auto", "pivoted-qr", "svd"}, default="auto"
        Factorization of the whitened design. ``"pivoted-qr"``: host LAPACK through
        SciPy, NumPy arrays only; a blocked Householder QR, or a column-pivoted one when
        the design's condition number exceeds about 1e3 (or for long double data), with
        the iterative refinement of ``refine`` and long double support. ``"svd"``: the
        array API's SVD, for any array library (CuPy included), without refinement; no
        long double. ``"auto"`` is ``"pivoted-qr"`` for NumPy arrays and ``"svd"`` for
        the others. Both give the same estimates to rounding on well-conditioned
        designs; the pivoted QR with refinement keeps more digits on ill-conditioned
        ones (14-15 on NIST's StRD sets).

    Returns
    -------
    result : Bunch
        ``coef``, ``intercept``, ``cov_params`` (covariance of ``coef``),
        ``bse``, ``intercept_bse``, ``sigma2`` (unbiased), ``residuals``
        (``y - intercept - X coef``), ``whitened_residuals``, ``rank`` (the
        intercept counts), ``dof_resid``, ``leverage`` (diagonal of the whitened
        hat matrix), ``rho`` (AR(1) only), ``n_iter`` (number of fits: 1 unless
        feasible GLS iterates), and
        ``intercept_cov`` (covariance between the intercept and ``coef``),
        ``whitened_tss`` (total sum of squares of the whitened responses, centered
        when there is an intercept), ``basis`` (orthonormal basis of the
        whitened fitted space, ``n x rank``), ``cov_params_full`` (covariance of
        ``[intercept, coef]``, or of ``coef`` without intercept, as float64),
        ``cov_type``, ``use_t`` and ``df_inference`` (dof of the t and F
        distributions: ``dof_resid``, or clusters minus one). For Dask input the
        per-row entries (``residuals``, ``whitened_residuals``, ``leverage``,
        ``basis``) are lazy Dask arrays, and ``whitened_rss`` and ``n_passes`` (passes
        over the data) are added.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import gauss_markov
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> res = gauss_markov(X, 1.0 + 2.0 * X[:, 0] + np.array([0.1, -0.1, -0.1, 0.1]))
    >>> print(np.round(res.coef, 6), round(res.intercept, 6), round(res.sigma2, 6))
    [2.] 1.0 0.02
    >>> hc3 = gauss_markov(X, 1.0 + 2.0 * X[:, 0] + np.array([0.1, -0.1, -0.1, 0.1]),
    ...                    cov_type="HC3")
    >>> hc3.bse.shape, hc3.use_t
    ((1,), False)
    """
    X = check_array(X, "X", keep_longdouble=True)
    y = check_array(y, "y", ensure_2d=False, keep_longdouble=True)
    xp = get_namespace(X, y)
    n, p = X.shape
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}; they must match.")
    cov_opts = check_cov_kwds(cov_type, cov_kwds, n)
    extended = is_numpy_namespace(xp) and np.longdouble in (X.dtype, y.dtype)
    factorization = resolve_solver(solver, xp, long_double=extended)
    if extended:
        X, y = X.astype(np.longdouble), y.astype(np.longdouble)
        if is_block_list(sigma) or not (sigma is None or isinstance(sigma, str)
                                        or getattr(sigma, "ndim", 1) == 1):
            raise ValueError("Long double input works with sigma=None, a vector of variances "
                             "or 'ar1'; a covariance matrix needs float64 data.")
    work_dtype = xp.float64 if is_numpy_namespace(xp) and not extended else X.dtype
    tol_rank = _rank_tolerance(rcond, n, p, X.dtype)
    Xd, yd = xp.astype(X, work_dtype), xp.astype(y, work_dtype)
    estimate_rho = isinstance(sigma, str) and sigma == "ar1" and rho is None
    rho_now = 0.0 if estimate_rho else rho
    n_iter = 0
    while True:
        whiten = _whitener(sigma, n, xp=xp, dtype=work_dtype, sample_weight=sample_weight,
                           rho=rho_now)
        ones = xp.ones(n, dtype=work_dtype)
        if whiten is None:
            Xw, yw, v = Xd, yd, ones if fit_intercept else None
        else:
            Xw, yw, v = whiten(Xd), whiten(yd), whiten(ones) if fit_intercept else None
        fit = _fit_whitened(Xw, yw, v, tol=tol_rank, refine=bool(refine), xp=xp,
                            factorization=factorization,
                            refine_cov=cov_type == "nonrobust" and refine != "coef")
        residuals = yd - Xd @ fit.coef - fit.intercept
        n_iter += 1
        if not estimate_rho:
            break
        rho_new = ar1_coefficient(residuals)
        if feasible_gls_done(rho_new, rho_now, tol, n_iter, max_iter):
            break
        rho_now = rho_new
    if fit.rank < p + bool(fit_intercept):
        warn_rank_deficient(fit.rank, p + bool(fit_intercept), tol_rank)
    if factorization == "pivoted-qr" and refine and Xw.dtype == np.float64:
        # the residual cancels most digits of y: form it in doubled precision
        cols = np.column_stack([v, Xw]) if v is not None else np.ascontiguousarray(Xw)
        theta = np.concatenate([[fit.intercept], fit.coef]) if v is not None else fit.coef
        wres = refinement_residuals_op(np, cols, yw, np.zeros_like(yw), theta)[0]
    else:
        wres = yw - Xw @ fit.coef - (fit.intercept * v if v is not None else 0.0)
    # sigma2 needs the minimum of the residual sum of squares. At the coefficients
    # rounded to float64 it exceeds that minimum by ||A (b - b*)||^2, which swamps
    # a near-zero fit (Wampler2: 3x too large); refinement's residual iterate does not
    # carry that rounding. The sum at the rounded coefficients (doubled-precision
    # residuals) is an upper bound of the minimum, so the smaller of the two is kept:
    # an exact fit (Wampler1) keeps sigma2 = 0
    rss = xp.sum(wres * wres)
    rss = rss[()] if extended else float(rss)
    if fit.get("refined_resid") is not None:
        rss = min(rss, float(fit.refined_resid @ fit.refined_resid))
    dof = n - fit.rank
    sigma2 = unbiased_sigma2(rss, n, fit.rank)
    if v is not None:
        centered = yw - v * (float(v @ yw) / float(v @ v))
        tss = float(xp.sum(centered * centered))
    else:
        tss = float(xp.sum(yw * yw))
    if cov_type == "nonrobust":
        cov = sigma2 * fit.cov_unit
        var_c = sigma2 * fit.intercept_var_unit
        cov_cb = None if fit.intercept_cov_unit is None else sigma2 * fit.intercept_cov_unit
    else:
        # each residual enters the sandwich on its own (not only through the RSS, which
        # is stationary at the solution): take refinement's residual iterate, which
        # does not carry the rounding of the coefficients to float64
        e = wres if fit.get("refined_resid") is None else fit.refined_resid
        basis, factor, leverage = fit.basis, fit.factor, fit.leverage
        if (factorization == "pivoted-qr" and refine and Xw.dtype == np.float64
                and not fit.get("well_conditioned", False) and fit.rank == fit.factor.shape[0]
                and np.finfo(np.longdouble).eps < np.finfo(np.float64).eps):
            # an ill-conditioned design: the sandwich weighs each column of the
            # pseudo-inverse and loses more digits to the float64 factors than
            # sigma2 (A^T A)^{-1} does, so its factors are recomputed in long double
            # (O(n p^2), only for designs the fast QR rejected)
            ld = _fit_whitened(Xw.astype(np.longdouble), yw.astype(np.longdouble),
                               None if v is None else v.astype(np.longdouble), tol=tol_rank,
                               refine=False, xp=xp, factorization="pivoted-qr")
            if ld.rank == fit.rank:
                basis, factor, leverage = ld.basis, ld.factor, ld.leverage
                e = e.astype(np.longdouble)
        full = robust_covariance(cov_type, cov_opts, basis, factor, e, leverage, dof)
        full = xp.astype(full, work_dtype) if is_numpy_namespace(xp) and not extended else full
        if fit_intercept:
            cov, var_c, cov_cb = full[1:, 1:], full[0, 0], full[0, 1:]
        else:
            cov, var_c, cov_cb = full, 0.0, None
    if fit_intercept:
        cov_full = np.empty((p + 1, p + 1))
        cov_full[0, 0] = float(var_c)
        cov_full[0, 1:] = cov_full[1:, 0] = np.asarray(to_numpy(cov_cb), dtype=np.float64)
        cov_full[1:, 1:] = np.asarray(to_numpy(cov), dtype=np.float64)
    else:
        cov_full = np.asarray(to_numpy(cov), dtype=np.float64)
    use_t = (cov_type == "nonrobust") if use_t is None else bool(use_t)
    df_inference = (cov_opts["n_groups"] - 1 if cov_type == "cluster" and cov_opts["df_correction"]
                    else dof)
    out_dtype = X.dtype
    return Bunch(
        coef=xp.astype(fit.coef, out_dtype),
        intercept=np.longdouble(fit.intercept) if extended else float(fit.intercept),
        cov_params=xp.astype(cov, out_dtype),
        bse=xp.astype(xp.sqrt(xp.abs(xp.linalg.diagonal(cov))), out_dtype),
        intercept_bse=(np.sqrt(abs(var_c))[()] if extended
                       else math.sqrt(abs(float(var_c)))) if fit_intercept
        else 0.0,
        intercept_cov=(None if cov_cb is None else xp.astype(cov_cb, out_dtype)),
        cov_params_full=cov_full,
        cov_type=cov_type,
        use_t=use_t,
        df_inference=df_inference,
        sigma2=sigma2,
        residuals=xp.astype(residuals, out_dtype),
        whitened_residuals=xp.astype(wres, out_dtype),
        rank=fit.rank,
        dof_resid=dof,
        leverage=xp.astype(fit.leverage, out_dtype),
        rho=rho_now if isinstance(sigma, str) else None,
        n_iter=n_iter,
        whitened_tss=tss,
        basis=fit.basis,
    )
