"""lsearray.logcumsumexp against logaddexp.accumulate in long double, mpmath and prefix softmaxes."""

import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import lsearray
from awkward_arrays import awkward_inputs, seed_for
from backends import assert_values, make_backend
from reference import mp_logcumsumexp, prefix_softmax_jacobian, slow_logcumsumexp

__all__ = []

inf, nan = math.inf, math.nan


def ulps(got, exact, dtype=np.float64):
    """|got - exact| in units of the spacing of exact rounded to dtype, elementwise."""
    errs = []
    for g, e in zip(np.asarray(got, dtype=np.float64).tolist(), exact):
        spacing = float(np.spacing(np.abs(np.dtype(dtype).type(float(e)))))
        errs.append(float(abs(mpmath.mpf(g) - e) / spacing))
    return np.array(errs)


def _normal(tag, shape, scale=3.0, loc=0.0):
    return np.random.default_rng(seed_for(tag)).normal(loc, scale, shape)


# ------------------------------------------------------------------------------------------------
# Every backend
# ------------------------------------------------------------------------------------------------

AXES = [0, 1, -1, None]


@pytest.mark.parametrize("axis", AXES, ids=[f"axis={a}" for a in AXES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_on_every_backend(xp, dtype, axis):
    xp.subset(dtype == "float64" and axis in (0, None), jax_keep=dtype == "float64" and axis == 1)
    a = _normal("backends", (4, 7))
    x = xp.make(a, dtype)
    out = lsearray.logcumsumexp(x, axis)
    xp.check(out, x, dtype, (28,) if axis is None else (4, 7))
    assert_values(xp.to_numpy(out), slow_logcumsumexp(a.astype(dtype), axis), dtype)
    assert_values(xp.to_numpy(x), a.astype(dtype), dtype, "input unchanged")


def test_temperature_on_every_backend(xp):
    xp.subset(True)
    a = _normal("tau", (3, 5))
    out = lsearray.logcumsumexp(xp.make(a), 1, temperature=0.25)
    assert_values(xp.to_numpy(out), slow_logcumsumexp(a, 1, 0.25), "float64")


# Rows of special values, and what the exact running sums give.
SPECIAL_ROWS = [
    ([-inf, -inf, 1.0, -inf, 2.0], [-inf, -inf, 1.0, 1.0, 2.0 + math.log1p(math.exp(-1.0))]),
    ([1.0, inf, 2.0, -inf, inf], [1.0, inf, inf, inf, inf]),
    ([1.0, nan, 3.0, inf, -inf], [1.0, nan, nan, nan, nan]),
    ([inf, nan, 1.0, 2.0, 3.0], [inf, nan, nan, nan, nan]),
    ([-inf, -inf, -inf, -inf, -inf], [-inf] * 5),
    ([0.0, -50.0, -inf, 0.0, 0.0], [0.0, math.log1p(math.exp(-50.0)), math.log1p(math.exp(-50.0)),
                                    math.log(2.0 + math.exp(-50.0)), math.log(3.0 + math.exp(-50.0))]),
]


def test_special_values_on_every_backend(xp):
    a = np.array([row for row, _ in SPECIAL_ROWS])
    expected = np.array([want for _, want in SPECIAL_ROWS])
    x = xp.make(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lsearray.logcumsumexp(x, axis=1)
        got = xp.to_numpy(out)
    xp.check(out, x, "float64", a.shape)
    assert_values(got, expected, "float64")
    assert_values(got, slow_logcumsumexp(a, 1), "float64")
    # the same rows as columns, scanned down axis 0
    assert_values(xp.to_numpy(lsearray.logcumsumexp(xp.make(a.T.copy()), axis=0)), expected.T, "float64")


def test_a_dominated_prefix_keeps_the_small_term(xp):
    out = xp.to_numpy(lsearray.logcumsumexp(xp.make(np.array([0.0, -50.0]))))
    assert out[0] == 0.0
    assert abs(out[1] - 1.9287498479639178e-22) <= 1e-14 * 1.9287498479639178e-22


@pytest.mark.parametrize("shape, axis, out_shape", [
    ((0,), None, (0,)), ((0,), 0, (0,)), ((3, 0), 1, (3, 0)), ((3, 0), 0, (3, 0)), ((0, 4), None, (0,)),
    ((), None, (1,)), ((), 0, (1,)), ((1,), 0, (1,)),
])
def test_empty_and_0d_shapes_follow_cumsum(xp, shape, axis, out_shape):
    xp.subset(shape in ((3, 0), ()))
    a = np.full(shape, 1.5)
    assert np.cumsum(a, axis=axis).shape == out_shape
    x = xp.make(a)
    out = lsearray.logcumsumexp(x, axis)
    xp.check(out, x, "float64", out_shape)
    assert_values(xp.to_numpy(out), np.full(out_shape, 1.5), "float64")


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_integers_and_bools_give_the_default_float(xp, dtype):
    xp.subset(dtype == "int32")
    a = np.array([[3, 0, 1], [1, 1, 0]]).astype(dtype)
    x = xp.make(a, dtype)
    out = lsearray.logcumsumexp(x, 0)
    xp.check(out, x, xp.default_float(x), (2, 3))
    assert_values(xp.to_numpy(out), slow_logcumsumexp(a, 0), xp.default_float(x))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_computes_in_float32(xp, dtype):
    a = _normal("half", (6,), scale=1.0)
    x = xp.make(a, dtype)
    out = lsearray.logcumsumexp(x)
    xp.check(out, x, dtype, (6,))
    assert_values(xp.to_numpy(out), slow_logcumsumexp(xp.to_numpy(x)), dtype)


# ------------------------------------------------------------------------------------------------
# reverse and exclusive (tf.math.cumulative_logsumexp), against the slow reference on data it
# reverses and shifts itself
# ------------------------------------------------------------------------------------------------

DIRECTIONS = [(False, False), (True, False), (False, True), (True, True)]
DIRECTION_IDS = ["inclusive", "reverse", "exclusive", "reverse-exclusive"]


@pytest.mark.parametrize("axis", [0, 1, None], ids=["axis=0", "axis=1", "axis=None"])
@pytest.mark.parametrize("reverse, exclusive", DIRECTIONS[1:], ids=DIRECTION_IDS[1:])
def test_directions_on_every_backend(xp, reverse, exclusive, axis):
    """The special rows (and columns) of a scan, at a temperature: -inf, +inf and nan act
    as they would in the inclusive scan of the reversed and shifted data."""
    xp.subset(axis == 1)
    a = np.array([row for row, _ in SPECIAL_ROWS])
    a = np.vstack([a, a[:, ::-1]])  # each row also reversed: both directions meet both orders
    x = xp.make(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = lsearray.logcumsumexp(x, axis, temperature=0.6, reverse=reverse, exclusive=exclusive)
        got = xp.to_numpy(out)
    xp.check(out, x, "float64", (a.size,) if axis is None else a.shape)
    assert_values(got, slow_logcumsumexp(a, axis, 0.6, reverse, exclusive), "float64")


def test_directions_follow_their_definitions():
    """out[i] is the log of the sum of exp(a[j]) over j <= i, j >= i, j < i or j > i."""
    a = np.log(np.array([1.0, 2.0, 4.0, 8.0]))
    sums = {(False, False): [1, 3, 7, 15], (True, False): [15, 14, 12, 8],
            (False, True): [0, 1, 3, 7], (True, True): [14, 12, 8, 0]}
    for (reverse, exclusive), want in sums.items():
        got = lsearray.logcumsumexp(a, reverse=reverse, exclusive=exclusive)
        np.testing.assert_allclose(np.exp(got), want, rtol=1e-15)


@pytest.mark.parametrize("shape, axis", [((), None), ((), 0), ((1,), 0), ((0,), 0), ((3, 0), 1),
                                         ((0, 4), 0), ((2, 3), 0)])
@pytest.mark.parametrize("reverse, exclusive", DIRECTIONS[1:], ids=DIRECTION_IDS[1:])
def test_directions_on_empty_0d_and_short_axes(xp, shape, axis, reverse, exclusive):
    """0-d input is one element: exclusive gives [-inf]; an empty axis gives an empty result."""
    xp.subset(shape in ((), (3, 0)))
    a = np.full(shape, 1.5)
    x = xp.make(a)
    out = lsearray.logcumsumexp(x, axis, reverse=reverse, exclusive=exclusive)
    want = slow_logcumsumexp(a, axis, 1.0, reverse, exclusive)
    xp.check(out, x, "float64", want.shape)
    assert_values(xp.to_numpy(out), want, "float64")
    if shape == ():
        assert xp.to_numpy(out).tolist() == [-inf if exclusive else 1.5]


def test_reverse_reads_a_negative_stride_view_in_place(monkeypatch):
    """The kernel scans the flipped view of the input: no copy before it."""
    import lsecore

    seen = []
    kernel = lsecore.logcumsumexp

    def counted(a, axis, tau):
        seen.append(a)
        return kernel(a, axis, tau)

    monkeypatch.setattr(lsecore, "logcumsumexp", counted)
    a = _normal("reverse-view", (5, 6))
    for axis in (0, 1, None):
        seen.clear()
        got = lsearray.logcumsumexp(a, axis, reverse=True)
        assert len(seen) == 1 and np.shares_memory(seen[0], a) and min(seen[0].strides) < 0
        assert_values(got, slow_logcumsumexp(a, axis, 1.0, True), "float64")


@pytest.mark.parametrize("name", ["reverse", "exclusive"])
@pytest.mark.parametrize("value", [1, "yes", None, np.array(True)], ids=repr)
def test_directions_must_be_bools(xp, name, value):
    xp.subset(value is None)
    with pytest.raises(TypeError, match=f"logcumsumexp: {name} must be a bool; got"):
        lsearray.logcumsumexp(xp.make(np.ones(3)), **{name: value})


def test_numpy_bools_are_bools():
    a = np.log([1.0, 2.0])
    assert_values(lsearray.logcumsumexp(a, reverse=np.True_, exclusive=np.False_), np.log([3.0, 2.0]),
                  "float64")


# ------------------------------------------------------------------------------------------------
# Accuracy of the NumPy kernel against mpmath
# ------------------------------------------------------------------------------------------------

def _sorted(tag, n, scale):
    return np.sort(_normal(tag, n, scale))


ACCURACY_CASES = {
    "normal": lambda: _normal("acc-n", 600),
    "normal-wide": lambda: _normal("acc-w", 600, scale=30.0),
    "ascending-every-step-a-new-max": lambda: _sorted("acc-asc", 600, 0.01),
    "ascending-wide": lambda: _sorted("acc-asc-w", 600, 10.0),
    "descending": lambda: _sorted("acc-desc", 600, 3.0)[::-1].copy(),
    "dominant-first": lambda: np.r_[0.0, _normal("acc-dom", 400, 1.0, -40.0)],
    "dominant-last": lambda: np.r_[_normal("acc-dom2", 300, 1.0, -40.0), 0.0,
                                   _normal("acc-dom3", 100, 1.0, -40.0)],
    "ties": lambda: np.r_[np.full(20, 3.5), _normal("acc-ties", 100, 1.0), np.full(20, 3.5)],
    "offset-plus-700": lambda: _normal("acc-p700", 300, 1.0, 700.0),
    "offset-minus-700": lambda: _normal("acc-m700", 300, 1.0, -700.0),
    "offset-plus-1e4": lambda: _normal("acc-p1e4", 300, 1.0, 1e4),
    "near-underflow": lambda: -745.0 + np.random.default_rng(seed_for("acc-uf")).uniform(0.0, 20.0, 300),
    "results-near-zero": lambda: _normal("acc-zero", 600, 0.5, -1.0),
    # a log-CDF: its last prefixes cancel to near 0, where the accurate tier takes over
    "log-probabilities": lambda: np.log(np.random.default_rng(seed_for("acc-lp")).dirichlet(np.ones(20_000))),
}


@pytest.mark.parametrize("case", list(ACCURACY_CASES))
def test_ulp_error_of_every_prefix(case):
    a = ACCURACY_CASES[case]()
    errs = ulps(lsearray.logcumsumexp(a), mp_logcumsumexp(a))
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, f"{case}: {errs[worst]:.3f} ulp at prefix {worst}"


@pytest.mark.parametrize("temperature", [0.5, 3.0, 0.01, 100.0])
@pytest.mark.parametrize("case", ["normal", "dominant-first", "ascending-wide", "results-near-zero"])
def test_ulp_error_at_other_temperatures(case, temperature):
    a = ACCURACY_CASES[case]()[:200]
    errs = ulps(lsearray.logcumsumexp(a, temperature=temperature), mp_logcumsumexp(a, temperature))
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, f"{case}: {errs[worst]:.3f} ulp at prefix {worst}"


@pytest.mark.parametrize("layout", ["rows-C", "rows-F", "columns-C", "columns-strided", "many-short-rows"])
def test_ulp_error_along_an_axis(layout):
    """The row and column loops, and short rows scanned as columns, are equally accurate."""
    data = np.stack([ACCURACY_CASES[c]()[:120] for c in ("normal", "dominant-first", "ascending-wide",
                                                          "results-near-zero")])
    if layout == "many-short-rows":
        data = data[:, :20]
    exact = [mp_logcumsumexp(row) for row in data]
    if layout in ("rows-C", "many-short-rows"):
        got = lsearray.logcumsumexp(data, axis=1)
    elif layout == "rows-F":
        got = lsearray.logcumsumexp(np.asfortranarray(data), axis=1)
    elif layout == "columns-C":
        got = lsearray.logcumsumexp(np.ascontiguousarray(data.T), axis=0).T
    else:
        big = np.zeros((2 * data.shape[1], 12))
        big[::2, ::3] = data.T
        got = lsearray.logcumsumexp(big[::2, ::3], axis=0).T
    for row, (g, e) in enumerate(zip(got, exact)):
        errs = ulps(g, e)
        assert errs.max() <= 1.0, f"row {row}: {errs.max():.3f} ulp at prefix {int(np.argmax(errs))}"


@pytest.mark.parametrize("temperature", [1.0, 0.37])
def test_ulp_error_of_a_long_lane(temperature):
    """Lanes long enough to be cut into blocks scanned from carries (65,536 elements and up):
    ordinary data, a new max every step, terms far below the running max; and a dominant
    first element whose prefixes stay within 1e-12 of it, which needs the carries' sums far
    more exact than an ulp (at the unit temperature only: at others the 60-digit reference
    itself keeps too few of the prefixes' 1e-47)."""
    mixed = np.r_[_normal("acc-long", 40_000, 10.0), _sorted("acc-long-asc", 20_000, 0.01) + 30.0,
                  _normal("acc-long-low", 10_000, 1.0, -20.0)]
    dominated = np.r_[0.0, _normal("acc-long-dom", 69_999, 1.0, -40.0)]
    lanes = [("mixed", mixed)] + ([("dominated", dominated)] if temperature == 1.0 else [])
    for name, a in lanes:
        errs = ulps(lsearray.logcumsumexp(a, temperature=temperature), mp_logcumsumexp(a, temperature))
        worst = int(np.argmax(errs))
        assert errs[worst] <= 1.0, f"{name}: {errs[worst]:.3f} ulp at prefix {worst}"


def test_ulp_error_of_a_long_masked_lane_crossing_zero():
    """A long lane whose first block the mask leaves out entirely, then log-probabilities
    shifted by 0.3: its prefixes cross 0 (where the carries must be exact) and end at 0.3."""
    rng = np.random.default_rng(seed_for("acc-long-mask"))
    n = 70_000
    a = np.r_[rng.normal(0.0, 1.0, n // 2), np.log(rng.dirichlet(np.ones(n - n // 2))) + 0.3]
    keep = np.arange(n) >= n // 2
    got = lsearray.logcumsumexp(a, where=keep)
    assert np.all(got[: n // 2] == -np.inf)
    errs = ulps(got[n // 2:], mp_logcumsumexp(a[n // 2:]))
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, f"{errs[worst]:.3f} ulp at prefix {n // 2 + worst}"


def test_float32_rounds_once():
    a = _normal("acc-f32", 400).astype(np.float32)
    got = lsearray.logcumsumexp(a)
    assert got.dtype == np.float32
    assert ulps(got, mp_logcumsumexp(a), np.float32).max() <= 0.5 + 1e-6


# ------------------------------------------------------------------------------------------------
# Memory layouts, conversions and threads (the NumPy kernel)
# ------------------------------------------------------------------------------------------------

AWKWARD = awkward_inputs()


@pytest.mark.parametrize("case", AWKWARD, ids=[c.id for c in AWKWARD])
def test_every_layout_and_axis(case, tmp_path):
    """Strided, negative-stride, Fortran-ordered, transposed, byte-swapped, read-only, memmapped,
    empty, 0-d and size-1 inputs, along every axis and flattened: the values of the slow
    reference, the dtype of the rules, and the input untouched."""
    a = case.make(tmp_path)
    before = np.array(a, copy=True)
    dtype = a.dtype.newbyteorder("=") if a.dtype.kind == "f" else np.dtype(np.float64)
    for axis in [None, *range(max(a.ndim, 1)), -1]:
        out = lsearray.logcumsumexp(a, axis)
        want = slow_logcumsumexp(a, axis)
        assert type(out) is np.ndarray and out.dtype == dtype and out.shape == want.shape, axis
        assert_values(out, want, dtype.name, f"axis={axis}")
    np.testing.assert_array_equal(a, before)


def _big(shape, order, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 4.0
    x.flat[rng.integers(0, x.size, 7)] = 30.0
    return np.asarray(x, order=order)


# Each lands on one of the kernel's schedules: one long lane, rows shared out, tiles of columns
# shared out, short rows scanned as columns, and an F-ordered input flattened into the result.
THREAD_CASES = [
    ((200_000,), "C", 0),
    ((300, 1000), "C", 1),
    ((1000, 300), "C", 0),
    ((300, 1000), "F", 1),
    ((50_000, 5), "C", 1),
    ((300, 400), "F", None),
]


@pytest.mark.parametrize("shape, order, axis", THREAD_CASES, ids=[f"{s}-{o}-{a}" for s, o, a in THREAD_CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_give_the_same_answer(shape, order, axis, dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    a = _big(shape, order, 3).astype(dtype, order="K")
    got = lsearray.logcumsumexp(a, axis)
    with threadpoolctl.threadpool_limits(1):
        one = lsearray.logcumsumexp(a, axis)
    np.testing.assert_array_equal(got, one)
    assert_values(got, slow_logcumsumexp(a, axis), np.dtype(dtype).name)


def test_result_follows_the_input_memory_order():
    a = np.asfortranarray(_normal("order", (5, 6)))
    assert lsearray.logcumsumexp(a, 0).flags.f_contiguous
    assert lsearray.logcumsumexp(a, 1).flags.f_contiguous


def test_strided_views_whose_axes_do_not_merge(monkeypatch):
    """Every other element on each of 12 axes: read in place, the scan took one kernel call
    per lane of 2 (2048 calls); a is copied into the result and scanned there, in one call,
    the result keeping a's memory order."""
    from lsecore import _layout

    calls = []
    kernel = _layout._kernel.scan

    def counted(a, out, tau):
        calls.append(a.shape)
        return kernel(a, out, tau)

    monkeypatch.setattr(_layout._kernel, "scan", counted)
    for dtype in (np.float64, np.float32):
        base = _normal("unmerged", (3,) * 12).astype(dtype)
        views = (base[(slice(0, 2),) * 12],
                 base[(slice(None, None, -2),) * 12].transpose(11, 0, *range(1, 11)))
        for a in views:
            for axis in (0, 5, 11):
                calls.clear()
                got = lsearray.logcumsumexp(a, axis)
                assert len(calls) == 1, (axis, calls[:4])
                assert_values(got, slow_logcumsumexp(a, axis), np.dtype(dtype).name, f"axis={axis}")
                order = sorted(range(12), key=lambda k: abs(a.strides[k]))
                assert sorted(range(12), key=lambda k: got.strides[k]) == order


@settings(max_examples=40, deadline=None)
@given(
    a=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.one_of(st.floats(-800.0, 800.0), st.sampled_from([-inf, inf, nan])),
    ),
    data=st.data(),
)
def test_matches_the_slow_reference(a, data):
    axis = data.draw(st.sampled_from([None, *range(a.ndim)]), label="axis")
    temperature = data.draw(st.sampled_from([1.0, 0.3, 7.0]), label="temperature")
    got = lsearray.logcumsumexp(a, axis, temperature=temperature)
    np.testing.assert_allclose(got, slow_logcumsumexp(a, axis, temperature), rtol=1e-13, atol=1e-300,
                               equal_nan=True)


# ------------------------------------------------------------------------------------------------
# dask: one scan per block, carries between blocks
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, None], ids=["axis=0", "axis=1", "axis=None"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse, exclusive", DIRECTIONS, ids=DIRECTION_IDS)
def test_dask_blocks_with_an_empty_block(axis, dtype, reverse, exclusive):
    da = make_backend("dask").lib
    a = _normal("dask", (12, 7)).astype(dtype)
    a[3, 2] = inf
    a[0, :] = -inf
    x = da.from_array(a, chunks=((3, 0, 4, 5), (2, 3, 0, 2)))
    out = lsearray.logcumsumexp(x, axis, temperature=0.8, reverse=reverse, exclusive=exclusive)
    assert isinstance(out, da.Array) and out.dtype == dtype
    assert out.shape == ((84,) if axis is None else (12, 7))
    got = out.compute(scheduler="synchronous")
    assert_values(got, slow_logcumsumexp(a, axis, 0.8, reverse, exclusive), dtype)


def test_dask_scans_each_block_once(monkeypatch):
    """One kernel scan per block; the carries merge with logaddexp, never by scanning again."""
    import lsecore

    da = make_backend("dask").lib
    calls = []
    kernel = lsecore.logcumsumexp

    def counted(a, axis, tau):
        calls.append(a.shape)
        return kernel(a, axis, tau)

    monkeypatch.setattr(lsecore, "logcumsumexp", counted)
    a = _normal("dask-graph", (9, 4))
    x = da.from_array(a, chunks=(3, 2))
    out = lsearray.logcumsumexp(x, 0)
    assert all(0 in shape for shape in calls)  # dask's meta inference only: nothing is scanned yet
    calls.clear()
    got = out.compute(scheduler="synchronous")
    assert sorted(calls) == [(3, 2)] * x.npartitions
    assert_values(got, slow_logcumsumexp(a, 0), "float64")


# ------------------------------------------------------------------------------------------------
# Gradients: d out[i] / d a[j] is the softmax of the prefix a[:i + 1] at j, 0 for j > i
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 0.4])
def test_torch_jacobian_is_the_prefix_softmax(temperature):
    torch = pytest.importorskip("torch")
    a = _normal("grad-torch", (9,))
    jac = torch.autograd.functional.jacobian(
        lambda x: lsearray.logcumsumexp(x, temperature=temperature), torch.tensor(a))
    assert_values(jac.numpy(), prefix_softmax_jacobian(a, temperature), "float64", "jacobian")


def test_torch_gradient_is_finite_with_infinities():
    torch = pytest.importorskip("torch")
    x = torch.tensor([-inf, -inf, 0.5, -inf, 2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(lsearray.logcumsumexp(x)[2:].sum(), x)
    want = prefix_softmax_jacobian(np.array([-50.0, -50.0, 0.5, -50.0, 2.0]))[2:].sum(axis=0)
    assert_values(g.numpy(), want, "float64", "gradient")


def test_jax_jacobian_is_the_prefix_softmax():
    jnp = make_backend("jax").lib
    import jax

    a = _normal("grad-jax", (5,))
    jac = jax.jacrev(lambda x: lsearray.logcumsumexp(x, temperature=0.7))(jnp.asarray(a))
    assert_values(np.asarray(jac), prefix_softmax_jacobian(a, 0.7), "float64", "jacobian")


def _directed_jacobian(a, reverse, exclusive, temperature):
    """The prefix softmaxes, of the reversed prefixes for reverse; exclusive: each row is the
    inclusive row before it in the scan's direction, and the first row scanned is 0."""
    jac = prefix_softmax_jacobian(a[::-1] if reverse else a, temperature)
    if exclusive:
        jac = np.vstack([np.zeros((1, a.size)), jac[:-1]])
    return jac[::-1, ::-1] if reverse else jac


def _without_the_empty_sums(out, axis, reverse, exclusive):
    """``out`` without the -inf slice of an exclusive scan, whose finite differences are nan
    (its gradient, 0, is checked against the jacobian)."""
    if not exclusive:
        return out
    n = out.shape[axis]
    index = (slice(None),) * axis + (slice(0, n - 1) if reverse else slice(1, n),)
    return out[index]


@pytest.mark.parametrize("reverse, exclusive", DIRECTIONS[1:], ids=DIRECTION_IDS[1:])
def test_torch_directions_on_the_kernel_gradcheck(monkeypatch, reverse, exclusive):
    """The kernel operator runs (flips and shifts around it), and its gradients check."""
    torch = pytest.importorskip("torch")
    from lsearray._executors import torch_ops

    calls = []
    kernel = torch_ops._NUMPY.logcumsumexp
    monkeypatch.setattr(torch_ops._NUMPY, "logcumsumexp", lambda *args: calls.append(1) or kernel(*args))
    a = _normal("grad-torch-dir", (6,))
    jac = torch.autograd.functional.jacobian(
        lambda t: lsearray.logcumsumexp(t, temperature=0.6, reverse=reverse, exclusive=exclusive),
        torch.tensor(a))
    assert calls
    assert_values(jac.numpy(), _directed_jacobian(a, reverse, exclusive, 0.6), "float64", "jacobian")
    x = torch.tensor(_normal("gradcheck-dir", (3, 4)), requires_grad=True)
    for axis in (0, None):
        def f(t, axis=axis):
            out = lsearray.logcumsumexp(t, axis, reverse=reverse, exclusive=exclusive)
            return _without_the_empty_sums(out, axis or 0, reverse, exclusive)

        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("reverse, exclusive", DIRECTIONS[1:], ids=DIRECTION_IDS[1:])
def test_jax_directions_jit_and_grad(reverse, exclusive):
    jnp = make_backend("jax").lib
    import jax
    from jax.test_util import check_grads

    a = _normal("grad-jax-dir", (5,))
    fn = jax.jit(lambda x: lsearray.logcumsumexp(x, temperature=0.7, reverse=reverse, exclusive=exclusive))
    assert_values(np.asarray(fn(jnp.asarray(a))), slow_logcumsumexp(a, None, 0.7, reverse, exclusive),
                  "float64")
    jac = jax.jacrev(fn)(jnp.asarray(a))
    assert_values(np.asarray(jac), _directed_jacobian(a, reverse, exclusive, 0.7), "float64", "jacobian")
    check_grads(lambda x: _without_the_empty_sums(fn(x), 0, reverse, exclusive), (jnp.asarray(a),),
                order=2, modes=["fwd", "rev"])


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict", "dask"])
def test_complex_input_raises_type_error_naming_the_dtype(backend):
    xp = make_backend(backend)
    with pytest.raises(TypeError, match="complex128"):
        lsearray.logcumsumexp(xp.make(np.array([1 + 1j, 2.0]), "complex128"))


@pytest.mark.parametrize("a", [np.array(["a", "b"]), np.array([1.0], dtype=object)], ids=["str", "object"])
def test_non_numeric_input_raises_type_error(a):
    with pytest.raises(TypeError, match="real numeric dtype"):
        lsearray.logcumsumexp(a)


@pytest.mark.parametrize("axis", [(0,), 1.0, "0"], ids=repr)
def test_axis_must_be_an_integer(xp, axis):
    xp.subset(True)
    with pytest.raises(TypeError, match="axis must be an integer or None; got"):
        lsearray.logcumsumexp(xp.make(np.ones((2, 3))), axis)


@pytest.mark.parametrize("shape, axis", [((2, 3), 2), ((2, 3), -3), ((), 1), ((4,), 1)])
def test_axis_out_of_range_raises_axis_error(xp, shape, axis):
    xp.subset(shape == (2, 3))
    with pytest.raises(AxisError):
        lsearray.logcumsumexp(xp.make(np.ones(shape)), axis)


@pytest.mark.parametrize("temperature", [0.0, -2.0, inf, nan])
def test_bad_temperature_raises_value_error(xp, temperature):
    xp.subset(temperature == 0.0)
    with pytest.raises(ValueError, match="logcumsumexp: temperature must be positive, finite and at least"):
        lsearray.logcumsumexp(xp.make(np.ones(3)), temperature=temperature)


def test_temperature_is_keyword_only():
    with pytest.raises(TypeError):
        lsearray.logcumsumexp(np.ones(3), 0, 0.5)

