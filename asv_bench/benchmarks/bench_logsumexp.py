"""asv benchmarks: lsearray logsumexp, softmax, log_softmax, logmeanexp beside scipy.special.

Every class builds its seeded, cached input in ``setup`` (``common.py``) and then limits
the OpenMP/BLAS pools with threadpoolctl: to the ``threads`` parameter (1 or 2) where a
class has one, to one thread otherwise; ``teardown`` restores the limits. The ``time_*`` /
``peakmem_*`` (lsearray) and ``time_scipy_*`` / ``peakmem_scipy_*`` (scipy.special, the
reference) methods of a class run on the same data under the same limits, so asv results
read as ratios. scipy is single-threaded: its ``threads=2`` rows repeat its ``threads=1``.
"""
import numpy as np
from scipy import special

import lsearray

from .common import (DTYPES, SHAPE_2D, SHAPE_ROWS, SHAPE_SHORT, SHAPE_TALL, THREADS, ThreadLimited,
                     get_1d, get_2d, get_b, limit_threads, restore_threads)

__all__ = ["Logsumexp1D", "LogsumexpNegativeMax", "LogsumexpNormalizedRows", "Logsumexp2D",
           "LogsumexpLayout", "LogsumexpInterleaved", "LogsumexpWeighted", "LogsumexpTemperature",
           "Logmeanexp", "Masked", "Softmax"]


class Logsumexp1D(ThreadLimited):
    """Full reduction of a 1-D array, from a 10-element call (overhead) to 2e7 elements."""
    params = [DTYPES, [10, 10_000, 1_000_000, 20_000_000], THREADS]
    param_names = ["dtype", "size", "threads"]
    timeout = 300

    def setup(self, dtype, size, threads):
        self.a = get_1d(size, dtype)
        limit_threads(self, threads)

    def time_logsumexp(self, dtype, size, threads):
        lsearray.logsumexp(self.a)

    def time_scipy_logsumexp(self, dtype, size, threads):
        special.logsumexp(self.a)

    def peakmem_logsumexp(self, dtype, size, threads):
        lsearray.logsumexp(self.a)

    def peakmem_scipy_logsumexp(self, dtype, size, threads):
        special.logsumexp(self.a)


class LogsumexpNegativeMax(ThreadLimited):
    """1-D 2e7 log-probabilities (the data of Logsumexp1D shifted so that its max is -1):
    float32 then takes its exact exp throughout, where a max of 0 or more lets it take the
    coarser one (see LSE_COARSE_FLOAT32 in lsecore/_lse_blocks.h); one thread."""
    params = [DTYPES]
    param_names = ["dtype"]
    timeout = 300

    def setup(self, dtype):
        a = get_1d(20_000_000, dtype)
        self.a = a - (a.max() + 1)
        limit_threads(self, 1)

    def time_logsumexp(self, dtype):
        lsearray.logsumexp(self.a)

    def time_scipy_logsumexp(self, dtype):
        special.logsumexp(self.a)


class LogsumexpNormalizedRows(ThreadLimited):
    """Rows of log-probabilities, (20000, 1000) float64 normalized so that each row's
    log-sum-exp is 0: the max and the log of the sum cancel, so every row takes the accurate
    tier (lsecore/_lse_exact.h), where the same rows shifted by +5 (``shifted``) do not; one
    thread."""
    params = [["normalized", "shifted"]]
    param_names = ["rows"]
    timeout = 300

    def setup(self, rows):
        a = get_2d(SHAPE_ROWS)
        a = a - special.logsumexp(a, axis=1, keepdims=True)
        self.a = a if rows == "normalized" else a + 5.0
        limit_threads(self, 1)

    def time_logsumexp(self, rows):
        lsearray.logsumexp(self.a, axis=1)

    def time_scipy_logsumexp(self, rows):
        special.logsumexp(self.a, axis=1)


class Logsumexp2D(ThreadLimited):
    """Reduction of a C-order 2-D array over axis 0 or 1.

    Shapes: (20000, 1000) rows of 1000; (1_000_000, 10) many short rows (axis 1) or ten
    long strided columns (axis 0); (10, 1_000_000) a tall reduction of ten rows (axis 0)
    or ten long contiguous rows (axis 1).
    """
    params = [DTYPES, [SHAPE_ROWS, SHAPE_SHORT, SHAPE_TALL], [1, 0], THREADS]
    param_names = ["dtype", "shape", "axis", "threads"]
    timeout = 300

    def setup(self, dtype, shape, axis, threads):
        self.a = get_2d(shape, dtype)
        limit_threads(self, threads)

    def time_logsumexp(self, dtype, shape, axis, threads):
        lsearray.logsumexp(self.a, axis=axis)

    def time_scipy_logsumexp(self, dtype, shape, axis, threads):
        special.logsumexp(self.a, axis=axis)

    def peakmem_logsumexp(self, dtype, shape, axis, threads):
        lsearray.logsumexp(self.a, axis=axis)

    def peakmem_scipy_logsumexp(self, dtype, shape, axis, threads):
        special.logsumexp(self.a, axis=axis)


class LogsumexpLayout(ThreadLimited):
    """C against F order (20000, 1000) float64, over axis 0, 1 or all, with keepdims; one thread."""
    params = [["C", "F"], [1, 0, None]]
    param_names = ["order", "axis"]

    def setup(self, order, axis):
        self.a = get_2d(SHAPE_ROWS, "float64", order)
        limit_threads(self, 1)

    def time_logsumexp(self, order, axis):
        lsearray.logsumexp(self.a, axis=axis)

    def time_scipy_logsumexp(self, order, axis):
        special.logsumexp(self.a, axis=axis)

    def time_logsumexp_keepdims(self, order, axis):
        lsearray.logsumexp(self.a, axis=axis, keepdims=True)


class LogsumexpInterleaved(ThreadLimited):
    """A (2,) * 22 float64 array (4.2e6 elements) reduced over every other axis, the even or
    the odd ones: reduced and kept axes alternate in memory and no two merge, so the kernel
    reads gathered blocks (see lsecore/_layout.py); softmax and log_softmax reduce the same
    way, then normalize with NumPy. One thread. ``time_transposed_copy`` is the floor: one
    C-contiguous copy of the input with the reduced axes last.
    """
    params = [["even", "odd"]]
    param_names = ["axes"]
    timeout = 300

    def setup(self, axes):
        ndim = 22
        self.a = get_1d(2 ** ndim).reshape((2,) * ndim)
        self.axis = tuple(range(0 if axes == "even" else 1, ndim, 2))
        self.order = [k for k in range(ndim) if k not in self.axis] + list(self.axis)
        limit_threads(self, 1)

    def time_logsumexp(self, axes):
        lsearray.logsumexp(self.a, axis=self.axis)

    def time_scipy_logsumexp(self, axes):
        special.logsumexp(self.a, axis=self.axis)

    def time_transposed_copy(self, axes):
        np.ascontiguousarray(self.a.transpose(self.order))

    def time_softmax(self, axes):
        lsearray.softmax(self.a, axis=self.axis)

    def time_scipy_softmax(self, axes):
        special.softmax(self.a, axis=self.axis)

    def time_log_softmax(self, axes):
        lsearray.log_softmax(self.a, axis=self.axis)

    def time_scipy_log_softmax(self, axes):
        special.log_softmax(self.a, axis=self.axis)

    def peakmem_logsumexp(self, axes):
        lsearray.logsumexp(self.a, axis=self.axis)


class LogsumexpWeighted(ThreadLimited):
    """Weights ``b`` and ``return_sign`` on a 1-D (1e6) array and a (2000, 5000) array over axis 1.

    ``weights`` is 'none', 'positive' (b in [0.5, 1.5)) or 'signed' (b in [-1, 1), where
    ``return_sign=False`` gives nan for negative totals: that is still a valid timing).
    One thread.
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


class LogsumexpTemperature(ThreadLimited):
    """``temperature`` on a 1-D (1e6) array and a (2000, 5000) array over axis -1; one thread.

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


class Logmeanexp(ThreadLimited):
    """``logmeanexp`` of a (20000, 1000) array; scipy's recipe is ``logsumexp(a) - log(n)``."""
    params = [DTYPES, [1, 0, None], THREADS]
    param_names = ["dtype", "axis", "threads"]

    def setup(self, dtype, axis, threads):
        self.a = get_2d(SHAPE_ROWS, dtype)
        self.log_n = np.log(self.a.size if axis is None else self.a.shape[axis])
        limit_threads(self, threads)

    def time_logmeanexp(self, dtype, axis, threads):
        lsearray.logmeanexp(self.a, axis=axis)

    def time_scipy_logmeanexp(self, dtype, axis, threads):
        special.logsumexp(self.a, axis=axis) - self.log_n

    def peakmem_logmeanexp(self, dtype, axis, threads):
        lsearray.logmeanexp(self.a, axis=axis)

    def peakmem_scipy_logmeanexp(self, dtype, axis, threads):
        special.logsumexp(self.a, axis=axis) - self.log_n


class Softmax(ThreadLimited):
    """``softmax`` and ``log_softmax`` of a (20000, 1000) array over axis 1."""
    params = [DTYPES, THREADS]
    param_names = ["dtype", "threads"]
    timeout = 300

    def setup(self, dtype, threads):
        self.a = get_2d(SHAPE_ROWS, dtype)
        limit_threads(self, threads)

    def time_softmax(self, dtype, threads):
        lsearray.softmax(self.a, axis=1)

    def time_scipy_softmax(self, dtype, threads):
        special.softmax(self.a, axis=1)

    def time_log_softmax(self, dtype, threads):
        lsearray.log_softmax(self.a, axis=1)

    def time_scipy_log_softmax(self, dtype, threads):
        special.log_softmax(self.a, axis=1)

    def time_softmax_temperature(self, dtype, threads):
        lsearray.softmax(self.a, axis=1, temperature=0.5)

    def peakmem_softmax(self, dtype, threads):
        lsearray.softmax(self.a, axis=1)

    def peakmem_scipy_softmax(self, dtype, threads):
        special.softmax(self.a, axis=1)

    def peakmem_log_softmax(self, dtype, threads):
        lsearray.log_softmax(self.a, axis=1)

    def peakmem_scipy_log_softmax(self, dtype, threads):
        special.log_softmax(self.a, axis=1)


class Masked(ThreadLimited):
    """``where=`` on a (2000, 5000) array, two thirds kept, over axis 1, against the recipe
    users write by hand: the unmasked call on ``np.where(mask, a, -inf)``, a masked copy of
    ``a``, timed on the same data. One thread."""
    params = [["logsumexp", "logmeanexp", "softmax", "log_softmax", "logcumsumexp"]]
    param_names = ["func"]

    def setup(self, func):
        self.a = get_2d(SHAPE_2D)
        self.mask = np.random.default_rng(7).uniform(size=self.a.shape) < 2 / 3
        self.f = getattr(lsearray, func)
        limit_threads(self, 1)

    def time_where(self, func):
        self.f(self.a, axis=1, where=self.mask)

    def time_unmasked(self, func):
        self.f(self.a, axis=1)

    def time_masked_copy_recipe(self, func):
        self.f(np.where(self.mask, self.a, -np.inf), axis=1)

    def peakmem_where(self, func):
        self.f(self.a, axis=1, where=self.mask)

    def peakmem_masked_copy_recipe(self, func):
        self.f(np.where(self.mask, self.a, -np.inf), axis=1)
