"""The accuracy tables: max ulp errors against mpmath on hard float64 inputs, with the tests' own references."""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from scipy import special

import lsearray

from .contenders import Contenders
from .recipes import numpy_two_pass

__all__ = ["DPS", "accuracy_table"]

DPS = 50  # the digits of the references
# The test suite's references (tests/reference.py), beside asv_bench in the source tree and the sdist.
REFERENCE_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tests",
                            "reference.py")


def load_reference() -> ModuleType:
    """tests/reference.py as a module (tests is not a package)."""
    spec = importlib.util.spec_from_file_location("lsearray_tests_reference", REFERENCE_PY)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {REFERENCE_PY}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accuracy_cases(seed: int) -> list[tuple[str, np.ndarray]]:
    """Hard float64 logsumexp inputs: a dominant term, offsets near 700, ties."""
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


def cumulative_accuracy_cases(seed: int) -> list[tuple[str, np.ndarray]]:
    """Hard 1-D float64 logcumsumexp inputs: terms far below the running max, sorted data, near 700."""
    rng = np.random.default_rng(seed)
    ascending = np.sort(rng.standard_normal(10_000) * 10.0)
    return [
        ("[0, 1e4 x (-50)]", np.concatenate([[0.0], np.full(10_000, -50.0)])),
        ("[0, -50] x 5e3", np.tile([0.0, -50.0], 5000)),
        ("sorted normal x 10, n=1e4", ascending),
        ("sorted descending normal x 10, n=1e4", ascending[::-1].copy()),
        ("normal n=1e4 + 700", rng.standard_normal(10_000) + 700.0),
    ]


def accuracy_contenders(contenders: Contenders, a: np.ndarray) -> dict[str, Callable[[], Any]]:
    """name -> no-argument logsumexp of ``a`` (float64) for the accuracy table."""
    torch, jax = contenders.torch, contenders.jax
    fns: dict[str, Callable[[], Any]] = {
        "lsearray": lambda: lsearray.logsumexp(a),
        "scipy": lambda: special.logsumexp(a),
        "numpy two-pass": lambda: numpy_two_pass(a),
    }
    if torch is not None:
        fns["torch"] = lambda: contenders.torch_call("logsumexp", torch.from_numpy(a), None)
    if jax is not None:
        fns["jax"] = lambda: jax.scipy.special.logsumexp(jax.numpy.asarray(a))
    return fns


def cumulative_contenders(contenders: Contenders, a: np.ndarray) -> dict[str, Callable[[], Any]]:
    """name -> no-argument logcumsumexp of 1-D ``a`` (float64) for the accuracy table."""
    torch = contenders.torch
    fns: dict[str, Callable[[], Any]] = {
        "lsearray": lambda: lsearray.logcumsumexp(a),
        "np.logaddexp.accumulate": lambda: np.logaddexp.accumulate(a),
    }
    if torch is not None:
        fns["torch"] = lambda: contenders.torch_call("logcumsumexp", torch.from_numpy(a), None)
    return fns


def mp_prefix_logsumexps(a: np.ndarray) -> list[Any]:
    """The log of every prefix sum of exp(a), in mpmath with DPS digits: one running sum,
    where tests/reference.py's per-prefix reference would sum every prefix anew."""
    import mpmath

    with mpmath.workdps(DPS):
        total, refs = mpmath.mpf(0), []
        for x in a:
            total += mpmath.exp(mpmath.mpf(float(x)))
            refs.append(mpmath.log(total))
    return refs


def fmt_ulp(err: float | str) -> str:
    """An ulp error with two decimals (three digits from 1000), or the failure's message."""
    if isinstance(err, str):
        return err
    return f"{err:.2f}" if err < 1000 else f"{err:.3g}"


def accuracy_table(contenders: Contenders, seed: int,
                   cumulative: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of max ulp errors against mpmath, with a final **max** row.

    Of logsumexp, or with ``cumulative`` of logcumsumexp, the max over its prefixes.
    """
    import mpmath

    reference = load_reference()
    if cumulative:
        cases, contenders_of = cumulative_accuracy_cases(seed), cumulative_contenders
    else:
        cases, contenders_of = accuracy_cases(seed), accuracy_contenders
    names = list(contenders_of(contenders, np.zeros(1)))
    rows: list[list[Any]] = []
    for label, a in cases:
        refs = (mp_prefix_logsumexps(a) if cumulative
                else [reference.mp_logsumexp(a, dps=DPS)[0]])
        errs: list[float | str] = []
        for name, fn in contenders_of(contenders, a).items():
            try:
                values = np.ravel(contenders.as_numpy(fn()))
                errs.append(max(reference.ulp_error(v, r, np.float64)
                                for v, r in zip(values, refs, strict=True)))
            except Exception as exc:  # report, do not hide, a contender that fails
                errs.append(f"error: {type(exc).__name__}: {exc}")
        rows.append([label, mpmath.nstr(refs[-1], 17)] + errs)
    worst: list[Any] = ["**max**", ""]
    for j in range(len(names)):
        col = [r[2 + j] for r in rows]
        worst.append(next((c for c in col if isinstance(c, str)), max(col)))
    table = [[r[0], r[1]] + [fmt_ulp(c) for c in r[2:]] for r in rows + [worst]]
    header = (["case (float64)", "mpmath, last prefix" if cumulative else "mpmath reference"]
              + [f"{n} ulp" for n in names])
    return header, table
