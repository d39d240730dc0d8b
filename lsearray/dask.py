"""lsearray's functions on dask arrays: one tree reduction, each chunk read once, with ``split_every``."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from lsearray._executors import array_api_lse as _generic, dask_tree as _dask_reduction
from lsearray._executors.narrow import narrowed
from lsearray._validation import prepare_array_api

__all__ = ["log_softmax", "logmeanexp", "logsumexp", "softmax"]

try:  # at import, so that a missing extra is named before any work is done
    importlib.import_module("dask.array")
except ImportError as exc:
    raise ImportError("lsearray.dask needs dask: pip install 'lsearray[dask]'") from exc


def _native(x: Any) -> Any:
    """A dask array in the machine's byte order, converted chunk by chunk as they are
    read (the kernel reads native data only); anything else as it is."""
    import dask.array as da

    if isinstance(x, da.Array) and not x.dtype.isnative:
        return x.astype(x.dtype.newbyteorder("="))
    return x


def _prepared(a: Any, b: Any, axis: Any, temperature: Any, func: str):
    import dask.array as da
    from array_api_compat import array_namespace

    scalars = (bool, int, float, complex)
    weak = type(a) in scalars and b is not None and type(b) not in scalars  # b's dtype decides
    a = a if isinstance(a, da.Array) or weak else da.asarray(a)
    if b is not None and not isinstance(b, scalars):
        b = b if isinstance(b, da.Array) else da.asarray(b)
    a, b = _native(a), _native(b)
    xp = array_namespace(b if weak else a)
    p, compute = prepare_array_api(a, b, axis, temperature, func, xp)
    return p, compute, xp


def logsumexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    temperature: float = 1.0,
    split_every: int | dict | None = None,
) -> Any:
    """`lsearray.logsumexp` of a dask array as one lazy tree reduction.

    Each chunk is reduced to ``(max, scaled-sum)`` partials by the lsecore kernel
    (NumPy chunks) or the array-API code (other chunk types); partials merge in a tree
    of fan-in ``split_every`` and the root finalizes them. Every chunk is read once
    and freed, so memory stays near (threads + 1) chunks whatever the array's size.

    Parameters
    ----------
    a, axis, b, keepdims, return_sign, temperature
        As `lsearray.logsumexp`; ``b`` may be a dask or NumPy array.
    split_every : int or dict, optional
        The tree's fan-in, as in `dask.array.reduction`.

    Returns
    -------
    res : dask.array.Array
        Lazy; ``(res, sign)`` with ``return_sign``.

    Examples
    --------
    >>> import dask.array as da
    >>> import lsearray.dask
    >>> x = da.zeros((4, 6), chunks=(2, 3))
    >>> lsearray.dask.logsumexp(x, axis=1).compute()
    array([1.79175947, 1.79175947, 1.79175947, 1.79175947])
    """
    p, compute, xp = _prepared(a, b, axis, temperature, "logsumexp")
    if xp.isdtype(compute, "complex floating"):
        out, sign = _generic.logsumexp(p.a, p.b, p.axes, p.tau, return_sign, xp)
        out = _generic.shaped(out, p.axes, keepdims, p.dtype, xp)
        return (out, _generic.shaped(sign, p.axes, keepdims, p.dtype, xp)) if return_sign else out
    mode = "signed" if return_sign else "lse"
    r = _dask_reduction.reduce(p.a, p.b, p.axes, p.tau, keepdims, mode, p.dtype, split_every)
    return (r.real.astype(p.dtype), r.imag.astype(p.dtype)) if return_sign else r


def logmeanexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    *,
    temperature: float = 1.0,
    split_every: int | dict | None = None,
) -> Any:
    """`lsearray.logmeanexp` of a dask array as one lazy tree reduction (see `logsumexp`).

    The count (or the sum of the weights) travels with the partials, so ``b`` is
    read once too.

    Examples
    --------
    >>> import dask.array as da
    >>> import lsearray.dask
    >>> float(lsearray.dask.logmeanexp(da.full((10,), 3.0, chunks=4)).compute())
    3.0
    """
    p, compute, xp = _prepared(a, b, axis, temperature, "logmeanexp")
    if xp.isdtype(compute, "complex floating"):
        out = _generic.logmeanexp(p.a, p.b, p.axes, p.tau, xp)
        return _generic.shaped(out, p.axes, keepdims, p.dtype, xp)
    return _dask_reduction.reduce(p.a, p.b, p.axes, p.tau, keepdims, "mean", p.dtype, split_every)


def _input_shape(x: Any, p) -> Any:
    """Back to a 0-d input's shape (validation made it 1-d); chunk sizes may be unknown."""
    return x.reshape(()) if len(p.shape) == 0 else x


def _normalized(x: Any, axis: Any, temperature: Any, func: str, split_every: Any):
    """``(x - m) / tau`` in float64 and ``log|S|`` from one reduction, and the
    validated arguments."""
    import dask.array as da

    p, compute, xp = _prepared(x, None, axis, temperature, func)
    if xp.isdtype(compute, "complex floating"):
        raise TypeError(f"{func} expects real input; got dtype {compute}")
    m, log_total = _dask_reduction.normalizer(p.a, p.axes, p.tau, split_every)
    z = da.map_blocks(_shifted_block, p.a, m, p.tau, dtype=np.float64)
    return p, z, m, log_total, da


def _shifted_block(x: np.ndarray, m: np.ndarray, tau: float) -> np.ndarray:
    """``(x - m) / tau`` in float64 for one block; inf - inf is a nan on purpose."""
    with np.errstate(invalid="ignore"):
        return (x.astype(np.float64) - m) / tau


def softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = None,
    *,
    temperature: float = 1.0,
    split_every: int | dict | None = None,
) -> Any:
    """`lsearray.softmax` of a dask array, lazily.

    Two passes over ``x`` are unavoidable: every output element needs its slice's
    normalizer, known only when the whole slice has been read. The first pass is
    the one-read tree reduction; the second is one blockwise pass.

    Examples
    --------
    >>> import dask.array as da
    >>> import lsearray.dask
    >>> lsearray.dask.softmax(da.zeros((2, 4), chunks=2), axis=1).compute()
    array([[0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25]])
    """
    p, z, m, log_total, da = _normalized(x, axis, temperature, "softmax", split_every)
    s = da.exp(z) / da.exp(log_total)
    s = da.where(da.isfinite(m), s, np.nan)
    return _input_shape(s.astype(p.dtype), p)


def log_softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = None,
    *,
    temperature: float = 1.0,
    split_every: int | dict | None = None,
) -> Any:
    """`lsearray.log_softmax` of a dask array, lazily (two passes, as `softmax`).

    Examples
    --------
    >>> import dask.array as da
    >>> import lsearray.dask
    >>> lsearray.dask.log_softmax(da.log(da.asarray([1.0, 3.0]))).compute()
    array([-1.38629436, -0.28768207])
    """
    p, z, _, log_total, _ = _normalized(x, axis, temperature, "log_softmax", split_every)
    return _input_shape(narrowed(z - log_total, p.dtype), p)
