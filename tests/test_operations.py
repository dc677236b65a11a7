"""Every registered accelerated operation against its array-API reference.

Each :class:`~sketchlearn._array_api.Dispatch` declares example inputs beside itself
(``examples(xp, rng) -> [(args, kwargs), ...]``). Every operation runs each of its
examples on every backend available here (Numba on NumPy arrays, the reference
under ``array_api_strict``, CuPy where a device exists), on inputs built afresh from
the same seed, and must give the reference's result on NumPy inputs without writing
into its inputs.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
import warnings

import array_api_compat
import numpy as np
import pytest

import sketchlearn
from sketchlearn._array_api import (
    Dispatch,
    PerformanceWarning,
    get_namespace,
    move_to,
    registered_operations,
    to_numpy,
)


def _import_every_module():
    """Import every subpackage and each of its modules, so that every operation is
    declared even where a subpackage's ``__init__`` does not reach its module. The CuPy
    backends are left out: they import CuPy, and declare no operation."""
    for pkg in pkgutil.iter_modules(sketchlearn.__path__):
        if not pkg.ispkg:
            continue
        package = importlib.import_module(f"sketchlearn.{pkg.name}")
        for info in pkgutil.iter_modules(package.__path__):
            if "cupy" not in info.name:
                importlib.import_module(f"{package.__name__}.{info.name}")


_import_every_module()
# The library's operations only: tests (test_array_api.py, the warning tests below)
# declare stand-in operations, which register too.
OPERATIONS = {op.__name__.lstrip("_"): op for op in registered_operations()
              if op.reference.__module__.startswith("sketchlearn.")}

# Operations without a CuPy implementation, and why. CuPy arrays reach their array-API
# reference instead, with a PerformanceWarning (once per operation).
EXPECTED_WITHOUT_CUPY = {
    "chunk_refinement_sums": "the Dask Gauss-Markov's per-chunk refinement sums: "
                             "elementwise error-free transformations and one reduction, "
                             "which CuPy chunks run as they are",
    "product_residual": "as chunk_refinement_sums (the covariance's factor residuals)",
    "gram_pair": "as chunk_refinement_sums (the first pass's Gram matrix in doubled "
                 "precision)",
    "tridiagonal_ridge_solve": "the tridiagonal ridge path (LAPACK ?sytrd through ctypes) "
                               "is for NumPy members; CuPy ensembles take solver='eigh'",
    "tridiagonal_df": "as tridiagonal_ridge_solve",
    "gram_block": "as tridiagonal_ridge_solve",
}

# Arguments an operation overwrites by design (positions after the namespace).
OVERWRITES = {
    # The scaling loop's kernel is not used after the plan is built: overwriting it
    # saves an n x m copy.
    "plan_from_kernel": {0},
}

# Examples on which a backend is known to disagree with the reference, by (operation,
# backend) and example number, with the reason; the test fails once they agree, so
# that the entry goes.
# (Empty since the LSA kernels test finiteness with _jit.is_finite: Numba's
# math.isfinite is x - x == 0, which reassoc + nsz folded away.)
KNOWN_DISAGREEMENTS: dict = {}

# Relative tolerances by the result's dtype: float64 to 1e-10, float32 to 1e-4 (float32
# rounding, 6e-8, times the length of the sums involved).
RTOL = {"float64": 1e-10, "float32": 1e-4}

# Operations whose float64 results of float32 data are only as exact as float32: the
# reference evaluates and sums the kernel in the data's dtype.
FLOAT32_WORK = {"coreset_sums", "halve_with_sums"}

# Examples on which the reference itself is less exact, by (operation, example number):
# the tolerance there, and why.
INEXACT_REFERENCE = {
    # A cloud against itself under the Euclidean cost: the reference forms squared
    # distances as |x|^2 + |y|^2 - 2 x.y, whose rounding at coincident points (eps |x|^2)
    # becomes a distance of sqrt(eps) |x| ~ 1e-8 after the square root; the kernels take
    # differences (exact: 0). Measured: reference 7.9e-11 off the exact value, Numba 2e-16.
    ("lse_points", 5): 1e-7,
}

SEED = 20240517


def _library(name):
    """The namespace callers pass for arrays of library ``name`` (array-api-compat's
    wrapper for NumPy and CuPy, as ``get_namespace`` returns it)."""
    module = np if name == "numpy" else pytest.importorskip(name)
    return get_namespace(move_to(np.zeros(1), module))


def _arrays(value, path="args"):
    """``(path, array)`` for every array inside nested tuples, lists and dicts."""
    if array_api_compat.is_array_api_obj(value):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _arrays(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{path}[{k!r}]")


def _snapshot(args, kwargs):
    """Host copies of the arrays of a call, by path (``args[2]``, ``kwargs['mean_k']``)."""
    found = [*_arrays(args, "args"), *_arrays(kwargs, "kwargs")]
    return {path: np.array(to_numpy(a), copy=True) for path, a in found}


def _tolerances(name, k, args, kwargs):
    """Relative tolerance by result dtype for example ``k`` of operation ``name``."""
    if (name, k) in INEXACT_REFERENCE:
        return dict.fromkeys(RTOL, INEXACT_REFERENCE[name, k])
    float32_data = any(np.dtype(to_numpy(a).dtype) == np.float32
                       for _, a in _arrays((args, kwargs)))
    if name in FLOAT32_WORK and float32_data:
        return dict.fromkeys(RTOL, RTOL["float32"])
    return RTOL


def _compare(got, want, rtol, where):
    """Same structure (tuples of arrays and scalars), same dtype family, values to
    ``rtol[dtype]`` (floats) or exactly (integers)."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), (
            f"{where}: a tuple of {len(want)} expected, got {type(got).__name__}")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, rtol, f"{where}[{i}]")
        return
    if not array_api_compat.is_array_api_obj(want):  # a Python scalar
        assert type(got) is type(want), f"{where}: {type(want)} expected, got {type(got)}"
        np.testing.assert_allclose(got, want, rtol=rtol["float64"], atol=0, err_msg=where)
        return
    assert array_api_compat.is_array_api_obj(got), f"{where}: an array expected, got {got!r}"
    g, w = to_numpy(got), to_numpy(want)
    assert g.shape == w.shape, f"{where}: shape {g.shape}, reference {w.shape}"
    assert g.dtype.kind == w.dtype.kind, f"{where}: dtype {g.dtype}, reference {w.dtype}"
    if w.dtype.kind in "iub":
        np.testing.assert_array_equal(g, w, err_msg=where)
        return
    assert g.dtype == w.dtype, f"{where}: dtype {g.dtype}, reference {w.dtype}"
    tol = rtol[w.dtype.name]
    # Entries that sums of signed terms bring near zero are compared at the scale of
    # the array's largest entry: their rounding error is relative to the terms.
    finite = np.abs(w[np.isfinite(w)])
    scale = float(finite.max()) if finite.size else 0.0
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol * scale, equal_nan=True,
                               err_msg=where)


def _call(op, xp, backend, args, kwargs):
    # Some examples overflow on purpose (kernel entries beyond exp(700), a diverging
    # chain): the results say so, NumPy's warnings add nothing.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if backend == "reference":
            return op.implementation("reference")(xp, *args, **kwargs)
        assert op.backend_for(xp) == backend
        return op(xp, *args, **kwargs)


# --------------------------------------------------------------------- the registry


def test_every_operation_has_examples():
    assert len(OPERATIONS) == len([op for op in registered_operations()
                                   if op.reference.__module__.startswith("sketchlearn.")]), (
        "two operations share a name")
    missing = sorted(name for name, op in OPERATIONS.items() if op.examples is None)
    assert missing == [], f"operations without examples: {missing}"
    for name, op in OPERATIONS.items():
        examples = op.examples(_library("numpy"), np.random.default_rng(SEED))
        assert isinstance(examples, list) and examples, name
        for args, kwargs in examples:
            assert isinstance(args, tuple) and isinstance(kwargs, dict), name


def test_operations_without_a_cupy_implementation_are_the_expected_ones():
    without = {name for name, op in OPERATIONS.items() if "cupy" not in op.backends}
    assert sorted(without - set(EXPECTED_WITHOUT_CUPY)) == [], "new operations without CuPy"
    assert sorted(set(EXPECTED_WITHOUT_CUPY) - without) == [], (
        "these have a CuPy implementation now (or are gone): update EXPECTED_WITHOUT_CUPY")


# ------------------------------------------------------------ backends vs reference


def _cases():
    for name, op in sorted(OPERATIONS.items()):
        if op.examples is None:
            continue
        if "numba" in op.backends:
            yield pytest.param(name, "numpy", "numba", id=f"{name}-numba")
        yield pytest.param(name, "array_api_strict", "reference", id=f"{name}-array_api_strict")
        if "cupy" in op.backends:
            yield pytest.param(name, "cupy", "cupy", id=f"{name}-cupy", marks=pytest.mark.gpu)


@pytest.mark.parametrize("name, library, backend", list(_cases()))
def test_backend_equals_the_reference(name, library, backend):
    op = OPERATIONS[name]
    xp_ref, xp = _library("numpy"), _library(library)
    reference_inputs = op.examples(xp_ref, np.random.default_rng(SEED))
    inputs = op.examples(xp, np.random.default_rng(SEED))
    assert len(inputs) == len(reference_inputs)
    allowed = OVERWRITES.get(name, set())
    known = KNOWN_DISAGREEMENTS.get((name, backend), {})
    for k, ((ref_args, ref_kwargs), (args, kwargs)) in enumerate(
            zip(reference_inputs, inputs, strict=True)):
        where = f"{name}, example {k}, {backend}"
        before_ref = _snapshot(ref_args, ref_kwargs)
        before = _snapshot(args, kwargs)
        # Same seed, same inputs: the examples draw only from the generator given.
        assert before.keys() == before_ref.keys(), where
        for path, value in before.items():
            np.testing.assert_array_equal(value, before_ref[path], err_msg=f"{where}: {path}")
        want = _call(op, xp_ref, "reference", ref_args, ref_kwargs)
        got = _call(op, xp, backend, args, kwargs)
        try:
            _compare(got, want, _tolerances(name, k, ref_args, ref_kwargs), where)
        except AssertionError:
            if k not in known:
                raise
        else:
            assert k not in known, f"{where} agrees now: remove it from KNOWN_DISAGREEMENTS"
        for label, snapshot, call_args, call_kwargs in (
                ("reference", before_ref, ref_args, ref_kwargs),
                (backend, before, args, kwargs)):
            after = _snapshot(call_args, call_kwargs)
            for path, value in snapshot.items():
                if any(path == f"args[{i}]" or path.startswith(f"args[{i}][") for i in allowed):
                    continue
                np.testing.assert_array_equal(
                    after[path], value, err_msg=f"{name}, example {k}: {label} wrote into "
                                                f"its input {path}")


# ------------------------------------------- CuPy arrays reaching the reference


def _twice_reference(xp, x):
    """Reference: 2 x."""
    return xp.multiply(x, 2.0)


def _twice_on_gpu(xp, x):
    return xp.multiply(x, 2.0)


@pytest.fixture
def fake_cupy():
    """A stand-in for CuPy's namespace: array-api-compat recognises CuPy by the
    namespace's ``__name__``; its arrays here are NumPy arrays."""
    module = types.ModuleType("cupy")
    module.multiply = np.multiply
    return module


def test_cupy_arrays_reaching_the_reference_warn_once_per_operation(fake_cupy):
    op = Dispatch(_twice_reference, numba="math:fabs")
    assert op.backend_for(fake_cupy) == "reference"
    with pytest.warns(PerformanceWarning, match=r"'_twice'.*no CuPy implementation.*"
                                                r"array-API reference"):
        out = op(fake_cupy, np.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])  # it still runs, on the reference
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op(fake_cupy, np.ones(2))  # once per operation
    with pytest.warns(PerformanceWarning):  # another operation warns for itself
        Dispatch(_twice_reference)(fake_cupy, np.ones(2))
    assert issubclass(PerformanceWarning, UserWarning)


def test_no_warning_where_the_namespace_has_its_implementation(fake_cupy):
    gpu = Dispatch(_twice_reference, cupy=f"{__name__}:_twice_on_gpu")
    plain = Dispatch(_twice_reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(gpu(fake_cupy, np.ones(1)), [2.0])
        np.testing.assert_array_equal(plain(np, np.ones(1)), [2.0])
        strict = pytest.importorskip("array_api_strict")
        assert float(plain(strict, strict.asarray([1.0]))[0]) == 2.0


def test_operations_register_themselves_with_their_examples():
    def examples(xp, rng):
        return [((move_to(rng.normal(size=3), xp),), {})]

    op = Dispatch(_twice_reference, examples=examples)
    assert op in registered_operations()
    assert op.examples is examples
    assert op.backends == ("reference",)
    assert Dispatch(_twice_reference, numba="math:fabs").backends == ("reference", "numba")
