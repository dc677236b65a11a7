"""NIST StRD linear least squares regression data sets with their certified values.

The Statistical Reference Datasets (StRD) of the US National Institute of Standards
and Technology come with "certified" regression results computed in multiple
precision, so a least squares solver can be graded by how many correct digits it
returns (the log relative error, LRE). The eleven linear regression sets ship with
sketchlearn as NIST's ``.dat`` files under ``datasets/data/nist_strd/``; each file
starts with a few ``#`` lines saying where the copy came from and how it was
checked (Longley's is not a byte copy but NIST's numbers in NIST's layout). They
are public-domain data of the United States government; the originals are at
https://www.itl.nist.gov/div898/strd/lls/data/LINKS/DATA/<Name>.dat.

``NIST_STRD_NAMES`` lists the sets: Norris, Pontius, NoInt1, NoInt2, Filip,
Longley and Wampler1 to Wampler5.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["NIST_STRD_NAMES", "load_nist_strd"]

NIST_STRD_NAMES = ("Norris", "Pontius", "NoInt1", "NoInt2", "Filip", "Longley",
                   "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5")

_SOURCE = "https://www.itl.nist.gov/div898/strd/lls/data/LINKS/DATA/{}.dat"
_BY_LOWER = {name.lower(): name for name in NIST_STRD_NAMES}

_PARAMETER = re.compile(r"^[ \t]+B(\d+)[ \t]+(\S+)[ \t]+(\S+)[ \t]*$")
_DATA_HEADER = re.compile(r"^Data:\s+y\b")
_RESIDUAL_SD = re.compile(r"^[ \t]*Standard Deviation[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_R_SQUARED = re.compile(r"^[ \t]*R-Squared[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_DIFFICULTY = re.compile(r"\b(Lower|Average|Higher) Level of Difficulty")
_N_OBS = re.compile(r"\b(\d+) Observations")


def _canonical_name(name):
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'Longley', got {type(name).__name__}.")
    try:
        return _BY_LOWER[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"Unknown NIST StRD data set {name!r}; the linear regression sets are "
            f"{', '.join(NIST_STRD_NAMES)} (case does not matter).") from None


@functools.cache
def _read_text(name):
    path = resources.files(__package__).joinpath("data").joinpath("nist_strd")
    return path.joinpath(f"{name}.dat").read_text(encoding="ascii")


@functools.cache
def _parse_nist_strd(name):
    """Split a bundled ``.dat`` file into its parts, numbers kept as NIST's strings.

    Returns a dict with ``descr`` (the text above the data), ``columns`` (names in
    the data header, ``y`` first), ``rows`` (tuples of number strings, ``y`` first),
    ``params`` (tuples ``(k, estimate, standard deviation)`` for each ``Bk``),
    ``residual_sd``, ``r_squared`` and ``difficulty``. Keeping the strings lets
    callers redo the arithmetic exactly (``fractions.Fraction(s)``).
    """
    lines = _read_text(name).splitlines()
    starts = [i for i, line in enumerate(lines) if _DATA_HEADER.match(line)]
    if not starts:
        raise RuntimeError(f"bundled NIST file {name}.dat has no data header line.")
    head = lines[:starts[-1]]
    nist_head = "\n".join(line for line in head if not line.startswith("#"))
    params = tuple((int(m.group(1)), m.group(2), m.group(3))
                   for m in map(_PARAMETER.match, head) if m)
    rows = tuple(tuple(line.split()) for line in lines[starts[-1] + 1:] if line.strip())
    columns = tuple(lines[starts[-1]].split()[1:])
    found = {pattern: pattern.search(nist_head)
             for pattern in (_RESIDUAL_SD, _R_SQUARED, _DIFFICULTY, _N_OBS)}
    if (not params or any(m is None for m in found.values())
            or int(found[_N_OBS].group(1)) != len(rows)
            or any(len(row) != len(columns) for row in rows)):
        raise RuntimeError(f"bundled NIST file {name}.dat does not parse; it may be damaged.")
    return {
        "descr": "\n".join(head),
        "columns": columns,
        "rows": rows,
        "params": params,
        "residual_sd": found[_RESIDUAL_SD].group(1),
        "r_squared": found[_R_SQUARED].group(1),
        "difficulty": found[_DIFFICULTY].group(1).lower(),
    }


def load_nist_strd(name, *, dtype=np.float64):
    """Load a NIST StRD linear regression data set and its certified results.

    The eleven sets of NIST's Statistical Reference Datasets for linear least
    squares, with the certified estimates, their standard deviations, the residual
    standard deviation and R-squared that NIST computed in multiple precision.
    They are the standard test of a least squares solver's accuracy: Norris and
    Pontius are of lower difficulty, NoInt1 and NoInt2 (no intercept) average,
    Longley, Filip (a degree-10 polynomial, so ill-conditioned that many
    double-precision solvers lose every digit) and Wampler1 to Wampler5
    (degree-5 polynomials) higher. Public-domain data of the US government; each
    bundled file names its source.

    Parameters
    ----------
    name : str
        One of ``NIST_STRD_NAMES``: ``"Norris"``, ``"Pontius"``, ``"NoInt1"``,
        ``"NoInt2"``, ``"Filip"``, ``"Longley"``, ``"Wampler1"`` to
        ``"Wampler5"``. Case does not matter.
    dtype : {numpy.float64, numpy.longdouble}, default=numpy.float64
        Type of ``X`` and ``y``. ``numpy.longdouble`` parses the published decimals
        in extended precision (64-bit mantissa on x86-64 Linux) and forms the
        powers there: rounding the data to float64 alone limits Filip to about 7.6
        correct digits in any float64 solver, exact arithmetic included.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the fields

        X : ndarray of shape (n_samples, n_features), float64
            The design matrix WITHOUT its constant column. For Norris, NoInt1 and
            NoInt2 the one predictor ``x``; for Longley the six predictors as in the
            file; for the polynomial models the powers ``x, x**2, ..., x**d`` of the
            file's single predictor (Pontius d = 2, Filip d = 10, Wampler d = 5),
            computed in float64 from the file's ``x``.
        y : ndarray of shape (n_samples,), float64
            The response.
        fit_intercept : bool
            Whether the certified model has a constant term ``B0``: False for
            NoInt1 and NoInt2, True otherwise.
        coef : ndarray of shape (n_features,)
            Certified estimates ``B1, ..., Bp``, in the order of ``X``'s columns.
        intercept : float
            Certified ``B0``; 0.0 when ``fit_intercept`` is False.
        coef_se : ndarray of shape (n_features,)
            Certified standard deviations of ``coef``. They are exactly 0 for
            Wampler1 and Wampler2, whose fits are exact, so grade those by absolute
            rather than relative error.
        intercept_se : float
            Certified standard deviation of ``B0``; NaN when ``fit_intercept`` is
            False (there is no intercept to have one).
        residual_sd : float
            Certified residual standard deviation, ``sqrt(RSS / (n - n_params))``
            with ``n_params`` counting ``B0``.
        r_squared : float
            Certified R-squared; about the mean when ``fit_intercept`` is True,
            about zero (uncentered) for NoInt1 and NoInt2.
        difficulty : str
            NIST's level of difficulty: ``"lower"``, ``"average"`` or ``"higher"``.
        feature_names : list of str
            Names of ``X``'s columns (``"x"``, ``"x^2"``, ... or ``"x1"``, ...).
        name : str
            Canonical name, e.g. ``"Wampler3"``.
        source : str
            NIST's address of the file.
        DESCR : str
            The file's text above the data: provenance notes and NIST's header.

    Raises
    ------
    ValueError
        If ``name`` is not one of the eleven sets (the message lists them).
    TypeError
        If ``name`` is not a string.

    Notes
    -----
    The numbers are parsed from NIST's decimal text into float64, which is itself
    a rounding: for exact checks parse the strings yourself (``DESCR`` carries the
    certified values as printed). Certified values are given to 15 significant
    digits, and each is the exact least squares result on the bundled data
    correctly rounded to those digits (the tests check this in rational
    arithmetic).

    References
    ----------
    NIST Statistical Reference Datasets, linear regression:
    https://www.itl.nist.gov/div898/strd/lls/lls.shtml

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.datasets import NIST_STRD_NAMES, load_nist_strd
    >>> len(NIST_STRD_NAMES)
    11
    >>> data = load_nist_strd("norris")
    >>> data.name, data.X.shape, data.fit_intercept, data.difficulty
    ('Norris', (36, 1), True, 'lower')
    >>> A = np.column_stack([np.ones(len(data.y)), data.X])
    >>> beta = np.linalg.lstsq(A, data.y, rcond=None)[0]
    >>> bool(np.allclose(beta, [data.intercept, *data.coef], rtol=1e-10))
    True
    >>> load_nist_strd("Filip").X.shape
    (82, 10)
    """
    name = _canonical_name(name)
    parsed = _parse_nist_strd(name)
    if np.dtype(dtype) not in (np.dtype(np.float64), np.dtype(np.longdouble)):
        raise ValueError(f"dtype must be numpy.float64 or numpy.longdouble; got {dtype!r}.")
    table = np.array([[np.dtype(dtype).type(v) for v in row] for row in parsed["rows"]],
                     dtype=dtype)
    y = np.ascontiguousarray(table[:, 0])
    predictors = table[:, 1:]
    params = parsed["params"]
    fit_intercept = params[0][0] == 0
    terms = params[1:] if fit_intercept else params
    n_terms = len(terms)
    if predictors.shape[1] == n_terms:
        X = np.ascontiguousarray(predictors)
        feature_names = list(parsed["columns"][1:])
    elif predictors.shape[1] == 1:
        X = np.ascontiguousarray(predictors ** np.arange(1, n_terms + 1))
        feature_names = ["x"] + [f"x^{k}" for k in range(2, n_terms + 1)]
    else:  # pragma: no cover - the bundled files are all of the two kinds above
        raise RuntimeError(f"bundled NIST file {name}.dat has an unexpected model.")
    return Bunch(
        X=X,
        y=y,
        fit_intercept=fit_intercept,
        coef=np.array([float(est) for _, est, _ in terms]),
        intercept=float(params[0][1]) if fit_intercept else 0.0,
        coef_se=np.array([float(sd) for _, _, sd in terms]),
        intercept_se=float(params[0][2]) if fit_intercept else float("nan"),
        residual_sd=float(parsed["residual_sd"]),
        r_squared=float(parsed["r_squared"]),
        difficulty=parsed["difficulty"],
        feature_names=feature_names,
        name=name,
        source=_SOURCE.format(name),
        DESCR=parsed["descr"],
    )
