"""Segment log-sum-exp and softmax of NumPy arrays: each segment's elements gathered and reduced by the kernel's functions."""

from __future__ import annotations

import numpy as np

__all__ = ["logsumexp", "normalized"]


def _segments(ids: np.ndarray, num_segments: int) -> list[np.ndarray]:
    """The positions of each segment's elements, in their order (a stable sort of ids)."""
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(num_segments + 1))
    return [order[bounds[k]:bounds[k + 1]] for k in range(num_segments)]


def logsumexp(a: np.ndarray, ids: np.ndarray, num_segments: int, axis: int, b: np.ndarray | None,
              tau: float, sorted: bool) -> np.ndarray:
    """``tau log(sum(b exp(a / tau)))`` of each segment along ``axis``, in ``a``'s dtype:
    ``a`` float32 or float64, ``ids`` intp in ``[0, num_segments)``, ``b`` None or float64
    of ``a``'s shape, ``sorted`` a hint."""
    from lsearray import logsumexp as lse

    shape = a.shape[:axis] + (num_segments,) + a.shape[axis + 1:]
    out = np.empty(shape, dtype=a.dtype)
    for k, where in enumerate(_segments(ids, num_segments)):
        part = np.take(a, where, axis=axis)
        weights = None if b is None else np.take(b, where, axis=axis).astype(a.dtype)
        out[(slice(None),) * axis + (k,)] = lse(part, axis=axis, b=weights, temperature=tau)
    return out


def normalized(a: np.ndarray, ids: np.ndarray, num_segments: int, axis: int, tau: float,
               sorted: bool, log_mode: bool) -> np.ndarray:
    """Softmax (or, with ``log_mode``, log-softmax) within each segment along ``axis``,
    shaped and typed like ``a``."""
    from lsearray import log_softmax, softmax

    func = log_softmax if log_mode else softmax
    out = np.empty_like(a)
    for where in _segments(ids, num_segments):
        index = (slice(None),) * axis + (where,)
        out[index] = func(np.take(a, where, axis=axis), axis=axis, temperature=tau)
    return out
