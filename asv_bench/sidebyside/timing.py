"""The timing protocol: warm-up, calibrated samples, interleaved rounds under thread limits, the best of them; peak memory of one call."""
from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

__all__ = ["Timed", "limited", "peak_extra_bytes", "time_interleaved"]


@dataclass
class Timed:
    """One timed callable: ``key`` (case, contender); ``threads`` None runs under the run's limit.

    ``number`` is the calls per sample, set by calibration.
    """
    key: tuple[str, str]
    fn: Callable[[], Any]
    threads: int | None = None
    number: int = 1


def limited(threads: int | None) -> Any:
    """A context limiting every OpenMP/BLAS pool to ``threads``; nothing when None."""
    return threadpool_limits(limits=threads) if threads else nullcontext()


def _calibrate(fn: Callable[[], Any], min_sample: float) -> int:
    """Calls per sample so that one sample takes at least ``min_sample`` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    if dt >= min_sample:
        return 1
    return int(min(10_000, max(1, math.ceil(min_sample / max(dt, 1e-7)))))


def _prepare(plan: list[Timed], min_sample: float, failures: dict[tuple[str, str], str]) -> list[Timed]:
    """Warm every entry up (page in, compile, start pools) and calibrate it; drop failures."""
    ready = []
    for entry in plan:
        with limited(entry.threads):
            try:
                entry.fn()
            except Exception as exc:  # a failing contender is reported, not timed
                failures[entry.key] = f"{type(exc).__name__}: {exc}"
                continue
            entry.number = _calibrate(entry.fn, min_sample)
        ready.append(entry)
    return ready


def _sample(entry: Timed) -> float:
    """Seconds per call of one sample of ``entry.number`` calls."""
    t0 = time.perf_counter()
    for _ in range(entry.number):
        entry.fn()
    return (time.perf_counter() - t0) / entry.number


def time_interleaved(plan: list[Timed], repeat: int, min_sample: float,
                     failures: dict[tuple[str, str], str]) -> dict[tuple[str, str], float]:
    """Best seconds per call for every entry, from ``repeat`` interleaved rounds.

    Each round calls every entry once, in an order rotated by one each round, so that drift
    on a shared machine hits every contender alike; entries with their own ``threads`` run
    together under that limit. Entries that raise go into ``failures`` and are not timed.
    """
    plan = _prepare(plan, min_sample, failures)
    best = {entry.key: float("inf") for entry in plan}
    groups: dict[int | None, list[Timed]] = {}
    for entry in plan:
        groups.setdefault(entry.threads, []).append(entry)
    order = list(groups)
    for rnd in range(repeat):
        for threads in order[rnd % len(order):] + order[: rnd % len(order)]:
            entries = groups[threads]
            k = rnd % len(entries)
            with limited(threads):
                for entry in entries[k:] + entries[:k]:
                    best[entry.key] = min(best[entry.key], _sample(entry))
    return best


def peak_extra_bytes(fn: Callable[[], Any]) -> int | None:
    """Peak memory traced by tracemalloc during one call above what was held before; None if it fails."""
    try:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            r = fn()
            peak = tracemalloc.get_traced_memory()[1]
            del r
        finally:
            tracemalloc.stop()
    except Exception:
        return None
    return max(0, peak - before)
