"""Which loops run (AVX-512 or portable), and the 1-ulp bound and special values on every layout."""

import math
import os
import pathlib
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import lsearray
from lsecore import _kernel
from kernel_support import (DTYPES, LD, ROOT, assert_no_failures, expected_simd, inf, kernel_rng, nan,
                            needs_ld, ulp_failures, well_conditioned)
from reference import ld_lse_rows, mp_logsumexp


@needs_ld
def test_long_double_oracle_agrees_with_mpmath():
    """The oracle itself: within 0.01 float64 ulp of mpmath on hard rows."""
    rng = kernel_rng("oracle")
    rows = [
        np.r_[0.0, rng.normal(-40.0, 1.0, 30)],
        np.r_[rng.normal(-40.0, 1.0, 30), 0.0, 0.0],
        -745.0 + rng.uniform(0.0, 20.0, 50),
        rng.normal(size=50) + 700.0,
        rng.normal(size=50) - 700.0,
        rng.normal(size=50) * 30.0,
    ]
    for row in rows:
        for tau in (1.0, 0.5, 2.0):
            got = ld_lse_rows(row[None, :], tau=tau)[0]
            exact = mp_logsumexp(row, temperature=tau)[0]
            with mpmath.workdps(60):
                err = abs(mpmath.mpf(str(got)) - exact) / float(np.spacing(abs(float(exact))))
            assert err <= 0.01, (tau, float(got), float(exact), float(err))
    b = rng.uniform(0.5, 2.0, 31)
    row = np.r_[0.0, rng.normal(-40.0, 1.0, 30)]
    got = ld_lse_rows(row[None, :], b[None, :])[0]
    exact = mp_logsumexp(row, b)[0]
    with mpmath.workdps(60):
        assert abs(mpmath.mpf(str(got)) - exact) <= 0.01 * float(np.spacing(abs(float(exact))))


def test_simd_reports_expected_path():
    expected = expected_simd(os.environ)
    got = _kernel.simd()
    assert got in ("avx512", "generic")
    if expected is None:
        pytest.skip("cannot tell whether this CPU has AVX-512")
    assert got == expected, f"LSECORE_SIMD={os.environ.get('LSECORE_SIMD')!r}: simd() is {got!r}"


def test_simd_is_read_once_per_process(monkeypatch):
    before = _kernel.simd()
    lsearray.logsumexp(np.zeros(100))
    monkeypatch.setenv("LSECORE_SIMD", "avx512" if before == "generic" else "generic")
    assert _kernel.simd() == before
    lsearray.logsumexp(np.zeros(100))
    assert _kernel.simd() == before


def _env_for(mode):
    env = dict(os.environ)
    env.pop("LSECORE_SIMD", None)
    if mode == "generic":
        env["LSECORE_SIMD"] = "generic"
    return env


@pytest.mark.parametrize("mode", ["generic", "default"])
def test_simd_in_subprocess(mode):
    env = _env_for(mode)
    out = subprocess.run([sys.executable, "-c", "import lsecore._kernel as k; print(k.simd())"],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    expected = expected_simd(env)
    if expected is None:
        pytest.skip("cannot tell whether this CPU has AVX-512")
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("mode", ["generic", "default"])
def test_other_loops_pass_accuracy_and_edge_cases_in_subprocess(mode):
    """The accuracy, special-value and kernel-path tests, run with the loops this process
    does not use (the portable ones on an AVX-512 machine, and the reverse)."""
    env = _env_for(mode)
    expected = expected_simd(env)
    if expected is None:
        pytest.skip("cannot tell whether this CPU has AVX-512")
    if expected == _kernel.simd():
        pytest.skip(f"this process already runs the {expected} loops")
    kernel_paths = sorted(p.name for p in pathlib.Path(ROOT, "tests").glob("test_kernel_*.py"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "tests/test_accuracy.py", "tests/test_edge_cases.py",
           *(f"tests/{name}" for name in kernel_paths),
           "tests/test_exact_tier.py",
           # the tests of these files that start processes of their own, or need no second run
           "-k", "not in_subprocess and not read_once"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, (f"LSECORE_SIMD={env.get('LSECORE_SIMD')!r}:\n"
                                 + out.stdout[-6000:] + out.stderr[-2000:])


# Hard cases of test_accuracy, here as every row of a short-row matrix, as columns and as
# rows of a long-row matrix: the 1-ulp bound on each layout the kernel dispatches on.
HARD_CASES = {
    "dominant-0-50": lambda r: np.array([0.0, -50.0]),
    "dominant-minus50-0": lambda r: np.array([-50.0, 0.0]),
    "ties-at-max": lambda r: np.array([0.0, -1.0, 0.0, -2.0, 0.0, -30.0]),
    "tiny-around-minus40-max-first": lambda r: np.r_[0.0, r.normal(-40.0, 1.0, 300)],
    "tiny-around-minus40-max-last": lambda r: np.r_[r.normal(-40.0, 1.0, 300), 0.0],
    "tiny-around-minus40-max-middle": lambda r: np.r_[r.normal(-40.0, 1.0, 150), 0.0,
                                                      r.normal(-40.0, 1.0, 150)],
    "near-underflow-minus745": lambda r: -745.0 + r.uniform(0.0, 20.0, 300),
    "offset-plus700": lambda r: r.normal(size=300) + 700.0,
    "offset-minus700": lambda r: r.normal(size=300) - 700.0,
    "normal-wide": lambda r: r.normal(size=300) * 30.0,
    "sorted-ascending": lambda r: np.sort(r.normal(size=300) * 3.0) + 10.0,
}


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(HARD_CASES))
def test_hard_cases_on_every_layout(case, dtype):
    rng = kernel_rng(case)
    # 9 variants of the case: the case itself and rolled copies (the max moves around)
    base = HARD_CASES[case](rng)
    rows = np.stack([np.roll(base, 37 * i) for i in range(9)]).astype(dtype)
    ref = ld_lse_rows(rows)
    failures = []
    # whole case: one row
    for i in range(3):
        got = np.asarray(lsearray.logsumexp(rows[i]))
        failures += ulp_failures(got, ref[i], dtype, label=f"1-D row {i}")
    # long rows, C and F order
    failures += ulp_failures(lsearray.logsumexp(rows, axis=1), ref, dtype, label="rows C")
    failures += ulp_failures(lsearray.logsumexp(np.asfortranarray(rows), axis=1), ref, dtype,
                             label="rows F")
    # columns: contiguous and strided
    cols = np.ascontiguousarray(rows.T)
    failures += ulp_failures(lsearray.logsumexp(cols, axis=0), ref, dtype, label="columns C")
    big = np.zeros((cols.shape[0], 3 * cols.shape[1]), dtype=dtype)
    big[:, ::3] = cols
    failures += ulp_failures(lsearray.logsumexp(big[:, ::3], axis=0), ref, dtype,
                             label="columns strided")
    # short rows: windows of <= 32 elements of the case, many rows
    k = min(base.size, 32)
    windows = np.lib.stride_tricks.sliding_window_view(rows[0], k)[:200]
    wref = ld_lse_rows(windows)
    keep = well_conditioned(windows, wref)
    windows, wref = np.ascontiguousarray(windows[keep]), wref[keep]
    failures += ulp_failures(lsearray.logsumexp(windows, axis=1), wref, dtype,
                             label=f"short rows k={k}")
    assert_no_failures(failures)


# --------------------------------------------------------------------------------------------
# Special values from the edge-case table, as short rows and as columns
# --------------------------------------------------------------------------------------------

# (a, expected): unweighted, tau = 1, results derived by hand
SPECIAL_ROWS = [
    ([0.0, -50.0], math.log1p(math.exp(-50.0))),
    ([-inf, -inf], -inf),
    ([], -inf),
    ([0.0], 0.0),
    ([5.0], 5.0),
    ([-inf, 0.0], 0.0),
    ([inf, 1.0], inf),
    ([inf, -inf], inf),
    ([inf, nan], nan),
    ([nan, 1.0], nan),
    ([nan, -inf], nan),
    ([-inf, nan, -inf], nan),
    ([-inf, inf, nan], nan),
    ([1e308, 1e308], 1e308),
    ([-1e308, -1e308], -1e308),
    ([1e308, -1e308], 1e308),
    ([-800.0, -800.0], float(mpmath.mpf(-800) + mpmath.log(2))),
    ([0.0, 0.0, 0.0, 0.0], math.log(4.0)),
    ([3.5] * 7, float(mpmath.mpf(3.5) + mpmath.log(7))),
    ([0.0, -1.0, 0.0, -2.0, 0.0, -30.0],
     float(mpmath.log(3 + mpmath.exp(-1) + mpmath.exp(-2) + mpmath.exp(-30)))),
]


def _special_matrix(width, n_copies, rng):
    """Each SPECIAL_ROWS entry padded with -inf to `width` (at random places), several times."""
    rows, expected = [], []
    for _ in range(n_copies):
        for a, e in SPECIAL_ROWS:
            row = np.full(width, -inf)
            row[np.sort(rng.choice(width, size=len(a), replace=False))] = a
            rows.append(row)
            expected.append(e)
    return np.array(rows), np.array(expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [7, 8, 32, 33, 70])
def test_special_values_as_short_rows_and_columns(width, dtype):
    rng = kernel_rng(f"special-{width}")
    a, expected = _special_matrix(width, 5, rng)   # 100 rows: more than one column tile
    with np.errstate(over="ignore"):               # 1e308 overflows float32: inf, in both
        a = a.astype(dtype)
        expected = expected.astype(dtype)
    failures = []
    for label, got in [
        ("rows C", lsearray.logsumexp(a, axis=1)),
        ("rows F", lsearray.logsumexp(np.asfortranarray(a), axis=1)),
        ("rows reversed", lsearray.logsumexp(a[::-1, ::-1], axis=1)[::-1]),
        ("columns C", lsearray.logsumexp(np.ascontiguousarray(a.T), axis=0)),
        ("columns strided", lsearray.logsumexp(np.repeat(a.T, 2, axis=1)[:, ::2], axis=0)),
    ]:
        failures += ulp_failures(got, expected.astype(LD), dtype, label=label)
    assert_no_failures(failures)
