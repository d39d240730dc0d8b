"""Which executor a call goes to: NumPy's kernel, or the array-API code with its namespace."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj, is_dask_array, is_numpy_namespace

__all__ = ["namespace"]


def _is_real_ndarray(x: Any) -> bool:
    """Whether ``x`` is a plain (not subclassed) NumPy array of a non-complex dtype."""
    return type(x) is np.ndarray and x.dtype.kind != "c"


def namespace(*xs: Any) -> ModuleType | None:
    """The array-API namespace of the array arguments, or None for the NumPy kernel.

    Lists, Python scalars and NumPy arrays go to the kernel (complex ones to the
    array-API code, with NumPy's namespace). Arrays of two libraries raise TypeError,
    but for NumPy arrays beside a dask array (the dask reduction takes them).

    Examples
    --------
    >>> import numpy as np
    >>> namespace(np.ones(3), None) is None
    True
    >>> namespace(np.ones(3, dtype=complex)).__name__
    'array_api_compat.numpy'
    """
    if all(x is None or _is_real_ndarray(x) for x in xs):  # the common case, quickly
        return None
    arrays = [x for x in xs if x is not None and is_array_api_obj(x)]
    plain = [x for x in xs if x is not None and (isinstance(x, np.ndarray) or not is_array_api_obj(x))]
    complex_ = any(np.iscomplexobj(x) for x in plain)
    if not arrays:
        return array_namespace(np.empty(0)) if complex_ else None
    if any(is_dask_array(x) for x in arrays):
        # NumPy weights broadcast into a dask reduction as dask's own reductions allow.
        arrays = [x for x in arrays if not isinstance(x, np.ndarray)]
    try:
        xp = array_namespace(*arrays)
    except TypeError:
        kinds = ", ".join(sorted({type(x).__module__ + "." + type(x).__name__ for x in arrays}))
        raise TypeError(f"arrays of one library expected; got a mix of {kinds}") from None
    if is_numpy_namespace(xp) and not complex_:
        return None
    return xp
