"""CUDA, set up once for every ``_cupy`` module: how a module records each source it
compiles (``CudaSource``, read without CuPy or a GPU by the CI compile check,
``tests/test_cuda_sources.py``) and the one helper that compiles a record."""

from __future__ import annotations

import functools
import sys
from typing import NamedTuple

# NVRTC options every source is compiled with (CuPy adds its own, and the architecture).
CUDA_OPTIONS = ("--std=c++14",)


class CudaSource(NamedTuple):
    """One CUDA source exactly as a module compiles it."""

    label: str  #: unique name of this variant, e.g. ``"completion[double, long long]"``
    code: str  #: the complete source handed to NVRTC
    options: tuple  #: NVRTC options, beyond those CuPy adds
    name_expressions: tuple  #: template instances to compile (empty: ``extern "C"`` only)
    threads: int  #: the block size its kernels are launched with


def compile_source(source: CudaSource):
    """The ``cupy.RawModule`` of one record (compiled on first use, cached by CuPy)."""
    import cupy

    return cupy.RawModule(code=source.code, options=source.options,
                          name_expressions=list(source.name_expressions) or None)


def single_module(module_name: str):
    """``(build, kernel)`` for a ``_cupy`` module that compiles one record.

    ``build()`` compiles the module's ``cuda_sources()`` record with
    :func:`compile_source` (looked up when called, so the CI check can intercept it)
    once; ``kernel(name)`` returns a kernel by its name expression, looked up once.
    Use as ``_module, _function = single_module(__name__)`` after ``cuda_sources``.
    """

    @functools.lru_cache(maxsize=1)
    def build():
        (source,) = sys.modules[module_name].cuda_sources()
        return compile_source(source)

    @functools.cache
    def kernel(name):
        return build().get_function(name)

    return build, kernel


__all__ = ["CUDA_OPTIONS", "CudaSource", "compile_source", "single_module"]
