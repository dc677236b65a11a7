"""CuPy kernels of Sinkhorn (imported only when a CuPy array arrives).

Log-sum-exp rows: one CUDA block per row, a block-wide max reduction, then a
block-wide sum of the shifted exponentials, in double precision. The on-the-fly
kernel recomputes the costs ``||x_i - y_j||^power`` in both passes instead of
storing them. The scaling domain's elementwise steps: the absorbed Gibbs kernel
(one thread per entry) and the plan built from it in place (one block per row, with
the row's cost and mass reduced on the way).

One module, compiled once; every kernel a C++ template over the input type (float,
double), its instances named.
"""

from __future__ import annotations

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, single_module

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 256

_SOURCE = r"""
template <typename T>
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

// Sum of red[0 .. blockDim.x) into red[0] (blockDim.x a power of two); every thread
// of the block calls it.
__device__ void block_sum(double* red) {
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
}

template <typename T>
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
    block_sum(red);
    if (threadIdx.x == 0) out[i] = isfinite(mx) ? mx + reg * log(red[0]) : mx;
}

template <typename T>
__global__ void lse_rows(const T* __restrict__ C, const double* __restrict__ h,
                         double* __restrict__ out, long long n, long long m, double reg) {
    lse_row<T>(C, nullptr, nullptr, h, out, n, m, 0, reg, 1.0, false);
}

template <typename T>
__global__ void lse_points(const T* __restrict__ X, const T* __restrict__ Y,
                           const double* __restrict__ h, double* __restrict__ out,
                           long long n, long long m, int d, double reg, double power) {
    lse_row<T>(nullptr, X, Y, h, out, n, m, d, reg, power, true);
}

// K[i, j] = exp((f[i] + g[j] - C[i, j]) / eps), in the reference's order of operations;
// one thread per entry (grid-stride).
template <typename T>
__global__ void gibbs(const T* __restrict__ C, const double* __restrict__ f,
                      const double* __restrict__ g, long long n, long long m, double eps,
                      double* __restrict__ K) {
    const long long total = n * m;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const long long i = idx / m, j = idx - i * m;
        K[idx] = exp((f[i] + g[j] - (double)C[idx]) / eps);
    }
}

// K[i, j] <- (K[i, j] u[i]) v[j] in place (the plan), row_cost[i] = sum_j P[i, j] C[i, j],
// row_sum[i] = sum_j P[i, j]: one block per row.
template <typename T>
__global__ void plan_from_kernel(double* __restrict__ K, const double* __restrict__ u,
                                 const double* __restrict__ v, const T* __restrict__ C,
                                 long long n, long long m, double* __restrict__ row_cost,
                                 double* __restrict__ row_sum) {
    __shared__ double red[THREADS];
    const long long i = blockIdx.x;
    if (i >= n) return;
    const double ui = u[i];
    double cost = 0.0, mass = 0.0;
    for (long long j = threadIdx.x; j < m; j += blockDim.x) {
        const double p = K[i * m + j] * ui * v[j];
        K[i * m + j] = p;
        cost += p * (double)C[i * m + j];
        mass += p;
    }
    red[threadIdx.x] = cost;
    block_sum(red);
    if (threadIdx.x == 0) row_cost[i] = red[0];
    __syncthreads();
    red[threadIdx.x] = mass;
    block_sum(red);
    if (threadIdx.x == 0) row_sum[i] = red[0];
}
"""

_KERNELS = ("lse_rows", "lse_points", "gibbs", "plan_from_kernel")


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, each kernel instantiated for
    float and double."""
    names = tuple(f"{fn}<{t}>" for fn in _KERNELS for t in ("float", "double"))
    return [CudaSource("transport.sinkhorn", f"#define THREADS {_THREADS}\n" + _SOURCE,
                       CUDA_OPTIONS, names, _THREADS)]


_module, _function = single_module(__name__)


def _kernel(name, A):
    return _function(f"{name}<{'float' if A.dtype == cupy.float32 else 'double'}>")


def _real(A, dtype=None):
    """``A`` on the device as ``dtype`` (default: float32 stays, anything else becomes
    float64), C-contiguous: the two instances compiled."""
    A = cupy.asarray(A)
    if dtype is None:
        dtype = cupy.float32 if A.dtype == cupy.float32 else cupy.float64
    return cupy.ascontiguousarray(A.astype(dtype, copy=False))


def lse_rows(xp, C, h, reg):
    """See :func:`._sinkhorn_ops._lse_rows_reference`."""
    C = _real(C)
    h = _real(h, cupy.float64)
    n, m = C.shape
    out = cupy.empty(n, dtype=cupy.float64)
    if n:
        _kernel("lse_rows", C)((n,), (_THREADS,),
                               (C, h, out, np.int64(n), np.int64(m), np.float64(reg)))
    return out


def lse_points(xp, X, Y, h, reg, power):
    """See :func:`._sinkhorn_ops._lse_points_reference`."""
    dtype = cupy.float32 if (X.dtype == cupy.float32 and Y.dtype == cupy.float32) \
        else cupy.float64
    X = _real(X, dtype)
    Y = _real(Y, dtype)
    h = _real(h, cupy.float64)
    n, d = X.shape
    m = Y.shape[0]
    out = cupy.empty(n, dtype=cupy.float64)
    if n:
        _kernel("lse_points", X)((n,), (_THREADS,),
                                 (X, Y, h, out, np.int64(n), np.int64(m), np.int32(d),
                                  np.float64(reg), np.float64(power)))
    return out


def gibbs(xp, C, f, g, eps):
    """See :func:`._sinkhorn_scaling._gibbs_reference`: ``exp((f_i + g_j - C_ij) / eps)``
    in float64."""
    C = _real(C)
    f, g = _real(f, cupy.float64), _real(g, cupy.float64)
    n, m = C.shape
    K = cupy.empty((n, m), dtype=cupy.float64)
    total = n * m
    if total:
        blocks = min((total + _THREADS - 1) // _THREADS, 65535)
        _kernel("gibbs", C)((blocks,), (_THREADS,),
                            (C, f, g, np.int64(n), np.int64(m), np.float64(eps), K))
    return K


def plan_from_kernel(xp, K, u, v, C):
    """See :func:`._sinkhorn_scaling._plan_from_kernel_reference`: ``K`` overwritten with
    ``diag(u) K diag(v)`` (a C-contiguous float64 ``K``; any other is converted first and
    the converted copy is the plan), ``<P, C>`` and ``P 1``."""
    if not (isinstance(K, cupy.ndarray) and K.dtype == cupy.float64
            and K.flags.c_contiguous):
        K = _real(K, cupy.float64)
    C = _real(C)
    u, v = _real(u, cupy.float64), _real(v, cupy.float64)
    n, m = K.shape
    row_cost = cupy.zeros(n, dtype=cupy.float64)
    row_sum = cupy.zeros(n, dtype=cupy.float64)
    if n:
        _kernel("plan_from_kernel", C)((n,), (_THREADS,),
                                       (K, u, v, C, np.int64(n), np.int64(m), row_cost,
                                        row_sum))
    return K, float(cupy.sum(row_cost)), row_sum
