"""lsearray.logdiffexp and lsearray.log1mexp against mpmath, long double and closed-form gradients: every backend."""

import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lsearray
from backends import assert_values, make_backend
from reference import mp_log1mexp, mp_logdiffexp, slow_log1mexp, slow_logdiffexp

__all__ = []

inf, nan = math.inf, math.nan
LN2 = math.log(2.0)


def ulps(got, exact, dtype=np.float64):
    """|got - exact| in units of the spacing of exact rounded to dtype (the smallest subnormal's
    for results that round to 0)."""
    spacing = float(np.spacing(np.abs(np.dtype(dtype).type(float(exact)))))
    return float(abs(mpmath.mpf(float(got)) - exact) / spacing)


def worst_ulps(got, exact, dtype):
    return max(ulps(g, e, dtype) for g, e in zip(np.ravel(got), exact))


# ------------------------------------------------------------------------------------------------
# Accuracy (the NumPy kernel) against mpmath: within one ulp
# ------------------------------------------------------------------------------------------------

def _log1mexp_points(dtype, n=400, seed=0):
    """Negative floats of dtype where log1mexp is hard: near 0, on both sides of -ln 2, tiny and
    subnormal, large negative (down to where exp(x) underflows) and log-uniform in between."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    t = np.dtype(dtype).type
    ln2 = t(LN2)
    around_ln2 = [-ln2]
    for direction in (0.0, -1.0):
        x = -ln2
        for _ in range(n // 8):
            x = np.nextafter(x, t(direction))
            around_ln2.append(x)
    points = np.concatenate([
        np.array(around_ln2, dtype=dtype),
        -rng.uniform(0.6, 0.8, n).astype(dtype),
        -np.exp(rng.uniform(math.log(float(info.tiny)), 0.0, n)).astype(dtype),   # tiny |x|
        -np.exp(rng.uniform(-60.0, 0.0, n)).astype(dtype),                       # near 0
        -(np.arange(1, n // 8) * info.smallest_subnormal).astype(dtype),          # subnormal
        -rng.uniform(1.0, math.log(float(info.max)) + 40, n).astype(dtype),       # large negative
        -np.exp(rng.uniform(-5.0, 6.0, n)).astype(dtype),
        np.array([-info.smallest_subnormal, -info.tiny, -info.eps, -1.0, -info.max], dtype=dtype),
    ])
    return points[points < 0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log1mexp_within_one_ulp(dtype):
    x = _log1mexp_points(dtype)
    assert x.size > 2000
    got = lsearray.log1mexp(x)
    assert got.dtype == dtype
    worst = worst_ulps(got, [mp_log1mexp(v) for v in x], dtype)
    assert worst <= 1.0, worst


def test_the_one_ulp_bound_fails_the_plain_formula():
    """The points above tell one ulp from the plain float64 switch: it exceeds one ulp there."""
    x = _log1mexp_points(np.float64)
    with np.errstate(divide="ignore"):
        plain = np.where(x > -LN2, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    assert worst_ulps(plain, [mp_log1mexp(v) for v in x], np.float64) > 1.0


def _difference_pairs(dtype, seed):
    """(x1, x2) with x1 > x2: random, near-equal (a few ulps apart and relative 1e-8), huge and
    tiny magnitudes, far apart."""
    rng = np.random.default_rng(seed)
    n = 300
    x1 = rng.normal(size=n) * 10
    gap = np.exp(rng.uniform(-35.0, 5.0, n))
    pairs = [(x1, x1 - gap)]
    near = rng.normal(size=n) * 100
    steps = rng.integers(1, 8, n)
    pairs.append((near, near - steps * np.spacing(np.abs(near).astype(dtype)).astype(np.float64)))
    big = rng.uniform(0.5, 1.0, n) * float(np.finfo(dtype).max) * np.where(rng.random(n) < 0.5, 1, -1)
    with np.errstate(over="ignore"):  # the pairs that overflow are dropped below
        pairs.append((big, big - np.abs(big) * np.exp(rng.uniform(-30.0, 0.5, n))))
    tiny = rng.uniform(-1.0, 1.0, n) * float(np.finfo(dtype).tiny) * 4
    pairs.append((tiny, tiny - np.exp(rng.uniform(-5.0, 3.0, n))))
    pairs.append((rng.normal(size=n), rng.normal(size=n) - rng.uniform(30.0, 800.0, n)))
    with np.errstate(over="ignore"):
        u, v = (np.concatenate(p).astype(dtype) for p in zip(*pairs))
    keep = np.isfinite(u) & np.isfinite(v) & (u > v)
    return u[keep], v[keep]


def _exact(u, v, tau):
    return [mp_logdiffexp(a, b, tau) for a, b in zip(u, v)]


def _allowed(exact, x1, dtype):
    """One ulp of the exact result, or where x1 and the log term cancel (a result below 2^-48 of
    |x1|) 2^-100 |x1|, the bound the docstring gives."""
    one = float(np.spacing(np.abs(np.dtype(dtype).type(float(exact)))))
    return max(one, 2.0**-100 * abs(float(x1)))


@pytest.mark.parametrize("temperature", [1.0, 0.3, 7.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logdiffexp_within_one_ulp(dtype, temperature):
    u, v = _difference_pairs(dtype, seed=int(temperature * 10))
    assert u.size > 1000
    got = lsearray.logdiffexp(u, v, temperature=temperature)
    assert got.dtype == dtype
    exact = _exact(u, v, temperature)
    errors = [float(abs(mpmath.mpf(float(g)) - e)) / _allowed(e, a, dtype)
              for g, e, a in zip(got, exact, u)]
    worst = max(errors)
    assert worst <= 1.0, (worst, u[int(np.argmax(errors))], v[int(np.argmax(errors))])


def test_the_one_ulp_bound_fails_the_plain_logdiffexp():
    """The pairs above tell one ulp from x1 + log1mexp(x2 - x1) in plain float64: the rounded
    difference alone costs it many ulps."""
    u, v = _difference_pairs(np.float64, seed=10)
    z = v - u
    with np.errstate(divide="ignore"):
        plain = u + np.where(z > -LN2, np.log(-np.expm1(z)), np.log1p(-np.exp(z)))
    assert worst_ulps(plain, _exact(u, v, 1.0), np.float64) > 1.0


@st.composite
def _drawn_pairs(draw, dtype):
    """x1 any finite float of dtype; x2 below it by a drawn number of ulps (1 to 2^40) or by a
    drawn finite gap; a drawn temperature."""
    width = 64 if dtype == np.float64 else 32
    x1 = draw(st.floats(allow_nan=False, allow_infinity=False, width=width))
    if draw(st.booleans()):
        x2 = np.dtype(dtype).type(x1)
        steps = draw(st.integers(0, 40))
        with np.errstate(over="ignore"):  # below the most negative float, or its spacing: dropped
            for _ in range(draw(st.integers(1, 4))):
                x2 = np.nextafter(x2, np.dtype(dtype).type(-inf))
            x2 = np.dtype(dtype).type(float(x2) - float(np.spacing(abs(np.dtype(dtype).type(x1))))
                                      * (2.0**steps - 1))
    else:
        x2 = np.dtype(dtype).type(x1 - draw(st.floats(1e-30, 1e4)))
    tau = draw(st.sampled_from([1.0, 0.5, 3.0, 1e-3, 1e3]))
    return np.dtype(dtype).type(x1), x2, tau


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_drawn_pairs_within_one_ulp(dtype):
    @settings(max_examples=300, derandomize=True, deadline=None)
    @given(_drawn_pairs(dtype))
    def check(pair):
        x1, x2, tau = pair
        if not (np.isfinite(x2) and x1 > x2):
            return
        got = lsearray.logdiffexp(x1, x2, temperature=tau)
        exact = mp_logdiffexp(x1, x2, tau)
        assert float(abs(mpmath.mpf(float(got)) - exact)) <= _allowed(exact, x1, dtype), (x1, x2, tau)

    check()


def test_logdiffexp_near_equal_arguments_far_from_zero():
    """x1 and x2 one to a few ulps apart: the difference is exact, the result ~ x1 + log(gap)."""
    x1 = np.array([1.0, 1e10, -1e10, 1e300, 700.0, -700.0])
    for k in (1, 2, 5):
        x2 = x1.copy()
        for _ in range(k):
            x2 = np.nextafter(x2, -inf)
        got = lsearray.logdiffexp(x1, x2)
        assert worst_ulps(got, _exact(x1, x2, 1.0), np.float64) <= 1.0


def test_logdiffexp_where_the_result_cancels_to_near_zero():
    """x2 around log(e - 1), x1 = 1: the result log(e - e^x2) is close to 0; absolute 2^-100."""
    center = math.log(math.e - 1.0)
    x2 = np.array([center] + [np.nextafter(center, d) for d in (-inf, inf)]
                  + list(center + np.arange(-20, 21) * 2.0**-50))
    got = lsearray.logdiffexp(1.0, x2)
    for g, e in zip(got, _exact(np.ones_like(x2), x2, 1.0)):
        assert float(abs(mpmath.mpf(float(g)) - e)) <= _allowed(e, 1.0, np.float64)


def test_huge_temperatures_keep_the_log_of_a_tiny_quotient():
    """(x2 - x1) / tau below the smallest subnormal: tau log(-(x2 - x1) / tau), not -inf."""
    got = lsearray.logdiffexp(1e-300, 0.0, temperature=1e300)
    exact = mpmath.mpf(1e-300) + mpmath.mpf(1e300) * mpmath.log(mpmath.mpf(1e-300) / mpmath.mpf(1e300))
    assert ulps(got, exact) <= 1.0


def test_logdiffexp_from_zero_is_log1mexp():
    x = _log1mexp_points(np.float64, n=80)
    assert worst_ulps(lsearray.logdiffexp(0.0, x), [mp_log1mexp(v) for v in x], np.float64) <= 1.0


# ------------------------------------------------------------------------------------------------
# Special values, signs, broadcasting, temperature: every backend
# ------------------------------------------------------------------------------------------------

SPECIAL_X1 = np.array([1.0, 1.0, -inf, inf, 2.0, inf, inf, -inf, nan, 1.0, nan, -inf, 1.0, 0.0])
SPECIAL_X2 = np.array([1.0, 2.0, -inf, inf, -inf, -inf, 3.0, 1.0, 1.0, nan, nan, inf, 0.0, -50.0])
SPECIAL_OUT = np.array([-inf, nan, -inf, nan, 2.0, inf, inf, nan, nan, nan, nan, nan,
                        math.log(math.e - 1.0), math.log1p(-math.exp(-50.0))])
SIGNED_OUT = np.array([-inf, math.log(math.e**2 - math.e), -inf, nan, 2.0, inf, inf, 1.0, nan, nan, nan, inf,
                       math.log(math.e - 1.0), math.log1p(-math.exp(-50.0))])
SIGNED_SIGN = np.array([0.0, -1.0, 0.0, nan, 1.0, 1.0, 1.0, -1.0, nan, nan, nan, -1.0, 1.0, 1.0])


def test_special_values_on_every_backend(xp):
    x1, x2 = xp.make(SPECIAL_X1), xp.make(SPECIAL_X2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lsearray.logdiffexp(x1, x2)
        got = xp.to_numpy(out)
    xp.check(out, x1, "float64", SPECIAL_X1.shape)
    assert_values(got, SPECIAL_OUT, "float64")


def test_signs_on_every_backend(xp):
    x1, x2 = xp.make(SPECIAL_X1), xp.make(SPECIAL_X2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, sign = lsearray.logdiffexp(x1, x2, return_sign=True)
        got, got_sign = xp.to_numpy(out), xp.to_numpy(sign)
    xp.check(out, x1, "float64", SPECIAL_X1.shape)
    xp.check(sign, x1, "float64", SPECIAL_X1.shape, what="sign")
    assert_values(got, SIGNED_OUT, "float64")
    np.testing.assert_array_equal(got_sign, SIGNED_SIGN)


def test_log1mexp_special_values_on_every_backend(xp):
    x = np.array([0.0, -0.0, -inf, 1.0, inf, nan, -LN2, -1e-300, -800.0])
    want = np.array([-inf, -inf, 0.0, nan, nan, nan, math.log(1 - math.exp(-LN2)), math.log(1e-300),
                     -0.0])
    a = xp.make(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lsearray.log1mexp(a)
        got = xp.to_numpy(out)
    xp.check(out, a, "float64", x.shape)
    assert_values(got, want, "float64")


@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_broadcast_on_every_backend(xp, dtype, temperature):
    xp.subset(dtype == "float64", jax_keep=dtype == "float64" and temperature == 1.0)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 1)) * 3, rng.normal(size=(4,)) * 3
    x1, x2 = xp.make(a, dtype), xp.make(b, dtype)
    out, sign = lsearray.logdiffexp(x1, x2, temperature=temperature, return_sign=True)
    xp.check(out, x1, dtype, (5, 4))
    expected, expected_sign = slow_logdiffexp(a.astype(dtype), b.astype(dtype), temperature, return_sign=True)
    assert_values(xp.to_numpy(out), expected, dtype)
    np.testing.assert_array_equal(xp.to_numpy(sign), expected_sign)
    plain = xp.to_numpy(lsearray.logdiffexp(x1, x2, temperature=temperature))
    assert_values(plain, np.where(expected_sign > 0, expected, nan), dtype)
    # tau log(e^(x1/tau) - e^(x2/tau)) directly, where it neither overflows nor cancels badly
    with np.errstate(invalid="ignore"):
        direct = temperature * np.log(np.abs(np.exp(a / temperature) - np.exp(b / temperature)))
    assert_values(xp.to_numpy(out), direct, "float32")


def test_log1mexp_values_on_every_backend(xp):
    x = -np.exp(np.linspace(-30.0, 5.0, 24)).reshape(2, 3, 4)
    a = xp.make(x)
    out = lsearray.log1mexp(a)
    xp.check(out, a, "float64", x.shape)
    assert_values(xp.to_numpy(out), slow_log1mexp(x), "float64")


def test_temperature_scales(xp):
    xp.subset(True)
    a, b, tau = np.array([3.0, -1.0, 40.0]), np.array([1.0, -1.5, 39.0]), 0.25
    got = xp.to_numpy(lsearray.logdiffexp(xp.make(a), xp.make(b), temperature=tau))
    assert_values(got, slow_logdiffexp(a, b, tau), "float64")


def test_integer_input_gives_the_default_float(xp):
    xp.subset(True)
    x1 = xp.make(np.array([[1, 2, 3]]), "int32")
    out = lsearray.logdiffexp(x1, xp.make(np.array([[0], [5]]), "int32"), return_sign=True)
    xp.check(out[0], x1, xp.default_float(x1), (2, 3))
    xp.check(out[1], x1, xp.default_float(x1), (2, 3))
    expected = slow_logdiffexp([[1, 2, 3]], [[0], [5]], return_sign=True)
    assert_values(xp.to_numpy(out[0]), expected[0], xp.default_float(x1))
    one = lsearray.log1mexp(xp.make(np.array([-1, -2]), "int32"))
    xp.check(one, x1, xp.default_float(x1), (2,))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_python_scalars_take_the_array_dtype(xp, dtype):
    xp.subset(dtype == "float32")
    x2 = xp.make(np.array([0.5, -2.0, 3.0]), dtype)
    out = lsearray.logdiffexp(4.0, x2)
    xp.check(out, x2, dtype, (3,))
    assert_values(xp.to_numpy(out), slow_logdiffexp(4.0, xp.to_numpy(x2)), dtype)
    xp.check(lsearray.logdiffexp(x2, 2), x2, dtype, (3,))
    x = xp.make(np.array([-0.5, -2.0, -1e-3]), dtype)
    got = lsearray.log1mexp(x)
    xp.check(got, x, dtype, (3,))
    assert_values(xp.to_numpy(got), slow_log1mexp(xp.to_numpy(x)), dtype)


def test_floating_dtypes_promote(xp):
    xp.subset(True)
    x1 = xp.make(np.array([1.0, 4.0]), "float32")
    out = lsearray.logdiffexp(x1, xp.make(np.array([0.0, 3.0]), "float64"))
    xp.check(out, x1, "float64", (2,))
    assert_values(xp.to_numpy(out), slow_logdiffexp([1.0, 4.0], [0.0, 3.0]), "float64")


@pytest.mark.parametrize("x1, x2, dtype", [
    (np.float64(2.0), np.float64(1.0), np.float64),
    (np.float32(2.0), np.float32(1.0), np.float32),
    (np.float32(2.0), 1.0, np.float32),
    (np.array([2.0], dtype=np.float16), np.array([1.0], dtype=np.float16), np.float16),
    (np.int8(3), np.int8(2), np.float64),
    (True, False, np.float64),
    ([2, 3], 1, np.float64),
], ids=repr)
def test_numpy_dtypes_and_scalars_are_the_ufuncs(x1, x2, dtype):
    want = np.logaddexp(x1, x2)  # logaddexp's conventions, integers to float64
    got = lsearray.logdiffexp(x1, x2)
    assert got.dtype == dtype and np.shape(got) == np.shape(want)
    assert type(got) is (np.ndarray if np.ndim(want) else np.dtype(dtype).type)
    assert_values(got, slow_logdiffexp(x1, x2), np.dtype(dtype).name)


def test_numpy_log1mexp_scalars_and_dtypes():
    assert type(lsearray.log1mexp(-1.0)) is np.float64
    assert type(lsearray.log1mexp(-1)) is np.float64
    assert type(lsearray.log1mexp(np.float32(-1.0))) is np.float32
    assert lsearray.log1mexp(np.array([-1.0], dtype=np.float16)).dtype == np.float16
    assert lsearray.log1mexp(np.array([-1, -2], dtype=np.int8)).dtype == np.float64
    assert lsearray.log1mexp(np.zeros((0, 3))).shape == (0, 3)


def test_layouts_and_read_only_inputs():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(6, 8)) * 4
    low = base - np.abs(rng.normal(size=(6, 8)))
    for x1, x2 in [(np.asfortranarray(base), low), (base[::-1, ::-2], low[::-1, ::-2]), (base.T, low.T),
                   (base.astype(">f8"), low.astype(">f4")), (base[:, :1], base[:, :1] - 1.0 - low ** 2)]:
        x1.flags.writeable = False
        before = x1.copy()
        got = lsearray.logdiffexp(x1, x2, temperature=0.7)
        assert_values(got, slow_logdiffexp(x1, x2, 0.7), got.dtype.name)
        np.testing.assert_array_equal(x1, before)


def test_dask_is_lazy_and_block_by_block():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(9)
    a = rng.normal(size=(6, 5))
    b = a - np.abs(rng.normal(size=(6, 5)))
    x1, x2 = da.from_array(a, chunks=(2, 3)), da.from_array(b, chunks=(3, 2))
    out = lsearray.logdiffexp(x1, x2, temperature=0.5)
    out_signed, sign = lsearray.logdiffexp(x2, x1, return_sign=True)
    one = lsearray.log1mexp(x2 - x1)
    for lazy in (out, out_signed, sign, one):
        assert isinstance(lazy, da.Array)
    # the kernel's values, bit for bit, block by block
    np.testing.assert_array_equal(out.compute(), lsearray.logdiffexp(a, b, temperature=0.5))
    np.testing.assert_array_equal(out_signed.compute(), lsearray.logdiffexp(b, a, return_sign=True)[0])
    np.testing.assert_array_equal(sign.compute(), -np.ones_like(a))
    np.testing.assert_array_equal(one.compute(), lsearray.log1mexp(b - a))


# ------------------------------------------------------------------------------------------------
# Gradients: d/dx1 = 1 / (1 - exp(z)), d/dx2 = 1 - that, z = (x2 - x1) / tau; finite off the poles
# ------------------------------------------------------------------------------------------------

# gaps x1 - x2 from far (the log1p branch) to next to the pole (the expm1 branch)
GAPS = np.array([50.0, 3.0, 0.8, LN2, 0.6, 1e-3, 1e-8, 1e-12])


def _pairs_at_gaps():
    """(x1, x2, x1 - x2 exactly): the gaps as the floats x2 = x1 - GAPS round them to."""
    x1 = np.linspace(-3.0, 3.0, GAPS.size)
    x2 = x1 - GAPS
    gaps = np.array([float(mpmath.mpf(float(u)) - mpmath.mpf(float(v))) for u, v in zip(x1, x2)])
    return x1, x2, gaps


def _closed_form(gap, tau):
    d1 = -1.0 / np.expm1(-gap / tau)
    return d1, 1.0 - d1


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_torch_gradients_are_the_closed_form(temperature):
    torch = pytest.importorskip("torch")
    a, b, gaps = _pairs_at_gaps()
    x1 = torch.tensor(np.r_[a, 1.0, -inf], requires_grad=True)
    x2 = torch.tensor(np.r_[b, -inf, -inf], requires_grad=True)
    g1, g2 = torch.autograd.grad(lsearray.logdiffexp(x1, x2, temperature=temperature).sum(), (x1, x2))
    d1, d2 = _closed_form(gaps, temperature)
    assert torch.isfinite(g1).all() and torch.isfinite(g2).all()
    assert_values(g1.numpy(), np.r_[d1, 1.0, 0.0], "float64", "d/dx1")
    assert_values(g2.numpy(), np.r_[d2, 0.0, 0.0], "float64", "d/dx2")


def test_torch_signed_gradients():
    torch = pytest.importorskip("torch")
    a, b, gaps = _pairs_at_gaps()
    x1 = torch.tensor(b, requires_grad=True)   # x1 < x2: log(e^x2 - e^x1), sign -1
    x2 = torch.tensor(a, requires_grad=True)
    out, sign = lsearray.logdiffexp(x1, x2, return_sign=True)
    assert (sign == -1).all()
    g1, g2 = torch.autograd.grad(out.sum(), (x1, x2))
    d1, d2 = _closed_form(gaps, 1.0)
    assert_values(g2.numpy(), d1, "float64", "d/dx2")
    assert_values(g1.numpy(), d2, "float64", "d/dx1")


def test_torch_gradcheck_near_the_poles():
    torch = pytest.importorskip("torch")
    x1 = torch.tensor([0.5, -2.0, 3.0, 10.0], dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor([0.49, -2.6, -40.0, 9.0], dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v, t: lsearray.logdiffexp(u, v, temperature=t), (x1, x2, tau))
    x = torch.tensor([-0.01, -0.69, -0.7, -5.0, -40.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lsearray.log1mexp, (x,))


def test_torch_log1mexp_gradient_is_finite_off_zero():
    torch = pytest.importorskip("torch")
    x_np = np.array([-1e-12, -1e-3, -0.6, -LN2, -0.8, -3.0, -50.0, -800.0, -inf])
    x = torch.tensor(x_np, requires_grad=True)
    (g,) = torch.autograd.grad(lsearray.log1mexp(x).sum(), x)
    assert torch.isfinite(g).all()
    with np.errstate(over="ignore"):
        want = -1.0 / np.expm1(-x_np)
    assert_values(g.numpy(), np.where(np.isinf(x_np), 0.0, want), "float64")


def test_jax_gradients():
    jnp = make_backend("jax").lib
    import jax
    from jax.test_util import check_grads

    a, b, gaps = _pairs_at_gaps()
    x1, x2 = jnp.asarray(a), jnp.asarray(b)
    g1, g2 = jax.grad(lambda u, v: lsearray.logdiffexp(u, v, temperature=0.5).sum(), argnums=(0, 1))(x1, x2)
    d1, d2 = _closed_form(gaps, 0.5)
    assert_values(np.asarray(g1), d1, "float64", "d/dx1")
    assert_values(np.asarray(g2), d2, "float64", "d/dx2")
    check_grads(lambda u, v: lsearray.logdiffexp(u, v), (jnp.asarray([0.5, 3.0, 10.0]),
                                                          jnp.asarray([0.4, -40.0, 9.0])), order=2)
    # finite differences (steps of about 1e-4 here) need a gap well above the step from the pole
    check_grads(lsearray.log1mexp, (jnp.asarray([-0.3, -0.69, -0.7, -40.0]),), order=2)
    g = jax.grad(lambda x: lsearray.log1mexp(x).sum())(jnp.asarray([-1e-9, -1.0, -800.0, -inf]))
    assert np.isfinite(np.asarray(g)).all()


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.0, -1.0, inf, nan])
def test_bad_temperature_raises_value_error(xp, temperature):
    xp.subset(temperature == 0.0)
    with pytest.raises(ValueError, match="logdiffexp: temperature must be positive, finite and at least"):
        lsearray.logdiffexp(xp.make(np.ones(2)), xp.make(np.zeros(2)), temperature=temperature)


def test_shapes_that_do_not_broadcast_name_both(xp):
    xp.subset(True)
    msg = r"logdiffexp: x1 with shape \(3,\) and x2 with shape \(4, 2\) do not broadcast"
    with pytest.raises(ValueError, match=msg):
        lsearray.logdiffexp(xp.make(np.ones(3)), xp.make(np.ones((4, 2))))


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
def test_complex_input_raises_type_error(backend):
    xp = make_backend(backend)
    z = xp.make(np.array([1 + 1j, 2.0]), "complex128")
    with pytest.raises(TypeError, match="logdiffexp: .*complex128"):
        lsearray.logdiffexp(z, xp.make(np.ones(2)))
    with pytest.raises(TypeError, match="log1mexp: .*complex128"):
        lsearray.log1mexp(z)
    with pytest.raises(TypeError, match="logdiffexp: .*complex"):
        lsearray.logdiffexp(1.0, 1j)


def test_strings_and_flags_raise_type_error():
    with pytest.raises(TypeError, match="<U1"):
        lsearray.logdiffexp(np.array(["a"]), 1.0)
    with pytest.raises(TypeError, match="log1mexp.*<U1"):
        lsearray.log1mexp(np.array(["a"]))
    with pytest.raises(TypeError, match="logdiffexp: return_sign must be a bool"):
        lsearray.logdiffexp(1.0, 0.0, return_sign=1)


def test_mixed_libraries_raise_type_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="logdiffexp: arrays of one library expected"):
        lsearray.logdiffexp(torch.ones(2), np.ones(2))


def test_keywords_are_keyword_only():
    with pytest.raises(TypeError):
        lsearray.logdiffexp(1.0, 0.0, 0.5)
