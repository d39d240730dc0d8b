"""Autodiff through lsearray: torch autograd (gradcheck in float64) and jax.grad / jax.jit.

d logsumexp(x) / dx = softmax(x) along the reduced axes; a slice that is entirely -inf has a zero
gradient (not nan). Expected softmax values come from the slow NumPy reference.
"""

import math

import numpy as np
import pytest

import lsearray
from backends import assert_values, make_backend
from reference import slow_log_softmax, slow_logmeanexp, slow_logsumexp, slow_softmax

inf = math.inf

AXES = [1, 0, -1, None, (0, 1), (0, 2)]


# ================================================================================================
# torch
# ================================================================================================

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t(torch, a, requires_grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=requires_grad)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}".replace(" ", "") for a in AXES])
def test_torch_grad_of_logsumexp_is_softmax(torch, axis, keepdims):
    x_np = np.random.default_rng(0).standard_normal((3, 4, 5)) * 3
    x = _t(torch, x_np)
    y = lsearray.logsumexp(x, axis=axis, keepdims=keepdims)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64 and y.requires_grad
    assert_values(y.detach().numpy(), slow_logsumexp(x_np, axis=axis, keepdims=keepdims), "float64")
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.dtype == torch.float64 and grad.shape == x.shape
    assert_values(grad.numpy(), slow_softmax(x_np, axis), "float64", "grad")


def test_torch_grad_of_logsumexp_float32(torch):
    x_np = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    x = torch.tensor(x_np, requires_grad=True)
    y = lsearray.logsumexp(x, axis=1)
    assert y.dtype == torch.float32
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.dtype == torch.float32
    assert_values(grad.numpy(), slow_softmax(x_np, axis=1), "float32", "grad")


def _gradcheck(torch, fn, *inputs):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def _x(torch, shape=(3, 4), seed=2):
    return _t(torch, np.random.default_rng(seed).standard_normal(shape))


def _b(torch, shape=(3, 4), seed=3):
    return _t(torch, np.random.default_rng(seed).uniform(0.5, 2.0, shape))


@pytest.mark.parametrize("axis", [1, 0, None, (0, 1)], ids=["axis=1", "axis=0", "axis=None", "axis=(0,1)"])
def test_torch_gradcheck_logsumexp(torch, axis):
    _gradcheck(torch, lambda x: lsearray.logsumexp(x, axis=axis), _x(torch))
    _gradcheck(torch, lambda x: lsearray.logsumexp(x, axis=axis, keepdims=True), _x(torch))


def test_torch_gradcheck_logsumexp_with_b(torch):
    _gradcheck(torch, lambda x, b: lsearray.logsumexp(x, axis=1, b=b), _x(torch), _b(torch))
    # b broadcast along the reduced axis
    _gradcheck(torch, lambda x, b: lsearray.logsumexp(x, axis=0, b=b), _x(torch), _b(torch, (1, 4)))
    _gradcheck(torch, lambda x, b: lsearray.logsumexp(x, b=b), _x(torch), _b(torch, (4,)))


def test_torch_gradcheck_logsumexp_signed_b_value(torch):
    # with return_sign the first output is log|sum|, differentiable where the sum is not zero
    x = _t(torch, [[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    b = _t(torch, [[1.0, 2.0, -1.0], [-1.0, 0.5, 0.25]])
    _gradcheck(torch, lambda x, b: lsearray.logsumexp(x, axis=1, b=b, return_sign=True)[0], x, b)


@pytest.mark.parametrize("tau", [0.5, 2.5])
def test_torch_gradcheck_temperature_float(torch, tau):
    _gradcheck(torch, lambda x: lsearray.logsumexp(x, axis=1, temperature=tau), _x(torch))
    _gradcheck(torch, lambda x, b: lsearray.logsumexp(x, axis=0, b=b, temperature=tau),
               _x(torch), _b(torch))
    _gradcheck(torch, lambda x: lsearray.softmax(x, axis=1, temperature=tau), _x(torch))
    _gradcheck(torch, lambda x: lsearray.log_softmax(x, axis=0, temperature=tau), _x(torch))
    _gradcheck(torch, lambda x: lsearray.logmeanexp(x, axis=1, temperature=tau), _x(torch))


def test_torch_gradcheck_temperature_tensor(torch):
    tau = _t(torch, 1.7)
    assert tau.ndim == 0
    _gradcheck(torch, lambda x, t: lsearray.logsumexp(x, axis=1, temperature=t), _x(torch), tau)
    _gradcheck(torch, lambda x, b, t: lsearray.logsumexp(x, axis=None, b=b, temperature=t),
               _x(torch), _b(torch), _t(torch, 0.8))
    _gradcheck(torch, lambda x, t: lsearray.logmeanexp(x, axis=0, temperature=t), _x(torch), tau)
    _gradcheck(torch, lambda x, t: lsearray.softmax(x, axis=1, temperature=t), _x(torch), tau)
    _gradcheck(torch, lambda x, t: lsearray.log_softmax(x, axis=1, temperature=t), _x(torch), tau)


def test_torch_temperature_tensor_gradient_value(torch):
    # d/dtau [tau * log sum exp(x / tau)] = lse(x/tau) - sum(softmax(x/tau) * x / tau)
    x_np = np.array([0.0, 1.0, 3.0, -2.0])
    tau_v = 1.5
    tau = _t(torch, tau_v)
    y = lsearray.logsumexp(_t(torch, x_np, requires_grad=False), temperature=tau)
    assert isinstance(y, torch.Tensor) and y.shape == () and y.dtype == torch.float64
    (g,) = torch.autograd.grad(y, tau)
    p = slow_softmax(x_np, temperature=tau_v)
    expected = slow_logsumexp(x_np / tau_v) - np.sum(p * x_np / tau_v)
    assert_values(g.numpy(), expected, "float64", "d/dtau")


@pytest.mark.parametrize("axis", [1, 0, None, (0, 1)], ids=["axis=1", "axis=0", "axis=None", "axis=(0,1)"])
def test_torch_gradcheck_softmax_log_softmax(torch, axis):
    _gradcheck(torch, lambda x: lsearray.softmax(x, axis=axis), _x(torch))
    _gradcheck(torch, lambda x: lsearray.log_softmax(x, axis=axis), _x(torch))


def test_torch_softmax_values_with_grad(torch):
    x_np = np.random.default_rng(4).standard_normal((3, 4))
    x = _t(torch, x_np)
    s = lsearray.softmax(x, axis=1)
    assert isinstance(s, torch.Tensor) and s.requires_grad and s.dtype == torch.float64
    assert_values(s.detach().numpy(), slow_softmax(x_np, axis=1), "float64")
    ls = lsearray.log_softmax(x, axis=1)
    assert ls.requires_grad
    assert_values(ls.detach().numpy(), slow_log_softmax(x_np, axis=1), "float64")
    # d/dx sum(log_softmax(x) * w) = w - softmax * sum(w)
    w_np = np.random.default_rng(5).standard_normal((3, 4))
    (g,) = torch.autograd.grad((ls * _t(torch, w_np, False)).sum(), x)
    p = slow_softmax(x_np, axis=1)
    assert_values(g.numpy(), w_np - p * w_np.sum(axis=1, keepdims=True), "float64", "grad")


@pytest.mark.parametrize("axis", [1, None], ids=["axis=1", "axis=None"])
def test_torch_gradcheck_logmeanexp(torch, axis):
    _gradcheck(torch, lambda x: lsearray.logmeanexp(x, axis=axis), _x(torch))
    _gradcheck(torch, lambda x, b: lsearray.logmeanexp(x, axis=axis, b=b), _x(torch), _b(torch))
    x_np = np.random.default_rng(6).standard_normal((3, 4))
    x = _t(torch, x_np)
    y = lsearray.logmeanexp(x, axis=axis)
    assert_values(y.detach().numpy(), slow_logmeanexp(x_np, axis=axis), "float64")
    (g,) = torch.autograd.grad(y.sum(), x)
    assert_values(g.numpy(), slow_softmax(x_np, axis=axis), "float64", "grad")


@pytest.mark.parametrize("tau", [30.0, 1e4])
def test_torch_gradcheck_logmeanexp_near_the_max(torch, tau):
    """A temperature large against the spread of x takes the expm1 form near the max (its
    Taylor polynomials below |z| = 2**-9 at tau = 1e4): gradients in x, b and tau stay exact."""
    _gradcheck(torch, lambda x: lsearray.logmeanexp(x, axis=1, temperature=tau), _x(torch))
    _gradcheck(torch, lambda x, b: lsearray.logmeanexp(x, axis=0, b=b, temperature=tau), _x(torch), _b(torch))
    _gradcheck(torch, lambda x, t: lsearray.logmeanexp(x, axis=1, temperature=t), _x(torch), _t(torch, tau))


@pytest.mark.parametrize("tau, dtype", [(1e300, "float64"), (1e39, "float32")])
def test_torch_grad_of_logmeanexp_is_the_mean_at_huge_temperatures(torch, tau, dtype):
    """As tau -> inf logmeanexp tends to the weighted mean of x, and its gradient to b / sum(b)."""
    x = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=getattr(torch, dtype), requires_grad=True)
    b = torch.tensor([1.0, 2.0, 3.0, 2.0], dtype=getattr(torch, dtype))
    (g,) = torch.autograd.grad(lsearray.logmeanexp(x, b=b, temperature=tau), x)
    assert_values(g.numpy(), (b / b.sum()).numpy(), dtype, "d/dx")


def test_torch_grad_wrt_b_value(torch):
    # d/db_i log(sum b exp(a)) = exp(a_i) / sum(b exp(a))
    a_np = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, -3.0]])
    b_np = np.array([[1.0, 0.5, 2.0], [3.0, 1.0, 1.0]])
    b = _t(torch, b_np)
    y = lsearray.logsumexp(_t(torch, a_np, False), axis=1, b=b)
    (g,) = torch.autograd.grad(y.sum(), b)
    expected = np.exp(a_np) / np.sum(b_np * np.exp(a_np), axis=1, keepdims=True)
    assert_values(g.numpy(), expected, "float64", "d/db")


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp"])
def test_torch_all_neginf_slice_has_zero_gradient(torch, func):
    x = _t(torch, [[-inf, -inf], [0.0, 1.0]])
    y = getattr(lsearray, func)(x, axis=1)
    assert y[0].item() == -inf
    (g,) = torch.autograd.grad(y.sum(), x)
    g = g.numpy()
    assert not np.isnan(g).any(), f"nan in gradient: {g}"
    np.testing.assert_array_equal(g[0], [0.0, 0.0])
    assert_values(g[1], slow_softmax(np.array([0.0, 1.0])), "float64", "finite row")


def test_torch_all_neginf_full_reduction_and_weights_zero_gradient(torch):
    x = _t(torch, [-inf, -inf, -inf])
    (g,) = torch.autograd.grad(lsearray.logsumexp(x), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0, 0.0])
    # with weights: the row of -inf contributes no gradient to x (and none that is nan to b)
    x = _t(torch, [[-inf, -inf], [0.0, 1.0]])
    b = _t(torch, [[1.0, 2.0], [1.0, 2.0]])
    (gx, gb) = torch.autograd.grad(lsearray.logsumexp(x, axis=1, b=b).sum(), (x, b))
    np.testing.assert_array_equal(gx.numpy()[0], [0.0, 0.0])
    assert not np.isnan(gb.numpy()).any(), f"nan in d/db: {gb.numpy()}"
    # a -inf element of a finite row has gradient exactly 0
    x = _t(torch, [-inf, 0.0, 1.0])
    (g,) = torch.autograd.grad(lsearray.logsumexp(x), x)
    assert g[0].item() == 0.0
    assert_values(g.numpy(), slow_softmax(np.array([-inf, 0.0, 1.0])), "float64")


# Sums of nothing (every term -inf or of weight 0) are the constant -inf: no input gets a gradient
# from them, as logsumexp's all -inf slices (docs/user_guide/semantics.md).
NOTHING_X1, NOTHING_X2 = [-inf, -inf, 1.0, 2.0], [-inf, 0.5, -inf, 2.0]
NOTHING_G1, NOTHING_G2 = [0.0, 0.0, 1.0, 0.5], [0.0, 1.0, 0.0, 0.5]
# logcumsumexp: d/dx sum(out) over [-inf, -inf, -inf, 1, 2]: out[3] = 1, out[4] = log(e + e^2)
E = math.e
NOTHING_SCAN, NOTHING_SCAN_GRAD = [-inf, -inf, -inf, 1.0, 2.0], [0.0, 0.0, 0.0, 1 + 1 / (1 + E), E / (1 + E)]


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_torch_sums_of_nothing_have_zero_gradient(torch, tau):
    x1, x2 = _t(torch, NOTHING_X1), _t(torch, NOTHING_X2)
    out = lsearray.logaddexp(x1, x2, temperature=tau)
    assert out[0].item() == -inf
    g1, g2 = torch.autograd.grad(out.sum(), (x1, x2))
    np.testing.assert_array_equal(g1.numpy(), NOTHING_G1)
    np.testing.assert_array_equal(g2.numpy(), NOTHING_G2)
    x = _t(torch, NOTHING_SCAN)
    (g,) = torch.autograd.grad(lsearray.logcumsumexp(x).sum(), x)
    assert_values(g.numpy(), NOTHING_SCAN_GRAD, "float64", "logcumsumexp")
    x = _t(torch, [[-inf, -inf, 0.0], [-inf, -inf, -inf]])
    (g,) = torch.autograd.grad(lsearray.logcumsumexp(x, axis=1, temperature=tau).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    # logmeanexp: an all -inf slice gives nothing to its weights either
    x, b = _t(torch, [[-inf, -inf], [0.0, 0.0]]), _t(torch, [[1.0, 2.0], [1.0, 3.0]])
    gx, gb = torch.autograd.grad(lsearray.logmeanexp(x, axis=1, b=b, temperature=tau).sum(), (x, b))
    np.testing.assert_array_equal(gx.numpy(), [[0.0, 0.0], [0.25, 0.75]])
    np.testing.assert_array_equal(gb.numpy(), [[0.0, 0.0], [0.0, 0.0]])


# ================================================================================================
# jax
# ================================================================================================

@pytest.fixture(scope="module")
def jax():
    make_backend("jax")  # imports jax and enables x64 once
    import jax

    return jax


def _jnp(a):
    import jax.numpy as jnp

    out = jnp.asarray(np.asarray(a, dtype=np.float64))
    assert out.dtype == jnp.float64
    return out


@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}".replace(" ", "") for a in AXES])
def test_jax_grad_of_logsumexp_is_softmax(jax, axis):
    make_backend("jax").subset(axis == (0, 2))  # axis=1 and None: the other jax tests
    x_np = np.random.default_rng(7).standard_normal((3, 4, 5)) * 3
    g = jax.grad(lambda x: lsearray.logsumexp(x, axis=axis).sum())(_jnp(x_np))
    assert g.dtype == np.float64 and g.shape == x_np.shape
    assert_values(np.asarray(g), slow_softmax(x_np, axis), "float64", "grad")


def test_jax_grad_full_reduction_scalar(jax):
    x_np = np.array([0.5, -1.0, 2.0])
    g = jax.grad(lsearray.logsumexp)(_jnp(x_np))
    assert_values(np.asarray(g), slow_softmax(x_np), "float64")
    g = jax.grad(lambda x: lsearray.logsumexp(x, temperature=2.0))(_jnp(x_np))
    assert_values(np.asarray(g), slow_softmax(x_np, temperature=2.0), "float64")
    g = jax.grad(lsearray.logmeanexp)(_jnp(x_np))
    assert_values(np.asarray(g), slow_softmax(x_np), "float64")


def test_jax_grad_wrt_b(jax):
    a_np = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, -3.0]])
    b_np = np.array([[1.0, 0.5, 2.0], [3.0, 1.0, 1.0]])
    g = jax.grad(lambda b: lsearray.logsumexp(_jnp(a_np), axis=1, b=b).sum())(_jnp(b_np))
    expected = np.exp(a_np) / np.sum(b_np * np.exp(a_np), axis=1, keepdims=True)
    assert_values(np.asarray(g), expected, "float64", "d/db")


def test_jax_grad_log_softmax(jax):
    x_np = np.random.default_rng(8).standard_normal((3, 4))
    w_np = np.random.default_rng(9).standard_normal((3, 4))
    w = _jnp(w_np)
    g = jax.grad(lambda x: (lsearray.log_softmax(x, axis=1) * w).sum())(_jnp(x_np))
    p = slow_softmax(x_np, axis=1)
    assert_values(np.asarray(g), w_np - p * w_np.sum(axis=1, keepdims=True), "float64")
    g = jax.grad(lambda x: (lsearray.softmax(x, axis=1) * w).sum())(_jnp(x_np))
    assert_values(np.asarray(g), p * (w_np - np.sum(p * w_np, axis=1, keepdims=True)), "float64")


def test_jax_jit(jax):
    import jax.numpy as jnp

    x_np = np.random.default_rng(10).standard_normal((4, 6))
    x = _jnp(x_np)
    f = jax.jit(lambda x: lsearray.logsumexp(x, axis=1))
    got = f(x)
    assert isinstance(got, jax.Array) and got.dtype == jnp.float64 and got.shape == (4,)
    assert_values(np.asarray(got), slow_logsumexp(x_np, axis=1), "float64")
    assert_values(np.asarray(f(x + 1.0)), slow_logsumexp(x_np + 1.0, axis=1), "float64")

    b_np = np.random.default_rng(11).uniform(-1.0, 1.0, (4, 6))
    value, sign = jax.jit(lambda x, b: lsearray.logsumexp(x, axis=0, b=b, return_sign=True))(x, _jnp(b_np))
    ref_value, ref_sign = slow_logsumexp(x_np, axis=0, b=b_np, return_sign=True)
    assert_values(np.asarray(value), ref_value, "float64")
    assert_values(np.asarray(sign), ref_sign, "float64")

    for func, ref, kw in [
        (lsearray.softmax, slow_softmax, dict(axis=1)),
        (lsearray.log_softmax, slow_log_softmax, dict(axis=0, temperature=2.0)),
        (lsearray.logmeanexp, slow_logmeanexp, dict(axis=1)),
        (lsearray.logsumexp, slow_logsumexp, dict(axis=None, keepdims=True)),
    ]:
        got = jax.jit(lambda x, func=func, kw=kw: func(x, **kw))(x)
        assert isinstance(got, jax.Array)
        assert_values(np.asarray(got), ref(x_np, **kw), "float64", func.__name__)

    # special values under jit: nan / inf / all -inf rows
    s_np = np.array([[-inf, -inf, -inf], [inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [0.0, -inf, 2.0]])
    got = f(_jnp(s_np))
    assert_values(np.asarray(got), slow_logsumexp(s_np, axis=1), "float64", "special values")


def test_jax_grad_under_jit(jax):
    x_np = np.random.default_rng(12).standard_normal((3, 5))
    g = jax.jit(jax.grad(lambda x: lsearray.logsumexp(x, axis=1).sum()))(_jnp(x_np))
    assert_values(np.asarray(g), slow_softmax(x_np, axis=1), "float64")


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp"])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_jax_all_neginf_slice_has_zero_gradient(jax, func, jit):
    f = jax.grad(lambda x: getattr(lsearray, func)(x, axis=1).sum())
    if jit:
        f = jax.jit(f)
    g = np.asarray(f(_jnp([[-inf, -inf], [0.0, 1.0]])))
    assert not np.isnan(g).any(), f"nan in gradient: {g}"
    np.testing.assert_array_equal(g[0], [0.0, 0.0])
    assert_values(g[1], slow_softmax(np.array([0.0, 1.0])), "float64", "finite row")
    g = np.asarray(jax.grad(lambda x: getattr(lsearray, func)(x))(_jnp([-inf, -inf])))
    np.testing.assert_array_equal(g, [0.0, 0.0])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_jax_sums_of_nothing_have_zero_gradient(jax, jit):
    def wrap(f):
        return jax.jit(f) if jit else f

    g1, g2 = wrap(jax.grad(lambda u, v: lsearray.logaddexp(u, v).sum(), argnums=(0, 1)))(
        _jnp(NOTHING_X1), _jnp(NOTHING_X2))
    np.testing.assert_array_equal(np.asarray(g1), NOTHING_G1)
    np.testing.assert_array_equal(np.asarray(g2), NOTHING_G2)
    g = wrap(jax.grad(lambda x: lsearray.logcumsumexp(x).sum()))(_jnp(NOTHING_SCAN))
    assert_values(np.asarray(g), NOTHING_SCAN_GRAD, "float64", "logcumsumexp")
    gx, gb = wrap(jax.grad(lambda x, b: lsearray.logmeanexp(x, axis=1, b=b).sum(), argnums=(0, 1)))(
        _jnp([[-inf, -inf], [0.0, 0.0]]), _jnp([[1.0, 2.0], [1.0, 3.0]]))
    np.testing.assert_array_equal(np.asarray(gx), [[0.0, 0.0], [0.25, 0.75]])
    np.testing.assert_array_equal(np.asarray(gb), [[0.0, 0.0], [0.0, 0.0]])


def test_torch_elements_removed_by_zero_weight_have_zero_gradient(torch):
    b = _t(torch, [0.0, 1.0, 1.0], requires_grad=False)
    for bad in (inf, np.nan, -inf):
        x = _t(torch, [bad, 1.0, 2.0])
        (g,) = torch.autograd.grad(lsearray.logsumexp(x, b=b), x)
        np.testing.assert_array_equal(g.numpy()[0], 0.0, err_msg=f"removed {bad}")
        assert_values(g.numpy()[1:], slow_softmax(np.array([1.0, 2.0])), "float64", f"removed {bad}")
    # return_sign: the value's gradient is also zero on an all -inf slice
    x = _t(torch, [[-inf, -inf], [0.0, 1.0]])
    (g,) = torch.autograd.grad(lsearray.logsumexp(x, axis=1, return_sign=True)[0].sum(), x)
    np.testing.assert_array_equal(g.numpy()[0], [0.0, 0.0])


def test_jax_elements_removed_by_zero_weight_have_zero_gradient(jax):
    b = _jnp([0.0, 1.0, 1.0])
    for bad in (inf, np.nan):
        g = np.asarray(jax.grad(lambda x: lsearray.logsumexp(x, b=b))(_jnp([bad, 1.0, 2.0])))
        np.testing.assert_array_equal(g[0], 0.0, err_msg=f"removed {bad}")
        assert_values(g[1:], slow_softmax(np.array([1.0, 2.0])), "float64", f"removed {bad}")


def test_jax_grad_wrt_temperature(jax):
    x_np = np.array([0.0, 1.0, 3.0])
    tau = 1.5
    g = jax.grad(lambda t: lsearray.logsumexp(_jnp(x_np), temperature=t))(tau)
    p = slow_softmax(x_np, temperature=tau)
    assert_values(np.asarray(g), slow_logsumexp(x_np / tau) - np.sum(p * x_np / tau), "float64")
