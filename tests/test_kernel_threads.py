"""Short rows and column tiles shared out between threads give the same result."""

import numpy as np
import pytest

import lsearray
import lsecore
from kernel_support import (DTYPES, assert_no_failures, kernel_rng, needs_ld, short_rows, tile_columns,
                            ulp_failures)
from reference import ld_lse


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["short-rows-C", "short-rows-strided", "columns-C",
                                  "columns-strided"])
def test_threads_give_the_same_result(case, dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = kernel_rng(f"threads-{case}")
    if case.startswith("short-rows"):
        a = short_rows(200_000, 10, rng).astype(dtype)
        axis = 1
        view = a if case.endswith("C") else np.repeat(a, 2, axis=1)[:, ::2]
    else:
        a = tile_columns(1500, 700, rng).astype(dtype)
        axis = 0
        view = a if case.endswith("C") else np.repeat(a, 2, axis=1)[:, ::2]
    ref = ld_lse(a, axis)
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            assert lsecore.max_threads() == threads
            got = lsearray.logsumexp(view, axis=axis)
        assert_no_failures(ulp_failures(got, ref, dtype, label=f"{threads} threads"))
        results.append(got)
    # whole output tiles are shared out: each output is computed the same way
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "where"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_long_lane_scans_in_the_same_blocks_on_any_thread_count(dtype, masked):
    """One long lane is scanned in blocks, each from the merged partials of those before it:
    the same blocks whatever the thread count, so the same bits, and each output within an
    ulp of the long-double scan (no prefix here crosses 0: none cancels)."""
    from reference import slow_logcumsumexp

    threadpoolctl = pytest.importorskip("threadpoolctl")
    a = kernel_rng("scan-blocks").normal(5.0, 3.0, 300_007).astype(dtype)
    where = kernel_rng("scan-mask").uniform(size=a.size) < 0.7 if masked else None
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            assert lsecore.max_threads() == threads
            results.append(lsearray.logcumsumexp(a, where=where))
    np.testing.assert_array_equal(results[0], results[1])
    ref = slow_logcumsumexp(a if where is None else np.where(where, a, -np.inf), 0)
    ulps = np.abs(results[0] - ref) / np.spacing(np.abs(ref).astype(dtype))
    assert np.max(ulps) <= 1.0


@pytest.mark.parametrize("func", ["logaddexp", "logdiffexp"])
def test_pair_functions_share_out_blocks_with_the_same_bits(func):
    """Elementwise pair functions split long inputs into blocks between threads: each
    element is computed alone, so any thread count gives the same bits."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = kernel_rng(f"threads-{func}")
    x, y = rng.normal(0.0, 20.0, (2, 300_001))
    x, y = np.maximum(x, y), np.minimum(x, y)
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            assert lsecore.max_threads() == threads
            results.append(getattr(lsearray, func)(x, y))
    np.testing.assert_array_equal(results[0], results[1])
    with np.errstate(divide="ignore"):
        direct = np.logaddexp(x, y) if func == "logaddexp" else x + np.log(-np.expm1(y - x))
    np.testing.assert_allclose(results[0], direct, rtol=1e-12, atol=1e-14 * np.abs(x).max())
