import numpy as np
import pytest

from sketchlearn.datasets import make_gaussian_mixture


def test_mixture_shapes_means_and_component_spread():
    X, labels, means = make_gaussian_mixture(20000, n_components=8, scale=0.5, random_state=0)
    assert X.shape == (20000, 2) and labels.shape == (20000,) and means.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 4.0)
    for c in range(8):
        rows = X[labels == c]
        np.testing.assert_allclose(rows.mean(axis=0), means[c], atol=0.05)
        np.testing.assert_allclose(rows.std(axis=0), 0.5, rtol=0.08)


def test_mixture_is_reproducible_and_any_dimension():
    a = make_gaussian_mixture(50, n_features=5, random_state=3)[0]
    b = make_gaussian_mixture(50, n_features=5, random_state=3)[0]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 5)


@pytest.mark.parametrize("kwargs", [{"n_samples": 0}, {"scale": 0.0}, {"n_components": 1.5},
                                    {"n_features": True}, {"spread": -1.0},
                                    {"random_state": "seed"}])
def test_mixture_rejects_bad_parameters(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=f"'{name}' parameter of make_gaussian_mixture must be"):
        make_gaussian_mixture(**kwargs)
