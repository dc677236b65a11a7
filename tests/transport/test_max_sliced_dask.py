"""Max-sliced Wasserstein distance between Dask point clouds.

Oracles: the in-memory function with the same seed when the samples are the whole
clouds (value and direction); closed forms (a cloud and its translate along an axis:
``W_p(theta) = |c theta_k|`` for every direction and every p); the 1-D distance of the
projections along the returned direction, by sorting (equal sizes) or by SciPy
(weights, ``p = 1``); a fine grid of directions in 2-D (the maximum over the circle is
at most the grid's maximum plus the Lipschitz constant times half the grid step).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from sketchlearn.transport import SketchedDistance, max_sliced_wasserstein

da = pytest.importorskip("dask.array")


def _clouds(seed=0, n=300, m=211, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = rng.standard_t(3, size=(m, d)) * np.array([1.0, 2.0, 0.5, 1.0])[:d] + 0.4
    a, b = rng.random(n), rng.random(m)
    return X, Y, a / a.sum(), b / b.sum()


def _wp_sorted(X, Y, theta, p):
    """W_p of equal-size uniform clouds along ``theta``: sorted differences."""
    x, y = np.sort(X @ theta), np.sort(Y @ theta)
    return float(np.mean(np.abs(x - y) ** p) ** (1.0 / p))


CHUNKS = [((300,), (211,)), ((37, 100, 1, 62, 100), (50, 50, 50, 61)), (64, 23)]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_whole_sample_is_the_in_memory_result(synchronous, chunks, weights, p):
    X, Y, a, b = _clouds()
    a, b = (a, b) if weights else (None, None)
    cx, cy = chunks
    dX, dY = da.from_array(X, chunks=(cx, -1)), da.from_array(Y, chunks=(cy, -1))
    da_ = None if a is None else da.from_array(a, chunks=(cx,))
    kw = {"p": p, "random_state": 3, "return_direction": True, "n_starts": 4, "max_iter": 30}
    value, theta = max_sliced_wasserstein(dX, dY, da_, b, sample_size=300, **kw)
    want, want_theta = max_sliced_wasserstein(X, Y, a, b, **kw)
    assert type(value) is float
    np.testing.assert_allclose(value, want, rtol=1e-12)
    np.testing.assert_allclose(theta, want_theta, rtol=0, atol=1e-12)
    got = max_sliced_wasserstein(dX, dY, da_, b, sample_size=300, quantiles="sketch", **kw)[0]
    assert isinstance(got, SketchedDistance) and got.error_bound == 0.0
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_generator_advances_as_in_memory(synchronous):
    """A Generator passed as random_state reaches the ascent in the state the in-memory
    function sees, and leaves it where the in-memory function leaves it."""
    X, Y, _, _ = _clouds(1)
    dX, dY = da.from_array(X, chunks=(70, -1)), da.from_array(Y, chunks=(50, -1))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    got = max_sliced_wasserstein(dX, dY, random_state=g1, n_starts=2, max_iter=10)
    want = max_sliced_wasserstein(X, Y, random_state=g2, n_starts=2, max_iter=10)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert g1.integers(2**62) == g2.integers(2**62)


@pytest.mark.parametrize("p", [1, 2])
def test_translate_along_an_axis_is_the_closed_form(synchronous, p):
    """Y = X + c e_2: along any theta the projections differ by c theta_2, so W_p(theta) =
    |c theta_2| exactly, maximal (|c|) at +-e_2. The samples of X and Y hold different
    rows, so the sample's direction is only near e_2; the refinement on the full data
    brings it closer, and never lowers the value."""
    rng = np.random.default_rng(2)
    c = 3.0
    X = rng.normal(size=(20_000, 5))
    Y = X + c * np.eye(5)[2]
    dX, dY = da.from_array(X, chunks=(3_000, -1)), da.from_array(Y, chunks=(2_500, -1))
    values, misses = [], []
    for refine in (0, 2):
        value, theta = max_sliced_wasserstein(dX, dY, p=p, random_state=0, sample_size=500,
                                              refine_steps=refine, return_direction=True)
        np.testing.assert_allclose(np.linalg.norm(theta), 1.0, rtol=1e-12)
        np.testing.assert_allclose(value, c * abs(theta[2]), rtol=1e-10)
        values.append(value)
        misses.append(1.0 - abs(theta[2]))
    assert misses[0] < 0.01  # the sample's direction: within about 8 degrees of e_2
    assert values[1] >= values[0] and misses[1] < misses[0] / 10


def test_two_dimensions_against_a_grid_of_directions(synchronous):
    """In 2-D, W_p on a grid of 4000 directions over the half circle (the full data, by
    sorting): the Dask value (the full data's W_p along its direction) is at most the
    circle's maximum, which is at most the grid's maximum plus (max |x| + max |y|) times
    half the grid step; with two rounds of refinement the returned direction is a local
    maximum: the value is at least W_p at the directions 0.05 rad away."""
    rng = np.random.default_rng(0)
    n = 3_000
    X = rng.normal(size=(n, 2)) @ np.array([[1.0, 0.4], [0.0, 0.7]])
    Y = rng.standard_t(4, size=(n, 2)) * [1.6, 0.9] + [0.2, -0.1]
    dX, dY = da.from_array(X, chunks=(700, -1)), da.from_array(Y, chunks=(900, -1))
    phis = np.linspace(0.0, np.pi, 4_001)[:-1]
    circle = np.stack([np.cos(phis), np.sin(phis)], axis=1)
    lipschitz = np.linalg.norm(X, axis=1).max() + np.linalg.norm(Y, axis=1).max()
    slack = lipschitz * (phis[1] - phis[0]) / 2
    for p in (1, 2):
        Px, Py = np.sort(circle @ X.T, axis=1), np.sort(circle @ Y.T, axis=1)
        grid = np.mean(np.abs(Px - Py) ** p, axis=1) ** (1.0 / p)
        top = float(grid.max())
        for refine in (0, 2):
            value, theta = max_sliced_wasserstein(dX, dY, p=p, random_state=0, sample_size=400,
                                                  refine_steps=refine, return_direction=True)
            np.testing.assert_allclose(value, _wp_sorted(X, Y, theta, p), rtol=1e-10)
            assert value <= top + slack
            if refine:
                phi = np.arctan2(theta[1], theta[0])
                for step in (-0.05, 0.05):
                    near = np.array([np.cos(phi + step), np.sin(phi + step)])
                    assert value >= _wp_sorted(X, Y, near, p)


def test_sampled_value_is_reproducible_across_chunkings(synchronous):
    """The sample is keyed by global row: the same seed gives the same direction and
    value whatever the chunking, and the value is W_p along that direction."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2_000, 3)) * [1.0, 2.0, 0.5]
    Y = rng.normal(size=(2_000, 3)) + [0.5, 0.0, 0.0]
    results = []
    for cx, cy in (((2_000,), (2_000,)), (333, 250), ((1, 999, 1_000), (1_500, 500))):
        dX, dY = da.from_array(X, chunks=(cx, -1)), da.from_array(Y, chunks=(cy, -1))
        results.append(max_sliced_wasserstein(dX, dY, random_state=7, sample_size=300,
                                              refine_steps=1, return_direction=True))
    for value, theta in results[1:]:
        np.testing.assert_allclose(value, results[0][0], rtol=1e-10)
        np.testing.assert_allclose(theta, results[0][1], rtol=0, atol=1e-10)
    value, theta = results[0]
    np.testing.assert_allclose(value, _wp_sorted(X, Y, theta, 2), rtol=1e-10)


def test_weighted_sampled_value_is_scipy_along_the_direction(synchronous):
    """Weights, clouds of different sizes, p = 1: the value is SciPy's weighted 1-D W_1 of
    the full projections along the returned direction."""
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(3_000, 3)), rng.exponential(size=(2_200, 3))
    a, b = rng.random(3_000), rng.random(2_200)
    a, b = a / a.sum(), b / b.sum()
    dX, dY = da.from_array(X, chunks=(500, -1)), da.from_array(Y, chunks=(700, -1))
    da_, db = da.from_array(a, chunks=(500,)), da.from_array(b, chunks=(700,))
    for refine in (0, 1):
        value, theta = max_sliced_wasserstein(dX, dY, da_, db, p=1, random_state=0,
                                              sample_size=256, refine_steps=refine,
                                              return_direction=True)
        want = wasserstein_distance(X @ theta, Y @ theta, a, b)
        np.testing.assert_allclose(value, want, rtol=1e-10)


def test_one_dimension_is_the_exact_distance(synchronous):
    rng = np.random.default_rng(6)
    u, v = rng.normal(size=900), rng.exponential(size=700)
    du, dv = (da.from_array(z[:, None], chunks=(200, 1)) for z in (u, v))
    value, theta = max_sliced_wasserstein(du, dv, p=1, sample_size=100, refine_steps=3,
                                          return_direction=True)
    assert abs(theta[0]) == 1.0
    np.testing.assert_allclose(value, wasserstein_distance(u, v), rtol=1e-10)


def test_sketch_mode_within_its_bound(synchronous):
    """quantiles="sketch": the same direction as the exact mode (it comes from the
    sample when there is no refinement), the exact value within the reported bound."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12_000, 4))
    Y = rng.normal(size=(9_000, 4)) * [1.0, 1.0, 2.0, 1.0]
    dX, dY = da.from_array(X, chunks=(2_500, -1)), da.from_array(Y, chunks=(1_700, -1))
    kw = {"p": 2, "random_state": 1, "sample_size": 1_000, "return_direction": True}
    exact, theta = max_sliced_wasserstein(dX, dY, **kw)
    for k in (64, 512):
        got, theta_s = max_sliced_wasserstein(dX, dY, quantiles="sketch", sketch_size=k, **kw)
        assert isinstance(got, SketchedDistance) and got.sketch_size == k
        assert got.projection_bounds.shape == (1,)
        np.testing.assert_array_equal(theta_s, theta)
        assert 0 < got.error_bound and abs(got - exact) <= got.error_bound
    # with a refinement round the sketches also pick the direction: the bound holds
    # against SciPy's W_1 along the direction returned
    got, theta = max_sliced_wasserstein(dX, dY, p=1, random_state=1, sample_size=1_000,
                                        refine_steps=1, quantiles="sketch", sketch_size=256,
                                        return_direction=True)
    assert abs(got - wasserstein_distance(X @ theta, Y @ theta)) <= got.error_bound


def test_on_local_cluster(on_cluster):
    """On worker processes: the synchronous scheduler's result, and SciPy's W_1 along the
    returned direction."""
    import dask

    X, Y, _, b = _clouds(8, n=1_500, m=1_200)
    dX, dY = da.from_array(X, chunks=(400, -1)), da.from_array(Y, chunks=(300, -1))
    kw = {"p": 1, "random_state": 2, "sample_size": 500, "refine_steps": 1,
          "return_direction": True}
    value, theta = max_sliced_wasserstein(dX, dY, None, b, **kw)
    with dask.config.set(scheduler="synchronous"):
        again, theta_again = max_sliced_wasserstein(dX, dY, None, b, **kw)
    np.testing.assert_allclose(value, again, rtol=1e-10)
    np.testing.assert_allclose(theta, theta_again, rtol=0, atol=1e-12)
    np.testing.assert_allclose(value, wasserstein_distance(X @ theta, Y @ theta, None, b),
                               rtol=1e-10)


# --------------------------------------------------------------------------- bad input


def test_numpy_cloud_next_to_a_dask_one(synchronous):
    """A NumPy cloud beside a Dask one is wrapped into a Dask array, as in
    sliced_wasserstein."""
    X, Y, a, b = _clouds(9, n=800, m=600)
    dX, dY = da.from_array(X, chunks=(100, -1)), da.from_array(Y, chunks=(100, -1))
    kw = {"random_state": 0, "sample_size": 200, "return_direction": True}
    both = max_sliced_wasserstein(dX, dY, a, b, **kw)
    mixed = max_sliced_wasserstein(dX, Y, a, b, **kw)
    np.testing.assert_allclose(mixed[0], both[0], rtol=1e-10)
    np.testing.assert_allclose(mixed[1], both[1], rtol=0, atol=1e-12)
    mixed = max_sliced_wasserstein(X, dY, a, b, **kw)
    np.testing.assert_allclose(mixed[0], both[0], rtol=1e-10)


def test_bad_input(synchronous):
    X, Y, a, b = _clouds(10, n=40, m=30)
    dX, dY = da.from_array(X, chunks=(10, -1)), da.from_array(Y, chunks=(10, -1))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        max_sliced_wasserstein(dX[dX[:, 0] > 0], dY)
    with pytest.raises(ValueError, match="same number of features"):
        max_sliced_wasserstein(dX, dY[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        max_sliced_wasserstein(dX[:, 0], dY[:, 0])
    with pytest.raises(ValueError, match="negative"):
        max_sliced_wasserstein(dX, dY, a - 0.1)
    with pytest.raises(ValueError, match="not 1"):
        max_sliced_wasserstein(dX, dY, None, 2 * b)
    bad = X.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN.*rows 10 to 19"):
        max_sliced_wasserstein(da.from_array(bad, chunks=(10, -1)), dY)
    sparse = np.zeros(40)
    sparse[np.argmax(X[:, 0])] = 1.0  # one weighted row, likely outside a sample of 5
    with pytest.raises(ValueError, match="all have weight 0"):
        for seed in range(20):
            max_sliced_wasserstein(dX, dY, sparse, random_state=seed, sample_size=5)
    with pytest.raises(ValueError, match="'sample_size' parameter"):
        max_sliced_wasserstein(dX, dY, sample_size=0)
    with pytest.raises(ValueError, match="'refine_steps' parameter"):
        max_sliced_wasserstein(dX, dY, refine_steps=-1)
    with pytest.raises(ValueError, match="'quantiles' parameter"):
        max_sliced_wasserstein(dX, dY, quantiles="approximate")
