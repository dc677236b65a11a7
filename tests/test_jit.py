"""Where compiled kernels are cached (``sketchlearn._jit``)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sketchlearn import _jit


def test_numba_finds_its_own_cache_when_a_directory_is_writable():
    assert _jit.fallback_cache_dir({"NUMBA_CACHE_DIR": "/x"}, lambda p: False) is None
    assert _jit.fallback_cache_dir({}, lambda p: True) is None
    # Read-only package (system site-packages): Numba's user-wide locator takes over.
    user = _jit.user_cache_dir()
    assert _jit.fallback_cache_dir({}, lambda p: p == user) is None


def test_read_only_package_and_home_fall_back_to_a_per_user_temporary_directory():
    tmp = Path(tempfile.gettempdir())
    chosen = _jit.fallback_cache_dir({}, lambda p: p.parent == tmp)
    assert chosen is not None and Path(chosen).parent == tmp
    assert "sketchlearn-numba-cache" in chosen
    if hasattr(os, "getuid"):
        assert chosen.endswith(str(os.getuid()))
    # Nothing writable but a fresh temporary directory: this process still caches.
    last = _jit.fallback_cache_dir({}, lambda p: False)
    assert last is not None and Path(last).is_dir()
    os.rmdir(last)


def test_fallback_directory_receives_the_compiled_kernels(tmp_path):
    """Without a writable package or home, Numba would refuse to decorate a cached
    kernel (RuntimeError at import); the fallback gives it a directory it uses."""
    script = f"""
import tempfile
from pathlib import Path
import numpy as np
import sketchlearn._jit as jit
target = Path({str(tmp_path)!r}) / "fallback"
jit._writable = lambda p: p == target or p.parent == target
jit.tempfile.gettempdir = lambda: str(target)
jit._configure_cache()
from numba.core import config
assert config.CACHE_DIR.startswith(str(target)), config.CACHE_DIR
from sketchlearn.linear_model._numba import _refinement_residuals
A = np.ones((3, 2)); y = np.ones(3)
_refinement_residuals(A, y, np.zeros(3), np.zeros(2))
print(sorted(p.suffix for p in target.rglob("*.nb*"))[:1])
"""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "'.nbc'" in done.stdout or "'.nbi'" in done.stdout


def test_row_blocks_cover_every_row_once_on_threads_and_serially():
    import threading

    import numba
    import numpy as np

    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            for n_rows, work in ((7, 10**9), (1, 10**9), (1000, 10**9), (1000, 10)):
                hits = np.zeros(n_rows, dtype=np.int64)
                names = set()

                def part(lo, hi, hits=hits, names=names):
                    names.add(threading.current_thread().name)
                    hits[lo:hi] += 1

                _jit.on_row_blocks(part, n_rows, work)
                assert (hits == 1).all()
                threaded = threads > 1 and n_rows > 1 and work > _jit.SERIAL_WORK
                # Large work on several threads runs on the pool, small work in place.
                assert (threading.current_thread().name not in names) == threaded
    finally:
        numba.set_num_threads(previous)


def test_task_threads_follow_omp_num_threads_on_the_calling_thread_only(monkeypatch):
    """As distributed's workers set it: OMP_NUM_THREADS=1 gives the task's kernels one
    Numba thread, restored afterwards; without it nothing changes."""
    import numba

    before = numba.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with _jit.task_threads():
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")  # capped at Numba's pool
    with _jit.task_threads():
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    for unset in ("", "auto"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        with _jit.task_threads():
            assert numba.get_num_threads() == before
