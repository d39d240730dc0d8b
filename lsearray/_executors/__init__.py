"""Executors: the code that runs a validated call on one kind of array (NumPy, array API, dask)."""

__all__: list[str] = []
