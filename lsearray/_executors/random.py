"""Gumbel noise from uniform draws, and the checks of the ``rng`` arguments every library shares."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of

__all__ = ["from_uniform", "is_seed", "numpy_generator", "type_name"]


def numpy_generator(rng: Any, kind: str, func: str) -> np.random.Generator:
    """A NumPy Generator from anything `numpy.random.default_rng` accepts."""
    try:
        return np.random.default_rng(rng)
    except TypeError:
        raise TypeError(
            f"{func}: rng for {kind} logits must be a numpy.random.Generator, a seed (int) or None; "
            f"got {type_name(rng)}"
        ) from None


def from_uniform(u: Any, xp: ModuleType) -> Any:
    """``-log(-log(u))`` with ``u`` moved from [0, 1) into [tiny, 1), so never infinite."""
    u = xp.maximum(u, xp.asarray(xp.finfo(u.dtype).smallest_normal, dtype=u.dtype, device=device_of(u)))
    return -xp.log(-xp.log(u))


def type_name(x: Any) -> str:
    """``x``'s type as ``module.QualName``, for messages."""
    return f"{type(x).__module__}.{type(x).__qualname__}"


def is_seed(x: Any) -> bool:
    """Whether ``x`` is an integer seed (bool is not one)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
