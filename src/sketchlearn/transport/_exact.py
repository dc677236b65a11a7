"""Exact Wasserstein distances: network simplex (POT), 1-D quantiles, Gaussians."""

from __future__ import annotations

import numpy as np

from .._array_api import move_to, public_function
from .._validation import (
    COUNT,
    P_EXPONENT,
    check_array,
)
from ._sliced import check_clouds
from ._sliced_ops import slice_wasserstein_op

__all__ = ["wasserstein", "gaussian_wasserstein"]


@public_function(arrays=("X", "Y", "a", "b"), params={"p": P_EXPONENT, "max_iter": COUNT})
def wasserstein(X, Y, a=None, b=None, *, p=2, max_iter=10_000_000):
    r"""Exact p-Wasserstein distance between two weighted point clouds.

    .. math::

        W_p(\mu, \nu) = \Big(\min_{P \in U(a, b)} \sum_{ij} P_{ij} \|x_i - y_j\|^p
        \Big)^{1/p}.

    In one dimension it is computed from the quantile functions (sorting, no cost
    matrix, O((n + m) log(n + m))); otherwise by POT's network simplex
    (``ot.emd2``) on the Euclidean cost matrix, which needs O(n m) memory.

    Parameters
    ----------
    X : array of shape (n, d)
    Y : array of shape (m, d)
        Supports (same ``d``).
    a, b : array of shape (n,) and (m,), optional
        Probability weights; uniform by default.
    p : float >= 1, default=2
        Order.
    max_iter : int, default=10_000_000
        Iteration cap of the network simplex (POT warns when it is reached).

    Returns
    -------
    distance : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import wasserstein
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> Y = X + [0.0, 2.0]
    >>> wasserstein(X, Y)
    2.0
    >>> wasserstein(np.array([[0.0], [1.0]]), np.array([[3.0]]), p=1)
    2.5
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    p = float(p)
    if X.shape[1] == 1:
        w = slice_wasserstein_op(xp, X.T, Y.T, a, b, p)
        return max(float(move_to(w, np)[0]), 0.0) ** (1.0 / p)
    import ot

    Xh = move_to(X, np).astype(np.float64)
    Yh = move_to(Y, np).astype(np.float64)
    n, m = Xh.shape[0], Yh.shape[0]
    ah = np.full(n, 1.0 / n) if a is None else move_to(a, np).astype(np.float64)
    bh = np.full(m, 1.0 / m) if b is None else move_to(b, np).astype(np.float64)
    bh = bh * (ah.sum() / bh.sum())  # POT wants equal masses to machine precision
    sq = np.maximum((Xh**2).sum(1)[:, None] + (Yh**2).sum(1)[None, :] - 2 * Xh @ Yh.T, 0.0)
    M = sq if p == 2 else np.sqrt(sq) ** p
    cost = float(ot.emd2(ah, bh, M, numItermax=int(max_iter)))
    return max(cost, 0.0) ** (1.0 / p)


def _check_gaussian(mean, cov, name):
    mean = check_array(mean, f"m{name}", ensure_2d=False)
    cov = check_array(cov, f"C{name}")
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"C{name} must have shape ({d}, {d}) to match m{name}; got "
                         f"{tuple(cov.shape)}.")
    C = move_to(cov, np).astype(np.float64)
    if not np.allclose(C, C.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(C).max())):
        raise ValueError(f"C{name} is not symmetric; pass (C + C.T) / 2 if that is intended.")
    C = (C + C.T) / 2
    evals, evecs = np.linalg.eigh(C)
    tol = 1e-10 * max(1.0, abs(evals).max())
    if evals.min() < -tol:
        raise ValueError(f"C{name} is not positive semi-definite (smallest eigenvalue "
                         f"{evals.min():.3g}); a covariance matrix is needed.")
    return move_to(mean, np).astype(np.float64), np.clip(evals, 0, None), evecs


def gaussian_wasserstein(m1, C1, m2, C2, *, squared=False):
    r"""2-Wasserstein distance between two Gaussians (Bures-Wasserstein), closed form.

    .. math::

        W_2^2 = \|m_1 - m_2\|^2 + \mathrm{tr}\big(C_1 + C_2
        - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2}\big).

    The square roots come from symmetric eigendecompositions with negative rounding
    clipped to zero, so singular (positive semi-definite) covariances are fine.

    Parameters
    ----------
    m1, m2 : array of shape (d,)
        Means.
    C1, C2 : array of shape (d, d)
        Covariance matrices (symmetric positive semi-definite).
    squared : bool, default=False
        Return :math:`W_2^2`.

    Returns
    -------
    distance : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import gaussian_wasserstein
    >>> gaussian_wasserstein(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    2.0
    """
    m1, e1, V1 = _check_gaussian(m1, C1, "1")
    m2, e2, V2 = _check_gaussian(m2, C2, "2")
    if m1.shape != m2.shape:
        raise ValueError(f"m1 and m2 have different dimensions ({m1.shape[0]} and "
                         f"{m2.shape[0]}).")
    S1 = (V1 * np.sqrt(e1)) @ V1.T
    C2s = (V2 * e2) @ V2.T
    inner = S1 @ C2s @ S1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    w2 = float(((m1 - m2) ** 2).sum() + e1.sum() + e2.sum() - 2 * cross)
    w2 = max(w2, 0.0)
    return w2 if squared else w2**0.5
