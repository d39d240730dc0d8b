"""Suite-wide pytest configuration: doctests of optional modules, and a short summary of skips."""

import collections
import importlib.util
import re

__all__ = ["collect_ignore", "pytest_terminal_summary"]

# Modules about an optional library import it: their doctests are collected where it, and what
# their examples use, is installed.
_NEEDS = {
    "lsearray/dask.py": ("dask",),
    "lsearray/_executors/dask.py": ("dask",),
    "lsearray/_executors/torch.py": ("torch",),
    "lsearray/_executors/torch_ops.py": ("torch",),
    "lsearray/xarray.py": ("flox", "xarray", "dask"),
}
collect_ignore = [path for path, libs in _NEEDS.items()
                  if any(importlib.util.find_spec(lib) is None for lib in libs)]

_MISSING = re.compile(r"could not import '([\w.]+)'")


def _reason(report):
    """Why a test was skipped, with every 'could not import X' folded into 'X is not installed'."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    missing = _MISSING.search(reason)
    return f"{missing[1]} is not installed" if missing else reason


def pytest_terminal_summary(terminalreporter):
    """One line per reason for skipping, with its count, in place of one line per skipping test
    (addopts has no 's' in -r): which backends and extras were missing is said once."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts = collections.Counter(_reason(report) for report in skipped)
    terminalreporter.section(f"{len(skipped)} skipped, by reason")
    for reason, count in counts.most_common():
        terminalreporter.write_line(f"{count:6d}  {reason}")
