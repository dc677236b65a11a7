"""A rank-k truncated SVD kept up to date as rows are appended (Brand's update)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace
from .._validation import check_array, validate_estimator_data
from ._core import blas_single_thread
from ._observed import is_sparse

__all__ = ["IncrementalTruncatedSVD", "brand_update"]


def _flip_signs(xp, Vt):
    """Make the largest-magnitude entry of each right singular vector positive
    (deterministic signs, as scikit-learn's ``svd_flip``)."""
    idx = xp.argmax(xp.abs(Vt), axis=1)
    picked = xp.take_along_axis(Vt, xp.reshape(idx, (-1, 1)), axis=1)
    signs = xp.where(picked < 0, -1.0, 1.0)
    return xp.astype(signs, Vt.dtype)


def _dense_rows(B, xp, dtype):
    if is_sparse(B):
        B = B.toarray()
    return xp.astype(B, dtype, copy=False)


def brand_update(s, Vt, B, k):
    """Truncated SVD of ``[A; B]`` from that of ``A`` (``s``, ``Vt``) and new rows ``B``.

    With ``A ~ U diag(s) Vt`` and ``C = B Vt^T``, the part of ``B`` outside the row
    space is ``R = B - C Vt``; with ``R^T = Q L`` (thin QR),
    ``[A; B] ~ blockdiag(U, I) K [Vt; Q^T]`` where ``K = [[diag(s), 0], [C, L^T]]`` is
    ``(k + b) x (k + b)``. The SVD of ``K`` (Rayleigh-Ritz on the augmented basis
    ``[Vt^T, Q]``) gives the new factors (Brand, 2006). Sparse ``B`` is used through
    products; only ``R^T`` (``n x b``) is dense. Exact when ``A`` has rank ``<= k``.

    Parameters
    ----------
    s : array of shape (r,)
    Vt : array of shape (r, n)
    B : array or sparse matrix of shape (b, n)
    k : int
        Rank kept.

    Returns
    -------
    s_new : array of shape (min(k, r + b),)
    Vt_new : array of shape (min(k, r + b), n)

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion._incremental import brand_update
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 8))
    >>> _, s, Vt = np.linalg.svd(A[:20], full_matrices=False)
    >>> s2, Vt2 = brand_update(s[:2], Vt[:2], A[20:], 2)
    >>> np.allclose(s2, np.linalg.svd(A, compute_uv=False)[:2])
    True
    """
    xp = get_namespace(s, Vt)
    C = B @ xp.matrix_transpose(Vt)  # b x r (sparse @ dense works for scipy/cupyx)
    C = xp.asarray(C, dtype=Vt.dtype)
    Bt = xp.matrix_transpose(_dense_rows(B, xp, Vt.dtype))  # n x b
    Rt = Bt - xp.matmul(xp.matrix_transpose(Vt), xp.matrix_transpose(C))
    # Second Gram-Schmidt pass: keeps Q orthogonal to the current basis in floating point.
    Rt = Rt - xp.matmul(xp.matrix_transpose(Vt), xp.matmul(Vt, Rt))
    Q, L = xp.linalg.qr(Rt)
    r, b = s.shape[0], Q.shape[1]
    top = xp.concat([xp.eye(r, dtype=Vt.dtype) * xp.astype(s, Vt.dtype)[None, :],
                     xp.zeros((r, b), dtype=Vt.dtype)], axis=1)
    bottom = xp.concat([C, xp.matrix_transpose(L)], axis=1)
    K = xp.concat([top, bottom], axis=0)
    _, sk, Wt = xp.linalg.svd(K, full_matrices=False)
    keep = min(k, sk.shape[0])
    basis = xp.concat([Vt, xp.matrix_transpose(Q)], axis=0)  # (r + b) x n
    Vt_new = xp.matmul(Wt[:keep, :], basis)
    return sk[:keep], Vt_new


class IncrementalTruncatedSVD(TransformerMixin, BaseEstimator):
    """Rank-``n_components`` truncated SVD updated as rows arrive (``partial_fit``).

    Keeps the top singular values and right singular vectors of all the rows seen
    so far, updated batch by batch with Brand's (2006) method: the new rows are
    projected on the current right singular vectors, the remainder is
    orthonormalised (thin QR), and a small ``(k + b) x (k + b)`` SVD (Rayleigh-Ritz
    on the augmented basis) gives the new factors. No pass over the old rows and
    no decomposition of the whole matrix; sparse batches are used through
    products, only a dense ``n_features x batch_size`` block is formed. The result
    is exact when the data have rank at most ``n_components`` and otherwise
    approximates the truncated SVD of the stacked rows (each update truncates to
    ``n_components``). Like scikit-learn's ``TruncatedSVD``, the data are not
    centred.

    Parameters
    ----------
    n_components : int, default=2
        Rank kept.
    batch_size : int, optional
        Rows per update; default ``max(100, 5 * n_components)``. ``partial_fit``
        splits larger batches.

    Attributes
    ----------
    components_ : array of shape (k, n_features)
        Right singular vectors, rows orthonormal (``k <= n_components``: fewer while
        fewer rows have been seen).
    singular_values_ : array of shape (k,)
        Decreasing.
    n_samples_seen_ : int
        Rows seen.
    n_features_in_ : int
        Number of columns.

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
                                       accept_sparse=("csr", "csc", "coo"))[0]

    def fit(self, X, y=None):
        """Compute the truncated SVD of ``X`` by row batches.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        for attr in ("components_", "singular_values_", "n_samples_seen_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self._partial_fit(X, reset=True)

    def partial_fit(self, X, y=None):
        """Append the rows of ``X`` and update the truncated SVD.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_new_rows, n_features)
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
        dtype = X.dtype
        with blas_single_thread(xp):
            self._update_batches(X, xp, k, bs, dtype)
        return self

    def _update_batches(self, X, xp, k, bs, dtype):
        for start in range(0, X.shape[0], bs):
            B = X[start:start + bs]
            if not hasattr(self, "components_"):
                _, s, Vt = xp.linalg.svd(_dense_rows(B, xp, dtype), full_matrices=False)
                keep = min(k, s.shape[0])
                s, Vt = s[:keep], Vt[:keep, :]
                self.n_samples_seen_ = 0
            else:
                s, Vt = brand_update(self.singular_values_, xp.astype(self.components_, dtype),
                                     B, k)
            self.singular_values_ = s
            self.components_ = Vt * xp.reshape(_flip_signs(xp, Vt), (-1, 1))
            self.n_samples_seen_ += int(B.shape[0])

    def transform(self, X):
        """Project ``X`` on the right singular vectors: ``X @ components_.T``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        X_new : array of shape (n_samples, k)
        """
        check_is_fitted(self, "components_")
        X = self._validate(X, reset=False)
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
