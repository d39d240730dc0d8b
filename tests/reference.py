"""Every slow oracle of the tests (plain and long-double NumPy, mpmath, scipy, brute force, closed forms) and tolerances()."""

import itertools
import math
import warnings
from collections import defaultdict

import mpmath
import numpy as np
import scipy.special

__all__ = [
    "tolerances",
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
    "MP_INF",
    "MP_NAN",
    "MpLse",
    "mp_lse_slice",
    "mp_lme_slice",
    "mp_softmax_slice",
    "mp_logcumsumexp_slice",
    "mp_logmatmulexp",
    "LD",
    "ld_lse_rows",
    "ld_lse",
    "slow_softmax_rows",
    "slow_log_softmax_rows",
    "ld_normalize",
    "slow_logaddexp",
    "mp_logaddexp",
    "slow_logdiffexp",
    "slow_log1mexp",
    "mp_logdiffexp",
    "mp_log1mexp",
    "slow_logcumsumexp",
    "mp_logcumsumexp",
    "prefix_softmax_jacobian",
    "slow_logmatmulexp",
    "logmatmulexp_grads",
    "mp_lse_exact",
    "mp_softmax_terms",
    "mp_log",
    "hmm_path_enumeration",
    "kalman_model_moments",
    "mp_ising_chain",
    "mp_cross_entropy",
    "concrete_cdf",
    "gumbel_softmax_grad",
    "weak",
    "ref_reduce",
    "ref_softmax",
    "numpy_gumbel_noise",
]

MP_DPS = 60


def tolerances(dtype):
    """rtol/atol for comparing a result of `dtype` (a name such as "bfloat16", or a NumPy dtype)
    with a float64 reference: about four roundings of the dtype, and an atol for results near 0."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name == "bfloat16":
        return dict(rtol=2e-2, atol=2e-2)
    if name == "float16":
        return dict(rtol=2e-3, atol=2e-3)
    if name in ("float32", "complex64"):
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-12, atol=1e-13)


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
    if y.size == 0:                                 # nothing to normalize (np.max has no identity)
        return y
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(y - np.max(y, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def slow_log_softmax(x, axis=None, temperature=1.0):
    """y - log(sum(exp(y - m))) - m with y = x / tau and m the max (0 where the max is not finite)."""
    y = _as_float(x).astype(np.float64) / float(temperature)
    if y.size == 0:                                 # nothing to normalize (np.max has no identity)
        return y
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


# --------------------------------------------------------------------------------------------
# mpmath references with every special value (the fuzz test's oracles, tests/test_fuzz.py)
# --------------------------------------------------------------------------------------------
#
# One slice at a time, from the exact values of the (rounded) inputs: the results are mpf
# numbers, mpf('nan') / mpf('+inf') / mpf('-inf') for the special values, which follow the
# semantics contract: b == 0 removes an element (even an inf or nan one); a = +inf with b != 0
# is the term sign(b) * inf; b = +-inf with finite a is +-inf; b = +-inf with a = -inf is nan
# (0 * inf); infinite terms add as IEEE (one sign -> that infinity, both -> nan); any other nan
# gives nan. The finite terms are summed with MP_DPS digits.

MP_NAN = mpmath.mpf("nan")
MP_INF = mpmath.mpf("inf")


class MpLse(tuple):
    """(value, sign, kappa, signed, m, tail) of tau*log|sum b e^(a/tau)| over one slice.

    value: mpf (nan, +inf, -inf for an empty or zero sum); sign: +1.0, -1.0, 0.0 or nan;
    kappa: the condition number sum|t| / |sum t| of the finite terms (1 without negative
    weights, inf for a zero sum); signed: whether a negative weight took part;
    m: the largest finite a that took part (a float; nan when none did);
    tail: sum |t| (tau + |m| + 3 |a - m|) / |sum t| over the terms t below the max (a
    float; 0 without them): the absolute error that rounding those terms and their
    arguments to float64 can leave in the result (the streaming accumulator's bound).
    """

    __slots__ = ()

    def __new__(cls, value, sign, kappa, signed, m, tail=0.0):
        return tuple.__new__(cls, (value, sign, kappa, signed, m, tail))

    value = property(lambda self: self[0])
    sign = property(lambda self: self[1])
    kappa = property(lambda self: self[2])
    signed = property(lambda self: self[3])
    m = property(lambda self: self[4])
    tail = property(lambda self: self[5])


def _lse_terms(a, b):
    """Classify one slice's elements by the contract: (status, finite, neg_inf_weights, signed)
    with status 'nan', '+inf', '-inf' (infinite terms of that sign) or 'finite'; finite the
    (a, b) pairs of finite a and nonzero finite b; neg_inf_weights the weights of the elements
    with a = -inf (their terms are 0); signed whether a negative weight took part."""
    nan = pos_inf = neg_inf = signed = False
    finite, dropped = [], []
    for ai, bi in zip(a.tolist(), b.tolist()):
        ai, bi = float(ai), float(bi)
        if bi == 0:
            continue
        if math.isnan(ai) or math.isnan(bi):
            nan = True
        elif ai == math.inf or math.isinf(bi):
            if ai == -math.inf:          # 0 * inf
                nan = True
            elif bi > 0:
                pos_inf = True
            else:
                neg_inf = True
        elif ai == -math.inf:
            dropped.append(bi)
        else:
            signed |= bi < 0
            finite.append((ai, bi))
    if nan or (pos_inf and neg_inf):
        return "nan", finite, dropped, signed
    if pos_inf or neg_inf:
        return ("+inf" if pos_inf else "-inf"), finite, dropped, signed
    return "finite", finite, dropped, signed


# The reference keeps MP_DPS significant digits in its result: where m + tau*log(...) cancels
# (a result much smaller than the max or the temperature), it is computed again with more digits.
_MAX_DPS = 2000


def _adaptive(compute, dps):
    """compute(dps) -> (value, scale); again with more digits while |value| / scale is too small."""
    while True:
        with mpmath.workdps(dps):
            value, scale = compute(dps)
            if scale == 0 or not mpmath.isfinite(value):
                return value
            loss = MP_INF if value == 0 else mpmath.log10(scale / abs(value))
            if loss <= dps - MP_DPS or dps >= _MAX_DPS:
                return +value
        dps = min(_MAX_DPS, int(min(loss, _MAX_DPS)) + MP_DPS + 10)


def mp_lse_slice(a, b=None, temperature=1.0, dps=MP_DPS):
    """The exact log-sum-exp of one slice (1-D float arrays a and b), every special value included."""
    a = np.asarray(a).ravel()
    b = np.ones(a.shape) if b is None else np.broadcast_to(np.asarray(b), a.shape).ravel()
    tau = float(temperature)
    status, finite, _, signed = _lse_terms(a, b)
    m = max((ai for ai, _ in finite), default=math.nan)
    if status == "nan":
        return MpLse(MP_NAN, math.nan, MP_INF, signed, m)
    if status != "finite":
        return MpLse(MP_INF, 1.0 if status == "+inf" else -1.0, mpmath.mpf(1), signed, m)
    if not finite:
        return MpLse(-MP_INF, 0.0, mpmath.mpf(1), signed, m)
    with mpmath.workdps(dps):
        mt, mm = mpmath.mpf(tau), mpmath.mpf(m)
        terms = [mpmath.mpf(bi) * mpmath.exp((mpmath.mpf(ai) - mm) / mt) for ai, bi in finite]
        total = mpmath.fsum(terms)
        if total == 0:
            return MpLse(-MP_INF, 0.0, MP_INF, signed, m)
        kappa = mpmath.fsum([abs(t) for t in terms]) / abs(total)
        sign = 1.0 if total > 0 else -1.0
        tail = float(mpmath.fsum([abs(t) * (mt + abs(mm) + 3 * abs(mpmath.mpf(ai) - mm))
                                  for t, (ai, _) in zip(terms, finite) if ai != m]) / abs(total))

    def compute(d):
        mt, mm = mpmath.mpf(tau), mpmath.mpf(m)
        terms = [mpmath.mpf(bi) * mpmath.exp((mpmath.mpf(ai) - mm) / mt) for ai, bi in finite]
        near_one = mpmath.fsum(terms + [-sign])              # S - sign(S), exact where S is near +-1
        if abs(near_one) < 0.5:
            log_total = mpmath.log1p(near_one * sign)
        else:
            log_total = mpmath.log(abs(mpmath.fsum(terms)))
        return mm + mt * log_total, max(abs(mm), abs(mt * log_total))

    return MpLse(_adaptive(compute, dps), sign, +kappa, signed, m, tail)


def mp_lme_slice(a, b=None, temperature=1.0, dps=MP_DPS):
    """The exact log-mean-exp of one slice: (value, kappa of the weights' sum) with the semantics of
    `lsearray.logmeanexp`: the log-sum-exp minus tau*log(n) (n the slice's length) or
    tau*log(sum b); nan for an empty slice, a zero or nan weight sum, or a sum whose sign differs
    from the weights' sum; -inf for a zero sum; +inf for an infinite one of the weights' sign.
    Weights must be finite or nan (the mean of infinite weights is not defined here). The value
    is m + tau*log1p(sum b*expm1((a - m)/tau) / sum b), with more digits where it cancels."""
    a = np.asarray(a).ravel()
    lse = mp_lse_slice(a, b, temperature, dps)
    if a.size == 0:
        return MP_NAN, mpmath.mpf(1)
    bb = np.ones(a.shape) if b is None else np.broadcast_to(np.asarray(b), a.shape).ravel().astype(np.float64)
    assert not np.any(np.isinf(bb)), "mp_lme_slice: infinite weights"
    if np.any(np.isnan(bb)):
        return MP_NAN, mpmath.mpf(1)
    with mpmath.workdps(dps):
        parts = [mpmath.mpf(float(x)) for x in bb.tolist()]
        denom = mpmath.fsum(parts)
        kappa_d = mpmath.fsum([abs(x) for x in parts]) / abs(denom) if denom != 0 else MP_INF
    if denom == 0 or math.isnan(lse.sign):
        return MP_NAN, kappa_d
    if lse.sign == 0:
        return -MP_INF, kappa_d
    if lse.sign * (1 if denom > 0 else -1) < 0:
        return MP_NAN, kappa_d
    if lse.value == MP_INF:
        return MP_INF, kappa_d
    _, finite, dropped, _ = _lse_terms(a, bb)
    tau, m = float(temperature), lse.m

    def compute(d):
        mt, mm = mpmath.mpf(tau), mpmath.mpf(m)
        denom = mpmath.fsum([mpmath.mpf(float(x)) for x in bb.tolist()])
        z = [(mpmath.mpf(bi), (mpmath.mpf(ai) - mm) / mt) for ai, bi in finite]
        excess = mpmath.fsum([bi * mpmath.expm1(zi) for bi, zi in z] + [-mpmath.mpf(bi) for bi in dropped])
        if abs(excess / denom) < 0.5:          # the mean is near exp(m/tau): keep its difference
            log_ratio = mpmath.log1p(excess / denom)
        else:
            log_ratio = mpmath.log(mpmath.fsum([bi * mpmath.exp(zi) for bi, zi in z]) / denom)
        return mm + mt * log_ratio, max(abs(mm), abs(mt * log_ratio))

    return _adaptive(compute, dps), kappa_d


def _softmax_specials(a):
    """None for a slice of finite and -inf values, else scipy's all-nan answer ('nan') or, for
    log_softmax only, the +inf case ('inf': nan at the +inf elements, -inf elsewhere)."""
    if np.any(np.isnan(a)):
        return "nan"
    if np.any(a == np.inf):
        return "inf"
    if a.size and np.all(a == -np.inf):
        return "nan"
    return None


def mp_softmax_slice(a, temperature=1.0, log=False, dps=MP_DPS):
    """The exact softmax (or log_softmax) of one slice, as a list of mpf, with scipy's special values:
    a slice holding nan or only -inf is all nan; one holding +inf is all nan for softmax, and nan at
    the +inf elements and -inf elsewhere for log_softmax; -inf elements give 0 (log: -inf)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    special = _softmax_specials(a)
    if special == "nan" or (special == "inf" and not log):
        return [MP_NAN] * a.size
    if special == "inf":
        return [MP_NAN if x == np.inf else -MP_INF for x in a.tolist()]
    with mpmath.workdps(dps):
        tau = mpmath.mpf(float(temperature))
        m = mpmath.mpf(float(np.max(a))) if a.size else mpmath.mpf(0)
        z = [(mpmath.mpf(x) - m) / tau if x != -np.inf else None for x in a.tolist()]
        total = mpmath.fsum([mpmath.exp(v) for v in z if v is not None])
        if log:
            lt = mpmath.log(total) if a.size else mpmath.mpf(0)
            return [-MP_INF if v is None else v - lt for v in z]
        return [mpmath.mpf(0) if v is None else mpmath.exp(v) / total for v in z]


def mp_logcumsumexp_slice(a, temperature=1.0, dps=MP_DPS):
    """The exact running log-sum-exp of one 1-D slice: a list of MpLse, one per prefix."""
    a = np.asarray(a).ravel()
    return [mp_lse_slice(a[:k + 1], None, temperature, dps) for k in range(a.size)]


def mp_logmatmulexp(a, b, dps=MP_DPS):
    """The exact log(exp(a) @ exp(b)) of 2-D float arrays a (n, k) and b (k, m): an (n, m) object
    array of mpf. a_ik + b_kj is exact; +inf + -inf is nan; then the slice rules of mp_lse_slice."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n, k = a.shape
    m = b.shape[1]
    out = np.empty((n, m), dtype=object)
    with mpmath.workdps(dps):
        for i in range(n):
            for j in range(m):
                fin = []
                nan = inf = False
                for t in range(k):
                    x, y = float(a[i, t]), float(b[t, j])
                    if math.isnan(x) or math.isnan(y) or {x, y} == {math.inf, -math.inf}:
                        nan = True
                    elif math.inf in (x, y):
                        inf = True
                    elif -math.inf not in (x, y):
                        fin.append(mpmath.mpf(x) + mpmath.mpf(y))
                if nan:
                    out[i, j] = MP_NAN
                elif inf:
                    out[i, j] = MP_INF
                elif not fin:
                    out[i, j] = -MP_INF
                else:
                    top = max(fin)
                    out[i, j] = top + mpmath.log(mpmath.fsum([mpmath.exp(v - top) for v in fin]))
    return out


# --------------------------------------------------------------------------------------------
# Long-double references (the kernel path tests, tests/test_kernel_*.py)
# --------------------------------------------------------------------------------------------
#
# The oracle for the many-slice tests is a long-double NumPy computation that keeps the sum of
# the non-maximal terms apart from the max's weight (so that log1p(t) of a tiny t is exact to
# long double's 64 bits); mpmath (mp_logsumexp) checks that oracle and the closed forms.

LD = np.longdouble


def ld_lse_rows(a, b=None, tau=1.0):
    """tau * log(sum_j b_j exp(a_j / tau)) of each row of the 2-D `a`, in long double.

    b >= 0 (None: ones), broadcast against a; b == 0 removes an element. Special values as
    scipy: nan -> nan, +inf -> +inf, empty or all -inf -> -inf. The finite value is
    m + tau (log w + log1p(t / w)) with w the weight of the maximal terms and t the sum of
    the others, so a tiny t is not lost against 1.
    """
    a = np.asarray(a, dtype=np.float64)
    A = a.astype(LD)
    if b is None:
        B = np.ones_like(A)
    else:
        B = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape).astype(LD)
        assert not np.any(B < 0)
    used = B != 0
    nan_rows = np.any(used & np.isnan(A), axis=1) | np.any(np.isnan(B), axis=1)
    inf_rows = np.any(used & (A == np.inf), axis=1)
    fin = np.where(used & np.isfinite(A), A, LD(-np.inf))
    m = fin.max(axis=1) if fin.shape[1] else np.full(fin.shape[0], LD(-np.inf))
    ok = np.isfinite(m)
    ms = np.where(ok, m, LD(0))
    top = (fin == ms[:, None]) & ok[:, None]
    w = np.where(top, B, LD(0)).sum(axis=1)
    with np.errstate(all="ignore"):
        terms = np.where(~top & np.isfinite(fin), B * np.exp((fin - ms[:, None]) / LD(tau)), LD(0))
        t = terms.sum(axis=1)
        out = ms + LD(tau) * (np.log(w) + np.log1p(t / w))
    out = np.where(ok, out, LD(-np.inf))
    out = np.where(inf_rows, LD(np.inf), out)
    return np.where(nan_rows, LD(np.nan), out)


def ld_lse(a, axis, b=None, tau=1.0):
    """`ld_lse_rows` of a 2-D array over axis 0 or 1."""
    a = np.asarray(a, dtype=np.float64)
    if b is not None:
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    if axis == 0:
        return ld_lse_rows(a.T, None if b is None else b.T, tau)
    return ld_lse_rows(a, b, tau)


def slow_softmax_rows(a):
    """Row softmax exp(a - lse(a)) in long double; nan for rows whose log-sum-exp is not
    finite (a +inf, nan, or all -inf: scipy's rule)."""
    A = np.asarray(a, dtype=np.float64).astype(LD)
    lse = ld_lse_rows(a)[:, None]
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(lse), np.exp(A - lse), LD(np.nan))


def slow_log_softmax_rows(a):
    """Row log_softmax a - lse(a) in long double, the lse with its log1p kept exact (the
    max's own entry is -log1p(t) for a tiny t)."""
    A = np.asarray(a, dtype=np.float64).astype(LD)
    with np.errstate(all="ignore"):
        return A - ld_lse_rows(a)[:, None]


def ld_normalize(a, m, s, tau, log_mode):
    """The expected output in long double from z = (a - m) / tau in long double (the
    kernel carries the quotient exactly), and z in float64 for the rounding allowance."""
    with np.errstate(all="ignore"):
        zl = (a.astype(LD) - m[:, None, :].astype(LD)) / LD(tau)
        if log_mode:
            ref = zl - s[:, None, :].astype(LD)
        else:
            ref = np.exp(zl) / s[:, None, :].astype(LD)
            ref = np.where(np.isfinite(m)[:, None, :], ref, LD(np.nan))
    return ref, zl.astype(np.float64)


# --------------------------------------------------------------------------------------------
# logaddexp, logcumsumexp and logmatmulexp: NumPy's ufunc in long double, scipy, mpmath
# --------------------------------------------------------------------------------------------

def slow_logaddexp(x1, x2, temperature=1.0):
    """tau * logaddexp(x1 / tau, x2 / tau) by NumPy's ufunc in long double, as float64."""
    tau = np.longdouble(temperature)
    x1 = np.asarray(x1).astype(np.longdouble)
    x2 = np.asarray(x2).astype(np.longdouble)
    with np.errstate(invalid="ignore"):
        return (tau * np.logaddexp(x1 / tau, x2 / tau)).astype(np.float64)


def mp_logaddexp(x1, x2, temperature=1.0):
    """The exact value for the floats given (to 80 digits): max + tau log1p(exp(-|x1 - x2| / tau))."""
    with mpmath.workdps(80):
        tau, x1, x2 = (mpmath.mpf(float(v)) for v in (temperature, x1, x2))
        return max(x1, x2) + tau * mpmath.log1p(mpmath.exp(-abs(x1 - x2) / tau))


def _ld_log1mexp(z):
    """log(1 - exp(z)) in long double by Maechler's switch, nan above 0 (z long double)."""
    with np.errstate(all="ignore"):
        near = z > -np.log(np.longdouble(2))
        return np.where(near, np.log(-np.expm1(np.where(near, z, -1))),
                        np.log1p(-np.exp(np.where(near, -1, z))))


def slow_log1mexp(x):
    """log(1 - exp(x)) by NumPy in long double, as float64: -inf at 0, 0 at -inf, nan above 0."""
    return _ld_log1mexp(np.asarray(x).astype(np.longdouble)).astype(np.float64)


def slow_logdiffexp(x1, x2, temperature=1.0, return_sign=False):
    """tau log(exp(x1 / tau) - exp(x2 / tau)) by NumPy in long double, as float64, with the
    special values written out case by case: nan for x1 < x2 (or, with return_sign, the log of
    the absolute difference and its sign), -inf for equal arguments but nan for two +inf, x1
    for x2 = -inf."""
    tau = np.longdouble(temperature)
    x1, x2 = np.broadcast_arrays(np.asarray(x1).astype(np.longdouble), np.asarray(x2).astype(np.longdouble))
    hi, lo = (np.maximum(x1, x2), np.minimum(x1, x2)) if return_sign else (x1, x2)
    with np.errstate(all="ignore"):
        out = hi + tau * _ld_log1mexp((lo - hi) / tau)
        out = np.where(lo == -np.inf, hi, out)
        out = np.where(hi == lo, np.where(hi == np.inf, np.nan, -np.inf), out)
        out = np.where(hi == np.inf, np.where(lo == np.inf, np.nan, np.inf), out)
        out = np.where(np.isnan(x1) | np.isnan(x2) | (hi < lo), np.nan, out)
    out = out.astype(np.float64)
    if not return_sign:
        return out
    sign = np.where(x1 > x2, 1.0, np.where(x1 < x2, -1.0, 0.0))
    return out, np.where(np.isnan(out), np.nan, sign)


def mp_log1mexp(x):
    """The exact log(1 - exp(x)) of the float x (to 80 digits; mpmath's log1p and expm1 keep the
    bits of a tiny exp(x) and of 1 - exp(x) near 0)."""
    with mpmath.workdps(80):
        x = mpmath.mpf(float(x))
        if x > 0 or mpmath.isnan(x):
            return MP_NAN
        if x == 0:
            return -MP_INF
        return mpmath.log(-mpmath.expm1(x)) if x > -0.5 else mpmath.log1p(-mpmath.exp(x))


def mp_logdiffexp(x1, x2, temperature=1.0):
    """The exact tau log(exp(x1 / tau) - exp(x2 / tau)) of the floats given, x1 > x2 finite
    (to 80 digits): x1 + tau log1mexp((x2 - x1) / tau), the difference exact."""
    with mpmath.workdps(80):
        tau, x1, x2 = (mpmath.mpf(float(v)) for v in (temperature, x1, x2))
        z = (x2 - x1) / tau
        term = mpmath.log(-mpmath.expm1(z)) if z > -0.5 else mpmath.log1p(-mpmath.exp(z))
        return x1 + tau * term


def slow_logcumsumexp(a, axis=None, temperature=1.0, reverse=False, exclusive=False):
    """tau * logaddexp.accumulate(a / tau) by NumPy's ufunc in long double, as float64; axis=None
    scans a flattened in C order, 0-d input is 1-d (as numpy.cumsum). The data is rearranged
    before the scan (tf.math.cumulative_logsumexp's definitions): reverse scans a reversed along
    the axis and reverses the result; exclusive scans a shifted by one, -inf (the empty sum)
    entering first and a's last element never."""
    a = np.asarray(a).astype(np.longdouble)
    if axis is None or a.ndim == 0:
        a, axis = a.reshape(-1), 0
    axis = axis % a.ndim
    if reverse:
        a = np.flip(a, axis)
    if exclusive and a.shape[axis]:
        first = np.full_like(np.take(a, [0], axis=axis), -np.inf)
        a = np.concatenate([first, np.take(a, np.arange(a.shape[axis] - 1), axis=axis)], axis=axis)
    tau = np.longdouble(temperature)
    with np.errstate(invalid="ignore"):
        out = (tau * np.logaddexp.accumulate(a / tau, axis=axis)).astype(np.float64)
    return np.flip(out, axis) if reverse else out


def mp_logcumsumexp(a, temperature=1.0):
    """The exact running log-sum-exp of the floats of 1-D finite ``a``, to 60 digits."""
    with mpmath.workdps(60):
        tau = mpmath.mpf(float(temperature))
        shift = mpmath.mpf(float(np.max(a)))
        total, out = mpmath.mpf(0), []
        for x in np.asarray(a, dtype=np.float64).tolist():
            total += mpmath.exp((mpmath.mpf(x) - shift) / tau)
            out.append(shift + tau * mpmath.log(total))
        return out


def prefix_softmax_jacobian(a, temperature=1.0):
    """d logcumsumexp(a)[i] / d a[j]: the softmax of the prefix a[:i + 1] at j, 0 for j > i."""
    n = a.size
    jac = np.zeros((n, n))
    for i in range(n):
        z = a[: i + 1] / temperature
        e = np.exp(z - z.max())
        jac[i, : i + 1] = e / e.sum()
    return jac


def slow_logmatmulexp(a, b):
    """The definition, in float64, elementwise: logsumexp over k of the (.., n, k, m) sums."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    shape = np.matmul(np.ones(a.shape), np.ones(b.shape)).shape
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        z = a2[..., :, :, None] + b2[..., None, :, :]
        if z.shape[-2] == 0:
            return np.full(shape, -np.inf)
        return scipy.special.logsumexp(z, axis=-2).reshape(shape)


def logmatmulexp_grads(a, b, g):
    """Closed-form gradients of sum(g * out) for 2-D a, b: softmax over k of a_ik + b_kj."""
    with np.errstate(all="ignore"):
        z = a[:, :, None] + b[None, :, :]
        w = np.nan_to_num(np.exp(z - slow_logmatmulexp(a, b)[:, None, :]))  # all -inf slices: weight 0
    return np.einsum("ij,ikj->ik", g, w), np.einsum("ij,ikj->kj", g, w)


# --------------------------------------------------------------------------------------------
# Unshifted mpmath sums, the samplers' closed forms and the recipes' brute force
# --------------------------------------------------------------------------------------------

def mp_lse_exact(a, b=None, tau=1.0, mean=False, dps=80):
    """tau log(sum b exp(a / tau)) (over the count or sum(b) for a mean) of the floats of 1-D a
    with `dps` digits, unshifted: for finite a whose weighted sum is positive."""
    with mpmath.workdps(dps):
        a = [mpmath.mpf(float(x)) for x in np.ravel(a)]
        b = [mpmath.mpf(1)] * len(a) if b is None else [mpmath.mpf(float(x)) for x in np.ravel(b)]
        s = mpmath.fsum(bi * mpmath.exp(ai / mpmath.mpf(tau)) for ai, bi in zip(a, b) if bi != 0)
        if mean:
            s /= mpmath.fsum(b)
        return mpmath.mpf(tau) * mpmath.log(s)


def mp_softmax_terms(x, tau, dps=80):
    """The softmax of the finite floats of 1-D x and its log, as lists of mpf (`dps` digits, unshifted)."""
    with mpmath.workdps(dps):
        terms = [mpmath.exp(mpmath.mpf(float(v)) / mpmath.mpf(tau)) for v in x]
        total = mpmath.fsum(terms)
        return [t / total for t in terms], [mpmath.log(t / total) for t in terms]


def mp_log(x):
    """log of an mpmath (or exact) value, rounded to float."""
    return float(mpmath.log(x))


def hmm_path_enumeration(pi, A, B, obs):
    """An HMM's likelihood of `obs` (math.fsum over every path, in probability space) and its
    posterior marginals (T, K), by brute force."""
    K, T = len(pi), len(obs)
    probs, marginals = [], np.zeros((T, K))
    for path in itertools.product(range(K), repeat=T):
        p = pi[path[0]] * B[path[0], obs[0]]
        for t in range(1, T):
            p *= A[path[t - 1], path[t]] * B[path[t], obs[t]]
        probs.append(p)
        marginals[np.arange(T), path] += p
    total = math.fsum(probs)
    return total, marginals / total


def kalman_model_moments(pf, T):
    """Covariance of (x_1..x_T) and of (y_1..y_T) under the linear-Gaussian model of `pf` (its PHI,
    P0, Q and R), built from its definition."""
    cov_x = np.empty((T, T))
    var = pf.P0
    variances = []
    for _ in range(T):
        var = pf.PHI**2 * var + pf.Q
        variances.append(var)
    for s in range(T):
        for t in range(T):
            cov_x[s, t] = pf.PHI ** abs(t - s) * variances[min(s, t)]
    return cov_x, cov_x + pf.R * np.eye(T)


def mp_ising_chain(n, J, h, kT):
    """log Z and magnetization per spin of a ring of n spins, by enumerating all 2**n states in mpmath."""
    with mpmath.workdps(30):
        Z, M = mpmath.mpf(0), mpmath.mpf(0)
        for s in itertools.product((1, -1), repeat=n):
            energy = -J * sum(s[i] * s[(i + 1) % n] for i in range(n)) - h * sum(s)
            w = mpmath.exp(-mpmath.mpf(energy) / kT)
            Z += w
            M += w * sum(s)
        return float(mpmath.log(Z)), float(M / Z / n)


def mp_cross_entropy(logits, labels, tau):
    """The mean over rows of -log softmax(row / tau)[label], in 40-digit arithmetic."""
    with mpmath.workdps(40):
        total = mpmath.mpf(0)
        for row, label in zip(logits, labels):
            e = [mpmath.exp(mpmath.mpf(float(z)) / mpmath.mpf(tau)) for z in row]
            total -= mpmath.log(e[label] / mpmath.fsum(e))
        return float(total / len(labels))


def concrete_cdf(q, delta, tau):
    """P(y_0 < q) for y = gumbel_softmax([l0, l1], temperature=tau), delta = l0 - l1: y_0 is
    sigmoid((delta + L) / tau) with L = G0 - G1 standard logistic."""
    return scipy.special.expit(tau * scipy.special.logit(q) - delta)


def gumbel_softmax_grad(y, w, tau):
    """d/dlogits of sum(w * y) for y = softmax((logits + g) / tau): y * (w - sum(w * y)) / tau."""
    return y * (w - np.sum(w * y, axis=-1, keepdims=True)) / tau


# --------------------------------------------------------------------------------------------
# Whole-array mpmath references of the fuzz test (tests/test_fuzz.py), and the NumPy noise
# --------------------------------------------------------------------------------------------

def weak(x, dtype):
    """x as an array; a Python float is weak (NEP 50, the contract's item 4): it takes dtype."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=dtype) if isinstance(x, float) else np.asarray(x)


def ref_reduce(case, mean=False):
    """Exact logsumexp (or logmeanexp) of a fuzz case (a, b, axis, keepdims, tau) over its axes: a dict of arrays shaped like the
    result (kept axes, keepdims applied): value (object, mpf), sign, kappa (float), signed
    (bool), m (float), tail (float, `MpLse.tail`), n (slice length)."""
    a = np.atleast_1d(np.asarray(case.a))
    b = None if case.b is None else np.broadcast_to(weak(case.b, a.dtype), a.shape)
    axes = normalize_axes(case.axis, a.ndim)
    ra, kept_shape = _to_rows(a, axes)
    rb = None if b is None else _to_rows(b, axes)[0]
    out = defaultdict(list)
    for i in range(ra.shape[0]):
        bi = None if rb is None else rb[i]
        lse = mp_lse_slice(ra[i], bi, case.tau)
        kappa = float(lse.kappa)
        value = lse.value
        if mean:
            value, kappa_d = mp_lme_slice(ra[i], bi, case.tau)
            kappa = kappa + float(kappa_d) if (lse.signed or kappa_d != 1) else 1.0
        out["value"].append(value)
        out["sign"].append(lse.sign)
        out["kappa"].append(kappa)
        out["signed"].append(lse.signed or (mean and bi is not None and bool(np.any(bi < 0))))
        out["m"].append(lse.m)
        out["tail"].append(lse.tail)
    res = {}
    for key in ("value", "sign", "kappa", "signed", "m", "tail"):
        vals = out[key]
        arr = np.empty(len(vals), dtype=object if key == "value" else None)
        arr[:] = vals
        arr = arr.reshape(kept_shape)
        if case.keepdims:
            arr = np.expand_dims(arr, axes)
        res[key] = arr
    res["n"] = ra.shape[1]
    res["shape"] = res["sign"].shape
    return res


def ref_softmax(x, axis, tau, log):
    """Exact softmax / log_softmax of x over axis: (values (object, mpf), m per element
    (the slice's max, nan if not finite), z = |x - m| / tau per element, float)."""
    a = np.atleast_1d(np.asarray(x))
    axes = normalize_axes(axis, a.ndim)
    ra, _ = _to_rows(a, axes)
    vals = np.empty(ra.shape, dtype=object)
    ms = np.full(ra.shape, math.nan)
    for i in range(ra.shape[0]):
        vals[i, :] = mp_softmax_slice(ra[i], tau, log) if ra.shape[1] else []
        if ra.shape[1]:
            m = float(np.max(ra[i].astype(np.float64)))
            ms[i, :] = m if math.isfinite(m) else math.nan
    kept = [i for i in range(a.ndim) if i not in axes]
    perm = kept + list(axes)
    shp = tuple(a.shape[i] for i in perm)
    inv = np.argsort(perm)
    vals = vals.reshape(shp).transpose(inv).reshape(np.shape(x))
    ms = ms.reshape(shp).transpose(inv).reshape(np.shape(x))
    return vals, ms


def numpy_gumbel_noise(seed_value, shape):
    """Standard Gumbel noise as lsearray draws it for NumPy (and array-API) logits:
    -log(-log(U)), U = default_rng(seed).random(shape) moved up to the smallest normal."""
    u = np.random.default_rng(seed_value).random(shape)
    u = np.maximum(u, np.finfo(np.float64).tiny)
    return -np.log(-np.log(u))
