"""Draw throughput against n: the median over runs, with the runs' range as a band."""
from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["draw"]


def draw(path: str, sizes: Sequence[int], runs: Sequence[dict[str, Sequence[float | None]]],
         title: str) -> None:
    """Write a log-log PNG of elements per second against n to ``path``.

    Parameters
    ----------
    path : str
        The PNG to write.
    sizes : sequence of int
        The n of each point.
    runs : sequence of dict
        One dict per run (process): contender -> elements per second at each size (None
        where it was not timed). Each line is the median over the runs, its band the
        least and the greatest.
    title : str
        The figure's title (the machine and the protocol).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for run in runs for name in run))
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, name in enumerate(names):
        points = []
        for i, n in enumerate(sizes):
            values = [run[name][i] for run in runs if name in run and run[name][i] is not None]
            if values:
                points.append((n, statistics.median(values), min(values), max(values)))
        if not points:
            continue
        ns, med, low, high = zip(*points)
        style = "--" if name == "x.sum()" else "-"
        ax.plot(ns, med, style, marker="o", color=f"C{k}", label=name)
        if len(runs) > 1:
            ax.fill_between(ns, low, high, color=f"C{k}", alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (elements)")
    ax.set_ylabel("elements per second")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
