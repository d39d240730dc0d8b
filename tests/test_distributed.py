"""The dask reduction on a dask.distributed cluster of two worker processes, and surviving a worker's death."""

import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import lsearray  # noqa: E402
import lsearray.dask as ldask  # noqa: E402

RTOL = 1e-13


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, worker_dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def _x():
    return np.random.default_rng(42).standard_normal((60, 50)) * 20


def test_cluster_has_two_worker_processes(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2
    assert os.getpid() not in pids.values()


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_logsumexp_on_cluster(client, axis):
    x = _x()
    b = np.random.default_rng(1).uniform(-1, 2, size=(1, 50))
    d = da.from_array(x, chunks=(7, 9))
    fut = client.compute(ldask.logsumexp(d, axis=axis, split_every=3))
    np.testing.assert_allclose(fut.result(timeout=60), lsearray.logsumexp(x, axis=axis), rtol=RTOL)
    r, s = ldask.logsumexp(d, axis=axis, b=da.from_array(b, chunks=(1, 20)), return_sign=True)
    got_r, got_s = client.gather(client.compute([r, s]), direct=False)
    er, es = lsearray.logsumexp(x, axis=axis, b=b, return_sign=True)
    np.testing.assert_allclose(got_r, er, rtol=RTOL)
    np.testing.assert_array_equal(got_s, es)
    # the dispatching entry point builds the same reduction
    got = client.compute(lsearray.logsumexp(d, axis=axis)).result(timeout=60)
    np.testing.assert_allclose(got, lsearray.logsumexp(x, axis=axis), rtol=RTOL)


@pytest.mark.parametrize("axis", [None, 1])
def test_logmeanexp_on_cluster(client, axis):
    x = _x()
    b = np.random.default_rng(2).random((60, 50))
    d = da.from_array(x, chunks=(11, 13))
    got = client.compute(ldask.logmeanexp(d, axis=axis)).result(timeout=60)
    np.testing.assert_allclose(got, lsearray.logmeanexp(x, axis=axis), rtol=RTOL)
    got = client.compute(ldask.logmeanexp(d, axis=axis, b=b, split_every=2)).result(timeout=60)
    np.testing.assert_allclose(got, lsearray.logmeanexp(x, axis=axis, b=b), rtol=RTOL)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_softmax_on_cluster(client, func, axis):
    x = _x()
    d = da.from_array(x, chunks=(7, 9))
    got = client.compute(getattr(ldask, func)(d, axis=axis, temperature=2.0)).result(timeout=60)
    np.testing.assert_allclose(got, getattr(lsearray, func)(x, axis=axis, temperature=2.0), rtol=RTOL)


def test_special_values_on_cluster(client):
    x = _x()
    x[0, :] = -np.inf
    x[1, 3] = np.inf
    x[2, 4] = np.nan
    x[3, :9] = np.inf
    d = da.from_array(x, chunks=(7, 9))
    got = client.compute(ldask.logsumexp(d, axis=1)).result(timeout=60)
    np.testing.assert_allclose(got, lsearray.logsumexp(x, axis=1), rtol=RTOL, equal_nan=True)


def test_worker_killed_mid_reduction(client, cluster):
    n_chunks, chunk_len, delay = 40, 1000, 0.15

    def slow_block(block_id=None):  # nested: pickled by value, no test module on the workers
        time.sleep(delay)
        return np.random.default_rng(block_id[0]).standard_normal(chunk_len) * 10

    x = da.map_blocks(slow_block, chunks=((chunk_len,) * n_chunks,), dtype=np.float64,
                      meta=np.empty((0,), dtype=np.float64))
    expected_input = np.concatenate(
        [np.random.default_rng(i).standard_normal(chunk_len) * 10 for i in range(n_chunks)])
    expected = lsearray.logsumexp(expected_input)

    r = ldask.logsumexp(x, split_every=4)
    keys_before = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.workers)))
    fut = client.compute(r)

    def in_memory(dask_scheduler):
        return sum(1 for ts in dask_scheduler.tasks.values() if ts.state == "memory")

    deadline = time.monotonic() + 20
    while client.run_on_scheduler(in_memory) < 6:
        assert time.monotonic() < deadline, "the reduction made no progress"
        assert not fut.done(), "finished before a worker could be killed: make the chunks slower"
        time.sleep(0.05)
    assert not fut.done()

    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)

    got = fut.result(timeout=60)
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    # the worker really died: the nanny brought up a new one at another address
    client.wait_for_workers(2, timeout=30)
    keys_after = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.workers)))
    assert victim in keys_before and victim not in keys_after
    # and the same graph computed again on the healed cluster gives the same answer
    np.testing.assert_allclose(client.compute(r).result(timeout=60), got, rtol=0)
