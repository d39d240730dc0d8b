r"""
Ising chain: partition function, free energy and magnetization
==============================================================

Partition function, free energy and magnetization of a periodic Ising chain, in log space.

N spins s_i = +1 or -1 on a ring have the energy and, at temperature kT, the Boltzmann probabilities

.. math::

    E(s) = -J \sum_i s_i s_{i+1} - h \sum_i s_i, \qquad
    p(s) = e^{-E(s)/kT} / Z, \qquad F = -kT \log Z.

Two routes through lsearray:

- enumeration of all 2**N states for small N: F = ``-lsearray.logsumexp(-E, temperature=kT)`` and the
  Boltzmann distribution is ``lsearray.softmax(-E, temperature=kT)``;
- the transfer matrix for any N: Z = trace(T**N) with T[s, s'] = exp((J s s' + h (s + s') / 2) / kT).
  At low temperature or for long chains Z overflows float64 (here e**2000), so the matrix power is
  taken in log space by repeated squaring with ``lsearray.logmatmulexp``, and the trace is
  ``lsearray.logsumexp`` of the diagonal.

Checked against the closed form from the transfer matrix's eigenvalues

.. math::

    \lambda_\pm = e^{J/kT} \left( \cosh(h/kT) \pm \sqrt{\sinh^2(h/kT) + e^{-4J/kT}} \right),
    \qquad \log Z = \log(\lambda_+^N + \lambda_-^N),

and the magnetization per spin that follows from it by differentiating in h. The figure shows the
Boltzmann distribution of the magnetization at three temperatures, and the free energy of a long ring
where Z overflows float64.

Run: ``python examples/ising_chain.py``
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np
from numpy.typing import NDArray

import lsearray

__all__ = ["enumeration_free_energy", "enumeration_magnetization", "free_energy_per_spin",
           "log_matrix_power", "log_transfer_matrix", "main", "states", "transfer_log_partition_function"]


def log_transfer_matrix(J: float, h: float, kT: float) -> NDArray[np.float64]:
    """``log T[s, s'] = (J s s' + h (s + s') / 2) / kT`` for s, s' in (+1, -1)."""
    s = np.array([1.0, -1.0])
    return (J * np.outer(s, s) + h * (s[:, None] + s[None, :]) / 2) / kT


def log_matrix_power(log_m: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``log(exp(log_m) ** n)`` (the n-th matrix power) by repeated squaring with logmatmulexp."""
    result = np.where(np.eye(len(log_m), dtype=bool), 0.0, -np.inf)
    square = log_m
    while n:
        if n & 1:
            result = lsearray.logmatmulexp(result, square)
        n >>= 1
        if n:
            square = lsearray.logmatmulexp(square, square)
    return result


def transfer_log_partition_function(n: int, J: float, h: float, kT: float) -> float:
    """``log Z = log trace(T**n)`` of a ring of n spins."""
    return float(lsearray.logsumexp(np.diagonal(log_matrix_power(log_transfer_matrix(J, h, kT), n))))


def free_energy_per_spin(log_z: float, n: int, kT: float) -> float:
    """``F / n = -kT log Z / n``."""
    return -kT * log_z / n


def states(n: int, J: float, h: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Energies and total magnetizations of all 2**n configurations of a ring of n spins."""
    s = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
    energy = -J * np.sum(s * np.roll(s, -1, axis=1), axis=1) - h * s.sum(axis=1)
    return energy, s.sum(axis=1)


def enumeration_free_energy(n: int, J: float, h: float, kT: float) -> float:
    """``F = -kT log sum_s exp(-E(s) / kT)`` over all 2**n states: a logsumexp at temperature kT."""
    energy, _ = states(n, J, h)
    return -float(lsearray.logsumexp(-energy, temperature=kT))


def enumeration_magnetization(n: int, J: float, h: float, kT: float) -> float:
    """Mean magnetization per spin under the Boltzmann distribution ``softmax(-E, temperature=kT)``."""
    energy, magnetization = states(n, J, h)
    return float(lsearray.softmax(-energy, temperature=kT) @ magnetization) / n


def _closed_form(n: int, J: float, h: float, kT: float) -> tuple[float, float]:
    """log Z and the magnetization per spin from the eigenvalues of the transfer matrix."""
    x = h / kT
    r = math.sqrt(math.sinh(x) ** 2 + math.exp(-4 * J / kT))
    ratio_n = ((math.cosh(x) - r) / (math.cosh(x) + r)) ** n  # (lambda_- / lambda_+)**n
    log_z = n * (J / kT + math.log(math.cosh(x) + r)) + math.log1p(ratio_n)
    return log_z, math.sinh(x) / r * (1 - ratio_n) / (1 + ratio_n)


def main(plot: bool = False) -> int:
    """Print the free energies and magnetization beside the closed form; return 1 if they disagree.

    With ``plot``, also draw the figures (when matplotlib is installed).
    """
    n, J, h, kT = 16, 1.0, 0.3, 1.5
    exact_log_z, exact_m = _closed_form(n, J, h, kT)
    exact_f = free_energy_per_spin(exact_log_z, n, kT)
    transfer_f = free_energy_per_spin(transfer_log_partition_function(n, J, h, kT), n, kT)
    enumerated_f = enumeration_free_energy(n, J, h, kT) / n
    m = enumeration_magnetization(n, J, h, kT)
    print(f"ring of {n} spins, J = {J}, h = {h}, kT = {kT}:")
    print(f"  free energy per spin: transfer matrix {transfer_f:.15f}, enumeration of {2**n} states "
          f"{enumerated_f:.15f}, eigenvalues {exact_f:.15f}")
    print(f"  magnetization per spin: Boltzmann softmax {m:.15f}, eigenvalues {exact_m:.15f}")

    n_big, h_big, kT_cold = 500, 0.0, 0.25
    exact_big, _ = _closed_form(n_big, J, h_big, kT_cold)
    transfer_big = transfer_log_partition_function(n_big, J, h_big, kT_cold)
    # The naive product overflows; some BLAS kernels then also meet inf * 0 (invalid).
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.trace(np.linalg.matrix_power(np.exp(log_transfer_matrix(J, h_big, kT_cold)), n_big))
    print(f"ring of {n_big} spins, h = {h_big}, kT = {kT_cold}: Z in float64 is {naive}")
    print(f"  log Z: transfer matrix in log space {transfer_big:.10f}, eigenvalues {exact_big:.10f}")

    err = max(abs(transfer_f - exact_f), abs(enumerated_f - exact_f), abs(m - exact_m),
              abs(transfer_big - exact_big) / exact_big)
    ok = err < 1e-12
    verdict = "agrees with" if ok else "DISAGREES with"
    print(f"{verdict} the exact transfer-matrix eigenvalues (largest error {err:.1e}, tolerance 1e-12)")
    if plot:
        _plot(n, J, h, n_big)
    return 0 if ok else 1


def _plot(n: int, J: float, h: float, n_big: int) -> None:
    """The Boltzmann distribution of the magnetization at three temperatures (enumeration), and the
    free energy per spin of a long ring against the temperature (transfer matrix in log space)."""
    try:  # matplotlib is optional: without it the script only prints its check
        import matplotlib.pyplot as plt
    except ImportError:
        return
    energy, magnetization = states(n, J, h)
    fig, (ax_m, ax_f) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    bins = np.arange(-n, n + 1, 2)
    for kT in (0.5, 1.5, 5.0):
        p = lsearray.softmax(-energy, temperature=kT)
        ax_m.plot(bins / n, np.bincount(((magnetization + n) // 2).astype(int), weights=p), "o-", ms=3,
                  label=f"kT = {kT}")
    ax_m.set(xlabel="magnetization per spin", ylabel="probability",
             title=f"softmax(-E, temperature=kT) over 2**{n} states, h = {h}")
    ax_m.legend()

    temperatures = np.geomspace(0.1, 10.0, 60)
    exact = [free_energy_per_spin(_closed_form(n_big, J, 0.0, kT)[0], n_big, kT) for kT in temperatures]
    ours = [free_energy_per_spin(transfer_log_partition_function(n_big, J, 0.0, kT), n_big, kT)
            for kT in temperatures]
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.array([-kT * np.log(np.trace(np.linalg.matrix_power(
            np.exp(log_transfer_matrix(J, 0.0, kT)), n_big))) / n_big for kT in temperatures])
    ax_f.semilogx(temperatures, exact, "k-", lw=3, alpha=0.3, label="eigenvalues (closed form)")
    ax_f.semilogx(temperatures, ours, "C0.", label="transfer matrix, logmatmulexp")
    finite = np.isfinite(naive)
    ax_f.semilogx(temperatures[finite], naive[finite], "C1x", label="transfer matrix in float64")
    ax_f.axvspan(temperatures[0], temperatures[finite][0], color="C1", alpha=0.1,
                 label="float64 Z overflows")
    ax_f.set(xlabel="kT", ylabel="free energy per spin", title=f"Ring of {n_big} spins, h = 0")
    ax_f.legend(fontsize="small")


if __name__ == "__main__":
    # A failed check exits with status 1; a passing one ends normally (no sys.exit(0), which would
    # also end a documentation build that runs the script in its own process).
    if main(plot=True):
        sys.exit(1)
