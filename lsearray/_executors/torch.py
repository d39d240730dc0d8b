"""The torch executor: CPU tensors on the lsecore kernel, others by torch's operations."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from array_api_compat import array_namespace

from lsearray._executors import segment, torch_ops
from lsearray._executors.array_api import ArrayAPIExecutor, directed_scan
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
    """Runs calls on torch tensors: CPU tensors on the lsecore kernel where it computes
    them, everything else by torch's operations on the tensors' device.

    ``logsumexp``, ``logmeanexp``, ``softmax``, ``log_softmax`` and ``logcumsumexp`` of
    CPU tensors of float32 or float64 (float16 and bfloat16 through float32), of any
    strides, with a temperature given as a Python number, run on the kernel, which reads
    the tensors in place through NumPy views; so do weighted ``logsumexp`` calls whose
    weights are a CPU tensor of ``a``'s dtype, float32 or float64, and the unweighted
    segment functions (``segment_logsumexp``, ``segment_softmax``,
    ``segment_log_softmax``) outside function transforms. Where no gradient is
    recorded (no input requires one, or under `torch.no_grad` and
    `torch.inference_mode`), outside `torch.compile`, tracing and function transforms,
    the kernel is called at once; otherwise through the ``torch.ops.lsearray``
    operators, whose fake (meta), autograd and vmap rules let autograd, `torch.compile`,
    `torch.export` and `torch.func.vmap` see them. The gradient of ``logsumexp`` is the
    kernel's softmax, and that of ``logcumsumexp`` the kernel's scan run backwards.

    Threads: a call on 65536 elements or more runs on `torch.get_num_threads` threads,
    and the kernel's own count is restored after it; smaller calls run on one thread.

    GPU tensors, integer and complex input, temperatures given as tensors, other
    weights, forward-mode AD, `torch.func.grad`, `jvp` and the jacobians (rules the
    operators lack) and the other functions take torch's own operations, as on any array
    API library.
    """

    def logsumexp(self, a: Any, axis: Any, b: Any, keepdims: bool, return_sign: bool,
                  temperature: Any, where: Any = None) -> Any:
        if where is not None:  # masks take torch's own operations (weights of 0 and 1)
            return super().logsumexp(a, axis, b, keepdims, return_sign, temperature, where)
        if b is not None:
            pair = torch_ops.kernel_weights(a, b)
            if pair is None:
                return super().logsumexp(a, axis, b, keepdims, return_sign, temperature)
            a, b = pair
        dims, tau = torch_ops.kernel_dims(a, axis), torch_ops.kernel_tau(temperature)
        if dims is None or tau is None:
            return super().logsumexp(a, axis, b, keepdims, return_sign, temperature)
        if b is None:
            out = torch_ops.logsumexp(a, dims, keepdims, tau)
            return (out, torch_ops.sign_of(out)) if return_sign else out
        out, sign = torch_ops.logsumexp_weighted(a, b, dims, keepdims, tau)
        if return_sign:
            return out, sign
        return self.xp.where(sign < 0, math.nan, out)

    def logmeanexp(self, a: Any, axis: Any, b: Any, keepdims: bool, temperature: Any,
                   where: Any = None) -> Any:
        dims, tau = torch_ops.kernel_dims(a, axis), torch_ops.kernel_tau(temperature)
        if b is not None or where is not None or dims is None or tau is None:
            return super().logmeanexp(a, axis, b, keepdims, temperature, where)
        return torch_ops.logmeanexp(a, dims, keepdims, tau)

    def softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        dims, tau = torch_ops.kernel_dims(x, axis), torch_ops.kernel_tau(temperature)
        if dims is None or tau is None or where is not None:
            return super().softmax(x, axis, temperature, where)
        return torch_ops.softmax(x, dims, tau)

    def log_softmax(self, x: Any, axis: Any, temperature: Any, where: Any = None) -> Any:
        dims, tau = torch_ops.kernel_dims(x, axis), torch_ops.kernel_tau(temperature)
        if dims is None or tau is None or where is not None:
            return super().log_softmax(x, axis, temperature, where)
        return torch_ops.log_softmax(x, dims, tau)

    def logcumsumexp(self, a: Any, axis: Any, temperature: Any, reverse: Any = False,
                     exclusive: Any = False, where: Any = None) -> Any:
        dims, tau = torch_ops.kernel_dims(a, axis), torch_ops.kernel_tau(temperature)
        if dims is None or tau is None or type(axis) is tuple or where is not None:
            return super().logcumsumexp(a, axis, temperature, reverse, exclusive, where)
        dim = dims[0]
        if axis is None:
            a, dim = a.reshape(-1), 0
        # torch.flip and the shift around the operator: autograd, compile and vmap see
        # only differentiable torch operations besides it
        return directed_scan(lambda x: torch_ops.logcumsumexp(x, dim, tau), a, dim, reverse,
                             exclusive, self.xp)

    def exact_logsumexp(self, z: Any, axis: int) -> Any:
        # the kernel's operator, which torch.compile, export and vmap trace (the generic
        # log-sum-exp branches on values)
        return self.logsumexp(z, axis, None, True, False, 1.0)

    def gumbel(self, shape: tuple[int, ...], like: Any, rng: Any, func: str) -> Any:
        return _gumbel(shape, like, rng, func)

    def stop_gradient(self, y: Any) -> Any:
        return y.detach()

    def segment_logsumexp(self, a: Any, ids: Any, num_segments: Any, axis: Any, b: Any,
                          temperature: Any, sorted: bool, func: str) -> Any:
        tau = torch_ops.kernel_tau(temperature)
        if b is not None or tau is None or not torch_ops.segment_on_kernel(a):
            return super().segment_logsumexp(a, ids, num_segments, axis, b, temperature, sorted,
                                             func)
        p = segment.prepared(self, a, ids, num_segments, axis, None, temperature, func)
        # the axis back in place (a view): the kernel reads the tensor as NumPy's call would
        return torch_ops.segment_logsumexp(segment.restored(self.xp, p.a, p.axis), p.ids, p.k,
                                           p.axis, tau, sorted)

    def segment_normalized(self, a: Any, ids: Any, num_segments: Any, axis: Any,
                           temperature: Any, sorted: bool, func: str, log: bool) -> Any:
        tau = torch_ops.kernel_tau(temperature)
        if tau is None or not torch_ops.segment_on_kernel(a):
            return super().segment_normalized(a, ids, num_segments, axis, temperature, sorted,
                                              func, log)
        p = segment.prepared(self, a, ids, num_segments, axis, None, temperature, func)
        return torch_ops.segment_normalized(segment.restored(self.xp, p.a, p.axis), p.ids, p.k,
                                            p.axis, tau, sorted, log)

    def segment_max(self, x: Any, ids: Any, k: int) -> Any:
        import torch

        index = torch.reshape(ids, (-1,) + (1,) * (x.ndim - 1)).expand(x.shape)
        out = torch.full((k,) + tuple(x.shape[1:]), -math.inf, dtype=x.dtype, device=x.device)
        return out.scatter_reduce(0, index, x, "amax", include_self=True)

    def segment_sum(self, x: Any, ids: Any, k: int) -> Any:
        import torch

        out = torch.zeros((k,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
        return out.index_add(0, ids, x)

    def quiet(self) -> Any:
        # torch does not consult NumPy's error state, and dynamo cannot trace numpy.errstate
        return contextlib.nullcontext()

    def top_k(self, x: Any, k: int, axis: int) -> tuple[Any, Any]:
        import torch

        # one kernel, which torch.compile and vmap trace
        return tuple(torch.topk(x, k, dim=axis, largest=True, sorted=True))
