"""
=================================================================
Choosing the sketch size for ridgeless least squares
=================================================================

With more features than samples, the minimum-norm least-squares fit
(ridgeless regression) interpolates the data, and its variance is largest when
the number of rows it uses is close to the number of features. Fitting it on a
*sketch* of the rows, :math:`\\hat b = (SX)^+ Sy` with :math:`m < n` rows, moves
away from that peak and can lower the prediction risk (Chen, Zeng, Yang and Sun,
"Sketched ridgeless linear regression: the role of downsampling").

:class:`~sketchlearn.ensemble.SketchedLeastSquares` with ``sketch_size="auto"``
chooses :math:`m` by K-fold cross-validation. Here we compare its curve
``cv_risk_`` with the test risk of the fit at every sketch size.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.ensemble import SketchedLeastSquares

rng = np.random.default_rng(0)
n, p, sigma = 300, 360, 0.5
beta = rng.normal(size=p)
beta /= np.linalg.norm(beta)  # signal strength ||beta|| = 1
X = rng.normal(size=(n, p))
y = X @ beta + sigma * rng.normal(size=n)
X_test = rng.normal(size=(5000, p))
y_test = X_test @ beta + sigma * rng.normal(size=5000)

fractions = np.round(np.arange(1, 11) / 10, 1).tolist()
auto = SketchedLeastSquares(sketch="srdct", sketch_sizes=fractions, cv=5,
                            fit_intercept=False, random_state=0).fit(X, y)

test_risk = []
for f in fractions:
    risks = [np.mean((SketchedLeastSquares(sketch="srdct", sketch_size=f, fit_intercept=False,
                                           random_state=s).fit(X, y).predict(X_test)
                      - y_test) ** 2) for s in range(3)]
    test_risk.append(np.mean(risks))

# %%
# The risk curves
# ---------------
# ``cv_risk_`` is measured on folds fitted with 4/5 of the rows, at the same
# fractions :math:`m/n`, so its level differs from the test risk of the fit on all
# rows; what matters is where it is smallest, and that lands near the minimum of
# the test risk, well below the risk of the unsketched interpolator
# (:math:`m = n`).

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(fractions, test_risk, "-o", label="test risk (mean of 3 sketches)")
ax.plot(fractions, auto.cv_risk_, "--s", label="5-fold CV estimate")
ax.axvline(auto.sketch_size_ / n, color="grey", lw=0.8, label="chosen m / n")
ax.axhline(sigma**2 + 1.0, color="k", lw=0.6, ls=":", label="null risk (predict 0)")
ax.set_xlabel("sketch size m / n")
ax.set_ylabel("prediction risk")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
plt.show()

full = SketchedLeastSquares(sketch_size=1.0, fit_intercept=False).fit(X, y)
print(f"chosen m = {auto.sketch_size_} of n = {n}")
print(f"test risk: sketched {np.mean((auto.predict(X_test) - y_test) ** 2):.2f}, "
      f"unsketched {np.mean((full.predict(X_test) - y_test) ** 2):.2f}")
