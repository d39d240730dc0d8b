"""Special values with expected results derived by hand / in closed form (never computed by lsearray)."""

import math
import warnings

import mpmath
import numpy as np
import pytest

import lsearray
from reference import mp_lse_exact

inf = math.inf
nan = math.nan
LOG2 = math.log(2.0)


def closed(expr):
    """Round an mpmath expression (a lambda evaluated at 60 digits) to float64."""
    with mpmath.workdps(60):
        return float(expr())


def assert_close(got, expected, ulps=1.0, what="value", dtype=np.float64):
    """got == expected within `ulps` units in the last place (of `dtype`) of expected.

    inf and nan must match exactly; ulps=0 asks for exact equality.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    for g, e in zip(got.ravel().tolist(), expected.ravel().tolist()):
        if math.isnan(e):
            assert math.isnan(g), f"{what}: got {g!r}, expected nan"
        elif math.isinf(e) or ulps == 0:
            assert g == e, f"{what}: got {g!r}, expected {e!r} exactly"
        else:
            tol = ulps * float(np.spacing(np.dtype(dtype).type(abs(e))))
            assert abs(g - e) <= tol, f"{what}: got {g!r}, expected {e!r} (within {ulps} ulp)"


# (id, a, kwargs, expected value without return_sign, (value, sign) with return_sign, ulps)
LSE_TABLE = [
    ("one-dominant-0-50", [0.0, -50.0], {}, math.log1p(math.exp(-50.0)), None, 0),
    ("all-neginf", [-inf, -inf], {}, -inf, (-inf, 0.0), 0),
    ("empty", [], {}, -inf, (-inf, 0.0), 0),
    ("single-0", [0.0], {}, 0.0, (0.0, 1.0), 0),
    ("single-5", [5.0], {}, 5.0, (5.0, 1.0), 0),
    ("neginf-and-0", [-inf, 0.0], {}, 0.0, (0.0, 1.0), 0),
    ("posinf-and-1", [inf, 1.0], {}, inf, (inf, 1.0), 0),
    ("posinf-and-neginf", [inf, -inf], {}, inf, (inf, 1.0), 0),
    ("posinf-and-nan", [inf, nan], {}, nan, (nan, nan), 0),
    ("nan-and-1", [nan, 1.0], {}, nan, (nan, nan), 0),
    ("nan-removed-by-b0", [nan, 1.0], {"b": [0.0, 1.0]}, 1.0, (1.0, 1.0), 0),
    ("inf-removed-by-b0", [inf, 1.0], {"b": [0.0, 1.0]}, 1.0, (1.0, 1.0), 0),
    ("nan-removed-keeps-inf", [inf, nan], {"b": [1.0, 0.0]}, inf, (inf, 1.0), 0),
    # b == 0 removes the element even when it is the only one: an empty sum (scipy gives nan here)
    ("only-nan-removed", [nan], {"b": [0.0]}, -inf, (-inf, 0.0), 0),
    ("only-inf-removed", [inf], {"b": [0.0]}, -inf, (-inf, 0.0), 0),
    ("all-weights-zero", [1.0, 2.0], {"b": [0.0, 0.0]}, -inf, (-inf, 0.0), 0),
    ("neginf-with-weight-rest-removed", [-inf, 1.0], {"b": [1.0, 0.0]}, -inf, (-inf, 0.0), 0),
    ("nan-weight", [1.0, 2.0], {"b": [nan, 1.0]}, nan, (nan, nan), 0),
    ("inf-weight", [1.0, 2.0], {"b": [inf, 1.0]}, inf, (inf, 1.0), 0),
    ("minus-inf-weight", [1.0, 2.0], {"b": [-inf, 1.0]}, nan, (inf, -1.0), 0),
    ("inf-weights-both-signs", [1.0, 2.0, 3.0], {"b": [inf, 1.0, -inf]}, nan, (nan, nan), 0),
    ("inf-weight-on-neginf", [-inf, 2.0], {"b": [inf, 1.0]}, nan, (nan, nan), 0),
    ("zero-total", [1.0, 1.0], {"b": [1.0, -1.0]}, -inf, (-inf, 0.0), 0),
    ("negative-total", [1.0, 2.0], {"b": [1.0, -1.0]}, nan,
     (closed(lambda: mpmath.log(mpmath.e ** 2 - mpmath.e)), -1.0), 1),
    ("negative-single", [2.0], {"b": [-1.0]}, nan, (2.0, -1.0), 0),
    ("negative-inf", [inf], {"b": [-1.0]}, nan, (inf, -1.0), 0),
    ("inf-minus-inf", [inf, inf], {"b": [1.0, -1.0]}, nan, (nan, nan), 0),
    ("ties-1000", [1000.0, 1000.0], {}, closed(lambda: 1000 + mpmath.log(2)), None, 1),
    ("ties-1e308", [1e308, 1e308], {}, 1e308, (1e308, 1.0), 0),
    ("ties-minus-1e308", [-1e308, -1e308], {}, -1e308, None, 0),
    ("big-and-small", [1e308, -1e308], {}, 1e308, None, 0),
    ("log2-log3", [math.log(2.0), math.log(3.0)], {}, closed(lambda: mpmath.log(5)), None, 2),
    ("zeros-1000", [0.0] * 1000, {}, closed(lambda: mpmath.log(1000)), None, 1),
    ("weights-log", [0.0, 0.0], {"b": [2.0, 3.0]}, closed(lambda: mpmath.log(5)), None, 2),
    ("weight-on-max", [0.0, -50.0], {"b": [0.5, 1.0]},
     closed(lambda: mpmath.log(mpmath.mpf(0.5) + mpmath.exp(-50))), None, 1),
    ("underflowing-terms", [-800.0, -800.0], {}, closed(lambda: -800 + mpmath.log(2)), None, 1),
    ("subnormal-range", [-745.0, -746.0, -747.0], {},
     closed(lambda: mpmath.log(mpmath.exp(-745) + mpmath.exp(-746) + mpmath.exp(-747))), None, 1),
    # temperature
    ("tau2-zeros", [0.0, 0.0], {"temperature": 2.0}, 2 * LOG2, None, 1),
    ("tau2-1-3", [1.0, 3.0], {"temperature": 2.0},
     closed(lambda: 2 * mpmath.log(mpmath.exp(0.5) + mpmath.exp(1.5))), None, 1),
    ("tau0.5-one-dominant", [0.0, -50.0], {"temperature": 0.5},
     closed(lambda: mpmath.log1p(mpmath.exp(-100)) / 2), None, 1),
    ("tau0.5-negative-total", [1.0, 2.0], {"b": [1.0, -1.0], "temperature": 0.5}, nan,
     (closed(lambda: mpmath.log(mpmath.e ** 4 - mpmath.e ** 2) / 2), -1.0), 1),
    ("tau-tiny-is-max", [1.0, 2.0], {"temperature": 1e-3}, 2.0, None, 0),
    ("tau-huge-is-tau-log-n", [1.0, 2.0], {"temperature": 1e300},
     closed(lambda: mpmath.mpf(1e300) * mpmath.log(mpmath.exp(mpmath.mpf(1) / mpmath.mpf(1e300))
                                                   + mpmath.exp(mpmath.mpf(2) / mpmath.mpf(1e300)))),
     None, 2),
    ("tau3-posinf", [inf, 1.0], {"temperature": 3.0}, inf, (inf, 1.0), 0),
    ("tau3-empty", [], {"temperature": 3.0}, -inf, (-inf, 0.0), 0),
    ("tau3-nan", [nan, 1.0], {"temperature": 3.0}, nan, (nan, nan), 0),
]


@pytest.mark.parametrize("a, kwargs, expected, signed, ulps",
                         [pytest.param(*row[1:], id=row[0]) for row in LSE_TABLE])
def test_logsumexp_special_values(a, kwargs, expected, signed, ulps):
    got = lsearray.logsumexp(np.array(a, dtype=np.float64), **kwargs)
    assert isinstance(got, np.float64), f"full reduction should be np.float64, got {type(got)}"
    assert_close(got, expected, ulps)
    if signed is not None:
        value, sign = lsearray.logsumexp(np.array(a, dtype=np.float64), return_sign=True, **kwargs)
        assert isinstance(value, np.float64) and isinstance(sign, np.float64)
        assert_close(value, signed[0], ulps, "value")
        assert_close(sign, signed[1], 0, "sign")


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("a, b, expected, sign", [
    pytest.param([-inf, -inf], None, -inf, 0.0, id="all-neginf"),
    pytest.param([], None, -inf, 0.0, id="empty"),
    pytest.param([inf, 1.0], None, inf, 1.0, id="posinf"),
    pytest.param([nan, 1.0], None, nan, nan, id="nan"),
    pytest.param([nan, 1.0], [0.0, 1.0], 1.0, 1.0, id="nan-removed"),
    pytest.param([1.0, 1.0], [1.0, -1.0], -inf, 0.0, id="zero-total"),
    pytest.param([inf], [-1.0], inf, -1.0, id="negative-inf"),
    pytest.param([0.0, 0.0, 0.0, 0.0], None, 2 * LOG2, 1.0, id="log4"),
])
def test_logsumexp_special_values_low_precision(dtype, a, b, expected, sign):
    a = np.array(a, dtype=dtype)
    b = None if b is None else np.array(b, dtype=dtype)
    value, sgn = lsearray.logsumexp(a, b=b, return_sign=True)
    assert type(value) is np.dtype(dtype).type and type(sgn) is np.dtype(dtype).type
    assert_close(value, np.asarray(expected, dtype=dtype), 1, "value", dtype=dtype)
    assert_close(sgn, sign, 0, "sign")


def test_one_dominant_term_is_log1p_exactly():
    # m + log(1 + t) would round to 0; the kernel must carry t and use log1p
    assert lsearray.logsumexp(np.array([0.0, -50.0])) == math.log1p(math.exp(-50.0))
    assert lsearray.logsumexp(np.array([-50.0, 0.0])) == math.log1p(math.exp(-50.0))
    assert lsearray.logsumexp(np.array([0.0, -30.0, -40.0])) == closed(
        lambda: mpmath.log1p(mpmath.exp(-30) + mpmath.exp(-40)))


def test_rows_with_special_values_2d():
    a = np.array([[inf, 1.0], [-inf, -inf], [nan, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    value, sign = lsearray.logsumexp(a, axis=1, b=b, return_sign=True)
    assert_close(value, [inf, -inf, nan, LOG2, -inf], 1)
    assert_close(sign, [1.0, 0.0, nan, 1.0, 0.0], 0)
    got = lsearray.logsumexp(a, axis=1, b=b)
    assert_close(got, [inf, -inf, nan, LOG2, -inf], 1)
    # reducing an empty axis gives -inf with sign 0 everywhere
    value, sign = lsearray.logsumexp(np.zeros((3, 0)), axis=1, return_sign=True)
    assert_close(value, [-inf] * 3, 0)
    assert_close(sign, [0.0] * 3, 0)


# ---- result types -----------------------------------------------------------------------------

@pytest.mark.parametrize("a, expected_type", [
    pytest.param([1.0, 2.0], np.float64, id="list"),
    pytest.param([1, 2], np.float64, id="int-list"),
    pytest.param(3.0, np.float64, id="python-float"),
    pytest.param(3, np.float64, id="python-int"),
    pytest.param(np.float32(3.0), np.float32, id="np-float32-scalar"),
    pytest.param(np.array(3.0), np.float64, id="0d-float64"),
    pytest.param(np.array([1, 2], dtype=np.int8), np.float64, id="int8"),
    pytest.param(np.array([True, False]), np.float64, id="bool"),
    pytest.param(np.array([1, 2], dtype=np.float32), np.float32, id="float32"),
    pytest.param(np.array([1, 2], dtype=np.float16), np.float16, id="float16"),
    pytest.param(np.array([[1, 2]], dtype=np.float32), np.float32, id="float32-2d"),
])
def test_full_reduction_returns_numpy_scalar(a, expected_type):
    got = lsearray.logsumexp(a)
    assert type(got) is expected_type
    value, sign = lsearray.logsumexp(a, return_sign=True)
    assert type(value) is expected_type and type(sign) is expected_type
    assert sign == 1
    assert type(lsearray.logmeanexp(a)) is expected_type
    # scalars: logsumexp(x) == x; [1, 2]: log(e + e^2) = 2 + log1p(e^-1)
    flat = np.asarray(a, dtype=np.float64).ravel()
    expected = flat[0] if flat.size == 1 else np.logaddexp(flat[0], flat[1])
    np.testing.assert_allclose(float(got), expected, rtol=1e-3 if expected_type is np.float16 else 1e-6)


@pytest.mark.parametrize("b", [2.0, 2], ids=["python-float", "python-int"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
def test_python_scalar_b_keeps_low_precision_dtype(dtype, b):
    # Python scalars are "weak" (NEP 50): scipy returns float32 / float16 here
    a = np.zeros(4, dtype=dtype)
    got = lsearray.logsumexp(a, b=b)
    assert type(got) is np.dtype(dtype).type
    assert_close(got, np.asarray(math.log(8.0), dtype=dtype), 1, dtype=dtype)
    got = lsearray.logmeanexp(a, b=b)
    assert type(got) is np.dtype(dtype).type
    assert abs(float(got)) <= 4 * float(np.finfo(dtype).eps)


@pytest.mark.parametrize("a", [3.0, 3, True], ids=["python-float", "python-int", "python-bool"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
def test_python_scalar_a_keeps_the_dtype_of_b(dtype, a):
    # Weak on either side (NEP 50): scipy 1.17 gives logsumexp(3.0, b=np.float32(2.0)) in float32
    expected = float(a) + math.log(2.0)
    got = lsearray.logsumexp(a, b=dtype(2.0))
    assert type(got) is dtype
    assert_close(got, np.asarray(expected, dtype=dtype), 1, dtype=dtype)
    value, sign = lsearray.logsumexp(a, b=np.array([1.5, 0.5], dtype=dtype), return_sign=True)
    assert type(value) is dtype and type(sign) is dtype and sign == 1
    assert_close(value, np.asarray(expected, dtype=dtype), 1, dtype=dtype)
    got = lsearray.logmeanexp(a, b=dtype(2.0))
    assert type(got) is dtype
    assert_close(got, np.asarray(float(a), dtype=dtype), 1, dtype=dtype)


def test_python_scalars_on_both_sides_are_float64():
    got = lsearray.logsumexp(3.0, b=2)
    assert type(got) is np.float64
    assert_close(got, 3.0 + LOG2, 1)
    assert type(lsearray.logsumexp(3, b=np.int8(2))) is np.float64  # integers give float64


def test_0d_keepdims_is_1d():
    got = lsearray.logsumexp(np.array(2.0), keepdims=True)
    assert isinstance(got, np.ndarray) and got.shape == (1,) and got.dtype == np.float64
    assert got[0] == 2.0


# ---- softmax / log_softmax -------------------------------------------------------------------

SOFTMAX_TABLE = [
    ("posinf", [inf, 1.0], {}, [nan, nan], [nan, -inf]),
    ("two-posinf", [inf, inf], {}, [nan, nan], [nan, nan]),
    ("all-neginf", [-inf, -inf], {}, [nan, nan], [nan, nan]),
    ("neginf-and-1", [-inf, 1.0], {}, [0.0, 1.0], [-inf, 0.0]),
    ("nan", [nan, 1.0], {}, [nan, nan], [nan, nan]),
    ("ties-1000", [1000.0, 1000.0], {}, [0.5, 0.5], [-LOG2, -LOG2]),
    ("far-apart", [1000.0, 1.0], {}, [1.0, 0.0], [0.0, -999.0]),
    ("log3", [0.0, math.log(3.0)], {}, [0.25, 0.75],
     [closed(lambda: -mpmath.log(4)), closed(lambda: mpmath.log(3) - mpmath.log(4))]),
    ("single", [7.0], {}, [1.0], [0.0]),
    ("tau2-log3", [0.0, 2 * math.log(3.0)], {"temperature": 2.0}, [0.25, 0.75],
     [closed(lambda: -mpmath.log(4)), closed(lambda: mpmath.log(3) - mpmath.log(4))]),
    ("tau5-ties", [1.0, 1.0], {"temperature": 5.0}, [0.5, 0.5], [-LOG2, -LOG2]),
    ("tau-small-hardmax", [1.0, 2.0], {"temperature": 1e-3}, [0.0, 1.0], [-1000.0, 0.0]),
    ("tau0.5-posinf", [inf, 1.0], {"temperature": 0.5}, [nan, nan], [nan, -inf]),
]


@pytest.mark.parametrize("x, kwargs, soft, logsoft",
                         [pytest.param(*row[1:], id=row[0]) for row in SOFTMAX_TABLE])
def test_softmax_special_values(x, kwargs, soft, logsoft):
    x = np.array(x)
    got = lsearray.softmax(x, **kwargs)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == x.shape
    assert_close(got, soft, 2, "softmax")
    got = lsearray.log_softmax(x, **kwargs)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == x.shape
    assert_close(got, logsoft, 2, "log_softmax")


def test_softmax_special_rows_2d():
    x = np.array([[inf, 1.0], [0.0, 0.0], [-inf, -inf], [-inf, 0.0]])
    assert_close(lsearray.softmax(x, axis=1), [[nan, nan], [0.5, 0.5], [nan, nan], [0.0, 1.0]], 1)
    assert_close(lsearray.log_softmax(x, axis=1),
                 [[nan, -inf], [-LOG2, -LOG2], [nan, nan], [-inf, 0.0]], 1)
    # columns: [inf, 0, -inf, -inf] and [1, 0, -inf, 0]
    assert_close(lsearray.softmax(x, axis=0)[:, 0], [nan, nan, nan, nan], 0)
    assert_close(lsearray.log_softmax(x, axis=0)[:, 0], [nan, -inf, -inf, -inf], 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
def test_softmax_keeps_low_precision_dtype(dtype):
    x = np.array([0.0, math.log(3.0)], dtype=dtype)
    got = lsearray.softmax(x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, [0.25, 0.75], rtol=2e-3)
    got = lsearray.log_softmax(x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, [-math.log(4.0), math.log(0.75)], rtol=2e-3)


def test_softmax_int_input_is_float64():
    got = lsearray.softmax(np.array([0, 0, 0, 0]))
    assert got.dtype == np.float64
    assert_close(got, [0.25] * 4, 0)


def test_softmax_choices_that_differ_from_scipy():
    """Documented choices (docs/user_guide/semantics.md): 8-bit integers give float64 (scipy: float16),
    bool counts as 0 and 1 (scipy: TypeError), empty input gives an empty array (scipy:
    ValueError)."""
    for func in (lsearray.softmax, lsearray.log_softmax):
        assert func(np.array([1, 2], dtype=np.int8)).dtype == np.float64
        got = func(np.zeros((0, 3)), axis=1)
        assert isinstance(got, np.ndarray) and got.shape == (0, 3) and got.dtype == np.float64
    p = closed(lambda: 1 / (1 + mpmath.exp(-1)))
    assert_close(lsearray.softmax(np.array([True, False])), [p, 1 - p], 1)
    assert_close(lsearray.log_softmax(np.array([True, False])),
                 [closed(lambda: -mpmath.log1p(mpmath.exp(-1))), closed(lambda: -mpmath.log1p(mpmath.e))], 1)


# ---- logmeanexp ------------------------------------------------------------------------------

LME_TABLE = [
    ("constant", [3.7] * 5, {}, 3.7, 2),
    ("constant-negative-large", [-1e4] * 7, {}, -1e4, 2),
    ("constant-one", [0.5], {}, 0.5, 0),
    ("0-log3", [0.0, math.log(3.0)], {}, LOG2, 2),
    ("neginf-and-0", [-inf, 0.0], {}, -LOG2, 2),
    ("posinf", [inf, 1.0], {}, inf, 0),
    ("nan", [nan, 1.0], {}, nan, 0),
    ("empty", [], {}, nan, 0),
    ("all-neginf", [-inf, -inf], {}, -inf, 0),
    ("weights-equal", [0.0, math.log(3.0)], {"b": [1.0, 1.0]}, LOG2, 2),
    ("weights-3-1", [0.0, math.log(3.0)], {"b": [3.0, 1.0]}, closed(lambda: mpmath.log(1.5)), 2),
    ("weights-sum-zero", [1.0, 2.0], {"b": [1.0, -1.0]}, nan, 0),
    ("weights-all-zero", [1.0, 2.0], {"b": [0.0, 0.0]}, nan, 0),
    ("weights-negative-both", [0.0, math.log(3.0)], {"b": [-1.0, -1.0]}, LOG2, 2),
    ("weights-negative-ratio", [0.0, 2.0], {"b": [-2.0, 1.0]}, nan, 0),
    ("weights-both-sums-negative", [0.0, 2.0], {"b": [1.0, -2.0]},
     closed(lambda: mpmath.log(2 * mpmath.e ** 2 - 1)), 2),
    ("weight-zero-removes-nan", [nan, 1.5, 1.5], {"b": [0.0, 1.0, 1.0]}, 1.5, 2),
    ("tau2", [0.0, 2 * math.log(3.0)], {"temperature": 2.0}, 2 * LOG2, 2),
    ("tau-small-is-max", [1.0, 2.0, 3.0], {"temperature": 1e-3},
     closed(lambda: 3 + mpmath.mpf(1e-3) * mpmath.log(mpmath.mpf(1) / 3)), 2),
]


@pytest.mark.parametrize("a, kwargs, expected, ulps",
                         [pytest.param(*row[1:], id=row[0]) for row in LME_TABLE])
def test_logmeanexp_closed_forms(a, kwargs, expected, ulps):
    got = lsearray.logmeanexp(np.array(a, dtype=np.float64), **kwargs)
    assert isinstance(got, np.float64)
    assert_close(got, expected, ulps)


def test_logmeanexp_large_temperature_is_arithmetic_mean():
    a = np.array([1.0, 2.0, 3.0, 10.0])
    # tau * log(mean(exp(a/tau))) = mean(a) + var(a)/(2 tau) + O(1/tau^2)
    for tau in (1e3, 1e5):
        got = lsearray.logmeanexp(a, temperature=tau)
        assert abs(got - (a.mean() + a.var() / (2 * tau))) < 1e-3 * (1e3 / tau) + 1e-9


def test_logmeanexp_axis_keepdims():
    c = -12.25
    a = np.array([[0.0, math.log(3.0)], [c, c]])
    got = lsearray.logmeanexp(a, axis=1, keepdims=True)
    assert got.shape == (2, 1) and got.dtype == np.float64
    assert_close(got, [[LOG2], [c]], 2)
    got = lsearray.logmeanexp(np.zeros((3, 0)), axis=1)
    assert got.shape == (3,)
    assert_close(got, [nan] * 3, 0)
    got = lsearray.logmeanexp(np.zeros((0, 3)), axis=0)
    assert_close(got, [nan] * 3, 0)


# Results beyond float32's (float16's) range: the exact value overflows the dtype, so its
# correctly rounded value is an infinity, returned silently, not with NumPy's
# "overflow encountered in cast" from rounding the float64 result. Only a temperature
# above 1 (a sum cannot add more than tau log n to the max), negative weights in a mean
# (which divide by the small sum of the weights) or log_softmax's differences x - max can
# get there. Each case: (id, input maker, exact values at 60 digits).
TAU = 1e38  # exp(x / TAU) of float32 values stays in [e^-3.4, e^3.4]


def _online(batch, tau, b=None, **kwargs):
    return lsearray.OnlineLogSumExp(axis=0, temperature=tau).update(batch, b).result(**kwargs)


OVERFLOWS = [
    ("logsumexp rows", lambda x: lsearray.logsumexp(x([[3e38, 3e38], [1.0, 2.0]]), axis=1, temperature=TAU),
     lambda: [mp_lse_exact([3e38, 3e38], None, TAU, dps=60), mp_lse_exact([1.0, 2.0], None, TAU, dps=60)]),
    ("logsumexp columns",
     lambda x: lsearray.logsumexp(x([[3e38, 1.0], [3e38, 2.0]]), axis=0, temperature=TAU),
     lambda: [mp_lse_exact([3e38, 3e38], None, TAU, dps=60), mp_lse_exact([1.0, 2.0], None, TAU, dps=60)]),
    ("logsumexp interleaved axes",
     lambda x: lsearray.logsumexp(x(np.full((2, 2, 2), 3e38)), axis=(0, 2), temperature=TAU),
     lambda: [mp_lse_exact([3e38] * 4, None, TAU, dps=60)] * 2),
    ("logsumexp weighted", lambda x: lsearray.logsumexp(x([3e38, 3e38]), b=x([1.0, 0.5]), temperature=TAU),
     lambda: mp_lse_exact([3e38, 3e38], [1.0, 0.5], TAU, dps=60)),
    ("logsumexp return_sign",
     lambda x: lsearray.logsumexp(x([3e38, 3e38]), return_sign=True, temperature=TAU),
     lambda: (mp_lse_exact([3e38, 3e38], None, TAU, dps=60), 1.0)),
    # (e^3 - 0.5) / 0.5 = 39.2: the mean is 1.22 tau above the max
    ("logmeanexp signed weights",
     lambda x: lsearray.logmeanexp(x([3e38, 0.0]), b=x([1.0, -0.5]), temperature=TAU),
     lambda: mp_lse_exact([3e38, 0.0], [2.0, -1.0], TAU, dps=60)),
    ("logcumsumexp", lambda x: lsearray.logcumsumexp(x([3e38, 3e38]), temperature=TAU),
     lambda: [3e38, mp_lse_exact([3e38, 3e38], None, TAU, dps=60)]),
    ("logaddexp", lambda x: lsearray.logaddexp(x([3e38, 1.0]), x([3e38, 2.0]), temperature=TAU),
     lambda: [mp_lse_exact([3e38, 3e38], None, TAU, dps=60), mp_lse_exact([1.0, 2.0], None, TAU, dps=60)]),
    # the max's own entry is -log(1 + e^-6e38), -0.0 after rounding
    ("log_softmax", lambda x: lsearray.log_softmax(x([3e38, -3e38])), lambda: [0.0, -6e38]),
    ("log_softmax interleaved axes",
     lambda x: lsearray.log_softmax(x([[[3e38, -3e38]], [[0.0, 0.0]]]), axis=(0, 2)),
     lambda: [[[0.0, -6e38]], [[-3e38, -3e38]]]),
    ("softmax", lambda x: lsearray.softmax(x([3e38, -3e38])), lambda: [1.0, 0.0]),
    ("logmatmulexp", lambda x: lsearray.logmatmulexp(x([[3e38, 3e38]]), x([[3e38], [0.0]])),
     lambda: [[mp_lse_exact([6e38, 3e38], None, 1.0, dps=60)]]),
    ("OnlineLogSumExp", lambda x: _online(x([3e38, 3e38]), TAU),
     lambda: mp_lse_exact([3e38, 3e38], None, TAU, dps=60)),
    ("OnlineLogSumExp return_sign", lambda x: _online(x([3e38, 3e38]), TAU, return_sign=True),
     lambda: (mp_lse_exact([3e38, 3e38], None, TAU, dps=60), 1.0)),
    ("OnlineLogSumExp mean, signed weights",
     lambda x: _online(x([3e38, 0.0]), TAU, b=x([1.0, -0.5]), mean=True),
     lambda: mp_lse_exact([3e38, 0.0], [2.0, -1.0], TAU, dps=60)),
]


def _rounded(exact, dtype):
    """The exact values (nested lists of mpf) as float64, an infinity of its sign where
    ``dtype`` rounds one to it: past its largest finite value by half a spacing or more
    (no value here comes near that boundary)."""
    top = float(np.finfo(dtype).max)
    edge = top + (top - float(np.nextafter(np.dtype(dtype).type(top), 0))) / 2
    exact = np.asarray(exact, dtype=object)
    values = [math.copysign(inf, v) if abs(v) >= edge else float(v) for v in exact.ravel()]
    return np.array(values).reshape(exact.shape)


@pytest.mark.parametrize("library", ["numpy", "dask"])
@pytest.mark.parametrize("make, exact", [pytest.param(m, e, id=name) for name, m, e in OVERFLOWS])
def test_float32_results_that_overflow_are_inf_without_warnings(make, exact, library):
    if library == "dask":
        da = pytest.importorskip("dask.array")

        def x(values):
            return da.from_array(np.array(values, dtype=np.float32), chunks=1)
    else:
        def x(values):
            return np.array(values, dtype=np.float32)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = make(x)
        got = tuple(g.compute() for g in got) if isinstance(got, tuple) and library == "dask" else got
        got = got.compute() if library == "dask" and not isinstance(got, tuple) else got
    exact = exact()
    pairs = zip(got, exact) if isinstance(exact, tuple) else [(got, exact)]
    for g, e in pairs:
        assert np.asarray(g).dtype == np.float32
        assert_close(g, _rounded(e, np.float32), 1, dtype=np.float32)


@pytest.mark.parametrize("call, exact", [
    pytest.param(lambda x: lsearray.logsumexp(x([65504.0, 65504.0]), temperature=100.0),
                 lambda: mp_lse_exact([65504.0, 65504.0], None, 100.0, dps=60), id="logsumexp"),
    pytest.param(lambda x: lsearray.logcumsumexp(x([65504.0, 65504.0]), temperature=100.0),
                 lambda: [65504.0, mp_lse_exact([65504.0, 65504.0], None, 100.0, dps=60)], id="logcumsumexp"),
    pytest.param(lambda x: lsearray.logaddexp(x([65504.0]), x([65504.0]), temperature=100.0),
                 lambda: [mp_lse_exact([65504.0, 65504.0], None, 100.0, dps=60)], id="logaddexp"),
    pytest.param(lambda x: lsearray.log_softmax(x([65504.0, -65504.0])), lambda: [0.0, -131008.0],
                 id="log_softmax"),
    pytest.param(lambda x: _online(x([65504.0, 65504.0]), 100.0),
                 lambda: mp_lse_exact([65504.0, 65504.0], None, 100.0, dps=60),
                 id="OnlineLogSumExp"),
])
def test_float16_results_that_overflow_are_inf_without_warnings(call, exact):
    """float16 computes in float32: the same rounding, from float32 to float16. The finite
    values here are exact in float16 (the spacing at its largest value would overflow)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = call(lambda values: np.array(values, dtype=np.float16))
    assert np.asarray(got).dtype == np.float16
    assert_close(got, _rounded(exact(), np.float16), 0)
