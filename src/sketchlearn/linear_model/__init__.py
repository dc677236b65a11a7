"""Linear estimators: Gauss-Markov (OLS/WLS/GLS), extended Gauss-Markov, and
linear stochastic approximation."""

from ._estimators import (
    ExtendedGaussMarkovCV,
    ExtendedGaussMarkovRegressor,
    GaussMarkovRegressor,
)
from ._extended import filter_factors, shrinkage_factors
from ._gauss_markov import ar1_coefficient, gauss_markov, make_whitener

__all__ = [
    "GaussMarkovRegressor",
    "ExtendedGaussMarkovRegressor",
    "ExtendedGaussMarkovCV",
    "filter_factors",
    "shrinkage_factors",
    "gauss_markov", "make_whitener", "ar1_coefficient"]
