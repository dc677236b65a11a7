"""Matrix completion: the algorithms, written once against the array API.

The per-row loops (restricted least-squares solves, sparse products, predictions
at the observed entries) are :class:`~sketchlearn._array_api.Dispatch` operations
with an array-API reference (the oracle), a Numba version for NumPy arrays and a
CuPy version for CuPy arrays. Everything else (QR and SVD of thin matrices, the
convergence tests) is array-API code that runs on the caller's device.

The results are always factors ``(U, s, V)``, with orthonormal columns in ``U``
(``m x r``) and ``V`` (``n x r``) and non-negative ``s`` (``r``), so the completed
matrix ``(U * s) @ V.T`` is never formed unless asked for.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import StrOptions

from .._array_api import (
    Dispatch,
    blas_single_thread,
    is_cupy_namespace,
    move_to,
    public_function,
    solve_lower,
    to_numpy,
)
from .._progress import progress_range
from .._random import as_generator, random_normal
from .._validation import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SEED,
    user_stacklevel,
)
from ._observed import Observed, as_observed, dense_from_observed, observed_mask_dense

__all__ = ["altmin_complete", "soft_impute", "svt_complete"]

# Parameter constraints of the functions, checked once by public_function; the
# estimators declare the same ones (plus ``denoise``). Ranks at most min(n_rows,
# n_cols) depend on the data: check_rank.
_INPUT_PARAMS = {"duplicates": [StrOptions({"raise", "mean"})], "random_state": SEED}
ALTMIN_PARAMS = {
    "rank": [*COUNT, None],
    "alpha": NON_NEGATIVE,
    "max_iter": COUNT,
    "tol": NON_NEGATIVE,
    "solver": [StrOptions({"auto", "cg", "exact", "sketch-cg"})],
    "cg_iter": COUNT,
    "solve_tol": PROBABILITY,
    "init_clip": [*POSITIVE, None],
    "verbose": ["verbose"],
    **_INPUT_PARAMS,
}
SOFT_IMPUTE_PARAMS = {
    "shrinkage": [*NON_NEGATIVE, None],
    "max_rank": [*COUNT, None],
    "solver": [StrOptions({"auto", "als", "svd"})],
    "max_iter": COUNT,
    "tol": NON_NEGATIVE,
    "verbose": ["verbose"],
    **_INPUT_PARAMS,
}
SVT_PARAMS = {
    "threshold": [*NON_NEGATIVE, StrOptions({"auto"})],
    "thresholding": [StrOptions({"hard", "soft"})],
    "max_rank": [*COUNT, None],
    **_INPUT_PARAMS,
}

# --------------------------------------------------------------------------- references


def _predict_observed_reference(xp, indptr, indices, rows, U, V):
    """``out[q] = U[rows[q]] . V[indices[q]]`` for every observed entry ``q``."""
    return xp.sum(xp.take(U, rows, axis=0) * xp.take(V, indices, axis=0), axis=1)


def _spmm_reference(xp, indptr, indices, data, D):
    """CSR times dense: ``out[i] = sum_{q in row i} data[q] D[indices[q]]``."""
    ptr = to_numpy(indptr).tolist()
    out = []
    for i in range(len(ptr) - 1):
        s, e = ptr[i], ptr[i + 1]
        if e == s:
            out.append(xp.zeros(D.shape[1], dtype=D.dtype))
        else:
            w = xp.reshape(data[s:e], (-1, 1))
            out.append(xp.sum(w * xp.take(D, indices[s:e], axis=0), axis=0))
    return xp.stack(out)


def _cg_rows_reference(xp, indptr, indices, data, X0, V, lam, n_iter, residual=False):
    """Warm-started Jacobi-preconditioned CG, ``n_iter`` steps, on every row's
    normal equations ``(V_i^T V_i + lam I) x = V_i^T data_i`` (``V_i``: the rows of
    ``V`` at the observed columns of row ``i``), started at ``X0[i]``. With
    ``residual``, ``(rows, sse)``: ``sse`` the sum of the squared residuals of the
    start, ``sum_q (data_q - X0[i] . V[indices[q]])^2`` in float64."""
    ptr = to_numpy(indptr).tolist()
    out = []
    sse = 0.0
    for i in range(len(ptr) - 1):
        s, e = ptr[i], ptr[i + 1]
        x = X0[i, :]
        Vi = xp.take(V, indices[s:e], axis=0)
        di = data[s:e]

        def apply(v, Vi=Vi):
            return xp.matmul(xp.matmul(Vi, v), Vi) + lam * v

        start = di - xp.matmul(Vi, x)
        if residual:  # in float64 from the inputs' values, as the kernels sum it
            r64 = (xp.astype(di, xp.float64)
                   - xp.matmul(xp.astype(Vi, xp.float64), xp.astype(x, xp.float64)))
            sse += float(xp.sum(r64 * r64))
        r = xp.matmul(start, Vi) - lam * x
        d = xp.sum(Vi * Vi, axis=0) + lam
        dmean = float(xp.mean(d))
        safe = xp.where(d > 0, d, xp.ones_like(d))
        z = xp.where(d > 0, r / safe, xp.zeros_like(r))
        p = z
        rz = float(xp.sum(r * z))
        for _ in range(n_iter):
            if not rz > 0.0:
                break
            ap = apply(p)
            pap = float(xp.sum(p * ap))
            if not pap > 1e-10 * dmean * float(xp.sum(p * p)):  # null direction: stop
                break
            a = rz / pap
            x = x + a * p
            r = r - a * ap
            z = xp.where(d > 0, r / safe, xp.zeros_like(r))
            rz_new = float(xp.sum(r * z))
            p = z + (rz_new / rz) * p
            rz = rz_new
        out.append(x)
    rows = xp.stack(out)
    return (rows, sse) if residual else rows


def _solve_rows_reference(xp, indptr, indices, data, V, lam):
    """Exact per-row ridge solves ``(V_i^T V_i + lam I) x = V_i^T data_i``; a row with
    a singular system gets a tiny ridge, a row with nothing gets 0, and a row whose
    system Cholesky cannot factor even then (NaN or inf in the data, an indefinite
    system from a negative ``lam``) is NaN: no ridge solution exists to report."""
    ptr = to_numpy(indptr).tolist()
    k = V.shape[1]
    eye = xp.eye(k, dtype=V.dtype)
    jitter = 1e-12 if V.dtype == xp.float64 else 1e-6
    out = []
    for i in range(len(ptr) - 1):
        s, e = ptr[i], ptr[i + 1]
        Vi = xp.take(V, indices[s:e], axis=0)
        G = xp.matmul(xp.matrix_transpose(Vi), Vi) + lam * eye
        trace = float(xp.sum(xp.linalg.diagonal(G)))
        if trace == 0.0:
            out.append(xp.zeros(k, dtype=V.dtype))
            continue
        rhs = xp.reshape(xp.matmul(data[s:e], Vi), (k, 1))
        eps = 0.0
        solved = False
        for _ in range(8):
            Gi = G + eps * eye
            try:
                L = xp.linalg.cholesky(Gi)
            except Exception:  # not positive definite: numpy's LinAlgError and kin
                eps = jitter * trace / k if eps == 0.0 else eps * 100.0
                continue
            # NumPy's Cholesky raises on NaN; other libraries return NaN factors.
            solved = bool(xp.all(xp.isfinite(L)))
            break
        if not solved:
            out.append(xp.full(k, xp.nan, dtype=V.dtype))
            continue
        out.append(xp.reshape(xp.linalg.solve(Gi, rhs), (k,)))
    return xp.stack(out)


_SM = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def _splitmix64(keys):
    """SplitMix64 of an array of uint64 keys, in NumPy (wrapping arithmetic); the Numba
    kernel hashes the same keys the same way."""
    u = np.uint64
    with np.errstate(over="ignore"):
        z = keys + u(_SM[0])
        z = (z ^ (z >> u(30))) * u(_SM[1])
        z = (z ^ (z >> u(27))) * u(_SM[2])
    return z ^ (z >> u(31))


def row_sketch(s, e, sketch_rows, nnz_sketch, seed):
    """The sparse sign embedding ``S`` of the row whose entries sit at CSR positions
    ``s..e-1``, as a dense NumPy array: the identity when ``e - s <= sketch_rows``;
    otherwise ``sketch_rows x (e - s)``, entry ``q`` hashed into ``nnz_sketch`` rows
    (``SplitMix64(seed + q nnz_sketch + t)``: high bits pick the row, the low bit the
    sign) with value ``+-1/sqrt(nnz_sketch)``, repeated rows adding up. Drawn on the
    host, like every random number here."""
    n_i = e - s
    if n_i <= sketch_rows:
        return np.eye(n_i)
    q = np.arange(s, e, dtype=np.uint64)
    t = np.arange(nnz_sketch, dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = np.uint64(seed) + q[:, None] * np.uint64(nnz_sketch) + t[None, :]
    h = _splitmix64(keys)
    rows = ((h >> np.uint64(33)) % np.uint64(sketch_rows)).astype(np.int64)
    signs = np.where((h & np.uint64(1)) == 1, 1.0, -1.0) / math.sqrt(nnz_sketch)
    S = np.zeros((sketch_rows, n_i))
    np.add.at(S, (rows.ravel(), np.repeat(np.arange(n_i), nnz_sketch)), signs.ravel())
    return S


def _sketch_cg_rows_reference(xp, indptr, indices, data, X0, V, lam, tol, max_iter,
                              sketch_rows, nnz_sketch, seed):
    """Sketch-preconditioned CG on every row's normal equations ``(V_i^T V_i + lam I) x
    = V_i^T data_i``, started at ``X0[i]``: the preconditioner is ``L L^T = (S V_i)^T
    (S V_i) + lam I`` (``S``: :func:`row_sketch`), and CG stops when ``|r|_{M^-1} <= tol
    |V_i^T data_i|_{M^-1}`` or after ``max_iter`` steps. Returns ``(X, info)`` with
    ``info[i] = (achieved |r|_{M^-1} / |V_i^T data_i|_{M^-1}, steps)``."""
    ptr = to_numpy(indptr).tolist()
    k = V.shape[1]
    eye = xp.eye(k, dtype=xp.float64)
    jitter = 1e-12 if V.dtype == xp.float64 else 1e-6
    V64 = xp.astype(V, xp.float64)
    data64 = xp.astype(data, xp.float64)
    out, info = [], []
    for i in range(len(ptr) - 1):
        s, e = ptr[i], ptr[i + 1]
        A = xp.take(V64, indices[s:e], axis=0)
        b = data64[s:e]
        SA = xp.matmul(move_to(row_sketch(s, e, sketch_rows, nnz_sketch, seed), xp), A)
        G = xp.matmul(xp.matrix_transpose(SA), SA) + lam * eye
        trace = float(xp.sum(xp.linalg.diagonal(G)))
        c = xp.matmul(b, A)
        if trace == 0.0:
            out.append(xp.zeros(k, dtype=xp.float64))
            info.append((0.0, 0.0))
            continue
        eps = 0.0
        for _ in range(8):
            try:
                L = xp.linalg.cholesky(G + eps * eye)
                break
            except Exception:  # not positive definite: numpy's LinAlgError and kin
                eps = jitter * trace / k if eps == 0.0 else eps * 100.0

        def precond(r, L=L):
            w = xp.linalg.solve(L, r)
            return xp.linalg.solve(xp.matrix_transpose(L), w), float(xp.sum(w * w))

        def apply(v, A=A):
            return xp.matmul(xp.matmul(A, v), A) + lam * v

        _, cc = precond(c)
        if not cc > 0.0:
            out.append(xp.zeros(k, dtype=xp.float64))
            info.append((0.0, 0.0))
            continue
        dmean = float(xp.sum(A * A)) / k + lam
        x = xp.astype(X0[i, :], xp.float64)
        r = c - apply(x)
        z, rz = precond(r)
        p = z
        it = 0
        while rz > tol * tol * cc and it < max_iter:
            ap = apply(p)
            pap = float(xp.sum(p * ap))
            if not pap > 1e-10 * dmean * float(xp.sum(p * p)):  # null direction
                break
            a = rz / pap
            x = x + a * p
            r = r - a * ap
            z, rz_new = precond(r)
            p = z + (rz_new / rz) * p
            rz = rz_new
            it += 1
        out.append(x)
        info.append((math.sqrt(max(rz, 0.0) / cc), float(it)))
    return (xp.astype(xp.stack(out), V.dtype),
            move_to(np.asarray(info, dtype=np.float64).reshape(-1, 2), xp))


# ------------------------------------------------------------- example inputs (tests)


def _example_observed(rng, m, n, nnz, dtype, index_dtype=None):
    """Observed entries of an ``m x n`` matrix as the solvers receive them: repeated
    pairs averaged, row 1 left empty (a row with nothing observed), on the host; the
    indices are int32 as ``make_observed`` gives them below 2^31, or ``index_dtype``
    (int64 above)."""
    rows, cols = rng.integers(0, m, nnz), rng.integers(0, n, nnz)
    rows[rows == 1] = 0
    obs = as_observed((rows, cols, rng.normal(size=nnz).astype(dtype), (m, n)),
                      duplicates="mean")
    if index_dtype is not None:
        for name in ("rows", "cols", "indptr", "rows_c", "indptr_c", "perm_c"):
            setattr(obs, name, getattr(obs, name).astype(index_dtype))
    return obs


# Observed sets of the examples: float64, float32, and float64 with int64 indices.
_EXAMPLE_SETS = ((np.float64, None), (np.float32, None), (np.float64, np.int64))


def _predict_observed_examples(xp, rng):
    """Predictions at the observed entries of 40 x 30 factors of rank 4."""
    out = []
    for dtype, index_dtype in _EXAMPLE_SETS:
        obs = _example_observed(rng, 40, 30, 300, dtype, index_dtype)
        U, V = (rng.normal(size=(k, 4)).astype(dtype) for k in (40, 30))
        out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.rows, U, V)),
                    {}))
    return out


def _spmm_examples(xp, rng):
    """``S V`` by rows and ``S^T U`` by columns (CSC order, with a column that may be
    empty), and a column of ones (the row sums of squares)."""
    out = []
    for dtype, index_dtype in _EXAMPLE_SETS:
        obs = _example_observed(rng, 40, 30, 300, dtype, index_dtype)
        S = obs.vals * rng.normal(size=obs.nnz).astype(dtype)
        U, V = (rng.normal(size=(k, 3)).astype(dtype) for k in (40, 30))
        out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, S, V)), {}))
        out.append((tuple(move_to(a, xp) for a in (obs.indptr_c, obs.rows_c, S[obs.perm_c],
                                                   U)), {}))
    obs = _example_observed(rng, 25, 20, 150, np.float64)
    ones = np.ones((20, 1))
    out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.vals**2, ones)), {}))
    return out


def _cg_rows_examples(xp, rng):
    """A few warm-started CG steps with a ridge, and more without one (rows with fewer
    entries than the rank have singular systems: CG stops on a null direction)."""
    out = []
    for dtype, index_dtype in _EXAMPLE_SETS:
        obs = _example_observed(rng, 40, 30, 300, dtype, index_dtype)
        U, V = (rng.normal(size=(k, 4)).astype(dtype) for k in (40, 30))
        arrays = tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.vals, U, V))
        out.append((arrays + (0.3, 3), {}))
        out.append((arrays + (0.3, 2), {"residual": True}))
        if dtype == np.float64 and index_dtype is None:
            out.append((arrays + (0.0, 6), {}))
    return out


def _solve_rows_examples(xp, rng):
    """Exact ridge solves per row (with the empty row), without a ridge on rows with
    many entries each (nonsingular systems; a singular one has no unique solution to
    compare), and with a factor row of NaN (a diverged sweep): the rows that observe
    it have no Cholesky factor and are NaN, the others are solved."""
    out = []
    for dtype, index_dtype in _EXAMPLE_SETS:
        obs = _example_observed(rng, 40, 30, 300, dtype, index_dtype)
        V = rng.normal(size=(30, 4)).astype(dtype)
        out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.vals, V))
                    + (0.5,), {}))
    dense = _example_observed(rng, 40, 30, 1000, np.float64)
    V = rng.normal(size=(30, 4))
    out.append((tuple(move_to(a, xp) for a in (dense.indptr, dense.cols, dense.vals, V))
                + (0.0,), {}))
    obs = _example_observed(rng, 40, 30, 300, np.float64)
    V = rng.normal(size=(30, 4))
    V[3] = np.nan
    out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.vals, V))
                + (0.5,), {}))
    return out


def _sketch_cg_rows_examples(xp, rng):
    """Robust AltMin's regressions on an orthonormal factor: rows with nothing, with
    fewer entries than the sketch (identity sketch) and with more (hashed sketch),
    to a tight tolerance, with a ridge, and cut short by ``max_iter``."""
    out = []
    k = 4
    sketch_rows = _SKETCH_FACTOR * k  # as _altmin_sketch: ~20 entries a row, some fewer
    for (dtype, index_dtype), (lam, tol, max_iter) in zip(
            _EXAMPLE_SETS + ((np.float64, None),),
            ((0.0, 1e-8, 50), (0.0, 1e-4, 50), (0.3, 1e-6, 50), (0.0, 1e-12, 2)),
            strict=True):
        obs = _example_observed(rng, 30, 40, 600, dtype, index_dtype)
        V = np.linalg.qr(rng.normal(size=(40, k)))[0].astype(dtype)
        X0 = rng.normal(size=(30, k)).astype(dtype)
        seed = int(rng.integers(0, 2**63))
        out.append((tuple(move_to(a, xp) for a in (obs.indptr, obs.cols, obs.vals, X0, V))
                    + (lam, tol, max_iter, sketch_rows, _SKETCH_NNZ, seed), {}))
    return out


predict_observed = Dispatch(
    _predict_observed_reference,
    numba="sketchlearn.completion._numba:predict_observed",
    cupy="sketchlearn.completion._cupy:predict_observed",
    examples=_predict_observed_examples,
)
spmm = Dispatch(
    _spmm_reference,
    numba="sketchlearn.completion._numba:spmm",
    cupy="sketchlearn.completion._cupy:spmm",
    examples=_spmm_examples,
)
cg_rows = Dispatch(
    _cg_rows_reference,
    numba="sketchlearn.completion._numba:cg_rows",
    cupy="sketchlearn.completion._cupy:cg_rows",
    examples=_cg_rows_examples,
)
sketch_cg_rows = Dispatch(
    _sketch_cg_rows_reference,
    numba="sketchlearn.completion._numba:sketch_cg_rows",
    cupy="sketchlearn.completion._cupy:sketch_cg_rows",
    examples=_sketch_cg_rows_examples,
)
solve_rows = Dispatch(
    _solve_rows_reference,
    numba="sketchlearn.completion._numba:solve_rows",
    cupy="sketchlearn.completion._cupy:solve_rows",
    examples=_solve_rows_examples,
)


# --------------------------------------------------------------------------- helpers


def _single_blas(func):
    """Run ``func(obs, ...)`` under :func:`blas_single_thread` for ``obs.xp``."""

    @functools.wraps(func)
    def wrapper(obs, *args, **kwargs):
        with blas_single_thread(obs.xp):
            return func(obs, *args, **kwargs)

    return wrapper


def default_rank(shape, cap=10) -> int:
    return max(1, min(cap, shape[0], shape[1]))


def check_rank(rank, shape, name="rank") -> int:
    m, n = shape
    if rank is None:
        return default_rank(shape)
    rank = int(rank)
    if rank < 1:
        raise ValueError(f"{name} must be at least 1, got {rank}.")
    if rank > min(m, n):
        raise ValueError(f"{name}={rank} is larger than min(n_rows, n_cols) = {min(m, n)} for "
                         f"a {m} x {n} matrix; choose {name} <= {min(m, n)}.")
    return rank


def predict(obs: Observed, U, V):
    """Values of ``U @ V.T`` at the observed entries, in CSR order."""
    return predict_observed(obs.xp, obs.indptr, obs.cols, obs.rows, U, V)


def _svd_small(xp, A):
    """Thin SVD of a dense matrix (any namespace); a tall-and-thin one goes through
    :func:`thin_qr` and the SVD of its small ``R`` factor."""
    m, r = A.shape
    if m >= 4 * r and m > 64:
        Q, R = thin_qr(xp, A)
        W, s, Zt = xp.linalg.svd(R, full_matrices=False)
        return xp.matmul(Q, W), s, Zt
    return xp.linalg.svd(A, full_matrices=False)


def _chol_qr_once(xp, A):
    G = xp.matmul(xp.matrix_transpose(A), A)
    L = xp.linalg.cholesky(G)  # raises on a singular G
    d = xp.linalg.diagonal(L)
    if not bool(xp.all(d > 0)) or float(xp.min(d)) < 1e-6 * float(xp.max(d)):
        raise ValueError("ill-conditioned")
    Qt = solve_lower(xp, L, xp.matrix_transpose(A))
    return xp.matrix_transpose(Qt), xp.matrix_transpose(L)


def thin_qr(xp, A):
    """Thin QR of a tall matrix by Cholesky QR, twice (CholeskyQR2: orthogonal to
    working precision for condition numbers below about 1e6), falling back to
    Householder QR. A Gram matrix and a small solve instead of LAPACK's tall QR:
    several times faster on few cores."""
    try:
        Q1, R1 = _chol_qr_once(xp, A)
        Q, R2 = _chol_qr_once(xp, Q1)
        return Q, xp.matmul(R2, R1)
    except Exception:  # singular or ill-conditioned: numpy LinAlgError, ValueError
        return xp.linalg.qr(A)


def orthonormalize(xp, A):
    return thin_qr(xp, A)[0]


def uses_dense_svd(shape, k) -> bool:
    """Whether :func:`top_svd` takes the dense SVD: few entries, or a rank close to
    ``min(m, n)`` (where neither ARPACK nor a range finder gains anything)."""
    m, n = shape
    return k >= min(m, n) - 1 or m * n <= 40_000


# AltMin's start (top_svd's method="randomized"): subspace iteration with
# START_OVERSAMPLE extra columns and START_POWER power iterations. A start, not the SVD:
# the sweeps refine it, so it need only be as good as the exact one *after* them. Kept
# internal (not a parameter): a user tunes AltMin by rank, alpha and max_iter, not by
# its start. Measured in memory (iterates equal to the Dask ones) on the Dask
# benchmark's problem (20000 x 5000, rank 20, spectrum 0.75^j, noise 0.3, 18 entries
# a row, alpha 3.6), held-out RMSE after 10 sweeps, ARPACK start 0.5900 (both solvers):
# q=0 0.5955; q=1 0.5917; q=2 0.5918/0.5903/0.5922 (seeds 0-2); q=3 0.5912/0.5903;
# p=5 or 20 alike; at convergence (tol=1e-4, ~52 sweeps) 0.5866 vs 0.5867/0.5862
# (q=2). q=1 was as good as q=2 there; the second power iteration is the margin for
# spectra with a smaller gap (tests/completion/test_altmin_start.py: tan of the
# principal angles to the exact SVD 0.09 at q=1, 0.01 at q=2). Each power iteration is
# two passes over the entries (two Dask round trips): 6 in all.
START_OVERSAMPLE = 10
START_POWER = 2
START_METHOD = "randomized"


def range_finder_svd(obs: Observed, k: int, scale: float, rng, *, oversample=None,
                     n_power=None):
    """Approximate top ``k`` singular triplets of ``A = scale * P_Omega(X)`` by a
    randomized range finder with subspace iteration (Halko, Martinsson & Tropp 2011,
    Algorithms 4.4 and 5.1): ``Q = orth(A G)`` for a Gaussian ``G`` (``n x (k + p)``,
    drawn on the host from ``rng``), ``n_power`` times ``Q = orth(A orth(A^T Q))``,
    then the SVD of the small ``Q^T A``. Every product is one pass over the entries
    (``spmm`` on the CSR or the CSC order), ``2 n_power + 2`` in all; every basis is
    orthonormalised by :func:`thin_qr`. The Dask path
    (:meth:`sketchlearn.completion._dask._ALS.range_finder_svd`) runs the same steps
    on the same ``G``, with the products summed blockwise.
    """
    xp = obs.xp
    data = obs.vals * scale
    data_c = obs.to_csc_order(data)
    # A @ B: CSR rows; A^T @ B: the CSC order (CSR of the transpose).
    times = lambda B: spmm(xp, obs.indptr, obs.cols, data, B)  # noqa: E731
    times_t = lambda B: spmm(xp, obs.indptr_c, obs.rows_c, data_c, B)  # noqa: E731
    return range_finder_steps(xp, obs.shape, data.dtype, k, rng, times, times_t,
                              oversample=oversample, n_power=n_power)


def range_finder_steps(xp, shape, dtype, k, rng, times, times_t, *, oversample=None,
                       n_power=None):
    """The steps of :func:`range_finder_svd` given the products ``times(B) = A B`` and
    ``times_t(B) = A^T B`` of the ``m x n`` matrix ``A``: shared by the in-memory and
    the Dask code (there each product is one pass over the blocks)."""
    m, n = shape
    oversample = START_OVERSAMPLE if oversample is None else oversample
    n_power = START_POWER if n_power is None else n_power
    ell = min(k + oversample, m, n)
    G = random_normal(rng, (n, ell), xp, dtype)
    Q = orthonormalize(xp, times(G))
    for _ in range(n_power):
        Q = orthonormalize(xp, times(orthonormalize(xp, times_t(Q))))
    Z = times_t(Q)  # (Q^T A)^T, n x ell
    W, s, Ht = _svd_small(xp, Z)  # Q^T A = Z^T = (Q H) s W^T, up to Q
    U = xp.matmul(Q, xp.matrix_transpose(Ht))
    return U[:, :k], s[:k], W[:, :k]


def top_svd(obs: Observed, k: int, scale: float, rng, values=None, method="arpack"):
    """Top ``k`` singular triplets of ``scale * P_Omega(X)`` (``values`` replaces the
    observed values when given, in CSR order).

    Dense LAPACK SVD for small or nearly square-rank problems
    (:func:`uses_dense_svd`); otherwise ``method="arpack"``: ARPACK (SciPy) or CuPy's
    ``svds`` on the sparse matrix, ``method="randomized"``: :func:`range_finder_svd`
    (AltMin's start; needs ``values=None``). The sparse matrix is never densified
    when large.
    """
    xp = obs.xp
    m, n = obs.shape
    vals = obs.vals if values is None else values
    data = vals * scale
    if uses_dense_svd(obs.shape, k):
        dense = dense_from_observed(
            Observed(xp, obs.shape, obs.rows, obs.cols, data, obs.indptr, obs.rows_c,
                     obs.cols_c, obs.to_csc_order(data), obs.indptr_c, obs.perm_c),
            xp.zeros((m, n), dtype=data.dtype))
        U, s, Vt = _svd_small(xp, dense)
        return U[:, :k], s[:k], xp.matrix_transpose(Vt[:k, :])
    if method == "randomized":
        if values is not None:
            raise ValueError("method='randomized' takes the observed values (values=None).")
        return range_finder_svd(obs, k, scale, rng)
    if is_cupy_namespace(xp):
        import cupyx.scipy.sparse as csp
        from cupyx.scipy.sparse.linalg import svds as csvds

        A = csp.csr_matrix((data, obs.cols, obs.indptr), shape=(m, n))
        U, s, Vt = csvds(A, k=k, which="LM")
    else:
        import scipy.sparse as sp
        from scipy.sparse.linalg import svds

        A = sp.csr_matrix((to_numpy(data), to_numpy(obs.cols), to_numpy(obs.indptr)),
                          shape=(m, n))
        v0 = rng.standard_normal(min(m, n))
        U, s, Vt = svds(A, k=k, v0=v0.astype(A.dtype), solver="arpack")
        U, s, Vt = (move_to(np.ascontiguousarray(a), xp) for a in (U, s, Vt))
    order = xp.argsort(-s)
    U = xp.take(U, order, axis=1)
    s = xp.take(s, order)
    Vt = xp.take(Vt, order, axis=0)
    return (xp.astype(U, data.dtype), xp.astype(s, data.dtype),
            xp.astype(xp.matrix_transpose(Vt), data.dtype))


def factors_to_svd(xp, A, B):
    """``A @ B.T = U diag(s) V^T`` with orthonormal ``U``, ``V`` (QR + a small SVD)."""
    Qa, Ra = thin_qr(xp, A)
    Qb, Rb = thin_qr(xp, B)
    W, s, Zt = _svd_small(xp, xp.matmul(Ra, xp.matrix_transpose(Rb)))
    return xp.matmul(Qa, W), s, xp.matmul(Qb, xp.matrix_transpose(Zt))


def _rms(xp, v) -> float:
    return float(xp.sqrt(xp.mean(v * v)))


# --------------------------------------------------------------------------- AltMin


# Sketch of a row with |Omega_i| entries: _SKETCH_FACTOR * rank rows (the identity when
# the row has no more entries than that), _SKETCH_NNZ signs per entry.
_SKETCH_FACTOR = 4
_SKETCH_NNZ = 1


# solver="auto": exact ALS below this rank, CG from it on. Per observed entry and
# half-step the exact update costs about k^2 / 2 multiply-adds and 4 CG steps 10 k:
# they cross at k = 20, and the benchmark altmin_solvers measures exact ahead at
# rank 10 (1.55x to the held-out target) and CG ahead at ranks 25, 50, 100 (1.1x,
# 1.4x, 2x).
_AUTO_CG_RANK = 20


def resolve_altmin_solver(solver, rank) -> str:
    """The solver ``"auto"`` stands for at this rank (other names pass through)."""
    if solver == "auto":
        return "exact" if rank < _AUTO_CG_RANK else "cg"
    return solver


def clip_rows(xp, U0, init_clip):
    """Rows of ``U0`` (``m x k``) longer than ``init_clip * sqrt(k / m)`` shortened to
    that length (their RMS length is ``sqrt(k / m)`` when ``U0`` is orthonormal), then
    re-orthonormalised; ``init_clip=None`` only re-orthonormalises."""
    m, k = U0.shape
    if init_clip is not None:
        norms = xp.sqrt(xp.sum(U0 * U0, axis=1))
        cap = init_clip * math.sqrt(k / m)
        factor = xp.where(norms > cap, cap / xp.where(norms > 0, norms, 1.0), 1.0)
        U0 = U0 * xp.reshape(xp.astype(factor, U0.dtype), (-1, 1))
    return orthonormalize(xp, U0)


def _check_stop(res, res_prev, tol, rms_vals):
    change = abs(res_prev - res) / res_prev if math.isfinite(res_prev) and res_prev > 0 \
        else math.inf
    return res <= tol * rms_vals or change <= tol, change


@_single_blas
def _altmin(obs: Observed, rank, *, alpha, max_iter, tol, solver, cg_iter, init_clip, rng,
            verbose, solve_tol=1e-6):
    xp = obs.xp
    m, n = obs.shape
    k = rank
    solver = resolve_altmin_solver(solver, k)
    if solver == "sketch-cg":
        if alpha > 0:
            raise ValueError(
                "solver='sketch-cg' solves the unregularised regressions of robust "
                f"alternating minimization; alpha={alpha} needs solver='cg' or 'exact'.")
    p_hat = obs.nnz / (m * n)
    U0, s0, V0 = top_svd(obs, k, 1.0 / p_hat, rng, method=START_METHOD)
    if solver == "sketch-cg":
        return _altmin_sketch(obs, k, U0, s0, V0, max_iter=max_iter, tol=tol,
                              solve_tol=solve_tol, init_clip=init_clip, rng=rng,
                              verbose=verbose)
    if init_clip is not None:
        # Incoherence-preserving start (compare Jain, Netrapalli & Sanghavi 2013, who zero
        # the large entries instead): rows of the left singular vectors longer than
        # init_clip * sqrt(k / m) (their RMS length is sqrt(k / m)) are shortened to that
        # length, then re-orthonormalised.
        U0 = clip_rows(xp, U0, init_clip)
    root = xp.sqrt(xp.maximum(s0, xp.asarray(0, dtype=s0.dtype)))
    U = U0 * root
    # First half-step solved exactly (once), then approximate warm-started solves.
    V = solve_rows(xp, obs.indptr_c, obs.rows_c, obs.vals_c, U, alpha)
    rms_vals = _rms(xp, obs.vals) or 1.0
    res_prev = math.inf
    res = math.inf
    change = math.inf
    n_iter = 0
    converged = False
    for it in progress_range(max_iter, verbose, "AltMin"):
        n_iter = it + 1
        if solver == "cg":
            U = cg_rows(xp, obs.indptr, obs.cols, obs.vals, U, V, alpha, cg_iter)
            V = cg_rows(xp, obs.indptr_c, obs.rows_c, obs.vals_c, V, U, alpha, cg_iter)
        else:
            U = solve_rows(xp, obs.indptr, obs.cols, obs.vals, V, alpha)
            V = solve_rows(xp, obs.indptr_c, obs.rows_c, obs.vals_c, U, alpha)
        # Balance the factors (same product): keeps both half-steps equally conditioned.
        Uo, s, Vo = factors_to_svd(xp, U, V)
        root = xp.sqrt(s)
        U, V = Uo * root, Vo * root
        res = _rms(xp, obs.vals - predict(obs, U, V))
        if verbose > 1:
            print(f"AltMin sweep {n_iter}: observed RMSE {res:.3e}")
        converged, change = _check_stop(res, res_prev, tol, rms_vals)
        if converged:
            break
        res_prev = res
    if not converged:
        _warn_not_converged(max_iter, res, change, tol)
    return Uo, s, Vo, n_iter, res


def soft_impute_change(xp, UoU, VVo, D_old, D):
    """softImpute-ALS's stopping quantity: the relative change of ``U D^2 V^T`` in
    Frobenius norm, from the thin products ``UoU = U_old^T U`` and ``VVo = V^T V_old``
    (in memory, or summed over row chunks on Dask)."""
    Do2, Dn2 = D_old * D_old, D * D
    old_sq = float(xp.sum(Do2 * Do2))
    cross = float(xp.sum(xp.matmul(UoU * Dn2, VVo) * xp.reshape(Do2, (-1, 1))
                         * xp.eye(Do2.shape[0], dtype=Do2.dtype)))
    new_sq = float(xp.sum(Dn2 * Dn2))
    return (old_sq + new_sq - 2.0 * cross) / old_sq if old_sq > 0 else math.inf


def warn_svt_kept(keep, max_rank, shape, tau, largest):
    """SVT's warnings (in memory or on Dask) when the threshold ``tau`` keeps every
    computed singular value (``max_rank`` may be too small) or none (the estimate is
    zero; ``largest``: the top singular value)."""
    if keep == max_rank and max_rank < min(shape):
        warnings.warn(
            f"All {max_rank} computed singular values exceed the threshold {tau:.3g}; the "
            "estimate may need a larger max_rank.", UserWarning, stacklevel=user_stacklevel())
    if keep == 0:
        warnings.warn(
            f"No singular value of the rescaled observed matrix exceeds the threshold "
            f"{tau:.3g} (largest: {largest:.3g}); the estimate is the zero matrix. "
            "Pass a smaller threshold.", UserWarning, stacklevel=user_stacklevel())


def warn_soft_impute_not_converged(max_iter, ratio, tol):
    """softImpute-ALS ran ``max_iter`` sweeps without its relative change reaching
    ``tol`` (in memory or on Dask)."""
    if max_iter > 0:
        warnings.warn(
            f"softImpute-ALS did not converge in {max_iter} sweeps (relative change "
            f"{ratio:.2e}, tol={tol}). Increase max_iter or tol.", ConvergenceWarning,
            stacklevel=user_stacklevel())


def warn_altmin_end(worst, solve_tol, max_cg, converged, max_iter, res, change, tol):
    """The warnings at the end of an AltMin fit (in memory or blocked on Dask): row
    solves that stopped short of ``solve_tol`` in the last sweep (``worst``: the
    largest relative residual and how many), and sweeps that ran out."""
    if worst[1]:
        warnings.warn(
            f"In the last AltMin sweep, {worst[1]} row solves stopped short of "
            f"solve_tol={solve_tol} (worst relative residual {worst[0]:.2e}) after "
            f"{max_cg} CG steps or on a singular system; the fit is accurate to about "
            "that level.", ConvergenceWarning, stacklevel=user_stacklevel())
    if not converged:
        _warn_not_converged(max_iter, res, change, tol)


def _warn_not_converged(max_iter, res, change, tol):
    warnings.warn(
        f"AltMin did not converge in {max_iter} sweeps: the observed-entry RMSE "
        f"({res:.3e}) changed by {change:.2e} (relative) in the last sweep, tol={tol}. "
        "Increase max_iter or tol.", ConvergenceWarning, stacklevel=user_stacklevel())


def _altmin_sketch(obs: Observed, k, U0, s0, V0, *, max_iter, tol, solve_tol, init_clip, rng,
                   verbose):
    """Robust alternating minimization (Gu, Song, Yin and Zhang, 2023): each half-step
    regresses every row (column) on the current orthonormal factor by sketch-
    preconditioned CG to the relative accuracy ``solve_tol``, then orthonormalises the
    result (thin QR). Warm starts carry the current product over to the new basis."""
    xp = obs.xp
    U = clip_rows(xp, U0, init_clip)
    # Start of the first regression: the spectral estimate U0 s0 V0^T in the basis U.
    Y = xp.matmul(V0 * s0, xp.matmul(xp.matrix_transpose(U0), U))
    sketch_rows = _SKETCH_FACTOR * k
    max_cg = 2 * k + 20  # CG is exact after k steps in exact arithmetic
    rms_vals = _rms(xp, obs.vals) or 1.0
    res_prev = res = change = math.inf
    n_iter = 0
    converged = False
    worst = (0.0, 0)
    for it in progress_range(max_iter, verbose, "AltMin"):
        n_iter = it + 1
        seeds = rng.integers(0, 2**63, size=2)
        Y, info_v = sketch_cg_rows(xp, obs.indptr_c, obs.rows_c, obs.vals_c, Y, U, 0.0,
                                   solve_tol, max_cg, sketch_rows, _SKETCH_NNZ, int(seeds[0]))
        V, Ry = thin_qr(xp, Y)
        X = xp.matmul(U, xp.matrix_transpose(Ry))  # U Y^T = (U Ry^T) V^T
        X, info_u = sketch_cg_rows(xp, obs.indptr, obs.cols, obs.vals, X, V, 0.0, solve_tol,
                                   max_cg, sketch_rows, _SKETCH_NNZ, int(seeds[1]))
        U, Rx = thin_qr(xp, X)
        Y = xp.matmul(V, xp.matrix_transpose(Rx))  # X V^T = U (V Rx^T)^T
        res = _rms(xp, obs.vals - predict(obs, X, V))
        achieved = np.concatenate([to_numpy(info_v)[:, 0], to_numpy(info_u)[:, 0]])
        missed = int(np.sum(achieved > solve_tol))
        worst = (float(achieved.max()) if achieved.size else 0.0, missed)
        if verbose > 1:
            steps = np.concatenate([to_numpy(info_v)[:, 1], to_numpy(info_u)[:, 1]])
            print(f"AltMin sweep {n_iter}: observed RMSE {res:.3e}, CG steps per row "
                  f"{steps.mean():.1f} (max {steps.max():.0f})")
        converged, change = _check_stop(res, res_prev, tol, rms_vals)
        if converged:
            break
        res_prev = res
    warn_altmin_end(worst, solve_tol, max_cg, converged, max_iter, res, change, tol)
    Uo, s, Vo = factors_to_svd(xp, X, V)
    return Uo, s, Vo, n_iter, res


@public_function(arrays=("X", "observed_mask"), params=ALTMIN_PARAMS,
                 dask="sketchlearn.completion._dask:altmin_complete_dask")
def altmin_complete(X, rank=None, *, alpha=0.0, max_iter=100, tol=1e-4, solver="auto",
                    cg_iter=4, solve_tol=1e-6, init_clip=2.0, observed_mask=None,
                    duplicates="raise", random_state=None, verbose=0):
    """Low-rank matrix completion by alternating minimization; returns the factors.

    The functional twin of :class:`AltMinCompleter` (see it for the algorithm and
    the parameters).

    Parameters
    ----------
    X : array with NaN, sparse matrix or (rows, cols, values[, shape]) tuple
        The partly observed matrix. On Dask: a row-chunked Dask array with NaN, a
        tuple of Dask arrays, or a Dask DataFrame of (row, col, value) triplets
        (``U``, with one row per matrix row, is then a Dask array, ``s`` and ``V``
        NumPy; see the user guide's Dask page).
    rank : int, optional
        Target rank, default ``min(10, n_rows, n_cols)``.
    alpha, max_iter, tol, solver, cg_iter, solve_tol, init_clip, duplicates, random_state, verbose
        As for :class:`AltMinCompleter`.
    observed_mask : array of bool or sparse matrix, optional
        Observed positions (default: not NaN for dense ``X``, stored entries for
        sparse ``X``).

    Returns
    -------
    U : array of shape (n_rows, rank)
        Orthonormal left factor.
    s : array of shape (rank,)
        Singular values of the completed matrix, decreasing.
    V : array of shape (n_cols, rank)
        Orthonormal right factor; the completion is ``(U * s) @ V.T``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import altmin_complete
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> U, s, V = altmin_complete(X, rank=2, tol=1e-10, max_iter=500, random_state=0)
    >>> bool(np.abs((U * s) @ V.T - M).max() < 1e-6)
    True
    """
    obs = as_observed(X, observed_mask, duplicates=duplicates)
    k = check_rank(rank, obs.shape)
    U, s, V, _, _ = _altmin(obs, k, alpha=alpha, max_iter=max_iter, tol=tol, solver=solver,
                            cg_iter=cg_iter, init_clip=init_clip,
                            rng=as_generator(random_state), verbose=verbose,
                            solve_tol=solve_tol)
    return U, s, V


# --------------------------------------------------------------------------- SoftImpute


def lambda_max(obs: Observed, rng, values=None) -> float:
    """Largest singular value of ``P_Omega(X)``: the smallest shrinkage giving 0."""
    _, s, _ = top_svd(obs, 1, 1.0, rng, values=values)
    return float(s[0])


@_single_blas
def _soft_impute_als(obs: Observed, lam, rank, *, max_iter, tol, rng, init=None,
                     verbose=0):
    """softImpute-ALS (Hastie, Mazumder, Lee & Zadeh 2015, Algorithm 3.1).

    The iterate is ``A B^T`` with ``A = U D``, ``B = V D``; the filled matrix
    ``X* = P_Omega(X) + P_Omega^perp(A B^T)`` is used only through products with
    thin matrices, ``X*^T U = S^T U + V D^2`` with the sparse residual
    ``S = P_Omega(X - A B^T)``, so a sweep costs O(|Omega| r + (m + n) r^2).
    """
    xp = obs.xp
    m, n = obs.shape
    dt = obs.dtype
    if init is None:
        # Start from the rank-r SVD of P_Omega(X) (the first Soft-Impute iterate from
        # Z = 0, before thresholding); Hastie et al. start from a random U, D = I,
        # V = 0, which takes more sweeps to reach the same point.
        U, s0, V = top_svd(obs, rank, 1.0, rng)
        D = xp.sqrt(xp.maximum(s0, xp.asarray(1e-12 * float(s0[0]), dtype=dt)))
    else:
        U, D, V = init
    n_iter = 0
    ratio = math.inf
    for it in progress_range(max_iter, verbose, "softImpute-ALS"):
        n_iter = it + 1
        U_old, D_old, V_old = U, D, V
        D2 = D * D
        # B step.
        S = obs.vals - predict(obs, U * D, V * D)
        StU = spmm(xp, obs.indptr_c, obs.rows_c, obs.to_csc_order(S), U)  # S^T U (n x r)
        Bt = (StU + V * D2) * (D / (D2 + lam))
        Vn, d2, Rt = _svd_small(xp, Bt * D)
        V, D = Vn, xp.sqrt(d2)
        U = xp.matmul(U, xp.matrix_transpose(Rt))
        # A step.
        D2 = D * D
        S = obs.vals - predict(obs, U * D, V * D)
        SV = spmm(xp, obs.indptr, obs.cols, S, V)  # S V (m x r)
        At = (SV + U * D2) * (D / (D2 + lam))
        Un, d2, Rt = _svd_small(xp, At * D)
        U, D = Un, xp.sqrt(d2)
        V = xp.matmul(V, xp.matrix_transpose(Rt))
        ratio = soft_impute_change(xp, xp.matmul(xp.matrix_transpose(U_old), U),
                                   xp.matmul(xp.matrix_transpose(V), V_old), D_old, D)
        if verbose > 1:
            print(f"softImpute-ALS sweep {n_iter}: relative change {ratio:.3e}")
        if ratio < tol:
            break
    else:
        warn_soft_impute_not_converged(max_iter, ratio, tol)
    # Final step: SVD of X* V, then soft-threshold the singular values.
    D2 = D * D
    S = obs.vals - predict(obs, U * D, V * D)
    M = spmm(xp, obs.indptr, obs.cols, S, V) + U * D2
    Uf, sig, Rt = _svd_small(xp, M)
    Vf = xp.matmul(V, xp.matrix_transpose(Rt))
    s = xp.maximum(sig - lam, xp.zeros_like(sig))
    state = (U, D, V)
    return Uf, s, Vf, n_iter, state


@_single_blas
def _soft_impute_svd(obs: Observed, lam, rank, *, max_iter, tol, init=None, verbose=0):
    """Soft-Impute with a full SVD per step (Mazumder, Hastie & Tibshirani 2010):
    ``Z <- S_lam(P_Omega(X) + P_Omega^perp(Z))`` truncated to ``rank``. Dense; for
    small matrices."""
    xp = obs.xp
    m, n = obs.shape
    dt = obs.dtype
    mask = observed_mask_dense(obs)
    Xd = dense_from_observed(obs, xp.zeros((m, n), dtype=dt))
    Z = xp.zeros((m, n), dtype=dt) if init is None else init
    n_iter = 0
    delta = math.inf
    for it in progress_range(max_iter, verbose, "Soft-Impute (SVD)"):
        n_iter = it + 1
        U, sig, Vt = _svd_small(xp, xp.where(mask, Xd, Z))
        s = xp.maximum(sig[:rank] - lam, xp.zeros_like(sig[:rank]))
        Z_new = xp.matmul(U[:, :rank] * s, Vt[:rank, :])
        num = float(xp.sum((Z_new - Z) ** 2))
        den = float(xp.sum(Z * Z))
        delta = num / den if den > 0 else (0.0 if num == 0 else math.inf)
        Z = Z_new
        if delta < tol:
            break
    else:
        if max_iter > 0:
            warnings.warn(
                f"Soft-Impute (SVD) did not converge in {max_iter} iterations (relative "
                f"change {delta:.2e}, tol={tol}). Increase max_iter or tol.",
                ConvergenceWarning, stacklevel=user_stacklevel())
    return U[:, :rank], s, xp.matrix_transpose(Vt[:rank, :]), n_iter, Z


def resolve_solver(solver, shape) -> str:
    if solver == "auto":
        return "svd" if shape[0] * shape[1] <= 20_000 else "als"
    return solver


@public_function(arrays=("X", "observed_mask"), params=SOFT_IMPUTE_PARAMS,
                 dask="sketchlearn.completion._dask_lowrank:soft_impute_dask")
def soft_impute(X, shrinkage=None, max_rank=None, *, solver="auto", max_iter=100, tol=1e-6,
                observed_mask=None, duplicates="raise", random_state=None, verbose=0):
    """Nuclear-norm regularised matrix completion (Soft-Impute); returns the factors.

    The functional twin of :class:`SoftImpute` (see it for the algorithm and the
    parameters). Minimises
    ``0.5 ||P_Omega(X - Z)||_F^2 + shrinkage ||Z||_*`` over matrices of rank at most
    ``max_rank``.

    Parameters
    ----------
    X : array with NaN, sparse matrix or (rows, cols, values[, shape]) tuple
        The partly observed matrix. On Dask: a row-chunked Dask array with NaN, a
        tuple of Dask arrays, or a Dask DataFrame of (row, col, value) triplets
        (``U``, with one row per matrix row, is then a Dask array, ``s`` and ``V``
        NumPy; see the user guide's Dask page).
    shrinkage : float, optional
        Nuclear-norm weight; default ``sigma_max(P_Omega(X)) / 50``.
    max_rank : int, optional
        Working rank; default ``min(n_rows, n_cols, 100)``.
    solver, max_iter, tol, observed_mask, duplicates, random_state, verbose
        As for :class:`SoftImpute`.

    Returns
    -------
    U : array of shape (n_rows, r)
    s : array of shape (r,)
        Soft-thresholded singular values (zeros possible).
    V : array of shape (n_cols, r)

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import soft_impute
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.6, M, np.nan)
    >>> U, s, V = soft_impute(X, shrinkage=0.5, max_rank=5, random_state=0)
    >>> err = np.linalg.norm((U * s) @ V.T - M) / np.linalg.norm(M)
    >>> bool(err < 0.1)
    True
    """
    obs = as_observed(X, observed_mask, duplicates=duplicates)
    rng = as_generator(random_state)
    rank = check_rank(max_rank if max_rank is not None else default_rank(obs.shape, 100),
                      obs.shape, "max_rank")
    lam = lambda_max(obs, rng) / 50.0 if shrinkage is None else float(shrinkage)
    if resolve_solver(solver, obs.shape) == "svd":
        U, s, V, _, _ = _soft_impute_svd(obs, lam, rank, max_iter=max_iter, tol=tol,
                                         verbose=verbose)
    else:
        U, s, V, _, _ = _soft_impute_als(obs, lam, rank, max_iter=max_iter, tol=tol, rng=rng,
                                         verbose=verbose)
    return U, s, V


# --------------------------------------------------------------------------- SVT


def svt_threshold(obs: Observed, p_hat: float) -> float:
    """Data-driven threshold for the singular values of ``Y = P_Omega(X) / p_hat``.

    An entry of ``Y`` has variance ``(M_ij^2 + sigma^2) / p - M_ij^2``, about
    ``(1/p - 1) x_ij^2`` in terms of the data. Summing over a row, ``v_i = (1/p - 1)
    (1/p) sum_{j in Omega_i} x_ij^2`` estimates the row's total variance (likewise
    ``w_j`` for a column), and the spectral norm of ``Y - E Y`` is at most about
    ``sqrt(max_i v_i) + sqrt(max_j w_j)`` (Bandeira and van Handel, 2016): the
    threshold.
    """
    xp = obs.xp
    m, n = obs.shape
    c = max(1.0 / p_hat - 1.0, 0.0) / p_hat
    sq = obs.vals * obs.vals
    row = spmm(xp, obs.indptr, obs.cols, sq, xp.ones((n, 1), dtype=sq.dtype))
    col = spmm(xp, obs.indptr_c, obs.rows_c, obs.to_csc_order(sq),
               xp.ones((m, 1), dtype=sq.dtype))
    return math.sqrt(c * float(xp.max(row))) + math.sqrt(c * float(xp.max(col)))


@_single_blas
def _svt(obs: Observed, *, threshold, thresholding, max_rank, rng):
    xp = obs.xp
    m, n = obs.shape
    p_hat = obs.nnz / (m * n)
    U, sig, V = top_svd(obs, max_rank, 1.0 / p_hat, rng)
    tau = svt_threshold(obs, p_hat) if threshold == "auto" else float(threshold)
    keep = int(to_numpy(xp.sum(xp.astype(sig > tau, xp.int32))))
    warn_svt_kept(keep, max_rank, (m, n), tau, float(sig[0]))
    if keep == 0:
        keep = 1
        s = xp.zeros(1, dtype=sig.dtype)
    elif thresholding == "soft":
        s = sig[:keep] - tau
    else:
        s = sig[:keep]
    return U[:, :keep], s, V[:, :keep], tau


@public_function(arrays=("X", "observed_mask"), params=SVT_PARAMS,
                 dask="sketchlearn.completion._dask_lowrank:svt_complete_dask")
def svt_complete(X, threshold="auto", *, thresholding="hard", max_rank=None,
                 observed_mask=None, duplicates="raise", random_state=None):
    """One-shot singular value thresholding of the rescaled observed matrix.

    The functional twin of :class:`SVTCompleter`.

    Parameters
    ----------
    X : array with NaN, sparse matrix or (rows, cols, values[, shape]) tuple
        The partly observed matrix. On Dask: a row-chunked Dask array with NaN, a
        tuple of Dask arrays, or a Dask DataFrame of (row, col, value) triplets
        (``U``, with one row per matrix row, is then a Dask array, ``s`` and ``V``
        NumPy; see the user guide's Dask page).
    threshold : float or "auto", default="auto"
        Threshold on the singular values of ``P_Omega(X) / p_hat``.
    thresholding : {"hard", "soft"}, default="hard"
    max_rank : int, optional
        Number of singular values computed; default ``min(n_rows, n_cols, 100)``.
    observed_mask, duplicates, random_state
        As for :class:`SVTCompleter`.

    Returns
    -------
    U, s, V : arrays
        Factors of the estimate ``(U * s) @ V.T``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import svt_complete
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 200))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> U, s, V = svt_complete(X, random_state=0)
    >>> s.shape
    (2,)
    """
    obs = as_observed(X, observed_mask, duplicates=duplicates)
    rank = check_rank(max_rank if max_rank is not None else default_rank(obs.shape, 100),
                      obs.shape, "max_rank")
    U, s, V, _ = _svt(obs, threshold=threshold, thresholding=thresholding, max_rank=rank,
                      rng=as_generator(random_state))
    return U, s, V

