"""Arrays, namespaces and devices, and the dispatch pattern for accelerated kernels.

Every numerical function in sketchlearn is written once against the array API
(``xp = get_namespace(X, Y)``), so NumPy inputs give NumPy outputs and CuPy inputs
give CuPy outputs computed on their GPU.

Accelerated kernels
-------------------
Where a loop cannot be vectorised, or a fused kernel saves memory, an operation is
declared as a :class:`Dispatch`::

    kernel_matvec = Dispatch(
        _kernel_matvec_reference,                          # array-API code, the oracle
        numba="sketchlearn.kernels._numba:kernel_matvec",  # used for NumPy arrays
        cupy="sketchlearn.kernels._cupy:kernel_matvec",    # used for CuPy arrays
    )
    out = kernel_matvec(xp, X, Y, v, ...)

Every implementation takes the namespace first and the same arguments after it.
The accelerated modules are imported on first use only, so importing sketchlearn
never imports CuPy, and a namespace with no accelerated implementation (for
example ``array_api_strict``) runs the reference. Tests call
``op.implementation(name)`` to run one backend against another.
"""

from __future__ import annotations

import contextlib
import importlib
from functools import lru_cache

import array_api_compat
import numpy as np

from ._cold_start import runs_reference
from ._config import get_config

__all__ = [
    "Dispatch",
    "get_namespace",
    "is_numpy_namespace",
    "is_cupy_namespace",
    "to_numpy",
    "move_to",
    "result_float_dtype",
    "blas_single_thread",
    "cupy_is_usable",
    "to_compute_device",
]


def get_namespace(*arrays):
    """Return the array-API namespace shared by ``arrays`` (``None`` entries ignored).

    Raises a ``TypeError`` naming both libraries when arrays come from different
    libraries, for example NumPy and CuPy.
    """
    arrays = [a for a in arrays if a is not None]
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in arrays})
        raise TypeError(
            f"Inputs come from different array libraries ({', '.join(kinds)}); pass them all "
            "as NumPy arrays or all as CuPy arrays (move with cupy.asarray / cupy.asnumpy)."
        ) from exc


def is_numpy_namespace(xp) -> bool:
    """True when ``xp`` is NumPy (plain or array-api-compat's wrapper)."""
    return array_api_compat.is_numpy_namespace(xp)


def is_cupy_namespace(xp) -> bool:
    """True when ``xp`` is CuPy (plain or array-api-compat's wrapper)."""
    return array_api_compat.is_cupy_namespace(xp)


def to_numpy(x) -> np.ndarray:
    """Copy an array of any supported library to a NumPy array on the host."""
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_numpy_array(x) or np.isscalar(x):
        return np.asarray(x)
    # array_api_strict and other CPU libraries export DLPack.
    return np.from_dlpack(x)


def move_to(x, xp):
    """Return ``x`` as an array of namespace ``xp`` (a no-op when it already is)."""
    if is_cupy_namespace(xp):
        import cupy

        return cupy.asarray(x)
    if is_numpy_namespace(xp):
        return to_numpy(x)
    return xp.asarray(to_numpy(x))


def transposed_copy(xp, A):
    """A copy of ``A.T`` laid out row by row (C order for NumPy and CuPy).

    ``asarray(A.T, copy=True)`` keeps the transposed (Fortran) layout, and the
    kernels that read rows would copy it again on every call.
    """
    if is_numpy_namespace(xp):
        return np.ascontiguousarray(A.T)
    if is_cupy_namespace(xp):
        import cupy

        return cupy.ascontiguousarray(A.T)
    return xp.asarray(A.T, copy=True)


def result_float_dtype(xp, *arrays):
    """float32 when every array is float32, else float64 (integers count as float64)."""
    dtypes = [a.dtype for a in arrays if a is not None]
    if dtypes and all(dt == xp.float32 for dt in dtypes):
        return xp.float32
    return xp.float64


def blas_single_thread(xp):
    """Context limiting BLAS to one thread for NumPy data (no-op otherwise).

    For BLAS calls that alternate with Numba's parallel loops, or that work on thin
    matrices: OpenBLAS's threads keep spinning for a while after each call and take
    the cores from Numba's threads (scikit-learn's KMeans limits BLAS inside its loop
    for the same reason). On a loaded machine the competition costs a time slice per
    call.
    """
    if not is_numpy_namespace(xp):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def cupy_is_usable() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDA driver errors: no usable GPU either way
        return False


def to_compute_device(*arrays, work: float = 0.0):
    """Move NumPy inputs to the GPU when the configuration asks for it.

    Parameters
    ----------
    *arrays : arrays or None
        Inputs of one call, all from one library.
    work : float
        Size of the computation (for ``device="auto"``).

    Returns
    -------
    arrays : tuple
        The inputs, on the compute device.
    xp : namespace
        Namespace of the compute device.
    restore : callable
        Maps a result array back to the caller's library (identity when nothing moved).
    """
    xp = get_namespace(*arrays)
    device = get_config()["device"]
    if is_numpy_namespace(xp) and device != "cpu":
        wanted = device == "gpu" or (work >= get_config()["gpu_min_work"] and cupy_is_usable())
        if wanted:
            if not cupy_is_usable():
                raise RuntimeError(
                    "config device='gpu' needs CuPy and a CUDA device; install the 'gpu' extra "
                    "(pip install sketchlearn[gpu]) or use device='cpu'."
                )
            import cupy

            moved = tuple(None if a is None else cupy.asarray(a) for a in arrays)
            return moved, array_api_compat.array_namespace(*[a for a in moved if a is not None]), (
                lambda r: r.get() if array_api_compat.is_cupy_array(r) else r
            )
    return arrays, xp, (lambda r: r)


class Dispatch:
    """An operation with an array-API reference and optional accelerated versions.

    Parameters
    ----------
    reference : callable
        ``reference(xp, *args, **kwargs)`` written in array-API calls; always
        correct, used for namespaces without an accelerated version, and the oracle
        in tests.
    numba, cupy : str, optional
        ``"package.module:function"`` of the implementation used for NumPy and for
        CuPy arrays, imported on first use.
    """

    def __init__(self, reference, *, numba: str | None = None, cupy: str | None = None):
        self.reference = reference
        self._paths = {"numba": numba, "cupy": cupy}
        self._loaded: dict = {}
        self.__name__ = getattr(reference, "__name__", "dispatch").removesuffix("_reference")
        self.__doc__ = reference.__doc__

    def backend_for(self, xp) -> str:
        """Name of the implementation used for namespace ``xp``."""
        if is_numpy_namespace(xp) and self._paths["numba"]:
            return "numba"
        if is_cupy_namespace(xp) and self._paths["cupy"]:
            return "cupy"
        return "reference"

    def implementation(self, backend: str):
        """Return the implementation named ``"reference"``, ``"numba"`` or ``"cupy"``."""
        if backend == "reference":
            return self.reference
        if self._paths.get(backend) is None:
            raise ValueError(f"{self.__name__} has no {backend!r} implementation.")
        if backend not in self._loaded:
            module, _, name = self._paths[backend].partition(":")
            self._loaded[backend] = getattr(importlib.import_module(module), name)
        return self._loaded[backend]

    def __call__(self, xp, *args, **kwargs):
        backend = self.backend_for(xp)
        if backend == "numba" and runs_reference(self, xp, args, kwargs):
            backend = "reference"  # a small first call: the kernel compiles in the background
        return self.implementation(backend)(xp, *args, **kwargs)
