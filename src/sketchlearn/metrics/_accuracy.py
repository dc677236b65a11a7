"""Accuracy of a computed result against certified values."""

from __future__ import annotations

import numpy as np

__all__ = ["log_relative_error"]


def log_relative_error(estimate, certified, *, max_digits=15.0):
    """Log relative error (LRE): the number of correct significant digits.

    ``LRE = -log10(|estimate - certified| / |certified|)``, or
    ``-log10(|estimate - certified|)`` where the certified value is 0 (McCullough's
    convention for the NIST StRD benchmarks). Values are clipped to
    ``[0, max_digits]``: 0 means no correct digit, ``max_digits`` (the digits the
    certified values carry, 15 for NIST) means agreement to all of them.

    Parameters
    ----------
    estimate, certified : array-like of the same shape
        Computed and certified values (any float type, long double included).
    max_digits : float, default=15.0
        Upper clip: the precision of the certified values.

    Returns
    -------
    lre : ndarray of float
        Elementwise LRE; take ``.min()`` for a whole vector.

    Examples
    --------
    >>> from sketchlearn.metrics import log_relative_error
    >>> log_relative_error([1.000001, 1e-9, 2.0], [1.0, 0.0, 2.0]).round(6)
    array([ 6.,  9., 15.])
    """
    est = np.asarray(estimate)
    cert = np.asarray(certified)
    if est.shape != cert.shape:
        raise ValueError(f"estimate has shape {est.shape} but certified has {cert.shape}; "
                         "they must match.")
    ld = np.longdouble
    err = np.abs(est.astype(ld) - cert.astype(ld))
    scale = np.where(cert == 0, ld(1), np.abs(cert.astype(ld)))
    with np.errstate(divide="ignore"):
        digits = -np.log10(err / scale)
    digits = np.where(np.isnan(est.astype(ld)), ld(0), digits)
    return np.clip(digits, 0.0, max_digits).astype(np.float64) + 0.0  # no -0.0
