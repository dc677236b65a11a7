"""Distances and discrepancies between samples, gathered from every module."""

from ..kernels import mmd, mmd_subset
from ._accuracy import log_relative_error

__all__ = ["mmd", "mmd_subset", "log_relative_error"]
