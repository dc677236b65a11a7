"""Sinkhorn-Newton-Sparse (Tang et al. 2024): Newton steps on the entropic dual with a
sparsified Hessian, the finish of :func:`sinkhorn` at small ``reg``."""

from __future__ import annotations

import math

import numpy as np

from .._array_api import move_to
from ._sinkhorn_ops import pairwise_cost

__all__ = ["sns_newton"]


def sns_newton(xp, kind, A, B, a, b, f, g, reg, power, tol, max_steps, keep):
    """Newton steps on the dual with a sparsified Hessian (Sinkhorn-Newton-Sparse).

    Dual: D(f, g) = <a, f> + <b, g> - reg sum_ij P_ij(f, g), gradient (a - P 1, b - P^T 1),
    negative Hessian (1/reg) [[diag(P 1), P], [P^T, diag(P^T 1)]]. The off-diagonal P
    is replaced by its ``keep (n + m)`` largest entries (the diagonals stay exact, so
    the matrix stays symmetric diagonally dominant, positive definite); the Newton
    system is solved by CG and the step by Armijo backtracking on D. Returns
    (f, g, L1 marginal error over rows and columns, steps).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import LinearOperator, cg

    if kind == "matrix":
        C = move_to(A, np).astype(np.float64)
    else:
        n, m = A.shape[0], B.shape[0]
        if n * m > 2**26:
            raise ValueError(f"method='sns' needs the dense cost matrix ({n} x {m}); use "
                             "method='log' for point clouds this large.")
        C = pairwise_cost(np, move_to(A, np), move_to(B, np), power)
    ah, bh = move_to(a, np), move_to(b, np)
    fh, gh = move_to(f, np).astype(np.float64), move_to(g, np).astype(np.float64)
    with np.errstate(divide="ignore"):
        la, lb = np.log(ah), np.log(bh)
    n, m = C.shape

    def plan(fv, gv):  # a rejected trial step may overflow: inf, and D says no
        with np.errstate(over="ignore"):
            return np.exp((fv[:, None] + gv[None, :] - C) / reg + la[:, None] + lb[None, :])

    P = plan(fh, gh)
    value = ah @ fh + bh @ gh - reg * P.sum()
    k = min(n * m, keep * (n + m))
    steps = 0
    err = math.inf
    while True:
        r, c = P.sum(1), P.sum(0)
        err = float(np.abs(r - ah).sum() + np.abs(c - bh).sum())
        if err <= tol or steps >= max_steps:
            break
        flat = P.ravel()
        thr = np.partition(flat, n * m - k)[n * m - k]
        rows, cols = np.nonzero(P >= thr)
        S = csr_matrix((P[rows, cols], (rows, cols)), shape=(n, m))
        ST = S.T.tocsr()
        ridge = 1e-12 * max(float(r.max()), float(c.max()))

        def hv(v, S=S, ST=ST, r=r, c=c, ridge=ridge):
            v1, v2 = v[:n], v[n:]
            return np.concatenate([(r + ridge) * v1 + S @ v2, ST @ v1 + (c + ridge) * v2]) / reg

        grad = np.concatenate([ah - r, bh - c])
        H = LinearOperator((n + m, n + m), matvec=hv, dtype=np.float64)
        step, _ = cg(H, grad, rtol=1e-6, maxiter=200)
        slope = float(grad @ step)
        if not slope > 0:  # not an ascent direction (CG broke down): take the gradient
            step, slope = grad * reg, float(grad @ grad) * reg
        alpha = 1.0
        # Near the optimum the predicted gain falls below the rounding of D itself, which
        # then cannot rank the trial points (Armijo accepted no-op steps until max_iter):
        # there the marginal error, which a Newton step reduces, is the merit instead.
        noise = 1e-13 * (abs(value) + reg * float(P.sum()))
        for _ in range(40):
            fn, gn = fh + alpha * step[:n], gh + alpha * step[n:]
            Pn = plan(fn, gn)
            vn = ah @ fn + bh @ gn - reg * Pn.sum()
            if alpha * slope > noise:
                if vn >= value + 1e-4 * alpha * slope:
                    break
            elif (np.abs(Pn.sum(1) - ah).sum() + np.abs(Pn.sum(0) - bh).sum()) < err:
                break
            alpha *= 0.5
        else:
            break  # no progress possible at this precision
        fh, gh, P, value = fn, gn, Pn, vn
        steps += 1
    return (xp.asarray(move_to(fh, xp)), xp.asarray(move_to(gh, xp)), err, steps)
