"""CuPy versions of the sketching kernels (imported only when a CuPy array arrives).

The Walsh-Hadamard transform is a CUDA module (``cuda_sources()``): the first levels
of the butterfly run in shared memory, a tile of consecutive rows per block (one read
and one write of the matrix for up to 12 levels), the remaining levels as passes over
the matrix two levels at a time. Each output is formed by the additions of the
reference, in the same order and the input's precision, so the result is the
reference's bit for bit (barring float32 subnormals, which CuPy flushes to zero).
"""

from __future__ import annotations

import math

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, single_module

try:
    import cupy
    import cupyx
    import cupyx.scipy.fft as cufft
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = cupyx = cufft = None

_THREADS = 256
# Elements of a shared-memory tile (rows x columns): 32 KiB in float64.
_TILE_ELEMENTS = 4096
# Columns of a tile at most (a warp's loads of a row are then contiguous).
_TILE_COLUMNS = 32

_SOURCE = r"""
// Levels h = 1, 2, ..., tile / 2 of the transform on tiles of `tile` consecutive rows
// and `cols` consecutive columns of X (N x q, row-major), in shared memory; the tile
// is (row, column) row-major there too. `last`: these are the transform's last levels,
// so the outputs are divided by s = sqrt(N).
template <typename T>
__global__ void fwht_tile(T* __restrict__ X, long long q, int tile, int cols, int last,
                          T s) {
    extern __shared__ __align__(16) unsigned char smem[];
    T* sh = reinterpret_cast<T*>(smem);
    const long long row0 = (long long)blockIdx.x * tile;
    const long long col0 = (long long)blockIdx.y * cols;
    const int width = (int)min((long long)cols, q - col0);
    const int size = tile * width;
    for (int l = threadIdx.x; l < size; l += blockDim.x) {
        const int r = l / width, c = l - r * width;
        sh[l] = X[(row0 + r) * q + col0 + c];
    }
    __syncthreads();
    const int pairs = (tile / 2) * width;
    for (int h = 1; h < tile; h *= 2) {
        for (int u = threadIdx.x; u < pairs; u += blockDim.x) {
            const int c = u % width, pair = u / width;
            const int i = (pair / h) * 2 * h + pair % h;
            const T a = sh[i * width + c], b = sh[(i + h) * width + c];
            sh[i * width + c] = a + b;
            sh[(i + h) * width + c] = a - b;
        }
        __syncthreads();
    }
    for (int l = threadIdx.x; l < size; l += blockDim.x) {
        const int r = l / width, c = l - r * width;
        X[(row0 + r) * q + col0 + c] = last ? sh[l] / s : sh[l];
    }
}

// Levels h and 2h over the whole matrix: each thread owns rows i, i + h, i + 2h, i + 3h
// of one column (i = b 4h + r, r < h), columns fastest across threads.
template <typename T>
__global__ void fwht_pass4(T* __restrict__ X, long long N, long long q, long long h,
                           int last, T s) {
    const long long total = (N / 4) * q;
    for (long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x; u < total;
         u += (long long)gridDim.x * blockDim.x) {
        const long long c = u % q, g = u / q;
        const long long i = (g / h) * 4 * h + g % h;
        T* x0 = X + i * q + c;
        T* x1 = x0 + h * q;
        T* x2 = x1 + h * q;
        T* x3 = x2 + h * q;
        const T y0 = *x0 + *x1, y1 = *x0 - *x1, y2 = *x2 + *x3, y3 = *x2 - *x3;
        const T z0 = y0 + y2, z1 = y1 + y3, z2 = y0 - y2, z3 = y1 - y3;
        *x0 = last ? z0 / s : z0;
        *x1 = last ? z1 / s : z1;
        *x2 = last ? z2 / s : z2;
        *x3 = last ? z3 / s : z3;
    }
}

// Level h over the whole matrix (the last level when log2 N is odd past the tiles).
template <typename T>
__global__ void fwht_pass2(T* __restrict__ X, long long N, long long q, long long h,
                           int last, T s) {
    const long long total = (N / 2) * q;
    for (long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x; u < total;
         u += (long long)gridDim.x * blockDim.x) {
        const long long c = u % q, g = u / q;
        const long long i = (g / h) * 2 * h + g % h;
        T* x0 = X + i * q + c;
        T* x1 = x0 + h * q;
        const T a = *x0, b = *x1;
        *x0 = last ? (a + b) / s : a + b;
        *x1 = last ? (a - b) / s : a - b;
    }
}
"""

_KERNELS = ("fwht_tile", "fwht_pass4", "fwht_pass2")


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, the transform's kernels for
    float and double."""
    names = tuple(f"{fn}<{t}>" for fn in _KERNELS for t in ("float", "double"))
    return [CudaSource("sketching", _SOURCE, CUDA_OPTIONS, names, _THREADS)]


_module, _function = single_module(__name__)


def _grid(work):
    return (max(1, min((work + _THREADS - 1) // _THREADS, 65535)),)


def fwht(xp, X):
    """Orthonormal Walsh-Hadamard transform along axis 0 on the GPU (CuPy version of
    :func:`sketchlearn.sketching._core.fwht_reference`): ``X`` has ``N = 2^L`` rows;
    returns ``H X / sqrt(N)`` as a new C-contiguous array (float32 stays float32,
    anything else is computed in float64)."""
    X = cupy.asarray(X)
    dtype = cupy.float32 if X.dtype == cupy.float32 else cupy.float64
    Y = cupy.array(X, dtype=dtype, order="C", copy=True)  # the kernels work in place
    N, q = Y.shape
    if N <= 1 or q == 0:
        return Y
    if N & (N - 1):
        raise ValueError(f"fwht needs a power-of-two number of rows, got {N}.")
    ctype = "float" if dtype == cupy.float32 else "double"
    scalar = np.float32 if dtype == cupy.float32 else np.float64
    s = scalar(math.sqrt(N))
    cols = min(q, _TILE_COLUMNS)
    tile = min(N, 1 << int(math.log2(_TILE_ELEMENTS // cols)))
    if tile > 1:
        grid = (N // tile, (q + cols - 1) // cols)
        _function(f"fwht_tile<{ctype}>")(
            grid, (_THREADS,),
            (Y, np.int64(q), np.int32(tile), np.int32(cols), np.int32(tile == N), s),
            shared_mem=tile * cols * Y.itemsize)
    h = tile
    while h < N:
        if 4 * h <= N:
            _function(f"fwht_pass4<{ctype}>")(
                _grid((N // 4) * q), (_THREADS,),
                (Y, np.int64(N), np.int64(q), np.int64(h), np.int32(4 * h == N), s))
            h *= 4
        else:
            _function(f"fwht_pass2<{ctype}>")(
                _grid((N // 2) * q), (_THREADS,),
                (Y, np.int64(N), np.int64(q), np.int64(h), np.int32(2 * h == N), s))
            h *= 2
    return Y


def scatter_add_rows(xp, idx, weights, V, n_out):
    """``out[idx[i]] += weights[i] * V[i]`` on the GPU (atomic adds via ``cupyx.scatter_add``)."""
    V = cupy.asarray(V)
    idx = cupy.asarray(idx).astype(cupy.int64, copy=False)
    w = cupy.asarray(weights).astype(V.dtype, copy=False)
    out = cupy.zeros((n_out, V.shape[1]), dtype=V.dtype)
    if V.shape[0]:
        cupyx.scatter_add(out, idx, w[:, None] * V)
    return out


def dct_ortho(xp, X, inverse=False):
    """Orthonormal DCT-II (or its inverse, DCT-III) along axis 0 on the GPU."""
    if inverse:
        return cufft.idct(X, type=2, norm="ortho", axis=0)
    return cufft.dct(X, type=2, norm="ortho", axis=0)
