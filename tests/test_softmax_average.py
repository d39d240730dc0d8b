"""softmax_average and OnlineSoftmaxAverage against a slow float64 loop, on every backend, streamed and merged."""

import math
import pickle
import warnings

import numpy as np
import pytest

import lsearray
from lsearray import OnlineSoftmaxAverage, softmax_average

__all__ = []


def slow_softmax_average(a, v, axis=-1, temperature=1.0):
    """``(lse, average)`` by a plain loop over each slice in Python floats: the max, then the
    weights ``exp((a_i - max) / tau)``, then their sums; nan average and -inf lse for a slice
    of only -inf, +inf lse and nan average with a +inf logit, nan with a nan."""
    a = np.asarray(a, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    shape = np.broadcast_shapes(a.shape, v.shape[:a.ndim])
    axis %= a.ndim  # an axis of a, counted from a's end, not v's
    a = np.moveaxis(np.broadcast_to(a, shape), axis, -1)
    v = np.moveaxis(np.broadcast_to(v, shape + v.shape[a.ndim:]), axis, a.ndim - 1)
    features = v.shape[a.ndim:]
    lse = np.empty(a.shape[:-1])
    avg = np.empty(a.shape[:-1] + features)
    for index in np.ndindex(*a.shape[:-1]):
        row = [float(x) for x in a[index]]
        vals = v[index].reshape(len(row), -1)
        if any(math.isnan(x) for x in row):
            lse[index], avg[index] = math.nan, math.nan
            continue
        if any(x == math.inf for x in row):
            lse[index], avg[index] = math.inf, math.nan
            continue
        m = max(row, default=-math.inf)
        if m == -math.inf:
            lse[index], avg[index] = -math.inf, math.nan
            continue
        w = [math.exp((x - m) / temperature) for x in row]
        s = math.fsum(w)
        lse[index] = m + temperature * math.log(s)
        avg[index] = np.array([math.fsum(wi * float(vals[i, j]) for i, wi in enumerate(w)) / s
                               for j in range(vals.shape[1])]).reshape(features)
    return lse, avg


def close(x, y, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(x, dtype=np.float64), y, rtol=rtol, atol=1e-300,
                               equal_nan=True)


RNG = np.random.default_rng(20261204)


def _special_logits():
    a = RNG.normal(size=(7, 6)) * 3
    a[0] = -np.inf                        # all -inf
    a[1, :3] = -np.inf                    # some -inf
    a[2] = [1000.0, -1000.0, 999.0, 0.0, 1000.0, -np.inf]
    a[3] = [1e300, -1e300, 1e300, 1e299, -np.inf, 0.0]
    a[4] = [-1e300, -1e300, -1e300 * 0.5, -np.inf, -1e300, -1e300]
    a[5, 2] = np.inf
    a[6, 4] = np.nan
    return a


@pytest.mark.parametrize("temperature", [1.0, 0.25, 3.0])
@pytest.mark.parametrize("features", [(), (3,), (2, 2)])
def test_matches_the_loop_on_special_logits(temperature, features):
    a = _special_logits()
    v = RNG.normal(size=a.shape + features)
    avg, lse = softmax_average(a, v, axis=-1, temperature=temperature, return_lse=True)
    want_lse, want_avg = slow_softmax_average(a, v, -1, temperature)
    assert avg.shape == (7,) + features and lse.shape == (7,)
    close(lse, want_lse)
    close(avg, want_avg)
    close(lse, lsearray.logsumexp(a, axis=-1, temperature=temperature))


def test_other_axes_keepdims_and_broadcasting():
    a = RNG.normal(size=(4, 1, 5))
    v = RNG.normal(size=(4, 3, 5, 2))
    for axis in (0, 2, -1, -3):
        want_lse, want_avg = slow_softmax_average(a, v, axis)
        avg, lse = softmax_average(a, v, axis=axis, return_lse=True)
        close(avg, want_avg)
        close(lse, want_lse)
        kept = softmax_average(a, v, axis=axis, keepdims=True)
        close(kept, np.expand_dims(want_avg, axis % 3))
    # a (1, L) shared by every row of v, and ints for values
    a = np.array([[0.0, np.log(3.0)]])
    close(softmax_average(a, np.array([[4, 8], [0, 4]])), [7.0, 3.0])


def test_scalar_and_dtype():
    out = softmax_average([0.0, 0.0], [1.0, 2.0])
    assert isinstance(out, np.float64) and out == 1.5
    out = softmax_average(np.zeros(3, np.float32), np.ones(3, np.float32))
    assert out.dtype == np.float32
    assert softmax_average(np.zeros(2, np.int32), np.ones(2)).dtype == np.float64


def test_all_minus_inf_matches_softmax_choice():
    # softmax of an all -inf slice is all nan (scipy's choice), so the average over it is nan
    a = np.full(3, -np.inf)
    assert np.isnan(lsearray.softmax(a)).all()
    avg, lse = softmax_average(a, np.ones(3), return_lse=True)
    assert np.isnan(avg) and lse == -np.inf
    avg, lse = softmax_average(np.zeros((2, 0)), np.zeros((2, 0, 3)), return_lse=True)
    assert avg.shape == (2, 3) and np.isnan(avg).all() and (lse == -np.inf).all()


def test_no_warnings_on_special_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softmax_average(_special_logits(), np.ones((7, 6)))
        acc = OnlineSoftmaxAverage(axis=-1).update(_special_logits(), np.ones((7, 6)))
        acc.update(np.full((7, 1), -np.inf), np.ones((7, 1))).result()


@pytest.mark.parametrize("call, match", [
    (lambda: softmax_average([1.0 + 1j], [1.0]), r"^softmax_average: a must be real"),
    (lambda: softmax_average([1.0], [1j]), r"^softmax_average: v must be real"),
    (lambda: softmax_average(np.zeros((2, 3)), np.zeros(3)), r"^softmax_average: v must have a's axes"),
    (lambda: softmax_average(np.zeros((2, 3)), np.zeros((2, 4))), r"^softmax_average: v's leading axes must "
                                                                   r"broadcast.*\(2, 3\).*\(2, 4\)"),
    (lambda: softmax_average(np.zeros(3), np.zeros(3), axis=1), r"^softmax_average: axis must be an axis of a"),
    (lambda: softmax_average(np.zeros(3), np.zeros(3), axis=None), r"^softmax_average: axis must be an integer"),
    (lambda: softmax_average(1.0, 1.0), r"^softmax_average: a must have at least one axis"),
    (lambda: softmax_average([1.0], [1.0], temperature=0.0), r"^softmax_average: temperature must be positive"),
    (lambda: softmax_average([1.0], [1.0], keepdims="yes"), r"^softmax_average: keepdims must be a bool"),
    (lambda: softmax_average([1.0], [1.0], return_lse=1), r"^softmax_average: return_lse must be a bool"),
])
def test_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# -- streaming -----------------------------------------------------------------------------------

def _pieces(n, rng):
    """Random cut points of range(n) into pieces (some empty), shuffled."""
    cuts = np.sort(rng.integers(0, n + 1, size=rng.integers(1, 6)))
    bounds = [0, *cuts, n]
    pieces = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    rng.shuffle(pieces)
    return pieces


def _tree_merge(accs, rng):
    """Merge the accumulators in a random binary tree."""
    accs = list(accs)
    while len(accs) > 1:
        i = int(rng.integers(len(accs) - 1))
        accs[i:i + 2] = [accs[i].merge(accs[i + 1])]
    return accs[0]


@pytest.mark.parametrize("seed", range(6))
def test_streamed_in_any_tree_matches_one_shot(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 40)) * [[1.0], [30.0], [1000.0]]
    a[:, rng.integers(0, 40, size=5)] = -np.inf
    v = rng.normal(size=(3, 40, 2))
    tau = [1.0, 0.5, 2.0][seed % 3]
    avg, lse = softmax_average(a, v, axis=1, temperature=tau, return_lse=True)
    accs = []
    for lo, hi in _pieces(40, rng):
        acc = OnlineSoftmaxAverage(axis=1, temperature=tau)
        accs.append(acc.update(a[:, lo:hi], v[:, lo:hi]) if rng.random() < 0.9 else acc)
    merged = _tree_merge(accs, rng)
    if merged.count != 40:   # an accumulator left empty dropped its slice: feed it sequentially
        merged = OnlineSoftmaxAverage(axis=1, temperature=tau)
        for lo, hi in _pieces(40, rng):
            merged.update(a[:, lo:hi], v[:, lo:hi])
    got_lse, got_avg = merged.result()
    close(got_lse, lse, rtol=1e-14)
    close(got_avg, avg, rtol=1e-13)
    want_lse, want_avg = slow_softmax_average(a, v, 1, tau)
    close(got_avg, want_avg, rtol=1e-12)
    assert merged.count == 40


def test_streamed_special_batches():
    a = _special_logits()
    v = RNG.normal(size=a.shape + (2,))
    acc = OnlineSoftmaxAverage(axis=1)
    for j in (3, 0, 5, 1, 4, 2):  # order does not matter
        acc.update(a[:, j:j + 1], v[:, j:j + 1])
    want_lse, want_avg = slow_softmax_average(a, v, 1)
    lse, avg = acc.result()
    close(lse, want_lse)
    close(avg, want_avg)
    # an all -inf batch merged into a finite state leaves it as it was
    acc = OnlineSoftmaxAverage(axis=0).update([1e300, 1.0], [1.0, 2.0])
    before = acc.result()
    acc.merge(OnlineSoftmaxAverage(axis=0).update([-np.inf], [np.inf * 0 + 5.0]))
    assert acc.result() == before


def test_online_pickles_repr_and_empty():
    acc = OnlineSoftmaxAverage(axis=-1, temperature=2.0)
    assert repr(acc) == "<OnlineSoftmaxAverage axis=-1 temperature=2.0 count=0>"
    lse, avg = acc.result()
    assert lse == -np.inf and np.isnan(avg)
    acc.update(np.zeros((2, 3)), np.ones((2, 3, 4)))
    copy = pickle.loads(pickle.dumps(acc))
    assert repr(copy) == "<OnlineSoftmaxAverage axis=-1 temperature=2.0 count=3 shape=(2, 4)>"
    close(copy.result()[1], np.ones((2, 4)))


def test_online_errors():
    acc = OnlineSoftmaxAverage(axis=0).update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^OnlineSoftmaxAverage.update: batches must agree.*\(3,\).*\(4,\)"):
        acc.update(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"^OnlineSoftmaxAverage.merge: accumulators must have the same axis"):
        acc.merge(OnlineSoftmaxAverage(axis=1))
    with pytest.raises(ValueError, match=r"^OnlineSoftmaxAverage.merge: accumulators must have the same axis "
                                         r"and temperature.*temperature=2.0"):
        acc.merge(OnlineSoftmaxAverage(axis=0, temperature=2.0))
    with pytest.raises(TypeError, match=r"^OnlineSoftmaxAverage.merge expects an OnlineSoftmaxAverage; got "
                                        r"OnlineLogSumExp"):
        acc.merge(lsearray.OnlineLogSumExp(axis=0))
    with pytest.raises(TypeError, match=r"^OnlineSoftmaxAverage: axis must be an integer; got NoneType"):
        OnlineSoftmaxAverage(axis=None)
    with pytest.raises(ValueError, match=r"^OnlineSoftmaxAverage: temperature must be positive"):
        OnlineSoftmaxAverage(temperature=-1.0)
    with pytest.raises(ValueError, match=r"^OnlineSoftmaxAverage.update: v's leading axes"):
        acc.update(np.zeros((2, 3)), np.zeros((3, 3)))


def test_online_refuses_another_library():
    torch = pytest.importorskip("torch")
    acc = OnlineSoftmaxAverage(axis=0).update(np.zeros(2), np.zeros(2))
    with pytest.raises(TypeError, match=r"^OnlineSoftmaxAverage.update: the accumulator holds numpy arrays; "
                                        r"got a batch .* of torch"):
        acc.update(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))


# -- backends ------------------------------------------------------------------------------------

def test_every_backend(xp):
    a = _special_logits()
    v = RNG.normal(size=a.shape + (2,))
    A, V = xp.make(a), xp.make(v)
    avg, lse = softmax_average(A, V, axis=-1, temperature=0.5, return_lse=True)
    xp.check(avg, A, "float64", (7, 2))
    xp.check(lse, A, "float64", (7,))
    want_lse, want_avg = slow_softmax_average(a, v, -1, 0.5)
    close(xp.to_numpy(avg), want_avg)
    close(xp.to_numpy(lse), want_lse)
    kept = softmax_average(A, V, axis=0, keepdims=True)
    close(xp.to_numpy(kept), np.expand_dims(slow_softmax_average(a, v, 0)[1], 0))
    acc = OnlineSoftmaxAverage(axis=1, temperature=0.5)
    for lo, hi in ((4, 6), (0, 1), (1, 4)):
        acc.update(xp.make(a[:, lo:hi]), xp.make(v[:, lo:hi]))
    got_lse, got_avg = acc.result()
    close(xp.to_numpy(got_lse), want_lse)
    close(xp.to_numpy(got_avg), want_avg)


def test_float32_on_every_backend(xp):
    a = RNG.normal(size=(3, 8)).astype(np.float32)
    v = RNG.normal(size=(3, 8)).astype(np.float32)
    A = xp.make(a, "float32")
    out = softmax_average(A, xp.make(v, "float32"))
    xp.check(out, A, "float32", (3,))
    close(xp.to_numpy(out), slow_softmax_average(a, v)[1], rtol=2e-5)


def test_dask_chunked_sequence_matches_numpy():
    da = pytest.importorskip("dask.array")
    import lsearray.dask

    rng = np.random.default_rng(7)
    a = rng.normal(size=(5, 37)) * 50
    a[0] = -np.inf
    a[1, 10:] = -np.inf
    v = rng.normal(size=(5, 37, 3))
    for chunks in ((2, 5), (5, 4), (1, 37)):
        A = da.from_array(a, chunks=chunks)
        V = da.from_array(v, chunks=chunks + (2,))
        avg, lse = lsearray.dask.softmax_average(A, V, axis=1, temperature=0.7, return_lse=True)
        assert isinstance(avg, da.Array)
        want_avg, want_lse = softmax_average(a, v, axis=1, temperature=0.7, return_lse=True)
        close(avg.compute(), want_avg, rtol=1e-13)
        close(lse.compute(), want_lse, rtol=1e-14)
    # NumPy logits beside dask values, through the top-level function
    out = lsearray.softmax_average(a, da.from_array(v, chunks=(5, 6, 3)), axis=1)
    close(out.compute(), softmax_average(a, v, axis=1), rtol=1e-13)


# -- gradients -----------------------------------------------------------------------------------

def test_torch_gradcheck():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = torch.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    v = torch.tensor(rng.normal(size=(2, 5, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, v: softmax_average(a, v, temperature=0.7), (a, v))
    assert torch.autograd.gradcheck(lambda a, v: softmax_average(a, v, axis=0, return_lse=True)[1], (a, v))


def test_jax_check_grads():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    rng = np.random.default_rng(4)
    a = jnp.asarray(rng.normal(size=(2, 4)))
    v = jnp.asarray(rng.normal(size=(2, 4, 2)))
    check_grads(lambda a, v: softmax_average(a, v, temperature=1.5), (a, v), order=1, modes=["rev"])
