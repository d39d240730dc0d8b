"""
A quick start: mixture log-likelihoods and responsibilities
===========================================================

A tour of the basics: a Gaussian mixture's log-likelihood is a weighted ``lsearray.logsumexp`` over
its components, and the posterior responsibilities are their ``lsearray.softmax``. Then the accurate
value of ``logsumexp([0, -50])`` (``log1p(exp(-50))``, not 0), a smooth maximum with a temperature,
and one pass over 2e7 values beside ``scipy.special.logsumexp`` when scipy is installed (their speed
side by side: the documentation's Performance page). The figure
shows the mixture's density and the responsibilities of its components along x.

Run: ``python examples/quickstart.py``
"""

import numpy as np

import lsearray


def main(plot: bool = False) -> None:
    """Print the tour's results; with ``plot``, also draw the figure (when matplotlib is installed)."""
    rng = np.random.default_rng(0)

    # Log-likelihood of 1e6 points under a 3-component Gaussian mixture: the per-point
    # log-density is a weighted log-sum-exp over the components.
    x = rng.normal(size=1_000_000)
    means, sigmas, weights = np.array([-2.0, 0.0, 3.0]), np.array([1.0, 0.5, 2.0]), np.array([0.2, 0.5, 0.3])
    log_pdf = -0.5 * ((x[:, None] - means) / sigmas) ** 2 - np.log(sigmas * np.sqrt(2 * np.pi))
    loglik = lsearray.logsumexp(log_pdf, axis=1, b=weights).sum()
    print(f"mixture log-likelihood of {x.size:,} points: {loglik:.6f}")

    # Posterior responsibilities: a softmax over the components of the weighted log-densities.
    resp = lsearray.softmax(log_pdf + np.log(weights), axis=1)
    print(f"responsibilities of the first point: {np.round(resp[0], 4)} (sum {resp[0].sum():.15f})")

    # One dominant term: the accurate answer is log1p(exp(-50)), not 0.
    print(f"logsumexp([0, -50]) = {lsearray.logsumexp([0.0, -50.0])!r}")

    # A smooth max with temperature: max <= lse_tau <= max + tau * log(n).
    print(f"smooth max of [1, 2, 3] at tau=0.1: {lsearray.logsumexp([1.0, 2.0, 3.0], temperature=0.1):.6f}")
    if plot:
        _plot(means, sigmas, weights)

    # A single pass over 2e7 values, beside scipy when it is installed.
    a = rng.normal(size=20_000_000)
    print(f"lsearray.logsumexp of 2e7 float64: {lsearray.logsumexp(a)!r}")
    try:
        from scipy.special import logsumexp
    except ImportError:
        return
    print(f"scipy.special.logsumexp:            {logsumexp(a)!r}")


def _plot(means: np.ndarray, sigmas: np.ndarray, weights: np.ndarray) -> None:
    """The mixture's density and its components, and the responsibilities along x."""
    try:  # matplotlib is optional: without it the script only prints its results
        import matplotlib.pyplot as plt
    except ImportError:
        return
    grid = np.linspace(-6.0, 9.0, 500)
    log_pdf = -0.5 * ((grid[:, None] - means) / sigmas) ** 2 - np.log(sigmas * np.sqrt(2 * np.pi))
    fig, (ax_d, ax_r) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
    ax_d.plot(grid, np.exp(lsearray.logsumexp(log_pdf, axis=1, b=weights)), "k", lw=2,
              label="exp(logsumexp(log_pdf, axis=1, b=weights))")
    for k in range(len(means)):
        ax_d.plot(grid, weights[k] * np.exp(log_pdf[:, k]), f"C{k}--", lw=1, label=f"component {k}")
    ax_d.set(ylabel="density", title="A three-component Gaussian mixture")
    ax_d.legend(fontsize="small")
    resp = lsearray.softmax(log_pdf + np.log(weights), axis=1)
    ax_r.stackplot(grid, resp.T, labels=[f"component {k}" for k in range(len(means))], alpha=0.85)
    ax_r.set(xlabel="x", ylabel="responsibility", ylim=(0, 1), xlim=(grid[0], grid[-1]),
             title="softmax(log_pdf + log(weights), axis=1)")


if __name__ == "__main__":
    main(plot=True)
