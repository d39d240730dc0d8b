"""Compiled log-sum-exp kernels over strided NumPy arrays: one-read partials, scans and pairs."""

from lsecore._kernel import finalize, max_threads, merge
from lsecore._layout import logaddexp, logcumsumexp, reduce_finalized, reduce_partials, refine

__all__ = [
    "finalize", "logaddexp", "logcumsumexp", "max_threads", "merge", "reduce_finalized", "reduce_partials",
    "refine",
]
