"""
=================================================
Exact recovery: how many entries does it take?
=================================================

A rank-:math:`k` matrix of size :math:`m \\times n` has :math:`k (m + n - k)`
degrees of freedom, so it cannot be recovered from fewer entries; theory says a
few times that many random entries suffice when the matrix is incoherent (see
:doc:`the user guide </user_guide/completion>`). Here a random rank-3, 120 x 100
matrix is sampled at a growing number of random entries, without noise, and
completed by :class:`~sketchlearn.completion.AltMinCompleter`,
:class:`~sketchlearn.completion.SoftImpute` (small shrinkage) and
:class:`~sketchlearn.completion.SVTCompleter`.

AltMin recovers the matrix to machine precision from about three times as many
entries as degrees of freedom (below that, some rows have fewer than :math:`k`
entries and cannot be determined: the estimator warns); nuclear-norm
minimization needs more entries and, with a positive shrinkage, keeps a bias;
SVT, one thresholded SVD of the rescaled observed matrix, is never exact but
improves steadily with the entries.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.completion import AltMinCompleter, SoftImpute, SVTCompleter

m, n, k = 120, 100, 3
rng = np.random.default_rng(0)
M = rng.normal(size=(m, k)) @ rng.normal(size=(k, n)) / np.sqrt(k)
dof = k * (m + n - k)
ratios = [1.5, 2.0, 3.0, 4.0, 6.0, 8.0]  # entries / degrees of freedom

methods = {
    "AltMin": lambda: AltMinCompleter(rank=k, tol=1e-10, max_iter=300, random_state=0),
    "SoftImpute": lambda: SoftImpute(shrinkage=0.2, max_rank=10, tol=1e-7,
                                     max_iter=300, random_state=0),
    "SVT": lambda: SVTCompleter(max_rank=20, random_state=0),
}
errors = {name: [] for name in methods}
for ratio in ratios:
    mask = rng.random((m, n)) < ratio * dof / (m * n)
    X = np.where(mask, M, np.nan)
    for name, make in methods.items():
        with warnings.catch_warnings():
            # At the smallest ratios some rows have fewer than k entries, which warns
            # (their completion is not determined): expected here.
            warnings.simplefilter("ignore")
            Z = make().fit_transform(X)
        errors[name].append(np.linalg.norm(Z - M) / np.linalg.norm(M))

for name, errs in errors.items():
    print(f"{name:>10s}: " + " ".join(f"{e:8.1e}" for e in errs))

fig, ax = plt.subplots(figsize=(6, 4))
for name, errs in errors.items():
    ax.semilogy(ratios, np.clip(errs, 1e-16, 10), "o-", label=name)
ax.axhline(1e-6, color="grey", lw=0.8, ls="--")
ax.set_xlabel("observed entries / degrees of freedom k (m + n - k)")
ax.set_ylabel("relative error ||Z - M||_F / ||M||_F")
ax.set_title(f"rank-{k} {m} x {n} matrix, no noise")
ax.legend()
fig.tight_layout()
plt.show()
