"""
==========================================================
Risk of subsampled ridge ensembles: CGCV against the truth
==========================================================

Fit ridge ensembles on subsamples of :math:`k` of the :math:`n` rows, for a grid of
subsample ratios :math:`k/n`, two penalties and two ensemble sizes, and compare
three numbers for each:

* the **true prediction risk**, exact here because the features are isotropic
  Gaussian and the coefficient vector is known:
  :math:`\\sigma^2 + \\lVert \\hat\\beta_M - \\beta \\rVert^2`;
* the **corrected GCV** estimate (``risk_estimate_`` of
  :class:`~sketchlearn.ensemble.RidgeEnsemble`), computed from the training data
  only;
* the **naive ensemble GCV**, :math:`\\lVert y - X\\hat\\beta_M\\rVert^2/n \\,/\\,
  (1 - \\overline{\\mathrm{df}}/n)^2`.

Naive GCV is consistent only for full-data members or infinitely many of them; for
one member on a subsample it underestimates the risk. The correction (Bellec, Du,
Koriyama, Patil and Tan, 2023) fixes that for every ensemble size. The plot also
shows the regularising effect of subsampling: the ridgeless ensemble
(:math:`\\alpha = 0`) has its risk peak where :math:`k = p` and is best at a
small :math:`k/n`, where it rivals tuned ridge.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.ensemble import RidgeEnsemble

rng = np.random.default_rng(0)
n, p, sigma = 600, 240, 1.0
X = rng.normal(size=(n, p))
beta = rng.normal(size=p)
beta *= 2.0 / np.linalg.norm(beta)
y = X @ beta + sigma * rng.normal(size=n)

ratios = np.array([0.1, 0.2, 0.3, 0.35, 0.45, 0.6, 0.8, 1.0])
alphas = [0.0, 30.0]
sizes_M = [1, 10]

results = {}
for alpha in alphas:
    for M in sizes_M:
        true, cgcv, gcv = [], [], []
        for r in ratios:
            ens = RidgeEnsemble(alpha=alpha, n_estimators=M, subsample_size=float(r),
                                fit_intercept=False, random_state=1).fit(X, y)
            true.append(sigma**2 + np.sum((ens.coef_ - beta) ** 2))
            cgcv.append(ens.risk_estimate_)
            t = ens.estimators_df_.mean() / n
            gcv.append(np.mean((y - ens.predict(X)) ** 2) / (1 - t) ** 2 if t < 1 else np.nan)
        results[alpha, M] = (np.array(true), np.array(cgcv), np.array(gcv))

# %%
# Risk curves
# -----------
# Solid: true risk; dashed with dots: CGCV; dotted with crosses: naive GCV. The grey
# line marks :math:`k = p`, where a single ridgeless member interpolates with the
# largest variance. Both estimates fluctuate around the truth by :math:`O(n^{-1/2})`
# (a few per cent here), the same way for every :math:`k` since the data are shared.

fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, alpha in zip(axes, alphas, strict=True):
    for M, colour in zip(sizes_M, ["C0", "C1"], strict=True):
        true, cg, g = results[alpha, M]
        ax.plot(ratios, true, "-", color=colour, label=f"true risk, M={M}")
        ax.plot(ratios, cg, "--o", color=colour, ms=4, label=f"CGCV, M={M}")
        ax.plot(ratios, g, ":x", color=colour, ms=5, label=f"naive GCV, M={M}")
    ax.axvline(p / n, color="grey", lw=0.8)
    ax.set_title(f"alpha = {alpha:g}" + (" (ridgeless)" if alpha == 0 else ""))
    ax.set_xlabel("subsample ratio k / n")
    ax.set_yscale("log")
    ax.set_ylim(1, 30)
axes[0].set_ylabel("prediction risk")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# How far off each estimate is
# ----------------------------
# Median relative error over the finite points of each curve.

for (alpha, M), (true, cg, g) in results.items():
    ok = np.isfinite(cg)
    e_c = np.median(np.abs(cg[ok] - true[ok]) / true[ok])
    e_g = np.median(np.abs(g[ok] - true[ok]) / true[ok])
    print(f"alpha={alpha:5g} M={M:2d}: CGCV {e_c:6.1%}   naive GCV {e_g:6.1%}")
