"""Blocked kernel sums against the dense matrix product, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import sketchlearn.kernels._reference as reference
from sketchlearn.kernels import (
    GaussianKernel,
    LaplaceKernel,
    MaternKernel,
    SincKernel,
    kernel_matrix,
    kernel_matvec,
    kernel_mean,
)
from sketchlearn.kernels._sums import kernel_matvec_op

from ..conftest import as_xp, to_np

KERNELS = [GaussianKernel(1.0), LaplaceKernel(0.5), MaternKernel(1.0, 0.7), SincKernel(2.0),
           GaussianKernel(0.7) + LaplaceKernel(1.5)]


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_matvec_equals_dense_product(kernel, backend, rng, monkeypatch):
    # Tiny blocks force the reference through many row and column blocks.
    monkeypatch.setattr(reference, "MAX_BLOCK_ELEMENTS", 7 * 3 * 5)
    X, Y, V = rng.normal(size=(301, 3)), rng.normal(size=(257, 3)), rng.normal(size=(257, 3))
    dense = kernel(X, Y) @ V
    got = kernel_matvec_op.implementation(backend)(np, X, Y, V, kernel)
    np.testing.assert_allclose(got, dense, rtol=1e-11, atol=1e-11)


def test_matvec_public_api_shapes_and_namespaces(xp, rng):
    X, Y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    v, V = rng.normal(size=30), rng.normal(size=(30, 2))
    K = GaussianKernel(1.0)(X, Y)
    out1 = kernel_matvec(as_xp(xp, X), as_xp(xp, Y), as_xp(xp, v), bandwidth=1.0)
    out2 = kernel_matvec(as_xp(xp, X), as_xp(xp, Y), as_xp(xp, V), bandwidth=1.0)
    assert out1.shape == (40,) and out2.shape == (40, 2)
    # Sums cancel, so the error scales with |K| @ |v|, not with the result.
    np.testing.assert_allclose(to_np(out1), K @ v, rtol=1e-12, atol=1e-13 * np.abs(v).sum())
    np.testing.assert_allclose(to_np(out2), K @ V, rtol=1e-12, atol=1e-13 * np.abs(V).sum())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_follows_X(dtype, rng):
    X = rng.normal(size=(50, 3)).astype(dtype)
    out = kernel_mean(X, bandwidth=1.0)
    assert out.dtype == np.dtype(dtype)
    expected = GaussianKernel(1.0)(X.astype(np.float64)).mean(axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == "float32" else 1e-13)


def test_kernel_mean_weights(rng):
    X, Y = rng.normal(size=(20, 2)), rng.normal(size=(15, 2))
    w = rng.random(15)
    w /= w.sum()
    np.testing.assert_allclose(kernel_mean(X, Y, weights=w, kernel="laplace", bandwidth=1.0),
                               LaplaceKernel(1.0)(X, Y) @ w, rtol=1e-13)


def test_matvec_bad_shapes(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="V has 9 rows but Y has 10 samples"):
        kernel_matvec(X, None, np.ones(9), bandwidth=1.0)
    with pytest.raises(ValueError, match="X has 2 features but Y has 3"):
        kernel_matrix(X, rng.normal(size=(4, 3)), bandwidth=1.0)


def test_inputs_are_never_written(rng):
    X, Y, v = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)), rng.normal(size=20)
    copies = [a.copy() for a in (X, Y, v)]
    for a in (X, Y, v):
        a.flags.writeable = False
    kernel_matvec(X, Y, v)
    kernel_matrix(X, Y, kernel="matern", nu=2.5)
    for a, c in zip((X, Y, v), copies, strict=True):
        np.testing.assert_array_equal(a, c)


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_kernels_equal_numba(kernel, dtype, rng):
    cp = pytest.importorskip("cupy")
    X = rng.normal(size=(1000, 5)).astype(dtype)
    Y = rng.normal(size=(700, 5)).astype(dtype)
    V = rng.normal(size=(700, 6))
    cpu = kernel_matvec_op.implementation("numba")(np, X, Y, V.astype(dtype), kernel)
    gpu = kernel_matvec_op.implementation("cupy")(cp, cp.asarray(X), cp.asarray(Y),
                                                  cp.asarray(V, dtype=dtype), kernel)
    tol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(gpu.get(), cpu, rtol=tol, atol=tol)
    assert gpu.dtype == np.dtype(dtype)
    np.testing.assert_allclose(kernel_matrix(cp.asarray(X), cp.asarray(Y), kernel=kernel).get(),
                               kernel(X, Y), rtol=tol, atol=tol)


@pytest.mark.gpu
def test_gpu_config_moves_numpy_work_and_returns_numpy(rng):
    from sketchlearn import config_context

    X = rng.normal(size=(500, 3))
    with config_context(device="gpu"):
        out = kernel_mean(X, bandwidth=1.0)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, kernel_mean(X, bandwidth=1.0), rtol=1e-11)


@pytest.mark.parametrize("n", [10, 64, 200, 333])
def test_symmetric_numba_matvec_equals_reference(n, rng):
    from sketchlearn.kernels import MaternKernel
    from sketchlearn.kernels._sums import kernel_matvec_op

    X, V = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    k = MaternKernel(1.0, 1.5)
    fast = kernel_matvec_op.implementation("numba")(np, X, X, V, k)  # Y is X: upper triangle
    ref = kernel_matvec_op.implementation("reference")(np, X, X.copy(), V, k)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12 * np.abs(V).sum())


def test_exponential_of_the_sums_is_accurate():
    from sketchlearn._jit import SUM_EXP_FLOOR, exp_for_sums

    x = -np.r_[0.0, np.logspace(-12, np.log10(-SUM_EXP_FLOOR), 20000), 700.0 + 1e-9, 1e4]
    got = np.array([exp_for_sums(v) for v in x])
    inside = x >= SUM_EXP_FLOOR
    np.testing.assert_allclose(got[inside], np.exp(x[inside]), rtol=1e-14)
    small = x >= -40.0
    np.testing.assert_allclose(got[small], np.exp(x[small]), rtol=2e-15)
    assert np.all(got[~inside] == 0.0) and np.exp(SUM_EXP_FLOOR) < 1e-304
