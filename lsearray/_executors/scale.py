"""Multiplication by a temperature or its inverse where the factor lies outside the range of
the array's dtype (float32 data and tau = 1e39 or 1e-300): no spurious inf, 0 or nan."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from array_api_compat import is_dask_namespace

from lsearray._validation import ArrayTemperature

__all__ = ["Factor", "array_factor", "divide", "inverse", "times"]


class Factor(NamedTuple):
    """A positive factor ``mantissa * 2**exponent``, the mantissa a Python float or a 0-d
    array (to differentiate through) in [0.5, 1]; an array whose value cannot be read (a
    function being traced) is the mantissa itself, with exponent 0."""

    mantissa: Any
    exponent: int


def _factor(f: float | Factor) -> Factor:
    if isinstance(f, Factor):
        return f
    return Factor(*math.frexp(f))


def _exponents(x: Any, xp: ModuleType) -> tuple[int, int]:
    """The exponents of the smallest normal and the largest power of two of ``x``'s real
    dtype (-126 and 127 for float32): the powers of two that scale ``x`` exactly."""
    info = xp.finfo(x.dtype)
    return math.frexp(float(info.smallest_normal))[1] - 1, math.frexp(float(info.max))[1] - 1


def _by_parts(x: Any, f: Any, xp: ModuleType) -> Any:
    """``x * f`` for a real ``f``; complex ``x`` by parts, since a complex product with
    ``f + 0j`` turns an infinite part into nan on some backends."""
    if not xp.isdtype(x.dtype, "complex floating"):
        return x * f
    return xp.real(x) * f + 1j * (xp.imag(x) * f)


def times(x: Any, f: float | Factor, xp: ModuleType) -> Any:
    """``x * f`` for a positive float or `Factor` ``f``, in ``x``'s dtype.

    A factor that is a normal number of the dtype multiplies at once. Any other is applied
    as ``2**e`` in exact power-of-two steps, then the mantissa (in [1, 2) for factors of at
    least 1, in [0.5, 1] below): every intermediate lies between ``x`` and the product, so
    none overflows or underflows unless the product does.

    Examples
    --------
    >>> import numpy as np
    >>> from array_api_compat import numpy as xp
    >>> x = np.array([0.0, 2.0**-100, -2.0**-110], dtype=np.float32)
    >>> times(x, 1e39, xp).tolist()  # x * np.float32(1e39) is [nan, inf, -inf]
    [0.0, 788860928.0, -770372.0]
    """
    mantissa, e = _factor(f)
    if e > 1 and isinstance(mantissa, float) and is_dask_namespace(xp) and \
            not xp.isdtype(x.dtype, "complex floating"):
        # dask evaluates later, outside any errstate: products beyond the dtype's range
        # are its infinities without the overflow warning that computing them gives
        over = xp.abs(x) > float(xp.finfo(x.dtype).max) / math.ldexp(mantissa, e)
        out = _times(xp.where(over, xp.zeros_like(x), x), mantissa, e, xp)
        inf = xp.full_like(x, math.inf)
        return xp.where(over, xp.where(x > 0, inf, -inf), out)
    return _times(x, mantissa, e, xp)


def _times(x: Any, mantissa: Any, e: int, xp: ModuleType) -> Any:
    """`times` for the factor ``mantissa * 2**e``."""
    low, high = _exponents(x, xp)
    if low < e <= high:  # a normal number of the dtype: one product
        if isinstance(mantissa, float):
            f = math.ldexp(mantissa, e)
            return x if f == 1.0 else _by_parts(x, f, xp)
        return _by_parts(x, mantissa * 2.0**e, xp)
    if e > 0:  # the factor is at least 1: the mantissa from [0.5, 1] into [1, 2]
        mantissa, e = mantissa * 2.0, e - 1
    while e > 0:
        step = min(e, high)
        x, e = _by_parts(x, 2.0**step, xp), e - step
    while e < 0:
        step = max(e, low)
        x, e = _by_parts(x, 2.0**step, xp), e - step
    return _by_parts(x, mantissa, xp)


def divide(x: Any, f: float | Factor, xp: ModuleType) -> Any:
    """``x / f`` as `times` computes ``x * f``.

    Examples
    --------
    >>> import numpy as np
    >>> from array_api_compat import numpy as xp
    >>> divide(np.array([3e38, 1.0], dtype=np.float32), 1e39, xp)  # 1e39 is not a float32
    array([3.e-01, 1.e-39], dtype=float32)
    """
    return times(x, inverse(f), xp)


def inverse(f: float | Factor) -> Factor:
    """``1 / f``, its mantissa in [0.5, 1] (where ``f``'s is): `divide` by ``f`` is `times`
    by it."""
    mantissa, e = _factor(f)
    return Factor(0.5 / mantissa, 1 - e)


def array_factor(tau: ArrayTemperature, xp: ModuleType) -> Factor:
    """A checked array temperature as a `Factor` whose mantissa is in the computation's
    dtype: split in the array's own dtype, where it is exact, so that a value outside the
    computation's range (1e-300 for float32) keeps it."""
    array, value, dtype = tau
    if value is None:  # being traced: the value cannot be split
        return Factor(xp.astype(array, dtype), 0)
    if not xp.isdtype(array.dtype, "real floating"):
        array = xp.astype(array, dtype)
    e = math.frexp(value)[1]
    return Factor(xp.astype(times(array, Factor(0.5, 1 - e), xp), dtype), e)
