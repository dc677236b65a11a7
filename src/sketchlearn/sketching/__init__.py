"""Random sketches of data matrices: Gaussian, Haar-orthogonal, SRHT, SRDCT, CountSketch,
uniform and leverage-score sampling.

:func:`make_sketch` draws a :class:`SketchOperator` ``S`` with ``E[S^T S] = I``;
:func:`sketch` applies one to the rows or the features of a matrix in one call;
:class:`SketchTransformer` sketches features inside a scikit-learn pipeline.
"""

from ._core import KINDS, SketchOperator, leverage_scores, make_sketch, sketch
from ._estimators import SketchTransformer

__all__ = ["SketchOperator", "SketchTransformer", "make_sketch", "sketch", "leverage_scores",
           "KINDS"]
