"""Extended Gauss-Markov estimators: the least-variance linear estimator under a bias bound.

Among linear estimators ``beta_hat = A y`` of ``y = X beta + e`` (``Cov e =
sigma2 I``), minimise the variance ``sigma2 ||A||_F^2`` subject to a Schatten-norm
bound ``||A X - I||_S <= tau`` on the bias operator. With ``X = U diag(s) V^T``
the optimum is ``A = V diag(d) U^T``; writing ``e_i = 1 - d_i s_i`` (the bias of
direction ``i``) and minimising ``sum (1 - e_i)^2 / s_i^2``:

* Frobenius (``||e||_2 <= tau``): ``d = s / (s^2 + lam)``, ridge regression, with
  ``lam`` solving ``||lam / (s^2 + lam)||_2 = tau``;
* nuclear (``||e||_1 <= tau``): ``d = min(c s, 1 / s)``, with ``c`` solving
  ``sum max(0, 1 - c s^2) = tau``: directions with small ``s`` are shrunk (up to
  dropped), strong ones are left unbiased;
* spectral (``max |e_i| <= tau``): ``d = (1 - tau) / s``, OLS scaled by
  ``1 - tau``.

The bias is measured on the row space of ``X``: null-space directions of a
rank-deficient design cannot be estimated by any linear estimator and are left
out of the bound (their coefficient is 0). ``tau`` at or above the norm of the
all-ones bias (``sqrt(r)``, ``r``, ``1`` for rank ``r``) gives ``A = 0``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

__all__ = ["NORMS", "tau_max", "shrinkage_factors", "filter_factors"]

NORMS = ("frobenius", "nuclear", "spectral")


def tau_max(norm: str, rank: int) -> float:
    """Bias norm of the zero estimator (every ``e_i = 1``): the largest useful ``tau``."""
    return {"frobenius": math.sqrt(rank), "nuclear": float(rank), "spectral": 1.0}[norm]


def _frobenius_lambda(s2, tau):
    """``lam > 0`` with ``sum (lam / (s2 + lam))^2 = tau^2`` (increasing in ``lam``).

    Bracket: at ``lam = tau / (2 ||1/s2||)`` the norm is below ``tau / 2``; at
    ``lam = 4 sum(s2) / (r - tau^2)`` the squared norm exceeds ``(r + tau^2) / 2``.
    """
    def excess(log_lam):
        lam = math.exp(log_lam)
        return float(np.sum((lam / (s2 + lam)) ** 2)) - tau**2

    lo = math.log(tau / (2.0 * float(np.linalg.norm(1.0 / s2))))
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


def filter_factors(s, norm: str, tau: float):
    """Spectral filter ``d`` of the optimal extended Gauss-Markov estimator.

    Parameters
    ----------
    s : ndarray of shape (r,)
        Positive singular values of the design.
    norm : {"frobenius", "nuclear", "spectral"}
        Schatten norm of the bias bound.
    tau : float >= 0
        Bias bound; 0 gives OLS (``d = 1 / s``).

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
    """
    s = np.asarray(s, dtype=np.float64)
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not one of {NORMS}.")
    if not tau >= 0:
        raise ValueError(f"tau={tau!r} must be >= 0 (0 gives the unbiased OLS estimator).")
    if s.size == 0:
        return s.copy()
    if tau == 0:
        return 1.0 / s
    if tau >= tau_max(norm, s.size):
        return np.zeros_like(s)
    if norm == "spectral":
        return (1.0 - tau) / s
    s2 = s * s
    if norm == "frobenius":
        return s / (s2 + _frobenius_lambda(s2, tau))
    c = _nuclear_c(s2, tau)
    return np.minimum(c * s, 1.0 / s)


def shrinkage_factors(s, norm: str, tau: float):
    """``d * s``: how much of each singular direction the estimator keeps (1 = OLS).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import shrinkage_factors
    >>> np.round(shrinkage_factors(np.array([2.0, 1.0]), "frobenius", 0.0), 3)
    array([1., 1.])
    """
    s = np.asarray(s, dtype=np.float64)
    return filter_factors(s, norm, tau) * s
