"""The softmax output pass, `_kernel.normalize`, against a long-double reference."""

import numpy as np
import pytest

from lsecore import _kernel
from kernel_support import DTYPES, LD, assert_no_failures, inf, kernel_rng, needs_ld
from reference import ld_normalize


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


@needs_ld
@pytest.mark.parametrize("log_mode", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_matches_reference(dtype, log_mode):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    failures = []
    sentinel = -12345.0
    for shape in NORM_SHAPES:
        rng = kernel_rng(f"norm-{shape}")
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
            ref, z = ld_normalize(values, m, s, tau, log_mode)
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
    rng = kernel_rng("norm-threads")
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
