"""Validation and normalization of the public functions' arguments, in one place."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

__all__ = ["Prepared", "prepare"]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Prepared(NamedTuple):
    """Arguments ready for an executor: arrays the kernel reads as they are."""

    a: np.ndarray  # float32/float64, native byte order, aligned; at least 1-d
    b: np.ndarray | None  # float32/float64 view broadcast to a.shape, or None
    axes: tuple[int, ...]  # normalized reduction axes of a
    tau: float  # temperature, positive and finite
    dtype: np.dtype  # dtype of the result
    shape: tuple[int, ...]  # broadcast shape of the inputs before 1-d promotion


def _as_real_array(x: Any, name: str, func: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise TypeError(
            f"{func}: complex input is not supported; {name} has dtype {x.dtype}"
        )
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{func} expects {name} of a real numeric dtype (bool, integer or floating); "
            f"got dtype {x.dtype}"
        )
    if x.dtype.kind == "f" and x.dtype.itemsize > 8:
        raise TypeError(
            f"{func} computes in float32 or float64; {name} has dtype {x.dtype} "
            "(cast it to float64 first)"
        )
    return x


def _kernel_ready(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """x itself when the kernel can read it, else a converted copy."""
    if x.dtype in _KERNEL_DTYPES and x.dtype.isnative and x.flags.aligned:
        return x
    if x.dtype in _KERNEL_DTYPES:
        dtype = x.dtype.newbyteorder("=")
    return x.astype(dtype)


def _temperature(temperature: Any, func: str) -> float:
    try:
        tau = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(
            f"{func}: temperature must be a real number; got {type(temperature).__name__}"
        ) from None
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"{func}: temperature must be positive and finite; got {tau!r}")
    return tau


def prepare(a: Any, b: Any, axis: Any, temperature: Any, func: str) -> Prepared:
    """Check and normalize ``a``, ``b``, ``axis`` and ``temperature`` like scipy.special.

    Integer and bool input computes in float64, float16 in float32 (returned as
    float16); ``b`` broadcasts against ``a``; a 0-d input is treated as 1-d.

    Examples
    --------
    >>> p = prepare([1, 2], None, -1, 1.0, "logsumexp")
    >>> p.a.dtype, p.axes, p.dtype
    (dtype('float64'), (0,), dtype('float64'))
    """
    tau = _temperature(temperature, func)
    a = _as_real_array(a, "a", func)
    if b is None:
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    else:
        # Python scalars are weak, as in NumPy 2: float32 a with b=2.0 stays float32.
        weak = b if type(b) in (bool, int, float) else None
        b = _as_real_array(b, "b", func)
        dtype = np.result_type(a.dtype, b.dtype if weak is None else weak)
        dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"b with shape {b.shape} does not broadcast against a with shape {a.shape}"
            ) from None
        a = np.broadcast_to(a, shape)
        b = np.broadcast_to(b, shape)
    dtype = dtype.newbyteorder("=")
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    shape = a.shape
    if a.ndim == 0:
        a = a.reshape(1)
        b = None if b is None else b.reshape(1)
    axes = tuple(range(a.ndim)) if axis is None else normalize_axis_tuple(axis, a.ndim)
    a = _kernel_ready(a, compute)
    b = None if b is None else _kernel_ready(b, compute)
    return Prepared(a, b, axes, tau, dtype, shape)
