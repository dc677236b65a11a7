"""Log-domain Sinkhorn with the source cloud ``X`` (or the cost matrix ``M``) in row
chunks of a Dask array, the target ``Y`` broadcast: the in-memory iterates, one pass
over the chunks per iteration.

The in-memory log domain (:func:`._sinkhorn_log.log_loop`) alternates, at each
epsilon stage ``eps``,

- ``g_j = -eps log sum_i exp((f_i + eps log a_i - C_ij) / eps)`` (a reduction over the
  rows: every chunk holds a share of it), and
- ``f_i = -eps log sum_j exp((g_j + eps log b_j - C_ij) / eps)`` (row ``i`` needs its
  own ``x_i`` and all of ``Y`` and ``g``: local to the chunk holding it).

Per iteration, each chunk gets ``g`` (``m`` numbers), updates its block of ``f``
(kept on the workers, persisted, never gathered), adds its share of the row-marginal
error ``sum_i a_i |exp((f_i - f'_i) / eps) - 1|`` (the stopping rule of the in-memory
loop), and returns, for the next ``g``, its per-column log-sum-exp as a pair
``(max, sum of exponentials relative to that max)``. Pairs merge up a tree by the
stable rule ``m = max(m1, m2)``, ``s = s1 e^((m1 - m)/eps) + s2 e^((m2 - m)/eps)``
(:class:`ColumnLSE`, written without Dask), so ``g`` equals the in-memory
log-sum-exp up to rounding, whatever the chunking. A new epsilon stage starts with one
column pass (the first ``g`` of the stage), as in memory. The per-chunk work is the
Numba (or CuPy) log-sum-exp kernels of the in-memory path: the rows of ``X_k``
against ``Y`` for ``f``, the rows of ``Y`` against ``X_k`` for the column pairs.

The result is a :class:`DaskSinkhornResult` (a :class:`SinkhornResult`): ``f`` a
persisted Dask array chunked like ``X``'s rows (``n`` numbers: it stays on the
workers until computed), ``g`` NumPy, ``cost`` (one more pass), ``error`` and
``n_iter`` floats and ints, and the plan as a lazy Dask array of blocks
``a_i b_j exp((f_i + g_j - C_ij) / reg)``, never computed unless asked;
:meth:`DaskSinkhornResult.plan_matvec` is lazy too.
"""

from __future__ import annotations

import math
import operator
import sys
import uuid
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._array_api import get_namespace, move_to, to_numpy, transposed_copy
from .._dask import DEFAULT_SPLIT_EVERY, aligned_vector, is_dask_array, map_row_chunks, row_chunked
from .._validation import check_array, check_same_n_features, check_weights, user_stacklevel
from ._sinkhorn import (
    _EPS_FACTOR,
    _METRICS,
    SinkhornResult,
    _cost_block,
    _log_weights,
    _plan_block,
    check_cost_source,
)
from ._sinkhorn_log import STAGE_MAX_ITER, STAGE_TOL
from ._sinkhorn_ops import ROW_BLOCK, lse_points_op, lse_rows_op, pairwise_cost

__all__ = ["sinkhorn_dask", "DaskSinkhornResult", "ColumnLSE", "BROADCAST_MAX_BYTES"]

# A Dask Y (or b) is computed and broadcast to every task when it holds at most this
# many bytes; beyond, the call refuses (every worker keeps one copy of Y and of g).
BROADCAST_MAX_BYTES = 2**28


# ---------------------------------------------------------------------------
# the summary: per-column log-sum-exp pairs and the error, written without Dask
# ---------------------------------------------------------------------------

class ColumnLSE:
    """Per-column ``eps log sum_i exp(z_ij / eps)`` over row chunks, as mergeable pairs.

    A summary is ``(err, mx, s, eps)``: ``mx + eps log s`` is the column's
    log-sum-exp over the rows seen (``mx`` its largest term, ``s`` the sum of the
    exponentials relative to it), ``err`` a running sum (the row-marginal error).
    Merging rescales every ``s`` to the largest ``mx``, so every exponential is at most
    1 and no ``eps`` can overflow; a column with no mass anywhere (``mx = -inf``)
    stays ``-inf``.
    """

    @staticmethod
    def leaf(lse, err, eps):
        """The summary of one chunk from its per-column log-sum-exp (its own maximum
        and scaled sum folded into one number: the pair ``(lse, 1)``)."""
        lse = np.asarray(to_numpy(lse), dtype=np.float64)
        return float(err), lse, np.ones_like(lse), float(eps)

    @staticmethod
    def merge(*summaries):
        eps = summaries[0][3]
        mx = summaries[0][1]
        for _, m_k, _, _ in summaries[1:]:
            mx = np.maximum(mx, m_k)
        shift = np.where(np.isfinite(mx), mx, 0.0)
        s = np.zeros_like(mx)
        err = 0.0
        for e_k, m_k, s_k, _ in summaries:
            s = s + s_k * np.exp((m_k - shift) / eps)
            err += e_k
        return err, mx, s, eps

    @staticmethod
    def finalize(summary):
        """``(err, lse)``: the summed error and the per-column log-sum-exp."""
        err, mx, s, eps = summary
        shift = np.where(np.isfinite(mx), mx, 0.0)
        with np.errstate(divide="ignore"):
            return err, shift + eps * np.log(s)


# ---------------------------------------------------------------------------
# per-chunk work (any array library: the kernels dispatch on the chunk's namespace)
# ---------------------------------------------------------------------------

def _chunk_weights(xp, ab, rows, n):
    """The chunk's ``a`` (float64; uniform ``1/n`` when ``a`` was not given)."""
    if ab is None:
        return xp.full((rows,), 1.0 / n, dtype=xp.float64)
    return xp.astype(ab, xp.float64)


def _row_lse(xp, kind, Ab, B, h, eps, power):
    """``eps log sum_j exp((h_j - C_ij) / eps)`` for the chunk's rows."""
    if kind == "points":
        return lse_points_op(xp, Ab, B, h, eps, power)
    return lse_rows_op(xp, Ab, h, eps)


def _col_lse(xp, kind, Ab, B, h, eps, power):
    """``eps log sum_{i in chunk} exp((h_i - C_ij) / eps)`` for every column ``j``."""
    if kind == "points":
        return lse_points_op(xp, B, Ab, h, eps, power)
    return lse_rows_op(xp, transposed_copy(xp, Ab), h, eps)


def _f_block(xp, fb, rows):
    """The chunk's block of ``f`` (``None``: zeros, the cold start)."""
    return xp.zeros((rows,), dtype=xp.float64) if fb is None else move_to(fb, xp)


def _column_pass(Ab, ab, start, index, fb, B, n, eps, power, kind):
    """The chunk's column pairs for ``g`` from its ``f`` block (a stage's first pass)."""
    xp = get_namespace(Ab)
    B = None if B is None else move_to(B, xp)
    la = _log_weights(xp, _chunk_weights(xp, ab, Ab.shape[0], n))
    h = _f_block(xp, fb, Ab.shape[0]) + eps * la
    return ColumnLSE.leaf(_col_lse(xp, kind, Ab, B, h, eps, power), 0.0, eps)


def _iteration(Ab, ab, start, index, fb, B, lb, g, n, eps, power, kind):
    """One Sinkhorn iteration on a chunk: ``(f_next block, summary)``; the summary holds
    the chunk's share of the row-marginal error of ``(f, g)`` and its column pairs of
    the next ``g`` (from ``f_next``)."""
    xp = get_namespace(Ab)
    B = None if B is None else move_to(B, xp)
    a = _chunk_weights(xp, ab, Ab.shape[0], n)
    la = _log_weights(xp, a)
    f = _f_block(xp, fb, Ab.shape[0])
    f_next = -_row_lse(xp, kind, Ab, B, move_to(g, xp) + eps * move_to(lb, xp), eps, power)
    err = float(xp.sum(a * xp.abs(xp.exp((f - f_next) / eps) - 1.0)))
    cols = _col_lse(xp, kind, Ab, B, f_next + eps * la, eps, power)
    return f_next, ColumnLSE.leaf(cols, err, eps)


def _cost_pass(Ab, ab, start, index, fb, B, lb, g, n, reg, power, kind):
    """The chunk's share of ``<P, C>``, in blocks of ``ROW_BLOCK`` rows as in memory."""
    xp = get_namespace(Ab)
    B = None if B is None else move_to(B, xp)
    la = _log_weights(xp, _chunk_weights(xp, ab, Ab.shape[0], n))
    f, g, lb = _f_block(xp, fb, Ab.shape[0]), move_to(g, xp), move_to(lb, xp)
    cost = 0.0
    for s in range(0, Ab.shape[0], ROW_BLOCK):
        C = _cost_block(xp, kind, Ab, B, s, power)
        e = min(s + ROW_BLOCK, Ab.shape[0])
        cost += float(xp.sum(_plan_block(xp, C, f[s:e], g, la[s:e], lb, reg) * C))
    return cost


def _plan_tile(Ab, fb, ab, Bb, gb, lbb, *, n, reg, power, kind, out_dtype):
    """One tile of the plan: the chunk's rows against a block of columns."""
    xp = get_namespace(Ab)
    la = _log_weights(xp, _chunk_weights(xp, ab, Ab.shape[0], n))
    if kind == "points":
        C = pairwise_cost(xp, Ab, move_to(Bb, xp), power)
    else:
        C = xp.astype(Ab, xp.float64)
    P = _plan_block(xp, C, move_to(fb, xp), move_to(gb, xp), la, move_to(lbb, xp), reg)
    return xp.astype(P, out_dtype)


def _matvec_chunk(Ab, ab, fb, start, index, B, lb, g, V, n, reg, power, kind):
    """The chunk's rows of ``P V``, in blocks of ``ROW_BLOCK`` rows."""
    xp = get_namespace(Ab)
    B = None if B is None else move_to(B, xp)
    la = _log_weights(xp, _chunk_weights(xp, ab, Ab.shape[0], n))
    f, g, lb = move_to(fb, xp), move_to(g, xp), move_to(lb, xp)
    V = xp.astype(move_to(V, xp), xp.float64)
    out = []
    for s in range(0, Ab.shape[0], ROW_BLOCK):
        C = _cost_block(xp, kind, Ab, B, s, power)
        e = min(s + ROW_BLOCK, Ab.shape[0])
        out.append(xp.matmul(_plan_block(xp, C, f[s:e], g, la[s:e], lb, reg), V))
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------

def _active_client():
    """The ``distributed.Client`` Dask would compute on now, or None (Dask's default
    scheduler, or one set with ``dask.config.set(scheduler=...)``)."""
    if "distributed" not in sys.modules:
        return None
    from dask.base import get_scheduler
    from distributed import Client

    client = getattr(get_scheduler(), "__self__", None)
    return client if isinstance(client, Client) else None


class _Broadcast:
    """Host arrays shipped once to the workers (``client.scatter``), or wrapped as one
    graph key for Dask's local schedulers, so each task gets a reference, not a copy
    in its own task."""

    def __init__(self, client):
        self.client = client

    def __call__(self, value, everywhere=False):
        if value is None:
            return None
        if self.client is not None:
            return self.client.scatter(value, broadcast=everywhere, hash=False)
        import dask

        return dask.delayed(value, name=f"sinkhorn-{uuid.uuid4().hex}", traverse=False)


def _tree(nodes, split_every=DEFAULT_SPLIT_EVERY):
    import dask

    merge = dask.delayed(ColumnLSE.merge, pure=True)
    while len(nodes) > 1:
        nodes = [merge(*nodes[i:i + split_every]) if len(nodes[i:i + split_every]) > 1
                 else nodes[i] for i in range(0, len(nodes), split_every)]
    return nodes[0]


def _stack_blocks(parts, chunks):
    import dask.array as da

    return da.concatenate([da.from_delayed(p, shape=(r,), dtype=np.float64)
                           for p, r in zip(parts, chunks, strict=True)])


def _size(nbytes):
    return f"{nbytes / 2**20:.1f} MiB" if nbytes >= 2**20 else f"{int(nbytes)} bytes"


def _broadcast_target(v, name):
    """A Dask ``Y`` or ``b`` (broadcast to every task) computed, when small enough."""
    if not is_dask_array(v):
        return v
    v = row_chunked(v, name)
    if v.nbytes > BROADCAST_MAX_BYTES:
        raise ValueError(
            f"{name} is a Dask array of {_size(v.nbytes)}; the distributed Sinkhorn "
            f"sends the target cloud to every task and accepts at most "
            f"{_size(BROADCAST_MAX_BYTES)}. Pass the larger cloud as X (the "
            "problem is symmetric: swap X and Y, a and b, and the potentials f and g), "
            f"or subsample {name}.")
    return v.compute()


def _check_dask_weights(a, n):
    """``a`` (Dask, chunked like the rows) non-negative and summing to one, as
    :func:`check_weights` requires in memory (one small pass)."""
    import dask

    lo, total = dask.compute(a.min(), a.sum())
    lo, total = float(lo), float(total)
    if not (math.isfinite(lo) and math.isfinite(total)):
        raise ValueError("a contains NaN or infinity; weights must be finite.")
    if lo < 0:
        raise ValueError("a has negative entries; weights must be non-negative.")
    if total <= 0:
        raise ValueError("a sums to 0 (all weights are zero); at least one must be "
                         "positive.")
    if abs(total - 1.0) > 1e-6 * max(1, n) ** 0.5 + 1e-12 and abs(total - 1.0) > 1e-5:
        raise ValueError(f"a sums to {total:.6g}, not 1; pass a / a.sum() to normalise.")


def _as_row_chunked(A, name, others):
    """``A`` (the side cut into row chunks) as a Dask array with known row chunks."""
    if not is_dask_array(A):
        raise TypeError(
            f"{name} is in memory but {others} is a Dask array; the distributed Sinkhorn "
            f"cuts {name} into row chunks and keeps the target side in memory: pass {name} "
            f"as a Dask array (dask.array.from_array({name}, chunks=(rows, -1))), or "
            "compute the Dask arguments if everything fits in memory.")
    A = row_chunked(A, name)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got a Dask array of shape {A.shape}.")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {A.shape}).")
    return A


def _dask_names(**values):
    return " and ".join(name for name, v in values.items() if is_dask_array(v)) or \
        "warm_start"


def sinkhorn_dask(a=None, b=None, M=None, *, X=None, Y=None, reg=0.05, metric="sqeuclidean",
                  method="auto", tol=1e-6, max_iter=10_000, eps_scaling=True,
                  warm_start=None, return_plan="auto", sns_switch_tol=1e-2, sns_keep=10,
                  mirror_step=1.0, mirror_check_every=10, reg_m=None):
    """:func:`sinkhorn` with Dask arrays (see the module docstring); reached through
    :func:`sinkhorn`, which has checked the parameters."""
    import dask

    if reg_m is not None:
        raise TypeError("Unbalanced transport (reg_m) has no distributed version; compute "
                        "the arrays (x.compute()) if they fit in memory.")
    if method not in ("auto", "log"):
        raise TypeError(f"method={method!r} has no distributed version; Dask arrays use the "
                        "log domain (method='auto' or 'log'), which needs neither the "
                        "dense cost nor the dense plan.")
    check_cost_source(M, X, Y, reg, method)
    reg, tol = float(reg), float(tol)
    if M is not None:
        A = _as_row_chunked(M, "M", _dask_names(a=a, b=b))
        kind, B, power = "matrix", None, 1.0
        n, m = A.shape
        cmax, cmin = (float(v) for v in dask.compute(A.max(), A.min()))
        if not (math.isfinite(cmax) and math.isfinite(cmin)):
            raise ValueError("M contains NaN or infinity; every cost must be finite (use a "
                             "large finite cost to forbid a pair).")
    else:
        if X is None or Y is None:
            raise ValueError("Give a cost matrix M, or both point clouds X and Y.")
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")
        A = _as_row_chunked(X, "X", _dask_names(Y=Y, a=a, b=b))
        B = check_array(_broadcast_target(Y, "Y"), "Y")
        check_same_n_features(A, B)
        kind, power = "points", _METRICS[metric]
        n, m = A.shape[0], B.shape[0]
        lo, hi = dask.compute(A.min(axis=0), A.max(axis=0))
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("X contains NaN or infinity; every coordinate must be "
                             "finite.")
        bx = get_namespace(B)
        lo = np.minimum(np.asarray(to_numpy(lo), np.float64),
                        to_numpy(bx.astype(bx.min(B, axis=0), bx.float64)))
        hi = np.maximum(np.asarray(to_numpy(hi), np.float64),
                        to_numpy(bx.astype(bx.max(B, axis=0), bx.float64)))
        cmax = float(np.sum((hi - lo) ** 2)) ** (power / 2)
        cmin = 0.0
    if a is not None:
        a = aligned_vector(a, A, "a")
        _check_dask_weights(a, n)
        a = a.astype(np.float64)
    b = _broadcast_target(b, "b")
    b = np.full(m, 1.0 / m) if b is None else \
        np.asarray(to_numpy(check_weights(b, m, "b", dtype=np.float64)))
    lb = _log_weights(np, b)

    if warm_start is not None:
        f0, g0 = warm_start
        g = np.asarray(to_numpy(g0), dtype=np.float64)
        if getattr(f0, "shape", None) != (n,) or g.shape != (m,):
            raise ValueError(f"warm_start must be (f, g) of shapes ({n},) and ({m},).")
        f0 = aligned_vector(f0, A, "warm_start[0]").astype(np.float64)
        f = list(dask.persist(*f0.to_delayed().ravel()))
    else:
        f = [None] * len(A.chunks[0])  # zeros, made by each task
        g = np.zeros(m)
    stages = [reg]
    if warm_start is None and eps_scaling:
        eps = cmax - cmin
        while eps > reg / _EPS_FACTOR:
            stages.insert(-1, eps)
            eps *= _EPS_FACTOR

    client = _active_client()
    share = _Broadcast(client)
    if a is not None:
        a = a.persist()
    Bref, lbref = share(B, everywhere=True), share(lb, everywhere=True)
    chunks = A.chunks[0]

    def column_pass(f, eps):
        nodes = map_row_chunks(_column_pass, A, a, per_chunk=f,
                               context=(Bref, n, eps, power, kind))
        (summary,) = dask.compute(_tree(nodes))
        return -ColumnLSE.finalize(summary)[1]

    n_iter, err = 0, math.inf
    for k, eps in enumerate(stages):
        last = k == len(stages) - 1
        stage_tol = tol if last else max(tol, STAGE_TOL)
        stage_iter = 0
        if n_iter < max_iter:  # a stage starts from the column update of f, as in memory
            g = column_pass(f, eps)
        while n_iter < max_iter and (last or stage_iter < STAGE_MAX_ITER):
            # per chunk: the iteration, then its f block (kept on the worker: the next
            # iteration's task for the chunk depends on it) and its summary (merged)
            tasks = map_row_chunks(_iteration, A, a, per_chunk=f,
                                   context=(Bref, lbref, share(g), n, eps, power, kind))
            f_next = [dask.delayed(operator.getitem, pure=True)(t, 0) for t in tasks]
            top = _tree([dask.delayed(operator.getitem, pure=True)(t, 1) for t in tasks])
            *f_next, top = dask.persist(*f_next, top)
            step_err, cols = ColumnLSE.finalize(top.compute())
            del top, tasks
            n_iter += 1
            stage_iter += 1
            err = step_err
            if not math.isfinite(err):
                raise FloatingPointError(
                    "Sinkhorn produced non-finite potentials; check that a and b have "
                    "positive mass where the cost is finite.")
            if err <= stage_tol:
                break
            if n_iter < max_iter and (last or stage_iter < STAGE_MAX_ITER):
                f, g = f_next, -cols  # the next iteration's g comes from f_next
        if n_iter >= max_iter:
            if not last:  # out of iterations before reg itself was reached
                err = math.inf
            break

    converged = err <= tol
    if not converged:
        reached = f"with a marginal error of {err:.3g}" if math.isfinite(err) else \
            "in an epsilon-scaling stage, before reg itself (error inf)"
        warnings.warn(
            f"Sinkhorn stopped after {n_iter} iterations {reached} (tol={tol:g}); "
            "increase max_iter or reg, or loosen tol.", ConvergenceWarning,
            stacklevel=user_stacklevel())
    gref = share(g)
    parts = map_row_chunks(_cost_pass, A, a, per_chunk=f,
                           context=(Bref, lbref, gref, n, reg, power, kind))
    cost = float(sum(dask.compute(*parts)))
    if f[0] is None:  # no iteration ran (max_iter=0): the cold start's zeros
        import dask.array as da

        f = da.zeros((n,), chunks=(chunks,), dtype=np.float64)
    else:
        f = _stack_blocks(f, chunks)
    dtype = A.dtype if A.dtype == np.float32 and (B is None or B.dtype == np.float32) \
        else np.dtype(np.float64)
    result = DaskSinkhornResult(cost=cost, plan=None, f=f, g=g, n_iter=n_iter, error=err,
                                converged=converged, reg=reg,
                                _source=(kind, A, a, B, b, lb, n, power, dtype))
    if return_plan in ("auto", True):
        result.plan = result.lazy_plan()
    return result


class DaskSinkhornResult(SinkhornResult):
    """:class:`SinkhornResult` of :func:`sinkhorn` on Dask arrays.

    ``f`` is a Dask array chunked like the rows of ``X`` (or ``M``), persisted on the
    workers; ``g`` is NumPy; ``plan`` (unless ``return_plan=False``) is a lazy Dask
    array of shape ``(n, m)``, never computed unless asked (``plan[:10].compute()``,
    ``plan.sum(axis=1)`` and so on compute only what they need).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sketchlearn.transport import sinkhorn
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.normal(size=(300, 2)), chunks=(100, 2))
    >>> res = sinkhorn(X=X, Y=rng.normal(size=(40, 2)), reg=0.1)
    >>> type(res.f).__name__, res.plan.shape, res.converged
    ('Array', (300, 40), True)
    >>> bool(np.allclose(res.plan.sum(axis=0).compute(), 1 / 40))
    True
    """

    def lazy_plan(self):
        """The plan ``a_i b_j exp((f_i + g_j - C_ij) / reg)`` as a lazy Dask array: the
        rows of ``X`` (or ``M``) against column blocks sized by Dask's
        ``array.chunk-size``.

        Returns
        -------
        plan : dask.array.Array of shape (n, m)

        Examples
        --------
        >>> import numpy as np
        >>> import dask.array as da
        >>> from sketchlearn.transport import sinkhorn
        >>> rng = np.random.default_rng(0)
        >>> X = da.from_array(rng.normal(size=(200, 2)), chunks=(50, 2))
        >>> res = sinkhorn(X=X, Y=rng.normal(size=(30, 2)), reg=0.2, return_plan=False)
        >>> res.lazy_plan()[:5].compute().shape
        (5, 30)
        """
        import dask
        import dask.array as da

        kind, A, a, B, b, lb, n, power, dtype = self._source
        m = self.g.shape[0]
        f = self.f
        if a is None:
            a = da.full((n,), 1.0 / n, chunks=(A.chunks[0],), dtype=np.float64)
        if kind == "points":
            target = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
            cols = int(min(m, max(1, target // (8 * max(A.chunks[0])))))
        else:
            cols = A.chunks[1]  # the plan's tiles are M's chunks
        gd = da.from_array(self.g, chunks=(cols,))
        lbd = da.from_array(lb, chunks=(cols,))
        common = dict(dtype=dtype, concatenate=True, n=n, reg=self.reg, power=power,
                      kind=kind, out_dtype=dtype)
        if kind == "points":
            Bd = da.from_array(B, chunks=(cols, -1))
            return da.blockwise(_plan_tile, "ij", A, "ik", f, "i", a, "i", Bd, "jk", gd,
                                "j", lbd, "j", **common)
        return da.blockwise(_plan_tile, "ij", A, "ij", f, "i", a, "i", None, None, gd, "j",
                            lbd, "j", **common)

    def plan_matvec(self, V):
        """``P @ V`` as a lazy Dask array, chunked like the rows of ``X``, without forming
        ``P`` (blocks of rows on each chunk).

        Parameters
        ----------
        V : array of shape (m,) or (m, k)
            In memory (it goes to every task).

        Returns
        -------
        PV : dask.array.Array of shape (n,) or (n, k)

        Examples
        --------
        >>> import numpy as np
        >>> import dask.array as da
        >>> from sketchlearn.transport import sinkhorn
        >>> rng = np.random.default_rng(0)
        >>> X = da.from_array(rng.normal(size=(200, 2)), chunks=(50, 2))
        >>> res = sinkhorn(X=X, Y=rng.normal(size=(30, 2)), reg=0.2)
        >>> bool(np.allclose(res.plan_matvec(np.ones(30)).compute(), 1 / 200))
        True
        """
        import dask.array as da

        kind, A, a, B, b, lb, n, power, dtype = self._source
        V = np.asarray(to_numpy(V)) if hasattr(V, "shape") else np.asarray(V)
        if V.ndim not in (1, 2) or V.shape[0] != self.g.shape[0]:
            raise ValueError(f"V must have shape ({self.g.shape[0]},) or "
                             f"({self.g.shape[0]}, k); got {V.shape}.")
        share = _Broadcast(None)
        parts = map_row_chunks(_matvec_chunk, A, a, self.f,
                               context=(share(B), share(lb), share(self.g), share(V), n,
                                        self.reg, power, kind))
        tail = V.shape[1:]
        return da.concatenate([da.from_delayed(p, shape=(r, *tail), dtype=np.float64)
                               for p, r in zip(parts, A.chunks[0], strict=True)])
