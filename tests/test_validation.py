import numbers

import numpy as np
import pytest
import scipy.sparse as sp

from sketchlearn._validation import (
    check_array,
    check_same_n_features,
    check_scalar,
    check_weights,
)

from .conftest import as_xp, to_np


def test_check_array_keeps_float32_and_casts_ints(xp):
    X32 = as_xp(xp, np.ones((3, 2)), "float32")
    assert check_array(X32) is X32
    Xi = as_xp(xp, np.ones((3, 2), dtype=np.int64))
    out = check_array(Xi)
    assert out.dtype == xp.float64 and Xi.dtype == xp.int64  # input untouched


def test_check_array_accepts_lists():
    np.testing.assert_array_equal(check_array([[1, 2], [3, 4]]), [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("X, err, match", [
    (np.ones(3), ValueError, r"2-D array.*reshape\(-1, 1\)"),
    (np.ones((2, 2, 2)), ValueError, "2-D array"),
    (np.ones((0, 2)), ValueError, "0 sample"),
    (np.ones((2, 0)), ValueError, "0 feature"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN .first at row 0"),
    (np.array([[1.0, 0.0], [np.inf, 1.0]]), ValueError, "infinity .first at row 1"),
    (np.array([["a", "b"]]), TypeError, "real numbers"),
    (np.ones((2, 2), dtype=complex), TypeError, "complex"),
    (sp.csr_matrix(np.eye(2)), TypeError, "sparse"),
    ([[1.0], [1.0, 2.0]], TypeError, "array of numbers"),
])
def test_check_array_errors_name_the_problem(X, err, match):
    with pytest.raises(err, match=match):
        check_array(X)


def test_check_array_nonfinite_allowed_and_1d():
    out = check_array(np.array([np.nan, 1.0]), "w", ensure_2d=False, allow_nonfinite=True)
    assert np.isnan(out[0])
    with pytest.raises(ValueError, match="w contains NaN .first at index 1"):
        check_array(np.array([1.0, np.nan]), "w", ensure_2d=False)


def test_same_n_features():
    check_same_n_features(np.ones((2, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="X has 3 features but Y has 2"):
        check_same_n_features(np.ones((2, 3)), np.ones((5, 2)))


def test_check_weights(xp):
    w = check_weights(as_xp(xp, [0.25, 0.75]), 2, xp=xp)
    np.testing.assert_allclose(to_np(w), [0.25, 0.75])
    np.testing.assert_allclose(to_np(check_weights([1, 3], 2, normalize=True)), [0.25, 0.75])
    with pytest.raises(ValueError, match="sums to 4, not 1"):
        check_weights([1.0, 3.0], 2)
    with pytest.raises(ValueError, match="negative"):
        check_weights([-0.5, 1.5], 2)
    with pytest.raises(ValueError, match="sums to 0"):
        check_weights([0.0, 0.0], 2, normalize=True)
    with pytest.raises(ValueError, match="length 3, but the data has 2"):
        check_weights([0.2, 0.3, 0.5], 2)


@pytest.mark.parametrize("value, kwargs, err, match", [
    (0.0, {"lower": 0, "lower_inclusive": False}, ValueError, r"in \(0, inf\]"),
    (2, {"upper": 1}, ValueError, r"in \[-inf, 1\]"),
    (True, {}, TypeError, "real number"),
    (1.5, {"kind": numbers.Integral}, TypeError, "an integer"),
    (float("nan"), {}, ValueError, "finite"),
])
def test_check_scalar(value, kwargs, err, match):
    with pytest.raises(err, match=match):
        check_scalar(value, "p", **kwargs)
    assert check_scalar(0.5, "p", lower=0, upper=1) == 0.5


def test_warnings_point_at_the_line_that_called_sketchlearn():
    """Through the public-function wrapper, an estimator and helpers alike, a warning is
    attributed to the caller's line (user_stacklevel), not to sketchlearn's code."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from sketchlearn.completion import AltMinCompleter
    from sketchlearn.transport import sinkhorn

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + 1.0
    M = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20))
    M[rng.random(M.shape) < 0.3] = np.nan
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sinkhorn(X=X, Y=Y, reg=0.01, max_iter=3, eps_scaling=False)
        AltMinCompleter(rank=3, max_iter=1, tol=0.0, random_state=0).fit(M)
    found = [w for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(found) == 2
    assert {w.filename for w in found} == {__file__}


def test_thinning_parameters_are_checked_once(monkeypatch, rng):
    """kernel_thin checks its parameters itself; under KernelThinning.fit, which checked
    the estimator's, it does not check them again (scikit-learn's skip of nested
    validation), and invalid values still fail with scikit-learn's error."""
    import sklearn.utils._param_validation as pv

    from sketchlearn.thinning import KernelThinning, kernel_thin

    calls = []
    original = pv.validate_parameter_constraints

    def counting(constraints, params, caller_name):
        calls.append(caller_name)
        return original(constraints, params, caller_name=caller_name)

    monkeypatch.setattr(pv, "validate_parameter_constraints", counting)
    X = rng.normal(size=(64, 2))
    kernel_thin(X, 8, bandwidth=1.0, random_state=0)
    assert calls == ["kernel_thin"]
    calls.clear()
    KernelThinning(n_out=8, bandwidth=1.0, random_state=0).fit(X)
    assert calls == []
    with pytest.raises(ValueError, match="'alpha' parameter of kernel_thin"):
        kernel_thin(X, 8, alpha=2.0)
    with pytest.raises(ValueError, match="'alpha' parameter of KernelThinning"):
        KernelThinning(alpha=2.0).fit(X)


def _fits_calling_their_twin():
    from sketchlearn.ensemble import RidgeEnsemble, SketchedLeastSquares
    from sketchlearn.linear_model import ExtendedGaussMarkovRegressor, GaussMarkovRegressor
    from sketchlearn.sketching import SketchTransformer
    from sketchlearn.transport import OTMapper

    return [
        (GaussMarkovRegressor(), "gauss_markov"),
        (ExtendedGaussMarkovRegressor(tau=0.5), "filter_factors"),
        (SketchTransformer(n_components=3, random_state=0), "make_sketch"),
        (RidgeEnsemble(sketch="gaussian", sketch_size=20, random_state=0), "make_sketch"),
        (SketchedLeastSquares(sketch="gaussian", sketch_size=20, random_state=0),
         "make_sketch"),
        (OTMapper(random_state=0, max_iter=50), "sinkhorn"),
    ]


@pytest.mark.parametrize("estimator, twin", _fits_calling_their_twin(),
                         ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_estimators_do_not_check_their_twins_parameters_again(monkeypatch, rng, estimator,
                                                              twin):
    """Each fit checks its parameters (``_parameter_constraints``) and calls a public
    function that checks the same ones: under ``_fit_context(prefer_skip_nested_validation
    =True)`` the function does not check them a second time; called alone, it does."""
    import warnings

    import sklearn.utils._param_validation as pv

    calls = []
    original = pv.validate_parameter_constraints

    def counting(constraints, params, caller_name):
        calls.append(caller_name)
        return original(constraints, params, caller_name=caller_name)

    monkeypatch.setattr(pv, "validate_parameter_constraints", counting)
    X = rng.normal(size=(40, 5))
    y = X @ rng.normal(size=5) + rng.normal(size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if twin == "sinkhorn":
            estimator.fit(X[:, :2], X_target=X[:30, 2:4])
        elif twin == "make_sketch" and not hasattr(estimator, "predict"):
            estimator.fit(X)
        else:
            estimator.fit(X, y)
    assert twin not in calls
    from sketchlearn.linear_model import filter_factors, gauss_markov
    from sketchlearn.sketching import make_sketch
    from sketchlearn.transport import sinkhorn

    alone = {"gauss_markov": lambda: gauss_markov(X, y),
             "filter_factors": lambda: filter_factors(np.ones(3), "nuclear", 0.5),
             "make_sketch": lambda: make_sketch("gaussian", 4, 10),
             "sinkhorn": lambda: sinkhorn(X=X[:5], Y=X[5:9], reg=1.0)}
    alone[twin]()
    assert calls[-1] == twin
