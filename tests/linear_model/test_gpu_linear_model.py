"""CuPy linear-model kernels and solvers against the reference and NumPy (GPU only).

Gauss-Markov (OLS, WLS, GLS with a dense covariance, AR(1) known and estimated) on
CuPy arrays against the same fits on NumPy arrays; the doubled-precision refinement
residuals against exact rational arithmetic and their references; the LSA kernels,
whose sample order is read step-major, against the reference with more chains than
one block of threads.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest

from sketchlearn.linear_model import (
    _lsa,
    _refinement,
    gauss_markov,
    linear_stochastic_approximation,
)

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def _host(a):
    import cupy

    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


def _data(rng, n=80, p=3):
    X = rng.normal(size=(n, p))
    e = np.zeros(n)
    for i in range(n):  # AR(1) errors, rho = 0.5
        e[i] = (0.5 * e[i - 1] if i else 0.0) + rng.normal()
    return X, 1.0 + X @ np.arange(1.0, p + 1) + 0.3 * e


@pytest.mark.parametrize("kwargs", [{}, {"fit_intercept": False}, {"weights": True},
                                    {"dense": True}, {"sigma": "ar1", "rho": 0.5},
                                    {"sigma": "ar1"}])
def test_gauss_markov_on_cupy_equals_numpy(cupy, kwargs):
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    kw = dict(kwargs)
    if kw.pop("weights", False):
        kw["sample_weight"] = rng.uniform(0.5, 2.0, size=80)
    if kw.pop("dense", False):
        kw["sigma"] = 0.5 ** np.abs(np.subtract.outer(np.arange(80), np.arange(80)))
    gkw = {k: cupy.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = gauss_markov(X, y, **kw)
        b = gauss_markov(cupy.asarray(X), cupy.asarray(y), **gkw)
    assert isinstance(b.coef, cupy.ndarray)
    assert b.rank == a.rank
    for key in ("coef", "bse", "leverage", "residuals"):
        np.testing.assert_allclose(_host(getattr(b, key)), getattr(a, key), rtol=1e-10,
                                   atol=1e-12, err_msg=key)
    np.testing.assert_allclose(float(b.intercept), float(a.intercept), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(b.sigma2), float(a.sigma2), rtol=1e-10)
    if kwargs.get("sigma") == "ar1" and "rho" not in kwargs:
        np.testing.assert_allclose(float(b.rho), float(a.rho), rtol=1e-10)


# ---------------------------------------------------------------- refinement residuals


def _exact(x):
    return Fraction(float(x))


_EPS = 2.0**-53  # unit roundoff of float64


def _within_dot2_bound(got, terms):
    """``got`` against the exact sum of the rational ``terms``: within Ogita, Rump and
    Oishi's bound for Dot2 (Theorem 4.4 of "Accurate sum and dot product", 2005),
    ``eps |s| + gamma_N^2 sum |t|`` with ``gamma_N = N eps / (1 - N eps)``, twice over
    for the final rounding. Plain float64 summation is only held to ``gamma_N sum |t|``
    (about 1e16 times more on the sums below); returns (ok, exact)."""
    exact = sum(terms, Fraction(0))
    total = float(sum(abs(t) for t in terms))
    gamma = len(terms) * _EPS / (1 - len(terms) * _EPS)
    bound = 2 * (_EPS * abs(float(exact)) + gamma**2 * total) + 5e-324
    return float(abs(Fraction(float(got)) - exact)) <= bound, exact


def test_refinement_residuals_are_rounded_exact_values(cupy):
    # A nearly consistent polynomial fit: y - r - A x cancels ~9 digits; the doubled
    # precision residual stays within the Dot2 bound of the exact value of the float64
    # inputs, which plain float64 arithmetic misses by orders of magnitude.
    rng = np.random.default_rng(1)
    n, k = 40, 5
    t = np.sort(rng.random(n))
    A = np.stack([t**j for j in range(k)], axis=1)
    y = A @ rng.normal(size=k) + 1e-9 * rng.normal(size=n)
    x = np.linalg.lstsq(A, y, rcond=None)[0]
    r = 1e-10 * rng.normal(size=n)
    op = _refinement.refinement_residuals_op
    assert op.backend_for(cupy) == "cupy"
    f, g = op(cupy, *(cupy.asarray(v) for v in (A, y, r, x)))
    f, g = _host(f), _host(g)
    assert f.dtype == g.dtype == np.float64 and f.shape == (n,) and g.shape == (k,)
    plain = y - r - A @ x
    plain_misses = 0
    for i in range(n):
        terms = [_exact(y[i]), -_exact(r[i])] + [-_exact(A[i, j]) * _exact(x[j])
                                                 for j in range(k)]
        ok, _ = _within_dot2_bound(f[i], terms)
        assert ok, i
        plain_misses += not _within_dot2_bound(plain[i], terms)[0]
    assert plain_misses > n // 2  # the check can tell doubled precision from plain
    for j in range(k):
        ok, _ = _within_dot2_bound(g[j], [-_exact(A[i, j]) * _exact(r[i]) for i in range(n)])
        assert ok, j


def test_inverse_refinement_residuals_are_rounded_exact_values(cupy):
    rng = np.random.default_rng(2)
    n, k = 30, 4
    t = np.sort(rng.random(n))
    A = np.stack([t**j for j in range(k)], axis=1)
    Q, Rf = np.linalg.qr(A)
    Rinv = np.linalg.inv(Rf)
    X = Rinv @ Rinv.T
    R = -(Q @ Rinv.T)
    op = _refinement.inverse_refinement_residuals_op
    assert op.backend_for(cupy) == "cupy"
    F, G, QtF = (_host(v) for v in op(cupy, *(cupy.asarray(v) for v in (A, R, X, Q))))
    assert F.shape == (n, k) and G.shape == (k, k) and QtF.shape == (k, k)
    for i in range(n):
        for j in range(k):
            terms = [-_exact(R[i, j])] + [-_exact(A[i, q]) * _exact(X[q, j]) for q in range(k)]
            assert _within_dot2_bound(F[i, j], terms)[0], (i, j)
    for q in range(k):
        for j in range(k):
            terms = [-Fraction(int(q == j))] + [-_exact(A[i, q]) * _exact(R[i, j])
                                                for i in range(n)]
            assert _within_dot2_bound(G[q, j], terms)[0], (q, j)
    np.testing.assert_allclose(QtF, Q.T @ F, rtol=1e-12, atol=1e-12 * np.abs(QtF).max())


@pytest.mark.parametrize("op", [_refinement.refinement_residuals_op,
                                _refinement.inverse_refinement_residuals_op],
                         ids=lambda op: op.__name__)
def test_refinement_residuals_equal_their_references(cupy, op):
    want = op.examples(np, np.random.default_rng(3))
    got = op.examples(cupy, np.random.default_rng(3))
    for (ref_args, _), (args, _) in zip(want, got, strict=True):
        expected = op.implementation("reference")(np, *ref_args)
        result = op.implementation("cupy")(cupy, *args)
        assert len(result) == len(expected)
        for g, w in zip(result, expected, strict=True):
            g = _host(g)
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * np.abs(w).max())


# ------------------------------------------------------------------------- LSA


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lsa_chains_step_major_equal_the_reference(cupy, dense, dtype):
    # 300 chains (three blocks of 128 threads, the last one partial) over bootstrap
    # orders: each step's sample indices are read across chains.
    rng = np.random.default_rng(4)
    n, p, K, t0, burn_in = 50, 3, 300, 5, 12
    if dense:
        data = (np.eye(p) + 0.3 * rng.normal(size=(n, p, p)), rng.normal(size=(n, p)))
        op = _lsa.lsa_dense_op
    else:
        U = rng.normal(size=(n, p))
        data = (U, U + 0.3 * rng.normal(size=(n, p)), rng.normal(size=n))
        op = _lsa.lsa_rank_one_op
    data = tuple(d.astype(dtype) for d in data)
    index = _lsa.bootstrap_index(n, K, 5, rng)[:, :40]
    assert index.shape == (K, 40)
    theta, avg = rng.normal(size=(K, p)), rng.normal(size=(K, p))
    steps = rng.uniform(0.01, 0.05, size=K)
    want = op.implementation("reference")(np, *data, index, theta, avg, t0, steps, burn_in)
    got = op.implementation("cupy")(cupy, *(cupy.asarray(d) for d in data), index,
                                    cupy.asarray(theta), cupy.asarray(avg), t0, steps, burn_in)
    np.testing.assert_allclose(_host(got[0]), want[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(_host(got[1]), want[1], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(_host(got[2]), want[2])
    # the registered examples too (one chain, a diverging chain, an empty order)
    for (ref_args, _), (args, _) in zip(op.examples(np, np.random.default_rng(5)),
                                        op.examples(cupy, np.random.default_rng(5)),
                                        strict=True):
        with np.errstate(over="ignore", invalid="ignore"):
            want = op.implementation("reference")(np, *ref_args)
        got = op.implementation("cupy")(cupy, *args)
        for g, w in zip(got[:2], want[:2], strict=True):
            np.testing.assert_allclose(_host(g), w, rtol=1e-10, atol=1e-12, equal_nan=True)
        np.testing.assert_array_equal(_host(got[2]), want[2])


def test_linear_stochastic_approximation_on_cupy_equals_numpy(cupy):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    kw = dict(step=0.02, n_epochs=3, shuffle=True, random_state=0, burn_in=50)
    want = linear_stochastic_approximation((X, X), y, **kw)
    got = linear_stochastic_approximation((cupy.asarray(X), cupy.asarray(X)),
                                          cupy.asarray(y), **kw)
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(_host(got), want, rtol=1e-10)


def test_gauss_markov_on_dask_array_of_cupy_chunks(cupy):
    """A Dask array of CuPy chunks: each chunk comes to the host for the TSQR and the
    refinement (CPU kernels), so the fit equals the one on NumPy chunks; block-diagonal
    GLS too."""
    da = pytest.importorskip("dask.array")
    import dask

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0 + rng.normal(size=300)
    blocks = [np.eye(3) + 0.5] * 100
    with dask.config.set(scheduler="synchronous"):
        for sigma in (None, blocks):
            want = gauss_markov(da.from_array(X, chunks=(64, -1)), da.from_array(y, chunks=64),
                                sigma=sigma)
            dX = da.from_array(X, chunks=(64, -1)).map_blocks(cupy.asarray)
            dy = da.from_array(y, chunks=64).map_blocks(cupy.asarray)
            got = gauss_markov(dX, dy, sigma=sigma)
            np.testing.assert_array_equal(got.coef, want.coef)
            np.testing.assert_array_equal(got.bse, want.bse)
            np.testing.assert_allclose(got.residuals.compute(), want.residuals.compute(),
                                       rtol=1e-12, atol=1e-12)
