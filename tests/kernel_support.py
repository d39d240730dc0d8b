"""Shared pieces of the kernel path tests: which loops run here, ulp checks, short-row and column-tile inputs."""

import math
import os
import platform

import numpy as np
import pytest

from awkward_arrays import seed_for
from reference import LD

__all__ = [
    "CPU_AVX512", "DTYPES", "EXTENDED", "LD", "ROOT", "TINY_RESULT", "TINY_RESULT_ULP", "assert_no_failures",
    "expected_simd", "inf", "kernel_rng", "layouts_2d", "nan", "needs_ld", "short_rows", "tile_columns",
    "ulp_failures", "well_conditioned",
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXTENDED = np.finfo(LD).eps < 1e-18
needs_ld = pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision np.longdouble oracle")

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
inf = math.inf
nan = math.nan


def _cpu_has_avx512():
    """Whether the CPU has AVX-512 F, DQ, BW and VL (what the kernel asks for); None where unknown."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= set(line.split(":", 1)[1].split())
    return None


CPU_AVX512 = _cpu_has_avx512()


def expected_simd(env):
    """What simd() must report in a process started with `env`; None where unknown."""
    if env.get("LSECORE_SIMD") == "generic":
        return "generic"
    if CPU_AVX512 is None:
        return None
    return "avx512" if CPU_AVX512 else "generic"


def kernel_rng(tag):
    return np.random.default_rng(seed_for(tag))


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


def short_rows(n, k, rng):
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


def layouts_2d(a):
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


def tile_columns(r, c, rng):
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
