"""Sketched ridge = ridge with a larger penalty: the induced penalty and df matching.

LeJeune, Patil, Javadi, Baraniuk and Tibshirani ("Asymptotics of the sketched
pseudoinverse", SIAM J. Math. Data Sci., 2024) show that for a feature sketch ``S``
(``p x q``, ``E[S S^T] = I``) asymptotically free from the data Gram matrix
``G = X^T X``,

    S (S^T G S + alpha I_q)^-1 S^T  ~  (G + mu I_p)^-1,

where ``mu`` solves the fixed point ``mu = alpha * S_{SS^T}(-df(mu) / p)`` with
``df(mu) = tr G (G + mu I)^-1`` and ``S_{SS^T}`` the S-transform of the spectrum of
``S S^T``. Patil and LeJeune ("Asymptotically free sketched ridge ensembles: risks,
cross-validation, and tuning", ICLR 2024) carry it to ensembles: the ``M -> inf``
ensemble of sketched ridge fits is ridge with penalty ``mu``, so its risk is that of
``Ridge(alpha=mu)``. Two spectra have closed forms (``q`` the sketch size):

- Gaussian (Marchenko-Pastur with ratio ``p/q``): ``S(w) = 1 / (1 + (p/q) w)``, so
  ``mu (1 - df(mu)/q) = alpha``;
- orthogonal (``S S^T`` = ``(p/q)`` times a rank-``q`` projection; also SRDCT, and
  SRHT when ``p`` is a power of two): ``S(w) = (q/p)(1 + w) / (q/p + w)``, so
  ``mu (1 - df(mu)/q) = alpha (1 - df(mu)/p)``.

SRHT with ``p`` not a power of two is refused: the Hadamard transform then acts on
the features zero-padded to ``N = 2^ceil(log2 p)``, ``S S^T`` is ``N/q`` times a
random ``p x p`` compression of a rank-``q`` projection of ``R^N`` (not a scaled
projection, so not the orthogonal spectrum), and the structured ``H D`` is not free
from the data either. Monte Carlo df matching (``n = 400``, ``p = 150``, ``q = 60``,
``alpha = 30``) puts its penalty at 553.9 +- 1.1, 3.7 % (18 Monte Carlo standard
errors) above the orthogonal formula's 534.2 and near the Gaussian 555.4; SRDCT,
which needs no padding, gives 534.3 on the same data, and SRHT at ``p = 128`` matches
the orthogonal formula to 0.04 % (``test_srht_equivalence_needs_a_power_of_two``).

Multiplying the equivalence by ``G`` and taking traces shows that the sketched
degrees of freedom equal ``df(mu)``; :func:`df_matched_penalty` uses this to read
``mu`` off fitted members for any sketch.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from .._array_api import get_namespace, public_function, to_numpy
from .._validation import check_array
from ._core import resolve_size

__all__ = ["equivalent_ridge_penalty", "gram_spectrum", "ridge_df", "df_matched_penalty",
           "FREE_SKETCHES"]

# sketch kinds with a closed-form (asymptotic) spectrum of S S^T
FREE_SKETCHES = ("gaussian", "orthogonal", "srdct", "srht")


def gram_spectrum(X, fit_intercept=True):
    """Eigenvalues (host float64, ``min(n, p)`` of them, >= 0) of the (centred) Gram."""
    xp = get_namespace(X)
    if fit_intercept:
        X = X - xp.mean(X, axis=0)
    n, p = X.shape
    G = X.T @ X if p <= n else X @ X.T
    lam = np.asarray(to_numpy(xp.linalg.eigvalsh(G)), dtype=np.float64)
    lam = np.maximum(lam, 0.0)
    eps = float(np.finfo(np.float32 if X.dtype == xp.float32 else np.float64).eps)
    top = float(lam.max()) if lam.size else 0.0
    lam[lam <= max(n, p) * eps * top] = 0.0
    return lam


def ridge_df(lam, mu):
    """``tr G (G + mu I)^-1`` from the eigenvalues ``lam`` of ``G`` (``mu = 0``: rank)."""
    lam = np.asarray(lam, dtype=np.float64)
    if mu <= 0:
        return float(np.count_nonzero(lam > 0))
    return float(np.sum(lam / (lam + mu)))


def _rank(lam):
    return int(np.count_nonzero(np.asarray(lam) > 0))


def df_matched_penalty(lam, df):
    """The ridge penalty ``mu >= 0`` with ``ridge_df(lam, mu) = df``.

    0 when ``df`` reaches the rank (the least-squares / minimum-norm fit), ``inf``
    when ``df <= 0``.
    """
    lam = np.asarray(lam, dtype=np.float64)
    r = _rank(lam)
    if not np.isfinite(df):
        return float("nan")
    if df >= r - 1e-10 * max(r, 1):
        return 0.0
    if df <= 0:
        return float("inf")
    top = float(lam.max())
    # df(mu) is decreasing; bracket in log(mu)
    lo, hi = top * 1e-16, top
    while ridge_df(lam, hi) > df:
        hi *= 4.0
    while ridge_df(lam, lo) < df:
        lo /= 4.0
    t = brentq(lambda u: ridge_df(lam, np.exp(u)) - df, np.log(lo), np.log(hi),
               xtol=1e-13, rtol=1e-13, maxiter=500)
    return float(np.exp(t))


def _fixed_point(lam, alpha, kind, q, p):
    """Solve ``mu = alpha S(-df(mu)/p)`` for one alpha (host floats)."""
    r = _rank(lam)
    ortho = kind != "gaussian"
    if ortho and q >= p:
        return float(alpha)            # S S^T = I exactly
    mu0 = df_matched_penalty(lam, q) if r > q else 0.0   # df(mu0) = q
    if alpha == 0:
        return mu0

    def h(mu):
        df = ridge_df(lam, mu)
        val = mu * (1 - df / q) - alpha
        if ortho:
            val += alpha * df / p
        return val

    lo = mu0 if mu0 > 0 else alpha * 1e-12
    if h(lo) >= 0:  # pragma: no cover - only at q = p handled above
        return float(lo)
    hi = max(alpha, lo) * 2.0
    while h(hi) <= 0:
        hi *= 2.0
    return float(brentq(h, lo, hi, xtol=1e-14 * hi, rtol=1e-13, maxiter=500))


@public_function(arrays=("X",))
def equivalent_ridge_penalty(X, alpha, sketch="gaussian", sketch_size=0.5, *,
                             fit_intercept=True):
    """Penalty ``mu`` of the unsketched ridge equivalent to feature-sketched ridge.

    Ridge with penalty ``alpha`` on a feature sketch ``X S`` (``S`` of shape
    ``(n_features, sketch_size)``, ``E[S S^T] = I``), mapped back as ``S b``, is
    asymptotically (``n, p, q`` large together, sketch free from the data) the
    unsketched ridge with a larger penalty ``mu`` (LeJeune, Patil, Javadi, Baraniuk
    and Tibshirani, "Asymptotics of the sketched pseudoinverse", 2024), and the
    average of infinitely many sketched fits equals ``Ridge(alpha=mu)`` (Patil and
    LeJeune, "Asymptotically free sketched ridge ensembles", ICLR 2024). ``mu``
    solves the fixed point

    .. math::

        \\mu = \\alpha\\, \\mathscr S_{SS^\\top}\\!\\Bigl(-\\frac{\\mathrm{df}(\\mu)}{p}\\Bigr),
        \\qquad \\mathrm{df}(\\mu) = \\operatorname{tr} G (G + \\mu I)^{-1},

    with ``G`` the (centred) Gram matrix ``X^T X`` and ``S_{SS^T}`` the S-transform
    of the sketch spectrum. In closed form, ``mu (1 - df(mu)/q) = alpha`` for a
    Gaussian sketch and ``mu (1 - df(mu)/q) = alpha (1 - df(mu)/p)`` for an
    orthogonal one (the smaller of the two: orthogonal sketches regularise less).
    ``alpha = 0`` (ridgeless) gives the ``mu`` with ``df(mu) = q``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Training data (NumPy or CuPy); only the spectrum of its Gram matrix is used.
    alpha : float or array-like of float >= 0
        Penalty of each sketched fit (scikit-learn ``Ridge`` meaning:
        ``||y - X S b||^2 + alpha ||b||^2``).
    sketch : {"gaussian", "orthogonal", "srdct", "srht"}, default="gaussian"
        Kind of feature sketch. "srdct" has the orthogonal spectrum (``S S^T`` is a
        scaled projection) and is treated as free, which holds approximately. "srht"
        is accepted only when ``n_features`` is a power of two, where it has the
        same spectrum: otherwise the Hadamard transform runs on zero-padded
        features, ``S S^T`` is no longer a scaled projection and the sketch is not
        free from the data, so neither closed form applies (measured: 3.7 % above
        the orthogonal formula at ``p = 150``) and a ``ValueError`` says to use
        "srdct" (same cost, any ``p``) or degrees-of-freedom matching. For other
        kinds (CountSketch, sampling) use the degrees of freedom of fitted members,
        ``RidgeEnsemble(...).equivalent_alpha_``.
    sketch_size : int or float, default=0.5
        ``q``: an int, or a float fraction of the features in (0, 1].
    fit_intercept : bool, default=True
        Centre the features first (as ``Ridge(fit_intercept=True)`` does).

    Returns
    -------
    mu : float or ndarray
        Same shape as ``alpha``; ``mu >= alpha``, ``mu = alpha`` for an orthogonal
        sketch of all ``n_features``.

    Raises
    ------
    ValueError
        For a kind without a closed-form spectrum, and for ``sketch="srht"`` when
        ``n_features`` is not a power of two (see ``sketch``).

    See Also
    --------
    RidgeEnsemble : with ``feature_sketch``, an ensemble of sketched ridge fits.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sketchlearn.ensemble import RidgeEnsemble, equivalent_ridge_penalty
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 200)); y = X @ rng.normal(size=200) / 14
    >>> y += rng.normal(size=400)
    >>> mu = equivalent_ridge_penalty(X, 50.0, "gaussian", 100)
    >>> round(mu, 1)
    401.6
    >>> ens = RidgeEnsemble(alpha=50.0, n_estimators=400, subsample_size=1.0,
    ...                     feature_sketch="gaussian", feature_sketch_size=100,
    ...                     random_state=0).fit(X, y)
    >>> ref = Ridge(alpha=mu).fit(X, y).coef_
    >>> bool(np.linalg.norm(ens.coef_ - ref) < 0.1 * np.linalg.norm(ref))
    True
    """
    if sketch not in FREE_SKETCHES:
        raise ValueError(f"sketch={sketch!r} has no closed-form spectrum here; choose one of "
                         f"{', '.join(FREE_SKETCHES)}, or fit RidgeEnsemble(feature_sketch="
                         f"{sketch!r}) and read its equivalent_alpha_ (degrees-of-freedom "
                         "matching, any sketch).")
    X = check_array(X, "X")
    n, p = X.shape
    if n < 1 or p < 1:
        raise ValueError(f"X must have at least one sample and one feature; got shape "
                         f"{tuple(X.shape)}.")
    if sketch == "srht" and p & (p - 1):
        pad = 1 << (p - 1).bit_length()
        raise ValueError(
            f"sketch='srht' with n_features={p} (not a power of two): the Hadamard "
            f"transform runs on the features zero-padded to {pad}, so S S^T is not a "
            "scaled projection and the sketch is not free from the data; the "
            "orthogonal formula underestimates the penalty (by 3.7 % at p=150, "
            "q=60 in Monte Carlo) and no closed form applies. Use sketch='srdct' "
            "(same O(p log p) cost, orthogonal spectrum for every p), 'orthogonal' or "
            "'gaussian'; or fit RidgeEnsemble(feature_sketch='srht') and read its "
            "equivalent_alpha_ (degrees-of-freedom matching on the fitted members).")
    q = resolve_size(sketch_size, p, "sketch_size", unit="features")
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"alpha must be finite and >= 0; got {alpha!r}.")
    if isinstance(fit_intercept, (bool, np.bool_)) is False:
        raise TypeError(f"fit_intercept must be a bool, got {fit_intercept!r}.")
    lam = gram_spectrum(X, fit_intercept)
    mu = np.array([_fixed_point(lam, float(v), sketch, q, p) for v in a.ravel()])
    if a.ndim == 0:
        return float(mu[0])
    return mu.reshape(a.shape)
