"""Numba kernel of the tridiagonal ridge path: applying LAPACK ``?sytrd`` reflectors.

``?sytrd(lower=1)`` writes a symmetric ``G = Q T Q^T`` with ``Q = H(0) H(1) ...
H(n-2)``, ``H(i) = I - tau_i v_i v_i^T``, ``v_i[:i+1] = 0``, ``v_i[i+1] = 1`` and
``v_i[i+2:]`` stored below the subdiagonal of column ``i``. SciPy exposes no
``?ormtr``, so the reflectors are applied here, O(n^2 q) for an ``(n, q)`` block.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def apply_reflectors(c, tau, Z, transpose):
    """Overwrite ``Z`` with ``Q^T Z`` (``transpose``) or ``Q Z``."""
    n = c.shape[0]
    q = Z.shape[1]
    w = np.empty(q, dtype=Z.dtype)
    for step in range(n - 1):
        i = step if transpose else n - 2 - step
        t = tau[i]
        if t == 0.0:
            continue
        for j in range(q):
            w[j] = Z[i + 1, j]
        for r in range(i + 2, n):
            vr = c[r, i]
            for j in range(q):
                w[j] += vr * Z[r, j]
        for j in range(q):
            w[j] *= t
        for j in range(q):
            Z[i + 1, j] -= w[j]
        for r in range(i + 2, n):
            vr = c[r, i]
            for j in range(q):
                Z[r, j] -= vr * w[j]
