"""Random numbers: drawn on the host with NumPy, then moved to the caller's device.

Drawing on the host keeps results identical for NumPy and CuPy inputs given the
same seed (up to floating-point rounding in what is computed from the draws).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._array_api import move_to

__all__ = ["as_generator", "random_normal", "random_uniform", "random_permutation", "ROW_BLOCK",
           "row_keyed"]

# Rows per block of row-keyed random numbers (see row_keyed).
ROW_BLOCK = 2**16


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
    >>> bool(as_generator(0).integers(10) == as_generator(0).integers(10))
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


def row_keyed(seed: int, stream: int, start: int, stop: int, draw) -> np.ndarray:
    """Random numbers of rows ``start`` to ``stop - 1`` of a per-row sequence.

    The rows are cut into fixed blocks of ``ROW_BLOCK``; block ``b`` draws its
    ``ROW_BLOCK`` numbers with ``draw(generator, ROW_BLOCK)`` from its own generator,
    seeded by ``(seed, stream, b)``. A row's number therefore depends on its global
    index only: the same whether the rows are drawn at once, in any chunks (Dask), or
    for any total number of rows. ``stream`` separates the sequences of one seed
    (signs, buckets, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn._random import row_keyed
    >>> signs = lambda g, size: g.choice(np.array([-1.0, 1.0]), size=size)
    >>> whole = row_keyed(7, 0, 0, 100_000, signs)
    >>> bool(np.array_equal(whole[65_000:70_000], row_keyed(7, 0, 65_000, 70_000, signs)))
    True
    """
    if stop <= start:
        return draw(np.random.default_rng([seed, stream, 0]), 0)
    first, last = start // ROW_BLOCK, (stop - 1) // ROW_BLOCK
    parts = [draw(np.random.default_rng([seed, stream, b]), ROW_BLOCK)
             for b in range(first, last + 1)]
    whole = parts[0] if len(parts) == 1 else np.concatenate(parts)
    offset = first * ROW_BLOCK
    return whole[start - offset:stop - offset]
