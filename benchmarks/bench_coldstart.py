"""Cold start: the first call of each headline function in a fresh Python process.

A user's first impression of a Numba library is the first call in a new environment,
which compiles the kernels it needs. Each row here runs one headline call in its own
fresh interpreter (``subprocess.run([sys.executable, "-c", ...])``) whose
``NUMBA_CACHE_DIR`` is a new, empty temporary folder, so nothing compiled earlier can
be reused. Inside that child we time, one after the other:

1. ``import``: the modules the call needs (``numpy`` is imported first and not
   counted: both sides need it to build the data);
2. ``first``: the first call (argument checks, lazy imports, work; with sketchlearn's
   default ``cold_start="reference"`` a small call runs the NumPy reference of its
   kernels and they compile on a background thread once it returns);
3. ``second``: the same call again at once (still the reference while the background
   thread compiles, which shares the interpreter lock with it);
4. ``ready``: ``sketchlearn.wait_for_compilation()``, the rest of the background
   compilation (sketchlearn only);
5. ``warm``: the same call once more, on the compiled kernels (the steady-state cost).

``ours_first_compiling_s`` is the first call of another fresh child with
``SKETCHLEARN_COLD_START=compile``: the kernels compile before the call runs (what
every first call cost before the reference-first cold start).

The peer (goodpoints, POT, statsmodels, scikit-learn, SciPy or a NumPy
alternating least squares) runs the same way in a fresh child of its own, on the same
arrays (``numpy.random.default_rng(0)``), with the same thread limits: the children
get ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ... and
``NUMBA_NUM_THREADS`` set to the count ``run.py`` pins for the in-process benchmarks,
and each child reports the BLAS / Numba thread counts it ended up with.

The demo row runs ``python -m sketchlearn demo`` as a whole subprocess (wall time,
interpreter start-up included) with an empty cache (``ours_first_s``, goal 10 s), then
again with the cache as that first run left it (``ours_second_s``);
``ours_first_compiling_s`` is the empty-cache run with ``cold_start="compile"``.

``first_ratio = ours_first_s / peer_first_s``: above 1 our first call is slower (the
inverse of the ``speedup`` columns elsewhere, because the cost measured here is the
one-off price of compiling). ``goal_5s``: whether our first call takes at most 5 s.

``--quick`` runs every row once (cold start is about small sizes anyway); the full
run repeats every child three times, alternating ours and the peer, each time with a
new empty cache, and reports medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass

import _harness as H

NAME = "coldstart"
DESCRIPTION = ("first call in a fresh process with an empty Numba cache (import, first, "
               "second, compiled, warm) vs the peer's first call")

GOAL_S = 5.0
DEMO_GOAL_S = 10.0  # the demo's whole first run, interpreter start-up included
FULL_REPEATS = 3
CHILD_TIMEOUT_S = 900
MARKER = "@@coldstart@@"

# Every thread pool a child could start, limited to the same count on both sides.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
               "NUMBA_NUM_THREADS")

# The child: numpy first (not counted), then the timed import, the data (not timed),
# the first call and the same call again. It reads its snippets from argv[1] and
# prints one JSON line after MARKER.
CHILD = textwrap.dedent("""
    import json, sys, time
    clock = time.perf_counter
    spec = json.loads(sys.argv[1])
    t = clock()
    import numpy as np
    numpy_s = clock() - t
    ns = {"np": np}
    t = clock()
    exec(spec["imports"], ns)
    import_s = clock() - t
    exec(spec["setup"], ns)
    call = compile(spec["call"], "<call>", "exec")
    t = clock()
    exec(call, ns)
    first_s = clock() - t
    t = clock()
    exec(call, ns)
    second_s = clock() - t
    ready_s = None
    if "sketchlearn" in sys.modules:  # kernels compiling in the background: wait
        t = clock()
        sys.modules["sketchlearn"].wait_for_compilation()
        ready_s = clock() - t
    t = clock()
    exec(call, ns)
    warm_s = clock() - t
    from threadpoolctl import threadpool_info
    blas = sorted({p.get("num_threads") for p in threadpool_info()
                   if p.get("user_api") == "blas"})
    numba_threads = None
    if "numba" in sys.modules:
        numba_threads = sys.modules["numba"].get_num_threads()
    print(spec["marker"] + json.dumps({
        "numpy_import_s": numpy_s, "import_s": import_s, "first_s": first_s,
        "second_s": second_s, "ready_s": ready_s, "warm_s": warm_s, "blas_threads": blas,
        "numba_threads": numba_threads,
        "numba_loaded": "numba" in sys.modules}))
""")


@dataclass(frozen=True)
class Side:
    """One contender: what the child imports (timed), builds (not timed) and calls."""

    label: str
    imports: str
    setup: str
    call: str


@dataclass(frozen=True)
class Case:
    name: str
    size: str
    ours: Side
    peer: Side | None = None


# --------------------------------------------------------------------------- data

_RNG = "rng = np.random.default_rng(0)\n"
DATA_KT = _RNG + "X = rng.normal(size=(2000, 5))\n"
DATA_SW = _RNG + "X = rng.normal(size=(500, 5))\nY = rng.normal(size=(400, 5)) + 0.5\n"
DATA_SINKHORN = (_RNG + "X = rng.normal(size=(500, 3))\n"
                 "Y = rng.normal(size=(400, 3)) + 0.5\n")
DATA_COMPLETION = _RNG + textwrap.dedent("""
    M = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 200))
    M[rng.random(M.shape) < 0.5] = np.nan
""")
DATA_REGRESSION = _RNG + textwrap.dedent("""
    X = rng.normal(size=(200, 5))
    y = X @ np.arange(1.0, 6.0) + 0.1 * rng.normal(size=200)
""")
DATA_SKETCH = _RNG + "X = rng.normal(size=(2000, 20))\n"
DATA_ENSEMBLE = _RNG + textwrap.dedent("""
    X = rng.normal(size=(500, 20))
    y = X @ rng.normal(size=20) + rng.normal(size=500)
""")

# goodpoints' KT+ on X: target kernel exp(-r^2 / (4 d)) (as in bench_thinning), split
# kernel = target + its square root exp(-r^2 / (2 d)), rows by goodpoints' compiled
# gaussian_kernel_by_row; m = log2(n) / 2 halving rounds (n / 2^m ~ sqrt(n) points).
GP_KERNELS = textwrap.dedent("""
    n, d = X.shape
    m = int(np.log2(n) / 2)

    def gauss_rows(sq_bandwidth):
        def rows(y, Z):
            out = np.empty(Z.shape[0])
            y = np.ascontiguousarray(y, dtype=np.float64).ravel()
            gaussian_kernel_by_row(y, Z, sq_bandwidth, out)
            return out
        return rows

    swap = gauss_rows(4.0 * d)
    root = gauss_rows(2.0 * d)

    def split(y, Z):
        return swap(y, Z) + root(y, Z)
""")

# Plain NumPy alternating least squares, the way one would write it by hand: every
# row's normal equations at once (Gram matrices by one product with the mask).
NUMPY_ALS = textwrap.dedent("""
    def ridge_rows(W, Z, F, ridge):
        r = F.shape[1]
        outer = (F[:, :, None] * F[:, None, :]).reshape(F.shape[0], r * r)
        G = (W @ outer).reshape(W.shape[0], r, r) + ridge * np.eye(r)
        return np.linalg.solve(G, (Z @ F)[:, :, None])[:, :, 0]

    def als(M, rank=5, n_iter=100, ridge=1e-6):
        seen = ~np.isnan(M)
        W = seen.astype(np.float64)
        Z = np.where(seen, M, 0.0)
        V = np.random.default_rng(0).normal(size=(M.shape[1], rank))
        for _ in range(n_iter):
            U = ridge_rows(W, Z, V, ridge)
            V = ridge_rows(W.T, Z.T, U, ridge)
        return np.where(seen, M, U @ V.T)
""")


def cases() -> list[Case]:
    return [
        Case("thinning", "2000 x 5", Side(
            "ours", "from sketchlearn.thinning import KernelThinning", DATA_KT,
            "KernelThinning(random_state=0).fit(X)"), Side(
            "goodpoints kt.thin (KT+, m = 5 halvings)",
            "from goodpoints import kt\n"
            "from goodpoints.gaussianc import gaussian_kernel_by_row",
            DATA_KT + GP_KERNELS,
            "kt.thin(X, m, split, swap, delta=0.5, seed=0, store_K=True)")),
        Case("sliced", "500 x 5 vs 400 x 5", Side(
            "ours", "from sketchlearn.metrics import sliced_wasserstein", DATA_SW,
            "sliced_wasserstein(X, Y)"), Side(
            "POT sliced_wasserstein_distance (100 projections)", "import ot", DATA_SW,
            "ot.sliced_wasserstein_distance(X, Y, n_projections=100)")),
        Case("sinkhorn", "500 x 3 vs 400 x 3", Side(
            "ours", "from sketchlearn.transport import sinkhorn", DATA_SINKHORN,
            "sinkhorn(X=X, Y=Y, reg=0.1)"), Side(
            "POT sinkhorn(a, b, ot.dist(X, Y), 0.1)", "import ot",
            DATA_SINKHORN + "a = np.full(500, 1 / 500)\nb = np.full(400, 1 / 400)\n",
            "ot.sinkhorn(a, b, ot.dist(X, Y), 0.1)")),
        Case("completion", "300 x 200, rank 5, 50% NaN", Side(
            "ours", "from sketchlearn.completion import AltMinCompleter", DATA_COMPLETION,
            "AltMinCompleter(rank=5).fit_transform(M)"), Side(
            "NumPy ALS (written here: rank 5, 100 iterations, ridge 1e-6)", "",
            DATA_COMPLETION + NUMPY_ALS, "als(M)")),
        Case("gauss_markov", "200 x 5", Side(
            "ours", "from sketchlearn.linear_model import GaussMarkovRegressor",
            DATA_REGRESSION, "GaussMarkovRegressor().fit(X, y)"), Side(
            "statsmodels OLS(y, add_constant(X)).fit()", "import statsmodels.api as sm",
            DATA_REGRESSION, "sm.OLS(y, sm.add_constant(X)).fit()")),
        Case("lsa", "200 x 5", Side(
            "ours", "from sketchlearn.linear_model import LSARegressor", DATA_REGRESSION,
            "LSARegressor().fit(X, y)"), Side(
            "scikit-learn Ridge().fit", "from sklearn.linear_model import Ridge",
            DATA_REGRESSION, "Ridge().fit(X, y)")),
        Case("kernels", "500 x 5 vs 400 x 5", Side(
            "ours", "from sketchlearn.kernels import mmd", DATA_SW, "mmd(X, Y)")),
        Case("sketching", "2000 x 20 -> 200 rows", Side(
            "ours", "from sketchlearn.sketching import sketch", DATA_SKETCH,
            "sketch(X, 'countsketch', 200, random_state=0)"), Side(
            "SciPy clarkson_woodruff_transform (CountSketch)",
            "from scipy.linalg import clarkson_woodruff_transform", DATA_SKETCH,
            "clarkson_woodruff_transform(X, 200, seed=0)")),
        Case("ensemble", "500 x 20", Side(
            "ours", "from sketchlearn.ensemble import RidgeEnsemble", DATA_ENSEMBLE,
            "RidgeEnsemble(random_state=0).fit(X, y)"), Side(
            "scikit-learn Ridge().fit (one model)", "from sklearn.linear_model import Ridge",
            DATA_ENSEMBLE, "Ridge().fit(X, y)")),
    ]


# --------------------------------------------------------------------------- children


def child_env(cache_dir: str, cold_start: str = "reference") -> dict:
    """The parent's environment with the pinned thread counts, a given Numba cache and
    sketchlearn's cold start (``"reference"``, the default a user gets, or ``"compile"``)."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(H.settings.threads)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["SKETCHLEARN_COLD_START"] = cold_start
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def _tail(text: str, lines: int = 5) -> str:
    return " / ".join(text.strip().splitlines()[-lines:])


def run_child(side: Side, cold_start: str = "reference") -> dict:
    """One fresh interpreter with an empty NUMBA_CACHE_DIR; returns its timings."""
    spec = json.dumps({"imports": side.imports, "setup": side.setup, "call": side.call,
                       "marker": MARKER})
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        cache = os.path.join(tmp, "numba_cache")
        os.mkdir(cache)
        proc = subprocess.run([sys.executable, "-c", CHILD, spec], cwd=tmp,
                              env=child_env(cache, cold_start), capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT_S)
        cached_files = sum(len(files) for _, _, files in os.walk(cache))
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            out = json.loads(line[len(MARKER):])
            out["numba_cache_files_written"] = cached_files
            return out
    return {"error": f"exit {proc.returncode}: {_tail(proc.stderr or proc.stdout)}"}


def run_demo(cold_start: str = "reference") -> dict:
    """``python -m sketchlearn demo`` twice on one new cache: empty, then as the first run
    left it (``first_s``, ``second_s``)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="coldstart-demo-") as tmp:
        cache = os.path.join(tmp, "numba_cache")
        os.mkdir(cache)
        for key in ("first_s", "second_s"):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "sketchlearn", "demo"], cwd=tmp,
                                  env=child_env(cache, cold_start), capture_output=True,
                                  text=True, timeout=CHILD_TIMEOUT_S)
            out[key] = time.perf_counter() - t
            if proc.returncode != 0:
                return {"error": f"exit {proc.returncode}: {_tail(proc.stderr)}"}
        out["numba_cache_files_written"] = sum(len(f) for _, _, f in os.walk(cache))
    return out


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _summarise(runs: list[dict]) -> dict:
    errors = [r["error"] for r in runs if "error" in r]
    good = [r for r in runs if "error" not in r]
    return {"import_s": _median(good, "import_s"), "first_s": _median(good, "first_s"),
            "second_s": _median(good, "second_s"), "ready_s": _median(good, "ready_s"),
            "warm_s": _median(good, "warm_s"), "runs": runs,
            "error": errors[0] if errors else None}


def _goal(first_s, goal_s=GOAL_S):
    if first_s is None:
        return None
    return "yes" if first_s <= goal_s else "no"


def _thread_check(runs: list[dict]) -> list[str]:
    """Thread counts a child saw that differ from the pinned count."""
    want = H.settings.threads
    odd = []
    for r in runs:
        blas = r.get("blas_threads") or []
        if any(b != want for b in blas):
            odd.append(f"BLAS {blas}")
        if r.get("numba_threads") not in (None, want):
            odd.append(f"Numba {r['numba_threads']}")
    return odd


# --------------------------------------------------------------------------- run


def run(quick: bool) -> dict:
    repeats = 1 if quick else FULL_REPEATS
    rows, problems = [], []
    for case in cases():
        ours_runs, compiling_runs, peer_runs = [], [], []
        for _ in range(repeats):  # alternate ours and the peer, each in a fresh child
            ours_runs.append(run_child(case.ours))
            compiling_runs.append(run_child(case.ours, "compile"))
            if case.peer is not None:
                peer_runs.append(run_child(case.peer))
        ours = _summarise(ours_runs)
        compiling = _summarise(compiling_runs)
        peer = _summarise(peer_runs) if case.peer is not None else None
        row = {"call": case.ours.call, "size": case.size,
               "ours_import_s": ours["import_s"], "ours_first_s": ours["first_s"],
               "ours_second_s": ours["second_s"], "ours_ready_s": ours["ready_s"],
               "ours_warm_s": ours["warm_s"],
               "ours_first_compiling_s": compiling["first_s"],
               "peer": case.peer.label if peer else None,
               "peer_import_s": peer and peer["import_s"],
               "peer_first_s": peer and peer["first_s"],
               "peer_warm_s": peer and peer["warm_s"],
               "first_ratio": H.ratio(ours["first_s"], peer and peer["first_s"]),
               "goal_5s": _goal(ours["first_s"]), "case": case.name, "repeats": repeats,
               "ours_runs": ours_runs, "compiling_runs": compiling_runs,
               "peer_runs": peer_runs,
               "ours_imports": case.ours.imports,
               "peer_call": case.peer.call if case.peer else None,
               "peer_imports": case.peer.imports if case.peer else None}
        for who, res in (("ours", ours), ("ours, compile first", compiling), ("peer", peer)):
            if res and res["error"]:
                problems.append(f"{case.name} ({who}) failed: {res['error']}")
        odd = _thread_check(ours_runs + compiling_runs + peer_runs)
        if odd:
            problems.append(f"{case.name}: a child ran with other thread counts "
                            f"({', '.join(sorted(set(odd)))})")
        rows.append(row)
        print(f"  {case.name}: ours import {ours['import_s']}, first {ours['first_s']}, "
              f"second {ours['second_s']}, ready after {ours['ready_s']}, warm "
              f"{ours['warm_s']}; compiling first {compiling['first_s']}; peer first "
              f"{peer and peer['first_s']}", flush=True)

    demo_runs, demo_compiling_runs = [], []
    for _ in range(repeats):
        demo_runs.append(run_demo())
        demo_compiling_runs.append(run_demo("compile"))
    demo, demo_compiling = _summarise(demo_runs), _summarise(demo_compiling_runs)
    for res in (demo, demo_compiling):
        if res["error"]:
            problems.append(f"demo failed: {res['error']}")
    rows.append({"call": "python -m sketchlearn demo", "size": "4096 x 2 -> 64 (defaults)",
                 "ours_import_s": None, "ours_first_s": demo["first_s"],
                 "ours_second_s": demo["second_s"],
                 "ours_first_compiling_s": demo_compiling["first_s"], "peer": None,
                 "goal_5s": _goal(demo["first_s"], DEMO_GOAL_S), "case": "demo",
                 "repeats": repeats, "ours_runs": demo_runs,
                 "compiling_runs": demo_compiling_runs,
                 "second_run_after_compiling_s": demo_compiling["second_s"]})
    print(f"  demo: empty cache {demo['first_s']}, second run {demo['second_s']}; "
          f"compiling first {demo_compiling['first_s']}, then {demo_compiling['second_s']}",
          flush=True)

    m = H.machine_info()
    threads = H.settings.threads
    notes = [
        "What is measured: for each call, a fresh Python interpreter "
        "(subprocess, sys.executable -c) times the import of the modules the call needs "
        "(numpy imported before and not counted), the first call on the data "
        "(argument checks, lazy imports and the work: with sketchlearn's default "
        "cold_start='reference' a small call runs the NumPy reference of its Numba "
        "kernels, which then compile on a background thread), the same call again at "
        "once (second: still the reference, sharing the interpreter with the "
        "compilation), the wait for the background compilation (ready, "
        "sketchlearn.wait_for_compilation()), and the call once more (warm: compiled "
        "kernels; for a peer, simply its second call). ours_first_compiling_s: the first "
        "call in another fresh child with SKETCHLEARN_COLD_START=compile (compile, then "
        "run: the first call before this cold start existed). Data from numpy "
        "default_rng(0), the same arrays on both sides; building them is not timed.",
        "Every child (ours and the peer's alike) runs in a fresh process with "
        "NUMBA_CACHE_DIR set to a new, empty temporary folder, so no kernel compiled "
        "earlier is reused (byte-compiled .pyc files of the installed packages are; a "
        "brand-new install also writes those once).",
        f"Threads: {threads} for BLAS/OpenMP and Numba on both sides, passed to the "
        f"children as {', '.join(THREAD_VARS)}; each child reports the BLAS and Numba "
        "counts it ran with (kept in the JSON).",
        f"Machine: {m.get('cpu_model')}, {m.get('cores_available')} cores available, "
        f"Python {m.get('python')}, numba {m['versions'].get('numba')}; load average "
        f"at the end {H.load_average()} (first-call times swing with other jobs on "
        "the cores: compilation is single-threaded CPU work).",
        "first_ratio = ours_first_s / peer_first_s: above 1 our first call is slower "
        "(the inverse of the speedup columns of the other benchmarks). goal_5s: our "
        f"first call takes at most {GOAL_S:g} s (the demo's whole first run at most "
        f"{DEMO_GOAL_S:g} s).",
        "Peers: goodpoints kt.thin KT+ with the Gaussian kernel exp(-r^2 / (4 d)) "
        "(rows by its compiled gaussian_kernel_by_row, store_K=True) and m = "
        "floor(log2(n) / 2) halvings (62 points; ours keeps floor(sqrt(n)) = 44 and "
        "picks the median-heuristic bandwidth); POT with our default 100 projections; "
        "POT's plain ot.sinkhorn (defaults: 1000 iterations max, stopThr 1e-9) with "
        "M = ot.dist(X, Y) (squared Euclidean, our default metric) computed inside the "
        "timed call, as ours computes its cost; the completion peer is a NumPy "
        "alternating least squares written in this benchmark (rank 5, 100 iterations "
        "= our default max_iter, ridge 1e-6, all rows solved at once), not a library; "
        "sketching: SciPy's clarkson_woodruff_transform; ensemble: one scikit-learn "
        "Ridge (ours fits 10 members). mmd has no peer (—).",
        "Demo row: `python -m sketchlearn demo` (default 4096 points -> 64) as a whole "
        "subprocess, wall time including interpreter start-up and imports; "
        "ours_first_s with an empty NUMBA_CACHE_DIR, ours_second_s a second run on the "
        "cache as the first left it (the demo exits before its background compilation "
        "ends, so that run uses the reference again); ours_first_compiling_s the "
        "empty-cache run with cold_start='compile' (JSON: second_run_after_compiling_s, "
        "the run after it on the cache it filled).",
        ("Quick run: every child once." if quick else
         f"Full run: every child {FULL_REPEATS} times (ours and peer alternating, a new "
         "empty cache each time), medians."),
        "No headline for sketchlearn.datasets (no Numba kernels); metrics is the "
        "sliced_wasserstein row (it re-exports the kernels and transport functions).",
    ]
    notes += problems
    columns = ["call", "size", "ours_import_s", "ours_first_s", "ours_second_s",
               "ours_ready_s", "ours_warm_s", "ours_first_compiling_s", "peer",
               "peer_import_s", "peer_first_s", "peer_warm_s", "first_ratio", "goal_5s"]
    return {"name": NAME, "description": DESCRIPTION, "columns": columns, "rows": rows,
            "notes": notes}
