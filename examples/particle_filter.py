r"""
Particle filter: log-weights, effective sample size and resampling
==================================================================

A bootstrap particle filter with log-weights, checked against the Kalman filter's exact likelihood.
The linear-Gaussian state-space model

.. math::

    x_0 \sim N(0, p_0), \qquad x_t = \phi x_{t-1} + N(0, q), \qquad y_t = x_t + N(0, r),
    \qquad t = 1, \dots, T

has an exact likelihood p(y_1, ..., y_T), computed by the Kalman filter. A particle filter estimates it
by simulation: N particles are moved by the dynamics and weighted by the likelihood of each observation.
Its weights are kept as log-weights: ``lsearray.logsumexp(log_w + log_lik)`` is the log of the estimated
p(y_t | y_1, ..., y_{t-1}), ``lsearray.log_softmax`` renormalizes, the effective sample size is
``exp(-logsumexp(2 * log_w))``, and systematic resampling inverts the cumulative weights
``lsearray.logcumsumexp(log_w)`` without leaving log space.

The estimate is random: with N = 2000 particles and T = 100 observations its standard deviation over
seeds is about 0.16, so the check allows 0.8 (five standard deviations); the filtered means, about 0.03
posterior standard deviations (RMS) from the Kalman means, are allowed 0.1. The figure shows the filtered
means beside the Kalman filter's, and the effective sample size falling between resamplings.

Run: ``python examples/particle_filter.py``
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["FilterResult", "effective_sample_size", "kalman_filter", "main", "particle_filter", "simulate",
           "systematic_resample"]

PHI, Q, R, P0 = 0.9, 0.5, 1.0, 1.0


class FilterResult(NamedTuple):
    """What a filter returns: the log-likelihood, the filtered means and a diagnostic per step."""

    log_likelihood: float
    means: NDArray[np.float64]
    per_step: NDArray[np.float64]  # effective sample sizes (particle filter) or variances (Kalman filter)


def simulate(T: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Observations y_1, ..., y_T from the model."""
    x = rng.normal(0.0, math.sqrt(P0))
    y = np.empty(T)
    for t in range(T):
        x = PHI * x + rng.normal(0.0, math.sqrt(Q))
        y[t] = x + rng.normal(0.0, math.sqrt(R))
    return y


def kalman_filter(y: NDArray[np.float64]) -> FilterResult:
    """The exact log-likelihood, filtered means E[x_t | y_1..t] and variances of the model."""
    m, P, log_lik = 0.0, P0, 0.0
    means, variances = np.empty(len(y)), np.empty(len(y))
    for t, obs in enumerate(y):
        m, P = PHI * m, PHI**2 * P + Q
        S = P + R
        log_lik -= 0.5 * (math.log(2 * math.pi * S) + (obs - m) ** 2 / S)
        gain = P / S
        m, P = m + gain * (obs - m), (1 - gain) * P
        means[t], variances[t] = m, P
    return FilterResult(log_lik, means, variances)


def effective_sample_size(log_w: NDArray[np.float64]) -> float:
    """``1 / sum(w**2)`` for normalized log-weights, computed as ``exp(-logsumexp(2 log w))``."""
    return float(np.exp(-lsearray.logsumexp(2 * log_w)))


def systematic_resample(log_w: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.intp]:
    """Indices of N particles drawn by systematic resampling from normalized log-weights.

    The N points ``(i + u) / N`` with one uniform ``u`` are located in the cumulative weights, which
    stay in log space: ``searchsorted(logcumsumexp(log w), log((i + u) / N))``.
    """
    n = len(log_w)
    log_cdf = lsearray.logcumsumexp(log_w)
    points = np.log((np.arange(n) + rng.uniform()) / n)
    return np.minimum(np.searchsorted(log_cdf, points), n - 1)


def particle_filter(y: NDArray[np.float64], n: int, rng: np.random.Generator,
                    ess_threshold: float = 0.5) -> FilterResult:
    """Estimate the log-likelihood and filtered means with n particles.

    Resamples when the effective sample size falls below ``ess_threshold * n``; ``per_step`` holds the
    effective sample size after each observation is weighed in (before any resampling).
    """
    x = rng.normal(0.0, math.sqrt(P0), size=n)
    log_w = np.full(n, -math.log(n))
    log_lik = 0.0
    means, ess = np.empty(len(y)), np.empty(len(y))
    for t, obs in enumerate(y):
        x = PHI * x + rng.normal(0.0, math.sqrt(Q), size=n)
        log_g = -0.5 * (math.log(2 * math.pi * R) + (obs - x) ** 2 / R)
        log_lik += float(lsearray.logsumexp(log_w + log_g))
        log_w = lsearray.log_softmax(log_w + log_g)
        means[t] = float(np.exp(log_w) @ x)
        ess[t] = effective_sample_size(log_w)
        if ess[t] < ess_threshold * n:
            x = x[systematic_resample(log_w, rng)]
            log_w = np.full(n, -math.log(n))
    return FilterResult(log_lik, means, ess)


def main(plot: bool = False) -> int:
    """Run both filters on simulated data; return 1 if the particle estimate is off by more than stated.

    With ``plot``, also draw the figure (when matplotlib is installed).
    """
    n = 2000
    y = simulate(100, np.random.default_rng(1))
    exact = kalman_filter(y)
    estimate = particle_filter(y, n, np.random.default_rng(2))
    ll_err = abs(estimate.log_likelihood - exact.log_likelihood)
    rms = float(np.sqrt(np.mean((estimate.means - exact.means) ** 2 / exact.per_step)))
    resamplings = int(np.sum(estimate.per_step < 0.5 * n))
    print(f"{len(y)} observations, {n} particles:")
    print(f"  log p(y): particle filter {estimate.log_likelihood:.4f}, "
          f"Kalman filter {exact.log_likelihood:.4f}")
    print(f"  effective sample size: min {estimate.per_step.min():.0f}, mean {estimate.per_step.mean():.0f}; "
          f"{resamplings} resamplings")
    print(f"  filtered means: RMS error {rms:.3f} posterior standard deviations")
    ok = ll_err < 0.8 and rms < 0.1
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} the Kalman filter (log-likelihood error {ll_err:.3f}, tolerance 0.8; "
          f"means {rms:.3f} sd, tolerance 0.1)")
    if plot:
        _plot(y, exact, estimate, n)
    return 0 if ok else 1


def _plot(y: NDArray[np.float64], exact: FilterResult, estimate: FilterResult, n: int) -> None:
    """Filtered means of both filters over the observations, and the effective sample size per step."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = np.arange(1, len(y) + 1)
    sd = np.sqrt(exact.per_step)
    fig, (ax_x, ax_ess) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained")
    ax_x.fill_between(t, exact.means - 2 * sd, exact.means + 2 * sd, color="C0", alpha=0.2,
                      label="Kalman filter: mean ± 2 sd")
    ax_x.plot(t, exact.means, color="C0")
    ax_x.plot(t, estimate.means, "--", color="C1", label=f"particle filter, {n} particles: mean")
    ax_x.plot(t, y, ".", color="0.3", ms=4, label="observations y_t")
    ax_x.set(ylabel="x_t", title="Filtered means E[x_t | y_1, ..., y_t]")
    ax_x.legend(loc="upper left", fontsize="small", ncols=3)
    resampled = estimate.per_step < 0.5 * n
    ax_ess.plot(t, estimate.per_step, color="C2", label="exp(-logsumexp(2 log w))")
    ax_ess.plot(t[resampled], estimate.per_step[resampled], "v", color="C3",
                label="below N/2: resampled (logcumsumexp)")
    ax_ess.axhline(0.5 * n, color="0.5", lw=0.8, ls=":")
    ax_ess.set(xlabel="t", ylabel="effective sample size", ylim=(0, n * 1.05),
               title="Effective sample size after weighing in y_t")
    ax_ess.legend(loc="lower left", fontsize="small")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
