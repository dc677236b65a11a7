"""Kernel functions, bandwidth rules, blocked kernel sums and MMD.

See :mod:`sketchlearn.kernels._kernels` for the conventions: the Gaussian kernel
with bandwidth ``h`` is ``exp(-||x - y||^2 / (2 h^2))``, the Laplace kernel
``exp(-||x - y|| / h)``, and every bounded kernel has ``k(x, x) = 1``.
"""

from ._bandwidth import make_kernel, median_heuristic, scott_bandwidth
from ._kernels import (
    GaussianKernel,
    IMQKernel,
    Kernel,
    LaplaceKernel,
    MaternKernel,
    RieszKernel,
    SincKernel,
    SumKernel,
)
from ._mmd import mmd, mmd_subset
from ._sums import kernel_matrix, kernel_matvec, kernel_mean

__all__ = [
    "Kernel",
    "GaussianKernel",
    "LaplaceKernel",
    "MaternKernel",
    "IMQKernel",
    "SincKernel",
    "RieszKernel",
    "SumKernel",
    "make_kernel",
    "median_heuristic",
    "scott_bandwidth",
    "kernel_matrix",
    "kernel_matvec",
    "kernel_mean",
    "mmd",
    "mmd_subset",
]
