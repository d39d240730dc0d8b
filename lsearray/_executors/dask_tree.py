"""One dask.array.reduction over (max, scaled-sum) partials: each chunk read once, merged in a tree."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from lsearray._executors.partials import Partial

__all__ = ["block_executor", "lazy_packed", "lazy_partial", "normalizer", "reduce",
           "stream_finalize", "stream_merge", "stream_partial"]

# The modes whose aggregate returns two real arrays: they travel as the real and
# imaginary parts of one complex array, which NumPy and CuPy chunks both carry.
_PAIRS = ("signed", "norm")


def _out_dtype(mode: str, dtype: Any) -> np.dtype:
    """The reduction's dtype: ``dtype``, or the complex dtype that holds a pair of them."""
    return np.result_type(dtype, np.complex64) if mode in _PAIRS else np.dtype(dtype)


def _pair(real: Any, imag: Any, dtype: np.dtype) -> Any:
    """One complex array holding ``real`` and ``imag`` exactly (no complex arithmetic,
    which would turn an infinite part into nan)."""
    z = real.astype(dtype)
    z.imag = imag
    return z


def _flat(parts: Any) -> list[Any]:
    """dask hands combine and aggregate one output (a Partial, or a stream's packed block),
    or lists of them nested per axis."""
    return [p for item in parts for p in _flat(item)] if isinstance(parts, list) else [parts]


def block_executor(*blocks: Any) -> Any:
    """The executor of a dask array's blocks (the NumPy kernel for NumPy chunks), as the
    delegation layer chooses it; imported when called, since `lsearray._delegation`
    imports the executors, this module among them."""
    from lsearray._delegation import executor

    return executor(*blocks)


def _chunk(x: Any, weights: Any = None, axis: tuple[int, ...] = (), keepdims: bool = True, *,
           inv_tau: float, mean: bool, computing_meta: bool = False) -> Any:
    if computing_meta:  # dask infers the intermediate's meta: an array, not a Partial
        return x
    return block_executor(x, weights).partial(x, weights, axis, inv_tau, mean=mean)


def _combine(parts: Any, axis: tuple[int, ...], keepdims: bool, *, inv_tau: float) -> Partial:
    parts = _flat(parts)
    return block_executor(parts[0].max).merge(parts, inv_tau)


def _aggregate(parts: Any, axis: tuple[int, ...], keepdims: bool, *, tau: float, mode: str,
               dtype: Any) -> Any:
    p = _combine(parts, axis, keepdims, inv_tau=1.0 / tau)
    ex = block_executor(p.max)
    xp = array_namespace(p.max)
    if mode == "norm":
        _, _, log_total = ex.finalize(p, tau)
        result = _pair(p.max, log_total, _out_dtype(mode, np.float64))
    else:
        out, sign = ex.finalize_mean(p, tau) if mode == "mean" else ex.finalize(p, tau)[:2]
        # float64 results rounded to a float32 result: beyond its range they are inf, and
        # the cast's overflow warning is noise (see lsearray._executors.narrow).
        with np.errstate(over="ignore"):
            if mode == "signed":
                result = _pair(out, sign, _out_dtype(mode, dtype))
            else:
                result = xp.astype(xp.where(sign < 0, xp.asarray(math.nan), out), dtype)
    return result if keepdims else xp.squeeze(result, axis=axis)


def reduce(a: Any, b: Any, axes: tuple[int, ...], tau: float, keepdims: bool, mode: str,
           dtype: Any, split_every: Any = None) -> Any:
    """The lazy reduction of dask array ``a`` (weights ``b``, a dask array or None).

    ``mode`` is "lse" (nan for negative sums), "signed" (the result and its sign as
    the real and imaginary parts of a complex array), "mean" (the log-mean-exp), or
    "norm" (the softmax normalizer: ``m`` and ``log|S|`` as real and imaginary parts,
    always with kept axes).
    """
    import dask.array as da

    out_dtype = _out_dtype(mode, np.float64 if mode == "norm" else dtype)
    ndim = a.ndim if keepdims else a.ndim - len(axes)
    meta_ns = array_namespace(a._meta)
    return da.reduction(
        a,
        chunk=functools.partial(_chunk, inv_tau=1.0 / tau, mean=mode == "mean"),
        combine=functools.partial(_combine, inv_tau=1.0 / tau),
        aggregate=functools.partial(_aggregate, tau=tau, mode=mode, dtype=dtype),
        axis=axes,
        keepdims=keepdims,
        dtype=out_dtype,
        split_every=split_every,
        concatenate=False,
        meta=meta_ns.empty((0,) * ndim, dtype=out_dtype),
        weights=b,
        name=f"lsearray-{mode}",
    )


def normalizer(a: Any, axes: tuple[int, ...], tau: float, split_every: Any = None) -> tuple[Any, Any]:
    """The shift ``m`` and ``log|S|`` of each slice (kept axes), for softmax."""
    norm = reduce(a, None, axes, tau, True, "norm", np.float64, split_every)
    return norm.real, norm.imag


# A stream's partial travels as one array per block, its fields along a last axis: max,
# top_weight, rest, rest_err, count, exponent and the mean's three sums.
_FIELDS = 9


def _fields(p: Partial) -> list[Any]:
    return [p.max, p.top_weight, p.rest, p.rest_err, p.count, p.exponent, *p.mean_sums]


def _from_fields(f: list[Any]) -> Partial:
    return Partial(*f[:6], tuple(f[6:]))


def _packed(p: Partial) -> Any:
    xp = array_namespace(p.max)
    f = _fields(p)
    f[5] = xp.zeros_like(p.max) if isinstance(p.exponent, int) else xp.broadcast_to(p.exponent, p.max.shape)
    return xp.stack(f, axis=-1)


def _unpacked(z: Any) -> Partial:
    p = _from_fields([z[..., k] for k in range(_FIELDS)])
    if isinstance(p.exponent, np.ndarray) and not p.exponent.any():
        p.exponent = 0  # no sums in units: the kernel's faster merge
    return p


def lazy_partial(packed: Any) -> Partial:
    """A packed dask stream partial as a `Partial` of dask arrays (views of its fields)."""
    return _from_fields([packed[..., k] for k in range(_FIELDS)])


def lazy_packed(p: Partial, dtype: Any) -> Any:
    """A `Partial` of dask arrays packed again, its fields in one chunk along the last axis."""
    import dask.array as da

    return da.stack([x.astype(dtype) for x in _fields(p)], axis=-1).rechunk({p.max.ndim: -1})


def _block_partial(x: Any, weights: Any = None, *, axes: tuple[int, ...], inv_tau: float) -> Any:
    ex = block_executor(x, weights)
    with ex.quiet():
        return _packed(ex.partial(x, weights, axes, inv_tau, mean=True))


def _as_it_is(z: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return z


def _merge_pair(x: Any, y: Any, *, inv_tau: float) -> Any:
    return _merge_packed([x, y], inv_tau=inv_tau)


def _merge_packed(parts: Any, axis: tuple[int, ...] = (), keepdims: bool = True, *,
                  inv_tau: float, computing_meta: bool = False) -> Any:
    blocks = _flat(parts)
    if computing_meta:
        return blocks[0]
    merged = [_unpacked(z) for z in blocks]
    ex = block_executor(merged[0].max)
    with ex.quiet():
        return _packed(ex.merge(merged, inv_tau))


def stream_partial(a: Any, b: Any, axes: tuple[int, ...], tau: float, dtype: Any) -> Any:
    """The stream partial of dask array ``a`` (weights ``b``, broadcast to its shape, or
    None) over ``axes``, packed (fields along a last axis, the reduced axes dropped): each
    block's partial by its own executor, merged in one tree."""
    import dask.array as da

    inv_tau = 1.0 / tau
    chunks = tuple((1,) * len(c) if k in axes else c for k, c in enumerate(a.chunks))
    meta = array_namespace(a._meta).empty((0,) * (a.ndim + 1), dtype=dtype)
    weights = [] if b is None else [b.rechunk(a.chunks)]  # block by block with a's
    blocks = da.map_blocks(_block_partial, a, *weights, axes=axes, inv_tau=inv_tau,
                           chunks=chunks + ((_FIELDS,),), new_axis=a.ndim, dtype=dtype,
                           meta=meta, token="lsearray-stream-partial")
    merge = functools.partial(_merge_packed, inv_tau=inv_tau)
    out = da.reduction(blocks, chunk=_as_it_is, combine=merge, aggregate=merge, axis=axes,
                       keepdims=True, concatenate=False, dtype=dtype, meta=meta,
                       name="lsearray-stream-merge")
    return da.squeeze(out, axis=axes)


def stream_merge(state: Any, part: Any, tau: float) -> Any:
    """The merge of two packed stream partials of the same shape, block by block."""
    import dask.array as da

    return da.map_blocks(_merge_pair, state, part.rechunk(state.chunks), inv_tau=1.0 / tau,
                         dtype=state.dtype, meta=state._meta, token="lsearray-stream-merge")


def _finalized_block(z: Any, *, tau: float, mean: bool, pair: Any) -> Any:
    p = _unpacked(z)
    ex = block_executor(p.max)
    with ex.quiet():
        out, sign = ex.finalize_mean(p, tau) if mean else ex.finalize(p, tau)[:2]
    return _pair(out, sign, pair)


def stream_finalize(packed: Any, tau: float, mean: bool, dtype: Any) -> tuple[Any, Any]:
    """A packed stream partial's lazy ``(result, sign)`` in ``dtype``, by the blocks'
    executors' finalizers."""
    import dask.array as da

    pair = _out_dtype("signed", dtype)
    meta = array_namespace(packed._meta).empty((0,) * (packed.ndim - 1), dtype=pair)
    z = da.map_blocks(_finalized_block, packed, tau=tau, mean=mean, pair=pair, dtype=pair,
                      drop_axis=packed.ndim - 1, meta=meta, token="lsearray-stream-result")
    return z.real.astype(dtype), z.imag.astype(dtype)
