"""Synthetic data sets (generated, so nothing is downloaded)."""

from __future__ import annotations

import numpy as np

from .._array_api import public_function
from .._random import as_generator
from .._validation import COUNT, NON_NEGATIVE, POSITIVE, SEED

__all__ = ["make_gaussian_mixture"]


@public_function(params={"n_samples": COUNT, "n_components": COUNT, "n_features": COUNT,
                         "scale": POSITIVE, "spread": NON_NEGATIVE, "random_state": SEED})
def make_gaussian_mixture(n_samples=1024, n_components=8, n_features=2, *, scale=1.0,
                          spread=4.0, random_state=None):
    """Draw from an equal-weight mixture of isotropic Gaussians.

    With ``n_features=2`` and ``n_components=8`` the means sit evenly on a circle of
    radius ``spread`` (the mixture target of the kernel thinning papers); otherwise
    they are drawn uniformly in the cube ``[-spread, spread]^d`` from the same seed.

    Parameters
    ----------
    n_samples : int, default=1024
        Number of rows.
    n_components : int, default=8
        Number of mixture components.
    n_features : int, default=2
        Dimension.
    scale : float, default=1.0
        Standard deviation of each component.
    spread : float, default=4.0
        Radius (d = 2) or half-width (d != 2) of the region holding the means.
    random_state : int, Generator, RandomState or None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The sample.
    labels : ndarray of shape (n_samples,)
        Component of each row.
    means : ndarray of shape (n_components, n_features)
        Component means.

    Examples
    --------
    >>> from sketchlearn.datasets import make_gaussian_mixture
    >>> X, labels, means = make_gaussian_mixture(100, random_state=0)
    >>> X.shape, means.shape
    ((100, 2), (8, 2))
    """
    rng = as_generator(random_state)
    if n_features == 2:
        angles = 2 * np.pi * np.arange(n_components) / n_components
        means = spread * np.column_stack([np.cos(angles), np.sin(angles)])
    else:
        means = rng.uniform(-spread, spread, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    X = means[labels] + scale * rng.standard_normal((n_samples, n_features))
    return X, labels, means
