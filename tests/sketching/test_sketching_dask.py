"""Sketches of Dask arrays against the in-memory sketch with the same seed.

Oracles: the in-memory ``sketch`` (same operator, since random numbers are keyed by
global row index: equal bit for bit for sampling, to rounding for the sums), the
in-memory exact leverage scores, and for the leverage-sampled sketch (same law,
other draws) the subspace-embedding property it promises in expectation.
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.sketching import SketchTransformer, leverage_scores, sketch

da = pytest.importorskip("dask.array")

CHUNKINGS = [1000, 128, 37, (3, 500, 497)]


@pytest.fixture
def X(rng):
    return rng.normal(size=(1000, 7)) * np.array([1, 2, 3, 4, 5, 6, 100.0])


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("kind", ["uniform", "countsketch", "gaussian", "srht"])
def test_row_sketch_equals_in_memory(synchronous, X, kind, chunks):
    dX = da.from_array(X, chunks=(chunks, -1))
    got = sketch(dX, kind, 64, random_state=3)
    want = sketch(X, kind, 64, random_state=3)
    assert isinstance(got, np.ndarray) and got.shape == (64, 7)
    if kind == "uniform":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())


def test_uniform_with_replacement_and_vectors(synchronous, X):
    dX = da.from_array(X, chunks=(100, -1))
    np.testing.assert_array_equal(sketch(dX, "uniform", 300, random_state=1, replace=True),
                                  sketch(X, "uniform", 300, random_state=1, replace=True))
    y = X[:, 0]
    np.testing.assert_allclose(sketch(da.from_array(y, chunks=90), "srht", 32, random_state=2),
                               sketch(y, "srht", 32, random_state=2), rtol=1e-12,
                               atol=1e-13 * np.abs(y).max())


def test_sketch_on_local_cluster(on_cluster, X):
    dX = da.from_array(X, chunks=(128, -1))
    np.testing.assert_allclose(sketch(dX, "countsketch", 50, random_state=0),
                               sketch(X, "countsketch", 50, random_state=0), rtol=1e-12,
                               atol=1e-13 * np.abs(X).max())


def test_float32_stays_float32(synchronous, X):
    got = sketch(da.from_array(X.astype(np.float32), chunks=(100, -1)), "srht", 16,
                 random_state=0)
    assert got.dtype == np.float32


def test_feature_sketch_is_lazy_and_equal(synchronous, X):
    dX = da.from_array(X, chunks=(128, -1))
    got = sketch(dX, "gaussian", 4, axis=1, random_state=0)
    assert isinstance(got, da.Array) and got.chunks[0] == dX.chunks[0]
    np.testing.assert_allclose(got.compute(), sketch(X, "gaussian", 4, axis=1, random_state=0),
                               rtol=1e-12)
    model = SketchTransformer(kind="srht", n_components=4, random_state=0).fit(X)
    Z = model.transform(dX)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), model.transform(X), rtol=1e-12)


def test_exact_leverage_scores(synchronous, X):
    got = leverage_scores(da.from_array(X, chunks=(77, -1)))
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), leverage_scores(X), rtol=1e-10, atol=1e-14)


def test_leverage_sampling_follows_the_in_memory_law(synchronous, rng):
    """Same law, other draws: the average of many sketched Gram matrices is X^T X (an
    unbiased sketch), and rows of high leverage are drawn as often as they should be."""
    X = rng.normal(size=(400, 3))
    X[7] *= 30.0  # one row of leverage near 1
    dX = da.from_array(X, chunks=(61, -1))
    lev = leverage_scores(X)
    grams = []
    seven = 0
    for seed in range(200):
        SX = sketch(dX, "leverage", 40, random_state=seed)
        grams.append(SX.T @ SX)
        seven += int(np.sum(np.isclose(np.abs(SX[:, 0] / X[7, 0]),
                                       1 / np.sqrt(40 * lev[7] / 3), rtol=1e-8)))
    mean = np.mean(grams, axis=0)
    G = X.T @ X
    assert np.linalg.norm(mean - G, 2) / np.linalg.norm(G, 2) < 0.05
    expected = 200 * 40 * lev[7] / 3
    assert abs(seven - expected) < 5 * np.sqrt(expected)


def test_not_distributed_kinds_refuse_with_alternatives(synchronous, X):
    dX = da.from_array(X, chunks=(100, -1))
    for kind in ("srdct", "orthogonal", "approx_leverage"):
        with pytest.raises(TypeError, match="countsketch"):
            sketch(dX, kind, 16, random_state=0)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        sketch(dX[dX[:, 0] > 0], "countsketch", 16, random_state=0)


@pytest.mark.gpu
def test_sketch_of_cupy_chunks_equals_numpy_chunks(synchronous, X):
    """A Dask array of CuPy chunks is sketched on the GPU, chunk by chunk, with the same
    operator: the result equals the NumPy-chunk sketch."""
    cupy = pytest.importorskip("cupy")
    dX = da.from_array(X, chunks=(128, -1))
    dG = dX.map_blocks(cupy.asarray, dtype=X.dtype)
    for kind in ("uniform", "countsketch", "gaussian", "srht"):
        np.testing.assert_allclose(sketch(dG, kind, 32, random_state=4),
                                   sketch(dX, kind, 32, random_state=4), rtol=1e-12,
                                   atol=1e-13 * np.abs(X).max())
