"""Extended Gauss-Markov estimators: the least-variance linear estimator under a bias bound.

Among linear estimators ``beta_hat = A y`` of ``y = X beta + e`` (``Cov e =
sigma2 I``), minimise the variance ``sigma2 ||A||_F^2`` subject to a Schatten-norm
bound ``||A X - I||_S <= tau`` on the bias operator (Segert, 2023: ``min ||L||_F``
subject to ``||L X - I||_p <= C``, ``L`` of shape ``(p, n)``, so the bias operator
is ``p x p``). With ``X = U diag(s) V^T`` (``r`` positive singular values) the
optimum is ``A = V diag(d) U^T``; writing ``e_i = 1 - d_i s_i`` (the bias of
direction ``i``) and minimising ``sum (1 - e_i)^2 / s_i^2``:

* Frobenius (``||e||_2 <= tau``): ``d = s / (s^2 + lam)``, ridge regression, with
  ``lam`` solving ``||lam / (s^2 + lam)||_2 = tau``;
* nuclear (``||e||_1 <= tau``): ``d = min(c s, 1 / s)``, with ``c`` solving
  ``sum max(0, 1 - c s^2) = tau``: directions with small ``s`` are shrunk (up to
  dropped), strong ones are left unbiased;
* spectral (``max |e_i| <= tau``): ``d = (1 - tau) / s``, OLS scaled by
  ``1 - tau``.

A rank-deficient design (``r < p``) has two readings of the bound:

* row space (``n_features=None``; ``bias_space="row"`` in the estimators): the
  bias is measured on the ``r`` directions of the row space of ``X``, the vector
  ``e`` above. ``tau = 0`` is the minimum-norm least-squares fit, and ``tau`` at
  or above the norm of the all-ones ``e`` (``sqrt(r)``, ``r``, ``1``) gives
  ``A = 0``.
* the full ``p x p`` operator (``n_features=p``; ``bias_space="full"``), as in
  the paper. On a null vector ``v`` of ``X``, ``(A X - I) v = -v`` whatever
  ``A``: the operator is ``-I`` on the ``p - r`` null directions, block-diagonal
  with the row-space part at the optimum (a component of ``A`` off the row space
  adds variance and, by the pinching inequality, never lowers a unitarily
  invariant norm). Its singular values are ``|e_1|, ..., |e_r|`` and ``p - r``
  ones, so the bound is the row-space bound with a smaller budget:
  ``||e||_1 <= tau - (p - r)`` (nuclear), ``||e||_2^2 <= tau^2 - (p - r)``
  (Frobenius), ``max(max |e_i|, 1) <= tau`` (spectral). It is infeasible below
  ``p - r``, ``sqrt(p - r)`` and ``1`` (a ``ValueError``); a spectral bound
  ``tau >= 1`` with ``r < p`` leaves ``A = 0`` as the only optimum. ``tau`` at
  or above ``sqrt(p)``, ``p``, ``1`` gives ``A = 0``.

Both readings give the same family of estimators for the Frobenius and nuclear
norms (the full bound is the row-space bound shifted by what no estimator can
change) and coincide when ``X`` has full column rank.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
from sklearn.utils._param_validation import StrOptions, validate_params

from .._validation import NON_NEGATIVE, STEPS

__all__ = ["NORMS", "BIAS_SPACES", "tau_max", "tau_min", "row_space_tau",
           "operator_tau", "shrinkage_factors", "filter_factors"]

NORMS = ("frobenius", "nuclear", "spectral")
BIAS_SPACES = ("row", "full")

# Constraints of filter_factors and shrinkage_factors: host functions on a few singular
# values, outside the device policy, so scikit-learn's validate_params checks them (and
# skips the check inside an estimator's fit, which checked its own parameters).
_FILTER_PARAMS = {"s": ["array-like"], "norm": [StrOptions(set(NORMS))], "tau": NON_NEGATIVE,
                  "n_features": [*STEPS, None]}


def _null_dim(rank: int, n_features) -> int:
    """``p - r``: directions of the bias operator no linear estimator can touch."""
    if n_features is None:
        return 0
    if n_features < rank:
        raise ValueError(f"n_features={n_features!r} must be an int >= the rank {rank} of the "
                         "design (or None to bound the bias on the row space only).")
    return int(n_features) - rank


def _norm_of_ones(norm: str, count: int) -> float:
    """Schatten norm of the identity on ``count`` directions (0 when there are none)."""
    if count == 0:
        return 0.0
    return {"frobenius": math.sqrt(count), "nuclear": float(count), "spectral": 1.0}[norm]


def tau_max(norm: str, rank: int, n_features=None) -> float:
    """Bias norm of the zero estimator (every ``e_i = 1``): the largest useful ``tau``.

    ``sqrt(r)``, ``r``, ``1`` on the row space (``n_features=None``); ``sqrt(p)``,
    ``p``, ``1`` for the ``p x p`` operator (``n_features=p``).
    """
    dim = rank + _null_dim(rank, n_features)
    return {"frobenius": math.sqrt(dim), "nuclear": float(dim), "spectral": 1.0}[norm]


def tau_min(norm: str, rank: int, n_features=None) -> float:
    """Smallest feasible ``tau``: 0 on the row space, the norm of the identity on the
    ``p - r`` null directions for the ``p x p`` operator (``sqrt(p - r)``, ``p - r``,
    1; 0 when ``r = p``)."""
    return _norm_of_ones(norm, _null_dim(rank, n_features))


def row_space_tau(norm: str, tau: float, rank: int, n_features=None) -> float:
    """The row-space bound equivalent to a bound ``tau`` on the bias operator.

    With ``n_features=None`` it is ``tau``. With ``n_features=p > r`` it is
    ``tau - (p - r)`` (nuclear), ``sqrt(tau^2 - (p - r))`` (Frobenius) or ``tau``
    itself (spectral, where any ``tau >= 1`` allows the all-ones bias and so gives
    ``A = 0``); a ``tau`` below :func:`tau_min` raises a ``ValueError``.
    """
    null = _null_dim(rank, n_features)
    if null == 0:
        return float(tau)
    lowest = tau_min(norm, rank, n_features)
    if tau < lowest:
        raise ValueError(
            f"tau={tau!r} is infeasible for the {norm} norm of the p x p bias operator: the "
            f"design has rank {rank} < p = {n_features}, and on its {null} null-space "
            "direction(s) every linear estimator has bias 1, so that norm is at least "
            f"{lowest:.6g}. Use tau >= {lowest:.6g}, or bound the bias on the row space "
            "only (bias_space='row' in the estimators, n_features=None in the functions).")
    if norm == "nuclear":
        return float(tau) - null
    if norm == "frobenius":
        return math.sqrt(max(float(tau) * float(tau) - null, 0.0))
    return float(tau)


def operator_tau(norm: str, tau_row, rank: int, n_features=None):
    """Inverse of :func:`row_space_tau`: the bound on the ``p x p`` operator whose
    row-space budget is ``tau_row`` (array-valued; spectral with ``r < p`` maps every
    budget to 1, the only feasible bound below the zero estimator's)."""
    tau_row = np.asarray(tau_row, dtype=np.float64)
    null = _null_dim(rank, n_features)
    if null == 0:
        return tau_row.copy()
    if norm == "nuclear":
        return tau_row + null
    if norm == "frobenius":
        return np.sqrt(tau_row * tau_row + null)
    return np.ones_like(tau_row)


def _frobenius_lambda(s2, tau):
    """``lam > 0`` with ``sum (lam / (s2 + lam))^2 = tau^2`` (increasing in ``lam``).

    Bracket: at ``lam = tau / (2 ||1/s2||)`` the norm is below ``tau / 2``; at
    ``lam = 4 sum(s2) / (r - tau^2)`` the squared norm exceeds ``(r + tau^2) / 2``.
    """
    def excess(log_lam):
        lam = math.exp(log_lam)
        return float(np.sum((lam / (s2 + lam)) ** 2)) - tau**2

    # in logs: a subnormal tau would underflow the quotient to 0
    lo = math.log(tau) - math.log(2.0 * float(np.linalg.norm(1.0 / s2)))
    hi = math.log(4.0 * float(np.sum(s2)) / (s2.size - tau**2))
    return math.exp(scipy.optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-15,
                                          maxiter=500))


def _nuclear_c(s2, tau):
    """``c > 0`` with ``sum max(0, 1 - c s2) = tau``.

    Exact: with the ``k`` smallest ``s2`` active, ``c = (k - tau) / sum of them``,
    valid when the ``k``-th is active and the next is not.
    """
    s2_sorted = np.sort(s2)  # ascending: the smallest singular values are shrunk first
    partial = np.cumsum(s2_sorted)
    for k in range(1, s2_sorted.size + 1):
        c = (k - tau) / partial[k - 1]
        next_inactive = k == s2_sorted.size or c * s2_sorted[k] >= 1.0 - 1e-12
        if c > 0 and c * s2_sorted[k - 1] <= 1.0 + 1e-12 and next_inactive:
            return c

    # rounding pushed every candidate off its interval: solve the monotone equation
    def excess(log_c):
        return float(np.sum(np.maximum(0.0, 1.0 - math.exp(log_c) * s2))) - tau

    lo = math.log((s2.size - tau) / (2.0 * float(np.sum(s2))))
    return math.exp(scipy.optimize.brentq(excess, lo, -math.log(float(s2.min())),
                                          xtol=1e-15, maxiter=500))


def _row_filter(s, norm, tau):
    """Filter for a bound ``tau`` on the row-space bias vector ``e`` (``r = s.size``)."""
    if s.size == 0:
        return s.copy()
    if tau == 0:
        return 1.0 / s
    if tau >= tau_max(norm, s.size) or (norm == "frobenius" and tau * tau >= s.size):
        return np.zeros_like(s)  # the second test: tau^2 rounded up to r, no lam > 0 left
    if norm == "spectral":
        return (1.0 - tau) / s
    s2 = s * s
    if norm == "frobenius":
        return s / (s2 + _frobenius_lambda(s2, tau))
    c = _nuclear_c(s2, tau)
    return np.minimum(c * s, 1.0 / s)


@validate_params(_FILTER_PARAMS, prefer_skip_nested_validation=True)
def filter_factors(s, norm: str, tau: float, n_features=None):
    """Spectral filter ``d`` of the optimal extended Gauss-Markov estimator.

    Parameters
    ----------
    s : ndarray of shape (r,)
        Positive singular values of the design.
    norm : {"frobenius", "nuclear", "spectral"}
        Schatten norm of the bias bound.
    tau : float >= 0
        Bias bound; 0 gives OLS (``d = 1 / s``) on the row space.
    n_features : int >= r or None, default=None
        None bounds the bias on the row space of the design (the ``r``
        directions of ``s``). An int ``p`` bounds the whole ``p x p`` operator
        ``A X - I``, which is ``-I`` on the ``p - r`` null directions whatever
        ``A``: they take ``p - r`` (nuclear), ``p - r`` of the squared
        (Frobenius) or all below 1 (spectral) of the budget, and a ``tau``
        below ``p - r``, ``sqrt(p - r)`` or 1 raises a ``ValueError``.

    Returns
    -------
    d : ndarray of shape (r,)
        ``A = V diag(d) U^T``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import filter_factors
    >>> s = np.array([4.0, 1.0, 0.25])
    >>> np.round(filter_factors(s, "spectral", 0.5) * s, 3)   # each bias 1 - d s = 0.5
    array([0.5, 0.5, 0.5])
    >>> np.round(1 - filter_factors(s, "nuclear", 1.0) * s, 3)  # biases sum to 1
    array([0.   , 0.059, 0.941])

    With 5 features and rank 3 the two null directions take 2 of a nuclear
    budget of 3, leaving the row space the budget of 1 above:

    >>> np.round(1 - filter_factors(s, "nuclear", 3.0, n_features=5) * s, 3)
    array([0.   , 0.059, 0.941])
    """
    s = np.asarray(s, dtype=np.float64)
    tau_row = row_space_tau(norm, float(tau), s.size, n_features)
    if tau >= tau_max(norm, s.size, n_features):
        return np.zeros_like(s)
    return _row_filter(s, norm, tau_row)


@validate_params(_FILTER_PARAMS, prefer_skip_nested_validation=True)
def shrinkage_factors(s, norm: str, tau: float, n_features=None):
    """``d * s``: how much of each singular direction the estimator keeps (1 = OLS).

    ``n_features`` as in :func:`filter_factors`.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import shrinkage_factors
    >>> np.round(shrinkage_factors(np.array([2.0, 1.0]), "frobenius", 0.0), 3)
    array([1., 1.])
    """
    s = np.asarray(s, dtype=np.float64)
    return filter_factors(s, norm, tau, n_features) * s
