"""AltMin's row solvers side by side: time to a held-out RMSE (issue 19, point 3).

``AltMinCompleter`` with ``solver="exact"`` (classical alternating least squares:
Cholesky of each row's ``k x k`` Gram matrix, ``O(|Omega_i| k^2)`` per row),
``"cg"`` (4 warm-started Jacobi-CG steps per row, no accuracy target,
``O(|Omega_i| k)`` per step) and ``"sketch-cg"`` (the robust alternating minimization
of Gu, Song, Yin and Zhang: CountSketch-preconditioned CG to ``solve_tol`` per row,
orthonormalised factors, ``O(|Omega_i| k)`` per step plus ``O(4 k^3)`` for the
preconditioner), on the same data, in one process, after a JIT warm-up.

Data: ``M = A B^T / sqrt(k)`` with ``A``, ``B`` standard normal, exactly
``per_row`` observed entries in every row (columns drawn without replacement),
N(0, 0.1^2) noise. Accuracy: RMSE against the noiseless ``M`` on 200 000 random
entries (unobserved with probability ``1 - per_row / n``).

Time to target: every sweep's held-out RMSE is recorded on the way (the solver's
own per-sweep call that predicts the observed entries is wrapped; the time spent on
the held-out evaluation is subtracted), and the time to target is the fit time up to
the first sweep whose held-out RMSE is within 2% of the best any of the three
solvers reaches on that problem. The initial spectral estimate (a sparse truncated
SVD, the same for all three) is included.

Sizes: the full run has the default-ish 2000 x 1000, rank 10, 200 per row problem
(the one that decides the default) and the 20 000 x 10 000 problem with 1000
observed entries per row at ranks 50 and 100 (issue 19). ``--quick`` runs
2000 x 1000 with 200 per row at ranks 10, 25 and 50.
"""

from __future__ import annotations

import math
import time
import warnings

import _harness as H
import numpy as np

NAME = "altmin_solvers"
DESCRIPTION = ("AltMin row solvers (exact ALS, CG, sketch-preconditioned CG of Gu et al.): "
               "time to a held-out RMSE, one process, same data")

NOISE = 0.1
N_TEST = 200_000
SOLVERS = ("exact", "cg", "sketch-cg")
TARGET_SLACK = 1.02
# (m, n, per_row, rank, repeats, max_iter)
FULL = [(2000, 1000, 200, 10, 3, 100), (20_000, 10_000, 1000, 50, 1, 6),
        (20_000, 10_000, 1000, 100, 1, 6)]
QUICK = [(2000, 1000, 200, 10, 1, 100), (2000, 1000, 200, 25, 1, 100),
         (2000, 1000, 200, 50, 1, 100)]


def make_problem(m, n, per_row, k, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((n, k))
    rows = np.repeat(np.arange(m, dtype=np.int32), per_row)
    cols = np.empty(m * per_row, dtype=np.int32)
    for i in range(m):
        cols[i * per_row:(i + 1) * per_row] = rng.choice(n, per_row, replace=False)
    vals = np.empty(rows.size)
    for s in range(0, rows.size, 1_000_000):
        e = min(rows.size, s + 1_000_000)
        vals[s:e] = np.einsum("ij,ij->i", A[rows[s:e]], B[cols[s:e]]) / math.sqrt(k)
    vals += NOISE * rng.standard_normal(rows.size)
    tr = rng.integers(0, m, N_TEST)
    tc = rng.integers(0, n, N_TEST)
    tv = np.einsum("ij,ij->i", A[tr], B[tc]) / math.sqrt(k)
    return (rows, cols, vals, (m, n)), (tr, tc, tv)


def fit_with_trace(data, test, k, solver, max_iter):
    """Fit once; return the fit time, the sweeps run, and per sweep (fit time so far,
    held-out RMSE) with the held-out evaluation time left out."""
    from sketchlearn.completion import AltMinCompleter, _core

    tr, tc, tv = test
    trace = []
    spent = [0.0]
    t0 = [0.0]
    inner = _core.predict

    def traced(obs, U, V):
        out = inner(obs, U, V)
        ts = time.perf_counter()
        so_far = ts - t0[0] - spent[0]
        # U V^T at the held-out entries: the current iterate (before rebalancing or the
        # final SVD, which do not change the product)
        pred = np.einsum("ij,ij->i", U[tr], V[tc])
        trace.append((so_far, float(np.sqrt(np.mean((pred - tv) ** 2)))))
        spent[0] += time.perf_counter() - ts
        return out

    est = AltMinCompleter(rank=k, solver=solver, max_iter=max_iter, random_state=0)
    _core.predict = traced
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0[0] = time.perf_counter()
            est.fit(data)
            elapsed = time.perf_counter() - t0[0] - spent[0]
    finally:
        _core.predict = inner
    final = float(np.sqrt(np.mean((est.predict_entries(tr, tc) - tv) ** 2)))
    return {"time_s": elapsed, "sweeps": est.n_iter_, "trace": trace, "rmse": final}


def warm_up():
    from sketchlearn.completion import AltMinCompleter

    # a small problem (serial kernels, dense SVD) and a larger one (parallel kernels,
    # ARPACK): every compiled variant the timed fits use
    small, _ = make_problem(300, 200, 40, 4, seed=1)
    large, _ = make_problem(3000, 1000, 100, 8, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for data, k in ((small, 4), (large, 8)):
            for solver in SOLVERS:
                AltMinCompleter(rank=k, solver=solver, max_iter=3, random_state=0).fit(data)


def run(quick: bool) -> dict:
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", flush=True)

    warm_up()
    rows, raw = [], []
    for m, n, per_row, k, repeats, max_iter in (QUICK if quick else FULL):
        if quick:
            repeats = 1
        log(f"{m} x {n}, {per_row} per row, rank {k}: data ...")
        data, test = make_problem(m, n, per_row, k)
        oracle = NOISE * math.sqrt(k * (m + n) / data[2].size)
        runs = {s: [] for s in SOLVERS}
        for _rep in range(repeats):  # interleaved: exact, cg, sketch-cg, exact, ...
            for solver in SOLVERS:
                res = fit_with_trace(data, test, k, solver, max_iter)
                runs[solver].append(res)
                log(f"  {solver}: {res['time_s']:.2f} s, {res['sweeps']} sweeps, held-out "
                    f"RMSE {res['rmse']:.4f}")
        best = min(r for s in SOLVERS for res in runs[s] for _, r in res["trace"])
        target = TARGET_SLACK * best
        per_solver = {}
        for solver in SOLVERS:
            reach = []
            for res in runs[solver]:
                hit = next((t for t, r in res["trace"] if r <= target), None)
                reach.append(hit)
            ok = [t for t in reach if t is not None]
            per_solver[solver] = {
                "time_to_target_s": float(np.median(ok)) if len(ok) == len(reach) else None,
                "fit_time_s": float(np.median([r["time_s"] for r in runs[solver]])),
                "sweeps": runs[solver][0]["sweeps"],
                "rmse": float(np.median([r["rmse"] for r in runs[solver]])),
            }
        ref = per_solver["exact"]["time_to_target_s"]
        for solver in SOLVERS:
            info = per_solver[solver]
            tt = info["time_to_target_s"]
            rows.append({
                "problem": f"{m} x {n}, {per_row}/row, k={k}", "solver": solver,
                "calls": repeats, "time_to_target_s": tt,
                "speedup_vs_exact": H.ratio(ref, tt) if ref and tt else None,
                "fit_time_s": info["fit_time_s"], "sweeps": info["sweeps"],
                "final_rmse": info["rmse"], "target_rmse": target,
                "rmse_vs_oracle": info["rmse"] / oracle,
            })
        raw.append({"m": m, "n": n, "per_row": per_row, "rank": k, "oracle": oracle,
                    "target": target, "max_iter": max_iter,
                    "runs": {s: [{"time_s": r["time_s"], "sweeps": r["sweeps"],
                                  "rmse": r["rmse"], "trace": r["trace"]} for r in runs[s]]
                             for s in SOLVERS}})
    notes = [
        "Time to target: fit time (the spectral start included, JIT warm-up excluded) up to "
        f"the first sweep whose held-out RMSE is within {TARGET_SLACK - 1:.0%} of the best "
        "held-out RMSE any solver reaches on that problem (target_rmse); None: not reached "
        "within max_iter. speedup_vs_exact = exact's time to target / the solver's.",
        "fit_time_s: the whole fit with default stopping (tol=1e-4 on the relative change of "
        "the observed-entry RMSE) or max_iter sweeps, whichever first. sketch-cg runs with its "
        "default solve_tol=1e-6; cg with its default cg_iter=4.",
        f"Data: M = A B^T / sqrt(k), A and B standard normal, exactly per_row observed "
        f"entries per row (distinct columns, uniformly drawn), noise sigma = {NOISE}; held-out "
        f"RMSE against the noiseless M on {N_TEST} random entries. rmse_vs_oracle = final RMSE "
        "/ (sigma sqrt(k (m + n) / |Omega|)).",
    ]
    if quick:
        notes.append("Quick run: 2000 x 1000 with 200 entries per row only, one call each.")
    else:
        notes.append("Full run: the 20 000 x 10 000 problems once per solver, at most 6 sweeps "
                     "(max_iter=6, to fit the run in about 15 minutes on 2 cores; at 1/5 of "
                     "this size all three stop by tol after 3 or 4 sweeps); the 2000 x 1000 "
                     "rank-10 problem three interleaved times (medians).")
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["problem", "solver", "calls", "time_to_target_s", "speedup_vs_exact",
                        "fit_time_s", "sweeps", "final_rmse", "target_rmse", "rmse_vs_oracle"],
            "rows": rows, "notes": notes, "raw": raw}
