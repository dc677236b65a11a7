"""Exact Wasserstein distance: bad input, inputs left alone, POT as the oracle."""

import numpy as np
import ot
import pytest

from sketchlearn.transport import wasserstein


def _clouds(rng):
    X = rng.normal(size=(5, 2))
    return X, X + 1.0


@pytest.mark.parametrize("change, match", [
    (lambda X, Y: ((np.r_[X[:4], [[np.nan, 0.0]]], Y), {}), "NaN"),
    (lambda X, Y: ((np.r_[X[:4], [[np.inf, 0.0]]], Y), {}), "infinity"),
    (lambda X, Y: ((X, Y[:, :1]), {}), "same number of columns"),
    (lambda X, Y: ((X[:, 0], Y), {}), "2-D"),
    (lambda X, Y: ((X[:0], Y), {}), "0 sample"),
    (lambda X, Y: ((X, Y), {"a": -np.ones(5)}), "negative"),
    (lambda X, Y: ((X, Y), {"a": np.ones(4) / 4}), "length 4"),
    (lambda X, Y: ((X, Y), {"a": np.ones(5)}), "sums to 5"),
    (lambda X, Y: ((X, Y), {"p": 0}), "'p' parameter of wasserstein must be"),
])
def test_bad_input_is_explained(change, match, rng):
    args, kwargs = change(*_clouds(rng))
    with pytest.raises(ValueError, match=match):
        wasserstein(*args, **kwargs)


def test_equals_pot_and_leaves_inputs_alone(rng):
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + 0.5
    a, b = rng.random(30), rng.random(20)
    a, b = a / a.sum(), b / b.sum()
    before = [v.copy() for v in (X, Y, a, b)]
    for p in (1, 2):
        expected = ot.emd2(a, b, ot.dist(X, Y, metric="euclidean") ** p) ** (1 / p)
        assert wasserstein(X, Y, a, b, p=p) == pytest.approx(expected, rel=1e-9)
    for v, v0 in zip((X, Y, a, b), before, strict=True):
        np.testing.assert_array_equal(v, v0)
