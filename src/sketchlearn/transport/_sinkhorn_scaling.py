"""Sinkhorn in the scaling domain: two matrix-vector products per iteration.

The plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps) s_i t_j``: the potentials
``f``, ``g`` are absorbed into the Gibbs kernel ``K_ij = exp((f_i + g_j - C_ij) / eps)``
(built once per stage, and again whenever the scalings drift far from 1), and the
iterations update only the scalings ``s = exp(ls)``, ``t = exp(lt)``:

    lt <- -tau_b log(K^T (a s)) - (1 - tau_b) g / eps
    ls <- -tau_a log(K (b t))   - (1 - tau_a) f / eps

(``tau = 1`` for a hard marginal, ``reg_m / (reg_m + eps)`` for a KL-relaxed one).
Each iteration is two BLAS matrix-vector products and O(n + m) elementwise work,
against ``n m`` exponentials per iteration in the log domain (Schmitzer 2019,
"Stabilized sparse scaling algorithms for entropy regularized transport problems",
absorption; POT's ``sinkhorn_stabilized`` follows the same idea).

Over-relaxation (Thibault, Chizat, Dossal, Papadakis 2021, "Overrelaxed Sinkhorn-Knopp
algorithm for regularized optimal transport"; Lehmann, von Renesse, Sambale, Uschmajew
2021, "A note on overrelaxation in the Sinkhorn algorithm"): ``x <- (1 - w) x + w
x_plain`` in the log of the scalings. The fixed point is the same; with the observed
linear rate ``lam`` of the plain iteration, ``w = 2 / (1 + sqrt(1 - lam))`` is the
asymptotically optimal choice, as for SOR. The rate is read from the error history once
it has settled; when the error stops falling, ``w`` goes back to 1.

When a kernel row or column underflows to zero (or a scaling leaves the float range)
the loop stops and says so; :func:`sinkhorn` then continues in the log domain with a
warning. When the balanced problem is so ill-conditioned that the projected number of
iterations exceeds ``newton_after``, it also stops early and :func:`sinkhorn` finishes
with Newton steps (Sinkhorn-Newton-Sparse).
"""

from __future__ import annotations

import math

import numpy as np

from .._array_api import Dispatch, move_to
from ._unbalanced import translation

__all__ = ["scaling_loop", "scaling_stages", "gibbs_op", "plan_from_kernel_op"]

# Largest cost range over eps for one stage: exp(-200) ~ 1e-87 stays far from underflow
# even after the scalings multiply it.
_STAGE_RANGE = 200.0
# Ratio between consecutive epsilon stages: the kernel entries of a stage are at most
# (1 / min b)^(eps_prev / eps) after absorbing the previous stage's potentials.
_STAGE_FACTOR = 0.25
# Absorb the scalings into the potentials (and rebuild the kernel) beyond e^50.
_ABSORB = 50.0
_RELAX_MAX = 1.9
_CHECK_EVERY = 10


def scaling_stages(span, reg, eps_scaling):
    """Epsilon stages for the scaling domain: none above ``reg`` unless the cost range
    ``span`` exceeds ``_STAGE_RANGE`` times ``reg`` (plain Sinkhorn needs no annealing to
    converge; only the kernel's range does), then down by ``_STAGE_FACTOR``."""
    if not eps_scaling or span <= _STAGE_RANGE * reg:
        return [reg]
    stages = []
    eps = span / _STAGE_RANGE
    while eps > reg / _STAGE_FACTOR:
        stages.append(eps)
        eps *= _STAGE_FACTOR
    return stages + [reg]


def _tau(reg_m, eps):
    return 1.0 if reg_m is None or math.isinf(reg_m) else reg_m / (reg_m + eps)


def _gibbs_reference(xp, C, f, g, eps):
    """``exp((f_i + g_j - C_ij) / eps)``: the absorbed Gibbs kernel (float64)."""
    return xp.exp((f[:, None] + g[None, :] - C) / eps)


def _gibbs_examples(xp, rng):
    """A cost of range 50 at a loose and a sharp ``eps`` (entries down to exp(-500)),
    and absorbed potentials past exp(700), which every backend reports as inf (the
    Numba kernel from exp(700) on, so no example falls between 700 and the overflow of
    exp at 709.8)."""
    out = []
    for n, m, eps in ((40, 30, 10.0), (40, 30, 0.1), (25, 35, 1.0)):
        C = rng.random((n, m)) * 50.0
        f, g = rng.normal(size=n), rng.normal(size=m)
        out.append(((move_to(C, xp), move_to(f, xp), move_to(g, xp), eps), {}))
    f, g = np.array([800.0, 0.0]), np.array([0.0, -800.0, 3.0])
    out.append(((move_to(np.zeros((2, 3)), xp), move_to(f, xp), move_to(g, xp), 1.0), {}))
    return out


gibbs_op = Dispatch(_gibbs_reference,
                    numba="sketchlearn.transport._numba_sinkhorn:gibbs_kernel",
                    cupy="sketchlearn.transport._cupy_sinkhorn:gibbs",
                    examples=_gibbs_examples)


def _plan_from_kernel_reference(xp, K, u, v, C):
    """Overwrite ``K`` with the plan ``diag(u) K diag(v)``; return it, ``<P, C>`` and
    its row sums ``P 1``."""
    K *= u[:, None]
    K *= v[None, :]
    return K, float(xp.sum(K * C)), xp.sum(K, axis=1)


def _plan_from_kernel_examples(xp, rng):
    """The last Gibbs kernel of a solve with its scalings ``a exp(ls)``, ``b exp(lt)``
    and the cost, square and not."""
    out = []
    for n, m in ((30, 20), (25, 25)):
        C = rng.random((n, m)) * 5.0
        K = np.exp((rng.normal(size=(n, 1)) + rng.normal(size=(1, m)) - C) / 0.5)
        u = np.exp(rng.normal(size=n)) / n
        v = np.exp(rng.normal(size=m)) / m
        out.append((tuple(move_to(a, xp) for a in (K, u, v, C)), {}))
    return out


plan_from_kernel_op = Dispatch(
    _plan_from_kernel_reference,
    numba="sketchlearn.transport._numba_sinkhorn:plan_from_kernel",
    cupy="sketchlearn.transport._cupy_sinkhorn:plan_from_kernel",
    examples=_plan_from_kernel_examples)


def scaling_loop(xp, C, a, b, f, g, stages, tol, max_iter, stage_tol, stage_max_iter,
                 reg_m=None, newton_after=None):
    """Scaling-domain Sinkhorn over the epsilon stages on the dense cost ``C`` (float64).

    Balanced (``reg_m=None``): the error is the L1 marginal violation (rows plus
    columns) of the plan returned. Unbalanced (``reg_m=(ra, rb)``): the largest change
    a plain update would make to the potentials, in units of eps (the log-domain
    solver's criterion).

    Returns ``(f, g, n_iter, err, stop, stage, plan)``. ``stop`` is ``"done"``
    (converged or out of iterations; ``plan`` is then ``(P, <P, C>, P 1)`` for the
    dense plan ``P`` of ``f``, ``g``, built from the kernel in place, or None with
    ``err = inf`` when the iterations ran out before the last stage), ``"range"`` (a
    kernel row or column underflowed or a scaling overflowed; ``f``, ``g`` are the
    last finite potentials and ``stage`` the index of the stage to resume in the log
    domain) or ``"slow"`` (the projected iterations of the last stage exceed
    ``newton_after``); ``plan`` is None for both.
    """
    ra, rb = (None, None) if reg_m is None else reg_m
    balanced = reg_m is None
    if not balanced:  # log weights of the translation step, once
        with np.errstate(divide="ignore"):
            la, lb = xp.log(a), xp.log(b)
    n_iter = 0
    err = math.inf
    for k, eps in enumerate(stages):
        last = k == len(stages) - 1
        s_tol = tol if last else max(tol, stage_tol)
        ta, tb = _tau(ra, eps), _tau(rb, eps)
        K = gibbs_op(xp, C, f, g, eps)
        ls = xp.zeros_like(f)
        lt = xp.zeros_like(g)
        w = 1.0
        errs = []  # since w was last reset (the relaxation's rate estimates)
        checkpoints = []  # every _CHECK_EVERY iterations of the stage (Newton switch)
        stage_iter = 0
        while n_iter < max_iter and (last or stage_iter < stage_max_iter):
            KtA = xp.matmul(a * xp.exp(ls), K)
            if not float(xp.min(KtA)) > 0.0:
                return f + eps * ls, g + eps * lt, n_iter, err, "range", k, None
            ltp = -tb * xp.log(KtA) - (1.0 - tb) * g / eps
            lt_new = ltp if w == 1.0 else (1.0 - w) * lt + w * ltp
            Kb = xp.matmul(K, b * xp.exp(lt_new))
            if not float(xp.min(Kb)) > 0.0:
                return f + eps * ls, g + eps * lt, n_iter, err, "range", k, None
            lsp = -ta * xp.log(Kb) - (1.0 - ta) * f / eps
            if balanced:
                # Plan (ls, lt_new): its column sums are b exp(lt_new - ltp), its row
                # sums a exp(ls) K (b t); both come free with the updates.
                err = float(xp.sum(b * xp.abs(xp.exp(lt_new - ltp) - 1.0))
                            + xp.sum(a * xp.abs(xp.exp(ls - lsp) - 1.0)))
            else:
                err = max(float(xp.max(xp.abs(ltp - lt))), float(xp.max(xp.abs(lsp - ls))))
            lt = lt_new
            n_iter += 1
            stage_iter += 1
            if not math.isfinite(err):
                return f + eps * ls, g + eps * lt, n_iter, err, "range", k, None
            if err <= s_tol:
                if not balanced:
                    ls = lsp if w == 1.0 else (1.0 - w) * ls + w * lsp
                break
            ls = lsp if w == 1.0 else (1.0 - w) * ls + w * lsp
            if not balanced:
                shift = translation(xp, la, lb, f + eps * ls, g + eps * lt, ra, rb) / eps
                ls, lt = ls + shift, lt - shift
            errs.append(err)
            w = _relaxation(errs, w)
            if stage_iter % _CHECK_EVERY == 0:
                checkpoints.append(err)
                if last and balanced and newton_after is not None \
                        and _projected(checkpoints, s_tol) > newton_after:
                    return f + eps * ls, g + eps * lt, n_iter, err, "slow", k, None
                if max(float(xp.max(xp.abs(ls))), float(xp.max(xp.abs(lt)))) > _ABSORB:
                    f, g = f + eps * ls, g + eps * lt
                    ls, lt = xp.zeros_like(f), xp.zeros_like(g)
                    K = gibbs_op(xp, C, f, g, eps)
        f, g = f + eps * ls, g + eps * lt
        if last:
            break
        if n_iter >= max_iter:  # out of iterations before reg itself was reached
            return f, g, n_iter, math.inf, "done", k, None
    # P = diag(a s) K diag(b t), the plan of the absorbed (f, g), overwriting the kernel.
    plan = plan_from_kernel_op(xp, K, a * xp.exp(ls), b * xp.exp(lt), C)
    return f, g, n_iter, err, "done", len(stages) - 1, plan


def _rate(errs, span):
    """Geometric mean contraction of the error over the last ``span`` iterations."""
    if len(errs) <= span or not errs[-1 - span] > 0:
        return math.inf
    return (errs[-1] / errs[-1 - span]) ** (1.0 / span)


def _relaxation(errs, w):
    """Over-relaxation factor for the next iteration.

    With ``w = 1``: once the plain rate has settled (two consecutive 3-iteration rates
    within 5 %, after 10 iterations), the SOR-optimal ``2 / (1 + sqrt(1 - lam))``.
    With ``w > 1``: back to 1 when the error over the last 10 iterations did not fall.
    """
    k = len(errs)
    if w == 1.0:
        if k < 10:
            return 1.0
        r1 = _rate(errs, 3)
        r0 = (errs[-4] / errs[-7]) ** (1.0 / 3.0) if errs[-7] > 0 else math.inf
        if r1 < 1.0 and abs(r1 - r0) <= 0.05 * r1:
            return min(_RELAX_MAX, 2.0 / (1.0 + math.sqrt(1.0 - r1)))
        return 1.0
    if k % _CHECK_EVERY == 0 and not _rate(errs, _CHECK_EVERY) < 1.0:
        errs.clear()  # estimate the plain rate afresh
        return 1.0
    return w


def _projected(checkpoints, tol):
    """Iterations still needed at the rate of the last 20 (errors every
    ``_CHECK_EVERY`` iterations; relaxed or not), from the current error."""
    if len(checkpoints) < 3:
        return 0.0  # too early to tell
    if checkpoints[-1] <= tol:
        return 0.0
    span = 2 * _CHECK_EVERY
    rho = (checkpoints[-1] / checkpoints[-3]) ** (1.0 / span) if checkpoints[-3] > 0 \
        else math.inf
    if not rho < 1.0:
        return math.inf
    return math.log(tol / checkpoints[-1]) / math.log(rho)
