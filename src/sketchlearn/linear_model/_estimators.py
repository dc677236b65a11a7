"""scikit-learn estimators of the linear_model subpackage."""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.stats
from array_api_compat import is_cupy_array
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._array_api import get_namespace, is_cupy_namespace, to_numpy
from .._validation import check_array, check_scalar
from ._extended import NORMS, filter_factors, tau_max
from ._gauss_markov import gauss_markov

__all__ = ["GaussMarkovRegressor", "ExtendedGaussMarkovRegressor", "ExtendedGaussMarkovCV"]


def _validate_xy(estimator, X, y, reset):
    """NumPy input through scikit-learn's validate_data; other namespaces (CuPy) directly."""
    if not is_cupy_array(X):
        if y is None:
            return validate_data(estimator, X, dtype=[np.float64, np.float32], reset=reset), None
        return validate_data(estimator, X, y, dtype=[np.float64, np.float32], y_numeric=True,
                             reset=reset)
    X = check_array(X, "X")
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} was "
                         f"fitted with {estimator.n_features_in_}.")
    return X, (None if y is None else check_array(y, "y", ensure_2d=False))


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


class GaussMarkovRegressor(RegressorMixin, BaseEstimator):
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

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Estimated coefficients.
    intercept_ : float
        Estimated intercept (0.0 when ``fit_intercept=False``).
    bse_ : ndarray of shape (n_features,)
        Standard errors of ``coef_``.
    intercept_bse_ : float
        Standard error of ``intercept_``.
    cov_params_ : ndarray of shape (n_features, n_features)
        Estimated covariance of ``coef_`` (``sigma2_`` times the pseudo-inverse of
        the whitened Gram matrix, computed from the factorization).
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
    """

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "sigma": [None, StrOptions({"ar1"}), callable, "array-like"],
        "rho": [None, Interval(numbers.Real, -1, 1, closed="neither")],
        "rcond": [None, Interval(numbers.Real, 0, None, closed="left")],
        "refine": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, fit_intercept=True, sigma=None, rho=None, rcond=None, refine=True,
                 max_iter=20, tol=1e-8):
        self.fit_intercept = fit_intercept
        self.sigma = sigma
        self.rho = rho
        self.rcond = rcond
        self.refine = refine
        self.max_iter = max_iter
        self.tol = tol

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
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        X, y = _validate_xy(self, X, y, reset=True)
        xp = get_namespace(X)
        if sample_weight is not None and not is_cupy_array(sample_weight):
            sample_weight = xp.asarray(np.asarray(sample_weight, dtype=np.float64))
        res = gauss_markov(X, y, sigma=self.sigma, sample_weight=sample_weight,
                           fit_intercept=self.fit_intercept, rho=self.rho, rcond=self.rcond,
                           refine=self.refine, max_iter=self.max_iter, tol=self.tol)
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
        if df_model > 0 and self.dof_resid_ > 0 and rss > 0:
            fvalue = ((tss - rss) / df_model) / (rss / self.dof_resid_)
            f_pvalue = float(scipy.stats.f.sf(fvalue, df_model, self.dof_resid_))
        else:
            fvalue = f_pvalue = float("nan")
        self._stats = {"r2": r2, "r2_adj": r2_adj, "fvalue": fvalue, "f_pvalue": f_pvalue,
                       "df_model": df_model}

    def predict(self, X):
        """Predict ``intercept_ + X coef_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        check_is_fitted(self)
        X, _ = _validate_xy(self, X, None, reset=False)
        xp = get_namespace(X)
        return X @ xp.astype(self.coef_, X.dtype) + self.intercept_

    def _t_quantile(self, alpha):
        alpha = check_scalar(alpha, "alpha", lower=0, upper=1, lower_inclusive=False,
                             upper_inclusive=False)
        if self.dof_resid_ <= 0:
            return float("nan")
        return float(scipy.stats.t.ppf(1.0 - alpha / 2.0, self.dof_resid_))

    def conf_int(self, alpha=0.05, include_intercept=False):
        """Two-sided ``1 - alpha`` confidence intervals of the coefficients (Student t).

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
        X, _ = _validate_xy(self, X, None, reset=False)
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
            Coefficients, standard errors, t statistics, p-values, confidence
            intervals, R^2, adjusted R^2 and the F test of all slopes.

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
            rows.insert(0, ("intercept", self.intercept_, self.intercept_bse_))
        width = max(9, *(len(r[0]) for r in rows))
        lo, hi = f"[{alpha / 2:.3g}", f"{1 - alpha / 2:.3g}]"
        lines = [
            f"{type(self).__name__} ({kind}): {n} samples, rank {self.rank_}, "
            f"{self.dof_resid_} residual dof",
            f"sigma = {math.sqrt(self.sigma2_):.6g}   R^2 = {self._stats['r2']:.6g}   "
            f"adjusted R^2 = {self._stats['r2_adj']:.6g}",
            f"F = {self._stats['fvalue']:.6g} on ({self._stats['df_model']}, "
            f"{self.dof_resid_}) dof, p = {self._stats['f_pvalue']:.4g}",
            "",
            f"{'':<{width}} {'coef':>13} {'std err':>12} {'t':>9} {'P>|t|':>9} "
            f"{lo:>13} {hi:>13}",
        ]
        for name, b, s in rows:
            t = b / s if s > 0 else float("nan")
            pval = 2.0 * float(scipy.stats.t.sf(abs(t), self.dof_resid_)) \
                if self.dof_resid_ > 0 else float("nan")
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
    r = int(xp.sum(keep))
    return U[:, :r], s[:r], Vt[:r, :], x_mean, y_mean, yc


class ExtendedGaussMarkovRegressor(RegressorMixin, BaseEstimator):
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

    ``tau = 0`` is OLS (the classical Gauss-Markov estimator). The bias is measured
    on the row space of ``X`` (null-space directions cannot be estimated and get 0).

    Parameters
    ----------
    norm : {"nuclear", "frobenius", "spectral"}, default="nuclear"
        Schatten norm of the bias bound.
    tau : float >= 0, default=0.0
        Bias bound. Useful range: ``[0, sqrt(r))`` Frobenius, ``[0, r)`` nuclear,
        ``[0, 1)`` spectral for a design of rank ``r``; at or above it the
        coefficients are 0.
    fit_intercept : bool, default=True
        Center ``X`` and ``y`` and fit an unpenalised intercept.

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
    """

    _parameter_constraints: dict = {
        "norm": [StrOptions({"nuclear", "frobenius", "spectral"})],
        "tau": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
    }

    def __init__(self, norm="nuclear", tau=0.0, fit_intercept=True):
        self.norm = norm
        self.tau = tau
        self.fit_intercept = fit_intercept

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
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        X, y = _validate_xy(self, X, y, reset=True)
        xp = get_namespace(X)
        U, s, Vt, x_mean, y_mean, yc = _centered_svd(X, y, self.fit_intercept, xp)
        s_host = to_numpy(s).astype(np.float64)
        d = filter_factors(s_host, self.norm, float(self.tau))
        d_xp = xp.asarray(d.astype(np.dtype(str(X.dtype).split(".")[-1])))
        if is_cupy_namespace(xp):
            d_xp = xp.asarray(d_xp)
        self.coef_ = Vt.T @ (d_xp * (U.T @ yc))
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.singular_values_ = s
        self.shrinkage_ = d * s_host
        self.dof_ = float(np.sum(self.shrinkage_)) + int(self.fit_intercept)
        self.alpha_ = None
        if self.norm == "frobenius" and 0 < self.tau < tau_max("frobenius", s_host.size):
            self.alpha_ = float(np.median(s_host / d - s_host**2))
        return self

    def predict(self, X):
        """Predict ``intercept_ + X coef_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        check_is_fitted(self)
        X, _ = _validate_xy(self, X, None, reset=False)
        xp = get_namespace(X)
        return X @ xp.astype(self.coef_, X.dtype) + self.intercept_

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
        An int gives that many bounds per norm, spread over the norm's useful
        range ``(0, tau_max)`` (geometrically near 0, so small biases are resolved);
        an array gives the same bounds for every norm.
    cv : {"gcv", "loo"}, default="gcv"
        Generalized cross-validation ``n RSS / (n - dof)^2``, or the leave-one-out
        shortcut ``mean((r_i / (1 - h_ii))^2)`` (exact for the Frobenius/ridge
        filter, the usual linear-smoother approximation for the others).
    fit_intercept : bool, default=True
        Center ``X`` and ``y`` and fit an intercept.

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
    coef_, intercept_, singular_values_, shrinkage_, alpha_, dof_
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
    """

    _parameter_constraints: dict = {
        "norms": ["array-like"],
        "taus": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "cv": [StrOptions({"gcv", "loo"})],
        "fit_intercept": ["boolean"],
    }

    def __init__(self, norms=NORMS, taus=30, cv="gcv", fit_intercept=True):
        self.norms = norms
        self.taus = taus
        self.cv = cv
        self.fit_intercept = fit_intercept

    def _grid(self, norm, rank):
        if isinstance(self.taus, numbers.Integral):
            top = tau_max(norm, rank)
            return np.concatenate([[0.0], top * np.geomspace(1e-4, 0.999, int(self.taus) - 1)]) \
                if self.taus > 1 else np.zeros(1)
        taus = np.asarray(self.taus, dtype=np.float64).ravel()
        if taus.size == 0 or not np.all(np.isfinite(taus)) or np.any(taus < 0):
            raise ValueError("taus must be non-negative finite numbers (or an int count).")
        return taus

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
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        X, y = _validate_xy(self, X, y, reset=True)
        xp = get_namespace(X)
        U, s, Vt, x_mean, y_mean, yc = _centered_svd(X, y, self.fit_intercept, xp)
        n = X.shape[0]
        s_host = to_numpy(s).astype(np.float64)
        uty = to_numpy(U.T @ yc).astype(np.float64)
        rss_out = float(to_numpy(xp.sum(yc * yc))) - float(np.sum(uty**2))  # outside range(U)
        if self.cv == "loo":
            U2 = to_numpy(U * U).astype(np.float64)
            yc_host = to_numpy(yc).astype(np.float64)
            U_host = to_numpy(U).astype(np.float64)
        rows = []
        for norm in norms:
            for tau in self._grid(norm, s_host.size):
                keep = filter_factors(s_host, norm, float(tau)) * s_host
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
        d = filter_factors(s_host, self.norm_, self.tau_)
        d_xp = xp.asarray(d.astype(np.dtype(str(X.dtype).split(".")[-1])))
        self.coef_ = Vt.T @ (d_xp * (U.T @ yc))
        self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.singular_values_ = s
        self.shrinkage_ = d * s_host
        self.dof_ = float(np.sum(self.shrinkage_)) + int(self.fit_intercept)
        self.alpha_ = None
        if self.norm_ == "frobenius" and 0 < self.tau_ < tau_max("frobenius", s_host.size):
            self.alpha_ = float(np.median(s_host / d - s_host**2))
        return self
