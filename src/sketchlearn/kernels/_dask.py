"""Kernel sums and MMD of Dask arrays, by blocks of row-chunk pairs.

``K(X, Y) V`` is cut along the row chunks of ``X`` (index ``i``) and of ``Y``
(index ``j``): each task computes ``K(X_i, Y_j) V_j`` with the in-memory kernel sum
(Numba for NumPy chunks, CUDA for CuPy chunks), never more than one chunk of each
side at a time, and the products of one ``i`` are added over ``j`` in a tree
(``dask.array``'s ``sum``). The result keeps ``X``'s row chunks and stays lazy;
:func:`mmd_dask` computes its three quadratic forms ``w^T K w`` in one pass over the
pairs. Sums differ from the in-memory ones only by the order of additions.

Bandwidth rules see the same data as in memory: the median heuristic draws its
(at most 1000) rows with the same seeded choice from the pooled row numbers and
gathers just those rows, so it gives the in-memory bandwidth; Scott's rule takes the
per-feature variances of the whole sample in one pass.

NumPy arrays given next to Dask ones (``Y``, ``V`` or weights) are wrapped with
``dask.array.from_array`` in the row chunks of the Dask side they pair with; when
only ``Y`` is a Dask array, ``X`` is wrapped as one chunk, and the result is a Dask
array all the same (Dask in, Dask out).
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, to_numpy
from .._dask import is_dask_array, row_chunked
from .._random import as_generator
from ._bandwidth import _MEDIAN_MAX_SAMPLES, make_kernel, median_heuristic
from ._kernels import Kernel, RieszKernel

__all__ = ["dask_make_kernel", "kernel_matvec_dask", "kernel_mean_dask", "mmd_dask",
           "as_row_chunked"]


def as_row_chunked(A, name, rows=None):
    """``A`` as a 2-D (or 1-D) Dask array with known row chunks and one column chunk;
    a NumPy/CuPy array is wrapped (``rows``: its row chunks, default one chunk)."""
    import dask.array as da

    if is_dask_array(A):
        return row_chunked(A, name)
    if not hasattr(A, "__array_namespace__"):
        A = np.asarray(A)
    if rows is None or A.ndim == 0 or sum(rows) != A.shape[0]:
        rows = (A.shape[0],) if A.ndim else ()  # a wrong length: the caller says so
    chunks = ((rows,) if A.ndim else ()) + ((-1,) * (A.ndim - 1))
    return da.from_array(A, chunks=chunks)


def check_dask_points(X, name, min_samples=1):
    """Lazy checks of a Dask point cloud: 2-D, known row chunks, real dtype (cast to
    float64 when not float), at least ``min_samples`` rows. NaN and infinity are
    caught chunk by chunk when the data are read (:func:`finite_block`)."""
    X = row_chunked(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a Dask array of "
                         f"shape {X.shape}. Reshape a single feature with "
                         f"{name}.reshape(-1, 1).")
    if X.shape[0] < min_samples or X.shape[1] == 0:
        raise ValueError(f"{name} has shape {X.shape}; at least {min_samples} sample(s) and "
                         "one feature are needed.")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or \
                np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"{name} has dtype {X.dtype}; real numbers are needed.")
        X = X.astype(np.float64)
    return X


def finite_block(block, start, name):
    """``block`` unchanged, or a ``ValueError`` naming its rows (from ``start``; None
    when the block is not a run of rows) when it holds NaN or infinity (the in-memory
    check, made where each chunk is read)."""
    xp = get_namespace(block)
    if not bool(xp.all(xp.isfinite(block))):
        where = "" if start is None else \
            f" (in rows {start} to {start + block.shape[0] - 1})"
        raise ValueError(f"{name} contains NaN or infinity{where}; remove or impute them "
                         "first.")
    return block


def _gather_rows(arrays, rows):
    """Rows ``rows`` (sorted, of the pooled row numbers) of the Dask arrays ``arrays``
    stacked in order, computed as one NumPy array."""
    import dask

    parts, offset = [], 0
    for A in arrays:
        mine = rows[(rows >= offset) & (rows < offset + A.shape[0])] - offset
        if mine.size:
            parts.append(A[mine])
        offset += A.shape[0]
    computed = dask.compute(*parts)
    return np.concatenate([np.asarray(to_numpy(p), dtype=np.float64) for p in computed])


def dask_make_kernel(kernel, bandwidth, X, Y=None, **params) -> Kernel:
    """:func:`make_kernel` for Dask samples: the same bandwidth as in memory.

    ``"median"`` (or ``None``) takes the median heuristic on the rows that the in-memory
    rule draws (the same seeded choice of at most 1000 pooled rows), gathered from the
    Dask arrays; ``"scott"`` computes the pooled per-feature variances in one pass.
    """
    if isinstance(kernel, Kernel) or (bandwidth is not None and not isinstance(bandwidth, str)):
        return make_kernel(kernel, bandwidth, **params)
    if isinstance(kernel, str):
        from ._kernels import KERNEL_NAMES

        cls = KERNEL_NAMES.get(kernel.lower())
        if cls is RieszKernel and bandwidth is None:
            return make_kernel(kernel, None, **params)
    arrays = [X] if Y is None else [X, Y]
    total = sum(A.shape[0] for A in arrays)
    if bandwidth is None or bandwidth == "median":
        rows = np.arange(total)
        if total > _MEDIAN_MAX_SAMPLES:
            rows = np.sort(as_generator(0).choice(total, size=_MEDIAN_MAX_SAMPLES,
                                                  replace=False))
        value = median_heuristic(_gather_rows(arrays, rows))
    elif bandwidth == "scott":
        import dask.array as da

        Z = arrays[0] if Y is None else da.concatenate(arrays, axis=0)
        if total < 2:
            raise ValueError("Scott's rule needs at least two samples.")
        var = np.asarray(Z.astype(np.float64).var(axis=0, ddof=1).compute())
        spread = math.sqrt(float(np.mean(var)))
        value = spread * total ** (-1.0 / (Z.shape[1] + 4)) if spread > 0 else 1.0
    else:
        return make_kernel(kernel, bandwidth, **params)  # make_kernel's own message
    return make_kernel(kernel, value, **params)


def _check_dask_weights(w, n, name, like, dtype, normalize=False):
    """Probability weights of ``n`` rows as a Dask vector chunked like ``like``'s rows:
    non-negative, finite, summing to one (checked with one small pass over ``w``)."""
    import dask
    import dask.array as da

    w = as_row_chunked(w, name, rows=like.chunks[0])
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got shape {w.shape}.")
    if w.chunks[0] != like.chunks[0]:
        w = w.rechunk((like.chunks[0],))
    w = w.astype(np.float64)
    low, total, finite = dask.compute(w.min(), w.sum(), da.isfinite(w).all())
    if not bool(finite):
        raise ValueError(f"{name} contains NaN or infinity.")
    if float(low) < 0:
        raise ValueError(f"{name} has negative entries; weights must be non-negative.")
    total = float(total)
    if total <= 0:
        raise ValueError(f"{name} sums to 0 (all weights are zero); at least one must be "
                         "positive.")
    if normalize:
        return (w / total).astype(dtype)
    if abs(total - 1.0) > 1e-6 * max(1, n) ** 0.5 + 1e-12 and abs(total - 1.0) > 1e-5:
        raise ValueError(f"{name} sums to {total:.6g}, not 1; pass {name} / {name}.sum() to "
                         "normalise.")
    return w.astype(dtype)


def _pair_product(Xb, Yb, Vb, kernel, x_start, y_start):
    """``K(X_i, Y_j) V_j`` of one pair of row chunks, shape ``(rows_i, r)``."""
    from .._cold_start import reference_until_compiled
    from ._sums import kernel_matvec_op, small_for_reference

    finite_block(Xb, x_start, "X")
    finite_block(Yb, y_start, "Y")
    xp = get_namespace(Xb, Yb, Vb)
    with reference_until_compiled(small=small_for_reference(Xb.shape[0] * Yb.shape[0],
                                                            Xb.shape[1])):
        out = kernel_matvec_op(xp, Xb, Yb, xp.astype(Vb, Xb.dtype), kernel)
    return out


def _starts(chunks):
    return [int(s) for s in np.concatenate([[0], np.cumsum(chunks)[:-1]])]


def _add(*parts):
    return sum(parts[1:], parts[0])


def _lazy_matvec(X, Y, V, kernel, split_every=8):
    """``K(X, Y) V`` (``V`` 2-D, chunked like ``Y``'s rows) as a lazy Dask array chunked
    like ``X``'s rows: one task per pair of row chunks, the products of one row chunk
    of ``X`` added over ``Y``'s chunks in a tree of ``split_every``-way sums."""
    import dask
    import dask.array as da

    pair = dask.delayed(_pair_product, pure=True)
    add = dask.delayed(_add, pure=True)
    x_blocks, y_blocks = X.to_delayed()[:, 0], Y.to_delayed()[:, 0]
    v_blocks = V.to_delayed()[:, 0]
    y_starts = _starts(Y.chunks[0])
    rows_out = []
    for Xb, x_start, rows in zip(x_blocks, _starts(X.chunks[0]), X.chunks[0], strict=True):
        nodes = [pair(Xb, Yb, Vb, kernel, x_start, y_start)
                 for Yb, Vb, y_start in zip(y_blocks, v_blocks, y_starts, strict=True)]
        while len(nodes) > 1:
            nodes = [add(*nodes[i:i + split_every]) if len(nodes[i:i + split_every]) > 1
                     else nodes[i] for i in range(0, len(nodes), split_every)]
        rows_out.append(da.from_delayed(nodes[0], shape=(rows, V.shape[1]), dtype=X.dtype,
                                        meta=X._meta))
    return da.concatenate(rows_out, axis=0)


def _dask_pair(X, Y, name_y="Y"):
    """``X`` and ``Y`` as Dask point clouds (``Y=None``: ``X``), NumPy ones wrapped."""
    X = check_dask_points(as_row_chunked(X, "X"), "X")
    if Y is None:
        return X, X
    Y = check_dask_points(as_row_chunked(Y, name_y), name_y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but {name_y} has {Y.shape[1]}; they "
                         "must match.")
    dtype = np.result_type(X.dtype, Y.dtype)
    return X.astype(dtype), Y.astype(dtype)


def kernel_matvec_dask(X, Y, V, kernel="gaussian", bandwidth=None, kernel_params=None):
    """Distributed :func:`~sketchlearn.kernels.kernel_matvec`: a lazy Dask array of
    ``K(X, Y) V`` chunked like ``X``'s rows (see the module docstring)."""
    same = Y is None
    X, Y = _dask_pair(X, Y)
    k = dask_make_kernel(kernel, bandwidth, X, None if same else Y, **(kernel_params or {}))
    vector = np.ndim(V) == 1
    V = as_row_chunked(V, "V", rows=Y.chunks[0])
    if V.ndim not in (1, 2):
        raise ValueError(f"V must be 1-D or 2-D; got shape {V.shape}.")
    if V.shape[0] != Y.shape[0]:
        raise ValueError(f"V has {V.shape[0]} rows but Y has {Y.shape[0]} samples.")
    V2 = V[:, None] if vector else V
    V2 = V2.rechunk((Y.chunks[0], -1)).astype(X.dtype)
    out = _lazy_matvec(X, Y, V2, k)
    return out[:, 0] if vector else out


def kernel_mean_dask(X, Y=None, kernel="gaussian", weights=None, bandwidth=None,
                     kernel_params=None):
    """Distributed :func:`~sketchlearn.kernels.kernel_mean` (a lazy Dask array)."""
    same = Y is None
    X, Y = _dask_pair(X, Y)
    k = dask_make_kernel(kernel, bandwidth, X, None if same else Y, **(kernel_params or {}))
    m = Y.shape[0]
    if weights is None:
        import dask.array as da

        w = da.full((m,), 1.0 / m, dtype=X.dtype, chunks=(Y.chunks[0],))
    else:
        w = _check_dask_weights(weights, m, "weights", Y, X.dtype)
    return _lazy_matvec(X, Y, w[:, None], k)[:, 0]


def mmd_dask(X, Y, kernel="gaussian", bandwidth=None, weights_x=None, weights_y=None,
             unbiased=False, squared=False, kernel_params=None):
    """Distributed :func:`~sketchlearn.metrics.mmd`: the three quadratic forms
    ``w^T K w`` summed over pairs of row chunks, computed together."""
    import dask
    import dask.array as da

    from ._mmd import mmd_from_quadratics

    if Y is None:
        raise ValueError("mmd needs two samples, X and Y.")
    X, Y = _dask_pair(X, Y)
    k = dask_make_kernel(kernel, bandwidth, X, Y, **(kernel_params or {}))
    n, m = X.shape[0], Y.shape[0]
    if unbiased and (weights_x is not None or weights_y is not None):
        raise ValueError("unbiased=True takes unweighted samples; drop weights_x/weights_y.")
    if unbiased and min(n, m) < 2:
        raise ValueError("The unbiased estimate needs at least 2 samples in X and in Y.")

    def weights(w, size, name, like):
        if w is None:
            return da.full((size,), 1.0 / size, dtype=X.dtype, chunks=(like.chunks[0],))
        return _check_dask_weights(w, size, name, like, X.dtype)

    wx, wy = weights(weights_x, n, "weights_x", X), weights(weights_y, m, "weights_y", Y)

    def quadratic(A, B, wa, wb):
        return (wa.astype(np.float64) * _lazy_matvec(A, B, wb[:, None], k)[:, 0]).sum()

    xx, xy, yy = (float(v) for v in dask.compute(quadratic(X, X, wx, wx),
                                                 quadratic(X, Y, wx, wy),
                                                 quadratic(Y, Y, wy, wy)))
    return mmd_from_quadratics(xx, xy, yy, n, m, k, unbiased, squared)
