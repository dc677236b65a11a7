"""Kernel thinning (KT-SPLIT + KT-SWAP) and Compress++ on top of the halving kernels.

Every operation on the data goes through :class:`~sketchlearn._array_api.Dispatch`
(Numba for NumPy, the array-API reference otherwise); the bookkeeping of row numbers
and the random draws stays on the host, so a seed gives the same coreset on every
backend.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._array_api import (
    Dispatch,
    get_namespace,
    move_to,
    public_function,
    to_numpy,
)
from .._cold_start import reference_until_compiled
from .._progress import progress_bar
from .._random import as_generator
from .._validation import (
    COUNT,
    POSITIVE,
    SEED,
    STEPS,
    check_array,
    check_weights,
    user_stacklevel,
)
from ..kernels import GaussianKernel, Kernel, LaplaceKernel, MaternKernel, SumKernel, make_kernel
from ..kernels._sums import kernel_matvec_op
from ._reference import (
    coreset_sums_reference,
    halve_round_reference,
    halve_with_sums_reference,
    refine_halves_reference,
    swap_pass_reference,
)

__all__ = ["kernel_thin", "compress_thin", "split_kernel"]

# Rows up to which a first call thins with the NumPy reference while the Numba kernels
# compile: n^2 (d + 16) <= this is about 2 s of reference work on 2 cores (KT+, n = 4096,
# d = 10: 1.9 s), where compiling the kernels takes about 18 s.
_REFERENCE_WORK = 4096**2 * 26


def _small_for_reference(n, d):
    return float(n) * n * (d + 16) <= _REFERENCE_WORK


def _walks(rng, cases):
    """Halving walks as KT-SPLIT's rounds give them: ``X`` (n, d), rows of row
    numbers to halve (host int64), one uniform per pair (host), the split kernel built
    from ``kernel`` for ``variant``, and the round's threshold constant."""
    for kernel, variant, dtype, n, d, walks, length in cases:
        X = rng.normal(size=(n, d)).astype(dtype)
        seqs = np.stack([rng.permutation(n)[:length] for _ in range(walks)])
        u = rng.random((walks, length // 2))
        log_term = _round_log_terms(length, 1, 0.5)[0]
        yield X, seqs, u, kernel, split_kernel(kernel, variant, d), log_term


def _halve_round_examples(xp, rng):
    """Several walks and one (parallel inside the walk), target and KT+ split
    kernels, float64 and float32 data, and d > 64 (the CuPy kernel keeps the pair in
    shared memory up to d = 2560, in global memory beyond)."""
    cases = [(GaussianKernel(1.0), "target", np.float64, 96, 3, 2, 48),
             (MaternKernel(1.0, 1.5), "kt+", np.float64, 160, 2, 1, 128),
             (MaternKernel(0.7, 2.5), "kt+", np.float32, 96, 3, 3, 64),
             (LaplaceKernel(1.3), "target", np.float32, 150, 5, 1, 128),
             (GaussianKernel(8.0), "target", np.float64, 40, 70, 2, 16)]
    return [((move_to(X, xp), seqs, u, split, log_term), {})
            for X, seqs, u, _, split, log_term in _walks(rng, cases)]


def _halve_with_sums_examples(xp, rng):
    """As ``halve_round``'s walks, with the target kernel whose row sums KT-SWAP needs
    (the split kernel itself, or the leading part of a KT+ sum)."""
    cases = [(GaussianKernel(1.0), "target", np.float64, 96, 3, 2, 48),
             (MaternKernel(1.0, 1.5), "kt+", np.float64, 160, 2, 1, 128),
             (MaternKernel(0.7, 2.5), "kt+", np.float32, 96, 3, 3, 64),
             (GaussianKernel(1.3), "kt+", np.float32, 150, 5, 1, 128)]
    return [((move_to(X, xp), seqs, u, split, log_term, kernel), {})
            for X, seqs, u, kernel, split, log_term in _walks(rng, cases)]


def _pool_mean(X, pool, kernel):
    """Kernel mean of the uniform measure on ``X[pool]`` at each pool point (host
    float64, by the reference), as KT-SWAP receives it."""
    P = X[pool]
    ones = np.full((pool.shape[0], 1), 1.0 / pool.shape[0], dtype=X.dtype)
    mean = kernel_matvec_op.implementation("reference")(get_namespace(P), P, P, ones, kernel)
    return mean[:, 0].astype(np.float64)


def _swap_pass_examples(xp, rng):
    """KT-SWAP over the whole input (KT) and over a subset pool, with repeats allowed
    and not, float64 and float32 data; the coreset is given by positions in the pool."""
    out = []
    for kernel, dtype, unique, subset in ((GaussianKernel(1.0), np.float64, False, False),
                                          (MaternKernel(1.0, 1.5), np.float64, True, True),
                                          (LaplaceKernel(0.7), np.float32, True, False),
                                          (GaussianKernel(0.8), np.float32, False, True)):
        X = rng.normal(size=(96, 3)).astype(dtype)
        pool = np.sort(rng.choice(96, size=64, replace=False)) if subset else np.arange(96)
        coreset = rng.choice(pool.shape[0], size=12, replace=False)
        out.append(((move_to(X, xp), pool, coreset, _pool_mean(X, pool, kernel), kernel,
                     unique), {}))
    return out


def _coreset_sums_examples(xp, rng):
    """Candidate coresets (rows of row numbers, host int64) as KT scores them, and a
    single coreset (the final MMD), float64 and float32 data."""
    out = []
    for kernel, dtype in ((GaussianKernel(1.0), np.float64),
                          (MaternKernel(0.9, 2.5), np.float64),
                          (LaplaceKernel(0.6), np.float32)):
        X = rng.normal(size=(80, 3)).astype(dtype)
        rows = np.stack([rng.choice(80, size=8, replace=False) for _ in range(5)])
        out.append(((move_to(X, xp), rows, kernel), {}))
        out.append(((move_to(X, xp), rng.choice(80, size=10, replace=False)[None, :],
                     kernel), {}))
    return out


def _refine_halves_examples(xp, rng):
    """Compress's refinement of each block's walk, as ``_halve_blocks`` calls it: the
    halves by position in the block, the half to start from (the walk's first, or the
    other when it is the even positions), with and without the walks' kernel means;
    float64 and float32 data."""
    out = []
    walks, size = 3, 64
    log_term = _round_log_terms(size, 1, 0.5)[0]
    for kernel, dtype, with_mean in ((GaussianKernel(1.5), np.float64, False),
                                     (MaternKernel(1.2, 1.5), np.float64, True),
                                     (LaplaceKernel(0.8), np.float32, False)):
        X = rng.normal(size=(walks * size, 2)).astype(dtype)
        merged = rng.permutation(walks * size).reshape(walks, size)
        u = rng.random((walks, size // 2))
        halves, sums = halve_with_sums_reference(get_namespace(X), X, merged, u, kernel,
                                                 log_term, kernel)
        position = np.empty(walks * size, dtype=np.int64)
        position[merged] = np.arange(size)[None, :]
        halves_pos = position[halves]
        first = np.all(halves_pos[0::2] == np.arange(0, size, 2), axis=1).astype(np.int64)
        kwargs = {}
        if with_mean:
            mean_k = np.empty(merged.shape)
            mean_k[np.repeat(np.arange(walks), 2)[:, None], halves_pos] = sums / size
            kwargs["mean_k"] = mean_k
        out.append(((move_to(X, xp), merged, halves_pos, first, kernel), kwargs))
    return out


halve_round_op = Dispatch(halve_round_reference,
                          numba="sketchlearn.thinning._numba:halve_round",
                          cupy="sketchlearn.thinning._cupy:halve_round",
                          examples=_halve_round_examples)
swap_pass_op = Dispatch(swap_pass_reference, numba="sketchlearn.thinning._numba:swap_pass",
                        cupy="sketchlearn.thinning._cupy:swap_pass",
                        examples=_swap_pass_examples)
halve_with_sums_op = Dispatch(halve_with_sums_reference,
                              numba="sketchlearn.thinning._numba:halve_with_sums",
                              cupy="sketchlearn.thinning._cupy:halve_with_sums",
                              examples=_halve_with_sums_examples)
coreset_sums_op = Dispatch(coreset_sums_reference,
                           numba="sketchlearn.thinning._numba:coreset_sums",
                           cupy="sketchlearn.thinning._cupy:coreset_sums",
                           examples=_coreset_sums_examples)
refine_halves_op = Dispatch(refine_halves_reference,
                            numba="sketchlearn.thinning._numba:refine_halves",
                            cupy="sketchlearn.thinning._cupy:refine_halves",
                            examples=_refine_halves_examples)

VARIANTS = ("kt+", "target", "power")
# compress="auto" switches to Compress++ above this many points (KT costs O(n^2)).
COMPRESS_AUTO_MIN = 2**14 + 1
# Compress++ computes mmd_ to the full input only up to this many points (O(n^2) time).
COMPRESS_EXACT_MMD_MAX = 2**14


def split_kernel(kernel: Kernel, variant: str, n_features: int, alpha: float = 0.5) -> Kernel:
    """The kernel KT-SPLIT uses for ``variant`` (target, power or KT+).

    ``"target"`` uses ``kernel`` itself; ``"power"`` its ``alpha``-power kernel;
    ``"kt+"`` the sum of both, each divided by its sup norm. Kernels without a
    closed-form power (IMQ) run ``"kt+"`` as target KT, with a warning, and refuse
    ``"power"``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if variant == "target":
        return kernel
    try:
        powered = kernel.power(alpha, n_features)
    except ValueError as exc:
        if variant == "power":
            raise ValueError(f"variant='power' needs a power kernel: {exc} Use variant="
                             "'target' (which suffices for analytic kernels).") from exc
        warnings.warn(f"{exc} Running target kernel thinning instead of KT+.", UserWarning,
                      stacklevel=user_stacklevel())
        return kernel
    if variant == "power":
        return powered
    return SumKernel([kernel, powered], [1.0 / kernel.sup_norm, 1.0 / powered.sup_norm])


def _halving_log_term(size: int, delta_per_sq: float) -> float:
    """KT-SPLIT's threshold constant 2 log(2 / delta_i) for one Compress halving of
    ``size`` points run as KT(delta_l) with delta_l = ``delta_per_sq`` size^2: each of
    its size/2 steps has delta_i = delta_l / size (goodpoints' ``halve_K``)."""
    return 2.0 * math.log(2.0 / (delta_per_sq * size))


def _round_log_terms(n: int, rounds: int, delta: float) -> list[float]:
    """KT-SPLIT's threshold constants for rounds j = 1..m (Dwivedi and Mackey, Algorithm
    1a): 2 log(2 / delta_ij) with delta_ij = delta_i 2^(j-1) / m, delta_i = delta / n.
    A walk of round j has n / 2^j steps, so the walks that lead to any one candidate
    (one per round) fail with total probability at most delta / 2, and the later,
    shorter walks run with smaller thresholds. (goodpoints does the same.)"""
    return [2.0 * math.log(2.0 * n * rounds / (delta * 2.0 ** (j - 1)))
            for j in range(1, rounds + 1)]


def _resample(weights: np.ndarray, size: int, rng) -> np.ndarray:
    """Systematic resampling: ``size`` row numbers drawn in proportion to ``weights``."""
    grid = (rng.random() + np.arange(size)) / size
    rows = np.searchsorted(np.cumsum(weights), grid, side="right")
    return np.minimum(rows, weights.shape[0] - 1)


def _split_sequence(n: int, size: int, weights, rng) -> np.ndarray:
    """The ``size`` rows (in input order) that KT-SPLIT halves."""
    if weights is not None:
        return np.sort(_resample(weights, size, rng))
    if size == n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def target_weights(split, target):
    """Weights on ``split.spec()``'s components that make up ``target``, or None.

    KT+ splits with ``k / |k| + k_rt / |k_rt|``, whose first components are those of
    ``k``: the target is the same components with ``k``'s weights and zeros after.
    """
    codes, params, weights = split.spec()
    if target is split:
        return weights
    tcodes, tparams, tw = target.spec()
    c = tcodes.shape[0]
    if (c <= codes.shape[0] and np.array_equal(codes[:c], tcodes)
            and np.array_equal(params[:c], tparams)):
        return np.concatenate([tw, np.zeros(codes.shape[0] - c)])
    return None


def _walk_gives_mean(xp, split_k, kernel) -> bool:
    """Whether halving walks can also sum the target kernel: an accelerated path (Numba
    or CuPy), and the target kernel is part of the split kernel."""
    return (halve_with_sums_op.backend_for(xp) in ("numba", "cupy")
            and target_weights(split_k, kernel) is not None)


def _fuse_first_round(xp, seq, pool_weights, rounds, split_k, kernel) -> bool:
    """Whether the first halving walk can also give KT-SWAP's kernel mean: it covers
    the whole pool (uniform weights) and ``_walk_gives_mean``."""
    return (rounds >= 1 and seq.shape[0] == pool_weights.shape[0]
            and bool(np.all(pool_weights == pool_weights[0]))
            and _walk_gives_mean(xp, split_k, kernel))


def _halve_rounds(xp, X, seq, log_terms, kernel, rng, progress):
    """One round of halving of ``seq`` (one row, or rows to halve each) per entry of
    ``log_terms`` (that round's threshold constant): 2^rounds candidate coresets (rows)."""
    seqs = seq[None, :] if seq.ndim == 1 else seq
    for log_term in log_terms:
        u = rng.random((seqs.shape[0], seqs.shape[1] // 2))
        seqs = halve_round_op(xp, X, seqs, u, kernel, log_term)
        if progress is not None:
            progress.update(1)
    return seqs


def _kernel_mean(xp, X, pool, target, w, kernel):
    """sum_j w_j k(X[pool_z], X[target_j]) for every z, blocked (no pool x target matrix)."""
    P = xp.take(X, move_to(pool, xp), axis=0)
    same = pool.shape == target.shape and np.array_equal(pool, target)
    T = P if same else xp.take(X, move_to(target, xp), axis=0)  # P: symmetric fast path
    W = xp.reshape(xp.astype(move_to(w, xp), X.dtype), (-1, 1))
    return to_numpy(kernel_matvec_op(xp, P, T, W, kernel))[:, 0].astype(np.float64)


def _coreset_scores(xp, X, pool, candidates_pos, mean_k, kernel):
    """MMD^2 up to a constant for each row of ``candidates_pos`` (positions in pool)."""
    s = candidates_pos.shape[1]
    qq = coreset_sums_op(xp, X, pool[candidates_pos], kernel) / s**2
    return qq - 2.0 * mean_k[candidates_pos].sum(axis=1) / s


def _thin(xp, X, seq, pool, pool_weights, n_out, kernel, split_k, delta, unique, rng,
          progress):
    """KT on the split sequence ``seq``, swapped over ``pool`` against its weights.

    ``seq`` holds positions into ``pool``. Returns the positions (into ``pool``) of the
    coreset, the kernel mean of the target over the pool and the coreset's score.
    """
    rounds = int(math.floor(math.log2(seq.shape[0] / n_out)))
    log_terms = _round_log_terms(seq.shape[0], rounds, delta)
    position = np.empty(int(pool.max()) + 1, dtype=np.int64)
    position[pool] = np.arange(pool.shape[0])
    if _fuse_first_round(xp, seq, pool_weights, rounds, split_k, kernel):
        # The first walk evaluates every pair of the pool once: it also yields the
        # kernel mean of KT-SWAP (an n^2/2 pass saved). Same draws, same coreset.
        u = rng.random((1, seq.shape[0] // 2))
        halves, sums = halve_with_sums_op(xp, X, pool[seq][None, :], u, split_k,
                                          log_terms[0], kernel)
        mean_k = np.empty(pool.shape[0])
        mean_k[position[halves]] = sums * pool_weights[0]
        if progress is not None:
            progress.update(1)
        cands = _halve_rounds(xp, X, halves, log_terms[1:], split_k, rng, progress)
    else:
        cands = _halve_rounds(xp, X, pool[seq], log_terms, split_k, rng, progress)
        mean_k = None
    # Candidates come back as row numbers (pool rows are distinct): map to positions.
    cand_pos = position[cands]
    baseline = seq[(1 << rounds) - 1::1 << rounds][:n_out]
    all_pos = np.vstack([cand_pos, baseline[None, :]])
    if mean_k is None:
        mean_k = _kernel_mean(xp, X, pool, pool, pool_weights, kernel)
    scores = _coreset_scores(xp, X, pool, all_pos, mean_k, kernel)
    best = all_pos[int(np.argmin(scores))]
    pos = np.asarray(swap_pass_op(xp, X, pool, best, mean_k, kernel, unique), dtype=np.int64)
    return pos, mean_k


def _finish_mmd(xp, X, rows, mean_k_rows, pp, kernel):
    """MMD between the uniform measure on X[rows] and the target, from its kernel mean."""
    s = rows.shape[0]
    qq = float(coreset_sums_op(xp, X, rows[None, :], kernel)[0]) / s**2
    return math.sqrt(max(qq - 2.0 * float(np.sum(mean_k_rows)) / s + pp, 0.0))


# Parameter constraints of kernel_thin and compress_thin, checked once by their
# public_function wrapper (KernelThinning.fit checks its own and skips these).
_THIN_PARAMS = {
    "n_out": [*COUNT, None],
    "kernel": [str, Kernel],
    "bandwidth": [*POSITIVE, StrOptions({"median", "scott"}), None],
    "variant": [StrOptions(set(VARIANTS))],
    "alpha": [Interval(numbers.Real, 0, 1, closed="right")],
    "delta": [Interval(numbers.Real, 0, 1, closed="neither")],
    "unique": ["boolean"],
    "random_state": SEED,
    "verbose": ["verbose"],
    "return_mmd": ["boolean"],
}


def _check_common(X, n_out, delta, sample_weight, kernel, bandwidth, kernel_params):
    """The checks that depend on the data (the parameters' own checked by the wrapper)."""
    X = check_array(X, "X", min_samples=2)
    n = X.shape[0]
    if n_out is None:
        n_out = math.isqrt(n)
    if n_out > n:
        raise ValueError(f"n_out={n_out} is larger than the number of samples ({n}).")
    weights = None
    if sample_weight is not None:
        weights = to_numpy(check_weights(sample_weight, n, "sample_weight", xp=get_namespace(X),
                                         normalize=True)).astype(np.float64)
    if isinstance(kernel, Kernel) and isinstance(bandwidth, str) and bandwidth == "median":
        bandwidth = None  # the default; a Kernel object carries its own bandwidth
    k = make_kernel(kernel, bandwidth, X, **kernel_params)
    if not k.bounded:
        raise ValueError("Kernel thinning needs a bounded kernel (not Riesz/energy).")
    return X, int(n_out), weights, k


@public_function(arrays=("X", "sample_weight"),
                 work=lambda X, **_: float(np.shape(X)[0]) ** 2 * np.shape(X)[1],
                 params=_THIN_PARAMS,
                 dask_instead="Kernel thinning costs O(n^2) kernel evaluations; use "
                              "compress_thin(X, ...) (Compress++, near-linear, runs on Dask "
                              "arrays chunk by chunk).")
def kernel_thin(X, n_out=None, *, kernel="gaussian", bandwidth="median", variant="kt+",
                alpha=0.5, delta=0.5, unique=False, sample_weight=None, random_state=None,
                verbose=0, return_mmd=False, **kernel_params):
    """Kernel thinning: ``n_out`` rows of ``X`` whose uniform measure is close in MMD.

    KT-SPLIT halves the input ``m = floor(log2(n / n_out))`` times with the
    self-balancing walk (split kernel chosen by ``variant``), giving ``2^m`` candidate
    coresets; KT-SWAP keeps the best of them and of standard thinning (every
    ``2^m``-th point) by MMD to the input, then greedily swaps each point for the
    input point that most lowers the MMD. Time O(n^2 d), memory O(n d).

    When ``n`` is not ``n_out 2^m``, KT-SPLIT runs on ``n_out 2^m`` rows drawn
    uniformly without replacement (kept in input order); the other rows (fewer than
    half) still belong to the target measure of KT-SWAP and can be swapped in. With
    ``sample_weight`` the split sequence is drawn by systematic resampling from the
    weights and KT-SWAP targets the weighted measure.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Input points (NumPy or CuPy), at least 2. A Dask array is a ``TypeError``
        that points to :func:`compress_thin`.
    n_out : int, optional
        Size of the coreset, 1 <= n_out <= n; default ``floor(sqrt(n))``.
    kernel : str or Kernel, default="gaussian"
        Target kernel (see :func:`sketchlearn.kernels.make_kernel`); bounded.
    bandwidth : float, "median" or "scott", default="median"
        Bandwidth of a named kernel.
    variant : {"kt+", "target", "power"}, default="kt+"
        Split kernel: target plus power kernel (KT+), the target kernel, or the
        ``alpha``-power kernel.
    alpha : float, default=0.5
        Power of the power kernel (1/2: square-root kernel).
    delta : float in (0, 1), default=0.5
        Failure probability of KT-SPLIT: a step of round ``j`` of ``m`` uses
        ``delta_i 2^(j-1) / m`` with ``delta_i = delta / n`` (Dwivedi and Mackey).
    unique : bool, default=False
        Forbid repeated rows in the coreset.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights of the input points (normalised internally).
    random_state : int, Generator, RandomState or None
        Seed.
    verbose : int, default=0
        Show a progress bar over halving rounds when > 0.
    return_mmd : bool, default=False
        Also return the MMD of the coreset to the (weighted) input.
    **kernel_params
        Other parameters of a named kernel (``nu``).

    Returns
    -------
    indices : ndarray of shape (n_out,)
        Row numbers of the coreset (sorted; repeats possible unless ``unique``).
    mmd : float
        Only with ``return_mmd=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.thinning import kernel_thin
    >>> from sketchlearn.metrics import mmd_subset
    >>> X = np.random.default_rng(0).normal(size=(1024, 2))
    >>> idx, value = kernel_thin(X, 32, bandwidth=1.0, random_state=0, return_mmd=True)
    >>> idx.shape
    (32,)
    >>> bool(np.isclose(value, mmd_subset(X, idx, bandwidth=1.0)))
    True
    """
    X, n_out, weights, k = _check_common(X, n_out, delta, sample_weight, kernel, bandwidth,
                                         kernel_params)
    split_k = split_kernel(k, variant, X.shape[1], alpha)
    rng = as_generator(random_state)
    n = X.shape[0]
    xp = get_namespace(X)
    rounds = int(math.floor(math.log2(n / n_out)))
    seq = _split_sequence(n, n_out << rounds, weights, rng)
    pool = np.arange(n)
    w = np.full(n, 1.0 / n) if weights is None else weights
    progress = progress_bar(verbose, rounds, "kernel halving", unit="round")
    with reference_until_compiled(small=_small_for_reference(n, X.shape[1])):
        try:
            pos, mean_k = _thin(xp, X, seq, pool, w, n_out, k, split_k, delta, unique, rng,
                                progress)
        finally:
            if progress is not None:
                progress.close()
        indices = np.sort(pos)
        if not return_mmd:
            return indices
        return indices, _finish_mmd(xp, X, indices, mean_k[indices], float(w @ mean_k), k)


def _compress_sizes(n: int, g: int) -> list[int]:
    """Sizes of the blocks that Compress++ compresses, in order: the largest
    ``4^g 4^j`` rows that fit in what is left, until fewer than ``4^g`` rows are left
    (those are kept whole and not listed)."""
    sizes = []
    while n >= 4**g:
        j = ((n // 4**g).bit_length() - 1) // 2  # 4^j <= n // 4^g < 4^(j+1)
        sizes.append(4**g * 4**j)
        n -= sizes[-1]
    return sizes


def _halving_levels(size: int, g: int) -> int:
    """Halving levels of Compress on a block of ``size = 4^g 4^j`` rows: ``j - 1`` (the
    last four blocks are not halved), none for ``j <= 1``."""
    return max(((size // 4**g).bit_length() - 1) // 2 - 1, 0)


def _compressed_size(size: int, g: int) -> int:
    """Rows Compress returns for a block of ``size = 4^g 4^j`` rows: ``2^(g+1)
    sqrt(size)`` for ``j >= 1``, the block itself for ``j = 0``."""
    return size if size == 4**g else 2 ** (g + 1) * math.isqrt(size)


def _delta_split(sizes: list[int], g: int, rounds: int, delta: float):
    """Failure probabilities of Compress++ (Shetty, Dwivedi and Mackey, 2022):
    ``(delta_thin, delta_per_sq)``.

    The final kernel thinning (``rounds`` KT-SPLIT rounds) runs KT(delta_thin) with
    ``delta_thin = delta m / (m + 2^m beta)``, ``m = rounds`` and ``beta`` the halving
    levels of the main block; the halvings share the rest, a halving of ``l`` points
    running KT(delta_l) with ``delta_l = delta_per_sq l^2`` and ``delta_per_sq`` such
    that the ``delta_l`` of every halving (remainder blocks included) add up to
    ``delta - delta_thin``. For ``n = 4^k`` and ``n_out = sqrt(n)`` these are the
    numbers of goodpoints' ``compresspp_kt`` (four bins). Level ``t = 1 .. j - 1`` of a
    block of ``N = 4^g 4^j`` rows runs ``4^(j-t)`` halvings of ``l = 2^(2g+1+t)``
    points: their ``l^2`` add up to ``4^(g+1) N`` at every level. Without halvings,
    ``delta_thin = delta``.
    """
    total_sq = sum(4 ** (g + 1) * size * _halving_levels(size, g) for size in sizes)
    if total_sq == 0:
        return delta, 0.0
    beta = _halving_levels(sizes[0], g)  # >= 1: the main block is the largest
    thin_delta = delta * rounds / (rounds + 2**rounds * beta)
    return thin_delta, (delta - thin_delta) / total_sq


def _halve_blocks(xp, X, merged, u, flip, split_k, kernel, log_term, fused, position):
    """Compress's Halve on every row of ``merged`` (row numbers of one block each):
    symmetrised kernel thinning of one round, as goodpoints' Compress runs it.

    KT-SPLIT walks each block with the split kernel (``u``: one uniform per pair,
    threshold constant ``log_term``); its first coreset is compared with the
    baseline (the block's alternate points) by MMD to the block, the better one is
    improved by one KT-SWAP pass inside the block (target kernel, no repeats), and
    then the swapped coreset is returned, or, where ``flip`` is true, its complement
    in the block. ``position`` is scratch space of ``X.shape[0]`` integers. Returns
    the kept row numbers, one row per block.
    """
    walks, size = merged.shape
    position[merged] = np.arange(size)[None, :]
    mean_k = None
    if fused:  # the walk covers its block: it also gives KT-SWAP's kernel mean there
        halves, sums = halve_with_sums_op(xp, X, merged, u, split_k, log_term, kernel)
        mean_k = np.empty(merged.shape)
        walk = np.repeat(np.arange(walks), 2)[:, None]
        mean_k[walk, position[halves]] = sums / size
    else:
        halves = halve_round_op(xp, X, merged, u, split_k, log_term)
    halves_pos = position[halves]
    # The walk's first coreset, as goodpoints. When it is the even positions, the
    # baseline (odd positions) is its complement: an exact tie in MMD, which
    # goodpoints resolves to the baseline (best_K keeps it unless the candidate is
    # strictly better); starting from the other half (= the baseline) does the same
    # without leaving the choice to rounding, so Numba and the reference agree.
    first = np.all(halves_pos[0::2] == np.arange(0, size, 2), axis=1).astype(np.int64)
    kept = np.asarray(refine_halves_op(xp, X, merged, halves_pos, first, kernel, mean_k),
                      dtype=np.int64)
    if flip.any():
        outside = np.ones(merged.shape, dtype=bool)
        outside[np.arange(walks)[:, None], kept] = False  # the swap keeps no repeats
        complement = np.nonzero(outside)[1].reshape(walks, size - kept.shape[1])
        kept = np.where(flip[:, None], complement, kept)
    return np.take_along_axis(merged, kept, axis=1)


def _compress_block(xp, X, rows, g, split_k, kernel, delta_per_sq, rng, progress):
    """Compress a block of ``4^g 4^j`` rows to ``2^(g+1) sqrt(4^g 4^j)`` rows (the
    block itself when ``j = 0``).

    Blocks of 4^g rows are kept as they are; each level concatenates four
    compressed blocks and halves them with ``_halve_blocks`` (KT-SPLIT, baseline
    comparison, KT-SWAP, then the result or its complement with probability 1/2, as
    goodpoints' Compress does), a halving of ``l`` points with failure probability
    ``delta_per_sq l^2``. Each level draws the walks' uniforms, then one coin per
    block. The last four blocks are concatenated without halving, so the final
    kernel thinning sees twice the points of plain Compress (goodpoints' default of
    four bins does the same).
    """
    blocks = rows.reshape(-1, 4**g)
    position = np.empty(X.shape[0], dtype=np.int64)
    fused = _walk_gives_mean(xp, split_k, kernel)
    while blocks.shape[0] > 4:
        merged = blocks.reshape(blocks.shape[0] // 4, -1)
        u = rng.random((merged.shape[0], merged.shape[1] // 2))
        flip = rng.random(merged.shape[0]) < 0.5
        log_term = _halving_log_term(merged.shape[1], delta_per_sq)
        blocks = _halve_blocks(xp, X, merged, u, flip, split_k, kernel, log_term, fused,
                               position)
        if progress is not None:
            progress.update(1)
    return blocks.reshape(-1)


def _compress_all(xp, X, rows, g, split_k, kernel, delta_per_sq, rng, progress):
    """Compress every row: returns (points, mass) lists, one entry per block.

    The largest block of 4^g 4^j rows (a random subset, in input order) is
    compressed; the rest is compressed the same way, recursively, and blocks below
    4^g rows are kept whole. Each output point carries mass block_size/output_size.
    """
    out = []
    for size in _compress_sizes(rows.shape[0], g):
        keep = np.zeros(rows.shape[0], dtype=bool)
        keep[rng.choice(rows.shape[0], size=size, replace=False)] = True
        block = _compress_block(xp, X, rows[keep], g, split_k, kernel, delta_per_sq, rng,
                                progress)
        out.append((block, size / block.shape[0]))
        rows = rows[~keep]
    if rows.shape[0] > 0:
        out.append((rows, 1.0))
    return out


@public_function(arrays=("X",),
                 work=lambda X, g, **_: float(np.shape(X)[0]) * 4**g * np.shape(X)[1],
                 params={**_THIN_PARAMS, "g": STEPS},
                 dask="sketchlearn.thinning._dask:compress_thin_dask")
def compress_thin(X, n_out=None, *, g=4, kernel="gaussian", bandwidth="median",
                  variant="kt+", alpha=0.5, delta=0.5, unique=False, random_state=None,
                  verbose=0, return_mmd=False, **kernel_params):
    """Compress++: near-linear-time kernel thinning to ``n_out`` rows.

    Compress halves recursively (blocks of ``4^g`` rows are merged four at a time
    and halved), turning each quarter of ``n' = 4^g 4^j`` rows into
    ``2^g sqrt(n'/4)`` rows, ``2^(g+1) sqrt(n')`` in all; kernel thinning then takes
    these to ``n_out``. Time O(4^g n log n) kernel evaluations,
    memory O(n d).

    Each halving is symmetrised kernel thinning of one round, as goodpoints'
    Compress runs it and as the guarantee of Shetty, Dwivedi and Mackey (2022)
    assumes (an unbiased halving): KT-SPLIT, the better of its first coreset and the
    block's alternate points, one KT-SWAP pass without repeats, and then that
    coreset or its complement in the block, each with probability 1/2.

    Rows beyond the largest ``n' <= n`` of that form are not dropped: they are
    compressed the same way (recursively, in smaller blocks) and enter the target
    measure of the final KT-SWAP with their weight, so every input row counts; the
    KT-SPLIT candidates come from the main block. ``g`` is raised when needed so that
    the main block yields at least ``n_out`` points.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Input points: NumPy, CuPy, or a Dask array. On Dask, Compress++ runs chunk by
        chunk (chunks rechunked to ``4^g 4^i`` rows) and merges four summaries at a
        time; randomness is keyed by tree node, so one seed gives one coreset
        whatever the chunking and scheduler, though not the in-memory coreset of
        that seed. The indices are NumPy row numbers (see the user guide's Dask
        page).
    n_out : int, optional
        Coreset size, default ``floor(sqrt(n))``.
    g : int, default=4
        Oversampling: Compress keeps ``2^g`` times more points than ``sqrt(n)``.
    delta : float in (0, 1), default=0.5
        Total failure probability, split as in the paper between the halvings and
        the final kernel thinning. With ``m`` the KT-SPLIT rounds of the final
        kernel thinning and ``beta`` the halving levels of the main block
        (``log4(n'/4^g) - 1``), the final kernel thinning runs with
        ``delta m / (m + 2^m beta)`` (its rounds as in :func:`kernel_thin`), and a
        halving of ``l`` points runs KT-SPLIT with ``delta_l = c l^2`` (each of its
        ``l/2`` steps with ``delta_l / l``), ``c`` chosen so that the ``delta_l`` of all
        halvings, those of the remainder blocks included, add up to the rest,
        ``delta 2^m beta / (m + 2^m beta)``. For ``n = 4^k`` and ``n_out = sqrt(n)``
        these equal goodpoints' ``compresspp_kt`` (``m = g + 1``, four bins). Without
        halvings the final kernel thinning gets all of ``delta``.
    kernel, bandwidth, variant, alpha, unique, random_state, verbose, **kernel_params
        As in :func:`kernel_thin`.
    return_mmd : bool, default=False
        Also return the MMD of the coreset to the input (computed exactly only for
        ``n <= 2**14``, an O(n^2) sum; NaN above).

    Returns
    -------
    indices : ndarray of shape (n_out,)
        Row numbers of the coreset (sorted).
    mmd : float
        Only with ``return_mmd=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.thinning import compress_thin
    >>> X = np.random.default_rng(0).normal(size=(4096, 2))
    >>> compress_thin(X, 64, g=2, bandwidth=1.0, random_state=0).shape
    (64,)
    """
    X, n_out, _, k = _check_common(X, n_out, delta, None, kernel, bandwidth, kernel_params)
    split_k = split_kernel(k, variant, X.shape[1], alpha)
    rng = as_generator(random_state)
    n = X.shape[0]
    xp = get_namespace(X)
    # Enough oversampling for the main block to yield n_out points.
    main = 4 ** ((n.bit_length() - 1) // 2)
    while g > 0 and 4**g > main:
        g -= 1
    while 2**g * math.isqrt(main) < n_out and 4**g < main:
        g += 1
    sizes = _compress_sizes(n, g)  # sizes[0] == main
    outputs = [_compressed_size(size, g) for size in sizes]
    first = outputs[0]
    pool_size = sum(outputs) + n - sum(sizes)
    rounds = ((first if first >= n_out else pool_size) // n_out).bit_length() - 1
    thin_delta, delta_per_sq = _delta_split(sizes, g, rounds, delta)
    levels = sum(_halving_levels(size, g) for size in sizes)
    progress = progress_bar(verbose, levels + rounds, "Compress++ halving", unit="round")
    with reference_until_compiled(small=_small_for_reference(n, X.shape[1])):
        try:
            parts = _compress_all(xp, X, np.arange(n), g, split_k, k, delta_per_sq, rng,
                                  progress)
            pool = np.concatenate([rows for rows, _ in parts])
            mass = np.concatenate([np.full(rows.shape[0], m) for rows, m in parts]) / n
            if first < n_out:  # tiny inputs: the whole pool is the split sequence
                seq = np.arange(pool.shape[0])[: n_out << rounds]
            else:
                seq = np.sort(rng.choice(first, size=n_out << rounds, replace=False))
            pos, mean_k = _thin(xp, X, seq, pool, mass, n_out, k, split_k, thin_delta,
                                unique, rng, progress)
        finally:
            if progress is not None:
                progress.close()
        indices = np.sort(pool[pos])
        if not return_mmd:
            return indices
        if n > COMPRESS_EXACT_MMD_MAX:
            return indices, math.nan
        full_mean = _kernel_mean(xp, X, indices, np.arange(n), np.full(n, 1.0 / n), k)
        pp = float(np.mean(_kernel_mean(xp, X, np.arange(n), np.arange(n),
                                        np.full(n, 1.0 / n), k)))
        return indices, _finish_mmd(xp, X, indices, full_mean, pp, k)
