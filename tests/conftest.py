"""Shared fixtures: the ``xp`` namespaces every array-API test runs under."""

from __future__ import annotations

import contextlib
import os

# Tests hold the Numba kernels to their references: every call compiles and runs its
# kernels (tests/test_cold_start.py covers the default, reference-first cold start).
os.environ["SKETCHLEARN_COLD_START"] = "compile"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sketchlearn._array_api import cupy_is_usable  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if cupy_is_usable():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device (none seen)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(
    params=["numpy", "array_api_strict", pytest.param("cupy", marks=pytest.mark.gpu)]
)
def xp(request):
    """Array namespace under test: NumPy, array_api_strict, and CuPy where a GPU exists."""
    if request.param == "numpy":
        return np
    if request.param == "array_api_strict":
        return pytest.importorskip("array_api_strict")
    return pytest.importorskip("cupy")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def as_xp(xp, a, dtype=None):
    """Copy a NumPy array into namespace ``xp``."""
    out = xp.asarray(np.asarray(a))
    return out if dtype is None else xp.astype(out, getattr(xp, dtype))


def to_np(a):
    from sketchlearn._array_api import to_numpy

    return to_numpy(a)


# Worker environment of the test clusters: one thread for every thread pool.
ONE_THREAD_WORKERS = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                      "SKETCHLEARN_COLD_START": "compile"}


@pytest.fixture(scope="session")
def dask_client():
    """One ``distributed.LocalCluster`` for the whole run: 2 worker processes, one thread
    and one Numba thread each, a memory limit, as a small cluster would have."""
    pytest.importorskip("dask.array")
    with one_thread_cluster(2**30, set_as_default=False) as (client, _):
        yield client


@contextlib.contextmanager
def one_thread_cluster(memory_limit, n_workers=2, set_as_default=True):
    """A ``distributed.LocalCluster`` of ``n_workers`` processes with one thread each
    (BLAS, OpenMP and Numba alike) and ``memory_limit`` bytes each, and its client:
    yields ``(client, worker process ids)``."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  memory_limit=memory_limit, dashboard_address=":0",
                                  env=ONE_THREAD_WORKERS) as cluster, \
            distributed.Client(cluster, set_as_default=set_as_default) as client:
        yield client, client.run(os.getpid)


@pytest.fixture
def on_cluster(dask_client):
    """The test's Dask calls run on the session's LocalCluster, as the active client (what
    a user's ``Client(cluster)`` makes it)."""
    import dask

    with dask_client.as_current(), dask.config.set(scheduler="dask.distributed"):
        yield dask_client


@pytest.fixture
def synchronous():
    """The test's Dask calls run in this process, one task at a time."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield
