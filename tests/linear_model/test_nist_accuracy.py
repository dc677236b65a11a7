"""Certified accuracy: NIST StRD linear regression, against the certified values, the
exact solution of the float64 data (rational arithmetic) and the peers."""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from sketchlearn.datasets import NIST_STRD_NAMES, load_nist_strd
from sketchlearn.linear_model import GaussMarkovRegressor
from sketchlearn.linear_model._refinement import (
    inverse_refinement_residuals_op,
    refinement_residuals_op,
)
from sketchlearn.metrics import log_relative_error


def _ours(data, refine=True):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rank-deficiency warning on any NIST set
        m = GaussMarkovRegressor(fit_intercept=data.fit_intercept, refine=refine).fit(data.X,
                                                                                     data.y)
    if data.fit_intercept:
        return (np.concatenate([[m.intercept_], m.coef_]),
                np.concatenate([[m.intercept_bse_], m.bse_]))
    return m.coef_, m.bse_


def _certified(data):
    if data.fit_intercept:
        return (np.concatenate([[data.intercept], data.coef]),
                np.concatenate([[data.intercept_se], data.coef_se]))
    return data.coef, data.coef_se


def _lre(a, b):
    return float(log_relative_error(a, b).min())


@pytest.mark.parametrize("name", NIST_STRD_NAMES)
def test_at_or_above_every_peer(name, sm):
    """Coefficients: at least as close as every peer to the exact least-squares solution
    of the float64 data (rational arithmetic). The certified values solve the decimal
    data, which float64 rounds: on Wampler2 that alone moves the exact solution to 13.2
    certified digits, so a peer's lucky rounding can land nearer the certified values
    than the exact answer does. Standard errors: against the certified values."""
    data = load_nist_strd(name)
    coef, se = _ours(data)
    cert, cert_se = _certified(data)
    D = sm.add_constant(data.X) if data.fit_intercept else data.X
    exact = _exact_least_squares(D, data.y)
    ours = _lre(coef, exact)
    for method in ("pinv", "qr"):
        r = sm.OLS(data.y, D).fit(method=method)
        assert ours >= min(_lre(r.params, exact), 15.0)
        # 0.15 digits of slack: at the 15-digit cap the certified values' own rounding
        # decides ties (NoInt1: 14.7 vs 14.8)
        assert _lre(se, cert_se) >= min(_lre(r.bse, cert_se), 14.5) - 0.15
    lstsq = np.linalg.lstsq(D, data.y, rcond=None)[0]
    assert ours >= min(_lre(lstsq, exact), 15.0)


@pytest.mark.parametrize("name, digits", [("Longley", 14.0), ("Norris", 13.5),
                                          ("Pontius", 13.0), ("Wampler1", 14.0),
                                          ("Wampler3", 13.0), ("Wampler4", 13.0),
                                          ("Wampler5", 13.0), ("NoInt1", 14.5)])
def test_certified_digits(name, digits):
    data = load_nist_strd(name)
    coef, se = _ours(data)
    cert, cert_se = _certified(data)
    assert _lre(coef, cert) >= digits
    assert _lre(se, cert_se) >= min(digits, 13.0)


def _exact_fit(D, y):
    """Least squares in exact rational arithmetic on the float64 values: the solution,
    the residual sum of squares and the diagonal of ``(D^T D)^{-1}``, all as Fractions.
    Gauss-Jordan on ``[D^T D | D^T y | I]`` (exact in rationals)."""
    A = [[Fraction(float(v)) for v in row] for row in D]
    b = [Fraction(float(v)) for v in y]
    k = len(A[0])
    M = [[sum(r[i] * r[j] for r in A) for j in range(k)]
         + [sum(r[i] * bv for r, bv in zip(A, b, strict=True))]
         + [Fraction(int(i == j)) for j in range(k)] for i in range(k)]
    for c in range(k):
        pivot = next(i for i in range(c, k) if M[i][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        M[c] = [a / M[c][c] for a in M[c]]
        for i in range(k):
            if i != c and M[i][c] != 0:
                f = M[i][c]
                M[i] = [a - f * bb for a, bb in zip(M[i], M[c], strict=True)]
    coef = [M[i][k] for i in range(k)]
    rss = sum((bv - sum(a * x for a, x in zip(r, coef, strict=True))) ** 2
              for r, bv in zip(A, b, strict=True))
    return coef, rss, [M[i][k + 1 + i] for i in range(k)]


def _sqrt_to_float(q):
    """``sqrt(q)`` of a non-negative Fraction as a float64, within one rounding: ``isqrt``
    of ``q`` scaled by 4^e, with ``e`` chosen to keep about 80 significant bits."""
    if q == 0:
        return 0.0
    e = max(0, 80 - (q.numerator.bit_length() - q.denominator.bit_length()) // 2)
    root = math.isqrt((q.numerator << (2 * e)) // q.denominator)
    return float(Fraction(root, 1 << e))


def _exact_least_squares(D, y):
    return np.array([float(x) for x in _exact_fit(D, y)[0]])


def _exact_standard_errors(D, y):
    """``sqrt(RSS / (n - k) * diag((D^T D)^{-1}))`` of the float64 data, exactly until
    the final square root (80 bits) and rounding to float64."""
    _, rss, diag = _exact_fit(D, y)
    s2 = rss / (len(D) - len(diag))
    return np.array([_sqrt_to_float(s2 * d) for d in diag])


def _design(data):
    return np.column_stack([np.ones(len(data.X)), data.X]) if data.fit_intercept else data.X


@pytest.mark.parametrize("name", ["Filip", "Longley", "Pontius", "Wampler1", "Wampler2",
                                  "Wampler3", "Wampler4", "Wampler5"])
def test_coefficients_and_standard_errors_equal_the_exact_ones_of_the_float64_data(name):
    """Against the exact least-squares solution of the float64 data and its exact standard
    errors (rational arithmetic): 12 digits for both. The standard errors need the
    refined (A^T A)^{-1} (R^{-1} R^{-T} alone: 7.3 digits on Filip) and the minimum
    residual sum of squares (at the rounded coefficients Wampler2's sigma2 is 3x too
    large: 0.1 digits)."""
    data = load_nist_strd(name)
    coef, se = _ours(data)
    D = _design(data)
    assert _lre(coef, _exact_least_squares(D, data.y)) >= 12.0
    assert _lre(se, _exact_standard_errors(D, data.y)) >= 12.0


@pytest.mark.parametrize("name", ["Filip", "Wampler4", "Pontius"])
def test_refining_the_coefficients_only(name):
    """refine="coef": the same coefficients as refine=True (12 digits of the exact
    solution), standard errors with the digits of R^{-1} R^{-T} alone: at least
    16 - log10(cond) - 1 of them against the exact ones, where cond is the condition
    number of the column-scaled design, and none more than the fully refined ones."""
    data = load_nist_strd(name)
    coef, se = _ours(data, refine="coef")
    full_coef, full_se = _ours(data)
    np.testing.assert_array_equal(coef, full_coef)
    D = _design(data)
    exact_se = _exact_standard_errors(D, data.y)
    cond = np.linalg.cond(D / np.linalg.norm(D, axis=0))
    assert _lre(se, exact_se) >= 16 - np.log10(cond) - 1
    assert _lre(se, exact_se) <= _lre(full_se, exact_se)


def test_an_exact_fit_keeps_sigma2_zero():
    # Wampler1 is a polynomial with integer coefficients on integer x: the float64 data
    # fit exactly, so the residual sum of squares is 0 and so is every standard error
    data = load_nist_strd("Wampler1")
    m = GaussMarkovRegressor().fit(data.X, data.y)
    assert m.sigma2_ == 0.0 and not np.any(m.bse_) and m.intercept_bse_ == 0.0


def test_sqrt_to_float_is_within_one_rounding():
    assert _sqrt_to_float(Fraction(4, 9)) == 2 / 3
    assert _sqrt_to_float(Fraction(2)) == math.sqrt(2.0)
    for q in (Fraction(1, 3), Fraction(10**40 + 7, 3), Fraction(5, 10**60), Fraction(7)):
        approx = _sqrt_to_float(q)
        # the float64 neighbours of sqrt(q) bracket it: squares on either side of q
        below, above = np.nextafter(approx, 0), np.nextafter(approx, np.inf)
        assert Fraction(below) ** 2 < q < Fraction(above) ** 2


def test_filip_float64_reaches_the_exact_solution_of_its_data(sm):
    # Filip's decimals rounded to float64 already move the exact least-squares
    # solution to ~7.6 certified digits; the solver must reproduce that exact
    # solution of the float64 data far better than the certified values allow.
    data = load_nist_strd("Filip")
    coef, se = _ours(data)
    cert, cert_se = _certified(data)
    exact = _exact_least_squares(np.column_stack([np.ones(82), data.X]), data.y)
    assert _lre(coef, exact) >= 9.5
    assert _lre(coef, cert) >= 7.5 and _lre(se, cert_se) >= 7.5
    # statsmodels' default truncates the rank and loses every digit
    r = sm.OLS(data.y, sm.add_constant(data.X)).fit()
    assert _lre(r.params, cert) < 1


def test_filip_long_double_data_meets_eight_digits():
    data = load_nist_strd("Filip", dtype=np.longdouble)
    coef, se = _ours(data)
    cert, cert_se = _certified(data)
    assert coef.dtype == np.longdouble
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("long double is float64 on this platform")
    assert _lre(coef, cert) >= 8.0
    assert _lre(se, cert_se) >= 8.0


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_refinement_residuals_are_exact_to_one_rounding(rng, backend):
    A = rng.normal(size=(40, 5)) * np.geomspace(1e6, 1e-3, 5)
    x, y, r = rng.normal(size=5), rng.normal(size=40), rng.normal(size=40) * 1e-3
    f, g = refinement_residuals_op.implementation(backend)(np, A, y, r, x)
    for i in range(40):
        exact = Fraction(y[i]) - Fraction(r[i]) - sum(
            Fraction(A[i, j]) * Fraction(x[j]) for j in range(5))
        assert abs(f[i] - float(exact)) <= 2 * np.spacing(abs(float(exact)))
    for j in range(5):
        exact = -sum(Fraction(A[i, j]) * Fraction(r[i]) for i in range(40))
        assert abs(g[j] - float(exact)) <= 2 * np.spacing(abs(float(exact)))
    # plain float64 would not pass the same bound on this cancelling sum
    naive = y - r - A @ x
    exact0 = float(Fraction(y[0]) - Fraction(r[0]) - sum(
        Fraction(A[0, j]) * Fraction(x[j]) for j in range(5)))
    assert abs(f[0] - exact0) <= abs(naive[0] - exact0)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_inverse_refinement_residuals_meet_the_doubled_precision_bound(rng, backend):
    """Each entry within Dot2's bound (Ogita, Rump & Oishi): ``u |s| + gamma_m^2 sum |terms|``
    with ``u = 2^-53`` and ``m`` the number of terms; plain float64 misses it by far."""
    n, k = 30, 4
    u = 2.0**-53
    gamma2 = ((n + 1) * u / (1 - (n + 1) * u)) ** 2
    A = rng.normal(size=(n, k)) * np.geomspace(1e5, 1e-3, k)
    # near the solution, X = (A^T A)^{-1} and R = -A X: both residuals cancel most digits
    X = np.linalg.inv(A.T @ A)
    R = -(A @ X)
    Q = np.ascontiguousarray(np.linalg.qr(A)[0])
    F, G, QtF = inverse_refinement_residuals_op.implementation(backend)(np, A, R, X, Q)
    np.testing.assert_allclose(QtF, Q.T @ F, rtol=1e-12, atol=1e-12 * np.abs(Q.T @ F).max())
    naive_F, naive_G = -R - A @ X, -np.eye(k) - A.T @ R
    naive_misses = 0
    for j in range(k):
        for i in range(n):
            terms = [-Fraction(R[i, j])] + [-Fraction(A[i, q]) * Fraction(X[q, j])
                                           for q in range(k)]
            exact = sum(terms)
            bound = u * abs(exact) + gamma2 * sum(abs(t) for t in terms)
            assert abs(Fraction(F[i, j]) - exact) <= bound
            naive_misses += abs(Fraction(naive_F[i, j]) - exact) > bound
        for q in range(k):
            terms = [Fraction(-int(q == j))] + [-Fraction(A[i, q]) * Fraction(R[i, j])
                                                for i in range(n)]
            exact = sum(terms)
            bound = u * abs(exact) + gamma2 * sum(abs(t) for t in terms)
            assert abs(Fraction(G[q, j]) - exact) <= bound
            naive_misses += abs(Fraction(naive_G[q, j]) - exact) > bound
    assert naive_misses > (n * k + k * k) // 2


@pytest.mark.parametrize("seed, fit_intercept", [(0, True), (1, False), (2, True)])
def test_standard_errors_of_random_ill_conditioned_designs_are_exact(seed, fit_intercept):
    # monomials of a variable in (1, 2): scaled condition number about 1e8-1e9, the
    # pivoted path; residuals small against y, so the RSS cancels most digits of y
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(1.0, 2.0, size=40))
    X = np.column_stack([t**j for j in range(1, 8)])
    y = 0.5 + X @ rng.normal(size=7) + 1e-7 * rng.normal(size=40)
    m = GaussMarkovRegressor(fit_intercept=fit_intercept).fit(X, y)
    D = np.column_stack([np.ones(40), X]) if fit_intercept else X
    coef = np.concatenate([[m.intercept_], m.coef_]) if fit_intercept else m.coef_
    se = np.concatenate([[m.intercept_bse_], m.bse_]) if fit_intercept else m.bse_
    _, rss, _ = _exact_fit(D, y)
    assert _lre(coef, _exact_least_squares(D, y)) >= 12.0
    assert _lre(se, _exact_standard_errors(D, y)) >= 12.0
    assert _lre(m.sigma2_, float(rss / (40 - D.shape[1]))) >= 13.0


def test_weighted_standard_errors_are_exact_for_the_whitened_float64_data(rng):
    # WLS: the refinement works on the whitened design sqrt(w) [1, X], which the test
    # forms the same way (one rounding per entry) and solves exactly
    t = np.sort(rng.uniform(1.0, 2.0, size=30))
    X = np.column_stack([t**j for j in range(1, 7)])
    w = rng.uniform(0.5, 2.0, size=30)
    y = 1.0 + X @ rng.normal(size=6) + 1e-6 * rng.normal(size=30)
    m = GaussMarkovRegressor().fit(X, y, sample_weight=w)
    s = np.sqrt(w)
    Dw = s[:, None] * np.column_stack([np.ones(30), X])
    se = np.concatenate([[m.intercept_bse_], m.bse_])
    assert _lre(se, _exact_standard_errors(Dw, s * y)) >= 12.0


def test_fused_two_product_is_exact(rng):
    from numba import njit

    from sketchlearn.linear_model._numba import _two_prod, _two_prod_fma

    both = njit(lambda a, b: (_two_prod_fma(a, b), _two_prod(a, b)))
    for a, b in rng.normal(size=(200, 2)) * np.exp(rng.uniform(-30, 30, size=(200, 2))):
        (p, e), dekker = both(a, b)
        assert Fraction(p) + Fraction(e) == Fraction(a) * Fraction(b)
        assert (p, e) == dekker
