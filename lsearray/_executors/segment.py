"""Segment log-sum-exp and softmax in array-API operations, on an executor's two scatter primitives."""

from __future__ import annotations

import math
import operator
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from lsearray._executors.array_api_lse import finite_or_zero
from lsearray._validation import as_namespace_array, bad_axis, real_floating, temperature_value

__all__ = ["Segmented", "axis_of", "checked_ids", "finalize", "merge_along", "normalized",
           "normalized_from", "prepared", "restored", "state"]


class Segmented(NamedTuple):
    """Validated operands, the segment axis moved to the front: ``a`` (n, ...), ``ids``
    (n,) integers in ``[0, k)`` (unchecked while traced), ``b`` None or like ``a``."""

    a: Any
    ids: Any
    k: int
    axis: int
    b: Any
    tau: float


def axis_of(axis: Any, ndim: int, shape: tuple, func: str) -> int:
    try:
        axis = operator.index(axis) if not isinstance(axis, bool) else None
    except TypeError:
        axis = None
    if axis is None:
        raise bad_axis(func, axis, "an integer (an axis of a)")
    if ndim == 0:
        raise ValueError(f"{func}: a must have at least one axis to segment; got a 0-d array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{func}: axis must be an axis of a, in [{-ndim}, {ndim}); got {axis} "
                         f"for a of shape {shape}")
    return axis % ndim


def checked_ids(ex: Any, ids: Any, n: int, num_segments: Any, readable: bool, func: str,
                device: Any) -> tuple[Any, int]:
    """``ids`` checked (1-d, integer, of length ``n``, and where their values can be read
    in ``[0, num_segments)``, their range from the executor ``ex``'s ``id_range``) and the
    number of segments."""
    xp = ex.xp
    ids = as_namespace_array(xp, ids, device)
    if not xp.isdtype(ids.dtype, "integral"):
        raise TypeError(f"{func}: segment_ids must be integers; got an array of dtype {ids.dtype}")
    if ids.ndim != 1 or ids.shape[0] != n:
        raise ValueError(f"{func}: segment_ids must be 1-d of length a.shape[axis] = {n}; got "
                         f"shape {tuple(ids.shape)}")
    if num_segments is not None:
        try:
            if isinstance(num_segments, bool):
                raise TypeError
            num_segments = operator.index(num_segments)
        except TypeError:
            raise TypeError(f"{func}: num_segments must be a non-negative int or None; got "
                            f"{type(num_segments).__name__}") from None
        if num_segments < 0:
            raise ValueError(f"{func}: num_segments must be a non-negative int; got {num_segments}")
    if not readable:
        if num_segments is None:
            raise ValueError(f"{func}: num_segments must be given (a static int) when segment_ids "
                             "are traced, as for jax.ops.segment_sum")
        return ids, num_segments
    low, high = ex.id_range(ids) if n else (0, -1)
    if num_segments is None:
        num_segments = high + 1
    if low < 0 or high >= num_segments:
        raise ValueError(f"{func}: segment_ids must lie in [0, num_segments) = [0, {num_segments}); "
                         f"got ids from {low} to {high}")
    return ids, num_segments


def prepared(ex: Any, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any, temperature: Any,
             func: str) -> Segmented:
    """The operands of a segment function checked, ``a`` (and ``b`` broadcast to it) of one
    real floating dtype with the axis moved to the front."""
    xp = ex.xp
    tau = temperature_value(temperature, func)
    device = ex.operand_device(a, b)
    a = real_floating(xp, a, "a", func, device)
    axis = axis_of(axis, a.ndim, tuple(a.shape), func)
    # ids of another library (NumPy ids beside torch or JAX arrays) are concrete values
    readable = ex.readable(a) and (not is_array_api_obj(ids) or array_namespace(ids) is not xp
                                   or ex.readable(ids))
    ids, k = checked_ids(ex, ids, a.shape[axis], num_segments, readable, func, device)
    # the default integer: what every library's scatter and take accept as indices
    index = xp.__array_namespace_info__().default_dtypes(device=device)["integral"]
    ids = ids if ids.dtype == index else xp.astype(ids, index)
    if b is not None:
        b = real_floating(xp, b, "b", func, device)
        try:
            shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
        except ValueError:
            shape = None
        if shape != tuple(a.shape):
            raise ValueError(f"{func}: b must broadcast to a's shape {tuple(a.shape)}; got shape "
                             f"{tuple(b.shape)}")
        dtype = xp.result_type(a.dtype, b.dtype)
        a = xp.astype(a, dtype, copy=False)
        b = _to_front(xp, xp.broadcast_to(xp.astype(b, dtype, copy=False), tuple(a.shape)), axis)
    return Segmented(_to_front(xp, a, axis), ids, k, axis, b, tau)


def _gathered(xp: ModuleType, x: Any, ids: Any) -> Any:
    return xp.take(x, ids, axis=0)


def state(ex: Any, p: Segmented) -> tuple[Any, Any]:
    """``(m, s)`` of each segment, shaped ``(k, ...)``: ``m`` the max of the elements of
    nonzero weight (-inf for none), not differentiated (the shift cancels), and
    ``s = sum(b exp((a - shift(m)) / tau))``; an element of weight 0 adds exactly 0."""
    xp = ex.xp
    a = p.a if p.b is None else xp.where(p.b != 0, p.a, xp.full_like(p.a, -math.inf))
    m = ex.stop_gradient(ex.segment_max(a, p.ids, p.k))
    w = xp.exp((p.a - _gathered(xp, finite_or_zero(m, xp), p.ids)) / p.tau)
    if p.b is not None:
        w = xp.where(p.b == 0, xp.zeros_like(w), p.b * w)
    return m, ex.segment_sum(w, p.ids, p.k)


def finalize(xp: ModuleType, m: Any, s: Any, tau: float) -> Any:
    """``shift(m) + tau log(s)``: -inf for an empty sum, nan for a negative or nan one, +inf
    for an infinite one; the log only of positive sums (no warning, no nan gradient)."""
    positive = s > 0
    special = xp.where(s == 0, xp.full_like(s, -math.inf), xp.full_like(s, math.nan))
    return xp.where(positive, finite_or_zero(m, xp) + tau * xp.log(xp.where(positive, s, xp.ones_like(s))),
                    special)


def merge_along(xp: ModuleType, m: Any, s: Any, axis: int, tau: float) -> tuple[Any, Any]:
    """The ``(m, s)`` of parts stacked along ``axis`` merged into one (length 1 along it),
    each part's sum rescaled to the larger max; an empty part adds exactly 0, even where
    its scale overflows."""
    top = xp.max(m, axis=axis, keepdims=True)
    r = xp.exp((finite_or_zero(m, xp) - finite_or_zero(top, xp)) / tau)
    s = xp.where(s == 0, xp.zeros_like(s), s * r)
    return top, xp.sum(s, axis=axis, keepdims=True)


def normalized_from(xp: ModuleType, a: Any, m: Any, s: Any, tau: float, log: bool) -> Any:
    """Softmax (or log-softmax) of the elements ``a`` given their segments' ``m`` and ``s``
    (gathered to ``a``'s shape): ``w / s``, or ``(a - shift(m)) / tau - log(s)`` (no
    cancellation of a large shift), where ``s`` is positive and finite. Elsewhere the
    values `lsearray.softmax` and `lsearray.log_softmax` give a slice: nan through a
    segment that is all -inf (``s == 0``) or holds a nan; with a ``+inf`` (``s`` infinite)
    all nan for softmax, and for log-softmax nan at the ``+inf`` elements, -inf at others."""
    z = (a - finite_or_zero(m, xp)) / tau
    normal = xp.isfinite(s) & (s > 0)
    safe = xp.where(normal, s, xp.ones_like(s))
    nan = xp.full_like(z, math.nan)
    if not log:
        return xp.where(normal, xp.exp(z) / safe, nan)
    inf = xp.where(a == math.inf, nan, xp.full_like(z, -math.inf))
    return xp.where(normal, z - xp.log(safe), xp.where(s == math.inf, inf, nan))


def normalized(ex: Any, p: Segmented, log: bool) -> Any:
    """Softmax (or log-softmax) within segments, shaped like ``p.a``: see `normalized_from`."""
    xp = ex.xp
    m, s = state(ex, p)
    return normalized_from(xp, p.a, _gathered(xp, m, p.ids), _gathered(xp, s, p.ids), p.tau, log)


def _to_front(xp: ModuleType, x: Any, axis: int) -> Any:
    """``x`` with ``axis`` moved to the front; itself where it is there already (torch's
    vmap has no batching rule for moveaxis)."""
    return x if axis == 0 else xp.moveaxis(x, axis, 0)


def restored(xp: ModuleType, x: Any, axis: int) -> Any:
    """A result back with its segment axis at ``axis``."""
    return x if axis == 0 else xp.moveaxis(x, 0, axis)

