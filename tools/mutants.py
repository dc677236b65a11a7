"""Mutation check: does the default test suite catch realistic bugs?

Each mutant is one small edit of the source (a formula or a branch that a plausible
slip would get wrong). For each, the project is copied to a temporary folder, the edit
is applied there, and the test files that cover the code run with the default options
(``-m 'not slow'``, as ``pytest`` runs) and an empty Numba cache of their own: a cached
kernel that inlines an edited function from another module would not be recompiled.
A mutant is *caught* when those tests fail; every mutant must be caught, and without
the optional peers: goodpoints, statsmodels and sklearn-ensemble-cv are hidden from the
tests (their comparisons skip), so the default suite's own oracles must do it.

Usage (from the repository root, with the test extra installed)::

    python tools/mutants.py                 # every mutant (tens of minutes on 2 cores)
    python tools/mutants.py --only kt-argmax sliced-root
    python tools/mutants.py --list

Not run in CI: too slow. Run it before changing what the tests check.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Optional peers of the test extra, hidden from the mutant runs (see above).
PEERS = ("goodpoints", "statsmodels", "sklearn_ensemble_cv")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to src/sketchlearn
    old: str
    new: str
    breaks: str
    tests: tuple[str, ...]
    occurrence: int = 0  # which match of ``old`` when it occurs more than once


MUTANTS = [
    # kernels and MMD
    Mutant("gaussian-scale", "kernels/_kernels.py",
           "return (0.5 / bandwidth**2, 0.0)", "return (1.0 / bandwidth**2, 0.0)",
           "Gaussian kernel exp(-r^2 / h^2) instead of exp(-r^2 / (2 h^2))",
           ("tests/kernels/test_kernels.py",)),
    Mutant("fast-exp-coefficient", "_jit.py",
           "r2 * (1 / 2 + r * (1 / 6))", "r2 * (1 / 2 + r * (1 / 5))",
           "a wrong Taylor coefficient in the exp of the Numba kernel sums",
           ("tests/kernels/test_sums.py",)),
    Mutant("mmd-unbiased-diagonal", "kernels/_mmd.py",
           "xx = (xx * n * n - n * k0) / (n * (n - 1))", "xx = (xx * n * n) / (n * (n - 1))",
           "the U-statistic keeps the diagonal k(x, x) of the first sample",
           ("tests/kernels/test_mmd.py",)),
    # kernel thinning and Compress++
    Mutant("kt-argmax", "thinning/_core.py",
           "best = all_pos[int(np.argmin(scores))]", "best = all_pos[int(np.argmax(scores))]",
           "KT-SPLIT keeps the worst candidate coreset",
           ("tests/thinning/test_thinning.py",)),
    Mutant("kt-walk-ignores-balance", "thinning/_numba.py",
           "if u[t] <= 0.5 * (1.0 - alpha / a):", "if u[t] <= 0.5:",
           "the self-balancing walk assigns the pairs by a fair coin",
           ("tests/thinning/test_thinning.py",)),
    Mutant("kt-threshold-variance", "thinning/_numba.py",
           "sigma2 += b2 * max(0.0, 1.0 + (b2 - 2.0 * a) * sigma2 / (a * a))",
           "sigma2 += b2",
           "the walk's variance bound grows without its self-balancing correction",
           ("tests/thinning/test_thinning.py",)),
    Mutant("swap-score-mean", "thinning/_numba.py",
           "- 2.0 * size * mean_k[z]", "- size * mean_k[z]",
           "KT-SWAP scores candidates with half the kernel-mean term",
           ("tests/thinning/test_thinning.py",)),
    # sketches and ridge ensembles
    Mutant("gaussian-sketch-scale", "sketching/_core.py",
           "G = g.standard_normal((m, j1 - j0)) / math.sqrt(m)",
           "G = g.standard_normal((m, j1 - j0)) / m",
           "Gaussian sketch entries N(0, 1/m^2) instead of N(0, 1/m)",
           ("tests/sketching/test_sketching.py",)),
    Mutant("srht-scale", "sketching/_core.py",
           "N=N, scale=math.sqrt(N / size)", "N=N, scale=math.sqrt(size / N)",
           "SRHT/SRDCT scaled by sqrt(m/N) instead of sqrt(N/m)",
           ("tests/sketching/test_sketching.py",)),
    Mutant("countsketch-signs", "sketching/_core.py",
           """        params.update(buckets=rng.integers(0, size, size=n),
                      signs=rng.choice(np.array([-1.0, 1.0]), size=n))""",
           """        params.update(buckets=rng.integers(0, size, size=n),
                      signs=np.ones(n))""",
           "CountSketch without its random signs (biased for non-centred data)",
           ("tests/sketching/test_sketching.py",)),
    Mutant("ensemble-gcv-denominator", "ensemble/_core.py",
           "gcv = train / (1 - t[:, None]) ** 2", "gcv = train / (1 - t[:, None])",
           "GCV divides the training error by (1 - df/n) instead of its square",
           ("tests/ensemble/test_ensemble.py",)),
    Mutant("ensemble-cgcv-dropped", "ensemble/_core.py",
           "corr = (t**2 / (1 - t) ** 2 * (n / k - 1) * R)[:, None] / Ms[None, :]",
           "corr = 0.0 * (t**2 / (1 - t) ** 2 * (n / k - 1) * R)[:, None] / Ms[None, :]",
           "CGCV without its finite-ensemble correction (plain GCV)",
           ("tests/ensemble/test_ensemble.py",)),
    # transport
    Mutant("sliced-root", "transport/_sliced.py",
           "root = value ** (1.0 / p)", "root = value",
           "sliced Wasserstein returns SW_p^p instead of SW_p",
           ("tests/transport/test_sliced.py",)),
    Mutant("energy-factor", "transport/_numba_sliced.py",
           "out[l] = 2.0 * total", "out[l] = total",
           "the 1-D energy distance of each slice loses its factor 2",
           ("tests/transport/test_sliced.py",), occurrence=0),
    Mutant("sinkhorn-drops-weights", "transport/_sinkhorn_log.py",
           "g = -col_lse(f + eps * la, eps)", "g = -col_lse(f, eps)",
           "log-domain Sinkhorn's column update forgets the source weights",
           ("tests/transport/test_sinkhorn.py",)),
    Mutant("scaling-drops-weights", "transport/_sinkhorn_scaling.py",
           "KtA = xp.matmul(a * xp.exp(ls), K)", "KtA = xp.matmul(xp.exp(ls), K)",
           "scaling-domain Sinkhorn's column update forgets the source weights",
           ("tests/transport/test_sinkhorn_scaling.py",)),
    Mutant("translation-coefficient", "transport/_unbalanced.py",
           "ra * rb / (ra + rb)", "ra * rb / (ra * rb)",
           "the unbalanced dual's optimal translation uses the wrong harmonic weight",
           ("tests/transport/test_unbalanced.py",)),
    Mutant("permutation-p-value", "transport/_two_sample.py",
           "p = (1 + exceed) / (1 + B)", "p = exceed / B",
           "the permutation p-value can be 0 (exceed / B instead of (exceed + 1) / (B + 1))",
           ("tests/transport",)),
    # linear models
    Mutant("gm-residual-dof", "linear_model/_gauss_markov.py",
           "dof = n - fit.rank", "dof = n",
           "the noise variance divides the RSS by n instead of n - p",
           ("tests/linear_model/test_gauss_markov.py",
            "tests/linear_model/test_nist_accuracy.py")),
    Mutant("refinement-drops-product-error", "linear_model/_numba.py",
           "            c += q + e\n        f[i] = s + c",
           "            c += q\n        f[i] = s + c",
           "iterative refinement's residuals lose the error of each product",
           ("tests/linear_model/test_nist_accuracy.py",)),
    Mutant("hc3-leverage", "linear_model/_robust.py",
           'e = e / (xp.sqrt(1.0 - leverage) if cov_type == "HC2" else 1.0 - leverage)',
           'e = e / xp.sqrt(1.0 - leverage)',
           "HC3 divides the residuals by sqrt(1 - h), as HC2, instead of 1 - h",
           ("tests/linear_model/test_robust.py",)),
    Mutant("hac-one-sided", "linear_model/_robust.py",
           "cov = cov + weights[lag] * (s + s.T)", "cov = cov + weights[lag] * s",
           "Newey-West adds each lag's cross-covariance once, not symmetrised",
           ("tests/linear_model/test_robust.py",)),
    Mutant("cluster-correction", "linear_model/_robust.py",
           "cov = cov * ((g / (g - 1.0)) * _ratio(n - 1.0, n - k))",
           "cov = cov * (g / (g - 1.0))",
           "cluster covariance without its (n - 1) / (n - k) factor",
           ("tests/linear_model/test_robust.py",)),
    Mutant("extended-gm-spectral", "linear_model/_extended.py",
           "return (1.0 - tau) / s", "return (1.0 - tau * tau) / s",
           "the spectral-norm extended Gauss-Markov filter shrinks by 1 - tau^2",
           ("tests/linear_model/test_extended.py",)),
    Mutant("lsa-step-sign", "linear_model/_numba.py",
           "th[q] -= g * U[i, q]", "th[q] += g * U[i, q]",
           "rank-one LSA steps up the residual instead of down",
           ("tests/linear_model/test_lsa.py",)),
    Mutant("td0-discount", "linear_model/_lsa_estimators.py",
           "V = U - gamma * X_all[1:, :]", "V = U - X_all[1:, :]",
           "TD(0) ignores the discount factor",
           ("tests/linear_model/test_lsa.py",)),
    # completion
    Mutant("altmin-ridge", "completion/_numba.py",
           "G0[a, a] += lam", "G0[a, a] += 2.0 * lam",
           "AltMin's exact row solves use twice the ridge",
           ("tests/completion/test_completion.py",)),
    Mutant("softimpute-shrinkage", "completion/_core.py",
           "Bt = (StU + V * D2) * (D / (D2 + lam))", "Bt = (StU + V * D2) * (D / (D2 + 2 * lam))",
           "Soft-Impute's ALS step shrinks with twice the penalty",
           ("tests/completion/test_completion.py",)),
    Mutant("svt-threshold", "completion/_core.py",
           "return math.sqrt(c * float(xp.max(row))) + math.sqrt(c * float(xp.max(col)))",
           "return 2.0 * (math.sqrt(c * float(xp.max(row))) + math.sqrt(c * float(xp.max(col))))",
           "SVT's default threshold twice the documented noise level",
           ("tests/completion/test_completion.py",)),
    Mutant("brand-update-block", "completion/_incremental.py",
           "xp.concat([C, xp.matrix_transpose(L)], axis=1)], axis=0)",
           "xp.concat([C, L], axis=1)], axis=0)",
           "Brand's row update uses L instead of L^T in its middle matrix",
           ("tests/completion/test_completion.py",)),
]


def _copy_project(dest: Path) -> None:
    for name in ("src", "tests", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
        else:
            shutil.copy2(src, dest / name)


def _hide_peers(dest: Path) -> Path:
    """A folder of stand-in packages that fail to import like missing ones."""
    hidden = dest / "hidden-peers"
    for name in PEERS:
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError('hidden by tools/mutants.py', name={name!r})\n")
    return hidden


def _apply(mutant: Mutant, dest: Path) -> None:
    path = dest / "src" / "sketchlearn" / mutant.path
    text = path.read_text()
    if text.count(mutant.old) <= mutant.occurrence:
        raise ValueError(f"{mutant.name}: {mutant.old!r} is no longer in {mutant.path} "
                         "(the code moved: update the mutant)")
    start = -1
    for _ in range(mutant.occurrence + 1):
        start = text.index(mutant.old, start + 1)
    path.write_text(text[:start] + mutant.new + text[start + len(mutant.old):])


def run_mutant(mutant: Mutant, verbose: bool = False) -> tuple[bool, float, str]:
    """(caught, seconds, last line of pytest's output)."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        dest = Path(tmp)
        _copy_project(dest)
        _apply(mutant, dest)
        path = os.pathsep.join([str(dest / "src"), str(_hide_peers(dest))])
        env = dict(os.environ, PYTHONPATH=path,
                   NUMBA_CACHE_DIR=str(dest / "numba-cache"), PYTHONDONTWRITEBYTECODE="1")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             *mutant.tests], cwd=dest, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
        if verbose:
            print(done.stdout[-3000:], done.stderr[-2000:])
        # pytest: 0 all passed (survived), 1 some failed (caught); anything else
        # (collection or usage errors) means the mutant broke the run, not a test.
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{mutant.name}: pytest exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        failed = [ln for ln in lines if ln.startswith("FAILED")]
        return done.returncode == 1, seconds, (failed[0] if failed else lines[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output")
    args = parser.parse_args(argv)
    mutants = MUTANTS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTANTS}
        if unknown:
            parser.error(f"unknown mutants {sorted(unknown)}")
        mutants = [m for m in MUTANTS if m.name in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.name:32s} {m.path:32s} {m.breaks}")
        return 0
    survived = []
    print("| mutant | what it breaks | caught by | s |\n|---|---|---|---|", flush=True)
    for m in mutants:
        caught, seconds, detail = run_mutant(m, args.verbose)
        if not caught:
            survived.append(m.name)
        who = detail.removeprefix("FAILED ").split(" - ")[0] if caught else "**SURVIVED**"
        print(f"| {m.name} | {m.breaks} | {who} | {seconds:.0f} |", flush=True)
    print(f"\n{len(mutants) - len(survived)} of {len(mutants)} mutants caught"
          + (f"; survived: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
