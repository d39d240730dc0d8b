"""The segment functions of CPU torch tensors on the lsecore kernel: values, gradients, operators, compile, transforms."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# opcheck calls torch.jit's deprecated entry points itself
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")

import lsearray  # noqa: E402
from lsearray._executors import numpy_segment, torch_ops  # noqa: E402
from lsearray._executors.array_api import ArrayAPIExecutor  # noqa: E402

FUNCS = ["segment_logsumexp", "segment_softmax", "segment_log_softmax"]
RNG = np.random.default_rng(20261205)


class _Spy:
    """numpy_segment, counting the calls the torch operators make to it."""

    def __init__(self):
        self.calls = []

    def logsumexp(self, *args):
        self.calls.append("logsumexp")
        return numpy_segment.logsumexp(*args)

    def normalized(self, *args):
        self.calls.append("normalized")
        return numpy_segment.normalized(*args)


@pytest.fixture
def spy(monkeypatch):
    s = _Spy()
    monkeypatch.setattr(torch_ops, "numpy_segment", s)
    return s


def _generic(func, *args, **kwargs):
    """``func`` by the array-API code on torch's scatters, not the kernel."""
    ex = lsearray._delegation.executor(args[0])
    ids, k = args[1], args[2]
    axis = kwargs.get("axis", 0)
    tau = kwargs.get("temperature", 1.0)
    if func == "segment_logsumexp":
        return ArrayAPIExecutor.segment_logsumexp(ex, args[0], ids, k, axis, None, tau, False, func)
    return ArrayAPIExecutor.segment_normalized(ex, args[0], ids, k, axis, tau, False, func,
                                               func == "segment_log_softmax")


def _data(dtype=torch.float64):
    a = torch.from_numpy(RNG.normal(size=(3, 40, 2)) * 4).to(dtype)
    ids = torch.from_numpy(RNG.integers(0, 6, 40))
    ids[:6] = torch.arange(6)  # every segment holds an element
    return a, ids


@pytest.mark.parametrize("sorted_", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("func", FUNCS)
def test_values_on_the_kernel(spy, func, dtype, sorted_):
    """The NumPy kernel's values, bit for bit (float16 and bfloat16 computed in float32)."""
    a, ids = _data(dtype)
    if sorted_:
        ids = ids.sort().values
    got = getattr(lsearray, func)(a, ids, 6, axis=1, temperature=0.7, sorted=sorted_)
    assert spy.calls
    wide = a if dtype in (torch.float64, torch.float32) else a.float()
    expected = getattr(lsearray, func)(wide.numpy(), ids.numpy(), 6, axis=1, temperature=0.7,
                                       sorted=sorted_)
    assert got.dtype == dtype
    assert torch.equal(got, torch.from_numpy(expected).to(dtype))


@pytest.mark.parametrize("func", FUNCS)
def test_gradcheck_and_gradgradcheck(spy, func):
    a, ids = _data()
    x = a[0, :, 0].clone().requires_grad_()
    f = getattr(lsearray, func)
    assert torch.autograd.gradcheck(lambda t: f(t, ids, 6, temperature=0.7), (x,))
    assert torch.autograd.gradgradcheck(lambda t: f(t, ids, 6, temperature=0.7), (x,))
    assert spy.calls


@pytest.mark.parametrize("func", FUNCS)
def test_gradients_of_special_values_as_on_the_array_api_path(spy, func):
    """A segment of only -inf, one with a +inf, one with a nan and an empty one: the
    kernel's gradients are the array-API code's (0 where the segment's max is -inf, and
    beside a +inf but for it)."""
    a = torch.tensor([-math.inf, -math.inf, 1.0, math.inf, 2.0, math.nan, 0.5, 3.0, -1.0],
                     dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 3])
    grads = []
    for run in (getattr(lsearray, func), lambda x, i, k: _generic(func, x, i, k)):
        x = a.clone().requires_grad_()
        y = run(x, ids, 5)
        weights = torch.arange(1.0, y.numel() + 1, dtype=torch.float64)
        grads.append(torch.autograd.grad((y * weights).nansum(), x)[0])
    assert spy.calls
    torch.testing.assert_close(grads[0], grads[1], equal_nan=True, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("func", FUNCS)
def test_opcheck(func):
    op = getattr(torch.ops.lsearray, func)
    a, ids = _data()
    for x in (a.clone().requires_grad_(), a.transpose(0, 2).detach(), a[:, :, :1].float()):
        torch.library.opcheck(op, (x, ids, 6, 1, 0.5, False))


def test_torch_compile_fullgraph(spy):
    torch._dynamo.reset()
    a, ids = _data()
    x = a.clone().requires_grad_()

    def model(t):
        return (lsearray.segment_logsumexp(t, ids, 6, axis=1).sum()
                + lsearray.segment_softmax(t, ids, 6, axis=1)[:, 0].sum()
                + lsearray.segment_log_softmax(t, ids, 6, axis=1)[:, 1].sum())

    compiled = torch.compile(model, fullgraph=True)
    got = compiled(x)
    (g,) = torch.autograd.grad(got, x)
    expected = model(x)
    (g_expected,) = torch.autograd.grad(expected, x)
    torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(g, g_expected, rtol=1e-13, atol=1e-14)


def test_transforms_take_the_generic_path(spy):
    """vmap and torch.func.grad see torch's scatters: the operators have no rules for them."""
    a, ids = _data()
    x = a[:, :, 0]
    batched = torch.func.vmap(lambda t: lsearray.segment_logsumexp(t, ids, 6))(x)
    g = torch.func.grad(lambda t: lsearray.segment_logsumexp(t, ids, 6).sum())(x[0])
    assert not spy.calls
    torch.testing.assert_close(batched, torch.stack([_generic("segment_logsumexp", r, ids, 6) for r in x]))
    torch.testing.assert_close(g, torch.ones(40, dtype=torch.float64)
                               * lsearray.segment_softmax(x[0], ids, 6) / 1.0)
