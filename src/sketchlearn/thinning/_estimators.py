"""The KernelThinning estimator."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from array_api_compat import is_numpy_array
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import is_dask_array
from .._validation import validate_estimator_data
from ..kernels import Kernel, make_kernel
from ._core import COMPRESS_AUTO_MIN, VARIANTS, compress_thin, kernel_thin, split_kernel

__all__ = ["KernelThinning"]


class KernelThinning(BaseEstimator):
    """Compress a sample to a few points that keep its distribution (kernel thinning).

    Chooses ``n_out`` rows of ``X`` whose uniform distribution is close to the
    (weighted) input distribution in maximum mean discrepancy (MMD): KT-SPLIT's
    self-balancing halving walk followed by KT-SWAP (Dwivedi & Mackey, "Kernel
    Thinning" and "Generalized Kernel Thinning"), or Compress++ (Shetty, Dwivedi &
    Mackey) for large inputs. Kernel thinning reaches MMD about ``n^-1/2`` where a
    uniform subsample of the same size gets ``n^-1/4``.

    There is no ``transform``: thinning selects rows, it does not map each row to
    something new, so it cannot be applied to other data. Use :meth:`fit_resample`
    (imbalanced-learn style, for pipelines) or ``coreset_`` / ``indices_``.

    Parameters
    ----------
    kernel : str or Kernel, default="gaussian"
        Target kernel: a name ("gaussian", "laplace", "matern", "imq", "sinc") or a
        bounded :class:`~sketchlearn.kernels.Kernel`.
    bandwidth : float, "median" or "scott", default="median"
        Bandwidth of a named kernel (ignored for a Kernel object).
    variant : {"kt+", "target", "power"}, default="kt+"
        Split kernel of KT-SPLIT: target + power kernel (KT+), target, or power.
        Kernels without a power kernel (IMQ) run "kt+" as "target" with a warning.
    alpha : float in (0, 1], default=0.5
        Power of the power kernel.
    n_out : int, optional
        Coreset size; default ``floor(sqrt(n_samples))``.
    compress : {"auto", "never", "always"}, default="auto"
        Use Compress++ (near-linear time); "auto" does so above 16384 samples.
    g : int, default=4
        Oversampling parameter of Compress++.
    delta : float in (0, 1), default=0.5
        Failure probability of the halving walks (a step of round ``j`` of ``m`` uses
        ``delta_i 2^(j-1) / m`` with ``delta_i = delta / n``, Dwivedi and Mackey).
        With Compress++ the total ``delta`` is split between the halvings and the
        final thinning as in :func:`~sketchlearn.thinning.compress_thin`.
    unique : bool, default=False
        Forbid repeated rows in the coreset.
    random_state : int, RandomState, Generator or None
        Seed.
    verbose : int, default=0
        Progress bar over halving rounds when > 0.

    Attributes
    ----------
    indices_ : ndarray of shape (n_out,)
        Sorted row numbers of the coreset (repeats possible unless ``unique``).
    coreset_ : array of shape (n_out, n_features)
        ``X[indices_]``, in the input's array library.
    mmd_ : float
        MMD between the coreset and the (weighted) input, computed without an n x n
        matrix; with Compress++ above 16384 samples it is NaN (an exact value costs
        O(n^2) time: use :func:`sketchlearn.metrics.mmd_subset`).
    kernel_ : Kernel
        The target kernel used (bandwidth resolved).
    split_kernel_ : Kernel
        The kernel of KT-SPLIT.
    compressed_ : bool
        Whether Compress++ was used.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.thinning import KernelThinning
    >>> X = np.random.default_rng(0).normal(size=(1024, 2))
    >>> kt = KernelThinning(random_state=0).fit(X)
    >>> kt.coreset_.shape
    (32, 2)
    >>> kt.mmd_ < 0.05
    True
    """

    _parameter_constraints: dict = {
        "kernel": [StrOptions({"gaussian", "laplace", "matern", "imq", "sinc"}), Kernel],
        "bandwidth": [Interval(numbers.Real, 0, None, closed="neither"),
                      StrOptions({"median", "scott"})],
        "variant": [StrOptions(set(VARIANTS))],
        "alpha": [Interval(numbers.Real, 0, 1, closed="right")],
        "n_out": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "compress": [StrOptions({"auto", "never", "always"})],
        "g": [Interval(numbers.Integral, 0, None, closed="left")],
        "delta": [Interval(numbers.Real, 0, 1, closed="neither")],
        "unique": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
    }

    def __init__(self, kernel="gaussian", bandwidth="median", variant="kt+", alpha=0.5,
                 n_out=None, compress="auto", g=4, delta=0.5, unique=False,
                 random_state=None, verbose=0):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.variant = variant
        self.alpha = alpha
        self.n_out = n_out
        self.compress = compress
        self.g = g
        self.delta = delta
        self.unique = unique
        self.random_state = random_state
        self.verbose = verbose

    def _validate_X(self, X):
        if is_dask_array(X) and self.compress != "always":
            raise TypeError(
                f"KernelThinning(compress={self.compress!r}) got a Dask array: only "
                "Compress++ runs on Dask arrays (kernel thinning itself costs O(n^2)). "
                "Use KernelThinning(compress='always') or compress_thin(X, ...); if the "
                "data fit in memory, pass X.compute().")
        return validate_estimator_data(self, X, reset=True, ensure_min_samples=2,
                                       accept_dask=True)[0]

    @_fit_context(prefer_skip_nested_validation=True)  # kernel_thin: no second check
    def fit(self, X, y=None, sample_weight=None):
        """Choose the coreset.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Points to thin (NumPy or CuPy), at least 2; or a Dask array with
            ``compress="always"`` (Compress++ chunk by chunk, see
            :func:`~sketchlearn.thinning.compress_thin`; the fitted attributes are NumPy).
        y : ignored
            Present for API consistency.
        sample_weight : array of shape (n_samples,), optional
            Non-negative weights (e.g. importance weights of MCMC output); the
            coreset approximates the weighted distribution. Not supported with
            Compress++.

        Returns
        -------
        self : KernelThinning
        """
        X = self._validate_X(X)
        n = X.shape[0]
        n_out = math.isqrt(n) if self.n_out is None else self.n_out
        if n_out > n:
            raise ValueError(f"n_out={n_out} is larger than the number of samples ({n}).")
        use_compress = self.compress == "always" or (
            self.compress == "auto" and n >= COMPRESS_AUTO_MIN and sample_weight is None)
        if use_compress and sample_weight is not None:
            raise ValueError("sample_weight is not supported with compress='always'; use "
                             "compress='never' (kernel thinning of the weighted sample).")
        bandwidth = None if isinstance(self.kernel, Kernel) else self.bandwidth
        dask_input = is_dask_array(X)
        if dask_input:  # the in-memory bandwidth, from the rows it would look at
            from ..kernels._dask import dask_make_kernel

            self.kernel_ = dask_make_kernel(self.kernel, bandwidth, X)
        else:
            self.kernel_ = make_kernel(self.kernel, bandwidth, X)
        with warnings.catch_warnings():  # the thinning function below warns once
            warnings.simplefilter("ignore", UserWarning)
            self.split_kernel_ = split_kernel(self.kernel_, self.variant, X.shape[1],
                                              self.alpha)
        common = dict(kernel=self.kernel_, bandwidth=None, variant=self.variant,
                      alpha=self.alpha, delta=self.delta, unique=self.unique,
                      random_state=self.random_state, verbose=self.verbose, return_mmd=True)
        if use_compress:
            self.indices_, self.mmd_ = compress_thin(X, n_out, g=self.g, **common)
        else:
            self.indices_, self.mmd_ = kernel_thin(X, n_out, sample_weight=sample_weight,
                                                   **common)
        self.compressed_ = use_compress
        if dask_input:  # fitted attributes are NumPy: gather the n_out rows
            self.coreset_ = to_numpy(X[self.indices_].compute())
            return self
        xp = get_namespace(X)
        self.coreset_ = xp.take(X, move_to(self.indices_, xp), axis=0)
        return self

    def fit_resample(self, X, y):
        """Fit, then return the coreset rows of ``X`` and the matching entries of ``y``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Points to thin.
        y : array of shape (n_samples,) or (n_samples, n_outputs)
            Targets, thinned alongside.

        Returns
        -------
        X_thinned : array of shape (n_out, n_features)
        y_thinned : array of shape (n_out,) or (n_out, n_outputs)
        """
        y_arr = np.asarray(y) if is_numpy_array(y) or not hasattr(y, "__array_namespace__") \
            else y
        if y_arr.shape[0] != np.shape(X)[0]:
            raise ValueError(f"X has {np.shape(X)[0]} samples but y has {y_arr.shape[0]}.")
        self.fit(X)
        if is_dask_array(y_arr):
            return self.coreset_, to_numpy(y_arr[self.indices_].compute())
        ys = get_namespace(y_arr)
        return self.coreset_, ys.take(y_arr, move_to(self.indices_, ys), axis=0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _check_fitted(self):
        check_is_fitted(self, "indices_")
