"""CuPy kernels for linear stochastic approximation (imported only for CuPy arrays).

One GPU thread per chain: each thread walks its own stream sequentially, so a
batch of many independent chains (bootstrap ensembles, Richardson-Romberg pairs)
fills the device, while a single chain runs on one thread without a host round
trip per sample. The state is kept transposed, ``(p, K)``, so that the threads of
a warp touch consecutive addresses when they update coordinate ``q`` together.
The arithmetic is that of the reference: float64 state, data read as float32 or
float64 and widened.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, compile_source

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 128

_SOURCE = r"""
extern "C" __global__ void lsa_rank_one_DTYPE(
        const DTYPE* __restrict__ U, const DTYPE* __restrict__ V,
        const DTYPE* __restrict__ c, const long long* __restrict__ index,
        const long long n_steps, const int K, const int p,
        double* __restrict__ theta, double* __restrict__ avg,
        const long long t0, const double* __restrict__ steps, const long long burn_in,
        long long* __restrict__ status) {
    const int k = blockDim.x * blockIdx.x + threadIdx.x;
    if (k >= K) return;
    const long long* idx = index + (long long)k * n_steps;
    const double step = steps[k];
    long long st = -1;
    for (long long j = 0; j < n_steps; ++j) {
        const long long i = idx[j];
        const DTYPE* u = U + i * p;
        const DTYPE* v = V + i * p;
        double r = 0.0;
        for (int q = 0; q < p; ++q) {
            r += (double)v[q] * theta[(long long)q * K + k];
        }
        r -= (double)c[i];
        if (!isfinite(r)) {
            st = j;
            break;
        }
        const double g = step * r;
        for (int q = 0; q < p; ++q) {
            theta[(long long)q * K + k] -= g * (double)u[q];
        }
        const long long t = t0 + j + 1;
        if (t > burn_in) {
            const double m = (double)(t - burn_in);
            for (int q = 0; q < p; ++q) {
                const long long at = (long long)q * K + k;
                avg[at] += (theta[at] - avg[at]) / m;
            }
        }
    }
    if (st < 0 && n_steps > 0) {
        for (int q = 0; q < p; ++q) {
            if (!isfinite(theta[(long long)q * K + k])) {
                st = n_steps - 1;
                break;
            }
        }
    }
    status[k] = st;
}

extern "C" __global__ void lsa_dense_DTYPE(
        const DTYPE* __restrict__ A, const DTYPE* __restrict__ b,
        const long long* __restrict__ index, const long long n_steps, const int K,
        const int p, double* __restrict__ theta, double* __restrict__ avg,
        double* __restrict__ resid, const long long t0, const double* __restrict__ steps,
        const long long burn_in, long long* __restrict__ status) {
    const int k = blockDim.x * blockIdx.x + threadIdx.x;
    if (k >= K) return;
    const long long* idx = index + (long long)k * n_steps;
    const double step = steps[k];
    long long st = -1;
    for (long long j = 0; j < n_steps; ++j) {
        const long long i = idx[j];
        const DTYPE* Ai = A + i * p * p;
        const DTYPE* bi = b + i * p;
        bool finite = true;
        for (int a = 0; a < p; ++a) {
            double s = 0.0;
            for (int q = 0; q < p; ++q) {
                s += (double)Ai[(long long)a * p + q] * theta[(long long)q * K + k];
            }
            s -= (double)bi[a];
            resid[(long long)a * K + k] = s;
            if (!isfinite(s)) finite = false;
        }
        if (!finite) {
            st = j;
            break;
        }
        for (int a = 0; a < p; ++a) {
            theta[(long long)a * K + k] -= step * resid[(long long)a * K + k];
        }
        const long long t = t0 + j + 1;
        if (t > burn_in) {
            const double m = (double)(t - burn_in);
            for (int q = 0; q < p; ++q) {
                const long long at = (long long)q * K + k;
                avg[at] += (theta[at] - avg[at]) / m;
            }
        }
    }
    if (st < 0 && n_steps > 0) {
        for (int q = 0; q < p; ++q) {
            if (!isfinite(theta[(long long)q * K + k])) {
                st = n_steps - 1;
                break;
            }
        }
    }
    status[k] = st;
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module per data type."""
    return [CudaSource(f"linear_model[{ctype}]", _SOURCE.replace("DTYPE", ctype), CUDA_OPTIONS, (),
                       _THREADS) for ctype in ("float", "double")]


@lru_cache(maxsize=2)
def _module(ctype: str):
    (source,) = (s for s in cuda_sources() if s.label == f"linear_model[{ctype}]")
    return compile_source(source)


def _ctype(dtype) -> tuple:
    return ("float", cupy.float32) if dtype == cupy.float32 else ("double", cupy.float64)


def _prepare(theta, avg, index, steps):
    theta_t = cupy.ascontiguousarray(cupy.asarray(theta, dtype=cupy.float64).T)
    avg_t = cupy.ascontiguousarray(cupy.asarray(avg, dtype=cupy.float64).T)
    index = cupy.ascontiguousarray(cupy.asarray(index), dtype=cupy.int64)
    steps = cupy.ascontiguousarray(cupy.asarray(steps), dtype=cupy.float64)
    status = cupy.full(index.shape[0], -1, dtype=cupy.int64)
    return theta_t, avg_t, index, steps, status


def lsa_rank_one(xp, U, V, c, index, theta, avg, t0, steps, burn_in):
    """CuPy version of :func:`~sketchlearn.linear_model._lsa.lsa_rank_one_reference`."""
    ctype, dtype = _ctype(U.dtype)
    K, n_steps = index.shape
    p = U.shape[1]
    theta_t, avg_t, index, steps, status = _prepare(theta, avg, index, steps)
    fn = _module(ctype).get_function(f"lsa_rank_one_{ctype}")
    blocks = (K + _THREADS - 1) // _THREADS
    fn((blocks,), (_THREADS,),
       (cupy.ascontiguousarray(U, dtype=dtype), cupy.ascontiguousarray(V, dtype=dtype),
        cupy.ascontiguousarray(c, dtype=dtype), index, np.int64(n_steps), np.int32(K),
        np.int32(p), theta_t, avg_t, np.int64(t0), steps, np.int64(burn_in), status))
    return (cupy.ascontiguousarray(theta_t.T), cupy.ascontiguousarray(avg_t.T),
            cupy.asnumpy(status))


def lsa_dense(xp, A, b, index, theta, avg, t0, steps, burn_in):
    """CuPy version of :func:`~sketchlearn.linear_model._lsa.lsa_dense_reference`."""
    ctype, dtype = _ctype(A.dtype)
    K, n_steps = index.shape
    p = A.shape[1]
    theta_t, avg_t, index, steps, status = _prepare(theta, avg, index, steps)
    resid = cupy.empty((p, K), dtype=cupy.float64)
    fn = _module(ctype).get_function(f"lsa_dense_{ctype}")
    blocks = (K + _THREADS - 1) // _THREADS
    fn((blocks,), (_THREADS,),
       (cupy.ascontiguousarray(A, dtype=dtype), cupy.ascontiguousarray(b, dtype=dtype), index,
        np.int64(n_steps), np.int32(K), np.int32(p), theta_t, avg_t, resid, np.int64(t0),
        steps, np.int64(burn_in), status))
    return (cupy.ascontiguousarray(theta_t.T), cupy.ascontiguousarray(avg_t.T),
            cupy.asnumpy(status))
