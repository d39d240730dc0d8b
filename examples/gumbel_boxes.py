r"""
Gumbel boxes: max-stability and Gumbel-max sampling
===================================================

Gumbel box intersection by the temperature log-sum-exp, with Monte Carlo checks of Gumbel max-stability.

A Gumbel box (Dasgupta et al., NeurIPS 2020) is a box whose lower corner in each dimension is a
MaxGumbel(mu_z, beta) random variable and whose upper corner is a MinGumbel(mu_Z, beta) one. The Gumbel
family is max-stable: if G1, G2 ~ Gumbel(0, beta) are independent,

.. math::

    \max(x + G_1, y + G_2) \sim \mathrm{Gumbel}(\mathrm{lse}_\beta(x, y), \beta), \qquad
    \mathrm{lse}_\beta(x, y) = \beta \log\left(e^{x/\beta} + e^{y/\beta}\right),

and mirrored for the minimum of MinGumbels: min(x - G1, y - G2) ~ MinGumbel(-lse_beta(-x, -y), beta). So
the intersection of two Gumbel boxes is again a Gumbel box, with lower corners at
``lsearray.logaddexp(z_A, z_B, temperature=beta)`` and upper corners at
``-lsearray.logaddexp(-Z_A, -Z_B, temperature=beta)``: smooth versions of max and min that tend to them as
beta -> 0 (max(x, y) < lse_beta(x, y) <= max(x, y) + beta log 2).

Checks: lse_beta at x = 100, y = 100.5, beta = 0.1 (where e**(x/beta) overflows) against 40-digit
decimal arithmetic; sampled box intersections against the predicted Gumbel laws (Kolmogorov-Smirnov
distance below the 0.1 % critical value 1.95 / sqrt(n), and the maximum-likelihood location,
``-lsearray.logmeanexp(-samples, temperature=beta)``, within 4 standard errors beta / sqrt(n)); and the
Gumbel-max trick that the same theorem gives, argmax(logits + G) ~ softmax(logits), through
``lsearray.categorical`` and ``lsearray.gumbel_softmax(..., hard=True)`` (frequencies within 4.5
binomial standard deviations). The figures show the law of an intersection's corner beside the
histogram of its draws, the smooth max against beta, and the Gumbel-max frequencies.

Run: ``python examples/gumbel_boxes.py``
"""

from __future__ import annotations

import decimal
import math
import sys
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

import lsearray

__all__ = ["Box", "gumbel_cdf", "intersection", "ks_distance", "location_estimate", "lse_beta", "main",
           "min_gumbel_cdf", "sample_corners"]


class Box(NamedTuple):
    """Locations of a Gumbel box's corners, shape (d,): lower ``z`` (MaxGumbel), upper ``Z`` (MinGumbel)."""

    z: NDArray[np.float64]
    Z: NDArray[np.float64]


def lse_beta(x: ArrayLike, y: ArrayLike, beta: float) -> NDArray[np.float64]:
    """``beta * log(exp(x / beta) + exp(y / beta))``, elementwise."""
    return lsearray.logaddexp(x, y, temperature=beta)


def intersection(a: Box, b: Box, beta: float) -> Box:
    """The Gumbel box of the intersection: soft max of the lower corners, soft min of the upper ones."""
    return Box(lse_beta(a.z, b.z, beta), -lse_beta(-a.Z, -b.Z, beta))


def sample_corners(box: Box, beta: float, n: int, rng: np.random.Generator) -> Box:
    """n draws of the box's corners, shape (n, d) each."""
    return Box(box.z + rng.gumbel(0.0, beta, (n, len(box.z))), box.Z - rng.gumbel(0.0, beta, (n, len(box.Z))))


def gumbel_cdf(x: NDArray[np.float64], loc: float, beta: float) -> NDArray[np.float64]:
    """CDF of the (max-)Gumbel distribution."""
    return np.exp(-np.exp(-(x - loc) / beta))


def min_gumbel_cdf(x: NDArray[np.float64], loc: float, beta: float) -> NDArray[np.float64]:
    """CDF of the MinGumbel distribution (the law of -X for X ~ Gumbel(-loc, beta))."""
    return -np.expm1(-np.exp((x - loc) / beta))


def ks_distance(samples: NDArray[np.float64], cdf: NDArray[np.float64]) -> float:
    """The Kolmogorov-Smirnov distance between the samples' empirical CDF and ``cdf``, its values at them."""
    order = np.argsort(samples)
    f, n = cdf[order], len(samples)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def location_estimate(samples: NDArray[np.float64], beta: float) -> float:
    """Maximum-likelihood location of Gumbel(loc, beta) samples with beta known.

    ``exp(-(X - loc) / beta)`` is Exp(1), so ``loc = -beta log E[exp(-X / beta)]``, estimated by
    ``-logmeanexp(-samples, temperature=beta)``.
    """
    return -float(lsearray.logmeanexp(-samples, temperature=beta))


def _decimal_lse(x: float, y: float, beta: float) -> float:
    """lse_beta(x, y) in 40-digit decimal arithmetic."""
    with decimal.localcontext() as context:
        context.prec = 40
        X, Y, B = decimal.Decimal(x), decimal.Decimal(y), decimal.Decimal(beta)
        return float(B * ((X / B).exp() + (Y / B).exp()).ln())


def _check_corners(a: Box, b: Box, beta: float, n: int, rng: np.random.Generator) -> bool:
    """Sample both boxes, intersect the samples, and compare each corner with its predicted law."""
    predicted = intersection(a, b, beta)
    sa, sb = sample_corners(a, beta, n, rng), sample_corners(b, beta, n, rng)
    lower, upper = np.maximum(sa.z, sb.z), np.minimum(sa.Z, sb.Z)
    critical, stderr = 1.95 / math.sqrt(n), beta / math.sqrt(n)
    ok = True
    for dim in range(len(a.z)):
        for name, draws, loc, cdf, sign in (("lower", lower[:, dim], predicted.z[dim], gumbel_cdf, 1),
                                            ("upper", upper[:, dim], predicted.Z[dim], min_gumbel_cdf, -1)):
            ks = ks_distance(draws, cdf(draws, loc, beta))
            fitted = sign * location_estimate(sign * draws, beta)
            good = ks < critical and abs(fitted - loc) < 4 * stderr
            ok &= good
            print(f"  dimension {dim}, {name} corner: lse_beta location {loc:.6f}, fitted {fitted:.6f} "
                  f"(|diff| / stderr {abs(fitted - loc) / stderr:.2f}), KS distance {ks:.5f} "
                  f"(critical {critical:.5f})")
    return ok


def _check_gumbel_max(logits: NDArray[np.float64], n: int, rng: np.random.Generator) -> bool:
    """Frequencies of categorical and hard gumbel_softmax draws against softmax(logits)."""
    p = lsearray.softmax(logits)
    sd = np.sqrt(p * (1 - p) / n)
    freq_categorical = np.bincount(lsearray.categorical(logits, shape=(n,), rng=rng), minlength=len(p)) / n
    one_hot = lsearray.gumbel_softmax(np.broadcast_to(logits, (n, len(p))), hard=True, rng=rng)
    freq_relaxed = one_hot.mean(axis=0)
    print(f"  softmax(logits)                {np.round(p, 4)}")
    print(f"  categorical frequencies        {np.round(freq_categorical, 4)}")
    print(f"  gumbel_softmax(hard) frequency {np.round(freq_relaxed, 4)}")
    errors = np.abs(np.stack([freq_categorical, freq_relaxed]) - p)
    return bool(np.all(errors < 4.5 * sd))


def main(plot: bool = False) -> int:
    """Run the three checks; return 1 if any fails.

    With ``plot``, also draw the figures (when matplotlib is installed).
    """
    x, y, beta = 100.0, 100.5, 0.1
    ours, reference = float(lse_beta(x, y, beta)), _decimal_lse(x, y, beta)
    with np.errstate(over="ignore"):
        naive = beta * np.log(np.exp(x / beta) + np.exp(y / beta))
    print(f"lse_beta({x}, {y}) at beta = {beta}: {ours!r} (decimal {reference!r}, naive {naive})")
    ok_lse = abs(ours - reference) <= 2 * math.ulp(reference)

    a = Box(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    b = Box(np.array([0.5, 0.2]), np.array([2.5, 2.2]))
    beta, n = 0.3, 100_000
    print(f"intersection of two Gumbel boxes at beta = {beta}, {n} samples:")
    ok_boxes = _check_corners(a, b, beta, n, np.random.default_rng(8))

    print(f"Gumbel-max sampling, {n} draws:")
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4])) + 700.0
    ok_sampling = _check_gumbel_max(logits, n, np.random.default_rng(9))

    ok = ok_lse and ok_boxes and ok_sampling
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} the Gumbel max-stability theorem (lse_beta within 2 ulp of decimal: {ok_lse}; "
          f"intersection laws: {ok_boxes}; Gumbel-max frequencies: {ok_sampling})")
    if plot:
        _plot(a, b, beta, n, logits)
    return 0 if ok else 1


def _plot(a: Box, b: Box, beta: float, n: int, logits: NDArray[np.float64]) -> None:
    """Draws of an intersection's lower corner beside its predicted law, lse_beta against beta, and the
    frequencies of Gumbel-max draws (fresh draws from fixed seeds, like the checks')."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    # Two lower corners at the same place: their max is shifted by beta log 2, the most it can be.
    z_a, z_b = 0.0, 0.0
    rng = np.random.default_rng(13)
    lower = np.maximum(z_a + rng.gumbel(0.0, beta, n), z_b + rng.gumbel(0.0, beta, n))
    loc, hard = float(lse_beta(z_a, z_b, beta)), max(z_a, z_b)
    x = np.linspace(np.quantile(lower, 0.0005), np.quantile(lower, 0.9995), 400)

    def density(mu: float) -> NDArray[np.float64]:
        return np.exp(-(x - mu) / beta - np.exp(-(x - mu) / beta)) / beta

    fig, (ax_h, ax_s) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ax_h.hist(lower, bins=100, range=(x[0], x[-1]), density=True, color="0.8",
              label=f"max(z_A + G1, z_B + G2), {n} draws")
    ax_h.plot(x, density(loc), "C0", lw=2, label=f"Gumbel(lse_beta(z_A, z_B) = {loc:.4f}, beta)")
    ax_h.plot(x, density(hard), "C3--", lw=1.5, label=f"Gumbel(max(z_A, z_B) = {hard}, beta)")
    ax_h.set(xlabel="lower corner of the intersection", ylabel="density", xlim=(x[0], x[-1]),
             title=f"Max-stability: z_A = z_B = {z_a}, beta = {beta}")
    ax_h.legend(fontsize="small")

    betas = np.geomspace(1e-3, 3.0, 100)
    x0, y0 = a.z[0], b.z[0]
    smooth = [float(lse_beta(x0, y0, float(t))) for t in betas]
    ax_s.semilogx(betas, smooth, "C0", lw=2, label="lse_beta(x, y) = logaddexp(x, y, temperature=beta)")
    ax_s.semilogx(betas, np.full_like(betas, max(x0, y0)), "k:", label="max(x, y)")
    ax_s.semilogx(betas, max(x0, y0) + betas * np.log(2), "k--", lw=0.8, label="max(x, y) + beta log 2")
    ax_s.set(xlabel="beta", ylabel="smooth max", title=f"The smooth max of x = {x0} and y = {y0}")
    ax_s.legend(fontsize="small")

    p = lsearray.softmax(logits)
    rng = np.random.default_rng(14)
    freq_categorical = np.bincount(lsearray.categorical(logits, shape=(n,), rng=rng), minlength=len(p)) / n
    freq_hard = lsearray.gumbel_softmax(np.broadcast_to(logits, (n, len(p))), hard=True, rng=rng).mean(axis=0)
    fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    k = np.arange(len(p))
    for shift, values, label in ((-0.27, p, "softmax(logits)"), (0.0, freq_categorical, "categorical"),
                                 (0.27, freq_hard, "gumbel_softmax(hard=True)")):
        ax.bar(k + shift, values, width=0.27, label=label)
    ax.set(xticks=k, xlabel="category", ylabel="probability / frequency",
           title=f"Gumbel-max sampling, {n} draws, logits = log p + 700")
    ax.legend(fontsize="small")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
