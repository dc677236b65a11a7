"""Random numbers: drawn on the host with NumPy, then moved to the caller's device.

Drawing on the host keeps results identical for NumPy and CuPy inputs given the
same seed (up to floating-point rounding in what is computed from the draws).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._array_api import move_to

__all__ = ["as_generator", "random_normal", "random_uniform", "random_permutation"]


def as_generator(random_state) -> np.random.Generator:
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        ``None`` gives fresh entropy; an int seeds a new generator; a Generator is
        used as is (and advanced); a RandomState seeds a new Generator from its
        stream, so the caller's RandomState advances as scikit-learn's do.

    Examples
    --------
    >>> from sketchlearn._random import as_generator
    >>> as_generator(0).integers(10) == as_generator(0).integers(10)
    True
    """
    if random_state is None or isinstance(random_state, numbers.Integral):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}.")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
    raise TypeError(
        "random_state must be None, an int, a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {type(random_state).__name__}."
    )


def random_normal(rng: np.random.Generator, shape, xp, dtype=None):
    """Standard normal draws of ``shape`` as an array of namespace ``xp``."""
    draws = rng.standard_normal(shape)
    return _cast(move_to(draws, xp), xp, dtype)


def random_uniform(rng: np.random.Generator, shape, xp, dtype=None):
    """Uniform draws on [0, 1) of ``shape`` as an array of namespace ``xp``."""
    return _cast(move_to(rng.random(shape), xp), xp, dtype)


def random_permutation(rng: np.random.Generator, n: int, xp):
    """A random permutation of ``range(n)`` as an integer array of namespace ``xp``."""
    return move_to(rng.permutation(n), xp)


def _cast(x, xp, dtype):
    return x if dtype is None else xp.astype(x, dtype)
