"""Quick start: a mixture model's log-likelihood, softmax responsibilities, and a side-by-side timing."""

import time

import numpy as np

import lsearray


def main() -> None:
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

    # A single pass over 2e7 values, beside scipy when it is installed.
    a = rng.normal(size=20_000_000)
    start = time.perf_counter()
    ours = lsearray.logsumexp(a)
    ours_s = time.perf_counter() - start
    print(f"lsearray.logsumexp of 2e7 float64: {ours!r} in {ours_s * 1e3:.1f} ms")
    try:
        from scipy.special import logsumexp
    except ImportError:
        return
    start = time.perf_counter()
    theirs = logsumexp(a)
    theirs_s = time.perf_counter() - start
    print(f"scipy.special.logsumexp:            {theirs!r} in {theirs_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
