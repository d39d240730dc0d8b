r"""
Graph attention: each node's incoming edges normalized by a segment softmax
===========================================================================

A random directed graph of 200 nodes and 3000 edges, listed in no order, with attention scores
reaching about 850.

A graph attention layer (GAT) scores every edge ``j -> i`` and normalizes the scores over the
edges into each node ``i``: ``alpha_ji = softmax_{j in N(i)}(e_ji)``, then averages the
neighbours' features with those weights. The edges come as a flat list with the target node of
each; ``lsearray.segment_softmax(e, target)`` normalizes within each target's edges in one call
(as PyG's ``softmax(src, index)``), shifting each node's scores by their own max, so scores near
850 do not overflow ``exp``. ``lsearray.segment_logsumexp`` gives each node's normalizer; a node
with no incoming edge gets ``-inf`` there.

Checked against a loop over the nodes that gathers each node's edges and normalizes them by
`scipy.special.softmax`, with the normalizer an exactly rounded sum (``math.fsum``) of the shifted
exponentials.

Run: ``python examples/graph_attention.py``
"""

from __future__ import annotations

import math
import sys

import numpy as np
from scipy.special import softmax as scipy_softmax

import lsearray

NODES, EDGES, FEATURES = 200, 3000, 8


def main() -> int:
    """Normalize, aggregate and compare; 1 if the attention disagrees with the per-node loop."""
    rng = np.random.default_rng(11)
    source = rng.integers(0, NODES, size=EDGES)
    target = rng.integers(0, NODES - 5, size=EDGES)  # the last five nodes have no incoming edge
    h = rng.normal(size=(NODES, FEATURES))
    w_att = rng.normal(size=2 * FEATURES) * 50
    scores = np.concatenate([h[target], h[source]], axis=1) @ w_att  # e_ji, one per edge
    scores = np.where(scores > 0, scores, 0.2 * scores)  # GAT's leaky ReLU

    alpha = lsearray.segment_softmax(scores, target, NODES)
    normalizer = lsearray.segment_logsumexp(scores, target, NODES)
    out = np.zeros((NODES, FEATURES))
    np.add.at(out, target, alpha[:, None] * h[source])  # the weighted sum of each node's neighbours

    alpha_ref = np.empty(EDGES)
    normalizer_ref = np.full(NODES, -math.inf)
    for i in range(NODES):
        edges = np.flatnonzero(target == i)
        if edges.size:
            alpha_ref[edges] = scipy_softmax(scores[edges])
            m = scores[edges].max()
            normalizer_ref[i] = m + math.log(math.fsum(np.exp(scores[edges] - m)))
    out_ref = np.array([alpha_ref[target == i] @ h[source[target == i]] if np.any(target == i)
                        else np.zeros(FEATURES) for i in range(NODES)])

    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(scores) / np.bincount(target, np.exp(scores), NODES)[target]
    print(f"max score {scores.max():.1f}; the textbook exp / sum gives "
          f"{np.count_nonzero(np.isnan(naive))} nan of {EDGES} coefficients")
    error = float(np.max(np.abs(alpha - alpha_ref)))
    error_lse = float(np.max(np.abs(normalizer[:-5] - normalizer_ref[:-5]) / np.abs(normalizer_ref[:-5])))
    error_out = float(np.max(np.abs(out - out_ref)))
    sums = np.bincount(target, alpha, NODES)[:-5]
    ok = (error < 1e-14 and error_lse < 1e-14 and error_out < 1e-12
          and bool(np.all(np.isneginf(normalizer[-5:]))) and float(np.max(np.abs(sums - 1))) < 1e-13)
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} a per-node loop of scipy's softmax (coefficients within {error:.1e}, tolerance "
          f"1e-14; normalizers {error_lse:.1e}, aggregated features {error_out:.1e}); nodes without "
          f"incoming edges have normalizer -inf")
    return 0 if ok else 1


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main():
        sys.exit(1)
