"""JAX arrays on the lsecore kernel: calls XLA makes on the CPU, with exact derivatives."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from lsearray._executors import array_api_lse
from lsearray._executors.numpy import NumPyExecutor
from lsearray._executors.numpy_softmax import fused_rows
from lsecore import xla_handlers

__all__ = ["normalize", "reduce"]

_NUMPY = NumPyExecutor()


@functools.lru_cache(maxsize=None)
def _registered() -> None:
    """Register the kernel's XLA FFI handlers for the CPU, once."""
    import jax

    for name, capsule in xla_handlers().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")


def _custom_call(x: Any, target: str, shape: tuple[int, ...], tau: float) -> Any:
    """The kernel's handler ``target`` (see `lsecore.xla_handlers`) on ``x``'s last
    axis at temperature ``tau``, as an XLA custom call of result ``shape``: any batch axes
    (`jax.vmap`) reach it as leading axes, which its rows keep."""
    import jax

    _registered()
    call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, x.dtype), vmap_method="broadcast_all")
    return call(x, tau=np.float64(tau))


def _host_normalize(x: np.ndarray, tau: float, log: bool) -> np.ndarray:
    """The kernel's softmax (or log_softmax) of ``x`` over its last axis."""
    out = (_NUMPY.log_softmax if log else _NUMPY.softmax)(x, -1, tau)
    return np.asarray(out, dtype=x.dtype)


def _on_kernel(x: Any, host: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> Any:
    """``host`` run on the NumPy view of ``x`` from inside XLA's program: a callback
    that any batch axes (`jax.vmap`) reach as leading axes, which ``host``'s rows keep."""
    import jax

    return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, x.dtype), x,
                             vmap_method="broadcast_all")


@functools.lru_cache(maxsize=None)
def _reducer(tau: float, mean: bool) -> Callable[[Any], Any]:
    """The log-sum-exp (``mean``: log-mean-exp) of a float32/float64 array over its last
    axis at temperature ``tau``: the kernel on the CPU, jax.numpy elsewhere; its
    derivative is the softmax, from the result."""
    import jax
    import jax.numpy as jnp

    def generic(x: Any) -> Any:
        last = (x.ndim - 1,)
        if mean:
            return array_api_lse.logmeanexp(x, None, last, tau, jnp)[..., 0]
        return array_api_lse.logsumexp(x, None, last, tau, False, jnp)[0][..., 0]

    @jax.custom_jvp
    def rows(x: Any) -> Any:
        kernel = functools.partial(_custom_call, target="lsearray_logmeanexp" if mean
                                   else "lsearray_logsumexp", shape=x.shape[:-1], tau=tau)
        return jax.lax.platform_dependent(x, cpu=kernel, default=generic)

    @rows.defjvp
    def rows_jvp(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
        (x,), (dx,) = primals, tangents
        out = rows(x)
        top = out[..., None]
        # d out = softmax . dx, the softmax from the result (mean: out is smaller by tau log n)
        weights = jnp.exp((x - top) / tau)
        if mean:
            weights = weights / x.shape[-1]
        # a slice of -inf only is a sum of nothing: constant, no gradient
        weights = jnp.where(top == -math.inf, jnp.zeros_like(weights), weights)
        return out, jnp.sum(weights * dx, axis=-1)

    return rows


@functools.lru_cache(maxsize=None)
def _normalizer(tau: float, log: bool) -> Callable[[Any], Any]:
    """The softmax (``log``: log_softmax) of a float32/float64 array over its last axis
    at temperature ``tau``, as `_reducer` makes the log-sum-exp."""
    import jax
    import jax.numpy as jnp

    def generic(x: Any) -> Any:
        func = array_api_lse.log_softmax if log else array_api_lse.softmax
        return func(x, (x.ndim - 1,), tau, jnp)

    @jax.custom_jvp
    def rows(x: Any) -> Any:
        # The custom call runs the NumPy executor's fused rows, which batch axes (more rows)
        # keep; other shapes take the callback into it, as do rows of one element, whose
        # view batch axes change.
        n = x.shape[-1]
        if n > 1 and fused_rows((math.prod(x.shape[:-1]), n, 1)):
            kernel = functools.partial(_custom_call, target="lsearray_log_softmax" if log
                                       else "lsearray_softmax", shape=x.shape, tau=tau)
        else:
            kernel = functools.partial(_on_kernel, host=functools.partial(
                _host_normalize, tau=tau, log=log), shape=x.shape)
        return jax.lax.platform_dependent(x, cpu=kernel, default=generic)

    @rows.defjvp
    def rows_jvp(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
        (x,), (dx,) = primals, tangents
        out = rows(x)
        p = jnp.exp(out) if log else out
        # d log_softmax = (dx - softmax . dx) / tau; d softmax = softmax d log_softmax
        d = (dx - jnp.sum(p * dx, axis=-1, keepdims=True)) / tau
        return out, d if log else p * d

    return rows


def _rows(a: Any, axes: tuple[int, ...]) -> Any:
    """``a`` with its reduced ``axes`` moved last and joined into one (XLA copies only
    where the layout needs it)."""
    import jax.numpy as jnp

    kept = [k for k in range(a.ndim) if k not in axes]
    x = jnp.transpose(a, kept + list(axes))
    return jnp.reshape(x, tuple(a.shape[k] for k in kept) + (math.prod(a.shape[k] for k in axes),))


@functools.lru_cache(maxsize=None)
def _reduction(axes: tuple[int, ...], tau: float, mean: bool) -> Callable[[Any], Any]:
    """`reduce` for one set of axes, compiled once (an eager call runs it as one program)."""
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda a: jnp.expand_dims(_reducer(tau, mean)(_rows(a, axes)), axes))


@functools.lru_cache(maxsize=None)
def _normalization(axes: tuple[int, ...], tau: float, log: bool) -> Callable[[Any], Any]:
    """`normalize` for one set of axes, compiled once."""
    import jax
    import jax.numpy as jnp

    def run(a: Any) -> Any:
        order = [k for k in range(a.ndim) if k not in axes] + list(axes)
        out = _normalizer(tau, log)(_rows(a, axes))
        out = jnp.reshape(out, tuple(a.shape[k] for k in order))
        return jnp.transpose(out, np.argsort(order).tolist())

    return jax.jit(run)


def reduce(a: Any, axes: tuple[int, ...], tau: float, mean: bool) -> Any:
    """The log-sum-exp (``mean``: log-mean-exp) of the float32/float64 JAX array ``a``
    (not empty) over ``axes`` at the float temperature ``tau``, the reduced axes kept
    as size 1."""
    return _reduction(tuple(axes), float(tau), mean)(a)


def normalize(a: Any, axes: tuple[int, ...], tau: float, log: bool) -> Any:
    """The softmax (``log``: log_softmax) of the float32/float64 JAX array ``a`` (not
    empty) over ``axes`` at the float temperature ``tau``, in ``a``'s shape."""
    return _normalization(tuple(axes), float(tau), log)(a)
