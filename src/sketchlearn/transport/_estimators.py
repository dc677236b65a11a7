"""Estimators built on the transport distances."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._random import as_generator
from .._validation import COUNT, POSITIVE, SEED
from ._sinkhorn import _METRICS, sinkhorn
from ._sinkhorn_ops import ROW_BLOCK, pairwise_cost
from ._slices import make_directions

__all__ = ["SlicedWassersteinKernel", "OTMapper"]


class SlicedWassersteinKernel(TransformerMixin, BaseEstimator):
    r"""Gram matrix of the sliced Wasserstein kernel between point clouds.

    Each row of ``X`` is one distribution: a cloud of ``n_features // point_dim``
    points in ``point_dim`` dimensions, flattened point after point (row ``i`` is
    ``cloud_i.reshape(-1)``). With shared directions :math:`\theta_1..\theta_L`, the
    sorted projections of a cloud, scaled by :math:`1/\sqrt{L k}`, embed it so that
    squared Euclidean distances between embeddings are exactly the Monte Carlo
    :math:`SW_2^2` between clouds of equal size ``k``. ``transform`` returns

    .. math:: K_{ij} = \exp\big(-SW_2^2(X_i, X^{fit}_j) / (2 s^2)\big),

    a positive definite kernel (Gaussian of a Hilbert embedding), ready for
    ``SVC(kernel="precomputed")`` or ``KernelRidge(kernel="precomputed")``:
    ``fit_transform`` on the training clouds, ``transform`` on new ones.

    Parameters
    ----------
    n_projections : int, default=50
        Number of directions ``L`` (one is enough when ``point_dim=1``).
    point_dim : int, default=1
        Dimension of the points; must divide ``n_features``.
    bandwidth : float or "median", default="median"
        Kernel width ``s``; "median" is the median SW distance between distinct
        training clouds (1.0 when they are all equal).
    slices : {"mc", "orthogonal", "qmc", "rqmc"}, default="mc"
        How directions are drawn (see :func:`sliced_wasserstein`).
    random_state : int, RandomState, Generator or None
        Seed of the directions.

    Attributes
    ----------
    directions_ : ndarray of shape (n_projections, point_dim)
    embedding_ : ndarray of shape (n_fit, n_projections * n_points)
        Scaled sorted projections of the training clouds.
    bandwidth_ : float
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from sketchlearn.transport import SlicedWassersteinKernel
    >>> rng = np.random.default_rng(0)
    >>> narrow = rng.normal(0, 1.0, size=(20, 50 * 2))   # 20 clouds of 50 points in 2-D
    >>> wide = rng.normal(0, 2.0, size=(20, 50 * 2))
    >>> X, y = np.vstack([narrow, wide]), np.repeat([0, 1], 20)
    >>> swk = SlicedWassersteinKernel(point_dim=2, random_state=0)
    >>> K = swk.fit_transform(X)
    >>> K.shape
    (40, 40)
    >>> SVC(kernel="precomputed").fit(K, y).score(K, y)
    1.0
    """

    _parameter_constraints: dict = {
        "n_projections": COUNT,
        "point_dim": COUNT,
        "bandwidth": [*POSITIVE, StrOptions({"median"})],
        "slices": [StrOptions({"mc", "orthogonal", "qmc", "rqmc"})],
        "random_state": SEED,
    }

    def __init__(self, n_projections=50, point_dim=1, bandwidth="median", slices="mc",
                 random_state=None):
        self.n_projections = n_projections
        self.point_dim = point_dim
        self.bandwidth = bandwidth
        self.slices = slices
        self.random_state = random_state

    def _embed(self, X):
        n, f = X.shape
        k = f // self.point_dim
        clouds = X.reshape(n, k, self.point_dim)
        P = np.einsum("nkd,ld->nlk", clouds, self.directions_.astype(X.dtype))
        P.sort(axis=2)
        return P.reshape(n, -1) / math.sqrt(self.directions_.shape[0] * k)

    def fit(self, X, y=None):
        """Draw the directions and embed the training clouds.

        Parameters
        ----------
        X : array of shape (n_clouds, n_points * point_dim)
            Flattened point clouds.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if X.shape[1] % self.point_dim:
            raise ValueError(f"n_features={X.shape[1]} is not a multiple of point_dim="
                             f"{self.point_dim}; each row must be a flattened cloud of "
                             "points of dimension point_dim.")
        L = 1 if self.point_dim == 1 else self.n_projections
        rng = as_generator(self.random_state)
        self.directions_ = make_directions(self.point_dim, L, self.slices, rng)[0]
        self.embedding_ = self._embed(X)
        if self.bandwidth == "median":
            D = _sq_dists(self.embedding_, self.embedding_)
            iu = np.triu_indices(D.shape[0], 1)
            pos = np.sqrt(D[iu][D[iu] > 0])
            self.bandwidth_ = float(np.median(pos)) if pos.size else 1.0
        else:
            self.bandwidth_ = float(self.bandwidth)
        return self

    def transform(self, X):
        """Kernel between the clouds of ``X`` and the training clouds.

        Parameters
        ----------
        X : array of shape (n_clouds, n_points * point_dim)
            Same layout and number of points as in ``fit``.

        Returns
        -------
        K : ndarray of shape (n_clouds, n_fit)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        D = _sq_dists(self._embed(X), self.embedding_.astype(X.dtype))
        return np.exp(-D / (2.0 * self.bandwidth_**2)).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _sq_dists(A, B):
    D = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(D, 0.0)


class OTMapper(TransformerMixin, BaseEstimator):
    r"""Map points from a source to a target distribution by entropic optimal transport.

    ``fit(X, X_target=Xt)`` solves the entropic OT problem between the uniform
    measures on ``X`` and ``Xt`` (:func:`sinkhorn`, log domain) and keeps the target
    potential ``g``. ``transform(Z)`` maps any point ``z`` to the barycentre of the
    target under the conditional plan, extended out of sample by the potentials:

    .. math::

        T(z) = \sum_j w_j(z)\, y_j, \qquad w_j(z) \propto b_j
        \exp\big((g_j - c(z, y_j)) / \mathrm{reg}\big),

    which equals the barycentric projection ``P Y / a`` at the training points.
    Computed in blocks of rows (memory O(block m)). Without ``X_target`` the target
    is a standard Gaussian sample of the same size and dimension (a Gaussianising
    map).

    Parameters
    ----------
    reg : float > 0, default=0.1
        Entropic regularisation, relative to the median cost between ``X`` and the
        target (so it is scale free); the absolute value used is ``reg_``.
    metric : {"sqeuclidean", "euclidean"}, default="sqeuclidean"
        Cost.
    tol : float, default=1e-6
        Marginal tolerance of Sinkhorn.
    max_iter : int, default=10000
        Iteration cap of Sinkhorn.
    random_state : int, RandomState, Generator or None
        Seed of the default Gaussian target.

    Attributes
    ----------
    target_ : ndarray of shape (m, n_features)
    potential_ : ndarray of shape (m,)
        Dual potential ``g`` on the target.
    reg_ : float
        Absolute regularisation used.
    cost_ : float
        Transport cost of the fitted plan.
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.transport import OTMapper
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2))
    >>> Xt = rng.normal(size=(300, 2)) * 0.5 + [3.0, 0.0]
    >>> mapped = OTMapper(reg=0.01).fit(X, X_target=Xt).transform(X)
    >>> np.round(mapped.mean(axis=0), 1) + 0.0
    array([3., 0.])
    """

    _parameter_constraints: dict = {
        "reg": POSITIVE,
        "metric": [StrOptions(set(_METRICS))],
        "tol": POSITIVE,
        "max_iter": COUNT,
        "random_state": SEED,
    }

    def __init__(self, reg=0.1, metric="sqeuclidean", tol=1e-6, max_iter=10_000,
                 random_state=None):
        self.reg = reg
        self.metric = metric
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)  # sinkhorn: no second check
    def fit(self, X, y=None, X_target=None):
        """Solve the entropic OT problem from ``X`` to ``X_target``.

        Parameters
        ----------
        X : array of shape (n, d)
            Source sample.
        y : ignored
        X_target : array of shape (m, d), optional
            Target sample; a standard Gaussian sample of shape ``(n, d)`` by default.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if X_target is None:
            rng = as_generator(self.random_state)
            T = rng.standard_normal(X.shape).astype(X.dtype)
        else:
            T = np.asarray(X_target)
            if T.ndim != 2 or T.shape[1] != X.shape[1]:
                raise ValueError(f"X_target must have shape (m, {X.shape[1]}); got "
                                 f"{T.shape}.")
            T = T.astype(X.dtype if T.dtype.kind != "f" else T.dtype)
        power = _METRICS[self.metric]
        scale = _median_cost(X, T, power)
        self.reg_ = float(self.reg) * (scale if scale > 0 else 1.0)
        res = sinkhorn(X=X, Y=T, reg=self.reg_, metric=self.metric, tol=self.tol,
                       max_iter=self.max_iter, return_plan=False)
        self.target_ = T
        self.potential_ = np.asarray(res.g)
        self.cost_ = res.cost
        self.n_iter_ = res.n_iter
        return self

    def transform(self, X):
        """Map points by the entropic barycentric projection.

        Parameters
        ----------
        X : array of shape (n, d)

        Returns
        -------
        X_mapped : ndarray of shape (n, d)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        power = _METRICS[self.metric]
        T = self.target_.astype(np.float64)
        lb = self.potential_ / self.reg_ - math.log(T.shape[0])
        out = np.empty((X.shape[0], X.shape[1]), dtype=np.float64)
        for s in range(0, X.shape[0], ROW_BLOCK):
            C = pairwise_cost(np, X[s: s + ROW_BLOCK], T, power)  # NumPy: slices clip
            Z = lb[None, :] - C / self.reg_
            Z -= Z.max(axis=1, keepdims=True)
            W = np.exp(Z)
            W /= W.sum(axis=1, keepdims=True)
            out[s: s + ROW_BLOCK] = W @ T
        return out.astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _median_cost(X, T, power, size=500):
    A = X[: size].astype(np.float64)
    B = T[: size].astype(np.float64)
    return float(np.median(pairwise_cost(np, A, B, power)))
