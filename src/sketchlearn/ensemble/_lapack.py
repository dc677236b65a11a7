"""LAPACK's ``?sytrd`` and ``?sterf`` called without holding the GIL.

SciPy's f2py wrappers of these routines keep the GIL during the call, so members
factorised in threads (``n_jobs``) ran one after the other (two ``dsytrd`` of size
1000 in two threads: 190 ms each, against 83 ms alone and 98 ms each in two
processes). SciPy also exports its LAPACK as C function pointers, the public table
behind :mod:`scipy.linalg.cython_lapack`; ctypes calls them and releases the GIL for
the duration of the call.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np


@cache
def _routine(name: str):
    """The LAPACK routine ``name`` as a ctypes function, from SciPy's Cython LAPACK
    table. Fortran convention: every argument is a pointer (``byref`` for scalars,
    ``_ptr`` for arrays), and none is converted by ctypes."""
    from scipy.linalg import cython_lapack

    capsule = cython_lapack.__pyx_capi__[name]
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return ctypes.CFUNCTYPE(None)(address)


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def sytrd_lower(G):
    """Householder tridiagonalisation ``G = Q T Q^T`` of a symmetric matrix.

    Returns ``(c, d, e, tau)`` as ``scipy.linalg.lapack.?sytrd(G, lower=1)`` does:
    ``c`` (Fortran order) holds the reflectors below the subdiagonal, ``d`` and
    ``e`` the diagonal and subdiagonal of ``T``. ``G`` is not modified.
    """
    dtype = G.dtype
    prefix = "s" if dtype == np.float32 else "d"
    n = G.shape[0]
    c = np.array(G, dtype=dtype, order="F")
    d = np.empty(n, dtype=dtype)
    e = np.empty(max(n - 1, 1), dtype=dtype)
    tau = np.empty(max(n - 1, 1), dtype=dtype)
    uplo = ctypes.c_char(b"L")
    n_c, lda, info = ctypes.c_int(n), ctypes.c_int(max(n, 1)), ctypes.c_int(0)
    sytrd = _routine(prefix + "sytrd")
    ref = ctypes.byref

    def call(work, lwork):
        sytrd(ref(uplo), ref(n_c), _ptr(c), ref(lda), _ptr(d), _ptr(e), _ptr(tau),
              _ptr(work), ref(lwork), ref(info))

    query = np.empty(1, dtype=dtype)
    call(query, ctypes.c_int(-1))  # workspace query
    work = np.empty(max(int(query[0]), 1), dtype=dtype)
    call(work, ctypes.c_int(work.size))
    if info.value != 0:  # pragma: no cover - LAPACK argument errors only
        raise np.linalg.LinAlgError(f"?sytrd failed (info={info.value}).")
    return c, d, e[: n - 1], tau[: n - 1]


def tridiagonal_eigenvalues(d, e):
    """All eigenvalues, ascending, of the symmetric tridiagonal matrix with diagonal
    ``d`` and subdiagonal ``e`` (LAPACK ``?sterf``, Pal-Walker-Kahan QL/QR)."""
    dtype = d.dtype
    n = d.shape[0]
    w = np.array(d, dtype=dtype, copy=True)
    if n <= 1:
        return w
    off = np.array(e, dtype=dtype, copy=True)
    n_c, info = ctypes.c_int(n), ctypes.c_int(0)
    _routine(("s" if dtype == np.float32 else "d") + "sterf")(
        ctypes.byref(n_c), _ptr(w), _ptr(off), ctypes.byref(info))
    if info.value != 0:  # pragma: no cover - QL failed to converge
        raise np.linalg.LinAlgError(f"?sterf did not converge (info={info.value}).")
    return w
