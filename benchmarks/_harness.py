"""Shared helpers for the sketchlearn benchmarks.

House rules (see DESIGN.md, "Benchmarks"): sketchlearn and the peer library run in
the same process, on the same data, repeated; we report medians and the ratio
``peer / ours`` (above 1 means sketchlearn is faster or leaner), with the same number
of BLAS threads on both sides. A lone absolute time is never reported without its
ratio.

What is here:

- ``settings``: run-wide options (threads), set by ``run.py``.
- ``pinned_threads``: pin BLAS/OpenMP threads (threadpoolctl) and Numba threads.
- ``time_interleaved``: median wall time of several callables, run alternately.
- ``measure_memory``: peak memory of one call in a fresh ``spawn`` child process,
  both traced (``tracemalloc``) and resident (RSS high-water delta).
- ``machine_info``: CPU, cores, library versions, BLAS threads, GPU, date.
- ``markdown_table`` / ``write_results``: the ``.md`` and ``.json`` outputs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as _dt
import gc
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# These benchmarks time compiled kernels: a first call compiles before it runs (instead
# of running the NumPy reference while compiling in the background, sketchlearn's
# default), so no timed repeat lands on the reference. Set before sketchlearn is
# imported, and inherited by the children of measure_memory. bench_coldstart sets its
# children's value itself.
os.environ.setdefault("SKETCHLEARN_COLD_START", "compile")
if str(HERE) not in sys.path:  # so spawned children can import bench modules by name
    sys.path.insert(0, str(HERE))

MiB = 2**20


@dataclass
class Settings:
    """Run-wide options, filled in by ``run.py`` (defaults suit an import from a REPL)."""

    threads: int = field(default_factory=lambda: len(os.sched_getaffinity(0))
                         if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    quick: bool = False


settings = Settings()


# --------------------------------------------------------------------------- threads


@contextlib.contextmanager
def pinned_threads(n: int | None = None):
    """Limit BLAS and OpenMP pools (threadpoolctl) and Numba to ``n`` threads."""
    from threadpoolctl import threadpool_limits

    n = settings.threads if n is None else n
    old_numba = None
    try:
        import numba

        old_numba = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a hard dependency
        pass
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        if old_numba is not None:
            import numba

            numba.set_num_threads(old_numba)


def thread_report() -> dict:
    """Thread counts in force right now (call inside ``pinned_threads``)."""
    from threadpoolctl import threadpool_info

    out = {"blas": [], "openmp": [], "numba": None}
    for pool in threadpool_info():
        entry = {"library": pool.get("internal_api"), "version": pool.get("version"),
                 "num_threads": pool.get("num_threads"),
                 "threading_layer": pool.get("threading_layer")}
        out.setdefault(pool.get("user_api", "other"), []).append(entry)
    try:
        import numba

        out["numba"] = {"num_threads": numba.get_num_threads(),
                        "threading_layer": _numba_layer()}
    except ImportError:  # pragma: no cover
        pass
    return out


def _numba_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return f"not yet initialised (config: {numba.config.THREADING_LAYER})"


# --------------------------------------------------------------------------- timing


def time_interleaved(funcs: dict, repeats: int, *, warmup: dict | None = None) -> dict:
    """Wall time of each callable, ``repeats`` times, alternating between them.

    Parameters
    ----------
    funcs : dict name -> zero-argument callable
        The contenders, already bound to the same data.
    repeats : int
        Timed calls per contender. Rounds alternate (A, B, C, A, B, C, ...) so a slow
        drift of the machine hits every contender alike.
    warmup : dict name -> zero-argument callable, optional
        Called once each before timing (JIT compilation, lazy imports, thread-pool
        start-up); typically the same functions on a small input.

    Returns
    -------
    dict name -> {"median": s, "min": s, "times": [s, ...], "value": last return}
    """
    for fn in (warmup or {}).values():
        fn()
    times = {name: [] for name in funcs}
    values = {}
    for _ in range(repeats):
        for name, fn in funcs.items():
            gc.collect()
            t0 = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: {"median": statistics.median(ts), "min": min(ts), "times": ts,
                   "value": values[name]} for name, ts in times.items()}


# --------------------------------------------------------------------------- memory


def _read_status(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes (Linux only)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset the RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # kB on Linux, bytes on macOS


def _memory_child(func, args, kwargs, warmup_args, threads):
    """Runs in a fresh spawned process: warm up, then measure one call of ``func``."""
    with pinned_threads(threads):
        if warmup_args is not None:
            func(*warmup_args, **kwargs)
        gc.collect()
        rss_before = _read_status("VmRSS")
        hwm_reset = _reset_hwm()
        maxrss_before = _maxrss_bytes()
        tracemalloc.start()
        tracemalloc.reset_peak()
        traced_before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        value = func(*args, **kwargs)
        elapsed = time.perf_counter() - t0
        traced_peak = tracemalloc.get_traced_memory()[1] - traced_before
        tracemalloc.stop()
        hwm_after = _read_status("VmHWM")
        maxrss_after = _maxrss_bytes()
    if hwm_reset and rss_before is not None and hwm_after is not None:
        rss_delta, rss_method = max(hwm_after - rss_before, 0), "VmHWM-after-clear_refs"
    else:  # ru_maxrss cannot be reset: a delta of 0 means "below the earlier high water"
        rss_delta, rss_method = max(maxrss_after - maxrss_before, 0), "ru_maxrss-delta"
    return {"traced_peak_bytes": int(traced_peak), "rss_peak_delta_bytes": int(rss_delta),
            "rss_method": rss_method, "elapsed_in_child_s": elapsed,
            "value": _scalar_or_none(value)}


def _scalar_or_none(value):
    """``value`` as a Python number when it is a real scalar, else None (keeps the
    child's reply small and picklable)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not (
            hasattr(value, "item") and getattr(value, "ndim", None) == 0):
        return None
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, (int, float)) else None


def measure_memory(func, args=(), kwargs=None, *, warmup_args=None, threads=None) -> dict:
    """Peak memory of ``func(*args, **kwargs)`` in a fresh ``spawn`` child process.

    ``func`` must be importable by name (a module-level function of a bench module)
    and ``args`` picklable; the child receives the very same arrays. It first calls
    ``func(*warmup_args)`` (JIT, thread pools, lazy imports) so that one-off costs are
    not charged, then measures one call:

    - ``traced_peak_bytes``: ``tracemalloc`` peak above the level before the call.
      NumPy reports its data buffers to tracemalloc, so this counts every NumPy
      array the call allocates (and Python objects); it misses native allocations
      that bypass NumPy (BLAS work buffers, Numba-internal arrays, C++ heaps).
    - ``rss_peak_delta_bytes``: resident-set high-water mark during the call minus
      the RSS just before it (Linux: VmHWM reset through /proc/self/clear_refs;
      elsewhere the ``ru_maxrss`` delta, which reads 0 if the call stays below the
      earlier high water). Counts everything, including native buffers and pages
      touched by thread stacks; resolution is a page, noise about a MiB.
    - ``elapsed_in_child_s``: wall time of that one call (tracemalloc running).
    - ``value``: what the call returned, when it is a real scalar (else None).
    """
    ctx = multiprocessing.get_context("spawn")
    threads = settings.threads if threads is None else threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        fut = ex.submit(_memory_child, func, tuple(args), dict(kwargs or {}), warmup_args,
                        threads)
        return fut.result()


def available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- machine


def load_average() -> list | None:
    """1, 5 and 15-minute load averages of the whole machine (other processes
    competing for the cores show up here), or None where unavailable."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return [f for f in ("avx2", "fma", "avx512f") if f in flags]
    except OSError:
        pass
    return []


def _gpu() -> dict | None:
    try:
        import cupy
    except Exception:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return {"name": name.decode() if isinstance(name, bytes) else str(name),
                "total_memory_bytes": int(props.get("totalGlobalMem", 0)),
                "cupy": cupy.__version__}
    except Exception:
        return None


def _version(mod: str) -> str | None:
    try:
        return __import__(mod).__version__
    except Exception:
        return None


def _git() -> dict | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        return {"commit": head or None, "dirty": bool(dirty.strip())}
    except Exception:
        return None


def machine_info() -> dict:
    """Where and with what the numbers were taken (call inside ``pinned_threads``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "cores_available": cores,
        "memory_total_bytes": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("sketchlearn", "numpy", "scipy", "numba",
                                               "sklearn", "threadpoolctl", "ot")},
        "threads_requested": settings.threads,
        "threads": thread_report(),
        "gpu": _gpu(),
        "git": _git(),
    }


# --------------------------------------------------------------------------- output


def ratio(peer, ours):
    """``peer / ours`` or None when either is missing or ``ours`` is zero."""
    if peer is None or ours is None or not ours:
        return None
    return peer / ours


def rel_diff(a, b):
    if a is None or b is None:
        return None
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}".replace(",", "_") if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e5 or a < 1e-3:
            return f"{v:.2e}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}"
    return str(v).replace("|", "\\|")


def markdown_table(columns, rows) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def markdown_report(result: dict) -> str:
    m = result.get("machine", {})
    versions = m.get("versions", {})
    gpu = m.get("gpu")
    blas = ", ".join(f"{b['library']} {b['version']} x{b['num_threads']}"
                     for b in m.get("threads", {}).get("blas", [])) or "none found"
    numba_t = (m.get("threads", {}).get("numba") or {}).get("num_threads")
    lines = [
        f"## {result['name']}",
        "",
        result.get("description", ""),
        "",
        markdown_table(result["columns"], result["rows"]),
        "",
    ]
    notes = result.get("notes", [])
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        f"Machine: {m.get('cpu_model')} ({m.get('cores_available')} cores available), "
        f"{(m.get('memory_total_bytes') or 0) / 2**30:.0f} GiB RAM; "
        f"GPU: {gpu['name'] if gpu else 'none'}. "
        f"BLAS: {blas}; Numba threads: {numba_t}. "
        f"numpy {versions.get('numpy')}, scipy {versions.get('scipy')}, "
        f"scikit-learn {versions.get('sklearn')}, numba {versions.get('numba')}, "
        f"sketchlearn {versions.get('sketchlearn')}. "
        f"{'Quick' if result.get('quick') else 'Full'} run, {m.get('date')}, "
        f"{result.get('elapsed_s', 0):.0f} s.",
    ]
    load = result.get("load_average") or {}
    if load.get("before") is not None and load.get("after") is not None:
        lines[-1] += (f" Load average (1/5/15 min) before: "
                      f"{'/'.join(str(x) for x in load['before'])}, after: "
                      f"{'/'.join(str(x) for x in load['after'])} "
                      f"(on {m.get('cores_available')} cores).")
    lines.append("")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_results(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / f"{result['name']}.json"
    mpath = out_dir / f"{result['name']}.md"
    jpath.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    mpath.write_text(markdown_report(result))
    return jpath, mpath


def mib(nbytes):
    return None if nbytes is None else nbytes / MiB
