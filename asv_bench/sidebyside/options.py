"""The command line of side_by_side.py, read into a `Config`, and the thread limits set before numpy loads."""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CASE_GROUPS", "PLOT_MIN_N", "Config", "limit_threads_before_imports", "parse_args", "pin_cpus"]

CASE_GROUPS = ("1d", "2d", "short", "tall", "softmax", "small", "relatives", "grouped", "torch", "jax")
DEFAULT_SIZE, QUICK_SIZE = 2e7, 1e5
DEFAULT_REPEAT, DEFAULT_MIN_SAMPLE = 7, 0.02
QUICK_MIN_SAMPLE = 0.002
PLOT_POINTS, QUICK_PLOT_POINTS, PLOT_MIN_N = 8, 4, 1000
# Every pool a library may start: set in the environment before numpy, scipy, lsearray,
# torch or jax are imported, as some read them only once.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Config:
    """One run's settings: the command line with the ``--quick`` defaults filled in.

    ``cases`` is a tuple of names in CASE_GROUPS; ``only`` the contenders to time (with
    lsearray), None for all; ``pinning`` says how the process was pinned to CPUs.
    """
    size: int
    threads: int = 1
    repeat: int = DEFAULT_REPEAT
    min_sample: float = DEFAULT_MIN_SAMPLE
    cases: tuple[str, ...] = CASE_GROUPS
    accuracy: bool = False
    plot: str | None = None
    plot_only: bool = False
    plot_points: int = PLOT_POINTS
    scaling: bool = False
    quick: bool = False
    only: frozenset[str] | None = None
    no_torch: bool = False
    no_jax: bool = False
    json: str | None = None
    no_pin: bool = False
    pinning: str = "not pinned"


def _parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description,
        epilog="cases: 1d, 2d, short, tall, softmax, small, relatives, grouped, torch, jax (see the module "
               "docstring)")
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
    return parser


def parse_args(argv: Sequence[str] | None = None, description: str = "") -> Config:
    """The command line ``argv`` (default ``sys.argv[1:]``) as a `Config`; exits with
    status 2 and a usage message on a bad option."""
    parser = _parser(description)
    args = parser.parse_args(argv)
    size = int(args.size if args.size is not None else QUICK_SIZE if args.quick else DEFAULT_SIZE)
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else DEFAULT_REPEAT
    if size < PLOT_MIN_N:
        parser.error(f"--size must be at least {PLOT_MIN_N} (rows of 1000), got {size}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if repeat < 1:
        parser.error(f"--repeat must be at least 1, got {repeat}")
    cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    unknown = [c for c in cases if c not in CASE_GROUPS]
    if unknown or not cases:
        parser.error(f"--cases expects a comma-separated subset of {','.join(CASE_GROUPS)}, "
                     f"got {args.cases!r}")
    return Config(
        size=size, threads=args.threads, repeat=repeat,
        min_sample=(args.min_sample if args.min_sample is not None
                    else QUICK_MIN_SAMPLE if args.quick else DEFAULT_MIN_SAMPLE),
        cases=cases, accuracy=args.accuracy, plot=args.plot, plot_only=args.plot_only,
        plot_points=QUICK_PLOT_POINTS if args.quick else PLOT_POINTS, scaling=args.scaling,
        quick=args.quick,
        only=None if args.only is None else frozenset({"lsearray", *(n.strip() for n in args.only.split(","))}),
        no_torch=args.no_torch, no_jax=args.no_jax, json=args.json, no_pin=args.no_pin)


def pin_cpus(n: int) -> str:
    """Restrict this process to ``n`` of its CPUs (Linux); say what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpus = sorted(os.sched_getaffinity(0))
    if n >= len(cpus):
        return f"not pinned ({len(cpus)} CPUs allowed, {n} thread(s) asked)"
    os.sched_setaffinity(0, cpus[:n])
    return f"pinned to CPU(s) {cpus[:n]}"


def limit_threads_before_imports(config: Config) -> Config:
    """Limit every library's threads to ``config.threads`` through the environment and pin
    the process (unless ``no_pin``); ``config`` with its ``pinning`` said.

    Call it before numpy, scipy, lsearray, torch or jax are imported: jax (XLA) has no
    thread limit but the CPUs it may run on.
    """
    for var in THREAD_VARIABLES:
        os.environ[var] = str(config.threads)
    pinning = "not pinned (--no-pin)" if config.no_pin else pin_cpus(config.threads)
    return dataclasses.replace(config, pinning=pinning)
