"""Unbalanced entropic transport, sinkhorn(..., reg_m=...): POT as the oracle."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn.transport import sinkhorn

ot = pytest.importorskip("ot")


def _problem(n, m=None, seed=0, d=2):
    rng = np.random.default_rng(seed)
    m = n + 7 if m is None else m
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(m, d)) + 0.5
    a = rng.uniform(0.5, 1.5, n)
    b = rng.uniform(0.5, 1.5, m)
    return X, Y, a / a.sum(), b / b.sum(), ot.dist(X, Y)


def _gkl(p, q):
    return float(np.sum(p * np.log(p / q)) - p.sum() + q.sum())


@pytest.mark.parametrize("n", [50, 200])
@pytest.mark.parametrize("reg_factor", [0.5, 0.1, 0.05])
@pytest.mark.parametrize("reg_m", [0.1, 1.0, 10.0])
def test_equals_pot_converged_plan(n, reg_factor, reg_m):
    _, _, a, b, M = _problem(n, seed=n)
    reg = reg_factor * float(np.median(M))
    P_ref, log = ot.sinkhorn_unbalanced(a, b, M, reg, reg_m, method="sinkhorn",
                                        numItermax=200_000, stopThr=1e-13, log=True)
    res = sinkhorn(a, b, M, reg=reg, reg_m=reg_m, tol=1e-13, max_iter=200_000)
    assert res.converged and res.error <= 1e-13
    assert np.abs(res.plan - P_ref).max() <= 1e-8 * P_ref.max()
    assert res.cost == pytest.approx(float(log["cost"]), rel=1e-8)
    # The full objective (generalised KL, with the mass terms), computed from the plan.
    obj = (np.sum(P_ref * M) + reg * _gkl(P_ref, np.outer(a, b))
           + reg_m * _gkl(P_ref.sum(1), a) + reg_m * _gkl(P_ref.sum(0), b))
    assert res.objective == pytest.approx(obj, rel=1e-8)


def test_pair_semi_relaxed_and_unnormalised_masses():
    _, _, a, b, M = _problem(60, seed=3)
    a, b = 2.0 * a, 0.7 * b  # unbalanced transport takes any positive masses
    reg = 0.1 * float(np.median(M))
    for reg_m in [(0.5, 3.0), (np.inf, 2.0), (1.5, float("inf"))]:
        P_ref = ot.sinkhorn_unbalanced(a, b, M, reg, reg_m, numItermax=200_000,
                                       stopThr=1e-13)
        res = sinkhorn(a, b, M, reg=reg, reg_m=reg_m, tol=1e-13, max_iter=200_000)
        assert np.abs(res.plan - P_ref).max() <= 1e-8 * P_ref.max()
    # reg_m = (inf, .): the row marginal is exact.
    res = sinkhorn(a, b, M, reg=reg, reg_m=(np.inf, 2.0), tol=1e-13, max_iter=200_000)
    assert np.allclose(res.plan.sum(1), a, rtol=1e-9, atol=0)


def test_balanced_limit_and_none_unchanged():
    _, _, a, b, M = _problem(80, seed=5)
    reg = 0.1 * float(np.median(M))
    bal = sinkhorn(a, b, M, reg=reg, tol=1e-12)
    # reg_m = inf or None is today's balanced solver, bit for bit.
    for rm in (None, np.inf, (np.inf, np.inf)):
        r = sinkhorn(a, b, M, reg=reg, tol=1e-12, reg_m=rm)
        assert np.array_equal(r.plan, bal.plan) and np.isnan(r.objective)
    # The plan approaches the balanced one at the rate O(1 / reg_m).
    gaps = []
    for rm in (1e1, 1e2, 1e3):
        r = sinkhorn(a, b, M, reg=reg, reg_m=rm, tol=1e-10, max_iter=10**5)
        gaps.append(np.abs(r.plan - bal.plan).sum() * rm)
    assert gaps[2] < 10.0 and 0.5 < gaps[2] / gaps[1] < 1.5


def test_point_clouds_on_the_fly_equal_matrix():
    X, Y, a, b, M = _problem(120, seed=7, d=3)
    reg = 0.1 * float(np.median(M))
    ref = sinkhorn(a, b, M, reg=reg, reg_m=0.5, tol=1e-12)
    # 2100 x 2100 > 2**22 pairs: costs made on the fly, never stored.
    rng = np.random.default_rng(1)
    Xb = np.vstack([X, rng.normal(size=(1980, 3))])
    Yb = np.vstack([Y, rng.normal(size=(2100 - Y.shape[0], 3))])
    big = sinkhorn(X=Xb, Y=Yb, reg=1.0, reg_m=2.0, tol=1e-9, return_plan=False)
    assert big.plan is None and big.converged
    Mb = ot.dist(Xb, Yb)
    P_ref = ot.sinkhorn_unbalanced(np.full(2100, 1 / 2100), np.full(2100, 1 / 2100), Mb,
                                   1.0, 2.0, numItermax=100_000, stopThr=1e-12)
    v = np.random.default_rng(2).uniform(size=2100)
    assert np.allclose(big.plan_matvec(v), P_ref @ v, rtol=1e-6, atol=0)
    assert big.cost == pytest.approx(float(np.sum(P_ref * Mb)), rel=1e-6)
    small = sinkhorn(a, b, X=X, Y=Y, reg=reg, reg_m=0.5, tol=1e-12)
    assert np.allclose(small.plan, ref.plan, rtol=1e-8, atol=1e-14)


def test_float32_and_no_eps_scaling():
    X, Y, a, b, M = _problem(60, seed=11)
    reg = 0.1 * float(np.median(M))
    r64 = sinkhorn(a, b, M, reg=reg, reg_m=1.0, tol=1e-12)
    r32 = sinkhorn(a, b, M.astype(np.float32), reg=reg, reg_m=1.0, tol=1e-12)
    assert r32.plan.dtype == np.float32 and r64.plan.dtype == np.float64
    assert np.allclose(r32.plan, r64.plan, rtol=1e-5, atol=1e-9)
    rn = sinkhorn(a, b, M, reg=reg, reg_m=1.0, tol=1e-12, eps_scaling=False)
    assert np.abs(rn.plan - r64.plan).max() <= 1e-9 * r64.plan.max()
    # float32 clouds take the on-the-fly path (no stored cost); plan in float32.
    rp = sinkhorn(a, b, X=X.astype(np.float32), Y=Y.astype(np.float32), reg=reg,
                  reg_m=1.0, tol=1e-12)
    assert rp.plan.dtype == np.float32
    assert np.allclose(rp.plan, r64.plan, rtol=1e-4, atol=1e-8)


def test_nonconvergence_warns_with_tolerance():
    _, _, a, b, M = _problem(50, seed=2)
    with pytest.warns(ConvergenceWarning, match=r"change of the potentials .* of [0-9.e-]+"):
        res = sinkhorn(a, b, M, reg=0.01, reg_m=10.0, tol=1e-12, max_iter=5,
                       eps_scaling=False)
    assert not res.converged and res.error > 1e-12 and res.n_iter == 5


def test_bad_input_names_argument():
    _, _, a, b, M = _problem(20, seed=0)
    Ma, Mb = M.copy(), a.copy()
    for bad in (-1.0, 0.0, np.nan, (1.0, -2.0), (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="reg_m"):
            sinkhorn(a, b, M, reg=0.1, reg_m=bad)
    for bad in ("x", [None, 1.0]):
        with pytest.raises(TypeError, match="reg_m"):
            sinkhorn(a, b, M, reg=0.1, reg_m=bad)
    with pytest.raises(ValueError, match="needs method='auto', 'scaling' or 'log'"):
        sinkhorn(a, b, M, reg=0.1, reg_m=1.0, method="sns")
    neg = a.copy()
    neg[0] = -0.1
    with pytest.raises(ValueError, match="^a has negative"):
        sinkhorn(neg, b, M, reg=0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="^b has length"):
        sinkhorn(a, b[:-1], M, reg=0.1, reg_m=1.0)
    # Balanced: weights must sum to one; unbalanced: any positive mass.
    with pytest.raises(ValueError, match="^a sums to"):
        sinkhorn(2 * a, b, M, reg=0.1)
    sinkhorn(2 * a, b, M, reg=0.1, reg_m=1.0)
    assert np.array_equal(Ma, M) and np.array_equal(Mb, a)


def test_no_silent_failure_while_converging():
    _, _, a, b, M = _problem(40, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sinkhorn(a, b, M, reg=0.05 * float(np.median(M)), reg_m=1.0)
    assert res.converged and res.error <= 1e-6


def test_array_api_strict_reference_equals_numba_path():
    xps = pytest.importorskip("array_api_strict")
    X, Y, a, b, M = _problem(30, seed=8)
    for rm in (1.0, (1.0, np.inf)):
        ref = sinkhorn(a, b, M, reg=0.5, reg_m=rm, tol=1e-10)
        r = sinkhorn(xps.asarray(a), xps.asarray(b), xps.asarray(M), reg=0.5, reg_m=rm,
                     tol=1e-10)
        assert isinstance(r.plan, type(xps.asarray(a)))
        assert np.allclose(np.asarray(r.plan), ref.plan, rtol=1e-10, atol=1e-15)
        assert r.objective == pytest.approx(ref.objective, rel=1e-10)
    r = sinkhorn(X=xps.asarray(X), Y=xps.asarray(Y), reg=0.5, reg_m=2.0, tol=1e-10)
    ref = sinkhorn(X=X, Y=Y, reg=0.5, reg_m=2.0, tol=1e-10)
    assert np.allclose(np.asarray(r.plan), ref.plan, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("reg_m", [(1.0, 1.0), (0.3, 5.0), (np.inf, 2.0), (0.7, np.inf)])
def test_translation_maximises_the_dual_and_vanishes_at_the_optimum(reg_m, rng):
    from sketchlearn.transport._unbalanced import translation

    n, m, eps = 30, 25, 0.2
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    C = rng.random((n, m))
    f, g = rng.normal(size=n), rng.normal(size=m)
    ra, rb = reg_m

    def dual(f, g):  # the unbalanced dual; a hard marginal contributes <w, h>
        def side(w, h, rho):
            return float(w @ h) if np.isinf(rho) else -rho * float(w @ (np.exp(-h / rho) - 1))
        plan = np.outer(a, b) * np.exp((f[:, None] + g[None, :] - C) / eps)
        return side(a, f, ra) + side(b, g, rb) - eps * float((plan - np.outer(a, b)).sum())

    lam = translation(np, np.log(a), np.log(b), f, g, ra, rb)
    best = dual(f + lam, g - lam)
    for d in (-1e-3, 1e-3, -0.3, 0.3):
        assert dual(f + lam + d, g - lam - d) < best
    # At the solution no translation helps.
    res = sinkhorn(a, b, C, reg=eps, reg_m=reg_m, tol=1e-13, method="log")
    assert abs(translation(np, np.log(a), np.log(b), res.f, res.g, ra, rb)) < 1e-10
