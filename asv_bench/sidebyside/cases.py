"""The timed inputs: one `Case` per table row, grouped as ``--cases`` names them."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .options import CASE_GROUPS

__all__ = ["GROUPED", "RELATIVES", "SCIPY_KINDS", "SMALL_N", "SMALL_ROWS", "Case", "make_cases"]

SMALL_N = 10
SMALL_ROWS = (64, 10)  # a training step's logits: a batch of rows, a few classes each
SCIPY_KINDS = ("logsumexp", "softmax", "log_softmax")
RELATIVES = ("logaddexp", "logdiffexp", "log1mexp", "logcumsumexp", "logmatmulexp")
# The grouped and mergeable reductions, each timed against the numpy (and torch) recipe.
GROUPED = ("segment_logsumexp", "segment_softmax", "softmax_average", "logeinsumexp")
# A segment of the grouped cases holds this many elements on average.
SEGMENT_SIZE = 100
# The chain of logeinsumexp's case.
EINSUM_CHAIN = "ij,jk,kl->il"


@dataclass(frozen=True)
class Case:
    """One row of a table: ``kind`` (a name in SCIPY_KINDS, RELATIVES or GROUPED) of ``a`` over
    ``axis``.

    ``b`` is the second operand of logaddexp and logmatmulexp, the segment ids of the segment
    reductions, the values of softmax_average; logeinsumexp's operands are ``a``'s first
    axis (EINSUM_CHAIN). ``library`` is whose arrays
    the call takes: "numpy", or "torch" (a tensor sharing ``a``'s memory) or "jax" (a device
    copy, the calls jitted), timed against that library's own function.
    """
    group: str
    label: str
    kind: str
    a: np.ndarray
    axis: int | None
    b: np.ndarray | None = None
    library: str = "numpy"

    @property
    def nbytes(self) -> int:
        """Bytes of the operands."""
        return self.a.nbytes + (0 if self.b is None else self.b.nbytes)


def make_cases(n: int, groups: Iterable[str], seed: int = 12345) -> list[Case]:
    """The selected cases; every 2-D array is a C-order view of the 1-D data (no copies)."""
    rng = np.random.default_rng(seed)
    x64 = rng.standard_normal(n) * 10.0
    x32 = x64.astype(np.float32)
    rows, short = n // 1000, n // 20
    x2d = x64[: rows * 1000].reshape(rows, 1000)
    x2d32 = x32[: rows * 1000].reshape(rows, 1000)
    small = rng.standard_normal(SMALL_N) * 10.0
    half, m = n // 2, math.isqrt(n // 5)
    rows_small = rng.standard_normal(SMALL_ROWS) * 10.0
    scan = x64[: 1000 * max(1, n // 2000)].reshape(1000, -1)
    left, right = x64[: m * m].reshape(m, m), x64[m * m: 2 * m * m].reshape(m, m)
    segments = max(1, half // SEGMENT_SIZE)
    ids = rng.integers(0, segments, half)
    heads = max(1, n // 16000)  # softmax_average: (heads, 1000) logits, 16 features a value
    chain = np.stack([x64[k * (m // 2) ** 2: (k + 1) * (m // 2) ** 2].reshape(m // 2, m // 2)
                      for k in range(3)])
    by_group = {
        "1d": [Case("1d", f"1-D float64 n={n:.3g}", "logsumexp", x64, None),
               Case("1d", f"1-D float32 n={n:.3g}", "logsumexp", x32, None)],
        "2d": [Case("2d", f"2-D float64 ({rows}, 1000) axis=1", "logsumexp", x2d, 1),
               Case("2d", f"2-D float64 ({rows}, 1000) axis=0", "logsumexp", x2d, 0)],
        "short": [Case("short", f"short rows float64 ({short}, 10) axis=1", "logsumexp",
                       x64[: short * 10].reshape(short, 10), 1)],
        "tall": [Case("tall", f"tall float64 (10, {short}) axis=0", "logsumexp",
                      x64[: short * 10].reshape(10, short), 0)],
        "softmax": [Case("softmax", f"{kind} {a.dtype} ({rows}, 1000) axis=1", kind, a, 1)
                    for kind in ("softmax", "log_softmax") for a in (x2d, x2d32)],
        "small": [Case("small", f"logsumexp float64 n={SMALL_N}", "logsumexp", small, None),
                  Case("small", f"softmax float64 n={SMALL_N}", "softmax", small, None)],
        "relatives": [
            Case("relatives", f"logaddexp float64 n={half:.3g}", "logaddexp", x64[:half], None,
                 x64[half: 2 * half]),
            Case("relatives", f"logdiffexp float64 n={half:.3g}", "logdiffexp",
                 np.maximum(x64[:half], x64[half: 2 * half]), None,
                 np.minimum(x64[:half], x64[half: 2 * half])),
            Case("relatives", f"log1mexp float64 n={half:.3g}", "log1mexp", -np.abs(x64[:half]), None),
            Case("relatives", f"logcumsumexp 1-D float64 n={half:.3g}", "logcumsumexp", x64[:half], 0),
            *(Case("relatives", f"logcumsumexp float64 {scan.shape} axis={axis}", "logcumsumexp", scan,
                   axis) for axis in (0, 1)),
            Case("relatives", f"logmatmulexp float64 {left.shape} @ {right.shape}", "logmatmulexp", left,
                 None, right)],
        "grouped": [
            Case("grouped", f"segment_logsumexp float64 n={half:.3g} into {segments:.3g} segments",
                 "segment_logsumexp", x64[:half], 0, ids),
            Case("grouped", f"segment_logsumexp float64 n={half:.3g}, sorted ids",
                 "segment_logsumexp", x64[:half], 0, np.sort(ids)),
            Case("grouped", f"segment_softmax float64 n={half:.3g} into {segments:.3g} segments",
                 "segment_softmax", x64[:half], 0, ids),
            Case("grouped", f"softmax_average float64 ({heads}, 1000) x 16 features",
                 "softmax_average", x64[: heads * 1000].reshape(heads, 1000), 1,
                 x64[: heads * 16000].reshape(heads, 1000, 16)),
            Case("grouped", f"logeinsumexp float64 {EINSUM_CHAIN} of {chain.shape[1:]}", "logeinsumexp",
                 chain, None)],
        "torch": [Case("torch", f"torch 1-D float64 n={n:.3g}", "logsumexp", x64, None, library="torch"),
                  Case("torch", f"torch ({rows}, 1000) axis=1", "logsumexp", x2d, 1, library="torch"),
                  Case("torch", f"torch softmax ({rows}, 1000) axis=1", "softmax", x2d, 1,
                       library="torch"),
                  Case("torch", f"torch {SMALL_ROWS} axis=1", "logsumexp", rows_small, 1,
                       library="torch")],
        "jax": [Case("jax", f"jax.jit 1-D float64 n={n:.3g}", "logsumexp", x64, None, library="jax"),
                Case("jax", f"jax.jit ({rows}, 1000) axis=1", "logsumexp", x2d, 1, library="jax"),
                Case("jax", f"jax.jit softmax ({rows}, 1000) axis=1", "softmax", x2d, 1,
                     library="jax")],
    }
    return [case for g in CASE_GROUPS if g in groups for case in by_group[g]]
