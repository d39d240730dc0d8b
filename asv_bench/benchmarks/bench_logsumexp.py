"""asv benchmarks: lsearray logsumexp, softmax, log_softmax, logmeanexp beside scipy.special.

Every class limits BLAS/OpenMP pools to one thread in ``setup`` (threadpoolctl), so the
``time_*`` (lsearray) and ``time_scipy_*`` (scipy.special, the reference) methods of a class
run on the same data under the same conditions and can be read as ratios.
``ThreadScaling`` is the one class that varies the thread count.
"""
import numpy as np
from scipy import special

import lsearray

from .common import SHAPE_2D, get_1d, get_2d, get_b, limit_threads, restore_threads

__all__ = ["Logsumexp1D", "Logsumexp2D", "LogsumexpWeighted", "LogsumexpTemperature",
           "Logmeanexp", "Softmax", "ThreadScaling"]


class _OneThread:
    """Mixin: one thread for every pool while a benchmark runs."""

    def teardown(self, *params):
        restore_threads(self)


class Logsumexp1D(_OneThread):
    """Full reduction of a 1-D array."""
    params = [[10_000, 1_000_000, 20_000_000], ["float64", "float32"]]
    param_names = ["size", "dtype"]
    timeout = 300

    def setup(self, size, dtype):
        self.a = get_1d(size, dtype)
        limit_threads(self, 1)

    def time_logsumexp(self, size, dtype):
        lsearray.logsumexp(self.a)

    def time_scipy_logsumexp(self, size, dtype):
        special.logsumexp(self.a)

    def peakmem_logsumexp(self, size, dtype):
        lsearray.logsumexp(self.a)

    def peakmem_scipy_logsumexp(self, size, dtype):
        special.logsumexp(self.a)


class Logsumexp2D(_OneThread):
    """Reduction of a (2000, 5000) array over axis 0, axis 1 or all, C or F order."""
    params = [[0, 1, None], ["C", "F"], ["float64", "float32"]]
    param_names = ["axis", "order", "dtype"]

    def setup(self, axis, order, dtype):
        self.a = get_2d(SHAPE_2D, dtype, order)
        limit_threads(self, 1)

    def time_logsumexp(self, axis, order, dtype):
        lsearray.logsumexp(self.a, axis=axis)

    def time_scipy_logsumexp(self, axis, order, dtype):
        special.logsumexp(self.a, axis=axis)

    def time_logsumexp_keepdims(self, axis, order, dtype):
        lsearray.logsumexp(self.a, axis=axis, keepdims=True)

    def peakmem_logsumexp(self, axis, order, dtype):
        lsearray.logsumexp(self.a, axis=axis)

    def peakmem_scipy_logsumexp(self, axis, order, dtype):
        special.logsumexp(self.a, axis=axis)


class LogsumexpWeighted(_OneThread):
    """Weights ``b`` and ``return_sign`` on a 1-D (1e6) array and a (2000, 5000) array over axis 1.

    ``weights`` is 'none', 'positive' (b in [0.5, 1.5)) or 'signed' (b in [-1, 1), where
    ``return_sign=False`` gives nan for negative totals: that is still a valid timing).
    """
    params = [["1d", "2d-axis1"], ["none", "positive", "signed"], [False, True]]
    param_names = ["case", "weights", "return_sign"]

    def setup(self, case, weights, return_sign):
        if case == "1d":
            self.a, self.axis = get_1d(1_000_000), None
        else:
            self.a, self.axis = get_2d(SHAPE_2D), 1
        self.b = None if weights == "none" else get_b(self.a.shape, signed=weights == "signed")
        self.kw = dict(axis=self.axis, b=self.b, return_sign=return_sign)
        self.errstate = np.seterr(invalid="ignore", divide="ignore")
        limit_threads(self, 1)

    def teardown(self, case, weights, return_sign):
        np.seterr(**self.errstate)
        restore_threads(self)

    def time_logsumexp(self, case, weights, return_sign):
        lsearray.logsumexp(self.a, **self.kw)

    def time_scipy_logsumexp(self, case, weights, return_sign):
        special.logsumexp(self.a, **self.kw)

    def peakmem_logsumexp(self, case, weights, return_sign):
        lsearray.logsumexp(self.a, **self.kw)

    def peakmem_scipy_logsumexp(self, case, weights, return_sign):
        special.logsumexp(self.a, **self.kw)


class LogsumexpTemperature(_OneThread):
    """``temperature`` on a 1-D (1e6) array and a (2000, 5000) array over axis -1.

    scipy has no temperature: its comparison is the recipe ``T * logsumexp(a / T)``.
    """
    params = [["1d", "2d-axis-1"], [1.0, 0.1, 10.0]]
    param_names = ["case", "temperature"]

    def setup(self, case, temperature):
        if case == "1d":
            self.a, self.axis = get_1d(1_000_000), None
        else:
            self.a, self.axis = get_2d(SHAPE_2D), -1
        limit_threads(self, 1)

    def time_logsumexp(self, case, temperature):
        lsearray.logsumexp(self.a, axis=self.axis, temperature=temperature)

    def time_scipy_logsumexp(self, case, temperature):
        temperature * special.logsumexp(self.a / temperature, axis=self.axis)

    def peakmem_logsumexp(self, case, temperature):
        lsearray.logsumexp(self.a, axis=self.axis, temperature=temperature)

    def peakmem_scipy_logsumexp(self, case, temperature):
        temperature * special.logsumexp(self.a / temperature, axis=self.axis)


class Logmeanexp(_OneThread):
    """``logmeanexp`` on a (2000, 5000) array; scipy's recipe is ``logsumexp(a) - log(n)``."""
    params = [[0, 1, None]]
    param_names = ["axis"]

    def setup(self, axis):
        self.a = get_2d(SHAPE_2D)
        self.n = self.a.size if axis is None else self.a.shape[axis]
        limit_threads(self, 1)

    def time_logmeanexp(self, axis):
        lsearray.logmeanexp(self.a, axis=axis)

    def time_scipy_logmeanexp(self, axis):
        special.logsumexp(self.a, axis=axis) - np.log(self.n)


class Softmax(_OneThread):
    """``softmax`` and ``log_softmax`` of a (2000, 5000) array over axis -1."""
    params = [["float64", "float32"], ["C", "F"]]
    param_names = ["dtype", "order"]

    def setup(self, dtype, order):
        self.a = get_2d(SHAPE_2D, dtype, order)
        limit_threads(self, 1)

    def time_softmax(self, dtype, order):
        lsearray.softmax(self.a, axis=-1)

    def time_scipy_softmax(self, dtype, order):
        special.softmax(self.a, axis=-1)

    def time_log_softmax(self, dtype, order):
        lsearray.log_softmax(self.a, axis=-1)

    def time_scipy_log_softmax(self, dtype, order):
        special.log_softmax(self.a, axis=-1)

    def time_softmax_temperature(self, dtype, order):
        lsearray.softmax(self.a, axis=-1, temperature=0.5)

    def peakmem_softmax(self, dtype, order):
        lsearray.softmax(self.a, axis=-1)

    def peakmem_scipy_softmax(self, dtype, order):
        special.softmax(self.a, axis=-1)

    def peakmem_log_softmax(self, dtype, order):
        lsearray.log_softmax(self.a, axis=-1)

    def peakmem_scipy_log_softmax(self, dtype, order):
        special.log_softmax(self.a, axis=-1)


class ThreadScaling:
    """lsearray alone on 1, 2 and 4 threads (OpenMP via threadpoolctl): 2e7 1-D and 2-D axis 1."""
    params = [["1d-2e7", "2d-axis1"], [1, 2, 4]]
    param_names = ["case", "threads"]
    timeout = 300

    def setup(self, case, threads):
        if case == "1d-2e7":
            self.a, self.axis = get_1d(20_000_000), None
        else:
            self.a, self.axis = get_2d(SHAPE_2D), 1
        limit_threads(self, threads)

    def teardown(self, case, threads):
        restore_threads(self)

    def time_logsumexp(self, case, threads):
        lsearray.logsumexp(self.a, axis=self.axis)
