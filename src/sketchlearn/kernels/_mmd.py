"""Maximum mean discrepancy between samples, and between a sample and a subset of it."""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import is_array_api_obj

from .._array_api import get_namespace, move_to, public_function
from .._cold_start import reference_until_compiled
from .._validation import check_array, check_same_n_features, check_weights
from ._bandwidth import make_kernel
from ._sums import kernel_matvec_op, small_for_reference

__all__ = ["mmd", "mmd_subset"]


def _mmd_work(X, Y=None, **_):
    """Kernel evaluations times features of an MMD (device="auto")."""
    n, d = np.shape(X)
    return float(n + (0 if Y is None else np.shape(Y)[0])) ** 2 * d


def _quadratic(xp, A, B, wa, wb, kernel):
    """wa^T K(A, B) wb, as a Python float."""
    Kw = kernel_matvec_op(xp, A, B, wb[:, None], kernel)[:, 0]
    return float(xp.sum(wa * Kw))


def _finish(m2, squared, unbiased):
    if squared:
        return m2
    if unbiased:
        raise ValueError(
            "The unbiased U-statistic estimates MMD^2 (it can be negative); pass squared=True."
        )
    return math.sqrt(max(m2, 0.0))


@public_function(arrays=("X", "Y", "weights_x", "weights_y"), work=_mmd_work,
                 dask="sketchlearn.kernels._dask:mmd_dask")
def mmd(X, Y, kernel="gaussian", *, bandwidth=None, weights_x=None, weights_y=None,
        unbiased=False, squared=False, **kernel_params):
    """Maximum mean discrepancy between two samples.

    ``MMD^2 = E k(x, x') - 2 E k(x, y) + E k(y, y')``, estimated by the V-statistic
    (default; weighted samples allowed) or the unbiased U-statistic, which drops
    the ``i = j`` terms of the within-sample sums. Kernel sums are computed in blocks:
    memory is O((n + m) d), never an ``n x m`` matrix.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        First sample (NumPy or CuPy, or a Dask array: the quadratic forms are then
        summed over pairs of row chunks, equal to the in-memory value to rounding).
    Y : array of shape (m_samples, n_features)
        Second sample, same library and number of features.
    kernel : str or Kernel, default="gaussian"
        Kernel name or object (see :func:`sketchlearn.kernels.make_kernel`); with the
        ``"energy"`` kernel, MMD^2 is the energy distance.
    bandwidth : float, "median", "scott" or None
        Bandwidth of a named kernel; ``None`` is the median heuristic on the pooled
        sample.
    weights_x, weights_y : array, optional
        Probability weights of the rows (non-negative, summing to one). Only with
        the V-statistic.
    unbiased : bool, default=False
        Return the unbiased U-statistic of MMD^2 (needs ``squared=True``, since it
        can be negative, and at least two rows per sample).
    squared : bool, default=False
        Return MMD^2 instead of MMD.
    **kernel_params
        Other parameters of a named kernel (``nu``, ``exponent``).

    Returns
    -------
    value : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.metrics import mmd
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 1.0
    >>> round(mmd(X, Y, bandwidth=1.0), 3)
    0.454
    >>> mmd(X, X, bandwidth=1.0)
    0.0
    """
    X = check_array(X, "X")
    Y = check_array(Y, "Y")
    check_same_n_features(X, Y)
    k = make_kernel(kernel, bandwidth, X, Y, **kernel_params)
    n, m = X.shape[0], Y.shape[0]
    if unbiased and (weights_x is not None or weights_y is not None):
        raise ValueError("unbiased=True takes unweighted samples; drop weights_x/weights_y.")
    if unbiased and min(n, m) < 2:
        raise ValueError("The unbiased estimate needs at least 2 samples in X and in Y.")
    xp = get_namespace(X, Y)
    wx = _weights(weights_x, n, "weights_x", xp, X.dtype)
    wy = _weights(weights_y, m, "weights_y", xp, X.dtype)
    with reference_until_compiled(small=small_for_reference((n + m) ** 2, X.shape[1])):
        xx = _quadratic(xp, X, X, wx, wx, k)
        xy = _quadratic(xp, X, Y, wx, wy, k)
        yy = _quadratic(xp, Y, Y, wy, wy, k)
    return mmd_from_quadratics(xx, xy, yy, n, m, k, unbiased, squared)


def mmd_from_quadratics(xx, xy, yy, n, m, k, unbiased, squared):
    """The MMD from its three quadratic forms ``w^T K w`` (in memory or summed over
    block pairs on Dask)."""
    if unbiased:
        # Uniform weights: remove the diagonal k(x, x) / n^2 and rescale n^2 / (n (n-1)).
        k0 = k.diagonal_value
        xx = (xx * n * n - n * k0) / (n * (n - 1))
        yy = (yy * m * m - m * k0) / (m * (m - 1))
        return _finish(xx - 2 * xy + yy, squared, unbiased)
    return _finish(max(xx - 2 * xy + yy, 0.0), squared, unbiased)


@public_function(arrays=("X", "weights", "sample_weight"), work=_mmd_work)
def mmd_subset(X, indices=None, *, weights=None, sample_weight=None, kernel="gaussian",
               bandwidth=None, squared=False, **kernel_params):
    """MMD between a sample and a subset (or reweighting) of its own rows.

    Compares ``P = sum_i sample_weight_i delta_{X_i}`` (uniform by default) with
    ``Q``, either the uniform distribution on ``X[indices]`` (repeated indices count
    repeatedly) or ``sum_i weights_i delta_{X_i}``. Uses
    ``MMD^2 = q^T K q - 2 q^T K p + p^T K p`` with blocked kernel sums, so memory is
    O(n d); the last term costs O(n^2 d) time.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        The full sample.
    indices : array of int, optional
        Rows forming the subset. Exactly one of ``indices`` and ``weights``.
    weights : array of shape (n_samples,), optional
        Probability weights defining ``Q``.
    sample_weight : array of shape (n_samples,), optional
        Probability weights defining ``P``.
    kernel, bandwidth, **kernel_params
        As in :func:`mmd`; the median bandwidth is computed on ``X``.
    squared : bool, default=False
        Return MMD^2.

    Returns
    -------
    value : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.metrics import mmd, mmd_subset
    >>> X = np.random.default_rng(0).normal(size=(400, 2))
    >>> idx = np.arange(0, 400, 4)
    >>> bool(np.isclose(mmd_subset(X, idx, bandwidth=1.0), mmd(X, X[idx], bandwidth=1.0)))
    True
    """
    X = check_array(X, "X")
    xp = get_namespace(X)
    n = X.shape[0]
    k = make_kernel(kernel, bandwidth, X, **kernel_params)
    if (indices is None) == (weights is None):
        raise ValueError("Pass exactly one of indices and weights.")
    p = _weights(sample_weight, n, "sample_weight", xp, X.dtype)
    if indices is not None:
        idx = _check_indices(indices, n)
        support, counts = np.unique(idx, return_counts=True)
        q_support = counts / idx.shape[0]
    else:
        q = move_to(check_weights(weights, n, "weights", xp=xp), np)
        support = np.flatnonzero(q > 0)
        q_support = q[support]
    S = xp.take(X, move_to(support, xp), axis=0) if support.shape[0] < n else X
    qs = xp.astype(move_to(q_support, xp), X.dtype) if support.shape[0] < n else \
        xp.astype(move_to(_dense(support, q_support, n), xp), X.dtype)
    s = S.shape[0]
    with reference_until_compiled(small=small_for_reference(n * n + 2 * n * s, X.shape[1])):
        qq = _quadratic(xp, S, S, qs, qs, k)
        qp = _quadratic(xp, S, X, qs, p, k)
        pp = _quadratic(xp, X, X, p, p, k)
    return _finish(max(qq - 2 * qp + pp, 0.0), squared, False)


def _dense(support, values, n):
    out = np.zeros(n)
    out[support] = values
    return out


def _weights(w, n, name, xp, dtype):
    if w is None:
        return xp.full((n,), 1.0 / n, dtype=dtype)
    return check_weights(w, n, name, xp=xp, dtype=dtype)


def _check_indices(indices, n):
    idx = move_to(indices, np) if is_array_api_obj(indices) else np.asarray(indices)
    if idx.ndim != 1 or idx.shape[0] == 0:
        raise ValueError("indices must be a non-empty 1-D array of row numbers.")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}.")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"indices must lie in [0, {n - 1}]; got values from {idx.min()} to "
                         f"{idx.max()}.")
    return idx
