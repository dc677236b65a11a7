"""Checks every public estimator and module must pass.

``ESTIMATORS`` collects one default instance of every public scikit-learn
estimator; each subpackage adds its classes to ``__all__`` and they are picked up
here (with any expected check failure listed in ``EXPECTED_FAILED_CHECKS``).
"""

import doctest
import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import sketchlearn

PUBLIC_MODULES = sorted(
    f"sketchlearn.{m.name}" for m in pkgutil.iter_modules(sketchlearn.__path__)
    if not m.name.startswith("_") and m.ispkg
)

# estimator class name -> {check name: why it is expected to fail}
EXPECTED_FAILED_CHECKS: dict = {}


def _public_estimators():
    found = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found[obj.__name__] = obj
    return [cls() for _, cls in sorted(found.items())]


ESTIMATORS = _public_estimators()


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_public_modules_are_found():
    assert {"sketchlearn.kernels", "sketchlearn.metrics", "sketchlearn.datasets"} <= set(
        PUBLIC_MODULES)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_documented(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        obj = getattr(mod, name)
        doc = inspect.getdoc(obj) or ""
        assert "Examples" in doc or not callable(obj), f"{module}.{name} has no Examples section"


def test_import_does_not_pull_gpu_dask_or_matplotlib():
    code = (
        "import sys, sketchlearn, sketchlearn.cli; "
        + "".join(f"import {m}; " for m in PUBLIC_MODULES)
        + "bad = [m for m in ('cupy', 'dask', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def _docstring_examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    for module in ["sketchlearn", *PUBLIC_MODULES]:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if callable(obj):
                for test in finder.find(obj, f"{module}.{name}", globs={}):
                    if test.examples:
                        yield pytest.param(test, id=test.name)


@pytest.mark.parametrize("doc_test", list(_docstring_examples()))
def test_docstring_examples_run(doc_test):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(doc_test)
    assert runner.failures == 0, f"{doc_test.name}: {runner.failures} failing example(s)"
