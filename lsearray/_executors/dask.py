"""The dask executor: lazy tree reductions, scans and blockwise maps over dask arrays."""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from lsearray._executors import array_api_lse, dask_tree, matmul, partials, segment, softaverage
from lsearray._executors.array_api import ArrayAPIExecutor, directed_scan, numpy_top_k
from lsearray._executors.narrow import narrowed
from lsearray._executors.random import from_uniform, type_name
from lsearray._validation import (
    Prepared, complex_rejected, flag, real_floating, scan_axis, temperature_not_scalar,
    temperature_value, with_mask_weights,
)

__all__ = ["DaskExecutor"]


def _native(x: Any) -> Any:
    """A dask array in the machine's byte order, converted chunk by chunk as they are
    read (the kernel reads native data only); anything else as it is."""
    if isinstance(x, da.Array) and not x.dtype.isnative:
        return x.astype(x.dtype.newbyteorder("="))
    return x


def _input_shape(x: Any, p) -> Any:
    """Back to a 0-d input's shape (validation made it 1-d); chunk sizes may be unknown."""
    return x.reshape(()) if len(p.shape) == 0 else x


def _shifted_block(x: np.ndarray, m: np.ndarray, tau: float) -> np.ndarray:
    """``(x - m) / tau`` in float64 for one block; inf - inf is a nan on purpose."""
    with np.errstate(invalid="ignore"):
        return (x.astype(np.float64) - m) / tau


def _without_empty_chunks(x: Any) -> Any:
    """A dask array rechunked without its size-0 chunks (dask's own reductions fail
    on them); anything else as it is."""
    if not isinstance(x, da.Array) or all(all(c for c in dim) for dim in x.chunks):
        return x
    return x.rechunk(tuple(tuple(c for c in dim if c) or (0,) for dim in x.chunks))


def _gumbel(shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
    """Lazy Gumbel noise from dask's generator, chunked like ``like`` where they agree."""
    try:
        generator = da.random.default_rng(rng)
    except TypeError:
        raise TypeError(
            f"{func}: rng for dask logits must be a numpy or dask Generator, a seed (int) or None; "
            f"got {type_name(rng)}"
        ) from None
    # The trailing axes are the logits' (broadcast): take their chunks where the sizes agree.
    lead = len(shape) - like.ndim
    chunks = tuple(
        like.chunks[k - lead] if k >= lead and like.shape[k - lead] == n else "auto"
        for k, n in enumerate(shape)
    )
    u = generator.random(shape, chunks=chunks)
    return from_uniform(u, array_namespace(u)).astype(like.dtype)


class DaskExecutor(ArrayAPIExecutor):
    """Runs calls on dask arrays lazily: reductions as one tree of partials (each chunk
    read once by its own executor, merged with fan-in ``split_every``), scans block by
    block with carries, elementwise functions blockwise. NumPy arrays beside a dask
    array join it as dask arrays."""

    def __init__(self, xp: Any = None) -> None:
        super().__init__(array_namespace(da.empty(0)) if xp is None else xp)

    def prepare(self, a: Any, b: Any, axis: Any, temperature: Any, func: str,
                where: Any = None) -> tuple[Prepared, Any]:
        """`ArrayAPIExecutor.prepare` on dask arrays: inputs as dask arrays in native byte
        order without empty chunks, and the temperature as a float (the lazy reductions
        take one)."""
        scalars = (bool, int, float, complex)
        weak = type(a) in scalars and b is not None and type(b) not in scalars  # b's dtype decides
        a = a if isinstance(a, da.Array) or weak else da.asarray(a)
        if b is not None and not isinstance(b, scalars):
            b = b if isinstance(b, da.Array) else da.asarray(b)
        if where is not None:
            where = where if isinstance(where, da.Array) else da.asarray(where)
        if is_array_api_obj(temperature):
            if temperature.ndim != 0:
                raise temperature_not_scalar(func, temperature.shape)
            temperature = float(temperature)
        p, compute = super().prepare(_native(a), _native(b), axis, temperature, func, where)
        return p._replace(a=_without_empty_chunks(p.a), b=_without_empty_chunks(p.b),
                          where=_without_empty_chunks(p.where)), compute

    def logsumexp(self, a: Any, axis: Any, b: Any, keepdims: bool, return_sign: bool,
                  temperature: Any, where: Any = None, split_every: Any = None) -> Any:
        p, compute = self.prepare(a, b, axis, temperature, "logsumexp", where)
        p = with_mask_weights(p, self.xp)
        if self.xp.isdtype(compute, "complex floating"):  # the array-API code, lazily
            xp = self.xp
            out, sign = array_api_lse.logsumexp(p.a, p.b, p.axes, p.tau, return_sign, xp)
            out = array_api_lse.shaped(out, p.axes, keepdims, p.dtype, xp)
            if return_sign:
                return out, array_api_lse.shaped(sign, p.axes, keepdims, p.dtype, xp)
            return out
        mode = "signed" if return_sign else "lse"
        r = dask_tree.reduce(p.a, p.b, p.axes, p.tau, keepdims, mode, p.dtype, split_every)
        return (r.real.astype(p.dtype), r.imag.astype(p.dtype)) if return_sign else r

    def logmeanexp(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                   where: Any = None, split_every: Any = None) -> Any:
        p, compute = self.prepare(a, b, axis, temperature, "logmeanexp", where)
        p = with_mask_weights(p, self.xp)
        if self.xp.isdtype(compute, "complex floating"):
            out = array_api_lse.logmeanexp(p.a, p.b, p.axes, p.tau, self.xp)
            return array_api_lse.shaped(out, p.axes, keepdims, p.dtype, self.xp)
        return dask_tree.reduce(p.a, p.b, p.axes, p.tau, keepdims, "mean", p.dtype, split_every)

    def _normalizer_and_gaps(self, x: Any, axis: Any, temperature: Any, func: str,
                             where: Any, split_every: Any) -> tuple[Prepared, Any, Any, Any]:
        """The validated arguments, ``(x - m) / tau`` in float64, ``m`` and ``log|S|``
        from one reduction (two passes over ``x`` in all: every output needs its slice's
        normalizer); elements a mask leaves out enter as -inf, chunk by chunk."""
        p = self._real_prepared(x, axis, temperature, func, where=where)
        a = p.a if p.where is None else da.where(p.where, p.a, -np.inf)
        m, log_total = dask_tree.normalizer(a, p.axes, p.tau, split_every)
        z = da.map_blocks(_shifted_block, a, m, p.tau, dtype=np.float64)
        return p, z, m, log_total

    def softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None,
                split_every: Any = None) -> Any:
        p, z, m, log_total = self._normalizer_and_gaps(x, axis, temperature, "softmax", where,
                                                       split_every)
        s = da.exp(z) / da.exp(log_total)
        s = da.where(da.isfinite(m), s, np.nan)
        if p.where is not None:  # 0 where left out, also in a slice with nothing kept
            s = da.where(p.where, s, 0.0)
        return _input_shape(s.astype(p.dtype), p)

    def log_softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None,
                    split_every: Any = None) -> Any:
        p, z, _, log_total = self._normalizer_and_gaps(x, axis, temperature, "log_softmax", where,
                                                       split_every)
        s = z - log_total
        if p.where is not None:
            s = da.where(p.where, s, -np.inf)
        return _input_shape(narrowed(s, p.dtype), p)

    def logaddexp(self, x1: Any, x2: Any, temperature: Any) -> Any:
        x1, x2, dtype = self.logaddexp_operands(x1, x2)
        tau = temperature_value(temperature, "logaddexp")

        def logaddexp_blocks(b1: Any, b2: Any) -> Any:
            return dask_tree.block_executor(b1, b2).logaddexp(b1, b2, tau)

        out = da.core.elemwise(logaddexp_blocks, x1, x2, dtype=x1.dtype)
        return out if out.dtype == dtype else out.astype(dtype)

    def logdiffexp(self, x1: Any, x2: Any, temperature: Any, return_sign: Any) -> Any:
        """Block by block on the blocks' executor (the kernel for NumPy chunks); the sign,
        where asked for, from comparisons of the arguments, lazily too."""
        return_sign = flag(return_sign, "return_sign", "logdiffexp")
        x1, x2, dtype = self.logaddexp_operands(x1, x2, "logdiffexp")
        tau = temperature_value(temperature, "logdiffexp")

        def logdiffexp_blocks(b1: Any, b2: Any) -> Any:
            out = dask_tree.block_executor(b1, b2).logdiffexp(b1, b2, tau, return_sign)
            return out[0] if return_sign else out

        out = da.core.elemwise(logdiffexp_blocks, x1, x2, dtype=x1.dtype)
        if return_sign:
            sign = da.where(x1 > x2, 1.0, da.where(x1 < x2, -1.0, 0.0)).astype(x1.dtype)
            sign = da.where(da.isnan(out), np.nan, sign).astype(dtype)
        out = out if out.dtype == dtype else out.astype(dtype)
        return (out, sign) if return_sign else out

    def log1mexp(self, x: Any) -> Any:
        x, dtype = self.unary_operand(x, "log1mexp")

        def log1mexp_block(block: Any) -> Any:
            return dask_tree.block_executor(block).log1mexp(block)

        out = da.map_blocks(log1mexp_block, x, dtype=x.dtype)
        return out if out.dtype == dtype else out.astype(dtype)

    def logcumsumexp(self, a: Any, axis: Any, temperature: Any, reverse: Any = False,
                     exclusive: Any = False, where: Any = None) -> Any:
        """Each block is scanned once; the carries (the last slice of the scan so far)
        merge into the next block with logaddexp. Reverse and exclusive scans flip and
        shift the array lazily around it; the elements a mask leaves out enter as -inf,
        block by block."""
        p = self._real_prepared(a, None, temperature, "logcumsumexp", "a", where)
        axis = scan_axis(axis, len(p.shape), "logcumsumexp")
        tau = p.tau  # a float: prepare took an array temperature's value
        x = p.a if p.where is None else da.where(p.where, p.a, -np.inf).astype(p.a.dtype)

        def logcumsumexp_block(block: Any, axis: int) -> Any:
            return dask_tree.block_executor(block).logcumsumexp(block, axis, tau)

        def logaddexp_blocks(b1: Any, b2: Any) -> Any:
            return dask_tree.block_executor(b1, b2).logaddexp(b1, b2, tau)

        if axis is None:  # dask cannot flatten an empty array of several chunks: one chunk then
            x, axis = (x.rechunk(-1) if 0 in x.shape else x).reshape(-1), 0
        out = directed_scan(
            lambda y: da.reductions.cumreduction(logcumsumexp_block, logaddexp_blocks, -math.inf, y,
                                                 axis=axis, dtype=y.dtype),
            x, axis, reverse, exclusive, self.xp)
        return out if out.dtype == p.dtype else out.astype(p.dtype)

    def logmatmulexp(self, a: Any, b: Any) -> Any:
        """One block product per (i, k, j) triple of chunks, merged over the k chunks by
        the tree reduction."""
        return matmul.dask_product(a, b)

    def stream_partial(self, batch: Any, b: Any, axis: Any, tau: float, func: str) -> tuple:
        """`ArrayAPIExecutor.stream_partial`, lazily: each block's partial by its own
        executor, merged in one tree; the partial's fields are views of one packed array
        (`dask_tree.stream_partial`)."""
        p, compute = self.prepare(batch, b, axis, tau, func)
        if self.xp.isdtype(compute, "complex floating"):
            raise complex_rejected(func, "batch", compute)
        shape = tuple(n for k, n in enumerate(p.a.shape) if k not in p.axes)
        packed = dask_tree.stream_partial(p.a, p.b, p.axes, tau, self._state_dtype(p.a))
        count = math.prod(p.a.shape[k] for k in p.axes)
        return dask_tree.lazy_partial(packed), shape, count, p.dtype, None, p.shape

    def _state_dtype(self, a: Any) -> Any:
        """The dtype of a stream's partials: float64 for NumPy chunks (the kernel's), the
        computation's dtype for others."""
        return np.float64 if isinstance(a._meta, np.ndarray) else a.dtype

    def stream_merge(self, state: partials.Partial, part: partials.Partial,
                     tau: float) -> partials.Partial:
        """The merge of two streams' partials, block by block."""
        dtype = self.xp.result_type(state.max.dtype, part.max.dtype)
        merged = dask_tree.stream_merge(dask_tree.lazy_packed(state, dtype),
                                        dask_tree.lazy_packed(part, dtype), tau)
        return dask_tree.lazy_partial(merged)

    def stream_result(self, part: partials.Partial, dtype: Any, tau: float, mean: bool,
                      return_sign: bool) -> tuple[Any, Any]:
        """A stream's lazy ``(result, sign)``: finalized by the blocks' executors and
        rounded to ``dtype`` (dask computes later, outside any errstate: a result beyond
        the dtype's range is inf without the overflow warning float32 arithmetic would
        give)."""
        state_dtype = part.max.dtype
        out, sign = dask_tree.stream_finalize(dask_tree.lazy_packed(part, state_dtype), tau, mean,
                                              state_dtype)
        if not return_sign:
            out = da.where(sign < 0, math.nan, out)
        return narrowed(out, dtype), narrowed(sign, dtype)

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        return _gumbel(shape, like, rng, func)

    def readable(self, x: Any) -> bool:
        return False

    def top_k(self, x: Any, k: int, axis: int) -> tuple[Any, Any]:
        """NumPy's top-k block by block, lazily, with ``axis`` rechunked into one chunk (so
        each block holds whole slices: that chunk's size times the other axes' chunks must
        fit in memory). dask's own ``argtopk`` is not used: it fails where ``k`` exceeds a
        chunk of the axis."""
        whole = x.rechunk({axis: -1})
        chunks = tuple((k,) if d == axis else c for d, c in enumerate(whole.chunks))
        index = whole.map_blocks(lambda b: numpy_top_k(b, k, axis)[1], chunks=chunks, dtype=np.intp)
        values = da.map_blocks(lambda b, i: np.take_along_axis(b, i, axis=axis), whole, index,
                               chunks=chunks, dtype=whole.dtype)
        return values, index

    def softmax_average(self, a: Any, v: Any, axis: Any, temperature: Any,
                        keepdims: bool) -> tuple[Any, Any]:
        """One pass over the chunks: each pair of blocks of ``a`` and ``v`` to its packed
        ``(m, s, acc)`` state (blockwise, by the blocks' executor), the states merged along
        the axis in a tree of `dask.array.reduction`, then unpacked."""
        func = "softmax_average"
        a, v, axis, tau = softaverage.prepared_operands(self.xp, a, v, axis, temperature, func)
        features = tuple(v.shape[a.ndim:])
        width = math.prod(features)
        lead = "".join(chr(ord("a") + i) for i in range(a.ndim))
        tail = "".join(chr(ord("A") + i) for i in range(len(features)))
        # the feature axes in one chunk: a block's state holds all of them
        v = v.rechunk({a.ndim + i: -1 for i in range(len(features))})

        def state_block(ab: Any, vb: Any) -> Any:
            ex = dask_tree.block_executor(ab, vb)
            with ex.quiet():
                return _packed_average(ex.xp, softaverage.batch_state(ex.xp, ab, vb, axis, tau))

        packed = da.blockwise(state_block, lead + "z", a, lead, v, lead + tail, dtype=a.dtype,
                              new_axes={"z": 2 + width}, adjust_chunks={lead[axis]: 1},
                              concatenate=True, meta=np.empty((0,) * (a.ndim + 1), dtype=a.dtype))

        def merge_blocks(block: Any, axis: Any = None, keepdims: bool = True,
                         computing_meta: bool = False) -> Any:
            if computing_meta:
                return block
            xp = dask_tree.block_executor(block).xp
            with np.errstate(all="ignore"):
                merged = softaverage.merge_along(xp, _unpacked_average(xp, block, features),
                                                 axis[0], tau)
                return _packed_average(xp, merged)

        merged = da.reduction(packed, lambda b, axis, keepdims: b, merge_blocks, axis=axis,
                              keepdims=True, dtype=a.dtype, combine=merge_blocks,
                              concatenate=True, meta=packed._meta)

        def finish_block(block: Any) -> Any:
            xp = dask_tree.block_executor(block).xp
            with np.errstate(all="ignore"):  # an all -inf slice's log(0) and 0 / 0 are its values
                lse, avg = softaverage.finalize(xp, _unpacked_average(xp, block, features), None, tau)
            return xp.concat([lse[..., None], xp.reshape(avg, tuple(lse.shape) + (-1,))], axis=-1)

        done = da.map_blocks(finish_block, merged, dtype=a.dtype,
                             chunks=merged.chunks[:-1] + ((1 + width,),))
        lse = done[..., 0]
        avg = self.xp.reshape(done[..., 1:], tuple(lse.shape) + features)
        if not keepdims:
            lse, avg = self.xp.squeeze(lse, axis=axis), self.xp.squeeze(avg, axis=axis)
        return lse, avg

    def id_range(self, ids: Any) -> tuple[int, int]:
        """``(min(ids), max(ids))`` computed together: one pass over the ids' graph."""
        low, high = da.compute(da.min(ids), da.max(ids))
        return int(low), int(high)

    def _segment_operands(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, func: str) -> tuple[Any, Any, int, int, Any, float]:
        """``(a, ids, k, axis, b, tau)`` checked: ``ids`` a dask array chunked like ``a``'s
        axis, ``b`` None or broadcast to ``a`` and chunked like it. The ids' range is
        checked at once, by a pass over them alone."""
        xp = self.xp
        tau = temperature_value(temperature, func)
        a = real_floating(xp, _native(a if isinstance(a, da.Array) else da.asarray(a)), "a",
                          func, None)
        axis = segment.axis_of(axis, a.ndim, tuple(a.shape), func)
        ids = ids if isinstance(ids, da.Array) else da.asarray(ids)
        ids, k = segment.checked_ids(self, ids, a.shape[axis], num_segments, True, func, None)
        a = _without_empty_chunks(a)
        ids = ids.rechunk((a.chunks[axis],))
        if b is not None:
            b = real_floating(xp, _native(b if isinstance(b, da.Array) else da.asarray(b)), "b",
                              func, None)
            try:
                shape = np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                shape = None
            if shape != a.shape:
                raise ValueError(f"{func}: b must broadcast to a's shape {a.shape}; got shape {b.shape}")
            dtype = np.result_type(a.dtype, b.dtype)
            a = a.astype(dtype)
            b = da.broadcast_to(b.astype(dtype), a.shape).rechunk(a.chunks)
        return a, ids, k, axis, b, tau

    def _segment_state(self, a: Any, ids: Any, k: int, axis: int, b: Any, tau: float) -> Any:
        """The float64 ``(m, s)`` of each segment, stacked along a last axis of length 2 and
        shaped like ``a`` with ``axis`` of length ``k`` before it (the segments in one
        chunk): each chunk to its segments' state (blockwise, by the chunk's executor),
        the states merged along ``axis`` in a tree of `dask.array.reduction`."""
        lead = "".join(chr(ord("a") + i) for i in range(a.ndim))

        def state_block(ab: Any, ib: Any, bb: Any = None) -> Any:
            ex = dask_tree.block_executor(ab)
            xp = ex.xp
            p = segment.Segmented(xp.moveaxis(ab, axis, 0), ib, k, axis,
                                  None if bb is None else xp.moveaxis(bb, axis, 0), tau)
            with ex.quiet():
                m, s = ex.segment_state(p)
            # (k, rest) to (rest with a length-1 axis at ``axis``, k, 2)
            return xp.stack([xp.expand_dims(xp.moveaxis(x, 0, -1), axis=axis) for x in (m, s)],
                            axis=-1)

        operands = [a, lead, ids, lead[axis]] + ([] if b is None else [b, lead])
        packed = da.blockwise(state_block, lead + "yz", *operands, dtype=np.float64,
                              new_axes={"y": k, "z": 2}, adjust_chunks={lead[axis]: 1},
                              concatenate=True, meta=np.empty((0,) * (a.ndim + 2)))

        def merge_blocks(block: Any, axis: Any = None, keepdims: bool = True,
                         computing_meta: bool = False) -> Any:
            if computing_meta:
                return block
            xp = dask_tree.block_executor(block).xp
            with np.errstate(all="ignore"):
                m, s = segment.merge_along(xp, block[..., 0], block[..., 1], axis[0], tau)
            return xp.stack([m, s], axis=-1)

        merged = da.reduction(packed, lambda x, axis, keepdims: x, merge_blocks, axis=axis,
                              keepdims=True, dtype=np.float64, combine=merge_blocks,
                              concatenate=True, meta=packed._meta)
        return da.moveaxis(da.squeeze(merged, axis=axis), -2, axis)

    def segment_logsumexp(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, sorted: bool, func: str) -> Any:
        """One pass: see `_segment_state`; ``sorted`` is only a hint."""
        a, ids, k, axis, b, tau = self._segment_operands(a, ids, num_segments, axis, b,
                                                         temperature, func)

        def finish_block(block: Any) -> Any:
            xp = dask_tree.block_executor(block).xp
            with np.errstate(all="ignore"):
                return segment.finalize(xp, block[..., 0], block[..., 1], tau)

        state = self._segment_state(a, ids, k, axis, b, tau)
        return da.map_blocks(finish_block, state, dtype=np.float64,
                             drop_axis=a.ndim).astype(a.dtype)

    def segment_normalized(self, a: Any, ids: Any, num_segments: Any, axis: Any,
                           temperature: Any, sorted: bool, func: str, log: bool) -> Any:
        """Two passes, as `softmax`: the segments' ``(m, s)``, then each chunk normalized
        by its elements' segments' (blockwise, `segment.normalized_from`)."""
        a, ids, k, axis, _, tau = self._segment_operands(a, ids, num_segments, axis, None,
                                                         temperature, func)
        state = self._segment_state(a, ids, k, axis, None, tau)
        lead = "".join(chr(ord("a") + i) for i in range(a.ndim))

        def normalized_block(ab: Any, ib: Any, sb: Any) -> Any:
            xp = dask_tree.block_executor(ab).xp
            ms = xp.take(xp.moveaxis(sb, axis, 0), ib, axis=0)
            with np.errstate(all="ignore"):
                out = segment.normalized_from(xp, xp.moveaxis(ab, axis, 0), ms[..., 0],
                                              ms[..., 1], tau, log)
            return xp.astype(xp.moveaxis(out, 0, axis), ab.dtype)

        seg = lead[:axis] + "y" + lead[axis + 1:]
        return da.blockwise(normalized_block, lead, a, lead, ids, lead[axis], state, seg + "z",
                            dtype=a.dtype, concatenate=True)


def _packed_average(xp: Any, state: softaverage.Average) -> Any:
    """A state as one array: ``m``, ``s`` and the flattened ``acc`` along a new last axis."""
    acc = xp.reshape(state.acc, tuple(state.m.shape) + (-1,))
    return xp.concat([state.m[..., None], state.s[..., None], acc], axis=-1)


def _unpacked_average(xp: Any, packed: Any, features: tuple[int, ...]) -> softaverage.Average:
    acc = xp.reshape(packed[..., 2:], tuple(packed.shape[:-1]) + features)
    return softaverage.Average(packed[..., 0], packed[..., 1], acc)
