"""Array-API reference evaluation of kernel blocks (the oracle for Numba and CuPy)."""

from __future__ import annotations

import math

from ._kernels import (
    GAUSSIAN,
    IMQ,
    MATERN,
    MATERN_HALF,
    MATERN_QUAD_PEAK,
    MATERN_QUAD_STEP,
    MATERN_TINY_T,
    RIESZ,
    SINC,
    matern_half_coefficients,
    matern_quadrature_nodes,
)

# Largest number of scalars in one block of pairwise differences (32 MiB in float64).
MAX_BLOCK_ELEMENTS = 2**22


def kernel_block(xp, Xb, Yb, kernel):
    """Kernel matrix between two small blocks of rows, computed from differences.

    Differences (not ||x||^2 + ||y||^2 - 2 x.y) keep k(x, x) exact and small distances
    accurate; callers bound the block size.
    """
    codes, params, weights = kernel.spec()
    diff = Xb[:, None, :] - Yb[None, :, :]
    sq = xp.sum(diff * diff, axis=-1)
    out = xp.zeros(sq.shape, dtype=sq.dtype)
    for code, (_, nu, a, b), w in zip(codes.tolist(), params.tolist(), weights.tolist(),
                                      strict=True):
        if code == GAUSSIAN:
            value = xp.exp(-a * sq)
        elif code == MATERN_HALF:
            t = a * xp.sqrt(sq)
            coeffs = matern_half_coefficients(int(b)).tolist()
            poly = xp.full(t.shape, coeffs[-1], dtype=t.dtype)
            for c in reversed(coeffs[:-1]):
                poly = poly * t + c
            value = xp.exp(-t) * poly
        elif code == MATERN:
            value = matern_profile(xp, a * xp.sqrt(sq), nu, b)
        elif code == IMQ:
            value = (1.0 + a * sq) ** (-nu)
        elif code == SINC:
            u = a * diff
            safe = xp.where(u == 0, xp.ones_like(u), u)
            value = xp.prod(xp.where(u == 0, xp.ones_like(u), xp.sin(safe) / safe), axis=-1)
        elif code == RIESZ:
            value = -((a * xp.sqrt(sq)) ** nu)
        else:  # pragma: no cover - spec() only emits the codes above
            raise ValueError(f"unknown kernel code {code}")
        out = out + w * value
    return out


def matern_profile(xp, t, nu, log_const):
    """2^(1-nu)/Gamma(nu) t^nu K_nu(t) by the trapezoid rule on
    K_nu(t) = int_0^inf exp(-t cosh s) cosh(nu s) ds (t = 0 gives 1; see the constants
    in ``_kernels``). Every entry has its own step; all run the largest node count."""
    positive = t > 0
    t_safe = xp.where(positive, xp.clip(t, MATERN_TINY_T, None), xp.ones_like(t))
    big = xp.clip(t_safe, nu, None)  # hypot(t, nu) without overflow
    hypot = big * xp.sqrt(1.0 + (xp.clip(t_safe, None, nu) / big) ** 2)
    step = xp.clip(MATERN_QUAD_PEAK / xp.sqrt(hypot), None, MATERN_QUAD_STEP)
    t_lo, t_hi = float(xp.min(t_safe)), float(xp.max(t_safe))
    # The node count peaks at the smallest t or where the step starts to shrink.
    knee = math.sqrt(max(0.0, (MATERN_QUAD_PEAK / MATERN_QUAD_STEP) ** 4 - nu**2))
    n_nodes = max(matern_quadrature_nodes(u, nu) for u in {t_lo, t_hi, min(max(knee, t_lo), t_hi)})
    log_t = xp.log(t_safe)
    log_scale = xp.clip(nu * (math.log(2.0 * nu) - log_t - 1.0), 0.0, None)
    total = xp.zeros(t.shape, dtype=t.dtype)
    for k in range(n_nodes):
        s = k * step
        x = nu * s
        log_cosh = x + xp.log1p(xp.exp(-2.0 * x)) - math.log(2.0)
        term = xp.exp(log_cosh - log_scale - 2.0 * xp.sinh(0.5 * s) ** 2 * t_safe)
        total = total + (0.5 if k == 0 else 1.0) * term
    log_value = log_const + nu * log_t - t_safe + log_scale + xp.log(total * step)
    return xp.where(positive, xp.exp(log_value), xp.ones_like(t))


def block_rows(n_cols: int, n_features: int) -> int:
    """Rows per block so a block of differences stays under ``MAX_BLOCK_ELEMENTS``."""
    return max(1, MAX_BLOCK_ELEMENTS // max(1, n_cols * n_features))


def kernel_matvec_reference(xp, X, Y, V, kernel):
    """K(X, Y) @ V in blocks of rows and columns (memory O(block), never n x m)."""
    n, m = X.shape[0], Y.shape[0]
    col_block = min(m, 4096)
    row_block = block_rows(col_block, X.shape[1])
    rows = []
    for i0 in range(0, n, row_block):
        i1 = min(n, i0 + row_block)
        acc = xp.zeros((i1 - i0, V.shape[1]), dtype=X.dtype)
        for j0 in range(0, m, col_block):
            j1 = min(m, j0 + col_block)  # in-bounds slices (array API strict)
            acc = acc + kernel_block(xp, X[i0:i1, :], Y[j0:j1, :], kernel) @ V[j0:j1, :]
        rows.append(acc)
    return xp.concat(rows, axis=0)


def kernel_matrix_reference(xp, X, Y, kernel):
    """The full kernel matrix K(X, Y), built from bounded blocks."""
    n = X.shape[0]
    row_block = block_rows(Y.shape[0], X.shape[1])
    blocks = [kernel_block(xp, X[i0:min(n, i0 + row_block), :], Y, kernel)
              for i0 in range(0, n, row_block)]
    return xp.concat(blocks, axis=0)
