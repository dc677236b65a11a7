"""The CuPy thinning kernels against their array-API references, and kernel thinning
and Compress++ on CuPy against NumPy for the same seed (run only where CuPy sees a
GPU; skipped elsewhere by ``tests/conftest.py``).

The cases cover both instances of every template (float32 and float64 data), the
pair of a halving step in shared memory (d = 3, d = 70) and in global scratch
(d = 2600, beyond the 40 KiB of shared memory), one block per walk (many walks, or
short walks) and the few-walks scheme (one or two walks of more than 128 pairs: the
sums over earlier blocks of pairs computed on the whole GPU by ``halve_prefix``).
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchlearn.kernels import GaussianKernel, LaplaceKernel, MaternKernel, SincKernel
from sketchlearn.thinning import compress_thin, kernel_thin
from sketchlearn.thinning._core import (
    _round_log_terms,
    _walk_gives_mean,
    coreset_sums_op,
    halve_round_op,
    halve_with_sums_op,
    refine_halves_op,
    split_kernel,
    swap_pass_op,
)
from sketchlearn.thinning._reference import (
    coreset_sums_reference,
    halve_round_reference,
    halve_with_sums_reference,
    refine_halves_reference,
    swap_pass_reference,
)

pytestmark = pytest.mark.gpu

# (n points, d, walks, walk length): short walks (one block each), many walks, one and
# two long walks (blocks of 128 pairs, halve_prefix), d beyond the 64 of the old
# shared buffer, and d beyond the shared-memory budget of the pair.
WALKS = [
    (96, 3, 2, 48),
    (120, 3, 40, 2),
    (600, 3, 1, 512),
    (700, 2, 2, 600),
    (90, 70, 3, 32),
    (300, 70, 1, 300),
    (24, 2600, 2, 12),
]
KERNELS = [GaussianKernel(1.0), MaternKernel(1.0, 1.5), LaplaceKernel(0.8)]
# Split kernels (target kernel, variant): KT+ with the Gaussian, whose power kernel
# exists at every d (a Matern's does not at d = 70).
SPLITS = [(MaternKernel(1.0, 2.5), "target"), (GaussianKernel(1.0), "kt+"),
          (LaplaceKernel(0.8), "target")]
SUM_SPLITS = [(GaussianKernel(1.3), "target"), (GaussianKernel(1.3), "kt+"),
              (MaternKernel(1.0, 1.5), "target")]
DTYPES = ["float32", "float64"]
# The GPU reads float32 data as float32 and computes in double from those values (as
# Numba does), where the reference computes in the data's dtype: the oracle for
# float32 data is the reference on the same values in float64 (exact decisions, sums
# to float64 rounding), tighter than the reference's own float32 arithmetic.
SUM_RTOL = 1e-10


def _as64(X):
    return np.asarray(X, dtype=np.float64)


@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


def _walk_inputs(rng, n, d, walks, length, dtype):
    X = rng.normal(size=(n, d)).astype(dtype)
    X *= 1.0 / np.sqrt(d)  # distances of order 1 at every d: decisions are not all ties
    seqs = np.stack([rng.permutation(n)[:length] for _ in range(walks)])
    u = rng.random((walks, length // 2))
    log_term = _round_log_terms(length, 1, 0.5)[0]
    return X, seqs, u, log_term


def _cupy_ns(cp):
    from sketchlearn._array_api import get_namespace

    return get_namespace(cp.zeros(1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WALKS, ids=lambda s: "n{}-d{}-w{}-L{}".format(*s))
@pytest.mark.parametrize("kernel, variant", SPLITS, ids=lambda v: repr(v))
def test_halve_round_equals_reference(cp, shape, dtype, kernel, variant, rng):
    X, seqs, u, log_term = _walk_inputs(rng, *shape, dtype)
    split = split_kernel(kernel, variant, X.shape[1])
    want = halve_round_reference(np, _as64(X), seqs, u, split, log_term)
    got = halve_round_op.implementation("cupy")(cp, cp.asarray(X), seqs, u, split, log_term)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # Device inputs are taken as well as host ones.
    again = halve_round_op.implementation("cupy")(cp, cp.asarray(X), cp.asarray(seqs),
                                                  cp.asarray(u), split, log_term)
    np.testing.assert_array_equal(again, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WALKS, ids=lambda s: "n{}-d{}-w{}-L{}".format(*s))
@pytest.mark.parametrize("kernel, variant", SUM_SPLITS, ids=lambda v: repr(v))
def test_halve_with_sums_equals_reference(cp, shape, dtype, kernel, variant, rng):
    X, seqs, u, log_term = _walk_inputs(rng, *shape, dtype)
    split = split_kernel(kernel, variant, X.shape[1])
    want_h, want_s = halve_with_sums_reference(np, _as64(X), seqs, u, split, log_term, kernel)
    got_h, got_s = halve_with_sums_op.implementation("cupy")(cp, cp.asarray(X), seqs, u, split,
                                                             log_term, kernel)
    np.testing.assert_array_equal(got_h, want_h)
    assert got_s.dtype == np.float64 and got_s.shape == want_s.shape
    np.testing.assert_allclose(got_s, want_s, rtol=SUM_RTOL, atol=0)


def test_halve_with_sums_refuses_a_foreign_target(cp, rng):
    X, seqs, u, log_term = _walk_inputs(rng, 40, 2, 1, 16, "float64")
    with pytest.raises(ValueError, match="not part of the split kernel"):
        halve_with_sums_op.implementation("cupy")(cp, cp.asarray(X), seqs, u,
                                                  GaussianKernel(1.0), log_term,
                                                  LaplaceKernel(1.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS + [SincKernel(2.0)], ids=repr)
@pytest.mark.parametrize("d", [3, 70])
def test_coreset_sums_equals_reference(cp, kernel, dtype, d, rng):
    X = (rng.normal(size=(200, d)) / np.sqrt(d)).astype(dtype)
    rows = np.stack([rng.choice(200, size=37, replace=False) for _ in range(6)])
    want = coreset_sums_reference(np, _as64(X), rows, kernel)
    got = coreset_sums_op.implementation("cupy")(cp, cp.asarray(X), rows, kernel)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=SUM_RTOL, atol=0)
    one = coreset_sums_op.implementation("cupy")(cp, cp.asarray(X), rows[:1], kernel)
    np.testing.assert_allclose(one, want[:1], rtol=SUM_RTOL, atol=0)


def _refine_inputs(rng, walks, size, d, dtype, kernel, with_mean):
    X = (rng.normal(size=(walks * size, d)) / np.sqrt(d)).astype(dtype)
    merged = rng.permutation(walks * size).reshape(walks, size)
    u = rng.random((walks, size // 2))
    log_term = _round_log_terms(size, 1, 0.5)[0]
    halves, sums = halve_with_sums_reference(np, _as64(X), merged, u, kernel, log_term,
                                             kernel)
    position = np.empty(walks * size, dtype=np.int64)
    position[merged] = np.arange(size)[None, :]
    halves_pos = position[halves]
    pick = np.all(halves_pos[0::2] == np.arange(0, size, 2), axis=1).astype(np.int64)
    mean_k = None
    if with_mean:
        mean_k = np.empty(merged.shape)
        mean_k[np.repeat(np.arange(walks), 2)[:, None], halves_pos] = sums / size
    return X, merged, halves_pos, pick, mean_k


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("with_mean", [False, True])
@pytest.mark.parametrize("walks, size, d", [(3, 64, 2), (2, 256, 3), (5, 16, 70)])
def test_refine_halves_equals_reference(cp, kernel, dtype, with_mean, walks, size, d, rng):
    X, merged, halves_pos, pick, mean_k = _refine_inputs(rng, walks, size, d, dtype, kernel,
                                                         with_mean)
    for start in (pick, 1 - pick):  # the walk's half, then the other one
        want = refine_halves_reference(np, _as64(X), merged, halves_pos, start, kernel, mean_k)
        got = refine_halves_op.implementation("cupy")(cp, cp.asarray(X), merged, halves_pos,
                                                      start, kernel, mean_k)
        assert isinstance(got, np.ndarray) and got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        # No repeats inside a block (the swap pass runs with unique=True).
        assert all(len(set(row.tolist())) == row.shape[0] for row in got)


@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("d", [3, 70])
def test_swap_pass_equals_reference(cp, unique, d, rng):
    kernel = MaternKernel(1.0, 1.5)
    X = rng.normal(size=(150, d)) / np.sqrt(d)
    pool = np.sort(rng.choice(150, size=120, replace=False))
    coreset = rng.choice(120, size=15, replace=False)
    P = X[pool]
    mean_k = kernel(P).mean(axis=1)
    want = swap_pass_reference(np, X, pool, coreset.copy(), mean_k, kernel, unique)
    got = swap_pass_op.implementation("cupy")(cp, cp.asarray(X), pool, coreset.copy(), mean_k,
                                              kernel, unique)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_thinning_operations_run_on_cupy(cp):
    # Every thinning operation has its CuPy path (no host round trip per slot), and
    # KT and Compress++ on CuPy fuse the walks with the kernel sums as Numba does.
    xp = _cupy_ns(cp)
    for op in (halve_round_op, halve_with_sums_op, coreset_sums_op, refine_halves_op,
               swap_pass_op):
        assert op.backend_for(xp) == "cupy", op.__name__
    kernel = GaussianKernel(1.0)
    assert _walk_gives_mean(xp, split_kernel(kernel, "kt+", 2), kernel)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_thin_on_cupy_equals_numpy(cp, dtype, seed, rng):
    X = rng.normal(size=(1024, 2)).astype(dtype)
    want, want_mmd = kernel_thin(X, 32, bandwidth=1.0, random_state=seed, return_mmd=True)
    got, got_mmd = kernel_thin(cp.asarray(X), 32, bandwidth=1.0, random_state=seed,
                               return_mmd=True)
    np.testing.assert_array_equal(np.asarray(got.get() if hasattr(got, "get") else got), want)
    np.testing.assert_allclose(got_mmd, want_mmd, rtol=1e-6 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_compress_thin_on_cupy_equals_numpy(cp, dtype, seed, rng):
    X = rng.normal(size=(4096, 3)).astype(dtype)
    want = compress_thin(X, 64, g=2, bandwidth=1.0, random_state=seed)
    got = compress_thin(cp.asarray(X), 64, g=2, bandwidth=1.0, random_state=seed)
    np.testing.assert_array_equal(np.asarray(got.get() if hasattr(got, "get") else got), want)
