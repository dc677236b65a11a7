import math

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import cdist

from sketchlearn.metrics import energy_distance as metrics_energy
from sketchlearn.metrics import sliced_wasserstein as metrics_sw
from sketchlearn.transport import (
    distributional_sliced_wasserstein,
    energy_distance,
    energy_distance_grad,
    gaussian_wasserstein,
    max_sliced_wasserstein,
    sliced_wasserstein,
    sphere_abs_moment,
    two_sample_test,
    wasserstein,
)
from sketchlearn.transport._sliced_ops import (
    slice_energy_grad_op,
    slice_energy_op,
    slice_wasserstein_op,
)
from sketchlearn.transport._slices import SLICES, make_directions, sample_vmf

from ..conftest import as_xp, to_np

CASES = ["equal", "unequal", "weighted", "half_weighted"]


def _case(rng, case, n=40):
    X = rng.normal(size=(n, 3))
    Y = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + 0.7
    a = b = None
    if case == "unequal":
        Y = Y[:27 * n // 40]
    if case in ("weighted", "half_weighted"):
        b = rng.random(n)
        b /= b.sum()
    if case == "weighted":
        a = rng.random(n)
        a /= a.sum()
    return X, Y, a, b


# Sizes on both sides of the Numba kernels' switch from comparison to radix sort.
SIZES = [40, 3000]


def _uniform(w, n):
    return np.full(n, 1.0 / n) if w is None else w


# ----------------------------------------------------------------- per-slice kernels


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_slice_wasserstein_backends_equal_exact_1d_ot(case, p, n, rng):
    X, Y, a, b = _case(rng, case, n)
    dirs = make_directions(3, 7, "mc", rng)[0]
    PX, PY = dirs @ X.T, dirs @ Y.T
    ref = slice_wasserstein_op.implementation("reference")(np, PX, PY, a, b, p)
    fast = slice_wasserstein_op.implementation("numba")(np, PX, PY, a, b, p)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-14)
    wa, wb = _uniform(a, X.shape[0]), _uniform(b, Y.shape[0])
    for l in range(2 if n <= 100 else 0):
        M = np.abs(PX[l][:, None] - PY[l][None, :]) ** p
        np.testing.assert_allclose(ref[l], ot.emd2(wa, wb, M), rtol=1e-9)
    if p == 1.0:
        np.testing.assert_allclose(
            ref[0], stats.wasserstein_distance(PX[0], PY[0], a, b), rtol=1e-10)


def test_slice_wasserstein_array_api_strict(rng):
    xps = pytest.importorskip("array_api_strict")
    X, Y, a, b = _case(rng, "weighted")
    PX, PY = X.T, Y.T
    ref = slice_wasserstein_op.implementation("reference")(np, PX, PY, a, b, 2.0)
    strict = slice_wasserstein_op(xps, as_xp(xps, PX), as_xp(xps, PY), as_xp(xps, a),
                                  as_xp(xps, b), 2.0)
    np.testing.assert_allclose(to_np(strict), ref, rtol=1e-12)
    e = slice_energy_op(xps, as_xp(xps, PX), as_xp(xps, PY), None, None)
    np.testing.assert_allclose(to_np(e), slice_energy_op(np, PX, PY, None, None), rtol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES)
def test_slice_energy_backends_equal_scipy(case, n, ties, rng):
    X, Y, a, b = _case(rng, case, n)
    if ties:  # the gradient at tied values depends on a stable order
        X, Y = np.round(X, 1), np.round(Y, 1)
    PX, PY = X.T, Y.T
    ref = slice_energy_op.implementation("reference")(np, PX, PY, a, b)
    fast = slice_energy_op.implementation("numba")(np, PX, PY, a, b)
    np.testing.assert_allclose(fast, ref, rtol=1e-12)
    for l in range(3):
        # scipy returns the square root of 2 E|X-Y| - E|X-X'| - E|Y-Y'|.
        np.testing.assert_allclose(ref[l], stats.energy_distance(PX[l], PY[l], a, b) ** 2,
                                   rtol=1e-10)
    e1, g1 = slice_energy_grad_op.implementation("reference")(np, PX, PY, a, b)
    e2, g2 = slice_energy_grad_op.implementation("numba")(np, PX, PY, a, b)
    np.testing.assert_allclose(e1, ref, rtol=1e-12)
    np.testing.assert_allclose(e2, ref, rtol=1e-12)
    np.testing.assert_allclose(g1, g2, atol=1e-14)


@pytest.mark.parametrize("n", [5, 3000, 2**18 + 5])
def test_numba_radix_sort_equals_stable_numpy_sort(n, rng):
    from sketchlearn.transport._numba_sliced import _sort_into, _sort_space

    x = rng.standard_normal(n) * np.exp(rng.uniform(-700, 700, n))
    x[rng.integers(0, n, n // 5)] = 0.0
    x[rng.integers(0, n, n // 5)] = -0.0
    x[rng.integers(0, n, n // 5)] = 5e-324  # subnormal
    x[rng.integers(0, n, n // 5)] = -1.5
    x[: n // 3] = np.round(x[: n // 3])  # ties
    out = np.empty(n)
    order = _sort_into(x, out, _sort_space(n), True)
    np.testing.assert_array_equal(order, np.argsort(x, kind="stable"))
    np.testing.assert_array_equal(out, np.sort(x))
    np.testing.assert_array_equal(x[order], out)
    plain = np.empty(n)
    assert _sort_into(x, plain, _sort_space(n), False).size == 0
    np.testing.assert_array_equal(plain, out)


# ----------------------------------------------------------------- sliced Wasserstein


@pytest.mark.parametrize("case", CASES)
def test_sw_equals_pot_with_same_projections(case, rng):
    X, Y, a, b = _case(rng, case)
    ours = sliced_wasserstein(X, Y, a, b, n_projections=30, random_state=3)
    dirs = make_directions(3, 30, "mc", np.random.default_rng(3))[0]
    pot = ot.sliced_wasserstein_distance(X, Y, a, b, projections=dirs.T)
    np.testing.assert_allclose(ours, pot, rtol=1e-10)


def test_sw_float32_and_metrics_reexport(rng):
    X, Y, _, _ = _case(rng, "equal")
    v64 = sliced_wasserstein(X, Y, random_state=0)
    v32 = sliced_wasserstein(X.astype(np.float32), Y.astype(np.float32), random_state=0)
    assert isinstance(v32, float)
    assert abs(v32 - v64) < 1e-5
    assert metrics_sw(X, Y, random_state=0) == v64


def test_sw_one_dimension_is_exact(rng):
    u, v = rng.normal(size=(50, 1)), rng.exponential(size=(35, 1))
    for p in (1, 2):
        exact = wasserstein(u, v, p=p)
        assert sliced_wasserstein(u, v, p=p, n_projections=3) == pytest.approx(exact, rel=1e-12)
    assert wasserstein(u, v, p=1) == pytest.approx(stats.wasserstein_distance(u[:, 0], v[:, 0]))


def test_sw_gaussian_closed_form():
    # X ~ N(0, I), Y ~ N(m, s^2 I): each slice is N(0,1) vs N(theta.m, s^2), so
    # SW_2^2 = |m|^2 / d + (s - 1)^2.
    rng = np.random.default_rng(0)
    d, s = 4, 2.0
    m = np.array([1.0, -1.0, 0.5, 0.0])
    n = 20000
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) * s + m
    value = sliced_wasserstein(X, Y, n_projections=300, slices="cv-upper", random_state=0)
    assert value**2 == pytest.approx(m @ m / d + (s - 1) ** 2, rel=0.03)


@pytest.mark.parametrize("slices", SLICES)
def test_every_slicing_estimates_the_same_value(slices):
    rng = np.random.default_rng(1)
    X = rng.standard_t(4, size=(400, 5)) * [1, 1, 2, 3, 0.5]
    Y = rng.exponential(size=(400, 5))
    ref = sliced_wasserstein(X, Y, n_projections=4000, random_state=1)
    v, se = sliced_wasserstein(X, Y, n_projections=256, slices=slices, random_state=2,
                               return_std=True)
    assert v == pytest.approx(ref, rel=0.03)
    if slices == "qmc":
        assert math.isnan(se)
    else:
        assert 0 < se < 0.05 * v


def _spread(slices, X, Y, reps=40, L=64):
    vals = [sliced_wasserstein(X, Y, n_projections=L, slices=slices, random_state=r)
            for r in range(reps)]
    return np.std(vals)


def test_variance_reduction_against_mc():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4)) * [3.0, 1.0, 0.5, 0.2]
    Y = rng.normal(size=(300, 4)) * [0.5, 2.0, 1.0, 0.2] + [1.0, 0.0, 0.0, 0.5]
    mc = _spread("mc", X, Y)
    assert _spread("cv-upper", X, Y) < 0.6 * mc
    assert _spread("rqmc", X, Y) < 0.8 * mc
    assert _spread("orthogonal", X, Y) < 0.7 * mc
    # Anisotropic, heavy-tailed against skewed: the upper control variate shines.
    X = rng.standard_t(3, size=(300, 10)) * np.linspace(0.2, 3, 10)
    Y = rng.exponential(size=(300, 10))
    mc = _spread("mc", X, Y)
    assert _spread("cv-upper", X, Y) < 0.3 * mc
    assert _spread("orthogonal", X, Y) < 0.5 * mc


def test_return_std_matches_seeded_repetition():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 3)) * [2.0, 1.0, 0.3]
    Y = rng.normal(size=(200, 3))
    spread = _spread("mc", X, Y, reps=60, L=50)
    se = np.mean([sliced_wasserstein(X, Y, n_projections=50, random_state=r,
                                     return_std=True)[1] for r in range(20)])
    assert se == pytest.approx(spread, rel=0.35)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 30), m=st.integers(2, 30),
       p=st.sampled_from([1.0, 2.0, 3.0]))
def test_sw_metric_properties(seed, n, m, p):
    rng = np.random.default_rng(seed)
    X, Y, Z = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 1, rng.normal(size=(7, 2))
    kw = dict(p=p, n_projections=20, random_state=seed)
    xy, yx = sliced_wasserstein(X, Y, **kw), sliced_wasserstein(Y, X, **kw)
    assert xy >= 0
    assert xy == pytest.approx(yx, rel=1e-9, abs=1e-12)
    assert sliced_wasserstein(X, X, **kw) == 0.0
    # Shared slices make the estimate a metric: triangle inequality holds exactly.
    assert xy <= sliced_wasserstein(X, Z, **kw) + sliced_wasserstein(Z, Y, **kw) + 1e-9
    # Permutation and translation of both clouds.
    perm = rng.permutation(n)
    assert sliced_wasserstein(X[perm], Y, **kw) == pytest.approx(xy, rel=1e-9, abs=1e-12)
    assert sliced_wasserstein(X + 3.0, Y + 3.0, **kw) == pytest.approx(xy, rel=1e-7,
                                                                      abs=1e-9)
    # Never larger than the exact distance (projections are 1-Lipschitz).
    assert xy <= wasserstein(X, Y, p=p) * (1 + 1e-9) + 1e-12


def test_sw_rotation_invariance_in_expectation():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3)) * [2.0, 1.0, 0.5]
    Y = rng.normal(size=(500, 3))
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    a = sliced_wasserstein(X, Y, n_projections=2000, slices="rqmc", random_state=0)
    b = sliced_wasserstein(X @ Q, Y @ Q, n_projections=2000, slices="rqmc", random_state=1)
    assert a == pytest.approx(b, rel=0.02)


def test_directions_are_unit_and_vmf_concentrates(rng):
    for slices in SLICES:
        D, _ = make_directions(6, 37, slices, rng)
        np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    mu = np.eye(5)[0]
    T = sample_vmf(rng, mu, 50.0, 2000)
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0)
    # E[mu^T theta] = A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa) for vMF on S^{d-1}.
    from scipy.special import ive
    expected = ive(2.5, 50.0) / ive(1.5, 50.0)
    assert (T @ mu).mean() == pytest.approx(expected, abs=0.01)


def test_max_sw_finds_the_stretched_axis_and_bounds_sw(rng):
    X = rng.normal(size=(300, 4))
    Y = rng.normal(size=(300, 4)) * [1.0, 1.0, 1.0, 5.0]
    value, theta = max_sliced_wasserstein(X, Y, random_state=0, return_direction=True)
    assert abs(theta[3]) > 0.99
    exact_on_axis = wasserstein(X[:, 3:], Y[:, 3:])
    assert value >= exact_on_axis * (1 - 1e-9)
    assert value >= sliced_wasserstein(X, Y, random_state=0)
    assert value <= wasserstein(X, Y) * (1 + 1e-9)
    dsw = distributional_sliced_wasserstein(X, Y, kappa=30.0, random_state=0)
    assert sliced_wasserstein(X, Y, random_state=0) < dsw <= value * 1.001


# ----------------------------------------------------------------- energy distance


def _pairwise_energy(X, Y, a=None, b=None):
    a = _uniform(a, X.shape[0])
    b = _uniform(b, Y.shape[0])
    return (2 * a @ cdist(X, Y) @ b - a @ cdist(X, X) @ a - b @ cdist(Y, Y) @ b)


@pytest.mark.parametrize("case", CASES)
def test_energy_1d_exact(case, rng):
    X, Y, a, b = _case(rng, case)
    u, v = X[:, :1], Y[:, :1]
    e = energy_distance(u, v, a, b, squared=True)
    assert e == pytest.approx(_pairwise_energy(u, v, a, b), rel=1e-10)
    assert energy_distance(u, v, a, b) == pytest.approx(
        stats.energy_distance(u[:, 0], v[:, 0], a, b), rel=1e-10)
    assert metrics_energy(u, v, a, b) == energy_distance(u, v, a, b)


def test_energy_sliced_matches_pairwise_in_d_dims():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4)) * [1, 2, 1, 1]
    Y = rng.standard_t(3, size=(250, 4))
    exact = _pairwise_energy(X, Y)
    est, se = energy_distance(X, Y, n_projections=3000, slices="rqmc", random_state=0,
                              squared=True, return_std=True)
    assert abs(est - exact) < max(4 * se, 0.01 * exact)
    assert sphere_abs_moment(2) == pytest.approx(2 / np.pi)
    assert sphere_abs_moment(3) == pytest.approx(0.5)
    assert sphere_abs_moment(400) == pytest.approx(math.sqrt(2 / (math.pi * 400)), rel=1e-2)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="'d' parameter of sphere_abs_moment must be"):
            sphere_abs_moment(bad)


def test_energy_gradient_matches_finite_differences(rng):
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.5
    e, g = energy_distance_grad(X, Y, n_projections=40, random_state=4)
    assert e == pytest.approx(energy_distance(X, Y, n_projections=40, random_state=4,
                                              squared=True), rel=1e-12)
    h = 1e-6
    for i, j in [(0, 0), (5, 2), (29, 1)]:
        Xp = X.copy()
        Xp[i, j] += h
        Xm = X.copy()
        Xm[i, j] -= h
        fd = (energy_distance_grad(Xp, Y, n_projections=40, random_state=4)[0]
              - energy_distance_grad(Xm, Y, n_projections=40, random_state=4)[0]) / (2 * h)
        assert g[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    # 1-D: exact gradient of the pairwise formula.
    u, v = X[:, :1], Y[:, :1]
    _, g1 = energy_distance_grad(u, v)
    n, m = 30, 25
    exact = (2 / (n * m)) * np.sign(u - v.T).sum(1) - (2 / n**2) * np.sign(u - u.T).sum(1)
    np.testing.assert_allclose(g1[:, 0], exact, atol=1e-12)


def test_two_sample_test_levels():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(100, 2)), rng.normal(size=(120, 2))
    for metric in ("energy", "sliced"):
        null = two_sample_test(X, Y, metric=metric, n_permutations=99, random_state=0)
        alt = two_sample_test(X, Y * [1.0, 1.8], metric=metric, n_permutations=99,
                              random_state=0)
        assert null.pvalue > 0.05
        assert alt.pvalue <= 0.02
        assert alt.statistic > null.statistic


# ----------------------------------------------------------------- exact and Gaussian


def test_wasserstein_equals_emd(rng):
    X, Y, a, b = _case(rng, "weighted")
    for p in (1, 2, 3):
        M = cdist(X, Y) ** p
        assert wasserstein(X, Y, a, b, p=p) == pytest.approx(ot.emd2(a, b, M) ** (1 / p),
                                                             rel=1e-9)


def test_gaussian_wasserstein_vs_pot_and_samples(rng):
    A = rng.normal(size=(4, 4))
    B = rng.normal(size=(4, 4))
    C1, C2 = A @ A.T, B @ B.T + np.diag([1.0, 0, 0, 0])
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    pot = float(ot.gaussian.bures_wasserstein_distance(m1, m2, C1, C2))
    assert gaussian_wasserstein(m1, C1, m2, C2) == pytest.approx(pot, rel=1e-9)
    # Singular covariance (rank one) is fine.
    v = rng.normal(size=4)
    assert gaussian_wasserstein(m1, np.outer(v, v), m1, np.outer(v, v)) == pytest.approx(
        0.0, abs=1e-6)
    # Commuting case: ||m1 - m2||^2 + ||C1^1/2 - C2^1/2||_F^2.
    assert gaussian_wasserstein(m1, np.diag([1.0, 4.0, 9.0, 1.0]), m2,
                                np.diag([4.0, 1.0, 1.0, 1.0]), squared=True) == \
        pytest.approx(((m1 - m2) ** 2).sum() + 1 + 1 + 4, rel=1e-12)


# ----------------------------------------------------------------- bad input


def test_bad_input_messages(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="features"):
        sliced_wasserstein(X, rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="at least 1"):
        sliced_wasserstein(X, np.empty((0, 2)))
    with pytest.raises(ValueError, match="negative"):
        sliced_wasserstein(X, X, a=-np.ones(10) / 10)
    with pytest.raises(ValueError, match="sums to"):
        sliced_wasserstein(X, X, a=np.ones(10))
    with pytest.raises(ValueError, match="'p' parameter of sliced_wasserstein must be"):
        sliced_wasserstein(X, X, p=0.5)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(X, X, n_projections=0)
    with pytest.raises(ValueError, match="slices"):
        sliced_wasserstein(X, X, slices="sobol")
    with pytest.raises(ValueError, match="NaN"):
        energy_distance(X, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="cv"):
        energy_distance(X, X, slices="cv-lower")
    with pytest.raises(ValueError, match="positive semi-definite"):
        gaussian_wasserstein(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_wasserstein(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), np.eye(2))


def test_inputs_not_modified(rng):
    X, Y, a, b = _case(rng, "weighted")
    copies = [X.copy(), Y.copy(), a.copy(), b.copy()]
    sliced_wasserstein(X, Y, a, b, slices="cv-upper", random_state=0)
    energy_distance_grad(X, Y, a, b, random_state=0)
    max_sliced_wasserstein(X, Y, a, b, random_state=0, max_iter=3, n_starts=2)
    for orig, now in zip(copies, [X, Y, a, b], strict=True):
        np.testing.assert_array_equal(orig, now)


# ----------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cupy_matches_numpy(rng):
    cp = pytest.importorskip("cupy")
    X, Y, a, b = _case(rng, "weighted")
    for aa, bb, YY in [(None, None, Y), (a, b, Y), (None, None, Y[:20])]:
        ours = sliced_wasserstein(X, YY, aa, bb, random_state=0)
        gpu = sliced_wasserstein(cp.asarray(X), cp.asarray(YY),
                                 None if aa is None else cp.asarray(aa),
                                 None if bb is None else cp.asarray(bb), random_state=0)
        assert gpu == pytest.approx(ours, rel=1e-10)
    e = energy_distance(X, Y, a, b, random_state=0)
    assert energy_distance(cp.asarray(X), cp.asarray(Y), cp.asarray(a), cp.asarray(b),
                           random_state=0) == pytest.approx(e, rel=1e-10)
    e0, g0 = energy_distance_grad(X, Y, random_state=0)
    e1, g1 = energy_distance_grad(cp.asarray(X), cp.asarray(Y), random_state=0)
    assert e1 == pytest.approx(e0, rel=1e-10)
    np.testing.assert_allclose(cp.asnumpy(g1), g0, rtol=1e-8, atol=1e-12)


# ----------------------------------------------------------------- SPD


def _spd(rng, n, k, shift):
    A = rng.normal(size=(n, k, k))
    return A @ A.transpose(0, 2, 1) + shift * np.eye(k)


def test_spd_sliced_wasserstein_invariances_and_errors(rng):
    from sketchlearn.transport import spd_sliced_wasserstein

    X, Y = _spd(rng, 60, 3, 1.0), _spd(rng, 50, 3, 3.0)
    kw = dict(n_projections=400, random_state=0)
    d = spd_sliced_wasserstein(X, Y, **kw)
    assert spd_sliced_wasserstein(X, X, **kw) == 0.0
    # Inversion flips the sign of log S: same value with the same slices.
    assert spd_sliced_wasserstein(np.linalg.inv(X), np.linalg.inv(Y), **kw) == \
        pytest.approx(d, rel=1e-9)
    # Orthogonal congruence, in distribution (fresh slices, many of them).
    Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    d_big = spd_sliced_wasserstein(X, Y, n_projections=3000, random_state=1)
    assert spd_sliced_wasserstein(Q @ X @ Q.T, Q @ Y @ Q.T, n_projections=3000,
                                  random_state=2) == pytest.approx(d_big, rel=0.03)
    # Scalar multiples of the identity: log-Euclidean SW equals |log s1 - log s2| * c.
    I3 = np.eye(3)[None]
    one = spd_sliced_wasserstein(I3 * 1.0, I3 * np.e, n_projections=4000, random_state=0)
    # <A, I> = sum(theta) with theta uniform on S^2: E sum(theta)^2 = 1.
    assert one == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="positive definite"):
        spd_sliced_wasserstein(-X, Y)
    with pytest.raises(ValueError, match="non-symmetric"):
        spd_sliced_wasserstein(X + np.triu(np.ones((3, 3)), 1), Y)
    with pytest.raises(ValueError, match="same size"):
        spd_sliced_wasserstein(X, _spd(rng, 5, 2, 1.0))
