"""The segment loops of lsecore (_lse_segment.h.src) against mpmath, segment by segment: every path, chunk and special value."""

import numpy as np
import pytest

import lsecore
import lsearray
from kernel_support import kernel_rng
from lsearray._executors import numpy_segment
from reference import mp_lse_slice, mp_softmax_slice, ulp_error

__all__ = []


def _worst_ulp(got, a, ids, num_segments, b=None, tau=1.0, dtype=np.float64):
    """The largest error in ulp of the segments' results ``got`` (non-finite ones must match
    exactly: an error of inf otherwise)."""
    worst = 0.0
    for k in range(num_segments):
        rows = np.flatnonzero(ids == k)
        exact = mp_lse_slice(a[rows], None if b is None else b[rows], tau).value
        worst = max(worst, ulp_error(got[k], exact, dtype))
    return worst


def _ids(rng, n, num_segments, order):
    ids = rng.integers(0, num_segments, n)
    return np.sort(ids) if order == "sorted" else ids


DATA = {
    "normal": lambda rng, n: rng.standard_normal(n) * 3,
    "offset": lambda rng, n: rng.standard_normal(n) * 2 + 4e5,      # far from the shift grid's 0
    "wide": lambda rng, n: rng.uniform(-4000, 4000, n),             # beyond the slack: rescales
    "rising": lambda rng, n: np.sort(rng.uniform(-3000, 3000, n)),  # every shift moves up
    "tiny": lambda rng, n: rng.standard_normal(n) - 700,            # terms below e^-600 of 0
}


@pytest.mark.parametrize("order", ["unsorted", "sorted"])
@pytest.mark.parametrize("data", sorted(DATA))
def test_segments_within_one_ulp(data, order):
    rng = kernel_rng(f"segment-{data}-{order}")
    n, num_segments = 3000, 37
    a = DATA[data](rng, n)
    ids = _ids(rng, n, num_segments, order)
    got = numpy_segment.logsumexp(a, ids, num_segments, 0, None, 1.0, order == "sorted")
    assert _worst_ulp(got, a, ids, num_segments) <= 1.0


@pytest.mark.parametrize("tau", [0.37, 3.0])
@pytest.mark.parametrize("order", ["unsorted", "sorted"])
def test_temperature(tau, order):
    rng = kernel_rng(f"segment-tau-{tau}-{order}")
    a = rng.standard_normal(2000) * 50
    ids = _ids(rng, 2000, 23, order)
    got = numpy_segment.logsumexp(a, ids, 23, 0, None, tau, order == "sorted")
    assert _worst_ulp(got, a, ids, 23, tau=tau) <= 1.0


@pytest.mark.parametrize("order", ["unsorted", "sorted"])
def test_weights(order):
    """Weights with zeros (elements left out, even +inf and nan ones), negatives whose
    segments' sums are negative (nan) and positive ones."""
    rng = kernel_rng(f"segment-weights-{order}")
    n, num_segments = 1500, 29
    a = rng.standard_normal(n) * 4
    b = rng.exponential(size=n) * (rng.random(n) < 0.85)
    b[rng.random(n) < 0.05] *= -1
    a[:3], b[:3] = [np.inf, np.nan, -np.inf], 0.0
    ids = _ids(rng, n, num_segments, order)
    b[ids % 7 == 3] = -np.abs(b[ids % 7 == 3])  # segments of negative sums
    got = numpy_segment.logsumexp(a, ids, num_segments, 0, b, 1.0, order == "sorted")
    exact = [mp_lse_slice(a[ids == k], b[ids == k]) for k in range(num_segments)]
    negative = np.array([e.sign < 0 for e in exact])
    assert negative.any() and not negative.all()
    assert np.isnan(got[negative]).all()
    assert max(ulp_error(got[k], exact[k].value, np.float64)
               for k in np.flatnonzero(~negative)) <= 1.0


@pytest.mark.parametrize("tau", [0.1, 3.0, 1e-3, 1e-20, 1e-300])
@pytest.mark.parametrize("columns", [1, 2])
def test_shift_grid_beyond_the_precision_of_x_over_tau(tau, columns):
    """Where |x| / tau exceeds 2^61, a multiple of the grid cannot be placed near x: the
    partial is shifted by x itself (elements, weighted columns and softmax alike)."""
    rng = kernel_rng(f"segment-huge-{tau}-{columns}")
    n, num_segments = 400, 150
    a = rng.standard_normal(n) * tau * 2.0 ** rng.uniform(50, 70, n)
    a[:100] = rng.standard_normal(100)               # ordinary data under a tiny temperature
    ids = rng.integers(0, num_segments, n)
    x = np.repeat(a[:, None], columns, axis=1)
    b = None if columns == 1 else np.ones_like(x)    # two columns: the weighted rows loop
    got = numpy_segment.logsumexp(x, ids, num_segments, 0, b, tau, False)
    for j in range(columns):
        assert _worst_ulp(got[:, j], a, ids, num_segments, tau=tau) <= 1.0
    soft = lsearray.segment_softmax(a, ids, num_segments, temperature=tau)
    for k in range(0, num_segments, 7):
        rows = np.flatnonzero(ids == k)
        exact = np.array([float(v) for v in mp_softmax_slice(a[rows], tau)])
        np.testing.assert_allclose(soft[rows], exact, rtol=1e-15, atol=0)


@pytest.mark.parametrize("order", ["unsorted", "sorted"])
def test_weighted_terms_overflowing_with_both_signs(order):
    """Weights of 1e200 and -1e200 on terms up to e^500 above the shift: the fast sums
    overflow to inf - inf, and the segment is recomputed, not left nan."""
    a = np.array([0.0, 500.0, 400.0, 1.0, 2.0])
    b = np.array([1.0, 1e200, -1e200, 1.0, 1.0])
    ids = np.array([0, 0, 0, 1, 1])
    for x, w in ((a, b), (np.stack([a, a], 1), np.stack([b, b], 1))):
        got = numpy_segment.logsumexp(x, ids, 2, 0, w, 1.0, order == "sorted").reshape(2, -1)
        for k in range(2):
            exact = mp_lse_slice(a[ids == k], b[ids == k]).value
            assert all(ulp_error(v, exact, np.float64) <= 1.0 for v in got[k])


@pytest.mark.parametrize("order", ["unsorted", "sorted"])
def test_special_values(order):
    a = np.array([1.0, -np.inf, np.inf, 2.0, np.nan, -np.inf, 3.0, 5.0, np.inf, np.inf, 0.0])
    ids = np.array([0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 7])
    if order == "sorted":
        assert np.all(np.diff(ids) >= 0)
    got = numpy_segment.logsumexp(a, ids, 9, 0, None, 1.0, order == "sorted")
    expected = [1.0, -np.inf, np.inf, np.nan, np.log(np.exp(3.0) + np.exp(5.0)), np.inf,
                -np.inf, 0.0, -np.inf]
    np.testing.assert_allclose(got, expected, rtol=2e-16)


def test_nan_then_finite_in_one_block():
    """A nan makes its segment nan whatever comes after it in the same block."""
    a = np.array([np.nan, 2.0, 1.0, 3.0] * 50)
    ids = np.array([0, 0, 1, 1] * 50)
    got = numpy_segment.logsumexp(a, ids, 2, 0, None, 1.0, False)
    assert np.isnan(got[0]) and got[1] == pytest.approx(np.log(50 * (np.e + np.e ** 3)), rel=1e-15)


def test_columns_and_outer_axes():
    """Segments along the middle of (3, n, 7) data, strided and float32 too."""
    rng = kernel_rng("segment-3d")
    a = rng.standard_normal((3, 400, 7)) * 6
    ids = rng.integers(0, 11, 400)
    for x, dtype in ((a, np.float64), (a[:, :, ::2], np.float64), (a.astype(np.float32), np.float32)):
        for sorted_ in (False, True):
            idx = np.sort(ids) if sorted_ else ids
            got = numpy_segment.logsumexp(x, idx, 12, 1, None, 1.0, sorted_)
            assert got.shape == (3, 12, x.shape[2]) and got.dtype == dtype
            for o in range(3):
                for j in range(x.shape[2]):
                    assert _worst_ulp(got[o, :, j], x[o, :, j].astype(np.float64), idx, 12,
                                      dtype=dtype) <= 1.0


def test_chunks_and_threads_do_not_change_bits():
    """A long column is split into chunks whose partials are merged: the bits are those of
    one thread, and within an ulp."""
    rng = kernel_rng("segment-chunks")
    n, num_segments = 200_000, 3
    a = rng.standard_normal(n) * 5
    ids = rng.integers(0, num_segments, n)
    runs = np.sort(ids)
    before = lsecore.max_threads()
    try:
        lsecore.set_max_threads(1)
        one = [numpy_segment.logsumexp(a, i, num_segments, 0, None, 1.0, s) for i, s in
               ((ids, False), (runs, True))]
        lsecore.set_max_threads(2)
        two = [numpy_segment.logsumexp(a, i, num_segments, 0, None, 1.0, s) for i, s in
               ((ids, False), (runs, True))]
    finally:
        lsecore.set_max_threads(before)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)
    exact = [np.float64(mp_lse_slice(a[ids == k]).value) for k in range(num_segments)]
    np.testing.assert_array_max_ulp(one[0], np.array(exact), maxulp=1)


def test_sorted_promise_broken_is_still_right():
    """``sorted`` with unsorted ids reduces each run and merges the runs of a segment."""
    rng = kernel_rng("segment-runs")
    a = rng.standard_normal(500)
    ids = rng.integers(0, 5, 500)
    got = numpy_segment.logsumexp(a, ids, 5, 0, None, 1.0, True)
    assert _worst_ulp(got, a, ids, 5) <= 1.0


def test_near_zero_results_are_recomputed():
    """Segments that are log-probabilities summing to 1: their log-sum-exps are near 0,
    where the fast sums cannot vouch for an ulp and the accurate tier takes over."""
    rng = kernel_rng("segment-near-zero")
    n, num_segments = 2000, 20
    ids = rng.integers(0, num_segments, n)
    a = np.empty(n)
    for k in range(num_segments):
        rows = ids == k
        a[rows] = np.log(rng.dirichlet(np.ones(rows.sum())))
    for sorted_ in (False, True):
        idx = np.sort(ids) if sorted_ else ids
        vals = a if not sorted_ else a[np.argsort(ids, kind="stable")]
        got = numpy_segment.logsumexp(vals, idx, num_segments, 0, None, 1.0, sorted_)
        for k in range(num_segments):
            exact = mp_lse_slice(vals[idx == k]).value
            # the accurate tier's documented bound where the max and the log cancel
            assert abs(float(got[k]) - float(exact)) <= max(
                np.spacing(abs(float(exact))), 2.0 ** -100 * abs(vals[idx == k].max()))


@pytest.mark.parametrize("log_mode", [False, True])
@pytest.mark.parametrize("order", ["unsorted", "sorted"])
@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_softmax_within_segments(log_mode, order, tau):
    """Within 2 ulp, as softmax and log_softmax on other layouts than one run of memory
    (docs/user_guide/limits.md): the term's exp (0.7 ulp), the quotient's and one rounding."""
    rng = kernel_rng(f"segment-softmax-{log_mode}-{order}-{tau}")
    n, num_segments = 800, 13
    a = rng.standard_normal(n) * 4
    a[rng.random(n) < 0.03] = -np.inf
    ids = _ids(rng, n, num_segments, order)
    got = numpy_segment.normalized(a, ids, num_segments, 0, tau, order == "sorted", log_mode)
    worst = 0.0
    for k in range(num_segments):
        rows = np.flatnonzero(ids == k)
        exact = mp_softmax_slice(a[rows], tau, log=log_mode)
        worst = max([worst] + [ulp_error(g, e, np.float64) for g, e in zip(got[rows], exact)])
    assert worst <= 2.0


def test_softmax_special_segments():
    """An all -inf segment is nan, as softmax's; a +inf one nan, and log_softmax's -inf beside
    the +inf; a nan one nan."""
    a = np.array([-np.inf, -np.inf, 1.0, np.inf, np.nan, 0.0, 2.0])
    ids = np.array([0, 0, 1, 1, 2, 2, 3])
    soft = numpy_segment.normalized(a, ids, 4, 0, 1.0, False, False)
    log = numpy_segment.normalized(a, ids, 4, 0, 1.0, False, True)
    np.testing.assert_array_equal(soft, [np.nan] * 6 + [1.0])
    np.testing.assert_array_equal(log, [np.nan, np.nan, -np.inf, np.nan, np.nan, np.nan, 0.0])


def test_softmax_outputs_below_the_shifts_reach():
    """A segment whose terms against its shift (0, the grid point nearest -63) underflow,
    though its outputs are normal float64: e^-700 and about 1 - e^-700, and e^-650 beside."""
    a = np.array([-63.0, -763.0, 10.0, -640.0])
    ids = np.array([0, 0, 1, 1])
    got = numpy_segment.normalized(a, ids, 2, 0, 1.0, False, False)
    assert got[1] > 0 and got[3] > 0
    for rows in ([0, 1], [2, 3]):
        exact = mp_softmax_slice(a[rows])
        assert max(ulp_error(g, e, np.float64) for g, e in zip(got[rows], exact)) <= 2.0


@pytest.mark.parametrize("order", ["unsorted", "sorted"])
def test_long_segments_sum_compensated(order):
    """A term e^50 first, then 30,000 terms each e^-40 of it, below half an ulp of a running
    float64 sum, in each of two segments: a plain sum would lose all of them (tens of ulps of
    the result, 50 + 1.3e-13), and nothing here is flagged for the accurate tier; the
    partials' compensated sums keep every one."""
    rng = kernel_rng(f"segment-long-{order}")
    n = 30_000
    a = np.concatenate([[50.0, 50.0], 10.0 + rng.uniform(0.0, 1e-3, 2 * n)])
    ids = np.concatenate([[0, 1], rng.integers(0, 2, 2 * n)])
    if order == "sorted":
        perm = np.argsort(ids, kind="stable")
        a, ids = a[perm], ids[perm]
    got = numpy_segment.logsumexp(a, ids, 2, 0, None, 1.0, order == "sorted")
    assert _worst_ulp(got, a, ids, 2) <= 1.0


@pytest.mark.parametrize("ids", [
    [3, -2, 7, 1], [5], [np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0],
    list(range(1000, 0, -1)) + [0] + list(range(2000)),
])
def test_id_range_is_min_and_max(ids):
    ids = np.array(ids, dtype=np.int64)
    assert numpy_segment.id_range(ids) == (int(ids.min()), int(ids.max()))


def test_id_range_of_no_ids_is_empty():
    assert numpy_segment.id_range(np.empty(0, dtype=np.int64)) == (0, -1)
