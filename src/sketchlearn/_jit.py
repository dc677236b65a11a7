"""Numba, set up once for every ``_numba`` module: ``from .._jit import njit``.

Compiled kernels are cached on disk (``@njit(cache=True)``), so only the first call on a
machine pays for compilation. Numba writes the cache next to the sources, or, where the
installed package is read-only (system site-packages, containers), in the user's cache
directory (``~/.cache/numba``). Where neither can be written, Numba would refuse to
decorate a cached function at all; this module then points it at a per-user directory
under the system's temporary directory. ``NUMBA_CACHE_DIR`` set by the user always wins.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (made if missing), as Numba checks it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    """Numba's user-wide cache directory (its ``UserWideCacheLocator``), on Linux and macOS
    ``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba`` / ``~/Library/Caches/numba``."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "numba" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def fallback_cache_dir(environ=None, writable=None) -> str | None:
    """The cache directory to hand Numba, or None where Numba finds a writable one itself."""
    environ = os.environ if environ is None else environ
    writable = _writable if writable is None else writable
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if writable(PACKAGE_DIR / "kernels" / "__pycache__") or writable(user_cache_dir()):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    fallback = Path(tempfile.gettempdir()) / f"sketchlearn-numba-cache-{uid}"
    if writable(fallback):
        return str(fallback)
    return tempfile.mkdtemp(prefix="sketchlearn-numba-cache-")  # this process only


def _configure_cache() -> None:
    path = fallback_cache_dir()
    if path is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba read its environment already
        from numba.core import config

        config.CACHE_DIR = path


def is_cached(dispatcher) -> bool:
    """Whether Numba's disk cache has compiled code for ``dispatcher`` (False if unknown)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # a Numba whose cache internals differ
        return False


_configure_cache()

from numba import njit  # noqa: E402  (after the cache location is set)

__all__ = ["is_cached", "njit"]
