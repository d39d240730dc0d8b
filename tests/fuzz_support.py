"""Inputs, references, checks and statistics for the differential fuzz test (tests/test_fuzz.py).

Skipped (pytest.importorskip) where hypothesis or mpmath is not installed.

* Strategies: `reduction_cases` (an awkward array, axis, keepdims, weights and a temperature),
  `logaddexp_cases`, `logmatmulexp_cases`, `temperatures`. Values come from `row` (one reduced
  slice): normal values, log-probabilities whose normalizer is near 1 (log_softmax of random
  logits, nudged by a few ulp, possibly scaled by the temperature or offset), two-element
  cancelling pairs, ties at the max, offsets near +-700 / +-1e4, a max with tails 30 to 1100
  below it, subnormals, any finite float, and -inf / +inf / nan sprinkled in. Weights are
  positive, huge and tiny (1e-300 ... 1e300, subnormal), signed, cancelling, or special.
* References: `ref_reduce` (logsumexp, logmeanexp) and `ref_softmax`, in tests/reference.py on
  top of its mpmath slice references; re-exported here.
* `Checker`: compares a result with the exact values (special-value class, sign, error in ulp
  of the result's dtype against the contract's bound) and with scipy, and raises one
  AssertionError subclass per failure class, so hypothesis reports (and shrinks) each
  failure class on its own.
* `STATS`: cases, values and worst ulp per (function, path, dtype of a), printed as a table at
  the end of the module (`stats_table`).
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
st = pytest.importorskip("hypothesis.strategies")

from reference import MP_DPS, normalize_axes, ref_reduce, ref_softmax, weak  # noqa: F401 (re-exported)

__all__ = [
    "Case", "Checker", "INVALID_TAUS", "SLACK", "STATS", "TINY64", "TAU_MESSAGE", "array_repr", "classify",
    "fmt", "round_to", "spacing_of",
    "logaddexp_cases", "logmatmulexp_cases", "reduction_cases", "ref_reduce", "ref_softmax", "row",
    "stats_table", "temperatures", "valid_tau", "weak",
]

TINY64 = 2.2250738585072014e-308          # the smallest normal float64: the least valid temperature
TAU_MESSAGE = "temperature must be positive, finite and at least 2.2250738585072014e-308"
SLACK = 2.0 ** -100                        # the double-double limit of the contract (float64)

# Temperatures that are interesting in their own right: the dtype limits of float32 and float64.
SPECIAL_TAUS = [
    0.5, 2.0, 1e-4, 1e4, 1e-300, TINY64, 1e300, 1.7976931348623157e308, 3.4028234663852886e38,
    3.5e38, 1.1754943508222875e-38, 1e-38, 1e-45, 1e-20, 1e20,
]
INVALID_TAUS = [5e-324, 1e-310, 2.225073858507201e-308, 0.0, -0.0, -1.0, math.inf, -math.inf, math.nan]


def valid_tau(tau: float) -> bool:
    return math.isfinite(tau) and tau >= TINY64


def _finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def temperatures(draw) -> float:
    """1.0 mostly; else a special value or a log-uniform one in [1e-300, 1e300]."""
    mode = draw(st.integers(0, 9))
    if mode < 5:
        return 1.0
    if mode < 7:
        return draw(st.sampled_from(SPECIAL_TAUS))
    e = draw(st.integers(-300, 299))
    return float(draw(_finite(1.0, 9.999)) * 10.0 ** e)


# --------------------------------------------------------------------------------------------
# One reduced slice
# --------------------------------------------------------------------------------------------

ROW_KINDS = ("normal", "logprob", "pair", "ties", "offset", "tail", "subnormal", "wide", "mixed")
OFFSETS = [700.0, -700.0, 709.782712893384, -745.1332191019412, 88.72283935546875, -103.97,
           1e4, -1e4, 1e4 + 0.5, -1e4 - 0.25]
SUBNORMALS = [0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 2.225073858507201e-308, 1e-320,
              1.401298464324817e-45, 1e-40, -1e-40, 1.1754943508222875e-38, 1e-300, -1e-300]


def _cast(values, dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float64).astype(dtype)


def _nudge(x: np.ndarray, steps) -> np.ndarray:
    """x moved by steps[i] ulp of its own dtype (element-wise)."""
    x = x.copy()
    for i, k in enumerate(steps):
        for _ in range(abs(k)):
            x[i] = np.nextafter(x[i], x.dtype.type(math.copysign(math.inf, k)))
    return x


def _log_softmax64(logits) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x)
    return x - (m + math.log(float(np.sum(np.exp(x - m)))))


@st.composite
def row(draw, n: int, dtype, tau: float = 1.0, specials: bool = True):
    """One slice of n values of dtype: (array, kind)."""
    dtype = np.dtype(dtype)
    if n == 0:
        return np.zeros(0, dtype), "empty"
    kind = draw(st.sampled_from(ROW_KINDS + ("logprob", "pair", "tail")))  # cancellation more often
    scale = tau if valid_tau(tau) and 1e-30 < tau < 1e30 and draw(st.integers(0, 2)) == 2 else 1.0
    if kind == "normal":
        v = _cast(draw(st.lists(_finite(-30, 30), min_size=n, max_size=n)), dtype)
    elif kind == "logprob":
        lp = _log_softmax64(draw(st.lists(_finite(-20, 20), min_size=n, max_size=n)))
        shift = draw(st.sampled_from([0.0, math.log(n), 0.0] + OFFSETS[:2] + OFFSETS[6:8]))
        v = _cast(lp * scale + shift, dtype)
        v = _nudge(v, draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)))
    elif kind == "pair":
        x = draw(_finite(-40.0, -1e-8))
        vals = [x, math.log(-math.expm1(x))] + [-math.inf if draw(st.booleans()) else x - draw(_finite(40, 1000))
                                                for _ in range(n - 2)]
        v = _cast(np.array(vals[:n]) * scale, dtype)
        v = v[draw(st.permutations(range(n)))]
    elif kind == "ties":
        top = draw(st.one_of(_finite(-50, 50), st.sampled_from(OFFSETS)))
        k = draw(st.integers(1, n))
        gaps = draw(st.lists(_finite(0.0, 60.0), min_size=n - k, max_size=n - k))
        v = _cast([top] * k + [top - g * scale for g in gaps], dtype)
        v = v[draw(st.permutations(range(n)))]
    elif kind == "offset":
        c = draw(st.sampled_from(OFFSETS))
        v = _cast(np.array(draw(st.lists(_finite(-5, 5), min_size=n, max_size=n))) * scale + c, dtype)
    elif kind == "tail":
        top = draw(st.one_of(st.sampled_from([0.0, 1.0, -1e4, 1e4]), _finite(-50, 50)))
        tails = draw(st.lists(_finite(30.0, 1100.0), min_size=n - 1, max_size=n - 1))
        v = _cast([top] + [top - t * scale for t in tails], dtype)
        v = v[draw(st.permutations(range(n)))]
    elif kind == "subnormal":
        el = st.one_of(st.sampled_from(SUBNORMALS), _finite(-1e-300, 1e-300), _finite(-1e-37, 1e-37))
        v = _cast(draw(st.lists(el, min_size=n, max_size=n)), dtype)
    elif kind == "wide":
        el = st.floats(allow_nan=False, allow_infinity=False, width=32 if dtype.itemsize == 4 else 64)
        v = _cast(draw(st.lists(el, min_size=n, max_size=n)), dtype)
    else:  # mixed
        el = st.one_of(_finite(-30, 30), st.sampled_from(SUBNORMALS + OFFSETS), _finite(-1e6, 1e6))
        v = _cast(draw(st.lists(el, min_size=n, max_size=n)), dtype)
    if specials and draw(st.integers(0, 3)) == 3:
        spots = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from([-math.inf, math.inf, math.nan])),
                              min_size=1, max_size=min(n, 3)))
        v = v.copy()
        for i, s in spots:
            v[i] = s
        kind += "+special"
    return v, kind


# --------------------------------------------------------------------------------------------
# Whole cases: shape, axis, layout, weights, temperature
# --------------------------------------------------------------------------------------------

def array_repr(x: Any) -> str:
    """A repr that rebuilds x exactly (every float as its shortest round-trip repr)."""
    if x is None or isinstance(x, (float, int)):
        return repr(x)
    x = np.asarray(x)
    if x.size == 0:
        return f"np.empty({x.shape!r}, dtype=np.{x.dtype.name})"
    return f"np.array({x.tolist()!r}, dtype=np.{x.dtype.name})"


@dataclass
class Case:
    """An input for a reduction: a, axis, keepdims, b, temperature, and what drew them."""

    a: np.ndarray
    axis: Any = None
    keepdims: bool = False
    b: Any = None
    tau: float = 1.0
    kinds: tuple = ()
    bkind: str = "none"
    layout: str = "C"

    def __repr__(self) -> str:
        parts = [f"a={array_repr(self.a)}", f"axis={self.axis!r}", f"keepdims={self.keepdims}"]
        if self.b is not None:
            parts.append(f"b={array_repr(self.b)}")
        parts.append(f"temperature={self.tau!r}")
        return (f"Case({', '.join(parts)})  # rows: {', '.join(self.kinds) or '-'}; b: {self.bkind}; "
                f"layout {self.layout}")

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis prints falsifying examples with this
        p.text(repr(self))


def _axis_choices(ndim: int, ints_only: bool = False) -> list:
    if ndim == 0:
        return [None, 0, -1] if not ints_only else [0, -1]
    if ndim == 1:
        return [None, 0, -1, (0,)] if not ints_only else [0, -1]
    return [None, 1, 0, -1, -2, (0, 1), (1, 0), (-1, 0)] if not ints_only else [1, 0, -1, -2]


@st.composite
def shapes(draw, max_ndim: int = 2, min_ndim: int = 0, max_size: int = 64) -> tuple:
    ndim = draw(st.sampled_from([d for d in (1, 2, 0) if min_ndim <= d <= max_ndim]))
    if ndim == 0:
        return ()
    if ndim == 1:
        return (draw(st.one_of(st.integers(1, 6), st.integers(0, max_size))),)
    r = draw(st.integers(0, 8))
    c = draw(st.integers(0, 8 if r == 0 else min(8, max_size // max(r, 1))))
    return (r, c)


def _layout(draw, a: np.ndarray) -> tuple[np.ndarray, str]:
    """a in a drawn memory layout: C, Fortran, strided (every other element) or reversed."""
    if a.ndim == 0:
        return a, "C"
    kind = draw(st.sampled_from(["C", "F", "strided", "reversed"]))
    if kind == "F":
        return np.asfortranarray(a), kind
    if kind == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2], kind
    if kind == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1], kind
    return np.ascontiguousarray(a), kind


def _assemble(draw, shape: tuple, axes: tuple, dtype, tau: float, specials: bool = True):
    """An array of shape whose slices over axes are drawn rows; (array, row kinds)."""
    nd = max(len(shape), 1)
    shp = shape if shape else (1,)
    kept = [i for i in range(nd) if i not in axes]
    n_red = math.prod(shp[i] for i in axes)
    n_kept = math.prod(shp[i] for i in kept)
    rows, kinds = [], []
    for _ in range(n_kept):
        v, k = draw(row(n_red, dtype, tau, specials))
        rows.append(v)
        kinds.append(k)
    if n_kept == 0:
        kinds = ["empty"]
    flat = np.array(rows, dtype=dtype).reshape(n_kept, n_red) if n_kept else np.zeros((0, n_red), dtype)
    perm = kept + list(axes)
    arr = flat.reshape(tuple(shp[i] for i in perm)).transpose(np.argsort(perm))
    return np.array(arr.reshape(shape), dtype=dtype), tuple(kinds)


WEIGHT_KINDS = ("positive", "huge", "signed", "cancel", "special")
HUGE = [1e300, 1e-300, 5e-324, 1e-310, 1.7976931348623157e308, 3.4028234663852886e38, 1e-45, 1e-40,
        1e30, 1e-30, 2.0 ** 1000, 2.0 ** -1060]


def _weight_element(kind: str, finite_only: bool) -> st.SearchStrategy[float]:
    positive = _finite(0.5, 2.0)
    huge = st.one_of(st.sampled_from(HUGE), st.builds(lambda m, e: m * 10.0 ** e, _finite(1.0, 9.99),
                                                        st.integers(-300, 299)))
    signed = st.one_of(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]), _finite(-2.0, 2.0),
                       huge.map(lambda x: -x))
    if kind == "positive":
        return positive
    if kind == "huge":
        return huge
    if kind == "signed":
        return signed
    if kind == "cancel":
        return st.sampled_from([1.0, -1.0, 0.5, -0.5, 1 - 2.0 ** -30, -(1 - 2.0 ** -30), 2.0, -2.0])
    specials = [0.0, math.nan] + ([] if finite_only else [math.inf, -math.inf])
    return st.one_of(st.sampled_from(specials), positive, signed)


@st.composite
def _weights(draw, shape: tuple, dtype, finite_only: bool = False):
    """b for an a of shape: None, or a drawn kind in a shape that broadcasts to a's."""
    if draw(st.booleans()) is False:
        return None, "none"
    kind = draw(st.sampled_from(WEIGHT_KINDS))
    form = draw(st.sampled_from(["full", "broadcast", "scalar"]))
    if form == "scalar" or not shape:
        bshape = ()
    elif form == "broadcast":
        bshape = tuple(n if draw(st.booleans()) else 1 for n in shape)
        bshape = bshape[draw(st.integers(0, len(bshape))):]
    else:
        bshape = shape
    size = math.prod(bshape)
    vals = draw(st.lists(_weight_element(kind, finite_only), min_size=size, max_size=size))
    bdtype = np.dtype(dtype) if draw(st.booleans()) else np.dtype(np.float64)
    b = _cast(vals, bdtype).reshape(bshape)
    if finite_only:
        b = np.where(np.isinf(b), bdtype.type(1.0), b)
    if bshape == () and draw(st.booleans()):
        value = float(vals[0])
        if finite_only and not np.isfinite(_cast(value, dtype)):
            value = 1.0                     # a weak Python float takes a's dtype
        return value, f"{kind} (Python float)"
    return b, f"{kind} {bdtype.name}{list(bshape)}"


@st.composite
def reduction_cases(draw, dtype, weights: bool = True, finite_weights: bool = False,
                    ints_only: bool = False, tau: bool = True, min_ndim: int = 0):
    """An awkward reduction input (see the module docstring)."""
    t = draw(temperatures()) if tau else 1.0
    shape = draw(shapes(min_ndim=min_ndim))
    axis = draw(st.sampled_from(_axis_choices(len(shape), ints_only)))
    axes = normalize_axes(axis, max(len(shape), 1))
    a, kinds = _assemble(draw, shape, axes, dtype, t)
    a, layout = _layout(draw, a)
    b, bkind = draw(_weights(shape, dtype, finite_weights)) if weights else (None, "none")
    keepdims = draw(st.booleans())
    return Case(a, axis, keepdims, b, t, kinds, bkind, layout)


@st.composite
def logaddexp_cases(draw, dtype):
    """x1, x2 (rows of two: cancelling pairs, ties, tails ...) in broadcasting shapes."""
    t = draw(temperatures())
    shape = draw(shapes(max_size=32))
    n = math.prod(shape)
    pairs, kinds = [], []
    for _ in range(n):
        v, k = draw(row(2, dtype, t))
        pairs.append(v)
        kinds.append(k)
    pairs = np.array(pairs, dtype=dtype).reshape(shape + (2,))
    x1, x2 = np.array(pairs[..., 0], order="C"), np.array(pairs[..., 1], order="C")
    form = draw(st.sampled_from(["same", "x2 broadcast", "x2 Python float", "x1 0-d"]))
    if form == "x2 broadcast" and x2.ndim:
        x2 = x2[..., :1] if x2.shape[-1] else x2
    elif form == "x2 Python float" and x2.size:
        x2 = float(x2.reshape(-1)[0])
    elif form == "x1 0-d" and x1.size:
        x1 = x1.reshape(-1)[0].copy()[()]
        x1 = np.asarray(x1)
    return Case(x1, None, False, x2, t, tuple(kinds), form, "C")


@st.composite
def logmatmulexp_cases(draw, dtype):
    """a (n, k), (k,) or (batch, n, k) and b (k, m), (k,) or (k, m): rows of a and columns of b drawn
    as rows (so the shift cannot see every cancellation), k may be 0."""
    k = draw(st.integers(0, 8))
    a_form = draw(st.sampled_from(["2d", "1d", "batch"]))
    b_form = draw(st.sampled_from(["2d", "1d", "batch"]))
    n = draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    batch = draw(st.integers(1, 2))
    b_dtype = np.dtype(dtype) if draw(st.integers(0, 3)) else np.dtype(np.float64)

    def matrix(rows_n, dt):
        rows, kinds = [], []
        for _ in range(rows_n):
            v, kd = draw(row(k, dt))
            rows.append(v)
            kinds.append(kd)
        return (np.array(rows, dtype=dt).reshape(rows_n, k), kinds)

    if a_form == "1d":
        A, ka = matrix(1, dtype)
        A = A[0]
    elif a_form == "batch":
        A, ka = matrix(batch * n, dtype)
        A = A.reshape(batch, n, k)
    else:
        A, ka = matrix(n, dtype)
    if b_form == "1d":
        B, kb = matrix(1, b_dtype)
        B = B[0]
    elif b_form == "batch":
        B, kb = matrix(m * (1 if a_form == "batch" else batch), b_dtype)
        B = B.reshape(1 if a_form == "batch" else batch, m, k).transpose(0, 2, 1)
    else:
        B, kb = matrix(m, b_dtype)
        B = B.T
    B = np.ascontiguousarray(B) if draw(st.booleans()) else B
    return Case(A, None, False, B, 1.0, tuple(ka + kb), f"{b_form} {b_dtype.name}", a_form)


# --------------------------------------------------------------------------------------------
# Checks and statistics
# --------------------------------------------------------------------------------------------

def classify(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return "finite"


def fmt(x) -> str:
    """An exact value for a message: 25 digits, or its power of ten out of the float64 range
    (printing all digits of exp(-1e160) takes seconds)."""
    if not mpmath.isfinite(x) or x == 0 or 1e-320 < abs(x) < 1e308:
        return mpmath.nstr(x, 25)
    with mpmath.workdps(30):
        return f"{'-' if x < 0 else ''}10**{mpmath.nstr(mpmath.log10(abs(x)), 20)}"


def round_to(exact, dtype) -> float:
    """exact (mpf or float) rounded to dtype, as a Python float (inf beyond the dtype's range)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dtype(dtype).type(float(exact)))


def spacing_of(r: float, dtype) -> float:
    dt = np.dtype(dtype)
    with np.errstate(over="ignore"):
        s = float(np.spacing(dt.type(abs(r))))
    if not math.isfinite(s):      # at the dtype's max: the spacing below it
        s = float(np.finfo(dt).max) - float(np.nextafter(np.finfo(dt).max, dt.type(0)))
    return s


@dataclass
class _Entry:
    cases: int = 0
    values: int = 0
    worst_ulp: float = 0.0
    worst_excess: float = -math.inf
    failed: int = 0
    scipy: int = 0
    scipy_documented: int = 0
    scipy_rounding: int = 0
    undetermined: int = 0


LOG = os.environ.get("LSEARRAY_FUZZ_LOG")
ONLY = re.compile(os.environ["LSEARRAY_FUZZ_ONLY"]) if os.environ.get("LSEARRAY_FUZZ_ONLY") else None
STATS: dict[tuple[str, str, str], _Entry] = defaultdict(_Entry)
_ERRORS: dict[str, type] = {}


def _error(category: str) -> type:
    """One AssertionError subclass per failure class, so that hypothesis tells them apart."""
    name = "Fuzz_" + "".join(c if c.isalnum() else "_" for c in category)
    if name not in _ERRORS:
        _ERRORS[name] = type(name, (AssertionError,), {"__module__": __name__})
    return _ERRORS[name]


class Checker:
    """Collects the failures of one example (by class) and its statistics."""

    def __init__(self, func: str, path: str, dtype: Any, case: Any = None, **draws: Any) -> None:
        self.func, self.path, self.dtype_name = func, path, np.dtype(dtype).name
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.input = repr(case) + "".join(f", {k}={v!r}" for k, v in draws.items())
        self.entry = STATS[(func, path, self.dtype_name)]
        self.entry.cases += 1

    def fail(self, category: str, message: str) -> None:
        self.failures[category].append(message)

    def meta(self, what: str, got: Any, expected: Any) -> bool:
        if got != expected:
            self.fail(f"{what}", f"{what}: got {got!r}, expected {expected!r}")
            return False
        return True

    def values(self, got, exact, dtype, *, ulps, abs_slack=None, looser=None, unit=None, skip=None,
               what="value", tag: Any = "") -> None:
        """Every element of got (float array) against exact (object array of mpf), in ulp of dtype:
        the special-value class must match the exact value rounded to dtype; a finite value must be
        within ulps * unit + abs_slack + looser, unit the spacing of the rounded exact value (or the
        given one). abs_slack is the contract's absolute term (and what a cancelling sum forgives),
        looser the undocumented bound of the array-API and dask paths; the statistics report the
        error in units and the error beyond abs_slack (not beyond looser). tag (a string, or an
        array of them per element) names the accuracy failure class."""
        got = np.asarray(got, dtype=np.float64)
        exact = np.asarray(exact, dtype=object)
        if got.shape != exact.shape:
            self.fail("shape", f"{what}: shape {got.shape}, expected {exact.shape}")
            return
        shape = got.shape
        ulps = np.broadcast_to(np.asarray(ulps, dtype=np.float64), shape)
        abs_slack = np.broadcast_to(np.asarray(0.0 if abs_slack is None else abs_slack, np.float64), shape)
        looser = np.broadcast_to(np.asarray(0.0 if looser is None else looser, np.float64), shape)
        skip = np.broadcast_to(np.asarray(False if skip is None else skip), shape)
        e = self.entry
        for idx in np.ndindex(shape):
            if skip[idx]:
                e.undetermined += 1
                continue
            g, x = float(got[idx]), exact[idx]
            r = round_to(x, dtype)
            cg, cr = classify(g), classify(r)
            e.values += 1
            sp = spacing_of(r, dtype) if unit is None else float(np.asarray(unit)[idx])
            allowed = float(ulps[idx]) * sp + float(abs_slack[idx]) + float(looser[idx])
            if mpmath.isfinite(x) and cg != cr and cg != "nan":
                # the exact value is finite but one side overflows the dtype: an accuracy question
                # (a finite result within the bound of an exact value beyond the dtype's max is fine)
                if cg == "finite":
                    cr = "finite"
                elif allowed >= float(np.finfo(dtype).max):
                    continue
            if cg != cr:
                self.fail(f"special {what} {cr}->{cg}",
                          f"{what}{list(idx)}: got {g!r}, expected {r!r} (exact {fmt(x)})")
                continue
            if cr != "finite":
                continue
            with mpmath.workdps(MP_DPS):
                err = float(abs(mpmath.mpf(g) - x))
            ulp = err / sp
            excess = (err - float(abs_slack[idx])) / sp
            if ulp > e.worst_ulp:
                e.worst_ulp = ulp
            if excess > e.worst_excess:
                e.worst_excess = excess
            if err > allowed:
                t = tag if isinstance(tag, str) else str(np.asarray(tag)[idx])
                self.fail(f"accuracy {t}".strip(),
                          f"{what}{list(idx)}: got {g!r}, exact {fmt(x)}: {ulp:.4g} ulp of "
                          f"{np.dtype(dtype).name} ({excess:.4g} beyond the absolute slack "
                          f"{float(abs_slack[idx]):.3g}); allowed {float(ulps[idx]):.4g}"
                          + (f" + {float(looser[idx]) / sp:.4g} (looser bound)" if looser[idx] else ""))

    def signs(self, got, expected, skip=None) -> None:
        got = np.asarray(got, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        skip = np.broadcast_to(np.asarray(False if skip is None else skip), got.shape)
        for idx in np.ndindex(got.shape):
            if skip[idx]:
                continue
            g, x = float(got[idx]), float(expected[idx])
            if not (g == x or (math.isnan(g) and math.isnan(x))):
                self.fail(f"sign {x:g}->{g:g}", f"sign{list(idx)}: got {g!r}, expected {x!r}")

    def against_scipy(self, got, sp, exact_class, *, got_sign=None, sp_sign=None, exp_sign=None,
                      empty=None, removed_nan=None, undetermined=None, sum_class=None, sp_wide=None,
                      sp_wide_sign=None, inf_weight=None) -> None:
        """The special-value pattern of got against scipy's, element by element. A difference is
        allowed where it is documented (an empty reduction's sign; a nan or inf whose weight is 0
        removed though nothing else is left), or where the exact value is finite or a zero sum
        or scipy's nan comes from an infinite weight (inf * 0 or inf / inf in its arithmetic;
        inf_weight), so that scipy's rounding made its special value (lsearray is checked against the exact
        value there). Any other difference (lsearray agreeing with the exact reference, not with
        scipy) is a failure: an undocumented difference from scipy."""
        got = np.asarray(got, dtype=np.float64)
        sp = np.asarray(sp, dtype=np.float64)
        if got.shape != sp.shape:
            return                                  # reported by the shape check
        e = self.entry
        for idx in np.ndindex(got.shape):
            e.scipy += 1
            cg, cs = classify(float(got[idx])), classify(float(sp[idx]))
            sg = None if got_sign is None else float(np.asarray(got_sign)[idx])
            ss = None if sp_sign is None else float(np.asarray(sp_sign)[idx])
            same_sign = sg is None or sg == ss or (math.isnan(sg) and math.isnan(ss))
            if cg == cs and same_sign:
                continue
            ce = exact_class[idx]
            es = None if exp_sign is None else float(np.asarray(exp_sign)[idx])
            if empty is not None and empty and cg == cs == "-inf" and sg == 0 and ss == -1:
                e.scipy_documented += 1
                continue
            if removed_nan is not None and removed_nan[idx] and cg == ce:
                e.scipy_documented += 1             # b == 0 removes an element, even inf or nan
                continue
            if sp_wide is not None:
                cw = classify(float(np.asarray(sp_wide)[idx]))
                sw = None if sp_wide_sign is None else float(np.asarray(sp_wide_sign)[idx])
                if cw == cg and (sg is None or sg == sw or (math.isnan(sg) and math.isnan(sw))):
                    e.scipy_rounding += 1
                    continue
            if inf_weight is not None and inf_weight[idx] and cs == "nan" and cg == ce:
                e.scipy_rounding += 1
                continue
            cs_exact = ce if sum_class is None else sum_class[idx]
            zero_sum = cs_exact == "-inf" and es == 0
            if cs_exact == "finite" or (zero_sum and cs in ("finite", "-inf")) or (
                    undetermined is not None and undetermined[idx]):
                e.scipy_rounding += 1
                continue
            if cg != ce:
                continue                            # lsearray is wrong: the exact checks report it
            self.fail(f"scipy differs {cs}->{cg}",
                      f"element {list(idx)}: lsearray (and the exact reference) give {cg}"
                      f"{'' if sg is None else f' sign {sg:g}'}, scipy {cs}"
                      f"{'' if ss is None else f' sign {ss:g}'}: an undocumented difference from scipy")

    def finish(self) -> None:
        """Raise the first failure class found (one exception type per class); with
        LSEARRAY_FUZZ_ONLY=<regex>, only the classes whose name matches it."""
        if not self.failures:
            return
        self.entry.failed += 1
        names = {c: f"{self.func} {c} {self.path}" for c in self.failures}
        if ONLY is not None:
            if LOG:
                with open(LOG, "a") as f:
                    for c, n in names.items():
                        f.write(f"== {n}\n  {self.failures[c][0]}\n  input: {self.input}\n")
            names = {c: n for c, n in names.items() if ONLY.search(n)}
            if not names:
                return
        category = sorted(names, key=_ORDER)[0]
        msgs = self.failures[category]
        more = f"\n  (+{len(msgs) - 5} more)" if len(msgs) > 5 else ""
        others = [c for c in self.failures if c != category]
        tail = f"\n  other failure classes in this example: {others}" if others else ""
        text = f"{self.func} [{self.path}, {self.dtype_name}] {category}:\n  " + "\n  ".join(msgs[:5]) + more + tail
        if LOG:
            with open(LOG, "a") as f:
                f.write(f"== {names[category]}\n{text}\n  input: {self.input}\n")
        raise _error(names[category])(text)


def _ORDER(category: str) -> int:
    for i, prefix in enumerate(("raised", "reject", "shape", "dtype", "type", "kind", "special", "sign",
                                "scipy", "accuracy")):
        if category.startswith(prefix):
            return i
    return 99


def stats_table() -> str:
    """The statistics as a Markdown table, one row per function, path and dtype."""
    lines = [
        "| function | path | dtype | cases | values checked | worst ulp | worst ulp beyond the absolute slack "
        "| failing cases | not determined | scipy: compared / documented diff. / scipy's rounding |",
        "|" + "---|" * 10,
    ]
    for (func, path, dtype), e in sorted(STATS.items()):
        excess = "-" if e.worst_excess == -math.inf else f"{max(e.worst_excess, 0.0):.3g}"
        scipy = f"{e.scipy} / {e.scipy_documented} / {e.scipy_rounding}" if e.scipy else "-"
        lines.append(f"| {func} | {path} | {dtype} | {e.cases} | {e.values} | {e.worst_ulp:.3g} | {excess} | "
                     f"{e.failed} | {e.undetermined} | {scipy} |")
    lines.append("")
    lines.append("dtype: that of a (a float64 b makes a float64 result). worst ulp: |got - exact| / spacing(exact "
                 "in the result's dtype) (logmatmulexp: of max(|out|, 1)); beyond the absolute slack: after "
                 "2**-100 max(|max a|, tau) (float64) and, with negative weights, tau eps kappa; not determined: "
                 "values of sums whose sign eps kappa >= 1/2 leaves open. Cases include hypothesis' shrinking.")
    return "\n".join(lines)
