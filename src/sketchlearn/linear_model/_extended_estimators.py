"""ExtendedGaussMarkovRegressor and ExtendedGaussMarkovCV: least variance under a bound on
the bias (the estimators over :mod:`._extended`)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import get_namespace, is_cupy_namespace, to_numpy
from .._validation import NON_NEGATIVE, LinearPredictorMixin, validate_estimator_data
from ._extended import (
    BIAS_SPACES,
    NORMS,
    filter_factors,
    operator_tau,
    row_space_tau,
    tau_max,
    tau_min,
)

__all__ = ["ExtendedGaussMarkovRegressor", "ExtendedGaussMarkovCV"]


def _centered_svd(X, y, fit_intercept, xp):
    """SVD of the (centered) design; columns' means and y's mean for the intercept."""
    if fit_intercept:
        x_mean, y_mean = xp.mean(X, axis=0), xp.mean(y)
        Xc, yc = X - x_mean, y - y_mean
    else:
        x_mean, y_mean = xp.zeros(X.shape[1], dtype=X.dtype), xp.asarray(0.0, dtype=X.dtype)
        Xc, yc = X, y
    U, s, Vt = xp.linalg.svd(Xc, full_matrices=False)
    keep = s > max(X.shape) * float(np.finfo(np.dtype(str(X.dtype).split(".")[-1])).eps) * \
        (float(s[0]) if s.shape[0] else 0.0)
    r = int(xp.sum(xp.astype(keep, xp.int32)))
    return U[:, :r], s[:r], Vt[:r, :], x_mean, y_mean, yc


class ExtendedGaussMarkovRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Least-variance linear estimator under a Schatten-norm bound on its bias.

    The extended Gauss-Markov theorem: among linear estimators ``coef = A y``,
    minimise the variance ``sigma2 ||A||_F^2`` subject to ``||A X - I||_S <= tau``.
    With ``X = U diag(s) V^T`` (centered when ``fit_intercept``) the optimum is the
    spectral filter ``A = V diag(d) U^T``:

    * ``"frobenius"``: ``d = s / (s^2 + lam)`` -- ridge regression, with ``lam``
      set by ``||lam / (s^2 + lam)||_2 = tau``;
    * ``"nuclear"``: ``d = min(c s, 1 / s)`` with ``sum max(0, 1 - c s^2) = tau``:
      weak directions are shrunk or dropped, strong ones stay unbiased;
    * ``"spectral"``: ``d = (1 - tau) / s``, OLS shrunk uniformly.

    ``tau = 0`` is OLS (the classical Gauss-Markov estimator). When ``X`` has rank
    ``r`` below ``p = n_features``, ``bias_space`` says where the bias is measured;
    null-space directions cannot be estimated and get coefficient 0 either way.

    Parameters
    ----------
    norm : {"nuclear", "frobenius", "spectral"}, default="nuclear"
        Schatten norm of the bias bound.
    tau : float >= 0, default=0.0
        Bias bound. Useful range with ``bias_space="row"``: ``[0, sqrt(r))``
        Frobenius, ``[0, r)`` nuclear, ``[0, 1)`` spectral for a design of rank
        ``r``; with ``"full"`` and ``p`` features: ``[sqrt(p - r), sqrt(p))``
        Frobenius, ``[p - r, p)`` nuclear, and spectral ``[0, 1)`` if ``r = p``
        but only ``tau >= 1`` (the zero estimator) if ``r < p``. At or above the
        top the coefficients are 0; below the bottom ``fit`` raises a
        ``ValueError``.
    fit_intercept : bool, default=True
        Center ``X`` and ``y`` and fit an unpenalised intercept.
    bias_space : {"row", "full"}, default="row"
        Where the bound applies when ``X`` (centered with ``fit_intercept``) has
        rank ``r < p``; both agree when ``r = p``.

        - ``"row"``: on the row space of ``X``, the ``r`` directions any linear
          estimator can estimate. ``tau = 0`` is the minimum-norm least-squares
          fit on every design, and ``tau`` keeps its meaning when ``r`` changes
          (a cross-validation fold, ``n_samples < n_features``).
        - ``"full"``: on the whole ``p x p`` operator ``A X - I``, as in the
          paper. It is ``-I`` on the ``p - r`` null directions whatever ``A``, so
          those count ``p - r`` in the nuclear norm and ``p - r`` in the squared
          Frobenius norm, and make every spectral ``tau < 1`` infeasible.

        The default is ``"row"`` because the null-space part is a constant no
        estimator can change: for the Frobenius and nuclear norms ``"full"``
        reaches exactly the same estimators with ``tau`` shifted by that
        constant, while it would make the default ``tau=0`` (and any spectral
        ``tau < 1``) an error on every rank-deficient design.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept.
    singular_values_ : ndarray of shape (rank,)
        Singular values of the (centered) design.
    shrinkage_ : ndarray of shape (rank,)
        ``d * s`` per singular direction (1 keeps the direction unbiased).
    alpha_ : float or None
        The equivalent ``Ridge(alpha)`` penalty for ``norm="frobenius"``.
    dof_ : float
        Effective degrees of freedom ``sum(d * s)`` (plus 1 with an intercept).
    rank_ : int
        Numerical rank ``r`` of the (centered) design.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    ExtendedGaussMarkovCV : Picks ``norm`` and ``tau`` by GCV or leave-one-out.
    GaussMarkovRegressor : The unbiased estimator with full inference.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import ExtendedGaussMarkovRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 5)) * np.array([10.0, 5.0, 1.0, 0.1, 0.01])
    >>> y = X @ np.ones(5) + rng.normal(size=100)
    >>> model = ExtendedGaussMarkovRegressor(norm="nuclear", tau=1.5).fit(X, y)
    >>> np.round(model.shrinkage_, 2)   # the two weakest directions are cut
    array([1. , 1. , 1. , 0.5, 0. ])

    A rank-deficient design: the fifth column repeats the fourth, so ``r = 4``.
    The full ``5 x 5`` bias operator spends 1 of a nuclear budget on the null
    direction, so ``tau=2.5`` there is ``tau=1.5`` on the row space:

    >>> X5 = np.column_stack([X[:, :4], X[:, 3]])
    >>> row = ExtendedGaussMarkovRegressor(tau=1.5).fit(X5, y)
    >>> full = ExtendedGaussMarkovRegressor(tau=2.5, bias_space="full").fit(X5, y)
    >>> full.rank_, bool(np.allclose(row.coef_, full.coef_))
    (4, True)
    >>> ExtendedGaussMarkovRegressor(norm="spectral", tau=0.5,
    ...                              bias_space="full").fit(X5, y)
    Traceback (most recent call last):
    ...
    ValueError: tau=0.5 is infeasible for the spectral norm of the p x p bias operator: ...
    """

    _parameter_constraints: dict = {
        "norm": [StrOptions({"nuclear", "frobenius", "spectral"})],
        "tau": NON_NEGATIVE,
        "fit_intercept": ["boolean"],
        "bias_space": [StrOptions(set(BIAS_SPACES))],
    }

    def __init__(self, norm="nuclear", tau=0.0, fit_intercept=True, bias_space="row"):
        self.norm = norm
        self.tau = tau
        self.fit_intercept = fit_intercept
        self.bias_space = bias_space

    @_fit_context(prefer_skip_nested_validation=True)  # filter_factors: no second check
    def fit(self, X, y):
        """Fit the filtered least-squares estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design matrix.
        y : array-like of shape (n_samples,)
            Responses.

        Returns
        -------
        self : ExtendedGaussMarkovRegressor
            Fitted estimator.
        """
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True)
        xp = get_namespace(X)
        U, s, Vt, x_mean, y_mean, yc = _centered_svd(X, y, self.fit_intercept, xp)
        s_host = to_numpy(s).astype(np.float64)
        n_features = X.shape[1] if self.bias_space == "full" else None
        d = filter_factors(s_host, self.norm, float(self.tau), n_features)
        d_xp = xp.asarray(d.astype(np.dtype(str(X.dtype).split(".")[-1])))
        if is_cupy_namespace(xp):
            d_xp = xp.asarray(d_xp)
        self.coef_ = Vt.T @ (d_xp * (U.T @ yc))
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.singular_values_ = s
        self.rank_ = int(s_host.size)
        self.shrinkage_ = d * s_host
        self.dof_ = float(np.sum(self.shrinkage_)) + int(self.fit_intercept)
        self.alpha_ = None
        tau_row = row_space_tau(self.norm, float(self.tau), s_host.size, n_features)
        if self.norm == "frobenius" and 0 < tau_row < tau_max("frobenius", s_host.size):
            self.alpha_ = float(np.median(s_host / d - s_host**2))
        return self


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class ExtendedGaussMarkovCV(ExtendedGaussMarkovRegressor):
    """Extended Gauss-Markov estimator with the norm and bound chosen by GCV or LOO.

    All three estimators are spectral filters of one SVD, so the whole
    ``(norm, tau)`` grid costs one SVD plus ``O(rank)`` per grid point for GCV
    (``O(n_samples * rank)`` for leave-one-out).

    Parameters
    ----------
    norms : tuple of str, default=("frobenius", "nuclear", "spectral")
        Norms to consider.
    taus : int or array-like, default=30
        An int gives that many bounds per norm, 0 (OLS) included: for Frobenius
        those of ridge penalties ``lam`` spread geometrically from
        ``1e-3 min(s^2)`` to ``1e3 max(s^2)``, for nuclear those of multipliers
        ``c`` from ``1e-3 / max(s^2)`` to ``1 / min(s^2)``, for spectral
        ``1e-4 .. 0.999``; an array gives the same bounds for every norm. With
        ``bias_space="full"`` and a rank-deficient design the int grid holds the
        bounds of the full operator with the same row-space budgets (so 0 becomes
        ``p - r`` nuclear, ``sqrt(p - r)`` Frobenius), and the spectral grid is
        the single feasible bound 1 (the zero estimator); an array with a bound
        below the smallest feasible one raises a ``ValueError``.
    cv : {"gcv", "loo"}, default="gcv"
        Generalized cross-validation ``n RSS / (n - dof)^2``, or the leave-one-out
        shortcut ``mean((r_i / (1 - h_ii))^2)`` (exact for the Frobenius/ridge
        filter, the usual linear-smoother approximation for the others).
    fit_intercept : bool, default=True
        Center ``X`` and ``y`` and fit an intercept.
    bias_space : {"row", "full"}, default="row"
        Bound the bias on the row space of ``X`` or on the whole ``p x p``
        operator, as in :class:`ExtendedGaussMarkovRegressor`; ``tau_`` and
        ``cv_results_["tau"]`` are bounds in that space.

    Attributes
    ----------
    norm_ : str
        Chosen norm.
    tau_ : float
        Chosen bound.
    best_score_ : float
        Its criterion value (an estimate of the prediction mean squared error).
    cv_results_ : dict of ndarrays
        ``"norm"``, ``"tau"``, ``"score"`` and ``"dof"`` for every grid point.
    coef_, intercept_, singular_values_, rank_, shrinkage_, alpha_, dof_
        As in :class:`ExtendedGaussMarkovRegressor`, for the chosen point.
    n_features_in_ : int
        Number of features seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import ExtendedGaussMarkovCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 20)) * np.geomspace(10, 0.01, 20)
    >>> y = X @ np.ones(20) + rng.normal(size=200)
    >>> model = ExtendedGaussMarkovCV().fit(X, y)
    >>> model.norm_ in ("frobenius", "nuclear", "spectral"), model.cv_results_["score"].shape
    (True, (90,))

    With 30 features and 20 samples the centered design has rank 19; on the full
    ``30 x 30`` bias operator every nuclear bound is at least ``30 - 19 = 11``:

    >>> X_wide = rng.normal(size=(20, 30))
    >>> y_wide = X_wide @ np.ones(30) + rng.normal(size=20)
    >>> wide = ExtendedGaussMarkovCV(norms=("nuclear",), bias_space="full")
    >>> wide = wide.fit(X_wide, y_wide)
    >>> wide.rank_, float(wide.cv_results_["tau"].min())
    (19, 11.0)
    """

    _parameter_constraints: dict = {
        "norms": ["array-like"],
        "taus": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "cv": [StrOptions({"gcv", "loo"})],
        "fit_intercept": ["boolean"],
        "bias_space": [StrOptions(set(BIAS_SPACES))],
    }

    def __init__(self, norms=NORMS, taus=30, cv="gcv", fit_intercept=True, bias_space="row"):
        self.norms = norms
        self.taus = taus
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.bias_space = bias_space

    def _grid(self, norm, s, n_features=None):
        """Bounds to try: 0 (OLS) and ``taus - 1`` more, spread over the spectrum ``s``.

        A grid even in ``tau`` leaves the Frobenius and nuclear paths coarse where
        whole blocks of directions switch off, so their bounds come from multipliers
        spread geometrically across ``s^2`` (ridge's ``lam``, the nuclear ``c``).
        With ``n_features`` (the full operator) the row-space bounds are mapped to
        the full operator's (:func:`operator_tau`), and given bounds are checked.
        """
        if isinstance(self.taus, numbers.Integral):
            row = self._row_grid(norm, s)
            if norm == "spectral" and tau_min(norm, s.size, n_features) > 0:
                return np.ones(1)  # r < p: every spectral bound below 1 is infeasible
            return operator_tau(norm, row, s.size, n_features)
        taus = np.asarray(self.taus, dtype=np.float64).ravel()
        if taus.size == 0 or not np.all(np.isfinite(taus)) or np.any(taus < 0):
            raise ValueError("taus must be non-negative finite numbers (or an int count).")
        lowest = tau_min(norm, s.size, n_features)
        if np.any(taus < lowest):
            raise ValueError(
                f"taus holds {float(taus.min())!r} < {lowest:.6g}, the smallest feasible {norm} "
                f"bound on the p x p bias operator of this design (rank {s.size} < p = "
                f"{n_features}: its null directions carry bias 1 under every estimator). "
                "Give bounds >= that, an int count, or bias_space='row'.")
        return taus

    def _row_grid(self, norm, s):
        """The int grid of row-space bounds (0 first) over the spectrum ``s``."""
        count = int(self.taus) - 1
        if count < 1 or s.size == 0:
            return np.zeros(1)
        s2 = s * s
        if norm == "frobenius":
            lam = np.geomspace(s2.min() * 1e-3, s2.max() * 1e3, count)
            taus = np.sqrt(np.sum((lam[:, None] / (s2 + lam[:, None])) ** 2, axis=1))
        elif norm == "nuclear":
            c = np.geomspace(1e-3 / s2.max(), 1.0 / s2.min(), count + 1)[:-1]
            taus = np.sum(np.maximum(0.0, 1.0 - c[:, None] * s2), axis=1)
        else:
            taus = np.geomspace(1e-4, 0.999, count)
        return np.concatenate([[0.0], np.minimum(taus, tau_max(norm, s.size))])

    @_fit_context(prefer_skip_nested_validation=True)  # filter_factors: no second check
    def fit(self, X, y):
        """Fit every grid point from one SVD and keep the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design matrix.
        y : array-like of shape (n_samples,)
            Responses.

        Returns
        -------
        self : ExtendedGaussMarkovCV
            Fitted estimator.
        """
        norms = tuple(self.norms)
        bad = [nm for nm in norms if nm not in NORMS]
        if not norms or bad:
            raise ValueError(f"norms must be a non-empty subset of {NORMS}; got {norms!r}.")
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True)
        xp = get_namespace(X)
        U, s, Vt, x_mean, y_mean, yc = _centered_svd(X, y, self.fit_intercept, xp)
        n = X.shape[0]
        n_features = X.shape[1] if self.bias_space == "full" else None
        s_host = to_numpy(s).astype(np.float64)
        uty = to_numpy(U.T @ yc).astype(np.float64)
        rss_out = float(to_numpy(xp.sum(yc * yc))) - float(np.sum(uty**2))  # outside range(U)
        if self.cv == "loo":
            U2 = to_numpy(U * U).astype(np.float64)
            yc_host = to_numpy(yc).astype(np.float64)
            U_host = to_numpy(U).astype(np.float64)
        rows = []
        for norm in norms:
            for tau in self._grid(norm, s_host, n_features):
                keep = filter_factors(s_host, norm, float(tau), n_features) * s_host
                dof = float(np.sum(keep)) + int(self.fit_intercept)
                if self.cv == "gcv":
                    rss = max(rss_out, 0.0) + float(np.sum(((1.0 - keep) * uty) ** 2))
                    score = n * rss / (n - dof) ** 2 if dof < n else np.inf
                else:
                    resid = yc_host - U_host @ (keep * uty)
                    h = U2 @ keep + (1.0 / n if self.fit_intercept else 0.0)
                    score = float(np.mean((resid / np.maximum(1.0 - h, 1e-12)) ** 2)) \
                        if np.all(h < 1.0 - 1e-12) else np.inf
                rows.append((norm, float(tau), score, dof))
        scores = np.array([r[2] for r in rows])
        if not np.any(np.isfinite(scores)):
            raise ValueError("Every grid point leaves no residual degrees of freedom (n_samples "
                             f"= {n}); use more samples or larger taus.")
        best = int(np.argmin(scores))
        self.cv_results_ = {"norm": np.array([r[0] for r in rows]),
                            "tau": np.array([r[1] for r in rows]), "score": scores,
                            "dof": np.array([r[3] for r in rows])}
        self.norm_, self.tau_, self.best_score_ = rows[best][0], rows[best][1], rows[best][2]
        d = filter_factors(s_host, self.norm_, self.tau_, n_features)
        d_xp = xp.asarray(d.astype(np.dtype(str(X.dtype).split(".")[-1])))
        self.coef_ = Vt.T @ (d_xp * (U.T @ yc))
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.singular_values_ = s
        self.rank_ = int(s_host.size)
        self.shrinkage_ = d * s_host
        self.dof_ = float(np.sum(self.shrinkage_)) + int(self.fit_intercept)
        self.alpha_ = None
        tau_row = row_space_tau(self.norm_, self.tau_, s_host.size, n_features)
        if self.norm_ == "frobenius" and 0 < tau_row < tau_max("frobenius", s_host.size):
            self.alpha_ = float(np.median(s_host / d - s_host**2))
        return self
