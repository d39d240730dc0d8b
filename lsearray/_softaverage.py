"""softmax_average and OnlineSoftmaxAverage: the softmax-weighted average of values, in one pass or streamed."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from lsearray._delegation import executor
from lsearray._validation import bad_axis, flag, temperature_value

__all__ = ["OnlineSoftmaxAverage", "softmax_average"]


def softmax_average(
    a: Any, v: Any, axis: int = -1, *, temperature: float = 1.0, keepdims: bool = False,
    return_lse: bool = False,
) -> Any:
    r"""Compute ``sum(softmax(a / tau) * v)`` over an axis of the logits ``a``, without the softmax.

    The attention readout: with ``m = max(a)`` and ``w = exp((a - m) / tau)``, the result is
    ``sum(w * v) / sum(w)``, and ``m + tau * log(sum(w))`` is the log-sum-exp of the
    slice. ``a`` is read for its max, then ``a`` and ``v`` once each; the weights are the
    only temporary of ``a``'s size, and the weighted sum is the library's batched matrix
    product, with no temporary of ``v``'s size.

    Parameters
    ----------
    a : array_like or array API array
        The logits, of bool, integer or real floating dtype.
    v : array_like or array API array
        The values: ``a``'s axes first (``v.shape[:a.ndim]`` broadcasts with ``a.shape``),
        then any trailing feature axes, which are averaged alike (``a`` of shape
        ``(n, L)`` and ``v`` of shape ``(n, L, d)`` give ``(n, d)`` with ``axis=-1``).
    axis : int, optional
        The axis of ``a`` to reduce (the same axis of ``v``); a negative one counts from
        the end of ``a``, not of ``v``.
    temperature : float, optional
        :math:`\tau > 0`, as in `softmax`.
    keepdims : bool, optional
        If True, the reduced axis is left in the results with length 1.
    return_lse : bool, optional
        If True, also return the log-sum-exp of ``a`` over the axis (the softmax's
        normalizer, which `OnlineSoftmaxAverage` merges on).

    Returns
    -------
    average : array or scalar
        Shaped like ``v`` without the axis, in the promoted floating dtype of ``a`` and
        ``v``. An element of ``-inf`` logit has weight 0 (its value still enters as
        ``0 * v``, so a nan or infinite value there makes the average nan). A slice
        whose logits are all ``-inf`` (or empty) has no weights to normalize: its average
        is nan, as `softmax` of such a slice is all nan. A ``+inf`` or nan logit gives
        nan too.
    lse : array or scalar
        Only with ``return_lse``: shaped like ``a`` without the axis; ``-inf`` for an all
        ``-inf`` slice, ``+inf`` with a ``+inf`` logit, nan with a nan one.

    Raises
    ------
    TypeError
        If an operand is complex or ``axis`` is not an integer.
    ValueError
        If ``axis`` is not an axis of ``a``, ``v`` lacks ``a``'s axes or they do not
        broadcast, or the temperature is not positive and finite.

    See Also
    --------
    OnlineSoftmaxAverage : the same over batches, mergeable.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import softmax_average
    >>> softmax_average(np.log([1.0, 3.0]), [10.0, 20.0])
    np.float64(17.5)
    >>> a = np.array([[0.0, 1000.0], [-np.inf, 0.0]])
    >>> v = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    >>> average, lse = softmax_average(a, v, return_lse=True)
    >>> average
    array([[3., 4.],
           [7., 8.]])
    >>> lse
    array([1000.,    0.])
    """
    keepdims = flag(keepdims, "keepdims", "softmax_average")
    return_lse = flag(return_lse, "return_lse", "softmax_average")
    lse, average = executor(a, v, func="softmax_average").softmax_average(
        a, v, axis, temperature, keepdims)
    return (average, lse) if return_lse else average


class OnlineSoftmaxAverage:
    r"""A streaming, mergeable `softmax_average`: the state ``(m, s, acc)`` of flash attention.

    Each batch of logits and values is reduced over ``axis`` to its max ``m``, its sum of
    weights ``s = sum(exp((a - m) / tau))`` and weighted sum of values
    ``acc = sum(exp((a - m) / tau) * v)``; merging two states rescales the one of the
    smaller max by ``exp((m_old - m_new) / tau)``. Nothing else of a batch is kept, and
    states of parts of the data merge in any order or tree to the same result but for
    rounding.

    Parameters
    ----------
    axis : int, optional
        The axis of each batch's logits that the stream runs along (the same axis of its
        values): the result is `softmax_average` of the batches concatenated along it.
        Batches must agree in the other axes.
    temperature : float, optional
        :math:`\tau > 0`, as in `softmax_average`.

    Attributes
    ----------
    axis : int
    temperature : float
    count : int
        The summed length of the batches along ``axis``.

    Notes
    -----
    The state is kept in the batches' promoted floating dtype, in their library and on
    their device; dask batches give a lazy state. It is not compensated: each merge
    rounds once more, so a stream of ``k`` batches is within a few ``log2(k)`` ulp of
    the one-shot `softmax_average`.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import OnlineSoftmaxAverage, softmax_average
    >>> a, v = np.arange(6.0), np.arange(6.0) ** 2
    >>> left = OnlineSoftmaxAverage(axis=0).update(a[:2], v[:2])
    >>> right = OnlineSoftmaxAverage(axis=0).update(a[2:], v[2:])
    >>> lse, average = left.merge(right).result()
    >>> bool(np.isclose(average, softmax_average(a, v)))
    True
    >>> left
    <OnlineSoftmaxAverage axis=0 temperature=1.0 count=6 shape=()>
    """

    def __init__(self, axis: int = 0, *, temperature: float = 1.0) -> None:
        try:
            axis = operator.index(axis)
        except TypeError:
            raise bad_axis("OnlineSoftmaxAverage", axis, "an integer") from None
        self._axis = axis
        self._tau = temperature_value(temperature, "OnlineSoftmaxAverage")
        self._count = 0
        self._shape: tuple[int, ...] | None = None  # the values' shape without the axis
        self._state: Any = None
        self._device: Any = None

    @property
    def axis(self) -> int:
        return self._axis

    @property
    def temperature(self) -> float:
        return self._tau

    @property
    def count(self) -> int:
        return self._count

    def __repr__(self) -> str:
        head = (f"<OnlineSoftmaxAverage axis={self._axis!r} temperature={self._tau!r} "
                f"count={self._count}")
        return head + (">" if self._state is None else f" shape={self._shape}>")

    def _absorb(self, state: Any, shape: tuple[int, ...], device: Any, count: int, what: str,
                func: str) -> None:
        if self._state is not None:
            mine, theirs = executor(self._state.m), executor(state.m)
            if mine.library != theirs.library:
                raise TypeError(f"{func}: the accumulator holds {mine.library} arrays; got {what} "
                                f"of {theirs.library}")
            if shape != self._shape:
                raise ValueError(f"{func}: batches must agree in their values' shape without axis "
                                 f"{self._axis}: expected {self._shape}, got {what} with {shape}")
            if device is not None and self._device not in (None, device):
                raise ValueError(f"{func}: the accumulator is on device {self._device}; got {what} "
                                 f"on {device}")
            state = mine.average_merge(self._state, state, self._tau)
        self._state, self._shape, self._count = state, shape, self._count + count
        self._device = device if self._device is None else self._device

    def update(self, a: Any, v: Any) -> OnlineSoftmaxAverage:
        """Reduce the batch of logits ``a`` and values ``v`` over the axis into the state.

        Parameters
        ----------
        a, v : array_like or array API array
            As in `softmax_average`; the batches' values agree in their shape without
            the axis.

        Returns
        -------
        self : OnlineSoftmaxAverage

        Raises
        ------
        TypeError
            If an operand is complex, or of another array library than the first batch.
        ValueError
            If the batch does not fit `softmax_average`'s rules, or its values' shape
            without the axis differs from the earlier batches'.

        Examples
        --------
        >>> from lsearray import OnlineSoftmaxAverage
        >>> acc = OnlineSoftmaxAverage(axis=-1).update([[0.0, 0.0]], [[1.0, 3.0]])
        >>> acc.update([[0.0]], [[8.0]]).result()[1]
        array([4.])
        """
        func = "OnlineSoftmaxAverage.update"
        ex = executor(a, v, func=func)
        state, shape, device, length, seen = ex.average_state(a, v, self._axis, self._tau, func)
        self._absorb(state, shape, device, length, f"a batch with {seen}", func)
        return self

    def merge(self, other: OnlineSoftmaxAverage) -> OnlineSoftmaxAverage:
        """Merge the state of ``other`` (left unchanged) into this accumulator.

        Parameters
        ----------
        other : OnlineSoftmaxAverage
            An accumulator with the same axis and temperature, of batches of the same
            library and values' shape without the axis.

        Returns
        -------
        self : OnlineSoftmaxAverage

        Raises
        ------
        TypeError
            If ``other`` is not an OnlineSoftmaxAverage, or holds another library's arrays.
        ValueError
            If the axes, temperatures or shapes differ.

        Examples
        --------
        >>> from lsearray import OnlineSoftmaxAverage
        >>> x = OnlineSoftmaxAverage(axis=0).update([0.0], [1.0])
        >>> float(x.merge(OnlineSoftmaxAverage(axis=0).update([0.0], [3.0])).result()[1])
        2.0
        """
        func = "OnlineSoftmaxAverage.merge"
        if not isinstance(other, OnlineSoftmaxAverage):
            raise TypeError(f"{func} expects an OnlineSoftmaxAverage; got {type(other).__name__}")
        if (other._axis, other._tau) != (self._axis, self._tau):
            raise ValueError(
                f"{func}: accumulators must have the same axis and temperature; this one has axis="
                f"{self._axis!r}, temperature={self._tau!r}, the other axis={other._axis!r}, "
                f"temperature={other._tau!r}")
        if other._state is not None:
            self._absorb(other._state, other._shape, other._device, other._count,
                         f"an accumulator of shape {other._shape}", func)
        return self

    def result(self) -> tuple[Any, Any]:
        """``(lse, average)`` of everything seen, as `softmax_average` with ``return_lse``.

        Returns
        -------
        lse : array or scalar
            The log-sum-exp of the logits, shaped like the logits without the axis.
        average : array or scalar
            The softmax-weighted average of the values, shaped like them without the axis;
            nan where every logit was ``-inf``. With nothing seen, ``(-inf, nan)`` as
            NumPy float64 scalars.

        Examples
        --------
        >>> from lsearray import OnlineSoftmaxAverage
        >>> OnlineSoftmaxAverage().result()
        (np.float64(-inf), np.float64(nan))
        """
        if self._state is None:
            return np.float64(-math.inf), np.float64(math.nan)
        ex = executor(self._state.m)
        return ex.average_result(self._state, self._axis % self._state.m.ndim, self._tau)

