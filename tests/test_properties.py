"""Property-based tests (hypothesis): invariances, bounds, limits, identities and agreement with scipy."""

import math

import numpy as np
import pytest
import scipy.special as sc
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lsearray

EPS = np.finfo(np.float64).eps
SETTINGS = settings(deadline=None, max_examples=60, database=None)

finite = st.floats(min_value=-700.0, max_value=700.0, allow_nan=False, allow_infinity=False)
moderate = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False)
vectors = hnp.arrays(np.float64, st.integers(1, 60), elements=finite)
moderate_vectors = hnp.arrays(np.float64, st.integers(1, 60), elements=moderate)
matrices = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
                      elements=moderate)
temperatures = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


def _scale(a):
    """A magnitude for absolute tolerances: results are of the size of max|a| (+ log n)."""
    return 1.0 + float(np.max(np.abs(a))) + math.log(a.size)


@SETTINGS
@given(a=vectors, c=st.floats(min_value=-1e3, max_value=1e3))
def test_translation_invariance(a, c):
    got = lsearray.logsumexp(a + c)
    expected = lsearray.logsumexp(a) + c
    # a + c is rounded element-wise: that alone moves the result by up to eps * (|a| + |c|)
    tol = 8 * EPS * (_scale(a) + abs(c))
    assert abs(got - expected) <= tol, (got, expected)


@SETTINGS
@given(a=vectors, seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance(a, seed):
    perm = np.random.default_rng(seed).permutation(a.size)
    got = lsearray.logsumexp(a[perm])
    expected = lsearray.logsumexp(a)
    assert abs(got - expected) <= 4 * EPS * _scale(a)


@SETTINGS
@given(a=vectors, tau=temperatures)
def test_temperature_bounds(a, tau):
    got = lsearray.logsumexp(a, temperature=tau)
    m = float(np.max(a))
    slack = 4 * EPS * (abs(m) + tau * math.log(a.size) + 1.0)
    assert m - slack <= got <= m + tau * math.log(a.size) + slack, (got, m, tau)
    # the same bounds for the mean: min <= logmeanexp <= max
    lme = lsearray.logmeanexp(a, temperature=tau)
    assert float(np.min(a)) - slack <= lme <= m + slack


@SETTINGS
@given(a=vectors)
def test_small_temperature_approaches_max(a):
    m = float(np.max(a))
    for tau in (1e-2, 1e-5, 1e-9):
        got = lsearray.logsumexp(a, temperature=tau)
        assert abs(got - m) <= tau * math.log(a.size) + 4 * EPS * (abs(m) + 1.0)


@SETTINGS
@given(a=hnp.arrays(np.float64, st.integers(1, 60),
                    elements=st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)))
def test_large_temperature_logmeanexp_approaches_mean(a):
    mean = float(np.mean(a))
    spread = float(np.max(np.abs(a - mean)))
    for tau in (1e3, 1e5):
        got = lsearray.logmeanexp(a, temperature=tau)
        # tau*log(mean(exp(a/tau))) = mean + var/(2 tau) + O(spread^3/tau^2), and 0 <= var <= spread^2;
        # evaluating it costs about tau * eps * (|a|/tau + 1) of rounding
        bound = spread ** 2 / tau + 1e-9 + 64 * EPS * tau
        assert abs(got - mean) <= bound, (got, mean, tau)


@SETTINGS
@given(x=matrices, axis=st.sampled_from([None, 0, 1, -1, (0, 1)]))
def test_softmax_sums_to_one(x, axis):
    s = lsearray.softmax(x, axis=axis)
    assert s.shape == x.shape
    assert np.all(s >= 0) and np.all(s <= 1)
    np.testing.assert_allclose(np.sum(s, axis=axis), 1.0, rtol=0, atol=x.size * 4 * EPS)


@SETTINGS
@given(x=matrices, axis=st.sampled_from([None, 0, 1, -1]), tau=temperatures)
def test_softmax_is_exp_of_log_softmax(x, axis, tau):
    s = lsearray.softmax(x, axis=axis, temperature=tau)
    ls = lsearray.log_softmax(x, axis=axis, temperature=tau)
    assert ls.shape == x.shape and np.all(ls <= 8 * EPS)
    # both carry a relative error of about eps * |x - max| / tau; below the normal range the
    # relative precision of either is lost, hence the absolute floor
    rtol = 16 * EPS * (1.0 + 2.0 * float(np.max(np.abs(x))) / tau)
    np.testing.assert_allclose(s, np.exp(ls), rtol=rtol, atol=1e-300)


@SETTINGS
@given(x=matrices, axis=st.sampled_from([None, 0, 1, -1, (0, 1)]), tau=temperatures)
def test_log_softmax_is_x_minus_logsumexp(x, axis, tau):
    ls = lsearray.log_softmax(x, axis=axis, temperature=tau)
    lse = lsearray.logsumexp(x, axis=axis, keepdims=True, temperature=tau)
    expected = (x - lse) / tau
    tol = 8 * EPS * (np.abs(x) + np.abs(lse)) / tau + 8 * EPS
    assert np.all(np.abs(ls - expected) <= tol), (ls, expected)


@SETTINGS
@given(a=vectors, b=vectors, tau=st.sampled_from([1.0, 0.5, 3.0]))
def test_merge_of_parts(a, b, tau):
    # the partial algebra: lse(concat(a, b)) = tau * logaddexp(lse(a)/tau, lse(b)/tau)
    whole = lsearray.logsumexp(np.concatenate([a, b]), temperature=tau)
    la = lsearray.logsumexp(a, temperature=tau)
    lb = lsearray.logsumexp(b, temperature=tau)
    merged = tau * np.logaddexp(la / tau, lb / tau)
    assert abs(whole - merged) <= 8 * EPS * (_scale(np.concatenate([a, b])) + tau)


@SETTINGS
@given(a=vectors, split=st.integers(0, 60))
def test_weighted_split_equals_whole(a, split):
    # zero weights remove elements: lse(a, b=mask) == lse(a[mask])
    mask = np.arange(a.size) < split
    assume(mask.any())
    got = lsearray.logsumexp(a, b=mask.astype(np.float64))
    expected = lsearray.logsumexp(a[mask])
    assert abs(got - expected) <= 4 * EPS * _scale(a)


@SETTINGS
@given(a=vectors)
def test_agrees_with_scipy(a):
    got = lsearray.logsumexp(a)
    expected = sc.logsumexp(a)
    assert type(got) is type(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@SETTINGS
@given(a=matrices, data=st.data())
def test_agrees_with_scipy_axis_and_weights(a, data):
    axis = data.draw(st.sampled_from([None, 0, 1, -1, (0, 1)]))
    keepdims = data.draw(st.booleans())
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(0.0, 10.0)))
    got = lsearray.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    # scipy divides the sum by the maximal term's weight, which overflows (with a warning)
    # where that weight is subnormal; its result stays right
    with np.errstate(over="ignore"):
        expected = sc.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    assert type(got) is type(expected) and np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@SETTINGS
@given(a=moderate_vectors, b=moderate_vectors)
def test_signed_weights_agree_with_scipy(a, b):
    n = min(a.size, b.size)
    a, b = a[:n], b[:n] / 10.0
    got, sign = lsearray.logsumexp(a, b=b, return_sign=True)
    expected, esign = sc.logsumexp(a, b=b, return_sign=True)
    # the sum cancels: compare on the scale of its condition number
    terms = b * np.exp(a - np.max(a))
    total = np.sum(terms)
    assume(total != 0 and np.sum(np.abs(terms)) / abs(total) < 1e6)
    kappa = np.sum(np.abs(terms)) / abs(total)
    assert sign == esign
    assert abs(got - expected) <= 1e-13 * (1 + abs(expected)) + 64 * EPS * kappa


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@SETTINGS
@given(data=st.data())
def test_float32_float64_consistency(dtype, data):
    a = data.draw(hnp.arrays(dtype, st.integers(1, 40),
                             elements=st.floats(-80, 80, allow_nan=False, width=32)))
    got = lsearray.logsumexp(a)
    assert got.dtype == dtype
    exact = sc.logsumexp(a.astype(np.float64))
    np.testing.assert_allclose(float(got), exact, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)


# Dyadic values on a 2^-10 grid: every a_i - max(a) is exact in float64, so the only
# errors are the library's own and the exact reference is a fair target to 1 ulp.
dyadic = st.integers(-60 * 1024, 60 * 1024).map(lambda k: k / 1024.0)


@settings(deadline=None, max_examples=150, database=None)
@given(a=hnp.arrays(np.float64, st.integers(1, 200), elements=dyadic))
def test_within_one_ulp_of_mpmath(a):
    from reference import mp_logsumexp, ulp_error

    exact = mp_logsumexp(a)[0]
    got = lsearray.logsumexp(a)
    assert ulp_error(got, exact, np.float64) <= 1.0, (got, float(exact))
