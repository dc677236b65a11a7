"""
=====================================================
Completing real tables and an image: error vs removed
=====================================================

Remove a growing fraction of the entries of three real data sets at random and
fill them in again with :class:`~sketchlearn.completion.AltMinCompleter`,
:class:`~sketchlearn.completion.SoftImpute` and
:class:`~sketchlearn.completion.SVTCompleter`, next to the usual baseline, the
column means (scikit-learn's ``SimpleImputer``):

* **El Niño** (statsmodels): monthly sea surface temperatures, 61 years x 12
  months; nearly rank one plus a seasonal shape;
* **digits** (scikit-learn): 1797 handwritten digits x 64 pixels;
* **an image** (scikit-learn's sample image ``china.jpg``), in grey levels and
  reduced to 143 x 214 pixels: rows of pixels are strongly correlated.

The error is the RMSE on the removed entries divided by the standard deviation of
those entries (1 is what a constant guess would score). See :doc:`the user guide
</user_guide/completion>` for the methods.
"""

# %%
# Data and methods
# ----------------
# Each method completes the column-centred matrix (the observed column means are
# subtracted first and added back after, as PCA would): a low-rank model then
# spends its rank on the variations, not on the means. AltMin gets a ridge of the
# same size as Soft-Impute's default shrinkage, and its rank follows
# a rule of thumb, about three observed entries per degree of freedom
# :math:`k (m + n)`, capped at ``max_rank``; in practice one would choose it on
# held-out entries (the estimators work in scikit-learn's grid searches).
# Soft-Impute and SVT choose their rank themselves (shrinkage and threshold at
# their data-driven defaults).
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import statsmodels.api as sm
from sklearn.datasets import load_digits, load_sample_image

from sketchlearn.completion import AltMinCompleter, SoftImpute, SVTCompleter

elnino = sm.datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy(dtype=float)
digits = load_digits().data.astype(float)
image = load_sample_image("china.jpg").mean(axis=2)[::3, ::3] / 255.0
datasets = {"El Niño (61 x 12)": (elnino, 3), "digits (1797 x 64)": (digits, 20),
            "image (143 x 214)": (image, 30)}


def altmin(X, max_rank):
    m, n = X.shape
    rank = int(np.clip(np.isfinite(X).sum() // (3 * (m + n)), 1, max_rank))
    # ridge alpha on both factors = nuclear-norm weight alpha on their product:
    # the same scale as Soft-Impute's default shrinkage
    alpha = np.linalg.norm(np.nan_to_num(X), 2) / 50
    est = AltMinCompleter(rank=rank, alpha=alpha, tol=1e-3, random_state=0)
    return est.fit_transform(X)


methods = {
    "column means": lambda X, r: np.where(np.isnan(X), 0.0, X),
    "AltMin": altmin,
    "SoftImpute": lambda X, r: SoftImpute(max_rank=2 * r, random_state=0).fit_transform(X),
    "SVT": lambda X, r: SVTCompleter(max_rank=2 * r, random_state=0).fit_transform(X),
}
fractions = [0.3, 0.6, 0.8]


def removed_error(Z, M, missing):
    return np.sqrt(np.mean((Z[missing] - M[missing]) ** 2)) / M[missing].std()


rng = np.random.default_rng(0)
errors = {name: {m: [] for m in methods} for name in datasets}
seconds = {m: 0.0 for m in methods}
for name, (M, max_rank) in datasets.items():
    for frac in fractions:
        missing = rng.random(M.shape) < frac
        X = np.where(missing, np.nan, M)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            mean = np.nan_to_num(np.nanmean(X, axis=0))
        for method, complete in methods.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # digits' blank border pixels leave all-missing columns: expected
                warnings.simplefilter("ignore", UserWarning)
                Z = complete(X - mean, max_rank) + mean
            seconds[method] += time.perf_counter() - t0
            errors[name][method].append(removed_error(Z, M, missing))

for name, errs in errors.items():
    print(name)
    for method, values in errs.items():
        print(f"  {method:>12s}: " + "  ".join(f"{v:.3f}" for v in values))
print("seconds over all data sets:", {k: round(v, 2) for k, v in seconds.items()})

# %%
# Error vs fraction removed
# -------------------------
# On the image and on El Niño, whose rows share a few patterns, the low-rank
# methods halve the error of the column means; Soft-Impute and AltMin (with a
# ridge of the same size) are close, and SVT, one thresholded SVD, trails them.
# Digits are further from low rank: with 80% of the pixels gone only Soft-Impute
# still clearly beats the baseline, and AltMin, at the rank the rule of thumb
# allows, falls just behind it.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
for ax, (name, errs) in zip(axes, errors.items(), strict=True):
    for method, values in errs.items():
        ax.plot(fractions, values, "o-", label=method)
    ax.set_title(name)
    ax.set_xlabel("fraction of entries removed")
axes[0].set_ylabel("RMSE on removed / std")
axes[0].legend()
fig.tight_layout()

# %%
# The image with 60% of its pixels removed
# ----------------------------------------

missing = np.random.default_rng(1).random(image.shape) < 0.6
X = np.where(missing, np.nan, image)
mean = np.nanmean(X, axis=0)
filled = {"AltMin": lambda Xc: altmin(Xc, 30),
          "SoftImpute": lambda Xc: SoftImpute(max_rank=30, tol=1e-5,
                                                random_state=0).fit_transform(Xc)}
fig, axes = plt.subplots(1, 4, figsize=(12, 2.6))
axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("original")
axes[1].imshow(np.where(missing, 1.0, image), cmap="gray", vmin=0, vmax=1)
axes[1].set_title("60% removed (white)")
for ax, (title, complete) in zip(axes[2:], filled.items(), strict=True):
    Z = complete(X - mean) + mean
    ax.imshow(np.clip(Z, 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{title}: {removed_error(Z, image, missing):.2f}")
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
