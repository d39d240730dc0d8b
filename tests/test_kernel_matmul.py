"""`_kernel.exp_shifted` and `_kernel.matmul_finish` (logmatmulexp's loops) against mpmath and slow NumPy."""

import math

import mpmath
import numpy as np
import pytest

from lsecore import _kernel
from kernel_support import DTYPES, kernel_rng
from reference import ulp_error

inf = math.inf
nan = math.nan


def _mp_exp_shifted(x, shift):
    """exp(x - shift) of float64 numbers, exactly rounded by mpmath."""
    with mpmath.workdps(60):
        return mpmath.exp(mpmath.mpf(float(x)) - mpmath.mpf(float(shift)))


def _assert_exps(got, x, shift, max_ulp=1.0):
    """``got`` within ``max_ulp`` of exp(x - shift) wherever it is normal; exactly 0, inf and
    nan where the exact value is (or rounds to) them."""
    got, x, shift = np.broadcast_arrays(got, x, shift)
    worst = 0.0
    for g, xv, sv in zip(got.ravel().tolist(), x.ravel().tolist(), shift.ravel().tolist()):
        d = float(xv) - float(sv)
        if math.isnan(xv):
            assert math.isnan(g), (xv, sv, g)
        elif xv == inf:
            assert g == inf, (xv, sv, g)
        elif d < -745.2:
            assert g == 0.0, (xv, sv, g)
        else:
            err = ulp_error(g, _mp_exp_shifted(xv, sv), np.float64)
            assert err <= max_ulp, (xv, sv, g, err)
            worst = max(worst, err)
    return worst


def _shifts(x, axis):
    m = np.max(x, axis=axis, keepdims=True).astype(np.float64)
    return np.where(np.isfinite(m), np.round(m), 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [1, 2], ids=["columns", "rows"])
def test_exp_shifted_against_mpmath(dtype, axis):
    rng = kernel_rng(f"exp_shifted{axis}")
    x = (rng.standard_normal((2, 7, 21)) * 200).astype(dtype)
    x[0, 0, :5] = [-inf, nan, -1e30, 0.0, 1e-300]
    shift = _shifts(x, axis)
    out = np.full(x.shape, -1.0)
    _kernel.exp_shifted(x, np.broadcast_to(shift, x.shape), out)
    _assert_exps(out, x.astype(np.float64), shift)


def test_exp_shifted_carries_the_rounding_of_the_difference():
    # x with all its bits below 1, the shift hundreds: x - shift rounds by up to 2^-45, which
    # exp's argument would otherwise lose (hundreds of ulp of the exp)
    rng = kernel_rng("exp_shifted_carry")
    x = rng.uniform(-1.0, 1.0, (1, 4, 64))
    shift = np.full((1, 4, 1), 600.0)
    shift[0, 1] = -700.0                        # d near 700: exp near overflow
    shift[0, 2] = 700.0                         # d near -700: exp near underflow
    out = np.empty(x.shape)
    _kernel.exp_shifted(x, np.broadcast_to(shift, x.shape), out)
    assert _assert_exps(out, x, shift) <= 1.0
    rounded = np.exp(x - shift)
    assert max(ulp_error(r, _mp_exp_shifted(a, s), np.float64)
               for r, a, s in zip(rounded.ravel(), x.ravel(), np.broadcast_to(shift, x.shape).ravel())) > 8


def test_exp_shifted_special_values():
    x = np.array([[[-inf, inf, nan, 800.0, 709.5, -800.0, -745.0, -720.0, 0.5, -0.0]]])
    shift = np.zeros_like(x)
    out = np.empty(x.shape)
    _kernel.exp_shifted(x, shift, out)
    got = out.ravel().tolist()
    # beyond 709 the exp is +inf: only rows whose max is not finite (shift 0) reach there
    assert got[:5] == [0.0, inf, got[2], inf, inf] and math.isnan(got[2])
    assert got[5] == 0.0
    _assert_exps(out[..., 6:], x[..., 6:], shift[..., 6:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_shifted_strided_and_transposed(dtype):
    rng = kernel_rng("exp_shifted_strides")
    base = (rng.standard_normal((3, 40, 30)) * 50).astype(dtype)
    for x in (base[:, ::2, ::3], base.transpose(0, 2, 1), base[:, ::-1, 1:]):
        for axis in (1, 2):
            shift = np.broadcast_to(_shifts(x, axis), x.shape)
            out = np.empty(x.shape[::-1]).transpose(2, 1, 0)   # strided too
            _kernel.exp_shifted(x, shift, out)
            # the vector loops take contiguous rows, the others these: both within an ulp
            _assert_exps(out, x.astype(np.float64), shift)


def test_exp_shifted_checks_shapes():
    x = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="shift"):
        _kernel.exp_shifted(x, np.zeros((1, 2, 1)), np.empty((1, 2, 3)))
    with pytest.raises(ValueError, match="out"):
        _kernel.exp_shifted(x, np.zeros((1, 2, 3)), np.empty((1, 3, 2)))
    _kernel.exp_shifted(np.zeros((0, 2, 3)), np.zeros((0, 2, 3)), np.empty((0, 2, 3)))


def _mp_log(p):
    """log p of float64 numbers, correctly rounded by mpmath (IEEE's -inf, inf and nan)."""
    out = np.empty(p.shape)
    for idx, v in np.ndenumerate(p):
        if v > 0 and math.isfinite(v):
            with mpmath.workdps(60):
                out[idx] = float(mpmath.log(mpmath.mpf(float(v))))
        else:
            out[idx] = -inf if v == 0 else (inf if v == inf else nan)
    return out


def _slow_finish(log_p, ma, mb, sa, sb, gap, log_tiny):
    """The result and the flags from the logs, elementwise in NumPy: log_p + (sa + sb),
    flagged where log_p < max(-gap max(|r|, 1), -log_tiny) or either is nan, and, for rows or
    columns whose max is not finite, exactly where ma + mb is +inf."""
    with np.errstate(all="ignore"):
        r = log_p + (sa[:, :, None] + sb[:, None, :])
        threshold = np.maximum(np.maximum(np.abs(r), 1.0) * -gap, -log_tiny)
        bad = ~(log_p >= threshold)
        special = ~(np.isfinite(ma)[:, :, None] & np.isfinite(mb)[:, None, :])
        bad = np.where(special, ma[:, :, None] + mb[:, None, :] == inf, bad)
    return r, bad


def _finish_case():
    rng = kernel_rng("matmul_finish")
    nb, n, m = 2, 9, 13
    ma = rng.standard_normal((nb, n)) * 300
    mb = rng.standard_normal((nb, m)) * 300
    ma[0, :4] = [inf, -inf, nan, 1e300]
    mb[0, :4] = [inf, -inf, nan, -1e300]
    sa = np.where(np.isfinite(ma), np.round(ma), 0.0)
    sb = np.where(np.isfinite(mb), np.round(mb), 0.0)
    p = np.exp(rng.standard_normal((nb, n, m)) * 5)
    p[1] = np.exp(rng.uniform(-740, 5, (n, m)))  # some far below -gap |r| and -log_tiny
    p[0, 5, :5] = [0.0, inf, nan, 1e-310, 5e-324]
    return p, ma, mb, sa, sb


def _assert_results(out, ref, log_p):
    """``out`` equal to ``ref`` where it is not finite, else within an ulp of the log: the
    kernel's log and the correctly rounded one may differ by that much."""
    ref = ref.astype(out.dtype)                 # which may overflow
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(out[~finite], ref[~finite])
    unit = np.maximum(np.spacing(np.abs(log_p[finite]).astype(out.dtype)),
                      np.spacing(np.abs(ref[finite]).astype(out.dtype)))
    assert np.all(np.abs(out[finite] - ref[finite]) <= unit)


def test_matmul_finish_logs_against_mpmath():
    # no shifts: the results are the logs themselves
    rng = kernel_rng("matmul_finish_log")
    p = np.concatenate([np.exp(rng.uniform(-745, 709, 3000)), rng.uniform(0.5, 2.0, 3000),
                        2.0 ** rng.integers(-1074, 1024, 200).astype(np.float64),
                        [5e-324, 1e-310, np.nextafter(1.0, 0), 1.0, np.nextafter(1.0, 2),
                         1.7976931348623157e308]]).reshape(1, 1, -1)
    zeros_n, zeros_m = np.zeros((1, 1)), np.zeros((1, p.shape[2]))
    out = np.empty(p.shape)
    _kernel.matmul_finish(p, zeros_n, zeros_m, zeros_n, zeros_m, np.empty(p.shape, np.uint8), out,
                          2.0, 600.0)
    with mpmath.workdps(40):
        exact = [mpmath.log(mpmath.mpf(float(v))) for v in p.ravel()]
    assert max(ulp_error(g, e, np.float64) for g, e in zip(out.ravel(), exact)) < 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_finish_against_numpy(dtype):
    p, ma, mb, sa, sb = _finish_case()
    gap, log_tiny = 2.0, 600.0
    log_p = _mp_log(p)
    ref, ref_bad = _slow_finish(log_p, ma, mb, sa, sb, gap, log_tiny)
    assert ref_bad.any() and not ref_bad.all()
    out = np.empty(p.shape, dtype=dtype)
    bad = np.empty(p.shape, dtype=np.uint8)
    flagged = _kernel.matmul_finish(p, ma, mb, sa, sb, bad, out, gap, log_tiny)
    np.testing.assert_array_equal(bad.astype(bool), ref_bad)
    assert flagged == ref_bad.sum()
    with np.errstate(over="ignore"):            # 1e300 + 1e300 is inf in float32 as well
        _assert_results(out, ref, log_p)


def test_matmul_finish_in_place_and_strided():
    p, ma, mb, sa, sb = _finish_case()
    log_p = _mp_log(p)
    ref, ref_bad = _slow_finish(log_p, ma, mb, sa, sb, 2.0, 600.0)
    bad = np.empty(p.shape, dtype=np.uint8)
    # a tile of a larger result, written in place; maxima and shifts strided
    big = np.zeros((2, 20, 30))
    tile = big[:, 3:12, 5:18]
    tile[...] = p
    strided = [np.repeat(v, 2, axis=1)[:, ::2] for v in (ma, mb, sa, sb)]
    _kernel.matmul_finish(tile, *strided, bad, tile, 2.0, 600.0)
    _assert_results(tile, ref, log_p)
    np.testing.assert_array_equal(bad.astype(bool), ref_bad)
    assert not big[:, :3].any() and not big[:, :, 18:].any()


def test_matmul_finish_checks_shapes():
    log_p = np.zeros((1, 2, 3))
    bad = np.empty((1, 2, 3), dtype=np.uint8)
    rows, cols = np.zeros((1, 2)), np.zeros((1, 3))
    with pytest.raises(ValueError, match="mb"):
        _kernel.matmul_finish(log_p, rows, rows, rows, cols, bad, log_p, 2.0, 600.0)
    with pytest.raises(ValueError, match="out"):
        _kernel.matmul_finish(log_p, rows, cols, rows, cols, bad, np.empty((1, 3, 2)), 2.0, 600.0)
    empty = np.zeros((1, 0, 3))
    assert _kernel.matmul_finish(empty, np.zeros((1, 0)), cols, np.zeros((1, 0)), cols,
                                 np.empty((1, 0, 3), dtype=np.uint8), empty, 2.0, 600.0) == 0


def test_threads_give_the_same_loops():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = kernel_rng("matmul_threads")
    x = rng.standard_normal((2, 300, 400)) * 100         # above the kernel's one-thread size
    x[0, 7, :9] = [-inf, inf, nan, 800.0, -800.0, 0.0, 1e-300, -1e30, 709.5]
    shift = np.broadcast_to(_shifts(x, 2), x.shape)
    ma, mb = x[:, :, 0].copy(), x[:, 0, :].copy()
    ma[1, 3], mb[1, 5] = inf, -inf
    sa, sb = np.where(np.isfinite(ma), np.round(ma), 0.0), np.where(np.isfinite(mb), np.round(mb), 0.0)
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            exps = np.empty(x.shape)
            _kernel.exp_shifted(x, shift, exps)
            out, bad = np.empty(x.shape), np.empty(x.shape, dtype=np.uint8)
            flagged = _kernel.matmul_finish(exps, ma, mb, sa, sb, bad, out, 2.0, 600.0)
        assert flagged == bad.sum() > 0
        results.append((exps, out, bad))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
