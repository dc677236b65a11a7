"""Linear stochastic approximation (LSA): solve ``A theta = b`` from noisy samples.

Given a stream of samples ``(A_n, b_n)`` whose means are ``A`` and ``b``, LSA with a
constant step ``step`` runs

    theta_n = theta_{n-1} - step * (A_n theta_{n-1} - b_n)

and reports the Polyak-Ruppert average of the iterates after a burn-in. Under
Markov noise the averaged iterate has a bias of order ``step``; Richardson-Romberg
extrapolation runs a second chain with ``2 * step`` on the same stream and reports
``2 * avg(step) - avg(2 step)``, which cancels the first-order term.

Two sample formats share one driver:

* dense: ``A`` of shape ``(n, p, p)`` and ``b`` of shape ``(n, p)``, O(p^2) a step;
* rank one: ``A_n = U_n V_n^T`` and ``b_n = c_n U_n``, O(p) a step and no
  ``n x p x p`` stack (least squares: ``U = V = x``, ``c = y``; TD(0):
  ``U = phi``, ``V = phi - gamma phi'``, ``c = reward``).

The per-sample loop is a :class:`~sketchlearn._array_api.Dispatch` operation over
``K`` chains at once (Numba for NumPy, CuPy for CuPy, the array-API reference
below otherwise). Each chain ``k`` reads samples ``index[k]`` with step
``steps[k]``; one chain is plain LSA, two chains on one stream are
Richardson-Romberg, and ``B`` chains on resampled streams are a bootstrap
ensemble. The state of a chain (last iterate, running average, update count) is
kept in float64 whatever the data's dtype, so that fitting in chunks equals
fitting at once exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._array_api import (
    Dispatch,
    get_namespace,
    move_to,
    public_function,
    result_float_dtype,
    to_numpy,
)
from .._random import as_generator
from .._validation import COUNT, POSITIVE, SEED, STEPS, check_array, user_stacklevel

__all__ = [
    "linear_stochastic_approximation",
    "StepSizeWarning",
    "stability_bound",
]

# The mean matrix for the step-size check is estimated from at most this many
# samples (evenly spaced), so the check costs O(m p^2 + p^3) whatever n is.
BOUND_SAMPLES = 4096
# Above this dimension the eigenvalue check is skipped (O(p^3)); divergence is still
# caught by the growth check.
BOUND_MAX_DIM = 1000
# An iterate this many times larger than the problem's scale counts as divergence.
DIVERGENCE_FACTOR = 1e8


class StepSizeWarning(UserWarning):
    """The step size exceeds the stability bound estimated from the data.

    Raised as a warning by linear stochastic approximation when ``step`` (or
    ``2 * step`` with Richardson-Romberg) is at or above
    ``min 2 Re(lambda) / |lambda|^2`` over the eigenvalues of the mean ``A``, or
    when that mean has an eigenvalue with a negative real part.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sketchlearn.linear_model import (
    ...     StepSizeWarning, linear_stochastic_approximation)
    >>> A = np.tile(np.eye(2), (10, 1, 1))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     theta = linear_stochastic_approximation(A, np.ones((10, 2)), step=2.5)
    >>> caught[0].category is StepSizeWarning
    True
    """


# ----------------------------------------------------------------------------------
# Reference loops (array-API code; the oracle for the Numba and CuPy kernels)
# ----------------------------------------------------------------------------------


def lsa_rank_one_reference(xp, U, V, c, index, theta, avg, t0, steps, burn_in):
    """Run ``K`` LSA chains on rank-one samples ``A_i = U_i V_i^T``, ``b_i = c_i U_i``.

    Parameters
    ----------
    xp : namespace
        Array namespace of ``U``, ``V``, ``c``, ``theta`` and ``avg``.
    U, V : arrays of shape (n, p)
        Factors of the samples (float32 or float64).
    c : array of shape (n,)
        Scalars of ``b_i = c_i U_i``.
    index : ndarray of int64, shape (K, T)
        Host array: chain ``k`` processes samples ``index[k, 0], ..., index[k, T-1]``.
    theta, avg : arrays of shape (K, p), float64
        Last iterate and running average of each chain (not modified).
    t0 : int
        Number of updates every chain has done before (for the average).
    steps : ndarray of shape (K,)
        Step size of each chain.
    burn_in : int
        Iterates ``1..burn_in`` (counted over all updates) are left out of the average.

    Returns
    -------
    theta, avg : arrays of shape (K, p), float64
        Updated state.
    status : ndarray of int64, shape (K,)
        -1 where the chain stayed finite, else the position in ``index[k]`` where it
        became non-finite (the chain stops there).
    """
    K, T = index.shape
    status = np.full(K, -1, dtype=np.int64)
    thetas, avgs = [], []
    for k in range(K):
        th = theta[k, :]
        av = avg[k, :]
        step = float(steps[k])
        for j in range(T):
            i = int(index[k, j])
            r = xp.sum(xp.astype(V[i, :], xp.float64) * th) - xp.astype(c[i], xp.float64)
            if not math.isfinite(float(r)):
                status[k] = j
                break
            th = th - (step * r) * xp.astype(U[i, :], xp.float64)
            t = t0 + j + 1
            if t > burn_in:
                av = av + (th - av) / float(t - burn_in)
        if status[k] < 0 and T > 0 and not bool(xp.all(xp.isfinite(th))):
            status[k] = T - 1
        thetas.append(th)
        avgs.append(av)
    return xp.stack(thetas), xp.stack(avgs), status


def lsa_dense_reference(xp, A, b, index, theta, avg, t0, steps, burn_in):
    """Run ``K`` LSA chains on dense samples ``A`` (n, p, p) and ``b`` (n, p).

    Same arguments and returns as :func:`lsa_rank_one_reference`, with the samples
    given as the stack ``A`` and the vectors ``b``.
    """
    K, T = index.shape
    status = np.full(K, -1, dtype=np.int64)
    thetas, avgs = [], []
    for k in range(K):
        th = theta[k, :]
        av = avg[k, :]
        step = float(steps[k])
        for j in range(T):
            i = int(index[k, j])
            r = xp.matmul(xp.astype(A[i, :, :], xp.float64), th) - xp.astype(b[i, :],
                                                                            xp.float64)
            if not bool(xp.all(xp.isfinite(r))):
                status[k] = j
                break
            th = th - step * r
            t = t0 + j + 1
            if t > burn_in:
                av = av + (th - av) / float(t - burn_in)
        if status[k] < 0 and T > 0 and not bool(xp.all(xp.isfinite(th))):
            status[k] = T - 1
        thetas.append(th)
        avgs.append(av)
    return xp.stack(thetas), xp.stack(avgs), status


def _chain_states(xp, rng, K, p):
    """Last iterates and running averages of ``K`` chains (float64 on the device)."""
    return move_to(rng.normal(size=(K, p)), xp), move_to(rng.normal(size=(K, p)), xp)


def _lsa_examples(xp, rng, dense):
    """Chains as :meth:`Samples.run` advances them: host (K, T) sample orders (epochs
    reshuffled, or bootstrap resamples), host step sizes, float64 state; a first run
    and a resumed one past the burn-in, float64 and float32 samples; a chain that
    overflows (its position is reported) and an empty order."""
    n, p = 60, 4
    out = []
    for dtype, K, t0, burn_in in ((np.float64, 3, 0, 0), (np.float32, 3, 17, 40),
                                  (np.float64, 1, 5, 3)):
        U = rng.normal(size=(n, p))
        if dense:
            data = (np.eye(p) + 0.3 * rng.normal(size=(n, p, p)), rng.normal(size=(n, p)))
        else:
            data = (U, U + 0.3 * rng.normal(size=(n, p)), rng.normal(size=n))
        index = (stream_index(n, 3, True, rng)[None, :] if K == 1
                 else bootstrap_index(n, K, 5, rng))
        steps = np.array([0.01, 0.02, 0.05])[:K]
        out.append((tuple(move_to(a.astype(dtype), xp) for a in data)
                    + (index, *_chain_states(xp, rng, K, p), t0, steps, burn_in), {}))
    # |1 - 5 * 2| = 9 per step: the iterate overflows after about 320 of 400 steps.
    twos = 2.0 * np.eye(2)[None] if dense else np.ones((10, 2))
    data = (np.repeat(twos, 10, axis=0), np.ones((10, 2))) if dense else (
        twos, twos, np.ones(10))
    zeros = move_to(np.zeros((1, 2)), xp)
    out.append((tuple(move_to(a, xp) for a in data)
                + (np.tile(np.arange(10), 40)[None, :], zeros, zeros, 0, np.array([5.0]), 0),
                {}))
    out.append((tuple(move_to(a, xp) for a in data)
                + (np.zeros((2, 0), dtype=np.int64), *_chain_states(xp, rng, 2, 2), 4,
                   np.array([0.1, 0.1]), 0), {}))
    return out


def _lsa_rank_one_examples(xp, rng):
    return _lsa_examples(xp, rng, dense=False)


def _lsa_dense_examples(xp, rng):
    return _lsa_examples(xp, rng, dense=True)


lsa_rank_one_op = Dispatch(lsa_rank_one_reference,
                           numba="sketchlearn.linear_model._numba:lsa_rank_one",
                           cupy="sketchlearn.linear_model._cupy:lsa_rank_one",
                           examples=_lsa_rank_one_examples)
lsa_dense_op = Dispatch(lsa_dense_reference,
                        numba="sketchlearn.linear_model._numba:lsa_dense",
                        cupy="sketchlearn.linear_model._cupy:lsa_dense",
                        examples=_lsa_dense_examples)


# ----------------------------------------------------------------------------------
# Samples, streams, step sizes
# ----------------------------------------------------------------------------------


class Samples:
    """A batch of LSA samples in dense or rank-one form (arrays of one namespace).

    ``Samples.dense(A, b)`` holds ``A`` (n, p, p) and ``b`` (n, p);
    ``Samples.rank_one(U, V, c)`` holds ``A_i = U_i V_i^T`` and ``b_i = c_i U_i``.
    """

    def __init__(self, kind, arrays):
        self.kind = kind
        self.arrays = arrays

    @classmethod
    def dense(cls, A, b):
        return cls("dense", (A, b))

    @classmethod
    def rank_one(cls, U, V, c):
        return cls("rank_one", (U, V, c))

    @property
    def n_samples(self) -> int:
        return int(self.arrays[0].shape[0])

    @property
    def n_features(self) -> int:
        return int(self.arrays[0].shape[1])

    @property
    def dtype(self):
        return self.arrays[0].dtype

    @property
    def xp(self):
        return get_namespace(*self.arrays)

    def max_norm(self) -> float:
        """max_i of the Frobenius norm of A_i (``||U_i|| ||V_i||`` in rank-one form)."""
        xp = self.xp
        if self.kind == "dense":
            A = self.arrays[0]
            norms = xp.sqrt(xp.sum(xp.reshape(A * A, (A.shape[0], -1)), axis=1))
        else:
            U, V, _ = self.arrays
            norms = xp.sqrt(xp.sum(U * U, axis=1) * xp.sum(V * V, axis=1))
        return float(xp.max(xp.astype(norms, xp.float64))) if self.n_samples else 0.0

    def mean_sums(self, max_samples: int = BOUND_SAMPLES):
        """Sums of A_i and b_i over all samples, estimated from an even subsample.

        Returns host float64 arrays ``(A_sum (p, p), b_sum (p,))``.
        """
        n = self.n_samples
        m = min(n, max_samples)
        rows = np.unique(np.linspace(0, n - 1, m).round().astype(np.int64))
        scale = n / rows.shape[0]
        xp = self.xp
        take = move_to(rows, xp)
        if self.kind == "dense":
            A = to_numpy(xp.take(self.arrays[0], take, axis=0)).astype(np.float64)
            b = to_numpy(xp.take(self.arrays[1], take, axis=0)).astype(np.float64)
            return A.sum(axis=0) * scale, b.sum(axis=0) * scale
        U, V, c = (to_numpy(xp.take(a, take, axis=0)).astype(np.float64) for a in self.arrays)
        return (U.T @ V) * scale, (U.T @ c) * scale

    def run(self, index, theta, avg, t0, steps, burn_in, backend=None):
        """Advance the chains over ``index`` (see :func:`lsa_rank_one_reference`)."""
        op = lsa_dense_op if self.kind == "dense" else lsa_rank_one_op
        xp = self.xp
        fn = op if backend is None else op.implementation(backend)
        return fn(xp, *self.arrays, index, theta, avg, int(t0),
                  np.asarray(steps, dtype=np.float64), int(burn_in))


def stability_bound(A_mean) -> float:
    """Largest stable constant step of the mean recursion ``I - step * A_mean``.

    The mean iteration ``theta <- theta - step (A theta - b)`` converges exactly when
    every eigenvalue ``lambda`` of ``A`` has ``|1 - step lambda| < 1``, that is
    ``step < 2 Re(lambda) / |lambda|^2`` (for symmetric positive definite ``A``:
    ``step < 2 / lambda_max``). Eigenvalues that are zero to rounding (directions
    the data do not see, such as collinear features) are ignored.

    Parameters
    ----------
    A_mean : array-like of shape (p, p)
        Mean of the samples ``A_n``.

    Returns
    -------
    bound : float
        ``min 2 Re(lambda) / |lambda|^2``; ``inf`` for a zero matrix and 0 when an
        eigenvalue has a negative real part (no step size is stable).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import stability_bound
    >>> stability_bound(np.diag([1.0, 4.0]))
    0.5
    """
    A_mean = np.asarray(A_mean, dtype=np.float64)
    lam = np.linalg.eigvals(A_mean)
    size = float(np.max(np.abs(lam))) if lam.size else 0.0
    if size == 0.0 or not np.isfinite(size):
        return math.inf if size == 0.0 else 0.0
    keep = np.abs(lam) > 1e3 * np.finfo(np.float64).eps * A_mean.shape[0] * size
    lam = lam[keep]
    if np.any(lam.real <= 0):
        return 0.0
    return float(np.min(2.0 * lam.real / np.abs(lam) ** 2))


def auto_step(samples: Samples) -> float:
    """``step="auto"``: ``1 / (2 max_i ||A_i||_F)``.

    For least squares (``A_i = x_i x_i^T``) both this step and twice it (the second
    Richardson-Romberg chain) keep every update ``I - step x x^T`` non-expansive.
    """
    top = samples.max_norm()
    if top == 0.0:
        return 1.0
    return 0.5 / top


def stream_index(n: int, n_epochs: int, shuffle: bool, rng) -> np.ndarray:
    """Order in which ``n_epochs`` passes visit ``n`` samples (reshuffled per pass)."""
    if shuffle:
        return np.concatenate([rng.permutation(n) for _ in range(n_epochs)]).astype(np.int64)
    return np.tile(np.arange(n, dtype=np.int64), n_epochs)


def bootstrap_index(n: int, n_chains: int, block_length: int, rng) -> np.ndarray:
    """Moving-block bootstrap resamples of ``range(n)``, shape ``(n_chains, n)``.

    Each resample concatenates blocks ``[s, s + block_length)`` with ``s`` uniform on
    ``0 .. n - block_length`` and is cut to length ``n``; ``block_length=1`` is the
    ordinary (iid) bootstrap. Blocks keep the short-range dependence of Markov data.
    """
    L = min(block_length, n)
    n_blocks = -(-n // L)
    starts = rng.integers(0, n - L + 1, size=(n_chains, n_blocks))
    rows = (starts[:, :, None] + np.arange(L)[None, None, :]).reshape(n_chains, -1)
    return np.ascontiguousarray(rows[:, :n], dtype=np.int64)


# ----------------------------------------------------------------------------------
# The driver shared by the estimators and the function
# ----------------------------------------------------------------------------------


class ChainState:
    """State of LSA chains between calls: iterates, running averages, counters.

    ``theta`` and ``avg`` have shape ``(K, p)`` with ``K = 1`` or ``2``
    (Richardson-Romberg); they and the accumulated mean estimate (``A_sum``,
    ``b_sum`` over ``n_seen`` samples) are float64.
    """

    def __init__(self, theta, avg, t, A_sum, b_sum, n_seen, theta_start_scale):
        self.theta = theta
        self.avg = avg
        self.t = t
        self.A_sum = A_sum
        self.b_sum = b_sum
        self.n_seen = n_seen
        self.theta_start_scale = theta_start_scale

    @classmethod
    def start(cls, theta0, n_chains, xp):
        theta = xp.stack([xp.astype(theta0, xp.float64)] * n_chains)
        p = theta0.shape[0]
        scale = float(xp.max(xp.abs(xp.astype(theta0, xp.float64)))) if p else 0.0
        return cls(theta, xp.zeros_like(theta), 0, np.zeros((p, p)), np.zeros(p), 0, scale)


def _steps(step: float, richardson: bool) -> np.ndarray:
    return np.array([step, 2.0 * step] if richardson else [step], dtype=np.float64)


def check_step(step: float, richardson: bool, state: ChainState):
    """Warn when ``step`` (or ``2 step`` with Richardson-Romberg) is not stable.

    Uses the mean of the samples seen so far (``state.A_sum / state.n_seen``).
    Returns the estimated bound (``nan`` when skipped).
    """
    p = state.A_sum.shape[0]
    if state.n_seen == 0 or p > BOUND_MAX_DIM:
        return math.nan
    bound = stability_bound(state.A_sum / state.n_seen)
    largest = 2.0 * step if richardson else step
    if bound == 0.0:
        warnings.warn(
            "The mean of the A_n seen so far has an eigenvalue with a negative real part, so "
            "linear stochastic approximation diverges for every step size. For TD(0) this "
            "happens with off-policy data or features that do not fit the chain; check the "
            "samples.", StepSizeWarning, stacklevel=user_stacklevel())
    elif largest >= bound:
        which = "2 * step (the second Richardson-Romberg chain)" if richardson else "step"
        warnings.warn(
            f"{which} = {largest:.4g} is at or above the stability bound {bound:.4g} estimated "
            f"from the {state.n_seen} samples seen (2 Re(lambda) / |lambda|^2 over the "
            f"eigenvalues of their mean A); the iterates will likely diverge. Use "
            f"step < {bound / (2.0 if richardson else 1.0):.4g}, e.g. step='auto'.",
            StepSizeWarning, stacklevel=user_stacklevel())
    return bound


def _problem_scale(state: ChainState) -> float:
    """1 + |theta_start| + |least-squares solution of the mean equations| (max norms)."""
    scale = 1.0 + state.theta_start_scale
    if state.n_seen and state.A_sum.shape[0] <= BOUND_MAX_DIM:
        sol = np.linalg.lstsq(state.A_sum / state.n_seen, state.b_sum / state.n_seen,
                              rcond=None)[0]
        if np.all(np.isfinite(sol)):
            scale += float(np.max(np.abs(sol), initial=0.0))
    return scale


def advance(samples: Samples, index, state: ChainState, step: float, richardson: bool,
            burn_in: int, *, count_samples: bool = True):
    """Run the chains of ``state`` over ``index``; return the new state and the bound.

    The input ``state`` is left unchanged, so an error leaves an estimator as it was.

    Raises
    ------
    FloatingPointError
        When an iterate becomes non-finite or grows beyond ``DIVERGENCE_FACTOR``
        times the problem's scale (divergence).
    """
    A_sum, b_sum = state.A_sum, state.b_sum
    n_seen = state.n_seen
    if count_samples and samples.n_samples:
        A_add, b_add = samples.mean_sums()
        A_sum, b_sum, n_seen = A_sum + A_add, b_sum + b_add, n_seen + samples.n_samples
    new = ChainState(state.theta, state.avg, state.t, A_sum, b_sum, n_seen,
                     state.theta_start_scale)
    bound = check_step(step, richardson, new)
    steps = _steps(step, richardson)
    index2 = np.ascontiguousarray(np.broadcast_to(index, (steps.shape[0], index.shape[0])))
    theta, avg, status = samples.run(index2, state.theta, state.avg, state.t, steps, burn_in)
    xp = samples.xp
    per_chain = to_numpy(xp.max(xp.abs(theta), axis=1)) if theta.shape[1] else np.zeros(1)
    limit = DIVERGENCE_FACTOR * _problem_scale(new)
    if np.any(status >= 0) or not np.all(per_chain <= limit):
        if np.any(status >= 0):
            k = int(np.argmax(status >= 0))
            where = f"became non-finite at update {state.t + int(status[k]) + 1}"
        else:
            k = int(np.nanargmax(per_chain)) if np.any(np.isfinite(per_chain)) else 0
            where = (f"grew to {per_chain[k]:.3g} (problem scale "
                     f"{limit / DIVERGENCE_FACTOR:.3g})")
        bound_text = "" if math.isnan(bound) else f" (stability bound estimated {bound:.4g})"
        raise FloatingPointError(
            f"Linear stochastic approximation diverged: the iterate with step "
            f"{steps[k]:.4g}{bound_text} {where}. Use a smaller step (step='auto' uses "
            f"1 / (2 max ||A_n||)), or rescale the features.")
    new.theta, new.avg, new.t = theta, avg, state.t + int(index.shape[0])
    return new, bound


def estimate(state: ChainState, average: bool, burn_in: int, richardson: bool, xp):
    """The reported estimate: average (after burn-in) or last iterate, extrapolated."""
    use_avg = average and state.t > burn_in
    est = state.avg if use_avg else state.theta
    if richardson:
        return 2.0 * est[0, :] - est[1, :]
    return est[0, :]


def run_bootstrap(samples: Samples, index, theta0, step: float, richardson: bool,
                  burn_in: int, average: bool, n_chains: int, block_length: int, rng,
                  backend=None):
    """Estimates of ``n_chains`` LSA runs on moving-block resamples, shape (n_chains, p).

    Chain ``b`` sees ``boot[b, index]``: the resample ``boot[b]`` of the samples read
    in the same order (epochs, shuffles) as the main run. All chains (twice as many
    with Richardson-Romberg) advance in one batched kernel call.
    """
    xp = samples.xp
    n = samples.n_samples
    boot = bootstrap_index(n, n_chains, block_length, rng)
    streams = boot[:, index]
    steps = np.repeat(_steps(step, richardson)[None, :], n_chains, axis=0).reshape(-1)
    reps = steps.shape[0] // n_chains
    streams = np.ascontiguousarray(np.repeat(streams, reps, axis=0))
    start = xp.stack([xp.astype(theta0, xp.float64)] * streams.shape[0])
    theta, avg, status = samples.run(streams, start, xp.zeros_like(start), 0, steps, burn_in,
                                     backend=backend)
    if np.any(status >= 0):
        raise FloatingPointError(
            f"{int(np.sum(status >= 0))} of the bootstrap chains diverged with step "
            f"{step:.4g}; use a smaller step.")
    use = avg if (average and index.shape[0] > burn_in) else theta
    use = xp.reshape(use, (n_chains, reps, -1))
    if richardson:
        return 2.0 * use[:, 0, :] - use[:, 1, :]
    return use[:, 0, :]


# ----------------------------------------------------------------------------------
# The functional interface
# ----------------------------------------------------------------------------------


# Parameter constraints shared by the function and the estimators (checked once: by
# public_function, or by the estimators' _parameter_constraints).
LSA_PARAMS = {
    "step": [*POSITIVE, StrOptions({"auto"})],
    "average": ["boolean"],
    "burn_in": STEPS,
    "richardson": ["boolean"],
    "n_epochs": COUNT,
    "shuffle": ["boolean"],
    "random_state": SEED,
}


# The CUDA kernels run one thread per chain: below this many chains most of a GPU idles
# and one of its threads is far slower than a CPU core, so device="auto" stays on the CPU.
GPU_MIN_CHAINS = 1024


def gpu_work(n_samples, n_epochs, n_features, chains):
    """Size of an LSA run for ``device="auto"``: samples x epochs x features x chains,
    and 0 (never worth moving) with fewer than ``GPU_MIN_CHAINS`` chains."""
    if chains < GPU_MIN_CHAINS:
        return 0.0
    return float(n_samples) * n_epochs * n_features * chains


def _lsa_work(A, n_epochs=1, richardson=False, **_):
    """The function runs one chain (two with Richardson): see ``gpu_work``."""
    shape = np.shape(A[0]) if isinstance(A, tuple) else np.shape(A)
    return gpu_work(shape[0], n_epochs, shape[1], 2 if richardson else 1)


@public_function(arrays=("A", "b", "theta0"), work=_lsa_work,
                 params={**LSA_PARAMS, "theta0": ["array-like", None]})
def linear_stochastic_approximation(A, b, *, step="auto", average=True, burn_in=0,
                                    richardson=False, n_epochs=1, shuffle=False,
                                    theta0=None, random_state=None):
    """Solve ``mean(A_n) theta = mean(b_n)`` by constant-step stochastic approximation.

    Runs ``theta_n = theta_{n-1} - step (A_n theta_{n-1} - b_n)`` over the samples in
    order (``n_epochs`` passes) and returns the Polyak-Ruppert average of the
    iterates after ``burn_in`` (or the last iterate), optionally Richardson-Romberg
    extrapolated. Functional twin of
    :class:`~sketchlearn.linear_model.LinearStochasticApproximation`.

    Parameters
    ----------
    A : array of shape (n, p, p), or tuple ``(U, V)`` of arrays of shape (n, p)
        The samples ``A_n``; a tuple gives them in rank-one form
        ``A_n = outer(U_n, V_n)`` (O(p) per step, no ``n x p x p`` array).
    b : array of shape (n, p), or of shape (n,) with rank-one ``A``
        The samples ``b_n``; with rank-one ``A`` a 1-D ``b`` means
        ``b_n = b[n] * U_n`` (least squares: ``U = V = X``, ``b = y``).
    step : float > 0 or "auto", default="auto"
        Constant step size; "auto" is ``1 / (2 max_n ||A_n||_F)``.
    average : bool, default=True
        Return the average of the iterates after ``burn_in``; else the last one.
    burn_in : int >= 0, default=0
        Number of first iterates left out of the average.
    richardson : bool, default=False
        Also run ``2 * step`` on the same stream and return
        ``2 * estimate(step) - estimate(2 * step)`` (cancels the O(step) bias under
        Markov noise).
    n_epochs : int >= 1, default=1
        Passes over the samples.
    shuffle : bool, default=False
        Visit the samples in a new random order in each pass.
    theta0 : array of shape (p,), optional
        Starting point; zeros by default.
    random_state : int, Generator, RandomState or None
        Seed for ``shuffle``.

    Returns
    -------
    theta : array of shape (p,)
        The estimate, in the dtype of ``A`` (float32 or float64).

    Raises
    ------
    FloatingPointError
        When the iterates diverge (step too large).

    Warns
    -----
    StepSizeWarning
        When ``step`` exceeds the stability bound estimated from the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import linear_stochastic_approximation
    >>> rng = np.random.default_rng(0)
    >>> A = np.eye(2) + 0.1 * rng.normal(size=(5000, 2, 2))
    >>> b = np.array([1.0, -1.0]) + 0.1 * rng.normal(size=(5000, 2))
    >>> theta = linear_stochastic_approximation(A, b, step=0.05)
    >>> np.round(theta, 1)
    array([ 1., -1.])
    """
    samples, theta0, step = _prepare(A, b, step, theta0)
    xp = get_namespace(*samples.arrays, theta0)
    index = stream_index(samples.n_samples, n_epochs, bool(shuffle), as_generator(random_state))
    state = ChainState.start(theta0, 2 if richardson else 1, xp)
    state, _ = advance(samples, index, state, step, bool(richardson), burn_in)
    theta = estimate(state, bool(average), burn_in, bool(richardson), xp)
    return xp.astype(theta, samples.dtype)


def _prepare(A, b, step, theta0):
    """Validate the function's arrays: Samples, theta0 (float64) and a numeric step."""
    if isinstance(A, tuple):
        if len(A) != 2:
            raise ValueError("A given as a tuple must be (U, V) with A_n = outer(U_n, V_n).")
        U = check_array(A[0], "U")
        V = check_array(A[1], "V")
        if V.shape != U.shape:
            raise ValueError(f"U has shape {tuple(U.shape)} but V has {tuple(V.shape)}; the "
                             "rank-one factors need the same shape (n, p).")
        xp = get_namespace(U, V)
        b = check_array(b, "b", ensure_2d=getattr(b, "ndim", np.ndim(b)) == 2)
        if b.shape[0] != U.shape[0]:
            raise ValueError(f"b has {b.shape[0]} samples but A has {U.shape[0]}.")
        if b.ndim == 1:
            dtype = result_float_dtype(xp, U, V, b)
            samples = Samples.rank_one(*(xp.astype(a, dtype) for a in (U, V, b)))
        else:
            # A general b_n (not along U_n) would need the dense form.
            raise ValueError("with rank-one A = (U, V), b must have shape (n,) "
                             "(b_n = b[n] * U_n); pass A as an (n, p, p) array otherwise.")
    else:
        A, b = check_lsa_samples(A, b)
        samples = Samples.dense(A, b)
    p = samples.n_features
    xp = samples.xp
    if theta0 is None:
        theta0 = xp.zeros(p, dtype=xp.float64)
    else:
        theta0 = check_array(theta0, "theta0", ensure_2d=False)
        if theta0.shape[0] != p:
            raise ValueError(f"theta0 has length {theta0.shape[0]} but the samples have "
                             f"dimension p={p}.")
        theta0 = xp.astype(move_to(theta0, xp), xp.float64)
    if step == "auto":
        step = auto_step(samples)
    return samples, theta0, float(step)


def check_lsa_samples(A, b):
    """Validate a dense stack ``A`` (n, p, p) and ``b`` (n, p); return float arrays."""
    try:
        A = A if hasattr(A, "shape") else np.asarray(A, dtype=float)
        b = b if hasattr(b, "shape") else np.asarray(b, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"A and b must be arrays of numbers: {exc}") from exc
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must be a stack of square matrices of shape (n, p, p); got shape "
                         f"{tuple(A.shape)}.")
    n, p = int(A.shape[0]), int(A.shape[1])
    flat = check_array(np.reshape(A, (n, p * p)) if not hasattr(A, "__array_namespace__")
                       else get_namespace(A).reshape(A, (n, p * p)), "A")
    xp = get_namespace(flat)
    b = check_array(b, "b")
    if b.shape != (n, p):
        raise ValueError(f"b must have shape (n, p) = {(n, p)} to match A of shape "
                         f"{tuple(A.shape)}; got {tuple(b.shape)}.")
    A = xp.reshape(flat, (n, p, p))
    if b.dtype != A.dtype:
        dtype = xp.float64
        A, b = xp.astype(A, dtype), xp.astype(b, dtype)
    return A, b
