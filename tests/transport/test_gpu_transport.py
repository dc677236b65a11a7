"""CuPy transport kernels and solvers against the reference and NumPy (GPU only).

The log-sum-exp kernels in both precisions (an explicit float32 cost, clouds with
the costs made on the fly for power 2 and 1) against a brute-force log-sum-exp of
the exact costs; Mirror Sinkhorn and augmented sliced Wasserstein on CuPy arrays
against the same calls on NumPy arrays; the scaling domain's Gibbs kernel and plan
against their references.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from sketchlearn.transport import (
    _sinkhorn_ops,
    _sinkhorn_scaling,
    augmented_sliced_wasserstein,
    mirror_sinkhorn,
    sinkhorn,
)

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def _brute_lse(X, Y, h, reg, power):
    """reg log sum_j exp((h_j - |x_i - y_j|^power) / reg), costs from differences in
    float64 (exact at coincident points), SciPy's log-sum-exp."""
    sq = ((X[:, None, :].astype(np.float64) - Y[None, :, :]) ** 2).sum(axis=2)
    C = sq if power == 2 else np.sqrt(sq) ** power
    return reg * logsumexp((h[None, :] - C) / reg, axis=1)


def _assert_close(got, want, rtol):
    """Values to ``rtol``; entries that cancel to near zero at the scale of the largest."""
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def _potential(rng, m, zero=0):
    h = rng.normal(size=m)
    h[rng.choice(m, size=zero, replace=False)] = -np.inf  # points of weight zero
    return h


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lse_rows_both_precisions(cupy, dtype):
    rng = np.random.default_rng(1)
    # 300 columns: more than one block of 256 threads per row; a row of -inf potentials
    # is impossible (every row sees the same h), so one h has three -inf entries.
    X, Y = rng.normal(size=(40, 2)), rng.normal(size=(300, 2)) + 0.5
    C = (((X[:, None, :] - Y[None, :, :]) ** 2).sum(axis=2)).astype(dtype)
    h = _potential(rng, 300, zero=3)
    lse = _sinkhorn_ops.lse_rows_op.implementation("cupy")
    for reg in (1.0, 0.01):
        got = lse(cupy, cupy.asarray(C), cupy.asarray(h), reg)
        assert got.dtype == cupy.float64
        want = reg * logsumexp((h[None, :] - C.astype(np.float64)) / reg, axis=1)
        _assert_close(cupy.asnumpy(got), want, 1e-12)
        ref = _sinkhorn_ops.lse_rows_op.implementation("reference")(np, C, h, reg)
        _assert_close(cupy.asnumpy(got), ref, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("power", [2.0, 1.0])
def test_lse_points_both_variants(cupy, dtype, power):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(70, 3)).astype(dtype)
    Y = (rng.normal(size=(300, 3)) + 0.3).astype(dtype)
    h = _potential(rng, 300, zero=2)
    lse = _sinkhorn_ops.lse_points_op.implementation("cupy")
    for reg in (0.5, 0.05):
        got = lse(cupy, cupy.asarray(X), cupy.asarray(Y), cupy.asarray(h), reg, power)
        assert got.dtype == cupy.float64
        _assert_close(cupy.asnumpy(got), _brute_lse(X, Y, h, reg, power), 1e-12)
    # a cloud against itself: zero costs on the diagonal, exactly
    Z = X[:50]
    got = lse(cupy, cupy.asarray(Z), cupy.asarray(Z), cupy.zeros(50), 0.2, power)
    _assert_close(cupy.asnumpy(got), _brute_lse(Z, Z, np.zeros(50), 0.2, power), 1e-12)


def _ot_problem(rng, n=30, m=25):
    X, Y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 1.0
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    M = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(axis=2)
    return a / a.sum(), b / b.sum(), M / M.max()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mirror_sinkhorn_on_cupy_equals_numpy(cupy):
    a, b, M = _ot_problem(np.random.default_rng(3))
    ref = mirror_sinkhorn(a, b, lambda P: M, max_iter=300)
    Mg = cupy.asarray(M)
    got = mirror_sinkhorn(cupy.asarray(a), cupy.asarray(b), lambda P: Mg, max_iter=300)
    assert isinstance(got.plan, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(got.plan), ref.plan, rtol=1e-9, atol=1e-12)
    assert got.gap == pytest.approx(ref.gap, rel=1e-9)
    # a gradient that depends on the plan (projection onto U(a, b) of Q)
    Q = np.outer(a, b)
    ref = mirror_sinkhorn(a, b, lambda P: P - Q, max_iter=200)
    Qg = cupy.asarray(Q)
    got = mirror_sinkhorn(cupy.asarray(a), cupy.asarray(b), lambda P: P - Qg, max_iter=200)
    np.testing.assert_allclose(cupy.asnumpy(got.plan), ref.plan, rtol=1e-9, atol=1e-12)
    # and through sinkhorn(method="mirror")
    ref = sinkhorn(a, b, M, reg=0.0, method="mirror", max_iter=200, tol=1e-12)
    got = sinkhorn(cupy.asarray(a), cupy.asarray(b), Mg, reg=0.0, method="mirror",
                   max_iter=200, tol=1e-12)
    np.testing.assert_allclose(cupy.asnumpy(got.plan), ref.plan, rtol=1e-9, atol=1e-12)
    assert got.cost == pytest.approx(ref.cost, rel=1e-9)


@pytest.mark.parametrize("p", [1, 2])
def test_augmented_sliced_wasserstein_on_cupy_equals_numpy(cupy, p):
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) * 1.5 + 0.5
    a = rng.random(60)
    a /= a.sum()
    kw = dict(p=p, n_projections=50, n_iter=10, random_state=7)
    ref = augmented_sliced_wasserstein(X, Y, a, **kw)
    got = augmented_sliced_wasserstein(cupy.asarray(X), cupy.asarray(Y), cupy.asarray(a), **kw)
    assert float(got) == pytest.approx(float(ref), rel=1e-8)


def test_gibbs_and_plan_on_cupy_equal_their_references(cupy):
    for op, examples in ((_sinkhorn_scaling.gibbs_op, _sinkhorn_scaling._gibbs_examples),
                         (_sinkhorn_scaling.plan_from_kernel_op,
                          _sinkhorn_scaling._plan_from_kernel_examples)):
        assert op.backend_for(cupy) == "cupy"
        want = examples(np, np.random.default_rng(5))
        got = examples(cupy, np.random.default_rng(5))
        for (ref_args, _), (args, _) in zip(want, got, strict=True):
            with np.errstate(over="ignore"):
                expected = op.implementation("reference")(np, *ref_args)
            result = op(cupy, *args)
            if op is _sinkhorn_scaling.gibbs_op:
                assert result.dtype == cupy.float64
                np.testing.assert_allclose(cupy.asnumpy(result), expected, rtol=1e-12)
                continue
            P, cost, rows = result
            assert P is args[0]  # the kernel is overwritten with the plan, as documented
            np.testing.assert_allclose(cupy.asnumpy(P), expected[0], rtol=1e-14)
            assert type(cost) is float and cost == pytest.approx(expected[1], rel=1e-12)
            np.testing.assert_allclose(cupy.asnumpy(rows), expected[2], rtol=1e-12)


def test_scaling_sinkhorn_on_cupy_runs_the_new_kernels(cupy):
    # The dense scaling-domain solve builds the Gibbs kernel and the plan with the
    # CuPy kernels: same plan as NumPy.
    a, b, M = _ot_problem(np.random.default_rng(6), 40, 35)
    ref = sinkhorn(a, b, M, reg=0.05, tol=1e-11)
    got = sinkhorn(cupy.asarray(a), cupy.asarray(b), cupy.asarray(M), reg=0.05, tol=1e-11)
    np.testing.assert_allclose(cupy.asnumpy(got.plan), ref.plan, rtol=1e-7, atol=1e-13)
    assert got.cost == pytest.approx(ref.cost, rel=1e-9)
