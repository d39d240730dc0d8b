"""asv benchmarks: OnlineLogSumExp over batches, beside one logsumexp of their concatenation.

The stream carries, besides the log-sum-exp partial, the sums its mean needs (weight sums and
sums of ``b * expm1(z)``) through every merge; ``time_update`` against ``time_logsumexp`` on
the same data is the price of streaming, ``time_result_mean`` that of the mean at the end.
"""
import numpy as np

import lsearray

from .common import DTYPES, ThreadLimited, get_2d, limit_threads

__all__ = ["OnlineBatches"]


class OnlineBatches(ThreadLimited):
    """100 batches of (rows, 1000) reduced over axis 0 into a (1000,) state (up to 800 MB); one thread."""
    params = [DTYPES, [10, 1000]]
    param_names = ["dtype", "rows"]

    def setup(self, dtype, rows):
        self.batches = np.split(get_2d((100 * rows, 1000), dtype), 100)
        self.whole = get_2d((100 * rows, 1000), dtype)
        self.filled = self._stream()
        limit_threads(self, 1)

    def _stream(self):
        acc = lsearray.OnlineLogSumExp(axis=0)
        for batch in self.batches:
            acc.update(batch)
        return acc

    def time_update(self, dtype, rows):
        self._stream()

    def time_logsumexp(self, dtype, rows):
        lsearray.logsumexp(self.whole, axis=0)

    def time_result(self, dtype, rows):
        self.filled.result()

    def time_result_mean(self, dtype, rows):
        self.filled.result(mean=True)
