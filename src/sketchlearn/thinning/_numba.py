"""Numba kernels for kernel halving and KT-SWAP (kernel values computed on the fly).

Memory is O(n d): no kernel matrix is stored. Each halving walk is sequential over
its pairs; the sum over the points already placed runs in parallel when the walk is
long, and independent walks of one round run in parallel over walks.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .._jit import FASTMATH, exp_for_sums, njit
from ..kernels._kernels import GAUSSIAN
from ..kernels._numba import kernel_row, kernel_row_pair, kernel_value

# A walk alone in its round goes by blocks of _BLOCK_PAIRS pairs (one parallel region
# per block) once it has _BLOCKED_WALK_MIN pairs; below _PARALLEL_POOL_MIN candidates a
# swap step runs on one thread: starting a parallel region costs more than it saves
# (measured on 2 cores). Few large blocks, because every region waits for its slowest
# thread: on 2 cores busy with another process's 2 threads, a region often waits for a
# thread the OS has set aside (OpenMP threads spin meanwhile). First walk at n = 2^14,
# d = 2, 2 threads, with 256 / 2048 pairs per block: 0.072 / 0.078 s on a quiet
# machine, 0.51 / 0.16 s beside two busy loops (one thread without blocks: 0.10 s).
_BLOCK_PAIRS = 2048
_BLOCKED_WALK_MIN = 2 * _BLOCK_PAIRS
_PARALLEL_POOL_MIN = 2**16


@njit(cache=True, fastmath=FASTMATH)
def _threshold(b2, sigma2, log_term):
    """Threshold a and updated sigma^2 of the self-balancing walk for one pair."""
    a = max(math.sqrt(b2 * sigma2 * log_term), b2)
    if a > 0.0:
        sigma2 += b2 * max(0.0, 1.0 + (b2 - 2.0 * a) * sigma2 / (a * a))
    else:
        a = 1.0  # b = 0: both points are the same in the RKHS; any choice is fine
    return a, sigma2


_CHUNK = 512


@njit(cache=True, inline="always")
def _squares_first(gauss_a):
    """Two Gaussians whose second exponent is twice the first to 1e-12 (KT+'s k + k_rt)."""
    return (gauss_a.shape[0] == 2
            and abs(gauss_a[1] - 2.0 * gauss_a[0]) <= 1e-12 * gauss_a[0])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _pair_sq_dists(x1, x2, placed, c0, c1, sq1, sq2):
    """``sq1[jj] = |x1 - p|^2`` and ``sq2[jj] = |x2 - p|^2`` for the placed points ``p =
    placed[:, c0 + jj]``, ``c0 <= c0 + jj < c1``.

    Two coordinates per pass over the buffers (the first pass stores, the others add;
    with odd d the last pass pairs the last coordinate with itself, weighted 0): at
    d = 2 one pass instead of a zeroing pass and two read-modify-write passes, and
    half the buffer traffic at any d (kernel halving 15-20% faster per evaluation at
    d = 2 and d = 10). Two loops, as before, so compilation takes no longer.
    """
    d = placed.shape[0]
    m = c1 - c0
    for t in range(0, d, 2):
        tb = min(t + 1, d - 1)
        w = 1.0 if t + 1 < d else 0.0
        row_a = placed[t, c0:c1]
        row_b = placed[tb, c0:c1]
        ua1, ub1, ua2, ub2 = x1[t], x1[tb], x2[t], x2[tb]
        if t == 0:
            for jj in range(m):
                ea1 = ua1 - row_a[jj]
                eb1 = ub1 - row_b[jj]
                ea2 = ua2 - row_a[jj]
                eb2 = ub2 - row_b[jj]
                sq1[jj] = ea1 * ea1 + w * (eb1 * eb1)
                sq2[jj] = ea2 * ea2 + w * (eb2 * eb2)
        else:
            for jj in range(m):
                ea1 = ua1 - row_a[jj]
                eb1 = ub1 - row_b[jj]
                ea2 = ua2 - row_a[jj]
                eb2 = ub2 - row_b[jj]
                sq1[jj] += ea1 * ea1 + w * (eb1 * eb1)
                sq2[jj] += ea2 * ea2 + w * (eb2 * eb2)


@njit(cache=True, fastmath=FASTMATH)
def _gaussian_side(x1, x2, placed, j0, j1, gauss_a, weights, tweights, acc, with_sums,
                   sq1, sq2):
    """One side of the balance for a kernel made of Gaussians only, fused.

    For the placed points ``placed[:, j0:j1]`` (columns) and ``k = sum_c weights[c]
    exp(-gauss_a[c] |x - y|^2)`` returns ``(sum_j k(x1, p_j) - k(x2, p_j), sum_j
    k_t(x1, p_j), sum_j k_t(x2, p_j))`` (``k_t`` with ``tweights``, the sums only
    with ``with_sums``, which also adds ``k_t(x1, p_j) + k_t(x2, p_j)`` to
    ``acc[j]``). By chunks of ``_CHUNK`` points: both squared distances in one read
    of the points, into buffers that stay in L1, and each exponential used for all
    its sums (1.3x faster than ``kernel_row`` four times at d = 10).
    """
    diff = 0.0
    s1 = 0.0
    s2 = 0.0
    for c0 in range(j0, j1, _CHUNK):
        c1 = min(j1, c0 + _CHUNK)
        m = c1 - c0
        _pair_sq_dists(x1, x2, placed, c0, c1, sq1, sq2)
        if _squares_first(gauss_a):
            # KT+: k + k_rt with a_1 = 2 a_0 (up to rounding, the delta term):
            # exp(-a_1 s) = exp(-a_0 s)^2 exp(-delta s), the last factor 1 - delta s
            # to rounding, so one exponential serves both components.
            a = gauss_a[0]
            delta = gauss_a[1] - 2.0 * a
            w0, w1, tw0, tw1 = weights[0], weights[1], tweights[0], tweights[1]
            seg = acc[c0:c1] if with_sums else acc[0:0]
            for jj in range(m):
                v1 = exp_for_sums(-a * sq1[jj])
                v2 = exp_for_sums(-a * sq2[jj])
                f1 = v1 * v1 * (1.0 - delta * sq1[jj])
                f2 = v2 * v2 * (1.0 - delta * sq2[jj])
                diff += w0 * (v1 - v2) + w1 * (f1 - f2)
                if with_sums:
                    q1 = tw0 * v1 + tw1 * f1
                    q2 = tw0 * v2 + tw1 * f2
                    s1 += q1
                    s2 += q2
                    seg[jj] += q1 + q2
            continue
        for c in range(gauss_a.shape[0]):
            a = gauss_a[c]
            w = weights[c]
            tw = tweights[c]
            if with_sums and tw != 0.0:
                seg = acc[c0:c1]
                for jj in range(m):
                    v1 = exp_for_sums(-a * sq1[jj])
                    v2 = exp_for_sums(-a * sq2[jj])
                    diff += w * (v1 - v2)
                    s1 += tw * v1
                    s2 += tw * v2
                    seg[jj] += tw * (v1 + v2)
            else:
                for jj in range(m):
                    diff += w * (exp_for_sums(-a * sq1[jj]) - exp_for_sums(-a * sq2[jj]))
    return diff, s1, s2


@njit(cache=True, fastmath=FASTMATH)
def _balance(x1, x2, left_x, right_x, j0, j1, codes, params, weights, sq, k1, k2, gauss_a):
    """sum over placed rows j0..j1 of (k(x1,.) - k(x2,.)) on the right minus the left.

    ``left_x``/``right_x`` hold the placed points as columns (shape ``(d, half)``).
    ``gauss_a`` (non-empty when every component is Gaussian) selects the fused path.
    """
    if gauss_a.shape[0] > 0:
        r = _gaussian_side(x1, x2, right_x, j0, j1, gauss_a, weights, weights, sq, False,
                           sq, k1)[0]
        return r - _gaussian_side(x1, x2, left_x, j0, j1, gauss_a, weights, weights, sq,
                                  False, sq, k1)[0]
    total = 0.0
    kernel_row(x1, right_x, j0, j1, codes, params, weights, sq, k1)
    kernel_row(x2, right_x, j0, j1, codes, params, weights, sq, k2)
    for jj in range(j1 - j0):
        total += k1[jj] - k2[jj]
    kernel_row(x1, left_x, j0, j1, codes, params, weights, sq, k1)
    kernel_row(x2, left_x, j0, j1, codes, params, weights, sq, k2)
    for jj in range(j1 - j0):
        total -= k1[jj] - k2[jj]
    return total


@njit(cache=True, fastmath=FASTMATH)
def _balance_sums(x1, x2, left_x, right_x, j0, j1, codes, params, weights, tweights, sums,
                  sq, k1, k2, t1, t2, gauss_a):
    """``_balance`` plus the target-kernel sums of the same evaluations.

    Returns ``(alpha, s1, s2)`` with ``s1 = sum_j k_t(x1, p_j)`` over the placed points
    ``p_j`` (``j0 <= j < j1``, both sides), ``s2`` likewise, and adds
    ``k_t(x1, p_j) + k_t(x2, p_j)`` to ``sums[side, j]``: every pair of the walk is
    evaluated once, so the placed points collect their sums over later points here.
    """
    total = 0.0
    s1 = 0.0
    s2 = 0.0
    for side in range(2):
        placed = right_x if side == 1 else left_x
        sign = 1.0 if side == 1 else -1.0
        acc = sums[side]
        if gauss_a.shape[0] > 0:
            part, p1, p2 = _gaussian_side(x1, x2, placed, j0, j1, gauss_a, weights, tweights,
                                          acc, True, sq, k1)
            total += sign * part
            s1 += p1
            s2 += p2
            continue
        kernel_row_pair(x1, placed, j0, j1, codes, params, weights, tweights, sq, k1, t1)
        kernel_row_pair(x2, placed, j0, j1, codes, params, weights, tweights, sq, k2, t2)
        part = 0.0
        for jj in range(j1 - j0):
            part += k1[jj] - k2[jj]
            s1 += t1[jj]
            s2 += t2[jj]
            acc[j0 + jj] += t1[jj] + t2[jj]
        total += sign * part
    return total, s1, s2


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _block_prefix(X, seq, t0, t1, left_x, right_x, codes, params, weights, tweights, sums,
                  with_sums, out, gauss_a):
    """The sums of pairs ``t0..t1-1`` over the points placed before ``t0``, in parallel.

    The pairs' points are known before they are placed, and the points before ``t0``
    are placed already, so this part of each pair's balance does not wait for the
    pairs just before it. Parallel over chunks of placed points (each chunk owns its
    slice of ``sums``), every chunk serving all pairs of the block while it is in
    cache. ``out[0/1/2, b]`` get alpha, s1 and s2 of pair ``t0 + b``.
    """
    nb, d = t1 - t0, X.shape[1]
    n_chunks = (t0 + _CHUNK - 1) // _CHUNK
    part = np.zeros((n_chunks, 3, nb))
    for c in prange(n_chunks):
        j0 = c * _CHUNK
        j1 = min(t0, j0 + _CHUNK)
        bufs = np.empty((5, _CHUNK))
        x1 = np.empty(d)
        x2 = np.empty(d)
        for b in range(nb):
            i1, i2 = seq[2 * (t0 + b)], seq[2 * (t0 + b) + 1]
            for q in range(d):
                x1[q] = X[i1, q]
                x2[q] = X[i2, q]
            if with_sums:
                a, s1, s2 = _balance_sums(x1, x2, left_x, right_x, j0, j1, codes, params,
                                          weights, tweights, sums, bufs[0], bufs[1], bufs[2],
                                          bufs[3], bufs[4], gauss_a)
                part[c, 1, b] = s1
                part[c, 2, b] = s2
            else:
                a = _balance(x1, x2, left_x, right_x, j0, j1, codes, params, weights, bufs[0],
                             bufs[1], bufs[2], gauss_a)
            part[c, 0, b] = a
    for r in range(3):
        for b in range(nb):
            total = 0.0
            for c in range(n_chunks):
                total += part[c, r, b]
            out[r, b] = total


@njit(cache=True, fastmath=FASTMATH)
def _walk_steps(X, seq, u, codes, params, weights, log_term, left, right, tweights, sums,
                with_sums, gauss_a, placed, state, start, stop, prefix):
    """Pairs ``start <= t < stop`` of the halving walk of ``seq`` (row numbers of X, even
    length) into ``left`` and ``right``.

    The coordinates of the points placed so far are kept contiguous (``placed[0]``
    left, ``placed[1]`` right, points as columns, see kernel_row), so each step's
    kernel sums stream through memory. ``state`` carries the walk's ``sigma^2`` and
    the target kernel's diagonal from one call to the next. With ``with_sums``,
    ``sums[0, t]`` / ``sums[1, t]`` end up holding ``sum_q k_t(p, seq_q)`` over the
    whole sequence (itself included) for the point ``p`` placed at ``left[t]`` /
    ``right[t]``, ``k_t`` the kernel with weights ``tweights`` (see
    ``kernel_row_pair``): the kernel mean of KT-SWAP, from the walk's own evaluations.

    ``prefix`` (shape ``(3, >= stop - start)``) holds the sums of these pairs over the
    points placed before ``start``, from ``_block_prefix``; with an empty ``prefix``
    the steps sum over every point placed so far themselves.
    """
    half = seq.shape[0] // 2
    d = X.shape[1]
    left_x, right_x = placed[0], placed[1]
    x1 = np.empty(d)
    x2 = np.empty(d)
    sq = np.empty(max(half, _CHUNK))
    k1 = np.empty(max(half, _CHUNK))
    k2 = np.empty(half)
    t1 = np.empty(half if with_sums else 0)
    t2 = np.empty(half if with_sums else 0)
    has_prefix = prefix.shape[1] > 0
    j_from = start if has_prefix else 0
    if with_sums and start == 0 and half > 0:
        state[1] = kernel_value(X, seq[0], X, seq[0], codes, params, tweights)
    diag_t = state[1]
    sigma2 = state[0]
    for t in range(start, stop):
        i1, i2 = seq[2 * t], seq[2 * t + 1]
        for c in range(d):
            x1[c] = X[i1, c]
            x2[c] = X[i2, c]
        b2 = (kernel_value(X, i1, X, i1, codes, params, weights)
              + kernel_value(X, i2, X, i2, codes, params, weights)
              - 2.0 * kernel_value(X, i1, X, i2, codes, params, weights))
        a, sigma2 = _threshold(b2, sigma2, log_term)
        s1 = 0.0
        s2 = 0.0
        if with_sums:
            alpha, s1, s2 = _balance_sums(x1, x2, left_x, right_x, j_from, t, codes,
                                          params, weights, tweights, sums, sq, k1, k2,
                                          t1, t2, gauss_a)
            k12 = kernel_value(X, i1, X, i2, codes, params, tweights)
            s1 += diag_t + k12
            s2 += diag_t + k12
        else:
            alpha = _balance(x1, x2, left_x, right_x, j_from, t, codes, params, weights,
                             sq, k1, k2, gauss_a)
        if has_prefix:
            alpha += prefix[0, t - start]
            s1 += prefix[1, t - start]
            s2 += prefix[2, t - start]
        # psi = sum(left) - sum(right) in the RKHS; <psi, k(x1,.) - k(x2,.)> = -alpha.
        if u[t] <= 0.5 * (1.0 - alpha / a):  # x2 goes left
            left[t], right[t], xl, xr, sl, sr = i2, i1, x2, x1, s2, s1
        else:
            left[t], right[t], xl, xr, sl, sr = i1, i2, x1, x2, s1, s2
        for c in range(d):
            left_x[c, t] = xl[c]
            right_x[c, t] = xr[c]
        if with_sums:
            sums[0, t], sums[1, t] = sl, sr
    state[0] = sigma2


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _halve_round(X, seqs, u, codes, params, weights, log_term, out, tweights, sums,
                 with_sums, gauss_a):
    """Halve every row of ``seqs`` in parallel; ``out[2 r]``/``out[2 r + 1]`` get its halves
    (and ``sums[2 r : 2 r + 2]`` their target-kernel sums, see ``_walk_steps``)."""
    half, d = seqs.shape[1] // 2, X.shape[1]
    for r in prange(seqs.shape[0]):
        _walk_steps(X, seqs[r], u[r], codes, params, weights, log_term, out[2 * r],
                    out[2 * r + 1], tweights, sums[2 * r:2 * r + 2], with_sums, gauss_a,
                    np.empty((2, d, half)), np.zeros(2), np.int64(0), half, np.empty((3, 0)))


def _halve_walk(X, seq, u, codes, params, weights, log_term, left, right, tweights, sums,
                with_sums, gauss_a):
    """One walk, alone in its round: a long one goes by blocks of ``_BLOCK_PAIRS`` pairs,
    the sums over the points placed before each block in parallel (``_block_prefix``)
    and only the sums within the block left to the sequential steps.

    Driven from here, so ``_block_prefix`` is compiled only by calls that run it (a
    first call with short walks saved 5 s of compilation; the blocks' calls cost
    about 20 us each, against milliseconds of work).
    """
    half = seq.shape[0] // 2
    args = (X, seq, u, codes, params, weights, log_term, left, right, tweights, sums,
            with_sums, gauss_a)
    placed = np.empty((2, X.shape[1], half))
    state = np.zeros(2)
    if half < _BLOCKED_WALK_MIN:
        _walk_steps(*args, placed, state, 0, half, np.empty((3, 0)))
        return
    prefix = np.zeros((3, _BLOCK_PAIRS))
    for start in range(0, half, _BLOCK_PAIRS):
        stop = min(half, start + _BLOCK_PAIRS)
        if start == 0:
            _walk_steps(*args, placed, state, 0, stop, np.empty((3, 0)))
            continue
        _block_prefix(X, seq, start, stop, placed[0], placed[1], codes, params, weights,
                      tweights, sums, with_sums, prefix, gauss_a)
        _walk_steps(*args, placed, state, start, stop, prefix)


def _halve_rows(X, seqs, u, kernel, log_term, tweights, with_sums):
    codes, params, weights = kernel.spec()
    X = np.ascontiguousarray(X)
    seqs = np.ascontiguousarray(seqs, dtype=np.int64)
    u = np.ascontiguousarray(u, dtype=np.float64)
    tweights = weights if tweights is None else np.ascontiguousarray(tweights, np.float64)
    R, half = seqs.shape[0], seqs.shape[1] // 2
    # Kernels made of Gaussians only take the fused path (see _gaussian_side).
    gauss_a = params[:, 2].copy() if np.all(codes == GAUSSIAN) else np.empty(0)
    out = np.empty((2 * R, half), dtype=np.int64)
    sums = np.zeros((2 * R, half if with_sums else 0))
    if R >= numba.get_num_threads():
        _halve_round(X, seqs, u, codes, params, weights, float(log_term), out, tweights, sums,
                     with_sums, gauss_a)
    else:  # few long walks: parallelise inside each walk (by blocks of pairs)
        for r in range(R):
            _halve_walk(X, seqs[r], u[r], codes, params, weights, float(log_term),
                        out[2 * r], out[2 * r + 1], tweights, sums[2 * r:2 * r + 2],
                        with_sums, gauss_a)
    return out, sums


def halve_round(xp, X, seqs, u, kernel, log_term):
    """One round of kernel halving of each row of ``seqs`` (see the reference)."""
    return _halve_rows(X, seqs, u, kernel, log_term, None, False)[0]


def halve_with_sums(xp, X, seqs, u, kernel, log_term, target):
    """``halve_round`` that also returns the target kernel's row sums of each walk.

    Returns ``(halves, sums)``: ``halves`` as ``halve_round`` gives them and
    ``sums[2 r + s, t] = sum_q k_target(halves[2 r + s, t], seqs[r, q])`` in the same
    layout, from the walks' own kernel evaluations (``target`` must be ``kernel`` or
    its leading components, see :func:`target_weights`).
    """
    from ._core import target_weights

    tweights = target_weights(kernel, target)
    if tweights is None:
        raise ValueError("the target kernel is not part of the split kernel.")
    return _halve_rows(X, seqs, u, kernel, log_term, tweights, True)


@njit(cache=True, fastmath=FASTMATH)
def _column_chunk(PT, x, ch, codes, params, weights, out):
    j0 = ch * _CHUNK
    j1 = min(PT.shape[1], j0 + _CHUNK)
    sq = np.empty(_CHUNK)
    kernel_row(x, PT, j0, j1, codes, params, weights, sq, out[j0:j1])


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _kernel_column_parallel(PT, x, codes, params, weights, out):
    for ch in prange((PT.shape[1] + _CHUNK - 1) // _CHUNK):
        _column_chunk(PT, x, np.int64(ch), codes, params, weights, out)


@njit(cache=True, fastmath=FASTMATH)
def _kernel_column(PT, j, codes, params, weights, out, parallel):
    """out[z] = k(P[z], P[j]) for every point z of P (given as PT = P.T)."""
    x = PT[:, j].copy()
    if parallel:
        _kernel_column_parallel(PT, x, codes, params, weights, out)
    else:
        for ch in range((PT.shape[1] + _CHUNK - 1) // _CHUNK):
            _column_chunk(PT, x, ch, codes, params, weights, out)


@njit(cache=True, fastmath=FASTMATH)
def _swap_scores(kdiag, ks, kcol, mean_k, size, excluded, out):
    for z in range(out.shape[0]):
        if excluded[z]:
            out[z] = np.inf
        else:
            out[z] = kdiag[z] + 2.0 * (ks[z] - kcol[z]) - 2.0 * size * mean_k[z]


@njit(cache=True)
def _swap_pass(PT, coreset_pos, mean_k, ks, kdiag, unique, codes, params, weights):
    """Greedy pass: each slot in turn takes the pool point that most lowers MMD."""
    size = coreset_pos.shape[0]
    n_pool = PT.shape[1]
    count = np.zeros(n_pool, dtype=np.int64)
    for s in range(size):
        count[coreset_pos[s]] += 1
    kcol = np.empty(n_pool)
    knew = np.empty(n_pool)
    scores = np.empty(n_pool)
    excluded = np.zeros(n_pool, dtype=np.bool_)
    parallel = n_pool >= _PARALLEL_POOL_MIN
    for s in range(size):
        old = coreset_pos[s]
        _kernel_column(PT, old, codes, params, weights, kcol, parallel)
        if unique:
            for z in range(n_pool):
                excluded[z] = count[z] - (1 if z == old else 0) > 0
        _swap_scores(kdiag, ks, kcol, mean_k, size, excluded, scores)
        best = old
        best_score = scores[old]
        for z in range(n_pool):
            if scores[z] < best_score:
                best, best_score = z, scores[z]
        if best != old:
            _kernel_column(PT, best, codes, params, weights, knew, parallel)
            for z in range(n_pool):
                ks[z] += knew[z] - kcol[z]
            count[old] -= 1
            count[best] += 1
            coreset_pos[s] = best
    return coreset_pos


def swap_pass(xp, X, pool, coreset_pos, mean_k, kernel, unique):
    """KT-SWAP's greedy pass (see the reference for the objective)."""
    from ..kernels._numba import kernel_matvec

    codes, params, weights = kernel.spec()
    X = np.ascontiguousarray(X)
    pool = np.ascontiguousarray(pool, dtype=np.int64)
    pos = np.array(coreset_pos, dtype=np.int64)
    P = np.ascontiguousarray(X[pool], dtype=np.float64)
    ks = kernel_matvec(np, P, P[pos], np.ones((pos.shape[0], 1)), kernel)[:, 0]
    kdiag = np.full(pool.shape[0], kernel.diagonal_value)
    return _swap_pass(np.ascontiguousarray(P.T), pos, np.asarray(mean_k, dtype=np.float64),
                      ks, kdiag,
                      bool(unique), codes, params, weights)


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _coreset_sums(X, rows, codes, params, weights, out):
    s, d = rows.shape[1], X.shape[1]
    for c in prange(rows.shape[0]):
        ST = np.empty((d, s))  # the candidate's points as columns (see kernel_row)
        for a in range(s):
            for t in range(d):
                ST[t, a] = X[rows[c, a], t]
        sq = np.empty(s)
        kr = np.empty(s)
        x = np.empty(d)
        total = 0.0
        for a in range(s):
            for t in range(d):
                x[t] = ST[t, a]
            kernel_row(x, ST, np.int64(0), s, codes, params, weights, sq, kr)
            for b in range(s):
                total += kr[b]
        out[c] = total


def coreset_sums(xp, X, rows, kernel):
    """sum_{a,b} k(X[rows[c,a]], X[rows[c,b]]) for every row c, in parallel over rows."""
    codes, params, weights = kernel.spec()
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(rows.shape[0])
    _coreset_sums(np.ascontiguousarray(X), rows, codes, params, weights, out)
    return out


@njit(cache=True, fastmath=FASTMATH)
def _refine_block(X, rows, half, codes, params, weights, out, mean_in, have_mean):
    """KT-SWAP inside one Compress block (see ``refine_halves_reference``): the better
    of ``half`` and the alternate points by MMD to the block, then one greedy swap
    pass over the block (no repeats). Positions are within ``rows``. With
    ``have_mean`` the kernel mean over the block is ``mean_in`` (from the halving
    walk) instead of an ``L^2`` pass here.
    """
    L, d = rows.shape[0], X.shape[1]
    h = L // 2
    BT = np.empty((d, L))
    for a in range(L):
        for t in range(d):
            BT[t, a] = X[rows[a], t]
    sq = np.empty(L)
    kr = np.empty(L)
    x = np.empty(d)
    mean_k = np.empty(L)
    if have_mean:
        for a in range(L):
            mean_k[a] = mean_in[a]
    else:
        for a in range(L):
            for t in range(d):
                x[t] = BT[t, a]
            kernel_row(x, BT, np.int64(0), L, codes, params, weights, sq, kr)
            total = 0.0
            for b in range(L):
                total += kr[b]
            mean_k[a] = total / L
    cands = np.empty((2, h), dtype=np.int64)
    cands[0] = half
    for s in range(h):
        cands[1, s] = 2 * s + 1
    best_score = np.inf
    best = 0
    CT = np.empty((d, h))  # a candidate's points as columns: its sums cost h^2, not h L
    for c in range(2):
        for s in range(h):
            for t in range(d):
                CT[t, s] = BT[t, cands[c, s]]
        qq = 0.0
        lin = 0.0
        for s in range(h):
            for t in range(d):
                x[t] = CT[t, s]
            kernel_row(x, CT, np.int64(0), h, codes, params, weights, sq, kr)
            for s2 in range(h):
                qq += kr[s2]
            lin += mean_k[cands[c, s]]
        score = qq / (h * h) - 2.0 * lin / h
        if score < best_score:
            best_score, best = score, c
    pos = cands[best].copy()
    ks = np.zeros(L)
    for s in range(h):
        for t in range(d):
            x[t] = BT[t, pos[s]]
        kernel_row(x, BT, np.int64(0), L, codes, params, weights, sq, kr)
        for z in range(L):
            ks[z] += kr[z]
    kdiag = np.full(L, kernel_value(X, rows[0], X, rows[0], codes, params, weights))
    pos = _swap_pass(BT, pos, mean_k, ks, kdiag, True, codes, params, weights)
    for s in range(h):
        out[s] = pos[s]


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _refine_round(X, merged, halves_pos, pick, codes, params, weights, out, mean_k,
                  have_mean):
    for w in prange(merged.shape[0]):
        _refine_block(X, merged[w], halves_pos[2 * w + pick[w]], codes, params, weights,
                      out[w], mean_k[w], have_mean)


def refine_halves(xp, X, merged, halves_pos, pick, kernel, mean_k=None):
    """Numba version of ``refine_halves_reference``, parallel over blocks."""
    codes, params, weights = kernel.spec()
    out = np.empty((merged.shape[0], merged.shape[1] // 2), dtype=np.int64)
    have_mean = mean_k is not None
    mean_k = (np.ascontiguousarray(mean_k, dtype=np.float64) if have_mean
              else np.empty((merged.shape[0], 0)))
    _refine_round(np.ascontiguousarray(X), np.ascontiguousarray(merged, dtype=np.int64),
                  np.ascontiguousarray(halves_pos, dtype=np.int64),
                  np.ascontiguousarray(pick, dtype=np.int64), codes, params, weights, out,
                  mean_k, have_mean)
    return out
