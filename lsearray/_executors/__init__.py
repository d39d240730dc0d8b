"""Executors: the code that validates and runs a call on one kind of array (NumPy on lsecore, array API, dask, torch, JAX)."""

__all__: list[str] = []
