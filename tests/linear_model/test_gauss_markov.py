"""GaussMarkovRegressor and gauss_markov against statsmodels, pseudo-inverses and identities."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchlearn.linear_model import GaussMarkovRegressor, ar1_coefficient, gauss_markov


def _data(rng, n=60, p=4, noise=0.5):
    X = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    y = 1.5 + X @ rng.normal(size=p) + noise * rng.normal(size=n)
    return X, y


def _ar1_sigma(n, rho):
    idx = np.arange(n)
    return rho ** np.abs(idx[:, None] - idx[None, :]) / (1 - rho**2)


def test_ols_matches_statsmodels(rng, sm):
    X, y = _data(rng)
    model = GaussMarkovRegressor().fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(model.coef_, ref.params[1:], rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, ref.params[0], rtol=1e-12)
    np.testing.assert_allclose(model.bse_, ref.bse[1:], rtol=1e-10)
    np.testing.assert_allclose(model.intercept_bse_, ref.bse[0], rtol=1e-10)
    np.testing.assert_allclose(model.cov_params_, ref.cov_params()[1:, 1:], rtol=1e-10)
    np.testing.assert_allclose(model.sigma2_, ref.scale, rtol=1e-12)
    np.testing.assert_allclose(model.residuals_, ref.resid, atol=1e-12)
    np.testing.assert_allclose(model.leverage_, ref.get_influence().hat_matrix_diag, rtol=1e-10)
    np.testing.assert_allclose(model.conf_int(0.1, include_intercept=True), ref.conf_int(0.1),
                               rtol=1e-10)
    assert model.rank_ == 5 and model.dof_resid_ == ref.df_resid
    np.testing.assert_allclose(model._stats["r2"], ref.rsquared, rtol=1e-12)
    np.testing.assert_allclose(model._stats["r2_adj"], ref.rsquared_adj, rtol=1e-12)
    np.testing.assert_allclose(model._stats["fvalue"], ref.fvalue, rtol=1e-10)
    pred = ref.get_prediction(sm.add_constant(X[:5], has_constant="add")).summary_frame(0.1)
    np.testing.assert_allclose(model.predict_interval(X[:5], 0.1),
                               pred[["obs_ci_lower", "obs_ci_upper"]].to_numpy(), rtol=1e-10)


def test_no_intercept_matches_statsmodels(rng, sm):
    X, y = _data(rng)
    model = GaussMarkovRegressor(fit_intercept=False).fit(X, y)
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(model.coef_, ref.params, rtol=1e-12)
    np.testing.assert_allclose(model.bse_, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(model._stats["r2"], ref.rsquared, rtol=1e-12)  # uncentered
    assert model.intercept_ == 0.0 and model.rank_ == 4


def test_wls_and_variance_vector_match_statsmodels_wls(rng, sm):
    X, y = _data(rng)
    w = rng.uniform(0.2, 3.0, size=y.size)
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    for model in (GaussMarkovRegressor().fit(X, y, sample_weight=w),
                  GaussMarkovRegressor(sigma=1.0 / w).fit(X, y)):
        np.testing.assert_allclose(model.coef_, ref.params[1:], rtol=1e-11)
        np.testing.assert_allclose(model.bse_, ref.bse[1:], rtol=1e-10)
        np.testing.assert_allclose(model.intercept_bse_, ref.bse[0], rtol=1e-10)
        np.testing.assert_allclose(model._stats["r2"], ref.rsquared, rtol=1e-10)


def test_zero_weight_equals_dropping_the_row(rng):
    X, y = _data(rng)
    w = np.ones(y.size)
    w[[3, 10]] = 0.0
    keep = w > 0
    a = GaussMarkovRegressor().fit(X, y, sample_weight=w)
    b = GaussMarkovRegressor().fit(X[keep], y[keep])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-11)
    np.testing.assert_allclose(a.bse_, b.bse_ * np.sqrt(b.dof_resid_ / a.dof_resid_), rtol=1e-10)
    np.testing.assert_allclose(a.residuals_[3], y[3] - a.predict(X[3:4])[0], atol=1e-12)


def test_gls_dense_and_ar1_match_statsmodels_gls(rng, sm):
    n, rho = 80, 0.6
    X, y = _data(rng, n=n)
    S = _ar1_sigma(n, rho)
    ref = sm.GLS(y, sm.add_constant(X), sigma=S).fit()
    for model in (GaussMarkovRegressor(sigma=S).fit(X, y),
                  GaussMarkovRegressor(sigma="ar1", rho=rho).fit(X, y),
                  GaussMarkovRegressor(sigma=lambda m: _ar1_sigma(m, rho)).fit(X, y)):
        np.testing.assert_allclose(model.coef_, ref.params[1:], rtol=1e-10)
        np.testing.assert_allclose(model.intercept_, ref.params[0], rtol=1e-10)
        np.testing.assert_allclose(model.bse_, ref.bse[1:], rtol=1e-9)
        np.testing.assert_allclose(model.intercept_bse_, ref.bse[0], rtol=1e-9)
    assert "AR(1)" in GaussMarkovRegressor(sigma="ar1", rho=rho).fit(X, y).summary()


def test_block_diagonal_sigma_matches_statsmodels_gls(rng, sm):
    """A list of diagonal blocks (clustered errors) is the block-diagonal covariance:
    statsmodels' GLS with the dense matrix is the oracle; blocks of one size are solved
    in one batch, so sizes repeat here, in mixed order."""
    import scipy.linalg

    sizes = [3, 1, 4, 3, 3, 6, 1, 4] * 5
    blocks = []
    for s in sizes:
        A = rng.normal(size=(s, s))
        blocks.append(A @ A.T + s * np.eye(s))
    X, y = _data(rng, n=sum(sizes))
    ref = sm.GLS(y, sm.add_constant(X), sigma=scipy.linalg.block_diag(*blocks)).fit()
    for model in (GaussMarkovRegressor(sigma=blocks).fit(X, y),
                  GaussMarkovRegressor(sigma=tuple(blocks)).fit(X, y),
                  GaussMarkovRegressor(sigma=lambda m: blocks).fit(X, y)):
        np.testing.assert_allclose(model.coef_, ref.params[1:], rtol=1e-10)
        np.testing.assert_allclose(model.intercept_, ref.params[0], rtol=1e-10)
        np.testing.assert_allclose(model.bse_, ref.bse[1:], rtol=1e-9)
        np.testing.assert_allclose(model.sigma2_, ref.scale, rtol=1e-10)
    for bad, match in (([np.eye(2)] * 3, "cover 6 rows"), ([-b for b in blocks], "sigma\\[0\\]")):
        with pytest.raises(ValueError, match=match):
            gauss_markov(X, y, sigma=bad)
    with pytest.raises(ValueError, match="sample_weight cannot be combined"):
        gauss_markov(X, y, sigma=blocks, sample_weight=np.ones(len(y)))


def test_feasible_gls_recovers_the_ar1_coefficient(rng):
    n, rho = 3000, 0.7
    X = rng.normal(size=(n, 2))
    e = np.empty(n)
    e[0] = rng.normal() / np.sqrt(1 - rho**2)
    for t in range(1, n):
        e[t] = rho * e[t - 1] + rng.normal()
    y = 2.0 + X @ np.array([1.0, -1.0]) + e
    model = GaussMarkovRegressor(sigma="ar1").fit(X, y)
    assert abs(model.rho_ - rho) < 0.05
    assert model.n_iter_ >= 2
    # at convergence rho_ is the lag-one autocorrelation of the GLS residuals
    assert abs(ar1_coefficient(model.residuals_) - model.rho_) < 1e-6
    ols = GaussMarkovRegressor().fit(X, y)
    assert model.bse_[0] < 1.2 * ols.bse_[0]


def test_sigma2_is_the_minimum_residual_sum_of_squares(rng):
    # on an ill-conditioned design (the pivoted, refined path) sigma2 comes from the
    # refined residual, never above the residual sum of squares at the returned
    # coefficients (which exceeds the minimum by ||A (b - b*)||^2), and equal to it
    # up to rounding when the fit is not near-exact
    t = rng.uniform(1.0, 2.0, size=50)
    X = np.column_stack([t**j for j in range(1, 7)])
    y = X @ rng.normal(size=6) + 0.1 * rng.normal(size=50)
    m = GaussMarkovRegressor().fit(X, y)
    at_coef = float(np.sum(m.residuals_**2)) / m.dof_resid_
    assert m.sigma2_ <= at_coef * (1 + 1e-14)
    np.testing.assert_allclose(m.sigma2_, at_coef, rtol=1e-9)
    cov = m.cov_params_
    np.testing.assert_array_equal(cov, cov.T)


def test_rank_deficiency_is_reported_and_min_norm(rng):
    X, y = _data(rng, p=3)
    Xd = np.column_stack([X, X[:, 0] + X[:, 1], np.full(len(y), 7.0)])
    with pytest.warns(RuntimeWarning, match="rank deficient"):
        model = GaussMarkovRegressor().fit(Xd, y)
    assert model.rank_ == 4
    Xc = Xd - Xd.mean(axis=0)
    expected = np.linalg.pinv(Xc, rcond=1e-10) @ (y - y.mean())
    np.testing.assert_allclose(model.coef_, expected, atol=1e-10)
    assert abs(model.coef_[4]) < 1e-12  # a constant column gets nothing
    np.testing.assert_allclose(model.predict(Xd), GaussMarkovRegressor().fit(X, y).predict(X),
                               atol=1e-10)
    assert model.dof_resid_ == len(y) - 4


def test_rank_does_not_change_when_rows_are_repeated(rng):
    """Repeating every row of a design keeps its column space, so its numerical rank
    must not change: the default tolerance grows like sqrt(n), not like NumPy's n eps.
    A third column 1e-11 away from the span of the others (a real direction, far above
    rounding) counts at 262 144 rows; an exactly dependent one still does not."""
    import scipy.linalg

    x1, x2, z = rng.normal(size=(3, 64))
    base = np.column_stack([x1, x2, x1 + 1e-11 * z])
    y0 = base @ np.array([1.0, -2.0, 3.0]) + rng.normal(size=64)
    X, y = np.tile(base, (4096, 1)), np.tile(y0, 4096)
    Xc = X - X.mean(axis=0)
    pivot = np.abs(np.diag(scipy.linalg.qr(Xc / np.linalg.norm(Xc, axis=0), mode="r",
                                           pivoting=True)[0])).min()
    eps = np.finfo(np.float64).eps
    assert 10 * np.sqrt(len(y)) * eps < pivot < len(y) * eps  # the rules disagree here
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = GaussMarkovRegressor().fit(X, y)
        small = GaussMarkovRegressor().fit(base, y0)
    assert model.rank_ == small.rank_ == 4
    dependent = np.column_stack([X[:, :2], X[:, 0] + X[:, 1]])
    with pytest.warns(RuntimeWarning, match="rank deficient"):
        assert GaussMarkovRegressor().fit(dependent, y).rank_ == 3


def test_more_features_than_samples_warns_and_interpolates(rng):
    X, y = rng.normal(size=(5, 8)), rng.normal(size=5)
    with pytest.warns(RuntimeWarning):
        model = GaussMarkovRegressor().fit(X, y)
    np.testing.assert_allclose(model.predict(X), y, atol=1e-10)
    assert model.rank_ == 5 and model.dof_resid_ == 0 and np.isnan(model.sigma2_)


def test_float32_in_float32_out(rng):
    X, y = _data(rng)
    model = GaussMarkovRegressor().fit(X.astype(np.float32), y.astype(np.float32))
    assert model.coef_.dtype == np.float32 and model.bse_.dtype == np.float32
    np.testing.assert_allclose(model.coef_, GaussMarkovRegressor().fit(X, y).coef_, rtol=1e-4)


def test_confidence_interval_coverage(rng):
    # 95% intervals of the slope cover the truth ~95% of the time (binomial bounds)
    X = rng.normal(size=(15, 2))
    hits = 0
    for _ in range(400):
        y = 1.0 + X @ np.array([0.5, -2.0]) + rng.normal(size=15)
        lo, hi = GaussMarkovRegressor().fit(X, y).conf_int(0.05)[1]
        hits += lo < -2.0 < hi
    assert 0.92 < hits / 400 < 0.98


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(6, 40), p=st.integers(1, 5),
       intercept=st.booleans())
def test_projector_identities(seed, n, p, intercept):
    rng = np.random.default_rng(seed)
    X, y, delta = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = GaussMarkovRegressor(fit_intercept=intercept).fit(X, y)
        moved = GaussMarkovRegressor(fit_intercept=intercept).fit(X, y + delta)
    H, M = model.hat_projector(), model.residual_projector()
    r = model.residuals_
    D = np.column_stack([np.ones(n), X]) if intercept else X
    scale = np.linalg.norm(D) * np.linalg.norm(y)
    assert np.max(np.abs(D.T @ r)) <= 1e-10 * scale          # X^T r = 0
    np.testing.assert_allclose(H @ (H @ y), H @ y, atol=1e-10)  # H^2 = H
    np.testing.assert_allclose(M @ y, r, atol=1e-10)           # r = (I - H) y
    np.testing.assert_allclose(H @ y + M @ y, y, atol=1e-12)
    # the estimate moves by pinv(D) delta and the residual by its projection
    theta = np.concatenate([[model.intercept_], model.coef_]) if intercept else model.coef_
    theta2 = np.concatenate([[moved.intercept_], moved.coef_]) if intercept else moved.coef_
    np.testing.assert_allclose(theta2 - theta, np.linalg.pinv(D) @ delta, atol=1e-9)
    np.testing.assert_allclose(moved.residuals_ - r, M @ delta, atol=1e-9)


def test_wls_projector_is_in_the_whitened_space(rng):
    X, y = _data(rng)
    w = rng.uniform(0.5, 2.0, size=y.size)
    model = GaussMarkovRegressor().fit(X, y, sample_weight=w)
    sw = np.sqrt(w)
    np.testing.assert_allclose(model.residual_projector() @ (sw * y), sw * model.residuals_,
                               atol=1e-10)
    np.testing.assert_allclose(np.sum(model.leverage_), model.rank_, rtol=1e-12)


def test_translation_of_y_moves_only_the_intercept(rng):
    X, y = _data(rng)
    a, b = GaussMarkovRegressor().fit(X, y), GaussMarkovRegressor().fit(X, y + 100.0)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-10)
    np.testing.assert_allclose(b.intercept_ - a.intercept_, 100.0, rtol=1e-12)
    np.testing.assert_allclose(b.bse_, a.bse_, rtol=1e-9)


def test_functional_twin_matches_the_estimator(rng):
    X, y = _data(rng)
    res = gauss_markov(X, y)
    model = GaussMarkovRegressor().fit(X, y)
    np.testing.assert_array_equal(res.coef, model.coef_)
    assert res.intercept == model.intercept_


def test_summary_lists_every_coefficient(rng):
    X, y = _data(rng, p=3)
    text = GaussMarkovRegressor().fit(X, y).summary()
    for name in ("intercept", "x0", "x1", "x2", "R^2", "F ="):
        assert name in text


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, match",
    [
        ({"sigma": np.eye(60) - 2 * np.eye(60)}, {}, "positive definite"),
        ({"sigma": np.triu(np.ones((60, 60)))}, {}, "symmetric"),
        ({"sigma": np.ones(59)}, {}, "59 variances"),
        ({"sigma": -np.ones(60)}, {}, "strictly positive"),
        ({}, {"sample_weight": -np.ones(60)}, "negative"),
        ({}, {"sample_weight": np.zeros(60)}, "all zero"),
        ({"sigma": "ar1"}, {"sample_weight": np.ones(60)}, "cannot be combined"),
        ({"sigma": np.eye(60)}, {"sample_weight": np.ones(60)}, "cannot be combined"),
    ],
)
def test_bad_input_is_explained(rng, kwargs, fit_kwargs, match):
    X, y = _data(rng)
    with pytest.raises(ValueError, match=match):
        GaussMarkovRegressor(**kwargs).fit(X, y, **fit_kwargs)


def test_nonfinite_input_is_refused(rng):
    X, y = _data(rng)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussMarkovRegressor().fit(X, y)
    X[0, 0] = 0.0
    y[1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        GaussMarkovRegressor().fit(X, y)


def test_input_is_not_modified(rng):
    X, y = _data(rng)
    w = rng.uniform(0.5, 1.5, size=y.size)
    copies = X.copy(), y.copy(), w.copy()
    GaussMarkovRegressor().fit(X, y, sample_weight=w)
    GaussMarkovRegressor(sigma="ar1").fit(X, y)
    for a, b in zip((X, y, w), copies, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_cupy_fit_matches_numpy(rng):
    cp = pytest.importorskip("cupy")
    X, y = _data(rng)
    a = GaussMarkovRegressor().fit(X, y)
    b = GaussMarkovRegressor().fit(cp.asarray(X), cp.asarray(y))
    assert isinstance(b.coef_, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(b.coef_), a.coef_, rtol=1e-9)
    np.testing.assert_allclose(cp.asnumpy(b.bse_), a.bse_, rtol=1e-8)
    H = b.hat_projector()
    np.testing.assert_allclose(cp.asnumpy(H @ cp.asarray(y)), a.hat_projector() @ y, atol=1e-9)


@pytest.mark.parametrize("kwargs", [{}, {"fit_intercept": False}, {"sigma": "ar1", "rho": 0.5},
                                    {"weights": True}, {"dense": True}, {"collinear": True}])
def test_generic_array_api_path_matches_numpy(rng, kwargs):
    # the SVD path CuPy takes, run under array_api_strict so it cannot use NumPy-only calls
    xps = pytest.importorskip("array_api_strict")
    X, y = _data(rng, n=40, p=3)
    kw = dict(kwargs)
    if kw.pop("weights", False):
        kw["sample_weight"] = rng.uniform(0.5, 2.0, size=40)
    if kw.pop("dense", False):
        kw["sigma"] = 0.5 ** np.abs(np.subtract.outer(np.arange(40), np.arange(40)))
    if kw.pop("collinear", False):
        X = np.column_stack([X, X[:, 0] - X[:, 1]])
    strict = {k: xps.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = gauss_markov(X, y, **kw)
        b = gauss_markov(xps.asarray(X), xps.asarray(y), **strict)
    assert b.rank == a.rank
    for key in ("coef", "bse", "leverage", "residuals"):
        np.testing.assert_allclose(np.asarray(getattr(b, key)), getattr(a, key), atol=1e-12)
    np.testing.assert_allclose(b.intercept, a.intercept, atol=1e-12)
    np.testing.assert_allclose(b.intercept_bse, a.intercept_bse, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"fit_intercept": False}, {"weights": True},
                                    {"sigma": "ar1", "rho": 0.4}, {"cov_type": "HC1"}])
def test_both_factorizations_give_the_same_fit(rng, kwargs):
    """solver="pivoted-qr" (host LAPACK QR) and "svd" (the array API's SVD) agree to
    rounding on a well-conditioned design, and with the normal-equations-free oracle
    ``numpy.linalg.lstsq`` on the whitened design; "auto" is the pivoted QR on NumPy."""
    X, y = _data(rng, n=80, p=3)
    kw = dict(kwargs)
    w = rng.uniform(0.5, 2.0, size=80) if kw.pop("weights", False) else None
    a = gauss_markov(X, y, sample_weight=w, solver="pivoted-qr", **kw)
    b = gauss_markov(X, y, sample_weight=w, solver="svd", **kw)
    auto = gauss_markov(X, y, sample_weight=w, **kw)
    np.testing.assert_array_equal(auto.coef, a.coef)
    assert a.rank == b.rank
    for key in ("coef", "bse", "leverage", "residuals"):
        np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.intercept, a.intercept, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.sigma2, a.sigma2, rtol=1e-10)
    # the oracle: least squares on the whitened design (AR(1): Prais-Winsten rows)
    fit_intercept = kw.get("fit_intercept", True)
    A = np.column_stack([np.ones(80), X]) if fit_intercept else X
    yy = y
    if w is not None:
        A, yy = A * np.sqrt(w)[:, None], y * np.sqrt(w)
    if kw.get("sigma") == "ar1":
        rho = kw["rho"]
        A = np.vstack([np.sqrt(1 - rho**2) * A[:1], A[1:] - rho * A[:-1]])
        yy = np.concatenate([np.sqrt(1 - rho**2) * yy[:1], yy[1:] - rho * yy[:-1]])
    theta = np.linalg.lstsq(A, yy, rcond=None)[0]
    for res in (a, b):
        np.testing.assert_allclose(res.coef, theta[int(fit_intercept):], rtol=1e-10)
    model = GaussMarkovRegressor(solver="svd", **kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(model.coef_, b.coef, rtol=1e-14)


def test_factorization_choices_that_cannot_run_are_clear_errors(rng):
    X, y = _data(rng, n=30, p=2)
    with pytest.raises(ValueError, match="solver='svd' has no long double version"):
        gauss_markov(X.astype(np.longdouble), y.astype(np.longdouble), solver="svd")
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match=r"solver='pivoted-qr' factors with host LAPACK .* "
                                         r"takes NumPy arrays; got arrays of array_api_strict"):
        gauss_markov(xps.asarray(X), xps.asarray(y), solver="pivoted-qr")
    svd = gauss_markov(xps.asarray(X), xps.asarray(y), solver="svd")
    auto = gauss_markov(xps.asarray(X), xps.asarray(y))
    np.testing.assert_array_equal(np.asarray(auto.coef), np.asarray(svd.coef))


@pytest.mark.parametrize("name, bad", [
    ("rho", 1.0), ("rho", -1.0), ("use_t", "yes"), ("solver", "qr"), ("max_iter", 0),
    ("max_iter", True), ("tol", -1e-3), ("cov_kwds", [("maxlags", 1)]), ("rcond", -1.0),
    ("fit_intercept", None), ("refine", 1), ("sigma", "ar2"), ("cov_type", "HC4"),
])
def test_parameters_are_checked_once_with_the_callers_name(rng, name, bad):
    X, y = _data(rng, n=30, p=2)
    with pytest.raises(ValueError, match=f"'{name}' parameter of gauss_markov must be"):
        gauss_markov(X, y, **{name: bad})
    with pytest.raises(ValueError, match=f"'{name}' parameter of GaussMarkovRegressor must"):
        GaussMarkovRegressor(**{name: bad}).fit(X, y)


def test_levels_and_the_ar1_coefficient_are_checked(rng):
    from sketchlearn.linear_model import make_whitener

    X, y = _data(rng, n=30, p=2)
    model = GaussMarkovRegressor().fit(X, y)
    for method, args in (("conf_int", ()), ("predict_interval", (X[:2],)), ("summary", ())):
        for alpha in (0.0, 1.0, "0.05"):
            with pytest.raises(ValueError, match=f"'alpha' parameter of GaussMarkovRegressor"
                                                 f".{method} must be a float in the range"):
                getattr(model, method)(*args, alpha=alpha)
    for rho in (1.0, None):
        with pytest.raises(ValueError, match="'rho' parameter of make_whitener must be"):
            make_whitener("ar1", 5, rho=rho)
    W = make_whitener("ar1", 3, rho=0.5)  # Prais-Winsten: [sqrt(1 - rho^2) e_1, e_t - rho e_t-1]
    np.testing.assert_allclose(W(np.ones(3)), [np.sqrt(0.75), 0.5, 0.5])
