"""Every public function under torch's autograd, compile, export and vmap and JAX's jit, grad and vmap."""

import numpy as np
import pytest

import lsearray
from backends import make_backend

# torch's compiler warns of its own choices while it traces: array-api-compat's cached
# namespace lookups (traced through, as pure functions allow) and torch.jit's deprecation
# inside torch.export; neither is about the code under test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning"),
]

X = np.random.default_rng(3).normal(size=(2, 3, 4)) * 2  # a batch of two (3, 4) samples


def _chunks(x):
    return x[:1], x[1:2], x[2:]  # three: the stack holds two partials that result() merges


def _stream(x):
    """The streaming log-sum-exp of x along axis 0, fed in three chunks."""
    acc = lsearray.OnlineLogSumExp(axis=0)
    for chunk in _chunks(x):
        acc.update(chunk)
    return acc.result()


# name -> the call on one (3, 4) sample; the samplers draw from seed 0 (a fresh generator or key)
CASES = {
    "logsumexp": lambda x: lsearray.logsumexp(x, axis=1),
    "logmeanexp": lambda x: lsearray.logmeanexp(x, axis=1, temperature=2.0),
    "softmax": lambda x: lsearray.softmax(x, axis=1),
    "log_softmax": lambda x: lsearray.log_softmax(x, axis=0),
    "logcumsumexp": lambda x: lsearray.logcumsumexp(x, axis=1),
    # without the last column, the empty sum -inf, whose finite differences are nan
    "logcumsumexp reverse exclusive": lambda x: lsearray.logcumsumexp(x, axis=1, reverse=True,
                                                                      exclusive=True)[:, :-1],
    # masks from the sample itself (so that they are of its library and batch under vmap);
    # every row keeps something, and -inf outputs are clipped (their finite differences are nan)
    "logsumexp where": lambda x: lsearray.logsumexp(x, axis=1, where=x < 2.0),
    "softmax where": lambda x: lsearray.softmax(x, axis=1, where=x < 2.0),
    "log_softmax where": lambda x: lsearray.log_softmax(x, axis=1, where=x < 2.0).clip(min=-1e300),
    "logcumsumexp where": lambda x: lsearray.logcumsumexp(x, axis=1, where=x < 2.0).clip(min=-1e300),
    "logaddexp": lambda x: lsearray.logaddexp(x, 0.5 * x + 1.0, temperature=0.5),
    # x2 = x - 1 - x^2 / 10 lies at least 1 below x1 = x: away from the pole x1 == x2
    "logdiffexp": lambda x: lsearray.logdiffexp(x, x - 1.0 - 0.1 * x * x, temperature=0.5),
    # x1 < x2 everywhere (|x| < 16): the log of exp(x2) - exp(x1), sign -1
    "logdiffexp return_sign": lambda x: lsearray.logdiffexp(x, 0.5 * x + 8.0, return_sign=True)[0],
    "log1mexp": lambda x: lsearray.log1mexp(-0.1 - x * x),
    "logmatmulexp": lambda x: lsearray.logmatmulexp(x, x.mT),
    "categorical": lambda x: lsearray.categorical(x, rng=0),
    "gumbel_softmax": lambda x: lsearray.gumbel_softmax(x, temperature=0.5, rng=0),
    "gumbel_topk": lambda x: lsearray.gumbel_topk(x, 3, rng=0),
    "OnlineLogSumExp": _stream,
    # rows 0 and 2 one segment, row 1 another (ids as NumPy: static under jit and vmap)
    "segment_logsumexp": lambda x: lsearray.segment_logsumexp(x, np.array([0, 1, 0]), 2),
    "segment_softmax": lambda x: lsearray.segment_softmax(x, np.array([0, 1, 0]), 2),
    "segment_log_softmax": lambda x: lsearray.segment_log_softmax(x, np.array([0, 1, 0]), 2),
}
INDICES = ("categorical", "gumbel_topk")  # samplers of indices: nothing to differentiate
DIFFERENTIABLE = [name for name in CASES if name not in INDICES]


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log(x):
    with np.errstate(divide="ignore"):  # log 0: the -inf of what was left out
        return np.log(x)


def _segment_sums(e):
    """The sums of the rows of ``e`` in the segments of the ids [0, 1, 0]."""
    return np.stack([e[0] + e[2], e[1]])


def _masked_softmax(z, mask):
    e = np.where(mask, np.exp(z - z.max(axis=1, keepdims=True)), 0.0)
    return e / e.sum(axis=1, keepdims=True)


# name -> the NumPy float64 value of that call, from the sample and the standard Gumbel noise
# that seed 0 draws in the sample's library
REFERENCES = {
    "logsumexp": lambda x, g: np.log(np.exp(x).sum(axis=1)),
    "logmeanexp": lambda x, g: 2.0 * np.log(np.exp(x / 2.0).mean(axis=1)),
    "softmax": lambda x, g: _softmax(x, 1),
    "log_softmax": lambda x, g: np.log(_softmax(x, 0)),
    "logcumsumexp": lambda x, g: np.log(np.cumsum(np.exp(x), axis=1)),
    "logcumsumexp reverse exclusive":
        lambda x, g: np.log(np.cumsum(np.exp(x)[:, ::-1], axis=1))[:, ::-1][:, 1:],
    "logsumexp where": lambda x, g: np.log(np.where(x < 2.0, np.exp(x), 0.0).sum(axis=1)),
    "softmax where": lambda x, g: _masked_softmax(x, x < 2.0),
    "log_softmax where": lambda x, g: _log(_masked_softmax(x, x < 2.0)).clip(min=-1e300),
    "logcumsumexp where":
        lambda x, g: _log(np.cumsum(np.where(x < 2.0, np.exp(x), 0.0), axis=1)).clip(min=-1e300),
    "logaddexp": lambda x, g: 0.5 * np.logaddexp(x / 0.5, (0.5 * x + 1.0) / 0.5),
    "logdiffexp": lambda x, g: 0.5 * np.log(np.exp(x / 0.5) - np.exp((x - 1.0 - 0.1 * x * x) / 0.5)),
    "logdiffexp return_sign": lambda x, g: np.log(np.exp(0.5 * x + 8.0) - np.exp(x)),
    "log1mexp": lambda x, g: np.log(-np.expm1(-0.1 - x * x)),
    "logmatmulexp": lambda x, g: np.log(np.exp(x) @ np.exp(x).T),
    "categorical": lambda x, g: np.argmax(x + g, axis=-1),
    "gumbel_softmax": lambda x, g: _softmax((x + g) / 0.5, -1),
    "gumbel_topk": lambda x, g: np.argsort(-(x + g), axis=-1)[..., :3],
    "OnlineLogSumExp": lambda x, g: np.log(np.exp(x).sum(axis=0)),
    "segment_logsumexp": lambda x, g: np.log(_segment_sums(np.exp(x))),
    "segment_softmax": lambda x, g: np.exp(x) / _segment_sums(np.exp(x))[[0, 1, 0]],
    "segment_log_softmax": lambda x, g: x - np.log(_segment_sums(np.exp(x)))[[0, 1, 0]],
}


def _assert_reference(name, got, x, noise):
    expected = REFERENCES[name](np.asarray(x, np.float64), noise)
    if name in INDICES:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


# ---- torch -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_noise(torch):
    u = torch.rand(X.shape[1:], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (-torch.log(-torch.log(u))).numpy()


def _torch_assert(torch, name, got, x):
    _assert_reference(name, got.detach().numpy(), x.detach().numpy(), _torch_noise(torch))


# Dynamo cannot put a torch.Generator in a graph: the samplers given one (or a seed) compile
# with fullgraph=False only.
FULLGRAPH_BREAKS = ("categorical", "gumbel_softmax", "gumbel_topk",
                    # and dynamo cannot read a NumPy array's dtype: the cases' NumPy ids break it
                    "segment_logsumexp", "segment_softmax", "segment_log_softmax")
# The stream is checked under torch's compilers and transforms by its own test, against torch
TRANSFORMED = [name for name in CASES if name != "OnlineLogSumExp"]


@pytest.mark.parametrize("name", CASES)
def test_torch_eager_matches_reference(torch, name):
    x = torch.asarray(X[0])
    _torch_assert(torch, name, CASES[name](x), x)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_torch_gradcheck(torch, name):
    x = torch.asarray(X[0], requires_grad=True)
    assert torch.autograd.gradcheck(CASES[name], (x,))


def test_torch_stream_gradient_is_that_of_logsumexp(torch):
    x = torch.asarray(X[0], requires_grad=True)
    (got,) = torch.autograd.grad(_stream(x).sum(), x)
    (expected,) = torch.autograd.grad(torch.logsumexp(x, 0).sum(), x)
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("fullgraph", [False, True])
def test_torch_compile(torch, fullgraph):
    names = [name for name in TRANSFORMED if not (fullgraph and name in FULLGRAPH_BREAKS)]
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: [CASES[name](x) for name in names], fullgraph=fullgraph)
    x = torch.asarray(X[0])
    for name, got in zip(names, compiled(x)):
        _torch_assert(torch, name, got, x)


@pytest.mark.parametrize("name", FULLGRAPH_BREAKS)
def test_torch_compile_fullgraph_breaks(torch, name):
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.TorchDynamoException):
        torch.compile(CASES[name], fullgraph=True)(torch.asarray(X[0]))


def test_torch_compile_fullgraph_samplers_from_the_default_generator(torch):
    # without a generator the compiled graph draws its own random numbers: other values than
    # eager's, but samples all the same
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda x: (lsearray.categorical(x), lsearray.gumbel_softmax(x, hard=True),
                   lsearray.gumbel_topk(x, 3)), fullgraph=True)
    x = torch.asarray(X[0])
    index, one_hot, top = compiled(x)
    assert index.dtype == torch.int64 and index.shape == (3,) and bool(((index >= 0) & (index < 4)).all())
    torch.testing.assert_close(one_hot, torch.nn.functional.one_hot(one_hot.argmax(1), 4).double())
    assert top.dtype == torch.int64 and top.shape == (3, 3)
    assert all(len(set(row)) == 3 and set(row) <= {0, 1, 2, 3} for row in top.tolist())


def _module(torch, name):
    """A torch.nn.Module whose forward is the call ``name``."""

    class Model(torch.nn.Module):
        def forward(self, x):
            return CASES[name](x)

    return Model()


@pytest.mark.parametrize("name", TRANSFORMED)
def test_torch_export(torch, name):
    x = torch.asarray(X[0])
    program = torch.export.export(_module(torch, name), (x,))
    _torch_assert(torch, name, program.module()(x), x)


@pytest.mark.parametrize("name", TRANSFORMED)
def test_torch_vmap(torch, name):
    batch = torch.asarray(X)
    vmapped = torch.func.vmap(CASES[name], randomness="same")
    torch.testing.assert_close(vmapped(batch), torch.stack([CASES[name](x) for x in batch]),
                               rtol=1e-13, atol=1e-14)


def _stream_reference(torch, x):
    """The stream's value by torch alone: the log-sum-exp of its chunks concatenated."""
    return torch.logsumexp(torch.cat(_chunks(x)), dim=0)


@pytest.mark.parametrize("transform", ["compile", "compile-fullgraph", "export", "vmap"])
def test_torch_stream_transformed(torch, transform):
    x, batch = torch.asarray(X[0]), torch.asarray(X)
    expected = _stream_reference(torch, x)
    if transform.startswith("compile"):
        # aot_eager traces the graph as inductor does, without generating and compiling its
        # code (most of a minute for the stream's)
        torch._dynamo.reset()
        got = torch.compile(_stream, backend="aot_eager",
                            fullgraph=transform == "compile-fullgraph")(x)
    elif transform == "export":
        got = torch.export.export(_module(torch, "OnlineLogSumExp"), (x,)).module()(x)
    else:
        got = torch.func.vmap(_stream)(batch)
        expected = torch.stack([_stream_reference(torch, x) for x in batch])
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-14)


# ---- JAX ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jax():
    make_backend("jax")  # imports jax (or skips) with 64-bit types enabled
    import jax

    return jax


def _jax_assert(jax, name, got, x):
    noise = jax.random.gumbel(jax.random.key(0), X.shape[1:], jax.numpy.float64)
    _assert_reference(name, np.asarray(got), np.asarray(x), np.asarray(noise))


@pytest.mark.parametrize("name", CASES)
def test_jax_jit(jax, name):
    x = jax.numpy.asarray(X[0])
    _jax_assert(jax, name, CASES[name](x), x)
    _jax_assert(jax, name, jax.jit(CASES[name])(x), x)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_jax_grad(jax, name):
    from jax.test_util import check_grads

    check_grads(jax.jit(CASES[name]), (jax.numpy.asarray(X[0]),), order=1, modes=("rev",))


def test_jax_stream_gradient_is_that_of_logsumexp(jax):
    x = jax.numpy.asarray(X[0])
    got = jax.jit(jax.grad(lambda x: _stream(x).sum()))(x)
    expected = jax.grad(lambda x: jax.scipy.special.logsumexp(x, axis=0).sum())(x)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_jax_vmap(jax, name):
    batch = jax.numpy.asarray(X)
    got = jax.jit(jax.vmap(CASES[name]))(batch)
    expected = np.stack([np.asarray(CASES[name](x)) for x in batch])
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-13, atol=1e-14)
