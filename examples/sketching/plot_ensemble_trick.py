"""
=====================================================================
Feature-sketched ridge ensembles and the "ensemble trick"
=====================================================================

Ridge on a random sketch :math:`XS` of the features (:math:`S` of shape
:math:`p \\times q`), mapped back as :math:`S\\hat b`, is asymptotically ridge on all
features with a larger penalty :math:`\\mu` (LeJeune, Patil, Javadi, Baraniuk and
Tibshirani, 2024), and an infinite ensemble of such fits *is* ``Ridge(mu)`` (Patil
and LeJeune, ICLR 2024). GCV is consistent for these ensembles, and its
:math:`M \\to \\infty` extrapolation from a few members, the "ensemble trick",
estimates the risk of the unsketched ridge at :math:`\\mu`.

Here :class:`~sketchlearn.ensemble.RidgeEnsembleCV` with ``feature_sketch`` fits
:math:`M = 8` members on :math:`q = p/4` and :math:`q = p/2` SRDCT features for a
grid of penalties, and returns ``equivalent_alphas_`` (:math:`\\mu` for each
penalty) and ``ridge_risk_estimates_``. We compare them with the exact risk of
``Ridge(mu)`` (the features are Gaussian with a known covariance and the
coefficients are known) and with GCV computed on the unsketched ridge.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.ensemble import RidgeEnsembleCV, equivalent_ridge_penalty

rng = np.random.default_rng(0)
n, p, sigma = 1500, 600, 1.0
scales = np.linspace(0.25, 2.0, p)            # feature variances (diagonal covariance)
X = rng.normal(size=(n, p)) * np.sqrt(scales)
beta = rng.normal(size=p)
beta *= 0.6 / np.sqrt(beta @ (scales * beta))  # signal variance 0.6^2
y = X @ beta + sigma * rng.normal(size=n)

# the unsketched ridge path, exactly, from one SVD of the centred data
Xc, yc = X - X.mean(axis=0), y - y.mean()
U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
Uty = U.T @ yc


def ridge_truth_and_gcv(mu):
    """Exact risk (sigma^2 + (b - beta)^T Sigma (b - beta) + intercept^2) and GCV."""
    coef = Vt.T @ (s / (s**2 + mu) * Uty)
    intercept = y.mean() - X.mean(axis=0) @ coef
    d = coef - beta
    true = sigma**2 + d @ (scales * d) + intercept**2
    df = np.sum(s**2 / (s**2 + mu)) + 1
    gcv = np.mean((yc - Xc @ coef) ** 2) / (1 - df / n) ** 2
    return true, gcv


alphas = np.logspace(1, 5, 12)
curves = {}
for q in (p // 4, p // 2):
    cv = RidgeEnsembleCV(alphas=alphas, subsample_sizes=[1.0], n_estimators=8,
                         feature_sketch="srdct", feature_sketch_size=q, cv="gcv",
                         random_state=0).fit(X, y)
    mus = cv.equivalent_alphas_[:, 0]
    truth = np.array([ridge_truth_and_gcv(mu) for mu in mus])
    curves[q] = (mus, cv.ridge_risk_estimates_[:, 0], truth[:, 0], truth[:, 1],
                 cv.risk_estimates_[:, 0, 0])

# %%
# The induced penalty
# -------------------
# The df-matched :math:`\mu` of the fitted members against the closed form of
# :func:`~sketchlearn.ensemble.equivalent_ridge_penalty` (orthogonal spectrum,
# which SRDCT shares): sketching to :math:`q` features is ridge with at most
# :math:`q` degrees of freedom, so :math:`\mu \ge \alpha`, much larger for small
# :math:`q`.

for q, (mus, *_rest) in curves.items():
    closed = equivalent_ridge_penalty(X, alphas, "srdct", q)
    print(f"q = {q}: mu / alpha from {mus[0] / alphas[0]:.1f} to {mus[-1] / alphas[-1]:.2f}; "
          f"df matching vs closed form: max {np.max(np.abs(mus / closed - 1)):.2%}")

# %%
# Risk of the unsketched ridge, estimated from 8 sketched members
# ----------------------------------------------------------------
# Solid: exact risk of ``Ridge(mu)``; dashed: GCV of the unsketched ridge (what one
# would compute with all features); dots: the ensemble trick. The crosses are the
# GCV of a single sketched member, which estimates that member's (larger) risk,
# not the ridge's. The trick follows the unsketched GCV closely; both differ from
# the truth by GCV's own sampling error at this :math:`n` (a few per cent, the
# same sign along the path because the data are shared). Members on
# :math:`q = p/4` features cannot reach small penalties: with :math:`q` features
# the ridge has at most :math:`q` degrees of freedom.

fig, ax = plt.subplots(figsize=(7, 4))
for (q, (mus, trick, true, gcv, single)), colour in zip(curves.items(), ["C0", "C1"],
                                                         strict=True):
    ax.plot(mus, true, "-", color=colour, label=f"true risk of Ridge(mu), q={q}")
    ax.plot(mus, gcv, "--", color=colour, lw=0.8, label="GCV of Ridge(mu)")
    ax.plot(mus, trick, "o", color=colour, ms=5, label="ensemble trick (M=8)")
    ax.plot(mus, single, "x", color=colour, ms=5, label="GCV of one sketched member")
ax.set_xscale("log")
ax.set_xlabel("equivalent penalty mu")
ax.set_ylabel("prediction risk")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

for q, (_, trick, true, gcv, _) in curves.items():
    print(f"q = {q}: ensemble trick vs truth: median {np.median(np.abs(trick / true - 1)):.1%}, "
          f"max {np.max(np.abs(trick / true - 1)):.1%}; vs unsketched GCV: max "
          f"{np.max(np.abs(trick / gcv - 1)):.1%}")
