"""`_kernel.finalize`: from the partials to the value, its sign and log|S|, against mpmath."""

import math
import subprocess
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import lsecore
from lsecore import _kernel
from kernel_support import LD, ROOT, assert_no_failures, kernel_rng, needs_ld, short_rows, ulp_failures
from reference import ld_lse_rows, ulp_error


def _partials(a, axis):
    m, w, t, c = lsecore.reduce_partials(np.asarray(a), (axis,))
    return tuple(np.ascontiguousarray(p, dtype=np.float64).ravel() for p in (m, w, t, c))


@needs_ld
def test_finalize_optional_outputs_give_the_same_out():
    a = short_rows(100, 12, kernel_rng("fin"))
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
    rng = kernel_rng("finalize-grid")
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
