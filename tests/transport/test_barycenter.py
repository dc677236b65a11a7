"""Fixed-support entropic barycenters: POT as the oracle."""

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn.transport import entropic_barycenter

ot = pytest.importorskip("ot")


def _histograms(n, centres=(0.2, 0.6, 0.85), widths=(0.004, 0.01, 0.002), floor=1e-3):
    x = np.linspace(0, 1, n)
    A = np.stack([np.exp(-(x - c) ** 2 / w) + floor
                  for c, w in zip(centres, widths, strict=True)], 1)
    return x, A / A.sum(0), (x[:, None] - x[None, :]) ** 2


@pytest.mark.parametrize("n", [60, 100])
@pytest.mark.parametrize("reg", [1e-2, 3e-3, 1e-3])
@pytest.mark.parametrize("k", [2, 3])
def test_equals_pot_barycenter(n, reg, k):
    x, A, M = _histograms(n)
    A = A[:, :k]
    w = np.array([0.2, 0.5, 0.3])[:k]
    w /= w.sum()
    p = entropic_barycenter(A, M, reg, w, tol=1e-12, max_iter=20_000)
    q = ot.bregman.barycenter(A, M, reg, weights=w, method="sinkhorn_log",
                              stopThr=1e-14, numItermax=20_000)
    assert np.abs(p - q).max() <= 1e-8
    assert p.sum() == pytest.approx(1.0, abs=1e-10)
    # Uniform weights: also POT's scaling-domain solver (its weighted variant was seen
    # to stop at a different point than its own log-domain one).
    p = entropic_barycenter(A, M, reg, tol=1e-12, max_iter=20_000)
    q = ot.bregman.barycenter(A, M, reg, stopThr=1e-14, numItermax=20_000)
    assert np.abs(p - q).max() <= 1e-8


@pytest.mark.parametrize("weights", [None, [0.2, 0.5, 0.3]])
def test_equals_pot_debiased(weights):
    # reg comparable to the squared grid step: exp(-M / reg) is well conditioned and
    # POT's scaling and log-domain debiased solvers agree with each other to 1e-12.
    _, A, M = _histograms(40)
    w = None if weights is None else np.array(weights)
    p = entropic_barycenter(A, M, 1e-3, w, debiased=True, tol=1e-12, max_iter=20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("sinkhorn", "sinkhorn_log"):
            q = ot.bregman.barycenter_debiased(A, M, 1e-3, weights=w, method=method,
                                               stopThr=1e-14, numItermax=20_000)
            assert np.abs(p - q).max() <= 1e-8
    plain = entropic_barycenter(A, M, 1e-3, w, tol=1e-12)
    assert not np.allclose(p, plain, atol=1e-6)


@pytest.mark.parametrize(("n", "reg", "weights"),
                         [(60, 1e-2, None), (100, 3e-3, [0.2, 0.5, 0.3]),
                          (100, 1e-3, [0.6, 0.1, 0.3]), (40, 5e-2, [0.5, 0.25, 0.25])])
def test_scaling_log_and_pot_agree(n, reg, weights):
    """Both domains, forced, against POT's scaling and log-domain barycenters."""
    _, A, M = _histograms(n)
    w = None if weights is None else np.array(weights)
    ps = entropic_barycenter(A, M, reg, w, tol=1e-12, max_iter=30_000, method="scaling")
    pl = entropic_barycenter(A, M, reg, w, tol=1e-12, max_iter=30_000, method="log")
    pa = entropic_barycenter(A, M, reg, w, tol=1e-12, max_iter=30_000)
    assert np.abs(ps - pl).max() <= 1e-8
    assert np.array_equal(pa, ps)  # auto stays in the scaling domain here
    q = ot.bregman.barycenter(A, M, reg, weights=w, method="sinkhorn_log",
                              stopThr=1e-13, numItermax=30_000)
    assert np.abs(ps - q).max() <= 1e-8
    if weights is None:
        q = ot.bregman.barycenter(A, M, reg, method="sinkhorn", stopThr=1e-13,
                                  numItermax=30_000)
        assert np.abs(ps - q).max() <= 1e-8


def test_scaling_on_rectangular_cost_with_offsets():
    """Inputs and barycenter on different grids, costs offset by a large constant per
    row (exp(-M / reg) alone would underflow): the row shift of the scaling domain
    leaves the barycenter unchanged, so it still equals the log domain."""
    rng = np.random.default_rng(5)
    xa = np.sort(rng.uniform(0, 1, 35))
    xb = np.linspace(0, 1, 50)
    A = rng.uniform(0.1, 1.0, (35, 3))
    A /= A.sum(0)
    M = (xa[:, None] - xb[None, :]) ** 2
    Mo = M + rng.uniform(5, 20, (35, 1))   # + row constants: range/reg ~ 4000
    reg = 5e-3
    ps = entropic_barycenter(A, Mo, reg, tol=1e-12, method="scaling")
    pl = entropic_barycenter(A, M, reg, tol=1e-12, method="log")
    assert np.abs(ps - pl).max() <= 1e-8


@pytest.mark.parametrize("weights", [None, [0.2, 0.5, 0.3]])
def test_debiased_scaling_and_log_agree_with_pot(weights):
    _, A, M = _histograms(40)
    w = None if weights is None else np.array(weights)
    ps = entropic_barycenter(A, M, 1e-3, w, debiased=True, tol=1e-12, max_iter=20_000,
                             method="scaling")
    pl = entropic_barycenter(A, M, 1e-3, w, debiased=True, tol=1e-12, max_iter=20_000,
                             method="log")
    assert np.abs(ps - pl).max() <= 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = ot.bregman.barycenter_debiased(A, M, 1e-3, weights=w, method="sinkhorn",
                                           stopThr=1e-14, numItermax=20_000)
    assert np.abs(ps - q).max() <= 1e-8


@pytest.mark.parametrize("debiased", [False, True])
def test_auto_falls_back_to_log_domain_when_scaling_underflows(debiased):
    """reg = 2e-4 on a grid of step 1/29: transport over distances ~0.4 needs scalings
    near exp(800), past float64. 'auto' warns and matches the log domain and POT's
    log-domain barycenter; forced 'scaling' raises; 'log' is silent."""
    _, A, M = _histograms(30, centres=(0.1, 0.5, 0.9), widths=(0.01, 0.01, 0.01))
    reg = 2e-4
    with pytest.warns(RuntimeWarning, match="continuing in the log domain"):
        pa = entropic_barycenter(A, M, reg, debiased=debiased, tol=1e-11,
                                 max_iter=20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl = entropic_barycenter(A, M, reg, debiased=debiased, tol=1e-11,
                                 max_iter=20_000, method="log")
    assert np.all(np.isfinite(pa)) and np.abs(pa - pl).max() <= 1e-8
    if not debiased:
        q = ot.bregman.barycenter(A, M, reg, method="sinkhorn_log", stopThr=1e-13,
                                  numItermax=20_000)
        assert np.abs(pa - q).max() <= 1e-8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # POT's scaling solver: NaN, silently
            bad = ot.bregman.barycenter(A, M, reg, stopThr=1e-13, numItermax=2_000)
        assert not np.all(np.isfinite(bad))
    with pytest.raises(FloatingPointError, match=r"method='scaling'\) left the float"):
        entropic_barycenter(A, M, reg, debiased=debiased, method="scaling")


def test_bad_method():
    _, A, M = _histograms(20)
    with pytest.raises(ValueError, match="method"):
        entropic_barycenter(A, M, 0.01, method="sinkhorn")


def test_fixed_point_on_rectangular_support():
    """A (n, K) on one grid, barycenter on another (M is n x m): the first-order
    condition, sum_k w_k log v_k = const for the column scalings v_k of the entropic
    plans between a_k and p (solved independently by POT)."""
    rng = np.random.default_rng(0)
    xa = np.sort(rng.uniform(0, 1, 30))
    xb = np.linspace(0, 1, 45)
    A = rng.uniform(0.1, 1.0, (30, 2))
    A /= A.sum(0)
    M = (xa[:, None] - xb[None, :]) ** 2
    reg = 0.01
    p = entropic_barycenter(A, M, reg, [0.3, 0.7], tol=1e-12)
    assert p.shape == (45,)
    for k in range(2):
        P = ot.sinkhorn(A[:, k], p, M, reg, method="sinkhorn_log", stopThr=1e-13,
                        numItermax=10**5)
        assert np.allclose(P.sum(0), p, atol=1e-10)
    # Optimality: log p = sum_k w_k log(K^T u_k) with u_k from the balanced problems.
    logs = []
    for k in range(2):
        _, log = ot.sinkhorn(A[:, k], p, M, reg, method="sinkhorn_log", stopThr=1e-13,
                             numItermax=10**5, log=True)
        logs.append(log["log_v"])
    g = 0.3 * logs[0] + 0.7 * logs[1]
    assert np.ptp(g) < 1e-6  # the column potentials average to a constant


def test_float32_follows_input_and_inputs_untouched():
    _, A, M = _histograms(50)
    A0, M0 = A.copy(), M.copy()
    p64 = entropic_barycenter(A, M, 3e-3, tol=1e-12)
    for method in ("auto", "scaling", "log"):
        p32 = entropic_barycenter(A.astype(np.float32), M.astype(np.float32), 3e-3,
                                  tol=1e-6, method=method)
        assert p64.dtype == np.float64 and p32.dtype == np.float32
        assert np.allclose(p32, p64, atol=1e-5)
    assert np.array_equal(A, A0) and np.array_equal(M, M0)


@pytest.mark.parametrize("method", ["auto", "log"])
def test_nonconvergence_warns_with_error(method):
    _, A, M = _histograms(60)
    with pytest.warns(ConvergenceWarning, match=r"after 3 iterations with an error of"):
        entropic_barycenter(A, M, 1e-3, tol=1e-12, max_iter=3, method=method)


def test_bad_input_names_argument():
    _, A, M = _histograms(30)
    with pytest.raises(ValueError, match="weights has negative"):
        entropic_barycenter(A, M, 0.01, [1.2, -0.1, -0.1])
    with pytest.raises(ValueError, match="weights sums to"):
        entropic_barycenter(A, M, 0.01, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="weights has length 2"):
        entropic_barycenter(A, M, 0.01, [0.5, 0.5])
    bad = A.copy()
    bad[:, 1] *= 2
    with pytest.raises(ValueError, match=r"A\[:, 1\] sums to"):
        entropic_barycenter(bad, M, 0.01)
    bad = A.copy()
    bad[0, 2] = -bad[0, 2]
    with pytest.raises(ValueError, match=r"A\[:, 2\] has negative"):
        entropic_barycenter(bad, M, 0.01)
    with pytest.raises(ValueError, match="A has 29 rows .* M has 30"):
        entropic_barycenter(A[:-1] / A[:-1].sum(0), M, 0.01)
    with pytest.raises(ValueError, match="debiased=True needs a square M"):
        entropic_barycenter(A, M[:, :20], 0.01, debiased=True)
    with pytest.raises(ValueError, match="reg"):
        entropic_barycenter(A, M, 0.0)
    Mn = M.copy()
    Mn[0, 0] = np.nan
    with pytest.raises(ValueError, match="M contains NaN"):
        entropic_barycenter(A, Mn, 0.01)


# ---------------------------------------------------------------- sliced barycenter

from sketchlearn.transport import sliced_barycenter  # noqa: E402


def test_sliced_barycenter_1d_is_quantile_average():
    rng = np.random.default_rng(0)
    Ys = [rng.normal(size=(200, 1)), rng.exponential(size=(200, 1)) + 3.0,
          rng.uniform(-5, -4, size=(200, 1))]
    w = np.array([0.5, 0.3, 0.2])
    Z = sliced_barycenter(Ys, w, max_iter=3, random_state=0)
    expected = sum(wk * np.sort(Y[:, 0]) for wk, Y in zip(w, Ys, strict=True))
    assert np.allclose(np.sort(Z[:, 0]), expected, atol=1e-12)


def test_sliced_barycenter_gaussians_match_bures_closed_form():
    """Sigma_k = s_k^2 Sigma: the barycenter is N(sum w m, (sum w s)^2 Sigma), the
    Bures-Wasserstein barycenter; checked within the sampling error of n = 3000."""
    rng = np.random.default_rng(1)
    Sigma = np.array([[1.0, 0.6, 0.0], [0.6, 2.0, -0.3], [0.0, -0.3, 0.5]])
    L = np.linalg.cholesky(Sigma)
    s = np.array([0.5, 1.0, 2.0])
    means = rng.normal(size=(3, 3)) * 3
    w = np.array([0.2, 0.5, 0.3])
    n = 3000
    clouds = [means[k] + s[k] * rng.normal(size=(n, 3)) @ L.T for k in range(3)]
    Z = sliced_barycenter(clouds, w, n_projections=6, max_iter=200, random_state=2)
    mean_bar = w @ means
    cov_bar = (w @ s) ** 2 * Sigma
    # Sampling error of a mean: sqrt(lambda_max (sum w s)^2 / n) ~ 0.04; allow 4x.
    assert np.abs(Z.mean(0) - mean_bar).max() < 0.15
    rel = np.linalg.norm(np.cov(Z.T) - cov_bar) / np.linalg.norm(cov_bar)
    assert rel < 0.08  # sampling error of a covariance ~ sqrt(2 / n) = 0.026
    # Independent check: the Bures fixed point S = sum w (S^1/2 S_k S^1/2)^1/2.
    from scipy.linalg import sqrtm
    S = np.eye(3)
    for _ in range(200):
        R = np.real(sqrtm(S))
        S = sum(wk * np.real(sqrtm(R @ (sk**2 * Sigma) @ R)) for wk, sk in
                zip(w, s, strict=True))
    assert np.allclose(S, cov_bar, atol=1e-8)


def test_sliced_barycenter_dtype_seed_and_bad_input():
    rng = np.random.default_rng(3)
    X1, X2 = rng.normal(size=(100, 2)), rng.normal(size=(80, 2)) + 1.0
    Z1 = sliced_barycenter([X1, X2], n_support=50, max_iter=20, random_state=4)
    Z2 = sliced_barycenter([X1, X2], n_support=50, max_iter=20, random_state=4)
    assert Z1.shape == (50, 2) and np.array_equal(Z1, Z2)
    Z32 = sliced_barycenter([X1.astype(np.float32), X2.astype(np.float32)], max_iter=5)
    assert Z32.dtype == np.float32 and Z32.shape == (100, 2)
    with pytest.raises(ValueError, match="weights has negative"):
        sliced_barycenter([X1, X2], [1.5, -0.5])
    with pytest.raises(ValueError, match="weights sums to"):
        sliced_barycenter([X1, X2], [0.5, 0.6])
    with pytest.raises(ValueError, match="clouds must be a non-empty"):
        sliced_barycenter([])
    with pytest.raises(ValueError, match=r"clouds\[1\] has 3 features"):
        sliced_barycenter([X1, rng.normal(size=(10, 3))])
    with pytest.raises(ValueError, match="n_support"):
        sliced_barycenter([X1, X2], n_support=0)
    with pytest.raises(ValueError, match="step"):
        sliced_barycenter([X1, X2], step=1.5)
    X1c = X1.copy()
    sliced_barycenter([X1, X2], max_iter=2)
    assert np.array_equal(X1, X1c)


def test_array_api_strict_reference_equals_numba_path():
    xps = pytest.importorskip("array_api_strict")
    _, A, M = _histograms(20)
    for deb in (False, True):
        for method in ("scaling", "log"):
            p = entropic_barycenter(xps.asarray(A), xps.asarray(M), 5e-3, debiased=deb,
                                    method=method)
            assert isinstance(p, type(xps.asarray(A)))
            q = entropic_barycenter(A, M, 5e-3, debiased=deb, method=method)
            assert np.abs(np.asarray(p) - q).max() < 1e-12
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 2)), rng.normal(size=(25, 2))
    Z = sliced_barycenter([xps.asarray(X), xps.asarray(Y)], max_iter=5, random_state=0)
    assert np.array_equal(np.asarray(Z), sliced_barycenter([X, Y], max_iter=5,
                                                           random_state=0))


@pytest.mark.parametrize(("n", "reg", "debiased", "tol", "fails"),
                         [(60, 3e-3, False, 1e-11, False), (40, 1e-3, True, 1e-11, False),
                          (30, 2e-4, False, 1e-11, True), (30, 2e-4, True, 1e-11, True)])
def test_scaling_loop_numba_equals_reference(n, reg, debiased, tol, fails):
    """The Numba loop of the scaling domain against its array-API reference, each
    forced: same iteration count, same barycenter and scalings; on bumps far apart at
    reg = 2e-4 both leave the float range at the same check and hand back the same
    last good scalings (the start of the log-domain fallback)."""
    from sketchlearn.transport._barycenter import scaling_barycenter_op

    if fails:
        _, A, M = _histograms(n, centres=(0.1, 0.5, 0.9), widths=(0.01, 0.01, 0.01))
    else:
        _, A, M = _histograms(n)
    shift = 0.0 if debiased else M.min(1, keepdims=True)
    Kmat = np.exp((shift - M) / reg)
    At = np.ascontiguousarray(A.T)
    w = np.array([0.2, 0.5, 0.3])
    args = (At, Kmat, w, debiased, tol, 20_000)
    with np.errstate(all="ignore"):
        it_r, bar_r, err_r, V_r, d_r, ok_r = scaling_barycenter_op.implementation(
            "reference")(np, *args)
    it_n, bar_n, err_n, V_n, d_n, ok_n = scaling_barycenter_op.implementation(
        "numba")(np, *args)
    assert (it_n, ok_n) == (it_r, ok_r)
    assert ok_r is not fails and it_r > 10   # past the first checks either way
    assert np.all(np.isfinite(V_r)) and np.all(np.isfinite(d_r))
    for got, want in ((V_n, V_r), (d_n, d_r)):
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
    if fails:
        assert not math.isfinite(err_r) and not math.isfinite(err_n)
    else:
        assert err_r <= tol and err_n <= tol
        assert np.abs(bar_n - bar_r).max() <= 1e-12 * bar_r.max()
        # and the converged barycenter is POT's (log domain, run further)
        q = ot.bregman.barycenter_debiased if debiased else ot.bregman.barycenter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = q(A, M, reg, weights=w, method="sinkhorn_log", stopThr=1e-13,
                  numItermax=20_000)
        assert np.abs(bar_n - q).max() <= 1e-8
    # Inputs untouched by either.
    assert np.array_equal(At, A.T) and np.array_equal(w, [0.2, 0.5, 0.3])


@pytest.mark.parametrize("debiased", [False, True])
def test_scaling_loop_divisions_by_zero_are_ieee_in_both_backends(debiased):
    """Histograms with entries that underflow to 0 (the gallery's bumps, n = 120,
    reg = 2e-4) make the scaling loop divide 0 by 0: NumPy gives NaN, and the
    compiled loop must too (it raised ZeroDivisionError), so both report the same
    float-range failure at the same iteration and the public function falls back."""
    from sketchlearn.transport._barycenter import scaling_barycenter_op

    x = np.linspace(0, 1, 120)
    M = (x[:, None] - x[None, :]) ** 2

    def bump(centre, width):
        return np.exp(-((x - centre) ** 2) / (2 * width**2))

    A = np.stack([bump(0.15, 0.03), bump(0.5, 0.06) + 0.6 * bump(0.62, 0.02),
                  bump(0.85, 0.04)], axis=1)
    A /= A.sum(axis=0)
    w = np.array([0.3, 0.4, 0.3])
    reg = 2e-4
    shift = 0.0 if debiased else M.min(1, keepdims=True)
    args = (np.ascontiguousarray(A.T), np.exp((shift - M) / reg), w, debiased, 1e-9, 20_000)
    with np.errstate(all="ignore"):
        ref = scaling_barycenter_op.implementation("reference")(np, *args)
    got = scaling_barycenter_op.implementation("numba")(np, *args)
    assert (got[0], got[5]) == (ref[0], ref[5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        auto = entropic_barycenter(A, M, reg, w, debiased=debiased)
    log = entropic_barycenter(A, M, reg, w, debiased=debiased, method="log")
    assert np.abs(auto - log).max() <= 1e-8 * log.max()
