"""Sums of weighted terms in units of a power of two, where they would overflow."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import array_namespace

__all__ = ["ieee_sum", "overflow_exponent", "scaled_terms", "weight_exponent"]


def overflow_exponent(x: Any, shape: tuple[int, ...], axes: tuple[int, ...],
                      xp: ModuleType, dtype: Any = None) -> Any:
    """A whole number ``e >= 0`` per slice of ``x`` over ``axes`` (kept as size 1; a block
    of ``shape``) for which no sum of ``x / 2**e`` over the slice overflows ``dtype``
    (``x``'s own by default): the least with ``2**ceil(log2 n) max|x| / 2**e < max / 4``.
    Non-finite elements are left out (they are special values elsewhere).

    Examples
    --------
    >>> import numpy as np
    >>> overflow_exponent(np.array([[1e308, 1e308], [1.0, 2.0]]), (2, 2), (1,), np).ravel()
    array([3., 0.])
    """
    count = math.prod([shape[k] for k in axes])  # a list: dynamo traces no generators here
    headroom = math.ceil(math.log2(max(count, 1))) + 3
    emax = math.frexp(float(xp.finfo(x.dtype if dtype is None else dtype).max))[1]
    mag = xp.abs(x)  # real for complex x too
    big = xp.max(xp.where(xp.isfinite(mag), mag, xp.zeros_like(mag)), axis=axes, keepdims=True)
    one = xp.ones_like(big)
    log2 = xp.floor(xp.log2(xp.where(big > 0, big, one)))
    return xp.maximum(log2 + (headroom - emax), xp.zeros_like(big))


def scaled_terms(terms: Any, axes: tuple[int, ...], xp: ModuleType) -> tuple[Any, Any]:
    """``(terms / 2**e, e)`` with `overflow_exponent`'s ``e``: the terms' sums over
    ``axes`` cannot overflow, and a slice that needs no scale keeps every bit (a weight
    below the smallest normal on its maximal term included).

    Examples
    --------
    >>> from array_api_compat import numpy as xp
    >>> import numpy as np
    >>> terms, e = scaled_terms(np.array([1.7e308, 1.7e308, 5e-324]), (0,), xp)
    >>> float(e[0]), terms.tolist()
    (4.0, [1.0625e+307, 1.0625e+307, 0.0])
    """
    e = overflow_exponent(terms, tuple(terms.shape), axes, xp)
    return terms * xp.pow(xp.full_like(e, 2.0), -e), e


def weight_exponent(b: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """`overflow_exponent` of weights ``b`` (a block of ``shape``), for the sum of the
    weights; 0 (a Python int) for NumPy weights whose sums cannot overflow float64.

    Examples
    --------
    >>> import numpy as np
    >>> weight_exponent(np.array([1.0, 2.0]), (2,), (0,))
    0
    >>> weight_exponent(np.array([1e308, 1e308]), (2,), (0,))
    array([3.])
    """
    if 0 in b.shape:  # no sums to overflow (and libraries cannot take the max of nothing)
        return 0
    if not isinstance(b, np.ndarray):
        return overflow_exponent(b, shape, axes, array_namespace(b))
    count = math.prod([shape[k] for k in axes])  # a list: dynamo traces no generators here
    with np.errstate(invalid="ignore"):
        big = max(abs(float(np.max(b, initial=0.0))), abs(float(np.min(b, initial=0.0))))
    if big * max(count, 1) < 2.0**1020:  # False for inf and nan too
        return 0
    return overflow_exponent(b, shape, axes, np, np.float64)


def ieee_sum(x: Any, axes: tuple[int, ...], xp: ModuleType) -> Any:
    """``xp.sum(x, axis=axes, keepdims=True)`` with IEEE's values (inf where it overflows,
    the infinities' sum, nan) but without computing an overflow or ``inf - inf``: a lazy
    library would warn of them when it evaluates, outside any errstate.

    Examples
    --------
    >>> from array_api_compat import numpy as xp
    >>> import numpy as np
    >>> ieee_sum(np.array([[1.7e308, 1.7e308], [1.0, 2.0], [np.inf, -np.inf]]), (1,), xp).ravel()
    array([inf,  3., nan])
    """
    if 0 in x.shape:  # nothing to overflow (and libraries cannot take the max of nothing)
        return xp.sum(x, axis=axes, keepdims=True)
    zero = xp.zeros_like(x)
    finite = xp.where(xp.isfinite(x), x, zero)
    e = overflow_exponent(finite, tuple(x.shape), axes, xp)
    unit = xp.pow(xp.full_like(e, 2.0), -e)
    scaled = xp.sum(finite * unit, axis=axes, keepdims=True)  # cannot overflow
    over = xp.abs(scaled) > float(xp.finfo(x.dtype).max) * unit
    total = xp.where(over, xp.zeros_like(scaled), scaled) * xp.pow(xp.full_like(e, 2.0), e)
    inf = xp.full_like(total, math.inf)
    total = xp.where(over, xp.where(scaled > 0, inf, -inf), total)
    up = xp.any(x == math.inf, axis=axes, keepdims=True)
    down = xp.any(x == -math.inf, axis=axes, keepdims=True)
    nan = (up & down) | xp.any(xp.isnan(x), axis=axes, keepdims=True)
    total = xp.where(up, inf, xp.where(down, -inf, total))
    return xp.where(nan, xp.full_like(total, math.nan), total)
