"""Segment log-sum-exp, softmax and log_softmax of NumPy arrays on the lsecore kernel: one read of ``a``."""

from __future__ import annotations

import math

import numpy as np

from lsearray._executors.narrow import narrowed
from lsecore import _kernel

__all__ = ["id_range", "logsumexp", "normalized"]

id_range = _kernel.id_range


def _as_3d(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` as (before, axis, after): a view wherever NumPy can merge the axes around
    ``axis`` without a copy."""
    return x.reshape(math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:]))


def _partials(a3: np.ndarray, ids: np.ndarray, num_segments: int, b3: np.ndarray | None,
              tau: float, sorted: bool, at_max: bool = False) -> np.ndarray:
    """The (before, segment, after, 4) partials ``(m, w, t, c)`` of ``a3`` grouped by ``ids``
    along its middle axis; ``at_max``: with each segment's max as ``m`` and its maximal terms
    in ``w`` (as softmax divides by them), which unsorted ids take one more read for."""
    n0, _, n2 = a3.shape
    parts = np.zeros((n0, num_segments, n2, 4))
    parts[..., 0] = -np.inf
    top = None
    if at_max and not sorted:  # runs of sorted ids are reduced against their max anyway
        top = np.full((n0, num_segments, n2), -np.inf)
        with np.errstate(invalid="ignore"):  # a nan max is the segment's, without a warning
            if n0 == n2 == 1:  # the one-dimensional case, which NumPy's ufunc.at does fastest
                np.maximum.at(top.reshape(-1), ids, a3.reshape(-1))
            else:
                np.maximum.at(top, (slice(None), ids), a3)
        parts[..., 0] = top
    _kernel.segment_partials(a3, ids, parts, tau, b3, sorted, top)
    return parts


def _recompute(a3: np.ndarray, ids: np.ndarray, b3: np.ndarray | None, tau: float,
               out: np.ndarray, refine: np.ndarray) -> None:
    """Replace the flagged results of ``out`` (before, segment, after) by the accurate tier's,
    each from its segment's elements, gathered by one counting pass over ``ids``."""
    flagged = np.argwhere(refine)
    segments = np.zeros(out.shape[1], dtype=bool)
    segments[flagged[:, 1]] = True
    rows = np.flatnonzero(segments[ids])
    rows = rows[np.argsort(ids[rows], kind="stable")]
    start = np.zeros(out.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(ids[rows], minlength=out.shape[1]), out=start[1:])
    values = out[refine]
    _kernel.segment_exact(a3, rows.astype(np.int64, copy=False), start,
                          np.ascontiguousarray(flagged, dtype=np.int64), tau, values, b3)
    out[refine] = values


def logsumexp(a: np.ndarray, ids: np.ndarray, num_segments: int, axis: int,
              b: np.ndarray | None, tau: float, sorted: bool) -> np.ndarray:
    """The log-sum-exp of ``a`` (float32 or float64) within the segments ``ids`` (int64, each
    in ``[0, num_segments)``) along ``axis``, weighted by ``b`` (float64, ``a``'s shape, or
    None): ``a``'s shape with ``axis`` of length ``num_segments``, in ``a``'s dtype, each
    result within an ulp (flagged ones recomputed by the accurate tier)."""
    a3 = _as_3d(a, axis)
    b3 = None if b is None else _as_3d(b, axis)
    parts = _partials(a3, ids, num_segments, b3, tau, sorted)
    out = np.empty(parts.shape[:3])
    refine = np.empty(parts.shape[:3], dtype=np.uint8)
    max_weight = 0.0 if b is None or b.size == 0 else float(np.max(np.abs(b)))
    _kernel.segment_finalize(parts.reshape(-1, 4), tau, out.reshape(-1), refine.reshape(-1),
                             a.dtype.itemsize, a.dtype == np.float32, float(a.shape[axis]),
                             max_weight if math.isfinite(max_weight) else 0.0)
    refine = refine.view(bool)
    if refine.any():
        _recompute(a3, ids, b3, tau, out, refine)
    shape = a.shape[:axis] + (num_segments,) + a.shape[axis + 1:]
    return narrowed(out.reshape(shape), a.dtype)


def normalized(a: np.ndarray, ids: np.ndarray, num_segments: int, axis: int, tau: float,
               sorted: bool, log_mode: bool) -> np.ndarray:
    """softmax (or, with ``log_mode``, log_softmax) of ``a`` within the segments ``ids``
    along ``axis``, shaped and typed like ``a``: the partials' one read (log_softmax: after
    the segments' maxima, so that its largest outputs, near 0, keep their bits), then one
    pass that reads ``a`` again and writes the result."""
    a3 = _as_3d(a, axis)
    parts = _partials(a3, ids, num_segments, None, tau, sorted, at_max=log_mode)
    m, w, t, c = (np.ascontiguousarray(parts[..., k]) for k in range(4))
    msl = np.empty(m.shape + (3,))
    msl[..., 0] = m
    if log_mode:
        log_total = np.empty(m.size)
        _kernel.finalize(m.reshape(-1), w.reshape(-1), t.reshape(-1), c.reshape(-1), tau,
                         np.empty(m.size), None, log_total)
        msl[..., 1] = log_total.reshape(m.shape)
        msl[..., 2] = 0.0
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            # (w + t) + c as total + low, the sum's rounding, which each division corrects for
            top = w + t
            back = top - w
            lo = (w - (top - back)) + (t - back) + c
            total = top + lo
            msl[..., 1] = total
            msl[..., 2] = np.where(np.isfinite(total), lo - (total - top), 0.0)
    out = np.empty(a3.shape, dtype=a.dtype)
    _kernel.segment_normalize(a3, ids, msl, out, tau, log_mode)
    return out.reshape(a.shape)
