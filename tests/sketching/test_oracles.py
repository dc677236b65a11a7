"""Sketch operators against matrices built independently of the code under test.

``toarray()`` is the operator applied to the identity, so comparing ``S @ X`` with it
checks only that two paths through the same code agree. Here the dense oracles are
built from the random draw itself (buckets and signs for CountSketch;
``scipy.linalg.hadamard`` with the signs and rows for SRHT; the closed-form
orthonormal DCT-II for SRDCT), and unbiasedness is checked with Monte-Carlo
tolerances set from the standard error of the mean, on coherent, non-centred
inputs (a constant column, spiky rows) where a sketch without its random signs is
visibly biased.

The oracles replay the draw of :func:`make_sketch` from the seed: CountSketch
draws the buckets (``integers(0, m, n)``) then the signs (``choice([-1, 1], n)``);
SRHT and SRDCT draw the signs, then ``m`` rows without replacement. A change in
that order changes which matrix a seed gives and must update these oracles.
"""

import math

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.sparse as sp
import scipy.stats

from sketchlearn.sketching import make_sketch, sketch

# Monte-Carlo means are compared with their expectation within Z standard errors
# (per entry; a few dozen entries per test: a false alarm has probability < 1e-4).
Z = 5.0


# Per-row draws (signs, buckets) are keyed by the global row: rows are cut into blocks
# of 2^16, block b drawing its 2^16 numbers from a generator seeded (row_seed, stream,
# b), with row_seed the first draw of the operator's generator (signs: stream 0,
# buckets: stream 1). Here n < 2^16: one block.
ROW_BLOCK = 2**16


def _row_signs(row_seed, n):
    g = np.random.default_rng([row_seed, 0, 0])
    return g.choice(np.array([-1.0, 1.0]), size=ROW_BLOCK)[:n]


def _countsketch_oracle(m, n, seed):
    row_seed = int(np.random.default_rng(seed).integers(2**62))
    buckets = np.random.default_rng([row_seed, 1, 0]).integers(0, m, size=ROW_BLOCK)[:n]
    signs = _row_signs(row_seed, n)
    A = np.zeros((m, n))
    A[buckets, np.arange(n)] = signs
    return A


def _subsampled_oracle(m, n, N, seed, T):
    """``sqrt(N/m) P T[:, :n] D``: signs ``D``, then ``m`` of the ``N`` rows of ``T``."""
    g = np.random.default_rng(seed)
    signs = _row_signs(int(g.integers(2**62)), n)
    rows = np.sort(g.choice(N, size=m, replace=False))
    return math.sqrt(N / m) * T[rows, :n] * signs[None, :]


def _dct2_ortho(n):
    """Orthonormal DCT-II matrix from its closed form: ``C[k, j] = sqrt(2/n) c_k
    cos(pi k (2j + 1) / (2n))`` with ``c_0 = 1/sqrt(2)``, ``c_k = 1`` otherwise."""
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    C = math.sqrt(2 / n) * np.cos(np.pi * k * (2 * j + 1) / (2 * n))
    C[0] /= math.sqrt(2)
    return C


def _oracle(kind, m, n, seed):
    if kind == "countsketch":
        return _countsketch_oracle(m, n, seed)
    if kind == "srht":
        N = 1 << (n - 1).bit_length()
        return _subsampled_oracle(m, n, N, seed, scipy.linalg.hadamard(N) / math.sqrt(N))
    return _subsampled_oracle(m, n, n, seed, _dct2_ortho(n))


def _coherent(n):
    """Non-centred, coherent columns: a constant, two spiky rows, a positive ramp."""
    X = np.zeros((n, 3))
    X[:, 0] = 1.0
    X[3, 1], X[n // 2 + 1, 1] = 10.0, -7.0
    X[:, 2] = 1.0 + np.arange(n) / n
    return X


def test_dct_oracle_is_scipy_dct():
    """The closed-form matrix is what ``scipy.fft.dct(norm="ortho")`` applies."""
    for n in (1, 2, 7, 16):
        np.testing.assert_allclose(_dct2_ortho(n),
                                   scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0),
                                   atol=1e-13)
        np.testing.assert_allclose(_dct2_ortho(n) @ _dct2_ortho(n).T, np.eye(n), atol=1e-13)


@pytest.mark.parametrize("kind, n", [("countsketch", 200), ("srht", 64), ("srht", 37),
                                     ("srdct", 50)])
def test_operator_equals_independent_dense_matrix(kind, n, rng):
    """S @ X, X @ S^T, S^T @ Y (and sparse S @ X) equal the oracle's products."""
    m = 12
    X = np.c_[_coherent(n), rng.normal(size=(n, 2))]
    Y = rng.normal(size=(m, 3))
    for seed in (0, 1, 2):
        S = make_sketch(kind, m, n, random_state=seed)
        A = _oracle(kind, m, n, seed)
        np.testing.assert_allclose(S @ X, A @ X, atol=1e-11)
        np.testing.assert_allclose(S @ X[:, 0], A @ X[:, 0], atol=1e-11)
        np.testing.assert_allclose(S.apply(X.T, axis=1), X.T @ A.T, atol=1e-11)
        np.testing.assert_allclose(S.T @ Y, A.T @ Y, atol=1e-11)
        np.testing.assert_allclose(S.toarray(), A, atol=1e-12)
        if kind == "countsketch":
            out = S @ sp.csr_matrix(X)
            np.testing.assert_allclose(out.toarray(), A @ X, atol=1e-11)


def test_countsketch_columns_are_random_signed_unit_vectors():
    """Draw-independent structure: one +-1 per column, signs fair, buckets uniform.

    Signs: the number of +1 among n = 4000 columns is Binomial(n, 1/2), mean 2000,
    sd 31.6; we accept 5 sd. Buckets: Pearson's chi-square of the bucket counts below
    its 1 - 1e-6 quantile (m - 1 degrees of freedom)."""
    m, n = 40, 4000
    A = make_sketch("countsketch", m, n, random_state=11).toarray()
    nz = A != 0
    assert np.all(nz.sum(axis=0) == 1)
    signs = A[nz.argmax(axis=0), np.arange(n)]
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(np.sum(signs > 0) - n / 2) < 5 * math.sqrt(n / 4)
    counts = nz.sum(axis=1)
    chi2 = np.sum((counts - n / m) ** 2 / (n / m))
    assert chi2 < scipy.stats.chi2.ppf(1 - 1e-6, m - 1)


@pytest.mark.parametrize("kind, n", [("countsketch", 128), ("srht", 100), ("srdct", 128)])
def test_unbiased_on_coherent_non_centred_columns(kind, n):
    """E[(S X)^T (S X)] = X^T X for a constant column, spiky rows and a positive ramp.

    Each entry of the mean over R = 300 seeded sketches (m = 16) lies within Z
    standard errors (sample standard deviation / sqrt(R)) of X^T X; entries that are
    exact for every draw (the spikes' norms under CountSketch and SRHT) have a zero
    standard error and must match to rounding. A CountSketch without its signs has
    E||S 1||^2 = n + n (n - 1) / m, nine times ||1||^2 = n here."""
    m, R = 16, 300
    X = _coherent(n)
    G = np.empty((R, 3, 3))
    for seed in range(R):
        SX = make_sketch(kind, m, n, random_state=seed) @ X
        G[seed] = SX.T @ SX
    mean, se = G.mean(axis=0), G.std(axis=0, ddof=1) / math.sqrt(R)
    target = X.T @ X
    err = np.abs(mean - target)
    assert np.all(err <= Z * se + 1e-9 * np.abs(target).max()), (kind, err, se)
    # the standard errors are small: the test can see a bias of a few percent
    assert np.all(se <= 0.05 * np.sqrt(np.outer(np.diag(target), np.diag(target))))


@pytest.mark.parametrize("kind", ["countsketch", "srht", "srdct"])
def test_constant_vector_norm_is_preserved_on_average(kind):
    """1-D input: E||S 1||^2 = n, within Z standard errors over 300 draws."""
    n, m, R = 64, 8, 300
    vals = np.array([np.sum(sketch(np.ones(n), kind, m, random_state=s) ** 2)
                     for s in range(R)])
    se = vals.std(ddof=1) / math.sqrt(R)
    assert abs(vals.mean() - n) <= Z * se, (kind, vals.mean(), se)
