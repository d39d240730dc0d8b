"""The partial algebra on whole arrays: lsecore for NumPy blocks, array-API code for others."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import numpy as np_compat

import lsecore
from lsearray._executors.array_api_lse import (
    expm1_sums, gap_to_max, log_of_sums, near_max_mean, partial_sums, rebase_expm1_sums,
)
from lsearray._executors import segment, softaverage
from lsearray._executors.scale import times
from lsearray._executors.weights import ieee_sum, overflow_exponent, weight_exponent

__all__ = [
    "Partial", "PartialAlgebra", "cast", "finalize", "finalize_mean", "merge", "partial", "reshaped",
]


@dataclass
class Partial:
    """The log-sum-exp partial of each slice of a block, reduced axes kept as size 1.

    ``max`` the max (over nonzero weights), ``top_weight`` the summed weight of the
    elements equal to it, ``rest + rest_err`` the compensated sum of
    ``b exp((a - max) / tau)`` over the others; float64 NumPy arrays, or arrays of the
    block's own namespace (then ``rest_err`` is 0, and a slice with terms that are
    infinite in exact arithmetic has ``max = +inf``, ``top_weight`` the IEEE sum of those
    terms and ``rest`` 0, and one with a nan term has ``rest`` nan: both survive merges as
    scipy's special values).
    ``count``, when a mean is wanted, is the number of elements or the sum of the weights.
    ``exponent`` (0, or an array of whole numbers shaped like ``max``): the sums and the
    count are in units of ``2**exponent``, so that sums of weights near the float maximum
    do not overflow (`lsearray._executors.weights`).
    ``mean_sums``, for a mean, is `expm1_sums`' ``(x, gaps, rest)`` relative to ``max``:
    the mean's log near the max without cancelling (`finalize_mean`).
    """

    max: Any
    top_weight: Any
    rest: Any
    rest_err: Any
    count: Any = None
    exponent: Any = 0
    mean_sums: Any = None


def _errstate(numpy: bool, **ignore: str) -> Any:
    """``np.errstate(**ignore)`` around the kernel's NumPy arithmetic. Array-API partials
    are computed in their executor's `quiet`, which its callers enter: torch does not
    consult NumPy's error state, and dynamo cannot trace ``np.errstate``."""
    return np.errstate(**ignore) if numpy else contextlib.nullcontext()


def _unscaled(e: Any) -> bool:
    return isinstance(e, int) and e == 0


def _aligned(parts: list[Partial], xp: ModuleType) -> tuple[list[Partial], Any]:
    """The partials with their sums in the units of the largest exponent, and that exponent."""
    scaled = [p.exponent for p in parts if not _unscaled(p.exponent)]
    if not scaled:
        return parts, 0
    top = scaled[0]
    for e in scaled[1:]:
        top = xp.maximum(top, e)
    two = xp.full_like(top, 2.0)
    out = []
    for p in parts:
        f = xp.pow(two, p.exponent - top)  # at most 1
        out.append(Partial(p.max, p.top_weight * f, p.rest * f, p.rest_err * f, None if p.count is None else p.count * f, top,
                           None if p.mean_sums is None else tuple(x * f for x in p.mean_sums)))
    return out, top


def partial(a: Any, b: Any, axes: tuple[int, ...], inv_tau: float, xp: ModuleType, *,
            kernel: bool = False, count: bool = False, mean: bool = False) -> Partial:
    """The partial of block ``a`` (weights ``b`` or None) over ``axes``, one read (on the
    lsecore kernel with ``kernel``, for NumPy blocks); with ``count``, the partial's
    ``count`` is the number of elements or the sum of the weights (in the units of the
    sums, ``2**exponent``); with ``mean``, its ``mean_sums`` too (NumPy blocks are read
    again only for slices whose mean is near their max).

    Examples
    --------
    >>> import numpy as np
    >>> p = partial(np.array([[0.0, 1.0, 1.0]]), None, (1,), 1.0, np, kernel=True)
    >>> p.max, p.top_weight
    (array([[1.]]), array([[2.]]))
    >>> p = partial(np.array([0.0, 0.0]), np.array([1.7e308, 1.7e308]), (0,), 1.0, np,
    ...             kernel=True, count=True)
    >>> p.exponent, float(np.log(p.top_weight[0]) + p.exponent[0] * np.log(2.0))  # 3.4e308
    (array([3.]), 710.4199840737881)
    """
    if kernel:
        p = _kernel_partial(a, b, axes, inv_tau)
    else:
        m, w, t, c, e = partial_sums(a, b, axes, inv_tau, xp)
        p = Partial(m, w, t, c, exponent=e)
    count = count or mean
    if count and b is None:
        ns = np if kernel else xp
        size = math.prod([a.shape[k] for k in axes])  # a list: dynamo traces no generator here
        p.count = ns.full(p.max.shape, float(size), dtype=p.max.dtype, device=device_of(p.max))
    elif count:
        xp = np if kernel else xp
        if xp is np:
            with np.errstate(over="ignore"):
                plain = np.sum(b, axis=axes, keepdims=True, dtype=np.float64)
        else:
            plain = ieee_sum(b, axes, xp)
        over = xp.isinf(plain)
        e = weight_exponent(b, tuple(a.shape), axes)
        if not _unscaled(e):
            # Only where the weights' sum overflows (a weight below the smallest normal
            # may hold the max's term): the sums in the units it needs, if larger.
            e = xp.where(over, e, xp.zeros_like(e))
            top = e if _unscaled(p.exponent) else xp.maximum(p.exponent, e)
            f = xp.pow(xp.full_like(top, 2.0), p.exponent - top)
            p = Partial(p.max, p.top_weight * f, p.rest * f, p.rest_err * f, exponent=top)
        p.count = plain
        if not _unscaled(p.exponent):
            # a power of two scales the sum exactly; it is summed again only where it overflowed
            unit = xp.pow(xp.full_like(p.exponent, 2.0), -p.exponent)
            p.count = plain * unit
            if xp is not np or over.any():
                again = np.sum(b * unit, axis=axes, keepdims=True) if xp is np else \
                    ieee_sum(b * unit, axes, xp)
                p.count = xp.where(over, again, p.count)
    if mean:
        p.mean_sums = _mean_sums(a, b, axes, p, 1.0 / inv_tau, kernel, xp)
    return p


def _mean_sums(a: Any, b: Any, axes: tuple[int, ...], p: Partial, tau: float, kernel: bool,
               xp: ModuleType) -> tuple[Any, Any, Any]:
    """`expm1_sums`' ``(x, gaps, rest)`` of block ``a`` (weights ``b``) for its partial ``p``.

    For NumPy blocks ``x`` is the partial's ``S - count`` (all of it in ``rest``) wherever
    that is at least ``0.75 |count|``: there its rounding is a few ulp of itself, and merges scale it
    without cancelling. Only slices whose mean is near their max are read again, in float64.
    """
    if b is not None and not _unscaled(p.exponent):  # the weights in the units of the sums
        ns = np if kernel else xp
        b = b * ns.pow(ns.full_like(p.exponent, 2.0), -p.exponent)
    if kernel:
        with np.errstate(all="ignore"):
            x = ((p.top_weight - p.count) + p.rest) + p.rest_err
        # a slice with no terms (its maxima at -inf still weigh in w): expm1(-inf) = -1
        x = np.where(p.max == -math.inf, -p.count, x)
        zero = np.zeros_like(x)
        need = np.isfinite(p.max) & ~(np.abs(x) >= 0.75 * np.abs(p.count))
        if not need.any():
            return x, zero, x
        b = None if b is None else np.asarray(b, dtype=np.float64)
        with np.errstate(all="ignore"):
            _, _, ex, gaps, rest = expm1_sums(np.asarray(a, dtype=np.float64), b, axes, tau,
                                              np_compat)
        return np.where(need, ex, x), np.where(need, gaps, zero), np.where(need, rest, x)
    if 0 in a.shape:  # no terms (or no slices): libraries cannot take the max of nothing
        zero = xp.zeros_like(p.max)
        return zero, zero, zero
    _, dead, ex, gaps, rest = expm1_sums(a, b, axes, tau, xp)
    lost = xp.astype(-p.count, ex.dtype)  # a slice with no terms: expm1(-inf) = -1 for each weight
    return (xp.where(dead, lost, ex), xp.where(dead, xp.zeros_like(gaps), gaps),
            xp.where(dead, lost, rest))


def _kernel_partial(a: np.ndarray, b: np.ndarray | None, axes: tuple[int, ...],
                    inv_tau: float) -> Partial:
    """The kernel's partial; slices whose weighted sums overflow are reduced again with
    their weights in units of ``2**e`` (`overflow_exponent`)."""
    p = Partial(*(np.expand_dims(x, axes) for x in lsecore.reduce_partials(a, axes, b, inv_tau)))
    if b is None:
        return p
    # A compensated sum that overflows can come out nan (inf - inf in its correction), so
    # whatever is not finite in a slice with a finite max is reduced again (a nan weight
    # gives nan again).
    with np.errstate(over="ignore", invalid="ignore"):
        over = np.isfinite(p.max) & ~np.isfinite(p.top_weight + p.rest)
    if not over.any():
        return p
    e = np.where(over, overflow_exponent(b, tuple(a.shape), axes, np, np.float64), 0.0)
    scaled = lsecore.reduce_partials(a, axes, b * np.exp2(-e), inv_tau)
    fields = (np.where(over, np.expand_dims(x, axes), y) for x, y in zip(scaled, _fields(p)))
    return Partial(*fields, exponent=e)


def _fields(p: Partial) -> tuple[Any, Any, Any, Any]:
    return (p.max, p.top_weight, p.rest, p.rest_err)


def merge(parts: list[Partial], inv_tau: float, xp: ModuleType, *, kernel: bool = False) -> Partial:
    """Merge partials of the same shape into one (associative and commutative).

    Examples
    --------
    >>> import numpy as np
    >>> one = partial(np.array([[0.0, -50.0]]), None, (1,), 1.0, np, kernel=True)
    >>> two = partial(np.array([[0.0]]), None, (1,), 1.0, np, kernel=True)
    >>> merge([one, two], 1.0, np, kernel=True).top_weight
    array([[2.]])
    """
    numpy = kernel
    xp = np if numpy else xp
    parts, e = _aligned(parts, xp)
    with _errstate(numpy, over="ignore", invalid="ignore"):  # sums that overflow: redone below
        merged = _merge(parts, e, inv_tau, numpy, xp)
    # Sums that overflowed in the merge (each part's below the float maximum) are merged
    # again in units 2**k larger: only there, where a subnormal sum of another part is moot.
    with _errstate(numpy, over="ignore", invalid="ignore"):
        over = xp.isfinite(merged.max) & (xp.isinf(merged.top_weight) | xp.isinf(merged.rest)
                                        | xp.isinf(merged.top_weight + merged.rest))
        for extra in ([] if merged.count is None else [merged.count]) + list(merged.mean_sums or ()):
            over = over | (xp.isinf(extra) & xp.isfinite(merged.max))
    if numpy and not over.any():
        return merged
    k = float(math.ceil(math.log2(len(parts))) + 2)
    step = xp.where(over, xp.full_like(merged.top_weight, k), xp.zeros_like(merged.top_weight))
    f = xp.pow(xp.full_like(step, 2.0), -step)
    e_again = step if _unscaled(e) else e + step
    scaled = [Partial(p.max, p.top_weight * f, p.rest * f, p.rest_err * f, None if p.count is None else p.count * f, e_again,
                      None if p.mean_sums is None else tuple(x * f for x in p.mean_sums)) for p in parts]
    again = _merge(scaled, e_again, inv_tau, numpy, xp)

    def pick(x: Any, y: Any) -> Any:
        return None if x is None else xp.where(over, x, y)

    e_before = xp.zeros_like(step) if _unscaled(e) else e
    return Partial(*(pick(x, y) for x, y in zip(_fields(again), _fields(merged))),
                   pick(again.count, merged.count), pick(again.exponent, e_before),
                   None if again.mean_sums is None else tuple(map(pick, again.mean_sums, merged.mean_sums)))


def _ieee_add(x: Any, y: Any, xp: ModuleType) -> Any:
    """``x + y``, nan where they are infinities of opposite signs, without computing that
    ``inf - inf`` (a warning where a lazy library evaluates it, outside any errstate)."""
    opposite = xp.isinf(x) & xp.isinf(y) & (x != y)
    zero = xp.zeros_like(x)
    total = xp.where(opposite, zero, x) + xp.where(opposite, zero, y)
    return xp.where(opposite, xp.full_like(total, math.nan), total)


def _merge(parts: list[Partial], e: Any, inv_tau: float, numpy: bool, xp: ModuleType) -> Partial:
    """`merge` of partials in the same units ``2**e``."""
    n = None
    if parts[0].count is not None:
        # weight sums of opposite infinite signs add to nan: NumPy's warning is silenced by
        # merge's errstate, a lazy library's (computed later) is avoided by _ieee_add
        n = parts[0].count
        for p in parts[1:]:
            n = n + p.count if numpy else _ieee_add(n, p.count, xp)
    first = parts[0]
    if numpy:
        shape = first.max.shape
        m, w, t, c = (np.array(x, dtype=np.float64).reshape(-1) for x in
                      (first.max, first.top_weight, first.rest, first.rest_err))
        for p in parts[1:]:
            other = (np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in
                     (p.max, p.top_weight, p.rest, p.rest_err))
            lsecore.merge(m, w, t, c, *other, inv_tau)
        m = m.reshape(shape)
        return Partial(m, w.reshape(shape), t.reshape(shape), c.reshape(shape), n, e,
                       _merged_sums(parts, m, inv_tau, np_compat))
    m, w, t = first.max, first.top_weight, first.rest
    for p in parts[1:]:
        big = xp.maximum(m, p.max)

        def rescaled(mi, wi, ti):
            same = mi == big
            f = xp.exp(times(gap_to_max(mi, big, same, xp), inv_tau, xp))
            kept = xp.where(same, wi, xp.zeros_like(wi))
            return kept, xp.where(same, ti, (wi + ti) * f)

        w1, t1 = rescaled(m, w, t)
        w2, t2 = rescaled(p.max, p.top_weight, p.rest)
        m, w, t = big, _ieee_add(w1, w2, xp), t1 + t2
    return Partial(m, w, t, xp.zeros_like(t), n, e, _merged_sums(parts, m, inv_tau, xp))


def _merged_sums(parts: list[Partial], m: Any, inv_tau: float, xp: ModuleType) -> Any:
    """The parts' mean sums (in common units) taken to the merged max ``m`` and added."""
    if parts[0].mean_sums is None:
        return None
    with _errstate(xp is np_compat, all="ignore"):
        moved = [rebase_expm1_sums(p.mean_sums, p.count, p.max, m, inv_tau, xp) for p in parts]
    return tuple(sum(v[k] for v in moved[1:]) + moved[0][k] for k in range(3))


def finalize(p: Partial, tau: float, xp: ModuleType, divisor: Any = None, *,
             kernel: bool = False) -> tuple[Any, Any, Any]:
    """``(max + tau log|S|, sign(S), log|S|)`` for the partial's sum
    ``S = 2**exponent (top_weight + rest + rest_err)``, divided by ``divisor`` (in
    double-double on the kernel) when one is given: the divisor is in the units of the
    sums (as ``count`` is), so ``2**exponent`` cancels from means. The rules of
    `log_of_sums` (the kernel's ``lse_finalize`` on NumPy partials).

    Examples
    --------
    >>> import numpy as np
    >>> p = partial(np.array([0.0, -50.0]), None, (0,), 1.0, np, kernel=True)
    >>> out, sign, _ = finalize(p, 1.0, np, kernel=True)
    >>> float(out[0]), float(sign[0])
    (1.9287498479639178e-22, 1.0)
    """
    scaled = not _unscaled(p.exponent)
    if kernel:
        shape = p.max.shape
        flat = [np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in (p.max, p.top_weight, p.rest, p.rest_err)]
        if divisor is None and scaled:  # S / 2**-e: the finalizer's division is exact
            divisor = np.exp2(-np.asarray(p.exponent, dtype=np.float64))
        if divisor is not None:
            divisor = np.ascontiguousarray(np.broadcast_to(divisor, shape), np.float64).reshape(-1)
        out, sign, log_total = (np.empty_like(flat[0]) for _ in range(3))
        lsecore.finalize(*flat, tau, out, sign, log_total, divisor)
        return out.reshape(shape), sign.reshape(shape), log_total.reshape(shape)
    shift, log_total, sign = log_of_sums(p.max, p.top_weight, p.rest, p.exponent, xp, divisor)
    return shift + times(log_total, tau, xp), sign, log_total


def finalize_mean(p: Partial, tau: float, xp: ModuleType, *,
                  kernel: bool = False) -> tuple[Any, Any]:
    """``(max + tau log|S / count|, sign)`` of a partial with ``count`` (and ``mean_sums``,
    `partial`'s ``mean``): nan where ``count`` is 0 or nan. A mean near its max takes its
    log from the expm1 sums (`near_max_mean`) where that is the more accurate: the
    kernel's finalizer is off by about ``tau 2^-53 (rest + rest_err) / S`` (the terms'
    rounding), the expm1 form by ``tau 2^-53 |x / count|``; array-API partials, finalized
    in their own floating point, take it wherever ``|x / count| <= 1/2`` (as `logmeanexp`
    does).

    Examples
    --------
    >>> import numpy as np
    >>> p = partial(np.array([5.0, 5.0 - 1e-12]), None, (0,), 1e-3, np, kernel=True, mean=True)
    >>> float(finalize_mean(p, 1e3, np, kernel=True)[0][0])  # 5 - 0.5e-12: the mean, not the max
    4.9999999999995
    """
    numpy = kernel
    xp = np_compat if numpy else xp
    divisor = xp.where(p.count == 0, xp.full_like(p.count, math.nan), p.count)
    with _errstate(numpy, all="ignore"):
        out, sign, _ = finalize(p, tau, xp, divisor, kernel=kernel)
        if p.mean_sums is not None:
            finite = xp.isfinite(p.max)
            shift = xp.where(finite, p.max, xp.zeros_like(p.max))
            near, near_out = near_max_mean(shift, *p.mean_sums, divisor, tau, xp)
            near = near & finite
            if numpy:
                total = xp.abs(p.top_weight + p.rest + p.rest_err)
                near = near & (xp.abs(p.mean_sums[0] / divisor) * total < xp.abs(p.rest + p.rest_err))
            out = xp.where(near, near_out, out)
            sign = xp.where(near, xp.ones_like(sign), sign)
    nan = xp.isnan(divisor)
    return xp.where(nan, divisor, out), xp.where(nan, divisor, sign)


def reshaped(p: Partial, shape: tuple[int, ...], ns: ModuleType) -> Partial:
    """``p`` (of kept axes, with ``count`` and ``mean_sums``: a stream's) with every array
    reshaped to the result's ``shape``."""
    def r(x: Any) -> Any:
        return x if isinstance(x, int) else ns.reshape(x, shape)

    return Partial(r(p.max), r(p.top_weight), r(p.rest), r(p.rest_err), r(p.count), r(p.exponent),
                   tuple(map(r, p.mean_sums)))


def cast(p: Partial, dtype: Any, xp: ModuleType) -> Partial:
    """``p`` (with ``count`` and ``mean_sums``: a stream's) with every array in ``dtype``
    (the exponent is a whole number in any)."""
    def c(x: Any) -> Any:
        return x if isinstance(x, int) or x.dtype == dtype else xp.astype(x, dtype)

    return Partial(c(p.max), c(p.top_weight), c(p.rest), c(p.rest_err), c(p.count), c(p.exponent),
                   tuple(map(c, p.mean_sums)))


class PartialAlgebra:
    """The partial algebra's verbs on the arrays of an executor's namespace ``xp``: on the
    lsecore kernel where ``on_kernel`` (float64 NumPy partials), in array-API operations
    otherwise. The dask tree and `OnlineLogSumExp` call only these."""

    xp: ModuleType
    on_kernel = False

    def partial(self, a: Any, b: Any, axes: tuple[int, ...], inv_tau: float, *,
                count: bool = False, mean: bool = False) -> Partial:
        return partial(a, b, axes, inv_tau, self.xp, kernel=self.on_kernel, count=count,
                       mean=mean)

    def merge(self, parts: list[Partial], inv_tau: float) -> Partial:
        return merge(parts, inv_tau, self.xp, kernel=self.on_kernel)

    def finalize(self, p: Partial, tau: float, divisor: Any = None) -> tuple[Any, Any, Any]:
        return finalize(p, tau, self.xp, divisor, kernel=self.on_kernel)

    def finalize_mean(self, p: Partial, tau: float) -> tuple[Any, Any]:
        return finalize_mean(p, tau, self.xp, kernel=self.on_kernel)

    def operand_device(self, *xs: Any) -> Any:
        """The device of the first operand that is an array of the namespace (None for NumPy
        and for Python input): other operands are made there."""
        for x in xs:
            if hasattr(x, "__array_namespace__") and hasattr(x, "device"):
                return device_of(x)
        return None

    def softmax_average(self, a: Any, v: Any, axis: Any, temperature: Any,
                        keepdims: bool) -> tuple[Any, Any]:
        """``(lse, average)`` of `lsearray.softmax_average`."""
        with self.quiet():  # an all -inf slice's log(0) and 0 / 0 are its documented values
            lse, avg = softaverage.average_of(self.xp, a, v, axis, temperature, keepdims,
                                              "softmax_average", self.operand_device(a, v))
        return self.scalar_if_0d(lse), self.scalar_if_0d(avg)

    def average_state(self, a: Any, v: Any, axis: int, tau: float,
                      func: str) -> tuple[softaverage.Average, tuple[int, ...], Any, int, str]:
        """A batch's state for `OnlineSoftmaxAverage`, with the values' shape without the
        axis, the device, the batch's length along the axis and its values' shape in words."""
        device = self.operand_device(a, v)
        a, v, axis, _ = softaverage.prepared_operands(self.xp, a, v, axis, tau, func, device)
        shape = tuple(v.shape[:axis]) + tuple(v.shape[axis + 1:])
        with self.quiet():
            state = softaverage.batch_state(self.xp, a, v, axis, tau)
        return (state, shape, device,
                int(a.shape[axis]), f"values of shape {tuple(v.shape)}")

    def average_merge(self, x: softaverage.Average, y: softaverage.Average,
                      tau: float) -> softaverage.Average:
        with self.quiet():
            return softaverage.merge_pair(self.xp, x, y, tau)

    def average_result(self, state: softaverage.Average, axis: int, tau: float) -> tuple[Any, Any]:
        with self.quiet():
            lse, avg = softaverage.finalize(self.xp, state, axis, tau)
        return self.scalar_if_0d(lse), self.scalar_if_0d(avg)

    def id_range(self, ids: Any) -> tuple[int, int]:
        """``(min(ids), max(ids))`` of non-empty segment ids, as Python ints, by the
        namespace's reductions (executors that read both in one pass override it)."""
        return int(self.xp.min(ids)), int(self.xp.max(ids))

    def segment_state(self, p: segment.Segmented) -> tuple[Any, Any]:
        """Each segment's ``(m, s)`` (`segment.state`), which dask's tree merges."""
        return segment.state(self, p)

    def segment_logsumexp(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, sorted: bool, func: str) -> Any:
        """`lsearray.segment_logsumexp` by `segment.state` on this executor's scatters
        (``sorted`` is only a hint, which these do not need)."""
        p = segment.prepared(self, a, ids, num_segments, axis, b, temperature, func)
        with self.quiet():
            m, s = self.segment_state(p)
            return segment.restored(self.xp, segment.finalize(self.xp, m, s, p.tau), p.axis)

    def segment_normalized(self, a: Any, ids: Any, num_segments: Any, axis: Any,
                           temperature: Any, sorted: bool, func: str, log: bool) -> Any:
        """`lsearray.segment_softmax` (``log`` False) or `segment_log_softmax`."""
        p = segment.prepared(self, a, ids, num_segments, axis, None, temperature, func)
        with self.quiet():
            return segment.restored(self.xp, segment.normalized(self, p, log), p.axis)

    def scalar_if_0d(self, x: Any) -> Any:
        """Other libraries keep 0-d arrays; NumPy's executor makes them scalars."""
        return x
