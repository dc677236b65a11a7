"""
=================================================
Kernel thinning of a Gaussian mixture: 64 points
=================================================

A sample of 4096 points from a mixture of eight Gaussians is compressed to 64
points in two ways: a **uniform random subsample** and **kernel thinning**
(:class:`~sketchlearn.thinning.KernelThinning`, KT+ by default). Both keep 64
rows of the sample; kernel thinning chooses them so that their uniform
distribution is close to the whole sample in maximum mean discrepancy (MMD).

A random subsample of :math:`s` points is off by about :math:`s^{-1/2}` in MMD;
kernel thinning of :math:`n = s^2` points reaches about :math:`s^{-1} = n^{-1/2}`,
as close as a random subsample of :math:`n` points would be (Dwivedi and Mackey,
2024). See :doc:`the user guide </user_guide/thinning>` for the algorithm.
"""

# %%
# The sample
# ----------
# :func:`~sketchlearn.datasets.make_gaussian_mixture` puts the eight means on a
# circle of radius 4; with ``scale=0.5`` the components are well separated, so a
# good coreset should spend its points evenly on the eight clusters.

import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.datasets import make_gaussian_mixture
from sketchlearn.kernels import GaussianKernel, median_heuristic
from sketchlearn.metrics import mmd_subset
from sketchlearn.thinning import KernelThinning

n, n_out = 4096, 64
X, labels, means = make_gaussian_mixture(n, scale=0.5, random_state=0)

# %%
# One kernel for everything
# -------------------------
# Kernel thinning needs a kernel, and so does the MMD that scores the result. We
# fix a Gaussian kernel once and pass the kernel object both to the estimator and
# to :func:`~sketchlearn.metrics.mmd_subset`, so the numbers below are measured
# the same way.
#
# The bandwidth decides what "close in distribution" means. The median heuristic
# (the default of a named kernel) is the median distance between points, here
# about the distance between clusters: such a kernel sees how the mass is spread
# over the clusters but hardly what happens inside one. A bandwidth of 1, twice
# the standard deviation of a component, resolves the shape of each cluster too.

print(f"median-heuristic bandwidth: {median_heuristic(X):.2f}")
kernel = GaussianKernel(bandwidth=1.0)

kt = KernelThinning(kernel=kernel, n_out=n_out, random_state=0).fit(X)
print(f"kernel thinning: {kt.indices_.shape[0]} rows, MMD to the sample {kt.mmd_:.5f}")

# %%
# ``mmd_`` is the MMD between the uniform distribution on the coreset and the
# sample; :func:`~sketchlearn.metrics.mmd_subset` gives the same number from the
# row numbers.

print(f"mmd_subset on indices_: {mmd_subset(X, kt.indices_, kernel=kernel):.5f}")

# %%
# A uniform random subsample of the same size, repeated with 20 seeds to show
# how much its MMD varies from draw to draw.

rng = np.random.default_rng(1)
random_idx = [rng.choice(n, size=n_out, replace=False) for _ in range(20)]
random_mmd = np.array([mmd_subset(X, idx, kernel=kernel) for idx in random_idx])
print(f"uniform subsample: MMD median {np.median(random_mmd):.5f} "
      f"(min {random_mmd.min():.5f}, max {random_mmd.max():.5f} over 20 draws)")
print(f"kernel thinning is {np.median(random_mmd) / kt.mmd_:.1f} times closer")

# %%
# Side by side
# ------------
# The random subsample leaves some clusters with a few points and others with
# many; kernel thinning spreads its 64 points evenly over the clusters and, within
# each cluster, over its core and its fringe.

shown = random_idx[int(np.argsort(random_mmd)[len(random_mmd) // 2])]  # a typical draw
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
panels = [
    (axes[0], shown, f"uniform random subsample\nMMD {mmd_subset(X, shown, kernel=kernel):.4f}"),
    (axes[1], kt.indices_, f"kernel thinning (KT+)\nMMD {kt.mmd_:.4f}"),
]
for ax, idx, title in panels:
    ax.scatter(X[:, 0], X[:, 1], s=2, c="0.82", rasterized=True)
    ax.scatter(X[idx, 0], X[idx, 1], s=18, c="C3", edgecolors="k", linewidths=0.4)
    ax.set_title(title)
    ax.set_aspect("equal")
fig.suptitle(f"{n_out} of {n} points from a mixture of eight Gaussians")
fig.tight_layout()

# %%
# Points per cluster
# ------------------
# Each cluster holds about 1/8 of the sample, so a perfect coreset would put
# 8 of its 64 points in each.

counts_random = np.bincount(labels[shown], minlength=len(means))
counts_kt = np.bincount(labels[kt.indices_], minlength=len(means))
print("cluster          ", " ".join(f"{c:3d}" for c in range(len(means))))
print("uniform subsample", " ".join(f"{c:3d}" for c in counts_random))
print("kernel thinning  ", " ".join(f"{c:3d}" for c in counts_kt))

plt.show()
