"""Every public function: its fast path, its slow oracle (reference.py) and how to call it on an awkward input."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from awkward_arrays import row_axis
from reference import (
    slow_log1mexp,
    slow_log_softmax,
    slow_logaddexp,
    slow_logcumsumexp,
    slow_logdiffexp,
    slow_logmatmulexp,
    slow_logmeanexp,
    slow_logsumexp,
    slow_softmax,
)

__all__ = ["EXEMPT", "REGISTRY", "Call", "Entry", "mask_for", "masked", "online_logsumexp", "weights_for"]


@dataclass(frozen=True)
class Call:
    """One way of calling a function on an awkward input `a`.

    operands: what goes before the keywords: "a" (the input), "pair" (awkward_arrays.pair_partner),
    "matrix" (awkward_arrays.matmul_partner). weights: whether b= gets positive weights of a's shape.
    mask: whether where= gets a mask of a's shape (`mask_for`); the oracle then gets the mask
    as its own keyword ``where`` (see `masked`). kwargs: the other keywords, the same for the fast
    function and its oracle.
    """

    label: str
    operands: tuple = ("a",)
    weights: bool = False
    kwargs: dict = field(default_factory=dict)
    mask: bool = False


@dataclass(frozen=True)
class Entry:
    """A public function: `fast` (resolved from its module when used), `slow` (its oracle, None for
    a sampler: those have no value to compare) and `calls(ndim)`, the calls made on an input of
    that many dimensions. backends: the backends it takes (None: every one)."""

    name: str
    module: str
    attr: str
    slow: Callable | None
    calls: Callable
    backends: tuple | None = None
    wrap: Callable | None = None          # how to call the public object, when it is not a function

    @property
    def fast(self):
        obj = getattr(importlib.import_module(self.module), self.attr)
        return obj if self.wrap is None else (lambda *args, **kwargs: self.wrap(obj, *args, **kwargs))

    @property
    def sampler(self):
        return self.slow is None

    def __repr__(self):
        return f"Entry({self.name})"


def online_logsumexp(cls, a, axis=0, mean=False, temperature=1.0):
    """The result of an OnlineLogSumExp fed `a` in two batches along axis 0 (one when too short)."""
    acc = cls(axis=axis, temperature=temperature)
    n = a.shape[0] if a.ndim else 0
    for batch in ([a[: n // 2, ...], a[n // 2:, ...]] if n >= 2 else [a]):
        acc.update(batch)
    return acc.result(mean=mean)


def _slow_online(a, axis=0, mean=False, temperature=1.0):
    """What OnlineLogSumExp gives: the log-sum-exp (or log-mean-exp) over axis 0 of everything fed."""
    if mean:
        return slow_logmeanexp(a, axis=axis, temperature=temperature)
    return slow_logsumexp(a, axis=axis, temperature=temperature)


def _reductions(ndim):
    """A full reduction; the last axis with weights, temperature and the sign; the first kept;
    masked, alone and with weights."""
    calls = [Call("axis=None"), Call("axis=None where", mask=True)]
    if ndim:
        calls.append(Call("axis=-1 b tau=0.5", weights=True, kwargs=dict(axis=-1, temperature=0.5)))
        calls.append(Call("axis=0 keepdims", kwargs=dict(axis=0, keepdims=True)))
        calls.append(Call("axis=-1 b where", weights=True, mask=True, kwargs=dict(axis=-1)))
    return calls


def _lse_calls(ndim):
    calls = _reductions(ndim)
    if ndim:
        calls.append(Call("axis=-1 return_sign", weights=True, kwargs=dict(axis=-1, return_sign=True)))
    return calls


def _rowwise(ndim):
    if not ndim:
        return [Call("0-d"), Call("0-d where", mask=True)]
    return [Call("rows"), Call("rows tau=0.5", kwargs=dict(temperature=0.5)),
            Call("rows where", mask=True)]


def _with_axis(calls_for):
    """calls_for(ndim), with axis= the row axis added where a call names none."""
    def calls(ndim):
        out = []
        for call in calls_for(ndim):
            kwargs = dict(call.kwargs)
            kwargs.setdefault("axis", row_axis(ndim))
            out.append(Call(call.label, call.operands, call.weights, kwargs, call.mask))
        return out
    return calls


def _scans(ndim):
    return _rowwise(ndim) + [Call("reverse", kwargs=dict(reverse=True)),
                             Call("exclusive", kwargs=dict(exclusive=True))]


def _pair(ndim):
    return [Call("x1 x2", ("a", "pair")), Call("x2 x1 tau=0.5", ("pair", "a"), kwargs=dict(temperature=0.5))]


def _difference(ndim):
    """x1 >= x2 is not asked of the awkward pairs: where it fails the result is nan, or, with the
    sign, the log of the absolute difference."""
    return [Call("x1 x2", ("a", "pair")),
            Call("x2 x1 tau=0.5 return_sign", ("pair", "a"), kwargs=dict(temperature=0.5, return_sign=True))]


def _unary(ndim):
    return [Call("x")]


def _matrix(ndim):
    return [Call("a @ b", ("a", "matrix"))]


def _einsum_as_matmul(logeinsumexp, a, b):
    """logeinsumexp spelling a @ b with the ellipsis, for the matrix b of `_matrix`: its oracle is
    logmatmulexp's."""
    return logeinsumexp("...k,km->...m", a, b)


def _online(ndim):
    return [Call("sum"), Call("mean tau=2", kwargs=dict(mean=True, temperature=2.0))]


def _sampling(ndim):
    return [Call("rows", kwargs=dict(axis=-1))]


def mask_for(a):
    """A boolean mask of a's shape, seeded by the shape: about a third of the elements left
    out, and the whole first slice along the last axis where there is one (a slice with
    nothing kept)."""
    rng = np.random.default_rng(len(a.shape) * 104729 + int(np.prod(a.shape)))
    mask = rng.uniform(size=a.shape) > 1 / 3
    if a.ndim >= 2 and a.size:
        mask[(0,) * (a.ndim - 1)] = False
    return mask


def _masked_reduction(slow):
    """The oracle of a masked reduction: the elements left out as weights of 0 (which the
    oracles' row sums drop, whatever the element)."""
    def oracle(a, *, where, b=None, **kwargs):
        weights = np.asarray(where, dtype=np.float64) if b is None else np.where(where, b, 0)
        return slow(a, b=weights, **kwargs)
    return oracle


def _masked_by_minus_inf(slow, fill=None):
    """The oracle of a masked softmax, log_softmax or scan: the elements left out as -inf,
    which add nothing; then ``fill`` (0 or -inf) where they were, a slice with nothing kept
    included (None: the scan's running value stays)."""
    def oracle(x, *, where, **kwargs):
        x = np.asarray(x)
        x = x.astype(np.float64) if x.dtype.kind in "biu" else x
        out = slow(np.where(where, x, -np.inf).astype(x.dtype), **kwargs)
        return out if fill is None else np.where(where, out, fill)
    return oracle


def masked(entry):
    """The oracle of ``entry`` for calls with a mask (`Call.mask`)."""
    name = entry.name.removeprefix("dask.")
    if name in ("logsumexp", "logmeanexp"):
        return _masked_reduction(entry.slow)
    if name == "logcumsumexp":
        return _masked_by_minus_inf(entry.slow)
    return _masked_by_minus_inf(entry.slow, -np.inf if name == "log_softmax" else 0.0)


def _first_of_top_k(gumbel_topk, a, axis=-1, rng=None):
    """gumbel_topk's first draw (k=1): a categorical draw, which the sampler cross test checks as
    categorical's."""
    return gumbel_topk(a, 1, axis=axis, rng=rng)[..., 0]


def _entries():
    lsa, dask = "lsearray", "lsearray.dask"
    entries = [
        Entry("logsumexp", lsa, "logsumexp", slow_logsumexp, _lse_calls),
        Entry("logmeanexp", lsa, "logmeanexp", slow_logmeanexp, _reductions),
        Entry("softmax", lsa, "softmax", slow_softmax, _with_axis(_rowwise)),
        Entry("log_softmax", lsa, "log_softmax", slow_log_softmax, _with_axis(_rowwise)),
        Entry("logaddexp", lsa, "logaddexp", slow_logaddexp, _pair),
        Entry("logdiffexp", lsa, "logdiffexp", slow_logdiffexp, _difference),
        Entry("log1mexp", lsa, "log1mexp", slow_log1mexp, _unary),
        Entry("logcumsumexp", lsa, "logcumsumexp", slow_logcumsumexp, _with_axis(_scans)),
        Entry("logmatmulexp", lsa, "logmatmulexp", slow_logmatmulexp, _matrix),
        Entry("logeinsumexp", lsa, "logeinsumexp", slow_logmatmulexp, _matrix, wrap=_einsum_as_matmul),
        Entry("OnlineLogSumExp", lsa, "OnlineLogSumExp", _slow_online, _online, wrap=online_logsumexp),
        # Samplers: no value oracle; the cross test checks shape, dtype, support, seeds and
        # degenerate distributions instead.
        Entry("categorical", lsa, "categorical", None, _sampling),
        Entry("gumbel_softmax", lsa, "gumbel_softmax", None, _sampling),
        Entry("gumbel_topk", lsa, "gumbel_topk", None, _sampling, wrap=_first_of_top_k),
        # lsearray.dask: the same functions for dask arrays, reduced chunk by chunk.
        Entry("dask.logsumexp", dask, "logsumexp", slow_logsumexp, _lse_calls, backends=("dask",)),
        Entry("dask.logmeanexp", dask, "logmeanexp", slow_logmeanexp, _reductions, backends=("dask",)),
        Entry("dask.softmax", dask, "softmax", slow_softmax, _with_axis(_rowwise), backends=("dask",)),
        Entry("dask.log_softmax", dask, "log_softmax", slow_log_softmax, _with_axis(_rowwise),
              backends=("dask",)),
    ]
    return {entry.name: entry for entry in entries}


REGISTRY = _entries()

# Public names that are not functions of arrays, and why.
EXEMPT = {
    "__version__": "a string",
    "build_info": "reports how the kernel was built (compiler, SIMD loops, threads): no array input, "
                  "no value to check",
    # The awkward inputs are logits alone; these also take values of the logits' shape and more,
    # and tests/test_softmax_average.py checks them on every backend against a slow loop.
    "softmax_average": "takes values beside the logits (tests/test_softmax_average.py)",
    "OnlineSoftmaxAverage": "takes values beside the logits (tests/test_softmax_average.py)",
    "dask.softmax_average": "takes values beside the logits (tests/test_softmax_average.py)",
    # Segment ids beside the input, and a result shaped by num_segments: tests/test_segment.py
    # checks them on every backend against mpmath per segment.
    **{name: "takes segment ids beside the input (tests/test_segment.py)"
       for name in ["segment_logsumexp", "segment_softmax", "segment_log_softmax",
                    "dask.segment_logsumexp", "dask.segment_softmax", "dask.segment_log_softmax"]},
}


def weights_for(a):
    """Positive weights of a's shape (float64 for integer input), seeded by the shape."""
    rng = np.random.default_rng(len(a.shape) * 7919 + int(np.prod(a.shape)))
    dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
    return rng.uniform(0.5, 2.0, size=a.shape).astype(dtype.newbyteorder("="))
