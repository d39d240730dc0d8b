"""OnlineLogSumExp: a streaming log-sum-exp over batches, built on the partial algebra."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from lsearray._delegation import Executor, executor
from lsearray._executors.partials import Partial
from lsearray._validation import bad_axis, temperature_value

__all__ = ["OnlineLogSumExp"]


class OnlineLogSumExp:
    r"""A streaming log-sum-exp: ``tau * log(sum(b * exp(a / tau)))`` over batches.

    Each batch is reduced over ``axis`` to the partial ``(max, scaled sum)`` of the
    log-sum-exp partial algebra, in one read (NumPy batches by the lsecore kernel),
    and merged into the state; nothing else of a batch is kept. The state is a stack
    of at most ``log2(batches) + 1`` partials shaped like the result, merged as a
    balanced tree (so a dask stream's graph is as deep as the log of its batches). Accumulators of
    parts of the data merge in any order or tree (to the same result but for
    rounding), and pickle mid-stream, so a stream can be split between processes
    or machines.

    Parameters
    ----------
    axis : int or None, optional
        The axis of each batch that the stream runs along: the result is the
        log-sum-exp of the batches concatenated along it, so batches must agree in
        the other axes. None reduces every axis of every batch (a scalar result;
        batches of any shapes).
    temperature : float, optional
        :math:`\tau > 0`, as in `logsumexp`.

    Attributes
    ----------
    axis : int or None
    temperature : float
    count : int
        The number of elements seen in each slice of the result: the summed length
        of the batches along ``axis`` (their sizes for ``axis=None``), weights aside.

    Notes
    -----
    For NumPy batches (and dask batches of NumPy chunks) the result equals `logsumexp` of the concatenated batches
    (with their weights) to within an ulp or two: the kernel's merges carry their
    rescaling in double-double, so the number of batches costs no accuracy. Where the
    result cancels (much smaller than the temperature or than the max) the batches
    cannot be read again, and the rounding of the terms below the max stays in it: the
    bound is then 2 ulp plus an absolute
    ``2**-50 * sum(|b_i| exp(z_i) (tau + |max| + 3 |a_i - max|)) / |S|`` over those
    terms (``z_i = (a_i - max) / tau``, ``S`` the sum). Means near the max are taken
    from ``sum(b expm1(z))``, carried through merges, so at a temperature far above the
    data's spread the mean is the weighted mean of the data. Other
    libraries merge in their own floating point. The state of NumPy batches (and of
    dask batches of NumPy chunks) is float64 whatever the batches' dtype; other
    libraries keep it in the batches' computation dtype (float32 for float16 and
    bfloat16). The result has the batches' promoted dtype, in their library and on
    their device. Batches of torch, jax, array-api-strict and other array API
    libraries work the same way; dask batches give a lazy result, each batch reduced
    and merged chunk by chunk by its chunks' executor.
    A pickled accumulator holds its state as the library's arrays (float64 NumPy
    arrays for NumPy batches).

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import OnlineLogSumExp, logsumexp
    >>> acc = OnlineLogSumExp(axis=0)
    >>> for batch in np.array_split(np.arange(12.0).reshape(6, 2), 3):
    ...     _ = acc.update(batch)
    >>> acc
    <OnlineLogSumExp axis=0 temperature=1.0 count=6 shape=(2,) dtype=float64 library=numpy>
    >>> acc.result()
    array([10.14540731, 11.14540731])
    >>> logsumexp(np.arange(12.0).reshape(6, 2), axis=0)
    array([10.14540731, 11.14540731])

    Parts of a stream merge; weights may be negative:

    >>> left = OnlineLogSumExp(axis=None).update([0.0, 1.0])
    >>> right = OnlineLogSumExp(axis=None).update([2.0], b=[-1.0])
    >>> left.merge(right).result(return_sign=True)
    (np.float64(1.3004026126953767), np.float64(-1.0))
    >>> float(OnlineLogSumExp(axis=None).update([0.0, 0.0]).result(mean=True))
    0.0
    """

    def __init__(self, axis: int | None = 0, *, temperature: float = 1.0) -> None:
        if axis is not None:
            try:
                axis = operator.index(axis)
            except TypeError:
                raise bad_axis("OnlineLogSumExp", axis, "an integer or None") from None
        self._axis = axis
        self._tau = temperature_value(temperature, "OnlineLogSumExp")
        self._count = 0
        self._shape: tuple[int, ...] | None = None  # the result's shape, once a batch is seen
        self._dtype: Any = None  # the result's dtype
        # The partials of everything seen (with the weights' sums and the mean's sums), as
        # a stack of (partial, batches in it) whose sizes at least halve towards the top,
        # so at most log2(batches) + 1 of them: merged as a balanced tree, a lazy library's
        # graph grows in depth with the log of the number of batches, not with their number.
        self._parts: list[tuple[Partial, int]] = []

    @property
    def _executor(self) -> Executor:
        """The executor of the state's library (the state is plain arrays, so it pickles)."""
        return executor(self._parts[0][0].max)

    @property
    def axis(self) -> int | None:
        return self._axis

    @property
    def temperature(self) -> float:
        return self._tau

    @property
    def count(self) -> int:
        return self._count

    def __repr__(self) -> str:
        head = f"<OnlineLogSumExp axis={self._axis!r} temperature={self._tau!r} count={self._count}"
        if not self._parts:
            return head + ">"
        dtype = getattr(self._dtype, "name", self._dtype)
        return f"{head} shape={self._shape} dtype={dtype} library={self._executor.library}>"

    def _check_like(self, ex: Executor, shape: tuple[int, ...], device: Any, what: str,
                    func: str) -> None:
        """TypeError for another library than the state's, ValueError for another shape or device."""
        if not self._parts:
            return
        mine = self._executor
        if ex.library != mine.library:
            raise TypeError(
                f"{func}: the accumulator holds {mine.library} arrays; got {what} of {ex.library}"
            )
        if shape != self._shape:
            where = "every axis" if self._axis is None else f"axis {self._axis}"
            raise ValueError(
                f"{func}: batches must agree in their shape without {where}: expected {self._shape}, "
                f"got {what} with {shape}"
            )
        mine_device = mine.device_of(self._parts[0][0].max)
        if device is not None and mine_device not in (None, device):
            raise ValueError(
                f"{func}: the accumulator is on device {mine_device}; got {what} on {device}"
            )

    def _absorb(self, parts: list[tuple[Partial, int]], count: int, shape: tuple[int, ...],
                dtype: Any, ex: Executor) -> None:
        """Push ``parts`` (partials shaped like the result, with their count and mean sums,
        and how many batches each holds) onto the state's stack, merging its top two while
        the lower holds fewer than twice the upper's batches."""
        stack = list(self._parts)  # the state changes only once every merge has been built
        for part in parts:
            stack.append(part)
            while len(stack) > 1 and stack[-2][1] < 2 * stack[-1][1]:
                (lower, n_lower), (upper, n_upper) = stack[-2:]
                stack[-2:] = [(ex.stream_merge(lower, upper, self._tau), n_lower + n_upper)]
        self._parts = stack
        self._dtype = dtype if self._dtype is None else ex.result_type(self._dtype, dtype)
        self._count += count
        self._shape = shape

    def update(self, batch: Any, b: Any = None) -> OnlineLogSumExp:
        """Reduce ``batch`` (weights ``b``) over the axis and merge it into the state.

        Parameters
        ----------
        batch : array_like or array API array
            Real values of the first batch's library, agreeing with the earlier
            batches in the shape without the axis; a 0-d batch is one element.
        b : array_like, optional
            Weights broadcast against ``batch``, as in `logsumexp`: an element of
            weight 0 is left out, negative weights subtract.

        Returns
        -------
        self : OnlineLogSumExp

        Raises
        ------
        TypeError
            If the batch is complex, or of another array library than the first.
        ValueError
            If its shape without the axis differs from the earlier batches'.

        Examples
        --------
        >>> import numpy as np
        >>> from lsearray import OnlineLogSumExp
        >>> acc = OnlineLogSumExp(axis=-1).update(np.zeros((2, 3))).update(np.zeros((2, 1)))
        >>> acc.result()
        array([1.38629436, 1.38629436])
        """
        func = "OnlineLogSumExp.update"
        ex = executor(batch, b, func=func)
        part, shape, count, dtype, device, seen = ex.stream_partial(batch, b, self._axis,
                                                                    self._tau, func)
        self._check_like(ex, shape, device, f"a batch of shape {seen}", func)
        self._absorb([(part, 1)], count, shape, dtype, ex)
        return self

    def merge(self, other: OnlineLogSumExp) -> OnlineLogSumExp:
        """Merge the state of ``other`` (left unchanged) into this accumulator.

        Parameters
        ----------
        other : OnlineLogSumExp
            An accumulator with the same axis and temperature, of batches of the
            same library and shape without the axis.

        Returns
        -------
        self : OnlineLogSumExp

        Raises
        ------
        TypeError
            If ``other`` is not an OnlineLogSumExp, or holds another library's arrays.
        ValueError
            If the axes, temperatures or shapes differ.

        Examples
        --------
        >>> from lsearray import OnlineLogSumExp
        >>> a = OnlineLogSumExp(axis=None).update([1.0, 2.0])
        >>> b = OnlineLogSumExp(axis=None).update([3.0])
        >>> float(a.merge(b).result()), a.count
        (3.40760596444438, 3)
        """
        func = "OnlineLogSumExp.merge"
        if not isinstance(other, OnlineLogSumExp):
            raise TypeError(f"{func} expects an OnlineLogSumExp; got {type(other).__name__}")
        if (other._axis, other._tau) != (self._axis, self._tau):
            raise ValueError(
                f"{func}: accumulators must have the same axis and temperature; this one has axis="
                f"{self._axis!r}, temperature={self._tau!r}, the other axis={other._axis!r}, "
                f"temperature={other._tau!r}"
            )
        if not other._parts:
            return self
        ex = other._executor
        device = ex.device_of(other._parts[0][0].max)
        self._check_like(ex, other._shape, device, f"an accumulator of shape {other._shape}", func)
        self._absorb(list(other._parts), other._count, other._shape, other._dtype, ex)
        return self

    def result(self, return_sign: bool = False, *, mean: bool = False) -> Any:
        """The log-sum-exp of everything seen, with scipy's special values.

        Parameters
        ----------
        return_sign : bool, optional
            If True, return ``(log|s|, sign(s))`` for the sum ``s``; otherwise a
            negative sum (only negative weights make one) gives nan.
        mean : bool, optional
            If True, divide the sum by the sum of the weights (an element of an
            unweighted batch weighs 1, so this is the count without weights) before
            the log: the stream's `logmeanexp`; nan where that sum is 0 or its sign
            differs from the sum's.

        Returns
        -------
        res : array or scalar
            Shaped like the batches without the axis, in their library and promoted
            dtype; a NumPy scalar for a 0-d NumPy result. ``-inf`` (sign 0) with
            nothing seen, as a NumPy float64 scalar while no batch has told the
            library.
        sgn : array or scalar
            Only with ``return_sign``: +1, -1, 0 for a zero sum, nan for a nan result.

        Examples
        --------
        >>> from lsearray import OnlineLogSumExp
        >>> acc = OnlineLogSumExp(axis=None, temperature=0.5)
        >>> acc.result(return_sign=True)
        (np.float64(-inf), np.float64(0.0))
        >>> float(acc.update([0.0, 0.0]).result())
        0.34657359027997264
        """
        if not self._parts:
            out = np.float64(math.nan if mean else -math.inf)
            return (out, np.float64(math.nan if mean else 0.0)) if return_sign else out
        ex = self._executor
        state = self._parts[-1][0]
        for lower, _ in reversed(self._parts[:-1]):
            state = ex.stream_merge(lower, state, self._tau)
        out, sign = ex.stream_result(state, self._dtype, self._tau, mean, return_sign)
        return (out, sign) if return_sign else out
