"""CUDA, set up once for every ``_cupy`` module: how a module records each source it
compiles (``CudaSource``, read without CuPy or a GPU by the CI compile check,
``tests/test_cuda_sources.py``) and the one helper that compiles a record."""

from __future__ import annotations

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


__all__ = ["CUDA_OPTIONS", "CudaSource", "compile_source"]
