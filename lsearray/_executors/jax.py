"""The JAX executor: the array-API executor with JAX's random keys and tracing."""

from __future__ import annotations

from typing import Any

import numpy as np

from lsearray._executors.array_api import ArrayAPIExecutor
from lsearray._executors.random import is_seed, type_name

__all__ = ["JaxExecutor"]


def _gumbel(shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
    """Gumbel noise from a JAX key (``rng``: a key, a seed or None for fresh entropy)."""
    import jax

    if rng is None:
        key = jax.random.key(int(np.random.default_rng().integers(2**63)))
    elif is_seed(rng):
        key = jax.random.key(int(rng))
    elif isinstance(rng, jax.Array) and (
        jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key)
        or (rng.dtype == np.uint32 and rng.ndim == 1)
    ):
        key = rng
    else:
        raise TypeError(
            f"{func}: rng for jax logits must be a PRNG key (jax.random.key or jax.random.PRNGKey), "
            f"a seed (int) or None; got {type_name(rng)}"
        )
    return jax.random.gumbel(key, shape, like.dtype)


class JaxExecutor(ArrayAPIExecutor):
    """Runs calls on JAX arrays by jax.numpy, also while `jax.jit` traces them."""

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        return _gumbel(shape, like, rng, func)

    def readable(self, x: Any) -> bool:
        import jax

        return not isinstance(x, jax.core.Tracer)

    def stop_gradient(self, y: Any) -> Any:
        import jax

        return jax.lax.stop_gradient(y)

    def map_row_blocks(self, f: Any, a: Any, rows: int) -> Any:
        """One loop body for XLA to compile, however many rows (``lax.map`` in batches)."""
        import jax

        xp = self.xp
        out = jax.lax.map(lambda row: f(row[..., None, :]), xp.moveaxis(a, -2, 0), batch_size=rows)
        return xp.moveaxis(xp.squeeze(out, axis=-2), 0, -2)

    def when_any(self, mask: Any, compute: Any, otherwise: Any) -> Any:
        import jax

        return jax.lax.cond(self.xp.any(mask), compute, otherwise)

    def set_masked(self, full: Any, mask: Any, values: Any) -> Any:
        return full.at[mask].set(values)
