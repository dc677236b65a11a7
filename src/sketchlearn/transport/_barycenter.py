"""Fixed-support entropic Wasserstein barycenters (iterative Bregman projections)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import Dispatch, get_namespace, move_to, public_function, transposed_copy
from .._validation import (
    COUNT,
    POSITIVE,
    SEED,
    check_array,
    check_weights,
    user_stacklevel,
)
from ._sinkhorn_ops import lse_rows_op

__all__ = ["entropic_barycenter", "sliced_barycenter"]

# Inner fixed-point steps of the debiasing potential per outer iteration (as POT).
_DEBIAS_STEPS = 10


@public_function(arrays=("A", "M", "weights"),
                 params={"reg": POSITIVE, "debiased": ["boolean"], "tol": POSITIVE,
                         "max_iter": COUNT,
                         "method": [StrOptions({"auto", "scaling", "log"})]})
def entropic_barycenter(A, M, reg=0.05, weights=None, *, debiased=False, tol=1e-9,
                        max_iter=10_000, method="auto"):
    r"""Entropic Wasserstein barycenter of histograms on a fixed support.

    Solves

    .. math::

        \min_{p} \sum_k w_k\, W_{\mathrm{reg}}(a_k, p), \qquad
        W_{\mathrm{reg}}(a, p) = \min_{P 1 = a,\ P^T 1 = p} \langle P, M \rangle
        - \mathrm{reg}\, H(P),

    with :math:`H(P) = -\sum_{ij} P_{ij} (\log P_{ij} - 1)` (the problem of POT's
    ``ot.bregman.barycenter``), by iterative Bregman projections (Benamou et al.
    2015): for each input the potential :math:`f_k` makes the row marginal equal
    :math:`a_k`, the barycenter is the weighted geometric mean of the column
    marginals, :math:`\log p = \sum_k w_k \log (P_k^T 1)`, and :math:`g_k` makes
    every column marginal equal :math:`p`.

    ``method="scaling"`` runs these projections on the scalings
    :math:`u_k = e^{f_k/\mathrm{reg}}`, :math:`v_k = e^{g_k/\mathrm{reg}}` with the
    kernel :math:`K = e^{-M/\mathrm{reg}}` built once (after subtracting each row's
    smallest cost, which leaves the barycenter unchanged): per iteration two matrix
    products of ``K`` with all ``K`` histograms at once, one logarithm and one
    exponential for the geometric mean. ``method="log"`` runs them on the potentials
    with log-sum-exp reductions (the maximum factored out), stable for any ``reg > 0``
    but about ``n m`` exponentials per histogram and iteration. ``method="auto"``
    starts in the scaling domain and, when it leaves the float range (an entry of
    ``K``, of the scalings or of the barycenter underflows to zero where it must not,
    or overflows, which shows as a non-finite error), warns (``RuntimeWarning``) and
    continues in the log domain from the last potentials that passed a check. This
    happens when ``reg`` is small against the cost range (roughly when transport
    distances exceed ~700 ``reg``). A forced ``method="scaling"`` raises
    ``FloatingPointError`` instead.

    With ``debiased=True`` the barycenter of the debiased Sinkhorn divergence
    (Janati et al. 2020, POT's ``ot.bregman.barycenter_debiased``): the geometric
    mean is multiplied by :math:`e^{c/\mathrm{reg}}`, where :math:`c` solves the
    symmetric problem :math:`c = \mathrm{reg} \log p - \mathrm{reg} \log \sum_i
    e^{(c_i - M_{ij})/\mathrm{reg}}`, updated by averaged fixed-point steps (in the
    scaling domain one step per iteration, :math:`d \leftarrow (d\, p / K^T
    d)^{1/2}` with :math:`d = e^{c/\mathrm{reg}}`, as POT's scaling solver; in the log
    domain 10, as POT's log solver; the joint fixed point is the same). This removes
    most of the entropic blur. When ``reg`` is large against the squared grid step,
    :math:`e^{-M/\mathrm{reg}}` is numerically singular and the debiased iteration
    may not converge or its limit depends on the scheme (POT's scaling and log-domain
    solvers then differ by about 1e-3 too); with ``reg`` of the order of the squared
    grid step they agree with this one to 1e-8.

    Parameters
    ----------
    A : array of shape (n, K)
        The ``K`` input histograms in its columns, each non-negative and summing to 1.
    M : array of shape (n, m)
        Cost between the support of the inputs (rows) and that of the barycenter
        (columns); finite. ``debiased=True`` needs the same support, ``n == m``.
    reg : float > 0, default=0.05
        Entropic regularisation, in the units of ``M``.
    weights : array of shape (K,), optional
        Barycentric weights, non-negative and summing to 1; uniform by default.
    debiased : bool, default=False
        Debiased Sinkhorn barycenter.
    tol : float > 0, default=1e-9
        Stop when every column marginal is within ``tol`` (L1) of the barycenter and
        the barycenter changed by at most ``tol`` (L1) over the last iteration. The
        log domain checks this every iteration; the scaling domain every
        10 iterations (and at the first and the last), so it may run up to 9
        iterations past the first one that meets ``tol``.
    max_iter : int, default=10000
        Iteration cap (both domains together).
    method : {"auto", "scaling", "log"}, default="auto"
        Domain of the iterations, see above: ``"auto"`` the scaling domain with a
        log-domain fallback, ``"scaling"`` the scaling domain or an error,
        ``"log"`` the log domain.

    Returns
    -------
    barycenter : array of shape (m,)
        float32 when ``A`` and ``M`` are both float32, else float64; in the array
        library of the input.

    Raises
    ------
    FloatingPointError
        ``method="scaling"`` when the scaling domain leaves the float range.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations do not reach ``tol``; the message gives the
        error reached.
    RuntimeWarning
        ``method="auto"`` when the scaling domain leaves the float range and the log
        domain takes over.

    Examples
    --------
    >>> import numpy as np
    >>> import ot
    >>> from sketchlearn.transport import entropic_barycenter
    >>> x = np.linspace(0, 1, 60)
    >>> A = np.stack([np.exp(-(x - 0.25) ** 2 / 0.005), np.exp(-(x - 0.7) ** 2 / 0.01)], 1)
    >>> A /= A.sum(0)
    >>> M = (x[:, None] - x[None, :]) ** 2
    >>> p = entropic_barycenter(A, M, reg=1e-3)
    >>> round(float(p @ x), 3)                       # the mean moves halfway: 0.475
    0.475
    >>> q = ot.bregman.barycenter(A, M, 1e-3, method="sinkhorn_log", stopThr=1e-12,
    ...                           numItermax=10**5)
    >>> bool(abs(p - q).max() < 1e-8)
    True
    >>> bool(abs(entropic_barycenter(A, M, reg=1e-3, method="log") - p).max() < 1e-8)
    True
    >>> pd = entropic_barycenter(A, M, reg=1e-3, debiased=True)
    >>> bool(pd.max() > p.max())                     # sharper: less entropic blur
    True
    """
    reg, tol, max_iter = float(reg), float(tol), int(max_iter)
    A = check_array(A, "A")
    M = check_array(M, "M", allow_nonfinite=True)
    xp = get_namespace(A, M)
    if not bool(xp.all(xp.isfinite(M))):
        raise ValueError("M contains NaN or infinity; every cost must be finite.")
    n, K = A.shape
    m = M.shape[1]
    if M.shape[0] != n:
        raise ValueError(f"A has {n} rows (support points) but M has {M.shape[0]}; the "
                         "rows of A and of M must index the same support (histograms "
                         "go in the columns of A).")
    if debiased and m != n:
        raise ValueError(f"debiased=True needs a square M (the barycenter on the inputs' "
                         f"support); got M of shape {tuple(M.shape)}.")
    cols = []
    for k in range(K):
        cols.append(check_weights(A[:, k], n, f"A[:, {k}]", xp=xp, dtype=xp.float64))
    w = xp.full((K,), 1.0 / K, dtype=xp.float64) if weights is None else \
        check_weights(weights, K, "weights", xp=xp, dtype=xp.float64)
    Mf = xp.astype(M, xp.float64)
    dtype = xp.float32 if A.dtype == xp.float32 and M.dtype == xp.float32 else xp.float64
    n_iter, bar, err = 0, None, math.inf
    V = xp.ones((K, m), dtype=xp.float64)
    d = xp.ones((m,), dtype=xp.float64)
    if method != "log":
        At = xp.stack(cols)
        n_iter, bar, err, V, d, ok = _scaling_domain(xp, At, Mf, w, reg, debiased, tol,
                                                    max_iter)
        if not ok:
            if method == "scaling":
                raise FloatingPointError(
                    f"entropic_barycenter(method='scaling') left the float range by "
                    f"iteration {n_iter} (exp(-M/reg), a scaling or the barycenter "
                    f"under- or overflowed at reg={reg:g}); use method='auto' or 'log'.")
            warnings.warn(
                f"The scaling-domain barycenter left the float range by iteration "
                f"{n_iter} (reg={reg:g} is small against the costs); continuing in the "
                "log domain, which is slower but stable. Pass method='log' to skip the "
                "scaling attempt.", RuntimeWarning, stacklevel=user_stacklevel())
    if method == "log" or not ok:
        with np.errstate(divide="ignore"):
            g = reg * xp.log(V)
            c = reg * xp.log(d)
        if not (bool(xp.all(xp.isfinite(g))) and bool(xp.all(xp.isfinite(c)))):
            g, c = xp.zeros((K, m), dtype=xp.float64), xp.zeros((m,), dtype=xp.float64)
        n_iter, bar, err = _log_domain(xp, cols, Mf, w, reg, debiased, tol, max_iter,
                                       n_iter, g, c)
    if err > tol:
        warnings.warn(
            f"entropic_barycenter stopped after {n_iter} iterations with an error of "
            f"{err:.3g} (tol={tol:g}); increase max_iter or reg, or loosen tol.",
            ConvergenceWarning, stacklevel=user_stacklevel())
    return xp.astype(bar, dtype)


# Scaling domain: check the error (and the float range) every this many iterations.
_CHECK_EVERY = 10


def _scaling_domain(xp, At, M, w, reg, debiased, tol, max_iter):
    """Iterative Bregman projections on the scalings, all histograms batched.

    ``At`` (K, n) holds the histograms in rows. Returns ``(n_iter, bar, err, V, d,
    ok)``: ``V`` (K, m) and ``d`` (m,) the column and debiasing scalings of the last
    check that passed (the start, ones, if none did), and ``ok`` False when the
    iterations left the float range (a non-finite error at a check).
    """
    # Subtracting a row constant from M scales u only: the barycenter is unchanged,
    # and every row of K then holds an entry 1. The debiasing step uses K's rows on the
    # barycenter side, so it keeps M as is.
    shift = 0.0 if debiased else xp.min(M, axis=1, keepdims=True)
    Kmat = xp.exp((shift - M) / reg)          # (n, m)
    return scaling_barycenter_op(xp, At, Kmat, w, debiased, tol, max_iter)


def _scaling_barycenter_reference(xp, At, Kmat, w, debiased, tol, max_iter):
    """The iterations of :func:`_scaling_domain` on the kernel ``Kmat`` (n, m), from
    scalings of ones; ``At`` (K, n) the histograms in rows, ``w`` (K,) the weights
    (all float64). Returns ``(n_iter, bar, err, V, d, ok)`` as :func:`_scaling_domain`
    (``bar`` None when the first check already left the float range)."""
    KT = Kmat.T
    K = At.shape[0]
    V = xp.ones((K, Kmat.shape[1]), dtype=xp.float64)
    d = xp.ones((Kmat.shape[1],), dtype=xp.float64)
    good_V, good_d = V, d
    bar, err = None, math.inf
    it = 0
    with np.errstate(all="ignore"):
        for it in range(1, max_iter + 1):
            U = At / xp.matmul(V, KT)             # rows: a_k / (K v_k)
            KtU = xp.matmul(U, Kmat)              # rows: K^T u_k
            new_bar = xp.exp(xp.matmul(w, xp.log(KtU)))
            if debiased:
                new_bar = new_bar * d
            if it % _CHECK_EVERY == 0 or it == 1 or it == max_iter:
                # Column marginals v_k * K^T u_k of the plans before the v update.
                err = float(xp.max(xp.sum(xp.abs(V * KtU - new_bar), axis=1)))
                if bar is not None:
                    err = max(err, float(xp.sum(xp.abs(new_bar - bar))))
                if not math.isfinite(err):
                    return it, bar, err, good_V, good_d, False
                good_V, good_d = V, d
                if err <= tol:
                    return it, new_bar, err, V, d, True
            bar = new_bar
            V = new_bar / KtU
            if debiased:
                d = xp.sqrt(d * new_bar / xp.matmul(d, Kmat))
    return it, bar, err, V, d, True


def _scaling_barycenter_on_gpu(xp, At, Kmat, w, debiased, tol, max_iter):
    """CuPy slot of :func:`_scaling_barycenter_reference`: its two products an
    iteration are cuBLAS's and the rest elementwise kernels, with one transfer to the
    host every ``_CHECK_EVERY`` iterations (registered so that CuPy callers get no
    warning about a missing implementation)."""
    return _scaling_barycenter_reference(xp, At, Kmat, w, debiased, tol, max_iter)


def _scaling_barycenter_examples(xp, rng):
    """Kernels of squared-distance costs with 2 or 3 histograms, as
    :func:`_scaling_domain` builds them: converging to a loose ``tol`` (the error, a
    difference of nearby marginals, then carries little cancellation) plain and
    debiased, square and rectangular; cut off by ``max_iter`` between two checks; and,
    for bumps far apart at ``reg`` = 2e-4 on a grid of step 1/29, scalings that leave
    the float range after more than ten checks passed, plain and debiased."""
    out = []
    for n, m, K, reg, debiased, tol, max_iter in (
            (40, 40, 3, 1e-2, False, 1e-4, 5000), (40, 40, 3, 1e-3, True, 1e-4, 5000),
            (30, 45, 3, 5e-3, False, 1e-4, 5000), (25, 25, 2, 2e-3, True, 1e-4, 5000),
            (50, 50, 3, 1e-3, False, 1e-12, 57), (30, 30, 3, 2e-4, False, 1e-9, 5000),
            (30, 30, 3, 2e-4, True, 1e-9, 5000)):
        xa, xb = np.linspace(0, 1, n), np.linspace(0, 1, m)
        if reg < 1e-3:   # three bumps far apart, floor 1e-3
            centres, floor = np.array([[0.1], [0.5], [0.9]]), 1e-3
        else:
            centres, floor = rng.uniform(0.1, 0.9, (K, 1)), rng.uniform(0.05, 1.0, (K, n))
        A = np.exp(-(xa[None, :] - centres) ** 2 / 0.01) + floor
        A /= A.sum(1, keepdims=True)
        M = (xa[:, None] - xb[None, :]) ** 2
        shift = 0.0 if debiased else M.min(1, keepdims=True)
        Kmat = np.exp((shift - M) / reg)
        w = rng.uniform(0.2, 1.0, K)
        w /= w.sum()
        out.append(((move_to(A, xp), move_to(Kmat, xp), move_to(w, xp), debiased, tol,
                     max_iter), {}))
    return out


scaling_barycenter_op = Dispatch(
    _scaling_barycenter_reference,
    numba="sketchlearn.transport._numba_barycenter:scaling_barycenter",
    cupy="sketchlearn.transport._barycenter:_scaling_barycenter_on_gpu",
    examples=_scaling_barycenter_examples)


def _log_domain(xp, cols, Mf, w, reg, debiased, tol, max_iter, n_iter, g, c):
    """Iterative Bregman projections on the potentials (log-sum-exp), from the column
    potentials ``g`` (K, m) and the debiasing potential ``c`` (m,), in cost units,
    counting iterations from ``n_iter``. Returns ``(n_iter, bar, err)``."""
    K = len(cols)
    m = Mf.shape[1]
    w_host = [float(w[k]) for k in range(K)]
    MT = transposed_copy(xp, Mf)
    with np.errstate(divide="ignore"):
        logA = [reg * xp.log(col) for col in cols]
    g = [g[k, :] for k in range(K)]
    bar = None
    err = math.inf
    while n_iter < max_iter or bar is None:  # one at least, after a late fallback
        n_iter += 1
        h = []
        log_bar = c / reg if debiased else xp.zeros((m,), dtype=xp.float64)
        for k in range(K):
            f = logA[k] - lse_rows_op(xp, Mf, g[k], reg)   # row marginal = a_k
            h.append(lse_rows_op(xp, MT, f, reg))          # P_k^T 1 = exp((g_k + h_k)/reg)
            log_bar = log_bar + w_host[k] * (h[k] / reg)
        new_bar = xp.exp(log_bar)
        err = max(float(xp.sum(xp.abs(xp.exp((g[k] + h[k]) / reg) - new_bar)))
                  for k in range(K))
        if bar is not None:
            err = max(err, float(xp.sum(xp.abs(new_bar - bar))))
        bar = new_bar
        if not math.isfinite(err):
            raise FloatingPointError("The barycenter iterations produced non-finite "
                                     "values; check A and M.")
        if err <= tol:
            break
        g = [reg * log_bar - h[k] for k in range(K)]
        if debiased:
            for _ in range(_DEBIAS_STEPS):
                c = 0.5 * (c + reg * log_bar - lse_rows_op(xp, MT, c, reg))
    return n_iter, bar, err


@public_function(arrays=("clouds", "weights"),
                 params={"n_support": [*COUNT, None], "n_projections": [*COUNT, None],
                         "max_iter": COUNT,
                         "step": [Interval(numbers.Real, 0, 1, closed="right")],
                         "random_state": SEED})
def sliced_barycenter(clouds, weights=None, n_support=None, *, n_projections=None,
                      max_iter=100, step=1.0, random_state=None):
    r"""Free-support barycenter of point clouds for the sliced Wasserstein distance.

    Minimises :math:`\sum_k w_k SW_2^2(\mu_Z, \nu_k)` over the ``n_support`` points
    :math:`Z` of a uniform measure :math:`\mu_Z`, by stochastic gradient steps on
    the support (Rabin et al. 2011; Bonneel et al. 2015). Each iteration draws
    ``n_projections`` directions (blocks of orthonormal bases), sorts the projected
    support and clouds, and moves each point along every direction towards the
    weighted average of the clouds' quantiles at its rank (the sorting-based
    gradient of :math:`SW_2^2`), with the step scaled by ``d / n_projections`` so
    that ``step=1`` is a full one-dimensional matching per orthonormal basis.

    For Gaussians whose covariances are multiples of one matrix,
    :math:`\Sigma_k = s_k^2 \Sigma`, the sliced and the Wasserstein barycenter
    coincide: :math:`N(\sum_k w_k m_k, (\sum_k w_k s_k)^2 \Sigma)` (the
    Bures-Wasserstein barycenter). In one dimension the result is the weighted
    average of the quantile functions.

    Parameters
    ----------
    clouds : sequence of arrays of shape (n_k, d)
        The point clouds (uniform weights within each), same ``d``.
    weights : array of shape (K,), optional
        Barycentric weights, non-negative, summing to 1; uniform by default.
    n_support : int, optional
        Number of support points; the largest ``n_k`` by default.
    n_projections : int, optional
        Directions per iteration; ``d`` by default (one random orthonormal basis).
    max_iter : int, default=100
        Iterations. The iteration is stochastic (fresh directions each time) and
        has no exact stopping point; the support settles within the Monte Carlo
        error of the slices after a few tens of iterations.
    step : float in (0, 1], default=1.0
        Step size (1: full matching along each direction of a basis).
    random_state : int, Generator, RandomState or None
        Directions and the initial support (points of the heaviest cloud).

    Returns
    -------
    Z : array of shape (n_support, d)
        The support, in the clouds' array library and dtype (float64 when dtypes
        differ).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import sliced_barycenter
    >>> rng = np.random.default_rng(0)
    >>> X1 = rng.normal(size=(1000, 2)) * 0.5 + [-2.0, 0.0]
    >>> X2 = rng.normal(size=(1000, 2)) * 1.5 + [2.0, 0.0]
    >>> Z = sliced_barycenter([X1, X2], random_state=0)
    >>> np.round(Z.mean(0), 1) + 0.0, round(float(Z.std()), 1)  # N(0, 1) expected
    (array([0., 0.]), 1.0)
    """
    from .._random import as_generator
    from ._sliced_ops import _take_rows
    from ._slices import make_directions

    if isinstance(clouds, (str, bytes)) or not hasattr(clouds, "__len__") or \
            len(clouds) == 0:
        raise ValueError("clouds must be a non-empty sequence of (n_k, d) arrays.")
    clouds = [check_array(Y, f"clouds[{k}]") for k, Y in enumerate(clouds)]
    xp = get_namespace(*clouds)
    d = clouds[0].shape[1]
    for k, Y in enumerate(clouds):
        if Y.shape[1] != d:
            raise ValueError(f"clouds[{k}] has {Y.shape[1]} features but clouds[0] has {d}; "
                             "every cloud must live in the same dimension.")
    K = len(clouds)
    w = xp.full((K,), 1.0 / K, dtype=xp.float64) if weights is None else \
        check_weights(weights, K, "weights", xp=xp, dtype=xp.float64)
    w_host = [float(w[k]) for k in range(K)]
    sizes = [Y.shape[0] for Y in clouds]
    n = max(sizes) if n_support is None else int(n_support)
    L = d if n_projections is None else int(n_projections)
    max_iter, step = int(max_iter), float(step)
    rng = as_generator(random_state)
    dtype = clouds[0].dtype if all(Y.dtype == clouds[0].dtype for Y in clouds) \
        else xp.float64
    Ys = [xp.astype(Y, xp.float64) for Y in clouds]
    heavy = int(np.argmax(w_host))
    pick = rng.choice(sizes[heavy], size=n, replace=n > sizes[heavy])
    Z = xp.take(Ys[heavy], xp.asarray(pick), axis=0)
    # Quantile levels (i + 1/2) / n of the support ranks, as indices into each cloud.
    levels = (np.arange(n) + 0.5) / n
    idx = [xp.asarray(np.broadcast_to(np.minimum((levels * nk).astype(np.int64), nk - 1),
                                      (L, n)).copy()) for nk in sizes]
    for _ in range(max_iter):
        dirs = xp.asarray(make_directions(d, L, "orthogonal", rng)[0])  # (L, d)
        target = xp.zeros((L, n), dtype=xp.float64)
        for k in range(K):
            sk = xp.sort(xp.matmul(dirs, Ys[k].T), axis=1)              # (L, n_k)
            target = target + w_host[k] * _take_rows(xp, sk, idx[k])
        PZ = xp.matmul(dirs, Z.T)                                       # (L, n)
        ranks = xp.argsort(xp.argsort(PZ, axis=1), axis=1)
        disp = _take_rows(xp, target, ranks) - PZ
        Z = Z + (step * d / L) * xp.matmul(disp.T, dirs)
    return xp.astype(Z, dtype)
