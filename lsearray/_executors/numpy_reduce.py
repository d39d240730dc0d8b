"""Reductions of NumPy arrays on the lsecore kernel: one-read partials, finalized into results."""

from __future__ import annotations

import math

import numpy as np

import lsecore
from lsearray._validation import Prepared
from lsecore import _kernel
from lsecore._layout import refine

__all__ = ["Finalized", "reduce"]


def _flat_float64(x: np.ndarray | float, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` broadcast to ``shape`` as a new C-contiguous 1-d float64 array."""
    flat = np.empty(shape)
    flat[...] = x
    return flat.ravel()


class Finalized:
    """A finished reduction, shaped like the kept axes; the sum divided by ``divisor``
    (for means) when one is given.

    Attributes
    ----------
    m : ndarray
        The max over each slice (the shift).
    log_total : ndarray or None
        ``log|total|``, accurate when ``total`` is within an ulp of 1; None unless
        asked for.
    out : ndarray
        ``m + tau * log_total``: the log-sum-exp (float64).
    sign : ndarray or None
        The sign of the total: -1, 0, +1, or nan for a nan result; None unless asked
        for.
    """

    def __init__(
        self,
        m: np.ndarray,
        w: np.ndarray,
        t: np.ndarray,
        c: np.ndarray,
        tau: float,
        divisor: np.ndarray | float | None = None,
        *,
        sign: bool = True,
        log_total: bool = True,
    ):
        shape = m.shape
        m, w, t, c = m.ravel(), w.ravel(), t.ravel(), c.ravel()  # contiguous, copies if need be
        if divisor is not None:
            divisor = _flat_float64(divisor, shape)
        out = np.empty_like(m)
        sign_ = np.empty_like(m) if sign else None
        log_total_ = np.empty_like(m) if log_total else None
        lsecore.finalize(m, w, t, c, tau, out, sign_, log_total_, divisor)
        self._partials = (m, w, t, c)
        self._tau = tau
        self.m = m.reshape(shape)
        self._sum = (w, t, c)
        self.out = out.reshape(shape)
        self.sign = None if sign_ is None else sign_.reshape(shape)
        self.log_total = None if log_total_ is None else log_total_.reshape(shape)

    def refine(self, p: Prepared, divisor: np.ndarray | float | None, float32_result: bool) -> None:
        """Recompute from ``p`` the results the kernel cannot promise within an ulp (of
        float32 with ``float32_result``): see `lsecore.refine`."""
        flags = np.empty(self.out.size, np.uint8)
        count = math.prod(p.a.shape[k] for k in p.axes)
        # The largest |weight|: it can bring back terms the loops flush below 2^-1021.
        max_weight = 0.0 if p.b is None or p.b.size == 0 else max(
            abs(float(np.max(p.b))), abs(float(np.min(p.b))))
        _kernel.refine_flags(*self._partials, self._tau, self.out.reshape(-1),
                             p.a.dtype.itemsize, float32_result, max_weight, count, True,
                             flags)
        refine(p.a, p.axes, p.b, self._tau, 0.0 if divisor is None else divisor, self.out,
               self.sign, flags)

    @property
    def total(self) -> np.ndarray:
        """``w + t + c``: the slice's sum of ``b exp((a - m) / tau)`` (divisor aside)."""
        return self.total_parts()[0]

    def total_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """`total` rounded once and its rounding error (0 where the total is not
        finite), the error kept to 2^-20 of an ulp of the total: far more than the
        softmax's corrected quotient uses."""
        w, t, c = self._sum
        with np.errstate(invalid="ignore", over="ignore"):
            s = w + t
            v = s - w
            lo = (w - (s - v)) + (t - v) + c
            lo[~np.isfinite(s)] = 0.0
            hi = s + lo
            lo = lo - (hi - s)
            lo[~np.isfinite(hi)] = 0.0
            _, e = np.frexp(hi)
            lo = np.ldexp(np.round(np.ldexp(lo, 72 - e)), e - 72)
            return hi.reshape(self.m.shape), lo.reshape(self.m.shape)


def reduce(
    p: Prepared,
    divisor: np.ndarray | float | None = None,
    *,
    sign: bool = True,
    log_total: bool = True,
    float32_result: bool = False,
    exact: bool = False,
) -> Finalized:
    """Reduce a prepared input with the lsecore kernel, in one read of ``p.a``;
    ``divisor`` (shaped like the result) divides the sum before its log. ``sign`` and
    ``log_total`` say whether the result needs those arrays; ``float32_result`` that only
    ``out`` is wanted, as a float32 log-sum-exp (see `lsecore.reduce_partials`);
    ``exact`` that ``out`` must be within an ulp also where the max and the log of the
    sum cancel (`Finalized.refine`).

    Examples
    --------
    >>> from lsearray._validation import prepare
    >>> r = reduce(prepare([0.0, 0.0], None, None, 1.0, "logsumexp"))
    >>> float(r.out), float(r.sign)
    (0.6931471805599453, 1.0)
    """
    partials = lsecore.reduce_partials(p.a, p.axes, p.b, 1.0 / p.tau, float32_result, p.tau)
    r = Finalized(*partials, p.tau, divisor, sign=sign, log_total=log_total)
    if exact:
        r.refine(p, divisor, float32_result)
    return r
