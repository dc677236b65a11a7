"""Global configuration: where the heavy numerical work runs.

``device`` is one of

``"cpu"`` (default)
    NumPy inputs are computed on the CPU (Numba kernels); CuPy inputs on their GPU.
``"gpu"``
    NumPy inputs are moved to CuPy for the heavy part and results come back as NumPy.
    Raises if CuPy or a CUDA device is missing.
``"auto"``
    Like ``"gpu"`` when CuPy sees a device and the problem is at least
    ``gpu_min_work`` (a count of pairwise evaluations or flops, whatever the caller
    measures), else ``"cpu"``.

``cold_start`` is one of

``"reference"`` (default)
    A small call whose Numba kernels are not compiled yet in this process runs the
    NumPy reference (same results) and the kernels compile on a background thread;
    see :mod:`sketchlearn._cold_start`.
``"compile"``
    Every call compiles its kernels before it runs (tens of seconds once per machine).

The environment variable ``SKETCHLEARN_COLD_START`` sets the default of every thread
(and of child processes), for example ``compile`` in a job that times warm calls.

The settings are thread-local, as in scikit-learn, so a ``config_context`` in one
thread does not change another.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

_DEFAULTS = {"device": "cpu", "gpu_min_work": 10**8, "cold_start": "reference"}
_DEVICES = ("cpu", "gpu", "auto")
_COLD_STARTS = ("reference", "compile")
_local = threading.local()


def _settings() -> dict:
    if not hasattr(_local, "settings"):
        _local.settings = dict(_DEFAULTS, cold_start=_cold_start_from_environment())
    return _local.settings


def _cold_start_from_environment() -> str:
    value = os.environ.get("SKETCHLEARN_COLD_START", "").strip().lower()
    if not value:
        return _DEFAULTS["cold_start"]
    if value not in _COLD_STARTS:
        raise ValueError(f"SKETCHLEARN_COLD_START must be one of {_COLD_STARTS}, "
                         f"got {value!r}.")
    return value


def get_config() -> dict:
    """Return a copy of the current configuration.

    Returns
    -------
    config : dict
        Keys ``"device"``, ``"gpu_min_work"`` and ``"cold_start"``.

    Examples
    --------
    >>> import sketchlearn
    >>> sketchlearn.get_config()["device"]
    'cpu'
    """
    return dict(_settings())


def set_config(device: str | None = None, gpu_min_work: int | None = None,
               cold_start: str | None = None) -> None:
    """Set the global configuration for the current thread.

    Parameters
    ----------
    device : {"cpu", "gpu", "auto"}, optional
        Where NumPy inputs are computed: ``"cpu"`` (Numba), ``"gpu"`` (moved to
        CuPy, results back as NumPy) or ``"auto"`` (GPU for large problems when
        CuPy sees a device).
        ``None`` leaves the setting unchanged.
    gpu_min_work : int, optional
        Smallest amount of work for which ``device="auto"`` moves to the GPU.
    cold_start : {"reference", "compile"}, optional
        What a small call does while its Numba kernels are not compiled in this
        process: run the NumPy reference and compile in the background
        (``"reference"``), or compile first (``"compile"``).

    Examples
    --------
    >>> import sketchlearn
    >>> sketchlearn.set_config(device="cpu")
    """
    settings = _settings()
    if device is not None:
        if device not in _DEVICES:
            raise ValueError(f"device must be one of {_DEVICES}, got {device!r}.")
        settings["device"] = device
    if gpu_min_work is not None:
        if int(gpu_min_work) != gpu_min_work or gpu_min_work < 0:
            raise ValueError(f"gpu_min_work must be a non-negative integer, got {gpu_min_work!r}.")
        settings["gpu_min_work"] = int(gpu_min_work)
    if cold_start is not None:
        if cold_start not in _COLD_STARTS:
            raise ValueError(f"cold_start must be one of {_COLD_STARTS}, got {cold_start!r}.")
        settings["cold_start"] = cold_start


@contextmanager
def config_context(*, device: str | None = None, gpu_min_work: int | None = None,
                   cold_start: str | None = None):
    """Temporarily change the configuration inside a ``with`` block.

    Parameters
    ----------
    device : {"cpu", "gpu", "auto"}, optional
        Where NumPy inputs are computed inside the block.
    gpu_min_work : int, optional
        Threshold used by ``device="auto"``.
    cold_start : {"reference", "compile"}, optional
        See :func:`set_config`.

    Examples
    --------
    >>> import numpy as np
    >>> import sketchlearn
    >>> from sketchlearn.metrics import mmd
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> with sketchlearn.config_context(device="cpu"):
    ...     value = mmd(X, X + 1.0, bandwidth=1.0)
    >>> value > 0
    True
    """
    old = get_config()
    set_config(device=device, gpu_min_work=gpu_min_work, cold_start=cold_start)
    try:
        yield
    finally:
        _settings().update(old)
