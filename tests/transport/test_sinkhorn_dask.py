"""Sinkhorn with the source cloud (or the cost matrix) in Dask row chunks.

Oracle: the in-memory ``sinkhorn(..., method="log")`` on the computed arrays, whose
iterates the distributed path promises to reproduce (potentials to 1e-10, the same
number of iterations, the same warnings); for the out-of-core test, the in-memory
problem on the distinct points of a cloud made of repeated rows (whose potentials
are those of the repeated rows, with the multiplicities as weights).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn.transport import SinkhornResult, sinkhorn, sinkhorn_divergence

from ..conftest import one_thread_cluster

da = pytest.importorskip("dask.array")


def _clouds(rng, n=240, m=70, d=3, dtype=np.float64):
    X = rng.normal(size=(n, d)).astype(dtype)
    Y = (rng.normal(size=(m, d)) * 0.8 + 0.7).astype(dtype)
    return X, Y


def _weights(rng, k):
    w = rng.uniform(0.2, 1.0, size=k)
    return w / w.sum()


def _assert_same(res, mem, atol=1e-10):
    assert isinstance(res, SinkhornResult)
    assert isinstance(res.f, da.Array) and isinstance(res.g, np.ndarray)
    assert res.n_iter == mem.n_iter
    assert res.converged == mem.converged
    np.testing.assert_allclose(res.f.compute(), mem.f, rtol=0, atol=atol)
    np.testing.assert_allclose(res.g, mem.g, rtol=0, atol=atol)
    np.testing.assert_allclose(res.cost, mem.cost, rtol=1e-10)
    np.testing.assert_allclose(res.error, mem.error, rtol=1e-4)


@pytest.mark.parametrize("chunks", [61, (7, 100, 33, 100)])
@pytest.mark.parametrize("eps_scaling", [True, False])
def test_equals_in_memory(synchronous, rng, chunks, eps_scaling):
    X, Y = _clouds(rng)
    kw = dict(reg=0.2, tol=1e-8, eps_scaling=eps_scaling)
    mem = sinkhorn(X=X, Y=Y, method="log", **kw)
    res = sinkhorn(X=da.from_array(X, chunks=(chunks, -1)), Y=Y, **kw)
    _assert_same(res, mem)
    assert res.n_iter > 10  # enough iterations for a drift to show


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_weights_and_metric(synchronous, rng, metric):
    X, Y = _clouds(rng, n=150, m=90, d=2)
    a, b = _weights(rng, 150), _weights(rng, 90)
    a[[3, 77]] = 0.0  # points without mass give -inf terms in the log-sum-exps
    a /= a.sum()
    kw = dict(reg=0.3, tol=1e-8, metric=metric)
    mem = sinkhorn(a, b, X=X, Y=Y, method="log", **kw)
    dX = da.from_array(X, chunks=(40, -1))
    res = sinkhorn(da.from_array(a, chunks=(40,)), b, X=dX, Y=Y, **kw)
    _assert_same(res, mem)
    # a NumPy a is cut into X's row chunks (documented)
    _assert_same(sinkhorn(a, b, X=dX, Y=Y, **kw), mem)


def test_float32_clouds(synchronous, rng):
    """float32 clouds: the in-memory path never stores their cost, so both run the
    same on-the-fly kernels; the plan is float32 as in memory."""
    X, Y = _clouds(rng, n=200, m=50, dtype=np.float32)
    mem = sinkhorn(X=X, Y=Y, reg=0.3, tol=1e-9, method="log")
    res = sinkhorn(X=da.from_array(X, chunks=(45, -1)), Y=Y, reg=0.3, tol=1e-9)
    _assert_same(res, mem)
    assert res.plan.dtype == np.float32 == mem.plan.dtype
    np.testing.assert_allclose(res.plan.compute(), mem.plan, rtol=1e-6, atol=1e-12)


def test_cost_matrix(synchronous, rng):
    X, Y = _clouds(rng, n=180, m=60)
    M = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(axis=2)
    a, b = _weights(rng, 180), _weights(rng, 60)
    mem = sinkhorn(a, b, M, reg=0.3, tol=1e-8, method="log")
    res = sinkhorn(a, b, da.from_array(M, chunks=(50, -1)), reg=0.3, tol=1e-8)
    _assert_same(res, mem)
    np.testing.assert_allclose(res.plan.compute(), mem.plan, rtol=1e-10, atol=1e-17)


def test_lazy_plan_and_matvec(synchronous, rng):
    X, Y = _clouds(rng, n=130, m=40)
    mem = sinkhorn(X=X, Y=Y, reg=0.5, tol=1e-9, method="log")
    res = sinkhorn(X=da.from_array(X, chunks=(30, -1)), Y=Y, reg=0.5, tol=1e-9)
    assert isinstance(res.plan, da.Array) and res.plan.shape == (130, 40)
    assert res.plan.chunks[0] == (30, 30, 30, 30, 10)
    np.testing.assert_allclose(res.plan.compute(), mem.plan, rtol=1e-9, atol=1e-17)
    # only the blocks asked for are computed; the marginals hold
    np.testing.assert_allclose(res.plan[35:50].compute(), mem.plan[35:50], rtol=1e-9,
                               atol=1e-17)
    np.testing.assert_allclose(res.plan.sum(axis=0).compute(), np.full(40, 1 / 40),
                               rtol=1e-12)
    V = rng.normal(size=(40, 3))
    PV = res.plan_matvec(V)
    assert isinstance(PV, da.Array) and PV.shape == (130, 3)
    np.testing.assert_allclose(PV.compute(), mem.plan @ V, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(res.plan_matvec(V[:, 0]).compute(), mem.plan @ V[:, 0],
                               rtol=1e-9, atol=1e-15)
    assert sinkhorn(X=da.from_array(X, chunks=(30, -1)), Y=Y, reg=1.0, tol=1e-3,
                    return_plan=False).plan is None


def test_plan_tiles_follow_the_chunk_size(synchronous, rng):
    """The lazy plan is cut into tiles of about Dask's ``array.chunk-size`` (rows of X
    against blocks of Y's rows), so a plan of 10^6 x 10^6 is a graph of small tiles,
    each computed only when asked."""
    import dask

    X, Y = _clouds(rng, n=120, m=50)
    mem = sinkhorn(X=X, Y=Y, reg=0.5, tol=1e-9, method="log")
    with dask.config.set({"array.chunk-size": "4KiB"}):  # 4 KiB / (8 B x 40 rows)
        res = sinkhorn(X=da.from_array(X, chunks=(40, -1)), Y=Y, reg=0.5, tol=1e-9)
    assert res.plan.chunks == ((40, 40, 40), (12, 12, 12, 12, 2))
    np.testing.assert_allclose(res.plan.compute(), mem.plan, rtol=1e-9, atol=1e-17)
    np.testing.assert_allclose(res.plan.blocks[1, 3].compute(), mem.plan[40:80, 36:48],
                               rtol=1e-9, atol=1e-17)


def test_warm_start(synchronous, rng):
    X, Y = _clouds(rng, n=100, m=30)
    first = sinkhorn(X=X, Y=Y, reg=0.5, tol=1e-3, method="log")
    mem = sinkhorn(X=X, Y=Y, reg=0.1, tol=1e-8, method="log", warm_start=(first.f, first.g))
    dX = da.from_array(X, chunks=(25, -1))
    res = sinkhorn(X=dX, Y=Y, reg=0.1, tol=1e-8,
                   warm_start=(da.from_array(first.f, chunks=10), first.g))
    _assert_same(res, mem)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_non_convergence_warns_as_in_memory(synchronous, rng):
    X, Y = _clouds(rng, n=90, m=30)
    dX = da.from_array(X, chunks=(40, -1))
    for max_iter in (3, 40):  # in an annealing stage (error inf), then in the last
        kw = dict(reg=0.01, tol=1e-12, max_iter=max_iter)
        with pytest.warns(ConvergenceWarning) as mem_warn:
            mem = sinkhorn(X=X, Y=Y, method="log", **kw)
        with pytest.warns(ConvergenceWarning) as dask_warn:
            res = sinkhorn(X=dX, Y=Y, **kw)
        assert res.n_iter == mem.n_iter == max_iter
        assert not res.converged
        if max_iter == 3:
            assert res.error == mem.error == np.inf
        msg = str(dask_warn[0].message)
        assert msg.split("error")[0] == str(mem_warn[0].message).split("error")[0]
        np.testing.assert_allclose(res.f.compute(), mem.f, rtol=0, atol=1e-10)


def test_dask_target_is_computed_when_small(synchronous, rng):
    X, Y = _clouds(rng, n=100, m=40)
    b = _weights(rng, 40)
    mem = sinkhorn(None, b, X=X, Y=Y, reg=0.2, tol=1e-8, method="log")
    res = sinkhorn(None, da.from_array(b, chunks=13), X=da.from_array(X, chunks=(30, -1)),
                   Y=da.from_array(Y, chunks=(15, -1)), reg=0.2, tol=1e-8)
    _assert_same(res, mem)


def test_bad_input(synchronous, rng, monkeypatch):
    from sketchlearn.transport import _sinkhorn_dask

    X, Y = _clouds(rng, n=60, m=20)
    dX = da.from_array(X, chunks=(20, -1))
    unknown = dX[dX[:, 0] > -np.inf]
    with pytest.raises(ValueError, match="X has unknown chunk sizes.*compute_chunk_sizes"):
        sinkhorn(X=unknown, Y=Y)
    dY = da.from_array(Y, chunks=(5, -1))
    with pytest.raises(ValueError, match="Y has unknown chunk sizes"):
        sinkhorn(X=dX, Y=dY[dY[:, 0] > -np.inf])
    monkeypatch.setattr(_sinkhorn_dask, "BROADCAST_MAX_BYTES", 100)
    with pytest.raises(ValueError, match=r"Y is a Dask array of 480 bytes.*at most 100 "
                                         r"bytes.*larger cloud as X"):
        sinkhorn(X=dX, Y=dY)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"a must have shape \(60,\)"):
        sinkhorn(np.full(59, 1 / 59), X=dX, Y=Y)
    with pytest.raises(ValueError, match="a sums to 2"):
        sinkhorn(da.full(60, 2 / 60, chunks=20), X=dX, Y=Y)
    with pytest.raises(ValueError, match="a has negative entries"):
        sinkhorn(da.from_array(np.r_[-1.0, np.full(59, 2 / 59)], chunks=20), X=dX, Y=Y)
    with pytest.raises(ValueError, match="b has length 19"):
        sinkhorn(None, np.full(19, 1 / 19), X=dX, Y=Y)
    with pytest.raises(ValueError, match="features"):
        sinkhorn(X=dX, Y=Y[:, :2])
    bad = X.copy()
    bad[30, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        sinkhorn(X=da.from_array(bad, chunks=(20, -1)), Y=Y)
    with pytest.raises(TypeError, match="X is in memory but Y is a Dask array.*from_array"):
        sinkhorn(X=X, Y=dY)
    with pytest.raises(TypeError, match="method='sns' has no distributed version"):
        sinkhorn(X=dX, Y=Y, method="sns")
    with pytest.raises(TypeError, match="Unbalanced"):
        sinkhorn(X=dX, Y=Y, reg_m=1.0)
    with pytest.raises(ValueError, match="not both"):
        sinkhorn(None, None, dX @ Y.T, X=dX, Y=Y)
    with pytest.raises(ValueError, match="tol"):  # the parameter checks still run
        sinkhorn(X=dX, Y=Y, tol=-1.0)
    with pytest.raises(TypeError, match="sinkhorn_divergence has no distributed.*"
                                        r"sinkhorn\(X=X, Y=Y\) on Dask"):
        sinkhorn_divergence(dX, Y)
    # columns in several chunks are merged with a warning, the result unchanged
    with pytest.warns(UserWarning, match="chunked along its columns"):
        res = sinkhorn(X=da.from_array(X, chunks=(20, 1)), Y=Y, reg=0.5)
    np.testing.assert_allclose(res.g, sinkhorn(X=X, Y=Y, reg=0.5, method="log").g,
                               rtol=0, atol=1e-10)


def test_warning_free_on_ordinary_data(synchronous, rng):
    X, Y = _clouds(rng, n=80, m=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sinkhorn(X=da.from_array(X, chunks=(30, -1)), Y=Y, reg=0.3).plan.compute()


def test_on_local_cluster(on_cluster, rng):
    """On the session's LocalCluster: Y and g are scattered, f stays on the workers."""
    X, Y = _clouds(rng, n=400, m=60)
    a = _weights(rng, 400)
    mem = sinkhorn(a, X=X, Y=Y, reg=1.0, tol=1e-8, method="log")
    res = sinkhorn(da.from_array(a, chunks=(90,)), X=da.from_array(X, chunks=(90, -1)),
                   Y=Y, reg=1.0, tol=1e-8)
    from distributed import futures_of

    # f's blocks are held by the workers (futures), one per row chunk of X
    assert len({f.key for f in futures_of(res.f)}) == 5
    _assert_same(res, mem)
    np.testing.assert_allclose(res.plan[:100].compute(), mem.plan[:100], rtol=1e-9,
                               atol=1e-17)


def test_no_dask_import_from_sketchlearn():
    import subprocess
    import sys

    code = ("import sys, sketchlearn, sketchlearn.transport; "
            "assert 'dask' not in sys.modules and 'dask.array' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_out_of_core_source_cloud(tmp_path):
    """X on disk (zarr) 1.5x the workers' total memory limit, Y in memory, on a cluster
    of two 1 GiB workers: no worker restarted, each worker's peak memory under its
    limit, and the potentials of the in-memory problem on X's distinct rows.

    X repeats k distinct points, so its Sinkhorn iterates are those of the k points
    weighted by their multiplicities (the g-update sums over equal terms), which
    the in-memory path solves."""
    pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    limit = 2**30
    n_workers, d, rows, k, m = 2, 16, 250_000, 997, 20
    n = -(-3 * n_workers * limit // (2 * d * 8) // rows) * rows
    rng = np.random.default_rng(7)
    base = rng.normal(size=(k, d))
    Y = rng.normal(size=(m, d)) * 0.5 + 0.3
    with one_thread_cluster(limit, n_workers) as (client, pids):
        zarr.create_array(str(tmp_path / "X"), shape=(n, d), chunks=(rows, d),
                          dtype="float64", compressors=None)

        def repeat(block, block_info=None):
            start = block_info[None]["array-location"][0][0]
            return base[np.arange(start, start + block.shape[0]) % k]

        X = da.zeros((n, d), chunks=(rows, d)).map_blocks(repeat, dtype=np.float64)
        da.store(X, zarr.open_array(str(tmp_path / "X"), mode="r+"), lock=False)
        X = da.from_zarr(str(tmp_path / "X"))
        assert X.nbytes >= 1.5 * n_workers * limit
        res = sinkhorn(X=X, Y=Y, reg=5.0, tol=1e-6, eps_scaling=False)
        f_head = res.f[:2 * k].compute()
        peak = client.run(lambda: __import__("resource").getrusage(
            __import__("resource").RUSAGE_SELF).ru_maxrss * 1024)
        assert client.run(__import__("os").getpid) == pids  # no worker restarted
    counts = np.bincount(np.arange(n) % k, minlength=k)
    mem = sinkhorn(counts / n, X=base, Y=Y, reg=5.0, tol=1e-6, eps_scaling=False,
                   method="log")
    assert res.n_iter == mem.n_iter
    np.testing.assert_allclose(res.g, mem.g, rtol=0, atol=1e-10)
    np.testing.assert_allclose(f_head, np.tile(mem.f, 2), rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.cost, mem.cost, rtol=1e-10)
    assert max(peak.values()) < limit, (peak, limit)
