"""The one array-API implementation: every backend but NumPy's real arrays runs this code."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_dask_namespace, is_lazy_array, is_numpy_namespace, is_torch_namespace

from lsearray._executors.scale import Factor, divide, inverse, times
from lsearray._executors.weights import ieee_sum, overflow_exponent, scaled_terms

__all__ = [
    "const", "expm1_sums", "finite_or_zero", "gap_to_max", "infinite_terms", "log_abs_sum", "log_of_sums",
    "log_softmax", "logmeanexp", "logsumexp", "logsumexp_signed", "near_max_mean",
    "nothing_is_constant", "partial_sums", "readable", "rebase_expm1_sums", "shaped", "softmax",
]


def readable(x: Any, xp: ModuleType) -> bool:
    """Whether the values of ``x`` can be read now, so that a fast path may branch on them:
    not a lazy array (dask's; JAX's, which may be traced), nor a torch tensor that
    `torch.compile`, `torch.export` or a function transform (vmap, grad) stands in for,
    where reading one breaks the graph or raises."""
    if is_lazy_array(x):
        return False
    if is_torch_namespace(xp):
        from lsearray._executors.torch_ops import is_concrete  # the namespace is torch's: imported

        return is_concrete(x)
    return True


def const(value: float, like: Any, xp: ModuleType) -> Any:
    """``value`` as a 0-d array of ``like``'s dtype, on its device."""
    return xp.asarray(value, dtype=like.dtype, device=device_of(like))


def finite_or_zero(m: Any, xp: ModuleType) -> Any:
    """``m`` where it is finite, 0 elsewhere: a max as a shift that an infinite or nan max
    does not turn into nan (their terms keep their own special values)."""
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def _is_complex(x: Any, xp: ModuleType) -> bool:
    return xp.isdtype(x.dtype, "complex floating")


def _is_empty(shape: tuple, axes: tuple[int, ...]) -> bool:
    return any(shape[k] == 0 for k in axes)


def _real_part_dtype(x: Any, xp: ModuleType) -> Any:
    if not _is_complex(x, xp):
        return x.dtype
    return xp.real(xp.zeros((), dtype=x.dtype, device=device_of(x))).dtype


def _sign(z: Any, xp: ModuleType) -> Any:
    """z / |z| (0 at 0, nan at nan) for complex z, where not every backend's sign takes
    complex; without the divisions NumPy warns on (lazily on dask)."""
    zero, nan = z == 0, xp.isnan(z)
    out = z / xp.where(zero | nan, const(1.0, z, xp), xp.abs(z))
    return xp.where(zero, const(0.0, z, xp), xp.where(nan, const(math.nan, z, xp), out))


def _real_sign(x: Any, xp: ModuleType) -> Any:
    """The standard's ``sign`` of real ``x`` (-1, 0, 1, nan at nan; 0 at both zeros) by
    `where` alone: array-api-compat's torch ``sign`` writes its nans through a boolean
    mask, which `torch.func.vmap` cannot batch. Every branch is a constant, so no
    gradient flows, as through ``sign``."""
    one, zero = const(1.0, x, xp), const(0.0, x, xp)
    out = xp.where(x > 0, one, xp.where(x < 0, -one, zero))
    return xp.where(xp.isnan(x), const(math.nan, x, xp), out)


def _wrap_angle(x: Any, tau: float | Factor, xp: ModuleType) -> Any:
    """Imaginary parts of ``tau Log(.)`` wrapped to (-tau pi, tau pi]; small ones keep
    their full precision. The angle is wrapped in units of ``tau``, which may lie outside
    the dtype's range."""
    y = divide(x, tau, xp)
    wrapped = times(-((-y + math.pi) % (2 * math.pi) - math.pi), tau, xp)
    return xp.where(xp.abs(y) < math.pi, x, wrapped)


def _shift_and_top(a: Any, axes: tuple[int, ...], xp: ModuleType) -> tuple[Any, Any]:
    """The shift (an element of maximal real part) and the mask of the maximal terms.

    Real input: every element equal to the max is a maximal term. Complex input: one
    element of maximal real part (ties in the real part differ in phase), chosen as
    the last one in C order.
    """
    if not _is_complex(a, xp):
        m = xp.max(a, axis=axes, keepdims=True)
        return m, a == m
    re = xp.real(a)
    top = re == xp.max(re, axis=axes, keepdims=True)
    size = math.prod(a.shape)
    index = xp.reshape(xp.arange(size, device=device_of(a)), a.shape)
    index = xp.where(top, index, xp.asarray(-1, dtype=index.dtype, device=device_of(a)))
    top = index == xp.max(index, axis=axes, keepdims=True)
    shift = xp.sum(xp.where(top, a, const(0.0, a, xp)), axis=axes, keepdims=True)
    return shift, top


def _gaps_below_max(
    a: Any, b: Any, axes: tuple[int, ...], xp: ModuleType
) -> tuple[Any, Any, Any, Any, Any]:
    """``(a, shift, top, dead, d)``: ``a`` with zero-weight elements at -inf, the finite
    shift (0 where the max is not finite), the maximal terms, the slices with nothing
    in them, and the gaps ``d = a - shift``.

    The nothing-slices are fed finite values, so that the branches `where` discards
    have finite gradients too.
    """
    if b is not None:
        a = xp.where(b == 0, const(-math.inf, a, xp), a)
    shift, top = _shift_and_top(a, axes, xp)
    shift_re = xp.real(shift) if _is_complex(a, xp) else shift
    dead = shift_re == -math.inf
    finite_shift = xp.where(xp.isfinite(shift_re), shift, const(0.0, shift, xp))
    live = xp.where(dead, const(0.0, a, xp), a)
    return a, finite_shift, top, dead, live - finite_shift


def _complex_split_sums(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """`partial_sums` of complex input: ``(a, shift, dead, w, t, e)``, `_gaps_below_max`'s
    ``a``, shift (one element of maximal real part) and nothing-slices, and the sums of
    ``b exp(d / tau)`` over that element (``w``) and over the others (``t``), in units of
    ``2**e`` (`scaled_terms`; ``e`` is 0 without weights)."""
    a, shift, top, dead, d = _gaps_below_max(a, b, axes, xp)
    ez = _complex_exp(divide(d, tau, xp), xp)
    terms, e = (ez, 0) if b is None else scaled_terms(ez * b, axes, xp)
    zero = const(0.0, terms, xp)
    w = xp.sum(xp.where(top, terms, zero), axis=axes, keepdims=True)
    t = xp.sum(xp.where(top, zero, terms), axis=axes, keepdims=True)
    return a, shift, dead, w, t, e


def nothing_is_constant(out: Any, xp: ModuleType) -> Any:
    """``out`` with its ``-inf`` entries (sums of nothing: every term -inf or of weight 0)
    the constant ``-inf``, so that no input gets a gradient from them, as in `logsumexp`."""
    return xp.where(out == -math.inf, xp.full_like(out, -math.inf), out)


def log_abs_sum(w: Any, t: Any, xp: ModuleType) -> tuple[Any, Any]:
    """``(log|w + t|, sign(w + t))`` for real ``w`` (the maximal terms' weight, kept
    apart) and ``t`` (the rest), as ``log|w| + log1p(t / w)``; ``log|w|`` is read as 0
    where ``w`` is 0, and callers mask those slices. Where ``t / w`` overflows (a tiny
    weight at the max, huge ones below it), ``log|t| + log1p(w / t)`` instead."""
    one = const(1.0, w, xp)
    w_safe = xp.where(w == 0, one, w)
    s = xp.where(t == 0, t, t / w_safe)
    sign = _real_sign(s + 1, xp) * _real_sign(w, xp)
    s = xp.where(s < -1, -s - 2, s)
    out = xp.log1p(s) + xp.log(xp.abs(w_safe))
    over = xp.isinf(s) & xp.isfinite(t)
    t_safe, w_over = xp.where(over, t, one), xp.where(over, w, const(0.0, w, xp))
    out = xp.where(over, xp.log(xp.abs(t_safe)) + xp.log1p(w_over / t_safe), out)
    return out, xp.where(over, _real_sign(t, xp), sign)


def infinite_terms(a: Any, b: Any, axes: tuple[int, ...], xp: ModuleType) -> tuple[Any, Any]:
    """``(total, nan)`` over ``axes`` (kept as size 1) of the terms ``b exp(a / tau)`` that
    exact arithmetic makes infinite or nan, whatever tau: ``total`` is the IEEE sum of the
    infinite ones (``sign(b) inf`` for ``a = +inf``, ``b`` for an infinite ``b``; 0 where
    there is none, nan for both signs), ``nan`` where a term is nan (nan in ``a`` or ``b``,
    or an infinite ``b`` on ``a = -inf``: 0 times inf). Elements of weight 0 are left out;
    ``b`` None weighs every element 1."""
    if b is None:
        some = xp.any(a == math.inf, axis=axes, keepdims=True)
        total = xp.where(some, const(math.inf, a, xp), const(0.0, a, xp))
        return total, xp.any(xp.isnan(a), axis=axes, keepdims=True)
    live, a_inf, b_inf = b != 0, a == math.inf, xp.isinf(b)
    infinite = live & (a_inf | (b_inf & (a > -math.inf)))
    # Every such term is an infinity of b's sign: their IEEE sum from which signs occur,
    # without the inf - inf that lazy libraries warn about (outside any errstate).
    up = xp.any(infinite & (b > 0), axis=axes, keepdims=True)
    down = xp.any(infinite & (b < 0), axis=axes, keepdims=True)
    inf, zero = const(math.inf, b, xp), const(0.0, b, xp)
    total = xp.where(up & down, const(math.nan, b, xp),
                     xp.where(up, inf, xp.where(down, -inf, zero)))
    nan = (live & xp.isnan(a)) | xp.isnan(b) | (b_inf & (a == -math.inf))
    return total, xp.any(nan, axis=axes, keepdims=True)


def gap_to_max(x: Any, m: Any, at_max: Any, xp: ModuleType) -> Any:
    """``x - m``, 0 where ``at_max``: the operands are zeroed there first, so that an
    infinite max never computes ``inf - inf`` (a RuntimeWarning where a lazy library
    evaluates it later, outside any ``errstate``)."""
    zero = xp.zeros_like(x)
    return xp.where(at_max, zero, x) - xp.where(at_max, zero, m)


def partial_sums(
    a: Any, b: Any, axes: tuple[int, ...], inv_tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any, Any, Any, Any]:
    """The partial of real ``a`` (weights ``b`` or None) over ``axes``, kept as size 1:
    ``(max, top_weight, rest, rest_err, exponent)`` as `lsearray._executors.partials.Partial`
    holds them (``rest_err`` is 0: the sums are the namespace's own).

    The max is over nonzero weights; ``top_weight`` sums ``b exp((a - max) / tau)`` over
    the elements equal to it, ``rest`` over the others, in units of ``2**exponent`` where
    weighted sums overflow (`scaled_terms`). Terms that exact arithmetic makes infinite
    (`infinite_terms`) make ``max`` +inf, ``top_weight`` their IEEE sum and ``rest`` 0; a
    nan term makes ``rest`` nan: both survive merges as scipy's special values.

    The passes over ``a`` are its size's temporaries, which bound the time of an eager
    library: without weights, the max (which also tells +inf and nan slices apart), the
    mask of the maximal terms, one array of gaps (the maximal ones -inf, so that their
    terms vanish from ``rest``: one `where`) whose exponential is taken in place where
    the library allows it, and the count of the mask (`_top_count`: once for the whole
    mask where that settles it), since each maximal term is exactly 1.
    """
    if 0 in a.shape:  # nothing to reduce, or no slices: dask cannot take the max of nothing
        shape = tuple(1 if k in axes else n for k, n in enumerate(a.shape))
        zero = xp.zeros(shape, dtype=a.dtype, device=device_of(a))
        return xp.full(shape, -math.inf, dtype=a.dtype, device=device_of(a)), zero, zero, zero, 0
    if b is not None:
        infinite, nan = infinite_terms(a, b, axes, xp)
        a = xp.where(b == 0, const(-math.inf, a, xp), a)
    m = xp.max(a, axis=axes, keepdims=True)
    if b is None:
        # Without weights the max tells both from the slice's partial alone, with no
        # further pass over a: +inf is an infinite term, and the standard's max is nan
        # where a nan is.
        infinite = xp.where(m == math.inf, m, xp.zeros_like(m))
        nan = xp.isnan(m)
    top = a == m
    lazy = is_dask_namespace(xp)
    if b is None and readable(m, xp) and not bool(xp.any(m == math.inf)):
        # One pass per temporary, where the values can be read (an eager library) and no
        # slice holds +inf (there the gradient at the infinite elements stays the
        # softmax's nan, as on the kernel): the maximal terms are each exactly 1 (a gap of
        # 0), so their sum is their count, read from the mask without touching the terms;
        # the rest sums the exponentials of the gaps with the maximal elements' gaps
        # -inf, whose terms are exactly 0 (one `where`, no second sum over the ties). The
        # gaps are taken in place in that fresh array (the standard's in-place operator; a
        # namespace without one rebinds): autograd keeps no value of it. A nan max is
        # replaced by 0, its slices' sums are set below. The gradient reaches the maximal
        # elements through the max: d/dm of m + log(w + t) is w / (w + t), split among
        # the ties by the max's own rule. (Weighted sums keep the two `where`s below: a
        # maximal term is its weight, not 1.)
        shift = finite_or_zero(m, xp)
        if _array_factor(inv_tau):
            # the product's gradient by the temperature is taken with the gaps: a -inf gap
            # would make it 0 * inf; the ties' terms are zeroed after the exponential
            terms = xp.exp(times(a - shift, inv_tau, xp))
            t = xp.sum(xp.where(top, const(0.0, terms, xp), terms), axis=axes, keepdims=True)
        else:
            gaps = xp.where(top, const(-math.inf, a, xp), a)
            gaps -= shift
            t = xp.sum(_exp_own(times(gaps, inv_tau, xp), xp), axis=axes, keepdims=True)
        w = xp.where(m == -math.inf, xp.zeros_like(t), _top_count(top, m, axes, xp))
        return _special_sums(m, w, t, infinite, nan, 0, xp)
    # A lazy library (dask) evaluates later, outside any errstate: there each gap is taken
    # against the max itself, so that nothing overflows and no inf - inf is computed. Eager
    # ones subtract the finite max (0 for a max of +inf or nan, whose slices' sums are
    # replaced below) in one pass.
    if lazy:
        gaps = gap_to_max(a, m, top, xp)
    else:
        gaps = a - finite_or_zero(m, xp)
    terms = xp.exp(times(gaps, inv_tau, xp))
    e: Any = 0
    if b is not None:
        # infinite weights are `infinite_terms`' (w and t are set from it below); left in,
        # one on a term that underflows makes 0 * inf, a nan that would reach the exponent.
        finite_b = xp.where(xp.isinf(b), xp.zeros_like(b), b)
        terms, e = scaled_terms(terms * finite_b, axes, xp)
    zero = const(0.0, terms, xp)  # 0-d: where broadcasts it
    w = xp.sum(xp.where(top, terms, zero), axis=axes, keepdims=True)
    t = xp.sum(xp.where(top, zero, terms), axis=axes, keepdims=True)
    return _special_sums(m, w, t, infinite, nan, e, xp)


def _exp_own(x: Any, xp: ModuleType) -> Any:
    """``exp(x)`` of a temporary ``x`` that nothing else holds and whose value no gradient
    needs (no product by an array temperature): torch's in place, so that no second array
    of its size is made (its autograd keeps the result, not ``x``)."""
    if is_torch_namespace(xp):
        return x.exp_()
    return xp.exp(x)


def _top_count(top: Any, m: Any, axes: tuple[int, ...], xp: ModuleType) -> Any:
    """The number of maximal elements (``top``) of each slice, in ``m``'s dtype.

    A count along axes is a pass over the whole mask (slow on some CPU libraries, whose
    bool sums widen every element); the values can be read (`partial_sums` asks), so one
    count of the whole mask tells the usual case at once: every slice has at least one
    maximal element unless its max is nan, so as many as there are slices, and no nan max,
    is one each.
    """
    slices = math.prod(n for k, n in enumerate(top.shape) if k not in axes)
    if int(xp.count_nonzero(top)) == slices and not bool(xp.any(xp.isnan(m))):
        return xp.ones_like(m)
    return xp.astype(xp.count_nonzero(top, axis=axes, keepdims=True), m.dtype)


def _special_sums(
    m: Any, w: Any, t: Any, infinite: Any, nan: Any, e: Any, xp: ModuleType
) -> tuple[Any, Any, Any, Any, Any]:
    """`partial_sums`' result from the sums of the finite terms: slices with an infinite
    term take ``(+inf, their IEEE sum, 0)``, a nan term makes ``rest`` nan (all on arrays
    the size of the result)."""
    some = infinite != 0  # also where their sum is nan
    m = xp.where(some, xp.full_like(m, math.inf), m)
    w = xp.where(some, infinite, w)
    t = xp.where(some, xp.zeros_like(t), t)
    t = xp.where(nan, xp.full_like(t, math.nan), t)
    return m, w, t, xp.zeros_like(t), e


def log_of_sums(
    m: Any, w: Any, t: Any, e: Any, xp: ModuleType, divisor: Any = None
) -> tuple[Any, Any, Any]:
    """``(shift, log|S|, sign(S))`` of a partial's sum ``S = 2**e (w + t)`` relative to its
    max ``m`` (divided by ``divisor``, in the units of the sums, when one is given): the
    finalize rules. ``shift`` is ``m``, or 0 where it is not finite; a slice with nothing
    in it (``m`` -inf, or nothing summed) has ``log|S|`` -inf and sign 0 (-inf and sign
    kept for a zero sum), a nan has sign nan; ``log|S|`` is ``log|w| + log1p(t / w)``,
    so a dominant term keeps the others."""
    log_total, sign = log_abs_sum(w, t, xp)
    if divisor is not None:
        log_total = log_total - xp.log(xp.abs(divisor))
        sign = sign * _real_sign(divisor, xp)
    elif not (isinstance(e, int) and e == 0):
        log_total = log_total + e * math.log(2.0)
    dead = (m == -math.inf) & ~xp.isnan(t)
    log_total = xp.where(((w == 0) & (t == 0)) | dead, xp.full_like(log_total, -math.inf), log_total)
    sign = xp.where(dead, xp.zeros_like(sign), sign)
    sign = xp.where(xp.isnan(log_total), xp.full_like(sign, math.nan), sign)
    return finite_or_zero(m, xp), log_total, sign


def _real_log_sum(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any, Any]:
    """``(shift, log|S|, sign(S))`` for real input and ``S = sum(b exp((a - shift) / tau))``
    over ``axes`` (kept as size 1): the finalize rules (`log_of_sums`) of the slice's
    partial (`partial_sums`)."""
    m, w, t, _, e = partial_sums(a, b, axes, inverse(tau), xp)
    return log_of_sums(m, w, t, e, xp)


def _complex_exp(z: Any, xp: ModuleType) -> Any:
    """``exp(z)`` for complex ``z``: 0 where the real part is -inf, nan where ``z`` has a
    nan, C99's values elsewhere; NumPy warns on the first two, lazily (outside any
    errstate) on dask, so they are not computed."""
    gone, nan = xp.real(z) == -math.inf, xp.isnan(z)
    ez = xp.exp(xp.where(gone | nan, const(0.0, z, xp), z))
    return xp.where(gone, const(0.0, z, xp), xp.where(nan, const(math.nan, z, xp), ez))


def _complex_log(x: Any, xp: ModuleType) -> Any:
    """``log(x)`` for complex ``x``, -inf at 0 without NumPy's divide-by-zero warning."""
    zero = x == 0
    return xp.where(zero, const(-math.inf, x, xp), xp.log(xp.where(zero, const(1.0, x, xp), x)))


def _complex_logsumexp(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any]:
    """`logsumexp_signed` of complex input: the sign is a unit phase."""
    a, finite_shift, dead, w, t, e = _complex_split_sums(a, b, axes, tau, xp)
    w_safe = xp.where((w == 0) | xp.isnan(w), const(1.0, w, xp), w)  # nan: made nan below
    s = xp.where(t == 0, t, t / w_safe)
    s = xp.where(xp.isnan(w), const(math.nan, s, xp), s)
    phase = xp.exp(1j * divide(xp.imag(finite_shift), tau, xp))
    sign = _sign(s + 1, xp) * _sign(w, xp) * phase
    log_w = xp.log(w_safe) if b is None else xp.log(w_safe) + e * math.log(2.0)
    out = finite_shift + times(xp.log1p(s) + log_w, tau, xp)
    # Infinite results: complex log and exp's C99 rules decide, as in scipy.
    naive = _complex_exp(divide(a, tau, xp), xp)
    total = xp.sum(naive if b is None else b * naive, axis=axes, keepdims=True)
    finite = xp.isfinite(out)
    out = xp.where(finite, out, times(_complex_log(total, xp), tau, xp))
    sign = xp.where(finite, sign, _sign(total, xp))
    out = xp.where(dead, const(-math.inf, out, xp), out)
    sign = xp.where(dead, const(0.0, sign, xp), sign)
    sign = xp.where(xp.isnan(out), const(math.nan, sign, xp), sign)
    return out, sign


def logsumexp_signed(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any]:
    """``(log|S|, sign(S))`` for ``S = sum(b exp(a / tau))`` over ``axes``, kept as size-1 axes.

    The terms are shifted by a maximal element, the maximal terms' sum ``w`` is kept
    apart and the result is ``shift + tau (log|w| + log1p(t / w))`` as in
    scipy.special.logsumexp. Slices with nothing in them (empty, all -inf, all weights
    zero) give ``(-inf, 0)`` and a zero gradient. For complex input the sign is a
    unit phase and the log's imaginary part is not yet wrapped. ``tau`` multiplies by
    `times` and divides by `divide`, so it may lie outside the dtype's range.
    """
    if _is_empty(a.shape, axes):
        shape = tuple(1 if k in axes else n for k, n in enumerate(a.shape))
        out = xp.full(shape, -math.inf, dtype=_real_part_dtype(a, xp), device=device_of(a))
        out = xp.astype(out, a.dtype) if _is_complex(a, xp) else out
        return out, xp.zeros_like(out)
    if _is_complex(a, xp):
        return _complex_logsumexp(a, b, axes, tau, xp)
    shift, log_total, sign = _real_log_sum(a, b, axes, tau, xp)
    return shift + times(log_total, tau, xp), sign


def logsumexp(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, return_sign: bool, xp: ModuleType
) -> tuple[Any, Any]:
    """scipy.special.logsumexp's ``(res, sgn)`` with reduced axes kept as size 1:
    complex results wrapped into (-pi, pi], negative real totals nan without signs."""
    out, sign = logsumexp_signed(a, b, axes, tau, xp)
    if _is_complex(out, xp):
        if return_sign:
            return xp.real(out), sign
        return xp.real(out) + 1j * _wrap_angle(xp.imag(out), tau, xp), sign
    if not return_sign:
        out = xp.where(sign < 0, const(math.nan, out, xp), out)
    return out, sign


def _array_factor(f: float | Factor) -> bool:
    """Whether ``f`` holds an array (a temperature to differentiate through)."""
    return isinstance(f, Factor) and not isinstance(f.mantissa, float)


def softmax(x: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType) -> Any:
    """``exp(x / tau) / sum(exp(x / tau))`` with scipy's special values.

    Computed as ``exp((x - max) / tau)`` over its sum. With ``tau = 1`` and one axis,
    torch's own softmax is that same expression in one pass and one array (a slice holding
    +inf or nan is nan throughout, as here); elsewhere the exponentials are taken in place
    of the gaps (`_exp_own`), so the gaps and the result are the only arrays of ``x``'s size.
    """
    if _is_empty(x.shape, axes):
        return x
    if is_torch_namespace(xp) and len(axes) == 1 and isinstance(tau, float) and tau == 1.0:
        import torch  # the namespace is torch's: it is imported

        return torch.softmax(x, dim=axes[0])
    gaps = divide(x - xp.max(x, axis=axes, keepdims=True), tau, xp)
    e = xp.exp(gaps) if _array_factor(tau) else _exp_own(gaps, xp)
    return e / xp.sum(e, axis=axes, keepdims=True)


def log_softmax(x: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType) -> Any:
    """``x / tau - logsumexp(x / tau)`` with scipy's special values; the normalizer
    keeps the maximal terms apart, so a dominant element's result is exact.

    The normalizer is subtracted in place of ``(x - shift) / tau`` (autograd keeps no value
    of it), so that array is the only one of ``x``'s size beside `partial_sums`' own.
    """
    if _is_empty(x.shape, axes):
        return x
    m, w, t, _, e = partial_sums(x, None, axes, inverse(tau), xp)
    # As scipy: a slice with nothing in it is all nan (its log|S| is -inf), one holding
    # +inf and no nan has log|S| = inf.
    shift, log_total, _ = log_of_sums(m, w, t, e, xp)
    out = divide(x - shift, tau, xp)
    out -= log_total
    if readable(m, xp) and not bool(xp.any(m == math.inf)):
        return out  # no log|S| is inf: nothing to set (an eager library reads it at once)
    # a finite x / tau minus log|S| = inf is -inf, also where x / tau overflows the dtype
    below = (m == math.inf) & ~xp.isnan(t) & (x < math.inf)
    return xp.where(below, const(-math.inf, out, xp), out)


def logmeanexp(a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType) -> Any:
    """``tau log(sum(b exp(a / tau)) / sum(b))`` (the count without ``b``), reduced axes
    kept as size 1; nan for an empty slice, a zero weight sum, or a real mean < 0.

    Where the mean is within a factor 1.5 of ``exp(max / tau)`` (a temperature large
    against the spread of ``a``), the result is ``max + tau log1p(x)`` with ``x`` the
    weighted mean of ``expm1((a - max) / tau)``: exact where ``log(mean)`` would cancel
    (see `_near_max`).
    """
    if _is_empty(a.shape, axes):
        out, _ = logsumexp_signed(a, b, axes, tau, xp)
        return xp.full_like(out, math.nan)
    if b is None:
        # a list: dynamo traces no generator here
        weights, zero, b_mean = math.prod([a.shape[k] for k in axes]), None, None
    else:
        # The sum of the weights in units of 2**e where it overflows (only there: a
        # weight below the smallest normal may hold the max's term): the mean of b / 2**e
        # is the same, and the sum of the terms is taken from b (with its own scale).
        over = xp.isinf(ieee_sum(b, axes, xp))
        e = overflow_exponent(b, tuple(a.shape), axes, xp)
        e = xp.where(over, e, xp.zeros_like(e))
        b_mean = b * xp.pow(xp.full_like(e, 2.0), -e)
        weights = xp.sum(b_mean, axis=axes, keepdims=True)
        zero = weights == 0
        weights = xp.where(zero, const(1.0, weights, xp), weights)
        scale = e * math.log(2.0)
    if _is_complex(a, xp):
        log_w = math.log(weights) if b is None else xp.log(weights) + scale
        return _complex_logmeanexp(a, b, axes, tau, log_w, zero, xp)
    shift, log_total, sign = _real_log_sum(a, b, axes, tau, xp)
    log_w = math.log(weights) if b is None else xp.log(xp.abs(weights)) + scale
    out = shift + times(log_total - log_w, tau, xp)
    signs_agree = ~(sign < 0) if b is None else (sign == 0) | (sign == _real_sign(weights, xp))
    if b is not None or not readable(out, xp) or _may_be_near(log_total - log_w, xp):
        near, near_mean = _near_max(a, b_mean, axes, tau, weights, xp)
        out = xp.where(near, near_mean, out)
    keep = signs_agree if zero is None else signs_agree & ~zero
    return nothing_is_constant(xp.where(keep, out, const(math.nan, out, xp)), xp)


# `_near_max` takes the slices whose mean of exp((a - max) / tau) is within [0.5, 1.5];
# the mean read from the log of the sum is off by a few ulp, so a slice whose log-mean lies
# outside [log 0.47, log 1.57] cannot be one of them.
_NEAR_LOG_MEAN = (math.log(0.47), math.log(1.57))


def _may_be_near(log_mean: Any, xp: ModuleType) -> bool:
    """Whether some slice's mean term, ``exp(log_mean)`` from the unweighted sum, may be
    within a factor 1.5 of the max's (`_near_max`): where none is (a temperature not large
    against the spread of ``a``, the usual case), `_near_max`'s dozen passes over the
    input would change no result, and are skipped (only where the values can be read)."""
    low, high = _NEAR_LOG_MEAN
    return bool(xp.any((log_mean >= low) & (log_mean <= high)))


def _near_max(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, weights: Any, xp: ModuleType
) -> tuple[Any, Any]:
    """``(near, max + tau log1p(x))`` for real input, ``x`` the weighted mean of
    ``expm1((a - max) / tau)``, ``near`` where ``|x| <= 0.5`` (`expm1_sums`, `near_max_mean`)."""
    shift, dead, x, gaps, rest = expm1_sums(a, b, axes, tau, xp)
    near, out = near_max_mean(shift, x, gaps, rest, weights, tau, xp)
    return near & ~dead, out


def expm1_sums(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any, Any, Any, Any]:
    """``(shift, dead, x, gaps, rest)`` for real input: the finite shift (the max over
    nonzero weights, 0 where it is not finite), the slices with nothing in them, and sums
    over ``axes`` (kept as size 1) of ``b expm1(z)`` for ``z = (a - shift) / tau``, of
    ``b (a - shift) expm1(z) / z`` where ``z`` is finite and of ``b expm1(z)`` where it
    is not: ``tau x = gaps + tau rest``.

    Where tau is huge against the spread of ``a``, ``z`` is subnormal or 0 (float32 and
    tau = 1e39, any dtype and tau = 1e300) and ``tau x`` computed as ``tau`` times ``x``
    would be lost; ``gaps`` keeps it, and needs ``expm1(z) / z`` to no more than its first
    digits.
    """
    _, shift, _, dead, d = _gaps_below_max(a, b, axes, xp)
    z = divide(d, tau, xp)
    excess = xp.expm1(z)
    finite = xp.isfinite(z)
    zero = const(0.0, d, xp)
    gaps = xp.where(finite, d, zero) * _expm1_ratio(xp.where(finite, z, zero), xp)
    gaps, rest = xp.where(finite, gaps, zero), xp.where(finite, zero, excess)
    if b is not None:
        excess, gaps, rest = b * excess, b * gaps, b * rest

    def total(v: Any) -> Any:
        return xp.sum(v, axis=axes, keepdims=True)

    return shift, dead, total(excess), total(gaps), total(rest)


def rebase_expm1_sums(
    sums: tuple[Any, Any, Any], weights: Any, old: Any, new: Any, inv_tau: float,
    xp: ModuleType
) -> tuple[Any, Any, Any]:
    """`expm1_sums`' ``(x, gaps, rest)`` of a part whose shift was ``old``, with the sum
    of its weights, taken to the shift ``new >= old`` of a merge: ``expm1(z + e) =
    exp(e) expm1(z) + expm1(e)`` for ``e = (old - new) / tau``, so that nothing cancels
    with weights of one sign. Unchanged where the shifts agree, where ``old`` is -inf
    (each term's expm1 stays -1) and where ``new`` is not finite (no mean is taken there)."""
    x, gaps, rest = sums
    gap = old - new
    keep = (gap == 0) | (old == -math.inf) | ~xp.isfinite(new) | ~xp.isfinite(gap)
    zero = const(0.0, gap, xp)
    gap = xp.where(keep, zero, gap)
    e = times(gap, inv_tau, xp)
    f = xp.exp(e)
    shift = weights * xp.expm1(e)
    # tau expm1(e) in gaps as gap expm1(e) / e (at most tau: weights * gap may overflow),
    # or in rest where e itself overflows (a temperature far below the gap)
    finite = xp.isfinite(e)
    ratio = _expm1_ratio(xp.where(finite, e, zero), xp)
    moved = (f * x + shift, f * gaps + xp.where(finite, weights * (gap * ratio), zero),
             f * rest + xp.where(finite, zero, shift))
    return tuple(xp.where(keep, v, m) for v, m in zip(sums, moved))


def near_max_mean(
    shift: Any, x: Any, gaps: Any, rest: Any, weights: Any, tau: float | Factor, xp: ModuleType
) -> tuple[Any, Any]:
    """``(near, shift + tau log1p(x / weights))`` from `expm1_sums`' sums, ``near`` where
    the mean ``|x / weights| <= 0.5`` (false where it is nan): there the log of the mean,
    within a factor 1.5 of ``exp(shift / tau)``, is taken without cancelling. ``tau
    log1p(u)`` is ``tau u * log1p(u) / u``, the weighted arithmetic mean of ``a`` as
    tau -> inf."""
    u = x / weights
    tau_u = gaps / weights + times(rest / weights, tau, xp)
    near = (xp.abs(u) <= 0.5) & xp.isfinite(tau_u)  # else the caller's log of the mean
    return near, shift + tau_u * _log1p_ratio(xp.where(near, u, const(0.0, u, xp)), xp)


# Below this |z|, expm1(z) / z and log1p(z) / z are their Taylor polynomials (to z**4): the
# first term left out is below 2**-47 of the value, and the polynomials' gradients are finite
# where the quotients' would divide 0 by a z**2 that underflows.
_SERIES = 2.0**-9


def _expm1_ratio(z: Any, xp: ModuleType) -> Any:
    """``expm1(z) / z`` (1 at 0) for finite ``z``, accurate to a few ulp with finite gradients."""
    small = xp.abs(z) < _SERIES
    series = 1 + z * (1 / 2 + z * (1 / 6 + z * (1 / 24 + z * (1 / 120))))
    z_big = xp.where(small, const(1.0, z, xp), z)
    return xp.where(small, series, xp.expm1(z_big) / z_big)


def _log1p_ratio(x: Any, xp: ModuleType) -> Any:
    """``log1p(x) / x`` (1 at 0) for ``|x| <= 0.5``, accurate to a few ulp with finite gradients."""
    small = xp.abs(x) < _SERIES
    series = 1 + x * (-1 / 2 + x * (1 / 3 + x * (-1 / 4 + x * (1 / 5))))
    x_big = xp.where(small, const(0.5, x, xp), x)
    return xp.where(small, series, xp.log1p(x_big) / x_big)


def _complex_logmeanexp(
    a: Any, b: Any, axes: tuple[int, ...], tau: float | Factor, log_w: Any, zero: Any,
    xp: ModuleType,
) -> Any:
    """`logmeanexp` of complex input: ``log_w`` is the log of the count (a float) or of
    the (nonzero) sum of ``b``, ``zero`` the slices whose weights sum to 0 (None without
    ``b``)."""
    out, _ = logsumexp_signed(a, b, axes, tau, xp)
    log_w = log_w if zero is not None else const(log_w, xp.real(out), xp)
    out = out - times(log_w, tau, xp)
    out = out if zero is None else xp.where(zero, const(math.nan, out, xp), out)
    return xp.real(out) + 1j * _wrap_angle(xp.imag(out), tau, xp)


def shaped(x: Any, axes: tuple[int, ...], keepdims: bool, dtype: Any, xp: ModuleType) -> Any:
    """Drop the reduced axes unless ``keepdims``, return to ``dtype`` when the
    computation ran wider (float16), and give NumPy's scalars for 0-d NumPy results."""
    if not keepdims:
        x = xp.squeeze(x, axis=axes)
    if x.dtype != dtype and xp.isdtype(x.dtype, "real floating") and xp.isdtype(
        dtype, "real floating"
    ):
        x = xp.astype(x, dtype)
    if is_numpy_namespace(xp) and x.ndim == 0:
        return x[()]
    return x
