"""Linear estimators: Gauss-Markov (OLS/WLS/GLS, feasible GLS) to certified accuracy,
extended Gauss-Markov (least variance under a bias bound), and linear stochastic
approximation (streaming least squares, TD(0))."""

from ._extended import filter_factors, shrinkage_factors
from ._extended_estimators import ExtendedGaussMarkovCV, ExtendedGaussMarkovRegressor
from ._gauss_markov import ar1_coefficient, gauss_markov, make_whitener
from ._gauss_markov_estimators import GaussMarkovRegressor
from ._lsa import StepSizeWarning, linear_stochastic_approximation, stability_bound
from ._lsa_estimators import LinearStochasticApproximation, LSARegressor, TD0Evaluator
from ._robust import TTestResult, WaldTestResult

__all__ = [
    "GaussMarkovRegressor",
    "ExtendedGaussMarkovRegressor",
    "ExtendedGaussMarkovCV",
    "LinearStochasticApproximation",
    "LSARegressor",
    "TD0Evaluator",
    "gauss_markov",
    "make_whitener",
    "ar1_coefficient",
    "filter_factors",
    "shrinkage_factors",
    "linear_stochastic_approximation",
    "stability_bound",
    "StepSizeWarning",
    "TTestResult",
    "WaldTestResult",
]
