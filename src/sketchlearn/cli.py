"""Command line: ``python -m sketchlearn demo|thin|distance|complete``.

Each subcommand is a function ``_cmd_<name>(args) -> int`` registered in
:func:`build_parser`; reports go to standard output as plain text.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from ._config import get_config

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``sketchlearn`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m sketchlearn",
        description="sketchlearn: statistics with less data (kernel thinning, sketching, "
                    "sliced and entropic transport, matrix completion).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"sketchlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="run the headline demo on built-in data and print a short report",
        description="Compress a built-in sample (an 8-component Gaussian mixture) with kernel "
                    "thinning and with uniform random subsampling, and report how close each "
                    "stays to the full sample in MMD.")
    demo.add_argument("--n-samples", type=int, default=4096, help="size of the sample (4096)")
    demo.add_argument("--n-out", type=int, default=64, help="size of the compressed sample (64)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.add_argument("--plot", metavar="FILE", help="also save a picture of both subsets "
                      "(PNG/PDF/SVG, needs matplotlib)")
    demo.set_defaults(func=_cmd_demo)

    thin = sub.add_parser(
        "thin", help="kernel-thin the rows of a CSV file",
        description="Select rows of a numeric CSV file whose distribution matches the whole "
                    "file (kernel thinning; Compress++ above 16384 rows).")
    thin.add_argument("input", help="CSV file of numbers, one point per row")
    thin.add_argument("--n-out", type=int, default=None,
                      help="rows to keep (default: square root of the number of rows)")
    thin.add_argument("-o", "--output", default="-", help="CSV file for the kept rows "
                      "(default: standard output)")
    thin.add_argument("--indices", metavar="FILE", help="also write the kept row numbers")
    thin.add_argument("--kernel", default="gaussian",
                      choices=["gaussian", "laplace", "matern", "imq", "sinc"])
    thin.add_argument("--bandwidth", default="median", help="number, 'median' or 'scott'")
    thin.add_argument("--variant", default="kt+", choices=["kt+", "target", "power"])
    thin.add_argument("--compress", default="auto", choices=["auto", "never", "always"])
    thin.add_argument("--delimiter", default=",")
    thin.add_argument("--skip-header", type=int, default=0, metavar="N",
                      help="lines to skip at the top (0)")
    thin.add_argument("--seed", type=int, default=None)
    thin.add_argument("--verbose", action="count", default=0)
    thin.set_defaults(func=_cmd_thin)

    dist = sub.add_parser(
        "distance", help="transport distance between two point clouds (.npy or CSV)",
        description="Distance between the empirical distributions of the rows of two files "
                    "(.npy arrays, or numeric CSV/text files), uniform weights. Metrics: "
                    "'sliced' (sliced Wasserstein SW_p, with its standard error), 'energy' "
                    "(energy distance, square-root convention of SciPy), 'sinkhorn' "
                    "(entropic OT transport cost <P, C>^(1/p), C = |x - y|^p, p in {1, 2}; "
                    "with --reg-m, unbalanced: KL-relaxed marginals) "
                    "and 'exact' (W_p by POT's network simplex, O(n m) memory).")
    dist.add_argument("first", metavar="A", help="first point cloud, one point per row")
    dist.add_argument("second", metavar="B", help="second point cloud (same number of columns)")
    dist.add_argument("--metric", default="sliced",
                      choices=["sliced", "energy", "sinkhorn", "exact"],
                      help="distance to compute (sliced)")
    dist.add_argument("--n-projections", type=int, default=200,
                      help="slices for 'sliced' and 'energy' (200)")
    dist.add_argument("--slices", default="mc",
                      choices=["mc", "orthogonal", "qmc", "rqmc", "cv-lower", "cv-upper"],
                      help="slicing for 'sliced' ('energy' takes mc/orthogonal/qmc/rqmc) (mc)")
    dist.add_argument("--reg", type=float, default=0.05,
                      help="entropic regularisation for 'sinkhorn', in units of the cost "
                           "(0.05)")
    dist.add_argument("--reg-m", type=float, default=None, metavar="REG_M",
                      help="'sinkhorn' only: unbalanced transport, the marginals are "
                           "penalised by REG_M KL(P 1 | a) + REG_M KL(P^T 1 | b) instead of "
                           "held exact (default: balanced); the transported mass is "
                           "reported on stderr")
    dist.add_argument("--p", type=float, default=2.0,
                      help="order p of the Wasserstein distance (2)")
    dist.add_argument("--seed", type=int, default=None, help="seed of the slices")
    dist.add_argument("--delimiter", default=None,
                      help="CSV delimiter (default: comma for .csv, whitespace otherwise)")
    dist.add_argument("--skip-header", type=int, default=0, metavar="N",
                      help="lines to skip at the top of text files (0)")
    dist.set_defaults(func=_cmd_distance)

    complete = sub.add_parser(
        "complete", help="fill in the missing entries of a partly observed matrix",
        description="Read a matrix with missing entries (CSV with empty fields or NaN, or a "
                    ".npy array with NaN), complete it with a low-rank model, and write the "
                    "filled matrix. Observed entries are kept as they are.")
    complete.add_argument("input", help="CSV or .npy file; empty fields and NaN are missing")
    complete.add_argument("-o", "--output", default="-", help="file for the completed matrix "
                          "(.npy or CSV; default: CSV on standard output)")
    complete.add_argument("--method", default="altmin", choices=["altmin", "softimpute", "svt"],
                          help="AltMinCompleter (rank k), SoftImpute (nuclear-norm "
                               "shrinkage, chosen on held-out entries unless --shrinkage is "
                               "given) or SVTCompleter (one thresholded SVD) (altmin)")
    complete.add_argument("--rank", type=int, default=None,
                          help="rank for altmin/svt; maximum rank for softimpute "
                               "(default: estimated from the data)")
    complete.add_argument("--shrinkage", type=float, default=None,
                          help="softimpute: the nuclear-norm penalty (default: cross-validated)")
    complete.add_argument("--delimiter", default=None,
                          help="CSV delimiter (default: comma for .csv, whitespace otherwise)")
    complete.add_argument("--skip-header", type=int, default=0, metavar="N",
                          help="lines to skip at the top of a CSV (0)")
    complete.add_argument("--tol", type=float, default=None,
                          help="convergence tolerance of the estimator (its default)")
    complete.add_argument("--max-iter", type=int, default=None,
                          help="iteration limit of altmin/softimpute (the estimator's default)")
    complete.add_argument("--seed", type=int, default=None)
    complete.set_defaults(func=_cmd_complete)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m sketchlearn`` and the ``sketchlearn`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


def _cmd_demo(args) -> int:
    from .datasets import make_gaussian_mixture
    from .kernels import GaussianKernel, median_heuristic
    from .metrics import mmd_subset
    from .thinning import KernelThinning

    if args.n_samples < 4 or not 1 <= args.n_out < args.n_samples:
        print("demo: need --n-samples >= 4 and 1 <= --n-out < --n-samples", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    X, _, _ = make_gaussian_mixture(args.n_samples, random_state=rng)
    kernel = GaussianKernel(median_heuristic(X))
    print(f"sketchlearn demo: {args.n_samples} points from an 8-component Gaussian mixture "
          f"in 2-D, compressed to {args.n_out}")
    print(f"Gaussian kernel, median-heuristic bandwidth h = {kernel.bandwidth:.3f}\n")

    if not _kernels_cached():
        if get_config()["cold_start"] == "compile":
            print("First run on this machine: compiling the kernels once (tens of seconds); "
                  "later runs load them from Numba's disk cache.\n", flush=True)
        else:
            print("First run on this machine: the Numba kernels are not compiled yet, so this "
                  "run uses their NumPy versions (same results) while they compile in the "
                  "background for later calls.\n", flush=True)
    uniform = [mmd_subset(X, rng.choice(args.n_samples, size=args.n_out, replace=False),
                          kernel=kernel) for _ in range(5)]
    start = time.perf_counter()
    kt = KernelThinning(kernel=kernel, n_out=args.n_out, random_state=args.seed).fit(X)
    elapsed = time.perf_counter() - start
    print("MMD to the full sample (lower is better):")
    print(f"  uniform random subsample (median of 5)  {np.median(uniform):.5f}")
    print(f"  kernel thinning (KT+)                   {kt.mmd_:.5f}   "
          f"({np.median(uniform) / kt.mmd_:.1f}x lower, {elapsed:.1f} s)")
    print(f"\nKernel thinning keeps {args.n_out} of {args.n_samples} points and matches the "
          "distribution like a far larger random sample would.")
    if args.plot:
        _save_demo_plot(X, kt.indices_, rng.choice(args.n_samples, args.n_out, replace=False),
                        args.plot)
        print(f"Plot saved to {args.plot}")
    return 0


def _kernels_cached() -> bool:
    from ._jit import is_cached
    from .thinning._numba import _walk_steps

    return is_cached(_walk_steps)


def _save_demo_plot(X, kt_idx, random_idx, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharex=True, sharey=True)
    for ax, idx, title in [(axes[0], random_idx, "uniform random subsample"),
                           (axes[1], kt_idx, "kernel thinning")]:
        ax.scatter(X[:, 0], X[:, 1], s=2, c="0.8")
        ax.scatter(X[idx, 0], X[idx, 1], s=14, c="C3")
        ax.set_title(f"{title} ({len(idx)} points)")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cmd_thin(args) -> int:
    from .thinning import KernelThinning

    try:
        X = np.loadtxt(args.input, delimiter=args.delimiter, skiprows=args.skip_header,
                       ndmin=2, dtype=float)
    except (OSError, ValueError) as exc:
        print(f"thin: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    try:
        est = KernelThinning(kernel=args.kernel, bandwidth=_bandwidth_arg(args.bandwidth),
                             variant=args.variant, n_out=args.n_out, compress=args.compress,
                             random_state=args.seed, verbose=args.verbose).fit(X)
    except (ValueError, TypeError) as exc:
        print(f"thin: {exc}", file=sys.stderr)
        return 2
    if args.output == "-":
        np.savetxt(sys.stdout, est.coreset_, delimiter=args.delimiter, fmt="%.17g")
    else:
        np.savetxt(args.output, est.coreset_, delimiter=args.delimiter, fmt="%.17g")
    if args.indices:
        np.savetxt(args.indices, est.indices_, fmt="%d")
    mmd_text = "not computed (Compress++ above 16384 rows)" if np.isnan(est.mmd_) else \
        f"{est.mmd_:.6g}"
    print(f"thin: kept {est.indices_.shape[0]} of {X.shape[0]} rows; MMD to the input "
          f"{mmd_text}", file=sys.stderr)
    return 0


def _load_points(path, delimiter, skip_header, missing=False):
    """Rows of a .npy file or a numeric text file as a float 2-D array (1-D: one column).

    With ``missing``, empty fields of a text file are read as NaN.
    """
    if str(path).endswith(".npy"):
        X = np.load(path, allow_pickle=False)
    else:
        if delimiter is None:
            delimiter = "," if str(path).endswith(".csv") else None
        if missing:
            X = np.genfromtxt(path, delimiter=delimiter, skip_header=skip_header, dtype=float,
                              filling_values=np.nan, ndmin=2)
        else:
            X = np.loadtxt(path, delimiter=delimiter, skiprows=skip_header, ndmin=2,
                           dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of points (rows), got shape {X.shape}")
    return X


def _cmd_distance(args) -> int:
    from .transport import energy_distance, sinkhorn, sliced_wasserstein, wasserstein

    clouds = []
    for path in (args.first, args.second):
        try:
            clouds.append(_load_points(path, args.delimiter, args.skip_header))
        except (OSError, ValueError) as exc:
            print(f"distance: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    X, Y = clouds
    metric = args.metric
    start = time.perf_counter()
    mass = None
    try:
        if args.reg_m is not None and metric != "sinkhorn":
            raise ValueError("--reg-m (unbalanced transport) is for --metric sinkhorn")
        if metric == "sliced":
            value, se = sliced_wasserstein(X, Y, p=args.p, n_projections=args.n_projections,
                                           slices=args.slices, random_state=args.seed,
                                           return_std=True)
        elif metric == "energy":
            if args.slices.startswith("cv"):
                raise ValueError("--slices cv-lower/cv-upper are for --metric sliced")
            value, se = energy_distance(X, Y, n_projections=args.n_projections,
                                        slices=args.slices, random_state=args.seed,
                                        return_std=True)
        elif metric == "sinkhorn":
            if args.p not in (1.0, 2.0):
                raise ValueError(f"--metric sinkhorn takes --p 1 or 2, got {args.p:g}")
            res = sinkhorn(X=X, Y=Y, reg=args.reg, return_plan=False, reg_m=args.reg_m,
                           metric="sqeuclidean" if args.p == 2 else "euclidean")
            value, se = max(res.cost, 0.0) ** (1.0 / args.p), float("nan")
            if args.reg_m is not None:
                mass = float(res.plan_matvec(np.ones(Y.shape[0])).sum())
        else:
            value, se = wasserstein(X, Y, p=args.p), float("nan")
    except (ValueError, TypeError) as exc:
        print(f"distance: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f"{value:.10g}")
    if metric in ("sliced", "energy"):
        print(f"standard error {se:.3g}")
    label = {"sliced": f"sliced Wasserstein SW_{args.p:g}, {args.n_projections} "
                       f"{args.slices} slices",
             "energy": f"energy distance, {args.n_projections} {args.slices} slices",
             "sinkhorn": f"entropic OT cost^(1/p), p = {args.p:g}, reg = {args.reg:g}"
                         + ("" if mass is None else
                            f", unbalanced reg_m = {args.reg_m:g}, transported mass "
                            f"{mass:.6g}"),
             "exact": f"exact W_{args.p:g} (network simplex)"}[metric]
    print(f"distance: {label}; {X.shape[0]} vs {Y.shape[0]} points in {X.shape[1]}-D; "
          f"{elapsed:.2f} s", file=sys.stderr)
    return 0


def _write_matrix(path, X, delimiter):
    delimiter = "," if delimiter is None else delimiter
    if path == "-":
        np.savetxt(sys.stdout, X, delimiter=delimiter, fmt="%.17g")
    elif str(path).endswith(".npy"):
        np.save(path, X)
    else:
        np.savetxt(path, X, delimiter=delimiter, fmt="%.17g")


def _cmd_complete(args) -> int:
    from .completion import AltMinCompleter, SoftImpute, SoftImputeCV, SVTCompleter

    try:
        X = _load_points(args.input, args.delimiter, args.skip_header, missing=True)
    except (OSError, ValueError) as exc:
        print(f"complete: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    if args.method == "altmin":
        est = AltMinCompleter(rank=args.rank, random_state=args.seed)
    elif args.method == "svt":
        est = SVTCompleter(max_rank=args.rank, random_state=args.seed)
    elif args.shrinkage is None:
        est = SoftImputeCV(max_rank=args.rank, random_state=args.seed)
    else:
        est = SoftImpute(shrinkage=args.shrinkage, max_rank=args.rank, random_state=args.seed)
    options = {name: value for name, value in (("tol", args.tol), ("max_iter", args.max_iter))
               if value is not None and name in est.get_params()}
    observed = ~np.isnan(X)
    start = time.perf_counter()
    try:
        est.set_params(**options)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filled = est.fit_transform(X)
    except (ValueError, TypeError) as exc:
        print(f"complete: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    for w in caught:
        print(f"complete: warning: {w.message}", file=sys.stderr)
    _write_matrix(args.output, np.asarray(filled), args.delimiter)
    rank = getattr(est, "rank_", None)
    rank_text = f", rank {rank}" if rank is not None else ""
    print(f"complete: {X.shape[0]} x {X.shape[1]} matrix, {int(observed.sum())} observed "
          f"({observed.mean():.1%}), filled {int((~observed).sum())} entries with "
          f"{type(est).__name__}{rank_text} in {elapsed:.2f} s", file=sys.stderr)
    return 0


def _bandwidth_arg(text):
    try:
        return float(text)
    except ValueError:
        return text
