"""OnlineLogSumExp: a streaming log-sum-exp over batches, built on the partial algebra."""

from __future__ import annotations

import math
import operator
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_dask_namespace
from array_api_compat import numpy as np_compat
from array_api_compat import device as device_of

from lsearray._delegation import namespace
from lsearray._executors.narrow import narrowed
from lsearray._executors.partials import Partial, finalize, finalize_mean, merge, partial
from lsearray._validation import _temperature, prepare, prepare_array_api

__all__ = ["OnlineLogSumExp"]


def _library(xp: ModuleType | None) -> str:
    """A short name of the array library behind ``xp`` (None: NumPy's kernel path)."""
    return "numpy" if xp is None else xp.__name__.removeprefix("array_api_compat.")


def _reshaped(p: Partial, shape: tuple[int, ...], ns: ModuleType) -> Partial:
    """``p`` (of kept axes) with every array reshaped to the result's ``shape``."""
    def r(x: Any) -> Any:
        return x if isinstance(x, int) else ns.reshape(x, shape)

    return Partial(r(p.m), r(p.w), r(p.t), r(p.c), r(p.n), r(p.e), tuple(map(r, p.s)))


def _cast(p: Partial, dtype: Any, xp: ModuleType) -> Partial:
    """``p`` with every array in ``dtype`` (the exponent is a whole number in any)."""
    def c(x: Any) -> Any:
        return x if isinstance(x, int) or x.dtype == dtype else xp.astype(x, dtype)

    return Partial(c(p.m), c(p.w), c(p.t), c(p.c), c(p.n), c(p.e), tuple(map(c, p.s)))


class OnlineLogSumExp:
    r"""A streaming log-sum-exp: ``tau * log(sum(b * exp(a / tau)))`` over batches.

    Each batch is reduced over ``axis`` to the partial ``(max, scaled sum)`` of the
    log-sum-exp partial algebra, in one read (NumPy batches by the lsecore kernel),
    and merged into the state; nothing else of a batch is kept. Accumulators of
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
    For NumPy batches the result equals `logsumexp` of the concatenated batches
    (with their weights) to within an ulp or two: the kernel's merges carry their
    rescaling in double-double, so the number of batches costs no accuracy. Where the
    result cancels (much smaller than the temperature or than the max) the batches
    cannot be read again, and the rounding of the terms below the max stays in it: the
    bound is then 2 ulp plus an absolute
    ``2**-50 * sum(|b_i| exp(z_i) (tau + |max| + 3 |a_i - max|)) / |S|`` over those
    terms (``z_i = (a_i - max) / tau``, ``S`` the sum). Means near the max are taken
    from ``sum(b expm1(z))``, carried through merges, so at a temperature far above the
    data's spread the mean is the weighted mean of the data. Other
    libraries merge in their own floating point. NumPy state is float64 whatever the
    batches' dtype; other libraries keep it in the batches' computation dtype
    (float32 for float16 and bfloat16). The result has the batches' promoted dtype,
    in their library and on their device. Batches of torch, jax, array-api-strict
    and other array API libraries work the same way; dask batches give a lazy result.
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
                raise TypeError(
                    f"OnlineLogSumExp: axis must be an int or None; got {type(axis).__name__}"
                ) from None
        self._axis = axis
        self._tau = _temperature(temperature, "OnlineLogSumExp")
        self._count = 0
        self._shape: tuple[int, ...] | None = None  # the result's shape, once a batch is seen
        self._dtype: Any = None  # the result's dtype
        # the partial of everything seen, with the weights' sum n and the mean's sums s
        self._state: Partial | None = None

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
        if self._state is None:
            return head + ">"
        dtype = getattr(self._dtype, "name", self._dtype)
        return f"{head} shape={self._shape} dtype={dtype} library={_library(self._namespace())}>"

    def _namespace(self) -> ModuleType | None:
        """The state's namespace: None for NumPy (the kernel path)."""
        m = self._state.m
        return None if isinstance(m, np.ndarray) else array_namespace(m)

    def _check_like(self, xp: ModuleType | None, shape: tuple[int, ...], device: Any, what: str,
                    func: str) -> None:
        """TypeError for another library than the state's, ValueError for another shape or device."""
        if self._state is None:
            return
        mine = self._namespace()
        if xp is not mine:
            raise TypeError(
                f"{func}: the accumulator holds {_library(mine)} arrays; got {what} of {_library(xp)}"
            )
        if shape != self._shape:
            where = "every axis" if self._axis is None else f"axis {self._axis}"
            raise ValueError(
                f"{func}: batches must agree in their shape without {where}: expected {self._shape}, "
                f"got {what} with {shape}"
            )
        if xp is not None and device is not None and device_of(self._state.m) not in (None, device):
            raise ValueError(
                f"{func}: the accumulator is on device {device_of(self._state.m)}; got {what} on {device}"
            )

    def _absorb(self, part: Partial, count: int, shape: tuple[int, ...], dtype: Any,
                xp: ModuleType | None) -> None:
        """Merge the partial ``part`` (shaped like the result, with ``n`` and ``s``) into
        the state."""
        if self._state is not None:
            if xp is None:
                dtype = np.result_type(self._dtype, dtype)
            else:
                dtype = xp.result_type(self._dtype, dtype)
                compute = xp.result_type(self._state.m.dtype, part.m.dtype)
                self._state, part = _cast(self._state, compute, xp), _cast(part, compute, xp)
            # NumPy-backed namespaces warn on inf - inf
            with np.errstate(all="ignore"):
                part = merge([self._state, part], 1.0 / self._tau)
        self._state = part
        self._dtype = dtype
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
        xp = namespace(batch, b)
        if xp is None:
            p = prepare(batch, b, self._axis, self._tau, func)
        else:
            p, compute = prepare_array_api(batch, b, self._axis, self._tau, func, xp)
            if xp.isdtype(compute, "complex floating"):
                raise TypeError(f"{func}: complex input is not supported; got dtype {compute}")
        shape = tuple(n for k, n in enumerate(p.a.shape) if k not in p.axes)
        self._check_like(xp, shape, None if xp is None else device_of(p.a),
                         f"a batch of shape {p.shape}", func)
        with np.errstate(all="ignore"):  # NumPy-backed namespaces warn on inf - inf
            part = partial(p.a, p.b, p.axes, 1.0 / self._tau, mean=True)
            part = _reshaped(part, shape, np if xp is None else xp)
        if xp is not None and part.n.dtype != part.m.dtype:
            part = _cast(part, part.m.dtype, xp)
        self._absorb(part, math.prod(p.a.shape[k] for k in p.axes), shape, p.dtype, xp)
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
        if other._state is None:
            return self
        xp = other._namespace()
        device = None if xp is None else device_of(other._state.m)
        self._check_like(xp, other._shape, device, f"an accumulator of shape {other._shape}", func)
        self._absorb(other._state, other._count, other._shape, other._dtype, xp)
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
        if self._state is None:
            out = np.float64(math.nan if mean else -math.inf)
            return (out, np.float64(math.nan if mean else 0.0)) if return_sign else out
        xp = self._namespace()
        part = self._state
        lazy = xp is not None and is_dask_namespace(xp)
        if lazy and part.m.dtype != xp.float64:
            # dask computes later, outside this errstate: finalized in float64 and rounded
            # by narrowed, a result beyond the dtype's range is inf without the overflow
            # warning that float32 arithmetic would give.
            part = _cast(part, xp.float64, xp)
        ns = np_compat if xp is None else xp
        with np.errstate(all="ignore"):
            out, sign = finalize_mean(part, self._tau) if mean else \
                finalize(part, self._tau)[:2]
        if not return_sign:
            out = ns.where(sign < 0, ns.full_like(out, math.nan), out)
        if xp is None:
            out, sign = (narrowed(np.asarray(x), self._dtype)[()] for x in (out, sign))
        elif lazy:
            out, sign = (narrowed(x, self._dtype) for x in (out, sign))
        else:
            out, sign = (x if x.dtype == self._dtype else xp.astype(x, self._dtype) for x in (out, sign))
        return (out, sign) if return_sign else out
