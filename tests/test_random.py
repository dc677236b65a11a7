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


def test_row_keyed_draws_depend_on_the_global_row_only():
    """Rows drawn at once, in chunks across block boundaries, or as part of a longer
    sequence get the same numbers; other seeds and streams get other numbers."""
    from sketchlearn._random import ROW_BLOCK, row_keyed

    def signs(g, size):
        return g.choice(np.array([-1.0, 1.0]), size=size)

    n = 2 * ROW_BLOCK + 1234
    whole = row_keyed(5, 0, 0, n, signs)
    assert whole.shape == (n,)
    cuts = [0, 17, ROW_BLOCK - 1, ROW_BLOCK + 3, 2 * ROW_BLOCK, n]
    parts = [row_keyed(5, 0, a, b, signs) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(row_keyed(5, 0, 0, n + 999, signs)[:n], whole)
    assert row_keyed(5, 0, 3, 3, signs).shape == (0,)
    assert not np.array_equal(row_keyed(6, 0, 0, n, signs), whole)
    assert not np.array_equal(row_keyed(5, 1, 0, n, signs), whole)
    # each block is a fresh generator: signs are balanced within every block
    assert abs(whole[:ROW_BLOCK].mean()) < 5 / np.sqrt(ROW_BLOCK)
