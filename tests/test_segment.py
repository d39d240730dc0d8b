"""segment_logsumexp, segment_softmax and segment_log_softmax against mpmath per segment, on every backend, with gradients and dask chunkings."""

import math

import mpmath
import numpy as np
import pytest

import lsearray
from lsearray import segment_log_softmax, segment_logsumexp, segment_softmax
from reference import mp_lse_slice, mp_softmax_slice, tolerances, ulp_error

__all__ = []

RNG = np.random.default_rng(20261205)


def mp_segment_lse(a, ids, k, axis=0, b=None, temperature=1.0):
    """mpmath log-sum-exp of each segment, column by column (mpf values, special ones
    included; nan for a negative sum)."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0)
    b = None if b is None else np.moveaxis(np.broadcast_to(np.asarray(b, dtype=np.float64),
                                                           np.moveaxis(a, 0, axis).shape), axis, 0)
    out = np.empty((k,) + a.shape[1:], dtype=object)
    for seg in range(k):
        rows = np.flatnonzero(np.asarray(ids) == seg)
        for col in np.ndindex(*a.shape[1:]):
            index = (rows,) + col
            r = mp_lse_slice(a[index], None if b is None else b[index], temperature)
            out[(seg,) + col] = mpmath.mpf("nan") if r.sign < 0 else r.value  # scipy's rule
    return np.moveaxis(out, 0, axis)


def mp_segment_softmax(a, ids, axis=0, temperature=1.0, log=False):
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0)
    out = np.empty(a.shape, dtype=object)
    for seg in set(np.asarray(ids).tolist()):
        rows = np.flatnonzero(np.asarray(ids) == seg)
        for col in np.ndindex(*a.shape[1:]):
            for r, v in zip(rows, mp_softmax_slice(a[(rows,) + col], temperature, log)):
                out[(r,) + col] = v
    return np.moveaxis(out, 0, axis)


def as_floats(x):
    return np.array([float(v) for v in x.ravel().tolist()]).reshape(x.shape)


def assert_ulp(got, exact, dtype, limit=1.0):
    got = np.asarray(got)
    assert got.dtype == dtype and got.shape == exact.shape
    worst = max((ulp_error(g, e, dtype) if not (math.isnan(g) and mpmath.isnan(e)) else 0.0
                 for g, e in zip(got.ravel().tolist(), exact.ravel().tolist())), default=0.0)
    assert worst <= limit, worst


def assert_close(got, exact, dtype):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), as_floats(exact),
                               equal_nan=True, **tolerances(dtype))


def special_case():
    """(a, ids, k): 3-d ``a`` segmented along axis 1, unsorted ids, an empty segment (3),
    trailing segments past max + 1, and segments of -inf, +inf, nan and huge shifts."""
    a = RNG.normal(size=(2, 12, 3)) * 4
    ids = np.array([4, 0, 2, 0, 1, 4, 2, 5, 1, 0, 5, 2])
    a[:, ids == 1] = -np.inf                  # an all -inf segment
    a[0, 2, 0] = np.inf                       # +inf in segment 2 of one column
    a[1, 7, 2] = np.nan                       # nan in segment 5 of one column
    a[:, ids == 4] += 1000.0                  # a huge shift
    a[1, 3, 1] = -np.inf                      # one -inf in a finite segment
    return a, ids, 8


def weights(shape):
    b = RNG.uniform(0.5, 2.0, size=shape)
    b[0, 1, 0] = 0.0                          # a zero weight
    b[1, 4, 1] = -0.1                         # a small negative weight: the sum stays positive
    b[0, 10, 2] = -50.0                       # a negative sum: nan
    b[:, 6] = 0.0                             # segment 2 keeps only two elements' weights
    return b


@pytest.mark.parametrize("temperature", [1.0, 0.3, 4.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_within_one_ulp(temperature, weighted, dtype):
    a, ids, k = special_case()
    b = weights(a.shape).astype(dtype) if weighted else None  # float64 weights would promote
    a = a.astype(dtype)
    exact = mp_segment_lse(a, ids, k, 1, b, temperature)
    for order in [False, True]:
        perm = np.argsort(ids, kind="stable") if order else np.arange(ids.size)
        got = segment_logsumexp(a[:, perm], ids[perm], k, axis=1, temperature=temperature,
                                b=None if b is None else b[:, perm], sorted=order)
        assert_ulp(got, exact, np.dtype(dtype))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_numpy_softmax_within_one_ulp(log, temperature):
    a, ids, k = special_case()
    func = segment_log_softmax if log else segment_softmax
    got = func(a, ids, k, axis=1, temperature=temperature)
    exact = mp_segment_softmax(a, ids, 1, temperature, log)
    # the kernel's softmax bound (tests/test_kernel_normalize.py): 2 ulps, not 1; sorted ids
    # take other loops (runs), within the same bound but not bit for bit the same
    assert_ulp(got, exact, np.dtype(np.float64), 2.0)
    perm = np.argsort(ids, kind="stable")
    sorted_got = func(a[:, perm], ids[perm], k, axis=1, temperature=temperature, sorted=True)
    assert_ulp(sorted_got, exact[:, perm], np.dtype(np.float64), 2.0)


def test_softmax_sums_to_one_per_segment():
    a = RNG.normal(size=50) * 10
    ids = RNG.integers(0, 7, size=50)
    s = segment_softmax(a, ids)
    for seg in range(7):
        assert math.isclose(math.fsum(s[ids == seg]), 1.0, rel_tol=1e-14)


@pytest.mark.parametrize("kind", ["lse", "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_backend(xp, kind, dtype):
    a, ids, k = special_case()
    a = a.astype(dtype)
    x = xp.make(a, dtype)
    i = xp.make(ids)
    if kind == "lse":
        b = weights(a.shape)
        got = segment_logsumexp(x, i, k, axis=1, temperature=0.7, b=xp.make(b, dtype))
        exact = mp_segment_lse(a, ids, k, 1, b.astype(dtype), 0.7)
        shape = (2, k, 3)
    else:
        func = segment_softmax if kind == "softmax" else segment_log_softmax
        got = func(x, i, k, axis=1, temperature=0.7)
        exact = mp_segment_softmax(a, ids, 1, 0.7, kind == "log_softmax")
        shape = a.shape
    xp.check(got, x, dtype, shape)
    assert_close(xp.to_numpy(got), exact, dtype)


def test_every_backend_integer_input_and_default_segments(xp):
    a = np.array([3, 1, 4, 1, 5])
    ids = np.array([1, 1, 3, 3, 3])
    x = xp.make(a)
    got = segment_logsumexp(x, xp.make(ids))
    xp.check(got, x, xp.default_float(x), (4,))
    want = [-math.inf, math.log(math.exp(3) + math.exp(1)), -math.inf,
            math.log(math.exp(4) + math.exp(1) + math.exp(5))]
    np.testing.assert_allclose(xp.to_numpy(got), want, rtol=1e-6)


@pytest.mark.parametrize("id_dtype", ["int32", "uint8", "int64"])
def test_every_backend_integer_id_dtypes(xp, id_dtype):
    a = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    got = segment_logsumexp(xp.make(a), xp.make(np.array([1, 0, 1], dtype=id_dtype)), axis=0)
    want = [[2.0, 3.0], [math.log(1 + math.exp(4)), 1 + math.log(1 + math.exp(4))]]
    np.testing.assert_allclose(xp.to_numpy(got), want, rtol=1e-13)


@pytest.mark.parametrize("k", [0, 3])
def test_empty_axis(xp, k):
    x = xp.make(np.zeros((2, 0)))
    i = xp.make(np.zeros(0, dtype=np.int64))
    got = segment_logsumexp(x, i, k, axis=1)
    assert xp.to_numpy(got).shape == (2, k) and np.all(xp.to_numpy(got) == -np.inf)
    assert xp.to_numpy(segment_softmax(x, i, k, axis=1)).shape == (2, 0)


def test_no_ids_and_no_num_segments():
    got = segment_logsumexp(np.zeros((0, 2)), np.zeros(0, dtype=int))
    assert got.shape == (0, 2)


def test_lists_and_python_ints():
    got = segment_logsumexp([0.0, 0.0, 0.0], [2, 2, 0], num_segments=np.int64(3))
    np.testing.assert_allclose(got, [0.0, -np.inf, math.log(2)])


def test_torch_gradients():
    torch = pytest.importorskip("torch")
    a = torch.tensor(RNG.normal(size=(9, 2)) * 3, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([2, 0, 0, 3, 2, 1, 0, 3, 1])  # no empty segment: its -inf has no derivative
    b = torch.tensor(RNG.uniform(0.5, 2, size=(9, 2)), dtype=torch.float64, requires_grad=True)
    for tau in [1.0, 0.5]:
        assert torch.autograd.gradcheck(
            lambda x, w: segment_logsumexp(x, ids, 4, b=w, temperature=tau), (a, b))
        assert torch.autograd.gradcheck(
            lambda x: segment_softmax(x, ids, 4, temperature=tau), (a,))
        assert torch.autograd.gradcheck(
            lambda x: segment_log_softmax(x, ids, 4, temperature=tau), (a,))
    # d/da of the sum of a segment's lse is the segment's softmax, independently computed
    out = segment_logsumexp(a, ids, 4)
    out.sum().backward()
    x = a.detach().numpy()
    for seg in range(4):
        rows = (ids == seg).numpy()
        e = np.exp(x[rows] - x[rows].max(axis=0))
        np.testing.assert_allclose(a.grad.numpy()[rows], e / e.sum(axis=0), rtol=1e-12)


def test_torch_gradient_is_finite_with_specials():
    torch = pytest.importorskip("torch")
    a = torch.tensor([0.0, -math.inf, -math.inf, 1.0], dtype=torch.float64, requires_grad=True)
    out = segment_logsumexp(a, torch.tensor([0, 1, 1, 0]), 3)
    out[torch.isfinite(out)].sum().backward()
    assert torch.all(torch.isfinite(a.grad))
    np.testing.assert_allclose(a.grad.numpy()[[0, 3]], [1 / (1 + math.e), math.e / (1 + math.e)])


def test_jax_jit_and_grad():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x = RNG.normal(size=(8, 2)) * 2
    ids = np.array([1, 1, 0, 3, 0, 1, 3, 3])
    f = jax.jit(lambda v, i: segment_logsumexp(v, i, num_segments=4))
    got = np.asarray(f(jnp.asarray(x), jnp.asarray(ids)))
    assert_close(got, mp_segment_lse(x, ids, 4), "float64")
    kept = jnp.asarray([0, 1, 3])  # segment 2 is empty
    grad = np.asarray(jax.grad(lambda v: f(v, jnp.asarray(ids))[kept].sum())(jnp.asarray(x)))
    for seg in [0, 1, 3]:
        rows = ids == seg
        e = np.exp(x[rows] - x[rows].max(axis=0))
        np.testing.assert_allclose(grad[rows], e / e.sum(axis=0), rtol=1e-12)
    soft = jax.jit(lambda v: segment_softmax(v, jnp.asarray(ids), 4))(jnp.asarray(x))
    assert_close(np.asarray(soft), mp_segment_softmax(x, ids), "float64")


def test_jax_traced_ids_need_num_segments_and_drop_out_of_range():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x = jnp.asarray([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="segment_logsumexp: num_segments must be given"):
        jax.jit(lambda i: segment_logsumexp(x, i))(jnp.asarray([0, 0, 1]))
    got = jax.jit(lambda i: segment_logsumexp(x, i, 2))(jnp.asarray([0, 7, 1]))
    np.testing.assert_allclose(np.asarray(got), [0.0, 2.0])
    with pytest.raises(ValueError, match=r"segment_ids must lie in \[0, num_segments\)"):
        segment_logsumexp(x, jnp.asarray([0, 7, 1]), 2)  # eager: checked


@pytest.mark.parametrize("chunks", [(1, 5, 3), (2, 4, 1), (2, 12, 3), (1, 1, 2)])
@pytest.mark.parametrize("dask_ids", [False, True])
def test_dask_chunkings(chunks, dask_ids):
    da = pytest.importorskip("dask.array")
    import lsearray.dask

    a, ids, k = special_case()
    b = weights(a.shape)
    x = da.from_array(a, chunks=chunks)
    i = da.from_array(ids, chunks=3) if dask_ids else ids
    got = lsearray.dask.segment_logsumexp(x, i, k, axis=1, b=b, temperature=0.7)
    assert isinstance(got, da.Array)
    assert_close(got.compute(), mp_segment_lse(a, ids, k, 1, b, 0.7), "float64")
    for log, func in [(False, lsearray.dask.segment_softmax),
                      (True, lsearray.dask.segment_log_softmax)]:
        got = func(x, i, axis=1, temperature=0.7)
        assert got.chunks == x.chunks
        assert_close(got.compute(), mp_segment_softmax(a, ids, 1, 0.7, log), "float64")


def test_dask_float32_stays_float32():
    da = pytest.importorskip("dask.array")
    import lsearray.dask

    x = da.from_array(np.arange(6, dtype=np.float32), chunks=2)
    got = lsearray.dask.segment_logsumexp(x, np.array([0, 1, 0, 1, 0, 1]))
    assert got.dtype == np.float32 and got.compute().dtype == np.float32


def test_dask_ids_range_checked_in_one_pass_over_them():
    """Building the graph reads lazy ids once for their least and greatest value (both
    bounds in one compute), and an id out of range fails there, naming the range."""
    da = pytest.importorskip("dask.array")
    import lsearray.dask

    reads = []

    def counted(block):
        reads.append(block.shape)
        return block

    x = da.from_array(np.arange(6.0), chunks=2)
    ids = da.from_array(np.array([0, 2, 0, 1, 0, 1]), chunks=3).map_blocks(counted)
    reads.clear()                                    # map_blocks' call for the meta
    lsearray.dask.segment_logsumexp(x, ids)
    assert len(reads) == 2                           # each of the two chunks once
    bad = da.from_array(np.array([0, 2, 0, -1, 0, 1]), chunks=3)
    with pytest.raises(ValueError, match=r"got ids from -1 to 2"):
        lsearray.dask.segment_logsumexp(x, bad)


ERRORS = [
    (dict(ids=[0.0, 1.0, 0.0]), TypeError, "segment_ids must be integers"),
    (dict(ids=[[0, 1, 0]]), ValueError, r"segment_ids must be 1-d of length a.shape\[axis\] = 3; got shape \(1, 3\)"),
    (dict(ids=[0, 1]), ValueError, r"length a.shape\[axis\] = 3; got shape \(2,\)"),
    (dict(ids=[0, -1, 0]), ValueError, r"must lie in \[0, num_segments\) = \[0, 1\); got ids from -1 to 0"),
    (dict(ids=[0, 2, 0], num_segments=2), ValueError, r"= \[0, 2\); got ids from 0 to 2"),
    (dict(num_segments=-1), ValueError, "num_segments must be a non-negative int; got -1"),
    (dict(num_segments=2.0), TypeError, "num_segments must be a non-negative int or None; got float"),
    (dict(num_segments=True), TypeError, "num_segments must be a non-negative int or None; got bool"),
    (dict(a=np.array([1j, 0, 0])), TypeError, "a must be real"),
    (dict(axis=1), ValueError, r"axis must be an axis of a, in \[-1, 1\); got 1"),
    (dict(axis=0.0), TypeError, "axis must be an integer"),
    (dict(a=np.float64(1.0), ids=[]), ValueError, "at least one axis"),
    (dict(temperature=0.0), ValueError, "temperature"),
    (dict(temperature=-1.0), ValueError, "temperature"),
    (dict(sorted=1), TypeError, "sorted must be a bool"),
    (dict(b=np.ones(2)), ValueError, r"b must broadcast to a's shape \(3,\)"),
    (dict(b=np.ones(3) * 1j), TypeError, "b must be real"),
]


@pytest.mark.parametrize("case, error, message", ERRORS)
@pytest.mark.parametrize("func", ["segment_logsumexp", "segment_softmax", "segment_log_softmax"])
def test_errors(xp, case, error, message, func):
    if "b" in case and func != "segment_logsumexp":
        pytest.skip("only segment_logsumexp takes weights")
    args = dict(a=np.array([0.0, 1.0, 2.0]), ids=[0, 1, 0], num_segments=None)
    args.update(case)
    a = args.pop("a")
    if a.dtype.kind == "c" and xp.name == "numpy-readonly":
        pytest.skip("the complex case is numpy's")
    ids = args.pop("ids")
    x = xp.make(a)
    i = xp.make(np.asarray(ids, dtype=np.int64 if not ids else None)) if ids else xp.make(
        np.zeros(0, dtype=np.int64))
    if "b" in args:
        args["b"] = xp.make(args["b"])
    with pytest.raises(error, match=f"^{func}: .*{message}"):
        getattr(lsearray, func)(x, i, args.pop("num_segments"), **args)
