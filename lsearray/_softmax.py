"""softmax and log_softmax from the same one-read partials as logsumexp."""

from __future__ import annotations

from typing import Any

from lsearray._delegation import executor

__all__ = ["log_softmax", "softmax"]


def softmax(
    x: Any, axis: int | tuple[int, ...] | None = None, *, temperature: float = 1.0, where: Any = None
) -> Any:
    r"""Compute ``exp(x / tau) / sum(exp(x / tau))`` over the given axes.

    Same special values as `scipy.special.softmax`: a slice holding ``nan`` or
    ``+inf``, or only ``-inf``, is all nan.

    Parameters
    ----------
    x : array_like or array API array
        Input array of bool, integer or real floating dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over; by default the whole array.
    temperature : float, optional
        :math:`\tau > 0`; the softmax of ``x / tau``. Small :math:`\tau` tends to
        the (tie-shared) indicator of the max, large :math:`\tau` to uniform.
    where : array_like of bool, optional
        The elements to include, broadcast against ``x`` (as `jax.nn.softmax`'s
        ``where``): the others are left out of the sum, whatever their value, and
        are 0 in the result. A slice with nothing left is all 0 (not nan), with a
        zero gradient.

    Returns
    -------
    s : ndarray or scalar
        Same shape as ``x``, summing to 1 along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import softmax
    >>> softmax(np.log([1.0, 3.0]))
    array([0.25, 0.75])
    >>> softmax([[0.0, 0.0], [1.0, 1.0]], axis=1, temperature=2.0)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    >>> softmax([[0.0, np.inf], [1.0, 1.0]], axis=1, where=[[True, False], [False, False]])
    array([[1., 0.],
           [0., 0.]])
    """
    return executor(x, where, func="softmax").softmax(x, axis, temperature, where)


def log_softmax(
    x: Any, axis: int | tuple[int, ...] | None = None, *, temperature: float = 1.0, where: Any = None
) -> Any:
    r"""Compute ``x / tau - logsumexp(x / tau)`` over the given axes, accurately.

    More accurate than ``log(softmax(x))`` where the softmax underflows; same
    special values as `scipy.special.log_softmax`.

    Parameters
    ----------
    x : array_like or array API array
        Input array of bool, integer or real floating dtype.
    axis : None or int or tuple of ints, optional
        Axis or axes to normalize over; by default the whole array.
    temperature : float, optional
        :math:`\tau > 0`; the log-softmax of ``x / tau``.
    where : array_like of bool, optional
        The elements to include, broadcast against ``x``: the others are left out of
        the sum, whatever their value, and are ``-inf`` in the result. A slice with
        nothing left is all ``-inf`` (not nan), with a zero gradient.

    Returns
    -------
    s : ndarray or scalar
        Same shape as ``x``; ``exp`` of it sums to 1 along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import log_softmax
    >>> log_softmax([1000.0, 1.0])
    array([   0., -999.])
    >>> log_softmax(np.log([1.0, 3.0]))
    array([-1.38629436, -0.28768207])
    >>> log_softmax([0.0, 0.0, np.nan], where=[True, True, False])
    array([-0.69314718, -0.69314718,        -inf])
    """
    return executor(x, where, func="log_softmax").log_softmax(x, axis, temperature, where)
