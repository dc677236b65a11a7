"""Data generators used by the demos, examples, tests and benchmarks."""

from ._generators import make_gaussian_mixture
from ._nist import NIST_STRD_NAMES, load_nist_strd

__all__ = ["NIST_STRD_NAMES", "load_nist_strd", "make_gaussian_mixture"]
