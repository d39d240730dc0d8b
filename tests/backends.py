"""One backend helper per array library, for the `xp` fixture: build inputs, read results, check kinds.

Every backend test takes the `xp` fixture (defined in conftest.py) and uses only this interface:

    xp.name                      "numpy", "numpy-readonly", "array_api_strict", "torch", "jax", "dask"
    xp.make(np_array, dtype)     the backend's array holding those values (dtype: a name such as
                                 "float32"; None keeps the NumPy dtype); skips if the dtype is missing
    xp.to_numpy(x)               a NumPy copy of a result (computes a dask array)
    xp.default_float(like)       name of the namespace's default real floating dtype on like's device
    xp.subset(keep, jax_keep)    skip this parametrization on jax/dask unless keep (runtime; see ALL_CASES)
    xp.check(result, like, dtype, shape)
                                 asserts that result is the same kind of array as `like` (namespace per
                                 array_api_compat.array_namespace, device per array_api_compat.device),
                                 has that dtype (a name) and shape, is lazy for dask, and is a NumPy
                                 scalar for a NumPy 0-d reduction result (scalar=True)
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from reference import tolerances

__all__ = ["BACKEND_NAMES", "COMPLEX_BACKENDS", "Backend", "assert_values", "make_backend"]

BACKEND_NAMES = ["numpy", "numpy-readonly", "array_api_strict", "torch", "jax", "dask"]
COMPLEX_BACKENDS = BACKEND_NAMES  # every backend here has complex64 / complex128

_JAX_CONFIGURED = False

# jax compiles every primitive for every new shape/dtype in eager mode (about 1 s per new shape for
# a logsumexp call) and dask builds and runs a graph per call (0.05-0.3 s), so the heaviest
# parametrizations run a representative subset on these two; set LSEARRAY_TEST_ALL_BACKEND_CASES=1
# to run every case on every backend.
ALL_CASES = os.environ.get("LSEARRAY_TEST_ALL_BACKEND_CASES", "") not in ("", "0")
SLOW_BACKENDS = ("jax", "dask")


def _jax():
    """Import jax with 64-bit types enabled (set once, before any jax array is created here)."""
    global _JAX_CONFIGURED
    jax = pytest.importorskip("jax")
    if not _JAX_CONFIGURED:
        jax.config.update("jax_enable_x64", True)
        _JAX_CONFIGURED = True
    import jax.numpy as jnp

    return jax, jnp


def _dask_chunks(shape):
    """Chunks that split every axis of length >= 2 in two or more pieces (exercises the tree merge)."""
    return tuple(max(1, (n + 1) // 2) for n in shape)


class Backend:
    """Conversion and checks for one array library (see the module docstring)."""

    def __init__(self, name):
        self.name = name
        self.array_api_compat = pytest.importorskip("array_api_compat")
        self.lazy = False
        if name in ("numpy", "numpy-readonly"):
            self.lib = np
        elif name == "array_api_strict":
            self.lib = pytest.importorskip("array_api_strict")
        elif name == "torch":
            self.lib = pytest.importorskip("torch")
        elif name == "jax":
            _, self.lib = _jax()
        elif name == "dask":
            pytest.importorskip("dask")
            import dask.array as da

            self.lib = da
            self.lazy = True
        else:  # pragma: no cover
            raise ValueError(name)

    def subset(self, keep, jax_keep=None):
        """Skip this parametrization on a slow backend unless `keep` (see ALL_CASES).

        jax_keep, when given, replaces keep on jax (whose eager calls are the slowest).
        """
        if self.name == "jax" and jax_keep is not None:
            keep = jax_keep
        if self.name in SLOW_BACKENDS and not keep and not ALL_CASES:
            pytest.skip(f"representative subset on {self.name} (LSEARRAY_TEST_ALL_BACKEND_CASES=1 runs all)")

    def __repr__(self):
        return f"Backend({self.name!r})"

    # ---- dtypes -------------------------------------------------------------------------------

    def dtype(self, name):
        """The backend's dtype object called `name`; skips the test when the backend lacks it."""
        if self.name in ("numpy", "numpy-readonly", "dask"):
            if name == "bfloat16":
                pytest.skip(f"{self.name} has no bfloat16")
            return np.dtype(name)
        if self.name == "jax":
            return self.lib.dtype(name)
        dt = getattr(self.lib, name, None)
        if dt is None:
            pytest.skip(f"{self.name} has no {name} dtype")
        return dt

    def dtype_name(self, dt):
        """Name ("float32", ...) of a backend dtype object."""
        if self.name == "torch":
            return str(dt).replace("torch.", "")
        if self.name == "array_api_strict":
            return str(dt).replace("array_api_strict.", "")
        return np.dtype(dt).name

    def namespace(self, x):
        return self.array_api_compat.array_namespace(x)

    def device(self, x):
        return self.array_api_compat.device(x)

    def default_float(self, like):
        """Name of the default real floating dtype of like's namespace on like's device."""
        ns = self.namespace(like)
        info = ns.__array_namespace_info__()
        return self.dtype_name(info.default_dtypes(device=self.device(like))["real floating"])

    def default_complex(self, like):
        ns = self.namespace(like)
        info = ns.__array_namespace_info__()
        return self.dtype_name(info.default_dtypes(device=self.device(like))["complex floating"])

    # ---- conversion ---------------------------------------------------------------------------

    def make(self, arr, dtype=None, device=None):
        """A backend array with the values of NumPy array `arr`, cast to the dtype called `dtype`."""
        arr = np.asarray(arr)
        if dtype is not None and dtype != "bfloat16":
            self.dtype(dtype)  # skip if missing
            arr = arr.astype(dtype)
        if self.name == "numpy":
            return np.array(arr, copy=True)
        if self.name == "numpy-readonly":
            out = np.array(arr, copy=True)
            out.flags.writeable = False
            return out
        if self.name == "array_api_strict":
            return self.lib.asarray(arr, device=device)
        if self.name == "torch":
            torch = self.lib
            t = torch.from_numpy(np.array(arr, copy=True))
            if dtype == "bfloat16":
                t = t.to(torch.bfloat16)
            return t
        if self.name == "jax":
            out = self.lib.asarray(arr)
            if dtype == "bfloat16":
                out = out.astype(self.lib.bfloat16)
            assert out.dtype == arr.dtype or dtype == "bfloat16", "jax x64 is not enabled"
            return out
        if self.name == "dask":
            if dtype == "bfloat16":
                pytest.skip("dask has no bfloat16")
            return self.lib.from_array(np.array(arr, copy=True), chunks=_dask_chunks(arr.shape))
        raise AssertionError(self.name)

    def to_numpy(self, x):
        """A NumPy copy of backend array (or NumPy scalar) x; low-precision floats become float32."""
        if self.name in ("numpy", "numpy-readonly"):
            return np.array(x, copy=True)
        if self.name == "array_api_strict":
            return np.array(x._array, copy=True)
        if self.name == "torch":
            torch = self.lib
            x = x.detach().cpu()
            if x.dtype == torch.bfloat16:
                x = x.to(torch.float32)
            return x.numpy().copy()
        if self.name == "jax":
            if x.dtype == self.lib.bfloat16:
                x = x.astype(self.lib.float32)
            return np.array(x, copy=True)
        if self.name == "dask":
            # the synchronous scheduler: the tiny test graphs run faster without a thread pool
            return np.asarray(x.compute(scheduler="synchronous"))
        raise AssertionError(self.name)

    # ---- checks -------------------------------------------------------------------------------

    def check(self, result, like, dtype, shape, scalar=False, what="result"):
        """Assert result is like's kind of array, with dtype called `dtype` and shape `shape`.

        scalar=True: a 0-d result of a reduction, which NumPy returns as a NumPy scalar;
        scalar=None: NumPy may return a scalar or a 0-d array.
        """
        shape = tuple(shape)
        if self.name in ("numpy", "numpy-readonly"):
            if scalar is None and shape == ():
                assert isinstance(result, (np.generic, np.ndarray)), (
                    f"{what}: expected a NumPy scalar or 0-d array, got {type(result)}")
            elif scalar and shape == ():
                assert isinstance(result, np.generic), (
                    f"{what}: NumPy full reduction should give a NumPy scalar, got {type(result)}")
            else:
                assert isinstance(result, np.ndarray), f"{what}: expected ndarray, got {type(result)}"
        elif self.name == "dask":
            assert isinstance(result, self.lib.Array), (
                f"{what}: expected a lazy dask array, got {type(result)}")
        else:
            assert not isinstance(result, (np.ndarray, np.generic, float, int, complex)), (
                f"{what}: expected a {self.name} array, got {type(result)}")
        assert self.namespace(result) is self.namespace(like), (
            f"{what}: namespace {self.namespace(result)} != input's {self.namespace(like)}")
        assert self.device(result) == self.device(like), (
            f"{what}: device {self.device(result)!r} != input's {self.device(like)!r}")
        assert result.dtype == self.dtype(dtype), f"{what}: dtype {result.dtype} != {dtype}"
        assert tuple(result.shape) == shape, f"{what}: shape {tuple(result.shape)} != {shape}"


def make_backend(name):
    return Backend(name)


def assert_values(got, expected, dtype, what="value"):
    """NumPy `got` equals `expected` within the tolerance for dtype; nan/inf positions must match."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    np.testing.assert_allclose(got, expected, equal_nan=True, err_msg=what, **tolerances(dtype))
