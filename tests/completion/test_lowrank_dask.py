"""Low-rank factorisations of Dask matrices against independent oracles.

Oracles: ``numpy.linalg.svd`` of the computed matrix (the mergeable truncated SVD in
its exact regime, the distributed SVD), the Frequent Directions bounds computed from
the exact singular values (beyond the rank kept), and the in-memory sketchlearn
functions on the computed arrays (IncrementalTruncatedSVD, svt_complete, soft_impute:
same algorithm, so the same numbers to rounding).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn._dask import reduce_row_chunks
from sketchlearn.completion import IncrementalTruncatedSVD, soft_impute, svt_complete
from sketchlearn.completion._dask_lowrank import dask_svd
from sketchlearn.completion._incremental import FrequentDirections

da = pytest.importorskip("dask.array")

CHUNKINGS = [600, 64, 37, (5, 300, 295)]


def low_rank(rng, m=600, n=25, r=4):
    scales = np.array([50.0, 10.0, 3.0, 1.0, 0.5, 0.2][:r])
    return (rng.normal(size=(m, r)) * scales) @ rng.normal(size=(r, n))


def subspace_gap(Vt_a, Vt_b):
    """Spectral norm of the difference of the projectors on the two row spaces."""
    return np.linalg.norm(Vt_a.T @ Vt_a - Vt_b.T @ Vt_b, 2)


# --------------------------------------------------------------------------- FD summary


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("k", [4, 6])
def test_merged_summary_is_svd_of_whole_when_rank_at_most_k(synchronous, rng, chunks, k):
    A = low_rank(rng)
    _, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    for split_every in (2, 8):
        s, Vt, n_rows, shrinkage = reduce_row_chunks(
            FrequentDirections(k), da.from_array(A, chunks=(chunks, -1)),
            split_every=split_every)
        assert n_rows == 600 and s.shape == (k,) and Vt.shape == (k, 25)
        np.testing.assert_allclose(s[:4], s_ref[:4], rtol=1e-10)
        assert np.all(s[4:] <= 1e-12 * s_ref[0])
        assert subspace_gap(Vt[:4], Vt_ref[:4]) < 1e-8
        assert shrinkage <= 1e-20 * s_ref[0] ** 2


@pytest.mark.parametrize("chunks", [500, 41, (3, 250, 247)])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_beyond_k_frequent_directions_bounds_hold(synchronous, rng, chunks, k):
    A = rng.normal(size=(500, 30)) * np.exp(-np.arange(30) / 8.0)
    s, Vt, n_rows, shrinkage = reduce_row_chunks(FrequentDirections(k),
                                                 da.from_array(A, chunks=(chunks, -1)))
    B = s[:, None] * Vt
    gap = A.T @ A - B.T @ B
    eig = np.linalg.eigvalsh(gap)
    scale = np.linalg.norm(A, 2) ** 2
    sv = np.linalg.svd(A, compute_uv=False)
    tails = [np.sum(sv[j:] ** 2) / (k + 1 - j) for j in range(k + 1)]
    assert eig.min() >= -1e-10 * scale  # B^T B <= A^T A
    assert eig.max() <= shrinkage * (1 + 1e-10) + 1e-10 * scale
    assert 0 < shrinkage <= min(tails) * (1 + 1e-10)
    assert n_rows == 500


def test_summary_merge_in_any_grouping_agrees(rng):
    A = low_rank(rng, m=120, n=10, r=3)
    fd = FrequentDirections(3)
    parts = [fd.partial(b, 0, i) for i, b in enumerate(np.array_split(A, 6))]
    flat = fd.merge(*parts)
    nested = fd.merge(fd.merge(*parts[:2]), fd.merge(*parts[2:5]), parts[5])
    np.testing.assert_allclose(flat[0], nested[0], rtol=1e-12)
    assert subspace_gap(flat[1], nested[1]) < 1e-10


# --------------------------------------------------------------------------- estimator


@pytest.mark.parametrize(("chunks", "dtype"), [(600, np.float64), (37, np.float64),
                                             ((5, 300, 295), np.float64), (64, np.float32)])
def test_incremental_svd_on_dask_equals_in_memory(synchronous, rng, chunks, dtype):
    A = low_rank(rng).astype(dtype)
    dA = da.from_array(A, chunks=(chunks, -1))
    got = IncrementalTruncatedSVD(n_components=4).fit(dA)
    want = IncrementalTruncatedSVD(n_components=4).fit(A)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert got.singular_values_.dtype == dtype and got.components_.dtype == dtype
    np.testing.assert_allclose(got.singular_values_, want.singular_values_, rtol=rtol)
    np.testing.assert_allclose(got.components_, want.components_, atol=100 * rtol)
    assert got.n_samples_seen_ == 600 and not hasattr(got, "U_")
    Z = got.transform(dA)
    assert isinstance(Z, da.Array) and Z.dtype == dtype
    np.testing.assert_allclose(Z.compute(), want.transform(A), rtol=rtol,
                               atol=100 * rtol * np.abs(A).max())


def test_incremental_svd_partial_fit_on_dask_chunks_merges(synchronous, rng):
    A = low_rank(rng)
    inc = IncrementalTruncatedSVD(n_components=4)
    inc.partial_fit(da.from_array(A[:250], chunks=(60, -1)))
    inc.partial_fit(A[250:400])  # in memory, after a Dask fit: merged as a summary
    inc.partial_fit(da.from_array(A[400:], chunks=(70, -1)))
    _, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(inc.singular_values_, s_ref[:4], rtol=1e-10)
    assert subspace_gap(inc.components_, Vt_ref[:4]) < 1e-8
    assert inc.n_samples_seen_ == 600
    with pytest.raises(ValueError, match="fitted on a Dask array"):
        inc.add_columns(np.ones((600, 1)))


def test_incremental_svd_on_dask_beyond_k_reports_bound(synchronous, rng):
    A = rng.normal(size=(300, 12))
    inc = IncrementalTruncatedSVD(n_components=3).fit(da.from_array(A, chunks=(50, -1)))
    B = inc.singular_values_[:, None] * inc.components_
    gap = np.linalg.norm(A.T @ A - B.T @ B, 2)
    assert gap <= inc.covariance_error_bound_ * (1 + 1e-10)
    sv = np.linalg.svd(A, compute_uv=False)
    assert inc.covariance_error_bound_ <= np.sum(sv[3:] ** 2) * (1 + 1e-10)


def test_incremental_svd_dask_bad_input(synchronous, rng):
    A = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match="n_components=5 must be <= n_features=3"):
        IncrementalTruncatedSVD(n_components=5).fit(da.from_array(A, chunks=(10, -1)))
    dA = da.from_array(A, chunks=(10, -1))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        IncrementalTruncatedSVD(n_components=2).fit(dA[dA[:, 0] > 0])


def test_incremental_svd_on_local_cluster(on_cluster, rng):
    A = low_rank(rng)
    got = IncrementalTruncatedSVD(n_components=4).fit(da.from_array(A, chunks=(64, -1)))
    _, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(got.singular_values_, s_ref[:4], rtol=1e-10)
    assert subspace_gap(got.components_, Vt_ref[:4]) < 1e-8


# --------------------------------------------------------------------------- SVD


@pytest.mark.parametrize("method", ["exact", "randomized"])
@pytest.mark.parametrize("chunks", [700, 90, (1, 400, 299)])
def test_dask_svd_equals_numpy_svd(synchronous, rng, method, chunks):
    # Decaying spectrum: the randomized range finder with 4 power iterations and
    # 10 oversamples resolves the top 5 triplets to rounding (gap ratio ~e^-3 per
    # column, raised to the power 2q + 1 = 9, times the oversampling tail).
    A = rng.normal(size=(700, 60)) * np.exp(-np.arange(60) / 5.0)
    U, s, Vt = dask_svd(da.from_array(A, chunks=(chunks, -1)), 5, method=method,
                        random_state=0)
    U_ref, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    assert isinstance(U, da.Array) and U.shape == (700, 5)
    U = U.compute()
    np.testing.assert_allclose(s, s_ref[:5], rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(Vt * Vt_ref[:5], axis=1)), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(U * U_ref[:, :5], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(U.T @ U, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(A @ Vt.T, U * s, atol=1e-10 * s_ref[0])


def test_dask_svd_randomized_does_not_depend_on_chunking(synchronous, rng):
    A = rng.normal(size=(300, 40))  # flat spectrum: approximate, but the same draws
    got = [dask_svd(da.from_array(A, chunks=(c, -1)), 4, method="randomized",
                    n_power_iter=1, random_state=3)[1] for c in (300, 45)]
    np.testing.assert_allclose(got[0], got[1], rtol=1e-10)


# --------------------------------------------------------------------------- SVT


def incomplete(rng, m=400, n=120, r=3, p=0.5, dtype=np.float64):
    M = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
    return np.where(rng.random(M.shape) < p, M, np.nan).astype(dtype)


@pytest.mark.parametrize(("chunks", "kw"), [(400, {}), (57, {"thresholding": "soft"}),
                                           ((3, 200, 197), {"threshold": 150.0})])
def test_svt_on_dask_equals_in_memory(synchronous, rng, chunks, kw):
    X = incomplete(rng)
    U, s, V = svt_complete(da.from_array(X, chunks=(chunks, -1)), **kw)
    U0, s0, V0 = svt_complete(X, **kw)
    assert isinstance(U, da.Array) and isinstance(V, np.ndarray)
    np.testing.assert_allclose(s, s0, rtol=1e-10)
    Z, Z0 = (U.compute() * s) @ V.T, (U0 * s0) @ V0.T
    np.testing.assert_allclose(Z, Z0, atol=1e-10 * np.abs(Z0).max())


def test_svt_on_dask_float32_and_mask(synchronous, rng):
    X = incomplete(rng, dtype=np.float32)
    mask = ~np.isnan(X)
    filled = np.where(mask, X, 0).astype(np.float32)
    U0, s0, V0 = svt_complete(X)
    for m in (mask, da.from_array(mask, chunks=(80, -1))):
        U, s, V = svt_complete(da.from_array(filled, chunks=(50, -1)), observed_mask=m)
        assert U.dtype == np.float32 and s.dtype == np.float32 and V.dtype == np.float32
        np.testing.assert_allclose(s, s0, rtol=1e-5)
        Z, Z0 = (U.compute() * s) @ V.T, (U0 * s0) @ V0.T
        np.testing.assert_allclose(Z, Z0, atol=1e-4 * np.abs(Z0).max())


def test_svt_dask_bad_input(synchronous, rng):
    X = incomplete(rng, m=60, n=20)
    mask = np.ones(X.shape, dtype=bool)
    with pytest.raises(ValueError, match="NaN at entries that observed_mask"):
        svt_complete(da.from_array(X, chunks=(20, -1)), observed_mask=mask)
    Y = np.where(np.isnan(X), np.nan, X)
    Y[3, 4] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        svt_complete(da.from_array(Y, chunks=(20, -1)))
    with pytest.raises(ValueError, match="observed_mask has shape"):
        svt_complete(da.from_array(X, chunks=(20, -1)), observed_mask=mask[:10])
    with pytest.raises(ValueError, match="max_rank=30"):
        svt_complete(da.from_array(X, chunks=(20, -1)), max_rank=30)
    dX = da.from_array(X, chunks=(20, -1))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        svt_complete(dX[da.isnan(dX[:, 0])])
    with pytest.raises(TypeError, match="observed_mask is a Dask array but X is not"):
        svt_complete(X, observed_mask=da.from_array(mask, chunks=(20, -1)))
    with pytest.raises(ValueError, match="2-D"):
        svt_complete(dX[:, 0])


# --------------------------------------------------------------------------- softImpute


@pytest.mark.parametrize("chunks", [400, 57])
def test_soft_impute_als_iterates_equal_in_memory(synchronous, rng, chunks):
    # Three sweeps, stopped before convergence: the distributed sweeps are the
    # in-memory ones (the same products, summed over chunks), so equal to rounding.
    X = incomplete(rng)
    dX = da.from_array(X, chunks=(chunks, -1))
    with pytest.warns(ConvergenceWarning):
        U, s, V = soft_impute(dX, 20.0, 5, solver="als", max_iter=3, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        U0, s0, V0 = soft_impute(X, 20.0, 5, solver="als", max_iter=3, tol=0.0)
    np.testing.assert_allclose(s, s0, rtol=1e-8)
    Z, Z0 = (U.compute() * s) @ V.T, (U0 * s0) @ V0.T
    np.testing.assert_allclose(Z, Z0, rtol=0, atol=1e-8 * np.abs(Z0).max())


def test_soft_impute_default_shrinkage_converged_equals_in_memory(synchronous, rng):
    X = incomplete(rng, m=300, n=80, r=4, p=0.4)
    U, s, V = soft_impute(da.from_array(X, chunks=(90, -1)), max_rank=6, tol=1e-10,
                          max_iter=500)
    U0, s0, V0 = soft_impute(X, max_rank=6, solver="als", tol=1e-10, max_iter=500)
    np.testing.assert_allclose(s, s0, rtol=1e-8, atol=1e-8 * s0[0])
    Z, Z0 = (U.compute() * s) @ V.T, (U0 * s0) @ V0.T
    np.testing.assert_allclose(Z, Z0, atol=1e-8 * np.abs(Z0).max())
    Uc = U.compute()
    keep = s > 0
    np.testing.assert_allclose(Uc[:, keep].T @ Uc[:, keep], np.eye(int(keep.sum())),
                               atol=1e-10)


def test_soft_impute_dask_float32_and_errors(synchronous, rng):
    X = incomplete(rng, dtype=np.float32)
    dX = da.from_array(X, chunks=(100, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        U, s, V = soft_impute(dX, 20.0, 4, max_iter=20)
        U0, s0, V0 = soft_impute(X.astype(np.float64), 20.0, 4, solver="als", max_iter=20)
    assert U.dtype == s.dtype == V.dtype == np.float32
    np.testing.assert_allclose(s, s0, rtol=1e-5)
    with pytest.raises(ValueError, match="solver='als'"):
        soft_impute(dX, 20.0, 4, solver="svd")


def test_soft_impute_on_local_cluster(on_cluster, rng):
    X = incomplete(rng, m=300, n=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        U, s, V = soft_impute(da.from_array(X, chunks=(64, -1)), 15.0, 4, max_iter=5)
        U0, s0, V0 = soft_impute(X, 15.0, 4, solver="als", max_iter=5)
    np.testing.assert_allclose(s, s0, rtol=1e-8)
    np.testing.assert_allclose((U.compute() * s) @ V.T, (U0 * s0) @ V0.T,
                               atol=1e-8 * np.abs(s0).max())


def test_triplets_and_dataframe_equal_nan_array(synchronous, rng):
    # Through the distributed functions themselves: the public functions route a tuple
    # of Dask arrays or a Dask DataFrame here once public_function recognises them.
    from sketchlearn.completion._dask_lowrank import soft_impute_dask, svt_complete_dask

    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = incomplete(rng)
    r, c = np.nonzero(~np.isnan(X))
    order = rng.permutation(r.shape[0])
    r, c = r[order], c[order]
    v = X[r, c]
    U0, s0, V0 = svt_complete(X)
    triplets = tuple(da.from_array(a, chunks=7000) for a in (r, c, v)) + ((400, 120),)
    frame = dd.from_pandas(pd.DataFrame({"row": r, "col": c, "value": v}), npartitions=3)
    from sketchlearn.completion._dask import blocked_entries

    for given in (triplets, frame, blocked_entries(frame)):
        U, s, V = svt_complete_dask(given)
        np.testing.assert_allclose(s, s0, rtol=1e-10)
        np.testing.assert_allclose((U.compute() * s) @ V.T, (U0 * s0) @ V0.T,
                                   atol=1e-10 * np.abs(s0).max())
    with pytest.warns(ConvergenceWarning):
        U, s, V = soft_impute_dask(frame, 20.0, 5, max_iter=3, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        U0, s0, V0 = soft_impute(X, 20.0, 5, solver="als", max_iter=3, tol=0.0)
    np.testing.assert_allclose(s, s0, rtol=1e-8)
    dup = (np.r_[r, r[:1]], np.r_[c, c[:1]], np.r_[v, v[:1]])
    with pytest.raises(ValueError, match="repeated"):
        svt_complete_dask(tuple(da.from_array(a, chunks=7000) for a in dup))


def test_svt_wide_matrix_path_randomized(synchronous, rng, monkeypatch):
    # Matrices wider than EXACT_MAX_COLS take the randomized range finder (lowered here
    # to exercise it on a small matrix). With l = max_rank + 10 columns and q = 4 power
    # iterations, the kept singular vectors are accurate to about
    # (s_{l+1} / s_keep)^(2q+1) and the singular values to its square (Halko,
    # Martinsson and Tropp 2011; Saibaba 2019): the bound checked, from the exact SVD.
    from sketchlearn.completion import _dask_lowrank

    monkeypatch.setattr(_dask_lowrank, "EXACT_MAX_COLS", 50)
    X = incomplete(rng)
    U, s, V = svt_complete(da.from_array(X, chunks=(70, -1)), max_rank=10, random_state=1)
    U0, s0, V0 = svt_complete(X, max_rank=10)
    p_hat = np.mean(~np.isnan(X))
    sv = np.linalg.svd(np.nan_to_num(X) / p_hat, compute_uv=False)
    ratio = (sv[20] / sv[s0.shape[0] - 1]) ** 9
    assert s.shape == s0.shape and 1e-8 < ratio < 1e-3  # the bound is informative
    np.testing.assert_allclose(s, s0, rtol=10 * ratio**2 + 1e-12)
    Z, Z0 = (U.compute() * s) @ V.T, (U0 * s0) @ V0.T
    assert np.linalg.norm(Z - Z0) <= 10 * ratio * np.linalg.norm(Z0)


def test_incremental_svd_in_memory_then_dask_rows(synchronous, rng):
    A = low_rank(rng)
    inc = IncrementalTruncatedSVD(n_components=4).fit(A[:200])
    inc.partial_fit(da.from_array(A[200:], chunks=(100, -1)))
    _, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    np.testing.assert_allclose(inc.singular_values_, s_ref[:4], rtol=1e-10)
    assert subspace_gap(inc.components_, Vt_ref[:4]) < 1e-8
    assert not hasattr(inc, "U_") and np.isnan(inc.covariance_error_bound_)


@pytest.mark.slow
def test_large_matrix_made_on_the_workers(on_cluster):
    # 100,000 x 60, 30% observed, generated on the workers (never on the client) in
    # 10 row chunks under the cluster's 1 GiB per worker; the oracle is the in-memory
    # function on the computed array.
    gen = da.random.default_rng(0)
    m, n = 100_000, 60
    L = gen.normal(size=(m, 3), chunks=(10_000, 3))
    M = L @ np.random.default_rng(1).normal(size=(3, n))
    X = da.where(gen.random(size=(m, n), chunks=(10_000, n)) < 0.3, M, np.nan)
    X = X.persist()
    Xc = X.compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        U, s, V = soft_impute(X, 50.0, 5, max_iter=8)
        U0, s0, V0 = soft_impute(Xc, 50.0, 5, solver="als", max_iter=8)
    np.testing.assert_allclose(s, s0, rtol=1e-8)
    rows = slice(5_000, 5_200)
    np.testing.assert_allclose((U[rows].compute() * s) @ V.T, (U0[rows] * s0) @ V0.T,
                               atol=1e-8 * np.abs(s0).max())
    U, s, V = svt_complete(X, max_rank=10)
    U0, s0, V0 = svt_complete(Xc, max_rank=10)
    np.testing.assert_allclose(s, s0, rtol=1e-10)
    svd = IncrementalTruncatedSVD(n_components=3).fit(da.nan_to_num(M))
    _, s_ref, _ = np.linalg.svd(M.compute(), full_matrices=False)
    np.testing.assert_allclose(svd.singular_values_, s_ref[:3], rtol=1e-10)
