"""logeinsumexp: Einstein summation in log space, contracted pairwise by logmatmulexp."""

from __future__ import annotations

import functools
import math
from typing import Any, Union

import numpy as np

from lsearray._delegation import executor
from lsearray._matmul import logmatmulexp
from lsearray._reductions import logsumexp

__all__ = ["logeinsumexp"]

_FUNC = "logeinsumexp"
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# An axis's label: a letter of the subscripts, or for an axis of the ellipsis its position
# counted from the right (-1 the last), an int that no letter can be.
Label = Union[str, int]


def _error(message: str) -> ValueError:
    return ValueError(f"{_FUNC}: {message}")


def _terms(term: str, subscripts: str) -> tuple[list[str], bool]:
    """The letters of one term and whether it holds an ellipsis, checked."""
    ellipsis = "..." in term
    if term.count("...") > 1 or "." in term.replace("...", "", 1):
        raise _error(f"an ellipsis is '...', at most once per term; got {term!r} in {subscripts!r}")
    letters = list(term.replace("...", ""))
    for c in letters:
        if c not in _LETTERS:
            raise _error(f"subscripts are letters a-z and A-Z, commas, '->' and '...'; "
                         f"got {c!r} in {subscripts!r}")
    return letters, ellipsis


def _labels(term: str, ndim: int) -> list[Label]:
    """The labels of a term of ``ndim`` axes: its letters, the ellipsis spelled out as the
    ints of its axes (right-aligned, as NumPy broadcasts them)."""
    head, dots, tail = term.partition("...")
    if not dots:
        return list(head)
    return list(head) + list(range(len(head) + len(tail) - ndim, 0)) + list(tail)


def _parse(subscripts: Any, shapes: list[tuple[int, ...]]) -> tuple[list[list[Label]], list[Label]]:
    """The labels of every operand's axes and of the output's, checked against the shapes."""
    if not isinstance(subscripts, str):
        raise TypeError(f"{_FUNC}: subscripts as a string such as 'ij,jk->ik' expected; "
                        f"got {type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise _error(f"'->' at most once expected; got {subscripts!r}")
    explicit = "->" in spec
    inputs, _, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise _error(f"subscripts {subscripts!r} name {len(terms)} operand(s); got {len(shapes)}")
    ellipsis_ndim = 0
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        letters, ellipsis = _terms(term, subscripts)
        if len(letters) > len(shape) or (not ellipsis and len(letters) != len(shape)):
            named = f"at least {len(letters)}" if ellipsis else str(len(letters))
            raise _error(f"subscripts {term!r} of operand {i} name {named} dimension(s); "
                         f"operand {i} has {len(shape)} (shape {shape})")
        if ellipsis:
            ellipsis_ndim = max(ellipsis_ndim, len(shape) - len(letters))
    labels = [_labels(term, len(shape)) for term, shape in zip(terms, shapes)]
    seen = [label for ls in labels for label in ls]
    if explicit:
        out_letters, out_ellipsis = _terms(output, subscripts)
        if ellipsis_ndim and not out_ellipsis:  # as numpy.einsum
            raise _error(f"the output of {subscripts!r} needs '...' for the operands' "
                         f"{ellipsis_ndim} axes of '...'")
        out = _labels(output, len(out_letters) + (ellipsis_ndim if out_ellipsis else 0))
        for c in out_letters:
            if out_letters.count(c) > 1:
                raise _error(f"output index {c!r} appears more than once in {subscripts!r}")
            if c not in seen:
                raise _error(f"output index {c!r} appears in no operand of {subscripts!r}")
    else:
        # numpy's implicit output: the axes of the ellipsis, then the letters that appear
        # once, in alphabetical (ASCII) order
        once = sorted(c for c in set(seen) if isinstance(c, str) and seen.count(c) == 1)
        out = list(range(-ellipsis_ndim, 0)) + once
    return labels, out


def _sizes(labels: list[list[Label]], shapes: list[tuple[int, ...]], subscripts: str) -> dict:
    """The size of every label: equal in every operand that has it, or 1 there (broadcast)."""
    sizes: dict = {}
    where: dict = {}
    for i, (ls, shape) in enumerate(zip(labels, shapes)):
        for label, n in zip(ls, shape):
            if sizes.get(label, 1) == 1:
                sizes[label], where[label] = n, i
            elif n not in (1, sizes[label]):
                name = repr(label) if isinstance(label, str) else f"ellipsis axis {label}"
                raise _error(f"index {name} of {subscripts!r} has size {sizes[label]} in operand "
                             f"{where[label]} and {n} in operand {i}; equal sizes (or 1) expected")
    return sizes


def _permuted(x: Any, labels: list[Label], order: list[Label], xp: Any) -> Any:
    """``x`` with its axes (named by ``labels``) in the order of ``order``."""
    perm = tuple(labels.index(label) for label in order)
    return x if perm == tuple(range(len(perm))) else xp.permute_dims(x, perm)


def _diagonal(x: Any, labels: list[Label], xp: Any) -> tuple[Any, list[Label]]:
    """``x`` with every repeated label's axes replaced by their diagonal (last)."""
    while len(set(labels)) < len(labels):
        label = next(lab for lab in labels if labels.count(lab) > 1)
        first, second = [i for i, lab in enumerate(labels) if lab == label][:2]
        rest = [i for i in range(len(labels)) if i not in (first, second)]
        x = xp.permute_dims(x, tuple(rest) + (first, second))
        n = x.shape[-1]
        # the flattened (n, n) block holds the diagonal at every (n + 1)-th element
        x = xp.reshape(x, x.shape[:-2] + (n * n,))[..., ::n + 1]
        labels = [labels[i] for i in rest] + [label]
    return x, labels


def _reduced(x: Any, labels: list[Label], keep: set) -> tuple[Any, list[Label]]:
    """``x`` with the labels outside ``keep`` summed over (in log space)."""
    axes = tuple(i for i, label in enumerate(labels) if label not in keep)
    if not axes:
        return x, labels
    return logsumexp(x, axis=axes), [label for label in labels if label in keep]


def _contracted(x: Any, lx: list[Label], y: Any, ly: list[Label], keep: set, sizes: dict,
                xp: Any) -> tuple[Any, list[Label]]:
    """``log(einsum(exp(x), exp(y)))`` onto the labels that ``keep`` asks for, as one batched
    `logmatmulexp` (a plain sum where no label is contracted). Each operand's labels that
    neither the other nor ``keep`` has are summed over first."""
    x, lx = _reduced(x, lx, keep | set(ly))
    y, ly = _reduced(y, ly, keep | set(lx))
    batch = [label for label in lx if label in ly and label in keep]
    inner = [label for label in lx if label in ly and label not in keep]
    left = [label for label in lx if label not in ly]
    right = [label for label in ly if label not in lx]
    bshape = tuple(sizes[label] for label in batch)
    nshape = tuple(sizes[label] for label in left)
    mshape = tuple(sizes[label] for label in right)
    x = _permuted(x, lx, batch + left + inner, xp)
    y = _permuted(y, ly, batch + inner + right, xp)
    if not inner:
        # an outer product: each product has one term, and its log is the plain sum
        out = (xp.reshape(x, bshape + nshape + (1,) * len(mshape))
               + xp.reshape(y, bshape + (1,) * len(nshape) + mshape))
        return out, batch + left + right
    k = math.prod(sizes[label] for label in inner)
    x = xp.reshape(x, bshape + (math.prod(nshape), k))
    y = xp.reshape(y, bshape + (k, math.prod(mshape)))
    return xp.reshape(logmatmulexp(x, y), bshape + nshape + mshape), batch + left + right


def _path(labels: list[list[Label]], output: list[Label], sizes: dict) -> list[tuple[int, ...]]:
    """opt_einsum's contraction order where it is installed, else left to right; in its
    convention: each pair leaves the list and their product joins its end."""
    n = len(labels)
    try:
        import opt_einsum
    except ImportError:
        return [(0, 1)] + [(0, n - 1 - t) for t in range(1, n - 1)]
    # symbols in the order of first appearance, so that ties in the path break alike on every run
    first_seen = dict.fromkeys(label for ls in labels for label in ls)
    symbols = {label: opt_einsum.get_symbol(i) for i, label in enumerate(first_seen)}
    terms = ["".join(symbols[label] for label in ls) for ls in labels]
    eq = ",".join(terms) + "->" + "".join(symbols[label] for label in output)
    shapes = tuple(tuple(sizes[label] for label in ls) for ls in labels)
    return _opt_einsum_path(eq, shapes)


@functools.lru_cache(maxsize=256)
def _opt_einsum_path(eq: str, shapes: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    """opt_einsum's path for ``eq`` on operands of ``shapes``, kept: finding it can cost more than
    the contraction of small operands (a loop over time steps calls with the same shapes)."""
    import opt_einsum

    path, _ = opt_einsum.contract_path(eq, *shapes, shapes=True)
    return [tuple(step) for step in path]


def logeinsumexp(subscripts: str, *operands: Any) -> Any:
    r"""Einstein summation in log space: ``log(einsum(subscripts, exp(a), exp(b), ...))``,
    computed stably.

    The subscripts are `numpy.einsum`'s: letters name axes, an index in several operands
    multiplies along it, an index left out of the output sums over it, a repeated index
    takes a diagonal, ``...`` stands for the axes not named (broadcast as in NumPy), and
    without ``->`` the output holds the axes of ``...`` then the letters that appear once,
    in alphabetical order. Axes of size 1 broadcast against their index's size elsewhere.

    The operands are contracted two at a time, in the order `opt_einsum.contract_path`
    finds where opt_einsum is installed, else from left to right (``((a b) c) ...``, which
    may cost much more for long chains of large tensors). Each pair becomes one batched
    `logmatmulexp` (the indices both keep as its batch axes, those it sums as ``k``), so
    every step is as accurate as that function and runs on every backend it supports;
    indices summed within one operand are first reduced by `logsumexp`; a pair that
    shares no summed index is added (an outer product).

    Parameters
    ----------
    subscripts : str
        The indices, as in `numpy.einsum`: ``"ij,jk->ik"``, ``"ii->i"``, ``"...ij,...jk"``.
    *operands : array_like or array API arrays
        Real input (bool, integer or floating), one per comma-separated term, all of one
        array library; complex input raises TypeError.

    Returns
    -------
    out : array
        The namespace's array on the input's device; a NumPy scalar for a 0-d NumPy result.
        Its dtype is the operands' promoted as `logmatmulexp` promotes (float16 and bfloat16
        computed in float32, integers and bool as the default floating dtype). An empty
        sum gives -inf.

    Raises
    ------
    ValueError
        For subscripts that do not parse, name another number of operands or of
        dimensions than given, or give one index two sizes (other than 1).
    TypeError
        For subscripts that are not a string, complex or non-numeric operands, or arrays of
        two libraries.

    See Also
    --------
    logmatmulexp : the two-operand ``"...ij,...jk->...ik"``.

    Notes
    -----
    Special values follow the definition, as in `logmatmulexp`: a sum whose terms are all
    -inf gives -inf (not nan), a nan gives nan, and ``inf + -inf`` inside a product is nan.
    The error of each pairwise step is that of `logmatmulexp` (a few ulp of
    ``max(|out|, 1)`` in float64), and the steps' errors add up along the path.

    Examples
    --------
    >>> import numpy as np
    >>> from lsearray import logeinsumexp
    >>> a = np.log([[1.0, 2.0], [3.0, 4.0]])
    >>> np.exp(logeinsumexp("ij,jk->ik", a, a))
    array([[ 7., 10.],
           [15., 22.]])
    >>> print(f"{np.exp(logeinsumexp('ii', a)):.12f}")  # the trace, 1 + 4
    5.000000000000

    The sum over the 81 paths of a chain whose potentials' ``exp`` would overflow,
    ``3000 + log(81)``:

    >>> x = np.full((3, 3), 1000.0)
    >>> logeinsumexp("ab,bc,cd->", x, x, x)
    np.float64(3004.3944491546727)
    """
    if not operands:
        raise _error("at least one operand expected; got none")
    ex = executor(*operands, func=_FUNC)
    arrays, dtypes = [], []
    for i, x in enumerate(operands):
        x, _, dtype = ex.real_floating(x, f"operand {i}", _FUNC)
        arrays.append(x)
        dtypes.append(dtype)
    xp = ex.xp
    shapes = [tuple(x.shape) for x in arrays]
    labels, out_labels = _parse(subscripts, shapes)
    sizes = _sizes(labels, shapes, subscripts)
    wanted = set(out_labels)
    ops = []
    for i, (x, ls) in enumerate(zip(arrays, labels)):
        full = tuple(sizes[label] for label in ls)
        if tuple(x.shape) != full:
            x = xp.broadcast_to(x, full)
        x, ls = _diagonal(x, ls, xp)
        elsewhere = {label for j, other in enumerate(labels) if j != i for label in other}
        ops.append(_reduced(x, ls, wanted | elsewhere))
    if len(ops) > 1:
        for pair in _path([ls for _, ls in ops], out_labels, sizes):
            i, j = sorted(pair)
            (x, lx), (y, ly) = ops[i], ops[j]
            del ops[j], ops[i]
            keep = wanted | {label for _, ls in ops for label in ls}
            ops.append(_contracted(x, lx, y, ly, keep, sizes, xp))
    x, ls = _reduced(*ops[0], wanted)
    out = _permuted(x, ls, out_labels, xp)
    dtype = ex.result_type(*dtypes)
    if ex.on_kernel:  # NumPy's conventions: computed in float64, a scalar for 0-d
        return np.asarray(out).astype(dtype, copy=False)[()]
    return out if out.dtype == dtype else xp.astype(out, dtype)
