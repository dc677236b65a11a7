"""The bundled NIST StRD linear regression sets: loading, shapes, and the data
agreeing with NIST's certified values when the arithmetic is done exactly."""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from sketchlearn.datasets import NIST_STRD_NAMES, load_nist_strd
from sketchlearn.datasets._nist import _parse_nist_strd

# name -> (n_samples, n_features of X, fit_intercept, NIST's level of difficulty)
EXPECTED = {
    "Norris": (36, 1, True, "lower"),
    "Pontius": (40, 2, True, "lower"),
    "NoInt1": (11, 1, False, "average"),
    "NoInt2": (3, 1, False, "average"),
    "Filip": (82, 10, True, "higher"),
    "Longley": (16, 6, True, "higher"),
    "Wampler1": (21, 5, True, "higher"),
    "Wampler2": (21, 5, True, "higher"),
    "Wampler3": (21, 5, True, "higher"),
    "Wampler4": (21, 5, True, "higher"),
    "Wampler5": (21, 5, True, "higher"),
}
POLYNOMIAL = ["Pontius", "Filip", "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"]
WELL_CONDITIONED = ["Norris", "Pontius", "NoInt1", "NoInt2", "Longley"]


def _exact(name):
    """Design (with its constant column when there is one), response and certified
    values of a set, all as exact fractions of NIST's decimal strings."""
    parsed = _parse_nist_strd(name)
    rows = [[Fraction(t) for t in row] for row in parsed["rows"]]
    params = parsed["params"]
    fit_intercept = params[0][0] == 0
    n_terms = len(params) - fit_intercept
    if len(rows[0]) - 1 == n_terms:
        A = [row[1:] for row in rows]
    else:
        A = [[row[1] ** k for k in range(1, n_terms + 1)] for row in rows]
    if fit_intercept:
        A = [[Fraction(1), *a] for a in A]
    cert = {  # NIST's printed strings
        "beta": [est for _, est, _ in params],
        "se": [sd for _, _, sd in params],
        "residual_sd": parsed["residual_sd"],
        "r_squared": parsed["r_squared"],
    }
    return A, [row[0] for row in rows], fit_intercept, cert


def _rss_and_tss(A, y, beta, fit_intercept):
    residuals = [yi - sum(a * b for a, b in zip(row, beta, strict=True))
                 for row, yi in zip(A, y, strict=True)]
    center = sum(y) / len(y) if fit_intercept else 0
    return sum(r * r for r in residuals), sum((yi - center) ** 2 for yi in y)


def _sqrt(q):
    with localcontext() as ctx:
        ctx.prec = 50
        return Fraction((Decimal(q.numerator) / Decimal(q.denominator)).sqrt())


def _rel(value, printed):
    certified = Fraction(printed)
    return abs(value - certified) / abs(certified) if certified else abs(value)


def _last_digits(value, printed):
    """Distance of ``value`` from NIST's printed number, in units of its last digit."""
    unit = Fraction(10) ** Decimal(printed).as_tuple().exponent
    return abs(value - Fraction(printed)) / unit


def _solve_exact(M, rhs):
    """Gauss-Jordan elimination in exact arithmetic: M^{-1} applied to each rhs column."""
    n = len(M)
    T = [list(M[i]) + [col[i] for col in rhs] for i in range(n)]
    for j in range(n):
        pivot = next(i for i in range(j, n) if T[i][j] != 0)
        T[j], T[pivot] = T[pivot], T[j]
        T[j] = [v / T[j][j] for v in T[j]]
        for i in range(n):
            if i != j and T[i][j] != 0:
                T[i] = [a - T[i][j] * b for a, b in zip(T[i], T[j], strict=True)]
    return [[T[i][n + c] for i in range(n)] for c in range(len(rhs))]


def test_names_are_the_eleven_sets_and_case_does_not_matter():
    assert set(NIST_STRD_NAMES) == set(EXPECTED)
    assert load_nist_strd("wAMPLER4").name == "Wampler4"
    assert load_nist_strd(" noint1 ").name == "NoInt1"


@pytest.mark.parametrize("bad", ["Wampler6", "", "Filippelli"])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError, match="Norris, Pontius, NoInt1.*Wampler5"):
        load_nist_strd(bad)


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="string"):
        load_nist_strd(3)


@pytest.mark.parametrize("name", NIST_STRD_NAMES)
def test_shapes_flags_and_fields(name):
    n, p, fit_intercept, difficulty = EXPECTED[name]
    data = load_nist_strd(name)
    assert data.X.shape == (n, p) and data.y.shape == (n,)
    assert data.X.dtype == np.float64 and data.y.dtype == np.float64
    assert data.X.flags.c_contiguous
    assert data.coef.shape == (p,) and data.coef_se.shape == (p,)
    assert len(data.feature_names) == p
    assert data.fit_intercept is fit_intercept
    assert data.difficulty == difficulty
    assert data.source == f"https://www.itl.nist.gov/div898/strd/lls/data/LINKS/DATA/{name}.dat"
    assert "NIST/ITL StRD" in data.DESCR and data.source in data.DESCR
    assert np.all(np.isfinite(data.X)) and np.all(np.isfinite(data.y))
    if fit_intercept:
        assert np.isfinite(data.intercept_se) and data.intercept_se >= 0
    else:
        assert data.intercept == 0.0 and math.isnan(data.intercept_se)
    assert 0 <= data.r_squared <= 1 and data.residual_sd >= 0


def test_certified_values_are_read_into_the_right_fields():
    data = load_nist_strd("Longley")
    assert data.intercept == -3482258.63459582 and data.intercept_se == 890420.383607373
    np.testing.assert_array_equal(
        data.coef, [15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
                    -1.03322686717359, -0.511041056535807e-01, 1829.15146461355])
    assert data.coef_se[-1] == 455.478499142212
    assert data.residual_sd == 304.854073561965 and data.r_squared == 0.995479004577296
    filip = load_nist_strd("Filip")
    assert filip.coef[-1] == -0.402962525080404e-04 and filip.coef_se[-1] == 0.896632837373868e-05


@pytest.mark.parametrize("name", POLYNOMIAL)
def test_polynomial_sets_return_the_powers_of_x(name):
    data = load_nist_strd(name)
    x = np.array([float(row[1]) for row in _parse_nist_strd(name)["rows"]])
    np.testing.assert_array_equal(data.X[:, 0], x)
    for k in range(1, data.X.shape[1]):
        np.testing.assert_allclose(data.X[:, k], x ** (k + 1), rtol=1e-15, atol=0)
    assert data.feature_names[:2] == ["x", "x^2"]


@pytest.mark.parametrize("name, coefs", [
    ("Wampler1", [1, 1, 1, 1, 1, 1]),
    ("Wampler2", [1, Fraction(1, 10), Fraction(1, 100), Fraction(1, 1000),
                  Fraction(1, 10**4), Fraction(1, 10**5)]),
])
def test_wampler1_and_2_are_exact_polynomials(name, coefs):
    rows = _parse_nist_strd(name)["rows"]
    x = [Fraction(row[1]) for row in rows]
    assert x == list(range(21))
    exact = [sum(c * xi**k for k, c in enumerate(coefs)) for xi in x]
    assert [Fraction(row[0]) for row in rows] == exact
    np.testing.assert_array_equal(load_nist_strd(name).y, [float(v) for v in exact])


@pytest.mark.parametrize("name", NIST_STRD_NAMES)
def test_certified_coefficients_reproduce_certified_residual_sd_and_r2(name):
    # Plug the certified estimates into the data in exact arithmetic: the residual SD
    # and R^2 must come out as certified, to the 15 digits NIST prints.
    A, y, fit_intercept, cert = _exact(name)
    rss, tss = _rss_and_tss(A, y, [Fraction(b) for b in cert["beta"]], fit_intercept)
    dof = len(y) - len(cert["beta"])
    residual_sd = _sqrt(rss / dof)
    r_squared = 1 - rss / tss
    if Fraction(cert["residual_sd"]) == 0:  # Wampler1 and 2: the certified fit is exact
        assert rss == 0 and r_squared == 1 == Fraction(cert["r_squared"])
    else:
        # Filip's fitted values are sums of terms near 1e5 that cancel to about 0.8, so
        # rounding its certified estimates to 15 digits moves the residuals by ~1e-10
        # and the residual SD in its 13th digit; elsewhere all 15 digits survive.
        rtol = 1e-11 if name == "Filip" else 1e-13
        assert _rel(residual_sd, cert["residual_sd"]) < rtol
        assert _rel(r_squared, cert["r_squared"]) < rtol


@pytest.mark.parametrize("name", NIST_STRD_NAMES)
def test_certified_values_are_the_exact_least_squares_solution_rounded(name):
    # Solve the normal equations in rational arithmetic (exact, so their conditioning
    # does not matter). Every certified number -- estimates, their standard
    # deviations, residual SD, R^2 -- must be this exact result correctly rounded to
    # the digits NIST prints: within half a unit of its last digit. A wrong digit
    # anywhere in the bundled data or certified values fails this.
    A, y, fit_intercept, cert = _exact(name)
    n, k = len(A), len(A[0])
    gram = [[sum(row[i] * row[j] for row in A) for j in range(k)] for i in range(k)]
    rhs = [[sum(row[i] * yi for row, yi in zip(A, y, strict=True)) for i in range(k)]]
    unit = [[Fraction(int(i == j)) for i in range(k)] for j in range(k)]
    beta, *inverse_columns = _solve_exact(gram, rhs + unit)
    rss, tss = _rss_and_tss(A, y, beta, fit_intercept)
    sigma2 = rss / (n - k)
    half = Fraction(1, 2)
    for i in range(k):
        assert _last_digits(beta[i], cert["beta"][i]) <= half, (name, "B", i)
        se = _sqrt(sigma2 * inverse_columns[i][i])
        assert _last_digits(se, cert["se"][i]) <= half, (name, "SD of B", i)
    assert _last_digits(_sqrt(sigma2), cert["residual_sd"]) <= half
    assert _last_digits(1 - rss / tss, cert["r_squared"]) <= half


@pytest.mark.parametrize("name", WELL_CONDITIONED)
def test_lstsq_reproduces_certified_coefficients_on_well_conditioned_sets(name):
    data = load_nist_strd(name)
    A = np.column_stack([np.ones(len(data.y)), data.X]) if data.fit_intercept else data.X
    scale = np.linalg.norm(A, axis=0)  # equilibrate columns (Pontius' span 1 to 1e13)
    beta = np.linalg.lstsq(A / scale, data.y, rcond=None)[0] / scale
    certified = np.r_[data.intercept, data.coef] if data.fit_intercept else data.coef
    np.testing.assert_allclose(beta, certified, rtol=1e-8, atol=0)


def test_each_call_returns_fresh_arrays():
    first = load_nist_strd("Norris")
    first.X[:] = 0.0
    first.coef[:] = 0.0
    second = load_nist_strd("Norris")
    assert second.X[0, 0] == 0.2 and second.coef[0] == 1.00211681802045
