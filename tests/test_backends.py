"""Every public function on every array-API backend: kind of array, dtype, shape, device and values.

The `xp` fixture (conftest.py, tests/backends.py) builds inputs from NumPy arrays and reads results back;
values are compared with the slow NumPy references of tests/reference.py on the NumPy copy of the input.
"""

import math
import warnings

import mpmath
import numpy as np
import pytest

import lsearray
from backends import assert_values, make_backend
from reference import (
    mp_logdiffexp,
    mp_logmeanexp,
    mp_logsumexp,
    normalize_axes,
    slow_log_softmax,
    slow_logmeanexp,
    slow_logsumexp,
    slow_softmax,
    tolerances,
)

inf = math.inf
nan = math.nan

SHAPE = (3, 4, 5)
AXES = [None, 0, -1, 2, (0, 2), (-1, -3), (1, 2), (0, 1, 2)]


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def data(shape, dtype="float64", seed=0, scale=3.0):
    """Random normal NumPy data already rounded to dtype (the reference reads the same values)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def reduced_shape(shape, axis, keepdims):
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def check_reduction(xp, got, like, a_np, expected, dtype, axis=None, keepdims=False, what="result"):
    shape = reduced_shape(a_np.shape, axis, keepdims)
    xp.check(got, like, dtype, shape, scalar=True, what=what)
    assert_values(xp.to_numpy(got), np.asarray(expected).reshape(shape), dtype, what)


# ---- axes and keepdims, all four functions -----------------------------------------------------

@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}".replace(" ", "") for a in AXES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reductions_axes(xp, dtype, axis, keepdims):
    xp.subset((dtype == "float64" and not keepdims) or (keepdims and axis in (-1, (0, 2))),
              jax_keep=(dtype == "float64" and not keepdims and axis in (None, (0, 2)))
              or (dtype == "float32" and keepdims and axis == -1))
    a_np = data(SHAPE, dtype)
    a = xp.make(a_np)
    before = xp.to_numpy(a)

    got = lsearray.logsumexp(a, axis=axis, keepdims=keepdims)
    check_reduction(xp, got, a, a_np, slow_logsumexp(a_np, axis=axis, keepdims=keepdims),
                    dtype, axis, keepdims, "logsumexp")

    got = lsearray.logmeanexp(a, axis=axis, keepdims=keepdims)
    check_reduction(xp, got, a, a_np, slow_logmeanexp(a_np, axis=axis, keepdims=keepdims),
                    dtype, axis, keepdims, "logmeanexp")

    value, sign = lsearray.logsumexp(a, axis=axis, keepdims=keepdims, return_sign=True)
    check_reduction(xp, value, a, a_np, slow_logsumexp(a_np, axis=axis, keepdims=keepdims),
                    dtype, axis, keepdims, "logsumexp value")
    check_reduction(xp, sign, a, a_np, np.ones(reduced_shape(SHAPE, axis, keepdims)),
                    dtype, axis, keepdims, "logsumexp sign")

    np.testing.assert_array_equal(xp.to_numpy(a), before, err_msg="input was modified")


@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}".replace(" ", "") for a in AXES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_axes(xp, dtype, axis):
    xp.subset(dtype == "float64" or axis == -1,
              jax_keep=dtype == "float64" and axis in (None, 1, (0, 2)))
    a_np = data(SHAPE, dtype, seed=1)
    a = xp.make(a_np)
    before = xp.to_numpy(a)
    got = lsearray.softmax(a, axis=axis)
    xp.check(got, a, dtype, SHAPE, what="softmax")
    assert_values(xp.to_numpy(got), slow_softmax(a_np, axis=axis), dtype, "softmax")
    got = lsearray.log_softmax(a, axis=axis)
    xp.check(got, a, dtype, SHAPE, what="log_softmax")
    assert_values(xp.to_numpy(got), slow_log_softmax(a_np, axis=axis), dtype, "log_softmax")
    np.testing.assert_array_equal(xp.to_numpy(a), before, err_msg="input was modified")


# ---- weights ------------------------------------------------------------------------------------

B_CASES = [
    ((), None), ((), 1), ((5,), -1), ((5,), None), ((4, 1), (0, 1)), ((4, 1), 1),
    ((3, 1, 5), -1), ((1, 4, 5), (0, 2)), ((3, 4, 5), None), ((3, 4, 5), 1),
]


@pytest.mark.parametrize("signed", [False, True], ids=["positive-b", "signed-b"])
@pytest.mark.parametrize("b_shape, axis", B_CASES,
                         ids=[f"b{s}-axis={a}".replace(" ", "") for s, a in B_CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_broadcast(xp, dtype, b_shape, axis, signed):
    xp.subset((dtype == "float64" and signed and b_shape in ((), (4, 1), (3, 4, 5)))
              or (dtype == "float32" and not signed and b_shape == (5,)),
              jax_keep=dtype == "float64" and signed and b_shape == (4, 1) and axis == 1)
    a_np = data(SHAPE, dtype, seed=2)
    rng = np.random.default_rng(3)
    b_np = (rng.uniform(-1.0, 1.0, b_shape) if signed else rng.uniform(0.1, 2.0, b_shape)).astype(dtype)
    a, b = xp.make(a_np), xp.make(b_np)

    got = lsearray.logsumexp(a, axis=axis, b=b)
    check_reduction(xp, got, a, a_np, quiet(slow_logsumexp, a_np, axis=axis, b=b_np), dtype, axis,
                    what="logsumexp")
    value, sign = lsearray.logsumexp(a, axis=axis, b=b, return_sign=True)
    ref_value, ref_sign = quiet(slow_logsumexp, a_np, axis=axis, b=b_np, return_sign=True)
    check_reduction(xp, value, a, a_np, ref_value, dtype, axis, what="logsumexp value")
    check_reduction(xp, sign, a, a_np, ref_sign, dtype, axis, what="logsumexp sign")
    for keepdims in (False, True):
        got = lsearray.logmeanexp(a, axis=axis, b=b, keepdims=keepdims)
        check_reduction(xp, got, a, a_np,
                        quiet(slow_logmeanexp, a_np, axis=axis, b=b_np, keepdims=keepdims),
                        dtype, axis, keepdims, what="logmeanexp")


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_tiny_weight_at_the_max_beside_huge_ones(xp, sign):
    """The rest over the max's weight overflows (5e300 e^-1 / 1e-300) though the sum does
    not: log(5e300 + 1e-300 e) = log 5 + 300 log 10 to double precision, a closed form."""
    a_np = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    b_np = np.array([sign * 1e300] * 5 + [1e-300])
    value, got_sign = lsearray.logsumexp(xp.make(a_np), b=xp.make(b_np), return_sign=True)
    expected = math.log(5.0) + 300.0 * math.log(10.0)
    assert float(xp.to_numpy(value)) == pytest.approx(expected, rel=1e-15)
    assert float(xp.to_numpy(got_sign)) == sign


@pytest.mark.parametrize("b", [2.0, 3, 0.5], ids=["float-2.0", "int-3", "float-0.5"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_scalar_weight(xp, dtype, b):
    xp.subset((dtype, b) in (("float32", 2.0), ("float64", 3)), jax_keep=(dtype, b) == ("float64", 3))
    a_np = data(SHAPE, dtype, seed=4)
    a = xp.make(a_np)
    got = lsearray.logsumexp(a, axis=1, b=b)
    check_reduction(xp, got, a, a_np, slow_logsumexp(a_np, axis=1, b=b), dtype, 1, what="logsumexp")
    got = lsearray.logsumexp(a, b=b)
    check_reduction(xp, got, a, a_np, slow_logsumexp(a_np, b=b), dtype, None, what="logsumexp full")
    got = lsearray.logmeanexp(a, axis=(0, 2), b=b)
    check_reduction(xp, got, a, a_np, slow_logmeanexp(a_np, axis=(0, 2), b=b), dtype, (0, 2),
                    what="logmeanexp")


@pytest.mark.parametrize("a", [3.0, 3], ids=["float-3.0", "int-3"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64"])
def test_python_scalar_a_is_weak(xp, dtype, a):
    """A Python scalar a beside an array b takes b's dtype (integers: the default floating
    dtype), as a Python scalar b beside an array a does, and b's device."""
    xp.subset(dtype in ("float32", "int64"), jax_keep=(dtype, a) == ("float32", 3.0))
    b = xp.make(np.array([2.0, 1.0]), dtype)
    out = dtype if dtype.startswith("float") else xp.default_float(b)
    got = lsearray.logsumexp(a, b=b)
    xp.check(got, b, out, (), scalar=True)
    assert_values(xp.to_numpy(got), a + math.log(3.0), out)
    got = lsearray.logmeanexp(a, b=b)
    xp.check(got, b, out, (), scalar=True)
    assert_values(xp.to_numpy(got), a, out)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_python_scalars_are_rounded_to_the_dtype_first(xp, dtype):
    """A weak Python scalar becomes the array's dtype before anything is computed, as NumPy
    makes np.float32(1e300) inf: beyond the dtype's range it is inf (quietly), and within it
    the weight rounded to the dtype decides (1 + 2**-30 is 1 in float32: the sum of two
    zeros' terms with weights 1 and 1 is log 2 exactly)."""
    xp.subset(dtype == "float32", jax_keep=dtype == "float32")
    a = xp.make(np.zeros(2), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xp.to_numpy(lsearray.logsumexp(a, b=1e300)) == inf
        assert xp.to_numpy(lsearray.logsumexp(1e300, b=a + 1)) == inf
        got = lsearray.logsumexp(a, b=1.0 + 2.0**-30)
    xp.check(got, a, dtype, (), scalar=True)
    assert xp.to_numpy(got) == np.asarray(math.log(2.0), dtype)


def test_negative_total_is_nan_without_sign(xp):
    a_np = np.array([[1.0, 2.0], [2.0, 1.0], [0.0, 0.0]])
    b_np = np.array([[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]])
    a, b = xp.make(a_np), xp.make(b_np)
    got = lsearray.logsumexp(a, axis=1, b=b)
    xp.check(got, a, "float64", (3,))
    expected = [nan, math.log(math.e ** 2 - math.e), -inf]
    assert_values(xp.to_numpy(got), expected, "float64")
    value, sign = lsearray.logsumexp(a, axis=1, b=b, return_sign=True)
    xp.check(value, a, "float64", (3,))
    xp.check(sign, a, "float64", (3,))
    assert_values(xp.to_numpy(value), [math.log(math.e ** 2 - math.e)] * 2 + [-inf], "float64")
    assert_values(xp.to_numpy(sign), [-1.0, 1.0, 0.0], "float64")


# ---- temperature --------------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.25, 1.0, 3.0, 1e3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_temperature(xp, dtype, tau):
    xp.subset((dtype, tau) in (("float64", 0.25), ("float64", 3.0), ("float32", 1e3)),
              jax_keep=(dtype, tau) == ("float64", 3.0))
    a_np = data(SHAPE, dtype, seed=5)
    # signed weights only in float64: float32 sums that nearly cancel lose more than rtol 1e-5
    low = -0.5 if dtype == "float64" else 0.1
    b_np = np.random.default_rng(6).uniform(low, 2.0, SHAPE).astype(dtype)
    a, b = xp.make(a_np), xp.make(b_np)

    got = lsearray.logsumexp(a, axis=1, temperature=tau)
    check_reduction(xp, got, a, a_np, slow_logsumexp(a_np, axis=1, temperature=tau), dtype, 1,
                    what="logsumexp")
    got = lsearray.logsumexp(a, temperature=tau)
    check_reduction(xp, got, a, a_np, slow_logsumexp(a_np, temperature=tau), dtype, None,
                    what="logsumexp full")
    value, sign = lsearray.logsumexp(a, axis=(0, 2), b=b, return_sign=True, temperature=tau)
    ref_value, ref_sign = quiet(slow_logsumexp, a_np, axis=(0, 2), b=b_np, return_sign=True,
                                temperature=tau)
    check_reduction(xp, value, a, a_np, ref_value, dtype, (0, 2), what="logsumexp value")
    check_reduction(xp, sign, a, a_np, ref_sign, dtype, (0, 2), what="logsumexp sign")
    got = lsearray.logmeanexp(a, axis=1, temperature=tau)
    check_reduction(xp, got, a, a_np, slow_logmeanexp(a_np, axis=1, temperature=tau), dtype, 1,
                    what="logmeanexp")
    got = lsearray.logmeanexp(a, axis=1, b=b, temperature=tau)
    check_reduction(xp, got, a, a_np, quiet(slow_logmeanexp, a_np, axis=1, b=b_np, temperature=tau),
                    dtype, 1, what="logmeanexp weighted")
    got = lsearray.softmax(a, axis=1, temperature=tau)
    xp.check(got, a, dtype, a_np.shape, what="softmax")
    assert_values(xp.to_numpy(got), slow_softmax(a_np, axis=1, temperature=tau), dtype, "softmax")
    got = lsearray.log_softmax(a, axis=(0, 2), temperature=tau)
    xp.check(got, a, dtype, a_np.shape, what="log_softmax")
    assert_values(xp.to_numpy(got), slow_log_softmax(a_np, axis=(0, 2), temperature=tau), dtype,
                  "log_softmax")


# ---- temperatures outside the dtype's range -------------------------------------------------------

# Beyond float32's largest and below its smallest normal number, and float64's extremes.
EXTREME_TAUS = [1e39, 1e300, 1.7e308, 1e-39, 1e-300, 2.2250738585072014e-308]
TAU_A = np.array([0.5, 0.25, -1.0])
TAU_B = np.array([1.0, 2.0, 0.5])




def mp_rounded(value, dtype):
    """An mpmath value rounded to dtype (too large for it: inf)."""
    with np.errstate(over="ignore"):
        return np.asarray(float(value)).astype(dtype)


def mp_lse(a, tau, b=None):
    return mp_logsumexp(a, b, tau)[0]


def _extreme_tau_case(name, a_np, b_np, tau, xp):
    """``(result, mpmath's value or list of values)`` of function ``name`` at temperature tau."""
    a, b, kw = xp.make(a_np), xp.make(b_np), dict(temperature=tau)
    lse = mp_lse(a_np, tau)
    with mpmath.workdps(60):
        log_p = [(mpmath.mpf(float(x)) - lse) / mpmath.mpf(tau) for x in a_np.tolist()]
        cases = {
            "logsumexp": (lambda: lsearray.logsumexp(a, **kw), lambda: lse),
            "logsumexp-b": (lambda: lsearray.logsumexp(a, b=b, **kw), lambda: mp_lse(a_np, tau, b_np)),
            "softmax": (lambda: lsearray.softmax(a, **kw), lambda: [mpmath.exp(v) for v in log_p]),
            "log_softmax": (lambda: lsearray.log_softmax(a, **kw), lambda: log_p),
            "logaddexp": (lambda: lsearray.logaddexp(a, xp.make(a_np[::-1]), **kw),
                          lambda: [mp_lse([x, y], tau) for x, y in zip(a_np, a_np[::-1])]),
            "logdiffexp": (lambda: lsearray.logdiffexp(b, a, **kw),
                           lambda: [mp_logdiffexp(y, x, tau) for x, y in zip(a_np, b_np)]),
            "logcumsumexp": (lambda: lsearray.logcumsumexp(a, **kw),
                             lambda: [mp_lse(a_np[:k + 1], tau) for k in range(a_np.size)]),
        }
        call, exact = cases[name]
        return call(), exact()


@pytest.mark.parametrize("tau", EXTREME_TAUS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("name", ["logsumexp", "logsumexp-b", "softmax", "log_softmax", "logaddexp",
                                  "logdiffexp", "logcumsumexp"])
def test_temperature_outside_the_dtype_range(xp, name, dtype, tau):
    """tau and 1 / tau outside the dtype's range are applied in exact power-of-two steps: every
    result is mpmath's value rounded to the dtype (inf where it overflows), never nan."""
    xp.subset(dtype == "float32", jax_keep=(dtype, tau) in (("float32", 1e39), ("float32", 1e-300)))
    a_np = TAU_A.astype(dtype)
    xp.make(a_np, dtype)  # skips a dtype the backend lacks
    got, exact = _extreme_tau_case(name, a_np, TAU_B.astype(dtype), tau, xp)
    exact = [mp_rounded(v, dtype) for v in exact] if isinstance(exact, list) else mp_rounded(exact, dtype)
    xp.check(got, xp.make(a_np), dtype, np.shape(exact), scalar=None, what=name)
    assert_values(xp.to_numpy(got), np.asarray(exact, dtype=np.float64), dtype, name)


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
@pytest.mark.parametrize("tau", [1e-300, 1e-39, 1.0, 1e6, 1e39, 1e300, 1.7e308])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logmeanexp_lies_between_min_and_max(xp, dtype, tau, weighted):
    """With positive weights logmeanexp lies in [min a, max a] at every temperature and is
    mpmath's value rounded to the dtype: the max as tau -> 0, the weighted arithmetic mean
    (here 0) as tau -> inf, where log(mean) would cancel to nothing (1.65e268 at tau = 1e300)."""
    xp.subset(dtype == "float32" and not weighted, jax_keep=(dtype, tau) in (("float32", 1e39),))
    a_np = np.linspace(-1.0, 1.0, 7).astype(dtype)
    b_np = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]).astype(dtype) if weighted else None
    got = lsearray.logmeanexp(xp.make(a_np), b=None if b_np is None else xp.make(b_np), temperature=tau)
    got = xp.to_numpy(got)
    assert -1.0 <= got <= 1.0, got
    assert_values(got, mp_rounded(mp_logmeanexp(a_np, b_np, tau), dtype), dtype)


def test_logmeanexp_tiny_temperature_keeps_every_term(xp):
    """At tau = 1e-300 the gap -1 over tau overflows, yet its term counts: the mean of
    exp(a / tau) over [0, 0, -1] is 2/3 of the max's, so the result is tau log(2/3)."""
    xp.subset(True, jax_keep=False)
    got = xp.to_numpy(lsearray.logmeanexp(xp.make(np.array([0.0, 0.0, -1.0])), temperature=1e-300))
    np.testing.assert_allclose(got, 1e-300 * math.log(2.0 / 3.0), rtol=1e-14, atol=0)


@pytest.mark.parametrize("tau", [1e39, 1e-300])
def test_gumbel_softmax_temperature_outside_float32(xp, tau):
    """A huge temperature gives the uniform distribution, a tiny one the one-hot argmax of the
    noisy logits: no nan in float32."""
    xp.subset(tau == 1e39)
    y = xp.to_numpy(lsearray.gumbel_softmax(xp.make(np.array([[1.0, 2.0, 2.0]] * 4, np.float32)),
                                            temperature=tau, rng=0))
    if tau > 1:
        assert_values(y, np.full((4, 3), 1 / 3), "float32")
    else:
        assert np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1), y


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict"])
def test_array_temperature_outside_float32(name):
    """An array temperature keeps its value beyond float32's range: float64 1e39 and 1e-300,
    and a subnormal float32 temperature (1e-39; not on jax, where XLA flushes subnormal
    float32 numbers to 0 in every operation)."""
    x = make_backend(name)
    a = x.make(TAU_A, "float32")
    taus = ((1e39, "float64"), (1e-300, "float64")) + (((1e-39, "float32"),) if name != "jax" else ())
    for tau, dtype in taus:
        t = x.make(np.array(tau), dtype)
        got = lsearray.logsumexp(a, temperature=t)
        x.check(got, a, "float32", ())
        assert_values(x.to_numpy(got), mp_rounded(mp_lse(TAU_A, float(x.to_numpy(t))), "float32"),
                      "float32", f"tau={tau}")
        got = lsearray.softmax(a, temperature=t)
        expected = np.full(3, 1 / 3) if tau > 1 else [1.0, 0.0, 0.0]
        assert_values(x.to_numpy(got), expected, "float32", f"softmax tau={tau}")


# ---- special values -----------------------------------------------------------------------------

# (a row, b row): one row per special case, reduced along axis 1
SPECIAL_ROWS = [
    ([0.0, -50.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]),       # ordinary
    ([-inf, -inf, -inf, -inf], [1.0, 1.0, 1.0, 1.0]),     # all -inf: -inf, sign 0
    ([inf, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]),         # +inf
    ([nan, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]),         # nan
    ([nan, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 1.0]),         # b == 0 removes nan
    ([inf, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 1.0]),         # b == 0 removes +inf
    ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, -1.0]),        # negative total
    ([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 2.0, -2.0]),       # zero total: -inf, sign 0
    ([inf, -inf, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]),        # +inf and -inf
    ([1.0, 2.0, 3.0, 4.0], [inf, 1.0, 1.0, 1.0]),         # infinite weight
    ([inf, inf, 0.0, 0.0], [1.0, -1.0, 1.0, 1.0]),        # inf - inf: nan
    ([-inf, 0.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]),        # one -inf
    ([inf, 0.0, 0.0, 0.0], [-1.0, 1.0, 1.0, 1.0]),        # -inf total: nan, or (inf, -1)
    ([nan, nan, nan, nan], [0.0, 0.0, 0.0, 0.0]),         # everything removed: empty sum
    ([-1e4, -1e4, -1e4, -1e4], [1.0, 1.0, 1.0, 1.0]),     # all terms underflow without the shift
    ([-1e4, -1e4 - 1, -800.0, -1e4], [-inf, -inf, 0.0, -inf]),  # -inf weights (scipy 1.17: nan)
]
SPECIAL_A = np.array([r[0] for r in SPECIAL_ROWS])
SPECIAL_B = np.array([r[1] for r in SPECIAL_ROWS])
N_SPECIAL = len(SPECIAL_ROWS)


@pytest.mark.parametrize("tau", [1.0, 0.5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values_logsumexp(xp, dtype, tau):
    xp.subset((dtype, tau) in (("float64", 1.0), ("float32", 0.5)), jax_keep=(dtype, tau) == ("float64", 1.0))
    a_np, b_np = SPECIAL_A.astype(dtype), SPECIAL_B.astype(dtype)
    a, b = xp.make(a_np), xp.make(b_np)
    kw = dict(temperature=tau)

    got = lsearray.logsumexp(a, axis=1, b=b, **kw)
    xp.check(got, a, dtype, (N_SPECIAL,))
    assert_values(xp.to_numpy(got), quiet(slow_logsumexp, a_np, axis=1, b=b_np, **kw), dtype,
                  "logsumexp with b")

    value, sign = lsearray.logsumexp(a, axis=1, b=b, return_sign=True, **kw)
    ref_value, ref_sign = quiet(slow_logsumexp, a_np, axis=1, b=b_np, return_sign=True, **kw)
    xp.check(value, a, dtype, (N_SPECIAL,), what="value")
    xp.check(sign, a, dtype, (N_SPECIAL,), what="sign")
    assert_values(xp.to_numpy(value), ref_value, dtype, "logsumexp value")
    assert_values(xp.to_numpy(sign), ref_sign, dtype, "logsumexp sign")

    got = lsearray.logsumexp(a, axis=-1, keepdims=True, **kw)
    xp.check(got, a, dtype, (N_SPECIAL, 1))
    assert_values(xp.to_numpy(got), quiet(slow_logsumexp, a_np, axis=-1, keepdims=True, **kw),
                  dtype, "logsumexp without b")

    got = lsearray.logmeanexp(a, axis=1, b=b, **kw)
    xp.check(got, a, dtype, (N_SPECIAL,))
    assert_values(xp.to_numpy(got), quiet(slow_logmeanexp, a_np, axis=1, b=b_np, **kw), dtype,
                  "logmeanexp with b")
    got = lsearray.logmeanexp(a, axis=1, **kw)
    assert_values(xp.to_numpy(got), quiet(slow_logmeanexp, a_np, axis=1, **kw), dtype,
                  "logmeanexp without b")


# Terms b exp(a / tau) that exact arithmetic makes infinite or nan (issue 12): (id, a, b, value,
# sign, whether scipy.special.logsumexp 1.17 gives the same). Infinite terms add as IEEE numbers.
INFINITE_TERMS = [
    ("inf-times-2-minus-inf", [inf, inf], [2.0, -1.0], nan, nan, True),
    ("inf-weight-on-neginf", [-inf], [inf], nan, nan, True),  # 0 * inf
    ("inf-weight-on-neginf-and-1", [-inf, 0.0], [inf, 1.0], nan, nan, True),
    ("inf-weight-on-a-term-that-underflows", [600.0, -200.0], [1.0, inf], inf, 1.0, True),
    ("inf-weight-and-inf", [1.0, inf], [inf, 1.0], inf, 1.0, True),
    ("minus-inf-weight", [0.0, 5.0], [-inf, 1.0], inf, -1.0, True),
    ("inf-plus-minus-inf-weight", [inf, inf], [1.0, -inf], nan, nan, True),
    ("inf-and-inf-weight-on-neginf", [inf, -inf], [1.0, inf], nan, nan, True),
    ("nan-weight-on-inf", [inf, 2.0], [nan, 1.0], nan, nan, True),
    ("minus-inf-weights", [1.0, 2.0], [-inf, -inf], inf, -1.0, True),
    ("minus-inf-weight-on-neginf", [-inf, -inf], [-inf, 1.0], nan, nan, True),
    # scipy gives nan: it multiplies -inf by the term exp(-800) after rounding it to 0
    ("minus-inf-weight-on-a-term-that-underflows", [-800.0, 0.0], [-inf, 1.0], inf, -1.0, False),
    # scipy gives nan: a weight 0 removes the element here, even +inf (a documented choice)
    ("zero-weight-on-inf-and-inf-weight", [inf, 2.0], [0.0, inf], inf, 1.0, False),
]
# What the NumPy kernel (in dask's NumPy chunks too) gives otherwise today.


@pytest.mark.parametrize("tau", [1.0, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case, a, b, value, sign, scipy_agrees", INFINITE_TERMS,
                         ids=[row[0] for row in INFINITE_TERMS])
def test_infinite_terms_with_weights(xp, dtype, tau, case, a, b, value, sign, scipy_agrees):
    """A weight-inf term is +-inf even where its exp underflows, 0 * inf is nan, infinite terms
    of both signs give nan: the exact-arithmetic answers, scipy's where it gives them."""
    xp.subset((dtype, tau) == ("float64", 1.0))
    if scipy_agrees:
        import scipy.special

        with np.errstate(all="ignore"):
            expected = scipy.special.logsumexp(np.array(a), b=np.array(b), return_sign=True)
        assert_values(np.array(expected), [value, sign], "float64", "scipy")
    x, w = xp.make(np.array(a, dtype=dtype)), xp.make(np.array(b, dtype=dtype))
    got, got_sign = lsearray.logsumexp(x, b=w, return_sign=True, temperature=tau)
    xp.check(got, x, dtype, (), scalar=True)
    assert_values(xp.to_numpy(got), value, dtype, "value")
    assert_values(xp.to_numpy(got_sign), sign, dtype, "sign")
    got = lsearray.logsumexp(x, b=w, temperature=tau)
    assert_values(xp.to_numpy(got), nan if sign < 0 else value, dtype, "without return_sign")


@pytest.mark.parametrize("a, sign", [
    pytest.param([-inf, -inf], 0.0, id="all-neginf"),
    pytest.param([inf, 1.0], 1.0, id="posinf"),
    pytest.param([nan, 1.0], nan, id="nan"),
    pytest.param([3.0], 1.0, id="single"),
])
def test_special_values_full_reduction(xp, a, sign):
    a_np = np.array(a)
    x = xp.make(a_np)
    got = lsearray.logsumexp(x)
    xp.check(got, x, "float64", (), scalar=True)
    assert_values(xp.to_numpy(got), slow_logsumexp(a_np), "float64")
    value, sgn = lsearray.logsumexp(x, return_sign=True)
    xp.check(value, x, "float64", (), scalar=True, what="value")
    xp.check(sgn, x, "float64", (), scalar=True, what="sign")
    assert_values(xp.to_numpy(sgn), sign, "float64", "sign")


SOFTMAX_SPECIAL = np.array([
    [inf, 1.0, 0.0], [0.0, 0.0, 0.0], [-inf, -inf, -inf], [-inf, 0.0, 1.0], [nan, 1.0, 0.0],
    [1000.0, 1000.0, 1.0], [1000.0, 1.0, -1000.0], [inf, inf, 0.0], [-1e4, -1e4, -1e4],
])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values_softmax(xp, dtype):
    x_np = SOFTMAX_SPECIAL.astype(dtype)
    x = xp.make(x_np)
    for axis in (1, 0):
        got = lsearray.softmax(x, axis=axis)
        xp.check(got, x, dtype, x_np.shape, what="softmax")
        assert_values(xp.to_numpy(got), quiet(slow_softmax, x_np, axis=axis), dtype, f"softmax axis={axis}")
        got = lsearray.log_softmax(x, axis=axis)
        xp.check(got, x, dtype, x_np.shape, what="log_softmax")
        assert_values(xp.to_numpy(got), quiet(slow_log_softmax, x_np, axis=axis), dtype,
                      f"log_softmax axis={axis}")


def test_empty_reductions(xp):
    a_np = np.zeros((3, 0))
    a = xp.make(a_np)
    got = lsearray.logsumexp(a, axis=1)
    xp.check(got, a, "float64", (3,))
    assert_values(xp.to_numpy(got), [-inf] * 3, "float64")
    value, sign = lsearray.logsumexp(a, axis=1, return_sign=True)
    xp.check(value, a, "float64", (3,), what="value")
    xp.check(sign, a, "float64", (3,), what="sign")
    assert_values(xp.to_numpy(value), [-inf] * 3, "float64")
    assert_values(xp.to_numpy(sign), [0.0] * 3, "float64")
    got = lsearray.logsumexp(a, axis=1, keepdims=True)
    xp.check(got, a, "float64", (3, 1))
    got = lsearray.logsumexp(a, axis=0)
    xp.check(got, a, "float64", (0,))
    got = lsearray.logsumexp(a)
    xp.check(got, a, "float64", (), scalar=True)
    assert xp.to_numpy(got) == -inf
    value, sign = lsearray.logsumexp(xp.make(np.zeros(0)), return_sign=True)
    assert xp.to_numpy(value) == -inf and xp.to_numpy(sign) == 0.0
    got = lsearray.logmeanexp(a, axis=1)
    xp.check(got, a, "float64", (3,))
    assert_values(xp.to_numpy(got), [nan] * 3, "float64")
    got = lsearray.softmax(a, axis=1)
    xp.check(got, a, "float64", (3, 0))
    got = lsearray.log_softmax(a, axis=1)
    xp.check(got, a, "float64", (3, 0))


EMPTY_CASES = [((0,), None), ((0, 3), 0), ((0, 3), -1), ((0, 3), None), ((3, 0), 1), ((2, 0, 3), (0, 1)),
               ((2, 0, 3), 2)]


@pytest.mark.parametrize("shape, axis", EMPTY_CASES, ids=[f"{s}-axis={a}".replace(" ", "") for s, a in EMPTY_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "bool"])
def test_every_function_on_empty_input(xp, dtype, shape, axis):
    """Empty input gives NumPy's answers on every backend: a reduction over nothing is -inf
    (sign 0) and its mean nan (with weights too), and an empty result is an empty array of
    the result's dtype, for every function, with keepdims too."""
    xp.subset(dtype in ("float64", "int64"), jax_keep=dtype == "float32" and axis in (0, None))
    a_np = np.zeros(shape, dtype)
    a, b = xp.make(a_np), xp.make(np.ones(shape, dtype))
    out = dtype if dtype.startswith("float") else xp.default_float(a)
    axes = normalize_axes(axis, len(shape))

    def check(got, expected, shape, what, scalar=True):
        xp.check(got, a, out, shape, scalar=scalar, what=what)
        assert_values(xp.to_numpy(got), np.full(shape, expected), "float64", what)

    for keepdims in (False, True):
        kept = reduced_shape(shape, axis, keepdims)
        value, sign = lsearray.logsumexp(a, axis=axis, keepdims=keepdims, return_sign=True)
        check(value, -inf, kept, "logsumexp")
        check(sign, 0.0, kept, "logsumexp sign")
        check(lsearray.logsumexp(a, axis=axis, b=b, keepdims=keepdims), -inf, kept, "logsumexp with b")
        for kw in ({}, {"b": b}, {"temperature": 2.0}):
            check(lsearray.logmeanexp(a, axis=axis, keepdims=keepdims, **kw), nan, kept, f"logmeanexp {kw}")
    for func in ("softmax", "log_softmax"):
        check(getattr(lsearray, func)(a, axis=axis), nan, shape, func, scalar=False)
    check(lsearray.logaddexp(a, b), nan, shape, "logaddexp", scalar=False)
    for hard in (False, True):
        check(lsearray.gumbel_softmax(a, hard=hard, rng=0), nan, shape, f"gumbel_softmax hard={hard}", scalar=False)
    if len(axes) == 1 or axis is None:
        scan_axis = None if axis is None else axes[0]
        scanned = (a_np.size,) if axis is None else shape
        check(lsearray.logcumsumexp(a, axis=scan_axis), nan, scanned, "logcumsumexp", scalar=False)
        acc = lsearray.OnlineLogSumExp(axis=scan_axis).update(a, b=b)
        seen = reduced_shape(shape, axis, False)
        value, sign = acc.result(return_sign=True)
        check(value, -inf, seen, "OnlineLogSumExp")
        check(sign, 0.0, seen, "OnlineLogSumExp sign")
        check(acc.result(mean=True), nan, seen, "OnlineLogSumExp mean")
    if shape[-1]:  # categories, but no slices to draw from
        draws = lsearray.categorical(a, rng=0)
        assert tuple(draws.shape) == shape[:-1] and xp.to_numpy(draws).size == 0
    else:
        with pytest.raises(ValueError, match="have no categories"):
            lsearray.categorical(a, rng=0)


@pytest.mark.parametrize("a_shape, b_shape, out_shape", [
    ((2, 0), (0, 3), (2, 3)), ((0,), (0,), ()), ((1, 2, 0), (0, 3), (1, 2, 3)),
    ((0, 2), (2, 3), (0, 3)), ((2, 3), (3, 0), (2, 0)), ((0, 2, 3), (3, 4), (0, 2, 4)),
])
def test_logmatmulexp_of_empty_matrices(xp, a_shape, b_shape, out_shape):
    """A zero-size inner axis gives -inf (an empty sum), any other zero-size axis an empty result."""
    xp.subset(True, jax_keep=a_shape == (2, 0))
    a = xp.make(np.zeros(a_shape))
    got = lsearray.logmatmulexp(a, xp.make(np.zeros(b_shape)))
    xp.check(got, a, "float64", out_shape, scalar=True)
    assert_values(xp.to_numpy(got), np.full(out_shape, -inf), "float64")


def test_zero_dimensional_input(xp):
    a = xp.make(np.array(2.5))
    got = lsearray.logsumexp(a)
    xp.check(got, a, "float64", (), scalar=True)
    assert_values(xp.to_numpy(got), 2.5, "float64")
    got = lsearray.logmeanexp(a)
    xp.check(got, a, "float64", (), scalar=True)
    assert_values(xp.to_numpy(got), 2.5, "float64")
    got = lsearray.softmax(a)
    xp.check(got, a, "float64", (), scalar=None)
    assert_values(xp.to_numpy(got), 1.0, "float64")
    got = lsearray.log_softmax(a)
    xp.check(got, a, "float64", (), scalar=None)
    assert_values(xp.to_numpy(got), 0.0, "float64")


def test_strided_and_transposed_views(xp):
    xp.subset(True, jax_keep=False)  # jax arrays have no strides
    # inputs that are views in their own library: a step slice and a transpose
    big_np = data((6, 10), seed=14)
    big = xp.make(big_np)
    ns = xp.namespace(big)
    for x, x_np in [(big[:, ::2], big_np[:, ::2]),
                    (ns.permute_dims(big, (1, 0)), big_np.T),
                    (ns.permute_dims(big[1::2, 1::3], (1, 0)), big_np[1::2, 1::3].T)]:
        for axis in (0, 1, None):
            got = lsearray.logsumexp(x, axis=axis)
            check_reduction(xp, got, big, x_np, slow_logsumexp(x_np, axis=axis), "float64", axis,
                            what=f"logsumexp axis={axis}")
        got = lsearray.logmeanexp(x, axis=0)
        check_reduction(xp, got, big, x_np, slow_logmeanexp(x_np, axis=0), "float64", 0,
                        what="logmeanexp")
        got = lsearray.softmax(x, axis=1)
        xp.check(got, big, "float64", x_np.shape, what="softmax")
        assert_values(xp.to_numpy(got), slow_softmax(x_np, axis=1), "float64", "softmax")
        got = lsearray.log_softmax(x, axis=0)
        xp.check(got, big, "float64", x_np.shape, what="log_softmax")
        assert_values(xp.to_numpy(got), slow_log_softmax(x_np, axis=0), "float64", "log_softmax")
    np.testing.assert_array_equal(xp.to_numpy(big), big_np, err_msg="input was modified")


def test_small_results_keep_relative_accuracy(xp):
    xp.subset(True, jax_keep=False)
    # logsumexp results near 0 must not be rounded to 0: NumPy's values are log1p-accurate and
    # every backend must agree with them to rtol 1e-12 with no absolute slack
    t = math.log1p(math.exp(-50.0))
    a = xp.make(np.array([[0.0, -50.0], [-50.0, 0.0]]))
    tight = dict(rtol=1e-12, atol=0)
    np.testing.assert_allclose(xp.to_numpy(lsearray.logsumexp(a, axis=1)), [t, t], **tight)
    value, sign = lsearray.logsumexp(a, axis=0, return_sign=True)
    np.testing.assert_allclose(xp.to_numpy(value), [t, t], **tight)
    b = xp.make(np.array([[1.0, 1e-20], [1e-20, 1.0]]))
    a1 = xp.make(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(xp.to_numpy(lsearray.logsumexp(a1, axis=1, b=b)),
                               [math.log1p(1e-20 * math.exp(-1.0))] * 2, **tight)
    np.testing.assert_allclose(xp.to_numpy(lsearray.logsumexp(a1, axis=1, temperature=0.02)),
                               [0.02 * math.log1p(math.exp(-50.0))] * 2, **tight)


def test_log_softmax_near_zero_matches_numpy_path(xp):
    xp.subset(True, jax_keep=False)
    # log_softmax([0, -50]) = [-log1p(e^-50), -50 - log1p(e^-50)]; the NumPy path gives the
    # first element to full relative accuracy (-1.93e-22), so every backend must (not 0.0)
    t = math.log1p(math.exp(-50.0))
    a_np = np.array([[0.0, -50.0], [-50.0, 0.0]])
    a = xp.make(a_np)
    expected = [[-t, -50.0 - t], [-50.0 - t, -t]]
    numpy_value = lsearray.log_softmax(a_np, axis=1)
    np.testing.assert_allclose(numpy_value, expected, rtol=1e-12, atol=0, err_msg="NumPy path")
    np.testing.assert_allclose(xp.to_numpy(lsearray.log_softmax(a, axis=1)), expected,
                               rtol=1e-12, atol=0, err_msg=f"log_softmax on {xp.name}")


# ---- dtypes -------------------------------------------------------------------------------------

DEFAULT = "default real floating"

DTYPE_CASES = [
    ("int64", None, DEFAULT), ("int32", None, DEFAULT), ("int8", None, DEFAULT),
    ("uint8", None, DEFAULT), ("bool", None, DEFAULT),
    ("float32", None, "float32"), ("float64", None, "float64"),
    ("float16", None, "float16"), ("bfloat16", None, "bfloat16"),
    ("float32", "float64", "float64"), ("float64", "float32", "float64"),
    ("float32", "float32", "float32"), ("float16", "float32", "float32"),
    ("float16", "float16", "float16"), ("int64", "int64", DEFAULT), ("bool", "bool", DEFAULT),
]


def _values_for(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith("int") or dtype.startswith("uint"):
        return rng.integers(0 if dtype.startswith("u") else -3, 4, shape).astype(dtype)
    if dtype == "bfloat16":
        # values exactly representable in bfloat16 (8 significant bits)
        return (np.round(rng.standard_normal(shape) * 16) / 16).astype(np.float32)
    return (rng.standard_normal(shape) * 2).astype(dtype)


@pytest.mark.parametrize("a_dtype, b_dtype, out_dtype", DTYPE_CASES,
                         ids=[f"{a}-{b}" for a, b, _ in DTYPE_CASES])
def test_result_dtype(xp, a_dtype, b_dtype, out_dtype):
    if a_dtype == "bfloat16" and xp.name != "torch":
        pytest.skip("bfloat16 is tested on torch")
    xp.subset((a_dtype, b_dtype) in (("int64", None), ("bool", None), ("float32", None),
                                     ("float16", None), ("float32", "float64"), ("float16", "float32")),
              jax_keep=(a_dtype, b_dtype) in (("int64", None), ("float16", None), ("float32", "float64")))
    shape = SHAPE
    a_np = _values_for(a_dtype, shape, 7)
    a = xp.make(a_np, a_dtype)
    b_np = None if b_dtype is None else np.abs(_values_for(b_dtype, (5,), 8)) + (b_dtype != "bool")
    if b_dtype == "bool":
        b_np = np.array([True, False, True, True, True])
    b = None if b_np is None else xp.make(b_np, b_dtype)
    if out_dtype == DEFAULT:
        out_dtype = xp.default_float(a)
    ref_a = xp.to_numpy(a).astype(np.float64)
    ref_b = None if b is None else xp.to_numpy(b).astype(np.float64)

    for axis, shp in ((1, (3, 5)), (None, ())):
        got = lsearray.logsumexp(a, axis=axis, b=b)
        xp.check(got, a, out_dtype, shp, scalar=True, what="logsumexp")
        assert_values(xp.to_numpy(got), slow_logsumexp(ref_a, axis=axis, b=ref_b), out_dtype,
                      "logsumexp")
        value, sign = lsearray.logsumexp(a, axis=axis, b=b, return_sign=True)
        xp.check(value, a, out_dtype, shp, scalar=True, what="logsumexp value")
        xp.check(sign, a, out_dtype, shp, scalar=True, what="logsumexp sign")
        got = lsearray.logmeanexp(a, axis=axis, b=b)
        xp.check(got, a, out_dtype, shp, scalar=True, what="logmeanexp")
        assert_values(xp.to_numpy(got), quiet(slow_logmeanexp, ref_a, axis=axis, b=ref_b),
                      out_dtype, "logmeanexp")
    if b is None:
        got = lsearray.softmax(a, axis=1)
        xp.check(got, a, out_dtype, shape, what="softmax")
        assert_values(xp.to_numpy(got), slow_softmax(ref_a, axis=1), out_dtype, "softmax")
        got = lsearray.log_softmax(a, axis=(0, 2))
        xp.check(got, a, out_dtype, shape, what="log_softmax")
        assert_values(xp.to_numpy(got), slow_log_softmax(ref_a, axis=(0, 2)), out_dtype,
                      "log_softmax")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_computes_in_float32(xp, dtype):
    # 3000 equal terms: exp(a - m) sums to 3000, exact in float32; a float16 running sum of ones
    # sticks at 2048 (spacing 2 above it), so summing in float16 would give about log(2048).
    if dtype == "bfloat16" and xp.name != "torch":
        pytest.skip("bfloat16 is tested on torch")
    a_np = np.zeros((2, 3000), dtype=np.float32)
    a = xp.make(a_np, dtype)
    got = lsearray.logsumexp(a, axis=1)
    xp.check(got, a, dtype, (2,))
    assert_values(xp.to_numpy(got), [math.log(3000.0)] * 2, dtype)
    got = lsearray.softmax(a, axis=1)
    xp.check(got, a, dtype, (2, 3000))
    assert_values(xp.to_numpy(got), np.full((2, 3000), 1 / 3000), dtype)
    got = lsearray.log_softmax(a, axis=1)
    assert_values(xp.to_numpy(got), np.full((2, 3000), -math.log(3000.0)), dtype)
    got = lsearray.logmeanexp(a, axis=1)
    xp.check(got, a, dtype, (2,))
    assert_values(xp.to_numpy(got), [0.0, 0.0], dtype)


# ---- mixing namespaces --------------------------------------------------------------------------

MIXED = [
    ("numpy", "torch"), ("torch", "numpy"), ("torch", "jax"), ("jax", "torch"),
    ("numpy", "array_api_strict"), ("array_api_strict", "numpy"), ("jax", "numpy"),
    ("numpy", "jax"), ("array_api_strict", "torch"), ("dask", "torch"), ("torch", "dask"),
]


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp"])
@pytest.mark.parametrize("a_name, b_name", MIXED, ids=[f"{a}-a-{b}-b" for a, b in MIXED])
def test_mixed_namespaces_raise_type_error(a_name, b_name, func):
    xa, xb = make_backend(a_name), make_backend(b_name)
    a = xa.make(np.zeros((2, 3)))
    b = xb.make(np.ones((2, 3)))
    with pytest.raises(TypeError):
        getattr(lsearray, func)(a, axis=1, b=b)


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict", "dask"])
def test_python_scalar_weight_is_not_a_namespace(name):
    x = make_backend(name)
    a = x.make(np.zeros(4))
    got = lsearray.logsumexp(a, b=2.0)
    x.check(got, a, "float64", (), scalar=True)
    assert_values(x.to_numpy(got), math.log(8.0), "float64")


# ---- devices ------------------------------------------------------------------------------------

def test_array_api_strict_non_default_device():
    s = pytest.importorskip("array_api_strict")
    xp = make_backend("array_api_strict")
    dev = s.Device("device1")
    a_np = data((3, 4), seed=9)
    a = xp.make(a_np, device=dev)
    b = xp.make(np.full((3, 4), 0.5), device=dev)
    assert xp.device(a) == dev
    for got, ref, shape in [
        (lsearray.logsumexp(a, axis=1), slow_logsumexp(a_np, axis=1), (3,)),
        (lsearray.logsumexp(a, axis=1, b=b), slow_logsumexp(a_np, axis=1, b=0.5), (3,)),
        (lsearray.logsumexp(a, axis=0, return_sign=True)[1], np.ones(4), (4,)),
        (lsearray.logsumexp(a), slow_logsumexp(a_np), ()),
        (lsearray.logmeanexp(a, axis=0, temperature=2.0), slow_logmeanexp(a_np, axis=0, temperature=2.0), (4,)),
        (lsearray.softmax(a, axis=1), slow_softmax(a_np, axis=1), (3, 4)),
        (lsearray.log_softmax(a, axis=1), slow_log_softmax(a_np, axis=1), (3, 4)),
    ]:
        xp.check(got, a, "float64", shape)
        assert xp.device(got) == dev
        assert_values(xp.to_numpy(got), ref, "float64")


# ---- dask: lazy, chunked ------------------------------------------------------------------------

def _counting_dask_array(a_np, chunks):
    da = pytest.importorskip("dask.array")
    calls = {"n": 0}

    def block(x):
        calls["n"] += 1
        return x

    base = da.from_array(a_np, chunks=chunks)
    meta = np.empty((0,) * a_np.ndim, dtype=a_np.dtype)
    return base.map_blocks(block, dtype=a_np.dtype, meta=meta), calls


@pytest.mark.parametrize("func, kwargs", [
    ("logsumexp", dict(axis=1)), ("logsumexp", dict()), ("logsumexp", dict(axis=(0, 1), keepdims=True)),
    ("logmeanexp", dict(axis=0)), ("softmax", dict(axis=1)), ("log_softmax", dict(axis=0)),
    ("logsumexp", dict(axis=1, temperature=2.0)),
])
def test_dask_stays_lazy(func, kwargs):
    da = pytest.importorskip("dask.array")
    a_np = data((6, 8), seed=10)
    a, calls = _counting_dask_array(a_np, (2, 3))
    got = getattr(lsearray, func)(a, **kwargs)
    assert isinstance(got, da.Array), f"{func} returned {type(got)}, not a dask array"
    assert calls["n"] == 0, f"{func} computed {calls['n']} chunks on call"
    values = np.asarray(got.compute())
    assert calls["n"] > 0
    ref = {"logsumexp": slow_logsumexp, "logmeanexp": slow_logmeanexp,
           "softmax": slow_softmax, "log_softmax": slow_log_softmax}[func](a_np, **kwargs)
    assert_values(values, ref, "float64")


def test_dask_stays_lazy_with_weights_and_sign():
    da = pytest.importorskip("dask.array")
    a_np = data((6, 8), seed=11)
    b_np = np.random.default_rng(12).uniform(-1.0, 1.0, (6, 8))
    a, calls_a = _counting_dask_array(a_np, (4, 3))
    b, calls_b = _counting_dask_array(b_np, (3, 5))       # chunked unlike a
    value, sign = lsearray.logsumexp(a, axis=1, b=b, return_sign=True)
    assert isinstance(value, da.Array) and isinstance(sign, da.Array)
    got = lsearray.logmeanexp(a, axis=0, b=b)
    assert isinstance(got, da.Array)
    assert calls_a["n"] == 0 and calls_b["n"] == 0
    ref_value, ref_sign = slow_logsumexp(a_np, axis=1, b=b_np, return_sign=True)
    assert_values(value.compute(), ref_value, "float64")
    assert_values(sign.compute(), ref_sign, "float64")
    assert_values(got.compute(), quiet(slow_logmeanexp, a_np, axis=0, b=b_np), "float64")
    assert calls_a["n"] > 0 and calls_b["n"] > 0


def test_dask_awkward_chunks():
    # size-0 chunks, a chunk that is all -inf, a chunk holding only +inf or nan, b chunked differently
    da = pytest.importorskip("dask.array")
    a_np = np.array([[-inf, -inf, 0.5, 1.0, -2.0, 3.0, 0.0],
                     [-inf, -inf, -inf, -inf, -inf, -inf, -inf],
                     [1.0, 2.0, inf, -1.0, 0.0, 0.0, 0.0],
                     [1.0, 2.0, 3.0, 4.0, nan, 0.0, 0.0]])
    b_np = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                     [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                     [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                     [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]])
    a = da.from_array(a_np, chunks=((1, 0, 3), (2, 0, 2, 3)))
    b = da.from_array(b_np, chunks=((2, 2), (3, 4)))
    for axis in (1, 0, None, (0, 1)):
        got = lsearray.logsumexp(a, axis=axis, b=b)
        assert isinstance(got, da.Array)
        assert_values(got.compute(), slow_logsumexp(a_np, axis=axis, b=b_np), "float64",
                      f"logsumexp axis={axis}")
        value, sign = lsearray.logsumexp(a, axis=axis, return_sign=True)
        ref_value, ref_sign = slow_logsumexp(a_np, axis=axis, return_sign=True)
        assert_values(value.compute(), ref_value, "float64", f"value axis={axis}")
        assert_values(sign.compute(), ref_sign, "float64", f"sign axis={axis}")
        got = lsearray.logmeanexp(a, axis=axis)
        assert_values(got.compute(), quiet(slow_logmeanexp, a_np, axis=axis), "float64",
                      f"logmeanexp axis={axis}")
    for axis in (1, 0):
        assert_values(lsearray.softmax(a, axis=axis).compute(), quiet(slow_softmax, a_np, axis=axis),
                      "float64", f"softmax axis={axis}")
        assert_values(lsearray.log_softmax(a, axis=axis).compute(),
                      quiet(slow_log_softmax, a_np, axis=axis), "float64", f"log_softmax axis={axis}")


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp", "softmax", "log_softmax"])
def test_dask_unknown_chunk_sizes(func):
    # boolean-mask selection gives chunks of unknown (nan) size; every function must stay lazy and
    # give the values of the computed selection (logmeanexp must not divide by a nan count)
    da = pytest.importorskip("dask.array")
    x_np = data((40,), seed=15)
    x = da.from_array(x_np, chunks=7)
    y = x[x > 0]
    y_np = x_np[x_np > 0]
    assert math.isnan(y.shape[0])
    ref = {"logsumexp": slow_logsumexp, "logmeanexp": slow_logmeanexp,
           "softmax": slow_softmax, "log_softmax": slow_log_softmax}[func]
    got = getattr(lsearray, func)(y)
    assert isinstance(got, da.Array), f"{func}: {type(got)}"
    assert_values(np.asarray(got.compute(scheduler="synchronous")), ref(y_np), "float64", func)


def test_dask_float32_chunks_accumulate_accurately():
    # many float32 chunks: partials must not lose precision when merged (1e-5 relative)
    da = pytest.importorskip("dask.array")
    a_np = data((40_000,), "float32", seed=13)
    a = da.from_array(a_np, chunks=1000)
    got = lsearray.logsumexp(a)
    assert isinstance(got, da.Array) and got.dtype == np.float32 and got.shape == ()
    assert_values(got.compute(), slow_logsumexp(a_np), "float32")
    assert_values(lsearray.logmeanexp(a).compute(), slow_logmeanexp(a_np), "float32")


def test_tolerances_helper_is_strict_for_float64():
    # guard against a silently loose comparison helper
    assert tolerances("float64")["rtol"] <= 1e-12
    with pytest.raises(AssertionError):
        assert_values([1.0 + 1e-10], [1.0], "float64")
    with pytest.raises(AssertionError):
        assert_values([nan], [inf], "float64")


def test_log_softmax_of_an_infinite_max_at_a_tiny_temperature(xp):
    """A finite x / tau overflows float32 at tau = 1e-300; minus log|S| = inf it is -inf
    (scipy's value), not inf - inf = nan."""
    a = np.array([[np.inf, 1.0], [1.0, -np.inf]])
    got = lsearray.log_softmax(xp.make(a, "float32"), axis=None, temperature=1e-300)
    np.testing.assert_array_equal(xp.to_numpy(got), [[np.nan, -np.inf], [-np.inf, -np.inf]])


def test_weights_whose_sums_overflow(xp):
    """Sums of weights beyond float64's maximum are kept in units of a power of two: the
    log-sum-exp is log(1.7e308 * (1 + e^-1)) and the mean log((1 + e^-1) / 2), where
    plain sums give inf and nan. A weight below the smallest normal on the max still
    counts when the others' terms underflow (tau far below the gaps)."""
    a, b = np.array([0.0, -1.0]), np.array([1.7e308, 1.7e308])
    with mpmath.workdps(50):
        want = float(mpmath.log(mpmath.mpf(1.7e308) * (1 + mpmath.exp(-1))))
        want_mean = float(mpmath.log((1 + mpmath.exp(-1)) / 2))
    got = lsearray.logsumexp(xp.make(a, "float64"), b=xp.make(b, "float64"))
    np.testing.assert_allclose(xp.to_numpy(got), want, rtol=1e-15)
    got = lsearray.logmeanexp(xp.make(a, "float64"), b=xp.make(b, "float64"))
    np.testing.assert_allclose(xp.to_numpy(got), want_mean, rtol=1e-14)
    if xp.name != "jax":  # XLA flushes subnormal numbers to 0
        a, b = np.array([-28.5, -61.2]), np.array([5e-324, 1.7976931348623157e308])
        got = lsearray.logsumexp(xp.make(a, "float64"), b=xp.make(b, "float64"), temperature=1e-48)
        assert xp.to_numpy(got) == -28.5


def test_mean_weights_near_the_float_maximum(xp):
    """logmeanexp with weights whose products or sums approach the float maximum: a
    subnormal weight on the max still holds the result where the weights' sum does not
    overflow, and a mean near the max whose expm1 sums would overflow takes the log of
    the mean instead (mpmath's values)."""
    if xp.name != "jax":  # XLA flushes subnormal numbers to 0
        a, b = np.array([-28.5, -61.2]), np.array([5e-324, 1.797e308])
        got = lsearray.logmeanexp(xp.make(a, "float64"), b=xp.make(b, "float64"), temperature=1e-48)
        assert xp.to_numpy(got) == -28.5
    a, b = np.array([0.0, -1000.0]), np.array([1e306, 1e306])
    with mpmath.workdps(50):
        want = float(1e4 * mpmath.log((1 + mpmath.exp(mpmath.mpf(-1000) / 1e4)) / 2))
    got = lsearray.logmeanexp(xp.make(a, "float64"), b=xp.make(b, "float64"), temperature=1e4)
    np.testing.assert_allclose(xp.to_numpy(got), want, rtol=1e-11)
