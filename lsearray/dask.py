"""lsearray's functions on dask arrays: one tree reduction, each chunk read once, with ``split_every``."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "log_softmax", "logmeanexp", "logsumexp", "segment_log_softmax", "segment_logsumexp",
    "segment_softmax", "softmax", "softmax_average",
]

try:  # at import, so that a missing extra is named before any work is done
    importlib.import_module("dask.array")
except ImportError as exc:
    raise ImportError("lsearray.dask needs dask: pip install 'lsearray[dask]'") from exc

from lsearray._executors.dask import DaskExecutor  # noqa: E402  (after the check above)
from lsearray._validation import flag  # noqa: E402


def logsumexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    temperature: float = 1.0,
    where: Any = None,
    split_every: int | dict | None = None,
) -> Any:
    """`lsearray.logsumexp` of a dask array as one lazy tree reduction.

    Each chunk is reduced to ``(max, scaled-sum)`` partials by the lsecore kernel
    (NumPy chunks) or the array-API code (other chunk types); partials merge in a tree
    of fan-in ``split_every`` and the root finalizes them. Every chunk is read once
    and freed, so memory stays near (threads + 1) chunks whatever the array's size.

    Parameters
    ----------
    a, axis, b, keepdims, return_sign, temperature, where
        As `lsearray.logsumexp`; ``b`` and ``where`` may be dask or NumPy arrays.
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
    return DaskExecutor().logsumexp(a, axis, b, keepdims, return_sign, temperature, where,
                                    split_every)


def logmeanexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    *,
    temperature: float = 1.0,
    where: Any = None,
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
    return DaskExecutor().logmeanexp(a, axis, b, keepdims, temperature, where, split_every)


def softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = None,
    *,
    temperature: float = 1.0,
    where: Any = None,
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
    return DaskExecutor().softmax(x, axis, temperature, where, split_every)


def log_softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = None,
    *,
    temperature: float = 1.0,
    where: Any = None,
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
    return DaskExecutor().log_softmax(x, axis, temperature, where, split_every)


def softmax_average(
    a: Any, v: Any, axis: int = -1, *, temperature: float = 1.0, keepdims: bool = False,
    return_lse: bool = False,
) -> Any:
    """`lsearray.softmax_average` of dask arrays as one lazy tree reduction.

    Each pair of chunks of ``a`` and ``v`` is reduced to its ``(max, sum of weights,
    weighted sum of values)`` state by the chunks' executor, and the states merge in a
    tree along ``axis`` as flash attention merges its blocks: every chunk is read once.

    Parameters
    ----------
    a, v, axis, temperature, keepdims, return_lse
        As `lsearray.softmax_average`; ``a`` and ``v`` may be dask or NumPy arrays.

    Returns
    -------
    average : dask.array.Array
        Lazy; ``(average, lse)`` with ``return_lse``.

    Examples
    --------
    >>> import dask.array as da
    >>> import lsearray.dask
    >>> a = da.zeros((2, 6), chunks=(1, 2))
    >>> v = da.arange(12.0, chunks=4).reshape(2, 6)
    >>> lsearray.dask.softmax_average(a, v).compute()
    array([2.5, 8.5])
    """
    keepdims = flag(keepdims, "keepdims", "softmax_average")
    return_lse = flag(return_lse, "return_lse", "softmax_average")
    lse, average = DaskExecutor().softmax_average(a, v, axis, temperature, keepdims)
    return (average, lse) if return_lse else average


def segment_logsumexp(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0, b: Any = None,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    """`lsearray.segment_logsumexp` of a dask array as one lazy tree reduction.

    Each chunk is reduced to its segments' ``(max, scaled-sum)`` partials by the
    chunk's executor, and the partials merge in a tree along ``axis``: every chunk is
    read once. The ids are checked at once, by a pass over them alone (and their max
    taken when ``num_segments`` is None).

    Parameters
    ----------
    a, segment_ids, num_segments, axis, b, temperature, sorted
        As `lsearray.segment_logsumexp`; ``segment_ids`` and ``b`` may be dask arrays
        (the ids are rechunked like ``a``'s axis) or NumPy arrays.

    Returns
    -------
    res : dask.array.Array
        Lazy, with the segments along ``axis`` in one chunk.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import lsearray.dask
    >>> a = da.from_array(np.log([1.0, 2.0, 3.0, 4.0]), chunks=2)
    >>> lsearray.dask.segment_logsumexp(a, np.array([0, 1, 0, 1])).compute()
    array([1.38629436, 1.79175947])
    """
    sorted = flag(sorted, "sorted", "segment_logsumexp")
    return DaskExecutor().segment_logsumexp(a, segment_ids, num_segments, axis, b, temperature,
                                            sorted, "segment_logsumexp")


def segment_softmax(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    """`lsearray.segment_softmax` of a dask array: the segments' log-sum-exp as in
    `segment_logsumexp`, then a blockwise pass normalizing each chunk, as `softmax`.

    Parameters
    ----------
    a, segment_ids, num_segments, axis, temperature, sorted
        As `segment_logsumexp`.

    Returns
    -------
    res : dask.array.Array
        Lazy, chunked like ``a``.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import lsearray.dask
    >>> a = da.from_array(np.log([1.0, 2.0, 3.0, 6.0]), chunks=2)
    >>> lsearray.dask.segment_softmax(a, np.array([0, 1, 0, 1])).compute()
    array([0.25, 0.25, 0.75, 0.75])
    """
    sorted = flag(sorted, "sorted", "segment_softmax")
    return DaskExecutor().segment_normalized(a, segment_ids, num_segments, axis, temperature,
                                             sorted, "segment_softmax", False)


def segment_log_softmax(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    """`lsearray.segment_log_softmax` of a dask array, in two passes as `segment_softmax`.

    Parameters
    ----------
    a, segment_ids, num_segments, axis, temperature, sorted
        As `segment_logsumexp`.

    Returns
    -------
    res : dask.array.Array
        Lazy, chunked like ``a``.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import lsearray.dask
    >>> a = da.from_array(np.log([1.0, 2.0, 3.0, 6.0]), chunks=2)
    >>> np.exp(lsearray.dask.segment_log_softmax(a, np.array([0, 1, 0, 1])).compute())
    array([0.25, 0.25, 0.75, 0.75])
    """
    sorted = flag(sorted, "sorted", "segment_log_softmax")
    return DaskExecutor().segment_normalized(a, segment_ids, num_segments, axis, temperature,
                                             sorted, "segment_log_softmax", True)
