"""The torch executor: the array-API executor with torch's random numbers and autograd."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from lsearray._executors.array_api import ArrayAPIExecutor
from lsearray._executors.random import from_uniform, is_seed, type_name

__all__ = ["TorchExecutor"]


def _gumbel(shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
    """Gumbel noise from torch's generator (``rng``: a torch.Generator, a seed or None)."""
    import torch

    if rng is None or isinstance(rng, torch.Generator):
        generator = rng
    elif is_seed(rng):
        generator = torch.Generator(device=like.device).manual_seed(int(rng))
    else:
        raise TypeError(
            f"{func}: rng for torch logits must be a torch.Generator, a seed (int) or None; "
            f"got {type_name(rng)}"
        )
    if generator is not None and generator.device.type != like.device.type:
        raise ValueError(
            f"{func}: rng is a torch.Generator on {generator.device} but the logits are on {like.device}"
        )
    u = torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)
    return from_uniform(u, array_namespace(u))


class TorchExecutor(ArrayAPIExecutor):
    """Runs calls on torch tensors by torch's operations, on their device."""

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        return _gumbel(shape, like, rng, func)

    def stop_gradient(self, y: Any) -> Any:
        return y.detach()
