"""Unbalanced entropic transport: Sinkhorn with KL-relaxed marginals, log domain.

Solves (Chizat et al. 2018, the problem of POT's ``ot.sinkhorn_unbalanced`` with
``reg_type="kl"``)

    min_{P >= 0} <P, C> + reg KL(P | a b^T) + reg_m_a KL(P 1 | a) + reg_m_b KL(P^T 1 | b)

with the generalised KL divergence ``KL(p | q) = sum p log(p / q) - p + q``. With the
plan ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / reg)``, the alternating exact dual
updates are the balanced ones damped by ``tau = reg_m / (reg_m + reg)``:

    f_i = -tau_a reg log sum_j b_j exp((g_j - C_ij) / reg)

and the same for ``g``, each iteration followed by the optimal constant translation
``(f + lam, g - lam)`` of the dual (translation-invariant Sinkhorn, Sejourne et al.
2022), which removes the slow exchange of mass between the potentials. The log-sum-exp
reductions are those of the balanced solver
(:mod:`._sinkhorn_ops`), so cost matrices and on-the-fly point clouds are both
covered. This module holds the helpers :func:`sinkhorn` calls when ``reg_m`` is given.
"""

from __future__ import annotations

import math
import numbers

import array_api_compat
import numpy as np

from .._array_api import move_to
from .._validation import check_array, check_weights

__all__ = ["parse_reg_m", "check_mass", "unbalanced_loop", "unbalanced_objective",
           "translation"]


def parse_reg_m(reg_m):
    """``(reg_m_a, reg_m_b)`` as floats, or None when both are infinite (balanced).

    Raises a ValueError naming ``reg_m`` for negative, zero, NaN or badly shaped values.
    """
    if reg_m is None:
        return None
    if isinstance(reg_m, numbers.Real) and not isinstance(reg_m, bool):
        pair = (reg_m, reg_m)
    else:
        try:
            pair = tuple(reg_m)
        except TypeError:
            raise TypeError(f"reg_m must be a positive number or a pair of them; got "
                            f"{reg_m!r}.") from None
        if len(pair) == 1:
            pair = (pair[0], pair[0])
        if len(pair) != 2:
            raise ValueError(f"reg_m must be a scalar or a pair (reg_m_a, reg_m_b); got "
                             f"{len(pair)} values.")
    out = []
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"reg_m must be a positive number or a pair of them; got "
                            f"{reg_m!r}.")
        v = float(v)
        if math.isnan(v) or v <= 0:
            raise ValueError(f"reg_m must be positive (inf for a hard marginal); got "
                             f"{reg_m!r}. reg_m weighs the KL penalty on the marginals.")
        out.append(v)
    if math.isinf(out[0]) and math.isinf(out[1]):
        return None
    return out[0], out[1]


def check_mass(w, n, name, xp):
    """A non-negative measure of length ``n`` (any positive total mass), float64."""
    if not array_api_compat.is_array_api_obj(w):
        w = move_to(np.asarray(w), xp)
    w = check_array(w, name, ensure_2d=False)
    # Length, sign, finiteness and a positive total: the checks of a probability vector
    # except the unit sum, which unbalanced transport does not need.
    check_weights(w, n, name, xp=xp, dtype=xp.float64, normalize=True)
    return xp.astype(w, xp.float64)


def _tau(reg_m, eps):
    return 1.0 if math.isinf(reg_m) else reg_m / (reg_m + eps)


def unbalanced_loop(xp, row_lse, col_lse, la, lb, f, g, stages, reg_m, tol, max_iter,
                    stage_tol, stage_max_iter):
    """Damped log-domain Sinkhorn over the epsilon stages.

    ``row_lse(h, eps)`` returns ``eps log sum_j exp((h_j - C_ij) / eps)`` per row and
    ``col_lse`` the same per column. The error is the sup-norm change of both
    potentials over one iteration, in units of ``eps``: ``max(|f - f'|_inf,
    |g - g'|_inf) / eps``, the largest change of ``log P_ij`` caused by either update.
    Returns ``(f, g, n_iter, err)``.
    """
    ra, rb = reg_m
    n_iter = 0
    err = math.inf
    for k, eps in enumerate(stages):
        last = k == len(stages) - 1
        s_tol = tol if last else max(tol, stage_tol)
        ta, tb = _tau(ra, eps), _tau(rb, eps)
        stage_iter = 0
        while n_iter < max_iter and (last or stage_iter < stage_max_iter):
            g_new = -tb * col_lse(f + eps * la, eps)
            f_new = -ta * row_lse(g_new + eps * lb, eps)
            n_iter += 1
            stage_iter += 1
            err = max(float(xp.max(xp.abs(f_new - f))),
                      float(xp.max(xp.abs(g_new - g)))) / eps
            shift = translation(xp, la, lb, f_new, g_new, ra, rb)
            f, g = f_new + shift, g_new - shift
            if not math.isfinite(err):
                raise FloatingPointError(
                    "Unbalanced Sinkhorn produced non-finite potentials; check that a "
                    "and b have positive mass where the cost is finite.")
            if err <= s_tol:
                break
        if n_iter >= max_iter:
            if not last:  # out of iterations before reg itself was reached
                err = math.inf
            break
    return f, g, n_iter, err


def _log_mass(xp, lw, h, rho):
    """``log sum_i w_i exp(-h_i / rho)`` from ``lw = log w`` (``log sum w`` for a hard
    marginal)."""
    x = lw if math.isinf(rho) else lw - h / rho
    top = float(xp.max(x))
    return top + math.log(float(xp.sum(xp.exp(x - top))))


def translation(xp, la, lb, f, g, ra, rb):
    """The constant ``lam`` for which ``(f + lam, g - lam)`` maximises the unbalanced
    dual (Sejourne, Vialard, Peyre 2022, translation-invariant Sinkhorn).

    The dual ``-ra <a, e^(-f/ra) - 1> - rb <b, e^(-g/rb) - 1> - eps <ab, e^((f+g-C)/eps)
    - 1>`` keeps its last term under the translation; the first two are maximised at
    ``lam = ra rb / (ra + rb) log(<a, e^(-f/ra)> / <b, e^(-g/rb)>)`` (``ra`` or ``rb``
    infinite: the other one times the log). It removes the slow mode of unbalanced
    Sinkhorn, the exchange of mass between the two potentials.
    """
    coef = rb if math.isinf(ra) else ra if math.isinf(rb) else ra * rb / (ra + rb)
    return coef * (_log_mass(xp, la, f, ra) - _log_mass(xp, lb, g, rb))


def _kl(xp, p, q):
    """Generalised KL divergence sum p log(p / q) - p + q (0 log 0 = 0)."""
    safe = xp.where(p > 0, p, 1.0)
    return float(xp.sum(xp.where(p > 0, p * xp.log(safe / xp.where(q > 0, q, 1.0)), 0.0)
                        - p + q))


def unbalanced_objective(xp, a, b, f, g, row_sum, col_sum, cost, reg, reg_m):
    """``<P, C> + reg KL(P | a b^T) + reg_m_a KL(P 1 | a) + reg_m_b KL(P^T 1 | b)``
    from the plan's marginals: ``sum P log(P / a b^T) = (<f, P 1> + <g, P^T 1> -
    <P, C>) / reg``, so the plan itself is not needed."""
    mass = float(xp.sum(row_sum))
    kl_plan = (float(xp.sum(f * row_sum) + xp.sum(g * col_sum)) - cost) / reg \
        - mass + float(xp.sum(a)) * float(xp.sum(b))
    total = cost + reg * kl_plan
    ra, rb = reg_m
    if not math.isinf(ra):
        total += ra * _kl(xp, row_sum, a)
    if not math.isinf(rb):
        total += rb * _kl(xp, col_sum, b)
    return total
