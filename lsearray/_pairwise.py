"""logaddexp: the two-argument log-sum-exp, elementwise, with temperature."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import is_array_api_obj, is_dask_namespace

import lsecore
from lsearray._delegation import namespace
from lsearray._executors.array_api_lse import nothing_is_constant
from lsearray._executors.scale import Factor, divide, times
from lsearray._executors.narrow import narrowed
from lsearray._validation import _array_temperature, _as_real_array, _temperature

__all__ = ["generic_logaddexp", "logaddexp"]

_WEAK = (bool, int, float)  # Python scalars: they take the other argument's dtype


def _broadcast_shape(s1: tuple, s2: tuple) -> tuple:
    try:
        return np.broadcast_shapes(s1, s2)
    except ValueError:
        raise ValueError(
            f"logaddexp: x1 with shape {s1} and x2 with shape {s2} do not broadcast together"
        ) from None


def generic_logaddexp(x1: Any, x2: Any, tau: float | Factor, xp: ModuleType) -> Any:
    """``tau log(exp(x1 / tau) + exp(x2 / tau))`` by array-API operations, as
    ``max + tau log1p(exp(-|x1 - x2| / tau))``, for real floating arrays of one dtype;
    ``tau`` (a float or a `Factor`) may lie outside the dtype's range.

    Equal arguments (infinities too) take a zero difference rather than ``inf - inf``,
    so that equal infinities give that infinity, and gradients stay finite: the max
    splits its gradient between ties, and the difference passes none where it is 0. Two
    ``-inf`` add nothing: the result is the constant ``-inf``, whose gradient is 0.
    """
    diff = x1 - x2
    diff = xp.where(x1 == x2, xp.zeros_like(diff), diff)
    out = xp.maximum(x1, x2) + times(xp.log1p(xp.exp(divide(-xp.abs(diff), tau, xp))), tau, xp)
    return nothing_is_constant(out, xp)


def _numpy(x1: Any, x2: Any, tau: float) -> Any:
    """The lsecore kernel's logaddexp, with NumPy's dtype and scalar conventions."""
    x1 = x1 if type(x1) in _WEAK else _as_real_array(x1, "x1", "logaddexp")
    x2 = x2 if type(x2) in _WEAK else _as_real_array(x2, "x2", "logaddexp")
    _broadcast_shape(np.shape(x1), np.shape(x2))
    dtype = np.result_type(x1, x2)
    dtype = dtype.newbyteorder("=") if dtype.kind == "f" else np.dtype(np.float64)
    compute = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    out = narrowed(lsecore.logaddexp(x1, x2, tau, compute), dtype)
    return out[()] if out.ndim == 0 else out


def _real_dtype(x: Any, name: str, xp: ModuleType) -> Any:
    """``x``'s dtype as the computation sees it: integer and bool arrays as the default
    real floating dtype; complex and other dtypes raise TypeError."""
    if not xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"logaddexp expects {name} of a real numeric dtype; got dtype {x.dtype}")
    if xp.isdtype(x.dtype, "real floating"):
        return x.dtype
    return xp.__array_namespace_info__().default_dtypes(device=device_of(x))["real floating"]


def _operand(x: Any, xp: ModuleType) -> Any:
    """``x`` as an array of ``xp`` (NumPy arrays beside dask arrays become dask arrays);
    Python scalars stay weak."""
    if type(x) in _WEAK or (is_array_api_obj(x) and not isinstance(x, np.ndarray)):
        return x
    return xp.asarray(x)


def _array_api(x1: Any, x2: Any, temperature: Any, xp: ModuleType) -> Any:
    """logaddexp of arrays of the namespace ``xp`` (or Python scalars beside them)."""
    operands = {"x1": _operand(x1, xp), "x2": _operand(x2, xp)}
    arrays = {name: x for name, x in operands.items() if type(x) not in _WEAK}
    dtype = xp.result_type(*(_real_dtype(x, name, xp) for name, x in arrays.items()))
    compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
    devices = {name: device_of(x) for name, x in arrays.items()}
    if len(set(devices.values()) - {None}) > 1:  # None: being traced
        raise ValueError(f"logaddexp: x1 is on device {devices['x1']} but x2 is on device {devices['x2']}")
    dev = next(iter(devices.values()))
    x1, x2 = (
        xp.asarray(float(x), dtype=compute, device=dev) if type(x) in _WEAK
        else (x if x.dtype == compute else xp.astype(x, compute))
        for x in operands.values()
    )
    _broadcast_shape(tuple(x1.shape), tuple(x2.shape))
    if is_dask_namespace(xp):
        out = _dask(x1, x2, _temperature(temperature, "logaddexp"))
    else:
        if is_array_api_obj(temperature):
            tau = _array_temperature(temperature, "logaddexp", xp, compute)
        else:
            tau = _temperature(temperature, "logaddexp")
        with np.errstate(all="ignore"):  # NumPy-backed namespaces warn on inf - inf
            out = generic_logaddexp(x1, x2, tau, xp)
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _dask(x1: Any, x2: Any, tau: float) -> Any:
    """Lazily, block by block: each pair of blocks goes through `logaddexp` (the lsecore
    kernel for NumPy blocks)."""
    from dask.array.core import elemwise

    def logaddexp_blocks(b1: Any, b2: Any) -> Any:
        return logaddexp(b1, b2, temperature=tau)

    return elemwise(logaddexp_blocks, x1, x2, dtype=x1.dtype)


def logaddexp(x1: Any, x2: Any, *, temperature: float = 1.0) -> Any:
    r"""Compute ``tau * log(exp(x1 / tau) + exp(x2 / tau))`` elementwise, accurately.

    `numpy.logaddexp` with a temperature, on any array API backend: the smooth
    maximum of two arrays, broadcast together. It is computed as
    ``max(x1, x2) + tau * log1p(exp(-|x1 - x2| / tau))``, which neither overflows
    nor underflows.

    Parameters
    ----------
    x1, x2 : array_like or array API arrays
        Real input (bool, integer or floating), broadcastable against each other;
        Python scalars take the other argument's dtype.
    temperature : float, optional
        :math:`\tau > 0`. As :math:`\tau \to 0` the result tends to ``max(x1, x2)``;
        it lies between the max and the max plus :math:`\tau \log 2`.

    Returns
    -------
    out : array or scalar
        The broadcast shape; a NumPy scalar where NumPy's ufunc gives one. The dtype
        follows `numpy.logaddexp` and the array API: floating inputs promote among
        themselves (float16 and bfloat16 compute in float32), integer and bool inputs
        give the namespace's default floating dtype (NumPy's ufunc would pick float16
        for int8 and bool). Equal infinities give that infinity, ``-inf`` beside ``x``
        gives ``x``, nan gives nan.

    Raises
    ------
    TypeError
        For complex or non-numeric input, or arrays of two libraries.
    ValueError
        For shapes that do not broadcast, or a temperature that is not finite and at
        least the smallest normal float64.

    Notes
    -----
    NumPy input runs the lsecore kernel: the difference of the arguments and the
    smaller term are carried in double-double and the result is rounded once, so it
    is within one ulp of the exact value at any temperature, also where ``x1 - x2``
    rounds or one term is below an ulp of the other. Where the max and the log term
    cancel (a result much closer to 0 than the max) the error is within one ulp plus
    about 2^-56 of the log term: ``logaddexp(-log(2), -log(2))`` gives
    2.31904681384628e-17 (exactly 2.3190468138462996e-17, the rounding error of the
    float ``-log(2)``) where ``numpy.logaddexp`` gives 0. Dask arrays go through the
    kernel block by block, lazily; other backends use their own elementwise functions
    on the same formula, differentiably: the gradient in ``x1`` is
    ``sigmoid((x1 - x2) / tau)``, and 0 where both are ``-inf`` (a sum of nothing).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logaddexp
    >>> logaddexp(0.0, -50.0)
    np.float64(1.9287498479639178e-22)
    >>> logaddexp([1.0, np.inf, -np.inf], [1.0, np.inf, -np.inf])
    array([1.69314718,        inf,       -inf])
    >>> logaddexp(np.float32(2.0), 2.0, temperature=0.5)
    np.float32(2.3465736)
    """
    xp = namespace(x1, x2)
    if xp is None:
        return _numpy(x1, x2, _temperature(temperature, "logaddexp"))
    return _array_api(x1, x2, temperature, xp)
