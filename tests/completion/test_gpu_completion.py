"""CuPy completion kernels and solvers against the reference and NumPy (GPU only).

Every variant the CuPy module compiles runs here: float32 and float64 values with
int32 and int64 indices, the chunk loop of the row solves (more rows than one
launch's scratch holds), sketch-preconditioned CG, and the SoftImpute and SVT
solvers end to end on CuPy arrays against the same calls on NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.completion import SoftImpute, SVTCompleter, _core, altmin_complete, soft_impute

pytestmark = pytest.mark.gpu

SEED = 20240601
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
OPS = ("predict_observed", "spmm", "cg_rows", "solve_rows", "sketch_cg_rows")


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def _host(a):
    import cupy

    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


def _assert_close(got, want, where):
    """Same type and dtype as the reference, values to the dtype's tolerance (entries
    near zero at the scale of the largest one, NaN where the reference has NaN)."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]")
        return
    g, w = _host(got), _host(want)
    assert g.shape == w.shape and g.dtype == w.dtype, (where, g.shape, g.dtype, w.dtype)
    tol = RTOL[w.dtype]
    finite = np.abs(w[np.isfinite(w)])
    scale = float(finite.max()) if finite.size else 0.0
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol * scale, equal_nan=True,
                               err_msg=where)


def _float32_int64_examples(name, xp, rng):
    """One example of operation ``name`` with float32 values and int64 indices (the
    registered examples have float32 with int32, and float64 with int64)."""
    obs = _core._example_observed(rng, 40, 30, 300, np.float32, np.int64)
    U, V = (rng.normal(size=(k, 4)).astype(np.float32) for k in (40, 30))

    def dev(*arrays):
        return tuple(xp.asarray(a) for a in arrays)

    if name == "predict_observed":
        return dev(obs.indptr, obs.cols, obs.rows, U, V)
    if name == "spmm":
        return dev(obs.indptr, obs.cols, obs.vals, V)
    if name == "cg_rows":
        return dev(obs.indptr, obs.cols, obs.vals, U, V) + (0.3, 3)
    if name == "solve_rows":
        return dev(obs.indptr, obs.cols, obs.vals, V) + (0.5,)
    Vq = np.linalg.qr(rng.normal(size=(30, 4)))[0].astype(np.float32)
    return dev(obs.indptr, obs.cols, obs.vals, U, Vq) + (0.3, 1e-6, 50, 16, 1, 12345)


@pytest.mark.parametrize("name", OPS)
def test_cupy_kernel_equals_reference_on_every_variant(cupy, name):
    op = getattr(_core, name)
    assert "cupy" in op.backends, f"{name} has no CuPy path"
    impl, reference = op.implementation("cupy"), op.implementation("reference")
    want = op.examples(np, np.random.default_rng(SEED))
    got = op.examples(cupy, np.random.default_rng(SEED))
    variants = set()
    for k, ((ref_args, ref_kw), (args, kw)) in enumerate(zip(want, got, strict=True)):
        values = next(a for a in ref_args if isinstance(a, np.ndarray) and a.dtype.kind == "f")
        variants.add((values.dtype.name, ref_args[1].dtype.name))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            expected = reference(np, *ref_args, **ref_kw)
        _assert_close(impl(cupy, *args, **kw), expected, f"{name}, example {k}")
    rng_np, rng_cp = np.random.default_rng(SEED + 1), np.random.default_rng(SEED + 1)
    args_np = tuple(_host(a) if hasattr(a, "shape") else a
                    for a in _float32_int64_examples(name, np, rng_np))
    args_cp = _float32_int64_examples(name, cupy, rng_cp)
    assert args_np[1].dtype == np.int64 and args_cp[1].dtype == cupy.int64
    _assert_close(impl(cupy, *args_cp), reference(np, *args_np), f"{name}, float32/int64")
    variants.add(("float32", "int64"))
    assert {("float32", "int32"), ("float64", "int32"), ("float64", "int64"),
            ("float32", "int64")} <= variants


@pytest.mark.parametrize("name", ["solve_rows", "sketch_cg_rows"])
def test_row_solves_in_several_chunks(cupy, monkeypatch, name):
    # A scratch budget of 7 rows: 40 rows take 6 launches, the last one partial, each
    # reusing the scratch the previous launch left behind.
    from sketchlearn.completion import _cupy

    rng = np.random.default_rng(SEED + 2)
    obs = _core._example_observed(rng, 40, 30, 800, np.float64)
    k = 4
    V = np.linalg.qr(rng.normal(size=(30, k)))[0]
    X0 = rng.normal(size=(40, k))
    if name == "solve_rows":
        args, per_row = (obs.indptr, obs.cols, obs.vals, V, 0.5), 2 * k * k + 2 * k
    else:
        args = (obs.indptr, obs.cols, obs.vals, X0, V, 0.1, 1e-10, 50, 4 * k, 1, 987)
        per_row = 4 * k * k + 2 * k * k + 6 * k
    impl = getattr(_core, name).implementation("cupy")
    dev = tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
    whole = impl(cupy, *dev)
    monkeypatch.setattr(_cupy, "_SCRATCH", 7 * per_row)
    assert _cupy._chunk(40, per_row) == 7
    chunked = impl(cupy, *dev)
    want = getattr(_core, name).implementation("reference")(np, *args)
    _assert_close(chunked, want, f"{name} in chunks")
    _assert_close(whole, want, f"{name} in one launch")


def test_solve_rows_past_one_chunk_of_the_real_budget(cupy):
    # k = 64: 8320 doubles of scratch a row, 4032 rows a launch; 4500 rows take two.
    from sketchlearn.completion import _cupy, _numba

    k, m = 64, 4500
    assert _cupy._chunk(m, 2 * k * k + 2 * k) < m
    rng = np.random.default_rng(SEED + 3)
    obs = _core._example_observed(rng, m, 200, 100 * m, np.float64)
    V = rng.normal(size=(200, k))
    want = _numba.solve_rows(np, obs.indptr, obs.cols, obs.vals, V, 0.5)
    got = _cupy.solve_rows(cupy, *(cupy.asarray(a) for a in (obs.indptr, obs.cols, obs.vals, V)),
                           0.5)
    _assert_close(got, want, "solve_rows, 4500 rows of rank 64")


def _low_rank_with_gaps(m=80, n=60, k=3, frac=0.5, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(m, k)) @ rng.normal(size=(k, n)) / np.sqrt(k)
    return np.where(rng.random(M.shape) < frac, M, np.nan), M


def _completed(U, s, V):
    return (_host(U) * _host(s)) @ _host(V).T


def test_sketch_cg_altmin_on_cupy_equals_numpy(cupy):
    X, M = _low_rank_with_gaps()
    kw = dict(rank=3, solver="sketch-cg", tol=1e-10, max_iter=300, random_state=0)
    Zn = _completed(*altmin_complete(X, **kw))
    factors = altmin_complete(cupy.asarray(X), **kw)
    assert all(isinstance(f, cupy.ndarray) for f in factors)
    Zg = _completed(*factors)
    np.testing.assert_allclose(Zg, Zn, atol=1e-6)
    assert np.linalg.norm(Zg - M) / np.linalg.norm(M) < 1e-5  # recovery (NumPy: 9e-7)


@pytest.mark.parametrize("solver", ["als", "svd"])
def test_soft_impute_on_cupy_equals_numpy(cupy, solver):
    X, _ = _low_rank_with_gaps(seed=1)
    kw = dict(shrinkage=0.5, max_rank=10, solver=solver, tol=1e-12, max_iter=500,
              random_state=0)
    Zn = _completed(*soft_impute(X, **kw))
    factors = soft_impute(cupy.asarray(X), **kw)
    assert all(isinstance(f, cupy.ndarray) for f in factors)
    np.testing.assert_allclose(_completed(*factors), Zn, atol=1e-7)
    est = SoftImpute(**kw)
    Zt = est.fit_transform(cupy.asarray(X))
    assert isinstance(Zt, cupy.ndarray)
    np.testing.assert_allclose(_host(Zt), SoftImpute(**kw).fit_transform(X), atol=1e-7)


@pytest.mark.parametrize("thresholding", ["hard", "soft"])
def test_svt_on_cupy_equals_numpy(cupy, thresholding):
    X, _ = _low_rank_with_gaps(seed=2)
    est = SVTCompleter(thresholding=thresholding, max_rank=10, random_state=0)
    Zn = est.fit_transform(X)
    Zg = SVTCompleter(thresholding=thresholding, max_rank=10,
                      random_state=0).fit_transform(cupy.asarray(X))
    assert isinstance(Zg, cupy.ndarray)
    np.testing.assert_allclose(_host(Zg), Zn, rtol=1e-8, atol=1e-8 * np.abs(Zn).max())
