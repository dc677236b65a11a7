"""Mergeable summaries of row chunks, written without Dask.

A summary has ``partial`` (one row chunk -> summary) and ``merge`` (summaries of
consecutive chunks, in row order -> the summary of their union); a driver
(:func:`._dask.reduce_row_chunks`) runs them as a tree. What is here is exact up to
rounding for any chunking and any tree, so a distributed fit equals the in-memory one.

- :class:`TSQR`: the triangular factor ``R`` of a tall matrix from the ``R`` factors
  of its chunks, merged by QR of the stacked factors (Demmel, Grigori, Hoemmen and
  Langou's TSQR); it keeps each merge's small orthogonal factor, so that
  :meth:`TSQR.leaf_transforms` can give each chunk the ``k x k`` matrix that turns
  its local ``Q`` into its rows of the global orthonormal basis, recomputed chunk by
  chunk later without ever storing ``Q`` (nor forming it: :class:`ChunkQ` applies
  LAPACK's reflectors).
- Compensated sums: (sum, error) pairs merged with Knuth's TwoSum, so a sum over
  chunks keeps about twice the float64 precision, whatever the chunking.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._array_api import get_namespace, to_numpy

__all__ = ["TSQR", "ChunkQ", "local_qr", "two_sum", "add_pairs"]


class ChunkQ:
    """The orthogonal factor ``Q`` (``m x r``, ``r = min(m, k)``) of one chunk's
    Householder QR, applied without being formed.

    NumPy chunks keep LAPACK's reflectors (``geqrf``) and apply them with ``ormqr`` to
    one or two columns (``O(m r)`` a column, where forming ``Q`` costs ``O(m r^2)``);
    for more columns ``Q`` is formed once (``orgqr``) and applied by matrix products,
    which run several times faster than ``ormqr`` there (measured: 3x at 11 columns,
    4x at 100). CuPy chunks form ``Q`` (CuPy has no ``ormqr``). The same ``geqrf``
    gives the ``R`` of :meth:`TSQR.partial`, so a chunk refactored in a later pass has
    the same ``Q`` as in the first.
    """

    _FEW_COLUMNS = 2  # up to this many columns the reflectors are applied directly

    def __init__(self, A):
        self.shape = (A.shape[0], min(A.shape))
        self._Q = None
        if isinstance(A, np.ndarray):
            A = np.asfortranarray(A if A.dtype in (np.float32, np.float64) else
                                  A.astype(np.float64))
            qr, self._tau, _, info = _lapack("geqrf", A.dtype)(A)
            _check_lapack("geqrf", info)
            self.R = np.triu(qr[:self.shape[1]])
            self._qr = qr[:, :self.shape[1]]  # the reflectors (a wide chunk has m of them)
        else:
            self._Q, self.R = get_namespace(A).linalg.qr(A, mode="reduced")

    def _ormqr(self, trans, C):
        C = np.asfortranarray(C, dtype=self._qr.dtype)
        out, _, info = _lapack("ormqr", self._qr.dtype)("L", trans, self._qr, self._tau, C,
                                                         max(1, C.shape[1] * 64),
                                                         overwrite_c=True)
        _check_lapack("ormqr", info)
        return out

    def explicit(self):
        """``Q`` itself (formed once, by ``orgqr``, for NumPy chunks)."""
        if self._Q is None:
            self._Q, _, info = _lapack("orgqr", self._qr.dtype)(self._qr, self._tau)
            _check_lapack("orgqr", info)
        return self._Q

    def rmatmul(self, F):
        """``Q^T F`` for ``F`` of shape ``(m, c)``: ``(r, c)``."""
        if self._Q is not None or F.shape[1] > self._FEW_COLUMNS:
            return self.explicit().T @ F
        return self._ormqr("T", F)[:self.shape[1]]

    def matmul(self, V):
        """``Q V`` for ``V`` of shape ``(r, c)``: ``(m, c)``."""
        if self._Q is not None or V.shape[1] > self._FEW_COLUMNS:
            return self.explicit() @ V
        padded = np.zeros((self.shape[0], V.shape[1]), dtype=self._qr.dtype, order="F")
        padded[:self.shape[1]] = V
        return self._ormqr("N", padded)


def _lapack(name, dtype):
    """LAPACK's ``name`` for ``dtype``, looked up when used: a :class:`ChunkQ` holds only
    arrays, so it pickles (Dask moves kept chunks between workers)."""
    return scipy.linalg.get_lapack_funcs((name,), dtype=dtype)[0]


def _check_lapack(name, info):
    if info != 0:
        raise RuntimeError(f"LAPACK {name} failed (info={info}).")


def local_qr(A):
    """Explicit ``(Q, R)`` of one chunk, from the same ``geqrf`` as :class:`ChunkQ`."""
    factor = ChunkQ(A)
    return factor.explicit(), factor.R


class TSQR:
    """``R`` of a tall matrix, the rows of which arrive in chunks.

    Parameters
    ----------
    build : callable
        ``build(*blocks, start) -> A_i``: the rows of the matrix to factor (float64,
        NumPy or CuPy) held by one row chunk, from its blocks and its first global row,
        or their :class:`ChunkQ` when the caller keeps it.
        The summaries themselves (``k x k`` factors) are NumPy.

    Notes
    -----
    The reduction's result is ``(R, tree)``: ``tree`` is ``("leaf", index, rows)`` for
    one chunk (``rows`` of its ``R``) or ``("node", Q, children, rows)`` for a merge,
    where ``Q`` is the orthogonal factor of the stacked ``R`` of the children. The
    ``Q`` factors of a whole tree hold about ``(number of chunks) x k x k`` numbers:
    the size of the chunks' ``R`` factors together, never ``n``, but growing with it.
    So a merge passes only its ``R`` up (its summary is ``(R, (Q, rows))``); the
    driver collects each merge's ``(Q, rows)`` from where it was computed
    (:meth:`node_part`) and puts the tree together (:meth:`assemble`). Passed up, the
    whole tree went through the worker of the last merge: 170 MB at 2048 chunks of
    101 columns.
    """

    def __init__(self, build, per_chunk=False):
        self.build = build
        self.per_chunk = per_chunk  # build also takes the chunk's per_chunk item

    def partial(self, *args):
        if self.per_chunk:
            *blocks, start, index, item = args
            A = self.build(*blocks, start, item)
        else:
            *blocks, start, index = args
            A = self.build(*blocks, start)
        factor = A if isinstance(A, ChunkQ) else ChunkQ(A)  # build may factor it itself
        R = np.asarray(to_numpy(factor.R), dtype=np.float64)
        return R, ("leaf", index, R.shape[0])

    @staticmethod
    def merge(*summaries):
        stacked = np.concatenate([R for R, _ in summaries], axis=0)
        Q, R = np.linalg.qr(stacked, mode="reduced")
        return R, (Q, [R_child.shape[0] for R_child, _ in summaries])

    @staticmethod
    def node_part(merged):
        """What the driver keeps of a merge: its ``(Q, rows)``."""
        return merged[1]

    @staticmethod
    def assemble(root, tree):
        """``(R, tree)`` from the root's summary and the tree of the merges' parts (see
        :func:`.._dask.reduce_row_chunks`)."""
        def build(shape, rows):
            if isinstance(shape, int):
                return ("leaf", shape, rows)
            (Q, child_rows), children = shape
            return ("node", Q, [build(c, r) for c, r in zip(children, child_rows,
                                                                 strict=True)], child_rows)

        return root[0], build(tree, root[0].shape[0])

    @staticmethod
    def leaf_transforms(tree, top=None) -> dict:
        """``{chunk index: T_i}`` with ``Q_i T_i`` chunk ``i``'s rows of the orthonormal
        factor of the whole matrix times ``top`` (``Q_i`` its local Q factor from
        :func:`local_qr`; ``top`` defaults to the identity)."""
        out = {}
        stack = [(tree, top)]
        while stack:
            node, T = stack.pop()
            if node[0] == "leaf":
                _, index, rows = node
                out[index] = np.eye(rows) if T is None else T
                continue
            _, Q, children, rows = node
            offset = 0
            for child, r in zip(children, rows, strict=True):
                block = Q[offset:offset + r, :]
                stack.append((child, block if T is None else block @ T))
                offset += r
        return out


def two_sum(a, b):
    """``a + b = s + e`` exactly (Knuth), elementwise."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def add_pairs(*pairs):
    """Sum of (sum, error) pairs: the running sums merged with TwoSum, their errors
    added, as the compensated dot products of Ogita, Rump and Oishi do."""
    s, c = pairs[0]
    for s2, c2 in pairs[1:]:
        s, d = two_sum(s, s2)
        c = c + c2 + d
    return s, c
