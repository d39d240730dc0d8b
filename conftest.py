"""Doctest collection: the dask modules' examples need dask, an optional extra."""

import importlib.util

__all__ = ["collect_ignore"]

collect_ignore = [] if importlib.util.find_spec("dask") else ["lsearray/dask.py"]
