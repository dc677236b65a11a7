"""Extended Gauss-Markov filters against a generic constrained optimizer, ridge and OLS."""

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge, RidgeCV

from sketchlearn.linear_model import (
    ExtendedGaussMarkovCV,
    ExtendedGaussMarkovRegressor,
    GaussMarkovRegressor,
    filter_factors,
    shrinkage_factors,
)


def _schatten(M, norm):
    s = np.linalg.svd(M, compute_uv=False)
    return {"frobenius": np.sqrt(np.sum(s**2)), "nuclear": np.sum(s), "spectral": s[0]}[norm]


def _decaying(rng, n=120, p=8, noise=1.0):
    X = rng.normal(size=(n, p)) * np.geomspace(5.0, 0.02, p)
    y = 0.3 + X @ rng.normal(size=p) + noise * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("norm, tau", [("frobenius", 0.8), ("nuclear", 0.7),
                                       ("spectral", 0.3)])
def test_closed_form_is_the_constrained_optimum(rng, norm, tau):
    # min ||A||_F^2  s.t.  ||A X - I||_S <= tau over all 2 x 5 matrices A, solved by SLSQP
    X = rng.normal(size=(5, 2)) * np.array([2.0, 0.4])
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    A_closed = Vt.T @ np.diag(filter_factors(s, norm, tau)) @ U.T
    best = None
    for start in range(4):
        x0 = np.random.default_rng(start).normal(size=10) * 0.5 + np.linalg.pinv(X).ravel()
        res = scipy.optimize.minimize(
            lambda a: np.sum(a**2), x0, method="SLSQP",
            constraints=[{"type": "ineq",
                          "fun": lambda a: tau - _schatten(a.reshape(2, 5) @ X - np.eye(2),
                                                           norm)}],
            options={"ftol": 1e-14, "maxiter": 1000})
        feasible = _schatten(res.x.reshape(2, 5) @ X - np.eye(2), norm) <= tau + 1e-8
        if feasible and (best is None or res.fun < best.fun):
            best = res
    assert best is not None
    # the solver never beats the closed form, and gets close to it (the nuclear and
    # spectral constraints are not smooth at the optimum, so SLSQP stops a little short)
    assert np.sum(A_closed**2) <= best.fun * (1 + 1e-7)
    np.testing.assert_allclose(np.sum(A_closed**2), best.fun, rtol=1e-3)
    if norm == "frobenius":
        np.testing.assert_allclose(A_closed, best.x.reshape(2, 5), atol=1e-4)
    # the closed form is feasible with the bound active
    np.testing.assert_allclose(_schatten(A_closed @ X - np.eye(2), norm), tau, rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(s=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=12),
       frac=st.floats(0.0, 0.999), norm=st.sampled_from(["frobenius", "nuclear", "spectral"]))
def test_bias_norm_equals_tau_and_variance_is_monotone(s, frac, norm):
    s = np.sort(np.array(s))[::-1]
    top = {"frobenius": np.sqrt(s.size), "nuclear": s.size, "spectral": 1.0}[norm]
    tau = frac * top
    keep = shrinkage_factors(s, norm, tau)
    bias = 1.0 - keep
    got = {"frobenius": np.linalg.norm(bias), "nuclear": np.sum(np.abs(bias)),
           "spectral": np.max(np.abs(bias))}[norm]
    np.testing.assert_allclose(got, tau, rtol=1e-8, atol=1e-12)
    assert np.all(keep >= -1e-12) and np.all(keep <= 1 + 1e-12)
    if tau > 0:  # more bias allowed never costs variance
        more = filter_factors(s, norm, min(tau * 1.1, top))
        assert np.sum(more**2) <= np.sum(filter_factors(s, norm, tau) ** 2) * (1 + 1e-10)


def test_tau_zero_is_ols_and_large_tau_is_zero(rng):
    X, y = _decaying(rng)
    ols = GaussMarkovRegressor().fit(X, y)
    for norm in ("frobenius", "nuclear", "spectral"):
        model = ExtendedGaussMarkovRegressor(norm=norm, tau=0.0).fit(X, y)
        np.testing.assert_allclose(model.coef_, ols.coef_, rtol=1e-8)
        np.testing.assert_allclose(model.intercept_, ols.intercept_, rtol=1e-8)
        zero = ExtendedGaussMarkovRegressor(norm=norm, tau=100.0).fit(X, y)
        np.testing.assert_array_equal(zero.coef_, 0.0)
        np.testing.assert_allclose(zero.intercept_, y.mean())


def test_frobenius_is_ridge(rng):
    X, y = _decaying(rng)
    model = ExtendedGaussMarkovRegressor(norm="frobenius", tau=0.9).fit(X, y)
    ridge = Ridge(alpha=model.alpha_, solver="svd").fit(X, y)
    np.testing.assert_allclose(model.coef_, ridge.coef_, rtol=1e-9)
    np.testing.assert_allclose(model.intercept_, ridge.intercept_, rtol=1e-9)


def test_spectral_is_shrunk_ols(rng):
    X, y = _decaying(rng)
    ols = GaussMarkovRegressor().fit(X, y)
    model = ExtendedGaussMarkovRegressor(norm="spectral", tau=0.25).fit(X, y)
    np.testing.assert_allclose(model.coef_, 0.75 * ols.coef_, rtol=1e-8)


def test_loo_equals_brute_force_and_ridgecv(rng):
    X, y = _decaying(rng, n=40, p=5)
    cv = ExtendedGaussMarkovCV(norms=("frobenius",), taus=[0.5, 1.0, 1.5], cv="loo").fit(X, y)
    for tau, score in zip(cv.cv_results_["tau"], cv.cv_results_["score"], strict=True):
        errors = []
        alpha = ExtendedGaussMarkovRegressor(norm="frobenius", tau=tau).fit(X, y).alpha_
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            fit = Ridge(alpha=alpha, solver="svd").fit(X[keep], y[keep])
            errors.append((y[i] - fit.predict(X[i:i + 1])[0]) ** 2)
        np.testing.assert_allclose(score, np.mean(errors), rtol=1e-8)
        ridge_cv = RidgeCV(alphas=[alpha], store_cv_results=True).fit(X, y)
        np.testing.assert_allclose(score, ridge_cv.cv_results_.mean(), rtol=1e-8)


def test_gcv_picks_a_good_point_and_refits_it(rng):
    X, y = _decaying(rng, n=200, p=30, noise=2.0)
    cv = ExtendedGaussMarkovCV().fit(X, y)
    best = int(np.argmin(cv.cv_results_["score"]))
    assert cv.norm_ == cv.cv_results_["norm"][best] and cv.tau_ == cv.cv_results_["tau"][best]
    refit = ExtendedGaussMarkovRegressor(norm=cv.norm_, tau=cv.tau_).fit(X, y)
    np.testing.assert_allclose(cv.coef_, refit.coef_, rtol=1e-10)
    # GCV of the chosen point is what a direct computation gives
    resid = y - refit.predict(X)
    n = len(y)
    np.testing.assert_allclose(cv.best_score_, n * np.sum(resid**2) / (n - refit.dof_) ** 2,
                               rtol=1e-8)
    # a biased estimator beats OLS on this noisy, badly conditioned problem
    ols_row = cv.cv_results_["score"][cv.cv_results_["tau"] == 0.0]
    assert cv.best_score_ < ols_row.min()


def test_permuting_samples_changes_nothing(rng):
    X, y = _decaying(rng)
    perm = rng.permutation(len(y))
    a = ExtendedGaussMarkovRegressor(norm="nuclear", tau=2.0).fit(X, y)
    b = ExtendedGaussMarkovRegressor(norm="nuclear", tau=2.0).fit(X[perm], y[perm])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        filter_factors(np.ones(2), "max", 0.1)
    with pytest.raises(ValueError, match="tau"):
        filter_factors(np.ones(2), "nuclear", -0.1)
    X, y = np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="norms"):
        ExtendedGaussMarkovCV(norms=("l1",)).fit(X, y)
    with pytest.raises(ValueError, match="taus"):
        ExtendedGaussMarkovCV(taus=[-1.0]).fit(X, y)
