"""Sketches of tall Dask arrays: ``S X = sum_i S_i X_i`` over row chunks, one pass.

Each row chunk ``X_i`` (rows ``start`` to ``stop - 1``) contributes ``S[:, start:stop]
X_i``, an ``m x d`` matrix, and the contributions are summed up a tree. The operator
``S`` is the one :func:`make_sketch` draws for ``n`` rows, and its per-row random
numbers (signs, buckets, Gaussian columns) are keyed by the global row index
(:func:`.._random.row_keyed`), so each chunk draws its own columns of ``S`` and the
result is the in-memory sketch with the same seed, whatever the chunking:

- sampling (``"uniform"``): the sampled rows are drawn once (``size`` indices) and
  each chunk contributes its rows, zeros elsewhere: equal bit for bit;
- ``"countsketch"`` and ``"gaussian"``: equal up to the order of the sums (rounding);
- ``"srht"``: ``H_N`` restricted to an aligned block of ``2^t`` rows starting at
  ``s`` is ``H_{2^t}`` with each output row ``r`` multiplied by ``(-1)^{popcount(r &
  s)}`` (the bits of ``s`` and of the row offsets are disjoint), so each chunk, cut
  into at most ``2 log2(rows)`` aligned blocks, applies small Walsh-Hadamard
  transforms and gives its exact share of the SRHT of all ``N`` rows, for any
  chunking (equal up to rounding);
- ``"leverage"``: two passes, the ``R`` of a TSQR, then each chunk's leverage
  scores ``||Q_i u_j||^2`` and a weighted sample with replacement merged up the tree
  (two samples merge by a binomial split of the ``size`` draws by their total
  leverages), so the rows follow the in-memory distribution (not the same draws).

``"srdct"``, ``"orthogonal"`` and ``"approx_leverage"`` have no distributed form here
and raise a ``TypeError`` naming the alternatives. Sketching the features
(``axis=1``) applies one ``S`` to each row chunk and returns a lazy Dask array.
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import reduce_row_chunks, row_chunked
from .._random import as_generator
from .._summaries import TSQR, local_qr
from ._core import _gaussian_blocks, fwht, make_sketch, scatter_add_rows

__all__ = ["sketch_dask", "leverage_scores_dask"]

DASK_KINDS = ("gaussian", "srht", "countsketch", "uniform", "leverage")


def _not_distributed(kind):
    return TypeError(
        f"kind={kind!r} has no distributed version for Dask arrays; use one of "
        f"{DASK_KINDS} (SRHT for a fast orthogonal-like sketch, CountSketch for one cheap "
        "pass), or compute the array first if it fits in memory.")


# ---------------------------------------------------------------------------
# one chunk's columns of S
# ---------------------------------------------------------------------------

def _aligned_blocks(start, stop):
    """``[start, stop)`` as aligned power-of-two blocks ``(s, size)``, ``s % size == 0``."""
    out = []
    s = start
    while s < stop:
        size = s & -s if s else 1 << (stop - 1).bit_length()
        while s + size > stop:
            size //= 2
        out.append((s, size))
        s += size
    return out


def _popcount_parity(a):
    """``(-1)^{popcount(a)}`` for a non-negative int64 array."""
    a = a.copy()
    parity = np.zeros(a.shape, dtype=np.int64)
    while np.any(a):
        parity ^= a & 1
        a >>= 1
    return 1.0 - 2.0 * parity


def _chunk_product(S, Xb, start):
    """``S[:, start:start + len(Xb)] @ Xb`` (float64, ``m x d``, NumPy) for a NumPy or
    CuPy block, computed in the block's namespace."""
    xp = get_namespace(Xb)
    X = xp.astype(Xb, xp.float64)
    if X.ndim == 1:
        X = xp.reshape(X, (-1, 1))
    stop = start + X.shape[0]
    m = S.shape[0]
    kind, p = S.kind, S._p
    if kind == "gaussian":
        out = xp.zeros((m, X.shape[1]), dtype=xp.float64)
        for j0, j1, g in _gaussian_blocks(m, S.shape[1], p["seed"]):
            if j1 <= start:
                continue
            if j0 >= stop:
                break
            lo, hi = max(j0, start), min(j1, stop)
            G = g.standard_normal((m, j1 - j0))[:, lo - j0:hi - j0] / math.sqrt(m)
            out = out + move_to(np.ascontiguousarray(G), xp) @ X[lo - start:hi - start, :]
    elif kind == "countsketch":
        rows = S.row_params(start, stop)
        out = scatter_add_rows(xp, move_to(rows["buckets"], xp), move_to(rows["signs"], xp),
                               X, m)
    elif kind == "uniform":
        # the chunk's sampled rows, added into zeros: exact
        mask = (p["rows"] >= start) & (p["rows"] < stop)
        picked = xp.take(X, move_to(p["rows"][mask] - start, xp), axis=0)
        out = scatter_add_rows(xp, move_to(np.flatnonzero(mask), xp),
                               move_to(p["scales"][mask], xp), picked, m)
    elif kind == "srht":
        DX = move_to(S.row_params(start, stop)["signs"], xp)[:, None] * X
        rows, N = p["rows"], p["N"]
        out = xp.zeros((m, X.shape[1]), dtype=xp.float64)
        for s, size in _aligned_blocks(start, stop):
            Y = fwht(xp, DX[s - start:s - start + size, :])
            factor = _popcount_parity(rows & s) * math.sqrt(size / N)
            out = out + move_to(factor, xp)[:, None] * xp.take(Y, move_to(rows % size, xp),
                                                              axis=0)
        out = out * p["scale"]
    else:
        raise _not_distributed(kind)
    return np.asarray(to_numpy(out), dtype=np.float64)


class _RowSketch:
    """``S X`` as a sum over row chunks."""

    def __init__(self, S):
        self.S = S

    def partial(self, Xb, start, index):
        return _chunk_product(self.S, Xb, start)

    @staticmethod
    def merge(*parts):
        return sum(parts[1:], parts[0])


# ---------------------------------------------------------------------------
# leverage scores: the R of a TSQR, then Q_i rows
# ---------------------------------------------------------------------------

def _as_float(Xb, start):
    xp = get_namespace(Xb)
    X = xp.astype(Xb, xp.float64)
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"X contains NaN or infinity (rows {start} to "
                         f"{start + X.shape[0] - 1}).")
    return X


def _leverage_basis(X, rcond, split_every):
    """For each chunk, the matrix turning its local ``Q`` into its rows of the top-``r``
    left singular vectors of ``X`` (so the leverages are their row norms)."""
    R, tree = reduce_row_chunks(TSQR(_as_float), X, split_every=split_every)
    n, d = X.shape
    eps = float(np.finfo(np.float32 if X.dtype == np.float32 else np.float64).eps)
    tol = max(n, d) * eps if rcond is None else float(rcond)
    U, s, _ = np.linalg.svd(R, full_matrices=False)
    r = int(np.sum(s > tol * s[0])) if s.size and s[0] > 0 else 0
    leaf = TSQR.leaf_transforms(tree)
    return [leaf[i] @ U[:, :r] for i in range(len(leaf))]


def _chunk_leverages(Xb, start, index, W):
    """Leverages of one chunk's rows: squared row norms of its local ``Q`` times ``W``."""
    X = _as_float(Xb, start)
    xp = get_namespace(X)
    Q = local_qr(X)[0] @ move_to(W, xp)
    return xp.sum(Q * Q, axis=1)


def leverage_scores_dask(X, method="exact", random_state=None, rcond=None, split_every=None):
    """Exact leverage scores of a tall Dask array, as a lazy Dask array (the TSQR pass
    runs now, the scores when computed)."""
    import dask.array as da

    from .._dask import DEFAULT_SPLIT_EVERY, map_row_chunks

    if method != "exact":
        raise TypeError("leverage_scores on a Dask array computes the exact scores (one TSQR "
                        "pass, then one pass when computed): pass method='exact'.")
    X = row_chunked(X, "X")
    transforms = _leverage_basis(X, rcond, split_every or DEFAULT_SPLIT_EVERY)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    parts = map_row_chunks(_chunk_leverages, X, per_chunk=transforms)
    return da.concatenate([da.from_delayed(part, shape=(rows,), dtype=np.float64)
                           for part, rows in zip(parts, X.chunks[0], strict=True)]).astype(dtype)


class _LeverageSample:
    """A weighted sample with replacement of ``size`` rows (weights: leverages), kept
    as the sampled rows of ``X``, their leverages and the total leverage; two samples
    merge by a binomial split of the ``size`` draws by their totals."""

    def __init__(self, size, seed):
        self.size, self.seed = size, seed

    def partial(self, Xb, start, index, W):
        X = _as_float(Xb, start)
        lev = np.asarray(to_numpy(_chunk_leverages(X, start, index, W)))
        total = float(lev.sum())
        if total <= 0:
            return total, np.zeros((0, X.shape[1])), lev[:0], (index,)
        rng = np.random.default_rng([self.seed, 1, index])
        picks = rng.choice(X.shape[0], size=self.size, replace=True, p=lev / total)
        rows = to_numpy(get_namespace(X).take(X, move_to(picks, get_namespace(X)), axis=0))
        return total, np.asarray(rows), lev[picks], (index,)

    def merge(self, *parts):
        total, rows, levs, key = parts[0]
        for t2, rows2, levs2, key2 in parts[1:]:
            if t2 <= 0:
                key = key + key2
                continue
            if total <= 0:
                total, rows, levs, key = t2, rows2, levs2, key + key2
                continue
            key = key + key2
            rng = np.random.default_rng([self.seed, 2, *key])
            # draw j of the union comes from the first part with probability total / sum
            take = rng.random(self.size) < total / (total + t2)
            rows = np.where(take[:, None], rows, rows2)
            levs = np.where(take, levs, levs2)
            total = total + t2
        return total, rows, levs, key


def _leverage_sketch(X, size, rng, split_every):
    transforms = _leverage_basis(X, None, split_every)
    seed = int(rng.integers(2**62))
    total, rows, levs, _ = reduce_row_chunks(_LeverageSample(size, seed), X,
                                             per_chunk=transforms, split_every=split_every)
    if not total > 0:
        raise ValueError("data has rank 0 (all zero); leverage sampling is undefined.")
    # in-memory scaling: 1 / sqrt(size * p_i), p_i = l_i / total
    return rows / np.sqrt(size * levs / total)[:, None]


# ---------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------

def sketch_dask(X, kind, size, axis=0, random_state=None, *, replace=False, split_every=None):
    """:func:`~sketchlearn.sketching.sketch` of a Dask array (see the module docstring).

    ``axis=0`` returns ``S X`` as a NumPy array (one pass over the data; two for
    ``"leverage"``); ``axis=1`` returns ``X S^T`` as a lazy Dask array chunked like
    ``X``'s rows.
    """
    from .._dask import DEFAULT_SPLIT_EVERY

    split_every = split_every or DEFAULT_SPLIT_EVERY
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (rows) or 1 (features), got {axis!r}.")
    X = row_chunked(X, "X")
    if X.ndim == 1 and axis == 1:
        raise ValueError("X must be 2-D to sketch its features (axis=1).")
    if 0 in X.shape:
        raise ValueError(f"X is empty (shape {X.shape}); sketching needs at least one row "
                         "and one column.")
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    if axis == 1:
        if kind in ("leverage", "approx_leverage"):
            raise TypeError(f"kind={kind!r} samples features by the leverage of X^T, which "
                            "needs every row at once; compute X first, or use 'srht', "
                            "'countsketch' or 'gaussian'.")
        S = make_sketch(kind, size, X.shape[1], replace=replace, random_state=random_state)
        return X.map_blocks(lambda block: np.asarray(S.apply(block, axis=1), dtype=dtype),
                            chunks=(X.chunks[0], (size,)), dtype=dtype)
    if kind not in DASK_KINDS:
        raise _not_distributed(kind)
    n = X.shape[0]
    rng = as_generator(random_state)
    if kind == "leverage":
        if X.ndim == 1:
            X = X[:, None]
        out = _leverage_sketch(X, size, rng, split_every)
    else:
        S = make_sketch(kind, size, n, replace=replace, random_state=rng)
        out = reduce_row_chunks(_RowSketch(S), X, split_every=split_every)
    out = out.astype(dtype, copy=False)
    return out[:, 0] if X.ndim == 1 else out
