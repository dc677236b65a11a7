"""CuPy kernels for kernel halving, Compress's refinement and KT-SWAP (imported only
when a CuPy array arrives).

Every kernel is a C++ template on the data type ``T`` (``float`` or ``double``,
instantiated through ``name_expressions`` as in ``kernels/_cupy.py``); points are
read as ``T`` and every kernel value and sum is computed in double, as on the CPU.
float16 and integer data are cast to float64 first. Each call takes the kernel's
device spec once (``_device_spec``, cached per kernel: no host-to-device copy of the
kernel table per call, per slot or per step).

Halving (``halve_round``, ``halve_with_sums``): one thread block per walk takes the
decisions; the block's threads share each step's sum over the points already placed
(a strided loop, warp shuffles and a fixed-order reduction, so the result does not
depend on timing). The pair being placed sits in dynamic shared memory (2d doubles)
up to d = 2560, in a global scratch row beyond: one code path for every d. The
placed points are stored by coordinate (``placed[walk, side, c, t]``), so a warp's
reads of one coordinate are coalesced.

A round of few walks (fewer than the GPU has SMs: KT's first rounds, one to a few
walks of up to n/2 pairs) would leave the GPU idle with one block per walk. There
the walk goes by blocks of ``_PAIRS`` pairs, as the Numba walk does: the sums of the
block's pairs over every point placed before the block do not wait for the block's
own decisions, so ``halve_prefix`` computes them on a grid of (placed points / 256)
x walks blocks, one thread per placed point, and ``halve_steps`` then takes the
block's ``_PAIRS`` decisions, summing only over the points placed inside the block.
Cost of the scheme: two kernel launches per ``_PAIRS`` = 128 pairs, stream-ordered
with no host synchronisation, so the host enqueues ~10 us of CuPy argument packing
per launch while the GPU works: at n = 2^20 the first round (2^19 pairs) makes 8192
launches (~0.1 s of host time, overlapped) against ~5e11 kernel evaluations spread
over every SM; the sequential part left is 128-pair blocks with sums over at most
128 points per step. Results are those of one block per walk up to the order of
the sums (fixed for a given walk length and round shape).

Compress's refinement (``refine_halves``): one block per Compress block (a round's
blocks are many, except at the last levels), the whole refinement on the device:
the block's kernel mean (unless the walk gave it), the two candidates' MMD scores,
and the greedy swap pass without repeats, each slot's argmin a block reduction with
ties to the lowest position (the reference's rule). ``coreset_sums``: one block per
candidate coreset, its s^2 kernel values summed by a block reduction.

KT-SWAP (``swap_pass``) over the whole pool: per slot a kernel column on the whole
GPU and one read of the winner from the device.

Random numbers come from the host, so for the same seed the coresets equal the
reference's and the Numba ones, up to decisions whose margin is within the rounding
of sums taken in another order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._array_api import to_numpy
from .._cuda import CUDA_OPTIONS, CudaSource, single_module
from ..kernels._cupy import _SOURCE as _KERNEL_SOURCE
from ..kernels._cupy import _ctype, _device_spec, _real, kernel_matrix_device, kernel_matvec

try:
    import cupy
except ImportError:  # cuda_sources() is read without CuPy (the CI compile check)
    cupy = None

_THREADS = 256  # a multiple of 32 (warp reductions); WARPS below is derived from it
_PAIRS = 128  # pairs per block of a walk in the few-walks scheme
_PAIR_SHARED_BYTES = 40 * 1024  # the pair in dynamic shared memory up to d = 2560

_HALVING_SOURCE = _KERNEL_SOURCE + f"""
#define THREADS {_THREADS}
#define WARPS (THREADS / 32)
#define PAIRS {_PAIRS}
#define POS_INF __longlong_as_double(0x7ff0000000000000LL)  // no header needed
""" + r"""
__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Block sums of a, b and c (blockDim.x == THREADS), valid in thread 0 only; warps
// then warp partials in a fixed order. red: 3 * WARPS doubles, which the caller must
// not write again before a __syncthreads that follows thread 0's read.
__device__ void block_sum3(double& a, double& b, double& c, double* red) {
    a = warp_sum(a);
    b = warp_sum(b);
    c = warp_sum(c);
    if ((threadIdx.x & 31) == 0) {
        const int w = threadIdx.x >> 5;
        red[w] = a;
        red[WARPS + w] = b;
        red[2 * WARPS + w] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        a = 0.0; b = 0.0; c = 0.0;
        for (int w = 0; w < WARPS; ++w) {
            a += red[w];
            b += red[WARPS + w];
            c += red[2 * WARPS + w];
        }
    }
}

// Smallest v over the block, ties to the smallest z; valid in thread 0 only (same
// rule for rv/rz as block_sum3).
__device__ void block_argmin(double& v, long long& z, double* rv, long long* rz) {
    for (int o = 16; o > 0; o >>= 1) {
        const double v2 = __shfl_down_sync(0xffffffffu, v, o);
        const long long z2 = __shfl_down_sync(0xffffffffu, z, o);
        if (v2 < v || (v2 == v && z2 < z)) { v = v2; z = z2; }
    }
    if ((threadIdx.x & 31) == 0) { rv[threadIdx.x >> 5] = v; rz[threadIdx.x >> 5] = z; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < WARPS; ++w)
            if (rv[w] < v || (rv[w] == v && rz[w] < z)) { v = rv[w]; z = rz[w]; }
    }
}

template <typename T>
__global__ void halve_steps(
        const T* __restrict__ X, int d, const long long* __restrict__ seqs, int L,
        const double* __restrict__ u, const long long* __restrict__ codes,
        const double* __restrict__ params, const double* __restrict__ weights,
        const double* __restrict__ tweights, int with_sums, const double* __restrict__ half,
        int ncomp, double log_term, int start, int stop, const double* __restrict__ prefix,
        int nchunks, int pair_in_shared, double* __restrict__ pair_buf,
        double* __restrict__ placed, double* __restrict__ state,
        long long* __restrict__ out, double* __restrict__ sums) {
    // Pairs start <= t < stop of walk r = blockIdx.x, which halves seqs[r, :L] into
    // out[2r] (left) and out[2r + 1] (right). placed[r, 0/1, c, t]: coordinate c of
    // the point placed left/right at step t; state[r]: the walk's sigma^2 between
    // launches. With with_sums, sums[2r + side, t] collects sum_q k_t(p, seq_q) over
    // the whole sequence for the point p placed there (k_t: weights tweights), from
    // the walk's own evaluations (see the Numba _walk_steps). With nchunks > 0,
    // prefix[r, chunk, 0/1/2, b] holds halve_prefix's partial sums of pair start + b
    // (alpha, s1, s2) over the points placed before start; the steps then sum only
    // over the points placed from start on.
    extern __shared__ double dyn[];
    __shared__ double red[3 * WARPS];
    __shared__ double pre[3 * PAIRS];
    __shared__ int second_left;
    const int r = blockIdx.x, tid = threadIdx.x, H = L / 2, nb = stop - start;
    const long long* seq = seqs + (long long)r * L;
    long long* left = out + (long long)(2 * r) * H;
    long long* right = left + H;
    double* lp = placed + (long long)r * 2 * d * H;
    double* rp = lp + (long long)d * H;
    double* sl = with_sums ? sums + (long long)(2 * r) * H : nullptr;
    double* sr = with_sums ? sl + H : nullptr;
    const double* tw = with_sums ? tweights : nullptr;
    double* x12 = pair_in_shared ? dyn : pair_buf + (long long)r * 2 * d;
    const bool has_prefix = nchunks > 0;
    if (has_prefix) {
        for (int idx = tid; idx < 3 * nb; idx += blockDim.x) {
            const int q = idx / nb, b = idx - q * nb;
            double total = 0.0;
            for (int c = 0; c < nchunks; ++c)
                total += prefix[(((long long)r * nchunks + c) * 3 + q) * PAIRS + b];
            pre[q * PAIRS + b] = total;
        }
    }
    double sigma2 = tid == 0 ? state[r] : 0.0;  // thread 0 decides
    const int j_from = has_prefix ? start : 0;
    for (int t = start; t < stop; ++t) {
        const long long i1 = seq[2 * t], i2 = seq[2 * t + 1];
        for (int c = tid; c < d; c += blockDim.x) {
            x12[c] = (double)X[i1 * d + c];
            x12[d + c] = (double)X[i2 * d + c];
        }
        __syncthreads();  // the pair, pre[] and the previous step's placed point
        double al = 0.0, s1 = 0.0, s2 = 0.0;
        for (int s = j_from + tid; s < t; s += blockDim.x) {
            double t1r = 0.0, t2r = 0.0, t1l = 0.0, t2l = 0.0;
            const double k1r = kernel_values<double, double>(x12, rp + s, H, d, ncomp, codes,
                                                             params, weights, tw, half, &t1r);
            const double k2r = kernel_values<double, double>(x12 + d, rp + s, H, d, ncomp,
                                                             codes, params, weights, tw, half,
                                                             &t2r);
            const double k1l = kernel_values<double, double>(x12, lp + s, H, d, ncomp, codes,
                                                             params, weights, tw, half, &t1l);
            const double k2l = kernel_values<double, double>(x12 + d, lp + s, H, d, ncomp,
                                                             codes, params, weights, tw, half,
                                                             &t2l);
            al += (k1r - k2r) - (k1l - k2l);
            if (with_sums) {
                s1 += t1r + t1l;
                s2 += t2r + t2l;
                sr[s] += t1r + t2r;  // s is this thread's alone in this step
                sl[s] += t1l + t2l;
            }
        }
        block_sum3(al, s1, s2, red);
        if (tid == 0) {
            if (has_prefix) {
                al += pre[t - start];
                s1 += pre[PAIRS + t - start];
                s2 += pre[2 * PAIRS + t - start];
            }
            double kt11 = 0.0, kt22 = 0.0, kt12 = 0.0;
            const double k11 = kernel_values<double, double>(x12, x12, 1, d, ncomp, codes,
                                                             params, weights, tw, half, &kt11);
            const double k22 = kernel_values<double, double>(x12 + d, x12 + d, 1, d, ncomp,
                                                             codes, params, weights, tw, half,
                                                             &kt22);
            const double k12 = kernel_values<double, double>(x12, x12 + d, 1, d, ncomp, codes,
                                                             params, weights, tw, half, &kt12);
            const double b2 = k11 + k22 - 2.0 * k12;
            double a = fmax(sqrt(fmax(b2 * sigma2 * log_term, 0.0)), b2);
            if (a > 0.0) {
                sigma2 += b2 * fmax(0.0, 1.0 + (b2 - 2.0 * a) * sigma2 / (a * a));
            } else {
                a = 1.0;  // b = 0: both points are the same in the RKHS
            }
            // alpha = <k(x1,.) - k(x2,.), right - left>; x2 goes left with
            // probability (1 - alpha / a) / 2.
            const int second = u[(long long)r * H + t] <= 0.5 * (1.0 - al / a);
            left[t] = second ? i2 : i1;
            right[t] = second ? i1 : i2;
            if (with_sums) {
                s1 += kt11 + kt12;
                s2 += kt22 + kt12;
                sl[t] = second ? s2 : s1;
                sr[t] = second ? s1 : s2;
            }
            second_left = second;
        }
        __syncthreads();
        const int second = second_left;
        for (int c = tid; c < d; c += blockDim.x) {
            lp[(long long)c * H + t] = second ? x12[d + c] : x12[c];
            rp[(long long)c * H + t] = second ? x12[c] : x12[d + c];
        }
        __syncthreads();  // x12 is read above before the next step overwrites it
    }
    if (tid == 0) state[r] = sigma2;
}

template <typename T>
__global__ void halve_prefix(
        const T* __restrict__ X, int d, const long long* __restrict__ seqs, int L,
        const long long* __restrict__ codes, const double* __restrict__ params,
        const double* __restrict__ weights, const double* __restrict__ tweights,
        int with_sums, const double* __restrict__ half, int ncomp, int start, int stop,
        const double* __restrict__ placed, double* __restrict__ sums,
        double* __restrict__ partial, int nchunks) {
    // Grid (nchunks, walks): thread j = blockIdx.x * THREADS + threadIdx.x owns the
    // points placed at step j < start of walk r = blockIdx.y (both sides). For each pair
    // start + b (b < stop - start <= PAIRS) the block writes its part of alpha, s1 and
    // s2 to partial[r, blockIdx.x, 0/1/2, b]; with with_sums, thread j adds the pairs'
    // target-kernel values to sums[2r + side, j] (its own entries: no race).
    __shared__ double wpart[3 * WARPS * PAIRS];
    const int r = blockIdx.y, tid = threadIdx.x, H = L / 2, nb = stop - start;
    const int lane = tid & 31, warp = tid >> 5;
    const int j = blockIdx.x * blockDim.x + tid;  // j < H < 2^31
    const bool valid = j < start;
    const long long* seq = seqs + (long long)r * L;
    const double* lp = placed + (long long)r * 2 * d * H;
    const double* rp = lp + (long long)d * H;
    const double* tw = with_sums ? tweights : nullptr;
    double accl = 0.0, accr = 0.0;
    for (int b = 0; b < nb; ++b) {
        const T* x1 = X + seq[2 * (start + b)] * d;  // the same address in every thread
        const T* x2 = X + seq[2 * (start + b) + 1] * d;
        double al = 0.0, s1 = 0.0, s2 = 0.0;
        if (valid) {
            double t1r = 0.0, t2r = 0.0, t1l = 0.0, t2l = 0.0;
            const double k1r = kernel_values<T, double>(x1, rp + j, H, d, ncomp, codes, params,
                                                        weights, tw, half, &t1r);
            const double k2r = kernel_values<T, double>(x2, rp + j, H, d, ncomp, codes, params,
                                                        weights, tw, half, &t2r);
            const double k1l = kernel_values<T, double>(x1, lp + j, H, d, ncomp, codes, params,
                                                        weights, tw, half, &t1l);
            const double k2l = kernel_values<T, double>(x2, lp + j, H, d, ncomp, codes, params,
                                                        weights, tw, half, &t2l);
            al = (k1r - k2r) - (k1l - k2l);
            if (with_sums) {
                s1 = t1r + t1l;
                s2 = t2r + t2l;
                accr += t1r + t2r;
                accl += t1l + t2l;
            }
        }
        al = warp_sum(al);  // every thread of the warp takes part (valid or not)
        s1 = warp_sum(s1);
        s2 = warp_sum(s2);
        if (lane == 0) {
            wpart[(0 * WARPS + warp) * PAIRS + b] = al;
            wpart[(1 * WARPS + warp) * PAIRS + b] = s1;
            wpart[(2 * WARPS + warp) * PAIRS + b] = s2;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < 3 * nb; idx += blockDim.x) {
        const int q = idx / nb, b = idx - q * nb;
        double total = 0.0;
        for (int w = 0; w < WARPS; ++w) total += wpart[(q * WARPS + w) * PAIRS + b];
        partial[(((long long)r * nchunks + blockIdx.x) * 3 + q) * PAIRS + b] = total;
    }
    if (with_sums && valid) {
        sums[(long long)(2 * r) * H + j] += accl;
        sums[(long long)(2 * r + 1) * H + j] += accr;
    }
}

template <typename T>
__global__ void coreset_sums(const T* __restrict__ X, int d, const long long* __restrict__ rows,
                             int s, const long long* __restrict__ codes,
                             const double* __restrict__ params,
                             const double* __restrict__ weights,
                             const double* __restrict__ half, int ncomp,
                             double* __restrict__ out) {
    // out[c] = sum_{a,b} k(X[rows[c, a]], X[rows[c, b]]), one block per row c.
    __shared__ double red[3 * WARPS];
    const long long* row = rows + (long long)blockIdx.x * s;
    const long long total_pairs = (long long)s * s;
    double total = 0.0, unused1 = 0.0, unused2 = 0.0;
    for (long long idx = threadIdx.x; idx < total_pairs; idx += blockDim.x) {
        const long long a = idx / s, b = idx - a * s;
        total += kernel_value<T, T>(X + row[a] * d, X + row[b] * d, 1, d, ncomp, codes, params,
                                    weights, half);
    }
    block_sum3(total, unused1, unused2, red);
    if (threadIdx.x == 0) out[blockIdx.x] = total;
}

template <typename T>
__global__ void refine_blocks(
        const T* __restrict__ X, int d, const long long* __restrict__ merged, int L,
        const long long* __restrict__ halves_pos, const long long* __restrict__ pick,
        const long long* __restrict__ codes, const double* __restrict__ params,
        const double* __restrict__ weights, const double* __restrict__ half, int ncomp,
        const double* __restrict__ mean_in, int have_mean, double* __restrict__ scratch,
        int* __restrict__ count, long long* __restrict__ out) {
    // Compress's refinement of block w = blockIdx.x (rows merged[w, :L]), as
    // refine_halves_reference: the better by MMD to the block of the walk's half
    // halves_pos[2w + pick[w]] and the odd positions, then one greedy swap pass
    // without repeats. Positions in the block throughout; out[w, :L/2] the result.
    // scratch[w, 0/1/2, :]: the kernel mean over the block, the sums over the
    // coreset (ks), the current slot's kernel column; count[w, :]: coreset counts.
    __shared__ double red[3 * WARPS];
    __shared__ double redv[WARPS];
    __shared__ long long redz[WARPS];
    __shared__ long long choice;
    __shared__ double old_score;
    __shared__ double diag;
    const int w = blockIdx.x, tid = threadIdx.x, h = L / 2;
    const long long* rows = merged + (long long)w * L;
    double* mean = scratch + (long long)w * 3 * L;
    double* ks = mean + L;
    double* kcol = ks + L;
    int* cnt = count + (long long)w * L;
    long long* pos = out + (long long)w * h;
    const long long* first = halves_pos + (2LL * w + pick[w]) * h;
    for (int a = tid; a < L; a += blockDim.x) {
        if (have_mean) {
            mean[a] = mean_in[(long long)w * L + a];
        } else {
            double total = 0.0;
            for (int b = 0; b < L; ++b)
                total += kernel_value<T, T>(X + rows[a] * d, X + rows[b] * d, 1, d, ncomp,
                                            codes, params, weights, half);
            mean[a] = total / L;
        }
        cnt[a] = 0;
    }
    __syncthreads();
    double best_score = POS_INF;  // thread 0's
    int best = 0;
    for (int c = 0; c < 2; ++c) {
        double qq = 0.0, lin = 0.0, unused = 0.0;
        for (long long idx = tid; idx < (long long)h * h; idx += blockDim.x) {
            const int s = (int)(idx / h), s2 = (int)(idx - (long long)s * h);
            const long long p = c == 0 ? first[s] : 2LL * s + 1;
            const long long p2 = c == 0 ? first[s2] : 2LL * s2 + 1;
            qq += kernel_value<T, T>(X + rows[p] * d, X + rows[p2] * d, 1, d, ncomp, codes,
                                     params, weights, half);
        }
        for (int s = tid; s < h; s += blockDim.x) lin += mean[c == 0 ? first[s] : 2LL * s + 1];
        block_sum3(qq, lin, unused, red);
        if (tid == 0) {
            const double score = qq / ((double)h * h) - 2.0 * lin / h;
            if (score < best_score) { best_score = score; best = c; }  // ties: c = 0
        }
        __syncthreads();
    }
    if (tid == 0) {
        choice = best;
        diag = kernel_value<T, T>(X + rows[0] * d, X + rows[0] * d, 1, d, ncomp, codes, params,
                                  weights, half);
    }
    __syncthreads();
    const int chosen = (int)choice;
    for (int s = tid; s < h; s += blockDim.x) {
        const long long p = chosen == 0 ? first[s] : 2LL * s + 1;
        pos[s] = p;
        atomicAdd(&cnt[p], 1);
    }
    __syncthreads();
    for (int z = tid; z < L; z += blockDim.x) {
        double total = 0.0;
        for (int s = 0; s < h; ++s)
            total += kernel_value<T, T>(X + rows[z] * d, X + rows[pos[s]] * d, 1, d, ncomp,
                                        codes, params, weights, half);
        ks[z] = total;
    }
    __syncthreads();
    const double k0 = diag;
    for (int s = 0; s < h; ++s) {
        const long long old = pos[s];
        double bv = POS_INF;
        long long bz = L;  // none yet
        for (int z = tid; z < L; z += blockDim.x) {
            const double kc = kernel_value<T, T>(X + rows[z] * d, X + rows[old] * d, 1, d,
                                                 ncomp, codes, params, weights, half);
            kcol[z] = kc;
            const double score = k0 + 2.0 * (ks[z] - kc) - 2.0 * h * mean[z];
            if (z == old) old_score = score;
            const int others = cnt[z] - (z == old ? 1 : 0);
            if (others <= 0 && score < bv) { bv = score; bz = z; }
        }
        block_argmin(bv, bz, redv, redz);
        if (tid == 0) {
            // The lowest position of the lowest score, taken only when strictly below
            // the old point's (the reference keeps the old point on ties).
            long long next = old;
            if (bz < L && bv < old_score) next = bz;
            choice = next;
            if (next != old) {
                cnt[old] -= 1;
                cnt[next] += 1;
                pos[s] = next;
            }
        }
        __syncthreads();
        const long long next = choice;
        if (next != old) {
            for (int z = tid; z < L; z += blockDim.x)
                ks[z] += kernel_value<T, T>(X + rows[z] * d, X + rows[next] * d, 1, d, ncomp,
                                            codes, params, weights, half) - kcol[z];
        }
        __syncthreads();  // ks, pos[s] and choice before the next slot
    }
}
"""

_KERNELS = ("halve_steps", "halve_prefix", "coreset_sums", "refine_blocks")


def cuda_sources() -> list[CudaSource]:
    """The CUDA sources this module compiles: one module, every kernel a template
    instantiated for float and double data."""
    names = tuple(f"{fn}<{t}>" for fn in _KERNELS for t in ("float", "double"))
    return [CudaSource("thinning", _HALVING_SOURCE, CUDA_OPTIONS, names, _THREADS)]


_module, _kernel = single_module(__name__)


def _function(name, X):
    return _kernel(f"{name}<{_ctype(X)}>")


@lru_cache(maxsize=16)
def _sm_count(device_id):
    return int(cupy.cuda.Device(device_id).attributes["MultiProcessorCount"])


def _device_int64(a):
    """A C-contiguous int64 CuPy copy of host or device ``a``."""
    return cupy.ascontiguousarray(cupy.asarray(a).astype(cupy.int64, copy=False))


def _device_float64(a):
    return cupy.ascontiguousarray(cupy.asarray(a).astype(cupy.float64, copy=False))


def _halve(X, seqs, u, kernel, log_term, tweights):
    """Halves (device int64, ``(2 walks, L/2)``) and, with ``tweights``, the target
    sums (device float64, same shape) of every walk."""
    X = _real(X)
    d = X.shape[1]
    seqs = _device_int64(seqs)
    u = _device_float64(u)
    walks, L = seqs.shape
    H = L // 2
    with_sums = tweights is not None
    out = cupy.empty((2 * walks, H), dtype=cupy.int64)
    sums = cupy.zeros((2 * walks, H), dtype=cupy.float64)
    if walks == 0 or H == 0:
        return out, sums
    codes, params, weights, half, ncomp = _device_spec(kernel)
    tw = _device_float64(tweights) if with_sums else weights  # unread without sums
    placed = cupy.empty((walks, 2, d, H), dtype=cupy.float64)
    state = cupy.zeros(walks, dtype=cupy.float64)
    pair_in_shared = 16 * d <= _PAIR_SHARED_BYTES
    pair_buf = cupy.empty(1 if pair_in_shared else walks * 2 * d, dtype=cupy.float64)
    smem = 16 * d if pair_in_shared else 0
    steps = _function("halve_steps", X)
    few = walks < _sm_count(cupy.cuda.Device().id) and H > _PAIRS
    if few:  # blocks of _PAIRS pairs; the sums over earlier blocks on the whole GPU
        prefix = _function("halve_prefix", X)
        partial = cupy.empty(walks * ((H + _THREADS - 1) // _THREADS) * 3 * _PAIRS,
                             dtype=cupy.float64)
        bounds = [(s, min(H, s + _PAIRS)) for s in range(0, H, _PAIRS)]
    else:
        partial = cupy.empty(1, dtype=cupy.float64)
        bounds = [(0, H)]
    for start, stop in bounds:
        nchunks = 0
        if few and start > 0:
            nchunks = (start + _THREADS - 1) // _THREADS
            prefix((nchunks, walks), (_THREADS,),
                   (X, np.int32(d), seqs, np.int32(L), codes, params, weights, tw,
                    np.int32(with_sums), half, np.int32(ncomp), np.int32(start),
                    np.int32(stop), placed, sums, partial, np.int32(nchunks)))
        steps((walks,), (_THREADS,),
              (X, np.int32(d), seqs, np.int32(L), u, codes, params, weights, tw,
               np.int32(with_sums), half, np.int32(ncomp), np.float64(log_term),
               np.int32(start), np.int32(stop), partial, np.int32(nchunks),
               np.int32(pair_in_shared), pair_buf, placed, state, out, sums),
              shared_mem=smem)
    return out, sums


def halve_round(xp, X, seqs, u, kernel, log_term):
    """One round of kernel halving of each row of ``seqs`` on the GPU (see the
    reference); the halves come back to the host, where the bookkeeping is."""
    return _halve(X, seqs, u, kernel, log_term, None)[0].get()


def halve_with_sums(xp, X, seqs, u, kernel, log_term, target):
    """``halve_round`` that also returns the target kernel's row sums of each walk
    (see ``halve_with_sums_reference``), from the walks' own kernel evaluations;
    ``target`` must be ``kernel`` or its leading components (``target_weights``)."""
    from ._core import target_weights

    tweights = target_weights(kernel, target)
    if tweights is None:
        raise ValueError("the target kernel is not part of the split kernel.")
    halves, sums = _halve(X, seqs, u, kernel, log_term, np.asarray(tweights, np.float64))
    return halves.get(), sums.get()


def coreset_sums(xp, X, rows, kernel):
    """sum_{a,b} k(X[rows[c,a]], X[rows[c,b]]) for every row c (host float64)."""
    X = _real(X)
    rows = _device_int64(rows)
    out = cupy.zeros(rows.shape[0], dtype=cupy.float64)
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return out.get()
    codes, params, weights, half, ncomp = _device_spec(kernel)
    _function("coreset_sums", X)(
        (rows.shape[0],), (_THREADS,),
        (X, np.int32(X.shape[1]), rows, np.int32(rows.shape[1]), codes, params, weights, half,
         np.int32(ncomp), out))
    return out.get()


def refine_halves(xp, X, merged, halves_pos, pick, kernel, mean_k=None):
    """Compress's refinement of every block on the GPU, one thread block per Compress
    block (see ``refine_halves_reference``); positions come back to the host."""
    X = _real(X)
    merged = _device_int64(merged)
    halves_pos = _device_int64(halves_pos)
    pick = _device_int64(pick)
    walks, L = merged.shape
    out = cupy.empty((walks, L // 2), dtype=cupy.int64)
    if walks == 0 or L // 2 == 0:
        return out.get()
    have_mean = mean_k is not None
    mean_in = _device_float64(mean_k) if have_mean else cupy.empty(1, dtype=cupy.float64)
    scratch = cupy.empty((walks, 3, L), dtype=cupy.float64)
    count = cupy.empty((walks, L), dtype=cupy.int32)
    codes, params, weights, half, ncomp = _device_spec(kernel)
    _function("refine_blocks", X)(
        (walks,), (_THREADS,),
        (X, np.int32(X.shape[1]), merged, np.int32(L), halves_pos, pick, codes, params,
         weights, half, np.int32(ncomp), mean_in, np.int32(have_mean), scratch, count, out))
    return out.get()


def swap_pass(xp, X, pool, coreset_pos, mean_k, kernel, unique):
    """KT-SWAP's greedy pass with GPU kernel columns and a GPU argmin per slot (the
    device spec taken once for all slots)."""
    # The pool in float64 (O(n d)): the slots' sums ks stay in float64 as on the CPU.
    P = _device_float64(_real(X)[_device_int64(pool)])
    pos = np.array(to_numpy(coreset_pos), dtype=np.int64)
    size = pos.shape[0]
    mean_k = _device_float64(mean_k)
    spec = _device_spec(kernel)
    # Row sums of K(pool, coreset) by the blocked matvec: never the pool x coreset
    # matrix (8 GiB at n = 2^20, s = 1024).
    ks = kernel_matvec(xp, P, P[cupy.asarray(pos)], cupy.ones((size, 1)), kernel)[:, 0]
    k0 = kernel.diagonal_value
    count = cupy.asarray(np.bincount(pos, minlength=P.shape[0]))
    for s in range(size):
        old = int(pos[s])
        kcol = kernel_matrix_device(P, P[old:old + 1], spec)[:, 0]
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
            ks += kernel_matrix_device(P, P[best:best + 1], spec)[:, 0] - kcol
            count[old] -= 1
            count[best] += 1
            pos[s] = best
    return pos
