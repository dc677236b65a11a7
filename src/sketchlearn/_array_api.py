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
``op.implementation(name)`` to run one backend against another. CuPy arrays that
reach an operation without a CuPy implementation run its reference on the GPU,
correct but possibly much slower, with a :class:`PerformanceWarning` the first time
(once per operation).

Registry and examples
---------------------
Every :class:`Dispatch` registers itself when it is created
(:func:`registered_operations`) and declares, beside itself, how to build example
inputs::

    def _kernel_matvec_examples(xp, rng):
        X, Y, V = (move_to(rng.normal(size=s), xp) for s in ((37, 3), (29, 3), (29, 2)))
        return [((X, Y, V, GaussianKernel(1.0)), {}), ...]

    kernel_matvec = Dispatch(..., examples=_kernel_matvec_examples)

``examples(xp, rng)`` returns a list of ``(args, kwargs)`` (the arguments after the
namespace): small inputs built the way the operation's callers build them (float32
and float64 where both reach it, the callers' index dtypes and host arrays, the
edge cases it must handle), drawn from the NumPy generator ``rng`` alone, on the
host, and moved to ``xp`` with :func:`move_to`, so one seed gives the same inputs
in every namespace. ``tests/test_operations.py`` runs every registered operation on
each of its examples with every backend available (Numba, the reference under
``array_api_strict``, CuPy) against the reference on NumPy inputs, checks that no
backend writes into its inputs, and fails for an operation without examples.

Public functions and Dask
-------------------------
Every public function is wrapped by :func:`public_function`, which checks its
parameters once (scikit-learn constraints), applies the device policy and moves the
data. A Dask array among its data arguments sends the call to the function's
distributed version, named by ``public_function(dask="package.module:function")``,
with the arguments bound and checked; without one, Dask input is a ``TypeError``
that says what to do (``dask_instead``), never a silent ``compute()``. Estimators
opt in with ``validate_estimator_data(..., accept_dask=True)``.

A distributed version is built from summaries of row chunks (``sketchlearn._summaries``:
``partial(*blocks, start, index) -> summary`` and ``merge(*summaries)``, plain
NumPy/CuPy without Dask) that ``sketchlearn._dask.reduce_row_chunks`` runs as a tree
over the chunks, one pass over the data each. Random numbers are keyed by global row
(``sketchlearn._random.row_keyed``), so a distributed result equals the in-memory one
with the same seed, whatever the chunking; per-chunk state (a factor, a boundary
row) travels with its own chunk's task only (``per_chunk=``). The user guide's Dask
page describes the algorithms.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import inspect
import sys
from functools import lru_cache

import array_api_compat
import numpy as np

from ._cold_start import runs_reference
from ._config import get_config

__all__ = [
    "Dispatch",
    "PerformanceWarning",
    "registered_operations",
    "get_namespace",
    "is_numpy_namespace",
    "is_cupy_namespace",
    "to_numpy",
    "move_to",
    "result_float_dtype",
    "blas_single_thread",
    "cupy_is_usable",
    "to_compute_device",
    "public_function",
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


def solve_lower(xp, L, B):
    """``L^{-1} B`` for a lower-triangular ``L``: a triangular solve (BLAS ``trsm``) for
    NumPy and CuPy, where ``xp.linalg.solve`` would factor ``L`` by LU and take several
    times as long on many right-hand sides; ``xp.linalg.solve`` elsewhere."""
    if is_numpy_namespace(xp):
        import scipy.linalg

        return scipy.linalg.solve_triangular(L, B, lower=True, check_finite=False)
    if is_cupy_namespace(xp):
        from cupyx.scipy.linalg import solve_triangular

        return solve_triangular(L, B, lower=True)
    return xp.linalg.solve(L, B)


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


GPU_MISSING = ("config device='gpu' needs CuPy and a CUDA device; install the 'gpu' extra "
               "(pip install sketchlearn[gpu]) or use device='cpu'.")

# Set while a public function runs: the device was chosen at its outermost call, so
# nested public calls and to_compute_device leave the arrays where they are.
_device_chosen: contextvars.ContextVar = contextvars.ContextVar("sketchlearn_device_chosen",
                                                                default=False)


def public_function(*, arrays: tuple = (), work=None, params: dict | None = None,
                    dask: str | None = None, dask_instead: str | None = None):
    """Decorator giving a public function its parameter checks and the device policy,
    once, at its outermost call.

    ``params`` are scikit-learn parameter constraints (``Interval``, ``StrOptions``,
    ...), checked with scikit-learn's ``validate_parameter_constraints`` unless
    scikit-learn's ``skip_parameter_validation`` is set: an estimator's ``fit`` under
    ``_fit_context(prefer_skip_nested_validation=True)`` checked them already, so its
    functional twin does not check them twice. Checks that depend on the data (a
    size at most the number of rows) stay in the function.

    Under ``device="gpu"`` (or ``"auto"`` with CuPy seeing a device and ``work`` at
    least ``gpu_min_work``) the parameters named in ``arrays`` that hold NumPy arrays
    or array-likes are copied to CuPy, the function runs there, and the arrays in its
    result (also inside tuples, lists, dicts and dataclasses) come back as NumPy.
    ``device="gpu"`` without a usable GPU raises a ``RuntimeError`` before any work,
    never a silent CPU run. Calls made from inside a public function do nothing of
    this: the outermost call chose the device.

    Parameters
    ----------
    arrays : tuple of str
        Names of the parameters that hold data arrays.
    work : callable, optional
        ``work(**arguments) -> float``, the size of the computation from the call's
        arguments (defaults filled in; arrays possibly still array-likes), for
        ``device="auto"``; default: the total number of entries of the data arrays.
    params : dict, optional
        Constraints of the function's parameters, by name.
    dask : str, optional
        ``"package.module:function"`` of the distributed version, called with the
        bound arguments (after the parameter checks) when a parameter named in
        ``arrays`` holds a Dask array. Without it, Dask input raises a ``TypeError``
        (never a silent ``compute()`` of the whole array) that says what to do,
        ``dask_instead`` if given.
    dask_instead : str, optional
        What to use instead on Dask input, for that message.
    """

    def decorate(func):
        signature = inspect.signature(func)
        unknown = (set(arrays) | set(params or ())) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{func.__name__} has no parameters {sorted(unknown)}")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if _device_chosen.get():
                return func(*args, **kwargs)
            if "dask.array" in sys.modules and _has_dask_array(args, kwargs):
                return _call_distributed(func, signature, params, arrays, dask, dask_instead,
                                         args, kwargs)
            config = get_config()
            device = config["device"]
            if device == "gpu" and not cupy_is_usable():
                raise RuntimeError(GPU_MISSING)
            bound = None
            if params or device != "cpu":  # one binding serves the checks and the move
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
            if params:
                _check_parameters(func, params, bound.arguments)
            move = False
            if device != "cpu":
                data = {name: bound.arguments[name] for name in arrays
                        if bound.arguments[name] is not None}
                on_host = any(not array_api_compat.is_cupy_array(v) for v in data.values())
                if on_host and device == "gpu":
                    move = True
                elif on_host and cupy_is_usable():
                    size = (sum(np.size(v) for v in data.values()) if work is None
                            else work(**bound.arguments))
                    move = size >= config["gpu_min_work"]
                if move:
                    import cupy

                    for name, value in data.items():
                        bound.arguments[name] = _to_device(cupy, value)
                    args, kwargs = bound.args, bound.kwargs
            token = _device_chosen.set(True)
            try:
                result = func(*args, **kwargs)
            finally:
                _device_chosen.reset(token)
            return _to_host(result) if move else result

        wrapper.public_arrays = tuple(arrays)
        return wrapper

    return decorate


def _has_dask_array(args, kwargs) -> bool:
    return any(_is_dask_value(v) for v in list(args) + list(kwargs.values()))


def _is_dask_value(v) -> bool:
    """A Dask array or DataFrame, or a list or tuple holding one (point clouds, (row,
    column, value) triplets)."""
    from ._dask import is_dask_array

    def one(u):
        frame = sys.modules.get("dask.dataframe")
        return is_dask_array(u) or (frame is not None and isinstance(u, frame.DataFrame))

    return one(v) or (isinstance(v, (list, tuple)) and any(one(u) for u in v))


def _call_distributed(func, signature, params, arrays, dask, dask_instead, args, kwargs):
    """A public function called with Dask arrays: its distributed version, or a
    ``TypeError`` saying what to do."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    names = [name for name in arrays if _is_dask_value(bound.arguments[name])]
    if dask is None or not names:
        given = ", ".join(names) or "an argument"
        instead = f" {dask_instead}" if dask_instead else ""
        raise TypeError(
            f"{func.__name__} has no distributed version: {given} is a Dask array.{instead} "
            "If the data fit in memory, pass computed arrays (x.compute()).")
    if params:
        _check_parameters(func, params, bound.arguments)
    module, _, name = dask.partition(":")
    distributed = getattr(importlib.import_module(module), name)
    token = _device_chosen.set(True)  # chunks stay where they are; nested calls skip the policy
    try:
        return distributed(**bound.arguments)
    finally:
        _device_chosen.reset(token)


def _check_parameters(func, params, arguments):
    """scikit-learn's parameter validation of one call (``arguments``: bound, defaults
    filled in), unless a fitting estimator (or the user) asked scikit-learn to skip
    nested validation."""
    import sklearn
    from sklearn.utils._param_validation import validate_parameter_constraints

    if sklearn.get_config().get("skip_parameter_validation", False):
        return
    validate_parameter_constraints(params, {name: arguments[name] for name in params},
                                   caller_name=func.__qualname__)


def _to_device(cupy, value):
    """``value`` on the GPU; a list or tuple of arrays (point clouds of several sizes)
    element by element."""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, np.ndarray) or array_api_compat.is_cupy_array(v) for v in value):
        return type(value)(cupy.asarray(v) for v in value)
    return cupy.asarray(value)


def _to_host(value):
    """``value`` with every CuPy array in it (containers and dataclasses too) as NumPy."""
    if array_api_compat.is_cupy_array(value):
        return value.get()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return type(value)._make(_to_host(v) for v in value)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_host(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_host(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _to_host(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


def to_compute_device(*arrays, work: float = 0.0):
    """Move NumPy inputs to the GPU when the configuration asks for it.

    Inside a :func:`public_function` (which chose the device already) a no-op.

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
    if is_numpy_namespace(xp) and device != "cpu" and not _device_chosen.get():
        wanted = device == "gpu" or (work >= get_config()["gpu_min_work"] and cupy_is_usable())
        if wanted:
            if not cupy_is_usable():
                raise RuntimeError(GPU_MISSING)
            import cupy

            moved = tuple(None if a is None else cupy.asarray(a) for a in arrays)
            return moved, array_api_compat.array_namespace(*[a for a in moved if a is not None]), (
                lambda r: r.get() if array_api_compat.is_cupy_array(r) else r
            )
    return arrays, xp, (lambda r: r)


class PerformanceWarning(UserWarning):
    """CuPy arrays reached an operation that has no CuPy implementation.

    Its array-API reference runs on the GPU arrays instead: the same result, but
    possibly made of many small kernels and host round trips. Emitted once per
    operation.
    """


# Every Dispatch created, in order (tests/test_operations.py walks them).
_OPERATIONS: list = []


def registered_operations() -> tuple:
    """Every :class:`Dispatch` created so far, in order of creation."""
    return tuple(_OPERATIONS)


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
    examples : callable, optional
        ``examples(xp, rng) -> [(args, kwargs), ...]``: small, realistic inputs in
        namespace ``xp`` drawn from the NumPy generator ``rng`` (see the module
        docstring); every operation of the library declares them.
    """

    def __init__(self, reference, *, numba: str | None = None, cupy: str | None = None,
                 examples=None):
        self.reference = reference
        self._paths = {"numba": numba, "cupy": cupy}
        self._loaded: dict = {}
        self.examples = examples
        self._warned = False
        self.__name__ = getattr(reference, "__name__", "dispatch").removesuffix("_reference")
        self.__doc__ = reference.__doc__
        _OPERATIONS.append(self)

    @property
    def backends(self) -> tuple:
        """Names of the implementations this operation has, the reference first."""
        return ("reference",) + tuple(name for name, path in self._paths.items() if path)

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
        elif backend == "reference" and not self._warned and is_cupy_namespace(xp):
            self._warn_reference_on_gpu()
        return self.implementation(backend)(xp, *args, **kwargs)

    def _warn_reference_on_gpu(self):
        import warnings

        from ._validation import user_stacklevel  # _validation imports this module

        self._warned = True
        module = getattr(self.reference, "__module__", "?")
        warnings.warn(f"Operation {self.__name__!r} ({module}) has no CuPy implementation: "
                      "it runs its array-API reference on the CuPy arrays (same result, "
                      "possibly much slower). Warned once per operation.",
                      PerformanceWarning, stacklevel=user_stacklevel())
