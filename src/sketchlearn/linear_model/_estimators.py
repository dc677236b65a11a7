"""scikit-learn estimators of the linear_model subpackage: Gauss-Markov, extended
Gauss-Markov, and linear stochastic approximation (generic, streaming least squares,
TD(0) policy evaluation)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.stats
from array_api_compat import is_cupy_array
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace, is_cupy_namespace, move_to, to_compute_device, to_numpy
from .._random import as_generator
from .._validation import (
    LinearPredictorMixin,
    check_array,
    check_scalar,
    validate_estimator_data,
)
from ._extended import (
    BIAS_SPACES,
    NORMS,
    filter_factors,
    operator_tau,
    row_space_tau,
    tau_max,
    tau_min,
)
from ._gauss_markov import gauss_markov
from ._lsa import (
    ChainState,
    Samples,
    advance,
    auto_step,
    check_lsa_samples,
    estimate,
    run_bootstrap,
    stream_index,
)
from ._robust import COV_TYPES, check_hypothesis, normal_or_t_quantile, t_test, wald_test

__all__ = [
    "GaussMarkovRegressor",
    "ExtendedGaussMarkovRegressor",
    "ExtendedGaussMarkovCV",
    "LinearStochasticApproximation",
    "LSARegressor",
    "TD0Evaluator",
]


def _linear_operator(n, matvec, xp):
    """A symmetric matrix-free operator on vectors of length ``n`` (SciPy or CuPy)."""
    if is_cupy_namespace(xp):
        from cupyx.scipy.sparse.linalg import LinearOperator
    else:
        from scipy.sparse.linalg import LinearOperator

    def apply(v):
        squeeze = v.ndim == 1
        out = matvec(v[:, None] if squeeze else v)
        return out[:, 0] if squeeze else out

    return LinearOperator((n, n), matvec=apply, rmatvec=apply, matmat=apply,
                          dtype=np.float64)


class GaussMarkovRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Best linear unbiased estimator: OLS, WLS, GLS and feasible GLS with inference.

    Fits ``y = intercept + X coef + e`` with ``E[e] = 0`` and
    ``Cov(e) = sigma2 * Sigma``. By the Gauss-Markov theorem, least squares on the
    whitened model ``L^{-1} y`` (``Sigma = L L^T``) has the smallest variance among
    linear unbiased estimators. The fit never forms the normal equations: after
    whitening, the intercept is split off by a Householder reflection, the columns
    are scaled by powers of two and factored by column-pivoted Householder QR
    (an SVD on CuPy); standard errors come from the inverse triangular factor;
    float64 NumPy fits are polished by iterative refinement with extended-precision
    residuals. This reaches the NIST StRD certified values on Longley (14 digits)
    and Filip (see the benchmarks), where the normal equations get none.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Estimate an intercept.
    sigma : None, "ar1", callable or array, default=None
        Error covariance up to the scale ``sigma2`` (which is estimated): None
        (independent, equal variances: OLS; WLS with ``sample_weight``), a vector
        of ``n_samples`` variances, an ``(n_samples, n_samples)`` SPD matrix,
        ``"ar1"`` (stationary AR(1) errors in row order, Prais-Winsten whitening),
        or a callable ``sigma(n_samples)`` returning a vector or matrix.
    rho : float in (-1, 1), optional
        AR(1) coefficient for ``sigma="ar1"``; None estimates it by feasible GLS
        (lag-one autocorrelation of the residuals, iterated).
    rcond : float, optional
        Rank tolerance on the pivoted-QR diagonal of the whitened, intercept-free,
        unit-norm-scaled design; default ``max(n_samples, n_features) * eps``. A
        rank-deficient design gets the minimum-norm solution and a warning.
    refine : bool, default=True
        Iterative refinement in extended precision for float64 NumPy input.
    max_iter : int, default=20
        Feasible-GLS iterations.
    tol : float, default=1e-8
        Feasible-GLS tolerance on ``rho``.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster"}, \
default="nonrobust"
        Covariance of the estimates, as statsmodels' ``fit(cov_type=...)``:
        ``"nonrobust"`` trusts ``sigma``; ``"HC0"``-``"HC3"`` are White's
        heteroskedasticity-consistent sandwiches, ``"HAC"`` Newey-West's
        heteroskedasticity- and autocorrelation-consistent one, ``"cluster"``
        the one-way cluster-robust one. They are formed from the whitened residuals
        and design (WLS/GLS as in statsmodels). ``bse_``, ``cov_params_``,
        :meth:`conf_int`, :meth:`summary`, :meth:`t_test`, :meth:`f_test` and
        :meth:`wald_test` follow it.
    cov_kwds : dict, optional
        Options of ``cov_type``, statsmodels' names and defaults: ``"HAC"`` needs
        ``maxlags`` (``0 <= maxlags < n_samples``) and takes ``kernel``
        (``"bartlett"``, default, or ``"uniform"``) and ``use_correction``
        (default False: times ``n/(n-k)``); ``"cluster"`` needs ``groups`` (one
        label per sample, at least two clusters) and takes ``use_correction``
        (default True: times ``G/(G-1) (n-1)/(n-k)``) and ``df_correction``
        (default True: t and F with ``G - 1`` dof).
    use_t : bool, optional
        Student t and F reference distributions (True) or normal and chi-square
        (False). Default as statsmodels: True for ``"nonrobust"``, False for the
        robust covariances.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Estimated coefficients.
    intercept_ : float
        Estimated intercept (0.0 when ``fit_intercept=False``).
    bse_ : ndarray of shape (n_features,)
        Standard errors of ``coef_`` (under ``cov_type``).
    intercept_bse_ : float
        Standard error of ``intercept_``.
    cov_params_ : ndarray of shape (n_features, n_features)
        Estimated covariance of ``coef_`` (``sigma2_`` times the pseudo-inverse of
        the whitened Gram matrix, computed from the factorization; the sandwich
        of ``cov_type`` when it is robust).
    use_t_ : bool
        Whether t and F distributions are used (see ``use_t``).
    df_inference_ : int
        Degrees of freedom of those distributions: ``dof_resid_``, or the number
        of clusters minus one for ``cov_type="cluster"`` (``df_correction``).
    sigma2_ : float
        Unbiased estimate of the error scale: whitened RSS / ``dof_resid_``.
    residuals_ : ndarray of shape (n_samples,)
        ``y - intercept_ - X coef_`` on the training data (not whitened).
    leverage_ : ndarray of shape (n_samples,)
        Diagonal of the (whitened) hat matrix.
    rank_ : int
        Numerical rank of the design, intercept included.
    dof_resid_ : int
        ``n_samples - rank_``.
    rho_ : float or None
        AR(1) coefficient used (``sigma="ar1"``), else None.
    n_iter_ : int
        Number of weighted least-squares fits: 1, or the feasible-GLS iterations.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` had string column names.

    See Also
    --------
    gauss_markov : The same fit as a function returning a Bunch.
    ExtendedGaussMarkovRegressor : Trades bias for variance under a bias bound.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import GaussMarkovRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = 1.0 + X @ np.array([2.0, -1.0]) + 0.1 * rng.normal(size=200)
    >>> model = GaussMarkovRegressor().fit(X, y)
    >>> np.round(model.coef_, 1), round(model.intercept_, 1)
    (array([ 2., -1.]), 1.0)
    >>> lo, hi = model.conf_int(0.05)[0]
    >>> bool(lo < 2.0 < hi)
    True
    >>> robust = GaussMarkovRegressor(cov_type="HC3").fit(X, y)
    >>> robust.t_test([[0.0, 1.0, 1.0]], q=[1.0]).pvalue.shape  # coef_1 + coef_2 = 1
    (1,)
    """

    _predict_keeps_longdouble = True  # long double data keeps its precision

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "sigma": [None, StrOptions({"ar1"}), callable, "array-like"],
        "rho": [None, Interval(numbers.Real, -1, 1, closed="neither")],
        "rcond": [None, Interval(numbers.Real, 0, None, closed="left")],
        "refine": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "cov_type": [StrOptions(set(COV_TYPES))],
        "cov_kwds": [None, dict],
        "use_t": [None, "boolean"],
    }

    def __init__(self, fit_intercept=True, sigma=None, rho=None, rcond=None, refine=True,
                 max_iter=20, tol=1e-8, cov_type="nonrobust", cov_kwds=None, use_t=None):
        self.fit_intercept = fit_intercept
        self.sigma = sigma
        self.rho = rho
        self.rcond = rcond
        self.refine = refine
        self.max_iter = max_iter
        self.tol = tol
        self.cov_type = cov_type
        self.cov_kwds = cov_kwds
        self.use_t = use_t

    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design matrix (NumPy or CuPy).
        y : array-like of shape (n_samples,)
            Responses.
        sample_weight : array-like of shape (n_samples,), optional
            WLS weights: row ``i`` has error variance ``sigma2 / w_i``. Zero
            weights drop a row from the fit (its residual is still reported).

        Returns
        -------
        self : GaussMarkovRegressor
            Fitted estimator.
        """
        self._validate_params()
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True,
                                       keep_longdouble=True)
        xp = get_namespace(X)
        if sample_weight is not None and not is_cupy_array(sample_weight):
            sample_weight = xp.asarray(np.asarray(sample_weight, dtype=np.float64))
        res = gauss_markov(X, y, sigma=self.sigma, sample_weight=sample_weight,
                           fit_intercept=self.fit_intercept, rho=self.rho, rcond=self.rcond,
                           refine=self.refine, max_iter=self.max_iter, tol=self.tol,
                           cov_type=self.cov_type, cov_kwds=self.cov_kwds, use_t=self.use_t)
        self.coef_ = res.coef
        self.intercept_ = res.intercept
        self.bse_ = res.bse
        self.intercept_bse_ = res.intercept_bse
        self.cov_params_ = res.cov_params
        self.sigma2_ = res.sigma2
        self.residuals_ = res.residuals
        self.leverage_ = res.leverage
        self.rank_ = res.rank
        self.dof_resid_ = res.dof_resid
        self.rho_ = res.rho
        self.n_iter_ = res.n_iter
        self._intercept_cov = res.intercept_cov
        self._basis = res.basis
        self.use_t_ = res.use_t
        self.df_inference_ = res.df_inference
        self._cov_full = res.cov_params_full
        self._fit_stats(res)
        return self

    def _fit_stats(self, res):
        """R^2 (centered with an intercept, else uncentered), adjusted R^2 and F, whitened."""
        xp = get_namespace(res.whitened_residuals)
        rss = float(xp.sum(res.whitened_residuals**2))
        tss = float(res.whitened_tss)
        df_model = self.rank_ - int(self.fit_intercept)
        n = self.residuals_.shape[0]
        r2 = 1.0 - rss / tss if tss > 0 else float("nan")
        denom = n - int(self.fit_intercept)
        r2_adj = 1.0 - (1.0 - r2) * denom / self.dof_resid_ if self.dof_resid_ > 0 \
            else float("nan")
        p = self.n_features_in_
        if (self.cov_type != "nonrobust" and p > 0 and self.dof_resid_ > 0
                and np.all(np.isfinite(self._cov_full))):
            # statsmodels' robust F: the Wald test of all slopes under the sandwich (a
            # singular sandwich lowers the dof, as there; t_test/f_test warn about it)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ft = wald_test(np.eye(p + int(self.fit_intercept))[int(self.fit_intercept):],
                               np.zeros(p), self._theta(), self._cov_full,
                               self.df_inference_, use_f=True)
            fvalue, f_pvalue, df_model = ft.statistic, ft.pvalue, ft.df_num
        elif self.cov_type == "nonrobust" and df_model > 0 and self.dof_resid_ > 0 and rss > 0:
            fvalue = ((tss - rss) / df_model) / (rss / self.dof_resid_)
            f_pvalue = float(scipy.stats.f.sf(fvalue, df_model, self.dof_resid_))
        else:
            fvalue = f_pvalue = float("nan")
        self._stats = {"r2": r2, "r2_adj": r2_adj, "fvalue": fvalue, "f_pvalue": f_pvalue,
                       "df_model": df_model}


    def _t_quantile(self, alpha):
        alpha = check_scalar(alpha, "alpha", lower=0, upper=1, lower_inclusive=False,
                             upper_inclusive=False)
        if self.dof_resid_ <= 0:
            return float("nan")
        return normal_or_t_quantile(alpha, self.df_inference_, self.use_t_)

    def _theta(self):
        """``[intercept_, coef_]`` (or ``coef_``) as float64 NumPy."""
        coef = np.asarray(to_numpy(self.coef_), dtype=np.float64)
        if self.fit_intercept:
            return np.concatenate([[float(self.intercept_)], coef])
        return coef

    def _hypothesis(self, R, q):
        check_is_fitted(self)
        p = self.n_features_in_
        if self.fit_intercept:
            R, q = check_hypothesis(R, q, (p + 1, p), f"{p + 1} parameters (intercept first, "
                                    f"then {p} coefficients; or {p} columns for the "
                                    "coefficients alone)")
            if R.shape[1] == p:
                R = np.concatenate([np.zeros((R.shape[0], 1)), R], axis=1)
        else:
            R, q = check_hypothesis(R, q, (p,), f"{p} coefficients (no intercept)")
        return R, q

    def t_test(self, R, q=None):
        """Tests of each linear hypothesis ``R[i] @ theta = q[i]`` (t or z tests).

        ``theta`` is ``[intercept_, *coef_]`` with an intercept (``R`` may also
        have ``n_features`` columns, then it involves the coefficients alone), else
        ``coef_``. Uses the covariance of ``cov_type`` and the t distribution with
        ``df_inference_`` dof when ``use_t_``, else the normal: the numbers of
        statsmodels' ``results.t_test((R, q))``.

        Parameters
        ----------
        R : array-like of shape (m, n_params) or (n_params,)
            Restrictions, one per row, linearly independent.
        q : array-like of shape (m,), optional
            Hypothesised values; default zeros.

        Returns
        -------
        result : TTestResult
            ``effect`` (``R theta``), ``sd``, ``statistic``, ``pvalue`` (two-sided),
            ``df_denom``, ``distribution`` and ``conf_int(alpha)``.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 2))
        >>> y = 1.0 + X @ np.array([2.0, 2.0]) + rng.normal(size=100)
        >>> res = GaussMarkovRegressor().fit(X, y).t_test([[0.0, 1.0, -1.0]])  # b1 = b2
        >>> res.distribution, res.df_denom, bool(res.pvalue[0] > 0.05)
        ('t', 97, True)
        """
        R, q = self._hypothesis(R, q)
        return t_test(R, q, self._theta(), self._cov_full, self.df_inference_, self.use_t_)

    def wald_test(self, R, q=None, use_f=None):
        """Joint Wald test of ``R @ theta = q`` under the fit's ``cov_type``.

        The statistic ``W = (R theta - q)^T (R V R^T)^{-1} (R theta - q)`` is
        referred to ``chi2(m)``, or ``W / m`` to ``F(m, df_inference_)`` when
        ``use_f`` (default: ``use_t_``), as statsmodels' ``wald_test``.

        Parameters
        ----------
        R : array-like of shape (m, n_params) or (n_params,)
            Restrictions (see :meth:`t_test` for the columns), linearly independent.
        q : array-like of shape (m,), optional
            Hypothesised values; default zeros.
        use_f : bool, optional
            F instead of chi-square; default ``use_t_``.

        Returns
        -------
        result : WaldTestResult
            ``statistic``, ``pvalue``, ``df_num``, ``df_denom`` (None for the
            chi-square) and ``distribution``.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 2)); y = X[:, 0] + rng.normal(size=100)
        >>> res = GaussMarkovRegressor(cov_type="HC1").fit(X, y).wald_test(np.eye(2))
        >>> res.distribution, res.df_num, bool(res.pvalue < 1e-6)
        ('chi2', 2, True)
        """
        R, q = self._hypothesis(R, q)
        if use_f is not None and not isinstance(use_f, (bool, np.bool_)):
            raise TypeError(f"use_f must be None, True or False, got {use_f!r}.")
        return wald_test(R, q, self._theta(), self._cov_full, self.df_inference_,
                         self.use_t_ if use_f is None else bool(use_f))

    def f_test(self, R, q=None):
        """Joint F test of ``R @ theta = q``: :meth:`wald_test` with ``use_f=True``.

        Equals statsmodels' ``results.f_test((R, q))`` under every ``cov_type``;
        for ``"nonrobust"`` it is the classical F test of nested linear models.

        Parameters
        ----------
        R : array-like of shape (m, n_params) or (n_params,)
            Restrictions (see :meth:`t_test` for the columns), linearly independent.
        q : array-like of shape (m,), optional
            Hypothesised values; default zeros.

        Returns
        -------
        result : WaldTestResult
            ``statistic`` (also ``fvalue``), ``pvalue``, ``df_num``, ``df_denom``.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 3)); y = X[:, 0] + rng.normal(size=100)
        >>> res = GaussMarkovRegressor().fit(X, y).f_test([[0, 0, 1, 0], [0, 0, 0, 1]])
        >>> res.df_num, res.df_denom, bool(res.pvalue > 0.01)
        (2, 96, True)
        """
        return self.wald_test(R, q, use_f=True)

    def conf_int(self, alpha=0.05, include_intercept=False):
        """Two-sided ``1 - alpha`` confidence intervals of the coefficients.

        Student t with ``df_inference_`` dof when ``use_t_`` (the default for
        ``cov_type="nonrobust"``), else normal, with the standard errors of
        ``cov_type``: statsmodels' ``results.conf_int(alpha)``.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.
        include_intercept : bool, default=False
            Put the intercept's interval in the first row.

        Returns
        -------
        intervals : ndarray of shape (n_features, 2) or (n_features + 1, 2)
            Lower and upper bounds.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> X = np.arange(10.0)[:, None]
        >>> y = 2.0 * X[:, 0] + np.tile([0.5, -0.5], 5)
        >>> GaussMarkovRegressor().fit(X, y).conf_int(include_intercept=True).shape
        (2, 2)
        """
        check_is_fitted(self)
        q = self._t_quantile(alpha)
        xp = get_namespace(self.coef_)
        est, se = self.coef_, self.bse_
        if include_intercept:
            est = xp.concat([xp.asarray([self.intercept_], dtype=est.dtype), est])
            se = xp.concat([xp.asarray([self.intercept_bse_], dtype=se.dtype), se])
        return xp.stack([est - q * se, est + q * se], axis=1)

    def predict_interval(self, X, alpha=0.05):
        """Prediction intervals for new observations (Student t, coverage ``1 - alpha``).

        The new observation's error has variance ``sigma2_`` (unit weight, unit
        variance in ``sigma``'s scale) and is taken independent of the training
        errors (for AR(1) errors this ignores the correlation with the last rows).
        The variance of the fitted mean uses ``cov_params_`` (the sandwich of a
        robust ``cov_type``), and the quantile is the normal's when ``use_t_`` is
        False, as statsmodels' ``get_prediction``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to predict at.
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (n_samples, 2)
            Lower and upper bounds around :meth:`predict`.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(1)
        >>> X = rng.normal(size=(500, 1)); y = X[:, 0] + rng.normal(size=500)
        >>> band = GaussMarkovRegressor().fit(X, y).predict_interval(np.zeros((1, 1)))
        >>> bool(3.5 < float(band[0, 1] - band[0, 0]) < 4.3)  # about 2 * 1.96
        True
        """
        check_is_fitted(self)
        q = self._t_quantile(alpha)
        X, _ = validate_estimator_data(self, X, reset=False)
        xp = get_namespace(X)
        cov = xp.astype(self.cov_params_, X.dtype)
        var = self.sigma2_ + xp.sum((X @ cov) * X, axis=1)
        if self.fit_intercept:
            var = var + self.intercept_bse_**2 + 2.0 * (X @ xp.astype(self._intercept_cov,
                                                                       X.dtype))
        half = q * xp.sqrt(xp.clip(var, 0.0, None))
        center = self.predict(X)
        return xp.stack([center - half, center + half], axis=1)

    def hat_projector(self):
        """The hat matrix ``H`` of the (whitened) fit as a matrix-free linear operator.

        ``H`` is the orthogonal projector onto the span of the whitened design
        (intercept included): ``H (W y)`` are the whitened fitted values, where
        ``W`` is the whitening (identity for OLS, ``sqrt(w)`` rows for WLS,
        ``L^{-1}`` for GLS). It is applied through the fitted orthonormal basis,
        ``O(n_samples * rank_)`` per product, never as an n-by-n matrix.

        Returns
        -------
        H : scipy.sparse.linalg.LinearOperator
            Symmetric and idempotent (a CuPy ``LinearOperator`` for CuPy fits).

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
        >>> model = GaussMarkovRegressor().fit(X, y)
        >>> H = model.hat_projector()
        >>> bool(np.allclose(y - H @ y, model.residuals_))
        True
        """
        check_is_fitted(self)
        Q = self._basis
        return _linear_operator(Q.shape[0], lambda V: Q @ (Q.T @ V), get_namespace(Q))

    def residual_projector(self):
        """The residual maker ``I - H`` of the (whitened) fit as a linear operator.

        Returns
        -------
        M : scipy.sparse.linalg.LinearOperator
            ``M (W y)`` are the whitened residuals; ``M`` annihilates the design.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
        >>> M = GaussMarkovRegressor().fit(X, y).residual_projector()
        >>> bool(np.allclose(M @ X[:, 0], 0.0))
        True
        """
        check_is_fitted(self)
        Q = self._basis
        return _linear_operator(Q.shape[0], lambda V: V - Q @ (Q.T @ V), get_namespace(Q))

    def summary(self, alpha=0.05):
        """A table of the fit, like statsmodels' ``summary()``.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage of the confidence intervals shown.

        Returns
        -------
        text : str
            Coefficients, standard errors, t statistics (z with ``use_t_``
            False), p-values, confidence intervals, R^2, adjusted R^2 and the F
            test of all slopes (the robust Wald F under a robust ``cov_type``),
            all under ``cov_type``.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import GaussMarkovRegressor
        >>> X = np.arange(20.0)[:, None]
        >>> y = 3.0 - X[:, 0] + np.tile([0.2, -0.2], 10)
        >>> print(GaussMarkovRegressor().fit(X, y).summary().splitlines()[0])
        GaussMarkovRegressor (OLS): 20 samples, rank 2, 18 residual dof
        """
        check_is_fitted(self)
        q = self._t_quantile(alpha)
        if isinstance(self.sigma, str):
            kind = f"GLS, AR(1) rho={self.rho_:.4g}"
        elif self.sigma is not None:
            kind = "GLS"
        else:
            kind = "OLS"
        n = self.residuals_.shape[0]
        names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"x{j}" for j in range(self.n_features_in_)])
        coef, se = to_numpy(self.coef_).astype(float), to_numpy(self.bse_).astype(float)
        rows = list(zip(names, coef, se, strict=True))
        if self.fit_intercept:
            rows.insert(0, ("intercept", float(self.intercept_), float(self.intercept_bse_)))
        width = max(9, *(len(r[0]) for r in rows))
        lo, hi = f"[{alpha / 2:.3g}", f"{1 - alpha / 2:.3g}]"
        stat, pname = ("t", "P>|t|") if self.use_t_ else ("z", "P>|z|")
        cov_line = f"covariance: {self.cov_type}"
        if self.cov_type == "HAC":
            cov_line += f" (maxlags={self.cov_kwds['maxlags']})"
        elif self.cov_type == "cluster":
            cov_line += f" ({self.df_inference_ + 1} clusters)" if \
                self.df_inference_ != self.dof_resid_ else ""
        cov_line += f", {'t' if self.use_t_ else 'normal'} distribution"
        if self.use_t_:
            cov_line += f" with {self.df_inference_} dof"
        lines = [
            f"{type(self).__name__} ({kind}): {n} samples, rank {self.rank_}, "
            f"{self.dof_resid_} residual dof",
            cov_line,
            f"sigma = {math.sqrt(self.sigma2_):.6g}   R^2 = {self._stats['r2']:.6g}   "
            f"adjusted R^2 = {self._stats['r2_adj']:.6g}",
            f"F = {self._stats['fvalue']:.6g} on ({self._stats['df_model']}, "
            f"{self.df_inference_ if self.cov_type != 'nonrobust' else self.dof_resid_}) "
            f"dof, p = {self._stats['f_pvalue']:.4g}",
            "",
            f"{'':<{width}} {'coef':>13} {'std err':>12} {stat:>9} {pname:>9} "
            f"{lo:>13} {hi:>13}",
        ]
        for name, b, s in rows:
            t = b / s if s > 0 else float("nan")
            if self.dof_resid_ <= 0:
                pval = float("nan")
            elif self.use_t_:
                pval = 2.0 * float(scipy.stats.t.sf(abs(t), self.df_inference_))
            else:
                pval = 2.0 * float(scipy.stats.norm.sf(abs(t)))
            lines.append(f"{name:<{width}} {b:>13.6g} {s:>12.6g} {t:>9.3f} {pval:>9.3g} "
                         f"{b - q * s:>13.6g} {b + q * s:>13.6g}")
        return "\n".join(lines)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags



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
        "tau": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "bias_space": [StrOptions(set(BIAS_SPACES))],
    }

    def __init__(self, norm="nuclear", tau=0.0, fit_intercept=True, bias_space="row"):
        self.norm = norm
        self.tau = tau
        self.fit_intercept = fit_intercept
        self.bias_space = bias_space

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
        self._validate_params()
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
        self._validate_params()
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


_COMMON_DOC = """step : float > 0 or "auto", default="auto"
        Constant step size. ``"auto"`` takes ``1 / (2 max_n ||A_n||_F)`` over the
        first batch fitted (for least squares ``1 / (2 max ||x_n||^2)``, which keeps
        every update non-expansive for both ``step`` and the ``2 * step`` of
        Richardson-Romberg). The mean recursion is stable for
        ``step < 2 Re(lambda) / |lambda|^2`` over the eigenvalues of the mean
        ``A``; a larger step warns (:class:`StepSizeWarning`) and divergence
        raises a ``FloatingPointError``, never returns NaN.
    average : bool, default=True
        Report the Polyak-Ruppert average of the iterates after ``burn_in``
        (else the last iterate). Averaging removes the O(sqrt(step)) fluctuation.
    burn_in : int >= 0, default=0
        Number of first iterates (over all updates, across ``partial_fit``
        calls) left out of the average. ``burn_in=k`` equals scikit-learn's
        ``SGDRegressor(average=k + 1)``.
    richardson : bool, default=False
        Richardson-Romberg extrapolation: run a second chain with ``2 * step`` on
        the same samples and report ``2 * est(step) - est(2 * step)``, which
        cancels the O(step) bias of constant-step LSA under Markov noise.
    n_epochs : int >= 1, default=1
        Passes over the samples in ``fit`` (``partial_fit`` makes one pass).
    shuffle : bool, default=False
        Reshuffle the samples before each pass of ``fit`` (``partial_fit`` keeps
        the given order). Leave off for Markov data read as a stream.
    n_bootstrap : int >= 0, default=0
        Number of bootstrap chains ``fit`` also runs, each on a moving-block
        resample of the samples (all chains in one batched kernel call: Numba
        threads or one GPU thread per chain); their estimates give
        ``conf_int``. Not updated by ``partial_fit``.
    block_length : int >= 1, default=1
        Block length of the bootstrap resamples; 1 is the iid bootstrap, use
        longer blocks (e.g. ``n ** (1/3)``) for Markov samples.
    random_state : int, RandomState, Generator or None, default=None
        Seed for ``shuffle`` and the bootstrap."""


def _common_constraints():
    return {
        "step": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "average": ["boolean"],
        "burn_in": [Interval(numbers.Integral, 0, None, closed="left")],
        "richardson": ["boolean"],
        "n_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "n_bootstrap": [Interval(numbers.Integral, 0, None, closed="left")],
        "block_length": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state", np.random.Generator],
    }


class _BaseLSA(BaseEstimator):
    """Chain state, fitting and bootstrap shared by the LSA estimators."""

    def _run(self, samples: Samples, theta0, *, reset: bool, n_epochs: int, shuffle: bool):
        """Advance (or restart) the chains on ``samples``; return the estimate.

        ``theta0`` is the starting point (float64) used when ``reset``. Sets
        ``step_``, ``stability_bound_``, ``n_updates_`` and, in ``fit`` with
        ``n_bootstrap > 0``, ``bootstrap_estimates``; returns
        ``(estimate, bootstrap or None, restore)``.
        """
        n = samples.n_samples
        arrays, xp, restore = to_compute_device(
            *samples.arrays, work=float(n * n_epochs * samples.n_features))
        samples = Samples(samples.kind, arrays)
        richardson = bool(self.richardson)
        rng = as_generator(self.random_state) if reset else getattr(self, "_rng", None)
        if rng is None:
            rng = as_generator(self.random_state)
        self._rng = rng
        if reset or not hasattr(self, "_lsa_state"):
            step = auto_step(samples) if self.step == "auto" else float(self.step)
            state = ChainState.start(move_to(theta0, xp), 2 if richardson else 1, xp)
        else:
            step = self.step_
            state = self._lsa_state
            if state.theta.shape[0] != (2 if richardson else 1):
                raise ValueError("richardson was changed since the first partial_fit; call fit "
                                 "to start again.")
            state.theta, state.avg = move_to(state.theta, xp), move_to(state.avg, xp)
        index = stream_index(n, n_epochs, shuffle, rng)
        state, bound = advance(samples, index, state, step, richardson, self.burn_in,
                               stacklevel=5)
        boot = None
        if reset and self.n_bootstrap > 0 and n > 0:
            boot = run_bootstrap(samples, index, move_to(theta0, xp), step, richardson,
                                 self.burn_in, bool(self.average), self.n_bootstrap,
                                 self.block_length, rng)
        self._lsa_state = state
        self.step_ = step
        self.stability_bound_ = bound
        self.n_updates_ = state.t
        est = estimate(state, bool(self.average), self.burn_in, richardson, xp)
        dtype = samples.dtype

        def cast(a):
            return restore(xp.astype(a, dtype))

        self._last_iterate = cast(state.theta[0, :])
        return cast(est), (None if boot is None else cast(boot))

    def _interval(self, boot, alpha):
        if not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
        if boot is None:
            raise ValueError("conf_int needs bootstrap chains: set n_bootstrap (e.g. 200) and "
                             "call fit (partial_fit does not run them).")
        xp = get_namespace(boot)
        lo_hi = np.quantile(to_numpy(boot).astype(np.float64), [alpha / 2, 1 - alpha / 2],
                            axis=0).T
        return move_to(lo_hi.astype(to_numpy(boot).dtype), xp)


class LinearStochasticApproximation(_BaseLSA):
    """Solve ``A theta = b`` from noisy samples ``(A_n, b_n)`` by stochastic approximation.

    Linear stochastic approximation (LSA) with a constant step runs

    ``theta_n = theta_{n-1} - step * (A_n theta_{n-1} - b_n)``

    over a stream of samples whose means are ``A`` and ``b`` (independent or
    Markov), and reports the Polyak-Ruppert average of the iterates after a
    burn-in, optionally Richardson-Romberg extrapolated. For least squares and
    TD(0), where ``A_n`` has rank one, use :class:`LSARegressor` and
    :class:`TD0Evaluator` (O(p) per sample instead of O(p^2)).

    The input is three-dimensional (a stack of matrices), so scikit-learn's
    generic estimator checks, which feed 2-D data, do not apply (the tag
    ``two_d_array`` is False).

    Parameters
    ----------
    {common}
    theta0 : array-like of shape (p,), default=None
        Starting point; zeros when None.

    Attributes
    ----------
    theta_ : ndarray of shape (p,)
        The estimate (average or last iterate, extrapolated with ``richardson``),
        in the dtype of the samples.
    theta_last_ : ndarray of shape (p,)
        Last iterate of the ``step`` chain.
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step ``min 2 Re(lambda) / |lambda|^2`` of the mean ``A``
        estimated from the samples seen (NaN when ``p > 1000``).
    n_updates_ : int
        Number of updates done (samples times passes).
    bootstrap_theta_ : ndarray of shape (n_bootstrap, p)
        Estimates of the bootstrap chains (when ``n_bootstrap > 0``).
    n_features_in_ : int
        Dimension ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import (
    ...     LinearStochasticApproximation)
    >>> rng = np.random.default_rng(0)
    >>> A = np.diag([1.0, 2.0]) + 0.2 * rng.normal(size=(4000, 2, 2))
    >>> b = np.array([1.0, 1.0]) + 0.2 * rng.normal(size=(4000, 2))
    >>> lsa = LinearStochasticApproximation(step=0.05).fit(A, b)
    >>> np.round(lsa.theta_, 1)
    array([1. , 0.5])
    """

    _parameter_constraints: dict = {**_common_constraints(), "theta0": ["array-like", None]}

    def __init__(self, step="auto", *, average=True, burn_in=0, richardson=False, n_epochs=1,
                 shuffle=False, n_bootstrap=0, block_length=1, theta0=None,
                 random_state=None):
        self.step = step
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.theta0 = theta0
        self.random_state = random_state

    def _samples(self, A, b, reset):
        A, b = check_lsa_samples(A, b)
        p = A.shape[1]
        if reset:
            self.n_features_in_ = p
        elif p != self.n_features_in_:
            raise ValueError(f"A has dimension p={p}, but {type(self).__name__} was fitted "
                             f"with p={self.n_features_in_}.")
        return Samples.dense(A, b)

    def _theta0(self, samples):
        xp = samples.xp
        p = samples.n_features
        if self.theta0 is None:
            return xp.zeros(p, dtype=xp.float64)
        theta0 = check_array(self.theta0, "theta0", ensure_2d=False)
        if theta0.shape[0] != p:
            raise ValueError(f"theta0 has length {theta0.shape[0]} but the samples have "
                             f"dimension p={p}.")
        return xp.astype(move_to(theta0, xp), xp.float64)

    def fit(self, A, b):
        """Run LSA over the samples (``n_epochs`` passes), starting from ``theta0``.

        Parameters
        ----------
        A : array of shape (n, p, p)
            Samples ``A_n`` in stream order (NumPy or CuPy).
        b : array of shape (n, p)
            Samples ``b_n``.

        Returns
        -------
        self : LinearStochasticApproximation
        """
        self._validate_params()
        samples = self._samples(A, b, reset=True)
        self.theta_, boot = self._run(samples, self._theta0(samples), reset=True,
                                      n_epochs=self.n_epochs, shuffle=self.shuffle)
        self.theta_last_ = self._last_iterate
        if boot is not None:
            self.bootstrap_theta_ = boot
        elif hasattr(self, "bootstrap_theta_"):
            del self.bootstrap_theta_
        return self

    def partial_fit(self, A, b):
        """Continue LSA over one more batch of the stream (one pass, in order).

        Fitting a stream in batches gives exactly the result of one ``fit`` on the
        whole stream (with a numeric ``step``; ``step="auto"`` is set from the
        first batch).

        Parameters
        ----------
        A : array of shape (n, p, p)
            Next samples ``A_n``.
        b : array of shape (n, p)
            Next samples ``b_n``.

        Returns
        -------
        self : LinearStochasticApproximation
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        samples = self._samples(A, b, reset=first)
        self.theta_, _ = self._run(samples, self._theta0(samples), reset=first, n_epochs=1,
                                   shuffle=False)
        self.theta_last_ = self._last_iterate
        return self

    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals for ``theta_``.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (p, 2)
            Lower and upper ends per coordinate.
        """
        check_is_fitted(self, "theta_")
        return self._interval(getattr(self, "bootstrap_theta_", None), alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        return tags


LinearStochasticApproximation.__doc__ = LinearStochasticApproximation.__doc__.replace(
    "{common}", _COMMON_DOC)


class LSARegressor(LinearPredictorMixin, RegressorMixin, _BaseLSA):
    """Streaming least squares by linear stochastic approximation.

    LSA with ``A_n = x_n x_n^T`` and ``b_n = y_n x_n``, which is constant-step
    stochastic gradient descent on the squared error, with Polyak-Ruppert
    averaging, a burn-in and optional Richardson-Romberg extrapolation. Each
    update costs O(p) (the ``p x p`` matrices are never formed). With
    ``richardson=False`` and a numeric ``step`` it equals scikit-learn's
    ``SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
    eta0=step, average=burn_in + 1, shuffle=False, tol=None)`` on the same data,
    intercept included (the intercept is the coefficient of a constant feature,
    updated with the same step, as in scikit-learn).

    Parameters
    ----------
    {common}
    fit_intercept : bool, default=True
        Fit an intercept (a constant feature appended to ``X``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step ``2 / lambda_max(mean x x^T)`` estimated from the data.
    n_updates_ : int
        Number of updates done.
    bootstrap_coef_ : ndarray of shape (n_bootstrap, n_features)
        Coefficients of the bootstrap chains (when ``n_bootstrap > 0``).
    bootstrap_intercept_ : ndarray of shape (n_bootstrap,)
        Their intercepts.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (when X has string column names).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import LSARegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5000, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=5000)
    >>> reg = LSARegressor(step=0.01, burn_in=500).fit(X, y)
    >>> np.round(reg.coef_, 1), round(float(reg.intercept_), 1)
    (array([ 1. , -2. ,  0.5]), 3.0)
    """

    _parameter_constraints: dict = {**_common_constraints(), "fit_intercept": ["boolean"]}

    def __init__(self, step="auto", *, fit_intercept=True, average=True, burn_in=0,
                 richardson=False, n_epochs=1, shuffle=False, n_bootstrap=0, block_length=1,
                 random_state=None):
        self.step = step
        self.fit_intercept = fit_intercept
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.random_state = random_state

    def _samples(self, X, y):
        xp = get_namespace(X)
        if self.fit_intercept:
            X = xp.concat([X, xp.ones((X.shape[0], 1), dtype=X.dtype)], axis=1)
        return Samples.rank_one(X, X, y)

    def _set(self, theta, boot):
        xp = get_namespace(theta)
        p = self.n_features_in_
        self.coef_ = theta[:p]
        self.intercept_ = float(theta[p]) if self.fit_intercept else 0.0
        if boot is not None:
            self.bootstrap_coef_ = boot[:, :p]
            self.bootstrap_intercept_ = (boot[:, p] if self.fit_intercept
                                         else xp.zeros(boot.shape[0], dtype=boot.dtype))

    def fit(self, X, y):
        """Run LSA over the rows of ``X`` (``n_epochs`` passes), starting from zero.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Training data in stream order (NumPy or CuPy).
        y : array of shape (n_samples,)
            Targets.

        Returns
        -------
        self : LSARegressor
        """
        self._validate_params()
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True)
        samples = self._samples(X, y)
        xp = samples.xp
        theta, boot = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                reset=True, n_epochs=self.n_epochs, shuffle=self.shuffle)
        for name in ("bootstrap_coef_", "bootstrap_intercept_"):
            if hasattr(self, name):
                delattr(self, name)
        self._set(theta, boot)
        return self

    def partial_fit(self, X, y):
        """Continue LSA over one more batch of rows (one pass, in order).

        Batches fitted one after another give exactly the result of one ``fit``
        on all rows (with a numeric ``step``; ``step="auto"`` is set from the
        first batch).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Next rows of the stream.
        y : array of shape (n_samples,)
            Their targets.

        Returns
        -------
        self : LSARegressor
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        X, y = validate_estimator_data(self, X, y, reset=first, y_required=True)
        samples = self._samples(X, y)
        xp = samples.xp
        theta, _ = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                             reset=first, n_epochs=1, shuffle=False)
        self._set(theta, None)
        return self


    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals (needs ``n_bootstrap > 0``).

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (n_features + fit_intercept, 2)
            Lower and upper ends for each coefficient, then for the intercept.
        """
        check_is_fitted(self, "coef_")
        boot = getattr(self, "bootstrap_coef_", None)
        if boot is not None and self.fit_intercept:
            xp = get_namespace(boot)
            boot = xp.concat([boot, xp.reshape(self.bootstrap_intercept_, (-1, 1))], axis=1)
        return self._interval(boot, alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


LSARegressor.__doc__ = LSARegressor.__doc__.replace("{common}", _COMMON_DOC)


class TD0Evaluator(LinearPredictorMixin, _BaseLSA):
    """Policy evaluation with linear features by TD(0) (temporal differences).

    Estimates the value function ``V(s) = phi(s)^T theta`` of the policy that
    generated a trajectory, by LSA with ``A_n = phi_n (phi_n - gamma phi'_n)^T``
    and ``b_n = r_n phi_n`` (O(p) per transition). Its limit is the TD / LSTD fixed
    point ``theta* = A^{-1} b`` of the mean matrices (for on-policy data ``A`` is
    Hurwitz, so a small enough step converges). Constant-step TD(0) on a Markov
    chain has an O(step) bias after averaging; ``richardson=True`` removes the
    first-order term.

    Data format: row ``t`` of ``X`` holds the features ``phi(s_t)`` and ``y[t]``
    the reward of the transition leaving ``s_t``. Without ``X_next``, ``X`` is one
    trajectory: the next state of row ``t`` is row ``t + 1``, so ``n`` rows give
    ``n - 1`` transitions, and ``partial_fit`` links the last row of a batch to the
    first row of the next one (a trajectory fed in batches gives exactly the fit on
    all of it). With ``X_next`` (same shape as ``X``) each row is an independent
    transition ``(X[t], y[t], X_next[t])``, e.g. from several episodes; use zero
    features for terminal states.

    Parameters
    ----------
    gamma : float in [0, 1], default=0.9
        Discount factor.
    {common}

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The value-function weights ``theta``.
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step of the mean TD matrix estimated from the transitions.
    n_updates_ : int
        Number of updates (transitions times passes).
    bootstrap_coef_ : ndarray of shape (n_bootstrap, n_features)
        Weights of the bootstrap chains (when ``n_bootstrap > 0``).
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (when X has string column names).

    Examples
    --------
    A 5-state random walk with tabular features; the reward is 1 when the walk
    leaves state 4.

    >>> import numpy as np
    >>> from sketchlearn.linear_model import TD0Evaluator
    >>> rng = np.random.default_rng(0)
    >>> s = np.zeros(20001, dtype=int)
    >>> for t in range(20000):
    ...     s[t + 1] = min(max(s[t] + rng.choice([-1, 1]), 0), 4)
    >>> X = np.eye(5)[s]
    >>> y = (s == 4).astype(float)
    >>> td = TD0Evaluator(gamma=0.5, step=0.05, burn_in=1000).fit(X, y)
    >>> values = td.predict(np.eye(5))
    >>> bool(np.all(np.diff(values) > 0))
    True
    """

    _parameter_constraints: dict = {
        **_common_constraints(),
        "gamma": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, gamma=0.9, *, step="auto", average=True, burn_in=0, richardson=False,
                 n_epochs=1, shuffle=False, n_bootstrap=0, block_length=1, random_state=None):
        self.gamma = gamma
        self.step = step
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.random_state = random_state

    def _transitions(self, X, y, X_next, pending):
        """Rank-one samples (U, V, c) of the transitions, and the new pending row."""
        xp = get_namespace(X)
        gamma = float(self.gamma)
        if X_next is not None:
            X_next = check_array(X_next, "X_next")
            X_next = xp.astype(move_to(X_next, xp), X.dtype)
            if X_next.shape != X.shape:
                raise ValueError(f"X_next has shape {tuple(X_next.shape)} but X has "
                                 f"{tuple(X.shape)}; each row of X_next is the next state's "
                                 "features of the same row of X.")
            return Samples.rank_one(X, X - gamma * X_next, y), None
        if pending is not None:
            px, py = pending
            X_all = xp.concat([xp.astype(move_to(px, xp), X.dtype), X], axis=0)
            y_all = xp.concat([xp.astype(move_to(py, xp), X.dtype), y], axis=0)
        else:
            X_all, y_all = X, y
        m = X_all.shape[0]
        U = X_all[:m - 1, :]
        V = U - gamma * X_all[1:, :]
        # Copies: the pending row must not follow later changes to the caller's X.
        pending = (xp.asarray(X_all[m - 1:, :], copy=True), xp.asarray(y_all[m - 1:], copy=True))
        return Samples.rank_one(U, V, y_all[:m - 1]), pending

    def fit(self, X, y, X_next=None):
        """Run TD(0) over the transitions (``n_epochs`` passes), starting from zero.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Features of the states, in trajectory order (NumPy or CuPy).
        y : array of shape (n_samples,)
            Reward of the transition leaving each state.
        X_next : array of shape (n_samples, n_features), optional
            Features of each row's next state; without it the next state is the
            next row (a single trajectory).

        Returns
        -------
        self : TD0Evaluator
        """
        self._validate_params()
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True)
        if X_next is None and X.shape[0] < 2:
            raise ValueError(f"X has {X.shape[0]} sample(s): TD(0) on a trajectory needs at "
                             "least 2 states (one transition), or pass X_next.")
        samples, pending = self._transitions(X, y, X_next, None)
        xp = samples.xp
        self.coef_, boot = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                     reset=True, n_epochs=self.n_epochs, shuffle=self.shuffle)
        self._pending = pending
        if boot is not None:
            self.bootstrap_coef_ = boot
        elif hasattr(self, "bootstrap_coef_"):
            del self.bootstrap_coef_
        return self

    def partial_fit(self, X, y, X_next=None):
        """Continue TD(0) over more of the trajectory (one pass, in order).

        Without ``X_next`` the first row of this batch is the next state of the
        last row of the previous batch, so feeding a trajectory in batches equals
        fitting it at once (with a numeric ``step``).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Features of the next states of the trajectory.
        y : array of shape (n_samples,)
            Rewards of the transitions leaving them.
        X_next : array of shape (n_samples, n_features), optional
            Explicit next states (independent transitions); this also ends the
            trajectory of earlier batches.

        Returns
        -------
        self : TD0Evaluator
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        X, y = validate_estimator_data(self, X, y, reset=first, y_required=True)
        pending = None if first else getattr(self, "_pending", None)
        samples, pending = self._transitions(X, y, X_next, pending)
        xp = samples.xp
        self.coef_, _ = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                  reset=first, n_epochs=1, shuffle=False)
        self._pending = pending
        return self


    def score(self, X, y, X_next=None):
        """Negative mean squared TD error ``-(r + gamma V(s') - V(s))^2`` (higher is better).

        Parameters
        ----------
        X, y, X_next
            Transitions in the format of :meth:`fit` (without ``X_next`` the next
            state of row ``t`` is row ``t + 1`` and the last row is not scored).

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "coef_")
        X, y = validate_estimator_data(self, X, y, reset=False, y_required=True)
        xp = get_namespace(X)
        v = self.predict(X)
        if X_next is None:
            if X.shape[0] < 2:
                raise ValueError("score on a trajectory needs at least 2 states.")
            delta = y[:-1] + float(self.gamma) * v[1:] - v[:-1]
        else:
            X_next = check_array(X_next, "X_next")
            if X_next.shape != X.shape:
                raise ValueError(f"X_next has shape {tuple(X_next.shape)} but X has "
                                 f"{tuple(X.shape)}.")
            delta = y + float(self.gamma) * self.predict(X_next) - v
        return -float(xp.mean(delta * delta))

    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals for ``coef_`` (``n_bootstrap > 0``).

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (n_features, 2)
        """
        check_is_fitted(self, "coef_")
        return self._interval(getattr(self, "bootstrap_coef_", None), alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags


TD0Evaluator.__doc__ = TD0Evaluator.__doc__.replace("{common}", _COMMON_DOC)
