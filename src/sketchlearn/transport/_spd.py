"""Sliced Wasserstein between distributions of SPD matrices (log-Euclidean)."""

from __future__ import annotations

import math

import numpy as np

from .._array_api import move_to, public_function
from .._random import as_generator
from .._validation import (
    COUNT,
    P_EXPONENT,
    SEED,
    check_array,
    check_weights,
)
from ._sliced import _group_std_error, _projected_costs, _root
from ._sliced_ops import slice_wasserstein_op

__all__ = ["spd_sliced_wasserstein"]


def _spd_logs(S, name):
    """Matrix logarithms of a stack of SPD matrices, flattened to (n, k * k)."""
    S = np.asarray(move_to(S, np) if hasattr(S, "__array_namespace__") else S)
    if S.ndim != 3 or S.shape[1] != S.shape[2] or S.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty stack of square matrices, shape "
                         f"(n, k, k); got {S.shape}.")
    S = check_array(S.reshape(S.shape[0], -1), name).reshape(S.shape).astype(np.float64)
    scale = np.abs(S).max(axis=(1, 2), keepdims=True)
    if np.any(np.abs(S - S.transpose(0, 2, 1)) > 1e-8 * np.maximum(scale, 1e-300)):
        raise ValueError(f"{name} holds non-symmetric matrices; SPD matrices are needed "
                         "(symmetrise with (S + S^T) / 2 if that is intended).")
    w, V = np.linalg.eigh((S + S.transpose(0, 2, 1)) / 2)
    if np.any(w <= 0):
        bad = int(np.argmax((w <= 0).any(axis=1)))
        raise ValueError(f"{name}[{bad}] is not positive definite (smallest eigenvalue "
                         f"{w[bad].min():.3g}); every matrix must be SPD.")
    logs = (V * np.log(w)[:, None, :]) @ V.transpose(0, 2, 1)
    return logs.reshape(S.shape[0], -1)


@public_function(arrays=("X", "Y", "a", "b"),
                 params={"p": P_EXPONENT, "n_projections": COUNT, "random_state": SEED,
                         "return_std": ["boolean"]})
def spd_sliced_wasserstein(X, Y, a=None, b=None, *, p=2, n_projections=100,
                           random_state=None, return_std=False):
    r"""Sliced Wasserstein distance between distributions of SPD matrices (log-Euclidean).

    Each SPD matrix :math:`S` is mapped to :math:`\log S` (eigendecomposition), and
    sliced along symmetric directions :math:`A = P\,\mathrm{diag}(\theta)\,P^T` with
    :math:`\theta` uniform on :math:`S^{k-1}` and :math:`P` a Haar-random rotation
    (Bonet et al., SPDSW): the slice of :math:`S` is
    :math:`\langle A, \log S\rangle_F`, and the 1-D distances are exact as in
    :func:`sliced_wasserstein`. The result is invariant to orthogonal congruence
    :math:`S \mapsto Q S Q^T` in distribution and to inversion of both samples.

    Parameters
    ----------
    X : array of shape (n, k, k)
    Y : array of shape (m, k, k)
        Stacks of symmetric positive definite matrices.
    a, b : array of shape (n,) and (m,), optional
        Probability weights; uniform by default.
    p : float >= 1, default=2
    n_projections : int, default=100
    random_state : int, Generator, RandomState or None
    return_std : bool, default=False
        Also return the Monte Carlo standard error.

    Returns
    -------
    distance : float
    std : float
        Only with ``return_std=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import spd_sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> def spd(n, scale):
    ...     A = rng.normal(size=(n, 3, 3))
    ...     return A @ A.transpose(0, 2, 1) + scale * np.eye(3)
    >>> X, Y = spd(100, 1.0), spd(100, 5.0)
    >>> d_xy = spd_sliced_wasserstein(X, Y, random_state=0)
    >>> d_xx = spd_sliced_wasserstein(X, X, random_state=0)
    >>> d_xx, bool(d_xy > 0.3)
    (0.0, True)
    """
    LX = _spd_logs(X, "X")
    LY = _spd_logs(Y, "Y")
    k = int(round(math.sqrt(LX.shape[1])))
    if LY.shape[1] != LX.shape[1]:
        raise ValueError(f"X holds {k}x{k} matrices but Y holds "
                         f"{int(round(math.sqrt(LY.shape[1])))}x"
                         f"{int(round(math.sqrt(LY.shape[1])))}; both need the same size.")
    a = None if a is None else check_weights(a, LX.shape[0], "a", dtype=np.float64)
    b = None if b is None else check_weights(b, LY.shape[0], "b", dtype=np.float64)
    p, L = float(p), int(n_projections)
    rng = as_generator(random_state)
    theta = rng.standard_normal((L, k))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    P, R = np.linalg.qr(rng.standard_normal((L, k, k)))
    P = P * np.where(np.diagonal(R, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]
    A = (P * theta[:, None, :]) @ P.transpose(0, 2, 1)
    w = _projected_costs(np, LX, LY, a, b, A.reshape(L, -1), slice_wasserstein_op, p)
    value = float(np.mean(w))
    se = _group_std_error(w, np.arange(L)) if L > 1 else math.nan
    value, se = _root(value, se, p)
    return (value, se) if return_std else value
