"""RidgeEnsemble and RidgeEnsembleCV: ridge(less) fits on subsamples or sketches,
averaged, and tuned by GCV, corrected GCV or ECV (over :mod:`._core`)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from array_api_compat import is_numpy_array
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace, move_to, to_numpy
from .._random import as_generator
from .._validation import (
    COUNT,
    NON_NEGATIVE,
    PROBABILITY,
    SEED,
    LinearPredictorMixin,
    user_stacklevel,
    validate_estimator_data,
)
from ..sketching import KINDS, make_sketch
from ._core import (
    draw_members,
    ecv,
    ecv_from_sums,
    fit_members,
    gcv_cgcv,
    member_plan,
    predictions,
    residual_grams,
    resolve_size,
    subset_average_mse,
)
from ._equivalence import df_matched_penalty, gram_spectrum

__all__ = ["RidgeEnsemble", "RidgeEnsembleCV"]

# Risk estimates within this relative distance of the smallest count as tied.
_TIE_RTOL = 1e-12
_SIZE = [Interval(numbers.Integral, 1, None, closed="left"),
         Interval(numbers.Real, 0, 1, closed="right")]


def _first_near_min(risk):
    """Flat index of the first finite entry within ``_TIE_RTOL`` (relative) of the
    smallest; the margin is taken on ``|min|``, since risk estimates of a noiseless
    fit are rounding-sized and may be negative."""
    masked = np.where(np.isfinite(risk), risk, np.inf)
    low = masked.min()
    return int(np.flatnonzero(masked <= low + _TIE_RTOL * abs(low))[0])


def _validate_Xy(est, X, y, accept_dask=False):
    return validate_estimator_data(est, X, y, reset=True, y_required=True,
                                   accept_dask=accept_dask)


def _is_dask(X):
    import sys

    if "dask.array" not in sys.modules:
        return False
    from .._dask import is_dask_array

    return is_dask_array(X)


def _refuse_on_dask(est):
    """The TypeError for the options that have no distributed version."""
    name = type(est).__name__
    if est.sketch is not None:
        raise TypeError(
            f"{name}(sketch={est.sketch!r}) on a Dask array: members on row sketches have no "
            "distributed version. Use subsampled members (sketch=None), or "
            "SketchedLeastSquares with an int sketch_size for one sketched least-squares "
            "fit on Dask, or compute X first if it fits in memory.")
    if est.feature_sketch is not None:
        raise TypeError(
            f"{name}(feature_sketch={est.feature_sketch!r}) on a Dask array: feature-sketched "
            "members have no distributed version. Use feature_sketch=None (subsampled "
            "members), or compute X first if it fits in memory.")


def _draw(X, k, M, sketch, rng):
    """Index sets (subsampling) or sketch operators for M members of size k."""
    n = X.shape[0]
    if sketch is None:
        return draw_members(n, k, M, rng), None
    data = to_numpy(X) if sketch in ("leverage", "approx_leverage") else None
    return None, [make_sketch(sketch, k, n, data=data, random_state=rng) for _ in range(M)]


def _joined(lists):
    """The members of every size in one list, or None if these are None."""
    lists = list(lists)
    return None if lists[0] is None else [member for part in lists for member in part]


def _draw_features(X, q, M, kind, rng):
    """Feature sketch operators (shape ``(q, p)``) for M members, or None."""
    if kind is None:
        return None
    p = X.shape[1]
    data = to_numpy(X).T if kind in ("leverage", "approx_leverage") else None
    return [make_sketch(kind, q, p, data=data, random_state=rng) for _ in range(M)]


def _feature_size(size, p):
    return resolve_size(0.5 if size is None else size, p, "feature_sketch_size",
                        unit="features")


class RidgeEnsemble(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Average of ridge(less) regressions fitted on random subsamples or sketches.

    Member ``m`` minimises ``||y_I - X_I b||^2 + alpha ||b||^2`` over its rows ``I``
    (``subsample_size`` rows drawn without replacement), exactly scikit-learn's
    :class:`~sklearn.linear_model.Ridge` on those rows, or, with ``sketch``, the same
    loss on a row sketch ``(S X, S y)``. ``alpha=0`` gives the minimum-norm
    (ridgeless) least-squares fit, also when ``p > k``. Predictions average the
    members. Subsampling acts as extra ridge regularisation (Patil, Du, Kuchibhotla),
    so a ridgeless ensemble of subsamples can match an optimally tuned ridge.

    With ``feature_sketch``, member ``m`` also draws a feature sketch ``S_m``
    (``n_features x feature_sketch_size``, ``E[S S^T] = I``), fits the same ridge
    on ``X_I S_m`` and keeps ``S_m b_m`` as its coefficients in the original
    feature space. For sketches free from the data (Gaussian, orthogonal, SRDCT)
    the ``M -> inf`` ensemble on all rows is ``Ridge(mu)`` with a larger penalty
    ``mu`` (Patil and LeJeune, ICLR 2024, from the equivalence of LeJeune, Patil,
    Javadi, Baraniuk and Tibshirani, 2024), see :func:`equivalent_ridge_penalty`
    and ``equivalent_alpha_``.

    Parameters
    ----------
    alpha : float >= 0, default=1.0
        Penalty of each member (scikit-learn ``Ridge`` meaning).
    n_estimators : int, default=10
        Number of members ``M``.
    subsample_size : int or float, default=0.5
        Rows per member: an int count, or a float fraction of the samples in (0, 1].
        ``1.0`` gives ``M`` copies of ``Ridge(alpha)``.
    sketch : str, optional
        Sketch the rows instead of subsampling: a kind of
        :func:`~sketchlearn.sketching.make_sketch` ("gaussian", "srdct",
        "countsketch", ...); the sketch size is ``sketch_size``.
    sketch_size : int or float, optional
        Rows of each sketch (default: ``subsample_size``).
    feature_sketch : str, optional
        Also sketch the features of every member: a kind of
        :func:`~sketchlearn.sketching.make_sketch` ("gaussian", "orthogonal",
        "srdct", "countsketch", ...). Rows are still subsampled (or row-sketched)
        as above: use ``subsample_size=1.0`` for feature sketching alone.
    feature_sketch_size : int or float, optional
        Columns ``q`` of each feature sketch: an int, or a float fraction of the
        features in (0, 1]; default 0.5 when ``feature_sketch`` is set. An
        orthogonal sketch of all features reproduces the unsketched fit.
    fit_intercept : bool, default=True
        Fit an intercept (subsample members centre on their own rows, as Ridge does;
        sketched members centre with the full-data means before sketching).
    random_state : int, RandomState, Generator or None
        Seed of the subsamples / sketches.
    n_jobs : int, optional
        Members fitted at once, in threads (None: 1 unless in a joblib
        ``parallel_config`` context; -1: all cores). The members, hence the results,
        are the same for any value (up to rounding).
        For NumPy data each member's LAPACK calls then run on one thread.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Average of the members' coefficients.
    intercept_ : float
        Average intercept.
    estimators_coef_ : ndarray of shape (n_estimators, n_features)
    estimators_intercept_ : ndarray of shape (n_estimators,)
    estimators_samples_ : list of ndarray
        Rows of each member (subsampling only; empty list for sketches). After a fit
        on Dask arrays: lazy Dask arrays (the same rows when computed).
    estimators_feature_sketches_ : list of SketchOperator
        Feature sketch of each member, as ``(q, n_features)`` operators ``T`` with
        ``S = T^T`` (empty list without ``feature_sketch``).
    estimators_df_ : ndarray of shape (n_estimators,)
        Degrees of freedom ``sum s^2 / (s^2 + alpha)`` of each member (singular
        values of its design, feature-sketched if so; +1 with an intercept).
    subsample_size_ : int
        Rows (or sketch size) per member.
    feature_sketch_size_ : int or None
        Columns of each feature sketch.
    equivalent_alpha_ : float
        Penalty ``mu`` of the unsketched ``Ridge`` that the ``M -> inf`` ensemble
        equals: ``alpha`` for full-data members; for feature-sketched members on all
        rows, the ``mu`` whose ridge degrees of freedom equal the members' mean
        (the degrees-of-freedom form of the sketched-ridge equivalence, valid for
        sketches asymptotically free from the data: Gaussian, orthogonal, SRDCT,
        approximately CountSketch; not feature sampling such as "uniform"); NaN for
        subsampled or row-sketched members, where no such estimate is implemented.
    risk_estimate_ : float
        Estimated prediction risk (test mean squared error, noise included): corrected
        GCV for subsampled members, GCV for sketched or full-data members; NaN when
        the ensemble interpolates (degrees of freedom >= n). GCV is consistent for
        feature-sketched members on all rows (any M), but not for finite ensembles
        of row-sketched members (use :class:`RidgeEnsembleCV` with K-fold there);
        members that subsample rows *and* sketch features get the CGCV correction,
        which is not derived for that case.
    calibration_residuals_ : ndarray of shape (n_samples,)
        Sorted training residuals rescaled to the risk estimate (used by
        :meth:`predict_interval`). After a fit on Dask arrays: a lazy, unsorted
        Dask array (:meth:`predict_interval` computes it, one pass).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sketchlearn.ensemble import RidgeEnsemble
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 20)); y = X @ rng.normal(size=20) + rng.normal(size=200)
    >>> ens = RidgeEnsemble(alpha=1.0, n_estimators=20, subsample_size=0.5,
    ...                     random_state=0).fit(X, y)
    >>> ens.predict(X[:2]).shape
    (2,)
    >>> full = RidgeEnsemble(alpha=3.0, n_estimators=1, subsample_size=1.0).fit(X, y)
    >>> bool(np.allclose(full.coef_, Ridge(alpha=3.0).fit(X, y).coef_))
    True

    Sketching 10 of the 20 features regularises: the infinite ensemble is ridge with
    a larger penalty.

    >>> fs = RidgeEnsemble(alpha=1.0, n_estimators=50, subsample_size=1.0,
    ...                    feature_sketch="gaussian", feature_sketch_size=10,
    ...                    random_state=0).fit(X, y)
    >>> bool(fs.equivalent_alpha_ > 1.0)
    True
    """

    _parameter_constraints: dict = {
        "alpha": NON_NEGATIVE,
        "n_estimators": COUNT,
        "subsample_size": _SIZE,
        "sketch": [StrOptions(set(KINDS)), None],
        "sketch_size": [*_SIZE, None],
        "feature_sketch": [StrOptions(set(KINDS)), None],
        "feature_sketch_size": [*_SIZE, None],
        "fit_intercept": ["boolean"],
        "random_state": SEED,
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, alpha=1.0, n_estimators=10, subsample_size=0.5, sketch=None,
                 sketch_size=None, feature_sketch=None, feature_sketch_size=None,
                 fit_intercept=True, random_state=None, n_jobs=None):
        self.alpha = alpha
        self.n_estimators = n_estimators
        self.subsample_size = subsample_size
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.feature_sketch = feature_sketch
        self.feature_sketch_size = feature_sketch_size
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)  # make_sketch: no second check
    def fit(self, X, y):
        """Fit every member.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            NumPy, CuPy or Dask. On a Dask array (subsampled members only: ``sketch``
            and ``feature_sketch`` raise a ``TypeError``) the members are fitted in two
            passes over the row chunks, without gathering the data: each member's rows
            are drawn chunk by chunk from the seed (the same rows as in memory), one
            pass sums each member's centred moments, one eigendecomposition (an SVD
            of a merged QR factor for very small ``alpha``) per member gives its fit,
            and a second pass sums the members' residual products for the risk
            estimate. The fitted attributes equal the in-memory fit's with the same
            seed (to rounding) and are NumPy, except ``estimators_samples_`` and
            ``calibration_residuals_``, which are lazy Dask arrays.
        y : array of shape (n_samples,)

        Returns
        -------
        self : RidgeEnsemble
        """
        X, y = _validate_Xy(self, X, y, accept_dask=True)
        if _is_dask(X):
            return self._fit_dask(X, y)
        size = self.subsample_size
        if self.sketch is not None and self.sketch_size is not None:
            size = self.sketch_size
        k = resolve_size(size, X.shape[0], "sketch_size" if self.sketch else "subsample_size")
        q = None if self.feature_sketch is None else _feature_size(self.feature_sketch_size,
                                                                    X.shape[1])
        rng = as_generator(self.random_state)
        idx, ops = _draw(X, k, self.n_estimators, self.sketch, rng)
        fops = _draw_features(X, q, self.n_estimators, self.feature_sketch, rng)
        coefs, intercepts, dfs = fit_members(X, y, [float(self.alpha)], idx, sketch_ops=ops,
                                             feature_ops=fops,
                                             fit_intercept=self.fit_intercept,
                                             n_jobs=self.n_jobs)
        self._set_members(coefs[:, 0, :], intercepts[:, 0], dfs[:, 0], idx, k, fops, q)
        self._calibrate(X, y)
        self._equivalent_alpha(X)
        return self

    def _fit_dask(self, X, y):
        from ._dask import fit_members_dask, lazy_member_rows, residual_sums_dask

        _refuse_on_dask(self)
        n, dt = X.shape[0], X.dtype
        k = resolve_size(self.subsample_size, n, "subsample_size")
        plan = member_plan(n, k, self.n_estimators, as_generator(self.random_state))
        C, B, D = fit_members_dask(X, y, [float(self.alpha)], [plan],
                                   fit_intercept=self.fit_intercept)
        rows = [lazy_member_rows(X, plan[0], m, plan[1][m]) for m in range(self.n_estimators)]
        self._set_members(C[:, 0, :].astype(dt), B[:, 0].astype(dt), D[:, 0].astype(dt),
                          rows, k)
        ((G, _),) = residual_sums_dask(X, y, C, B, [plan])
        self._calibrate(X, y, G[0])
        self._equivalent_alpha(X)
        return self

    def _equivalent_alpha(self, X, lam=None):
        """``equivalent_alpha_``: df matching for feature sketches on all rows."""
        n = X.shape[0]
        full_rows = self.sketch is None and self.subsample_size_ == n
        if not full_rows:
            self.equivalent_alpha_ = float("nan")
        elif self.feature_sketch is None:
            self.equivalent_alpha_ = float(self.alpha)
        else:
            if lam is None:
                lam = gram_spectrum(X, self.fit_intercept)
            df = float(np.mean(to_numpy(self.estimators_df_))) - float(self.fit_intercept)
            self.equivalent_alpha_ = df_matched_penalty(lam, df)
        return self

    def _calibrate(self, X, y, G=None):
        """Residuals of the ensemble on the training rows, rescaled so that their mean
        square equals the (C)GCV risk estimate: the calibration set of
        :meth:`predict_interval`.

        For Dask ``X, y``, ``G`` is the ``M x M`` Gram matrix of the members' residuals
        on all rows (from the residual pass), which gives the same estimate; the
        residuals themselves stay a lazy Dask array.
        """
        coefs = self.estimators_coef_
        n, M, k = X.shape[0], coefs.shape[0], self.subsample_size_
        if G is None:
            xp = get_namespace(X, y)
            F = X @ coefs.T + self.estimators_intercept_[None, :]          # (n, M)
            r = to_numpy(y - xp.mean(F, axis=1)).astype(np.float64)
            single = float(to_numpy(xp.mean((y[:, None] - F) ** 2)))
            train = float(np.mean(r**2))
        else:
            r = None
            single = float(np.trace(G)) / (n * M)
            train = float(np.sum(G)) / (M * M * n)
        t = float(np.mean(to_numpy(self.estimators_df_))) / n
        if t >= 1 or train == 0:
            self.calibration_residuals_ = np.full(n, np.nan)
            self.risk_estimate_ = float("nan")
            return
        est = train / (1 - t) ** 2
        if self.sketch is None and k < n:  # CGCV correction for finite M
            est -= t**2 / (1 - t) ** 2 * (n / k - 1) * single / (
                1 - 2 * t + n * t**2 / k) / M
        self.risk_estimate_ = est
        scale = np.sqrt(max(est, 0.0) / train)
        if r is None:
            from ._dask import ensemble_residuals_dask

            self.calibration_residuals_ = ensemble_residuals_dask(
                X, y, coefs, self.estimators_intercept_, scale)
        else:
            self.calibration_residuals_ = np.sort(r * scale)

    @validate_params({"coverage": PROBABILITY}, prefer_skip_nested_validation=True)
    def predict_interval(self, X, coverage=0.9):
        """Prediction intervals from the GCV-corrected training residuals.

        The training residuals ``y_i - f(x_i)`` of the ensemble are rescaled so that
        their mean square equals the corrected-GCV estimate of the prediction risk
        (GCV for sketched members), and their empirical quantiles are added to the
        prediction. In the proportional regime (``n, p, k`` large together) the
        rescaled residuals follow the distribution of the out-of-sample error, so the
        coverage is asymptotically the nominal one; it is not a finite-sample
        guarantee (use split conformal prediction for that).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        coverage : float in (0, 1), default=0.9
            Nominal probability that ``y`` falls in the interval.

        Returns
        -------
        lower, upper : arrays of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.ensemble import RidgeEnsemble
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(2000, 50)); y = X @ rng.normal(size=50) / 7
        >>> y += rng.normal(size=2000)
        >>> ens = RidgeEnsemble(alpha=1.0, random_state=0).fit(X[:1000], y[:1000])
        >>> lo, hi = ens.predict_interval(X[1000:], coverage=0.9)
        >>> inside = np.mean((lo <= y[1000:]) & (y[1000:] <= hi))
        >>> bool(0.85 < inside < 0.95)
        True
        """
        check_is_fitted(self, "calibration_residuals_")
        res = self.calibration_residuals_
        if _is_dask(res):  # fitted on Dask: one pass over the training data
            res = np.sort(np.asarray(res.compute(), dtype=np.float64))
        if np.isnan(res[0]):
            raise ValueError("The ensemble interpolates its training data (degrees of "
                             "freedom >= n), so its residuals carry no information about "
                             "the test error; use alpha > 0 or smaller subsamples.")
        pred = self.predict(X)
        lo_q, hi_q = np.quantile(res, [(1 - coverage) / 2, (1 + coverage) / 2])
        return pred + lo_q, pred + hi_q

    def _set_members(self, coefs, intercepts, dfs, idx, k, fops=None, q=None):
        xp = get_namespace(coefs)
        self.estimators_coef_ = coefs
        self.estimators_intercept_ = intercepts
        self.estimators_df_ = dfs
        self.estimators_samples_ = list(idx) if idx is not None else []
        self.estimators_feature_sketches_ = list(fops) if fops is not None else []
        self.feature_sketch_size_ = q
        self.coef_ = xp.mean(coefs, axis=0)
        self.intercept_ = xp.mean(intercepts)
        if is_numpy_array(self.coef_):
            self.intercept_ = float(self.intercept_)
        self.subsample_size_ = k
        return self



class RidgeEnsembleCV(RegressorMixin, BaseEstimator):
    """Tune a ridge ensemble over (alpha, subsample size, ensemble size) in one pass.

    For each subsample (or sketch) size, ``n_estimators`` members are factorised once
    (Householder tridiagonalisation of the smaller Gram matrix, or a thin SVD for
    alpha = 0); the whole alpha grid
    and every ensemble size ``M' = 1..n_estimators`` are then scored from those
    factors, without refitting per grid point:

    - ``"gcv"``: ensemble GCV (Du, Patil and Kuchibhotla 2023),
      ``(||y - X b_M||^2/n) / (1 - df/n)^2`` with ``df`` the members' mean degrees of
      freedom. Consistent for ``M -> inf`` or full-data members only.
    - ``"cgcv"``: corrected GCV (Bellec, Du, Koriyama, Patil, Tan 2023), consistent
      for every finite ``M``. The default.
    - ``"ecv"``: extrapolated CV (Du, Patil, Roeder, Kuchibhotla 2023) from
      out-of-bag errors of single members and pairs (NaN where members use all rows).
    - ``"split"``: one 80/20 hold-out split; an int ``K``: K-fold cross-validation
      (members refitted once per fold and size; alpha and M still free).

    Training errors and held-out errors of an ``M'``-ensemble are averaged over all
    ``M'``-subsets of the members (exactly, from the residual Gram matrix).

    Parameters
    ----------
    alphas : array-like of float >= 0, optional
        Penalty grid (scikit-learn ``Ridge`` meaning per member); default
        ``[0, 1e-3, ..., 1e3] * n_samples`` (see Notes).
    subsample_sizes : sequence of int or float, optional
        Member sizes (ints: rows; floats: fractions in (0, 1]); default
        ``(0.25, 0.5, 1.0)``.
    n_estimators : int, default=10
        Members per size; ensemble sizes ``1..n_estimators`` are scored.
    sketch : str, optional
        Sketch rows instead of subsampling (then ``subsample_sizes`` are sketch
        sizes); only ``cv="gcv"``, ``"split"`` or an int apply (CGCV is derived for
        subsamples, and a row sketch leaves no out-of-bag rows for ECV).
    feature_sketch : str, optional
        Also sketch the features of every member (see :class:`RidgeEnsemble`). With
        members on all rows (size 1.0), GCV is consistent for every ensemble size
        (Patil and LeJeune 2024) and the ensemble trick fills
        ``ridge_risk_estimates_``. ``cv="cgcv"`` requires members on all rows (where
        it equals GCV); ``"ecv"`` applies to subsampled members.
    feature_sketch_size : int or float, optional
        Columns of each feature sketch (int, or fraction of the features); default
        0.5 when ``feature_sketch`` is set.
    cv : {"cgcv", "gcv", "ecv", "split"} or int, default="cgcv"
        Risk estimate.
    fit_intercept : bool, default=True
    random_state : int, RandomState, Generator or None
    n_jobs : int, optional
        Members fitted at once, in threads (None: 1 unless in a joblib
        ``parallel_config`` context; -1: all cores). The members, hence the results,
        are the same for any value (up to rounding).
        For NumPy data each member's LAPACK calls then run on one thread.

    Attributes
    ----------
    risk_estimates_ : ndarray of shape (n_alphas, n_sizes, n_estimators)
        Estimated prediction risk (test mean squared error, noise included).
    risk_estimates_axes_ : dict
        ``{"alpha": alphas, "subsample_size": sizes (rows), "n_estimators": 1..M}``,
        the coordinates of the three axes, in order.
    best_params_ : dict
        ``alpha``, ``subsample_size`` (rows) and ``n_estimators`` of the smallest
        finite estimate; of estimates equal to within rounding (relative 1e-12), the
        first in grid order (smaller ``n_estimators`` first).
    best_score_ : float
        That estimate.
    best_estimator_ : RidgeEnsemble
        The ensemble at ``best_params_`` (built from the already fitted members for
        GCV/CGCV/ECV; refitted on all data for "split" and K-fold).
    equivalent_alphas_ : ndarray of shape (n_alphas, n_sizes) or None
        With ``feature_sketch`` and ``cv`` in {"gcv", "cgcv"}: the penalty ``mu`` of
        the unsketched ``Ridge`` equal to the ``M -> inf`` ensemble (degrees-of-freedom
        matching, see :func:`equivalent_ridge_penalty`); NaN for sizes below all
        rows. None otherwise.
    ridge_risk_estimates_ : ndarray of shape (n_alphas, n_sizes) or None
        The "ensemble trick" (Patil and LeJeune 2024): GCV extrapolated to
        ``M -> inf`` from the members' residual Gram matrix, an estimate of the
        prediction risk of ``Ridge(alpha=equivalent_alphas_)`` on all data, at the
        cost of the small sketched members; NaN where ``equivalent_alphas_`` is
        NaN, and everywhere for ``n_estimators = 1``. None when
        ``equivalent_alphas_`` is None.
    coef_, intercept_ : as in ``best_estimator_``
    n_features_in_ : int

    Notes
    -----
    The default alpha grid is ``[0, 1e-3, ..., 1e3] * n_samples`` (0 and 13
    log-spaced values). ``alpha`` multiplies ``||b||^2`` next to the *summed* squared
    error of each member (scikit-learn's ``Ridge``), and the same ``alpha`` is used
    for every subsample size, so a member on ``k`` rows has the per-row penalty
    ``alpha / k`` of the papers (which average the loss over the member's rows):
    ``alpha / n`` for members on all rows, larger for subsamples; in the papers'
    units the default grid is ``[0, 1e-3, ..., 1e3] * n / k``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.ensemble import RidgeEnsembleCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 50)); y = X @ rng.normal(size=50) + rng.normal(size=300)
    >>> cv = RidgeEnsembleCV(alphas=[0.1, 1.0, 10.0], subsample_sizes=[0.5, 1.0],
    ...                      n_estimators=5, random_state=0).fit(X, y)
    >>> cv.risk_estimates_.shape
    (3, 2, 5)
    >>> sorted(cv.best_params_)
    ['alpha', 'n_estimators', 'subsample_size']

    The ensemble trick: four members on 25 SRDCT features estimate the risk of the
    unsketched ridge at the equivalent penalties.

    >>> trick = RidgeEnsembleCV(alphas=[1.0, 10.0], subsample_sizes=[1.0], n_estimators=4,
    ...                         feature_sketch="srdct", feature_sketch_size=25, cv="gcv",
    ...                         random_state=0).fit(X, y)
    >>> trick.equivalent_alphas_.shape, trick.ridge_risk_estimates_.shape
    ((2, 1), (2, 1))
    """

    _parameter_constraints: dict = {
        "alphas": ["array-like", None],
        "subsample_sizes": ["array-like", None],
        "n_estimators": COUNT,
        "sketch": [StrOptions(set(KINDS)), None],
        "feature_sketch": [StrOptions(set(KINDS)), None],
        "feature_sketch_size": [*_SIZE, None],
        "cv": [StrOptions({"gcv", "cgcv", "ecv", "split"}),
               Interval(numbers.Integral, 2, None, closed="left")],
        "fit_intercept": ["boolean"],
        "random_state": SEED,
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(self, alphas=None, subsample_sizes=None, n_estimators=10, sketch=None,
                 feature_sketch=None, feature_sketch_size=None, cv="cgcv",
                 fit_intercept=True, random_state=None, n_jobs=None):
        self.alphas = alphas
        self.subsample_sizes = subsample_sizes
        self.n_estimators = n_estimators
        self.sketch = sketch
        self.feature_sketch = feature_sketch
        self.feature_sketch_size = feature_sketch_size
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _grid(self, n):
        if self.alphas is None:
            alphas = np.r_[0.0, np.logspace(-3, 3, 13)] * n
        else:
            alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
            if alphas.size == 0:
                raise ValueError("alphas is empty; give at least one penalty.")
            if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
                raise ValueError(f"alphas must be finite and >= 0 (0 = ridgeless); got "
                                 f"{alphas.tolist()}.")
        sizes = (0.25, 0.5, 1.0) if self.subsample_sizes is None else self.subsample_sizes
        sizes = list(np.ravel(np.asarray(sizes, dtype=object)))
        if not sizes:
            raise ValueError("subsample_sizes is empty; give at least one size.")
        return alphas, sizes

    @_fit_context(prefer_skip_nested_validation=True)  # make_sketch: no second check
    def fit(self, X, y):
        """Score the grid and keep the best ensemble.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            NumPy, CuPy or Dask. On a Dask array (subsampled members, ``cv`` in
            "gcv", "cgcv", "ecv"; ``sketch``, ``feature_sketch`` and held-out ``cv``
            raise a ``TypeError``) the grid is scored in two passes over the row
            chunks, without gathering the data: one sums each member's centred
            moments (members of every size at once; one factorisation per member
            gives the whole alpha grid), the other the ``M x M`` Gram matrices of
            the members' residuals for every alpha (and, for ECV, the out-of-bag
            sums). Risk estimates, the chosen parameters and the coefficients equal
            the in-memory fit's with the same seed (to rounding).
        y : array of shape (n_samples,)

        Returns
        -------
        self : RidgeEnsembleCV
        """
        X, y = _validate_Xy(self, X, y, accept_dask=True)
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"RidgeEnsembleCV needs at least 2 samples; got {n} sample.")
        on_dask = _is_dask(X)
        if on_dask:
            _refuse_on_dask(self)
            if self.cv not in ("gcv", "cgcv", "ecv"):
                raise TypeError(
                    f"RidgeEnsembleCV(cv={self.cv!r}) on a Dask array: held-out validation "
                    "refits the members per fold and has no distributed version; use "
                    "cv='cgcv', 'gcv' or 'ecv' (scored from two passes over the data), or "
                    "compute X first if it fits in memory.")
        if self.sketch is not None and self.cv in ("cgcv", "ecv"):
            why = ("the CGCV correction is derived for members fitted on subsets of the "
                   "rows, not on row sketches" if self.cv == "cgcv" else
                   "ECV needs out-of-bag rows, and a row sketch mixes every row into "
                   "every member")
            raise ValueError(f"cv={self.cv!r} is derived for subsampled members ({why}); "
                             "with sketch=... use cv='split' or an int (K-fold), or "
                             "subsample_sizes without sketch.")
        alphas, raw_sizes = self._grid(n)
        sizes = [_to_size(s) for s in raw_sizes]
        M = self.n_estimators
        Ms = np.arange(1, M + 1)
        rng = as_generator(self.random_state)
        xp = get_namespace(X, y)
        risk = np.full((alphas.size, len(sizes), M), np.nan)
        ks = [resolve_size(s, n) for s in sizes]
        if self.sketch is not None and self.cv == "gcv" and min(ks) < n:
            warnings.warn(
                "cv='gcv' with row sketches (sketch=...) is not consistent for finite "
                "ensembles: as with subsampling, the members' training residuals on all "
                "rows are not those of new data in the proportion GCV assumes (measured "
                "10-40 % above the true risk at n_estimators=1 with sketch sizes n/4 to "
                "n/2). Use cv='split' or an int (K-fold) for risk estimates you rely on.",
                UserWarning, stacklevel=user_stacklevel())
        fs = self.feature_sketch
        q = None if fs is None else _feature_size(self.feature_sketch_size, X.shape[1])
        if fs is not None and self.cv == "cgcv" and min(ks) < n:
            raise ValueError(
                "cv='cgcv' with feature_sketch=... is only available for members on all "
                "rows (subsample_sizes=[1.0], where it equals GCV, which is consistent "
                "for feature-sketched ensembles of any size): the CGCV correction is "
                "derived for subsampled ridge members, not for members that also sketch "
                "features. Use cv='ecv' (subsampled members), 'split' or an int (K-fold).")
        trick = fs is not None and self.sketch is None and self.cv in ("gcv", "cgcv")
        self.equivalent_alphas_ = self.ridge_risk_estimates_ = None
        if trick:
            self.equivalent_alphas_ = np.full((alphas.size, len(sizes)), np.nan)
            self.ridge_risk_estimates_ = np.full((alphas.size, len(sizes)), np.nan)
            lam = gram_spectrum(X, self.fit_intercept) if max(ks) == n else None
        kept = {}
        if on_dask:
            kept = self._score_dask(X, y, alphas, ks, risk, rng)
        elif self.cv in ("gcv", "cgcv", "ecv"):
            draws = [(*_draw(X, k, M, self.sketch, rng), _draw_features(X, q, M, fs, rng))
                     for k in ks]
            # every member of every size in one call: one pool of threads, and the
            # subsampled members' Gram matrices cut from shared products
            C, B, D = fit_members(X, y, alphas, _joined(d[0] for d in draws),
                                  sketch_ops=_joined(d[1] for d in draws),
                                  feature_ops=_joined(d[2] for d in draws),
                                  fit_intercept=self.fit_intercept, n_jobs=self.n_jobs)
            for j, k in enumerate(ks):
                idx, _, fops = draws[j]
                part = slice(j * M, (j + 1) * M)
                coefs, icpt, dfs = C[part], B[part], D[part]
                E = y[None, None, :] - predictions(xp, X, coefs, icpt)  # (M, A, n)
                if self.cv == "ecv":
                    oob = np.ones((n, M), dtype=bool)
                    for m, rows in enumerate(idx):
                        oob[rows, m] = False
                    risk[:, j, :] = ecv(E, oob, Ms)
                else:
                    G = to_numpy(residual_grams(xp, E))
                    dfs_h = to_numpy(dfs)
                    g, c = gcv_cgcv(G, dfs_h, n, k, Ms)
                    risk[:, j, :] = g if self.cv == "gcv" else c
                    if trick and k == n:
                        self._ensemble_trick(j, G, dfs_h, lam, n)
                kept[j] = (coefs, icpt, dfs, idx, fops)
        else:
            if self.cv == "split":
                tr, va = train_test_split(np.arange(n), test_size=0.2,
                                          random_state=int(rng.integers(2**31 - 1)))
                folds = [(tr, va)]
            else:
                if self.cv > n:
                    raise ValueError(f"cv={self.cv} folds exceed the {n} samples.")
                kf = KFold(self.cv, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
                folds = list(kf.split(np.zeros((n, 1))))
            acc = np.zeros_like(risk)
            n_val = 0
            for tr, va in folds:
                n_val += va.size
                trx, vax = move_to(tr, xp), move_to(va, xp)
                Xt, yt = xp.take(X, trx, axis=0), xp.take(y, trx, axis=0)
                Xv, yv = xp.take(X, vax, axis=0), xp.take(y, vax, axis=0)
                for j, k in enumerate(ks):
                    kt = max(1, min(tr.size, int(round(k * tr.size / n))))
                    idx, ops = _draw(Xt, kt, M, self.sketch, rng)
                    fops = _draw_features(Xt, q, M, fs, rng)
                    coefs, icpt, _ = fit_members(Xt, yt, alphas, idx, sketch_ops=ops,
                                                 feature_ops=fops,
                                                 fit_intercept=self.fit_intercept,
                                                 n_jobs=self.n_jobs)
                    E = yv[None, None, :] - predictions(xp, Xv, coefs, icpt)
                    acc[:, j, :] += subset_average_mse(to_numpy(residual_grams(xp, E)),
                                                       va.size, Ms) * va.size
            risk = acc / n_val
        self.risk_estimates_ = risk
        self.risk_estimates_axes_ = {"alpha": alphas, "subsample_size": np.asarray(ks),
                                     "n_estimators": Ms}
        finite = np.isfinite(risk)
        if not finite.any():
            raise ValueError("No finite risk estimate on the grid (for cv='ecv', every size "
                             "uses all rows, so there are no out-of-bag rows); add sizes "
                             "below 1.0 or use cv='cgcv'.")
        # The first grid point within rounding of the smallest risk: ties are exact in
        # theory where a subsample size is n (every member is the whole data, so the
        # ensemble size does not matter), and rounding (in memory or summed over Dask
        # chunks) must not pick the larger ensemble.
        a, j, mm = np.unravel_index(_first_near_min(risk), risk.shape)
        self.best_params_ = {"alpha": float(alphas[a]), "subsample_size": int(ks[j]),
                             "n_estimators": int(Ms[mm])}
        self.best_score_ = float(risk[a, j, mm])
        best = RidgeEnsemble(alpha=float(alphas[a]), n_estimators=int(Ms[mm]),
                             subsample_size=int(ks[j]), sketch=self.sketch,
                             feature_sketch=fs, feature_sketch_size=q,
                             fit_intercept=self.fit_intercept, random_state=self.random_state,
                             n_jobs=self.n_jobs)
        if j in kept:
            coefs, icpt, dfs, idx, fops = kept[j][:5]
            best.n_features_in_ = self.n_features_in_
            if hasattr(self, "feature_names_in_"):
                best.feature_names_in_ = self.feature_names_in_
            best._set_members(coefs[: mm + 1, a, :], icpt[: mm + 1, a], dfs[: mm + 1, a],
                              None if idx is None else idx[: mm + 1], int(ks[j]),
                              None if fops is None else fops[: mm + 1], q)
            best._calibrate(X, y, kept[j][5][a, : mm + 1, : mm + 1] if on_dask else None)
            best._equivalent_alpha(X, lam if trick else None)
        else:
            best.fit(X, y)
        self.best_estimator_ = best
        self.coef_ = best.coef_
        self.intercept_ = best.intercept_
        return self

    def _score_dask(self, X, y, alphas, ks, risk, rng):
        """Fill ``risk`` (n_alphas, n_sizes, M) from two passes over Dask ``X, y``;
        returns the members kept per size (with their residual Gram matrices)."""
        from ._dask import fit_members_dask, lazy_member_rows, residual_sums_dask

        n, dt, M = X.shape[0], X.dtype, self.n_estimators
        Ms = np.arange(1, M + 1)
        # the draws of the in-memory fit, in its order (one plan per size)
        plans = [member_plan(n, k, M, rng) for k in ks]
        C, B, D = fit_members_dask(X, y, alphas, plans, fit_intercept=self.fit_intercept)
        sums = residual_sums_dask(X, y, C, B, plans, oob=self.cv == "ecv")
        kept = {}
        for j, k in enumerate(ks):
            part = slice(j * M, (j + 1) * M)
            G, oob_sums = sums[j]
            if self.cv == "ecv":
                risk[:, j, :] = ecv_from_sums(oob_sums, Ms)
            else:
                g, c = gcv_cgcv(G, D[part].astype(dt), n, k, Ms)
                risk[:, j, :] = g if self.cv == "gcv" else c
            seed, counts = plans[j]
            idx = [lazy_member_rows(X, seed, m, counts[m]) for m in range(M)]
            kept[j] = (C[part].astype(dt), B[part].astype(dt), D[part].astype(dt), idx, None,
                       G)
        return kept

    def _ensemble_trick(self, j, G, dfs, lam, n):
        """GCV of the ``M -> inf`` feature-sketched ensemble on all rows and its
        equivalent penalty, for every alpha (column ``j`` of the trick attributes).

        The training error of an ``M'``-subset average is ``diag/M' + (1 - 1/M')
        off`` (exact), so ``M' -> inf`` leaves the mean off-diagonal residual inner
        product ``off``; the ensemble's degrees of freedom are the members' mean.
        """
        M = G.shape[-1]
        t = dfs.mean(axis=0) / n                                   # (A,)
        intercept = float(self.fit_intercept)
        self.equivalent_alphas_[:, j] = [df_matched_penalty(lam, n * v - intercept)
                                         for v in t]
        if M < 2:
            return
        off = subset_average_mse(G, n, [np.inf])[:, 0]              # M' -> inf
        with np.errstate(divide="ignore", invalid="ignore"):
            est = np.where(t < 1, off / (1 - t) ** 2, np.nan)
        self.ridge_risk_estimates_[:, j] = est

    def predict(self, X):
        """Predict with ``best_estimator_``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)

        Returns
        -------
        y_pred : array of shape (n_samples,)
        """
        check_is_fitted(self, "best_estimator_")
        X = validate_estimator_data(self, X, reset=False, accept_dask=True)[0]
        return self.best_estimator_.predict(X)


def _to_size(s):
    if isinstance(s, (bool, np.bool_)):
        raise TypeError(f"subsample size {s!r} is not a number.")
    if isinstance(s, numbers.Integral):
        return int(s)
    if isinstance(s, numbers.Real):
        return float(s)
    raise TypeError(f"subsample sizes must be ints (rows) or floats in (0, 1]; got {s!r}.")
