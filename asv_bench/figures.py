"""Run side_by_side.py in several processes and write the median and spread of its ratios into the docs.

Usage::

    python asv_bench/figures.py [--runs 5] [--cases 1d,2d,...] [--scaling 2] [--record RUNS.json]
        [--update README.md docs/performance.md] [-- side_by_side.py options, e.g. --size 2e7 --repeat 5]

(``--from-record RUNS.json`` writes the tables again from a record, without measuring.)

One process gives each contender's best time of its interleaved rounds, so drift within a
process hits every contender alike; a machine's state between processes (frequency, the
other tenants, page placement) does not, so one process is one sample. A run is one
``side_by_side.py --json`` process per case group, because scipy's temporaries (about 5
times the input) cost more in a process that holds the other groups' arrays, and jax's
contender runs in a process of its own beside lsearray (``--only jax``), because importing
jax slows the others; the ``jax`` group (lsearray and jax, both jitted on jax arrays) is such
a process alone. The runs go one after the other; the first also measures accuracy and
memory, which do not vary between runs. The samples reduce to:

- lsearray's time per call: median (min–max) over the runs;
- "other / lsearray" and "lsearray / floor" (x.sum(), np.exp): the ratio to lsearray timed
  in the same process, then its median (min–max) over the runs.

The tables are printed and, with ``--update FILE ...``, written into each file between
marker lines: ``<!-- figures:headline -->`` ... ``<!-- /figures:headline -->`` gets the
headline table (README), ``<!-- figures:tables -->`` ... ``<!-- /figures:tables -->``
every table of NumPy arrays, ``<!-- figures:backends -->`` ... ``<!-- /figures:backends -->``
those of lsearray on torch and jax arrays (the ``torch`` and ``jax`` groups); a block is
written only when its groups were run. Each block starts with the machine it was measured on (CPU model, the SIMD
path lsecore took, threads, versions) and the protocol. A file is replaced whole (written
beside it, then moved), and only when every run succeeded.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "summarize", "update_file"]

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = ("1d", "2d", "short", "tall", "softmax", "small", "relatives", "grouped", "torch", "jax")
JAX_GROUPS = ("1d", "2d", "short", "tall", "softmax", "small")  # jax has no relatives here
# Groups whose every contender runs on jax: one process, jax's alone beside lsearray on jax arrays.
JAX_ONLY_GROUPS = ("jax",)
BACKEND_GROUPS = ("torch", "jax")  # lsearray on these libraries' arrays: the backends block
SCALING_GROUPS = ("1d", "2d", "short", "tall", "softmax")
SIDE_BY_SIDE = os.path.join(HERE, "side_by_side.py")
FLOORS = ("x.sum()", "np.exp(x, out=y)", "np.log1p(np.exp(x))")
ORDER = ("scipy", "np.logaddexp", "np.logaddexp.accumulate", "numpy switch", "torch", "jax",
         "numpy two-pass", "naive numpy", "shifted numpy", "numpy ufunc.at", "numpy recipe", "torch recipe") + FLOORS
SHORT = {"numpy two-pass": "two-pass", "np.exp(x, out=y)": "np.exp",
         "np.log1p(np.exp(x))": "exp+log1p", "np.logaddexp.accumulate": "accumulate",
         "naive numpy": "naive", "shifted numpy": "shifted", "numpy switch": "switch",
         "numpy ufunc.at": "ufunc.at", "numpy recipe": "recipe", "torch recipe": "torch"}
TITLES = (
    ("logsumexp", ("1d", "2d", "short", "tall"), "ms"),
    ("softmax and log_softmax", ("softmax",), "ms"),
    ("small calls (10 elements)", ("small",), "µs"),
    ("the relatives", ("relatives",), "ms"),
    ("grouped and mergeable", ("grouped",), "ms"),
)
# The backends block: lsearray on each library's arrays against that library's function.
BACKEND_TITLES = (
    ("lsearray on torch tensors against torch's own function", ("torch",), "ms"),
    ("lsearray on jax arrays against jax's own function, both jitted", ("jax",), "ms"),
)
# The README's rows: the float64 and float32 reductions, the rows of a matrix, softmax.
HEADLINE = (r"^1-D float64", r"^1-D float32", r"^2-D float64 .* axis=1", r"^softmax float64 \(",
            r"^log_softmax float32 \(")
HEADLINE_COLUMNS = ("scipy", "torch", "jax", "x.sum()")
HEADLINE_LEGEND = ("Each cell: the median over the runs (min–max in parentheses). 'other / lsearray': "
                   "how many times longer the other takes than lsearray, within the same run; "
                   "'lsearray / x.sum()': lsearray's time in units of one read of the input, its floor.")
BACKENDS_LEGEND = ("Each cell: the median over the runs (min–max in parentheses). 'other / lsearray': how "
                   "many times longer the library's own function takes than lsearray on the same "
                   "arrays, within the same run (above 1: lsearray is faster).")
LEGEND = ("Each cell: the median over the runs (min–max in parentheses). 'other / lsearray': how "
          "many times longer the other takes than lsearray, within the same run; 'lsearray / "
          "x.sum()': lsearray's time in units of one read of the input, its floor; np.exp: "
          "np.exp(x, out=y), one read, one write and one exp per element; two-pass: the numpy "
          "recipe (max, then exp and sum). Grouped: ufunc.at: numpy's segment recipe "
          "(np.maximum.at, then np.add.at of exp(a - m[ids])); torch: the same with scatter_reduce "
          "and index_add_, or softmax(a) @ v; recipe: numpy's softmax(a) @ v; naive: "
          "log(einsum(exp)) with optimize=True.")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``side_by_side`` holds the options after ``--``, ``cases`` a list."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="separate processes (default 5)")
    parser.add_argument("--cases", default=",".join(GROUPS),
                        help="comma-separated case groups, each run in its own process (default all)")
    parser.add_argument("--no-jax", action="store_true", help="leave jax's processes out")
    parser.add_argument("--scaling", type=int, default=None, metavar="N",
                        help="also time lsearray alone on 1 and N threads (side_by_side.py "
                             "--scaling), a process per group, and give the speed-up")
    parser.add_argument("--update", nargs="+", default=[], metavar="FILE",
                        help="write the tables into the marked blocks of these files")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="also draw 1-D float64 throughput against n, the median of the runs "
                             "with their range (side_by_side.py --plot-only, a process per run)")
    parser.add_argument("--plot-threads", type=int, default=2, metavar="N",
                        help="threads every library may use in the plot's runs (default 2)")
    parser.add_argument("--record", metavar="PATH", default=None,
                        help="also write every run's record (machine, all times) to PATH as JSON")
    parser.add_argument("--from-record", metavar="PATH", default=None,
                        help="write the tables from a --record file instead of measuring")
    parser.add_argument("side_by_side", nargs=argparse.REMAINDER,
                        help="options passed to side_by_side.py, after --")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.side_by_side[:1] == ["--"]:
        args.side_by_side = args.side_by_side[1:]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not args.cases or any(c not in GROUPS for c in args.cases):
        parser.error(f"--cases expects a comma-separated subset of {','.join(GROUPS)}, got {args.cases}")
    for path in args.update:
        if not os.path.isfile(path):
            parser.error(f"--update: no such file: {path}")
    return args


def run_process(options: list[str]) -> dict[str, Any]:
    """One side_by_side.py process; its JSON record."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.json")
        cmd = [sys.executable, SIDE_BY_SIDE, *options, "--json", path]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"side_by_side.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        with open(path) as f:
            return json.load(f)


def run_once(args: argparse.Namespace, first: bool) -> dict[str, Any]:
    """One run: a process per case group (and one for jax's contender per group), merged
    into one record whose times are ``[case, contender, seconds, lsearray's seconds in the
    same process]``. The first run also measures accuracy (in the last group's process)."""
    cases, times, tables, machines, scaling = [], [], {}, [], []
    numpy_groups = [g for g in args.cases if g not in JAX_ONLY_GROUPS]
    for group in args.cases:
        accuracy = ["--accuracy"] if first and numpy_groups and group == numpy_groups[-1] else []
        if group in JAX_ONLY_GROUPS:
            if args.no_jax:
                continue
            processes = [run_process([*args.side_by_side, "--cases", group, "--no-torch"])]
        else:
            processes = [run_process([*args.side_by_side, "--cases", group, "--no-jax", *accuracy])]
        if not args.no_jax and group in JAX_GROUPS:
            processes.append(run_process([*args.side_by_side, "--cases", group, "--no-torch",
                                          "--only", "jax"]))
        for n, record in enumerate(processes):
            ours = {label: t for label, name, t in record["times"] if name == "lsearray"}
            times += [[label, name, t, ours.get(label)] for label, name, t in record["times"]
                      if n == 0 or name != "lsearray"]
            machines.append(record["machine"])
        cases += processes[0]["cases"]
        if args.scaling and group in SCALING_GROUPS:
            record = run_process([*args.side_by_side, "--cases", group, "--no-jax", "--no-torch",
                                  "--scaling", "--threads", str(args.scaling)])
            best = {(label, name): t for label, name, t in record["times"]}
            scaling += [[c["label"], best[c["label"], "1"], best[c["label"], "n"]]
                        for c in record["cases"] if (c["label"], "1") in best and (c["label"], "n") in best]
        for title, body in processes[0]["tables"].items():
            # a memory table per group: one table, its rows appended
            tables[title] = body if title not in tables else \
                tables[title] + "\n" + "\n".join(body.splitlines()[2:])
    throughput = None
    if args.plot:
        record = run_process([*args.side_by_side, "--cases", "1d", "--plot-only",
                              "--threads", str(args.plot_threads)])
        throughput = record["throughput"]
        machines.append(record["machine"])
    jax_versions = [m["jax"] for m in machines if m.get("jax")]
    machine = dict(machines[0], jax=jax_versions[0] if jax_versions else None)
    machine["cpus_seen"] = sorted({m["cpu"] for m in machines})
    machine["date"] = time.strftime("%Y-%m-%d")
    return {"machine": machine, "cases": cases, "times": times, "tables": tables, "scaling": scaling,
            "scaling_threads": args.scaling, "throughput": throughput, "plot_threads": args.plot_threads}


def spread(values: list[float], fmt: str) -> str:
    """``median (min–max)`` of ``values``, each formatted with ``fmt``."""
    if not values:
        return "—"
    med = format(statistics.median(values), fmt)
    if len(values) == 1:
        return med
    return f"{med} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _time_fmt(seconds: float, scale: float) -> str:
    """The format of a time column: three significant digits below 1 unit, three decimals
    below 10 units, one above."""
    v = seconds * scale
    return ".3g" if v < 1 else ".3f" if v < 10 else ".1f"


def summarize(runs: list[dict[str, Any]], groups: Sequence[str], unit: str,
              columns: Sequence[str] | None = None, rows: Sequence[str] | None = None) -> str:
    """The markdown table of ``runs`` for the cases of ``groups`` (or matching ``rows``)."""
    scale = {"ms": 1e3, "µs": 1e6}[unit]
    cases = [c["label"] for c in runs[0]["cases"]
             if (rows is None and c["group"] in groups)
             or (rows is not None and any(re.search(r, c["label"]) for r in rows))]
    # (case, contender) -> (its seconds, lsearray's seconds in the same process)
    times = [{(label, name): (t, ours) for label, name, t, ours in run["times"]} for run in runs]
    present = {name for run in times for (_, name) in run}
    names = [n for n in (columns or ORDER) if n in present
             and any((label, n) in run for run in times for label in cases)]
    header = ["case", f"lsearray {unit}"]
    header += [f"lsearray / {SHORT.get(n, n)}" if n in FLOORS else f"{SHORT.get(n, n)} / lsearray"
               for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for label in cases:
        ours = [run[(label, "lsearray")][0] for run in times if (label, "lsearray") in run]
        row = [label, spread([t * scale for t in ours], _time_fmt(min(ours, default=1.0), scale))]
        for name in names:
            pairs = [run[(label, name)] for run in times if (label, name) in run]
            ratios = [o / t if name in FLOORS else t / o for t, o in pairs if o]
            row.append(spread(ratios, ".2f"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def scaling_table(runs: list[dict[str, Any]]) -> str:
    """lsearray's time on one thread and its speed-up on N, median (min–max) over the runs."""
    n = runs[0]["scaling_threads"]
    labels = [label for label, _, _ in runs[0]["scaling"]]
    samples = {label: [(t1, tn) for run in runs for lab, t1, tn in run["scaling"] if lab == label]
               for label in labels}
    lines = [f"| case | 1 thread ms | {n} threads ms | speed-up |", "|---|---:|---:|---:|"]
    for label, pairs in samples.items():
        lines.append(f"| {label} | {spread([1e3 * t1 for t1, _ in pairs], '.2f')} | "
                     f"{spread([1e3 * tn for _, tn in pairs], '.2f')} | "
                     f"{spread([t1 / tn for t1, tn in pairs], '.2f')} |")
    return "\n".join(lines)


def describe(runs: list[dict[str, Any]]) -> str:
    """The machine and the protocol, as the first lines of a block."""
    m = runs[0]["machine"]
    versions = ", ".join(f"{k} {m[k]}" for k in ("lsearray", "numpy", "scipy", "torch", "jax") if m.get(k))
    cpus = {cpu for run in runs for cpu in run["machine"].get("cpus_seen", [run["machine"]["cpu"]])}
    threads = f"{m['threads']} thread{'' if m['threads'] == 1 else 's'}"
    return (f"Measured on {' / '.join(sorted(cpus))} ({m['arch']}, {m['cpus']} CPUs visible), lsecore "
            f"SIMD path {m['simd']}, OpenMP {'on' if m['openmp'] else 'off'}, {threads} for every "
            f"library; {versions}; Python {m['python']}. {len(runs)} runs, each a process per case "
            f"group (jax's in processes of its own), each the best of {m['repeat']} interleaved "
            f"rounds; n = {m['size']:.3g}; {m['date']}, by `python asv_bench/figures.py`.")


def headline(runs: list[dict[str, Any]]) -> str:
    """The README's block: the machine and the headline rows."""
    return "\n\n".join([describe(runs), summarize(runs, (), "ms", HEADLINE_COLUMNS, HEADLINE),
                        HEADLINE_LEGEND])


def tables(runs: list[dict[str, Any]]) -> str:
    """The docs' block: the machine, every time table, the accuracy and memory of the first run."""
    parts = [describe(runs), LEGEND]
    present = {c["group"] for c in runs[0]["cases"]}
    for title, groups, unit in TITLES:
        if present & set(groups):
            parts += [f"**{title}**, time per call:", summarize(runs, groups, unit)]
    if runs[0].get("scaling"):
        parts += [f"**lsearray alone on 1 and {runs[0]['scaling_threads']} threads** (side_by_side.py "
                  "--scaling: both in the same interleaved rounds, a process per group), time per call:",
                  scaling_table(runs)]
    for title, body in runs[0]["tables"].items():
        parts += [f"**{title.rstrip(':')}** (first run):", body]
    return "\n\n".join(parts)


def backends(runs: list[dict[str, Any]]) -> str:
    """The docs' backends block: the machine and the tables of lsearray on torch and jax arrays."""
    present = {c["group"] for c in runs[0]["cases"]}
    parts = [describe(runs), BACKENDS_LEGEND]
    for title, groups, unit in BACKEND_TITLES:
        if present & set(groups):
            parts += [f"**{title}**, time per call:", summarize(runs, groups, unit)]
    return "\n\n".join(parts)


def update_file(path: str, blocks: dict[str, str]) -> list[str]:
    """Replace the marked blocks of ``path`` that ``blocks`` names; the names replaced."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    done = []
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- figures:{name} -->\n).*?(<!-- /figures:{name} -->)", re.DOTALL)
        text, count = pattern.subn(lambda m: m[1] + body + "\n" + m[2], text)
        if count:
            done.append(name)
    if done:
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return done


def plot(path: str, runs: list[dict[str, Any]]) -> None:
    """Draw the runs' throughput series (median and range) into ``path``."""
    from throughput_plot import draw  # beside this script, on its sys.path; needs matplotlib

    m, n = runs[0]["machine"], runs[0]["plot_threads"]
    series = [run["throughput"]["series"] for run in runs]
    draw(path, runs[0]["throughput"]["sizes"], series,
         f"1-D float64 logsumexp throughput ({n} threads unless named; x.sum() is numpy's, one "
         f"thread)\nmedian and range of {len(runs)} runs, each the best of {m['repeat']} rounds; "
         f"{m['cpu']}, lsecore SIMD path {m['simd']}, {m['date']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure (or read ``--from-record``), print the tables and write the marked blocks."""
    args = parse_args(argv)
    runs = []
    if args.from_record:
        with open(args.from_record) as f:
            runs = json.load(f)
    for i in range(0 if args.from_record else args.runs):
        print(f"run {i + 1} of {args.runs} ...", file=sys.stderr, flush=True)
        runs.append(run_once(args, first=i == 0))
    if args.record:
        with open(args.record, "w") as f:
            json.dump(runs, f, indent=1)
    present = {c["group"] for c in runs[0]["cases"]}
    blocks = {}
    if present - set(BACKEND_GROUPS):
        blocks.update(headline=headline(runs), tables=tables(runs))
    if present & set(BACKEND_GROUPS):
        blocks["backends"] = backends(runs)
    if args.plot:
        if not all(run.get("throughput") for run in runs):
            raise RuntimeError("--plot: the runs have no throughput series (measure with --plot)")
        plot(args.plot, runs)
    print("\n\n".join(blocks[name] for name in ("tables", "backends") if name in blocks))
    for path in args.update:
        names = update_file(path, blocks)
        print(f"{path}: {', '.join(names) or 'no figures markers found'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("figures.py: interrupted; no file was changed", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as error:
        print(f"figures.py: {error}", file=sys.stderr)
        sys.exit(1)
