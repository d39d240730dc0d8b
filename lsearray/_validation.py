"""Validation and normalization of the public functions' arguments, in one place."""

from __future__ import annotations

import math
import operator
import sys
import warnings
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import array_namespace, is_array_api_obj
from numpy.exceptions import AxisError
from numpy.lib.array_utils import normalize_axis_tuple

__all__ = [
    "ArrayTemperature", "Prepared", "array_temperature", "as_namespace_array", "as_real_array",
    "bad_axis", "broadcast_shape", "complex_rejected", "device_mismatch", "flag", "mask_not_boolean",
    "not_numeric", "prepare", "prepare_array_api", "promoted_dtype", "real_floating",
    "reduction_axes", "scan_axis", "temperature_not_scalar", "temperature_value",
    "with_mask_weights",
]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SCALARS = (bool, int, float, complex)  # weak beside an array: the array's dtype decides


class Prepared(NamedTuple):
    """Arguments ready for an executor (NumPy arrays the kernel reads as they are, or
    arrays of the input's namespace in the dtype the computation runs in)."""

    a: Any  # at least 1-d; for the kernel float32/float64, native byte order, aligned
    b: Any  # weights broadcast to a.shape (NumPy's: zero where `where` is false), or None
    axes: tuple[int, ...]  # normalized reduction axes of a
    tau: Any  # temperature: a float, or an ArrayTemperature to differentiate through
    dtype: Any  # dtype of the result
    shape: tuple[int, ...]  # broadcast shape of the inputs before 1-d promotion
    # the mask broadcast to a.shape (boolean), or None: every element counts; NumPy's is
    # also in b (the mask's own bytes, weights 0 and 1 for the kernel), the array-API
    # executors' only where a reduction asks (`with_mask_weights`)
    where: Any = None


def mask_not_boolean(func: str, dtype: Any) -> TypeError:
    """The error for a ``where`` mask that is not boolean."""
    return TypeError(f"{func} expects where as a boolean array (True: the element counts); "
                     f"got dtype {dtype}")


def as_namespace_array(xp: ModuleType, x: Any, device: Any) -> Any:
    """``x`` as an array of the namespace ``xp`` (on ``device`` where it is not None); an
    array of it already is returned as it is, without a copy."""
    if is_array_api_obj(x) and array_namespace(x) is xp:
        return x
    return xp.asarray(x) if device is None else xp.asarray(x, device=device)


def real_floating(xp: ModuleType, x: Any, name: str, func: str, device: Any) -> Any:
    """``x`` as a real floating array of ``xp``: integer and bool as the namespace's default
    real floating dtype, complex refused."""
    x = as_namespace_array(xp, x, device)
    if xp.isdtype(x.dtype, "complex floating"):
        raise TypeError(f"{func}: {name} must be real; got an array of dtype {x.dtype}")
    if not xp.isdtype(x.dtype, "real floating"):
        x = xp.astype(x, xp.__array_namespace_info__().default_dtypes(device=device)["real floating"])
    return x


def complex_rejected(func: str, name: str, dtype: Any) -> TypeError:
    """The error for complex input where ``func`` takes real input only."""
    return TypeError(f"{func}: complex input is not supported; {name} has dtype {dtype}")


def not_numeric(func: str, name: str, dtype: Any, *, real: bool = True) -> TypeError:
    """The error for ``name`` of a dtype that is not a (real) number's."""
    kinds = "a real numeric dtype (bool, integer or floating)" if real else "a numeric dtype"
    return TypeError(f"{func} expects {name} of {kinds}; got dtype {dtype}")


def as_real_array(x: Any, name: str, func: str) -> np.ndarray:
    """``x`` as a NumPy array of a real numeric dtype the kernel can compute in."""
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise complex_rejected(func, name, x.dtype)
    if x.dtype.kind not in "biuf":
        raise not_numeric(func, name, x.dtype)
    if x.dtype.kind == "f" and x.dtype.itemsize > 8:
        raise TypeError(
            f"{func} computes in float32 or float64; {name} has dtype {x.dtype} "
            "(cast it to float64 first)"
        )
    return x


def device_mismatch(func: str, first: tuple[str, Any], second: tuple[str, Any]) -> ValueError:
    """The error for two arguments on different devices, each given as ``(name, device)``."""
    (n1, d1), (n2, d2) = first, second
    return ValueError(f"{func}: {n1} is on device {d1} but {n2} is on device {d2}")


def temperature_not_scalar(func: str, shape: Any) -> ValueError:
    """The error for a temperature given as an array that is not 0-d."""
    return ValueError(f"{func}: temperature must be a scalar; got shape {tuple(shape)}")


def broadcast_shape(func: str, *named: tuple[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast shape of the named shapes, or the ValueError that names them."""
    try:
        return np.broadcast_shapes(*(tuple(shape) for _, shape in named))
    except ValueError:
        (n1, s1), (n2, s2) = named
        raise ValueError(
            f"{func}: {n1} with shape {tuple(s1)} and {n2} with shape {tuple(s2)} do not "
            "broadcast together"
        ) from None


def _kernel_ready(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """x itself when the kernel can read it, else a converted copy."""
    if x.dtype in _KERNEL_DTYPES and x.dtype.isnative and x.flags.aligned:
        return x
    if x.dtype in _KERNEL_DTYPES:
        dtype = x.dtype.newbyteorder("=")
    return x.astype(dtype)


# A temperature below the smallest normal float64 has no normal inverse: 1 / tau overflows.
_SMALLEST_TAU = sys.float_info.min


def temperature_value(temperature: Any, func: str) -> float:
    """``temperature`` as a float, checked: finite and at least the smallest normal float64."""
    try:
        tau = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(
            f"{func}: temperature must be a real number; got {type(temperature).__name__}"
        ) from None
    if not (math.isfinite(tau) and tau >= _SMALLEST_TAU):
        raise ValueError(
            f"{func}: temperature must be positive, finite and at least {_SMALLEST_TAU!r} "
            f"(the smallest normal float64); got {tau!r}"
        )
    return tau


def reduction_axes(axis: Any, ndim: int, func: str) -> tuple[int, ...]:
    """``axis`` (None, an integer or a tuple of integers) as the normalized axes of an
    ``ndim``-d array; anything else is a TypeError that names its type (NumPy's own would
    say that a float "is not iterable")."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, without NumPy's checks
        return (axis % ndim,)
    for item in axis if isinstance(axis, (tuple, list)) else (axis,):
        try:
            operator.index(item)
        except TypeError:
            raise bad_axis(func, item, "an integer, a tuple of integers or None") from None
    return normalize_axis_tuple(axis, ndim)


def bad_axis(func: str, axis: Any, expected: str) -> TypeError:
    """The error for an ``axis`` argument of a type ``func`` does not take."""
    return TypeError(f"{func}: axis must be {expected}; got {type(axis).__name__}")


def flag(value: Any, name: str, func: str) -> bool:
    """``value``, checked to be a bool (Python's or NumPy's): a truthy array or string is
    more likely a misplaced argument than a switch."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be a bool; got {type(value).__name__}")
    return bool(value)


def scan_axis(axis: Any, ndim: int, func: str) -> int | None:
    """``axis`` (an integer or None) normalized against ``ndim`` (0-d input counts as 1-d)."""
    if axis is None:
        return None
    try:
        axis = operator.index(axis)
    except TypeError:
        raise bad_axis(func, axis, "an integer or None") from None
    ndim = max(ndim, 1)
    if not -ndim <= axis < ndim:  # NumPy's error, in Python that torch.compile traces
        raise AxisError(axis, ndim)
    return axis % ndim


def prepare(a: Any, b: Any, axis: Any, temperature: Any, func: str, where: Any = None) -> Prepared:
    """Check and normalize ``a``, ``b``, ``axis``, ``temperature`` and ``where`` like
    scipy.special (``where`` as jax.numpy's reductions have it).

    Integer and bool input computes in float64, float16 in float32 (returned as
    float16); ``b`` and ``where`` broadcast against ``a``; a 0-d input is treated as
    1-d. A mask is folded into the weights: its own bytes (0 and 1) without ``b``, which
    the kernel reads as weights, else ``b`` with zeros where the mask is false.

    Examples
    --------
    >>> p = prepare([1, 2], None, -1, 1.0, "logsumexp")
    >>> p.a.dtype, p.axes, p.dtype
    (dtype('float64'), (0,), dtype('float64'))
    """
    tau = temperature_value(temperature, func)
    a_weak = a if type(a) in _SCALARS else None
    a = as_real_array(a, "a", func)
    if b is None:
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    else:
        # Python scalars are weak, as in NumPy 2 and scipy: float32 a with b=2.0 stays
        # float32, and so does a=3.0 with a float32 b.
        b_weak = b if type(b) in _SCALARS else None
        b = as_real_array(b, "b", func)
        dtype = np.result_type(a.dtype if a_weak is None else a_weak, b.dtype if b_weak is None else b_weak)
        dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        # a weak scalar takes the result's dtype before anything is computed, as on the
        # array-API path: b=1e300 beside float32 a is inf, as np.float32(1e300) is
        with np.errstate(over="ignore"):
            a = a if a_weak is None else np.asarray(a_weak, dtype)
            b = b if b_weak is None else np.asarray(b_weak, dtype)
        shape = broadcast_shape(func, ("b", b.shape), ("a", a.shape))
        a = np.broadcast_to(a, shape)
        b = np.broadcast_to(b, shape)
    dtype = dtype.newbyteorder("=")
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    mask = None
    if where is not None:
        mask = np.asarray(where)
        if mask.dtype != np.bool_:
            raise mask_not_boolean(func, mask.dtype)
        shape = broadcast_shape(func, ("where", mask.shape), ("a", a.shape),
                                *(() if b is None else (("b", b.shape),)))
        a, mask = np.broadcast_to(a, shape), np.broadcast_to(mask, shape)
        b = None if b is None else np.broadcast_to(b, shape)
    shape = a.shape
    if a.ndim == 0:
        a = a.reshape(1)
        b = None if b is None else b.reshape(1)
        mask = None if mask is None else mask.reshape(1)
    axes = reduction_axes(axis, a.ndim, func)
    a = _kernel_ready(a, compute)
    b = None if b is None else _kernel_ready(b, compute)
    if mask is not None:
        b = mask.view(np.uint8) if b is None else np.where(mask, b, b.dtype.type(0))
    return Prepared(a, b, axes, tau, dtype, shape, mask)


class ArrayTemperature(NamedTuple):
    """A temperature given as a 0-d array (to differentiate through it), checked."""

    array: Any  # the 0-d array, in its own dtype
    value: float | None  # its value; None while a function is being traced
    dtype: Any  # the real dtype the computation runs in


def with_mask_weights(p: Prepared, xp: ModuleType) -> Prepared:
    """``p`` (from `prepare_array_api`) with its mask folded into the weights, for a
    reduction: zeros where the mask is false, ones (or ``b``) elsewhere, in ``p.a``'s dtype."""
    if p.where is None:
        return p
    b = xp.astype(p.where, p.a.dtype) if p.b is None else xp.where(p.where, p.b, xp.zeros_like(p.b))
    return p._replace(b=b)


def array_temperature(temperature: Any, func: str, xp: ModuleType, dtype: Any) -> ArrayTemperature:
    """A temperature given as an array, checked where its value is known (not while a
    function is being traced), in its own dtype (the executor splits it into a factor of
    ``dtype`` without a cast, which a value outside ``dtype``'s range would not survive)."""
    tau = temperature if is_array_api_obj(temperature) else xp.asarray(temperature)
    if tau.ndim != 0:
        raise temperature_not_scalar(func, tau.shape)
    try:
        with warnings.catch_warnings():
            # the value is only checked here; the gradient flows through tau itself
            warnings.simplefilter("ignore", UserWarning)
            value = float(tau)
    except Exception:  # a tracer (jax.jit): its value is not known yet
        value = None
    if value is not None:
        temperature_value(value, func)
    return ArrayTemperature(tau, value, dtype)


def promoted_dtype(xp: ModuleType, a: Any, b: Any, device: Any) -> Any:
    """The dtype ``a`` and ``b`` promote to; where the namespace does not mix their kinds
    (array-api-strict: an integer array and a floating one), an integer or bool operand
    counts as the namespace's default real floating dtype, which integer input computes in."""
    try:
        return xp.result_type(a.dtype, b.dtype)
    except TypeError:
        default = xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
        return xp.result_type(*(x.dtype if xp.isdtype(x.dtype, ("real floating", "complex floating"))
                                else default for x in (a, b)))


def _weak_result_type(xp: ModuleType, dtype: Any, scalar: Any, device: Any) -> Any:
    """The dtype of an array of ``dtype`` with the weak Python ``scalar``: ``dtype`` unless the
    scalar is of a higher kind; the namespace's default dtype of the scalar's kind where the
    namespace does not mix the two (array-api-strict: an integer array and a float)."""
    try:
        with np.errstate(over="ignore"):  # array-api-strict casts the scalar to find out
            return xp.result_type(dtype, scalar)
    except TypeError:
        kind = "complex floating" if isinstance(scalar, complex) else "real floating"
        return xp.__array_namespace_info__().default_dtypes(device=device)[kind]


def prepare_array_api(
    a: Any, b: Any, axis: Any, temperature: Any, func: str, xp: ModuleType, where: Any = None
) -> tuple[Prepared, Any]:
    """`prepare` for the array-API executor: namespace-aware promotion and checks (a mask
    broadcast beside the input; `with_mask_weights` folds it into the weights).

    Integer and bool input computes in the namespace's default real floating dtype,
    float16 and bfloat16 in float32 (returned in the input's dtype), and ``a`` and
    ``b`` promote per the standard (a Python scalar beside an array is weak, either
    side). Returns the prepared arguments and the dtype the computation runs in.
    """
    weak = None
    if type(a) in _SCALARS and b is not None and type(b) not in _SCALARS:
        # a Python scalar beside an array b is weak: b's dtype (or the kind's default) decides
        weak = _weak_result_type(xp, b.dtype, a, device_of(b))
        with np.errstate(over="ignore"):  # beyond the dtype's range: inf (NumPy-backed namespaces)
            a = xp.asarray(a, dtype=weak, device=device_of(b))
    a = a if is_array_api_obj(a) else xp.asarray(a)
    dev = device_of(a)
    numeric = ("bool", "integral", "real floating", "complex floating")
    if not xp.isdtype(a.dtype, numeric):
        raise not_numeric(func, "a", a.dtype, real=False)
    if b is None:
        dtype = a.dtype
    elif type(b) in _SCALARS:
        dtype = _weak_result_type(xp, a.dtype, b, dev)
        with np.errstate(over="ignore"):
            b = xp.asarray(b, dtype=dtype, device=dev)
    else:
        b = b if is_array_api_obj(b) else xp.asarray(b, device=dev)
        if not xp.isdtype(b.dtype, numeric):
            raise not_numeric(func, "b", b.dtype, real=False)
        if None not in (dev, device_of(b)) and device_of(b) != dev:  # None: being traced
            raise device_mismatch(func, ("a", dev), ("b", device_of(b)))
        dtype = weak if weak is not None else promoted_dtype(xp, a, b, dev)
    if xp.isdtype(dtype, ("bool", "integral")):
        dtype = xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]
    compute = dtype
    if xp.isdtype(dtype, "real floating") and xp.finfo(dtype).bits < 32:
        compute = xp.float32
    a = a if a.dtype == compute else xp.astype(a, compute)
    if b is not None:
        b = b if b.dtype == compute else xp.astype(b, compute)
        shape = broadcast_shape(func, ("b", b.shape), ("a", a.shape))
        a, b = xp.broadcast_to(a, shape), xp.broadcast_to(b, shape)
    mask = None
    if where is not None:
        mask = where if is_array_api_obj(where) else xp.asarray(where, device=dev)
        if not xp.isdtype(mask.dtype, "bool"):
            raise mask_not_boolean(func, mask.dtype)
        if None not in (dev, device_of(mask)) and device_of(mask) != dev:
            raise device_mismatch(func, ("a", dev), ("where", device_of(mask)))
        shape = broadcast_shape(func, ("where", mask.shape), ("a", a.shape))
        a, mask = xp.broadcast_to(a, shape), xp.broadcast_to(mask, shape)
        b = None if b is None else xp.broadcast_to(b, shape)
    shape = tuple(a.shape)
    if a.ndim == 0:
        a = xp.reshape(a, (1,))
        b = None if b is None else xp.reshape(b, (1,))
        mask = None if mask is None else xp.reshape(mask, (1,))
    axes = reduction_axes(axis, a.ndim, func)
    if is_array_api_obj(temperature):
        real = xp.real(xp.zeros((), dtype=compute)).dtype if xp.isdtype(
            compute, "complex floating") else compute
        tau = array_temperature(temperature, func, xp, real)
    else:
        tau = temperature_value(temperature, func)
    return Prepared(a, b, axes, tau, dtype, shape, mask), compute
