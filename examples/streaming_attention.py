r"""
Streaming attention: a long sequence read in chunks by several workers, merged exactly
=======================================================================================

One query attending over 6000 keys whose logits reach about 900, read as 24 chunks.

Attention's readout for a query is ``sum_i softmax(s)_i v_i`` with logits ``s_i = q . k_i / sqrt(d)``.
Over a long sequence the keys and values arrive in chunks, or live on several workers; flash attention
keeps per chunk only the state ``(m, l, o)``: the max logit, the sum of ``exp(s_i - m)`` and the sum of
``exp(s_i - m) v_i``, and merges two states by rescaling the one of the smaller max by ``exp(m_old -
m_new)``. ``lsearray.OnlineSoftmaxAverage`` is that state: here four workers each take six chunks in a
shuffled order, and their states merge in a tree. The logits reach about 900, so ``exp(s)`` would overflow
float64 in the textbook normalization.

Checked against `scipy.special.softmax` of the whole row of logits followed by an exactly rounded sum
(``math.fsum``) of the weighted values, and against the one-shot ``lsearray.softmax_average``.

Run: ``python examples/streaming_attention.py``
"""

from __future__ import annotations

import math
import sys

import numpy as np
from scipy.special import softmax as scipy_softmax

import lsearray

D_KEY, D_VALUE, LENGTH, CHUNKS, WORKERS = 64, 16, 6000, 24, 4


def main() -> int:
    """Stream, merge and compare; 1 if the merged readout disagrees with the references."""
    rng = np.random.default_rng(5)
    q = rng.normal(size=D_KEY) * 25
    keys = rng.normal(size=(LENGTH, D_KEY)) * 10
    values = rng.normal(size=(LENGTH, D_VALUE))
    logits = keys @ q / math.sqrt(D_KEY)

    bounds = np.linspace(0, LENGTH, CHUNKS + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:]))
    order = rng.permutation(CHUNKS)
    workers = []
    for w in range(WORKERS):
        state = lsearray.OnlineSoftmaxAverage(axis=0)
        for c in order[w::WORKERS]:
            lo, hi = chunks[c]
            state.update(logits[lo:hi], values[lo:hi])  # each chunk read once, then dropped
        workers.append(state)
    left, right = workers[0].merge(workers[1]), workers[2].merge(workers[3])
    lse, readout = left.merge(right).result()

    weights = scipy_softmax(logits)
    reference = np.array([math.fsum(weights * values[:, j]) for j in range(D_VALUE)])
    one_shot = lsearray.softmax_average(logits, values, axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits) @ values / np.exp(logits).sum()
    print(f"max logit {logits.max():.1f}, log-sum-exp {lse:.12f}; textbook normalization gives "
          f"{np.count_nonzero(np.isnan(naive))} nan of {D_VALUE}")
    error = float(np.max(np.abs(readout - reference)) / np.max(np.abs(reference)))
    error_one_shot = float(np.max(np.abs(readout - one_shot)) / np.max(np.abs(one_shot)))
    ok = error < 1e-12 and error_one_shot < 1e-13
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} scipy's softmax and an exactly rounded sum (relative error {error:.1e}, tolerance "
          f"1e-12) and the one-shot softmax_average ({error_one_shot:.1e}, tolerance 1e-13)")
    return 0 if ok else 1


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main():
        sys.exit(1)
