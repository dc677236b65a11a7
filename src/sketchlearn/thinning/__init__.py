"""Kernel thinning: compress a sample to a few points that keep its distribution.

KT-SPLIT / KT-SWAP (target, power and KT+ variants) and Compress++, as the
:class:`KernelThinning` estimator and the functions :func:`kernel_thin` and
:func:`compress_thin`.
"""

from ._core import compress_thin, kernel_thin
from ._estimators import KernelThinning

__all__ = ["KernelThinning", "kernel_thin", "compress_thin"]
