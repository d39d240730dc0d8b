"""JAX arrays on the lsecore kernel: values, dtypes, jit, grad, jacfwd, vmap and the fallbacks."""

import numpy as np
import pytest

import lsearray
from tests.backends import make_backend

jax = pytest.importorskip("jax")
make_backend("jax")  # enables x64 once, as the other JAX tests
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 4, 5)) * 3


def _lse(x, axis, tau=1.0):
    """Slow float64 reference: tau log(sum exp(x / tau)), shifted by the max."""
    x = np.asarray(x, np.float64) / tau
    m = np.max(x, axis=axis, keepdims=True)
    return tau * (np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis=axis))


def _softmax(x, axis, tau=1.0):
    z = np.asarray(x, np.float64) / tau
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _count(axis):
    return X.size if axis is None else int(np.prod([X.shape[k] for k in np.atleast_1d(axis)]))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
@pytest.mark.parametrize("jit", [False, True])
def test_values_match_float64_reference(dtype, axis, jit):
    x = jnp.asarray(X, dtype=dtype)
    ref_in = np.asarray(x.astype(jnp.float64))
    rtol = {"float64": 1e-15, "float32": 2e-7, "float16": 1e-3, "bfloat16": 8e-3}[dtype]
    wrap = jax.jit if jit else (lambda f: f)
    cases = {
        "logsumexp": (lambda a: lsearray.logsumexp(a, axis=axis, temperature=0.7),
                      _lse(ref_in, axis, 0.7)),
        "logmeanexp": (lambda a: lsearray.logmeanexp(a, axis=axis),
                       _lse(ref_in, axis) - np.log(_count(axis))),
        "softmax": (lambda a: lsearray.softmax(a, axis=axis, temperature=2.0),
                    _softmax(ref_in, axis, 2.0)),
        "log_softmax": (lambda a: lsearray.log_softmax(a, axis=axis),
                        np.log(_softmax(ref_in, axis))),
    }
    for name, (f, ref) in cases.items():
        got = wrap(f)(x)
        assert isinstance(got, jax.Array) and got.dtype == x.dtype, name
        np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=rtol, atol=rtol,
                                   err_msg=name)


def test_keepdims_shape():
    x = jnp.asarray(X)
    got = lsearray.logsumexp(x, axis=(0, 2), keepdims=True)
    assert got.shape == (1, 4, 1)
    np.testing.assert_allclose(np.asarray(got)[0, :, 0], _lse(X, (0, 2)), rtol=1e-15)


def test_float64_results_equal_the_numpy_kernel_bit_for_bit():
    x = RNG.normal(size=(200, 3000)) * 50
    for axis in (None, 0, 1):
        np.testing.assert_array_equal(np.asarray(lsearray.logsumexp(jnp.asarray(x), axis=axis)),
                                      lsearray.logsumexp(x, axis=axis))
        np.testing.assert_array_equal(
            np.asarray(jax.jit(lambda a: lsearray.logmeanexp(a, axis=axis))(jnp.asarray(x))),
            lsearray.logmeanexp(x, axis=axis))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis", [((7,), None), ((5, 1), 1), ((1, 1), None), ((40, 33), 1),
                                         ((30, 2000), 1), ((3, 4, 500), (0, 2)), ((6, 5, 4), 0)])
@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_custom_call_equals_the_numpy_kernel_bit_for_bit(dtype, shape, axis, tau):
    x = (RNG.normal(size=shape) * 40).astype(dtype)
    for keepdims in (False, True):
        ours = jax.jit(lambda a: lsearray.logsumexp(a, axis=axis, keepdims=keepdims, temperature=tau))
        got = np.asarray(ours(jnp.asarray(x)))
        ref = lsearray.logsumexp(x, axis=axis, keepdims=keepdims, temperature=tau)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, ref)
    got = np.asarray(lsearray.logmeanexp(jnp.asarray(x), axis=axis, temperature=tau))
    np.testing.assert_array_equal(got, lsearray.logmeanexp(x, axis=axis, temperature=tau))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis", [((7,), None), ((40, 33), 1), ((30, 2000), 1),
                                         ((3, 4, 500), (1, 2)), ((2, 70000), 1), ((5, 1), 0)])
@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_softmax_custom_call_equals_the_numpy_kernel_bit_for_bit(dtype, shape, axis, func):
    f = getattr(lsearray, func)
    x = (RNG.normal(size=shape) * 40).astype(dtype)
    for tau in (1.0, 0.3):
        got = np.asarray(jax.jit(lambda a: f(a, axis=axis, temperature=tau))(jnp.asarray(x)))
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, f(x, axis=axis, temperature=tau))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_custom_calls_keep_subnormals(dtype):
    # XLA flushes subnormals to zero in its own code; the kernel's results keep them
    tiny = np.finfo(dtype).smallest_subnormal * 3
    x = np.array([[tiny, -np.inf], [0.0, -720.0 if dtype == "float64" else -90.0]], dtype=dtype)
    assert lsearray.logsumexp(x, axis=1)[0] == tiny
    assert 0 < lsearray.softmax(x, axis=1)[1, 1] < np.finfo(dtype).tiny
    for func in (lsearray.logsumexp, lsearray.logmeanexp, lsearray.softmax, lsearray.log_softmax):
        got = jax.jit(lambda a: func(a, axis=1))(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(got), func(x, axis=1))


def test_within_an_ulp_of_mpmath_where_the_log_cancels():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    x = np.array([-1e-3, -40.0, -45.0, -38.5])  # the result is tiny against the max
    got = float(lsearray.logsumexp(jnp.asarray(x)))
    exact = float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in x)))
    assert abs(got - exact) <= np.spacing(abs(exact))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values_as_numpy(dtype):
    big = np.finfo(dtype).max
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 1.0], [0.0, -np.inf],
                  [np.inf, -np.inf], [np.inf, np.inf], [big, big]], dtype=dtype)
    for func in (lsearray.logsumexp, lsearray.logmeanexp):
        np.testing.assert_array_equal(np.asarray(func(jnp.asarray(x), axis=1)), func(x, axis=1))


@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
def test_grad_and_jacfwd_are_the_softmax(axis):
    x = jnp.asarray(X)
    soft = _softmax(X, axis, 0.5)
    g = jax.grad(lambda a: lsearray.logsumexp(a, axis=axis, temperature=0.5).sum())(x)
    np.testing.assert_allclose(np.asarray(g), soft, rtol=1e-13)
    g = jax.jit(jax.grad(lambda a: lsearray.logmeanexp(a, axis=axis).sum()))(x)
    np.testing.assert_allclose(np.asarray(g), _softmax(X, axis), rtol=1e-13)  # the mean's too
    row = jnp.asarray(X[0, 0])
    jac = jax.jacfwd(lambda a: lsearray.logsumexp(a))(row)
    np.testing.assert_allclose(np.asarray(jac), _softmax(X[0, 0], None), rtol=1e-13)


def test_all_neginf_slice_has_zero_gradient():
    g = jax.grad(lambda a: lsearray.logsumexp(a, axis=1).sum())(
        jnp.asarray([[-np.inf, -np.inf], [0.0, 1.0]]))
    np.testing.assert_array_equal(np.asarray(g)[0], [0.0, 0.0])


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp", "softmax", "log_softmax"])
def test_check_grads_orders_1_and_2(func):
    f = getattr(lsearray, func)
    check_grads(lambda a: f(a, axis=1, temperature=1.5), (jnp.asarray(X[:2, :3, :2]),), order=2,
                modes=("fwd", "rev"))


def test_softmax_gradients_against_jax():
    x = jnp.asarray(X)
    w = jnp.asarray(RNG.normal(size=X.shape))
    for ours, theirs in ((lsearray.softmax, jax.nn.softmax), (lsearray.log_softmax, jax.nn.log_softmax)):
        g = jax.grad(lambda a: (ours(a, axis=(0, 2), temperature=2.0) * w).sum())(x)
        ref = jax.grad(lambda a: (theirs(a / 2.0, axis=(0, 2)) * w).sum())(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-12, atol=1e-15)


def test_vmap_and_vmap_of_grad():
    x = jnp.asarray(X)
    got = jax.vmap(lambda a: lsearray.logsumexp(a, axis=1))(x)
    np.testing.assert_allclose(np.asarray(got), _lse(X, 2), rtol=1e-15)
    got = jax.jit(jax.vmap(lambda a: lsearray.softmax(a, axis=0), in_axes=2, out_axes=2))(x)
    np.testing.assert_allclose(np.asarray(got), _softmax(X, 0), rtol=1e-14)
    g = jax.vmap(jax.grad(lambda a: lsearray.logsumexp(a)))(x)
    np.testing.assert_allclose(np.asarray(g), _softmax(X, (1, 2)), rtol=1e-13)


def test_jitted_call_reaches_the_kernel():
    jaxpr = str(jax.make_jaxpr(lambda a: lsearray.logsumexp(a, axis=1))(jnp.asarray(X)))
    assert "lsearray_logsumexp" in jaxpr and "platform_index" in jaxpr
    assert "pure_callback" not in jaxpr
    hlo = jax.jit(lambda a: lsearray.logmeanexp(a, axis=1)).lower(jnp.asarray(X)).as_text()
    assert "custom_call @lsearray_logmeanexp" in hlo and "callback" not in hlo
    hlo = jax.jit(lambda a: lsearray.log_softmax(a, axis=1)).lower(jnp.asarray(X)).as_text()
    assert "custom_call @lsearray_log_softmax" in hlo and "callback" not in hlo
    # one long row: NumPy's softmax splits it between threads, which the callback runs
    hlo = jax.jit(lambda a: lsearray.softmax(a)).lower(jnp.zeros(1 << 17)).as_text()
    assert "callback" in hlo and "lsearray_softmax" not in hlo


def test_fallbacks_trace_without_the_kernel():
    x = jnp.asarray(X)
    jaxpr = str(jax.make_jaxpr(lambda a: lsearray.logsumexp(a, axis=1, return_sign=True))(x))
    assert "pure_callback" not in jaxpr
    value, sign = jax.jit(lambda a: lsearray.logsumexp(a, axis=1, return_sign=True))(x)
    np.testing.assert_allclose(np.asarray(value), _lse(X, 1), rtol=1e-14)
    np.testing.assert_array_equal(np.asarray(sign), 1.0)
    z = jnp.asarray(X + 0.5j)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda a: lsearray.logsumexp(a, axis=1))(z)),
                               _lse(X, 1) + 0.5j, rtol=1e-14)
    tau = jnp.asarray(2.0)
    got = jax.grad(lambda t: lsearray.logsumexp(x, temperature=t))(tau)
    assert np.isfinite(float(got))
    empty = lsearray.logsumexp(jnp.zeros((0, 3)), axis=0)
    np.testing.assert_array_equal(np.asarray(empty), np.full(3, -np.inf))
