r"""
Contrastive losses: softmax cross-entropy and InfoNCE at any scale
==================================================================

Softmax cross-entropy and the InfoNCE contrastive loss over a batch, stable at any scale of logits.

A classifier's cross-entropy for logits z (batch x classes) and labels y is the mean over the batch of
-log softmax(z)[y] = logsumexp(z) - z[y]. InfoNCE (van den Oord et al., 2018; the loss of SimCLR and
CLIP) is the same loss on a similarity matrix: with embeddings u_i and v_i of B matching pairs, the
logits are the cosine similarities
:math:`s_{ij} = \langle u_i, v_j \rangle / (\lVert u_i \rVert \lVert v_j \rVert)` at a temperature tau, and
the label of row i is i, its own partner; the symmetric version averages the loss over rows and over columns.

In lsearray the loss is ``lsearray.logsumexp(z, axis=-1, temperature=tau) / tau - z[y] / tau`` and its
gradient with respect to the logits is ``(lsearray.softmax(z, axis=-1, temperature=tau) - onehot(y)) /
(B tau)``. The direct formula -log(exp(z_y / tau) / sum(exp(z / tau))) overflows to nan as soon as a logit
exceeds about 709 tau, which a small temperature makes common.

Checked against the direct formula in float64 on moderate logits, against central finite differences for
the gradient, and against 50-digit decimal arithmetic on logits of order 1e4. The figure shows the loss
against the temperature, where the direct formula breaks down, and the softmax of the similarities.

Run: ``python examples/contrastive_losses.py``
"""

from __future__ import annotations

import decimal
import sys

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["cross_entropy", "cross_entropy_grad", "info_nce", "main", "similarities"]


def cross_entropy(logits: NDArray[np.float64], labels: NDArray[np.intp], temperature: float = 1.0) -> float:
    """Mean over the batch of ``-log softmax(logits / temperature)[label]``."""
    lse = lsearray.logsumexp(logits, axis=-1, temperature=temperature)
    picked = np.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return float(np.mean(lse - picked) / temperature)


def cross_entropy_grad(logits: NDArray[np.float64], labels: NDArray[np.intp],
                       temperature: float = 1.0) -> NDArray[np.float64]:
    """The gradient of `cross_entropy` with respect to the logits: ``(softmax - onehot) / (B tau)``."""
    grad = lsearray.softmax(logits, axis=-1, temperature=temperature)
    grad[np.arange(len(labels)), labels] -= 1.0
    return grad / (len(labels) * temperature)


def similarities(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cosine similarities of every row of u with every row of v, shape (B, B)."""
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return u @ v.T


def info_nce(u: NDArray[np.float64], v: NDArray[np.float64], temperature: float = 0.1,
             symmetric: bool = True) -> float:
    """InfoNCE of matching pairs (u_i, v_i): cross-entropy of the similarity rows (and columns) at tau."""
    s = similarities(u, v)
    labels = np.arange(len(s))
    loss = cross_entropy(s, labels, temperature)
    return (loss + cross_entropy(s.T, labels, temperature)) / 2 if symmetric else loss


def _direct(logits: NDArray[np.float64], labels: NDArray[np.intp], temperature: float) -> float:
    """``mean(-log(exp(z_y / tau) / sum(exp(z / tau))))``, computed as written."""
    e = np.exp(logits / temperature)
    return float(np.mean(-np.log(e[np.arange(len(labels)), labels] / e.sum(axis=1))))


def _decimal(logits: NDArray[np.float64], labels: NDArray[np.intp], temperature: float) -> float:
    """The direct formula in 50-digit decimal arithmetic, whose exponent range does not overflow."""
    with decimal.localcontext() as context:
        context.prec = 50
        tau = decimal.Decimal(temperature)
        total = decimal.Decimal(0)
        for row, label in zip(logits, labels):
            e = [(decimal.Decimal(z) / tau).exp() for z in row]
            total -= (e[label] / sum(e)).ln()
        return float(total / len(labels))


def _finite_difference(logits: NDArray[np.float64], labels: NDArray[np.intp], temperature: float,
                       h: float = 1e-6) -> NDArray[np.float64]:
    """Central differences of the direct formula, one logit at a time."""
    grad = np.empty_like(logits)
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = h
        grad[index] = (_direct(logits + step, labels, temperature)
                       - _direct(logits - step, labels, temperature)) / (2 * h)
    return grad


def main(plot: bool = False) -> int:
    """Print the losses beside the direct formula and decimal arithmetic; return 1 if they disagree.

    With ``plot``, also draw the figure (when matplotlib is installed).
    """
    rng = np.random.default_rng(10)
    logits, labels = rng.normal(0.0, 3.0, (32, 10)), rng.integers(0, 10, 32)
    ce, ce_direct = cross_entropy(logits, labels), _direct(logits, labels, 1.0)
    grad = cross_entropy_grad(logits, labels)
    grad_err = float(np.max(np.abs(grad - _finite_difference(logits, labels, 1.0))))
    print(f"cross-entropy, batch 32 x 10 classes: {ce:.15f} (direct formula {ce_direct:.15f}); "
          f"gradient vs finite differences: max error {grad_err:.1e}")

    u = rng.normal(size=(64, 16))
    v = u + 2.0 * rng.normal(size=u.shape)
    tau = 0.05
    nce = info_nce(u, v, tau)
    s = similarities(u, v)
    nce_direct = (_direct(s, np.arange(64), tau) + _direct(s.T, np.arange(64), tau)) / 2
    print(f"InfoNCE, 64 pairs, tau = {tau}: {nce:.15f} (direct formula {nce_direct:.15f})")

    extreme = rng.normal(0.0, 1e4, (8, 5))
    extreme_labels = rng.integers(0, 5, 8)
    with np.errstate(all="ignore"):
        overflowed = _direct(extreme, extreme_labels, 1.0)
    ce_extreme, ce_decimal = cross_entropy(extreme, extreme_labels), _decimal(extreme, extreme_labels, 1.0)
    print(f"cross-entropy on logits of order 1e4: {ce_extreme:.12f} (decimal {ce_decimal:.12f}, "
          f"direct formula {overflowed})")

    loss_err = max(abs(ce - ce_direct), abs(nce - nce_direct)) / max(ce_direct, nce_direct)
    extreme_err = abs(ce_extreme - ce_decimal) / ce_decimal
    ok = loss_err < 1e-12 and grad_err < 1e-7 and extreme_err < 1e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} the direct formula (relative error {loss_err:.1e}, tolerance 1e-12; gradient "
          f"{grad_err:.1e}, tolerance 1e-7) and decimal arithmetic (relative error {extreme_err:.1e}, "
          f"tolerance 1e-12)")
    if plot:
        _plot(u, v, tau)
    return 0 if ok else 1


def _plot(u: NDArray[np.float64], v: NDArray[np.float64], tau: float) -> None:
    """InfoNCE against the temperature, by lsearray and by the direct formula; the similarities' softmax."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    s, labels = similarities(u, v), np.arange(len(u))
    taus = np.geomspace(1e-4, 1.0, 60)
    ours = [info_nce(u, v, t) for t in taus]
    with np.errstate(all="ignore"):
        direct = np.array([(_direct(s, labels, t) + _direct(s.T, labels, t)) / 2 for t in taus])
    fig, (ax_l, ax_p) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    ax_l.loglog(taus, ours, "C0", lw=2, label="logsumexp(s, temperature=tau) / tau - s_ii / tau")
    finite = np.isfinite(direct)
    ax_l.loglog(taus[finite], direct[finite], "C1x", label="-log(exp(s_ii / tau) / sum exp(s_ij / tau))")
    if not finite.all():
        ax_l.axvspan(taus[0], taus[~finite].max(), color="C1", alpha=0.1, label="direct formula: nan or inf")
    ax_l.set(xlabel="temperature tau", ylabel="symmetric InfoNCE", title=f"InfoNCE of {len(u)} pairs")
    ax_l.legend(fontsize="small")
    image = ax_p.imshow(lsearray.softmax(s, axis=-1, temperature=tau), cmap="viridis")
    fig.colorbar(image, ax=ax_p, shrink=0.8)
    ax_p.set(xlabel="j", ylabel="i", title=f"softmax(s_ij, axis=-1, temperature={tau})")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
