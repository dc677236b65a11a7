"""MMD against brute force, closed forms, SciPy's energy distance and its properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import energy_distance

from sketchlearn.kernels import GaussianKernel, LaplaceKernel, RieszKernel
from sketchlearn.kernels._mmd import kernel_matvec_op
from sketchlearn.metrics import mmd, mmd_subset

from ..conftest import as_xp


def brute_mmd2(K, X, Y, wx=None, wy=None, unbiased=False):
    n, m = len(X), len(Y)
    Kxx, Kxy, Kyy = K(X, X), K(X, Y), K(Y, Y)
    if unbiased:
        return ((Kxx.sum() - np.trace(Kxx)) / (n * (n - 1))
                + (Kyy.sum() - np.trace(Kyy)) / (m * (m - 1)) - 2 * Kxy.mean())
    wx = np.full(n, 1 / n) if wx is None else wx
    wy = np.full(m, 1 / m) if wy is None else wy
    return wx @ Kxx @ wx - 2 * wx @ Kxy @ wy + wy @ Kyy @ wy


def gaussian_mmd2_closed_form(delta, s, h, d):
    # P = N(0, s^2 I), Q = N(delta, s^2 I), k = exp(-||x-y||^2 / (2 h^2)).
    c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(delta**2) / (2 * (h**2 + 2 * s**2))))


@pytest.mark.parametrize("kernel", ["gaussian", "laplace", "imq", "energy"])
def test_v_statistic_matches_brute_force(kernel, rng):
    from sketchlearn.kernels import make_kernel

    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(45, 3)) + 0.5
    k = make_kernel(kernel, 1.3 if kernel != "energy" else None)
    got = mmd(X, Y, kernel=k, squared=True)
    assert got == pytest.approx(brute_mmd2(k, X, Y), rel=1e-10)
    assert mmd(X, Y, kernel=k) == pytest.approx(math.sqrt(brute_mmd2(k, X, Y)), rel=1e-10)


def test_weighted_v_statistic(rng):
    X, Y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2))
    wx, wy = rng.random(30), rng.random(20)
    wx, wy = wx / wx.sum(), wy / wy.sum()
    k = LaplaceKernel(1.0)
    got = mmd(X, Y, kernel=k, weights_x=wx, weights_y=wy, squared=True)
    assert got == pytest.approx(brute_mmd2(k, X, Y, wx, wy), rel=1e-10)


def test_u_statistic_matches_brute_force(rng):
    X, Y = rng.normal(size=(25, 2)), rng.normal(size=(31, 2))
    k = GaussianKernel(0.9)
    got = mmd(X, Y, kernel=k, unbiased=True, squared=True)
    assert got == pytest.approx(brute_mmd2(k, X, Y, unbiased=True), rel=1e-10)


def test_u_statistic_is_unbiased_and_v_statistic_is_not():
    # Seeded Monte Carlo: mean of the estimates against the population MMD^2.
    rng = np.random.default_rng(7)
    d, s, h, delta, n, reps = 2, 1.0, 1.0, 0.5, 12, 3000
    truth = gaussian_mmd2_closed_form(delta, s, h, d)
    shift = np.array([delta, 0.0])
    u, v = np.empty(reps), np.empty(reps)
    for r in range(reps):
        X, Y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift
        u[r] = mmd(X, Y, bandwidth=h, unbiased=True, squared=True)
        v[r] = mmd(X, Y, bandwidth=h, squared=True)
    se_u, se_v = u.std(ddof=1) / math.sqrt(reps), v.std(ddof=1) / math.sqrt(reps)
    assert abs(u.mean() - truth) < 3.5 * se_u
    assert v.mean() - truth > 5 * se_v  # the V-statistic's O(1/n) bias is detectable


def test_energy_kernel_gives_scipy_energy_distance(rng):
    x, y = rng.normal(size=70), rng.exponential(size=55)
    got = mmd(x[:, None], y[:, None], kernel="energy")
    assert got == pytest.approx(energy_distance(x, y), rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(1, 15), st.just(2)),
             elements=st.floats(-10, 10, allow_nan=False)),
    Y=arrays(np.float64, st.tuples(st.integers(1, 15), st.just(2)),
             elements=st.floats(-10, 10, allow_nan=False)),
    seed=st.integers(0, 2**16),
)
def test_mmd_axioms(X, Y, seed):
    k = GaussianKernel(1.5)
    perm = np.random.default_rng(seed).permutation(len(X))
    value = mmd(X, Y, kernel=k, squared=True)
    assert value >= 0
    assert mmd(X, X, kernel=k, squared=True) == pytest.approx(0.0, abs=1e-12)
    assert mmd(Y, X, kernel=k, squared=True) == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert mmd(X[perm], Y, kernel=k, squared=True) == pytest.approx(value, rel=1e-9, abs=1e-12)
    # Translation invariance of a radial kernel.
    assert mmd(X + 3.0, Y + 3.0, kernel=k, squared=True) == pytest.approx(value, rel=1e-7,
                                                                           abs=1e-10)


def test_every_namespace_gives_the_same_value(xp, rng):
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.3
    expected = mmd(X, Y, bandwidth=1.0)
    assert mmd(as_xp(xp, X), as_xp(xp, Y), bandwidth=1.0) == pytest.approx(expected, rel=1e-10)
    got32 = mmd(as_xp(xp, X, "float32"), as_xp(xp, Y, "float32"), bandwidth=1.0)
    assert got32 == pytest.approx(expected, rel=1e-4)


def test_numba_and_reference_paths_agree(rng):
    X, Y = rng.normal(size=(200, 4)), rng.normal(size=(150, 4))
    w = rng.random((150, 1))
    k = GaussianKernel(2.0) + LaplaceKernel(1.0)
    ref = kernel_matvec_op.implementation("reference")(np, X, Y, w, k)
    fast = kernel_matvec_op.implementation("numba")(np, X, Y, w, k)
    np.testing.assert_allclose(fast, ref, rtol=1e-12)


def test_subset_mmd_equals_two_sample_mmd(rng):
    X = rng.normal(size=(120, 2))
    idx = rng.choice(120, size=17, replace=False)
    k = GaussianKernel(1.0)
    assert mmd_subset(X, idx, kernel=k) == pytest.approx(mmd(X, X[idx], kernel=k), rel=1e-10)
    # Repeated indices count with multiplicity.
    rep = np.array([0, 0, 5, 9])
    assert mmd_subset(X, rep, kernel=k) == pytest.approx(mmd(X, X[rep], kernel=k), rel=1e-10)


def test_subset_mmd_with_weights(rng):
    X = rng.normal(size=(50, 3))
    q = np.zeros(50)
    q[[1, 4, 7]] = [0.5, 0.3, 0.2]
    p = rng.random(50)
    p /= p.sum()
    k = LaplaceKernel(1.0)
    expected = brute_mmd2(k, X, X, p, q)
    got = mmd_subset(X, weights=q, sample_weight=p, kernel=k, squared=True)
    assert got == pytest.approx(expected, rel=1e-10)
    dense = rng.random(50)
    dense /= dense.sum()
    assert mmd_subset(X, weights=dense, kernel=k, squared=True) == pytest.approx(
        brute_mmd2(k, X, X, None, dense), rel=1e-10)


def test_subset_mmd_every_namespace(xp, rng):
    X = rng.normal(size=(60, 2))
    idx = np.arange(0, 60, 3)
    expected = mmd_subset(X, idx, bandwidth=1.0)
    assert mmd_subset(as_xp(xp, X), idx, bandwidth=1.0) == pytest.approx(expected, rel=1e-10)


def test_riesz_mmd_is_zero_for_identical_samples(rng):
    X = rng.normal(size=(30, 2))
    assert mmd(X, X.copy(), kernel=RieszKernel(1.3)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"unbiased": True}, ValueError, "pass squared=True"),
        ({"unbiased": True, "squared": True, "weights_x": np.full(5, 0.2)}, ValueError,
         "unweighted"),
        ({"weights_x": np.full(5, 0.3)}, ValueError, "sums to 1.5, not 1"),
        ({"weights_x": np.array([0.5, 0.5, 0.5, -0.5, 0.0])}, ValueError, "negative"),
        ({"weights_y": np.full(3, 0.25)}, ValueError, "length 3, but the data has 4"),
        ({"bandwidth": 0.0}, ValueError, "bandwidth must be in"),
        ({"kernel": "energy", "exponent": 2.5}, ValueError, "exponent"),
    ],
)
def test_bad_arguments(kwargs, error, match, rng):
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    with pytest.raises(error, match=match):
        mmd(X, Y, **kwargs)


@pytest.mark.parametrize(
    ("X", "Y", "match"),
    [
        (np.zeros(5), np.zeros((4, 1)), "must be a 2-D array"),
        (np.zeros((5, 2)), np.zeros((4, 3)), "X has 2 features but Y has 3"),
        (np.zeros((0, 2)), np.zeros((4, 2)), "X has 0 sample"),
        (np.array([[0.0, np.nan]]), np.zeros((4, 2)), "X contains NaN"),
        (np.zeros((3, 2)), np.array([[0.0, 1.0], [np.inf, 0.0]]), "Y contains infinity.*row 1"),
    ],
)
def test_bad_data(X, Y, match):
    with pytest.raises(ValueError, match=match):
        mmd(X, Y, bandwidth=1.0)


def test_bad_subset_arguments(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="exactly one"):
        mmd_subset(X)
    with pytest.raises(ValueError, match=r"lie in \[0, 9\]"):
        mmd_subset(X, [0, 10])
    with pytest.raises(TypeError, match="integers"):
        mmd_subset(X, [0.5, 1.0])


def test_mixed_libraries_are_rejected(rng):
    xps = pytest.importorskip("array_api_strict")
    X = rng.normal(size=(5, 2))
    with pytest.raises(TypeError, match="different array libraries"):
        mmd(X, xps.asarray(X), bandwidth=1.0)


@pytest.mark.gpu
def test_mmd_on_cupy_matches_numpy(rng):
    cp = pytest.importorskip("cupy")
    X, Y = rng.normal(size=(3000, 5)), rng.normal(size=(2000, 5)) + 0.1
    for kernel in ["gaussian", "laplace", "matern"]:
        expected = mmd(X, Y, kernel=kernel, bandwidth=2.0)
        assert mmd(cp.asarray(X), cp.asarray(Y), kernel=kernel, bandwidth=2.0) == pytest.approx(
            expected, rel=1e-9)
