"""Sketch operators: random matrices ``S`` of shape ``(m, n)`` with ``E[S^T S] = I_n``.

Every operator is drawn on the host from a NumPy generator and stored in a compact
form (a seed, signs, indices or scales); it is applied to NumPy, CuPy or
scipy.sparse data without ever forming ``S`` unless the kind is dense by nature
(orthogonal). Applying from the left sketches rows (``S @ X``), from the right
sketches features (``X @ S^T``); the adjoint ``S^T @ Y`` is available for every
kind.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.fft
import scipy.sparse as sp
from sklearn.utils._param_validation import Options, StrOptions

from .._array_api import (
    Dispatch,
    get_namespace,
    is_numpy_namespace,
    move_to,
    public_function,
    to_numpy,
)
from .._random import as_generator, row_keyed
from .._validation import COUNT, NON_NEGATIVE, SEED, check_array

__all__ = ["SketchOperator", "make_sketch", "sketch", "leverage_scores", "KINDS"]

KINDS = ("gaussian", "orthogonal", "srht", "srdct", "countsketch", "uniform", "leverage",
         "approx_leverage")
_DENSE_ONLY = ("srht", "srdct")
_NEEDS_DATA = ("leverage", "approx_leverage")
# Gaussian sketches are generated in blocks of columns holding at most this many
# entries, each block from its own child seed: memory O(m * block), same S every time.
_GAUSS_BLOCK_ENTRIES = 2**22
# FWHT / DCT work on blocks of columns holding at most this many entries (memory).
_BLOCK_ENTRIES = 2**24


# --------------------------------------------------------------------------- kernels


def scatter_add_rows_reference(xp, idx, weights, V, n_out):
    """``out[idx[i]] += weights[i] * V[i]`` for every row ``i`` (array-API reference).

    Builds the ``(n_out, len(idx))`` one-hot matrix and multiplies: O(n_out n q),
    fine as a test oracle and for small inputs.
    """
    rows = xp.arange(n_out, dtype=idx.dtype)
    onehot = xp.astype(rows[:, None] == idx[None, :], V.dtype)
    return onehot @ (xp.astype(weights, V.dtype)[:, None] * V)


def _scatter_add_rows_examples(xp, rng):
    """CountSketch from the left (50 rows into 8 buckets, random signs), the adjoint
    of row sampling (sorted rows with repeats, scaled) and of SRHT (rows of the padded
    transform, one scale), float64 and float32; and no rows at all. Indices are int64
    and weights of the data's dtype, as the operator casts them."""
    out = []
    for dtype in (np.float64, np.float32):
        buckets = rng.integers(0, 8, size=50)
        signs = rng.choice(np.array([-1.0, 1.0]), size=50).astype(dtype)
        V = rng.normal(size=(50, 6)).astype(dtype)
        out.append((tuple(move_to(a, xp) for a in (buckets, signs, V)) + (8,), {}))
        rows = np.sort(rng.integers(0, 50, size=12))
        scales = np.full(12, math.sqrt(50 / 12), dtype=dtype)
        Y = rng.normal(size=(12, 3)).astype(dtype)
        out.append((tuple(move_to(a, xp) for a in (rows, scales, Y)) + (50,), {}))
    rows = np.sort(rng.choice(64, size=10, replace=False))
    Y = rng.normal(size=(10, 4))
    out.append((tuple(move_to(a, xp) for a in (rows, np.full(10, math.sqrt(6.4)), Y))
                + (64,), {}))
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((0, 3)))
    out.append((tuple(move_to(a, xp) for a in empty) + (5,), {}))
    return out


scatter_add_rows = Dispatch(scatter_add_rows_reference,
                            numba="sketchlearn.sketching._numba:scatter_add_rows",
                            cupy="sketchlearn.sketching._cupy:scatter_add_rows",
                            examples=_scatter_add_rows_examples)


def dct_ortho_reference(xp, X, inverse=False):
    """Orthonormal DCT-II along axis 0 (``inverse=True``: its inverse and transpose)."""
    host = to_numpy(X)
    f = scipy.fft.idct if inverse else scipy.fft.dct
    out = f(host, type=2, norm="ortho", axis=0)
    return out if is_numpy_namespace(xp) else move_to(out, xp)


def _dct_ortho_examples(xp, rng):
    """SRDCT's transform of sign-flipped columns and its inverse (the adjoint),
    float64 and float32, including a one-column block."""
    out = []
    for dtype, (n, q) in ((np.float64, (24, 5)), (np.float32, (24, 5)), (np.float64, (7, 1))):
        signs = rng.choice(np.array([-1.0, 1.0]), size=n)
        X = move_to((signs[:, None] * rng.normal(size=(n, q))).astype(dtype), xp)
        out.append(((X,), {}))
        out.append(((X,), {"inverse": True}))
    return out


dct_ortho = Dispatch(dct_ortho_reference, cupy="sketchlearn.sketching._cupy:dct_ortho",
                     examples=_dct_ortho_examples)


def fwht_reference(xp, X):
    """Orthonormal fast Walsh-Hadamard transform along axis 0 (Sylvester order).

    ``X`` has ``N = 2^L`` rows; returns ``H X / sqrt(N)`` in O(N q log N) operations,
    written in array-API calls (each level is one vectorised butterfly).
    """
    N, q = X.shape
    h = 1
    while h < N:
        Y = xp.reshape(X, (N // (2 * h), 2, h, q))
        a, b = Y[:, 0, ...], Y[:, 1, ...]
        X = xp.reshape(xp.stack([a + b, a - b], axis=1), (N, q))
        h *= 2
    return X / math.sqrt(N)


def _fwht_examples(xp, rng):
    """SRHT's transform of sign-flipped columns padded with zero rows to a power of
    two, float64 and float32, and the sizes 1 and 2 (n = 1 and 2 need no padding)."""
    out = []
    for dtype, n, N, q in ((np.float64, 50, 64, 5), (np.float32, 50, 64, 5),
                           (np.float64, 100, 128, 1), (np.float64, 1, 1, 3),
                           (np.float64, 2, 2, 2)):
        X = np.zeros((N, q), dtype=dtype)
        X[:n] = rng.choice(np.array([-1.0, 1.0]), size=n)[:, None] * rng.normal(size=(n, q))
        out.append(((move_to(X, xp),), {}))
    return out


fwht = Dispatch(fwht_reference, numba="sketchlearn.sketching._numba:fwht",
                cupy="sketchlearn.sketching._cupy:fwht", examples=_fwht_examples)


# --------------------------------------------------------------------------- operator


class SketchOperator:
    """A random sketching matrix ``S`` of shape ``(m, n)`` with ``E[S^T S] = I``.

    Built by :func:`make_sketch`; stores only what is needed to apply ``S`` (a seed,
    random signs, sampled indices and scales), never an ``m x n`` matrix except for
    the orthogonal kind. Apply it with ``S @ X`` (rows of ``X`` are sketched),
    ``S.apply(X, axis=1)`` (columns, i.e. ``X @ S.T``) or its adjoint ``S.T @ Y``.

    Parameters
    ----------
    kind : str
        One of ``KINDS``.
    shape : tuple of int
        ``(m, n)``: sketch size and sketched dimension.
    params : dict
        The random draws (internal).

    Attributes
    ----------
    kind : str
    shape : tuple (m, n)

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.sketching import make_sketch
    >>> S = make_sketch("srdct", 64, 1000, random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(1000, 5))
    >>> (S @ X).shape, (S.T @ (S @ X)).shape
    ((64, 5), (1000, 5))
    """

    def __init__(self, kind, shape, params):
        self.kind = kind
        self.shape = (int(shape[0]), int(shape[1]))
        self._p = params
        self._rows = None  # row_params(0, n), drawn on first use

    def __repr__(self):
        return f"SketchOperator(kind={self.kind!r}, shape={self.shape})"

    def __getstate__(self):  # a pickled operator (a Dask task) carries its seeds only
        state = dict(self.__dict__)
        state["_rows"] = None
        return state

    def row_params(self, start, stop):
        """The per-row random draws of rows ``start`` to ``stop - 1``: ``"signs"``
        (SRHT, SRDCT, CountSketch) and ``"buckets"`` (CountSketch).

        They are keyed by the global row index (``sketchlearn._random.row_keyed``),
        so a chunk of rows draws its own and the result does not depend on how the
        rows are cut (the Dask path sketches each row chunk with them).
        """
        seed = self._p.get("row_seed")
        if seed is None:
            return {}
        out = {"signs": row_keyed(seed, 0, start, stop, _draw_signs)}
        if self.kind == "countsketch":
            m = self.shape[0]
            out["buckets"] = row_keyed(seed, 1, start, stop,
                                       lambda g, size: g.integers(0, m, size=size))
        return out

    def _row(self, name):
        if self._rows is None:
            self._rows = self.row_params(0, self.shape[1])
        return self._rows[name]

    # ----- public API
    @property
    def T(self):
        """The adjoint ``S^T`` (shape ``(n, m)``), applied with ``S.T @ Y``."""
        return _Adjoint(self)

    def __matmul__(self, X):
        return self.apply(X, axis=0)

    def apply(self, X, axis=0):
        """Sketch ``X``: ``S @ X`` for ``axis=0`` (rows), ``X @ S^T`` for ``axis=1``.

        Parameters
        ----------
        X : array or scipy.sparse matrix
            2-D data (1-D is accepted for ``axis=0``) with ``n`` entries along ``axis``.
        axis : {0, 1}
            Dimension of ``X`` to sketch.

        Returns
        -------
        SX : array
            Same array library as ``X`` and float32 for float32 input; sparse input
            gives sparse output for CountSketch and sampling, dense otherwise.
        """
        if axis not in (0, 1):
            raise ValueError(f"axis must be 0 (rows) or 1 (features), got {axis!r}.")
        X, xp, vector = _prepare(X, self.shape[1], axis, self.kind)
        if axis == 1:
            out = self._left(X.T, xp)
            return out.T
        out = self._left(X, xp)
        return out[:, 0] if vector else out

    def rmatmul(self, Y):
        """Adjoint product ``S^T @ Y`` for dense ``Y`` with ``m`` rows (1-D allowed)."""
        if sp.issparse(Y):
            raise TypeError("The adjoint accepts dense arrays only; pass Y.toarray().")
        Y = check_array(Y, "Y", ensure_2d=False) if np.ndim(Y) == 1 else check_array(Y, "Y")
        vector = Y.ndim == 1
        xp = get_namespace(Y)
        if vector:
            Y = xp.reshape(Y, (-1, 1))
        if Y.shape[0] != self.shape[0]:
            raise ValueError(f"S^T @ Y needs Y with {self.shape[0]} rows (the sketch size); "
                             f"got shape {tuple(Y.shape)}.")
        out = self._adjoint(Y, xp)
        return out[:, 0] if vector else out

    def toarray(self, dtype=np.float64):
        """The matrix ``S`` as a dense NumPy array of shape ``(m, n)`` (for small n)."""
        return self._left(np.eye(self.shape[1], dtype=dtype), np)

    # ----- internals
    def _left(self, X, xp):
        m, n = self.shape
        k, p = self.kind, self._p
        dtype = X.dtype
        if k == "gaussian":
            return _gaussian_left(X, xp, m, p["seed"])
        if k == "orthogonal":
            Q = _cast(p["Q"], X, xp)  # (n, m), orthonormal columns
            if sp.issparse(X):
                return np.asarray((X.T @ Q).T * p["scale"], dtype=dtype)
            return (Q.T @ X) * p["scale"]
        if k in ("srht", "srdct"):
            signs = _cast(self._row("signs"), X, xp)
            rows = move_to(p["rows"], xp)
            outs = []
            width = max(1, _BLOCK_ENTRIES // max(X.shape[0], 1))
            for j0 in range(0, X.shape[1], width):
                B = signs[:, None] * X[:, j0:min(j0 + width, X.shape[1])]
                if k == "srht":
                    N = p["N"]
                    if N > n:
                        B = xp.concat([B, xp.zeros((N - n, B.shape[1]), dtype=dtype)], axis=0)
                    B = fwht(xp, B)
                else:
                    B = dct_ortho(xp, B)
                outs.append(xp.take(B, rows, axis=0) * p["scale"])
            return xp.concat(outs, axis=1) if len(outs) > 1 else outs[0]
        if k == "countsketch":
            buckets, signs = self._row("buckets"), self._row("signs")
            if sp.issparse(X):
                return sp.csr_matrix((signs.astype(dtype), (buckets, np.arange(n))),
                                     shape=(m, n)) @ X
            return scatter_add_rows(xp, move_to(buckets, xp), _cast(signs, X, xp), X, m)
        # sampling kinds: rows idx scaled
        if sp.issparse(X):
            D = sp.diags(p["scales"].astype(dtype))
            return (D @ sp.csr_matrix(X)[p["rows"]]).tocsr()
        rows = move_to(p["rows"], xp)
        return xp.take(X, rows, axis=0) * _cast(p["scales"], X, xp)[:, None]

    def _adjoint(self, Y, xp):
        m, n = self.shape
        k, p = self.kind, self._p
        dtype = Y.dtype
        if k == "gaussian":
            return _gaussian_adjoint(Y, xp, m, n, p["seed"])
        if k == "orthogonal":
            return (_cast(p["Q"], Y, xp) @ Y) * p["scale"]
        if k in ("srht", "srdct"):
            N = p["N"] if k == "srht" else n
            signs = _cast(self._row("signs"), Y, xp)
            Z = scatter_add_rows(xp, move_to(p["rows"], xp),
                                 xp.full((m,), p["scale"], dtype=dtype), Y, N)
            Z = fwht(xp, Z) if k == "srht" else dct_ortho(xp, Z, inverse=True)
            return signs[:, None] * Z[:n, ...]
        if k == "countsketch":
            return xp.take(Y, move_to(self._row("buckets"), xp), axis=0) * _cast(
                self._row("signs"), Y, xp)[:, None]
        return scatter_add_rows(xp, move_to(p["rows"], xp), _cast(p["scales"], Y, xp), Y, n)


class _Adjoint:
    """``S^T``, so that ``S.T @ Y`` reads like the math."""

    def __init__(self, op):
        self._op = op
        self.shape = (op.shape[1], op.shape[0])

    def __matmul__(self, Y):
        return self._op.rmatmul(Y)

    def __repr__(self):
        return f"{self._op!r}.T"


def _cast(a, like, xp):
    """Host array ``a`` as namespace ``xp`` with the dtype of ``like``."""
    return xp.astype(move_to(a, xp), like.dtype) if not sp.issparse(like) else \
        np.asarray(a, dtype=like.dtype)


def _gaussian_blocks(m, n, seed):
    """(start, stop, generator) for column blocks of the Gaussian sketch."""
    width = max(1, _GAUSS_BLOCK_ENTRIES // max(m, 1))
    for b, j0 in enumerate(range(0, n, width)):
        yield j0, min(n, j0 + width), np.random.default_rng([seed, b])


def _gaussian_left(X, xp, m, seed):
    n = X.shape[0]
    dense = not sp.issparse(X)
    out = None
    for j0, j1, g in _gaussian_blocks(m, n, seed):
        G = g.standard_normal((m, j1 - j0)) / math.sqrt(m)
        if dense:
            part = xp.astype(move_to(G, xp), X.dtype) @ X[j0:j1, ...]
        else:
            part = np.asarray((X[j0:j1].T @ G.T.astype(X.dtype)).T)
        out = part if out is None else out + part
    return out


def _gaussian_adjoint(Y, xp, m, n, seed):
    parts = []
    for j0, j1, g in _gaussian_blocks(m, n, seed):
        G = xp.astype(move_to(g.standard_normal((m, j1 - j0)) / math.sqrt(m), xp), Y.dtype)
        parts.append(G.T @ Y)
    return xp.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _draw_signs(g, size):
    return g.choice(np.array([-1.0, 1.0]), size=size)


def _empty_message(shape):
    return (f"X is empty (shape {tuple(shape)}); sketching needs at least one row and "
            "one column.")


def _prepare(X, n, axis, kind):
    """Validate the data of an apply; return (X, xp, was_1d)."""
    if sp.issparse(X):
        if kind in _DENSE_ONLY:
            raise TypeError(
                f"kind={kind!r} needs dense data (it applies a fast transform to every "
                "column); pass X.toarray(), or use 'countsketch', 'gaussian' or a sampling "
                "sketch, which accept scipy.sparse input.")
        if X.ndim != 2:
            raise ValueError("sparse X must be 2-D.")
        if 0 in X.shape:
            raise ValueError(_empty_message(X.shape))
        if X.dtype != np.float32 and X.dtype != np.float64:
            X = X.astype(np.float64)
        if not np.all(np.isfinite(X.data)):
            raise ValueError("X contains NaN or infinity; remove or impute those values first.")
        X = X.tocsr() if axis == 0 else X.tocsc()
        xp = np
        vector = False
    else:
        vector = np.ndim(X) == 1
        if vector and axis != 0:
            raise ValueError("A 1-D X can only be sketched along axis=0.")
        X = check_array(X, "X", ensure_2d=not vector)
        xp = get_namespace(X)
        if vector:
            X = xp.reshape(X, (-1, 1))
    if X.shape[axis] != n:
        raise ValueError(
            f"This sketch acts on dimension {n}, but X has {X.shape[axis]} "
            f"{'rows' if axis == 0 else 'columns'} (shape {tuple(X.shape)}, axis={axis}).")
    return X, xp, vector


# --------------------------------------------------------------------------- factories


@public_function(arrays=("X",),
                 params={"method": [StrOptions({"exact", "approx"})], "random_state": SEED,
                         "rcond": [*NON_NEGATIVE, None]},
                 dask="sketchlearn.sketching._dask:leverage_scores_dask")
def leverage_scores(X, method="exact", random_state=None, rcond=None):
    """Statistical leverage scores of the rows of ``X`` (diagonal of its hat matrix).

    Parameters
    ----------
    X : array of shape (n, d)
        Data (NumPy or CuPy; scipy.sparse with ``method="approx"``).
    method : {"exact", "approx"}, default="exact"
        ``"exact"``: squared row norms of ``U`` in a thin SVD, O(n d^2).
        ``"approx"``: the fast approximation of Drineas, Magdon-Ismail, Mahoney and
        Woodruff (2012): ``R`` from the SVD of a sketch ``Pi X`` (SRDCT, or
        CountSketch for sparse input) of ``min(n, max(4d, 100))`` rows, then the row
        norms of ``X R^-1`` projected by a Gaussian JL matrix; each score is within
        a constant factor of the exact one with high probability.
    random_state : int, Generator, RandomState or None
        Seed of the approximation.
    rcond : float, optional
        Singular values below ``rcond * s_max`` count as zero (default
        ``max(n, d) * eps``), so the scores sum to the numerical rank.

    Returns
    -------
    scores : array of shape (n,)
        In ``[0, 1]`` (exact), summing to the rank of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.sketching import leverage_scores
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> round(float(leverage_scores(X).sum()), 6)
    3.0
    """
    if sp.issparse(X):
        if method == "exact":
            raise TypeError("Exact leverage scores need dense X (X.toarray()); use "
                            "method='approx' for sparse input.")
        X, xp, _ = _prepare(X, X.shape[0], 0, "countsketch")
    else:
        X = check_array(X, "X")
        xp = get_namespace(X)
    n, d = X.shape
    eps = float(np.finfo(np.float32 if X.dtype == np.float32 else np.float64).eps)
    tol = max(n, d) * eps if rcond is None else float(rcond)
    if method == "exact":
        U, s, _ = xp.linalg.svd(X, full_matrices=False)
        r = int(xp.sum(s > tol * s[0])) if s.shape[0] and float(s[0]) > 0 else 0
        return xp.sum(U[:, :r] ** 2, axis=1)
    rng = as_generator(random_state)
    r1 = min(n, max(4 * d, 100))
    Pi = make_sketch("countsketch" if sp.issparse(X) else "srdct", r1, n, random_state=rng)
    PX = Pi @ X
    if sp.issparse(PX):
        PX = PX.toarray()
    _, s, Vt = xp.linalg.svd(PX, full_matrices=False)
    keep = s > tol * s[0] if float(s[0]) > 0 else s > 0
    Rinv = (Vt[keep, :].T) / s[keep][None, :]
    r2 = int(Rinv.shape[1])
    r_jl = max(50, math.ceil(8 * math.log(max(n, 2))))
    if r_jl < r2:
        G = rng.standard_normal((r2, r_jl)) / math.sqrt(r_jl)
        Rinv = Rinv @ xp.astype(move_to(G, xp), Rinv.dtype)
    Omega = X @ Rinv if not sp.issparse(X) else np.asarray(X @ Rinv)
    return xp.sum(Omega ** 2, axis=1)


@public_function(arrays=("data",),
                 params={"kind": [StrOptions(set(KINDS))], "size": COUNT, "n": COUNT,
                         "replace": ["boolean"], "random_state": SEED})
def make_sketch(kind, size, n, *, data=None, replace=False, random_state=None):
    """Draw a sketching matrix ``S`` of shape ``(size, n)`` with ``E[S^T S] = I_n``.

    Parameters
    ----------
    kind : str
        - ``"gaussian"``: i.i.d. ``N(0, 1/m)`` entries; O(m n q) to apply.
        - ``"orthogonal"``: ``sqrt(n/m) Q^T`` with ``Q`` (n x m) Haar-distributed
          orthonormal columns (``m <= n``); O(n m^2) to draw.
        - ``"srht"``: subsampled randomized Hadamard transform
          ``sqrt(N/m) P H D`` (random signs ``D``, orthonormal Walsh-Hadamard ``H``
          on ``N = 2^ceil(log2 n)`` after zero padding, ``m`` rows ``P`` sampled
          without replacement); O(N q log N).
        - ``"srdct"``: the same with the orthonormal DCT-II (``scipy.fft``), no
          padding; O(n q log n).
        - ``"countsketch"``: one ``+-1`` per column in a random row; O(nnz).
        - ``"uniform"``: ``m`` rows sampled uniformly, scaled by ``sqrt(n/m)``.
        - ``"leverage"`` / ``"approx_leverage"``: ``m`` rows sampled with replacement
          with probabilities ``p_i`` proportional to the (exact / approximate)
          leverage scores of ``data``, scaled by ``1/sqrt(m p_i)``.
    size : int
        Sketch size ``m`` (at most ``n`` for orthogonal, SRHT, SRDCT and sampling
        without replacement).
    n : int
        Dimension being sketched (rows of the data for a left sketch).
    data : array of shape (n, d), optional
        The data whose leverage scores drive the leverage kinds (required there).
    replace : bool, default=False
        Uniform sampling with replacement.
    random_state : int, Generator, RandomState or None
        Seed.

    Returns
    -------
    S : SketchOperator

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.sketching import make_sketch
    >>> S = make_sketch("countsketch", 50, 1000, random_state=0)
    >>> S.shape
    (50, 1000)
    >>> A = S.toarray()
    >>> bool(np.all(np.count_nonzero(A, axis=0) == 1))
    True
    """
    n, size = int(n), int(size)
    if kind in ("orthogonal", "srht", "srdct") or (kind == "uniform" and not replace):
        if size > n:
            raise ValueError(
                f"size={size} exceeds the sketched dimension n={n}; kind={kind!r}"
                f"{' without replacement' if kind == 'uniform' else ''} needs size <= n "
                "(use 'gaussian', 'countsketch' or replace=True for larger sketches).")
    rng = as_generator(random_state)
    params: dict = {}
    if kind == "gaussian":
        params["seed"] = int(rng.integers(2**62))
    elif kind == "orthogonal":
        G = rng.standard_normal((n, size))
        Q, R = np.linalg.qr(G)
        Q *= np.sign(np.where(np.diag(R) == 0, 1.0, np.diag(R)))[None, :]  # Haar measure
        params.update(Q=Q, scale=math.sqrt(n / size))
    elif kind in ("srht", "srdct"):
        N = 1 << (n - 1).bit_length() if kind == "srht" else n
        params.update(row_seed=int(rng.integers(2**62)),
                      rows=np.sort(rng.choice(N, size=size, replace=False)),
                      N=N, scale=math.sqrt(N / size))
    elif kind == "countsketch":
        params["row_seed"] = int(rng.integers(2**62))
    elif kind == "uniform":
        rows = rng.integers(0, n, size=size) if replace else rng.choice(n, size, replace=False)
        params.update(rows=np.sort(rows), scales=np.full(size, math.sqrt(n / size)))
    else:
        if data is None:
            raise ValueError(f"kind={kind!r} needs the data whose leverage scores it samples "
                             "by: pass data=X.")
        if data.shape[0] != n:
            raise ValueError(f"data has {data.shape[0]} rows but n={n}.")
        method = "exact" if kind == "leverage" else "approx"
        lev = to_numpy(leverage_scores(data, method=method, random_state=rng))
        lev = np.asarray(lev, dtype=np.float64)
        total = lev.sum()
        if not total > 0:
            raise ValueError("data has rank 0 (all zero); leverage sampling is undefined.")
        probs = lev / total
        rows = np.sort(rng.choice(n, size=size, replace=True, p=probs))
        params.update(rows=rows, scales=1.0 / np.sqrt(size * probs[rows]), probs=probs)
    return SketchOperator(kind, (size, n), params)


@public_function(arrays=("X",),
                 params={"kind": [StrOptions(set(KINDS))], "size": COUNT,
                         "axis": [Options(numbers.Integral, {0, 1})], "random_state": SEED,
                         "replace": ["boolean"]},
                 dask="sketchlearn.sketching._dask:sketch_dask")
def sketch(X, kind, size, axis=0, random_state=None, *, replace=False):
    """Sketch the rows (``axis=0``) or the features (``axis=1``) of ``X``.

    ``axis=0`` returns ``S @ X`` of shape ``(size, n_features)``; ``axis=1`` returns
    ``X @ S^T`` of shape ``(n_samples, size)``, where ``S`` is drawn by
    :func:`make_sketch` (``E[S^T S] = I``, so ``E[(SX)^T (SX)] = X^T X``).

    Parameters
    ----------
    X : array or scipy.sparse matrix of shape (n_samples, n_features)
        NumPy, CuPy (computed on its device) or scipy.sparse (not for SRHT/SRDCT).
    kind : str
        See :func:`make_sketch`.
    size : int
        Sketch size.
    axis : {0, 1}, default=0
        0 sketches rows (samples), 1 sketches columns (features).
    random_state : int, Generator, RandomState or None
        Seed.
    replace : bool, default=False
        Uniform sampling with replacement.

    Returns
    -------
    SX : array
        Float32 for float32 input, else float64; the input's array library.

    Examples
    --------
    >>> import numpy as np
    >>> from sketchlearn.sketching import sketch
    >>> X = np.random.default_rng(0).normal(size=(4096, 10))
    >>> SX = sketch(X, "srht", 512, random_state=0)
    >>> SX.shape
    (512, 10)
    >>> G, Gs = X.T @ X, SX.T @ SX
    >>> bool(np.linalg.norm(Gs - G, 2) / np.linalg.norm(G, 2) < 0.5)
    True
    """
    shape = getattr(X, "shape", None)
    if shape is None:
        X = np.asarray(X)
        shape = X.shape
    if len(shape) != 2 and not (len(shape) == 1 and axis == 0):
        raise ValueError(f"X must be 2-D (or 1-D with axis=0); got shape {tuple(shape)}.")
    if 0 in tuple(shape):
        raise ValueError(_empty_message(shape))
    data = None
    if kind in _NEEDS_DATA:
        data = X if axis == 0 else (X.T if not sp.issparse(X) else X.T.tocsr())
        if len(shape) == 1:
            data = get_namespace(X).reshape(X, (-1, 1))
    S = make_sketch(kind, size, shape[axis], data=data, replace=replace,
                    random_state=random_state)
    return S.apply(X, axis=axis)

