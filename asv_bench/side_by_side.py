"""Time lsearray.logsumexp beside scipy, a numpy two-pass recipe and torch in one process.

Usage::

    python asv_bench/side_by_side.py [--size 2e7] [--threads 1] [--repeat 7] [--accuracy]

Absolute times on shared machines drift, so every number in one table comes from one run:
each round calls every contender once per case (in a rotating order), and the best of
``--repeat`` rounds is reported, so drift hits all contenders alike. ``x.sum()`` (one read
of the input) and ``np.exp(x, out=y)`` (one read, one write and one exp per element) are
the physical references. A second table gives the peak extra memory of one call, traced by
tracemalloc (numpy reports its allocations to it; memory a C kernel takes with malloc does
not show). ``--accuracy`` adds the max ulp error against an mpmath reference (50 digits)
on hard float64 inputs.

Thread limits go to every library: OMP_NUM_THREADS (and the BLAS variables) are set
before numpy is imported, threadpoolctl.threadpool_limits(N) limits every OpenMP/BLAS pool
loaded, and torch.set_num_threads(N) limits torch.
"""
import argparse
import os
import platform
import sys
import time

__all__ = ["main"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=2e7,
                        help="number of elements of the 1-D cases (default 2e7)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for every library (default 1)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="interleaved rounds; the best is reported (default 7)")
    parser.add_argument("--min-sample", type=float, default=0.02, metavar="SECONDS",
                        help="small cases loop until one sample takes this long (default 0.02)")
    parser.add_argument("--accuracy", action="store_true",
                        help="also print max ulp errors against mpmath on hard float64 inputs")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    args = parser.parse_args(argv)
    args.size = int(args.size)
    if args.size < 1000:
        parser.error(f"--size must be at least 1000 (rows of 1000), got {args.size}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None

if ARGS is not None:
    # Before numpy, scipy, lsearray or torch load their thread pools.
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import special  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import lsearray  # noqa: E402

torch = None
if ARGS is None or not ARGS.no_torch:
    try:
        import torch  # noqa: E402
    except ImportError:
        torch = None

MIB = 1024.0 * 1024.0
FAILURES = {}  # (case, contender) -> error message


# ---------------------------------------------------------------------------- contenders

def numpy_two_pass(a, axis=None):
    """max, then log(sum(exp(a - max))) + max: two reads and two input-sized temporaries."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def torch_logsumexp(t, axis=None):
    """torch.logsumexp over ``axis`` (all elements when None)."""
    if axis is None:
        return torch.logsumexp(t.reshape(-1), dim=0)
    return torch.logsumexp(t, dim=axis)


def contenders(a, axis):
    """(name, callable) for one case; the callables take no argument."""
    y = np.empty_like(a)
    fns = [
        ("lsearray", lambda: lsearray.logsumexp(a, axis=axis)),
        ("scipy", lambda: special.logsumexp(a, axis=axis)),
        ("numpy two-pass", lambda: numpy_two_pass(a, axis=axis)),
    ]
    if torch is not None:
        t = torch.from_numpy(a)  # shares memory, no copy
        fns.append(("torch", lambda: torch_logsumexp(t, axis=axis)))
    fns += [
        ("x.sum()", lambda: a.sum(axis=axis)),
        ("np.exp(x, out=y)", lambda: np.exp(a, out=y)),
    ]
    return fns


def as_numpy(r):
    if torch is not None and isinstance(r, torch.Tensor):
        return r.numpy()
    return np.asarray(r)


# ---------------------------------------------------------------------------- timing

def calibrate(fn, min_sample):
    """Calls per sample so that one sample takes at least ``min_sample`` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    if dt >= min_sample:
        return 1
    return int(min(10_000, max(1, np.ceil(min_sample / max(dt, 1e-7)))))


def time_interleaved(cases, repeat, min_sample):
    """Best seconds per call for every (case, contender), from interleaved rounds."""
    plan = []  # (case label, name, fn, number)
    for label, a, axis in cases:
        for name, fn in contenders(a, axis):
            try:
                fn()  # warm-up: page in, first-call imports, thread pool start
            except Exception as exc:  # a failing contender is reported, not timed
                FAILURES[label, name] = f"{type(exc).__name__}: {exc}"
                continue
            plan.append((label, name, fn, calibrate(fn, min_sample)))
    best = {(label, name): float("inf") for label, name, _, _ in plan}
    for rnd in range(repeat):
        k = rnd % len(plan)
        for label, name, fn, number in plan[k:] + plan[:k]:  # rotate the order each round
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            dt = (time.perf_counter() - t0) / number
            best[label, name] = min(best[label, name], dt)
    return best


def check_agreement(cases):
    """Max relative difference of each logsumexp contender from scipy, per case."""
    diffs = {}
    for label, a, axis in cases:
        ref = np.asarray(special.logsumexp(a.astype(np.float64), axis=axis))
        for name, fn in contenders(a, axis)[:-2]:
            try:
                r = as_numpy(fn()).astype(np.float64)
            except Exception as exc:
                FAILURES[label, name] = f"{type(exc).__name__}: {exc}"
                diffs[label, name] = "failed"
                continue
            if r.shape != ref.shape:
                diffs[label, name] = f"shape {r.shape} != {ref.shape}"
                continue
            diffs[label, name] = float(np.max(np.abs(r - ref) / np.maximum(np.abs(ref), 1e-300)))
    return diffs


def peak_extra_bytes(fn):
    """Peak memory traced by tracemalloc during one call above what was held before; None if it fails."""
    try:
        return _peak_extra_bytes(fn)
    except Exception:
        return None


def _peak_extra_bytes(fn):
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

def accuracy_cases(seed):
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


def ulp_error(value, ref):
    """|value - ref| in units of the float64 spacing at ref."""
    from mpmath import mp
    value = float(value)
    if not np.isfinite(value):
        return float("inf")
    ulp = np.spacing(abs(float(ref)))
    return float(abs(mp.mpf(value) - ref) / mp.mpf(float(ulp)))


def run_accuracy(seed):
    from mpmath import mp
    mp.dps = 50
    names = ["lsearray", "scipy", "numpy two-pass"] + (["torch"] if torch is not None else [])
    rows = []
    for label, a in accuracy_cases(seed):
        ref = mp.log(mp.fsum(mp.exp(mp.mpf(float(x))) for x in a))
        results = {
            "lsearray": lambda: lsearray.logsumexp(a),
            "scipy": lambda: special.logsumexp(a),
            "numpy two-pass": lambda: numpy_two_pass(a),
        }
        if torch is not None:
            results["torch"] = lambda: torch_logsumexp(torch.from_numpy(a)).item()
        errs = []
        for name in names:
            try:
                errs.append(ulp_error(as_numpy(results[name]()), ref))
            except Exception as exc:  # report, do not hide, a contender that fails
                errs.append(f"error: {type(exc).__name__}: {exc}")
        rows.append([label, mp.nstr(ref, 17)] + errs)
    worst = ["**max**", ""]
    for j in range(len(names)):
        col = [r[2 + j] for r in rows]
        worst.append(next((c for c in col if isinstance(c, str)), max(col)))
    rows = [[r[0], r[1]] + [fmt_ulp(c) for c in r[2:]] for r in rows + [worst]]
    header = ["case (float64)", "mpmath reference"] + [f"{n} ulp" for n in names]
    return header, rows


def fmt_ulp(err):
    if isinstance(err, str):
        return err
    return f"{err:.2f}" if err < 1000 else f"{err:.3g}"


# ---------------------------------------------------------------------------- output

def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds):
    return "—" if seconds is None or seconds == float("inf") else (f"{seconds * 1e3:.3f}" if seconds < 0.01
                                        else f"{seconds * 1e3:.1f}")


def ratio(num, den):
    return "—" if num is None or den is None or den == 0 else f"{num / den:.2f}"


def describe_environment(args):
    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"lsearray {getattr(lsearray, '__version__', '?')}"
        + (f", torch {torch.__version__}" if torch is not None else ", torch not installed"),
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} CPUs visible; threads={args.threads}, repeat={args.repeat} "
        f"(best of, interleaved), size={args.size:.3g}",
    ]
    pools = [f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()]
    if torch is not None:
        pools.append(f"torch:{torch.get_num_threads()}")
    lines.append("thread pools while timing: " + (", ".join(pools) or "none found"))
    return "\n".join(lines)


def main(args):
    rng = np.random.default_rng(12345)
    n = args.size
    rows = n // 1000
    x64 = rng.standard_normal(n) * 10.0
    x32 = x64.astype(np.float32)
    x2d = x64[: rows * 1000].reshape(rows, 1000)
    cases = [
        (f"1-D float64 n={n:.3g}", x64, None),
        (f"1-D float32 n={n:.3g}", x32, None),
        (f"2-D float64 ({rows}, 1000) axis=-1", x2d, -1),
        (f"2-D float64 ({rows}, 1000) axis=0", x2d, 0),
    ]

    with threadpool_limits(limits=args.threads):
        if torch is not None:
            torch.set_num_threads(args.threads)
        print(describe_environment(args))
        print()

        diffs = check_agreement(cases)
        best = time_interleaved(cases, args.repeat, args.min_sample)

        names = [name for name, _ in contenders(x64[:1000], None)]
        header = ["case", "lsearray ms", "scipy ms", "ratio scipy/lsearray",
                  "numpy two-pass ms", "ratio two-pass/lsearray"]
        if torch is not None:
            header += ["torch ms", "ratio torch/lsearray"]
        header += ["x.sum() ms", "np.exp(x, out=y) ms", "lsearray/np.exp"]
        table = []
        for label, _, _ in cases:
            t = {name: best.get((label, name)) for name in names}
            t = {k: (None if v is None or v == float("inf") else v) for k, v in t.items()}
            row = [label, ms(t["lsearray"]), ms(t["scipy"]), ratio(t["scipy"], t["lsearray"]),
                   ms(t["numpy two-pass"]), ratio(t["numpy two-pass"], t["lsearray"])]
            if torch is not None:
                row += [ms(t["torch"]), ratio(t["torch"], t["lsearray"])]
            row += [ms(t["x.sum()"]), ms(t["np.exp(x, out=y)"]),
                    ratio(t["lsearray"], t["np.exp(x, out=y)"])]
            table.append(row)
        print("Time per call (best of rounds):")
        print()
        print(markdown(header, table))
        print()

        if FAILURES:
            print("FAILED (left out of the table):")
            for (label, name), msg in FAILURES.items():
                print(f"  {label}, {name}: {msg}")
            print()
        bad = {k: v for k, v in diffs.items()
               if isinstance(v, str) or v > (1e-5 if "float32" in k[0] else 1e-12)}
        if bad:
            print("WARNING: results disagree with scipy (max relative difference):")
            for (label, name), v in bad.items():
                print(f"  {label}, {name}: {v}")
        else:
            print("All contenders agree with scipy (relative difference <= 1e-12, 1e-5 float32).")
        print()

        mem_rows = []
        for label, a, axis in cases[:2]:
            mem = {name: peak_extra_bytes(fn) for name, fn in contenders(a, axis)[:3]}
            row = [label, f"{a.nbytes / MIB:.1f}"]
            for name in ("lsearray", "scipy", "numpy two-pass"):
                if mem[name] is None:
                    row += ["failed", "—"]
                else:
                    row += [f"{mem[name] / MIB:.3f}", f"{100.0 * mem[name] / a.nbytes:.1f}%"]
            mem_rows.append(row)
        print("Peak extra memory of one call (tracemalloc; C-level malloc is not traced):")
        print()
        print(markdown(["case", "input MiB", "lsearray MiB", "lsearray % of input",
                        "scipy MiB", "scipy % of input", "numpy two-pass MiB",
                        "two-pass % of input"], mem_rows))
        print()

        if args.accuracy:
            header, acc_rows = run_accuracy(seed=7)
            print("Max ulp error against mpmath (mp.dps=50), float64:")
            print()
            print(markdown(header, acc_rows))
            print()
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
