"""CuPy kernels for kernel sums on the GPU (imported only when a CuPy array arrives).

Each thread owns one row x_i and streams tiles of Y through shared memory, so a
kernel sum K(X, Y) @ V needs O((n + m) d) device memory; each kernel value is
computed once and applied to up to 32 columns of V (accumulators in shared memory).
Values are computed in double precision whatever the input dtype, as on the CPU;
float16 and integer inputs are cast to float64 before the call. The device functions
``kernel_values`` / ``kernel_value`` (templates on the point types, any d, strided
coordinates) are shared with the thinning kernels (``thinning/_cupy.py``).

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

from .._cuda import CUDA_OPTIONS, CudaSource, single_module
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
from ._reference import kernel_matvec_reference

_THREADS = 128
# Columns of V per pass of matvec (accumulators in shared memory: 1 KiB per column).
_MAX_COLUMNS = 32
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

template <typename TX, typename TY>
__device__ double kernel_values(const TX* x, const TY* y, int ystride, int d, int ncomp,
                                const long long* codes, const double* params,
                                const double* weights, const double* tweights,
                                const double* half, double* tvalue) {
    // k(x, y) = sum_c weights[c] k_c(x, y); with tweights, also *tvalue = sum_c
    // tweights[c] k_c(x, y) from the same component values. x is contiguous, the
    // coordinates of y are ystride apart (1: a row; n: a column of a (d, n) array).
    double sq = 0.0;
    for (int t = 0; t < d; ++t) {
        const double diff = (double)x[t] - (double)y[(long long)t * ystride];
        sq += diff * diff;
    }
    double out = 0.0, tout = 0.0;
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
                double u = a * ((double)x[t] - (double)y[(long long)t * ystride]);
                if (u != 0.0) value *= sin(u) / u;
            }
            break; }
        case RIESZ: value = -pow(a * sqrt(sq), nu); break;
        default: value = nan("");
        }
        out += weights[c] * value;
        if (tweights != nullptr) tout += tweights[c] * value;
    }
    if (tweights != nullptr) *tvalue = tout;
    return out;
}

template <typename TX, typename TY>
__device__ double kernel_value(const TX* x, const TY* y, int ystride, int d, int ncomp,
                               const long long* codes, const double* params,
                               const double* weights, const double* half) {
    return kernel_values<TX, TY>(x, y, ystride, d, ncomp, codes, params, weights, nullptr,
                                 half, nullptr);
}

template <typename T>
__global__ void matvec(const T* __restrict__ X, const T* __restrict__ Y,
                       const double* __restrict__ V, const long long* __restrict__ codes,
                       const double* __restrict__ params, const double* __restrict__ weights,
                       const double* __restrict__ half, int ncomp, long long n, long long m,
                       int d, int k, int kc, int tile, double* __restrict__ out) {
    // Thread i owns row x_i and columns c0 .. c0 + kk - 1 of its output row (kc per
    // pass, blockIdx.y the pass): each k(x_i, y_j) is computed once per pass and
    // applied to all kk columns. Dynamic shared memory: the accumulators (kc per
    // thread, thread-minor so a warp's accesses hit 32 banks), then the tile's rows of
    // V (kc per row, read by every thread: a broadcast) and of Y (d per row).
    extern __shared__ double smem[];
    double* acc = smem;
    double* vtile = acc + (long long)kc * blockDim.x;
    double* ytile = vtile + (long long)tile * kc;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int c0 = blockIdx.y * kc;
    const int kk = min(kc, k - c0);
    for (int c = 0; c < kk; ++c) acc[c * blockDim.x + threadIdx.x] = 0.0;
    for (long long j0 = 0; j0 < m; j0 += tile) {
        const int rows = (int)min((long long)tile, m - j0);
        for (int idx = threadIdx.x; idx < rows * d; idx += blockDim.x)
            ytile[idx] = (double)Y[j0 * d + idx];
        for (int idx = threadIdx.x; idx < rows * kk; idx += blockDim.x) {
            const int jj = idx / kk, c = idx - jj * kk;
            vtile[idx] = V[(j0 + jj) * k + c0 + c];
        }
        __syncthreads();
        if (i < n) {
            for (int jj = 0; jj < rows; ++jj) {
                const double v = kernel_value<T, double>(X + i * d, ytile + jj * d, 1, d,
                                                         ncomp, codes, params, weights, half);
                for (int c = 0; c < kk; ++c)
                    acc[c * blockDim.x + threadIdx.x] += v * vtile[jj * kk + c];
            }
        }
        __syncthreads();
    }
    if (i < n)
        for (int c = 0; c < kk; ++c) out[i * k + c0 + c] = acc[c * blockDim.x + threadIdx.x];
}

template <typename T>
__global__ void matrix(const T* __restrict__ X, const T* __restrict__ Y,
                       const long long* __restrict__ codes, const double* __restrict__ params,
                       const double* __restrict__ weights, const double* __restrict__ half,
                       int ncomp, long long n, long long m, int d, double* __restrict__ out) {
    // One thread per entry, both rows read from global memory (any d).
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * m) return;
    const long long i = idx / m, j = idx % m;
    out[idx] = kernel_value<T, T>(X + i * d, Y + j * d, 1, d, ncomp, codes, params, weights,
                                  half);
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, both dtypes as templates."""
    names = tuple(f"{fn}<{t}>" for fn in ("matvec", "matrix") for t in ("float", "double"))
    return [CudaSource("kernels", _SOURCE, CUDA_OPTIONS, names, _THREADS)]


_module, _kernel = single_module(__name__)


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
    """``X`` as a C-contiguous CuPy array of float32 or float64, the two instances
    compiled: float16 and integer input is cast to float64 first (never misread)."""
    X = cupy.asarray(X)
    dtype = X.dtype if X.dtype in (cupy.float32, cupy.float64) else cupy.float64
    return cupy.ascontiguousarray(X.astype(dtype, copy=False))


def _matvec_layout(d, k):
    """(columns per pass, rows of Y per tile) for ``matvec``: as many columns as fit
    (at most ``_MAX_COLUMNS``: each kernel value is computed ceil(k / that) times),
    halved until a tile of at least one row fits; (0, 0) when none does."""
    kc = max(1, min(k, _MAX_COLUMNS))
    while True:
        rest = _SHARED_BYTES - 8 * kc * _THREADS
        tile = min(256, rest // (8 * (d + kc)))
        if tile >= 1:
            return kc, tile
        if kc == 1:
            return 0, 0
        kc //= 2


def kernel_matvec(xp, X, Y, V, kernel):
    """K(X, Y) @ V on the GPU; O((n + m) d) memory, each kernel value computed once for
    up to ``_MAX_COLUMNS`` columns of V."""
    d = X.shape[1]
    n, m, k = X.shape[0], Y.shape[0], V.shape[1]
    kc, tile = _matvec_layout(d, k)
    if kc == 0:  # a single row of Y does not fit in shared memory (d > ~6000)
        return kernel_matvec_reference(xp, X, Y, V, kernel)
    X = _real(X)
    Y = cupy.ascontiguousarray(cupy.asarray(Y).astype(X.dtype, copy=False))
    V = cupy.ascontiguousarray(cupy.asarray(V).astype(cupy.float64, copy=False))
    out = cupy.zeros((n, k), dtype=cupy.float64)
    if n == 0 or k == 0:
        return out.astype(X.dtype, copy=False)
    codes, params, weights, half, ncomp = _device_spec(kernel)
    fn = _kernel(f"matvec<{_ctype(X)}>")
    grid = ((n + _THREADS - 1) // _THREADS, (k + kc - 1) // kc)
    fn(grid, (_THREADS,),
       (X, Y, V, codes, params, weights, half, np.int32(ncomp), np.int64(n), np.int64(m),
        np.int32(d), np.int32(k), np.int32(kc), np.int32(tile), out),
       shared_mem=8 * (kc * _THREADS + tile * (kc + d)))
    return out.astype(X.dtype, copy=False)


def kernel_matrix_device(X, Y, spec):
    """K(X, Y) in float64 for C-contiguous float32/float64 ``X`` and ``Y`` of one dtype,
    with the device spec ``spec`` (``_device_spec``) already at hand (KT-SWAP's slots)."""
    codes, params, weights, half, ncomp = spec
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    out = cupy.empty((n, m), dtype=cupy.float64)
    total = n * m
    if total == 0:
        return out
    fn = _kernel(f"matrix<{_ctype(X)}>")
    fn(((total + _THREADS - 1) // _THREADS,), (_THREADS,),
       (X, Y, codes, params, weights, half, np.int32(ncomp), np.int64(n), np.int64(m),
        np.int32(d), out))
    return out


def kernel_matrix(xp, X, Y, kernel):
    """The full kernel matrix on the GPU (one thread per entry, any d)."""
    X = _real(X)
    Y = cupy.ascontiguousarray(cupy.asarray(Y).astype(X.dtype, copy=False))
    out = kernel_matrix_device(X, Y, _device_spec(kernel))
    return out.astype(X.dtype, copy=False)
