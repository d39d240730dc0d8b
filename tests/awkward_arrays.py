"""A generator of awkward NumPy inputs (specials, byte order, memory layout, read-only, memmaps, shapes)
and of the second operands, axes and logits that the other public functions take with them."""

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "Awkward", "awkward_inputs", "axis_choices", "degenerate_logits", "matmul_partner", "pair_partner", "row_axis",
    "sampling_logits", "seed_for", "weight_variants",
]

# Cases whose point is NumPy's memory (order, strides, byte order, read-only flag, memmap): another
# backend copies the values into its own arrays, so there they repeat a value case.
_LAYOUT_TAGS = ("-F", "-T", "strided", "negstride", "byteswapped", "readonly", "memmap")


def seed_for(name):
    """A stable per-name seed (independent of PYTHONHASHSEED)."""
    return zlib.crc32(name.encode())


@dataclass(frozen=True)
class Awkward:
    """One awkward input: `make(tmp_path)` builds a fresh array of `shape` and `dtype`."""

    id: str
    make: Callable
    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def numpy_only(self):
        """Whether the case is about NumPy's memory layout rather than values, dtype or shape."""
        return any(tag in self.id for tag in _LAYOUT_TAGS)

    def __repr__(self):
        return f"Awkward({self.id})"


def _values(shape, dtype, seed, specials=False):
    """Random normal values (scale 3); with specials, nan / +inf / -inf sprinkled and a -inf slice."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape)
    if specials and x.size:
        flat = x.reshape(-1)
        n = flat.size
        flat[rng.choice(n, size=max(1, n // 12), replace=False)] = -np.inf
        flat[rng.choice(n, size=max(1, n // 25), replace=False)] = np.inf
        flat[rng.choice(n, size=max(1, n // 25), replace=False)] = np.nan
        if x.ndim >= 2:
            x[0] = -np.inf          # a whole slice of -inf
    return x.astype(dtype)


def _memmap(tmp_path, name, arr, order="C"):
    path = tmp_path / f"{name}.dat"
    w = np.memmap(path, dtype=arr.dtype, mode="w+", shape=arr.shape, order=order)
    w[...] = arr
    w.flush()
    del w
    return np.memmap(path, dtype=arr.dtype, mode="r", shape=arr.shape, order=order)


def _readonly(x):
    x = np.array(x)
    x.flags.writeable = False
    return x


def _byteswapped(x):
    """Same values, non-native (big-endian on x86) byte order."""
    dt = x.dtype.newbyteorder(">") if x.dtype.byteorder in "=<|" else x.dtype
    return x.astype(dt)


def _cases_for(dtype):
    dt = np.dtype(dtype)
    tag = dt.name
    cases = []

    def add(name, shape, make):
        full = f"{tag}-{name}"
        seed = seed_for(full)
        cases.append(Awkward(full, (lambda tmp, make=make, seed=seed: make(seed, tmp)), tuple(shape), dt))

    v = lambda shape, seed, sp=False: _values(shape, dt, seed, sp)  # noqa: E731

    add("1d", (7,), lambda s, t: v((7,), s))
    add("1d-special", (9,), lambda s, t: v((9,), s, True))
    add("2d-C", (5, 6), lambda s, t: v((5, 6), s))
    add("2d-F", (5, 6), lambda s, t: np.asfortranarray(v((5, 6), s)))
    add("2d-T", (5, 6), lambda s, t: v((6, 5), s).T)
    add("2d-special", (5, 6), lambda s, t: v((5, 6), s, True))
    add("2d-special-F", (4, 7), lambda s, t: np.asfortranarray(v((4, 7), s, True)))
    add("3d", (3, 4, 5), lambda s, t: v((3, 4, 5), s))
    add("3d-F-special", (3, 4, 5), lambda s, t: np.asfortranarray(v((3, 4, 5), s, True)))
    add("3d-transposed-strided", (2, 3, 4),
        lambda s, t: v((3, 4, 4), s).transpose(2, 0, 1)[::2])
    add("4d", (2, 3, 2, 4), lambda s, t: v((2, 3, 2, 4), s))
    add("4d-special", (2, 3, 2, 4), lambda s, t: v((2, 3, 2, 4), s, True))
    add("strided-1d", (7,), lambda s, t: v((14,), s)[::2])
    add("strided-2d-cols", (5, 6), lambda s, t: v((5, 18), s)[:, ::3])
    add("negstride-1d", (7,), lambda s, t: v((7,), s)[::-1])
    add("negstride-2d-cols", (5, 6), lambda s, t: v((5, 12), s)[:, ::-2])
    add("negstride-3d", (3, 2, 5), lambda s, t: v((3, 2, 10), s, True)[::-1, :, ::-2])
    add("byteswapped-2d", (5, 6), lambda s, t: _byteswapped(v((5, 6), s)))
    add("byteswapped-strided", (4, 3), lambda s, t: _byteswapped(v((4, 6), s, True))[:, ::-2])
    add("readonly-2d", (5, 6), lambda s, t: _readonly(v((5, 6), s, True)))
    add("memmap-2d", (5, 6), lambda s, t: _memmap(t, f"{tag}-m2", v((5, 6), s)))
    add("memmap-3d-F", (3, 4, 5), lambda s, t: _memmap(t, f"{tag}-m3", v((3, 4, 5), s, True), "F"))
    add("memmap-strided", (5, 3), lambda s, t: _memmap(t, f"{tag}-m4", v((5, 6), s))[:, ::-2])
    add("0d", (), lambda s, t: np.asarray(v((), s)))
    add("0d-nan", (), lambda s, t: np.array(np.nan, dtype=dt))
    add("0d-inf", (), lambda s, t: np.array(np.inf, dtype=dt))
    add("empty-0", (0,), lambda s, t: np.zeros((0,), dtype=dt))
    add("empty-3x0", (3, 0), lambda s, t: np.zeros((3, 0), dtype=dt))
    add("empty-0x4", (0, 4), lambda s, t: np.zeros((0, 4), dtype=dt))
    add("size1-1", (1,), lambda s, t: v((1,), s))
    add("size1-1x5", (1, 5), lambda s, t: v((1, 5), s))
    add("size1-5x1", (5, 1), lambda s, t: v((5, 1), s))
    add("size1-1x1x3", (1, 1, 3), lambda s, t: v((1, 1, 3), s))
    add("all-neginf", (3, 4), lambda s, t: np.full((3, 4), -np.inf, dtype=dt))
    return cases


def _extra_dtype_cases():
    cases = []
    rng_seed = seed_for("extra")
    cases.append(Awkward("int32-2d", lambda t: np.arange(-12, 18, dtype=np.int32).reshape(5, 6) % 7,
                         (5, 6), np.dtype(np.int32)))
    cases.append(Awkward("int64-1d", lambda t: np.arange(5, dtype=np.int64), (5,), np.dtype(np.int64)))
    cases.append(Awkward("bool-2d", lambda t: (np.arange(12).reshape(3, 4) % 3 == 0), (3, 4),
                         np.dtype(bool)))
    cases.append(Awkward("float16-2d", lambda t: _values((4, 5), np.float16, rng_seed), (4, 5),
                         np.dtype(np.float16)))
    cases.append(Awkward("float16-special", lambda t: _values((4, 5), np.float16, rng_seed + 1, True),
                         (4, 5), np.dtype(np.float16)))
    return cases


def awkward_inputs():
    """All awkward inputs: float64 and float32 variants of every layout, plus int/bool/float16 cases."""
    return _cases_for(np.float64) + _cases_for(np.float32) + _extra_dtype_cases()


def axis_choices(ndim):
    """None, every int, every negative int, tuples of two (one with negative entries) and all axes."""
    nd = max(ndim, 1)              # 0-d input is treated as 1-d (like scipy)
    choices = [None] + list(range(nd)) + [-i for i in range(1, nd + 1)]
    if nd >= 2:
        pairs = [(i, j) for i in range(nd) for j in range(i + 1, nd)]
        choices += pairs
        choices.append((-1, 0))
        if nd >= 3:
            choices.append(tuple(range(nd)))
            choices.append((nd - 1, 0, 1))   # unsorted triple
    else:
        choices.append((0,))
    return choices


def weight_variants(shape, dtype, seed):
    """b variants: None, full-shape positive, broadcast from a smaller shape, zeros and negatives."""
    rng = np.random.default_rng(seed)
    wdtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
    out = {"b=None": None}
    out["b=full"] = rng.uniform(0.5, 2.0, size=shape).astype(wdtype)
    small = tuple(1 if i % 2 == 0 else s for i, s in enumerate(shape))[1:]
    out["b=bcast"] = rng.uniform(0.5, 2.0, size=small).astype(wdtype)
    out["b=signed"] = rng.choice(np.array([-1.0, 0.0, 0.0, 0.5, 1.0, 2.0]), size=shape).astype(wdtype)
    return out


def _operand(shape, dtype, seed):
    """Values of `dtype` for a second operand: normal values with specials for floats, small
    integers (or booleans) otherwise."""
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating):
        return _values(shape, dt.newbyteorder("="), seed, specials=True)
    rng = np.random.default_rng(seed)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    return rng.integers(-3, 4, size=shape).astype(dt)


def pair_partner(case):
    """x2 for an elementwise binary function of the case's x1: its shape with the last axis of
    length 1 (broadcast along it), specials included; 0-d for 0-d."""
    shape = case.shape[:-1] + (1,) if case.ndim else ()
    return _operand(shape, case.dtype, seed_for(case.id + "-pair"))


def matmul_partner(case):
    """b for `case @ b`: (k, 3) with k the case's last axis, specials included, in Fortran order."""
    k = case.shape[-1] if case.ndim else 1
    return np.asfortranarray(_operand((k, 3), case.dtype, seed_for(case.id + "-matrix")))


def row_axis(ndim):
    """The axis of a row-wise function (softmax, a scan, the categories): the last, None for 0-d."""
    return -1 if ndim else None


def sampling_logits(a):
    """Logits every slice along the last axis of which can be sampled: the float64 values of `a`
    with nan made -inf and, in a slice of only -inf, its first element 0 (its +inf stay)."""
    x = np.array(a, dtype=np.float64)
    x[np.isnan(x)] = -np.inf
    if x.ndim and x.shape[-1]:
        dead = np.all(x == -np.inf, axis=-1)
        x[dead, 0] = 0.0
    return x


def degenerate_logits(shape, seed):
    """Logits of `shape` with one finite element per slice along the last axis (the rest -inf):
    (logits, the index of that element in each slice)."""
    rng = np.random.default_rng(seed)
    x = np.full(shape, -np.inf)
    index = rng.integers(0, shape[-1], size=shape[:-1])
    np.put_along_axis(x, index[..., None], rng.normal(scale=3.0, size=shape[:-1] + (1,)), axis=-1)
    return x, index
