"""Tests of sketchlearn.completion: oracles, recovery guarantees, invariances, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import svds
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from sketchlearn.completion import (
    AltMinCompleter,
    IncrementalTruncatedSVD,
    SoftImpute,
    SoftImputeCV,
    SVTCompleter,
    _core,
    altmin_complete,
    soft_impute,
    svt_complete,
)
from sketchlearn.completion._observed import as_observed

# --------------------------------------------------------------------------- data


def low_rank(m, n, k, seed=0, dtype=np.float64):
    """Random incoherent rank-k matrix with entries of variance about 1."""
    rng = np.random.default_rng(seed)
    return ((rng.normal(size=(m, k)) @ rng.normal(size=(k, n))) / np.sqrt(k)).astype(dtype)


def sample(M, frac, seed=1, noise=0.0):
    rng = np.random.default_rng(seed)
    mask = rng.random(M.shape) < frac
    noisy = M + noise * rng.normal(size=M.shape) if noise else M
    return np.where(mask, noisy, np.nan).astype(M.dtype), mask


def rel_err(Z, M):
    return np.linalg.norm(Z - M) / np.linalg.norm(M)


def completed(est):
    return (est.U_ * est.singular_values_) @ est.V_.T


def random_csr(m, n, k, nnz, seed=0, dtype=np.float64, empty_row=True):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, m, nnz)
    cols = rng.integers(0, n, nnz)
    if empty_row:
        rows[rows == 1] = 0  # row 1 empty
    vals = rng.normal(size=nnz)
    obs = as_observed((rows, cols, vals.astype(dtype), (m, n)), duplicates="mean")
    return obs, rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 5e-3)])
def test_numba_kernels_match_reference(dtype, rtol):
    obs, U, V = random_csr(40, 30, 4, 300, dtype=dtype)
    # without ridge, rows with fewer than k entries have singular systems whose
    # solution is not unique: compare on rows with many entries (and the empty row)
    dense, _, _ = random_csr(40, 30, 4, 1000, dtype=dtype, seed=1)
    for name, args in [
        ("predict_observed", (obs.indptr, obs.cols, obs.rows, U, V)),
        ("spmm", (obs.indptr, obs.cols, obs.vals, V)),
        ("cg_rows", (obs.indptr, obs.cols, obs.vals, U, V, 0.3, 3)),
        ("cg_rows", (obs.indptr, obs.cols, obs.vals, U, V, 0.0, 6)),
        ("solve_rows", (obs.indptr, obs.cols, obs.vals, V, 0.5)),
        ("solve_rows", (dense.indptr, dense.cols, dense.vals, V, 0.0)),
    ]:
        op = getattr(_core, name)
        ref = op.implementation("reference")(np, *args)
        fast = op.implementation("numba")(np, *args)
        assert fast.dtype == dtype, name
        np.testing.assert_allclose(fast, ref, rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("case", ["nan-in-V", "negative-lam"])
def test_numba_solve_rows_equals_reference_where_cholesky_fails(case):
    """A row whose system Cholesky cannot factor even with the added ridge (NaN in the
    factor it touches; an indefinite system) is NaN on both backends, not left holding
    the previous row's solution."""
    obs, _, V = random_csr(40, 30, 4, 300, seed=5, empty_row=False)
    lam = 0.5
    if case == "nan-in-V":
        V = V.copy()
        V[obs.cols[0]] = np.nan  # every row that observes this column
    else:
        lam = -50.0  # V_i^T V_i - 50 I: indefinite, never positive definite
    args = (obs.indptr, obs.cols, obs.vals, V, lam)
    ref = _core.solve_rows.implementation("reference")(np, *args)
    fast = _core.solve_rows.implementation("numba")(np, *args)
    bad = np.isnan(ref).any(axis=1)
    touches = np.array([obs.cols[0] in obs.cols[obs.indptr[i]:obs.indptr[i + 1]]
                        for i in range(obs.indptr.shape[0] - 1)])
    np.testing.assert_array_equal(bad, touches if case == "nan-in-V" else True)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast[~bad], ref[~bad], rtol=1e-9, atol=1e-12)


def test_cg_converges_to_exact_solve():
    obs, U, V = random_csr(30, 20, 3, 400, seed=3, empty_row=False)
    exact = _core.solve_rows(np, obs.indptr, obs.cols, obs.vals, V, 0.1)
    cg = _core.cg_rows(np, obs.indptr, obs.cols, obs.vals, U, V, 0.1, 30)
    np.testing.assert_allclose(cg, exact, rtol=1e-8, atol=1e-10)


def test_reference_runs_under_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    obs, U, V = random_csr(12, 9, 2, 50, seed=4)
    ref = _core.cg_rows.implementation("reference")
    args_np = (obs.indptr, obs.cols, obs.vals, U, V, 0.2, 3)
    args_x = tuple(xps.asarray(a) if isinstance(a, np.ndarray) else a for a in args_np)
    np.testing.assert_allclose(np.asarray(ref(xps, *args_x)), ref(np, *args_np), rtol=1e-12)
    sref = _core.solve_rows.implementation("reference")
    np.testing.assert_allclose(
        np.asarray(sref(xps, *args_x[:3], args_x[4], 0.3)),
        sref(np, obs.indptr, obs.cols, obs.vals, V, 0.3), rtol=1e-12)


@pytest.mark.gpu
def test_cupy_kernels_match_reference():
    cupy = pytest.importorskip("cupy")
    obs, U, V = random_csr(50, 40, 5, 500)
    for name, args in [
        ("predict_observed", (obs.indptr, obs.cols, obs.rows, U, V)),
        ("spmm", (obs.indptr, obs.cols, obs.vals, V)),
        ("cg_rows", (obs.indptr, obs.cols, obs.vals, U, V, 0.3, 3)),
        ("solve_rows", (obs.indptr, obs.cols, obs.vals, V, 0.5)),
    ]:
        op = getattr(_core, name)
        ref = op.implementation("reference")(np, *args)
        gargs = tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        got = op.implementation("cupy")(cupy, *gargs)
        np.testing.assert_allclose(cupy.asnumpy(got), ref, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.gpu
def test_cupy_solve_rows_is_nan_where_no_cholesky_succeeds():
    # A row whose system never factors (NaN in V, or lam < 0) is NaN, never the stale
    # scratch of an earlier row or launch: the first call leaves finite solutions in
    # the memory pool's block that the second call's scratch reuses.
    cupy = pytest.importorskip("cupy")
    obs, _, V = random_csr(50, 40, 5, 500, empty_row=False)
    solve = _core.solve_rows.implementation("cupy")
    reference = _core.solve_rows.implementation("reference")
    dev = [cupy.asarray(a) for a in (obs.indptr, obs.cols, obs.vals)]
    good = cupy.asnumpy(solve(cupy, *dev, cupy.asarray(V), 0.5))
    assert np.isfinite(good).all()

    bad = V.copy()
    bad[7] = np.nan
    hit = np.array([7 in obs.cols[obs.indptr[i]:obs.indptr[i + 1]] for i in range(50)])
    assert hit.any() and not hit.all()
    got = cupy.asnumpy(solve(cupy, *dev, cupy.asarray(bad), 0.5))
    assert np.isnan(got[hit]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = reference(np, obs.indptr, obs.cols, obs.vals, bad, 0.5)
    assert np.isnan(expected[hit]).all()
    np.testing.assert_allclose(got[~hit], expected[~hit], rtol=1e-9, atol=1e-9)

    # lam < 0 so large that no jitter makes any row positive definite
    got = cupy.asnumpy(solve(cupy, *dev, cupy.asarray(V), -1e6))
    assert np.isnan(got).all()


@pytest.mark.gpu
def test_cupy_estimator_matches_numpy():
    cupy = pytest.importorskip("cupy")
    M = low_rank(80, 60, 3)
    X, _ = sample(M, 0.5)
    a = AltMinCompleter(rank=3, tol=1e-10, max_iter=200, random_state=0)
    Zn = a.fit_transform(X)
    Zg = a.fit_transform(cupy.asarray(X))
    assert isinstance(Zg, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(Zg), Zn, atol=1e-6)


# --------------------------------------------------------------------------- recovery


@pytest.mark.parametrize("solver", ["cg", "exact"])
def test_altmin_exact_recovery(solver):
    m, n, k = 150, 120, 3
    M = low_rank(m, n, k)
    # |Omega| ~ 0.3 m n = 5400 >= 2 k (m + n) log(m + n) ~ 9000? use a fraction above the
    # information limit with margin: k (m + n - k) = 801 degrees of freedom.
    X, mask = sample(M, 0.3)
    est = AltMinCompleter(rank=k, solver=solver, tol=1e-12, max_iter=500, random_state=0)
    Z = est.fit_transform(X)
    assert rel_err(Z, M) < 1e-6
    assert est.residual_ < 1e-8


def test_altmin_noisy_recovery_near_oracle():
    m, n, k, sigma = 300, 200, 3, 0.1
    M = low_rank(m, n, k)
    X, mask = sample(M, 0.25, noise=sigma)
    est = AltMinCompleter(rank=k, random_state=0, tol=1e-6).fit(X)
    Z = completed(est)
    rmse = np.sqrt(np.mean((Z - M)[~mask] ** 2))
    oracle = sigma * np.sqrt(k * (m + n) / mask.sum())
    assert rmse < 2.0 * oracle, (rmse, oracle)


def test_soft_impute_als_equals_exact_svd_solver():
    M = low_rank(60, 50, 2)
    X, _ = sample(M, 0.6, noise=0.05)
    kw = dict(shrinkage=2.0, max_rank=30, tol=1e-12, max_iter=3000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = SoftImpute(solver="als", **kw).fit(X)
        b = SoftImpute(solver="svd", **kw).fit(X)
    assert a.rank_ == b.rank_ < 30
    np.testing.assert_allclose(completed(a), completed(b), atol=1e-4)
    np.testing.assert_allclose(a.singular_values_, b.singular_values_, rtol=1e-4)


def test_soft_impute_fixed_point():
    """The solution satisfies Z = S_lam(P_Omega(X) + P_Omega^perp(Z))."""
    M = low_rank(40, 30, 2)
    X, mask = sample(M, 0.7, noise=0.1)
    lam = 1.5
    Z = SoftImpute(shrinkage=lam, max_rank=30, solver="svd", tol=1e-14, max_iter=5000,
                   denoise=True).fit_transform(X)
    U, s, Vt = np.linalg.svd(np.where(mask, X, Z), full_matrices=False)
    np.testing.assert_allclose((U * np.maximum(s - lam, 0)) @ Vt, Z, atol=1e-6)


def test_soft_impute_als_matches_on_large_sparse_problem():
    M = low_rank(400, 300, 4)
    X, mask = sample(M, 0.2, noise=0.05)
    est = SoftImpute(shrinkage=1.0, max_rank=12, random_state=0).fit(X)
    assert est.solver_ == "als"
    Z = completed(est)
    assert np.sqrt(np.mean((Z - M)[~mask] ** 2)) < 0.1


def test_soft_impute_cv_path():
    M = low_rank(120, 90, 3)
    X, mask = sample(M, 0.4, noise=0.1)
    est = SoftImputeCV(shrinkages=6, max_rank=15, random_state=0).fit(X)
    assert est.validation_rmse_.shape == (6,)
    assert np.all(np.diff(est.shrinkages_) < 0)
    assert est.best_shrinkage_ == est.shrinkages_[np.argmin(est.validation_rmse_)]
    rmse = np.sqrt(np.mean((completed(est) - M)[~mask] ** 2))
    assert rmse < 0.15
    grid = SoftImputeCV(shrinkages=[0.5, 5.0, 50.0], max_rank=15, random_state=0).fit(X)
    np.testing.assert_array_equal(grid.shrinkages_, [50.0, 5.0, 0.5])


def test_svt_finds_rank_and_approximates():
    M = low_rank(400, 300, 2, seed=2)
    X, mask = sample(M, 0.5)
    est = SVTCompleter(random_state=0).fit(X)
    assert est.rank_ == 2
    assert rel_err(completed(est), M) < 0.5
    soft = SVTCompleter(thresholding="soft", random_state=0).fit(X)
    assert np.all(soft.singular_values_ < est.singular_values_)
    with pytest.warns(UserWarning, match="zero matrix"):
        zero = SVTCompleter(threshold=1e9, random_state=0).fit(X)
    assert zero.singular_values_[0] == 0


def svt_oracle(X, threshold, thresholding, max_rank):
    """SVTCompleter's documented estimate, from a full NumPy SVD: ``Y = P_Omega(X) / p_hat``,
    threshold ``sqrt(max_i v_i) + sqrt(max_j w_j)`` with ``v_i = (1/p_hat - 1) / p_hat
    sum_{j in Omega_i} x_ij^2`` (``w_j`` likewise over a column) unless given, and the top
    ``max_rank`` singular values kept above it (hard) or shrunk by it (soft)."""
    mask = ~np.isnan(X)
    m, n = X.shape
    p_hat = mask.sum() / (m * n)
    X0 = np.where(mask, X, 0.0)
    Y = X0 / p_hat
    U, s, Vt = np.linalg.svd(Y)  # full SVD, every singular triplet
    if threshold == "auto":
        c = (1.0 / p_hat - 1.0) / p_hat
        v = [c * sum(X0[i, j] ** 2 for j in range(n) if mask[i, j]) for i in range(m)]
        w = [c * sum(X0[i, j] ** 2 for i in range(m) if mask[i, j]) for j in range(n)]
        tau = np.sqrt(max(v)) + np.sqrt(max(w))
    else:
        tau = float(threshold)
    s = s[:max_rank]
    keep = s > tau
    kept = s[keep] - tau if thresholding == "soft" else s[keep]
    Z = (U[:, :max_rank][:, keep] * kept) @ Vt[:max_rank][keep]
    return Z, kept, tau, s


def svt_data():
    """30 x 20, rank 4 with spread singular values, 60% observed, small noise."""
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.normal(size=(30, 4)))[0]
    V = np.linalg.qr(rng.normal(size=(20, 4)))[0]
    M = (U * [40.0, 20.0, 12.0, 6.0]) @ V.T
    mask = rng.random(M.shape) < 0.6
    return np.where(mask, M + 0.1 * rng.normal(size=M.shape), np.nan), mask


@pytest.mark.parametrize("thresholding", ["hard", "soft"])
@pytest.mark.parametrize("threshold,max_rank", [("auto", None), (15.0, None), (15.0, 3)])
def test_svt_matches_numpy_oracle(threshold, thresholding, max_rank):
    X, mask = svt_data()
    assert mask.any(axis=0).all() and mask.any(axis=1).all()  # no mean-filled rows
    Z, kept, tau, s = svt_oracle(X, threshold, thresholding, max_rank or 20)
    if threshold == "auto":
        # the data tell a threshold off by 2 either way: a singular value of Y lies in
        # (tau, 2 tau], another in (tau / 2, tau]
        assert np.any((s > tau) & (s <= 2 * tau)) and np.any((s > tau / 2) & (s <= tau))
    assert 0 < kept.size < 20 and np.abs(s - tau).min() > 0.1  # no near-ties at tau
    est = SVTCompleter(threshold=threshold, thresholding=thresholding, max_rank=max_rank,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # max_rank=3: every computed value is above 15
        if max_rank == 3:
            warnings.filterwarnings("ignore", "All 3 computed singular values exceed")
        filled = est.fit_transform(X)
    assert est.threshold_ == pytest.approx(tau, rel=1e-12)
    assert est.rank_ == kept.size
    np.testing.assert_allclose(est.singular_values_, kept, rtol=0, atol=1e-8)
    np.testing.assert_allclose(completed(est), Z, rtol=0, atol=1e-8)
    np.testing.assert_allclose(filled, np.where(mask, X, Z), rtol=0, atol=1e-8)
    r, c = np.nonzero(~mask)
    np.testing.assert_allclose(est.predict_entries(r, c), Z[r, c], rtol=0, atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        U, sv, V = svt_complete(X, threshold, thresholding=thresholding, max_rank=max_rank,
                                random_state=0)
        Zd = SVTCompleter(threshold=threshold, thresholding=thresholding,
                          max_rank=max_rank, denoise=True).fit_transform(X)
    np.testing.assert_allclose((U * sv) @ V.T, Z, rtol=0, atol=1e-8)
    np.testing.assert_allclose(Zd, Z, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- invariances


def test_permutation_invariance():
    m, n, k = 100, 80, 3
    M = low_rank(m, n, k, seed=5)
    X, _ = sample(M, 0.4, noise=0.05, seed=6)
    rng = np.random.default_rng(0)
    pr, pc = rng.permutation(m), rng.permutation(n)
    kw = dict(rank=k, tol=1e-12, max_iter=1000, solver="exact", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = AltMinCompleter(**kw).fit_transform(X)
        Zp = AltMinCompleter(**kw).fit_transform(X[pr][:, pc])
    np.testing.assert_allclose(Zp, Z[pr][:, pc], atol=1e-6)
    kw = dict(shrinkage=1.0, max_rank=20, tol=1e-12, max_iter=2000, solver="svd")
    Z = SoftImpute(**kw).fit_transform(X)
    Zp = SoftImpute(**kw).fit_transform(X[pr][:, pc])
    np.testing.assert_allclose(Zp, Z[pr][:, pc], atol=1e-6)


@pytest.mark.parametrize("Est", [AltMinCompleter, SoftImpute, SVTCompleter, SoftImputeCV])
def test_observed_entries_untouched_and_denoise(Est):
    M = low_rank(60, 40, 2)
    X, mask = sample(M, 0.5, noise=0.1)
    X_copy = X.copy()
    kw = {"rank": 2} if Est is AltMinCompleter else {"max_rank": 10}
    est = Est(random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = est.fit_transform(X)
        Zt = est.transform(X)
        Zd = Est(random_state=0, denoise=True, **kw).fit_transform(X)
    np.testing.assert_array_equal(X, X_copy)  # input not modified
    np.testing.assert_array_equal(Z[mask], X[mask])
    np.testing.assert_array_equal(Zt[mask], X[mask])
    assert np.isfinite(Z).all() and np.isfinite(Zt).all()
    assert not np.allclose(Zd[mask], X[mask])
    # predict_entries(rows, cols) reads the fitted low-rank matrix
    r, c = np.nonzero(~mask)
    np.testing.assert_allclose(est.predict_entries(r, c), Z[~mask], rtol=1e-10, atol=1e-12)


def test_transform_folds_in_new_rows():
    M = low_rank(200, 50, 3)
    X, mask = sample(M, 0.6)
    est = AltMinCompleter(rank=3, tol=1e-12, max_iter=500, random_state=0).fit(X[:150])
    Xnew, _ = sample(M[150:], 0.6, seed=9)
    Z = est.transform(Xnew)
    assert rel_err(Z, M[150:]) < 1e-6
    P = clone(est).set_params(denoise=True).fit(X[:150]).transform(Xnew)  # whole fit
    assert rel_err(P, M[150:]) < 1e-6
    # rows are independent: transform of a subset is the subset of the transform
    np.testing.assert_allclose(est.transform(Xnew[:7]), Z[:7], rtol=1e-12)


def test_input_forms_agree():
    M = low_rank(50, 40, 2)
    X, mask = sample(M, 0.5)
    r, c = np.nonzero(mask)
    v = M[r, c]
    forms = [X, sp.csr_matrix((v, (r, c)), shape=M.shape), (r, c, v, M.shape),
             (np.where(mask, M, 0.0), None)]
    outs = []
    for f in forms:
        est = AltMinCompleter(rank=2, tol=1e-12, max_iter=300, random_state=0)
        if isinstance(f, tuple) and len(f) == 2:
            est.fit(f[0], observed_mask=mask)
        else:
            est.fit(f)
        outs.append(completed(est))
    for Z in outs[1:]:
        np.testing.assert_allclose(Z, outs[0], atol=1e-8)
    # sparse matrix with explicit mask; explicit zeros in a sparse matrix are observed
    S = sp.csr_matrix((v, (r, c)), shape=M.shape)
    est = AltMinCompleter(rank=2, tol=1e-12, max_iter=300, random_state=0)
    np.testing.assert_allclose(completed(est.fit(S, observed_mask=sp.csr_matrix(mask))),
                               outs[0], atol=1e-8)
    Z0 = sp.csr_matrix((np.r_[v, 0.0], (np.r_[r, 0], np.r_[c, 39])), shape=M.shape)
    assert as_observed(Z0).nnz == (mask.sum() + (not mask[0, 39]))


@pytest.mark.parametrize("Est", [AltMinCompleter, SoftImpute, SVTCompleter])
def test_float32_in_float32_out(Est):
    M = low_rank(60, 40, 2, dtype=np.float32)
    X, mask = sample(M, 0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Est(random_state=0)
        Z = est.fit_transform(X)
    assert Z.dtype == np.float32
    assert est.U_.dtype == np.float32
    assert est.transform(X).dtype == np.float32
    assert rel_err(Z, M) < 0.3


def test_pipeline_imputer():
    rng = np.random.default_rng(0)
    M = low_rank(200, 8, 3)
    y = M @ rng.normal(size=8)
    X, _ = sample(M, 0.8)
    pipe = make_pipeline(AltMinCompleter(rank=3, random_state=0), Ridge(alpha=1e-3))
    pipe.fit(X[:150], y[:150])
    assert pipe.score(X[150:], y[150:]) > 0.9


def test_functional_twins():
    M = low_rank(60, 50, 2)
    X, _ = sample(M, 0.5)
    U, s, V = altmin_complete(X, rank=2, tol=1e-12, max_iter=300, random_state=0)
    assert rel_err((U * s) @ V.T, M) < 1e-6
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-10)
    U, s, V = soft_impute(X, shrinkage=0.1, max_rank=2, random_state=0)
    assert rel_err((U * s) @ V.T, M) < 0.05
    U, s, V = svt_complete(X, max_rank=5, random_state=0)
    assert s.shape[0] <= 5


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("func, name, bad", [
    ("altmin_complete", "rank", 0), ("altmin_complete", "rank", True),
    ("altmin_complete", "alpha", -1.0), ("altmin_complete", "max_iter", 0),
    ("altmin_complete", "tol", -1e-3), ("altmin_complete", "solver", "lbfgs"),
    ("altmin_complete", "cg_iter", 0), ("altmin_complete", "solve_tol", 1.0),
    ("altmin_complete", "init_clip", 0.0), ("altmin_complete", "verbose", "loud"),
    ("altmin_complete", "duplicates", "sum"), ("altmin_complete", "random_state", "0"),
    ("soft_impute", "shrinkage", -0.5), ("soft_impute", "max_rank", 0),
    ("soft_impute", "solver", "cg"), ("soft_impute", "max_iter", 2.5),
    ("soft_impute", "tol", np.nan), ("svt_complete", "threshold", -1.0),
    ("svt_complete", "threshold", "half"), ("svt_complete", "thresholding", "firm"),
    ("svt_complete", "max_rank", 1.5),
])
def test_functions_check_their_parameters_by_name(func, name, bad):
    """The functional twins check what their estimators check, once, before any work."""
    import sketchlearn.completion as completion

    X, _ = sample(low_rank(12, 10, 2), 0.6)
    with pytest.raises(ValueError, match=f"'{name}' parameter of {func} must be"):
        getattr(completion, func)(X, **{name: bad})


def test_bad_input_messages():
    M = low_rank(30, 20, 2)
    X, mask = sample(M, 0.5)
    r, c = np.nonzero(mask)
    v = M[r, c]
    with pytest.raises(ValueError, match="larger than min"):
        AltMinCompleter(rank=25).fit(X)
    with pytest.raises(ValueError, match="repeated"):
        AltMinCompleter(rank=2).fit((np.r_[r, r[0]], np.r_[c, c[0]], np.r_[v, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        AltMinCompleter(rank=2).fit((r, c, np.where(np.arange(v.size) == 3, np.nan, v)))
    with pytest.raises(ValueError, match="no observed entries"):
        AltMinCompleter().fit(np.full((5, 4), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        AltMinCompleter().fit(np.where(mask, np.inf, np.nan))
    with pytest.raises(ValueError, match=r"row indices .* must lie"):
        AltMinCompleter().fit((r, c, v, (5, 20)))
    with pytest.raises(ValueError, match="observed_mask has shape"):
        AltMinCompleter().fit(X, observed_mask=mask[:5])
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        AltMinCompleter().fit((r, c[:-1], v))
    est = AltMinCompleter(rank=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :5])
    with pytest.raises(ValueError, match="must lie in"):
        est.predict_entries([0, 40], [0, 1])
    with pytest.raises(ValueError, match="one length"):
        est.predict_entries([0, 1], [0])
    # duplicates="mean" averages repeated pairs
    dup = (np.r_[r, r[0]], np.r_[c, c[0]], np.r_[v, v[0] + 2.0], M.shape)
    obs = as_observed(dup, duplicates="mean")
    assert obs.nnz == v.size
    assert np.isclose(obs.vals[0], v[np.lexsort((c, r))][0] + 1.0)


ALL_COMPLETERS = [AltMinCompleter, SoftImpute, SoftImputeCV, SVTCompleter]


def _small_kw(Est):
    return {"rank": 2} if Est is AltMinCompleter else {"max_rank": 5}


@pytest.mark.parametrize("Est", ALL_COMPLETERS)
def test_predict_entries_reads_the_fitted_matrix(Est):
    M = low_rank(30, 20, 2)
    X, mask = sample(M, 0.6, noise=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Est(random_state=0, **_small_kw(Est)).fit(X)
    Z = completed(est)
    rng = np.random.default_rng(3)
    r, c = rng.integers(0, 30, 50), rng.integers(0, 20, 50)  # observed or not, repeats
    np.testing.assert_allclose(est.predict_entries(r, c), Z[r, c], rtol=1e-12, atol=1e-12)
    for kind in (np.int32, np.uint16, np.int64):  # any integer dtype, lists too
        np.testing.assert_allclose(est.predict_entries(r.astype(kind), list(c)), Z[r, c],
                                   rtol=1e-12, atol=1e-12)
    assert est.predict_entries([], []).shape == (0,)
    # a matrix in, a matrix out: no predict that would mean "entries at indices"
    assert not hasattr(est, "predict")
    assert est.transform(X).shape == X.shape


def test_predict_entries_bad_input():
    M = low_rank(30, 20, 2)
    X, _ = sample(M, 0.6)
    with pytest.raises(NotFittedError):
        SVTCompleter().predict_entries([0], [0])
    est = SVTCompleter(max_rank=5, random_state=0).fit(X)
    cases = [
        (ValueError, r"rows must lie in \[0, 29\].* got -1 to 0", ([-1, 0], [0, 1])),
        (ValueError, r"rows must lie in \[0, 29\].* got 0 to 30", ([0, 30], [0, 1])),
        (ValueError, r"cols must lie in \[0, 19\].* got 0 to 20", ([0, 1], [0, 20])),
        (ValueError, "1-D arrays of one length", ([0, 1], [0])),
        (ValueError, "1-D arrays of one length", (np.zeros((2, 2), int), [0, 1])),
        (ValueError, "1-D arrays of one length", (3, 4)),
        (TypeError, "integer arrays; got dtypes float64", ([0.0, 1.0], [0, 1])),
        (TypeError, "integer arrays", ([True, False], [0, 1])),
        (TypeError, "integer arrays", (["0", "1"], [0, 1])),
    ]
    for exc, match, (r, c) in cases:
        with pytest.raises(exc, match=match):
            est.predict_entries(r, c)


@pytest.mark.parametrize("Est", ALL_COMPLETERS)
def test_input_not_modified(Est):
    """fit, transform and fit_transform never write into the caller's arrays, in any
    input form (the dense array with NaN, a sparse matrix, triplets, a mask)."""
    M = low_rank(30, 20, 2)
    X, mask = sample(M, 0.6, noise=0.05)
    r, c = np.nonzero(mask)
    v = X[r, c]
    S = sp.csr_matrix((v, (r, c)), shape=M.shape)
    S_coo = sp.coo_matrix((v[::-1], (r[::-1], c[::-1])), shape=M.shape)  # unsorted
    X32 = X.astype(np.float32)
    forms = {"dense": (X, None), "float32": (X32, None), "csr": (S, None),
             "coo": (S_coo, None), "triplets": ((r[::-1], c[::-1], v[::-1], M.shape), None),
             "mask": (np.where(mask, M, 0.0), mask)}
    for name, (data, observed_mask) in forms.items():
        before = [a.copy() for a in _arrays((data, observed_mask))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = Est(random_state=0, **_small_kw(Est))
            est.fit(data, observed_mask=observed_mask)
            est.transform(data, observed_mask=observed_mask)
            clone(est).fit_transform(data, observed_mask=observed_mask)
        for a, b in zip(_arrays((data, observed_mask)), before, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{Est.__name__}, {name} input")


def _arrays(args):
    """The NumPy arrays inside a call's arguments (sparse parts and triplets included)."""
    out = []
    for a in args:
        if a is None:
            continue
        if isinstance(a, tuple):
            out += [np.asarray(x) for x in a[:3]]
        elif sp.issparse(a):
            out += [a.data, *(getattr(a, k) for k in ("indices", "indptr", "row", "col")
                              if hasattr(a, k))]
        else:
            out.append(a)
    return out


def test_all_missing_rows_and_columns_warn_and_use_means():
    M = low_rank(60, 40, 2)
    X, mask = sample(M, 0.6)
    X[3] = np.nan
    X[:, 7] = np.nan
    est = AltMinCompleter(rank=2, tol=1e-10, max_iter=300, random_state=0)
    with pytest.warns(UserWarning, match="no observed entry"):
        Z = est.fit_transform(X)
    fitted = completed(est)
    others = np.delete(np.arange(60), 3)
    np.testing.assert_allclose(Z[3, :7], fitted[others, :7].mean(axis=0), atol=1e-10)
    assert np.isfinite(Z).all()
    # a new all-missing row is predicted as the average row too
    out = est.transform(np.full((1, 40), np.nan))
    np.testing.assert_allclose(out[0], fitted[others].mean(axis=0) * 1.0, atol=1e-8)


def test_too_few_observations_warns():
    M = low_rank(30, 20, 2)
    X, _ = sample(M, 0.1)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            AltMinCompleter(rank=5, random_state=0, max_iter=5).fit(X)


def test_convergence_warning():
    M = low_rank(60, 40, 2)
    X, _ = sample(M, 0.5, noise=0.3)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        AltMinCompleter(rank=2, max_iter=1, tol=0, random_state=0).fit(X)


def test_dense_output_guard():
    est = AltMinCompleter(rank=1, random_state=0).fit(
        (np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([1.0, 2.0, 3.0])))
    assert est.predict_entries([1], [1]).shape == (1,)
    big = (np.array([0, 70000]), np.array([0, 70000]), np.array([1.0, 2.0]), (70001, 70001))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AltMinCompleter(rank=1, max_iter=2, random_state=0).fit(big)
    with pytest.raises(ValueError, match="dense entries"):
        est.transform(big)
    assert est.predict_entries([70000], [70000]).shape == (1,)


# --------------------------------------------------------------------------- incremental SVD


def test_incremental_svd_exact_for_low_rank():
    A = low_rank(400, 60, 4)
    inc = IncrementalTruncatedSVD(n_components=4, batch_size=50)
    for chunk in np.array_split(A, 7):
        inc.partial_fit(chunk)
    s_ref = np.linalg.svd(A, compute_uv=False)[:4]
    np.testing.assert_allclose(inc.singular_values_, s_ref, rtol=1e-10)
    np.testing.assert_allclose(inc.components_ @ inc.components_.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(inc.inverse_transform(inc.transform(A)), A, atol=1e-8)
    assert inc.n_samples_seen_ == 400


def test_incremental_svd_matches_svds_on_sparse_updates():
    rng = np.random.default_rng(0)
    L = low_rank(600, 200, 5) * 3.0
    A = sp.random(600, 200, density=0.05, random_state=1, format="csr") * 0.3 + sp.csr_matrix(
        L * (rng.random(L.shape) < 0.2))
    inc = IncrementalTruncatedSVD(n_components=5, batch_size=100).fit(A[:300])
    inc.partial_fit(A[300:])
    _, s, Vt = svds(A, k=5, random_state=0)
    s = s[::-1]
    Vt = Vt[::-1]
    np.testing.assert_allclose(inc.singular_values_, s, rtol=0.05)
    # subspaces close: principal angles
    cos = np.linalg.svd(inc.components_ @ Vt.T, compute_uv=False)
    assert cos.min() > 0.95


def test_incremental_svd_bad_input():
    with pytest.raises(ValueError, match="n_components"):
        IncrementalTruncatedSVD(n_components=5).fit(np.ones((10, 3)))
    inc = IncrementalTruncatedSVD(n_components=2).fit(np.random.default_rng(0).random((10, 3)))
    with pytest.raises(ValueError, match="features"):
        inc.partial_fit(np.ones((4, 5)))


def _svd_factors_match(inc, A, rtol=1e-9):
    """The kept factors are orthonormal and reproduce A (which has rank <= k)."""
    k = inc.singular_values_.size
    np.testing.assert_allclose(inc.U_.T @ inc.U_, np.eye(k), atol=1e-9)
    np.testing.assert_allclose(inc.components_ @ inc.components_.T, np.eye(k), atol=1e-9)
    s_ref = np.linalg.svd(A, compute_uv=False)[:k]
    np.testing.assert_allclose(inc.singular_values_, s_ref, rtol=rtol, atol=1e-10 * s_ref[0])
    recon = inc.U_ * inc.singular_values_ @ inc.components_
    np.testing.assert_allclose(recon, A, atol=1e-8 * np.abs(A).max())


def test_incremental_svd_column_appends_exact_for_low_rank():
    full = low_rank(150, 90, 3, seed=4)
    A, B = full[:120], full[120:]
    inc = IncrementalTruncatedSVD(n_components=3).fit(A[:, :40])
    inc.add_columns(A[:, 40:70]).add_columns(sp.csr_matrix(A[:, 70:]))
    assert inc.n_features_in_ == 90 and inc.components_.shape == (3, 90)
    _svd_factors_match(inc, A)
    # rows can still be appended after columns, the left vectors grow with them
    inc.partial_fit(B)
    assert inc.U_.shape == (150, 3)
    _svd_factors_match(inc, full)


def test_incremental_svd_low_rank_and_sparse_updates_exact():
    rng = np.random.default_rng(5)
    A = low_rank(80, 60, 3, seed=6)
    inc = IncrementalTruncatedSVD(n_components=7).fit(A)
    P, Q = rng.normal(size=(80, 2)), rng.normal(size=(60, 2))
    inc.update(left=P, right=Q)
    A = A + P @ Q.T
    _svd_factors_match(inc, A)
    # a sparse change confined to two rows (rank <= 2 more: 7 in all)
    E = sp.lil_matrix((80, 60))
    E[3, [1, 5, 9]] = [1.0, -2.0, 0.5]
    E[40, 10:30] = rng.normal(size=20)
    inc.update(E.tocsr())
    A = A + E.toarray()
    _svd_factors_match(inc, A)


def test_incremental_svd_sparse_update_touching_few_columns_uses_columns():
    from sketchlearn.completion._incremental import _sparse_factors

    rng = np.random.default_rng(7)
    A = low_rank(70, 50, 2, seed=8)
    E = sp.lil_matrix((70, 50))
    E[:, 4] = rng.normal(size=(70, 1))  # every row touched, one column
    P, Q = _sparse_factors(E.tocsr(), np.float64)
    assert P.shape == (70, 1) and Q.shape == (50, 1)
    inc = IncrementalTruncatedSVD(n_components=3).fit(A).update(E.tocsc())
    _svd_factors_match(inc, A + E.toarray())
    # a dense change is accepted too (a full-rank update, exact up to truncation)
    D = low_rank(70, 50, 1, seed=9)
    inc.update(D)
    s_ref = np.linalg.svd(A + E.toarray() + D, compute_uv=False)[:3]
    np.testing.assert_allclose(inc.singular_values_, s_ref, rtol=1e-9)


def test_incremental_svd_updates_track_svds_on_noisy_sparse_matrix():
    rng = np.random.default_rng(10)
    m, n, k = 500, 300, 6
    L = low_rank(m, n, k, seed=11) * 3.0
    A = sp.csr_matrix(L * (rng.random(L.shape) < 0.3)) + sp.random(
        m, n, density=0.02, random_state=12, format="csr") * 0.2
    inc = IncrementalTruncatedSVD(n_components=k, batch_size=100).fit(A[:, :200])
    inc.add_columns(A[:, 200:])
    E = sp.random(m, n, density=0.001, random_state=13, format="csr")
    inc.update(E)
    A = (A + E).tocsr()
    _, s, Vt = svds(A, k=k, random_state=0)
    s, Vt = s[::-1], Vt[::-1]
    np.testing.assert_allclose(inc.singular_values_, s, rtol=0.02)
    cos = np.linalg.svd(inc.components_ @ Vt.T, compute_uv=False)
    assert cos.min() > 0.95
    # the truncation error of the kept factors is close to the best rank-k error
    dense = A.toarray()
    err = np.linalg.norm(dense - inc.U_ * inc.singular_values_ @ inc.components_)
    best = np.sqrt(np.sum(np.linalg.svd(dense, compute_uv=False)[k:] ** 2))
    assert best <= err < 1.05 * best


@pytest.mark.gpu
def test_cupy_incremental_svd_updates_match_numpy():
    cupy = pytest.importorskip("cupy")
    import cupyx.scipy.sparse as csp

    rng = np.random.default_rng(3)
    A = low_rank(60, 40, 2, seed=3)
    P, Q = rng.normal(size=(60, 1)), rng.normal(size=(40, 1))
    E = sp.random(60, 40, density=0.01, random_state=4, format="csr")
    ref = IncrementalTruncatedSVD(n_components=5).fit(A[:, :30]).add_columns(A[:, 30:])
    ref.update(left=P, right=Q).update(E)
    gpu = IncrementalTruncatedSVD(n_components=5).fit(cupy.asarray(A[:, :30]))
    gpu.add_columns(cupy.asarray(A[:, 30:])).update(left=cupy.asarray(P), right=cupy.asarray(Q))
    gpu.update(csp.csr_matrix(E))
    assert isinstance(gpu.components_, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.singular_values_), ref.singular_values_,
                               rtol=1e-9, atol=1e-12)
    with pytest.raises(TypeError, match="GPU"):
        gpu.update(left=P, right=Q)


def test_incremental_svd_update_bad_input_and_dtype():
    A = low_rank(30, 20, 2, dtype=np.float32)
    inc = IncrementalTruncatedSVD(n_components=2).fit(A)
    with pytest.raises(ValueError, match="rows"):
        inc.add_columns(np.ones((29, 2)))
    with pytest.raises(ValueError, match="not both"):
        inc.update(np.ones((30, 20)), left=np.ones((30, 1)))
    with pytest.raises(ValueError, match="both left and right"):
        inc.update(left=np.ones((30, 1)))
    with pytest.raises(ValueError, match="shape"):
        inc.update(np.ones((30, 21)))
    with pytest.raises(ValueError, match=r"left must be \(30, c\)"):
        inc.update(left=np.ones((30, 2)), right=np.ones((20, 1)))
    bad = np.zeros((30, 20))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        inc.update(bad)
    with pytest.raises(ValueError, match="finite"):
        inc.update(sp.csr_matrix(bad))
    before = inc.singular_values_.copy()
    inc.update(sp.csr_matrix((30, 20)))  # an empty change leaves the factors alone
    np.testing.assert_array_equal(inc.singular_values_, before)
    inc.update(left=np.ones(30), right=np.ones(20)).add_columns(np.ones((30, 1)))
    assert inc.components_.dtype == np.float32 and inc.U_.dtype == np.float32
    with pytest.raises(Exception, match="fitted"):
        IncrementalTruncatedSVD().update(left=np.ones((3, 1)), right=np.ones((3, 1)))


# --------------------------------------------------------------------------- heavier


@pytest.mark.slow
def test_altmin_larger_problem():
    m, n, k = 3000, 2000, 8
    M = low_rank(m, n, k)
    X, mask = sample(M, 0.05, noise=0.1)
    est = AltMinCompleter(rank=k, random_state=0).fit(X)
    rmse = np.sqrt(np.mean((completed(est) - M)[~mask] ** 2))
    oracle = 0.1 * np.sqrt(k * (m + n) / mask.sum())
    assert rmse < 1.5 * oracle


def test_numba_parallel_and_serial_kernels_agree():
    from sketchlearn.completion import _numba as nb

    obs, U, V = random_csr(300, 50, 4, 3000, seed=7)
    args = (obs.indptr, obs.cols)
    pairs = [
        ("_predict_observed", (*args, U, V), (obs.nnz,)),
        ("_spmm", (*args, obs.vals, V), (300, 4)),
        ("_cg_rows", (*args, obs.vals, U, V, 0.1, 3), (300, 4)),
        ("_solve_rows", (*args, obs.vals, V, 0.1, 1e-12), (300, 4)),
    ]
    for name, a, shape in pairs:
        par, ser = np.empty(shape), np.empty(shape)
        if name == "_cg_rows":  # and the squared residuals of the start, per row block
            sse_par, sse_ser = np.zeros((300 + nb._BLOCK - 1) // nb._BLOCK), np.zeros(1)
            nb._cg_rows_kernel(*a, par, sse_par)
            nb._cg_rows_serial(*a, ser, sse_ser)
            np.testing.assert_allclose(sse_par.sum(), sse_ser[0], rtol=1e-12)
            np.testing.assert_allclose(
                sse_ser[0], np.sum((obs.vals - np.sum(U[obs.rows] * V[obs.cols], axis=1)) ** 2),
                rtol=1e-12)
        else:
            getattr(nb, name + "_kernel")(*a, par)
            getattr(nb, name + "_serial")(*a, ser)
        np.testing.assert_allclose(par, ser, rtol=1e-12, atol=1e-14, err_msg=name)


def test_soft_impute_cv_als_path_and_float32_incremental():
    M = low_rank(250, 120, 3)
    X, mask = sample(M, 0.4, noise=0.05)
    est = SoftImputeCV(shrinkages=4, max_rank=8, solver="als", random_state=0).fit(X)
    assert est.solver_ == "als"
    assert np.sqrt(np.mean((completed(est) - M)[~mask] ** 2)) < 0.2
    inc = IncrementalTruncatedSVD(n_components=3).fit(M.astype(np.float32))
    assert inc.components_.dtype == np.float32
    assert inc.transform(M[:4].astype(np.float32)).dtype == np.float32


@settings(max_examples=15, deadline=None)
@given(m=st.integers(3, 12), n=st.integers(3, 12), seed=st.integers(0, 10_000),
       frac=st.floats(0.3, 1.0))
def test_property_observed_kept_and_finite(m, n, seed, frac):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(m, 1)) @ rng.normal(size=(1, n))
    mask = rng.random((m, n)) < frac
    mask[0, 0] = True
    X = np.where(mask, M, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in (AltMinCompleter(rank=1, random_state=0),
                    SoftImpute(max_rank=2, random_state=0)):
            Z = est.fit_transform(X)
            assert np.isfinite(Z).all()
            np.testing.assert_array_equal(Z[mask], X[mask])
            # rows are folded in independently: the transform of a row alone is the
            # same row of the transform of all
            np.testing.assert_allclose(est.transform(X[1:2]), est.transform(X)[1:2],
                                       rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- robust AltMin


def _row_system(obs, V, i):
    s, e = obs.indptr[i], obs.indptr[i + 1]
    return s, e, V[obs.cols[s:e]], obs.vals[s:e]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_sketch_cg_kernel_matches_reference(dtype, rtol):
    # rows with 0, a few (identity sketch) and many (hashed sketch) entries; 30 x 40
    # with 900 entries: ~30 per row against sketch_rows = 8
    obs, U, V = random_csr(30, 40, 4, 900, seed=5, dtype=dtype)
    for lam, tol, max_iter in [(0.0, 1e-8, 50), (0.3, 1e-3, 50), (0.0, 1e-12, 2)]:
        args = (obs.indptr, obs.cols, obs.vals, U, V, lam, tol, max_iter, 8, 1, 987654321)
        ref, ref_info = _core.sketch_cg_rows.implementation("reference")(np, *args)
        fast, fast_info = _core.sketch_cg_rows.implementation("numba")(np, *args)
        assert fast.dtype == dtype
        np.testing.assert_allclose(fast, ref, rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(fast_info[:, 1], ref_info[:, 1])  # same CG steps
    assert ref_info[1, 1] == 0  # the empty row
    from sketchlearn.completion import _numba as nb

    par, ser = np.empty((30, 4)), np.empty((30, 4))
    ipar, iser = np.empty((30, 2)), np.empty((30, 2))
    a = (obs.indptr, obs.cols, obs.vals.astype(float), U.astype(float), V.astype(float), 0.1,
         1e-9, 40, 8, 2, np.uint64(3), 1e-12)
    nb._sketch_cg_kernel(*a, par, ipar)
    nb._sketch_cg_serial(*a, ser, iser)
    np.testing.assert_allclose(par, ser, rtol=1e-12, atol=1e-14)


def test_row_sketch_is_a_sparse_sign_embedding():
    S = _core.row_sketch(100, 160, 12, 2, 42)
    assert S.shape == (12, 60)
    # each column: nnz_sketch = 2 signs of size 1/sqrt(2); when both land in one row
    # they add up (squared norm 0 or 2), else the squared norm is 1
    sq = (S**2).sum(axis=0)
    assert np.all(np.isclose(sq, 0.0) | np.isclose(sq, 1.0) | np.isclose(sq, 2.0))
    assert np.mean(np.isclose(sq, 1.0)) > 0.8
    assert set(np.unique(np.round(np.abs(S[S != 0]), 12))) <= {0.707106781187, 1.414213562373}
    S1 = _core.row_sketch(0, 60, 12, 1, 5)  # CountSketch: one +-1 per column
    np.testing.assert_array_equal(np.count_nonzero(S1, axis=0), 1)
    np.testing.assert_array_equal(np.abs(S1).sum(axis=0), 1.0)
    np.testing.assert_array_equal(_core.row_sketch(0, 5, 12, 2, 42), np.eye(5))
    assert not np.array_equal(S, _core.row_sketch(100, 160, 12, 2, 43))  # seed matters


@pytest.mark.parametrize("tol", [1e-3, 1e-7, 1e-11])
def test_sketch_cg_rows_meet_their_accuracy_target(tol):
    """Each row's solve reaches the documented target, checked against numpy's lstsq:
    the normal-equation residual in the preconditioner's norm is at most tol times that
    of the start at 0, and the fitted values at the row's entries are within
    kappa * tol of lstsq's (kappa: condition number of the preconditioned design)."""
    rng = np.random.default_rng(11)
    m, n, k, per = 12, 400, 10, 150
    V = np.linalg.qr(rng.normal(size=(n, k)))[0] * np.linspace(1.0, 30.0, k)  # kappa(V) = 30
    rows = np.repeat(np.arange(m), per)
    cols = np.concatenate([rng.choice(n, per, replace=False) for _ in range(m)])
    vals = rng.normal(size=rows.size)
    obs = as_observed((rows, cols, vals, (m, n)))
    X0 = rng.normal(size=(m, k))
    sketch_rows, nnz, seed = 4 * k, 1, 2024
    X, info = _core.sketch_cg_rows(np, obs.indptr, obs.cols, obs.vals, X0, V, 0.0, tol, 100,
                                   sketch_rows, nnz, seed)
    steps = []
    for i in range(m):
        s, e, A, b = _row_system(obs, V, i)
        x_star = np.linalg.lstsq(A, b, rcond=None)[0]
        SA = _core.row_sketch(s, e, sketch_rows, nnz, seed) @ A
        L = np.linalg.cholesky(SA.T @ SA)
        r = A.T @ (A @ (x_star - X[i]))  # = A^T b - A^T A x
        rel = np.linalg.norm(np.linalg.solve(L, r)) / np.linalg.norm(
            np.linalg.solve(L, A.T @ b))
        assert rel <= tol * (1 + 1e-6) + 1e-14, (i, rel, tol)
        kappa = np.linalg.cond(np.linalg.solve(L, A.T).T)  # A L^{-T}
        assert kappa < 4.0  # the sketch preconditions: kappa(A) = 30 before
        fit_err = np.linalg.norm(A @ (X[i] - x_star)) / np.linalg.norm(A @ x_star)
        assert fit_err <= kappa * tol * (1 + 1e-6) + 1e-13
        steps.append(info[i, 1])
        assert info[i, 0] <= tol
    # a few steps per digit, independent of kappa(A) = 30: not a fixed step count
    assert max(steps) <= 4 * (-np.log10(tol)) + 4
    assert min(steps) >= 1


def test_sketch_cg_tolerance_is_what_stops_it():
    # k = 30 unknowns per row (CG would be exact after 30 steps), ~250 entries per row
    # against 120 sketch rows
    obs, U, V = random_csr(20, 600, 30, 5000, seed=9, empty_row=False)
    steps = []
    for tol in (1e-2, 1e-6, 1e-10):
        _, info = _core.sketch_cg_rows(np, obs.indptr, obs.cols, obs.vals, U, V, 0.0, tol,
                                       200, 120, 1, 7)
        steps.append(info[:, 1].mean())
        assert info[:, 0].max() <= tol
    assert steps[0] < steps[1] < steps[2]


def test_sketch_cg_exact_recovery():
    m, n, k = 300, 200, 4
    M = low_rank(m, n, k)
    X, mask = sample(M, 0.35)  # ~70 entries per row, ~105 per column: hashed sketches
    est = AltMinCompleter(rank=k, solver="sketch-cg", solve_tol=1e-13, tol=1e-13,
                          max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # stops at the rounding floor
        Z = est.fit_transform(X)
    assert rel_err(completed(est), M) < 1e-8
    assert rel_err(Z, M) < 1e-8
    np.testing.assert_allclose(est.U_.T @ est.U_, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(est.V_.T @ est.V_, np.eye(k), atol=1e-10)


def test_sketch_cg_float32():
    M = low_rank(200, 150, 3, dtype=np.float32)
    X, _ = sample(M, 0.4)
    est = AltMinCompleter(rank=3, solver="sketch-cg", solve_tol=1e-6, tol=1e-7, max_iter=200,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = est.fit_transform(X)
    assert Z.dtype == np.float32 and est.U_.dtype == np.float32
    assert rel_err(Z.astype(float), M.astype(float)) < 1e-4


def test_sketch_cg_reaches_the_fixed_point_of_exact_als():
    """With noise the fit is a local minimum of ||P_Omega(X - U V^T)||, not M: the
    robust iteration (orthonormalised factors, approximate solves) and exact ALS
    (balanced factors, Cholesky) started alike must end at the same matrix."""
    m, n, k = 160, 120, 3
    M = low_rank(m, n, k)
    X, mask = sample(M, 0.4, noise=0.1)
    kw = dict(rank=k, tol=1e-14, max_iter=2000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AltMinCompleter(solver="exact", **kw).fit(X)
        b = AltMinCompleter(solver="sketch-cg", solve_tol=1e-13, **kw).fit(X)
    Za, Zb = completed(a), completed(b)
    assert rel_err(Za, M) > 1e-2  # noisy: the fixed point is not M itself
    assert rel_err(Zb, Za) < 1e-7
    np.testing.assert_allclose(b.singular_values_, a.singular_values_, rtol=1e-7)
    # stationarity of the exact ALS fixed point: every row's residual is orthogonal to
    # V's rows at its observed columns (the normal equations), checked on b's fit
    r = np.where(mask, X - Zb, 0.0)
    Vb = b.V_ * b.singular_values_
    assert np.abs(r @ Vb).max() < 1e-6 * np.abs(Vb).max() * np.abs(X[mask]).max() * n


def test_sketch_cg_refuses_what_it_does_not_do():
    M = low_rank(40, 30, 2)
    X, _ = sample(M, 0.6)
    with pytest.raises(ValueError, match="alpha"):
        AltMinCompleter(rank=2, solver="sketch-cg", alpha=0.1).fit(X)
    with pytest.raises(ValueError, match="solve_tol"):
        AltMinCompleter(rank=2, solver="sketch-cg", solve_tol=0.0).fit(X)


def test_init_clip_shortens_long_rows_then_orthonormalises():
    rng = np.random.default_rng(3)
    m, k = 200, 3
    U0 = np.linalg.qr(rng.normal(size=(m, k)))[0]
    U0[7] *= 12.0  # a spiky row, far above sqrt(k / m)
    U0 = np.linalg.qr(U0)[0]
    norms = np.linalg.norm(U0, axis=1)
    cap = 2.0 * np.sqrt(k / m)
    assert norms[7] > cap
    Q = _core.clip_rows(np, U0, 2.0)
    # oracle: the rows scaled by min(1, cap / norm), orthonormalised by numpy's QR
    expected = np.linalg.qr(U0 * np.minimum(1.0, cap / norms)[:, None])[0]
    np.testing.assert_allclose(Q @ Q.T, expected @ expected.T, atol=1e-12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=1e-12)
    Q0 = _core.clip_rows(np, U0, None)  # no clipping: the same span
    np.testing.assert_allclose(Q0 @ Q0.T, U0 @ U0.T, atol=1e-12)
    assert np.linalg.norm(Q[7]) < 0.5 * norms[7]


def test_sketch_cg_regresses_on_orthonormal_factors(monkeypatch):
    """Each half-step's regressions run against the other factor orthonormalised (QR
    after every half-step, as in the paper), warm-started from the current product."""
    M = low_rank(120, 90, 3)
    X, _ = sample(M, 0.5)
    seen = []
    inner = _core.sketch_cg_rows

    def spy(xp, indptr, indices, data, X0, V, *args):
        seen.append((np.abs(V.T @ V - np.eye(V.shape[1])).max(), X0.shape[0]))
        return inner(xp, indptr, indices, data, X0, V, *args)

    monkeypatch.setattr(_core, "sketch_cg_rows", spy)
    est = AltMinCompleter(rank=3, solver="sketch-cg", tol=1e-10, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert len(seen) == 2 * est.n_iter_
    assert max(err for err, _ in seen) < 1e-12
    assert [rows for _, rows in seen[:2]] == [90, 120]  # columns (V) first, then rows (U)


def test_auto_solver_is_exact_below_rank_20_and_cg_from_20():
    assert _core.resolve_altmin_solver("auto", 19) == "exact"
    assert _core.resolve_altmin_solver("auto", 20) == "cg"
    assert _core.resolve_altmin_solver("sketch-cg", 5) == "sketch-cg"
    M = low_rank(80, 60, 3)
    X, _ = sample(M, 0.5)
    kw = dict(rank=3, tol=1e-12, max_iter=300, random_state=0)
    auto = AltMinCompleter(**kw).fit(X)
    exact = AltMinCompleter(solver="exact", **kw).fit(X)
    assert auto.solver_ == "exact" and exact.solver_ == "exact"
    np.testing.assert_array_equal(completed(auto), completed(exact))
    assert AltMinCompleter(rank=20, max_iter=2, random_state=0).fit(
        low_rank(60, 50, 2)).solver_ == "cg"
