"""The dask integration: values against the NumPy path, one lazy tree reduction, each chunk read once, bounded memory."""

import math
import threading
import tracemalloc

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import lsearray  # noqa: E402
import lsearray.dask as ldask  # noqa: E402

RTOL64 = 1e-13
RTOL32 = 1e-6
SYNC = "synchronous"


def _close(got, expected, dtype=np.float64):
    """``got`` (computed) equals ``expected`` to the dtype's tolerance, nan/inf in the same places."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    rtol = RTOL32 if np.dtype(dtype) == np.float32 else RTOL64
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, equal_nan=True)


def _computed(r):
    assert isinstance(r, da.Array), type(r)
    return r.compute(scheduler=SYNC)


def _layers(r):
    """``[(layer name without token, number of keys)]`` of ``r``'s graph, in graph order."""
    return [(name.rsplit("-", 1)[0], len(layer)) for name, layer in r.__dask_graph__().layers.items()]


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# values against the NumPy path

LAYOUTS = [
    ((10, 12), (10, 12)),  # one chunk
    ((10, 12), (3, 5)),
    ((10, 12), (1, 1)),
    ((10, 12), ((1, 4, 2, 3), (5, 7))),  # irregular
    ((10, 12), ((7, 3), (1, 1, 10))),
    ((10, 12), ((3, 0, 7), (5, 0, 0, 7))),  # size-0 chunks
    ((4, 5, 6), (2, 3, 4)),
    ((4, 5, 6), ((1, 3), (5,), (1, 2, 3))),
]

AXES_2D = [None, 0, 1, -1, -2, (0, 1), (1, 0), (-1, 0)]


@pytest.mark.parametrize("shape,chunks", LAYOUTS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_matches_numpy_over_axes_and_layouts(shape, chunks, keepdims):
    x = _rng(1).standard_normal(shape) * 30
    d = da.from_array(x, chunks=chunks)
    axes = AXES_2D if len(shape) == 2 else [None, 0, 1, 2, -1, (0, 2), (0, 1, 2), (2, 0)]
    for axis in axes:
        expected = lsearray.logsumexp(x, axis=axis, keepdims=keepdims)
        _close(_computed(ldask.logsumexp(d, axis=axis, keepdims=keepdims)), expected)
        _close(_computed(lsearray.logsumexp(d, axis=axis, keepdims=keepdims)), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
def test_logsumexp_float32_and_float64(dtype, axis):
    x = (_rng(2).standard_normal((9, 14)) * 10).astype(dtype)
    d = da.from_array(x, chunks=(4, 5))
    r = ldask.logsumexp(d, axis=axis)
    assert r.dtype == dtype
    _close(_computed(r), lsearray.logsumexp(x, axis=axis), dtype)


def test_logsumexp_0d_input():
    _close(_computed(ldask.logsumexp(da.asarray(3.5))), lsearray.logsumexp(np.float64(3.5)))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_empty_array(axis, keepdims):
    x = np.empty((0, 5))
    d = da.from_array(x, chunks=(0, 2))
    expected = lsearray.logsumexp(x, axis=axis, keepdims=keepdims)
    _close(_computed(ldask.logsumexp(d, axis=axis, keepdims=keepdims)), expected)
    assert np.all(np.isneginf(expected)) or expected.size == 0
    _close(_computed(ldask.logmeanexp(d, axis=axis, keepdims=keepdims)),
           lsearray.logmeanexp(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("b_kind", ["dask", "numpy"])
@pytest.mark.parametrize("b_shape", [(10, 12), (1, 12), (10, 1), (12,), ()])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_weights_dask_and_numpy_broadcast(b_kind, b_shape, axis):
    x = _rng(3).standard_normal((10, 12)) * 5
    b = _rng(4).uniform(0.0, 3.0, size=b_shape)
    if b_shape:
        b.reshape(-1)[::3] = 0.0  # zero weights remove elements
    d = da.from_array(x, chunks=(3, 5))
    bb = da.from_array(b, chunks=2) if (b_kind == "dask" and b_shape) else b
    expected = lsearray.logsumexp(x, axis=axis, b=b)
    _close(_computed(ldask.logsumexp(d, axis=axis, b=bb)), expected)
    _close(_computed(lsearray.logsumexp(d, axis=axis, b=bb)), expected)


@pytest.mark.parametrize("b_kind", ["dask", "numpy"])
@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_return_sign_with_signed_weights(b_kind, axis, keepdims):
    x = _rng(5).standard_normal((10, 12))
    b = _rng(6).choice([-2.0, -1.0, 0.0, 0.5, 1.0], size=(10, 12))
    d = da.from_array(x, chunks=(3, 4))
    bb = da.from_array(b, chunks=(5, 5)) if b_kind == "dask" else b
    r, s = ldask.logsumexp(d, axis=axis, b=bb, keepdims=keepdims, return_sign=True)
    assert isinstance(s, da.Array)
    er, es = lsearray.logsumexp(x, axis=axis, b=b, keepdims=keepdims, return_sign=True)
    got_r, got_s = dask.compute(r, s, scheduler=SYNC)
    _close(got_r, er)
    _close(got_s, es)
    assert np.any(np.asarray(es) < 0) or axis is None  # the weights really give negative sums
    # without return_sign a negative sum is nan
    plain = _computed(ldask.logsumexp(d, axis=axis, b=bb, keepdims=keepdims))
    _close(plain, lsearray.logsumexp(x, axis=axis, b=b, keepdims=keepdims))


def test_return_sign_float32():
    x = _rng(7).standard_normal((6, 8)).astype(np.float32)
    b = np.where(_rng(8).random((6, 8)) < 0.5, -1.0, 1.0).astype(np.float32)
    r, s = ldask.logsumexp(da.from_array(x, chunks=3), axis=1, b=b, return_sign=True)
    er, es = lsearray.logsumexp(x, axis=1, b=b, return_sign=True)
    assert r.dtype == np.float32 and s.dtype == np.float32
    _close(r.compute(scheduler=SYNC), er, np.float32)
    _close(s.compute(scheduler=SYNC), es, np.float32)


@pytest.mark.parametrize("temperature", [0.25, 1.0, 3.0, 1e3])
@pytest.mark.parametrize("axis", [None, 1])
def test_temperature(temperature, axis):
    x = _rng(9).standard_normal((7, 11)) * 4
    b = _rng(10).random((7, 11))
    d = da.from_array(x, chunks=(2, 3))
    _close(_computed(ldask.logsumexp(d, axis=axis, temperature=temperature)),
           lsearray.logsumexp(x, axis=axis, temperature=temperature))
    _close(_computed(ldask.logsumexp(d, axis=axis, b=b, temperature=temperature)),
           lsearray.logsumexp(x, axis=axis, b=b, temperature=temperature))
    _close(_computed(lsearray.logsumexp(d, axis=axis, temperature=temperature)),
           lsearray.logsumexp(x, axis=axis, temperature=temperature))


def _special_input():
    """Rows (axis 1, chunks of 3 columns) with nan, +inf, -inf, all -inf chunks, a chunk only +inf."""
    x = _rng(11).standard_normal((8, 9))
    x[0, 4] = np.nan  # nan anywhere in the row
    x[1, 7] = np.inf  # one +inf
    x[2, 1] = -np.inf  # one -inf
    x[3, :] = -np.inf  # the whole row -inf
    x[4, 3:6] = -np.inf  # one chunk all -inf, the others finite
    x[5, 0:3] = np.inf  # one chunk that is only +inf
    x[6, 6:9] = np.inf
    x[6, 0] = np.nan  # +inf and nan -> nan
    x[7, 0:3] = -np.inf  # -inf chunk beside a +inf one
    x[7, 8] = np.inf
    return x


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("chunks", [(3, 3), (1, 9), (8, 1), (2, 4)])
def test_special_values(axis, chunks):
    x = _special_input()
    d = da.from_array(x, chunks=chunks)
    expected = lsearray.logsumexp(x, axis=axis)
    if axis == 1:  # the reference itself follows scipy on these rows
        assert np.isnan(expected[0]) and expected[1] == np.inf and np.isfinite(expected[2])
        assert expected[3] == -np.inf and expected[5] == np.inf and np.isnan(expected[6])
    _close(_computed(ldask.logsumexp(d, axis=axis)), expected)
    _close(_computed(ldask.logmeanexp(d, axis=axis)), lsearray.logmeanexp(x, axis=axis))
    r, s = ldask.logsumexp(d, axis=axis, return_sign=True)
    er, es = lsearray.logsumexp(x, axis=axis, return_sign=True)
    _close(r.compute(scheduler=SYNC), er)
    _close(s.compute(scheduler=SYNC), es)


def test_special_values_with_zero_weights():
    x = _special_input()
    b = np.ones_like(x)
    b[0, 4] = 0.0  # a zero weight removes the nan
    b[1, 7] = 0.0  # and the +inf
    b[5, 0:3] = 0.0  # and the whole +inf chunk
    d = da.from_array(x, chunks=(3, 3))
    expected = lsearray.logsumexp(x, axis=1, b=b)
    assert np.all(np.isfinite(expected[[0, 1, 5]]))
    _close(_computed(ldask.logsumexp(d, axis=1, b=b)), expected)
    _close(_computed(ldask.logsumexp(d, axis=1, b=da.from_array(b, chunks=(4, 2)))), expected)


def test_all_chunks_minus_inf():
    x = np.full((6, 6), -np.inf)
    d = da.from_array(x, chunks=2)
    for axis in (None, 0, 1):
        got = _computed(ldask.logsumexp(d, axis=axis))
        _close(got, lsearray.logsumexp(x, axis=axis))
        assert np.all(np.isneginf(got))


def test_accuracy_tiny_terms_across_chunks():
    # log(1 + 1e-22 * k) needs the sum without its maximal term carried across chunk merges
    x = np.full(64, -50.0)
    x[17] = 0.0
    d = da.from_array(x, chunks=5)
    got = _computed(ldask.logsumexp(d, split_every=2))
    assert got == pytest.approx(math.log1p(63 * math.exp(-50.0)), rel=1e-14)
    assert got > 0.0
    _close(got, lsearray.logsumexp(x))


def test_many_chunk_layouts_random():
    rng = _rng(12)
    x = rng.standard_normal((23, 17)) * 20
    for trial in range(25):
        chunks = []
        for n in x.shape:
            cuts = np.sort(rng.choice(np.arange(0, n + 1), size=rng.integers(0, 6)))
            bounds = np.concatenate([[0], cuts, [n]])
            chunks.append(tuple(int(c) for c in np.diff(bounds)))
        d = da.from_array(x, chunks=tuple(chunks))
        axis = [None, 0, 1, -1, (0, 1)][trial % 5]
        split_every = [None, 2, 3, {0: 2, 1: 3}, 5][trial % 5]
        _close(_computed(ldask.logsumexp(d, axis=axis, split_every=split_every)),
               lsearray.logsumexp(x, axis=axis), np.float64)


@pytest.mark.parametrize("split_every", [2, 3, 7, {0: 2, 1: 3}, {0: 3}, {1: 2}])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_split_every(split_every, axis):
    x = _rng(13).standard_normal((20, 30)) * 8
    d = da.from_array(x, chunks=(2, 3))
    b = _rng(14).random((20, 30))
    _close(_computed(ldask.logsumexp(d, axis=axis, split_every=split_every)),
           lsearray.logsumexp(x, axis=axis))
    _close(_computed(ldask.logsumexp(d, axis=axis, b=b, split_every=split_every)),
           lsearray.logsumexp(x, axis=axis, b=b))
    _close(_computed(ldask.logmeanexp(d, axis=axis, split_every=split_every)),
           lsearray.logmeanexp(x, axis=axis))
    _close(_computed(ldask.softmax(d, axis=axis, split_every=split_every)),
           lsearray.softmax(x, axis=axis))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logmeanexp(axis, keepdims, dtype):
    x = (_rng(15).standard_normal((10, 12)) * 6).astype(dtype)
    b = _rng(16).random((1, 12)).astype(dtype)
    d = da.from_array(x, chunks=((3, 0, 7), (5, 5, 2)))
    r = ldask.logmeanexp(d, axis=axis, keepdims=keepdims)
    assert r.dtype == dtype
    _close(_computed(r), lsearray.logmeanexp(x, axis=axis, keepdims=keepdims), dtype)
    _close(_computed(lsearray.logmeanexp(d, axis=axis, keepdims=keepdims)),
           lsearray.logmeanexp(x, axis=axis, keepdims=keepdims), dtype)
    for bb in (b, da.from_array(b, chunks=(1, 4))):
        _close(_computed(ldask.logmeanexp(d, axis=axis, b=bb, keepdims=keepdims)),
               lsearray.logmeanexp(x, axis=axis, b=b, keepdims=keepdims), dtype)


def test_logmeanexp_is_the_mean():
    x = da.full((10, 7), 3.0, chunks=(3, 2))
    _close(_computed(ldask.logmeanexp(x)), np.float64(3.0))
    b = np.full((10, 7), 0.25)
    _close(_computed(ldask.logmeanexp(x, b=b, axis=0)), np.full(7, 3.0))


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 4.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax(func, axis, temperature, dtype):
    x = (_rng(17).standard_normal((10, 12)) * 10).astype(dtype)
    d = da.from_array(x, chunks=((3, 0, 7), (1, 5, 6)))
    r = getattr(ldask, func)(d, axis=axis, temperature=temperature)
    assert r.dtype == dtype and r.shape == x.shape
    expected = getattr(lsearray, func)(x, axis=axis, temperature=temperature)
    _close(_computed(r), expected, dtype)
    _close(_computed(getattr(lsearray, func)(d, axis=axis, temperature=temperature)), expected, dtype)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_softmax_special_values(func, axis):
    x = _special_input()
    d = da.from_array(x, chunks=3)
    _close(_computed(getattr(ldask, func)(d, axis=axis)), getattr(lsearray, func)(x, axis=axis))


def test_softmax_0d_and_empty():
    _close(_computed(ldask.softmax(da.asarray(2.0))), lsearray.softmax(np.float64(2.0)))
    _close(_computed(ldask.log_softmax(da.asarray(2.0))), lsearray.log_softmax(np.float64(2.0)))
    e = np.empty((0, 4))
    _close(_computed(ldask.softmax(da.from_array(e, chunks=2), axis=0)), lsearray.softmax(e, axis=0))


def test_softmax_sums_to_one():
    x = da.from_array(_rng(18).standard_normal((50, 40)) * 100, chunks=(7, 9))
    s = _computed(ldask.softmax(x, axis=1))
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# the graph: one reduction, lazy


def _tree_sizes(n, k):
    """The number of keys of each combine level of dask's tree over ``n`` blocks with fan-in ``k``."""
    sizes = []
    while n > k:
        n = math.ceil(n / k)
        sizes.append(n)
    return sizes


@pytest.mark.parametrize("split_every", [2, 3, 4, 16])
@pytest.mark.parametrize("entry", ["dask", "dispatch"])
def test_graph_is_one_tree_reduction(split_every, entry):
    x = da.ones(16, chunks=1)
    if entry == "dask":
        r = ldask.logsumexp(x, split_every=split_every)
    else:
        with dask.config.set(split_every=split_every):
            r = lsearray.logsumexp(x)
    layers = _layers(r)
    assert layers[0] == ("ones_like", 16)
    expected = ([("lsearray-lse", 16)] + [("lsearray-lse-partial", n) for n in _tree_sizes(16, split_every)]
                + [("lsearray-lse-aggregate", 1)])
    assert layers[1:] == expected
    # one key per input chunk, one per tree node: nothing else
    assert len(r.__dask_graph__()) == 16 + 16 + sum(_tree_sizes(16, split_every)) + 1


def test_graph_2d_keeps_one_chunk_task_per_block():
    x = da.ones((8, 9), chunks=(2, 3))  # 4 x 3 blocks
    r = ldask.logsumexp(x, axis=0, split_every={0: 2})
    assert _layers(r)[1:] == [("lsearray-lse", 12), ("lsearray-lse-partial", 6),
                              ("lsearray-lse-aggregate", 3)]
    r = ldask.logsumexp(x, split_every={0: 2, 1: 3})
    assert _layers(r)[1:] == [("lsearray-lse", 12), ("lsearray-lse-partial", 2),
                              ("lsearray-lse-aggregate", 1)]
    r = ldask.logmeanexp(x, axis=1)
    names = [n for n, _ in _layers(r)]
    assert names.count("lsearray-mean") == 1 and names.count("lsearray-mean-aggregate") == 1
    assert all(n.startswith("lsearray-mean") for n in names[1:])


def test_graph_return_sign_is_one_reduction():
    x = da.ones((8, 9), chunks=(2, 3))
    r, s = ldask.logsumexp(x, axis=1, b=-x, return_sign=True)
    chunk_layers = [n for n, _ in _layers(dask.array.stack([r, s])) if n == "lsearray-signed"]
    assert chunk_layers == ["lsearray-signed"]  # res and sign share one reduction
    assert r.compute(scheduler=SYNC) == pytest.approx(np.full(8, 1.0 + math.log(9)), rel=1e-14)
    assert np.all(s.compute(scheduler=SYNC) == -1)


def test_softmax_graph_is_one_reduction_and_one_blockwise_pass():
    x = da.ones((8, 9), chunks=(2, 3))
    r = ldask.softmax(x, axis=1)
    names = [n for n, _ in _layers(r)]
    assert names.count("lsearray-norm") == 1
    assert names.count("lsearray-norm-aggregate") == 1
    # every other layer maps blocks one to one (elementwise / getitem): no second reduction
    for name, n in _layers(r):
        if not name.startswith("lsearray-norm"):
            assert n in (12, 4), (name, n)  # blocks of x, or of the (8, 1) normalizer
    np.testing.assert_allclose(r.compute(scheduler=SYNC), np.full((8, 9), 1 / 9), rtol=1e-14)


class _Recorder:
    """A map_blocks source that records, thread-safely, how often each block is produced."""

    def __init__(self, nblocks, block_len, seed=0):
        self.counts = {}
        self.lock = threading.Lock()
        self.seed = seed
        self.array = da.map_blocks(self._block, chunks=((block_len,) * nblocks,), dtype=np.float64,
                                   meta=np.empty((0,), dtype=np.float64))
        self.numpy = np.concatenate([self._values(i, block_len) for i in range(nblocks)])

    def _values(self, i, n):
        return np.random.default_rng((self.seed, i)).standard_normal(n) * 10

    def _block(self, block_id=None, block_info=None):
        with self.lock:
            self.counts[block_id] = self.counts.get(block_id, 0) + 1
        return self._values(block_id[0], block_info[None]["chunk-shape"][0])


def test_nothing_computes_on_call():
    rec = _Recorder(8, 10)
    x = rec.array
    outs = [ldask.logsumexp(x), ldask.logsumexp(x, b=x, return_sign=True)[0],
            ldask.logmeanexp(x), ldask.softmax(x), ldask.log_softmax(x),
            lsearray.logsumexp(x), lsearray.logmeanexp(x), lsearray.softmax(x),
            lsearray.log_softmax(x), ldask.logsumexp(x, b=np.ones(80), temperature=2.0),
            lsearray.logdiffexp(x, x - 1.0), lsearray.logdiffexp(x - 1.0, x, return_sign=True)[1],
            lsearray.log1mexp(-da.abs(x))]
    assert all(isinstance(o, da.Array) for o in outs)
    assert rec.counts == {}
    _close(outs[0].compute(scheduler=SYNC), lsearray.logsumexp(rec.numpy))
    assert len(rec.counts) == 8


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
@pytest.mark.parametrize("split_every", [None, 2, 5])
def test_every_chunk_is_read_once(scheduler, split_every):
    rec = _Recorder(40, 1000, seed=1)
    r = ldask.logsumexp(rec.array, split_every=split_every)
    got = r.compute(scheduler=scheduler)
    assert rec.counts == {(i,): 1 for i in range(40)}
    _close(got, lsearray.logsumexp(rec.numpy))


def test_every_chunk_is_read_once_logmeanexp_and_weights():
    rec = _Recorder(20, 500, seed=2)
    got = ldask.logmeanexp(rec.array, b=np.linspace(0, 1, 10000)).compute(scheduler="threads")
    assert rec.counts == {(i,): 1 for i in range(20)}
    _close(got, lsearray.logmeanexp(rec.numpy, b=np.linspace(0, 1, 10000)))


def test_softmax_reads_each_chunk_once_per_pass():
    rec = _Recorder(10, 100, seed=3)
    got = ldask.softmax(rec.array).compute(scheduler="synchronous")
    _close(got, lsearray.softmax(rec.numpy))
    # dask computes each block once and keeps it for the second (blockwise) pass
    assert rec.counts == {(i,): 1 for i in range(10)}


def test_two_pass_recipe_also_reads_once_when_computed_together():
    rec = _Recorder(40, 1000, seed=1)
    x = rec.array
    m = x.max()
    s = da.exp(x - m).sum()
    m, s = dask.compute(m, s, scheduler="threads")
    assert rec.counts == {(i,): 1 for i in range(40)}
    _close(np.log(s) + m, lsearray.logsumexp(rec.numpy))
    # ... but separately it reads every chunk twice
    rec2 = _Recorder(40, 1000, seed=1)
    m2 = rec2.array.max().compute(scheduler="threads")
    da.exp(rec2.array - m2).sum().compute(scheduler="threads")
    assert rec2.counts == {(i,): 2 for i in range(40)}


# ---------------------------------------------------------------------------------------------
# byte order: data in the other byte order (a big-endian file on a little-endian machine)


def _swapped(dtype):
    """``dtype`` in the byte order this machine does not use."""
    return np.dtype(dtype).newbyteorder("S")


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("func", ["logsumexp", "logmeanexp", "softmax", "log_softmax"])
def test_other_byte_order_gives_the_native_answer(func, dtype):
    x = (_rng(4).standard_normal((9, 10)) * 5).astype(dtype)
    other = x.astype(_swapped(dtype))
    a = da.from_array(other, chunks=(4, 3))
    kwargs = {"axis": 1}
    if func in ("logsumexp", "logmeanexp"):
        w = _rng(5).random(10).astype(dtype) + 1
        kwargs["b"] = da.from_array(w.astype(_swapped(dtype)), chunks=3)
        native = getattr(lsearray, func)(x, axis=1, b=w)
        numpy_path = getattr(lsearray, func)(other, axis=1, b=w.astype(_swapped(dtype)))
    else:
        native = getattr(lsearray, func)(x, axis=1)
        numpy_path = getattr(lsearray, func)(other, axis=1)
    got = _computed(getattr(ldask, func)(a, **kwargs))
    _close(got, native, native.dtype)
    _close(numpy_path, native, native.dtype)


def test_other_byte_order_is_converted_chunk_by_chunk():
    rec = _Recorder(12, 100, seed=6)
    other = rec.array.map_blocks(lambda block: block.astype(_swapped(block.dtype)),
                                 dtype=_swapped(np.float64))
    r = ldask.logsumexp(other, split_every=3)
    assert r.dtype == np.float64 and r.dtype.isnative
    _close(r.compute(scheduler="threads"), lsearray.logsumexp(rec.numpy))
    assert rec.counts == {(i,): 1 for i in range(12)}  # each chunk read (and converted) once



_CHUNK = 1 << 17  # float64 elements: 1 MiB
_NCHUNKS = 400


def _synthetic(block_id=None, block_info=None):
    return np.random.default_rng(block_id[0]).random(block_info[None]["chunk-shape"][0])


def _generated(chunk_len):
    return da.map_blocks(_synthetic, chunks=((chunk_len,) * _NCHUNKS,), dtype=np.float64,
                         meta=np.empty((0,), dtype=np.float64))


def _peak(fn):
    """The peak traced memory (bytes) while ``fn()`` runs, and its result."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return tracemalloc.get_traced_memory()[1] - base, out
    finally:
        tracemalloc.stop()


def test_memory_stays_near_a_few_chunks():
    threads, chunk = 2, _CHUNK * 8
    x = _generated(_CHUNK)
    assert x.nbytes == _NCHUNKS * chunk
    run = dict(scheduler="threads", num_workers=threads)

    def two_pass(x):
        m = x.max()
        return m, da.log(da.exp(x - m).sum()) + m

    # warm up (the first compute in a process imports modules) and measure the scheduler's
    # own bookkeeping for the same 400-chunk graphs with 8-element chunks
    tiny = _generated(8)
    dask.compute(ldask.logsumexp(tiny), *two_pass(tiny), **run)
    lse_tiny = ldask.logsumexp(tiny)
    overhead, _ = _peak(lambda: lse_tiny.compute(**run))
    two_tiny = two_pass(tiny)
    overhead_two, _ = _peak(lambda: dask.compute(*two_tiny, **run))

    lse = ldask.logsumexp(x)  # graphs built outside the traced region
    peak_lse, got = _peak(lambda: lse.compute(**run))
    two = two_pass(x)
    peak_two, (_, expected) = _peak(lambda: dask.compute(*two, **run))

    data_lse, data_two = peak_lse - overhead, peak_two - overhead_two
    assert overhead < 3 * chunk, overhead / chunk  # the bookkeeping is small beside the data
    assert data_lse < (threads + 2) * chunk, (data_lse / chunk, overhead / chunk)
    assert data_two > 20 * max(data_lse, chunk), (data_two / chunk, data_lse / chunk)
    assert data_two > 0.5 * x.nbytes  # the recipe holds the chunks until the max is known
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# a random sweep over special values, signed/zero/inf/nan weights and chunkings


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("seed", range(4))
def test_random_special_values_sweep(seed):
    rng = _rng(100 + seed)
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 700.0, -700.0])
    bvals = np.array([0.0, 1.0, -1.0, 2.0, np.inf, np.nan, -0.5])
    for t in range(40):
        shape = (int(rng.integers(0, 5)), int(rng.integers(1, 6)))
        x = rng.choice(vals, size=shape) if rng.random() < 0.7 else rng.standard_normal(shape)
        b = rng.choice(bvals, size=shape) if rng.random() < 0.5 else None
        chunks = tuple(int(rng.integers(1, 4)) for _ in shape)
        d = da.from_array(x, chunks=chunks)
        bd = None if b is None else (da.from_array(b, chunks=chunks[::-1]) if t % 2 else b)
        axis = [None, 0, 1, (0, 1)][t % 4]
        tau = [1.0, 0.5, 3.0][t % 3]
        msg = f"x={x.tolist()} b={None if b is None else b.tolist()} axis={axis} tau={tau} chunks={chunks}"
        r, s = ldask.logsumexp(d, axis=axis, b=bd, temperature=tau, return_sign=True)
        er, es = lsearray.logsumexp(x, axis=axis, b=b, temperature=tau, return_sign=True)
        got = dask.compute(r, s, ldask.logsumexp(d, axis=axis, b=bd, temperature=tau),
                           ldask.logmeanexp(d, axis=axis, b=bd, temperature=tau), scheduler=SYNC)
        expected = (er, es, lsearray.logsumexp(x, axis=axis, b=b, temperature=tau),
                    lsearray.logmeanexp(x, axis=axis, b=b, temperature=tau))
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=RTOL64, equal_nan=True, err_msg=msg)
        if b is None:
            for func in ("softmax", "log_softmax"):
                g = getattr(ldask, func)(d, axis=axis, temperature=tau).compute(scheduler=SYNC)
                e = getattr(lsearray, func)(x, axis=axis, temperature=tau)
                np.testing.assert_allclose(g, e, rtol=RTOL64, equal_nan=True, err_msg=f"{func} {msg}")
