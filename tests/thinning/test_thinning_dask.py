"""Compress++ on Dask arrays.

The distributed Compress++ runs the same tree of halvings as the in-memory one (for
``n = 4^k`` the very same partition) with other random draws (keyed by tree node),
so its coreset is another draw of the same algorithm. Oracles: the in-memory
``compress_thin`` over several seeds (its seed-to-seed spread of MMD), a uniform
subsample of the same size, and MMDs computed here from in-memory kernel sums.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from sketchlearn.kernels import GaussianKernel, kernel_matrix, kernel_matvec
from sketchlearn.metrics import mmd_subset
from sketchlearn.thinning import KernelThinning, compress_thin, kernel_thin

from ..conftest import one_thread_cluster

da = pytest.importorskip("dask.array")


def _mixture(rng, n, dtype=np.float64):
    """Two Gaussian blobs in 2-D, shuffled."""
    X = np.concatenate([rng.normal(size=(n // 2, 2)) - 1.5,
                        rng.normal(size=(n - n // 2, 2)) * 0.5 + 1.5])
    return X[rng.permutation(n)].astype(dtype)


class _MMD:
    """MMD of uniform measures on subsets of ``X`` to the uniform measure on ``X``:
    ``p`` = the kernel mean at every row (one in-memory O(n^2) sum), then each subset
    costs ``s^2`` kernel evaluations."""

    def __init__(self, X, kernel):
        n = X.shape[0]
        self.X, self.kernel = X, kernel
        self.p = kernel_matvec(X, None, np.full(n, 1.0 / n), kernel=kernel)
        self.pp = float(self.p.mean())

    def __call__(self, idx):
        qq = float(kernel_matrix(self.X[idx], kernel=self.kernel).mean())
        return np.sqrt(max(qq - 2.0 * float(self.p[idx].mean()) + self.pp, 0.0))


@pytest.mark.parametrize("log4_n, g, log4_chunk, n_seeds", [
    pytest.param(8, 4, 6, 10, marks=pytest.mark.slow, id="n=4^8"),
    pytest.param(7, 3, 5, 8, id="n=4^7"),
])
def test_dask_mmd_within_the_seed_to_seed_spread_of_in_memory(synchronous, log4_n, g,
                                                               log4_chunk, n_seeds):
    """n = 4^8 points (slow; 4^7 in the default run), n_out = sqrt(n), 16 chunks of
    4^6 (4^5) rows: over 10 (8) seeds each, the MMDs of the Dask coresets and of the
    in-memory coresets are two samples of the same law. Statistic: the rank-sum
    (Mann-Whitney) test does not tell them apart (p > 0.01), and their medians differ
    by less than the in-memory interquartile range (the difference of two medians of
    10 has a standard deviation of about 0.4 of that range, so this fails by chance
    rarely, and it catches a tree that halves once too often or too little, whose MMD
    moves by a factor). Both are far better than a uniform subsample of the same size
    (at least 5x lower MMD, all seeds)."""
    n = 4**log4_n
    n_out = math.isqrt(n)
    X = _mixture(np.random.default_rng(2026), n)
    k = GaussianKernel(1.0)
    mmd = _MMD(X, k)
    dX = da.from_array(X, chunks=(4**log4_chunk, -1))
    seeds = range(n_seeds)
    in_memory = np.array([mmd(compress_thin(X, n_out, g=g, kernel=k, random_state=s))
                          for s in seeds])
    on_dask = []
    for s in seeds:
        idx = compress_thin(dX, n_out, g=g, kernel=k, random_state=s)
        assert idx.shape == (n_out,) and idx.dtype.kind == "i"
        assert np.all(np.diff(idx) >= 0) and idx[0] >= 0 and idx[-1] < n
        on_dask.append(mmd(idx))
    on_dask = np.array(on_dask)
    uniform = np.array([mmd(np.random.default_rng(s).choice(n, n_out, replace=False))
                        for s in seeds])
    assert mannwhitneyu(in_memory, on_dask).pvalue > 0.01, (in_memory, on_dask)
    q25, q75 = np.percentile(in_memory, [25, 75])
    assert abs(np.median(on_dask) - np.median(in_memory)) < q75 - q25, (in_memory, on_dask)
    assert on_dask.max() < uniform.min() / 5 and in_memory.max() < uniform.min() / 5


@pytest.fixture(scope="module")
def X16k():
    return _mixture(np.random.default_rng(7), 4**7)


@pytest.mark.parametrize("chunks", [4**3, 4**5, 4**7, 5000, (1, 16383)])
def test_same_seed_same_coreset_whatever_the_chunking(synchronous, X16k, chunks):
    """Randomness keyed by tree node: chunks of 4^g 4^i rows for any i (and chunks of
    other sizes, rechunked to such) give the identical coreset; with ``unique`` its
    rows are distinct global rows."""
    kwargs = dict(g=2, bandwidth=0.8, unique=True, random_state=11)
    reference = compress_thin(da.from_array(X16k, chunks=(4**6, -1)), **kwargs)
    got = compress_thin(da.from_array(X16k, chunks=(chunks, -1)), **kwargs)
    np.testing.assert_array_equal(got, reference)
    assert got.shape == (128,) and np.unique(got).shape == (128,)
    assert got.min() >= 0 and got.max() < X16k.shape[0]


def test_same_coreset_on_the_cluster(on_cluster, X16k):
    """One seed, one coreset, whatever the scheduler (here two worker processes)."""
    kwargs = dict(g=2, bandwidth=0.8, random_state=3)
    got = compress_thin(da.from_array(X16k, chunks=(4**5, -1)), **kwargs)
    import dask

    with dask.config.set(scheduler="synchronous"):
        want = compress_thin(da.from_array(X16k, chunks=(4**6, -1)), **kwargs)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_beyond_the_main_block_and_float32(synchronous, dtype):
    """n = 10000 is not 4^g 4^j: the rows are partitioned at random into blocks of the
    in-memory sizes (4096 + 4096 + 1024 + 3 x 256 + 16 rows), each compressed. The
    coreset has valid distinct rows, and its MMD (computed here in float64) is within
    the spread of the in-memory coresets' over 5 seeds (at most 1.5x their worst) and
    far below a uniform subsample's."""
    n, n_out = 10_000, 100
    X64 = _mixture(np.random.default_rng(5), n)
    X = X64.astype(dtype)
    k = GaussianKernel(1.0)
    mmd = _MMD(X64, k)
    dX = da.from_array(X, chunks=(1500, -1))
    seeds = range(5)
    on_dask = []
    for s in seeds:
        idx = compress_thin(dX, n_out, g=2, kernel=k, unique=True, random_state=s)
        assert idx.shape == (n_out,) and np.unique(idx).shape == (n_out,)
        assert idx.min() >= 0 and idx.max() < n
        on_dask.append(mmd(idx))
    in_memory = [mmd(compress_thin(X, n_out, g=2, kernel=k, unique=True, random_state=s))
                 for s in seeds]
    uniform = [mmd(np.random.default_rng(s).choice(n, n_out, replace=False)) for s in seeds]
    assert max(on_dask) < 1.5 * max(in_memory), (on_dask, in_memory)
    assert max(on_dask) < min(uniform) / 3, (on_dask, uniform)


def test_return_mmd_and_estimator(synchronous, X16k):
    """``return_mmd`` equals ``mmd_subset`` of the returned rows (n <= 2^14: exact);
    ``KernelThinning(compress="always")`` gives the function's coreset, the in-memory
    median bandwidth, and NumPy attributes."""
    dX = da.from_array(X16k, chunks=(4**5, -1))
    idx, value = compress_thin(dX, g=2, random_state=4, return_mmd=True)
    kt = KernelThinning(compress="always", g=2, random_state=4).fit(dX)
    in_memory = KernelThinning(compress="always", g=2, random_state=4).fit(X16k)
    assert kt.kernel_.bandwidth == in_memory.kernel_.bandwidth
    assert value == pytest.approx(mmd_subset(X16k, idx, kernel=in_memory.kernel_), rel=1e-9)
    np.testing.assert_array_equal(kt.indices_, idx)
    assert isinstance(kt.coreset_, np.ndarray)
    np.testing.assert_array_equal(kt.coreset_, X16k[idx])
    assert kt.mmd_ == pytest.approx(value, rel=1e-12) and kt.compressed_
    assert kt.n_features_in_ == 2
    y = np.arange(X16k.shape[0])
    Xr, yr = KernelThinning(compress="always", g=2, random_state=4).fit_resample(
        dX, da.from_array(y, chunks=4**5))
    np.testing.assert_array_equal(yr, idx)
    np.testing.assert_array_equal(Xr, X16k[idx])


def test_refusals_point_to_compress_thin(synchronous, X16k):
    dX = da.from_array(X16k, chunks=(4**5, -1))
    with pytest.raises(TypeError, match="kernel_thin has no distributed version.*compress_thin"):
        kernel_thin(dX, 64)
    for compress in ("auto", "never"):
        with pytest.raises(TypeError, match="compress='always'.*compress_thin"):
            KernelThinning(compress=compress).fit(dX)


def test_bad_input(synchronous, X16k):
    dX = da.from_array(X16k, chunks=(4**5, -1))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        compress_thin(dX[dX[:, 0] > 0], g=2)
    with pytest.raises(ValueError, match="n_out=20000 is larger"):
        compress_thin(dX, 20_000)
    bad = X16k.copy()
    bad[5000, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity .*rows 4096 to 5119"):
        compress_thin(da.from_array(bad, chunks=(4**5, -1)), g=2, bandwidth=1.0)
    with pytest.raises(ValueError, match="bounded kernel"):
        compress_thin(dX, g=2, kernel="energy")


@pytest.mark.slow
def test_out_of_core_compress_stays_under_the_workers_memory(tmp_path):
    """4^12 rows x 34 features (4.25 GiB) in zarr on disk, 3x the total memory limit of
    a cluster of two 700 MiB workers (they sit near 360 MiB after imports), thinned by
    Compress++ (g=1) chunk by chunk: no worker restarted, each worker's peak resident
    memory under its limit (also the cluster total sampled by ``MemorySampler``), and a
    coreset of valid rows whose MMD to a held-out sample of 20000 rows is below a
    uniform subsample's of the same size."""
    pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    from distributed.diagnostics import MemorySampler

    limit = 700 * 2**20
    n_workers, n, d, rows = 2, 4**12, 34, 4**8
    with one_thread_cluster(limit, n_workers) as (client, pids):
        zarr.create_array(str(tmp_path / "X"), shape=(n, d), chunks=(rows, d),
                          dtype="float64", compressors=None)
        centers = np.zeros((2, d))
        centers[1, :2] = 3.0
        gen = da.random.default_rng(0)
        Z = gen.standard_normal((n, d), chunks=(rows, d))
        side = gen.random((n, 1), chunks=(rows, 1)) < 0.5
        da.store(Z + da.where(side, centers[1], centers[0]),
                 zarr.open_array(str(tmp_path / "X"), mode="r+"), lock=False)
        X = da.from_zarr(str(tmp_path / "X"))
        assert X.nbytes >= 3 * n_workers * limit
        sampler = MemorySampler()
        began = time.perf_counter()
        with sampler.sample("compress", measure="process", interval=0.5):
            idx = compress_thin(X, 4096, g=1, random_state=0)
        seconds = time.perf_counter() - began
        peak = client.run(lambda: __import__("resource").getrusage(
            __import__("resource").RUSAGE_SELF).ru_maxrss * 1024)
        assert client.run(__import__("os").getpid) == pids  # no worker restarted
        total_peak = float(sampler.to_pandas()["compress"].max())
        held_out = np.sort(np.random.default_rng(1).choice(n, 20_000, replace=False))
        rng_rows = np.sort(np.random.default_rng(2).choice(n, 4096, replace=False))
        R, C, U = (np.asarray(a) for a in client.compute(
            [X[held_out], X[np.unique(idx)], X[rng_rows]], sync=True))
    assert idx.shape == (4096,) and idx.min() >= 0 and idx.max() < n
    assert max(peak.values()) < limit, (peak, limit)
    assert total_peak < n_workers * limit, total_peak
    from sketchlearn.kernels import median_heuristic
    from sketchlearn.metrics import mmd

    bw = median_heuristic(R)
    counts = np.unique(idx, return_counts=True)[1]
    coreset_mmd = mmd(C, R, bandwidth=bw, weights_x=counts / counts.sum())
    uniform_mmd = mmd(U, R, bandwidth=bw)
    print(f"out-of-core Compress++: {X.nbytes / 2**30:.2f} GiB in {seconds:.0f} s; peak RSS "
          f"per worker {[round(v / 2**20) for v in peak.values()]} MiB (limit "
          f"{limit // 2**20}); sampled cluster peak {total_peak / 2**20:.0f} MiB; MMD to "
          f"held-out rows: coreset {coreset_mmd:.4f}, uniform {uniform_mmd:.4f}")
    assert coreset_mmd < uniform_mmd, (coreset_mmd, uniform_mmd)
