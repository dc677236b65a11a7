"""Gauss-Markov least squares on Dask arrays against the in-memory path.

Oracles: the in-memory ``gauss_markov`` on the computed arrays (the distributed path
promises its numbers to 1e-10 and its digits on NIST's certified values), and NIST's
certified values themselves, with the data cut into chunks of 4-8 rows so that the
TSQR merge tree has several levels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sketchlearn.datasets import load_nist_strd
from sketchlearn.linear_model import GaussMarkovRegressor, gauss_markov

from ..conftest import one_thread_cluster

da = pytest.importorskip("dask.array")


def _digits(got, want):
    got, want = np.atleast_1d(np.asarray(got, float)), np.atleast_1d(np.asarray(want, float))
    err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
    return float(np.min(-np.log10(np.maximum(err, 1e-17))))


def _design(rng, n=300, p=5, cond=1e3):
    U, _ = np.linalg.qr(rng.normal(size=(n, p)))
    V, _ = np.linalg.qr(rng.normal(size=(p, p)))
    X = (U * np.logspace(0, -np.log10(cond), p)) @ V.T * 10 + rng.normal(size=p)
    y = X @ rng.normal(size=p) + 3.0 + rng.normal(size=n) * 0.1
    return X, y


def _chunked(X, y, chunks, w=None):
    dX = da.from_array(X, chunks=(chunks, -1))
    dy = da.from_array(y, chunks=(chunks,))
    return dX, dy, (None if w is None else da.from_array(w, chunks=(chunks,)))


@pytest.mark.parametrize("chunks", [3, 37, (100, 7, 150, 43)])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_in_memory(synchronous, rng, chunks, fit_intercept, weighted):
    X, y = _design(rng)
    w = rng.uniform(0.5, 2.0, size=len(y)) if weighted else None
    mem = gauss_markov(X, y, sample_weight=w, fit_intercept=fit_intercept)
    dX, dy, dw = _chunked(X, y, chunks, w)
    res = gauss_markov(dX, dy, sample_weight=dw, fit_intercept=fit_intercept)
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)
    np.testing.assert_allclose(res.intercept, mem.intercept, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)
    np.testing.assert_allclose(res.cov_params_full, mem.cov_params_full, rtol=1e-9,
                               atol=1e-12 * np.abs(mem.cov_params_full).max())
    np.testing.assert_allclose(res.sigma2, mem.sigma2, rtol=1e-10)
    assert res.rank == mem.rank and res.dof_resid == mem.dof_resid
    np.testing.assert_allclose(res.whitened_tss, mem.whitened_tss, rtol=1e-10)
    # per-row outputs are lazy and equal the in-memory ones
    assert isinstance(res.residuals, da.Array) and isinstance(res.leverage, da.Array)
    np.testing.assert_allclose(res.residuals.compute(), mem.residuals, rtol=1e-8,
                               atol=1e-10 * np.abs(y).max())
    np.testing.assert_allclose(res.leverage.compute(), mem.leverage, rtol=1e-9, atol=1e-12)
    Q = res.basis.compute()
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-12)
    # the basis spans the fitted space: projecting the fitted values changes nothing
    fitted = y - mem.residuals
    sw = np.ones_like(y) if w is None else np.sqrt(w)
    np.testing.assert_allclose(Q @ (Q.T @ (sw * fitted)), sw * fitted, rtol=1e-9,
                               atol=1e-9 * np.abs(fitted).max())


@pytest.mark.parametrize("chunks", [400, 37, (1, 150, 249)])
def test_ar1_errors_equal_in_memory(synchronous, rng, chunks):
    """Prais-Winsten whitening across chunk boundaries (each chunk's first row uses the
    raw row before it), with rho known and estimated by feasible GLS."""
    n = 400
    X = rng.normal(size=(n, 3))
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.6 * e[t - 1] + rng.normal()
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + e
    dX, dy = da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=(chunks,))
    for kwargs in ({"sigma": "ar1", "rho": 0.5}, {"sigma": "ar1"}):
        mem = gauss_markov(X, y, **kwargs)
        res = gauss_markov(dX, dy, **kwargs)
        np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)
        np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)
        np.testing.assert_allclose(res.sigma2, mem.sigma2, rtol=1e-10)
        np.testing.assert_allclose(res.rho, mem.rho, rtol=1e-10)
        assert res.n_iter == mem.n_iter
        np.testing.assert_allclose(res.residuals.compute(), mem.residuals, rtol=1e-9,
                                   atol=1e-10)
    assert mem.n_iter > 2 and 0.4 < mem.rho < 0.8  # feasible GLS did iterate


def test_unrefined_fit_takes_one_pass(synchronous, rng):
    """refine=False: the TSQR pass alone; sigma2 from the last diagonal entry of the R
    of [A | y] (the residual norm, as LAPACK's gels reports it), equal to the in-memory
    unrefined fit's; a robust covariance still needs its statistics pass."""
    X, y = _design(rng, n=500, p=4)
    mem = gauss_markov(X, y, refine=False)
    res = gauss_markov(*_chunked(X, y, 45)[:2], refine=False)
    assert res.n_passes == 1
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)
    np.testing.assert_allclose(res.sigma2, mem.sigma2, rtol=1e-10)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)
    hc = gauss_markov(*_chunked(X, y, 45)[:2], refine=False, cov_type="HC0")
    assert hc.n_passes == 1  # the chunks were kept in memory for the statistics pass
    np.testing.assert_allclose(hc.bse, gauss_markov(X, y, refine=False, cov_type="HC0").bse,
                               rtol=1e-10)


def test_refining_the_coefficients_only_equals_in_memory(synchronous, rng):
    """refine="coef" on an ill-conditioned design: the refined coefficients of the
    in-memory fit, standard errors from R^{-1} R^{-T} (equal up to its rounding,
    about cond * eps)."""
    X, y = _design(rng, n=400, p=5, cond=1e7)
    mem = gauss_markov(X, y, refine="coef")
    res = gauss_markov(*_chunked(X, y, 50)[:2], refine="coef")
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-12)
    np.testing.assert_array_equal(mem.coef, gauss_markov(X, y).coef)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e7 * 1e-14)


def test_kept_chunks_survive_pickling(rng):
    """A kept chunk (its whitened rows and QR) must pickle: a distributed scheduler moves
    it between workers (work stealing, rebalancing). Products after the round trip are
    the same, before and after its Q was formed."""
    import pickle

    from sketchlearn.linear_model._gauss_markov_dask import _KeptChunk

    X, y = _design(rng, n=60, p=3)
    kept = _KeptChunk(X, y, None, 0, 0, None, True, None)
    F, D = rng.normal(size=(60, 4)), rng.normal(size=(5, 3))  # [1 | X | y]: 5 columns
    for _ in range(2):
        back = pickle.loads(pickle.dumps(kept))
        np.testing.assert_array_equal(back.factor.R, kept.factor.R)
        np.testing.assert_array_equal(back.factor.rmatmul(F[:, :1]), kept.factor.rmatmul(F[:, :1]))
        np.testing.assert_array_equal(back.factor.matmul(D), kept.factor.matmul(D))
        kept.factor.explicit()  # the second round trip carries the formed Q


def _without_kept_chunks(monkeypatch):
    """Make every fit read its chunks again in each pass (as on data larger than a
    quarter of the cluster's memory)."""
    import sketchlearn.linear_model._gauss_markov_dask as gmd

    monkeypatch.setattr(gmd, "memory_for_cache", lambda: 0.0)


@pytest.mark.parametrize("kwargs", [{}, {"cov_type": "HC3"}, {"sigma": "ar1"},
                                    {"refine": "coef"}, {"refine": False, "cov_type": "HC0"}])
def test_kept_and_reread_chunks_give_the_same_fit(synchronous, rng, monkeypatch, kwargs):
    """Chunks kept in memory after the first pass, or read and factored again in every
    pass: the same numbers (bit for bit), and passes over the data counted as reads
    (condition 1e11: past the Gram matrix's limit, refinement takes passes)."""
    X, y = _design(rng, n=400, p=4, cond=1e11)
    kept = gauss_markov(*_chunked(X, y, 64)[:2], **kwargs)
    _without_kept_chunks(monkeypatch)
    reread = gauss_markov(*_chunked(X, y, 64)[:2], **kwargs)
    for name in ("coef", "bse", "cov_params_full"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(reread, name))
    assert kept.sigma2 == reread.sigma2 and kept.rho == reread.rho
    np.testing.assert_array_equal(kept.leverage.compute(), reread.leverage.compute())
    assert kept.n_passes < reread.n_passes


@pytest.mark.parametrize("cond, chunks", [(1e2, 37), (1e6, (5, 300, 95, 200)),
                                          (1e6, 600), (1e9, 97)])
def test_refinement_from_the_gram_matrix_takes_one_pass(synchronous, rng, monkeypatch,
                                                         cond, chunks):
    """Below the Gram matrix's condition limit the coefficients, standard errors and
    residual variance are refined on the driver from the first pass's sums: one pass,
    the in-memory refined fit's numbers (its unrefined ones are off by about cond eps),
    and its covariance correction included."""
    X, y = _design(rng, n=600, p=5, cond=cond)
    mem = gauss_markov(X, y)
    _without_kept_chunks(monkeypatch)  # count passes as reads
    dX, dy, _ = _chunked(X, y, chunks)
    res = gauss_markov(dX, dy)
    assert res.n_passes == 1
    unrefined = gauss_markov(X, y, refine=False)
    scale = np.abs(mem.coef).max()
    assert cond < 1e3 or np.max(np.abs(unrefined.coef - mem.coef)) > 1e-13 * scale
    # the documented departure, k eps^2 cond^2 (6e-13 at 1e9), or rounding level
    eps = np.finfo(float).eps
    rel = max(10 * 6 * eps**2 * cond**2, 1e-14)
    np.testing.assert_allclose(res.coef, mem.coef, rtol=0, atol=rel * scale)
    np.testing.assert_allclose(res.intercept, mem.intercept, rtol=rel * 10)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=rel * 10)
    np.testing.assert_allclose(res.sigma2, mem.sigma2, rtol=rel * 10)


def test_gram_pair_is_exact_to_doubled_precision(rng):
    """The first pass's Gram pair against exact rational arithmetic: high + low within
    a few eps^2 of M^T M (float64 sums are off by about eps), and the pairs keep a
    difference that cancels all of a float64 sum's digits."""
    from fractions import Fraction

    from sketchlearn.linear_model._gauss_markov_dask import gram_pair_op

    def exact_dot(u, v):
        return sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(u, v, strict=True))

    def pair(a, b):
        return Fraction(float(high[a, b])) + Fraction(float(low[a, b]))

    M = rng.normal(size=(700, 3))
    M[:, 1] = M[:, 0] * (1 + 1e-9 * rng.normal(size=700))  # near cancellation below
    M[:, 2] = rng.normal(size=700) * 1e5
    high, low = gram_pair_op(np, M)
    for a in range(3):
        for b in range(3):
            size = float(np.abs(M[:, a]) @ np.abs(M[:, b]))
            err = abs(pair(a, b) - exact_dot(M[:, a], M[:, b]))
            assert float(err) <= 8 * np.finfo(float).eps ** 2 * size, (a, b)
            assert high[a, b] == high[a, b] + low[a, b]  # renormalised
    # |m0 - m1|^2 = m0.m0 - 2 m0.m1 + m1.m1: 1e-18 of the terms, below float64's eps
    diff = M[:, 0] - M[:, 1]
    exact = exact_dot(diff, diff)
    from_pair = pair(0, 0) - 2 * pair(0, 1) + pair(1, 1)
    assert abs(float(from_pair - exact)) <= 1e-3 * float(exact)


def test_refinement_past_the_gram_limit_takes_passes(synchronous, rng, monkeypatch):
    """Condition 1e11 (past ``sqrt(1e-10 / k) / eps``): the Gram matrix's rounding
    would move the solution by about ``k eps^2 cond^2``, 1e-9 here, so refinement
    passes over the chunks, and gets the in-memory refined fit."""
    X, y = _design(rng, n=600, p=5, cond=1e11)
    mem = gauss_markov(X, y)
    _without_kept_chunks(monkeypatch)
    res = gauss_markov(*_chunked(X, y, 97)[:2])
    assert res.n_passes >= 2
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-12)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-12)


def _clustered(rng, sizes, p=3):
    """A design with errors correlated within clusters of the given sizes, and the
    clusters' covariance blocks (random SPD, of different scales)."""
    n = int(np.sum(sizes))
    blocks = []
    for s in sizes:
        A = rng.normal(size=(s, s))
        blocks.append(A @ A.T + s * np.eye(s) * rng.uniform(0.5, 4.0))
    e = np.concatenate([np.linalg.cholesky(B) @ rng.normal(size=len(B)) for B in blocks])
    X = rng.normal(size=(n, p))
    return X, X @ rng.normal(size=p) + 2.0 + e, blocks


def test_tsqr_tree_comes_to_the_driver_node_by_node(synchronous, rng):
    """What a TSQR merge passes up is its R only: the orthogonal factors of the merges
    below it do not travel with it (passed up, the last merge held the whole tree:
    memory growing with the number of chunks). The tree put together by the driver
    still gives each chunk its rows of the global Q: ``Q`` orthonormal and ``Q R = A``.
    """
    import pickle

    from sketchlearn._dask import reduce_row_chunks
    from sketchlearn._summaries import TSQR, local_qr

    A = rng.normal(size=(64 * 8, 3))
    tsqr = TSQR(lambda block, start: block)
    level = [tsqr.partial(A[8 * i:8 * i + 8], 8 * i, i) for i in range(64)]
    sizes = []
    while len(level) > 1:
        level = [TSQR.merge(*level[i:i + 2]) for i in range(0, len(level), 2)]
        sizes.append(max(len(pickle.dumps(m)) for m in level))
    assert len(sizes) == 6 and max(sizes) == sizes[0]  # the root's as small as the first
    R, tree = reduce_row_chunks(tsqr, da.from_array(A, chunks=(8, -1)), split_every=2)
    np.testing.assert_array_equal(R, level[0][0])
    leaf = TSQR.leaf_transforms(tree)
    Q = np.concatenate([local_qr(A[8 * i:8 * i + 8])[0] @ leaf[i] for i in range(64)])
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(Q @ R, A, atol=1e-13)


@pytest.mark.parametrize("chunks", [1, 25, (60, 5, 150, 3, 82)])
def test_block_diagonal_sigma_equals_in_memory(synchronous, rng, chunks):
    """GLS with a block-diagonal covariance: row chunks are moved onto block boundaries
    (chunks of 1 and 25 rows cut most blocks), each chunk whitened by its blocks'
    Cholesky factors; the fit equals the in-memory one with the dense matrix."""
    import scipy.linalg

    sizes = rng.integers(1, 9, size=80)
    sizes = sizes[np.cumsum(sizes) <= 300]
    sizes = np.append(sizes, 300 - sizes.sum())
    X, y, blocks = _clustered(rng, sizes[sizes > 0])
    mem = gauss_markov(X, y, sigma=scipy.linalg.block_diag(*blocks))
    res = gauss_markov(*_chunked(X, y, chunks)[:2], sigma=blocks)
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)
    np.testing.assert_allclose(res.intercept, mem.intercept, rtol=1e-10)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)
    np.testing.assert_allclose(res.sigma2, mem.sigma2, rtol=1e-10)
    ends = set(np.cumsum(sizes).tolist())
    assert set(np.cumsum(res.residuals.chunks[0]).tolist()) <= ends
    np.testing.assert_allclose(res.residuals.compute(), mem.residuals, rtol=1e-9,
                               atol=1e-10 * np.abs(y).max())
    np.testing.assert_allclose(res.whitened_residuals.compute(), mem.whitened_residuals,
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.leverage.compute(), mem.leverage, rtol=1e-9, atol=1e-12)
    # a callable returning the blocks is the same covariance
    same = gauss_markov(*_chunked(X, y, chunks)[:2], sigma=lambda n: blocks)
    np.testing.assert_array_equal(same.coef, res.coef)


def test_block_diagonal_sigma_bad_input(synchronous, rng):
    X, y, blocks = _clustered(rng, [3, 4, 5])
    dX, dy, _ = _chunked(X, y, 5)
    with pytest.raises(ValueError, match="cover 11 rows.*12 samples"):
        gauss_markov(dX, dy, sigma=blocks[:2] + [blocks[1]])
    with pytest.raises(ValueError, match=r"sigma\[1\] is not positive definite"):
        gauss_markov(dX, dy, sigma=[blocks[0], -blocks[1], blocks[2]])
    with pytest.raises(ValueError, match=r"sigma\[2\].*must be square"):
        gauss_markov(dX, dy, sigma=[blocks[0], blocks[1], np.ones((5, 4))])
    with pytest.raises(ValueError, match="sample_weight cannot be combined"):
        gauss_markov(dX, dy, sigma=blocks, sample_weight=np.ones(12))


@pytest.mark.parametrize("chunks", [97, (5, 300, 95, 200)])
def test_covariance_of_an_ill_conditioned_design_to_working_precision(
        synchronous, rng, monkeypatch, chunks):
    """Condition 1e8: R^{-1} R^{-T} from the TSQR is off by about cond * eps (8 digits);
    the one-pass correction for the factors' residual must give the in-memory
    iteratively refined standard errors to working precision, without a pass of its
    own (the same passes as refining the coefficients only)."""
    X, y = _design(rng, n=600, p=6, cond=1e8)
    mem = gauss_markov(X, y)
    _without_kept_chunks(monkeypatch)  # count passes as reads
    dX, dy, _ = _chunked(X, y, chunks)
    res = gauss_markov(dX, dy)
    coef_only = gauss_markov(dX, dy, refine="coef")
    unrefined_err = np.max(np.abs(coef_only.bse / mem.bse - 1))
    assert unrefined_err > 1e-11  # what the correction is for (about 1e-9 here)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=2e-14)
    np.testing.assert_allclose(res.intercept_bse, mem.intercept_bse, rtol=2e-14)
    np.testing.assert_allclose(res.cov_params_full, mem.cov_params_full, rtol=1e-12,
                               atol=1e-14 * np.abs(mem.cov_params_full).max())
    assert res.n_passes == coef_only.n_passes


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_robust_covariances_equal_in_memory(synchronous, rng, cov_type):
    X, y = _design(rng, n=200, p=3)
    y = y + rng.normal(size=len(y)) * np.abs(X[:, 0])  # heteroskedastic
    mem = gauss_markov(X, y, cov_type=cov_type)
    res = gauss_markov(*_chunked(X, y, 23)[:2], cov_type=cov_type)
    np.testing.assert_allclose(res.cov_params_full, mem.cov_params_full, rtol=1e-9)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)
    assert res.use_t is False and res.cov_type == cov_type


@pytest.mark.parametrize("name, chunks", [("Longley", 4), ("Longley", 7), ("Filip", 5),
                                          ("Filip", 8), ("Wampler4", 6)])
def test_nist_certified_digits_in_small_chunks(synchronous, monkeypatch, name, chunks):
    """Chunks of 4-8 rows merged two at a time: a tree of several levels keeps the
    in-memory digits (Filip: 7.6, its float64 ceiling; summed normal equations give
    none)."""
    import sketchlearn._dask

    monkeypatch.setattr(sketchlearn._dask, "DEFAULT_SPLIT_EVERY", 2)
    data = load_nist_strd(name)
    mem = gauss_markov(data.X, data.y, fit_intercept=data.fit_intercept)
    dX, dy, _ = _chunked(data.X, data.y, chunks)
    res = gauss_markov(dX, dy, fit_intercept=data.fit_intercept)
    assert len(dX.chunks[0]) >= 3  # a tree of at least two levels
    for got, ref, want in ((res.coef, mem.coef, data.coef), (res.bse, mem.bse, data.coef_se)):
        assert _digits(got, want) >= _digits(ref, want) - 0.3
    assert _digits(res.coef, data.coef) >= (7.4 if name == "Filip" else 13.5)
    assert _digits(res.bse, data.coef_se) >= (7.4 if name == "Filip" else 13.5)
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)


def test_rank_deficient_design_gives_minimum_norm(synchronous, rng):
    X = rng.normal(size=(120, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    y = X @ np.array([1.0, 2.0, -1.0, 0.5]) + rng.normal(size=120) * 0.01
    with pytest.warns(RuntimeWarning, match="rank deficient"):
        mem = gauss_markov(X, y)
    with pytest.warns(RuntimeWarning, match="rank deficient"):
        res = gauss_markov(*_chunked(X, y, 17)[:2])
    assert res.rank == mem.rank == 4
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-9)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-8)


def test_estimator_on_dask(synchronous, rng):
    X, y = _design(rng, n=150, p=3)
    mem = GaussMarkovRegressor().fit(X, y)
    model = GaussMarkovRegressor().fit(*_chunked(X, y, 40)[:2])
    assert isinstance(model.coef_, np.ndarray)
    np.testing.assert_allclose(model.coef_, mem.coef_, rtol=1e-10)
    np.testing.assert_allclose(model.conf_int(), mem.conf_int(), rtol=1e-10)
    np.testing.assert_allclose(model.score(X, y), mem.score(X, y), rtol=1e-12)
    pred = model.predict(da.from_array(X, chunks=(40, -1)))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), mem.predict(X), rtol=1e-10)
    assert "R-squared" in model.summary() or "R^2" in model.summary()


def test_on_local_cluster(on_cluster, rng):
    X, y = _design(rng, n=400, p=4)
    mem = gauss_markov(X, y)
    res = gauss_markov(*_chunked(X, y, 64)[:2])
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-10)
    np.testing.assert_allclose(res.bse, mem.bse, rtol=1e-10)


def test_bad_dask_input(synchronous, rng):
    X, y = _design(rng, n=60, p=2)
    dX, dy, _ = _chunked(X, y, 20)
    unknown = dX[dX[:, 0] > -np.inf]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        gauss_markov(unknown, dy)
    # columns in several chunks are merged with a warning, and the fit is unchanged
    with pytest.warns(UserWarning, match="chunked along its columns"):
        res = gauss_markov(da.from_array(X, chunks=(20, 1)), dy)
    np.testing.assert_allclose(res.coef, gauss_markov(X, y).coef, rtol=1e-10)
    # a NumPy y is cut into X's row chunks (documented)
    np.testing.assert_allclose(gauss_markov(dX, y).coef, res.coef, rtol=1e-12)
    with pytest.raises(TypeError, match="Dask array"):
        gauss_markov(X, dy)
    with pytest.raises(ValueError, match="shape"):
        gauss_markov(dX, y[:-1])
    bad = X.copy()
    bad[33, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*rows 20 to 39"):
        gauss_markov(da.from_array(bad, chunks=(20, -1)), dy)
    with pytest.raises(TypeError, match="sample_weight.*list of diagonal blocks"):
        gauss_markov(dX, dy, sigma=np.ones(len(y)))
    with pytest.raises(ValueError, match="sample_weight cannot be combined"):
        gauss_markov(dX, dy, sigma="ar1", sample_weight=np.ones(len(y)))
    with pytest.raises(TypeError, match="HC0"):
        gauss_markov(dX, dy, cov_type="HAC", cov_kwds={"maxlags": 1})


def test_float32_input_gives_float32_coefficients(synchronous, rng):
    X, y = _design(rng, n=100, p=3)
    res = gauss_markov(*_chunked(X.astype(np.float32), y.astype(np.float32), 30)[:2])
    mem = gauss_markov(X.astype(np.float32), y.astype(np.float32))
    assert res.coef.dtype == np.float32 and res.residuals.dtype == np.float32
    np.testing.assert_allclose(res.coef, mem.coef, rtol=1e-5)


def test_no_dask_import_from_sketchlearn():
    import subprocess
    import sys

    code = ("import sys, sketchlearn, sketchlearn.linear_model, sketchlearn.sketching; "
            "assert 'dask' not in sys.modules and 'dask.array' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_warning_free_on_ordinary_data(synchronous, rng):
    X, y = _design(rng, n=90, p=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gauss_markov(*_chunked(X, y, 30)[:2])


@pytest.mark.slow
def test_out_of_core_fit_stays_under_the_workers_memory(tmp_path):
    """A zarr design on disk 3x the workers' total memory limit, fitted on a cluster of
    two 1 GiB workers: no worker restarted, each worker's peak memory under its
    limit, and the exact coefficients of a consistent system (y = X beta in float64,
    well-conditioned X: the least-squares solution is beta to rounding)."""
    pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    limit = 2**30
    n_workers, p, rows = 2, 30, 50_000
    n = -(-3 * n_workers * limit // ((p + 1) * 8) // rows) * rows  # >= 3x the limits
    beta = np.linspace(-1.0, 1.0, p)
    with one_thread_cluster(limit, n_workers) as (client, pids):
        for name, shape, chunks in (("X", (n, p), (rows, p)), ("y", (n,), (rows,))):
            zarr.create_array(str(tmp_path / name), shape=shape, chunks=chunks,
                              dtype="float64", compressors=None)
        X = da.random.default_rng(0).standard_normal((n, p), chunks=(rows, p))
        da.store(X, zarr.open_array(str(tmp_path / "X"), mode="r+"), lock=False)
        X = da.from_zarr(str(tmp_path / "X"))
        da.store(X @ beta, zarr.open_array(str(tmp_path / "y"), mode="r+"), lock=False)
        y = da.from_zarr(str(tmp_path / "y"))
        on_disk = X.nbytes + y.nbytes
        assert on_disk >= 3 * n_workers * limit
        res = gauss_markov(X, y)
        peak = client.run(lambda: __import__("resource").getrusage(
            __import__("resource").RUSAGE_SELF).ru_maxrss * 1024)
        assert client.run(__import__("os").getpid) == pids  # no worker restarted
    np.testing.assert_allclose(res.coef, beta, rtol=1e-10, atol=1e-12)
    assert abs(res.intercept) < 1e-10
    assert max(peak.values()) < limit, (peak, limit)
