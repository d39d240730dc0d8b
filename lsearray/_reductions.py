"""logsumexp and logmeanexp: reductions over axes, with weights, signs and temperature."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from array_api_compat import is_dask_namespace

import lsecore

from lsearray._executors import array_api_lse as _generic
from lsearray._delegation import namespace
from lsearray._executors.narrow import narrowed
from lsearray._executors.numpy import Finalized, reduce
from lsearray._validation import Prepared, prepare, prepare_array_api

__all__ = ["logmeanexp", "logsumexp"]


def _shaped(x: np.ndarray, axes: tuple[int, ...], keepdims: bool, dtype: np.dtype) -> Any:
    """Round to ``dtype`` (to inf where the result overflows it), restore reduced axes for
    keepdims, and return 0-d results as NumPy scalars."""
    x = narrowed(x, dtype)
    if keepdims:
        x = np.expand_dims(x, axes)
    return x[()] if x.ndim == 0 else x


def _nan_where_negative(r: Finalized, p: Prepared) -> np.ndarray:
    """``r.out``, nan where the sum is negative (only negative weights make one)."""
    return r.out if p.b is None else np.where(r.sign < 0, np.nan, r.out)


def _divisor(p: Prepared) -> np.ndarray | float:
    """What a mean divides the sum by: the count, or the sum of the weights; nan for 0."""
    if p.b is None:
        count = math.prod((p.a.shape[k] for k in p.axes), start=1.0)
        return count if count else math.nan
    with np.errstate(over="ignore"):
        total = np.sum(p.b, axis=p.axes, dtype=np.float64)
    return np.where(total == 0, np.nan, total)


def _summable(p: Prepared) -> Prepared:
    """``p`` with finite weights whose sum overflows scaled by 2^-64: a mean is the same
    for weights scaled alike (only then is a scaled copy of ``b`` made)."""
    with np.errstate(over="ignore"):
        total = np.sum(p.b, axis=p.axes, dtype=np.float64)
    if np.isinf(total).any() and np.isfinite(p.b).all():
        return p._replace(b=np.ldexp(p.b, -64))
    return p


def logsumexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    temperature: float = 1.0,
) -> Any:
    r"""Compute ``tau * log(sum(b * exp(a / tau)))`` over the given axes, accurately.

    A drop-in replacement for `scipy.special.logsumexp`, with the same arguments and
    special values. NumPy input is read in a single pass by the lsecore kernel with
    no temporaries the size of ``a``; any other array API array (torch, JAX, CuPy,
    array-api-strict, dask) gets the same answer as an array of its own kind, on its
    own device, differentiable by its autograd.

    Parameters
    ----------
    a : array_like or array API array
        Input array of bool, integer, floating or complex dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to reduce over. By default all axes are reduced.
    b : array_like, optional
        Weights for ``exp(a)``, broadcast against ``a``; they may be negative to
        implement subtraction. An element whose weight is 0 is left out, even when
        it is ``inf`` or ``nan``.
    keepdims : bool, optional
        If True, the reduced axes are kept in the result with size one.
    return_sign : bool, optional
        If True, return ``(log|s|, sign(s))`` for the sum ``s``; otherwise a
        negative sum gives nan.
    temperature : float, optional
        :math:`\tau > 0`. As :math:`\tau \to 0` the result tends to the max
        (:math:`\max a \le \mathrm{lse}_\tau \le \max a + \tau \log n` for ``n``
        unweighted terms); as :math:`\tau \to \infty` it grows like
        :math:`\tau \log n` (it is `logmeanexp` that tends to the mean).

    Returns
    -------
    res : array or scalar
        The result; a NumPy scalar when all axes of a NumPy input are reduced.
        Floating input keeps its dtype (float16 and bfloat16 compute in float32);
        integer and bool input give the namespace's default floating dtype. Complex
        results have their imaginary part in (-pi tau, pi tau].
    sgn : array or scalar
        Only with ``return_sign``: +1, -1, 0 for a zero sum (then ``res`` is
        -inf), nan where ``res`` is nan; a unit phase for complex input.

    Notes
    -----
    The slice is reduced to a partial ``(m, w, t)``: its max ``m``, the weight
    ``w`` of the elements equal to ``m`` and the sum ``t`` of the others' scaled
    terms. The result is ``m + tau * log1p(w - 1 + t)`` when ``w + t`` is near 1,
    so ``logsumexp([0, -50])`` is ``log1p(exp(-50))``, not 0. Sums accumulate in
    float64 with compensation; the error is within 1 ulp of the exact result for
    positive weights. An empty reduction gives ``-inf`` with sign 0 (scipy's
    sign is -1 there).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logsumexp
    >>> logsumexp(np.arange(10))
    np.float64(9.45862974442671)
    >>> logsumexp([0.0, -50.0])
    np.float64(1.9287498479639178e-22)
    >>> logsumexp([1, 2], b=[1, -1], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    >>> logsumexp([[0.0, 1.0], [2.0, 3.0]], axis=1, temperature=0.5)
    array([1.06346401, 3.06346401])
    """
    xp = namespace(a, b)
    if xp is not None and is_dask_namespace(xp):
        from lsearray import dask

        return dask.logsumexp(a, axis, b, keepdims, return_sign, temperature=temperature)
    if xp is not None:
        p, _ = prepare_array_api(a, b, axis, temperature, "logsumexp", xp)
        with np.errstate(all="ignore"):  # NumPy-backed namespaces warn on inf - inf
            out, sign = _generic.logsumexp(p.a, p.b, p.axes, p.tau, return_sign, xp)
        out = _generic.shaped(out, p.axes, keepdims, p.dtype, xp)
        return (out, _generic.shaped(sign, p.axes, keepdims, p.dtype, xp)) if return_sign else out
    p = prepare(a, b, axis, temperature, "logsumexp")
    # Only a value rounded to float32 (or narrower) is asked for: see lsecore.reduce_partials.
    narrow = p.b is None and not return_sign and np.dtype(p.dtype).itemsize <= 4
    if p.b is None and not return_sign:  # positive: no sign to ask for
        out = lsecore.reduce_finalized(p.a, p.axes, 1.0 / p.tau, p.tau, float32_result=narrow)
        if out is not None:
            return _shaped(out, p.axes, keepdims, p.dtype)
    r = reduce(p, sign=return_sign or p.b is not None, log_total=False, float32_result=narrow,
               exact=True)
    if not return_sign:
        return _shaped(_nan_where_negative(r, p), p.axes, keepdims, p.dtype)
    return _shaped(r.out, p.axes, keepdims, p.dtype), _shaped(r.sign, p.axes, keepdims, p.dtype)


def logmeanexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    *,
    temperature: float = 1.0,
) -> Any:
    r"""Compute ``tau * log(mean(exp(a / tau)))``, or the ``b``-weighted mean.

    ``logsumexp(a) - tau * log(n)`` for ``n`` reduced elements; with weights,
    ``tau * log(sum(b exp(a / tau)) / sum(b))``. As :math:`\tau \to \infty` it tends
    to the (weighted) arithmetic mean of ``a``; as :math:`\tau \to 0` to the max.

    Parameters
    ----------
    a : array_like or array API array
        Input array of bool, integer, floating or complex dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to reduce over. By default all axes are reduced.
    b : array_like, optional
        Weights broadcast against ``a``; elements with weight 0 are left out.
    keepdims : bool, optional
        If True, the reduced axes are kept in the result with size one.
    temperature : float, optional
        :math:`\tau > 0`.

    Returns
    -------
    res : ndarray or scalar
        The log of the mean; nan for an empty reduction, a zero weight sum, or a
        weighted sum whose sign differs from the sum of the weights.

    Notes
    -----
    The sum is divided by the count (or the weights' sum) in double-double before
    its log, so the division costs no accuracy. Where the mean is within a factor 2
    of the max's term (a temperature much larger than the spread of ``a``), the
    result is recomputed as ``max + tau log1p(x)`` from ``x``, the mean of
    ``expm1((a - max) / tau)``: it stays within 1 ulp and in ``[min a, max a]``
    (``logmeanexp([1, 2, 6], temperature=1e6)`` is 3.0000023333343333, within an ulp
    of the exact value).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logmeanexp
    >>> bool(np.isclose(logmeanexp([0.0, np.log(3.0)]), np.log(2.0)))
    True
    >>> logmeanexp([0.0, 10.0], b=[3, 1])
    np.float64(8.613841829395048)
    >>> logmeanexp([1.0, 2.0, 6.0], temperature=100.0)
    np.float64(3.023431954817704)
    """
    xp = namespace(a, b)
    if xp is not None and is_dask_namespace(xp):
        from lsearray import dask

        return dask.logmeanexp(a, axis, b, keepdims, temperature=temperature)
    if xp is not None:
        p, _ = prepare_array_api(a, b, axis, temperature, "logmeanexp", xp)
        with np.errstate(all="ignore"):
            out = _generic.logmeanexp(p.a, p.b, p.axes, p.tau, xp)
        return _generic.shaped(out, p.axes, keepdims, p.dtype, xp)
    p = prepare(a, b, axis, temperature, "logmeanexp")
    if p.b is None:
        out = lsecore.reduce_finalized(p.a, p.axes, 1.0 / p.tau, p.tau, _divisor(p))
        if out is not None:
            return _shaped(out, p.axes, keepdims, p.dtype)
    if p.b is not None:
        p = _summable(p)
    r = reduce(p, _divisor(p), sign=p.b is not None, log_total=False, exact=True)
    return _shaped(_nan_where_negative(r, p), p.axes, keepdims, p.dtype)
