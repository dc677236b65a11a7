"""Distances and discrepancies between samples, gathered from every module."""

from ..kernels import mmd, mmd_subset

__all__ = ["mmd", "mmd_subset"]
