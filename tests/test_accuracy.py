"""Worst-case error of logsumexp against an mpmath reference on hard inputs (float64 and float32).

Two measures are used:

* ulp error (positive weights): |computed - exact| / spacing(exact rounded to the dtype).
  Must be <= 1.
* conditioned error (signed weights): with S = sum(b * exp(a/tau)) and
  kappa = sum|b * exp(a/tau)| / |S| (the condition number of the sum), a backward-stable
  algorithm errs in log|S| by about eps * kappa, hence in the result tau*log|S| + ... by about
  tau * eps * kappa. We measure
        |computed - exact| / (spacing(exact rounded to the dtype) + tau * eps * kappa)
  with eps = finfo(dtype).eps, i.e. the error in units of "one ulp of the result plus what the
  cancellation in the sum forgives". Must be <= 1.
"""

import numpy as np
import pytest

import lsearray
from awkward_arrays import seed_for
from reference import mp_logsumexp, ulp_error

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def _rng(tag):
    return np.random.default_rng(seed_for(tag))


def _normal(tag, n, scale=1.0, loc=0.0):
    return _rng(tag).normal(loc=loc, scale=scale, size=n)


# id -> builder returning (a, b, temperature); a and b in float64, cast to the tested dtype later
POSITIVE_CASES = {
    "dominant-0-50": lambda: (np.array([0.0, -50.0]), None, 1.0),
    "dominant-minus50-0": lambda: (np.array([-50.0, 0.0]), None, 1.0),
    "dominant-0-30-40": lambda: (np.array([0.0, -30.0, -40.0]), None, 1.0),
    "dominant-0-20": lambda: (np.array([0.0, -20.0]), None, 1.0),
    "ties-7": lambda: (np.full(7, 3.5), None, 1.0),
    "ties-at-max": lambda: (np.array([0.0, -1.0, 0.0, -2.0, 0.0, -30.0]), None, 1.0),
    "ties-at-max-shuffled": lambda: (_rng("tm").permutation(np.r_[np.zeros(5), _normal("tm", 995) - 4]),
                                     None, 1.0),
    "tiny-terms-1e5-around-minus40": lambda: (np.r_[0.0, _normal("tiny", 100_000, 1.0, -40.0)], None, 1.0),
    "tiny-terms-1e3-around-minus40": lambda: (np.r_[_normal("tiny3", 1000, 1.0, -40.0), 0.0], None, 1.0),
    "near-underflow-minus745": lambda: (-745.0 + _rng("uf").uniform(0.0, 20.0, 1000), None, 1.0),
    "offset-plus700": lambda: (_normal("o1", 1000) + 700.0, None, 1.0),
    "offset-minus700": lambda: (_normal("o2", 1000) - 700.0, None, 1.0),
    "offset-plus1e4": lambda: (_normal("o3", 1000) + 1e4, None, 1.0),
    "offset-minus1e4": lambda: (_normal("o4", 1000) - 1e4, None, 1.0),
    "normal-10": lambda: (_normal("n10", 10), None, 1.0),
    "normal-100": lambda: (_normal("n100", 100), None, 1.0),
    "normal-1000": lambda: (_normal("n1000", 1000), None, 1.0),
    "normal-10000": lambda: (_normal("n10000", 10_000), None, 1.0),
    "normal-100000": lambda: (_normal("n100000", 100_000), None, 1.0),
    "normal-wide-10000": lambda: (_normal("nw", 10_000, scale=30.0), None, 1.0),
    "sorted-ascending": lambda: (np.sort(_normal("asc", 10_000, scale=3.0)), None, 1.0),
    "sorted-descending": lambda: (np.sort(_normal("desc", 10_000, scale=3.0))[::-1].copy(), None, 1.0),
    "zeros-1e4": lambda: (np.zeros(10_000), None, 1.0),
    # longer than one kernel block, so the running max moves up between blocks
    "sorted-ascending-1e5-slow": lambda: (np.sort(_normal("asc5", 100_000, scale=0.01)), None, 1.0),
    "dominant-last-after-6e4": lambda: (np.r_[_normal("late", 60_000, 1.0, -40.0), 0.0], None, 1.0),
    "weights-positive": lambda: (_normal("wp", 1000), _rng("wpb").uniform(0.0, 2.0, 1000), 1.0),
    "weights-positive-dominant": lambda: (np.array([0.0, -50.0, -45.0]), np.array([0.25, 3.0, 7.0]), 1.0),
    "weights-positive-ties": lambda: (np.zeros(9), np.arange(1.0, 10.0), 1.0),
    "tau-0.5": lambda: (_normal("t1", 1000), None, 0.5),
    "tau-2": lambda: (_normal("t2", 1000), None, 2.0),
    "tau-3": lambda: (_normal("t3", 1000), None, 3.0),
    "tau-0.1": lambda: (_normal("t4", 1000), None, 0.1),
    "tau-0.5-dominant": lambda: (np.array([0.0, -25.0]), None, 0.5),
    "tau-3-offset-minus700": lambda: (_normal("t5", 1000) - 700.0, None, 3.0),
    "tau-2-weights": lambda: (_normal("t6", 1000), _rng("t6b").uniform(0.0, 2.0, 1000), 2.0),
}

SIGNED_CASES = {
    "signed-100": lambda: (_normal("s1", 100), _rng("s1b").uniform(-1.0, 1.0, 100), 1.0),
    "signed-1000": lambda: (_normal("s2", 1000), _rng("s2b").uniform(-1.0, 1.0, 1000), 1.0),
    "signed-mostly-positive": lambda: (_normal("s3", 1000), _rng("s3b").uniform(-0.3, 1.0, 1000), 1.0),
    "signed-max-negative": lambda: (np.array([2.0, 1.0, 0.5]), np.array([-1.0, 1.0, 1.0]), 1.0),
    "signed-small-cancellation": lambda: (np.array([1.0, 1.0 - 1e-6]), np.array([1.0, -1.0]), 1.0),
    "signed-offset-plus700": lambda: (_normal("s4", 1000) + 700.0, _rng("s4b").uniform(-1.0, 1.0, 1000), 1.0),
    "signed-tau-2": lambda: (_normal("s5", 1000), _rng("s5b").uniform(-1.0, 1.0, 1000), 2.0),
}


def _cast(a, b, dtype):
    a = np.asarray(a, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    return a, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(POSITIVE_CASES))
def test_ulp_error_positive_weights(case, dtype):
    a, b, tau = POSITIVE_CASES[case]()
    a, b = _cast(a, b, dtype)
    exact, sign, _ = mp_logsumexp(a, b, tau)
    assert sign == 1
    got = lsearray.logsumexp(a, b=b, temperature=tau)
    assert type(got) is np.dtype(dtype).type
    err = ulp_error(got, exact, dtype)
    assert err <= 1.0, f"{case}: {err:.3f} ulp (got {got!r}, exact {float(exact)!r})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(SIGNED_CASES))
def test_conditioned_error_signed_weights(case, dtype):
    a, b, tau = SIGNED_CASES[case]()
    a, b = _cast(a, b, dtype)
    exact, sign, kappa = mp_logsumexp(a, b, tau)
    value, got_sign = lsearray.logsumexp(a, b=b, return_sign=True, temperature=tau)
    assert got_sign == sign, f"{case}: sign {got_sign}, exact sign {sign}"
    eps = float(np.finfo(dtype).eps)
    spacing = float(np.spacing(np.abs(np.dtype(dtype).type(float(exact)))))
    allowed = spacing + tau * eps * float(kappa)
    err = abs(float(value) - float(exact)) / allowed
    assert err <= 1.0, (f"{case}: error {err:.3f} (kappa={float(kappa):.3g}, got {value!r}, "
                        f"exact {float(exact)!r})")
    if sign > 0:
        assert float(lsearray.logsumexp(a, b=b, temperature=tau)) == float(value)
    else:
        assert np.isnan(lsearray.logsumexp(a, b=b, temperature=tau))


def _hard_matrix():
    """64 rows of 500: a dominant 0 followed by terms around -40, with the 0 at a row-dependent place."""
    rng = np.random.default_rng(20240601)
    m = rng.normal(loc=-40.0, scale=1.0, size=(64, 500))
    m[np.arange(64), rng.integers(0, 500, size=64)] = 0.0
    m[::4] = rng.normal(size=(16, 500)) * 2.0        # some ordinary rows too
    return m


@pytest.mark.parametrize("layout", ["rows-C", "rows-F", "columns-C", "columns-strided"])
def test_ulp_error_along_an_axis(layout):
    data = _hard_matrix()
    exact = [mp_logsumexp(row)[0] for row in data]
    if layout == "rows-C":
        got = lsearray.logsumexp(data, axis=1)
    elif layout == "rows-F":
        got = lsearray.logsumexp(np.asfortranarray(data), axis=1)
    elif layout == "columns-C":
        got = lsearray.logsumexp(np.ascontiguousarray(data.T), axis=0)
    else:
        big = np.zeros((1000, 128))
        big[::2, ::2] = data.T
        got = lsearray.logsumexp(big[::2, ::2], axis=0)
    assert got.shape == (64,)
    errs = [ulp_error(g, e, np.float64) for g, e in zip(got, exact)]
    worst = int(np.argmax(errs))
    assert max(errs) <= 1.0, f"row {worst}: {errs[worst]:.3f} ulp"


@pytest.mark.parametrize("case", ["sorted-ascending-1e5-slow", "dominant-last-after-6e4"])
def test_ulp_error_down_long_columns(case):
    """Columns longer than a kernel tile: the column path's rescales stay within 1 ulp."""
    a, _, _ = POSITIVE_CASES[case]()
    exact = mp_logsumexp(a)[0]
    cols = np.ascontiguousarray(np.stack([a, a, a], axis=1))
    got = lsearray.logsumexp(cols, axis=0)
    errs = [ulp_error(g, exact, np.float64) for g in got]
    assert max(errs) <= 1.0, f"{case}: {max(errs):.3f} ulp"


LIBRARIES = ["torch", "jax", "jax.jit"]


def _on_library(library, a, b, tau):
    """lsearray.logsumexp of ``a`` (weights ``b``) as ``library``'s arrays, as a Python float."""
    if library == "torch":
        torch = pytest.importorskip("torch")
        got = lsearray.logsumexp(torch.from_numpy(a), b=None if b is None else torch.from_numpy(b),
                                 temperature=tau)
        assert got.dtype == torch.from_numpy(a).dtype
        return got.item()
    from backends import _jax

    jax, jnp = _jax()

    def call(x, w):
        return lsearray.logsumexp(x, b=w, temperature=tau)

    fn = jax.jit(call) if library == "jax.jit" else call
    got = fn(jnp.asarray(a), None if b is None else jnp.asarray(b))
    assert got.dtype == a.dtype
    return float(got)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(POSITIVE_CASES))
def test_ulp_error_on_torch_and_jax_arrays(case, dtype, library):
    """torch tensors and jax arrays (eager and jitted) reach the same accuracy as NumPy's:
    at most 1 ulp on every hard positive case."""
    a, b, tau = POSITIVE_CASES[case]()
    a, b = _cast(a, b, dtype)
    exact = mp_logsumexp(a, b, tau)[0]
    err = ulp_error(_on_library(library, a, b, tau), exact, dtype)
    assert err <= 1.0, f"{case} on {library}: {err:.3f} ulp (exact {float(exact)!r})"
