"""
Phylogenetics: Felsenstein's pruning algorithm in log space
===========================================================

Phylogenetic likelihood by Felsenstein's pruning algorithm in log space, on a small and a large tree.

The likelihood of an alignment of DNA sequences at the leaves of a tree, under the Jukes-Cantor model of
substitution, sums over the unknown bases at every internal node. Felsenstein's pruning algorithm does it
from the leaves up: the partial likelihood of a node is the product, over its children, of
``P(t_child) @ partial(child)``, where P(t) is the 4 x 4 substitution matrix of a branch of length t,
and the likelihood of a site is ``sum(pi * partial(root))``.

On a tree with hundreds of leaves the partials underflow, which is why implementations rescale them at
every node and carry the logs of the scale factors. Kept in log space the rescaling is exact and
automatic: a node's log partial is the sum over its children of
``lsearray.logmatmulexp(log_partial(child), log P(t_child).T)`` (sites are rows), a leaf's is 0 for the
observed base and -inf for the others, and the site log-likelihood is
``lsearray.logsumexp(log_partial(root), axis=-1, b=pi)``.

Checked against direct summation over all 4**4 assignments of bases to the internal nodes of a
five-leaf tree, and against the classic rescaled pruning in probability space on a balanced tree with
1024 leaves, whose site likelihoods (about e**-1400) are zero in float64. The figure shows those site
log-likelihoods beside the smallest float64, and how the likelihood of a site falls with the size of
the tree.

Run: ``python examples/felsenstein_pruning.py``
"""

from __future__ import annotations

import itertools
import math
import sys
from typing import Union

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["Tree", "balanced_tree", "jukes_cantor", "leaf_log_partials", "log_likelihood", "main",
           "site_log_likelihoods", "simulate"]

# A tree is a leaf name or a tuple of (subtree, branch length) pairs.
Tree = Union[str, tuple[tuple["Tree", float], ...]]

BASES = "ACGT"
PI = np.full(4, 0.25)
# ((A:0.1,B:0.2):0.05,(C:0.3,(D:0.1,E:0.15):0.2):0.1); in Newick notation.
FIVE_LEAVES: Tree = (((("A", 0.1), ("B", 0.2)), 0.05),
                     ((("C", 0.3), ((("D", 0.1), ("E", 0.15)), 0.2)), 0.1))


def jukes_cantor(t: float) -> NDArray[np.float64]:
    """The Jukes-Cantor substitution matrix P(t) for a branch of t expected substitutions per site."""
    change = -0.25 * math.expm1(-4.0 * t / 3.0)
    return np.full((4, 4), change) + np.eye(4) * (1.0 - 4.0 * change)


def leaf_log_partials(sequence: str) -> NDArray[np.float64]:
    """Log partials of a leaf, shape (sites, 4): 0 at the observed base, -inf elsewhere; 0 for a gap."""
    log_partial = np.full((len(sequence), 4), -np.inf)
    for site, base in enumerate(sequence):
        if base in BASES:
            log_partial[site, BASES.index(base)] = 0.0
        else:
            log_partial[site] = 0.0
    return log_partial


def _log_partials(tree: Tree, alignment: dict[str, str]) -> NDArray[np.float64]:
    """Log partial likelihoods of a subtree's root, shape (sites, 4)."""
    if isinstance(tree, str):
        return leaf_log_partials(alignment[tree])
    log_partial = 0.0
    for child, t in tree:
        log_partial = log_partial + lsearray.logmatmulexp(_log_partials(child, alignment),
                                                          np.log(jukes_cantor(t)).T)
    return log_partial


def site_log_likelihoods(tree: Tree, alignment: dict[str, str]) -> NDArray[np.float64]:
    """``log p(site)`` for every column of the alignment (leaf name -> sequence)."""
    return lsearray.logsumexp(_log_partials(tree, alignment), axis=-1, b=PI)


def log_likelihood(tree: Tree, alignment: dict[str, str]) -> float:
    """The log-likelihood of the whole alignment: sites are independent."""
    return float(np.sum(site_log_likelihoods(tree, alignment)))


def balanced_tree(leaves: int, t: float, prefix: str = "L") -> Tree:
    """A balanced binary tree with the given number of leaves (a power of 2) and every branch of length t."""
    if leaves == 1:
        return prefix
    half = leaves // 2
    return ((balanced_tree(half, t, prefix + "0"), t), (balanced_tree(half, t, prefix + "1"), t))


def simulate(tree: Tree, sites: int, rng: np.random.Generator) -> dict[str, str]:
    """An alignment evolved down the tree from a uniformly random root sequence."""
    alignment: dict[str, str] = {}

    def evolve(node: Tree, states: NDArray[np.intp]) -> None:
        if isinstance(node, str):
            alignment[node] = "".join(BASES[s] for s in states)
            return
        for child, t in node:
            cdf = np.cumsum(jukes_cantor(t), axis=1)[states]
            evolve(child, np.minimum((cdf < rng.uniform(size=(sites, 1))).sum(axis=1), 3))

    evolve(tree, rng.integers(0, 4, sites))
    return alignment


def _edges(tree: Tree) -> tuple[int, list[tuple[int, Union[int, str], float]]]:
    """Number the internal nodes (root = 0) and list the edges as (parent, child node or leaf name, t)."""
    edges: list[tuple[int, Union[int, str], float]] = []
    count = 1

    def walk(node: tuple[tuple[Tree, float], ...], number: int) -> None:
        nonlocal count
        for child, t in node:
            if isinstance(child, str):
                edges.append((number, child, t))
            else:
                edges.append((number, count, t))
                count += 1
                walk(child, count - 1)

    walk(tree, 0)
    return count, edges


def _direct_sum(tree: Tree, alignment: dict[str, str]) -> NDArray[np.float64]:
    """Site likelihoods summed directly over every assignment of bases to the internal nodes."""
    internal, edges = _edges(tree)
    observed = {name: np.array([BASES.index(b) for b in seq]) for name, seq in alignment.items()}
    total = np.zeros(len(next(iter(alignment.values()))))
    for states in itertools.product(range(4), repeat=internal):
        prob = np.full(total.shape, PI[states[0]])
        for parent, child, t in edges:
            child_state = observed[child] if isinstance(child, str) else states[child]
            prob = prob * jukes_cantor(t)[states[parent], child_state]
        total += prob
    return total


def _rescaled_pruning(tree: Tree, alignment: dict[str, str]) -> float:
    """The classic pruning in probability space, dividing each node's partials by their max per site."""
    def prune(node: Tree) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if isinstance(node, str):
            return np.exp(leaf_log_partials(alignment[node])), np.zeros(len(alignment[node]))
        partial, log_scale = 1.0, 0.0
        for child, t in node:
            child_partial, child_scale = prune(child)
            partial = partial * (child_partial @ jukes_cantor(t).T)
            log_scale = log_scale + child_scale
        scale = partial.max(axis=1)
        return partial / scale[:, None], log_scale + np.log(scale)

    partial, log_scale = prune(tree)
    return float(np.sum(np.log(partial @ PI) + log_scale))


def main(plot: bool = False) -> int:
    """Print both trees' log-likelihoods beside their references; return 1 if they disagree.

    With ``plot``, also draw the figure (when matplotlib is installed).
    """
    rng = np.random.default_rng(7)
    small = simulate(FIVE_LEAVES, 12, rng)
    ours = site_log_likelihoods(FIVE_LEAVES, small)
    direct = np.log(_direct_sum(FIVE_LEAVES, small))
    small_err = float(np.max(np.abs(ours - direct)))
    print("five leaves, 12 sites:", " ".join(f"{name}={seq}" for name, seq in small.items()))
    print(f"  log-likelihood: pruning in log space {ours.sum():.12f}, direct sum over 256 assignments "
          f"{direct.sum():.12f}")

    big_tree = balanced_tree(1024, 0.5)
    big = simulate(big_tree, 200, rng)
    ours_big = log_likelihood(big_tree, big)
    rescaled = _rescaled_pruning(big_tree, big)
    big_err = abs(ours_big - rescaled) / abs(rescaled)
    with np.errstate(under="ignore"):
        largest = float(np.exp(site_log_likelihoods(big_tree, big)).max())
    print(f"1024 leaves, 200 sites: largest site likelihood in float64 {largest}")
    print(f"  log-likelihood: pruning in log space {ours_big:.8f}, rescaled pruning {rescaled:.8f}")

    ok = small_err < 1e-12 and big_err < 1e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} direct summation over ancestral states (site error {small_err:.1e}) and rescaled "
          f"pruning (relative error {big_err:.1e}); tolerance 1e-12")
    if plot:
        _plot(site_log_likelihoods(big_tree, big))
    return 0 if ok else 1


def _plot(big_sites: NDArray[np.float64]) -> None:
    """The 1024-leaf tree's site log-likelihoods, and the mean site log-likelihood against the leaves."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    smallest = math.log(np.nextafter(0.0, 1.0))  # log of the smallest positive float64, about -744.4
    rng = np.random.default_rng(12)
    leaves = 2 ** np.arange(1, 11)
    means = [np.mean(site_log_likelihoods(tree, simulate(tree, 200, rng)))
             for tree in (balanced_tree(int(n), 0.5) for n in leaves)]
    fig, (ax_h, ax_n) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ax_h.hist(big_sites, bins=20, color="C0")
    ax_h.set(xlabel="log p(site) = logsumexp(log partial(root), b=pi)", ylabel="sites",
             title=f"{len(big_sites)} sites of a 1024-leaf tree")
    ax_h.annotate(f"every site below {smallest:.1f},\nthe log of the smallest float64:\n"
                  f"exp(log p) is 0 for all {len(big_sites)}", (0.03, 0.97), xycoords="axes fraction",
                  va="top", fontsize="small")
    ax_h.set_ylim(top=1.35 * ax_h.get_ylim()[1])
    ax_n.semilogx(leaves, means, "o-", base=2, label="mean log p(site), pruning in log space")
    ax_n.axhline(smallest, color="C3", ls="--", label="log of the smallest float64")
    ax_n.fill_between(leaves, smallest, min(means) * 1.1, color="C3", alpha=0.1,
                      label="a site likelihood of 0 in float64")
    ax_n.set(xlabel="leaves (balanced tree, branches of length 0.5)", ylabel="mean log p(site)",
             title="Site likelihoods underflow as the tree grows")
    ax_n.legend(fontsize="small", loc="lower left")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
