"""Kernel sums and MMD of Dask arrays against the in-memory functions.

Oracle: the in-memory ``kernel_matvec``, ``kernel_mean`` and ``mmd`` on the computed
arrays (the distributed sums add the same block products in another order, so they
agree to rounding: 1e-12 relative in float64).
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.kernels import LaplaceKernel, MaternKernel, kernel_matvec, kernel_mean
from sketchlearn.metrics import mmd

da = pytest.importorskip("dask.array")

CHUNKINGS = [(700, 300), (128, 1000), ((1, 499, 200), 37)]


@pytest.fixture
def XY(rng):
    X = rng.normal(size=(700, 3))
    Y = rng.normal(size=(530, 3)) * 1.3 + 0.4
    return X, Y


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("vector", [True, False])
def test_kernel_matvec_equals_in_memory(synchronous, XY, rng, chunks, vector):
    X, Y = XY
    V = rng.normal(size=(530,) if vector else (530, 4))
    dX = da.from_array(X, chunks=(chunks[0], -1))
    dY = da.from_array(Y, chunks=(chunks[1], -1))
    dV = da.from_array(V, chunks=(chunks[1],) + (() if vector else (-1,)))
    got = kernel_matvec(dX, dY, dV, "gaussian", bandwidth=1.1)
    assert isinstance(got, da.Array)  # lazy, chunked like X's rows
    assert got.chunks[0] == dX.chunks[0]
    want = kernel_matvec(X, Y, V, "gaussian", bandwidth=1.1)
    got = got.compute()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_kernel_matvec_median_bandwidth_numpy_v_and_y_none(synchronous, rng):
    """The default bandwidth (median heuristic on up to 1000 pooled rows) is the
    in-memory one: 1500 rows, so the seeded subset is drawn and gathered."""
    X = rng.normal(size=(1500, 2))
    V = rng.normal(size=1500)
    dX = da.from_array(X, chunks=(400, -1))
    got = kernel_matvec(dX, None, V, "matern", nu=1.5).compute()
    want = kernel_matvec(X, None, V, "matern", nu=1.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_kernel_matvec_float32_and_mixed_inputs(synchronous, XY, rng):
    """float32 Dask chunks give float32 at float32 accuracy; a NumPy ``X`` next to a
    Dask ``Y`` still gives a Dask array (Dask in, Dask out)."""
    X, Y = XY
    V = rng.normal(size=(530, 2))
    want = kernel_matvec(X, Y, V, LaplaceKernel(0.9))
    got = kernel_matvec(da.from_array(X.astype(np.float32), chunks=(100, -1)),
                        da.from_array(Y.astype(np.float32), chunks=(200, -1)), V,
                        LaplaceKernel(0.9)).compute()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())
    mixed = kernel_matvec(X, da.from_array(Y, chunks=(100, -1)), V, LaplaceKernel(0.9))
    assert isinstance(mixed, da.Array)
    np.testing.assert_allclose(mixed.compute(), want, rtol=1e-12,
                               atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_mean_equals_in_memory(synchronous, XY, rng, weighted):
    X, Y = XY
    w = rng.random(530)
    w /= w.sum()
    dX, dY = da.from_array(X, chunks=(250, -1)), da.from_array(Y, chunks=(100, -1))
    kwargs = {"weights": da.from_array(w, chunks=77)} if weighted else {}
    got = kernel_mean(dX, dY, "gaussian", **kwargs)
    assert isinstance(got, da.Array)
    want = kernel_mean(X, Y, "gaussian", **({"weights": w} if weighted else {}))
    np.testing.assert_allclose(got.compute(), want, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"unbiased": True, "squared": True},
                                    {"kernel": MaternKernel(0.8, 2.5)},
                                    {"weights": True}])
def test_mmd_equals_in_memory(synchronous, XY, rng, kwargs):
    X, Y = XY
    kwargs = dict(kwargs)
    if kwargs.pop("weights", False):
        wx, wy = rng.random(700), rng.random(530)
        kwargs.update(weights_x=wx / wx.sum(), weights_y=wy / wy.sum())
    want = mmd(X, Y, **kwargs)
    dkw = {k: (da.from_array(v, chunks=90) if k.startswith("weights") else v)
           for k, v in kwargs.items()}
    got = mmd(da.from_array(X, chunks=(300, -1)), da.from_array(Y, chunks=(128, -1)), **dkw)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_mmd_on_cluster(on_cluster, XY):
    X, Y = XY
    got = mmd(da.from_array(X, chunks=(200, -1)), da.from_array(Y, chunks=(200, -1)),
              bandwidth=0.8)
    assert got == pytest.approx(mmd(X, Y, bandwidth=0.8), rel=1e-12)


def test_bad_input_is_named(synchronous, XY):
    X, Y = XY
    dX, dY = da.from_array(X, chunks=(100, -1)), da.from_array(Y, chunks=(100, -1))
    with pytest.raises(ValueError, match="weights sums to .* not 1"):
        kernel_mean(dX, dY, weights=np.full(530, 1.0))
    with pytest.raises(ValueError, match="weights has negative"):
        kernel_mean(dX, dY, weights=np.r_[-0.5, np.full(529, 1.5 / 529)])
    with pytest.raises(ValueError, match="V has 700 rows but Y has 530"):
        kernel_matvec(dX, dY, np.ones(700))
    with pytest.raises(ValueError, match="features"):
        mmd(dX, dY[:, :2])
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        mmd(dX[dX[:, 0] > 0], dY)
    bad = X.copy()
    bad[450, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity .*rows 400 to 499"):
        mmd(da.from_array(bad, chunks=(100, -1)), dY, bandwidth=1.0)
