"""where= masks against mpmath over the kept elements, slices with nothing kept, gradients and memory."""

import math
import tracemalloc
import warnings

import mpmath
import numpy as np
import pytest

import lsearray
from awkward_arrays import seed_for
from backends import assert_values
from reference import mp_logmeanexp, mp_logsumexp, slow_log_softmax, slow_logcumsumexp, slow_softmax, ulp_error

__all__ = []

inf, nan = math.inf, math.nan
REDUCTIONS = ["logsumexp", "logmeanexp"]
NORMALIZERS = ["softmax", "log_softmax"]


def _data(tag, shape, keep=0.6):
    """Normal data, a mask keeping about ``keep`` of it, and nan, +inf and huge values in
    some of the left-out elements (the mask must hide them)."""
    rng = np.random.default_rng(seed_for(tag))
    a = rng.normal(0.0, 5.0, shape)
    mask = rng.uniform(size=shape) < keep
    hidden = ~mask & (rng.uniform(size=shape) < 0.5)
    a[hidden] = rng.choice([nan, inf, -inf, 1e30], size=int(hidden.sum()))
    return a, mask


def _kept_rows(a, mask, axis):
    """The kept elements of each slice along ``axis`` (an int), as lists, in the result's order."""
    a, mask = np.moveaxis(a, axis, -1), np.moveaxis(np.broadcast_to(mask, a.shape), axis, -1)
    return [a[i][mask[i]] for i in np.ndindex(a.shape[:-1])], a.shape[:-1]


# ------------------------------------------------------------------------------------------------
# NumPy: values against mpmath over the kept elements
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("func", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("axis", [0, 1])
def test_reductions_within_an_ulp_of_mpmath(func, dtype, axis):
    a, mask = _data(f"{func}-{axis}", (37, 41))
    mask[:, 3] = False                       # a slice with nothing kept along axis 0
    mask[5, :] = False                       # and along axis 1
    a = a.astype(dtype)
    got = getattr(lsearray, func)(a, axis=axis, where=mask)
    assert got.dtype == dtype
    rows, shape = _kept_rows(a, mask, axis)
    assert got.shape == shape
    for g, row in zip(got.tolist(), rows):
        if row.size == 0:
            assert g == -inf if func == "logsumexp" else math.isnan(g)
            continue
        exact = (mp_logsumexp(row)[0] if func == "logsumexp" else mp_logmeanexp(row))
        assert ulp_error(g, exact, dtype) <= 1.0, (row, g)


@pytest.mark.parametrize("func", REDUCTIONS)
def test_mask_with_weights_and_temperature(func):
    a, mask = _data(f"weights-{func}", (9, 30))
    b = np.random.default_rng(seed_for("b")).uniform(0.5, 3.0, a.shape)
    got = getattr(lsearray, func)(a, axis=1, b=b, where=mask, temperature=0.7)
    for g, i in zip(got.tolist(), range(a.shape[0])):
        row, w = a[i][mask[i]], b[i][mask[i]]
        exact = (mp_logsumexp(row, w, 0.7)[0] if func == "logsumexp" else mp_logmeanexp(row, w, 0.7))
        assert ulp_error(g, exact, np.float64) <= 1.0


def test_return_sign_of_an_empty_slice_is_zero():
    out, sign = lsearray.logsumexp([[1.0, nan], [2.0, 3.0]], axis=1,
                                   where=[[False, False], [True, False]], return_sign=True)
    assert out.tolist() == [-inf, 2.0] and sign.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("func", REDUCTIONS + NORMALIZERS + ["logcumsumexp"])
def test_left_out_values_are_never_read_as_numbers(func):
    """The same call with zeros where the mask leaves elements out: bit-identical."""
    a, mask = _data(f"ignored-{func}", (6, 50))
    zeroed = np.where(mask, a, 0.0)
    f = getattr(lsearray, func)
    np.testing.assert_array_equal(f(a, axis=1, where=mask), f(zeroed, axis=1, where=mask))


@pytest.mark.parametrize("func", NORMALIZERS)
@pytest.mark.parametrize("axis", [0, 1])
def test_normalizers_against_the_kept_elements(func, axis):
    a, mask = _data(f"norm-{func}-{axis}", (23, 19))
    mask[2, :] = mask[:, 4] = False
    got = getattr(lsearray, func)(a, axis=axis, where=mask)
    slow = slow_softmax if func == "softmax" else slow_log_softmax
    fill = 0.0 if func == "softmax" else -inf
    expected = np.full(a.shape, fill)
    moved_a, moved_m, moved_e = (np.moveaxis(x, axis, -1) for x in (a, mask, expected))
    for i in np.ndindex(moved_a.shape[:-1]):
        if moved_m[i].any():
            moved_e[i][moved_m[i]] = slow(moved_a[i][moved_m[i]])
    assert_values(got, expected, "float64")
    if func == "softmax":   # every slice sums to 1, or to 0 with nothing kept
        np.testing.assert_allclose(got.sum(axis=axis), mask.any(axis=axis).astype(float), rtol=1e-14)


def test_normalizers_of_a_slice_with_nothing_kept():
    x = np.array([[nan, inf, 1.0], [0.0, 1.0, 2.0]])
    keep = np.array([[False, False, False], [True, True, True]])
    assert lsearray.softmax(x, axis=1, where=keep)[0].tolist() == [0.0, 0.0, 0.0]
    assert lsearray.log_softmax(x, axis=1, where=keep)[0].tolist() == [-inf, -inf, -inf]
    # a kept +inf or nan keeps scipy's special values: the slice is nan
    assert np.isnan(lsearray.softmax([inf, 1.0, nan], where=[True, True, False])).tolist() == [
        True, True, False]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("axis", [0, 1, None])
def test_logcumsumexp_over_the_kept_elements(axis, reverse, exclusive):
    a, mask = _data(f"scan-{axis}-{reverse}-{exclusive}", (13, 70))
    got = lsearray.logcumsumexp(a, axis, reverse=reverse, exclusive=exclusive, where=mask)
    # the oracle: the left-out elements as -inf, which add nothing to a sum
    expected = slow_logcumsumexp(np.where(mask, a, -inf), axis, reverse=reverse, exclusive=exclusive)
    assert_values(got, expected, "float64")


@pytest.mark.parametrize("layout", ["transposed", "strided", "broadcast mask", "float32"])
def test_layouts_of_the_input_and_the_mask(layout):
    a, mask = _data(f"layout-{layout}", (40, 60))
    if layout == "transposed":
        a, mask = a.T, mask.T
    elif layout == "strided":
        a, mask = a[::2, ::3], mask[::2, ::3]
    elif layout == "broadcast mask":
        a = np.where(np.isfinite(a), a, 0.0)
        mask = mask[:1]
    elif layout == "float32":
        a = a.astype(np.float32)
    for axis in (0, 1):
        rows, _ = _kept_rows(a, mask, axis)
        got = lsearray.logsumexp(a, axis=axis, where=mask)
        for g, row in zip(got.tolist(), rows):
            exact = mp_logsumexp(row)[0] if row.size else mpmath.mpf("-inf")
            assert ulp_error(g, exact, a.dtype) <= 1.0


def test_a_mask_may_broadcast_a_to_a_larger_shape():
    a = np.array([0.0, 1.0, 2.0])
    mask = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_allclose(lsearray.logsumexp(a, axis=1, where=mask), [np.logaddexp(0, 2), 2.0],
                               rtol=1e-15)
    assert lsearray.softmax(a, axis=1, where=mask).shape == (2, 3)


# ------------------------------------------------------------------------------------------------
# Errors and the caller's arrays
# ------------------------------------------------------------------------------------------------

FUNCS = REDUCTIONS + NORMALIZERS + ["logcumsumexp"]


@pytest.mark.parametrize("func", FUNCS)
def test_a_mask_that_is_not_boolean_is_rejected(func):
    with pytest.raises(TypeError, match=rf"^{func} expects where as a boolean array.*got dtype int64"):
        getattr(lsearray, func)(np.zeros(3), where=np.array([1, 0, 1]))


@pytest.mark.parametrize("func", FUNCS)
def test_a_mask_that_does_not_broadcast_is_rejected(func):
    with pytest.raises(ValueError, match=rf"^{func}: .*where.*\(4,\).*\(3,\)"):
        getattr(lsearray, func)(np.zeros(3), where=np.ones(4, bool))


@pytest.mark.parametrize("func", FUNCS)
def test_the_callers_arrays_are_not_written(func):
    a, mask = _data(f"unchanged-{func}", (5, 8))
    a_before, mask_before = a.copy(), mask.copy()
    getattr(lsearray, func)(a, axis=1, where=mask)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(mask, mask_before)


@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp", "logcumsumexp"])
def test_no_masked_copy_of_the_input(func):
    """The kernel reads the mask beside ``a``: a call allocates the mask's bytes (1 per
    element) and the result, never a float copy of ``a`` (8 bytes per element)."""
    n = 1 << 20
    a = np.random.default_rng(seed_for("memory")).normal(size=n)
    mask = np.arange(n) % 3 != 0
    result = 8 * n if func == "logcumsumexp" else 0
    getattr(lsearray, func)(a, where=mask)              # warm: lazy imports allocate once
    tracemalloc.start()
    try:
        getattr(lsearray, func)(a, where=mask)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < result + 2 * n, f"{func}: peak {peak} bytes for {8 * n} bytes of input"


# ------------------------------------------------------------------------------------------------
# Other backends: the NumPy results, and finite gradients also where nothing is kept
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("func", FUNCS)
def test_every_backend_gives_numpys_result(xp, func):
    xp.subset(func in ("logsumexp", "softmax"))
    a, mask = _data(f"backends-{func}", (4, 9))
    mask[1] = False
    expected = getattr(lsearray, func)(a, axis=1, where=mask)
    got = getattr(lsearray, func)(xp.make(a), axis=1, where=xp.make(mask, "bool"))
    assert_values(xp.to_numpy(got), expected, "float64", f"{func} on {xp.name}")


def _masked_softmax(a, mask):
    """The softmax of each row over its kept elements, 0 elsewhere (the gradient of a
    masked log-sum-exp), from NumPy's own exp."""
    z = np.where(mask, a, -inf)
    m = np.max(z, axis=1, keepdims=True)
    e = np.where(mask, np.exp(z - np.where(np.isfinite(m), m, 0.0)), 0.0)
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def test_torch_gradients():
    torch = pytest.importorskip("torch")
    a, mask = _data("torch-grad", (5, 7))
    mask[2] = False
    x = torch.tensor(a, requires_grad=True)
    keep = torch.tensor(mask)
    lsearray.logsumexp(x, axis=1, where=keep).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), _masked_softmax(a, mask), rtol=1e-12, atol=1e-300)
    for func in FUNCS[1:]:
        x.grad = None
        y = getattr(lsearray, func)(x, axis=1, where=keep)
        torch.where(torch.isfinite(y), y, 0.0).sum().backward()
        assert torch.isfinite(x.grad).all(), func
        assert (x.grad[~keep] == 0).all(), func
    # rows with something kept, the -inf outputs (left out, or before the first kept element
    # of a scan) as 0: a constant, whose finite differences are 0
    rows = [0, 1, 3]
    finite = torch.tensor(np.where(mask, a, 0.0)[rows], requires_grad=True)
    for func in FUNCS:
        f = getattr(lsearray, func)

        def g(t, f=f):
            y = f(t, axis=1, where=keep[rows])
            return torch.where(torch.isfinite(y), y, 0.0)

        assert torch.autograd.gradcheck(g, (finite,)), func
        assert torch.autograd.gradgradcheck(g, (finite,)), func


def test_jax_gradients_under_jit():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)
    a, mask = _data("jax-grad", (5, 7))
    mask[2] = False
    keep = jnp.asarray(mask)
    grad = jax.jit(jax.grad(lambda x: lsearray.logsumexp(x, axis=1, where=keep).sum()))(jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(grad), _masked_softmax(a, mask), rtol=1e-12, atol=1e-300)
    for func in FUNCS[1:]:
        f = getattr(lsearray, func)
        g = jax.grad(lambda x: jnp.where(jnp.isfinite(y := f(x, axis=1, where=keep)), y, 0.0).sum())(
            jnp.asarray(a))
        assert np.isfinite(np.asarray(g)).all(), func
        assert (np.asarray(g)[~mask] == 0).all(), func
    rows = np.array([0, 1, 3])
    finite = jnp.asarray(np.where(mask, a, 0.0)[rows])
    for func in FUNCS:
        f = getattr(lsearray, func)

        def g(t, f=f):
            y = f(t, axis=1, where=keep[rows])
            return jnp.where(jnp.isfinite(y), y, 0.0)

        check_grads(jax.jit(g), (finite,), order=2, modes=["rev"])


@pytest.mark.parametrize("func", NORMALIZERS)
def test_left_out_values_raise_no_warnings_on_any_layout(func):
    """Reduced axes that are not neighbours take the NumPy path of partials: a left-out huge
    value is never exponentiated there either."""
    a = np.random.default_rng(seed_for(f"quiet-{func}")).normal(size=(4, 5, 6))
    mask = np.ones(a.shape, bool)
    a[1, 2, 3], mask[1, 2, 3] = 1e300, False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = getattr(lsearray, func)(a, axis=(0, 2), where=mask)
    expected = getattr(lsearray, func)(np.where(mask, a, -np.inf), axis=(0, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-15)
