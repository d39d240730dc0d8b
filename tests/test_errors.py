"""Bad input: unsupported dtypes, b that does not broadcast, bad axes, bad temperatures; inputs untouched."""

import math
import re

import numpy as np
import pytest
from numpy.exceptions import AxisError

import lsearray
from backends import assert_values

LOG2 = math.log(2.0)

REDUCTIONS = ["logsumexp", "logmeanexp"]
ELEMENTWISE = ["softmax", "log_softmax"]
ALL_FUNCS = REDUCTIONS + ELEMENTWISE


def call(name, *args, **kwargs):
    return getattr(lsearray, name)(*args, **kwargs)


BAD_DTYPES = [
    pytest.param(np.array([1.0, 2.0], dtype=object), ("object", "O"), id="object"),
    pytest.param(np.array(["a", "bc"]), ("<U2", "U2", "str", "unicode"), id="str"),
    pytest.param(np.array([b"a", b"bc"]), ("|S2", "S2", "bytes"), id="bytes"),
    pytest.param(np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
                 ("datetime64", "M8"), id="datetime64"),
    pytest.param(np.array([1, 2], dtype="timedelta64[s]"), ("timedelta64", "m8"), id="timedelta64"),
]


def _names_dtype(names):
    return "(" + "|".join(re.escape(n) for n in names) + ")"


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("a, names", BAD_DTYPES)
def test_unsupported_dtype_raises_type_error_naming_it(name, a, names):
    before = a.tobytes()
    with pytest.raises(TypeError, match=_names_dtype(names)):
        call(name, a)
    assert a.tobytes() == before


@pytest.mark.parametrize("name", ["logsumexp", "softmax"])
def test_list_of_strings_raises_type_error(name):
    with pytest.raises(TypeError, match=_names_dtype(("<U1", "U1", "str", "unicode"))):
        call(name, ["a", "b"])


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("b, names", BAD_DTYPES)
def test_unsupported_dtype_of_b_raises_type_error(name, b, names):
    with pytest.raises(TypeError, match=_names_dtype(names)):
        call(name, np.zeros(2), b=b)


COMPLEX = [
    pytest.param(np.array([1 + 1j, 2.0]), id="complex128"),
    pytest.param(np.array([1 + 1j, 2.0], dtype=np.complex64), id="complex64"),
    pytest.param([1j, 2], id="complex-list"),
]


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("a", COMPLEX)
def test_complex_softmax_raises_type_error(name, a):
    """softmax needs an order on its input; complex input is refused by name."""
    with pytest.raises(TypeError, match="complex"):
        call(name, a)


@pytest.mark.parametrize("b", [np.array([1.0, 1j]), [1.0, 1j]], ids=["array", "list"])
def test_complex_b_follows_scipy(b):
    import scipy.special

    got = lsearray.logsumexp(np.zeros(2), b=b)
    np.testing.assert_allclose(got, scipy.special.logsumexp(np.zeros(2), b=np.asarray(b)), rtol=1e-14)


NOT_BROADCASTING = [
    pytest.param((4, 1, 2, 1), (3, 5), id="4d-vs-2d"),
    pytest.param((3,), (4,), id="1d"),
    pytest.param((2, 3), (3, 2), id="transposed"),
    pytest.param((5,), (2, 4), id="b-larger"),
]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("a_shape, b_shape", NOT_BROADCASTING)
def test_b_not_broadcasting_names_both_shapes(name, a_shape, b_shape):
    a = np.zeros(a_shape)
    b = np.ones(b_shape)
    with pytest.raises(ValueError) as excinfo:
        call(name, a, b=b)
    message = str(excinfo.value)
    assert str(a_shape) in message, message
    assert str(b_shape) in message, message


AXES_OUT_OF_RANGE = [2, -3, (0, 2), (5,), (-3, 0)]


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("axis", AXES_OUT_OF_RANGE, ids=[f"axis={ax}".replace(" ", "") for ax in AXES_OUT_OF_RANGE])
def test_axis_out_of_range_raises_axis_error(name, axis):
    with pytest.raises(AxisError):
        call(name, np.zeros((2, 3)), axis=axis)


def test_axis_out_of_range_for_0d_and_1d():
    with pytest.raises(AxisError):
        lsearray.logsumexp(np.array(1.0), axis=1)
    with pytest.raises(AxisError):
        lsearray.logsumexp(np.zeros(3), axis=-2)
    with pytest.raises(AxisError):
        lsearray.logmeanexp(np.zeros(3), axis=1)


NOT_AXES = [(1.0, "float"), ((0, 1.0), "float"), ("1", "str"), (np.float64(0.0), "float64")]


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("axis, kind", NOT_AXES, ids=[f"axis={ax!r}".replace(" ", "") for ax, _ in NOT_AXES])
def test_axis_that_is_not_an_integer_raises_type_error_naming_its_type(name, axis, kind):
    with pytest.raises(TypeError, match=rf"^{name}: axis must be an integer, a tuple of integers or None; "
                                        rf"got {kind}$"):
        call(name, np.zeros((2, 3)), axis=axis)


REPEATED = [(0, 0), (1, -1), (0, 1, 0)]


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("axis", REPEATED, ids=[f"axis={ax}".replace(" ", "") for ax in REPEATED])
def test_repeated_axis_raises_value_error(name, axis):
    with pytest.raises(ValueError, match="(?i)repeat|duplicat|more than once|unique"):
        call(name, np.zeros((2, 3)), axis=axis)


BAD_TAUS = [0.0, -0.0, -1.0, np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("tau", BAD_TAUS, ids=[repr(t) for t in BAD_TAUS])
def test_bad_temperature_raises_value_error(name, tau):
    with pytest.raises(ValueError, match="(?i)temperature"):
        call(name, np.array([1.0, 2.0]), temperature=tau)


SMALLEST_NORMAL = 2.2250738585072014e-308
TAU_MESSAGE = ("temperature must be positive, finite and at least 2.2250738585072014e-308 "
               "(the smallest normal float64); got ")
SUBNORMAL_TAUS = [5e-324, 1e-310, float(np.nextafter(SMALLEST_NORMAL, 0.0))]
TAU_FUNCS = {
    "logsumexp": lambda x, tau: lsearray.logsumexp(x, temperature=tau),
    "logmeanexp": lambda x, tau: lsearray.logmeanexp(x, temperature=tau),
    "softmax": lambda x, tau: lsearray.softmax(x, temperature=tau),
    "log_softmax": lambda x, tau: lsearray.log_softmax(x, temperature=tau),
    "logaddexp": lambda x, tau: lsearray.logaddexp(x, x, temperature=tau),
    "logdiffexp": lambda x, tau: lsearray.logdiffexp(x + 1.0, x, temperature=tau),
    "logcumsumexp": lambda x, tau: lsearray.logcumsumexp(x, temperature=tau),
    "gumbel_softmax": lambda x, tau: lsearray.gumbel_softmax(x, temperature=tau, rng=0),
    "OnlineLogSumExp": lambda x, tau: lsearray.OnlineLogSumExp(temperature=tau).update(x),
}


@pytest.mark.parametrize("name", list(TAU_FUNCS))
@pytest.mark.parametrize("tau", SUBNORMAL_TAUS + BAD_TAUS, ids=[repr(t) for t in SUBNORMAL_TAUS + BAD_TAUS])
def test_temperature_below_the_smallest_normal_float64_raises(xp, name, tau):
    """1 / tau overflows a float64 below the smallest normal float64: every function and backend
    refuses such a temperature with the same message, naming the value it got."""
    xp.subset(tau == SUBNORMAL_TAUS[0])
    x = xp.make(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=re.escape(f"{name}: {TAU_MESSAGE}{float(tau)!r}")):
        TAU_FUNCS[name](x, tau)


@pytest.mark.parametrize("name", ["logsumexp", "logmeanexp", "softmax", "logaddexp", "logdiffexp",
                                  "logcumsumexp"])
def test_array_temperature_below_the_smallest_normal_float64_raises(xp, name):
    """An array temperature whose value is known is checked as a float, before any cast to the
    input's dtype (1e-310 would be 0 in float32)."""
    if xp.name in ("numpy", "numpy-readonly", "dask"):
        pytest.skip("array temperatures are differentiated on the array-API path")
    x = xp.make(np.array([1.0, 2.0], dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(f"{name}: {TAU_MESSAGE}1e-310")):
        TAU_FUNCS[name](x, xp.make(np.array(1e-310)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(TAU_FUNCS))
def test_smallest_normal_float64_temperature_is_accepted(xp, name, dtype):
    """The smallest accepted temperature is the hard max in every dtype (no nan from 1 / tau)."""
    xp.subset(dtype == "float32", jax_keep=False)
    x = xp.make(np.array([1.0, 2.0, 2.0]), dtype)
    got = TAU_FUNCS[name](x, SMALLEST_NORMAL)
    if name == "OnlineLogSumExp":
        got = got.result()
    with np.errstate(over="ignore"):  # (1 - 2) / tau: -4.5e307, -inf in float32
        gap = float(np.float64(-1.0 / SMALLEST_NORMAL).astype(dtype))
    expected = {"logsumexp": 2.0, "logmeanexp": 2.0, "softmax": [0.0, 0.5, 0.5],
                "log_softmax": [gap - LOG2, -LOG2, -LOG2], "logaddexp": [1.0, 2.0, 2.0],
                "logdiffexp": [2.0, 3.0, 3.0], "logcumsumexp": [1.0, 2.0, 2.0], "OnlineLogSumExp": 2.0}.get(name)
    if name == "gumbel_softmax":  # one-hot: the noisy max takes all the mass
        got = xp.to_numpy(got)
        assert sorted(got.tolist()) == [0.0, 0.0, 1.0], got
        return
    assert_values(xp.to_numpy(got), expected, dtype, name)


@pytest.mark.parametrize("name", ALL_FUNCS)
def test_bad_temperature_raises_even_for_empty_input(name):
    with pytest.raises(ValueError, match="(?i)temperature"):
        call(name, np.zeros((2, 0)), axis=-1, temperature=0.0)


@pytest.mark.parametrize("name", ALL_FUNCS)
def test_temperature_is_keyword_only(name):
    # temperature passed where it would be the next positional argument
    positional = {"logsumexp": (None, None, False, False), "logmeanexp": (None, None, False)}
    with pytest.raises(TypeError):
        call(name, np.zeros(3), *positional.get(name, (None,)), 2.0)


# ---- inputs are never modified --------------------------------------------------------------

def _inputs():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 6))
    a[0, 1] = np.nan
    a[1, 2] = np.inf
    a[2, 3] = -np.inf
    b = rng.uniform(-1.0, 2.0, size=(4, 6))
    b[0, 1] = 0.0
    return a, b


CALLS = [
    pytest.param("logsumexp", dict(axis=None), id="logsumexp-all"),
    pytest.param("logsumexp", dict(axis=1, return_sign=True), id="logsumexp-axis1-sign"),
    pytest.param("logsumexp", dict(axis=0, keepdims=True, temperature=0.5), id="logsumexp-axis0-tau"),
    pytest.param("logmeanexp", dict(axis=(0, 1)), id="logmeanexp"),
    pytest.param("softmax", dict(axis=1), id="softmax"),
    pytest.param("log_softmax", dict(axis=0, temperature=2.0), id="log_softmax"),
]


@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "readonly"])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "byteswapped"])
@pytest.mark.parametrize("name, kwargs", CALLS)
def test_inputs_are_not_modified(name, kwargs, layout, readonly):
    a, b = _inputs()
    if layout == "F":
        a, b = np.asfortranarray(a), np.asfortranarray(b)
    elif layout == "strided":
        big_a, big_b = np.zeros((8, 12)), np.zeros((8, 12))
        big_a[::2, ::-2], big_b[::2, ::-2] = a, b
        a, b = big_a[::2, ::-2], big_b[::2, ::-2]
    elif layout == "byteswapped":
        a, b = a.astype(">f8"), b.astype(">f8")
    if readonly:
        a.flags.writeable = False
        b.flags.writeable = False
    a_copy, b_copy = a.copy(), b.copy()
    a_bytes, b_bytes = a.tobytes(), b.tobytes()
    if name in REDUCTIONS:
        out = call(name, a, b=b, **kwargs)
    else:
        out = call(name, a, **kwargs)
    assert a.tobytes() == a_bytes and b.tobytes() == b_bytes
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)
    assert a.dtype == a_copy.dtype and a.flags.writeable == (not readonly)
    # the result does not share memory with the input
    for res in out if isinstance(out, tuple) else (out,):
        assert not np.shares_memory(np.asarray(res), a)
