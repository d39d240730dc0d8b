"""Seeded, cached input arrays and thread limiting shared by the lsearray benchmarks."""
import functools

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # threadpoolctl is a [bench] extra; without it nothing is limited
    threadpool_limits = None

__all__ = ["DTYPES", "SEED", "SHAPE_2D", "SHAPE_ROWS", "SHAPE_SCAN", "SHAPE_SHORT", "SHAPE_TALL", "THREADS",
           "ThreadLimited", "get_1d", "get_2d", "get_b", "get_second", "limit_threads", "restore_threads"]

SEED = 20240607
SHAPE_2D = (2000, 5000)  # the weighted and temperature cases
SHAPE_ROWS = (20000, 1000)  # 2e7 elements in rows of 1000
SHAPE_SCAN = (1000, 10000)  # logcumsumexp down columns of 1000 (axis 0), along rows of 10000 (axis 1)
SHAPE_SHORT = (1_000_000, 10)  # many short rows
SHAPE_TALL = (10, 1_000_000)  # a tall reduction over axis 0
DTYPES = ["float64", "float32"]
THREADS = [1, 2]


@functools.lru_cache(maxsize=None)
def get_1d(n, dtype="float64"):
    """Standard normal values scaled by 10, length ``n``, seeded."""
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal(int(n), dtype=np.dtype(dtype).type)
    a *= 10
    return a


@functools.lru_cache(maxsize=None)
def get_2d(shape=SHAPE_2D, dtype="float64", order="C"):
    """Standard normal values scaled by 10 with ``shape``, C or F order, seeded."""
    rng = np.random.default_rng(SEED + 1)
    a = rng.standard_normal(shape, dtype=np.dtype(dtype).type)
    a *= 10
    return np.asarray(a, order=order)


@functools.lru_cache(maxsize=None)
def get_second(shape, dtype="float64"):
    """A second operand: standard normal values scaled by 10 with ``shape`` (int or tuple), seeded apart."""
    rng = np.random.default_rng(SEED + 3)
    a = rng.standard_normal(shape, dtype=np.dtype(dtype).type)
    a *= 10
    return a


@functools.lru_cache(maxsize=None)
def get_b(shape, dtype="float64", signed=False):
    """Weights in [0.5, 1.5), or in [-1, 1) when ``signed``, with ``shape``, seeded."""
    rng = np.random.default_rng(SEED + 2)
    if signed:
        b = rng.uniform(-1.0, 1.0, size=shape)
    else:
        b = rng.uniform(0.5, 1.5, size=shape)
    return b.astype(dtype)


def limit_threads(bench, n=1):
    """Limit BLAS/OpenMP pools to ``n`` threads; call from ``setup``."""
    bench._threadpool_limits = None
    if threadpool_limits is not None:
        bench._threadpool_limits = threadpool_limits(limits=n)


def restore_threads(bench):
    """Undo ``limit_threads``; call from ``teardown``."""
    limits = getattr(bench, "_threadpool_limits", None)
    if limits is not None:
        limits.restore_original_limits()
        bench._threadpool_limits = None


class ThreadLimited:
    """Mixin: ``teardown`` restores the thread limits ``setup`` set with ``limit_threads``."""

    def teardown(self, *params):
        restore_threads(self)
