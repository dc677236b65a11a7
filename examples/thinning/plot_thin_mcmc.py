"""
===================================================
Thinning MCMC output, with and without weights
===================================================

Markov chain Monte Carlo (MCMC) gives thousands of correlated draws, and
downstream work (plotting, expensive function evaluations, storage) often uses a
few of them. The usual way to keep a few is **standard thinning**: every
:math:`k`-th state of the chain. **Kernel thinning** keeps as many, chosen so that
their distribution stays close to the whole chain in maximum mean discrepancy
(MMD) (Dwivedi and Mackey, 2024).

The second half of the example thins **weighted** draws: states of a chain run
on a wider, easier distribution, reweighted by density ratios to the target.
:class:`~sketchlearn.thinning.KernelThinning` takes the weights as
``sample_weight`` and returns unweighted points for the *reweighted*
distribution.
"""

# %%
# A random-walk Metropolis chain on a banana
# ------------------------------------------
# The target is a "banana": :math:`x_1 \sim \mathcal N(0, 2^2)` and, given
# :math:`x_1`, :math:`x_2 \sim \mathcal N\bigl(\tfrac12 (x_1^2 - 4), 1\bigr)`.
# A random-walk Metropolis sampler with Gaussian steps of standard deviation 1
# explores it slowly (neighbouring states are strongly correlated). We discard
# 1000 steps of burn-in and keep :math:`2^{12} = 4096` states.

import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.kernels import GaussianKernel, kernel_matrix, median_heuristic
from sketchlearn.metrics import mmd_subset
from sketchlearn.thinning import KernelThinning


def log_banana(x):
    return -x[..., 0] ** 2 / 8 - (x[..., 1] - 0.5 * (x[..., 0] ** 2 - 4)) ** 2 / 2


def random_walk_metropolis(log_density, x0, n_steps, step, rng):
    """States of a random-walk Metropolis chain (proposals x + step * N(0, I))."""
    d = len(x0)
    proposals = step * rng.standard_normal((n_steps, d))
    log_u = np.log(rng.random(n_steps))
    chain = np.empty((n_steps, d))
    x, log_p = np.asarray(x0, dtype=float), log_density(np.asarray(x0, dtype=float))
    accepted = 0
    for t in range(n_steps):
        y = x + proposals[t]
        log_q = log_density(y)
        if log_u[t] < log_q - log_p:
            x, log_p = y, log_q
            accepted += 1
        chain[t] = x
    return chain, accepted / n_steps


rng = np.random.default_rng(0)
burn_in, n, n_out = 1000, 2**12, 64
chain, acceptance = random_walk_metropolis(log_banana, [0.0, 0.0], burn_in + n, 1.0, rng)
chain = chain[burn_in:]
print(f"{n} states kept, acceptance rate {acceptance:.2f}")

# %%
# Three ways to keep 64 states
# ----------------------------
# Standard thinning keeps every 64th state, a uniform subsample 64 states chosen
# at random, kernel thinning 64 states chosen by KT+. All three are scored by
# their MMD to the whole chain with one Gaussian kernel (median-heuristic
# bandwidth).

kernel = GaussianKernel(bandwidth=median_heuristic(chain))
standard_idx = np.arange(n // n_out - 1, n, n // n_out)
random_idx = rng.choice(n, size=n_out, replace=False)
kt = KernelThinning(kernel=kernel, n_out=n_out, random_state=0).fit(chain)

subsets = {
    "standard thinning\n(every 64th state)": standard_idx,
    "uniform subsample": random_idx,
    "kernel thinning (KT+)": kt.indices_,
}
print(f"bandwidth {kernel.bandwidth:.3f}; MMD to the chain:")
for name, idx in subsets.items():
    print(f"  {name.splitlines()[0]:22s} {mmd_subset(chain, idx, kernel=kernel):.5f}")

fig, axes = plt.subplots(1, 3, figsize=(11, 4.2), sharex=True, sharey=True,
                         layout="constrained")
for ax, (name, idx) in zip(axes, subsets.items(), strict=True):
    ax.plot(chain[:, 0], chain[:, 1], lw=0.3, c="0.8", zorder=0)
    ax.scatter(chain[idx, 0], chain[idx, 1], s=16, c="C3", edgecolors="k", linewidths=0.4)
    ax.set_title(f"{name}\nMMD {mmd_subset(chain, idx, kernel=kernel):.4f}", fontsize=10)
fig.suptitle(f"{n_out} of {n} Metropolis states (grey: the chain)")

# %%
# Standard thinning and the uniform subsample both leave gaps and clumps:
# 64 steps is not long for this chain to forget where it was, and random choices
# are random. Kernel thinning's points cover the banana evenly, tails included,
# which is why its MMD is about ten times smaller.
#
# Repeating the comparison with a few seeds of the random subsample and of kernel
# thinning shows that the gap is not luck (standard thinning is deterministic):

for seed in range(1, 4):
    r = np.random.default_rng(seed).choice(n, size=n_out, replace=False)
    k = KernelThinning(kernel=kernel, n_out=n_out, random_state=seed).fit(chain)
    print(f"seed {seed}: uniform {mmd_subset(chain, r, kernel=kernel):.5f}   "
          f"kernel thinning {k.mmd_:.5f}")

# %%
# Weighted draws: thinning with ``sample_weight``
# -----------------------------------------------
# Suppose the draws come from a distribution :math:`q` wider than the target
# :math:`p` (a tempered chain, or an importance-sampling proposal). Here
# :math:`p = \mathcal N(0, I_2)` and the chain runs on :math:`q = \mathcal
# N(0, 2^2 I_2)`. The importance weights :math:`w_i \propto p(x_i) / q(x_i)
# \propto \exp(-3 \lVert x_i \rVert^2 / 8)` turn the chain into a weighted sample
# of :math:`p`.
#
# With ``sample_weight=w``, kernel thinning draws the sequence it halves from the
# weights (systematic resampling) and its swap step targets the weighted
# distribution, so the coreset, a set of *unweighted* points, represents
# :math:`p`. Without the weights it represents :math:`q`.


def log_wide(x):
    return -np.sum(x**2, axis=-1) / 8  # N(0, 4 I), up to a constant


wide, _ = random_walk_metropolis(log_wide, [0.0, 0.0], burn_in + n, 2.5, rng)
wide = wide[burn_in:]
log_w = -3 * np.sum(wide**2, axis=1) / 8
w = np.exp(log_w - log_w.max())
w /= w.sum()
print(f"effective sample size of the weights: {1 / np.sum(w**2):.0f} of {n}")

# %%
# We score each coreset by its MMD to :math:`p = \mathcal N(0, I_2)` itself,
# which has a closed form for the Gaussian kernel (the same formula as in
# :doc:`plot_mmd_vs_n`), with bandwidth :math:`h = 2`. As baselines: 64 states
# drawn with probabilities :math:`w` (multinomial resampling), and 64 exact draws
# from :math:`p`.

h, d = 2.0, 2
gauss = GaussianKernel(bandwidth=h)


def mmd_to_standard_normal(S):
    """MMD between the uniform distribution on the rows of S and N(0, I_d)."""
    qq = kernel_matrix(S, S, kernel=gauss).mean()
    mean_p = (h**2 / (h**2 + 1)) ** (d / 2) * np.exp(-np.sum(S**2, axis=1) / (2 * (h**2 + 1)))
    return np.sqrt(max(qq - 2 * mean_p.mean() + (h**2 / (h**2 + 2)) ** (d / 2), 0.0))


unweighted = KernelThinning(kernel=gauss, n_out=n_out, random_state=0).fit(wide)
weighted = KernelThinning(kernel=gauss, n_out=n_out, random_state=0).fit(wide, sample_weight=w)
resampled = rng.choice(n, size=n_out, p=w)
exact = rng.standard_normal((n_out, d))

coresets = {
    "kernel thinning, no weights": wide[unweighted.indices_],
    "multinomial resampling by w": wide[resampled],
    "kernel thinning, sample_weight=w": weighted.coreset_,
}
print("MMD to N(0, I):")
for name, S in coresets.items():
    print(f"  {name:34s} {mmd_to_standard_normal(S):.5f}")
print(f"  {'64 exact draws from N(0, I)':34s} {mmd_to_standard_normal(exact):.5f}")
print(f"weighted coreset: mmd_ to the weighted chain {weighted.mmd_:.5f}")

# %%
# The unweighted coreset is a good summary of the wrong distribution; the
# weighted one matches :math:`p` better than resampling by the weights, and
# better than 64 exact draws from :math:`p` typically do (their MMD is of order
# :math:`64^{-1/2}`). What remains is mostly the error of the weighted chain
# itself, whose effective sample size is below :math:`n`. The circle is the
# contour of :math:`p` that holds 95 % of its mass.

theta = np.linspace(0, 2 * np.pi, 200)
radius = np.sqrt(-2 * np.log(0.05))
fig, axes = plt.subplots(1, 3, figsize=(11, 4.2), sharex=True, sharey=True,
                         layout="constrained")
for ax, (name, S) in zip(axes, coresets.items(), strict=True):
    ax.scatter(wide[:, 0], wide[:, 1], s=2, c="0.8", rasterized=True)
    ax.plot(radius * np.cos(theta), radius * np.sin(theta), "C0", lw=1)
    ax.scatter(S[:, 0], S[:, 1], s=16, c="C3", edgecolors="k", linewidths=0.4)
    ax.set_title(f"{name}\nMMD to N(0, I) {mmd_to_standard_normal(S):.4f}", fontsize=10)
    ax.set_aspect("equal")
fig.suptitle(f"{n_out} points from a chain on N(0, 4I), reweighted to N(0, I)")

plt.show()
