"""The numpy recipes lsearray is timed against: two-pass log-sum-exp and softmax, log1mexp, naive and shifted logmatmulexp, grouped reductions."""
from __future__ import annotations

import numpy as np

__all__ = ["numpy_log1mexp", "numpy_log_softmax", "numpy_naive_logeinsumexp", "numpy_naive_logmatmulexp",
           "numpy_segment_logsumexp", "numpy_segment_softmax", "numpy_shifted_logmatmulexp", "numpy_softmax",
           "numpy_softmax_average", "numpy_two_pass"]


def numpy_two_pass(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """max, then log(sum(exp(a - max))) + max: two reads and two input-sized temporaries."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def numpy_softmax(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """exp(a - max) / sum: the two-pass softmax recipe (finite input)."""
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def numpy_log_softmax(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """a - max - log(sum(exp(a - max))): the two-pass log_softmax recipe (finite input)."""
    s = a - np.max(a, axis=axis, keepdims=True)
    s -= np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    return s


def numpy_naive_logmatmulexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) @ exp(b)): overflows where the entries pass about 709."""
    return np.log(np.exp(a) @ np.exp(b))


def numpy_shifted_logmatmulexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ma + mb + log(exp(a - ma) @ exp(b - mb)), ma the row maxima of a and mb the column maxima of b.

    One shot: it underflows where the maxima of a row and a column sit at different k.
    """
    ma, mb = a.max(-1, keepdims=True), b.max(-2, keepdims=True)
    return ma + mb + np.log(np.exp(a - ma) @ np.exp(b - mb))


def numpy_log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0 by Maechler's switch at -log(2), as users write it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _segment_max(a: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """Each segment's max by ``np.maximum.at``, 0 for an empty one (finite input)."""
    m = np.full(num_segments, -np.inf)
    np.maximum.at(m, ids, a)
    m[~np.isfinite(m)] = 0.0
    return m


def numpy_segment_logsumexp(a: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """m + log(add.at(exp(a - m[ids]))), m the segments' maxima by np.maximum.at (finite input)."""
    m = _segment_max(a, ids, num_segments)
    s = np.zeros(num_segments)
    np.add.at(s, ids, np.exp(a - m[ids]))
    with np.errstate(divide="ignore"):
        return m + np.log(s)


def numpy_segment_softmax(a: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """exp(a - m[ids]) / s[ids], m and s the segments' maxima and sums by ufunc.at (finite input)."""
    m = _segment_max(a, ids, num_segments)
    e = np.exp(a - m[ids])
    s = np.zeros(num_segments)
    np.add.at(s, ids, e)
    e /= s[ids]
    return e


def numpy_softmax_average(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(a) over the last axis as a row times v: (..., L) logits, (..., L, d) values."""
    return (numpy_softmax(a, axis=-1)[..., None, :] @ v)[..., 0, :]


def numpy_naive_logeinsumexp(subscripts: str, *operands: np.ndarray) -> np.ndarray:
    """log(einsum(exp)) along numpy's optimized path: overflows where the sums pass about e^709."""
    return np.log(np.einsum(subscripts, *(np.exp(x) for x in operands), optimize=True))
