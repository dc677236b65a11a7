"""
====================================================================
Barycenters of histograms and point clouds, and unbalanced transport
====================================================================

:func:`~sketchlearn.transport.entropic_barycenter` averages histograms in the
geometry of optimal transport: the barycenter of two bumps is one bump in between,
where the Euclidean average has two. It runs iterative Bregman projections, in the
scaling domain where the scalings stay in the float range and in the log domain
where they do not, so small regularisations work, and ``debiased=True`` (Janati et al.
2020) removes most of the entropic blur.

:func:`~sketchlearn.transport.sliced_barycenter` does the same for point clouds
without a grid, moving a support of points down the sliced Wasserstein gradient.

The last part shows unbalanced transport, ``sinkhorn(..., reg_m=...)``: when the
target holds mass the source does not (here an extra bump), balanced transport must
move mass into it, while the unbalanced plan leaves it out at the price
``reg_m KL``.
"""

# %%
# Three histograms on a grid and their barycenters
# ------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.transport import entropic_barycenter, sinkhorn, sliced_barycenter

x = np.linspace(0, 1, 120)
M = (x[:, None] - x[None, :]) ** 2


def bump(centre, width):
    return np.exp(-((x - centre) ** 2) / (2 * width**2))


A = np.stack([bump(0.15, 0.03), bump(0.5, 0.06) + 0.6 * bump(0.62, 0.02),
              bump(0.85, 0.04)], axis=1)
A /= A.sum(axis=0)
weights = np.array([0.3, 0.4, 0.3])

reg = 2e-4  # about 3 squared grid steps: the debiased iteration converges
# At this reg the scalings e^(f / reg) leave the float range, so the default
# method="auto" would warn and switch to the log domain; ask for it directly.
plain = entropic_barycenter(A, M, reg, weights, method="log")
debiased = entropic_barycenter(A, M, reg, weights, debiased=True, method="log")
euclidean = A @ weights

fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
for k in range(A.shape[1]):
    axes[0].plot(x, A[:, k], color="0.6", lw=1)
axes[0].plot(x, euclidean, "k--", label="Euclidean average")
axes[0].set_title("inputs (grey) and their Euclidean average")
axes[0].legend()
axes[1].plot(x, plain, label="entropic barycenter")
axes[1].plot(x, debiased, label="debiased barycenter")
axes[1].set_title(f"Wasserstein barycenters, reg = {reg:g}, weights {weights.tolist()}")
axes[1].legend()
axes[1].set_xlabel("x")
fig.tight_layout()

print(f"means: inputs {np.round(x @ A, 3)}, barycenter {x @ plain:.3f}, "
      f"weighted mean of the inputs {x @ A @ weights:.3f}")

# %%
# Point clouds: the sliced barycenter of a ring, a square and a blob
# -------------------------------------------------------------------
rng = np.random.default_rng(0)
angle = rng.uniform(0, 2 * np.pi, 800)
ring = np.c_[np.cos(angle), np.sin(angle)] * 1.5 + rng.normal(scale=0.05, size=(800, 2))
square = rng.uniform(-1, 1, size=(800, 2)) + [4.0, 0.0]
blob = rng.normal(scale=0.5, size=(800, 2)) + [2.0, 3.5]
Z = sliced_barycenter([ring, square, blob], n_projections=8, random_state=0)
fig, ax = plt.subplots(figsize=(6, 5))
for cloud, name in [(ring, "ring"), (square, "square"), (blob, "blob")]:
    ax.scatter(*cloud.T, s=2, alpha=0.4, label=name)
ax.scatter(*Z.T, s=2, color="k", label="sliced barycenter")
ax.set_aspect("equal")
ax.legend(markerscale=5)
ax.set_title("equal weights: the barycenter sits at the mean of the centres")

# %%
# Unbalanced transport leaves unmatched mass where it is
# ------------------------------------------------------
a = bump(0.3, 0.05)
b = bump(0.45, 0.05) + 0.5 * bump(0.9, 0.02)  # the bump at 0.9 has no partner
a /= a.sum()
b /= b.sum()
balanced = sinkhorn(a, b, M, reg=1e-3)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharey=True)
axes[0].imshow(balanced.plan.T, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
axes[0].set_title(f"balanced\ncost {balanced.cost:.4f}")
for ax, reg_m in zip(axes[1:], [0.05, 0.01], strict=True):
    res = sinkhorn(a, b, M, reg=1e-3, reg_m=reg_m)
    ax.imshow(res.plan.T, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
    ax.set_title(f"reg_m = {reg_m:g}\nmass {res.plan.sum():.2f}, cost {res.cost:.4f}")
    print(f"reg_m = {reg_m:g}: transported mass {res.plan.sum():.3f}, "
          f"mass sent beyond x = 0.75: {res.plan[:, x > 0.75].sum():.4f} "
          f"(balanced: {balanced.plan[:, x > 0.75].sum():.4f})")
for ax in axes:
    ax.set_xlabel("source x")
axes[0].set_ylabel("target y")
fig.tight_layout()
plt.show()
