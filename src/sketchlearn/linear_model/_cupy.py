"""CuPy kernels for linear stochastic approximation and iterative refinement
(imported only for CuPy arrays).

LSA: one GPU thread per chain: each thread walks its own stream sequentially, so a
batch of many independent chains (bootstrap ensembles, Richardson-Romberg pairs)
fills the device, while a single chain runs on one thread without a host round
trip per sample. The state is kept transposed, ``(p, K)``, and so are the sample
indices, ``(T, K)``, so that the threads of a warp touch consecutive addresses when
they read step ``j``'s samples or update coordinate ``q`` together. The arithmetic is
that of the reference: float64 state, data read as float32 or float64 and widened.

Refinement: the doubled-precision residuals of
:mod:`sketchlearn.linear_model._refinement` (compensated sums of exact products),
with every operation of the error-free transformations an IEEE-rounded intrinsic
(``__fma_rn``, ``__dadd_rn``, ``__dsub_rn``, ``__dmul_rn``): NVRTC contracts ``a * b
+ c`` into a fused multiply-add by default, which would break Knuth's TwoSum and the
compensation, but never rewrites an intrinsic.

Every kernel is a C++ template over the data type, or double only; one module.
"""

from __future__ import annotations

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, single_module

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 128

_SOURCE = r"""
template <typename T>
__global__ void lsa_rank_one(
        const T* __restrict__ U, const T* __restrict__ V,
        const T* __restrict__ c, const long long* __restrict__ index,
        const long long n_steps, const int K, const int p,
        double* __restrict__ theta, double* __restrict__ avg,
        const long long t0, const double* __restrict__ steps, const long long burn_in,
        long long* __restrict__ status) {
    // index is (n_steps, K): step j of chain k at index[j * K + k] (coalesced).
    const int k = blockDim.x * blockIdx.x + threadIdx.x;
    if (k >= K) return;
    const double step = steps[k];
    long long st = -1;
    for (long long j = 0; j < n_steps; ++j) {
        const long long i = index[j * K + k];
        const T* u = U + i * p;
        const T* v = V + i * p;
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

template <typename T>
__global__ void lsa_dense(
        const T* __restrict__ A, const T* __restrict__ b,
        const long long* __restrict__ index, const long long n_steps, const int K,
        const int p, double* __restrict__ theta, double* __restrict__ avg,
        double* __restrict__ resid, const long long t0, const double* __restrict__ steps,
        const long long burn_in, long long* __restrict__ status) {
    // index is (n_steps, K), as in lsa_rank_one.
    const int k = blockDim.x * blockIdx.x + threadIdx.x;
    if (k >= K) return;
    const double step = steps[k];
    long long st = -1;
    for (long long j = 0; j < n_steps; ++j) {
        const long long i = index[j * K + k];
        const T* Ai = A + i * p * p;
        const T* bi = b + i * p;
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

// ---- error-free transformations, every operation rounded on its own (no contraction)

// a + b = s + e exactly (Knuth's TwoSum).
__device__ __forceinline__ void two_sum(double a, double b, double& s, double& e) {
    s = __dadd_rn(a, b);
    const double bb = __dsub_rn(s, a);
    e = __dadd_rn(__dsub_rn(a, __dsub_rn(s, bb)), __dsub_rn(b, bb));
}

// a * b = p + e exactly (TwoProduct by one fused multiply-add).
__device__ __forceinline__ void two_prod(double a, double b, double& p, double& e) {
    p = __dmul_rn(a, b);
    e = __fma_rn(a, b, -p);
}

// F[i, j] = start[i, j] - sum_q A[i, q] X[q, j] in doubled precision (Dot2), rounded once:
// start = Y[i] - R[i] (as a TwoSum pair, m = 1) when has_y, else -R[i, j] (Y unread).
// One thread per entry of F, j fastest (R and F read and written coalesced). A (n, k),
// X (k, m), R and F (n, m), all row-major.
__global__ void row_residuals(const double* __restrict__ A, const double* __restrict__ X,
                              const double* __restrict__ Y, const double* __restrict__ R,
                              int has_y, long long n, int k, int m, double* __restrict__ F) {
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * m) return;
    const long long i = idx / m;
    const int j = (int)(idx - i * m);
    double s, c;
    if (has_y) {
        two_sum(Y[i], -R[idx], s, c);
    } else {
        s = -R[idx];
        c = 0.0;
    }
    const double* a = A + i * k;
    for (int q = 0; q < k; ++q) {
        double h, e, t, d;
        two_prod(a[q], -X[(long long)q * m + j], h, e);
        two_sum(s, h, t, d);
        s = t;
        c = __dadd_rn(c, __dadd_rn(d, e));
    }
    F[idx] = __dadd_rn(s, c);
}

// G[q, j] = S0[q, j] - sum_i A[i, q] R[i, j] in doubled precision, rounded once: one
// block per entry of G, its threads striding over the rows, each with a (sum, error)
// pair; the pairs are merged in a tree with TwoSum, then added to the start S0 (k, m).
__global__ void atr_residuals(const double* __restrict__ A, const double* __restrict__ R,
                              const double* __restrict__ S0, long long n, int k, int m,
                              double* __restrict__ G) {
    __shared__ double ss[THREADS];
    __shared__ double cs[THREADS];
    const long long out = blockIdx.x;  // q * m + j
    const int q = (int)(out / m);
    const int j = (int)(out - (long long)q * m);
    double s = 0.0, c = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        double h, e, t, d;
        two_prod(A[i * k + q], -R[i * m + j], h, e);
        two_sum(s, h, t, d);
        s = t;
        c = __dadd_rn(c, __dadd_rn(d, e));
    }
    ss[threadIdx.x] = s;
    cs[threadIdx.x] = c;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            double t, d;
            two_sum(ss[threadIdx.x], ss[threadIdx.x + half], t, d);
            ss[threadIdx.x] = t;
            cs[threadIdx.x] = __dadd_rn(__dadd_rn(cs[threadIdx.x], cs[threadIdx.x + half]), d);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double t, d;
        two_sum(S0[out], ss[0], t, d);
        G[out] = __dadd_rn(t, __dadd_rn(cs[0], d));
    }
}
"""

_TEMPLATES = ("lsa_rank_one", "lsa_dense")


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, the LSA kernels instantiated
    for float and double and the double-only refinement kernels, all named (their
    names are what ``get_function`` takes)."""
    names = tuple(f"{fn}<{t}>" for fn in _TEMPLATES for t in ("float", "double"))
    names += ("row_residuals", "atr_residuals")
    return [CudaSource("linear_model", f"#define THREADS {_THREADS}\n" + _SOURCE, CUDA_OPTIONS,
                       names, _THREADS)]


_module, _function = single_module(__name__)


def _ctype(dtype) -> tuple:
    """(C type, CuPy dtype) the data is read as: float32 stays, anything else float64."""
    return ("float", cupy.float32) if dtype == cupy.float32 else ("double", cupy.float64)


def _device(a, dtype):
    """``a`` on the device as a C-contiguous array of ``dtype`` (cast first)."""
    return cupy.ascontiguousarray(cupy.asarray(a).astype(dtype, copy=False))


def _steps_major(index):
    """The (K, T) chain index as (T, K) int64 on the device: chains fastest, so a warp's
    reads of one step are coalesced. A host index (the usual case) is transposed on the
    host, before its one copy to the device."""
    if isinstance(index, cupy.ndarray):
        return cupy.ascontiguousarray(index.astype(cupy.int64, copy=False).T)
    return cupy.asarray(np.ascontiguousarray(np.asarray(index, dtype=np.int64).T))


def _prepare(theta, avg, index, steps):
    theta_t = _device(theta, cupy.float64).T.copy()  # (p, K), C order
    avg_t = _device(avg, cupy.float64).T.copy()
    index_t = _steps_major(index)
    steps = _device(steps, cupy.float64)
    status = cupy.full(index_t.shape[1], -1, dtype=cupy.int64)
    return theta_t, avg_t, index_t, steps, status


def lsa_rank_one(xp, U, V, c, index, theta, avg, t0, steps, burn_in):
    """CuPy version of :func:`~sketchlearn.linear_model._lsa.lsa_rank_one_reference`."""
    ctype, dtype = _ctype(U.dtype)
    K, n_steps = index.shape
    p = U.shape[1]
    theta_t, avg_t, index_t, steps, status = _prepare(theta, avg, index, steps)
    if K:
        fn = _function(f"lsa_rank_one<{ctype}>")
        fn(((K + _THREADS - 1) // _THREADS,), (_THREADS,),
           (_device(U, dtype), _device(V, dtype), _device(c, dtype), index_t,
            np.int64(n_steps), np.int32(K), np.int32(p), theta_t, avg_t, np.int64(t0), steps,
            np.int64(burn_in), status))
    return (cupy.ascontiguousarray(theta_t.T), cupy.ascontiguousarray(avg_t.T),
            cupy.asnumpy(status))


def lsa_dense(xp, A, b, index, theta, avg, t0, steps, burn_in):
    """CuPy version of :func:`~sketchlearn.linear_model._lsa.lsa_dense_reference`."""
    ctype, dtype = _ctype(A.dtype)
    K, n_steps = index.shape
    p = A.shape[1]
    theta_t, avg_t, index_t, steps, status = _prepare(theta, avg, index, steps)
    if K:
        resid = cupy.empty((p, K), dtype=cupy.float64)
        fn = _function(f"lsa_dense<{ctype}>")
        fn(((K + _THREADS - 1) // _THREADS,), (_THREADS,),
           (_device(A, dtype), _device(b, dtype), index_t, np.int64(n_steps), np.int32(K),
            np.int32(p), theta_t, avg_t, resid, np.int64(t0), steps, np.int64(burn_in),
            status))
    return (cupy.ascontiguousarray(theta_t.T), cupy.ascontiguousarray(avg_t.T),
            cupy.asnumpy(status))


# ------------------------------------------------------------------ refinement residuals


def _row_residuals(A, X, Y, R):
    """``Y - R - A X`` (``Y`` given: one column) or ``-R - A X`` (``Y`` None: ``R`` is
    passed in its place, unread), doubled precision."""
    n, k = A.shape
    m = X.shape[1]
    F = cupy.empty((n, m), dtype=cupy.float64)
    if n * m:
        total = n * m
        _function("row_residuals")(
            ((total + _THREADS - 1) // _THREADS,), (_THREADS,),
            (A, X, R if Y is None else Y, R, np.int32(Y is not None), np.int64(n),
             np.int32(k), np.int32(m), F))
    return F


def _atr_residuals(A, R, S0):
    """``S0 - A^T R`` in doubled precision, ``(k, m)``."""
    n, k = A.shape
    m = R.shape[1]
    G = cupy.empty((k, m), dtype=cupy.float64)
    if k * m:
        _function("atr_residuals")(
            (k * m,), (_THREADS,), (A, R, S0, np.int64(n), np.int32(k), np.int32(m), G))
    return G


def refinement_residuals(xp, A, y, r, x):
    """See :func:`._refinement._refinement_residuals_reference`: ``f = y - r - A x`` and
    ``g = -A^T r``, each entry a compensated sum of exact products rounded once."""
    A = _device(A, cupy.float64)
    k = A.shape[1]
    y, r = _device(y, cupy.float64), _device(r, cupy.float64)
    x = _device(x, cupy.float64).reshape(k, 1)
    f = _row_residuals(A, x, y, r).reshape(-1)
    g = _atr_residuals(A, r.reshape(-1, 1), cupy.zeros((k, 1), dtype=cupy.float64))
    return f, g.reshape(k)


def inverse_refinement_residuals(xp, A, R, X, Q):
    """See :func:`._refinement._inverse_refinement_residuals_reference`: ``F = -R - A X``,
    ``G = -I - A^T R`` in doubled precision and ``Q^T F`` (plain float64)."""
    A = _device(A, cupy.float64)
    R, X = _device(R, cupy.float64), _device(X, cupy.float64)
    Q = _device(Q, cupy.float64)
    k, m = A.shape[1], X.shape[1]
    F = _row_residuals(A, X, None, R)
    G = _atr_residuals(A, R, -cupy.eye(k, m, dtype=cupy.float64))
    return F, G, Q.T @ F
