"""Ridge(less) ensembles on subsamples or sketches, tuned by GCV, corrected GCV or ECV.

:class:`RidgeEnsemble` averages ridge fits on random subsamples (or row sketches);
:class:`RidgeEnsembleCV` scores a grid of penalties, subsample sizes and ensemble
sizes from one factorisation per member; :class:`SketchedLeastSquares` fits
minimum-norm least squares on a row sketch whose size is chosen from the data.
With ``feature_sketch``, members also sketch the features, and
:func:`equivalent_ridge_penalty` gives the penalty of the unsketched ridge that
their infinite ensemble equals.
"""

from ._equivalence import equivalent_ridge_penalty
from ._ridge_ensembles import RidgeEnsemble, RidgeEnsembleCV
from ._sketched_least_squares import SketchedLeastSquares

__all__ = ["RidgeEnsemble", "RidgeEnsembleCV", "SketchedLeastSquares",
           "equivalent_ridge_penalty"]
