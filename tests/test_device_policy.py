"""The device policy of every public function (``sketchlearn._array_api.public_function``)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import sys
import types
from typing import NamedTuple

import numpy as np
import pytest

import sketchlearn
from sketchlearn import _array_api, config_context
from sketchlearn._array_api import cupy_is_usable, public_function

# Public functions outside the device policy, and why: they take no data array, or work
# on a handful of numbers on the host by design.
EXEMPT = {
    "load_nist_strd": "loads a bundled data set (no input array)",
    "make_kernel": "builds a kernel object; X only sets a bandwidth",
    "median_heuristic": "a bandwidth from a host subsample of at most max_samples rows",
    "scott_bandwidth": "a bandwidth from the column variances (a number)",
    "make_whitener": "builds a whitening operator for a namespace given explicitly (xp=)",
    "sphere_abs_moment": "a constant of the dimension (no array)",
    "filter_factors": "NumPy on a vector of singular values (p numbers)",
    "shrinkage_factors": "NumPy on a vector of singular values (p numbers)",
    "stability_bound": "eigenvalues of one p x p matrix on the host",
    "gaussian_wasserstein": "closed form on means and p x p covariances on the host",
    "log_relative_error": "digits of agreement between two results (accuracy metric)",
}


def _public_functions():
    seen = {}
    for info in pkgutil.iter_modules(sketchlearn.__path__):
        if info.name.startswith("_") or not info.ispkg:
            continue
        module = importlib.import_module(f"sketchlearn.{info.name}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                seen.setdefault(name, obj)
    return seen


PUBLIC = _public_functions()
GOVERNED = sorted(name for name in PUBLIC if name not in EXEMPT)


def test_every_public_function_is_governed_or_exempt_with_a_reason():
    ungoverned = sorted(name for name, f in PUBLIC.items()
                        if not hasattr(f, "public_arrays") and name not in EXEMPT)
    assert ungoverned == [], f"public functions without the device policy: {ungoverned}"
    stale = sorted(set(EXEMPT) - set(PUBLIC))
    assert stale == [], f"EXEMPT names no public function: {stale}"
    both = sorted(name for name in EXEMPT if hasattr(PUBLIC[name], "public_arrays"))
    assert both == [], f"governed functions listed as exempt: {both}"


@pytest.mark.skipif(cupy_is_usable(), reason="a GPU is present")
@pytest.mark.parametrize("name", GOVERNED)
def test_gpu_setting_without_a_gpu_is_a_clear_error(name):
    func = PUBLIC[name]
    required = [p for p in inspect.signature(func).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                       p.POSITIONAL_OR_KEYWORD)]
    args = [np.zeros((4, 2)) for _ in required]  # NumPy inputs, never computed on
    with config_context(device="gpu"), pytest.raises(RuntimeError,
                                                     match="needs CuPy and a CUDA device"):
        func(*args)


@pytest.mark.gpu
@pytest.mark.parametrize("call", [
    lambda X, Y: sketchlearn.metrics.mmd(X, Y, bandwidth=1.0),
    lambda X, Y: sketchlearn.transport.sliced_wasserstein(X, Y, random_state=0),
    lambda X, Y: sketchlearn.transport.sinkhorn(X=X, Y=Y, reg=0.5).plan,
    lambda X, Y: sketchlearn.thinning.kernel_thin(np.vstack([X, Y]), 8, bandwidth=1.0,
                                                  random_state=0),
], ids=["mmd", "sliced_wasserstein", "sinkhorn", "kernel_thin"])
def test_gpu_setting_returns_numpy_equal_to_the_cpu(call):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 0.5
    expected = call(X, Y)
    with config_context(device="gpu"):
        got = call(X, Y)
    assert isinstance(got, (np.ndarray, float))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------- the wrapper itself,
# with a stand-in for CuPy (its arrays are NumPy arrays of a class from a module named
# "cupy", which is how array-api-compat recognises CuPy arrays).


@pytest.fixture
def fake_gpu(monkeypatch):
    module = types.ModuleType("cupy")

    class ndarray(np.ndarray):  # noqa: N801  (CuPy's name)
        def get(self):
            return np.asarray(self).view(np.ndarray).copy()

    ndarray.__module__ = "cupy"
    module.ndarray = ndarray
    module.asarray = lambda a: np.array(a).view(ndarray)
    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.setattr(_array_api, "cupy_is_usable", lambda: True)
    return module


@dataclasses.dataclass
class _Result:
    plan: object
    cost: float


class _Pair(NamedTuple):
    first: object
    second: object


@public_function(arrays=("X", "clouds"), work=lambda X, scale=1.0, **_: np.size(X) * scale)
def _toy(X, clouds=None, *, scale=1.0, nested=False):
    """Reports where its arrays are; ``nested`` calls itself from inside."""
    inner = _toy(X, nested=False) if nested else None
    kinds = [type(X).__module__] + [type(c).__module__ for c in (clouds or [])]
    return _Pair(kinds, [_Result(X * scale, 1.0), {"x": X}, inner])


def test_gpu_setting_moves_the_named_arrays_and_brings_results_back(fake_gpu):
    X = np.arange(6.0).reshape(3, 2)
    clouds = [np.zeros((2, 2)), np.ones((5, 2))]
    with config_context(device="gpu"):
        kinds, (result, mapping, inner) = _toy(X.tolist(), clouds, scale=2.0, nested=True)
    assert kinds == ["cupy", "cupy", "cupy"]  # a list of rows too; clouds one by one
    assert type(result.plan) is np.ndarray and type(mapping["x"]) is np.ndarray
    np.testing.assert_array_equal(result.plan, 2 * X)
    # the nested call ran inside: it saw the moved array and did not move or return back
    assert inner.first == ["cupy"]
    assert type(inner.second[0].plan) is np.ndarray  # converted once, by the outer call


def test_auto_setting_moves_only_work_above_the_threshold(fake_gpu):
    X = np.zeros((10, 10))
    with config_context(device="auto", gpu_min_work=1000):
        assert _toy(X, scale=5.0).first == ["numpy"]  # work 500
        assert _toy(X, scale=20.0).first == ["cupy"]  # work 2000
    with config_context(device="cpu"):
        assert _toy(X, scale=1e9).first == ["numpy"]


def test_arrays_already_on_the_gpu_stay_and_come_back_as_they_are(fake_gpu):
    X = fake_gpu.asarray(np.ones((2, 2)))
    with config_context(device="gpu"):
        kinds, (result, _, _) = _toy(X)
    assert kinds == ["cupy"] and type(result.plan) is fake_gpu.ndarray


def test_the_wrapper_keeps_the_signature_and_checks_its_declaration():
    assert list(inspect.signature(_toy).parameters) == ["X", "clouds", "scale", "nested"]
    assert "Reports where" in _toy.__doc__
    with pytest.raises(TypeError, match="no parameters"):
        public_function(arrays=("Z",))(lambda X: X)


def test_lsa_moves_to_the_gpu_only_with_enough_chains():
    """One thread per chain on the GPU (issue 16, defect 7): a fit of one or two chains
    counts as no work for device="auto", however many samples it has."""
    from sketchlearn.linear_model._lsa import GPU_MIN_CHAINS, _lsa_work, gpu_work

    A = np.zeros((10**5, 3, 3))
    assert _lsa_work(A, n_epochs=100) == 0.0
    assert _lsa_work((np.zeros((10**5, 3)), np.zeros((10**5, 3))), richardson=True) == 0.0
    assert gpu_work(10**5, 2, 3, GPU_MIN_CHAINS - 1) == 0.0
    assert gpu_work(10**5, 2, 3, GPU_MIN_CHAINS) == 10**5 * 2 * 3 * GPU_MIN_CHAINS
