"""Bandwidth rules and the resolution of ``kernel=`` arguments into Kernel objects."""

from __future__ import annotations

import math

import numpy as np

from .._array_api import get_namespace, to_numpy
from .._random import as_generator
from .._validation import check_array
from ._kernels import KERNEL_NAMES, Kernel, RieszKernel

__all__ = ["median_heuristic", "scott_bandwidth", "make_kernel"]

_MEDIAN_MAX_SAMPLES = 1000


def median_heuristic(X, Y=None, *, max_samples: int = _MEDIAN_MAX_SAMPLES, random_state=0):
    """Median of the pairwise Euclidean distances, a standard kernel bandwidth.

    Distances are taken over distinct pairs of the pooled rows of ``X`` and ``Y``;
    above ``max_samples`` rows a random subset of that size is used (seeded, so the
    result is reproducible).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data.
    Y : array of shape (m_samples, n_features), optional
        Second sample, pooled with ``X``.
    max_samples : int, default=1000
        Largest number of rows used.
    random_state : int, Generator or None, default=0
        Seed of the subset.

    Returns
    -------
    bandwidth : float
        The median distance; 1.0 when all points coincide (so a kernel stays defined).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import median_heuristic
    >>> median_heuristic(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    Z = _pooled_host_sample(X, Y, max_samples, random_state)
    diff = Z[:, None, :] - Z[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    upper = dist[np.triu_indices(Z.shape[0], k=1)]
    if upper.size == 0:
        return 1.0
    value = float(np.median(upper))
    return value if value > 0 else 1.0


def scott_bandwidth(X):
    """Scott's rule ``n^(-1/(d+4))`` times the root mean per-feature variance.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data (at least two samples).

    Returns
    -------
    bandwidth : float
        1.0 for constant data.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import scott_bandwidth
    >>> X = np.random.default_rng(0).normal(size=(10_000, 1))
    >>> round(scott_bandwidth(X), 2)
    0.16
    """
    X = to_numpy(check_array(X, "X", min_samples=2))
    n, d = X.shape
    spread = math.sqrt(float(np.mean(np.var(X, axis=0, ddof=1))))
    return spread * n ** (-1.0 / (d + 4)) if spread > 0 else 1.0


def _pooled_host_sample(X, Y, max_samples, random_state):
    X = to_numpy(X)
    Z = X if Y is None else np.concatenate([X, to_numpy(Y)], axis=0)
    if Z.shape[0] > max_samples:
        rows = as_generator(random_state).choice(Z.shape[0], size=max_samples, replace=False)
        Z = Z[np.sort(rows)]
    return np.asarray(Z, dtype=np.float64)


def make_kernel(kernel, bandwidth=None, X=None, Y=None, **params) -> Kernel:
    """Resolve a ``kernel=`` argument into a :class:`Kernel`.

    Parameters
    ----------
    kernel : str or Kernel
        A name (``"gaussian"``, ``"laplace"``, ``"matern"``, ``"imq"``, ``"sinc"``,
        ``"riesz"``/``"energy"``) or a Kernel object (used as is).
    bandwidth : float, "median", "scott" or None
        Length scale for a named kernel; ``None`` means ``"median"`` (and 1.0 for
        the scale-free Riesz kernel). Must be left as ``None`` for a Kernel object.
    X, Y : arrays, optional
        Data for the bandwidth rules.
    **params
        Other parameters of the named kernel (``nu``, ``exponent``).

    Returns
    -------
    kernel : Kernel

    Examples
    --------
    >>> from sketchlearn.kernels import make_kernel
    >>> make_kernel("matern", bandwidth=2.0, nu=2.5)
    MaternKernel(bandwidth=2.0, nu=2.5)
    """
    if isinstance(kernel, Kernel):
        if bandwidth is not None or params:
            raise ValueError(
                "bandwidth and kernel parameters go into the Kernel object itself; pass "
                "kernel=GaussianKernel(bandwidth=...) or kernel='gaussian', bandwidth=..."
            )
        return kernel
    if not isinstance(kernel, str) or kernel.lower() not in KERNEL_NAMES:
        raise ValueError(
            f"kernel must be a Kernel object or one of {sorted(KERNEL_NAMES)}, got {kernel!r}."
        )
    cls = KERNEL_NAMES[kernel.lower()]
    if bandwidth is None:
        bandwidth = 1.0 if cls is RieszKernel else "median"
    if isinstance(bandwidth, str):
        if X is None:
            raise ValueError(f"bandwidth={bandwidth!r} needs data to be computed from.")
        if bandwidth == "median":
            bandwidth = median_heuristic(X, Y)
        elif bandwidth == "scott":
            bandwidth = scott_bandwidth(X if Y is None else _concat(X, Y))
        else:
            raise ValueError(
                f"bandwidth must be a positive number, 'median' or 'scott', got {bandwidth!r}."
            )
    try:
        return cls(bandwidth=bandwidth, **params)
    except TypeError as exc:
        raise TypeError(f"Invalid parameters for kernel {kernel!r}: {exc}") from exc


def _concat(X, Y):
    xp = get_namespace(X, Y)
    return xp.concat([X, Y], axis=0)
