"""Who is timed: lsearray, scipy.special, torch, jax, the numpy recipes and the floors, as no-argument calls per case."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

import lsearray

from .cases import EINSUM_CHAIN, GROUPED, RELATIVES, SCIPY_KINDS, Case
from .recipes import (numpy_log1mexp, numpy_log_softmax, numpy_naive_logeinsumexp, numpy_naive_logmatmulexp,
                      numpy_segment_logsumexp, numpy_segment_softmax, numpy_shifted_logmatmulexp, numpy_softmax,
                      numpy_softmax_average, numpy_two_pass)

__all__ = ["CONTENDER_ORDER", "FLOORS", "REFERENCES", "SHORT_NAMES", "Contenders", "load_contenders"]

FLOORS = ("x.sum()", "np.exp(x, out=y)", "np.log1p(np.exp(x))")
CONTENDER_ORDER = ("lsearray", "scipy", "np.logaddexp", "np.logaddexp.accumulate", "numpy switch", "torch",
                   "jax", "numpy two-pass", "naive numpy", "shifted numpy", "numpy ufunc.at", "numpy recipe",
                   "torch recipe") + FLOORS
SHORT_NAMES = {"numpy two-pass": "two-pass", "np.exp(x, out=y)": "np.exp",
               "np.log1p(np.exp(x))": "exp+log1p", "np.logaddexp.accumulate": "accumulate",
               "naive numpy": "naive", "shifted numpy": "shifted", "numpy switch": "switch",
               "numpy ufunc.at": "ufunc.at", "numpy recipe": "recipe", "torch recipe": "torch"}
TORCH_KINDS = SCIPY_KINDS + ("logcumsumexp",)
GROUPED_TORCH_KINDS = ("segment_logsumexp", "segment_softmax", "softmax_average")
REFERENCES = {"logaddexp": "np.logaddexp", "logdiffexp": "numpy switch", "log1mexp": "numpy switch",
              "logcumsumexp": "np.logaddexp.accumulate",
              "logmatmulexp": "shifted numpy", "segment_logsumexp": "numpy ufunc.at",
              "segment_softmax": "numpy ufunc.at", "softmax_average": "numpy recipe",
              "logeinsumexp": "naive numpy"}  # what the relatives and grouped kinds are checked against
# The relatives whose limit is about one vector exp and one log1p an element.
EXP_LOG_KINDS = ("logaddexp", "logdiffexp", "log1mexp", "logcumsumexp")
Failures = dict[tuple[str, str], str]  # (case label, contender) -> error message


def _root(a: np.ndarray) -> np.ndarray:
    """The array whose memory ``a`` views."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


@dataclass
class Contenders:
    """Every contender's no-argument call for a case, in CONTENDER_ORDER.

    ``torch`` and ``jax`` are the modules, None when left out; ``failures`` collects the
    contenders that raised, here or when timed, to be reported rather than timed. The
    caches keep one device copy of the data for jax, one compiled call per jax case and one
    output buffer per shape for the np.exp floor.
    """
    torch: Any = None
    jax: Any = None
    failures: Failures = field(default_factory=dict)
    _jax_roots: dict[int, tuple[np.ndarray, Any]] = field(default_factory=dict)
    _jax_calls: dict[tuple[Any, ...], Callable[[], Any]] = field(default_factory=dict)
    _out_buffers: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)

    def torch_call(self, kind: str, t: Any, axis: int | None) -> Any:
        """torch's logsumexp, softmax, log_softmax or logcumsumexp over ``axis`` (all elements when None)."""
        if axis is None:
            t, axis = t.reshape(-1), 0
        return getattr(self.torch, kind)(t, dim=axis)

    def torch_recipe(self, case: Case) -> Callable[[], Any]:
        """What torch users write for a grouped kind, on tensors sharing the case's memory:
        ``scatter_reduce`` ("amax") and ``index_add`` for the segments, softmax times the
        values for softmax_average."""
        torch = self.torch
        a, b = torch.from_numpy(case.a), torch.from_numpy(case.b)
        if case.kind == "softmax_average":
            return lambda: (torch.softmax(a, dim=-1).unsqueeze(-2) @ b).squeeze(-2)
        segments = int(case.b.max()) + 1

        def segment_recipe() -> Any:
            m = torch.full((segments,), -torch.inf, dtype=a.dtype).scatter_reduce(
                0, b, a, "amax", include_self=True)
            e = torch.exp(a - m[b])
            s = torch.zeros(segments, dtype=a.dtype).index_add_(0, b, e)
            return m + torch.log(s) if case.kind == "segment_logsumexp" else e / s[b]
        return segment_recipe

    def jax_function(self, kind: str) -> Callable[..., Any]:
        """jax's logsumexp, softmax or log_softmax, taking ``axis=``."""
        if kind == "logsumexp":
            return self.jax.scipy.special.logsumexp
        return getattr(self.jax.nn, kind)

    def jax_contender(self, kind: str, a: np.ndarray, axis: int | None,
                      fn: Callable[..., Any] | None = None) -> Callable[[], Any]:
        """A no-argument jitted call of ``fn`` (jax's own function for ``kind`` when None)
        on a device copy of ``a``.

        The data ``a`` views (a C-contiguous slice of a 1-D array) is copied to jax once and
        shared by every case; the jitted function slices and reshapes it, which XLA does in
        place. Calls are cached, so each case compiles once.
        """
        root = _root(a)
        if not a.flags.c_contiguous or root.ndim != 1:
            raise ValueError("jax cases must be C-contiguous views of 1-D data")
        start = (a.__array_interface__["data"][0] - root.__array_interface__["data"][0]) // a.itemsize
        fn = self.jax_function(kind) if fn is None else fn
        key = (id(root), fn, start, a.shape, axis)
        if key not in self._jax_calls:
            if id(root) not in self._jax_roots:  # the root is kept too, so its id stays unique
                # transferred before any call: a host callback reading an array still in
                # transit can wait forever on a process pinned to one CPU
                self._jax_roots[id(root)] = (root, self.jax.numpy.asarray(root).block_until_ready())
            xj = self._jax_roots[id(root)][1]
            stop, shape = start + a.size, a.shape
            jitted = self.jax.jit(lambda x: fn(x[start:stop].reshape(shape), axis=axis))
            self._jax_calls[key] = lambda: jitted(xj).block_until_ready()
        return self._jax_calls[key]

    def out_like(self, a: np.ndarray) -> np.ndarray:
        """A shared uninitialized output buffer with ``a``'s shape and dtype (for np.exp)."""
        key = (a.size, a.dtype.str)
        if key not in self._out_buffers:
            self._out_buffers[key] = np.empty(a.size, a.dtype)
        return self._out_buffers[key].reshape(a.shape)

    @staticmethod
    def references(case: Case) -> dict[str, Callable[[], Any]]:
        """lsearray and the scipy and numpy recipes for ``case`` (the ones tracemalloc sees)."""
        a, b, axis, kind = case.a, case.b, case.axis, case.kind
        if kind == "logaddexp":
            return {"lsearray": lambda: lsearray.logaddexp(a, b), "np.logaddexp": lambda: np.logaddexp(a, b)}
        if kind == "logdiffexp":
            return {"lsearray": lambda: lsearray.logdiffexp(a, b),
                    "numpy switch": lambda: a + numpy_log1mexp(b - a)}
        if kind == "log1mexp":
            return {"lsearray": lambda: lsearray.log1mexp(a), "numpy switch": lambda: numpy_log1mexp(a)}
        if kind == "logcumsumexp":
            return {"lsearray": lambda: lsearray.logcumsumexp(a, axis=axis),
                    "np.logaddexp.accumulate": lambda: np.logaddexp.accumulate(a, axis=axis)}
        if kind in ("segment_logsumexp", "segment_softmax"):
            segments, runs = int(b.max()) + 1, bool(np.all(b[1:] >= b[:-1]))
            ours, recipe = ((lsearray.segment_logsumexp, numpy_segment_logsumexp) if kind == "segment_logsumexp"
                            else (lsearray.segment_softmax, numpy_segment_softmax))
            return {"lsearray": lambda: ours(a, b, segments, sorted=runs),
                    "numpy ufunc.at": lambda: recipe(a, b, segments)}
        if kind == "softmax_average":
            return {"lsearray": lambda: lsearray.softmax_average(a, b, axis=-1),
                    "numpy recipe": lambda: numpy_softmax_average(a, b)}
        if kind == "logeinsumexp":
            return {"lsearray": lambda: lsearray.logeinsumexp(EINSUM_CHAIN, *a),
                    "naive numpy": lambda: numpy_naive_logeinsumexp(EINSUM_CHAIN, *a)}
        if kind == "logmatmulexp":
            return {"lsearray": lambda: lsearray.logmatmulexp(a, b),
                    "naive numpy": lambda: numpy_naive_logmatmulexp(a, b),
                    "shifted numpy": lambda: numpy_shifted_logmatmulexp(a, b)}
        two_pass = {"logsumexp": numpy_two_pass, "softmax": numpy_softmax,
                    "log_softmax": numpy_log_softmax}[kind]
        return {
            "lsearray": lambda: getattr(lsearray, kind)(a, axis=axis),
            "scipy": lambda: getattr(special, kind)(a, axis=axis),
            "numpy two-pass": lambda: two_pass(a, axis=axis),
        }

    def on_library(self, case: Case) -> dict[str, Callable[[], Any]]:
        """lsearray and the library's own function, both on ``case.library``'s arrays (none
        when that library is left out); jax's calls jitted, both alike."""
        a, axis, kind = case.a, case.axis, case.kind
        fns: dict[str, Callable[[], Any]] = {}
        try:
            if case.library == "torch" and self.torch is not None:
                t = self.torch.from_numpy(a)  # shares memory, no copy
                fns["lsearray"] = lambda: getattr(lsearray, kind)(t, axis=axis)
                fns["torch"] = lambda: self.torch_call(kind, t, axis)
            elif case.library == "jax" and self.jax is not None:
                fns["lsearray"] = self.jax_contender(kind, a, axis, getattr(lsearray, kind))
                fns["jax"] = self.jax_contender(kind, a, axis)
        except Exception as exc:
            self.failures[case.label, case.library] = f"{type(exc).__name__}: {exc}"
            return {}
        return fns

    def of(self, case: Case, floors: bool = True) -> dict[str, Callable[[], Any]]:
        """name -> no-argument call for ``case``, in CONTENDER_ORDER (jax and the floors: SCIPY_KINDS)."""
        a, axis, kind = case.a, case.axis, case.kind
        if case.library != "numpy":
            return self.on_library(case)
        fns = self.references(case)
        if self.torch is not None and kind in GROUPED_TORCH_KINDS:
            fns["torch recipe"] = self.torch_recipe(case)
        if self.torch is not None and kind in TORCH_KINDS:
            t = self.torch.from_numpy(a)  # shares memory, no copy
            fns["torch"] = lambda: self.torch_call(kind, t, axis)
        if kind in SCIPY_KINDS:
            if self.jax is not None:
                try:
                    fns["jax"] = self.jax_contender(kind, a, axis)
                except Exception as exc:
                    self.failures[case.label, "jax"] = f"{type(exc).__name__}: {exc}"
            if floors:
                y = self.out_like(a)
                fns["x.sum()"] = lambda: a.sum(axis=axis)
                fns["np.exp(x, out=y)"] = lambda: np.exp(a, out=y)
        if kind in EXP_LOG_KINDS and floors:
            y = self.out_like(a)
            fns["np.log1p(np.exp(x))"] = lambda: np.log1p(np.exp(a, out=y), out=y)
        return {name: fns[name] for name in CONTENDER_ORDER if name in fns}

    def as_numpy(self, r: Any) -> np.ndarray:
        """A contender's result as a numpy array."""
        if self.torch is not None and isinstance(r, self.torch.Tensor):
            return r.numpy()
        return np.asarray(r)

    def reference(self, case: Case) -> np.ndarray:
        """What ``case``'s contenders are checked against: scipy in float64, or the relative's REFERENCES."""
        if case.kind in RELATIVES + GROUPED:  # float64 cases
            return np.asarray(self.references(case)[REFERENCES[case.kind]]())
        return np.asarray(getattr(special, case.kind)(case.a.astype(np.float64), axis=case.axis))


def load_contenders(no_torch: bool, no_jax: bool) -> Contenders:
    """`Contenders` with torch and jax where installed and not left out.

    jax runs with ``jax_enable_x64``, so that float64 stays float64.
    """
    torch = jax = None
    if not no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if not no_jax:
        try:
            import jax
            import jax.numpy
            import jax.scipy.special  # jax.scipy is not imported by jax
            jax.config.update("jax_enable_x64", True)
        except ImportError:
            jax = None
    return Contenders(torch=torch, jax=jax)
