"""Time lsearray beside scipy.special, torch, jax, a numpy two-pass recipe and x.sum() in one run.

Usage::

    python asv_bench/side_by_side.py [--size 2e7] [--threads 1] [--repeat 7]
        [--cases 1d,2d,short,tall,softmax,small,relatives] [--accuracy] [--plot PATH] [--quick]
        [--only NAMES] [--json PATH] [--plot-only] [--scaling]

One run is one process: ``asv_bench/figures.py`` runs it several times and writes the
median and range of its ratios into the README and the documentation.

Cases (``--cases``, comma separated, default all); n is ``--size``:

- ``1d``: logsumexp of a 1-D float64 and a float32 array of n elements;
- ``2d``: logsumexp of a (n/1000, 1000) float64 array over axis 1 and over axis 0;
- ``short``: logsumexp of many short rows, (n/20, 10) float64 over axis 1;
- ``tall``: a tall reduction, (10, n/20) float64 over axis 0;
- ``softmax``: softmax and log_softmax of (n/1000, 1000) float64 and float32 over axis 1;
- ``small``: logsumexp and softmax of 10 float64 elements (call overhead, in microseconds);
- ``relatives``: float64 logaddexp of two arrays of n/2 elements against ``np.logaddexp``;
  logcumsumexp of n/2 elements and of a (1000, n/2000) array along axis 0 and 1 against
  ``np.logaddexp.accumulate`` and ``torch.logcumsumexp``; logmatmulexp of two (m, m) arrays,
  m = sqrt(n/5), against the naive ``log(exp(a) @ exp(b))`` and the shifted
  ``ma + mb + log(exp(a - ma) @ exp(b - mb))`` (ma the row maxima of a, mb the column maxima of b).

At the default n = 2e7 the 2-D shapes are (20000, 1000), (1e6, 10) and (10, 1e6); the
relatives take 1e7 elements, (1000, 10000) and (2000, 2000).
Contenders: lsearray; scipy.special; torch; jax (``jax.scipy.special.logsumexp``,
``jax.nn.softmax``, ``jax.nn.log_softmax``, jitted, with ``jax_enable_x64`` so float64 stays
float64, timed to ``block_until_ready``); the numpy two-pass recipe (max, then exp and sum);
``x.sum()`` (one read of the input: the floor) and ``np.exp(x, out=y)`` (one read, one write
and one exp per element). torch and jax are left out when not installed (or with
``--no-torch`` / ``--no-jax``).

Absolute times on shared machines drift, so every number in one table comes from one run:
each round calls every contender once per case (in a rotating order), and the best of
``--repeat`` rounds is reported, so drift hits all contenders alike. Small cases loop until
one sample takes ``--min-sample`` seconds. The tables give times and the ratios
"other / lsearray" (how many times lsearray is faster) and "lsearray / floor". A memory table
gives the peak extra memory of one call, traced by tracemalloc (numpy reports its
allocations to it; memory a C kernel takes with malloc does not show); for the relatives,
of logmatmulexp only. ``--accuracy`` adds the max ulp error against an mpmath reference
(50 digits) on hard float64 inputs, and with the relatives the max over the prefixes of
logcumsumexp (where a prefix crosses 0 the max and the log of the sum cancel).

``--plot PATH`` also writes a PNG of throughput (elements per second, log-log) against n,
from 1e3 to ``--size`` (about 8 points), for 1-D float64 logsumexp: lsearray on one thread (and on
``--threads`` threads when that is more than one), scipy, torch, jax, the two-pass recipe and
``x.sum()``. It needs matplotlib (the ``bench`` extra), imported only then, with the Agg backend.

``--scaling`` times lsearray alone instead, on one thread and on ``--threads`` threads in
the same interleaved rounds, and prints the speed-up for every selected case but the small
ones and the relatives.

``--quick`` is a smoke run: n = 1e5 unless ``--size`` is given, one round unless
``--repeat`` is given, 2 ms samples unless ``--min-sample`` is given, 4 plot points.

Thread limits go to every library: OMP_NUM_THREADS (and the BLAS variables) are set
before numpy is imported, threadpoolctl.threadpool_limits(N) limits every OpenMP/BLAS pool
loaded, and torch.set_num_threads(N) limits torch. jax (XLA) has no thread limit, so unless
``--no-pin`` is given the process is pinned to N CPUs (os.sched_setaffinity) before jax is
imported. The exit status is 1 when a contender raised (it is reported, not timed).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

__all__ = ["CASE_GROUPS", "main", "parse_args"]

CASE_GROUPS = ("1d", "2d", "short", "tall", "softmax", "small", "relatives")
DEFAULT_SIZE, QUICK_SIZE = 2e7, 1e5
DEFAULT_REPEAT, DEFAULT_MIN_SAMPLE = 7, 0.02
QUICK_MIN_SAMPLE = 0.002
PLOT_POINTS, QUICK_PLOT_POINTS, PLOT_MIN_N = 8, 4, 1000
SMALL_N = 10


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with the ``--quick`` defaults filled in and ``--cases`` as a tuple."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="cases: 1d, 2d, short, tall, softmax, small, relatives (see the module docstring)")
    parser.add_argument("--size", type=float, default=None,
                        help=f"n: 1-D cases of n elements, 2-D cases (n/1000, 1000), (n/20, 10), "
                             f"(10, n/20) (default {DEFAULT_SIZE:.0e}, {QUICK_SIZE:.0e} with "
                             f"--quick)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for every library (default 1)")
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"interleaved rounds; the best is reported "
                             f"(default {DEFAULT_REPEAT}, 1 with --quick)")
    parser.add_argument("--min-sample", type=float, default=None, metavar="SECONDS",
                        help=f"small cases loop until one sample takes this long "
                             f"(default {DEFAULT_MIN_SAMPLE}, {QUICK_MIN_SAMPLE} with --quick)")
    parser.add_argument("--cases", default=",".join(CASE_GROUPS),
                        help="comma-separated subset of " + ",".join(CASE_GROUPS)
                             + " (default all)")
    parser.add_argument("--accuracy", action="store_true",
                        help="also print max ulp errors against mpmath on hard float64 inputs")
    parser.add_argument("--plot", metavar="PATH", default=None,
                        help="write a PNG of 1-D float64 logsumexp throughput against n "
                             "(needs matplotlib)")
    parser.add_argument("--plot-only", action="store_true",
                        help="time only the throughput series of --plot (with --json, record "
                             "them; asv_bench/figures.py --plot draws several runs)")
    parser.add_argument("--scaling", action="store_true",
                        help="time lsearray alone on 1 and on --threads threads, interleaved, "
                             "and print the speed-up (instead of the tables)")
    parser.add_argument("--quick", action="store_true",
                        help="fast smoke run: smaller defaults for --size, --repeat, "
                             "--min-sample and fewer plot points")
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="time only these contenders (comma separated, e.g. jax) beside "
                             "lsearray; the others are still checked for agreement")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    parser.add_argument("--no-jax", action="store_true", help="leave jax out")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the machine, every time and the memory and accuracy "
                             "tables to PATH as JSON (asv_bench/figures.py reads it)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the process to --threads CPUs (jax then uses all)")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else DEFAULT_SIZE
    if args.repeat is None:
        args.repeat = 1 if args.quick else DEFAULT_REPEAT
    if args.min_sample is None:
        args.min_sample = QUICK_MIN_SAMPLE if args.quick else DEFAULT_MIN_SAMPLE
    args.plot_points = QUICK_PLOT_POINTS if args.quick else PLOT_POINTS
    args.size = int(args.size)
    if args.size < PLOT_MIN_N:
        parser.error(f"--size must be at least {PLOT_MIN_N} (rows of 1000), got {args.size}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    unknown = [c for c in cases if c not in CASE_GROUPS]
    if unknown or not cases:
        parser.error(f"--cases expects a comma-separated subset of {','.join(CASE_GROUPS)}, "
                     f"got {args.cases!r}")
    args.cases = cases
    args.only = None if args.only is None else {"lsearray", *(n.strip() for n in args.only.split(","))}
    return args


def pin_cpus(n: int) -> str:
    """Restrict this process to ``n`` of its CPUs (Linux); say what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpus = sorted(os.sched_getaffinity(0))
    if n >= len(cpus):
        return f"not pinned ({len(cpus)} CPUs allowed, {n} thread(s) asked)"
    os.sched_setaffinity(0, cpus[:n])
    return f"pinned to CPU(s) {cpus[:n]}"


ARGS = parse_args() if __name__ == "__main__" else None
PINNING = "not pinned"

if ARGS is not None:
    # Before numpy, scipy, lsearray, torch or jax load their thread pools.
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)
    PINNING = "not pinned (--no-pin)" if ARGS.no_pin else pin_cpus(ARGS.threads)

import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import special  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import lsearray  # noqa: E402
import lsecore  # noqa: E402
from throughput_plot import draw  # noqa: E402  (beside this script, on its sys.path)

torch: Any = None
if ARGS is None or not ARGS.no_torch:
    try:
        import torch  # noqa: E402
    except ImportError:
        torch = None

jax: Any = None
jnp: Any = None
if ARGS is None or not ARGS.no_jax:
    try:
        import jax  # noqa: E402
        import jax.numpy as jnp  # noqa: E402
        import jax.scipy.special  # noqa: E402, F401  (jax.scipy is not imported by jax)
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = jnp = None

MIB = 1024.0 * 1024.0
FAILURES: dict[tuple[str, str], str] = {}  # (case, contender) -> error message
FLOORS = ("x.sum()", "np.exp(x, out=y)")
CONTENDER_ORDER = ("lsearray", "scipy", "np.logaddexp", "np.logaddexp.accumulate", "torch", "jax",
                   "numpy two-pass", "naive numpy", "shifted numpy") + FLOORS
SHORT_NAMES = {"numpy two-pass": "two-pass", "np.exp(x, out=y)": "np.exp",
               "np.logaddexp.accumulate": "accumulate", "naive numpy": "naive", "shifted numpy": "shifted"}
SCIPY_KINDS = ("logsumexp", "softmax", "log_softmax")
RELATIVES = ("logaddexp", "logcumsumexp", "logmatmulexp")
TORCH_KINDS = SCIPY_KINDS + ("logcumsumexp",)
REFERENCES = {"logaddexp": "np.logaddexp", "logcumsumexp": "np.logaddexp.accumulate",
              "logmatmulexp": "shifted numpy"}  # what the relatives are checked against
LEGEND = ("two-pass: the numpy recipe (max, then exp and sum; softmax: exp(x - max) / sum); "
          "x.sum(): one read of the input, the floor; np.exp: np.exp(x, out=y). "
          "'other / lsearray' above 1: lsearray is that many times faster.")
RELATIVES_LEGEND = ("accumulate: np.logaddexp.accumulate; naive: np.log(np.exp(a) @ np.exp(b)); "
                    "shifted: ma + mb + np.log(np.exp(a - ma) @ np.exp(b - mb)), ma the row maxima "
                    "of a, mb the column maxima of b. 'other / lsearray' above 1: lsearray is that "
                    "many times faster.")


# ---------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    """One row of a table: ``kind`` (a name in SCIPY_KINDS or RELATIVES) of ``a`` over ``axis``.

    ``b`` is the second operand of logaddexp and logmatmulexp.
    """
    group: str
    label: str
    kind: str
    a: np.ndarray
    axis: int | None
    b: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the operands."""
        return self.a.nbytes + (0 if self.b is None else self.b.nbytes)


def make_cases(n: int, groups: Iterable[str], seed: int = 12345) -> list[Case]:
    """The selected cases; every 2-D array is a C-order view of the 1-D data (no copies)."""
    rng = np.random.default_rng(seed)
    x64 = rng.standard_normal(n) * 10.0
    x32 = x64.astype(np.float32)
    rows, short = n // 1000, n // 20
    x2d = x64[: rows * 1000].reshape(rows, 1000)
    x2d32 = x32[: rows * 1000].reshape(rows, 1000)
    small = rng.standard_normal(SMALL_N) * 10.0
    half, m = n // 2, math.isqrt(n // 5)
    scan = x64[: 1000 * max(1, n // 2000)].reshape(1000, -1)
    left, right = x64[: m * m].reshape(m, m), x64[m * m: 2 * m * m].reshape(m, m)
    by_group = {
        "1d": [Case("1d", f"1-D float64 n={n:.3g}", "logsumexp", x64, None),
               Case("1d", f"1-D float32 n={n:.3g}", "logsumexp", x32, None)],
        "2d": [Case("2d", f"2-D float64 ({rows}, 1000) axis=1", "logsumexp", x2d, 1),
               Case("2d", f"2-D float64 ({rows}, 1000) axis=0", "logsumexp", x2d, 0)],
        "short": [Case("short", f"short rows float64 ({short}, 10) axis=1", "logsumexp",
                       x64[: short * 10].reshape(short, 10), 1)],
        "tall": [Case("tall", f"tall float64 (10, {short}) axis=0", "logsumexp",
                      x64[: short * 10].reshape(10, short), 0)],
        "softmax": [Case("softmax", f"{kind} {a.dtype} ({rows}, 1000) axis=1", kind, a, 1)
                    for kind in ("softmax", "log_softmax") for a in (x2d, x2d32)],
        "small": [Case("small", f"logsumexp float64 n={SMALL_N}", "logsumexp", small, None),
                  Case("small", f"softmax float64 n={SMALL_N}", "softmax", small, None)],
        "relatives": [
            Case("relatives", f"logaddexp float64 n={half:.3g}", "logaddexp", x64[:half], None,
                 x64[half: 2 * half]),
            Case("relatives", f"logcumsumexp 1-D float64 n={half:.3g}", "logcumsumexp", x64[:half], 0),
            *(Case("relatives", f"logcumsumexp float64 {scan.shape} axis={axis}", "logcumsumexp", scan,
                   axis) for axis in (0, 1)),
            Case("relatives", f"logmatmulexp float64 {left.shape} @ {right.shape}", "logmatmulexp", left,
                 None, right)],
    }
    return [case for g in CASE_GROUPS if g in groups for case in by_group[g]]


# ---------------------------------------------------------------------------- contenders

def numpy_two_pass(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """max, then log(sum(exp(a - max))) + max: two reads and two input-sized temporaries."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def numpy_softmax(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """exp(a - max) / sum: the two-pass softmax recipe (finite input)."""
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def numpy_log_softmax(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """a - max - log(sum(exp(a - max))): the two-pass log_softmax recipe (finite input)."""
    s = a - np.max(a, axis=axis, keepdims=True)
    s -= np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    return s


def numpy_naive_logmatmulexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) @ exp(b)): overflows where the entries pass about 709."""
    return np.log(np.exp(a) @ np.exp(b))


def numpy_shifted_logmatmulexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ma + mb + log(exp(a - ma) @ exp(b - mb)), ma the row maxima of a and mb the column maxima of b.

    One shot: it underflows where the maxima of a row and a column sit at different k.
    """
    ma, mb = a.max(-1, keepdims=True), b.max(-2, keepdims=True)
    return ma + mb + np.log(np.exp(a - ma) @ np.exp(b - mb))


def torch_call(kind: str, t: Any, axis: int | None) -> Any:
    """torch's logsumexp, softmax, log_softmax or logcumsumexp over ``axis`` (all elements when None)."""
    if axis is None:
        t, axis = t.reshape(-1), 0
    if kind == "logsumexp":
        return torch.logsumexp(t, dim=axis)
    return getattr(torch, kind)(t, dim=axis)


def jax_function(kind: str) -> Callable[..., Any]:
    """jax's logsumexp, softmax or log_softmax, taking ``axis=``."""
    if kind == "logsumexp":
        return jax.scipy.special.logsumexp
    return getattr(jax.nn, kind)


_JAX_ROOTS: dict[int, tuple[np.ndarray, Any]] = {}
_JAX_CALLS: dict[tuple[Any, ...], Callable[[], Any]] = {}


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def jax_contender(kind: str, a: np.ndarray, axis: int | None) -> Callable[[], Any]:
    """A no-argument jitted call on a device copy of ``a``.

    The data ``a`` views (a C-contiguous slice of a 1-D array) is copied to jax once and
    shared by every case; the jitted function slices and reshapes it, which XLA does in place.
    Calls are cached, so each case compiles once.
    """
    root = _root(a)
    if not a.flags.c_contiguous or root.ndim != 1:
        raise ValueError("jax cases must be C-contiguous views of 1-D data")
    start = (a.__array_interface__["data"][0] - root.__array_interface__["data"][0]) // a.itemsize
    key = (id(root), kind, start, a.shape, axis)
    if key not in _JAX_CALLS:
        if id(root) not in _JAX_ROOTS:  # the root is kept too, so its id stays unique
            _JAX_ROOTS[id(root)] = (root, jnp.asarray(root))
        xj = _JAX_ROOTS[id(root)][1]
        stop, shape, fn = start + a.size, a.shape, jax_function(kind)
        jitted = jax.jit(lambda x: fn(x[start:stop].reshape(shape), axis=axis))
        _JAX_CALLS[key] = lambda: jitted(xj).block_until_ready()
    return _JAX_CALLS[key]


_OUT_BUFFERS: dict[tuple[int, str], np.ndarray] = {}


def out_like(a: np.ndarray) -> np.ndarray:
    """A shared uninitialized output buffer with ``a``'s shape and dtype (for np.exp)."""
    key = (a.size, a.dtype.str)
    if key not in _OUT_BUFFERS:
        _OUT_BUFFERS[key] = np.empty(a.size, a.dtype)
    return _OUT_BUFFERS[key].reshape(a.shape)


def reference_contenders(case: Case) -> dict[str, Callable[[], Any]]:
    """lsearray and the scipy and numpy recipes for ``case`` (the ones tracemalloc sees)."""
    a, b, axis, kind = case.a, case.b, case.axis, case.kind
    if kind == "logaddexp":
        return {"lsearray": lambda: lsearray.logaddexp(a, b), "np.logaddexp": lambda: np.logaddexp(a, b)}
    if kind == "logcumsumexp":
        return {"lsearray": lambda: lsearray.logcumsumexp(a, axis=axis),
                "np.logaddexp.accumulate": lambda: np.logaddexp.accumulate(a, axis=axis)}
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


def contenders(case: Case, floors: bool = True) -> dict[str, Callable[[], Any]]:
    """name -> no-argument callable for ``case``, in CONTENDER_ORDER (jax and floors: SCIPY_KINDS)."""
    a, axis, kind = case.a, case.axis, case.kind
    fns = reference_contenders(case)
    if torch is not None and kind in TORCH_KINDS:
        t = torch.from_numpy(a)  # shares memory, no copy
        fns["torch"] = lambda: torch_call(kind, t, axis)
    if kind in SCIPY_KINDS:
        if jax is not None:
            try:
                fns["jax"] = jax_contender(kind, a, axis)
            except Exception as exc:
                FAILURES[case.label, "jax"] = f"{type(exc).__name__}: {exc}"
        if floors:
            y = out_like(a)
            fns["x.sum()"] = lambda: a.sum(axis=axis)
            fns["np.exp(x, out=y)"] = lambda: np.exp(a, out=y)
    return {name: fns[name] for name in CONTENDER_ORDER if name in fns}


def as_numpy(r: Any) -> np.ndarray:
    """A contender's result as a numpy array."""
    if torch is not None and isinstance(r, torch.Tensor):
        return r.numpy()
    return np.asarray(r)


# ---------------------------------------------------------------------------- timing

@dataclass
class Timed:
    """One timed callable: ``key`` (case, contender); ``threads`` None runs under the run's limit."""
    key: tuple[str, str]
    fn: Callable[[], Any]
    threads: int | None = None
    number: int = 1


def calibrate(fn: Callable[[], Any], min_sample: float) -> int:
    """Calls per sample so that one sample takes at least ``min_sample`` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    if dt >= min_sample:
        return 1
    return int(min(10_000, max(1, np.ceil(min_sample / max(dt, 1e-7)))))


def prepare(plan: list[Timed], min_sample: float) -> list[Timed]:
    """Warm every entry up (page in, compile, start pools) and calibrate it; drop failures."""
    ready = []
    for entry in plan:
        with threadpool_limits(limits=entry.threads) if entry.threads else nullcontext():
            try:
                entry.fn()
            except Exception as exc:  # a failing contender is reported, not timed
                FAILURES[entry.key] = f"{type(exc).__name__}: {exc}"
                continue
            entry.number = calibrate(entry.fn, min_sample)
        ready.append(entry)
    return ready


def _sample(entry: Timed) -> float:
    t0 = time.perf_counter()
    for _ in range(entry.number):
        entry.fn()
    return (time.perf_counter() - t0) / entry.number


def time_interleaved(plan: list[Timed], repeat: int, min_sample: float) -> dict[tuple[str, str], float]:
    """Best seconds per call for every entry, from ``repeat`` interleaved rounds.

    Each round calls every entry once, in an order rotated by one each round; entries with
    their own ``threads`` run together under that limit.
    """
    plan = prepare(plan, min_sample)
    best = {entry.key: float("inf") for entry in plan}
    groups: dict[int | None, list[Timed]] = {}
    for entry in plan:
        groups.setdefault(entry.threads, []).append(entry)
    order = list(groups)
    for rnd in range(repeat):
        for threads in order[rnd % len(order):] + order[: rnd % len(order)]:
            entries = groups[threads]
            k = rnd % len(entries)
            with threadpool_limits(limits=threads) if threads else nullcontext():
                for entry in entries[k:] + entries[:k]:
                    best[entry.key] = min(best[entry.key], _sample(entry))
    return best


def reference(case: Case) -> np.ndarray:
    """What ``case``'s contenders are checked against: scipy in float64, or the relative's REFERENCES."""
    if case.kind in RELATIVES:  # float64 cases
        return np.asarray(reference_contenders(case)[REFERENCES[case.kind]]())
    return np.asarray(getattr(special, case.kind)(case.a.astype(np.float64), axis=case.axis))


def tolerance(case: Case) -> float:
    """How far from ``reference`` a contender of ``case`` may be, in max |r - ref| / max(|ref|, 1).

    1e-5 for float32, 1e-10 for logcumsumexp (numpy's and torch's sequential scans drift with
    the length: 2e-12 at 1e7 elements), 1e-12 otherwise.
    """
    if case.a.dtype == np.float32:
        return 1e-5
    return 1e-10 if case.kind == "logcumsumexp" else 1e-12


def check_agreement(cases: list[Case]) -> dict[tuple[str, str], float | str]:
    """max |r - ref| / max(|ref|, 1) of each contender against ``reference`` in float64, per case."""
    diffs: dict[tuple[str, str], float | str] = {}
    for case in cases:
        ref = reference(case)
        for name, fn in contenders(case, floors=False).items():
            try:
                r = as_numpy(fn()).astype(np.float64)
            except Exception as exc:
                FAILURES[case.label, name] = f"{type(exc).__name__}: {exc}"
                diffs[case.label, name] = "failed"
                continue
            if r.shape != ref.shape:
                diffs[case.label, name] = f"shape {r.shape} != {ref.shape}"
                continue
            diffs[case.label, name] = float(np.max(np.abs(r - ref) / np.maximum(np.abs(ref), 1.0)))
    return diffs


def peak_extra_bytes(fn: Callable[[], Any]) -> int | None:
    """Peak memory traced by tracemalloc during one call above what was held before; None if it fails."""
    try:
        return _peak_extra_bytes(fn)
    except Exception:
        return None


def _peak_extra_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        r = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del r
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


# ---------------------------------------------------------------------------- accuracy

def accuracy_cases(seed: int) -> list[tuple[str, np.ndarray]]:
    """Hard float64 logsumexp inputs: a dominant term, offsets near 700, ties."""
    rng = np.random.default_rng(seed)
    near40 = -40.0 + rng.uniform(-1.0, 1.0, 10_000)
    return [
        ("[0, -50]", np.array([0.0, -50.0])),
        ("normal n=1e4 + 700", rng.standard_normal(10_000) + 700.0),
        ("1e4 near -40 plus one 0", np.concatenate([near40, [0.0]])),
        ("ties [0, 0, 0, -50]", np.array([0.0, 0.0, 0.0, -50.0])),
        ("ties 2x0 + 1000x(-45)", np.concatenate([np.zeros(2), np.full(1000, -45.0)])),
        ("ties 1e4 x 1.5", np.full(10_000, 1.5)),
    ]


def cumulative_accuracy_cases(seed: int) -> list[tuple[str, np.ndarray]]:
    """Hard 1-D float64 logcumsumexp inputs: terms far below the running max, sorted data, near 700."""
    rng = np.random.default_rng(seed)
    ascending = np.sort(rng.standard_normal(10_000) * 10.0)
    return [
        ("[0, 1e4 x (-50)]", np.concatenate([[0.0], np.full(10_000, -50.0)])),
        ("[0, -50] x 5e3", np.tile([0.0, -50.0], 5000)),
        ("sorted normal x 10, n=1e4", ascending),
        ("sorted descending normal x 10, n=1e4", ascending[::-1].copy()),
        ("normal n=1e4 + 700", rng.standard_normal(10_000) + 700.0),
    ]


def ulp_error(value: Any, ref: Any) -> float:
    """|value - ref| in units of the float64 spacing at ref."""
    from mpmath import mp
    value = float(value)
    if not np.isfinite(value):
        return float("inf")
    ulp = np.spacing(abs(float(ref)))
    return float(abs(mp.mpf(value) - ref) / mp.mpf(float(ulp)))


def accuracy_contenders(a: np.ndarray) -> dict[str, Callable[[], Any]]:
    """name -> no-argument logsumexp of ``a`` (float64) for the accuracy table."""
    fns: dict[str, Callable[[], Any]] = {
        "lsearray": lambda: lsearray.logsumexp(a),
        "scipy": lambda: special.logsumexp(a),
        "numpy two-pass": lambda: numpy_two_pass(a),
    }
    if torch is not None:
        fns["torch"] = lambda: torch_call("logsumexp", torch.from_numpy(a), None)
    if jax is not None:
        fns["jax"] = lambda: jax.scipy.special.logsumexp(jnp.asarray(a))
    return fns


def cumulative_contenders(a: np.ndarray) -> dict[str, Callable[[], Any]]:
    """name -> no-argument logcumsumexp of 1-D ``a`` (float64) for the accuracy table."""
    fns: dict[str, Callable[[], Any]] = {
        "lsearray": lambda: lsearray.logcumsumexp(a),
        "np.logaddexp.accumulate": lambda: np.logaddexp.accumulate(a),
    }
    if torch is not None:
        fns["torch"] = lambda: torch_call("logcumsumexp", torch.from_numpy(a), None)
    return fns


def mpmath_references(a: np.ndarray, cumulative: bool) -> list[Any]:
    """[log(sum(exp(a)))] in mpmath, or with ``cumulative`` the log of every prefix sum."""
    from mpmath import mp
    if not cumulative:
        return [mp.log(mp.fsum(mp.exp(mp.mpf(float(x))) for x in a))]
    total, refs = mp.mpf(0), []
    for x in a:
        total += mp.exp(mp.mpf(float(x)))
        refs.append(mp.log(total))
    return refs


def run_accuracy(seed: int, cumulative: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of max ulp errors against mpmath, with a final **max** row.

    Of logsumexp, or with ``cumulative`` of logcumsumexp, the max over its prefixes.
    """
    from mpmath import mp
    mp.dps = 50
    cases, contenders_of = ((cumulative_accuracy_cases(seed), cumulative_contenders) if cumulative
                            else (accuracy_cases(seed), accuracy_contenders))
    names = list(contenders_of(np.zeros(1)))
    rows: list[list[Any]] = []
    for label, a in cases:
        refs = mpmath_references(a, cumulative)
        errs: list[float | str] = []
        for name, fn in contenders_of(a).items():
            try:
                values = np.ravel(as_numpy(fn()))
                errs.append(max(ulp_error(v, r) for v, r in zip(values, refs, strict=True)))
            except Exception as exc:  # report, do not hide, a contender that fails
                errs.append(f"error: {type(exc).__name__}: {exc}")
        rows.append([label, mp.nstr(refs[-1], 17)] + errs)
    worst: list[Any] = ["**max**", ""]
    for j in range(len(names)):
        col = [r[2 + j] for r in rows]
        worst.append(next((c for c in col if isinstance(c, str)), max(col)))
    table = [[r[0], r[1]] + [fmt_ulp(c) for c in r[2:]] for r in rows + [worst]]
    header = (["case (float64)", "mpmath, last prefix" if cumulative else "mpmath reference"]
              + [f"{n} ulp" for n in names])
    return header, table


def fmt_ulp(err: float | str) -> str:
    if isinstance(err, str):
        return err
    return f"{err:.2f}" if err < 1000 else f"{err:.3g}"


# ---------------------------------------------------------------------------- output

def markdown(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_time(seconds: float | None, scale: float) -> str:
    """``seconds`` in units of 1/``scale`` seconds (1e3: ms, 1e6: µs); '—' when missing."""
    if seconds is None or seconds == float("inf"):
        return "—"
    v = seconds * scale
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def ratio(num: float | None, den: float | None) -> str:
    """``num / den`` with two decimals; '—' when either is missing."""
    if num is None or den is None or den == 0 or float("inf") in (num, den):
        return "—"
    return f"{num / den:.2f}"


def time_table(cases: list[Case], best: dict[tuple[str, str], float], unit: str) -> str:
    """Times and ratios of ``cases`` as one markdown table, in ``unit`` ('ms' or 'µs')."""
    scale = {"ms": 1e3, "µs": 1e6}[unit]
    names = [n for n in CONTENDER_ORDER if any((c.label, n) in best for c in cases)]
    header = ["case"]
    for name in names:
        short = SHORT_NAMES.get(name, name)
        header.append(f"{short} {unit}")
        if name in FLOORS:
            header.append(f"lsearray / {short}")
        elif name != "lsearray":
            header.append(f"{short} / lsearray")
    rows = []
    for case in cases:
        t = {name: best.get((case.label, name)) for name in names}
        ours = t.get("lsearray")
        row = [case.label]
        for name in names:
            row.append(fmt_time(t[name], scale))
            if name in FLOORS:
                row.append(ratio(ours, t[name]))
            elif name != "lsearray":
                row.append(ratio(t[name], ours))
        rows.append(row)
    return markdown(header, rows)


def memory_table(cases: list[Case], names: Sequence[str]) -> str:
    """Peak extra memory of one call of each of ``names`` (from ``reference_contenders``), per case."""
    rows = []
    for case in cases:
        fns = reference_contenders(case)
        row = [case.label, f"{case.nbytes / MIB:.1f}"]
        for name in names:
            mem = peak_extra_bytes(fns[name])
            if mem is None:
                row += ["failed", "—"]
            else:
                row += [f"{mem / MIB:.3f}", f"{100.0 * mem / case.nbytes:.1f}%"]
        rows.append(row)
    header = ["case", "input MiB"]
    for name in names:
        header += [f"{name} MiB", f"{name} % of input"]
    return markdown(header, rows)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what `platform` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What a figure depends on: the CPU, the kernel's SIMD path and threads, the versions."""
    info = lsecore.build_info()
    return {
        "cpu": cpu_model(), "arch": platform.machine(), "cpus": os.cpu_count(),
        "simd": info["simd"], "openmp": info["openmp"], "threads": args.threads,
        "pinning": PINNING, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "lsearray": getattr(lsearray, "__version__", "?"),
        "torch": torch.__version__ if torch is not None else None,
        "jax": jax.__version__ if jax is not None else None,
        "size": args.size, "repeat": args.repeat,
    }


def describe_environment(args: argparse.Namespace) -> str:
    """Versions, machine, thread pools and options of this run."""
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}",
                f"scipy {scipy.__version__}",
                f"lsearray {getattr(lsearray, '__version__', '?')}",
                f"torch {torch.__version__}" if torch is not None else "torch not used",
                f"jax {jax.__version__} (x64)" if jax is not None else "jax not used"]
    pools = [f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()]
    if torch is not None:
        pools.append(f"torch:{torch.get_num_threads()}")
    return "\n".join([
        ", ".join(versions),
        f"machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs visible, "
        f"lsecore SIMD path {lsecore.build_info()['simd']}, {PINNING}; threads={args.threads}, "
        f"repeat={args.repeat} (best of, interleaved), size={args.size:.3g}, cases={','.join(args.cases)}"
        + (", quick" if args.quick else ""),
        "thread pools while timing: " + (", ".join(pools) or "none found"),
    ])


def print_section(title: str, body: str) -> None:
    print(title)
    print()
    print(body)
    print()


def report_agreement(diffs: dict[tuple[str, str], float | str], cases: list[Case]) -> None:
    """Print the contenders that disagree with the reference beyond the case's ``tolerance``."""
    tolerances = {case.label: tolerance(case) for case in cases}
    bad = {k: v for k, v in diffs.items() if isinstance(v, str) or v > tolerances[k[0]]}
    if bad:
        print("WARNING: results disagree with the reference (max |r - ref| / max(|ref|, 1)):")
        for (label, name), v in bad.items():
            print(f"  {label}, {name}: {v}")
    else:
        print("All contenders agree with the reference, scipy (numpy for the relatives): "
              "max |r - ref| / max(|ref|, 1) <= 1e-12, 1e-5 for float32, 1e-10 for logcumsumexp.")
    print()


# ---------------------------------------------------------------------------- plot

def plot_sizes(size: int, points: int) -> list[int]:
    """About ``points`` sizes spaced evenly in log from 1e3 to ``size``."""
    return sorted({int(round(v)) for v in np.geomspace(PLOT_MIN_N, size, points)})


def throughput_plan(x: np.ndarray, sizes: list[int], threads: int) -> list[Timed]:
    """1-D float64 logsumexp of ``x[:n]`` for every n, for every plotted contender."""
    plan = []
    for n in sizes:
        case = Case("plot", f"n={n}", "logsumexp", x[:n], None)
        fns = contenders(case)
        for name in ("lsearray", "scipy", "torch", "jax", "numpy two-pass", "x.sum()"):
            if name not in fns:
                continue
            if name == "lsearray":
                plan.append(Timed((case.label, "lsearray, 1 thread"), fns[name], threads=1))
                if threads > 1:
                    plan.append(Timed((case.label, f"lsearray, {threads} threads"), fns[name]))
            else:
                plan.append(Timed((case.label, name), fns[name]))
    return plan


def run_plot(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time the throughput series, print them as a table and draw them into ``path`` (unless
    it is empty); the sizes and the series (contender -> elements per second)."""
    x = np.random.default_rng(54321).standard_normal(args.size) * 10.0
    sizes = plot_sizes(args.size, args.plot_points)
    best = time_interleaved(throughput_plan(x, sizes, args.threads), args.repeat, args.min_sample)
    series: dict[str, list[float | None]] = {}
    for (label, name), seconds in best.items():
        n = int(label[2:])
        series.setdefault(name, [None] * len(sizes))[sizes.index(n)] = n / seconds

    rows = [[name] + ["—" if v is None else f"{v / 1e6:.1f}" for v in values]
            for name, values in series.items()]
    print_section("Throughput, 1-D float64 logsumexp, million elements per second:",
                  markdown(["contender"] + [f"n={n:.3g}" for n in sizes], rows))

    if path:
        threads = f"{args.threads} thread" + ("s" if args.threads > 1 else "")
        draw(path, sizes, [series],
             f"1-D float64 logsumexp throughput ({threads} unless named; x.sum() is numpy's, one "
             f"thread; best of {args.repeat})\n{cpu_model()}, lsecore SIMD path "
             f"{lsecore.build_info()['simd']}, {time.strftime('%Y-%m-%d')}")
        print(f"Wrote {path}")
        print()
    return {"sizes": sizes, "series": series}


# ---------------------------------------------------------------------------- main

TABLES = (
    ("logsumexp, time per call (best of rounds):", ("1d", "2d", "short", "tall"), "ms"),
    ("softmax and log_softmax, time per call (best of rounds):", ("softmax",), "ms"),
    (f"small calls ({SMALL_N} elements), time per call (best of rounds):", ("small",), "µs"),
)


def run_tables(args: argparse.Namespace) -> tuple[list[Case], dict[tuple[str, str], float], dict[str, str]]:
    """Time the selected cases and print the time, agreement and memory tables.

    Returns the cases, the best seconds per (case label, contender) and the memory tables
    (title: markdown).
    """
    cases = make_cases(args.size, args.cases)
    diffs = check_agreement(cases)
    plan = [Timed((case.label, name), fn)
            for case in cases for name, fn in contenders(case).items()
            if args.only is None or name in args.only]
    best = time_interleaved(plan, args.repeat, args.min_sample)
    for title, groups, unit in TABLES:
        selected = [c for c in cases if c.group in groups]
        if selected:
            print_section(title, time_table(selected, best, unit))
    for kind in RELATIVES:
        selected = [c for c in cases if c.kind == kind]
        if selected:
            print_section(f"{kind}, time per call (best of rounds):", time_table(selected, best, "ms"))
    if any(c.kind in SCIPY_KINDS for c in cases):
        print(LEGEND)
        print()
    if any(c.kind in RELATIVES for c in cases):
        print(RELATIVES_LEGEND)
        print()
    report_agreement(diffs, cases)
    memory = {}
    large = [c for c in cases if c.group not in ("small", "relatives")]
    if large:
        memory["Peak extra memory of one call (tracemalloc; C-level malloc is not traced):"] = \
            memory_table(large, ("lsearray", "scipy", "numpy two-pass"))
    matmul = [c for c in cases if c.kind == "logmatmulexp"]
    if matmul:
        memory["Peak extra memory of one logmatmulexp call (tracemalloc):"] = \
            memory_table(matmul, ("lsearray", "naive numpy", "shifted numpy"))
    for title, body in memory.items():
        print_section(title, body)
    return cases, best, memory


def run_scaling(args: argparse.Namespace) -> tuple[list[Case], dict[tuple[str, str], float]]:
    """Time lsearray on one thread and on ``args.threads`` threads in the same interleaved
    rounds; print the times and the speed-up of every large case selected. Returns the cases
    and the best seconds per (case label, "1" or "n")."""
    cases = [c for c in make_cases(args.size, args.cases) if c.group not in ("small", "relatives")]
    plan = []
    for case in cases:
        fn = reference_contenders(case)["lsearray"]
        plan += [Timed((case.label, "1"), fn, threads=1),
                 Timed((case.label, "n"), fn, threads=args.threads)]
    best = time_interleaved(plan, args.repeat, args.min_sample)
    rows = [[c.label, fmt_time(best.get((c.label, "1")), 1e3),
             fmt_time(best.get((c.label, "n")), 1e3),
             ratio(best.get((c.label, "1")), best.get((c.label, "n")))] for c in cases]
    print_section(f"lsearray on 1 and {args.threads} threads, time per call (best of rounds):",
                  markdown(["case", "1 thread ms", f"{args.threads} threads ms",
                            "speed-up"], rows))
    return cases, best


def write_json(args: argparse.Namespace, cases: list[Case], best: dict[tuple[str, str], float],
               tables: dict[str, str], throughput: dict[str, Any] | None = None) -> None:
    """The run for asv_bench/figures.py: machine, cases in order, finite times, tables, and
    with ``--plot-only`` the throughput series."""
    record = {
        "machine": machine(args),
        "cases": [{"label": c.label, "group": c.group, "kind": c.kind} for c in cases],
        "times": [[label, name, t] for (label, name), t in best.items() if math.isfinite(t)],
        "tables": tables,
        "throughput": throughput,
    }
    with open(args.json, "w") as f:
        json.dump(record, f, indent=1)


def main(args: argparse.Namespace) -> int:
    """Print the tables (and write the plot) for ``args``; 1 if a contender failed, else 0."""
    with threadpool_limits(limits=args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads)
        print(describe_environment(args))
        print()
        if args.scaling:
            cases, best = run_scaling(args)
            if args.json:
                write_json(args, cases, best, {})
            return 1 if FAILURES else 0
        if args.plot_only:
            throughput = run_plot(args.plot, args)
            if args.json:
                write_json(args, [], {}, {}, throughput)
            return 1 if FAILURES else 0
        cases, best, tables = run_tables(args)
        if args.plot:
            run_plot(args.plot, args)
        if args.accuracy:
            accuracy = {"Max ulp error against mpmath (mp.dps=50), float64:": markdown(*run_accuracy(seed=7))}
            if "relatives" in args.cases:
                accuracy["logcumsumexp, max ulp error over the prefixes against mpmath (mp.dps=50), "
                         "float64:"] = markdown(*run_accuracy(seed=7, cumulative=True))
            for title, body in accuracy.items():
                print_section(title, body)
            tables.update(accuracy)
        if args.json:
            write_json(args, cases, best, tables)
        if FAILURES:
            print("FAILED (left out of the tables):")
            for (label, name), msg in FAILURES.items():
                print(f"  {label}, {name}: {msg}")
            print()
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
