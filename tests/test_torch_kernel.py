"""CPU torch tensors on the lsecore kernel: values, layouts, autograd, compile, export, vmap, threads.

References are the slow NumPy float64 formulas of `reference.py` and torch's own functions in
float64; a spy on the NumPy executor the torch operators call tells whether the kernel ran.
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# torch.export and opcheck call torch.jit's deprecated entry points themselves
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")

import lsecore  # noqa: E402
import lsearray  # noqa: E402
from lsearray._executors import torch_ops  # noqa: E402
from lsearray._executors.numpy import NumPyExecutor  # noqa: E402
from reference import (  # noqa: E402
    slow_log_softmax, slow_logmeanexp, slow_logsumexp, slow_softmax, tolerances,
)

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
FUNCS = ["logsumexp", "logmeanexp", "softmax", "log_softmax"]
SLOW = {"logsumexp": slow_logsumexp, "logmeanexp": slow_logmeanexp, "softmax": slow_softmax,
        "log_softmax": slow_log_softmax}


class _Spy(NumPyExecutor):
    """The NumPy executor, counting the calls the torch operators make to it."""

    def __init__(self):
        self.calls = []

    def _count(self, name, *args):
        self.calls.append((name, lsecore.max_threads()))
        return getattr(super(), name)(*args)

    def logsumexp(self, *args):
        return self._count("logsumexp", *args)

    def logmeanexp(self, *args):
        return self._count("logmeanexp", *args)

    def softmax(self, *args):
        return self._count("softmax", *args)

    def log_softmax(self, *args):
        return self._count("log_softmax", *args)

    def logcumsumexp(self, *args):
        return self._count("logcumsumexp", *args)


@pytest.fixture
def spy(monkeypatch):
    s = _Spy()
    monkeypatch.setattr(torch_ops, "_NUMPY", s)
    return s


def _np(t):
    return t.detach().to(torch.float64).numpy()


def _call(func, x, axis, **kw):
    if func in ("softmax", "log_softmax"):
        kw.pop("keepdims", None)
    return getattr(lsearray, func)(x, axis=axis, **kw)


def _expected(func, x, axis, **kw):
    if func in ("softmax", "log_softmax"):
        kw.pop("keepdims", None)
    return SLOW[func](_np(x), axis=axis, **kw)


def _assert_close(got, expected, dtype):
    name = str(dtype).removeprefix("torch.")
    np.testing.assert_allclose(_np(got), expected, equal_nan=True, **tolerances(name))


def _layouts(dtype):
    """A contiguous tensor, a transposed one, a strided slice and a permutation (views)."""
    base = torch.from_numpy(np.random.default_rng(0).normal(scale=3.0, size=(6, 8, 10))).to(dtype)
    return {"contiguous": base, "transposed": base.transpose(0, 2), "strided": base[::2, 1::3],
            "permuted": base.permute(1, 2, 0)}


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "permuted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("func", FUNCS)
def test_values_dtypes_and_layouts_on_the_kernel(spy, func, dtype, layout):
    x = _layouts(dtype)[layout]
    before = x.clone()
    for axis in (None, 0, -1, (0, 2)):
        for keepdims in (False, True):
            got = _call(func, x, axis, keepdims=keepdims, temperature=0.75)
            assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.device == x.device
            _assert_close(got, _expected(func, x, axis, keepdims=keepdims, temperature=0.75), dtype)
    assert torch.equal(x, before), "the input was written to"
    assert len(spy.calls) == 4 * 2 and all(name == func for name, _ in spy.calls)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logcumsumexp_on_the_kernel(spy, dtype):
    x = _layouts(dtype)["transposed"]
    for axis in (None, 0, -1):
        got = lsearray.logcumsumexp(x, axis=axis, temperature=0.5)
        assert got.dtype == dtype
        wide = x.to(torch.float64) / 0.5
        expected = 0.5 * (torch.logcumsumexp(wide.reshape(-1), 0) if axis is None
                          else torch.logcumsumexp(wide, axis))
        _assert_close(got, expected.numpy(), dtype)
    assert len(spy.calls) == 3
    y = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(lsearray.logcumsumexp(y, axis=1).sum(), y)
    (g_expected,) = torch.autograd.grad(torch.logcumsumexp(y, 1).sum(), y)
    torch.testing.assert_close(g, g_expected)
    assert len(spy.calls) == 3 + 3  # the scan, and the two reversed scans of its gradient


@pytest.mark.parametrize("axis", [1, 0, None], ids=str)
def test_gradcheck_and_gradgradcheck_logcumsumexp(spy, axis):
    x = _x((3, 4, 2))
    fn = lambda t: lsearray.logcumsumexp(t, axis=axis, temperature=0.7)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    assert spy.calls


def test_logcumsumexp_operator():
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    for t in (x.requires_grad_(), x.detach().transpose(0, 2), x.detach()[:, ::2].float()):
        torch.library.opcheck(torch.ops.lsearray.logcumsumexp, (t, 1, 0.5))
    got = torch.func.vmap(lambda t: lsearray.logcumsumexp(t, axis=1), in_dims=2)(x.detach())
    torch.testing.assert_close(got, torch.logcumsumexp(x.detach().permute(2, 0, 1), 2))
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: lsearray.logcumsumexp(t, axis=0, temperature=2.0), fullgraph=True)
    torch.testing.assert_close(compiled(x.detach()), 2.0 * torch.logcumsumexp(x.detach() / 2.0, 0))


@pytest.mark.parametrize("func", FUNCS)
def test_results_are_new_tensors(func):
    x = torch.randn(4, 5, dtype=torch.float64)
    out = _call(func, x, 1, keepdims=True)
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_agrees_with_torch_in_float64():
    x = torch.randn(30, 17, dtype=torch.float64) * 5
    torch.testing.assert_close(lsearray.logsumexp(x, axis=1), torch.logsumexp(x, 1), rtol=1e-14, atol=0)
    torch.testing.assert_close(lsearray.softmax(x, axis=0), torch.softmax(x, 0), rtol=1e-14, atol=1e-300)
    torch.testing.assert_close(lsearray.log_softmax(x, axis=1), torch.log_softmax(x, 1), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_weights_and_signs_on_the_kernel(spy, dtype):
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.normal(size=(5, 7))).to(dtype)
    b = torch.from_numpy(rng.normal(size=(1, 7))).to(dtype)  # broadcast, of both signs
    for axis in (1, 0, None):
        out, sign = lsearray.logsumexp(a, axis=axis, b=b, return_sign=True, temperature=1.5)
        ref, ref_sign = slow_logsumexp(_np(a), axis=axis, b=_np(b), return_sign=True, temperature=1.5)
        _assert_close(out, ref, dtype)
        np.testing.assert_array_equal(_np(sign), ref_sign)
        plain = lsearray.logsumexp(a, axis=axis, b=b, temperature=1.5)
        _assert_close(plain, np.where(ref_sign < 0, np.nan, ref), dtype)
    assert len(spy.calls) == 6


def test_unweighted_sign():
    x = torch.tensor([[0.0, 1.0], [-math.inf, -math.inf], [math.nan, 0.0]], dtype=torch.float64)
    out, sign = lsearray.logsumexp(x, axis=1, return_sign=True)
    np.testing.assert_array_equal(sign.numpy(), [1.0, 0.0, np.nan])
    assert out[1] == -math.inf and sign.dtype == torch.float64


def test_fallbacks_keep_the_generic_path(spy):
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y = lsearray.logsumexp(x, axis=1, temperature=tau)
    (g_tau,) = torch.autograd.grad(y.sum(), tau)
    _assert_close(y, slow_logsumexp(_np(x), axis=1, temperature=0.5), torch.float64)
    assert torch.isfinite(g_tau)
    ints = lsearray.logsumexp(torch.arange(6).reshape(2, 3), axis=1)
    assert ints.dtype == torch.get_default_dtype()
    lsearray.logsumexp(x, b=torch.ones(5, dtype=torch.float32))  # weights of another dtype
    lsearray.logsumexp(torch.tensor(3.0, dtype=torch.float64))  # 0-d
    assert spy.calls == []


def test_the_kernel_runs_on_torch_threads(spy, monkeypatch):
    if not lsecore.build_info()["openmp"]:
        pytest.skip("the kernel is built without threads")
    # torch's count unlike the kernel's own (where the two share an OpenMP runtime, as
    # here on Linux, torch.set_num_threads sets both)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    previous = lsecore.set_max_threads(3)
    try:
        lsearray.logsumexp(torch.randn(1 << 17, dtype=torch.float64))
        lsearray.softmax(torch.randn(4, 10, dtype=torch.float64), axis=1)  # small: threads untouched
        assert lsecore.max_threads() == 3
    finally:
        lsecore.set_max_threads(previous)
    assert spy.calls == [("logsumexp", 1), ("softmax", 3)]


def test_set_max_threads():
    previous = lsecore.set_max_threads(1)
    try:
        assert lsecore.max_threads() == 1 or not lsecore.build_info()["openmp"]
    finally:
        assert lsecore.set_max_threads(previous) in (1, previous)
    assert lsecore.max_threads() == previous
    with pytest.raises(ValueError, match="set_max_threads"):
        lsecore.set_max_threads(0)


# --------------------------------------------------------------------------------------------
# autograd
# --------------------------------------------------------------------------------------------

def _x(shape=(3, 4), seed=2):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).requires_grad_()


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("axis", [1, 0, None, (0, 2)], ids=str)
def test_gradcheck_and_gradgradcheck(spy, func, axis):
    x = _x((3, 4, 2))
    fn = lambda t: _call(func, t, axis, temperature=0.8)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    assert spy.calls, "the operators did not run"


def test_gradcheck_weighted(spy):
    a = _x((3, 4))
    b = torch.from_numpy(np.random.default_rng(3).uniform(-1.0, 2.0, (1, 4))).requires_grad_()
    fn = lambda a, b: lsearray.logsumexp(a, axis=1, b=b, return_sign=True, temperature=1.3)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))
    assert torch.autograd.gradgradcheck(fn, (a, b))
    assert spy.calls


def test_gradient_is_softmax_and_zero_for_all_minus_inf_slices():
    x = torch.tensor([[0.0, 1.0, 2.0], [-math.inf] * 3], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(lsearray.logsumexp(x, axis=1).sum(), x)
    np.testing.assert_allclose(g[0].numpy(), torch.softmax(x[0].detach(), 0).numpy(), rtol=1e-15)
    np.testing.assert_array_equal(g[1].numpy(), 0.0)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("axis", [0, 1])
def test_gradients_of_special_values_as_on_the_array_api_path(spy, func, axis):
    from array_api_compat import torch as torch_namespace

    from lsearray._executors.array_api import ArrayAPIExecutor

    inf, nan = math.inf, math.nan
    rows = [[0.0, -inf, 1.0], [-inf, -inf, -inf], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [inf, inf, 0.0],
            [1.0, 1.0, -inf]]
    grads = []
    for run in (lambda x: _call(func, x, axis),
                lambda x: getattr(ArrayAPIExecutor(torch_namespace), func)(
                    x, axis, *((None, False, False, 1.0) if func == "logsumexp" else
                               (None, False, 1.0) if func == "logmeanexp" else (1.0,)))):
        x = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
        y = run(x)
        weights = torch.arange(1.0, y.numel() + 1, dtype=torch.float64).reshape(y.shape)
        grads.append(torch.autograd.grad((y * weights).nansum(), x)[0])
    torch.testing.assert_close(grads[0], grads[1], equal_nan=True, rtol=1e-14, atol=1e-15)
    assert spy.calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_narrow_gradients(dtype):
    x = torch.randn(4, 6).to(dtype).requires_grad_()
    (g,) = torch.autograd.grad(lsearray.logsumexp(x, axis=1).sum(), x)
    assert g.dtype == dtype
    _assert_close(g, slow_softmax(_np(x), axis=1), dtype)


def test_no_grad_and_inference_mode_call_the_kernel_directly(spy, monkeypatch):
    def no_operator(*args):
        raise AssertionError("the operator ran")

    monkeypatch.setattr(torch_ops, "_OPS", type("NoOps", (), {n: no_operator for n in FUNCS})())
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        y = lsearray.logsumexp(x, axis=1)
    with torch.inference_mode():
        z = lsearray.softmax(x, axis=0)
    assert not y.requires_grad and not z.requires_grad
    _assert_close(y, slow_logsumexp(_np(x), axis=1), torch.float64)
    _assert_close(z, slow_softmax(_np(x), axis=0), torch.float64)
    assert [name for name, _ in spy.calls] == ["logsumexp", "softmax"]



@pytest.mark.parametrize("func", FUNCS + ["logcumsumexp", "weighted"])
def test_eager_calls_with_a_gradient_skip_the_operators(spy, monkeypatch, func):
    """Eager calls that record a gradient run the kernel through an autograd.Function (the
    operators' Python dispatch would cost several times a small call), with the operators'
    gradients, second order included."""
    def no_operator(*args):
        raise AssertionError("the operator ran")

    names = FUNCS + ["logcumsumexp", "logsumexp_weighted"]
    monkeypatch.setattr(torch_ops, "_OPS", type("NoOps", (), {n: no_operator for n in names})())
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    if func == "logcumsumexp":
        call = lambda t: lsearray.logcumsumexp(t, axis=1)  # noqa: E731
    elif func == "weighted":
        b = torch.rand(4, 5, dtype=torch.float64, requires_grad=True) + 0.5
        call = lambda t: lsearray.logsumexp(t, axis=1, b=b, return_sign=True)[0]  # noqa: E731
    else:
        call = lambda t: _call(func, t, 1)  # noqa: E731
    y = call(x)
    assert type(y.grad_fn).__name__.startswith("lsearray_")
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad((g * g).sum(), x)
    if func == "weighted":
        reference = lambda t: torch.logsumexp(t + torch.log(b.detach()), 1)  # noqa: E731
    elif func == "logcumsumexp":
        reference = lambda t: torch.logcumsumexp(t, 1)  # noqa: E731
    else:
        reference = {"logsumexp": lambda t: torch.logsumexp(t, 1),
                     "logmeanexp": lambda t: torch.logsumexp(t, 1) - math.log(5),
                     "softmax": lambda t: torch.softmax(t, 1),
                     "log_softmax": lambda t: torch.log_softmax(t, 1)}[func]
    r = x.detach().requires_grad_()
    (rg,) = torch.autograd.grad(reference(r).sum(), r, create_graph=True)
    (rgg,) = torch.autograd.grad((rg * rg).sum(), r)
    torch.testing.assert_close(g, rg)
    torch.testing.assert_close(gg, rgg)
    assert spy.calls  # the kernel ran

# --------------------------------------------------------------------------------------------
# operators, compilers, export, transforms
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
def test_opcheck(name):
    op = getattr(torch.ops.lsearray, name)
    base = torch.randn(4, 5, 3, dtype=torch.float64)
    for x in (base.requires_grad_(), base.detach().transpose(0, 2), base.detach()[:, ::2].float()):
        if name in ("softmax", "log_softmax"):
            torch.library.opcheck(op, (x, [1], 0.5))
            torch.library.opcheck(op, (x, [0, 2], 1.0))
        else:
            torch.library.opcheck(op, (x, [1], False, 0.5))
            torch.library.opcheck(op, (x, [0, 2], True, 1.0))


def test_opcheck_weighted():
    a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.rand(4, 5, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.lsearray.logsumexp_weighted, (a, b, [1], False, 1.0))


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(7, 3, 5, dtype=torch.float32)
        assert lsearray.logsumexp(x, axis=(0, 2)).shape == (3,)
        assert lsearray.logmeanexp(x, axis=1, keepdims=True).shape == (7, 1, 5)
        assert lsearray.softmax(x.transpose(0, 2), axis=0).shape == (5, 3, 7)
        out, sign = lsearray.logsumexp(x, axis=0, b=torch.empty(3, 5), return_sign=True)
        assert out.shape == sign.shape == (3, 5)


def _model(x, b):
    out, sign = lsearray.logsumexp(x, axis=1, b=b, return_sign=True)
    return (lsearray.logsumexp(x, axis=1) + lsearray.logmeanexp(x, axis=1, temperature=2.0)
            + lsearray.softmax(x, axis=1).sum(1) + lsearray.log_softmax(x, axis=0)[0] + out * sign)


@pytest.mark.parametrize("fullgraph,dynamic", [(True, False), (False, False), (True, True)])
def test_torch_compile(spy, fullgraph, dynamic):
    torch._dynamo.reset()
    x = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    b = torch.rand(6, dtype=torch.float64)
    compiled = torch.compile(_model, fullgraph=fullgraph, dynamic=dynamic)
    got = compiled(x, b)
    (g,) = torch.autograd.grad(got.sum(), x)
    expected = _model(x, b)
    (g_expected,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(g, g_expected, rtol=1e-13, atol=1e-14)
    assert spy.calls


def test_torch_export():
    class Model(torch.nn.Module):
        def forward(self, x):
            return lsearray.logsumexp(x, axis=1) + lsearray.softmax(x, axis=0).sum(0)

    x = torch.randn(5, 5, dtype=torch.float64)
    program = torch.export.export(Model(), (x,))
    targets = {node.target for node in program.graph.nodes}
    assert torch.ops.lsearray.logsumexp.default in targets and torch.ops.lsearray.softmax.default in targets
    torch.testing.assert_close(program.module()(x), Model()(x), rtol=1e-14, atol=0)


@pytest.mark.parametrize("func", FUNCS)
def test_vmap(spy, func):
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    got = torch.func.vmap(lambda t: _call(func, t, 1), in_dims=1)(x)
    expected = _expected(func, x.transpose(0, 1), 2)
    _assert_close(got, expected, torch.float64)
    assert spy.calls


def test_vmap_weighted(spy):
    a = torch.randn(4, 6, dtype=torch.float64)
    b = torch.rand(6, dtype=torch.float64)
    got = torch.func.vmap(lambda t: lsearray.logsumexp(t, b=b))(a)
    _assert_close(got, slow_logsumexp(_np(a), axis=1, b=_np(b)), torch.float64)
    assert spy.calls


def test_forward_mode_takes_the_generic_path():
    import torch.autograd.forward_ad as forward_ad

    x = torch.randn(3, 4, dtype=torch.float64)
    v = torch.randn(3, 4, dtype=torch.float64)
    with forward_ad.dual_level():
        y = lsearray.logsumexp(forward_ad.make_dual(x, v), axis=1)
        tangent = forward_ad.unpack_dual(y).tangent
    torch.testing.assert_close(tangent, (torch.softmax(x, 1) * v).sum(1))
    _, jvp = torch.func.jvp(lambda t: lsearray.softmax(t, axis=1), (x,), (v,))
    s = torch.softmax(x, 1)
    torch.testing.assert_close(jvp, s * (v - (s * v).sum(1, keepdim=True)))


def test_func_grad():
    x = torch.randn(4, 5, dtype=torch.float64)
    g = torch.func.grad(lambda t: lsearray.logsumexp(t, axis=1).sum())(x)
    _assert_close(g, slow_softmax(x.numpy(), axis=1), torch.float64)


def test_tensor_subclasses_take_the_operators(spy):
    weight = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    with torch.no_grad():
        got = lsearray.log_softmax(weight, axis=1)
    assert type(got) is torch.Tensor and not got.requires_grad
    _assert_close(got, slow_log_softmax(_np(weight), axis=1), torch.float64)
    assert [name for name, _ in spy.calls] == ["log_softmax"]
