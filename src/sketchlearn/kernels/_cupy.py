"""CuPy kernels for kernel sums on the GPU (imported only when a CuPy array arrives).

Each thread owns one row x_i and streams tiles of Y through shared memory, so a
kernel sum K(X, Y) @ V needs O((n + m) d) device memory. Values are computed in
double precision whatever the input dtype, as on the CPU.

Every CUDA module of the package lists what it compiles in ``cuda_sources()``
(:class:`CudaSource` records) and builds its ``RawModule`` from those records with
:func:`compile_source`, so CI compiles exactly the sources that run, with NVRTC and
without a GPU (``tests/test_cuda_sources.py``). Listing them needs no CuPy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

from .._cuda import CUDA_OPTIONS, CudaSource, compile_source
from ._kernels import (
    GAUSSIAN,
    IMQ,
    MATERN,
    MATERN_HALF,
    MATERN_QUAD_CUTOFF,
    MATERN_QUAD_PEAK,
    MATERN_QUAD_STEP,
    MATERN_TINY_T,
    RIESZ,
    SINC,
    matern_half_coefficients,
)
from ._reference import kernel_matrix_reference, kernel_matvec_reference

_THREADS = 128
_COLUMNS_PER_PASS = 4
_SHARED_BYTES = 48 * 1024
_MAX_HALF = 21

_DEFINES = f"""
#define GAUSSIAN {GAUSSIAN}
#define MATERN_HALF {MATERN_HALF}
#define MATERN {MATERN}
#define IMQ {IMQ}
#define SINC {SINC}
#define RIESZ {RIESZ}
#define MAX_HALF {_MAX_HALF}
#define QUAD_STEP {MATERN_QUAD_STEP!r}
#define QUAD_PEAK {MATERN_QUAD_PEAK!r}
#define TINY_T {MATERN_TINY_T!r}
#define QUAD_CUTOFF {MATERN_QUAD_CUTOFF!r}
#define COLS {_COLUMNS_PER_PASS}
"""

_SOURCE = _DEFINES + r"""
__device__ double matern_general(double t, double nu, double log_const) {
    // Same quadrature and stopping rule as _kernels.matern_quadrature_nodes.
    if (t <= 0.0) return 1.0;
    t = fmax(t, TINY_T);
    const double step = fmin(QUAD_STEP, QUAD_PEAK / sqrt(hypot(t, nu)));
    const double peak = asinh(nu / t);
    const double log_scale = fmax(0.0, nu * (log(2.0 * nu / t) - 1.0));
    double total = 0.0;
    for (int k = 0; ; ++k) {
        const double s = k * step, x = nu * s, h = sinh(0.5 * s);
        const double log_term = x + log1p(exp(-2.0 * x)) - log(2.0) - 2.0 * t * h * h - log_scale;
        total += (k == 0 ? 0.5 : 1.0) * exp(log_term);
        if (s > peak && total > 0.0 && log_term < log(total) - QUAD_CUTOFF) break;
    }
    return exp(log_const + nu * log(t) - t + log_scale + log(total * step));
}

template <typename T>
__device__ double kernel_value(const T* x, const double* y, int d, int ncomp,
                               const long long* codes, const double* params,
                               const double* weights, const double* half) {
    double sq = 0.0;
    for (int t = 0; t < d; ++t) { double diff = (double)x[t] - y[t]; sq += diff * diff; }
    double out = 0.0;
    for (int c = 0; c < ncomp; ++c) {
        const double nu = params[4 * c + 1], a = params[4 * c + 2], b = params[4 * c + 3];
        double value;
        switch ((int)codes[c]) {
        case GAUSSIAN: value = exp(-a * sq); break;
        case MATERN_HALF: {
            double r = a * sqrt(sq);
            int p = (int)b;
            double poly = half[p * MAX_HALF + p];
            for (int q = p - 1; q >= 0; --q) poly = poly * r + half[p * MAX_HALF + q];
            value = exp(-r) * poly; break; }
        case MATERN: value = matern_general(a * sqrt(sq), nu, b); break;
        case IMQ: value = pow(1.0 + a * sq, -nu); break;
        case SINC: {
            value = 1.0;
            for (int t = 0; t < d; ++t) {
                double u = a * ((double)x[t] - y[t]);
                if (u != 0.0) value *= sin(u) / u;
            }
            break; }
        case RIESZ: value = -pow(a * sqrt(sq), nu); break;
        default: value = nan("");
        }
        out += weights[c] * value;
    }
    return out;
}

template <typename T>
__global__ void matvec(const T* __restrict__ X, const T* __restrict__ Y,
                       const double* __restrict__ V, const long long* __restrict__ codes,
                       const double* __restrict__ params, const double* __restrict__ weights,
                       const double* __restrict__ half, int ncomp, long long n, long long m,
                       int d, int k, int tile, double* __restrict__ out) {
    extern __shared__ double ytile[];
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int c0 = blockIdx.y * COLS;
    double acc[COLS];
    for (int c = 0; c < COLS; ++c) acc[c] = 0.0;
    for (long long j0 = 0; j0 < m; j0 += tile) {
        const int rows = (int)min((long long)tile, m - j0);
        for (int idx = threadIdx.x; idx < rows * d; idx += blockDim.x)
            ytile[idx] = (double)Y[j0 * d + idx];
        __syncthreads();
        if (i < n) {
            for (int jj = 0; jj < rows; ++jj) {
                double v = kernel_value<T>(X + i * d, ytile + jj * d, d, ncomp, codes, params,
                                           weights, half);
                for (int c = 0; c < COLS; ++c)
                    if (c0 + c < k) acc[c] += v * V[(j0 + jj) * k + c0 + c];
            }
        }
        __syncthreads();
    }
    if (i < n)
        for (int c = 0; c < COLS; ++c)
            if (c0 + c < k) out[i * k + c0 + c] = acc[c];
}

template <typename T>
__global__ void matrix(const T* __restrict__ X, const T* __restrict__ Y,
                       const long long* __restrict__ codes, const double* __restrict__ params,
                       const double* __restrict__ weights, const double* __restrict__ half,
                       int ncomp, long long n, long long m, int d, double* __restrict__ out) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * m) return;
    const long long i = idx / m, j = idx % m;
    // A local copy of Y[j] in double (callers route d > 64 to the reference path).
    double buf[64];
    if (d <= 64) {
        for (int t = 0; t < d; ++t) buf[t] = (double)Y[j * d + t];
        out[idx] = kernel_value<T>(X + i * d, buf, d, ncomp, codes, params, weights, half);
    } else {
        out[idx] = nan("");
    }
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, both dtypes as templates."""
    names = tuple(f"{fn}<{t}>" for fn in ("matvec", "matrix") for t in ("float", "double"))
    return [CudaSource("kernels", _SOURCE, CUDA_OPTIONS, names, _THREADS)]


@lru_cache(maxsize=1)
def _module():
    (source,) = cuda_sources()
    return compile_source(source)


def _device_spec(kernel):
    """The kernel's numeric description on the device, built once per kernel: KT-SWAP
    asks for it at every slot (the Matern table alone took 157 us and four copies)."""
    codes, params, weights = kernel.spec()
    return _device_spec_cached(codes.tobytes(), np.ascontiguousarray(params).tobytes(),
                               weights.tobytes())


@lru_cache(maxsize=1)
def _device_half_table():
    half = np.zeros((_MAX_HALF, _MAX_HALF))
    for p in range(_MAX_HALF):
        half[p, : p + 1] = matern_half_coefficients(p)
    return cupy.asarray(half)


@lru_cache(maxsize=64)
def _device_spec_cached(codes, params, weights):
    codes = np.frombuffer(codes, dtype=np.int64)
    params = np.frombuffer(params, dtype=np.float64).reshape(codes.shape[0], -1)
    weights = np.frombuffer(weights, dtype=np.float64)
    return (cupy.asarray(codes), cupy.asarray(params), cupy.asarray(weights),
            _device_half_table(), int(codes.shape[0]))


def _ctype(X):
    return "float" if X.dtype == cupy.float32 else "double"


def _real(X):
    """``X`` as float32 or float64, the two instances compiled (float16 or integers
    would be misread); C-contiguous."""
    X = cupy.asarray(X)
    return cupy.ascontiguousarray(
        X, dtype=X.dtype if X.dtype in (cupy.float32, cupy.float64) else cupy.float64)


def kernel_matvec(xp, X, Y, V, kernel):
    """K(X, Y) @ V on the GPU; O((n + m) d) memory."""
    d = X.shape[1]
    tile = min(256, _SHARED_BYTES // (8 * d)) if d else 256
    if tile < 1:  # a single row of Y does not fit in shared memory
        return kernel_matvec_reference(xp, X, Y, V, kernel)
    X = _real(X)
    Y = cupy.ascontiguousarray(Y, dtype=X.dtype)
    V = cupy.ascontiguousarray(V, dtype=cupy.float64)
    n, m, k = X.shape[0], Y.shape[0], V.shape[1]
    out = cupy.zeros((n, k), dtype=cupy.float64)
    codes, params, weights, half, ncomp = _device_spec(kernel)
    fn = _module().get_function(f"matvec<{_ctype(X)}>")
    grid = ((n + _THREADS - 1) // _THREADS, (k + _COLUMNS_PER_PASS - 1) // _COLUMNS_PER_PASS)
    fn(grid, (_THREADS,),
       (X, Y, V, codes, params, weights, half, np.int32(ncomp), np.int64(n), np.int64(m),
        np.int32(d), np.int32(k), np.int32(tile), out),
       shared_mem=tile * d * 8)
    return out.astype(X.dtype, copy=False)


def kernel_matrix(xp, X, Y, kernel):
    """The full kernel matrix on the GPU (one thread per entry)."""
    d = X.shape[1]
    if d > 64:
        return kernel_matrix_reference(xp, X, Y, kernel)
    X = _real(X)
    Y = cupy.ascontiguousarray(Y, dtype=X.dtype)
    n, m = X.shape[0], Y.shape[0]
    out = cupy.empty((n, m), dtype=cupy.float64)
    codes, params, weights, half, ncomp = _device_spec(kernel)
    fn = _module().get_function(f"matrix<{_ctype(X)}>")
    total = n * m
    fn(((total + _THREADS - 1) // _THREADS,), (_THREADS,),
       (X, Y, codes, params, weights, half, np.int32(ncomp), np.int64(n), np.int64(m),
        np.int32(d), out))
    return out.astype(X.dtype, copy=False)
