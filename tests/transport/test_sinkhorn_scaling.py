"""Scaling-domain Sinkhorn (method="scaling" and the default "auto"): the converged
plans of POT and of our log domain are the oracles; the fallbacks must be visible."""

import warnings

import numpy as np
import ot
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn.transport import sinkhorn
from sketchlearn.transport._sinkhorn_scaling import (
    _relaxation,
    gibbs_op,
    plan_from_kernel_op,
    scaling_stages,
)

from ..conftest import as_xp, to_np


def _problem(rng, n=80, m=70, d=3):
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(m, d)) * 0.8 + 0.5
    a = rng.random(n) + 0.2
    b = rng.random(m) + 0.2
    M = ot.dist(X, Y)
    return a / a.sum(), b / b.sum(), M / np.median(M)


def _l1(P, a, b):
    return np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()


@pytest.mark.parametrize("shape", [(40, 30), (700, 401)])  # in place; row blocks on threads
def test_gibbs_kernel_backends_agree(rng, shape):
    C = rng.random(shape) * 50
    f, g = rng.normal(size=shape[0]), rng.normal(size=shape[1])
    for eps in (10.0, 0.1):
        ref = gibbs_op.implementation("reference")(np, C, f, g, eps)
        fast = gibbs_op.implementation("numba")(np, C, f, g, eps)
        # exp to 1e-14 relative, plus the rounding of its argument x (the kernel
        # multiplies by 1 / eps): a relative change of |x| 2^-52 at most twice.
        x = np.abs((f[:, None] + g[None, :] - C) / eps)
        assert np.all(np.abs(fast - ref) <= (1e-14 + 4.5e-16 * x) * ref)
    # Entries beyond exp(700) are reported as inf (out of range), never wrapped.
    big = gibbs_op.implementation("numba")(np, np.zeros((1, 2)), np.array([800.0]),
                                          np.array([0.0, -800.0]), 1.0)
    assert np.isinf(big[0, 0]) and big[0, 1] == 1.0


@pytest.mark.parametrize("shape", [(30, 20), (700, 401)])
def test_plan_from_kernel_backends_agree(rng, shape):
    K, C = rng.random(shape), rng.random(shape)
    u, v = rng.random(shape[0]), rng.random(shape[1])
    P = u[:, None] * K * v[None, :]
    for backend in ("reference", "numba"):
        out, cost, rows = plan_from_kernel_op.implementation(backend)(np, K.copy(), u, v, C)
        np.testing.assert_allclose(out, P, rtol=1e-15)
        assert cost == pytest.approx(float((P * C).sum()), rel=1e-13)
        np.testing.assert_allclose(rows, P.sum(1), rtol=1e-13)


@pytest.mark.parametrize("reg", [1.0, 0.1, 0.03])
def test_scaling_equals_pot_converged_plan(reg, rng):
    a, b, M = _problem(rng)
    P = ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", stopThr=1e-15,
                    numItermax=10**6)
    res = sinkhorn(a, b, M, reg=reg, tol=1e-12, method="scaling")
    np.testing.assert_allclose(res.plan, P, rtol=0, atol=1e-12)
    assert res.converged and res.error <= 1e-12
    assert _l1(res.plan, a, b) <= 1.5e-12
    # The potentials describe the same plan (the result's convention).
    Pf = a[:, None] * b[None, :] * np.exp((res.f[:, None] + res.g[None, :] - M) / reg)
    np.testing.assert_allclose(Pf, res.plan, rtol=1e-9, atol=1e-15)
    assert res.cost == pytest.approx(float((P * M).sum()), rel=1e-10)


def test_auto_is_scaling_on_a_cost_matrix(rng):
    a, b, M = _problem(rng)
    auto = sinkhorn(a, b, M, reg=0.1, tol=1e-10)
    scal = sinkhorn(a, b, M, reg=0.1, tol=1e-10, method="scaling")
    assert auto.n_iter == scal.n_iter
    np.testing.assert_array_equal(auto.plan, scal.plan)
    # A large constant on the costs changes nothing: the first kernel is shifted by
    # the smallest cost, so nothing underflows and no warning is raised.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shifted = sinkhorn(a, b, M + 1e3, reg=0.1, tol=1e-10)
    np.testing.assert_allclose(shifted.plan, auto.plan, atol=1e-12)


def test_over_relaxation_cuts_iterations(rng):
    # Plain Sinkhorn (the log domain does the same iterations) against the scaling
    # domain with its over-relaxation, to the same tol: same plan, fewer iterations.
    a, b, M = _problem(rng, 150, 140)
    plain = sinkhorn(a, b, M, reg=0.03, tol=1e-10, method="log", eps_scaling=False)
    fast = sinkhorn(a, b, M, reg=0.03, tol=1e-10, method="scaling")
    np.testing.assert_allclose(fast.plan, plain.plan, atol=1e-11)
    assert fast.n_iter < 0.8 * plain.n_iter


def test_relaxation_rule():
    # A settled linear rate lam gives the SOR optimum 2 / (1 + sqrt(1 - lam)).
    errs = [0.9**k for k in range(12)]
    w = _relaxation(errs, 1.0)
    assert w == pytest.approx(2 / (1 + np.sqrt(1 - 0.9)))
    # Unsettled rates keep w = 1; a rising error with w > 1 resets it.
    assert _relaxation([1.0, 0.5, 0.4, 0.39, 0.2, 0.19, 0.1, 0.08, 0.05, 0.04], 1.0) == 1.0
    rising = [1.0 + 0.01 * k for k in range(20)]
    assert _relaxation(rising, 1.5) == 1.0 and rising == []


def test_stages_only_when_the_kernel_range_needs_them():
    assert scaling_stages(10.0, 0.1, True) == [0.1]
    st = scaling_stages(1000.0, 0.01, True)
    assert st[0] == pytest.approx(5.0) and st[-1] == 0.01
    assert all(e2 / e1 == pytest.approx(0.25) for e1, e2 in zip(st[:-2], st[1:-1], strict=True))
    assert scaling_stages(1000.0, 0.01, False) == [0.01]


def test_underflow_switches_to_the_log_domain_with_a_warning(rng):
    # Without annealing, exp(-C / reg) underflows whole rows: the scaling domain must
    # say so and hand over to the log domain, which reaches the right plan.
    # A constant added to every cost leaves the plan unchanged (the marginals absorb
    # it), so the unshifted problem is the oracle. Zero potentials as a warm start make
    # the first kernel exp(-(M + 100) / 0.1) = 0 everywhere.
    a, b, M = _problem(rng, 50, 40)
    zero = (np.zeros(50), np.zeros(40))
    with pytest.warns(RuntimeWarning, match="log domain"):
        res = sinkhorn(a, b, M + 100.0, reg=0.1, tol=1e-10, method="scaling",
                       warm_start=zero)
    ref = sinkhorn(a, b, M, reg=0.1, tol=1e-12, method="log")
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-10)
    assert res.converged


def test_small_reg_finishes_with_newton(rng):
    # At a reg where plain Sinkhorn needs thousands of iterations, "auto" hands the
    # balanced problem to Newton and still meets tol on the true marginals.
    a, b, M = _problem(rng, 200, 180)
    res = sinkhorn(a, b, M, reg=2e-3, tol=1e-9)
    assert res.converged and res.n_newton > 0
    assert _l1(res.plan, a, b) <= 1e-9
    ref = sinkhorn(a, b, M, reg=2e-3, tol=1e-12, method="sns")
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-9)


@pytest.mark.parametrize("reg", [0.5, 0.05, 0.01])
def test_unbalanced_scaling_equals_pot(reg, rng):
    a, b, M = _problem(rng)
    a, b = 2.0 * a, 0.7 * b
    P = ot.sinkhorn_unbalanced(a, b, M, reg, 1.0, numItermax=10**6, stopThr=1e-15)
    res = sinkhorn(a, b, M, reg=reg, reg_m=1.0, tol=1e-12, method="scaling")
    np.testing.assert_allclose(res.plan, P, rtol=0, atol=1e-12)
    log = sinkhorn(a, b, M, reg=reg, reg_m=1.0, tol=1e-12, method="log")
    assert res.objective == pytest.approx(log.objective, rel=1e-10)
    # One marginal hard, one relaxed: the hard one is met.
    half = sinkhorn(a / a.sum(), b, M, reg=reg, reg_m=(np.inf, 1.0), tol=1e-12,
                    method="scaling")
    Ph = ot.sinkhorn_unbalanced(a / a.sum(), b, M, reg, (np.inf, 1.0), numItermax=10**6,
                                stopThr=1e-15)
    np.testing.assert_allclose(half.plan, Ph, rtol=0, atol=1e-11)
    np.testing.assert_allclose(half.plan.sum(1), a / a.sum(), atol=1e-11)


def test_scaling_warm_start_and_point_clouds(rng):
    X, Y = rng.normal(size=(70, 2)), rng.normal(size=(60, 2)) + 1.0
    a, b = np.full(70, 1 / 70), np.full(60, 1 / 60)
    res = sinkhorn(a, b, X=X, Y=Y, reg=0.2, tol=1e-11, method="scaling")
    ref = sinkhorn(a, b, X=X, Y=Y, reg=0.2, tol=1e-11, method="log")
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-12)
    warm = sinkhorn(a, b, X=X, Y=Y, reg=0.2, tol=1e-11, method="scaling",
                    warm_start=(res.f, res.g))
    assert warm.n_iter <= 2
    with pytest.raises(ValueError, match="dense cost matrix"):
        big = np.zeros((2**13 + 1, 1))
        sinkhorn(X=big, Y=np.zeros((2**13 + 1, 1)), reg=1.0, method="scaling")


def test_scaling_float32_and_array_api_strict(rng):
    a, b, M = _problem(rng, 40, 30)
    ref = sinkhorn(a, b, M, reg=0.2, tol=1e-11, method="scaling")
    r32 = sinkhorn(a, b, M.astype(np.float32), reg=0.2, tol=1e-6, method="scaling")
    assert r32.plan.dtype == np.float32
    np.testing.assert_allclose(r32.plan, ref.plan, atol=1e-6)
    xps = pytest.importorskip("array_api_strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strict = sinkhorn(as_xp(xps, a), as_xp(xps, b), as_xp(xps, M), reg=0.2, tol=1e-11,
                          method="scaling")
    np.testing.assert_allclose(to_np(strict.plan), ref.plan, atol=1e-13)


def test_method_errors(rng):
    a, b, M = _problem(rng, 10, 8)
    with pytest.raises(ValueError, match="'method' parameter of sinkhorn must be"):
        sinkhorn(a, b, M, method="stabilized")
    with pytest.raises(ValueError, match="reg_m"):
        sinkhorn(a, b, M, reg_m=1.0, method="sns")


@pytest.mark.parametrize("method", ["scaling", "log"])
@pytest.mark.parametrize("reg_m", [None, 1.0])
def test_iterations_running_out_before_the_last_stage_is_not_convergence(method, reg_m,
                                                                         rng):
    # A loose tol that an intermediate stage meets must not count: reg was never run.
    a, b, M = _problem(rng, 40, 30)
    with pytest.warns(ConvergenceWarning, match="before reg itself"):
        res = sinkhorn(a, b, M * 1e3, reg=1e-2, tol=0.5, max_iter=3, method=method,
                       reg_m=reg_m)
    assert not res.converged and res.error == np.inf
