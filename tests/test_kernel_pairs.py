"""The two-term relatives' vector loops (logaddexp, logdiffexp, log1mexp) against mpmath: strides, chunks, temperatures, float32."""

import math

import mpmath
import numpy as np
import pytest

import lsearray
from kernel_support import DTYPES
from reference import mp_log1mexp, mp_logaddexp, mp_logdiffexp

__all__ = []

LN2 = math.log(2.0)
N = 1100          # more than two of the loops' stretches of 512 pairs, and a partial vector


def _ulps(got, exact, dtype):
    """|got - exact| in ulps of exact rounded to dtype (the smallest subnormal's where it is 0)."""
    spacing = float(np.spacing(np.abs(np.dtype(dtype).type(float(exact)))))
    return float(abs(mpmath.mpf(float(got)) - exact) / spacing)


def _worst(got, exact, dtype):
    errs = [_ulps(g, e, dtype) for g, e in zip(np.ravel(got), exact)]
    k = int(np.argmax(errs))
    return errs[k], k


def _mixture(rng, n):
    """Pairs (hi, lo), hi >= lo, from the regimes the rounding test has to tell apart: ordinary
    (scale 10), log-probabilities whose sum or difference is near 0 (hi in [-ln 2, 0]), near
    neighbours (exp of the difference near 1), far apart (the term underflows) and -inf."""
    k = n // 5
    ordinary = rng.normal(0.0, 10.0, (2, k))
    hi = rng.uniform(-LN2, 0.0, k)
    near_zero = np.stack([hi, np.log(-np.expm1(hi)) + rng.normal(0.0, 1e-3, k)])
    base = rng.normal(0.0, 5.0, k)
    neighbours = np.stack([base, base - np.exp(rng.uniform(-40.0, 0.0, k))])
    far = np.stack([rng.normal(0.0, 5.0, k), rng.normal(-800.0, 20.0, k)])
    rest = n - 4 * k
    minus_inf = np.stack([rng.normal(0.0, 3.0, rest), np.full(rest, -np.inf)])
    pairs = np.concatenate([ordinary, near_zero, neighbours, far, minus_inf], axis=1)
    pairs = pairs[:, rng.permutation(n)]
    return np.max(pairs, axis=0), np.min(pairs, axis=0)


def _layouts(x1, x2):
    """The operands contiguous, reversed, every other element of a longer array, and x1 a
    broadcast scalar (stride 0)."""
    def every_other(v):
        w = np.empty(2 * v.size, dtype=v.dtype)
        w[::2] = v
        return w[::2]
    yield "contiguous", x1, x2
    yield "reversed", x1[::-1].copy()[::-1], x2[::-1].copy()[::-1]
    yield "strided", every_other(x1), every_other(x2)
    yield "broadcast", np.broadcast_to(x1[:1], x1.shape), x2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.37])
def test_logaddexp_within_one_ulp(dtype, temperature):
    rng = np.random.default_rng(20)
    hi, lo = _mixture(rng, N)
    x1, x2 = hi.astype(dtype), lo.astype(dtype)
    for name, a, b in _layouts(x1, x2):
        got = lsearray.logaddexp(b, a, temperature=temperature)     # either order
        exact = [mp_logaddexp(u, v, temperature) for u, v in zip(a, b)]
        worst, k = _worst(got, exact, dtype)
        assert worst <= 1.0, f"{name}: ({a[k]!r}, {b[k]!r}) off by {worst:.3f} ulp"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.37])
def test_logdiffexp_within_one_ulp(dtype, temperature):
    rng = np.random.default_rng(21)
    hi, lo = _mixture(rng, N)
    x1, x2 = hi.astype(dtype), lo.astype(dtype)
    for name, a, b in _layouts(x1, x2):
        got = lsearray.logdiffexp(a, b, temperature=temperature)
        assert np.all(got[a == b] == -np.inf) and np.all(np.isnan(got[a < b])), name
        exact = [mp_logdiffexp(u, v, temperature) if u > v else None for u, v in zip(a, b)]
        pairs = [(g, e) for g, e in zip(got, exact) if e is not None]
        worst, k = _worst([g for g, _ in pairs], [e for _, e in pairs], dtype)
        assert worst <= 1.0, f"{name}: pair {k} off by {worst:.3f} ulp"


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1mexp_within_one_ulp(dtype):
    """x from -1e-300 to -745 log-uniformly, through the switch at -ln 2 and where 1 - exp(x)
    is so near 1 that only relative accuracy near 1 keeps its bits."""
    rng = np.random.default_rng(22)
    x = -np.exp(rng.uniform(math.log(1e-30), math.log(745.0), N)).astype(dtype)
    got = lsearray.log1mexp(x)
    worst, k = _worst(got, [mp_log1mexp(v) for v in x], dtype)
    assert worst <= 1.0, f"log1mexp({x[k]!r}) off by {worst:.3f} ulp"


def test_signs_of_a_difference_of_either_order():
    """return_sign takes each pair in either order: the sign of exp(x1) - exp(x2) and the log
    of its size, from the vector loops (x1 > x2) and the others (x1 < x2) alike."""
    rng = np.random.default_rng(23)
    hi, lo = _mixture(rng, N)
    swap = rng.random(N) < 0.5
    x1, x2 = np.where(swap, lo, hi), np.where(swap, hi, lo)
    got, sign = lsearray.logdiffexp(x1, x2, return_sign=True)
    assert np.array_equal(sign, np.where(hi == lo, 0.0, np.where(swap, -1.0, 1.0)))
    exact = [mp_logdiffexp(u, v) if u > v else None for u, v in zip(hi, lo)]
    pairs = [(g, e) for g, e in zip(got, exact) if e is not None]
    worst, _ = _worst([g for g, _ in pairs], [e for _, e in pairs], np.float64)
    assert worst <= 1.0


def _fast_tier_edges(rng, n, tau, sign=1.0):
    """Pairs (hi, lo) whose sums (sign 1) or differences (sign -1) sit at the edges of the fast
    tier's rounding test: near each other (the term near 1) with results from 0.3 tau to 8
    tau, where the test moves from leaving them to vouching for them; far apart (the term e
    from 1e-13 to 0.05) with results within 30 e tau of 0, where the log's own error (about
    6 e) decides.  They are a tenth and a fifth of the pairs, among ordinary ones, so that
    few enough results lie near 0 for every stretch to try the fast tier."""
    k_far, k_near = n // 10, n // 5
    near_r = rng.uniform(0.3, 8.0, k_near) * tau * rng.choice([-1.0, 1.0], k_near)
    gap = rng.uniform(0.05, 3.0, k_near) * tau             # hi - lo
    near_hi = near_r - tau * np.log1p(sign * np.exp(-gap / tau))
    e = np.exp(rng.uniform(np.log(1e-13), np.log(0.05), k_far))
    far_hi = -tau * np.log1p(sign * e) + rng.uniform(-30.0, 30.0, k_far) * e * tau
    far_lo = far_hi + tau * np.log(e)
    rest = n - k_far - k_near
    ordinary = rng.normal(0.0, 10.0, (2, rest))
    hi = np.concatenate([near_hi, far_hi, ordinary.max(axis=0)])
    lo = np.concatenate([near_hi - gap, far_lo, ordinary.min(axis=0)])
    order = rng.permutation(n)
    return hi[order], lo[order]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.37, 3.0])
def test_logaddexp_at_the_fast_tiers_edges(dtype, temperature):
    """The fast tier (a plain-float64 exp and log under a per-lane error bound) vouches only
    for results within one ulp: sums at the edges of its test, in every layout."""
    rng = np.random.default_rng(24)
    hi, lo = _fast_tier_edges(rng, 4 * N, temperature)
    x1, x2 = hi.astype(dtype), lo.astype(dtype)
    for name, a, b in _layouts(x1, x2):
        got = lsearray.logaddexp(a, b, temperature=temperature)
        exact = [mp_logaddexp(u, v, temperature) for u, v in zip(a, b)]
        worst, k = _worst(got, exact, dtype)
        assert worst <= 1.0, f"{name}: ({a[k]!r}, {b[k]!r}) off by {worst:.3f} ulp"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.37, 3.0])
def test_logdiffexp_at_the_fast_tiers_edges(dtype, temperature):
    """The same for differences, with their signs."""
    rng = np.random.default_rng(26)
    hi, lo = _fast_tier_edges(rng, 4 * N, temperature, sign=-1.0)
    x1, x2 = hi.astype(dtype), lo.astype(dtype)
    for name, a, b in _layouts(x1, x2):
        got, sign = lsearray.logdiffexp(a, b, temperature=temperature, return_sign=True)
        assert np.array_equal(sign, np.where(a > b, 1.0, np.where(a == b, 0.0, -1.0))), name
        exact = [mp_logdiffexp(u, v, temperature) if u > v else None for u, v in zip(a, b)]
        pairs = [(g, e) for g, e in zip(got, exact) if e is not None]
        worst, k = _worst([g for g, _ in pairs], [e for _, e in pairs], dtype)
        assert worst <= 1.0, f"{name}: pair {k} off by {worst:.3f} ulp"


def test_logaddexp_through_stretches_that_change_regime():
    """Stretches of 512 pairs whose results move from ordinary ones (the fast tier) to ones
    from 1/64 to 2 from 0 (which the double-double tier vouches for: from the next stretch
    on, it takes them alone) and back: every result within one ulp whichever tier took it."""
    rng = np.random.default_rng(25)
    parts = []
    for regime in ("ordinary", "near zero", "ordinary", "near zero", "ordinary"):
        if regime == "ordinary":
            parts.append(rng.normal(0.0, 10.0, (2, 700)))
        else:
            r = rng.uniform(1.0 / 64.0, 2.0, 700) * rng.choice([-1.0, 1.0], 700)
            hi = r + np.log(rng.uniform(0.5, 0.99, 700))
            parts.append(np.stack([hi, np.log(np.exp(r) - np.exp(hi))]))
    x1, x2 = np.concatenate(parts, axis=1)
    got = lsearray.logaddexp(x1, x2)
    exact = [mp_logaddexp(u, v) for u, v in zip(x1, x2)]
    worst, k = _worst(got, exact, np.float64)
    assert worst <= 1.0, f"pair {k} ({x1[k]!r}, {x2[k]!r}) off by {worst:.3f} ulp"
