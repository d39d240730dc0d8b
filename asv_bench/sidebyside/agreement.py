"""Whether the contenders agree: each result against scipy (or numpy for the relatives) in float64, within a tolerance per case."""
from __future__ import annotations

import numpy as np

from .cases import Case
from .contenders import Contenders

__all__ = ["check_agreement", "tolerance"]


def tolerance(case: Case) -> float:
    """How far from the reference a contender of ``case`` may be, in max |r - ref| / max(|ref|, 1).

    1e-5 for float32, 1e-10 for logcumsumexp (numpy's and torch's sequential scans drift with
    the length: 2e-12 at 1e7 elements), 1e-12 otherwise.
    """
    if case.a.dtype == np.float32:
        return 1e-5
    return 1e-10 if case.kind == "logcumsumexp" else 1e-12


def check_agreement(cases: list[Case], contenders: Contenders) -> dict[tuple[str, str], float | str]:
    """max |r - ref| / max(|ref|, 1) of each contender against ``contenders.reference`` in
    float64, per (case label, contender); a string where it failed or its shape differs."""
    diffs: dict[tuple[str, str], float | str] = {}
    for case in cases:
        ref = contenders.reference(case)
        for name, fn in contenders.of(case, floors=False).items():
            try:
                r = contenders.as_numpy(fn()).astype(np.float64)
            except Exception as exc:
                contenders.failures[case.label, name] = f"{type(exc).__name__}: {exc}"
                diffs[case.label, name] = "failed"
                continue
            if r.shape != ref.shape:
                diffs[case.label, name] = f"shape {r.shape} != {ref.shape}"
                continue
            diffs[case.label, name] = float(np.max(np.abs(r - ref) / np.maximum(np.abs(ref), 1.0)))
    return diffs
