"""asv benchmarks: lsearray.dask's reductions and softmax beside dask's two-pass recipes.

A (20000, 1000) array in memory (``common.py``'s cached input) is wrapped as a dask array
of 2000-row chunks (10 chunks of 16 MB) and computed by the threaded scheduler with
``threads`` workers; every OpenMP/BLAS pool is limited to one thread, so the dask workers
are the only parallelism, and ``teardown`` restores the limits. The ``time_*`` (lsearray)
and ``time_dask_*`` (the recipes written with ``dask.array``) methods of a class compute
from the same chunks under the same limits, so asv results read as ratios;
``time_dask_sum`` (one read of every chunk) is the floor. Without dask the benchmarks
are skipped.
"""
try:
    import dask
    import dask.array as da

    import lsearray.dask
except ImportError:  # dask is the [dask] extra
    dask = None

from .common import SHAPE_ROWS, THREADS, ThreadLimited, get_2d, limit_threads

__all__ = ["DaskLogsumexp", "DaskSoftmax"]

CHUNK_ROWS = 2000
AXES = {"all": None, "rows": 1}


def _chunked(bench):
    """The benchmark input as a dask array, the OpenMP/BLAS pools limited to one thread."""
    if dask is None:
        raise NotImplementedError("dask is not installed")
    limit_threads(bench, 1)
    return da.from_array(get_2d(SHAPE_ROWS), chunks=(CHUNK_ROWS, SHAPE_ROWS[1]))


def _compute(x, threads):
    """``x`` computed by the threaded scheduler with ``threads`` workers."""
    return x.compute(scheduler="threads", num_workers=threads)


class DaskLogsumexp(ThreadLimited):
    """logsumexp and logmeanexp of all the elements or of every row, in one read.

    The recipe: ``m = x.max(axis, keepdims=True); log(exp(x - m).sum(axis)) + m``, which
    holds every chunk until the maximum is known.
    """
    params = [list(AXES), THREADS]
    param_names = ["axis", "threads"]
    timeout = 120

    def setup(self, axis, threads):
        self.x = _chunked(self)
        self.axis = AXES[axis]

    def time_logsumexp(self, axis, threads):
        _compute(lsearray.dask.logsumexp(self.x, axis=self.axis), threads)

    def time_logmeanexp(self, axis, threads):
        _compute(lsearray.dask.logmeanexp(self.x, axis=self.axis), threads)

    def time_dask_two_pass_logsumexp(self, axis, threads):
        m = self.x.max(axis=self.axis, keepdims=True)
        r = da.log(da.exp(self.x - m).sum(axis=self.axis)) + m.squeeze(axis=self.axis)
        _compute(r, threads)

    def time_dask_sum(self, axis, threads):
        _compute(self.x.sum(axis=self.axis), threads)


class DaskSoftmax(ThreadLimited):
    """softmax and log_softmax along the rows (two reads: the normalizers, then the output).

    The recipe: ``e = exp(x - x.max(1, keepdims=True)); e / e.sum(1, keepdims=True)``.
    """
    params = [THREADS]
    param_names = ["threads"]
    timeout = 120

    def setup(self, threads):
        self.x = _chunked(self)

    def time_softmax(self, threads):
        _compute(lsearray.dask.softmax(self.x, axis=1), threads)

    def time_log_softmax(self, threads):
        _compute(lsearray.dask.log_softmax(self.x, axis=1), threads)

    def time_dask_softmax(self, threads):
        e = da.exp(self.x - self.x.max(axis=1, keepdims=True))
        _compute(e / e.sum(axis=1, keepdims=True), threads)

    def time_dask_log_softmax(self, threads):
        s = self.x - self.x.max(axis=1, keepdims=True)
        _compute(s - da.log(da.exp(s).sum(axis=1, keepdims=True)), threads)
