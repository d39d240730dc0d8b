"""The throughput series: 1-D float64 logsumexp in elements per second against n, as a table and a plot."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from throughput_plot import draw  # beside side_by_side.py, on its sys.path

import lsearray

from .cases import Case
from .contenders import Contenders
from .options import PLOT_MIN_N, Config
from .report import cpu_model, markdown, print_section
from .timing import Timed, time_interleaved

__all__ = ["run_plot"]

PLOTTED = ("lsearray", "scipy", "torch", "jax", "numpy two-pass", "x.sum()")


def plot_sizes(size: int, points: int) -> list[int]:
    """About ``points`` sizes spaced evenly in log from 1e3 to ``size``."""
    return sorted({int(round(v)) for v in np.geomspace(PLOT_MIN_N, size, points)})


def throughput_plan(x: np.ndarray, sizes: list[int], threads: int, contenders: Contenders) -> list[Timed]:
    """1-D float64 logsumexp of ``x[:n]`` for every n, for every plotted contender."""
    plan = []
    for n in sizes:
        case = Case("plot", f"n={n}", "logsumexp", x[:n], None)
        fns = contenders.of(case)
        for name in PLOTTED:
            if name not in fns:
                continue
            if name == "lsearray":
                plan.append(Timed((case.label, "lsearray, 1 thread"), fns[name], threads=1))
                if threads > 1:
                    plan.append(Timed((case.label, f"lsearray, {threads} threads"), fns[name]))
            else:
                plan.append(Timed((case.label, name), fns[name]))
    return plan


def run_plot(config: Config, contenders: Contenders) -> dict[str, Any]:
    """Time the throughput series, print them as a table and draw them into ``config.plot``
    (unless it is empty); the sizes and the series (contender -> elements per second)."""
    x = np.random.default_rng(54321).standard_normal(config.size) * 10.0
    sizes = plot_sizes(config.size, config.plot_points)
    best = time_interleaved(throughput_plan(x, sizes, config.threads, contenders), config.repeat,
                            config.min_sample, contenders.failures)
    series: dict[str, list[float | None]] = {}
    for (label, name), seconds in best.items():
        n = int(label[2:])
        series.setdefault(name, [None] * len(sizes))[sizes.index(n)] = n / seconds

    rows = [[name] + ["—" if v is None else f"{v / 1e6:.1f}" for v in values]
            for name, values in series.items()]
    print_section("Throughput, 1-D float64 logsumexp, million elements per second:",
                  markdown(["contender"] + [f"n={n:.3g}" for n in sizes], rows))

    if config.plot:
        threads = f"{config.threads} thread" + ("s" if config.threads > 1 else "")
        draw(config.plot, sizes, [series],
             f"1-D float64 logsumexp throughput ({threads} unless named; x.sum() is numpy's, one "
             f"thread; best of {config.repeat})\n{cpu_model()}, lsecore SIMD path "
             f"{lsearray.build_info()['simd']}, {time.strftime('%Y-%m-%d')}")
        print(f"Wrote {config.plot}")
        print()
    return {"sizes": sizes, "series": series}
