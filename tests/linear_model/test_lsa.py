"""Linear stochastic approximation: oracles (scikit-learn's SGD, LSTD, the exact
stationary mean of the Markov iteration), backends, streams, bad input."""

import doctest
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from sketchlearn.linear_model import (
    LinearStochasticApproximation,
    LSARegressor,
    TD0Evaluator,
    _lsa,
)
from sketchlearn.linear_model._lsa import (
    Samples,
    StepSizeWarning,
    bootstrap_index,
    linear_stochastic_approximation,
    lsa_dense_op,
    lsa_rank_one_op,
    stability_bound,
)

from ..conftest import as_xp, to_np

# ----------------------------------------------------------------------------------
# Helpers: regression data, random-walk Markov chains and their exact quantities
# ----------------------------------------------------------------------------------


def regression(rng, n=600, p=4, noise=0.3, dtype=np.float64):
    X = rng.normal(size=(n, p)) * np.linspace(0.5, 1.5, p)
    y = X @ np.linspace(-1, 2, p) + 0.7 + noise * rng.normal(size=n)
    return X.astype(dtype), y.astype(dtype)


def sgd(step, *, fit_intercept, average=True, max_iter=1):
    return SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
                        eta0=step, average=average, fit_intercept=fit_intercept,
                        shuffle=False, max_iter=max_iter, tol=None)


def random_walk(n_states):
    """Transition matrix of the lazy-free random walk reflected at both ends."""
    P = np.zeros((n_states, n_states))
    for i in range(n_states):
        P[i, max(i - 1, 0)] += 0.5
        P[i, min(i + 1, n_states - 1)] += 0.5
    return P


def rewards(n_states):
    """Reward of transition i -> j: +1 into the right end, -1 into the left end."""
    j = np.arange(n_states)
    R = np.zeros((n_states, n_states))
    R[:, j == n_states - 1] = 1.0
    R[:, j == 0] = -1.0
    return R


def stationary(P):
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def lstd_fixed_point(P, R, Phi, gamma):
    """theta* solving the mean TD equations Phi^T D (Phi - gamma P Phi) theta = Phi^T D r."""
    D = np.diag(stationary(P))
    A = Phi.T @ D @ (Phi - gamma * P @ Phi)
    b = Phi.T @ D @ (P * R).sum(axis=1)
    return np.linalg.solve(A, b)


def stationary_mean_iterate(P, R, Phi, gamma, step):
    """Exact E[theta_inf] of constant-step TD(0) on the chain (independent oracle).

    With m_j = E[theta_n 1{s_n = j}], one TD(0) step on transition i -> j gives
    m_j' = sum_i P_ij ((I - step A_ij) m_i + step pi_i b_ij); the stationary m solves a
    linear system of size n_states * p and E[theta] = sum_j m_j, which the average of
    the iterates converges to.
    """
    S, p = Phi.shape
    pi = stationary(P)
    M = np.zeros((S * p, S * p))
    c = np.zeros(S * p)
    for i in range(S):
        for j in range(S):
            if P[i, j] == 0:
                continue
            A = np.outer(Phi[i], Phi[i] - gamma * Phi[j])
            M[j * p:(j + 1) * p, i * p:(i + 1) * p] += P[i, j] * (np.eye(p) - step * A)
            c[j * p:(j + 1) * p] += P[i, j] * step * pi[i] * R[i, j] * Phi[i]
    m = np.linalg.solve(np.eye(S * p) - M, c)
    return m.reshape(S, p).sum(axis=0)


def trajectory(P, R, Phi, n_steps, rng, start=None):
    """Features X (n_steps + 1 rows) and rewards y of one simulated trajectory."""
    S = P.shape[0]
    cum = np.cumsum(P, axis=1)
    u = rng.random(n_steps)
    s = np.empty(n_steps + 1, dtype=np.int64)
    s[0] = S // 2 if start is None else start
    for t in range(n_steps):
        s[t + 1] = min(int(np.searchsorted(cum[s[t]], u[t], side="right")), S - 1)
    y = np.append(R[s[:-1], s[1:]], 0.0)
    return Phi[s], y, s


# ----------------------------------------------------------------------------------
# Oracle 1: scikit-learn's SGDRegressor (constant step, averaged)
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("burn_in", [0, 37])
@pytest.mark.parametrize("n_epochs", [1, 3])
def test_lsa_regressor_equals_sklearn_sgd(fit_intercept, burn_in, n_epochs, rng):
    X, y = regression(rng)
    step = 0.02
    ref = sgd(step, fit_intercept=fit_intercept, average=burn_in + 1, max_iter=n_epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: expected, tol=None
        ref.fit(X, y)
    ours = LSARegressor(step=step, fit_intercept=fit_intercept, burn_in=burn_in,
                        n_epochs=n_epochs).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-12)
    assert abs(ours.intercept_ - float(np.ravel(ref.intercept_)[0])) < 1e-12
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=0, atol=1e-11)
    assert ours.n_updates_ == ref.t_ - 1


def test_last_iterate_equals_sklearn_sgd_without_averaging(rng):
    X, y = regression(rng)
    ref = sgd(0.03, fit_intercept=True, average=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    ours = LSARegressor(step=0.03, average=False).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-12)
    assert abs(ours.intercept_ - ref.intercept_[0]) < 1e-12


def test_partial_fit_equals_sklearn_sgd_partial_fit(rng):
    X, y = regression(rng)
    ref = sgd(0.02, fit_intercept=True)
    ours = LSARegressor(step=0.02)
    for chunk in np.array_split(np.arange(X.shape[0]), 5):
        ref.partial_fit(X[chunk], y[chunk])
        ours.partial_fit(X[chunk], y[chunk])
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-12)
        assert abs(ours.intercept_ - ref.intercept_[0]) < 1e-12


def test_float32_follows_input_and_is_close_to_sklearn(rng):
    X, y = regression(rng, dtype=np.float32)
    ref = sgd(0.02, fit_intercept=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    ours = LSARegressor(step=0.02).fit(X, y)
    assert ours.coef_.dtype == np.float32 and ours.predict(X).dtype == np.float32
    # scikit-learn computes in float32; we keep the state in float64.
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=2e-5)
    ours64 = LSARegressor(step=0.02).fit(X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(ours.coef_, ours64.coef_, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------------
# Backends: Numba == reference (and CuPy == Numba on a GPU)
# ----------------------------------------------------------------------------------


def _chain_inputs(rng, n=150, p=5, K=3, T=400, dtype=np.float64):
    U = rng.normal(size=(n, p)).astype(dtype)
    V = (U + 0.3 * rng.normal(size=(n, p))).astype(dtype)
    c = rng.normal(size=n).astype(dtype)
    A = (np.eye(p) + 0.3 * rng.normal(size=(n, p, p))).astype(dtype)
    b = rng.normal(size=(n, p)).astype(dtype)
    index = rng.integers(0, n, size=(K, T))
    theta = rng.normal(size=(K, p))
    avg = rng.normal(size=(K, p))
    steps = np.array([0.01, 0.02, 0.05])[:K]
    return U, V, c, A, b, index, theta, avg, steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_rank_one_kernel_equals_reference(dtype, rng):
    U, V, c, _, _, index, theta, avg, steps = _chain_inputs(rng, dtype=dtype)
    args = (U, V, c, index, theta, avg, 17, steps, 40)
    fast = lsa_rank_one_op.implementation("numba")(np, *args)
    ref = lsa_rank_one_op.implementation("reference")(np, *args)
    rtol = 1e-12
    np.testing.assert_allclose(fast[0], ref[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fast[1], ref[1], rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(fast[2], ref[2])
    assert np.all(fast[2] == -1)
    assert fast[0].dtype == np.float64  # the state is float64 whatever the data
    # Inputs are not modified.
    assert not np.shares_memory(fast[0], theta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_dense_kernel_equals_reference(dtype, rng):
    _, _, _, A, b, index, theta, avg, steps = _chain_inputs(rng, dtype=dtype)
    theta0 = theta.copy()
    args = (A, b, index, theta, avg, 0, steps, 0)
    fast = lsa_dense_op.implementation("numba")(np, *args)
    ref = lsa_dense_op.implementation("reference")(np, *args)
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(theta, theta0)


def test_kernels_report_divergence_position(rng):
    U = np.ones((10, 2))
    c = np.ones(10)
    index = np.tile(np.arange(10), 200)[None, :]
    start = np.zeros((1, 2))
    for backend in ("numba", "reference"):
        with np.errstate(over="ignore", invalid="ignore"):
            theta, _, status = lsa_rank_one_op.implementation(backend)(
                np, U, U, c, index, start, start, 0, np.array([5.0]), 0)
        # |1 - 5 * 2| = 9 per step: overflow after ~320 steps, reported, not hidden.
        assert 0 < status[0] < index.shape[1]
    _, _, status = lsa_rank_one_op.implementation("numba")(
        np, U, U, c, index, start, start, 0, np.array([0.1]), 0)
    assert status[0] == -1


def test_reference_runs_under_array_api_and_matches_numpy(xp, rng):
    X, y = regression(rng, n=120, p=3)
    A = np.einsum("ni,nj->nij", X, X)
    b = X * y[:, None]
    want = linear_stochastic_approximation(A, b, step=0.02, burn_in=5, richardson=True)
    got = linear_stochastic_approximation(as_xp(xp, A), as_xp(xp, b), step=0.02, burn_in=5,
                                          richardson=True)
    np.testing.assert_allclose(to_np(got), want, rtol=1e-12, atol=1e-12)
    got1 = linear_stochastic_approximation((as_xp(xp, X), as_xp(xp, X)), as_xp(xp, y),
                                           step=0.02, burn_in=5, richardson=True)
    np.testing.assert_allclose(to_np(got1), want, rtol=1e-12, atol=1e-12)
    got32 = linear_stochastic_approximation(as_xp(xp, A, "float32"), as_xp(xp, b, "float32"),
                                            step=0.02)
    assert got32.dtype == xp.float32


def test_dense_and_rank_one_forms_agree_with_the_estimators(rng):
    X, y = regression(rng, n=200, p=3)
    A = np.einsum("ni,nj->nij", X, X)
    b = X * y[:, None]
    dense = LinearStochasticApproximation(step=0.03, burn_in=10).fit(A, b).theta_
    reg = LSARegressor(step=0.03, burn_in=10, fit_intercept=False).fit(X, y).coef_
    fun = linear_stochastic_approximation((X, X), y, step=0.03, burn_in=10)
    np.testing.assert_allclose(dense, reg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fun, reg, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------
# Streams: partial_fit in chunks == fit at once, exactly
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("richardson", [False, True])
def test_partial_fit_chunks_equal_fit_regressor(richardson, rng):
    X, y = regression(rng, n=301)
    whole = LSARegressor(step=0.02, burn_in=50, richardson=richardson).fit(X, y)
    parts = LSARegressor(step=0.02, burn_in=50, richardson=richardson)
    for chunk in np.array_split(np.arange(301), [7, 40, 41, 200]):  # burn-in ends mid-chunk
        parts.partial_fit(X[chunk], y[chunk])
    np.testing.assert_array_equal(parts.coef_, whole.coef_)
    assert parts.intercept_ == whole.intercept_
    assert parts.n_updates_ == whole.n_updates_ == 301


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 119), max_size=6, unique=True),
       burn_in=st.integers(0, 130), average=st.booleans())
def test_any_chunking_of_the_stream_gives_the_same_fit(cuts, burn_in, average):
    X, y = regression(np.random.default_rng(7), n=120, p=3)
    kw = dict(step=0.03, burn_in=burn_in, average=average, richardson=True)
    whole = LSARegressor(**kw).fit(X, y)
    parts = LSARegressor(**kw)
    for chunk in np.split(np.arange(120), sorted(cuts)):
        parts.partial_fit(X[chunk], y[chunk])
    np.testing.assert_array_equal(parts.coef_, whole.coef_)
    assert parts.intercept_ == whole.intercept_


def test_partial_fit_chunks_equal_fit_dense(rng):
    _, _, _, A, b, _, _, _, _ = _chain_inputs(rng, n=90, p=3)
    whole = LinearStochasticApproximation(step=0.05, burn_in=20, richardson=True).fit(A, b)
    parts = LinearStochasticApproximation(step=0.05, burn_in=20, richardson=True)
    for chunk in np.array_split(np.arange(90), 4):
        parts.partial_fit(A[chunk], b[chunk])
    np.testing.assert_array_equal(parts.theta_, whole.theta_)
    np.testing.assert_array_equal(parts.theta_last_, whole.theta_last_)


def test_td0_trajectory_in_chunks_equals_fit_and_explicit_transitions(rng):
    P, R = random_walk(7), rewards(7)
    Phi = rng.normal(size=(7, 3))
    X, y, _ = trajectory(P, R, Phi, 500, rng)
    whole = TD0Evaluator(gamma=0.8, step=0.05, burn_in=30).fit(X, y)
    parts = TD0Evaluator(gamma=0.8, step=0.05, burn_in=30)
    for chunk in np.array_split(np.arange(X.shape[0]), [1, 2, 100, 350]):
        parts.partial_fit(X[chunk], y[chunk])
    np.testing.assert_array_equal(parts.coef_, whole.coef_)
    assert whole.n_updates_ == X.shape[0] - 1
    explicit = TD0Evaluator(gamma=0.8, step=0.05, burn_in=30).fit(X[:-1], y[:-1], X_next=X[1:])
    np.testing.assert_allclose(explicit.coef_, whole.coef_, rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------------
# TD(0): LSTD fixed point, and Richardson-Romberg against the exact O(step) bias
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("features, n_states, step", [("tabular", 19, 0.03),
                                                     ("random", 7, 0.002)])
def test_td0_converges_to_lstd_fixed_point(features, n_states, step, rng):
    gamma = 0.9
    P, R = random_walk(n_states), rewards(n_states)
    Phi = np.eye(n_states) if features == "tabular" else rng.normal(size=(n_states, 3))
    X, y, s = trajectory(P, R, Phi, 300_000, rng)
    # Empirical LSTD on the same transitions: sum_n A_n theta = sum_n b_n.
    U, V = X[:-1], X[:-1] - gamma * X[1:]
    lstd = np.linalg.solve(U.T @ V, U.T @ y[:-1])
    exact = lstd_fixed_point(P, R, Phi, gamma)
    if features == "tabular":  # the fixed point is the true value function
        v_true = np.linalg.solve(np.eye(n_states) - gamma * P, (P * R).sum(axis=1))
        np.testing.assert_allclose(exact, v_true, atol=1e-10)
    td = TD0Evaluator(gamma=gamma, step=step, burn_in=20_000, richardson=True).fit(X, y)
    scale = np.abs(exact).max()
    err_lstd = np.abs(td.coef_ - lstd).max() / scale
    err_exact = np.abs(td.coef_ - exact).max() / scale
    assert err_lstd < 0.02, err_lstd  # measured 0.002 (tabular), 0.006 (random)
    assert err_exact < 0.05, err_exact  # includes the trajectory's own sampling error
    values = td.predict(Phi)
    np.testing.assert_allclose(values, Phi @ td.coef_)
    # At the fixed point the projected TD error vanishes: the mean of phi * delta is ~0.
    delta = y[:-1] + gamma * (X[1:] @ lstd) - X[:-1] @ lstd
    assert np.abs(U.T @ delta / U.shape[0]).max() < 1e-10
    assert td.score(X, y) > -1.0


def test_richardson_romberg_removes_the_markov_bias(rng):
    """Plain averaging keeps an O(step) bias under Markov noise; RR cancels it.

    The oracle is the exact stationary mean of the iterate (a linear system over
    states x coordinates), independent of the LSA code; the simulation must match it
    and the extrapolated estimate must be much closer to the fixed point.
    """
    n_states, gamma, step = 5, 0.9, 0.1
    P, R = random_walk(n_states), rewards(n_states)
    Phi = np.eye(n_states)
    theta_star = lstd_fixed_point(P, R, Phi, gamma)
    mean_h = stationary_mean_iterate(P, R, Phi, gamma, step)
    mean_2h = stationary_mean_iterate(P, R, Phi, gamma, 2 * step)
    bias_plain = np.abs(mean_h - theta_star).max()
    bias_rr = np.abs(2 * mean_h - mean_2h - theta_star).max()
    assert bias_plain > 0.1 and bias_rr < 0.1 * bias_plain  # the theory, exactly
    X, y, _ = trajectory(P, R, Phi, 400_000, np.random.default_rng(1))
    plain = TD0Evaluator(gamma=gamma, step=step, burn_in=1000).fit(X, y).coef_
    rr = TD0Evaluator(gamma=gamma, step=step, burn_in=1000, richardson=True).fit(X, y).coef_
    # The simulation matches the exact stationary mean (Monte Carlo error ~0.02) ...
    assert np.abs(plain - mean_h).max() < 0.05
    # ... and RR is much closer to the fixed point than plain averaging.
    err_plain = np.abs(plain - theta_star).max()
    err_rr = np.abs(rr - theta_star).max()
    assert err_plain > 0.1
    assert err_rr < 0.3 * err_plain, (err_plain, err_rr)


# ----------------------------------------------------------------------------------
# Bootstrap ensembles (batched chains)
# ----------------------------------------------------------------------------------


def test_bootstrap_index_blocks():
    rng = np.random.default_rng(0)
    idx = bootstrap_index(100, 4, 10, rng)
    assert idx.shape == (4, 100) and idx.min() >= 0 and idx.max() < 100
    # Inside each block of 10 the indices are consecutive.
    diffs = np.diff(idx.reshape(4, 10, 10), axis=2)
    assert np.all(diffs == 1)
    assert np.all(bootstrap_index(7, 3, 1, rng) < 7)


def test_bootstrap_chains_numba_equal_reference_and_spread_is_calibrated(rng):
    beta = np.array([1.0, -2.0, 0.5])

    def draw(r):
        X = r.normal(size=(800, 3))
        return X, X @ beta + 0.5 * r.normal(size=800)

    X, y = draw(rng)
    est = LSARegressor(step=0.01, burn_in=100, n_bootstrap=200, random_state=0).fit(X, y)
    assert est.bootstrap_coef_.shape == (200, 3)
    assert est.bootstrap_intercept_.shape == (200,)
    # Same chains through the reference loop.
    samples = Samples.rank_one(np.c_[X, np.ones(800)], np.c_[X, np.ones(800)], y)
    boot = _lsa.run_bootstrap(samples, np.arange(800), np.zeros(4), 0.01, False, 100, True,
                              5, 1, np.random.default_rng(3))
    boot_ref = _lsa.run_bootstrap(samples, np.arange(800), np.zeros(4), 0.01, False, 100,
                                  True, 5, 1, np.random.default_rng(3), backend="reference")
    np.testing.assert_allclose(boot, boot_ref, rtol=1e-12, atol=1e-12)
    # The bootstrap spread matches the spread over fresh data sets (within 40%).
    fresh = np.array([LSARegressor(step=0.01, burn_in=100).fit(*draw(np.random.default_rng(k)))
                      .coef_ for k in range(200)])
    ratio = est.bootstrap_coef_.std(axis=0) / fresh.std(axis=0)
    assert np.all((ratio > 0.6) & (ratio < 1.4)), ratio
    ci = est.conf_int(0.05)
    assert ci.shape == (4, 2) and np.all(ci[:, 0] < ci[:, 1])
    # A refit without bootstrap forgets the chains.
    est.set_params(n_bootstrap=0).fit(X, y)
    with pytest.raises(ValueError, match="n_bootstrap"):
        est.conf_int()


def test_td0_and_dense_bootstrap_shapes(rng):
    P, R = random_walk(5), rewards(5)
    X, y, _ = trajectory(P, R, np.eye(5), 2000, rng)
    td = TD0Evaluator(step=0.05, n_bootstrap=20, block_length=12, richardson=True,
                      random_state=0).fit(X, y)
    assert td.bootstrap_coef_.shape == (20, 5)
    assert td.conf_int().shape == (5, 2)
    _, _, _, A, b, _, _, _, _ = _chain_inputs(rng, n=100, p=3)
    lsa = LinearStochasticApproximation(step=0.05, n_bootstrap=10, random_state=0).fit(A, b)
    assert lsa.bootstrap_theta_.shape == (10, 3)
    lo, hi = lsa.conf_int(0.2).T
    assert np.all(lo <= hi)


# ----------------------------------------------------------------------------------
# Step sizes and bad input
# ----------------------------------------------------------------------------------


def test_stability_bound_closed_forms():
    assert stability_bound(np.diag([1.0, 4.0])) == pytest.approx(0.5)
    # Complex pair 1 +- 2i: 2 Re / |lambda|^2 = 2 / 5.
    assert stability_bound(np.array([[1.0, 2.0], [-2.0, 1.0]])) == pytest.approx(0.4)
    assert stability_bound(np.diag([1.0, -0.5])) == 0.0
    assert stability_bound(np.zeros((2, 2))) == math.inf
    # A zero eigenvalue (collinear features) is neutral, not unstable.
    assert stability_bound(np.diag([2.0, 0.0])) == pytest.approx(1.0)


def test_too_large_step_warns_then_raises_instead_of_nan(rng):
    X, y = regression(rng, n=400, p=3)
    lam_max = np.linalg.eigvalsh(np.c_[X, np.ones(400)].T @ np.c_[X, np.ones(400)] / 400).max()
    est = LSARegressor(step=3.0 / lam_max)
    with pytest.warns(StepSizeWarning, match="stability bound"), \
            pytest.raises(FloatingPointError, match="diverged.*smaller step"):
        est.fit(X, y)
    assert not hasattr(est, "coef_")
    # Richardson checks 2 * step.
    with pytest.warns(StepSizeWarning, match="Richardson"), \
            pytest.raises(FloatingPointError):
        LSARegressor(step=1.2 / lam_max, richardson=True).fit(X, y)
    # The estimated bound is reported and "auto" stays below it.
    ok = LSARegressor().fit(X, y)
    assert ok.stability_bound_ == pytest.approx(2 / lam_max, rel=1e-10)
    assert 2 * ok.step_ < ok.stability_bound_
    assert np.all(np.isfinite(ok.coef_))


def test_divergence_on_short_streams_is_caught_by_growth_check():
    # Overflow would take ~1000 steps; 60 steps leave a huge but finite iterate.
    X = np.ones((60, 1))
    y = np.ones(60)
    with pytest.warns(StepSizeWarning), pytest.raises(FloatingPointError, match="grew"):
        LSARegressor(step=2.8, fit_intercept=False).fit(X, y)


def test_partial_fit_error_leaves_state_unchanged(rng):
    X, y = regression(rng, n=100, p=2)
    est = LSARegressor(step=0.01).partial_fit(X, y)
    coef = est.coef_.copy()
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.partial_fit(bad, y)
    np.testing.assert_array_equal(est.coef_, coef)


def test_non_hurwitz_mean_matrix_warns(rng):
    A = np.tile(np.diag([1.0, -1.0]), (50, 1, 1))
    b = np.ones((50, 2))
    with pytest.warns(StepSizeWarning, match="every step size"):
        LinearStochasticApproximation(step=0.01).fit(A, b)


@pytest.mark.parametrize("step", [0, -0.1, "big"])
def test_bad_step_is_rejected(step, rng):
    X, y = regression(rng, n=20, p=2)
    with pytest.raises(ValueError, match="'step' parameter of LSARegressor must be"):
        LSARegressor(step=step).fit(X, y)
    with pytest.raises(ValueError,
                       match="'step' parameter of linear_stochastic_approximation must be"):
        linear_stochastic_approximation((X, X), y, step=step)


@pytest.mark.parametrize("name, bad", [("burn_in", -1), ("burn_in", 2.0), ("n_epochs", 0),
                                       ("n_epochs", True), ("average", "yes"),
                                       ("richardson", None), ("shuffle", 1),
                                       ("random_state", "seed")])
def test_bad_parameters_are_rejected_by_name(name, bad, rng):
    X, y = regression(rng, n=20, p=2)
    with pytest.raises(ValueError,
                       match=f"'{name}' parameter of linear_stochastic_approximation must be"):
        linear_stochastic_approximation((X, X), y, **{name: bad})
    with pytest.raises(ValueError, match=f"'{name}' parameter of LSARegressor must be"):
        LSARegressor(**{name: bad}).fit(X, y)


def test_conf_int_level_is_checked(rng):
    X, y = regression(rng, n=50, p=2)
    est = LSARegressor(step=0.05, n_bootstrap=3, random_state=0).fit(X, y)
    for alpha in (0.0, 1.0, -0.5, "0.1"):
        with pytest.raises(ValueError, match="'alpha' parameter of LSARegressor.conf_int"):
            est.conf_int(alpha)


def test_bad_shapes_and_values_are_rejected(rng):
    A = np.eye(3) + 0.1 * rng.normal(size=(10, 3, 3))
    b = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"b must have shape \(n, p\) = \(10, 3\)"):
        LinearStochasticApproximation().fit(A, b[:, :2])
    with pytest.raises(ValueError, match=r"b must have shape"):
        LinearStochasticApproximation().fit(A, b[:9])
    with pytest.raises(ValueError, match="square matrices"):
        LinearStochasticApproximation().fit(A[:, :, :2], b)
    with pytest.raises(ValueError, match="square matrices"):
        linear_stochastic_approximation(A[0], b)
    A_nan = A.copy()
    A_nan[4, 1, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        LinearStochasticApproximation().fit(A_nan, b)
    with pytest.raises(ValueError, match="theta0 has length 2"):
        LinearStochasticApproximation(theta0=np.zeros(2)).fit(A, b)
    lsa = LinearStochasticApproximation(step=0.01).fit(A, b)
    with pytest.raises(ValueError, match="p=2"):
        lsa.partial_fit(A[:, :2, :2], b[:, :2])
    X = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="same shape"):
        linear_stochastic_approximation((X, X[:, :2]), X[:, 0])
    with pytest.raises(ValueError, match="b must have shape \\(n,\\)"):
        linear_stochastic_approximation((X, X), X)
    y = rng.normal(size=10)
    y[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LSARegressor().fit(X, y)
    with pytest.raises(ValueError, match="X_next has shape"):
        TD0Evaluator().fit(X, np.ones(10), X_next=X[:, :2])
    with pytest.raises(ValueError, match="at least 2 states"):
        TD0Evaluator().fit(X[:1], np.ones(1))
    with pytest.raises(ValueError, match="gamma"):
        TD0Evaluator(gamma=1.5).fit(X, np.ones(10))
    with pytest.raises(NotFittedError):
        LSARegressor().predict(X)


def test_inputs_are_not_modified(rng):
    X, y = regression(rng, n=50, p=3)
    X0, y0 = X.copy(), y.copy()
    LSARegressor(n_epochs=2, shuffle=True, random_state=0).fit(X, y)
    TD0Evaluator(richardson=True).fit(X, y, X_next=X[::-1])
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_shuffle_is_seeded_and_changes_the_order(rng):
    X, y = regression(rng, n=100, p=2)
    a = LSARegressor(step=0.02, shuffle=True, n_epochs=2, random_state=1).fit(X, y).coef_
    b = LSARegressor(step=0.02, shuffle=True, n_epochs=2, random_state=1).fit(X, y).coef_
    c = LSARegressor(step=0.02, shuffle=False, n_epochs=2).fit(X, y).coef_
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-8


def test_lsa_estimator_api_without_sklearn_checks(rng):
    """LinearStochasticApproximation takes 3-D input, so scikit-learn's checks skip it."""
    est = LinearStochasticApproximation(step=0.1, theta0=[1.0, 2.0])
    assert clone(est).get_params() == est.get_params()
    A = np.tile(np.eye(2), (30, 1, 1))
    b = np.ones((30, 2))
    est.fit(A, b)
    assert est.n_features_in_ == 2 and est.n_updates_ == 30
    # Deterministic A = I: theta_n = 1 + 0.9^n (theta0 - 1), in closed form.
    n = np.arange(1, 31)
    want = np.mean(1 + 0.9 ** n[:, None] * (np.array([1.0, 2.0]) - 1), axis=0)
    np.testing.assert_allclose(est.theta_, want, rtol=1e-13)
    np.testing.assert_allclose(est.theta_last_, 1 + 0.9**30 * np.array([0.0, 1.0]),
                               rtol=1e-13)
    assert est.__sklearn_tags__().input_tags.three_d_array


# ----------------------------------------------------------------------------------
# scikit-learn compatibility and documentation
# ----------------------------------------------------------------------------------


@parametrize_with_checks([LSARegressor(), TD0Evaluator(), LinearStochasticApproximation()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("obj", [LinearStochasticApproximation, LSARegressor, TD0Evaluator,
                                 linear_stochastic_approximation, stability_bound],
                         ids=lambda o: o.__name__)
def test_docstring_examples(obj):
    tests = doctest.DocTestFinder().find(obj, obj.__name__, globs={})
    assert any(t.examples for t in tests)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


# ----------------------------------------------------------------------------------
# GPU (CuPy) path; skipped where CuPy sees no device
# ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_kernels_equal_numba(dtype, rng):
    cupy = pytest.importorskip("cupy")
    U, V, c, A, b, index, theta, avg, steps = _chain_inputs(rng, dtype=dtype)
    fast = lsa_rank_one_op.implementation("numba")(np, U, V, c, index, theta, avg, 3, steps, 9)
    gpu = lsa_rank_one_op.implementation("cupy")(
        cupy, cupy.asarray(U), cupy.asarray(V), cupy.asarray(c), index, cupy.asarray(theta),
        cupy.asarray(avg), 3, steps, 9)
    np.testing.assert_allclose(cupy.asnumpy(gpu[0]), fast[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(gpu[1]), fast[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(gpu[2], fast[2])
    fast = lsa_dense_op.implementation("numba")(np, A, b, index, theta, avg, 0, steps, 0)
    gpu = lsa_dense_op.implementation("cupy")(
        cupy, cupy.asarray(A), cupy.asarray(b), index, cupy.asarray(theta), cupy.asarray(avg),
        0, steps, 0)
    np.testing.assert_allclose(cupy.asnumpy(gpu[0]), fast[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(gpu[1]), fast[1], rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
def test_cupy_estimators_and_bootstrap_match_numpy(rng):
    cupy = pytest.importorskip("cupy")
    X, y = regression(rng, n=500, p=3)
    cpu = LSARegressor(step=0.02, richardson=True, n_bootstrap=64, block_length=5,
                       random_state=0).fit(X, y)
    gpu = LSARegressor(step=0.02, richardson=True, n_bootstrap=64, block_length=5,
                       random_state=0).fit(cupy.asarray(X), cupy.asarray(y))
    assert isinstance(gpu.coef_, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.coef_), cpu.coef_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(gpu.bootstrap_coef_), cpu.bootstrap_coef_,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(gpu.predict(cupy.asarray(X))), cpu.predict(X),
                               rtol=1e-9, atol=1e-9)
    from sketchlearn import config_context

    with config_context(device="gpu"):
        moved = LSARegressor(step=0.02).fit(X, y)
    assert isinstance(moved.coef_, np.ndarray)
    np.testing.assert_allclose(moved.coef_, LSARegressor(step=0.02).fit(X, y).coef_,
                               rtol=1e-10, atol=1e-10)
