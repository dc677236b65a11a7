"""Least squares and sketches of tall matrices on Dask, out of core (issue 17, point 7).

One ``distributed.LocalCluster`` (2 worker processes, 1 thread each, one BLAS / OpenMP
/ Numba thread per worker, a memory limit per worker) and one ``Client``, started once.
The data are written to zarr in a temporary folder (deleted at the end) by the
workers, chunk by chunk, and read back in row chunks by every Dask contender; at full
size they are larger than the workers' total memory limit.

OLS contenders, on the same Dask arrays:

- sketchlearn: ``gauss_markov`` (TSQR of ``[1 | X | y]`` plus refinement passes);
- ``dask.array.linalg.lstsq`` on ``[1 | X]`` (TSQR, no refinement);
- the normal equations summed over chunks: ``A^T A`` and ``A^T y`` by Dask, solved
  with ``numpy.linalg.solve``;
- dask-ml ``LinearRegression(solver="newton")`` (dask-glm: normalised columns, Newton
  steps on the Hessian ``X^T X``; the default ``admm`` solver fits an L2 penalty);
- Spark MLlib ``LinearRegression(solver="normal")`` through pyspark in ``local[2]``,
  on Parquet files written from the zarr chunks.

Designs: NIST Filip (degree-10 polynomial, certified to 15 digits) tiled, which keeps
the certified coefficients; and an integer design ``X = 2^23 w 1^T + Z`` (``w``, ``Z``
small integers) with condition number about 1e8 and integer ``beta`` such that
``y = X beta`` is exact in float64: zero residual, so ``beta`` is the least-squares
solution. Sketch rows: one-pass CountSketch and SRHT of a well-conditioned integer
design against ``dask.array.linalg.svd_compressed`` (k = p), with the subspace
distortion of each. Ridge rows: ``RidgeEnsembleCV`` (10 alphas x 20 members, GCV) on
the same design against a one-pass ridge with GCV from summed normal equations (what
a user would write by hand) and dask-ml's ``GridSearchCV`` over
``LinearRegression(penalty="l2")``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import _harness as H
import numpy as np

NAME = "dask_linear"
DESCRIPTION = ("Out-of-core OLS and sketches on a 2-worker Dask cluster (zarr on disk): "
               "gauss_markov vs dask lstsq, normal equations, dask-ml, Spark MLlib")

WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "SKETCHLEARN_COLD_START": "compile"}
N_WORKERS = 2
MEMORY_LIMIT = 2**30  # per worker
# Parts of the run (all by default; ``python benchmarks/bench_dask_linear.py --parts``
# reruns some of them, into results named after them)
PARTS = ("filip", "cond", "sketch", "ridge")
SPILL_CAP = 8 * 2**30  # per worker: a contender that needs more disk than this stalls
STALL_S = 120  # every worker paused this long: the contender is stopped
SHIFT = 23  # X = 2^SHIFT w 1^T + Z: condition number about 1e8 for p = 100
SKETCH_SIZE = 2000

# --------------------------------------------------------------------------- workers
# Module-level functions run on the workers (spawned processes inherit sys.path, which
# run.py extends with benchmarks/, so they import this module by name).

_ROWS_READ: dict = {}
_CPU_START = [0.0]


class _CountedZarr:
    """A zarr array that counts, in each worker process, the rows read through it:
    ``rows read / n`` is the number of passes a contender made over the data."""

    def __init__(self, path, tag):
        import zarr

        self.path, self.tag = str(path), tag
        self._z = zarr.open_array(self.path, mode="r")
        self.shape, self.dtype, self.ndim = self._z.shape, self._z.dtype, self._z.ndim

    def __getitem__(self, index):
        out = self._z[index]
        if getattr(out, "ndim", 0):
            _ROWS_READ[self.tag] = _ROWS_READ.get(self.tag, 0) + out.shape[0]
        return out

    def __getstate__(self):
        return {"path": self.path, "tag": self.tag}

    def __setstate__(self, state):
        self.__init__(state["path"], state["tag"])


def _cpu_seconds():
    t = os.times()
    return t.user + t.system


def _reset_worker_stats():
    _ROWS_READ.clear()
    _CPU_START[0] = _cpu_seconds()
    H._reset_hwm()
    return os.getpid()


def _worker_stats():
    return {"rows": dict(_ROWS_READ), "hwm": H._read_status("VmHWM"),
            "cpu": _cpu_seconds() - _CPU_START[0],
            "rss": H._read_status("VmRSS"), "pid": os.getpid()}


def _synthetic_chunk(seed, index, rows, p, shift, beta):
    """Rows of the integer design: ``Z`` (and ``2^shift w 1^T + Z`` when ``shift``),
    entries in [-4, 4], from a generator seeded by (seed, chunk index)."""
    rng = np.random.default_rng([seed, index])
    Z = rng.integers(-4, 5, size=(rows, p)).astype(np.float64)
    if shift is not None:
        w = rng.integers(-4, 5, size=(rows, 1)).astype(np.float64)
        Z += 2.0**shift * w
    return Z, (None if beta is None else Z @ beta)  # integer sums below 2^53: exact


def _write_chunk(spec, x_path, y_path, index, start, stop):
    import zarr

    if spec["kind"] == "filip":
        rows = np.arange(start, stop) % len(spec["y"])
        X, y = spec["X"][rows], spec["y"][rows]
    else:
        X, y = _synthetic_chunk(spec["seed"], index, stop - start, spec["p"], spec["shift"],
                                spec["beta"])
    zarr.open_array(x_path, mode="r+")[start:stop] = X
    if y_path is not None:
        zarr.open_array(y_path, mode="r+")[start:stop] = y
    return stop - start


def _write_parquet_part(x_path, y_path, start, stop, out_file):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zarr

    X = zarr.open_array(x_path, mode="r")[start:stop]
    y = zarr.open_array(y_path, mode="r")[start:stop]
    cols = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    cols["y"] = y
    pq.write_table(pa.table(cols), out_file)
    return stop - start


def _with_ones(block):
    return np.concatenate([np.ones((block.shape[0], 1), dtype=block.dtype), block], axis=1)


# --------------------------------------------------------------------------- data


class _Data:
    """One design on disk: zarr arrays for X and y, their Dask arrays, the truth."""

    def __init__(self, label, n, p, chunk, x_path, y_path, truth, fit_intercept, meta,
                 first_rows=False):
        self.label, self.n, self.p, self.chunk = label, n, p, chunk
        self.first_rows = first_rows  # the arrays are the first n rows of those on disk
        self.x_path, self.y_path = x_path, y_path
        self.truth, self.fit_intercept, self.meta = truth, fit_intercept, meta
        self.parquet = None

    def arrays(self):
        import dask.array as da

        tag = uuid.uuid4().hex[:8]
        X = da.from_array(_CountedZarr(self.x_path, "X"), chunks=(self.chunk, self.p),
                          name=f"zarr-X-{tag}", meta=np.empty((0, 0)))
        y = None
        if self.y_path is not None:
            y = da.from_array(_CountedZarr(self.y_path, "y"), chunks=(self.chunk,),
                              name=f"zarr-y-{tag}", meta=np.empty((0,)))
        if self.first_rows:
            X, y = X[:self.n], (None if y is None else y[:self.n])
        return X, y

    def head(self, n):
        """The first ``n`` rows (a whole number of chunks), read from the same files."""
        n = min(self.n, -(-n // self.chunk) * self.chunk)
        if n == self.n:
            return self
        return _Data(f"{self.label}, first {n} rows", n, self.p, self.chunk, self.x_path,
                     self.y_path, self.truth, self.fit_intercept, self.meta, first_rows=True)


def _dir_bytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _write(client, tmp, label, spec, n, p, chunk, with_y, compressors):
    import distributed
    import zarr

    x_path, y_path = str(tmp / f"{label}-X.zarr"), str(tmp / f"{label}-y.zarr")
    zarr.create_array(store=x_path, shape=(n, p), chunks=(chunk, p), dtype="float64",
                      compressors=compressors)
    if with_y:
        zarr.create_array(store=y_path, shape=(n,), chunks=(chunk,), dtype="float64",
                          compressors=compressors)
    else:
        y_path = None
    starts = list(range(0, n, chunk))
    futs = [client.submit(_write_chunk, spec, x_path, y_path, i, s, min(s + chunk, n),
                          pure=False) for i, s in enumerate(starts)]
    distributed.wait(futs)
    assert sum(f.result() for f in futs) == n
    del futs
    disk = _dir_bytes(x_path) + (_dir_bytes(y_path) if y_path else 0)
    return x_path, y_path, disk


def _filip_data(client, tmp, n_tiles, tiles_per_chunk):
    from sketchlearn.datasets import load_nist_strd

    d = load_nist_strd("Filip")
    n, p = len(d.y) * n_tiles, d.X.shape[1]
    spec = {"kind": "filip", "X": np.asarray(d.X, dtype=np.float64),
            "y": np.asarray(d.y, dtype=np.float64)}
    x_path, y_path, disk = _write(client, tmp, "filip", spec, n, p, len(d.y) * tiles_per_chunk,
                                  True, None)
    truth = np.concatenate([[d.intercept], d.coef])
    return _Data(f"Filip x {n_tiles} tiles", n, p, len(d.y) * tiles_per_chunk, x_path, y_path,
                 truth, True, {"disk_bytes": disk, "compression": "none"})


def _synthetic_data(client, tmp, n, p, chunk, seed=20260):
    rng = np.random.default_rng(seed)
    beta = rng.integers(1, 9, size=p) * rng.choice([-1.0, 1.0], size=p)
    spec = {"kind": "synthetic", "seed": seed, "p": p, "shift": SHIFT, "beta": beta}
    x_path, y_path, disk = _write(client, tmp, "cond", spec, n, p, chunk, True, "auto")
    X0, y0 = _synthetic_chunk(seed, 0, chunk, p, SHIFT, beta)
    assert np.array_equal(np.linalg.lstsq(X0, y0, rcond=None)[0].round(), beta)
    cond = float(np.linalg.cond(X0))
    cond_eq = float(np.linalg.cond(X0 / np.linalg.norm(X0, axis=0)))
    return _Data(f"integer design, cond {cond:.1e}", n, p, chunk, x_path, y_path, beta, False,
                 {"disk_bytes": disk, "compression": "zstd (zarr default)",
                  "cond_first_chunk": cond, "cond_equilibrated_first_chunk": cond_eq})


def _sketch_data(client, tmp, n, p, chunk, seed=20261):
    """The well-conditioned integer design (iid entries) with y = X beta exact: the
    sketches' data, and an OLS row on a design refinement needs no QR for."""
    rng = np.random.default_rng(seed)
    beta = rng.integers(1, 9, size=p) * rng.choice([-1.0, 1.0], size=p)
    spec = {"kind": "synthetic", "seed": seed, "p": p, "shift": None, "beta": beta}
    x_path, y_path, disk = _write(client, tmp, "wellcond", spec, n, p, chunk, True, "auto")
    X0 = _synthetic_chunk(seed, 0, chunk, p, None, None)[0]
    return _Data("integer design, iid entries", n, p, chunk, x_path, y_path, beta, False,
                 {"disk_bytes": disk, "compression": "zstd (zarr default)",
                  "cond_first_chunk": float(np.linalg.cond(X0))})


# --------------------------------------------------------------------------- measuring


class _Cluster:
    def __init__(self, tmp):
        import dask
        import distributed

        self._config = dask.config.set({
            "distributed.worker.memory.max-spill": SPILL_CAP,
            "distributed.scheduler.allowed-failures": 1,
            "distributed.admin.tick.limit": "1h",
        })
        self._config.__enter__()
        self.cluster = distributed.LocalCluster(
            n_workers=N_WORKERS, threads_per_worker=1, processes=True,
            memory_limit=MEMORY_LIMIT, dashboard_address=None, env=dict(WORKER_ENV),
            local_directory=str(tmp / "dask-worker-space"))
        self.client = distributed.Client(self.cluster, set_as_default=True)
        self.pids = set(self.client.run(os.getpid).values())
        self.restarts = 0

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.cluster.close()
        self._config.__exit__(None, None, None)

    def _restart(self):
        """Restart the workers, which cancels a contender. A worker stuck at its memory
        limit may not shut down within distributed's timeout (it stopped a full run
        here, during lstsq on the condition-9e7 design): it is killed, and its nanny
        starts a fresh one."""
        try:
            self.client.restart(wait_for_workers=True)
        except Exception:
            for pid in self.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.client.wait_for_workers(N_WORKERS, timeout=300)

    def measure(self, fn, timeout):
        """Run ``fn()`` (which computes on the cluster) with memory sampling, rows-read
        counting and a time limit; a contender past the limit is cancelled by
        restarting the workers."""
        from distributed.diagnostics import MemorySampler

        self.client.run(_reset_worker_stats)
        ms = MemorySampler()
        status, value = "ok", None
        t0 = time.perf_counter()
        with ms.sample("process", client=self.client, measure="process", interval=0.25), \
                ms.sample("spilled", client=self.client, measure="spilled", interval=0.25):
            with concurrent.futures.ThreadPoolExecutor(1) as ex:
                fut = ex.submit(fn)
                paused_since = None
                while True:
                    try:
                        value = fut.result(timeout=2.0)
                        break
                    except concurrent.futures.TimeoutError:
                        pass
                    except Exception as exc:  # a contender that fails is a result
                        status = f"failed: {type(exc).__name__}: {str(exc)[:160]}"
                        break
                    now = time.perf_counter()
                    workers = list(self.cluster.scheduler.workers.values())
                    paused = (any(ws.status.name == "paused" for ws in workers)
                              and all(ws.status.name == "paused" or not ws.processing
                                      for ws in workers))
                    paused_since = (paused_since or now) if paused else None
                    if paused_since is not None and now - paused_since > STALL_S:
                        status = (f"stalled: workers paused at their memory limit (the "
                                  f"others idle) for {STALL_S} s; stopped after "
                                  f"{now - t0:.0f} s")
                    elif now - t0 > timeout:
                        status = f"stopped after {timeout:.0f} s (time limit)"
                    else:
                        continue
                    self._restart()
                    with contextlib.suppress(Exception):
                        fut.result(timeout=300)
                    break
        elapsed = time.perf_counter() - t0
        stats = self.client.run(_worker_stats)
        pids = {s["pid"] for s in stats.values()}
        restarted = len(pids - self.pids)
        self.pids = pids
        samples = ms.to_pandas()
        rows = {}
        for s in stats.values():
            for tag, r in s["rows"].items():
                rows[tag] = rows.get(tag, 0) + r
        return {"status": status, "value": value, "seconds": elapsed,
                # a restarted worker's high-water mark starts afresh: not the call's peak
                "worker_peak_bytes": (None if restarted else
                                      max((s["hwm"] or 0) for s in stats.values())),
                "cluster_peak_bytes": float(samples["process"].max()),
                "spilled_peak_bytes": float(samples["spilled"].max()),
                "rows_read": rows, "workers_restarted": restarted,
                "worker_cpu_s": sum(s["cpu"] for s in stats.values())}


def _process_cpu(pid):
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _jvm_peak_sampler(pid):
    """Peak RSS of the Spark JVM, sampled every 0.1 s until ``stop`` is set."""
    import psutil

    proc, stop, peak = psutil.Process(pid), threading.Event(), [0]

    def loop():
        while not stop.is_set():
            with contextlib.suppress(Exception):
                peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.1)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return stop, th, peak


# --------------------------------------------------------------------------- contenders


def _ours_fit(X, y, fit_intercept, public, refine=True):
    if public:
        from sketchlearn.linear_model import gauss_markov
    else:
        from sketchlearn.linear_model._gauss_markov_dask import gauss_markov_dask as gauss_markov
    r = gauss_markov(X, y, fit_intercept=fit_intercept, refine=refine)
    coef = np.asarray(r.coef, dtype=np.float64)
    if fit_intercept:
        coef = np.concatenate([[float(r.intercept)], coef])
    return coef, int(r.n_passes)


def _design(X, fit_intercept):
    if not fit_intercept:
        return X
    return X.map_blocks(_with_ones, chunks=(X.chunks[0], (X.shape[1] + 1,)), dtype=X.dtype)


def _lstsq_fit(X, y, fit_intercept):
    import dask
    import dask.array as da

    coef = da.linalg.lstsq(_design(X, fit_intercept), y)[0]
    return dask.compute(coef)[0], None


def _normal_fit(X, y, fit_intercept):
    import dask

    A = _design(X, fit_intercept)
    G, b = dask.compute(A.T @ A, A.T @ y)
    return np.linalg.solve(G, b), None


def _daskml_fit(X, y, fit_intercept):
    from dask_ml.linear_model import LinearRegression

    m = LinearRegression(solver="newton", fit_intercept=fit_intercept).fit(X, y)
    coef = np.asarray(m.coef_, dtype=np.float64)
    if fit_intercept:
        coef = np.concatenate([[float(m.intercept_)], coef])
    return coef, None


def _digits(coef, truth):
    from sketchlearn.metrics import log_relative_error

    if coef is None or not np.all(np.isfinite(coef)):
        return 0.0
    return float(np.min(log_relative_error(coef, truth)))


# --------------------------------------------------------------------------- Spark


class _Spark:
    def __init__(self, tmp):
        self.error, self.spark = None, None
        try:
            from pyspark.sql import SparkSession

            old = {k: os.environ.get(k) for k in WORKER_ENV}
            os.environ.update(WORKER_ENV)
            try:
                heap = f"{N_WORKERS * MEMORY_LIMIT // 2**20}m"
                self.spark = (SparkSession.builder.master("local[2]")
                              .appName("sketchlearn-bench")
                              .config("spark.driver.memory", heap)
                              .config("spark.local.dir", str(tmp / "spark-local"))
                              .config("spark.ui.enabled", "false")
                              .config("spark.ui.showConsoleProgress", "false")
                              .config("spark.sql.shuffle.partitions", "2")
                              .getOrCreate())
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            self.spark.sparkContext.setLogLevel("ERROR")
            self.pid = int(self.spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            self.version = self.spark.version
        except Exception as exc:  # pragma: no cover - depends on Java and pyspark
            self.error = f"{type(exc).__name__}: {str(exc)[:200]}"

    def frame(self, path, p):
        from pyspark.ml.feature import VectorAssembler

        df = self.spark.read.parquet(str(path))
        return VectorAssembler(inputCols=[f"x{j}" for j in range(p)],
                               outputCol="features").transform(df)

    def fit(self, df, fit_intercept):
        from pyspark.ml.regression import LinearRegression

        m = LinearRegression(solver="normal", fitIntercept=fit_intercept, featuresCol="features",
                             labelCol="y").fit(df)
        coef = np.asarray(m.coefficients.toArray(), dtype=np.float64)
        if fit_intercept:
            coef = np.concatenate([[float(m.intercept)], coef])
        return coef

    def close(self):
        if self.spark is not None:
            with contextlib.suppress(Exception):
                self.spark.stop()


def _write_parquet(client, data, tmp):
    import distributed

    out = tmp / f"{Path(data.x_path).stem}.parquet"
    out.mkdir()
    futs = [client.submit(_write_parquet_part, data.x_path, data.y_path, s,
                          min(s + data.chunk, data.n), str(out / f"part-{i:05d}.parquet"),
                          pure=False) for i, s in enumerate(range(0, data.n, data.chunk))]
    distributed.wait(futs)
    assert sum(f.result() for f in futs) == data.n
    data.parquet = out
    return _dir_bytes(out)


# --------------------------------------------------------------------------- sketches


def _sketch_fit(X, kind, size, public):
    if public:
        from sketchlearn.sketching import sketch
    else:
        from sketchlearn.sketching._dask import sketch_dask as sketch
    SX = np.asarray(sketch(X, kind, size, random_state=0))
    return SX.T @ SX


def _svd_fit(X, k):
    import dask
    import dask.array as da

    _, s, v = da.linalg.svd_compressed(X, k=k, seed=0)
    s, v = dask.compute(s, v)
    return (v.T * s**2) @ v


def _gram(X):
    return (X.T @ X).compute()


def _distortion(G_sketch, G):
    """Subspace-embedding distortion ``||U^T S^T S U - I||_2`` with ``X = U T``:
    ``L^{-1} G_sketch L^{-T} - I`` for the Cholesky factor ``G = L L^T``."""
    import scipy.linalg

    L = np.linalg.cholesky(G)
    M = scipy.linalg.solve_triangular(L, G_sketch, lower=True)
    M = scipy.linalg.solve_triangular(L, M.T, lower=True)
    return float(np.max(np.abs(np.linalg.eigvalsh((M + M.T) / 2 - np.eye(len(G))))))


# --------------------------------------------------------------------------- run


def _public_dispatch_works():
    """Whether the public functions already take Dask arrays (tiny call on the cluster)."""
    import dask.array as da

    from sketchlearn.linear_model import gauss_markov
    from sketchlearn.sketching import sketch

    rng = np.random.default_rng(5)
    Xn = rng.normal(size=(64, 3))
    yn = Xn @ [1.0, 2.0, 3.0] + rng.normal(size=64)
    X, y = da.from_array(Xn, chunks=(16, 3)), da.from_array(yn, chunks=16)
    try:
        r = gauss_markov(X, y)
        S = sketch(X, "countsketch", 8, random_state=0)
    except Exception:
        return False
    ref = gauss_markov(Xn, yn)
    return (np.allclose(r.coef, ref.coef, rtol=1e-10) and type(S).__module__ == "numpy"
            and hasattr(r, "n_passes"))


def _row(experiment, method, data, m, *, digits=None, distortion=None, passes=None,
         repeats=1, note=""):
    # a full run takes hours and writes its table at the end: say what each row got
    print(f"  {experiment} / {method}: "
          + ("-" if m is None else f"{m['seconds']:.1f} s, {m['status']}")
          + f", digits {digits}", file=sys.stderr, flush=True)
    return {"experiment": experiment, "method": method, "rows": data.n, "cols": data.p,
            "digits": digits, "distortion": distortion,
            "wall_s": None if m is None else m["seconds"], "repeats": repeats,
            "worker_cpu_s": None if m is None else m.get("worker_cpu_s"),
            "passes": passes,
            "worker_peak_MiB": None if m is None else H.mib(m["worker_peak_bytes"]),
            "cluster_peak_MiB": None if m is None else H.mib(m["cluster_peak_bytes"]),
            "spilled_MiB": None if m is None else H.mib(m["spilled_peak_bytes"]),
            "limit_MiB": H.mib(MEMORY_LIMIT),
            "status": "ok" if m is None else m["status"]
            + (f"; {m['workers_restarted']} worker(s) restarted" if m["workers_restarted"] else ""),
            "note": note}


def _passes(m, data):
    rows = m["rows_read"].get("X")
    return None if rows is None else round(rows / data.n, 2)


def _timed(cl, fn, repeats, timeout):
    """``repeats`` measured calls; the median time, the other figures of the last call
    (the largest peak memory over the calls)."""
    runs = []
    for _ in range(repeats):
        runs.append(cl.measure(fn, timeout))
        if runs[-1]["status"] != "ok":
            break
    m = dict(runs[-1])
    m["seconds"] = statistics.median(r["seconds"] for r in runs)
    m["times"] = [r["seconds"] for r in runs]
    for key in ("worker_peak_bytes", "cluster_peak_bytes", "spilled_peak_bytes"):
        vals = [r[key] for r in runs]
        m[key] = None if None in vals else max(vals)
    m["worker_cpu_s"] = statistics.median(r["worker_cpu_s"] for r in runs)
    return m, len(runs)


def _ols_rows(cl, spark, data, public, repeats, spark_repeats, timeout, raw):
    X, y = data.arrays()
    fi = data.fit_intercept
    exp = f"OLS {data.label}"
    contenders = {
        "sketchlearn gauss_markov": lambda: _ours_fit(X, y, fi, public),
        "sketchlearn gauss_markov(refine='coef')": lambda: _ours_fit(X, y, fi, public,
                                                                      "coef"),
        "sketchlearn gauss_markov(refine=False)": lambda: _ours_fit(X, y, fi, public, False),
        "dask.array.linalg.lstsq": lambda: _lstsq_fit(X, y, fi),
        "normal equations (Dask sums)": lambda: _normal_fit(X, y, fi),
        "dask-ml LinearRegression(newton)": lambda: _daskml_fit(X, y, fi),
    }
    rows, ours_t = [], None
    for name, fn in contenders.items():
        m, reps = _timed(cl, fn, repeats, timeout)
        coef, reported = m["value"] if m["value"] is not None else (None, None)
        digits = _digits(coef, data.truth) if m["status"] == "ok" else None
        passes = _passes(m, data) if m["status"] == "ok" else None
        note = ""
        if reported is not None:
            note = f"n_passes reported: {reported}"
        if name == "sketchlearn gauss_markov":
            ours_t = m["seconds"] if m["status"] == "ok" else None
        rows.append(_row(exp, name, data, m, digits=digits, passes=passes, repeats=reps,
                         note=note))
        raw.setdefault("measurements", []).append(
            {k: v for k, v in m.items() if k != "value"} | {"experiment": exp, "method": name,
                                                            "coef": _listed(coef)})
    if spark.error is None:
        df = spark.frame(data.parquet, data.p)
        times, cpu, peak, coef, status = [], [], 0, None, "ok"
        for _ in range(spark_repeats):
            stop, th, pk = _jvm_peak_sampler(spark.pid)
            c0 = _process_cpu(spark.pid)
            t0 = time.perf_counter()
            try:
                coef = spark.fit(df, fi)
            except Exception as exc:
                status = f"failed: {type(exc).__name__}: {str(exc)[:160]}"
            times.append(time.perf_counter() - t0)
            cpu.append(_process_cpu(spark.pid) - c0)
            stop.set()
            th.join()
            peak = max(peak, pk[0])
            if status != "ok":
                break
        m = {"seconds": statistics.median(times), "status": status, "worker_peak_bytes": peak,
             "cluster_peak_bytes": peak, "spilled_peak_bytes": None, "workers_restarted": 0,
             "worker_cpu_s": statistics.median(cpu)}
        r = _row(exp, f"Spark {spark.version} MLlib LinearRegression(normal)", data, m,
                 digits=_digits(coef, data.truth) if status == "ok" else None, passes=None,
                 repeats=len(times), note="memory and CPU: the local[2] JVM; passes: 1 "
                 "(one treeAggregate of A^T A, not measured)")
        r["limit_MiB"] = H.mib(N_WORKERS * MEMORY_LIMIT)
        rows.append(r)
        raw.setdefault("measurements", []).append(
            {"experiment": exp, "method": "spark", "times": times, "jvm_peak_bytes": peak,
             "coef": _listed(coef), "status": status})
    else:
        rows.append(_row(exp, "Spark MLlib LinearRegression(normal)", data, None,
                         note=f"not run: {spark.error}"))
    for r in rows:
        if r["wall_s"] is not None and ours_t and r["status"].startswith("ok"):
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
    return rows


def _sketch_rows(cl, data, public, repeats, timeout, raw):
    X, _ = data.arrays()
    exp = f"sketch {data.label}"
    mg, _ = _timed(cl, lambda: _gram(X), 1, timeout)
    G = mg["value"]
    raw["gram_pass"] = {k: v for k, v in mg.items() if k != "value"}
    contenders = {
        f"sketchlearn CountSketch m={SKETCH_SIZE}": lambda: _sketch_fit(X, "countsketch",
                                                                         SKETCH_SIZE, public),
        f"sketchlearn SRHT m={SKETCH_SIZE}": lambda: _sketch_fit(X, "srht", SKETCH_SIZE, public),
        f"dask svd_compressed k={data.p}": lambda: _svd_fit(X, data.p),
    }
    rows = []
    for name, fn in contenders.items():
        m, reps = _timed(cl, fn, repeats, timeout)
        dist = _distortion(m["value"], G) if m["status"] == "ok" and G is not None else None
        rows.append(_row(exp, name, data, m, distortion=dist, repeats=reps,
                         passes=_passes(m, data) if m["status"] == "ok" else None))
        raw.setdefault("measurements", []).append(
            {k: v for k, v in m.items() if k != "value"} | {"experiment": exp, "method": name})
    ours_t = rows[0]["wall_s"] if rows[0]["status"] == "ok" else None
    for r in rows:
        if r["wall_s"] is not None and ours_t and r["status"].startswith("ok"):
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
    return rows


RIDGE_ALPHAS = np.logspace(-2, 4, 10)
RIDGE_MEMBERS = 20


def _ridge_ours(X, y):
    from sketchlearn.ensemble import RidgeEnsembleCV

    m = RidgeEnsembleCV(alphas=RIDGE_ALPHAS, n_estimators=RIDGE_MEMBERS, cv="gcv",
                        fit_intercept=False, random_state=0).fit(X, y)
    return np.asarray(m.coef_, dtype=np.float64), float(m.best_params_["alpha"])


def _ridge_normal_gcv(X, y):
    """What a user would write without an ensemble: one pass for X^T X, X^T y and
    y^T y, then ridge and its GCV score for every alpha from one eigendecomposition."""
    import dask

    G, b, yy = dask.compute(X.T @ X, X.T @ y, y @ y)
    n = X.shape[0]
    lam, V = np.linalg.eigh(G)
    z = V.T @ b
    best = None
    for alpha in RIDGE_ALPHAS:
        coef_v = z / (lam + alpha)
        # ||y - X c||^2 = y'y - 2 c'b + c'Gc, with c = V coef_v
        rss = yy - 2 * coef_v @ z + np.sum(lam * coef_v**2)
        df = np.sum(lam / (lam + alpha))
        score = (rss / n) / (1 - df / n) ** 2
        if best is None or score < best[0]:
            best = (score, alpha, V @ coef_v)
    return best[2], float(best[1])


def _ridge_daskml(X, y):
    from dask_ml.linear_model import LinearRegression
    from dask_ml.model_selection import GridSearchCV

    search = GridSearchCV(LinearRegression(penalty="l2", solver="lbfgs", fit_intercept=False),
                          {"C": list(1.0 / RIDGE_ALPHAS)}, cv=3, scoring=_neg_mse)
    search.fit(X, y)
    m = search.best_estimator_
    return np.asarray(m.coef_, dtype=np.float64), 1.0 / float(search.best_params_["C"])


def _neg_mse(est, X, y):
    """dask-ml's default scorer (its r2_score) fails on 1-D Dask targets with current
    Dask, so the search is scored by the mean squared error."""
    import dask

    return -float(dask.compute(((y - est.predict(X)) ** 2).mean())[0])


def _ridge_rows(cl, data, repeats, timeout, raw):
    X, y = data.arrays()
    exp = (f"RidgeEnsembleCV {len(RIDGE_ALPHAS)} alphas x {RIDGE_MEMBERS} members, "
           f"{data.label}")
    contenders = {
        "sketchlearn RidgeEnsembleCV(cv='gcv')": lambda: _ridge_ours(X, y),
        "ridge + GCV from summed normal equations": lambda: _ridge_normal_gcv(X, y),
        "dask-ml GridSearchCV(LinearRegression(l2, lbfgs), cv=3)": lambda: _ridge_daskml(X, y),
    }
    rows = []
    for name, fn in contenders.items():
        m, reps = _timed(cl, fn, repeats, timeout)
        coef, alpha = m["value"] if m["value"] is not None else (None, None)
        note = ""
        if coef is not None:
            err = np.linalg.norm(coef - data.truth) / np.linalg.norm(data.truth)
            note = f"alpha chosen {alpha:.3g}; ||coef - beta|| / ||beta|| = {err:.2e}"
        rows.append(_row(exp, name, data, m, repeats=reps, note=note,
                         passes=_passes(m, data) if m["status"] == "ok" else None))
        raw.setdefault("measurements", []).append(
            {k: v for k, v in m.items() if k != "value"} | {"experiment": exp, "method": name,
                                                            "alpha": alpha})
    ours_t = rows[0]["wall_s"] if rows[0]["status"] == "ok" else None
    for r in rows:
        if r["wall_s"] is not None and ours_t and r["status"].startswith("ok"):
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
    return rows


def _warm_up(cl, public):
    """Numba compilation on the workers, lazy imports, one tiny call of each contender."""
    import dask.array as da

    rng = np.random.default_rng(1)
    Xn = rng.normal(size=(256, 4))
    yn = Xn @ [1.0, -2.0, 3.0, 0.5] + 1.0
    X, y = da.from_array(Xn, chunks=(64, 4)), da.from_array(yn, chunks=64)
    calls = {"sketchlearn gauss_markov": lambda: _ours_fit(X, y, True, public),
             "dask lstsq": lambda: _lstsq_fit(X, y, True),
             "normal equations": lambda: _normal_fit(X, y, True),
             "sketchlearn countsketch": lambda: _sketch_fit(X, "countsketch", 16, public),
             "sketchlearn srht": lambda: _sketch_fit(X, "srht", 16, public),
             "svd_compressed": lambda: _svd_fit(X, 4),
             "dask-ml": lambda: _daskml_fit(X, y, True),
             "sketchlearn RidgeEnsembleCV": lambda: _ridge_ours(X, y),
             "dask-ml GridSearchCV": lambda: _ridge_daskml(X, y)}
    errors = {}
    for name, fn in calls.items():
        try:
            fn()
        except Exception as exc:  # the timed call will fail too and say so in the table
            errors[name] = (f"{name} failed on a tiny warm-up problem: "
                            f"{type(exc).__name__}: {str(exc)[:160]}")
    return errors


def run(quick: bool) -> dict:
    import dask
    import distributed

    if quick:
        filip_tiles, tiles_per_chunk = 2400, 300  # 196 800 rows x 10, 8 chunks
        n_syn, chunk_syn = 2**17, 2**14  # 8 chunks of 2^14 x 100
        n_ridge = n_syn
        repeats, timeout = 3, 300
    else:
        filip_tiles, tiles_per_chunk = 400_000, 1600  # 32.8e6 rows x 10, 250 chunks
        n_syn, chunk_syn = 2**25, 2**14  # 2048 chunks of 2^14 x 100 (12.5 MiB)
        n_ridge = 10**7  # the size for the ridge rows (611 chunks of the sketch data)
        repeats, timeout = 1, 1800
    p = 100
    tmp = Path(tempfile.mkdtemp(prefix="sketchlearn-dask-bench-"))
    rows, notes, raw = [], [], {}
    cl = spark = None
    try:
        cl = _Cluster(tmp)
        public = _public_dispatch_works()
        raw["warm_up_errors"] = _warm_up(cl, public)
        idle = cl.client.run(_worker_stats)
        raw["worker_idle_rss_bytes"] = [v["rss"] for v in idle.values()]
        t0 = time.perf_counter()
        datasets = []
        if "filip" in PARTS:
            datasets.append(_filip_data(cl.client, tmp, filip_tiles, tiles_per_chunk))
        if "cond" in PARTS:
            datasets.append(_synthetic_data(cl.client, tmp, n_syn, p, chunk_syn))
        sk = None
        if {"sketch", "ridge"} & set(PARTS) or quick:
            sk = _sketch_data(cl.client, tmp, n_syn, p, chunk_syn)
        if quick and sk is not None:  # also an OLS row, the well-conditioned case (at full
            datasets.append(sk)  # size the OLS rows are Filip and cond 1e8 only)
        described = datasets if sk is None or sk in datasets else datasets + [sk]
        raw["write_zarr_s"] = time.perf_counter() - t0
        spark = _Spark(tmp)
        if spark.error is None:
            t0 = time.perf_counter()
            raw["parquet_bytes"] = [_write_parquet(cl.client, d, tmp) for d in datasets]
            raw["write_parquet_s"] = time.perf_counter() - t0
            # warm-up: JVM classes, Parquet reader, the solver, on the smaller data
            if datasets:
                spark.fit(spark.frame(datasets[0].parquet, datasets[0].p).limit(1000), True)
        for d in datasets:
            rows += _ols_rows(cl, spark, d, public, repeats, 1, timeout, raw)
        if "sketch" in PARTS:
            rows += _sketch_rows(cl, sk, public, repeats, timeout, raw)
        if "ridge" in PARTS:
            rows += _ridge_rows(cl, sk.head(n_ridge), repeats, timeout, raw)
        raw["datasets"] = {d.label: {"n": d.n, "p": d.p, "chunk_rows": d.chunk,
                                     "logical_bytes": d.n * (d.p + (d.y_path is not None)) * 8,
                                     **d.meta} for d in described}
        limit_total = N_WORKERS * MEMORY_LIMIT
        for d in described:
            logical = d.n * (d.p + (d.y_path is not None)) * 8
            notes.append(
                f"{d.label}: {d.n} x {d.p} in row chunks of {d.chunk}; {logical / 2**30:.2f} "
                f"GiB as float64 ({logical / limit_total:.2f}x the workers' total memory limit), "
                f"{d.meta['disk_bytes'] / 2**30:.2f} GiB on disk as zarr "
                f"({d.meta['compression']})"
                + (f"; condition number of the first chunk {d.meta['cond_first_chunk']:.2e}"
                   if "cond_first_chunk" in d.meta else "")
                + (f" ({d.meta['cond_equilibrated_first_chunk']:.2e} with unit-norm columns)"
                   if "cond_equilibrated_first_chunk" in d.meta else "") + ".")
        notes += [
            f"Cluster: distributed.LocalCluster(n_workers={N_WORKERS}, threads_per_worker=1, "
            f"processes=True, memory_limit={MEMORY_LIMIT // 2**20} MiB), worker env "
            f"{WORKER_ENV}; spilling to disk allowed up to {SPILL_CAP // 2**30} GiB per worker "
            "(distributed.worker.memory.max-spill), one Client; Spark local[2] with "
            f"spark.driver.memory = {N_WORKERS * MEMORY_LIMIT // 2**20} MiB (the same total) "
            "and the same thread variables.",
            "Filip: NIST StRD Filip (degree-10 polynomial, 82 rows) tiled: repeating rows keeps "
            "the certified coefficients; digits = min over intercept and the 10 coefficients "
            "of sketchlearn.metrics.log_relative_error against the certified values (the "
            "float64 ceiling on Filip is about 7.6 digits for the in-memory path).",
            f"Integer design: X = 2^{SHIFT} w 1^T + Z with w, Z uniform integers in [-4, 4] "
            "(chunk i from default_rng([seed, i])), beta random nonzero integers in [-8, 8], "
            "y = X beta exact in float64 (integer sums below 2^53), so beta is the exact "
            "least-squares solution (zero residual); fitted without intercept; digits = min "
            "LRE over the 100 coefficients (at most 15).",
            "passes = rows of X read on the workers / n (counted by the zarr reader), so "
            "the Dask contenders' counts are measured, not assumed; sketchlearn's own "
            "n_passes is in the note. Spark's pass count is Spark's documented one "
            "(WeightedLeastSquares: one aggregation), not measured.",
            "worker_peak_MiB: largest RSS high-water mark (VmHWM, reset before each "
            "contender) over the worker processes, baseline (imports, compiled code) "
            "included, against limit_MiB per worker (none where the workers were "
            "restarted: their high-water marks start afresh); cluster_peak_MiB: peak of "
            "the sum over workers from distributed.diagnostics.MemorySampler "
            "(measure='process', 0.25 s); "
            "spilled_MiB: peak of MemorySampler(measure='spilled'). For Spark the peak RSS "
            "of its JVM against the same total.",
            "wall_s: median of the repeats of one contender, run back to back (not "
            "interleaved: memory and rows read are measured per contender); Spark: one run; "
            "full size: one run each. speedup = contender time / sketchlearn time (above "
            "1: ours faster). "
            f"A contender is stopped (workers restarted) after {timeout} s, or when the "
            f"workers stay paused at their memory limit (or idle) for {STALL_S} s. "
            "worker_cpu_s: CPU "
            "seconds of the worker processes during the call (summed over workers; median "
            "of the repeats): less sensitive than wall time to other jobs on a shared "
            "machine; the Dask client and scheduler (this process) are not included.",
            "Spark time: LinearRegression.fit on a DataFrame read lazily from Parquet (one "
            "file per zarr chunk, written beforehand by the Dask workers) and a "
            "VectorAssembler; it includes reading Parquet and assembling vectors, not the "
            "JVM start, nor writing Parquet. Warmed up on 1000 rows first. Spark solves "
            "the normal equations by Cholesky; where A^T A is numerically singular (Filip) "
            "its WeightedLeastSquares falls back to a quasi-Newton solver on the aggregated "
            "normal equations (logged as 'LBFGS: Failure'; no extra pass). Spark's BLAS is "
            "its Java fallback (no native libblas on this machine).",
            "sketchlearn gauss_markov: the TSQR pass also sums the Gram matrix of [A | y] "
            "in doubled precision, and where the scaled condition number is below "
            "sqrt(1e-10 / k) / eps (Filip and the integer design are) the refinement runs "
            "on the client from it, in one pass; past that, one more pass a refinement "
            "step. refine=False: the TSQR pass and the solve only, "
            "without the refinement that gives the certified digits (one pass; sigma2 "
            "from the R of [A | y]); refine='coef': the coefficients refined, not the "
            "standard errors. dask.array.linalg."
            "lstsq and svd_compressed compute the first TSQR level of every chunk before "
            "the merged R is known and keep each chunk's Q (or X chunk) until then: they "
            "need about n x p x 8 bytes of worker memory or spill, which is why they read "
            "the data once. gauss_markov keeps its whitened chunks and their QR factors in "
            "the workers' memory after the first pass when 3 n (k + 1) 8 bytes fit in a "
            "quarter of the workers' memory limits (then it reads the data once even past "
            "the Gram matrix's limit), and otherwise keeps only k x k factors.",
            "Worker RSS at rest after the warm-up (imports, compiled kernels): "
            + ", ".join(f"{b / 2**20:.0f} MiB" for b in raw["worker_idle_rss_bytes"] if b)
            + "; every peak includes it.",
            "Sketch rows: S X for a well-conditioned design (one pass), m = "
            f"{SKETCH_SIZE} rows; svd_compressed(X, k=p) (no power iterations) computing "
            "(s, V). distortion = ||U^T S^T S U - I||_2 with X = U T, computed as "
            "||L^-1 G L^-T - I||_2 where G is the sketch's Gram matrix ((SX)^T SX, or "
            "V s^2 V^T for the SVD) and L L^T = X^T X (one more Dask pass, not timed). "
            "svd_compressed with k = p is exact up to rounding: its row shows the cost of "
            "an exact rank-p factorisation, the sketches a (1 +- eps) embedding in one pass.",
            "sketchlearn standard errors come with its fit (the others return coefficients "
            "only).",
            f"Ridge rows: alphas = logspace(-2, 4, {len(RIDGE_ALPHAS)}) on the well-conditioned "
            "integer design (y = X beta exact, so every method should pick the smallest "
            f"alpha and find beta); RidgeEnsembleCV with {RIDGE_MEMBERS} members (subsamples "
            "of half the rows, its default), cv='gcv', scored from one factorisation per "
            "member (its rows drawn per chunk, keyed by global row), passes counted by the "
            "zarr reader; the hand-written alternative sums X^T X, X^T y and y^T y in one "
            "pass and scores GCV for every alpha from one eigendecomposition (one ridge fit, "
            "no ensemble; it squares the condition number, harmless on this design); dask-ml "
            "refits LinearRegression(penalty='l2', solver='lbfgs', C=1/alpha) for every "
            "alpha on 3 folds.",
            "Entry points: " + ("the public sketchlearn.linear_model.gauss_markov and "
                                "sketchlearn.sketching.sketch on Dask arrays" if public else
                                "the private gauss_markov_dask / sketch_dask (the public "
                                "functions did not yet take Dask arrays)") + ".",
            f"Versions: dask {dask.__version__}, distributed {distributed.__version__}, "
            f"zarr {_version('zarr')}, dask-ml {_version('dask_ml')}, pyspark "
            f"{_version('pyspark')}; writing the data took {raw['write_zarr_s']:.0f} s (zarr)"
            + (f" and {raw['write_parquet_s']:.0f} s (Parquet)" if "write_parquet_s" in raw
               else "") + ", not counted.",
        ]
        notes += list(raw["warm_up_errors"].values())
        if spark.error is not None:
            notes.append(f"Spark could not run: {spark.error}")
        notes.append("The machine line's BLAS and Numba thread counts are those of this "
                     "(client) process, which only solves k x k systems; the workers and the "
                     "Spark JVM run with the one-thread environment above.")
        if quick:
            notes.append("Quick run: small sizes, the data fit in the workers' memory; the "
                         "out-of-core claim holds only for the full run.")
    finally:
        if spark is not None:
            spark.close()
        if cl is not None:
            cl.close()
        shutil.rmtree(tmp, ignore_errors=True)
    columns = ["experiment", "method", "rows", "digits", "distortion", "wall_s", "repeats",
               "speedup", "worker_cpu_s", "passes", "worker_peak_MiB", "cluster_peak_MiB",
               "spilled_MiB", "limit_MiB", "status", "note"]
    return {"name": NAME, "description": DESCRIPTION, "columns": columns, "rows": rows,
            "notes": notes, "raw": raw}


def _listed(a):
    return None if a is None else [float(v) for v in np.ravel(a)]


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:
        return None


if __name__ == "__main__":
    import argparse

    # through the module imported by name, as run.py does: the workers unpickle its
    # functions by reference (and count rows read in its module state)
    import bench_dask_linear as bench

    parser = argparse.ArgumentParser(description="Some parts of the dask_linear benchmark "
                                     "(the whole: benchmarks/run.py --only dask_linear).")
    parser.add_argument("--parts", nargs="+", required=True, choices=PARTS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    bench.PARTS = tuple(args.parts)
    H.settings.quick, H.settings.threads = args.quick, args.threads
    t0, load_before = time.perf_counter(), H.load_average()
    with H.pinned_threads(args.threads):
        result = bench.run(args.quick)
    result["name"] = f"{NAME}_{'_'.join(args.parts)}"
    result["notes"].insert(0, "Parts of the run only (python benchmarks/bench_dask_linear.py "
                           f"--parts {' '.join(args.parts)}{' --quick' if args.quick else ''}).")
    result.update(quick=args.quick, elapsed_s=time.perf_counter() - t0,
                  machine=H.machine_info(),
                  load_average={"before": load_before, "after": H.load_average()})
    print(H.markdown_report(result))
    print("wrote", *H.write_results(result, args.out))
