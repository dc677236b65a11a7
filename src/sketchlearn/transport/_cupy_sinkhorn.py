"""CuPy log-sum-exp kernels of Sinkhorn (imported only when a CuPy array arrives).

One CUDA block per row: a block-wide max reduction, then a block-wide sum of the
shifted exponentials, in double precision. The on-the-fly kernel recomputes the
costs ``||x_i - y_j||^power`` in both passes instead of storing them.
"""

from __future__ import annotations

from functools import cache

from .._cuda import CUDA_OPTIONS, CudaSource, compile_source

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 256

_SOURCE = r"""
template<typename T>
__device__ double cost_at(const T* C, const T* X, const T* Y, long long i, long long j,
                          long long m, int d, double power, bool points) {
    if (!points) return (double)C[i * m + j];
    double sq = 0.0;
    for (int t = 0; t < d; ++t) {
        const double diff = (double)X[i * d + t] - (double)Y[j * d + t];
        sq += diff * diff;
    }
    if (power == 2.0) return sq;
    if (power == 1.0) return sqrt(sq);
    return pow(sqrt(sq), power);
}

template<typename T>
__device__ void lse_row(const T* C, const T* X, const T* Y, const double* h, double* out,
                        long long n, long long m, int d, double reg, double power,
                        bool points) {
    __shared__ double red[THREADS];
    const long long i = blockIdx.x;
    if (i >= n) return;
    // -inf from its bits: NVRTC has no INFINITY / CUDART_INF without headers, and
    // <math_constants.h> is missing where CuPy came from pip alone.
    double mx = __longlong_as_double(0xfff0000000000000LL);
    for (long long j = threadIdx.x; j < m; j += blockDim.x) {
        const double z = h[j] - cost_at<T>(C, X, Y, i, j, m, d, power, points);
        mx = fmax(mx, z);
    }
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    mx = red[0];
    __syncthreads();
    double acc = 0.0;
    if (isfinite(mx)) {
        for (long long j = threadIdx.x; j < m; j += blockDim.x) {
            const double z = h[j] - cost_at<T>(C, X, Y, i, j, m, d, power, points);
            acc += exp((z - mx) / reg);
        }
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[i] = isfinite(mx) ? mx + reg * log(red[0]) : mx;
}

extern "C" __global__ void lse_rows_f64(const double* C, const double* h, double* out,
                                        long long n, long long m, double reg) {
    lse_row<double>(C, nullptr, nullptr, h, out, n, m, 0, reg, 1.0, false);
}
extern "C" __global__ void lse_rows_f32(const float* C, const double* h, double* out,
                                        long long n, long long m, double reg) {
    lse_row<float>(C, nullptr, nullptr, h, out, n, m, 0, reg, 1.0, false);
}
extern "C" __global__ void lse_points_f64(const double* X, const double* Y, const double* h,
                                          double* out, long long n, long long m, int d,
                                          double reg, double power) {
    lse_row<double>(nullptr, X, Y, h, out, n, m, d, reg, power, true);
}
extern "C" __global__ void lse_points_f32(const float* X, const float* Y, const double* h,
                                          double* out, long long n, long long m, int d,
                                          double reg, double power) {
    lse_row<float>(nullptr, X, Y, h, out, n, m, d, reg, power, true);
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, its four ``extern "C"``
    kernels (rows and points, float32 and float64)."""
    return [CudaSource("transport.sinkhorn", f"#define THREADS {_THREADS}\n" + _SOURCE,
                       CUDA_OPTIONS, (), _THREADS)]


@cache
def _module():
    (source,) = cuda_sources()
    return compile_source(source)


@cache
def _kernel(name):
    return _module().get_function(name)


def _suffix(A):
    return "f32" if A.dtype == cupy.float32 else "f64"


def lse_rows(xp, C, h, reg):
    """See :func:`._sinkhorn_ops._lse_rows_reference`."""
    C = cupy.ascontiguousarray(C)
    if C.dtype not in (cupy.float32, cupy.float64):
        C = C.astype(cupy.float64)
    h = cupy.ascontiguousarray(h, dtype=cupy.float64)
    n, m = C.shape
    out = cupy.empty(n, dtype=cupy.float64)
    _kernel("lse_rows_" + _suffix(C))((n,), (_THREADS,),
                                      (C, h, out, cupy.int64(n), cupy.int64(m),
                                       cupy.float64(reg)))
    return out


def lse_points(xp, X, Y, h, reg, power):
    """See :func:`._sinkhorn_ops._lse_points_reference`."""
    dtype = cupy.float32 if (X.dtype == cupy.float32 and Y.dtype == cupy.float32) \
        else cupy.float64
    X = cupy.ascontiguousarray(X, dtype=dtype)
    Y = cupy.ascontiguousarray(Y, dtype=dtype)
    h = cupy.ascontiguousarray(h, dtype=cupy.float64)
    n, d = X.shape
    m = Y.shape[0]
    out = cupy.empty(n, dtype=cupy.float64)
    _kernel("lse_points_" + _suffix(X))((n,), (_THREADS,),
                                        (X, Y, h, out, cupy.int64(n), cupy.int64(m),
                                         cupy.int32(d), cupy.float64(reg),
                                         cupy.float64(power)))
    return out
