"""GaussMarkovRegressor: OLS, WLS, GLS and feasible GLS to certified accuracy, with
robust covariances and tests (the estimator over :mod:`._gauss_markov`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.stats
from array_api_compat import is_cupy_array
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace, is_cupy_namespace, to_numpy
from .._dask import is_dask_array
from .._validation import PROBABILITY, LinearPredictorMixin, validate_estimator_data
from ._gauss_markov import GAUSS_MARKOV_PARAMS, gauss_markov
from ._robust import check_hypothesis, normal_or_t_quantile, t_test, wald_test

__all__ = ["GaussMarkovRegressor"]


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
    sigma : None, "ar1", callable, array or list of arrays, default=None
        Error covariance up to the scale ``sigma2`` (which is estimated): None
        (independent, equal variances: OLS; WLS with ``sample_weight``), a vector
        of ``n_samples`` variances, an ``(n_samples, n_samples)`` SPD matrix, a list
        of square SPD matrices (the diagonal blocks, in row order, of a
        block-diagonal covariance: clustered or panel errors), ``"ar1"``
        (stationary AR(1) errors in row order, Prais-Winsten whitening), or a
        callable ``sigma(n_samples)`` returning one of these.
    rho : float in (-1, 1), optional
        AR(1) coefficient for ``sigma="ar1"``; None estimates it by feasible GLS
        (lag-one autocorrelation of the residuals, iterated).
    rcond : float, optional
        Rank tolerance on the pivoted-QR diagonal of the whitened, intercept-free,
        unit-norm-scaled design; default ``10 * max(sqrt(n_samples), n_features) *
        eps``. A
        rank-deficient design gets the minimum-norm solution and a warning.
    refine : bool or "coef", default=True
        Iterative refinement in extended precision for float64 input with
        ``solver="pivoted-qr"``: of the coefficients and, on ill-conditioned
        designs, of the non-robust standard errors; ``"coef"``: of the
        coefficients only (see :func:`gauss_markov`).
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
    solver : {"auto", "pivoted-qr", "svd"}, default="auto"
        Factorization of the whitened design: ``"pivoted-qr"`` (host LAPACK, NumPy
        input only, with ``refine`` and long double support), ``"svd"`` (any array
        library, CuPy included) or ``"auto"`` (``"pivoted-qr"`` for NumPy input,
        ``"svd"`` otherwise); see :func:`gauss_markov`.

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

    # gauss_markov's own constraints (fit skips its second check)
    _parameter_constraints: dict = {name: constraint
                                    for name, constraint in GAUSS_MARKOV_PARAMS.items()
                                    if name != "sample_weight"}

    def __init__(self, fit_intercept=True, sigma=None, rho=None, rcond=None, refine=True,
                 max_iter=20, tol=1e-8, cov_type="nonrobust", cov_kwds=None, use_t=None,
                 solver="auto"):
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
        self.solver = solver

    @_fit_context(prefer_skip_nested_validation=True)  # gauss_markov: no second check
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design matrix: NumPy, CuPy, or a tall Dask array chunked by rows (OLS,
            WLS and AR(1); see :func:`gauss_markov`). With Dask input the fitted
            attributes are NumPy except the per-row ``residuals_`` and
            ``leverage_``, which are lazy Dask arrays.
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
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True,
                                       keep_longdouble=True, accept_dask=True)
        # (Dask X: gauss_markov takes the weights as they are, Dask or NumPy)
        if (sample_weight is not None and not is_cupy_array(sample_weight)
                and not is_dask_array(X)):
            xp = get_namespace(X)
            sample_weight = xp.asarray(np.asarray(sample_weight, dtype=np.float64))
        res = gauss_markov(X, y, sigma=self.sigma, sample_weight=sample_weight,
                           fit_intercept=self.fit_intercept, rho=self.rho, rcond=self.rcond,
                           refine=self.refine, max_iter=self.max_iter, tol=self.tol,
                           cov_type=self.cov_type, cov_kwds=self.cov_kwds, use_t=self.use_t,
                           solver=self.solver)
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
        if res.get("whitened_rss") is not None:  # Dask: summed in the fit's last pass
            rss = float(res.whitened_rss)
        else:
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

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
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

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
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

    def _projector_basis(self):
        if is_dask_array(self._basis):
            raise TypeError("The projectors of a fit on Dask arrays would be n x n operators "
                            "over a distributed basis; use the lazy residuals_ and leverage_, "
                            "or gauss_markov(X, y).basis (a lazy Dask array of Q).")
        return self._basis

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
        Q = self._projector_basis()
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
        Q = self._projector_basis()
        return _linear_operator(Q.shape[0], lambda V: V - Q @ (Q.T @ V), get_namespace(Q))

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
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
