"""The SketchTransformer estimator (random feature sketches in pipelines)."""

from __future__ import annotations

import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from .._dask import is_dask_array
from .._validation import COUNT, SEED, validate_estimator_data
from ._core import KINDS, make_sketch

__all__ = ["SketchTransformer"]


class SketchTransformer(TransformerMixin, BaseEstimator):
    """Reduce the number of features with a random sketch: ``X -> X @ S^T``.

    ``S`` (``n_components x n_features``) is drawn once in :meth:`fit` with
    ``E[S^T S] = I``, so inner products between rows are preserved in
    expectation (``E[(X S^T)(X S^T)^T] = X X^T``) and, for ``n_components`` of
    order ``rank / eps^2``, up to a factor ``1 +- eps`` on a subspace (a subspace
    embedding). Kinds are those of :func:`~sketchlearn.sketching.make_sketch`:
    dense Gaussian or Haar-orthogonal, the fast transforms SRHT/SRDCT
    (O(n p log p)), sparse CountSketch (O(nnz)), and column sampling (uniform or by
    the leverage scores of the training data's columns).

    Parameters
    ----------
    kind : str, default="gaussian"
        "gaussian", "orthogonal", "srht", "srdct", "countsketch", "uniform",
        "leverage" or "approx_leverage".
    n_components : int, optional
        Sketch size; default ``min(n_features, 100)``. At most ``n_features`` for
        orthogonal, SRHT, SRDCT and sampling without replacement.
    replace : bool, default=False
        Uniform column sampling with replacement.
    random_state : int, RandomState, Generator or None
        Seed.

    Attributes
    ----------
    sketch_ : SketchOperator
        The drawn operator (shape ``(n_components_, n_features_in_)``).
    n_components_ : int
        Sketch size used.
    n_features_in_ : int
        Number of input features.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.sketching import SketchTransformer
    >>> X = np.random.default_rng(0).normal(size=(100, 1000))
    >>> Z = SketchTransformer(kind="srdct", n_components=200, random_state=0).fit_transform(X)
    >>> Z.shape
    (100, 200)
    >>> ratio = np.linalg.norm(Z, axis=1) / np.linalg.norm(X, axis=1)
    >>> bool(np.all(np.abs(ratio - 1) < 0.3))
    True
    """

    _parameter_constraints: dict = {
        "kind": [StrOptions(set(KINDS))],
        "n_components": [*COUNT, None],
        "replace": ["boolean"],
        "random_state": SEED,
    }

    def __init__(self, kind="gaussian", n_components=None, replace=False, random_state=None):
        self.kind = kind
        self.n_components = n_components
        self.replace = replace
        self.random_state = random_state

    def _validate_X(self, X, reset):
        sparse_ok = self.kind not in ("srht", "srdct")
        # a Dask X: fit needs its shape only (leverage sampling needs the data: refused)
        dask_ok = not (reset and self.kind in ("leverage", "approx_leverage"))
        return validate_estimator_data(self, X, reset=reset,
                                       accept_sparse=["csr", "csc"] if sparse_ok else False,
                                       accept_dask=dask_ok)[0]

    @_fit_context(prefer_skip_nested_validation=True)  # make_sketch: no second check
    def fit(self, X, y=None):
        """Draw the sketch for ``X``'s number of features.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Training data (only its shape matters, except for leverage sampling).
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : SketchTransformer
        """
        X = self._validate_X(X, reset=True)
        p = X.shape[1]
        m = min(p, 100) if self.n_components is None else self.n_components
        data = None
        if self.kind in ("leverage", "approx_leverage"):
            data = X.T.tocsr() if sp.issparse(X) else X.T
            if self.kind == "leverage" and sp.issparse(data):
                data = data.toarray()
        self.sketch_ = make_sketch(self.kind, m, p, data=data, replace=self.replace,
                                   random_state=self.random_state)
        self.n_components_ = m
        return self

    def transform(self, X):
        """Sketch the features of ``X``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            NumPy, CuPy, SciPy sparse, or a Dask array chunked by rows.

        Returns
        -------
        Z : array of shape (n_samples, `n_components_`)
            Dense, except for CountSketch and sampling of sparse input; a lazy Dask
            array (chunked like ``X``'s rows) for Dask input.
        """
        check_is_fitted(self, "sketch_")
        X = self._validate_X(X, reset=False)
        if is_dask_array(X):
            S, m = self.sketch_, self.n_components_
            return X.map_blocks(lambda block: S.apply(block, axis=1),
                                chunks=(X.chunks[0], (m,)), dtype=X.dtype)
        return self.sketch_.apply(X, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.kind not in ("srht", "srdct")
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
