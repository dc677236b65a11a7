"""Sliced and optimal-transport distances, and estimators built on them.

Sliced Wasserstein (Monte Carlo, orthogonal, QMC/RQMC and control-variate slices),
max-sliced, distributional (vMF), augmented and SPD (log-Euclidean) sliced Wasserstein, the
energy distance by sorting, exact and Gaussian (Bures) Wasserstein distances,
Sinkhorn in the scaling and log domains with epsilon-scaling (balanced or
unbalanced) and Sinkhorn-Newton-Sparse, fixed-support entropic barycenters, Mirror
Sinkhorn for convex objectives on the transport polytope, the debiased
Sinkhorn divergence, permutation two-sample tests, and the estimators
:class:`SlicedWassersteinKernel` and :class:`OTMapper`.
"""

from ._augmented import augmented_sliced_wasserstein
from ._barycenter import entropic_barycenter, sliced_barycenter
from ._estimators import OTMapper, SlicedWassersteinKernel
from ._exact import gaussian_wasserstein, wasserstein
from ._mirror import MirrorSinkhornResult, mirror_sinkhorn
from ._quantile_sketch import SketchedDistance
from ._sinkhorn import SinkhornResult, sinkhorn, sinkhorn_divergence
from ._sliced import (
    distributional_sliced_wasserstein,
    energy_distance,
    energy_distance_grad,
    max_sliced_wasserstein,
    sliced_wasserstein,
    sphere_abs_moment,
)
from ._spd import spd_sliced_wasserstein
from ._two_sample import TwoSampleResult, two_sample_test

__all__ = [
    "sliced_wasserstein",
    "max_sliced_wasserstein",
    "distributional_sliced_wasserstein",
    "augmented_sliced_wasserstein",
    "energy_distance",
    "energy_distance_grad",
    "SketchedDistance",
    "sphere_abs_moment",
    "spd_sliced_wasserstein",
    "wasserstein",
    "gaussian_wasserstein",
    "sinkhorn",
    "sinkhorn_divergence",
    "entropic_barycenter",
    "sliced_barycenter",
    "SinkhornResult",
    "mirror_sinkhorn",
    "MirrorSinkhornResult",
    "two_sample_test",
    "TwoSampleResult",
    "SlicedWassersteinKernel",
    "OTMapper",
]
