"""Max-sliced Wasserstein between Dask point clouds.

The direction comes from the in-memory ascent on a uniform sample of rows (bottom-k of
per-row keys, one pass per cloud), optionally refined on the full data by batched
evaluations (central differences along a tangent basis, then a Newton step), and
``W_p`` along it is one of the two modes of :mod:`._sliced_dask` (the distributed
sample sort, or quantile sketches) with a single direction.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .._array_api import get_namespace, move_to, to_numpy
from .._dask import reduce_row_chunks
from .._random import as_generator, row_keyed
from ._quantile_sketch import SketchedDistance
from ._sliced_dask import (
    _check_mode,
    _check_total,
    _chunk_weights,
    _clouds,
    _exact_wpp,
    _sketch_root_bound,
    _sketch_wpp,
    _sketches,
    sketch_error_bounds,
)

__all__ = ["max_sliced_wasserstein_dask"]

# Default rows per cloud of the sample on which the direction is searched.
MAX_SLICED_SAMPLE = 2**15


class _RowSample:
    """A uniform sample of ``size`` rows without replacement (bottom-k: the rows of the
    ``size`` smallest keys, one key per global row), so that it does not depend on the
    chunking; also the total weight. Every row (and weight) is checked on the way."""

    def __init__(self, size, seed, stream, name, wname):
        self.size, self.seed, self.stream = size, seed, stream
        self.name, self.wname = name, wname

    def partial(self, Zb, wb, start, index):
        xp = get_namespace(Zb)
        rows = Zb.shape[0]
        Z = xp.astype(Zb, xp.float64)
        if not bool(xp.all(xp.isfinite(Z))):
            raise ValueError(f"{self.name} contains NaN or infinity (rows {start} to "
                             f"{start + rows - 1}).")
        w = _chunk_weights(wb, start, self.wname)
        keys = row_keyed(self.seed, self.stream, start, start + rows,
                         lambda g, size: g.random(size))
        keep = (np.arange(rows) if rows <= self.size
                else np.argpartition(keys, self.size - 1)[:self.size])
        picked = np.asarray(to_numpy(xp.take(Z, move_to(keep, xp), axis=0)))
        wk = None if w is None else np.asarray(to_numpy(xp.take(w, move_to(keep, xp))))
        total = float(rows) if w is None else float(xp.sum(w))
        return keys[keep], start + keep, picked, wk, total, rows

    def merge(self, *parts):
        keys = np.concatenate([q[0] for q in parts])
        keep = np.sort(np.arange(keys.shape[0]) if keys.shape[0] <= self.size
                       else np.argpartition(keys, self.size - 1)[:self.size])
        # the kept rows of each part, gathered without stacking all the parts' rows
        ends = np.cumsum([q[0].shape[0] for q in parts])
        which = np.searchsorted(ends, keep, side="right")
        local = keep - np.concatenate([[0], ends[:-1]])[which]
        picks = [local[which == i] for i in range(len(parts))]
        rows = np.concatenate([q[2][j] for q, j in zip(parts, picks, strict=True)])
        w = (None if parts[0][3] is None
             else np.concatenate([q[3][j] for q, j in zip(parts, picks, strict=True)]))
        return (keys[keep], np.concatenate([q[1] for q in parts])[keep], rows, w,
                sum(q[4] for q in parts), sum(q[5] for q in parts))


def _row_sample(Z, w, size, seed, stream, name, wname):
    """The sampled rows in row order, their weights renormalised (None when uniform), and
    whether they are all the rows."""
    # 4 samples a merge: at most 5 sample_size rows held by a merge task
    _, ids, rows, wk, total, n = reduce_row_chunks(_RowSample(size, seed, stream, name, wname),
                                                   Z, w, split_every=4)
    order = np.argsort(ids, kind="stable")
    rows = rows[order]
    if wk is None:
        return rows, None, rows.shape[0] == n
    _check_total(total, n, wname)
    wk = wk[order]
    kept = float(np.sum(wk))
    if kept <= 0:
        raise ValueError(f"The {rows.shape[0]} rows sampled from {name} all have weight 0; "
                         "pass a larger sample_size.")
    return rows, wk / kept, rows.shape[0] == n


def _tangent_basis(theta):
    """Orthonormal basis (d, d - 1) of the tangent space of the sphere at ``theta``."""
    Q = np.linalg.qr(theta[:, None], mode="complete")[0]
    return Q[:, 1:]


class _FullData:
    """``W_p^p`` of both (Dask) clouds along a batch of directions, one sort or one pass
    of sketches per batch; in sketch mode each value keeps its certain bound."""

    def __init__(self, X, Y, a, b, p, quantiles, k, rng):
        self.X, self.Y, self.a, self.b, self.p = X, Y, a, b, p
        self.quantiles, self.k, self.rng = quantiles, k, rng

    def __call__(self, D):
        """``(W_p^p (L,), extras)``: ``extras`` None in exact mode, else per direction
        ``(bound on W_p^p, bound on W_p, rank error)``."""
        if self.quantiles == "exact":
            return _exact_wpp(self.X, self.Y, self.a, self.b, D, np.float64, self.p), None
        sx, sy = _sketches(self.X, self.Y, self.a, self.b, D, np.float64, self.k,
                           int(self.rng.integers(2**31)))
        w = _sketch_wpp(sx, sy, self.p)
        bounds, dw = sketch_error_bounds(sx, sy, self.p, wpp=w)
        rank = np.maximum(sx.rank / sx.total, sy.rank / sy.total)
        extra = [(bounds[l], _sketch_root_bound(w[l], bounds[l:l + 1], dw[l:l + 1], self.p),
                  rank[l])
                 for l in range(D.shape[0])]
        return w, extra


def _refine(evaluate, theta, steps, angle):
    """``steps`` rounds of ascent on the full data from ``theta``: a central-difference
    stencil of half-angle ``angle`` along an orthonormal tangent basis (one batch of
    ``2 (d - 1)`` directions, with ``theta`` itself in the first round's) gives the
    gradient and the diagonal curvature of ``W_p^p`` along the geodesics; the Newton
    step where the curvature is negative (a step of ``angle`` along the gradient
    elsewhere), capped at ``4 angle``, and its half and quarter make a second batch.
    The best direction evaluated so far is kept, so the value never decreases; without
    progress the angle shrinks fourfold. ``max(1, 2 steps)`` batches in all. Returns
    the best ``(theta, W_p^p, extra)``."""
    if steps == 0:
        w, extra = evaluate(theta[None, :])
        return theta, float(w[0]), None if extra is None else extra[0]
    f0 = e0 = None
    for _ in range(steps):
        U = _tangent_basis(theta)
        c, s = math.cos(angle), math.sin(angle)
        stencil = np.concatenate([c * theta + s * U.T, c * theta - s * U.T])
        if f0 is None:  # the starting direction's value comes with the first stencil
            w, extra = evaluate(np.concatenate([theta[None, :], stencil]))
            f0, e0 = float(w[0]), None if extra is None else extra[0]
            w, extra = w[1:], None if extra is None else extra[1:]
        else:
            w, extra = evaluate(stencil)
        k = U.shape[1]
        up, down = w[:k], w[k:]
        grad = (up - down) / (2 * angle)
        curv = (up + down - 2 * f0) / angle**2
        step = np.where(curv < 0, -grad / np.where(curv < 0, curv, -1.0),
                        angle * np.sign(grad))
        size = float(np.linalg.norm(step))
        unit = U @ step / max(size, 1e-300)
        size = min(size, 4 * angle)  # a trust region of a few stencil widths
        candidates, values, extras = [stencil], [w], [extra]
        if size > 0:
            tries = np.stack([math.cos(t * size) * theta + math.sin(t * size) * unit
                              for t in (1.0, 0.5, 0.25)])
            wt, et = evaluate(tries)
            candidates.append(tries)
            values.append(wt)
            extras.append(et)
        D = np.concatenate(candidates)
        W = np.concatenate(values)
        j = int(np.argmax(W))
        if W[j] > f0:
            theta, f0 = D[j] / np.linalg.norm(D[j]), float(W[j])
            e0 = None if extra is None else [e for batch in extras for e in batch][j]
        else:
            angle /= 4
    return theta, f0, e0


def max_sliced_wasserstein_dask(X, Y, a=None, b=None, *, p=2, n_starts=10, max_iter=100,
                                step_size=None, n_restart_projections=200, random_state=None,
                                return_direction=False, sample_size=MAX_SLICED_SAMPLE,
                                refine_steps=0, quantiles="exact", sketch_size=None):
    """:func:`~sketchlearn.transport.max_sliced_wasserstein` for Dask point clouds (called
    by it on Dask input).

    One pass over each cloud gathers a uniform sample of ``sample_size`` rows (keyed by
    global row), the in-memory ascent runs on it with the same parameters and
    generator, and ``W_p`` along the direction found is computed on the full data (one
    sort, or one pass of sketches), after ``refine_steps`` rounds of :func:`_refine`.
    When both samples are whole clouds the in-memory result is returned as it is.
    """
    from ._sliced import max_sliced_wasserstein

    k = _check_mode(quantiles, sketch_size)
    X, Y, a, b, _ = _clouds(X, Y, a, b)
    p, size = float(p), int(sample_size)
    rng = as_generator(random_state)
    # the sample's keys from a copy: the generator reaches the ascent as in memory
    seed = int(copy.deepcopy(rng).integers(2**63))
    Xs, as_, whole_x = _row_sample(X, a, size, seed, 0, "X", "a")
    Ys, bs, whole_y = _row_sample(Y, b, size, seed, 1, "Y", "b")
    value, theta = max_sliced_wasserstein(
        Xs, Ys, as_, bs, p=p, n_starts=n_starts, max_iter=max_iter, step_size=step_size,
        n_restart_projections=n_restart_projections, random_state=rng, return_direction=True)
    if whole_x and whole_y:  # the sample is the data: the in-memory result, exact
        if quantiles == "sketch":
            value = SketchedDistance(value, error_bound=0.0, projection_bounds=np.zeros(1),
                                     rank_error=0.0, sketch_size=k)
        return (value, theta) if return_direction else value
    evaluate = _FullData(X, Y, a, b, p, quantiles, k, rng)
    angle = min(0.05, 2.0 / math.sqrt(min(Xs.shape[0], Ys.shape[0])))
    theta, wpp, extra = _refine(evaluate, np.asarray(theta, dtype=np.float64),
                                int(refine_steps) if X.shape[1] > 1 else 0, angle)
    value = max(wpp, 0.0) ** (1.0 / p)
    if quantiles == "sketch":
        bound, root_bound, rank = extra
        value = SketchedDistance(value, error_bound=root_bound, projection_bounds=[bound],
                                 rank_error=rank, sketch_size=k)
    return (value, theta) if return_direction else value
