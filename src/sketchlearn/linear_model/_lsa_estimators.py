"""Linear stochastic approximation estimators: the generic solver, streaming least
squares and TD(0) policy evaluation (over :mod:`._lsa`)."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted

from .._array_api import get_namespace, move_to, to_compute_device, to_numpy
from .._dask import is_dask_array
from .._random import as_generator
from .._validation import (
    COUNT,
    PROBABILITY,
    STEPS,
    LinearPredictorMixin,
    check_array,
    validate_estimator_data,
)
from ._lsa import (
    LSA_PARAMS,
    ChainState,
    Samples,
    advance,
    auto_step,
    check_lsa_samples,
    estimate,
    gpu_work,
    run_bootstrap,
    stream_index,
)

__all__ = ["LinearStochasticApproximation", "LSARegressor", "TD0Evaluator"]


_COMMON_DOC = """step : float > 0 or "auto", default="auto"
        Constant step size. ``"auto"`` takes ``1 / (2 max_n ||A_n||_F)`` over the
        first batch fitted (for least squares ``1 / (2 max ||x_n||^2)``, which keeps
        every update non-expansive for both ``step`` and the ``2 * step`` of
        Richardson-Romberg). The mean recursion is stable for
        ``step < 2 Re(lambda) / |lambda|^2`` over the eigenvalues of the mean
        ``A``; a larger step warns (:class:`StepSizeWarning`) and divergence
        raises a ``FloatingPointError``, never returns NaN.
    average : bool, default=True
        Report the Polyak-Ruppert average of the iterates after ``burn_in``
        (else the last iterate). Averaging removes the O(sqrt(step)) fluctuation.
    burn_in : int >= 0, default=0
        Number of first iterates (over all updates, across ``partial_fit``
        calls) left out of the average. ``burn_in=k`` equals scikit-learn's
        ``SGDRegressor(average=k + 1)``.
    richardson : bool, default=False
        Richardson-Romberg extrapolation: run a second chain with ``2 * step`` on
        the same samples and report ``2 * est(step) - est(2 * step)``, which
        cancels the O(step) bias of constant-step LSA under Markov noise.
    n_epochs : int >= 1, default=1
        Passes over the samples in ``fit`` (``partial_fit`` makes one pass).
    shuffle : bool, default=False
        Reshuffle the samples before each pass of ``fit`` (``partial_fit`` keeps
        the given order). Leave off for Markov data read as a stream.
    n_bootstrap : int >= 0, default=0
        Number of bootstrap chains ``fit`` also runs, each on a moving-block
        resample of the samples (all chains in one batched kernel call: Numba
        threads or one GPU thread per chain); their estimates give
        ``conf_int``. Not updated by ``partial_fit``.
    block_length : int >= 1, default=1
        Block length of the bootstrap resamples; 1 is the iid bootstrap, use
        longer blocks (e.g. ``n ** (1/3)``) for Markov samples.
    random_state : int, RandomState, Generator or None, default=None
        Seed for ``shuffle`` and the bootstrap."""


def _common_constraints():
    """linear_stochastic_approximation's constraints and the bootstrap's."""
    return {**LSA_PARAMS, "n_bootstrap": STEPS, "block_length": COUNT}


class _BaseLSA(BaseEstimator):
    """Chain state, fitting and bootstrap shared by the LSA estimators."""

    def _stream_dask(self, X, y, X_next=None, *, restart: bool):
        """Fit on Dask arrays: ``partial_fit`` over their row chunks in order, one chunk
        in memory at a time (``n_epochs`` passes when ``restart``, as ``fit``; one pass
        otherwise). Stochastic approximation is sequential: the chunks are visited one
        after the other, not in parallel."""
        import dask

        from .._dask import is_dask_array, row_chunked

        if self.shuffle and restart:
            raise TypeError("shuffle=True needs every row at once; a Dask array is streamed "
                            "in order, one chunk at a time: set shuffle=False (shuffle the "
                            "rows beforehand if the stream order is not random).")
        if self.n_bootstrap and restart:
            raise TypeError("n_bootstrap > 0 runs bootstrap chains over the whole stream in "
                            "memory; on a Dask array set n_bootstrap=0, or fit the computed "
                            "arrays if they fit in memory.")
        if X_next is not None:
            if X_next.shape != X.shape:
                raise ValueError(f"X_next has shape {tuple(X_next.shape)} but X has "
                                 f"{tuple(X.shape)}.")
            if is_dask_array(X_next):
                X_next = row_chunked(X_next, "X_next").rechunk(X.chunks)
            else:  # a NumPy X_next is cut into X's row chunks, as y is
                import dask.array as da

                X_next = da.from_array(np.asarray(X_next), chunks=X.chunks)
        if restart:
            for name in ("_lsa_state", "_pending", "bootstrap_coef_", "bootstrap_intercept_"):
                if hasattr(self, name):
                    delattr(self, name)
        for _ in range(self.n_epochs if restart else 1):
            if isinstance(self, TD0Evaluator):
                self._pending = None  # each pass is the trajectory again: no wrap-around
            for i in range(X.numblocks[0]):
                parts = (X.blocks[i], y.blocks[i]) + (() if X_next is None
                                                      else (X_next.blocks[i],))
                self.partial_fit(*dask.compute(*parts))
        return self

    def _run(self, samples: Samples, theta0, *, reset: bool, n_epochs: int, shuffle: bool):
        """Advance (or restart) the chains on ``samples``; return the estimate.

        ``theta0`` is the starting point (float64) used when ``reset``. Sets
        ``step_``, ``stability_bound_``, ``n_updates_`` and, in ``fit`` with
        ``n_bootstrap > 0``, ``bootstrap_estimates``; returns
        ``(estimate, bootstrap or None, restore)``.
        """
        n = samples.n_samples
        chains = (2 if self.richardson else 1) * (1 + (self.n_bootstrap if reset else 0))
        arrays, xp, restore = to_compute_device(
            *samples.arrays, work=gpu_work(n, n_epochs, samples.n_features, chains))
        samples = Samples(samples.kind, arrays)
        richardson = bool(self.richardson)
        rng = as_generator(self.random_state) if reset else getattr(self, "_rng", None)
        if rng is None:
            rng = as_generator(self.random_state)
        self._rng = rng
        if reset or not hasattr(self, "_lsa_state"):
            step = auto_step(samples) if self.step == "auto" else float(self.step)
            state = ChainState.start(move_to(theta0, xp), 2 if richardson else 1, xp)
        else:
            step = self.step_
            state = self._lsa_state
            if state.theta.shape[0] != (2 if richardson else 1):
                raise ValueError("richardson was changed since the first partial_fit; call fit "
                                 "to start again.")
            state.theta, state.avg = move_to(state.theta, xp), move_to(state.avg, xp)
        index = stream_index(n, n_epochs, shuffle, rng)
        state, bound = advance(samples, index, state, step, richardson, self.burn_in)
        boot = None
        if reset and self.n_bootstrap > 0 and n > 0:
            boot = run_bootstrap(samples, index, move_to(theta0, xp), step, richardson,
                                 self.burn_in, bool(self.average), self.n_bootstrap,
                                 self.block_length, rng)
        self._lsa_state = state
        self.step_ = step
        self.stability_bound_ = bound
        self.n_updates_ = state.t
        est = estimate(state, bool(self.average), self.burn_in, richardson, xp)
        dtype = samples.dtype

        def cast(a):
            return restore(xp.astype(a, dtype))

        self._last_iterate = cast(state.theta[0, :])
        return cast(est), (None if boot is None else cast(boot))

    def _interval(self, boot, alpha):
        if boot is None:
            raise ValueError("conf_int needs bootstrap chains: set n_bootstrap (e.g. 200) and "
                             "call fit (partial_fit does not run them).")
        xp = get_namespace(boot)
        lo_hi = np.quantile(to_numpy(boot).astype(np.float64), [alpha / 2, 1 - alpha / 2],
                            axis=0).T
        return move_to(lo_hi.astype(to_numpy(boot).dtype), xp)


class LinearStochasticApproximation(_BaseLSA):
    """Solve ``A theta = b`` from noisy samples ``(A_n, b_n)`` by stochastic approximation.

    Linear stochastic approximation (LSA) with a constant step runs

    ``theta_n = theta_{n-1} - step * (A_n theta_{n-1} - b_n)``

    over a stream of samples whose means are ``A`` and ``b`` (independent or
    Markov), and reports the Polyak-Ruppert average of the iterates after a
    burn-in, optionally Richardson-Romberg extrapolated. For least squares and
    TD(0), where ``A_n`` has rank one, use :class:`LSARegressor` and
    :class:`TD0Evaluator` (O(p) per sample instead of O(p^2)).

    The input is three-dimensional (a stack of matrices), so scikit-learn's
    generic estimator checks, which feed 2-D data, do not apply (the tag
    ``two_d_array`` is False).

    Parameters
    ----------
    {common}
    theta0 : array-like of shape (p,), default=None
        Starting point; zeros when None.

    Attributes
    ----------
    theta_ : ndarray of shape (p,)
        The estimate (average or last iterate, extrapolated with ``richardson``),
        in the dtype of the samples.
    theta_last_ : ndarray of shape (p,)
        Last iterate of the ``step`` chain.
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step ``min 2 Re(lambda) / |lambda|^2`` of the mean ``A``
        estimated from the samples seen (NaN when ``p > 1000``).
    n_updates_ : int
        Number of updates done (samples times passes).
    bootstrap_theta_ : ndarray of shape (n_bootstrap, p)
        Estimates of the bootstrap chains (when ``n_bootstrap > 0``).
    n_features_in_ : int
        Dimension ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import (
    ...     LinearStochasticApproximation)
    >>> rng = np.random.default_rng(0)
    >>> A = np.diag([1.0, 2.0]) + 0.2 * rng.normal(size=(4000, 2, 2))
    >>> b = np.array([1.0, 1.0]) + 0.2 * rng.normal(size=(4000, 2))
    >>> lsa = LinearStochasticApproximation(step=0.05).fit(A, b)
    >>> np.round(lsa.theta_, 1)
    array([1. , 0.5])
    """

    _parameter_constraints: dict = {**_common_constraints(), "theta0": ["array-like", None]}

    def __init__(self, step="auto", *, average=True, burn_in=0, richardson=False, n_epochs=1,
                 shuffle=False, n_bootstrap=0, block_length=1, theta0=None,
                 random_state=None):
        self.step = step
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.theta0 = theta0
        self.random_state = random_state

    def _samples(self, A, b, reset):
        A, b = check_lsa_samples(A, b)
        p = A.shape[1]
        if reset:
            self.n_features_in_ = p
        elif p != self.n_features_in_:
            raise ValueError(f"A has dimension p={p}, but {type(self).__name__} was fitted "
                             f"with p={self.n_features_in_}.")
        return Samples.dense(A, b)

    def _theta0(self, samples):
        xp = samples.xp
        p = samples.n_features
        if self.theta0 is None:
            return xp.zeros(p, dtype=xp.float64)
        theta0 = check_array(self.theta0, "theta0", ensure_2d=False)
        if theta0.shape[0] != p:
            raise ValueError(f"theta0 has length {theta0.shape[0]} but the samples have "
                             f"dimension p={p}.")
        return xp.astype(move_to(theta0, xp), xp.float64)

    def fit(self, A, b):
        """Run LSA over the samples (``n_epochs`` passes), starting from ``theta0``.

        Parameters
        ----------
        A : array of shape (n, p, p)
            Samples ``A_n`` in stream order (NumPy or CuPy).
        b : array of shape (n, p)
            Samples ``b_n``.

        Returns
        -------
        self : LinearStochasticApproximation
        """
        self._validate_params()
        samples = self._samples(A, b, reset=True)
        self.theta_, boot = self._run(samples, self._theta0(samples), reset=True,
                                      n_epochs=self.n_epochs, shuffle=self.shuffle)
        self.theta_last_ = self._last_iterate
        if boot is not None:
            self.bootstrap_theta_ = boot
        elif hasattr(self, "bootstrap_theta_"):
            del self.bootstrap_theta_
        return self

    def partial_fit(self, A, b):
        """Continue LSA over one more batch of the stream (one pass, in order).

        Fitting a stream in batches gives exactly the result of one ``fit`` on the
        whole stream (with a numeric ``step``; ``step="auto"`` is set from the
        first batch).

        Parameters
        ----------
        A : array of shape (n, p, p)
            Next samples ``A_n``.
        b : array of shape (n, p)
            Next samples ``b_n``.

        Returns
        -------
        self : LinearStochasticApproximation
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        samples = self._samples(A, b, reset=first)
        self.theta_, _ = self._run(samples, self._theta0(samples), reset=first, n_epochs=1,
                                   shuffle=False)
        self.theta_last_ = self._last_iterate
        return self

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals for ``theta_``.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (p, 2)
            Lower and upper ends per coordinate.
        """
        check_is_fitted(self, "theta_")
        return self._interval(getattr(self, "bootstrap_theta_", None), alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        return tags


LinearStochasticApproximation.__doc__ = LinearStochasticApproximation.__doc__.replace(
    "{common}", _COMMON_DOC)


class LSARegressor(LinearPredictorMixin, RegressorMixin, _BaseLSA):
    """Streaming least squares by linear stochastic approximation.

    LSA with ``A_n = x_n x_n^T`` and ``b_n = y_n x_n``, which is constant-step
    stochastic gradient descent on the squared error, with Polyak-Ruppert
    averaging, a burn-in and optional Richardson-Romberg extrapolation. Each
    update costs O(p) (the ``p x p`` matrices are never formed). With
    ``richardson=False`` and a numeric ``step`` it equals scikit-learn's
    ``SGDRegressor(loss="squared_error", penalty=None, learning_rate="constant",
    eta0=step, average=burn_in + 1, shuffle=False, tol=None)`` on the same data,
    intercept included (the intercept is the coefficient of a constant feature,
    updated with the same step, as in scikit-learn).

    Parameters
    ----------
    {common}
    fit_intercept : bool, default=True
        Fit an intercept (a constant feature appended to ``X``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step ``2 / lambda_max(mean x x^T)`` estimated from the data.
    n_updates_ : int
        Number of updates done.
    bootstrap_coef_ : ndarray of shape (n_bootstrap, n_features)
        Coefficients of the bootstrap chains (when ``n_bootstrap > 0``).
    bootstrap_intercept_ : ndarray of shape (n_bootstrap,)
        Their intercepts.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (when X has string column names).

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.linear_model import LSARegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5000, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.1 * rng.normal(size=5000)
    >>> reg = LSARegressor(step=0.01, burn_in=500).fit(X, y)
    >>> np.round(reg.coef_, 1), round(float(reg.intercept_), 1)
    (array([ 1. , -2. ,  0.5]), 3.0)
    """

    _parameter_constraints: dict = {**_common_constraints(), "fit_intercept": ["boolean"]}

    def __init__(self, step="auto", *, fit_intercept=True, average=True, burn_in=0,
                 richardson=False, n_epochs=1, shuffle=False, n_bootstrap=0, block_length=1,
                 random_state=None):
        self.step = step
        self.fit_intercept = fit_intercept
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.random_state = random_state

    def _samples(self, X, y):
        xp = get_namespace(X)
        if self.fit_intercept:
            X = xp.concat([X, xp.ones((X.shape[0], 1), dtype=X.dtype)], axis=1)
        return Samples.rank_one(X, X, y)

    def _set(self, theta, boot):
        xp = get_namespace(theta)
        p = self.n_features_in_
        self.coef_ = theta[:p]
        self.intercept_ = float(theta[p]) if self.fit_intercept else 0.0
        if boot is not None:
            self.bootstrap_coef_ = boot[:, :p]
            self.bootstrap_intercept_ = (boot[:, p] if self.fit_intercept
                                         else xp.zeros(boot.shape[0], dtype=boot.dtype))

    def fit(self, X, y):
        """Run LSA over the rows of ``X`` (``n_epochs`` passes), starting from zero.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Training data in stream order (NumPy or CuPy).
        y : array of shape (n_samples,)
            Targets.

        Returns
        -------
        self : LSARegressor
        """
        self._validate_params()
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True,
                                       accept_dask=True)
        if is_dask_array(X):
            return self._stream_dask(X, y, restart=True)
        samples = self._samples(X, y)
        xp = samples.xp
        theta, boot = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                reset=True, n_epochs=self.n_epochs, shuffle=self.shuffle)
        for name in ("bootstrap_coef_", "bootstrap_intercept_"):
            if hasattr(self, name):
                delattr(self, name)
        self._set(theta, boot)
        return self

    def partial_fit(self, X, y):
        """Continue LSA over one more batch of rows (one pass, in order).

        Batches fitted one after another give exactly the result of one ``fit``
        on all rows (with a numeric ``step``; ``step="auto"`` is set from the
        first batch).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Next rows of the stream.
        y : array of shape (n_samples,)
            Their targets.

        Returns
        -------
        self : LSARegressor
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        X, y = validate_estimator_data(self, X, y, reset=first, y_required=True,
                                       accept_dask=True)
        if is_dask_array(X):
            return self._stream_dask(X, y, restart=False)
        samples = self._samples(X, y)
        xp = samples.xp
        theta, _ = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                             reset=first, n_epochs=1, shuffle=False)
        self._set(theta, None)
        return self


    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals (needs ``n_bootstrap > 0``).

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (n_features + fit_intercept, 2)
            Lower and upper ends for each coefficient, then for the intercept.
        """
        check_is_fitted(self, "coef_")
        boot = getattr(self, "bootstrap_coef_", None)
        if boot is not None and self.fit_intercept:
            xp = get_namespace(boot)
            boot = xp.concat([boot, xp.reshape(self.bootstrap_intercept_, (-1, 1))], axis=1)
        return self._interval(boot, alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


LSARegressor.__doc__ = LSARegressor.__doc__.replace("{common}", _COMMON_DOC)


class TD0Evaluator(LinearPredictorMixin, _BaseLSA):
    """Policy evaluation with linear features by TD(0) (temporal differences).

    Estimates the value function ``V(s) = phi(s)^T theta`` of the policy that
    generated a trajectory, by LSA with ``A_n = phi_n (phi_n - gamma phi'_n)^T``
    and ``b_n = r_n phi_n`` (O(p) per transition). Its limit is the TD / LSTD fixed
    point ``theta* = A^{-1} b`` of the mean matrices (for on-policy data ``A`` is
    Hurwitz, so a small enough step converges). Constant-step TD(0) on a Markov
    chain has an O(step) bias after averaging; ``richardson=True`` removes the
    first-order term.

    Data format: row ``t`` of ``X`` holds the features ``phi(s_t)`` and ``y[t]``
    the reward of the transition leaving ``s_t``. Without ``X_next``, ``X`` is one
    trajectory: the next state of row ``t`` is row ``t + 1``, so ``n`` rows give
    ``n - 1`` transitions, and ``partial_fit`` links the last row of a batch to the
    first row of the next one (a trajectory fed in batches gives exactly the fit on
    all of it). With ``X_next`` (same shape as ``X``) each row is an independent
    transition ``(X[t], y[t], X_next[t])``, e.g. from several episodes; use zero
    features for terminal states.

    Parameters
    ----------
    gamma : float in [0, 1], default=0.9
        Discount factor.
    {common}

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The value-function weights ``theta``.
    step_ : float
        Step size used.
    stability_bound_ : float
        Largest stable step of the mean TD matrix estimated from the transitions.
    n_updates_ : int
        Number of updates (transitions times passes).
    bootstrap_coef_ : ndarray of shape (n_bootstrap, n_features)
        Weights of the bootstrap chains (when ``n_bootstrap > 0``).
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (when X has string column names).

    Examples
    --------
    A 5-state random walk with tabular features; the reward is 1 when the walk
    leaves state 4.

    >>> import numpy as np
    >>> from sketchlearn.linear_model import TD0Evaluator
    >>> rng = np.random.default_rng(0)
    >>> s = np.zeros(20001, dtype=int)
    >>> for t in range(20000):
    ...     s[t + 1] = min(max(s[t] + rng.choice([-1, 1]), 0), 4)
    >>> X = np.eye(5)[s]
    >>> y = (s == 4).astype(float)
    >>> td = TD0Evaluator(gamma=0.5, step=0.05, burn_in=1000).fit(X, y)
    >>> values = td.predict(np.eye(5))
    >>> bool(np.all(np.diff(values) > 0))
    True
    """

    _parameter_constraints: dict = {
        **_common_constraints(),
        "gamma": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, gamma=0.9, *, step="auto", average=True, burn_in=0, richardson=False,
                 n_epochs=1, shuffle=False, n_bootstrap=0, block_length=1, random_state=None):
        self.gamma = gamma
        self.step = step
        self.average = average
        self.burn_in = burn_in
        self.richardson = richardson
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.random_state = random_state

    def _transitions(self, X, y, X_next, pending):
        """Rank-one samples (U, V, c) of the transitions, and the new pending row."""
        xp = get_namespace(X)
        gamma = float(self.gamma)
        if X_next is not None:
            X_next = check_array(X_next, "X_next")
            X_next = xp.astype(move_to(X_next, xp), X.dtype)
            if X_next.shape != X.shape:
                raise ValueError(f"X_next has shape {tuple(X_next.shape)} but X has "
                                 f"{tuple(X.shape)}; each row of X_next is the next state's "
                                 "features of the same row of X.")
            return Samples.rank_one(X, X - gamma * X_next, y), None
        if pending is not None:
            px, py = pending
            X_all = xp.concat([xp.astype(move_to(px, xp), X.dtype), X], axis=0)
            y_all = xp.concat([xp.astype(move_to(py, xp), X.dtype), y], axis=0)
        else:
            X_all, y_all = X, y
        m = X_all.shape[0]
        U = X_all[:m - 1, :]
        V = U - gamma * X_all[1:, :]
        # Copies: the pending row must not follow later changes to the caller's X.
        pending = (xp.asarray(X_all[m - 1:, :], copy=True), xp.asarray(y_all[m - 1:], copy=True))
        return Samples.rank_one(U, V, y_all[:m - 1]), pending

    def fit(self, X, y, X_next=None):
        """Run TD(0) over the transitions (``n_epochs`` passes), starting from zero.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Features of the states, in trajectory order (NumPy or CuPy).
        y : array of shape (n_samples,)
            Reward of the transition leaving each state.
        X_next : array of shape (n_samples, n_features), optional
            Features of each row's next state; without it the next state is the
            next row (a single trajectory).

        Returns
        -------
        self : TD0Evaluator
        """
        self._validate_params()
        X, y = validate_estimator_data(self, X, y, reset=True, y_required=True,
                                       accept_dask=True)
        if is_dask_array(X):
            return self._stream_dask(X, y, X_next, restart=True)
        if X_next is None and X.shape[0] < 2:
            raise ValueError(f"X has {X.shape[0]} sample(s): TD(0) on a trajectory needs at "
                             "least 2 states (one transition), or pass X_next.")
        samples, pending = self._transitions(X, y, X_next, None)
        xp = samples.xp
        self.coef_, boot = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                     reset=True, n_epochs=self.n_epochs, shuffle=self.shuffle)
        self._pending = pending
        if boot is not None:
            self.bootstrap_coef_ = boot
        elif hasattr(self, "bootstrap_coef_"):
            del self.bootstrap_coef_
        return self

    def partial_fit(self, X, y, X_next=None):
        """Continue TD(0) over more of the trajectory (one pass, in order).

        Without ``X_next`` the first row of this batch is the next state of the
        last row of the previous batch, so feeding a trajectory in batches equals
        fitting it at once (with a numeric ``step``).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Features of the next states of the trajectory.
        y : array of shape (n_samples,)
            Rewards of the transitions leaving them.
        X_next : array of shape (n_samples, n_features), optional
            Explicit next states (independent transitions); this also ends the
            trajectory of earlier batches.

        Returns
        -------
        self : TD0Evaluator
        """
        self._validate_params()
        first = not hasattr(self, "_lsa_state")
        X, y = validate_estimator_data(self, X, y, reset=first, y_required=True,
                                       accept_dask=True)
        if is_dask_array(X):
            return self._stream_dask(X, y, X_next, restart=False)
        pending = None if first else getattr(self, "_pending", None)
        samples, pending = self._transitions(X, y, X_next, pending)
        xp = samples.xp
        self.coef_, _ = self._run(samples, xp.zeros(samples.n_features, dtype=xp.float64),
                                  reset=first, n_epochs=1, shuffle=False)
        self._pending = pending
        return self


    def score(self, X, y, X_next=None):
        """Negative mean squared TD error ``-(r + gamma V(s') - V(s))^2`` (higher is better).

        Parameters
        ----------
        X, y, X_next
            Transitions in the format of :meth:`fit` (without ``X_next`` the next
            state of row ``t`` is row ``t + 1`` and the last row is not scored).

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "coef_")
        X, y = validate_estimator_data(self, X, y, reset=False, y_required=True)
        xp = get_namespace(X)
        v = self.predict(X)
        if X_next is None:
            if X.shape[0] < 2:
                raise ValueError("score on a trajectory needs at least 2 states.")
            delta = y[:-1] + float(self.gamma) * v[1:] - v[:-1]
        else:
            X_next = check_array(X_next, "X_next")
            if X_next.shape != X.shape:
                raise ValueError(f"X_next has shape {tuple(X_next.shape)} but X has "
                                 f"{tuple(X.shape)}.")
            delta = y + float(self.gamma) * self.predict(X_next) - v
        return -float(xp.mean(delta * delta))

    @validate_params({"alpha": PROBABILITY}, prefer_skip_nested_validation=True)
    def conf_int(self, alpha=0.05):
        """Bootstrap percentile confidence intervals for ``coef_`` (``n_bootstrap > 0``).

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        intervals : ndarray of shape (n_features, 2)
        """
        check_is_fitted(self, "coef_")
        return self._interval(getattr(self, "bootstrap_coef_", None), alpha)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags


TD0Evaluator.__doc__ = TD0Evaluator.__doc__.replace("{common}", _COMMON_DOC)
