"""Distributions and partly observed matrices on Dask (issue 18, point 6).

The cluster, its limits, the measuring and Spark are those of ``bench_dask_linear``
(imported from it): one ``distributed.LocalCluster`` of 2 worker processes with 1
thread, one BLAS / OpenMP / Numba thread and 1 GiB each, one ``Client``; Spark MLlib
through pyspark in ``local[2]`` with the same total memory. Every data set is written
by the workers, chunk by chunk, into a temporary folder (deleted at the end) and read
back from there by every contender.

Three experiments:

- **Completion.** A low-rank-plus-noise matrix (rank 20, decaying spectrum), its
  observed entries drawn without repetition, 10 % of them held out, written as
  Parquet (one file per row range). sketchlearn ``AltMinCompleter`` on the Dask
  triplets read from those files against Spark MLlib ``ALS`` on the same files: same
  rank, the same number of sweeps, 8 user and 8 item blocks, the regularisation
  matched (see the notes). Held-out RMSE, time per sweep (from runs with 1 and with
  ``S`` sweeps), total time, peak memory.
- **Compress++.** ``n`` points of N(0, I_16) as zarr: ``compress_thin`` on the Dask
  array against a uniform subsample of the same size and in-memory ``compress_thin``
  on a slice of the first rows; MMD to the population (closed form) and to a
  held-out sample (``sketchlearn.kernels.mmd``); time.
- **Sliced Wasserstein** between two zarr clouds: ``quantiles="sketch"`` and
  ``quantiles="exact"`` (the distributed sample sort) against quantiles from
  ``dask.array.percentile(..., internal_method="tdigest")`` at a grid of levels,
  integrated by hand; error against the exact mode, the sketch's reported bound, time.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import _harness as H
import numpy as np
from bench_dask_linear import (
    MEMORY_LIMIT,
    N_WORKERS,
    SPILL_CAP,
    STALL_S,
    WORKER_ENV,
    _Cluster,
    _CountedZarr,
    _dir_bytes,
    _jvm_peak_sampler,
    _process_cpu,
    _Spark,
    _version,
    _worker_stats,
)

NAME = "dask_distributions"
DESCRIPTION = ("Completion, Compress++ and sliced Wasserstein on a 2-worker Dask cluster: "
               "blocked ALS vs Spark MLlib ALS, Compress++ vs subsample / in-memory slice, "
               "sketch vs exact vs tdigest quantiles")

# Completion
RANK = 20
N_PARTS = 8  # input partitions = row and column blocks of ours = Spark's user/item blocks
SPECTRUM_DECAY = 0.75  # singular values of the signal: 0.75^j, j = 0..19 (normalised)
NOISE = 0.3
HOLDOUT = 0.1
REG_PARAM = 0.1  # Spark's regParam (its default); ours: alpha = REG_PARAM |Omega| / sqrt(mn)
SWEEPS = 10
# Compress++ and sliced Wasserstein
DIM = 16
N_PROJECTIONS = 16
P_SW = 2.0
TDIGEST_LEVELS = 1000
SEED = 20318


# --------------------------------------------------------------------------- workers


def _signal_factors(seed, part, rows, n, k):
    """Row factors of rows ``part`` (scaled by the spectrum) and the column factors."""
    s = SPECTRUM_DECAY ** np.arange(k)
    s = s / np.sqrt(np.sum(s**2))  # entries of the signal have variance 1
    A = np.random.default_rng([seed, 1, part]).normal(size=(rows, k)) * s
    B = np.random.default_rng([seed, 0]).normal(size=(n, k))
    return A, B


def _write_ratings_part(seed, part, r0, r1, n, k, nnz, train_file, test_file):
    """Entries of rows [r0, r1): ``nnz`` distinct positions, value = signal + noise;
    a random 10 % go to ``test_file``. Written in row groups of at most 2^18 entries,
    so that a worker holds about 300 MiB at most."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, 2, part])
    A, B = _signal_factors(seed, part, r1 - r0, n, k)
    lin = np.sort(rng.choice((r1 - r0) * n, size=nnz, replace=False))
    held = rng.random(nnz) < HOLDOUT
    schema = pa.schema([("row", pa.int32()), ("col", pa.int32()), ("value", pa.float64())])
    counts = [0, 0]
    with pq.ParquetWriter(train_file, schema) as wtr, pq.ParquetWriter(test_file, schema) as wte:
        for s in range(0, nnz, 2**18):
            li = lin[s:s + 2**18]
            r, c = li // n, li % n
            v = np.einsum("ij,ij->i", A[r], B[c]) + NOISE * rng.normal(size=li.shape[0])
            h = held[s:s + 2**18]
            for writer, mask, j in ((wtr, ~h, 0), (wte, h, 1)):
                writer.write_table(pa.table({"row": (r[mask] + r0).astype(np.int32),
                                             "col": c[mask].astype(np.int32),
                                             "value": v[mask]}, schema=schema))
                counts[j] += int(mask.sum())
    return counts


def _write_cloud_chunk(path, kind, seed, index, start, stop, d):
    """Rows [start, stop) of a cloud: ``gauss`` N(0, I_d); ``student``: a Student-t(5)
    scaled to unit variance, times per-coordinate scales in [0.5, 2], plus a shift."""
    import zarr

    rng = np.random.default_rng([seed, index])
    if kind == "gauss":
        Z = rng.normal(size=(stop - start, d))
    else:
        g = np.random.default_rng([seed, 10**6])
        scale, shift = g.uniform(0.5, 2.0, size=d), g.normal(scale=0.5, size=d)
        Z = rng.standard_t(5, size=(stop - start, d)) * math.sqrt(3 / 5) * scale + shift
    zarr.open_array(path, mode="r+")[start:stop] = Z
    return stop - start


# --------------------------------------------------------------------------- data


def _write_ratings(client, tmp, m, n, nnz):
    import distributed

    train, test = tmp / "ratings-train.parquet", tmp / "ratings-test.parquet"
    train.mkdir()
    test.mkdir()
    edges = np.linspace(0, m, N_PARTS + 1).astype(np.int64)
    per = np.diff(np.linspace(0, nnz, N_PARTS + 1).astype(np.int64))
    futs = [client.submit(_write_ratings_part, SEED, i, int(edges[i]), int(edges[i + 1]), n,
                          RANK, int(per[i]), str(train / f"part-{i:05d}.parquet"),
                          str(test / f"part-{i:05d}.parquet"), pure=False)
            for i in range(N_PARTS)]
    distributed.wait(futs)
    counts = [f.result() for f in futs]
    return {"train": train, "test": test, "m": m, "n": n, "nnz": nnz,
            "train_counts": [c[0] for c in counts], "n_train": sum(c[0] for c in counts),
            "n_test": sum(c[1] for c in counts),
            "disk_bytes": _dir_bytes(train) + _dir_bytes(test)}


def _write_cloud(client, tmp, label, kind, seed, n, chunk):
    import distributed
    import zarr

    path = str(tmp / f"{label}.zarr")
    zarr.create_array(store=path, shape=(n, DIM), chunks=(chunk, DIM), dtype="float64")
    futs = [client.submit(_write_cloud_chunk, path, kind, seed, i, s, min(s + chunk, n), DIM,
                          pure=False) for i, s in enumerate(range(0, n, chunk))]
    distributed.wait(futs)
    assert sum(f.result() for f in futs) == n
    return {"path": path, "n": n, "chunk": chunk, "kind": kind,
            "disk_bytes": _dir_bytes(path)}


def _cloud_array(cloud, tag):
    import dask.array as da

    return da.from_array(_CountedZarr(cloud["path"], tag), chunks=(cloud["chunk"], DIM),
                         name=f"zarr-{tag}-{uuid.uuid4().hex[:8]}", meta=np.empty((0, 0)))


# --------------------------------------------------------------------------- measuring


def _measure(cl, fn, timeout):
    """``_Cluster.measure`` plus this process's (client and scheduler) RSS high-water
    mark above its level before the call."""
    rss_before = H._read_status("VmRSS")
    reset = H._reset_hwm()
    m = cl.measure(fn, timeout)
    hwm = H._read_status("VmHWM")
    m["client_peak_bytes"] = (max(hwm - rss_before, 0) if reset and hwm and rss_before
                              else None)
    return m


def _repeat(cl, fn, repeats, timeout):
    """``repeats`` measured calls (fewer if one fails): see ``_merge_runs``."""
    runs = []
    for _ in range(repeats):
        runs.append(_measure(cl, fn, timeout))
        if runs[-1]["status"] != "ok":
            break
    return _merge_runs(runs)


def _row(experiment, method, n, m, **extra):
    # a full run takes an hour and writes its table at the end: say what each row got
    print(f"  {experiment} / {method}: "
          + ("-" if m is None else f"{m['seconds']:.1f} s, {m['status']}"),
          file=sys.stderr, flush=True)
    row = {"experiment": experiment, "method": method, "n": n}
    if m is not None:
        row.update({
            "wall_s": m["seconds"], "repeats": m.get("repeats", 1),
            "worker_cpu_s": m.get("worker_cpu_s"),
            "worker_peak_MiB": H.mib(m.get("worker_peak_bytes")),
            "cluster_peak_MiB": H.mib(m.get("cluster_peak_bytes")),
            "spilled_MiB": H.mib(m.get("spilled_peak_bytes")),
            "client_peak_MiB": H.mib(m.get("client_peak_bytes")),
            "status": m["status"] + (f"; {m['workers_restarted']} worker(s) restarted"
                                     if m.get("workers_restarted") else "")})
    else:
        row["status"] = "not run"
    row.update(extra)
    return row


def _passes(m, tag, n):
    rows = m.get("rows_read", {}).get(tag)
    return None if rows is None else round(rows / n, 2)


def _raw(m, **extra):
    return {k: v for k, v in m.items() if k not in ("value", "values")} | extra


# --------------------------------------------------------------------------- completion


def _read_part(path):
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    return (t["row"].to_numpy(), t["col"].to_numpy(), t["value"].to_numpy())


def _triplets(data):
    """The training triplets as a tuple (row, col, value, shape) of Dask arrays, one chunk
    per Parquet file (each file read once per computation)."""
    import dask
    import dask.array as da

    files = sorted(Path(data["train"]).glob("part-*.parquet"))
    tag = uuid.uuid4().hex[:8]
    parts = [dask.delayed(_read_part, pure=True)(str(f), dask_key_name=f"ratings-{tag}-{i}")
             for i, f in enumerate(files)]
    cols = []
    for j, dtype in enumerate((np.int32, np.int32, np.float64)):
        cols.append(da.concatenate([da.from_delayed(p[j], shape=(c,), dtype=dtype)
                                    for p, c in zip(parts, data["train_counts"], strict=True)]))
    return (*cols, (data["m"], data["n"]))


class _SweepClock(io.TextIOBase):
    """Stands in for stdout during a fit with verbose=2: the time of each line
    "AltMin sweep i: observed RMSE ..." that the estimator prints after a sweep."""

    def __init__(self):
        self.times = []

    def write(self, text):
        if "AltMin sweep" in text:
            self.times.append(time.perf_counter())
        return len(text)


def _ours_als(data, sweeps, alpha, solver):
    """Fit; returns ``(estimator, sweep end times)`` (verbose=2 prints one line per
    sweep, its progress bar on stderr is discarded)."""
    from sketchlearn.completion import AltMinCompleter

    est = AltMinCompleter(rank=RANK, alpha=alpha, max_iter=sweeps, tol=0.0, solver=solver,
                          random_state=0, verbose=2)
    clock = _SweepClock()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(clock), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")  # not converged (tol=0), degrees of freedom
        est.fit(_triplets(data))
    return est, [t - t0 for t in clock.times]


def _test_entries(data):
    import pyarrow.parquet as pq

    t = pq.read_table(str(data["test"]))
    return (t["row"].to_numpy().astype(np.int64), t["col"].to_numpy().astype(np.int64),
            t["value"].to_numpy())


def _spark_als(spark, data, sweeps, alpha_spark):
    from pyspark.ml.recommendation import ALS

    df = spark.spark.read.parquet(str(data["train"]))
    als = ALS(rank=RANK, maxIter=sweeps, regParam=alpha_spark, numUserBlocks=N_PARTS,
              numItemBlocks=N_PARTS, implicitPrefs=False, nonnegative=False, userCol="row",
              itemCol="col", ratingCol="value", coldStartStrategy="drop", seed=0)
    return als.fit(df)


def _spark_rmse(spark, data, model):
    from pyspark.sql import functions as F

    test = spark.spark.read.parquet(str(data["test"]))
    pred = model.transform(test)
    r = pred.agg(F.avg((F.col("prediction") - F.col("value")) ** 2).alias("mse"),
                 F.count("*").alias("kept")).collect()[0]
    return math.sqrt(r["mse"]), int(r["kept"])


def _spark_timed(spark, fn):
    stop, th, pk = _jvm_peak_sampler(spark.pid)
    c0 = _process_cpu(spark.pid)
    t0 = time.perf_counter()
    status, value = "ok", None
    try:
        value = fn()
    except Exception as exc:
        status = f"failed: {type(exc).__name__}: {str(exc)[:160]}"
    seconds = time.perf_counter() - t0
    cpu = _process_cpu(spark.pid) - c0
    stop.set()
    th.join()
    return {"seconds": seconds, "status": status, "value": value, "worker_cpu_s": cpu,
            "worker_peak_bytes": pk[0], "cluster_peak_bytes": pk[0],
            "spilled_peak_bytes": None, "workers_restarted": 0}


def _completion_rows(cl, spark, data, repeats, timeout, raw, solvers=("auto", "exact")):
    m, n, n_train = data["m"], data["n"], data["n_train"]
    alpha = REG_PARAM * n_train / math.sqrt(m * n)
    exp = f"completion {m} x {n}, rank {RANK}, {data['nnz']} entries"
    tr, tc, tv = _test_entries(data)
    rows, out = [], {}
    for solver in solvers:
        name = f"sketchlearn AltMinCompleter(solver='{solver}')"
        full = _repeat(cl, lambda s=solver: _ours_als(data, SWEEPS, alpha, s), repeats, timeout)
        rmse = note = sweep = None
        ends = []
        if full["status"] == "ok":
            est, ends = full["value"]
            pred = est.predict_entries(tr, tc)
            rmse = float(np.sqrt(np.mean((pred - tv) ** 2)))
            if len(ends) == SWEEPS:
                sweep = (ends[-1] - ends[0]) / (SWEEPS - 1)
            note = (f"solver_ {est.solver_}, n_iter_ {est.n_iter_}, train RMSE "
                    f"{est.residual_:.3g}; first sweep line after "
                    f"{ends[0] if ends else float('nan'):.3g} s (blocking, the start, "
                    "first sweep)")
        out[solver] = sweep
        rows.append(_row(exp, name, m, full, rmse_heldout=rmse, sweep_s=sweep, note=note))
        raw.setdefault("measurements", []).append(
            _raw(full, experiment=exp, method=name, rmse=rmse,
                 sweep_intervals=list(np.diff(ends)) if len(ends) > 1 else []))
    if spark is None:
        rows.append(_row(exp, "Spark MLlib ALS", m, None, note="not run (--skip-spark)"))
    elif spark.error is None:
        name = f"Spark {spark.version} MLlib ALS"
        full = [_spark_timed(spark, lambda: _spark_als(spark, data, SWEEPS, REG_PARAM))
                for _ in range(repeats)]
        one = [_spark_timed(spark, lambda: _spark_als(spark, data, 1, REG_PARAM))
               for _ in range(repeats)]
        fm = dict(full[-1])
        fm["seconds"] = statistics.median(r["seconds"] for r in full)
        fm["worker_cpu_s"] = statistics.median(r["worker_cpu_s"] for r in full)
        fm["worker_peak_bytes"] = fm["cluster_peak_bytes"] = max(
            r["worker_peak_bytes"] for r in full + one)
        fm["repeats"] = len(full)
        t_one = statistics.median(r["seconds"] for r in one)
        rmse = sweep = note = None
        if fm["status"] == "ok" and all(r["status"] == "ok" for r in one):
            rmse, kept = _spark_rmse(spark, data, fm["value"])
            sweep = (fm["seconds"] - t_one) / (SWEEPS - 1)
            note = (f"held-out entries predicted {kept} of {len(tv)} (coldStartStrategy="
                    f"'drop'); 1-sweep run {t_one:.3g} s; memory and CPU: the local[2] JVM")
        r = _row(exp, name, m, fm, rmse_heldout=rmse, sweep_s=sweep, note=note)
        r["status"] = fm["status"] if all(x["status"] == "ok" for x in one) else one[-1]["status"]
        rows.append(r)
        raw.setdefault("measurements", []).append(
            {"experiment": exp, "method": name, "times": [x["seconds"] for x in full],
             "one_sweep_times": [x["seconds"] for x in one], "rmse": rmse,
             "jvm_peak_bytes": fm["worker_peak_bytes"]})
    else:
        rows.append(_row(exp, "Spark MLlib ALS", m, None, note=f"not run: {spark.error}"))
    ours_t, ours_sweep = rows[0].get("wall_s"), out.get("auto")
    for r in rows:
        if r.get("wall_s") is not None and str(r.get("status", "")).startswith("ok"):
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
            r["sweep_ratio"] = H.ratio(r.get("sweep_s"), ours_sweep)
    raw["completion"] = {"alpha_ours": alpha, "reg_param_spark": REG_PARAM,
                         "n_train": n_train, "n_test": data["n_test"],
                         "disk_bytes": data["disk_bytes"]}
    return rows


# --------------------------------------------------------------------------- Compress++


def _bandwidth():
    return math.sqrt(2.0 * DIM)  # exp(-|x - y|^2 / (4 d)), as bench_thinning


def population_mmd(S):
    """MMD between the uniform measure on the rows of ``S`` and N(0, I_d), Gaussian kernel
    of bandwidth h: E k(Y, Y') = (h^2 / (h^2 + 2))^(d/2), E_Y k(x, Y) = (h^2 / (h^2 +
    1))^(d/2) exp(-|x|^2 / (2 (h^2 + 1)))."""
    h2, d = _bandwidth() ** 2, S.shape[1]
    s = 0.0
    for i in range(0, S.shape[0], 2048):
        blk = S[i:i + 2048]
        sq = (np.sum(blk**2, axis=1)[:, None] + np.sum(S**2, axis=1)[None, :]
              - 2.0 * blk @ S.T)
        s += float(np.sum(np.exp(-np.maximum(sq, 0.0) / (2.0 * h2))))
    qq = s / S.shape[0] ** 2
    qp = float(np.mean((h2 / (h2 + 1.0)) ** (d / 2)
                       * np.exp(-np.sum(S**2, axis=1) / (2.0 * (h2 + 1.0)))))
    pp = (h2 / (h2 + 2.0)) ** (d / 2)
    return math.sqrt(max(qq - 2.0 * qp + pp, 0.0))


def _data_floor(n):
    """Expected MMD between n i.i.d. points and N(0, I_d): sqrt((1 - E k(Y, Y')) / n)."""
    h2 = _bandwidth() ** 2
    return math.sqrt((1.0 - (h2 / (h2 + 2.0)) ** (DIM / 2)) / n)


def _ours_compress(cloud, n_out, seed):
    import dask

    from sketchlearn.thinning import compress_thin

    X = _cloud_array(cloud, "X")
    idx = compress_thin(X, n_out, g=4, kernel="gaussian", bandwidth=_bandwidth(),
                        random_state=seed)
    rows = np.sort(np.asarray(idx))
    return dask.compute(X[rows])[0]


def _uniform_subsample(cloud, n_out, seed):
    import dask

    X = _cloud_array(cloud, "X")
    rows = np.sort(np.random.default_rng([seed, 7]).choice(cloud["n"], size=n_out,
                                                            replace=False))
    return dask.compute(X[rows])[0]


def _slice_compress(cloud, n_slice, n_out, seed):
    """In-memory Compress++ on the first ``n_slice`` rows (read to this process), on
    ``settings.threads`` Numba threads; returns (points, seconds of the thinning)."""
    import zarr

    from sketchlearn.thinning import compress_thin

    Xs = zarr.open_array(cloud["path"], mode="r")[:n_slice]
    t0 = time.perf_counter()
    idx = compress_thin(Xs, n_out, g=4, kernel="gaussian", bandwidth=_bandwidth(),
                        random_state=seed)
    return Xs[np.sort(np.asarray(idx))], time.perf_counter() - t0


def _heldout_mmd(S, H_sample):
    from sketchlearn.kernels import mmd

    return float(mmd(S, H_sample, bandwidth=_bandwidth()))


def _warm_compress():
    import dask.array as da

    from sketchlearn.thinning import compress_thin

    X = np.random.default_rng(3).normal(size=(4096, DIM))
    compress_thin(da.from_array(X, chunks=(1024, DIM)), 64, g=2, kernel="gaussian",
                  bandwidth=_bandwidth(), random_state=0)
    compress_thin(X, 64, g=2, kernel="gaussian", bandwidth=_bandwidth(), random_state=0)
    _heldout_mmd(X[:64], X[64:1088])


def _compress_rows(cl, cloud, n_slice, n_heldout, repeats, timeout, raw):
    n = cloud["n"]
    n_out = math.isqrt(n)
    H_sample = np.random.default_rng([SEED, 99]).normal(size=(n_heldout, DIM))
    exp = f"Compress++ {n} x {DIM} (zarr), n_out {n_out}"
    floor_full, floor_slice = _data_floor(n), _data_floor(n_slice)
    rows = []
    contenders = {
        "sketchlearn compress_thin (Dask)": lambda s: _ours_compress(cloud, n_out, s),
        f"uniform subsample of {n_out}": lambda s: _uniform_subsample(cloud, n_out, s),
    }
    for name, fn in contenders.items():
        runs, values = [], []
        for s in range(repeats):
            mm = _measure(cl, lambda s=s, fn=fn: fn(s), timeout)
            runs.append(mm)
            if mm["status"] != "ok":
                break
            values.append(mm["value"])
        m = _merge_runs(runs)
        pop = [population_mmd(v) for v in values]
        held = [_heldout_mmd(v, H_sample) for v in values]
        rows.append(_row(exp, name, n, m, mmd_pop=_med(pop), mmd_heldout=_med(held),
                         passes=_passes(m, "X", n),
                         note=_spread("MMD to N(0,I) over seeds", pop)))
        raw.setdefault("measurements", []).append(
            _raw(m, experiment=exp, method=name, mmd_pop=pop, mmd_heldout=held))
    # in memory, on this process: time of the thinning (the read of the slice apart)
    name = f"sketchlearn compress_thin in memory, first {n_slice} rows"
    pop, held, times, reads, peaks = [], [], [], [], []
    for s in range(repeats):
        rss0 = H._read_status("VmRSS")
        reset = H._reset_hwm()
        t0 = time.perf_counter()
        pts, secs = _slice_compress(cloud, n_slice, n_out, s)
        reads.append(time.perf_counter() - t0 - secs)
        times.append(secs)
        hwm = H._read_status("VmHWM")
        peaks.append(max(hwm - rss0, 0) if reset and hwm and rss0 else None)
        pop.append(population_mmd(pts))
        held.append(_heldout_mmd(pts, H_sample))
    m = {"seconds": statistics.median(times), "status": "ok", "repeats": len(times),
         "client_peak_bytes": None if None in peaks else max(peaks)}
    rows.append(_row(exp, name, n_slice, m, mmd_pop=_med(pop), mmd_heldout=_med(held),
                     note=(_spread("MMD to N(0,I) over seeds", pop)
                           + f"; reading the slice took {statistics.median(reads):.3g} s "
                           "more (not counted); client_peak: this process")))
    raw.setdefault("measurements", []).append(
        {"experiment": exp, "method": name, "times": times, "read_s": reads,
         "mmd_pop": pop, "mmd_heldout": held, "client_peak_bytes": peaks})
    ours_t, ours_mmd = rows[0].get("wall_s"), rows[0].get("mmd_pop")
    for r in rows:
        if r.get("wall_s") is not None and ours_t:
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
        if r.get("mmd_pop") is not None and ours_mmd:
            r["mmd_ratio"] = H.ratio(r["mmd_pop"], ours_mmd)
    raw["compress"] = {"n": n, "n_out": n_out, "n_slice": n_slice, "n_heldout": n_heldout,
                       "floor_full": floor_full, "floor_slice": floor_slice,
                       "heldout_floor": _data_floor(n_heldout), "disk_bytes": cloud["disk_bytes"]}
    return rows


def _merge_runs(runs):
    """The last call's figures, with the median time and CPU, the largest peaks and every
    value (``values``)."""
    m = dict(runs[-1])
    m["values"] = [r["value"] for r in runs]
    m["times"] = [r["seconds"] for r in runs]
    m["seconds"] = statistics.median(m["times"])
    m["worker_cpu_s"] = statistics.median(r["worker_cpu_s"] for r in runs)
    for key in ("worker_peak_bytes", "cluster_peak_bytes", "spilled_peak_bytes",
                "client_peak_bytes"):
        vals = [r.get(key) for r in runs]
        m[key] = None if None in vals else max(vals)
    m["repeats"] = len(runs)
    return m


def _med(values):
    return statistics.median(values) if values else None


def _spread(what, values):
    if len(values) < 2:
        return ""
    return f"{what}: {min(values):.3g} to {max(values):.3g}"


# --------------------------------------------------------------------------- sliced


def _sw_ours(X, Y, mode):
    from sketchlearn.transport import sliced_wasserstein

    return sliced_wasserstein(X, Y, p=P_SW, n_projections=N_PROJECTIONS, random_state=0,
                              quantiles=mode)


def _directions_like_ours(seed=0):
    """The directions sliced_wasserstein draws for ``random_state=seed``, ``slices='mc'``
    (the library's own private helper, so the three contenders share them)."""
    from sketchlearn._random import as_generator
    from sketchlearn.transport._sliced import _directions

    D, _ = _directions(np, DIM, N_PROJECTIONS, "mc", as_generator(seed), np.float64)
    return np.asarray(D)


def _sw_tdigest(X, Y, D):
    """Per direction, the quantiles of both projected clouds at the midpoints
    ``(i - 1/2) / Q`` from ``dask.array.percentile(..., internal_method='tdigest')``
    (crick's t-digest per chunk, merged), and ``W_p^p = (1/Q) sum_i |qx_i - qy_i|^p``
    (the midpoint rule for the integral over t of |F^-1(t) - G^-1(t)|^p); all
    ``2 L`` percentiles in one ``dask.compute`` (projections shared)."""
    import dask
    import dask.array as da

    q = 100.0 * (np.arange(TDIGEST_LEVELS) + 0.5) / TDIGEST_LEVELS
    PX, PY = X @ D.T, Y @ D.T
    qs = [da.percentile(P[:, j], q, internal_method="tdigest")
          for P in (PX, PY) for j in range(D.shape[0])]
    qs = dask.compute(*qs)
    L = D.shape[0]
    w = [float(np.mean(np.abs(np.asarray(qs[j]) - np.asarray(qs[L + j])) ** P_SW))
         for j in range(L)]
    return float(np.mean(w)) ** (1.0 / P_SW)


def _warm_sliced():
    import dask.array as da

    rng = np.random.default_rng(4)
    X = da.from_array(rng.normal(size=(2048, DIM)), chunks=(512, DIM))
    Y = da.from_array(rng.normal(size=(2048, DIM)) + 0.5, chunks=(512, DIM))
    for mode in ("sketch", "exact"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _sw_ours(X, Y, mode)
    _sw_tdigest(X, Y, _directions_like_ours())


def _sliced_rows(cl, cx, cy, repeats, timeout, raw):
    n = cx["n"]
    exp = f"sliced W{P_SW:g}, two clouds of {n} x {DIM} (zarr), {N_PROJECTIONS} directions"
    X, Y = _cloud_array(cx, "X"), _cloud_array(cy, "Y")
    D = _directions_like_ours()
    contenders = {
        "sketchlearn quantiles='sketch'": lambda: _sw_ours(X, Y, "sketch"),
        "sketchlearn quantiles='exact' (sample sort)": lambda: _sw_ours(X, Y, "exact"),
        f"dask percentile tdigest, {TDIGEST_LEVELS} levels": lambda: _sw_tdigest(X, Y, D),
    }
    ms = {}
    for name, fn in contenders.items():
        # Each contender starts from workers at rest, so that its peak is its own: after
        # Compress++ and the sketches the workers kept 600 MiB of unmanaged memory at
        # 2^24 points.
        _fresh_workers(cl)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ms[name] = _repeat(cl, fn, repeats, timeout)
        ms[name]["warnings"] = [str(w.message)[:200] for w in caught]
        print(f"  sliced / {name}: {ms[name]['seconds']:.1f} s, {ms[name]['status']}",
              file=sys.stderr, flush=True)
    names = list(contenders)
    exact_m = ms[names[1]]
    exact = float(exact_m["value"]) if exact_m["status"] == "ok" else None
    rows = []
    for name in names:
        m = ms[name]
        val = float(m["value"]) if m["status"] == "ok" else None
        bound = getattr(m["value"], "error_bound", None) if m["status"] == "ok" else None
        err = abs(val - exact) if val is not None and exact is not None else None
        note = ""
        if bound is not None:
            v = m["value"]
            within = ("no exact value to compare" if err is None
                      else "yes" if err <= bound else "NO")
            note = (f"sketch_size {v.sketch_size}, rank_error {v.rank_error:.2e}; "
                    f"error within bound: {within}")
        if m["warnings"]:
            note += ("; " if note else "") + "warned: " + m["warnings"][0]
        rows.append(_row(exp, name, n, m, sw=val, abs_error=err,
                         rel_error=None if err is None or not exact else err / exact,
                         error_bound=bound, passes=_passes(m, "X", n), note=note))
        raw.setdefault("measurements", []).append(
            _raw(m, experiment=exp, method=name, sw=val, error_bound=bound,
                 all_values=[float(v) for v in m["values"] if v is not None]))
    ours_t = rows[0].get("wall_s")
    for r in rows:
        if r.get("wall_s") is not None and ours_t and str(r["status"]).startswith("ok"):
            r["speedup"] = H.ratio(r["wall_s"], ours_t)
    raw["sliced"] = {"n": n, "disk_bytes": cx["disk_bytes"] + cy["disk_bytes"]}
    return rows


# --------------------------------------------------------------------------- run


def _warm_up(cl):
    """Numba compilation on the workers and here, lazy imports, JVM classes."""
    errors = {}
    calls = {"compress": _warm_compress, "sliced": _warm_sliced}
    for name, fn in calls.items():
        try:
            fn()
            cl.client.run(_noop)
        except Exception as exc:
            errors[name] = f"warm-up of {name} failed: {type(exc).__name__}: {str(exc)[:160]}"
    return errors


def _noop():
    return None


def _fresh_workers(cl):
    """Restart the workers and warm them again (imports, Numba kernels from the cache)."""
    cl._restart()
    cl.pids = set(cl.client.run(os.getpid).values())
    _warm_sliced()
    cl.client.run(_noop)


def run(quick: bool) -> dict:
    if quick:
        sizes = {"m": 20_000, "n": 5_000, "nnz": 400_000, "n_compress": 2**16,
                 "compress_chunk": 2**14, "n_slice": 2**14, "n_heldout": 2**13,
                 "n_sw": 2**17, "sw_chunk": 2**15, "repeats": 1, "compress_repeats": 3,
                 "timeout": 300}
    else:  # the sizes
        sizes = {"m": 10**6, "n": 10**5, "nnz": 2 * 10**7, "n_compress": 2**24,
                 "compress_chunk": 2**18, "n_slice": 2**20, "n_heldout": 2**16,
                 "n_sw": 2**24, "sw_chunk": 2**18, "repeats": 1, "compress_repeats": 1,
                 "timeout": 3600}
    return _run(quick, **sizes)


def _run(quick, *, m, n, nnz, n_compress, compress_chunk, n_slice, n_heldout, n_sw, sw_chunk,
         repeats, compress_repeats, timeout):
    import dask
    import distributed

    tmp = Path(tempfile.mkdtemp(prefix="sketchlearn-dask-dist-"))
    rows, notes, raw = [], [], {}
    cl = spark = None
    try:
        cl = _Cluster(tmp)
        spark = _Spark(tmp)
        t0 = time.perf_counter()
        warm = _write_ratings_small(cl.client, tmp / "warm")
        data = _write_ratings(cl.client, tmp, m, n, nnz)
        raw["write_ratings_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cx = _write_cloud(cl.client, tmp, "cloud-X", "gauss", SEED, n_compress, compress_chunk)
        if n_sw == n_compress and sw_chunk == compress_chunk:
            sx = cx  # the same N(0, I) points serve as the first cloud
        else:
            sx = _write_cloud(cl.client, tmp, "sw-X", "gauss", SEED + 1, n_sw, sw_chunk)
        sy = _write_cloud(cl.client, tmp, "sw-Y", "student", SEED + 2, n_sw, sw_chunk)
        raw["write_clouds_s"] = time.perf_counter() - t0
        raw["warm_up_errors"] = _warm_up(cl)
        try:  # completion warm-up: JIT on the workers, the JVM's ALS classes
            _ours_als(warm, 2, 1.0, "auto")
            _ours_als(warm, 2, 1.0, "exact")
            if spark.error is None:
                _spark_als(spark, warm, 2, REG_PARAM)
        except Exception as exc:
            raw["warm_up_errors"]["completion"] = (
                f"completion warm-up failed: {type(exc).__name__}: {str(exc)[:160]}")
        idle = cl.client.run(_worker_stats)
        raw["worker_idle_rss_bytes"] = [v["rss"] for v in idle.values()]
        rows += _completion_rows(cl, spark, data, repeats, timeout, raw)
        rows += _compress_rows(cl, cx, n_slice, n_heldout, compress_repeats, timeout, raw)
        rows += _sliced_rows(cl, sx, sy, repeats, timeout, raw)
        notes += _notes(quick, data, cx, sx, sy, n_slice, n_heldout, raw, spark, timeout,
                        repeats, compress_repeats)
        notes.append(f"Versions: dask {dask.__version__}, distributed {distributed.__version__}, "
                     f"zarr {_version('zarr')}, pyarrow {_version('pyarrow')}, pyspark "
                     f"{_version('pyspark')}, crick {_version('crick')}; writing the data "
                     f"took {raw['write_ratings_s']:.0f} s (Parquet) and "
                     f"{raw['write_clouds_s']:.0f} s (zarr), not counted.")
    finally:
        if spark is not None:
            spark.close()
        if cl is not None:
            cl.close()
        shutil.rmtree(tmp, ignore_errors=True)
    columns = ["experiment", "method", "n", "rmse_heldout", "sweep_s", "sweep_ratio",
               "mmd_pop", "mmd_ratio", "mmd_heldout", "sw", "abs_error", "rel_error",
               "error_bound", "wall_s", "speedup", "repeats", "worker_cpu_s", "passes",
               "worker_peak_MiB", "cluster_peak_MiB", "spilled_MiB", "client_peak_MiB",
               "status", "note"]
    return {"name": NAME, "description": DESCRIPTION, "columns": columns, "rows": rows,
            "notes": notes, "raw": raw}


def _write_ratings_small(client, folder):
    """A 300 x 200 problem (4000 entries) for the completion warm-up: just above the
    dense start's 40,000 matrix entries, so the warm-up also compiles the kernel of the
    randomized start's blocked products (a few round trips on tiny blocks)."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
    return _write_ratings(client, folder, 300, 200, 4000)


def _notes(quick, data, cx, sx, sy, n_slice, n_heldout, raw, spark, timeout, repeats,
           compress_repeats):
    c = raw["completion"]
    cp = raw["compress"]
    m, n = data["m"], data["n"]
    dof = (m + n) * RANK
    notes = [
        f"Cluster (from bench_dask_linear): distributed.LocalCluster(n_workers={N_WORKERS}, "
        f"threads_per_worker=1, processes=True, memory_limit={MEMORY_LIMIT // 2**20} MiB), "
        f"worker env {WORKER_ENV}; spilling allowed up to {SPILL_CAP // 2**30} GiB per "
        "worker; one Client in this process (which also runs the scheduler). Spark local[2] "
        f"with spark.driver.memory = {N_WORKERS * MEMORY_LIMIT // 2**20} MiB (the same "
        "total), the same thread variables, spark.sql.shuffle.partitions = 2.",
        f"Completion data: M = A diag(s) B^T + noise, {m} x {n}, rank {RANK}, s_j = "
        f"{SPECTRUM_DECAY}^j normalised so that the signal entries have variance 1, A, B "
        f"standard normal, noise N(0, {NOISE}^2); {data['nnz']} distinct positions drawn "
        f"uniformly (row range by row range, {N_PARTS} ranges, each written by a worker as "
        f"one Parquet file of int32 row, int32 col, float64 value), {HOLDOUT:.0%} of them "
        f"held out at random: {c['n_train']} training and {c['n_test']} held-out entries, "
        f"{data['disk_bytes'] / 2**20:.0f} MiB of Parquet. The training entries number "
        f"{c['n_train'] / dof:.2f} x the model's degrees of freedom (m + n) rank = {dof}, "
        "about 18 per row: rows are underdetermined on their own, so the held-out RMSE "
        "rests on the regularisation (predicting 0 gives about "
        f"{math.sqrt(1 + NOISE**2):.2f}; the noise floor is {NOISE}).",
        f"Completion contenders: sketchlearn AltMinCompleter(rank={RANK}, alpha, max_iter=S, "
        "tol=0 (never stops early: it stops when the RMSE change is <= tol), random_state=0) "
        f"fitted on a tuple (row, col, value, shape) of Dask arrays read from the training "
        "Parquet files (one chunk per file, da.from_delayed of a pyarrow read: "
        "dask.dataframe.read_parquet(...)['row'].to_dask_array(lengths=...) lost its "
        "dependencies at compute time with this dask version, which fuses the files into "
        f"fewer partitions), so {N_PARTS} row blocks and {N_PARTS} column blocks, the "
        f"estimator's default for {N_PARTS} partitions); solver 'auto' is 'cg' at rank "
        f"{RANK} (4 warm-started CG steps per row solve), 'exact' solves each row's normal "
        "equations by Cholesky, as Spark does. Spark: "
        f"pyspark.ml.recommendation.ALS(rank={RANK}, maxIter=S, "
        f"regParam={REG_PARAM}, numUserBlocks={N_PARTS}, numItemBlocks={N_PARTS}, "
        "implicitPrefs=False, nonnegative=False, seed=0, coldStartStrategy='drop') on "
        "spark.read.parquet of the same files. S = "
        f"{SWEEPS} on both; a sweep updates U then V (Spark: an iteration updates the item "
        "then the user factors). Held-out RMSE: ours by predict_entries on the held-out "
        "positions, Spark by model.transform on the held-out Parquet.",
        "Regularisation: Spark's explicit ALS minimises sum_Omega (r_ui - x_u.y_i)^2 + "
        "regParam (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2), n_u and n_i the numbers of "
        "ratings of user u and item i (ALS-WR: each row solve adds regParam n_u to its "
        "normal equations); ours minimises sum_Omega (x_ij - u_i.v_j)^2 + alpha (|U|_F^2 + "
        "|V|_F^2). With equal counts per row (n_u = |Omega| / m) and per column (|Omega| / "
        "n) the two objectives have the same minimisers in the product U V^T when alpha = "
        "regParam |Omega| / sqrt(m n) (rescale x_u by t and y_i by 1/t, t^4 = m / n), which "
        f"is what ours gets: alpha = {c['alpha_ours']:.4g}. What still differs: the counts "
        "are binomial, not equal (Spark penalises rows and columns with more entries more); "
        "Spark starts from random factors, ours from an approximate top-rank SVD of the "
        "rescaled observed matrix (a randomized range finder with 2 power iterations and "
        "10 extra columns: 6 passes over the entries; plus one exact half-step for V) and "
        "rebalances the factors after each sweep; Spark keeps its factors in float32 "
        "(normal equations in float64), ours in float64.",
        "sweep_s: time per sweep in the steady state, without the start (reading and "
        "blocking the entries, ours' start, Spark's in/out-blocks). Ours: from one "
        "fit with verbose=2, which prints a line after every sweep (the residual of the "
        "sweep, summed in the next sweep's row half-step): (time of the last line - time "
        "of the first) / (S - 1). Spark offers no per-iteration hook: (wall time of a fit "
        "with maxIter=S - wall time with maxIter=1) / (S - 1), one fit each. wall_s: the "
        "S-sweep fit (everything from the Parquet files to the fitted factors on the "
        "client; for ours its start takes 6 Dask round trips, one per product of the "
        "randomized range finder with the entries: until issue 18's fix it was ARPACK, one "
        "round trip per ARPACK step, 40 of the 50 s at the quick size); sweep_ratio = "
        "Spark's sweep_s / ours (solver 'auto'); the issue's goal: at least 5 at equal or "
        "better held-out RMSE; speedup = wall_s / ours' wall_s (above 1: ours faster).",
        *_cloud_notes(cx, sx, n_slice, n_heldout, cp, compress_repeats),
        "passes: rows of X read on the workers / n (counted by the zarr reader). "
        "worker_peak_MiB: largest RSS high-water mark over the worker processes (reset "
        "before each call, baseline included) against 1024 MiB per worker; "
        "cluster_peak_MiB: peak of the sum over workers (distributed MemorySampler, 0.25 "
        "s); spilled_MiB: peak spilled to disk; for Spark both are the peak RSS of its JVM "
        "(driver and executors) against 2048 MiB. client_peak_MiB: this process's RSS "
        "high-water mark above its level before the call (client, scheduler, fitted "
        "factors, in-memory Compress++). worker_cpu_s: CPU seconds of the workers (Spark: "
        "of the JVM).",
        f"Repeats: {repeats} per contender for completion and sliced Wasserstein "
        f"({'medians' if repeats > 1 else 'one run each'}); contenders run back to back "
        "(memory and rows read are measured per call), not interleaved. A contender is "
        f"stopped after {timeout} s, or after {STALL_S} s with the workers paused at their "
        "memory limit. The workers are warmed up first (Numba compilation, imports) on tiny "
        "inputs of every contender, Spark's ALS and ours (both solvers) on a 200 x 150 problem.",
        "Worker RSS at rest after the warm-up: "
        + ", ".join(f"{b / 2**20:.0f} MiB" for b in raw["worker_idle_rss_bytes"] if b)
        + "; every worker peak includes it.",
        "Peers: pyspark 4.x (needs Java 17) and crick (dask's t-digest) installed with "
        "pip; a peer that cannot run is reported as such.",
    ]
    notes += list(raw["warm_up_errors"].values())
    if spark.error is not None:
        notes.append(f"Spark could not run: {spark.error}")
    if quick:
        notes.append("Quick run: small sizes (everything fits in the workers' memory); the "
                     "issue's sizes (10^6 x 10^5 with 2 x 10^7 entries, 2^24 points) are the "
                     "full run's.")
    return notes


def _cloud_notes(cx, sx, n_slice, n_heldout, cp, compress_repeats):
    """The notes on the Compress++ and sliced Wasserstein rows (``cp`` None: the sliced
    rows only)."""
    if cp is None:
        return [_sliced_note(sx)]
    return [
        f"Compress++ data: {cx['n']} x {DIM} N(0, I) in zarr chunks of {cx['chunk']} rows "
        f"({cx['disk_bytes'] / 2**20:.0f} MiB on disk). compress_thin(X, n_out = sqrt(n) = "
        f"{cp['n_out']}, g=4, kernel='gaussian', bandwidth = sqrt(2 d) (k = exp(-|x - y|^2 / "
        "(4 d)), as in bench_thinning), variant 'kt+' (default)) on the Dask array; wall_s "
        "includes fetching the coreset's rows. Uniform subsample: n_out rows without "
        "replacement, fetched from the same zarr. In memory: the first "
        f"{n_slice} rows read into this process and compress_thin with the same n_out "
        "and kernel on the Numba threads of this process (time of the thinning only).",
        "mmd_pop: MMD between the coreset (uniform weights) and the distribution the data "
        "were drawn from, N(0, I_16), in closed form (no sampling error); the data "
        f"themselves are about {cp['floor_full']:.2e} from it (expected MMD of n i.i.d. "
        f"points), the {n_slice}-row slice about {cp['floor_slice']:.2e}. mmd_ratio = a "
        "contender's mmd_pop / ours (above 1: ours closer). mmd_heldout: sketchlearn.kernels."
        f"mmd to an independent sample of {n_heldout} points of N(0, I) (same kernel), "
        f"which itself sits about {cp['heldout_floor']:.2e} from N(0, I): it cannot "
        "resolve differences below that, the closed form can. The exact MMD to the whole "
        "data needs n^2 kernel values (not affordable). "
        + (f"Medians over {compress_repeats} seeds (ours, subsample and in-memory each "
           "with seeds 0..; the spread in the note)." if compress_repeats > 1 else
           "One seed each."),
        _sliced_note(sx),
    ]


def _sliced_note(sx):
    return (
        f"Sliced Wasserstein: X = N(0, I_{DIM}), Y = Student-t(5) scaled to unit variance, "
        "times per-coordinate scales in [0.5, 2], plus a shift; "
        f"{sx['n']} rows each in zarr chunks of {sx['chunk']} rows; p = {P_SW:g}, "
        f"{N_PROJECTIONS} directions ('mc', random_state=0) shared by all three "
        "contenders. quantiles='exact' is the distributed sample sort, the reference: "
        "abs_error = |value - exact|, rel_error = abs_error / exact. quantiles='sketch': "
        "one KLL-type sketch per direction and cloud (default size); error_bound is the "
        "certain bound it reports (SketchedDistance.error_bound). tdigest contender (written "
        "here, no library offers sliced distances on Dask): the projections X theta_l and "
        "Y theta_l as Dask arrays, dask.array.percentile(..., internal_method='tdigest') "
        f"of each at the {TDIGEST_LEVELS} midpoint levels (i - 1/2) / {TDIGEST_LEVELS}, "
        "W_p^p per direction by the midpoint rule (mean over levels of |qx - qy|^p), the "
        "mean over directions to the power 1/p; all 2 L percentiles in one dask.compute. "
        "Its error has two parts: the t-digest's quantile error and the quadrature "
        "(the integral's tails beyond the first and last level are approximated by "
        f"them); it reports no bound. {N_PROJECTIONS} directions, not the default 100: "
        "the exact sort holds the projected values of the directions it sorts, n + m "
        "float64 values a direction across the workers "
        f"({2 * sx['n'] * 8 / 2**20:.0f} MiB here), as many directions a sort as fit in "
        "a quarter of the workers' total memory limit (each further group one more "
        "read of both clouds); the passes column counts the reads of X. Each sliced "
        "contender starts on restarted, warmed-up workers.")


ALS_DESCRIPTION = ("Blocked ALS on a 2-worker Dask cluster vs Spark MLlib ALS at one size "
                   "(the completion rows of dask_distributions)")


def completion_only(m, n, nnz, timeout=3600, solvers=("auto", "exact"), skip_spark=False):
    """The completion rows alone, at a size of one's choice: how the ratio to Spark
    moves between the quick size and the issue's (whose full run also writes and
    measures the 2^24-point clouds). The same cluster, data, warm-up and measures as
    :func:`run`; returns the result for ``results/``. ``solvers`` and ``skip_spark``
    shorten exploratory runs (a table without Spark has no ratio)."""
    tmp = Path(tempfile.mkdtemp(prefix="sketchlearn-dask-als-"))
    cl = spark = None
    raw = {}
    try:
        cl = _Cluster(tmp)
        spark = None if skip_spark else _Spark(tmp)
        warm = _write_ratings_small(cl.client, tmp / "warm")
        data = _write_ratings(cl.client, tmp, m, n, nnz)
        for solver in solvers:
            _ours_als(warm, 2, 1.0, solver)
        if spark is not None and spark.error is None:
            _spark_als(spark, warm, 2, REG_PARAM)
        rows = _completion_rows(cl, spark, data, 1, timeout, raw, solvers)
    finally:
        if spark is not None:
            spark.close()
        if cl is not None:
            cl.close()
        shutil.rmtree(tmp, ignore_errors=True)
    columns = ["experiment", "method", "n", "rmse_heldout", "sweep_s", "sweep_ratio",
               "wall_s", "speedup", "worker_cpu_s", "worker_peak_MiB", "cluster_peak_MiB",
               "spilled_MiB", "status", "note"]
    notes = ["Completion rows only (python benchmarks/bench_dask_distributions.py "
             f"--completion-only {m} {n} {nnz}"
             + (f" --solvers {' '.join(solvers)}" if tuple(solvers) != ("auto", "exact") else "")
             + (" --skip-spark" if skip_spark else "")
             + "); cluster, contenders, regularisation and "
             "measures as in dask_distributions.md (see its notes)."]
    import bench_dask_linear

    limit = bench_dask_linear.MEMORY_LIMIT // 2**20
    notes.append(f"Workers: 2 of {limit} MiB; Spark's driver: {2 * limit} MiB.")
    suffix = "" if limit == 1024 else f"_{limit}MiB"
    return {"name": f"dask_als_{m}x{n}{suffix}", "description": ALS_DESCRIPTION,
            "columns": columns,
            "rows": rows, "notes": notes, "raw": raw, "quick": False}


def clouds_only(n=2**24, timeout=3600, parts=("compress", "sliced")):
    """The Compress++ and sliced Wasserstein rows alone, by default at the issue's
    sizes (2^24 points in 16-D, chunks of 2^18 rows, an in-memory slice of 2^20): the
    same cluster, data, warm-up and measures as :func:`run`, without the completion
    data and its contenders; ``parts`` one or both (at 2^24 Compress++ takes about 25
    minutes, the sliced rows about 15)."""
    sizes = {"n_compress": n, "compress_chunk": min(2**18, n // 4), "n_slice": n // 16,
             "n_heldout": min(2**16, n // 16)}
    tmp = Path(tempfile.mkdtemp(prefix="sketchlearn-dask-clouds-"))
    cl = None
    raw = {}
    try:
        cl = _Cluster(tmp)
        t0 = time.perf_counter()
        cx = _write_cloud(cl.client, tmp, "cloud-X", "gauss", SEED, sizes["n_compress"],
                          sizes["compress_chunk"])
        sy = _write_cloud(cl.client, tmp, "sw-Y", "student", SEED + 2, sizes["n_compress"],
                          sizes["compress_chunk"])
        raw["write_clouds_s"] = time.perf_counter() - t0
        print(f"  wrote the clouds in {raw['write_clouds_s']:.0f} s", file=sys.stderr,
              flush=True)
        raw["warm_up_errors"] = _warm_up(cl)
        idle = cl.client.run(_worker_stats)
        raw["worker_idle_rss_bytes"] = [v["rss"] for v in idle.values()]
        rows = []
        if "compress" in parts:
            rows += _compress_rows(cl, cx, sizes["n_slice"], sizes["n_heldout"], 1, timeout,
                                   raw)
        if "sliced" in parts:
            rows += _sliced_rows(cl, cx, sy, 1, timeout, raw)
    finally:
        if cl is not None:
            cl.close()
        shutil.rmtree(tmp, ignore_errors=True)
    columns = ["experiment", "method", "n", "mmd_pop", "mmd_ratio", "mmd_heldout", "sw",
               "abs_error", "rel_error", "error_bound", "wall_s", "speedup", "worker_cpu_s",
               "passes", "worker_peak_MiB", "cluster_peak_MiB", "spilled_MiB",
               "client_peak_MiB", "status", "note"]
    both = tuple(parts) == ("compress", "sliced")
    notes = ["Compress++ and sliced Wasserstein rows only (python benchmarks/"
             f"bench_dask_distributions.py --clouds-only {n}"
             + ("" if both else " --parts " + " ".join(parts))
             + "); cluster, repeats (one run each) "
             "and measures as in dask_distributions.md (see its notes).",
             *_cloud_notes(cx, sy, sizes["n_slice"], sizes["n_heldout"], raw.get("compress"),
                           1),
             "Worker RSS at rest after the warm-up: "
             + ", ".join(f"{b / 2**20:.0f} MiB" for b in raw["worker_idle_rss_bytes"] if b)
             + f"; writing the clouds took {raw['write_clouds_s']:.0f} s (not counted).",
             *raw["warm_up_errors"].values()]
    name = f"dask_clouds_{n}" + ("" if both else "_" + "_".join(parts))
    return {"name": name, "description": CLOUDS_DESCRIPTION, "columns": columns,
            "rows": rows, "notes": notes, "raw": raw, "quick": False}


CLOUDS_DESCRIPTION = ("Compress++ and sliced Wasserstein on a 2-worker Dask cluster at the "
                      "issue's size (the cloud rows of dask_distributions)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=completion_only.__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--completion-only", nargs=3, type=float, metavar=("M", "N", "NNZ"))
    what.add_argument("--clouds-only", nargs="?", type=int, const=2**24, metavar="N",
                      help="the Compress++ and sliced rows, N points a cloud (default "
                           "2^24, the issue's size)")
    parser.add_argument("--parts", nargs="+", default=["compress", "sliced"],
                        choices=["compress", "sliced"], help="with --clouds-only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--solvers", nargs="+", default=["auto", "exact"],
                        choices=["auto", "exact", "cg"])
    parser.add_argument("--skip-spark", action="store_true",
                        help="ours only (an exploratory run: no ratio to Spark)")
    parser.add_argument("--memory-limit-mib", type=int, default=None,
                        help="per worker (Spark's driver gets the workers' total); "
                             "default that of dask_linear, 1024")
    args = parser.parse_args()
    if args.memory_limit_mib is not None:
        import bench_dask_linear

        bench_dask_linear.MEMORY_LIMIT = args.memory_limit_mib * 2**20
    H.settings.threads = args.threads
    t0 = time.perf_counter()
    with H.pinned_threads(args.threads):
        if args.clouds_only:
            result = clouds_only(args.clouds_only, parts=tuple(args.parts))
        else:
            result = completion_only(*(int(v) for v in args.completion_only),
                                     solvers=tuple(args.solvers), skip_spark=args.skip_spark)
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"] = H.machine_info()
    paths = H.write_results(result, Path(__file__).parent / "results")
    print(H.markdown_report(result))
    print("wrote", *paths)
