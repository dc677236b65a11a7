"""Directions on the unit sphere for sliced distances.

Every generator draws on the host with NumPy (so a seed gives the same slices on the
CPU and the GPU) and returns ``(directions, groups)``: ``directions`` has shape
``(n_projections, d)`` with unit rows, ``groups`` labels the independent
replicates used for the standard error (``None`` when there are none, for the
deterministic QMC points).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, qmc

__all__ = ["SLICES", "make_directions"]

SLICES = ("mc", "orthogonal", "qmc", "rqmc", "cv-lower", "cv-upper")

# Number of independent scramblings of the RQMC point set (its standard error is the
# spread of their means).
RQMC_REPLICATES = 8


def _normalise(Z):
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return Z / norms


def _gaussian_directions(rng, L, d):
    Z = rng.standard_normal((L, d))
    while True:  # a zero row has probability 0, but never divide by it
        zero = np.linalg.norm(Z, axis=1) == 0
        if not zero.any():
            return _normalise(Z)
        Z[zero] = rng.standard_normal((int(zero.sum()), d))


def _orthogonal_blocks(rng, L, d):
    """ceil(L / d) independent Haar-random orthonormal bases, rows stacked, first L kept."""
    blocks = [_haar_rotation(rng, d).T for _ in range(math.ceil(L / d))]
    return np.concatenate(blocks, axis=0)[:L], np.arange(L) // d


def _sobol_sphere(rng, L, d):
    """Scrambled Sobol' points mapped through the normal inverse CDF, normalised."""
    m = max(0, math.ceil(math.log2(max(L, 1))))
    U = qmc.Sobol(d, scramble=True, seed=rng).random_base2(m)[:L]
    U = np.clip(U, 1e-12, 1 - 1e-12)
    return _normalise(norm.ppf(U))


def _sobol_deterministic(L, d):
    """Unscrambled Sobol' points 2, ..., L + 1 through the normal inverse CDF, normalised.

    Points 0 (the origin) and 1 (all coordinates 1/2, the zero vector after the
    inverse CDF) are skipped. (Unscrambled Halton points are not used: in high
    dimension their first points are strongly correlated across coordinates and bias
    the estimate.)
    """
    m = math.ceil(math.log2(L + 2))
    U = qmc.Sobol(d, scramble=False).random_base2(m)[2: L + 2]
    return _normalise(norm.ppf(U))


def spiral_points(L):
    """The generalized spiral on the sphere S^2 (Rakhmanov, Saff & Zhou 1994).

    Heights ``z_i = 1 - (2i - 1) / L`` cut the sphere into ``L`` bands of equal area
    (Archimedes), and the longitudes advance by ``3.6 / sqrt(L) / sqrt(1 - z_i^2)``,
    a step of about ``3.6 / sqrt(L)`` along the spiral, so neighbouring turns are as
    far apart as neighbouring points: an equal-area, low-discrepancy point set (the
    spiral QMC points of Nguyen, Bariletto & Ho).
    """
    i = np.arange(1, L + 1)
    z = 1.0 - (2.0 * i - 1.0) / L
    r = np.sqrt(np.clip(1.0 - z**2, 0.0, None))
    step = np.zeros(L)
    if L > 1:
        step[1:] = 3.6 / math.sqrt(L) / np.maximum(r[1:], 1e-300)
    phi = np.mod(np.cumsum(step), 2.0 * math.pi)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _haar_rotation(rng, d):
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)[None, :]


def make_directions(d: int, n_projections: int, slices: str, rng):
    """Unit directions of shape ``(n_projections, d)`` and their replicate labels.

    ``"mc"``, ``"cv-lower"``, ``"cv-upper"``: i.i.d. uniform on the sphere (normalised
    Gaussians); each direction is its own replicate. ``"orthogonal"``: blocks of ``d``
    orthonormal directions from independent Haar rotations; a block is a replicate.
    ``"qmc"``: deterministic Sobol' points through the normal inverse CDF; no
    replicates. ``"rqmc"``: ``min(8, n_projections)`` independently scrambled Sobol'
    point sets of about ``n_projections / 8`` points each; a set is a replicate.
    For ``d = 3`` both use the generalized spiral instead (``"rqmc"``: independent
    Haar-random rotations of spirals of about ``n_projections / 8`` points).
    """
    L = n_projections
    if d == 1:
        return np.ones((L, 1)), (np.arange(L) if slices != "qmc" else None)
    if slices in ("mc", "cv-lower", "cv-upper"):
        return _gaussian_directions(rng, L, d), np.arange(L)
    if slices == "orthogonal":
        return _orthogonal_blocks(rng, L, d)
    if slices == "qmc":
        return (spiral_points(L) if d == 3 else _sobol_deterministic(L, d)), None
    # rqmc
    R = min(RQMC_REPLICATES, L)
    sizes = [L // R + (1 if r < L % R else 0) for r in range(R)]
    if d == 3:
        dirs = np.concatenate([spiral_points(s) @ _haar_rotation(rng, 3).T for s in sizes],
                              axis=0)
    else:
        dirs = np.concatenate([_sobol_sphere(rng, s, d) for s in sizes], axis=0)
    groups = np.repeat(np.arange(R), sizes)
    return dirs, groups


def sample_vmf(rng, mu, kappa, size):
    """Draws from the von Mises-Fisher distribution on the sphere S^{d-1}.

    Wood's (1994) rejection sampler for the component along ``mu`` and a uniform
    direction orthogonal to it. ``kappa = 0`` is the uniform distribution.
    """
    mu = np.asarray(mu, dtype=np.float64)
    d = mu.shape[0]
    if kappa == 0:
        return _gaussian_directions(rng, size, d)
    b = (-2 * kappa + math.sqrt(4 * kappa**2 + (d - 1) ** 2)) / (d - 1)
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + (d - 1) * math.log(1 - x0**2)
    w = np.empty(size)
    filled = 0
    while filled < size:
        k = size - filled
        z = rng.beta((d - 1) / 2, (d - 1) / 2, size=k)
        u = rng.random(k)
        cand = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        ok = kappa * cand + (d - 1) * np.log(1 - x0 * cand) - c >= np.log(u)
        take = cand[ok][: size - filled]
        w[filled: filled + take.shape[0]] = take
        filled += take.shape[0]
    v = rng.standard_normal((size, d))
    v -= (v @ mu)[:, None] * mu[None, :]
    v = _normalise(v)
    return w[:, None] * mu[None, :] + np.sqrt(np.maximum(1 - w**2, 0))[:, None] * v
