r"""
Bayesian model averaging: posterior model weights from log evidences
====================================================================

Posterior model weights and the averaged prediction from log evidences of about -2900.

Polynomial regressions of degree 0 to 5 are fitted to 2000 noisy points of a cubic. With a Gaussian
prior on the coefficients, w ~ N(0, I / alpha), and Gaussian noise of variance sigma2, each model's
evidence is a Gaussian density in closed form: y ~ N(0, sigma2 I + Phi Phi^T / alpha). With 2000 points
every log evidence is below -2800, so exp(log evidence) is 0 in float64 and the textbook normalization

.. math::

    p(M_k \mid y) = \frac{p(y \mid M_k)\, p(M_k)}{\sum_j p(y \mid M_j)\, p(M_j)}

is 0/0.

In log space the posterior weights are ``lsearray.softmax(log_evidence + log_prior)``, the marginal
likelihood is ``lsearray.logsumexp(log_evidence, b=prior)``, and the averaged predictive density at a new
point, sum_k p(M_k | y) p(y_new | y, M_k), is ``lsearray.logsumexp(log_weights + log_predictive)``.

Checked against the same normalizations done directly in 50-digit decimal arithmetic (the standard
library's ``decimal``, whose exponent range does not underflow). A weight is exp of a difference of log
evidences near -2900, each rounded to ulp(2900) = 4.5e-13, so weights are compared to a relative 3e-12.
The figure shows the models' fits and their posterior weights, which span 35 orders of magnitude.

Run: ``python examples/model_averaging.py``
"""

from __future__ import annotations

import decimal
import math
import sys

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["averaged_log_predictive", "design", "log_evidence", "log_marginal_likelihood", "log_predictive",
           "main", "model_weights"]

ALPHA, SIGMA2 = 1.0, 1.0
DEGREES = range(6)


def design(x: NDArray[np.float64], degree: int) -> NDArray[np.float64]:
    """The polynomial design matrix ``[1, x, ..., x**degree]``."""
    return np.vander(x, degree + 1, increasing=True)


def _posterior(Phi: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                                            NDArray[np.float64]]:
    """Posterior mean and covariance of the coefficients."""
    cov = np.linalg.inv(ALPHA * np.eye(Phi.shape[1]) + Phi.T @ Phi / SIGMA2)
    return cov @ Phi.T @ y / SIGMA2, cov


def log_evidence(x: NDArray[np.float64], y: NDArray[np.float64], degree: int) -> float:
    """``log p(y | M_degree)``, the log density of y under N(0, sigma2 I + Phi Phi^T / alpha).

    Computed in O(n degree**2) from the posterior (Bishop, Pattern Recognition and Machine Learning,
    eq. 3.86) rather than from the n-by-n covariance.
    """
    Phi = design(x, degree)
    mean, cov = _posterior(Phi, y)
    n, m = Phi.shape
    misfit = np.sum((y - Phi @ mean) ** 2) / SIGMA2 + ALPHA * mean @ mean
    _, logdet_cov = np.linalg.slogdet(cov)
    return float(0.5 * (m * math.log(ALPHA) - n * math.log(2 * math.pi * SIGMA2) - misfit + logdet_cov))


def log_predictive(x: NDArray[np.float64], y: NDArray[np.float64], degree: int, x_new: float,
                   y_new: float) -> float:
    """``log p(y_new | x_new, y, M_degree)``: a Gaussian with the posterior's mean and variance."""
    mean, cov = _posterior(design(x, degree), y)
    phi = design(np.array([x_new]), degree)[0]
    var = SIGMA2 + phi @ cov @ phi
    return float(-0.5 * (math.log(2 * math.pi * var) + (y_new - phi @ mean) ** 2 / var))


def model_weights(log_evidences: NDArray[np.float64], prior: NDArray[np.float64]) -> NDArray[np.float64]:
    """Posterior model probabilities ``softmax(log p(y | M_k) + log p(M_k))``."""
    return lsearray.softmax(log_evidences + np.log(prior))


def log_marginal_likelihood(log_evidences: NDArray[np.float64], prior: NDArray[np.float64]) -> float:
    """``log sum_k p(M_k) p(y | M_k)``, the prior probabilities as the weights ``b``."""
    return float(lsearray.logsumexp(log_evidences, b=prior))


def averaged_log_predictive(log_evidences: NDArray[np.float64], prior: NDArray[np.float64],
                            log_predictives: NDArray[np.float64]) -> float:
    """``log sum_k p(M_k | y) p(y_new | y, M_k)`` from the models' log evidences and log predictives."""
    log_weights = lsearray.log_softmax(log_evidences + np.log(prior))
    return float(lsearray.logsumexp(log_weights + log_predictives))


def _decimal_reference(log_evidences: NDArray[np.float64], prior: NDArray[np.float64],
                       log_predictives: NDArray[np.float64]) -> tuple[list[float], float, float]:
    """Weights, log marginal likelihood and averaged log predictive, normalized directly in decimal."""
    with decimal.localcontext() as context:
        context.prec = 50
        joint = [decimal.Decimal(p) * decimal.Decimal(e).exp() for e, p in zip(log_evidences, prior)]
        total = sum(joint)
        weights = [j / total for j in joint]
        mixture = sum(w * decimal.Decimal(lp).exp() for w, lp in zip(weights, log_predictives))
        return [float(w) for w in weights], float(total.ln()), float(mixture.ln())


def main(plot: bool = False) -> int:
    """Print the weights and the averaged prediction beside the decimal reference; 1 if they disagree.

    With ``plot``, also draw the figure (when matplotlib is installed).
    """
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, 2000)
    y = 0.5 - x + 0.8 * x**3 + rng.normal(0.0, math.sqrt(SIGMA2), x.size)
    x_new, y_new = 0.9, 0.5 - 0.9 + 0.8 * 0.9**3
    prior = np.full(len(DEGREES), 1.0 / len(DEGREES))

    log_ev = np.array([log_evidence(x, y, d) for d in DEGREES])
    log_pred = np.array([log_predictive(x, y, d, x_new, y_new) for d in DEGREES])
    weights = model_weights(log_ev, prior)
    log_z = log_marginal_likelihood(log_ev, prior)
    log_avg = averaged_log_predictive(log_ev, prior, log_pred)
    ref_weights, ref_log_z, ref_log_avg = _decimal_reference(log_ev, prior, log_pred)

    with np.errstate(invalid="ignore"):
        naive = np.exp(log_ev) / np.exp(log_ev).sum()
    print("degree  log evidence   weight (lsearray)  weight (decimal)  exp(log ev) / sum")
    for d, le, w, rw, nw in zip(DEGREES, log_ev, weights, ref_weights, naive):
        print(f"{d:6d}  {le:12.4f}   {w:17.10e}  {rw:16.10e}  {nw}")
    print(f"log p(y) = {log_z:.12f} (decimal {ref_log_z:.12f})")
    print(f"log p(y_new = {y_new:.3f} | x_new = {x_new}, y), averaged over models = {log_avg:.12f} "
          f"(decimal {ref_log_avg:.12f})")

    weight_err = float(np.max(np.abs(weights - ref_weights) / ref_weights))
    scalar_err = max(abs(log_z - ref_log_z) / abs(ref_log_z), abs(log_avg - ref_log_avg))
    ok = weight_err < 3e-12 and scalar_err < 1e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} direct normalization in 50-digit decimal arithmetic (weights: relative error "
          f"{weight_err:.1e}, tolerance 3e-12; log-likelihoods: {scalar_err:.1e}, tolerance 1e-12)")
    if plot:
        _plot(x, y, log_ev, prior)
    return 0 if ok else 1


def _plot(x: NDArray[np.float64], y: NDArray[np.float64], log_ev: NDArray[np.float64],
          prior: NDArray[np.float64]) -> None:
    """Each model's posterior mean curve and the averaged one over the data; the posterior weights."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    weights = model_weights(log_ev, prior)
    grid = np.linspace(-1.0, 1.0, 200)
    curves = np.array([design(grid, d) @ _posterior(design(x, d), y)[0] for d in DEGREES])
    fig, (ax_fit, ax_w) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=(3, 2), layout="constrained")
    ax_fit.plot(x, y, ".", color="0.75", ms=2, zorder=0)
    for d, curve in zip(DEGREES, curves):
        ax_fit.plot(grid, curve, lw=1, color=f"C{d}", label=f"degree {d}")
    ax_fit.plot(grid, weights @ curves, "k--", lw=2, label="model average")
    ax_fit.set(xlabel="x", ylabel="y", title="Posterior mean of each model, and their average")
    ax_fit.legend(fontsize="small", ncols=2)
    log10_w = lsearray.log_softmax(log_ev + np.log(prior)) / np.log(10)
    ax_w.bar(list(DEGREES), log10_w, color=[f"C{d}" for d in DEGREES])
    for d, value in zip(DEGREES, log10_w):
        ax_w.annotate(f"{10.0 ** value:.1e}", (d, value), xytext=(0, -12), textcoords="offset points",
                      ha="center", fontsize="small")
    ax_w.set(xlabel="degree", ylabel="log10 p(M | y)", ylim=(1.15 * log10_w.min(), 0),
             title="log_softmax(log evidence + log prior)")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
