"""softmax and log_softmax from the same one-read partials as logsumexp."""

from __future__ import annotations

from typing import Any

import numpy as np

from array_api_compat import is_dask_namespace

from lsearray._executors import array_api_lse as _generic
from lsearray._delegation import namespace
from lsearray._executors.narrow import narrowed
from lsearray._executors.numpy import Finalized, reduce
from lsearray._validation import Prepared, prepare, prepare_array_api
from lsecore import _kernel
from lsecore._layout import run_view

__all__ = ["log_softmax", "softmax"]

# Below this many elements a single row is not worth splitting between threads.
_ONE_THREAD = 1 << 16


def _shifted(p: Prepared) -> tuple[Finalized, np.ndarray, np.ndarray]:
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


def _fused(p: Prepared, view: tuple[np.ndarray, tuple[int, int, int]], log_mode: bool) -> Any:
    """softmax (or log_softmax) of a prepared NumPy input with a 3-D view: the
    reduction's one read, then one kernel pass that reads ``a`` again and writes the
    result, with no other temporaries the size of ``a``."""
    a3, (n0, n1, n2) = view
    if n2 == 1 and (n0 > 1 or n1 < _ONE_THREAD):  # rows: reduced and written while in cache
        out = np.empty_like(a3)
        _kernel.softmax_rows(a3.reshape(n0, n1), out.reshape(n0, n1), p.tau, log_mode)
        return _result(out if a3 is p.a else out.T, p)
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
    return _result(out if a3 is p.a else out.T, p)


def _array_api(x: Any, axis: Any, temperature: Any, func: str, xp: Any) -> Any:
    """The array-API executor's softmax or log_softmax of ``x`` (dask's own for dask)."""
    if is_dask_namespace(xp):
        from lsearray import dask

        return getattr(dask, func)(x, axis, temperature=temperature)
    p, compute = prepare_array_api(x, None, axis, temperature, func, xp)
    if xp.isdtype(compute, "complex floating"):
        raise TypeError(f"{func} expects real input; got dtype {compute}")
    with np.errstate(all="ignore"):  # NumPy-backed namespaces warn on inf - inf
        z = getattr(_generic, func)(p.a, p.axes, p.tau, xp)
    z = xp.reshape(z, p.shape)
    return _generic.shaped(z, (), True, p.dtype, xp)


def _result(z: np.ndarray, p: Prepared) -> Any:
    """``z`` rounded to the result's dtype (to -inf where a log_softmax overflows it), in
    the input's shape; 0-d as a NumPy scalar."""
    z = narrowed(z, p.dtype).reshape(p.shape)
    return z[()] if z.ndim == 0 else z


def softmax(x: Any, axis: int | tuple[int, ...] | None = None, *, temperature: float = 1.0) -> Any:
    r"""Compute ``exp(x / tau) / sum(exp(x / tau))`` over the given axes.

    Same special values as `scipy.special.softmax`: a slice holding ``nan`` or
    ``+inf``, or only ``-inf``, is all nan.

    Parameters
    ----------
    x : array_like or array API array
        Input array of bool, integer or real floating dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over; by default the whole array.
    temperature : float, optional
        :math:`\tau > 0`; the softmax of ``x / tau``. Small :math:`\tau` tends to
        the (tie-shared) indicator of the max, large :math:`\tau` to uniform.

    Returns
    -------
    s : ndarray or scalar
        Same shape as ``x``, summing to 1 along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import softmax
    >>> softmax(np.log([1.0, 3.0]))
    array([0.25, 0.75])
    >>> softmax([[0.0, 0.0], [1.0, 1.0]], axis=1, temperature=2.0)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    xp = namespace(x)
    if xp is not None:
        return _array_api(x, axis, temperature, "softmax", xp)
    p = prepare(x, None, axis, temperature, "softmax")
    view = _as_3d(p.a, p.axes)
    if view is not None:
        return _fused(p, view, log_mode=False)
    r, z, zl = _shifted(p)
    np.exp(z, out=z)
    hi, lo = (np.expand_dims(v, p.axes) for v in r.total_parts())
    with np.errstate(invalid="ignore", over="ignore"):
        z += z * zl                              # exp(z + zl), to first order
        y = z / hi
        # corrected for the division's rounding and the sum's: z - y hi exactly, less y lo
        z = y + (_remainder(z, y, hi) - y * lo) / hi
    z[~np.broadcast_to(np.expand_dims(np.isfinite(r.m), p.axes), z.shape)] = np.nan
    return _result(z, p)


def log_softmax(
    x: Any, axis: int | tuple[int, ...] | None = None, *, temperature: float = 1.0
) -> Any:
    r"""Compute ``x / tau - logsumexp(x / tau)`` over the given axes, accurately.

    More accurate than ``log(softmax(x))`` where the softmax underflows; same
    special values as `scipy.special.log_softmax`.

    Parameters
    ----------
    x : array_like or array API array
        Input array of bool, integer or real floating dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over; by default the whole array.
    temperature : float, optional
        :math:`\tau > 0`; the log-softmax of ``x / tau``.

    Returns
    -------
    s : ndarray or scalar
        Same shape as ``x``; ``exp`` of it sums to 1 along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import log_softmax
    >>> log_softmax([1000.0, 1.0])
    array([   0., -999.])
    >>> log_softmax(np.log([1.0, 3.0]))
    array([-1.38629436, -0.28768207])
    """
    xp = namespace(x)
    if xp is not None:
        return _array_api(x, axis, temperature, "log_softmax", xp)
    p = prepare(x, None, axis, temperature, "log_softmax")
    view = _as_3d(p.a, p.axes)
    if view is not None:
        return _fused(p, view, log_mode=True)
    r, z, zl = _shifted(p)
    log_total = np.expand_dims(r.log_total, p.axes)
    with np.errstate(invalid="ignore"):
        v = z - log_total                        # z + zl - log S, rounded once
        back = v - z
        err = (z - (v - back)) - (log_total + back)
        err[~np.isfinite(err)] = 0.0
        z = v + (err + zl)
    return _result(z, p)
