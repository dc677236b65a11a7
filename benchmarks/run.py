"""Run the sketchlearn benchmarks and write ``results/<name>.json`` and ``.md``.

Usage::

    python benchmarks/run.py --quick              # every benchmark, small sizes
    python benchmarks/run.py --only mmd           # one benchmark, full sizes
    python benchmarks/run.py --list

Each ``benchmarks/bench_*.py`` module defines ``NAME``, a one-line ``DESCRIPTION``
and ``run(quick: bool) -> dict`` returning ``{"name", "description", "columns",
"rows", "notes"}``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _harness as H  # noqa: E402


def discover() -> dict:
    """NAME -> module, for every ``bench_*.py`` next to this file."""
    found = {}
    for path in sorted(HERE.glob("bench_*.py")):
        mod = importlib.import_module(path.stem)
        for attr in ("NAME", "DESCRIPTION", "run"):
            if not hasattr(mod, attr):
                raise AttributeError(f"{path.name} lacks {attr}")
        if mod.NAME in found:
            raise ValueError(f"two benchmarks are named {mod.NAME!r}")
        found[mod.NAME] = mod
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repeats (the whole suite in minutes on 2 cores)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--out", type=Path, default=HERE / "results", help="output folder")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP/Numba threads, the same for ours and the peers "
                        "(default: all available cores)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(argv)

    benches = discover()
    if args.list:
        for name, mod in benches.items():
            print(f"{name:20s} {mod.DESCRIPTION}")
        return 0
    if args.only:
        unknown = [n for n in args.only if n not in benches]
        if unknown:
            p.error(f"unknown benchmark(s) {unknown}; known: {sorted(benches)}")
        benches = {n: benches[n] for n in args.only}
    if args.threads is not None:
        H.settings.threads = args.threads
    H.settings.quick = args.quick

    failed = []
    for name, mod in benches.items():
        print(f"=== {name}: {mod.DESCRIPTION} ({'quick' if args.quick else 'full'}, "
              f"{H.settings.threads} threads)", flush=True)
        load_before = H.load_average()
        t0 = time.perf_counter()
        try:
            with H.pinned_threads(H.settings.threads):
                result = mod.run(args.quick)
                machine = H.machine_info()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        result.setdefault("name", name)
        result.setdefault("description", mod.DESCRIPTION)
        result.setdefault("notes", [])
        result["quick"] = args.quick
        result["elapsed_s"] = time.perf_counter() - t0
        result["machine"] = machine
        result["load_average"] = {"before": load_before, "after": H.load_average()}
        jpath, mpath = H.write_results(result, args.out)
        print()
        print(H.markdown_report(result))
        print(f"wrote {jpath} and {mpath}\n", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
