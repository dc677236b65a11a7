"""AltMin's start: the randomized range finder with subspace iteration.

Oracles: the exact SVD (LAPACK on the densified matrix) for the subspace the range
finder returns; the in-memory start and fit for the Dask ones (same Gaussian matrix,
same steps); the ARPACK start for the held-out error after the same sweeps.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles

import sketchlearn.completion._core as core
from sketchlearn._random import as_generator, random_normal
from sketchlearn.completion import AltMinCompleter, altmin_complete
from sketchlearn.completion._observed import as_observed

da = pytest.importorskip("dask.array")


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _observed_low_rank(rng, m, n, spectrum, density, noise):
    r = len(spectrum)
    A = np.linalg.qr(rng.normal(size=(m, r)))[0]
    B = np.linalg.qr(rng.normal(size=(n, r)))[0]
    M = (A * spectrum) @ B.T
    X = np.where(rng.random((m, n)) < density, M + noise * rng.normal(size=(m, n)), np.nan)
    return M, X


def _dense_scaled(X, scale):
    return np.where(np.isnan(X), 0.0, X) * scale


# --------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize("n_power", [0, 1, core.START_POWER])
def test_subspace_against_exact_svd(rng, n_power):
    """Against the exact SVD (LAPACK on the densified matrix), on a matrix with a clear
    gap after the k-th singular value. Subspace iteration's bound for the range of
    ``Q`` (Halko, Martinsson & Tropp 2011, Thm. 9.1; Saibaba 2019, Thm. 1):
    ``tan theta <= (sigma_{k+1} / sigma_k)^(2q+1) ||G_2 G_1^+||``, ``G_1 = V_k^T G``,
    ``G_2 = V_perp^T G`` for the Gaussian ``G`` actually drawn. It bounds the returned
    (Rayleigh-Ritz) subspaces too, and gives ``s_j >= sigma_j cos theta`` (the
    ``V_k`` and ``V_perp`` parts of ``Q^T A`` have orthogonal row spaces) with
    ``s_j <= sigma_j`` (interlacing)."""
    m, n, k = 400, 300, 4
    _, X = _observed_low_rank(rng, m, n, np.array([200.0, 150.0, 120.0, 100.0]), 0.5, 0.1)
    obs = as_observed(X)
    scale = 1.0 / (obs.nnz / (m * n))
    assert not core.uses_dense_svd(obs.shape, k)  # the range finder runs
    U, s, V = core.range_finder_svd(obs, k, scale, as_generator(0), n_power=n_power)
    Ue, se, Vte = np.linalg.svd(_dense_scaled(X, scale))
    G = random_normal(as_generator(0), (n, k + core.START_OVERSAMPLE), np)
    spread = np.linalg.norm((Vte[k:] @ G) @ np.linalg.pinv(Vte[:k] @ G), 2)
    gap = se[k] / se[k - 1]
    assert gap < 0.5  # the clear gap
    bound = gap ** (2 * n_power + 1) * spread
    if n_power == core.START_POWER:
        assert bound < 0.2
    assert np.max(np.tan(subspace_angles(U, Ue[:, :k]))) <= bound
    assert np.max(np.tan(subspace_angles(V, Vte[:k].T))) <= bound
    assert np.all(s <= se[:k] * (1 + 1e-12))
    assert np.all(s >= se[:k] / np.sqrt(1 + bound**2) * (1 - 1e-12))
    # orthonormal factors
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)


def test_dense_branch_unchanged(rng):
    """Small problems keep the dense SVD, whatever the method."""
    _, X = _observed_low_rank(rng, 60, 40, np.array([5.0, 3.0]), 0.5, 0.0)
    obs = as_observed(X)
    assert core.uses_dense_svd(obs.shape, 2)
    a = core.top_svd(obs, 2, 2.0, as_generator(0), method="randomized")
    b = core.top_svd(obs, 2, 2.0, as_generator(0), method="arpack")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    se = np.linalg.svd(_dense_scaled(X, 2.0), compute_uv=False)
    np.testing.assert_allclose(a[1], se[:2], rtol=1e-12)


# --------------------------------------------------------------------------- Dask = memory


@pytest.mark.parametrize("method", ["randomized", "arpack"])
def test_dask_start_equals_in_memory(synchronous, rng, method):
    """The blocked range finder draws the same Gaussian matrix and runs the same steps
    on the client: the same start to rounding, in 2 q + 2 passes over the blocks
    (ARPACK, kept for SoftImpute's lambda_max, too)."""
    from sketchlearn.completion._dask import _ALS, blocked_entries

    _, X = _observed_low_rank(rng, 500, 300, np.array([30.0, 20.0, 10.0]), 0.2, 0.5)
    X[17] = np.nan  # an empty row and column
    X[:, 5] = np.nan
    obs = as_observed(X)
    k, scale = 3, 1.0 / (obs.nnz / X.size)
    assert not core.uses_dense_svd(obs.shape, k)
    mem = core.top_svd(obs, k, scale, as_generator(4), method=method)
    ent = blocked_entries(da.from_array(X, chunks=(90, 70)), n_blocks=(4, 3))
    als = _ALS(ent, k)
    passes = []
    original = _ALS.product

    def counted(self, *args):
        passes.append(args[0])
        return original(self, *args)

    _ALS.product = counted
    try:
        dist = als.top_svd(k, scale, as_generator(4), method=method)
    finally:
        _ALS.product = original
    if method == "randomized":
        assert passes == [0, 1] * (core.START_POWER + 1)
    else:
        assert not passes
    for a, b in zip(mem, dist, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10 * np.abs(a).max())


@pytest.mark.parametrize("solver", ["exact", "cg", "sketch-cg"])
def test_dask_fit_equals_in_memory_randomized_start(synchronous, rng, solver):
    """AltMin from the randomized start: the Dask iterates are the in-memory ones."""
    _, X = _observed_low_rank(rng, 600, 250, np.array([30.0, 20.0, 10.0, 5.0]), 0.15, 0.1)
    assert not core.uses_dense_svd(X.shape, 4) and core.START_METHOD == "randomized"
    kw = dict(rank=4, tol=1e-12, max_iter=6, solver=solver, random_state=2)
    if solver == "sketch-cg":
        kw["solve_tol"] = 1e-10
    mem = _quiet(altmin_complete, X, **kw)
    dist = _quiet(altmin_complete, da.from_array(X, chunks=(110, 250)), **kw)
    for a, b in zip(mem, (dist[0].compute(), *dist[1:]), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-8 * np.abs(a).max())


# --------------------------------------------------------------------------- quality


# Held-out RMSE after the same sweeps from the randomized start may exceed the ARPACK
# start's by at most this fraction (measured: within 1e-3 on these problems).
_MARGIN = 0.01


@pytest.mark.parametrize("case", ["decaying", "flat"])
def test_heldout_rmse_as_with_exact_start(rng, monkeypatch, case):
    """Few entries per row, a spectrum that decays (as in the Dask benchmark) or not:
    after the same sweeps, held-out RMSE within _MARGIN of the ARPACK start's."""
    m, n, k = 1200, 400, 8
    spectrum = 0.75 ** np.arange(k) if case == "decaying" else np.ones(k)
    spectrum = spectrum * np.sqrt(m * n / np.sum(spectrum**2))  # unit-variance entries
    _, X = _observed_low_rank(rng, m, n, spectrum, 0.06, 0.3)
    rows, cols = np.nonzero(~np.isnan(X))
    held = rng.random(rows.size) < 0.1
    M_test = X[rows[held], cols[held]]
    X_train = X.copy()
    X_train[rows[held], cols[held]] = np.nan
    alpha = 0.1 * np.sum(~held) / np.sqrt(m * n)
    rmse = {}
    for method in ("arpack", "randomized"):
        monkeypatch.setattr(core, "START_METHOD", method)
        est = AltMinCompleter(rank=k, alpha=alpha, max_iter=8, tol=0.0, random_state=0)
        _quiet(est.fit, X_train)
        pred = est.predict_entries(rows[held], cols[held])
        rmse[method] = float(np.sqrt(np.mean((pred - M_test) ** 2)))
    assert rmse["randomized"] <= rmse["arpack"] * (1 + _MARGIN)
