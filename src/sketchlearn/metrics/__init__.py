"""Distances and discrepancies between samples, gathered from every module."""

from ..kernels import mmd, mmd_subset
from ..transport import (
    augmented_sliced_wasserstein,
    energy_distance,
    entropic_barycenter,
    gaussian_wasserstein,
    max_sliced_wasserstein,
    mirror_sinkhorn,
    sinkhorn,
    sinkhorn_divergence,
    sliced_barycenter,
    sliced_wasserstein,
    wasserstein,
)
from ._accuracy import log_relative_error

__all__ = [
    "mmd",
    "mmd_subset",
    "log_relative_error",
    "sliced_wasserstein",
    "max_sliced_wasserstein",
    "augmented_sliced_wasserstein",
    "energy_distance",
    "wasserstein",
    "gaussian_wasserstein",
    "sinkhorn",
    "sinkhorn_divergence",
    "mirror_sinkhorn",
    "entropic_barycenter",
    "sliced_barycenter",
]
