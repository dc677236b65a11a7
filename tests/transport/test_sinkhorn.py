import warnings

import numpy as np
import ot
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from sketchlearn.transport import (
    OTMapper,
    SlicedWassersteinKernel,
    sinkhorn,
    sinkhorn_divergence,
    sliced_wasserstein,
)
from sketchlearn.transport._sinkhorn_ops import lse_points_op, lse_rows_op

from ..conftest import as_xp, to_np


def _problem(rng, n=60, m=45, d=2):
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(m, d)) * 0.7 + 1.0
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return X, Y, a / a.sum(), b / b.sum()


def test_lse_backends_agree(rng):
    X, Y, _, _ = _problem(rng)
    M = ot.dist(X, Y)
    h = rng.normal(size=45)
    for reg in (1.0, 1e-3):
        ref = lse_rows_op.implementation("reference")(np, M, h, reg)
        np.testing.assert_allclose(lse_rows_op.implementation("numba")(np, M, h, reg), ref,
                                   rtol=1e-12, atol=1e-12)
        for power in (1.0, 2.0):
            Mp = M if power == 2 else np.sqrt(M)
            refp = lse_points_op.implementation("reference")(np, X, Y, h, reg, power)
            np.testing.assert_allclose(refp, lse_rows_op(np, Mp, h, reg), rtol=1e-9,
                                       atol=1e-9)
            np.testing.assert_allclose(
                lse_points_op.implementation("numba")(np, X, Y, h, reg, power), refp,
                rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["log", "auto"])
@pytest.mark.parametrize("reg", [1.0, 0.1, 0.02])
def test_sinkhorn_matches_pot_log_plan(reg, method, rng):
    X, Y, a, b = _problem(rng)
    M = ot.dist(X, Y)
    res = sinkhorn(a, b, M, reg=reg, tol=1e-11, method=method)
    P = ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", stopThr=1e-14, numItermax=200000)
    np.testing.assert_allclose(res.plan, P, atol=1e-9)
    if method == "log":  # the log domain ends on a column update: columns exact
        np.testing.assert_allclose(res.plan.sum(0), b, atol=1e-13)
        assert np.abs(res.plan.sum(1) - a).sum() <= 1e-11
    else:  # the scaling domain's error counts rows and columns
        assert np.abs(res.plan.sum(1) - a).sum() + np.abs(res.plan.sum(0) - b).sum() \
            <= 1e-11
    assert res.error <= 1e-11 and res.converged
    assert res.cost == pytest.approx((P * M).sum(), rel=1e-8)
    # Point-cloud path (cost on the fly) gives the same potentials up to a constant.
    res2 = sinkhorn(a, b, X=X, Y=Y, reg=reg, tol=1e-11, method=method)
    np.testing.assert_allclose(res2.plan, res.plan, atol=1e-9)
    assert res2.cost == pytest.approx(res.cost, rel=1e-8)


def test_sinkhorn_cost_tends_to_emd(rng):
    X, Y, a, b = _problem(rng)
    M = ot.dist(X, Y)
    M /= M.max()
    exact = ot.emd2(a, b, M)
    gaps = [sinkhorn(a, b, M, reg=r, tol=1e-9).cost - exact for r in (1e-1, 1e-2, 1e-3)]
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-9
    assert gaps[2] < 0.01 * exact


def test_eps_scaling_and_warm_start_save_iterations(rng):
    X, Y, a, b = _problem(rng, 120, 100)
    M = ot.dist(X, Y)
    M /= M.max()
    plain = sinkhorn(a, b, M, reg=2e-3, tol=1e-7, eps_scaling=False, method="log")
    scaled = sinkhorn(a, b, M, reg=2e-3, tol=1e-7, method="log")
    assert scaled.n_iter < plain.n_iter
    assert scaled.cost == pytest.approx(plain.cost, rel=1e-5)
    warm = sinkhorn(a, b, M, reg=2e-3, tol=1e-8, warm_start=(scaled.f, scaled.g),
                    method="log")
    assert warm.n_iter < scaled.n_iter


def test_sinkhorn_warns_with_achieved_error(rng):
    X, Y, a, b = _problem(rng)
    with pytest.warns(ConvergenceWarning, match="marginal error of"):
        res = sinkhorn(a, b, X=X, Y=Y, reg=1e-3, max_iter=5, eps_scaling=False,
                       method="log")
    assert not res.converged and res.error > 1e-6


def test_plan_matvec_and_large_plan_off(rng):
    X, Y, a, b = _problem(rng, 300, 280)
    res = sinkhorn(a, b, X=X, Y=Y, reg=0.5, return_plan=False)
    assert res.plan is None
    V = rng.normal(size=(280, 3))
    dense = sinkhorn(a, b, X=X, Y=Y, reg=0.5).plan
    np.testing.assert_allclose(res.plan_matvec(V), dense @ V, atol=1e-12)
    np.testing.assert_allclose(res.plan_matvec(np.ones(280)), a, atol=1e-6)


def test_sinkhorn_float32_and_array_api_strict(rng):
    X, Y, a, b = _problem(rng)
    res32 = sinkhorn(X=X.astype(np.float32), Y=Y.astype(np.float32), reg=0.5)
    assert res32.plan.dtype == np.float32
    xps = pytest.importorskip("array_api_strict")
    M = ot.dist(X, Y)
    ref = sinkhorn(a, b, M, reg=0.3, tol=1e-10)
    strict = sinkhorn(as_xp(xps, a), as_xp(xps, b), as_xp(xps, M), reg=0.3, tol=1e-10)
    np.testing.assert_allclose(to_np(strict.plan), ref.plan, atol=1e-12)


def test_sinkhorn_divergence_properties(rng):
    X, Y, _, _ = _problem(rng)
    assert abs(sinkhorn_divergence(X, X, reg=0.5)) < 1e-8
    s = sinkhorn_divergence(X, Y, reg=0.5)
    assert s > 0
    assert s == pytest.approx(sinkhorn_divergence(Y, X, reg=0.5), rel=1e-6)
    # Translation: S(X, X + t) = |t|^2 for the squared Euclidean cost.
    assert sinkhorn_divergence(X, X + [1.0, 1.0], reg=0.5) == pytest.approx(2.0, rel=1e-6)


def test_sinkhorn_bad_input(rng):
    X, Y, a, b = _problem(rng)
    M = ot.dist(X, Y)
    with pytest.raises(ValueError, match="reg"):
        sinkhorn(a, b, M, reg=0.0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        sinkhorn(a, b, np.where(M > 1, np.nan, M), reg=0.1)
    with pytest.raises(ValueError, match="either"):
        sinkhorn(a, b, M, X=X, Y=Y)
    with pytest.raises(ValueError, match="sums to"):
        sinkhorn(a * 2, b, M)
    with pytest.raises(ValueError, match="length"):
        sinkhorn(a[:-1], b, M)
    with pytest.raises(ValueError, match="metric"):
        sinkhorn(X=X, Y=Y, metric="cosine")
    Mc = M.copy()
    sinkhorn(a, b, M, reg=0.5)
    np.testing.assert_array_equal(M, Mc)


@pytest.mark.gpu
def test_sinkhorn_cupy_matches_numpy(rng):
    cp = pytest.importorskip("cupy")
    X, Y, a, b = _problem(rng)
    ref = sinkhorn(a, b, X=X, Y=Y, reg=0.1, tol=1e-10)
    gpu = sinkhorn(cp.asarray(a), cp.asarray(b), X=cp.asarray(X), Y=cp.asarray(Y), reg=0.1,
                   tol=1e-10)
    np.testing.assert_allclose(cp.asnumpy(gpu.plan), ref.plan, atol=1e-10)
    M = ot.dist(X, Y)
    gm = sinkhorn(cp.asarray(a), cp.asarray(b), cp.asarray(M), reg=0.1, tol=1e-10)
    assert gm.cost == pytest.approx(ref.cost, rel=1e-8)


# ----------------------------------------------------------------- estimators


def test_sw_kernel_distances_are_sliced_wasserstein(rng):
    clouds = rng.normal(size=(6, 30, 3)) * rng.uniform(0.5, 2.0, size=(6, 1, 1))
    X = clouds.reshape(6, -1)
    swk = SlicedWassersteinKernel(n_projections=40, point_dim=3, bandwidth=1.0,
                                  random_state=0).fit(X)
    K = swk.transform(X)
    D2 = -2.0 * np.log(K)
    dirs = swk.directions_
    for i, j in [(0, 1), (2, 5)]:
        sw = ot.sliced_wasserstein_distance(clouds[i], clouds[j], projections=dirs.T)
        assert D2[i, j] == pytest.approx(sw**2, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(np.diag(K), 1.0)
    assert np.all(np.linalg.eigvalsh(K) > -1e-10)


def test_sw_kernel_classifies_distributions(rng):
    narrow = rng.normal(size=(30, 40, 2))
    heavy = rng.standard_t(2.5, size=(30, 40, 2))
    X = np.concatenate([narrow, heavy]).reshape(60, -1)
    y = np.repeat([0, 1], 30)
    idx = rng.permutation(60)
    tr, te = idx[:40], idx[40:]
    swk = SlicedWassersteinKernel(point_dim=2, random_state=0)
    clf = SVC(kernel="precomputed").fit(swk.fit_transform(X[tr]), y[tr])
    assert clf.score(swk.transform(X[te]), y[te]) >= 0.8
    with pytest.raises(ValueError, match="multiple of point_dim"):
        SlicedWassersteinKernel(point_dim=3).fit(rng.normal(size=(4, 10)))


def test_ot_mapper_barycentric_projection(rng):
    X = rng.normal(size=(200, 2))
    Xt = rng.normal(size=(150, 2)) * [0.5, 2.0] + [3.0, -1.0]
    mapper = OTMapper(reg=0.01).fit(X, X_target=Xt)
    mapped = mapper.transform(X)
    res = sinkhorn(X=X, Y=Xt, reg=mapper.reg_, tol=1e-6)
    bary = (res.plan @ Xt) / res.plan.sum(1, keepdims=True)
    np.testing.assert_allclose(mapped, bary, atol=1e-4)
    # The pushed sample is much closer to the target than the source was.
    assert sliced_wasserstein(mapped, Xt, random_state=0) < 0.3 * sliced_wasserstein(
        X, Xt, random_state=0)
    # Out of sample: new source points land near the target too.
    Z = rng.normal(size=(50, 2))
    assert np.abs(mapper.transform(Z).mean(0) - [3.0, -1.0]).max() < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OTMapper(random_state=0).fit(X)  # default Gaussian target
    # checked once, by the estimator (sinkhorn inside fit does not check again)
    for name, bad in (("reg", 0.0), ("tol", -1.0), ("max_iter", True), ("metric", "cosine")):
        with pytest.raises(ValueError, match=f"'{name}' parameter of OTMapper must be"):
            OTMapper(**{name: bad}).fit(X)


@pytest.mark.parametrize("reg", [0.05, 0.01])
def test_sns_reaches_the_sinkhorn_solution_in_fewer_iterations(reg, rng):
    X, Y, a, b = _problem(rng, 150, 120)
    M = ot.dist(X, Y)
    M /= np.median(M)
    log = sinkhorn(a, b, M, reg=reg, tol=1e-9, max_iter=100_000, method="log")
    sns = sinkhorn(a, b, M, reg=reg, tol=1e-9, method="sns")
    assert sns.converged and sns.n_newton > 0
    assert sns.n_iter < log.n_iter
    np.testing.assert_allclose(sns.plan, log.plan, atol=1e-8)
    assert sns.cost == pytest.approx(log.cost, rel=1e-7)
    # Point clouds build the dense cost for the Newton phase.
    pts = sinkhorn(a, b, X=X, Y=Y, reg=0.05 * np.median(ot.dist(X, Y)), tol=1e-9,
                   method="sns")
    assert pts.converged
    with pytest.raises(ValueError, match="method"):
        sinkhorn(a, b, M, method="newton")
