"""Matrix completion: fill in a partly observed low-rank matrix.

Alternating minimization with fast approximate row solves
(:class:`AltMinCompleter`), nuclear-norm regularised completion (:class:`SoftImpute`,
softImpute-ALS and the exact SVD variant, with :class:`SoftImputeCV` choosing the
shrinkage on held-out entries), one-shot singular value thresholding
(:class:`SVTCompleter`), and a truncated SVD updated as rows arrive
(:class:`IncrementalTruncatedSVD`). Functional twins return the factors.
"""

from ._core import altmin_complete, soft_impute, svt_complete
from ._estimators import AltMinCompleter, SoftImpute, SoftImputeCV, SVTCompleter
from ._incremental import FrequentDirections, IncrementalTruncatedSVD

__all__ = [
    "AltMinCompleter",
    "SoftImpute",
    "SoftImputeCV",
    "SVTCompleter",
    "IncrementalTruncatedSVD",
    "FrequentDirections",
    "altmin_complete",
    "soft_impute",
    "svt_complete",
]
