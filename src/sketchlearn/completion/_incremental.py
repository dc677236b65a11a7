"""A rank-k truncated SVD kept up to date as rows or columns arrive or as the matrix
receives low-rank or sparse corrections (Brand's updates), and its mergeable form
(:class:`FrequentDirections`: the summary of row blocks that Dask fits merge in a
tree)."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._array_api import blas_single_thread, get_namespace, move_to, to_numpy
from .._dask import is_dask_array
from .._validation import check_array, validate_estimator_data
from ._observed import is_sparse

__all__ = ["IncrementalTruncatedSVD", "FrequentDirections", "brand_update", "rank_update"]


def _flip_signs(xp, Vt):
    """Make the largest-magnitude entry of each right singular vector positive
    (deterministic signs, as scikit-learn's ``svd_flip``)."""
    idx = xp.argmax(xp.abs(Vt), axis=1)
    picked = xp.take_along_axis(Vt, xp.reshape(idx, (-1, 1)), axis=1)
    signs = xp.where(picked < 0, -1.0, 1.0)
    return xp.astype(signs, Vt.dtype)


def _dense(B, xp, dtype):
    if is_sparse(B):
        B = B.toarray()
    return xp.astype(xp.asarray(B), dtype, copy=False)


def _complement(xp, basis_t, W):
    """Orthonormal basis ``Q`` and ``L`` with ``W - basis_t basis_t^T W = Q L``.

    ``basis_t`` has orthonormal columns. The projection is applied twice (classical
    Gram-Schmidt with one re-orthogonalisation), which keeps ``Q`` orthogonal to the
    current basis in floating point.
    """
    W = W - xp.matmul(basis_t, xp.matmul(xp.matrix_transpose(basis_t), W))
    W = W - xp.matmul(basis_t, xp.matmul(xp.matrix_transpose(basis_t), W))
    return xp.linalg.qr(W)


def _diag_then_zeros(xp, s, c, dtype):
    """The ``r x (r + c)`` block ``[diag(s), 0]``: the top rows of Brand's middle matrix."""
    r = s.shape[0]
    return xp.concat([xp.eye(r, dtype=dtype) * xp.astype(s, dtype)[None, :],
                      xp.zeros((r, c), dtype=dtype)], axis=1)


def brand_update(s, Vt, B, k):
    """Truncated SVD of ``[A; B]`` from that of ``A`` (``s``, ``Vt``) and new rows ``B``.

    With ``A ~ U diag(s) Vt`` and ``C = B Vt^T``, the part of ``B`` outside the row
    space is ``R = B - C Vt``; with ``R^T = Q L`` (thin QR),
    ``[A; B] ~ blockdiag(U, I) K [Vt; Q^T]`` where ``K = [[diag(s), 0], [C, L^T]]`` is
    ``(r + b) x (r + b)``. The SVD ``K = G diag(s_new) W^T`` (Rayleigh-Ritz on the
    augmented basis ``[Vt^T, Q]``) gives the new factors (Brand, 2006); the new left
    vectors are ``[U G[:r]; G[r:]]``, so ``U`` itself is not needed here. Sparse ``B``
    is used through products; only ``R^T`` (``n x b``) is dense. Exact when ``A`` has
    rank ``<= k`` and ``[A; B]`` has rank ``<= k``.

    Parameters
    ----------
    s : array of shape (r,)
    Vt : array of shape (r, n)
    B : array or sparse matrix of shape (b, n)
    k : int
        Rank kept.

    Returns
    -------
    G : array of shape (r + b, q)
        Rotation of the left vectors, ``q = min(k, r + b)``.
    s_new : array of shape (q,)
    Vt_new : array of shape (q, n)

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion._incremental import brand_update
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 8))
    >>> _, s, Vt = np.linalg.svd(A[:20], full_matrices=False)
    >>> G, s2, Vt2 = brand_update(s[:2], Vt[:2], A[20:], 2)
    >>> np.allclose(s2, np.linalg.svd(A, compute_uv=False)[:2])
    True
    """
    xp = get_namespace(s, Vt)
    dtype = Vt.dtype
    C = xp.asarray(B @ xp.matrix_transpose(Vt), dtype=dtype)  # b x r (sparse @ dense)
    Q, L = _complement(xp, xp.matrix_transpose(Vt),
                       xp.matrix_transpose(_dense(B, xp, dtype)))
    K = xp.concat([_diag_then_zeros(xp, s, Q.shape[1], dtype),
                   xp.concat([C, xp.matrix_transpose(L)], axis=1)], axis=0)
    G, sk, Wt = xp.linalg.svd(K, full_matrices=False)
    keep = min(k, sk.shape[0])
    basis = xp.concat([Vt, xp.matrix_transpose(Q)], axis=0)  # (r + b) x n
    return G[:, :keep], sk[:keep], xp.matmul(Wt[:keep, :], basis)


def rank_update(U, s, Vt, P, Q, k):
    """Truncated SVD of ``U diag(s) Vt + P Q^T`` from the factors (Brand, 2006).

    Each side gets the part of the update outside the current subspace,
    ``P - U U^T P = Qp Lp`` and ``Q - V V^T Q = Qq Lq`` (thin QR), and then

    ``U diag(s) Vt + P Q^T = [U, Qp] K [V, Qq]^T`` with
    ``K = [[diag(s), 0], [0, 0]] + [U^T P; Lp] [V^T Q; Lq]^T``,

    a ``(r + c) x (r + c)`` matrix whose SVD rotates the augmented bases. The cost
    is ``O((m + n) (r + c)^2)``; nothing of size ``m x n`` is formed. Exact when
    the updated matrix has rank ``<= k``.

    Parameters
    ----------
    U : array of shape (m, r)
        Orthonormal columns.
    s : array of shape (r,)
    Vt : array of shape (r, n)
        Orthonormal rows.
    P : array of shape (m, c)
    Q : array or sparse matrix of shape (n, c)
    k : int
        Rank kept.

    Returns
    -------
    U_new : array of shape (m, q)
    s_new : array of shape (q,)
    Vt_new : array of shape (q, n)
        With ``q = min(k, r + c)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion._incremental import rank_update
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(20, 2)) @ rng.normal(size=(2, 9))
    >>> P, Q = rng.normal(size=(20, 1)), rng.normal(size=(9, 1))
    >>> U, s, Vt = np.linalg.svd(A, full_matrices=False)
    >>> U2, s2, Vt2 = rank_update(U[:, :2], s[:2], Vt[:2], P, Q, 3)
    >>> np.allclose(U2 * s2 @ Vt2, A + P @ Q.T)
    True
    """
    xp = get_namespace(U, s, Vt)
    dtype = Vt.dtype
    P = _dense(P, xp, dtype)
    Q = _dense(Q, xp, dtype)
    V = xp.matrix_transpose(Vt)
    r, c = s.shape[0], P.shape[1]
    Up = xp.matmul(xp.matrix_transpose(U), P)  # r x c
    Vq = xp.matmul(Vt, Q)  # r x c
    Qp, Lp = _complement(xp, U, P)
    Qq, Lq = _complement(xp, V, Q)
    K = xp.concat([_diag_then_zeros(xp, s, c, dtype), xp.zeros((c, r + c), dtype=dtype)],
                  axis=0)
    K = K + xp.matmul(xp.concat([Up, Lp], axis=0),
                      xp.matrix_transpose(xp.concat([Vq, Lq], axis=0)))
    G, sk, Wt = xp.linalg.svd(K, full_matrices=False)
    keep = min(k, sk.shape[0])
    U_new = xp.matmul(xp.concat([U, Qp], axis=1), G[:, :keep])
    Vt_new = xp.matmul(Wt[:keep, :], xp.concat([Vt, xp.matrix_transpose(Qq)], axis=0))
    return U_new, sk[:keep], Vt_new


class FrequentDirections:
    """Mergeable rank-``k`` summary of the rows of a matrix: singular values and right
    singular vectors, merged by the SVD of the stacked ``diag(s) Vt`` and shrunk as
    Frequent Directions does.

    A summary is the tuple ``(s, Vt, n_rows, shrinkage)``: for the rows ``A`` it
    summarises, ``B = diag(s) Vt`` (at most ``k`` rows, NumPy float64) with
    ``0 <= A^T A - B^T B`` and ``||A^T A - B^T B||_2 <= shrinkage``. :meth:`partial`
    summarises one block of rows (its thin SVD), :meth:`merge` the summaries of
    several blocks (the SVD of their stacked ``B``, which has the same Gram matrix as
    the stacked blocks' ``B``). While the rows have rank at most ``k`` nothing is
    dropped: ``B^T B = A^T A`` up to rounding, so ``s`` and ``Vt`` are the singular
    values and right singular vectors of ``A``, whatever the blocks and the merge tree.

    Beyond rank ``k``, each partial or merge whose SVD has a ``(k+1)``-th singular value
    ``s_{k+1} > 0`` shrinks by ``delta = s_{k+1}^2``: ``s_i <- sqrt(s_i^2 - delta)`` for
    ``i <= k``, the rest dropped (Frequent Directions with a sketch of ``l = k + 1``
    rows, the last of which the shrink zeroes; Liberty 2013, in the variant of
    Ghashami, Liberty, Phillips and Woodruff 2016 that shrinks by the ``l``-th squared
    singular value, and whose merge is this one). ``shrinkage`` adds up the deltas; each
    shrink changes the Gram matrix by at most ``delta`` in spectral norm and removes at
    least ``(k + 1) delta`` of squared Frobenius norm, whence, for every ``j <= k``,

    ``||A^T A - B^T B||_2 <= shrinkage <= ||A - A_j||_F^2 / (k + 1 - j)``,

    ``A_j`` the best rank-``j`` approximation of ``A``. ``shrinkage`` is thus a certified
    (computed) bound, never larger than the a-priori one.

    Parameters
    ----------
    k : int
        Rows kept.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import FrequentDirections
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(90, 3)) @ rng.normal(size=(3, 12))
    >>> fd = FrequentDirections(3)
    >>> parts = [fd.partial(block, 30 * i, i) for i, block in enumerate(np.split(A, 3))]
    >>> s, Vt, n_rows, shrinkage = fd.merge(*parts)
    >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:3])), n_rows
    (True, 90)
    """

    def __init__(self, k: int):
        self.k = int(k)

    def partial(self, X, start=0, index=0):
        """Summary of the rows ``X`` (NumPy or CuPy, 2-D); ``start`` and ``index`` (the
        block's first row and its number, as ``sketchlearn._dask.reduce_row_chunks``
        passes them) are not used."""
        xp = get_namespace(X)
        X = xp.astype(X, xp.float64)
        if X.shape[0] == 0:
            return np.zeros(0), np.zeros((0, X.shape[1])), 0, 0.0
        _, s, Vt = xp.linalg.svd(X, full_matrices=False)
        return self._shrink(to_numpy(s), to_numpy(Vt), int(X.shape[0]), 0.0)

    def merge(self, *summaries):
        """Summary of the union of the rows summarised by ``summaries``."""
        B = np.concatenate([s[:, None] * Vt for s, Vt, _, _ in summaries], axis=0)
        n_rows = sum(n for _, _, n, _ in summaries)
        shrinkage = float(sum(d for _, _, _, d in summaries))
        if B.shape[0] == 0:
            return summaries[0][0], summaries[0][1], n_rows, shrinkage
        _, s, Vt = np.linalg.svd(B, full_matrices=False)
        return self._shrink(s, Vt, n_rows, shrinkage)

    def _shrink(self, s, Vt, n_rows, shrinkage):
        k = self.k
        if s.shape[0] > k and s[k] > 0:
            delta = float(s[k]) ** 2
            s = np.sqrt(np.maximum(s[:k] ** 2 - delta, 0.0))
            shrinkage += delta
        return s[:k], Vt[:k], n_rows, shrinkage


def _check_matrix(X, name, dtype):
    """A finite 2-D array (1-D is read as one column) or sparse matrix of ``dtype``."""
    if is_sparse(X):
        if X.ndim != 2 or not bool(np.all(np.isfinite(np.asarray(X.data.get() if hasattr(
                X.data, "get") else X.data)))):
            raise ValueError(f"{name} must be a 2-D sparse matrix of finite values.")
        return X.astype(dtype)
    X = check_array(X, name, ensure_2d=np.ndim(X) != 1)
    xp = get_namespace(X)
    X = xp.reshape(X, (-1, 1)) if X.ndim == 1 else X
    return xp.astype(X, dtype, copy=False)


def _sparse_factors(E, dtype):
    """``E = P Q^T`` with the fewer of E's touched rows or columns as the inner size.

    With touched rows ``R``, ``P`` is the ``m x |R|`` selection of identity columns
    and ``Q^T`` the rows ``E[R]`` (kept sparse); touched columns likewise.
    """
    xp = get_namespace(E.data)
    E = E.tocsr()
    E.eliminate_zeros()
    rows = xp.nonzero(xp.diff(E.indptr))[0]
    cols = xp.unique_values(E.indices) if hasattr(xp, "unique_values") else xp.unique(E.indices)
    if rows.shape[0] <= cols.shape[0]:
        P = xp.zeros((E.shape[0], rows.shape[0]), dtype=dtype)
        P[rows, xp.arange(rows.shape[0])] = 1.0
        return P, E[rows].T.tocsr().astype(dtype)
    Q = xp.zeros((E.shape[1], cols.shape[0]), dtype=dtype)
    Q[cols, xp.arange(cols.shape[0])] = 1.0
    return E.tocsc()[:, cols].astype(dtype), Q


class IncrementalTruncatedSVD(TransformerMixin, BaseEstimator):
    """Rank-``n_components`` truncated SVD kept up to date as the matrix changes.

    Keeps the top singular values and singular vectors of a matrix that grows by
    rows (``partial_fit``) or columns (:meth:`add_columns`), or receives a
    low-rank or sparse correction (:meth:`update`), with Brand's (2006) updates:
    the new data are projected on the current singular vectors, the remainder is
    orthonormalised (thin QR), and a small ``(k + b) x (k + b)`` SVD (Rayleigh-Ritz
    on the augmented bases) gives the new factors. No pass over the old data and
    no decomposition of the whole matrix; sparse input is used through products.
    The result is exact while the matrix has rank at most ``n_components``;
    otherwise each update truncates to ``n_components`` and the factors
    approximate the truncated SVD of the current matrix. Like scikit-learn's
    ``TruncatedSVD``, the data are not centred.

    A Dask array (row chunks) is summarised chunk by chunk in parallel and the
    summaries are merged in a tree (:class:`FrequentDirections`): exact while the
    matrix has rank at most ``n_components`` (the same singular values and vectors
    as the in-memory fit, whatever the chunking), and beyond it a Frequent
    Directions sketch with the certified error bound
    ``covariance_error_bound_``. The left singular vectors (one row per sample) are
    not kept then; :meth:`transform` on a Dask array is lazy.

    Parameters
    ----------
    n_components : int, default=2
        Rank kept.
    batch_size : int, optional
        Rows per update; default ``max(100, 5 * n_components)``. ``fit`` and
        ``partial_fit`` split larger batches.

    Attributes
    ----------
    components_ : array of shape (k, n_features)
        Right singular vectors, rows orthonormal (``k <= n_components``: fewer while
        the matrix has fewer rows).
    singular_values_ : array of shape (k,)
        Decreasing.
    U_ : array of shape (n_samples_seen, k)
        Left singular vectors, columns orthonormal: the current matrix is
        approximately ``U_ @ diag(singular_values_) @ components_``. Memory
        ``O((n_samples + n_features) k)``. Absent after a fit on a Dask array
        (``transform(X) / singular_values_`` gives them, lazily).
    covariance_error_bound_ : float
        Only after a fit on a Dask array (or a ``partial_fit`` following one): a
        certified bound on ``||X^T X - C^T C||_2`` with ``C = diag(singular_values_)
        @ components_``, at most ``||X - X_j||_F^2 / (n_components + 1 - j)`` for
        every ``j <= n_components`` (``X_j`` the best rank-``j`` approximation); zero
        up to rounding while ``X`` has rank at most ``n_components``. NaN after a
        Dask ``partial_fit`` of an estimator first fitted in memory (the in-memory
        updates do not record what they truncate).
    n_samples_seen_ : int
        Rows of the current matrix.
    n_features_in_ : int
        Columns of the current matrix (grows with :meth:`add_columns`).

    Notes
    -----
    The updates, with ``A ~ U diag(s) V^T`` of rank ``r``:

    * rows ``B``: ``[A; B] = blockdiag(U, I) [[diag(s), 0], [B V, L^T]] [V, Q]^T``,
      ``Q L`` the QR of ``(I - V V^T) B^T``;
    * columns ``C``: the same on the transpose;
    * ``A + P Q^T``: ``[U, Q_P] K [V, Q_Q]^T`` with ``K = diag(s, 0) +
      [U^T P; L_P] [V^T Q; L_Q]^T``;
    * a sparse ``E`` is written ``P Q^T`` over the fewer of its touched rows or
      columns (``P`` selects the touched rows, ``Q^T`` holds them), so the cost
      grows with the number of touched rows or columns, not with ``m n``.

    Each costs ``O((m + n) (k + b)^2)`` for ``b`` new rows, columns or update rank.
    Orthogonality is kept by re-orthogonalising the new directions against the
    current basis (two Gram-Schmidt passes).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import IncrementalTruncatedSVD
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 40))
    >>> svd = IncrementalTruncatedSVD(n_components=3)
    >>> for chunk in np.array_split(X, 5):
    ...     svd = svd.partial_fit(chunk)
    >>> np.allclose(svd.singular_values_, np.linalg.svd(X, compute_uv=False)[:3])
    True
    >>> svd.transform(X[:2]).shape
    (2, 3)
    >>> extra = X[:, :5] @ rng.normal(size=(5, 2))   # two columns in the same span
    >>> svd = svd.add_columns(extra)
    >>> svd.components_.shape
    (3, 42)
    >>> full = np.hstack([X, extra])
    >>> np.allclose(svd.singular_values_, np.linalg.svd(full, compute_uv=False)[:3])
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_components=2, *, batch_size=None):
        self.n_components = n_components
        self.batch_size = batch_size

    def _validate(self, X, reset):
        return validate_estimator_data(self, X, reset=reset,
                                       accept_sparse=("csr", "csc", "coo"),
                                       accept_dask=True)[0]

    def fit(self, X, y=None):
        """Compute the truncated SVD of ``X`` by row batches.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        for attr in ("components_", "singular_values_", "U_", "n_samples_seen_",
                     "covariance_error_bound_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self._partial_fit(X, reset=True)

    def partial_fit(self, X, y=None):
        """Append the rows of ``X`` and update the truncated SVD.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_new_rows, n_features)
            After a fit on a Dask array (no ``U_``), new rows are merged as a
            :class:`FrequentDirections` summary, whatever their kind.
        y : ignored

        Returns
        -------
        self
        """
        first = not hasattr(self, "components_")
        if first:
            self._validate_params()
        return self._partial_fit(X, reset=first)

    def _partial_fit(self, X, reset):
        X = self._validate(X, reset)
        if is_dask_array(X) or (not reset and not hasattr(self, "U_")):
            return self._merge_rows(X, reset)
        if is_sparse(X):
            X = X.tocsr()
            xp = np
        else:
            xp = get_namespace(X)
        n = X.shape[1]
        if reset and self.n_components > n:
            raise ValueError(f"n_components={self.n_components} must be <= n_features={n}.")
        k = self.n_components
        bs = self.batch_size or max(100, 5 * k)
        with blas_single_thread(xp):
            for start in range(0, X.shape[0], bs):
                self._append_rows(X[start:start + bs], xp, k, X.dtype)
        return self

    def _merge_rows(self, X, reset):
        """Fit or update by :class:`FrequentDirections` summaries: of the row chunks
        of a Dask ``X`` merged in a tree, or of an in-memory ``X``; merged with the
        current state (a summary too) when there is one."""
        k = self.n_components
        n = X.shape[1]
        if reset and k > n:
            raise ValueError(f"n_components={k} must be <= n_features={n}.")
        fd = FrequentDirections(k)
        if is_dask_array(X):
            from .._dask import reduce_row_chunks

            summary = reduce_row_chunks(fd, X)
        else:
            X = np.asarray(X.toarray() if is_sparse(X) else to_numpy(X))
            summary = fd.partial(X)
        if not reset:
            # An in-memory fit (Brand's updates, with U_) does not track what its
            # truncations dropped: the bound is unknown (NaN) from then on.
            current = (np.asarray(to_numpy(self.singular_values_), dtype=np.float64),
                       np.asarray(to_numpy(self.components_), dtype=np.float64),
                       self.n_samples_seen_,
                       getattr(self, "covariance_error_bound_", math.nan))
            summary = fd.merge(current, summary)
        s, Vt, n_rows, shrinkage = summary
        if hasattr(self, "U_"):
            del self.U_
        dtype = X.dtype
        signs = _flip_signs(np, Vt)
        self.singular_values_ = s.astype(dtype)
        self.components_ = (Vt * np.reshape(signs, (-1, 1))).astype(dtype)
        self.n_samples_seen_ = int(n_rows)
        self.covariance_error_bound_ = float(shrinkage)
        return self

    def _append_rows(self, B, xp, k, dtype):
        if not hasattr(self, "components_"):
            U, s, Vt = xp.linalg.svd(_dense(B, xp, dtype), full_matrices=False)
            keep = min(k, s.shape[0])
            self.n_samples_seen_ = 0
            self._set(U[:, :keep], s[:keep], Vt[:keep, :], xp)
        else:
            U = xp.astype(self.U_, dtype)
            G, s, Vt = brand_update(self.singular_values_, xp.astype(self.components_, dtype),
                                    B, k)
            r = U.shape[1]
            self._set(xp.concat([xp.matmul(U, G[:r, :]), G[r:, :]], axis=0), s, Vt, xp)
        self.n_samples_seen_ += int(B.shape[0])

    def _set(self, U, s, Vt, xp):
        signs = _flip_signs(xp, Vt)
        self.U_ = U * xp.reshape(signs, (1, -1))
        self.singular_values_ = s
        self.components_ = Vt * xp.reshape(signs, (-1, 1))

    def _state(self, other):
        """Namespace, fitted factors and dtype; ``other`` must live in the same place."""
        xp = get_namespace(self.components_)
        if not hasattr(self, "U_"):
            raise ValueError("this IncrementalTruncatedSVD was fitted on a Dask array and "
                             "keeps no left singular vectors (U_), which add_columns and "
                             "update need; fit it on an in-memory array for those.")
        on_gpu = "cupy" in type(self.components_).__module__
        other_on_gpu = "cupy" in type(other).__module__
        if on_gpu != other_on_gpu:
            raise TypeError(f"the update is a {type(other).__module__}.{type(other).__name__} "
                            "but the fitted factors are on the "
                            f"{'GPU' if on_gpu else 'CPU'}; move it there first.")
        return xp, self.U_, self.singular_values_, self.components_, self.components_.dtype

    def add_columns(self, C):
        """Append the columns of ``C`` (one value per row seen) and update.

        Parameters
        ----------
        C : array or sparse matrix of shape (n_rows, n_new_columns)
            One value per row of the current matrix (``n_rows = n_samples_seen_``).

        Returns
        -------
        self
        """
        check_is_fitted(self, "components_")
        C = _check_matrix(C, "C", self.components_.dtype)
        if C.shape[0] != self.n_samples_seen_:
            raise ValueError(f"C has {C.shape[0]} rows but the matrix has "
                             f"{self.n_samples_seen_} rows (n_samples_seen_); new columns "
                             "need one value per row.")
        xp, U, s, Vt, dtype = self._state(C)
        Ct = C.T.tocsr() if is_sparse(C) else xp.matrix_transpose(C)
        with blas_single_thread(xp):
            G, s_new, Ut = brand_update(s, xp.matrix_transpose(U), Ct, self.n_components)
            r = s.shape[0]
            Vt_new = xp.concat([xp.matmul(xp.matrix_transpose(G[:r, :]), Vt),
                                xp.matrix_transpose(G[r:, :])], axis=1)
            self._set(xp.matrix_transpose(Ut), s_new, Vt_new, xp)
        self.n_features_in_ += int(C.shape[1])
        return self

    def update(self, delta=None, *, left=None, right=None):
        """Add a sparse or low-rank correction to the matrix and update the SVD.

        Give either ``delta`` (the change, same shape as the matrix; sparse input
        costs in proportion to its touched rows or columns) or ``left`` and
        ``right`` (the change is ``left @ right.T``).

        Parameters
        ----------
        delta : array or sparse matrix of shape (n_rows, n_columns), optional
            The change, the shape of the current matrix (``n_rows =
            n_samples_seen_``, ``n_columns = n_features_in_``).
        left : array of shape (n_rows, c), optional
        right : array of shape (n_columns, c), optional

        Returns
        -------
        self
        """
        check_is_fitted(self, "components_")
        m, n = self.n_samples_seen_, self.n_features_in_
        dtype = self.components_.dtype
        if delta is not None and (left is not None or right is not None):
            raise ValueError("give either delta or left and right, not both.")
        if delta is None:
            if left is None or right is None:
                raise ValueError("give delta (the change) or both left and right (the change "
                                 "is left @ right.T).")
            P, Q = _check_matrix(left, "left", dtype), _check_matrix(right, "right", dtype)
            if P.shape[0] != m or Q.shape[0] != n or P.shape[1] != Q.shape[1]:
                raise ValueError(f"left must be ({m}, c) and right ({n}, c) for the "
                                 f"{m} x {n} matrix; got {P.shape} and {Q.shape}.")
            xp, U, s, Vt, dtype = self._state(P)
        else:
            E = _check_matrix(delta, "delta", dtype)
            if E.shape != (m, n):
                raise ValueError(f"delta has shape {E.shape} but the matrix is {m} x {n}.")
            xp, U, s, Vt, dtype = self._state(E)
            if is_sparse(E):
                if E.nnz == 0:
                    return self
                P, Q = _sparse_factors(E, dtype)
            else:
                # A dense change is a rank-min(m, n) update: exact, but no cheaper than
                # a fresh SVD; sparse input is the efficient route.
                if n <= m:
                    P, Q = E, xp.eye(n, dtype=dtype)
                else:
                    P, Q = xp.eye(m, dtype=dtype), xp.matrix_transpose(E)
        with blas_single_thread(xp):
            U_new, s_new, Vt_new = rank_update(U, s, Vt, P, Q, self.n_components)
            self._set(U_new, s_new, Vt_new, xp)
        return self

    def transform(self, X):
        """Project ``X`` on the right singular vectors: ``X @ components_.T``.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_samples, n_features)

        Returns
        -------
        X_new : array of shape (n_samples, k)
            A lazy Dask array, chunked like ``X``'s rows, for Dask input.
        """
        check_is_fitted(self, "components_")
        X = self._validate(X, reset=False)
        if is_dask_array(X):
            Vt = to_numpy(self.components_)

            def project(block):
                xp = get_namespace(block)
                return xp.matmul(block, move_to(np.ascontiguousarray(Vt.T, dtype=block.dtype),
                                                xp))

            return X.map_blocks(project, chunks=(X.chunks[0], (Vt.shape[0],)),
                                dtype=X.dtype)
        if is_sparse(X):
            return np.asarray(X @ self.components_.T.astype(X.dtype))
        xp = get_namespace(X)
        return xp.matmul(X, xp.matrix_transpose(xp.astype(self.components_, X.dtype)))

    def inverse_transform(self, X):
        """Map projections back: ``X @ components_``.

        Parameters
        ----------
        X : array of shape (n_samples, k)

        Returns
        -------
        X_original : array of shape (n_samples, n_features)
        """
        check_is_fitted(self, "components_")
        X = check_array(X, "X")
        xp = get_namespace(X)
        return xp.matmul(X, xp.astype(self.components_, X.dtype))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
