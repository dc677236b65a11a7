"""Sliced and entropic transport against POT, in one process, on the same data.

Four experiments, each reported as ratios ``peer / ours`` (above 1: sketchlearn is
faster, or its estimate less noisy):

1. ``sw``: sliced Wasserstein (p = 2) with the *same* projection matrix on both sides:
   ``sketchlearn.transport.sliced_wasserstein`` vs ``ot.sliced_wasserstein_distance``
   (``projections=`` the same directions). Median wall time of interleaved repeats,
   and the relative difference of the values (should be ~1e-15).
2. ``sw-variance``: standard deviation of the SW estimate over seeds at equal wall
   time, on anisotropic, heavy-tailed vs skewed data: POT's Monte Carlo at L = 50
   against ours with ``slices="mc"``, ``"orthogonal"``, ``"cv-upper"``, each given as
   many projections as fit in POT's wall time (calibrated by timing).
3. ``sinkhorn``: log-domain Sinkhorn at n = m, d = 10, costs divided by their median,
   reg = 0.05: POT ``ot.sinkhorn(method="sinkhorn_log")`` (default stopThr) and POT's
   plain ``ot.sinkhorn``; ours is run to the same L1 marginal error that POT's
   log-domain solver reached (measured on its returned plan).
4. ``sns``: Sinkhorn-Newton-Sparse (ours) against POT's plain ``ot.sinkhorn`` at
   reg = 0.01, to an L1 marginal error of about 1e-6: iterations and time.
6. ``unbalanced``: ``sinkhorn(..., reg_m=1)`` (log domain) against POT's
   ``ot.sinkhorn_unbalanced`` methods (default stopThr) at n = 1500, d = 4, costs
   divided by their median; every plan's max error against POT's plan run to
   stopThr = 1e-13, relative to its largest entry.
7. ``barycenter``: ``entropic_barycenter`` against ``ot.bregman.barycenter``
   (scaling and log domain) on 3 histograms of a 1-D grid, to stopThr 1e-9.
5. ``energy``: sliced energy distance at large n (L = 100) vs the pairwise formula
   (scipy ``cdist``) timed at a size where it fits and scaled by (n / n_pairwise)^2;
   the value is checked against the pairwise formula at that smaller size.
"""

from __future__ import annotations

import statistics
import time

import _harness as H
import numpy as np

NAME = "transport"
DESCRIPTION = ("sliced Wasserstein, variance at equal time, log-domain Sinkhorn and "
               "sliced energy distance vs POT / pairwise")

SEED = 0


def _sw_data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) * 1.2 + 0.1
    return X, Y


def _hard_data(n, d, seed):
    """Anisotropic Student-t (3 dof) against a shifted exponential."""
    rng = np.random.default_rng(seed)
    X = rng.standard_t(3, size=(n, d)) * np.linspace(0.2, 3.0, d)
    Y = rng.exponential(size=(n, d)) - 0.5
    return X, Y


def bench_sw(n, d, L, repeats):
    import ot

    from sketchlearn.transport import sliced_wasserstein
    from sketchlearn.transport._slices import make_directions

    X, Y = _sw_data(n, d, SEED)
    dirs = make_directions(d, L, "mc", np.random.default_rng(SEED))[0]
    wX, wY = _sw_data(300, d, SEED + 1)
    res = H.time_interleaved(
        {"ours": lambda: sliced_wasserstein(X, Y, n_projections=L, random_state=SEED),
         "pot": lambda: float(ot.sliced_wasserstein_distance(X, Y, projections=dirs.T))},
        repeats,
        warmup={"ours": lambda: sliced_wasserstein(wX, wY, n_projections=4),
                "pot": lambda: ot.sliced_wasserstein_distance(wX, wY, n_projections=4)})
    ours, pot = res["ours"], res["pot"]
    return {"experiment": "sw", "n": n, "d": d, "L": L, "repeats": repeats,
            "ours_s": ours["median"], "peer_s": pot["median"],
            "speedup": H.ratio(pot["median"], ours["median"]),
            "ours_value": ours["value"], "peer_value": pot["value"],
            "rel_diff": H.rel_diff(ours["value"], pot["value"])}


def bench_variance(n, d, reps):
    import ot

    from sketchlearn.transport import sliced_wasserstein

    X, Y = _hard_data(n, d, SEED)
    L_pot = 50
    ot.sliced_wasserstein_distance(X[:300], Y[:300], n_projections=4)
    t0 = time.perf_counter()
    pot_vals = [float(ot.sliced_wasserstein_distance(X, Y, n_projections=L_pot, seed=r))
                for r in range(reps)]
    pot_t = (time.perf_counter() - t0) / reps
    ref = sliced_wasserstein(X, Y, n_projections=20000, slices="orthogonal",
                             random_state=10**6)
    rows = []
    pot_sd = float(np.std(pot_vals, ddof=1))
    rows.append({"experiment": "sw-variance", "n": n, "d": d, "method": "POT mc",
                 "L": L_pot, "time_s": pot_t, "std": pot_sd, "bias": np.mean(pot_vals) - ref,
                 "std_ratio": 1.0})
    for slices in ("mc", "orthogonal", "cv-upper"):
        sliced_wasserstein(X, Y, n_projections=8, slices=slices, random_state=0)
        t0 = time.perf_counter()
        sliced_wasserstein(X, Y, n_projections=200, slices=slices, random_state=0)
        per_slice = (time.perf_counter() - t0) / 200
        L = max(2, int(pot_t / per_slice))
        t0 = time.perf_counter()
        vals = [sliced_wasserstein(X, Y, n_projections=L, slices=slices, random_state=r)
                for r in range(reps)]
        t = (time.perf_counter() - t0) / reps
        sd = float(np.std(vals, ddof=1))
        rows.append({"experiment": "sw-variance", "n": n, "d": d, "method": f"ours {slices}",
                     "L": L, "time_s": t, "std": sd, "bias": np.mean(vals) - ref,
                     "std_ratio": H.ratio(pot_sd, sd)})
    return rows


def _l1_marginal_error(P, a, b):
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def bench_sinkhorn(n, d, reg, repeats):
    import ot

    from sketchlearn.transport import sinkhorn

    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) + 0.3
    M = ot.dist(X, Y)
    M /= np.median(M)
    a = np.full(n, 1.0 / n)
    Mw = M[:50, :50].copy()
    aw = np.full(50, 1 / 50)
    sinkhorn(aw, aw, Mw, reg=reg)
    ot.sinkhorn(aw, aw, Mw, reg, method="sinkhorn_log")
    rows = []
    out = {}

    def pot_log():
        P, log = ot.sinkhorn(a, a, M, reg, method="sinkhorn_log", log=True,
                             numItermax=100000)
        out["pot_log"] = (P, log["niter"])
        return float((P * M).sum())

    def pot_plain():
        P, log = ot.sinkhorn(a, a, M, reg, method="sinkhorn", log=True, numItermax=100000)
        out["pot"] = (P, log["niter"])
        return float((P * M).sum())

    t_log = H.time_interleaved({"pot_log": pot_log}, max(1, repeats // 2))["pot_log"]
    err = _l1_marginal_error(out["pot_log"][0], a, a)
    res = {}

    def ours():
        r = sinkhorn(a, a, M, reg=reg, tol=err)
        res["r"] = r
        return r.cost

    t = H.time_interleaved({"ours": ours, "pot": pot_plain}, repeats)
    r = res["r"]
    rows.append({"experiment": "sinkhorn", "n": n, "d": d, "reg": reg,
                 "method": "ours log (eps-scaling)", "time_s": t["ours"]["median"],
                 "iterations": r.n_iter, "marginal_L1": r.error, "cost": r.cost,
                 "speedup_vs_pot_log": H.ratio(t_log["median"], t["ours"]["median"])})
    rows.append({"experiment": "sinkhorn", "n": n, "d": d, "reg": reg,
                 "method": "POT sinkhorn_log", "time_s": t_log["median"],
                 "iterations": out["pot_log"][1], "marginal_L1": err,
                 "cost": t_log["value"], "speedup_vs_pot_log": 1.0})
    P, it = out["pot"]
    rows.append({"experiment": "sinkhorn", "n": n, "d": d, "reg": reg,
                 "method": "POT sinkhorn", "time_s": t["pot"]["median"], "iterations": it,
                 "marginal_L1": _l1_marginal_error(P, a, a), "cost": t["pot"]["value"],
                 "speedup_vs_pot_log": H.ratio(t_log["median"], t["pot"]["median"])})
    return rows


def bench_sns(n, d, reg, target):
    """POT ot.sinkhorn (plain scaling) vs ours method="sns" to L1 marginal error target."""
    import ot

    from sketchlearn.transport import sinkhorn

    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) + 0.3
    M = ot.dist(X, Y)
    M /= np.median(M)
    a = np.full(n, 1.0 / n)
    aw = np.full(50, 1 / 50)
    sinkhorn(aw, aw, M[:50, :50].copy(), reg=reg, method="sns")
    # POT checks every 10 iterations the L2 norm of the column violation; stopThr =
    # target / sqrt(n) bounds its column L1 error by the target (capped at 20000
    # iterations; the table shows the L1 error it reached).
    t0 = time.perf_counter()
    P, log = ot.sinkhorn(a, a, M, reg, log=True, numItermax=20_000,
                         stopThr=target / np.sqrt(n))
    t_pot = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = sinkhorn(a, a, M, reg=reg, tol=target, method="sns")
    t_ours = time.perf_counter() - t0
    return [
        {"experiment": "sns", "n": n, "d": d, "reg": reg, "method": "ours sns",
         "time_s": t_ours, "iterations": r.n_iter, "marginal_L1":
         _l1_marginal_error(r.plan, a, a), "cost": r.cost,
         "speedup": H.ratio(t_pot, t_ours)},
        {"experiment": "sns", "n": n, "d": d, "reg": reg, "method": "POT sinkhorn",
         "time_s": t_pot, "iterations": log["niter"],
         "marginal_L1": _l1_marginal_error(P, a, a), "cost": float((P * M).sum()),
         "speedup": 1.0},
    ]


def bench_energy(n, d, L, n_pair):
    from scipy.spatial.distance import cdist

    from sketchlearn.transport import energy_distance

    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) + 0.05
    energy_distance(X[:200], Y[:200], n_projections=4)
    times = []
    for r in range(3):
        t0 = time.perf_counter()
        value = energy_distance(X, Y, n_projections=L, random_state=r, squared=True)
        times.append(time.perf_counter() - t0)
    t_ours = statistics.median(times)
    Xs, Ys = X[:n_pair], Y[:n_pair]
    t0 = time.perf_counter()
    exact = 2 * cdist(Xs, Ys).mean() - cdist(Xs, Xs).mean() - cdist(Ys, Ys).mean()
    t_pair = time.perf_counter() - t0
    small, se = energy_distance(Xs, Ys, n_projections=L, random_state=0, squared=True,
                                return_std=True)
    est_pair = t_pair * (n / n_pair) ** 2
    return {"experiment": "energy", "n": n, "d": d, "L": L, "ours_s": t_ours,
            "ours_value": value, "pairwise_s_at_n_pair": t_pair, "n_pair": n_pair,
            "pairwise_s_estimated": est_pair, "speedup": H.ratio(est_pair, t_ours),
            "check_at_n_pair": f"sliced {small:.4g} +- {se:.2g} vs pairwise {exact:.4g}"}


def bench_unbalanced(n, d, regs, reg_m):
    import ot

    from sketchlearn.transport import sinkhorn

    rng = np.random.default_rng(SEED)
    M = ot.dist(rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.3)
    M /= np.median(M)
    a = np.full(n, 1.0 / n)
    sinkhorn(a[:20] * 50 / 20, a[:20] * 50 / 20, M[:20, :20], reg=0.1, reg_m=reg_m)
    rows = []
    for reg in regs:
        ref = ot.sinkhorn_unbalanced(a, a, M, reg, reg_m, numItermax=200_000, stopThr=1e-13)
        res = {}
        funcs = {"ours log": lambda reg=reg: sinkhorn(a, a, M, reg=reg, reg_m=reg_m).plan}
        for meth in ("sinkhorn", "sinkhorn_translation_invariant", "sinkhorn_stabilized"):
            funcs[f"POT {meth}"] = lambda reg=reg, meth=meth: ot.sinkhorn_unbalanced(
                a, a, M, reg, reg_m, method=meth, numItermax=2000)
        t = H.time_interleaved(funcs, 1)
        for name, v in t.items():
            res[name] = float(np.abs(v["value"] - ref).max() / ref.max())
        best = min((t[k]["median"] for k in t if k.startswith("POT") and res[k] < 1e-4),
                   default=None)
        for name in t:
            rows.append({"experiment": "unbalanced", "n": n, "d": d, "reg": reg,
                         "method": name, "time_s": t[name]["median"],
                         "rel_diff": res[name],
                         "speedup": H.ratio(best, t[name]["median"])})
    return rows


def bench_barycenter(n, regs):
    import ot

    from sketchlearn.transport import entropic_barycenter

    x = np.linspace(0, 1, n)
    A = np.stack([np.exp(-(x - c) ** 2 / w) + 1e-3 for c, w in
                  ((0.2, 0.004), (0.6, 0.01), (0.85, 0.002))], 1)
    A /= A.sum(0)
    M = (x[:, None] - x[None, :]) ** 2
    entropic_barycenter(A[:10] / A[:10].sum(0), M[:10, :10], 0.1)
    rows = []
    for reg in regs:
        ref = ot.bregman.barycenter(A, M, reg, method="sinkhorn_log", stopThr=1e-13,
                                    numItermax=100_000)
        t = H.time_interleaved({
            "ours log": lambda reg=reg: entropic_barycenter(A, M, reg, tol=1e-9),
            "POT sinkhorn": lambda reg=reg: ot.bregman.barycenter(
                A, M, reg, stopThr=1e-9, numItermax=100_000),
            "POT sinkhorn_log": lambda reg=reg: ot.bregman.barycenter(
                A, M, reg, method="sinkhorn_log", stopThr=1e-9, numItermax=100_000)}, 3)
        for name, v in t.items():
            rows.append({"experiment": "barycenter", "n": n, "reg": reg, "method": name,
                         "time_s": v["median"],
                         "rel_diff": float(np.abs(v["value"] - ref).max() / ref.max()),
                         "speedup": H.ratio(v["median"], t["ours log"]["median"])})
    return rows


def run(quick: bool) -> dict:
    if quick:
        sw_sizes = [(20_000, 50, 50, 3)]
        var_args = (2_000, 50, 10)
        sk_args = (500, 10, 0.05, 3)
        en_args = (100_000, 10, 100, 2_000)
    else:
        sw_sizes = [(10_000, 50, 200, 3), (100_000, 50, 200, 2)]
        var_args = (10_000, 50, 20)
        sk_args = (2_000, 10, 0.05, 3)
        en_args = (1_000_000, 10, 100, 5_000)
    rows = []
    for args in sw_sizes:
        rows.append(bench_sw(*args))
        print(f"  sw {args}: speedup {rows[-1]['speedup']:.3g}", flush=True)
    rows += bench_variance(*var_args)
    print("  variance done", flush=True)
    rows += bench_sinkhorn(*sk_args)
    print("  sinkhorn done", flush=True)
    rows += bench_sns(sk_args[0], sk_args[1], 0.01, 1e-6)
    print("  sns done", flush=True)
    rows.append(bench_energy(*en_args))
    rows += bench_unbalanced(600 if quick else 1500, 4,
                             [0.5, 0.05] if quick else [0.5, 0.1, 0.05, 0.01], 1.0)
    print("  unbalanced done", flush=True)
    rows += bench_barycenter(100, [1e-2, 1e-3])
    notes = [
        "All contenders run in this process on the same arrays, with the same thread "
        f"limits ({H.settings.threads} threads for BLAS/OpenMP and Numba). POT's sliced "
        "and Sinkhorn code is NumPy (sorts and logsumexp single-threaded; BLAS matmuls "
        "threaded); ours runs its slice and log-sum-exp loops in Numba prange over the "
        "pinned threads.",
        "sw: same projection matrix on both sides (POT gets ours via projections=); "
        "speedup = POT median / ours median; rel_diff of the two values.",
        "sw-variance: std over seeds at (about) equal wall time per estimate, "
        "std_ratio = POT std / ours std (above 1: ours less noisy); bias against a "
        "20000-direction orthogonal reference. Data: anisotropic Student-t (3 dof) "
        "against a shifted exponential.",
        "sinkhorn: costs divided by their median; ours runs to the L1 marginal error "
        "that POT's sinkhorn_log reached with its default stopThr (measured on its plan, "
        "rows + columns); 'marginal_L1' of ours counts rows only (its columns are exact).",
        "sns: reg = 0.01, costs divided by their median; POT's plain ot.sinkhorn with "
        "stopThr = 1e-6 / sqrt(n) (its L2 column criterion, checked every 10 "
        "iterations; numItermax = 20000) against ours method='sns' with tol = 1e-6 "
        "(L1, rows + columns); "
        "marginal_L1 of both measured on the returned plans (rows + columns); one run "
        "each.",
        "unbalanced: reg_m = 1, costs divided by their median, default stopping rules "
        "(ours: tol 1e-6 on the change of the potentials); rel_diff = max plan error "
        "against POT's sinkhorn_unbalanced run to stopThr 1e-13, over its largest "
        "entry; speedup = fastest POT method whose plan is within 1e-4 / this one "
        "(sinkhorn_stabilized capped at 2000 iterations; it stalls at small reg).",
        "barycenter: 3 histograms on a grid of n points, squared-distance cost; "
        "rel_diff against POT's log-domain barycenter run to stopThr 1e-13; speedup = "
        "that method's time / ours (above 1: ours faster).",
        "energy: pairwise time measured at n_pair and scaled by (n / n_pair)^2 (the "
        "pairwise formula needs O(n^2) work; at n = 10^6 it is out of reach).",
    ]
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["experiment", "n", "d", "L", "method", "reg", "ours_s", "peer_s",
                        "speedup", "rel_diff", "time_s", "std", "std_ratio", "bias",
                        "iterations", "marginal_L1", "cost", "speedup_vs_pot_log",
                        "pairwise_s_estimated", "check_at_n_pair"],
            "rows": rows, "notes": notes}
