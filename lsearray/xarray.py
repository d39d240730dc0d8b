"""Grouped log-sum-exp for xarray as a flox aggregation: ``groupby`` reductions in one pass over the data."""

from __future__ import annotations

import numpy as np

__all__ = ["logsumexp_agg"]

try:  # at import, so that a missing extra is named before any work is done
    from flox.aggregations import Aggregation
except ImportError as exc:
    raise ImportError("lsearray.xarray needs flox: pip install 'lsearray[backends]'") from exc

from lsearray._executors import numpy_segment  # noqa: E402  (after the check above)
from lsearray._reductions import logsumexp  # noqa: E402


def _grouped(group_idx: np.ndarray, array: np.ndarray, *, size: int, dtype: np.dtype | None = None,
             fill_value: float | None = None) -> np.ndarray:
    """The log-sum-exp of ``array``'s last axis within the groups ``group_idx`` (each in
    ``[0, size)``): flox's signature of a grouped reduction, which it calls on in-memory
    data, on each chunk, and on stacked chunk results whose groups it did not know ahead.

    A group with no element is ``-inf``, the log of an empty sum, which is ``fill_value``.
    """
    a = np.asarray(array)
    if a.dtype.kind not in "biuf":  # a cast to float64 would drop an imaginary part unseen
        raise TypeError(f"logsumexp_agg takes real data, got {a.dtype}")
    if a.dtype not in (np.float32, np.float64):  # the kernel reads these two; integers as float64
        a = a.astype(np.float64)
    ids = np.ascontiguousarray(group_idx, dtype=np.int64)
    # flox sorts the data by group for its own engine; runs of ids take the kernel's faster loops
    runs = ids.size < 2 or bool((ids[1:] >= ids[:-1]).all())
    out = numpy_segment.logsumexp(a, ids, size, a.ndim - 1, None, 1.0, runs)
    return out if dtype is None else out.astype(dtype, copy=False)


def _combine(*args: np.ndarray, axis: tuple[int, ...] | None = None, keepdims: bool = False,
             size: int | None = None, dtype: np.dtype | None = None,
             fill_value: float | None = None) -> np.ndarray:
    """Merge chunks' log-sum-exps, each the partial of its chunk's elements of a group.

    flox calls a combine step two ways: ``combine(array, axis=..., keepdims=True)`` over
    the axis that stacks the chunks' results when every chunk was reindexed to the known
    groups, and ``combine(group_idx, array, size=..., ...)`` as a grouped reduction when the
    groups are found at compute time (labels in a dask array, no ``expected_groups``).
    """
    if len(args) == 2:
        return _grouped(*args, size=size, dtype=dtype, fill_value=fill_value)
    (array,) = args
    return logsumexp(array, axis=axis, keepdims=keepdims)


logsumexp_agg = Aggregation(
    "logsumexp",
    numpy=_grouped,
    chunk=_grouped,
    combine=(_combine,),
    # a chunk's log-sum-exps are mergeable as they are, so nothing is left to finalize
    finalize=None,
    fill_value=-np.inf,
    final_fill_value=-np.inf,
    # the chunks' results merge in float64: float32 data's are rounded to float32 once, at the end
    dtypes=np.float64,
    final_dtype=np.floating,
)
logsumexp_agg.__doc__ = """The flox aggregation of log-sum-exp: ``log(sum(exp(x)))`` of each group.

Pass it as ``func`` to `flox.xarray.xarray_reduce` (or `flox.groupby_reduce`). On
in-memory data, and on each chunk of a dask array, the lsecore kernel reduces every group
in one read of the data; a chunk's result for a group is the log-sum-exp of its elements
of the group, which merges with other chunks' by a log-sum-exp again, so flox's
``"map-reduce"``, ``"cohorts"`` and ``"blockwise"`` methods all apply. Each group's
result is within a few ulps of the exact value, however large the values.

Integer and boolean data give float64, floating data keeps its dtype; complex data is
refused. A group with no elements, or only ``-inf`` ones, is ``-inf``. nan propagates to
its group's result, as in `lsearray.logsumexp`: flox takes no ``skipna`` with a custom
aggregation.

Examples
--------
>>> import numpy as np
>>> import xarray as xr
>>> from flox.xarray import xarray_reduce
>>> from lsearray.xarray import logsumexp_agg
>>> arr = xr.DataArray(np.log([1.0, 2.0, 3.0, 4.0, 6.0]), dims="time",
...                    coords={"label": ("time", ["a", "b", "a", "b", "b"])})
>>> lazy = arr.chunk(time=2)  # labels from ``arr``: flox needs them in memory, or expected_groups
>>> out = xarray_reduce(lazy, arr.label, func=logsumexp_agg, method="map-reduce")
>>> np.exp(out.compute())
<xarray.DataArray (label: 2)> Size: 16B
array([ 4., 12.])
Coordinates:
  * label    (label) object 16B 'a' 'b'
"""
# doctest looks for examples in functions and classes only, not in an instance's docstring
__test__ = {"logsumexp_agg": logsumexp_agg.__doc__}
