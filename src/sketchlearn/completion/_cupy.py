"""CuPy kernels for matrix completion (imported only when a CuPy array arrives).

One CUDA thread per row (or per observed entry) with its scratch vectors in
global memory, so any rank works; the index arrays are the CSR (or CSC) arrays of
:class:`~sketchlearn.completion._observed.Observed`. Sums run in double precision
whatever the input dtype, like the Numba kernels, so both agree to rounding.
"""

from __future__ import annotations

from functools import lru_cache

from .._cuda import CUDA_OPTIONS, CudaSource, compile_source

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 128

_SOURCE = r"""
extern "C" __global__ void predict_observed(
        const IDX* __restrict__ rows, const IDX* __restrict__ cols,
        const REAL* __restrict__ U, const REAL* __restrict__ V, long long nnz, int k,
        REAL* __restrict__ out) {
    long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= nnz) return;
    const REAL* u = U + (long long)rows[q] * k;
    const REAL* v = V + (long long)cols[q] * k;
    double acc = 0.0;
    for (int c = 0; c < k; ++c) acc += (double)u[c] * (double)v[c];
    out[q] = (REAL)acc;
}

extern "C" __global__ void cg_rows(
        const IDX* __restrict__ indptr, const IDX* __restrict__ indices,
        const REAL* __restrict__ data, const REAL* __restrict__ X0,
        const REAL* __restrict__ V, long long m, int k, double lam, int n_iter,
        double* __restrict__ work, REAL* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    double* x = work + i * 6 * k;
    double* r = x + k;
    double* z = r + k;
    double* p = z + k;
    double* ap = p + k;
    double* d = ap + k;
    const long long s = indptr[i], e = indptr[i + 1];
    for (int c = 0; c < k; ++c) {
        x[c] = (double)X0[i * k + c];
        r[c] = -lam * x[c];
        d[c] = lam;
    }
    for (long long q = s; q < e; ++q) {
        const REAL* v = V + (long long)indices[q] * k;
        double t = 0.0;
        for (int c = 0; c < k; ++c) t += (double)v[c] * x[c];
        const double res = (double)data[q] - t;
        for (int c = 0; c < k; ++c) {
            r[c] += res * (double)v[c];
            d[c] += (double)v[c] * (double)v[c];
        }
    }
    double rz = 0.0, dmean = 0.0;
    for (int c = 0; c < k; ++c) {
        z[c] = d[c] > 0.0 ? r[c] / d[c] : 0.0;
        p[c] = z[c];
        rz += r[c] * z[c];
        dmean += d[c] / k;
    }
    for (int it = 0; it < n_iter; ++it) {
        if (!(rz > 0.0)) break;
        for (int c = 0; c < k; ++c) ap[c] = lam * p[c];
        for (long long q = s; q < e; ++q) {
            const REAL* v = V + (long long)indices[q] * k;
            double t = 0.0;
            for (int c = 0; c < k; ++c) t += (double)v[c] * p[c];
            for (int c = 0; c < k; ++c) ap[c] += t * (double)v[c];
        }
        double pap = 0.0, pp = 0.0;
        for (int c = 0; c < k; ++c) {
            pap += p[c] * ap[c];
            pp += p[c] * p[c];
        }
        if (!(pap > 1e-10 * dmean * pp)) break;  // null direction (singular system)
        const double a = rz / pap;
        double rz_new = 0.0;
        for (int c = 0; c < k; ++c) {
            x[c] += a * p[c];
            r[c] -= a * ap[c];
            z[c] = d[c] > 0.0 ? r[c] / d[c] : 0.0;
            rz_new += r[c] * z[c];
        }
        const double beta = rz_new / rz;
        rz = rz_new;
        for (int c = 0; c < k; ++c) p[c] = z[c] + beta * p[c];
    }
    for (int c = 0; c < k; ++c) out[i * k + c] = (REAL)x[c];
}

__device__ bool chol_solve(double* G, const double* rhs, double* x, int k) {
    for (int a = 0; a < k; ++a) {
        double s = G[a * k + a];
        for (int c = 0; c < a; ++c) s -= G[a * k + c] * G[a * k + c];
        if (!(s > 0.0)) return false;
        s = sqrt(s);
        G[a * k + a] = s;
        for (int b = a + 1; b < k; ++b) {
            double t = G[b * k + a];
            for (int c = 0; c < a; ++c) t -= G[b * k + c] * G[a * k + c];
            G[b * k + a] = t / s;
        }
    }
    for (int a = 0; a < k; ++a) {
        double t = rhs[a];
        for (int c = 0; c < a; ++c) t -= G[a * k + c] * x[c];
        x[a] = t / G[a * k + a];
    }
    for (int a = k - 1; a >= 0; --a) {
        double t = x[a];
        for (int c = a + 1; c < k; ++c) t -= G[c * k + a] * x[c];
        x[a] = t / G[a * k + a];
    }
    return true;
}

extern "C" __global__ void solve_rows(
        const IDX* __restrict__ indptr, const IDX* __restrict__ indices,
        const REAL* __restrict__ data, const REAL* __restrict__ V, long long row0,
        long long m, int k, double lam, double jitter, double* __restrict__ work,
        REAL* __restrict__ out) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= m) return;
    const long long i = row0 + t;
    double* G0 = work + t * (2 * k * k + 2 * k);
    double* G = G0 + k * k;
    double* rhs = G + k * k;
    double* x = rhs + k;
    for (int a = 0; a < k * k; ++a) G0[a] = 0.0;
    for (int a = 0; a < k; ++a) rhs[a] = 0.0;
    for (long long q = indptr[i]; q < indptr[i + 1]; ++q) {
        const REAL* v = V + (long long)indices[q] * k;
        const double w = (double)data[q];
        for (int a = 0; a < k; ++a) {
            rhs[a] += w * (double)v[a];
            for (int c = 0; c <= a; ++c) G0[a * k + c] += (double)v[a] * (double)v[c];
        }
    }
    double trace = 0.0;
    for (int a = 0; a < k; ++a) {
        G0[a * k + a] += lam;
        trace += G0[a * k + a];
    }
    if (trace == 0.0) {
        for (int a = 0; a < k; ++a) out[i * k + a] = (REAL)0.0;
        return;
    }
    double eps = 0.0;
    bool solved = false;
    for (int attempt = 0; attempt < 8 && !solved; ++attempt) {
        for (int a = 0; a < k; ++a) {
            for (int c = 0; c <= a; ++c) G[a * k + c] = G0[a * k + c];
            G[a * k + a] += eps;
        }
        solved = chol_solve(G, rhs, x, k);
        eps = eps == 0.0 ? jitter * trace / k : eps * 100.0;
    }
    // No attempt factored (NaN in V, or lam < 0): NaN, as the reference gives for
    // NaN; never x, which then holds what an earlier row or launch left in the scratch.
    for (int a = 0; a < k; ++a) out[i * k + a] = solved ? (REAL)x[a] : (REAL)nan("");
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module per (value, index) C type."""
    return [CudaSource(f"completion[{real}, {idx}]",
                       _SOURCE.replace("REAL", real).replace("IDX", idx), CUDA_OPTIONS, (),
                       _THREADS)
            for real in ("float", "double") for idx in ("int", "long long")]


@lru_cache(maxsize=4)
def _module(real: str, idx: str):
    (source,) = (s for s in cuda_sources() if s.label == f"completion[{real}, {idx}]")
    return compile_source(source)


def _names(values, index):
    real = "double" if values.dtype == cupy.float64 else "float"
    idx = "long long" if index.dtype == cupy.int64 else "int"
    return _module(real, idx)


def _real(A):
    """``A`` as float32 or float64, the C types compiled (float16 or integers would be
    misread); C-contiguous."""
    A = cupy.asarray(A)
    return cupy.ascontiguousarray(
        A, dtype=A.dtype if A.dtype in (cupy.float32, cupy.float64) else cupy.float64)


def _index(A):
    """``A`` as int32 or int64, the index C types compiled."""
    A = cupy.asarray(A)
    return A if A.dtype in (cupy.int32, cupy.int64) else A.astype(cupy.int64)


def _blocks(n):
    return ((int(n) + _THREADS - 1) // _THREADS,)


def predict_observed(xp, indptr, indices, rows, U, V):
    """``out[q] = U[rows[q]] . V[indices[q]]`` (one thread per observed entry)."""
    U = _real(U)
    V = cupy.ascontiguousarray(V.astype(U.dtype, copy=False))
    indices = _index(indices)
    nnz = indices.shape[0]
    out = cupy.empty(nnz, dtype=U.dtype)
    if nnz:
        kern = _names(U, indices).get_function("predict_observed")
        kern(_blocks(nnz), (_THREADS,), (rows.astype(indices.dtype, copy=False), indices, U, V,
                                         cupy.int64(nnz), cupy.int32(U.shape[1]), out))
    return out


def spmm(xp, indptr, indices, data, D):
    """CSR times dense with cuSPARSE."""
    import cupyx.scipy.sparse as csp

    m = indptr.shape[0] - 1
    A = csp.csr_matrix((data, indices, indptr), shape=(m, D.shape[0]))
    return cupy.ascontiguousarray(A @ D).astype(D.dtype, copy=False)


def cg_rows(xp, indptr, indices, data, X0, V, lam, n_iter):
    """Warm-started Jacobi-preconditioned CG per row (one thread per row)."""
    X0 = _real(X0)
    V = cupy.ascontiguousarray(V.astype(X0.dtype, copy=False))
    data = data.astype(X0.dtype, copy=False)
    indices = _index(indices)
    m, k = X0.shape
    out = cupy.empty_like(X0)
    work = cupy.empty(m * 6 * k, dtype=cupy.float64)
    kern = _names(X0, indices).get_function("cg_rows")
    kern(_blocks(m), (_THREADS,), (indptr.astype(indices.dtype, copy=False), indices, data, X0,
                                   V, cupy.int64(m), cupy.int32(k), cupy.float64(lam),
                                   cupy.int32(n_iter), work, out))
    return out


def solve_rows(xp, indptr, indices, data, V, lam):
    """Exact per-row ridge solves by Cholesky (one thread per row, rows in chunks so
    the k x k scratch matrices stay under 256 MiB)."""
    V = _real(V)
    data = data.astype(V.dtype, copy=False)
    indices = _index(indices)
    m = indptr.shape[0] - 1
    k = V.shape[1]
    out = cupy.empty((m, k), dtype=V.dtype)
    per_row = 2 * k * k + 2 * k
    chunk = max(1, min(m, (2**25) // per_row))
    work = cupy.empty(chunk * per_row, dtype=cupy.float64)
    jitter = 1e-12 if V.dtype == cupy.float64 else 1e-6
    kern = _names(V, indices).get_function("solve_rows")
    indptr = indptr.astype(indices.dtype, copy=False)
    for row0 in range(0, m, chunk):
        rows = min(chunk, m - row0)
        kern(_blocks(rows), (_THREADS,), (indptr, indices, data, V, cupy.int64(row0),
                                          cupy.int64(rows), cupy.int32(k), cupy.float64(lam),
                                          cupy.float64(jitter), work, out))
    return out
