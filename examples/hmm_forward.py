r"""
Hidden Markov models: forward-backward in log space
===================================================

A hidden Markov model has K hidden states with initial probabilities pi, a transition matrix A
(A[i, j] = p(state j at t+1 | state i at t)) and emission probabilities B (B[i, o] = p(symbol o | state i)).
The likelihood of an observed sequence sums the probabilities of all K**T state paths; the forward
recursion does it in O(T K**2):

.. math::

    \alpha_0 = \pi \odot B_{:, o_0}, \qquad
    \alpha_t = (\alpha_{t-1} A) \odot B_{:, o_t}, \qquad
    p(o) = \textstyle\sum_i \alpha_{T-1, i}.

In probability space alpha underflows after a few hundred steps. In log space the matrix product becomes
``lsearray.logmatmulexp(log_alpha, log_A)`` and the final sum ``lsearray.logsumexp``; the backward
recursion runs the same way and ``lsearray.softmax`` of ``log_alpha + log_beta`` gives the posterior
probability of each state at each time.

Checked against a brute-force sum over every state path of a short sequence, and against the scaled
(probability-space, renormalized every step) forward algorithm on a sequence of 5000 symbols. The figures
show the state posteriors along a sequence beside the states that generated it, and the log-likelihood of
each prefix: the textbook forward algorithm underflows to ``-inf`` where the log-space one goes on.

Run: ``python examples/hmm_forward.py``
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["backward", "forward", "log_likelihood", "main", "posterior_marginals", "sample"]

# A three-state model over a four-letter alphabet (GC-rich, AT-rich and neutral regions of DNA).
PI = np.array([0.5, 0.3, 0.2])
A = np.array([[0.90, 0.05, 0.05],
              [0.10, 0.80, 0.10],
              [0.05, 0.15, 0.80]])
B = np.array([[0.10, 0.40, 0.40, 0.10],
              [0.40, 0.10, 0.10, 0.40],
              [0.25, 0.25, 0.25, 0.25]])


def _emissions(log_B: NDArray[np.float64], observations: NDArray[np.intp]) -> NDArray[np.float64]:
    """``log_B[:, observations]`` moved to shape ``(sequences, T, K)``."""
    return log_B.T[np.atleast_2d(observations)]


def forward(log_pi: NDArray[np.float64], log_A: NDArray[np.float64], log_B: NDArray[np.float64],
            observations: NDArray[np.intp]) -> NDArray[np.float64]:
    """Log forward variables ``log p(o_0, ..., o_t, state_t = i)``.

    Parameters
    ----------
    log_pi, log_A, log_B : ndarray
        Log initial probabilities (K,), log transition matrix (K, K), log emission matrix (K, M).
    observations : ndarray of int
        Symbols in ``range(M)``, shape (T,) for one sequence or (S, T) for S sequences of equal length.

    Returns
    -------
    ndarray
        Shape (S, T, K) (S = 1 for a single sequence).
    """
    log_e = _emissions(log_B, observations)
    log_alpha = np.empty_like(log_e)
    log_alpha[:, 0] = log_pi + log_e[:, 0]
    for t in range(1, log_e.shape[1]):
        log_alpha[:, t] = lsearray.logmatmulexp(log_alpha[:, t - 1], log_A) + log_e[:, t]
    return log_alpha


def backward(log_A: NDArray[np.float64], log_B: NDArray[np.float64],
             observations: NDArray[np.intp]) -> NDArray[np.float64]:
    """Log backward variables ``log p(o_{t+1}, ..., o_{T-1} | state_t = i)``, shape (S, T, K).

    The arguments are as in `forward`.
    """
    log_e = _emissions(log_B, observations)
    log_beta = np.zeros_like(log_e)
    for t in range(log_e.shape[1] - 2, -1, -1):
        log_beta[:, t] = lsearray.logmatmulexp(log_e[:, t + 1] + log_beta[:, t + 1], log_A.T)
    return log_beta


def log_likelihood(log_pi: NDArray[np.float64], log_A: NDArray[np.float64], log_B: NDArray[np.float64],
                   observations: NDArray[np.intp]) -> NDArray[np.float64]:
    """``log p(observations)`` for each sequence, shape (S,); the arguments are as in `forward`."""
    return lsearray.logsumexp(forward(log_pi, log_A, log_B, observations)[:, -1], axis=-1)


def posterior_marginals(log_pi: NDArray[np.float64], log_A: NDArray[np.float64], log_B: NDArray[np.float64],
                        observations: NDArray[np.intp]) -> NDArray[np.float64]:
    """``p(state_t = i | all observations)``, shape (S, T, K): a softmax over states of alpha + beta.

    The arguments are as in `forward`.
    """
    log_alpha = forward(log_pi, log_A, log_B, observations)
    log_beta = backward(log_A, log_B, observations)
    return lsearray.softmax(log_alpha + log_beta, axis=-1)


def sample(pi: NDArray[np.float64], A: NDArray[np.float64], B: NDArray[np.float64], length: int,
           rng: np.random.Generator, return_states: bool = False
           ) -> NDArray[np.intp] | tuple[NDArray[np.intp], NDArray[np.intp]]:
    """One observed sequence of the given length drawn from the model (and its hidden states)."""
    state = rng.choice(len(pi), p=pi)
    symbols = np.empty(length, dtype=np.intp)
    states = np.empty(length, dtype=np.intp)
    for t in range(length):
        states[t] = state
        symbols[t] = rng.choice(B.shape[1], p=B[state])
        state = rng.choice(len(pi), p=A[state])
    return (symbols, states) if return_states else symbols


def _brute_force(observations: NDArray[np.intp]) -> tuple[float, NDArray[np.float64]]:
    """Likelihood and posterior marginals of one short sequence, summed over all K**T paths."""
    T, K = len(observations), len(PI)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    prob = PI[paths[:, 0]] * np.prod(A[paths[:, :-1], paths[:, 1:]], axis=1)
    prob = prob * np.prod(B[paths, observations], axis=1)
    total = prob.sum()
    marginals = np.array([[prob[paths[:, t] == k].sum() for k in range(K)] for t in range(T)]) / total
    return float(total), marginals


def _scaled_forward(observations: NDArray[np.intp]) -> float:
    """log p(observations) by the forward algorithm in probability space, renormalized at every step."""
    alpha = PI * B[:, observations[0]]
    log_p = 0.0
    for t in range(len(observations)):
        if t:
            alpha = (alpha @ A) * B[:, observations[t]]
        scale = alpha.sum()
        log_p += np.log(scale)
        alpha = alpha / scale
    return log_p


def _unscaled_forward(observations: NDArray[np.intp]) -> float:
    """The textbook forward algorithm in probability space, without rescaling."""
    alpha = PI * B[:, observations[0]]
    for symbol in observations[1:]:
        alpha = (alpha @ A) * B[:, symbol]
    with np.errstate(divide="ignore"):
        return float(np.log(alpha.sum()))


def main(plot: bool = False) -> int:
    """Print the likelihoods and marginals beside their references; return 1 if they disagree.

    With ``plot``, also draw the figures (when matplotlib is installed).
    """
    rng = np.random.default_rng(6)
    log_pi, log_A, log_B = np.log(PI), np.log(A), np.log(B)

    short = sample(PI, A, B, 9, rng)
    ours = float(log_likelihood(log_pi, log_A, log_B, short)[0])
    total, marginals = _brute_force(short)
    gamma = posterior_marginals(log_pi, log_A, log_B, short)[0]
    ll_err = abs(ours - np.log(total))
    gamma_err = float(np.max(np.abs(gamma - marginals)))
    print(f"short sequence {''.join('ACGT'[o] for o in short)} ({len(PI) ** len(short)} state paths):")
    print(f"  log p(o): forward in log space {ours:.15f}, brute force {np.log(total):.15f}")
    print(f"  p(state | o) at t = 0: {np.round(gamma[0], 6)}, brute force {np.round(marginals[0], 6)}")

    long = sample(PI, A, B, 5000, rng)
    ours_long = float(log_likelihood(log_pi, log_A, log_B, long)[0])
    scaled = _scaled_forward(long)
    long_err = abs(ours_long - scaled) / abs(scaled)
    print(f"long sequence ({len(long)} symbols):")
    print(f"  log p(o): forward in log space {ours_long:.10f}, scaled forward {scaled:.10f}, "
          f"unscaled forward {_unscaled_forward(long)} (underflow)")

    ok = ll_err < 1e-12 and gamma_err < 1e-12 and long_err < 1e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} brute-force enumeration (log p error {ll_err:.1e}, marginals {gamma_err:.1e}; "
          f"tolerance 1e-12) and the scaled forward algorithm (relative error {long_err:.1e}; "
          f"tolerance 1e-12)")
    if plot:
        _plot(log_pi, log_A, log_B, long)
    return 0 if ok else 1


def _plot(log_pi: NDArray[np.float64], log_A: NDArray[np.float64], log_B: NDArray[np.float64],
          long: NDArray[np.intp]) -> None:
    """State posteriors along a sampled sequence, and the log-likelihood of every prefix of ``long``."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError:
        return
    symbols, states = sample(PI, A, B, 300, np.random.default_rng(11), return_states=True)
    gamma = posterior_marginals(log_pi, log_A, log_B, symbols)[0]
    names = ("GC-rich", "AT-rich", "neutral")
    t = np.arange(len(symbols))
    fig, (ax_post, ax_true) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, height_ratios=(4, 1),
                                           layout="constrained")
    ax_post.stackplot(t, gamma.T, labels=names, step="mid", alpha=0.85)
    ax_post.set(ylabel="p(state | all symbols)", ylim=(0, 1), xlim=(0, len(t) - 1),
                title="Posterior state probabilities: softmax(log alpha + log beta)")
    ax_post.legend(loc="upper right", ncols=3, fontsize="small")
    ax_true.imshow(states[None, :], aspect="auto", cmap=ListedColormap([f"C{k}" for k in range(len(names))]),
                   vmin=0, vmax=len(names) - 1, interpolation="nearest", extent=(-0.5, len(t) - 0.5, 0, 1))
    ax_true.set(yticks=[], xlabel="t", ylabel="true\nstate")

    log_alpha = forward(log_pi, log_A, log_B, long)[0]
    prefix = lsearray.logsumexp(log_alpha, axis=-1)  # log p(o_0, ..., o_t) for every t
    alpha, textbook = PI * B[:, long[0]], np.empty(len(long))
    with np.errstate(divide="ignore", under="ignore"):
        for i, symbol in enumerate(long):
            if i:
                alpha = (alpha @ A) * B[:, symbol]
            textbook[i] = np.log(alpha.sum())
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    ax.plot(prefix, label="forward in log space (logmatmulexp)")
    finite = np.isfinite(textbook)
    ax.plot(np.flatnonzero(finite), textbook[finite], "--", lw=2, label="forward in probability space")
    first = int(np.argmin(finite))
    ax.axvline(first, color="0.5", lw=0.8)
    ax.annotate(f"underflows to 0 at t = {first}", (first, prefix[first]), xytext=(12, 12),
                textcoords="offset points")
    ax.set(xlabel="t", ylabel="log p(o_0, ..., o_t)", title=f"Prefix log-likelihoods of {len(long)} symbols")
    ax.legend()


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
