"""lsearray.xarray.logsumexp_agg through flox, against scipy's logsumexp of each group's values."""

import importlib
import sys

import numpy as np
import pytest

flox = pytest.importorskip("flox")
xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")
special = pytest.importorskip("scipy.special")

from flox.xarray import xarray_reduce  # noqa: E402

from lsearray.xarray import logsumexp_agg  # noqa: E402

# float32: an ulp, 2**-23 of the value at most (the chunks' results merge in float64)
RTOL = {np.float64: 1e-13, np.float32: 2.0**-23}
# Unsorted labels along "time", in chunks of 4: "d" only in the last chunk, "z" only -inf.
LABELS = np.array(["b", "a", "c", "z", "a", "b", "b", "c", "z", "a",
                   "c", "a", "b", "z", "c", "a", "d", "b", "d", "a"])
GROUPS = np.array(["a", "b", "c", "d", "z"])
# Sorted labels whose groups fill whole chunks of (4, 4, 4, 2, 6): what "blockwise" needs.
SORTED = np.repeat(GROUPS, [4, 4, 4, 2, 6])
SORTED_CHUNKS = (4, 4, 4, 2, 6)


def _values(labels, dtype=np.float64):
    """(3, 20) values around +1000 for "a" and "c", where a naive exp overflows, near -740
    for "b", where it underflows, and -inf for "z"."""
    rng = np.random.default_rng(11)
    offsets = {"a": 1000.0, "b": -740.0, "c": 1000.0, "d": 0.0, "z": -np.inf}
    shift = np.array([offsets[k] for k in labels])
    return (rng.standard_normal((3, labels.size)) * 5 + shift).astype(dtype)


def _array(labels=LABELS, dtype=np.float64, chunks=None):
    arr = xr.DataArray(_values(labels, dtype), dims=("x", "time"), name="loglik",
                       coords={"x": [10, 20, 30], "time": np.arange(labels.size),
                               "label": ("time", labels)})
    # chunk the data only: flox needs the labels in memory (or expected_groups)
    return arr if chunks is None else arr.copy(data=da.from_array(arr.values, chunks=chunks))


def _expected(values, labels):
    """scipy's log-sum-exp of each group's values in float64, the groups along the last axis."""
    values = np.asarray(values, dtype=np.float64)
    return np.stack([special.logsumexp(values[..., labels == g], axis=-1) for g in GROUPS],
                    axis=-1)


def _check(out, expected, dtype, lazy):
    assert isinstance(out.data, da.Array) == lazy
    got = out.compute()
    assert got.dtype == dtype
    np.testing.assert_array_equal(got["label"].values, GROUPS)
    np.testing.assert_allclose(got.values, expected, rtol=RTOL[dtype])
    assert np.isneginf(got.sel(label="z").values).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_in_memory_dataarray(dtype):
    arr = _array(dtype=dtype)
    out = xarray_reduce(arr, "label", func=logsumexp_agg)
    assert out.dims == ("x", "label")
    np.testing.assert_array_equal(out["x"].values, [10, 20, 30])
    _check(out, _expected(arr.values, LABELS), dtype, lazy=False)


@pytest.mark.parametrize("method", ["map-reduce", "cohorts"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunks", [(3, 4), (2, 7), (1, 1)])
def test_dask_dataarray(method, dtype, chunks):
    arr = _array(dtype=dtype, chunks=chunks)
    out = xarray_reduce(arr, "label", func=logsumexp_agg, method=method)
    assert out.dims == ("x", "label")
    np.testing.assert_array_equal(out["x"].values, [10, 20, 30])
    _check(out, _expected(arr.values, LABELS), dtype, lazy=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dask_blockwise_on_groups_that_fill_chunks(dtype):
    arr = _array(SORTED, dtype=dtype, chunks=((3,), SORTED_CHUNKS))
    out = xarray_reduce(arr, "label", func=logsumexp_agg, method="blockwise")
    _check(out, _expected(arr.values, SORTED), dtype, lazy=True)


@pytest.mark.parametrize("method", ["map-reduce", "cohorts"])
def test_reduce_over_every_dim(method):
    # the groups span "x" too: flox flattens both axes into one and stacks the chunks'
    # results on two axes, which the combine step reduces together
    arr = _array(chunks=(2, 4))
    out = xarray_reduce(arr, "label", func=logsumexp_agg, dim=..., method=method)
    assert out.dims == ("label",)
    expected = _expected(arr.values.ravel(), np.tile(LABELS, 3))
    _check(out, expected, np.float64, lazy=True)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_dataset(backed):
    chunks = None if backed == "numpy" else (2, 4)
    arr = _array(chunks=chunks)
    ds = xr.Dataset({"loglik": arr, "first": arr.isel(x=0, drop=True) * 2})
    out = xarray_reduce(ds, "label", func=logsumexp_agg)
    assert set(out.data_vars) == {"loglik", "first"}
    # a Dataset's reduction puts the new dim first
    assert out["loglik"].dims == ("label", "x") and out["first"].dims == ("label",)
    values = _array().values
    lazy = backed == "dask"
    _check(out["loglik"].transpose("x", "label"), _expected(values, LABELS), np.float64, lazy)
    _check(out["first"], _expected(values[0] * 2, LABELS), np.float64, lazy)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_expected_group_missing_from_the_data_is_neg_inf(backed):
    arr = _array(chunks=None if backed == "numpy" else (3, 4))
    groups = np.insert(GROUPS, 4, "e")  # flox sorts the expected groups
    out = xarray_reduce(arr, "label", func=logsumexp_agg, expected_groups=(groups,))
    got = out.compute()
    np.testing.assert_array_equal(got["label"].values, groups)
    assert np.isneginf(got.sel(label="e").values).all()
    np.testing.assert_allclose(got.sel(label=GROUPS).values, _expected(arr.values, LABELS),
                               rtol=1e-13)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_integers_give_float64(backed):
    values = np.arange(60).reshape(3, 20) % 7
    arr = xr.DataArray(values, dims=("x", "time"), coords={"label": ("time", LABELS)})
    if backed == "dask":
        arr = arr.copy(data=da.from_array(values, chunks=(3, 6)))
    out = xarray_reduce(arr, "label", func=logsumexp_agg).compute()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.values, _expected(values, LABELS), rtol=1e-13)


def test_complex_data_is_refused():
    arr = xr.DataArray(np.ones(4, dtype=complex), dims="time",
                       coords={"label": ("time", list("abab"))})
    with pytest.raises(TypeError, match="real data, got complex128"):
        xarray_reduce(arr, "label", func=logsumexp_agg)


def test_labels_found_at_compute_time():
    # dask labels without expected_groups: flox merges the chunks' results grouped by the
    # labels each chunk found, the combine step's other call
    values = _values(LABELS)
    x = da.from_array(values, chunks=(3, 4))
    by = da.from_array(np.searchsorted(GROUPS, LABELS), chunks=4)
    out, groups = flox.groupby_reduce(x, by, func=logsumexp_agg, method="map-reduce")
    assert isinstance(out, da.Array)
    out, groups = out.compute(), groups.compute()
    np.testing.assert_array_equal(groups, np.arange(GROUPS.size))
    np.testing.assert_allclose(out, _expected(values, LABELS), rtol=1e-13)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_nan_propagates_to_its_group(backed):
    values = _values(LABELS)
    values[1, 1] = np.nan  # in group "a"
    arr = xr.DataArray(values, dims=("x", "time"), coords={"label": ("time", LABELS)})
    if backed == "dask":
        arr = arr.copy(data=da.from_array(values, chunks=(3, 4)))
    got = xarray_reduce(arr, "label", func=logsumexp_agg).compute().values
    assert np.isnan(got[1, 0]) and np.isnan(got).sum() == 1
    np.testing.assert_allclose(got, _expected(values, LABELS), rtol=1e-13)


def test_import_without_flox_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flox", None)
    monkeypatch.setitem(sys.modules, "flox.aggregations", None)
    monkeypatch.delitem(sys.modules, "lsearray.xarray")
    with pytest.raises(ImportError, match=r"pip install 'lsearray\[backends\]'"):
        importlib.import_module("lsearray.xarray")
