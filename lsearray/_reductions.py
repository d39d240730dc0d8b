"""logsumexp and logmeanexp: reductions over axes, with weights, signs and temperature."""

from __future__ import annotations

from typing import Any

from lsearray._delegation import executor

__all__ = ["logmeanexp", "logsumexp"]


def logsumexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    temperature: float = 1.0,
    where: Any = None,
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
    where : array_like of bool, optional
        The elements to include, broadcast against ``a`` (as in jax.numpy's
        reductions): an element where ``where`` is False is left out as if its
        weight were 0, whatever its value (``nan`` and ``inf`` included). A slice
        with nothing left gives ``-inf`` (sign 0) and a zero gradient. NumPy input's
        mask is read by the kernel beside ``a``, in the same pass, with no masked
        copy of ``a``.

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
    >>> logsumexp([[0.0, np.nan], [2.0, 3.0]], axis=1, where=[[True, False], [False, False]])
    array([  0., -inf])
    """
    ex = executor(a, b, where, func="logsumexp")
    return ex.logsumexp(a, axis, b, keepdims, return_sign, temperature, where)


def logmeanexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    *,
    temperature: float = 1.0,
    where: Any = None,
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
    where : array_like of bool, optional
        The elements to include, broadcast against ``a``: the mean of the others
        (the count, or the weights' sum, of the included elements divides), as
        `numpy.mean` has it. A slice with nothing left gives nan, as a mean of
        nothing.

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
    >>> logmeanexp([0.0, np.log(3.0), 50.0], where=[True, True, False])
    np.float64(0.6931471805599454)
    """
    return executor(a, b, where, func="logmeanexp").logmeanexp(a, axis, b, keepdims, temperature,
                                                                where)
