"""Sliced Wasserstein and energy distances between point clouds held as Dask arrays.

The directions are drawn on the client exactly as in memory (they do not depend on
the rows), and every row chunk is projected where it lives (``P = Theta X_i^T``, one
row per direction). What is distributed is the 1-D part, the quantile functions of
the projected clouds, in one of two modes (``quantiles=``):

``"exact"`` (default): a distributed sample sort.
    1. A sample of rows (keyed by global row) gives, per direction, splitters at the
       sample's weighted quantiles ``j / B``, ``B`` buckets per cloud (one pass; none
       when one bucket holds everything).
    2. Every chunk cuts its projected values (and weights) into the buckets by the
       splitters of each direction; the pieces stay on the workers (``persist``)
       and only the per-bucket weight totals come back: their prefix sums are the
       cumulative weights (ranks) at each bucket's start.
    3. Each bucket is sorted on its own. For ``W_p`` the X buckets are cut at the
       X splitters and the Y buckets at the Y splitters, so that X bucket ``j`` and
       Y bucket ``j`` cover about the same ranks; the task of X bucket ``j`` gets
       the Y buckets whose ranks overlap its own (known from the totals) and
       integrates ``|F^-1(t) - G^-1(t)|^p`` over its ranks, by the same merge of
       breakpoints as in memory. For the energy distance both clouds share pooled
       splitters and bucket ``j`` integrates ``(F - G)^2`` over its values from
       ``F - G`` at its start (the totals' prefix); the gaps between buckets are
       added on the client.

    The result is the in-memory value up to the order of floating-point sums
    (uniform weights are counted in integers, as in memory). Memory: a sort holds
    the projected values of both clouds along its directions (``n + m`` numbers a
    direction) across the workers, about ``2**21`` values per bucket and at most
    ``2**18`` a direction (the merge of a direction's breakpoints holds about a dozen
    arrays of that size). When all ``n_projections`` directions do not fit in a
    quarter of the workers' total memory limit, the directions are sorted a group at
    a time, each group one more read of both clouds (the splitters of all come from
    one sample).

``"sketch"``: one mergeable quantile sketch per direction and cloud
    (:mod:`._quantile_sketch`, KLL type, size ``sketch_size``), one pass, memory
    ``O(n_projections sketch_size)`` per task. The result carries a certain bound
    on its deviation from the exact value (:class:`SketchedDistance`); see
    :func:`sketch_error_bounds` for its derivation.

Max-sliced distances on Dask clouds are in :mod:`._max_sliced_dask`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import (
    aligned_vector,
    is_dask_array,
    memory_for_cache,
    reduce_row_chunks,
    row_chunked,
)
from .._random import as_generator, row_keyed
from ._quantile_sketch import (
    DEFAULT_SKETCH_SIZE,
    ProjectedQuantileSketch,
    SketchedDistance,
    _take_rows,
)
from ._sliced import _directions, _group_std_error, _kappa, _root

__all__ = ["sliced_wasserstein_dask", "energy_distance_dask", "sketch_error_bounds"]

# Projected values per bucket of the sample sort (about 48 MiB with weights and labels).
_BUCKET_ELEMENTS = 2**21
# Values per direction per bucket and cloud: the merge of one direction's breakpoints
# (_window_wpp, _energy_bucket) holds about a dozen arrays of its X and overlapping Y
# values. At 2**24 points a direction in 8 buckets, those came to 1 GiB and killed
# 1 GiB workers; 2**18 keeps them near 100 MiB.
_SEGMENT_ELEMENTS = 2**18
# Sampled rows per bucket for the splitters.
_SAMPLE_PER_BUCKET = 64
# Seed of the rows sampled for the splitters (they only balance the buckets: the exact
# result does not depend on them).
_SAMPLE_SEED = 0x51CE




# --------------------------------------------------------------------------- input


def _clouds(X, Y, a, b):
    """Both clouds as row-chunked 2-D Dask arrays (a NumPy cloud next to a Dask one is
    wrapped with the other's chunk size), their weights chunked alike, the dtype of
    the projections."""
    import dask.array as da

    if not is_dask_array(X) or not is_dask_array(Y):
        dask_one, name = (X, "X") if is_dask_array(X) else (Y, "Y")
        other = "Y" if name == "X" else "X"
        value = Y if name == "X" else X
        if value is None or not hasattr(value, "__len__") and not hasattr(value, "shape"):
            raise TypeError(f"{other} must be an array of shape (m, d) next to the Dask array "
                            f"{name}.")
        value = np.asarray(value)
        rows = max(1, int(dask_one.chunks[0][0]) if dask_one.chunks[0] else 1)
        wrapped = da.from_array(value, chunks=(rows,) + value.shape[1:])
        X, Y = (X, wrapped) if name == "X" else (wrapped, Y)
    X, Y = row_chunked(X, "X"), row_chunked(Y, "Y")
    for Z, name in ((X, "X"), (Y, "Y")):
        if Z.ndim != 2:
            raise ValueError(f"{name} must be 2-D of shape (n, d); got shape {Z.shape} (a 1-D "
                             f"sample is {name}.reshape(-1, 1)).")
        if Z.shape[0] < 1:
            raise ValueError(f"{name} is empty (0 rows); a point cloud needs at least one point.")
        if not (np.issubdtype(Z.dtype, np.floating) or np.issubdtype(Z.dtype, np.integer)):
            raise TypeError(f"{name} must hold real numbers; got dtype {Z.dtype}.")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of features; got {X.shape[1]} "
                         f"and {Y.shape[1]}.")
    dtype = np.float32 if X.dtype == np.float32 and Y.dtype == np.float32 else np.float64
    return X, Y, aligned_vector(a, X, "a"), aligned_vector(b, Y, "b"), dtype


def _project(Zb, start, D, dtype, name):
    """Projections ``D Z^T`` (L, rows) of one chunk, float64, products in ``dtype`` as in
    memory; NaN or infinity is an error naming the rows."""
    xp = get_namespace(Zb)
    Z = xp.astype(Zb, xp.float32 if dtype == np.float32 else xp.float64)
    if not bool(xp.all(xp.isfinite(Z))):
        raise ValueError(f"{name} contains NaN or infinity (rows {start} to "
                         f"{start + Z.shape[0] - 1}).")
    P = xp.matmul(xp.astype(move_to(D, xp), Z.dtype), Z.T)
    return xp.astype(P, xp.float64)


def _chunk_weights(wb, start, name):
    """One chunk of weights as float64 (None stays None), checked."""
    if wb is None:
        return None
    xp = get_namespace(wb)
    w = xp.astype(wb, xp.float64)
    if not bool(xp.all(xp.isfinite(w))):
        raise ValueError(f"{name} contains NaN or infinity (rows {start} to "
                         f"{start + w.shape[0] - 1}).")
    if bool(xp.any(w < 0)):
        raise ValueError(f"{name} has negative entries; weights must be non-negative.")
    return w


def _check_total(total, n, name):
    """The in-memory rule: weights sum to one (within rounding)."""
    if total <= 0:
        raise ValueError(f"{name} sums to 0 (all weights are zero); at least one must be "
                         "positive.")
    if abs(total - 1.0) > 1e-6 * max(1, n) ** 0.5 + 1e-12 and abs(total - 1.0) > 1e-5:
        raise ValueError(f"{name} sums to {total:.6g}, not 1; pass {name} / {name}.sum() to "
                         "normalise.")


def _check_mode(quantiles, sketch_size):
    """The sketch size to use (the public functions checked both arguments)."""
    return DEFAULT_SKETCH_SIZE if sketch_size is None else int(sketch_size)


# --------------------------------------------------------------------------- sample sort


class _Sample:
    """Rows sampled for the splitters (keyed by global row), projected."""

    def __init__(self, D, dtype, rate, stream, name, wname):
        self.D, self.dtype, self.rate, self.stream = D, dtype, rate, stream
        self.name, self.wname = name, wname

    def partial(self, Zb, wb, start, index):
        rows = Zb.shape[0]
        keep = np.flatnonzero(row_keyed(_SAMPLE_SEED, self.stream, start, start + rows,
                                        lambda g, size: g.random(size)) < self.rate)
        xp = get_namespace(Zb)
        picked = xp.take(Zb, move_to(keep, xp), axis=0)
        P = np.asarray(to_numpy(_project(picked, start, self.D, self.dtype, self.name)))
        w = None if wb is None else np.asarray(to_numpy(xp.take(
            _chunk_weights(wb, start, self.wname), move_to(keep, xp))))
        return P, w

    @staticmethod
    def merge(*parts):
        P = np.concatenate([p for p, _ in parts], axis=1)
        w = None if parts[0][1] is None else np.concatenate([w for _, w in parts])
        return P, w


def _splitters(P, w, B):
    """Per row of ``P`` (L, s), the weighted sample quantiles at ``j / B``, j = 1..B-1."""
    L, s = P.shape
    if B <= 1 or s == 0:
        return np.empty((L, 0))
    order = np.argsort(P, axis=1, kind="stable")
    S = np.take_along_axis(P, order, axis=1)
    levels = np.arange(1, B) / B
    out = np.empty((L, B - 1))
    for l in range(L):
        c = (np.arange(1, s + 1) / s if w is None
             else np.cumsum(w[order[l]]) / max(float(np.sum(w)), 1e-300))
        out[l] = S[l, np.minimum(np.searchsorted(c, levels), s - 1)]
    return out


def _bucket_chunk(Zb, wb, start, index, D, splitters, dtype, name, wname):
    """Cut one chunk's projections into buckets: ``(totals, piece_0, ..., piece_{B-1})``,
    ``totals`` (B, L) the weights (or counts) per bucket and direction (NumPy), a piece
    ``(counts (L,), values, weights or None)`` with the values grouped by direction."""
    P = _project(Zb, start, D, dtype, name)
    w = _chunk_weights(wb, start, wname)
    xp = get_namespace(P)
    L, rows = P.shape
    B = splitters.shape[1] + 1
    lab = xp.reshape(xp.arange(L, dtype=xp.int64), (L, 1))
    if B == 1:
        key = xp.broadcast_to(lab, (L, rows))
    else:
        S = move_to(splitters, xp)
        ids = xp.stack([xp.astype(xp.searchsorted(S[l, :], P[l, :], side="left"), xp.int64)
                        for l in range(L)])
        key = ids * L + lab
    flat = xp.reshape(key, (-1,))
    order = xp.argsort(flat, stable=True)
    values = xp.take(xp.reshape(P, (-1,)), order)
    bounds = xp.searchsorted(xp.take(flat, order), xp.arange(B * L + 1, dtype=xp.int64),
                             side="left")
    counts = np.asarray(to_numpy(bounds[1:] - bounds[:-1]), dtype=np.int64).reshape(B, L)
    if w is None:
        weights, totals = None, counts.astype(np.float64)
    else:
        weights = xp.take(xp.reshape(xp.broadcast_to(xp.reshape(w, (1, rows)), (L, rows)), (-1,)),
                          order)
        cum = xp.concat([xp.zeros(1, dtype=xp.float64), xp.cumulative_sum(weights)])
        ends = xp.take(cum, bounds)
        totals = np.asarray(to_numpy(ends[1:] - ends[:-1]), dtype=np.float64).reshape(B, L)
    b = np.asarray(to_numpy(bounds), dtype=np.int64)
    pieces = [(counts[j], values[b[j * L]:b[(j + 1) * L]],
               None if weights is None else weights[b[j * L]:b[(j + 1) * L]])
              for j in range(B)]
    return (totals, *pieces)


def _sort_bucket(L, *pieces):
    """Pieces of one bucket (from all chunks) sorted by direction, then value:
    ``(counts (L,), values, weights or None)``."""
    xp = get_namespace(*[v for _, v, _ in pieces])
    counts = np.sum([c for c, _, _ in pieces], axis=0).astype(np.int64)
    lab = xp.concat([xp.repeat(xp.arange(L, dtype=xp.int64), move_to(c, xp))
                     for c, _, _ in pieces])
    values = xp.concat([v for _, v, _ in pieces])
    weighted = pieces[0][2] is not None
    first = xp.argsort(values, stable=True)
    order = xp.take(first, xp.argsort(xp.take(lab, first), stable=True))
    values = xp.take(values, order)
    weights = xp.take(xp.concat([w for _, _, w in pieces]), order) if weighted else None
    return counts, values, weights


def _offsets(counts):
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _segment(bucket, l, offsets):
    counts, values, weights = bucket
    xp = get_namespace(values)
    lo, hi = int(offsets[l]), int(offsets[l + 1])
    v = values[lo:hi]
    w = xp.ones(hi - lo, dtype=xp.float64) if weights is None else weights[lo:hi]
    return v, w


def _window_wpp(xp, vx, cx, vy, cy, lo, hi, p):
    """``int_lo^hi |F^-1(t) - G^-1(t)|^p dt`` for step quantile functions: values ``vx``
    with cumulative weights (ends) ``cx``, ``vy`` with ``cy``; the same merge of
    breakpoints as the in-memory reference, clipped to the window."""
    nx, ny = vx.shape[0], vy.shape[0]
    u = xp.concat([cx, cy])
    lab = xp.concat([xp.ones(nx, dtype=xp.int64), xp.zeros(ny, dtype=xp.int64)])
    order = xp.argsort(u, stable=True)
    us = xp.clip(xp.take(u, order), lo, hi)
    lb = xp.take(lab, order)
    prev = xp.concat([xp.asarray([lo], dtype=xp.float64), us[:-1]])
    length = xp.clip(us - prev, 0.0, None)
    ix = xp.clip(xp.cumulative_sum(lb) - lb, 0, nx - 1)
    iy = xp.clip(xp.cumulative_sum(1 - lb) - (1 - lb), 0, ny - 1)
    d = xp.abs(xp.take(vx, ix) - xp.take(vy, iy))
    return float(xp.sum(length * (d if p == 1 else d**p)))


def _wpp_bucket(xbucket, ybuckets, x_start, y_start, x_norm, y_norm, p):
    """Per direction, the part of ``W_p^p`` over the ranks of one X bucket: (L,)."""
    L = xbucket[0].shape[0]
    xoff = _offsets(xbucket[0])
    yoffs = [_offsets(yb[0]) for yb in ybuckets]
    out = np.zeros(L)
    for l in range(L):
        if xbucket[0][l] == 0:
            continue
        vx, wx = _segment(xbucket, l, xoff)
        xp = get_namespace(vx)
        parts = [_segment(yb, l, off) for yb, off in zip(ybuckets, yoffs, strict=True)]
        vy = xp.concat([v for v, _ in parts])
        wy = xp.concat([w for _, w in parts])
        cx = (x_start[l] + xp.cumulative_sum(wx)) / x_norm
        cy = (y_start[l] + xp.cumulative_sum(wy)) / y_norm
        out[l] = _window_wpp(xp, vx, cx, vy, cy, x_start[l] / x_norm, float(cx[-1]), p)
    return out


def _energy_bucket(xpieces, ypieces, D0, x_scale, y_scale):
    """Per direction, ``sum (F - G)^2 dz`` inside one pooled bucket (unnormalised),
    its first and last value and whether it is empty: ``(L, 4)``."""
    L = D0.shape[0]
    xb, yb = _sort_bucket(L, *xpieces), _sort_bucket(L, *ypieces)
    xoff, yoff = _offsets(xb[0]), _offsets(yb[0])
    out = np.zeros((L, 4))
    for l in range(L):
        if xb[0][l] + yb[0][l] == 0:
            continue
        vx, wx = _segment(xb, l, xoff)
        vy, wy = _segment(yb, l, yoff)
        xp = get_namespace(vx)
        z = xp.concat([vx, vy])
        w = xp.concat([wx * x_scale, -(wy * y_scale)])
        order = xp.argsort(z, stable=True)
        zs = xp.take(z, order)
        D = D0[l] + xp.cumulative_sum(xp.take(w, order))
        out[l] = (float(xp.sum(D[:-1] ** 2 * (zs[1:] - zs[:-1]))), float(zs[0]),
                  float(zs[-1]), 1.0)
    return out


def _n_buckets(L, n):
    """Buckets for ``L`` directions of ``n`` values: at most ``_BUCKET_ELEMENTS`` values
    a bucket and ``_SEGMENT_ELEMENTS`` a direction."""
    wanted = max(math.ceil(L * n / _BUCKET_ELEMENTS), math.ceil(n / _SEGMENT_ELEMENTS))
    return int(max(1, min(wanted, n)))


def _sample_splitters(Z, w, D, dtype, B, stream, name, wname):
    """Splitters (L, B - 1) of one cloud from a sample of about 64 B rows (one pass)."""
    if B <= 1:
        return np.empty((D.shape[0], 0)), None
    rate = min(1.0, _SAMPLE_PER_BUCKET * B / Z.shape[0])
    return reduce_row_chunks(_Sample(D, dtype, rate, stream, name, wname), Z, w)


def _bucketed(Z, w, D, dtype, splitters, name, wname):
    """Persisted bucket pieces of one cloud, per chunk, and the totals (B, L)."""
    import dask

    from .._dask import map_row_chunks

    B = splitters.shape[1] + 1
    parts = map_row_chunks(_bucket_chunk, Z, w, context=(D, splitters, dtype, name, wname))
    split = [dask.delayed(_pick_all, nout=B + 1, pure=True)(part, B + 1) for part in parts]
    split = dask.persist(*split)
    totals = dask.compute(*[s[0] for s in split])
    return [[s[j + 1] for j in range(B)] for s in split], np.sum(totals, axis=0)


def _pick_all(result, count):
    return tuple(result[:count])


def _directions_per_sort(L, rows, weighted):
    """How many directions one sort takes. A sort keeps the projected values of its
    directions (with their weights) on the workers, about 24 bytes each while a bucket
    is sorted (16 without weights): as many directions as fit in the memory that
    per-chunk results may keep (``memory_for_cache``: a quarter of the workers' total
    limit), at least one. Each further group of directions reads the clouds once more."""
    per_direction = rows * (24 if weighted else 16)
    return max(1, min(L, int(memory_for_cache() // per_direction)))


def _exact_wpp(X, Y, a, b, D, dtype, p):
    """Per direction ``W_p^p`` by the distributed sample sort, a group of directions a
    sort (see :func:`_directions_per_sort`); the splitters of all come from one sample."""
    L = D.shape[0]
    n, m = X.shape[0], Y.shape[0]
    G = _directions_per_sort(L, n + m, a is not None or b is not None)
    Bx, By = _n_buckets(G, n), _n_buckets(G, m)
    sx = _sample_splitters(X, a, D, dtype, Bx, 0, "X", "a")
    sy = _sample_splitters(Y, b, D, dtype, By, 1, "Y", "b")
    spl_x = _splitters(*sx, Bx) if Bx > 1 else sx[0]
    spl_y = _splitters(*sy, By) if By > 1 else sy[0]
    return np.concatenate([_sorted_wpp(X, Y, a, b, D[g:g + G], dtype, p, spl_x[g:g + G],
                                       spl_y[g:g + G]) for g in range(0, L, G)])


def _sorted_wpp(X, Y, a, b, D, dtype, p, spl_x, spl_y):
    """``W_p^p`` along the directions ``D`` (L, d), from their splitters: one sort."""
    import dask

    L = D.shape[0]
    n, m = X.shape[0], Y.shape[0]
    Bx, By = spl_x.shape[1] + 1, spl_y.shape[1] + 1
    xpieces, tx = _bucketed(X, a, D, dtype, spl_x, "X", "a")
    ypieces, ty = _bucketed(Y, b, D, dtype, spl_y, "Y", "b")
    if a is not None:
        _check_total(float(tx.sum()) / L, n, "a")
    if b is not None:
        _check_total(float(ty.sum()) / L, m, "b")
    x_norm = float(n) if a is None else 1.0
    y_norm = float(m) if b is None else 1.0
    CX = np.concatenate([np.zeros((1, L)), np.cumsum(tx, axis=0)])  # (Bx + 1, L)
    CY = np.concatenate([np.zeros((1, L)), np.cumsum(ty, axis=0)])
    sort = dask.delayed(_sort_bucket, pure=True)
    xsorted = [sort(L, *[pieces[j] for pieces in xpieces]) for j in range(CX.shape[0] - 1)]
    ysorted = [sort(L, *[pieces[j] for pieces in ypieces]) for j in range(CY.shape[0] - 1)]
    tasks = []
    cy_n = CY / y_norm
    for j in range(Bx):
        lo, hi = CX[j] / x_norm, CX[j + 1] / x_norm
        live = tx[j] > 0
        if not live.any():
            continue
        first = [max(int(np.searchsorted(cy_n[:, l], lo[l], side="right")) - 1, 0)
                 for l in np.flatnonzero(live)]
        last = [min(int(np.searchsorted(cy_n[1:, l], hi[l], side="left")), By - 1)
                for l in np.flatnonzero(live)]
        y0, y1 = min(first), max(max(last), min(first))
        tasks.append(dask.delayed(_wpp_bucket, pure=True)(
            xsorted[j], ysorted[y0:y1 + 1], CX[j], CY[y0], x_norm, y_norm, p))
    parts = dask.compute(*tasks)
    return np.sum(parts, axis=0) if parts else np.zeros(L)


def _exact_energy(X, Y, a, b, D, dtype):
    """Per direction, the 1-D energy distance ``2 int (F - G)^2`` by the sample sort on
    pooled splitters, a group of directions a sort (see :func:`_directions_per_sort`)."""
    L = D.shape[0]
    n, m = X.shape[0], Y.shape[0]
    G = _directions_per_sort(L, n + m, a is not None or b is not None)
    B = _n_buckets(G, n + m)
    if B > 1:
        sx = _sample_splitters(X, None, D, dtype, B, 2, "X", "a")[0]
        sy = _sample_splitters(Y, None, D, dtype, B, 3, "Y", "b")[0]
        spl = _splitters(np.concatenate([sx, sy], axis=1), None, B)
    else:
        spl = np.empty((L, 0))
    return np.concatenate([_sorted_energy(X, Y, a, b, D[g:g + G], dtype, spl[g:g + G])
                           for g in range(0, L, G)])


def _sorted_energy(X, Y, a, b, D, dtype, spl):
    """``2 int (F - G)^2`` along the directions ``D`` from their pooled splitters: one sort."""
    import dask

    L = D.shape[0]
    n, m = X.shape[0], Y.shape[0]
    B = spl.shape[1] + 1
    xpieces, tx = _bucketed(X, a, D, dtype, spl, "X", "a")
    ypieces, ty = _bucketed(Y, b, D, dtype, spl, "Y", "b")
    if a is not None:
        _check_total(float(tx.sum()) / L, n, "a")
    if b is not None:
        _check_total(float(ty.sum()) / L, m, "b")
    if a is None and b is None and n * m < 2**52:
        x_scale, y_scale, norm = float(m), float(n), float(n) * float(m)  # counts: exact
    else:
        x_scale = 1.0 / n if a is None else 1.0
        y_scale = 1.0 / m if b is None else 1.0
        norm = 1.0
    signed = tx * x_scale - ty * y_scale  # (B, L)
    prefix = np.concatenate([np.zeros((1, L)), np.cumsum(signed, axis=0)])
    task = dask.delayed(_energy_bucket, pure=True)
    parts = dask.compute(*[task([pieces[j] for pieces in xpieces],
                                [pieces[j] for pieces in ypieces], prefix[j], x_scale, y_scale)
                           for j in range(B)])
    parts = np.stack(parts)  # (B, L, 4)
    total = np.zeros(L)
    for l in range(L):
        live = np.flatnonzero(parts[:, l, 3] > 0)
        inner = parts[live, l, 0]
        gaps = parts[live[1:], l, 1] - parts[live[:-1], l, 2]
        ends = prefix[live[:-1] + 1, l]
        total[l] = float(np.sum(inner)) + float(np.sum(ends**2 * gaps))
    return 2.0 * total / norm**2


# --------------------------------------------------------------------------- sketch mode


class _Projector:
    def __init__(self, D, dtype, name, wname):
        self.D, self.dtype, self.name, self.wname = D, dtype, name, wname

    def __call__(self, Zb, wb, start):
        return (_project(Zb, start, self.D, self.dtype, self.name),
                _chunk_weights(wb, start, self.wname))


def _sketches(X, Y, a, b, D, dtype, k, seed):
    """The merged sketches of both clouds (one pass over each)."""
    # 4 sketches per merge: a merge holds about 12 k n_projections values
    sx = reduce_row_chunks(ProjectedQuantileSketch(_Projector(D, dtype, "X", "a"), k, seed, 0),
                           X, a, split_every=4)
    sy = reduce_row_chunks(ProjectedQuantileSketch(_Projector(D, dtype, "Y", "b"), k, seed, 1),
                           Y, b, split_every=4)
    if a is not None:
        _check_total(sx.total, X.shape[0], "a")
    if b is not None:
        _check_total(sy.total, Y.shape[0], "b")
    return sx, sy


_RANK_CELLS = 2048  # cells of the rank grid on which the sketch bounds are localised


class _RankGrid:
    """Per direction, local bounds on a sketch's quantile functions on cells of ranks.

    With the rank error ``r`` (``sup |F_sketch - F| <= r``), both ``F^-1(t)`` and
    ``F_sketch^-1(t)`` lie in ``[F_sketch^-1(t - 2 r), F_sketch^-1(t + 2 r)]``: ``F(x) >= t +
    r`` wherever ``F_sketch(x) >= t + 2 r``, and likewise below. On a cell ``[u0, u1]``
    of ranks, ``lo`` and ``hi`` bound every such value (one item further out than the
    ranks' own, against rounding in the cumulative weights), and ``spread`` bounds
    ``|F_sketch^-1 - F^-1|``: zero where the cell lies in the exact tails, and at most the
    width of the compacted range."""

    def __init__(self, sketch, edges):
        b, t, beta, tau = sketch.inner_range()
        V, W = (np.asarray(to_numpy(A), dtype=np.float64) for A in sketch.sorted_items())
        cum = np.cumsum(W, axis=1) / sketch.total
        L, last = V.shape[0], V.shape[1] - 1
        widen = 2.0 * sketch.rank / sketch.total  # twice the rank error
        u0, u1 = edges[:, :-1], edges[:, 1:]
        self.lo = np.empty(u0.shape)
        self.hi = np.empty(u0.shape)
        exact_lo, exact_hi = np.empty(u0.shape), np.empty(u0.shape)

        def at(l, u, step):
            j = np.searchsorted(cum[l], np.clip(u, 0.0, 1.0), side="left")
            return V[l, np.clip(j + step, 0, last)]

        for l in range(L):
            self.lo[l], self.hi[l] = at(l, u0[l] - widen[l], -1), at(l, u1[l] + widen[l], 1)
            exact_lo[l], exact_hi[l] = at(l, u0[l], -1), at(l, u1[l], 1)
        # Tighter where the tails are exact: ranks at or below beta have the exact
        # quantiles, ranks above it values >= b; likewise at the top.
        below, above = u0 <= beta[:, None], u1 > (1.0 - tau)[:, None]
        self.lo = np.maximum(self.lo, np.where(below, exact_lo, b[:, None]))
        self.hi = np.minimum(self.hi, np.where(above, exact_hi, t[:, None]))
        # the cells that meet the compacted ranks (beta, 1 - tau]
        inner = (u1 > beta[:, None]) & (u0 <= (1.0 - tau)[:, None])
        self.spread = np.where(inner, np.minimum(self.hi - self.lo, (t - b)[:, None]), 0.0)
        self.e = sketch.l1 / sketch.total


def _split_bound(g, s, e, p, cell):
    """Per row, a bound on ``int g^(p-1) delta`` over the ranks, for ``0 <= delta <= s`` on
    each cell (``g``, ``s`` of shape ``(L, cells)``, cells of width ``cell``) and ``int
    delta <= e``: on the cells where ``g`` exceeds a threshold ``sigma`` by ``int g^(p-1)
    s``, on the others by ``sigma^(p-1) e``; the best threshold."""
    order = np.argsort(-g, axis=1)
    gs, ss = np.take_along_axis(g, order, 1), np.take_along_axis(s, order, 1)
    above = np.concatenate([np.zeros((g.shape[0], 1)),
                            np.cumsum(gs ** (p - 1.0) * ss * cell[:, None], axis=1)], axis=1)
    # after the j largest cells, sigma is the largest of the rest (none after all)
    below = np.concatenate([gs ** (p - 1.0), np.zeros((g.shape[0], 1))], axis=1) * e[:, None]
    return np.min(above + below, axis=1)


def sketch_error_bounds(sx, sy, p=None, ks=1.0, wpp=None):
    r"""Per-direction bounds on the error that the sketches add to the 1-D terms.

    :math:`e_X = \int |\hat F - F|\,dx` (``sx.l1 / sx.total``, exact bookkeeping of the
    compactions) is :math:`W_1(\hat F, F) = \int_0^1 \delta_X(t)\,dt`, with
    :math:`\delta_X = |\hat F^{-1} - F^{-1}|`; likewise :math:`e_Y`. The sketches
    keep their tails exact (:mod:`._quantile_sketch`), so :math:`\delta_X` is zero
    outside the compacted ranks, and on a cell of ranks it is at most the local spread
    of the quantile function that the rank error allows (:class:`_RankGrid`); in the
    body of a heavy-tailed cloud that spread is small, where the whole range of the
    data is not. A bound :math:`\int g^{p-1} \delta \le \min_\sigma (\sigma^{p-1}
    e + \int_{g > \sigma} g^{p-1} s)` for :math:`\delta \le s` cellwise
    (:func:`_split_bound`) then localises:

    - ``p`` given (sliced Wasserstein, ``wpp`` the sketched :math:`W_p^p` per
      direction): by :math:`|u^p - v^p| \le p \max(u, v)^{p-1} |u - v|` with :math:`u,
      v` the two quantile differences at rank :math:`t`, bounded cellwise by
      :math:`g`, and :math:`|u - v| \le \delta_X + \delta_Y`:
      :math:`|\widehat{W_p^p} - W_p^p| \le p \int g^{p-1} (\delta_X + \delta_Y)`.
      Also :math:`|\hat W_p - W_p| \le W_p(\hat F, F) + W_p(\hat G, G)` (triangle
      inequality), with :math:`W_p(\hat F, F)^p = \int \delta_X^p`, bounded the same
      way (:math:`g = s`), and :math:`|a^p - b^p| \le p (a + \Delta)^{p-1} \Delta`
      for :math:`|a - b| \le \Delta`; the smaller of the two bounds is returned;
    - ``p`` None (energy): with :math:`\hat\Delta = \hat F - \hat G`,
      :math:`\Delta = F - G` and :math:`\delta = \hat\Delta - \Delta`,
      :math:`|\int \hat\Delta^2 - \int \Delta^2| = |\int \delta (2 \hat\Delta -
      \delta)| \le (2 \sup|\hat\Delta| + \sup|\delta|) \int |\delta|`, where
      :math:`\sup|\delta| \le r_X + r_Y` (the sketches' rank bounds, ``rank / total``)
      and :math:`\int|\delta| \le e_X + e_Y`; so the 1-D energy :math:`2 \int (F -
      G)^2` moves by at most :math:`2 (2 K + r_X + r_Y)(e_X + e_Y)`, ``K`` the
      Kolmogorov distance of the sketches (``ks``, at most 1).

    Returns ``(bounds (L,), dw (L,))``: the bounds on the 1-D terms and, with ``p``,
    bounds on ``|W_p(sketches) - W_p(samples)|`` per direction (None for the energy).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport._quantile_sketch import ProjectedQuantileSketch
    >>> from sketchlearn.transport._sliced_dask import _sketch_wpp, sketch_error_bounds
    >>> summary = ProjectedQuantileSketch(lambda P, start: (P, None), k=16, seed=0)
    >>> P = np.random.default_rng(0).normal(size=(2, 1000))
    >>> sx, sy = summary.partial(P, 0, 0), summary.partial(P + 1.0, 0, 1)
    >>> bounds = sketch_error_bounds(sx, sy, p=1, wpp=_sketch_wpp(sx, sy, 1))[0]
    >>> bool(np.all(bounds > 0) and np.all(bounds < 1))
    True
    """
    ex, ey = sx.l1 / sx.total, sy.l1 / sy.total
    if p is None:
        return 2.0 * (2.0 * ks + sx.rank / sx.total + sy.rank / sy.total) * (ex + ey), None
    if wpp is None:
        raise ValueError("sketch_error_bounds with p needs wpp, the sketched W_p^p per "
                         "direction (_sketch_wpp).")
    p = float(p)
    _, _, beta_x, tau_x = sx.inner_range()
    _, _, beta_y, tau_y = sy.inner_range()
    # the ranks where either sketch's quantile function may differ from the sample's
    t_lo, t_hi = np.minimum(beta_x, beta_y), np.maximum(1.0 - tau_x, 1.0 - tau_y)
    t_hi = np.maximum(t_hi, t_lo)
    edges = t_lo[:, None] + (t_hi - t_lo)[:, None] * np.linspace(0.0, 1.0, _RANK_CELLS + 1)
    cell = (t_hi - t_lo) / _RANK_CELLS
    gx, gy = _RankGrid(sx, edges), _RankGrid(sy, edges)
    g = np.maximum(gx.hi, gy.hi) - np.minimum(gx.lo, gy.lo)  # bounds u and v on a cell
    first = p * (_split_bound(g, gx.spread, gx.e, p, cell)
                 + _split_bound(g, gy.spread, gy.e, p, cell))
    dw = (_split_bound(gx.spread, gx.spread, gx.e, p, cell) ** (1.0 / p)
          + _split_bound(gy.spread, gy.spread, gy.e, p, cell) ** (1.0 / p))
    w = np.maximum(np.asarray(wpp, dtype=np.float64), 0.0) ** (1.0 / p)
    return np.minimum(first, p * (w + dw) ** (p - 1.0) * dw), dw


def _sketch_wpp(sx, sy, p):
    Vx, Wx = sx.sorted_items()
    Vy, Wy = sy.sorted_items()
    xp = get_namespace(Vx)
    out = np.empty(Vx.shape[0])
    for l in range(Vx.shape[0]):
        cx = xp.cumulative_sum(Wx[l, :]) / sx.total
        cy = xp.cumulative_sum(Wy[l, :]) / sy.total
        out[l] = _window_wpp(xp, Vx[l, :], cx, Vy[l, :], cy, 0.0, 1.0, p)
    return out


def _sketch_energy(sx, sy):
    Vx, Wx = sx.sorted_items()
    Vy, Wy = sy.sorted_items()
    xp = get_namespace(Vx)
    z = xp.concat([Vx, Vy], axis=1)
    w = xp.concat([Wx / sx.total, -(Wy / sy.total)], axis=1)
    order = xp.argsort(z, axis=1, stable=True)
    zs = _take_rows(xp, z, order)
    D = xp.cumulative_sum(_take_rows(xp, w, order), axis=1)
    energy = 2.0 * xp.sum(D[:, :-1] ** 2 * (zs[:, 1:] - zs[:, :-1]), axis=1)
    return (np.asarray(to_numpy(energy)),
            np.minimum(np.asarray(to_numpy(xp.max(xp.abs(D), axis=1))), 1.0))


def _root_bound(value, delta, p):
    """Bound on ``|v^(1/p) - u^(1/p)|`` for ``|v - u| <= delta`` (``v`` the estimate):
    the root is concave, so the step down is the larger."""
    value = max(value, 0.0)
    return value ** (1.0 / p) - max(value - delta, 0.0) ** (1.0 / p)


def _sketch_root_bound(value, bounds, dw, p):
    """Bound on the error of ``value^(1/p)``, ``value`` the mean of the sketched ``W_p^p``
    over the directions whose :func:`sketch_error_bounds` are given."""
    # Minkowski on the directions: |SW_p - SW_p'| <= (mean_l dW_l^p)^(1/p)
    return min(_root_bound(value, float(np.mean(bounds)), p),
               float(np.mean(dw**p)) ** (1.0 / p))


def _warn_if_loose(bound, se, name):
    if not math.isnan(se) and bound > se:
        warnings.warn(
            f"{name}: the quantile sketches' error bound ({bound:.3g}) exceeds the Monte Carlo "
            f"standard error of the slices ({se:.3g}); pass a larger sketch_size (or "
            "quantiles='exact') for a tighter value.", UserWarning, stacklevel=3)


# --------------------------------------------------------------------------- public


def sliced_wasserstein_dask(X, Y, a=None, b=None, *, p=2, n_projections=100, slices="mc",
                            random_state=None, return_std=False, quantiles="exact",
                            sketch_size=None):
    """:func:`~sketchlearn.transport.sliced_wasserstein` for Dask point clouds (called by
    it on Dask input; see the module docstring for the two ``quantiles`` modes)."""
    k = _check_mode(quantiles, sketch_size)
    if slices.startswith("cv"):
        raise ValueError(f"slices={slices!r} has no distributed version for Dask clouds; use "
                         "'mc', 'orthogonal', 'qmc' or 'rqmc' (or compute the clouds first).")
    X, Y, a, b, dtype = _clouds(X, Y, a, b)
    p, L = float(p), int(n_projections)
    rng = as_generator(random_state)
    d = X.shape[1]
    D, groups = _directions(np, d, L, slices, rng, dtype)
    if quantiles == "exact":
        w = _exact_wpp(X, Y, a, b, D, dtype, p)
    else:
        sx, sy = _sketches(X, Y, a, b, D, dtype, k, int(rng.integers(2**31)))
        w = _sketch_wpp(sx, sy, p)
    value = float(np.mean(w))
    se = _group_std_error(w, groups) if L > 1 else math.nan
    if quantiles == "sketch":
        bounds, dw = sketch_error_bounds(sx, sy, p, wpp=w)
        bound = _sketch_root_bound(value, bounds, dw, p)
    root, se = _root(value, se, p)
    if quantiles == "sketch":
        _warn_if_loose(bound, se, "sliced_wasserstein")
        root = SketchedDistance(root, error_bound=bound, projection_bounds=bounds,
                                rank_error=float(max(np.max(sx.rank / sx.total),
                                                     np.max(sy.rank / sy.total))),
                                sketch_size=k)
    return (root, se) if return_std else root


def energy_distance_dask(X, Y, a=None, b=None, *, n_projections=100, slices="mc",
                         random_state=None, squared=False, return_std=False,
                         quantiles="exact", sketch_size=None):
    """:func:`~sketchlearn.transport.energy_distance` for Dask point clouds (called by it
    on Dask input; see the module docstring for the two ``quantiles`` modes)."""
    k = _check_mode(quantiles, sketch_size)
    if slices.startswith("cv"):
        raise ValueError("slices='cv-*' is for sliced_wasserstein; energy_distance takes "
                         "'mc', 'orthogonal', 'qmc' or 'rqmc'.")
    X, Y, a, b, dtype = _clouds(X, Y, a, b)
    L = int(n_projections)
    d = X.shape[1]
    if d == 1:
        L = 1
    rng = as_generator(random_state)
    D, groups = _directions(np, d, L, slices, rng, dtype)
    if quantiles == "exact":
        e = _exact_energy(X, Y, a, b, D, dtype)
    else:
        sx, sy = _sketches(X, Y, a, b, D, dtype, k, int(rng.integers(2**31)))
        e, ks = _sketch_energy(sx, sy)
    kd = _kappa(d)
    value = max(float(np.mean(e)), 0.0) / kd
    se = 0.0 if d == 1 else (_group_std_error(e, groups) / kd if L > 1 else math.nan)
    if quantiles == "sketch":
        bounds = sketch_error_bounds(sx, sy, ks=ks)[0]
        delta = float(np.mean(bounds)) / kd
        bound = delta if squared else _root_bound(value, delta, 2.0)
    if not squared:
        value, se = _root(value, se, 2.0)
    if quantiles == "sketch":
        _warn_if_loose(bound, se, "energy_distance")
        value = SketchedDistance(value, error_bound=bound, projection_bounds=bounds,
                                 rank_error=float(max(np.max(sx.rank / sx.total),
                                                      np.max(sy.rank / sy.total))),
                                 sketch_size=k)
    return (value, se) if return_std else value
