"""Compress++ on Dask arrays: Compress as a tree of four-way merges of row chunks.

Compress (Shetty, Dwivedi and Mackey, 2022) on ``N = 4^g 4^j`` rows is a tree: the
rows are cut into consecutive blocks of ``4^g``, and at each level four neighbouring
blocks are concatenated and halved (symmetrised kernel halving, :func:`._core.
_halve_blocks`), until four blocks remain, which are concatenated without a last
halving (as :func:`~sketchlearn.thinning.compress_thin` does). A row chunk of
``c = 4^g 4^i`` rows, starting at a multiple of ``c``, is a subtree: Compress on the
chunk alone, halved down to one block of ``2^g sqrt(c)`` points, is that subtree's
output. So the chunks are compressed where they live (:class:`CompressSummary`'s
``partial``) and their outputs merged four at a time (``merge``: concatenate, halve)
by :func:`sketchlearn._dask.reduce_row_chunks` with ``split_every=4``: the same tree
as in memory, a valid Compress partition for any chunk size of that form.

Randomness is keyed by the tree node: the halving of block ``b`` of level ``t`` draws
its uniforms and its coin from a generator seeded by ``(seed, group, t, b)``, whether
it runs inside a chunk or in a merge, so one seed gives one coreset whatever the
scheduler and whatever the chunk size (``4^g 4^i`` rows for any ``i``). The draws
differ from the in-memory function's (one stream for a whole level), so the coreset
is another draw of the same algorithm, not the in-memory coreset.
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, to_numpy
from .._cold_start import reference_until_compiled
from .._random import as_generator
from ..kernels import Kernel
from ..kernels._dask import check_dask_points, dask_make_kernel, finite_block
from ._core import (
    COMPRESS_EXACT_MMD_MAX,
    _compress_sizes,
    _compressed_size,
    _delta_split,
    _halve_blocks,
    _halving_log_term,
    _small_for_reference,
    _thin,
    _walk_gives_mean,
    split_kernel,
)

__all__ = ["compress_thin_dask", "CompressSummary"]


class CompressSummary:
    """Compress of one group of ``N = 4^g 4^j`` rows, as a mergeable summary.

    A summary is ``(positions, points, start, span)``: the kept rows (positions in the
    group, int64) and their points (the chunk's library and dtype), out of the
    ``span`` rows starting at ``start`` that it compresses. ``partial`` compresses one
    chunk of ``4^g 4^i`` rows down to ``2^g sqrt(span)`` points (down to four blocks,
    without the last halving, when the chunk is the whole group); ``merge`` concatenates
    four consecutive summaries and halves them, except at the root (``span == N``),
    where it only concatenates. Written without Dask.
    """

    def __init__(self, N, g, seed, group, split_k, kernel, delta_per_sq, in_order=True):
        self.N, self.g, self.seed, self.group = N, g, seed, group
        self.in_order = in_order  # the group is X's rows in order (error messages)
        self.split_k, self.kernel, self.delta_per_sq = split_k, kernel, delta_per_sq

    def _draws(self, level, block, size):
        """Uniforms of a halving walk of ``size`` points and its coin, keyed by node."""
        rng = np.random.default_rng([self.seed, self.group, level, block])
        return rng.random(size // 2), rng.random() < 0.5

    def _halve(self, X, merged, level, first_block):
        """Halve every row of ``merged`` (rows of ``X``); row ``r`` is block
        ``first_block + r`` of ``level``."""
        xp = get_namespace(X)
        draws = [self._draws(level, first_block + r, merged.shape[1])
                 for r in range(merged.shape[0])]
        u = np.stack([d[0] for d in draws])
        flip = np.array([d[1] for d in draws])
        log_term = _halving_log_term(merged.shape[1], self.delta_per_sq)
        fused = _walk_gives_mean(xp, self.split_k, self.kernel)
        position = np.empty(X.shape[0], dtype=np.int64)
        with reference_until_compiled(small=_small_for_reference(X.shape[0], X.shape[1])):
            return _halve_blocks(xp, X, merged, u, flip, self.split_k, self.kernel, log_term,
                                 fused, position)

    def partial(self, Xb, start, index):
        X = finite_block(Xb, start if self.in_order else None, "X")
        xp = get_namespace(X)
        c, base = X.shape[0], 4**self.g
        keep = 4 if c == self.N else 1  # the root keeps its last four blocks
        blocks = np.arange(c, dtype=np.int64).reshape(-1, base)
        level = 0
        while blocks.shape[0] > keep:
            level += 1
            merged = blocks.reshape(blocks.shape[0] // 4, -1)
            blocks = self._halve(X, merged, level, start // (base * 4**level))
        rows = blocks.reshape(-1)
        return start + rows, xp.take(X, xp.asarray(rows), axis=0), start, c

    def merge(self, *parts):
        positions = np.concatenate([p[0] for p in parts])
        xp = get_namespace(parts[0][1])
        points = xp.concat([p[1] for p in parts], axis=0)
        start, span = parts[0][2], sum(p[3] for p in parts)
        if span == self.N:  # the root: concatenated, not halved
            return positions, points, start, span
        level = (span // 4**self.g).bit_length() // 2  # span = 4^g 4^level
        kept = self._halve(points, np.arange(points.shape[0], dtype=np.int64)[None, :], level,
                           start // span)[0]
        return positions[kept], xp.take(points, xp.asarray(kept), axis=0), start, span


def _chunk_rows(X, N, g):
    """Rows per chunk for a group of ``N = 4^g 4^j`` rows: the chunks' own size when it
    is ``4^g 4^i`` for every chunk, else the largest ``4^g 4^i <= `` the largest chunk
    (at least ``4^g``, at most ``N``)."""
    sizes = set(X.chunks[0])
    if len(sizes) == 1:
        (c,) = sizes
        if c >= 4**g and N % c == 0 and _is_power_of_four(c // 4**g):
            return c
    c = 4**g
    while c * 4 <= min(max(X.chunks[0]), N):
        c *= 4
    return c


def _is_power_of_four(x):
    return x > 0 and x & (x - 1) == 0 and (x.bit_length() - 1) % 2 == 0


def compress_thin_dask(X, n_out=None, g=4, kernel="gaussian", bandwidth="median",
                       variant="kt+", alpha=0.5, delta=0.5, unique=False, random_state=None,
                       verbose=0, return_mmd=False, kernel_params=None):
    """Distributed :func:`~sketchlearn.thinning.compress_thin` (see the module
    docstring): the same parameters, the same return values (global row numbers of
    ``X``, sorted; the MMD when asked).

    The group sizes, ``g`` and the failure probabilities are those of the in-memory
    function for the global ``n``. Rows beyond the largest ``4^g 4^j <= n`` are
    handled as in memory: a random partition of the rows into blocks of the sizes of
    ``_compress_sizes`` (the main block a uniform random subset, kept in row order),
    each compressed the same way, and fewer than ``4^g`` rows kept whole, all entering
    the final kernel thinning's target with their mass. Each group is rechunked to
    ``4^g 4^i`` rows when its chunks are not of that size. The final kernel thinning
    of the ``2^(g+1) sqrt(n')`` survivors (plus the remainder's) runs on the client in
    NumPy. ``return_mmd`` gives the exact MMD for ``n <= 2**14`` (the data are then
    gathered) and NaN above, as in memory.
    """
    from .._dask import reduce_row_chunks
    from .._progress import progress_bar

    X = check_dask_points(X, "X", min_samples=2)
    n, d = X.shape
    n_out = math.isqrt(n) if n_out is None else int(n_out)
    if n_out > n:
        raise ValueError(f"n_out={n_out} is larger than the number of samples ({n}).")
    if isinstance(kernel, Kernel) and isinstance(bandwidth, str) and bandwidth == "median":
        bandwidth = None  # the default; a Kernel object carries its own bandwidth
    k = dask_make_kernel(kernel, bandwidth, X, **(kernel_params or {}))
    if not k.bounded:
        raise ValueError("Kernel thinning needs a bounded kernel (not Riesz/energy).")
    split_k = split_kernel(k, variant, d, alpha)
    rng = as_generator(random_state)
    seed = int(rng.integers(2**62))
    # g, the block sizes and the failure probabilities: as compress_thin for n rows.
    main = 4 ** ((n.bit_length() - 1) // 2)
    while g > 0 and 4**g > main:
        g -= 1
    while 2**g * math.isqrt(main) < n_out and 4**g < main:
        g += 1
    sizes = _compress_sizes(n, g)
    outputs = [_compressed_size(size, g) for size in sizes]
    first = outputs[0]
    pool_size = sum(outputs) + n - sum(sizes)
    rounds = ((first if first >= n_out else pool_size) // n_out).bit_length() - 1
    thin_delta, delta_per_sq = _delta_split(sizes, g, rounds, delta)
    # The groups: the rows themselves when n = 4^g 4^j, else a random partition.
    if len(sizes) == 1 and sizes[0] == n:
        groups, rest = [(X, None)], None
    else:
        labels = rng.permutation(np.repeat(np.arange(len(sizes) + 1),
                                           sizes + [n - sum(sizes)]))
        members = [np.flatnonzero(labels == i) for i in range(len(sizes) + 1)]
        groups = [(X[rows], rows) for rows in members[:-1]]
        rest = members[-1] if members[-1].size else None
    pool_rows, pool_points, masses = [], [], []
    for group, (G, rows) in enumerate(groups):
        N = G.shape[0]
        c = _chunk_rows(G, N, g)
        if G.chunks[0] != (c,) * (N // c):
            G = G.rechunk({0: c, 1: -1})
        summary = CompressSummary(N, g, seed, group, split_k, k, delta_per_sq,
                                  in_order=rows is None)
        positions, points, _, _ = reduce_row_chunks(summary, G, split_every=4)  # Compress's tree
        pool_rows.append(positions if rows is None else rows[positions])
        pool_points.append(to_numpy(points))
        masses.append(np.full(positions.shape[0], N / positions.shape[0]))
    if rest is not None:
        left = to_numpy(X[rest].compute())
        finite_block(left, None, "X")
        pool_rows.append(rest)
        pool_points.append(left)
        masses.append(np.ones(rest.shape[0]))
    pool = np.concatenate(pool_rows)
    P = np.concatenate(pool_points).astype(X.dtype, copy=False)
    mass = np.concatenate(masses) / n
    xp = get_namespace(P)
    if first < n_out:  # tiny inputs: the whole pool is the split sequence
        seq = np.arange(P.shape[0])[: n_out << rounds]
    else:
        seq = np.sort(rng.choice(first, size=n_out << rounds, replace=False))
    progress = progress_bar(verbose, rounds, "Compress++ final thinning", unit="round")
    with reference_until_compiled(small=_small_for_reference(P.shape[0], d)):
        try:
            pos, _ = _thin(xp, P, seq, np.arange(P.shape[0]), mass, n_out, k, split_k,
                           thin_delta, unique, rng, progress)
        finally:
            if progress is not None:
                progress.close()
    indices = np.sort(pool[pos])
    if not return_mmd:
        return indices
    if n > COMPRESS_EXACT_MMD_MAX:
        return indices, math.nan
    from ..kernels import mmd_subset

    return indices, float(mmd_subset(np.asarray(X.compute()), indices, kernel=k))

