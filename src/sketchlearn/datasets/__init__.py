"""Data generators used by the demos, examples, tests and benchmarks."""

from ._generators import make_gaussian_mixture

__all__ = ["make_gaussian_mixture"]
