"""Observed entries of a partly observed matrix: parsing the three input forms and
the CSR / CSC index structures every solver works on.

Input forms (see the user guide):

* a dense array with NaN at the missing entries (or with an explicit boolean
  ``observed_mask``);
* a ``scipy.sparse`` (or ``cupyx.scipy.sparse``) matrix whose *stored* entries are
  the observed ones, explicit zeros included (or with an explicit ``observed_mask``);
* a tuple ``(rows, cols, values)`` or ``(rows, cols, values, shape)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import array_api_compat
import numpy as np

from .._array_api import get_namespace, is_cupy_namespace, is_numpy_namespace, move_to, to_numpy
from .._validation import user_stacklevel

__all__ = ["Observed", "as_observed", "make_observed", "is_sparse", "is_triplets"]


@dataclass
class Observed:
    """The observed entries of an ``m x n`` matrix, in CSR order and in CSC order.

    ``rows``, ``cols`` and ``vals`` are sorted by (row, col); ``indptr`` delimits
    the rows. ``indptr_c``, ``rows_c``, ``vals_c`` describe the same entries sorted
    by (col, row) (the CSR description of the transpose), and ``perm_c`` maps a CSC
    position to its CSR position: ``vals_c = take(vals, perm_c)``.
    """

    xp: object
    shape: tuple
    rows: object
    cols: object
    vals: object
    indptr: object
    rows_c: object
    cols_c: object
    vals_c: object
    indptr_c: object
    perm_c: object

    @property
    def nnz(self) -> int:
        return int(self.vals.shape[0])

    @property
    def dtype(self):
        return self.vals.dtype

    def to_csc_order(self, v):
        """A vector in CSR order, reordered to CSC order."""
        return self.xp.take(v, self.perm_c, axis=0)

    def row_counts(self):
        return to_numpy(self.indptr[1:] - self.indptr[:-1])

    def col_counts(self):
        return to_numpy(self.indptr_c[1:] - self.indptr_c[:-1])


def is_sparse(X) -> bool:
    """True for scipy.sparse and cupyx.scipy.sparse matrices and arrays."""
    mod = type(X).__module__
    return (mod.startswith("scipy.sparse") or mod.startswith("cupyx.scipy.sparse")) and hasattr(
        X, "tocoo")


def is_triplets(X) -> bool:
    """True for a tuple ``(rows, cols, values)`` or ``(rows, cols, values, shape)``."""
    return isinstance(X, tuple) and len(X) in (3, 4)


def _float_dtype(xp, dtype):
    return dtype if dtype in (xp.float32, xp.float64) else xp.float64


def make_observed(rows, cols, vals, shape, *, duplicates="raise", name="X",
                  allow_empty=False) -> Observed:
    """Sort and index observed entries given as triplets; check ranges and values.

    Parameters
    ----------
    rows, cols : integer arrays of shape (nnz,)
    vals : float array of shape (nnz,)
    shape : (int, int)
    duplicates : {"raise", "mean"}
        What to do with repeated ``(row, col)`` pairs: raise a ``ValueError``, or
        keep the mean of their values.
    """
    xp = get_namespace(rows, cols, vals)
    m, n = int(shape[0]), int(shape[1])
    if m < 1 or n < 1:
        raise ValueError(f"{name} has shape {(m, n)}; both dimensions must be at least 1.")
    nnz = int(vals.shape[0])
    if rows.ndim != 1 or cols.ndim != 1 or vals.ndim != 1 or not (
            rows.shape[0] == cols.shape[0] == nnz):
        raise ValueError(
            f"rows, cols and values of {name} must be 1-D arrays of one length; got shapes "
            f"{tuple(rows.shape)}, {tuple(cols.shape)}, {tuple(vals.shape)}.")
    if nnz == 0 and not allow_empty:
        raise ValueError(f"{name} has no observed entries; at least one is needed.")
    if nnz == 0:
        idt = xp.int32
        e_i, e_v = xp.zeros(0, dtype=idt), xp.astype(vals, _float_dtype(xp, vals.dtype))
        return Observed(xp=xp, shape=(m, n), rows=e_i, cols=e_i, vals=e_v,
                        indptr=xp.zeros(m + 1, dtype=idt), rows_c=e_i, cols_c=e_i,
                        vals_c=e_v, indptr_c=xp.zeros(n + 1, dtype=idt), perm_c=e_i)
    if not xp.isdtype(rows.dtype, "integral") or not xp.isdtype(cols.dtype, "integral"):
        raise TypeError(f"row and column indices of {name} must be integers; got "
                        f"{rows.dtype} and {cols.dtype}.")
    if not xp.isdtype(vals.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"values of {name} must be real numbers; got dtype {vals.dtype}.")
    vals = xp.astype(vals, _float_dtype(xp, vals.dtype), copy=False)
    finite = xp.isfinite(vals)
    if not bool(xp.all(finite)):
        bad = int(to_numpy(xp.argmax(xp.astype(~finite, xp.int8))))
        what = "NaN" if bool(xp.isnan(vals[bad])) else "infinity"
        raise ValueError(
            f"values of {name} contain {what} (first at position {bad}); every given "
            "(row, col, value) triplet is an observed entry, so its value must be finite. "
            "Drop the missing ones instead of passing NaN.")
    for idx, size, what in ((rows, m, "row"), (cols, n, "column")):
        lo, hi = int(to_numpy(xp.min(idx))), int(to_numpy(xp.max(idx)))
        if lo < 0 or hi >= size:
            raise ValueError(f"{what} indices of {name} must lie in [0, {size - 1}] for shape "
                             f"{(m, n)}; got values from {lo} to {hi}.")
    idt = xp.int32 if max(m, n, nnz + 1) < 2**31 - 1 else xp.int64
    rows = xp.astype(rows, xp.int64)
    cols = xp.astype(cols, xp.int64)
    key = rows * n + cols
    order = xp.argsort(key, stable=True)
    key = xp.take(key, order)
    if nnz > 1 and bool(xp.any(key[1:] == key[:-1])):
        same = to_numpy(key[1:] == key[:-1])
        first = int(to_numpy(key)[int(np.argmax(same))])
        n_dup = int(same.sum())
        if duplicates == "raise":
            raise ValueError(
                f"{name} has {n_dup} repeated (row, col) pair(s), the first at "
                f"({first // n}, {first % n}). Pass duplicates='mean' to average the values "
                "of repeated entries, or remove them.")
        # duplicates == "mean": average on the host (rare path), then move back.
        k_np = to_numpy(key)
        v_np = to_numpy(xp.take(vals, order))
        uniq, inv = np.unique(k_np, return_inverse=True)
        sums = np.bincount(inv, weights=v_np.astype(np.float64))
        counts = np.bincount(inv)
        key = move_to(uniq, xp)
        vals = xp.astype(move_to(sums / counts, xp), vals.dtype)
        nnz = int(uniq.shape[0])
    else:
        vals = xp.take(vals, order)
    rows = xp.astype(key // n, idt)
    cols = xp.astype(key % n, idt)
    marks = xp.arange(m + 1, dtype=rows.dtype)
    indptr = xp.astype(xp.searchsorted(rows, marks), idt)
    key_c = xp.astype(cols, xp.int64) * m + xp.astype(rows, xp.int64)
    perm_c = xp.astype(xp.argsort(key_c, stable=True), idt)
    rows_c = xp.take(rows, perm_c)
    cols_c = xp.take(cols, perm_c)
    indptr_c = xp.astype(xp.searchsorted(cols_c, xp.arange(n + 1, dtype=cols_c.dtype)), idt)
    return Observed(xp=xp, shape=(m, n), rows=rows, cols=cols, vals=vals, indptr=indptr,
                    rows_c=rows_c, cols_c=cols_c, vals_c=xp.take(vals, perm_c),
                    indptr_c=indptr_c, perm_c=perm_c)


def _dense_observed(X, observed_mask, name):
    xp = get_namespace(X)
    if observed_mask is None:
        mask = ~xp.isnan(X)
    else:
        mask = _as_mask(observed_mask, X.shape, xp, name)
        if bool(xp.any(xp.isnan(X) & mask)):
            raise ValueError(f"{name} has NaN at entries that observed_mask marks as observed.")
    if bool(xp.any(xp.isinf(X) & mask)):
        raise ValueError(f"{name} contains infinity; missing entries are NaN, observed "
                         "entries must be finite.")
    rows, cols = xp.nonzero(mask)
    vals = X[mask]
    return rows, cols, vals


def _as_mask(mask, shape, xp, name):
    if is_sparse(mask):
        mask = mask.toarray()
    if not array_api_compat.is_array_api_obj(mask):
        mask = np.asarray(mask)
    mask = move_to(mask, xp)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"observed_mask has shape {tuple(mask.shape)} but {name} has shape "
                         f"{tuple(shape)}; they must agree.")
    if mask.dtype != xp.bool:
        mask = mask != 0
    return mask


def _sparse_observed(X, observed_mask, name):
    coo = X.tocoo()
    if type(X).__module__.startswith("cupyx"):
        import cupy as xp_mod
    else:
        xp_mod = np
    if observed_mask is None:
        return coo.row, coo.col, coo.data
    mask = observed_mask
    if is_sparse(mask):
        mcoo = mask.tocoo()
        keep = mcoo.data != 0
        r, c = mcoo.row[keep], mcoo.col[keep]
    else:
        mask = _as_mask(mask, X.shape, get_namespace(coo.data), name)
        r, c = xp_mod.nonzero(mask)
    csr = X.tocsr()
    vals = xp_mod.asarray(csr[r, c]).ravel()
    return r, c, vals


def as_observed(X, observed_mask=None, *, duplicates="raise", name="X",
                allow_empty=False) -> Observed:
    """Parse any accepted input form into :class:`Observed` (see the module docstring)."""
    if is_triplets(X):
        if observed_mask is not None:
            raise ValueError("observed_mask cannot be combined with (rows, cols, values) "
                             "triplets: every triplet is an observed entry.")
        rows, cols, vals = X[:3]
        arrays = [a if array_api_compat.is_array_api_obj(a) else np.asarray(a)
                  for a in (rows, cols, vals)]
        xp = get_namespace(*arrays)
        arrays = [move_to(a, xp) for a in arrays]
        rows, cols, vals = arrays
        if len(X) == 4:
            shape = tuple(int(s) for s in X[3])
            if len(shape) != 2:
                raise ValueError(f"shape must be (n_rows, n_cols); got {X[3]!r}.")
        else:
            if vals.shape[0] == 0:  # the shape cannot be inferred
                raise ValueError(f"{name} has no observed entries; at least one is needed.")
            shape = (int(to_numpy(xp.max(rows))) + 1, int(to_numpy(xp.max(cols))) + 1)
        return make_observed(rows, cols, vals, shape, duplicates=duplicates, name=name,
                             allow_empty=allow_empty)
    if is_sparse(X):
        rows, cols, vals = _sparse_observed(X, observed_mask, name)
        return make_observed(rows, cols, vals, X.shape, duplicates=duplicates, name=name,
                             allow_empty=allow_empty)
    if not array_api_compat.is_array_api_obj(X):
        X = np.asarray(X)
    xp = get_namespace(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (NaN at the missing entries); got "
                         f"{X.ndim}-D with shape {tuple(X.shape)}.")
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}.")
    X = xp.astype(X, _float_dtype(xp, X.dtype), copy=False)
    rows, cols, vals = _dense_observed(X, observed_mask, name)
    return make_observed(rows, cols, vals, X.shape, duplicates="raise", name=name,
                         allow_empty=allow_empty)


def check_observed(obs: Observed, rank: int, *, name="X", warn=True, warn_dof=True) -> tuple:
    """Warn about all-missing rows/columns and (``warn_dof``) too few entries for ``rank``.

    Returns the boolean masks of the empty rows and the empty columns (NumPy).
    """
    m, n = obs.shape
    empty_r = obs.row_counts() == 0
    empty_c = obs.col_counts() == 0
    if warn and (empty_r.any() or empty_c.any()):
        parts = []
        if empty_r.any():
            parts.append(f"{int(empty_r.sum())} row(s) (first: {int(np.argmax(empty_r))})")
        if empty_c.any():
            parts.append(f"{int(empty_c.sum())} column(s) (first: {int(np.argmax(empty_c))})")
        warnings.warn(
            f"{name} has {' and '.join(parts)} with no observed entry. They cannot be "
            "recovered from the low-rank model; an all-missing row is predicted as the "
            "average row of the fitted matrix (its column means) and an all-missing column "
            "as the average column (its row means).", UserWarning, stacklevel=user_stacklevel())
    few_r = int(((obs.row_counts() > 0) & (obs.row_counts() < rank)).sum())
    few_c = int(((obs.col_counts() > 0) & (obs.col_counts() < rank)).sum())
    if warn and warn_dof and rank > 1 and (few_r or few_c):
        warnings.warn(
            f"{name} has {few_r} row(s) and {few_c} column(s) with fewer than rank={rank} "
            "observed entries (but at least one): their completion is not determined by the "
            "data and, without regularisation, can be far off. Lower the rank or add a ridge "
            "(alpha > 0 for AltMinCompleter).", UserWarning, stacklevel=user_stacklevel())
    dof = rank * (m + n - rank)
    if warn and warn_dof and obs.nnz < dof:
        warnings.warn(
            f"{name} has {obs.nnz} observed entries, fewer than the {dof} degrees of freedom "
            f"of a rank-{rank} {m} x {n} matrix; the completion is not determined by the data. "
            "Lower the rank or add regularisation.", UserWarning, stacklevel=user_stacklevel())
    return empty_r, empty_c


def dense_from_observed(obs: Observed, fill):
    """Dense ``(m, n)`` array equal to ``fill`` off the observed entries and to the
    observed values on them (``fill`` is an array of that shape)."""
    xp = obs.xp
    if is_numpy_namespace(xp) or is_cupy_namespace(xp):
        out = xp.asarray(fill, copy=True)
        out[obs.rows, obs.cols] = obs.vals
        return out
    out = to_numpy(fill).copy()
    out[to_numpy(obs.rows), to_numpy(obs.cols)] = to_numpy(obs.vals)
    return move_to(out, xp)


def observed_mask_dense(obs: Observed):
    """Boolean ``(m, n)`` array of the observed positions."""
    xp = obs.xp
    m, n = obs.shape
    if is_numpy_namespace(xp) or is_cupy_namespace(xp):
        mask = xp.zeros((m, n), dtype=xp.bool)
        mask[obs.rows, obs.cols] = True
        return mask
    mask = np.zeros((m, n), dtype=bool)
    mask[to_numpy(obs.rows), to_numpy(obs.cols)] = True
    return move_to(mask, xp)
