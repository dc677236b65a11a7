"""Blocked ALS (AltMinCompleter / altmin_complete) on Dask against the in-memory path.

Oracle: the in-memory ``altmin_complete`` / ``AltMinCompleter`` on the computed
arrays. The distributed path promises the same iterates (same start, same row
solver, same balancing), so factors, singular values, sweep counts and residuals are
compared to rtol 1e-8 in float64, whatever the chunking and the blocking.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sketchlearn.completion import (
    AltMinCompleter,
    SoftImputeCV,
    altmin_complete,
)
from sketchlearn.completion._dask import altmin_complete_dask

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")


def _low_rank(rng, m, n, r, density, noise=0.0, dtype=np.float64):
    M = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
    X = np.where(rng.random((m, n)) < density, M + noise * rng.normal(size=(m, n)), np.nan)
    return M.astype(dtype), X.astype(dtype)


def _triplets(X):
    rows, cols = np.nonzero(~np.isnan(X))
    return rows, cols, X[rows, cols]


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _assert_same_fit(mem, dist, rtol=1e-8):
    for a, b in zip(mem, dist, strict=True):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())


# --------------------------------------------------------------------------- iterates


@pytest.mark.parametrize("chunks, solver", [((70, 90), "exact"), ((37, 200), "cg"),
                                            ((300, 23), "exact")])
def test_function_equals_in_memory(synchronous, rng, chunks, solver):
    _, X = _low_rank(rng, 300, 200, 3, 0.3, noise=0.01)
    kw = dict(rank=3, tol=1e-12, max_iter=12, solver=solver, random_state=0)
    mem = _quiet(altmin_complete, X, **kw)
    dist = _quiet(altmin_complete, da.from_array(X, chunks=chunks), **kw)
    # U has one row per matrix row: a Dask array, as for every distributed completion
    assert isinstance(dist[0], da.Array) and all(isinstance(a, np.ndarray) for a in dist[1:])
    _assert_same_fit(mem, (dist[0].compute(), *dist[1:]))


@pytest.mark.parametrize("n_blocks, alpha", [(1, 0.0), ((2, 7), 0.5)])
def test_estimator_equals_in_memory_blockings(synchronous, rng, n_blocks, alpha):
    """Same factors, sweep count and residual, with the stopping rule met before
    max_iter (the residual of a sweep is summed in the next row half-step)."""
    from sketchlearn.completion._dask import altmin_fit, blocked_entries
    from sketchlearn.completion._observed import as_observed

    _, X = _low_rank(rng, 250, 120, 4, 0.25, noise=0.05)
    X[7] = np.nan  # an all-missing row
    X[:, 11] = np.nan  # and column
    est = AltMinCompleter(rank=4, alpha=alpha, tol=1e-5, max_iter=200, random_state=3)
    _quiet(est.fit, X)
    assert est.n_iter_ < 200
    from sketchlearn._random import as_generator

    ent = blocked_entries(da.from_array(X, chunks=(60, 50)), n_blocks=n_blocks)
    U, s, V, n_iter, res = _quiet(altmin_fit, ent, 4, alpha=alpha, max_iter=200, tol=1e-5,
                                  solver="exact", cg_iter=4, init_clip=2.0,
                                  rng=as_generator(3), verbose=0)
    assert n_iter == est.n_iter_
    np.testing.assert_allclose(res, est.residual_, rtol=1e-8)
    obs = as_observed(X)
    assert ent.nnz == obs.nnz and ent.shape == obs.shape
    np.testing.assert_array_equal(ent.row_counts(), obs.row_counts())
    np.testing.assert_array_equal(ent.col_counts(), obs.col_counts())
    # the estimator fills the empty row and column as in memory
    dist = AltMinCompleter(rank=4, alpha=alpha, tol=1e-5, max_iter=200, random_state=3)
    _quiet(dist.fit, da.from_array(X, chunks=(60, 50)))
    _assert_same_fit((est.U_, est.singular_values_, est.V_),
                     (dist.U_, dist.singular_values_, dist.V_))
    assert dist.n_iter_ == est.n_iter_ and dist.rank_ == est.rank_
    np.testing.assert_allclose(dist.residual_, est.residual_, rtol=1e-8)


@pytest.mark.parametrize("chunks, n_blocks", [((70, 90), None), ((37, 200), (5, 3))])
def test_sketch_cg_equals_in_memory(synchronous, rng, chunks, n_blocks):
    """Robust AltMin: every entry's sketch is hashed from its global CSR (CSC)
    position, so the blocked solves draw the in-memory sketches (rows here have ~60
    entries, more than the 12 sketch rows: the sketches are not the identity)."""
    _, X = _low_rank(rng, 300, 200, 3, 0.3, noise=0.01)
    kw = dict(rank=3, tol=1e-12, max_iter=6, solver="sketch-cg", solve_tol=1e-8,
              random_state=0)
    est = AltMinCompleter(**kw)
    _quiet(est.fit, X)
    dist = AltMinCompleter(**kw)
    _quiet(dist.fit, da.from_array(X, chunks=chunks))
    _assert_same_fit((est.U_, est.singular_values_, est.V_),
                     (dist.U_, dist.singular_values_, dist.V_))
    assert dist.n_iter_ == est.n_iter_ and dist.solver_ == "sketch-cg"
    np.testing.assert_allclose(dist.residual_, est.residual_, rtol=1e-8)
    mem = _quiet(altmin_complete, X, **kw)
    _assert_same_fit(mem, _quiet(altmin_complete_dask, da.from_array(X, chunks=chunks),
                                 n_blocks=n_blocks, **kw))


@pytest.mark.parametrize("solver", ["exact", "cg", "sketch-cg"])
def test_half_steps_take_pieces_or_whole_blocks(synchronous, rng, monkeypatch, solver):
    """The half-steps' rows of the other factor, taken where they live or sent as whole
    blocks and taken in the solve (the way that moves fewer rows, counted for the
    workers in use): the same solves, so the same iterates, bit for bit."""
    from dask.delayed import Delayed

    from sketchlearn._random import as_generator
    from sketchlearn.completion import _dask

    _, X = _low_rank(rng, 240, 160, 3, 0.3, noise=0.01)
    ent = _dask.blocked_entries(da.from_array(X, chunks=(60, 50)), n_blocks=(3, 4))
    kw = dict(alpha=0.0, max_iter=5, tol=1e-12, solver=solver, cg_iter=4, init_clip=None,
              verbose=0)
    fits = {}
    for workers in (1, 10**6):  # in-process: whole blocks; "a million workers": pieces
        monkeypatch.setattr(_dask, "worker_processes", lambda w=workers: w)
        als = _dask._ALS(ent, 3)
        kinds = {type(p) for per_block in als.pieces(0, [None] * 4) for p in per_block}
        assert kinds == ({tuple} if workers == 1 else {Delayed})
        fits[workers] = _quiet(_dask.altmin_fit, ent, 3, rng=as_generator(0), **kw)
    for a, b in zip(fits[1], fits[10**6], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(400, 30), (30, 400)])
def test_blocked_products_both_ways(synchronous, rng, shape, monkeypatch):
    """``P_Omega(X) B`` and ``P_Omega(X)^T B`` (the start's products) against the dense
    product; each goes by partial sums when that moves fewer rows (``A^T B`` of a tall
    matrix, ``A B`` of a wide one), by gathering otherwise."""
    from sketchlearn.completion import _dask

    calls = []
    partial = _dask._spmm_t_block
    monkeypatch.setattr(_dask, "_spmm_t_block", lambda *a: calls.append(1) or partial(*a))
    m, n = shape
    _, X = _low_rank(rng, m, n, 3, 0.3)
    X[3] = np.nan  # an empty row and an empty column
    X[:, 5] = np.nan
    ent = _dask.blocked_entries(da.from_array(X, chunks=(70, 90)), n_blocks=(4, 3))
    A = np.nan_to_num(X) * 1.7
    als = _dask._ALS(ent, 3)
    tall = m > n
    for axis, dense in ((0, A), (1, A.T)):
        B = rng.normal(size=(dense.shape[1], 5))
        calls.clear()
        got = np.asarray(als.product(axis, B, 1.7))
        np.testing.assert_allclose(got, dense @ B, rtol=1e-13, atol=1e-13 * np.abs(A).max())
        assert bool(calls) == (tall == (axis == 1))


def test_small_dense_start(synchronous, rng):
    """Below 40,000 entries the in-memory start is a dense SVD: gathered, the same."""
    _, X = _low_rank(rng, 60, 40, 2, 0.5)
    kw = dict(rank=2, tol=1e-10, max_iter=50, random_state=0)
    mem = _quiet(altmin_complete, X, **kw)
    dist = _quiet(altmin_complete, da.from_array(X, chunks=(13, 40)), **kw)
    _assert_same_fit(mem, dist)


def test_float32(synchronous, rng):
    """float32 stays float32; the only differences are the order of the Gram and
    residual sums, so the factors agree to a few float32 roundings per sweep."""
    _, X = _low_rank(rng, 300, 200, 3, 0.3, noise=0.01, dtype=np.float32)
    kw = dict(rank=3, tol=1e-12, max_iter=5, random_state=0)
    mem = _quiet(altmin_complete, X, **kw)
    dist = _quiet(altmin_complete, da.from_array(X, chunks=(70, 90)), **kw)
    assert all(a.dtype == np.float32 for a in dist)
    _assert_same_fit(mem, dist, rtol=2e-4)


def test_issue_size_equals_in_memory(synchronous):
    """The issue's check: 10^4 x 10^3 of rank 5 with ~5% observed, as Dask triplets."""
    rng = np.random.default_rng(18)
    m, n, r = 10_000, 1_000, 5
    nnz = m * n // 20
    rows, cols = rng.integers(0, m, nnz), rng.integers(0, n, nnz)
    vals = np.sum(rng.normal(size=(m, r))[rows] * rng.normal(size=(n, r))[cols], axis=1)
    vals += 0.01 * rng.normal(size=nnz)
    kw = dict(rank=5, tol=1e-6, max_iter=30, duplicates="mean", random_state=1)
    mem = _quiet(altmin_complete, (rows, cols, vals, (m, n)), **kw)
    c = nnz // 5
    X = tuple(da.from_array(a, chunks=c) for a in (rows, cols, vals)) + ((m, n),)
    dist = _quiet(altmin_complete_dask, X, **kw)
    _assert_same_fit(mem, dist)


def test_on_cluster_dataframe(on_cluster, rng):
    """On the LocalCluster, from a Dask DataFrame of triplets (named columns, shuffled
    order), through the estimator: the same fit, lazy fit_transform."""
    M, X = _low_rank(rng, 200, 150, 3, 0.3)
    rows, cols, vals = _triplets(X)
    perm = rng.permutation(rows.size)
    frame = pd.DataFrame({"value": vals[perm], "col": cols[perm], "row": rows[perm]})
    ddf = dd.from_pandas(frame, npartitions=3)
    est = AltMinCompleter(rank=3, tol=1e-12, max_iter=4, random_state=0)
    Z_mem = _quiet(est.fit_transform, X)
    dist = AltMinCompleter(rank=3, tol=1e-12, max_iter=4, random_state=0)
    Z = _quiet(dist.fit_transform, ddf)
    assert isinstance(Z, da.Array)
    _assert_same_fit((est.U_, est.singular_values_, est.V_),
                     (dist.U_, dist.singular_values_, dist.V_))
    np.testing.assert_allclose(Z.compute(), Z_mem, rtol=1e-8, atol=1e-8)
    assert np.abs(Z_mem - M).max() < 1e-2 * np.abs(M).max()


# --------------------------------------------------------------------------- inputs


def test_triplet_forms_agree(synchronous, rng):
    """Positional DataFrame columns, a tuple with NumPy members, the shape inferred or
    given: one fit, through the public function (which routes Dask DataFrames and
    tuples holding Dask arrays to the distributed version)."""
    _, X = _low_rank(rng, 120, 90, 2, 0.4)
    rows, cols, vals = _triplets(X)
    kw = dict(rank=2, tol=1e-12, max_iter=8, random_state=0)
    mem = _quiet(altmin_complete, (rows, cols, vals), **kw)
    frame = pd.DataFrame({"i": rows, "j": cols, "x": vals})
    got = [
        _quiet(altmin_complete, dd.from_pandas(frame, npartitions=3), **kw),
        _quiet(altmin_complete, (da.from_array(rows, chunks=500), cols, vals), **kw),
        _quiet(altmin_complete,
               (da.from_array(rows, chunks=500), da.from_array(cols, chunks=700),
                da.from_array(vals, chunks=300), (120, 90)), **kw),
    ]
    for dist in got:
        assert isinstance(dist[0], da.Array)
        _assert_same_fit(mem, (dist[0].compute(), *dist[1:]))


def test_duplicates_policy(synchronous, rng):
    _, X = _low_rank(rng, 80, 60, 2, 0.5)
    rows, cols, vals = _triplets(X)
    rows = np.concatenate([rows, rows[:5]])
    cols = np.concatenate([cols, cols[:5]])
    vals = np.concatenate([vals, vals[:5] + 1.0])
    dX = tuple(da.from_array(a, chunks=400) for a in (rows, cols, vals))
    with pytest.raises(ValueError, match=r"5 repeated \(row, col\) pair\(s\), the first at "
                                         rf"\({rows[0]}, {cols[0]}\).*duplicates='mean'"):
        altmin_complete_dask(dX, rank=2)
    kw = dict(rank=2, tol=1e-12, max_iter=8, random_state=0, duplicates="mean")
    _assert_same_fit(_quiet(altmin_complete, (rows, cols, vals), **kw),
                     _quiet(altmin_complete_dask, dX, **kw))


@pytest.mark.parametrize("bad, match", [
    (lambda r, c, v: (r, c, v, (5, 50)), r"row indices of X must lie in \[0, 4\]"),
    (lambda r, c, v: (r - 1, c, v), r"row indices of X must lie in \[0, .*got values from -1"),
    (lambda r, c, v: (r, c, np.where(np.arange(v.size) == 17, np.nan, v)),
     "values of X contain NaN \\(first at position 17\\)"),
    (lambda r, c, v: (r, c.astype(float), v), "indices of X must be integers"),
])
def test_bad_triplets(synchronous, rng, bad, match):
    _, X = _low_rank(rng, 40, 50, 2, 0.5)
    args = bad(*_triplets(X))
    dX = tuple(da.from_array(np.asarray(a), chunks=100) for a in args[:3]) + tuple(args[3:])
    with pytest.raises((ValueError, TypeError), match=match):
        altmin_complete_dask(dX, rank=2)


def test_bad_dask_inputs(synchronous, rng):
    _, X = _low_rank(rng, 40, 50, 2, 0.5)
    dX = da.from_array(X, chunks=10)
    unknown = dX[dX[:, 0] > -np.inf]  # boolean indexing: unknown row chunks
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        altmin_complete(unknown, rank=2)
    with pytest.raises(ValueError, match="observed_mask is not supported with Dask"):
        altmin_complete(dX, rank=2, observed_mask=~np.isnan(X))
    Xi = X.copy()
    Xi[3, 4] = np.inf
    with pytest.raises(ValueError, match="X contains infinity"):
        altmin_complete(da.from_array(Xi, chunks=10), rank=2)
    with pytest.raises(ValueError, match="rank=60 is larger than min"):
        altmin_complete(dX, rank=60)
    with pytest.raises(ValueError, match="solver='sketch-cg' solves the unregularised"):
        altmin_complete(dX, rank=2, solver="sketch-cg", alpha=0.1)
    frame = dd.from_pandas(pd.DataFrame({"a": [0, 1], "b": [1, 0]}), npartitions=1)
    with pytest.raises(ValueError, match="columns named \\['row', 'col', 'value'\\]"):
        AltMinCompleter(rank=1).fit(frame)
    with pytest.raises(TypeError, match="SoftImputeCV has no distributed version"):
        _quiet(SoftImputeCV(max_rank=2).fit, dX)


def test_empty_rows_warn_as_in_memory(synchronous, rng):
    _, X = _low_rank(rng, 60, 40, 2, 0.5)
    X[[3, 9]] = np.nan
    with pytest.warns(UserWarning, match=r"2 row\(s\) \(first: 3\) with no observed entry"):
        AltMinCompleter(rank=2, max_iter=5, tol=1e-3, random_state=0).fit(
            da.from_array(X, chunks=(20, 40)))


# --------------------------------------------------------------------------- using the fit


def test_transform_and_predictions_lazy(synchronous, rng):
    M, X = _low_rank(rng, 200, 120, 3, 0.35)
    mem = AltMinCompleter(rank=3, tol=1e-10, max_iter=100, random_state=0)
    dist = AltMinCompleter(rank=3, tol=1e-10, max_iter=100, random_state=0)
    Z_mem = _quiet(mem.fit_transform, X)
    Z = _quiet(dist.fit_transform, da.from_array(X, chunks=(45, 120)))
    assert isinstance(Z, da.Array) and Z.dtype == np.float64
    np.testing.assert_allclose(Z.compute(), Z_mem, rtol=1e-8, atol=1e-8)
    # fold-in of new rows: a NaN-marked Dask array and Dask triplets
    _, new = _low_rank(rng, 30, 120, 3, 0.35)
    for denoise in (False, True):
        mem.set_params(denoise=denoise)
        dist.set_params(denoise=denoise)
        T = dist.transform(da.from_array(new, chunks=(7, 120)))
        assert isinstance(T, da.Array)
        np.testing.assert_allclose(T.compute(), mem.transform(new), rtol=1e-8, atol=1e-10)
    rows, cols, vals = _triplets(new)
    trip = (rows, cols, vals, (30, 120))
    T = dist.transform(tuple(da.from_array(a, chunks=200) for a in (rows, cols, vals))
                       + ((30, 120),))
    np.testing.assert_allclose(T.compute(), mem.transform(trip), rtol=1e-8, atol=1e-10)
    # entry predictions
    r, c = np.nonzero(np.isnan(X))
    P = dist.predict_entries(da.from_array(r, chunks=997), da.from_array(c, chunks=997))
    assert isinstance(P, da.Array)
    np.testing.assert_allclose(P.compute(), mem.predict_entries(r, c), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(P.compute(), M[r, c], atol=1e-6)
    bad = dist.predict_entries(da.from_array(np.array([0, 500]), chunks=1),
                               da.from_array(np.array([0, 1]), chunks=1))
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 199\]"):
        bad.compute()


def test_rank_deficient_factors_householder_fallback(synchronous, rng):
    """Rank above the data's: CholeskyQR2 of the factors fails and both paths fall back
    to Householder QR (LAPACK in memory, Dask's TSQR here, equal up to column signs):
    the fitted matrix and its nonzero singular values still agree."""
    import sketchlearn.completion._dask as impl

    M, X = _low_rank(rng, 300, 200, 2, 0.4)
    kw = dict(rank=4, alpha=0.1, tol=1e-14, max_iter=10, random_state=0)
    calls = []
    original = impl._ALS._balance_householder

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)

    impl._ALS._balance_householder = counted
    try:
        dist = _quiet(altmin_complete, da.from_array(X, chunks=(70, 90)), **kw)
    finally:
        impl._ALS._balance_householder = original
    mem = _quiet(altmin_complete, X, **kw)
    assert calls
    Z_mem, Z = ((U * s) @ V.T for U, s, V in (mem, dist))
    np.testing.assert_allclose(Z, Z_mem, rtol=1e-8, atol=1e-8 * np.abs(Z_mem).max())
    np.testing.assert_allclose(dist[1][:2], mem[1][:2], rtol=1e-8)


def test_soft_impute_and_svt_helpers(synchronous, rng):
    """What the SoftImpute / SVTCompleter estimators compute from the blocked entries
    before calling their functional twins: the default shrinkage's lambda_max (same
    random start) and the data-driven SVT threshold, equal to the in-memory ones."""
    from sketchlearn._random import as_generator
    from sketchlearn.completion._core import lambda_max, svt_threshold
    from sketchlearn.completion._dask import (
        blocked_entries,
        lambda_max_blocked,
        svt_threshold_blocked,
    )
    from sketchlearn.completion._observed import as_observed

    _, X = _low_rank(rng, 300, 200, 3, 0.3, noise=0.1)
    obs = as_observed(X)
    ent = blocked_entries(da.from_array(X, chunks=(70, 90)))
    np.testing.assert_allclose(lambda_max_blocked(ent, as_generator(5)),
                               lambda_max(obs, as_generator(5)), rtol=1e-10)
    p_hat = obs.nnz / (300 * 200)
    np.testing.assert_allclose(svt_threshold_blocked(ent), svt_threshold(obs, p_hat),
                               rtol=1e-12)
