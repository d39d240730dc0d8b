"""logcumsumexp: the running log-sum-exp along an axis."""

from __future__ import annotations

from typing import Any

from lsearray._delegation import executor

__all__ = ["logcumsumexp"]


def logcumsumexp(a: Any, axis: int | None = None, *, temperature: float = 1.0, reverse: bool = False,
                 exclusive: bool = False, where: Any = None) -> Any:
    r"""Compute ``tau * log(cumsum(exp(a / tau), axis))``, accurately and stably.

    The running log-sum-exp: ``out[..., i, ...]`` is the log-sum-exp of
    ``a[..., :i + 1, ...]`` along ``axis``, with the shape and axis conventions of
    `numpy.cumsum`. The log-space prefix sums of the forward algorithm of hidden
    Markov models, of running normalizers and of cumulative log-probabilities.

    Parameters
    ----------
    a : array_like or array API array
        Real input (bool, integer or floating).
    axis : int or None, optional
        The axis of the scan; None (the default) scans ``a`` flattened in C order.
    temperature : float, optional
        :math:`\tau > 0`: the result is ``tau * logcumsumexp(a / tau)``, which tends to
        the running max as :math:`\tau \to 0`.
    reverse : bool, optional
        Scan from the end: ``out[..., i, ...]`` is the log-sum-exp of ``a[..., i:, ...]``
        (of the flattened ``a`` for ``axis=None``).
    exclusive : bool, optional
        Leave each element out of its own output: ``out[..., i, ...]`` is the log-sum-exp
        of ``a[..., :i, ...]``, so the first output is ``-inf`` (the empty sum), with
        gradient 0; with ``reverse``, of ``a[..., i + 1:, ...]``, the last output ``-inf``.
        Together the two keywords are those of ``tf.math.cumulative_logsumexp``.
    where : array_like of bool, optional
        The elements to include, broadcast against ``a``: the others add nothing to
        any sum, whatever their value, so ``out[..., i, ...]`` is the log-sum-exp of
        the included elements up to ``i`` (``-inf`` before the first); a left-out
        element's own output is the running value, not ``-inf``. NumPy input's mask is
        read by the kernel beside ``a``.

    Returns
    -------
    out : array
        ``a``'s shape, or ``(a.size,)`` for ``axis=None`` (0-d input gives shape
        ``(1,)``), an array of ``a``'s kind on its device. Floating input keeps its
        dtype (float16 and bfloat16 compute in float32); integer and bool input give
        the namespace's default floating dtype. Empty input gives an empty result.

    Raises
    ------
    TypeError
        For complex or non-numeric input, an axis that is not an integer, or a reverse or
        exclusive that is not a bool.
    numpy.exceptions.AxisError
        For an axis out of range.
    ValueError
        For a temperature that is not finite and at least the smallest normal float64.

    Notes
    -----
    Special values follow the exact sums: ``-inf`` adds nothing (a prefix of only
    ``-inf`` gives ``-inf``), a ``+inf`` makes the rest of its lane ``+inf`` and a
    nan makes it nan (also after a ``+inf``).

    NumPy input runs the lsecore kernel, one read and no temporaries but the result:
    each lane carries the partial of its prefix (its max, the weight of the terms
    equal to it, and the compensated sum of the others scaled by the max), and each
    output is finalized from it as `logsumexp` does, so a prefix where one term
    dominates keeps the others (``logcumsumexp([0, -50])[1]`` is
    ``log1p(exp(-50))``, not 0) and every output is within an ulp of the exact
    value unless the max and the log of the sum cancel. Where the CPU has AVX-512, a lane
    goes in blocks of 128 outputs (down columns, 32 rows of 8 lanes) taken against the
    block's max, their terms and logs in double-double, and a block is written only where
    a rounding test vouches for every output within an ulp (else the loops above take it).
    So an output may depend on the elements after it in its block, or on the neighbouring
    lanes of its tile: ``logcumsumexp(a)[:k]`` and ``logcumsumexp(a[:k])`` can differ in
    the last bit, both within an ulp. Threads take separate lanes; one long lane (at least
    65536 elements) is cut into at most 64 blocks, whose partials are reduced in one read
    and merged in order into each block's starting state, so that the blocks are scanned
    side by side (the same blocks, and bits, on any number of threads).
    Other backends scan in ``ceil(log2 n)`` steps of `logaddexp`, differentiably (the
    gradient of ``out[i]`` in ``a[j]``, ``j <= i``, is the softmax of the prefix); dask
    scans each block once and carries the last slice into the next block. A reverse
    scan is the scan of the flipped input, flipped back (NumPy's kernel reads the
    flipped view in place); an exclusive scan is the inclusive one shifted by a slice,
    which allocates the result once more.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logcumsumexp
    >>> logcumsumexp([0.0, -50.0, 0.0])
    array([0.00000000e+00, 1.92874985e-22, 6.93147181e-01])
    >>> logcumsumexp(np.log([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([[0.        , 0.69314718],
           [1.38629436, 1.79175947]])
    >>> logcumsumexp([-np.inf, 1.0, np.inf, 2.0])
    array([-inf,   1.,  inf,  inf])
    >>> logcumsumexp([1.0, 1.0], temperature=0.5)
    array([1.        , 1.34657359])

    ``reverse`` and ``exclusive``: the sums of 1, 2 and 4 from the end, and of what comes
    before (or after) each element:

    >>> a = np.log([1.0, 2.0, 4.0])
    >>> np.exp(logcumsumexp(a, reverse=True))
    array([7., 6., 4.])
    >>> np.exp(logcumsumexp(a, exclusive=True))
    array([0., 1., 3.])
    >>> np.exp(logcumsumexp(a, reverse=True, exclusive=True))
    array([6., 4., 0.])

    ``where``: the running sums of the elements kept, nan and all left out:

    >>> np.exp(logcumsumexp(np.log([1.0, np.nan, 2.0]), where=[True, False, True]))
    array([1., 1., 3.])
    """
    return executor(a, where, func="logcumsumexp").logcumsumexp(a, axis, temperature, reverse,
                                                                exclusive, where)
