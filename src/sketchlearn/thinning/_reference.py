"""Array-API reference of kernel halving and KT-SWAP (the oracle for Numba).

These run for namespaces without an accelerated version (array_api_strict, and
CuPy, where each step is a handful of vector operations on the GPU).
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import move_to, to_numpy
from ..kernels._reference import kernel_block


def _row(xp, X, i):
    return X[i:i + 1, :]


def _kvec(xp, X, i, rows, kernel):
    """k(X[i], X[rows]) as a 1-D array."""
    return kernel_block(xp, _row(xp, X, i), xp.take(X, rows, axis=0), kernel)[0, :]


def halve_round_reference(xp, X, seqs, u, kernel, log_term):
    """Kernel halving of each row of ``seqs`` (row numbers of ``X``).

    Pairs ``(x1, x2) = (seq[2t], seq[2t+1])`` are taken in order. With ``b^2 =
    ||k(x1,.) - k(x2,.)||^2``, the threshold ``a = max(b sigma sqrt(log_term), b^2)``
    (``log_term = 2 log(2/delta_i)``) and ``sigma^2 += b^2 max(0, 1 + (b^2 - 2a)
    sigma^2/a^2)``; ``alpha = sum_right (k(x1,.) - k(x2,.)) - sum_left (same)`` over the
    points placed so far, and ``x2`` goes left with probability ``(1 - alpha/a)/2``
    (decided by ``u[r, t] <= (1 - alpha/a)/2``). Row ``r`` yields output rows ``2r``
    (left) and ``2r + 1`` (right).
    """
    seqs = to_numpy(seqs).astype(np.int64)
    u = to_numpy(u)
    k0 = kernel.diagonal_value
    out = np.empty((2 * seqs.shape[0], seqs.shape[1] // 2), dtype=np.int64)
    for r in range(seqs.shape[0]):
        left, right = out[2 * r], out[2 * r + 1]
        sigma2 = 0.0
        for t in range(seqs.shape[1] // 2):
            i1, i2 = int(seqs[r, 2 * t]), int(seqs[r, 2 * t + 1])
            k12 = float(_kvec(xp, X, i1, move_to(np.array([i2]), xp), kernel)[0])
            b2 = 2 * k0 - 2.0 * k12
            a = max(math.sqrt(max(b2 * sigma2 * log_term, 0.0)), b2)
            if a > 0:
                sigma2 += b2 * max(0.0, 1.0 + (b2 - 2.0 * a) * sigma2 / (a * a))
            else:
                a = 1.0
            alpha = 0.0
            if t > 0:
                placed = move_to(np.concatenate([right[:t], left[:t]]), xp)
                sign = move_to(np.concatenate([np.ones(t), -np.ones(t)]), xp)
                sign = xp.astype(sign, X.dtype)
                diff = _kvec(xp, X, i1, placed, kernel) - _kvec(xp, X, i2, placed, kernel)
                alpha = float(xp.sum(sign * diff))
            if u[r, t] <= 0.5 * (1.0 - alpha / a):
                left[t], right[t] = i2, i1
            else:
                left[t], right[t] = i1, i2
    return out


def halve_with_sums_reference(xp, X, seqs, u, kernel, log_term, target):
    """Kernel halving of each row of ``seqs`` and the target kernel's row sums.

    Returns ``(halves, sums)`` with ``halves`` as ``halve_round_reference`` gives them
    and ``sums[2 r + s, t] = sum_q target(X[halves[2 r + s, t]], X[seqs[r, q]])``.
    """
    from ..kernels._sums import kernel_matvec_op

    seqs = to_numpy(seqs).astype(np.int64)
    halves = halve_round_reference(xp, X, seqs, u, kernel, log_term)
    sums = np.empty(halves.shape)
    for r, seq in enumerate(seqs):
        S = xp.take(X, move_to(seq, xp), axis=0)
        ones = xp.ones((seq.shape[0], 1), dtype=X.dtype)
        row_sums = to_numpy(kernel_matvec_op(xp, S, S, ones, target))[:, 0]
        position = {int(q): i for i, q in enumerate(seq)}
        for s in (0, 1):
            sums[2 * r + s] = [row_sums[position[int(q)]] for q in halves[2 * r + s]]
    return halves, sums


def coreset_sums_reference(xp, X, rows, kernel):
    """sum_{a,b} k(X[rows[c,a]], X[rows[c,b]]) for every row c of ``rows``."""
    out = []
    for row in to_numpy(rows).astype(np.int64):
        S = xp.take(X, move_to(row, xp), axis=0)
        out.append(float(xp.sum(kernel_block(xp, S, S, kernel))))
    return np.array(out)


def refine_halves_reference(xp, X, merged, halves_pos, pick, kernel, mean_k=None):
    """KT-SWAP inside each Compress block (a row of ``merged``).

    Half ``pick[w]`` of the block's KT-SPLIT walk (``halves_pos[2w + pick[w]]``,
    positions in the block) is kept unless the alternate points (positions 1, 3, 5,
    ...) are closer to the block in MMD, and then improved by one swap pass over the
    block with no repeats. Returns the positions of the refined halves, one row per
    block. ``mean_k[w]``, when given, is the kernel mean over block ``w`` (by
    position). Compress++ passes ``pick = 0`` (the walk's first coreset, as
    goodpoints' Halve does; the two halves are equally far from the block) and
    symmetrises afterwards: it keeps the refined half or its complement in the
    block with probability 1/2 each.
    """
    from ..kernels._sums import kernel_matvec_op

    merged = to_numpy(merged).astype(np.int64)
    halves_pos = to_numpy(halves_pos).astype(np.int64)
    out = []
    for w, rows in enumerate(merged):
        L, h = rows.shape[0], rows.shape[0] // 2
        P = xp.take(X, move_to(rows, xp), axis=0)
        if mean_k is None:
            ones = xp.full((L, 1), 1.0 / L, dtype=X.dtype)
            mean_w = to_numpy(kernel_matvec_op(xp, P, P, ones, kernel))[:, 0]
        else:
            mean_w = np.asarray(to_numpy(mean_k[w]))
        mean_w = mean_w.astype(np.float64)
        cands = np.stack([halves_pos[2 * w + int(pick[w])], np.arange(1, L, 2)])
        qq = coreset_sums_reference(xp, X, rows[cands], kernel)
        scores = qq / h**2 - 2.0 * mean_w[cands].sum(axis=1) / h
        out.append(swap_pass_reference(xp, X, rows, cands[int(np.argmin(scores))], mean_w,
                                       kernel, True))
    return np.array(out, dtype=np.int64)


def swap_pass_reference(xp, X, pool, coreset_pos, mean_k, kernel, unique):
    """KT-SWAP's greedy pass over the slots of a coreset.

    ``pool`` holds the row numbers the coreset may use; ``coreset_pos`` the positions
    in ``pool`` of its ``s`` points; ``mean_k[z] = sum_j w_j k(pool_z, x_j)`` the kernel
    mean of the target. Slot by slot, the point ``x_o`` is replaced by the pool point
    ``z`` minimising ``k(z,z) + 2 sum_{S minus o} k(z, .) - 2 s mean_k[z]`` (the terms
    of MMD^2 that depend on ``z``), keeping ``x_o`` on ties. With ``unique``, points
    already in the coreset (other slots) are not candidates.
    """
    pool_np = to_numpy(pool).astype(np.int64)
    pos = np.array(to_numpy(coreset_pos), dtype=np.int64)
    pool_x = move_to(pool_np, xp)
    P = xp.take(X, pool_x, axis=0)
    size = pos.shape[0]
    mean_k = xp.astype(move_to(to_numpy(mean_k), xp), X.dtype)
    ks = xp.sum(kernel_block(xp, P, xp.take(P, move_to(pos, xp), axis=0), kernel), axis=1)
    k0 = kernel.diagonal_value
    count = np.bincount(pos, minlength=pool_np.shape[0])
    for s in range(size):
        old = int(pos[s])
        kcol = kernel_block(xp, P, P[old:old + 1, :], kernel)[:, 0]
        scores = to_numpy(k0 + 2.0 * (ks - kcol) - 2.0 * size * mean_k).astype(np.float64)
        if unique:
            others = count.copy()
            others[old] -= 1
            scores[others > 0] = np.inf
        best = old
        below = np.flatnonzero(scores < scores[old])
        if below.size:
            best = int(below[np.argmin(scores[below])])
        if best != old:
            ks = ks + kernel_block(xp, P, P[best:best + 1, :], kernel)[:, 0] - kcol
            count[old] -= 1
            count[best] += 1
            pos[s] = best
    return pos
