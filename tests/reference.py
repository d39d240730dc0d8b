"""Slow, obviously-correct references (plain NumPy and mpmath) that the tests use as oracles."""

import math

import mpmath
import numpy as np

__all__ = [
    "normalize_axes",
    "expected_dtype",
    "slow_logsumexp",
    "slow_logmeanexp",
    "slow_softmax",
    "slow_log_softmax",
    "mp_logsumexp",
    "mp_logmeanexp",
    "ulp_error",
    "MP_DPS",
]

MP_DPS = 60


# --------------------------------------------------------------------------------------------
# Plain NumPy reference (the oracle for layout tests)
# --------------------------------------------------------------------------------------------

def normalize_axes(axis, ndim):
    """Return the reduced axes as a sorted tuple of non-negative ints (None -> all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for ax in axis:
        ax = int(ax)
        if not -ndim <= ax < ndim:
            raise np.exceptions.AxisError(ax, ndim)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError("repeated axis")
    return tuple(sorted(out))


def expected_dtype(a, b=None):
    """Result dtype by scipy's rule: ints/bools become float64, floats promote among themselves."""
    dtypes = [np.asarray(a).dtype] + ([] if b is None else [np.asarray(b).dtype])
    dtypes = [dt if np.issubdtype(dt, np.floating) else np.dtype(np.float64) for dt in dtypes]
    return np.result_type(*dtypes)


def _to_rows(x, axes):
    """Move `axes` to the end and reshape to (kept elements, reduced elements)."""
    kept = [i for i in range(x.ndim) if i not in axes]
    kept_shape = tuple(x.shape[i] for i in kept)
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    k = int(np.prod(kept_shape, dtype=np.int64))
    rows = np.transpose(x, kept + list(axes)).reshape(k, n)
    return rows, kept_shape


def _from_rows(values, kept_shape, axes, keepdims):
    out = np.asarray(values).reshape(kept_shape)
    if keepdims:
        out = np.expand_dims(out, axes)
    return out


def _prepare(a, b):
    a = np.asarray(a).astype(np.float64)
    if b is None:
        b = np.ones_like(a)
    else:
        b = np.asarray(b).astype(np.float64)
        a, b = np.broadcast_arrays(a, b)
    return np.atleast_1d(a), np.atleast_1d(b)


def _lse_rows(a, b, tau):
    """log|sum(b * exp(a / tau))| * tau and its sign, row by row, with scipy's special values.

    a, b: float64 arrays of shape (rows, n). Returns (out, sign), float64 arrays of shape (rows,).
    """
    used = b != 0                                   # b == 0 removes the element, even inf / nan
    any_nan = np.any(used & np.isnan(a), axis=1) | np.any(np.isnan(b), axis=1)
    pos_inf = used & (a == np.inf)
    inf_plus = np.any(pos_inf & (b > 0), axis=1)
    inf_minus = np.any(pos_inf & (b < 0), axis=1)

    # finite part: every used element with finite a (and -inf, which contributes 0)
    fin = np.where(used & np.isfinite(a), a, -np.inf)
    if fin.shape[1] == 0:
        m = np.full(fin.shape[0], -np.inf)
    else:
        m = np.max(fin, axis=1)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(np.isfinite(fin), b * np.exp((fin - shift[:, None]) / tau), 0.0)
    s = np.sum(terms, axis=1)
    with np.errstate(divide="ignore"):
        out = shift + tau * np.log(np.abs(s))
    sign = np.sign(s)
    out = np.where(s == 0, -np.inf, out)            # zero total (also: empty / all -inf)

    # +inf terms dominate: one sign -> +inf with that sign, both signs -> nan
    out = np.where(inf_plus | inf_minus, np.inf, out)
    sign = np.where(inf_plus, 1.0, np.where(inf_minus, -1.0, sign))
    both = inf_plus & inf_minus
    out = np.where(both | any_nan, np.nan, out)
    sign = np.where(both | any_nan, np.nan, sign)
    return out, sign


def slow_logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, temperature=1.0):
    """tau * log(sum(b * exp(a / tau))) in float64, scipy semantics (empty sign is 0).

    Returns float64 ndarrays (0-d for a full reduction); the caller checks dtype separately.
    """
    a, b = _prepare(a, b)
    axes = normalize_axes(axis, a.ndim)
    ra, kept_shape = _to_rows(a, axes)
    rb, _ = _to_rows(b, axes)
    out, sign = _lse_rows(ra, rb, float(temperature))
    if not return_sign:
        out = np.where(sign < 0, np.nan, out)
    out = _from_rows(out, kept_shape, axes, keepdims)
    sign = _from_rows(sign, kept_shape, axes, keepdims)
    return (out, sign) if return_sign else out


def slow_logmeanexp(a, axis=None, b=None, keepdims=False, temperature=1.0):
    """tau * log(sum(b * exp(a/tau)) / sum(b)); unweighted divides by the count. Empty or sum(b)==0 -> nan."""
    weighted = b is not None
    a, b = _prepare(a, b)
    axes = normalize_axes(axis, a.ndim)
    ra, kept_shape = _to_rows(a, axes)
    rb, _ = _to_rows(b, axes)
    tau = float(temperature)
    lse, sign = _lse_rows(ra, rb, tau)
    if weighted:
        denom = np.sum(rb, axis=1)
    else:
        denom = np.full(ra.shape[0], float(ra.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lse - tau * np.log(np.abs(denom))
    total_sign = sign * np.sign(denom)
    out = np.where(sign == 0, -np.inf, out)         # zero numerator, non-zero denominator
    out = np.where(total_sign < 0, np.nan, out)
    out = np.where((denom == 0) | np.isnan(denom) | np.isnan(sign), np.nan, out)
    if ra.shape[1] == 0:
        out = np.full(ra.shape[0], np.nan)
    return _from_rows(out, kept_shape, axes, keepdims)


def _as_float(x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def slow_softmax(x, axis=None, temperature=1.0):
    """exp(y - max y) / sum(exp(y - max y)) with y = x / tau, computed in float64 (scipy's formula)."""
    y = _as_float(x).astype(np.float64) / float(temperature)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(y - np.max(y, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def slow_log_softmax(x, axis=None, temperature=1.0):
    """y - log(sum(exp(y - m))) - m with y = x / tau and m the max (0 where the max is not finite)."""
    y = _as_float(x).astype(np.float64) / float(temperature)
    m = np.max(y, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        tmp = y - m
        return tmp - np.log(np.sum(np.exp(tmp), axis=axis, keepdims=True))


# --------------------------------------------------------------------------------------------
# mpmath reference (exact from the float values) and ulp measurement
# --------------------------------------------------------------------------------------------

def mp_logsumexp(a, b=None, temperature=1.0, dps=MP_DPS):
    """Exact-ish tau*log|sum(b*exp(a/tau))| of a 1-D float array, and the sign of the sum.

    Every float is converted exactly; the sum is done with `dps` decimal digits. Returns
    (value as mpf, sign in {-1, 0, 1}, condition number sum|b e^(a/tau)| / |sum b e^(a/tau)|).
    Only for finite a and b.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.ones_like(a) if b is None else np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape).ravel()
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    with mpmath.workdps(dps):
        tau = mpmath.mpf(float(temperature))
        shift = mpmath.mpf(float(np.max(a)))          # exact shift; only to keep exponents moderate
        terms = [mpmath.mpf(float(bi)) * mpmath.exp((mpmath.mpf(float(ai)) - shift) / tau)
                 for ai, bi in zip(a.tolist(), b.tolist()) if bi != 0]
        total = mpmath.fsum(terms)
        abs_total = mpmath.fsum([abs(t) for t in terms])
        if total == 0:
            return mpmath.mpf("-inf"), 0, mpmath.inf
        value = shift + tau * mpmath.log(abs(total))
        cond = abs_total / abs(total)
        return value, (1 if total > 0 else -1), cond


def mp_logmeanexp(a, b=None, temperature=1.0, dps=MP_DPS):
    """Exact-ish tau*log(sum(b*exp(a/tau)) / sum(b)) of a 1-D finite float array (positive result argument)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    value, sign, _ = mp_logsumexp(a, b, temperature, dps)
    with mpmath.workdps(dps):
        if b is None:
            denom = mpmath.mpf(a.size)
        else:
            bb = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape).ravel()
            denom = mpmath.fsum([mpmath.mpf(float(x)) for x in bb.tolist()])
        assert sign * denom > 0
        return value - mpmath.mpf(float(temperature)) * mpmath.log(abs(denom))


def ulp_error(computed, exact, dtype):
    """|computed - exact| / spacing(exact rounded to dtype), as a Python float.

    `exact` is an mpmath number (or float). If both are the same infinity the error is 0;
    any other non-finite combination is reported as inf.
    """
    dtype = np.dtype(dtype)
    computed = float(computed)
    if isinstance(exact, mpmath.mpf) and not mpmath.isfinite(exact):
        exact_f = float(exact)
        return 0.0 if computed == exact_f else math.inf
    if not math.isfinite(computed):
        return math.inf
    with mpmath.workdps(MP_DPS):
        exact_m = mpmath.mpf(exact)
        rounded = dtype.type(float(exact_m))
        spacing = float(np.spacing(np.abs(rounded)))
        return float(abs(mpmath.mpf(computed) - exact_m) / mpmath.mpf(spacing))
