"""Entropic optimal transport: Sinkhorn in the scaling and log domains, epsilon-scaling,
Newton (SNS) and Mirror Sinkhorn behind one ``sinkhorn`` entry point."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import StrOptions

from .._array_api import get_namespace, move_to, public_function
from .._validation import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    check_array,
    check_same_n_features,
    check_weights,
    user_stacklevel,
)
from ._mirror import mirror_transport
from ._sinkhorn_log import STAGE_MAX_ITER, STAGE_TOL, log_loop, lse_pair
from ._sinkhorn_newton import sns_newton
from ._sinkhorn_ops import ROW_BLOCK, lse_points_op, pairwise_cost
from ._sinkhorn_scaling import scaling_loop, scaling_stages
from ._unbalanced import check_mass, parse_reg_m, unbalanced_loop, unbalanced_objective

__all__ = ["sinkhorn", "sinkhorn_divergence", "SinkhornResult"]

_METRICS = {"sqeuclidean": 2.0, "euclidean": 1.0}
_METHODS = ("auto", "scaling", "log", "sns", "mirror")
# Dense plans are returned up to this many entries when return_plan="auto".
_DENSE_PLAN_MAX = 2**24
# Log-domain epsilon-scaling: the factor between stages.
_EPS_FACTOR = 0.5
# method="auto"/"scaling": hand a balanced problem to Newton (Sinkhorn-Newton-Sparse) when
# the scaling iterations project more than this many more iterations to reach tol.
_NEWTON_AFTER = 500


@dataclass
class SinkhornResult:
    """Result of :func:`sinkhorn`.

    The plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / reg)``.

    Attributes
    ----------
    cost : float
        Transport cost ``<P, C>`` (without the entropy term).
    plan : array of shape (n, m) or None
        The plan, when it was asked for or fits in memory (see ``return_plan``).
    f, g : array of shape (n,) and (m,)
        Dual potentials (float64, in the input's array library).
    n_iter : int
        Sinkhorn iterations done, over all epsilon stages.
    error : float
        L1 marginal violation of the returned plan: rows plus columns for the
        scaling domain and Newton, the row marginal alone for the log domain (whose
        column marginal is exact). With ``reg_m`` (unbalanced): the change
        of the potentials over the last iteration, ``max(|f - f'|, |g - g'|) / reg``.
    converged : bool
        Whether ``error <= tol``.
    reg : float
        The regularisation.
    n_newton : int
        Newton steps among ``n_iter`` (``method="sns"``).
    gap : float
        Certified optimality gap of the plan for ``method="mirror"`` (an upper bound
        on its objective minus the optimum); NaN for the other methods.
    objective : float
        With ``reg_m``: the full unbalanced objective ``<P, C> + reg KL(P | a b^T) +
        reg_m_a KL(P 1 | a) + reg_m_b KL(P^T 1 | b)`` (POT's ``log["total_cost"]``);
        NaN for balanced transport.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import sinkhorn
    >>> rng = np.random.default_rng(0)
    >>> res = sinkhorn(X=rng.normal(size=(50, 2)), Y=rng.normal(size=(40, 2)), reg=0.1)
    >>> res.plan.shape, res.converged
    ((50, 40), True)
    >>> v = np.ones(40)
    >>> bool(np.allclose(res.plan_matvec(v), res.plan @ v))
    True
    """

    cost: float
    plan: Any
    f: Any
    g: Any
    n_iter: int
    error: float
    converged: bool
    reg: float
    n_newton: int = 0
    gap: float = math.nan
    objective: float = math.nan
    _source: tuple = field(default=(), repr=False)

    def plan_matvec(self, V):
        """``P @ V`` for a vector (m,) or matrix (m, k), without forming ``P`` for point
        clouds (blocks of rows).

        Parameters
        ----------
        V : array of shape (m,) or (m, k)

        Returns
        -------
        PV : array of shape (n,) or (n, k)

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.transport import sinkhorn
        >>> M = np.array([[0.0, 1.0], [1.0, 0.0]])
        >>> res = sinkhorn(np.full(2, 0.5), np.full(2, 0.5), M, reg=0.1)
        >>> bool(np.allclose(res.plan_matvec(np.ones(2)), 0.5))
        True
        """
        xp, kind, A, B, la, lb, power = self._source
        V = xp.asarray(V) if not hasattr(V, "shape") else V
        vec = V.ndim == 1
        V2 = xp.astype(xp.reshape(V, (-1, 1)) if vec else V, xp.float64)
        if kind == "plan":  # method="mirror": the plan is an average, kept dense
            R = xp.matmul(xp.astype(A, xp.float64), V2)
            return R[:, 0] if vec else R
        out = []
        for s in range(0, self.f.shape[0], ROW_BLOCK):
            C = _cost_block(xp, kind, A, B, s, power)
            e = min(s + ROW_BLOCK, self.f.shape[0])
            P = _plan_block(xp, C, self.f[s:e], self.g, la[s:e], lb, self.reg)
            out.append(xp.matmul(P, V2))
        R = out[0] if len(out) == 1 else xp.concat(out, axis=0)
        return R[:, 0] if vec else R


# Point clouds with at most this many pairs get a stored cost matrix (32 MiB).
DENSE_COST_MAX = 2**22


def _cost_block(xp, kind, A, B, s, power):
    e = min(s + ROW_BLOCK, A.shape[0])  # array-API slices must stay in bounds
    if kind == "matrix":
        return xp.astype(A[s:e, :], xp.float64, copy=False)
    return pairwise_cost(xp, A[s:e, :], B, power)


def _plan_block(xp, C, f, g, la, lb, reg):
    return xp.exp((f[:, None] + g[None, :] - C) / reg + la[:, None] + lb[None, :])


def _plan_dtype(xp, A, B):
    """float32 plans for float32 inputs (B is None for a cost matrix), else float64."""
    return A.dtype if A.dtype == xp.float32 and (B is None or B.dtype == xp.float32) \
        else xp.float64


def _log_weights(xp, w):
    with np.errstate(divide="ignore"):
        return xp.log(xp.astype(w, xp.float64))


def check_cost_source(M, X, Y, reg, method):
    """The checks :func:`sinkhorn` makes of where the cost comes from and of ``reg``,
    in memory and on Dask."""
    if reg == 0 and method != "mirror":
        raise ValueError("reg must be in (0, inf) unless method='mirror' (reg=0: "
                         f"unregularised transport); got {reg!r}.")
    if M is not None and (X is not None or Y is not None):
        raise ValueError("Give either the cost matrix M or the point clouds X and Y, "
                         "not both.")


@public_function(arrays=("a", "b", "M", "X", "Y", "warm_start"),
                 params={"reg": NON_NEGATIVE, "method": [StrOptions(set(_METHODS))],
                         "tol": POSITIVE, "max_iter": COUNT, "eps_scaling": ["boolean"],
                         "return_plan": [StrOptions({"auto"}), "boolean"],
                         "sns_switch_tol": POSITIVE, "sns_keep": COUNT,
                         "mirror_step": POSITIVE, "mirror_check_every": COUNT},
                 dask="sketchlearn.transport._sinkhorn_dask:sinkhorn_dask")
def sinkhorn(a=None, b=None, M=None, *, X=None, Y=None, reg=0.05, metric="sqeuclidean",
             method="auto", tol=1e-6, max_iter=10_000, eps_scaling=True, warm_start=None,
             return_plan="auto", sns_switch_tol=1e-2, sns_keep=10, mirror_step=1.0,
             mirror_check_every=10, reg_m=None):
    r"""Entropic optimal transport by Sinkhorn iterations.

    Solves

    .. math::

        \min_{P \in U(a, b)} \langle P, C \rangle + \mathrm{reg}\,
        \mathrm{KL}(P \,\|\, a b^T)

    by alternating exact updates of the dual potentials,
    :math:`f_i = -\mathrm{reg} \log \sum_j b_j e^{(g_j - C_{ij}) / \mathrm{reg}}` and
    the same for :math:`g`. The default ``method="auto"`` runs them in the *scaling
    domain* whenever the cost is a stored matrix: the potentials found so far are
    absorbed into a Gibbs kernel :math:`K_{ij} = e^{(f_i + g_j - C_{ij})/\mathrm{reg}}`
    and each iteration is two matrix-vector products with it (POT's ``ot.sinkhorn``
    does the same products on :math:`e^{-C/\mathrm{reg}}`), over-relaxed at the
    SOR-optimal factor read from the observed convergence rate. If a kernel row or
    column underflows, it says so (``RuntimeWarning``) and continues in the log
    domain; if the projected iterations exceed 500 (small ``reg``), Newton steps
    (``"sns"``) finish the balanced problem. ``method="log"`` runs every update as a
    log-sum-exp with the row maximum factored out (stable for any ``reg > 0``, never
    stores the kernel). With ``eps_scaling`` the problem is first solved loosely for
    larger regularisations and each solution warm-starts the next. The marginal
    violation is measured every iteration (it comes free with the next update); if
    ``max_iter`` is reached a :class:`~sklearn.exceptions.ConvergenceWarning` states
    the error achieved.

    The cost is either an explicit matrix ``M``, or comes from point clouds ``X``,
    ``Y``: stored once when ``n m <= 2**22`` (32 MiB; float64 clouds), otherwise
    computed on the fly in blocks by the log domain (``"auto"`` picks it then), so
    memory stays O((n + m) d) plus the potentials.

    Dask arrays: ``X`` (or ``M``) in row chunks with ``Y`` in memory run the log-domain
    iterations distributed, one pass per iteration, with the in-memory iterates (to
    about 1e-14); ``f`` and the plan are then lazy Dask arrays (the plan never formed
    unless computed), ``g`` NumPy (see the user guide's Dask page).

    Parameters
    ----------
    a : array of shape (n,), optional
        Source weights (probability vector); uniform by default.
    b : array of shape (m,), optional
        Target weights; uniform by default.
    M : array of shape (n, m), optional
        Cost matrix (finite). Give either ``M`` or both ``X`` and ``Y``.
    X : array of shape (n, d), optional
    Y : array of shape (m, d), optional
        Point clouds; the cost is ``metric(x_i, y_j)``.
    reg : float > 0, default=0.05
        Entropic regularisation, in the units of the cost. ``method="mirror"`` also
        accepts ``reg=0``: unregularised OT.
    metric : {"sqeuclidean", "euclidean"}, default="sqeuclidean"
        Cost between points (only with ``X``, ``Y``).
    method : {"auto", "scaling", "log", "sns", "mirror"}, default="auto"
        ``"auto"``: ``"scaling"`` on a stored cost matrix (with its log-domain and
        Newton fallbacks above), ``"log"`` for point clouds too large to store.
        ``"scaling"``: the scaling domain on the dense cost (built from ``X``, ``Y``
        when ``n m <= 2**26``), with the same fallbacks. ``"log"``: log-domain
        Sinkhorn only. ``"sns"``: Sinkhorn-Newton-Sparse (Tang et
        al. 2024): log-domain Sinkhorn until the marginal error is below
        ``sns_switch_tol``, then Newton steps on the concave dual with the Hessian's
        plan block sparsified to its ``sns_keep * (n + m)`` largest entries, solved
        by conjugate gradients, with a backtracking (Armijo) line search. Newton
        needs the dense cost (built from ``X``, ``Y`` when ``n m <= 2**26``) and runs
        on the host. ``"mirror"``: Mirror Sinkhorn (Ballu & Berthet 2023, see
        :func:`mirror_sinkhorn`) on the same objective :math:`\langle P, C\rangle +
        \mathrm{reg}\, \mathrm{KL}(P \| a b^T)`, whose gradient is
        :math:`C + \mathrm{reg} \log(P / a b^T)` (steps capped at ``1 / reg``: a step
        ``eta`` moves :math:`\log P` the fraction ``eta reg`` of the way to the Gibbs
        kernel, so at the cap it resets the plan to that kernel before one row or
        column scaling, which is not a Sinkhorn update); with ``reg=0`` it approaches the
        unregularised OT cost (``ot.emd2``) at the first-order rate
        :math:`O(1/\sqrt T)`. The returned plan is the averaged iterate rounded onto
        :math:`U(a, b)` (exact marginals), ``tol`` bounds its *certified optimality
        gap* (``result.gap``) instead of the marginal error, and ``f``, ``g`` are the
        dual-feasible potentials of that certificate. It builds the dense cost
        (``n m <= 2**26``), works in any array library, and targets moderate
        accuracy (``tol`` around 1e-3 of the cost scale).
    tol : float > 0, default=1e-6
        Stop when the L1 marginal violation is at most ``tol`` (row marginal for
        ``"log"``, whose column marginal is exact; rows plus columns for
        ``"scaling"`` and ``"sns"``; the certified gap for ``"mirror"``).
    max_iter : int, default=10000
        Iteration cap over all stages.
    eps_scaling : bool, default=True
        Anneal ``reg`` geometrically: in the log domain from the cost range down by
        factors of 2; in the scaling domain only when the cost range exceeds 200
        ``reg`` (the kernel's float range needs it, convergence does not), from
        range / 200 down by factors of 4.
    warm_start : tuple (f, g), optional
        Initial potentials (for example from a previous call); disables the
        annealing stages above ``reg``.
    return_plan : {"auto", True, False}, default="auto"
        Build the dense plan ("auto": when ``n m <= 2**24``).
    sns_switch_tol : float, default=1e-2
        Marginal error at which ``"sns"`` switches from Sinkhorn to Newton.
    sns_keep : int, default=10
        Entries kept per point in the sparsified Hessian of ``"sns"``.
    mirror_step : float > 0, default=1.0
        Step multiplier of ``"mirror"`` (``step`` of :func:`mirror_sinkhorn`).
    mirror_check_every : int, default=10
        Iterations between the gap checks of ``"mirror"``.
    reg_m : float or pair of floats, optional
        Unbalanced transport: the marginal constraints become penalties
        ``reg_m_a KL(P 1 | a) + reg_m_b KL(P^T 1 | b)`` (a scalar applies to both; a
        pair ``(reg_m_a, reg_m_b)``; ``inf`` keeps that marginal exact). ``None``
        (default) or ``inf`` is balanced transport. ``a`` and ``b`` may then have any
        positive mass. The updates are the balanced ones damped by ``tau = reg_m /
        (reg_m + reg)`` (Chizat et al. 2018), in the scaling or log domain
        (``method`` "auto", "scaling" or "log"; no Newton finish), with the same
        cost-matrix and point-cloud paths. ``tol`` then bounds
        the change of the potentials over one iteration, ``max(|f - f'|, |g - g'|) /
        reg`` (sup norm), and ``result.error`` reports it. See
        :ref:`unbalanced-sinkhorn`.

    Returns
    -------
    result : SinkhornResult
        ``cost``, ``plan``, potentials ``f`` and ``g``, ``n_iter``, ``error``,
        ``converged`` and :meth:`~sketchlearn.transport.SinkhornResult.plan_matvec`.

    Warns
    -----
    ConvergenceWarning
        When the marginal error is still above ``tol`` after ``max_iter`` iterations.
    RuntimeWarning
        When the scaling domain leaves the float range and the log domain takes over.

    Examples
    --------
    >>> import numpy as np
    >>> import ot
    >>> from sketchlearn.transport import sinkhorn
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2)) + 1.0
    >>> a, b = np.full(60, 1 / 60), np.full(50, 1 / 50)
    >>> M = ot.dist(X, Y) / ot.dist(X, Y).max()     # costs in [0, 1]
    >>> res = sinkhorn(a, b, M, reg=1e-3, tol=1e-9)
    >>> exact = ot.emd2(a, b, M)
    >>> bool(abs(res.cost - exact) / exact < 0.01), res.error < 1e-9
    (True, True)

    Unbalanced transport (KL-relaxed marginals), equal to POT's converged plan:

    >>> ub = sinkhorn(a, b, M, reg=0.05, reg_m=1.0, tol=1e-12)
    >>> P = ot.sinkhorn_unbalanced(a, b, M, 0.05, 1.0, numItermax=10**5, stopThr=1e-13)
    >>> bool(abs(ub.plan - P).max() < 1e-10), bool(ub.plan.sum() < 1.0)
    (True, True)
    """
    rm = parse_reg_m(reg_m)
    if rm is not None and method not in ("auto", "scaling", "log"):
        raise ValueError(f"reg_m (unbalanced transport) needs method='auto', 'scaling' or "
                         f"'log'; got method={method!r}.")
    check_cost_source(M, X, Y, reg, method)
    reg, tol = float(reg), float(tol)
    if M is not None:
        M = check_array(M, "M", allow_nonfinite=True)
        xp = get_namespace(M)
        # max and min propagate NaN, and an infinity is one of them: finite extremes
        # mean a finite matrix, without a third pass over it.
        cmax = float(xp.max(M))
        cmin = float(xp.min(M))
        if not (math.isfinite(cmax) and math.isfinite(cmin)):
            raise ValueError("M contains NaN or infinity; every cost must be finite (use a "
                             "large finite cost to forbid a pair).")
        n, m = M.shape
        kind, A, B, power = "matrix", M, None, 1.0
    else:
        if X is None or Y is None:
            raise ValueError("Give a cost matrix M, or both point clouds X and Y.")
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
        X = check_array(X, "X")
        Y = check_array(Y, "Y")
        check_same_n_features(X, Y)
        xp = get_namespace(X, Y)
        n, m = X.shape[0], Y.shape[0]
        power = _METRICS[metric]
        kind, A, B = "points", X, Y
        lo = xp.minimum(xp.min(X, axis=0), xp.min(Y, axis=0))
        hi = xp.maximum(xp.max(X, axis=0), xp.max(Y, axis=0))
        cmax = float(xp.sum((xp.astype(hi, xp.float64) - xp.astype(lo, xp.float64)) ** 2)) \
            ** (power / 2)
        cmin = 0.0
        if n * m <= DENSE_COST_MAX and X.dtype == xp.float64 and Y.dtype == xp.float64:
            # Small enough to keep: iterations on a stored cost matrix (and its
            # transpose) skip recomputing the distances, about 20 % less time each at
            # n = m = 2000, d = 10. Larger clouds stay on the fly, O((n + m) d) memory.
            C = pairwise_cost(xp, X, Y, power)
            kind, A, B, power = "matrix", C, None, 1.0
    check = check_weights if rm is None else \
        lambda w, k, name, xp, dtype: check_mass(w, k, name, xp)
    a = xp.full((n,), 1.0 / n, dtype=xp.float64) if a is None else \
        check(a, n, "a", xp=xp, dtype=xp.float64)
    b = xp.full((m,), 1.0 / m, dtype=xp.float64) if b is None else \
        check(b, m, "b", xp=xp, dtype=xp.float64)
    la, lb = _log_weights(xp, a), _log_weights(xp, b)
    if method == "mirror":
        if warm_start is not None:
            raise ValueError("warm_start is for method='log' or 'sns'; method='mirror' "
                             "starts from a b^T (use mirror_sinkhorn(P0=...) to choose).")
        return _sinkhorn_mirror(xp, kind, A, B, a, b, n, m, power, reg, tol, max_iter,
                                float(mirror_step), int(mirror_check_every), return_plan)

    if warm_start is not None:
        f0, g0 = warm_start
        f = xp.astype(move_to(f0, xp), xp.float64)
        g = xp.astype(move_to(g0, xp), xp.float64)
        if f.shape != (n,) or g.shape != (m,):
            raise ValueError(f"warm_start must be (f, g) of shapes ({n},) and ({m},).")
    else:
        f = xp.zeros((n,), dtype=xp.float64)
        g = xp.zeros((m,), dtype=xp.float64)
    log_stages = [reg]
    if warm_start is None and eps_scaling:
        eps = cmax - cmin
        while eps > reg / _EPS_FACTOR:
            log_stages.insert(-1, eps)
            eps *= _EPS_FACTOR
    if method == "auto":
        method = "scaling" if kind == "matrix" else "log"
    n_iter, n_newton = 0, 0
    stages, plan = log_stages, None
    if method == "scaling":
        if kind != "matrix":
            if n * m > 2**26:
                raise ValueError(f"method='scaling' needs the dense cost matrix ({n} x {m}); "
                                 "use method='log' for point clouds this large.")
            C = pairwise_cost(xp, A, B, power)
            kind, A, B, power = "matrix", C, None, 1.0
        stages = scaling_stages(cmax - cmin, reg, warm_start is None and eps_scaling)
        if warm_start is None:
            f = f + cmin  # a constant on f leaves the plan's shape: kernel entries <= 1
        f, g, n_iter, err, stop, k, plan = scaling_loop(
            xp, xp.astype(A, xp.float64, copy=False), a, b, f, g, stages, tol, max_iter, STAGE_TOL,
            STAGE_MAX_ITER, reg_m=rm, newton_after=_NEWTON_AFTER)
        if stop == "slow":
            method, plan = "sns", None
        elif stop == "range":
            warnings.warn(
                f"Scaling-domain Sinkhorn left the float range at eps={stages[k]:.3g} (a "
                "kernel row or column underflowed); continuing in the log domain, which "
                "is slower but stable. Pass method='log' to skip the scaling attempt.",
                RuntimeWarning, stacklevel=user_stacklevel())
            stages = stages[k:]
        if stop != "range":
            stages = []
    if rm is not None:
        if stages:
            f, g, k_iter, err = unbalanced_loop(xp, *lse_pair(xp, kind, A, B, power), la,
                                                lb, f, g, stages, rm, tol, max_iter - n_iter,
                                                STAGE_TOL, STAGE_MAX_ITER)
            n_iter += k_iter
        return _finish(xp, kind, A, B, a, b, la, lb, n, m, power, reg, tol, return_plan,
                       f, g, n_iter, err, reg_m=rm, plan=plan)
    if stages:
        switch = float(sns_switch_tol) if method == "sns" else None
        f, g, k_iter, err = log_loop(xp, *lse_pair(xp, kind, A, B, power), a, la, lb, f,
                                      g, stages, tol, max_iter - n_iter, switch)
        n_iter += k_iter
    if method == "sns" and err > tol and n_iter < max_iter:
        f, g, err, n_newton = sns_newton(xp, kind, A, B, a, b, f, g, reg, power, tol,
                                          max_iter - n_iter, int(sns_keep))
        n_iter += n_newton
    return _finish(xp, kind, A, B, a, b, la, lb, n, m, power, reg, tol, return_plan,
                   f, g, n_iter, err, n_newton=n_newton, plan=plan)


def _finish(xp, kind, A, B, a, b, la, lb, n, m, power, reg, tol, return_plan, f, g,
            n_iter, err, n_newton=0, reg_m=None, plan=None):
    """Warn on non-convergence, then build the cost, the plan and the result.

    ``plan``: ``(P, <P, C>, P 1)`` when the solver already holds the dense float64 plan
    (the scaling domain's ``diag(u) K diag(v)``), instead of recomputing it from the
    potentials."""
    converged = err <= tol
    if not converged:
        what = "a marginal error" if reg_m is None else \
            "a change of the potentials (in units of reg)"
        reached = f"with {what} of {err:.3g}" if math.isfinite(err) else \
            "in an epsilon-scaling stage, before reg itself (error inf)"
        warnings.warn(
            f"Sinkhorn stopped after {n_iter} iterations {reached} (tol={tol:g}); "
            "increase max_iter or reg, or loosen tol.", ConvergenceWarning,
            stacklevel=user_stacklevel())
    result = SinkhornResult(cost=0.0, plan=None, f=f, g=g, n_iter=n_iter, error=err,
                            converged=converged, reg=reg, n_newton=n_newton,
                            _source=(xp, kind, A, B, la, lb, power))
    dense = return_plan is True or (return_plan == "auto" and n * m <= _DENSE_PLAN_MAX)
    blocks = []
    cost = 0.0
    rows = []
    cols = xp.zeros((m,), dtype=xp.float64)
    if plan is not None:
        P, cost, row_sum = plan
        if reg_m is not None:
            rows.append(row_sum)
            cols = xp.sum(P, axis=0)
        blocks.append(P)
    for s in range(0, n if plan is None else 0, ROW_BLOCK):
        C = _cost_block(xp, kind, A, B, s, power)
        e = min(s + ROW_BLOCK, n)
        P = _plan_block(xp, C, f[s:e], g, la[s:e], lb, reg)
        cost += float(xp.sum(P * C))
        if reg_m is not None:
            rows.append(xp.sum(P, axis=1))
            cols = cols + xp.sum(P, axis=0)
        if dense:
            blocks.append(P)
    result.cost = cost
    if reg_m is not None:
        row_sum = rows[0] if len(rows) == 1 else xp.concat(rows)
        result.objective = unbalanced_objective(xp, a, b, f, g, row_sum, cols, cost, reg,
                                                reg_m)
    if dense:
        dtype = _plan_dtype(xp, A, B)
        P = blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=0)
        result.plan = xp.astype(P, dtype, copy=False)
    return result


def _sinkhorn_mirror(xp, kind, A, B, a, b, n, m, power, reg, tol, max_iter, step,
                     check_every, return_plan):
    if kind == "matrix":
        C = xp.astype(A, xp.float64)
    else:
        if n * m > 2**26:
            raise ValueError(f"method='mirror' needs the dense cost matrix ({n} x {m}); use "
                             "method='log' for point clouds this large.")
        C = pairwise_cost(xp, A, B, power)
    P, f, g, gap, err, n_iter, converged = mirror_transport(
        xp, a, b, C, reg, step=step, max_iter=max_iter, tol=tol, check_every=check_every)
    if not converged:
        warnings.warn(
            f"Mirror Sinkhorn stopped after {n_iter} iterations with a certified gap of "
            f"{gap:.3g} (tol={tol:g}); increase max_iter or loosen tol (the rate is "
            "O(1/sqrt(iterations))).", ConvergenceWarning, stacklevel=user_stacklevel())
    dtype = _plan_dtype(xp, A, B)
    plan = xp.astype(P, dtype) if return_plan in ("auto", True) else None
    return SinkhornResult(cost=float(xp.sum(P * C)), plan=plan, f=f, g=g, n_iter=n_iter,
                          error=err, converged=bool(converged), reg=reg, gap=gap,
                          _source=(xp, "plan", P, None, None, None, power))


@public_function(arrays=("X", "Y", "a", "b"),
                 dask_instead="The debiasing term of X against itself needs all of X in "
                 "every task; use sinkhorn(X=X, Y=Y) on Dask for the transport itself "
                 "(X row-chunked, Y in memory), or compute X and Y (or subsamples) for the "
                 "divergence.")
def sinkhorn_divergence(X, Y, a=None, b=None, *, reg=0.05, metric="sqeuclidean", tol=1e-6,
                        max_iter=10_000):
    r"""Debiased Sinkhorn divergence between two point clouds.

    .. math::

        S_\varepsilon(\mu, \nu) = OT_\varepsilon(\mu, \nu)
        - \tfrac12 OT_\varepsilon(\mu, \mu) - \tfrac12 OT_\varepsilon(\nu, \nu),

    with :math:`OT_\varepsilon = \langle a, f \rangle + \langle b, g \rangle` the optimal
    value of the entropic problem of :func:`sinkhorn` (regularised by
    :math:`\varepsilon\, KL(P \| a b^T)`). It is non-negative, zero when the measures
    are equal, and interpolates between OT (``reg -> 0``) and the energy-like MMD
    (``reg -> inf``) (Feydy et al. 2019).

    Parameters
    ----------
    X, Y : arrays of shape (n, d) and (m, d)
    a, b : arrays of shape (n,) and (m,), optional
        Weights; uniform by default.
    reg, metric, tol, max_iter
        As in :func:`sinkhorn`.

    Returns
    -------
    divergence : float

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import sinkhorn_divergence
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> bool(abs(sinkhorn_divergence(X, X, reg=0.5)) < 1e-6)
    True
    >>> round(sinkhorn_divergence(X, X + [2.0, 0.0], reg=0.5), 2)
    4.0
    """
    X = check_array(X, "X")
    Y = check_array(Y, "Y")
    check_same_n_features(X, Y)
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
    xp = get_namespace(X, Y)
    n, m = X.shape[0], Y.shape[0]
    a = xp.full((n,), 1.0 / n, dtype=xp.float64) if a is None else \
        check_weights(a, n, "a", xp=xp, dtype=xp.float64)
    b = xp.full((m,), 1.0 / m, dtype=xp.float64) if b is None else \
        check_weights(b, m, "b", xp=xp, dtype=xp.float64)
    r = sinkhorn(a, b, X=X, Y=Y, reg=reg, metric=metric, tol=tol, max_iter=max_iter,
                 return_plan=False)
    cross = float(xp.sum(a * r.f) + xp.sum(b * r.g))
    power = _METRICS[metric]
    sx = _self_value(xp, X, a, float(reg), power, tol, max_iter)
    sy = _self_value(xp, Y, b, float(reg), power, tol, max_iter)
    return cross - 0.5 * sx - 0.5 * sy


def _self_value(xp, Z, w, reg, power, tol, max_iter):
    """OT_eps(mu, mu) = 2 <w, f> for the symmetric potential f, by the averaged
    fixed point f <- (f + T(f)) / 2, which converges in a few iterations where the
    plain alternation is slow for a measure against itself."""
    lw = _log_weights(xp, w)
    f = xp.zeros((Z.shape[0],), dtype=xp.float64)
    err = math.inf
    for _ in range(max_iter):
        t = -lse_points_op(xp, Z, Z, f + reg * lw, reg, power)
        err = float(xp.sum(w * xp.abs(xp.exp((f - t) / reg) - 1.0)))
        f = 0.5 * (f + t)
        if err <= tol:
            break
    if err > tol:
        warnings.warn(f"Symmetric Sinkhorn stopped after {max_iter} iterations with a "
                      f"marginal error of {err:.3g} (tol={tol:g}).", ConvergenceWarning,
                      stacklevel=user_stacklevel())
    return 2.0 * float(xp.sum(w * f))


