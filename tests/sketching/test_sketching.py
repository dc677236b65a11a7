"""Sketch operators: unbiasedness, subspace embedding, adjoints, backends, bad input."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

from sketchlearn.sketching import (
    KINDS,
    SketchTransformer,
    leverage_scores,
    make_sketch,
    sketch,
)
from sketchlearn.sketching._core import fwht, fwht_reference, scatter_add_rows

from ..conftest import as_xp, to_np


def _data(rng, n=96, d=5):
    return rng.normal(size=(n, d)) * np.linspace(0.2, 3.0, d)  # uneven columns


@pytest.mark.parametrize("kind", KINDS)
def test_matches_explicit_matrix_and_adjoint(kind, rng):
    """S @ X, X @ S^T, S^T @ Y and sparse input all agree with the dense matrix S."""
    X = _data(rng)
    S = make_sketch(kind, 40, X.shape[0], data=X, random_state=3)
    A = S.toarray()
    assert A.shape == (40, 96)
    np.testing.assert_allclose(S @ X, A @ X, atol=1e-12)
    Z = rng.normal(size=(40, 3))
    np.testing.assert_allclose(S.T @ Z, A.T @ Z, atol=1e-12)
    # adjoint identity <S x, z> = <x, S^T z>
    x, z = rng.normal(size=96), rng.normal(size=40)
    assert math.isclose(float((S @ x) @ z), float(x @ (S.T @ z)), rel_tol=1e-10)
    np.testing.assert_allclose(S.apply(X.T, axis=1), X.T @ A.T, atol=1e-12)
    if kind not in ("srht", "srdct"):
        out = S @ sp.csr_matrix(X)
        out = out.toarray() if sp.issparse(out) else out
        np.testing.assert_allclose(out, A @ X, atol=1e-12)
    else:
        with pytest.raises(TypeError, match="dense"):
            S @ sp.csr_matrix(X)


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_follows_input_and_no_mutation(kind, rng):
    X = _data(rng).astype(np.float32)
    before = X.copy()
    out = sketch(X, kind, 32, random_state=0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(X, before)
    out64 = sketch(X.astype(np.float64), kind, 32, random_state=0)
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-4)


def _within_standard_errors(draws, target, z=5.0):
    """Every entry of the mean of ``draws`` (first axis) lies within ``z`` standard
    errors (sample standard deviation / sqrt(R)) of ``target``; entries that are the
    same in every draw (zero standard error) must match to rounding. Returns the
    largest deviation in standard errors, for the message."""
    R = draws.shape[0]
    mean = draws.mean(axis=0)
    se = draws.std(axis=0, ddof=1) / math.sqrt(R)
    err = np.abs(mean - target)
    ok = err <= z * se + 1e-12
    return bool(np.all(ok)), float(np.max(err / np.where(se > 0, se, np.inf)))


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal", "srht", "srdct", "countsketch",
                                  "uniform", "leverage"])
def test_unbiased_gram_monte_carlo(kind, rng):
    """E[S^T S] = I: the mean of S^T S over 400 seeded draws equals the identity within
    5 standard errors, entry by entry (576 entries: a false alarm has probability
    below 1e-3; the largest deviation measured is 4.1 standard errors, uniform
    sampling). A CountSketch without signs has off-diagonal mean 1/m = 0.125, over 5
    standard errors (about 0.02) away."""
    n, m, reps = 24, 8, 400
    data = rng.normal(size=(n, 3)) * np.array([1.0, 5.0, 0.1])
    draws = np.empty((reps, n, n))
    for seed in range(reps):
        A = make_sketch(kind, m, n, data=data, random_state=seed).toarray()
        draws[seed] = A.T @ A
    ok, worst = _within_standard_errors(draws, np.eye(n))
    assert ok, (kind, worst)


def test_uniform_with_replacement_unbiased(rng):
    n, m, reps = 20, 6, 600
    draws = np.empty((reps, n, n))
    for seed in range(reps):
        A = make_sketch("uniform", m, n, replace=True, random_state=seed).toarray()
        draws[seed] = A.T @ A
    ok, worst = _within_standard_errors(draws, np.eye(n))
    assert ok, worst
    # without replacement the diagonal is exactly n/m on sampled rows: trace exactly n
    A = make_sketch("uniform", m, n, random_state=0).toarray()
    assert math.isclose(np.trace(A.T @ A), n)


@pytest.mark.parametrize("kind", ["gaussian", "orthogonal", "srht", "srdct", "countsketch",
                                  "leverage", "approx_leverage"])
def test_subspace_embedding_distortion(kind):
    """Singular values of S U (U an orthonormal basis of a random d-dim subspace of R^n)
    lie in [1 - eps, 1 + eps] for m = c d / eps^2 rows.

    Theory: Gaussian/orthogonal, eps ~ sqrt(d/m) + small (Marchenko-Pastur edges
    1 +- sqrt(d/m)); SRHT/SRDCT need m ~ d log d / eps^2; CountSketch m ~ d^2 / eps^2;
    leverage sampling m ~ d log d / eps^2. We use d = 4, m = 400 (sqrt(d/m) = 0.1) and
    accept eps = 0.35 for the dense kinds and 0.5 for CountSketch and approximate
    leverage sampling (m/d^2 = 25), for each of 3 seeds (a coherent subspace for the
    sampling kinds)."""
    n, d, m = 1024, 4, 400
    rng = np.random.default_rng(7)
    for s in range(3):
        U = np.linalg.qr(rng.normal(size=(n, d)))[0]
        if kind in ("leverage", "approx_leverage"):  # coherent subspace: spiky rows
            W = rng.normal(size=(n, d))
            W[:d] *= 200
            U = np.linalg.qr(W)[0]
        sv = np.linalg.svd(make_sketch(kind, m, n, data=U, random_state=s) @ U,
                           compute_uv=False)
        eps = 0.5 if kind in ("countsketch", "approx_leverage") else 0.35
        assert sv.max() < 1 + eps and sv.min() > 1 - eps, (kind, s, sv)


def test_orthogonal_full_size_is_isometry(rng):
    X = _data(rng)
    S = make_sketch("orthogonal", 96, 96, random_state=0)
    np.testing.assert_allclose((S @ X).T @ (S @ X), X.T @ X, atol=1e-10)


def test_fwht_matches_hadamard(rng):
    B = rng.normal(size=(32, 4))
    H = scipy.linalg.hadamard(32) / math.sqrt(32)
    np.testing.assert_allclose(fwht_reference(np, B), H @ B, atol=1e-12)
    np.testing.assert_allclose(fwht(np, B), H @ B, atol=1e-12)
    assert fwht.backend_for(np) == "numba"
    big = rng.normal(size=(2**12, 1100))  # exercises the parallel path
    np.testing.assert_allclose(fwht(np, big), fwht_reference(np, big), atol=1e-10)


def test_srht_pads_non_power_of_two(rng):
    S = make_sketch("srht", 10, 37, random_state=0)
    A = S.toarray()
    assert A.shape == (10, 37)
    # rows of sqrt(m/N) * S are orthonormal restricted to the padded space
    assert np.allclose(np.abs(A), math.sqrt(64 / 10) / 8)


def test_scatter_add_backends_agree(rng):
    idx = rng.integers(0, 7, size=50)
    w = rng.normal(size=50)
    V = rng.normal(size=(50, 200))
    ref = scatter_add_rows.implementation("reference")(np, idx, w, V, 7)
    fast = scatter_add_rows(np, idx, w, V, 7)
    np.testing.assert_allclose(fast, ref, atol=1e-12)
    np.testing.assert_allclose(scatter_add_rows(np, idx, w, V[:, :3], 7), ref[:, :3],
                               atol=1e-12)
    from sketchlearn.sketching._numba import _scatter_add_signed_parallel

    out = np.zeros((7, 200))
    _scatter_add_signed_parallel(idx.astype(np.int64), w, V, out, 3)  # uneven blocks
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_array_api_strict_matches_numpy(xp, rng):
    X = _data(rng)
    for kind in ("gaussian", "orthogonal", "srht", "srdct", "countsketch", "uniform"):
        S = make_sketch(kind, 30, 96, random_state=1)
        out = S @ as_xp(xp, X)
        np.testing.assert_allclose(to_np(out), S @ X, atol=1e-10)
        Z = rng.normal(size=(30, 2))
        np.testing.assert_allclose(to_np(S.T @ as_xp(xp, Z)), S.T @ Z, atol=1e-10)


def test_leverage_scores(rng):
    X = _data(rng, n=300, d=6)
    X[:3] *= 50  # high-leverage rows
    exact = leverage_scores(X)
    H = X @ np.linalg.pinv(X)
    np.testing.assert_allclose(exact, np.diag(H), atol=1e-10)
    approx = leverage_scores(X, method="approx", random_state=0)
    ratio = approx / exact
    assert 0.3 < ratio.min() and ratio.max() < 3.0
    sparse_approx = leverage_scores(sp.csr_matrix(X), method="approx", random_state=0)
    assert sparse_approx.shape == (300,)
    # rank-deficient X: scores sum to the rank
    Xr = np.c_[X, X[:, :2]]
    assert math.isclose(leverage_scores(Xr).sum(), 6, rel_tol=1e-8)


def test_sketch_features_and_vector(rng):
    X = _data(rng)
    out = sketch(X, "gaussian", 3, axis=1, random_state=0)
    assert out.shape == (96, 3)
    v = rng.normal(size=96)
    assert sketch(v, "srdct", 10, random_state=0).shape == (10,)
    assert sketch(X, "leverage", 3, axis=1, random_state=0).shape == (96, 3)


def test_bad_input(rng):
    X = _data(rng)
    with pytest.raises(ValueError, match="'kind' parameter of sketch must be a str among"):
        sketch(X, "fourier", 10)
    with pytest.raises(ValueError, match="exceeds the sketched dimension"):
        sketch(X, "orthogonal", 200)
    with pytest.raises(ValueError, match="'size' parameter of sketch must be an int in the"):
        sketch(X, "gaussian", 0)
    with pytest.raises(ValueError, match="'size' parameter of sketch must be an int"):
        sketch(X, "gaussian", 2.5)
    with pytest.raises(ValueError, match="'axis' parameter of sketch must be"):
        sketch(X, "gaussian", 10, axis=2)
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sketch(bad, "gaussian", 10)
    with pytest.raises(ValueError, match="needs the data"):
        make_sketch("leverage", 10, 96)
    for args, kwargs, name in ((("fourier", 10, 96), {}, "kind"), (("gaussian", 0, 96), {}, "size"),
                               (("gaussian", 10, 96.0), {}, "n"),
                               (("uniform", 10, 96), {"replace": "yes"}, "replace"),
                               (("gaussian", 10, 96), {"random_state": "0"}, "random_state")):
        with pytest.raises(ValueError, match=f"'{name}' parameter of make_sketch must be"):
            make_sketch(*args, **kwargs)
    with pytest.raises(ValueError, match="'method' parameter of leverage_scores must be"):
        leverage_scores(X, method="fast")
    with pytest.raises(ValueError, match="'rcond' parameter of leverage_scores must be"):
        leverage_scores(X, rcond=-1e-3)
    S = make_sketch("gaussian", 10, 96, random_state=0)
    with pytest.raises(ValueError, match="acts on dimension 96"):
        S @ X[:50]
    with pytest.raises(ValueError, match="needs Y with 10 rows"):
        S.T @ np.ones((9, 2))
    with pytest.raises(TypeError, match="dense"):
        sketch(sp.csr_matrix(X), "srdct", 10)
    # sizes above n are fine where the sketch allows them
    assert sketch(X, "countsketch", 200, random_state=0).shape == (200, 5)
    assert sketch(X, "uniform", 200, random_state=0, replace=True).shape == (200, 5)


@pytest.mark.parametrize("kind", KINDS)
def test_infinite_and_empty_input(kind, rng):
    """Infinity and empty data raise a ValueError that says what is wrong with X
    (empty data used to report the internal dimension: "n must be in [1, inf]")."""
    X = _data(rng)
    bad = X.copy()
    bad[7, 2] = np.inf
    for axis in (0, 1):
        with pytest.raises(ValueError, match="infinity"):
            sketch(bad, kind, 3, axis=axis, random_state=0)
        with pytest.raises(ValueError, match="infinity"):
            sketch(-bad, kind, 3, axis=axis, random_state=0)
    v = X[:, 0].copy()
    v[5] = -np.inf
    with pytest.raises(ValueError, match="infinity"):
        sketch(v, kind, 3, random_state=0)
    S = make_sketch(kind, 10, 96, data=X, random_state=0)
    with pytest.raises(ValueError, match="infinity"):
        S @ bad
    Y = rng.normal(size=(10, 2))
    Y[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        S.T @ Y
    if kind not in ("srht", "srdct"):
        with pytest.raises(ValueError, match="NaN or infinity"):
            S @ sp.csr_matrix(bad)
    for shape in ((0, 5), (96, 0), (0, 0), (0,)):
        for axis in ((0, 1) if len(shape) == 2 else (0,)):
            with pytest.raises(ValueError, match=r"X is empty \(shape"):
                sketch(np.empty(shape), kind, 3, axis=axis, random_state=0)
    with pytest.raises(ValueError, match="X is empty"):
        sketch([], kind, 3)
    if kind not in ("srht", "srdct"):
        for shape in ((0, 5), (96, 0)):
            with pytest.raises(ValueError, match="X is empty"):
                sketch(sp.csr_matrix(shape), kind, 3, random_state=0)
        with pytest.raises(ValueError, match="X is empty"):
            S @ sp.csr_matrix((96, 0))
    with pytest.raises(ValueError, match="0 feature"):
        S @ np.empty((96, 0))
    with pytest.raises(ValueError, match="'n' parameter of make_sketch must be"):
        make_sketch(kind, 3, 0, data=np.empty((0, 2)))


def test_transformer_basic(rng):
    X = rng.normal(size=(50, 400))
    tr = SketchTransformer(kind="srht", n_components=128, random_state=0).fit(X)
    Z = tr.transform(X)
    assert Z.shape == (50, 128)
    np.testing.assert_allclose(Z, tr.sketch_.apply(X, axis=1))
    G, Gz = X @ X.T, Z @ Z.T
    rel = np.abs(np.diag(Gz) / np.diag(G) - 1)
    assert rel.max() < 0.4
    with pytest.raises(ValueError, match="features"):
        tr.transform(X[:, :10])
    assert SketchTransformer().fit(X).n_components_ == 100
    Zs = SketchTransformer(kind="countsketch", n_components=20,
                           random_state=0).fit_transform(sp.csr_matrix(X))
    assert sp.issparse(Zs) and Zs.shape == (50, 20)
    # fit checks its parameters once (make_sketch does not check them again)
    for name, bad in (("n_components", True), ("n_components", 0), ("kind", "fourier"),
                      ("replace", 1)):
        with pytest.raises(ValueError, match=f"'{name}' parameter of SketchTransformer"):
            SketchTransformer(**{name: bad}).fit(X)


@pytest.mark.gpu
def test_cupy_matches_numpy(rng):
    cupy = pytest.importorskip("cupy")
    X = _data(rng, n=512, d=8)
    for kind in KINDS:
        S = make_sketch(kind, 64, 512, data=X, random_state=0)
        out = S @ cupy.asarray(X)
        assert isinstance(out, cupy.ndarray)
        np.testing.assert_allclose(out.get(), S @ X, atol=1e-10)
        Z = rng.normal(size=(64, 3))
        np.testing.assert_allclose((S.T @ cupy.asarray(Z)).get(), S.T @ Z, atol=1e-10)
