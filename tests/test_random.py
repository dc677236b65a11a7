import numpy as np
import pytest

from sketchlearn._array_api import get_namespace
from sketchlearn._random import as_generator, random_normal, random_permutation, random_uniform

from .conftest import to_np


def test_same_seed_same_stream():
    assert as_generator(3).random() == as_generator(3).random()


def test_generator_is_used_as_is_and_advanced():
    g = np.random.default_rng(0)
    assert as_generator(g) is g


def test_random_state_seeds_a_generator_and_advances():
    rs = np.random.RandomState(0)
    a = as_generator(rs).random()
    b = as_generator(rs).random()
    assert a != b
    assert as_generator(np.random.RandomState(0)).random() == a


@pytest.mark.parametrize("bad, err", [(-1, ValueError), ("seed", TypeError), (1.5, TypeError)])
def test_bad_random_state(bad, err):
    with pytest.raises(err, match="random_state"):
        as_generator(bad)


def test_draws_land_in_the_callers_namespace_with_identical_values(xp):
    normal = random_normal(as_generator(1), (4, 2), xp, dtype=xp.float32)
    uniform = random_uniform(as_generator(1), 5, xp)
    perm = random_permutation(as_generator(1), 7, xp)
    assert get_namespace(normal) is get_namespace(xp.asarray([0.0]))
    assert normal.dtype == xp.float32
    np.testing.assert_allclose(to_np(normal),
                               np.random.default_rng(1).standard_normal((4, 2)), rtol=1e-6)
    np.testing.assert_array_equal(to_np(uniform), np.random.default_rng(1).random(5))
    assert sorted(to_np(perm).tolist()) == list(range(7))
