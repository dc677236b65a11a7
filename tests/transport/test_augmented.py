import numpy as np
import pytest

from sketchlearn.metrics import augmented_sliced_wasserstein as metrics_asw
from sketchlearn.transport import augmented_sliced_wasserstein, sliced_wasserstein


def _clouds(seed, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Y = rng.normal(size=(n, 3)) * [1.0, 1.0, 2.0] + [0.5, 0.0, 0.0]
    return X, Y


def test_asw_of_a_cloud_with_itself_is_zero(rng):
    X = rng.normal(size=(120, 3))
    assert augmented_sliced_wasserstein(X, X, random_state=0) == 0.0
    a = rng.random(120)
    a /= a.sum()
    assert augmented_sliced_wasserstein(X, X, a, a, p=1, random_state=1) == 0.0


@pytest.mark.parametrize("slices", ["mc", "orthogonal", "rqmc", "cv-upper"])
def test_identity_feature_map_is_sliced_wasserstein(slices, rng):
    X, Y = rng.normal(size=(80, 4)), rng.exponential(size=(60, 4))
    a = rng.random(80)
    a /= a.sum()
    kw = dict(p=1.5, n_projections=64, slices=slices, random_state=7, return_std=True)
    assert augmented_sliced_wasserstein(X, Y, a, feature_map=lambda Z: Z, **kw) == \
        sliced_wasserstein(X, Y, a, **kw)


def test_fixed_feature_map_is_sliced_wasserstein_of_the_lifted_points(rng):
    X, Y = rng.normal(size=(50, 2)), rng.normal(size=(70, 2)) + 1.0

    def lift(Z):
        return np.concatenate([Z, np.sin(Z)], axis=1)

    assert augmented_sliced_wasserstein(X, Y, feature_map=lift, random_state=3) == \
        sliced_wasserstein(lift(X), lift(Y), random_state=3)


def test_fitted_map_exceeds_sw_and_the_random_map():
    # The random initial map (n_iter=0) shrinks the distance below SW (the slices
    # of d + k dimensions dilute the original coordinates), so exceeding SW is
    # the work of the ascent, not of the lift.
    for seed in range(3):
        X, Y = _clouds(seed)
        fitted = np.mean([augmented_sliced_wasserstein(X, Y, random_state=r)
                          for r in range(3)])
        random_map = np.mean([augmented_sliced_wasserstein(X, Y, n_iter=0, random_state=r)
                              for r in range(3)])
        sw = np.mean([sliced_wasserstein(X, Y, random_state=r) for r in range(3)])
        assert random_map < sw < fitted
        assert fitted > 1.5 * sw


def test_asw_separates_a_ring_from_a_gaussian_with_the_same_covariance():
    rng = np.random.default_rng(0)
    n = 400
    t = rng.uniform(0, 2 * np.pi, n)
    ring = np.c_[2 * np.cos(t), 2 * np.sin(t)] + rng.normal(scale=0.1, size=(n, 2))
    s = np.sqrt(ring.var(axis=0).mean())
    G1, G2 = rng.normal(size=(n, 2)) * s, rng.normal(size=(n, 2)) * s
    np.testing.assert_allclose(np.cov(ring.T), np.cov(G1.T), atol=0.35)

    def ratio(dist):  # signal (ring vs Gaussian) over null (Gaussian vs Gaussian)
        sig = np.mean([dist(ring, G1, random_state=r) for r in range(4)])
        null = np.mean([dist(G2, G1, random_state=r) for r in range(4)])
        return sig / null

    r_asw, r_sw = ratio(augmented_sliced_wasserstein), ratio(sliced_wasserstein)
    assert r_asw > 1.3 * r_sw  # measured: 4.0 vs 2.8


def test_asw_symmetric_in_value_and_float32(rng):
    X, Y = _clouds(5, 100)
    v64 = augmented_sliced_wasserstein(X, Y, random_state=0)
    # The fitting objective is symmetric, so swapping the samples only reorders sums.
    assert augmented_sliced_wasserstein(Y, X, random_state=0) == pytest.approx(v64, rel=1e-6)
    b = rng.random(100)
    b /= b.sum()
    assert augmented_sliced_wasserstein(X, Y, None, b, random_state=2) == pytest.approx(
        augmented_sliced_wasserstein(Y, X, b, None, random_state=2), rel=1e-6)
    v32 = augmented_sliced_wasserstein(X.astype(np.float32), Y.astype(np.float32),
                                       random_state=0)
    assert v32 == pytest.approx(v64, rel=1e-3)
    assert metrics_asw is augmented_sliced_wasserstein
    value, se = augmented_sliced_wasserstein(X, Y, random_state=0, return_std=True,
                                             n_features=2, n_hidden=8)
    assert 0 < se < 0.2 * value
    # Unequal sizes and weights use the merge path in the fit as well.
    b = rng.random(150)
    w = augmented_sliced_wasserstein(X, rng.normal(size=(150, 3)), b=b / b.sum(), p=1,
                                     random_state=0)
    assert np.isfinite(w) and w > 0


def test_asw_bad_input(rng):
    X, Y = rng.normal(size=(20, 2)), rng.normal(size=(25, 2))
    with pytest.raises(ValueError,
                       match="'feature_map' parameter of augmented_sliced_wasserstein must be"):
        augmented_sliced_wasserstein(X, Y, feature_map="tanh")
    with pytest.raises(ValueError, match="same number"):
        augmented_sliced_wasserstein(X, Y, feature_map=lambda Z: Z[:, : Z.shape[0] % 2 + 1])
    with pytest.raises(ValueError, match=r"feature_map\(X\) must return a 2-D array"):
        augmented_sliced_wasserstein(X, Y, feature_map=lambda Z: Z[:, 0])
    with pytest.raises(ValueError, match="'reg' parameter of augmented_sliced"):
        augmented_sliced_wasserstein(X, Y, reg=-1.0)
    with pytest.raises(ValueError, match="'learning_rate' parameter of augmented_sliced"):
        augmented_sliced_wasserstein(X, Y, learning_rate=0.0)
    with pytest.raises(ValueError, match="'n_features' parameter of augmented_sliced"):
        augmented_sliced_wasserstein(X, Y, n_features=0)
    with pytest.raises(ValueError, match="'n_projections' parameter of augmented_sliced"):
        augmented_sliced_wasserstein(X, Y, n_projections=0)
    with pytest.raises(ValueError, match="'p' parameter of augmented_sliced"):
        augmented_sliced_wasserstein(X, Y, p=0.5)
    for name, bad in (("n_hidden", 0), ("n_iter", -1), ("n_iter", True), ("slices", "sobol"),
                      ("learning_rate", np.inf)):
        with pytest.raises(ValueError, match=f"'{name}' parameter of augmented_sliced"):
            augmented_sliced_wasserstein(X, Y, **{name: bad})
    with pytest.raises(ValueError, match="features"):
        augmented_sliced_wasserstein(X, rng.normal(size=(25, 3)))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_hand_derived_gradient_matches_finite_differences(weighted, p, rng):
    from sketchlearn.transport._augmented import _objective, _TanhLift
    from sketchlearn.transport._slices import make_directions

    X, Y = rng.normal(size=(40, 2)), rng.normal(size=(40 if not weighted else 30, 2)) + 0.7
    a = b = None
    if weighted:
        a, b = rng.random(40) + 0.2, rng.random(30) + 0.2
        a, b = a / a.sum(), b / b.sum()
    lift = _TanhLift(rng, 2, 5, 3, X.mean(0), 1.3)
    dirs = make_directions(5, 16, "mc", rng)[0]
    lam = 0.2
    value, grads = _objective(lift, X, Y, a, b, dirs, p, lam)
    h = 1e-6
    for q, g in zip(lift.params(), grads, strict=True):
        flat, gflat = q.reshape(-1), g.reshape(-1)
        for idx in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + h
            up = _objective(lift, X, Y, a, b, dirs, p, lam)[0]
            flat[idx] = old - h
            down = _objective(lift, X, Y, a, b, dirs, p, lam)[0]
            flat[idx] = old
            assert gflat[idx] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-7)


def test_asw_does_not_modify_its_inputs(rng):
    X, Y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 1.0
    a, b = rng.random(60), rng.random(50)
    a, b = a / a.sum(), b / b.sum()
    before = [v.copy() for v in (X, Y, a, b)]
    augmented_sliced_wasserstein(X, Y, a, b, random_state=0)
    for v, v0 in zip((X, Y, a, b), before, strict=True):
        np.testing.assert_array_equal(v, v0)
