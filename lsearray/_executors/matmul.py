"""logmatmulexp: the matrix product in log space, log(exp(a) @ exp(b)), in tiles and stable."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import array_namespace, is_array_api_obj

from lsearray._executors.array_api_lse import const
from lsearray._executors.dask_tree import block_executor
from lsearray._executors.narrow import narrowed
from lsearray._validation import (
    as_real_array, complex_rejected, device_mismatch, not_numeric, promoted_dtype,
)
from lsecore._kernel import exp_shifted, matmul_finish

__all__ = ["array_api_product", "dask_product", "numpy_product"]

_FUNC = "logmatmulexp"
# a and b are exp'd a tile at a time, never whole: a in row tiles of at most _TILE elements
# (16 MiB of float64) and _ROWS rows, b in column tiles of as many elements and at most _COLS
# columns, k in stretches of at most _K_TILE. Each BLAS call packs its whole operands again,
# so that tiles as wide as they are tall (a's tile repacked once per column tile, b's once per
# row tile) keep it nearly at the speed of one product.
_TILE = 1 << 21
_ROWS = 1024
_COLS = 1024
_K_TILE = 1 << 13
# An entry of the shifted product is recomputed exactly where log(product) < -_GAP * max(|result|, 1):
# there the shift by row and column maxima would cost more than a few ulp of the result (the
# log's rounding grows with |log(product)|).
_GAP = 2.0


def _shifts(m: Any, xp: ModuleType) -> Any:
    """The shifts of the rows of a (columns of b) with maxima ``m``: ``m`` rounded to an
    integer, 0 where it is not finite. A row's shift plus a column's is then exact (while
    both are below 2^52 in float64, 2^23 in float32), and so is its sum with the log of a
    shifted product that cancels it (Sterbenz), so that the result is rounded once. The
    maxima themselves, whose sum rounds by up to half an ulp of |ma + mb| <= 3 max(|out|, 1),
    cost up to 2 ulp of the result that way (3.95 ulp in all with the differences' rounding,
    see `_exp_shifted`, found by a random search); the rounded shifts leave exp(x - shift)
    at most e^0.5."""
    return xp.where(xp.isfinite(m), xp.round(m), xp.zeros_like(m))


class _Shapes(NamedTuple):
    """The product's shapes: broadcast batch, the matrix sizes, and the result's shape."""

    batch: tuple[int, ...]
    n: int
    k: int
    m: int
    result: tuple[int, ...]


def _shapes(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> _Shapes:
    """matmul's shape rules for ``a`` and ``b``, with errors that name both shapes."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    for name, shape in (("a", a_shape), ("b", b_shape)):
        if not shape:
            raise ValueError(f"{_FUNC}: {name} must have at least one dimension; got a 0-d array")
    n, k = (1, a_shape[0]) if len(a_shape) == 1 else a_shape[-2:]
    k_b, m = (b_shape[0], 1) if len(b_shape) == 1 else b_shape[-2:]
    if k != k_b:
        b_axis = "only axis" if len(b_shape) == 1 else "second-to-last"
        raise ValueError(
            f"{_FUNC}: a with shape {a_shape} and b with shape {b_shape} do not align: "
            f"a's last axis has {k} elements, b's {b_axis} {k_b}"
        )
    try:
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(
            f"{_FUNC}: a with shape {a_shape} and b with shape {b_shape} do not broadcast: "
            f"batch dimensions {a_shape[:-2]} and {b_shape[:-2]}"
        ) from None
    result = batch + (() if len(a_shape) == 1 else (n,)) + (() if len(b_shape) == 1 else (m,))
    return _Shapes(batch, n, k, m, result)


def _spans(length: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the pieces of ``range(length)`` of ``size`` elements (the last shorter)."""
    return [(start, min(start + size, length)) for start in range(0, length, size)]


class _Tiles(NamedTuple):
    """Batch elements, rows of a, inner elements and columns of b in one tile."""

    batch: int
    rows: int
    inner: int
    cols: int


def _tiles(s: _Shapes) -> _Tiles:
    """Tile sizes for the product of shapes ``s`` (see `_TILE`)."""
    inner = min(s.k, _K_TILE)
    rows = min(s.n, _ROWS, max(1, _TILE // inner))
    cols = min(s.m, _COLS, max(1, _TILE // inner))
    batch = 1
    if (rows, inner, cols) == (s.n, s.k, s.m):  # small matrices: several in one tile
        batch = max(1, (_TILE // 8) // max(s.n * s.k, s.k * s.m, s.n * s.m))
    return _Tiles(batch, rows, inner, cols)


def _thresholds(dtype: Any, xp: ModuleType) -> tuple[float, float]:
    """``(tiny, -log(tiny))``: below ``tiny`` the shifted product is not trusted. Terms that
    matter (at least ``eps * tiny``) are then products of normal numbers, far from underflow."""
    info = xp.finfo(dtype)
    tiny = float(info.smallest_normal) / float(info.eps) ** 2
    return tiny, -math.log(tiny)


# ---- NumPy -----------------------------------------------------------------------------------

_TINY, _LOG_TINY = _thresholds(np.float64, np)


def _real_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` as a real NumPy array, checked; bool viewed as uint8 (NumPy does not subtract bools)."""
    x = as_real_array(x, name, _FUNC)
    return x.view(np.uint8) if x.dtype == np.bool_ else x


def _result_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """NumPy's promotion of the inputs' dtypes; float64 for integers and bool."""
    dtype = np.result_type(a.dtype, b.dtype)
    return dtype.newbyteorder("=") if dtype.kind == "f" else np.dtype(np.float64)


def _stack(x: np.ndarray, start: int, stop: int, batch: tuple[int, ...]) -> np.ndarray:
    """Batch elements ``start:stop`` of ``x`` (broadcast to ``batch``) as a 3-D stack: a view
    for one element, a copy of a few small matrices otherwise."""
    if stop - start == 1:
        return x[np.unravel_index(start, batch)][None]
    return x[np.unravel_index(np.arange(start, stop), batch)]


def _exp_shifted(x: np.ndarray, shift: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``exp(x - shift)`` of a stack ``x`` (Bt, r, c) and a shift that broadcasts against it,
    in float64 at the start of ``buffer``, the difference's rounding error carried into the exp.

    ``d = x - shift`` rounds by up to half an ulp of ``|d|``, and a term of the product
    takes that error times ``|d|`` into the log: up to ``max(|out|, 1)`` ulp of the result
    where the product is kept (``|d|`` up to ``2 max(|out|, 1)``, see `_GAP`). The shift
    being an integer, ``d + shift`` is exact (a multiple of ``d``'s spacing, the spacing
    at most 1, and no larger than about ``|x|``), so ``e = x - (d + shift)`` is the
    rounding error exactly, and the kernel's loop (`lsecore._kernel.exp_shifted`) takes
    ``exp(d + e)`` in one pass.
    """
    if x.dtype not in (np.float32, np.float64):  # integers, bool, float16, long double
        x = x.astype(np.float64)
    out = buffer[:x.size].reshape(x.shape)
    exp_shifted(x, np.broadcast_to(shift, x.shape), out)
    return out


def _finish(p: np.ndarray, ma: np.ndarray, mb: np.ndarray, sa: np.ndarray, sb: np.ndarray,
            a: np.ndarray, b: np.ndarray, out: np.ndarray, flags: np.ndarray) -> None:
    """Write the result tile into ``out`` from the shifted product ``p`` (Bt, ti, tj; ``out``
    itself where that is float64, else a buffer it may overwrite), the row maxima ``ma``
    (Bt, ti) and column maxima ``mb`` (Bt, tj) of ``a`` (Bt, ti, k) and ``b`` (Bt, k, tj) and
    their shifts ``sa`` and ``sb`` (see `_shifts`), by one kernel loop
    (`lsecore._kernel.matmul_finish`: the log and the shifts added); entries the product does
    not give accurately (the loop flags them, in a view of the buffer ``flags``: see `_GAP` and
    `_thresholds`, and rows or columns that are not finite) are recomputed from ``a`` and
    ``b``."""
    bad = flags[:p.size].reshape(p.shape)
    # the kernel rounds once to float32 and float64; other dtypes take the float64 tile
    direct = out.dtype in (np.float32, np.float64)
    r = out if direct else p
    if matmul_finish(p, ma, mb, sa, sb, bad, r, _GAP, _LOG_TINY):
        _recompute(r, bad, a, b)
    if not direct:
        out[...] = r


def _recompute(r: np.ndarray, bad: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``r[bad]`` = logsumexp over k of ``a[.., i, :] + b[.., :, j]``, gathered in chunks."""
    from lsearray._executors.numpy import NumPyExecutor  # which imports this module

    t, i, j = np.nonzero(bad)
    step = max(1, _TILE // (4 * a.shape[-1]))
    for start in range(0, t.size, step):
        part = slice(start, start + step)
        z = np.add(a[t[part], i[part]], b[t[part], :, j[part]], dtype=np.float64)
        r[t[part], i[part], j[part]] = NumPyExecutor().logsumexp(z, 1, None, False, False, 1.0)


def _numpy(a: np.ndarray, b: np.ndarray, s: _Shapes, dtype: np.dtype) -> np.ndarray:
    """The product of NumPy ``a`` (..., n, k) and ``b`` (..., k, m) in float64 tiles."""
    out = np.empty(s.batch + (s.n, s.m), dtype=dtype)
    if out.size == 0 or s.k == 0:
        out.fill(-math.inf)
        return out
    ma = np.broadcast_to(np.max(a, axis=-1), s.batch + (s.n,))
    mb = np.broadcast_to(np.max(b, axis=-2), s.batch + (s.m,))
    a = np.broadcast_to(a, s.batch + (s.n, s.k))
    b = np.broadcast_to(b, s.batch + (s.k, s.m))
    flat = out.reshape(-1, s.n, s.m)
    t = _tiles(s)
    with np.errstate(all="ignore"):
        for start, stop in _spans(flat.shape[0], t.batch):
            stacks = [_stack(x, start, stop, s.batch) for x in (a, b, ma, mb)]
            _numpy_tiles(*stacks, flat[start:stop], t)
    return out


def _numpy_tiles(a: np.ndarray, b: np.ndarray, ma: np.ndarray, mb: np.ndarray, out: np.ndarray,
                 t: _Tiles) -> None:
    """Write the product of the stacks ``a`` and ``b`` into ``out``: a's row tiles exp'd once
    each, b's column tiles once per row tile, the shifted products summed over k tiles (into
    ``out`` itself where it is float64), in buffers allocated once for all tiles."""
    ma, mb = ma.astype(np.float64), mb.astype(np.float64)
    sa, sb = _shifts(ma, np), _shifts(mb, np)
    inner = _spans(a.shape[-1], t.inner)
    stack = a.shape[0]
    ea_buffer = np.empty(stack * t.rows * t.inner)
    eb_buffer = np.empty(stack * t.inner * t.cols)
    in_place = out.dtype == np.float64
    p_buffer = None if in_place else np.empty(stack * t.rows * t.cols)
    flags = np.empty(stack * t.rows * t.cols, dtype=np.uint8)
    for i0, i1 in _spans(a.shape[-2], t.rows):
        ea = _exp_shifted(a[:, i0:i1], sa[:, i0:i1, None], ea_buffer) if len(inner) == 1 else None
        for j0, j1 in _spans(b.shape[-1], t.cols):
            tile = out[:, i0:i1, j0:j1]
            p = tile if p_buffer is None else p_buffer[:tile.size].reshape(tile.shape)
            for k0, k1 in inner:
                ea_k = ea if ea is not None else _exp_shifted(a[:, i0:i1, k0:k1], sa[:, i0:i1, None],
                                                              ea_buffer)
                eb = _exp_shifted(b[:, k0:k1, j0:j1], sb[:, None, j0:j1], eb_buffer)
                if k0 == 0:
                    np.matmul(ea_k, eb, out=p)
                else:
                    p += ea_k @ eb
            _finish(p, ma[:, i0:i1], mb[:, j0:j1], sa[:, i0:i1], sb[:, j0:j1], a[:, i0:i1],
                    b[:, :, j0:j1], tile, flags)


# ---- array API -------------------------------------------------------------------------------


def _array_api_inputs(a: Any, b: Any, xp: ModuleType) -> tuple[Any, Any, Any, Any]:
    """``(a, b, compute dtype, result dtype)`` in ``xp``: real input only, promoted as the
    namespace promotes (where it does not mix the kinds, integers and bool count as its default
    real floating dtype), integers and bool alone in that default dtype, float16 and bfloat16
    computed in float32."""
    a = a if is_array_api_obj(a) else xp.asarray(a)
    dev = device_of(a)
    b = b if is_array_api_obj(b) else xp.asarray(b, device=dev)
    for name, x in (("a", a), ("b", b)):
        if xp.isdtype(x.dtype, "complex floating"):
            raise complex_rejected(_FUNC, name, x.dtype)
        if not xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
            raise not_numeric(_FUNC, name, x.dtype)
    if None not in (dev, device_of(b)) and device_of(b) != dev:  # None: being traced
        raise device_mismatch(_FUNC, ("a", dev), ("b", device_of(b)))
    default = xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]
    dtype = promoted_dtype(xp, a, b, dev)
    dtype = dtype if xp.isdtype(dtype, "real floating") else default
    compute = xp.float32 if xp.finfo(dtype).bits < 32 else dtype
    return xp.astype(a, compute), xp.astype(b, compute), compute, dtype


def _known(x: Any, ex: Any) -> bool | None:
    """``bool(x)``, or None where its value cannot be read (an array being traced or
    compiled, or under a function transform: see the executor's `readable`)."""
    return bool(x) if ex.readable(x) else None


def _exact(a: Any, b: Any, ex: Any) -> Any:
    """Every entry of the product as logsumexp over k of ``a[.., i, :, None] + b[.., None, :, j]``,
    a few rows at a time (by the executor's `map_row_blocks`)."""
    xp = ex.xp
    k, m = a.shape[-1], b.shape[-1]
    rows = max(1, _TILE // (math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])) * k * m))

    def exact_rows(x: Any) -> Any:
        z = xp.expand_dims(x, axis=-1) + xp.expand_dims(b, axis=-3)
        return xp.squeeze(ex.exact_logsumexp(z, z.ndim - 2), axis=-2)

    return ex.map_row_blocks(exact_rows, a, rows)


def _traced(bad: Any, r: Any, a: Any, b: Any, ex: Any) -> Any:
    """``where(bad, exact, r)`` for a tile being traced, whose entries cannot be inspected:
    every entry computed exactly, where the executor can branch on a traced value only when
    some entry needs it (`when_any`)."""
    xp = ex.xp
    return ex.when_any(bad, lambda: xp.where(bad, _exact(a, b, ex), r), lambda: r)


def _gathered(a: Any, b: Any, bad: Any, ex: Any) -> Any:
    """An array shaped like ``bad`` holding the exact entries where ``bad`` is set (0 elsewhere):
    the rows of ``a`` and columns of ``b`` they need are gathered, in chunks."""
    xp = ex.xp
    shape = tuple(bad.shape)
    n, m, k = shape[-2], shape[-1], a.shape[-1]
    rows = xp.reshape(xp.broadcast_to(a, shape[:-1] + (k,)), (-1, k))
    cols = xp.reshape(xp.matrix_transpose(xp.broadcast_to(b, shape[:-2] + (k, m))), (-1, k))
    (flat,) = xp.nonzero(xp.reshape(bad, (-1,)))
    values = []
    for start, stop in _spans(flat.shape[0], max(1, _TILE // (4 * k))):
        f = flat[start:stop]
        z = xp.take(rows, f // m, axis=0) + xp.take(cols, (f // (n * m)) * m + f % m, axis=0)
        values.append(xp.reshape(ex.exact_logsumexp(z, 1), (-1,)))
    values = values[0] if len(values) == 1 else xp.concat(values)
    return ex.set_masked(xp.zeros(shape, dtype=a.dtype, device=device_of(a)), bad, values)


def _exp_shifted_xp(x: Any, shift: Any, xp: ModuleType) -> Any:
    """`_exp_shifted` in the namespace ``xp``, in ``x``'s dtype (exact for shifts below 2^23
    in float32); the correction's gradient is 0 (``e`` is identically 0 in exact
    arithmetic), so gradients are exp's."""
    d = x - shift
    e = x - (d + shift)
    e = xp.where(xp.isnan(e), xp.zeros_like(e), e)
    y = xp.exp(d)
    return y + y * e


def _array_api_tile(p: Any, ma: Any, mb: Any, sa: Any, sb: Any, a: Any, b: Any, finite: bool | None,
                    ex: Any) -> Any:
    """The result tile from the shifted product ``p``, the row and column maxima ``ma`` and
    ``mb`` of ``a`` and ``b`` (``finite``: all of them are finite) and their shifts ``sa`` and
    ``sb``, as `_finish` decides; the branches of `where` are finite where they are not taken,
    so gradients stay finite."""
    xp = ex.xp
    tiny, log_tiny = _thresholds(p.dtype, xp)
    finite_a, finite_b = xp.isfinite(ma), xp.isfinite(mb)
    usable = p >= tiny
    log_p = xp.log(xp.where(usable, p, const(1.0, p, xp)))
    r = (sa + sb) + log_p
    gap = xp.minimum(xp.maximum(xp.abs(r), const(1.0, r, xp)) * _GAP, const(log_tiny, r, xp))
    bad = ~usable | (log_p < -gap)
    if not finite:
        # Rows and columns that are not finite: nan gives nan, -inf gives -inf (nan against
        # +inf), and +inf against finite rows and columns is +inf or nan, which only the
        # exact sum tells.
        special = ~(finite_a & finite_b)
        s = ma + mb
        bad = xp.where(special, s == math.inf, bad)
        fill = xp.where(xp.isnan(s), const(math.nan, r, xp), const(-math.inf, r, xp))
        r = xp.where(special, fill, r)
    any_bad = _known(xp.any(bad), ex)
    if any_bad is None:
        return _traced(bad, r, a, b, ex)
    return xp.where(bad, _gathered(a, b, bad, ex), r) if any_bad else r


def _array_api(a: Any, b: Any, s: _Shapes, ex: Any) -> Any:
    """The product of ``a`` (..., n, k) and ``b`` (..., k, m) in any array-API namespace, in
    the tiles of `_numpy_tiles`, by array-API operations only (autograd and jax.jit see
    through them)."""
    xp = ex.xp
    if s.k == 0 or 0 in (s.n, s.m) or 0 in s.batch:
        return xp.full(s.batch + (s.n, s.m), -math.inf, dtype=a.dtype, device=device_of(a))
    ma = xp.max(a, axis=-1, keepdims=True)
    mb = xp.max(b, axis=-2, keepdims=True)
    finite_a, finite_b = xp.isfinite(ma), xp.isfinite(mb)
    finite = _known(xp.all(finite_a) & xp.all(finite_b), ex)
    sa, sb = _shifts(ma, xp), _shifts(mb, xp)
    t = _tiles(s)
    inner = _spans(s.k, t.inner)
    rows = []
    for i0, i1 in _spans(s.n, t.rows):
        a_i, sa_i = a[..., i0:i1, :], sa[..., i0:i1, :]
        ea = _exp_shifted_xp(a_i, sa_i, xp) if len(inner) == 1 else None
        tiles = []
        for j0, j1 in _spans(s.m, t.cols):
            b_j, sb_j = b[..., j0:j1], sb[..., j0:j1]
            p = None
            for k0, k1 in inner:
                ea_k = ea if ea is not None else _exp_shifted_xp(a_i[..., k0:k1], sa_i, xp)
                product = xp.matmul(ea_k, _exp_shifted_xp(b_j[..., k0:k1, :], sb_j, xp))
                p = product if p is None else p + product
            tiles.append(_array_api_tile(p, ma[..., i0:i1, :], mb[..., j0:j1], sa_i, sb_j, a_i, b_j,
                                         finite, ex))
        rows.append(tiles[0] if len(tiles) == 1 else xp.concat(tiles, axis=-1))
    return rows[0] if len(rows) == 1 else xp.concat(rows, axis=-2)


# ---- dask ------------------------------------------------------------------------------------


def _block(a: Any, b: Any) -> Any:
    """One (i, k, j) block of the dask product: a float64 result with the k-block axis kept."""
    s = _shapes(a.shape, b.shape)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        out = _numpy(_real_numpy(a, "a"), _real_numpy(b, "b"), s, np.dtype(np.float64))
    else:
        ex = block_executor(a, b)
        xp = ex.xp
        with np.errstate(all="ignore"):
            out = _array_api(xp.astype(a, xp.float64), xp.astype(b, xp.float64), s, ex)
    return out[..., None, :]


def dask_product(a: Any, b: Any) -> Any:
    """The lazy product of dask arrays: one block product per (i, k, j) triple of chunks
    (each block of a and b read once for every result block it feeds), merged over the k
    chunks by the dask logsumexp reduction."""
    import dask.array as da

    from lsearray._executors.dask import DaskExecutor  # which imports this module

    a = a if isinstance(a, da.Array) else da.asarray(a)
    b = b if isinstance(b, da.Array) else da.asarray(b)
    dtype = _result_dtype(_real_numpy(np.empty(0, a.dtype), "a"), _real_numpy(np.empty(0, b.dtype), "b"))
    s = _shapes(a.shape, b.shape)
    a = a[None, :] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    ndim = max(a.ndim, b.ndim)
    a, b = a[(None,) * (ndim - a.ndim)], b[(None,) * (ndim - b.ndim)]
    left = tuple(range(ndim))
    right = left[:-2] + (ndim - 1, ndim)
    meta = array_namespace(a._meta).empty((0,) * (ndim + 1), dtype=np.float64)
    stack = da.blockwise(_block, left[:-1] + (ndim - 1, ndim), a, left, b, right,
                         adjust_chunks={ndim - 1: 1}, dtype=np.float64, concatenate=False, meta=meta)
    out = stack[..., 0, :] if stack.shape[-2] == 1 else DaskExecutor().logsumexp(stack, -2, None, False, False, 1.0)
    return narrowed(out, dtype).reshape(s.result)


def numpy_product(a: Any, b: Any) -> Any:
    """`lsearray.logmatmulexp` of NumPy input (lists, scalars), in NumPy's conventions."""
    a, b = _real_numpy(a, "a"), _real_numpy(b, "b")
    dtype = _result_dtype(a, b)
    s = _shapes(a.shape, b.shape)
    a = a[None, :] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    out = _numpy(a, b, s, dtype).reshape(s.result)
    return out[()] if out.ndim == 0 else out


def array_api_product(a: Any, b: Any, ex: Any) -> Any:
    """`lsearray.logmatmulexp` of arrays of the array-API executor ``ex``'s namespace."""
    xp = ex.xp
    a, b, compute, dtype = _array_api_inputs(a, b, xp)
    s = _shapes(a.shape, b.shape)
    a = xp.expand_dims(a, axis=0) if a.ndim == 1 else a
    b = xp.expand_dims(b, axis=-1) if b.ndim == 1 else b
    with ex.quiet():
        out = xp.reshape(_array_api(a, b, s, ex), s.result)
    return out if dtype == compute else xp.astype(out, dtype)
