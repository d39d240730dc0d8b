"""logcumsumexp: the running log-sum-exp along an axis."""

from __future__ import annotations

import math
import operator
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_dask_namespace
from numpy.lib.array_utils import normalize_axis_index

import lsecore
from lsearray._delegation import namespace
from lsearray._executors.array_api_lse import nothing_is_constant
from lsearray._executors.narrow import narrowed
from lsearray._pairwise import generic_logaddexp, logaddexp
from lsearray._validation import _temperature, prepare, prepare_array_api

__all__ = ["logcumsumexp"]


def _axis(axis: Any, ndim: int) -> int | None:
    """``axis`` normalized against ``ndim`` (0-d input counts as 1-d), or None."""
    if axis is None:
        return None
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(
            f"logcumsumexp: axis must be an integer or None; got {type(axis).__name__}"
        ) from None
    return normalize_axis_index(axis, max(ndim, 1))


def _doubling_scan(a: Any, axis: int, tau: Any, xp: ModuleType) -> Any:
    """The inclusive scan of ``a`` along ``axis`` under logaddexp, in ``ceil(log2 n)``
    whole-array steps (Hillis and Steele): step ``k`` merges every element with the one
    ``2**k`` before it. Every element is the log-sum-exp of its prefix, summed in a tree
    of logaddexps, so the error grows with ``log2 n``, not ``n``. An all ``-inf`` prefix
    gives the constant ``-inf``: its elements get gradient 0."""
    n = a.shape[axis]
    before = (slice(None),) * axis

    def part(start: int | None, stop: int | None) -> Any:
        return a[before + (slice(start, stop), ...)]

    step = 1
    while step < n:
        head = part(0, step)
        tail = generic_logaddexp(part(step, None), part(0, n - step), tau, xp)
        a = xp.concat([head, tail], axis=axis)
        step *= 2
    return nothing_is_constant(a, xp)


def _dask(a: Any, axis: int | None, tau: float) -> Any:
    """A lazy scan: each block is scanned once; the carries (the last slice of the scan
    so far) merge into the next block with logaddexp."""
    from dask.array.reductions import cumreduction

    def logcumsumexp_block(x: Any, axis: int) -> Any:
        return logcumsumexp(x, axis, temperature=tau)

    def logaddexp_blocks(x1: Any, x2: Any) -> Any:
        return logaddexp(x1, x2, temperature=tau)

    if axis is None:  # dask cannot flatten an empty array of several chunks: one chunk then
        a, axis = (a.rechunk(-1) if 0 in a.shape else a).reshape(-1), 0
    return cumreduction(logcumsumexp_block, logaddexp_blocks, -math.inf, a, axis=axis, dtype=a.dtype)


def _array_api(a: Any, axis: Any, temperature: Any, xp: ModuleType) -> Any:
    """logcumsumexp of an array of the namespace ``xp``: dask's blockwise scan, or the
    doubling scan for the others."""
    p, compute = prepare_array_api(a, None, None, temperature, "logcumsumexp", xp)
    if not xp.isdtype(compute, "real floating"):
        raise TypeError(f"logcumsumexp expects real input; got dtype {compute}")
    axis = _axis(axis, len(p.shape))
    if is_dask_namespace(xp):
        out = _dask(p.a, axis, _temperature(p.tau, "logcumsumexp"))
    else:
        x = p.a
        if axis is None:
            x, axis = xp.reshape(x, (-1,)), 0
        with np.errstate(all="ignore"):  # NumPy-backed namespaces warn on inf - inf
            out = _doubling_scan(x, axis, p.tau, xp)
    return out if out.dtype == p.dtype else xp.astype(out, p.dtype)


def logcumsumexp(a: Any, axis: int | None = None, *, temperature: float = 1.0) -> Any:
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
        For complex or non-numeric input, or an axis that is not an integer.
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
    value unless the max and the log of the sum cancel. Threads take separate lanes.
    Other backends scan in ``ceil(log2 n)`` steps of `logaddexp`, differentiably (the
    gradient of ``out[i]`` in ``a[j]``, ``j <= i``, is the softmax of the prefix); dask
    scans each block once and carries the last slice into the next block.

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
    """
    xp = namespace(a)
    if xp is not None:
        return _array_api(a, axis, temperature, xp)
    p = prepare(a, None, None, temperature, "logcumsumexp")
    out = lsecore.logcumsumexp(p.a, _axis(axis, len(p.shape)), p.tau)
    return narrowed(out, p.dtype)
