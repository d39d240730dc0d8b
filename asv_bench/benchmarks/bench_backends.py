"""asv benchmarks: lsearray on torch tensors and jax arrays beside each library's own function.

A class is skipped (``NotImplementedError`` in ``setup``, asv's way) where its library is not
installed. Every class limits the OpenMP/BLAS pools and torch to one thread; jax (XLA) has no
thread limit of its own. The ``time_*`` (lsearray) and ``time_torch_*`` / ``time_jax_*``
(the library's own function) methods of a class take the same arrays, so asv results read as
ratios: what a user of that library gains by calling lsearray instead.
"""
import lsearray

from .common import SHAPE_ROWS, ThreadLimited, get_1d, get_2d, limit_threads, restore_threads

__all__ = ["JaxJit", "TorchReductions", "TorchSmallRows"]

SMALL_ROWS = (64, 10)  # a training step's logits: a batch of rows, a few classes each


def _import(name):
    """The module ``name``, or NotImplementedError (asv skips the benchmark)."""
    try:
        return __import__(name)
    except ImportError:
        raise NotImplementedError(f"{name} is not installed") from None


class _TorchOneThread(ThreadLimited):
    """Mixin: torch limited to one thread in ``setup`` (``limit_torch``), restored in ``teardown``."""

    def limit_torch(self):
        self.torch = _import("torch")
        self._torch_threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        limit_threads(self, 1)

    def teardown(self, *params):
        self.torch.set_num_threads(self._torch_threads)
        restore_threads(self)


class TorchReductions(_TorchOneThread):
    """logsumexp, softmax and log_softmax of a float64 CPU tensor: 2e7 elements in 1-D, and
    rows of (20000, 1000) over axis 1; torch's are ``torch.logsumexp`` and ``torch.softmax``."""
    params = [["logsumexp", "softmax", "log_softmax"], ["1d", "rows"]]
    param_names = ["function", "case"]

    def setup(self, function, case):
        self.limit_torch()
        if case == "1d":
            self.t, self.axis = self.torch.from_numpy(get_1d(20_000_000)), 0
        else:
            self.t, self.axis = self.torch.from_numpy(get_2d(SHAPE_ROWS)), 1
        self.ours = getattr(lsearray, function)
        self.theirs = getattr(self.torch, function)

    def time_lsearray(self, function, case):
        self.ours(self.t, axis=self.axis)

    def time_torch(self, function, case):
        self.theirs(self.t, dim=self.axis)


class TorchSmallRows(_TorchOneThread):
    """logsumexp over the rows of a (64, 10) float64 tensor, with and without autograd: the
    cost of a call in a training loop; torch's is ``torch.logsumexp``."""
    params = [[False, True]]
    param_names = ["requires_grad"]

    def setup(self, requires_grad):
        self.limit_torch()
        self.t = self.torch.from_numpy(get_2d(SMALL_ROWS).copy()).requires_grad_(requires_grad)

    def time_logsumexp(self, requires_grad):
        lsearray.logsumexp(self.t, axis=1)

    def time_torch_logsumexp(self, requires_grad):
        self.torch.logsumexp(self.t, dim=1)


class JaxJit(ThreadLimited):
    """Jitted logsumexp and softmax of a float64 jax array (``jax_enable_x64``): 2e7 elements
    in 1-D, and rows of (20000, 1000) over axis 1; jax's are ``jax.nn.logsumexp`` and
    ``jax.nn.softmax``, jitted alike. Each call is timed to ``block_until_ready``."""
    params = [["logsumexp", "softmax"], ["1d", "rows"]]
    param_names = ["function", "case"]

    def setup(self, function, case):
        jax = _import("jax")
        jax.config.update("jax_enable_x64", True)
        limit_threads(self, 1)
        a, axis = (get_1d(20_000_000), None) if case == "1d" else (get_2d(SHAPE_ROWS), 1)
        self.x = jax.numpy.asarray(a)
        ours, theirs = getattr(lsearray, function), getattr(jax.nn, function)
        self.ours = jax.jit(lambda x: ours(x, axis=axis))
        self.theirs = jax.jit(lambda x: theirs(x, axis=axis))
        self.ours(self.x).block_until_ready()  # compile outside the timing
        self.theirs(self.x).block_until_ready()

    def time_lsearray(self, function, case):
        self.ours(self.x).block_until_ready()

    def time_jax(self, function, case):
        self.theirs(self.x).block_until_ready()
