"""First calls that do not wait for Numba to compile.

A Numba kernel compiles the first time it runs in a process whose disk cache does not
hold it yet: about 18 s for kernel thinning on two cores, where the work of a small call
takes a fraction of a second. Inside ``reference_until_compiled(small=True)`` (opened by
the public functions around their work) an accelerated operation whose Numba version
has not run yet in this process, for these argument types, runs its NumPy reference
instead: the array-API code that the tests hold every kernel to, so the result is the
same to rounding. When the outermost such block ends, the operations it ran on the
reference are replayed once with Numba on a background thread, on copies of their
arguments; that compiles exactly what the call needs (and writes Numba's disk cache, so
a later process loads the kernels instead), and from then on the same calls use the
compiled kernels. Large calls (``small=False``) compile at once, as the work then
outweighs the compilation.

``set_config(cold_start="compile")`` (tests, benchmarks of warm speed) always compiles
first. The background thread only starts where Numba's threading layer is thread-safe
(OpenMP or TBB); elsewhere calls compile in the foreground as before.
"""

from __future__ import annotations

import contextvars
import importlib.util
import os
import threading
from contextlib import contextmanager

import numpy as np

from ._config import get_config

__all__ = ["reference_until_compiled", "runs_reference", "wait_for_compilation"]

_scope: contextvars.ContextVar = contextvars.ContextVar("sketchlearn_cold_start", default=None)
_lock = threading.Lock()
_ready: set = set()  # (operation, argument types) whose Numba version was replayed here
_queued: set = set()  # ... replayed or waiting to be, on the background thread
_workers: list = []
_fork_handlers_registered = False


class _Scope:
    __slots__ = ("small", "pending")

    def __init__(self, small):
        self.small = small
        self.pending = []


def _types(value):
    """What Numba's choice of compiled version depends on, for one argument."""
    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else "F" if value.flags.f_contiguous else "A"
        return ("array", value.dtype.str, value.ndim, layout, value.flags.writeable)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(_types(v) for v in value)
    return type(value).__qualname__


def _aliases(args):
    """For each argument, the position of the first argument that is the same object:
    a kernel may take another path for ``f(X, X)`` than for ``f(X, Y)``."""
    first: dict = {}
    return tuple(first.setdefault(id(a), i) for i, a in enumerate(args))


def _same_layout_copy(a):
    """A copy that Numba types as it types ``a`` (C, F or strided layout)."""
    if a.flags.c_contiguous:
        return a.copy(order="C")
    if a.flags.f_contiguous:
        return a.copy(order="F")
    spread = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)[::2]
    spread[...] = a
    return spread


def _copy(value, memo):
    """Copy of ``value``'s arrays (the same array twice stays one copy)."""
    if isinstance(value, np.ndarray):
        if id(value) not in memo:
            copy = _same_layout_copy(value)
            copy.flags.writeable = value.flags.writeable  # Numba types read-only apart
            memo[id(value)] = copy
        return memo[id(value)]
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v, memo) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v, memo) for k, v in value.items()}
    return value


@contextmanager
def reference_until_compiled(small: bool):
    """Run a public call's Numba operations on their reference while they are not compiled.

    Parameters
    ----------
    small : bool
        Whether the call's work is small enough for the NumPy reference (each caller
        sets its own bound, a few seconds of reference work at most). Nested blocks
        follow the outermost one.
    """
    if _scope.get() is not None:
        yield
        return
    scope = _Scope(bool(small) and get_config()["cold_start"] == "reference"
                   and _background_compile_is_safe())
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        if scope.pending:
            with _lock:
                _queued.update(key for key, *_ in scope.pending)
            _start_replay(scope.pending)


def runs_reference(operation, xp, args, kwargs) -> bool:
    """Whether ``operation`` (about to run with Numba) runs its reference this time.

    True inside a small ``reference_until_compiled`` block when this operation has not
    run with Numba on arguments of these types in this process; the call is then queued
    (on copies of its arguments) for the background compilation.
    """
    scope = _scope.get()
    if scope is None or not scope.small:
        return False
    key = (id(operation), _types(args), _aliases(args), _types(tuple(sorted(kwargs.items()))))
    if key in _ready:
        return False
    if key not in _queued:
        # Every call of the block is replayed, not only the first of its kind: a kernel
        # can take another compiled path by size (one walk or many, blocked or not).
        memo: dict = {}
        scope.pending.append((key, operation, xp, _copy(args, memo), _copy(kwargs, memo)))
    return True


def _replay(calls):
    for key, operation, xp, args, kwargs in calls:
        try:
            operation.implementation("numba")(xp, *args, **kwargs)
        except Exception:  # noqa: BLE001  (the foreground call compiles, and raises, itself)
            pass
        _ready.add(key)


def _start_replay(calls):
    global _fork_handlers_registered
    if not _fork_handlers_registered:
        _register_fork_handlers()
        _fork_handlers_registered = True
    worker = threading.Thread(target=_replay, args=(calls,), name="sketchlearn-compile",
                              daemon=True)
    with _lock:
        _workers[:] = [w for w in _workers if w.is_alive()]
        _workers.append(worker)
    worker.start()


def wait_for_compilation(timeout: float | None = None) -> bool:
    """Wait for the background compilations started so far; True when none is left.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait in all (default: as long as it takes).

    Returns
    -------
    done : bool
        Whether every background compilation has finished.

    Examples
    --------
    >>> from sketchlearn import wait_for_compilation
    >>> wait_for_compilation(timeout=60.0)
    True
    """
    import time

    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
        raise ValueError(f"timeout must be None or a non-negative number of seconds, "
                         f"got {timeout!r}.")
    deadline = None if timeout is None else time.monotonic() + timeout
    with _lock:
        workers = list(_workers)
    for worker in workers:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        worker.join(left)
    return not any(w.is_alive() for w in workers)


def _background_compile_is_safe() -> bool:
    """Whether Numba can run parallel kernels from two threads at once (OpenMP or TBB
    layer; its fallback, the workqueue, aborts), and this thread can start threads."""
    layer = os.environ.get("NUMBA_THREADING_LAYER", "default").lower()
    if layer == "workqueue":
        return False
    return (_layer_available("numba.np.ufunc.omppool")
            or _layer_available("numba.np.ufunc.tbbpool"))


_layers: dict = {}


def _layer_available(module: str) -> bool:
    if module not in _layers:
        try:
            available = importlib.util.find_spec(module) is not None
            if available:
                importlib.import_module(module)  # fails where libgomp / libtbb is missing
        except (ImportError, OSError):
            available = False
        _layers[module] = available
    return _layers[module]


def _before_fork():
    # A child forked while the background thread holds Numba's compiler lock would
    # inherit the lock held by a thread it does not have, and hang on its first compile.
    from numba.core.compiler_lock import global_compiler_lock

    global_compiler_lock.acquire()


def _after_fork_in_parent():
    from numba.core.compiler_lock import global_compiler_lock

    global_compiler_lock.release()


def _after_fork_in_child():
    from numba.core.compiler_lock import global_compiler_lock

    global_compiler_lock.release()
    _queued.clear()  # the replays were the parent's; the child compiles its own
    _workers.clear()


def _register_fork_handlers():
    if not hasattr(os, "register_at_fork"):
        return
    try:
        from numba.core.compiler_lock import global_compiler_lock  # noqa: F401
    except ImportError:
        return
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
