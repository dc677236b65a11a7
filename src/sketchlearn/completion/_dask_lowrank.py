"""Low-rank factorisations of Dask matrices: a distributed SVD, one-shot singular value
thresholding (:func:`svt_complete_dask`) and softImpute-ALS (:func:`soft_impute_dask`).

The matrix is a row-chunked Dask array (NaN at the missing entries, or an
``observed_mask``). Every pass over it is a tree of summaries of row chunks
(:func:`sketchlearn._dask.reduce_row_chunks`); what crosses the network is ``n x r``
or ``r x r`` (``n`` columns, ``r`` the rank), never a chunk.

Distributed SVD (:func:`dask_svd`)
    *Exact* (``n`` up to ``exact_max_cols``): the ``R`` factor of the whole
    matrix by TSQR (:class:`sketchlearn._summaries.TSQR`), then the SVD of the small
    ``R = W diag(s) Z^T``: ``s`` and ``V = Z`` are those of the matrix to rounding,
    and chunk ``i``'s rows of ``U`` are its local ``Q_i`` times the small matrix
    ``T_i W[:, :k]`` the TSQR tree gives it (recomputed lazily).
    *Randomized* (wider matrices, Halko, Martinsson and Tropp 2011): a range finder
    ``Y = A Omega`` with ``Omega`` (``n x (k + oversamples)``) drawn keyed by column
    index, so the same whatever the chunking; ``q`` power iterations
    ``Y <- A orth(A^T orth(Y))``, each orthonormalisation by TSQR; then
    ``B = Q^T A`` as a sum over chunks and the SVD of the small ``B``.

SVT
    As :func:`sketchlearn.completion.svt_complete`: the top ``max_rank`` singular
    triplets of ``P_Omega(X) / p_hat`` (the distributed SVD), the ``"auto"``
    threshold from the row and column sums of squares (one summary pass).

softImpute-ALS
    The in-memory sweeps (Hastie, Mazumder, Lee and Zadeh 2015) with the rows of
    ``U`` kept on the workers, chunk by chunk: the products of the filled matrix
    ``X* = P_Omega(X) + P_Omega^perp(A B^T)`` with thin factors are ``S^T U + V D^2``
    (``S`` the residual at the observed entries, formed per chunk) summed over the
    chunks, and ``S V + U D^2``, row-local; the thin SVD of the tall ``m x r`` matrix
    of the A step is TSQR and the SVD of its ``R`` (with ``R``'s diagonal made
    positive, the ``R`` of the in-memory Cholesky QR).

Chunks are computed in float64 (NumPy or CuPy, through the array namespace) and the
results cast to the input's dtype.
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import is_dask_array, map_row_chunks, reduce_row_chunks, row_chunked
from .._random import as_generator, row_keyed
from .._summaries import TSQR, ChunkQ
from ._core import soft_impute_change, warn_soft_impute_not_converged, warn_svt_kept
from ._dask import BlockedEntries, block_rows, blocked_entries, is_dask_input

__all__ = ["dask_svd", "svt_complete_dask", "soft_impute_dask"]

# Columns up to which dask_svd factors the whole matrix (TSQR, an n x n R per chunk);
# wider matrices use the randomized range finder.
EXACT_MAX_COLS = 2048


# --------------------------------------------------------------------------- summaries


class _Sums:
    """Summary adding up per-chunk tuples of arrays: ``func(*blocks, start, index[,
    item], *context) -> tuple``."""

    def __init__(self, func):
        self.func = func

    def partial(self, *args):
        return self.func(*args)

    @staticmethod
    def merge(*parts):
        return tuple(sum(p[i] for p in parts[1:]) + parts[0][i] for i in range(len(parts[0])))


def _tree_sum(func, *arrays, context=(), per_chunk=None):
    return reduce_row_chunks(_Sums(func), *arrays, context=context, per_chunk=per_chunk)


class _Filled:
    """``build(X_block, mask_block) -> scale * P_Omega(X_block)`` (float64, zeros at
    the missing entries: ``mask_block`` False, or NaN when there is no mask)."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, Xb, Mb=None):
        xp = get_namespace(Xb)
        A = xp.astype(Xb, xp.float64)
        Mb = ~xp.isnan(A) if Mb is None else Mb
        A = xp.where(Mb, A, xp.zeros_like(A))
        if self.scale != 1.0:
            A = A * self.scale
        return A


def _rows_of_q(build, arrays, tree, top):
    """Per chunk, the delayed ``Q_i T_i`` (``T_i`` from the TSQR ``tree`` times ``top``)."""
    leaf = TSQR.leaf_transforms(tree, top)
    items = [leaf[i] for i in range(len(leaf))]

    def block(*args):
        *blocks, _start, _index, T = args
        A = build(*blocks)
        return ChunkQ(A).matmul(move_to(T, get_namespace(A)))  # stays on the chunk's device

    return map_row_chunks(block, *arrays, per_chunk=items)


def _stack_rows(parts, chunks, width, dtype=np.float64):
    """A lazy Dask array from per-chunk delayed ``(rows_i, width)`` blocks."""
    import dask.array as da

    return da.concatenate([da.from_delayed(p, shape=(int(c), width), dtype=dtype)
                           for p, c in zip(parts, chunks, strict=True)], axis=0)


def _tsqr(build, arrays):
    """TSQR of the matrix whose chunk ``i`` is ``build(*blocks_i)``: ``(R, tree)``."""
    return reduce_row_chunks(TSQR(lambda *args: build(*args[:-1])), *arrays)


def _positive_diagonal(R):
    """``R`` with rows negated so that its diagonal is >= 0, and the signs used."""
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return R * signs[:, None], signs


# --------------------------------------------------------------------------- SVD


def dask_svd(arrays, k, *, build=None, method="auto", n_oversamples=10, n_power_iter=4,
             random_state=None, exact_max_cols=None):
    """Top ``k`` singular triplets of a row-chunked Dask matrix.

    Parameters
    ----------
    arrays : Dask array or tuple of Dask arrays
        The matrix, or the arrays (same row chunks) its chunks are built from.
    k : int
        Number of singular triplets.
    build : callable, optional
        ``build(*blocks) -> A_i`` (float64, NumPy or CuPy): chunk ``i`` of the matrix
        from the arrays' blocks; default: the (only) array's block in float64.
    method : {"auto", "exact", "randomized"}, default="auto"
        ``"exact"``: TSQR of the whole matrix and the SVD of its ``n x n`` ``R``.
        ``"randomized"``: range finder with ``n_power_iter`` power iterations.
        ``"auto"``: exact up to ``exact_max_cols`` columns.
    n_oversamples : int, default=10
        Extra columns of the randomized range finder.
    n_power_iter : int, default=4
        Power iterations of the randomized range finder.
    random_state : None, int or numpy.random.Generator
        Seed of the range finder's test matrix (drawn by column index).
    exact_max_cols : int, optional
        See ``method="auto"``; default ``EXACT_MAX_COLS`` (2048).

    Returns
    -------
    U : dask.array.Array of shape (n_rows, k)
        Lazy, chunked like the rows; orthonormal columns (float64).
    s : ndarray of shape (k,)
    Vt : ndarray of shape (k, n_cols)

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sketchlearn.completion._dask_lowrank import dask_svd
    >>> A = np.random.default_rng(0).normal(size=(500, 20))
    >>> U, s, Vt = dask_svd(da.from_array(A, chunks=(100, -1)), 3)
    >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:3]))
    True
    """
    if is_dask_array(arrays):
        arrays = (arrays,)
    arrays = tuple(row_chunked(a, "X") if a is not None else None for a in arrays)
    build = _Filled() if build is None else build
    m, n = arrays[0].shape[:2]
    k = int(k)
    if method == "auto":
        limit = EXACT_MAX_COLS if exact_max_cols is None else exact_max_cols
        method = "exact" if n <= limit else "randomized"
    if method == "exact":
        R, tree = _tsqr(build, arrays)
        W, s, Vt = np.linalg.svd(R, full_matrices=False)
        k = min(k, s.shape[0])
        U = _stack_rows(_rows_of_q(build, arrays, tree, W[:, :k]), arrays[0].chunks[0], k)
        return U, s[:k], Vt[:k]
    if method != "randomized":
        raise ValueError(f"method must be 'auto', 'exact' or 'randomized'; got {method!r}.")
    rng = as_generator(random_state)
    seed = int(rng.integers(2**63))
    ell = min(n, k + int(n_oversamples))
    G = row_keyed(seed, 0, 0, n, lambda g, size: g.standard_normal((size, ell)))
    for _ in range(int(n_power_iter)):
        Z = _project_back(build, arrays, G)  # A^T orth(A G)
        G, _ = np.linalg.qr(Z)
    _, tree = _tsqr(_compose(build, G), arrays)
    Z = _project_back(build, arrays, G, tree)  # B^T = A^T Q
    Wb, s, Vt = np.linalg.svd(Z.T, full_matrices=False)
    k = min(k, s.shape[0])
    U = _stack_rows(_rows_of_q(_compose(build, G), arrays, tree, Wb[:, :k]),
                    arrays[0].chunks[0], k)
    return U, s[:k], Vt[:k]


def _compose(build, G):
    """``build`` followed by a product with the host matrix ``G`` on the right."""

    def composed(*blocks):
        A = build(*blocks)
        return get_namespace(A).matmul(A, move_to(G, get_namespace(A)))

    return composed



def _project_back(build, arrays, G, tree=None):
    """``A^T Q`` with ``Q`` the orthonormal factor of ``A G`` (by TSQR; ``tree`` when
    already computed), a sum over chunks."""
    right = _compose(build, G)
    if tree is None:
        _, tree = _tsqr(right, arrays)
    leaf = TSQR.leaf_transforms(tree)
    items = [leaf[i] for i in range(len(leaf))]

    def part(*args):
        *blocks, _start, _index, T = args
        A = build(*blocks)
        xp = get_namespace(A)
        Q = ChunkQ(xp.matmul(A, move_to(G, xp))).matmul(move_to(T, xp))
        return (to_numpy(xp.matmul(xp.matrix_transpose(A), Q)),)

    return _tree_sum(part, *arrays, per_chunk=items)[0]


# --------------------------------------------------------------------------- input


def _dense_rows(block, n, dtype):
    """One row in-block of :func:`._dask.blocked_entries` (CSR over its rows, column ids
    local to ``gidx``) as a dense ``(rows, n)`` chunk, NaN at the missing entries."""
    out = np.full((int(block["size"]), n), np.nan, dtype=dtype)
    out[block_rows(block),
        block["gidx"][block["indices"].astype(np.int64)]] = block["vals"]
    return out


def rows_from_entries(ent):
    """:class:`._dask.BlockedEntries` (observed entries blocked on the workers) as a
    row-chunked Dask array with NaN at the missing entries: one dense chunk per row
    block, built from its row in-block where it lives."""
    import dask
    import dask.array as da

    m, n = ent.shape
    dense = dask.delayed(_dense_rows, pure=True)
    rows = np.diff(ent.r_edges).astype(int)
    return da.concatenate([da.from_delayed(dense(blk, n, ent.dtype), shape=(int(r), n),
                                           dtype=ent.dtype)
                           for blk, r in zip(ent.rin, rows, strict=True)], axis=0)


def observed_dask(X, observed_mask=None, name="X", duplicates="raise"):
    """``(X, mask)`` for a Dask matrix with NaN at the missing entries: ``X`` row-chunked,
    float (integers and booleans as float64); ``mask`` a boolean Dask array chunked like
    ``X``, or None (observed = not NaN). Nothing is computed for a Dask array; triplets
    (a tuple of Dask arrays or a Dask DataFrame) are parsed and blocked by rows first
    (:func:`._dask.blocked_entries`; or given so, as ``BlockedEntries``) and each row
    block made a dense chunk."""
    import dask.array as da

    if not is_dask_array(X):
        if isinstance(X, BlockedEntries):
            return rows_from_entries(X), None
        if not is_dask_input(X):
            raise TypeError(f"observed_mask is a Dask array but {name} is not; pass {name} "
                            f"as a Dask array too (dask.array.from_array({name}, "
                            "chunks=(rows, -1))).")
        if observed_mask is not None:
            raise ValueError("observed_mask cannot be combined with (rows, cols, values) "
                             "triplets: every triplet is an observed entry.")
        return rows_from_entries(blocked_entries(X, None, duplicates=duplicates,
                                                 name=name)), None
    X = row_chunked(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (NaN at the missing entries); got "
                         f"{X.ndim}-D with shape {tuple(X.shape)}.")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.integer) or X.dtype == np.bool_):
            raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if observed_mask is None:
        return X, None
    if is_dask_array(observed_mask):
        M = row_chunked(observed_mask, "observed_mask")
    else:
        M = np.asarray(observed_mask)
    if tuple(M.shape) != tuple(X.shape):
        raise ValueError(f"observed_mask has shape {tuple(M.shape)} but {name} has shape "
                         f"{tuple(X.shape)}; they must agree.")
    if not is_dask_array(M):
        M = da.from_array(M, chunks=X.chunks)
    if M.dtype != np.bool_:
        M = M != 0
    if M.chunks != X.chunks:
        M = M.rechunk(X.chunks)
    return X, M


class _Stats:
    """One pass: observed count, the largest row sum of squares, the column sums of
    squares, and the counts of NaN and infinite observed entries."""

    @staticmethod
    def partial(Xb, Mb, start, index):
        xp = get_namespace(Xb)
        A = xp.astype(Xb, xp.float64)
        nan = xp.isnan(A)
        M = ~nan if Mb is None else Mb
        bad_nan = int(xp.sum(xp.astype(nan & M, xp.int64)))
        bad_inf = int(xp.sum(xp.astype(xp.isinf(A) & M, xp.int64)))
        A = xp.where(M & ~nan, A, xp.zeros_like(A))
        sq = A * A
        rows = xp.sum(sq, axis=1)
        row_max = float(xp.max(rows)) if rows.shape[0] else 0.0
        return (int(xp.sum(xp.astype(M, xp.int64))), row_max,
                to_numpy(xp.sum(sq, axis=0)), bad_nan, bad_inf)

    @staticmethod
    def merge(*parts):
        return (sum(p[0] for p in parts), max(p[1] for p in parts),
                sum(p[2] for p in parts[1:]) + parts[0][2], sum(p[3] for p in parts),
                sum(p[4] for p in parts))


def _checked_stats(X, M, name):
    nnz, row_max, col_sq, bad_nan, bad_inf = reduce_row_chunks(_Stats(), X, M)
    if bad_nan:
        raise ValueError(f"{name} has NaN at entries that observed_mask marks as observed.")
    if bad_inf:
        raise ValueError(f"{name} contains infinity; missing entries are NaN, observed "
                         "entries must be finite.")
    if nnz == 0:
        raise ValueError(f"{name} has no observed entries; at least one is needed.")
    return nnz, row_max, col_sq


def _rank(max_rank, shape):
    from ._core import check_rank, default_rank

    return check_rank(max_rank if max_rank is not None else default_rank(shape, 100), shape,
                      "max_rank")


# --------------------------------------------------------------------------- SVT


def svt_complete_dask(X, threshold="auto", *, thresholding="hard", max_rank=None,
                      observed_mask=None, duplicates="raise", random_state=None):
    """:func:`sketchlearn.completion.svt_complete` of a row-chunked Dask array (NaN at
    the missing entries): ``U`` comes back as a lazy Dask array chunked like ``X``'s
    rows, ``s`` and ``V`` as NumPy. The top singular triplets are exact (TSQR) up to
    ``EXACT_MAX_COLS`` columns, randomized (range finder keyed by ``random_state``,
    4 power iterations) beyond."""
    X, M = observed_dask(X, observed_mask, duplicates=duplicates)
    m, n = X.shape
    dtype = X.dtype
    rank = _rank(max_rank, (m, n))
    nnz, row_max, col_sq = _checked_stats(X, M, "X")
    p_hat = nnz / (m * n)
    U, sig, Vt = dask_svd((X, M), rank, build=_Filled(1.0 / p_hat),
                          random_state=random_state)
    if threshold == "auto":
        c = max(1.0 / p_hat - 1.0, 0.0) / p_hat
        tau = math.sqrt(c * row_max) + math.sqrt(c * float(np.max(col_sq)))
    else:
        tau = float(threshold)
    keep = int(np.sum(sig > tau))
    warn_svt_kept(keep, rank, (m, n), tau, float(sig[0]))
    if keep == 0:
        keep = 1
        s = np.zeros(1)
    elif thresholding == "soft":
        s = sig[:keep] - tau
    else:
        s = sig[:keep]
    return (U[:, :keep].astype(dtype), s.astype(dtype),
            np.ascontiguousarray(Vt[:keep].T, dtype=dtype))


# --------------------------------------------------------------------------- softImpute-ALS


def _residual(Xb, Mb, U, D, V):
    """``S = P_Omega(X - (U D)(V D)^T)`` of one chunk (float64, zeros elsewhere)."""
    xp = get_namespace(Xb)
    A = xp.astype(Xb, xp.float64)
    M = ~xp.isnan(A) if Mb is None else Mb
    P = xp.matmul(U * move_to(D, xp), xp.matrix_transpose(move_to(V * D, xp)))
    return xp.where(M, A - P, xp.zeros_like(A))


def _b_step_part(Xb, Mb, start, index, U, V, D):
    S = _residual(Xb, Mb, U, D, V)
    xp = get_namespace(S)
    return (to_numpy(xp.matmul(xp.matrix_transpose(S), U)),)


def _a_matrix(Xb, Mb, U, V, D, lam):
    """Chunk of ``(S V + U D^2) diag(D / (D^2 + lam)) diag(D)``: the matrix of the A step
    (``lam=None``: ``S V + U D^2``, the final step's)."""
    S = _residual(Xb, Mb, U, D, V)
    xp = get_namespace(S)
    D2 = D * D
    out = xp.matmul(S, move_to(V, xp)) + U * move_to(D2, xp)
    if lam is None:
        return out
    return out * move_to(D / (D2 + lam) * D, xp)


def _a_rows(Xb, Mb, start, index, item, V, D, lam):
    U, T = item
    A = _a_matrix(Xb, Mb, U, V, D, lam)
    return ChunkQ(A).matmul(move_to(T, get_namespace(A)))


def _rotate(U, Rt):
    xp = get_namespace(U)
    return xp.matmul(U, move_to(np.ascontiguousarray(Rt.T), xp))


def _cross_part(_rows, _none, start, index, item):
    U_old, U = item
    xp = get_namespace(U)
    return (to_numpy(xp.matmul(xp.matrix_transpose(U_old), U)),)


def _persist(blocks):
    import dask

    return list(dask.persist(*blocks))


def _tall_svd(X, M, U_blocks, V, D, lam):
    """Thin SVD of the tall matrix of the A step (or the final step), by TSQR: new U
    blocks (persisted), the singular values and ``Rt``."""
    def build(Xb, Mb, start, U):
        return _a_matrix(Xb, Mb, U, V, D, lam)

    R, tree = reduce_row_chunks(TSQR(build, per_chunk=True), X, M, per_chunk=U_blocks)
    R, signs = _positive_diagonal(R)
    W, sig, Rt = np.linalg.svd(R, full_matrices=False)
    leaf = TSQR.leaf_transforms(tree, signs[:, None] * W)
    items = [(U_blocks[i], leaf[i]) for i in range(len(U_blocks))]
    parts = map_row_chunks(_a_rows, X, M, per_chunk=items, context=(V, D, lam))
    return _persist(parts), sig, Rt


def soft_impute_dask(X, shrinkage=None, max_rank=None, *, solver="auto", max_iter=100,
                     tol=1e-6, observed_mask=None, duplicates="raise", random_state=None,
                     verbose=0):
    """:func:`sketchlearn.completion.soft_impute` of a row-chunked Dask array (NaN at the
    missing entries) by softImpute-ALS, the sweeps of the in-memory ``solver="als"``:
    ``U`` comes back as a lazy Dask array chunked like ``X``'s rows, ``s`` and ``V`` as
    NumPy. ``solver="auto"`` means ALS here (``"svd"``, a full SVD of the filled
    matrix per iteration, has no distributed version)."""
    import dask
    import dask.array as da

    from .._progress import progress_range
    from ._core import _svd_small

    if solver == "svd":
        raise ValueError("solver='svd' (a full SVD of the filled matrix each iteration) has "
                         "no distributed version; use solver='als' (or 'auto') on Dask input.")
    X, M = observed_dask(X, observed_mask, duplicates=duplicates)
    m, n = X.shape
    dtype = X.dtype
    rank = _rank(max_rank, (m, n))
    _checked_stats(X, M, "X")
    # Start from the rank-r SVD of P_Omega(X), as the in-memory ALS does; its top
    # singular value is lambda_max.
    U0, s0, Vt = dask_svd((X, M), rank, build=_Filled(), random_state=random_state)
    lam = float(s0[0]) / 50.0 if shrinkage is None else float(shrinkage)
    U_blocks = _persist(list(U0.to_delayed()[:, 0]))
    D = np.sqrt(np.maximum(s0, 1e-12 * float(s0[0])))
    V = np.ascontiguousarray(Vt.T)
    r = s0.shape[0]
    rows = da.zeros(m, chunks=(X.chunks[0],), dtype=np.int8)  # row layout only, never read
    ratio = math.inf
    n_iter = 0
    for it in progress_range(max_iter, verbose, "softImpute-ALS (Dask)"):
        n_iter = it + 1
        U_start, D_old, V_old = U_blocks, D, V
        # B step.
        D2 = D * D
        (StU,) = _tree_sum(_b_step_part, X, M, per_chunk=U_blocks, context=(V, D))
        Bt = (StU + V * D2) * (D / (D2 + lam))
        Vn, d2, Rt = _svd_small(np, Bt * D)
        V, D = Vn, np.sqrt(d2)
        rotate = dask.delayed(_rotate, pure=True)
        U_blocks = _persist([rotate(U, Rt) for U in U_blocks])
        # A step.
        U_blocks, d2, Rt = _tall_svd(X, M, U_blocks, V, D, lam)
        D = np.sqrt(d2)
        V = V @ Rt.T
        # Relative change of U D^2 V^T in Frobenius norm, from thin products.
        (UtU,) = _tree_sum(_cross_part, rows, None, per_chunk=list(zip(U_start, U_blocks,
                                                                        strict=True)))
        ratio = soft_impute_change(np, UtU, V.T @ V_old, D_old, D)
        if verbose > 1:
            print(f"softImpute-ALS (Dask) sweep {n_iter}: relative change {ratio:.3e}")
        if ratio < tol:
            break
    else:
        warn_soft_impute_not_converged(max_iter, ratio, tol)
    # Final step: SVD of X* V, then soft-threshold the singular values.
    Uf_blocks, sig, Rt = _tall_svd(X, M, U_blocks, V, D, None)
    Vf = V @ Rt.T
    s = np.maximum(sig - lam, 0.0)
    U = _stack_rows(Uf_blocks, X.chunks[0], r)
    return U.astype(dtype), s.astype(dtype), np.ascontiguousarray(Vf, dtype=dtype)
