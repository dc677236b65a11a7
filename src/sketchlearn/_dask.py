"""Dask arrays as a third kind of input: recognising them, checking their chunks, and
driving mergeable summaries over their row chunks.

A distributed algorithm is written as a *summary* (see :mod:`._summaries`):
``partial(chunk) -> summary``, ``merge(a, b, ...) -> summary`` and ``finalize``, in
plain NumPy/CuPy without Dask. This module is the one place that imports Dask: it
cuts the arrays into row chunks, runs ``partial`` on each chunk where it lives and
merges the results in a tree (``split_every`` at a time, as ``dask.array``'s
reductions do), on the active ``distributed.Client`` or else Dask's default
scheduler. Nothing here starts a cluster, and importing sketchlearn imports no Dask.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np

__all__ = ["is_dask_array", "any_dask", "row_chunked", "aligned_vector", "map_row_chunks",
           "reduce_row_chunks", "persist_row_chunks", "persist_items", "memory_for_cache",
           "DEFAULT_SPLIT_EVERY"]

# Summaries merged per tree node: small trees (few levels) keep the rounding of merged
# floating-point summaries low, and 8 k x k factors stacked are still a small QR.
DEFAULT_SPLIT_EVERY = 8


def is_dask_array(x) -> bool:
    """Whether ``x`` is a ``dask.array.Array``, without importing Dask (a Dask array can
    only exist once ``dask.array`` has been imported)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def any_dask(*values) -> bool:
    """Whether any of ``values`` is a Dask array."""
    return any(is_dask_array(v) for v in values)


def row_chunked(X, name: str = "X"):
    """``X`` (a 1-D or 2-D Dask array) with known row chunks and all columns in one chunk.

    Unknown chunk sizes (after boolean indexing, for instance) raise a ``ValueError``
    that says how to fix them; chunks along the columns are merged, with a warning,
    since every algorithm here streams whole rows.
    """
    if X.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D; got a Dask array of shape {X.shape}.")
    if any(math.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(
            f"{name} has unknown chunk sizes (a Dask array made by boolean indexing or "
            f"from a DataFrame, for instance); call {name}.compute_chunk_sizes() first, "
            "or build it with known chunks.")
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        from ._validation import user_stacklevel

        warnings.warn(
            f"{name} is chunked along its columns ({len(X.chunks[1])} column chunks); "
            "sketchlearn streams whole rows, so the columns are merged into one chunk "
            f"(rechunk {name} as {name}.rechunk({{1: -1}}) to avoid this step).",
            UserWarning, stacklevel=user_stacklevel())
        X = X.rechunk({1: -1})
    return X


def aligned_vector(v, X, name: str):
    """``v`` (one value per row of ``X``) as a 1-D Dask array chunked like ``X``'s rows.

    A NumPy (or array-like) ``v`` is cut into ``X``'s row chunks: it is documented as
    accepted, and is small next to ``X``. ``None`` stays ``None``.
    """
    if v is None:
        return None
    import dask.array as da

    n = X.shape[0]
    if not is_dask_array(v):
        v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n},) to match X's rows; got shape "
                             f"{v.shape}.")
        return da.from_array(v, chunks=(X.chunks[0],))
    v = row_chunked(v, name)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match X's rows; got shape "
                         f"{v.shape}.")
    if v.chunks[0] != X.chunks[0]:
        v = v.rechunk((X.chunks[0],))
    return v


def _blocks(arrays):
    """Per row chunk, the tuple of the arrays' blocks (``None`` stays ``None``), and the
    chunks' first global rows."""
    first = next(a for a in arrays if a is not None)
    parts = []
    for a in arrays:
        if a is None:
            parts.append([None] * len(first.chunks[0]))
            continue
        d = a.to_delayed()
        parts.append(list(d.ravel()) if a.ndim == 1 else list(d[:, 0]))
    starts = np.concatenate([[0], np.cumsum(first.chunks[0])[:-1]]).astype(int)
    return list(zip(*parts, strict=True)), [int(s) for s in starts]


def map_row_chunks(func, *arrays, context=(), per_chunk=None, kept=None):
    """Delayed ``func(*blocks, start, index, *context)`` for each row chunk of ``arrays``
    (Dask arrays with the same row chunks, or None).

    With ``per_chunk`` (one object per row chunk) the call is ``func(*blocks, start,
    index, per_chunk[index], *context)``: each task carries its own item only (a
    chunk's ``k x k`` factor, say), not the list of all of them. With ``kept`` (what
    :func:`persist_row_chunks` returned) instead of ``arrays``, ``blocks`` is the one
    object kept for the chunk.
    """
    import dask

    blocks, starts = kept if kept is not None else _blocks(arrays)
    call = dask.delayed(func, pure=True)
    items = [()] * len(starts) if per_chunk is None else [(item,) for item in per_chunk]
    return [call(*b, s, i, *item, *context)
            for i, (b, s, item) in enumerate(zip(blocks, starts, items, strict=True))]


def reduce_row_chunks(summary, *arrays, context=(), per_chunk=None, kept=None,
                      split_every: int = DEFAULT_SPLIT_EVERY):
    """Run ``summary.partial`` on every row chunk of ``arrays``, merge the results in a
    tree of ``split_every``-way ``summary.merge`` calls, and return the merged summary
    (computed: one pass over the data).

    ``summary.partial(*blocks, start, index, *context)`` gets each array's block of
    one row chunk, its first global row and its index (and ``per_chunk[index]`` after
    the index, see :func:`map_row_chunks`); ``summary.merge(*summaries)`` gets 2 to
    ``split_every`` summaries in row order. ``summary`` travels with every task: keep
    it small. ``kept``: chunks held in memory by :func:`persist_row_chunks`, in place
    of ``arrays``.

    A summary that keeps something at every merge (TSQR's orthogonal factors) does not
    pass it up the tree, where the last merge would hold all of it: it defines
    ``node_part(merged)``, the part of a merge's result to keep, and ``assemble(root,
    tree)``, which gets the root's result and the tree of those parts (a chunk's index
    at a leaf, ``(part, [children])`` at a merge) and returns the result. Each part
    comes to the caller straight from the worker that computed it.
    """
    import dask

    nodes = map_row_chunks(summary.partial, *arrays, context=context, per_chunk=per_chunk,
                           kept=kept)
    merge = dask.delayed(summary.merge, pure=True)
    shapes = list(range(len(nodes)))  # the tree below each node: chunk index, or merge
    merges = []  # every merge, in the order made (a shape's merge is its position here)
    while len(nodes) > 1:
        merged, merged_shapes = [], []
        for i in range(0, len(nodes), split_every):
            group = nodes[i:i + split_every]
            if len(group) == 1:
                merged.append(group[0])
                merged_shapes.append(shapes[i])
                continue
            merges.append(merge(*group))
            merged.append(merges[-1])
            merged_shapes.append((len(merges) - 1, shapes[i:i + split_every]))
        nodes, shapes = merged, merged_shapes
    node_part = getattr(summary, "node_part", None)
    if node_part is None:
        (result,) = dask.compute(nodes[0])
        return result
    take = dask.delayed(node_part, pure=True)
    result, *parts = dask.compute(nodes[0], *[take(m) for m in merges])

    def tree(shape):
        if isinstance(shape, int):
            return shape
        position, children = shape
        return parts[position], [tree(child) for child in children]

    return summary.assemble(result, tree(shapes[0]))


def persist_row_chunks(func, *arrays, context=(), per_chunk=None):
    """``func(*blocks, start, index, [item,] *context)`` computed for every row chunk and
    kept in memory where it was computed (the workers of the active
    ``distributed.Client``, else this process), for later passes to start from
    (``kept=`` of :func:`map_row_chunks` and :func:`reduce_row_chunks`) instead of
    reading the chunk again. Release it by dropping the reference."""
    import dask

    blocks, starts = _blocks(arrays)
    parts = dask.persist(*map_row_chunks(func, context=context, per_chunk=per_chunk,
                                         kept=(blocks, starts)))
    return [(part,) for part in parts], starts


def persist_items(items):
    """Per-chunk items (for ``per_chunk=``) sent to the workers once: later passes refer
    to them by key. Passed as values, they travel with every pass's graph (at 2048
    chunks of a 101 x 101 factor, 160 MB each time, and distributed's warning about a
    large graph)."""
    import dask

    return list(dask.persist(*[dask.delayed(item, traverse=False) for item in items]))


def _active_client():
    """The ``distributed.Client`` whose scheduler is in use, else None."""
    import dask.base

    client = getattr(dask.base.get_scheduler(), "__self__", None)
    return client if client is not None and hasattr(client, "scheduler_info") else None


def worker_processes() -> int:
    """How many processes a task's inputs may be copied to: the workers of the active
    ``distributed.Client``, else 1 (the local schedulers share this process's memory)."""
    client = _active_client()
    return 1 if client is None else max(1, len(client.nthreads()))


def memory_for_cache() -> float:
    """Bytes that per-chunk results may take when kept between passes: a quarter of the
    total memory limit of the workers of the scheduler in use (a
    ``distributed.Client``'s), else a quarter of this machine's available memory."""
    client = _active_client()
    if client is not None:
        workers = client.scheduler_info().get("workers", {}).values()
        limits = [w.get("memory_limit") or 0 for w in workers]
        if limits and all(limits):
            return 0.25 * float(sum(limits))
    try:
        import psutil

        return 0.25 * float(psutil.virtual_memory().available)
    except ImportError:  # distributed brings psutil; without it, keep nothing
        return 0.0
