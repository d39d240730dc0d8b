"""The array-API executor: arrays of any array API library, computed by its own operations."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import is_array_api_obj, is_numpy_namespace

from lsearray._executors import array_api_lse, matmul, partials
from lsearray._executors.array_api_lse import nothing_is_constant
from lsearray._executors.random import from_uniform, numpy_generator
from lsearray._executors.scale import Factor, array_factor, divide, times
from lsearray._validation import (
    ArrayTemperature, Prepared, array_temperature, broadcast_shape, complex_rejected,
    device_mismatch, flag, not_numeric, prepare_array_api, scan_axis, temperature_value,
    with_mask_weights,
)

__all__ = ["ArrayAPIExecutor", "directed_scan", "masked_normalized", "numpy_top_k"]

_WEAK = (bool, int, float)  # Python scalars: they take the other argument's dtype


def _logaddexp(x1: Any, x2: Any, tau: float | Factor, xp: ModuleType) -> Any:
    """``tau log(exp(x1 / tau) + exp(x2 / tau))`` by array-API operations, as
    ``max + tau log1p(exp(-|x1 - x2| / tau))``, for real floating arrays of one dtype;
    ``tau`` (a float or a `Factor`) may lie outside the dtype's range.

    Equal arguments (infinities too) take a zero difference rather than ``inf - inf``,
    so that equal infinities give that infinity, and gradients stay finite: the max
    splits its gradient between ties, and the difference passes none where it is 0. Two
    ``-inf`` add nothing: the result is the constant ``-inf``, whose gradient is 0.
    """
    diff = x1 - x2
    diff = xp.where(x1 == x2, xp.zeros_like(diff), diff)
    out = xp.maximum(x1, x2) + times(xp.log1p(xp.exp(divide(-xp.abs(diff), tau, xp))), tau, xp)
    return nothing_is_constant(out, xp)


def _log1mexp(z: Any, xp: ModuleType) -> Any:
    """``log(1 - exp(z))`` for ``z <= 0`` by Maechler's switch: ``log(-expm1(z))`` above
    ``-ln 2``, ``log1p(-exp(z))`` below (each where the other loses bits); nan above 0.

    Each branch reads ``z`` only where it is taken and -1 elsewhere (the double ``where``),
    so that the untaken one, say ``log(-expm1(z))`` of a ``z`` far below 0, is finite and
    passes no nan into the gradient."""
    near = z > -math.log(2.0)
    safe = xp.full_like(z, -1.0)
    above = xp.log(-xp.expm1(xp.where(near, z, safe)))
    below = xp.log1p(-xp.exp(xp.where(near, safe, z)))
    return xp.where(near, above, below)


def _logdiffexp(x1: Any, x2: Any, tau: float | Factor, xp: ModuleType) -> Any:
    """``tau log(exp(x1 / tau) - exp(x2 / tau))`` by array-API operations, as
    ``x1 + tau log1mexp((x2 - x1) / tau)``, for real floating arrays of one dtype; nan
    where ``x1 < x2``.

    Where ``x2`` is ``-inf`` the difference is the constant ``-inf`` (not ``-inf - x1``,
    which is nan for ``x1 = -inf``), so the result is ``x1`` with the gradient 1 in it.
    ``-inf`` results (equal arguments, the pole) are constants, as in `_logaddexp`.
    """
    diff = x2 - x1
    diff = xp.where(x2 == -math.inf, xp.full_like(diff, -math.inf), diff)
    out = x1 + times(_log1mexp(divide(diff, tau, xp), xp), tau, xp)
    return nothing_is_constant(out, xp)


def _difference_sign(x1: Any, x2: Any, out: Any, xp: ModuleType) -> Any:
    """The sign of ``exp(x1) - exp(x2)`` as a constant of ``out``'s dtype: +1, -1, 0 where
    they are equal, nan where ``out`` is nan (a nan, or two ``+inf``)."""
    one = xp.ones_like(out)
    sign = xp.where(x1 > x2, one, xp.where(x1 < x2, -one, xp.zeros_like(out)))
    return xp.where(xp.isnan(out), xp.full_like(out, math.nan), sign)


def _operand_dtype(x: Any, name: str, xp: ModuleType, func: str = "logaddexp") -> Any:
    """``x``'s dtype as the computation sees it: integer and bool arrays as the default
    real floating dtype; complex and other dtypes raise TypeError."""
    if xp.isdtype(x.dtype, "complex floating"):
        raise complex_rejected(func, name, x.dtype)
    if not xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
        raise not_numeric(func, name, x.dtype)
    if xp.isdtype(x.dtype, "real floating"):
        return x.dtype
    return xp.__array_namespace_info__().default_dtypes(device=device_of(x))["real floating"]


def _float_or_array_temperature(temperature: Any, func: str, xp: ModuleType,
                                dtype: Any) -> float | Factor:
    """A float temperature, or one given as an array to differentiate through (`Factor`)."""
    if is_array_api_obj(temperature):
        return array_factor(array_temperature(temperature, func, xp, dtype), xp)
    return temperature_value(temperature, func)


def _doubling_scan(a: Any, axis: int, tau: Any, xp: ModuleType) -> Any:
    """The inclusive scan of ``a`` along ``axis`` under logaddexp, in ``ceil(log2 n)``
    whole-array steps (Hillis and Steele): step ``k`` merges every element with the one
    ``2**k`` before it. Every element is the log-sum-exp of its prefix, summed in a tree
    of logaddexps, so the error grows with ``log2 n``, not ``n``. An all ``-inf`` prefix
    gives the constant ``-inf``: its elements get gradient 0."""
    n = a.shape[axis]
    before = (slice(None),) * axis

    def part(start: int | None, stop: int | None) -> Any:
        return a[before + (slice(start, stop), ...)]

    step = 1
    while step < n:
        head = part(0, step)
        tail = _logaddexp(part(step, None), part(0, n - step), tau, xp)
        a = xp.concat([head, tail], axis=axis)
        step *= 2
    return nothing_is_constant(a, xp)


def directed_scan(scan: Callable[..., Any], x: Any, axis: int, reverse: Any, exclusive: Any,
                  xp: ModuleType, mask: Any = None) -> Any:
    """``scan(x)``, the inclusive scan of ``x`` along ``axis`` (``scan(x, mask)`` with a
    mask of x's shape), in the directions of ``tf.math.cumulative_logsumexp``: ``reverse``
    scans from the end (the inclusive scan of ``x`` flipped, flipped back), ``exclusive``
    leaves each element out of its own output, so that the first slice scanned is the
    empty sum ``-inf``: a constant, without gradient, before the inclusive scan shifted by
    one."""
    reverse = flag(reverse, "reverse", "logcumsumexp")
    exclusive = flag(exclusive, "exclusive", "logcumsumexp")
    if reverse:
        x = xp.flip(x, axis=axis)
        mask = None if mask is None else xp.flip(mask, axis=axis)
    out = scan(x) if mask is None else scan(x, mask)
    if exclusive and out.shape[axis] > 0:
        before = (slice(None),) * axis
        empty = xp.full_like(out[before + (slice(0, 1), ...)], -math.inf)
        out = xp.concat([empty, out[before + (slice(0, -1), ...)]], axis=axis)
    return xp.flip(out, axis=axis) if reverse else out


def masked_normalized(func: str, x: Any, mask: Any, axes: tuple[int, ...], tau: Any,
                      xp: ModuleType) -> Any:
    """softmax or log_softmax (``func``) of the elements of ``x`` that ``mask`` keeps: the
    others are 0 (-inf for log_softmax), also in a slice with nothing kept. The left-out
    elements enter as -inf, so that their values (nan, inf) touch nothing, and the
    result's own where drops the nan of a slice with nothing kept, and its gradient."""
    lowest = array_api_lse.const(-math.inf, x, xp)
    z = getattr(array_api_lse, func)(xp.where(mask, x, lowest), axes, tau, xp)
    return xp.where(mask, z, lowest if func == "log_softmax" else xp.zeros_like(z))


def numpy_top_k(x: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(values, indices)`` of the ``k`` largest elements of ``x`` along ``axis``
    (``0 < k <= n``), largest first, in O(n + k log k): `numpy.argpartition` finds the
    ``k`` largest unordered, and only those are sorted."""
    n = x.shape[axis]
    if k < n:
        part = np.argpartition(x, n - k, axis=axis)
        index = np.take(part, np.arange(n - k, n), axis=axis)
        values = np.take_along_axis(x, index, axis=axis)
    else:
        index, values = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (x.ndim - axis - 1)), x.shape), x
    # descending by a stable sort of the negated values (-inf, the only ties noise leaves, too)
    order = np.argsort(-values, axis=axis, kind="stable")
    return np.take_along_axis(values, order, axis=axis), np.take_along_axis(index, order, axis=axis)


class ArrayAPIExecutor(partials.PartialAlgebra):
    """Runs calls on the arrays of one array API namespace ``xp`` (torch, JAX, CuPy,
    array-api-strict, complex NumPy) by that namespace's operations: results of its kind,
    on its device, differentiable by its autograd. Libraries with hooks of their own
    (random numbers, tracing) subclass it."""

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    @property
    def library(self) -> str:
        """The array library's short name, for messages."""
        return self.xp.__name__.removeprefix("array_api_compat.")

    def device_of(self, x: Any) -> Any:
        """The device of an array of the namespace (None while it is traced)."""
        return device_of(x)

    def prepare(self, a: Any, b: Any, axis: Any, temperature: Any, func: str,
                where: Any = None) -> tuple[Prepared, Any]:
        """`prepare_array_api` for this namespace: the arguments and the compute dtype, an
        array temperature as a `Factor`."""
        p, compute = prepare_array_api(a, b, axis, temperature, func, self.xp, where)
        if isinstance(p.tau, ArrayTemperature):
            p = p._replace(tau=array_factor(p.tau, self.xp))
        return p, compute

    def logsumexp(self, a: Any, axis: Any, b: Any, keepdims: bool, return_sign: bool,
                  temperature: Any, where: Any = None) -> Any:
        xp = self.xp
        p, _ = self.prepare(a, b, axis, temperature, "logsumexp", where)
        p = with_mask_weights(p, xp)
        with self.quiet():
            out, sign = array_api_lse.logsumexp(p.a, p.b, p.axes, p.tau, return_sign, xp)
        out = array_api_lse.shaped(out, p.axes, keepdims, p.dtype, xp)
        if return_sign:
            return out, array_api_lse.shaped(sign, p.axes, keepdims, p.dtype, xp)
        return out

    def logmeanexp(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                   where: Any = None) -> Any:
        xp = self.xp
        p, _ = self.prepare(a, b, axis, temperature, "logmeanexp", where)
        p = with_mask_weights(p, xp)
        with self.quiet():
            out = array_api_lse.logmeanexp(p.a, p.b, p.axes, p.tau, xp)
        return array_api_lse.shaped(out, p.axes, keepdims, p.dtype, xp)

    def _real_prepared(self, x: Any, axis: Any, temperature: Any, func: str,
                       name: str = "x", where: Any = None) -> Prepared:
        """`prepare` for the functions of real input only."""
        p, compute = self.prepare(x, None, axis, temperature, func, where)
        if self.xp.isdtype(compute, "complex floating"):
            raise complex_rejected(func, name, compute)
        return p

    def _normalized(self, x: Any, axis: Any, temperature: Any, func: str, where: Any = None) -> Any:
        xp = self.xp
        p = self._real_prepared(x, axis, temperature, func, where=where)
        with self.quiet():
            if p.where is None:
                z = getattr(array_api_lse, func)(p.a, p.axes, p.tau, xp)
            else:
                z = masked_normalized(func, p.a, p.where, p.axes, p.tau, xp)
        z = xp.reshape(z, p.shape)
        return array_api_lse.shaped(z, (), True, p.dtype, xp)

    def softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return self._normalized(x, axis, temperature, "softmax", where)

    def log_softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return self._normalized(x, axis, temperature, "log_softmax", where)

    def logaddexp_operands(self, x1: Any, x2: Any,
                           func: str = "logaddexp") -> tuple[Any, Any, Any]:
        """``x1`` and ``x2`` as arrays of the compute dtype (Python scalars take the other's
        dtype) on one device, and the result's dtype; ``func`` names the caller in errors."""
        xp = self.xp
        operands = {"x1": self.asarray(x1), "x2": self.asarray(x2)}
        arrays = {name: x for name, x in operands.items() if type(x) not in _WEAK}
        dtype = xp.result_type(*(_operand_dtype(x, name, xp, func) for name, x in arrays.items()))
        compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
        devices = {name: device_of(x) for name, x in arrays.items()}
        if len(set(devices.values()) - {None}) > 1:  # None: being traced
            raise device_mismatch(func, *devices.items())
        dev = next(iter(devices.values()))
        x1, x2 = (
            xp.asarray(float(x), dtype=compute, device=dev) if type(x) in _WEAK
            else (x if x.dtype == compute else xp.astype(x, compute))
            for x in operands.values()
        )
        broadcast_shape(func, ("x1", x1.shape), ("x2", x2.shape))
        return x1, x2, dtype

    def unary_operand(self, x: Any, func: str) -> tuple[Any, Any]:
        """``x`` as an array of the compute dtype (float16 and bfloat16 as float32, integers
        and bool as the default float) and the result's dtype."""
        xp = self.xp
        x = self.asarray(x)
        if type(x) in _WEAK:  # a lone Python scalar: the namespace's default float
            x = xp.asarray(float(x))
        dtype = _operand_dtype(x, "x", xp, func)
        compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
        return (x if x.dtype == compute else xp.astype(x, compute)), dtype

    def asarray(self, x: Any) -> Any:
        """``x`` as an array of the namespace; arrays of other libraries and Python
        scalars (weak) as they are."""
        if type(x) in _WEAK or (is_array_api_obj(x) and not isinstance(x, np.ndarray)):
            return x
        return self.xp.asarray(x)

    def logaddexp(self, x1: Any, x2: Any, temperature: Any) -> Any:
        xp = self.xp
        x1, x2, dtype = self.logaddexp_operands(x1, x2)
        tau = _float_or_array_temperature(temperature, "logaddexp", xp, x1.dtype)
        with self.quiet():
            out = _logaddexp(x1, x2, tau, xp)
        return out if out.dtype == dtype else xp.astype(out, dtype)

    def logdiffexp(self, x1: Any, x2: Any, temperature: Any, return_sign: Any) -> Any:
        xp = self.xp
        return_sign = flag(return_sign, "return_sign", "logdiffexp")
        x1, x2, dtype = self.logaddexp_operands(x1, x2, "logdiffexp")
        tau = _float_or_array_temperature(temperature, "logdiffexp", xp, x1.dtype)
        with self.quiet():
            if not return_sign:
                out = _logdiffexp(x1, x2, tau, xp)
                return out if out.dtype == dtype else xp.astype(out, dtype)
            out = _logdiffexp(xp.maximum(x1, x2), xp.minimum(x1, x2), tau, xp)
            sign = _difference_sign(x1, x2, out, xp)
        if out.dtype != dtype:
            out, sign = xp.astype(out, dtype), xp.astype(sign, dtype)
        return out, sign

    def log1mexp(self, x: Any) -> Any:
        xp = self.xp
        x, dtype = self.unary_operand(x, "log1mexp")
        with self.quiet():
            out = _log1mexp(x, xp)
        return out if out.dtype == dtype else xp.astype(out, dtype)

    def logcumsumexp(self, a: Any, axis: Any, temperature: Any, reverse: Any = False,
                     exclusive: Any = False, where: Any = None) -> Any:
        xp = self.xp
        p = self._real_prepared(a, None, temperature, "logcumsumexp", "a", where)
        axis = scan_axis(axis, len(p.shape), "logcumsumexp")
        x = p.a if p.where is None else xp.where(p.where, p.a, array_api_lse.const(-math.inf, p.a, xp))
        if axis is None:
            x, axis = xp.reshape(x, (-1,)), 0
        with self.quiet():
            out = directed_scan(lambda y: _doubling_scan(y, axis, p.tau, xp), x, axis, reverse,
                                exclusive, xp)
        return out if out.dtype == p.dtype else xp.astype(out, p.dtype)

    def logmatmulexp(self, a: Any, b: Any) -> Any:
        return matmul.array_api_product(a, b, self)

    def exact_logsumexp(self, z: Any, axis: int) -> Any:
        """The log-sum-exp of real floating ``z`` over ``axis``, kept as a size-1 axis: the
        entries of `logmatmulexp` that the shifted product does not give accurately."""
        out, _ = array_api_lse.logsumexp_signed(z, None, (axis,), 1.0, self.xp)
        return out

    def stream_partial(self, batch: Any, b: Any, axis: Any, tau: float, func: str) -> tuple:
        """`OnlineLogSumExp.update`'s partial of a batch (see `NumPyExecutor.stream_partial`)."""
        xp = self.xp
        p, compute = self.prepare(batch, b, axis, tau, func)
        if xp.isdtype(compute, "complex floating"):
            raise complex_rejected(func, "batch", compute)
        shape = tuple(n for k, n in enumerate(p.a.shape) if k not in p.axes)
        with self.quiet():
            part = partials.reshaped(self.partial(p.a, p.b, p.axes, 1.0 / tau, mean=True),
                                     shape, xp)
        if part.count.dtype != part.max.dtype:
            part = partials.cast(part, part.max.dtype, xp)
        count = math.prod([p.a.shape[k] for k in p.axes])  # a list: dynamo traces no generator here
        return part, shape, count, p.dtype, device_of(p.a), p.shape

    def stream_merge(self, state: partials.Partial, part: partials.Partial,
                     tau: float) -> partials.Partial:
        """The merge of two streams' partials, in their promoted dtype."""
        xp = self.xp
        compute = xp.result_type(state.max.dtype, part.max.dtype)
        state, part = partials.cast(state, compute, xp), partials.cast(part, compute, xp)
        with self.quiet():
            return self.merge([state, part], 1.0 / tau)

    def result_type(self, *dtypes: Any) -> Any:
        """The dtype ``dtypes`` promote to."""
        return self.xp.result_type(*dtypes)

    def stream_result(self, part: partials.Partial, dtype: Any, tau: float, mean: bool,
                      return_sign: bool) -> tuple[Any, Any]:
        """A stream's ``(result, sign)`` in ``dtype`` (nan for negative sums without
        ``return_sign``)."""
        xp = self.xp
        out, sign = self._finalized(part, tau, mean, return_sign)
        return tuple(x if x.dtype == dtype else xp.astype(x, dtype) for x in (out, sign))

    def _finalized(self, part: partials.Partial, tau: float, mean: bool,
                   return_sign: bool) -> tuple[Any, Any]:
        xp = self.xp
        with self.quiet():
            out, sign = self.finalize_mean(part, tau) if mean else self.finalize(part, tau)[:2]
        if not return_sign:
            out = xp.where(sign < 0, xp.full_like(out, math.nan), out)
        return out, sign

    def real_floating(self, x: Any, name: str, func: str) -> tuple[Any, ArrayAPIExecutor, Any]:
        """``x`` as a real floating array of the namespace (float32 for float16 and
        bfloat16), this executor, and the dtype of a floating result."""
        p = self._real_prepared(x, None, 1.0, func, name)
        return self.xp.reshape(p.a, p.shape), self, p.dtype

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        """Standard Gumbel noise ``-log(-log(U))``, ``U`` uniform in (0, 1), of ``shape``, in
        the dtype and on the device of ``like``: NumPy's generator, moved to the device
        (libraries with generators of their own override this)."""
        kind = "numpy" if is_numpy_namespace(self.xp) else self.xp.__name__
        g = from_uniform(numpy_generator(rng, kind, func).random(shape), np)
        return self.xp.asarray(g, dtype=like.dtype, device=device_of(like))

    def quiet(self) -> Any:
        """A context in which the namespace's operations do not warn on ``inf - inf``,
        overflow or division by zero (NumPy-backed namespaces follow `numpy.errstate`)."""
        return np.errstate(all="ignore")

    def readable(self, x: Any) -> bool:
        """Whether the values of ``x`` can be read now (not lazy, not being traced)."""
        return array_api_lse.readable(x, self.xp)

    def default_int(self, x: Any) -> Any:
        """``x`` in the namespace's default integer dtype; a NumPy scalar for 0-d NumPy."""
        xp = self.xp
        dtype = xp.__array_namespace_info__().default_dtypes(device=device_of(x))["integral"]
        if is_numpy_namespace(xp):
            return np.asarray(x, dtype=dtype)[()]
        return x if x.dtype == dtype else xp.astype(x, dtype)

    def stop_gradient(self, y: Any) -> Any:
        """``y`` with no gradient flowing back through it (the identity here: the
        namespace has no autograd)."""
        return y

    def map_row_blocks(self, f: Any, a: Any, rows: int) -> Any:
        """``f`` applied to ``a`` (..., n, k) a block of at most ``rows`` rows at a time,
        the results joined along the rows."""
        parts = [f(a[..., i0:i0 + rows, :]) for i0 in range(0, a.shape[-2], rows)]
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=-2)

    def when_any(self, mask: Any, compute: Any, otherwise: Any) -> Any:
        """``compute()`` where some element of ``mask`` (whose values cannot be read) is
        set, else ``otherwise()``: here ``compute()`` always, which covers both."""
        return compute()

    def set_masked(self, full: Any, mask: Any, values: Any) -> Any:
        """``full`` with ``values`` written where ``mask`` is set (in place where the
        namespace's arrays are mutable)."""
        full[mask] = values
        return full

    def _one_hot(self, x: Any, ids: Any, k: int) -> Any:
        """``(n, k, ...)`` mask of each element's segment, to broadcast against ``x[:, None]``:
        the standard has no scatter, so the segments are reduced through it (memory
        ``n * k`` times the trailing size, fine for the libraries without a scatter of
        their own, which override these)."""
        xp = self.xp
        arange = xp.arange(k, dtype=ids.dtype, device=device_of(ids))
        hot = ids[:, None] == arange[None, :]
        return xp.reshape(hot, tuple(hot.shape) + (1,) * (x.ndim - 1))

    def segment_max(self, x: Any, ids: Any, k: int) -> Any:
        """The max of the rows of ``x`` (n, ...) in each of ``k`` segments (-inf for none)."""
        xp = self.xp
        if x.shape[0] == 0:
            return xp.full((k,) + tuple(x.shape[1:]), -math.inf, dtype=x.dtype, device=device_of(x))
        picked = xp.where(self._one_hot(x, ids, k), x[:, None, ...], xp.asarray(-math.inf, dtype=x.dtype))
        return xp.max(picked, axis=0)

    def segment_sum(self, x: Any, ids: Any, k: int) -> Any:
        """The sum of the rows of ``x`` (n, ...) in each of ``k`` segments (0 for none)."""
        xp = self.xp
        picked = xp.where(self._one_hot(x, ids, k), x[:, None, ...], xp.asarray(0.0, dtype=x.dtype))
        return xp.sum(picked, axis=0)

    def top_k(self, x: Any, k: int, axis: int) -> tuple[Any, Any]:
        """``(values, indices)`` of the ``k`` largest elements of ``x`` along ``axis`` (a
        normalized axis, ``0 < k <= n``), largest first, of ``x``'s shape with ``axis``
        of length ``k``: NumPy's partition, else a descending stable sort of the whole
        axis, sliced (libraries with a top-k of their own override this)."""
        xp = self.xp
        if is_numpy_namespace(xp):
            return numpy_top_k(x, k, axis)
        order = xp.argsort(x, axis=axis, descending=True, stable=True)
        index = order[(slice(None),) * axis + (slice(0, k), ...)]
        return xp.take_along_axis(x, index, axis=axis), index
