"""Sliced Wasserstein and energy distances between Dask point clouds.

Oracles: the in-memory functions on the computed arrays with the same seed (same
directions), which the exact mode (distributed sample sort) must equal to rounding
for any chunking and any number of buckets; for the sketch mode, its own certain
error bound against that exact value; for the quantile sketch itself, brute-force
CDFs of the summarised sample.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import sketchlearn.transport._sliced_dask as sliced_dask
from sketchlearn.transport import (
    SketchedDistance,
    distributional_sliced_wasserstein,
    energy_distance,
    energy_distance_grad,
    sliced_wasserstein,
)
from sketchlearn.transport._quantile_sketch import DEFAULT_SKETCH_SIZE, ProjectedQuantileSketch

from ..conftest import one_thread_cluster

da = pytest.importorskip("dask.array")


@pytest.fixture
def small_buckets(monkeypatch):
    """Buckets of at most 400 projected values: the sort cuts these clouds into 10 to
    40 buckets (the default would hold them in one)."""
    monkeypatch.setattr(sliced_dask, "_BUCKET_ELEMENTS", 400)


def _clouds(seed=0, n=300, m=211, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = rng.standard_t(3, size=(m, d)) * np.array([1.0, 2.0, 0.5, 1.0])[:d] + 0.4
    a = rng.random(n)
    b = rng.random(m)
    return X, Y, a / a.sum(), b / b.sum()


def _weights(kind, a, b):
    return {"none": (None, None), "both": (a, b), "b": (None, b)}[kind]


# Chunkings of X and Y: uneven, and different for the two clouds.
CHUNKS = [((300,), (211,)), ((37, 100, 1, 62, 100), (50, 50, 50, 61)), (64, 23)]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("weights", ["none", "both", "b"])
@pytest.mark.parametrize("p", [1, 2])
def test_exact_sliced_wasserstein_equals_in_memory(synchronous, small_buckets, chunks,
                                                    weights, p):
    X, Y, a, b = _clouds()
    a, b = _weights(weights, a, b)
    cx, cy = chunks
    dX, dY = da.from_array(X, chunks=(cx, -1)), da.from_array(Y, chunks=(cy, -1))
    da_ = None if a is None else da.from_array(a, chunks=(cx,))
    got = sliced_wasserstein(dX, dY, da_, b, p=p, n_projections=12, random_state=3)
    want = sliced_wasserstein(X, Y, a, b, p=p, n_projections=12, random_state=3)
    assert type(got) is float
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("weights", ["none", "both", "b"])
def test_exact_energy_equals_in_memory(synchronous, small_buckets, chunks, weights):
    X, Y, a, b = _clouds(1)
    a, b = _weights(weights, a, b)
    cx, cy = chunks
    dX, dY = da.from_array(X, chunks=(cx, -1)), da.from_array(Y, chunks=(cy, -1))
    for squared in (False, True):
        got = energy_distance(dX, dY, a, b, n_projections=12, random_state=5, squared=squared)
        want = energy_distance(X, Y, a, b, n_projections=12, random_state=5, squared=squared)
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_exact_one_row_chunks_and_equal_sizes(synchronous, monkeypatch):
    """One-row chunks, equal sizes (the in-memory sort path), tied values, and
    buckets of about two rows each."""
    monkeypatch.setattr(sliced_dask, "_BUCKET_ELEMENTS", 12)
    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(24, 3)), 1)
    Y = np.round(rng.normal(size=(24, 3)) + 0.5, 1)
    X[:5] = X[5]  # repeated points: tied projections on every direction
    dX, dY = da.from_array(X, chunks=(1, -1)), da.from_array(Y, chunks=(5, -1))
    for p in (1, 2):
        np.testing.assert_allclose(
            sliced_wasserstein(dX, dY, p=p, n_projections=6, random_state=0),
            sliced_wasserstein(X, Y, p=p, n_projections=6, random_state=0), rtol=1e-10)
    np.testing.assert_allclose(energy_distance(dX, dY, n_projections=6, random_state=0),
                               energy_distance(X, Y, n_projections=6, random_state=0),
                               rtol=1e-10)


def test_exact_buckets_bound_each_direction_segment(synchronous, monkeypatch):
    """A bucket holds at most ``_SEGMENT_ELEMENTS`` values of one direction, however few
    directions share it (the merge of a direction's breakpoints holds a dozen arrays of
    that size): one direction of 300 values in segments of 40 takes 8 buckets, and the
    value is still the in-memory one."""
    monkeypatch.setattr(sliced_dask, "_BUCKET_ELEMENTS", 10**9)
    monkeypatch.setattr(sliced_dask, "_SEGMENT_ELEMENTS", 40)
    assert sliced_dask._n_buckets(1, 300) == 8 and sliced_dask._n_buckets(5, 30) == 1
    X, Y, a, b = _clouds(6)
    dX, dY = da.from_array(X, chunks=(64, -1)), da.from_array(Y, chunks=(50, -1))
    for p in (1, 2):
        np.testing.assert_allclose(
            sliced_wasserstein(dX, dY, a, b, p=p, n_projections=1, random_state=2),
            sliced_wasserstein(X, Y, a, b, p=p, n_projections=1, random_state=2), rtol=1e-10)
    np.testing.assert_allclose(energy_distance(dX, dY, n_projections=1, random_state=2),
                               energy_distance(X, Y, n_projections=1, random_state=2),
                               rtol=1e-10)


@pytest.mark.parametrize("weights", ["none", "both"])
def test_exact_sorts_a_group_of_directions_at_a_time(synchronous, small_buckets, monkeypatch,
                                                     weights):
    """When the projected values of all directions do not fit in the memory the sort
    may keep, the directions are sorted a few at a time (each group one more read of
    the clouds): the same value as in memory, with the sorts counted."""
    X, Y, a, b = _clouds(4)
    a, b = _weights(weights, a, b)
    per_direction = (X.shape[0] + Y.shape[0]) * (24 if a is not None else 16)
    monkeypatch.setattr(sliced_dask, "memory_for_cache", lambda: 3.5 * per_direction)
    sorts = []
    for name in ("_sorted_wpp", "_sorted_energy"):
        original = getattr(sliced_dask, name)
        monkeypatch.setattr(sliced_dask, name, lambda *args, f=original, name=name: (
            sorts.append((name, args[4].shape[0])), f(*args))[1])
    dX, dY = da.from_array(X, chunks=(64, -1)), da.from_array(Y, chunks=(50, -1))
    for p in (1, 2):
        np.testing.assert_allclose(
            sliced_wasserstein(dX, dY, a, b, p=p, n_projections=11, random_state=7),
            sliced_wasserstein(X, Y, a, b, p=p, n_projections=11, random_state=7), rtol=1e-10)
    np.testing.assert_allclose(energy_distance(dX, dY, a, b, n_projections=11, random_state=7),
                               energy_distance(X, Y, a, b, n_projections=11, random_state=7),
                               rtol=1e-10)
    groups = [3, 3, 3, 2]  # 11 directions, 3 a sort
    assert sorts == [("_sorted_wpp", g) for g in groups] * 2 + [("_sorted_energy", g)
                                                                 for g in groups]


@pytest.mark.parametrize("slices", ["orthogonal", "qmc", "rqmc"])
def test_exact_other_slices_and_standard_error(synchronous, small_buckets, slices):
    X, Y, a, b = _clouds(3)
    dX, dY = da.from_array(X, chunks=(70, -1)), da.from_array(Y, chunks=(90, -1))
    got = sliced_wasserstein(dX, dY, a, b, n_projections=16, slices=slices, random_state=1,
                             return_std=True)
    want = sliced_wasserstein(X, Y, a, b, n_projections=16, slices=slices, random_state=1,
                              return_std=True)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    got = energy_distance(dX, dY, n_projections=16, slices=slices, random_state=1,
                          return_std=True)
    want = energy_distance(X, Y, n_projections=16, slices=slices, random_state=1,
                           return_std=True)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_exact_one_dimension_is_scipy(synchronous, small_buckets):
    from scipy.stats import energy_distance as scipy_energy
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(4)
    u, v = rng.normal(size=250), rng.exponential(size=180)
    du, dv = (da.from_array(z[:, None], chunks=(41, 1)) for z in (u, v))
    np.testing.assert_allclose(energy_distance(du, dv), scipy_energy(u, v), rtol=1e-10)
    np.testing.assert_allclose(sliced_wasserstein(du, dv, p=1, n_projections=1),
                               wasserstein_distance(u, v), rtol=1e-10)


def test_float32_clouds(synchronous, small_buckets):
    X, Y, _, _ = _clouds(5)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    dX, dY = da.from_array(X32, chunks=(77, -1)), da.from_array(Y32, chunks=(50, -1))
    # float32 products per chunk against the in-memory kernel's: rounding of float32
    np.testing.assert_allclose(sliced_wasserstein(dX, dY, n_projections=8, random_state=0),
                               sliced_wasserstein(X32, Y32, n_projections=8, random_state=0),
                               rtol=1e-5)
    np.testing.assert_allclose(energy_distance(dX, dY, n_projections=8, random_state=0),
                               energy_distance(X32, Y32, n_projections=8, random_state=0),
                               rtol=1e-5)


def test_numpy_cloud_next_to_a_dask_one(synchronous, small_buckets):
    """A NumPy cloud beside a Dask one is wrapped into a Dask array (documented)."""
    X, Y, a, b = _clouds(6)
    dX = da.from_array(X, chunks=(64, -1))
    np.testing.assert_allclose(sliced_wasserstein(dX, Y, a, b, random_state=0),
                               sliced_wasserstein(X, Y, a, b, random_state=0), rtol=1e-10)
    np.testing.assert_allclose(energy_distance(Y, dX, b, a, random_state=0),
                               energy_distance(Y, X, b, a, random_state=0), rtol=1e-10)


def test_exact_on_local_cluster(on_cluster, small_buckets):
    X, Y, a, b = _clouds(7)
    dX, dY = da.from_array(X, chunks=(60, -1)), da.from_array(Y, chunks=(45, -1))
    np.testing.assert_allclose(sliced_wasserstein(dX, dY, a, b, p=2, random_state=2,
                                                  n_projections=10),
                               sliced_wasserstein(X, Y, a, b, p=2, random_state=2,
                                                  n_projections=10), rtol=1e-10)
    np.testing.assert_allclose(energy_distance(dX, dY, random_state=2, n_projections=10),
                               energy_distance(X, Y, random_state=2, n_projections=10),
                               rtol=1e-10)


# --------------------------------------------------------------------------- sketch


def _sketch_data(name, n=12_000, m=9_000, d=5):
    rng = np.random.default_rng(11)
    if name == "gaussian":
        return rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.3 + 0.2, None, None
    if name == "heavy":  # Student t with 2 degrees of freedom: infinite variance
        return rng.standard_t(2, size=(n, d)), rng.standard_t(2, size=(m, d)) + 0.5, None, None
    a, b = rng.random(n), rng.random(m)  # weighted, skewed clouds
    return (rng.exponential(size=(n, d)), rng.exponential(size=(m, d)) * 1.5,
            a / a.sum(), b / b.sum())


@pytest.mark.parametrize("data", ["gaussian", "heavy", "weighted"])
def test_sketch_within_its_bound_and_bound_shrinks(synchronous, data):
    X, Y, a, b = _sketch_data(data)
    dX, dY = da.from_array(X, chunks=(2_500, -1)), da.from_array(Y, chunks=(1_700, -1))
    exact = {p: sliced_wasserstein(X, Y, a, b, p=p, n_projections=16, random_state=0)
             for p in (1, 2)}
    exact_e = energy_distance(X, Y, a, b, n_projections=16, random_state=0)
    previous = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small k: bound above the MC error
        for k in (32, 128, 512):
            for p in (1, 2):
                got = sliced_wasserstein(dX, dY, a, b, p=p, n_projections=16, random_state=0,
                          quantiles="sketch", sketch_size=k)
                assert isinstance(got, SketchedDistance) and got.sketch_size == k
                assert abs(got - exact[p]) <= got.error_bound, (k, p, got, exact[p])
                assert got.projection_bounds.shape == (16,)
                # the per-direction bounds shrink (the bound on SW_p itself is capped
                # by the value where they exceed it: heavy tails with p = 2)
                if p in previous:
                    assert got.projection_bounds.mean() < previous[p]
                previous[p] = got.projection_bounds.mean()
            got = energy_distance(dX, dY, a, b, n_projections=16, random_state=0,
                                  quantiles="sketch", sketch_size=k)
            assert abs(got - exact_e) <= got.error_bound, (k, got, exact_e)
            if "e" in previous:
                assert got.projection_bounds.mean() < previous["e"]
            previous["e"] = got.projection_bounds.mean()


def test_sketch_default_size_below_monte_carlo_error(synchronous):
    """The default sketch size on Gaussian clouds: W_1's bound under the standard
    error of 100 slices, and no warning."""
    X, Y, _, _ = _sketch_data("gaussian", n=40_000, m=30_000, d=10)
    dX, dY = da.from_array(X, chunks=(10_000, -1)), da.from_array(Y, chunks=(10_000, -1))
    exact, se = sliced_wasserstein(X, Y, p=1, random_state=1, return_std=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        got, se_sketch = sliced_wasserstein(dX, dY, p=1, random_state=1, return_std=True,
                                            quantiles="sketch")
    assert got.sketch_size == DEFAULT_SKETCH_SIZE
    assert got.error_bound < se
    assert abs(got - exact) <= got.error_bound
    np.testing.assert_allclose(se_sketch, se, rtol=0.05)


@pytest.mark.slow
def test_sketch_default_size_below_monte_carlo_error_on_heavy_tails(synchronous):
    """W_2 between N(0, I) and a scaled, shifted Student-t(5) in 16-D (the benchmark's
    clouds, 2^20 points each): the default sketch's bound under the standard error of
    16 slices, which a bound by the whole range of the data was not (the exact tails
    and the localised bound of sketch_error_bounds)."""
    rng = np.random.default_rng(12)
    n, d = 2**20, 16
    scale, shift = rng.uniform(0.5, 2.0, size=d), rng.normal(scale=0.5, size=d)
    X = rng.normal(size=(n, d))
    Y = rng.standard_t(5, size=(n, d)) * np.sqrt(3 / 5) * scale + shift
    dX, dY = da.from_array(X, chunks=(2**18, -1)), da.from_array(Y, chunks=(2**18, -1))
    exact, se = sliced_wasserstein(X, Y, p=2, n_projections=16, random_state=2,
                                   return_std=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        got = sliced_wasserstein(dX, dY, p=2, n_projections=16, random_state=2,
                                 quantiles="sketch")
    assert abs(got - exact) <= got.error_bound < se


def test_sketch_warns_when_its_bound_exceeds_the_monte_carlo_error(synchronous):
    X, Y, _, _ = _sketch_data("gaussian", n=4_000, m=3_000)
    dX, dY = da.from_array(X, chunks=(1_000, -1)), da.from_array(Y, chunks=(1_000, -1))
    with pytest.warns(UserWarning, match="larger sketch_size"):
        sliced_wasserstein(dX, dY, p=1, random_state=0, quantiles="sketch", sketch_size=8)


def test_sketch_is_reproducible(synchronous):
    X, Y, _, _ = _sketch_data("heavy", n=5_000, m=4_000)
    dX, dY = da.from_array(X, chunks=(700, -1)), da.from_array(Y, chunks=(900, -1))
    kw = {"p": 1, "n_projections": 8, "quantiles": "sketch", "sketch_size": 64}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = sliced_wasserstein(dX, dY, random_state=4, **kw)
        again = sliced_wasserstein(dX, dY, random_state=4, **kw)
    assert float(first) == float(again) and first.error_bound == again.error_bound


def test_sketch_on_local_cluster(on_cluster):
    X, Y, _, _ = _sketch_data("gaussian", n=8_000, m=6_000)
    dX, dY = da.from_array(X, chunks=(2_000, -1)), da.from_array(Y, chunks=(1_500, -1))
    exact = sliced_wasserstein(X, Y, p=1, n_projections=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = sliced_wasserstein(dX, dY, p=1, n_projections=20, random_state=0, quantiles="sketch",
                  sketch_size=256)
    assert abs(got - exact) <= got.error_bound


def _cdfs(values, weights, V, W, total):
    """The sample's and the sketch's CDFs on the union of their values."""
    grid = np.union1d(values, V)
    order = np.argsort(values)
    cum = np.concatenate([[0.0], np.cumsum(weights[order])])
    F = cum[np.searchsorted(values[order], grid, side="right")] / total
    cum_s = np.concatenate([[0.0], np.cumsum(W)])
    return grid, F, cum_s[np.searchsorted(V, grid, side="right")] / total


@pytest.mark.parametrize("weighted", [False, True])
def test_quantile_sketch_bounds_hold_by_brute_force(weighted):
    """Merged sketches of unequal chunks: total weight exact, extremes exact, and the
    tracked bounds above the true int |F_sketch - F| dx and sup |F_sketch - F|."""
    rng = np.random.default_rng(8)
    P = np.concatenate([rng.standard_t(2, size=(3, 6000)),
                        rng.exponential(size=(1, 6000))])
    w = rng.random(6000) if weighted else None
    summary = ProjectedQuantileSketch(lambda Pb, wb, start: (Pb, wb), k=64, seed=1)
    cuts = [0, 1, 700, 2500, 2501, 6000]
    parts = [summary.partial(P[:, s:e], None if w is None else w[s:e], s, i)
             for i, (s, e) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))]
    sk = summary.merge(summary.merge(*parts[:3]), summary.merge(*parts[3:]))
    weights = np.ones(6000) if w is None else w
    np.testing.assert_allclose(sk.total, weights.sum(), rtol=1e-12)
    np.testing.assert_array_equal(sk.bottom[0][:, 0], P.min(axis=1))
    np.testing.assert_array_equal(sk.top[0][:, -1], P.max(axis=1))
    assert sk.n_items < 4 * 64 + 2 * summary.tail
    V, W = sk.sorted_items()
    b, t, beta, tau = sk.inner_range()
    for l in range(P.shape[0]):
        grid, F, Fs = _cdfs(P[l], weights, V[l], W[l], sk.total)
        l1 = float(np.sum(np.abs(F - Fs)[:-1] * np.diff(grid)))
        assert 0 < l1 <= sk.l1[l] / sk.total * (1 + 1e-12)
        assert np.max(np.abs(F - Fs)) <= sk.rank[l] / sk.total * (1 + 1e-12)
        # exact tails: the tail smallest and largest values with their weights, every
        # compacted item between them, and the CDF exact outside [b, t)
        order = np.argsort(P[l])
        np.testing.assert_array_equal(sk.bottom[0][l], P[l, order[:summary.tail]])
        np.testing.assert_array_equal(sk.top[0][l], P[l, order[-summary.tail:]])
        np.testing.assert_array_equal(sk.bottom[1][l], weights[order[:summary.tail]])
        np.testing.assert_allclose([beta[l], tau[l]],
                                   [weights[order[:summary.tail]].sum() / sk.total,
                                    weights[order[-summary.tail:]].sum() / sk.total])
        for values, _ in sk.levels:
            assert np.all((values[l] >= b[l]) & (values[l] <= t[l]))
        outside = (grid < b[l]) | (grid >= t[l])
        np.testing.assert_allclose(Fs[outside], F[outside], rtol=0, atol=1e-12)


def test_quantile_sketch_keeps_a_small_sample_whole():
    """At most 2 tail items: all in the tails, nothing compacted, no error."""
    rng = np.random.default_rng(3)
    P = rng.standard_t(2, size=(2, 90))
    summary = ProjectedQuantileSketch(lambda Pb, wb, start: (Pb, wb), k=16, seed=0, tail=50)
    sk = summary.merge(summary.partial(P[:, :30], None, 0, 0),
                       summary.partial(P[:, 30:], None, 30, 1))
    V, W = sk.sorted_items()
    np.testing.assert_array_equal(V, np.sort(P, axis=1))
    np.testing.assert_array_equal(W, np.ones((2, 90)))
    assert np.all(sk.l1 == 0) and np.all(sk.rank == 0)


def _quantile(values, weights, total, t):
    """The sample's quantile function ``inf {x : F(x) >= t}`` at ranks ``t``, brute force."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / total
    return np.array([values[order][min(np.argmax(cum >= u - 1e-15), len(cum) - 1)]
                     if u > 0 else values[order][0] for u in t])


@pytest.mark.parametrize("weighted", [False, True])
def test_rank_grid_bounds_both_quantile_functions(weighted):
    """On every cell of ranks, the sample's and the sketch's quantiles lie in the cell's
    [lo, hi], and differ by at most its spread (zero in the exact tails)."""
    rng = np.random.default_rng(5)
    P = rng.standard_t(3, size=(2, 5000))
    w = rng.random(5000) if weighted else np.ones(5000)
    summary = ProjectedQuantileSketch(lambda Pb, wb, start: (Pb, wb), k=32, seed=2)
    sk = summary.merge(*[summary.partial(P[:, s:s + 1000], w[s:s + 1000], s, s // 1000)
                         for s in range(0, 5000, 1000)])
    edges = np.tile(np.linspace(0.0, 1.0, 65), (2, 1))
    grid = sliced_dask._RankGrid(sk, edges)
    V, W = (np.asarray(A) for A in sk.sorted_items())
    _, _, beta, tau = sk.inner_range()
    for l in range(2):
        for c in range(64):
            t = np.linspace(edges[l, c], edges[l, c + 1], 41)[1:]  # ranks in (u0, u1]
            q = _quantile(P[l], w, sk.total, t)
            qs = _quantile(V[l], W[l], sk.total, t)
            for x in (q, qs):
                assert np.all((x >= grid.lo[l, c]) & (x <= grid.hi[l, c])), (l, c)
            assert np.max(np.abs(q - qs)) <= grid.spread[l, c] + 1e-12, (l, c)
            if edges[l, c + 1] <= beta[l] or edges[l, c] > 1.0 - tau[l]:
                assert grid.spread[l, c] == 0.0


def test_split_bound_against_the_worst_placement():
    """The split bound is at least int g^(p-1) delta for any delta <= s cellwise with
    int delta <= e (the worst puts delta = s on the cells of largest g), and it is the
    smaller of the two extremes' sums at most."""
    rng = np.random.default_rng(0)
    for p in (1.0, 2.0, 3.0):
        g, s = rng.exponential(size=(3, 50)), rng.exponential(size=(3, 50))
        e, cell = np.array([0.05, 0.3, 5.0]), np.full(3, 0.02)
        bound = sliced_dask._split_bound(g, s, e, p, cell)
        for l in range(3):
            order = np.argsort(-g[l])
            left, worst = e[l], 0.0
            for i in order:  # greedy: fill the cells of largest g first
                take = min(s[l, i] * cell[l], left)
                worst += g[l, i] ** (p - 1) * take
                left -= take
            assert worst <= bound[l] * (1 + 1e-12)
            assert bound[l] <= min(np.max(g[l]) ** (p - 1) * e[l],
                                   np.sum(g[l] ** (p - 1) * s[l] * cell[l])) * (1 + 1e-12)


# --------------------------------------------------------------------------- bad input


def test_bad_input(synchronous):
    X, Y, a, b = _clouds(9, n=40, m=30)
    dX, dY = da.from_array(X, chunks=(10, -1)), da.from_array(Y, chunks=(10, -1))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        sliced_wasserstein(dX[dX[:, 0] > 0], dY)
    with pytest.raises(ValueError, match="same number of features"):
        sliced_wasserstein(dX, dY[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        energy_distance(dX[:, 0], dY[:, 0])
    with pytest.raises(ValueError, match="negative"):
        sliced_wasserstein(dX, dY, a - 0.1)
    with pytest.raises(ValueError, match="not 1"):
        sliced_wasserstein(dX, dY, None, 2 * b)
    with pytest.raises(ValueError, match="shape"):
        energy_distance(dX, dY, a[:-1])
    bad = X.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN.*rows 10 to 19"):
        sliced_wasserstein(da.from_array(bad, chunks=(10, -1)), dY)
    with pytest.raises(ValueError, match="'cv-upper' has no distributed version"):
        sliced_wasserstein(dX, dY, slices="cv-upper")
    with pytest.raises(ValueError, match="'quantiles' parameter"):
        sliced_wasserstein(dX, dY, quantiles="approximate")
    with pytest.raises(ValueError, match="'sketch_size' parameter"):
        sliced_wasserstein(dX, dY, quantiles="sketch", sketch_size=2)
    with pytest.raises(TypeError, match="distributional_sliced_wasserstein has no"):
        distributional_sliced_wasserstein(dX, dY)
    with pytest.raises(TypeError, match="use energy_distance"):
        energy_distance_grad(dX, dY)
    with pytest.raises(ValueError, match="n_projections"):  # checked before any pass
        sliced_wasserstein(dX, dY, n_projections=0)


# --------------------------------------------------------------------------- out of core


@pytest.mark.slow
def test_out_of_core_sketch_stays_under_the_workers_memory(tmp_path):
    """Two zarr clouds on disk, together 3x the workers' total memory limit, on a cluster
    of two 1 GiB workers, sketch mode: no worker restarted, each worker's peak memory
    under its limit, and SW_1 within its bound (plus the sampling error of 5e7 points,
    about 1e-4) of the closed form: between N(0, I) and N(mu, I) every projection's
    W_1 is |theta^T mu|."""
    pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    from sketchlearn._random import as_generator
    from sketchlearn.transport._slices import make_directions

    limit = 2**30
    n_workers, d, rows = 2, 8, 250_000
    n = -(-3 * n_workers * limit // (2 * d * 8) // rows) * rows  # each cloud: half of 3x
    mu = np.linspace(-0.5, 0.5, d)
    with one_thread_cluster(limit, n_workers) as (client, pids):
        clouds = []
        for seed, (name, shift) in enumerate((("X", 0.0), ("Y", 1.0))):
            zarr.create_array(str(tmp_path / name), shape=(n, d), chunks=(rows, d),
                              dtype="float64", compressors=None)
            Z = da.random.default_rng(seed).standard_normal((n, d), chunks=(rows, d))
            da.store(Z + shift * mu, zarr.open_array(str(tmp_path / name), mode="r+"),
                     lock=False)
            clouds.append(da.from_zarr(str(tmp_path / name)))
        X, Y = clouds
        assert X.nbytes + Y.nbytes >= 3 * n_workers * limit
        got = sliced_wasserstein(X, Y, p=1, n_projections=8, random_state=0, quantiles="sketch")
        peak = client.run(lambda: __import__("resource").getrusage(
            __import__("resource").RUSAGE_SELF).ru_maxrss * 1024)
        assert client.run(__import__("os").getpid) == pids  # no worker restarted
    theta = make_directions(d, 8, "mc", as_generator(0))[0]
    closed_form = float(np.mean(np.abs(theta @ mu)))
    assert abs(got - closed_form) <= got.error_bound + 2e-3, (got, got.error_bound, closed_form)
    assert max(peak.values()) < limit, (peak, limit)
