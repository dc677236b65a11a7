"""A mergeable quantile sketch of weighted 1-D samples, one per projection (KLL type).

The sketch follows Karnin, Lang and Liberty ("Optimal quantile approximation in
streams", FOCS 2016): items live in levels; a level that holds more than its capacity
is *compacted*: its items are sorted, paired off in sorted order and each pair
``(lower, upper)`` is replaced by one of its two items, chosen by a coin (the same
coin for every pair of one compaction, as KLL's random offset), carried to the level
above. The capacities shrink geometrically below the top level (``k (2/3)^depth``,
at least 2), so a sketch of size ``k`` holds at most about ``3 k`` items.

Weights. Every item carries a weight; a pair is replaced by the kept item with the
pair's total weight, so the total weight is exact. (Unweighted samples enter with
weight 1 each; a level then holds items of weight ``2^level``, as in KLL.)

Error accounting (deterministic, exact for what was done). Keeping ``lower`` moves the
mass ``w_upper`` from ``upper`` to ``lower``: the sketch's CDF is off by ``w_upper``
on ``[lower, upper)`` and exact elsewhere, so that compaction adds ``w_upper (upper -
lower)`` to ``int |F_sketch - F| dx`` and ``w_upper`` to ``sup |F_sketch - F|``
(keeping ``upper``: ``w_lower`` likewise). The pairs of one compaction cover disjoint
intervals, and errors of successive compactions add at most (triangle inequality),
so each sketch carries, per projection,

- ``l1``: a bound on ``int |F_sketch(x) - F(x)| dx = W_1(sketch, sample)`` (in units
  of weight times value), the sum over its compactions of ``sum_pairs w (upper -
  lower)``;
- ``rank``: a bound on the rank error ``sup_x |F_sketch(x) - F(x)|``, the sum over its
  compactions of the largest discarded weight.

Exact tails. The ``tail`` smallest and ``tail`` largest items of each row are kept apart,
exactly, and never compacted. A partial or a merge pools the tails it has (and a chunk's
rows), keeps the ``tail`` smallest and the ``tail`` largest of the pool, and hands the
rest to level 0. An item handed over has ``tail`` items at or below it and ``tail`` at
or above it in its pool, so every compacted item lies between the ``tail``-th smallest
and the ``tail``-th largest value of the whole sample: the sketch's CDF is exact outside
that inner range, and the compactions' errors stay inside it. (Heavy tails are where a
bound by the whole range of the data is loose: the bound of :mod:`._sliced_dask` scales
with the range in which ``F_sketch`` and ``F`` can differ.) A sample of at most ``2
tail`` items is kept whole.

Both are certain (not probabilistic) and are what :mod:`._sliced_dask` turns into the
error bound of a sliced distance. The random coins make the errors of successive
compactions cancel on average (so the actual error is usually far below the bound);
they are drawn from a generator seeded by ``(seed, stream, first chunk, last chunk,
compaction number)``, so a sketch is reproducible for a given seed and chunking.

Everything here is plain array-API code on NumPy or CuPy arrays, written without
Dask: :class:`ProjectedQuantileSketch` has ``partial`` and ``merge``, and a driver
(:func:`.._dask.reduce_row_chunks`) runs them as a tree.
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy

__all__ = ["QuantileSketch", "ProjectedQuantileSketch", "sketch_capacity", "SketchedDistance",
           "DEFAULT_SKETCH_SIZE", "default_tail"]

# Default size k of the quantile sketches (see the user guide: on the data sets of the
# tests and the benchmark, Gaussian and Student-t(5) clouds, the bound stays below the
# Monte Carlo standard error of the slices for W_1 and W_2).
DEFAULT_SKETCH_SIZE = 16384

# Capacity ratio between a level and the one above it (KLL's c).
_RATIO = 2.0 / 3.0


def default_tail(k: int) -> int:
    """Exact items kept at each end of a row by a sketch of size ``k``: ``k / 4``, which
    adds a sixth to the sketch's ``3 k`` items at most."""
    return max(1, int(k) // 4)


def sketch_capacity(k: int, height: int, level: int) -> int:
    """Capacity of ``level`` in a sketch of size ``k`` with ``height`` levels."""
    return max(2, int(math.floor(k * _RATIO ** (height - 1 - level))))


def _take_rows(xp, A, idx):
    """``A[l, idx[l, j]]`` for 2-D ``A`` and 2-D integer ``idx``."""
    L, n = A.shape
    offs = xp.reshape(xp.arange(L, dtype=idx.dtype) * n, (L, 1))
    return xp.reshape(xp.take(xp.reshape(A, (-1,)), xp.reshape(idx + offs, (-1,))), idx.shape)


class QuantileSketch:
    """The sketches of ``L`` weighted samples of equal size (one row per projection).

    Attributes
    ----------
    levels : list of (values, weights)
        Per level, arrays of shape ``(L, items)`` (float64); every row has the same
        number of items, since compaction decisions depend on counts only.
    l1, rank : ndarray of shape (L,)
        Error bounds (see the module docstring), NumPy float64.
    total : float
        Total weight of the sample (exact).
    key : (int, int)
        First and last chunk summarised (seeds the compaction coins).
    bottom, top : (values, weights)
        The exact tails: per row, the ``tail`` smallest and (of the rest) the ``tail``
        largest items, arrays of shape ``(L, items)`` sorted by value along each row (so
        the first bottom item is the sample's minimum, the last top or bottom item its
        maximum).
    count : int
        Compactions done in this node so far (part of the coins' seed).
    """

    def __init__(self, levels, l1, rank, total, key, bottom, top, count=0):
        self.levels, self.l1, self.rank = levels, l1, rank
        self.total, self.key, self.count = total, key, count
        self.bottom, self.top = bottom, top

    @property
    def n_items(self) -> int:
        return sum(int(v.shape[1]) for v, _ in [*self.levels, self.bottom, self.top])

    def inner_range(self):
        """``(b, t, beta, tau)``, NumPy arrays of shape ``(L,)``: the largest value of the
        bottom tail and the smallest of the top one (every compacted item lies in
        ``[b, t]``), and the fractions of the total weight in the two tails (outside the
        ranks ``(beta, 1 - tau]`` the sketch's quantile function is exact). With an
        empty top tail nothing was compacted: ``b = t`` = the largest value."""
        xp = get_namespace(self.bottom[0])
        bv, bw = self.bottom
        tv, tw = self.top
        b = np.asarray(to_numpy(bv[:, -1]), dtype=np.float64)
        t = np.asarray(to_numpy(tv[:, 0]), dtype=np.float64) if tv.shape[1] else b
        beta = np.asarray(to_numpy(xp.sum(bw, axis=1)), dtype=np.float64) / self.total
        tau = np.asarray(to_numpy(xp.sum(tw, axis=1)), dtype=np.float64) / self.total
        return b, t, beta, tau

    def sorted_items(self):
        """All items (tails included), row by row sorted by value: ``(values, weights)`` of
        shape ``(L, s)`` in the sketch's namespace."""
        parts = [self.bottom, *self.levels, self.top]
        values = [v for v, _ in parts if v.shape[1]]
        weights = [w for v, w in parts if v.shape[1]]
        xp = get_namespace(*values)
        V, W = xp.concat(values, axis=1), xp.concat(weights, axis=1)
        order = xp.argsort(V, axis=1, stable=True)
        return _take_rows(xp, V, order), _take_rows(xp, W, order)


def _split_tails(xp, values, weights, tail):
    """``(bottom, middle, top)`` of a pool of items, each ``(values, weights)``: per row the
    ``tail`` smallest, the ``tail`` largest of the rest, and what lies between."""
    order = xp.argsort(values, axis=1, stable=True)
    V, W = _take_rows(xp, values, order), _take_rows(xp, weights, order)
    n = V.shape[1]
    nb = min(tail, n)
    nt = min(tail, n - nb)
    return ((V[:, :nb], W[:, :nb]), (V[:, nb:n - nt], W[:, nb:n - nt]),
            (V[:, n - nt:], W[:, n - nt:]))


def _compact(xp, values, weights, coin):
    """One compaction of a level: ``(kept values, kept weights, leftover values,
    leftover weights, l1 added, rank added)``; ``coin`` (L,) 1 keeps the upper item."""
    order = xp.argsort(values, axis=1, stable=True)
    V, W = _take_rows(xp, values, order), _take_rows(xp, weights, order)
    n = V.shape[1]
    half = n // 2
    lo_v, hi_v = V[:, 0:2 * half:2], V[:, 1:2 * half:2]
    lo_w, hi_w = W[:, 0:2 * half:2], W[:, 1:2 * half:2]
    upper = xp.reshape(move_to(coin, xp) == 1, (-1, 1))
    kept_v = xp.where(upper, hi_v, lo_v)
    moved = xp.where(upper, lo_w, hi_w)  # the mass that moved to the kept item
    l1 = xp.sum(moved * (hi_v - lo_v), axis=1)
    rank = xp.max(moved, axis=1)
    return (kept_v, lo_w + hi_w, V[:, 2 * half:], W[:, 2 * half:],
            np.asarray(to_numpy(l1), dtype=np.float64),
            np.asarray(to_numpy(rank), dtype=np.float64))


class ProjectedQuantileSketch:
    """Summary of the projections of a point cloud: one :class:`QuantileSketch` row
    per direction.

    Parameters
    ----------
    project : callable
        ``project(*blocks, start) -> (P, w)``: the projected values ``P`` of shape
        ``(L, rows)`` (float64) of one row chunk, and its weights ``w`` (``(rows,)``, or
        ``None`` for weight 1 each).
    k : int
        Sketch size (capacity of the top level).
    seed, stream : int
        Seed of the compaction coins and a stream number separating several sketches.
    tail : int, optional
        Items kept exactly at each end of a row (see the module docstring); default
        :func:`default_tail` of ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport._quantile_sketch import ProjectedQuantileSketch
    >>> summary = ProjectedQuantileSketch(lambda P, start: (P, None), k=32, seed=0)
    >>> P = np.random.default_rng(0).normal(size=(3, 5000))  # 3 directions
    >>> sketch = summary.merge(summary.partial(P[:, :2000], 0, 0),
    ...                        summary.partial(P[:, 2000:], 2000, 1))
    >>> sketch.total, sketch.n_items < 3 * 32 + 2 * 8
    (5000.0, True)
    >>> bool(np.all(sketch.rank / sketch.total < 0.2))  # certain rank-error bounds
    True
    >>> bool(np.all(sketch.bottom[0][:, 0] == P.min(axis=1)))  # exact tails
    True
    """

    def __init__(self, project, k: int, seed: int, stream: int = 0, tail: int | None = None):
        self.project, self.k, self.seed, self.stream = project, int(k), int(seed), int(stream)
        self.tail = default_tail(k) if tail is None else int(tail)

    def _coin(self, sketch, L):
        first, last = sketch.key
        rng = np.random.default_rng([self.seed, self.stream, first, last, sketch.count])
        sketch.count += 1
        return rng.integers(0, 2, size=L)

    def compress(self, sketch):
        """Compact the lowest level over its capacity until none is (in place)."""
        while True:
            height = len(sketch.levels)
            level = next((h for h, (v, _) in enumerate(sketch.levels)
                          if v.shape[1] > sketch_capacity(self.k, height, h)), None)
            if level is None:
                return sketch
            values, weights = sketch.levels[level]
            xp = get_namespace(values)
            kv, kw, rv, rw, l1, rank = _compact(xp, values, weights,
                                                self._coin(sketch, values.shape[0]))
            sketch.levels[level] = (rv, rw)
            sketch.l1 = sketch.l1 + l1
            sketch.rank = sketch.rank + rank
            if level + 1 == height:
                sketch.levels.append((kv, kw))
            else:
                v2, w2 = sketch.levels[level + 1]
                sketch.levels[level + 1] = (xp.concat([v2, kv], axis=1),
                                            xp.concat([w2, kw], axis=1))

    def partial(self, *args):
        *blocks, start, index = args
        P, w = self.project(*blocks, start)
        xp = get_namespace(P)
        L, rows = P.shape
        W = (xp.ones((L, rows), dtype=xp.float64) if w is None
             else xp.broadcast_to(xp.reshape(xp.astype(w, xp.float64), (1, rows)), (L, rows)))
        total = float(rows) if w is None else float(xp.sum(xp.astype(w, xp.float64)))
        bottom, middle, top = _split_tails(xp, P, xp.asarray(W, copy=True), self.tail)
        sketch = QuantileSketch([middle], np.zeros(L), np.zeros(L), total, (index, index),
                                bottom, top)
        return self.compress(sketch)

    def merge(self, *sketches):
        xp = get_namespace(sketches[0].bottom[0])
        pool = [part for s in sketches for part in (s.bottom, s.top)]
        bottom, middle, top = _split_tails(xp, xp.concat([v for v, _ in pool], axis=1),
                                           xp.concat([w for _, w in pool], axis=1), self.tail)
        height = max(len(s.levels) for s in sketches)
        levels = []
        for h in range(height):
            parts = [s.levels[h] for s in sketches if h < len(s.levels)]
            if h == 0:  # the items the tails let go enter at level 0
                parts.append(middle)
            levels.append((xp.concat([v for v, _ in parts], axis=1),
                           xp.concat([w for _, w in parts], axis=1)))
        merged = QuantileSketch(
            levels, sum(s.l1 for s in sketches), sum(s.rank for s in sketches),
            sum(s.total for s in sketches), (sketches[0].key[0], sketches[-1].key[1]), bottom,
            top)
        return self.compress(merged)


class SketchedDistance(float):
    """A sliced distance computed from quantile sketches, with its error bound.

    A ``float`` (the estimate) with attributes:

    Attributes
    ----------
    error_bound : float
        Certain bound on ``|value - exact value|``, where the exact value is what
        ``quantiles="exact"`` (and the in-memory function) returns with the same
        directions.
    projection_bounds : ndarray of shape (n_projections,)
        Per direction, the bound on the deviation of the 1-D term that is averaged
        (``W_p^p`` for the sliced Wasserstein distance, the 1-D energy distance for
        the energy distance).
    rank_error : float
        Largest certain rank error ``sup_x |F_sketch(x) - F(x)|`` (as a fraction of
        the total weight) over the directions and the two clouds.
    sketch_size : int
        The sketch size ``k`` used.

    Examples
    --------
    >>> from sketchlearn.transport import SketchedDistance
    >>> d = SketchedDistance(0.5, error_bound=0.01, projection_bounds=[0.01],
    ...                      rank_error=0.001, sketch_size=4096)
    >>> float(d), d.error_bound
    (0.5, 0.01)
    """

    def __new__(cls, value, *, error_bound, projection_bounds, rank_error, sketch_size):
        out = super().__new__(cls, value)
        out.error_bound = float(error_bound)
        out.projection_bounds = np.asarray(projection_bounds, dtype=np.float64)
        out.rank_error = float(rank_error)
        out.sketch_size = int(sketch_size)
        return out

    def __repr__(self):
        return f"{float(self)!r} (+/- {self.error_bound:.3g})"

    def __reduce__(self):
        return (_rebuild, (float(self), self.error_bound, self.projection_bounds,
                           self.rank_error, self.sketch_size))


def _rebuild(value, error_bound, projection_bounds, rank_error, sketch_size):
    return SketchedDistance(value, error_bound=error_bound, projection_bounds=projection_bounds,
                            rank_error=rank_error, sketch_size=sketch_size)
