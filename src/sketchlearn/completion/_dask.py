"""Matrix completion on Dask: parsing Dask inputs into blocked observed entries, and
alternating least squares on those blocks as Spark MLlib's ALS organises it.

Inputs
------
* a 2-D Dask array with NaN at the missing entries (any chunking: each chunk's
  entries are local to it);
* a tuple ``(rows, cols, values)`` or ``(rows, cols, values, shape)`` of 1-D Dask
  arrays (NumPy members are cut into the rows' chunks);
* a Dask DataFrame of triplets: columns ``row``, ``col``, ``value`` when it has them,
  otherwise exactly three columns taken in that order. Its shape is the largest
  indices plus one, as for triplets without a shape.

Blocking (Spark's in-blocks and out-blocks)
-------------------------------------------
The rows are cut into ``B_r`` contiguous ranges and the columns into ``B_c``. Every
input partition is split by (row block, column block); the pieces of one pair
``(b, c)`` are gathered, sorted by ``(row, col)`` and checked for repeated pairs
(which can only meet in one pair's block). From these:

* the *row in-block* of row block ``b``: its entries in CSR over its local rows, with
  column ids local to the list of factor rows it needs, and the *column in-block* of
  column block ``c``, the same by columns: every entry is stored twice;
* for every nonempty pair ``(b, c)`` the sorted list of the columns of ``c`` that
  ``b`` observes (and of the rows of ``b`` that ``c`` observes): the *out-block*
  lists. A half-step over the rows takes, for every pair, exactly those rows of
  ``V``'s block ``c`` (``take`` runs where the block lives) and sends them to row
  block ``b``'s solve: each factor row travels only to the blocks that use it.

Everything is persisted on the workers (``dask.persist``: futures on the active
``distributed.Client``, memory of this process under Dask's local schedulers); only
``k x k`` matrices, residual sums and, at the end, the factors come back.

Same iterates as in memory
--------------------------
Within a row the entries keep the global column order, so the per-row solves
(``solve_rows``/``cg_rows``, the same Numba kernels) see the same numbers in the same
order (``sketch-cg`` hashes each entry's sketch from its global CSR/CSC position: a
block's seed is shifted by its first position). The start is the same approximate
top-``k`` SVD of ``P_Omega(X) / p_hat``: the randomized range finder of
``_core.range_finder_steps`` (the same Gaussian matrix, drawn on the client, the same
orthonormalisations on the client), whose products with ``P_Omega(X)`` and its
transpose are Dask passes (``_ALS.product``: one round trip each, ``2 q + 2`` in all,
by gathering or by partial sums, whichever moves fewer rows;
the dense branch of the in-memory ``top_svd`` gathers the entries, which are then
few). ``lambda_max_blocked`` (SoftImpute's default shrinkage) keeps ARPACK through a
``LinearOperator``, one round trip per ARPACK step. The balancing after
each sweep (CholeskyQR2 of both factors and an SVD of ``R_U R_V^T``) sums ``k x k``
Gram matrices over blocks and applies ``k x k`` matrices blockwise (the new factor
``A L1^-T L2^-T W`` as one product ``A M``, where the in-memory code forms ``Q`` by two
triangular solves first). Only the order of those sums (and of the partial sums), that
product, and the residual of a sweep (summed by the next CG row half-step from its
first residual, ``cg_rows(residual=True)``) differ from the in-memory code: the
iterates agree to rounding.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .._array_api import get_namespace, solve_lower, to_numpy
from .._dask import DEFAULT_SPLIT_EVERY, is_dask_array, worker_processes
from .._jit import task_threads
from .._progress import progress_range
from .._random import as_generator
from . import _core
from ._core import (
    _check_stop,
    _svd_small,
    _warn_not_converged,
    cg_rows,
    check_rank,
    clip_rows,
    predict_observed,
    range_finder_steps,
    resolve_altmin_solver,
    solve_rows,
    spmm,
    top_svd,
    uses_dense_svd,
    warn_altmin_end,
)
from ._observed import make_observed

__all__ = ["is_dask_input", "blocked_entries", "altmin_complete_dask", "BlockedEntries"]

_TRIPLET_COLUMNS = ("row", "col", "value")
_MAX_DEFAULT_BLOCKS = 64


# --------------------------------------------------------------------------- recognising


def is_dask_dataframe(X) -> bool:
    """Whether ``X`` is a Dask DataFrame, without importing Dask."""
    import sys

    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(X, module.DataFrame)


def is_dask_input(X) -> bool:
    """Whether ``X`` is a Dask array, a Dask DataFrame, or a triplet tuple holding a Dask
    array: the completion inputs that take the distributed path."""
    if is_dask_array(X) or is_dask_dataframe(X):
        return True
    return isinstance(X, tuple) and len(X) in (3, 4) and any(is_dask_array(a) for a in X[:3])


# --------------------------------------------------------------------------- partitions


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _nan_chunk_entries(block, r0, c0):
    """Observed entries of one chunk of a NaN-marked Dask array: global indices, values."""
    xp = get_namespace(block)
    if not xp.isdtype(block.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"X must hold real numbers; got dtype {block.dtype}.")
    block = np.asarray(to_numpy(block))
    block = block.astype(_float_dtype(block.dtype), copy=False)
    mask = ~np.isnan(block)
    if np.isinf(block[mask]).any():
        raise ValueError("X contains infinity; missing entries are NaN, observed entries "
                         "must be finite.")
    r, c = np.nonzero(mask)
    return (r.astype(np.int64) + r0, c.astype(np.int64) + c0, block[mask])


def _triplet_entries(rows, cols, vals):
    """One partition of triplets, checked for types (NaN and ranges are checked from the
    partition statistics, with global positions)."""
    rows, cols, vals = (np.asarray(to_numpy(a)) for a in (rows, cols, vals))
    if rows.ndim != 1 or cols.ndim != 1 or vals.ndim != 1 or not (
            rows.shape[0] == cols.shape[0] == vals.shape[0]):
        raise ValueError(
            "rows, cols and values of X must be 1-D arrays of one length; got shapes "
            f"{rows.shape}, {cols.shape}, {vals.shape}.")
    if rows.size and not (np.issubdtype(rows.dtype, np.integer)
                          and np.issubdtype(cols.dtype, np.integer)):
        raise TypeError(f"row and column indices of X must be integers; got {rows.dtype} "
                        f"and {cols.dtype}.")
    if not (np.issubdtype(vals.dtype, np.floating) or np.issubdtype(vals.dtype, np.integer)
            or vals.dtype == bool):
        raise TypeError(f"values of X must be real numbers; got dtype {vals.dtype}.")
    return (rows.astype(np.int64), cols.astype(np.int64),
            vals.astype(_float_dtype(vals.dtype), copy=False))


def _frame_entries(frame, names):
    return _triplet_entries(*(frame[name].to_numpy() for name in names))


def _frame_columns(X):
    columns = list(X.columns)
    if all(name in columns for name in _TRIPLET_COLUMNS):
        return list(_TRIPLET_COLUMNS)
    if len(columns) == 3:
        return columns
    raise ValueError(
        f"A Dask DataFrame X must hold (row, col, value) triplets: columns named "
        f"{list(_TRIPLET_COLUMNS)}, or exactly three columns in that order; got columns "
        f"{columns}.")


def _known_chunks(a, name):
    if any(math.isnan(c) for axis in a.chunks for c in axis):
        raise ValueError(
            f"{name} has unknown chunk sizes (a Dask array made by boolean indexing or from "
            f"a DataFrame, for instance); call {name}.compute_chunk_sizes() first, or build "
            "it with known chunks.")


def _partitions(X, observed_mask, name="X"):
    """``(parts, shape, dense)``: delayed ``(rows, cols, vals)`` per input partition, the
    shape when the input fixes it (else None), and whether X is a NaN-marked array."""
    import dask

    if observed_mask is not None:
        raise ValueError("observed_mask is not supported with Dask input: mark the missing "
                         "entries of a Dask array with NaN, or pass (row, col, value) "
                         "triplets of the observed entries.")
    if is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (NaN at the missing entries); got "
                             f"{X.ndim}-D with shape {X.shape}.")
        _known_chunks(X, name)
        r_off = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        c_off = np.concatenate([[0], np.cumsum(X.chunks[1])]).astype(np.int64)
        blocks = X.to_delayed()
        call = dask.delayed(_nan_chunk_entries, pure=True)
        parts = [call(blocks[i, j], int(r_off[i]), int(c_off[j]))
                 for i in range(blocks.shape[0]) for j in range(blocks.shape[1])]
        return parts, (int(X.shape[0]), int(X.shape[1])), True
    if is_dask_dataframe(X):
        names = _frame_columns(X)
        call = dask.delayed(_frame_entries, pure=True)
        return [call(p, names) for p in X.to_delayed()], None, False
    if isinstance(X, tuple) and len(X) in (3, 4):
        import dask.array as da

        arrays = list(X[:3])
        first = next(a for a in arrays if is_dask_array(a))
        for i, what in enumerate(("rows", "cols", "values")):
            a = arrays[i]
            if not is_dask_array(a):
                a = np.asarray(a)
                if a.ndim != 1 or a.shape[0] != first.shape[0]:
                    raise ValueError(
                        f"{what} of X must be 1-D with one entry per triplet "
                        f"({first.shape[0]}); got shape {a.shape}.")
                a = da.from_array(a, chunks=first.chunks)
            if a.ndim != 1:
                raise ValueError(f"{what} of X must be a 1-D array; got shape {a.shape}.")
            _known_chunks(a, what)
            arrays[i] = a
        if not arrays[0].shape[0] == arrays[1].shape[0] == arrays[2].shape[0]:
            raise ValueError(
                "rows, cols and values of X must be 1-D arrays of one length; got shapes "
                f"{arrays[0].shape}, {arrays[1].shape}, {arrays[2].shape}.")
        chunks = arrays[0].chunks
        arrays = [a if a.chunks == chunks else a.rechunk(chunks) for a in arrays]
        delayed = [a.to_delayed().ravel() for a in arrays]
        call = dask.delayed(_triplet_entries, pure=True)
        parts = [call(r, c, v) for r, c, v in zip(*delayed, strict=True)]
        shape = None
        if len(X) == 4:
            shape = tuple(int(s) for s in X[3])
            if len(shape) != 2:
                raise ValueError(f"shape must be (n_rows, n_cols); got {X[3]!r}.")
        return parts, shape, False
    raise TypeError(f"{name} is not a Dask input: expected a Dask array, a Dask DataFrame "
                    f"or a tuple of Dask arrays; got {type(X).__name__}.")


def _part_stats(part):
    """Count, index ranges, first non-finite value and dtype of one partition."""
    rows, cols, vals = part
    n = int(vals.shape[0])
    bad = np.flatnonzero(~np.isfinite(vals))
    first_bad = (int(bad[0]), "NaN" if np.isnan(vals[bad[0]]) else "infinity") if bad.size \
        else None
    if n == 0:
        return n, None, first_bad, vals.dtype.str
    return (n, (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())),
            first_bad, vals.dtype.str)


# --------------------------------------------------------------------------- blocking


def _edges(size, blocks):
    return np.linspace(0, size, blocks + 1).round().astype(np.int64)


def _split(part, r_edges, c_edges, dtype):
    """One partition's entries cut by (row block, column block): ``{(b, c): (rows, cols,
    vals)}``, keeping their input order within each piece."""
    rows, cols, vals = part
    vals = vals.astype(dtype, copy=False)
    rb = np.searchsorted(r_edges, rows, side="right") - 1
    cb = np.searchsorted(c_edges, cols, side="right") - 1
    key = rb * (len(c_edges) - 1) + cb
    order = np.argsort(key, kind="stable")
    key = key[order]
    cuts = np.flatnonzero(np.diff(key)) + 1
    out = {}
    for s, e in zip(np.r_[0, cuts], np.r_[cuts, key.size], strict=True):
        if e > s:
            idx = order[s:e]
            k = int(key[s])
            out[divmod(k, len(c_edges) - 1)] = (rows[idx], cols[idx], vals[idx])
    return out


def _piece(split, pair):
    return split.get(pair)


def _pair_block(n, duplicates, dtype, *pieces):
    """Entries of one (row block, column block) pair sorted by (row, col), repeated pairs
    averaged (``duplicates="mean"``) or counted (``"raise"``: the client raises)."""
    pieces = [p for p in pieces if p is not None]
    if not pieces:
        empty = np.zeros(0, np.int64)
        return {"rows": empty, "cols": empty, "vals": np.zeros(0, dtype), "n_dup": 0,
                "first": -1, "sumsq": 0.0}
    rows = np.concatenate([p[0] for p in pieces])
    cols = np.concatenate([p[1] for p in pieces])
    vals = np.concatenate([p[2] for p in pieces]).astype(dtype, copy=False)
    key = rows * n + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    same = key[1:] == key[:-1]
    n_dup = int(same.sum())
    first = int(key[int(np.argmax(same))]) if n_dup else -1
    if n_dup and duplicates == "mean":
        uniq, inv = np.unique(key, return_inverse=True)
        sums = np.bincount(inv, weights=vals[order].astype(np.float64))
        counts = np.bincount(inv)
        key, vals = uniq, (sums / counts).astype(dtype)
    else:
        vals = vals[order]
    return {"rows": key // n, "cols": key % n, "vals": vals, "n_dup": n_dup, "first": first,
            "sumsq": float(np.sum(vals.astype(np.float64) ** 2))}


def _pair_stats(block):
    return block["vals"].shape[0], block["n_dup"], block["first"], block["sumsq"]


def _needed(block, axis, start):
    """Sorted local ids (within their factor block) of the factor rows a pair's entries
    use: its columns (``axis=1``, for the row half-step) or its rows (``axis=0``)."""
    ids = block["cols"] if axis == 1 else block["rows"]
    return (np.unique(ids) - start).astype(np.int64)


def _in_block(axis, start, size, other_starts, *args):
    """Entries of one row block (``axis=0``) or column block (``axis=1``) in CSR over its
    local rows (columns), with the other index local to the concatenated needed lists.

    ``args`` holds, for each nonempty pair in order, its block then its needed list.
    """
    blocks, needs = args[0::2], args[1::2]
    major, minor, vals, gidx = [], [], [], []
    offset = 0
    mk, nk = ("rows", "cols") if axis == 0 else ("cols", "rows")
    for blk, need, o_start in zip(blocks, needs, other_starts, strict=True):
        glob = need + o_start
        major.append(blk[mk] - start)
        minor.append(offset + np.searchsorted(glob, blk[nk]))
        vals.append(blk["vals"])
        gidx.append(glob)
        offset += need.shape[0]
    if blocks:
        major, minor = np.concatenate(major), np.concatenate(minor)
        vals, gidx = np.concatenate(vals), np.concatenate(gidx)
        order = np.argsort(major, kind="stable")
        major, minor, vals = major[order], minor[order], vals[order]
    else:
        major = minor = gidx = np.zeros(0, np.int64)
        vals = np.zeros(0)
    idt = np.int32 if max(size, offset, major.shape[0] + 1) < 2**31 - 1 else np.int64
    indptr = np.searchsorted(major, np.arange(size + 1)).astype(idt)
    # No per-entry row ids: they are a quarter of the block's bytes, and the few tasks
    # that need them rebuild them from indptr (block_rows).
    return {"indptr": indptr, "indices": minor.astype(idt), "vals": vals, "gidx": gidx,
            "size": size}


def block_rows(blk):
    """The local row (``axis=0``) or column id of every entry of an in-block, in its
    CSR order."""
    indptr = blk["indptr"]
    xp = get_namespace(indptr)
    counts = indptr[1:] - indptr[:-1]
    return xp.repeat(xp.arange(blk["size"], dtype=indptr.dtype), counts)


class BlockedEntries:
    """Observed entries stored by row block and by column block, persisted, with the
    out-block lists (see the module docstring). Built by :func:`blocked_entries`."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def n_row_blocks(self):
        return len(self.r_edges) - 1

    @property
    def n_col_blocks(self):
        return len(self.c_edges) - 1

    # The bits of :class:`._observed.Observed` that check_observed reads.
    def row_counts(self):
        return self._counts(self.rin)

    def col_counts(self):
        return self._counts(self.cin)

    def _counts(self, blocks):
        import dask

        cache = self.__dict__.setdefault("_count_cache", {})
        key = "rows" if blocks is self.rin else "cols"
        if key not in cache:
            got = dask.compute(*[dask.delayed(_block_counts, pure=True)(b) for b in blocks])
            cache[key] = np.concatenate(got)
        return cache[key]


def _block_counts(blk):
    return np.diff(blk["indptr"].astype(np.int64))


def _default_blocks(n_parts, size):
    return max(1, min(size, n_parts, _MAX_DEFAULT_BLOCKS))


def blocked_entries(X, observed_mask=None, *, duplicates="raise", n_blocks=None, name="X",
                    n_cols=None):
    """Parse a Dask input into :class:`BlockedEntries` (two passes over the input: one for
    the checks and the shape, one to build the persisted blocks).

    ``n_blocks``: an int (rows and columns alike) or ``(n_row_blocks, n_col_blocks)``;
    default, for triplets, the number of input partitions on both sides, and for a
    Dask array its number of row chunks for the rows and the larger of its numbers of
    column and row chunks for the columns; at most 64 and at most the size of the side.
    ``n_cols``: the number of columns of triplets given without a shape (``transform``
    of a fitted estimator), instead of the largest column index plus one.
    """
    import dask

    parts, shape, dense = _partitions(X, observed_mask, name)
    stats = dask.compute(*[dask.delayed(_part_stats, pure=True)(p) for p in parts])
    counts = np.array([s[0] for s in stats], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    nnz_in = int(counts.sum())
    if nnz_in == 0:
        raise ValueError(f"{name} has no observed entries; at least one is needed.")
    for i, s in enumerate(stats):
        if s[2] is not None:
            pos, what = s[2]
            raise ValueError(
                f"values of {name} contain {what} (first at position {starts[i] + pos}); "
                "every given (row, col, value) triplet is an observed entry, so its value "
                "must be finite. Drop the missing ones instead of passing NaN.")
    ranges = np.array([s[1] for s in stats if s[1] is not None])
    lo_r, hi_r, lo_c, hi_c = (ranges[:, 0].min(), ranges[:, 1].max(), ranges[:, 2].min(),
                              ranges[:, 3].max())
    if shape is None:
        shape = (int(hi_r) + 1, int(hi_c) + 1 if n_cols is None else int(n_cols))
    m, n = shape
    if m < 1 or n < 1:
        raise ValueError(f"{name} has shape {(m, n)}; both dimensions must be at least 1.")
    for lo, hi, size, what in ((lo_r, hi_r, m, "row"), (lo_c, hi_c, n, "column")):
        if lo < 0 or hi >= size:
            raise ValueError(f"{what} indices of {name} must lie in [0, {size - 1}] for shape "
                             f"{(m, n)}; got values from {int(lo)} to {int(hi)}.")
    dtypes = {np.dtype(s[3]) for s in stats}
    dtype = np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)
    if n_blocks is None:
        if dense:
            br = _default_blocks(len(X.chunks[0]), m)
            bc = _default_blocks(max(len(X.chunks[1]), len(X.chunks[0])), n)
        else:
            br, bc = _default_blocks(len(parts), m), _default_blocks(len(parts), n)
    else:
        br, bc = (n_blocks, n_blocks) if np.isscalar(n_blocks) else n_blocks
        br, bc = int(br), int(bc)
        if br < 1 or bc < 1:
            raise ValueError(f"n_blocks must be at least 1 per side; got {n_blocks!r}.")
        br, bc = min(br, m), min(bc, n)
    r_edges, c_edges = _edges(m, br), _edges(n, bc)
    split = [dask.delayed(_split, pure=True)(p, r_edges, c_edges, dtype) for p in parts]
    piece = dask.delayed(_piece, pure=True)
    # Which pairs are nonempty: one cheap pass would read the input a third time, so the
    # pair blocks are built for all pairs and their sizes read with the checks.
    pair = {}
    for b in range(br):
        for c in range(bc):
            pair[b, c] = dask.delayed(_pair_block, pure=True)(
                n, duplicates, dtype, *[piece(s, (b, c)) for s in split])
    keys = list(pair)
    pair_vals = dask.persist(*[pair[key] for key in keys])
    pair = dict(zip(keys, pair_vals, strict=True))
    pstats = dask.compute(*[dask.delayed(_pair_stats, pure=True)(pair[key]) for key in keys])
    sizes = {key: int(s[0]) for key, s in zip(keys, pstats, strict=True)}
    n_dup = sum(s[1] for s in pstats)
    if n_dup and duplicates == "raise":
        first = min(s[2] for s in pstats if s[1])
        raise ValueError(
            f"{name} has {n_dup} repeated (row, col) pair(s), the first at "
            f"({first // n}, {first % n}). Pass duplicates='mean' to average the values "
            "of repeated entries, or remove them.")
    nnz = sum(sizes.values())
    sumsq = math.fsum(s[3] for s in pstats)
    nz_r = [[c for c in range(bc) if sizes[b, c]] for b in range(br)]
    nz_c = [[b for b in range(br) if sizes[b, c]] for c in range(bc)]
    need = dask.delayed(_needed, pure=True)
    need_c = {(b, c): need(pair[b, c], 1, int(c_edges[c])) for b in range(br) for c in nz_r[b]}
    need_r = {(b, c): need(pair[b, c], 0, int(r_edges[b])) for b in range(br) for c in nz_r[b]}
    inb = dask.delayed(_in_block, pure=True)
    rin = [inb(0, int(r_edges[b]), int(r_edges[b + 1] - r_edges[b]),
               [int(c_edges[c]) for c in nz_r[b]],
               *[x for c in nz_r[b] for x in (pair[b, c], need_c[b, c])]) for b in range(br)]
    cin = [inb(1, int(c_edges[c]), int(c_edges[c + 1] - c_edges[c]),
               [int(r_edges[b]) for b in nz_c[c]],
               *[x for b in nz_c[c] for x in (pair[b, c], need_r[b, c])]) for c in range(bc)]
    nkeys = list(need_c)
    out = dask.persist(*rin, *cin, *[need_c[k] for k in nkeys], *[need_r[k] for k in nkeys])
    rin, cin = list(out[:br]), list(out[br:br + bc])
    need_c = dict(zip(nkeys, out[br + bc:br + bc + len(nkeys)], strict=True))
    need_r = dict(zip(nkeys, out[br + bc + len(nkeys):], strict=True))
    del pair, pair_vals  # the pair blocks live on in the in-blocks only
    length = dask.delayed(len, pure=True)
    lens = dask.compute([length(need_c[k]) for k in nkeys], [length(need_r[k]) for k in nkeys])
    need_c_len = dict(zip(nkeys, lens[0], strict=True))
    need_r_len = dict(zip(nkeys, lens[1], strict=True))
    r_nnz = np.array([sum(sizes[b, c] for c in range(bc)) for b in range(br)], dtype=np.int64)
    c_nnz = np.array([sum(sizes[b, c] for b in range(br)) for c in range(bc)], dtype=np.int64)
    return BlockedEntries(shape=(m, n), dtype=dtype, nnz=nnz, sumsq=sumsq, r_edges=r_edges,
                          r_offsets=np.concatenate([[0], np.cumsum(r_nnz)[:-1]]),
                          c_offsets=np.concatenate([[0], np.cumsum(c_nnz)[:-1]]),
                          c_edges=c_edges, nz_r=nz_r, nz_c=nz_c, rin=rin, cin=cin,
                          need_c=need_c, need_r=need_r, need_c_len=need_c_len,
                          need_r_len=need_r_len, dense=dense)


# --------------------------------------------------------------------------- block tasks


def _take(F, idx):
    xp = get_namespace(F)
    return xp.take(F, idx, axis=0)


def _gathered(xp, pieces, k, dtype, scale=None):
    """The gathered rows of the other factor, in order, times ``scale`` (its columns'
    scaling, or None): each piece its rows taken already, or a ``(whole block, row
    indices)`` pair taken here (see :meth:`_ALS.pieces`). NumPy rows are taken and
    scaled in one output array: at the issue's size that array is 150 MB, and the
    pieces, their concatenation and its scaled copy were three of them."""
    if not pieces:
        return xp.zeros((0, k), dtype=dtype)
    arrays = [p[0] if isinstance(p, tuple) else p for p in pieces]
    if all(isinstance(a, np.ndarray) for a in arrays):
        kind = np.result_type(*arrays)
        sizes = [len(p[1]) if isinstance(p, tuple) else p.shape[0] for p in pieces]
        F = np.empty((sum(sizes), arrays[0].shape[1]), dtype=kind)
        o = 0
        for p, size in zip(pieces, sizes, strict=True):
            if isinstance(p, tuple):
                np.take(p[0], p[1], axis=0, out=F[o:o + size])
            else:
                F[o:o + size] = p
            o += size
        if scale is None:
            return F
        if np.result_type(F, scale) == F.dtype:
            F *= scale  # the same products as F * scale
            return F
        return F * scale
    pieces = [_take(*p) if isinstance(p, tuple) else p for p in pieces]
    F = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)
    return F if scale is None else F * scale


@task_threads()
def _half_step(blk, own, k, dtype, solver, alpha, cg_iter, residual, own_scale, other_scale,
               *pieces):
    """New factor rows of one block (``solve_rows`` or ``cg_rows`` on its in-block CSR
    against the gathered rows of the other factor) and, with ``residual``, the sum of
    squared residuals of the current factors on its entries; and the new rows' Gram
    matrix (the first CholeskyQR pass of the balancing, computed in the same task).
    ``own_scale`` / ``other_scale``: the column scaling of a balanced factor, applied
    here (the same products the balancing would store; see :meth:`_ALS.balance`)."""
    vals = blk["vals"]
    xp = get_namespace(vals, own)
    F = _gathered(xp, pieces, k, dtype, other_scale)
    if own is not None and own_scale is not None:
        own = own * own_scale
    sse = None
    if solver == "cg":
        # CG's first residual is the residual of the current factors: summed by the same
        # pass (a predict_observed pass would read every gathered row once more).
        new = cg_rows(xp, blk["indptr"], blk["indices"], vals, own, F, alpha, cg_iter,
                      residual=residual)
        if residual:
            new, sse = new
        return new, sse, xp.matmul(xp.matrix_transpose(new), new)
    if residual:
        r = vals - predict_observed(xp, blk["indptr"], blk["indices"], block_rows(blk), own, F)
        sse = float(xp.sum(xp.astype(r, xp.float64) ** 2))
    if solver == "exact":
        new = solve_rows(xp, blk["indptr"], blk["indices"], vals, F, alpha)
    else:
        return None, sse, None
    return new, sse, xp.matmul(xp.matrix_transpose(new), new)


@task_threads()
def _sketch_step(blk, own, solve_tol, max_cg, sketch_rows, nnz_sketch, seed, residual,
                 *pieces):
    """One block of a robust-AltMin half-step: ``sketch_cg_rows`` on its in-block CSR
    against the gathered rows of the orthonormal basis (the seed shifted by the block's
    first global CSR/CSC position, so every entry hashes as in memory); the new rows,
    their Gram matrix, the solve statistics and, with ``residual``, the squared
    residuals of the new rows against the basis."""
    from ._core import sketch_cg_rows

    vals = blk["vals"]
    xp = get_namespace(vals, own)
    F = _gathered(xp, pieces, own.shape[1], own.dtype)
    new, info = sketch_cg_rows(xp, blk["indptr"], blk["indices"], vals, own, F, 0.0,
                               solve_tol, max_cg, sketch_rows, nnz_sketch, seed)
    info = np.asarray(to_numpy(info))
    sse = None
    if residual:
        r = vals - predict_observed(xp, blk["indptr"], blk["indices"], block_rows(blk), new, F)
        sse = float(xp.sum(xp.astype(r, xp.float64) ** 2))
    ach, steps = info[:, 0], info[:, 1]
    stats = (int(np.sum(ach > solve_tol)), float(ach.max()) if ach.size else 0.0,
             float(steps.sum()), float(steps.max()) if steps.size else 0.0, int(ach.size))
    return new, xp.matmul(xp.matrix_transpose(new), new), stats, sse


def _fsum(*values):
    return math.fsum(values)


def _gram(*blocks):
    xp = get_namespace(*blocks)
    return sum(xp.matmul(xp.matrix_transpose(b), b) for b in blocks)


def _add(*parts):
    return sum(parts[1:], parts[0])


def _lower_solve(A, L):
    """``solve(L, A^T)^T``: the rows of ``A`` in the basis of the Cholesky factor, as
    ``_chol_qr_once`` computes its ``Q``."""
    xp = get_namespace(A)
    return xp.matrix_transpose(solve_lower(xp, L, xp.matrix_transpose(A)))


def _balanced(A, L1, L2, W):
    """``A L1^-T L2^-T W``: ``Q W`` for rows ``A`` of a factor, ``Q`` their rows of
    CholeskyQR2's factor (``A`` the identity: the ``k x k`` matrix that maps a factor's
    rows to the balanced ones)."""
    Q = _lower_solve(_lower_solve(A, L1), L2)
    return get_namespace(A).matmul(Q, W)


def _right(A, M):
    xp = get_namespace(A)
    return xp.matmul(A, M)


def _scaled_csr(blk, scale):
    """An in-block as a SciPy CSR matrix with the values times ``scale`` (as the
    in-memory ARPACK start builds it), and its global column ids; built once per start
    and kept on the worker."""
    import scipy.sparse as sp

    data = blk["vals"] * scale
    A = sp.csr_matrix((data, blk["indices"], blk["indptr"]),
                      shape=(blk["size"], blk["gidx"].shape[0]))
    return A, blk["gidx"]


def _matmat_block(mat, X):
    """``P_Omega(X)_block @ X[gidx]``."""
    A, gidx = mat
    return A @ X[gidx]


def _matmat_pieces(mat, p, *pieces):
    """As :func:`_matmat_block`, with the input's rows at ``gidx`` given in pieces (the
    blocks of the first product of a fused pair, taken where they live)."""
    X = np.concatenate(pieces, axis=0) if pieces else np.zeros((0, p))
    return mat[0] @ X


def _spmm_block(blk, scale, p, *pieces):
    """``scale * P_Omega(X)_block @ B`` for one in-block (its rows, or its columns for
    a column in-block), with the rows of ``B`` it needs given in pieces taken where
    ``B``'s blocks live; ``spmm`` on the block's CSR, as in memory."""
    vals = blk["vals"]
    xp = get_namespace(vals)
    data = vals * scale
    F = _gathered(xp, pieces, p, data.dtype)
    return spmm(xp, blk["indptr"], blk["indices"], data, F)


def _spmm_t_block(blk, scale, part, other_edges):
    """``(scale * P_Omega(X)_block)^T @ part`` for one in-block and its own rows of the
    input (``part``): the block's share of the product on the other side, in float64
    (the products and sums of the ``spmm`` kernel), cut by the other side's blocks:
    piece ``c`` holds the rows at the block's needed list for block ``c``."""
    A, gidx = _scaled_csr(blk, scale)
    # a float64 right-hand side: SciPy multiplies and sums in float64
    P = np.asarray(A.T @ np.asarray(part, dtype=np.float64))
    cuts = np.searchsorted(gidx, other_edges)
    return [P[cuts[c]:cuts[c + 1]] for c in range(len(other_edges) - 1)]


def _scatter_sum(size, p, dtype, *args):
    """One block of a product summed from the other side's pieces: ``args`` holds, for
    each contributing block in order, its needed list and its piece."""
    out = np.zeros((size, p))
    for need, piece in zip(args[0::2], args[1::2], strict=True):
        out[need] += piece
    return out.astype(dtype, copy=False)


def _tree(func, nodes, split_every=DEFAULT_SPLIT_EVERY):
    import dask

    call = dask.delayed(func, pure=True)
    while len(nodes) > 1:
        nodes = [call(*nodes[i:i + split_every]) if len(nodes[i:i + split_every]) > 1
                 else nodes[i] for i in range(0, len(nodes), split_every)]
    return nodes[0]


# --------------------------------------------------------------------------- the driver


class _ALS:
    """State of blocked ALS: the entries, and the factor blocks (persisted)."""

    def __init__(self, ent: BlockedEntries, k):
        self.ent, self.k = ent, k

    # ---- one pass over the blocks

    def pieces(self, axis, other):
        """For each row (``axis=0``) or column block, the rows of the ``other`` factor's
        blocks its entries use, in block order, whichever way moves fewer rows:

        * taken where they live (a task per pair of blocks), and only those rows sent:
          Spark's way, best when each block uses a small part of the other factor;
        * the whole blocks sent, with the row indices, taken in the solve's task. A
          worker then holds one copy of each block of the other factor, which every
          solve on it shares, where taken pieces are held once per solve (each of
          those waiting on the worker holds its own). That is at most ``workers x
          rows`` rows moved (none without a ``distributed.Client``); at 1e6 x 1e5
          with 2e7 entries in 8 x 8 blocks, each column block uses 90 % of the rows,
          and the taken pieces of the queued column solves came to 1.2 GB.

        The solves get the same rows either way.
        """
        import dask

        e = self.ent
        if axis == 0:
            nz, need = e.nz_r, lambda b, c: e.need_c[b, c]
            gathered, rows = sum(e.need_c_len.values()), e.shape[1]
        else:
            nz, need = e.nz_c, lambda c, b: e.need_r[b, c]
            gathered, rows = sum(e.need_r_len.values()), e.shape[0]
        if worker_processes() * rows <= gathered:
            return [[(other[c], need(b, c)) for c in nz[b]] for b in range(len(nz))]
        take = dask.delayed(_take, pure=True)
        return [[take(other[c], need(b, c)) for c in nz[b]] for b in range(len(nz))]

    def half_step(self, axis, own, other, solver, alpha, cg_iter, residual, own_scale=None,
                  other_scale=None):
        """Solve every row (``axis=0``) or column (``axis=1``) block; ``own`` the current
        blocks of the factor being solved for (warm start, residuals), ``other`` the
        blocks of the other factor, each times its column scaling (None: none).
        Returns the new blocks (persisted: on a distributed Client this returns at
        once), and, delayed (not computed), the sum of squared residuals (or None) and
        the sum of the new blocks' Gram matrices."""
        import dask

        e = self.ent
        step = dask.delayed(_half_step, pure=True, nout=3)
        inb = e.rin if axis == 0 else e.cin
        pieces = self.pieces(axis, other)
        out = [step(blk, own[b], self.k, e.dtype, solver, alpha, cg_iter, residual,
                    own_scale, other_scale, *pieces[b]) for b, blk in enumerate(inb)]
        out = dask.persist(*out)
        getitem = dask.delayed(operator.getitem, pure=True)
        new = [getitem(t, 0) for t in out]
        sse = dask.delayed(_fsum, pure=True)(*[getitem(t, 1) for t in out]) if residual \
            else None
        gram = None
        if solver is not None:
            gram = _tree(_add, [getitem(t, 2) for t in out])
        return new, sse, gram

    def sketch_step(self, axis, own, other, solve_tol, max_cg, sketch_rows, nnz_sketch,
                    seed, residual):
        """A robust-AltMin half-step over the row (``axis=0``) or column blocks: new
        blocks (persisted), their Gram matrix, the merged solve statistics and the sum
        of squared residuals (computed)."""
        import dask

        e = self.ent
        step = dask.delayed(_sketch_step, pure=True, nout=4)
        inb, off = (e.rin, e.r_offsets) if axis == 0 else (e.cin, e.c_offsets)
        pieces = self.pieces(axis, other)
        out = []
        for b, blk in enumerate(inb):
            local_seed = (int(seed) + int(off[b]) * int(nnz_sketch)) % 2**64
            out.append(step(blk, own[b], solve_tol, max_cg, sketch_rows, nnz_sketch,
                            local_seed, residual, *pieces[b]))
        out = dask.persist(*out)
        getitem = dask.delayed(operator.getitem, pure=True)
        gram = _tree(_add, [getitem(t, 1) for t in out])
        G, stats, sse = dask.compute(gram, [getitem(t, 2) for t in out],
                                     [getitem(t, 3) for t in out])
        stats = np.array(stats, dtype=np.float64).reshape(-1, 5)
        merged = (int(stats[:, 0].sum()), float(stats[:, 1].max()), float(stats[:, 2].sum()),
                  float(stats[:, 3].max()), int(stats[:, 4].sum()))
        return ([getitem(t, 0) for t in out], G, merged,
                math.fsum(sse) if residual else None)

    def thin_qr(self, blocks, G1, edges, xp):
        """``thin_qr`` of a blocked factor whose Gram matrix is ``G1``: CholeskyQR2 as in
        memory (Householder by Dask's TSQR where it would fall back). Returns the
        persisted blocks of ``Q`` and ``R`` (NumPy)."""
        import dask

        L1 = _chol_checked(xp, G1)
        if L1 is not None:
            solve = dask.delayed(_lower_solve, pure=True)
            Q1 = [solve(b, L1) for b in blocks]
            (G2,) = self.grams(Q1)
            L2 = _chol_checked(xp, G2)
            if L2 is not None:
                Q = list(dask.persist(*[solve(b, L2) for b in Q1]))
                return Q, xp.matmul(xp.matrix_transpose(L2), xp.matrix_transpose(L1))
        return self._tsqr(blocks, edges)

    def _tsqr(self, blocks, edges):
        import dask
        import dask.array as da

        arr = da.concatenate([
            da.from_delayed(b, shape=(int(edges[i + 1] - edges[i]), self.k),
                            dtype=self.ent.dtype) for i, b in enumerate(blocks)])
        arr = arr.rechunk({0: -1}) if min(arr.chunks[0]) < self.k else arr
        Q, R = da.linalg.qr(arr)
        Q = Q.rechunk(((np.diff(edges)).tolist(), (self.k,)))
        Q, R = dask.persist(Q, R)
        return list(Q.to_delayed().ravel()), np.asarray(R.compute())

    def times(self, blocks, M):
        import dask

        right = dask.delayed(_right, pure=True)
        return list(dask.persist(*[right(b, M) for b in blocks]))

    def grams(self, *factor_lists):
        import dask

        gram = dask.delayed(_gram, pure=True)
        trees = [_tree(_add, [gram(b) for b in blocks]) for blocks in factor_lists]
        return dask.compute(*trees)

    # ---- balancing: factors_to_svd of the blocked factors

    def balance(self, U, V, xp, grams):
        """``factors_to_svd`` of the blocked factors: ``(Uo, s, Vo, root)`` with
        ``U_new V_new^T = Uo diag(s) Vo^T``. The next sweep's factors are ``Uo root``
        and ``Vo root`` (``root = sqrt(s)``); the half-steps scale the blocks they
        read, so the workers keep one copy of each factor, not two."""
        import dask

        L1 = [_chol_checked(xp, G) for G in grams]
        if any(L is None for L in L1):
            return self._balance_householder(U, V, xp)
        solve = dask.delayed(_lower_solve, pure=True)
        Q1u = [solve(b, L1[0]) for b in U]
        Q1v = [solve(b, L1[1]) for b in V]
        L2 = [_chol_checked(xp, G) for G in self.grams(Q1u, Q1v)]
        if any(L is None for L in L2):
            return self._balance_householder(U, V, xp)
        Ra = xp.matmul(xp.matrix_transpose(L2[0]), xp.matrix_transpose(L1[0]))
        Rb = xp.matmul(xp.matrix_transpose(L2[1]), xp.matrix_transpose(L1[1]))
        W, s, Zt = _svd_small(xp, xp.matmul(Ra, xp.matrix_transpose(Rb)))
        # Q W = A L1^-T L2^-T W: the k x k product formed here, one GEMM a block (two
        # triangular solves and a GEMM a block were a tenth of a sweep at 1e6 rows).
        eye = xp.eye(self.k, dtype=W.dtype)
        Mu = _balanced(eye, L1[0], L2[0], W)
        Mv = _balanced(eye, L1[1], L2[1], xp.matrix_transpose(Zt))
        right = dask.delayed(_right, pure=True)
        u, v = dask.persist([right(b, Mu) for b in U], [right(b, Mv) for b in V])
        return list(u), s, list(v), xp.sqrt(s)

    def _balance_householder(self, U, V, xp):
        """The in-memory ``thin_qr`` falls back to Householder QR when CholeskyQR2 fails
        (a nearly rank-deficient factor): here Dask's TSQR, equal up to column signs."""
        import dask
        import dask.array as da

        qs, rs = [], []
        for blocks, edges in ((U, self.ent.r_edges), (V, self.ent.c_edges)):
            arr = da.concatenate([
                da.from_delayed(b, shape=(int(edges[i + 1] - edges[i]), self.k),
                                dtype=self.ent.dtype) for i, b in enumerate(blocks)])
            arr = arr.rechunk({0: -1}) if min(arr.chunks[0]) < self.k else arr
            Q, R = da.linalg.qr(arr)
            Q = Q.rechunk(((np.diff(edges)).tolist(), (self.k,)))
            qs.append(list(Q.to_delayed().ravel()))
            rs.append(R)
        Ra, Rb = (xp.asarray(r) for r in dask.compute(*rs))
        W, s, Zt = _svd_small(xp, xp.matmul(Ra, xp.matrix_transpose(Rb)))
        right = dask.delayed(_right, pure=True)
        uo = [right(q, W) for q in qs[0]]
        vo = [right(q, xp.matrix_transpose(Zt)) for q in qs[1]]
        uo, vo = dask.persist(uo, vo)
        return list(uo), s, list(vo), xp.sqrt(s)

    # ---- the start

    def top_svd(self, k, scale, rng, method="arpack"):
        """The in-memory ``top_svd(obs, k, scale, rng, method=method)`` on the blocked
        entries."""
        import dask
        from scipy.sparse.linalg import LinearOperator, svds

        e = self.ent
        m, n = e.shape
        if uses_dense_svd(e.shape, k):
            rows, cols, vals = self.gather_entries()
            obs = make_observed(rows, cols, vals, e.shape)
            return top_svd(obs, k, scale, rng)
        if method == "randomized":
            return self.range_finder_svd(k, scale, rng)
        call = dask.delayed(_matmat_block, pure=True)
        again = dask.delayed(_matmat_pieces, pure=True)
        take = dask.delayed(_take, pure=True)
        dtype = (np.ones(1, dtype=e.dtype) * scale).dtype
        # ARPACK runs on the Gram operator: A^T (A x) when m >= n (A (A^T y) otherwise).
        # Its first product also submits the second, on the first's blocks where they
        # are (each entry of A x goes only to the column blocks that use it), and keeps
        # the result for the call that follows with the same vector: one round trip per
        # ARPACK step, the numbers of the two separate products.
        fuse = "rows" if m >= n else "cols"
        cache = {}
        csr = dask.delayed(_scaled_csr, pure=True)
        mats = dask.persist(*[csr(b, scale) for b in e.rin], *[csr(b, scale) for b in e.cin])
        mats_r, mats_c = mats[:len(e.rin)], mats[len(e.rin):]

        def product(side, X, fused):
            X = np.asarray(X)
            if side == "rows":
                first, second, nz, need = mats_r, mats_c, e.nz_c, (lambda c, b: e.need_r[b, c])
            else:
                first, second, nz, need = mats_c, mats_r, e.nz_r, (lambda b, c: e.need_c[b, c])
            Xd = dask.delayed(X)
            out = [call(b, Xd) for b in first]
            if not fused:
                return np.concatenate(dask.compute(*out), axis=0)
            back = [again(blk, X.shape[1], *[take(out[o], need(j, o)) for o in nz[j]])
                    for j, blk in enumerate(second)]
            out, back = dask.compute(out, back)
            Y = np.concatenate(out, axis=0)
            cache["key"], cache["value"] = Y, np.concatenate(back, axis=0)
            return Y

        def vector(side, x):
            x = np.reshape(np.asarray(x), (-1, 1))
            key = cache.pop("key", None)
            value = cache.pop("value", None)
            if key is not None and key.shape == x.shape and np.array_equal(key, x):
                return value[:, 0]
            return product(side, x, side == fuse)[:, 0]

        op = LinearOperator(
            (m, n), dtype=dtype,
            matvec=lambda x: vector("rows", x), rmatvec=lambda y: vector("cols", y),
            matmat=lambda X: product("rows", X, False),
            rmatmat=lambda Y: product("cols", Y, False))
        v0 = rng.standard_normal(min(m, n))
        U, s, Vt = svds(op, k=k, v0=v0.astype(dtype), solver="arpack")
        U, s, Vt = (np.ascontiguousarray(a) for a in (U, s, Vt))
        order = np.argsort(-s)
        U, s, Vt = np.take(U, order, axis=1), np.take(s, order), np.take(Vt, order, axis=0)
        return U.astype(dtype), s.astype(dtype), Vt.T.astype(dtype)

    def product(self, axis, B, scale):
        """``A @ B`` (``axis=0``, ``B`` of ``n_cols`` rows) or ``A^T @ B`` (``axis=1``,
        ``n_rows`` rows) with ``A = scale * P_Omega(X)``, on the client (NumPy), in one
        round trip, whichever way moves fewer rows between blocks:

        * gathering: ``B`` cut into the input side's blocks, each in-block of the
          output side takes exactly the rows of ``B`` its out-block lists name (as a
          half-step takes the factor's);
        * partial sums: each in-block of the input side multiplies its own rows of
          ``B`` and sends each output block the rows that block's entries touch,
          summed there. For ``A^T B`` with many more rows than columns this moves
          ``n_blocks * n_cols`` rows instead of about ``n_blocks * n_rows``.

        Both sum the same float64 products; only the order of the sums differs.
        """
        import dask

        e = self.ent
        if axis == 0:  # output: row blocks; input: column blocks
            out_in, in_in, out_nz = e.rin, e.cin, e.nz_r
            out_edges, in_edges = e.r_edges, e.c_edges
            gather_rows = sum(e.need_c_len.values())  # rows of B sent to the row blocks
            partial_rows = sum(e.need_r_len.values())  # rows of A B sent from col blocks
            need_in = lambda o, i: e.need_c[o, i]  # noqa: E731  columns row block o uses
            need_out = lambda o, i: e.need_r[o, i]  # noqa: E731  rows col block i touches
        else:  # output: column blocks; input: row blocks
            out_in, in_in, out_nz = e.cin, e.rin, e.nz_c
            out_edges, in_edges = e.c_edges, e.r_edges
            gather_rows = sum(e.need_r_len.values())
            partial_rows = sum(e.need_c_len.values())
            need_in = lambda o, i: e.need_r[i, o]  # noqa: E731
            need_out = lambda o, i: e.need_c[i, o]  # noqa: E731
        parts = [dask.delayed(np.ascontiguousarray(B[in_edges[i]:in_edges[i + 1]]))
                 for i in range(len(in_edges) - 1)]
        p = B.shape[1]
        if gather_rows <= partial_rows:
            take = dask.delayed(_take, pure=True)
            step = dask.delayed(_spmm_block, pure=True)
            out = [step(blk, scale, p, *[take(parts[i], need_in(o, i)) for i in out_nz[o]])
                   for o, blk in enumerate(out_in)]
            return _concat_blocks(out)
        partial = dask.delayed(_spmm_t_block, pure=True, nout=len(out_edges) - 1)
        pieces = [partial(blk, scale, parts[i], out_edges) for i, blk in enumerate(in_in)]
        total = dask.delayed(_scatter_sum, pure=True)
        out = [total(int(out_edges[o + 1] - out_edges[o]), p, B.dtype,
                     *[x for i in out_nz[o] for x in (need_out(o, i), pieces[i][o])])
               for o in range(len(out_edges) - 1)]
        return _concat_blocks(out)

    def range_finder_svd(self, k, scale, rng):
        """The in-memory ``range_finder_svd(obs, k, scale, rng)``: the same steps (the
        same Gaussian matrix, drawn on the client, the same orthonormalisations on the
        client), each product with ``P_Omega(X)`` or its transpose one Dask pass
        (:meth:`product`); ``2 START_POWER + 2`` round trips in all."""
        e = self.ent
        dtype = (np.ones(1, dtype=e.dtype) * scale).dtype
        return range_finder_steps(np, e.shape, dtype, k, rng,
                                  lambda B: self.product(0, B, scale),
                                  lambda B: self.product(1, B, scale))

    def gather_entries(self):
        """All observed entries on the client, in CSR order (small problems only)."""
        import dask

        got = dask.compute(*[dask.delayed(_block_triplets, pure=True)(b, int(s))
                             for b, s in zip(self.ent.rin, self.ent.r_edges[:-1],
                                             strict=True)])
        return tuple(np.concatenate([g[i] for g in got]) for i in range(3))

    def scatter_rows(self, F, edges):
        import dask

        blocks = [dask.delayed(np.ascontiguousarray(F[edges[i]:edges[i + 1]]))
                  for i in range(len(edges) - 1)]
        return list(dask.persist(*blocks))


def _block_triplets(blk, start):
    rows = np.repeat(np.arange(blk["size"]), np.diff(blk["indptr"].astype(np.int64))) + start
    return rows, blk["gidx"][blk["indices"]], blk["vals"]


def _chol_checked(xp, G):
    """The Cholesky factor of a Gram matrix as ``_chol_qr_once`` accepts it, or None
    where it would fall back to Householder QR."""
    try:
        L = xp.linalg.cholesky(G)
    except Exception:  # numpy's LinAlgError and kin: singular
        return None
    d = xp.linalg.diagonal(L)
    if not bool(xp.all(d > 0)) or float(xp.min(d)) < 1e-6 * float(xp.max(d)):
        return None
    return L


def _concat_blocks(blocks):
    import dask

    return np.concatenate([np.asarray(to_numpy(b)) for b in dask.compute(*blocks)], axis=0)


def altmin_fit(ent: BlockedEntries, rank, *, alpha, max_iter, tol, solver, cg_iter,
               init_clip, rng, verbose, solve_tol=1e-6):
    """Blocked ALS on :class:`BlockedEntries`: ``(U, s, V, n_iter, residual)`` with NumPy
    factors, the iterates of the in-memory ``_altmin`` (every solver)."""
    import dask

    xp = np
    k = rank
    m, n = ent.shape
    solver = resolve_altmin_solver(solver, k)
    als = _ALS(ent, k)
    p_hat = ent.nnz / (m * n)
    if solver == "sketch-cg":
        if alpha > 0:
            raise ValueError(
                "solver='sketch-cg' solves the unregularised regressions of robust "
                f"alternating minimization; alpha={alpha} needs solver='cg' or 'exact'.")
        U0, s0, V0 = als.top_svd(k, 1.0 / p_hat, rng, method=_core.START_METHOD)
        return _altmin_sketch_blocked(als, U0, s0, V0, max_iter=max_iter, tol=tol,
                                      solve_tol=solve_tol, init_clip=init_clip, rng=rng,
                                      verbose=verbose)
    U0, s0, _ = als.top_svd(k, 1.0 / p_hat, rng, method=_core.START_METHOD)
    if init_clip is not None:
        U0 = clip_rows(xp, U0, init_clip)
    root = xp.sqrt(xp.maximum(s0, xp.asarray(0, dtype=s0.dtype)))
    U = als.scatter_rows(U0 * root, ent.r_edges)
    del U0
    # First half-step exact (once), as in memory; V's own blocks are not read by it.
    V, _, _ = als.half_step(1, [None] * ent.n_col_blocks, U, "exact", alpha, cg_iter, False)
    rms_vals = math.sqrt(ent.sumsq / ent.nnz) or 1.0
    res_prev = res = change = math.inf
    n_iter = 0
    converged = False
    Uo = Vo = s = None
    scale = None  # the column scaling of U and V (after the first balancing: sqrt(s))
    for it in progress_range(max_iter, verbose, "AltMin"):
        # The row half-step of this sweep also sums the residuals of the last one, and
        # both half-steps are submitted before the stopping test reads that sum (one
        # round trip to the client per sweep, plus the balancing's second Gram pass);
        # when the last sweep turns out to have converged, this one is dropped.
        U_new, sse_node, gram_u = als.half_step(0, U, V, solver, alpha, cg_iter, it > 0,
                                                scale, scale)
        V_new, _, gram_v = als.half_step(1, V, U_new, solver, alpha, cg_iter, False, scale)
        sse, G_u, G_v = dask.compute(sse_node, gram_u, gram_v)
        if it > 0:
            res = math.sqrt(sse / ent.nnz)
            if verbose > 1:
                print(f"AltMin sweep {n_iter}: observed RMSE {res:.3e}")
            converged, change = _check_stop(res, res_prev, tol, rms_vals)
            if converged:
                break
            res_prev = res
        n_iter = it + 1
        Uo, s, Vo, scale = als.balance(U_new, V_new, xp, (G_u, G_v))
        U, V = Uo, Vo
    else:
        if n_iter:
            _, sse_node, _ = als.half_step(0, U, V, None, alpha, cg_iter, True, scale, scale)
            (sse,) = dask.compute(sse_node)
            res = math.sqrt(sse / ent.nnz)
            if verbose > 1:
                print(f"AltMin sweep {n_iter}: observed RMSE {res:.3e}")
            converged, change = _check_stop(res, res_prev, tol, rms_vals)
    if not converged:
        _warn_not_converged(max_iter, res, change, tol)
    if Uo is None:  # max_iter == 0 cannot happen (COUNT), but keep the contract
        raise ValueError("max_iter must be at least 1.")
    return _concat_blocks(Uo), s, _concat_blocks(Vo), n_iter, res


def _altmin_sketch_blocked(als, U0, s0, V0, *, max_iter, tol, solve_tol, init_clip, rng,
                           verbose):
    """The in-memory ``_altmin_sketch`` (robust alternating minimization) on blocks."""

    from ._core import _SKETCH_FACTOR, _SKETCH_NNZ

    xp = np
    ent, k = als.ent, als.k
    U = clip_rows(xp, U0, init_clip)
    Y = xp.matmul(V0 * s0, xp.matmul(xp.matrix_transpose(U0), U))
    U = als.scatter_rows(U, ent.r_edges)
    Y = als.scatter_rows(Y, ent.c_edges)
    del U0, V0
    sketch_rows = _SKETCH_FACTOR * k
    max_cg = 2 * k + 20
    rms_vals = math.sqrt(ent.sumsq / ent.nnz) or 1.0
    res_prev = res = change = math.inf
    n_iter = 0
    converged = False
    worst = (0.0, 0)
    X = V = G_x = None
    for it in progress_range(max_iter, verbose, "AltMin"):
        n_iter = it + 1
        seeds = rng.integers(0, 2**63, size=2)
        Y, G_y, st_v, _ = als.sketch_step(1, Y, U, solve_tol, max_cg, sketch_rows,
                                          _SKETCH_NNZ, int(seeds[0]), False)
        V, Ry = als.thin_qr(Y, G_y, ent.c_edges, xp)
        X = als.times(U, xp.matrix_transpose(Ry))
        X, G_x, st_u, sse = als.sketch_step(0, X, V, solve_tol, max_cg, sketch_rows,
                                            _SKETCH_NNZ, int(seeds[1]), True)
        U, Rx = als.thin_qr(X, G_x, ent.r_edges, xp)
        Y = als.times(V, xp.matrix_transpose(Rx))
        res = math.sqrt(sse / ent.nnz)
        worst = (max(st_v[1], st_u[1]), st_v[0] + st_u[0])
        if verbose > 1:
            rows = max(st_v[4] + st_u[4], 1)
            print(f"AltMin sweep {n_iter}: observed RMSE {res:.3e}, CG steps per row "
                  f"{(st_v[2] + st_u[2]) / rows:.1f} (max {max(st_v[3], st_u[3]):.0f})")
        converged, change = _check_stop(res, res_prev, tol, rms_vals)
        if converged:
            break
        res_prev = res
    warn_altmin_end(worst, solve_tol, max_cg, converged, max_iter, res, change, tol)
    (G_v,) = als.grams(V)
    Uo, s, Vo, _ = als.balance(X, V, xp, (G_x, G_v))
    return _concat_blocks(Uo), s, _concat_blocks(Vo), n_iter, res


def altmin_complete_dask(X, rank=None, *, alpha=0.0, max_iter=100, tol=1e-4, solver="auto",
                         cg_iter=4, solve_tol=1e-6, init_clip=2.0, observed_mask=None,
                         duplicates="raise", random_state=None, verbose=0, n_blocks=None):
    """:func:`~sketchlearn.completion.altmin_complete` on Dask input, by blocked ALS.

    Parameters
    ----------
    X : Dask array with NaN, Dask DataFrame of triplets, or tuple of Dask arrays
        The partly observed matrix (see the module docstring for the forms).
    rank, alpha, max_iter, tol, solver, cg_iter, solve_tol, init_clip, duplicates
        As for :func:`~sketchlearn.completion.altmin_complete`.
    random_state, verbose
        As for :func:`~sketchlearn.completion.altmin_complete`.
    observed_mask : None
        Not supported with Dask input (NaN marks the missing entries).
    n_blocks : int or (int, int), optional
        Row and column blocks; default the number of input partitions (at most 64).

    Returns
    -------
    U : dask.array.Array of shape (n_rows, rank)
        One row per matrix row, so a Dask array (chunked by the row blocks), as for
        every distributed completion function.
    s : ndarray of shape (rank,)
    V : ndarray of shape (n_cols, rank)
        Factors of the completion ``(U * s) @ V.T``, equal to the in-memory ones.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sketchlearn.completion import altmin_complete
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 40))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> U, s, V = altmin_complete(da.from_array(X, chunks=(20, 40)), rank=2, tol=1e-10,
    ...                           max_iter=500, random_state=0)
    >>> bool(np.abs((U.compute() * s) @ V.T - M).max() < 1e-6)
    True
    """
    ent = blocked_entries(X, observed_mask, duplicates=duplicates, n_blocks=n_blocks)
    k = check_rank(rank, ent.shape)
    U, s, V, _, _ = altmin_fit(ent, k, alpha=alpha, max_iter=max_iter, tol=tol, solver=solver,
                               cg_iter=cg_iter, init_clip=init_clip,
                               rng=as_generator(random_state), verbose=verbose,
                               solve_tol=solve_tol)
    import dask.array as da

    return da.from_array(U, chunks=(tuple(np.diff(ent.r_edges).tolist()), -1)), s, V




# --------------------------------------------------------------------------- estimators


def lambda_max_blocked(ent: BlockedEntries, rng) -> float:
    """``lambda_max`` (the largest singular value of ``P_Omega(X)``) on blocked entries,
    drawing from ``rng`` as the in-memory one does."""
    _, s, _ = _ALS(ent, 1).top_svd(1, 1.0, rng)
    return float(s[0])


def _sq_sums(blk):
    v = blk["vals"]
    out = np.zeros(blk["size"])  # float64 sums in CSR order, as the spmm kernel
    np.add.at(out, block_rows(blk), (v * v).astype(np.float64))
    return float(out.astype(v.dtype).max()) if out.size else 0.0


def svt_threshold_blocked(ent: BlockedEntries) -> float:
    """The data-driven SVT threshold (``svt_threshold``) from the blocked entries: the
    largest row and column sums of squares, one pass over each side."""
    import dask

    m, n = ent.shape
    p_hat = ent.nnz / (m * n)
    c = max(1.0 / p_hat - 1.0, 0.0) / p_hat
    call = dask.delayed(_sq_sums, pure=True)
    rows, cols = dask.compute([call(b) for b in ent.rin], [call(b) for b in ent.cin])
    return math.sqrt(c * max(rows)) + math.sqrt(c * max(cols))


def _completed_block(blk, U, s, V, denoise, dtype):
    """Dense rows of one row in-block: ``(U s) V^T`` with the observed entries put back
    (unless ``denoise``)."""
    xp = get_namespace(U)
    Z = xp.astype(xp.matmul(U * s, xp.matrix_transpose(V)), dtype)
    if not denoise and blk["vals"].shape[0]:
        Z = np.array(Z, copy=True)
        rows = np.repeat(np.arange(blk["size"]), np.diff(blk["indptr"].astype(np.int64)))
        Z[rows, blk["gidx"][blk["indices"]]] = blk["vals"]
    return Z


def completed_from_blocks(ent: BlockedEntries, U, s, V, denoise):
    """The completed matrix as a lazy Dask array, one chunk per row block of ``ent``
    (whose persisted in-blocks it keeps alive until computed)."""
    import dask
    import dask.array as da

    call = dask.delayed(_completed_block, pure=True)
    Vd = dask.delayed(V)
    e = ent.r_edges
    parts = [da.from_delayed(call(blk, U[e[b]:e[b + 1]], s, Vd, denoise, ent.dtype),
                             shape=(int(e[b + 1] - e[b]), ent.shape[1]), dtype=ent.dtype)
             for b, blk in enumerate(ent.rin)]
    return da.concatenate(parts, axis=0)


def _merge_dense_block(block, U, s, V, denoise, dtype):
    xp = get_namespace(block)
    Z = xp.astype(xp.matmul(U * s, xp.matrix_transpose(V)), dtype)
    if denoise:
        return Z
    block = xp.astype(block, dtype)
    return xp.where(xp.isnan(block), Z, block)


def _out_dtype(X):
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def completed_dense(X, U, s, V, denoise):
    """``fit_transform`` of a NaN-marked Dask array: lazy, chunked like ``X``'s rows."""
    import dask
    import dask.array as da

    from .._dask import row_chunked

    X = row_chunked(X, "X")
    dtype = _out_dtype(X)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    Vd = dask.delayed(V)
    call = dask.delayed(_merge_dense_block, pure=True)
    blocks = X.to_delayed()[:, 0]
    parts = [da.from_delayed(call(blk, U[starts[i]:starts[i + 1]], s, Vd, denoise, dtype),
                             shape=(int(starts[i + 1] - starts[i]), X.shape[1]), dtype=dtype)
             for i, blk in enumerate(blocks)]
    return da.concatenate(parts, axis=0)


def _fold_in_rows(xp, indptr, indices, vals, B, ridge, mean_row):
    A = solve_rows(xp, indptr, indices, vals, B, ridge)
    empty = np.diff(to_numpy(indptr).astype(np.int64)) == 0
    if empty.any():
        A = xp.where(xp.asarray(empty)[:, None], mean_row[None, :], A)
    return A


def _fold_in_dense_block(block, B, ridge, mean_row, denoise, dtype):
    """``transform`` of one row chunk of a NaN-marked array (fold-in, then merge)."""
    from ._observed import as_observed

    obs = as_observed(block, allow_empty=True)
    xp = obs.xp
    B = xp.astype(B, obs.dtype)
    A = _fold_in_rows(xp, obs.indptr, obs.cols, obs.vals, B, ridge,
                      xp.astype(mean_row, obs.dtype))
    Z = xp.astype(xp.matmul(A, xp.matrix_transpose(B)), dtype)
    if denoise:
        return Z
    return xp.where(xp.isnan(xp.astype(block, dtype)), Z, xp.astype(block, dtype))


def _fold_in_block(blk, B, ridge, mean_row, denoise, dtype):
    """``transform`` of one row in-block of triplets (fold-in against ``B``'s rows at the
    block's columns, then the observed entries put back)."""
    xp = np
    Bd = B.astype(dtype)
    A = _fold_in_rows(xp, blk["indptr"], blk["indices"], blk["vals"], Bd[blk["gidx"]], ridge,
                      mean_row.astype(dtype))
    Z = (A @ Bd.T).astype(dtype)
    if not denoise and blk["vals"].shape[0]:
        rows = np.repeat(np.arange(blk["size"]), np.diff(blk["indptr"].astype(np.int64)))
        Z[rows, blk["gidx"][blk["indices"]]] = blk["vals"]
    return Z


def transform_dask(X, B, ridge, mean_row, denoise, n_features, duplicates):
    """``transform`` on Dask input: a lazy Dask array of the rows of ``X`` folded in.
    Triplets are blocked first (two passes for the checks, the blocks persisted)."""
    import dask
    import dask.array as da

    from .._dask import row_chunked

    Bd, Md = dask.delayed(B), dask.delayed(mean_row)
    if is_dask_array(X):
        X = row_chunked(X, "X")
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1] if X.ndim == 2 else 0} features, but the "
                             f"estimator is expecting {n_features} features as input.")
        dtype = _out_dtype(X)
        call = dask.delayed(_fold_in_dense_block, pure=True)
        parts = [da.from_delayed(call(blk, Bd, ridge, Md, denoise, dtype),
                                 shape=(int(size), n_features), dtype=dtype)
                 for blk, size in zip(X.to_delayed()[:, 0], X.chunks[0], strict=True)]
        return da.concatenate(parts, axis=0)
    ent = blocked_entries(X, None, duplicates=duplicates, n_cols=n_features)
    if ent.shape[1] != n_features:
        raise ValueError(
            f"X has {ent.shape[1]} features, but the estimator is expecting {n_features} "
            "features as input.")
    call = dask.delayed(_fold_in_block, pure=True)
    e = ent.r_edges
    parts = [da.from_delayed(call(blk, Bd, ridge, Md, denoise, ent.dtype),
                             shape=(int(e[b + 1] - e[b]), n_features), dtype=ent.dtype)
             for b, blk in enumerate(ent.rin)]
    return da.concatenate(parts, axis=0)


def _predict_chunk(r, c, Us, V, n_rows, n_cols):
    r, c = np.asarray(r), np.asarray(c)
    for idx, size, what in ((r, n_rows, "rows"), (c, n_cols, "cols")):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise ValueError(f"{what} must lie in [0, {size - 1}] (the fitted matrix is "
                             f"{n_rows} x {n_cols}); got {int(idx.min())} to "
                             f"{int(idx.max())}.")
    return np.sum(Us[r] * V[c], axis=1)


def predict_entries_dask(rows, cols, Us, V, n_rows, n_cols):
    """Lazy entry predictions for Dask ``rows``/``cols`` (index ranges checked per chunk,
    when computed)."""
    import dask
    import dask.array as da

    arrays = []
    for a, what in ((rows, "rows"), (cols, "cols")):
        if not is_dask_array(a):
            a = da.from_array(np.asarray(a), chunks=rows.chunks if is_dask_array(rows)
                              else cols.chunks)
        _known_chunks(a, what)
        arrays.append(a)
    r, c = arrays
    if r.ndim != 1 or c.ndim != 1 or r.shape[0] != c.shape[0]:
        raise ValueError(f"rows and cols must be 1-D arrays of one length (one entry per "
                         f"pair); got shapes {r.shape} and {c.shape}.")
    if not (np.issubdtype(r.dtype, np.integer) and np.issubdtype(c.dtype, np.integer)):
        raise TypeError(f"rows and cols must be integer arrays; got dtypes {r.dtype} and "
                        f"{c.dtype}. Convert whole-number indices with .astype(int).")
    if c.chunks != r.chunks:
        c = c.rechunk(r.chunks)
    call = dask.delayed(_predict_chunk, pure=True)
    Ud, Vd = dask.delayed(Us), dask.delayed(V)
    parts = [da.from_delayed(call(a, b, Ud, Vd, n_rows, n_cols), shape=(int(size),),
                             dtype=Us.dtype)
             for a, b, size in zip(r.to_delayed(), c.to_delayed(), r.chunks[0], strict=True)]
    return da.concatenate(parts) if parts else da.zeros(0, dtype=Us.dtype)


def as_dask_triplets(X, shape):
    """``X`` for a public function's Dask dispatch: a Dask DataFrame, or a triplet tuple
    without its shape, as ``(rows, cols, values, shape)`` of Dask arrays (``shape`` the
    one found when blocking); a Dask array unchanged."""
    if is_dask_dataframe(X):
        names = _frame_columns(X)
        return tuple(X[name].to_dask_array(lengths=True) for name in names) + (tuple(shape),)
    if isinstance(X, tuple) and len(X) == 3:
        return tuple(X) + (tuple(shape),)
    return X
