"""CuPy versions of the sketching kernels (imported only when a CuPy array arrives)."""

from __future__ import annotations

import cupy
import cupyx
import cupyx.scipy.fft as cufft


def scatter_add_rows(xp, idx, weights, V, n_out):
    """``out[idx[i]] += weights[i] * V[i]`` on the GPU (atomic adds via ``cupyx.scatter_add``)."""
    V = cupy.asarray(V)
    idx = cupy.asarray(idx, dtype=cupy.int64)
    w = cupy.asarray(weights, dtype=V.dtype)
    out = cupy.zeros((n_out, V.shape[1]), dtype=V.dtype)
    if V.shape[0]:
        cupyx.scatter_add(out, idx, w[:, None] * V)
    return out


def dct_ortho(xp, X, inverse=False):
    """Orthonormal DCT-II (or its inverse, DCT-III) along axis 0 on the GPU."""
    if inverse:
        return cufft.idct(X, type=2, norm="ortho", axis=0)
    return cufft.dct(X, type=2, norm="ortho", axis=0)
