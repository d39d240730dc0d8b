"""The NumPy executor: NumPy arrays (and lists and scalars) on the lsecore kernel."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import numpy as np_compat

import lsecore
from lsearray._executors import matmul, numpy_segment, numpy_softmax, partials, segment
from lsearray._executors.array_api import ArrayAPIExecutor, directed_scan
from lsearray._executors.narrow import narrowed
from lsearray._executors.numpy_reduce import Finalized, reduce
from lsearray._validation import (
    Prepared, as_real_array, broadcast_shape, flag, prepare, scan_axis, temperature_value,
)

__all__ = ["NumPyExecutor", "build_info"]


def _shaped(x: np.ndarray, axes: tuple[int, ...], keepdims: bool, dtype: np.dtype) -> Any:
    """Round to ``dtype`` (to inf where the result overflows it), restore reduced axes for
    keepdims, and return 0-d results as NumPy scalars."""
    x = narrowed(x, dtype)
    if keepdims:
        x = np.expand_dims(x, axes)
    return x[()] if x.ndim == 0 else x


def _nan_where_negative(r: Finalized, p: Prepared) -> np.ndarray:
    """``r.out``, nan where the sum is negative (only negative weights make one)."""
    return r.out if p.b is None else np.where(r.sign < 0, np.nan, r.out)


def _divisor(p: Prepared) -> np.ndarray | float:
    """What a mean divides the sum by: the count, or the sum of the weights; nan for 0."""
    if p.b is None:
        count = math.prod((p.a.shape[k] for k in p.axes), start=1.0)
        return count if count else math.nan
    with np.errstate(over="ignore"):
        total = np.sum(p.b, axis=p.axes, dtype=np.float64)
    return np.where(total == 0, np.nan, total)


def _summable(p: Prepared) -> Prepared:
    """``p`` with finite weights whose sum overflows scaled by 2^-64: a mean is the same
    for weights scaled alike (only then is a scaled copy of ``b`` made)."""
    with np.errstate(over="ignore"):
        total = np.sum(p.b, axis=p.axes, dtype=np.float64)
    if np.isinf(total).any() and np.isfinite(p.b).all():
        return p._replace(b=np.ldexp(p.b, -64))
    return p


_WEAK = (bool, int, float)  # Python scalars: they take the other argument's dtype


def _logaddexp(x1: Any, x2: Any, tau: float) -> Any:
    """The lsecore kernel's logaddexp, with NumPy's dtype and scalar conventions."""
    x1 = x1 if type(x1) in _WEAK else as_real_array(x1, "x1", "logaddexp")
    x2 = x2 if type(x2) in _WEAK else as_real_array(x2, "x2", "logaddexp")
    broadcast_shape("logaddexp", ("x1", np.shape(x1)), ("x2", np.shape(x2)))
    dtype = np.result_type(x1, x2)
    dtype = dtype.newbyteorder("=") if dtype.kind == "f" else np.dtype(np.float64)
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    out = narrowed(lsecore.logaddexp(x1, x2, tau, compute), dtype)
    return out[()] if out.ndim == 0 else out


def _logdiffexp(x1: Any, x2: Any, tau: float, return_sign: bool, func: str = "logdiffexp") -> Any:
    """The lsecore kernel's logdiffexp (with its sign), with NumPy's dtype and scalar
    conventions as `_logaddexp`; ``func`` names the public function in errors."""
    x1 = x1 if type(x1) in _WEAK else as_real_array(x1, "x1", func)
    x2 = x2 if type(x2) in _WEAK else as_real_array(x2, "x2", func)
    broadcast_shape(func, ("x1", np.shape(x1)), ("x2", np.shape(x2)))
    dtype = np.result_type(x1, x2)
    dtype = dtype.newbyteorder("=") if dtype.kind == "f" else np.dtype(np.float64)
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    outs = lsecore.logdiffexp(x1, x2, tau, compute, return_sign)
    outs = tuple(narrowed(o, dtype) for o in (outs if return_sign else (outs,)))
    outs = tuple(o[()] if o.ndim == 0 else o for o in outs)
    return outs if return_sign else outs[0]


def _log1mexp(x: Any) -> Any:
    """``log(1 - exp(x))`` as the kernel's ``logdiffexp(0, x)``: the same one rounding."""
    if type(x) not in _WEAK:
        x = as_real_array(x, "x", "log1mexp")
    elif type(x) is not float:  # a Python int or bool alone: the default float, as NumPy's
        x = float(x)
    return _logdiffexp(0.0, x, 1.0, False, "log1mexp")


def build_info() -> dict[str, object]:
    """How the lsecore kernel was built and what it runs on this machine.

    Returns
    -------
    info : dict
        ``openmp`` (bool): built with OpenMP; ``simd_compiled`` (list of str): the
        instruction sets compiled in; ``simd`` (str): the one this machine runs;
        ``max_threads`` (int): the threads a reduction may use.

    Examples
    --------
    >>> import lsearray
    >>> sorted(lsearray.build_info())
    ['max_threads', 'openmp', 'simd', 'simd_compiled']
    """
    return dict(lsecore.build_info())


class NumPyExecutor(partials.PartialAlgebra):
    """Runs calls on NumPy arrays (lists, scalars) with the lsecore kernel: one read of
    the input, no temporaries its size, results in NumPy's dtype and scalar conventions."""

    library = "numpy"
    xp = np_compat  # the namespace of its partials: float64 NumPy arrays
    on_kernel = True

    def scalar_if_0d(self, x: Any) -> Any:
        """A 0-d result as a NumPy scalar, as NumPy's reductions give it."""
        return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x

    def device_of(self, x: Any) -> None:
        """NumPy arrays live on the CPU; the kernel has no devices to tell apart."""
        return None

    def logsumexp(self, a: Any, axis: Any, b: Any, keepdims: bool, return_sign: bool,
                  temperature: Any, where: Any = None) -> Any:
        p = prepare(a, b, axis, temperature, "logsumexp", where)
        # Only a value rounded to float32 (or narrower) is asked for: see lsecore.reduce_partials.
        narrow = p.b is None and not return_sign and np.dtype(p.dtype).itemsize <= 4
        if p.b is None and not return_sign:  # positive: no sign to ask for
            out = lsecore.reduce_finalized(p.a, p.axes, 1.0 / p.tau, p.tau, float32_result=narrow)
            if out is not None:
                return _shaped(out, p.axes, keepdims, p.dtype)
        r = reduce(p, sign=return_sign or p.b is not None, log_total=False,
                   float32_result=narrow, exact=True)
        if not return_sign:
            return _shaped(_nan_where_negative(r, p), p.axes, keepdims, p.dtype)
        return (_shaped(r.out, p.axes, keepdims, p.dtype),
                _shaped(r.sign, p.axes, keepdims, p.dtype))

    def logmeanexp(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                   where: Any = None) -> Any:
        p = prepare(a, b, axis, temperature, "logmeanexp", where)
        if p.b is None:
            out = lsecore.reduce_finalized(p.a, p.axes, 1.0 / p.tau, p.tau, _divisor(p))
            if out is not None:
                return _shaped(out, p.axes, keepdims, p.dtype)
        if p.b is not None:
            p = _summable(p)
        r = reduce(p, _divisor(p), sign=p.b is not None, log_total=False, exact=True)
        return _shaped(_nan_where_negative(r, p), p.axes, keepdims, p.dtype)

    def softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return numpy_softmax.softmax(prepare(x, None, axis, temperature, "softmax", where))

    def log_softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return numpy_softmax.log_softmax(prepare(x, None, axis, temperature, "log_softmax", where))

    def logaddexp(self, x1: Any, x2: Any, temperature: Any) -> Any:
        return _logaddexp(x1, x2, temperature_value(temperature, "logaddexp"))

    def logdiffexp(self, x1: Any, x2: Any, temperature: Any, return_sign: Any) -> Any:
        return _logdiffexp(x1, x2, temperature_value(temperature, "logdiffexp"),
                           flag(return_sign, "return_sign", "logdiffexp"))

    def log1mexp(self, x: Any) -> Any:
        return _log1mexp(x)

    def logcumsumexp(self, a: Any, axis: Any, temperature: Any, reverse: Any = False,
                     exclusive: Any = False, where: Any = None) -> Any:
        p = prepare(a, None, None, temperature, "logcumsumexp", where)
        axis = scan_axis(axis, len(p.shape), "logcumsumexp")
        x, mask = p.a, p.where
        if axis is None:  # a view where a is C-contiguous; else the copy the kernel would make
            x, axis = x.reshape(-1), 0
            mask = None if mask is None else mask.reshape(-1)
        # reverse: the kernel reads the flipped views (negative strides) in place; a mask is
        # read beside the input, as bytes laid out as the result
        def scan(y: np.ndarray, m: np.ndarray | None = None) -> np.ndarray:
            if m is None:
                return lsecore.logcumsumexp(y, axis, p.tau)
            return lsecore.logcumsumexp(y, axis, p.tau, m)

        out = directed_scan(scan, x, axis, reverse, exclusive, np_compat, mask)
        return narrowed(out, p.dtype)

    def logmatmulexp(self, a: Any, b: Any) -> Any:
        return matmul.numpy_product(a, b)

    def stream_partial(self, batch: Any, b: Any, axis: Any, tau: float, func: str) -> tuple:
        """`OnlineLogSumExp.update`'s partial of a batch: ``(partial shaped like the
        result, that shape, the elements reduced, the result dtype, the device, the
        batch's shape)``."""
        p = prepare(batch, b, axis, tau, func)
        shape = tuple(n for k, n in enumerate(p.a.shape) if k not in p.axes)
        with np.errstate(all="ignore"):
            part = partials.reshaped(self.partial(p.a, p.b, p.axes, 1.0 / tau, mean=True),
                                     shape, np)
        return part, shape, math.prod(p.a.shape[k] for k in p.axes), p.dtype, None, p.shape

    def stream_merge(self, state: partials.Partial, part: partials.Partial,
                     tau: float) -> partials.Partial:
        """The merge of two streams' partials."""
        with np.errstate(all="ignore"):
            return self.merge([state, part], 1.0 / tau)

    def quiet(self) -> Any:
        """A context without NumPy's floating-point warnings (the kernel's special values
        are its results, not errors)."""
        return np.errstate(all="ignore")

    def result_type(self, *dtypes: Any) -> Any:
        """The dtype ``dtypes`` promote to."""
        return np.result_type(*dtypes)

    def stream_result(self, part: partials.Partial, dtype: Any, tau: float, mean: bool,
                      return_sign: bool) -> tuple[Any, Any]:
        """A stream's ``(result, sign)`` in ``dtype`` (nan for negative sums without
        ``return_sign``), NumPy scalars for 0-d results."""
        with np.errstate(all="ignore"):
            out, sign = self.finalize_mean(part, tau) if mean else self.finalize(part, tau)[:2]
        if not return_sign:
            out = np.where(sign < 0, math.nan, out)
        return tuple(narrowed(np.asarray(x), dtype)[()] for x in (out, sign))

    def readable(self, x: Any) -> bool:
        return True

    def stop_gradient(self, y: Any) -> Any:
        return y

    def segment_max(self, x: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
        """The max of the rows of ``x`` in each of ``k`` segments, in float64 (-inf for none)."""
        out = np.full((k,) + x.shape[1:], -math.inf)
        np.maximum.at(out, ids, x)
        return out

    def segment_sum(self, x: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
        """The sum of the rows of ``x`` in each of ``k`` segments, in float64."""
        out = np.zeros((k,) + x.shape[1:])
        np.add.at(out, ids, x)
        return out

    def id_range(self, ids: Any) -> tuple[int, int]:
        """``(min(ids), max(ids))``: in one read on the kernel where ``ids`` are contiguous
        int64, the common case."""
        if ids.dtype == np.int64 and ids.flags.c_contiguous:
            return numpy_segment.id_range(ids)
        return super().id_range(ids)

    def segment_state(self, p: segment.Segmented) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's ``(m, s)``, in float64: without weights, the kernel's log-sum-exp
        (one read, within an ulp) as ``m`` with ``s`` 1 (0 for an empty segment, inf for a
        ``+inf`` one, nan for a nan one); weights, which may make a chunk's sum negative,
        take the scatters."""
        if p.b is not None:
            return super().segment_state(p)
        x = p.a if p.a.dtype == np.float64 else p.a.astype(np.float64)  # merged in float64
        lse = numpy_segment.logsumexp(x, np.ascontiguousarray(p.ids, dtype=np.intp), p.k, 0,
                                      None, p.tau, False)
        s = np.where(lse == -math.inf, 0.0, np.where(lse == math.inf, math.inf, 1.0))
        s[np.isnan(lse)] = math.nan
        return lse, s

    def _segment_operands(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, func: str) -> tuple[segment.Segmented, np.ndarray, Any]:
        """The checked operands with ``a`` as the kernel reads it (float32 or float64, the
        axis back in place), and the result's dtype."""
        p = segment.prepared(self, a, ids, num_segments, axis, b, temperature, func)
        dtype = p.a.dtype
        x = np.moveaxis(p.a, 0, p.axis)
        x = x.astype(np.float32) if x.dtype.itemsize < 4 else x
        ids = np.ascontiguousarray(p.ids, dtype=np.intp)
        b = None if p.b is None else np.moveaxis(p.b, 0, p.axis).astype(np.float64, copy=False)
        return p._replace(ids=ids, b=b), x, dtype

    def segment_logsumexp(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, sorted: bool, func: str) -> Any:
        p, x, dtype = self._segment_operands(a, ids, num_segments, axis, b, temperature, func)
        out = numpy_segment.logsumexp(x, p.ids, p.k, p.axis, p.b, p.tau, sorted)
        return narrowed(out, dtype)

    def segment_normalized(self, a: Any, ids: Any, num_segments: Any, axis: Any,
                           temperature: Any, sorted: bool, func: str, log: bool) -> Any:
        p, x, dtype = self._segment_operands(a, ids, num_segments, axis, None, temperature, func)
        return narrowed(numpy_segment.normalized(x, p.ids, p.k, p.axis, p.tau, sorted, log), dtype)

    def real_floating(self, x: Any, name: str, func: str) -> tuple[Any, ArrayAPIExecutor, Any]:
        """``x`` as a float64 array, the array-API executor on NumPy that computes on it
        (the samplers' noise, argmax and one-hot), and the dtype of a floating result."""
        p = prepare(as_real_array(x, name, func), None, None, 1.0, func)
        return np.asarray(p.a, dtype=np.float64).reshape(p.shape), ArrayAPIExecutor(np_compat), p.dtype
