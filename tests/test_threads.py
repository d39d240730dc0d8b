"""The kernel's threaded paths: thread limits are honoured and every split gives the same answer."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lsearray
import lsecore

threadpoolctl = pytest.importorskip("threadpoolctl")

from reference import slow_logsumexp  # noqa: E402


def test_threadpoolctl_limits_the_kernel():
    with threadpoolctl.threadpool_limits(1):
        assert lsecore.max_threads() == 1
    with threadpoolctl.threadpool_limits(3):
        assert lsecore.max_threads() == 3


def test_omp_num_threads_is_honoured():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import lsecore; print(lsecore.max_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def _big(shape, order, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 4.0
    x.flat[rng.integers(0, x.size, 7)] = 30.0  # several ties at the max, far into the data
    return np.asarray(x, order=order)


# (shape, order, axis): each lands on one of the kernel's schedules for 2-3 threads:
# a reduced axis split between threads (one long row; few long rows; few long columns),
# rows shared out, column tiles shared out, and short rows taken as column tiles.
CASES = [
    ((300_000,), "C", None),
    ((3, 100_000), "C", 1),
    ((100_000, 3), "C", 0),
    ((2000, 300), "C", 1),
    ((300, 2000), "C", 0),
    ((300, 2000), "F", 1),
    ((40, 50, 60), "C", (0, 2)),
    # short rows (<= 32 long), reduced as the columns of a transposed view: tiles shared out
    ((100_000, 12), "C", 1),
    ((100_000, 12), "F", 1),
]


@pytest.mark.parametrize("shape,order,axis", CASES, ids=[f"{s}-{o}-{a}" for s, o, a in CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threaded_paths_match_reference_and_each_other(shape, order, axis, dtype):
    a = _big(shape, order, 7).astype(dtype)
    b = np.abs(_big(shape, order, 8)).astype(dtype)
    expected = slow_logsumexp(a, axis=axis)
    expected_b = slow_logsumexp(a, axis=axis, b=b)
    results = []
    for threads in (1, 2, 3):
        with threadpoolctl.threadpool_limits(threads):
            got = lsearray.logsumexp(a, axis=axis)
            got_b = lsearray.logsumexp(a, axis=axis, b=b)
        rtol = 1e-13 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(got, expected, rtol=rtol, err_msg=f"{threads} threads")
        np.testing.assert_allclose(got_b, expected_b, rtol=rtol, err_msg=f"{threads} threads, b")
        results.append(np.asarray(got, dtype=np.float64))
    # The splits differ only in the order of compensated additions.
    np.testing.assert_allclose(results[1], results[0], rtol=4e-16, atol=0)
    np.testing.assert_allclose(results[2], results[0], rtol=4e-16, atol=0)
