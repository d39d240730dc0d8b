"""Compiled log-sum-exp kernels over strided NumPy arrays: one-read partials, scans and pairs."""

try:
    from lsecore._kernel import build_info, finalize, max_threads, merge, set_max_threads, xla_handlers
except ModuleNotFoundError as error:
    if error.name != "lsecore._kernel":
        raise
    # Python imports the package folder of the current directory before the installed package:
    # in a source checkout that has not been built in place, the kernel is not there.
    raise ImportError(
        f"lsecore: the compiled kernel is not built in {__path__[0]}; "
        "if this is the source checkout, run Python from another directory to use the installed "
        "package, or build it in place with: pip install -e ."
    ) from None

from lsecore._layout import logaddexp, logcumsumexp, logdiffexp, reduce_finalized, reduce_partials, refine

__all__ = [
    "build_info", "finalize", "logaddexp", "logcumsumexp", "logdiffexp", "max_threads", "merge", "reduce_finalized",
    "reduce_partials", "refine", "set_max_threads", "xla_handlers",
]
