"""logdiffexp and log1mexp: the log of a difference of exponentials, elementwise."""

from __future__ import annotations

from typing import Any

from lsearray._delegation import executor

__all__ = ["log1mexp", "logdiffexp"]


def logdiffexp(x1: Any, x2: Any, *, temperature: float = 1.0, return_sign: bool = False) -> Any:
    r"""Compute ``tau * log(exp(x1 / tau) - exp(x2 / tau))`` elementwise, accurately.

    The counterpart of `logaddexp` for a difference, on any array API backend, broadcast
    together: ``log(exp(x1) - exp(x2))`` without overflow or underflow, and without the
    cancellation of ``exp(x1) - exp(x2)`` for near-equal arguments. It is computed as
    ``x1 + tau * log1mexp((x2 - x1) / tau)`` (see `log1mexp`).

    Parameters
    ----------
    x1, x2 : array_like or array API arrays
        Real input (bool, integer or floating), broadcastable against each other;
        Python scalars take the other argument's dtype. Without ``return_sign``,
        ``x1 >= x2`` is expected.
    temperature : float, optional
        :math:`\tau > 0`.
    return_sign : bool, optional
        If True, return ``tau * log|exp(x1 / tau) - exp(x2 / tau)|`` and the sign of the
        difference, as `logsumexp` does with ``return_sign``: then ``x1 < x2`` is allowed.

    Returns
    -------
    out : array or scalar
        The broadcast shape, with `logaddexp`'s dtype rules: floating inputs promote
        among themselves (float16 and bfloat16 compute in float32), integer and bool
        inputs give the namespace's default floating dtype. Equal arguments give
        ``-inf`` (the log of 0), both ``-inf`` too, but two ``+inf`` give nan (``inf -
        inf``); ``x2 = -inf`` gives ``x1``; ``x1 < x2`` gives nan (without
        ``return_sign``); nan gives nan.
    sign : array or scalar
        Only with ``return_sign``: +1 where ``x1 > x2``, -1 where ``x1 < x2``, 0 where
        they are equal (``out`` is ``-inf`` there), nan where ``out`` is nan; of
        ``out``'s dtype.

    Raises
    ------
    TypeError
        For complex or non-numeric input, arrays of two libraries, or a ``return_sign``
        that is not a bool.
    ValueError
        For shapes that do not broadcast, or a temperature that is not finite and at
        least the smallest normal float64.

    See Also
    --------
    log1mexp : ``log(1 - exp(x))``, which is ``logdiffexp(0, x)``.
    logaddexp : the log of a sum of two exponentials.

    Notes
    -----
    NumPy input runs the lsecore kernel: the difference ``x2 - x1`` is carried exactly,
    divided by ``tau`` in double-double, ``exp``, ``expm1`` and the logs are evaluated
    in double-double, and ``x1 + tau * log1mexp`` is summed in double-double and rounded
    once, so float64 and float32 results are within one ulp of the exact value (measured
    against mpmath on some 4,500 float64 and 3,600 float32 pairs, near-equal arguments
    and huge magnitudes among them: at most 0.50 ulp), also where ``x1 - x2`` rounds.
    Where ``x1`` and the log term cancel to a result below about 2^-48 of ``|x1|`` the
    error is instead an absolute 2^-100 of ``|x1|`` or so. The same formula in plain
    float64 is off by many ulps where ``x1 - x2`` rounds. Where the CPU has AVX-512 the
    kernel takes 8 pairs at a time, first with a plain float64 exp and log whose error
    bound is checked lane by lane (most pairs whose result is not near 0), then the pairs
    that leaves with an exp and a log to about 2^-63 and a rounding test, and leaves only
    the pairs neither can vouch for within one ulp (near-cancelling, special values) to the
    double-double steps: `logaddexp`'s time per element, or about.
    Dask arrays go through the kernel
    block by block, lazily; other backends (torch, JAX, array-api-strict, ...) use their
    own ``expm1``, ``log1p``, ``exp`` and ``log`` on the same formula, differentiably:
    the gradient in ``x1`` is ``1 / (1 - exp((x2 - x1) / tau))`` and in ``x2`` one minus
    that, finite everywhere off the pole ``x1 == x2`` (where it is not: the function
    goes to ``-inf`` there); ``x2 = -inf`` gives the gradient 1 in ``x1`` and 0 in
    ``x2``, two ``-inf`` a constant.

    TensorFlow Probability's ``tfp.math.log_sub_exp(x, y, return_sign=False)`` gives
    ``log(exp(max(x, y)) - exp(min(x, y)))``, the absolute difference even without the
    sign; this function gives nan for ``x1 < x2`` unless asked for the sign, as
    `scipy.special.logsumexp` does for a negative sum, so that a swapped pair does not
    pass unnoticed. With ``return_sign=True`` both give the log of the absolute
    difference and its sign (0 here for equal arguments). PyTorch has neither this nor `log1mexp`
    (pytorch/pytorch issue #39242).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logdiffexp
    >>> logdiffexp(0.0, -50.0)
    np.float64(-1.9287498479639178e-22)
    >>> logdiffexp([1.0, 1.0, -np.inf, 1.0], [0.0, 1.0, -np.inf, 2.0])
    array([0.54132485,       -inf,       -inf,        nan])
    >>> logdiffexp(1.0, 2.0, return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    >>> logdiffexp(np.float32(2.0), 1.0, temperature=0.5)
    np.float32(1.9272933)
    """
    return executor(x1, x2, func="logdiffexp").logdiffexp(x1, x2, temperature, return_sign)


def log1mexp(x: Any) -> Any:
    r"""Compute ``log(1 - exp(x))`` elementwise, accurately, for ``x <= 0``.

    With Maechler's switch: ``log(-expm1(x))`` for ``x > -ln 2``, where ``1 - exp(x)``
    would cancel, and ``log1p(-exp(x))`` below, where ``exp(x)`` is small.

    Parameters
    ----------
    x : array_like or array API array
        Real input (bool, integer or floating), at most 0.

    Returns
    -------
    out : array or scalar
        ``x``'s shape; floating dtypes are kept (float16 and bfloat16 compute in
        float32), integer and bool input gives the namespace's default floating dtype.
        ``-inf`` at 0, 0 at ``-inf``, nan for ``x > 0`` and for nan.

    Raises
    ------
    TypeError
        For complex or non-numeric input.

    See Also
    --------
    logdiffexp : ``log(exp(x1) - exp(x2))``; ``log1mexp(x)`` is ``logdiffexp(0, x)``.

    Notes
    -----
    NumPy (and dask) input runs the kernel of `logdiffexp`, in double-double, rounded
    once: within one ulp of the exact value in float64 and float32 (measured against
    mpmath on some 20,000 points per dtype, near 0, on both sides of ``-ln 2``, tiny,
    subnormal and large negative: at most 0.57 ulp in float64, where results near the
    subnormal range lose the last bits of their double-double tail, and 0.50 in
    float32), where the plain switch in float64 reaches about 1.2 ulp. Other backends
    use their own ``expm1``, ``log1p``, ``exp`` and ``log``, differentiably: the
    gradient ``-1 / expm1(-x)`` is finite for every ``x < 0`` (each branch of the switch
    sees only the ``x`` it is taken for, -1 elsewhere, so the untaken one passes no nan).

    TensorFlow Probability's ``tfp.math.log1mexp(x)`` computes ``log(1 - exp(-|x|))``
    and ``jax.nn.log1mexp(x)`` computes ``log(1 - exp(-x))``, as Maechler's note does:
    they take the negated argument, where this one takes the exponent ``x <= 0`` itself
    (so that ``log1mexp(x) == logdiffexp(0, x)``) and gives nan above 0. PyTorch has
    none (pytorch/pytorch issue #39242).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import log1mexp
    >>> log1mexp(-1e-20)
    np.float64(-46.051701859880914)
    >>> log1mexp([0.0, -np.log(2.0), -np.inf, 1.0])
    array([       -inf, -0.69314718,  0.        ,         nan])
    """
    return executor(x, func="log1mexp").log1mexp(x)
