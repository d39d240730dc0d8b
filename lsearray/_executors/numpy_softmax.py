"""softmax and log_softmax of NumPy arrays on the lsecore kernel, from logsumexp's one-read partials."""

from __future__ import annotations

from typing import Any

import numpy as np

from lsearray._executors.narrow import narrowed
from lsearray._executors.numpy_reduce import Finalized, reduce
from lsearray._validation import Prepared
from lsecore import _kernel
from lsecore._layout import run_view

__all__ = ["fused_rows", "log_softmax", "softmax"]


# Below this many elements a single row is not worth splitting between threads.
_ONE_THREAD = 1 << 16


def _reduced_and_shifted(p: Prepared) -> tuple[Finalized, np.ndarray, np.ndarray]:
    """The reduction of ``p`` and ``(a - m) / tau`` in float64 as ``z + zl``, ``zl`` the
    rounding error of ``a - m`` (divided by tau), kept axes expanded."""
    r = reduce(p)
    m = np.expand_dims(r.m, p.axes)
    with np.errstate(invalid="ignore"):
        z = np.subtract(p.a, m, dtype=np.float64)
        back = z - p.a                           # Knuth's two-sum of a and -m
        zl = (p.a - (z - back)) - (m + back)
        zl[~np.isfinite(zl)] = 0.0
    if p.tau != 1.0:
        q = z / p.tau
        with np.errstate(invalid="ignore", over="ignore"):
            zl += _remainder(z, q, p.tau)        # z - q tau, exactly
            zl /= p.tau
        zl[~np.isfinite(zl)] = 0.0
        z = q
    return r, z, zl


def _remainder(x: np.ndarray, q: np.ndarray, tau: Any) -> np.ndarray:
    """``x - q tau`` exactly for ``q`` the rounded quotient ``x / tau`` (``tau`` a float
    or an array broadcast against ``x``): Dekker's product of ``q`` and ``tau``
    (Veltkamp's splits), whose rounding error the difference keeps."""
    def split(v):
        big = v * 134217729.0                    # 2^27 + 1
        hi = big - (big - v)
        return hi, v - hi

    qh, ql = split(q)
    th, tl = split(np.asarray(tau, dtype=np.float64))
    prod = q * tau
    err = ((qh * th - prod) + qh * tl + ql * th) + ql * tl
    return (x - prod) - err


def _as_3d(a: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int]] | None:
    """``a`` as a C-contiguous array whose reduced axes are neighbours (``a`` itself, or
    its transpose for Fortran order) and the 3-D shape (before, reduced, after) of the
    run; None for other layouts."""
    if not a.flags.c_contiguous and a.flags.f_contiguous:
        a, axes = a.T, tuple(a.ndim - 1 - k for k in axes)
    if not (a.flags.c_contiguous and axes and max(axes) - min(axes) + 1 == len(axes)):
        return None
    return a, run_view(a.shape, axes)


def fused_rows(view: tuple[int, int, int]) -> bool:
    """Whether `_fused` takes ``softmax_rows`` for the 3-D view (before, reduced, after)
    of its input."""
    n0, n1, n2 = view
    return n2 == 1 and (n0 > 1 or n1 < _ONE_THREAD)


def _fused(p: Prepared, view: tuple[np.ndarray, tuple[int, int, int]], log_mode: bool) -> Any:
    """softmax (or log_softmax) of a prepared NumPy input with a 3-D view: the
    reduction's one read, then one kernel pass that reads ``a`` again and writes the
    result, with no other temporaries the size of ``a``."""
    a3, (n0, n1, n2) = view
    fill = -np.inf if log_mode else 0.0
    if fused_rows((n0, n1, n2)):  # rows: reduced and written while in cache
        out = np.empty_like(a3)
        if p.where is None:
            _kernel.softmax_rows(a3.reshape(n0, n1), out.reshape(n0, n1), p.tau, log_mode)
        else:
            keep = np.broadcast_to(p.where, p.a.shape)
            keep = np.ascontiguousarray((keep if a3 is p.a else keep.T).reshape(n0, n1))
            _kernel.softmax_rows(a3.reshape(n0, n1), out.reshape(n0, n1), p.tau, log_mode, keep)
            # left-out elements are 0 (-inf) already
            out = out if a3 is p.a else out.T
            z = narrowed(out, p.dtype).reshape(p.shape)
            return z[()] if z.ndim == 0 else z
        return _result(out if a3 is p.a else out.T, p, fill)
    r = reduce(p, sign=False, log_total=log_mode)
    m, (s, s_low) = r.m, (r.log_total, None) if log_mode else r.total_parts()
    if a3 is not p.a:  # the transpose of a Fortran-ordered input: so are the partials
        m, s = m.T, s.T
        s_low = None if s_low is None else s_low.T

    def flat(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, np.float64).reshape(n0, n2)

    out = np.empty_like(a3)
    _kernel.normalize(a3.reshape(n0, n1, n2), out.reshape(n0, n1, n2), flat(m), flat(s), p.tau,
                      log_mode, None if s_low is None else flat(s_low))
    return _result(out if a3 is p.a else out.T, p, fill)


def _result(z: np.ndarray, p: Prepared, fill: float = 0.0) -> Any:
    """``z`` rounded to the result's dtype (to -inf where a log_softmax overflows it), in
    the input's shape, ``fill`` where ``p.where`` leaves elements out; 0-d as a NumPy
    scalar."""
    z = narrowed(z, p.dtype).reshape(p.shape)
    if p.where is not None:  # the left-out elements' values were computed, then dropped here
        np.copyto(z, fill, where=~p.where.reshape(p.shape))
    return z[()] if z.ndim == 0 else z


def softmax(p: Prepared) -> Any:
    """The softmax of a prepared NumPy input: fused on the kernel where the reduced axes
    are neighbours in memory, else from the reduction's partials, its division corrected
    for the roundings of the quotient and of the sum."""
    view = _as_3d(p.a, p.axes)
    if view is not None:
        return _fused(p, view, log_mode=False)
    r, z, zl = _reduced_and_shifted(p)
    if p.where is not None:  # left-out elements (any value) add nothing, and raise no overflow
        np.copyto(z, -np.inf, where=~p.where)
    np.exp(z, out=z)
    hi, lo = (np.expand_dims(v, p.axes) for v in r.total_parts())
    with np.errstate(invalid="ignore", over="ignore"):
        z += z * zl                              # exp(z + zl), to first order
        y = z / hi
        # corrected for the division's rounding and the sum's: z - y hi exactly, less y lo
        z = y + (_remainder(z, y, hi) - y * lo) / hi
    z[~np.broadcast_to(np.expand_dims(np.isfinite(r.m), p.axes), z.shape)] = np.nan
    return _result(z, p)


def log_softmax(p: Prepared) -> Any:
    """The log_softmax of a prepared NumPy input (as `softmax`): ``z - log S`` with the
    roundings of ``z`` and of the difference added back."""
    view = _as_3d(p.a, p.axes)
    if view is not None:
        return _fused(p, view, log_mode=True)
    r, z, zl = _reduced_and_shifted(p)
    log_total = np.expand_dims(r.log_total, p.axes)
    with np.errstate(invalid="ignore"):
        v = z - log_total                        # z + zl - log S, rounded once
        back = v - z
        err = (z - (v - back)) - (log_total + back)
        err[~np.isfinite(err)] = 0.0
        z = v + (err + zl)
    return _result(z, p, -np.inf)
