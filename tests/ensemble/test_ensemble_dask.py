"""Ridge ensembles and sketched least squares on Dask arrays against the in-memory fits.

Oracles: the in-memory estimators with the same seed (members' rows are keyed by
global row, so the same members are drawn whatever the chunking), an independent
re-derivation of the member draws from their definition (multivariate
hypergeometric split over blocks of ``ROW_BLOCK`` rows, then rows without
replacement per block), and inclusion frequencies of a uniform subsample.
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn._random import ROW_BLOCK
from sketchlearn.ensemble import RidgeEnsemble, RidgeEnsembleCV, SketchedLeastSquares
from sketchlearn.ensemble._core import draw_members, member_plan, member_rows

da = pytest.importorskip("dask.array")

CHUNKINGS = [300, 64, 37, (5, 150, 145)]


def _data(rng, n, p, dtype=np.float64):
    X = rng.normal(size=(n, p)) * np.linspace(1.0, 4.0, p) + 2.0
    y = X @ rng.normal(size=p) + rng.normal(size=n) + 5.0
    return X.astype(dtype), y.astype(dtype)


def _dask(X, y, chunks):
    return da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=(chunks,))


def _close(got, want, rtol=1e-8):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(np.abs(want).max(), 1.0))


# ---------------------------------------------------------------------------
# member draws
# ---------------------------------------------------------------------------

def _draws_by_definition(n, k, M, seed):
    """The documented scheme, written out again: one seed from the generator, a
    hypergeometric split of k over the blocks per member, rows per block."""
    rng = np.random.default_rng(seed)
    s = int(rng.integers(2**63 - 1))
    blocks = [min(ROW_BLOCK, n - b) for b in range(0, n, ROW_BLOCK)]
    out = []
    for m in range(M):
        counts = np.random.default_rng([s, m]).multivariate_hypergeometric(blocks, k)
        rows = [b * ROW_BLOCK + np.random.default_rng([s, m, b]).choice(size, c, replace=False)
                for b, (size, c) in enumerate(zip(blocks, counts, strict=True)) if c]
        out.append(np.sort(np.concatenate(rows)))
    return out


@pytest.mark.parametrize("n,k", [(50, 20), (2 * ROW_BLOCK + 1234, 40_000)])
def test_member_draws_follow_their_definition(n, k):
    got = draw_members(n, k, 3, np.random.default_rng(11))
    want = _draws_by_definition(n, k, 3, 11)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.size == k and np.unique(g).size == k and g[0] >= 0 and g[-1] < n


def test_member_rows_of_any_chunking_make_the_whole_draw():
    n, k = ROW_BLOCK + 7000, 30_000
    seed, counts = member_plan(n, k, 2, np.random.default_rng(5))
    whole = member_rows(seed, 1, counts[1], n)
    cuts = [0, 999, 40_000, ROW_BLOCK - 1, ROW_BLOCK + 1, 70_000, n]
    parts = [member_rows(seed, 1, counts[1], n, a, b)
             for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert whole.size == k


def test_member_draws_are_uniform_subsamples():
    """Every row is in a member with probability k/n (binomial 5-sigma band), and the
    per-block counts have the hypergeometric mean."""
    n, k, M = 60, 24, 4000
    idx = draw_members(n, k, M, np.random.default_rng(0))
    freq = np.bincount(np.concatenate(idx), minlength=n) / M
    sd = np.sqrt(k / n * (1 - k / n) / M)
    assert np.all(np.abs(freq - k / n) < 5 * sd)
    n2 = ROW_BLOCK + ROW_BLOCK // 2
    _, counts = member_plan(n2, 3000, 400, np.random.default_rng(1))
    assert counts.shape == (400, 2) and np.all(counts.sum(axis=1) == 3000)
    assert abs(counts[:, 1].mean() - 1000) < 5 * np.sqrt(3000 * (1 / 3) * (2 / 3) / 400)


# ---------------------------------------------------------------------------
# RidgeEnsemble
# ---------------------------------------------------------------------------

def _assert_same_ensemble(got, want, rtol=1e-8):
    for name in ("coef_", "estimators_coef_", "estimators_intercept_", "estimators_df_"):
        _close(getattr(got, name), getattr(want, name), rtol)
        assert isinstance(getattr(got, name), np.ndarray)
    _close(got.intercept_, want.intercept_, rtol)
    for g, w in zip(got.estimators_samples_, want.estimators_samples_, strict=True):
        np.testing.assert_array_equal(np.asarray(g.compute()), w)
    if np.isnan(want.risk_estimate_):
        assert np.isnan(got.risk_estimate_)
    else:
        _close(got.risk_estimate_, want.risk_estimate_, rtol)
        _close(np.sort(got.calibration_residuals_.compute()), want.calibration_residuals_, rtol)


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("alpha", [0.0, 3.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_ensemble_equals_in_memory(synchronous, rng, chunks, alpha, fit_intercept):
    X, y = _data(rng, 300, 6)
    kw = dict(alpha=alpha, n_estimators=4, subsample_size=0.4, fit_intercept=fit_intercept,
              random_state=7)
    want = RidgeEnsemble(**kw).fit(X, y)
    got = RidgeEnsemble(**kw).fit(*_dask(X, y, chunks))
    _assert_same_ensemble(got, want)
    assert np.isnan(got.equivalent_alpha_) and np.isnan(want.equivalent_alpha_)
    dX = da.from_array(X, chunks=(chunks, -1))
    lo, hi = got.predict_interval(dX[:20])
    lo_w, hi_w = want.predict_interval(X[:20])
    _close(lo.compute(), lo_w)
    _close(hi.compute(), hi_w)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_members_with_fewer_rows_than_features(synchronous, rng, alpha):
    """k < p: the in-memory fit uses the dual (k x k) factorisation or an SVD of the
    member; the distributed one the p x p moments (or R factor at alpha=0)."""
    X, y = _data(rng, 120, 40)
    kw = dict(alpha=alpha, n_estimators=3, subsample_size=25, random_state=2)
    want = RidgeEnsemble(**kw).fit(X, y)
    got = RidgeEnsemble(**kw).fit(*_dask(X, y, 17))
    _assert_same_ensemble(got, want)


def test_tiny_penalty_switches_to_the_qr_factor(synchronous, rng):
    """alpha > 0 but below 1e-7 lam_max: the Gram matrix would square the condition
    number, so the members come from merged R factors, as in memory from an SVD."""
    X, y = _data(rng, 200, 5)
    X[:, 4] = X[:, 3] + 1e-5 * rng.normal(size=200)
    kw = dict(alpha=1e-9, n_estimators=3, subsample_size=0.5, random_state=4)
    want = RidgeEnsemble(**kw).fit(X, y)
    got = RidgeEnsemble(**kw).fit(*_dask(X, y, 23))
    _assert_same_ensemble(got, want, rtol=1e-7)


def test_more_rows_than_a_block(synchronous):
    """n > ROW_BLOCK: chunks smaller than a block, and chunks straddling the block
    boundary (30_000-row chunks cross row 65_536)."""
    rng = np.random.default_rng(3)
    X, y = _data(rng, ROW_BLOCK + 4_000, 3)
    kw = dict(alpha=2.0, n_estimators=3, subsample_size=0.5, random_state=9)
    want = RidgeEnsemble(**kw).fit(X, y)
    for chunks in (30_000, (ROW_BLOCK - 1, 4_001)):
        _assert_same_ensemble(RidgeEnsemble(**kw).fit(*_dask(X, y, chunks)), want)


def test_predict_on_dask_is_lazy(synchronous, rng):
    X, y = _data(rng, 200, 4)
    dX, dy = _dask(X, y, 50)
    ens = RidgeEnsemble(random_state=0).fit(dX, dy)
    pred = ens.predict(dX)
    assert isinstance(pred, da.Array)
    _close(pred.compute(), X @ ens.coef_ + ens.intercept_, 1e-12)


# ---------------------------------------------------------------------------
# RidgeEnsembleCV
# ---------------------------------------------------------------------------

def _assert_same_cv(got, want):
    assert got.best_params_ == want.best_params_
    finite = np.isfinite(want.risk_estimates_)
    np.testing.assert_array_equal(np.isfinite(got.risk_estimates_), finite)
    _close(got.risk_estimates_[finite], want.risk_estimates_[finite])
    _close(got.best_score_, want.best_score_)
    _close(got.coef_, want.coef_)
    _close(got.intercept_, want.intercept_)
    _assert_same_ensemble(got.best_estimator_, want.best_estimator_)


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("cv", ["gcv", "cgcv", "ecv"])
def test_ridge_ensemble_cv_equals_in_memory(synchronous, rng, chunks, cv):
    X, y = _data(rng, 300, 6)
    kw = dict(alphas=[0.0, 1.0, 30.0, 300.0], subsample_sizes=[0.25, 0.5, 1.0],
              n_estimators=4, cv=cv, random_state=3)
    want = RidgeEnsembleCV(**kw).fit(X, y)
    got = RidgeEnsembleCV(**kw).fit(*_dask(X, y, chunks))
    _assert_same_cv(got, want)
    assert isinstance(got.predict(da.from_array(X, chunks=(chunks, -1))), da.Array)


def test_cv_without_intercept_and_default_grid(synchronous, rng):
    # The default grid holds subsamples of all n rows, where every ensemble size ties:
    # the chunked sums must not break the tie differently (the first is chosen).
    X, y = _data(rng, 160, 5)
    kw = dict(n_estimators=3, fit_intercept=False, random_state=1)
    _assert_same_cv(RidgeEnsembleCV(**kw).fit(*_dask(X, y, 33)), RidgeEnsembleCV(**kw).fit(X, y))


def test_cv_on_local_cluster(on_cluster, rng):
    X, y = _data(rng, 400, 5)
    kw = dict(alphas=[0.5, 5.0, 50.0], subsample_sizes=[0.3, 0.7], n_estimators=3,
              random_state=8)
    _assert_same_cv(RidgeEnsembleCV(**kw).fit(*_dask(X, y, 90)), RidgeEnsembleCV(**kw).fit(X, y))


def test_float32(synchronous, rng):
    X, y = _data(rng, 300, 5, np.float32)
    kw = dict(alpha=1.0, n_estimators=3, subsample_size=0.5, random_state=0)
    got = RidgeEnsemble(**kw).fit(*_dask(X, y, 64))
    want = RidgeEnsemble(**kw).fit(X, y)
    assert got.coef_.dtype == np.float32 and got.estimators_coef_.dtype == np.float32
    # the in-memory fit rounds in float32; the distributed one sums in float64
    _close(got.coef_, want.coef_, 1e-4)
    want64 = RidgeEnsemble(**kw).fit(X.astype(np.float64), y.astype(np.float64))
    _close(got.coef_, want64.coef_, 1e-6)
    cv = RidgeEnsembleCV(alphas=[1.0, 10.0], subsample_sizes=[0.5], n_estimators=2,
                         random_state=0).fit(*_dask(X, y, 64))
    assert cv.coef_.dtype == np.float32


# ---------------------------------------------------------------------------
# SketchedLeastSquares
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["uniform", "countsketch", "gaussian", "srht"])
@pytest.mark.parametrize("chunks", [300, 37, (5, 150, 145)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sketched_least_squares_equals_in_memory(synchronous, rng, kind, chunks,
                                                 fit_intercept):
    X, y = _data(rng, 300, 6)
    kw = dict(sketch=kind, sketch_size=60, fit_intercept=fit_intercept, random_state=4)
    want = SketchedLeastSquares(**kw).fit(X, y)
    got = SketchedLeastSquares(**kw).fit(*_dask(X, y, chunks))
    _close(got.coef_, want.coef_)
    _close(got.intercept_, want.intercept_)
    assert got.sketch_size_ == want.sketch_size_ == 60


# ---------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------

def test_refusals(synchronous, rng):
    dX, dy = _dask(*_data(rng, 100, 4), 25)
    with pytest.raises(TypeError, match="sketch=None"):
        RidgeEnsemble(sketch="gaussian").fit(dX, dy)
    with pytest.raises(TypeError, match="feature_sketch=None"):
        RidgeEnsemble(feature_sketch="gaussian", subsample_size=1.0).fit(dX, dy)
    with pytest.raises(TypeError, match="sketch=None"):
        RidgeEnsembleCV(sketch="countsketch", cv="gcv").fit(dX, dy)
    for cv in (3, "split"):
        with pytest.raises(TypeError, match="cv='cgcv', 'gcv' or 'ecv'"):
            RidgeEnsembleCV(cv=cv).fit(dX, dy)
    with pytest.raises(TypeError, match="use sketch= one of"):
        SketchedLeastSquares(sketch_size=20).fit(dX, dy)  # default sketch: srdct
    with pytest.raises(TypeError, match="sketch_size='auto'"):
        SketchedLeastSquares(sketch="srht").fit(dX, dy)
