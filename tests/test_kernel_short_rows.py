"""The short-row path: rows of length <= 32, reduced as the columns of a transposed view."""

import numpy as np
import pytest

import lsearray
from kernel_support import (DTYPES, LD, assert_no_failures, kernel_rng, layouts_2d, needs_ld, short_rows,
                            ulp_failures)
from reference import ld_lse_rows, slow_log_softmax_rows, slow_softmax_rows


SHORT_K = list(range(1, 34))
SHORT_N = [1, 2, 7, 64, 65, 1000]


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_match_reference(dtype):
    failures = []
    for n in SHORT_N:
        for k in SHORT_K:
            a = short_rows(n, k, kernel_rng(f"short-{n}-{k}")).astype(dtype)
            ref = ld_lse_rows(a)
            for name, view in layouts_2d(a).items():
                got = lsearray.logsumexp(view, axis=1)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name}")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_short_rows_with_temperature(tau, dtype):
    failures = []
    for n in (7, 65, 1000):
        for k in (1, 2, 5, 8, 16, 31, 32, 33):
            a = short_rows(n, k, kernel_rng(f"short-tau-{n}-{k}")).astype(dtype)
            ref = ld_lse_rows(a, tau=tau)
            for name, view in layouts_2d(a).items():
                got = lsearray.logsumexp(view, axis=1, temperature=tau)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name} tau={tau}")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_weighted(dtype):
    """Weighted short rows (portable loops), full and broadcast weights, zeros removing
    +inf and nan elements."""
    failures = []
    for n in (2, 7, 64, 65, 1000):
        for k in (1, 3, 8, 17, 32, 33):
            rng = kernel_rng(f"short-w-{n}-{k}")
            a = short_rows(n, k, rng).astype(dtype)
            b = rng.uniform(0.5, 2.0, size=(n, k))
            b[rng.random((n, k)) < 0.1] = 0.0
            b[~np.isfinite(a) & (rng.random((n, k)) < 0.5)] = 0.0
            b = b.astype(dtype)
            ref = ld_lse_rows(a, b)
            for name, view in layouts_2d(a).items():
                bview = layouts_2d(b)[name]
                got = lsearray.logsumexp(view, axis=1, b=bview)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name} b=full")
            bk = b[0]                          # broadcast along the rows (zero stride)
            got = lsearray.logsumexp(a, axis=1, b=bk)
            failures += ulp_failures(got, ld_lse_rows(a, bk), dtype, label=f"n={n} k={k} b=bcast")
            got = lsearray.logsumexp(a, axis=1, b=b, temperature=2.0)
            failures += ulp_failures(got, ld_lse_rows(a, b, 2.0), dtype,
                                     label=f"n={n} k={k} b=full tau=2")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_merge_into_running_partials(dtype):
    """A reduction over two axes that do not coalesce: the kernel gets several short-row
    views in turn, each merged into the same partials."""
    rng = kernel_rng("short-merge")
    for n, k1, k2 in [(64, 3, 10), (130, 4, 32), (65, 2, 1)]:
        base = short_rows(n, 2 * k1 * 2 * k2, rng).reshape(n, 2 * k1, 2 * k2).astype(dtype)
        a = base[:, ::2, ::2]
        ref = ld_lse_rows(np.ascontiguousarray(a).reshape(n, -1))
        got = lsearray.logsumexp(a, axis=(1, 2))
        assert_no_failures(ulp_failures(got, ref, dtype, label=f"{(n, k1, k2)}"))


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_softmax_and_logmeanexp(dtype):
    """softmax, log_softmax and logmeanexp take the same partials of short rows."""
    a = short_rows(300, 10, kernel_rng("short-softmax")).astype(dtype)
    tol = dict(rtol=1e-12, atol=1e-300) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-38)
    with np.errstate(all="ignore"):
        for view in layouts_2d(a).values():
            np.testing.assert_allclose(lsearray.softmax(view, axis=1),
                                       np.asarray(slow_softmax_rows(a), dtype), equal_nan=True,
                                       **tol)
            np.testing.assert_allclose(lsearray.log_softmax(view, axis=1),
                                       np.asarray(slow_log_softmax_rows(a), dtype),
                                       equal_nan=True, **tol)
            lme = np.asarray(ld_lse_rows(a) - np.log(LD(a.shape[1])), dtype=np.float64)
            np.testing.assert_allclose(lsearray.logmeanexp(view, axis=1), lme.astype(dtype),
                                       equal_nan=True, **tol)


@needs_ld
@pytest.mark.parametrize("n", [10, 1000, 20000], ids=["n=10", "n=1000", "n=20000"])
def test_float32_softmax_rows_within_one_ulp(n):
    """float32 softmax and log_softmax rows (the buffered path, and rows longer than a
    block) within 1 ulp of long double: their exps (degree 4 in the AVX-512 loops) need
    only be exact relative to the sum.  Rows with a dominant max, ties, tiny terms and a
    spread of 60 are included; log_softmax's max entry is -log1p(t) for t down to 1e-9."""
    rng = kernel_rng(f"f32-softmax-{n}")
    rows = [rng.normal(scale=s, size=n) for s in (0.1, 3.0, 20.0)]
    rows.append(np.r_[0.0, rng.normal(-20.0, 1.0, n - 1)])          # one dominant term
    rows.append(np.where(rng.random(n) < 0.3, 2.5, rng.normal(size=n)))  # ties at the max
    a = np.stack(rows).astype(np.float32)
    for tau in (1.0, 0.7):
        with np.errstate(all="ignore"):
            soft = slow_softmax_rows(a.astype(np.float64) / tau)
            logsoft = slow_log_softmax_rows(a.astype(np.float64) / tau)
        failures = ulp_failures(lsearray.softmax(a, axis=1, temperature=tau), soft, np.float32,
                                label=f"softmax tau={tau}")
        failures += ulp_failures(lsearray.log_softmax(a, axis=1, temperature=tau), logsoft,
                                 np.float32, label=f"log_softmax tau={tau}")
        assert_no_failures(failures)
