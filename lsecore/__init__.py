"""Compiled log-sum-exp kernels: one-read (max, scaled-sum) partials of strided NumPy arrays."""

from lsecore._kernel import finalize, max_threads, merge
from lsecore._layout import reduce_finalized, reduce_partials

__all__ = ["finalize", "max_threads", "merge", "reduce_finalized", "reduce_partials"]
