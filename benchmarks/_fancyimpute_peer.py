"""Runs fancyimpute's solvers on a saved completion problem (called by bench_completion).

fancyimpute 0.7.0 calls ``check_array(force_all_finite=...)``, which scikit-learn >= 1.6
rejects, so this script runs in its own virtual environment (scikit-learn 1.5.2,
numpy < 2), created by ``bench_completion.ensure_fancyimpute_venv``. It must not
import sketchlearn.

Usage: python _fancyimpute_peer.py problem.npz out.json SOLVER[:REPEATS] ...
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def make(name):
    from fancyimpute import IterativeSVD, MatrixFactorization, SoftImpute

    if name == "SoftImpute":
        return SoftImpute(max_rank=20, verbose=False)
    if name == "IterativeSVD":
        return IterativeSVD(rank=10, verbose=False)
    if name == "MatrixFactorization":
        return MatrixFactorization(rank=10, verbose=False)
    raise ValueError(name)


def main(argv):
    data = np.load(argv[0])
    X = data["X"]
    tr, tc, tv = data["test_rows"], data["test_cols"], data["test_vals"]
    out = {}
    for spec in argv[2:]:
        name, _, reps = spec.partition(":")
        times, rmses = [], []
        for _ in range(int(reps or 1)):
            est = make(name)
            t0 = time.perf_counter()
            Z = est.fit_transform(X.copy())
            times.append(time.perf_counter() - t0)
            rmses.append(float(np.sqrt(np.mean((Z[tr, tc] - tv) ** 2))))
        out[name] = {"times": times, "rmse": rmses}
        print(f"  peer {name}: times {[round(t, 2) for t in times]}, RMSE {rmses[-1]:.4f}",
              flush=True)
    import fancyimpute
    import sklearn

    out["versions"] = {"fancyimpute": fancyimpute.__version__, "sklearn": sklearn.__version__,
                       "numpy": np.__version__}
    with open(argv[1], "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
