"""The CuPy kernel sums against the array-API reference (run only where CuPy sees a
GPU; skipped elsewhere by ``tests/conftest.py``).

``matvec`` computes each kernel value once per pass of up to 32 columns of V
(accumulators in shared memory): k = 1, 3 and 17 take one pass, k = 40 two, so
every column count and the pass boundary are checked; d = 100 leaves room for a
few rows of Y per tile only; ``matrix`` reads both points from global memory at any
d (it used to fall back to the reference beyond d = 64).
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.kernels import GaussianKernel, MaternKernel, SincKernel, SumKernel
from sketchlearn.kernels._reference import kernel_matrix_reference, kernel_matvec_reference
from sketchlearn.kernels._sums import kernel_matrix_op, kernel_matvec_op

pytestmark = pytest.mark.gpu

KERNELS = [
    GaussianKernel(1.5),
    MaternKernel(1.2, 1.5),  # half-integer nu: the polynomial table
    MaternKernel(1.0, 0.8),  # general nu: the quadrature
    SincKernel(2.0),  # per-coordinate product
    SumKernel([GaussianKernel(1.0), MaternKernel(0.7, 2.5)], [0.5, 1.0]),
]


@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", [1, 3, 17, 40])
@pytest.mark.parametrize("d", [3, 100])
def test_matvec_equals_reference(cp, kernel, dtype, k, d, rng):
    X = rng.normal(size=(300, d)).astype(dtype)
    Y = rng.normal(size=(211, d)).astype(dtype)  # not a multiple of any tile
    V = rng.normal(size=(211, k)).astype(dtype)
    want = kernel_matvec_reference(np, X.astype(np.float64), Y.astype(np.float64),
                                   V.astype(np.float64), kernel)
    got = kernel_matvec_op.implementation("cupy")(cp, cp.asarray(X), cp.asarray(Y),
                                                  cp.asarray(V), kernel)
    assert isinstance(got, cp.ndarray) and got.dtype == np.dtype(dtype)
    assert got.shape == (300, k)
    # The GPU computes in double from the data's values; float32 output rounding only.
    tol = 1e-6 if dtype == "float32" else 1e-11
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got.get(), want, rtol=tol, atol=tol * scale)


def test_matvec_columns_are_independent(cp, rng):
    # Column c of K V is K V[:, c]: the columns of one pass do not mix.
    kernel = GaussianKernel(1.0)
    X, Y = rng.normal(size=(130, 4)), rng.normal(size=(90, 4))
    V = rng.normal(size=(90, 17))
    impl = kernel_matvec_op.implementation("cupy")
    full = impl(cp, cp.asarray(X), cp.asarray(Y), cp.asarray(V), kernel).get()
    for c in (0, 5, 16):
        one = impl(cp, cp.asarray(X), cp.asarray(Y), cp.asarray(V[:, c:c + 1]), kernel).get()
        np.testing.assert_allclose(full[:, c], one[:, 0], rtol=1e-13, atol=1e-13)


def test_matvec_casts_integer_and_float16_input(cp, rng):
    # Integer and float16 data are cast to float64 before the call, never misread.
    kernel = GaussianKernel(3.0)
    Xi = rng.integers(-3, 4, size=(50, 3))
    Yi = rng.integers(-3, 4, size=(40, 3))
    V = rng.normal(size=(40, 2))
    want = kernel_matvec_reference(np, Xi.astype(np.float64), Yi.astype(np.float64), V, kernel)
    impl = kernel_matvec_op.implementation("cupy")
    got = impl(cp, cp.asarray(Xi), cp.asarray(Yi), cp.asarray(V), kernel)
    np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-12)
    Xh = rng.normal(size=(50, 3)).astype(np.float16)
    want = kernel_matvec_reference(np, Xh.astype(np.float64), Xh.astype(np.float64),
                                   np.ones((50, 1)), kernel)
    got = impl(cp, cp.asarray(Xh), cp.asarray(Xh), cp.ones((50, 1)), kernel)
    np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("d", [3, 70])
def test_matrix_equals_reference_at_any_d(cp, dtype, d, rng):
    kernel = SumKernel([GaussianKernel(4.0), SincKernel(3.0)], [1.0, 0.5])
    X = rng.normal(size=(60, d)).astype(dtype)
    Y = rng.normal(size=(45, d)).astype(dtype)
    want = kernel_matrix_reference(np, X.astype(np.float64), Y.astype(np.float64), kernel)
    got = kernel_matrix_op.implementation("cupy")(cp, cp.asarray(X), cp.asarray(Y), kernel)
    assert got.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got.get(), want, rtol=tol, atol=tol)


def test_device_spec_is_built_once_per_kernel(cp):
    from sketchlearn.kernels import _cupy

    kernel = MaternKernel(1.0, 0.8)
    first = _cupy._device_spec(kernel)
    again = _cupy._device_spec(MaternKernel(1.0, 0.8))  # an equal kernel: same arrays
    assert all(a is b for a, b in zip(first, again, strict=True))
