"""Which executor runs a call: the one place where array libraries (and the kernel) are told apart."""

from __future__ import annotations

import sys
from typing import Any, Union

import numpy as np
from array_api_compat import (
    array_namespace, is_array_api_obj, is_dask_array, is_dask_namespace, is_jax_namespace,
    is_numpy_namespace, is_torch_namespace,
)

from lsearray._executors.array_api import ArrayAPIExecutor
from lsearray._executors.numpy import NumPyExecutor

__all__ = ["Executor", "executor"]

Executor = Union[NumPyExecutor, ArrayAPIExecutor]

_NUMPY = NumPyExecutor()


def _is_real_ndarray(x: Any) -> bool:
    """Whether ``x`` is a plain (not subclassed) NumPy array of a non-complex dtype."""
    return type(x) is np.ndarray and x.dtype.kind != "c"


def executor(*xs: Any, func: str = "lsearray") -> Executor:
    """The executor for a call on the array arguments ``xs`` (None for an absent one).

    Lists, Python scalars and real NumPy arrays go to the NumPy executor (the lsecore
    kernel); complex NumPy input to the array-API executor with NumPy's namespace; dask
    arrays (NumPy arrays beside them join them, as in dask's own reductions) to the
    dask executor; torch and JAX arrays to executors with their libraries' random
    numbers and tracing; the arrays of any other array API library to the array-API
    executor with their namespace. Arrays of two libraries raise TypeError, prefixed by
    ``func``, the public function's name.

    Examples
    --------
    >>> import numpy as np
    >>> type(executor(np.ones(3), None)).__name__
    'NumPyExecutor'
    >>> executor(np.ones(3, dtype=complex)).xp.__name__
    'array_api_compat.numpy'
    """
    if all(x is None or _is_real_ndarray(x) for x in xs):  # the common case, quickly
        return _NUMPY
    torch = sys.modules.get("torch")  # torch tensors, quickly: torch is imported if there are any
    if torch is not None and all(x is None or isinstance(x, torch.Tensor) for x in xs):
        return _torch_executor()
    arrays = [x for x in xs if x is not None and is_array_api_obj(x)]
    plain = [x for x in xs if x is not None and (isinstance(x, np.ndarray) or not is_array_api_obj(x))]
    complex_ = any(np.iscomplexobj(x) for x in plain)
    if not arrays:
        return _executor_of_namespace(array_namespace(np.empty(0))) if complex_ else _NUMPY
    if any(is_dask_array(x) for x in arrays):
        arrays = [x for x in arrays if not isinstance(x, np.ndarray)]
    try:
        xp = array_namespace(*arrays)
    except TypeError:
        kinds = ", ".join(sorted({type(x).__module__ + "." + type(x).__name__ for x in arrays}))
        raise TypeError(f"{func}: arrays of one library expected; got a mix of {kinds}") from None
    if is_numpy_namespace(xp) and not complex_:
        return _NUMPY
    return _executor_of_namespace(xp)


_TORCH: list[Executor] = []  # the torch executor, once made


def _torch_executor() -> Executor:
    """The executor for torch tensors (its module imports torch: made when first needed)."""
    if not _TORCH:
        from array_api_compat import torch as torch_namespace

        from lsearray._executors.torch import TorchExecutor

        _TORCH.append(TorchExecutor(torch_namespace))
    return _TORCH[0]


def _executor_of_namespace(xp: Any) -> Executor:
    """The executor for arrays of the array API namespace ``xp``. The dask executor is
    imported here, when first needed: dask is an optional dependency (torch's and JAX's
    executors import their libraries only inside their methods, and follow suit)."""
    if is_numpy_namespace(xp):
        return ArrayAPIExecutor(xp)
    if is_dask_namespace(xp):
        from lsearray._executors.dask import DaskExecutor

        return DaskExecutor(xp)
    if is_torch_namespace(xp):
        return _torch_executor()
    if is_jax_namespace(xp):
        from lsearray._executors.jax import JaxExecutor

        return JaxExecutor(xp)
    return ArrayAPIExecutor(xp)
