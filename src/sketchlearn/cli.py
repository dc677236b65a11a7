"""Command line: ``python -m sketchlearn demo`` and friends.

Each subcommand is a function ``_cmd_<name>(args) -> int`` registered in
:func:`build_parser`; reports go to standard output as plain text.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

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


def _bandwidth_arg(text):
    try:
        return float(text)
    except ValueError:
        return text
