"""asv benchmarks: segment_logsumexp and segment_softmax beside a NumPy recipe with ufunc.at scatters.

The recipe takes each segment's max by ``np.maximum.at``, sums the shifted exponentials by
``np.add.at`` and takes the log: three passes and temporaries the size of the input.
"""
import numpy as np

import lsearray

try:
    import dask.array as da

    import lsearray.dask
except ImportError:  # dask is the [dask] extra
    da = None

from .common import ThreadLimited, limit_threads

__all__ = ["Segment", "SegmentDask"]


def _recipe(a, ids, k):
    m = np.full((k,) + a.shape[1:], -np.inf)
    np.maximum.at(m, ids, a)
    s = np.zeros_like(m)
    np.add.at(s, ids, np.exp(a - m[ids]))
    return m + np.log(s)


class Segment(ThreadLimited):
    """Edges (65536, d) grouped by 1024 target nodes, unsorted and sorted; one thread."""
    params = [[1, 8], [False, True]]
    param_names = ["d", "sorted"]

    def setup(self, d, sorted):
        rng = np.random.default_rng(0)
        self.ids = rng.integers(0, 1024, size=65536)
        if sorted:
            self.ids.sort()
        self.a = rng.normal(size=(65536, d)) * 4
        limit_threads(self, 1)

    def time_segment_logsumexp(self, d, sorted):
        lsearray.segment_logsumexp(self.a, self.ids, 1024, sorted=sorted)

    def time_segment_softmax(self, d, sorted):
        lsearray.segment_softmax(self.a, self.ids, 1024, sorted=sorted)

    def time_segment_log_softmax(self, d, sorted):
        lsearray.segment_log_softmax(self.a, self.ids, 1024, sorted=sorted)

    def time_numpy_recipe(self, d, sorted):
        _recipe(self.a, self.ids, 1024)


class SegmentDask:
    """The same on dask arrays chunked along the edges (8 chunks), one tree pass."""

    def setup(self):
        if da is None:
            raise NotImplementedError("needs dask")
        rng = np.random.default_rng(0)
        self.a = da.from_array(rng.normal(size=(65536, 8)), chunks=(8192, 8))
        self.ids = da.from_array(rng.integers(0, 1024, size=65536), chunks=8192)

    def time_dask_segment_logsumexp(self):
        lsearray.dask.segment_logsumexp(self.a, self.ids, 1024).compute(scheduler="sync")

    def time_dask_segment_softmax(self):
        lsearray.dask.segment_softmax(self.a, self.ids, 1024).compute(scheduler="sync")

    def time_dask_segment_log_softmax(self):
        lsearray.dask.segment_log_softmax(self.a, self.ids, 1024).compute(scheduler="sync")
