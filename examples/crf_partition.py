r"""
Linear-chain CRF: the partition function as one einsum in log space
====================================================================

A linear-chain conditional random field scores a label sequence y_0 ... y_{T-1} (K labels at each
of T positions) by unary scores theta and transition scores psi, and normalizes over all K**T
sequences:

.. math::

    s(y) = \sum_t \theta_t(y_t) + \sum_t \psi(y_t, y_{t+1}), \qquad
    p(y) = e^{s(y)} / Z, \qquad Z = \sum_y e^{s(y)}.

Z is an einsum of the exponentiated scores over a chain of indices, ``"a,ab,b,bc,c,..."``: each
letter a position's label, each unary a vector and each transition a matrix. With scores of a few
hundred, as a CRF's unnormalized scores can reach, the products of the exps overflow and the
einsum of the exps is ``inf``; ``lsearray.logeinsumexp`` contracts the same subscripts in log space, two operands at a
time as batched ``logmatmulexp`` products (along opt_einsum's path where it is installed). Keeping
one label's letter in the output gives that position's unnormalized log marginal; subtracting
log Z normalizes it.

Checked against brute-force enumeration of every label sequence (K**T scores, their log-sum-exp
in exactly rounded sums); the figure shows the marginals of each position.

Run: ``python examples/crf_partition.py``
"""

from __future__ import annotations

import itertools
import math
import string
import sys

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["brute_force", "chain_subscripts", "log_marginals", "log_partition", "main"]


def chain_subscripts(length: int, keep: str = "") -> str:
    """``"a,ab,b,bc,c,...->keep"``: the unaries and transitions of a chain of ``length`` positions."""
    letters = string.ascii_letters[:length]
    terms = [letters[0]]
    for s, t in zip(letters, letters[1:]):
        terms += [s + t, t]
    return ",".join(terms) + "->" + keep


def _operands(theta: NDArray[np.float64], psi: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """theta[0], psi, theta[1], psi, ...: the operands in the order of `chain_subscripts`."""
    ops = [theta[0]]
    for t in range(1, len(theta)):
        ops += [psi, theta[t]]
    return ops


def log_partition(theta: NDArray[np.float64], psi: NDArray[np.float64]) -> float:
    """``log Z``: one logeinsumexp over the whole chain."""
    return float(lsearray.logeinsumexp(chain_subscripts(len(theta)), *_operands(theta, psi)))


def log_marginals(theta: NDArray[np.float64], psi: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log p(y_t = k)`` for every position t: the chain with t's letter kept, minus log Z."""
    log_z = log_partition(theta, psi)
    letters = string.ascii_letters[:len(theta)]
    return np.array([lsearray.logeinsumexp(chain_subscripts(len(theta), c), *_operands(theta, psi)) - log_z
                     for c in letters])


def brute_force(theta: NDArray[np.float64], psi: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """log Z and the marginals p(y_t = k) by scoring every one of the K**T sequences, summed with
    math.fsum (exactly rounded) after the largest score is taken out."""
    length, k = theta.shape
    seqs = np.array(list(itertools.product(range(k), repeat=length)))
    scores = theta[np.arange(length), seqs].sum(axis=1) + psi[seqs[:, :-1], seqs[:, 1:]].sum(axis=1)
    top = scores.max()
    weights = np.exp(scores - top)
    total = math.fsum(weights)
    marginals = np.array([[math.fsum(weights[seqs[:, t] == label]) / total for label in range(k)]
                          for t in range(length)])
    return top + math.log(total), marginals


def main(plot: bool = False) -> int:
    """Print log Z and the marginals beside brute force; return 1 if they disagree.

    With ``plot``, also draw the figure (when matplotlib is installed).
    """
    rng = np.random.default_rng(2024)
    length, k = 8, 4
    # scores of a few hundred, close to one another: every exp is finite, but the products of
    # a sequence's exps (e**2300) overflow float64 while the marginals stay far from 0 and 1
    theta = 200.0 + rng.normal(scale=1.5, size=(length, k))
    psi = 100.0 + rng.normal(scale=1.0, size=(k, k))
    subscripts = chain_subscripts(length)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.einsum(subscripts, *[np.exp(x) for x in _operands(theta, psi)], optimize=True)
    log_z = log_partition(theta, psi)
    marginals = np.exp(log_marginals(theta, psi))
    exact_log_z, exact_marginals = brute_force(theta, psi)
    print(f"chain of {length} positions, {k} labels: einsum of the exps gives Z = {naive}")
    print(f"  log Z: logeinsumexp({subscripts!r}) {log_z:.12f}, brute force over {k ** length} "
          f"sequences {exact_log_z:.12f}")
    err_z = abs(log_z - exact_log_z) / abs(exact_log_z)
    err_m = float(np.max(np.abs(marginals - exact_marginals)))
    print(f"  marginals: largest difference {err_m:.1e}, each position's sums to 1 within "
          f"{float(np.max(np.abs(marginals.sum(axis=1) - 1))):.1e}")
    # log Z near 2300 is known to an ulp of 4.5e-13, which the marginals' exps keep as relative errors
    ok = err_z < 1e-15 and err_m < 5e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} brute-force enumeration of all {k ** length} label sequences (log Z relative error "
          f"{err_z:.1e}, marginals {err_m:.1e}; tolerances 1e-15, 5e-12)")
    if plot:
        _plot(marginals, exact_marginals)
    return 0 if ok else 1


def _plot(marginals: NDArray[np.float64], exact: NDArray[np.float64]) -> None:
    """The marginals p(y_t = k) from logeinsumexp, and their difference from brute force."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax_p, ax_d) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    im = ax_p.imshow(marginals.T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax_p.set(xlabel="position t", ylabel="label k", title="p(y_t = k) by logeinsumexp")
    fig.colorbar(im, ax=ax_p)
    im = ax_d.imshow((marginals - exact).T, aspect="auto", cmap="coolwarm")
    ax_d.set(xlabel="position t", ylabel="label k", title="minus brute force")
    fig.colorbar(im, ax=ax_d)


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
