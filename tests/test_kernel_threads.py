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
