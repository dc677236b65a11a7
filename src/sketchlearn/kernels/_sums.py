"""Kernel matrices and blocked kernel sums (NumPy: Numba; CuPy: RawKernel)."""

from __future__ import annotations

import numpy as np
from array_api_compat import is_array_api_obj

from .._array_api import Dispatch, get_namespace, move_to, public_function
from .._cold_start import reference_until_compiled
from .._validation import check_array, check_same_n_features, check_weights
from ._bandwidth import make_kernel
from ._kernels import (
    GaussianKernel,
    IMQKernel,
    LaplaceKernel,
    MaternKernel,
    RieszKernel,
    SincKernel,
)
from ._reference import kernel_matrix_reference, kernel_matvec_reference

__all__ = ["kernel_matrix", "kernel_matvec", "kernel_mean"]


def _example_kernels():
    """One kernel of each family the kernel spec describes (closed-form and
    quadrature Matern, IMQ, sinc, Riesz) and a sum, as KT+ builds them."""
    return [GaussianKernel(1.0), LaplaceKernel(0.5), MaternKernel(1.0, 1.5),
            MaternKernel(0.8, 0.7), IMQKernel(1.0, 0.5), SincKernel(2.0), RieszKernel(1.0),
            GaussianKernel(0.7) + LaplaceKernel(1.5)]


def _kernel_matvec_examples(xp, rng):
    """Every kernel family against a separate sample, and ``X`` against itself with
    one column of uniform weights (``kernel_mean``, the symmetric path), in float64
    and float32; ``V`` has the dtype of ``X``, as ``kernel_matvec`` casts it."""
    out = []
    for dtype in (np.float64, np.float32):
        for kernel in _example_kernels():
            X, Y, V = (move_to(rng.normal(size=shape).astype(dtype), xp)
                       for shape in ((37, 3), (29, 3), (29, 2)))
            out.append(((X, Y, V, kernel), {}))
        X = move_to(rng.normal(size=(70, 3)).astype(dtype), xp)
        w = move_to(np.full((70, 1), 1.0 / 70, dtype=dtype), xp)
        out.append(((X, X, w, MaternKernel(1.0, 1.5)), {}))
    return out


kernel_matvec_op = Dispatch(
    kernel_matvec_reference,
    numba="sketchlearn.kernels._numba:kernel_matvec",
    cupy="sketchlearn.kernels._cupy:kernel_matvec",
    examples=_kernel_matvec_examples,
)
# Kernel evaluations (pairs times (d + 8)) up to which a first call sums them with NumPy
# while the Numba kernels compile: at most about 1 s of reference work (4096 x 4096
# pairs: 0.56 s at d = 2, 0.67 s at d = 10), where compiling the kernel sums takes
# about 5 s on 2 cores.
_REFERENCE_WORK = 2**28


def small_for_reference(pairs, d):
    """Whether ``pairs`` kernel evaluations in dimension ``d`` are cheap for the reference."""
    return pairs * (d + 8) <= _REFERENCE_WORK


def _pair_work(X, Y=None, **_):
    """Kernel evaluations times features, the size of a kernel sum (device="auto")."""
    n, d = np.shape(X)
    return float(n) * (n if Y is None else np.shape(Y)[0]) * d


def _kernel_matrix_examples(xp, rng):
    """Every kernel family between samples of two sizes, and ``X`` against itself
    (``kernel_matrix(X)``), in float64 and float32."""
    out = []
    for dtype in (np.float64, np.float32):
        for kernel in _example_kernels():
            X, Y = (move_to(rng.normal(size=shape).astype(dtype), xp)
                    for shape in ((23, 3), (17, 3)))
            out.append(((X, Y, kernel), {}))
        X = move_to(rng.normal(size=(19, 2)).astype(dtype), xp)
        out.append(((X, X, GaussianKernel(1.0)), {}))
    return out


kernel_matrix_op = Dispatch(
    kernel_matrix_reference,
    numba="sketchlearn.kernels._numba:kernel_matrix",
    cupy="sketchlearn.kernels._cupy:kernel_matrix",
    examples=_kernel_matrix_examples,
)


def _prepare(X, Y, kernel, bandwidth, params):
    X = check_array(X, "X")
    Y = X if Y is None else check_array(Y, "Y")
    check_same_n_features(X, Y)
    return X, Y, make_kernel(kernel, bandwidth, X, None if Y is X else Y, **params)


@public_function(arrays=("X", "Y"), work=_pair_work)
def kernel_matrix(X, Y=None, kernel="gaussian", *, bandwidth=None, **kernel_params):
    """Kernel matrix ``K[i, j] = k(X[i], Y[j])``.

    This materialises an ``n x m`` array: for large samples use
    :func:`kernel_matvec` or :func:`kernel_mean`, which never do.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        NumPy or CuPy array.
    Y : array of shape (m_samples, n_features), optional
        Defaults to ``X``.
    kernel : str or Kernel, default="gaussian"
        See :func:`make_kernel`.
    bandwidth : float, "median", "scott" or None
        Bandwidth of a named kernel (default: median heuristic).
    **kernel_params
        Other parameters of a named kernel (``nu``, ``exponent``).

    Returns
    -------
    K : array of shape (n_samples, m_samples)
        Same library and floating dtype as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import kernel_matrix
    >>> K = kernel_matrix(np.array([[0.0], [2.0]]), kernel="laplace", bandwidth=1.0)
    >>> np.round(K, 4)
    array([[1.    , 0.1353],
           [0.1353, 1.    ]])
    """
    X, Y, k = _prepare(X, Y, kernel, bandwidth, kernel_params)
    xp = get_namespace(X, Y)
    with reference_until_compiled(small=small_for_reference(X.shape[0] * Y.shape[0], X.shape[1])):
        return kernel_matrix_op(xp, X, Y, k)


@public_function(arrays=("X", "Y", "V"), work=_pair_work,
                 dask="sketchlearn.kernels._dask:kernel_matvec_dask")
def kernel_matvec(X, Y, V, kernel="gaussian", *, bandwidth=None, **kernel_params):
    """Kernel matrix-vector product ``K(X, Y) @ V`` without forming ``K``.

    Memory is O((n + m) d) on the Numba and CuPy paths and a bounded block
    (32 MiB) on the reference path; time is O(n m d).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Rows of the kernel matrix.
    Y : array of shape (m_samples, n_features) or None
        Columns; ``None`` means ``X``.
    V : array of shape (m_samples,) or (m_samples, k)
        Vector(s) to multiply.
    kernel, bandwidth, **kernel_params
        As in :func:`kernel_matrix`.

    Returns
    -------
    KV : array of shape (n_samples,) or (n_samples, k)
        Same shape convention as ``V``; dtype of ``X``. A lazy Dask array chunked
        like ``X``'s rows when an input is a Dask array (block pairs of row chunks,
        equal to the in-memory product to rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import kernel_matvec, kernel_matrix
    >>> X = np.random.default_rng(0).normal(size=(300, 3))
    >>> v = np.ones(300)
    >>> np.allclose(kernel_matvec(X, None, v, bandwidth=1.0),
    ...             kernel_matrix(X, bandwidth=1.0) @ v)
    True
    """
    X, Y, k = _prepare(X, Y, kernel, bandwidth, kernel_params)
    if not is_array_api_obj(V):
        V = np.asarray(V)
    vector = V.ndim == 1
    V = check_array(V, "V", ensure_2d=not vector)
    if V.shape[0] != Y.shape[0]:
        raise ValueError(f"V has {V.shape[0]} rows but Y has {Y.shape[0]} samples.")
    xp = get_namespace(X, Y, V)
    V2 = V[:, None] if vector else V
    with reference_until_compiled(small=small_for_reference(X.shape[0] * Y.shape[0], X.shape[1])):
        out = kernel_matvec_op(xp, X, Y, xp.astype(V2, X.dtype), k)
    return out[:, 0] if vector else out


@public_function(arrays=("X", "Y", "weights"), work=_pair_work,
                 dask="sketchlearn.kernels._dask:kernel_mean_dask")
def kernel_mean(X, Y=None, kernel="gaussian", *, weights=None, bandwidth=None, **kernel_params):
    """Kernel mean embedding of ``Y`` evaluated at the rows of ``X``.

    ``out[i] = sum_j w_j k(X[i], Y[j])`` with uniform weights by default, computed
    in blocks (never an ``n x m`` matrix).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Evaluation points.
    Y : array of shape (m_samples, n_features), optional
        Sample whose embedding is evaluated; defaults to ``X``.
    kernel, bandwidth, **kernel_params
        As in :func:`kernel_matrix`.
    weights : array of shape (m_samples,), optional
        Probability weights of ``Y`` (non-negative, summing to one).

    Returns
    -------
    mean : array of shape (n_samples,)
        A lazy Dask array chunked like ``X``'s rows when an input is a Dask array.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.kernels import kernel_mean
    >>> X = np.array([[0.0], [1.0]])
    >>> np.round(kernel_mean(X, kernel="gaussian", bandwidth=1.0), 4)
    array([0.8033, 0.8033])
    """
    X, Y, k = _prepare(X, Y, kernel, bandwidth, kernel_params)
    xp = get_namespace(X, Y)
    m = Y.shape[0]
    if weights is None:
        w = xp.full((m,), 1.0 / m, dtype=X.dtype)
    else:
        w = check_weights(weights, m, "weights", xp=xp, dtype=X.dtype)
    return kernel_matvec(X, Y, w, kernel=k)
