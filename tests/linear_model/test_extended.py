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
    with pytest.raises(ValueError, match="'norm' parameter of filter_factors must be"):
        filter_factors(np.ones(2), "max", 0.1)
    with pytest.raises(ValueError, match="'tau' parameter of filter_factors must be"):
        filter_factors(np.ones(2), "nuclear", -0.1)
    with pytest.raises(ValueError, match="'tau' parameter of shrinkage_factors must be"):
        shrinkage_factors(np.ones(2), "nuclear", np.nan)
    with pytest.raises(ValueError, match="'n_features' parameter of shrinkage_factors"):
        shrinkage_factors(np.ones(2), "spectral", 0.5, n_features=2.0)
    with pytest.raises(ValueError, match="'tau' parameter of ExtendedGaussMarkovRegressor"):
        ExtendedGaussMarkovRegressor(tau=-1.0).fit(np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="'norm' parameter of ExtendedGaussMarkovRegressor"):
        ExtendedGaussMarkovRegressor(norm="max").fit(np.eye(3), np.ones(3))
    X, y = np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="norms"):
        ExtendedGaussMarkovCV(norms=("l1",)).fit(X, y)
    with pytest.raises(ValueError, match="taus"):
        ExtendedGaussMarkovCV(taus=[-1.0]).fit(X, y)


# --- rank-deficient designs: the bias on the row space or on the full p x p operator ---

def _linear_map(X, **params):
    """The fitted map ``A`` with ``coef_ = A y``, column by column from unit responses."""
    n = X.shape[0]
    return np.column_stack([ExtendedGaussMarkovRegressor(**params).fit(X, np.eye(n)[j]).coef_
                            for j in range(n)])


def _rank_deficient(rng, kind):
    """(X, fit_intercept, p - r): a tall design with a dependent column (no intercept), or
    a wide one (n < p) whose centering costs one more rank (with intercept)."""
    if kind == "tall":
        X = rng.normal(size=(9, 5)) * np.array([3.0, 1.0, 0.5, 0.2, 1.0])
        X[:, 4] = X[:, 0] - 2.0 * X[:, 2]
        return X, False, 1
    X = rng.normal(size=(4, 7)) * np.geomspace(2.0, 0.3, 7)
    return X, True, 7 - 3


def _null_count(X, fit_intercept):
    Xc = X - X.mean(axis=0) if fit_intercept else X
    return X.shape[1] - np.linalg.matrix_rank(Xc), Xc


@pytest.mark.parametrize("kind", ["tall", "wide"])
@pytest.mark.parametrize("norm, frac", [("nuclear", 0.3), ("nuclear", 0.8),
                                        ("frobenius", 0.4), ("frobenius", 0.9)])
def test_full_bias_operator_has_norm_tau(rng, kind, norm, frac):
    # the p x p operator A X - I of the fitted map, from unit responses and numpy's SVD
    X, fit_intercept, _ = _rank_deficient(rng, kind)
    k, Xc = _null_count(X, fit_intercept)
    p = X.shape[1]
    assert k > 0
    lo, hi = (k, p) if norm == "nuclear" else (np.sqrt(k), np.sqrt(p))
    tau = lo + frac * (hi - lo)
    A = _linear_map(X, norm=norm, tau=tau, fit_intercept=fit_intercept, bias_space="full")
    B = A @ X - np.eye(p)
    np.testing.assert_allclose(_schatten(B, norm), tau, rtol=1e-9)
    # the null directions are -I under this (and every) linear map
    null = np.eye(p) - np.linalg.pinv(Xc) @ Xc
    np.testing.assert_allclose(B @ null, -null, atol=1e-10)
    # 'row' with the same tau bounds only B restricted to the row space: another map,
    # whose row-space bias has norm tau (or the zero estimator's, if that is smaller)
    row = np.eye(p) - null
    A_row = _linear_map(X, norm=norm, tau=tau, fit_intercept=fit_intercept, bias_space="row")
    np.testing.assert_allclose(_schatten((A_row @ X - np.eye(p)) @ row, norm),
                               min(tau, _schatten(row, norm)), rtol=1e-9)
    assert np.max(np.abs(A_row - A)) > 1e-3
    # and 'row' given the row-space part of B's norm is the same map: one family
    A_same = _linear_map(X, norm=norm, tau=_schatten(B @ row, norm),
                         fit_intercept=fit_intercept, bias_space="row")
    np.testing.assert_allclose(A_same, A, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kind", ["tall", "wide"])
@pytest.mark.parametrize("norm", ["nuclear", "frobenius", "spectral"])
def test_row_bias_operator_has_norm_tau_on_the_row_space(rng, kind, norm):
    X, fit_intercept, _ = _rank_deficient(rng, kind)
    k, Xc = _null_count(X, fit_intercept)
    p = X.shape[1]
    row = np.linalg.pinv(Xc) @ Xc
    tau = 0.45 * _schatten(row, norm)  # the row-space part of the zero estimator's bias
    A = _linear_map(X, norm=norm, tau=tau, fit_intercept=fit_intercept)
    B = A @ X - np.eye(p)
    np.testing.assert_allclose(_schatten(B @ row, norm), tau, rtol=1e-9)
    # on the whole operator the p - r null directions add their unit bias
    whole = {"nuclear": tau + k, "frobenius": np.sqrt(tau**2 + k), "spectral": 1.0}[norm]
    np.testing.assert_allclose(_schatten(B, norm), whole, rtol=1e-9)


def _slsqp_min_variance(X, norm, tau, project, starts=4):
    """Smallest ||A||_F^2 over all A with ||(A X - I) project||_S <= tau: SLSQP from
    several starts, each answer made exactly feasible before it counts.

    SLSQP may stop a hair outside a non-smooth constraint; mixing its answer with
    ``pinv(X)`` (whose bias, the null-space projector, is strictly feasible) moves the
    bias norm, a convex function of the mix, below ``tau``: the smallest such mix is
    found by bisection. The result is a feasible matrix, so the closed form must not
    beat it.
    """
    p, n = X.shape[1], X.shape[0]
    pinv = np.linalg.pinv(X)

    def bias(A):
        return _schatten((A @ X - np.eye(p)) @ project, norm)

    best = None
    for start in range(starts):
        x0 = np.random.default_rng(start).normal(size=p * n) * 0.3 + pinv.ravel()
        res = scipy.optimize.minimize(
            lambda a: np.sum(a**2), x0, method="SLSQP",
            constraints=[{"type": "ineq", "fun": lambda a: tau - bias(a.reshape(p, n))}],
            options={"ftol": 1e-14, "maxiter": 300})  # spectral: 2000 end no closer
        A = res.x.reshape(p, n)
        lo, hi = 0.0, 1.0
        if bias(A) > tau:
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if bias((1 - mid) * A + mid * pinv) <= tau else (mid, hi)
            A = (1 - hi) * A + hi * pinv
        assert bias(A) <= tau
        if best is None or np.sum(A**2) < np.sum(best**2):
            best = A
    return best


@pytest.mark.parametrize("space, norm, frac", [
    ("full", "frobenius", 0.5), ("full", "nuclear", 0.5), ("row", "frobenius", 0.5),
    ("row", "nuclear", 0.5), ("row", "spectral", 0.4)])  # full spectral: infeasible test
def test_rank_deficient_closed_form_is_the_constrained_optimum(rng, space, norm, frac):
    # a 5 x 3 design of rank 2: min ||A||_F^2 over all 3 x 5 matrices A
    X = rng.normal(size=(5, 3)) * np.array([2.0, 0.5, 1.0])
    X[:, 2] = X[:, 0] + X[:, 1]
    null = np.eye(3) - np.linalg.pinv(X) @ X
    if space == "full":
        project = np.eye(3)
        lo, hi = (1.0, 3.0) if norm == "nuclear" else (1.0, np.sqrt(3.0))
        tau = lo + frac * (hi - lo)
    else:
        project = np.eye(3) - null
        tau = frac * _schatten(project, norm)
    A_closed = _linear_map(X, norm=norm, tau=tau, fit_intercept=False, bias_space=space)
    best = _slsqp_min_variance(X, norm, tau, project)
    # the closed form is feasible with the bound active, and the solver never beats it
    np.testing.assert_allclose(_schatten((A_closed @ X - np.eye(3)) @ project, norm), tau,
                               rtol=1e-9)
    assert np.sum(A_closed**2) <= np.sum(best**2) * (1 + 1e-9)
    np.testing.assert_allclose(np.sum(A_closed**2), np.sum(best**2), rtol=1e-3)
    if norm == "frobenius":  # smooth: the solver finds the same matrix
        np.testing.assert_allclose(A_closed, best, atol=1e-4)


def test_full_frobenius_is_ridge_tuned_on_the_p_by_p_operator(rng):
    # independent 1-D search: ridge A(alpha) = (X^T X + alpha I)^-1 X^T, with the
    # Frobenius norm of its whole p x p bias operator (no rank or SVD bookkeeping)
    X, _, _ = _rank_deficient(rng, "tall")
    y = rng.normal(size=X.shape[0])
    p = X.shape[1]

    def ridge(alpha):
        return np.linalg.solve(X.T @ X + alpha * np.eye(p), X.T)

    def bias_norm(alpha):
        return np.linalg.norm(ridge(alpha) @ X - np.eye(p))

    # sqrt(p - r) = 1 < tau < sqrt(p) = 2.236; the second is above sqrt(r) = 2, so its
    # row-space budget sqrt(tau^2 - 1) is what keeps it below the zero estimator's
    for tau in (1.6, 2.1):
        log_alpha = scipy.optimize.brentq(lambda t, tau=tau: bias_norm(np.exp(t)) - tau,
                                          -30.0, 30.0, xtol=1e-13, rtol=1e-15)
        alpha = np.exp(log_alpha)
        model = ExtendedGaussMarkovRegressor(norm="frobenius", tau=tau, fit_intercept=False,
                                             bias_space="full").fit(X, y)
        np.testing.assert_allclose(model.coef_, ridge(alpha) @ y, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(model.alpha_, alpha, rtol=1e-8)
        # no feasible ridge on a fine grid has less variance
        A = _linear_map(X, norm="frobenius", tau=tau, fit_intercept=False, bias_space="full")
        for a in np.geomspace(1e-4, 1e4, 400):
            if bias_norm(a) <= tau:
                assert np.sum(ridge(a) ** 2) >= np.sum(A**2) * (1 - 1e-10)


def test_full_nuclear_multiplier_from_a_brute_force_operator_norm(rng):
    # 1-D search over the nuclear multiplier c of A(c) = V min(c s, 1/s) U^T, with the
    # nuclear norm of the p x p operator A(c) X - I taken from numpy's SVD
    X, _, _ = _rank_deficient(rng, "wide")
    Xc = X - X.mean(axis=0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    r = int(np.sum(s > 1e-10 * s[0]))
    U, s, Vt = U[:, :r], s[:r], Vt[:r]
    p = X.shape[1]

    def A_of(c):
        return Vt.T @ np.diag(np.minimum(c * s, 1.0 / s)) @ U.T

    def nuclear_bias(c):
        return np.sum(np.linalg.svd(A_of(c) @ Xc - np.eye(p), compute_uv=False))

    tau = (p - r) + 1.2
    log_c = scipy.optimize.brentq(lambda t: nuclear_bias(np.exp(t)) - tau,
                                  np.log(1e-6 / s.max() ** 2), np.log(1.0 / s.min() ** 2),
                                  xtol=1e-14, rtol=1e-15)
    y = rng.normal(size=X.shape[0])
    model = ExtendedGaussMarkovRegressor(norm="nuclear", tau=tau, bias_space="full").fit(X, y)
    np.testing.assert_allclose(model.coef_, A_of(np.exp(log_c)) @ (y - y.mean()), rtol=1e-8)
    # every c with a feasible bias costs at least the fitted variance
    best = np.sum(A_of(np.exp(log_c)) ** 2)
    for c in np.geomspace(1e-6 / s.max() ** 2, 1.0 / s.min() ** 2, 300):
        if nuclear_bias(c) <= tau:
            assert np.sum(A_of(c) ** 2) >= best * (1 - 1e-10)


@pytest.mark.parametrize("kind", ["tall", "wide"])
def test_full_bounds_below_the_null_space_are_infeasible(rng, kind):
    X, fit_intercept, _ = _rank_deficient(rng, kind)
    k, Xc = _null_count(X, fit_intercept)
    y = rng.normal(size=X.shape[0])
    p = X.shape[1]

    def fit(norm, tau, space="full"):
        return ExtendedGaussMarkovRegressor(norm=norm, tau=tau, fit_intercept=fit_intercept,
                                            bias_space=space).fit(X, y)

    # no linear map gets the spectral norm of A X - I below 1 (brute force over maps)
    maps = [np.linalg.pinv(Xc), _linear_map(X, norm="spectral", tau=0.3,
                                            fit_intercept=fit_intercept)]
    maps += [rng.normal(size=(p, X.shape[0])) * scale for scale in (0.01, 0.3, 3.0)]
    for A in maps:
        assert _schatten(A @ Xc - np.eye(p), "spectral") >= 1.0 - 1e-12
    for norm, tau in [("spectral", 0.5), ("spectral", 0.0), ("nuclear", k - 0.01),
                      ("frobenius", np.sqrt(k) * 0.99), ("nuclear", 0.0)]:
        with pytest.raises(ValueError, match=rf"infeasible for the {norm} norm.*rank"):
            fit(norm, tau)
        fit(norm, tau, "row")  # the row-space bound accepts it
    # spectral tau >= 1 with r < p: only the zero estimator is optimal
    for tau in (1.0, 2.5):
        np.testing.assert_array_equal(fit("spectral", tau).coef_, 0.0)
    # at the lowest feasible bound the row-space budget is 0: minimum-norm least squares
    lstsq = np.linalg.lstsq(Xc, y - (y.mean() if fit_intercept else 0.0), rcond=None)[0]
    for norm, tau in [("nuclear", float(k)), ("frobenius", np.sqrt(k))]:
        np.testing.assert_allclose(fit(norm, tau).coef_, lstsq, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(fit(norm, 0.0, "row").coef_, lstsq, rtol=1e-8, atol=1e-12)
    # at the top (sqrt(p), p) the zero estimator
    for norm, tau in [("nuclear", float(p)), ("frobenius", np.sqrt(p))]:
        np.testing.assert_array_equal(fit(norm, tau).coef_, 0.0)


def test_full_is_continuous_as_a_column_vanishes_and_row_is_not(rng):
    # a column scaled by 1e-9 (full rank, a tiny singular value) against the same column
    # at 0 (rank p - 1): bounding the p x p operator gives nearly the same fit, the
    # row-space bound forgets the vanished direction's unit of budget
    X = rng.normal(size=(40, 4)) * np.array([3.0, 1.0, 0.3, 1.0])
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
    tiny, zero = X.copy(), X.copy()
    tiny[:, 3] *= 1e-9
    zero[:, 3] = 0.0
    for norm, tau in [("nuclear", 1.6), ("frobenius", 1.2)]:
        full_tiny = ExtendedGaussMarkovRegressor(norm=norm, tau=tau, bias_space="full")
        full_zero = ExtendedGaussMarkovRegressor(norm=norm, tau=tau, bias_space="full")
        row_zero = ExtendedGaussMarkovRegressor(norm=norm, tau=tau, bias_space="row")
        full_tiny, full_zero, row_zero = (full_tiny.fit(tiny, y), full_zero.fit(zero, y),
                                          row_zero.fit(zero, y))
        assert full_tiny.rank_ == 4 and full_zero.rank_ == 3
        np.testing.assert_allclose(full_tiny.coef_[:3], full_zero.coef_[:3], rtol=1e-6)
        assert np.max(np.abs(row_zero.coef_ - full_zero.coef_)) > 0.05


@settings(max_examples=40, deadline=None)
@given(s=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=10),
       null=st.integers(0, 6), frac=st.floats(0.0, 0.999),
       norm=st.sampled_from(["frobenius", "nuclear"]))
def test_full_budget_is_the_row_budget_plus_the_null_space(s, null, frac, norm):
    # singular values of the p x p operator: |e_i| on the row space, and `null` ones
    s = np.sort(np.array(s))[::-1]
    p = s.size + null
    lo, hi = (null, p) if norm == "nuclear" else (np.sqrt(null), np.sqrt(p))
    tau = lo + frac * (hi - lo)
    keep = shrinkage_factors(s, norm, tau, n_features=p)
    spectrum = np.concatenate([np.abs(1.0 - keep), np.ones(null)])
    got = np.sum(spectrum) if norm == "nuclear" else np.linalg.norm(spectrum)
    np.testing.assert_allclose(got, tau, rtol=1e-8, atol=1e-12)
    assert np.all(keep >= -1e-12) and np.all(keep <= 1 + 1e-12)


def test_full_rank_designs_give_the_same_fit_in_both_spaces(rng):
    X, y = _decaying(rng)
    for norm, tau in [("nuclear", 2.0), ("frobenius", 0.7), ("spectral", 0.3)]:
        row = ExtendedGaussMarkovRegressor(norm=norm, tau=tau).fit(X, y)
        full = ExtendedGaussMarkovRegressor(norm=norm, tau=tau, bias_space="full").fit(X, y)
        assert row.rank_ == full.rank_ == X.shape[1]
        np.testing.assert_array_equal(row.coef_, full.coef_)


def test_cv_on_the_full_operator(rng):
    X = rng.normal(size=(25, 40)) * np.geomspace(3.0, 0.05, 40)
    y = X[:, :5] @ np.ones(5) + 0.5 * rng.normal(size=25)
    p, r = 40, 24
    cv = ExtendedGaussMarkovCV(bias_space="full").fit(X, y)
    assert cv.rank_ == r
    res = cv.cv_results_
    for norm, lowest in [("nuclear", p - r), ("frobenius", np.sqrt(p - r))]:
        taus = res["tau"][res["norm"] == norm]
        assert taus.size == 30 and taus[0] == lowest and np.all(taus >= lowest)
    np.testing.assert_array_equal(res["tau"][res["norm"] == "spectral"], [1.0])
    # every grid point scores what the refit estimator gives, and the pick is refit
    n = len(y)
    for i in range(0, res["tau"].size, 7):
        fit = ExtendedGaussMarkovRegressor(norm=res["norm"][i], tau=res["tau"][i],
                                           bias_space="full").fit(X, y)
        resid = y - fit.predict(X)
        if fit.dof_ >= n - 1e-9:  # interpolation leaves no residual degrees of freedom
            assert res["score"][i] == np.inf
            continue
        np.testing.assert_allclose(res["score"][i], n * np.sum(resid**2) / (n - fit.dof_) ** 2,
                                   rtol=1e-8)
    refit = ExtendedGaussMarkovRegressor(norm=cv.norm_, tau=cv.tau_,
                                         bias_space="full").fit(X, y)
    np.testing.assert_allclose(cv.coef_, refit.coef_, rtol=1e-10)
    # the nuclear and Frobenius families are the same in both spaces: same pick and scores
    two = ("nuclear", "frobenius")
    row = ExtendedGaussMarkovCV(norms=two).fit(X, y)
    full = ExtendedGaussMarkovCV(norms=two, bias_space="full").fit(X, y)
    np.testing.assert_allclose(full.cv_results_["score"], row.cv_results_["score"], rtol=1e-7)
    np.testing.assert_allclose(full.coef_, row.coef_, rtol=1e-7, atol=1e-12)
    # a given bound below p - r is refused
    with pytest.raises(ValueError, match="taus holds"):
        ExtendedGaussMarkovCV(norms=("nuclear",), taus=[3.0, 20.0], bias_space="full").fit(X, y)


def test_bad_n_features():
    with pytest.raises(ValueError, match="n_features"):
        filter_factors(np.ones(3), "nuclear", 1.0, n_features=2)
    with pytest.raises(ValueError, match="n_features"):
        filter_factors(np.ones(3), "nuclear", 1.0, n_features=True)
    with pytest.raises(ValueError, match="bias_space"):
        ExtendedGaussMarkovRegressor(bias_space="null").fit(np.eye(3), np.ones(3))
