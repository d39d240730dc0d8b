"""The kernel's code paths against independent references: the AVX-512 and the portable loops
(LSECORE_SIMD=generic), short rows reduced as columns, column tiles, row blocks, the softmax
output pass (`_kernel.normalize`) and `_kernel.finalize`.

The oracle for the many-slice tests is a long-double NumPy computation that keeps the sum of
the non-maximal terms apart from the max's weight (so that log1p(t) of a tiny t is exact to
long double's 64 bits); mpmath (tests/reference.py) checks that oracle and the closed forms.
"""

import math
import os
from fractions import Fraction
import platform
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import lsearray
import lsecore
from awkward_arrays import seed_for
from lsecore import _kernel
from reference import mp_logsumexp, ulp_error

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

LD = np.longdouble
EXTENDED = np.finfo(LD).eps < 1e-18
needs_ld = pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision np.longdouble oracle")

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
inf = math.inf
nan = math.nan


# --------------------------------------------------------------------------------------------
# Which loops run here
# --------------------------------------------------------------------------------------------

def _cpu_has_avx512():
    """Whether the CPU has AVX-512 F and DQ (what the kernel asks for); None where unknown."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return {"avx512f", "avx512dq"} <= set(line.split(":", 1)[1].split())
    return None


CPU_AVX512 = _cpu_has_avx512()


def _expected_simd(env):
    """What simd() must report in a process started with `env`; None where unknown."""
    if env.get("LSECORE_SIMD") == "generic":
        return "generic"
    if CPU_AVX512 is None:
        return None
    return "avx512" if CPU_AVX512 else "generic"


def _rng(tag):
    return np.random.default_rng(seed_for(tag))


# --------------------------------------------------------------------------------------------
# Long-double oracle and ulp checks
# --------------------------------------------------------------------------------------------

def ld_lse_rows(a, b=None, tau=1.0):
    """tau * log(sum_j b_j exp(a_j / tau)) of each row of the 2-D `a`, in long double.

    b >= 0 (None: ones), broadcast against a; b == 0 removes an element. Special values as
    scipy: nan -> nan, +inf -> +inf, empty or all -inf -> -inf. The finite value is
    m + tau (log w + log1p(t / w)) with w the weight of the maximal terms and t the sum of
    the others, so a tiny t is not lost against 1.
    """
    a = np.asarray(a, dtype=np.float64)
    A = a.astype(LD)
    if b is None:
        B = np.ones_like(A)
    else:
        B = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape).astype(LD)
        assert not np.any(B < 0)
    used = B != 0
    nan_rows = np.any(used & np.isnan(A), axis=1) | np.any(np.isnan(B), axis=1)
    inf_rows = np.any(used & (A == np.inf), axis=1)
    fin = np.where(used & np.isfinite(A), A, LD(-np.inf))
    m = fin.max(axis=1) if fin.shape[1] else np.full(fin.shape[0], LD(-np.inf))
    ok = np.isfinite(m)
    ms = np.where(ok, m, LD(0))
    top = (fin == ms[:, None]) & ok[:, None]
    w = np.where(top, B, LD(0)).sum(axis=1)
    with np.errstate(all="ignore"):
        terms = np.where(~top & np.isfinite(fin), B * np.exp((fin - ms[:, None]) / LD(tau)), LD(0))
        t = terms.sum(axis=1)
        out = ms + LD(tau) * (np.log(w) + np.log1p(t / w))
    out = np.where(ok, out, LD(-np.inf))
    out = np.where(inf_rows, LD(np.inf), out)
    return np.where(nan_rows, LD(np.nan), out)


def ld_lse(a, axis, b=None, tau=1.0):
    """`ld_lse_rows` of a 2-D array over axis 0 or 1."""
    a = np.asarray(a, dtype=np.float64)
    if b is not None:
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    if axis == 0:
        return ld_lse_rows(a.T, None if b is None else b.T, tau)
    return ld_lse_rows(a, b, tau)


# A small result next to a max of 0 is tau log1p(t) ~ tau t for a sum t of terms far below
# the max (2^-20 covers t ~ e^-20 of a temperature 2, as well as e^-40). Each of a
# few such terms keeps the rounding of its exp (< 0.52 ulp on the AVX-512 loops, 0.7 ulp on
# the portable ones) and the compensated sum of a column lane a little more, all in ulps of
# the result itself: measured up to 1.52 ulp on both paths for 2-33 terms around -40 next to
# a max of 0 (about 0.7% of such rows). With many terms (tests/test_accuracy.py) the errors
# average out below 1 ulp; float32 rounding hides them.
TINY_RESULT = 2.0 ** -20
TINY_RESULT_ULP = {np.dtype(np.float64): 2.0, np.dtype(np.float32): 1.0}


def ulp_failures(got, ref, dtype, max_ulp=1.0, label=""):
    """Messages for the elements of `got` (of `dtype`) more than `max_ulp` ulp from the
    long-double `ref` (ulps of ref rounded to dtype; results of magnitude below TINY_RESULT get
    TINY_RESULT_ULP); nan and inf must match exactly."""
    dtype = np.dtype(dtype)
    got = np.asarray(got)
    ref = np.asarray(ref, dtype=LD)
    if got.dtype != dtype:
        return [f"{label}: dtype {got.dtype}, expected {dtype}"]
    if got.shape != ref.shape:
        return [f"{label}: shape {got.shape}, expected {ref.shape}"]
    g = got.astype(LD)
    bad = np.isnan(ref) != np.isnan(g)
    bad |= np.isinf(ref) & (g != ref)
    finite = np.isfinite(ref)
    bad |= finite & ~np.isfinite(g)
    err = np.zeros(ref.shape, dtype=LD)
    check = finite & np.isfinite(g)
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(ref.astype(dtype))).astype(LD)
        err[check] = np.abs(g[check] - ref[check]) / spacing[check]
        allowed = np.where(np.abs(ref) < TINY_RESULT, max(max_ulp, TINY_RESULT_ULP[dtype]), max_ulp)
    bad |= err > allowed
    out = []
    for idx in np.argwhere(bad)[:8]:
        idx = tuple(idx)
        out.append(f"{label} at {idx}: got {g[idx]!r}, expected {ref[idx]!r} "
                   f"({float(err[idx]):.3g} ulp)")
    if bad.sum() > 8:
        out.append(f"{label}: ... {int(bad.sum())} elements in all")
    return out


def well_conditioned(rows, ref):
    """Rows whose log-sum-exp is not a cancellation of a non-zero max against the log of
    the sum (|result| < 1): there an error of one ulp of the sum is many ulps of the
    result, whatever the loops (tests below keep their data away from it)."""
    m = np.max(rows.astype(np.float64), axis=1) if rows.shape[1] else np.full(rows.shape[0], -inf)
    return (m == 0) | ~np.isfinite(ref) | (np.abs(ref) >= 1)


def assert_no_failures(failures):
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])


@needs_ld
def test_long_double_oracle_agrees_with_mpmath():
    """The oracle itself: within 0.01 float64 ulp of mpmath on hard rows."""
    rng = _rng("oracle")
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


# --------------------------------------------------------------------------------------------
# 1. Both code paths
# --------------------------------------------------------------------------------------------

def test_simd_reports_expected_path():
    expected = _expected_simd(os.environ)
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
    expected = _expected_simd(env)
    if expected is None:
        pytest.skip("cannot tell whether this CPU has AVX-512")
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("mode", ["generic", "default"])
def test_other_loops_pass_accuracy_and_edge_cases_in_subprocess(mode):
    """The accuracy, special-value and kernel-path tests, run with the loops this process
    does not use (the portable ones on an AVX-512 machine, and the reverse)."""
    env = _env_for(mode)
    expected = _expected_simd(env)
    if expected is None:
        pytest.skip("cannot tell whether this CPU has AVX-512")
    if expected == _kernel.simd():
        pytest.skip(f"this process already runs the {expected} loops")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "tests/test_accuracy.py", "tests/test_edge_cases.py", "tests/test_kernel_paths.py",
           "tests/test_exact_tier.py",
           # the tests of this file that start processes of their own, or need no second run
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
    rng = _rng(case)
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
    rng = _rng(f"special-{width}")
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


# --------------------------------------------------------------------------------------------
# 2. Short rows (length <= 32, reduced as the columns of a transposed view)
# --------------------------------------------------------------------------------------------

SHORT_K = list(range(1, 34))
SHORT_N = [1, 2, 7, 64, 65, 1000]


def _short_rows(n, k, rng):
    """(n, k): ordinary rows (results well away from 0), hard rows (a 0 among terms
    around -40) and special rows."""
    a = rng.normal(scale=3.0, size=(n, k)) + 8.0
    hard = np.flatnonzero(np.arange(n) % 2 == 1)
    a[hard] = rng.normal(-40.0, 1.0, size=(hard.size, k))
    a[hard, (7 * hard) % k] = 0.0

    def special(i, kind):
        if kind == "all-neginf":
            a[i] = -inf
        elif kind == "neginf-some":
            a[i, ::2] = -inf
            a[i, -1] = 0.5 if k > 1 else a[i, -1]
        elif kind == "nan":
            a[i, (3 * i) % k] = nan
        elif kind == "posinf":
            a[i, -1] = inf
        elif kind == "nan-with-neginf":
            a[i] = -inf
            a[i, k // 2] = nan
        elif kind == "ties":
            a[i, ::3] = np.max(a[i]) + 1.0
        elif kind == "posinf-with-neginf":
            a[i] = -inf
            a[i, 0] = inf

    kinds = ["all-neginf", "hard", "neginf-some", "nan", "posinf", "nan-with-neginf", "ties",
             "posinf-with-neginf"]
    for i, kind in enumerate(kinds[:n]):
        special(i, kind)
    if n > len(kinds):                       # more, at random rows, in later tiles too
        for i in rng.choice(np.arange(len(kinds), n), size=min(n - len(kinds), 24), replace=False):
            special(i, kinds[i % len(kinds)])
    return a


def _layouts_2d(a):
    """a in several memory layouts (same values): C, F, strided and negative-stride views."""
    n, k = a.shape
    big = np.full((2 * n, 3 * k), 123.0, dtype=a.dtype)
    big[::2, ::3] = a
    return {
        "C": np.ascontiguousarray(a),
        "F": np.asfortranarray(a),
        "strided": big[::2, ::3],
        "reversed": np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1],
    }


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_match_reference(dtype):
    failures = []
    for n in SHORT_N:
        for k in SHORT_K:
            a = _short_rows(n, k, _rng(f"short-{n}-{k}")).astype(dtype)
            ref = ld_lse_rows(a)
            for name, view in _layouts_2d(a).items():
                got = lsearray.logsumexp(view, axis=1)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name}")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_short_rows_with_temperature(tau, dtype):
    failures = []
    for n in (7, 65, 1000):
        for k in (1, 2, 5, 8, 16, 31, 32, 33):
            a = _short_rows(n, k, _rng(f"short-tau-{n}-{k}")).astype(dtype)
            ref = ld_lse_rows(a, tau=tau)
            for name, view in _layouts_2d(a).items():
                got = lsearray.logsumexp(view, axis=1, temperature=tau)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name} tau={tau}")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_weighted(dtype):
    """Weighted short rows (portable loops), full and broadcast weights, zeros removing
    +inf and nan elements."""
    failures = []
    for n in (2, 7, 64, 65, 1000):
        for k in (1, 3, 8, 17, 32, 33):
            rng = _rng(f"short-w-{n}-{k}")
            a = _short_rows(n, k, rng).astype(dtype)
            b = rng.uniform(0.5, 2.0, size=(n, k))
            b[rng.random((n, k)) < 0.1] = 0.0
            b[~np.isfinite(a) & (rng.random((n, k)) < 0.5)] = 0.0
            b = b.astype(dtype)
            ref = ld_lse_rows(a, b)
            for name, view in _layouts_2d(a).items():
                bview = _layouts_2d(b)[name]
                got = lsearray.logsumexp(view, axis=1, b=bview)
                failures += ulp_failures(got, ref, dtype, label=f"n={n} k={k} {name} b=full")
            bk = b[0]                          # broadcast along the rows (zero stride)
            got = lsearray.logsumexp(a, axis=1, b=bk)
            failures += ulp_failures(got, ld_lse_rows(a, bk), dtype, label=f"n={n} k={k} b=bcast")
            got = lsearray.logsumexp(a, axis=1, b=b, temperature=2.0)
            failures += ulp_failures(got, ld_lse_rows(a, b, 2.0), dtype,
                                     label=f"n={n} k={k} b=full tau=2")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_merge_into_running_partials(dtype):
    """A reduction over two axes that do not coalesce: the kernel gets several short-row
    views in turn, each merged into the same partials."""
    rng = _rng("short-merge")
    for n, k1, k2 in [(64, 3, 10), (130, 4, 32), (65, 2, 1)]:
        base = _short_rows(n, 2 * k1 * 2 * k2, rng).reshape(n, 2 * k1, 2 * k2).astype(dtype)
        a = base[:, ::2, ::2]
        ref = ld_lse_rows(np.ascontiguousarray(a).reshape(n, -1))
        got = lsearray.logsumexp(a, axis=(1, 2))
        assert_no_failures(ulp_failures(got, ref, dtype, label=f"{(n, k1, k2)}"))


def slow_softmax_rows(a):
    """Row softmax exp(a - lse(a)) in long double; nan for rows whose log-sum-exp is not
    finite (a +inf, nan, or all -inf: scipy's rule)."""
    A = np.asarray(a, dtype=np.float64).astype(LD)
    lse = ld_lse_rows(a)[:, None]
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(lse), np.exp(A - lse), LD(np.nan))


def slow_log_softmax_rows(a):
    """Row log_softmax a - lse(a) in long double, the lse with its log1p kept exact (the
    max's own entry is -log1p(t) for a tiny t)."""
    A = np.asarray(a, dtype=np.float64).astype(LD)
    with np.errstate(all="ignore"):
        return A - ld_lse_rows(a)[:, None]


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_softmax_and_logmeanexp(dtype):
    """softmax, log_softmax and logmeanexp take the same partials of short rows."""
    a = _short_rows(300, 10, _rng("short-softmax")).astype(dtype)
    tol = dict(rtol=1e-12, atol=1e-300) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-38)
    with np.errstate(all="ignore"):
        for view in _layouts_2d(a).values():
            np.testing.assert_allclose(lsearray.softmax(view, axis=1),
                                       np.asarray(slow_softmax_rows(a), dtype), equal_nan=True,
                                       **tol)
            np.testing.assert_allclose(lsearray.log_softmax(view, axis=1),
                                       np.asarray(slow_log_softmax_rows(a), dtype),
                                       equal_nan=True, **tol)
            lme = np.asarray(ld_lse_rows(a) - np.log(LD(a.shape[1])), dtype=np.float64)
            np.testing.assert_allclose(lsearray.logmeanexp(view, axis=1), lme.astype(dtype),
                                       equal_nan=True, **tol)


@needs_ld
@pytest.mark.parametrize("n", [10, 1000, 20000], ids=["n=10", "n=1000", "n=20000"])
def test_float32_softmax_rows_within_one_ulp(n):
    """float32 softmax and log_softmax rows (the buffered path, and rows longer than a
    block) within 1 ulp of long double: their exps (degree 4 in the AVX-512 loops) need
    only be exact relative to the sum.  Rows with a dominant max, ties, tiny terms and a
    spread of 60 are included; log_softmax's max entry is -log1p(t) for t down to 1e-9."""
    rng = _rng(f"f32-softmax-{n}")
    rows = [rng.normal(scale=s, size=n) for s in (0.1, 3.0, 20.0)]
    rows.append(np.r_[0.0, rng.normal(-20.0, 1.0, n - 1)])          # one dominant term
    rows.append(np.where(rng.random(n) < 0.3, 2.5, rng.normal(size=n)))  # ties at the max
    a = np.stack(rows).astype(np.float32)
    for tau in (1.0, 0.7):
        with np.errstate(all="ignore"):
            soft = slow_softmax_rows(a.astype(np.float64) / tau)
            logsoft = slow_log_softmax_rows(a.astype(np.float64) / tau)
        failures = ulp_failures(lsearray.softmax(a, axis=1, temperature=tau), soft, np.float32,
                                label=f"softmax tau={tau}")
        failures += ulp_failures(lsearray.log_softmax(a, axis=1, temperature=tau), logsoft,
                                 np.float32, label=f"log_softmax tau={tau}")
        assert_no_failures(failures)


# --------------------------------------------------------------------------------------------
# 3. Column tiles (64 columns x 256 rows)
# --------------------------------------------------------------------------------------------

COL_R = [1, 255, 256, 257, 600]
COL_C = [63, 64, 65, 129]


def _tile_columns(r, c, rng):
    """(r, c): ordinary and hard columns, with the max in a later row tile than the tiny
    terms, and special columns in the first and (when there is one) the third tile."""
    a = rng.normal(scale=3.0, size=(r, c)) + 8.0
    last = r - 1
    for j in range(c):
        kind = j % 16
        if kind in (0, 15):                       # tiny terms, the max in the last row
            a[:, j] = rng.normal(-40.0, 1.0, r)
            a[last, j] = 0.0
        elif kind == 1:                           # tiny terms, the max in the first row
            a[:, j] = rng.normal(-40.0, 1.0, r)
            a[0, j] = 0.0
        elif kind == 2:                           # the max moves up in every row tile
            a[:, j] = np.sort(rng.normal(scale=0.01, size=r))
        elif kind == 4:                           # ties across row tiles
            a[:, j] = rng.normal(-40.0, 1.0, r)
            a[0, j] = a[last, j] = a[r // 2, j] = 1.25
        elif kind == 8:                           # a max in every tile, rising
            a[:, j] = rng.normal(-40.0, 1.0, r)
            a[::256, j] = np.arange(len(a[::256, j])) * 0.5

    def special(col, kind):
        if kind == 3:                             # +inf in the middle: portable fallback
            col[r // 2] = inf
        elif kind == 5:
            col[:] = -inf
        elif kind == 6:
            col[last] = nan
        elif kind == 7:                           # the first row tile all -inf, then finite
            col[: max(1, min(256, r - 1))] = -inf
        elif kind == 9:                           # nan among -inf
            col[:] = -inf
            col[0] = nan
        elif kind == 10:                          # +inf in the last row tile
            col[last] = inf
        elif kind == 11:                          # +inf first, then finite tiles
            col[0] = inf
        elif kind == 12:
            col[0] = inf
            col[last] = -inf
        elif kind == 13:
            col[0] = inf
            col[last] = nan
        elif kind == 14:                          # nan in the first row tile only
            col[0] = nan
            col[1: min(256, r)] = -inf

    for j0 in (0, 128):
        for kind in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14):
            if j0 + kind < c:
                special(a[:, j0 + kind], kind)
    return a


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_tiles_match_reference(dtype):
    failures = []
    for r in COL_R:
        for c in COL_C:
            a = _tile_columns(r, c, _rng(f"cols-{r}-{c}")).astype(dtype)
            ref = ld_lse(a, axis=0)
            big = np.full((r, 2 * c), 5.0, dtype=dtype)
            big[:, ::2] = a
            views = {
                "C": np.ascontiguousarray(a),
                "strided-columns": big[:, ::2],
                "negative-columns": np.ascontiguousarray(a[:, ::-1])[:, ::-1],
                "F": np.asfortranarray(a),
            }
            for name, view in views.items():
                got = lsearray.logsumexp(view, axis=0)
                failures += ulp_failures(got, ref, dtype, label=f"r={r} c={c} {name}")
            # 3-D: outer x rows x columns, the tile loop once per outer index
            a3 = np.stack([a, a[::-1]])
            got = lsearray.logsumexp(a3, axis=1)
            failures += ulp_failures(got, np.stack([ref, ref]), dtype, label=f"r={r} c={c} 3-D")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_tiles_with_temperature_and_weights(dtype):
    failures = []
    for r, c in [(255, 64), (257, 65), (600, 129)]:
        rng = _rng(f"cols-tw-{r}-{c}")
        a = _tile_columns(r, c, rng).astype(dtype)
        for tau in (0.5, 2.0):
            got = lsearray.logsumexp(a, axis=0, temperature=tau)
            failures += ulp_failures(got, ld_lse(a, 0, tau=tau), dtype, label=f"r={r} c={c} tau={tau}")
        b = rng.uniform(0.5, 2.0, size=a.shape)
        b[rng.random(a.shape) < 0.1] = 0.0
        b = b.astype(dtype)
        got = lsearray.logsumexp(a, axis=0, b=b)
        failures += ulp_failures(got, ld_lse(a, 0, b), dtype, label=f"r={r} c={c} b")
    assert_no_failures(failures)


# --------------------------------------------------------------------------------------------
# 4. Rows: 16384-element blocks and the 32-element unrolled loop
# --------------------------------------------------------------------------------------------

ROW_N = [0, 1, 7, 8, 9, 31, 32, 33, 16383, 16384, 16385, 40000]


def _row_variants(n, rng):
    """1-D rows of length n: tiny terms around -40 with a max of 0 at several places, and
    rows whose max rises between blocks."""
    out = {}
    if n == 0:
        return {"empty": np.zeros(0)}
    later = min(n - 1, 16384 + 5 if n > 16384 else n // 2)
    for where, pos in [("first", 0), ("last", n - 1), ("later-block", later),
                       ("block-end", min(n - 1, 16383))]:
        x = rng.normal(-40.0, 1.0, n)
        x[pos] = 0.0
        out[f"max-{where}"] = x
    x = rng.normal(-40.0, 1.0, n)
    x[[0, n // 3, n - 1]] = 0.0
    out["ties"] = x
    out["ascending"] = np.sort(rng.normal(scale=0.01, size=n))
    out["descending"] = np.sort(rng.normal(scale=3.0, size=n))[::-1] + 10.0
    out["offset-plus700"] = rng.normal(size=n) + 700.0
    out["near-underflow"] = -745.0 + rng.uniform(0.0, 20.0, n)
    x = rng.normal(size=n)
    x[n - 1] = inf
    out["posinf-last"] = x
    x = rng.normal(size=n)
    x[0] = nan
    out["nan-first"] = x
    x = rng.normal(size=n)
    x[: max(1, min(n - 1, 16384))] = -inf
    out["neginf-first-block"] = x
    x = np.full(n, -inf)
    x[n - 1] = nan
    out["nan-among-neginf"] = x
    out["all-neginf"] = np.full(n, -inf)
    return out


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_1d_match_reference(dtype):
    failures = []
    for n in ROW_N:
        for name, x in _row_variants(n, _rng(f"rows-{n}")).items():
            x = x.astype(dtype)
            ref = ld_lse_rows(x[None, :])[0]
            big = np.full(2 * n, 9.0, dtype=dtype)
            big[::2] = x
            for layout, view in [("contiguous", x), ("strided", big[::2]),
                                 ("reversed", x[::-1].copy()[::-1])]:
                got = np.asarray(lsearray.logsumexp(view))
                failures += ulp_failures(got, ref, dtype, label=f"n={n} {name} {layout}")
            got = lsearray.logsumexp(np.stack([x, x, x]), axis=1)
            failures += ulp_failures(got, np.full(3, ref), dtype, label=f"n={n} {name} 3 rows")
            if n in (33, 16385):
                got = np.asarray(lsearray.logsumexp(x, temperature=0.5))
                failures += ulp_failures(got, ld_lse_rows(x[None, :], tau=0.5)[0], dtype,
                                         label=f"n={n} {name} tau=0.5")
    assert_no_failures(failures)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a, exact", [
    pytest.param([0.0] + [-40.0] * 8, lambda: mpmath.log1p(8 * mpmath.exp(-40)), id="0-then-8x-40"),
    pytest.param([0.0] * 9 + [-40.0] * 8, lambda: mpmath.log(9 + 8 * mpmath.exp(-40)),
                 id="9x0-then-8x-40"),
    pytest.param([-40.0] * 8 + [0.0], lambda: mpmath.log1p(8 * mpmath.exp(-40)), id="8x-40-then-0"),
    pytest.param([-40.0] * 40 + [0.0], lambda: mpmath.log1p(40 * mpmath.exp(-40)),
                 id="40x-40-then-0"),
])
def test_tiny_terms_next_to_the_max(a, exact, dtype):
    with mpmath.workdps(60):
        exact = exact()
    for x in (np.array(a, dtype=dtype), np.array(a, dtype=dtype)[::-1]):
        got = lsearray.logsumexp(x)
        assert type(got) is np.dtype(dtype).type
        err = ulp_error(got, exact, dtype)
        assert err <= 1.0, f"{got!r} vs {float(exact)!r}: {err:.3g} ulp"
        # the same row as one of many short rows, and as a column
        got = lsearray.logsumexp(np.tile(x, (70, 1)), axis=1)
        assert max(ulp_error(g, exact, dtype) for g in got) <= 1.0
        got = lsearray.logsumexp(np.tile(x[:, None], (1, 70)), axis=0)
        assert max(ulp_error(g, exact, dtype) for g in got) <= 1.0


@pytest.mark.parametrize("n", [3, 40, 20000])
def test_float32_terms_far_below_the_max(n):
    """float32 terms 708 to 1e30 below the max (and -inf) change nothing: the float32
    loops take exp(d) for d < -708 as exp(-708), below what a sum holding the max's 1 can
    see.  The result is the max's own log-sum-exp and the softmax gives them 0."""
    rng = _rng(f"far-below-{n}")
    top = rng.normal(size=3).astype(np.float32)
    far = np.concatenate([-rng.uniform(708.5, 745.0, n), [-1e30, -np.inf]]) + top[0]
    a = rng.permutation(np.concatenate([top, far.astype(np.float32)])).astype(np.float32)
    exact = mp_logsumexp(top)[0]
    for layout, got in [("row", lsearray.logsumexp(a)),
                        ("columns", lsearray.logsumexp(np.stack([a, a], axis=1), axis=0)[1])]:
        assert ulp_error(got, exact, np.float32) <= 1.0, layout
    sm = lsearray.softmax(a)
    assert np.all(sm[np.isin(a, top, invert=True)] == 0.0)
    ref = np.exp(top.astype(np.float64) - float(exact))
    np.testing.assert_allclose(np.sort(sm[np.isin(a, top)]), np.sort(ref), rtol=2e-7)


@pytest.mark.parametrize("tau", [1.0, 0.5, 3.0])
def test_float32_results_with_a_max_of_zero_and_above(tau):
    """float32 log-sum-exps whose max is 0 or a little above, where the float32 loops take
    their coarser exps (LSE_COARSE_FLOAT32): the results, from about 3e-8 to 25, keep their
    1-ulp bound along rows, through threads splitting a long row, as columns, and
    through a strided view's partials."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = _rng(f"coarse-max-{tau}")
    rows = []
    for top in (0.0, 2.0 ** -20, 0.01):
        for low, high in ((-30.0, 0.0), (-40.0, -25.0)):      # log S near 8, and near 1e-6
            x = rng.uniform(low, high, 70000)
            x[rng.integers(x.size)] = 0.0
            rows.append(((x + top) * tau).astype(np.float32))
        # every term at nearly the widest reduced argument of the exp's table (16 ln2
        # steps): a polynomial's error then adds up instead of averaging out
        for k in (40.49, 40.51):
            x = np.r_[0.0, np.full(20000, -k * math.log(2.0) / 16.0)]
            rows.append(((x + top) * tau).astype(np.float32))
    for x in rows:
        exact = mp_logsumexp(x.astype(np.float64), temperature=tau)[0]
        got = {}
        for nt in (1, 2):
            with threadpoolctl.threadpool_limits(nt):
                got[f"row, {nt} threads"] = lsearray.logsumexp(x, temperature=tau)
        got["column"] = lsearray.logsumexp(np.stack([x, x], axis=1), axis=0, temperature=tau)[0]
        got["strided"] = lsearray.logsumexp(np.repeat(x, 2)[::2], temperature=tau)
        for label, value in got.items():
            assert value.dtype == np.float32
            err = ulp_error(value, exact, np.float32)
            assert err <= 1.0, f"max {x.max()!r}, exact {float(exact)!r}, {label}: {err:.2f} ulp"


def test_float32_partials_stay_exact_unless_a_float32_result_is_asked_for():
    """lsecore.reduce_partials keeps float32 terms exact (2^-50) by default, the partials
    being free to end in float64 or a mean; with float32_result=True the coarser exp
    (2^-34) shows.  Every term sits at the table's widest reduced argument, where the
    coarse polynomial's error is largest and the same for all of them."""
    x = np.r_[0.0, np.full(5000, -40.49 * math.log(2.0) / 16.0)].astype(np.float32)
    ref = np.sum(np.exp(x[1:].astype(LD) - LD(0.0)))
    errors = {}
    for flag in (False, True):
        m, w, t, c = lsecore.reduce_partials(x, (0,), float32_result=flag)
        assert (float(m), float(w)) == (0.0, 1.0)
        errors[flag] = float(abs((LD(float(t)) + LD(float(c))) - ref) / ref)
    assert errors[False] < 2.0 ** -46, errors
    assert errors[True] < 2.0 ** -33, errors
    if _kernel.simd() == "avx512":          # the portable loops have only the exact exp
        assert errors[True] > 2.0 ** -42, errors


@pytest.mark.parametrize("n", [10, 100, 1000, 20000])
def test_float32_result_near_zero(n):
    """float32 data whose log-sum-exp is near 0 (the max cancels against log of the sum):
    with float64 sums of accurate terms the float32 result is within 1 ulp.  The float32
    loops' exp (lse512_exp_f32, about 2^-50 relative) is what this needs: an error of
    2^-44 in log(sum) is already ten float32 ulps of a result near 3e-7.
    """
    rng = _rng(f"near-zero-{n}")
    failures = []
    for target in (1e-3, 1e-5, 1e-6, 3e-7):
        x = rng.normal(size=n).astype(np.float32)
        shift = np.float32(float(mp_logsumexp(x)[0]))
        a = (x - shift + np.float32(target)).astype(np.float32)
        exact = mp_logsumexp(a)[0]
        for layout, got in [("row", lsearray.logsumexp(a)),
                            ("column", lsearray.logsumexp(np.stack([a, a], axis=1), axis=0)[0])]:
            err = ulp_error(got, exact, np.float32)
            if err > 1.0:
                failures.append(f"target {target} {layout}: got {got!r}, exact {float(exact)!r}, "
                                f"{err:.1f} ulp")
    assert_no_failures(failures)


# --------------------------------------------------------------------------------------------
# 5. _kernel.normalize: the output pass of softmax and log_softmax
# --------------------------------------------------------------------------------------------

NORM_SHAPES = [(3, 37, 1), (2, 5, 7), (4, 1, 5), (1, 70000, 1), (1, 33000, 3), (2, 9, 66)]


def _views_3d(arr, kind):
    """A view of the values of `arr` (3-D) in the layout `kind`, and the buffer under it
    with a mask of the elements the view covers."""
    n0, n1, n2 = arr.shape
    if kind == "C":
        buf = np.empty_like(arr)
        view = buf
    elif kind == "strided":
        buf = np.empty((2 * n0, 3 * n1, 2 * n2), dtype=arr.dtype)
        view = buf[::2, ::3, ::2]
    elif kind == "negative":
        buf = np.empty((n0, 2 * n1, n2), dtype=arr.dtype)
        view = buf[::-1, ::-2, ::-1]
    elif kind == "transposed":
        buf = np.empty((n2, n1, n0), dtype=arr.dtype)
        view = buf.transpose(2, 1, 0)
    else:
        raise ValueError(kind)
    return buf, view


def _normalize_reference(a, m, s, tau, log_mode):
    """The expected output in long double from z = (a - m) / tau in long double (the
    kernel carries the quotient exactly), and z in float64 for the rounding allowance."""
    with np.errstate(all="ignore"):
        zl = (a.astype(LD) - m[:, None, :].astype(LD)) / LD(tau)
        if log_mode:
            ref = zl - s[:, None, :].astype(LD)
        else:
            ref = np.exp(zl) / s[:, None, :].astype(LD)
            ref = np.where(np.isfinite(m)[:, None, :], ref, LD(np.nan))
    return ref, zl.astype(np.float64)


@needs_ld
@pytest.mark.parametrize("log_mode", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_matches_reference(dtype, log_mode):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    failures = []
    sentinel = -12345.0
    for shape in NORM_SHAPES:
        rng = _rng(f"norm-{shape}")
        n0, n1, n2 = shape
        values = (rng.normal(scale=4.0, size=shape)).astype(dtype)
        values.flat[rng.choice(values.size, size=min(5, values.size), replace=False)] = -inf
        for tau in (1.0, 0.5):
            inv_tau = 1.0 / tau
            a64 = values.astype(np.float64)
            m = np.max(a64, axis=1)
            if n0 * n2 >= 3:                   # an infinite max: softmax gives nan there
                m[0, 0] = inf
                m[-1, -1] = -inf
            with np.errstate(all="ignore"):
                ms = np.where(np.isfinite(m), m, 0.0)
                total = np.exp(((a64 - ms[:, None, :]) * inv_tau).astype(LD)).sum(axis=1)
                s = np.log(total).astype(np.float64) if log_mode else total.astype(np.float64)
            ref, z = _normalize_reference(values, m, s, tau, log_mode)
            for akind in ("C", "strided", "negative", "transposed"):
                abuf, a = _views_3d(values, akind)
                a[...] = values
                for okind in ("C", "strided", "negative", "transposed"):
                    obuf, out = _views_3d(values, okind)
                    obuf.fill(sentinel)
                    covered = np.zeros(obuf.shape, dtype=bool)
                    _views_3d_mark(covered, okind)
                    label = f"{shape} tau={tau} a={akind} out={okind}"
                    with threadpoolctl.threadpool_limits(2):
                        _kernel.normalize(a, out, m, s, tau, log_mode)
                    if not np.all(obuf[~covered] == sentinel):
                        failures.append(f"{label}: wrote outside out")
                    failures += _normalize_failures(out, ref, z, dtype, log_mode, label)
                    if len(failures) > 40:
                        assert_no_failures(failures)
    assert_no_failures(failures)


def _views_3d_mark(covered, kind):
    """Set the elements of `covered` (a buffer of _views_3d) that the view of `kind` covers."""
    if kind == "C" or kind == "transposed":
        covered[...] = True
    elif kind == "strided":
        covered[::2, ::3, ::2] = True
    elif kind == "negative":
        covered[::-1, ::-2, ::-1] = True


def _normalize_failures(out, ref, z, dtype, log_mode, label):
    """out within 2 float64 ulps of the exact value (plus, in log mode, the rounding of z,
    which may or may not be fused with the subtraction), then rounded once to dtype."""
    g = np.asarray(out).astype(LD)
    bad = np.isnan(ref) != np.isnan(g)
    both = ~np.isnan(ref) & ~np.isnan(g)
    bad |= both & np.isinf(ref) & (g != ref)
    fin = both & np.isfinite(ref)
    with np.errstate(all="ignore"):
        tol = 2.0 * np.spacing(np.abs(ref.astype(np.float64))).astype(LD)
        if log_mode:
            tol += np.spacing(np.abs(z)).astype(LD)
        else:
            tol += LD(2.0 ** -1020)             # exp below e^-708 may be flushed to 0
        if dtype == np.float32:
            tol += np.spacing(np.abs(ref.astype(np.float32))).astype(LD)
        bad |= fin & (np.abs(g - ref) > tol)
    msgs = []
    for idx in np.argwhere(bad)[:5]:
        idx = tuple(idx)
        msgs.append(f"{label} at {idx}: got {g[idx]!r}, expected {ref[idx]!r}")
    return msgs


@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_rejects_mismatched_shapes(dtype):
    a = np.zeros((2, 5, 7), dtype=dtype)
    m = np.zeros((2, 7))
    s = np.ones((2, 7))
    for bad_out in (np.zeros((2, 5, 6), dtype=dtype), np.zeros((2, 4, 7), dtype=dtype),
                    np.zeros((3, 5, 7), dtype=dtype)):
        bad_out.fill(7.0)
        with pytest.raises(ValueError, match="out"):
            _kernel.normalize(a, bad_out, m, s, 1.0, False)
        assert np.all(bad_out == 7.0)
    out = np.full((2, 5, 7), 7.0, dtype=dtype)
    for mm, ss in [(np.zeros((2, 6)), s), (m, np.ones((3, 7))), (np.zeros((1, 7)), s)]:
        with pytest.raises(ValueError, match="m and s"):
            _kernel.normalize(a, out, mm, ss, 1.0, True)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 0, 3), (2, 3, 0)])
def test_normalize_empty(shape):
    a = np.zeros(shape)
    out = np.zeros(shape)
    m = np.zeros((shape[0], shape[2]))
    _kernel.normalize(a, out, m, m.copy(), 1.0, False)


def test_normalize_threads_give_the_same_output():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = _rng("norm-threads")
    for shape in [(1, 200_000, 1), (1, 70_000, 2), (300, 300, 1)]:
        a = rng.normal(size=shape)
        m = a.max(axis=1)
        s = np.exp(a - m[:, None, :]).sum(axis=1)
        outs = []
        for threads in (1, 2):
            for log_mode in (False, True):
                out = np.empty_like(a)
                with threadpoolctl.threadpool_limits(threads):
                    _kernel.normalize(a, out, m, np.log(s) if log_mode else s, 1.0, log_mode)
                outs.append(out)
        np.testing.assert_array_equal(outs[0], outs[2])
        np.testing.assert_array_equal(outs[1], outs[3])


# --------------------------------------------------------------------------------------------
# 6. _kernel.finalize
# --------------------------------------------------------------------------------------------

def _partials(a, axis):
    m, w, t, c = lsecore.reduce_partials(np.asarray(a), (axis,))
    return tuple(np.ascontiguousarray(p, dtype=np.float64).ravel() for p in (m, w, t, c))


@needs_ld
def test_finalize_optional_outputs_give_the_same_out():
    a = _short_rows(100, 12, _rng("fin"))
    m, w, t, c = _partials(a, 1)
    n = m.size
    full, sign, log_sum = np.empty(n), np.empty(n), np.empty(n)
    _kernel.finalize(m, w, t, c, 1.0, full, sign, log_sum)
    for kwargs in ({}, {"sign": None}, {"log_sum": None}, {"sign": None, "log_sum": None},
                   {"divisor": None}, {"sign": np.empty(n)}):
        out = np.empty(n)
        _kernel.finalize(m, w, t, c, 1.0, out, **kwargs)
        np.testing.assert_array_equal(out, full, err_msg=str(kwargs))
    only_log = np.empty(n)
    _kernel.finalize(m, w, t, c, 1.0, np.empty(n), log_sum=only_log)
    np.testing.assert_array_equal(only_log, log_sum)
    # against the references: the value, its sign and log|S|
    assert_no_failures(ulp_failures(full, ld_lse_rows(a), np.float64, label="finalize"))
    expected_sign = np.where(np.isnan(full), np.nan, np.where(full == -np.inf, 0.0, 1.0))
    np.testing.assert_array_equal(sign, expected_sign)
    # divisor: the mean, by the count
    out = np.empty(n)
    _kernel.finalize(m, w, t, c, 1.0, out, divisor=np.full(n, 12.0))
    mean_ref = np.asarray(ld_lse_rows(a) - np.log(LD(12)), dtype=LD)
    assert_no_failures(ulp_failures(out, mean_ref, np.float64, max_ulp=1.5, label="divisor"))


def _finalize_grid():
    """Partials (m, w, t, c, divisor) whose sums cross every branch of the finalizer: sums
    near 1 (1 + u with u down to 1e-300, either side), at the edges 0.5, 0.75, 1.5 and 2
    and an ulp either side, across the exponent range, subnormal, and with divisors."""
    rng = _rng("finalize-grid")
    sums = [1.0, 0.5, 0.75, 1.5, 2.0, 3.0, 1e-300, 5e-324, 1e-310, 1e300, 1.7e308]
    sums += [np.nextafter(x, d) for x in (0.5, 0.75, 1.5, 2.0) for d in (0.0, 3.0)]
    sums += list(10.0 ** rng.uniform(-300, 300, 60)) + list(rng.uniform(0.4, 2.2, 60))
    rows = []
    for s in sums:
        rows.append((0.0, s, 0.0))                            # no maximal term
        if s < 1e300:
            rows.append((1.0, s, 0.0))                        # w = 1: the sum is 1 + s
            rows.append((1.0, s, -s * 2.0 ** -60))
            rows.append((3.0, s, 0.0))
    for k in range(1, 64):
        u = 2.0 ** -k * rng.uniform(1.0, 2.0)
        rows.append((1.0, u, 0.0))
        rows.append((1.0, -u, 0.0))                           # signed weights: 1 - u
        rows.append((0.5, 0.5 + u, u * 2.0 ** -58))
    rows += [(1.0, 1e-300, 0.0), (1.0, -1e-300, 0.0), (2.0, -1.0, 1e-30)]
    w, t, c = (np.array([r[i] for r in rows]) for i in range(3))
    m = rng.choice([0.0, -1.0, 3.5, 1e5, -700.0], size=w.size)
    divisor = rng.choice([1.0, 3.0, 12.0, 1e6], size=w.size)
    return m, w, t, c, divisor


@pytest.mark.parametrize("tau", [1.0, 0.3, 7.0])
@pytest.mark.parametrize("with_divisor", [False, True], ids=["sum", "mean"])
def test_finalize_against_mpmath_across_branches(tau, with_divisor):
    """out = m + tau log S and log_sum = log S within 1 ulp of mpmath (log S within 1 ulp of
    itself even where it is 1e-300), on both the vector and the portable finalizer."""
    m, w, t, c, divisor = _finalize_grid()
    n = m.size
    out, sign, log_sum = np.empty(n), np.empty(n), np.empty(n)
    _kernel.finalize(m, w, t, c, tau, out, sign, log_sum, divisor if with_divisor else None)
    failures = []
    with mpmath.workdps(40):
        for j in range(n):
            # S exactly as a fraction, then log1p(S - 1) near 1 (1 + 1e-300 has no
            # 40-digit float)
            total = Fraction(w[j]) + Fraction(t[j]) + Fraction(c[j])
            if with_divisor:
                total /= Fraction(divisor[j])
                if abs(total) < Fraction(np.finfo(np.float64).smallest_normal):
                    continue                                  # S / d is subnormal
            if total == 0:
                exp_log, exp_out, exp_sign = -mpmath.inf, -mpmath.inf, 0.0
            else:
                x = abs(total) - 1
                exp_log = (mpmath.log1p(mpmath.mpf(x.numerator) / x.denominator) if abs(x) < 0.5
                           else mpmath.log(mpmath.mpf(abs(total).numerator) / abs(total).denominator))
                exp_out = mpmath.mpf(m[j]) + mpmath.mpf(tau) * exp_log
                exp_sign = 1.0 if total > 0 else -1.0
            e_log = ulp_error(log_sum[j], exp_log, np.float64)
            # where m and tau log S cancel, the error is bounded by ulps of the larger
            scale = max(abs(exp_out), abs(mpmath.mpf(m[j])), abs(tau * exp_log))
            e_out = (ulp_error(out[j], exp_out, np.float64) if abs(exp_out) >= scale / 4
                     else abs(out[j] - exp_out) / np.spacing(float(scale)))
            if e_log > 1.0 or e_out > 1.0 or sign[j] != exp_sign:
                failures.append(f"w={w[j]!r} t={t[j]!r} c={c[j]!r} d={divisor[j]!r} m={m[j]!r}: "
                                f"log_sum {e_log:.3g} ulp, out {e_out:.3g} ulp, sign {sign[j]}")
    assert_no_failures(failures)


def test_finalize_closed_forms():
    m = np.array([0.0, -np.inf, 2.0, 0.0])
    w = np.array([1.0, 0.0, 2.0, 1.0])
    t = np.array([math.exp(-50.0), 0.0, 0.0, np.nan])
    c = np.zeros(4)
    out, sign, log_sum = np.empty(4), np.empty(4), np.empty(4)
    _kernel.finalize(m, w, t, c, 1.0, out, sign, log_sum)
    assert out[0] == math.log1p(math.exp(-50.0))
    assert out[1] == -np.inf and sign[1] == 0.0
    assert out[2] == float(mpmath.mpf(2) + mpmath.log(2)) and sign[2] == 1.0
    assert np.isnan(out[3]) and np.isnan(sign[3])
    np.testing.assert_array_equal(log_sum[[0, 2]], [math.log1p(math.exp(-50.0)), math.log(2.0)])
    _kernel.finalize(*(np.empty(0) for _ in range(4)), 1.0, np.empty(0))


@pytest.mark.parametrize("name", ["w", "t", "c", "out", "sign", "log_sum", "divisor"])
@pytest.mark.parametrize("length", [4, 6])
def test_finalize_checks_lengths(name, length):
    arrays = {k: np.zeros(5) for k in ("m", "w", "t", "c", "out", "sign", "log_sum", "divisor")}
    arrays["w"] += 1.0
    arrays["divisor"] += 1.0
    arrays[name] = np.zeros(length)
    before = {k: v.copy() for k, v in arrays.items()}
    with pytest.raises(ValueError, match=rf"^{name} must have the length of m \(5\), got {length}"):
        _kernel.finalize(arrays["m"], arrays["w"], arrays["t"], arrays["c"], 1.0, arrays["out"],
                         arrays["sign"], arrays["log_sum"], arrays["divisor"])
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was written")


@pytest.mark.parametrize("call", [
    "k.finalize(z, z, z, z, 1.0, None)",
    "k.finalize(z, None, z, z, 1.0, z.copy())",
    "k.finalize(z, z, None, z, 1.0, z.copy())",
    "k.finalize(z, z, z, None, 1.0, z.copy())",
])
def test_finalize_rejects_none_for_required_arrays_in_subprocess(call):
    """None for an array that is not optional is an error, not a crash (run apart: a
    crash would take the test session with it)."""
    code = ("import numpy as np, lsecore._kernel as k\n"
            "z = np.zeros(3)\n"
            "try:\n"
            f"    {call}\n"
            "except (TypeError, ValueError):\n"
            "    print('raised')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "raised", (
        f"{call}: rc {out.returncode}, stdout {out.stdout!r}, stderr {out.stderr[-500:]!r}")


# --------------------------------------------------------------------------------------------
# 7. Threads: short rows and column tiles shared out between threads
# --------------------------------------------------------------------------------------------

@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["short-rows-C", "short-rows-strided", "columns-C",
                                  "columns-strided"])
def test_threads_give_the_same_result(case, dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = _rng(f"threads-{case}")
    if case.startswith("short-rows"):
        a = _short_rows(200_000, 10, rng).astype(dtype)
        axis = 1
        view = a if case.endswith("C") else np.repeat(a, 2, axis=1)[:, ::2]
    else:
        a = _tile_columns(1500, 700, rng).astype(dtype)
        axis = 0
        view = a if case.endswith("C") else np.repeat(a, 2, axis=1)[:, ::2]
    ref = ld_lse(a, axis)
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            assert lsecore.max_threads() == threads
            got = lsearray.logsumexp(view, axis=axis)
        assert_no_failures(ulp_failures(got, ref, dtype, label=f"{threads} threads"))
        results.append(got)
    # whole output tiles are shared out: each output is computed the same way
    np.testing.assert_array_equal(results[0], results[1])
