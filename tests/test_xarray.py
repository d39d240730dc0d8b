"""lsearray.logsumexp as an xarray reduction, on NumPy-backed and dask-backed DataArrays."""

import threading

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

import lsearray  # noqa: E402

RTOL = 1e-13


def _data():
    rng = np.random.default_rng(7)
    values = rng.standard_normal((6, 8, 5)) * 10
    return xr.DataArray(values, dims=("x", "y", "z"),
                        coords={"x": np.arange(6), "y": np.linspace(0, 1, 8), "z": list("abcde")},
                        attrs={"units": "nat", "long_name": "log weight"}, name="logw")


def _chunked():
    return _data().chunk({"x": 4, "y": 3, "z": 2})


DIMS = [("x", (0,)), ("z", (2,)), (["x", "y"], (0, 1)), (["y", "z"], (1, 2)), (["x", "z"], (0, 2))]


@pytest.mark.parametrize("backed", ["numpy", "dask"])
@pytest.mark.parametrize("dim,axis", DIMS)
def test_reduce_matches_numpy(backed, dim, axis):
    arr = _data() if backed == "numpy" else _chunked()
    out = arr.reduce(lsearray.logsumexp, dim=dim)
    kept = [d for d in arr.dims if d not in (dim if isinstance(dim, list) else [dim])]
    assert list(out.dims) == kept
    assert isinstance(out.data, np.ndarray if backed == "numpy" else da.Array)
    for d in kept:
        np.testing.assert_array_equal(out[d].values, arr[d].values)
    np.testing.assert_allclose(out.compute().values, lsearray.logsumexp(_data().values, axis=axis),
                               rtol=RTOL)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_reduce_all_dims(backed):
    arr = _data() if backed == "numpy" else _chunked()
    out = arr.reduce(lsearray.logsumexp)
    assert out.dims == ()
    np.testing.assert_allclose(float(out), lsearray.logsumexp(_data().values), rtol=RTOL)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
@pytest.mark.parametrize("keep_attrs", [True, False])
def test_keep_attrs(backed, keep_attrs):
    arr = _data() if backed == "numpy" else _chunked()
    out = arr.reduce(lsearray.logsumexp, dim="y", keep_attrs=keep_attrs)
    if keep_attrs:
        assert out.attrs == {"units": "nat", "long_name": "log weight"}
    else:
        assert out.attrs == {}
    assert out.name == "logw"
    np.testing.assert_allclose(out.values, lsearray.logsumexp(_data().values, axis=1), rtol=RTOL)


@pytest.mark.parametrize("backed,b_kind", [("numpy", "numpy"), ("dask", "numpy"), ("dask", "dask")])
@pytest.mark.parametrize("dim,axis", [("y", (1,)), (["x", "z"], (0, 2))])
def test_weights_through_kwargs(backed, b_kind, dim, axis):
    arr = _data() if backed == "numpy" else _chunked()
    b = np.random.default_rng(8).uniform(-0.5, 2.0, size=arr.shape)
    b[:, 0, :] = 0.0
    if b_kind == "dask":
        b = da.from_array(b, chunks=(3, 4, 5))
    out = arr.reduce(lsearray.logsumexp, dim=dim, b=b, keep_attrs=True)
    assert out.attrs["units"] == "nat"
    expected = lsearray.logsumexp(_data().values, axis=axis, b=np.asarray(b))
    np.testing.assert_allclose(out.compute().values, expected, rtol=RTOL, equal_nan=True)


@pytest.mark.parametrize("backed", ["numpy", "dask"])
def test_logmeanexp_and_temperature_through_kwargs(backed):
    arr = _data() if backed == "numpy" else _chunked()
    out = arr.reduce(lsearray.logmeanexp, dim=["x", "y"], temperature=2.5)
    np.testing.assert_allclose(out.values, lsearray.logmeanexp(_data().values, axis=(0, 1),
                                                               temperature=2.5), rtol=RTOL)


def test_dask_backed_stays_lazy_until_compute():
    produced = []
    lock = threading.Lock()
    values = _data().values

    def block(v):
        with lock:
            produced.append(v.shape)
        return v

    arr = _chunked().copy(data=_chunked().data.map_blocks(
        block, dtype=np.float64, meta=np.empty((0, 0, 0))))
    out = arr.reduce(lsearray.logsumexp, dim=["x", "z"], b=np.ones(values.shape), keep_attrs=True)
    assert isinstance(out.data, da.Array)
    assert out.chunks is not None
    assert produced == []  # nothing read yet
    assert out.attrs["units"] == "nat"
    computed = out.compute(scheduler="threads")
    assert isinstance(computed.data, np.ndarray)
    assert len(produced) == len(list(np.ndindex(*arr.data.numblocks)))  # each block read once
    np.testing.assert_allclose(computed.values, lsearray.logsumexp(values, axis=(0, 2)), rtol=RTOL)


def test_dask_backed_graph_is_one_reduction():
    out = _chunked().reduce(lsearray.logsumexp, dim="y")
    names = [name.rsplit("-", 1)[0] for name in out.data.__dask_graph__().layers]
    assert names.count("lsearray-lse") == 1
    assert names.count("lsearray-lse-aggregate") == 1
    assert all(n.startswith("lsearray-lse") for n in names if not n.startswith(("array", "xarray")))
