"""OnlineLogSumExp: a stream of batches (random sizes, empty and all -inf ones, weights with signs,
temperature), merged in any tree and pickled mid-stream, equals the log-sum-exp of the concatenated
data computed by mpmath (within 2 ulp) or scipy; special values, dtypes, backends and errors."""

import itertools
import math
import pickle
import re
import warnings

import mpmath
import numpy as np
import pytest
import scipy.special

import lsearray
from lsearray import OnlineLogSumExp
from reference import MP_DPS, mp_logsumexp, slow_logmeanexp, slow_logsumexp, tolerances, ulp_error

inf, nan = np.inf, np.nan
ULPS = 2


def _stream(seed, rows=240, cols=3, scale=20.0):
    """Data (rows plus some all -inf rows, cols) and its cut into batches of random sizes, some
    empty, one all -inf; the batches concatenate to the data."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, cols)) * scale + rng.normal(size=cols) * scale
    data = np.insert(data, rng.integers(0, rows, 4), -inf, axis=0)  # all -inf rows ...
    data = np.concatenate([data[:50], np.full((3, cols), -inf), data[50:]])  # ... and an all -inf batch
    cuts = np.sort(np.concatenate([rng.integers(0, data.shape[0], 10), [50, 50, 53, 53]]))
    return data, np.split(data, cuts)


def _mp_columns(data, b=None, temperature=1.0):
    """mpmath's (value, sign, condition) of each column, from the finite elements."""
    out = []
    for j in range(data.shape[1]):
        keep = np.isfinite(data[:, j])
        out.append(mp_logsumexp(data[keep, j], None if b is None else b[keep, j], temperature))
    return out


def _assert_ulps(got, data, b=None, temperature=1.0, dtype=np.float64):
    got = np.asarray(got, dtype=np.float64)
    for j, (value, _, cond) in enumerate(_mp_columns(data, b, temperature)):
        err = ulp_error(got[j], value, dtype)
        assert err <= ULPS * max(1.0, float(cond)), f"column {j}: {err:.2f} ulp (condition {cond})"


# --------------------------------------------------------------------------------------------
# Accuracy of a stream against the concatenation
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 0.3, 7.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_stream_is_logsumexp_of_the_concatenation(seed, temperature):
    data, batches = _stream(seed)
    assert any(b.shape[0] == 0 for b in batches) and any(
        b.shape[0] and np.all(b == -inf) for b in batches)
    acc = OnlineLogSumExp(axis=0, temperature=temperature)
    for batch in batches:
        assert acc.update(batch) is acc
    assert acc.count == data.shape[0]
    out = acc.result()
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (3,)
    _assert_ulps(out, data, temperature=temperature)


def test_float32_batches_are_computed_in_float64():
    data, batches = _stream(2, scale=3.0)
    acc = OnlineLogSumExp(axis=0)
    for batch in batches:
        acc.update(batch.astype(np.float32))
    out = acc.result()
    assert out.dtype == np.float32
    # Within one float32 ulp of the exact log-sum-exp of the float32 values: one rounding at the end.
    data32 = data.astype(np.float32).astype(np.float64)
    for j, (value, _, _) in enumerate(_mp_columns(data32)):
        assert ulp_error(out[j], value, np.float32) <= 1.0


@pytest.mark.parametrize("seed", [3, 4])
def test_signed_weights(seed):
    data, batches = _stream(seed, scale=2.0)
    rng = np.random.default_rng(seed)
    b = rng.uniform(-0.4, 1.0, size=data.shape)
    b[rng.integers(0, data.shape[0], 10), 0] = 0.0
    acc = OnlineLogSumExp(axis=0, temperature=0.8)
    start = 0
    for batch in batches:
        acc.update(batch, b=b[start:start + batch.shape[0]])
        start += batch.shape[0]
    out, sign = acc.result(return_sign=True)
    expected = _mp_columns(data, b, 0.8)
    np.testing.assert_array_equal(sign, [s for _, s, _ in expected])
    _assert_ulps(out, data, b, 0.8)


def test_negative_total_is_nan_without_return_sign():
    acc = OnlineLogSumExp(axis=None).update([0.0, 1.0]).update([2.0, -inf], b=[-1.0, 5.0])
    assert np.isnan(acc.result())
    out, sign = acc.result(return_sign=True)
    expected, expected_sign = slow_logsumexp([0.0, 1.0, 2.0], b=[1.0, 1.0, -1.0], return_sign=True)
    assert sign == expected_sign == -1.0
    assert math.isclose(out, expected, rel_tol=1e-15)


def test_tiny_terms_are_not_lost():
    # logsumexp([0, -50]) is log1p(exp(-50)), not 0: the sum is carried without its maximal term.
    acc = OnlineLogSumExp(axis=None)
    for x in [0.0, -50.0, -60.0, -50.0]:
        acc.update(x)
    expected = mp_logsumexp(np.array([0.0, -50.0, -60.0, -50.0]))[0]
    assert ulp_error(acc.result(), expected, np.float64) <= 1.0


# --------------------------------------------------------------------------------------------
# Merging and pickling
# --------------------------------------------------------------------------------------------

def _accumulators(batches, groups, temperature):
    accs = [OnlineLogSumExp(axis=0, temperature=temperature) for _ in range(groups)]
    for k, batch in enumerate(batches):
        accs[k % groups].update(batch)
    return accs


def _merge_tree(accs, order, shape):
    """Merge the accumulators in ``order``: "chain" left to right, "pairs" as a balanced tree."""
    accs = [pickle.loads(pickle.dumps(accs[k])) for k in order]  # fresh copies: merge mutates
    if shape == "chain":
        root = accs[0]
        for acc in accs[1:]:
            root.merge(acc)
        return root
    while len(accs) > 1:
        accs = [accs[i].merge(accs[i + 1]) if i + 1 < len(accs) else accs[i] for i in range(0, len(accs), 2)]
    return accs[0]


@pytest.mark.parametrize("tree", ["chain", "pairs"])
def test_merge_trees_in_any_order(tree):
    data, batches = _stream(5)
    accs = _accumulators(batches, 4, 0.5) + [OnlineLogSumExp(axis=0, temperature=0.5)]  # one empty
    for order in itertools.islice(itertools.permutations(range(5)), 0, 120, 17):
        root = _merge_tree(accs, order, tree)
        assert root.count == data.shape[0]
        _assert_ulps(root.result(), data, temperature=0.5)


def test_merge_leaves_the_other_unchanged_and_into_an_empty_one():
    a = OnlineLogSumExp(axis=None).update([1.0, 2.0])
    b = OnlineLogSumExp(axis=None).update([3.0])
    before = b.result()
    empty = OnlineLogSumExp(axis=None)
    assert empty.merge(a) is empty and empty.result() == a.result()
    assert a.merge(b).result() == pytest.approx(scipy.special.logsumexp([1.0, 2.0, 3.0]), rel=1e-15)
    assert b.result() == before and b.count == 1 and a.count == 3
    empty.update([5.0])
    assert a.count == 3 and empty.count == 3  # no state shared
    assert a.result() == pytest.approx(scipy.special.logsumexp([1.0, 2.0, 3.0]), rel=1e-15)


def test_pickle_mid_stream():
    data, batches = _stream(6)
    acc = OnlineLogSumExp(axis=0, temperature=2.0)
    for batch in batches[:6]:
        acc.update(batch)
    copy = pickle.loads(pickle.dumps(acc))
    # the partial, the sum of the weights and the mean's expm1 sums (x, gaps, rest)
    arrays = [v for state, _ in copy._parts
              for v in (state.max, state.top_weight, state.rest, state.rest_err, state.count,
                        *state.mean_sums)]
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in arrays)
    assert repr(copy) == repr(acc)
    for batch in batches[6:]:
        acc.update(batch)
        copy.update(batch)
    np.testing.assert_array_equal(copy.result(), acc.result())
    _assert_ulps(copy.result(), data, temperature=2.0)


# --------------------------------------------------------------------------------------------
# Special values, means, shapes and dtypes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batches, b", [
    ([[0.0, 1.0], [inf, 2.0]], None),
    ([[0.0, 1.0], [nan, 2.0]], None),
    ([[0.0, 1.0], [nan, 2.0]], [[1.0, 1.0], [0.0, 1.0]]),
    ([[inf, 1.0], [inf]], [[1.0, 1.0], [-1.0]]),
    ([[-inf], [-inf, -inf]], None),
    ([[], [-inf]], None),
    ([[1.0, 2.0], [3.0]], [[1.0, -1.0], [0.0]]),
])
def test_special_values_as_scipy(batches, b):
    acc = OnlineLogSumExp(axis=0)
    for k, batch in enumerate(batches):
        acc.update(np.array(batch), b=None if b is None else np.array(b[k]))
    flat = np.concatenate([np.array(x, dtype=float) for x in batches])
    weights = None if b is None else np.concatenate([np.array(x, dtype=float) for x in b])
    out, sign = acc.result(return_sign=True)
    expected, expected_sign = slow_logsumexp(flat, b=weights, return_sign=True)
    np.testing.assert_allclose([out, sign], [expected, expected_sign], rtol=1e-15, atol=0)
    np.testing.assert_allclose(acc.result(), slow_logsumexp(flat, b=weights), rtol=1e-15, atol=0)


def test_nothing_seen():
    acc = OnlineLogSumExp()
    out, sign = acc.result(return_sign=True)
    assert isinstance(out, np.float64) and out == -inf and sign == 0.0
    assert np.isnan(acc.result(mean=True)) and acc.count == 0


@pytest.mark.parametrize("weighted", [False, True])
def test_mean(weighted):
    data, batches = _stream(7, scale=1.5)
    # Weights in eighths: their float64 sums are exact, so the divisor is.
    b = np.random.default_rng(7).integers(1, 16, size=data.shape) / 8.0 if weighted else None
    acc = OnlineLogSumExp(axis=0, temperature=0.9)
    start = 0
    for batch in batches:
        acc.update(batch, b=None if b is None else b[start:start + batch.shape[0]])
        start += batch.shape[0]
    out = acc.result(mean=True)
    weights = np.ones(data.shape) if b is None else b
    for j, (value, _, _) in enumerate(_mp_columns(data, weights, 0.9)):
        # -inf rows add to the count (and their weights to the weights' sum), not to the sum.
        with mpmath.workdps(MP_DPS):
            mean = value - mpmath.mpf(0.9) * mpmath.log(mpmath.fsum(weights[:, j].tolist()))
            error = float(abs(mpmath.mpf(float(out[j])) - mean))
        # The result is max + tau log(S / n), two terms that may cancel: the error is in ulps of the
        # larger term.
        assert error <= ULPS * np.spacing(max(abs(float(mean)), np.max(data[:, j])))
    np.testing.assert_allclose(out, slow_logmeanexp(data, axis=0, b=b, temperature=0.9), rtol=1e-14)


def test_mean_of_empty_and_zero_weights_is_nan():
    assert np.isnan(OnlineLogSumExp().update(np.zeros((0, 2))).result(mean=True)).all()
    acc = OnlineLogSumExp(axis=None).update([1.0, 2.0], b=[1.0, -1.0])
    assert np.isnan(acc.result(mean=True))


def test_axis_none_takes_batches_of_any_shape():
    rng = np.random.default_rng(8)
    batches = [rng.normal(size=s) for s in [(3, 4), (5,), (), (2, 0), (2, 2, 2)]]
    acc = OnlineLogSumExp(axis=None)
    for batch in batches:
        acc.update(batch)
    out = acc.result()
    assert isinstance(out, np.float64) and acc.count == 12 + 5 + 1 + 8
    flat = np.concatenate([x.ravel() for x in batches])
    assert ulp_error(out, mp_logsumexp(flat)[0], np.float64) <= ULPS


@pytest.mark.parametrize("axis", [1, -1])
def test_axis_of_3d_batches(axis):
    rng = np.random.default_rng(9)
    batches = [rng.normal(size=(2, n, 3) if axis == 1 else (2, 3, n)) * 5 for n in (4, 0, 1, 7)]
    acc = OnlineLogSumExp(axis=axis)
    for batch in batches:
        acc.update(batch)
    out = acc.result()
    expected = scipy.special.logsumexp(np.concatenate(batches, axis=axis), axis=axis)
    assert out.shape == expected.shape and acc.count == 12
    np.testing.assert_allclose(out, expected, rtol=4e-16, atol=0)


def test_scalar_batches_along_axis_0():
    acc = OnlineLogSumExp()
    for x in [1.0, 2.0, [3.0, 4.0]]:
        acc.update(x)
    assert acc.result() == pytest.approx(scipy.special.logsumexp([1.0, 2.0, 3.0, 4.0]), rel=1e-15)


def test_result_dtype_promotes_over_batches():
    acc = OnlineLogSumExp(axis=None).update(np.ones(3, np.float16))
    assert acc.result().dtype == np.float16
    assert acc.update(np.ones(2, np.float32)).result().dtype == np.float32
    assert acc.update([1, 2]).result().dtype == np.float64
    assert OnlineLogSumExp(axis=None).update([True, False]).result().dtype == np.float64


def test_batches_are_not_written():
    batch = np.arange(6.0).reshape(3, 2)
    batch.flags.writeable = False
    OnlineLogSumExp().update(batch, b=np.ones(2)).update(batch[::-1])
    np.testing.assert_array_equal(batch, np.arange(6.0).reshape(3, 2))


def test_repr():
    acc = OnlineLogSumExp(axis=-1, temperature=0.5)
    assert repr(acc) == "<OnlineLogSumExp axis=-1 temperature=0.5 count=0>"
    acc.update(np.zeros((4, 3), np.float32))
    assert repr(acc) == ("<OnlineLogSumExp axis=-1 temperature=0.5 count=3 shape=(4,) dtype=float32 "
                         "library=numpy>")


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backends(xp, dtype):
    xp.subset(dtype == "float64")
    data, batches = _stream(10, rows=60, scale=5.0)
    if xp.name == "jax":  # eager jax compiles every operation for every new shape: fewer shapes
        batches = [np.full((2, 3), -inf), np.zeros((0, 3)), data[:20], data[20:40], data[40:]]
        data = np.concatenate(batches)
    b = np.random.default_rng(10).uniform(-0.2, 1.0, size=data.shape)
    acc = OnlineLogSumExp(axis=0, temperature=0.7)
    start = 0
    for k, batch in enumerate(batches):
        weights = b[start:start + batch.shape[0]]
        start += batch.shape[0]
        acc.update(xp.make(batch, dtype), b=xp.make(weights, dtype))
        if k == 3:
            acc = pickle.loads(pickle.dumps(acc))
    like = xp.make(data[:1, :], dtype)
    out, sign = acc.result(return_sign=True)
    xp.check(out, like, dtype, (3,))
    xp.check(sign, like, dtype, (3,), what="sign")
    data_d = data.astype(dtype).astype(np.float64)
    b_d = b.astype(dtype).astype(np.float64)
    expected, expected_sign = slow_logsumexp(data_d, axis=0, b=b_d, temperature=0.7, return_sign=True)
    np.testing.assert_allclose(xp.to_numpy(out), expected, **tolerances(dtype))
    np.testing.assert_array_equal(xp.to_numpy(sign), expected_sign)
    assert acc.count == data.shape[0]


def test_backends_axis_none_and_mean(xp):
    xp.subset(True, jax_keep=False)
    batches = [np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([4.0]), np.array([])]
    acc = OnlineLogSumExp(axis=None)
    for batch in batches:
        acc.update(xp.make(batch))
    like = xp.make(batches[0])
    flat = np.concatenate([x.ravel() for x in batches])
    xp.check(acc.result(), like, "float64", (), scalar=True)
    np.testing.assert_allclose(xp.to_numpy(acc.result()), scipy.special.logsumexp(flat), rtol=1e-14)
    xp.check(acc.result(mean=True), like, "float64", (), scalar=True)
    np.testing.assert_allclose(xp.to_numpy(acc.result(mean=True)),
                               scipy.special.logsumexp(flat) - math.log(flat.size), rtol=1e-14)


def test_backends_merge(xp):
    xp.subset(True, jax_keep=False)
    data, batches = _stream(11, rows=40)
    accs = [OnlineLogSumExp(axis=0), OnlineLogSumExp(axis=0)]
    for k, batch in enumerate(batches):
        accs[k % 2].update(xp.make(batch))
    out = accs[1].merge(accs[0]).result()
    xp.check(out, xp.make(data), "float64", (3,))
    np.testing.assert_allclose(xp.to_numpy(out), scipy.special.logsumexp(data, axis=0), rtol=1e-14)


# (a, b, value, sign): terms that exact arithmetic makes infinite or nan, as
# scipy.special.logsumexp gives them.
INFINITE_TERMS = [
    pytest.param([inf, inf], [2.0, -1.0], nan, nan, id="inf-times-2-minus-inf"),
    pytest.param([-inf], [inf], nan, nan, id="inf-weight-on-neginf"),
    pytest.param([600.0, -200.0], [1.0, inf], inf, 1.0, id="inf-weight-on-a-term-that-underflows"),
    pytest.param([0.0, 5.0], [-inf, 1.0], inf, -1.0, id="minus-inf-weight"),
    pytest.param([inf, -inf], [1.0, inf], nan, nan, id="inf-and-inf-weight-on-neginf"),
    pytest.param([1.0, 2.0, inf], [1.0, 1.0, 1.0], inf, 1.0, id="inf"),
    pytest.param([1.0, inf, 2.0], [1.0, -1.0, inf], nan, nan, id="inf-minus-inf-weight"),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("a, b, value, sign", INFINITE_TERMS)
def test_backends_infinite_terms_survive_merges(xp, a, b, value, sign):
    """The stream's partials carry terms that are infinite in exact arithmetic (and nan ones)
    through merges: one batch per element gives what one batch of all gives, scipy's values,
    with no warning, even where a lazy library computes them later (outside any errstate)."""
    xp.subset(True, jax_keep=len(a) == 3)
    whole = OnlineLogSumExp(axis=None).update(xp.make(np.array(a)), b=xp.make(np.array(b)))
    merged = OnlineLogSumExp(axis=None)
    for x, w in zip(a, b):
        merged.update(xp.make(np.array([x])), b=xp.make(np.array([w])))
    for acc in (whole, merged):
        out, sgn = acc.result(return_sign=True)
        np.testing.assert_array_equal([xp.to_numpy(out), xp.to_numpy(sgn)], [value, sign])


@pytest.mark.parametrize("tau", [1e38, 1e39, 1e-39, 1e-300])
def test_backends_temperature_outside_float32(xp, tau):
    """float32 batches at a temperature (or its inverse: 1e-38 is subnormal) beyond float32's
    range: mpmath's value of the concatenation rounded to float32 (inf where it overflows),
    never nan."""
    xp.subset(tau in (1e39, 1e-300), jax_keep=tau == 1e-300)
    batches = [np.array([0.5, 0.25]), np.array([-1.0]), np.array([2.0, 2.0])]
    acc = OnlineLogSumExp(axis=None, temperature=tau)
    for batch in batches:
        acc.update(xp.make(batch, "float32"))
    with np.errstate(over="ignore"):
        expected = np.float32(float(mp_logsumexp(np.concatenate(batches), None, tau)[0]))
    out, sign = acc.result(return_sign=True)
    np.testing.assert_allclose(xp.to_numpy(out), expected, **tolerances("float32"))
    assert xp.to_numpy(sign) == 1.0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

def test_batch_shape_mismatch():
    acc = OnlineLogSumExp(axis=0).update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=re.escape(
            "batches must agree in their shape without axis 0: expected (3,), got a batch of shape "
            "(2, 4) with (4,)")):
        acc.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=re.escape("expected (3,), got a batch of shape (3,) with ()")):
        acc.update(np.zeros(3))
    assert acc.count == 2


def test_batches_of_another_library():
    torch = pytest.importorskip("torch")
    acc = OnlineLogSumExp(axis=0).update(np.zeros(3))
    with pytest.raises(TypeError, match="accumulator holds numpy arrays; got a batch of shape .* of torch"):
        acc.update(torch.zeros(3))
    other = OnlineLogSumExp(axis=0).update(torch.zeros(3))
    with pytest.raises(TypeError, match="holds numpy arrays; got an accumulator of shape \\(\\) of torch"):
        acc.merge(other)
    with pytest.raises(TypeError, match="arrays of one library"):
        acc.update(np.zeros(3), b=torch.ones(3))


@pytest.mark.parametrize("other, message", [
    (OnlineLogSumExp(axis=1), r"same axis and temperature; this one has axis=0, temperature=1.0, the other "
                              r"axis=1, temperature=1.0"),
    (OnlineLogSumExp(axis=0, temperature=2.0), r"the other axis=0, temperature=2.0"),
    (OnlineLogSumExp(axis=0).update(np.zeros((1, 4))),
     r"expected \(3,\), got an accumulator of shape \(4,\)"),
])
def test_merge_mismatch(other, message):
    acc = OnlineLogSumExp(axis=0).update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=message):
        acc.merge(other)


def test_bad_arguments():
    with pytest.raises(TypeError, match="expects an OnlineLogSumExp; got list"):
        OnlineLogSumExp().merge([1.0])
    with pytest.raises(ValueError, match=r"temperature must be positive, finite and at least .*; got 0.0"):
        OnlineLogSumExp(temperature=0)
    with pytest.raises(TypeError, match="axis must be an integer or None; got tuple"):
        OnlineLogSumExp(axis=(0, 1))
    with pytest.raises(TypeError, match="complex input is not supported"):
        OnlineLogSumExp().update(np.ones(2, complex))
    message = "b with shape (4,) and a with shape (3,) do not broadcast together"
    with pytest.raises(ValueError, match=re.escape(message)):
        OnlineLogSumExp().update(np.ones(3), b=np.ones(4))
    with pytest.raises(np.exceptions.AxisError):
        OnlineLogSumExp(axis=2).update(np.ones((2, 2)))


def test_lazy_batches_with_infinite_maxima_compute_without_warnings():
    """A lazy (dask) stream with an all -inf column and a +inf entry: its merges and
    partials never compute inf - inf, which would warn when dask computes the graph,
    outside any errstate; the values are scipy's."""
    da = pytest.importorskip("dask.array")
    data = np.array([[0.0, -inf, 1.0], [1.0, -inf, inf], [2.0, -inf, -3.0], [-1.0, -inf, 0.5]])
    acc = OnlineLogSumExp(axis=0)
    for batch in (data[:2], data[2:3], data[3:]):
        acc.update(da.from_array(batch, chunks=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = np.asarray(acc.result().compute())
    np.testing.assert_allclose(out, scipy.special.logsumexp(data, axis=0), rtol=1e-15, atol=0)


@pytest.mark.parametrize("tau", [1e6, 1e39, 3.4e38, 1e300])
def test_backends_mean_far_above_the_spread(xp, tau):
    """At a temperature far above the data's spread every term rounds to 1 and log(mean)
    would be the max: the merged expm1 sums give the weighted arithmetic mean of the
    data, as tau -> inf (mpmath's value, rounded)."""
    xp.subset(tau == 1e39)
    batches = [np.array([709.78271484375, 704.975830078125]), np.array([1.0, -1.5]),
               np.array([3.0])]
    acc = OnlineLogSumExp(axis=None, temperature=tau)
    for batch in batches:
        acc.update(xp.make(batch, "float32"))
    data = np.concatenate(batches)
    with mpmath.workdps(MP_DPS + int(math.log10(tau))):  # the terms differ from 1 by 1/tau
        t = mpmath.mpf(tau)
        exact = t * mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) / t) for v in data)
                               / len(data))
    np.testing.assert_allclose(xp.to_numpy(acc.result(mean=True)), np.float32(float(exact)),
                               **tolerances("float32"))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_weights_whose_sum_overflows(xp):
    """Weights near the float64 maximum: their sums are kept in units of a power of two,
    so the log-sum-exp (log(2 * 1.7e308)) and the mean are finite on every backend."""
    xp.subset(True)
    acc = OnlineLogSumExp(axis=None)
    for _ in range(2):
        acc.update(xp.make(np.array([0.0, -1.0]), "float64"),
                   b=xp.make(np.array([1.7e308, 1.7e308]), "float64"))
    with mpmath.workdps(MP_DPS):
        total = 2 * mpmath.mpf(1.7e308) * (1 + mpmath.exp(-1))
        want_sum, want_mean = float(mpmath.log(total)), float(mpmath.log(total / (4 * mpmath.mpf(1.7e308))))
    np.testing.assert_allclose(xp.to_numpy(acc.result()), want_sum, rtol=1e-15)
    np.testing.assert_allclose(xp.to_numpy(acc.result(mean=True)), want_mean, rtol=1e-15)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_batches_whose_weights_overflow_only_together(xp):
    """Each batch's weights sum below the float64 maximum, all four above it: the merges
    keep the weight sums in larger units, so the mean is the closed form's on every backend."""
    xp.subset(True)
    acc = OnlineLogSumExp(axis=None)
    for k in range(4):
        acc.update(xp.make(np.array([float(k)]), "float64"), b=xp.make(np.array([1e308]), "float64"))
    with mpmath.workdps(MP_DPS):
        terms = sum(mpmath.exp(k) for k in range(4))
        want_sum = float(mpmath.log(mpmath.mpf(1e308) * terms))
        want_mean = float(mpmath.log(terms / 4))
    np.testing.assert_allclose(xp.to_numpy(acc.result()), want_sum, rtol=1e-15)
    np.testing.assert_allclose(xp.to_numpy(acc.result(mean=True)), want_mean, rtol=1e-15)


def test_mean_whose_weights_overflow_only_together(xp):
    """Weights whose sums over the batches overflow while the log-sum-exp's sums do not (the
    heavy weights sit on small terms): the merges redo the weight sums in larger units, so
    the mean is the closed form's."""
    xp.subset(True)
    acc = OnlineLogSumExp(axis=None)
    for _ in range(30):
        acc.update(xp.make(np.array([0.0, -50.0]), "float64"), b=xp.make(np.array([1.0, 1e308]), "float64"))
    with mpmath.workdps(MP_DPS):
        big = mpmath.mpf(1e308)
        want = float(mpmath.log((1 + big * mpmath.exp(-50)) / (1 + big)))
    np.testing.assert_allclose(xp.to_numpy(acc.result(mean=True)), want, rtol=1e-15)


def test_mean_whose_divisor_is_beyond_the_sum_by_2_to_the_1000():
    """S / W below the smallest float64 (a weight of 2e-294 on the max, 2.8e171 in all, at
    tau = 2e-274): the finalizer divides scaled copies and adds the power of two's log."""
    a = np.array([0.0, -1e-323, -49.0, 10000.0])
    b = np.array([5.463492696000919e73, 2.834654044979709e171, 2.4750466948451287e-138, 2.00001e-294])
    acc = OnlineLogSumExp(axis=None, temperature=2e-274).update(a[:2], b=b[:2]).update(a[2:], b=b[2:])
    assert acc.result(mean=True) == 10000.0
    assert lsearray.logmeanexp(a, b=b, temperature=2e-274) == 10000.0


def test_mean_whose_weights_sum_beyond_float64_over_many_merges():
    """Twenty batches whose weights (1e308 each) sum beyond float64: the merges redo their
    sums in larger units, so the mean is log((20 + 20e308 e^-1000) / 20e308) = -709.196.
    (Other libraries' merges redo only the partials' sums: docs/user_guide/limits.md.)"""
    acc = OnlineLogSumExp(axis=None)
    for _ in range(20):
        acc.update(np.array([0.0, -1000.0]), b=np.array([1.0, 1e308]))
    with mpmath.workdps(MP_DPS):
        w = mpmath.mpf(1e308)
        want = float(mpmath.log((20 + 20 * w * mpmath.exp(-1000)) / (20 + 20 * w)))
    np.testing.assert_allclose(acc.result(mean=True), want, rtol=1e-15)


def test_mean_of_batches_whose_own_weight_sum_overflows():
    """A batch whose weights add up beyond the float maximum (a compensated sum that
    overflows comes out nan, not inf) is summed in larger units: the weighted mean of equal
    terms is exactly their value, 0."""
    a = np.zeros(33, dtype=np.float32)
    b = np.full(33, 1e300)
    b[31] = np.finfo(np.float64).max
    acc = lsearray.OnlineLogSumExp(axis=0)
    acc.update(a[:2], b=b[:2])
    acc.update(a[2:], b=b[2:])
    assert acc.result(mean=True) == 0.0


def test_many_dask_batches_merge_in_a_balanced_tree():
    """Two hundred dask batches: the graph grows by a few layers a batch (the merges form a
    balanced tree, not a chain as deep as the stream, which would overflow Python's
    recursion in dask's blockwise fusion), and the result is the NumPy stream's."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(7)
    batches = [rng.normal(size=(int(rng.integers(1, 9)), 3)) * 30.0 for _ in range(200)]
    lazy, eager = OnlineLogSumExp(axis=0), OnlineLogSumExp(axis=0)
    for batch in batches:
        lazy.update(da.from_array(batch, chunks=(3, 3)))
        eager.update(batch)
    assert [n for _, n in lazy._parts] == [128, 64, 8]  # a partial for each set bit of 200
    result = lazy.result()
    assert len(result.dask.layers) < 40 * len(batches)
    np.testing.assert_array_equal(result.compute(), eager.result())
    _assert_ulps(result.compute(), np.concatenate(batches))


def test_merged_accumulators_keep_a_logarithmic_stack():
    """Merging accumulators of any sizes keeps each partial at least twice the one above it."""
    rng = np.random.default_rng(11)
    total, data = OnlineLogSumExp(axis=None), []
    for size in range(1, 30):
        part = OnlineLogSumExp(axis=None)
        for _ in range(size):
            batch = rng.normal(size=3)
            part.update(batch)
            data.append(batch)
        total.merge(part)
    sizes = [n for _, n in total._parts]
    assert sum(sizes) == 435 and all(lower >= 2 * upper for lower, upper in zip(sizes, sizes[1:]))
    _assert_ulps(np.atleast_1d(total.result()), np.concatenate(data)[:, None])


@pytest.mark.parametrize("weights", ["scalar", "numpy", "1-d", "other chunks"])
def test_dask_batches_with_weights_chunked_unlike_them(weights):
    """Weights broadcast against a batch, or chunked otherwise, meet its blocks one to one."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(12)
    a = rng.normal(size=(6, 4)) * 10
    b = {"scalar": 2.0, "numpy": rng.uniform(0.5, 2, size=(6, 4)), "1-d": rng.uniform(0.5, 2, size=4),
         "other chunks": da.from_array(rng.uniform(0.5, 2, size=(6, 4)), chunks=(4, 1))}[weights]
    acc = OnlineLogSumExp(axis=0).update(da.from_array(a, chunks=(2, 2)), b=b)
    dense = b.compute() if hasattr(b, "compute") else b
    np.testing.assert_array_equal(acc.result().compute(), OnlineLogSumExp(axis=0).update(a, b=dense).result())
    _assert_ulps(acc.result().compute(), a, b=np.broadcast_to(dense, a.shape))


def test_dask_batches_chunked_differently_and_reduced_over_three_axes():
    """Batches whose kept axis is chunked differently merge; a batch reduced over three
    chunked axes merges its blocks' partials however deep dask nests them."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(13)
    one, two = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    acc = OnlineLogSumExp(axis=0).update(da.from_array(one, chunks=(2, 2))).update(
        da.from_array(two, chunks=(3, (1, 4))))
    _assert_ulps(acc.result().compute(), np.concatenate([one, two]))
    cube = rng.normal(size=(4, 4, 4)) * 5
    got = OnlineLogSumExp(axis=None).update(da.from_array(cube, chunks=2)).result()
    np.testing.assert_array_equal(got.compute(), OnlineLogSumExp(axis=None).update(cube).result())
