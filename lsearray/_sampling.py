"""Sampling by the Gumbel-max trick: categorical draws, with or without replacement, and Gumbel-softmax."""

from __future__ import annotations

import math
import operator
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of

from lsearray._delegation import Executor, executor
from lsearray._executors.array_api_lse import finite_or_zero
from lsearray._executors.random import is_seed
from lsearray._softmax import softmax
from lsearray._validation import bad_axis, flag, temperature_value

__all__ = ["categorical", "gumbel_softmax", "gumbel_topk"]


def _floating(logits: Any, axis: Any, func: str) -> tuple[Any, Executor, Any, int]:
    """``(x, ex, dtype, ax)``: the logits as a real floating array of their namespace
    (float64 for NumPy input, float32 for float16/bfloat16 elsewhere), the executor that
    computes on it, the dtype of a floating result and the normalized axis of the
    categories."""
    x, ex, dtype = executor(logits, func=func).real_floating(logits, "logits", func)
    if x.ndim == 0:
        raise ValueError(f"{func}: logits must have at least one axis (the categories); got a 0-d array")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise bad_axis(func, axis, "an integer") from None
    # numpy's normalize_axis_index, in Python that torch.compile traces
    if not -x.ndim <= ax < x.ndim:
        raise np.exceptions.AxisError(ax, x.ndim)
    return x, ex, dtype, ax % x.ndim


def _first(mask: Any, xp: ModuleType) -> tuple[int, ...]:
    """The index of the first True element of ``mask`` (C order)."""
    i = int(xp.argmax(xp.reshape(xp.astype(mask, xp.int8), (-1,))))
    return tuple(int(k) for k in np.unravel_index(i, tuple(mask.shape)))


def _check_slices(x: Any, ax: int, axis: Any, xp: ModuleType, func: str = "categorical",
                  draws: int = 1) -> None:
    """ValueError for nan logits, or a slice with fewer than ``draws`` categories of positive
    probability (``draws`` distinct ones are drawn from each slice)."""
    nan = xp.any(xp.isnan(x), axis=ax)
    dead = xp.all(x == -math.inf, axis=ax)
    if draws > 1:
        few = _positive(x, ax, xp) < draws
    else:
        few = dead
    if not bool(xp.any(nan | few)):
        return
    bad = nan if bool(xp.any(nan)) else few
    index = _first(bad, xp)
    if bad is nan:
        what = "contain nan"
    elif bool(dead[index] if index else dead):
        what = "are all -inf: no category has positive probability"
    else:
        count = int(_positive(x, ax, xp)[index] if index else _positive(x, ax, xp))
        noun = "category" if count == 1 else "categories"
        what = (f"have {count} {noun} of positive probability (not -inf; only the +inf ones "
                f"where there are some), fewer than the {draws} draws without replacement")
    where = f"logits row {index}" if index else "logits"
    raise ValueError(f"{func}: {where} along axis {axis} {what}")


def _positive(x: Any, ax: int, xp: ModuleType) -> Any:
    """The number of categories of positive probability along ``ax``: those above -inf, or
    the +inf ones where a slice holds some (the others then have probability 0)."""
    # the default integer dtype: int64 may be missing (JAX without 64-bit types)
    integral = xp.__array_namespace_info__().default_dtypes(device=device_of(x))["integral"]
    count = lambda mask: xp.sum(xp.astype(mask, integral), axis=ax)  # noqa: E731
    return xp.where(xp.any(x == math.inf, axis=ax), count(x == math.inf), count(x > -math.inf))


def _result_shape(shape: Any, batch: tuple[int, ...], logits_shape: tuple[int, ...], axis: Any) -> tuple:
    """``shape`` as a tuple, checked: the logits' batch shape must broadcast to it."""
    if shape is None:
        return batch
    shape = (operator.index(shape),) if is_seed(shape) else tuple(operator.index(n) for n in shape)
    try:
        ok = min(shape, default=0) >= 0 and np.broadcast_shapes(batch, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"categorical: shape {shape} is not broadcast-compatible with the logits: logits of shape "
            f"{logits_shape} without axis {axis} have shape {batch}, which does not broadcast to {shape}"
        )
    return shape


def _minus_max(x: Any, ax: int, xp: ModuleType) -> Any:
    """``x`` minus its max along ``ax``: the max's elements 0, so Gumbel noise added to them
    keeps its precision; where the max is +inf, the +inf elements 0 and the others -inf."""
    m = xp.max(x, axis=ax, keepdims=True)
    shifted = x - finite_or_zero(m, xp)
    top = xp.where(x == m, xp.zeros_like(x), xp.full_like(x, -math.inf))
    return xp.where(m == math.inf, top, shifted)


def categorical(logits: Any, axis: int = -1, *, shape: tuple[int, ...] | None = None, rng: Any = None,
                replace: bool = True) -> Any:
    r"""Draw category indices with probabilities ``softmax(logits)`` along ``axis``.

    By the Gumbel-max trick: ``argmax(logits + G, axis)`` with independent standard
    Gumbel noise ``G = -log(-log(U))``, ``U`` uniform in (0, 1), draws index ``i``
    with probability ``exp(logits[i]) / sum(exp(logits))`` exactly; the logits need
    not be normalized. Works on every backend and returns the input's kind of array.

    Parameters
    ----------
    logits : array_like or array API array
        Unnormalized log-probabilities, of a real dtype, with at least one axis.
    axis : int, optional
        The axis of the categories.
    shape : tuple of ints, optional
        The shape of the result, as in `jax.random.categorical`: the logits' shape
        without ``axis`` (the batch shape) must broadcast to it, and extra leading
        axes are independent draws. By default the batch shape: one draw per slice.
    rng : optional
        The source of randomness, by the logits' library:

        - NumPy (and lists): a `numpy.random.Generator`, or anything
          `numpy.random.default_rng` accepts (an int seed, None for fresh entropy);
        - torch: a `torch.Generator` on the logits' device, an int seed, or None
          (torch's default generator);
        - jax: a PRNG key (`jax.random.key` or `jax.random.PRNGKey`), an int seed,
          or None (a key from fresh entropy, fixed at trace time under `jax.jit`);
        - dask: a NumPy or dask Generator, an int seed or None; the noise is a lazy
          dask random array chunked like the logits;
        - any other namespace (array-api-strict, CuPy, ...): as for NumPy; the noise
          is drawn by NumPy and moved to the logits' device.
    replace : bool, optional
        If False, draw without replacement, as `jax.random.categorical` does: the
        leading axes of ``shape`` that the batch shape lacks hold the draws of one
        sample, ``shape[:len(shape) - len(batch)]``, whose indices are distinct, taken
        in C order as the successive draws of `gumbel_topk` (``m``, their product, is
        its ``k``; the first is a categorical draw, the next one from the categories
        left, and so on). Each position of the trailing (batch) axes is its own sample,
        also where a logits' axis of length 1 is broadcast. With the default shape,
        ``m = 1``: one draw per slice, as with replacement.

    Returns
    -------
    index : array or scalar
        Indices into ``axis``, of shape ``shape``, in the namespace's default integer
        dtype, on the logits' device; a NumPy scalar for a single NumPy draw.

    Raises
    ------
    ValueError
        If ``shape`` is not broadcast-compatible, ``axis`` has no categories, the
        logits hold nan, or a slice is all ``-inf`` (no category has positive
        probability); with ``replace=False``, if the ``m`` draws of a sample exceed the
        categories, or a slice has fewer than ``m`` categories of positive probability
        (as for `gumbel_topk`). The value checks run where the values can be read: not while
        `jax.jit` traces the call, `torch.compile` or `torch.export` trace it or a
        `torch.func` transform runs it, nor on lazy dask arrays, where such slices give
        an arbitrary index.
    TypeError
        If ``rng`` is not a kind the logits' library draws from.

    Notes
    -----
    The logits are shifted by their max along ``axis`` first (which changes no
    probability), so the noise keeps its precision at large logits. A slice holding
    ``+inf`` draws one of its ``+inf`` categories, uniformly, with probability 1: the
    limit of finite logits growing together. Float32 logits draw float32 noise on
    torch and jax (their own generators' convention); NumPy computes in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import categorical
    >>> draws = categorical(np.log([0.2, 0.3, 0.5]), shape=(100_000,), rng=0)
    >>> draws.shape, draws.dtype
    ((100000,), dtype('int64'))
    >>> (np.bincount(draws) / draws.size).round(2)
    array([0.2, 0.3, 0.5])
    >>> categorical([[0.0, -np.inf], [-np.inf, 5.0]], rng=1)
    array([0, 1])

    Without replacement, the two draws of each of three samples are distinct:

    >>> pairs = categorical(np.zeros((3, 4)), shape=(2, 3), replace=False, rng=0)
    >>> pairs.shape, bool(np.all(pairs[0] != pairs[1]))
    ((2, 3), True)
    """
    replace = flag(replace, "replace", "categorical")
    x, ex, _, ax = _floating(logits, axis, "categorical")
    xp = ex.xp
    k = x.shape[ax]
    if k == 0:
        raise ValueError(
            f"categorical: logits of shape {tuple(x.shape)} have no categories along axis {axis}"
        )
    batch = tuple(x.shape[:ax]) + tuple(x.shape[ax + 1:])
    out_shape = _result_shape(shape, batch, tuple(x.shape), axis)
    lead = len(out_shape) - len(batch)
    draws = math.prod(out_shape[:lead])
    if not replace and draws > k:
        raise ValueError(
            f"categorical: {draws} draws without replacement (the leading axes {out_shape[:lead]} of "
            f"shape {out_shape}) exceed the {k} categories along axis {axis}"
        )
    if 0 in out_shape:  # no draws: not every library takes the argmax of nothing
        return ex.default_int(xp.zeros(out_shape, device=device_of(x)))
    if ex.readable(x):
        _check_slices(x, ax, axis, xp, "categorical", 1 if replace else draws)
    if not replace:
        # one sample of `draws` per position of the batch (broadcast) shape: its top-k moved
        # first and unfolded into the leading axes
        batch_out = out_shape[lead:]
        noise_shape = (*batch_out[:ax], k, *batch_out[ax:])
        z = _minus_max(x, ax, xp) + ex.gumbel(noise_shape, x, rng, "categorical")
        _, index = ex.top_k(z, draws, ax)
        return ex.default_int(xp.reshape(xp.moveaxis(index, ax, 0), out_shape))
    noise_shape = (*out_shape[:lead + ax], k, *out_shape[lead + ax:])
    z = _minus_max(x, ax, xp) + ex.gumbel(noise_shape, x, rng, "categorical")
    return ex.default_int(xp.argmax(z, axis=lead + ax))


def _k_value(k: Any, n: int, logits_shape: tuple[int, ...], axis: Any) -> int:
    """``k`` checked: an integer (not a bool) with ``0 <= k <= n``."""
    if isinstance(k, (bool, np.bool_)):
        raise TypeError(f"gumbel_topk: k must be an integer; got {type(k).__name__}")
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"gumbel_topk: k must be an integer; got {type(k).__name__}") from None
    if n == 0 and k > 0:
        raise ValueError(f"gumbel_topk: logits of shape {logits_shape} have no categories along axis {axis}")
    if not 0 <= k <= n:
        raise ValueError(
            f"gumbel_topk: k must satisfy 0 <= k <= {n} (the categories along axis {axis} of logits of "
            f"shape {logits_shape}); got k = {k}"
        )
    return k


def gumbel_topk(logits: Any, k: int, axis: int = -1, *, rng: Any = None, return_values: bool = False) -> Any:
    r"""Draw ``k`` distinct category indices without replacement, by the Gumbel-top-k trick.

    Perturbs the logits with independent standard Gumbel noise ``G`` and returns the
    indices of the ``k`` largest of ``logits + G`` along ``axis``, largest first: an
    ordered sample without replacement from ``softmax(logits)`` (Kool et al., 2019).
    ``k = 1`` is `categorical`'s Gumbel-max draw. Works on every backend and returns the
    input's kind of array.

    Parameters
    ----------
    logits : array_like or array API array
        Unnormalized log-probabilities, of a real dtype, with at least one axis.
    k : int
        The number of draws, ``0 <= k <= n`` for ``n`` categories along ``axis``.
    axis : int, optional
        The axis of the categories.
    rng : optional
        As for `categorical`.
    return_values : bool, optional
        If True, also return the perturbed logits ``logits + G`` of the drawn
        indices (as `torch.topk` and `jax.lax.top_k` return their values): the
        ``k + 1``-th largest is the threshold of the estimators built on the trick.

    Returns
    -------
    index : array
        Indices into ``axis``, of the logits' shape with ``axis`` of length ``k``, in
        the namespace's default integer dtype, on the logits' device; along ``axis``
        they are distinct and in the order drawn.
    values : array
        Only with ``return_values``: ``logits + G`` at ``index``, decreasing along
        ``axis``, in the dtype of a floating result (the logits' floating dtype, the
        default floating dtype for integer logits).

    Raises
    ------
    ValueError
        If ``k`` is out of range, ``axis`` has no categories (with ``k > 0``), the
        logits hold nan, or a slice has fewer than ``k`` categories of positive
        probability (entries above ``-inf``, or its ``+inf`` entries where it holds
        some). The value checks run where the values can be read, as for
        `categorical`: traced (`jax.jit`, `torch.compile`) and lazy dask logits draw
        such slices' positive categories first, then arbitrary distinct others.
    TypeError
        If ``k`` is not an integer, or ``rng`` not a kind the logits' library draws
        from.

    Notes
    -----
    By the Gumbel-max trick, the argmax of ``logits + G`` is a categorical draw; the
    perturbed values of the other categories are then still independent Gumbels,
    located at their logits, so the second largest is a draw from the categories
    left, and so on (Kool, van Hoof & Welling, "Stochastic Beams and Where to Find
    Them: The Gumbel-Top-k Trick for Sampling Sequences Without Replacement", ICML
    2019). The order of the output is the order of those draws: the ordered sequence
    :math:`(i_1, \dots, i_k)` has probability

    .. math:: \prod_{j=1}^{k} \frac{p_{i_j}}{1 - \sum_{l<j} p_{i_l}},
              \qquad p = \operatorname{softmax}(\text{logits}),

    and the set of the first ``k`` indices is a sample of ``k`` distinct categories
    (not one of inclusion probabilities ``k p``). The top ``k`` are found by the
    logits' library: `numpy.argpartition` and a sort of the ``k`` on NumPy,
    `torch.topk`, `jax.lax.top_k`, a descending sort on other namespaces, and on dask
    NumPy's, block by block, with ``axis`` rechunked into one chunk. As in
    `categorical`, the logits are shifted by their max first, and the categories of a
    slice holding ``+inf`` come in a uniformly random order.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import gumbel_topk
    >>> logits = np.log([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])
    >>> index = gumbel_topk(logits, 3, rng=0)
    >>> index.shape, index.dtype
    ((2, 3), dtype('int64'))
    >>> [len(set(row)) for row in index.tolist()]  # distinct in each row
    [3, 3]
    >>> gumbel_topk([0.0, -np.inf, 1.0, -np.inf], 2, rng=0).tolist() in ([0, 2], [2, 0])
    True
    >>> index, values = gumbel_topk(logits, 2, rng=0, return_values=True)
    >>> bool(np.all(values[:, 0] >= values[:, 1]))
    True
    """
    x, ex, dtype, ax = _floating(logits, axis, "gumbel_topk")
    return_values = flag(return_values, "return_values", "gumbel_topk")
    xp = ex.xp
    n = x.shape[ax]
    k = _k_value(k, n, tuple(x.shape), axis)
    out_shape = (*x.shape[:ax], k, *x.shape[ax + 1:])
    if 0 in out_shape:  # nothing to draw: not every library takes the top-k of nothing
        index = ex.default_int(xp.zeros(out_shape, device=device_of(x)))
        return (index, xp.zeros(out_shape, dtype=dtype, device=device_of(x))) if return_values else index
    if ex.readable(x):
        _check_slices(x, ax, axis, xp, "gumbel_topk", k)
    z = _minus_max(x, ax, xp) + ex.gumbel(tuple(x.shape), x, rng, "gumbel_topk")
    top, index = ex.top_k(z, k, ax)
    index = ex.default_int(index)
    if not return_values:
        return index
    # back from the max-shifted scale to logits + G; a slice whose max is +inf has its +inf
    # categories at +inf (shifted to 0) and the others at -inf
    m = xp.max(x, axis=ax, keepdims=True)
    finite_m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    inf_top = xp.where(top == -math.inf, xp.full_like(top, -math.inf), xp.full_like(top, math.inf))
    values = xp.where(m == math.inf, inf_top, top + finite_m)
    return index, (values if values.dtype == dtype else xp.astype(values, dtype))


def gumbel_softmax(
    logits: Any, axis: int = -1, *, temperature: float = 1.0, hard: bool = False, rng: Any = None
) -> Any:
    r"""Draw a Gumbel-softmax (concrete) sample: ``softmax((logits + G) / temperature)``.

    The continuous relaxation of `categorical` (Jang et al., 2016; Maddison et al.,
    2016): ``G`` is standard Gumbel noise, and as the temperature goes to 0 the
    sample tends to the one-hot vector of a categorical draw. Differentiable in the
    logits on torch and jax.

    Parameters
    ----------
    logits : array_like or array API array
        Unnormalized log-probabilities, of a real dtype, with at least one axis.
    axis : int, optional
        The axis of the categories.
    temperature : float, optional
        :math:`\tau > 0`: small values give nearly one-hot samples, large values
        nearly uniform ones.
    hard : bool, optional
        If True, return the one-hot vector of the sample's argmax along ``axis``. On
        torch and jax this is the straight-through estimator,
        ``one_hot + (y - stop_gradient(y))``: the value is exactly one-hot and the
        gradient is the soft sample's.
    rng : optional
        As for `categorical`.

    Returns
    -------
    y : array
        The sample, of the logits' shape, on their device; floating logits keep
        their dtype, integer ones give the default floating dtype. It sums to 1
        along ``axis``; as `softmax`, a slice holding nan or ``+inf``, or only
        ``-inf``, is all nan.

    Raises
    ------
    ValueError
        If ``temperature`` is not finite and at least the smallest normal float64.
    TypeError
        If ``rng`` is not a kind the logits' library draws from.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import gumbel_softmax
    >>> y = gumbel_softmax(np.zeros((2, 3), np.float32), temperature=0.5, rng=0)
    >>> y.shape, y.dtype, bool(np.allclose(y.sum(axis=-1), 1.0))
    ((2, 3), dtype('float32'), True)
    >>> gumbel_softmax([[0.0, -np.inf, -np.inf], [-np.inf, -np.inf, 3.0]], hard=True, rng=0)
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    tau = temperature_value(temperature, "gumbel_softmax")
    x, ex, dtype, ax = _floating(logits, axis, "gumbel_softmax")
    xp = ex.xp
    y = softmax(x + ex.gumbel(tuple(x.shape), x, rng, "gumbel_softmax"), axis=ax, temperature=tau)
    out = y if y.dtype == dtype else xp.astype(y, dtype)
    k = y.shape[ax]
    if not hard or k == 0:  # an empty slice has no argmax: its one-hot sample is empty too
        return out
    index = xp.argmax(y, axis=ax, keepdims=True)
    positions = xp.reshape(xp.arange(k, device=device_of(y)), (k,) + (1,) * (y.ndim - ax - 1))
    one_hot = xp.astype(positions == index, dtype)
    return one_hot + (out - ex.stop_gradient(out))
