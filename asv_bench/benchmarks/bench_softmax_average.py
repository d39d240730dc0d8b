"""asv benchmarks: softmax_average and OnlineSoftmaxAverage beside the NumPy recipe with a full softmax.

The recipe ``(softmax(a)[..., None] * v).sum(axis)`` writes the softmax the size of ``a`` and
then reads it again beside ``v``; ``softmax_average`` reads ``a`` for its max and then ``a`` and
``v`` once more, and ``time_online`` is the price of streaming the same data in 16 batches.
"""
import numpy as np

import lsearray

try:
    import dask.array as da

    import lsearray.dask
except ImportError:  # dask is the [dask] extra
    da = None

from .common import ThreadLimited, limit_threads

__all__ = ["SoftmaxAverage", "SoftmaxAverageDask"]


class SoftmaxAverage(ThreadLimited):
    """Attention readout: logits (64, 4096), values (64, 4096, d), over the 4096; one thread."""
    params = [[1, 64]]
    param_names = ["d"]

    def setup(self, d):
        rng = np.random.default_rng(0)
        self.a = rng.normal(size=(64, 4096)) * 4
        self.v = rng.normal(size=(64, 4096, d))
        limit_threads(self, 1)

    def time_softmax_average(self, d):
        lsearray.softmax_average(self.a, self.v, axis=1)

    def time_numpy_recipe(self, d):
        w = lsearray.softmax(self.a, axis=1)
        (w[..., None] * self.v).sum(axis=1)

    def time_online(self, d):
        acc = lsearray.OnlineSoftmaxAverage(axis=1)
        for a, v in zip(np.split(self.a, 16, axis=1), np.split(self.v, 16, axis=1)):
            acc.update(a, v)
        acc.result()


class SoftmaxAverageDask:
    """The same readout on dask arrays chunked along the sequence (8 chunks), one tree pass."""

    def setup(self):
        if da is None:
            raise NotImplementedError("needs dask")
        rng = np.random.default_rng(0)
        self.a = da.from_array(rng.normal(size=(64, 4096)), chunks=(64, 512))
        self.v = da.from_array(rng.normal(size=(64, 4096, 8)), chunks=(64, 512, 8))

    def time_dask_softmax_average(self):
        lsearray.dask.softmax_average(self.a, self.v, axis=1).compute(scheduler="sync")
