"""Sketch application times against the dense Gaussian matmul, SciPy and scikit-learn.

Task: sketch the rows of ``X`` (``n x d``, float64, standard normal) to ``m`` rows.

Contenders (same process, same array, same BLAS threads, interleaved, medians):

- ours: ``sketchlearn.sketching.sketch(X, kind, m, random_state=0)`` for every kind
  (drawing the operator included, as a user calls it).
- baseline "dense Gaussian": ``rng.standard_normal((m, n)) @ X / sqrt(m)`` in plain
  NumPy, the textbook sketch; ``speedup = dense_s / ours_s``.
- SciPy: ``scipy.linalg.clarkson_woodruff_transform(X, m, seed=0)`` (SciPy's
  CountSketch) against our "countsketch"; and the hand-written SRDCT a SciPy user
  would write (``scipy.fft.dct(signs[:, None] * X, norm="ortho", axis=0)[rows]``)
  against our "srdct".
- scikit-learn: ``GaussianRandomProjection(m).fit_transform(X.T).T`` (the same
  left sketch through a transformer) against our "gaussian".

Scaling: SRHT and SRDCT on ``n = 2^12 .. 2^17`` (quick: up to ``2^15``) rows, ``d =
64``, ``m = 256``; ``slope`` is the least-squares slope of ``log t`` on ``log n``
(1 for linear time; ``n log n`` reads about 1.05-1.1 over this range) and
``ns_per_nlogn`` = time / (n d log2 n).
"""

from __future__ import annotations

import math
from functools import partial

import _harness as H
import numpy as np

# Load SciPy's LAPACK/BLAS (its own OpenBLAS in wheels) before run.py pins the BLAS
# threads: threadpoolctl only limits the libraries already loaded when it is entered.
import scipy.linalg  # noqa: F401, E402

NAME = "sketching"
DESCRIPTION = ("sketch apply (Gaussian, orthogonal, SRHT, SRDCT, CountSketch, sampling) vs "
               "dense Gaussian matmul, SciPy and scikit-learn; SRHT/SRDCT n log n scaling")

QUICK = {"apply": [(4096, 200, 512, 3)], "scale": [2**12, 2**13, 2**14, 2**15],
         "big": []}
FULL = {"apply": [(8192, 500, 1024, 5), (65536, 100, 1024, 3)],
        "scale": [2**12, 2**13, 2**14, 2**15, 2**16, 2**17],
        "big": [(10**6, 500, 2000)]}
# the Haar sketch costs a QR of n x m (2 n m^2 flops): skipped above this
ORTHO_MAX_WORK = 2e10
KINDS = ("gaussian", "orthogonal", "srht", "srdct", "countsketch", "uniform",
         "approx_leverage")


def dense_gaussian(X, m, seed=0):
    G = np.random.default_rng(seed).standard_normal((m, X.shape[0]))
    return G @ X / math.sqrt(m)


def scipy_srdct(X, m, seed=0):
    import scipy.fft

    rng = np.random.default_rng(seed)
    n = X.shape[0]
    signs = rng.choice([-1.0, 1.0], size=n)
    rows = rng.choice(n, m, replace=False)
    return scipy.fft.dct(signs[:, None] * X, norm="ortho", axis=0)[rows] * math.sqrt(n / m)


def scipy_countsketch(X, m, seed=0):
    from scipy.linalg import clarkson_woodruff_transform

    return clarkson_woodruff_transform(X, m, seed=seed)


def sklearn_gaussian(X, m, seed=0):
    from sklearn.random_projection import GaussianRandomProjection

    return GaussianRandomProjection(m, random_state=seed).fit_transform(X.T).T


def ours(X, kind, m, seed=0):
    from sketchlearn.sketching import sketch

    return sketch(X, kind, m, random_state=seed)


def _distortion(X, SX):
    """Largest relative error of ||S X v|| over the right singular vectors of X."""
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    t = np.linalg.norm(SX @ Vt.T, axis=0) / s
    return float(np.max(np.abs(t - 1)))


def run(quick: bool) -> dict:
    sizes = QUICK if quick else FULL
    rows = []
    Xw = np.random.default_rng(1).normal(size=(256, 8))
    for k in KINDS:  # warm-up (Numba JIT, imports)
        ours(Xw, k, 32)
    for n, d, m, reps in sizes["apply"]:
        X = np.random.default_rng(0).normal(size=(n, d))
        kinds = [k for k in KINDS if k != "orthogonal" or n * m * m <= ORTHO_MAX_WORK]
        funcs = {k: partial(ours, X, k, m) for k in kinds}
        funcs.update({"dense": partial(dense_gaussian, X, m),
                      "scipy_cw": partial(scipy_countsketch, X, m),
                      "scipy_srdct": partial(scipy_srdct, X, m),
                      "sklearn_grp": partial(sklearn_gaussian, X, m)})
        t = H.time_interleaved(funcs, reps)
        peers = {"gaussian": ("sklearn GaussianRandomProjection", "sklearn_grp"),
                 "srdct": ("hand-written scipy.fft.dct SRDCT", "scipy_srdct"),
                 "countsketch": ("scipy clarkson_woodruff_transform", "scipy_cw")}
        for k in kinds:
            peer_name, key = peers.get(k, (None, None))
            rows.append({
                "part": "apply", "n": n, "d": d, "m": m, "kind": k,
                "ours_s": t[k]["median"], "dense_s": t["dense"]["median"],
                "speedup_vs_dense": H.ratio(t["dense"]["median"], t[k]["median"]),
                "peer": peer_name, "peer_s": t[key]["median"] if key else None,
                "speedup_vs_peer": H.ratio(t[key]["median"], t[k]["median"]) if key else None,
                "distortion": _distortion(X, t[k]["value"]),
            })
    d, m = 64, 256
    for k in ("srht", "srdct"):
        times = []
        for n in sizes["scale"]:
            X = np.random.default_rng(0).normal(size=(n, d))
            times.append(H.time_interleaved({"x": partial(ours, X, k, m)}, 3)["x"]["median"])
        slope = float(np.polyfit(np.log(sizes["scale"]), np.log(times), 1)[0])
        for n, tt in zip(sizes["scale"], times, strict=True):
            rows.append({"part": "scaling", "n": n, "d": d, "m": m, "kind": k, "ours_s": tt,
                         "ns_per_nlogn": tt / (n * d * math.log2(n)) * 1e9,
                         "slope": slope})
    for n, d, m in sizes["big"]:
        X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
        t = H.time_interleaved({k: partial(ours, X, k, m) for k in ("srdct", "countsketch")},
                               1)
        for k in ("srdct", "countsketch"):
            rows.append({"part": "big (float32)", "n": n, "d": d, "m": m, "kind": k,
                         "ours_s": t[k]["median"]})
    notes = [
        "speedup_vs_dense = dense Gaussian matmul time / ours; speedup_vs_peer = peer "
        "time / ours (above 1: sketchlearn faster). Drawing the random operator is "
        "included on every side.",
        "distortion: max over the right singular vectors v of X of | ||S X v|| / ||X v|| - 1 |"
        " (subspace-embedding quality; about sqrt(d/m) for the dense kinds).",
        f"The orthogonal (Haar) sketch is skipped where n m^2 > {ORTHO_MAX_WORK:.0e} "
        "(its QR alone takes tens of seconds there).",
        "slope: least-squares slope of log time on log n (n log n reads about 1.05-1.1 "
        "here); ns_per_nlogn = time / (n d log2 n) in nanoseconds, flat for O(n log n).",
    ]
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["part", "n", "d", "m", "kind", "ours_s", "dense_s",
                        "speedup_vs_dense", "peer", "peer_s", "speedup_vs_peer",
                        "distortion", "ns_per_nlogn", "slope"],
            "rows": rows, "notes": notes}
