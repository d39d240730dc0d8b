"""Complex input on every backend with complex dtypes, against scipy.special.logsumexp 1.17.

scipy's semantics: the result is log(sum(b * exp(a))) with the imaginary part wrapped into (-pi, pi];
with return_sign the first output is real (log|sum|) and the sign is the unit-modulus phase sum/|sum|.
References are computed by scipy on a complex128 NumPy copy of the input; angles are compared on the
unit circle (so pi and -pi agree) and checked to lie in [-pi, pi].
"""

import cmath
import math
import warnings

import numpy as np
import pytest
import scipy.special as sc

import lsearray
from backends import assert_values

inf = math.inf
nan = math.nan

SEED = 22  # inputs whose sums are well conditioned (sum|terms| / |sum| < 5 on every axis below)
SHAPE = (3, 4, 5)
AXES = [None, 0, 1, -1, (0, 2), (1, 2)]

REAL_OF = {"complex64": "float32", "complex128": "float64"}


def angle_tol(dtype):
    return 2e-5 if dtype in ("complex64", "float32") else 1e-11


def scipy_lse(*args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return sc.logsumexp(*args, **kwargs)


def complex_data(shape, dtype="complex128", seed=SEED):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 2 + 1j * rng.uniform(-20.0, 20.0, shape)).astype(dtype)


def assert_same_angle(got, expected, dtype, what="angle"):
    """Angles got and expected agree modulo 2 pi, and every got lies in [-pi, pi]."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    slack = 1e-6 if dtype in ("complex64", "float32") else 1e-12
    finite = np.isfinite(got)
    assert np.all(np.abs(got[finite]) <= math.pi + slack), f"{what}: not wrapped into (-pi, pi]: {got}"
    ok = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), ok, err_msg=f"{what}: non-finite positions")
    dist = np.abs(np.exp(1j * got[ok]) - np.exp(1j * expected[ok]))
    assert np.all(dist <= angle_tol(dtype)), f"{what}: got {got}, expected {expected} (mod 2 pi)"


def assert_complex_log(xp, got, like, expected, dtype, shape, what="logsumexp"):
    """got: backend complex result; expected: scipy's complex128 value(s)."""
    xp.check(got, like, dtype, shape, scalar=True, what=what)
    g = np.asarray(xp.to_numpy(got)).astype(np.complex128)
    e = np.asarray(expected, dtype=np.complex128).reshape(shape)
    assert_values(g.real, e.real, REAL_OF[dtype], f"{what} real part")
    assert_same_angle(g.imag, e.imag, dtype, f"{what} imaginary part")


def assert_phase(xp, got, like, expected, dtype, shape, what="sign"):
    xp.check(got, like, dtype, shape, scalar=True, what=what)
    g = np.asarray(xp.to_numpy(got)).astype(np.complex128)
    e = np.asarray(expected, dtype=np.complex128).reshape(shape)
    ok = np.isfinite(e)
    np.testing.assert_allclose(np.abs(g[ok]), 1.0, rtol=0, atol=angle_tol(dtype), err_msg=f"{what} modulus")
    np.testing.assert_allclose(g[ok], e[ok], rtol=0, atol=angle_tol(dtype), err_msg=what)


def reduced_shape(shape, axis, keepdims=False):
    nd = len(shape)
    axes = tuple(range(nd)) if axis is None else tuple(a % nd for a in np.atleast_1d(axis))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}".replace(" ", "") for a in AXES])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_logsumexp_matches_scipy(xp, dtype, axis):
    xp.subset((dtype, axis) in (("complex128", None), ("complex128", (0, 2)), ("complex64", 1)),
              jax_keep=(dtype, axis) == ("complex128", (0, 2)))
    a_np = complex_data(SHAPE, dtype)
    a = xp.make(a_np)
    ref_in = a_np.astype(np.complex128)
    shape = reduced_shape(SHAPE, axis)

    got = lsearray.logsumexp(a, axis=axis)
    assert_complex_log(xp, got, a, scipy_lse(ref_in, axis=axis), dtype, shape)

    got = lsearray.logsumexp(a, axis=axis, keepdims=True)
    kshape = reduced_shape(SHAPE, axis, keepdims=True)
    assert_complex_log(xp, got, a, scipy_lse(ref_in, axis=axis, keepdims=True), dtype, kshape,
                       "keepdims")

    value, sign = lsearray.logsumexp(a, axis=axis, return_sign=True)
    ref_value, ref_sign = scipy_lse(ref_in, axis=axis, return_sign=True)
    xp.check(value, a, REAL_OF[dtype], shape, scalar=True, what="value")
    assert_values(xp.to_numpy(value), np.reshape(ref_value, shape), REAL_OF[dtype], "value")
    assert_phase(xp, sign, a, ref_sign, dtype, shape)


@pytest.mark.parametrize("a_dtype, b_dtype, out_dtype", [
    ("float64", "complex128", "complex128"),
    ("complex128", "float64", "complex128"),
    ("complex128", "complex128", "complex128"),
    ("float32", "complex64", "complex64"),
    ("complex64", "float32", "complex64"),
    ("float64", "complex64", "complex128"),
    ("complex64", "complex128", "complex128"),
])
@pytest.mark.parametrize("axis", [1, None, (0, 2)], ids=["axis=1", "axis=None", "axis=(0,2)"])
def test_complex_weights(xp, a_dtype, b_dtype, out_dtype, axis):
    xp.subset(axis == 1 and a_dtype in ("float64", "complex64"),
              jax_keep=axis == 1 and (a_dtype, b_dtype) == ("complex64", "float32"))
    rng = np.random.default_rng(SEED + 1)
    if a_dtype.startswith("complex"):
        a_np = complex_data(SHAPE, a_dtype, seed=SEED + 2)
    else:
        a_np = (rng.standard_normal(SHAPE) * 2).astype(a_dtype)
    b_shape = (4, 5)  # broadcasts against a
    if b_dtype.startswith("complex"):
        b_np = (np.exp(1j * rng.uniform(-0.5, 0.5, b_shape)) * rng.uniform(0.5, 2.0, b_shape)).astype(b_dtype)
    else:
        b_np = rng.uniform(0.5, 2.0, b_shape).astype(b_dtype)
    a, b = xp.make(a_np), xp.make(b_np)
    ref_a, ref_b = a_np.astype(np.complex128), b_np.astype(np.complex128)
    shape = reduced_shape(SHAPE, axis)

    got = lsearray.logsumexp(a, axis=axis, b=b)
    assert_complex_log(xp, got, a, scipy_lse(ref_a, axis=axis, b=ref_b), out_dtype, shape)
    value, sign = lsearray.logsumexp(a, axis=axis, b=b, return_sign=True)
    ref_value, ref_sign = scipy_lse(ref_a, axis=axis, b=ref_b, return_sign=True)
    xp.check(value, a, REAL_OF[out_dtype], shape, scalar=True, what="value")
    assert_values(xp.to_numpy(value), np.reshape(ref_value, shape), REAL_OF[out_dtype], "value")
    assert_phase(xp, sign, a, ref_sign, out_dtype, shape)


def test_complex_weights_negative_real_sum_is_not_nan(xp):
    # a real negative total with complex weights is log|s| + i*pi, not nan
    a_np = np.array([[0.0, 0.0], [1.0, 2.0]])
    b_np = np.array([[-1.0 + 0j, -1.0 + 0j], [1.0 + 0j, -1.0 + 0j]])
    a, b = xp.make(a_np), xp.make(b_np)
    got = lsearray.logsumexp(a, axis=1, b=b)
    assert_complex_log(xp, got, a, scipy_lse(a_np, axis=1, b=b_np), "complex128", (2,))
    g = xp.to_numpy(got)
    assert abs(abs(g[0].imag) - math.pi) < 1e-12
    value, sign = lsearray.logsumexp(a, axis=1, b=b, return_sign=True)
    xp.check(value, a, "float64", (2,), what="value")
    assert_values(xp.to_numpy(value), [math.log(2.0), math.log(math.e ** 2 - math.e)], "float64")
    assert_phase(xp, sign, a, [-1.0, -1.0], "complex128", (2,))


def test_complex_wrapping_of_large_imaginary_parts(xp):
    # every imaginary part is far outside (-pi, pi]; the result must be wrapped back into it
    im = np.array([10.0, -10.0, 100.0, 3.2, -3.2, math.pi, -math.pi, 7 * math.pi / 2])
    a_np = (np.linspace(-1.0, 1.0, im.size) + 1j * im).reshape(-1, 1)
    a = xp.make(a_np)
    got = lsearray.logsumexp(a, axis=1)
    assert_complex_log(xp, got, a, scipy_lse(a_np, axis=1), "complex128", (im.size,))
    # two equal terms: log 2 + a, with the imaginary part wrapped
    a_np = np.array([[1.0 + 3.2j, 1.0 + 3.2j], [0.5 - 9.0j, 0.5 - 9.0j]])
    got = lsearray.logsumexp(xp.make(a_np), axis=1)
    expected = [complex(1.0 + math.log(2.0), 3.2 - 2 * math.pi),
                complex(0.5 + math.log(2.0), -9.0 + 4 * math.pi)]
    assert_complex_log(xp, got, xp.make(a_np), expected, "complex128", (2,))


@pytest.mark.filterwarnings("error")  # dask evaluates later, outside any errstate
def test_complex_special_values(xp):
    a_np = np.array([
        [1.0 + 1.0j, -inf + 0j, 0.5 - 2.0j],    # -inf contributes nothing
        [-inf + 0j, -inf + 0j, -inf + 0j],      # all -inf: real part -inf
        [nan + 1.0j, 1.0 + 0j, 0.0 + 0j],       # nan
    ])
    a = xp.make(a_np)
    got = lsearray.logsumexp(a, axis=1)
    xp.check(got, a, "complex128", (3,))
    g = np.asarray(xp.to_numpy(got))
    e = scipy_lse(a_np, axis=1)
    np.testing.assert_allclose(g[0], e[0], rtol=1e-12)
    assert g[1].real == -inf
    assert np.isnan(g[2].real) or np.isnan(g[2].imag), f"nan row gave {g[2]}"
    # b == 0 removes a nan element
    b_np = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    got = lsearray.logsumexp(a, axis=1, b=xp.make(b_np))
    g = np.asarray(xp.to_numpy(got))
    np.testing.assert_allclose(g[2], cmath.log(math.e + 1.0), rtol=1e-12)
    # empty reductions: -inf real part
    e_np = np.zeros((2, 0), dtype=np.complex128)
    got = lsearray.logsumexp(xp.make(e_np), axis=1)
    xp.check(got, xp.make(e_np), "complex128", (2,))
    assert np.all(np.asarray(xp.to_numpy(got)).real == -inf)


def test_complex_empty_and_all_neginf_with_sign_keep_dtypes(xp):
    xp.subset(True, jax_keep=False)
    # the sign of a complex reduction is complex even where the sum is empty or zero (scipy gives
    # nan+nanj there, lsearray 0 -- the value is not checked, only the kinds), the value is real -inf
    for a_np, axis, shape in [(np.zeros((3, 0), dtype=np.complex128), 1, (3,)),
                              (np.zeros((0,), dtype=np.complex128), None, ()),
                              (np.full((2, 2), -inf + 0j), 1, (2,))]:
        a = xp.make(a_np)
        value, sign = lsearray.logsumexp(a, axis=axis, return_sign=True)
        xp.check(value, a, "float64", shape, scalar=True, what=f"value of {a_np.shape} input")
        xp.check(sign, a, "complex128", shape, scalar=True, what=f"sign of {a_np.shape} input")
        assert np.all(np.asarray(xp.to_numpy(value)) == -inf)


@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_complex_temperature(xp, tau):
    xp.subset(tau == 0.5)
    # tau * log(sum(exp(a / tau))): exp(result / tau) is the sum, whatever the branch of the log
    a_np = complex_data((3, 4), seed=SEED + 3)
    a = xp.make(a_np)
    got = lsearray.logsumexp(a, axis=1, temperature=tau)
    xp.check(got, a, "complex128", (3,))
    g = np.asarray(xp.to_numpy(got))
    s = np.sum(np.exp(a_np / tau), axis=1)
    np.testing.assert_allclose(g.real, tau * np.log(np.abs(s)), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.exp(1j * g.imag / tau), s / np.abs(s), rtol=0, atol=1e-11)
    value, sign = lsearray.logsumexp(a, axis=1, temperature=tau, return_sign=True)
    xp.check(value, a, "float64", (3,), what="value")
    assert_values(xp.to_numpy(value), tau * np.log(np.abs(s)), "float64")
    assert_phase(xp, sign, a, s / np.abs(s), "complex128", (3,))


def test_complex_full_reduction_kind(xp):
    xp.subset(True, jax_keep=False)
    a_np = np.array([1.0 + 2.0j, -0.5 + 0.25j])
    a = xp.make(a_np)
    got = lsearray.logsumexp(a)
    xp.check(got, a, "complex128", (), scalar=True)
    if xp.name.startswith("numpy"):
        assert isinstance(got, np.complex128)
    np.testing.assert_allclose(complex(xp.to_numpy(got)), complex(scipy_lse(a_np)), rtol=1e-12)
