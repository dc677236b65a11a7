"""CuPy kernels for kernel halving and KT-SWAP (imported only when a CuPy array arrives).

Halving: one thread block per walk; the block's threads share the sum over the
points already placed (a strided loop and a shared-memory reduction) and thread 0
takes the decision, so a round of many walks fills the GPU. KT-SWAP: per slot, a
kernel column on the GPU and a batched score/argmin. Random numbers come from the
host, so the coreset equals the Numba one for the same seed (float64 inputs).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._cuda import CUDA_OPTIONS, CudaSource, compile_source
from ..kernels._cupy import _SOURCE as _KERNEL_SOURCE
from ..kernels._cupy import _device_spec, kernel_matrix, kernel_matvec

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 256

_HALVING_SOURCE = _KERNEL_SOURCE + r"""
extern "C" __global__ void halve_round(
        const double* __restrict__ X, int d, const long long* __restrict__ seqs, int L,
        const double* __restrict__ u, const long long* __restrict__ codes,
        const double* __restrict__ params, const double* __restrict__ weights,
        const double* __restrict__ half, int ncomp, double log_term,
        long long* __restrict__ out, double* __restrict__ left_x,
        double* __restrict__ right_x) {
    // Walk r halves seqs[r, :L] into out[2r] (left) and out[2r + 1] (right);
    // left_x/right_x hold the coordinates of the points placed so far.
    const int r = blockIdx.x, tid = threadIdx.x, H = L / 2;
    const long long* seq = seqs + (long long)r * L;
    long long* left = out + (long long)(2 * r) * H;
    long long* right = out + (long long)(2 * r + 1) * H;
    double* lx = left_x + (long long)r * H * d;
    double* rx = right_x + (long long)r * H * d;
    __shared__ double red[256];
    __shared__ double x12[128];  // x1 then x2 (d <= 64, checked by the caller)
    double sigma2 = 0.0;         // used by thread 0 only
    for (int t = 0; t < H; ++t) {
        const long long i1 = seq[2 * t], i2 = seq[2 * t + 1];
        for (int c = tid; c < d; c += blockDim.x) {
            x12[c] = X[i1 * d + c];
            x12[d + c] = X[i2 * d + c];
        }
        __syncthreads();
        double part = 0.0;
        for (int s = tid; s < t; s += blockDim.x) {
            part += kernel_value<double>(x12, rx + (long long)s * d, d, ncomp, codes, params,
                                         weights, half)
                  - kernel_value<double>(x12 + d, rx + (long long)s * d, d, ncomp, codes,
                                         params, weights, half)
                  - kernel_value<double>(x12, lx + (long long)s * d, d, ncomp, codes, params,
                                         weights, half)
                  + kernel_value<double>(x12 + d, lx + (long long)s * d, d, ncomp, codes,
                                         params, weights, half);
        }
        red[tid] = part;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w /= 2) {
            if (tid < w) red[tid] += red[tid + w];
            __syncthreads();
        }
        if (tid == 0) {
            const double alpha = red[0];
            const double b2 = kernel_value<double>(x12, x12, d, ncomp, codes, params, weights, half)
                + kernel_value<double>(x12 + d, x12 + d, d, ncomp, codes, params, weights, half)
                - 2.0 * kernel_value<double>(x12, x12 + d, d, ncomp, codes, params, weights, half);
            double a = fmax(sqrt(b2 * sigma2 * log_term), b2);
            if (a > 0.0) {
                sigma2 += b2 * fmax(0.0, 1.0 + (b2 - 2.0 * a) * sigma2 / (a * a));
            } else {
                a = 1.0;
            }
            const bool second_left = u[(long long)r * H + t] <= 0.5 * (1.0 - alpha / a);
            const double* xl = second_left ? x12 + d : x12;
            const double* xr = second_left ? x12 : x12 + d;
            left[t] = second_left ? i2 : i1;
            right[t] = second_left ? i1 : i2;
            for (int c = 0; c < d; ++c) {
                lx[(long long)t * d + c] = xl[c];
                rx[(long long)t * d + c] = xr[c];
            }
        }
        __syncthreads();
    }
}
"""


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles (float64 only: X is cast before the call)."""
    return [CudaSource("thinning.halve_round", _HALVING_SOURCE, CUDA_OPTIONS, (), _THREADS)]


@lru_cache(maxsize=1)
def _halving_module():
    (source,) = cuda_sources()
    return compile_source(source)


def halve_round(xp, X, seqs, u, kernel, log_term):
    """One round of kernel halving of each row of ``seqs`` on the GPU (see the reference)."""
    from ._reference import halve_round_reference

    d = X.shape[1]
    if d > 64:  # the pair lives in shared memory
        return halve_round_reference(xp, X, seqs, u, kernel, log_term)
    Xd = cupy.ascontiguousarray(X, dtype=cupy.float64)
    seqs = cupy.ascontiguousarray(cupy.asarray(seqs), dtype=cupy.int64)
    walks, L = seqs.shape
    H = L // 2
    out = cupy.empty((2 * walks, H), dtype=cupy.int64)
    left_x = cupy.empty((walks, H, d))
    right_x = cupy.empty((walks, H, d))
    codes, params, weights, half, ncomp = _device_spec(kernel)
    fn = _halving_module().get_function("halve_round")
    fn((walks,), (_THREADS,),
       (Xd, np.int32(d), seqs, np.int32(L),
        cupy.ascontiguousarray(cupy.asarray(u), dtype=cupy.float64), codes, params, weights, half,
        np.int32(ncomp), np.float64(log_term), out, left_x, right_x))
    return out.get()


def swap_pass(xp, X, pool, coreset_pos, mean_k, kernel, unique):
    """KT-SWAP's greedy pass with GPU kernel columns and a GPU argmin per slot."""
    P = cupy.ascontiguousarray(X[cupy.asarray(np.asarray(pool, dtype=np.int64))],
                               dtype=cupy.float64)
    pos = np.array(coreset_pos, dtype=np.int64)
    size = pos.shape[0]
    mean_k = cupy.asarray(np.asarray(mean_k, dtype=np.float64))
    # Row sums of K(pool, coreset) by the blocked matvec: never the pool x coreset
    # matrix (8 GiB at n = 2^20, s = 1024).
    ks = kernel_matvec(xp, P, P[cupy.asarray(pos)], cupy.ones((size, 1)), kernel)[:, 0]
    k0 = kernel.diagonal_value
    count = cupy.asarray(np.bincount(pos, minlength=P.shape[0]))
    for s in range(size):
        old = int(pos[s])
        kcol = kernel_matrix(xp, P, P[old:old + 1], kernel)[:, 0]
        scores = k0 + 2.0 * (ks - kcol) - 2.0 * size * mean_k
        if unique:
            others = count.copy()
            others[old] -= 1
            scores = cupy.where(others > 0, cupy.inf, scores)
        best_dev = cupy.argmin(scores)
        # one read from the device per slot: the winner and whether it beats the old
        best_f, beats = cupy.stack([best_dev.astype(cupy.float64),
                                    (scores[best_dev] < scores[old]).astype(cupy.float64)]
                                   ).get()
        best = int(best_f) if beats else old
        if best != old:
            ks += kernel_matrix(xp, P, P[best:best + 1], kernel)[:, 0] - kcol
            count[old] -= 1
            count[best] += 1
            pos[s] = best
    return pos
