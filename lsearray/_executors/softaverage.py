"""The softmax-weighted average's ``(max, sum w, sum w v)`` state in array-API operations."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from lsearray._executors.array_api_lse import finite_or_zero
from lsearray._validation import bad_axis, real_floating, temperature_value

__all__ = ["Average", "average_of", "batch_state", "finalize", "merge_along", "merge_pair",
           "prepared_operands"]


class Average(NamedTuple):
    """The state of a softmax-weighted average over a set of elements of each slice: ``m``
    their max logit, ``s = sum(exp((a - shift(m)) / tau))`` and ``acc = sum(exp(...) * v)``,
    where ``shift(m)`` is ``m`` where finite and 0 elsewhere (an all ``-inf`` set then sums
    to exactly 0, a ``+inf`` or nan logit makes ``s`` inf or nan). ``m`` and ``s`` are shaped
    like the logits with the reduced axis of length 1, ``acc`` like the values."""

    m: Any
    s: Any
    acc: Any


def prepared_operands(xp: ModuleType, a: Any, v: Any, axis: Any, temperature: Any,
                      func: str, device: Any = None) -> tuple[Any, Any, int, float]:
    """``(a, v, axis, tau)`` checked: real arrays of one floating dtype, ``a`` broadcast to the
    common shape of ``a.shape`` and ``v.shape[:a.ndim]``, ``v`` to that shape plus its own
    trailing feature axes, ``axis`` an axis of ``a`` normalized."""
    tau = temperature_value(temperature, func)
    a = real_floating(xp, a, "a", func, device)
    v = real_floating(xp, v, "v", func, device)
    if isinstance(axis, bool) or not isinstance(axis, int):
        try:
            axis = axis.__index__()
        except (AttributeError, TypeError):
            raise bad_axis(func, axis, "an integer (an axis of a)") from None
    if a.ndim == 0:
        raise ValueError(f"{func}: a must have at least one axis to reduce; got a 0-d array")
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"{func}: axis must be an axis of a, in [{-a.ndim}, {a.ndim}); got {axis} "
                         f"for a of shape {tuple(a.shape)}")
    if v.ndim < a.ndim:
        raise ValueError(f"{func}: v must have a's axes first and then optional feature axes; "
                         f"got a of shape {tuple(a.shape)} and v of shape {tuple(v.shape)}")
    lead = tuple(v.shape[:a.ndim])
    if any(n != k and 1 not in (n, k) for n, k in zip(a.shape, lead)):
        raise ValueError(f"{func}: v's leading axes must broadcast with a's shape; got a of shape "
                         f"{tuple(a.shape)} and v of shape {tuple(v.shape)}")
    shape = tuple(k if n == 1 else n for n, k in zip(a.shape, lead))
    dtype = xp.result_type(a.dtype, v.dtype)
    a = xp.broadcast_to(xp.astype(a, dtype, copy=False), shape)
    v = xp.broadcast_to(xp.astype(v, dtype, copy=False), shape + tuple(v.shape[a.ndim:]))
    return a, v, axis % a.ndim, tau


def _features(x: Any, extra: int) -> Any:
    """``x`` with ``extra`` trailing axes of length 1, to broadcast against the values."""
    return x[(...,) + (None,) * extra]


def batch_state(xp: ModuleType, a: Any, v: Any, axis: int, tau: float) -> Average:
    """The state of the prepared ``a`` and ``v`` over ``axis``: ``a`` read for its max, then
    ``a`` and ``v`` once each, with one temporary of ``a``'s size (the weights)."""
    m = xp.max(a, axis=axis, keepdims=True) if a.shape[axis] else xp.full_like(
        xp.sum(a, axis=axis, keepdims=True), -math.inf)
    w = xp.exp((a - finite_or_zero(m, xp)) / tau)
    s = xp.sum(w, axis=axis, keepdims=True)
    # sum(w * v) over the axis as a batched (1, L) @ (L, features) product: no temporary of
    # v's size, and the library's matrix product does the reading
    features = tuple(v.shape[a.ndim:])
    rows = tuple(w.shape[:axis]) + tuple(w.shape[axis + 1:])
    wm = xp.reshape(xp.moveaxis(w, axis, -1), rows + (1, a.shape[axis]))
    vm = xp.reshape(xp.moveaxis(v, axis, a.ndim - 1), rows + (a.shape[axis], math.prod(features)))
    acc = xp.reshape(xp.matmul(wm, vm), rows + features)
    return Average(m, s, xp.expand_dims(acc, axis=axis))


def merge_pair(xp: ModuleType, x: Average, y: Average, tau: float) -> Average:
    """The state of the union of two sets: each rescaled to the larger max, as flash
    attention merges its blocks."""
    extra = x.acc.ndim - x.m.ndim
    m = xp.maximum(x.m, y.m)
    new = finite_or_zero(m, xp)
    rx = xp.exp((finite_or_zero(x.m, xp) - new) / tau)
    ry = xp.exp((finite_or_zero(y.m, xp) - new) / tau)
    # a state with nothing in it (s == 0) adds nothing, even where its scale overflows
    sx = xp.where(x.s == 0, xp.zeros_like(x.s), x.s * rx)
    sy = xp.where(y.s == 0, xp.zeros_like(y.s), y.s * ry)
    ax = xp.where(_features(x.s == 0, extra), xp.zeros_like(x.acc), x.acc * _features(rx, extra))
    ay = xp.where(_features(y.s == 0, extra), xp.zeros_like(y.acc), y.acc * _features(ry, extra))
    return Average(m, sx + sy, ax + ay)


def merge_along(xp: ModuleType, state: Average, axis: int, tau: float) -> Average:
    """The states stacked along ``axis`` merged into one (length 1 along it)."""
    extra = state.acc.ndim - state.m.ndim
    m = xp.max(state.m, axis=axis, keepdims=True)
    r = xp.exp((finite_or_zero(state.m, xp) - finite_or_zero(m, xp)) / tau)
    empty = state.s == 0
    s = xp.sum(xp.where(empty, xp.zeros_like(state.s), state.s * r), axis=axis, keepdims=True)
    acc = xp.where(_features(empty, extra), xp.zeros_like(state.acc), state.acc * _features(r, extra))
    return Average(m, s, xp.sum(acc, axis=axis, keepdims=True))


def finalize(xp: ModuleType, state: Average, axis: int | None, tau: float) -> tuple[Any, Any]:
    """``(lse, average)``: ``lse = shift(m) + tau log(s)`` and ``acc / s`` (nan for an empty
    or all ``-inf`` slice); with ``axis``, that axis (of length 1) dropped."""
    extra = state.acc.ndim - state.m.ndim
    # an empty sum (no elements, or only -inf logits) is left out of the log, and it and an
    # infinite or nan one (a +inf or nan logit) out of the division, then given their values:
    # no warning where a lazy library computes them later, and no nan gradient from log(0)
    empty = state.s == 0
    normal = xp.isfinite(state.s) & ~empty
    lse = xp.where(empty, xp.full_like(state.s, -math.inf),
                   finite_or_zero(state.m, xp) + tau * xp.log(xp.where(empty, xp.ones_like(state.s), state.s)))
    s = xp.where(normal, state.s, xp.ones_like(state.s))
    avg = xp.where(_features(normal, extra), state.acc / _features(s, extra),
                   xp.full_like(state.acc, math.nan))
    if axis is not None:
        lse = xp.squeeze(lse, axis=axis)
        avg = xp.squeeze(avg, axis=axis)
    return lse, avg


def average_of(xp: ModuleType, a: Any, v: Any, axis: Any, temperature: Any, keepdims: bool,
               func: str, device: Any = None) -> tuple[Any, Any]:
    """``(lse, average)`` of ``softmax_average`` for arrays of the namespace ``xp``."""
    a, v, axis, tau = prepared_operands(xp, a, v, axis, temperature, func, device)
    return finalize(xp, batch_state(xp, a, v, axis, tau), None if keepdims else axis, tau)
