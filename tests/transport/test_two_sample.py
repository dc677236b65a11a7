"""Permutation two-sample test: the p-value's definition, its level under the null,
the exact permutation p-value on a tiny case, bad input, and no mutation of input.

The p-value is ``(1 + #{T_b >= T}) / (1 + B)`` over ``B`` random permutations.
Under the null the observed statistic and the ``B`` permuted ones are exchangeable,
so ``P(p <= j / (B + 1)) = j / (B + 1)`` (up to ties, which only make it smaller) and
``P(p <= alpha) <= alpha`` for every alpha. ``#{T_b >= T} / B`` (the "+1" dropped)
returns 0 and rejects too often: with B = 4 at alpha = 0.05 it rejects with
probability 1/5 instead of never.
"""

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from sketchlearn.transport import TwoSampleResult, two_sample_test

METRICS = ("energy", "sliced")


def _energy_1d(a, b):
    """Squared energy distance of two 1-D samples (SciPy returns its square root)."""
    return scipy.stats.energy_distance(a, b) ** 2


def _w2sq_1d(a, b):
    """Squared 2-Wasserstein distance of two 1-D samples of equal size: sorted pairs."""
    return float(np.mean((np.sort(a) - np.sort(b)) ** 2))


ORACLE = {"energy": _energy_1d, "sliced": _w2sq_1d}


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("B", [1, 4, 99])
def test_separated_samples_give_the_smallest_pvalue(metric, B):
    """Far apart samples: no permutation reaches the observed statistic, so the p-value
    is exactly 1 / (B + 1), never 0."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 2))
    Y = rng.normal(size=(12, 2)) + 50.0
    res = two_sample_test(X, Y, metric=metric, n_permutations=B, n_projections=5,
                          random_state=0)
    assert isinstance(res, TwoSampleResult)
    assert res.pvalue == 1 / (B + 1)
    assert res.statistic > 0


@pytest.mark.parametrize("metric", METRICS)
def test_null_level_and_pvalue_grid(metric):
    """Under the null (both samples N(0, I_2), 6 + 6 points), over 200 seeds:

    - every p-value is one of j / (B + 1), j = 1..B+1 (so >= 1/(B + 1));
    - the rejection rate at alpha in {0.05, 0.1, 0.25} is at most alpha + 3 standard
      errors (sqrt(alpha (1 - alpha) / 200)): with B = 4 the correct rates are 0, 0
      and 0.2, the "+1"-less p-value's 0.2, 0.2 and 0.4;
    - at the grid points alpha = j / 5 the rate is alpha within 3 standard errors (it
      is exact there; a p-value that is too large would fall below)."""
    B, S = 4, 200
    p = np.empty(S)
    for s in range(S):
        g = np.random.default_rng(1000 + s)
        X, Y = g.normal(size=(6, 2)), g.normal(size=(6, 2))
        p[s] = two_sample_test(X, Y, metric=metric, n_permutations=B, n_projections=5,
                               random_state=s).pvalue
    j = p * (B + 1)
    np.testing.assert_allclose(j, np.round(j), atol=1e-9)
    assert p.min() >= 1 / (B + 1) - 1e-15 and p.max() <= 1.0
    for alpha in (0.05, 0.1, 0.25):
        rate = np.mean(p <= alpha)
        assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / S), (alpha, rate)
    for alpha in (0.2, 0.4, 0.6, 0.8):
        rate = np.mean(p <= alpha + 1e-12)
        assert abs(rate - alpha) <= 3 * math.sqrt(alpha * (1 - alpha) / S), (alpha, rate)


def _exact_case():
    g = np.random.default_rng(1)
    return g.normal(size=4), g.normal(size=4) + 0.8


@pytest.mark.parametrize("metric", METRICS)
def test_pvalue_equals_exact_permutation_pvalue_in_expectation(metric):
    """4 + 4 points in 1-D: the exact permutation p-value p* is the fraction of the
    C(8, 4) = 70 splits whose statistic (computed here with SciPy's energy distance,
    or sorted pairs for W_2^2) is at least the observed one. A random permutation
    gives a uniformly random split, so ``#{T_b >= T}`` is Binomial(B, p*) and the
    p-value's mean is (1 + B p*) / (1 + B) exactly.

    Over 200 seeds with B = 9, the mean p-value is within 4 standard errors of that
    (the "+1"-less p-value's mean is p*, 11 standard errors away); with B = 2000
    one p-value is within 4 standard errors of p*."""
    x, y = _exact_case()
    f = ORACLE[metric]
    z = np.r_[x, y]
    t0 = f(x, y)
    splits = []
    for c in itertools.combinations(range(8), 4):
        mask = np.zeros(8, dtype=bool)
        mask[list(c)] = True
        splits.append(f(z[mask], z[~mask]))
    p_star = np.mean(np.array(splits) >= t0 * (1 - 1e-9))
    assert 0.1 < p_star < 0.5  # neither extreme, so the checks below have power
    X, Y = x[:, None], y[:, None]
    res = two_sample_test(X, Y, metric=metric, n_permutations=9, random_state=0)
    assert res.statistic == pytest.approx(t0, rel=1e-12)
    B, S = 9, 200
    p = np.array([two_sample_test(X, Y, metric=metric, n_permutations=B,
                                  random_state=s).pvalue for s in range(S)])
    expected = (1 + B * p_star) / (1 + B)
    se = B / (B + 1) * math.sqrt(p_star * (1 - p_star) / (B * S))
    assert abs(p.mean() - expected) <= 4 * se, (p.mean(), expected, se)
    B = 2000
    big = two_sample_test(X, Y, metric=metric, n_permutations=B, random_state=1).pvalue
    assert abs(big - p_star) <= 4 * math.sqrt(p_star * (1 - p_star) / B) + 1 / (B + 1)


def test_same_seed_same_result_and_statistic_oracle_in_2d():
    """Reproducible for a seed; in 2-D the energy statistic averages the 1-D energy
    distances of the projections divided by E|theta_1| = 2/pi (d = 2)."""
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(15, 2)), rng.normal(size=(11, 2)) + [0.5, 0.0]
    a = two_sample_test(X, Y, n_permutations=30, n_projections=4000, random_state=3)
    b = two_sample_test(X, Y, n_permutations=30, n_projections=4000, random_state=3)
    assert a == b
    # the full energy distance from pairwise Euclidean distances
    from scipy.spatial.distance import cdist

    full = 2 * cdist(X, Y).mean() - cdist(X, X).mean() - cdist(Y, Y).mean()
    # Monte-Carlo over 4000 directions: relative error about 1/sqrt(4000) times the
    # spread of the 1-D distances (measured below 2 %)
    assert a.statistic == pytest.approx(full, rel=0.05)


def test_bad_input():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 2)), rng.normal(size=(9, 2))
    for B in (0, -3):
        with pytest.raises(ValueError, match="'n_permutations' parameter of two_sample_test"):
            two_sample_test(X, Y, n_permutations=B)
    for B in (2.5, True, "10", None):
        with pytest.raises(TypeError, match="'n_permutations' parameter .* must be an int"):
            two_sample_test(X, Y, n_permutations=B)
    with pytest.raises(ValueError, match="n_projections"):
        two_sample_test(X, Y, n_projections=0)
    with pytest.raises(ValueError, match="'metric' parameter of two_sample_test must be"):
        two_sample_test(X, Y, metric="mmd")
    with pytest.raises(ValueError, match="same number of columns"):
        two_sample_test(X, Y[:, :1])
    with pytest.raises(ValueError, match="2-D"):
        two_sample_test(X[:, 0], Y[:, 0])
    with pytest.raises(ValueError, match="2-D"):
        two_sample_test(X[None], Y[None])
    with pytest.raises(ValueError, match="0 sample"):
        two_sample_test(np.empty((0, 2)), Y)
    with pytest.raises(ValueError, match="0 sample"):
        two_sample_test(X, np.empty((0, 2)))
    for bad_value, word in ((np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")):
        Xb = X.copy()
        Xb[3, 1] = bad_value
        with pytest.raises(ValueError, match=word):
            two_sample_test(Xb, Y)
        with pytest.raises(ValueError, match=word):
            two_sample_test(Y, Xb)


@pytest.mark.parametrize("metric", METRICS)
def test_input_not_modified(metric):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 3))
    Y = np.asfortranarray(rng.normal(size=(10, 3)).astype(np.float32))
    Z = rng.normal(size=(20, 6))[::2, ::2]  # a non-contiguous view
    copies = [X.copy(), Y.copy(), Z.copy()]
    two_sample_test(X, Y, metric=metric, n_permutations=5, random_state=0)
    two_sample_test(Z, X, metric=metric, n_permutations=5, random_state=0)
    for before, after in zip(copies, (X, Y, Z), strict=True):
        np.testing.assert_array_equal(before, after)
    assert Y.dtype == np.float32 and Y.flags.f_contiguous
