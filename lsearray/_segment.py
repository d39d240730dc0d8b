"""segment_logsumexp, segment_softmax and segment_log_softmax: reductions and softmax within the segments of an axis."""

from __future__ import annotations

from typing import Any

from lsearray._delegation import executor
from lsearray._validation import flag

__all__ = ["segment_log_softmax", "segment_logsumexp", "segment_softmax"]


def segment_logsumexp(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0, b: Any = None,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    r"""Compute the log-sum-exp of the elements of each segment of an axis.

    Segment ``k`` of the result is :math:`\tau \log \sum_{i: ids_i = k} b_i e^{a_i / \tau}`,
    as ``jax.ops.segment_sum`` of the exponentials but without overflow: each segment
    is shifted by its own max.

    Parameters
    ----------
    a : array_like or array API array
        The values, of bool, integer or real floating dtype.
    segment_ids : array_like or array API array
        1-d integers of length ``a.shape[axis]``: the segment of each element, in
        ``[0, num_segments)``, in any order.
    num_segments : int, optional
        The number of segments; None for ``max(segment_ids) + 1`` (0 for no elements).
        Under ``jax.jit`` it must be given, a static int as in ``jax.ops.segment_sum``.
    axis : int, optional
        The axis of ``a`` that the segments divide.
    b : array_like or array API array, optional
        Weights broadcasting to ``a``'s shape, as in `logsumexp` (scipy's rules): a
        segment whose weighted sum is negative gives nan, one whose sum is 0 gives
        ``-inf``; an element of weight 0 does not count, even if infinite.
    temperature : float, optional
        :math:`\tau > 0`, as in `logsumexp`.
    sorted : bool, optional
        A hint that ``segment_ids`` are nondecreasing: the NumPy kernel then reduces each
        run of equal ids with its row loops, several times faster. The results are
        right either way (ids out of order with ``sorted=True`` are only slower), and
        agree within the accuracy bound, not always to the last bit.

    Returns
    -------
    res : array
        ``a``'s shape with ``axis`` of length ``num_segments``, in ``a``'s floating dtype
        (the default one for integer input). An empty segment gives ``-inf``, one with
        a ``+inf`` element ``+inf``, one with a nan nan.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is complex, ``segment_ids`` are not integers, ``axis`` or
        ``num_segments`` is not an integer.
    ValueError
        If ``axis`` is not an axis of ``a``, ``segment_ids`` are not 1-d of length
        ``a.shape[axis]`` or lie outside ``[0, num_segments)``, ``num_segments`` is
        negative, ``b`` does not broadcast to ``a``, or the temperature is not positive
        and finite.

    Notes
    -----
    NumPy arrays run on the lsecore kernel: each element is read once into its segment's
    partial, in any order of the ids, and each result is within an ulp (see the user
    guide's limits for the speed of ids in random order). torch tensors on ``scatter_reduce`` and
    ``index_add`` (differentiable by autograd), JAX arrays on ``jax.ops.segment_max`` and
    ``jax.ops.segment_sum`` (under ``jax.jit`` too, and ``jax.grad``); other array API
    libraries, which the standard gives no scatter, through a one-hot mask of
    ``a.shape[axis] * num_segments`` elements (times the other axes' size). The
    segment's max is not differentiated: the shift cancels in the result. While JAX
    traces ``segment_ids`` their values cannot be checked: ids out of range are then
    dropped, as ``jax.ops.segment_sum`` drops them.

    See Also
    --------
    segment_softmax : the softmax within each segment.
    lsearray.dask.segment_logsumexp : the same over dask arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import segment_logsumexp
    >>> a = np.log([1.0, 2.0, 3.0, 4.0])
    >>> segment_logsumexp(a, [0, 1, 0, 1])
    array([1.38629436, 1.79175947])
    >>> segment_logsumexp(a + 1000, [2, 2, 0, 0], num_segments=4) - 1000
    array([1.94591015,       -inf, 1.09861229,       -inf])
    """
    sorted = flag(sorted, "sorted", "segment_logsumexp")
    return executor(a, b, func="segment_logsumexp").segment_logsumexp(
        a, segment_ids, num_segments, axis, b, temperature, sorted, "segment_logsumexp")


def segment_softmax(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    r"""Compute the softmax of ``a / tau`` within each segment of an axis.

    The normalization of graph attention (PyG's ``softmax(src, index)``): the elements
    of each segment sum to 1.

    Parameters
    ----------
    a, segment_ids, num_segments, axis, temperature, sorted
        As in `segment_logsumexp`.

    Returns
    -------
    res : array
        Shaped like ``a``, in its floating dtype. As `softmax` gives a slice, a segment
        whose elements are all ``-inf``, or that holds a ``+inf`` or a nan, is all nan.

    Raises
    ------
    TypeError, ValueError
        As `segment_logsumexp`.

    See Also
    --------
    segment_log_softmax, segment_logsumexp

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import segment_softmax
    >>> segment_softmax(np.log([1.0, 2.0, 3.0, 6.0]), [0, 1, 0, 1])
    array([0.25, 0.25, 0.75, 0.75])
    >>> segment_softmax(np.array([0.0, -np.inf, -np.inf]), [0, 1, 1])
    array([ 1., nan, nan])
    """
    sorted = flag(sorted, "sorted", "segment_softmax")
    return executor(a, func="segment_softmax").segment_normalized(
        a, segment_ids, num_segments, axis, temperature, sorted, "segment_softmax", False)


def segment_log_softmax(
    a: Any, segment_ids: Any, num_segments: int | None = None, *, axis: int = 0,
    temperature: float = 1.0, sorted: bool = False,
) -> Any:
    r"""Compute the log of `segment_softmax`: ``(a - lse) / tau``, ``lse`` of each element's segment.

    Parameters
    ----------
    a, segment_ids, num_segments, axis, temperature, sorted
        As in `segment_logsumexp`.

    Returns
    -------
    res : array
        Shaped like ``a``, in its floating dtype. As `log_softmax` gives a slice: an all
        ``-inf`` segment is all nan, one with a nan is nan, and one with a ``+inf``
        element is nan there and at other ``+inf`` elements, ``-inf`` at finite ones.

    Raises
    ------
    TypeError, ValueError
        As `segment_logsumexp`.

    See Also
    --------
    segment_softmax, segment_logsumexp

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import segment_log_softmax
    >>> np.exp(segment_log_softmax(np.log([1.0, 2.0, 3.0, 6.0]), [0, 1, 0, 1]))
    array([0.25, 0.25, 0.75, 0.75])
    """
    sorted = flag(sorted, "sorted", "segment_log_softmax")
    return executor(a, func="segment_log_softmax").segment_normalized(
        a, segment_ids, num_segments, axis, temperature, sorted, "segment_log_softmax", True)
