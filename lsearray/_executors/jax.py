"""The JAX executor: the array-API executor with JAX's random keys and tracing, and the kernel on the CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from lsearray._executors import array_api_lse, jax_kernel
from lsearray._executors.array_api import ArrayAPIExecutor
from lsearray._executors.random import is_seed, type_name
from lsearray._validation import Prepared

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


def _on_kernel(p: Prepared, compute: Any) -> bool:
    """Whether the kernel computes a call prepared as ``p`` (in the dtype ``compute``):
    real float32/float64 input that is not empty, a float temperature, no weights, no mask."""
    import jax.numpy as jnp

    return (p.b is None and p.where is None and isinstance(p.tau, float) and compute in (jnp.float32, jnp.float64)
            and p.a.size > 0)


class JaxExecutor(ArrayAPIExecutor):
    """Runs calls on JAX arrays by jax.numpy, also while `jax.jit` traces them; the
    unweighted log-sum-exp family reaches the lsecore kernel on the CPU
    (`jax_kernel`)."""

    def logsumexp(self, a: Any, axis: Any, b: Any, keepdims: bool, return_sign: bool,
                  temperature: Any, where: Any = None) -> Any:
        if return_sign:
            return super().logsumexp(a, axis, b, keepdims, return_sign, temperature, where)
        return self._reduce(a, axis, b, keepdims, temperature, "logsumexp", where)

    def logmeanexp(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                   where: Any = None) -> Any:
        return self._reduce(a, axis, b, keepdims, temperature, "logmeanexp", where)

    def _reduce(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                func: str, where: Any = None) -> Any:
        p, compute = self.prepare(a, b, axis, temperature, func, where)
        if not _on_kernel(p, compute):
            if func == "logmeanexp":
                return super().logmeanexp(a, axis, b, keepdims, temperature, where)
            return super().logsumexp(a, axis, b, keepdims, False, temperature, where)
        out = jax_kernel.reduce(p.a, p.axes, p.tau, mean=func == "logmeanexp")
        return array_api_lse.shaped(out, p.axes, keepdims, p.dtype, self.xp)

    def softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return self._normalized_on_kernel(x, axis, temperature, "softmax", where)

    def log_softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        return self._normalized_on_kernel(x, axis, temperature, "log_softmax", where)

    def _normalized_on_kernel(self, x: Any, axis: Any, temperature: Any, func: str,
                              where: Any = None) -> Any:
        p, compute = self.prepare(x, None, axis, temperature, func, where)
        if not _on_kernel(p, compute):
            return self._normalized(x, axis, temperature, func, where)
        out = jax_kernel.normalize(p.a, p.axes, p.tau, log=func == "log_softmax")
        out = self.xp.reshape(out, p.shape)
        return array_api_lse.shaped(out, (), True, p.dtype, self.xp)

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        return _gumbel(shape, like, rng, func)

    def readable(self, x: Any) -> bool:
        import jax

        return not isinstance(x, jax.core.Tracer)

    def stop_gradient(self, y: Any) -> Any:
        import jax

        return jax.lax.stop_gradient(y)

    def segment_max(self, x: Any, ids: Any, k: int) -> Any:
        import jax

        # k static, as jit needs; ids out of [0, k) are dropped (they cannot be checked traced)
        return jax.ops.segment_max(x, ids, num_segments=k)

    def segment_sum(self, x: Any, ids: Any, k: int) -> Any:
        import jax

        return jax.ops.segment_sum(x, ids, num_segments=k)

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

    def top_k(self, x: Any, k: int, axis: int) -> tuple[Any, Any]:
        import jax

        # lax.top_k selects along the last axis; k is static, as jit needs
        xp = self.xp
        values, index = jax.lax.top_k(xp.moveaxis(x, axis, -1), k)
        return xp.moveaxis(values, -1, axis), xp.moveaxis(index, -1, axis)
