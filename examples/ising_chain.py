"""Partition function, free energy and magnetization of a periodic Ising chain, in log space.

N spins s_i = +1 or -1 on a ring have the energy E(s) = -J sum_i s_i s_(i+1) - h sum_i s_i and, at
temperature kT, the Boltzmann probabilities exp(-E(s) / kT) / Z. The free energy is F = -kT log Z.

Two routes through lsearray:

- enumeration of all 2**N states for small N: F = ``-lsearray.logsumexp(-E, temperature=kT)`` and the
  Boltzmann distribution is ``lsearray.softmax(-E, temperature=kT)``;
- the transfer matrix for any N: Z = trace(T**N) with T[s, s'] = exp((J s s' + h (s + s') / 2) / kT).
  At low temperature or for long chains Z overflows float64 (here e**2000), so the matrix power is
  taken in log space by repeated squaring with ``lsearray.logmatmulexp``, and the trace is
  ``lsearray.logsumexp`` of the diagonal.

Checked against the closed form from the transfer matrix's eigenvalues
lambda_(+/-) = e**(J/kT) (cosh(h/kT) +/- sqrt(sinh(h/kT)**2 + e**(-4J/kT))), log Z = log(lambda_+**N +
lambda_-**N), and the magnetization per spin that follows from it by differentiating in h.

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


def main() -> int:
    """Print the free energies and magnetization beside the closed form; return 1 if they disagree."""
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
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
