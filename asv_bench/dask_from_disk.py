"""Out-of-core log-sum-exp with dask from a .npy file on disk: lsearray's one-read reduction beside a two-pass recipe.

Usage::

    python asv_bench/dask_from_disk.py [--size 4GB] [--dir DIR] [--chunk 64MB] [--threads 2] [--keep]

Writes a float64 ``.npy`` file of ``--size`` bytes chunk by chunk with the writer of
``lsearray demo`` (the whole array is never in memory), then reads it back as
``da.from_array(np.load(path, mmap_mode="r"), chunks=--chunk)`` and times, in one run:

- ``lsearray.dask.logsumexp(x).compute()``: one tree reduction, each chunk read once;
- the two-pass dask recipe ``m = x.max(); da.log(da.exp(x - m).sum()) + m``, computed
  together with ``dask.compute(m, r)`` (one read of each chunk, but every chunk is held
  until the max is known);
- ``x.sum().compute()``: one read and nothing else, the floor.

Each case runs in a fresh subprocess (so memory figures of one case do not leak into the
next) with the threaded scheduler and ``--threads`` workers; OMP_NUM_THREADS=1 there, so
the dask threads are the only parallelism. The OS page cache cannot be dropped here, so
each case computes twice and the SECOND (warm, file in page cache when it fits) time is
reported. A third, separate run measures the tracemalloc peak (NumPy reports its data
allocations to tracemalloc) so tracing does not slow the timed run. During the timed run a
sampling thread reads /proc/self/status every 2 ms and records the peak rise of RssAnon
(anonymous memory: what the computation allocates) and of VmRSS (which also counts the
pages of the memory-mapped file that are resident). ``resource.getrusage``'s ru_maxrss is
not used: it is a lifetime maximum that includes mapped file pages.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

CASES = {
    "lsearray.dask.logsumexp": "lse",
    "two-pass dask (max, then exp-sum)": "two_pass",
    "x.sum() (one read, floor)": "sum",
}


def parse_bytes(text: str) -> int:
    """A size such as ``64MB`` in bytes, as dask reads it."""
    from dask.utils import parse_bytes as dask_parse_bytes

    return int(dask_parse_bytes(text))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--_case`` and ``--_path`` run one case (the child)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4GB", help="bytes of the float64 file (default 4GB)")
    parser.add_argument("--dir", default=None, help="where to write it (default: the temp dir)")
    parser.add_argument("--chunk", default="64MB", help="dask chunk size in bytes (default 64MB)")
    parser.add_argument("--threads", type=int, default=2, help="dask threads (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the file at the end")
    parser.add_argument("--_case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_path", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------
# the parent: write the file, run each case in a subprocess, print the table


def _scaled_normal(rng: Any, shape: tuple[int, ...]) -> Any:
    """Standard normal values scaled by 10."""
    block = rng.standard_normal(shape)
    block *= 10.0
    return block


def write_file(path: str, n_bytes: int, chunk_bytes: int) -> int:
    """A float64 .npy of ``n_bytes`` at ``path``, chunks of at most 64 MiB in memory; its length."""
    from lsearray._chunked_npy import write_chunked_npy

    n = n_bytes // 8
    write_chunked_npy(path, (n,), min(chunk_bytes, 64 * 2**20), 0, _scaled_normal)
    return n


def run_case(case: str, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in a fresh process, one thread per pool there; its measurements."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--_case", case, "--_path", path,
           "--chunk", args.chunk, "--threads", str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Write the file, time every case on it in a process of its own, print the table."""
    args = parse_args(argv)
    if args._case:
        return child(args)
    import shutil

    import numpy as np

    size, chunk = parse_bytes(args.size), parse_bytes(args.chunk)
    directory = args.dir or tempfile.gettempdir()
    free = shutil.disk_usage(directory).free
    if free < size * 1.2:
        sys.exit(f"only {free / 1e9:.1f} GB free in {directory}; need {size / 1e9:.1f} GB")
    path = os.path.join(directory, f"lsearray-dask-from-disk-{os.getpid()}.npy")
    try:
        t0 = time.perf_counter()
        n = write_file(path, size, chunk)
        t_write = time.perf_counter() - t0
        print(f"wrote {path}: {n} float64 ({n * 8 / 1e9:.2f} GB) in {t_write:.1f} s", file=sys.stderr)
        results = {}
        for label, case in CASES.items():
            results[label] = run_case(case, path, args)
            print(f"  {label}: {results[label]['time']:.2f} s", file=sys.stderr)
    finally:
        if not args.keep and os.path.exists(path):
            os.remove(path)
    nbytes = n * 8
    floor = results["x.sum() (one read, floor)"]["time"]
    lse = results["lsearray.dask.logsumexp"]["value"]
    two = results["two-pass dask (max, then exp-sum)"]["value"]
    import dask
    import lsearray

    print(f"\n{nbytes / 1e9:.2f} GB float64 .npy, memory-mapped, chunks of {args.chunk} "
          f"({results['lsearray.dask.logsumexp']['nchunks']} chunks), threaded scheduler, "
          f"{args.threads} threads, OMP_NUM_THREADS=1; lsearray {lsearray.__version__}, "
          f"dask {dask.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs.")
    print("Time: the second of two runs in one fresh process (warm page cache; it cannot be "
          "dropped here). Peak memory: tracemalloc peak during a third run; RSS: peak rise "
          "sampled every 2 ms during the timed run (anon = allocated memory; total also counts "
          "resident pages of the mapped file).\n")
    print("| case | time s | GB/s | peak memory MiB (tracemalloc) | peak RSS anon MiB "
          "| peak RSS total MiB | ratio to x.sum() |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        print(f"| {label} | {r['time']:.3f} | {nbytes / 1e9 / r['time']:.2f} | "
              f"{r['traced_peak'] / 2**20:.1f} | {r['rss_anon_peak'] / 2**20:.1f} | "
              f"{r['rss_peak'] / 2**20:.1f} | {r['time'] / floor:.2f} |")
    rel = abs(lse - two) / abs(two)
    print(f"\nlsearray result {lse!r}, two-pass result {two!r}, relative difference {rel:.1e}; "
          f"first (cold-ish) times: "
          + ", ".join(f"{label.split(' ')[0]} {r['first_time']:.2f} s" for label, r in results.items()))
    return 0


# ------------------------------------------------------------------------------------------
# the child: one case, computed three times


def _status_kib(fields: Sequence[str]) -> dict[str, int]:
    """The ``fields`` of /proc/self/status, in KiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in fields:
                values[key] = int(line.split()[1])
    return values


class RssSampler:
    """The peak rise of RssAnon and VmRSS (bytes) while it runs, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.stop = threading.Event()
        self.base = _status_kib(("RssAnon", "VmRSS"))
        self.peak = dict(self.base)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            now = _status_kib(("RssAnon", "VmRSS"))
            for k, v in now.items():
                self.peak[k] = max(self.peak[k], v)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def rise(self, key: str) -> int:
        return (self.peak[key] - self.base[key]) * 1024


def child(args: argparse.Namespace) -> int:
    """One case: compute it twice (the second timed, RSS sampled), then once traced; print
    the measurements as one JSON line."""
    import tracemalloc

    import dask
    import dask.array as da
    import numpy as np

    import lsearray.dask

    mm = np.load(args._path, mmap_mode="r")
    chunk_elems = max(1, parse_bytes(args.chunk) // mm.itemsize)
    x = da.from_array(mm, chunks=chunk_elems)

    def build() -> tuple[Any, ...]:
        if args._case == "lse":
            return (lsearray.dask.logsumexp(x),)
        if args._case == "two_pass":
            m = x.max()
            return m, da.log(da.exp(x - m).sum()) + m
        return (x.sum(),)

    def compute() -> float:
        return float(dask.compute(*build(), scheduler="threads", num_workers=args.threads)[-1])

    t0 = time.perf_counter()
    compute()
    first = time.perf_counter() - t0

    with RssSampler() as sampler:
        t0 = time.perf_counter()
        value = compute()
        elapsed = time.perf_counter() - t0

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    compute()
    traced = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()

    print(json.dumps({
        "time": elapsed, "first_time": first, "value": value, "traced_peak": traced,
        "rss_anon_peak": sampler.rise("RssAnon"), "rss_peak": sampler.rise("VmRSS"),
        "nchunks": x.npartitions,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
