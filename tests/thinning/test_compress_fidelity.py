"""Compress++ against the paper and goodpoints (Shetty, Dwivedi and Mackey, 2022).

* One halving equals goodpoints' Halve (symmetrised kernel thinning of one round,
  built here from goodpoints' own ``halve_K``, ``best_K`` and ``refine_K``) for the
  same uniforms and coin.
* A halving is symmetric: it returns the swapped coreset S or its complement, each
  with probability 1/2 (binomial test over a fixed set of seeds).
* The failure probabilities of the halvings (proportional to the squared halving
  size) and of the final kernel thinning add up to ``delta``, and for ``n = 4^k``,
  ``n_out = sqrt(n)`` equal goodpoints' ``compresspp_kt``.
* Over seeds, the MMD of our Compress++ coreset has the mean of goodpoints'.
"""

import math

import numpy as np
import pytest
from scipy import stats

from sketchlearn.kernels import GaussianKernel
from sketchlearn.thinning import _core, compress_thin
from sketchlearn.thinning._core import (
    _compress_block,
    _delta_split,
    _halve_blocks,
    _halving_log_term,
)

ktc = pytest.importorskip("goodpoints.ktc", reason="goodpoints (a test extra) is the oracle")


def goodpoints_halve(K, u, delta_l, flip):
    """Positions (in the block) that goodpoints' Halve keeps: ``ktc.thin_K`` of one
    round with ``unique=True`` (as ``compressc.halve`` calls it), written out with its
    own primitives so that the uniforms ``u`` and the coin ``flip`` are ours."""
    size = K.shape[0]
    coresets = np.empty((2, size // 2), dtype=np.int64)
    ktc.halve_K(K, delta_l, np.ascontiguousarray(u, dtype=np.float64), coresets)
    mean_k = K.mean(axis=1)
    baseline = np.arange(1, size, 2, dtype=np.int64)
    best = np.asarray(ktc.best_K(K, coresets, mean_k, baseline.copy()))
    # When the walk's first coreset is the even positions, it and the baseline are
    # complements: equally far from the block in exact arithmetic, and best_K keeps the
    # baseline on a tie (only rounding could decide otherwise).
    tie = np.array_equal(coresets[0], np.arange(0, size, 2))
    if not tie and np.array_equal(best, coresets[0]):
        coreset, non_coreset = coresets[0].copy(), coresets[1].copy()
    else:
        coreset, non_coreset = baseline, np.arange(0, size, 2, dtype=np.int64)
    ktc.refine_K(K, coreset, mean_k, np.empty(size), True, non_coreset)
    return np.sort(non_coreset if flip else coreset)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("flip", [False, True])
def test_one_halving_equals_goodpoints_halve(fused, flip, rng):
    X = rng.normal(size=(192, 3))
    k = GaussianKernel(1.3)
    merged = rng.permutation(192).reshape(3, 64)
    u = rng.random((3, 32))
    delta_per_sq = 0.5 / (3 * 64**2)
    log_term = _halving_log_term(64, delta_per_sq)
    kept = _halve_blocks(np, X, merged, u, np.full(3, flip), k, k, log_term, fused,
                         np.empty(192, dtype=np.int64))
    for w in range(3):
        expected = goodpoints_halve(k(X[merged[w]]), u[w], delta_per_sq * 64**2, flip)
        np.testing.assert_array_equal(np.sort(kept[w]), np.sort(merged[w][expected]))


def test_halving_returns_swapped_coreset_or_complement_equally_often():
    """g = 1 and 64 rows: one level of four halvings of 16 points. For every seed each
    halving must return goodpoints' S (KT-SPLIT, baseline, KT-SWAP from the same
    uniforms, which the level draws first) or its complement; over 200 seeds x 4
    halvings, S comes back Binomial(800, 1/2) times."""
    X = np.random.default_rng(7).normal(size=(64, 2))
    k = GaussianKernel(1.0)
    rows = np.arange(64)
    merged = rows.reshape(4, 16)  # the level merges four kept blocks of 4^g = 4 rows
    _, delta_per_sq = _delta_split([64], 1, 3, 0.5)
    delta_l = delta_per_sq * 16**2
    K = [k(X[merged[w]]) for w in range(4)]
    returned_s = trials = 0
    for seed in range(200):
        out = _compress_block(np, X, rows, 1, k, k, delta_per_sq, np.random.default_rng(seed),
                              None).reshape(4, 8)
        u = np.random.default_rng(seed).random((4, 8))  # the level's first draws
        for w in range(4):
            s = set(merged[w][goodpoints_halve(K[w], u[w], delta_l, False)].tolist())
            got = set(out[w].tolist())
            assert got in (s, set(merged[w].tolist()) - s)
            returned_s += got == s
            trials += 1
    assert trials == 800
    assert stats.binomtest(returned_s, trials, 0.5).pvalue > 1e-3, returned_s


def _record(monkeypatch):
    """Record (walks, size, log_term) of every halving Compress runs and the delta of
    the final kernel thinning."""
    seen = {"halvings": [], "thin": []}
    thin = _core._thin

    def recording_thin(*args):
        seen["thin"].append(args[8])  # _thin(xp, X, seq, pool, w, n_out, k, split, delta...
        return thin(*args)

    class Recorded:
        """The op, recording its calls (and answering ``backend_for`` like it)."""

        def __init__(self, op):
            self.op = op

        def __getattr__(self, name):
            return getattr(self.op, name)

        def __call__(self, xp, X, seqs, u, kernel, log_term, *rest):
            if not seen["thin"]:
                seen["halvings"].append((seqs.shape[0], seqs.shape[1], log_term))
            return self.op(xp, X, seqs, u, kernel, log_term, *rest)

    for name in ("halve_round_op", "halve_with_sums_op"):
        monkeypatch.setattr(_core, name, Recorded(getattr(_core, name)))
    monkeypatch.setattr(_core, "_thin", recording_thin)
    return seen


def _halving_deltas(seen):
    """(walks, size, delta_l): log_term = 2 log(2 size / delta_l)."""
    return [(w, size, 2.0 * size * math.exp(-t / 2.0)) for w, size, t in seen["halvings"]]


@pytest.mark.parametrize("k4, g", [(6, 2), (7, 3), (6, 1)])
def test_failure_probabilities_equal_goodpoints_compresspp(monkeypatch, k4, g):
    n, delta = 4**k4, 0.5
    X = np.random.default_rng(0).normal(size=(n, 2))
    seen = _record(monkeypatch)
    compress_thin(X, 2**k4, g=g, bandwidth=1.0, variant="target", delta=delta,
                  random_state=0)
    # goodpoints' compresspp_kt with num_bins=4 (compress.py and compressc.pyx):
    m = g + 1
    thin_frac = m / (m + 2**m * (k4 - m))
    halve_prob = delta * (1 - thin_frac) / 4 ** (g + 1) / (math.log2(n // 4) / 2 - g) / n
    assert seen["thin"] == [pytest.approx(delta * thin_frac, rel=1e-12)]
    halvings = _halving_deltas(seen)
    assert sorted({size for _, size, _ in halvings}) == [4**g * 4 * 2**t
                                                        for t in range(k4 - g - 1)]
    for _, size, delta_l in halvings:
        assert delta_l == pytest.approx(halve_prob * size**2, rel=1e-9)
    total = sum(w * d for w, _, d in halvings) + seen["thin"][0]
    assert total == pytest.approx(delta, rel=1e-9)


@pytest.mark.parametrize("n, n_out, g", [(5000, 70, 2), (1280, 35, 2), (20000, 40, 3)])
def test_failure_probabilities_add_up_with_remainder_blocks(monkeypatch, n, n_out, g):
    delta = 0.3
    X = np.random.default_rng(1).normal(size=(n, 2))
    seen = _record(monkeypatch)
    compress_thin(X, n_out, g=g, bandwidth=1.0, delta=delta, random_state=0)
    halvings = _halving_deltas(seen)
    per_sq = {d / size**2 for _, size, d in halvings}
    assert max(per_sq) == pytest.approx(min(per_sq), rel=1e-9)  # delta_l ~ l^2
    # the remainder blocks' halvings are among them: the main block's levels alone
    # give 4^(g+1) main per level
    main = 4 ** ((n.bit_length() - 1) // 2)
    main_levels = ((main // 4**g).bit_length() - 1) // 2 - 1
    assert sum(w * size**2 for w, size, _ in halvings) > 4 ** (g + 1) * main * main_levels
    assert sum(w * d for w, _, d in halvings) + seen["thin"][0] == pytest.approx(delta,
                                                                                rel=1e-9)


def test_without_halvings_the_final_thinning_gets_all_of_delta(monkeypatch):
    X = np.random.default_rng(2).normal(size=(100, 2))
    seen = _record(monkeypatch)
    compress_thin(X, 9, g=3, bandwidth=1.0, delta=0.4, random_state=0)
    assert seen["halvings"] == [] and seen["thin"] == [0.4]


def _mmds(X, coresets, k):
    """MMD of each coreset (row numbers) to the uniform measure on X, without an
    n x n matrix: the mean of k over X x X in row blocks."""
    n = X.shape[0]
    pp = sum(k(X[i:i + 512], X).sum() for i in range(0, n, 512)) / n**2
    out = []
    for idx in coresets:
        Z = X[idx]
        value = k(Z, Z).mean() - 2.0 * k(Z, X).mean() + pp
        out.append(math.sqrt(max(value, 0.0)))
    return np.array(out)


@pytest.mark.parametrize("d", [2, 10])
def test_mmd_has_goodpoints_compresspp_mean_over_seeds(d):
    """n = 4^6, g = 2, target KT with the same Gaussian kernel: goodpoints runs the same
    structure (four bins, three halving levels, a final KT of 3 rounds from 512
    points). Over 20 seeds each, the means differ by less than 3 standard errors."""
    compress = pytest.importorskip("goodpoints.compress")
    n, g, seeds = 4**6, 2, 20
    X = np.random.default_rng(100 + d).normal(size=(n, d))
    h = math.sqrt(2.0 * d)
    k = GaussianKernel(h)
    ours = [compress_thin(X, 64, g=g, kernel=k, variant="target", random_state=s)
            for s in range(seeds)]
    theirs = [compress.compresspp_kt(X, b"gaussian", k_params=np.array([2.0 * h * h]), g=g,
                                     num_bins=4, delta=0.5, seed=s) for s in range(seeds)]
    assert all(len(c) == 64 for c in theirs)
    a, b = _mmds(X, ours, k), _mmds(X, theirs, k)
    se = math.sqrt(a.var(ddof=1) / seeds + b.var(ddof=1) / seeds)
    assert abs(a.mean() - b.mean()) < 3.0 * se, (a.mean(), b.mean(), se)


@pytest.mark.parametrize("variant", ["target", "kt+"])
def test_reference_path_gives_the_numba_coreset(variant):
    """The array-API reference (array_api_strict) and Numba run the same halvings: the
    same coreset for the same seed, also where a walk's first coreset is the even
    positions (an exact tie with the baseline, which both resolve to the baseline)."""
    xps = pytest.importorskip("array_api_strict")
    X = np.random.default_rng(3).normal(size=(1100, 2))
    expected = compress_thin(X, 16, g=1, bandwidth=1.0, variant=variant, random_state=4)
    got = compress_thin(xps.asarray(X), 16, g=1, bandwidth=1.0, variant=variant,
                        random_state=4)
    np.testing.assert_array_equal(np.asarray(got), expected)
