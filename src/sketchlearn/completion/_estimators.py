"""Matrix-completion estimators: AltMinCompleter, SoftImpute, SoftImputeCV, SVTCompleter."""

from __future__ import annotations

import numbers
import warnings

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._array_api import get_namespace, is_numpy_namespace, move_to, to_numpy
from .._random import as_generator
from .._validation import PROBABILITY
from ._core import (
    ALTMIN_PARAMS,
    SOFT_IMPUTE_PARAMS,
    SVT_PARAMS,
    _altmin,
    _soft_impute_als,
    _soft_impute_svd,
    _svt,
    check_rank,
    default_rank,
    lambda_max,
    resolve_altmin_solver,
    resolve_solver,
    solve_rows,
)
from ._observed import (
    Observed,
    as_observed,
    check_observed,
    dense_from_observed,
    is_sparse,
    is_triplets,
    make_observed,
)

__all__ = ["AltMinCompleter", "SoftImpute", "SoftImputeCV", "SVTCompleter"]

_DENSE_LIMIT = 2**31  # entries: refuse to return a larger dense completion

# The functions' own constraints cover duplicates and random_state.
_COMMON_CONSTRAINTS = {"denoise": ["boolean"]}


class _BaseCompleter(TransformerMixin, BaseEstimator):
    """Input handling, fold-in ``transform``, ``predict_entries`` and the factor
    attributes shared by the completion estimators. Subclasses implement
    ``_fit_observed(obs, rank, rng)`` returning ``(U, s, V, fold_in_ridge)``."""

    # ------------------------------------------------------------------ input

    def _observed(self, X, observed_mask, reset):
        """Parse ``X`` (dense with NaN, sparse, or triplets) into ``Observed``."""
        if is_triplets(X):
            obs = as_observed(X, observed_mask, duplicates=self.duplicates,
                              allow_empty=not reset)
            if reset:
                self.n_features_in_ = obs.shape[1]
            elif obs.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {obs.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input (pass the shape as the 4th "
                    "element of the triplet tuple when the last columns have no entry).")
            return obs, None
        xp_arr = array_api_compat.is_array_api_obj(X) and not is_numpy_namespace(
            get_namespace(X)) if not is_sparse(X) else False
        if xp_arr or (is_sparse(X) and type(X).__module__.startswith("cupyx")):
            # CuPy (or another array-API library): sklearn's validate_data is NumPy-only.
            if reset:
                self.n_features_in_ = int(X.shape[1]) if getattr(X, "ndim", 2) == 2 else 0
            obs = as_observed(X, observed_mask, duplicates=self.duplicates,
                              allow_empty=not reset)
            if not reset and obs.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {obs.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input.")
            return obs, None if is_sparse(X) else X
        X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                          dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        if is_sparse(X):
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            if observed_mask is None and not np.all(np.isfinite(X.data)):
                raise ValueError("X has NaN or infinity among its stored entries; the stored "
                                 "entries of a sparse X are the observed ones and must be "
                                 "finite.")
            return as_observed(X, observed_mask, duplicates=self.duplicates,
                              allow_empty=not reset), None
        if np.isinf(X).any():
            raise ValueError("X contains infinity; missing entries are NaN, observed entries "
                             "must be finite.")
        return as_observed(X, observed_mask, duplicates=self.duplicates,
                              allow_empty=not reset), X

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, observed_mask=None):
        """Fit the low-rank model to the observed entries of ``X``.

        Parameters
        ----------
        X : array of shape (n_rows, n_cols) with NaN, sparse matrix, or tuple
            A dense array with NaN at the missing entries; a ``scipy.sparse`` matrix
            whose stored entries (explicit zeros included) are the observed ones; or
            a tuple ``(rows, cols, values)`` / ``(rows, cols, values, shape)``. Dask
            input (a Dask array with NaN, a tuple of Dask arrays, or a Dask DataFrame
            of ``row``, ``col``, ``value`` triplets) is fitted on the workers
            (AltMinCompleter by blocked ALS; see the user guide's Dask page); the
            fitted attributes are NumPy.
        y : ignored
            Present for API consistency.
        observed_mask : array of bool or sparse matrix, optional
            Observed positions, overriding NaN (dense ``X``) or the sparsity
            pattern (sparse ``X``). Not with Dask input.

        Returns
        -------
        self
        """
        self._validate_params()
        if _is_dask_input(X):
            self._fit_dask(X, observed_mask)
            return self
        obs, _ = self._observed(X, observed_mask, reset=True)
        self._fit(obs)
        return self

    def _fit(self, obs: Observed):
        xp = obs.xp
        rng = as_generator(self.random_state)
        rank = self._rank(obs.shape)
        # The rank of Soft-Impute and SVT is a cap, not a model size: no
        # degrees-of-freedom warning for them.
        empty_r, empty_c = check_observed(obs, rank, name="X",
                                          warn_dof=isinstance(self, AltMinCompleter))
        U, s, V, ridge = self._fit_observed(obs, rank, rng)
        self._store(xp, U, s, V, ridge, empty_r, empty_c, obs.shape[0])
        return obs

    def _store(self, xp, U, s, V, ridge, empty_r, empty_c, n_rows):
        # All-missing rows (columns) get the average left (right) singular vector, so
        # they are predicted as the average row (column) of the fitted matrix.
        U = _fill_mean_rows(xp, U, empty_r)
        V = _fill_mean_rows(xp, V, empty_c)
        self.U_, self.singular_values_, self.V_ = U, s, V
        self.rank_ = int(s.shape[0])
        self.n_rows_ = n_rows
        root = xp.sqrt(s)
        self._B = V * root  # fold-in basis: a row x is modelled as a @ B.T
        self._mean_row = xp.mean(U * root, axis=0)
        self._fold_in_ridge = ridge

    # ------------------------------------------------------------------ Dask

    def _fit_dask(self, X, observed_mask):
        """Fit on Dask input (a NaN-marked Dask array, a Dask DataFrame or a tuple of
        Dask arrays of triplets): the entries are blocked once on the workers
        (:func:`._dask.blocked_entries`), the subclass's ``_fit_blocked`` computes the
        factors, and the fitted attributes are NumPy, as in memory."""
        from ._dask import blocked_entries

        ent = blocked_entries(X, observed_mask, duplicates=self.duplicates)
        self.n_features_in_ = ent.shape[1]
        rng = as_generator(self.random_state)
        rank = self._rank(ent.shape)
        empty_r, empty_c = check_observed(ent, rank, name="X",
                                          warn_dof=isinstance(self, AltMinCompleter))
        U, s, V, ridge = self._fit_blocked(X, ent, rank, rng)
        self._store(np, np.asarray(U), np.asarray(s), np.asarray(V), ridge, empty_r, empty_c,
                    ent.shape[0])
        return ent

    def _fit_blocked(self, X, ent, rank, rng):
        raise TypeError(f"{type(self).__name__} has no distributed version: X is a Dask "
                        "input. If the data fit in memory, pass computed arrays "
                        "(X.compute()); AltMinCompleter, SoftImpute and SVTCompleter accept "
                        "Dask input.")

    def _completed_dask(self, X, ent):
        from .._dask import is_dask_array
        from ._dask import completed_dense, completed_from_blocks

        if is_dask_array(X):
            return completed_dense(X, self.U_, self.singular_values_, self.V_, self.denoise)
        return completed_from_blocks(ent, self.U_, self.singular_values_, self.V_,
                                     self.denoise)

    def fit_transform(self, X, y=None, observed_mask=None):
        """Fit, then return ``X`` with its missing entries filled.

        Parameters
        ----------
        X, y, observed_mask
            As for :meth:`fit`.

        Returns
        -------
        X_filled : ndarray of shape (n_rows, n_cols)
            Dense, the dtype of ``X`` (float32 stays float32). Observed entries keep
            their values unless ``denoise=True``. For Dask input, a lazy Dask array
            (never computed here).
        """
        self._validate_params()
        if _is_dask_input(X):
            ent = self._fit_dask(X, observed_mask)
            return self._completed_dask(X, ent)
        obs, dense = self._observed(X, observed_mask, reset=True)
        self._fit(obs)
        xp = obs.xp
        _check_dense_size(obs.shape)
        Z = xp.matmul(self.U_ * self.singular_values_, xp.matrix_transpose(self.V_))
        return self._merge(obs, dense, Z)

    def _merge(self, obs, dense, Z):
        xp = obs.xp
        Z = xp.astype(Z, obs.dtype, copy=False)
        if self.denoise:
            return Z
        if dense is not None:
            dense = xp.astype(dense, obs.dtype, copy=False)
            return xp.where(xp.isnan(dense), Z, dense)
        return dense_from_observed(obs, Z)

    # ------------------------------------------------------------------ using the fit

    def _fold_in(self, obs: Observed):
        """Row factors of new rows: ridge least squares on each row's observed entries
        against the fitted basis (rows with no entry get the average row factor)."""
        xp = obs.xp
        B = xp.astype(move_to(self._B, xp), obs.dtype)
        A = solve_rows(xp, obs.indptr, obs.cols, obs.vals, B, self._fold_in_ridge)
        empty = obs.row_counts() == 0
        if empty.any():
            mean = xp.astype(move_to(self._mean_row, xp), obs.dtype)
            A = xp.where(move_to(empty, xp)[:, None], mean[None, :], A)
        return A, B

    def transform(self, X, observed_mask=None):
        """Fill the missing entries of the rows of ``X`` from the fitted model.

        Each row is folded in: its coefficients on the fitted right factors are the
        (ridge) least-squares fit to its observed entries, and the missing entries
        are read off the reconstruction. Rows are treated independently, so
        ``transform`` works on new rows as well as on the training matrix. With
        ``denoise=True`` it returns the whole low-rank reconstruction of the rows;
        :meth:`predict_entries` reads single entries of the fitted matrix.

        Parameters
        ----------
        X : array of shape (n_rows, n_cols) with NaN, sparse matrix, or tuple
            Same forms as in :meth:`fit`, with the fitted number of columns.
        observed_mask : array of bool or sparse matrix, optional
            Observed positions.

        Returns
        -------
        X_filled : ndarray of shape (n_rows, n_cols)
            Observed entries unchanged unless ``denoise=True``. A lazy Dask array for
            Dask input.
        """
        check_is_fitted(self, "U_")
        if _is_dask_input(X):
            if observed_mask is not None:
                raise ValueError("observed_mask is not supported with Dask input: mark the "
                                 "missing entries with NaN, or pass triplets.")
            from ._dask import transform_dask

            return transform_dask(X, to_numpy(self._B), self._fold_in_ridge,
                                  to_numpy(self._mean_row), self.denoise,
                                  self.n_features_in_, self.duplicates)
        obs, dense = self._observed(X, observed_mask, reset=False)
        _check_dense_size(obs.shape)
        A, B = self._fold_in(obs)
        return self._merge(obs, dense, obs.xp.matmul(A, obs.xp.matrix_transpose(B)))

    def predict_entries(self, rows, cols):
        """Entries of the fitted low-rank matrix at the positions ``(rows[k], cols[k])``.

        Reads ``sum_j U_[i, j] singular_values_[j] V_[c, j]`` for each pair, without
        forming the dense matrix, so it works at any size (``transform`` refuses a
        completion of more than ``2**31`` entries). Observed positions are read off the
        low-rank fit too (as with ``denoise=True``). To fill in a partly observed
        matrix, new rows included, use :meth:`transform`.

        Parameters
        ----------
        rows : array-like of int, shape (n_entries,)
            Row numbers, in ``[0, n_rows_)``, of the training matrix.
        cols : array-like of int, shape (n_entries,)
            Column numbers, in ``[0, n_features_in_)``, same length as ``rows``.

        Returns
        -------
        values : array of shape (n_entries,)
            The fitted values, in the namespace and dtype of the fitted factors; a
            lazy Dask array when ``rows`` or ``cols`` is one (indices out of range then
            raise when it is computed).

        Raises
        ------
        ValueError
            If ``rows`` and ``cols`` are not 1-D of one length, or an index is out of
            range (negative indices are not wrapped).
        TypeError
            If ``rows`` or ``cols`` is not an integer array.

        Examples
        --------
        >>> import numpy as np
        >>> from sketchlearn.completion import SVTCompleter
        >>> M = np.outer(np.arange(1.0, 7.0), np.arange(1.0, 5.0))  # rank 1
        >>> rows, cols = np.array([0, 2, 5]), np.array([1, 3, 0])
        >>> X = M.copy()
        >>> X[rows, cols] = np.nan
        >>> est = SVTCompleter(max_rank=2)
        >>> X_filled = est.fit_transform(X)
        >>> values = est.predict_entries(rows, cols)  # the entries filled in
        >>> values.shape
        (3,)
        >>> bool(np.allclose(values, X_filled[rows, cols]))
        True
        """
        check_is_fitted(self, "U_")
        if _is_dask_input(rows) or _is_dask_input(cols):
            from ._dask import predict_entries_dask

            return predict_entries_dask(rows, cols, to_numpy(self.U_ * self.singular_values_),
                                        to_numpy(self.V_), self.n_rows_, self.n_features_in_)
        xp = get_namespace(self.U_)
        r, c = (move_to(a if array_api_compat.is_array_api_obj(a) else np.asarray(a), xp)
                for a in (rows, cols))
        if r.ndim != 1 or c.ndim != 1 or r.shape[0] != c.shape[0]:
            raise ValueError(f"rows and cols must be 1-D arrays of one length (one entry per "
                             f"pair); got shapes {tuple(r.shape)} and {tuple(c.shape)}.")
        if r.shape[0] == 0:
            return xp.zeros(0, dtype=self.U_.dtype)
        if not (xp.isdtype(r.dtype, "integral") and xp.isdtype(c.dtype, "integral")):
            raise TypeError(f"rows and cols must be integer arrays; got dtypes {r.dtype} and "
                            f"{c.dtype}. Convert whole-number indices with .astype(int).")
        for idx, size, what in ((r, self.n_rows_, "rows"), (c, self.n_features_in_, "cols")):
            lo, hi = int(to_numpy(xp.min(idx))), int(to_numpy(xp.max(idx)))
            if lo < 0 or hi >= size:
                raise ValueError(f"{what} must lie in [0, {size - 1}] (the fitted matrix is "
                                 f"{self.n_rows_} x {self.n_features_in_}); got {lo} to {hi}.")
        Us = self.U_ * self.singular_values_
        return xp.sum(xp.take(Us, r, axis=0) * xp.take(self.V_, c, axis=0), axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _is_dask_input(X) -> bool:
    """A Dask array, Dask DataFrame or tuple of Dask arrays (no Dask import when Dask was
    never imported: then X cannot be one)."""
    import sys

    if "dask" not in sys.modules:
        return False
    from ._dask import is_dask_input

    return is_dask_input(X)


def _fill_mean_rows(xp, F, empty):
    if not empty.any() or empty.all():
        return F
    keep = move_to(~empty, xp)
    w = xp.astype(keep, F.dtype)[:, None]
    mean = xp.sum(F * w, axis=0) / float(keep.shape[0] - int(empty.sum()))
    return xp.where(keep[:, None], F, mean[None, :])


def _check_dense_size(shape):
    if shape[0] * shape[1] > _DENSE_LIMIT:
        raise ValueError(
            f"the completed matrix would have {shape[0]} x {shape[1]} dense entries; use "
            "predict_entries(rows, cols) for the entries you need, or the factors U_, "
            "singular_values_, V_.")


_FACTOR_ATTRS = """
    U_ : array of shape (n_rows, r)
        Left singular vectors of the fitted matrix, ``r = rank_`` (orthonormal
        columns, except that all-missing rows hold the average row).
    singular_values_ : array of shape (r,)
        Singular values of the fitted matrix, decreasing.
    V_ : array of shape (n_cols, r)
        Right singular vectors (rows for all-missing columns hold the average row).
    rank_ : int
        Rank of the fitted model.
    n_rows_ : int
        Number of rows of the fitted matrix.
    n_features_in_ : int
        Number of columns.
"""


class AltMinCompleter(_BaseCompleter):
    """Low-rank matrix completion by alternating minimization with fast row solves.

    Fits ``X ~ U V^T`` of rank ``rank`` to the observed entries ``Omega`` by
    minimising ``||P_Omega(X - U V^T)||_F^2 + alpha (||U||_F^2 + ||V||_F^2)``,
    alternately over the rows of ``U`` and of ``V``. Each row's restricted normal
    equations ``(V_i^T V_i + alpha I) u_i = V_i^T x_i`` (``V_i``: the rows of ``V`` at
    the observed columns of row ``i``) are solved in one of three ways (``solver``):

    * ``"cg"``: ``cg_iter`` steps of Jacobi-preconditioned conjugate
      gradients warm-started at the current factor, a fixed number of steps with no
      accuracy target: a fast heuristic, ``O(|Omega| rank cg_iter)`` per sweep, with
      no per-solve accuracy and no convergence guarantee of its own (a fixed point
      of exact ALS is one of it too, since CG starts there with a zero residual; the
      tests check exact recovery with it).
    * ``"exact"``: Cholesky of each row's ``rank x rank`` Gram matrix (classical
      alternating least squares), ``O(|Omega| rank^2 + (n_rows + n_cols) rank^3)``.
    * ``"sketch-cg"``: the robust alternating minimization of Gu, Song, Yin and
      Zhang (2023): each row's regression on the *orthonormalised* other factor is
      solved to the relative accuracy ``solve_tol`` by conjugate gradients
      preconditioned with ``R^T R = (S A_i)^T (S A_i)``, ``S`` a CountSketch of the
      row's ``|Omega_i|`` equations into ``4 rank`` (the identity for rows with fewer
      entries), so the number of steps depends on ``solve_tol`` and not on the
      conditioning of ``A_i``; each half-step ends with a thin QR of the new factor.
      ``O(|Omega| rank (1 + 2 steps) + (n_rows + n_cols) 2 rank^3)`` per sweep.

    The default, ``"auto"``, takes ``"exact"`` below rank 20 and ``"cg"`` from rank
    20 on, the faster of the two on either side (see the user guide).

    The start is an approximate top-``rank`` SVD (randomized range finder with two
    power iterations) of the rescaled observed matrix ``P_Omega(X) / p_hat`` whose
    left factor has its long rows shortened
    (``init_clip``; Jain, Netrapalli and Sanghavi (2013) and Gu et al. instead zero
    the large *entries*, at a threshold that needs the unknown incoherence; see the
    user guide). With ``"cg"`` and ``"exact"`` the factors are rebalanced after every
    sweep (same product, equal singular values on both sides). Numba kernels run the
    row solves in parallel on NumPy data, CUDA kernels on CuPy data (``"sketch-cg"``
    has no CUDA kernel and refuses CuPy data).

    Parameters
    ----------
    rank : int, optional
        Rank of the completion; default ``min(10, n_rows, n_cols)``. A rank larger
        than ``min(n_rows, n_cols)`` is an error.
    alpha : float, default=0.0
        Ridge weight on both factors (0: plain least squares). ``solver="sketch-cg"``
        needs 0 (the paper's regressions are unregularised).
    max_iter : int, default=100
        Maximum number of sweeps (one sweep updates U, then V).
    tol : float, default=1e-4
        Stop when the observed-entry RMSE changes by less than ``tol`` (relative) in a
        sweep, or falls below ``tol`` times the RMS of the observed values.
    solver : {"auto", "cg", "exact", "sketch-cg"}, default="auto"
        Row solves: ``"auto"`` is ``"exact"`` below rank 20, ``"cg"`` from 20 on;
        ``cg_iter`` warm-started CG steps (about ``2 rank (1 + cg_iter)``
        multiply-adds per observed entry and half-sweep), exactly by Cholesky (about
        ``rank^2 / 2``), or sketch-preconditioned CG to ``solve_tol`` (about ``2 rank``
        per CG step, plus ``2 rank^3`` per row for the preconditioner). In the
        benchmark (user guide) ``"exact"`` is the fastest at rank 10, ``"cg"`` from rank
        25 on; ``"sketch-cg"`` is the one with a per-solve accuracy guarantee.
    cg_iter : int, default=4
        CG steps per row and half-sweep for ``solver="cg"``.
    solve_tol : float in (0, 1), default=1e-6
        Relative accuracy of each row's solve for ``solver="sketch-cg"``: CG stops when
        the residual of the row's normal equations, in the preconditioner's norm
        ``|r|_{(R^T R)^-1}``, is at most ``solve_tol`` times that of the right-hand side
        ``A_i^T x_i``. The fitted values at the row's entries are then within ``kappa
        solve_tol`` (relative) of the exact least-squares fit, ``kappa`` the condition
        number of ``A_i R^-1`` (about 3). The attainable accuracy of
        the completion is about this level: pass a smaller value (1e-12) to recover a
        noiseless low-rank matrix to 1e-8. A ``ConvergenceWarning`` reports rows that
        stop short (after ``2 rank + 20`` steps, or on a singular system).
    init_clip : float or None, default=2.0
        Rows of the initial left factor longer than ``init_clip * sqrt(rank /
        n_rows)`` (``sqrt(rank / n_rows)`` is their RMS length) are shortened to that
        length before it is re-orthonormalised; None disables the clipping.
    denoise : bool, default=False
        ``transform`` and ``fit_transform`` replace the observed entries too, by
        their low-rank fit.
    duplicates : {"raise", "mean"}, default="raise"
        Repeated ``(row, col)`` pairs in triplet or COO input: refuse, or average.
    random_state : int, RandomState, Generator or None
        Seed of the Gaussian test matrix of the start's range finder, and of the
        sketches of ``solver="sketch-cg"`` (one fresh CountSketch per half-step).
    verbose : int, default=0
        Progress bar over sweeps when > 0, the residual of each sweep when > 1 (and,
        for ``"sketch-cg"``, the CG steps per row).

    Attributes
    ----------
    %(attrs)s
    n_iter_ : int
        Sweeps run.
    residual_ : float
        Root mean square error on the observed entries.
    solver_ : str
        The solver used (``"auto"`` resolved).

    Raises
    ------
    NotImplementedError
        ``solver="sketch-cg"`` with CuPy data.

    See Also
    --------
    SoftImpute : convex (nuclear-norm) completion, no rank to choose.
    SVTCompleter : one-shot spectral estimate.

    References
    ----------
    Jain, Netrapalli and Sanghavi, "Low-rank matrix completion using alternating
    minimization", STOC 2013. Gu, Song, Yin and Zhang, "Low rank matrix completion
    via robust alternating minimization in nearly linear time", ICLR 2024
    (arXiv:2302.11068).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import AltMinCompleter
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(100, 3)) @ rng.normal(size=(3, 80))
    >>> X = np.where(rng.random(M.shape) < 0.4, M, np.nan)
    >>> est = AltMinCompleter(rank=3, tol=1e-10, max_iter=300, random_state=0)
    >>> X_filled = est.fit_transform(X)
    >>> bool(np.abs(X_filled - M).max() < 1e-6)
    True
    >>> est.predict_entries([0, 1], [5, 7]).shape
    (2,)
    >>> robust = AltMinCompleter(rank=3, solver="sketch-cg", solve_tol=1e-12, tol=1e-10,
    ...                          max_iter=300, random_state=0)
    >>> bool(np.abs(robust.fit_transform(X) - M).max() < 1e-6)
    True
    """

    _parameter_constraints: dict = {**ALTMIN_PARAMS, **_COMMON_CONSTRAINTS}

    def __init__(self, rank=None, *, alpha=0.0, max_iter=100, tol=1e-4, solver="auto",
                 cg_iter=4, solve_tol=1e-6, init_clip=2.0, denoise=False, duplicates="raise",
                 random_state=None, verbose=0):
        self.rank = rank
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.cg_iter = cg_iter
        self.solve_tol = solve_tol
        self.init_clip = init_clip
        self.denoise = denoise
        self.duplicates = duplicates
        self.random_state = random_state
        self.verbose = verbose

    def _rank(self, shape):
        return check_rank(self.rank, shape)

    def _fit_observed(self, obs, rank, rng):
        U, s, V, n_iter, res = _altmin(
            obs, rank, alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
            solver=self.solver, cg_iter=self.cg_iter, init_clip=self.init_clip, rng=rng,
            verbose=self.verbose, solve_tol=self.solve_tol)
        self.n_iter_ = n_iter
        self.residual_ = res
        self.solver_ = resolve_altmin_solver(self.solver, rank)
        ridge = self.alpha if self.alpha > 0 else _tiny_ridge(obs.xp, s)
        return U, s, V, ridge

    def _fit_blocked(self, X, ent, rank, rng):
        from ._dask import altmin_fit

        U, s, V, n_iter, res = altmin_fit(
            ent, rank, alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
            solver=self.solver, cg_iter=self.cg_iter, init_clip=self.init_clip, rng=rng,
            verbose=self.verbose, solve_tol=self.solve_tol)
        self.n_iter_ = n_iter
        self.residual_ = res
        self.solver_ = resolve_altmin_solver(self.solver, rank)
        ridge = self.alpha if self.alpha > 0 else _tiny_ridge(np, s)
        return U, s, V, ridge


def _tiny_ridge(xp, s):
    top = float(s[0]) if s.shape[0] else 1.0
    eps = 1e-10 if s.dtype == xp.float64 else 1e-5
    return eps * max(top, 1e-300)


class SoftImpute(_BaseCompleter):
    """Nuclear-norm regularised matrix completion (Soft-Impute, softImpute-ALS).

    Solves ``min_Z 0.5 ||P_Omega(X - Z)||_F^2 + shrinkage ||Z||_*`` with
    ``rank(Z) <= max_rank`` (Mazumder, Hastie and Tibshirani, 2010). Two solvers:

    * ``"als"``: softImpute-ALS (Hastie, Mazumder, Lee and Zadeh, 2015), which
      keeps ``Z = A B^T`` and works on the filled matrix in its sparse-plus-low-rank
      form ``P_Omega(X - A B^T) + A B^T``, never densified: a sweep costs
      ``O(|Omega| r + (n_rows + n_cols) r^2)`` with ``r = max_rank``. It reaches the
      same solution as the SVD solver whenever that has rank below ``max_rank``.
    * ``"svd"``: the original Soft-Impute, a full dense SVD of the filled matrix
      per step, soft-thresholded: exact, for small matrices.

    Parameters
    ----------
    shrinkage : float, optional
        Nuclear-norm weight ``lambda``; default ``sigma_max(P_Omega(X)) / 50``
        (fancyimpute's default). At ``sigma_max(P_Omega(X))`` or above the solution
        is 0.
    max_rank : int, optional
        Working rank ``r``; default ``min(n_rows, n_cols, 100)``.
    solver : {"auto", "als", "svd"}, default="auto"
        "auto" uses "svd" up to 20,000 entries (``n_rows * n_cols``) and "als" above.
    max_iter : int, default=100
        Maximum number of sweeps.
    tol : float, default=1e-6
        Stop when the relative change of ``Z`` in squared Frobenius norm is below.
    denoise, duplicates, random_state, verbose
        As for :class:`AltMinCompleter` (``random_state`` seeds the starting factor).

    Attributes
    ----------
    %(attrs)s
    shrinkage_ : float
        The shrinkage used.
    solver_ : str
        The solver used.
    n_iter_ : int
        Sweeps run.

    See Also
    --------
    SoftImputeCV : chooses ``shrinkage`` on held-out entries.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import SoftImpute
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(100, 3)) @ rng.normal(size=(3, 80))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> est = SoftImpute(shrinkage=1.0, max_rank=10, random_state=0)
    >>> X_filled = est.fit_transform(X)
    >>> rel = np.linalg.norm(X_filled - M) / np.linalg.norm(M)
    >>> bool(rel < 0.05), est.rank_ <= 10
    (True, True)
    """

    _parameter_constraints: dict = {**SOFT_IMPUTE_PARAMS, **_COMMON_CONSTRAINTS}

    def __init__(self, shrinkage=None, max_rank=None, *, solver="auto", max_iter=100,
                 tol=1e-6, denoise=False, duplicates="raise", random_state=None, verbose=0):
        self.shrinkage = shrinkage
        self.max_rank = max_rank
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.denoise = denoise
        self.duplicates = duplicates
        self.random_state = random_state
        self.verbose = verbose

    def _rank(self, shape):
        r = self.max_rank if self.max_rank is not None else default_rank(shape, 100)
        return check_rank(r, shape, "max_rank")

    def _fit_observed(self, obs, rank, rng):
        lam = lambda_max(obs, rng) / 50.0 if self.shrinkage is None else float(self.shrinkage)
        solver = resolve_solver(self.solver, obs.shape)
        if solver == "svd":
            U, s, V, n_iter, _ = _soft_impute_svd(obs, lam, rank, max_iter=self.max_iter,
                                                  tol=self.tol, verbose=self.verbose)
        else:
            U, s, V, n_iter, _ = _soft_impute_als(obs, lam, rank, max_iter=self.max_iter,
                                                  tol=self.tol, rng=rng, verbose=self.verbose)
        U, s, V = _trim(obs.xp, U, s, V)
        self.shrinkage_, self.solver_, self.n_iter_ = lam, solver, n_iter
        return U, s, V, _fold_ridge(obs.xp, lam, s)

    def _fit_blocked(self, X, ent, rank, rng):
        # The functional twin on Dask (soft_impute's distributed version), with the
        # default shrinkage drawn from rng first, as in memory, so the two agree.
        from ._core import soft_impute
        from ._dask import as_dask_triplets, lambda_max_blocked

        lam = (lambda_max_blocked(ent, rng) / 50.0 if self.shrinkage is None
               else float(self.shrinkage))
        U, s, V = soft_impute(as_dask_triplets(X, ent.shape), shrinkage=lam, max_rank=rank,
                              solver=self.solver, max_iter=self.max_iter, tol=self.tol,
                              duplicates=self.duplicates, random_state=rng,
                              verbose=self.verbose)
        U, s, V = _trim(np, np.asarray(U), np.asarray(s), np.asarray(V))
        self.shrinkage_ = lam
        self.solver_ = resolve_solver(self.solver, ent.shape)
        return U, s, V, _fold_ridge(np, lam, s)


def _fold_ridge(xp, lam, s):
    # With A = U sqrt(s'), B = V sqrt(s'), the ALS stationarity condition of row i is
    # (B_i^T B_i + lam I) a_i = B_i^T x_i: fold-in with the same ridge.
    return lam if lam > 0 else _tiny_ridge(xp, s)


def _trim(xp, U, s, V):
    """Drop the zero singular values (keep at least one component)."""
    keep = max(1, int(to_numpy(xp.sum(xp.astype(s > 0, xp.int32)))))
    return U[:, :keep], s[:keep], V[:, :keep]


class SoftImputeCV(_BaseCompleter):
    """Soft-Impute with the shrinkage chosen on held-out observed entries.

    Holds out a random ``validation_fraction`` of the observed entries, computes
    the Soft-Impute solutions along a decreasing grid of shrinkage values, each
    warm-started from the previous one (the regularisation path), scores each by
    the RMSE on the held-out entries, and refits on all observed entries at the
    best shrinkage, warm-started from its path solution.

    Parameters
    ----------
    shrinkages : int or array-like, default=10
        The grid: an int ``q`` gives ``q`` values ``lambda_max 10^(-3 j / q)``,
        ``j = 1..q`` (``lambda_max = sigma_max(P_Omega(X_train))``); an array gives
        them directly (sorted decreasing).
    max_rank : int, optional
        Working rank; default ``min(n_rows, n_cols, 100)``.
    validation_fraction : float in (0, 1), default=0.1
        Fraction of the observed entries held out.
    solver, max_iter, tol, denoise, duplicates, random_state, verbose
        As for :class:`SoftImpute` (``random_state`` also draws the held-out set).

    Attributes
    ----------
    %(attrs)s
    shrinkages_ : ndarray of shape (n_shrinkages,)
        The grid, decreasing.
    validation_rmse_ : ndarray of shape (n_shrinkages,)
        Held-out RMSE along the grid.
    best_shrinkage_ : float
        The chosen shrinkage (also ``shrinkage_``).
    solver_ : str
        The solver used.
    n_iter_ : int
        Sweeps of the final refit.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import SoftImputeCV
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(100, 3)) @ rng.normal(size=(3, 80))
    >>> X = np.where(rng.random(M.shape) < 0.5, M + 0.1 * rng.normal(size=M.shape), np.nan)
    >>> est = SoftImputeCV(shrinkages=8, max_rank=10, random_state=0).fit(X)
    >>> est.validation_rmse_.shape
    (8,)
    >>> bool(est.validation_rmse_.min() < 0.3)
    True
    """

    _parameter_constraints: dict = {
        "shrinkages": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "validation_fraction": PROBABILITY,
        **{name: SOFT_IMPUTE_PARAMS[name]
           for name in ("max_rank", "solver", "max_iter", "tol", "verbose", "duplicates",
                        "random_state")},
        **_COMMON_CONSTRAINTS,
    }

    def __init__(self, shrinkages=10, max_rank=None, *, validation_fraction=0.1,
                 solver="auto", max_iter=100, tol=1e-6, denoise=False, duplicates="raise",
                 random_state=None, verbose=0):
        self.shrinkages = shrinkages
        self.max_rank = max_rank
        self.validation_fraction = validation_fraction
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.denoise = denoise
        self.duplicates = duplicates
        self.random_state = random_state
        self.verbose = verbose

    _rank = SoftImpute._rank

    def _fit_observed(self, obs, rank, rng):
        xp = obs.xp
        if obs.nnz < 2:
            raise ValueError("SoftImputeCV needs at least 2 observed entries (one to fit, one "
                             "to validate).")
        n_val = min(obs.nnz - 1, max(1, int(round(self.validation_fraction * obs.nnz))))
        perm = rng.permutation(obs.nnz)
        val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        take = lambda a, idx: xp.take(a, move_to(idx, xp), axis=0)  # noqa: E731
        train = make_observed(take(obs.rows, tr_idx), take(obs.cols, tr_idx),
                              take(obs.vals, tr_idx), obs.shape)
        vr, vc, vv = take(obs.rows, val_idx), take(obs.cols, val_idx), take(obs.vals, val_idx)
        if isinstance(self.shrinkages, numbers.Integral):
            lam_max = lambda_max(train, rng)
            q = int(self.shrinkages)
            grid = lam_max * 10.0 ** (-3.0 * np.arange(1, q + 1) / q)
        else:
            grid = np.sort(np.asarray(self.shrinkages, dtype=float).ravel())[::-1]
            if grid.size == 0 or np.any(grid < 0) or not np.all(np.isfinite(grid)):
                raise ValueError("shrinkages must be non-negative finite numbers (at least "
                                 "one).")
        solver = resolve_solver(self.solver, obs.shape)
        scores = np.empty(grid.size)
        state = None
        best, best_state = None, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for g, lam in enumerate(grid):
                if solver == "svd":
                    U, s, V, _, state = _soft_impute_svd(train, lam, rank, max_iter=self.max_iter,
                                                         tol=self.tol, init=state)
                else:
                    U, s, V, _, state = _soft_impute_als(train, lam, rank, max_iter=self.max_iter,
                                                         tol=self.tol, rng=rng, init=state)
                pred = xp.sum(xp.take(U * s, vr, axis=0) * xp.take(V, vc, axis=0), axis=1)
                scores[g] = float(xp.sqrt(xp.mean((pred - vv) ** 2)))
                if best is None or scores[g] < scores[best]:
                    best, best_state = g, state
        lam = float(grid[best])
        if solver == "svd":
            U, s, V, n_iter, _ = _soft_impute_svd(obs, lam, rank, max_iter=self.max_iter,
                                                  tol=self.tol, init=best_state)
        else:
            U, s, V, n_iter, _ = _soft_impute_als(obs, lam, rank, max_iter=self.max_iter,
                                                  tol=self.tol, rng=rng, init=best_state)
        U, s, V = _trim(xp, U, s, V)
        self.shrinkages_ = grid
        self.validation_rmse_ = scores
        self.best_shrinkage_ = self.shrinkage_ = lam
        self.solver_, self.n_iter_ = solver, n_iter
        return U, s, V, _fold_ridge(xp, lam, s)


class SVTCompleter(_BaseCompleter):
    """One-shot singular value thresholding of the rescaled observed matrix.

    Computes the top singular triplets of ``Y = P_Omega(X) / p_hat`` (``p_hat`` the
    observed fraction, so that ``E Y = X`` under uniform sampling) and keeps those
    above a threshold (hard thresholding, as in USVT, Chatterjee 2015) or shrinks
    them by it (soft). One sparse truncated SVD, no iterations: the fastest and
    least accurate of the estimators, used as pre-processing (for example before
    fitting individually fair models) and as the start of AltMin.

    The default threshold is data driven: ``sqrt(max_i v_i) + sqrt(max_j w_j)``,
    about the largest the spectral norm of the sampling noise ``Y - E Y`` can be
    (Bandeira and van Handel, 2016), where ``v_i = (1/p_hat - 1) / p_hat
    sum_{j in Omega_i} x_ij^2`` estimates the total variance of row ``i`` of ``Y``
    and ``w_j`` that of column ``j``.

    Parameters
    ----------
    threshold : float or "auto", default="auto"
        Threshold on the singular values of ``Y``.
    thresholding : {"hard", "soft"}, default="hard"
        Keep the singular values above the threshold, or subtract it from them.
    max_rank : int, optional
        Number of singular triplets computed; default ``min(n_rows, n_cols, 100)``.
    denoise, duplicates, random_state
        As for :class:`AltMinCompleter`.

    Attributes
    ----------
    %(attrs)s
    threshold_ : float
        The threshold used.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.completion import SVTCompleter
    >>> rng = np.random.default_rng(0)
    >>> M = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 300))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> est = SVTCompleter(random_state=0).fit(X)
    >>> est.rank_
    2
    """

    _parameter_constraints: dict = {**SVT_PARAMS, **_COMMON_CONSTRAINTS}

    def __init__(self, threshold="auto", *, thresholding="hard", max_rank=None, denoise=False,
                 duplicates="raise", random_state=None):
        self.threshold = threshold
        self.thresholding = thresholding
        self.max_rank = max_rank
        self.denoise = denoise
        self.duplicates = duplicates
        self.random_state = random_state

    _rank = SoftImpute._rank

    def _fit_observed(self, obs, rank, rng):
        U, s, V, tau = _svt(obs, threshold=self.threshold, thresholding=self.thresholding,
                            max_rank=rank, rng=rng)
        self.threshold_ = tau
        return U, s, V, _tiny_ridge(obs.xp, s)

    def _fit_blocked(self, X, ent, rank, rng):
        # The functional twin on Dask (svt_complete's distributed version), with the
        # data-driven threshold computed from the blocked entries.
        from ._core import svt_complete
        from ._dask import as_dask_triplets, svt_threshold_blocked

        tau = (svt_threshold_blocked(ent) if self.threshold == "auto"
               else float(self.threshold))
        U, s, V = svt_complete(as_dask_triplets(X, ent.shape), threshold=tau,
                               thresholding=self.thresholding, max_rank=rank,
                               duplicates=self.duplicates, random_state=rng)
        self.threshold_ = tau
        s = np.asarray(s)
        return np.asarray(U), s, np.asarray(V), _tiny_ridge(np, s)


for _cls in (AltMinCompleter, SoftImpute, SoftImputeCV, SVTCompleter):
    _cls.__doc__ = _cls.__doc__.replace("%(attrs)s", _FACTOR_ATTRS.strip("\n").lstrip())

del _cls
