"""CuPy kernels for matrix completion (imported only when a CuPy array arrives).

One CUDA thread per row (or per observed entry) with its scratch vectors in
global memory, so any rank works; the index arrays are the CSR (or CSC) arrays of
:class:`~sketchlearn.completion._observed.Observed`. Sums run in double precision
whatever the input dtype, like the Numba kernels, so both agree to rounding.

The scratch is interleaved across threads: entry ``j`` of thread ``t``'s scratch is
``work[j * S + t]`` (``S`` the threads of the launch), so the threads of a warp, which
walk their vectors in step, touch consecutive addresses. Every kernel is a C++
template over the value type ``T`` (float, double) and the index type ``I`` (int,
long long), compiled once as one module with its instances named.
"""

from __future__ import annotations

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, single_module

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 128
# Scratch of one launch, in doubles (256 MiB): rows beyond it run in further launches.
_SCRATCH = 2**25

_SOURCE = r"""
// Thread t's scratch vector: element j at p[j * s] (p = work + t, s = threads of the
// launch), so a warp's threads, walking their vectors in step, read consecutive words.
struct Strided {
    double* p;
    long long s;
    __device__ double& operator[](long long j) const { return p[j * s]; }
    __device__ Strided operator+(long long j) const { return Strided{p + j * s, s}; }
};

template <typename T, typename I>
__global__ void predict_observed(
        const I* __restrict__ rows, const I* __restrict__ cols,
        const T* __restrict__ U, const T* __restrict__ V, long long nnz, int k,
        T* __restrict__ out) {
    const long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= nnz) return;
    const T* u = U + (long long)rows[q] * k;
    const T* v = V + (long long)cols[q] * k;
    double acc = 0.0;
    for (int c = 0; c < k; ++c) acc += (double)u[c] * (double)v[c];
    out[q] = (T)acc;
}

template <typename T, typename I>
__global__ void cg_rows(
        const I* __restrict__ indptr, const I* __restrict__ indices,
        const T* __restrict__ data, const T* __restrict__ X0,
        const T* __restrict__ V, long long m, int k, double lam, int n_iter,
        double* __restrict__ work, T* __restrict__ out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    const Strided x{work + i, m};
    const Strided r = x + k, z = x + 2 * k, p = x + 3 * k, ap = x + 4 * k, d = x + 5 * k;
    const long long s = indptr[i], e = indptr[i + 1];
    for (int c = 0; c < k; ++c) {
        x[c] = (double)X0[i * k + c];
        r[c] = -lam * x[c];
        d[c] = lam;
    }
    for (long long q = s; q < e; ++q) {
        const T* v = V + (long long)indices[q] * k;
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
            const T* v = V + (long long)indices[q] * k;
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
    for (int c = 0; c < k; ++c) out[i * k + c] = (T)x[c];
}

// Cholesky G = L L^T in the lower triangle of G (row-major k x k); false if G is not
// positive definite.
__device__ bool chol_factor(const Strided& G, int k) {
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
    return true;
}

// w = L^{-1} r, z = L^{-T} w = (L L^T)^{-1} r (z may be w); returns |w|^2 = r^T z.
__device__ double chol_apply(const Strided& L, const Strided& r, const Strided& w,
                             const Strided& z, int k) {
    double ww = 0.0;
    for (int a = 0; a < k; ++a) {
        double t = r[a];
        for (int c = 0; c < a; ++c) t -= L[a * k + c] * w[c];
        w[a] = t / L[a * k + a];
        ww += w[a] * w[a];
    }
    for (int a = k - 1; a >= 0; --a) {
        double t = w[a];
        for (int c = a + 1; c < k; ++c) t -= L[c * k + a] * z[c];
        z[a] = t / L[a * k + a];
    }
    return ww;
}

template <typename T, typename I>
__global__ void solve_rows(
        const I* __restrict__ indptr, const I* __restrict__ indices,
        const T* __restrict__ data, const T* __restrict__ V, long long row0,
        long long m, long long stride, int k, double lam, double jitter,
        double* __restrict__ work, T* __restrict__ out) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= m) return;
    const long long i = row0 + t;
    const Strided G0{work + t, stride};
    const Strided G = G0 + (long long)k * k, rhs = G + (long long)k * k, x = rhs + k;
    for (int a = 0; a < k * k; ++a) G0[a] = 0.0;
    for (int a = 0; a < k; ++a) rhs[a] = 0.0;
    for (long long q = indptr[i]; q < indptr[i + 1]; ++q) {
        const T* v = V + (long long)indices[q] * k;
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
        for (int a = 0; a < k; ++a) out[i * k + a] = (T)0.0;
        return;
    }
    double eps = 0.0;
    bool solved = false;
    for (int attempt = 0; attempt < 8 && !solved; ++attempt) {
        for (int a = 0; a < k; ++a) {
            for (int c = 0; c <= a; ++c) G[a * k + c] = G0[a * k + c];
            G[a * k + a] += eps;
        }
        solved = chol_factor(G, k);
        eps = eps == 0.0 ? jitter * trace / k : eps * 100.0;
    }
    if (solved) chol_apply(G, rhs, x, x, k);
    // No attempt factored (NaN in V, or lam < 0): NaN, as the reference gives for
    // NaN; never x, which then holds what an earlier row or launch left in the scratch.
    for (int a = 0; a < k; ++a) out[i * k + a] = solved ? (T)x[a] : (T)nan("");
}

__device__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// (A^T A + lam I) p into ap, A = V[indices[s:e]].
template <typename T, typename I>
__device__ void normal_matvec(const I* indices, const T* V, long long s, long long e, int k,
                              double lam, const Strided& p, const Strided& ap) {
    for (int a = 0; a < k; ++a) ap[a] = lam * p[a];
    for (long long q = s; q < e; ++q) {
        const T* v = V + (long long)indices[q] * k;
        double t = 0.0;
        for (int a = 0; a < k; ++a) t += (double)v[a] * p[a];
        for (int a = 0; a < k; ++a) ap[a] += t * (double)v[a];
    }
}

// Sketch-preconditioned CG per row, as _numba._sketch_cg_block: the preconditioner
// L L^T = (S A)^T (S A) + lam I, S the row's sparse sign embedding (the identity when
// the row has at most sketch_rows entries), CG from X0[i] to |r|_{M^-1} <= tol
// |A^T b|_{M^-1} or max_iter steps. info[i] = (achieved relative residual, steps).
template <typename T, typename I>
__global__ void sketch_cg_rows(
        const I* __restrict__ indptr, const I* __restrict__ indices,
        const T* __restrict__ data, const T* __restrict__ X0, const T* __restrict__ V,
        long long row0, long long m, long long stride, int k, double lam, double tol,
        long long max_iter, int sketch_rows, int nnz_sketch, unsigned long long seed,
        double jitter, double* __restrict__ work, T* __restrict__ out,
        double* __restrict__ info) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= m) return;
    const long long i = row0 + t;
    const Strided SA{work + t, stride};
    const Strided G0 = SA + (long long)sketch_rows * k, L = G0 + (long long)k * k;
    const Strided x = L + (long long)k * k, r = x + k, w = x + 2 * k, z = x + 3 * k,
                  p = x + 4 * k, ap = x + 5 * k;
    const long long s = indptr[i], e = indptr[i + 1];
    // G0 = (S A)^T (S A), lower triangle
    long long n_s;
    if (e - s <= sketch_rows) {
        n_s = e - s;
        for (long long q = s; q < e; ++q) {
            const T* v = V + (long long)indices[q] * k;
            for (int a = 0; a < k; ++a) SA[(q - s) * k + a] = (double)v[a];
        }
    } else {
        n_s = sketch_rows;
        for (long long a = 0; a < (long long)sketch_rows * k; ++a) SA[a] = 0.0;
        const double scale = 1.0 / sqrt((double)nnz_sketch);
        for (long long q = s; q < e; ++q) {
            const T* v = V + (long long)indices[q] * k;
            const unsigned long long base =
                seed + (unsigned long long)q * (unsigned long long)nnz_sketch;
            for (int u = 0; u < nnz_sketch; ++u) {
                const unsigned long long h = splitmix64(base + (unsigned long long)u);
                const long long row = (long long)((h >> 33) % (unsigned long long)sketch_rows);
                const double sg = (h & 1ULL) ? scale : -scale;
                for (int a = 0; a < k; ++a) SA[row * k + a] += sg * (double)v[a];
            }
        }
    }
    for (int a = 0; a < k; ++a)
        for (int b = 0; b <= a; ++b) G0[a * k + b] = 0.0;
    for (long long rr = 0; rr < n_s; ++rr)
        for (int a = 0; a < k; ++a) {
            const double va = SA[rr * k + a];
            for (int b = 0; b <= a; ++b) G0[a * k + b] += va * SA[rr * k + b];
        }
    double trace = 0.0, dmean = 0.0;
    for (int a = 0; a < k; ++a) {
        G0[a * k + a] += lam;
        trace += G0[a * k + a];
        x[a] = (double)X0[i * k + a];
        r[a] = 0.0;
    }
    for (long long q = s; q < e; ++q) {  // r = A^T b
        const T* v = V + (long long)indices[q] * k;
        const double b = (double)data[q];
        for (int a = 0; a < k; ++a) {
            r[a] += b * (double)v[a];
            dmean += (double)v[a] * (double)v[a];
        }
    }
    dmean = dmean / k + lam;
    const bool ok = trace > 0.0;
    double eps = 0.0;
    for (int attempt = 0; attempt < (ok ? 8 : 0); ++attempt) {
        for (int a = 0; a < k; ++a) {
            for (int b = 0; b <= a; ++b) L[a * k + b] = G0[a * k + b];
            L[a * k + a] += eps;
        }
        if (chol_factor(L, k)) break;
        eps = eps == 0.0 ? jitter * trace / k : eps * 100.0;
    }
    const double cc = ok ? chol_apply(L, r, w, z, k) : 0.0;
    if (!(cc > 0.0)) {  // no entry, or b = 0 on the row: the solution is 0
        for (int a = 0; a < k; ++a) out[i * k + a] = (T)0.0;
        info[2 * i] = 0.0;
        info[2 * i + 1] = 0.0;
        return;
    }
    normal_matvec<T, I>(indices, V, s, e, k, lam, x, ap);
    for (int a = 0; a < k; ++a) r[a] -= ap[a];
    double rz = chol_apply(L, r, w, z, k);
    for (int a = 0; a < k; ++a) p[a] = z[a];
    const double target = tol * tol * cc;
    long long it = 0;
    while (rz > target && it < max_iter) {
        normal_matvec<T, I>(indices, V, s, e, k, lam, p, ap);
        double pap = 0.0, pp = 0.0;
        for (int a = 0; a < k; ++a) {
            pap += p[a] * ap[a];
            pp += p[a] * p[a];
        }
        if (!(pap > 1e-10 * dmean * pp)) break;  // singular system: null direction
        const double alpha = rz / pap;
        for (int a = 0; a < k; ++a) {
            x[a] += alpha * p[a];
            r[a] -= alpha * ap[a];
        }
        const double rz_new = chol_apply(L, r, w, z, k);
        const double beta = rz_new / rz;
        rz = rz_new;
        for (int a = 0; a < k; ++a) p[a] = z[a] + beta * p[a];
        ++it;
    }
    for (int a = 0; a < k; ++a) out[i * k + a] = (T)x[a];
    info[2 * i] = sqrt(fmax(rz, 0.0) / cc);
    info[2 * i + 1] = (double)it;
}
"""

_KERNELS = ("predict_observed", "cg_rows", "solve_rows", "sketch_cg_rows")
_REALS = ("float", "double")
_INDICES = ("int", "long long")


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, every kernel instantiated
    for each (value, index) C type."""
    names = tuple(f"{fn}<{real}, {idx}>" for fn in _KERNELS for real in _REALS
                  for idx in _INDICES)
    return [CudaSource("completion", _SOURCE, CUDA_OPTIONS, names, _THREADS)]


_module, _function = single_module(__name__)


def _kernel(name, values, index):
    real = "double" if values.dtype == cupy.float64 else "float"
    idx = "long long" if index.dtype == cupy.int64 else "int"
    return _function(f"{name}<{real}, {idx}>")


def _real(A, dtype=None):
    """``A`` on the device as ``dtype`` (default: float32 stays, float16 becomes float32,
    anything else float64), C-contiguous: the value types compiled (a float16 or
    integer array would be misread)."""
    A = cupy.asarray(A)
    if dtype is None:
        dtype = (A.dtype if A.dtype in (cupy.float32, cupy.float64)
                 else cupy.float32 if A.dtype == cupy.float16 else cupy.float64)
    return cupy.ascontiguousarray(A.astype(dtype, copy=False))


def _index(A, dtype=None):
    """``A`` on the device as int32 or int64 (``dtype``, default: int32 stays, anything
    else int64), C-contiguous: the index types compiled."""
    A = cupy.asarray(A)
    if dtype is None:
        dtype = cupy.int32 if A.dtype == cupy.int32 else cupy.int64
    return cupy.ascontiguousarray(A.astype(dtype, copy=False))


def _blocks(n):
    return ((int(n) + _THREADS - 1) // _THREADS,)


def predict_observed(xp, indptr, indices, rows, U, V):
    """``out[q] = U[rows[q]] . V[indices[q]]`` (one thread per observed entry)."""
    U = _real(U)
    V = _real(V, U.dtype)
    indices = _index(indices)
    rows = _index(rows, indices.dtype)
    nnz = indices.shape[0]
    out = cupy.empty(nnz, dtype=U.dtype)
    if nnz:
        _kernel("predict_observed", U, indices)(
            _blocks(nnz), (_THREADS,),
            (rows, indices, U, V, np.int64(nnz), np.int32(U.shape[1]), out))
    return out


def spmm(xp, indptr, indices, data, D):
    """CSR times dense with cuSPARSE."""
    import cupyx.scipy.sparse as csp

    D = _real(D)
    m = indptr.shape[0] - 1
    A = csp.csr_matrix((_real(data, D.dtype), cupy.asarray(indices), cupy.asarray(indptr)),
                       shape=(m, D.shape[0]))
    return cupy.ascontiguousarray((A @ D).astype(D.dtype, copy=False))


def cg_rows(xp, indptr, indices, data, X0, V, lam, n_iter, residual=False):
    """Warm-started Jacobi-preconditioned CG per row (one thread per row); with
    ``residual``, also the squared residuals of the start (by ``predict_observed``,
    one thread per entry, before the solve)."""
    X0 = _real(X0)
    V = _real(V, X0.dtype)
    data = _real(data, X0.dtype)
    indices = _index(indices)
    indptr = _index(indptr, indices.dtype)
    m, k = X0.shape
    sse = None
    if residual:
        entries = cupy.arange(indices.shape[0], dtype=indptr.dtype)
        rows = (cupy.searchsorted(indptr, entries, side="right") - 1).astype(indices.dtype)
        f64 = cupy.float64  # in float64 from the inputs' values, as the other backends
        r = data.astype(f64) - predict_observed(xp, indptr, indices, rows, X0.astype(f64),
                                                V.astype(f64))
        sse = float(cupy.sum(r * r))
    out = cupy.empty_like(X0)
    if m == 0:
        return (out, sse) if residual else out
    work = cupy.empty(m * 6 * k, dtype=cupy.float64)
    _kernel("cg_rows", X0, indices)(
        _blocks(m), (_THREADS,),
        (indptr, indices, data, X0, V, np.int64(m), np.int32(k), np.float64(lam),
         np.int32(n_iter), work, out))
    return (out, sse) if residual else out


def _chunk(m, per_row):
    """Rows per launch whose scratch fits in ``_SCRATCH`` doubles (at least one)."""
    return max(1, min(m, _SCRATCH // max(1, per_row)))


def solve_rows(xp, indptr, indices, data, V, lam):
    """Exact per-row ridge solves by Cholesky (one thread per row, rows in chunks so
    the k x k scratch matrices stay under 256 MiB)."""
    V = _real(V)
    data = _real(data, V.dtype)
    indices = _index(indices)
    indptr = _index(indptr, indices.dtype)
    m = indptr.shape[0] - 1
    k = V.shape[1]
    out = cupy.empty((m, k), dtype=V.dtype)
    if m == 0:
        return out
    per_row = 2 * k * k + 2 * k
    chunk = _chunk(m, per_row)
    work = cupy.empty(chunk * per_row, dtype=cupy.float64)
    jitter = 1e-12 if V.dtype == cupy.float64 else 1e-6
    kern = _kernel("solve_rows", V, indices)
    for row0 in range(0, m, chunk):
        rows = min(chunk, m - row0)
        kern(_blocks(rows), (_THREADS,),
             (indptr, indices, data, V, np.int64(row0), np.int64(rows), np.int64(chunk),
              np.int32(k), np.float64(lam), np.float64(jitter), work, out))
    return out


def sketch_cg_rows(xp, indptr, indices, data, X0, V, lam, tol, max_iter, sketch_rows,
                   nnz_sketch, seed):
    """Sketch-preconditioned CG on each row's restricted normal equations (one thread
    per row, rows in chunks so the scratch stays under 256 MiB); see
    :func:`sketchlearn.completion._numba.sketch_cg_rows`. Returns ``(X, info)``."""
    V = _real(V)
    X0 = _real(X0, V.dtype)
    data = _real(data, V.dtype)
    indices = _index(indices)
    indptr = _index(indptr, indices.dtype)
    m = indptr.shape[0] - 1
    k = V.shape[1]
    out = cupy.empty((m, k), dtype=V.dtype)
    info = cupy.empty((m, 2), dtype=cupy.float64)
    if m == 0:
        return out, info
    per_row = int(sketch_rows) * k + 2 * k * k + 6 * k
    chunk = _chunk(m, per_row)
    work = cupy.empty(chunk * per_row, dtype=cupy.float64)
    jitter = 1e-12 if V.dtype == cupy.float64 else 1e-6
    kern = _kernel("sketch_cg_rows", V, indices)
    for row0 in range(0, m, chunk):
        rows = min(chunk, m - row0)
        kern(_blocks(rows), (_THREADS,),
             (indptr, indices, data, X0, V, np.int64(row0), np.int64(rows), np.int64(chunk),
              np.int32(k), np.float64(lam), np.float64(tol), np.int64(max_iter),
              np.int32(sketch_rows), np.int32(nnz_sketch), np.uint64(seed),
              np.float64(jitter), work, out, info))
    return out, info
