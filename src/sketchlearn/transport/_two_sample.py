"""Permutation two-sample tests with sliced statistics."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._array_api import move_to, public_function
from .._random import as_generator
from .._validation import (
    COUNT,
    SEED,
)
from ._sliced import check_clouds, sphere_abs_moment
from ._sliced_ops import slice_energy_op, slice_wasserstein_op
from ._slices import make_directions

__all__ = ["two_sample_test", "TwoSampleResult"]

# projected values of the permuted samples handed to the kernel at once (float64)
_BATCH_ELEMENTS = 2**21


class TwoSampleResult(NamedTuple):
    """Statistic and permutation p-value of :func:`two_sample_test`.

    Examples
    --------
    >>> from sketchlearn.transport import TwoSampleResult
    >>> TwoSampleResult(0.3, 0.01).pvalue
    0.01
    """

    statistic: float
    pvalue: float


@public_function(arrays=("X", "Y"),
                 params={"metric": [StrOptions({"energy", "sliced"})], "n_permutations": COUNT,
                         "n_projections": COUNT, "random_state": SEED})
def two_sample_test(X, Y, *, metric="energy", n_permutations=200, n_projections=50,
                    random_state=None):
    r"""Permutation two-sample test with the sliced energy or sliced Wasserstein statistic.

    The statistic is the (squared) energy distance or :math:`SW_2^2` estimated on
    ``n_projections`` directions drawn once; the pooled sample is projected once,
    and each permutation re-splits the projected values, so a permutation costs
    O(L (n + m) log(n + m)). The p-value is ``(1 + #{T_perm >= T}) / (1 +
    n_permutations)``, valid at any sample size.

    Parameters
    ----------
    X : array of shape (n, d)
    Y : array of shape (m, d)
        The two samples.
    metric : {"energy", "sliced"}, default="energy"
        Statistic.
    n_permutations : int, default=200
        Number of permutations.
    n_projections : int, default=50
        Directions (``d > 1``).
    random_state : int, Generator, RandomState or None
        Seed of the directions and the permutations.

    Returns
    -------
    result : TwoSampleResult
        ``(statistic, pvalue)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import two_sample_test
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    >>> two_sample_test(X, Y, random_state=0).pvalue > 0.05
    True
    >>> two_sample_test(X, Y + 0.5, random_state=0).pvalue < 0.01
    True
    """
    X, Y, _, _, xp = check_clouds(X, Y, None, None)
    B, L = int(n_permutations), int(n_projections)
    rng = as_generator(random_state)
    n, d = X.shape
    m = Y.shape[0]
    if d == 1:
        L = 1
    dirs = make_directions(d, L, "mc", rng)[0]
    Z = np.concatenate([move_to(X, np), move_to(Y, np)]).astype(np.float64)
    P = dirs @ Z.T  # (L, n + m)
    scale = sphere_abs_moment(d) if metric == "energy" else 1.0

    # All splits' slices go to the kernel in a few large calls: one call per
    # permutation started a parallel region for a handful of rows each time (B = 200
    # small samples took seconds on a busy 2-core machine). The permutations are drawn
    # batch by batch (same order of draws), so memory stays O(batch), not O(B (n + m)).
    per_call = max(1, _BATCH_ELEMENTS // (L * (n + m)))
    stats = []
    for s in range(0, B + 1, per_call):
        splits = np.stack([np.arange(n + m) if t == 0 else rng.permutation(n + m)
                           for t in range(s, min(B + 1, s + per_call))])
        Q = np.transpose(P[:, splits], (1, 0, 2))  # (splits, L, n + m)
        PX = np.reshape(Q[:, :, :n], (-1, n))
        PY = np.reshape(Q[:, :, n:], (-1, m))
        if metric == "energy":
            v = slice_energy_op(np, PX, PY, None, None)
        else:
            v = slice_wasserstein_op(np, PX, PY, None, None, 2.0)
        stats.append(np.mean(np.reshape(v, (-1, L)), axis=1) / scale)
    stats = np.concatenate(stats)
    t0 = float(stats[0])
    exceed = int(np.sum(stats[1:] >= t0 * (1 - 1e-12)))
    p = (1 + exceed) / (1 + B)
    return TwoSampleResult(t0, min(1.0, p) if math.isfinite(p) else 1.0)
