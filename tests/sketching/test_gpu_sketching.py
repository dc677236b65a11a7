"""The CuPy Walsh-Hadamard transform against the reference and the Hadamard matrix
(GPU only).

Sizes are chosen to run every kernel path: the shared-memory tile alone (the whole
transform fits one tile), the tile followed by two-level passes, a last single-level
pass (an odd number of levels past the tile), column chunks of a tile (more than 32
columns, the last chunk partial), one row and one column.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import hadamard

from sketchlearn.sketching import _core

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def _fwht_cupy():
    from sketchlearn.sketching import _cupy

    return _cupy.fwht


# (N, q): the tile only (64 of 512 rows); a tile of 4096 rows + one single-level pass;
# 1024-row tiles + one two-level pass, + two, + two and a single-level one; 40 columns
# (128-row tiles of 32 and 8 columns) + two two-level passes and a single-level one;
# 33 columns (chunks of 32 and 1) + three two-level passes; one row; two rows.
SIZES = [(64, 5), (8192, 1), (4096, 3), (16384, 3), (2**15, 3), (2**12, 40), (2**13, 33),
         (1, 3), (2, 2)]


@pytest.mark.parametrize("N, q", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fwht_equals_the_reference(cupy, N, q, dtype):
    rng = np.random.default_rng(N * 100 + q)
    X = rng.normal(size=(N, q)).astype(dtype)
    want = _core.fwht_reference(np, X)
    Xg = cupy.asarray(X)
    got = _fwht_cupy()(cupy, Xg)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(cupy.asnumpy(Xg), X)  # input untouched
    if dtype == np.float64:
        # the same additions in the same order, then the same division: bit for bit
        np.testing.assert_array_equal(cupy.asnumpy(got), want)
    else:
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-6,
                                   atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("N, q", [(256, 4), (1024, 40), (4096, 1)])
def test_fwht_is_the_normalised_hadamard_matrix(cupy, N, q):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, q))
    got = cupy.asnumpy(_fwht_cupy()(cupy, cupy.asarray(X)))
    H = hadamard(N).astype(np.float64) / math.sqrt(N)  # Sylvester order, as the reference
    np.testing.assert_allclose(got, H @ X, rtol=1e-12, atol=1e-12 * np.abs(got).max())
    # H / sqrt(N) is symmetric and orthogonal: applying it twice gives X back
    twice = cupy.asnumpy(_fwht_cupy()(cupy, cupy.asarray(got)))
    np.testing.assert_allclose(twice, X, rtol=1e-12, atol=1e-12)


def test_fwht_dispatch_and_input_types(cupy):
    assert "cupy" in _core.fwht.backends and _core.fwht.backend_for(cupy) == "cupy"
    X = np.arange(16.0).reshape(8, 2)
    got = _core.fwht(cupy, cupy.asarray(X))
    np.testing.assert_allclose(cupy.asnumpy(got), _core.fwht_reference(np, X), rtol=1e-15)
    # a non-contiguous float64 view and an integer array (computed in float64)
    F = cupy.asarray(np.asfortranarray(X))
    np.testing.assert_array_equal(cupy.asnumpy(_fwht_cupy()(cupy, F)),
                                  _core.fwht_reference(np, X))
    ints = _fwht_cupy()(cupy, cupy.asarray(np.arange(16).reshape(8, 2)))
    assert ints.dtype == cupy.float64
    np.testing.assert_allclose(cupy.asnumpy(ints), _core.fwht_reference(np, X), rtol=1e-15)
