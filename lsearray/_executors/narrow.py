"""Results computed in a wider float, rounded to the result's dtype."""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import is_dask_array

__all__ = ["narrowed"]


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x.astype(dtype, copy=False)


def narrowed(x: Any, dtype: Any) -> Any:
    """``x`` (a NumPy array or scalar, or a dask array of NumPy chunks) rounded to ``dtype``.

    A value beyond ``dtype``'s range rounds to an infinity of its sign without NumPy's
    ``RuntimeWarning: overflow encountered in cast``: ``x`` is the exact result to within
    its own rounding, so that result overflows ``dtype`` too and the infinity is its
    correctly rounded value (as float32 arithmetic would give, silently, under scipy's
    ``np.errstate``). A dask array is cast block by block, when it is computed.

    Examples
    --------
    >>> import numpy as np
    >>> narrowed(np.array([1e39, -1e39, 1.5]), np.float32)
    array([ inf, -inf,  1.5], dtype=float32)
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if is_dask_array(x):
        return x.map_blocks(_cast, dtype, dtype=dtype)
    return _cast(x, dtype)
