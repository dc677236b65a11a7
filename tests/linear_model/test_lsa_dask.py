"""Linear stochastic approximation on Dask arrays: the rows streamed chunk by chunk.

Oracle: the in-memory fit on the computed arrays, which the chunked stream must equal
(a numeric step; the chunks are visited in order, one after the other, so the chain
sees the same samples in the same order).
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.linear_model import LSARegressor, TD0Evaluator

da = pytest.importorskip("dask.array")


@pytest.fixture
def data(rng):
    X = rng.normal(size=(500, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=500)
    return X, y


@pytest.mark.parametrize("chunks", [500, 64, (1, 200, 299)])
@pytest.mark.parametrize("n_epochs", [1, 3])
def test_lsa_regressor_streams_the_chunks_in_order(synchronous, data, chunks, n_epochs):
    X, y = data
    params = {"step": 0.05, "n_epochs": n_epochs, "richardson": True, "burn_in": 10}
    mem = LSARegressor(**params).fit(X, y)
    model = LSARegressor(**params).fit(da.from_array(X, chunks=(chunks, -1)),
                                      da.from_array(y, chunks=(chunks,)))
    np.testing.assert_allclose(model.coef_, mem.coef_, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, mem.intercept_, rtol=1e-12)
    assert model.n_updates_ == mem.n_updates_
    # partial_fit on a Dask batch continues the stream
    more = np.random.default_rng(1).normal(size=(50, 3))
    mem.partial_fit(more, more[:, 0])
    model.partial_fit(da.from_array(more, chunks=(20, -1)), more[:, 0])
    np.testing.assert_allclose(model.coef_, mem.coef_, rtol=1e-12)
    pred = model.predict(da.from_array(X, chunks=(100, -1)))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), mem.predict(X), rtol=1e-12)


@pytest.mark.parametrize("n_epochs", [1, 2])
def test_td0_trajectory_across_chunks(synchronous, rng, n_epochs):
    X = rng.normal(size=(300, 4))
    r = rng.normal(size=300)
    mem = TD0Evaluator(gamma=0.8, step=0.02, n_epochs=n_epochs).fit(X, r)
    model = TD0Evaluator(gamma=0.8, step=0.02, n_epochs=n_epochs).fit(
        da.from_array(X, chunks=(70, -1)), da.from_array(r, chunks=70))
    np.testing.assert_allclose(model.coef_, mem.coef_, rtol=1e-12)
    X_next = rng.normal(size=(300, 4))
    mem = TD0Evaluator(step=0.02).fit(X, r, X_next)
    model = TD0Evaluator(step=0.02).fit(da.from_array(X, chunks=(70, -1)), r, X_next)
    np.testing.assert_allclose(model.coef_, mem.coef_, rtol=1e-12)


def test_refusals(synchronous, data):
    X, y = data
    dX = da.from_array(X, chunks=(100, -1))
    with pytest.raises(TypeError, match="shuffle=False"):
        LSARegressor(step=0.1, shuffle=True).fit(dX, y)
    with pytest.raises(TypeError, match="n_bootstrap=0"):
        LSARegressor(step=0.1, n_bootstrap=10).fit(dX, y)
    with pytest.raises(ValueError, match="X_next has shape"):
        TD0Evaluator(step=0.1).fit(dX, y, X[:-1])
