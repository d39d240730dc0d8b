"""lsearray.logaddexp against NumPy's ufunc in long double, mpmath and the sigmoid: every backend."""

import math
import warnings

import mpmath
import numpy as np
import pytest

import lsearray
from backends import assert_values, make_backend
from reference import mp_logaddexp, slow_logaddexp

__all__ = []

inf, nan = math.inf, math.nan


def ulps(got, exact, dtype=np.float64):
    """|got - exact| in units of the spacing of exact rounded to dtype."""
    spacing = float(np.spacing(np.abs(np.dtype(dtype).type(float(exact)))))
    return float(abs(mpmath.mpf(float(got)) - exact) / spacing)


def conditioned(got, exact, x1, x2):
    """The error in units of one ulp of the result plus 2^-55 of the log term: where the max and
    the log term (the result minus the max) cancel, the log term's own error (about 2^-56 of it)
    is forgiven."""
    log_term = abs(float(exact) - max(float(x1), float(x2)))
    allowed = float(np.spacing(abs(float(exact)))) + 2.0**-55 * log_term
    return float(abs(mpmath.mpf(float(got)) - exact)) / allowed


def _pairs(seed, n=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)) * 3, rng.normal(size=(4,)) * 3


# ------------------------------------------------------------------------------------------------
# Every backend: values, kinds, dtypes
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_broadcast_on_every_backend(xp, dtype, temperature):
    xp.subset(dtype == "float64", jax_keep=dtype == "float64" and temperature == 1.0)
    a, b = _pairs(1)
    x1, x2 = xp.make(a, dtype), xp.make(b, dtype)
    out = lsearray.logaddexp(x1, x2, temperature=temperature)
    xp.check(out, x1, dtype, (5, 4))
    expected = slow_logaddexp(a.astype(dtype), b.astype(dtype), temperature)
    assert_values(xp.to_numpy(out), expected, dtype)
    assert_values(xp.to_numpy(x1), a.astype(dtype), dtype, "x1 unchanged")


def test_special_values_on_every_backend(xp):
    a = np.array([inf, -inf, inf, -inf, nan, 1.0, nan, -inf, 2.0, inf, 0.0])
    b = np.array([inf, -inf, -inf, inf, 1.0, nan, nan, 3.0, -inf, 5.0, 0.0])
    expected = np.array([inf, -inf, inf, inf, nan, nan, nan, 3.0, 2.0, inf, math.log(2.0)])
    x1, x2 = xp.make(a), xp.make(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lsearray.logaddexp(x1, x2)
        got = xp.to_numpy(out)
    xp.check(out, x1, "float64", a.shape)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("temperature", [1e-3, 1.0, 100.0])
def test_between_the_max_and_the_max_plus_tau_log2(xp, temperature):
    xp.subset(temperature == 1.0)
    a, b = _pairs(2, n=6)
    out = xp.to_numpy(lsearray.logaddexp(xp.make(a), xp.make(b), temperature=temperature))
    top = np.maximum(a, b)
    assert np.all(out >= top)
    assert np.all(out <= top + temperature * math.log(2.0) * (1 + 1e-15))


def test_integer_input_gives_the_default_float(xp):
    xp.subset(True)
    x1 = xp.make(np.array([[1, 2, 3]]), "int32")
    out = lsearray.logaddexp(x1, xp.make(np.array([[0], [5]]), "int32"))
    xp.check(out, x1, xp.default_float(x1), (2, 3))
    assert_values(xp.to_numpy(out), slow_logaddexp([[1, 2, 3]], [[0], [5]]), xp.default_float(x1))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_python_scalars_take_the_array_dtype(xp, dtype):
    xp.subset(dtype == "float32")
    a = np.array([0.5, -2.0, 3.0])
    x1 = xp.make(a, dtype)
    out = lsearray.logaddexp(x1, 1.0)
    xp.check(out, x1, dtype, (3,))
    assert_values(xp.to_numpy(out), slow_logaddexp(xp.to_numpy(x1), 1.0), dtype)
    xp.check(lsearray.logaddexp(2, x1), x1, dtype, (3,))


def test_floating_dtypes_promote(xp):
    xp.subset(True)
    x1 = xp.make(np.array([1.0, 2.0]), "float32")
    out = lsearray.logaddexp(x1, xp.make(np.array([0.0, 3.0]), "float64"))
    xp.check(out, x1, "float64", (2,))
    assert_values(xp.to_numpy(out), slow_logaddexp([1.0, 2.0], [0.0, 3.0]), "float64")


@pytest.mark.parametrize("x1, x2", [
    (np.float64(1.0), np.float64(2.0)),
    (np.float32(1.0), np.float32(2.0)),
    (np.float32(1.0), 2.0),
    (np.float32(1.0), np.float64(2.0)),
    (1.0, 2.0),
    (np.array(1.0), np.array(2.0)),
    (np.array([1.0], dtype=np.float32), 2.0),
    (np.array([1.0], dtype=np.float16), np.array([2.0], dtype=np.float16)),
    (np.array([1.0], dtype=np.float32), np.array([2.0], dtype=np.float64)),
    ([1.0, 2.0], np.float32(3.0)),
], ids=repr)
def test_numpy_returns_what_the_ufunc_would(x1, x2):
    want = np.logaddexp(x1, x2)
    got = lsearray.logaddexp(x1, x2)
    assert type(got) is type(want)
    assert got.dtype == want.dtype and np.shape(got) == np.shape(want)
    assert_values(got, slow_logaddexp(x1, x2), want.dtype.name)


@pytest.mark.parametrize("x1, x2", [(np.int8(3), np.int8(4)), (True, False), ([1, 2], 3)], ids=repr)
def test_numpy_integers_and_bools_give_float64(x1, x2):
    got = lsearray.logaddexp(x1, x2)
    assert got.dtype == np.float64
    assert_values(got, slow_logaddexp(x1, x2), "float64")


# ------------------------------------------------------------------------------------------------
# Accuracy (the NumPy kernel) against mpmath
# ------------------------------------------------------------------------------------------------

LN2 = math.log(2.0)
HARD_PAIRS = {
    "dominant-0-50": (0.0, -50.0),
    "dominant-swapped": (-50.0, 0.0),
    "dominant-tiny-max": (1e-20, -30.5),
    "difference-rounds": (0.5, -30.123456789),
    "difference-rounds-tiny-max": (3e-15, -33.3333333333),
    "neighbours-1": (1.0, np.nextafter(1.0, 2.0)),
    "neighbours-1e10": (1e10, np.nextafter(1e10, 0.0)),
    "equal": (-3.7, -3.7),
    "huge-equal": (1e308, 1e308),
    "huge-opposite": (1e308, -1e308),
    "huge-negative": (-1e308, -9e307),
    "huge-near": (1e300, 1e300 * (1 - 1e-16)),
    "deep-underflow": (-745.0, -745.5),
    "large": (700.0, 700.5),
    "subnormal": (5e-324, -5e-324),
    "far-below-zero": (-1e-17, -40.0),
}


def _random_pairs(seed, n, scale, loc=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(loc, scale, n), rng.normal(loc, scale, n)


@pytest.mark.parametrize("case", list(HARD_PAIRS))
def test_ulp_error_of_hard_pairs(case):
    x1, x2 = HARD_PAIRS[case]
    got = lsearray.logaddexp(x1, x2)
    err = ulps(got, mp_logaddexp(x1, x2))
    assert err <= 1.0, f"{case}: {err:.3f} ulp (got {got!r})"


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0, 0.1, 1e-3, 1e3])
def test_ulp_error_without_cancellation(temperature):
    """Where the max is >= 0 the max and the log term add: within one ulp at every temperature."""
    x1, x2 = _random_pairs(10, 300, 10.0, loc=5.0)
    x1, x2 = np.abs(x1), x2
    got = lsearray.logaddexp(x1, x2, temperature=temperature)
    errs = [ulps(g, mp_logaddexp(a, b, temperature)) for g, a, b in zip(got, x1, x2)]
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, f"({x1[worst]!r}, {x2[worst]!r}): {errs[worst]:.3f} ulp"


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_conditioned_error_with_cancellation(temperature):
    """Negative maxima where the result is near 0: one ulp plus 2^-55 of the log term."""
    x1, x2 = _random_pairs(11, 300, 0.5, loc=-0.8)
    x1 = np.r_[x1, -LN2, -LN2 * temperature]
    x2 = np.r_[x2, -LN2, -LN2 * temperature]
    got = lsearray.logaddexp(x1, x2, temperature=temperature)
    errs = [conditioned(g, mp_logaddexp(a, b, temperature), a, b) for g, a, b in zip(got, x1, x2)]
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, f"({x1[worst]!r}, {x2[worst]!r}): {errs[worst]:.3f}"


def test_cancellation_keeps_the_small_result():
    """logaddexp(-log 2, -log 2) is the rounding error of the float -log 2, about 2.3e-17."""
    x = -LN2
    exact = mp_logaddexp(x, x)
    got = lsearray.logaddexp(x, x)
    assert abs(float(got) - float(exact)) <= 1e-12 * float(exact)


def test_float32_rounds_once():
    x1, x2 = _random_pairs(12, 300, 8.0)
    x1, x2 = x1.astype(np.float32), x2.astype(np.float32)
    got = lsearray.logaddexp(x1, x2)
    assert got.dtype == np.float32
    errs = [ulps(g, mp_logaddexp(a, b), np.float32) for g, a, b in zip(got, x1, x2)]
    assert max(errs) <= 0.5 + 1e-6


# ------------------------------------------------------------------------------------------------
# NumPy memory layouts and conversions
# ------------------------------------------------------------------------------------------------

def _layouts():
    rng = np.random.default_rng(20)
    base = rng.normal(size=(6, 8)) * 4
    other = rng.normal(size=(6, 8)) * 4
    yield "C", base, other
    yield "F", np.asfortranarray(base), other
    yield "negative-strides", base[::-1, ::-2], other[:, :4]
    yield "transposed", base.T, other.T
    yield "big-endian", base.astype(">f8"), other.astype(">f4")
    yield "broadcast-row", base, other[0]
    yield "broadcast-column", base[:, :1], other
    yield "stride-0", np.broadcast_to(other[0], (6, 8)), base
    yield "float16", base.astype(np.float16), other.astype(np.float16)
    yield "int-and-float32", np.arange(48).reshape(6, 8) - 20, other.astype(np.float32)
    yield "empty", base[:0], other[:0]


@pytest.mark.parametrize("name, x1, x2", list(_layouts()), ids=[c[0] for c in _layouts()])
def test_layouts_and_conversions(name, x1, x2):
    before = (x1.copy(), x2.copy())
    got = lsearray.logaddexp(x1, x2, temperature=0.7)
    assert got.dtype == np.logaddexp(x1, x2).dtype
    assert got.shape == np.broadcast_shapes(x1.shape, x2.shape)
    assert_values(got, slow_logaddexp(x1, x2, 0.7), got.dtype.name)
    np.testing.assert_array_equal(x1, before[0])
    np.testing.assert_array_equal(x2, before[1])


def test_fortran_inputs_give_a_fortran_result():
    x = np.asfortranarray(np.ones((3, 4)))
    assert lsearray.logaddexp(x, x).flags.f_contiguous


# ------------------------------------------------------------------------------------------------
# Gradients: d/dx1 = sigmoid((x1 - x2) / tau)
# ------------------------------------------------------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_torch_gradient_is_a_sigmoid(temperature):
    torch = pytest.importorskip("torch")
    a, b = (v.ravel() for v in _pairs(3, n=4))
    a, b = np.r_[a, 2.0, -inf], np.r_[b[:3], 2.0, 1.0, -inf]
    x1 = torch.tensor(a, requires_grad=True)
    x2 = torch.tensor(b, requires_grad=True)
    out = lsearray.logaddexp(x1, x2, temperature=temperature)
    g1, g2 = torch.autograd.grad(out.sum(), (x1, x2))
    with np.errstate(invalid="ignore"):
        want = np.where(a == b, 0.5, _sigmoid((a - b) / temperature))
    nothing = (a == -inf) & (b == -inf)  # -inf + -inf adds nothing: no gradient (docs/user_guide/semantics.md)
    assert_values(g1.numpy(), np.where(nothing, 0.0, want), "float64", "d/dx1")
    assert_values(g2.numpy(), np.where(nothing, 0.0, 1.0 - want), "float64", "d/dx2")


def test_jax_gradient_is_a_sigmoid():
    jnp = make_backend("jax").lib
    import jax

    a = np.array([0.3, -2.0, 5.0, 1.0])
    b = np.array([1.3, 4.0, -1.0, 1.0])
    tau = 0.5
    g1, g2 = jax.grad(lambda u, v: lsearray.logaddexp(u, v, temperature=tau).sum(), argnums=(0, 1))(
        jnp.asarray(a), jnp.asarray(b))
    want = _sigmoid((a - b) / tau)
    assert_values(np.asarray(g1), want, "float64", "d/dx1")
    assert_values(np.asarray(g2), 1.0 - want, "float64", "d/dx2")


def test_torch_gradient_through_the_temperature():
    """d/dtau of tau log(e^(x1/tau) + e^(x2/tau)) = log(...) - (x1 p1 + x2 p2) / tau."""
    torch = pytest.importorskip("torch")
    x1, x2, tau = 0.4, -1.1, 0.8
    t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    out = lsearray.logaddexp(torch.tensor(x1, dtype=torch.float64), torch.tensor(x2, dtype=torch.float64),
                             temperature=t)
    (g,) = torch.autograd.grad(out, t)
    p1 = _sigmoid((x1 - x2) / tau)
    log_sum = np.logaddexp(x1 / tau, x2 / tau)
    assert_values(g.numpy(), log_sum - (x1 * p1 + x2 * (1 - p1)) / tau, "float64")


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.0, -1.0, inf, nan])
def test_bad_temperature_raises_value_error(xp, temperature):
    xp.subset(temperature == 0.0)
    with pytest.raises(ValueError, match="logaddexp: temperature must be positive, finite and at least"):
        lsearray.logaddexp(xp.make(np.ones(2)), xp.make(np.ones(2)), temperature=temperature)


def test_temperature_must_be_a_number():
    with pytest.raises(TypeError, match="temperature must be a real number; got str"):
        lsearray.logaddexp(1.0, 2.0, temperature="hot")


def test_shapes_that_do_not_broadcast_name_both(xp):
    xp.subset(True)
    msg = r"x1 with shape \(3,\) and x2 with shape \(4, 2\) do not broadcast"
    with pytest.raises(ValueError, match=msg):
        lsearray.logaddexp(xp.make(np.ones(3)), xp.make(np.ones((4, 2))))


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
def test_complex_input_raises_type_error_naming_the_dtype(backend):
    xp = make_backend(backend)
    z = xp.make(np.array([1 + 1j, 2.0]), "complex128")
    with pytest.raises(TypeError, match="complex128"):
        lsearray.logaddexp(z, xp.make(np.ones(2)))
    with pytest.raises(TypeError, match="complex"):
        lsearray.logaddexp(1.0, 1j)


def test_strings_raise_type_error():
    with pytest.raises(TypeError, match="<U1"):
        lsearray.logaddexp(np.array(["a"]), 1.0)


def test_mixed_libraries_raise_type_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="arrays of one library expected"):
        lsearray.logaddexp(torch.ones(2), np.ones(2))


def test_temperature_is_keyword_only():
    with pytest.raises(TypeError):
        lsearray.logaddexp(1.0, 2.0, 0.5)
