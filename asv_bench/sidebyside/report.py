"""What a run prints and records: markdown tables of times, ratios and memory, the machine, the JSON record."""
from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy
from threadpoolctl import threadpool_info

import lsearray

from .agreement import tolerance
from .cases import Case
from .contenders import CONTENDER_ORDER, FLOORS, SHORT_NAMES, Contenders
from .options import Config
from .timing import peak_extra_bytes

__all__ = ["GROUPED_LEGEND", "LEGEND", "RELATIVES_LEGEND", "cpu_model", "describe_environment", "fmt_time", "machine",
           "markdown", "memory_table", "print_section", "ratio", "report_agreement", "time_table",
           "write_json"]

MIB = 1024.0 * 1024.0
LEGEND = ("two-pass: the numpy recipe (max, then exp and sum; softmax: exp(x - max) / sum); "
          "x.sum(): one read of the input, the floor; np.exp: np.exp(x, out=y). "
          "'other / lsearray' above 1: lsearray is that many times faster.")
RELATIVES_LEGEND = ("accumulate: np.logaddexp.accumulate; switch: numpy's log1mexp by Maechler's "
                    "switch (logdiffexp: x1 + log1mexp(x2 - x1)); exp+log1p: np.log1p(np.exp(x)), "
                    "one vector exp and log1p an element, the relatives' limit; "
                    "naive: np.log(np.exp(a) @ np.exp(b)); "
                    "shifted: ma + mb + np.log(np.exp(a - ma) @ np.exp(b - mb)), ma the row maxima "
                    "of a, mb the column maxima of b. 'other / lsearray' above 1: lsearray is that "
                    "many times faster.")
GROUPED_LEGEND = ("ufunc.at: numpy's segment recipe (np.maximum.at for the maxima, then np.add.at of "
                  "exp(a - m[ids]); softmax divides by the sums gathered back); torch: the same with "
                  "scatter_reduce('amax') and index_add_, or softmax(a) @ v; recipe: numpy's "
                  "softmax(a)[..., None, :] @ v; naive: np.log(np.einsum(subscripts, *map(np.exp, "
                  "operands), optimize=True)), which overflows where the sums pass e^709. 'other / "
                  "lsearray' above 1: lsearray is that many times faster.")


def markdown(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_time(seconds: float | None, scale: float) -> str:
    """``seconds`` in units of 1/``scale`` seconds (1e3: ms, 1e6: µs), three significant
    digits below one unit; '—' when missing."""
    if seconds is None or seconds == float("inf"):
        return "—"
    v = seconds * scale
    return f"{v:.3g}" if v < 1 else f"{v:.3f}" if v < 10 else f"{v:.1f}"


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
    """Peak extra memory of one call of each of ``names`` (from `Contenders.references`), per case."""
    rows = []
    for case in cases:
        fns = Contenders.references(case)
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


def machine(config: Config, contenders: Contenders) -> dict[str, Any]:
    """What a figure depends on: the CPU, the kernel's SIMD path and threads, the versions."""
    info = lsearray.build_info()
    torch, jax = contenders.torch, contenders.jax
    return {
        "cpu": cpu_model(), "arch": platform.machine(), "cpus": os.cpu_count(),
        "simd": info["simd"], "openmp": info["openmp"], "threads": config.threads,
        "pinning": config.pinning, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "lsearray": getattr(lsearray, "__version__", "?"),
        "torch": torch.__version__ if torch is not None else None,
        "jax": jax.__version__ if jax is not None else None,
        "size": config.size, "repeat": config.repeat,
    }


def describe_environment(config: Config, contenders: Contenders) -> str:
    """Versions, machine, thread pools and options of this run."""
    torch, jax = contenders.torch, contenders.jax
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
        f"lsecore SIMD path {lsearray.build_info()['simd']}, {config.pinning}; threads={config.threads}, "
        f"repeat={config.repeat} (best of, interleaved), size={config.size:.3g}, cases={','.join(config.cases)}"
        + (", quick" if config.quick else ""),
        "thread pools while timing: " + (", ".join(pools) or "none found"),
    ])


def print_section(title: str, body: str) -> None:
    """``title``, a blank line, ``body``, a blank line."""
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
        print("All contenders agree with the reference, scipy (numpy for the relatives and the grouped): "
              "max |r - ref| / max(|ref|, 1) <= 1e-12, 1e-5 for float32, 1e-10 for logcumsumexp.")
    print()


def write_json(config: Config, contenders: Contenders, cases: list[Case], best: dict[tuple[str, str], float],
               tables: dict[str, str], throughput: dict[str, Any] | None = None) -> None:
    """The run for asv_bench/figures.py, to ``config.json``: machine, cases in order, finite
    times, tables, and with ``--plot-only`` the throughput series."""
    record = {
        "machine": machine(config, contenders),
        "cases": [{"label": c.label, "group": c.group, "kind": c.kind} for c in cases],
        "times": [[label, name, t] for (label, name), t in best.items() if math.isfinite(t)],
        "tables": tables,
        "throughput": throughput,
    }
    with open(config.json, "w") as f:
        json.dump(record, f, indent=1)
