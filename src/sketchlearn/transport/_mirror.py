"""Mirror Sinkhorn: convex optimisation on the transport polytope (Ballu & Berthet).

The math is written once in array-API calls (it is dense elementwise work plus row
and column log-sum-exps, which vectorise), so NumPy, CuPy and any array-API library
run the same code.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._array_api import get_namespace, move_to, public_function
from .._validation import (
    COUNT,
    POSITIVE,
    check_array,
    check_weights,
    user_stacklevel,
)

__all__ = ["mirror_sinkhorn", "MirrorSinkhornResult"]


@dataclass
class MirrorSinkhornResult:
    """Result of :func:`mirror_sinkhorn`.

    Attributes
    ----------
    plan : array of shape (n, m)
        The average of the iterates, rounded onto the transport
        polytope (its marginals are ``a`` and ``b`` up to floating-point rounding).
    gap : float
        Certified optimality gap of ``plan``: ``F(plan) - min_U F <= gap`` for a
        convex ``F`` with exact gradients (NaN in online mode, see
        :func:`mirror_sinkhorn`).
    error : float
        L1 marginal violation of ``plan``, rows plus columns.
    n_iter : int
        Mirror steps done (gradient evaluations, not counting the certificate's).
    converged : bool
        ``gap <= tol``; True for a fixed-horizon run (``tol=None``) that finished.
    f, g : array of shape (n,) and (m,)
        Dual potentials of the certificate: ``f_i + g_j <= G_ij`` for the gradient
        ``G`` at ``plan``, and ``gap = <G, plan> - <a, f> - <b, g>`` (NaN in online
        mode).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import mirror_sinkhorn
    >>> a = b = np.full(3, 1 / 3)
    >>> M = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> res = mirror_sinkhorn(a, b, lambda P: M, max_iter=2000)
    >>> res.plan.shape, res.error < 1e-12, bool(res.gap < 0.05)
    ((3, 3), True, True)
    """

    plan: Any
    gap: float
    error: float
    n_iter: int
    converged: bool
    f: Any
    g: Any


def _lse(xp, Z, axis):
    """log sum exp along ``axis`` with the maximum factored out (-inf for empty rows)."""
    mx = xp.max(Z, axis=axis, keepdims=True)
    mx = xp.where(xp.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        out = xp.log(xp.sum(xp.exp(Z - mx), axis=axis, keepdims=True)) + mx
    return xp.squeeze(out, axis=axis)


def round_to_polytope(xp, P, a, b):
    """Round a non-negative matrix onto U(a, b) (Altschuler, Weed & Rigollet 2017).

    Scale down the rows that carry too much mass, then the columns, and add the
    rank-one correction ``e_r e_c^T / ||e_r||_1`` of the remaining deficits. The
    result has marginals ``a`` and ``b`` exactly (up to rounding) and is within
    ``2 (||P 1 - a||_1 + ||P^T 1 - b||_1)`` of ``P`` in L1.
    """
    r = xp.sum(P, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = xp.where(r > a, a / xp.where(r > 0, r, 1.0), 1.0)
    P = P * x[:, None]
    c = xp.sum(P, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = xp.where(c > b, b / xp.where(c > 0, c, 1.0), 1.0)
    P = P * y[None, :]
    er = xp.clip(a - xp.sum(P, axis=1), 0.0, None)
    ec = xp.clip(b - xp.sum(P, axis=0), 0.0, None)
    s = float(xp.sum(er))
    if s > 0:
        P = P + er[:, None] * ec[None, :] / s
    return P


def marginal_error(xp, P, a, b):
    """L1 violation of both marginals of ``P``."""
    return float(xp.sum(xp.abs(xp.sum(P, axis=1) - a)) + xp.sum(xp.abs(xp.sum(P, axis=0) - b)))


def dual_certificate(xp, G, P, a, b, f0):
    """Feasible potentials for the cost ``G`` from a guess ``f0`` and the gap they certify.

    ``g = min_i (G_ij - f0_i)`` over the rows with ``a_i > 0`` (rows where ``f0`` is
    -inf drop out), then ``f = min_j (G_ij - g_j)``: ``f_i + g_j <= G_ij`` everywhere,
    so ``<a, f> + <b, g> <= min_{Q in U(a, b)} <G, Q>``; for a convex ``F`` with
    gradient ``G`` at ``P``, ``F(P) - min_U F <= <G, P> - <a, f> - <b, g>``.
    """
    g = xp.min(G - f0[:, None], axis=0)
    f = xp.min(G - g[None, :], axis=1)
    lower = float(xp.sum(a * f) + xp.sum(b * g))
    return f, g, max(float(xp.sum(G * P)) - lower, 0.0)


def _accepts_t(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if "t" in params:
        return True
    required = [p for p in params.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.default is p.empty]
    return len(required) >= 2


def mirror_core(xp, a, b, grad, Z0, *, step, max_iter, tol, check_every, step_cap,
                online):
    """The Mirror Sinkhorn loop on float64 arrays of namespace ``xp``.

    ``grad(P, logP, t)`` returns the (float64) gradient at the iterate; ``Z0`` is the
    log of the starting matrix, -inf outside the support of ``a b^T``. Returns
    ``(plan, f, g, gap, error, n_iter, converged)``.
    """
    rows, cols = a > 0, b > 0
    support = rows[:, None] & cols[None, :]
    with np.errstate(divide="ignore"):
        la, lb = xp.log(a), xp.log(b)
    Z = Z0
    alpha = xp.zeros(a.shape, dtype=xp.float64)
    beta = xp.zeros(b.shape, dtype=xp.float64)

    def row_step(Z, beta):  # rows without mass are -inf - (-inf): masked out
        with np.errstate(invalid="ignore"):
            return xp.where(rows, la - _lse(xp, Z + beta[None, :], 1), 0.0)

    def col_step(Z, alpha):
        with np.errstate(invalid="ignore"):
            return xp.where(cols, lb - _lse(xp, Z + alpha[:, None], 0), 0.0)

    # Start on (near) the polytope: one row and one column scaling of P0.
    alpha = row_step(Z, beta)
    beta = col_step(Z, alpha)
    avg = xp.zeros(Z.shape, dtype=xp.float64)
    weight = eta_sum = 0.0
    eta0 = None
    n_iter = 0
    gap = math.nan
    f = g = None
    converged = tol is None

    def current():
        L = Z + alpha[:, None] + beta[None, :]
        return xp.exp(L), L

    def certificate():
        P = round_to_polytope(xp, avg / weight, a, b)
        LP = xp.log(xp.clip(P, 1e-300, None))
        G = xp.where(support, xp.astype(grad(P, LP, None), xp.float64), 0.0)
        f0 = xp.where(rows, alpha / eta_sum, -math.inf)
        return (P,) + dual_certificate(xp, G, P, a, b, f0)

    for t in range(1, max_iter + 1):
        P, L = current()
        G = grad(P, L, t)
        G = xp.where(support, xp.astype(G, xp.float64), 0.0)
        if not bool(xp.all(xp.isfinite(G))):
            raise FloatingPointError(
                f"grad returned NaN or infinity at iteration {t}; the gradient must be "
                "finite on the support of a b^T.")
        if eta0 is None:
            spread = float(xp.max(xp.where(support, G, -math.inf))
                           - xp.min(xp.where(support, G, math.inf)))
            # delta = max |log a_i| + max |log b_j| over the support (>= log(n m)).
            delta = float(xp.max(xp.where(rows, -la, 0.0)) + xp.max(xp.where(cols, -lb, 0.0)))
            eta0 = step * math.sqrt(max(delta, math.log(2.0)))
            eta0 = eta0 / spread if spread > 0 else eta0
        eta = min(eta0 / math.sqrt(t), step_cap)
        avg = avg + P  # Cesaro average of the iterates
        weight += 1.0
        eta_sum += eta
        Z = Z - eta * G
        if t % 2:
            alpha = row_step(Z, beta)
        else:
            beta = col_step(Z, alpha)
        n_iter = t
        if tol is not None and not online and t % check_every == 0:
            Pr, f, g, gap = certificate()
            if gap <= tol:
                converged = True
                break
    if tol is None or not converged:
        if online:
            plan = round_to_polytope(xp, avg / weight, a, b)
            f = g = None
        else:
            plan, f, g, gap = certificate()
        if tol is not None:
            converged = gap <= tol
    else:
        plan = Pr
    return plan, f, g, gap, marginal_error(xp, plan, a, b), n_iter, converged


def _check_marginals(a, b, P0):
    arrays = [x for x in (a, b) if hasattr(x, "shape")]
    xp = get_namespace(*arrays) if arrays else np
    a = check_array(a if hasattr(a, "shape") else np.asarray(a, dtype=float), "a",
                    ensure_2d=False)
    b = check_array(b if hasattr(b, "shape") else np.asarray(b, dtype=float), "b",
                    ensure_2d=False)
    dtype = xp.float32 if (a.dtype == xp.float32 and b.dtype == xp.float32) else xp.float64
    a = check_weights(a, a.shape[0], "a", xp=xp, dtype=xp.float64)
    b = check_weights(b, b.shape[0], "b", xp=xp, dtype=xp.float64)
    n, m = a.shape[0], b.shape[0]
    if P0 is None:
        with np.errstate(divide="ignore"):
            Z0 = xp.log(a)[:, None] + xp.log(b)[None, :]
    else:
        P0 = check_array(P0 if hasattr(P0, "shape") else np.asarray(P0, dtype=float), "P0")
        P0 = xp.astype(move_to(P0, xp), xp.float64)
        if P0.shape != (n, m):
            raise ValueError(f"P0 has shape {tuple(P0.shape)}; it must be (len(a), len(b)) "
                             f"= ({n}, {m}).")
        if bool(xp.any(P0 < 0)):
            raise ValueError("P0 has negative entries; a transport plan is non-negative.")
        rs, cs = xp.sum(P0, axis=1), xp.sum(P0, axis=0)
        if bool(xp.any((a > 0) & (rs <= 0))) or bool(xp.any((b > 0) & (cs <= 0))):
            raise ValueError("P0 has an all-zero row or column where a or b has mass; "
                             "multiplicative updates keep zeros at zero, so no plan in "
                             "U(a, b) can be reached. Start from a strictly positive P0.")
        with np.errstate(divide="ignore"):
            Z0 = xp.log(P0)
    Z0 = xp.where((a > 0)[:, None] & (b > 0)[None, :], Z0, -math.inf)
    return xp, a, b, Z0, dtype


@public_function(arrays=("a", "b", "P0"),
                 params={"step": POSITIVE, "max_iter": [*COUNT, None], "tol": [*POSITIVE, None],
                         "check_every": COUNT})
def mirror_sinkhorn(a, b, grad, *, P0=None, step=1.0, max_iter=None, tol=None,
                    check_every=10):
    r"""Minimise a convex function over the transport polytope by Mirror Sinkhorn.

    Solves :math:`\min_{P \in U(a, b)} F(P)`, :math:`U(a, b) = \{P \ge 0 :
    P 1 = a,\ P^T 1 = b\}`, for a convex differentiable ``F`` given by its gradient,
    with the single-loop algorithm of Ballu & Berthet (2023). Each iteration takes a
    mirror (entropic, multiplicative) gradient step and then *one* Sinkhorn
    projection, on the rows at odd ``t`` and the columns at even ``t``:

    .. math::

        P'_{t+1} = P_t \odot e^{-\eta_t \nabla F(P_t)}, \qquad
        P_{t+1} = \mathrm{diag}\Big(\frac{a}{P'_{t+1} 1}\Big) P'_{t+1}
        \ \text{(odd t)} \quad\text{or}\quad
        P'_{t+1}\,\mathrm{diag}\Big(\frac{b}{P'^T_{t+1} 1}\Big)\ \text{(even t)}.

    The output is the average :math:`\bar P_T = \frac1T \sum_{t \le T} P_t` of the
    iterates, rounded onto :math:`U(a, b)` by the procedure of Altschuler, Weed &
    Rigollet (2017), so the returned plan has the marginals ``a`` and ``b`` to
    floating-point rounding. Everything runs in the log domain (the iterate is
    :math:`P_t = P_0 \odot e^{\alpha 1^T + 1 \beta^T - \sum_s \eta_s \nabla F(P_s)}`),
    so small steps or large gradients do not underflow.

    **Step sizes.** :math:`\eta_t = \mathrm{step}\, \sqrt{\delta / t} / \omega`
    with :math:`\delta = \max_i |\log a_i| + \max_j |\log b_j| = \log(1 / \min_i a_i)
    + \log(1 / \min_j b_j)` (over the entries with mass; :math:`\log(nm)` for
    uniform weights) and :math:`\omega = \max \nabla F(P_1) - \min \nabla F(P_1)`
    the spread of the first gradient: a decreasing schedule
    :math:`\sqrt{\delta / t} / B` with the gradient bound ``B`` taken as the
    spread (a constant added to the gradient changes no scaled plan, and for a
    cost matrix with minimum 0 the spread is :math:`\|C\|_\infty`). It needs no
    horizon, so it also serves the online setting. ``step=1`` was within 30% of
    the best of 0.5, 1 and 2 on OT and quadratic test problems. The Notes say
    which parts of this were checked, and against what.

    **Stopping and certificate.** ``F`` itself is never needed: for a convex ``F``,
    :math:`F(P) - \min_U F \le \langle G, P\rangle - \min_{Q \in U}\langle G, Q\rangle`
    with :math:`G = \nabla F(P)`, and any potentials with :math:`f_i + g_j \le G_{ij}`
    bound the last minimum from below. The potentials come from the scalings
    :math:`\alpha / \sum_s \eta_s` made feasible by two c-transforms; the resulting
    ``gap`` is a certified upper bound on the suboptimality of the returned plan
    (exact gradients assumed). With ``tol`` the loop stops once ``gap <= tol``
    (checked every ``check_every`` iterations, one extra gradient call each);
    otherwise it runs ``max_iter`` iterations.

    Parameters
    ----------
    a : array of shape (n,)
        Row marginal (non-negative, summing to one).
    b : array of shape (m,)
        Column marginal.
    grad : callable or sequence of arrays of shape (n, m)
        The gradient of ``F``:

        - ``grad(P)`` returns :math:`\nabla F(P)` as an array of shape (n, m);
        - if ``grad`` has a parameter named ``t`` or requires two positional
          arguments, it is called as ``grad(P, t)`` with the iteration number
          ``t = 1, 2, ...`` (online losses, stochastic gradients with a schedule);
        - a sequence of cost matrices ``[C_1, C_2, ...]`` (or an array of shape
          (T, n, m)) is the online linear problem :math:`F_t(P) = \langle C_t,
          P\rangle`, one matrix per iteration.

        In the two online forms the objective changes with ``t``: the returned plan
        is the averaged play, and there is no certificate (``gap`` is NaN, ``tol``
        must be None).
    P0 : array of shape (n, m), optional
        Starting plan, non-negative, with mass in every row and column where ``a``
        and ``b`` have some (zeros stay zeros under multiplicative updates). It is
        scaled onto the polytope first. Default :math:`a b^T`.
    step : float > 0, default=1.0
        Step-size multiplier (see above).
    max_iter : int, optional
        Iteration cap; default 1000, or the length of a sequence ``grad``.
    tol : float > 0, optional
        Stop when the certified gap is at most ``tol`` (in the units of ``F``).
        Default: run ``max_iter`` iterations.
    check_every : int, default=10
        Iterations between certificate checks when ``tol`` is given.

    Returns
    -------
    result : MirrorSinkhornResult
        ``plan``, ``gap``, ``error`` (L1 marginal violation of ``plan``), ``n_iter``,
        ``converged`` and the certificate potentials ``f``, ``g``.

    Warns
    -----
    ConvergenceWarning
        When ``tol`` is given and the certified gap is still above it after
        ``max_iter`` iterations; the message states the gap reached.

    See Also
    --------
    sinkhorn : ``method="mirror"`` runs this on the (entropic) transport objective.

    Notes
    -----
    Cost per iteration: one gradient call, two dense exponentials and one row or
    column log-sum-exp, O(nm) time and memory (the iterate, the running average and
    the gradient are dense). The rate is that of a first-order method,
    :math:`O(1/\sqrt T)` for the certified gap, so it targets moderate accuracy; for
    entropic OT proper use :func:`sinkhorn`. Plans are float64 unless ``a`` and
    ``b`` are both float32.

    *What was checked against the paper, and what was not.* Only the abstract of
    Ballu & Berthet (ICML 2023, arXiv:2211.10420) and a summary of its algorithm
    figure could be read where this was written, not the body of the paper. They
    confirm the loop: a single-loop method alternating a multiplicative
    (entropic mirror) gradient step with one row or one column scaling. The
    step-size formula, its constant, which average the paper's guarantee is
    stated for, the rate and the theorem numbers could **not** be read, so they
    are not verified against the paper. A third-party implementation attributes
    to the paper's Theorem 3.1 the schedule :math:`\sqrt{\delta/t} / \|C\|_\infty`
    with the same :math:`\delta`, started from :math:`a b^T`, and the uniform
    average; that is a secondary source, and ours differs from it only in using
    the spread :math:`\omega` for :math:`\|C\|_\infty` (equal for a cost with
    minimum 0; :math:`\omega \le 2\|C\|_\infty` always).

    *What was verified here instead* (derivation, and tests that recompute it
    from the iterates). For any :math:`P \in U(a, b)`, the three-point identity
    of the KL divergence and the exact Pythagorean identity of a row scaling,
    :math:`\mathrm{KL}(P \| P') = \mathrm{KL}(P \| P_{t+1}) + \mathrm{KL}(a \|
    P' 1)` (columns alike), give after the gradient is shifted to minimum 0
    (which the scaling ignores)

    .. math::

        \sum_{t \le T} \eta_t \langle \nabla F(P_t), P_t - P\rangle
        + \sum_{t \le T} \mathrm{KL}(\text{marginal}_t)
        \le \mathrm{KL}(P \| a b^T) + \sum_{t \le T} \eta_t^2 \omega_t^2 / 2,

    with :math:`\omega_t` the spread of :math:`\nabla F(P_t)` (default start
    :math:`P_1 = a b^T`). The divergence from the start is where :math:`\delta`
    comes from: :math:`\mathrm{KL}(P \| a b^T) = -H(P) - \sum_{ij} P_{ij} (\log
    a_i + \log b_j) \le \delta`, and in fact :math:`\le \min(H(a), H(b)) \le
    \delta / 2`. For convex ``F`` this bounds :math:`F(\tilde P_T) - F(P)` for the
    *step-weighted* average :math:`\tilde P_T = \sum_t \eta_t P_t / \sum_t \eta_t`
    (near, not on, the polytope) by the right-hand side over :math:`\sum_t
    \eta_t`: for a linear cost (:math:`\omega_t = \omega`) and the schedule above,
    :math:`O(\omega \sqrt{\delta} \log T / \sqrt T)`. We return the *uniform*
    average instead (a deviation from what that bound covers; with decreasing
    steps the argument says nothing directly about it) because, both rounded onto
    the polytope, it measured 1.8-3.1 times smaller errors to ``ot.emd2`` (30 x 25
    OT, ``T`` = 1000 and 8000, seeds 0-2) and 2.7-23 times smaller suboptimality on
    the quadratic projections of the tests (``T`` = 2000 and 20000, seeds 0-2). The
    certificate holds for whichever plan is returned, so this choice cannot make
    ``gap`` wrong.

    Examples
    --------
    Project a matrix onto the transport polytope in Frobenius norm,
    :math:`F(P) = \|P - Q\|_F^2 / 2`:

    >>> import numpy as np
    >>> from sketchlearn.transport import mirror_sinkhorn
    >>> rng = np.random.default_rng(0)
    >>> a, b = np.full(4, 0.25), np.full(5, 0.2)
    >>> Q = np.outer(a, b) + rng.normal(scale=0.01, size=(4, 5))
    >>> res = mirror_sinkhorn(a, b, lambda P: P - Q, max_iter=5000, tol=5e-4)
    >>> res.converged, bool(np.allclose(res.plan.sum(1), a)), res.gap <= 5e-4
    (True, True, True)

    Online linear losses, one cost matrix per round:

    >>> costs = rng.random((200, 4, 5))
    >>> online = mirror_sinkhorn(a, b, costs)
    >>> online.n_iter, bool(np.isnan(online.gap))
    (200, True)
    """
    if tol is not None:
        tol = float(tol)
    xp, a, b, Z0, dtype = _check_marginals(a, b, P0)
    n, m = a.shape[0], b.shape[0]
    sequence = None
    if callable(grad):
        accepts_t = _accepts_t(grad)
        online = accepts_t
        user = grad

        def fn(P, L, t):
            return _as_gradient(xp, user(P, t) if accepts_t else user(P), n, m)
    else:
        if isinstance(grad, (str, bytes)) or not hasattr(grad, "__len__") or (
                hasattr(grad, "ndim") and grad.ndim != 3):
            raise TypeError(
                "grad must be a callable P -> dF/dP, or a sequence of (n, m) cost "
                f"matrices (an array of shape (T, n, m)), got {type(grad).__name__}"
                + (f" of shape {tuple(grad.shape)}" if hasattr(grad, "shape") else "")
                + "; for a fixed cost matrix M pass lambda P: M, or use "
                "sinkhorn(a, b, M, method='mirror').")
        if len(grad) == 0:
            raise ValueError("grad is an empty sequence of cost matrices.")
        sequence = grad
        online = True

        def fn(P, L, t):
            return _as_gradient(xp, sequence[t - 1], n, m)

    if sequence is not None:
        if max_iter is not None and max_iter > len(sequence):
            raise ValueError(f"max_iter={max_iter} is larger than the number of cost "
                             f"matrices given ({len(sequence)}).")
        max_iter_ = len(sequence) if max_iter is None else max_iter
    else:
        max_iter_ = 1000 if max_iter is None else max_iter
    if online and tol is not None:
        raise ValueError("tol needs a fixed objective; grad is online (it takes the "
                         "iteration t, or is a sequence of costs), so leave tol=None.")
    plan, f, g, gap, err, n_iter, converged = mirror_core(
        xp, a, b, fn, Z0, step=float(step), max_iter=max_iter_, tol=tol,
        check_every=int(check_every), step_cap=math.inf, online=online)
    if tol is not None and not converged:
        warnings.warn(
            f"Mirror Sinkhorn stopped after {n_iter} iterations with a certified gap of "
            f"{gap:.3g} (tol={tol:g}); increase max_iter or step, or loosen tol.",
            ConvergenceWarning, stacklevel=user_stacklevel())
    return MirrorSinkhornResult(plan=xp.astype(plan, dtype), gap=gap, error=err,
                                n_iter=n_iter, converged=bool(converged), f=f, g=g)


def mirror_transport(xp, a, b, M, reg, *, step, max_iter, tol, check_every):
    """Mirror Sinkhorn on ``<P, M> + reg KL(P || a b^T)`` (``reg = 0``: plain OT).

    The gradient is ``M + reg (log P - log a b^T)`` (the constant ``reg`` is dropped:
    constants do not move a mirror step). Steps are capped at ``1 / reg``. From the
    current plan ``P``, a step of size ``eta`` gives exactly
    ``P' = P^(1 - eta reg) K^(eta reg)`` (entrywise, ``log P - eta (M + reg log(P /
    a b^T)) = (1 - eta reg) log P + eta reg log K``), with ``K = a b^T exp(-M / reg)``
    the Gibbs kernel: a geometric interpolation between the plan and ``K``, which a
    larger step would overshoot (negative weight on the current plan). At the cap,
    ``eta reg = 1``, the step forgets the plan, scalings included (``P' = K`` for
    every ``P``), and the scaling that follows returns ``diag(a / K 1) K`` or
    ``K diag(b / K^T 1)``: a restart from the Gibbs kernel plus one row or column
    normalisation, i.e. the first half-step of Sinkhorn started afresh, *not* a
    Sinkhorn update of the current iterate (which keeps the other scaling); a fixed
    step ``1 / reg`` would alternate between those two matrices for ever. The
    decreasing schedule ``eta_t = step sqrt(delta / t) / omega`` sits
    at the cap only while ``t <= delta (step reg / omega)^2`` (``omega`` the spread of
    ``M``): never past the first iterations unless ``reg`` is large against the costs.
    Returns what :func:`mirror_core` does.
    """
    M = xp.astype(M, xp.float64)
    with np.errstate(divide="ignore"):
        lab = xp.log(a)[:, None] + xp.log(b)[None, :]
    support = (a > 0)[:, None] & (b > 0)[None, :]
    lab = xp.where(support, lab, 0.0)

    def fn(P, L, t):
        if reg == 0:
            return M
        return M + reg * (xp.where(support, L, 0.0) - lab)

    Z0 = xp.where(support, lab, -math.inf)
    return mirror_core(xp, a, b, fn, Z0, step=step, max_iter=max_iter, tol=tol,
                       check_every=check_every,
                       step_cap=(1.0 / reg) if reg > 0 else math.inf, online=False)


def _as_gradient(xp, G, n, m):
    if not hasattr(G, "shape"):
        G = np.asarray(G, dtype=np.float64)
    G = xp.astype(move_to(G, xp), xp.float64)
    if tuple(G.shape) != (n, m):
        raise ValueError(f"grad returned an array of shape {tuple(G.shape)}; it must have "
                         f"the plan's shape ({n}, {m}).")
    return G
