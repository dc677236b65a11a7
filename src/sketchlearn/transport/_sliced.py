"""Sliced Wasserstein distances and the sliced energy distance."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._array_api import Dispatch, get_namespace, move_to, public_function
from .._cold_start import reference_until_compiled
from .._random import as_generator
from .._validation import (
    COUNT,
    NON_NEGATIVE,
    P_EXPONENT,
    POSITIVE,
    SEED,
    STEPS,
    check_array,
    check_same_n_features,
    check_weights,
)
from ._quantile_sketch import DEFAULT_SKETCH_SIZE, SketchedDistance
from ._sliced_ops import slice_energy_grad_op, slice_energy_op, slice_wasserstein_op
from ._slices import SLICES, make_directions, sample_vmf

__all__ = [
    "sliced_wasserstein",
    "max_sliced_wasserstein",
    "distributional_sliced_wasserstein",
    "energy_distance",
    "energy_distance_grad",
    "sphere_abs_moment",
]

# Projected values held at once, (n + m) * block_slices <= this (64 MiB in float64).
_BLOCK_ELEMENTS = 2**23
# Projected values up to which a first call sorts them with NumPy while the Numba kernels
# compile (about 0.5 s of reference work; compiling them takes about 4 s on 2 cores).
_REFERENCE_ELEMENTS = 2**22


def _slice_work(X, Y, n_projections=100, **_):
    """Projected values times (d + log(n + m)), the size of a sliced distance
    (device="auto")."""
    (n, d), m = np.shape(X), np.shape(Y)[0]
    return float(n_projections) * (n + m) * (d + math.log2(n + m))


# Parameter constraints, checked once by the public_function wrapper.
# quantiles="sketch" (mergeable quantile sketches of size sketch_size) is the Dask
# path's approximate mode; in memory the quantiles are exact (bound 0)
_QUANTILE_PARAMS = {"quantiles": [StrOptions({"exact", "sketch"})],
                    "sketch_size": [Interval(numbers.Integral, 8, None, closed="left"), None]}
_SLICED_PARAMS = {"p": P_EXPONENT, "n_projections": COUNT, "slices": [StrOptions(set(SLICES))],
                  "random_state": SEED, "return_std": ["boolean"], **_QUANTILE_PARAMS}
_ENERGY_PARAMS = {"n_projections": COUNT, "slices": [StrOptions(set(SLICES))],
                  "random_state": SEED, "squared": ["boolean"], "return_std": ["boolean"],
                  **_QUANTILE_PARAMS}


def _small_for_reference(L, n, m):
    return L * (n + m) <= _REFERENCE_ELEMENTS


# --------------------------------------------------------------------------- validation


def check_clouds(X, Y, a, b, *, min_samples=1):
    """Validate two point clouds and their weights (``None`` stays ``None``)."""
    X = check_array(X, "X", min_samples=min_samples)
    Y = check_array(Y, "Y", min_samples=min_samples)
    check_same_n_features(X, Y)
    xp = get_namespace(X, Y)
    dtype = xp.float32 if (X.dtype == xp.float32 and Y.dtype == xp.float32) else xp.float64
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    if Y.dtype != dtype:
        Y = xp.astype(Y, dtype)
    a = None if a is None else check_weights(a, X.shape[0], "a", xp=xp, dtype=xp.float64)
    b = None if b is None else check_weights(b, Y.shape[0], "b", xp=xp, dtype=xp.float64)
    return X, Y, a, b, xp


def _block_size(L, n, m):
    return max(1, min(L, _BLOCK_ELEMENTS // max(n + m, 1)))


def _projected_costs(xp, X, Y, a, b, dirs, op, *extra):
    """op(xp, dirs_b X^T, dirs_b Y^T, a, b, *extra) over blocks of slices, concatenated."""
    L = dirs.shape[0]
    step = _block_size(L, X.shape[0], Y.shape[0])
    out = []
    for s in range(0, L, step):
        D = dirs[s:min(s + step, L), :]
        out.append(op(xp, slice_projection_op(xp, D, X), slice_projection_op(xp, D, Y), a, b,
                      *extra))
    return out[0] if len(out) == 1 else xp.concat(out)


# --------------------------------------------------------------------------- projections


def _slice_projection_reference(xp, D, Z):
    """Projections ``D Z^T`` of the points ``Z`` (n, d) on the directions ``D`` (k, d):
    one slice per row, shape (k, n), in the operands' result dtype.

    Its Numba slot (:func:`._numba_sliced.slice_projection`) is NumPy's product with
    one-thread BLAS, split by rows of ``D`` over a pool of Numba's thread count:
    OpenBLAS's own threads keep spinning after each product and take the cores from the
    Numba kernel that follows (n = 1e5, d = 50, L = 200: 0.76 s -> 0.58 s). On CuPy the
    reference's one product is cuBLAS's.
    """
    return xp.matmul(D, Z.T)


def _slice_projection_on_gpu(xp, D, Z):
    """CuPy slot of :func:`_slice_projection_reference`: its one product is cuBLAS's
    (registered so that CuPy callers get no warning about a missing implementation)."""
    return xp.matmul(D, Z.T)


def _slice_projection_examples(xp, rng):
    """Unit directions and point clouds as the sliced distances pass them: a row block
    of the directions (C order), points in C or Fortran order or a transposed view, in
    float64 and float32; fewer directions than threads, and more (the third on a
    thread pool: over 2**20 multiply-adds)."""
    out = []
    for k, n, d, dtype, layout in ((1, 50, 3, np.float64, "C"), (7, 40, 5, np.float32, "C"),
                                   (40, 7000, 4, np.float64, "F"), (5, 64, 2, np.float64, "T"),
                                   (16, 3, 7, np.float32, "F")):
        D = rng.normal(size=(k + 2, d))
        D = (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(dtype)[1:k + 1]
        Z = rng.normal(size=(n, d)).astype(dtype)
        Z = np.asfortranarray(Z) if layout == "F" else Z
        Zx = move_to(np.ascontiguousarray(Z.T), xp).T if layout == "T" else move_to(Z, xp)
        out.append(((move_to(np.ascontiguousarray(D), xp), Zx), {}))
    return out


slice_projection_op = Dispatch(
    _slice_projection_reference,
    numba="sketchlearn.transport._numba_sliced:slice_projection",
    cupy="sketchlearn.transport._sliced:_slice_projection_on_gpu",
    examples=_slice_projection_examples,
)


def _directions(xp, d, L, slices, rng, dtype):
    dirs, groups = make_directions(d, L, slices, rng)
    return xp.astype(move_to(dirs, xp), dtype), groups


def _weighted_moments(xp, Z, w):
    """Weighted mean (d,) and trace of the weighted covariance of the rows of Z."""
    Z = xp.astype(Z, xp.float64)
    if w is None:
        mu = xp.mean(Z, axis=0)
        return mu, float(xp.sum(xp.mean((Z - mu) ** 2, axis=0)))
    mu = xp.sum(Z * w[:, None], axis=0)
    return mu, float(xp.sum(w[:, None] * (Z - mu) ** 2))


def _projected_var(xp, P, w):
    P = xp.astype(P, xp.float64)
    if w is None:
        mu = xp.mean(P, axis=1, keepdims=True)
        return xp.mean((P - mu) ** 2, axis=1)
    mu = xp.sum(P * w[None, :], axis=1, keepdims=True)
    return xp.sum(w[None, :] * (P - mu) ** 2, axis=1)


def _group_std_error(values, groups):
    """Standard error of the mean of ``values`` from the spread of its replicate means."""
    if groups is None:
        return math.nan
    labels, inverse = np.unique(groups, return_inverse=True)
    if labels.shape[0] < 2:
        return math.nan
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return float(np.std(means, ddof=1) / math.sqrt(labels.shape[0]))


def _root(value, se, p):
    """(value^(1/p), delta-method standard error of it)."""
    value = max(value, 0.0)
    root = value ** (1.0 / p)
    if math.isnan(se):
        return root, se
    if value == 0.0:
        return root, (0.0 if se == 0.0 else math.inf) if p > 1 else se
    return root, se * root / (p * value)


# --------------------------------------------------------------------------- SW


@public_function(arrays=("X", "Y", "a", "b"), work=_slice_work, params=_SLICED_PARAMS,
                 dask="sketchlearn.transport._sliced_dask:sliced_wasserstein_dask")
def sliced_wasserstein(X, Y, a=None, b=None, *, p=2, n_projections=100, slices="mc",
                       random_state=None, return_std=False, quantiles="exact",
                       sketch_size=None):
    r"""Sliced Wasserstein distance between two weighted point clouds.

    .. math::

        SW_p(\mu, \nu) = \Big(\int_{S^{d-1}} W_p^p(\theta_\# \mu, \theta_\# \nu)\,
        d\sigma(\theta)\Big)^{1/p},

    estimated from ``n_projections`` directions. Each 1-D distance is exact: for
    equal-size uniform clouds by sorting both projections (``mean |x_(i) - y_(i)|^p``),
    otherwise by merging the breakpoints of the two quantile functions,
    O((n + m) log(n + m)) per slice. Slices run in parallel (Numba) on the CPU, as
    one batched sort on the GPU for CuPy input; projections are formed in blocks, so
    memory stays O((n + m) (d + block)).

    Parameters
    ----------
    X : array of shape (n, d)
        Support of the first measure.
    Y : array of shape (m, d)
        Support of the second measure (same library and ``d``).
    a, b : array of shape (n,) and (m,), optional
        Probability weights (non-negative, summing to one); uniform by default.
    p : float >= 1, default=2
        Order of the Wasserstein distance.
    n_projections : int, default=100
        Number of directions ``L``.
    slices : {"mc", "orthogonal", "qmc", "rqmc", "cv-lower", "cv-upper"}, default="mc"
        How directions are chosen and combined:

        - ``"mc"``: i.i.d. uniform directions (plain Monte Carlo);
        - ``"orthogonal"``: blocks of ``d`` orthonormal directions (random rotations);
        - ``"qmc"``: deterministic (unscrambled) Sobol' points mapped to the sphere
          through the normal inverse CDF (no standard error); for ``d = 3`` the
          generalized spiral, an equal-area point set (Nguyen, Bariletto & Ho);
        - ``"rqmc"``: 8 independently scrambled Sobol' sets mapped the same way; for
          ``d = 3``, 8 spirals under independent Haar-random rotations;
        - ``"cv-lower"`` / ``"cv-upper"``: i.i.d. directions with a control variate
          built from Gaussian fits of the projections (Nguyen & Ho): the lower bound
          :math:`(\theta^T(m_X - m_Y))^2` or the upper bound
          :math:`(\theta^T(m_X - m_Y))^2 + \theta^T(\Sigma_X + \Sigma_Y)\theta` of the
          fitted Gaussians' :math:`W_2^2`, whose means over the sphere are
          :math:`\|m_X - m_Y\|^2 / d` and :math:`(\|m_X - m_Y\|^2 + tr \Sigma_X +
          tr \Sigma_Y) / d`. The coefficient is estimated from the same slices.
    random_state : int, Generator, RandomState or None
        Seed of the directions.
    return_std : bool, default=False
        Also return the standard error of the estimate (spread of independent
        replicates: single directions, orthogonal blocks or RQMC sets; carried to
        the ``1/p`` power by the delta method). NaN for ``"qmc"``.
    quantiles : {"exact", "sketch"}, default="exact"
        For Dask point clouds: ``"exact"`` sorts each projection by a distributed
        sample sort (equal to the in-memory value to rounding); ``"sketch"`` merges
        one quantile sketch of size ``sketch_size`` per projection and cloud, and
        returns a :class:`~sketchlearn.transport.SketchedDistance` (a float with its
        certain ``error_bound``; see the user guide's Dask page). In memory the
        quantiles are always exact: ``"sketch"`` then returns the exact value as a
        ``SketchedDistance`` with ``error_bound`` 0.
    sketch_size : int >= 8, optional
        Size ``k`` of each quantile sketch (``"sketch"`` only); default 16384.

    Returns
    -------
    distance : float
        Estimate of :math:`SW_p`.
    std : float
        Its standard error (only with ``return_std=True``).

    See Also
    --------
    energy_distance : the sliced energy distance, also computed by sorting.
    wasserstein : exact Wasserstein distance.

    Notes
    -----
    With ``p = 2`` and the same directions, the value equals POT's
    ``ot.sliced_wasserstein_distance(X, Y, a, b, projections=dirs.T)``. For ``d = 1``
    every slice is the line itself and the result is the exact 1-D distance.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> Y = rng.normal(size=(400, 3)) + [2.0, 0.0, 0.0]
    >>> value, se = sliced_wasserstein(X, Y, n_projections=200, slices="cv-upper",
    ...                                random_state=0, return_std=True)
    >>> round(value, 1), bool(se < 0.05)
    (1.2, True)
    >>> sliced_wasserstein(X, X, random_state=0)
    0.0
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    p, L = float(p), int(n_projections)
    rng = as_generator(random_state)
    n, d = X.shape
    m = Y.shape[0]
    dirs, groups = _directions(xp, d, L, slices, rng, X.dtype)
    with reference_until_compiled(small=_small_for_reference(L, n, m)):
        w = move_to(_projected_costs(xp, X, Y, a, b, dirs, slice_wasserstein_op, p), np)
    if slices.startswith("cv") and d > 1:
        value, se = _control_variate(xp, X, Y, a, b, dirs, w, slices)
    else:
        value = float(np.mean(w))
        se = _group_std_error(w, groups) if L > 1 else math.nan
    value, se = _root(value, se, p)
    value = _exact_as_requested(value, quantiles, sketch_size, L)
    return (value, se) if return_std else value


def _exact_as_requested(value, quantiles, sketch_size, n_projections):
    """An exact in-memory value, as a ``SketchedDistance`` of bound 0 when the caller
    asked for the sketch mode (its result type on Dask)."""
    if quantiles != "sketch":
        return value
    return SketchedDistance(value, error_bound=0.0, projection_bounds=np.zeros(n_projections),
                            rank_error=0.0, sketch_size=sketch_size or DEFAULT_SKETCH_SIZE)


def _control_variate(xp, X, Y, a, b, dirs, w, slices):
    """Control-variate estimate of E W_p^p and its standard error."""
    d = X.shape[1]
    mx, trx = _weighted_moments(xp, X, a)
    my, try_ = _weighted_moments(xp, Y, b)
    delta = mx - my
    dirs64 = xp.astype(dirs, xp.float64)
    C = xp.matmul(dirs64, delta) ** 2
    mean_c = float(xp.sum(delta**2)) / d
    if slices == "cv-upper":
        L = dirs.shape[0]
        step = _block_size(L, X.shape[0], Y.shape[0])
        var = []
        for s in range(0, L, step):
            D = dirs64[s:min(s + step, L), :]
            var.append(_projected_var(xp, xp.matmul(D, xp.astype(X, xp.float64).T), a)
                       + _projected_var(xp, xp.matmul(D, xp.astype(Y, xp.float64).T), b))
        C = C + (var[0] if len(var) == 1 else xp.concat(var))
        mean_c += (trx + try_) / d
    C = move_to(C, np)
    L = w.shape[0]
    if L < 2:
        return float(w[0]), math.nan
    cc = C - C.mean()
    var_c = float(cc @ cc)
    gamma = float(cc @ (w - w.mean())) / var_c if var_c > 0 else 0.0
    resid = w - gamma * C
    value = float(w.mean() - gamma * (C.mean() - mean_c))
    se = float(np.std(resid, ddof=1) / math.sqrt(L)) if L > 2 else math.nan
    return value, se


@public_function(arrays=("X", "Y", "a", "b"),
                 params={"p": P_EXPONENT, "n_starts": COUNT, "max_iter": STEPS,
                         "step_size": [*POSITIVE, None],
                         "n_restart_projections": COUNT, "random_state": SEED,
                         "return_direction": ["boolean"], "sample_size": COUNT,
                         "refine_steps": STEPS, **_QUANTILE_PARAMS},
                 dask="sketchlearn.transport._max_sliced_dask:max_sliced_wasserstein_dask")
def max_sliced_wasserstein(X, Y, a=None, b=None, *, p=2, n_starts=10, max_iter=100,
                           step_size=None, n_restart_projections=200, random_state=None,
                           return_direction=False, sample_size=2**15, refine_steps=0,
                           quantiles="exact", sketch_size=None):
    r"""Max-sliced Wasserstein distance by projected gradient ascent on the direction.

    :math:`\max_{\|\theta\| = 1} W_p(\theta_\# \mu, \theta_\# \nu)`. The starting
    directions are the best ``n_starts`` of ``n_restart_projections`` random ones;
    each is improved by gradient ascent on :math:`W_p^p(\theta)` (its gradient is
    :math:`p \sum_k \pi_k |u_k|^{p-2} u_k (x_{i_k} - y_{j_k})` over the pairs
    ``(i_k, j_k)`` of the 1-D optimal coupling :math:`\pi`, with
    :math:`u_k = \theta^T(x_{i_k} - y_{j_k})`), followed by renormalisation onto the
    sphere, with a backtracking step so the objective never decreases.

    Dask point clouds: one pass over each cloud gathers a uniform sample of
    ``sample_size`` rows without replacement (keyed by global row, so the same seed
    gives the same sample whatever the chunking; weights are carried along and
    renormalised), the ascent above runs on the samples in memory with the same
    parameters and seed, and :math:`W_p` along the direction found is computed on the
    full data (``quantiles`` as in :func:`sliced_wasserstein`), after
    ``refine_steps`` rounds of ascent on the full data. The value is then the
    full-data distance along a direction estimated from a sample: a lower bound of
    the max-sliced distance (every direction gives one), equal to the in-memory
    result when ``sample_size`` is at least both clouds' sizes (then no further pass
    is made).

    Parameters
    ----------
    X, Y, a, b, p
        As in :func:`sliced_wasserstein`.
    n_starts : int, default=10
        Number of ascent runs.
    max_iter : int, default=100
        Ascent steps per run.
    step_size : float, optional
        Initial step (default: ``1 / (largest spread of the data)``, adapted by
        backtracking).
    n_restart_projections : int, default=200
        Random directions screened for the starts.
    random_state : int, Generator, RandomState or None
        Seed.
    return_direction : bool, default=False
        Also return the maximising direction (NumPy array of shape (d,)).
    sample_size : int, default=32768
        Dask clouds only: rows per cloud on which the direction is searched (a cloud
        with fewer rows is taken whole). Ignored in memory.
    refine_steps : int, default=0
        Dask clouds only, when a cloud is sampled: rounds of ascent on the full data
        from the sample's direction. Each round evaluates :math:`W_p^p` along a
        stencil of ``2 (d - 1)`` directions around the current one (central
        differences give the gradient and the curvature along each tangent axis), then
        along a Newton step and two shorter ones; the best direction evaluated is
        kept, so the value never decreases. A round costs two batched sorts (or
        passes of sketches), about the work of :func:`sliced_wasserstein` with
        ``2 d + 1`` projections. Ignored in memory.
    quantiles : {"exact", "sketch"}, default="exact"
        Dask clouds only, for the full-data values: ``"exact"`` sorts the
        projections by the distributed sample sort (the in-memory value along the
        returned direction, to rounding); ``"sketch"`` merges quantile sketches of
        size ``sketch_size`` in one pass and returns a
        :class:`~sketchlearn.transport.SketchedDistance` with the certain bound of
        its deviation from the exact :math:`W_p` along the returned direction. In
        memory (and when the samples are whole clouds) the value is exact.
    sketch_size : int >= 8, optional
        Size of each quantile sketch (``"sketch"`` only); default 16384.

    Returns
    -------
    distance : float
    direction : ndarray of shape (d,)
        Only with ``return_direction=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import max_sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> Y = rng.normal(size=(300, 5)) * [1, 1, 1, 1, 4]
    >>> value, theta = max_sliced_wasserstein(X, Y, random_state=0, return_direction=True)
    >>> bool(abs(abs(theta[4]) - 1) < 0.05)
    True

    On Dask clouds sampled below their size the value is the full data's
    :math:`W_p` along the direction found on the samples (a lower bound of the
    max-sliced distance); here it is as large as the in-memory ascent's:

    >>> import dask.array as da
    >>> dX, dY = da.from_array(X, chunks=(100, 5)), da.from_array(Y, chunks=(100, 5))
    >>> approx = max_sliced_wasserstein(dX, dY, random_state=0, sample_size=200)
    >>> bool(abs(approx - value) < 0.02 * value)
    True
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    p, n_starts = float(p), int(n_starts)
    rng = as_generator(random_state)
    Xh = move_to(X, np).astype(np.float64)
    Yh = move_to(Y, np).astype(np.float64)
    ah = None if a is None else move_to(a, np)
    bh = None if b is None else move_to(b, np)
    d = Xh.shape[1]
    cands = make_directions(d, max(n_restart_projections, n_starts), "mc", rng)[0]
    vals = slice_wasserstein_op(np, cands @ Xh.T, cands @ Yh.T, ah, bh, p)
    starts = cands[np.argsort(vals)[::-1][:n_starts]]
    spread = max(float(np.ptp(np.concatenate([Xh, Yh]), axis=0).max()), 1e-12)
    eta0 = (1.0 / spread) if step_size is None else float(step_size)
    best_val, best_theta = -1.0, starts[0]
    for theta in starts:
        val = _wp_dir(Xh, Yh, ah, bh, theta, p)
        eta = eta0
        for _ in range(max_iter):
            grad = _wp_dir_grad(Xh, Yh, ah, bh, theta, p)
            grad -= (grad @ theta) * theta  # tangent component
            if not np.any(grad):
                break
            improved = False
            for _ in range(30):
                cand = theta + eta * grad / max(val, 1e-300)
                cand /= np.linalg.norm(cand)
                cval = _wp_dir(Xh, Yh, ah, bh, cand, p)
                if cval >= val:
                    theta, improved = cand, cval > val * (1 + 1e-12)
                    val = cval
                    eta *= 1.5
                    break
                eta *= 0.5
            if not improved:
                break
        if val > best_val:
            best_val, best_theta = val, theta
    value = _exact_as_requested(max(best_val, 0.0) ** (1.0 / p), quantiles, sketch_size, 1)
    return (value, best_theta) if return_direction else value


def _wp_dir(X, Y, a, b, theta, p):
    return float(slice_wasserstein_op(np, (X @ theta)[None, :], (Y @ theta)[None, :], a, b,
                                      p)[0])


def _coupling_1d(x, y, a, b):
    """Pairs (i, j) and masses of the monotone 1-D coupling of two weighted samples."""
    n, m = x.shape[0], y.shape[0]
    ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    wa = np.full(n, 1.0 / n) if a is None else a[ox]
    wb = np.full(m, 1.0 / m) if b is None else b[oy]
    cx, cy = np.cumsum(wa), np.cumsum(wb)
    t = np.union1d(cx, cy)
    t = t[t > 0]
    mass = np.diff(np.concatenate([[0.0], t]))
    ix = np.minimum(np.searchsorted(cx, t - mass / 2), n - 1)
    iy = np.minimum(np.searchsorted(cy, t - mass / 2), m - 1)
    return ox[ix], oy[iy], mass


def _wp_dir_grad(X, Y, a, b, theta, p):
    i, j, mass = _coupling_1d(X @ theta, Y @ theta, a, b)
    diff = X[i] - Y[j]
    u = diff @ theta
    coef = mass * p * np.abs(u) ** (p - 2) * u if p != 1 else mass * np.sign(u)
    return coef @ diff


@public_function(arrays=("X", "Y", "a", "b"),
                 params={"p": P_EXPONENT, "n_projections": COUNT,
                         "kappa": NON_NEGATIVE,
                         "n_iter": STEPS,
                         "step_size": POSITIVE,
                         "random_state": SEED},
                 dask_instead="Its ascent on the slicing distribution needs a distributed "
                 "sort of both clouds per step; use sliced_wasserstein on the Dask clouds, or "
                 "run it on a row subsample computed into memory.")
def distributional_sliced_wasserstein(X, Y, a=None, b=None, *, p=2, n_projections=100,
                                      kappa=10.0, n_iter=50, step_size=0.1,
                                      random_state=None):
    r"""Distributional sliced Wasserstein with von Mises-Fisher slices (v-DSW).

    Searches a slicing distribution :math:`\mathrm{vMF}(\epsilon, \kappa)` on the
    sphere that makes the projections most different,

    .. math::

        \text{v-DSW}_p = \max_{\epsilon \in S^{d-1}} \Big(\mathbb{E}_{\theta \sim
        \mathrm{vMF}(\epsilon, \kappa)} W_p^p(\theta_\# \mu, \theta_\# \nu)\Big)^{1/p},

    by stochastic projected gradient ascent on the location :math:`\epsilon` (score
    function gradient :math:`\kappa\, \mathbb{E}[(W_p^p(\theta) - b)\, (\theta -
    (\theta^T \epsilon)\epsilon)]` with a mean baseline ``b``), and reports the
    expectation at the final location estimated with fresh slices. ``kappa = 0`` is
    plain SW; large ``kappa`` approaches max-SW.

    Parameters
    ----------
    X, Y, a, b, p
        As in :func:`sliced_wasserstein`.
    n_projections : int, default=100
        vMF slices per ascent step and for the final estimate.
    kappa : float >= 0, default=10.0
        Concentration of the vMF slicing distribution.
    n_iter : int, default=50
        Ascent steps on the location.
    step_size : float, default=0.1
        Step of the ascent (the gradient is normalised by the current value).
    random_state : int, Generator, RandomState or None
        Seed.

    Returns
    -------
    distance : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import distributional_sliced_wasserstein, sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> Y = rng.normal(size=(300, 5)) * [1, 1, 1, 1, 4]
    >>> dsw = distributional_sliced_wasserstein(X, Y, kappa=20.0, random_state=0)
    >>> bool(dsw > sliced_wasserstein(X, Y, random_state=0))
    True
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    p, L, kappa = float(p), int(n_projections), float(kappa)
    rng = as_generator(random_state)
    d = X.shape[1]
    dtype = X.dtype
    eps = make_directions(d, 1, "mc", rng)[0][0]
    for _ in range(n_iter if d > 1 else 0):
        th = sample_vmf(rng, eps, kappa, L)
        w = move_to(_projected_costs(xp, X, Y, a, b, xp.astype(move_to(th, xp), dtype),
                                     slice_wasserstein_op, p), np)
        scale = max(float(w.mean()), 1e-300)
        grad = kappa * ((w - w.mean())[:, None] * (th - (th @ eps)[:, None] * eps)).mean(0)
        eps = eps + step_size * grad / scale
        eps /= np.linalg.norm(eps)
    th = sample_vmf(rng, eps, kappa, L) if d > 1 else np.ones((L, 1))
    w = move_to(_projected_costs(xp, X, Y, a, b, xp.astype(move_to(th, xp), dtype),
                                 slice_wasserstein_op, p), np)
    return max(float(w.mean()), 0.0) ** (1.0 / p)


# --------------------------------------------------------------------------- energy


# A constant of the dimension, computed on the host: outside the device policy, so
# scikit-learn's validate_params checks its argument (the distances call _kappa).
@validate_params({"d": COUNT}, prefer_skip_nested_validation=True)
def sphere_abs_moment(d: int) -> float:
    r""":math:`\kappa_d = \mathbb{E}|\theta_1|` for :math:`\theta` uniform on
    :math:`S^{d-1}`, equal to :math:`\Gamma(d/2) / (\sqrt{\pi}\, \Gamma((d+1)/2))`.

    Since :math:`\mathbb{E}_\theta |\theta^T z| = \kappa_d \|z\|`, the energy distance
    in ``d`` dimensions is the average 1-D energy distance of the projections divided
    by :math:`\kappa_d`.

    Parameters
    ----------
    d : int
        Dimension.

    Returns
    -------
    kappa : float

    Examples
    --------
    >>> from sketchlearn.transport import sphere_abs_moment
    >>> sphere_abs_moment(1), round(sphere_abs_moment(2), 6)  # 1 and 2 / pi
    (1.0, 0.63662)
    """
    return _kappa(d)


def _kappa(d: int) -> float:
    """:func:`sphere_abs_moment` of a dimension taken from the data."""
    if d < 300:
        return math.gamma(d / 2) / math.gamma((d + 1) / 2) / math.sqrt(math.pi)
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


@public_function(arrays=("X", "Y", "a", "b"), work=_slice_work, params=_ENERGY_PARAMS,
                 dask="sketchlearn.transport._sliced_dask:energy_distance_dask")
def energy_distance(X, Y, a=None, b=None, *, n_projections=100, slices="mc",
                    random_state=None, squared=False, return_std=False, quantiles="exact",
                    sketch_size=None):
    r"""Energy distance between two weighted samples, by sorting.

    .. math::

        \mathcal{E}(\mu, \nu) = 2\,\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\|
        - \mathbb{E}\|Y - Y'\|,

    the squared MMD of the Riesz kernel ``-||x - y||``. In one dimension it equals
    :math:`2 \int (F - G)^2`, computed exactly from the pooled sorted sample in
    O((n + m) log(n + m)). In ``d`` dimensions it equals the average over directions
    of the 1-D energy distance of the projections divided by
    :math:`\kappa_d = \mathbb{E}|\theta_1|`
    (:func:`~sketchlearn.transport.sphere_abs_moment`), estimated with
    ``n_projections`` slices: O(L (n + m) log(n + m)) time and O((n + m) d) memory,
    where the pairwise formula costs O(n m d).

    Parameters
    ----------
    X : array of shape (n, d)
    Y : array of shape (m, d)
        Samples (same library and ``d``); 1-D input must be reshaped to ``(n, 1)``.
    a, b : array of shape (n,) and (m,), optional
        Probability weights; uniform by default.
    n_projections : int, default=100
        Slices for ``d > 1`` (ignored in 1-D, where the value is exact).
    slices : {"mc", "orthogonal", "qmc", "rqmc"}, default="mc"
        Directions, as in :func:`sliced_wasserstein`.
    random_state : int, Generator, RandomState or None
        Seed of the directions.
    squared : bool, default=False
        Return :math:`\mathcal{E}` itself. By default its square root is returned, the
        convention of ``scipy.stats.energy_distance`` (a metric).
    return_std : bool, default=False
        Also return the Monte Carlo standard error (0 in 1-D).
    quantiles : {"exact", "sketch"}, default="exact"
        For Dask point clouds: ``"exact"`` sorts each projection by a distributed
        sample sort (equal to the in-memory value to rounding); ``"sketch"`` merges
        one quantile sketch of size ``sketch_size`` per projection and cloud, and
        returns a :class:`~sketchlearn.transport.SketchedDistance` (a float with its
        certain ``error_bound``; see the user guide's Dask page). In memory the
        quantiles are always exact: ``"sketch"`` then returns the exact value as a
        ``SketchedDistance`` with ``error_bound`` 0.
    sketch_size : int >= 8, optional
        Size ``k`` of each quantile sketch (``"sketch"`` only); default 16384.

    Returns
    -------
    distance : float
    std : float
        Only with ``return_std=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import energy_distance as scipy_energy
    >>> from sketchlearn.transport import energy_distance
    >>> rng = np.random.default_rng(0)
    >>> u, v = rng.normal(size=300), rng.normal(1.0, 2.0, size=200)
    >>> bool(np.isclose(energy_distance(u[:, None], v[:, None]), scipy_energy(u, v)))
    True
    >>> X, Y = rng.normal(size=(1000, 3)), rng.normal(size=(800, 3)) + 0.5
    >>> round(energy_distance(X, Y, n_projections=500, random_state=0, squared=True), 2)
    0.33
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    L = int(n_projections)
    if slices.startswith("cv"):
        raise ValueError("slices='cv-*' is for sliced_wasserstein; energy_distance takes "
                         "'mc', 'orthogonal', 'qmc' or 'rqmc'.")
    n, d = X.shape
    m = Y.shape[0]
    if d == 1:
        L = 1
    dirs, groups = _directions(xp, d, L, slices, as_generator(random_state), X.dtype)
    with reference_until_compiled(small=_small_for_reference(L, n, m)):
        e = move_to(_projected_costs(xp, X, Y, a, b, dirs, slice_energy_op), np)
    kd = _kappa(d)
    value = max(float(np.mean(e)), 0.0) / kd
    se = 0.0 if d == 1 else (_group_std_error(e, groups) / kd if L > 1 else math.nan)
    if not squared:
        value, se = _root(value, se, 2.0)
    value = _exact_as_requested(value, quantiles, sketch_size, L)
    return (value, se) if return_std else value


@public_function(arrays=("X", "Y", "a", "b"),
                 params={"n_projections": COUNT, "random_state": SEED},
                 dask_instead="Its gradient is an n x d array of the points of X, for "
                 "particle flows held in memory; use energy_distance for the value on Dask "
                 "clouds.")
def energy_distance_grad(X, Y, a=None, b=None, *, n_projections=100, random_state=None):
    r"""Sliced energy distance and its gradient with respect to the points ``X``.

    The quantity differentiated is :math:`\mathcal{E}` (the squared energy distance,
    ``energy_distance(..., squared=True)``) estimated with the same slices, so the
    gradient is exact for that estimate: per slice, the derivative of the 1-D energy
    in :math:`x_i` is :math:`-2 a_i (D_k + D_{k-1})` with :math:`D = F - G` right after
    and before :math:`x_i` in the pooled order; the chain rule maps it back through
    the directions. This is the drift of a (sliced) MMD flow with the Riesz kernel.

    Parameters
    ----------
    X, Y, a, b, n_projections, random_state
        As in :func:`energy_distance`.

    Returns
    -------
    energy : float
        The squared energy distance estimate.
    grad : array of shape (n, d)
        Its gradient with respect to ``X``, in the library and dtype of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import energy_distance_grad
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 1.0
    >>> e0, g = energy_distance_grad(X, Y, random_state=0)
    >>> e1, _ = energy_distance_grad(X - 0.5 * g / np.abs(g).max(), Y, random_state=0)
    >>> bool(e1 < e0)   # a step against the gradient lowers the distance
    True
    """
    X, Y, a, b, xp = check_clouds(X, Y, a, b)
    L = int(n_projections)
    n, d = X.shape
    if d == 1:
        L = 1
    dirs, _ = _directions(xp, d, L, "mc", as_generator(random_state), X.dtype)
    step = _block_size(L, n, Y.shape[0])
    total = 0.0
    grad = xp.zeros((n, d), dtype=xp.float64)
    for s in range(0, L, step):
        D = dirs[s:min(s + step, L), :]
        e, g = slice_energy_grad_op(xp, xp.matmul(D, X.T), xp.matmul(D, Y.T), a, b)
        total += float(xp.sum(e))
        grad = grad + xp.matmul(g.T, xp.astype(D, xp.float64))
    kd = _kappa(d)
    return total / (L * kd), xp.astype(grad / (L * kd), X.dtype)
