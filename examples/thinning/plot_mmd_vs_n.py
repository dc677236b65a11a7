"""
====================================================
How fast the MMD falls: kernel thinning vs i.i.d.
====================================================

Compress :math:`n` points drawn from :math:`P = \\mathcal N(0, I_2)` to
:math:`\\sqrt n` points and measure how far the compressed sample is from
:math:`P` in maximum mean discrepancy (MMD), for growing :math:`n`:

* **i.i.d.**: :math:`\\sqrt n` of the points chosen at random, which is the same
  as :math:`\\sqrt n` fresh draws from :math:`P`; its MMD falls like
  :math:`(\\sqrt n)^{-1/2} = n^{-1/4}`;
* **target KT** and **KT+**: :func:`~sketchlearn.thinning.kernel_thin` with
  ``variant="target"`` and ``variant="kt+"``;
* **Compress++**: :func:`~sketchlearn.thinning.compress_thin`, the near-linear
  time version.

Kernel thinning reaches MMD about :math:`n^{-1/2}` (up to log factors): as good
as keeping all :math:`n` points, with :math:`\\sqrt n` of them (Dwivedi and
Mackey, 2024; Shetty, Dwivedi and Mackey, 2022). This example reproduces the
slopes of the experiments in those papers on a small scale.
"""

# %%
# Setup
# -----
# The Gaussian kernel :math:`k(x, y) = \exp(-\lVert x - y \rVert^2 / (2h^2))`
# with :math:`h = \sqrt{2d} = 2`, as in the papers. For :math:`P = \mathcal N(0,
# I_d)` its kernel mean embedding has a closed form,
#
# .. math::
#
#    \mathbb E_{Y \sim P}\, k(x, Y) = \Bigl(\frac{h^2}{h^2 + 1}\Bigr)^{d/2}
#    \exp\Bigl(-\frac{\lVert x \rVert^2}{2 (h^2 + 1)}\Bigr), \qquad
#    \mathbb E\, k(Y, Y') = \Bigl(\frac{h^2}{h^2 + 2}\Bigr)^{d/2},
#
# so the MMD of a coreset :math:`S` to :math:`P` itself (not to the sample it was
# drawn from) costs only :math:`O(|S|^2)`:
# :math:`\mathrm{MMD}^2(S, P) = \frac{1}{|S|^2}\sum_{z, z' \in S} k(z, z') -
# \frac{2}{|S|} \sum_{z \in S} \mathbb E\, k(z, Y) + \mathbb E\, k(Y, Y')`.

import time

import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.kernels import GaussianKernel, kernel_matrix
from sketchlearn.thinning import compress_thin, kernel_thin

d = 2
h = np.sqrt(2 * d)
kernel = GaussianKernel(bandwidth=h)


def mmd_to_gaussian(S):
    """MMD between the uniform distribution on the rows of S and N(0, I_d)."""
    qq = kernel_matrix(S, S, kernel=kernel).mean()
    mean_p = (h**2 / (h**2 + 1)) ** (d / 2) * np.exp(-np.sum(S**2, axis=1) / (2 * (h**2 + 1)))
    pp = (h**2 / (h**2 + 2)) ** (d / 2)
    return np.sqrt(max(qq - 2 * mean_p.mean() + pp, 0.0))


# %%
# The experiment
# --------------
# :math:`n = 2^6, 2^7, \dots, 2^{12}`, coresets of :math:`\lfloor \sqrt n
# \rfloor` points, three seeds. When :math:`n` is an odd power of two,
# :math:`\sqrt n` is not a power of two and :math:`n` is not
# :math:`n_{\text{out}} 2^m`: kernel thinning then halves a random subset of
# :math:`n_{\text{out}} 2^m` rows and keeps the other rows in the target of its
# swap step, so every point still counts. Compress++ uses the oversampling
# parameter ``g=4`` (lowered automatically for the smallest :math:`n`).

exponents = np.arange(6, 13)
sizes = 2**exponents
seeds = [0, 1, 2]
methods = {
    "i.i.d.": lambda X, s, seed: np.random.default_rng(seed).choice(len(X), s, replace=False),
    "target KT": lambda X, s, seed: kernel_thin(X, s, kernel=kernel, variant="target",
                                                random_state=seed),
    "KT+": lambda X, s, seed: kernel_thin(X, s, kernel=kernel, variant="kt+",
                                          random_state=seed),
    "Compress++ (g=4)": lambda X, s, seed: compress_thin(X, s, g=4, kernel=kernel,
                                                         variant="kt+", random_state=seed),
}
results = {name: np.empty((len(seeds), len(sizes))) for name in methods}
seconds = dict.fromkeys(methods, 0.0)
for a, seed in enumerate(seeds):
    for b, n in enumerate(sizes):
        X = np.random.default_rng(1000 * seed + n).standard_normal((n, d))
        n_out = int(np.sqrt(n))
        for name, thin in methods.items():
            start = time.perf_counter()
            idx = thin(X, n_out, seed)
            seconds[name] += time.perf_counter() - start
            results[name][a, b] = mmd_to_gaussian(X[idx])

for name in methods:
    print(f"{name:17s} total time {seconds[name]:5.2f} s")

# %%
# Slopes
# ------
# A straight line fitted to :math:`\log \mathrm{MMD}` against :math:`\log n`
# (mean over the seeds of the log MMD) estimates the rate. The i.i.d. slope
# should be near :math:`-1/4` and the kernel-thinning slopes near :math:`-1/2`;
# the log factors in the guarantees and the small sizes make them a little
# shallower.

fig, ax = plt.subplots(figsize=(6.4, 4.6))
markers = {"i.i.d.": "o", "target KT": "s", "KT+": "^", "Compress++ (g=4)": "D"}
for name, values in results.items():
    log_mean = np.log(values).mean(axis=0)
    slope, intercept = np.polyfit(np.log(sizes), log_mean, 1)
    print(f"{name:17s} slope {slope:+.2f}")
    line = ax.loglog(sizes, np.exp(log_mean), marker=markers[name],
                     label=f"{name}: slope {slope:+.2f}")[0]
    ax.fill_between(sizes, values.min(axis=0), values.max(axis=0),
                    color=line.get_color(), alpha=0.15, lw=0)
for rate, style in [(-0.25, ":"), (-0.5, "--")]:
    ref = results["i.i.d."].mean(axis=0)[0] * (sizes / sizes[0]) ** rate
    ax.loglog(sizes, ref, style, color="0.5", lw=1)
    ax.annotate(f"$n^{{{rate:g}}}$", (sizes[-1], ref[-1]), xytext=(4, 0),
                textcoords="offset points", va="center", color="0.4")
ax.set_xscale("log", base=2)
ax.set_xlabel("n (input points; the coreset keeps $\\lfloor\\sqrt{n}\\rfloor$)")
ax.set_ylabel("MMD to $\\mathcal{N}(0, I_2)$")
ax.set_title("Compressing n points to $\\sqrt{n}$")
ax.legend(fontsize=9)
fig.tight_layout()

# %%
# At :math:`n = 4096` the 64 kernel-thinned points are about as close to
# :math:`P` as the 4096 points they were chosen from (whose own MMD to
# :math:`P` is of order :math:`n^{-1/2}`), while 64 random points are several
# times further away. Compress++ gives up a little accuracy for a cost of
# :math:`O(4^g n \log n)` instead of :math:`O(n^2)`; it pays off for far larger
# :math:`n` than these.

plt.show()
