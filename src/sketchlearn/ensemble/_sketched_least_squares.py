"""SketchedLeastSquares: minimum-norm least squares on a row sketch whose size is chosen
from the data (by the ridge ensembles' cross-validation)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._random import as_generator
from .._validation import SEED, LinearPredictorMixin
from ..sketching import KINDS
from ._core import resolve_size
from ._ridge_ensembles import _SIZE, RidgeEnsemble, RidgeEnsembleCV, _is_dask, _validate_Xy

__all__ = ["SketchedLeastSquares"]


class SketchedLeastSquares(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Minimum-norm least squares on a row sketch, with the sketch size chosen from data.

    Fits ``b = (S X)^+ S y`` (with an intercept: on centred data) for a sketch ``S``
    of ``sketch_size`` rows. Downsampling can *lower* the risk of ridgeless
    regression: when ``p > n`` the minimum-norm interpolator's variance blows up
    near ``n = p``, and a sketch of ``m`` rows with ``m`` away from ``p`` avoids the
    peak (Chen, Zeng, Yang and Sun, "Sketched ridgeless linear regression: the role
    of downsampling"). With ``sketch_size="auto"`` the size is chosen by K-fold
    cross-validation over ``sketch_sizes``: one sketched fit per size and fold, no
    plug-in estimate of the signal and noise levels needed.

    Parameters
    ----------
    sketch : str, default="srdct"
        Kind of :func:`~sketchlearn.sketching.make_sketch`. With "srdct" or
        "orthogonal", ``sketch_size = n_samples`` reproduces the unsketched
        minimum-norm least squares.
    sketch_size : int, float or "auto", default="auto"
        Rows of the sketch (int), a fraction of the samples (float in (0, 1]) or
        "auto" (cross-validated over ``sketch_sizes``).
    sketch_sizes : sequence of int or float, optional
        Candidates for "auto"; default ``(0.1, 0.2, ..., 1.0)`` of the samples.
    cv : int, default=5
        Folds for "auto".
    fit_intercept : bool, default=True
    random_state : int, RandomState, Generator or None

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    sketch_size_ : int
        Sketch size used.
    cv_risk_ : ndarray of shape (len(sketch_sizes),) or None
        Cross-validated mean squared error of each candidate ("auto" only).
    cv_sizes_ : ndarray of int or None
        The candidate sizes in rows.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.ensemble import SketchedLeastSquares
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 300)); beta = rng.normal(size=300) / 17
    >>> y = X @ beta + 0.5 * rng.normal(size=200)
    >>> sls = SketchedLeastSquares(random_state=0).fit(X, y)
    >>> sls.sketch_size_ <= 200
    True
    >>> sls.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "sketch": [StrOptions(set(KINDS))],
        "sketch_size": [*_SIZE, StrOptions({"auto"})],
        "sketch_sizes": ["array-like", None],
        "cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "fit_intercept": ["boolean"],
        "random_state": SEED,
    }

    def __init__(self, sketch="srdct", sketch_size="auto", sketch_sizes=None, cv=5,
                 fit_intercept=True, random_state=None):
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.sketch_sizes = sketch_sizes
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)  # the inner fits: no second check
    def fit(self, X, y):
        """Choose the sketch size (if "auto") and fit.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            NumPy, CuPy or Dask. On a Dask array, with an int or float
            ``sketch_size`` and ``sketch`` one of "uniform", "countsketch",
            "gaussian", "srht", one pass over the row chunks sketches ``[1 | X | y]``
            (the sketch the in-memory fit draws with the same seed) and sums the
            columns for the centring; the small sketched problem is then solved in
            memory, so the fit equals the in-memory one (to rounding). Other kinds
            (the default "srdct" included) and ``sketch_size="auto"`` (which refits
            per fold) raise a ``TypeError``.
        y : array of shape (n_samples,)

        Returns
        -------
        self : SketchedLeastSquares
        """
        X, y = _validate_Xy(self, X, y, accept_dask=True)
        n = X.shape[0]
        rng = as_generator(self.random_state)
        self.cv_risk_ = self.cv_sizes_ = None
        if _is_dask(X):
            return self._fit_dask(X, y, rng)
        if isinstance(self.sketch_size, str):
            sizes = (np.arange(1, 11) / 10).tolist() if self.sketch_sizes is None \
                else self.sketch_sizes
            folds = min(self.cv, n)
            if folds < 2:
                raise ValueError(f"sketch_size='auto' needs at least 2 samples; got {n} "
                                 "sample.")
            search = RidgeEnsembleCV(alphas=[0.0], subsample_sizes=sizes, n_estimators=1,
                                     sketch=self.sketch, cv=folds,
                                     fit_intercept=self.fit_intercept, random_state=rng)
            search.fit(X, y)
            self.cv_risk_ = search.risk_estimates_[0, :, 0]
            self.cv_sizes_ = search.risk_estimates_axes_["subsample_size"]
            m = search.best_params_["subsample_size"]
        else:
            m = resolve_size(self.sketch_size, n, "sketch_size")
        final = RidgeEnsemble(alpha=0.0, n_estimators=1, sketch=self.sketch, sketch_size=m,
                              fit_intercept=self.fit_intercept, random_state=rng).fit(X, y)
        self.coef_ = final.coef_
        self.intercept_ = final.intercept_
        self.sketch_size_ = int(m)
        return self

    def _fit_dask(self, X, y, rng):
        from ._dask import DASK_SKETCH_KINDS, sketched_lstsq_dask

        if self.sketch not in DASK_SKETCH_KINDS:
            raise TypeError(
                f"SketchedLeastSquares(sketch={self.sketch!r}) on a Dask array: this sketch "
                f"has no distributed version; use sketch= one of {DASK_SKETCH_KINDS} (each "
                "equal to the in-memory sketch with the same seed), or compute X first if "
                "it fits in memory.")
        if isinstance(self.sketch_size, str):
            raise TypeError(
                "SketchedLeastSquares(sketch_size='auto') on a Dask array: choosing the size "
                "refits per fold and has no distributed version; pass an int (rows) or a "
                "float fraction as sketch_size, or compute X first if it fits in memory.")
        m = resolve_size(self.sketch_size, X.shape[0], "sketch_size")
        coef, intercept = sketched_lstsq_dask(X, y, self.sketch, m, rng, self.fit_intercept)
        self.coef_ = coef.astype(X.dtype)
        self.intercept_ = float(intercept)
        self.sketch_size_ = int(m)
        return self
