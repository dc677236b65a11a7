"""Kernel functions against closed forms, SciPy and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from sketchlearn.kernels import (
    GaussianKernel,
    IMQKernel,
    LaplaceKernel,
    MaternKernel,
    RieszKernel,
    SincKernel,
    SumKernel,
    kernel_matrix,
    make_kernel,
    median_heuristic,
    scott_bandwidth,
)
from sketchlearn.kernels._sums import kernel_matrix_op

from ..conftest import as_xp, to_np

ALL_KERNELS = [
    GaussianKernel(1.3),
    LaplaceKernel(0.7),
    MaternKernel(1.1, nu=1.5),
    MaternKernel(0.9, nu=2.5),
    MaternKernel(1.0, nu=0.8),
    MaternKernel(2.0, nu=3.3),
    IMQKernel(1.2, nu=0.5),
    IMQKernel(0.8, nu=1.7),
    SincKernel(1.5),
    RieszKernel(1.0),
    RieszKernel(0.6, bandwidth=2.0),
    GaussianKernel(1.0) + 0.5 * LaplaceKernel(2.0),
]
PD_KERNELS = [k for k in ALL_KERNELS if k.bounded]


def matern_scipy(r, nu, h):
    t = math.sqrt(2 * nu) * np.asarray(r, dtype=float) / h
    with np.errstate(invalid="ignore"):
        out = 2 ** (1 - nu) / sp.gamma(nu) * t**nu * sp.kv(nu, t)
    return np.where(t == 0, 1.0, out)


def brute_force(kernel, X, Y):
    """Independent NumPy/SciPy evaluation of each family."""
    D = cdist(X, Y)
    if isinstance(kernel, SumKernel):
        return sum(w * brute_force(k, X, Y) for k, w in zip(kernel.kernels, kernel.weights,
                                                            strict=True))
    h = kernel.bandwidth
    if isinstance(kernel, GaussianKernel):
        return np.exp(-(D**2) / (2 * h**2))
    if isinstance(kernel, MaternKernel):
        return matern_scipy(D, kernel.nu, h)
    if isinstance(kernel, IMQKernel):
        return (1 + D**2 / h**2) ** (-kernel.nu)
    if isinstance(kernel, SincKernel):
        return np.prod(np.sinc((X[:, None, :] - Y[None, :, :]) / h), axis=-1)
    if isinstance(kernel, RieszKernel):
        return -((D / h) ** kernel.exponent)
    raise AssertionError(kernel)


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
def test_kernel_matrix_matches_brute_force(kernel, rng):
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3))
    np.testing.assert_allclose(kernel(X, Y), brute_force(kernel, X, Y), rtol=1e-12, atol=1e-13)


def test_closed_forms_at_known_points():
    x, y = np.array([[0.0]]), np.array([[1.0]])
    assert kernel_matrix(x, y, kernel="gaussian", bandwidth=1.0)[0, 0] == pytest.approx(
        math.exp(-0.5), rel=1e-15)
    s3 = math.sqrt(3.0)
    assert MaternKernel(1.0, 1.5)(x, y)[0, 0] == pytest.approx((1 + s3) * math.exp(-s3),
                                                               rel=1e-14)
    s5 = math.sqrt(5.0)
    assert MaternKernel(1.0, 2.5)(x, y)[0, 0] == pytest.approx(
        (1 + s5 + 5 / 3) * math.exp(-s5), rel=1e-14)
    assert LaplaceKernel(2.0)(x, y)[0, 0] == pytest.approx(math.exp(-0.5), rel=1e-15)
    assert SincKernel(1.0)(x, np.array([[0.5]]))[0, 0] == pytest.approx(2 / math.pi, rel=1e-15)


@pytest.mark.parametrize("nu", [0.3, 0.8, 1.2, 2.7, 6.1, 15.3])
def test_general_matern_quadrature_matches_scipy_bessel(nu):
    r = np.array([0.0, 1e-9, 1e-5, 0.01, 0.3, 1.0, 5.0, 30.0, 100.0, 600.0])
    X = np.zeros((1, 1))
    Y = r[:, None]
    k = MaternKernel(1.0, nu)
    expected = matern_scipy(r, nu, 1.0)
    for backend in ("reference", "numba"):
        got = to_np(kernel_matrix_op.implementation(backend)(np, X, Y, k))[0]
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("nu", [0.3, 3.3, 40.3])
def test_general_matern_is_finite_at_extreme_distances(nu):
    # Subnormal and huge distances once overflowed cosh(nu s) / the Bessel sum (NaN).
    r = np.array([5e-324, 1e-250, 3e-119, 1e-30, 1e100, 1e150])
    Y = r[:, None]
    k = MaternKernel(1.0, nu)
    for backend in ("reference", "numba"):
        with np.errstate(over="raise", invalid="raise"):
            got = to_np(kernel_matrix_op.implementation(backend)(np, np.zeros((1, 1)), Y, k))[0]
        np.testing.assert_allclose(got, [1, 1, 1, 1, 0, 0], rtol=1e-11, atol=1e-300)


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_equals_reference(kernel, dtype, rng):
    X = rng.normal(size=(40, 4)).astype(dtype)
    Y = rng.normal(size=(33, 4)).astype(dtype)
    ref = kernel_matrix_op.implementation("reference")(np, X, Y, kernel)
    fast = kernel_matrix_op.implementation("numba")(np, X, Y, kernel)
    assert fast.dtype == ref.dtype == np.dtype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(fast, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel", ALL_KERNELS, ids=repr)
def test_every_namespace_gives_the_same_matrix(kernel, xp, rng):
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(15, 3))
    got = kernel(as_xp(xp, X), as_xp(xp, Y))
    np.testing.assert_allclose(to_np(got), brute_force(kernel, X, Y), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("kernel", PD_KERNELS, ids=repr)
def test_bounded_kernels_have_unit_diagonal_and_are_bounded(kernel, rng):
    X = rng.normal(size=(50, 3))
    K = kernel(X)
    np.testing.assert_allclose(np.diag(K), kernel.diagonal_value, rtol=1e-14)
    assert np.abs(K).max() <= kernel.sup_norm * (1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 3)),
             elements=st.floats(-5, 5, allow_nan=False)),
    index=st.integers(0, len(PD_KERNELS) - 1),
)
def test_gram_matrices_are_symmetric_psd(X, index):
    kernel = PD_KERNELS[index]
    K = kernel(X)
    np.testing.assert_allclose(K, K.T, atol=1e-14)
    assert np.linalg.eigvalsh(K).min() >= -1e-9 * max(1.0, kernel.sup_norm) * X.shape[0]


@settings(max_examples=25, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(3, 12), st.integers(1, 3)),
             elements=st.floats(-5, 5, allow_nan=False)),
    r=st.floats(0.1, 1.9),
)
def test_riesz_kernel_is_conditionally_positive_definite(X, r):
    K = RieszKernel(r)(X)
    n = X.shape[0]
    P = np.eye(n) - np.ones((n, n)) / n  # projector onto vectors summing to zero
    assert np.linalg.eigvalsh(P @ K @ P).min() >= -1e-8 * max(1.0, np.abs(K).max()) * n


def _profile_scipy(kernel):
    """Radial profile of a kernel from its parameters, evaluated with NumPy/SciPy."""
    if isinstance(kernel, GaussianKernel):
        return lambda r: math.exp(-(r**2) / (2 * kernel.bandwidth**2))
    return lambda r: float(matern_scipy(r, kernel.nu, kernel.bandwidth))


@pytest.mark.parametrize(
    "kernel",
    [GaussianKernel(0.8), MaternKernel(1.0, 1.5), MaternKernel(1.3, 2.5), MaternKernel(0.9, 1.1),
     MaternKernel(1.0, 4.0)],
    ids=repr,
)
def test_square_root_kernel_convolves_back_to_the_kernel(kernel):
    # Fourier transform of k_rt squared is that of k, so k = k_rt * k_rt up to a constant.
    from scipy.integrate import quad

    f = _profile_scipy(kernel.sqrt(n_features=1))

    def conv(r):
        pieces = [(-np.inf, 0.0), (0.0, r), (r, np.inf)] if r > 0 else [(-np.inf, 0), (0, np.inf)]
        return sum(quad(lambda z: f(abs(z)) * f(abs(r - z)), a, b, epsabs=1e-14,
                        epsrel=1e-12, limit=200)[0] for a, b in pieces)

    r = np.array([0.3, 0.7, 1.5, 3.0])
    ratio = np.array([conv(ri) for ri in r]) / conv(0.0)
    expected = np.array([_profile_scipy(kernel)(ri) for ri in r])
    np.testing.assert_allclose(ratio, expected, rtol=1e-8)


def test_sinc_is_its_own_square_root():
    # sinc * sinc = sinc (band-limited); a truncated Riemann sum on [-L, L] errs by O(1/L).
    root = SincKernel(1.0).sqrt(n_features=1)
    z = np.linspace(-2000, 2000, 2_000_001)
    f0 = np.sinc(z)
    for r in [0.3, 0.7, 1.5]:
        conv = np.sum(f0 * root(np.array([[r]]), z[:, None])[0]) * (z[1] - z[0])
        assert conv == pytest.approx(np.sinc(r), abs=1e-3)


def test_power_kernel_parameters():
    assert GaussianKernel(2.0).power(0.25, 3) == GaussianKernel(1.0)
    # Laplace in d=1: alpha = 3/4 gives nu' = 3/4 * 1 - 1/2 = 1/4.
    pk = LaplaceKernel(1.0).power(0.75, 1)
    assert pk.nu == pytest.approx(0.25) and pk.bandwidth == pytest.approx(math.sqrt(0.5))
    assert MaternKernel(1.0, 2.5).power(1.0, 2) == MaternKernel(1.0, 2.5)
    assert SincKernel(3.0).sqrt(5) == SincKernel(3.0)
    with pytest.raises(ValueError, match="alpha > d / \\(2 nu \\+ d\\)"):
        LaplaceKernel(1.0).sqrt(2)
    with pytest.raises(ValueError, match="no closed-form power"):
        IMQKernel().sqrt(2)
    with pytest.raises(ValueError, match="alpha must be in"):
        GaussianKernel().power(1.5, 2)


def test_median_heuristic_matches_scipy_pdist(rng):
    from scipy.spatial.distance import pdist

    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(40, 3)) + 2
    assert median_heuristic(X, Y) == pytest.approx(np.median(pdist(np.vstack([X, Y]))),
                                                   rel=1e-14)
    big = rng.normal(size=(3000, 2))
    # Subsampled above 1000 rows: reproducible and close to the full median.
    assert median_heuristic(big) == median_heuristic(big)
    assert median_heuristic(big) == pytest.approx(np.median(pdist(big)), rel=0.05)
    assert median_heuristic(np.ones((5, 2))) == 1.0


def test_scott_bandwidth_formula(rng):
    X = rng.normal(size=(500, 3)) * np.array([1.0, 2.0, 3.0])
    expected = math.sqrt(np.mean(X.var(axis=0, ddof=1))) * 500 ** (-1 / 7)
    assert scott_bandwidth(X) == pytest.approx(expected, rel=1e-13)


def test_make_kernel_resolves_names_and_rules(rng):
    X = rng.normal(size=(50, 2))
    assert make_kernel("gaussian", 2.0) == GaussianKernel(2.0)
    assert make_kernel("energy") == RieszKernel(1.0)
    assert make_kernel("laplace", "median", X).bandwidth == pytest.approx(median_heuristic(X))
    assert make_kernel("gaussian", "scott", X).bandwidth == pytest.approx(scott_bandwidth(X))
    k = GaussianKernel(3.0)
    assert make_kernel(k) is k
    with pytest.raises(ValueError, match="one of"):
        make_kernel("rbf")
    with pytest.raises(ValueError, match="go into the Kernel object"):
        make_kernel(k, bandwidth=1.0)
    with pytest.raises(ValueError, match="'median', or 'scott'|'median' or 'scott'"):
        make_kernel("gaussian", "silverman", X)
    with pytest.raises(TypeError, match="Invalid parameters"):
        make_kernel("gaussian", 1.0, nu=2.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bandwidth_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        GaussianKernel(bad)


@pytest.mark.parametrize("r", [0.0, 2.0, -0.5, 3.0])
def test_riesz_exponent_outside_open_interval_is_rejected(r):
    with pytest.raises(ValueError, match=r"r \(exponent\) must be in \(0, 2\)"):
        RieszKernel(r)


def test_sum_kernel_validation_and_norms():
    k = 2.0 * GaussianKernel(1.0) + LaplaceKernel(1.0)
    assert k.sup_norm == pytest.approx(3.0)
    assert not (GaussianKernel() + RieszKernel()).bounded
    with pytest.raises(TypeError):
        SumKernel([])
    with pytest.raises(ValueError):
        SumKernel([GaussianKernel()], [-1.0])
