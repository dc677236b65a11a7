"""MMD (Gaussian kernel, biased V-statistic) against the code a user would otherwise write.

Contenders, all computing ``sqrt(mean K(X,X) - 2 mean K(X,Y) + mean K(Y,Y))`` with
``K = exp(-||x - y||^2 / (2 h^2))`` and the same fixed bandwidth ``h`` (chosen once,
outside the timings, so that bandwidth selection is not timed):

- ours: ``sketchlearn.metrics.mmd(X, Y, kernel="gaussian", bandwidth=h)``
  (Numba, blocked kernel sums, O((n + m) d) memory).
- "scipy cdist": ``scipy.spatial.distance.cdist(A, B, "sqeuclidean")`` for each of the
  three blocks, one at a time, turned into kernel values in place and averaged. Peak
  memory is one ``n x m`` float64 matrix; skipped (with the size it would need) when
  that does not fit in half of the available memory.
- "sklearn chunked": ``sklearn.metrics.pairwise_distances_chunked(A, B,
  metric="sqeuclidean", reduce_func=...)`` with scikit-learn's default
  ``working_memory`` (1024 MiB); the reduce function exponentiates the chunk in place
  and returns its row sums. The memory-bounded peer.

Both peers are written the careful way (in-place ``exp``, one block at a time), i.e.
the strongest version of what a user would write, not the most naive one.

Timing: all contenders run in this process on the same arrays, interleaved,
``repeats`` times (1 at n = 1e5, where one peer call takes minutes on 2 cores), and we
report medians; memory comes from one more call of each in a spawned child. A size
can instead be given the mode ``"child"``: each contender is then called once in a
fresh spawned process (``_harness.measure_memory``), which gives its time and its
peak memory from the same call; the notes say so.
"""

from __future__ import annotations

import math
import time

import _harness as H
import numpy as np

NAME = "mmd"
DESCRIPTION = ("sketchlearn.metrics.mmd (Gaussian, V-statistic) vs scipy cdist and "
               "sklearn pairwise_distances_chunked: time, memory, same value")

D_FEATURES = 3
SHIFT = 0.25          # mean shift of Y, so the MMD is clearly non-zero
SEED = 0

# (n = m, repeats, mode): "interleaved" = in-process interleaved repeats, then one
# memory measurement per contender in a spawned child; "child" = one call per
# contender in a spawned child, giving both its time and its memory.
QUICK_SIZES = [(2_000, 3, "interleaved"), (5_000, 3, "interleaved")]
FULL_SIZES = [(10_000, 5, "interleaved"), (100_000, 1, "interleaved")]


# --------------------------------------------------------------------------- contenders
# Module-level functions, so that spawned children can import them by name.


def ours_mmd(X, Y, h):
    from sketchlearn.metrics import mmd

    return mmd(X, Y, kernel="gaussian", bandwidth=h)


def _finish(xx, xy, yy):
    return math.sqrt(max(xx - 2.0 * xy + yy, 0.0))


def _cdist_block_mean(A, B, h):
    from scipy.spatial.distance import cdist

    K = cdist(A, B, "sqeuclidean")          # the n x m matrix
    K *= -1.0 / (2.0 * h * h)
    np.exp(K, out=K)
    return float(K.mean())


def cdist_mmd(X, Y, h):
    """scipy peer: three kernel matrices, built one at a time."""
    return _finish(_cdist_block_mean(X, X, h), _cdist_block_mean(X, Y, h),
                   _cdist_block_mean(Y, Y, h))


def _chunked_block_mean(A, B, h):
    from sklearn.metrics import pairwise_distances_chunked

    g = 1.0 / (2.0 * h * h)

    def reduce_func(D_chunk, start):
        D_chunk *= -g
        np.exp(D_chunk, out=D_chunk)
        return D_chunk.sum(axis=1)

    total = 0.0
    for row_sums in pairwise_distances_chunked(A, B, metric="sqeuclidean",
                                               reduce_func=reduce_func):
        total += float(row_sums.sum())
    return total / (A.shape[0] * B.shape[0])


def chunked_mmd(X, Y, h):
    """scikit-learn peer: memory-bounded chunks of the distance matrix."""
    return _finish(_chunked_block_mean(X, X, h), _chunked_block_mean(X, Y, h),
                   _chunked_block_mean(Y, Y, h))


PEERS = {"scipy cdist": cdist_mmd, "sklearn chunked": chunked_mmd}


# --------------------------------------------------------------------------- data


def make_data(n, d=D_FEATURES, seed=SEED):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) + SHIFT
    return X, Y


def fixed_bandwidth(d=D_FEATURES):
    """Median heuristic on a 2000-row pooled sample of the benchmark distribution,
    rounded; computed once, outside every timing."""
    from scipy.spatial.distance import pdist

    X, Y = make_data(1_000, d, seed=SEED + 1)
    return float(f"{np.median(pdist(np.vstack([X, Y]))):.3g}")


def cdist_block_bytes(n, m):
    """Bytes of the largest kernel matrix the scipy peer holds at once."""
    return 8 * max(n, m) ** 2


def cdist_feasible(n, m):
    avail = H.available_memory_bytes()
    return avail is None or cdist_block_bytes(n, m) <= 0.5 * avail


# --------------------------------------------------------------------------- run


def _mem_fields(prefix, mem):
    return {f"{prefix}_mem_MiB": H.mib(mem["traced_peak_bytes"]),
            f"{prefix}_rss_MiB": H.mib(mem["rss_peak_delta_bytes"])}


def _run_size(n, repeats, mode, h, warm, notes, raw):
    X, Y = make_data(n)
    d = X.shape[1]
    peers = dict(PEERS)
    if not cdist_feasible(n, n):
        need = cdist_block_bytes(n, n)
        peers.pop("scipy cdist")
        notes.append(f"scipy cdist at n = m = {n:_}: infeasible, not run (one {n:_} x {n:_} "
                     f"float64 kernel matrix needs {need / 1e9:.0f} GB = "
                     f"{need / 2**30:.1f} GiB; the machine has "
                     f"{(H.available_memory_bytes() or 0) / 2**30:.0f} GiB available).")
    rows = []
    entry = {"n": n, "m": n, "d": d, "h": h, "repeats": repeats, "mode": mode}
    if mode == "interleaved":
        funcs = {"ours": lambda: ours_mmd(X, Y, h)}
        funcs.update({name: (lambda f=f: f(X, Y, h)) for name, f in peers.items()})
        warmup = {"ours": lambda: ours_mmd(*warm, h)}
        warmup.update({name: (lambda f=f: f(*warm, h)) for name, f in peers.items()})
        timing = H.time_interleaved(funcs, repeats, warmup=warmup)
        times = {k: v["median"] for k, v in timing.items()}
        values = {k: v["value"] for k, v in timing.items()}
        mems = {"ours": H.measure_memory(ours_mmd, (X, Y, h), warmup_args=(*warm, h))}
        for name, f in peers.items():
            mems[name] = H.measure_memory(f, (X, Y, h), warmup_args=(*warm, h))
        entry["timing"] = {k: {kk: vv for kk, vv in v.items() if kk != "value"}
                           for k, v in timing.items()}
    else:  # one call each, in a spawned child: time and memory from the same call
        mems, times, values = {}, {}, {}
        for name, f in {"ours": ours_mmd, **peers}.items():
            print(f"  n={n:_}: one call of {name} in a spawned child ...", flush=True)
            mems[name] = H.measure_memory(f, (X, Y, h), warmup_args=(*warm, h))
            times[name] = mems[name]["elapsed_in_child_s"]
            values[name] = mems[name]["value"]
            print(f"    {times[name]:.1f} s", flush=True)
        entry["timing"] = {k: {"median": t, "times": [t]} for k, t in times.items()}
    entry["values"] = values
    entry["memory"] = mems
    raw.append(entry)

    for name in peers:
        row = {"n": n, "d": d, "peer": name, "repeats": repeats,
               "ours_s": times["ours"], "peer_s": times[name],
               "speedup": H.ratio(times[name], times["ours"])}
        row.update(_mem_fields("ours", mems["ours"]))
        row.update(_mem_fields("peer", mems[name]))
        row["mem_ratio"] = H.ratio(mems[name]["traced_peak_bytes"],
                                   mems["ours"]["traced_peak_bytes"])
        row["rel_diff"] = H.rel_diff(values["ours"], values[name])
        rows.append(row)
    if "scipy cdist" not in peers:
        rows.append({"n": n, "d": d, "peer": "scipy cdist", "repeats": 0,
                     "ours_s": times["ours"],
                     "peer_s": f"infeasible ({cdist_block_bytes(n, n) / 1e9:.0f} GB/matrix)"})
    return rows, times


def run(quick: bool) -> dict:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    h = fixed_bandwidth()
    warm = make_data(300, seed=SEED + 2)
    notes, raw, rows = [], [], []
    ns_per_eval = []
    prev = None
    for n, repeats, mode in sizes:
        if prev is not None:  # announce the expected cost from the previous size (O(n^2))
            pn, ptimes = prev
            est = {k: t * (n / pn) ** 2 for k, t in ptimes.items()}
            msg = ", ".join(f"{k} ~{t:.3g} s" for k, t in est.items())
            print(f"  n={n:_}: estimated one call from n={pn:_}: {msg}", flush=True)
            notes.append(f"Estimated one call at n = {n:_} from the n = {pn:_} medians "
                         f"(scaled by (n / {pn:_})^2): {msg}.")
        t0 = time.perf_counter()
        size_rows, times = _run_size(n, repeats, mode, h, warm, notes, raw)
        print(f"  n={n:_} done in {time.perf_counter() - t0:.0f} s", flush=True)
        rows += size_rows
        prev = (n, times)
        if mode == "interleaved" and repeats == 1:
            child = {k: v["elapsed_in_child_s"] for k, v in raw[-1]["memory"].items()}
            notes.append(
                f"Second timing sample at n = {n:_}, from the memory-measurement calls "
                "(one per contender, each in its own spawned child, tracemalloc on): "
                + ", ".join(f"{k} {t:.3g} s" for k, t in child.items()) + "; speedup "
                + ", ".join(f"{k} {child[k] / child['ours']:.2f}"
                            for k in child if k != "ours") + ".")
        pairs = 3 * n * n
        ns_per_eval.append(f"n = {n:_}: " + ", ".join(
            f"{k} {t / pairs * 1e9:.2f}" for k, t in times.items()))

    one_call = [f"{n:_}" for n, _, mode in sizes if mode == "child"]
    one_repeat = [f"{n:_}" for n, reps, mode in sizes if mode == "interleaved" and reps == 1]
    notes += [
        f"Data: X ~ N(0, I_{D_FEATURES}), Y ~ N({SHIFT}, I_{D_FEATURES}), n = m, float64, "
        f"seed {SEED}. Fixed bandwidth h = {h} (median heuristic on a separate 2000-row "
        "sample, computed once, not timed). Biased V-statistic, squared=False.",
        "Times are medians of interleaved repeats in one process on the same arrays; "
        "speedup = peer_s / ours_s and mem_ratio = peer_mem / ours_mem (above 1: "
        "sketchlearn is faster / leaner). Warm-up (Numba JIT, thread pools) on a 300-row "
        "input before timing.",
        "Memory: *_mem_MiB is the tracemalloc peak of one call above the level before it "
        "(NumPy buffers included), *_rss_MiB the resident high-water delta (everything, "
        "page resolution); each measured in a fresh spawned process after a warm-up call.",
        "rel_diff = |ours - peer| / max(|ours|, |peer|) of the returned MMD values.",
        "Wall nanoseconds per kernel pair (an MMD has 3 n^2 pairs; the peers evaluate "
        "all of them, ours about 2 n^2, using the symmetry of the XX and YY blocks), "
        f"{H.settings.threads} threads: " + "; ".join(ns_per_eval) + ".",
        "Peers are written the careful way: in-place exp on each distance block, one "
        "block (scipy) or chunk (sklearn, default working_memory = 1024 MiB, "
        "metric='sqeuclidean') at a time.",
        "Thread use: the peers' hot loops (scipy cdist, NumPy exp, scikit-learn with "
        "n_jobs=None) run on one thread whatever the limit; ours is a Numba prange over "
        f"all {H.settings.threads} pinned threads. Other jobs competing for the cores hurt "
        "ours more (a parallel loop waits for its slowest thread): see the load average "
        "in the machine line.",
    ]
    if one_repeat:
        notes.append(
            f"At n = {', '.join(one_repeat)}: one timed call per contender (1 repeat, so "
            "the 'median' is that call), still in one process on the same arrays, after "
            "the warm-up; memory from one more call per contender in a spawned child.")
    if one_call:
        notes.append(
            f"At n = {', '.join(one_call)} each contender was called once (1 repeat), in its "
            "own fresh spawned process with the same thread limits and the same arrays, "
            "ours first; time and memory come from that same call (tracemalloc running, "
            "negligible here: both sides allocate few, large buffers). Not interleaved in "
            "one process, to keep the full run near 15 minutes.")
    slower = [f"n = {r['n']:_} vs {r['peer']} ({r['speedup']:.2f}x)" for r in rows
              if isinstance(r.get("speedup"), float) and r["speedup"] < 1]
    if slower:
        notes.append("sketchlearn is SLOWER than the peer in: " + "; ".join(slower) + ".")
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["n", "d", "peer", "repeats", "ours_s", "peer_s", "speedup",
                        "ours_mem_MiB", "peer_mem_MiB", "mem_ratio", "ours_rss_MiB",
                        "peer_rss_MiB", "rel_diff"],
            "rows": rows, "notes": notes, "raw": raw, "bandwidth": h}
