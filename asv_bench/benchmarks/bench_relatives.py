"""asv benchmarks: lsearray logaddexp, logdiffexp, log1mexp, logcumsumexp, logmatmulexp and logeinsumexp beside numpy recipes.

Every class builds its seeded, cached input in ``setup`` (``common.py``) and limits the
OpenMP/BLAS pools to one thread with threadpoolctl; ``teardown`` restores the limits. The
``time_*`` / ``peakmem_*`` (lsearray) and ``time_numpy_*``, ``time_naive_*``, ``time_shifted_*``
(the numpy references) methods of a class run on the same data under the same limits, so asv
results read as ratios.
"""
import numpy as np

import lsearray

from .common import DTYPES, SHAPE_SCAN, ThreadLimited, get_1d, get_2d, get_second, limit_threads

__all__ = ["Logaddexp", "LogaddexpNearZero", "Logcumsumexp", "LogcumsumexpDirections", "Logdiffexp", "Logeinsumexp", "Logmatmulexp"]


def _shifted_logmatmulexp(a, b):
    """``ma + mb + log(exp(a - ma) @ exp(b - mb))``, ma the row maxima of a, mb the column maxima of b."""
    ma, mb = a.max(-1, keepdims=True), b.max(-2, keepdims=True)
    return ma + mb + np.log(np.exp(a - ma) @ np.exp(b - mb))


class Logaddexp(ThreadLimited):
    """Elementwise ``logaddexp`` of two 1-D float64 arrays; numpy's is ``np.logaddexp``."""
    params = [[1_000_000, 10_000_000]]
    param_names = ["size"]

    def setup(self, size):
        self.x1, self.x2 = get_1d(size), get_second(size)
        limit_threads(self, 1)

    def time_logaddexp(self, size):
        lsearray.logaddexp(self.x1, self.x2)

    def time_numpy_logaddexp(self, size):
        np.logaddexp(self.x1, self.x2)


class LogaddexpNearZero(ThreadLimited):
    """``logaddexp`` of log-probabilities of complementary events: each pair's result is 0 up
    to a noise of 1e-3. Near 0 the max and the log cancel, so that the vector tiers vouch for
    none of them and every pair takes the exact scalar path; numpy's is ``np.logaddexp``."""
    params = [[1_000_000]]
    param_names = ["size"]

    def setup(self, size):
        rng = np.random.default_rng(11)
        self.x1 = rng.uniform(-np.log(2.0), 0.0, size)
        self.x2 = np.log(-np.expm1(self.x1)) + rng.normal(0.0, 1e-3, size)
        limit_threads(self, 1)

    def time_logaddexp(self, size):
        lsearray.logaddexp(self.x1, self.x2)

    def time_numpy_logaddexp(self, size):
        np.logaddexp(self.x1, self.x2)


class Logdiffexp(ThreadLimited):
    """Elementwise ``logdiffexp`` of two 1-D float64 arrays (x1 >= x2) and ``log1mexp`` of their
    difference; numpy's recipe is Maechler's switch on ``np.expm1`` / ``np.log1p``."""
    params = [[1_000_000, 10_000_000]]
    param_names = ["size"]

    def setup(self, size):
        x1, x2 = get_1d(size), get_second(size)
        self.x1, self.x2 = np.maximum(x1, x2), np.minimum(x1, x2)
        self.z = self.x2 - self.x1
        limit_threads(self, 1)

    def time_logdiffexp(self, size):
        lsearray.logdiffexp(self.x1, self.x2)

    def time_log1mexp(self, size):
        lsearray.log1mexp(self.z)

    def time_numpy_log1mexp(self, size):
        z = self.z
        with np.errstate(divide="ignore"):
            np.where(z > -np.log(2.0), np.log(-np.expm1(z)), np.log1p(-np.exp(z)))


class Logcumsumexp(ThreadLimited):
    """Running log-sum-exp of a 1-D (1e7) array and of a (1000, 10000) array along axis 0 or 1.

    numpy's is ``np.logaddexp.accumulate``, one sequential ``logaddexp`` per element.
    """
    params = [DTYPES, ["1d", "2d-axis0", "2d-axis1"]]
    param_names = ["dtype", "case"]

    def setup(self, dtype, case):
        if case == "1d":
            self.a, self.axis = get_1d(10_000_000, dtype), 0
        else:
            self.a, self.axis = get_2d(SHAPE_SCAN, dtype), int(case.removeprefix("2d-axis"))
        limit_threads(self, 1)

    def time_logcumsumexp(self, dtype, case):
        lsearray.logcumsumexp(self.a, axis=self.axis)

    def time_numpy_logcumsumexp(self, dtype, case):
        np.logaddexp.accumulate(self.a, axis=self.axis)


class LogcumsumexpDirections(ThreadLimited):
    """``logcumsumexp`` with ``reverse`` and ``exclusive``, float64, in the cases of `Logcumsumexp`.

    The reverse scan reads a flipped view (the same time as the forward scan, or a regression);
    the exclusive one adds a shifted copy of the result. numpy's is ``np.logaddexp.accumulate``
    of the flipped view (reverse) or of the data behind a -inf slice (exclusive).
    """
    params = [["reverse", "exclusive", "reverse-exclusive"], ["1d", "2d-axis0", "2d-axis1"]]
    param_names = ["direction", "case"]

    def setup(self, direction, case):
        if case == "1d":
            self.a, self.axis = get_1d(10_000_000), 0
        else:
            self.a, self.axis = get_2d(SHAPE_SCAN), int(case.removeprefix("2d-axis"))
        self.reverse, self.exclusive = "reverse" in direction, "exclusive" in direction
        limit_threads(self, 1)

    def time_logcumsumexp(self, direction, case):
        lsearray.logcumsumexp(self.a, axis=self.axis, reverse=self.reverse, exclusive=self.exclusive)

    def time_numpy_logcumsumexp(self, direction, case):
        a = np.flip(self.a, self.axis) if self.reverse else self.a
        if self.exclusive:
            empty = np.full_like(np.take(a, [0], axis=self.axis), -np.inf)
            a = np.concatenate([empty, np.delete(a, -1, axis=self.axis)], axis=self.axis)
        out = np.logaddexp.accumulate(a, axis=self.axis)
        return np.flip(out, self.axis) if self.reverse else out


class Logmatmulexp(ThreadLimited):
    """``logmatmulexp`` of two (n, n) float64 arrays; one BLAS thread.

    The references: the naive ``log(exp(a) @ exp(b))`` (which overflows beyond about 700) and
    the shifted one-shot ``ma + mb + log(exp(a - ma) @ exp(b - mb))`` (which underflows where
    the maxima of a row and a column sit at different k).
    """
    params = [[500, 2000]]
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        self.a, self.b = get_2d((n, n)), get_second((n, n))
        limit_threads(self, 1)

    def time_logmatmulexp(self, n):
        lsearray.logmatmulexp(self.a, self.b)

    def time_naive_logmatmulexp(self, n):
        np.log(np.exp(self.a) @ np.exp(self.b))

    def time_shifted_logmatmulexp(self, n):
        _shifted_logmatmulexp(self.a, self.b)

    def peakmem_logmatmulexp(self, n):
        lsearray.logmatmulexp(self.a, self.b)

    def peakmem_naive_logmatmulexp(self, n):
        np.log(np.exp(self.a) @ np.exp(self.b))

    def peakmem_shifted_logmatmulexp(self, n):
        _shifted_logmatmulexp(self.a, self.b)


def _chain(length):
    """The subscripts of a batch (z) of linear chains of ``length`` pairwise potentials,
    summed over every state: ``"zab,zbc,...->z"``."""
    states = "abcdefghijklmnopqrstuvwxy"[:length + 1]
    return ",".join(f"z{s}{t}" for s, t in zip(states, states[1:])) + "->z"


class Logeinsumexp(ThreadLimited):
    """``logeinsumexp`` of the log partition functions of a batch of 16 linear-chain CRFs (a
    (16, k, k) potential per link, 12 links); one BLAS thread.

    The reference: the naive ``log(einsum(exp(...)))`` along numpy's optimized path
    (``optimize=True``; the unoptimized loop over every index at once would not finish),
    which overflows once the potentials' sums pass about 700.
    """
    params = [[16, 64]]
    param_names = ["k"]
    timeout = 300

    def setup(self, k):
        links = 12
        x = get_2d((16 * links, k * k)) / 10
        self.subscripts = _chain(links)
        self.operands = [x[16 * t:16 * (t + 1)].reshape(16, k, k) for t in range(links)]
        limit_threads(self, 1)

    def time_logeinsumexp(self, k):
        lsearray.logeinsumexp(self.subscripts, *self.operands)

    def time_naive_logeinsumexp(self, k):
        with np.errstate(over="ignore"):
            np.log(np.einsum(self.subscripts, *[np.exp(x) for x in self.operands], optimize=True))
