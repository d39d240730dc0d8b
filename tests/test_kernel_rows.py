"""The row path: 16384-element blocks, the 32-element unrolled loop and the float32 loops."""

import math

import mpmath
import numpy as np
import pytest

import lsearray
import lsecore
from lsecore import _kernel
from kernel_support import DTYPES, LD, assert_no_failures, inf, kernel_rng, nan, needs_ld, ulp_failures
from reference import ld_lse_rows, mp_logsumexp, ulp_error


ROW_N = [0, 1, 7, 8, 9, 31, 32, 33, 16383, 16384, 16385, 40000]


def _row_variants(n, rng):
    """1-D rows of length n: tiny terms around -40 with a max of 0 at several places, and
    rows whose max rises between blocks."""
    out = {}
    if n == 0:
        return {"empty": np.zeros(0)}
    later = min(n - 1, 16384 + 5 if n > 16384 else n // 2)
    for where, pos in [("first", 0), ("last", n - 1), ("later-block", later),
                       ("block-end", min(n - 1, 16383))]:
        x = rng.normal(-40.0, 1.0, n)
        x[pos] = 0.0
        out[f"max-{where}"] = x
    x = rng.normal(-40.0, 1.0, n)
    x[[0, n // 3, n - 1]] = 0.0
    out["ties"] = x
    out["ascending"] = np.sort(rng.normal(scale=0.01, size=n))
    out["descending"] = np.sort(rng.normal(scale=3.0, size=n))[::-1] + 10.0
    out["offset-plus700"] = rng.normal(size=n) + 700.0
    out["near-underflow"] = -745.0 + rng.uniform(0.0, 20.0, n)
    x = rng.normal(size=n)
    x[n - 1] = inf
    out["posinf-last"] = x
    x = rng.normal(size=n)
    x[0] = nan
    out["nan-first"] = x
    x = rng.normal(size=n)
    x[: max(1, min(n - 1, 16384))] = -inf
    out["neginf-first-block"] = x
    x = np.full(n, -inf)
    x[n - 1] = nan
    out["nan-among-neginf"] = x
    out["all-neginf"] = np.full(n, -inf)
    return out


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_1d_match_reference(dtype):
    failures = []
    for n in ROW_N:
        for name, x in _row_variants(n, kernel_rng(f"rows-{n}")).items():
            x = x.astype(dtype)
            ref = ld_lse_rows(x[None, :])[0]
            big = np.full(2 * n, 9.0, dtype=dtype)
            big[::2] = x
            for layout, view in [("contiguous", x), ("strided", big[::2]),
                                 ("reversed", x[::-1].copy()[::-1])]:
                got = np.asarray(lsearray.logsumexp(view))
                failures += ulp_failures(got, ref, dtype, label=f"n={n} {name} {layout}")
            got = lsearray.logsumexp(np.stack([x, x, x]), axis=1)
            failures += ulp_failures(got, np.full(3, ref), dtype, label=f"n={n} {name} 3 rows")
            if n in (33, 16385):
                got = np.asarray(lsearray.logsumexp(x, temperature=0.5))
                failures += ulp_failures(got, ld_lse_rows(x[None, :], tau=0.5)[0], dtype,
                                         label=f"n={n} {name} tau=0.5")
    assert_no_failures(failures)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a, exact", [
    pytest.param([0.0] + [-40.0] * 8, lambda: mpmath.log1p(8 * mpmath.exp(-40)), id="0-then-8x-40"),
    pytest.param([0.0] * 9 + [-40.0] * 8, lambda: mpmath.log(9 + 8 * mpmath.exp(-40)),
                 id="9x0-then-8x-40"),
    pytest.param([-40.0] * 8 + [0.0], lambda: mpmath.log1p(8 * mpmath.exp(-40)), id="8x-40-then-0"),
    pytest.param([-40.0] * 40 + [0.0], lambda: mpmath.log1p(40 * mpmath.exp(-40)),
                 id="40x-40-then-0"),
])
def test_tiny_terms_next_to_the_max(a, exact, dtype):
    with mpmath.workdps(60):
        exact = exact()
    for x in (np.array(a, dtype=dtype), np.array(a, dtype=dtype)[::-1]):
        got = lsearray.logsumexp(x)
        assert type(got) is np.dtype(dtype).type
        err = ulp_error(got, exact, dtype)
        assert err <= 1.0, f"{got!r} vs {float(exact)!r}: {err:.3g} ulp"
        # the same row as one of many short rows, and as a column
        got = lsearray.logsumexp(np.tile(x, (70, 1)), axis=1)
        assert max(ulp_error(g, exact, dtype) for g in got) <= 1.0
        got = lsearray.logsumexp(np.tile(x[:, None], (1, 70)), axis=0)
        assert max(ulp_error(g, exact, dtype) for g in got) <= 1.0


@pytest.mark.parametrize("n", [3, 40, 20000])
def test_float32_terms_far_below_the_max(n):
    """float32 terms 708 to 1e30 below the max (and -inf) change nothing: the float32
    loops take exp(d) for d < -708 as exp(-708), below what a sum holding the max's 1 can
    see.  The result is the max's own log-sum-exp and the softmax gives them 0."""
    rng = kernel_rng(f"far-below-{n}")
    top = rng.normal(size=3).astype(np.float32)
    far = np.concatenate([-rng.uniform(708.5, 745.0, n), [-1e30, -np.inf]]) + top[0]
    a = rng.permutation(np.concatenate([top, far.astype(np.float32)])).astype(np.float32)
    exact = mp_logsumexp(top)[0]
    for layout, got in [("row", lsearray.logsumexp(a)),
                        ("columns", lsearray.logsumexp(np.stack([a, a], axis=1), axis=0)[1])]:
        assert ulp_error(got, exact, np.float32) <= 1.0, layout
    sm = lsearray.softmax(a)
    assert np.all(sm[np.isin(a, top, invert=True)] == 0.0)
    ref = np.exp(top.astype(np.float64) - float(exact))
    np.testing.assert_allclose(np.sort(sm[np.isin(a, top)]), np.sort(ref), rtol=2e-7)


@pytest.mark.parametrize("tau", [1.0, 0.5, 3.0])
def test_float32_results_with_a_max_of_zero_and_above(tau):
    """float32 log-sum-exps whose max is 0 or a little above, where the float32 loops take
    their coarser exps (LSE_COARSE_FLOAT32): the results, from about 3e-8 to 25, keep their
    1-ulp bound along rows, through threads splitting a long row, as columns, and
    through a strided view's partials."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = kernel_rng(f"coarse-max-{tau}")
    rows = []
    for top in (0.0, 2.0 ** -20, 0.01):
        for low, high in ((-30.0, 0.0), (-40.0, -25.0)):      # log S near 8, and near 1e-6
            x = rng.uniform(low, high, 70000)
            x[rng.integers(x.size)] = 0.0
            rows.append(((x + top) * tau).astype(np.float32))
        # every term at nearly the widest reduced argument of the exp's table (16 ln2
        # steps): a polynomial's error then adds up instead of averaging out
        for k in (40.49, 40.51):
            x = np.r_[0.0, np.full(20000, -k * math.log(2.0) / 16.0)]
            rows.append(((x + top) * tau).astype(np.float32))
    for x in rows:
        exact = mp_logsumexp(x.astype(np.float64), temperature=tau)[0]
        got = {}
        for nt in (1, 2):
            with threadpoolctl.threadpool_limits(nt):
                got[f"row, {nt} threads"] = lsearray.logsumexp(x, temperature=tau)
        got["column"] = lsearray.logsumexp(np.stack([x, x], axis=1), axis=0, temperature=tau)[0]
        got["strided"] = lsearray.logsumexp(np.repeat(x, 2)[::2], temperature=tau)
        for label, value in got.items():
            assert value.dtype == np.float32
            err = ulp_error(value, exact, np.float32)
            assert err <= 1.0, f"max {x.max()!r}, exact {float(exact)!r}, {label}: {err:.2f} ulp"


def test_float32_partials_stay_exact_unless_a_float32_result_is_asked_for():
    """lsecore.reduce_partials keeps float32 terms exact (2^-50) by default, the partials
    being free to end in float64 or a mean; with float32_result=True the coarser exp
    (2^-34) shows.  Every term sits at the table's widest reduced argument, where the
    coarse polynomial's error is largest and the same for all of them."""
    x = np.r_[0.0, np.full(5000, -40.49 * math.log(2.0) / 16.0)].astype(np.float32)
    ref = np.sum(np.exp(x[1:].astype(LD) - LD(0.0)))
    errors = {}
    for flag in (False, True):
        m, w, t, c = lsecore.reduce_partials(x, (0,), float32_result=flag)
        assert (float(m), float(w)) == (0.0, 1.0)
        errors[flag] = float(abs((LD(float(t)) + LD(float(c))) - ref) / ref)
    assert errors[False] < 2.0 ** -46, errors
    assert errors[True] < 2.0 ** -33, errors
    if _kernel.simd() == "avx512":          # the portable loops have only the exact exp
        assert errors[True] > 2.0 ** -42, errors


@pytest.mark.parametrize("n", [10, 100, 1000, 20000])
def test_float32_result_near_zero(n):
    """float32 data whose log-sum-exp is near 0 (the max cancels against log of the sum):
    with float64 sums of accurate terms the float32 result is within 1 ulp.  The float32
    loops' exp (lse512_exp_f32, about 2^-50 relative) is what this needs: an error of
    2^-44 in log(sum) is already ten float32 ulps of a result near 3e-7.
    """
    rng = kernel_rng(f"near-zero-{n}")
    failures = []
    for target in (1e-3, 1e-5, 1e-6, 3e-7):
        x = rng.normal(size=n).astype(np.float32)
        shift = np.float32(float(mp_logsumexp(x)[0]))
        a = (x - shift + np.float32(target)).astype(np.float32)
        exact = mp_logsumexp(a)[0]
        for layout, got in [("row", lsearray.logsumexp(a)),
                            ("column", lsearray.logsumexp(np.stack([a, a], axis=1), axis=0)[0])]:
            err = ulp_error(got, exact, np.float32)
            if err > 1.0:
                failures.append(f"target {target} {layout}: got {got!r}, exact {float(exact)!r}, "
                                f"{err:.1f} ulp")
    assert_no_failures(failures)
