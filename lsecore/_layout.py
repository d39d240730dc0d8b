"""Map reductions, scans and elementwise calls on strided arrays onto the kernel's views: read in
place, or, where the axes do not merge into a few large views, gathered in small blocks."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lsecore import _kernel

__all__ = ["logaddexp", "logcumsumexp", "logdiffexp", "reduce_finalized", "reduce_partials", "refine", "run_view"]


class _Dim(NamedTuple):
    """One axis of the reduction: its size, byte strides in a and b, original axes."""

    size: int
    a_stride: int
    b_stride: int
    axes: tuple[int, ...]


def _coalesced(dims: list[_Dim]) -> list[_Dim]:
    """Merge neighbouring axes (outermost first) that walk memory as one axis in a and b."""
    merged: list[_Dim] = []
    for d in dims:
        if merged:
            p = merged[-1]
            if p.a_stride == d.a_stride * d.size and p.b_stride == d.b_stride * d.size:
                merged[-1] = _Dim(p.size * d.size, d.a_stride, d.b_stride, p.axes + d.axes)
                continue
        merged.append(d)
    return merged


def _sorted_dims(a: np.ndarray, b: np.ndarray | None, axes) -> list[_Dim]:
    """The axes of size > 1 among ``axes``, outermost (largest stride in a) first."""
    dims = [
        _Dim(a.shape[k], a.strides[k], 0 if b is None else b.strides[k], (k,))
        for k in axes
        if a.shape[k] != 1
    ]
    dims.sort(key=lambda d: (d.a_stride, d.b_stride), reverse=True)
    return _coalesced(dims)


def _empty_partials(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Partials ``(m, w, t, c)`` of empty slices: -inf, 0, 0, 0, each C-contiguous."""
    parts = np.zeros((4, *shape))
    parts[0] = -np.inf
    return tuple(parts[k, ...] for k in range(4))  # arrays (views), also when 0-d


def _contiguous_run(a: np.ndarray, b: np.ndarray | None, axes: tuple[int, ...]) -> bool:
    """Whether ``a`` and ``b`` are C-contiguous and ``axes`` is one run of neighbours."""
    return (
        bool(axes)
        and max(axes) - min(axes) + 1 == len(axes)
        and a.flags.c_contiguous
        and (b is None or b.flags.c_contiguous)
    )


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without the reduced ``axes``."""
    return tuple(n for k, n in enumerate(shape) if k not in axes)


def run_view(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, int, int]:
    """The 3-D view (outer, reduced, inner) of a C-contiguous array of ``shape`` reduced
    over the neighbouring ``axes``; with nothing to reduce, every kept element is inner,
    so that the kernel vectorizes across them.

    Examples
    --------
    >>> run_view((2, 3, 4, 5), (1, 2))
    (2, 12, 5)
    """
    return _run_plan(shape, axes)[0]


@functools.lru_cache(maxsize=256)
def _run_plan(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[tuple[int, int, int], tuple[int, ...]]:
    """`run_view` and the kept shape of a C-contiguous run: a small call repeats them for
    every array of its shape, so they are kept per shape (a few microseconds of Python)."""
    lo, hi = min(axes), max(axes) + 1
    outer, size, inner = math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:])
    view = (1, 1, outer * inner) if size == 1 else (outer, size, inner)
    return view, _kept_shape(shape, axes)


def _reduce_contiguous_run(
    a: np.ndarray, axes: tuple[int, ...], b: np.ndarray | None, inv_tau: float,
    float32_result: bool, tau: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`reduce_partials` for a C-contiguous ``a`` (and ``b``) reduced over neighbouring
    axes: one kernel call on a reshaped view, the same view the general path builds."""
    outer, size, inner = run_view(a.shape, axes)
    m, w, t, c = _empty_partials((outer, inner))
    if a.size:
        view = (outer, size, inner)
        if b is None:
            _kernel.accumulate(a.reshape(view), inv_tau, m, w, t, c, float32_result, tau)
        else:
            _kernel.accumulate_weighted(a.reshape(view), b.reshape(view), inv_tau, m, w, t, c,
                                        tau)
    out_shape = _kept_shape(a.shape, axes)
    return m.reshape(out_shape), w.reshape(out_shape), t.reshape(out_shape), c.reshape(out_shape)


def reduce_finalized(
    a: np.ndarray, axes: tuple[int, ...], inv_tau: float, tau: float, divisor: float = 0.0,
    float32_result: bool = False,
) -> np.ndarray | None:
    """The unweighted log-sum-exp of ``a`` over ``axes`` (divided by ``divisor`` before
    the log unless it is 0), finalized tile by tile, with no partial arrays; None where
    this path does not apply (an empty reduction, a layout that is not a C-contiguous run
    of axes): use `reduce_partials` there.
    ``float32_result``: the caller rounds the result to float32 (or a narrower float),
    which lets float32 input take coarser exps where its max allows it (see
    `reduce_partials`).

    Examples
    --------
    >>> import numpy as np
    >>> reduce_finalized(np.zeros((2, 4)), (1,), 1.0, 1.0)
    array([1.38629436, 1.38629436])
    """
    if not _contiguous_run(a, None, axes) or a.size == 0:
        return None
    (outer, size, inner), kept_shape = _run_plan(a.shape, axes)
    out = np.empty((outer, inner))
    flags = np.empty((outer, inner), np.uint8)
    # The kernel recomputes the flagged results of contiguous rows itself (one call) and
    # says whether any flag is left; `refine` takes those.
    flagged = _kernel.reduce_finalized(a.reshape(outer, size, inner), inv_tau, tau, out, flags,
                                       divisor, float32_result, True)
    out = out.reshape(kept_shape)
    if flagged:
        refine(a, axes, None, tau, divisor, out, None, flags)
    return out


def refine(
    a: np.ndarray, axes: tuple[int, ...], b: np.ndarray | None, tau: float,
    divisor: np.ndarray | float, out: np.ndarray, sign: np.ndarray | None, flags: np.ndarray,
) -> None:
    """Recompute, in place, the results ``out`` (and ``sign``) that ``flags`` marks, each
    from its slice of ``a`` (and ``b``) by the accurate tier (``_lse_exact.h.src``).

    The fast loops' terms are exact to about an ulp; where the result is much smaller
    than the temperature (the max and the log of the sum cancel) that is not enough for
    an ulp of the result, and the kernel flags it. Only the flagged slices are copied
    (gathered into rows) and read again.

    Parameters
    ----------
    a, b : ndarray
        The prepared input and weights (``b`` broadcast to ``a``'s shape, or None).
    axes : tuple of int
        The reduced axes.
    tau : float
        The temperature.
    divisor : ndarray or float
        What a mean divides the sum by (shaped like ``out``), 0 for none.
    out, sign : ndarray of float64, C-contiguous, the shape of ``a`` without ``axes``
        The results (``sign`` may be None), updated where flagged.
    flags : ndarray of uint8, out's size
        1 for the results to recompute.
    """
    index = flags.reshape(-1).nonzero()[0]
    if index.size == 0:
        return
    div = _row_divisors(divisor, out.shape, index)
    values = out.reshape(-1)[index]
    signs = np.ones(index.size) if sign is None else sign.reshape(-1)[index]
    if _contiguous_run(a, b, axes) and _run_plan(a.shape, axes)[0][1] >= _MIN_VIEW:
        # long slices are read in place, one call each: a gathered copy would be their size
        for k, i in enumerate(index.tolist()):
            a_row, b_row = _flagged_rows(a, b, axes, slice(i, i + 1))
            _kernel.exact_rows(a_row, b_row, tau, None if div is None else div[k:k + 1],
                               values[k:k + 1], signs[k:k + 1])
    else:
        a_rows, b_rows = _flagged_rows(a, b, axes, index)
        _kernel.exact_rows(a_rows, b_rows, tau, div, values, signs)
    out.reshape(-1)[index] = values
    if sign is not None:
        sign.reshape(-1)[index] = signs


def _row_divisors(divisor: np.ndarray | float, shape: tuple[int, ...],
                  index: np.ndarray) -> np.ndarray | None:
    """The divisors of the flagged results (C-contiguous), None for a scalar 0 (none)."""
    if isinstance(divisor, float):
        return None if divisor == 0.0 else np.full(index.size, divisor)
    return np.ascontiguousarray(
        np.broadcast_to(np.asarray(divisor, np.float64), shape).reshape(-1)[index])


def _flagged_rows(a: np.ndarray, b: np.ndarray | None, axes: tuple[int, ...],
                  index: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray | None]:
    """The slices of ``a`` (and ``b``) at the flat result positions ``index``, gathered
    as rows: a C-contiguous run of axes is indexed in its 3-D view at once (a slice of
    one position there gives a view, no copy), any other layout through its kept axes'
    positions."""
    if _contiguous_run(a, b, axes):
        (outer, size, inner), _ = _run_plan(a.shape, axes)

        def rows(x: np.ndarray) -> np.ndarray:
            if inner == 1:
                return x.reshape(outer, size)[index]
            if isinstance(index, slice):
                o, i = divmod(index.start, inner)
                return x.reshape(outer, size, inner)[o:o + 1, :, i]
            return x.reshape(outer, size, inner)[index // inner, :, index % inner]
    else:
        kept = [k for k in range(a.ndim) if k not in axes]
        position = np.unravel_index(index, tuple(a.shape[k] for k in kept)) if kept else ()
        order = kept + list(axes)

        def rows(x: np.ndarray) -> np.ndarray:
            return np.transpose(x, order)[position].reshape(index.size, -1)

    return rows(a), None if b is None else rows(b)


# The strided path makes one kernel call per view, about 2 us with its Python; gathering
# costs about 0.3 ns an element more than reading in place. Views of fewer elements than
# this are gathered (measured here: 4096-element views took 3.9 ms strided against 3.4 ms
# gathered for 4M float64, 16384-element ones 2.3 against 3.3).
_MIN_VIEW = 1 << 13
# Elements of a gathered block: 256 KiB of float64 stay in L2 from the copy to the
# kernel's read, and the kernel stays on the thread that wrote them (it starts threads at
# 1 << 16 elements; blocks that large took up to 1.8x as long here).
_GATHER = 1 << 15

_ONE = _Dim(1, 0, 0, ())


class _Views(NamedTuple):
    """The strided path's plan: one kernel call per index of ``loop`` (its first ``nkept``
    dims kept, the others reduced) on the 3-D view ``(outer, reduced, inner)``."""

    loop: list[_Dim]
    nkept: int
    view: tuple[_Dim, _Dim, _Dim]


def _strided_views(kept: list[_Dim], red: list[_Dim]) -> _Views:
    """The 3-D views that cover a reduction over the dims ``red`` keeping ``kept`` (both
    sorted outermost first): the innermost reduced dim is the view's middle axis, the
    innermost kept dim its inner axis where it is closer in memory (the kernel then
    vectorizes across it), the next kept dim its outer axis; the rest are looped over."""
    kept, red = list(kept), list(red)
    r_dim = red.pop() if red else _ONE
    column_mode = bool(kept) and (r_dim.size == 1 or kept[-1].a_stride < r_dim.a_stride)
    inner = kept.pop() if column_mode else _ONE
    outer = kept.pop() if kept else _ONE
    return _Views(kept + red, len(kept), (outer, r_dim, inner))


def _accumulate_views(
    a: np.ndarray, b: np.ndarray | None, views: _Views, inv_tau: float, float32_result: bool,
    parts: tuple[np.ndarray, ...], tau: float,
) -> None:
    """Merge the partials of ``a`` (and ``b``) into ``parts`` (C-contiguous, in the order
    of the kept dims), one kernel call per view of ``views``, reading ``a`` in place."""
    loop, nkept, (outer, r_dim, inner) = views
    dims = loop + [outer, r_dim, inner]
    shape = [d.size for d in dims]
    av = as_strided(a, shape, [d.a_stride for d in dims], writeable=False)
    bv = None if b is None else as_strided(b, shape, [d.b_stride for d in dims], writeable=False)
    parts = [p.reshape(*(d.size for d in loop[:nkept]), outer.size, inner.size) for p in parts]
    for index in itertools.product(*(range(d.size) for d in loop)):
        part = [p[index[:nkept]] for p in parts]
        if bv is None:
            _kernel.accumulate(av[index], inv_tau, *part, float32_result, tau)
        else:
            _kernel.accumulate_weighted(av[index], bv[index], inv_tau, *part, tau)


def _accumulate_gathered(
    a: np.ndarray, b: np.ndarray | None, kept: list[_Dim], red: list[_Dim], inv_tau: float,
    float32_result: bool, parts: tuple[np.ndarray, ...], tau: float,
) -> None:
    """Merge the partials of ``a`` (and ``b``) into ``parts`` (C-contiguous, in the order
    of ``kept``) block by block: a block is the innermost dims in memory, kept or reduced,
    whole while they fit in _GATHER elements, and a chunk of the next dim; it is copied
    into a buffer as C-contiguous rows (its kept dims first) and reduced by one kernel
    call. Memory: two buffers of _GATHER elements, whatever the input's size."""
    dims = sorted([(d, True) for d in kept] + [(d, False) for d in red],
                  key=lambda e: (e[0].a_stride, e[0].b_stride), reverse=True)
    n_block, first = 1, len(dims)
    while first and n_block * dims[first - 1][0].size <= _GATHER:
        first -= 1
        n_block *= dims[first][0].size
    # The dim chunked (a reduced size-1 one when the whole input fits), and those looped over.
    cut, cut_kept = dims[first - 1] if first else (_ONE, False)
    loop = dims[:max(first - 1, 0)]
    block = [(cut, cut_kept)] + dims[first:]
    chunk = _GATHER // n_block
    # The block's kept dims first, so that its rows are the reductions, in the partials' order.
    perm = [i for i, (_, k) in enumerate(block) if k] + [i for i, (_, k) in enumerate(block) if not k]
    all_dims = [d for d, _ in loop + block]
    shape = [d.size for d in all_dims]
    av = as_strided(a, shape, [d.a_stride for d in all_dims], writeable=False)
    bv = None if b is None else as_strided(b, shape, [d.b_stride for d in all_dims], writeable=False)
    a_buf = np.empty(min(_GATHER, a.size), a.dtype)
    b_buf = None if b is None else np.empty(a_buf.size, b.dtype)
    parts = [p.reshape([d.size for d in kept]) for p in parts]
    kept_in_loop = [k for _, k in loop]
    for index in itertools.product(*(range(d.size) for d, _ in loop)):
        kept_index = tuple(i for i, k in zip(index, kept_in_loop) if k)
        for start in range(0, cut.size, chunk):
            src = av[index][start:start + chunk]
            gathered = [a_buf[:src.size].reshape([src.shape[i] for i in perm])]
            np.copyto(gathered[0], src.transpose(perm))
            if bv is not None:
                gathered.append(b_buf[:src.size].reshape(gathered[0].shape))
                np.copyto(gathered[1], bv[index][start:start + chunk].transpose(perm))
            part = [p[(*kept_index, ...)] for p in parts]  # a view, also when 0-d
            if cut_kept:
                part = [p[start:start + chunk] for p in part]
            rows = math.prod(part[0].shape)
            part = [p.reshape(rows, 1) for p in part]
            views = [g.reshape(rows, -1, 1) for g in gathered]
            if bv is None:
                _kernel.accumulate(views[0], inv_tau, *part, float32_result, tau)
            else:
                _kernel.accumulate_weighted(views[0], views[1], inv_tau, *part, tau)


def reduce_partials(
    a: np.ndarray, axes: tuple[int, ...], b: np.ndarray | None = None, inv_tau: float = 1.0,
    float32_result: bool = False, tau: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The log-sum-exp partials ``(m, w, t, c)`` of ``a`` over ``axes``, in one read.

    Parameters
    ----------
    a : ndarray of float32 or float64, native byte order, any strides
        The input; it is only read.
    axes : tuple of int
        Normalized (non-negative, unique) axes to reduce.
    b : ndarray of float32 or float64 with a's shape, optional
        Weights, typically a broadcast view (zero strides); or uint8, a boolean mask's bytes
        (0 leaves its element out, whatever its value).
    inv_tau : float
        ``1 / temperature``.
    float32_result : bool
        The partials end as float32 log-sum-exps ``m + tau log(w + t + c)``, with no
        divisor and no float64 result (ignored with ``b``). float32 input's terms are
        then exact to 2^-34 rather than 2^-50 where the max is >= 0: such a result
        cannot cancel, and keeps 2^-34 of itself (``LSE_COARSE_FLOAT32``).
    tau : float
        The temperature whose inverse is ``inv_tau``, or 0 if unknown: given, each
        term carries the rounding of ``inv_tau`` too (see `_kernel.accumulate`).

    Returns
    -------
    m, w, t, c : ndarray of float64, shape of ``a`` without ``axes``
        ``m`` the max, ``w`` the summed weight of the elements equal to ``m``,
        ``t + c`` the sum of ``b exp((a - m) / tau)`` over the others (``c`` is the
        compensation of the float64 sum ``t``).

    Examples
    --------
    >>> import numpy as np
    >>> m, w, t, c = reduce_partials(np.array([[0.0, -1.0], [2.0, 2.0]]), (1,))
    >>> m, w
    (array([0., 2.]), array([1., 2.]))
    """
    if _contiguous_run(a, b, axes):
        return _reduce_contiguous_run(a, axes, b, inv_tau, float32_result, tau)
    ndim = a.ndim
    kept_axes = [k for k in range(ndim) if k not in axes]
    out_shape = tuple(a.shape[k] for k in kept_axes)
    # Walk every axis forwards: flipping a reduced axis changes nothing, a kept one
    # is flipped back on the output at the end.
    flipped = [k for k in range(ndim) if a.strides[k] < 0]
    if flipped:
        index = tuple(slice(None, None, -1) if k in flipped else slice(None) for k in range(ndim))
        a = a[index]
        b = None if b is None else b[index]

    red = _sorted_dims(a, b, axes)
    kept = _sorted_dims(a, b, kept_axes)
    # Partials in the order of the kept dims, so each kernel call gets a C-contiguous block.
    m, w, t, c = _empty_partials(tuple(d.size for d in kept))
    if a.size:
        views = _strided_views(kept, red)
        # Each view costs a kernel call, about 2 us with its Python; gathering costs about
        # 1 ns an element, in a buffer of _GATHER elements whatever the input's size. So
        # views of fewer than _MIN_VIEW elements (layouts where the reduced axes interleave
        # with the kept ones, or strided slices whose axes do not merge) are gathered.
        calls = math.prod(d.size for d in views.loop)
        if calls > 1 and a.size < calls * _MIN_VIEW:
            _accumulate_gathered(a, b, kept, red, inv_tau, float32_result, (m, w, t, c), tau)
        else:
            _accumulate_views(a, b, views, inv_tau, float32_result, (m, w, t, c), tau)

    # Back to the kept axes' order: split merged dims, then transpose and un-flip.
    order = [k for d in kept for k in d.axes]
    order += [k for k in kept_axes if k not in order]
    positions = [kept_axes.index(k) for k in order]
    back = np.argsort(positions)
    unflip = tuple(
        slice(None, None, -1) if k in flipped else slice(None) for k in kept_axes
    )
    m, w, t, c = (
        p.reshape([a.shape[k] for k in order]).transpose(back)[unflip].reshape(out_shape)
        for p in (m, w, t, c)
    )
    return m, w, t, c


def _scan_views(
    a: np.ndarray, out: np.ndarray, axis: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Views of ``a``, ``out`` (same shape, any strides) and ``mask`` (uint8, laid out as
    ``out``, or None) whose last three axes are the 3-D views (outer, ``axis``, inner) of
    the kernel's scan, one per index of the axes before them (the kept axes that do not
    merge into the outer and inner ones)."""
    kept_axes = [k for k in range(a.ndim) if k != axis]
    # Kept axes walk forwards in a (out follows): only the scanned axis keeps its direction.
    index = tuple(
        slice(None, None, -1) if k != axis and a.strides[k] < 0 else slice(None) for k in range(a.ndim)
    )
    a, out = a[index], out[index]
    mask = None if mask is None else mask[index]
    kept = _sorted_dims(a, out, kept_axes)
    scanned = _Dim(a.shape[axis], a.strides[axis], out.strides[axis], (axis,))
    # Lanes side by side in memory are scanned together, a row of a tile of them at a time.
    column_mode = bool(kept) and (scanned.size == 1 or kept[-1].a_stride < abs(scanned.a_stride))
    inner = kept.pop() if column_mode else _ONE
    outer = kept.pop() if kept else _ONE
    dims = kept + [outer, scanned, inner]
    shape = [d.size for d in dims]
    av = as_strided(a, shape, [d.a_stride for d in dims], writeable=False)
    ov = as_strided(out, shape, [d.b_stride for d in dims])
    # the mask's bytes lie as out's elements do: its strides are out's over the itemsize
    mv = None if mask is None else as_strided(
        mask, shape, [d.b_stride // out.itemsize for d in dims], writeable=False)
    return av, ov, mv


def logcumsumexp(a: np.ndarray, axis: int | None, tau: float,
                 where: np.ndarray | None = None) -> np.ndarray:
    """The running log-sum-exp ``tau log(cumsum(exp(a / tau)))`` of ``a`` along ``axis``
    (None: of ``a`` flattened in C order), in one read and no temporaries but the result
    (where ``a``'s kept axes do not merge into a few lanes, ``a`` is copied into the result
    and scanned there), over the elements ``where`` keeps (a boolean array broadcast to
    ``a``'s shape, copied as bytes in the result's layout; None: all).

    Parameters
    ----------
    a : ndarray of float32 or float64, native byte order, any strides
        The input; it is only read.
    axis : int or None
        A normalized (non-negative) axis of ``a``, or None.
    tau : float
        The temperature, positive and finite.

    Returns
    -------
    out : ndarray of a's dtype
        ``a``'s shape (``(a.size,)`` for ``axis=None``), in ``a``'s memory order. Each
        element is rounded once from the finalized partial of its prefix, within an ulp of
        the exact value; where the max and the log cancel, the lane is scanned again in
        double-double (``_lse_exact.h.src``). -inf adds nothing, and a nan or +inf makes the
        rest of its lane nan or +inf.

    Examples
    --------
    >>> import numpy as np
    >>> logcumsumexp(np.array([0.0, -50.0, 0.0]), 0, 1.0)
    array([0.00000000e+00, 1.92874985e-22, 6.93147181e-01])
    """
    if axis is None:
        if not a.flags.c_contiguous:  # flattened in C order (a copy): the scan reads it twice
            a = np.ascontiguousarray(a)
        where = None if where is None else np.broadcast_to(where, a.shape).reshape(-1)
        a, axis = a.reshape(-1), 0
    out = np.empty_like(a, subok=False)  # dense, in a's memory order
    if a.size == 0:
        return out
    mask = None
    if where is not None:
        mask = np.empty_like(out, dtype=np.uint8)
        mask[...] = np.broadcast_to(where, a.shape)
    av, ov, mv = _scan_views(a, out, axis, mask)
    calls = math.prod(av.shape[:-3])
    if calls > 1 and a.size < calls * _MIN_VIEW:
        # Many small views (kept axes of a that do not merge): a dense copy of a in out's
        # layout merges them, and is scanned into out in a few calls (not in place: a lane
        # whose max and log cancel is read again).
        dense = np.empty_like(out)
        dense[...] = a
        av, ov, mv = _scan_views(dense, out, axis, mask)
    for index in np.ndindex(av.shape[:-3]):
        if mv is None:
            _kernel.scan(av[index], ov[index], tau)
        else:
            _kernel.scan(av[index], ov[index], tau, mv[index])
    return out


def logaddexp(x1: Any, x2: Any, tau: float, dtype: np.dtype) -> np.ndarray:
    """``tau log(exp(x1 / tau) + exp(x2 / tau))``, elementwise with broadcasting.

    Parameters
    ----------
    x1, x2 : array_like of real numbers, broadcastable
        Read as ``dtype`` (cast in small buffers where they differ: other dtypes, byte
        orders or alignments); only read.
    tau : float
        The temperature, positive and finite.
    dtype : float32 or float64
        The dtype of the result; the computation runs in float64 and rounds once.

    Returns
    -------
    out : ndarray of dtype
        The broadcast shape, in the inputs' memory order (0-d for 0-d inputs).

    Examples
    --------
    >>> import numpy as np
    >>> logaddexp(np.array([0.0, np.inf, -np.inf]), np.array([-50.0, np.inf, -np.inf]), 1.0,
    ...           np.dtype(np.float64))
    array([1.92874985e-22,            inf,           -inf])
    """
    it = np.nditer(
        [x1, x2, None],
        flags=["external_loop", "buffered", "grow_inner", "zerosize_ok"],
        op_flags=[["readonly"], ["readonly"], ["writeonly", "allocate"]],
        op_dtypes=[dtype, dtype, dtype],
        casting="same_kind",
        buffersize=1 << 13,
    )
    with it:
        for u, v, o in it:
            _kernel.logaddexp(u, v, o, tau)
        return it.operands[2]


def logdiffexp(x1: Any, x2: Any, tau: float, dtype: np.dtype,
               return_sign: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``tau log(exp(x1 / tau) - exp(x2 / tau))``, elementwise with broadcasting.

    Parameters
    ----------
    x1, x2 : array_like of real numbers, broadcastable
        Read as ``dtype`` (cast in small buffers where they differ); only read.
    tau : float
        The temperature, positive and finite.
    dtype : float32 or float64
        The dtype of the result (and of the sign); the computation runs in float64
        double-double and rounds once.
    return_sign : bool
        Whether to return the log of ``|exp(x1 / tau) - exp(x2 / tau)|`` and its sign
        (+1, -1, 0) rather than nan where ``x1 < x2``.

    Returns
    -------
    out : ndarray of dtype, or (out, sign)
        The broadcast shape, in the inputs' memory order (0-d for 0-d inputs).

    Examples
    --------
    >>> import numpy as np
    >>> logdiffexp(np.array([0.0, 1.0, 1.0]), np.array([-50.0, 1.0, 2.0]), 1.0,
    ...            np.dtype(np.float64))
    array([-1.92874985e-22,            -inf,             nan])
    """
    ops = [x1, x2, None] + ([None] if return_sign else [])
    it = np.nditer(
        ops,
        flags=["external_loop", "buffered", "grow_inner", "zerosize_ok"],
        op_flags=[["readonly"], ["readonly"]] + [["writeonly", "allocate"]] * (len(ops) - 2),
        op_dtypes=[dtype] * len(ops),
        casting="same_kind",
        buffersize=1 << 13,
    )
    with it:
        for u, v, o, *s in it:
            _kernel.logdiffexp(u, v, o, s[0] if s else None, tau)
        if return_sign:
            return it.operands[2], it.operands[3]
        return it.operands[2]
