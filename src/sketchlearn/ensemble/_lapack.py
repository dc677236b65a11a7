"""LAPACK's ``?sytrd`` and ``?ormqr`` called without holding the GIL.

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

# C types of the argument spellings in SciPy's Cython LAPACK signatures.
_C_TYPES = {"char": ctypes.c_char, "int": ctypes.c_int, "d": ctypes.c_double,
            "s": ctypes.c_float}


def _argument_types(signature: str):
    """ctypes pointer types of a Cython LAPACK signature such as ``void (char *, int *,
    __pyx_t_..._cython_lapack_d *, ...)``; every argument is a pointer (Fortran).

    LAPACK integers must be C ``int`` (32-bit, LP64): an ILP64 build would read each
    ``int`` argument as half of an 8-byte integer, so anything else is refused.
    """
    head, _, args = signature.partition("(")
    if head.strip() != "void" or not args.endswith(")"):
        raise RuntimeError(f"Unexpected LAPACK signature from SciPy: {signature!r}.")
    types = []
    for arg in args[:-1].split(","):
        name = arg.strip()
        if not name.endswith("*"):
            raise RuntimeError(f"Unexpected LAPACK argument {name!r} in {signature!r}.")
        base = name[:-1].strip().rsplit("_", 1)[-1] if "cython_lapack" in name \
            else name[:-1].strip()
        if base not in _C_TYPES:
            raise RuntimeError(f"LAPACK argument type {name!r} is not one of char, int "
                               "(32-bit) or a real float type; this SciPy build (ILP64?) "
                               "is not supported by sketchlearn's ensemble solvers.")
        types.append(ctypes.POINTER(_C_TYPES[base]))
    if ctypes.sizeof(ctypes.c_int) != 4:  # pragma: no cover - exotic platforms only
        raise RuntimeError("LAPACK's 32-bit integers need a 4-byte C int.")
    return types


@cache
def _routine(name: str):
    """The LAPACK routine ``name`` as a typed ctypes function (argument types read
    from the signature SciPy's Cython LAPACK table publishes; ctypes then refuses a
    wrong argument instead of passing it through)."""
    from scipy.linalg import cython_lapack

    capsule = cython_lapack.__pyx_capi__[name]
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    signature = api.PyCapsule_GetName(capsule)
    address = api.PyCapsule_GetPointer(capsule, signature)
    return ctypes.CFUNCTYPE(None, *_argument_types(signature.decode()))(address)


def _ptr(a, offset=0):
    """Pointer to element ``offset`` of the contiguous float array ``a``."""
    ctype = ctypes.c_float if a.dtype == np.float32 else ctypes.c_double
    return ctypes.cast(a.ctypes.data + offset * a.dtype.itemsize, ctypes.POINTER(ctype))


def sytrd_lower(G, overwrite=False):
    """Householder tridiagonalisation ``G = Q T Q^T`` of a symmetric matrix.

    Returns ``(c, d, e, tau)`` as ``scipy.linalg.lapack.?sytrd(G, lower=1)`` does:
    ``c`` (Fortran order) holds the reflectors below the subdiagonal, ``d`` and
    ``e`` the diagonal and subdiagonal of ``T``. ``G`` is not modified unless
    ``overwrite``; then a C-ordered ``G`` is factorised in place as its transpose
    (the same matrix), without a copy.
    """
    dtype = G.dtype
    prefix = "s" if dtype == np.float32 else "d"
    n = G.shape[0]
    if overwrite and G.flags.c_contiguous:
        c = G.T
    elif overwrite and G.flags.f_contiguous:
        c = G
    else:
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


def ormtr_lower(c, tau, Z, transpose):
    """Overwrite the Fortran-ordered ``Z`` with ``Q^T Z`` (``transpose``) or ``Q Z``,
    ``Q`` from :func:`sytrd_lower`.

    ``?sytrd(lower)``'s reflectors are those of a QR factorisation of
    ``G[1:, :-1]``, so this is LAPACK ``?ormqr`` (blocked, three times faster than
    applying them one by one) on rows ``1:`` of ``Z``.
    """
    n, q = Z.shape
    if n < 2 or q == 0:
        return Z
    if not Z.flags.f_contiguous or Z.dtype != c.dtype:  # pragma: no cover - internal misuse
        raise ValueError("ormtr_lower needs a Fortran-ordered Z of the reflectors' dtype.")
    dtype = c.dtype
    ormqr = _routine(("s" if dtype == np.float32 else "d") + "ormqr")
    side, trans = ctypes.c_char(b"L"), ctypes.c_char(b"T" if transpose else b"N")
    rows, cols, refl = ctypes.c_int(n - 1), ctypes.c_int(q), ctypes.c_int(n - 1)
    lda, ldz, info = ctypes.c_int(c.shape[0]), ctypes.c_int(n), ctypes.c_int(0)
    below = _ptr(c, 1)      # c[1, 0] (Fortran order)
    z_below = _ptr(Z, 1)    # Z[1, 0]
    ref = ctypes.byref

    def call(work, lwork):
        ormqr(ref(side), ref(trans), ref(rows), ref(cols), ref(refl), below, ref(lda),
              _ptr(tau), z_below, ref(ldz), _ptr(work), ref(lwork), ref(info))

    query = np.empty(1, dtype=dtype)
    call(query, ctypes.c_int(-1))
    work = np.empty(max(int(query[0]), 1), dtype=dtype)
    call(work, ctypes.c_int(work.size))
    if info.value != 0:  # pragma: no cover - LAPACK argument errors only
        raise np.linalg.LinAlgError(f"?ormqr failed (info={info.value}).")
    return Z
