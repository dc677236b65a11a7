"""Input checks shared by every public entry point.

Each check names the argument, says what was wrong and how to fix it, and never
modifies its input: when a cast is needed it returns a new array.
"""

from __future__ import annotations

import numbers
import os
import sys

import array_api_compat
import numpy as np
from sklearn.utils._param_validation import Interval

from ._array_api import get_namespace, move_to, to_numpy

__all__ = [
    "check_array",
    "is_host_array",
    "validate_estimator_data",
    "linear_predict",
    "LinearPredictorMixin",
    "check_same_n_features",
    "check_weights",
    "check_scalar",
]

_NUMERIC_KINDS = "biuf"


class _Integers(Interval):
    """scikit-learn's integer interval without booleans (``True`` is not a count)."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


# Parameter constraints shared by the public functions (scikit-learn's vocabulary, checked
# once by ``_array_api.public_function``).
POSITIVE = [Interval(numbers.Real, 0, None, closed="neither")]
NON_NEGATIVE = [Interval(numbers.Real, 0, None, closed="left")]
COUNT = [_Integers(numbers.Integral, 1, None, closed="left")]
STEPS = [_Integers(numbers.Integral, 0, None, closed="left")]
P_EXPONENT = [Interval(numbers.Real, 1, None, closed="left")]
SEED = ["random_state", np.random.Generator]
# Strictly between 0 and 1: a level ``alpha``, a fraction, a relative tolerance.
PROBABILITY = [Interval(numbers.Real, 0, 1, closed="neither")]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` that points at the first frame outside
    sketchlearn: the user's line, however many of our frames (public-function wrapper,
    estimator, helpers) lie between."""
    frame = sys._getframe(1)  # the function that warns: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def check_array(
    X,
    name: str = "X",
    *,
    ensure_2d: bool = True,
    allow_nonfinite: bool = False,
    min_samples: int = 1,
    min_features: int = 1,
    keep_longdouble: bool = False,
):
    """Validate a numeric data array and return it as floating point.

    Parameters
    ----------
    X : array-like
        NumPy or CuPy array, or anything ``numpy.asarray`` accepts.
    name : str
        Name of the argument in error messages.
    ensure_2d : bool
        Require shape ``(n_samples, n_features)``; else require 1-D.
    allow_nonfinite : bool
        Accept NaN and infinity.
    min_samples, min_features : int
        Smallest accepted number of rows and columns.
    keep_longdouble : bool
        Return NumPy ``longdouble`` input unchanged (for the extended-precision
        paths that accept it) instead of casting it to float64.

    Returns
    -------
    X : array
        float32 stays float32; every other real type becomes float64. The input is
        returned unchanged when no cast is needed (never written to).

    Raises
    ------
    TypeError
        For sparse, complex, object or string input.
    ValueError
        For a wrong number of dimensions, too few rows or columns, or NaN/inf.
    """
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(
            f"{name} is a sparse matrix, which this function does not accept; "
            f"pass a dense array ({name}.toarray())."
        )
    if not array_api_compat.is_array_api_obj(X):
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be an array of numbers: {exc}") from exc
    xp = get_namespace(X)
    extended = keep_longdouble and isinstance(X, np.ndarray) and X.dtype == np.longdouble
    try:
        numeric = extended or xp.isdtype(X.dtype, ("bool", "integral", "real floating"))
    except (TypeError, ValueError):  # object and string dtypes
        numeric = False
    if not numeric:
        raise TypeError(
            f"{name} must hold real numbers; got dtype {X.dtype}. "
            "Convert it first (e.g. X.astype(float)); complex data is not supported."
        )
    want = 2 if ensure_2d else 1
    if X.ndim != want:
        hint = (
            f" Reshape with {name}.reshape(-1, 1) for one feature or {name}.reshape(1, -1) "
            "for one sample."
            if ensure_2d and X.ndim == 1
            else ""
        )
        shape_word = "(n_samples, n_features)" if ensure_2d else "(n,)"
        raise ValueError(
            f"{name} must be a {want}-D array of shape {shape_word}; got {X.ndim}-D with shape "
            f"{tuple(X.shape)}.{hint}"
        )
    if X.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {X.shape[0]} sample(s) (shape {tuple(X.shape)}); at least {min_samples} "
            "needed."
        )
    if ensure_2d and X.shape[1] < min_features:
        raise ValueError(
            f"{name} has {X.shape[1]} feature(s) (shape {tuple(X.shape)}); at least "
            f"{min_features} needed."
        )
    if X.dtype != xp.float32 and X.dtype != xp.float64 and not extended:
        X = xp.astype(X, xp.float64)
    if not allow_nonfinite and X.shape[0] > 0:
        finite = xp.isfinite(X)
        if not bool(xp.all(finite)):
            bad = to_int(xp.argmax(xp.astype(~xp.all(finite, axis=-1) if ensure_2d else ~finite,
                                               xp.int8)))
            what = "NaN" if bool(xp.any(xp.isnan(X))) else "infinity"
            where = f"row {bad}" if ensure_2d else f"index {bad}"
            raise ValueError(
                f"{name} contains {what} (first at {where}); remove or impute those values first."
            )
    return X


def to_int(x) -> int:
    """Python int from a 0-d array of any namespace."""
    return int(x.item() if hasattr(x, "item") else x)


def check_same_n_features(X, Y, names=("X", "Y")) -> None:
    """Raise when two 2-D arrays have different numbers of columns."""
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"{names[0]} has {X.shape[1]} features but {names[1]} has {Y.shape[1]}; both need "
            "the same number of columns."
        )


def check_weights(w, n: int, name: str = "sample_weight", *, xp=None, dtype=None,
                  normalize: bool = False, rtol: float = 1e-6):
    """Validate a probability vector of length ``n``.

    Parameters
    ----------
    w : array-like
        Non-negative finite weights.
    n : int
        Required length.
    name : str
        Argument name for error messages.
    xp : namespace, optional
        Namespace the weights must share with the data (checked).
    dtype : dtype, optional
        Floating dtype of the result.
    normalize : bool
        Divide by the sum; otherwise the weights must already sum to 1 within ``rtol``.

    Returns
    -------
    w : array
        Weights of shape ``(n,)`` summing to one.
    """
    if xp is not None and not array_api_compat.is_array_api_obj(w):
        w = move_to(np.asarray(w), xp)  # lists are fine next to CuPy data
    w = check_array(w, name, ensure_2d=False)
    wxp = get_namespace(w) if xp is None else get_namespace(w, xp.asarray(0.0))
    if w.shape[0] != n:
        raise ValueError(f"{name} has length {w.shape[0]}, but the data has {n} samples.")
    if bool(wxp.any(w < 0)):
        raise ValueError(f"{name} has negative entries; weights must be non-negative.")
    total = float(wxp.sum(w))
    if total <= 0:
        raise ValueError(
            f"{name} sums to 0 (all weights are zero); at least one must be positive."
        )
    if dtype is not None and w.dtype != dtype:
        w = wxp.astype(w, dtype)
    if normalize:
        return w / total
    if abs(total - 1.0) > rtol * max(1, n) ** 0.5 + 1e-12 and abs(total - 1.0) > 1e-5:
        raise ValueError(
            f"{name} sums to {total:.6g}, not 1; pass {name} / {name}.sum() to normalise."
        )
    return w


def check_scalar(
    value,
    name: str,
    *,
    kind=numbers.Real,
    lower=None,
    upper=None,
    lower_inclusive: bool = True,
    upper_inclusive: bool = True,
):
    """Validate a scalar parameter against a type and an interval; return it.

    Examples
    --------
    >>> from sketchlearn._validation import check_scalar
    >>> check_scalar(0.5, "delta", lower=0, upper=1, lower_inclusive=False,
    ...              upper_inclusive=False)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, kind):
        want = "an integer" if kind is numbers.Integral else "a real number"
        raise TypeError(f"{name} must be {want}, got {value!r} ({type(value).__name__}).")
    if isinstance(value, numbers.Real) and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    too_low = lower is not None and (value < lower if lower_inclusive else value <= lower)
    too_high = upper is not None and (value > upper if upper_inclusive else value >= upper)
    if too_low or too_high:
        left = ("[" if lower_inclusive else "(") + ("-inf" if lower is None else f"{lower}")
        right = ("inf" if upper is None else f"{upper}") + ("]" if upper_inclusive else ")")
        raise ValueError(f"{name} must be in {left}, {right}, got {value!r}.")
    return value


def is_host_array(X) -> bool:
    """True for NumPy arrays and anything that is not an array-API array (lists,
    pandas, scipy.sparse): input scikit-learn's ``validate_data`` handles."""
    return array_api_compat.is_numpy_array(X) or not hasattr(X, "__array_namespace__")


def validate_estimator_data(estimator, X, y=None, *, reset: bool, y_required: bool = False,
                            keep_longdouble: bool = False, ensure_min_samples: int = 1,
                            accept_sparse=False, accept_dask: bool = False):
    """Validate an estimator's ``X`` (2-D) and optional ``y`` (1-D) on any device.

    Host input (NumPy, lists, pandas) goes through scikit-learn's ``validate_data``
    (feature names, ``n_features_in_``, its error messages, which its estimator
    checks expect); CuPy and other array-API arrays through :func:`check_array`,
    staying on their device, with ``n_features_in_`` set or checked the same way.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator being fitted or applied.
    X : array-like of shape (n_samples, n_features)
        Data.
    y : array-like of shape (n_samples,), optional
        Targets; cast to ``X``'s dtype.
    reset : bool
        True in ``fit`` (record ``n_features_in_``), False afterwards (check it).
    y_required : bool
        Raise scikit-learn's "requires y" error when ``y`` is None.
    keep_longdouble : bool
        Let NumPy ``longdouble`` data through uncast (extended-precision paths).
    ensure_min_samples : int
        Fewest rows accepted.
    accept_sparse : bool, str or list of str
        SciPy sparse formats accepted (scikit-learn's ``validate_data`` meaning).
    accept_dask : bool
        Whether the caller has a distributed path: Dask arrays are then checked
        lazily (:func:`_validate_dask_data`) and returned as Dask arrays; otherwise
        they raise a ``TypeError`` (never a silent ``compute()`` of the whole array).

    Returns
    -------
    X, y : arrays
        float32 or float64 (or long double when kept); ``y`` None when not given.
    """
    name = type(estimator).__name__
    if y_required and y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    if "dask.array" in sys.modules:
        from ._dask import any_dask

        if any_dask(X, y):
            if not accept_dask:
                raise TypeError(
                    f"{name} has no distributed version: its input is a Dask array. If the "
                    "data fit in memory, pass computed arrays (X.compute()); the user "
                    "guide's Dask page lists what runs on Dask.")
            return _validate_dask_data(estimator, X, y, reset=reset)
    if is_host_array(X):
        from sklearn.utils.validation import validate_data

        extended = keep_longdouble and isinstance(X, np.ndarray) and X.dtype == np.longdouble
        dtype = None if extended else [np.float64, np.float32]
        if y is None:
            return validate_data(estimator, X, dtype=dtype, reset=reset,
                                 ensure_min_samples=ensure_min_samples,
                                 accept_sparse=accept_sparse), None
        X, y = validate_data(estimator, X, y, dtype=dtype, y_numeric=True, reset=reset,
                             ensure_min_samples=ensure_min_samples, accept_sparse=accept_sparse)
        return X, y.astype(X.dtype, copy=False)
    X = check_array(X, "X", min_samples=ensure_min_samples)
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    if y is None:
        return X, None
    y = check_array(y, "y", ensure_2d=False)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}; they must match.")
    xp = get_namespace(X, y)
    return X, xp.astype(y, X.dtype)


def _validate_dask_data(estimator, X, y, *, reset: bool):
    """``validate_estimator_data`` for Dask input, without computing anything: row
    chunks with known sizes, 2-D, a float dtype (others cast lazily to float64), the
    number of features set or checked, ``y`` (Dask, or NumPy cut into ``X``'s row
    chunks) aligned with ``X``."""
    from ._dask import aligned_vector, is_dask_array, row_chunked

    name = type(estimator).__name__
    if not is_dask_array(X):
        raise TypeError(f"{name}: y is a Dask array but X is not; pass X as a Dask array "
                        "too (dask.array.from_array(X, chunks=(rows, -1))), or y.compute().")
    X = row_chunked(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array, got a Dask array of shape {X.shape}; "
                         "reshape it with X.reshape(-1, 1) (one feature).")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty (shape {X.shape}).")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or \
                np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"X has dtype {X.dtype}; sketchlearn needs real numbers.")
        X = X.astype(np.float64)
    if reset:
        estimator.n_features_in_ = int(X.shape[1])
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    if y is None:
        return X, None
    y = aligned_vector(y, X, "y")
    return X, y.astype(X.dtype)


def linear_predict(estimator, X, *, keep_longdouble: bool = False):
    """``X @ coef_ + intercept_`` of a fitted linear estimator, on ``X``'s device.

    ``X`` is validated against the fit (:func:`validate_estimator_data`); the
    coefficients are moved to ``X``'s namespace and dtype; a missing
    ``intercept_`` counts as 0.
    """
    X, _ = validate_estimator_data(estimator, X, reset=False, keep_longdouble=keep_longdouble,
                                   accept_dask=True)
    if "dask.array" in sys.modules:
        from ._dask import is_dask_array

        if is_dask_array(X):  # lazily, chunk by chunk
            coef = np.asarray(to_numpy(estimator.coef_))
            intercept = float(getattr(estimator, "intercept_", 0.0))

            def predict_block(block):  # NumPy or CuPy chunks
                xp = get_namespace(block)
                return block @ xp.astype(move_to(coef, xp), block.dtype) + intercept

            return X.map_blocks(predict_block, drop_axis=1, dtype=X.dtype)
    xp = get_namespace(X)
    coef = xp.astype(move_to(estimator.coef_, xp), X.dtype)
    return X @ coef + getattr(estimator, "intercept_", 0.0)


class LinearPredictorMixin:
    """``predict`` for a fitted linear estimator: ``X @ coef_ + intercept_``.

    Classes set ``_predict_keeps_longdouble = True`` to predict in long double when
    ``X`` is long double (estimators whose coefficients are computed in it).
    """

    _predict_keeps_longdouble = False

    def predict(self, X):
        """Linear prediction ``X @ coef_ + intercept_``, on ``X``'s device.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Samples, with the features seen in ``fit``.

        Returns
        -------
        y_pred : array of shape (n_samples,)
            Predictions, in ``X``'s array library and dtype.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "coef_")
        return linear_predict(self, X, keep_longdouble=self._predict_keeps_longdouble)
