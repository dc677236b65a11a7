"""Unbalanced entropic transport and entropic barycenters against POT, in one process,
on the same data (issue 20's comparisons; the balanced and sliced ones are in
``bench_transport.py``, whose experiment functions this module runs).

1. ``unbalanced``: ``sinkhorn(..., reg_m=1)`` (``"auto"`` and ``"log"``) against POT's
   ``ot.sinkhorn_unbalanced`` methods at n = 1500, d = 4, costs divided by their
   median, the same regs, all to 1e-9; every plan compared with POT's plan at stopThr
   1e-13; speedup against POT's fastest method whose plan is within
   1e-8 of that reference (as for ``sinkhorn`` in ``bench_transport.py``).
2. ``barycenter``: ``entropic_barycenter`` (``"auto"``, ``"log"``) against
   ``ot.bregman.barycenter`` and ``barycenter_debiased`` (scaling and log domain) on
   3 histograms of a 1-D grid and of a 28 x 28 image grid, to stopThr 1e-9 (the
   debiased POT scaling solver also at 1e-11, where it converges).
"""

from __future__ import annotations

import _harness as H
from bench_transport import bench_barycenter, bench_unbalanced

NAME = "transport_extensions"
DESCRIPTION = ("unbalanced Sinkhorn (four regularisations) and entropic barycenters "
               "(plain and debiased) vs POT")


def run(quick: bool) -> dict:
    regs = [0.5, 0.05] if quick else [0.5, 0.1, 0.05, 0.01]
    rows = bench_unbalanced(600 if quick else 1500, 4, regs, 1.0, quick)
    print("  unbalanced done", flush=True)
    rows += bench_barycenter([(100, 1e-2, False, True), (100, 1e-3, False, True),
                              (40, 1e-3, True, True), ("image", 5e-3, False, False)],
                             repeats=3 if quick else 5)
    notes = [
        "All contenders run in this process on the same arrays, with the same thread "
        f"limits ({H.settings.threads} threads for BLAS/OpenMP and Numba); times are "
        "medians of interleaved repeats.",
        "unbalanced: reg_m = 1, costs divided by their median, every contender to tol "
        "/ stopThr 1e-9 (ours: the change of the potentials in units of reg; POT: its "
        "relative change of the scalings); plan_diff = largest entry error against "
        "POT's sinkhorn_unbalanced at stopThr 1e-13; converged and speedup as for "
        "sinkhorn (sinkhorn_stabilized capped at 2000 iterations; it stalls at small "
        "reg).",
        "barycenter: 3 histograms on a 1-D grid of n points (n = 784: a 28 x 28 image "
        "grid, two blobs and a ring), squared-distance cost, every contender to tol / "
        "stopThr 1e-9; rel_diff against POT's log-domain barycenter (debiased rows: "
        "POT's barycenter_debiased) run to stopThr 1e-13 (n = 784: its scaling one; "
        "the log domains are left out there, minutes per solve); speedup = that "
        "method's time / ours 'auto' (above 1: ours faster); converged = rel_diff <= "
        "1e-8. Debiased rows add POT's scaling solver at stopThr 1e-11, the loosest "
        "at which it converges there (at 1e-9 it stops 2e-7 away). Ours 'auto' runs "
        "the scaling loop in one compiled Numba call (BLAS for the two products an "
        "iteration). Debiased rows at n = 40, "
        "reg = 1e-3 (reg near the squared grid step): at n = 100 the debiased "
        "iterations of every solver, POT's included, stall near 1e-5.",
    ]
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["experiment", "n", "d", "method", "reg", "time_s", "speedup",
                        "rel_diff", "plan_diff", "converged", "reference"],
            "rows": rows, "notes": notes}
