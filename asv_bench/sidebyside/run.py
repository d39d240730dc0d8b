"""One run of side_by_side.py: the tables, the thread scaling or the throughput series, as the `Config` asks."""
from __future__ import annotations

from .accuracy import DPS, accuracy_table
from .agreement import check_agreement
from .cases import GROUPED, RELATIVES, SCIPY_KINDS, SMALL_N, Case, make_cases
from .contenders import Contenders, load_contenders
from .options import Config
from .report import (GROUPED_LEGEND, LEGEND, RELATIVES_LEGEND, describe_environment, fmt_time, markdown, memory_table,
                     print_section, ratio, report_agreement, time_table, write_json)
from .throughput import run_plot
from .timing import Timed, limited, time_interleaved

__all__ = ["main"]

TABLES = (
    ("logsumexp, time per call (best of rounds):", ("1d", "2d", "short", "tall"), "ms"),
    ("softmax and log_softmax, time per call (best of rounds):", ("softmax",), "ms"),
    (f"small calls ({SMALL_N} elements), time per call (best of rounds):", ("small",), "µs"),
    ("lsearray on torch tensors against torch's own function, time per call (best of rounds):",
     ("torch",), "ms"),
    ("lsearray on jax arrays against jax's own function, both jitted, time per call "
     "(best of rounds):", ("jax",), "ms"),
)


def run_tables(config: Config, contenders: Contenders) -> tuple[list[Case], dict[tuple[str, str], float],
                                                                 dict[str, str]]:
    """Time the selected cases and print the time, agreement and memory tables.

    Returns the cases, the best seconds per (case label, contender) and the memory tables
    (title: markdown).
    """
    cases = make_cases(config.size, config.cases)
    diffs = check_agreement(cases, contenders)
    plan = [Timed((case.label, name), fn)
            for case in cases for name, fn in contenders.of(case).items()
            if config.only is None or name in config.only]
    best = time_interleaved(plan, config.repeat, config.min_sample, contenders.failures)
    for title, groups, unit in TABLES:
        selected = [c for c in cases if c.group in groups]
        if selected:
            print_section(title, time_table(selected, best, unit))
    for kind in RELATIVES + GROUPED:
        selected = [c for c in cases if c.kind == kind]
        if selected:
            print_section(f"{kind}, time per call (best of rounds):", time_table(selected, best, "ms"))
    if any(c.kind in SCIPY_KINDS for c in cases):
        print(LEGEND)
        print()
    if any(c.kind in RELATIVES for c in cases):
        print(RELATIVES_LEGEND)
        print()
    if any(c.kind in GROUPED for c in cases):
        print(GROUPED_LEGEND)
        print()
    report_agreement(diffs, cases)
    memory = {}
    large = [c for c in cases if c.group not in ("small", "relatives", "grouped") and c.library == "numpy"]
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


def run_scaling(config: Config, contenders: Contenders) -> tuple[list[Case], dict[tuple[str, str], float]]:
    """Time lsearray on one thread and on ``config.threads`` threads in the same interleaved
    rounds; print the times and the speed-up of every large case selected. Returns the cases
    and the best seconds per (case label, "1" or "n")."""
    cases = [c for c in make_cases(config.size, config.cases)
             if c.group not in ("small", "relatives", "grouped") and c.library == "numpy"]
    plan = []
    for case in cases:
        fn = Contenders.references(case)["lsearray"]
        plan += [Timed((case.label, "1"), fn, threads=1),
                 Timed((case.label, "n"), fn, threads=config.threads)]
    best = time_interleaved(plan, config.repeat, config.min_sample, contenders.failures)
    rows = [[c.label, fmt_time(best.get((c.label, "1")), 1e3),
             fmt_time(best.get((c.label, "n")), 1e3),
             ratio(best.get((c.label, "1")), best.get((c.label, "n")))] for c in cases]
    print_section(f"lsearray on 1 and {config.threads} threads, time per call (best of rounds):",
                  markdown(["case", "1 thread ms", f"{config.threads} threads ms",
                            "speed-up"], rows))
    return cases, best


def run_accuracy(config: Config, contenders: Contenders) -> dict[str, str]:
    """Print the accuracy tables; title -> markdown."""
    accuracy = {f"Max ulp error against mpmath (mp.dps={DPS}), float64:":
                markdown(*accuracy_table(contenders, seed=7))}
    if "relatives" in config.cases:
        accuracy[f"logcumsumexp, max ulp error over the prefixes against mpmath (mp.dps={DPS}), "
                 "float64:"] = markdown(*accuracy_table(contenders, seed=7, cumulative=True))
    for title, body in accuracy.items():
        print_section(title, body)
    return accuracy


def report_failures(contenders: Contenders) -> None:
    """Print the contenders that raised, left out of the tables."""
    if contenders.failures:
        print("FAILED (left out of the tables):")
        for (label, name), msg in contenders.failures.items():
            print(f"  {label}, {name}: {msg}")
        print()


def main(config: Config) -> int:
    """Print the tables (and write the plot) that ``config`` asks for; 1 if a contender
    failed, else 0."""
    contenders = load_contenders(config.no_torch, config.no_jax)
    with limited(config.threads):
        if contenders.torch is not None:
            contenders.torch.set_num_threads(config.threads)
        print(describe_environment(config, contenders))
        print()
        if config.scaling:
            cases, best = run_scaling(config, contenders)
            if config.json:
                write_json(config, contenders, cases, best, {})
            return 1 if contenders.failures else 0
        if config.plot_only:
            throughput = run_plot(config, contenders)
            if config.json:
                write_json(config, contenders, [], {}, {}, throughput)
            return 1 if contenders.failures else 0
        cases, best, tables = run_tables(config, contenders)
        if config.plot:
            run_plot(config, contenders)
        if config.accuracy:
            tables.update(run_accuracy(config, contenders))
        if config.json:
            write_json(config, contenders, cases, best, tables)
        report_failures(contenders)
    return 1 if contenders.failures else 0
