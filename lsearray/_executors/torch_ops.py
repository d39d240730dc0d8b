"""CPU torch tensors on the lsecore kernel: torch.library operators with fake, autograd and vmap rules."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import lsecore
from lsearray._executors import numpy_segment
from lsearray._executors.numpy import NumPyExecutor

__all__ = [
    "is_concrete", "is_direct", "kernel_dims", "kernel_tau", "kernel_weights", "log_softmax",
    "logcumsumexp", "logmeanexp", "logsumexp", "logsumexp_weighted", "segment_logsumexp",
    "segment_normalized", "segment_on_kernel", "sign_of", "softmax",
]

_NUMPY = NumPyExecutor()
# The dtypes the kernel reads through a NumPy view (float16 it computes in float32), and
# bfloat16, which NumPy lacks, widened to float32 first.
_READ = (torch.float32, torch.float64, torch.float16)
_FLOATS = _READ + (torch.bfloat16,)
# Below this many elements the kernel runs on one thread (lsecore's MIN_PARALLEL).
_ONE_THREAD = 1 << 16

_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_VMAP = torch._C._functorch.TransformType.Vmap
_dispatch_modes = torch._C._len_torch_dispatch_stack
_forward_ad = torch.autograd.forward_ad


def _untransformed(t: torch.Tensor) -> bool:
    """Whether no function transform but vmap sees ``t``, and no forward-mode dual level
    is open: the operators' gradients are backward autograd's only (torch.func.grad, jvp,
    the jacobians and dual tensors take the generic path)."""
    if _forward_ad._current_level >= 0:
        return False
    if torch.compiler.is_compiling() or not _is_wrapped(t):  # dynamo handles its transforms
        return True
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

    return all(i.key() == _VMAP for i in retrieve_all_functorch_interpreters())


def kernel_dims(a: Any, axis: Any) -> list[int] | None:
    """The normalized reduced dimensions of ``a`` when it is a dense CPU tensor of a
    floating dtype the kernel computes in, at least 1-d, under no transform but vmap, and ``axis``
    is None, an int or a tuple of distinct ints in range; None otherwise (the generic path
    then validates and computes)."""
    if (not isinstance(a, torch.Tensor) or not a.is_cpu or a.dtype not in _FLOATS
            or a.layout is not torch.strided or not _untransformed(a)):
        return None
    ndim = a.dim()
    if ndim == 0:
        return None
    if axis is None:
        return list(range(ndim))
    items = axis if type(axis) is tuple else (axis,)
    dims = []
    for k in items:
        if type(k) is not int or not -ndim <= k < ndim:
            return None
        dims.append(k % ndim)
    return dims if len(set(dims)) == len(dims) else None


def kernel_tau(temperature: Any) -> float | None:
    """``temperature`` as a float when it is a Python number the kernel takes as it is
    (positive, finite and normal); None for anything else, a tensor among them."""
    if type(temperature) not in (int, float):
        return None
    tau = float(temperature)
    # comparisons rather than math.isfinite, which dynamo does not fold (nan fails them)
    return tau if sys.float_info.min <= tau <= sys.float_info.max else None


def kernel_weights(a: Any, b: Any) -> tuple[Any, Any] | None:
    """``a`` and ``b`` broadcast together (views, no copies) when ``b`` is a dense CPU
    tensor of ``a``'s dtype, float32 or float64, and the shapes broadcast; None otherwise."""
    if (not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or b.dtype != a.dtype
            or a.dtype not in (torch.float32, torch.float64) or not b.is_cpu
            or b.layout is not torch.strided or not _untransformed(b)):
        return None
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        return None
    return a.expand(shape), b.expand(shape)


def segment_on_kernel(a: Any) -> bool:
    """Whether the segment operators take ``a``: a dense CPU tensor of a floating dtype
    the kernel computes in, at least 1-d, under no function transform (they have no vmap
    rule)."""
    return (isinstance(a, torch.Tensor) and a.is_cpu and a.dtype in _FLOATS
            and a.layout is torch.strided and a.dim() > 0 and _untransformed(a)
            and (torch.compiler.is_compiling() or not _is_wrapped(a)))


def is_direct(a: torch.Tensor, b: torch.Tensor | None = None) -> bool:
    """Whether the kernel may run on ``a`` (and ``b``) right away, outside torch's
    dispatcher: plain tensors (no subclass, which may dispatch on its own) in eager mode,
    with no gradient to record, no transform (vmap, grad) wrapping them and no dispatch
    mode (fake tensors, tracing) active. Otherwise the operators run, which autograd, the
    compilers, export and vmap understand."""
    if torch.is_grad_enabled() and (a.requires_grad or (b is not None and b.requires_grad)):
        return False
    if type(a) is not torch.Tensor or (b is not None and type(b) is not torch.Tensor):
        return False
    return is_concrete(a) and (b is None or not _is_wrapped(b))


def is_concrete(t: torch.Tensor) -> bool:
    """Whether the values of ``t`` exist now: a plain or autograd-tracked tensor in eager
    mode, not one that the compilers, export (dispatch modes) or a function transform
    stand in for."""
    return not (torch.compiler.is_compiling() or _dispatch_modes() or _is_wrapped(t))


def sign_of(out: torch.Tensor) -> torch.Tensor:
    """The sign of an unweighted sum from its log ``out``: 1, 0 where ``out`` is -inf
    (an empty or all -inf slice), nan where it is nan."""
    out = out.detach()
    sign = (out > -math.inf).to(out.dtype)
    return torch.where(torch.isnan(out), out, sign)


def _array(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of ``t`` (a float32 copy for bfloat16, which NumPy lacks)."""
    if t.requires_grad:
        t = t.detach()
    return (t if t.dtype in _READ else t.float()).numpy()


def _tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
    """A kernel result (a new array, or a NumPy scalar) as a tensor of ``dtype``."""
    out = torch.from_numpy(np.asarray(x))
    return out if out.dtype == dtype else out.to(dtype)


def _reversed(a: torch.Tensor) -> tuple[int, ...]:
    """The permutation that reverses ``a``'s dimensions."""
    return tuple(range(a.dim() - 1, -1, -1))


def _fortran(a: torch.Tensor) -> bool:
    """Whether ``a`` is laid out in Fortran's order (a transposed tensor), not C's."""
    return a.dim() > 1 and not a.is_contiguous() and a.permute(_reversed(a)).is_contiguous()


def _empty_like(a: torch.Tensor) -> torch.Tensor:
    """An empty tensor of ``a``'s shape laid out as softmax's results are: in Fortran's
    order for an input in Fortran's order (the kernel writes it so), else in C's."""
    if _fortran(a):
        return a.new_empty([a.shape[k] for k in _reversed(a)]).permute(_reversed(a))
    return a.new_empty(a.shape)


def _laid_out(out: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``out``, softmax's result on ``a``, in `_empty_like`'s layout (which the fake
    implementation promises): copied only where the kernel wrote another layout, for
    inputs with other strides."""
    if _fortran(a) == _fortran(out) and (out.is_contiguous() or _fortran(out)):
        return out
    return _empty_like(a).copy_(out)


def _on_kernel(size: int, call: Callable[[], Any]) -> Any:
    """``call()``, with the kernel's threads set to torch's for the inputs large enough to
    be split between threads, so that a call from torch follows `torch.set_num_threads`."""
    if size < _ONE_THREAD:
        return call()
    previous = lsecore.set_max_threads(torch.get_num_threads())
    try:
        return call()
    finally:
        lsecore.set_max_threads(previous)


def _reduce_impl(method: str) -> Callable[..., torch.Tensor]:
    """The CPU implementation of the reduction ``method`` of the NumPy executor."""
    def impl(a: torch.Tensor, dim: Sequence[int], keepdim: bool, tau: float) -> torch.Tensor:
        x = _array(a)
        if method == "logsumexp":
            out = _on_kernel(a.numel(), lambda: _NUMPY.logsumexp(x, tuple(dim), None, keepdim, False, tau))
        else:
            out = _on_kernel(a.numel(), lambda: _NUMPY.logmeanexp(x, tuple(dim), None, keepdim, tau))
        return _tensor(out, a.dtype).contiguous()  # a copy only for results of strided input
    return impl


def _normalize_impl(method: str) -> Callable[..., torch.Tensor]:
    """The CPU implementation of ``softmax`` or ``log_softmax`` of the NumPy executor."""
    def impl(a: torch.Tensor, dim: Sequence[int], tau: float) -> torch.Tensor:
        x = _array(a)
        out = _on_kernel(a.numel(), lambda: getattr(_NUMPY, method)(x, tuple(dim), tau))
        return _laid_out(_tensor(out, a.dtype), a)
    return impl


def _weighted_impl(a: torch.Tensor, b: torch.Tensor, dim: Sequence[int], keepdim: bool,
                   tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log|s|, sign s)`` of the weighted sum ``s``, on the kernel."""
    x, w = _array(a), _array(b)
    out, sign = _on_kernel(a.numel(), lambda: _NUMPY.logsumexp(x, tuple(dim), w, keepdim, True, tau))
    return _tensor(out, a.dtype).contiguous(), _tensor(sign, a.dtype).contiguous()


def _scan_impl(a: torch.Tensor, dim: int, tau: float) -> torch.Tensor:
    """The running log-sum-exp along ``dim``, on the kernel."""
    x = _array(a)
    out = _on_kernel(a.numel(), lambda: _NUMPY.logcumsumexp(x, dim, tau))
    return _tensor(out, a.dtype).contiguous()  # a copy only for results of strided input


def _kernel_input(a: torch.Tensor) -> np.ndarray:
    """``a`` as the segment loops read it: a NumPy view, float16 widened to float32."""
    x = _array(a)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _index(ids: torch.Tensor) -> np.ndarray:
    """Segment ids (checked by the caller) as the kernel reads them: C-contiguous intp."""
    return np.ascontiguousarray(ids.numpy(), dtype=np.intp)


def _segment_impl(a: torch.Tensor, ids: torch.Tensor, k: int, dim: int, tau: float,
                  sorted: bool) -> torch.Tensor:
    """The log-sum-exp of each of ``k`` segments of ``a``'s dimension ``dim``, on the kernel."""
    x, i = _kernel_input(a), _index(ids)
    out = _on_kernel(a.numel(), lambda: numpy_segment.logsumexp(x, i, k, dim, None, tau, sorted))
    return _tensor(out, a.dtype).contiguous()


def _segment_normalize_impl(log: bool) -> Callable[..., torch.Tensor]:
    """The CPU implementation of softmax (log_softmax) within segments, on the kernel."""
    def impl(a: torch.Tensor, ids: torch.Tensor, k: int, dim: int, tau: float,
             sorted: bool) -> torch.Tensor:
        x, i = _kernel_input(a), _index(ids)
        out = _on_kernel(a.numel(), lambda: numpy_segment.normalized(x, i, k, dim, tau, sorted, log))
        return _tensor(out, a.dtype).contiguous()
    return impl


def _reduced_shape(a: torch.Tensor, dim: Sequence[int], keepdim: bool) -> list[Any]:
    """The shape of a reduction of ``a`` over ``dim``."""
    if keepdim:
        return [1 if k in dim else n for k, n in enumerate(a.shape)]
    return [n for k, n in enumerate(a.shape) if k not in dim]


def _kept(x: torch.Tensor, dim: Sequence[int], keepdim: bool) -> torch.Tensor:
    """A reduction's result (or gradient) with its reduced dimensions back, of size one."""
    if keepdim:
        return x
    for k in sorted(dim):
        x = x.unsqueeze(k)
    return x


_LIB = torch.library.Library("lsearray", "DEF")
_LIB.define("logsumexp(Tensor a, int[] dim, bool keepdim, float tau) -> Tensor")
_LIB.define("logmeanexp(Tensor a, int[] dim, bool keepdim, float tau) -> Tensor")
_LIB.define("softmax(Tensor a, int[] dim, float tau) -> Tensor")
_LIB.define("log_softmax(Tensor a, int[] dim, float tau) -> Tensor")
_LIB.define("logsumexp_weighted(Tensor a, Tensor b, int[] dim, bool keepdim, float tau) -> (Tensor, Tensor)")
_LIB.define("logcumsumexp(Tensor a, int dim, float tau) -> Tensor")
for _name in ("segment_logsumexp", "segment_softmax", "segment_log_softmax"):
    _LIB.define(f"{_name}(Tensor a, Tensor ids, int k, int dim, float tau, bool sorted) -> Tensor")
_IMPL = {
    "logsumexp": _reduce_impl("logsumexp"), "logmeanexp": _reduce_impl("logmeanexp"),
    "softmax": _normalize_impl("softmax"), "log_softmax": _normalize_impl("log_softmax"),
    "logsumexp_weighted": _weighted_impl, "logcumsumexp": _scan_impl,
    "segment_logsumexp": _segment_impl, "segment_softmax": _segment_normalize_impl(False),
    "segment_log_softmax": _segment_normalize_impl(True),
}
for _name, _impl in _IMPL.items():
    _LIB.impl(_name, _impl, "CPU")
_OPS = torch.ops.lsearray


def _reduce_fake(a: torch.Tensor, dim: Sequence[int], keepdim: bool, tau: float) -> torch.Tensor:
    """A reduction's result, as the CPU implementation lays it out (C-contiguous)."""
    return a.new_empty(_reduced_shape(a, dim, keepdim))


def _normalize_fake(a: torch.Tensor, dim: Sequence[int], tau: float) -> torch.Tensor:
    """softmax's (log_softmax's) result, laid out as `_empty_like` says."""
    return _empty_like(a)


def _weighted_fake(a: torch.Tensor, b: torch.Tensor, dim: Sequence[int], keepdim: bool,
                   tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted reduction's ``(log|s|, sign s)``, C-contiguous."""
    shape = _reduced_shape(a, dim, keepdim)
    return a.new_empty(shape), a.new_empty(shape)


for _name in ("logsumexp", "logmeanexp"):
    torch.library.register_fake(f"lsearray::{_name}", _reduce_fake, lib=_LIB)
for _name in ("softmax", "log_softmax"):
    torch.library.register_fake(f"lsearray::{_name}", _normalize_fake, lib=_LIB)
torch.library.register_fake("lsearray::logsumexp_weighted", _weighted_fake, lib=_LIB)
torch.library.register_fake("lsearray::logcumsumexp", lambda a, dim, tau: a.new_empty(a.shape), lib=_LIB)


def _segment_fake(a: torch.Tensor, ids: torch.Tensor, k: int, dim: int, tau: float,
                  sorted: bool) -> torch.Tensor:
    """The segments' log-sum-exps: ``a``'s shape with ``dim`` of length ``k``, C-contiguous."""
    return a.new_empty([k if j == dim else n for j, n in enumerate(a.shape)])


torch.library.register_fake("lsearray::segment_logsumexp", _segment_fake, lib=_LIB)
for _name in ("segment_softmax", "segment_log_softmax"):
    torch.library.register_fake(f"lsearray::{_name}",
                                lambda a, ids, k, dim, tau, sorted: a.new_empty(a.shape), lib=_LIB)


# Gradients. d/da tau log sum exp(a / tau) = softmax(a / tau), for the mean too; it is the
# softmax operator's, so the kernel computes it, and its own gradient gives the second
# derivative. As on the array-API path, a slice whose max is -inf (all -inf, or empty)
# has gradient 0, not the nan of 0 / 0, and in a slice whose max is +inf only the +inf
# elements get one (nan): the others' is 0.

def _without_infinite_slices(g: torch.Tensor, a: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """``g``, a gradient with respect to ``a``, zero where the slice's max ``top`` (kept
    dimensions, or a result that is infinite exactly where the max is) is -inf, and where
    it is +inf but for the +inf elements."""
    if is_concrete(top) and bool(torch.isfinite(top).all()):  # eager, and nothing to mask
        return g
    zero = (top == -math.inf) | ((top == math.inf) & (a != math.inf))
    return torch.where(zero, 0.0, g)


def _setup_reduce(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    a, ctx.dim, ctx.keepdim, ctx.tau = inputs
    ctx.save_for_backward(a, output)


def _reduce_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    a, out = ctx.saved_tensors
    weights = softmax(a, ctx.dim, ctx.tau)  # on the kernel at once unless a graph is recorded
    g = _kept(grad, ctx.dim, ctx.keepdim) * weights
    return _without_infinite_slices(g, a, _kept(out, ctx.dim, ctx.keepdim)), None, None, None


def _setup_softmax(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    _, ctx.dim, ctx.tau = inputs
    ctx.save_for_backward(output)


def _setup_log_softmax(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    a, ctx.dim, ctx.tau = inputs
    ctx.save_for_backward(a, output)


def _softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    (y,) = ctx.saved_tensors
    return y * (grad - (grad * y).sum(ctx.dim, keepdim=True)) / ctx.tau, None, None


def _log_softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    # y = (a - lse) / tau is -inf for the finite elements of a slice whose max is +inf, and
    # nan in an all -inf slice: its max tells them apart from -inf elements and nan input
    a, y = ctx.saved_tensors
    if a.numel() == 0:
        return torch.zeros_like(grad), None, None
    g = (grad - torch.exp(y) * grad.sum(ctx.dim, keepdim=True)) / ctx.tau
    return _without_infinite_slices(g, a, a.amax(ctx.dim, keepdim=True)), None, None


def _setup_weighted(ctx: Any, inputs: tuple, output: tuple) -> None:
    a, b, ctx.dim, ctx.keepdim, ctx.tau = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(a, b, *output)


def _weighted_backward(ctx: Any, grad: torch.Tensor, _: Any) -> tuple:
    # s = sum b exp(a / tau) = sign exp(out / tau): d out / da = b exp((a - out) / tau) / sign,
    # d out / db = tau exp((a - out) / tau) / sign (1 / sign = sign)
    a, b, out, sign = ctx.saved_tensors
    out, sign, grad = (_kept(x, ctx.dim, ctx.keepdim) for x in (out, sign, grad))
    term = grad * sign * torch.exp((a - out) / ctx.tau)
    # elements of weight 0 are left out of the sum, whatever their value: gradient 0
    term = torch.where((out == -math.inf) | (b == 0), 0.0, term)
    return (term * b if ctx.needs_input_grad[0] else None,
            term * ctx.tau if ctx.needs_input_grad[1] else None, None, None, None)


def _setup_scan(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    a, ctx.dim, ctx.tau = inputs
    ctx.save_for_backward(a, output)


def _scan_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    # d out_j / d a_i = exp((a_i - out_j) / tau) for i <= j: the gradient is
    # exp(a_i / tau) sum_{j >= i} g_j exp(-out_j / tau), the positive and the negative g
    # apart, each a reversed running log-sum-exp (the operator's, so that it has its own
    # gradient). An element at -inf gets 0: it adds nothing, and an all -inf prefix is
    # the constant -inf.
    a, out = ctx.saved_tensors
    dim, tau = ctx.dim, ctx.tau
    if grad.numel() == 0:
        return grad, None, None
    lowest = torch.finfo(grad.dtype).min
    log_abs = grad.abs().log()
    z, r = a / tau, out / tau

    def from_the_end(log_terms: torch.Tensor) -> torch.Tensor:
        return torch.exp(_call("logcumsumexp", (log_terms - r).flip(dim), dim, 1.0).flip(dim) + z)

    g = (from_the_end(torch.where(grad > 0, log_abs, lowest))
         - from_the_end(torch.where(grad < 0, log_abs, lowest)))
    return torch.where(a == -math.inf, 0.0, g), None, None


def _segment_gathered(x: torch.Tensor, ids: torch.Tensor, dim: int) -> torch.Tensor:
    """Each element's segment's entry of ``x`` (``dim`` of length k) along ``dim``."""
    return x.index_select(dim, ids)


def _segment_summed(x: torch.Tensor, ids: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """The sums of ``x`` over the ``k`` segments of ``dim``."""
    shape = [k if j == dim else n for j, n in enumerate(x.shape)]
    return x.new_zeros(shape).index_add(dim, ids, x)


def _without_special_segments(g: torch.Tensor, a: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """`_without_infinite_slices` within segments (``top`` each element's segment's max,
    or a result infinite or nan exactly where it is), and 0 too at the elements other than
    nan of a segment that holds a nan, as the array-API code's gradients are."""
    g = _without_infinite_slices(g, a, top)
    if is_concrete(top) and not bool(torch.isnan(top).any()):
        return g
    return torch.where(torch.isnan(top) & ~torch.isnan(a), 0.0, g)


def _setup_segment(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    a, ids, ctx.k, ctx.dim, ctx.tau, ctx.sorted = inputs
    ctx.save_for_backward(a, ids, output)


def _segment_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    # the softmax within each segment (the kernel's operator), times the segment's gradient
    a, ids, out = ctx.saved_tensors
    weights = _call("segment_softmax", a, ctx.k, ctx.dim, ctx.tau, ctx.sorted, b=ids)
    g = _segment_gathered(grad, ids, ctx.dim) * weights
    return (_without_special_segments(g, a, _segment_gathered(out, ids, ctx.dim)),
            None, None, None, None, None)


def _setup_segment_normalize(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    a, ids, ctx.k, ctx.dim, ctx.tau, _ = inputs
    ctx.save_for_backward(a, ids, output)


def _segment_softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    # a segment whose outputs are nan (all -inf, or holding a +inf or a nan) has gradient 0,
    # nan at its +inf and nan elements, as the array-API code's
    a, ids, y = ctx.saved_tensors
    total = _segment_gathered(_segment_summed(grad * y, ids, ctx.k, ctx.dim), ids, ctx.dim)
    g = y * (grad - total) / ctx.tau
    special = torch.where(torch.isnan(a) | (a == math.inf), math.nan, 0.0)
    return torch.where(torch.isnan(y), special, g), None, None, None, None, None


def _segment_log_softmax_backward(ctx: Any, grad: torch.Tensor) -> tuple:
    # as _log_softmax_backward, the segments' maxima telling -inf elements from the finite
    # ones of a segment whose max is +inf
    a, ids, y = ctx.saved_tensors
    total = _segment_gathered(_segment_summed(grad, ids, ctx.k, ctx.dim), ids, ctx.dim)
    g = (grad - torch.exp(y) * total) / ctx.tau
    shape = [ctx.k if j == ctx.dim else n for j, n in enumerate(a.shape)]
    index = ids.reshape([-1 if j == ctx.dim else 1 for j in range(a.dim())]).expand(a.shape)
    top = a.new_full(shape, -math.inf).scatter_reduce(ctx.dim, index, a.detach(), "amax")
    return (_without_special_segments(g, a, _segment_gathered(top, ids, ctx.dim)),
            None, None, None, None, None)


# name -> (setup_context, backward) of each operator's gradient
_AUTOGRAD = {
    "logsumexp": (_setup_reduce, _reduce_backward), "logmeanexp": (_setup_reduce, _reduce_backward),
    "softmax": (_setup_softmax, _softmax_backward),
    "log_softmax": (_setup_log_softmax, _log_softmax_backward),
    "logsumexp_weighted": (_setup_weighted, _weighted_backward),
    "logcumsumexp": (_setup_scan, _scan_backward),
    "segment_logsumexp": (_setup_segment, _segment_backward),
    "segment_softmax": (_setup_segment_normalize, _segment_softmax_backward),
    "segment_log_softmax": (_setup_segment_normalize, _segment_log_softmax_backward),
}
for _name, (_setup, _backward) in _AUTOGRAD.items():
    torch.library.register_autograd(f"lsearray::{_name}", _backward, setup_context=_setup, lib=_LIB)


def _eager_function(name: str) -> type[torch.autograd.Function]:
    """The operator ``name`` as an autograd.Function with the same forward and gradient,
    for eager calls that record a gradient: it runs the kernel without the dispatcher's
    Python overhead of a custom operator, which a small call (a (64, 10) batch of a
    training loop) would pay several times over."""
    setup, backward = _AUTOGRAD[name]

    # forward takes ctx (no separate setup_context, whose binding of the arguments through
    # inspect.signature costs more than the kernel on small inputs)
    def forward(ctx: Any, *inputs: Any) -> Any:
        output = _IMPL[name](*inputs)
        setup(ctx, inputs, output)
        return output

    def backward_(ctx: Any, *grads: Any) -> Any:
        return backward(ctx, *grads)

    # built by type() so that autograd names the graph's node after the function
    return type(f"lsearray_{name}", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward_)})


_EAGER = {name: _eager_function(name) for name in _AUTOGRAD}


def _call(name: str, a: torch.Tensor, *args: Any, b: torch.Tensor | None = None) -> Any:
    """The operator ``name`` on ``a`` (and ``b``): the kernel at once where `is_direct`;
    its autograd.Function in eager calls that record a gradient on plain tensors;
    otherwise the operator, which the compilers, export and transforms understand."""
    inputs = (a,) if b is None else (a, b)
    if is_direct(a, b):
        return _IMPL[name](*inputs, *args)
    plain = all(type(t) is torch.Tensor and is_concrete(t) for t in inputs)
    if plain and _forward_ad._current_level < 0:
        return _EAGER[name].apply(*inputs, *args)
    return getattr(_OPS, name)(*inputs, *args)


# vmap: the mapped dimension becomes the first, a batch dimension none of the ones reduced,
# and the operator runs once on the whole batch.

def _batched(x: torch.Tensor, bdim: int | None, size: int) -> torch.Tensor:
    """``x`` with its mapped dimension first (expanded, a view, where it has none)."""
    return x.expand(size, *x.shape) if bdim is None else x.movedim(bdim, 0)


def _vmap_reduce(op: Any) -> Callable[..., tuple]:
    def rule(info: Any, in_dims: tuple, a: torch.Tensor, dim: Sequence[int], keepdim: bool,
             tau: float) -> tuple:
        a = _batched(a, in_dims[0], info.batch_size)
        return op(a, [k + 1 for k in dim], keepdim, tau), 0
    return rule


def _vmap_normalize(op: Any) -> Callable[..., tuple]:
    def rule(info: Any, in_dims: tuple, a: torch.Tensor, dim: Sequence[int], tau: float) -> tuple:
        return op(_batched(a, in_dims[0], info.batch_size), [k + 1 for k in dim], tau), 0
    return rule


def _vmap_weighted(info: Any, in_dims: tuple, a: torch.Tensor, b: torch.Tensor,
                   dim: Sequence[int], keepdim: bool, tau: float) -> tuple:
    a, b = (_batched(x, d, info.batch_size) for x, d in zip((a, b), in_dims[:2]))
    return _OPS.logsumexp_weighted(a, b, [k + 1 for k in dim], keepdim, tau), (0, 0)


for _name in ("logsumexp", "logmeanexp"):
    torch.library.register_vmap(f"lsearray::{_name}", _vmap_reduce(getattr(_OPS, _name)), lib=_LIB)
for _name in ("softmax", "log_softmax"):
    torch.library.register_vmap(f"lsearray::{_name}", _vmap_normalize(getattr(_OPS, _name)), lib=_LIB)
torch.library.register_vmap("lsearray::logsumexp_weighted", _vmap_weighted, lib=_LIB)


def _vmap_scan(info: Any, in_dims: tuple, a: torch.Tensor, dim: int, tau: float) -> tuple:
    return _OPS.logcumsumexp(_batched(a, in_dims[0], info.batch_size), dim + 1, tau), 0


torch.library.register_vmap("lsearray::logcumsumexp", _vmap_scan, lib=_LIB)


# The calls: the kernel at once where `is_direct`, else the operators.

def logsumexp(a: torch.Tensor, dim: list[int], keepdim: bool, tau: float) -> torch.Tensor:
    """logsumexp of a CPU tensor on the kernel (see `kernel_dims` for what it takes)."""
    return _call("logsumexp", a, dim, keepdim, tau)


def logmeanexp(a: torch.Tensor, dim: list[int], keepdim: bool, tau: float) -> torch.Tensor:
    """logmeanexp of a CPU tensor on the kernel."""
    return _call("logmeanexp", a, dim, keepdim, tau)


def softmax(a: torch.Tensor, dim: list[int], tau: float) -> torch.Tensor:
    """softmax of a CPU tensor on the kernel."""
    return _call("softmax", a, dim, tau)


def log_softmax(a: torch.Tensor, dim: list[int], tau: float) -> torch.Tensor:
    """log_softmax of a CPU tensor on the kernel."""
    return _call("log_softmax", a, dim, tau)


def logcumsumexp(a: torch.Tensor, axis: int, tau: float) -> torch.Tensor:
    """logcumsumexp of a CPU tensor on the kernel along ``axis`` (normalized)."""
    return _call("logcumsumexp", a, axis, tau)


def logsumexp_weighted(a: torch.Tensor, b: torch.Tensor, dim: list[int], keepdim: bool,
                       tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log|s|, sign s)`` of the ``b``-weighted sum of broadcast tensors, on the kernel."""
    return _call("logsumexp_weighted", a, dim, keepdim, tau, b=b)


def segment_logsumexp(a: torch.Tensor, ids: torch.Tensor, k: int, dim: int, tau: float,
                      sorted: bool) -> torch.Tensor:
    """The log-sum-exp of each of ``k`` segments of a CPU tensor's dimension ``dim``
    (``ids`` checked, in ``[0, k)``), on the kernel (see `segment_on_kernel`)."""
    return _call("segment_logsumexp", a, k, dim, tau, sorted, b=ids)


def segment_normalized(a: torch.Tensor, ids: torch.Tensor, k: int, dim: int, tau: float,
                       sorted: bool, log: bool) -> torch.Tensor:
    """softmax (log_softmax with ``log``) within segments of a CPU tensor, on the kernel."""
    return _call("segment_log_softmax" if log else "segment_softmax", a, k, dim, tau, sorted, b=ids)
