"""Sandwich (robust) covariances and Wald tests of linear hypotheses for Gauss-Markov fits.

The conventions are statsmodels' ``OLS(...).fit(cov_type=..., cov_kwds=...)``: the
same names, options, defaults, small-sample corrections and reference
distributions. The sandwich is formed in the whitened space (as statsmodels does
for WLS and GLS) from the fit's orthonormal factor ``Q`` and the map ``G`` from
``Q``-coordinates to coefficients (``theta = G Q^T y_w``, ``G = R^{-1}`` for a
full-rank QR): the scores are ``F = diag(e) Q G^T`` and the covariance ``F^T F``
(HC), never ``(X^T X)^{-1}`` formed from the normal equations, never the hat
matrix (the leverages are ``h_i = ||Q_i||^2``).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats
from sklearn.utils._param_validation import validate_params

from .._array_api import get_namespace, to_numpy
from .._validation import PROBABILITY, user_stacklevel

__all__ = ["COV_TYPES", "TTestResult", "WaldTestResult", "check_cov_kwds", "robust_covariance",
           "t_test", "wald_test"]

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster")
_KWDS = {"nonrobust": (), "HC0": (), "HC1": (), "HC2": (), "HC3": (),
         "HAC": ("maxlags", "kernel", "use_correction"),
         "cluster": ("groups", "use_correction", "df_correction")}


def check_cov_kwds(cov_type, cov_kwds, n):
    """Validate ``cov_type`` and ``cov_kwds`` for ``n`` observations; return clean options.

    Returns a dict with the options filled in with statsmodels' defaults; for
    ``"cluster"`` the group labels are replaced by integer codes ``0..G-1`` and
    ``n_groups`` is added.
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r} is not understood; use one of "
                         f"{', '.join(map(repr, COV_TYPES))} (statsmodels' names).")
    if cov_kwds is None:
        cov_kwds = {}
    if not isinstance(cov_kwds, dict):
        raise TypeError(f"cov_kwds must be a dict or None, got {type(cov_kwds).__name__}.")
    unknown = sorted(set(cov_kwds) - set(_KWDS[cov_type]))
    if unknown:
        allowed = ", ".join(_KWDS[cov_type]) or "none"
        raise ValueError(f"cov_kwds has keys {unknown} that cov_type={cov_type!r} does not use "
                         f"(allowed: {allowed}).")
    out = {}
    if cov_type == "HAC":
        if "maxlags" not in cov_kwds:
            raise ValueError("cov_type='HAC' needs cov_kwds={'maxlags': L}, the number of lags "
                             "of the Newey-West window (e.g. floor(4 (n/100)^(2/9))).")
        maxlags = cov_kwds["maxlags"]
        if isinstance(maxlags, bool) or not isinstance(maxlags, numbers.Integral):
            raise TypeError(f"maxlags must be an int, got {maxlags!r}.")
        if not 0 <= int(maxlags) < n:
            raise ValueError(f"maxlags={maxlags} is out of range: it must satisfy 0 <= maxlags "
                             f"< n_samples={n}.")
        kernel = cov_kwds.get("kernel", "bartlett")
        if kernel not in ("bartlett", "uniform"):
            raise ValueError(f"kernel={kernel!r} is not understood; use 'bartlett' "
                             "(Newey-West) or 'uniform'.")
        out.update(maxlags=int(maxlags), kernel=kernel,
                   use_correction=bool(cov_kwds.get("use_correction", False)))
    elif cov_type == "cluster":
        if "groups" not in cov_kwds:
            raise ValueError("cov_type='cluster' needs cov_kwds={'groups': labels}, one cluster "
                             "label per sample.")
        groups = _host(cov_kwds["groups"])
        if groups.ndim == 2 and 1 in groups.shape:
            groups = groups.ravel()
        if groups.ndim != 1:
            raise ValueError(f"groups must be one label per sample (one-way clustering); got "
                             f"an array of shape {groups.shape}.")
        if groups.shape[0] != n:
            raise ValueError(f"groups has length {groups.shape[0]}, but the data has {n} "
                             "samples; pass one cluster label per sample.")
        if groups.dtype.kind == "f" and not np.all(np.isfinite(groups)):
            raise ValueError("groups contains NaN or inf; every sample needs a cluster label.")
        _, codes = np.unique(groups, return_inverse=True)
        n_groups = int(codes.max()) + 1 if n else 0
        if n_groups < 2:
            raise ValueError(f"groups has {n_groups} cluster(s); cluster-robust covariances "
                             "need at least 2 clusters (one cluster gives a singular estimate).")
        out.update(groups=codes.ravel(), n_groups=n_groups,
                   use_correction=bool(cov_kwds.get("use_correction", True)),
                   df_correction=cov_kwds.get("df_correction", True) is not False)
    return out


def _host(x):
    """Any array (NumPy, CuPy, DLPack) or nested sequence as a NumPy array."""
    if hasattr(x, "__dlpack__") or hasattr(x, "get"):
        return to_numpy(x)
    return np.asarray(x)


def _ratio(a, b):
    return a / b if b > 0 else float("nan")


def _hac_weights(maxlags, kernel):
    if kernel == "uniform":
        return [1.0] * (maxlags + 1)
    return [1.0 - lag / (maxlags + 1.0) for lag in range(maxlags + 1)]


def robust_covariance(cov_type, opts, basis, factor, wresid, leverage, dof_resid):
    """Sandwich covariance of ``theta = factor @ basis.T @ y_w`` (intercept first if any).

    Parameters
    ----------
    cov_type : str
        One of ``COV_TYPES`` other than ``"nonrobust"``.
    opts : dict
        Options from :func:`check_cov_kwds`.
    basis : array of shape (n, k)
        Orthonormal basis ``Q`` of the whitened fitted space.
    factor : array of shape (k, k)
        ``G`` with ``theta = G Q^T y_w`` (``R^{-1}`` in the user's units).
    wresid : array of shape (n,)
        Whitened residuals.
    leverage : array of shape (n,)
        ``||Q_i||^2``.
    dof_resid : int
        ``n - rank``.

    Returns
    -------
    cov : array of shape (k, k)
    """
    xp = get_namespace(basis)
    # k counts parameters, not the rank (statsmodels' k_params in the HAC and cluster
    # corrections; HC1 uses the residual dof n - rank)
    n, k = basis.shape[0], factor.shape[0]
    e = wresid
    if cov_type in ("HC2", "HC3"):
        n_one = int(xp.sum(xp.astype(leverage >= 1.0 - 1e3 * float(np.finfo(np.float64).eps),
                                     xp.int32)))
        if n_one:
            warnings.warn(f"{n_one} observation(s) have leverage 1 (they are fitted exactly, "
                          f"e.g. the only row of a dummy): {cov_type} divides by 1 - h and "
                          "its covariance is infinite or NaN there. Use cov_type='HC0' or "
                          "'HC1', or drop those rows.", RuntimeWarning,
                          stacklevel=user_stacklevel())
        with np.errstate(divide="ignore", invalid="ignore"):
            e = e / (xp.sqrt(1.0 - leverage) if cov_type == "HC2" else 1.0 - leverage)
    # scores in coefficient space, one row per observation
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scores = (basis * e[:, None]) @ factor.T
    if cov_type in ("HC0", "HC1", "HC2", "HC3"):
        cov = scores.T @ scores
        if cov_type == "HC1":
            cov = cov * _ratio(n, dof_resid)
    elif cov_type == "HAC":
        weights = _hac_weights(opts["maxlags"], opts["kernel"])
        cov = weights[0] * (scores.T @ scores)
        for lag in range(1, opts["maxlags"] + 1):
            s = scores[lag:, :].T @ scores[:-lag, :]
            cov = cov + weights[lag] * (s + s.T)
        if opts["use_correction"]:
            cov = cov * _ratio(n, n - k)
    else:  # cluster
        host = np.asarray(to_numpy(scores))
        sums = np.zeros((opts["n_groups"], k), dtype=host.dtype)
        np.add.at(sums, opts["groups"], host)
        cov = xp.asarray(sums.T @ sums)
        if opts["use_correction"]:
            g = opts["n_groups"]
            cov = cov * ((g / (g - 1.0)) * _ratio(n - 1.0, n - k))
    return (cov + cov.T) / 2


# ---------------------------------------------------------------------------
# tests of linear hypotheses
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TTestResult:
    """Result of :meth:`GaussMarkovRegressor.t_test`: one test per row of ``R``.

    Attributes
    ----------
    effect : ndarray of shape (m,)
        The estimated linear combinations ``R theta`` (statsmodels' ``effect``).
    q : ndarray of shape (m,)
        Their hypothesised values.
    sd : ndarray of shape (m,)
        Standard errors ``sqrt(diag(R V R^T))`` under the fit's ``cov_type``.
    statistic : ndarray of shape (m,)
        ``(effect - q) / sd``: a t statistic (``distribution="t"``) or a z
        statistic (``"norm"``).
    pvalue : ndarray of shape (m,)
        Two-sided p-values.
    df_denom : int
        Degrees of freedom of the t distribution (residual dof, or clusters minus
        one); reported as statsmodels does also when the normal is used.
    distribution : {"t", "norm"}
        Reference distribution (statsmodels' ``use_t``).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import GaussMarkovRegressor
    >>> X = np.arange(10.0)[:, None]
    >>> y = 1.0 + 2.0 * X[:, 0] + np.tile([0.3, -0.3], 5)
    >>> res = GaussMarkovRegressor().fit(X, y).t_test([[0.0, 1.0]], q=[2.0])
    >>> res.distribution, res.df_denom, res.conf_int(0.05).shape
    ('t', 8, (1, 2))
    """

    effect: np.ndarray
    q: np.ndarray
    sd: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    df_denom: int
    distribution: str

    @property
    def tvalue(self):
        """Alias of ``statistic`` (statsmodels' name)."""
        return self.statistic

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
    def conf_int(self, alpha=0.05):
        """Two-sided ``1 - alpha`` intervals for ``R theta``, shape ``(m, 2)``.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.linear_model import TTestResult
        >>> res = TTestResult(effect=np.array([1.0]), q=np.zeros(1), sd=np.array([0.5]),
        ...                   statistic=np.array([2.0]), pvalue=np.array([0.05]),
        ...                   df_denom=100, distribution="norm")
        >>> np.round(res.conf_int(0.05), 3)
        array([[0.02, 1.98]])
        """
        if self.distribution == "t":
            c = float(scipy.stats.t.ppf(1 - alpha / 2, self.df_denom))
        else:
            c = float(scipy.stats.norm.ppf(1 - alpha / 2))
        return np.column_stack([self.effect - c * self.sd, self.effect + c * self.sd])


@dataclass(frozen=True)
class WaldTestResult:
    """Result of :meth:`GaussMarkovRegressor.f_test` and :meth:`~GaussMarkovRegressor.wald_test`.

    The Wald statistic is ``W = (R theta - q)^T (R V R^T)^{-1} (R theta - q)``.

    Attributes
    ----------
    statistic : float
        ``W / df_num`` for the F distribution, ``W`` for the chi-square.
    pvalue : float
        Upper tail probability of ``statistic``.
    df_num : int
        Number of restrictions (the rank of ``R V R^T``).
    df_denom : int or None
        Denominator dof of the F distribution (residual dof, or clusters minus
        one); None for the chi-square.
    distribution : {"F", "chi2"}
        Reference distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import GaussMarkovRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2)); y = X[:, 0] + rng.normal(size=50)
    >>> model = GaussMarkovRegressor(cov_type="HC3").fit(X, y)
    >>> model.f_test(np.eye(3)[1:]).distribution, model.wald_test(np.eye(3)[1:]).distribution
    ('F', 'chi2')
    """

    statistic: float
    pvalue: float
    df_num: int
    df_denom: int | None
    distribution: str

    @property
    def fvalue(self):
        """The F statistic (``statistic``; NaN for a chi-square test)."""
        return self.statistic if self.distribution == "F" else float("nan")


def check_hypothesis(R, q, n_params, names):
    """``R`` as a 2-D float64 array with ``n_params`` columns of full row rank, and ``q``."""
    R = np.asarray(_host(R), dtype=np.float64)
    if R.ndim == 1:
        R = R[None, :]
    if R.ndim != 2 or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty matrix with one row per restriction; got "
                         f"shape {R.shape}.")
    if R.shape[1] not in n_params:
        raise ValueError(f"R has {R.shape[1]} columns, but the model has {names}; give one "
                         "column per parameter.")
    if not np.all(np.isfinite(R)):
        raise ValueError("R contains NaN or inf.")
    rank = np.linalg.matrix_rank(R)
    if rank < R.shape[0]:
        raise ValueError(f"R has rank {rank} < {R.shape[0]} rows: its restrictions are linearly "
                         "dependent; drop the redundant rows.")
    m = R.shape[0]
    if q is None:
        q = np.zeros(m)
    else:
        q = np.asarray(_host(q), dtype=np.float64).ravel()
        if q.shape[0] == 1 and m > 1:
            q = np.full(m, q[0])
        if q.shape[0] != m:
            raise ValueError(f"q has length {q.shape[0]}, but R has {m} rows; give one "
                             "hypothesised value per row of R.")
        if not np.all(np.isfinite(q)):
            raise ValueError("q contains NaN or inf.")
    return R, q


def t_test(R, q, theta, cov, df, use_t):
    """Row-wise tests of ``R theta = q`` with covariance ``cov`` (see :class:`TTestResult`)."""
    effect = R @ theta
    sd = np.sqrt(np.einsum("ij,jk,ik->i", R, cov, R))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (effect - q) / sd
    if use_t:
        pvalue = 2 * scipy.stats.t.sf(np.abs(stat), df)
    else:
        pvalue = 2 * scipy.stats.norm.sf(np.abs(stat))
    return TTestResult(effect=effect, q=q, sd=sd, statistic=stat, pvalue=pvalue,
                       df_denom=int(df), distribution="t" if use_t else "norm")


def wald_test(R, q, theta, cov, df, use_f):
    """Joint Wald test of ``R theta = q`` (see :class:`WaldTestResult`).

    As statsmodels: the inverse is a pseudo-inverse, and when ``R V R^T`` is
    singular (e.g. fewer clusters than restrictions) the number of restrictions
    becomes its rank, with a warning.
    """
    diff = R @ theta - q
    V = R @ cov @ R.T
    V = (V + V.T) / 2
    if not np.all(np.isfinite(V)):
        raise ValueError("The covariance of R theta is not finite (HC2/HC3 with observations "
                         "of leverage 1, or no residual degrees of freedom); no Wald test is "
                         "possible. Use another cov_type or drop the rows fitted exactly.")
    J = R.shape[0]
    rank = int(np.linalg.matrix_rank(V))
    if rank < J:
        warnings.warn(f"The covariance of the restrictions has rank {rank} < {J} restrictions "
                      f"(e.g. too few clusters); the test uses {rank} degrees of freedom.",
                      RuntimeWarning, stacklevel=user_stacklevel())
        J = rank
    W = float(diff @ np.linalg.pinv(V) @ diff)
    if use_f:
        F = W / J if J else float("nan")
        pvalue = float(scipy.stats.f.sf(F, J, df)) if J and df > 0 else float("nan")
        return WaldTestResult(statistic=F, pvalue=pvalue, df_num=J, df_denom=int(df),
                              distribution="F")
    pvalue = float(scipy.stats.chi2.sf(W, J)) if J else float("nan")
    return WaldTestResult(statistic=W, pvalue=pvalue, df_num=J, df_denom=None,
                          distribution="chi2")


def normal_or_t_quantile(alpha, df, use_t):
    """``1 - alpha/2`` quantile of Student's t with ``df`` dof, or of the normal."""
    if not use_t:
        return float(scipy.stats.norm.ppf(1.0 - alpha / 2.0))
    if df <= 0:
        return float("nan")
    return float(scipy.stats.t.ppf(1.0 - alpha / 2.0, df))
