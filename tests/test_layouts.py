"""Every awkward input x axis x keepdims x b x return_sign against the slow reference and scipy's structure."""

import warnings

import numpy as np
import pytest
import scipy.special as sc

import lsearray
from awkward_arrays import awkward_inputs, axis_choices, seed_for, weight_variants
from reference import (
    expected_dtype,
    slow_log_softmax,
    slow_logmeanexp,
    slow_logsumexp,
    slow_softmax,
    tolerances,
)

CASES = awkward_inputs()

LSE_PARAMS = [
    pytest.param(case, axis, id=f"{case.id}-axis={axis}".replace(" ", ""))
    for case in CASES
    for axis in axis_choices(case.ndim)
]
CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]
NONEMPTY_CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES if 0 not in case.shape]


def quiet(fn, *args, **kwargs):
    """Call fn with floating-point warnings silenced (scipy and the references warn on inf/nan)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def structure_of(fn, ref, dtype, *args, **kwargs):
    """scipy's result, for its type / dtype / shape.

    Where scipy itself raises (logsumexp of an empty 2-d array with a tuple axis, softmax of bool),
    the structure it would have is built from the reference: ndarray of `dtype`, NumPy scalar if 0-d.
    """
    try:
        return quiet(fn, *args, **kwargs)
    except Exception:
        def build(r):
            r = np.asarray(r).astype(dtype)
            return r[()] if r.ndim == 0 else r
        return tuple(build(r) for r in ref) if isinstance(ref, tuple) else build(ref)


def check_like(label, got, ref, like, failures):
    """got must have scipy's (`like`) type, dtype and shape, and the reference's values (nan where nan)."""
    if type(got) is not type(like):
        failures.append(f"{label}: type {type(got).__name__}, scipy gives {type(like).__name__}")
        return
    if got.dtype != like.dtype:
        failures.append(f"{label}: dtype {got.dtype}, scipy gives {like.dtype}")
        return
    if np.shape(got) != np.shape(like):
        failures.append(f"{label}: shape {np.shape(got)}, scipy gives {np.shape(like)}")
        return
    try:
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), ref, equal_nan=True,
                                   **tolerances(got.dtype))
    except AssertionError as exc:
        failures.append(f"{label}: values differ from the slow reference\n{exc}")


def assert_unchanged(arrays_before):
    for name, (arr, before) in arrays_before.items():
        assert arr.tobytes() == before, f"{name} was modified"


@pytest.mark.parametrize("case, axis", LSE_PARAMS)
def test_logsumexp_layouts(case, axis, tmp_path):
    a = case.make(tmp_path)
    assert a.shape == case.shape and a.dtype.newbyteorder("=") == case.dtype
    a_before = a.tobytes()
    failures = []
    weights = weight_variants(case.shape, case.dtype, seed_for(case.id))
    for bname, b in weights.items():
        b_before = None if b is None else b.tobytes()
        for keepdims in (False, True):
            for return_sign in (False, True):
                label = f"{bname} keepdims={keepdims} return_sign={return_sign}"
                try:
                    got = lsearray.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                             return_sign=return_sign)
                except Exception as exc:  # report every combination, not only the first
                    failures.append(f"{label}: raised {exc!r}")
                    continue
                ref = quiet(slow_logsumexp, a, axis=axis, b=b, keepdims=keepdims,
                            return_sign=return_sign)
                like = structure_of(sc.logsumexp, ref, expected_dtype(a, b), a, axis=axis, b=b,
                                    keepdims=keepdims, return_sign=return_sign)
                if return_sign:
                    if not (isinstance(got, tuple) and len(got) == 2):
                        failures.append(f"{label}: expected a (value, sign) pair, got {got!r}")
                        continue
                    check_like(label + " [value]", got[0], ref[0], like[0], failures)
                    check_like(label + " [sign]", got[1], ref[1], like[1], failures)
                else:
                    check_like(label, got, ref, like, failures)
        if b is not None:
            assert b.tobytes() == b_before, f"{bname} was modified"
    # temperature over the same layouts
    for bname in ("b=None", "b=signed"):
        b = weights[bname]
        for tau in (0.5, 3.0):
            label = f"{bname} temperature={tau}"
            try:
                got = lsearray.logsumexp(a, axis=axis, b=b, return_sign=True, temperature=tau)
            except Exception as exc:
                failures.append(f"{label}: raised {exc!r}")
                continue
            ref = quiet(slow_logsumexp, a, axis=axis, b=b, return_sign=True, temperature=tau)
            like = structure_of(sc.logsumexp, ref, expected_dtype(a, b), a, axis=axis, b=b,
                                return_sign=True)
            check_like(label + " [value]", got[0], ref[0], like[0], failures)
            check_like(label + " [sign]", got[1], ref[1], like[1], failures)
    assert a.tobytes() == a_before, "input a was modified"
    assert not failures, f"{len(failures)} failing combinations:\n" + "\n".join(failures)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_logmeanexp_layouts(case, tmp_path):
    a = case.make(tmp_path)
    a_before = a.tobytes()
    failures = []
    weights = weight_variants(case.shape, case.dtype, seed_for(case.id))
    for axis in axis_choices(case.ndim):
        for bname, b in weights.items():
            for keepdims in (False, True):
                for tau in (1.0, 2.5):
                    if tau != 1.0 and keepdims:
                        continue
                    label = f"axis={axis} {bname} keepdims={keepdims} temperature={tau}"
                    try:
                        got = lsearray.logmeanexp(a, axis=axis, b=b, keepdims=keepdims,
                                                  temperature=tau)
                    except Exception as exc:
                        failures.append(f"{label}: raised {exc!r}")
                        continue
                    ref = quiet(slow_logmeanexp, a, axis=axis, b=b, keepdims=keepdims,
                                temperature=tau)
                    like = structure_of(sc.logsumexp, ref, expected_dtype(a, b), a, axis=axis, b=b,
                                        keepdims=keepdims)
                    check_like(label, got, ref, like, failures)
    assert a.tobytes() == a_before, "input a was modified"
    assert not failures, f"{len(failures)} failing combinations:\n" + "\n".join(failures)


def _softmax_axes(ndim):
    # scipy's softmax does not treat 0-d input as 1-d: only axis=None is meaningful there
    return [None] if ndim == 0 else axis_choices(ndim)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", NONEMPTY_CASE_PARAMS)
def test_softmax_layouts(case, name, tmp_path):
    ours = getattr(lsearray, name)
    theirs = getattr(sc, name)
    slow = {"softmax": slow_softmax, "log_softmax": slow_log_softmax}[name]
    a = case.make(tmp_path)
    a_before = a.tobytes()
    failures = []
    for axis in _softmax_axes(case.ndim):
        for tau in (1.0, 0.5):
            label = f"axis={axis} temperature={tau}"
            try:
                got = ours(a, axis=axis, temperature=tau)
            except Exception as exc:
                failures.append(f"{label}: raised {exc!r}")
                continue
            ref = quiet(slow, a, axis=axis, temperature=tau)
            like = structure_of(theirs, ref, expected_dtype(a), a, axis=axis)
            if case.ndim == 0:
                # scipy returns a NumPy scalar here; accept a scalar or a 0-d array
                if not isinstance(got, (np.ndarray, np.generic)):
                    failures.append(f"{label}: type {type(got).__name__}")
                    continue
                like = np.asarray(like)
                got = np.asarray(got)
            check_like(label, got, ref, like, failures)
    assert a.tobytes() == a_before, "input a was modified"
    assert not failures, f"{len(failures)} failing combinations:\n" + "\n".join(failures)


BIG_B_AXES = [None, 0, 1, -1, (0, 1)]


@pytest.mark.parametrize("axis", BIG_B_AXES, ids=[f"axis={ax}".replace(" ", "") for ax in BIG_B_AXES])
@pytest.mark.parametrize("keepdims", [False, True], ids=["keepdims=F", "keepdims=T"])
def test_b_with_more_dims_than_a(axis, keepdims):
    # a and b broadcast to a common shape (3, 4): b is larger than a
    a = np.linspace(-2.0, 3.0, 4)
    b = np.arange(1.0, 13.0).reshape(3, 4) / 4.0
    got = lsearray.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    like = sc.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    ref = slow_logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    failures = []
    check_like("logsumexp", got, ref, like, failures)
    got = lsearray.logmeanexp(a, axis=axis, b=b, keepdims=keepdims)
    ref = slow_logmeanexp(a, axis=axis, b=b, keepdims=keepdims)
    check_like("logmeanexp", got, ref, like, failures)
    assert not failures, "\n".join(failures)


MIXED = [
    ("f32-a f64-b", np.float32, np.float64),
    ("f64-a f32-b", np.float64, np.float32),
    ("f16-a f32-b", np.float16, np.float32),
    ("f32-a int-b", np.float32, np.int64),
    ("int-a f32-b", np.int32, np.float32),
    ("bool-a bool-b", np.bool_, np.bool_),
]


@pytest.mark.parametrize("adt, bdt", [pytest.param(a, b, id=name) for name, a, b in MIXED])
@pytest.mark.parametrize("axis", [None, 1], ids=["axis=None", "axis=1"])
def test_mixed_dtypes_promote_like_scipy(adt, bdt, axis):
    a = (np.arange(12).reshape(3, 4) % 5).astype(adt)
    b = (np.arange(12).reshape(3, 4) % 3 + 1).astype(bdt)
    got = lsearray.logsumexp(a, axis=axis, b=b)
    like = sc.logsumexp(a, axis=axis, b=b)
    assert like.dtype == expected_dtype(a, b)
    failures = []
    check_like("logsumexp", got, slow_logsumexp(a, axis=axis, b=b), like, failures)
    assert not failures, "\n".join(failures)


# Reduced axes that interleave with kept ones in memory: no two axes merge, so reading in
# place would take one kernel call per few elements; lsecore gathers blocks instead.
def _interleaved(seed, shape, loc):
    return np.random.default_rng(seed).normal(loc, 3.0, shape)


INTERLEAVED = [
    # (id, array maker, axes)
    ("2^12 even axes", lambda: _interleaved(1, (2,) * 12, 0.0), tuple(range(0, 12, 2))),
    ("2^12 odd axes", lambda: _interleaved(2, (2,) * 12, 0.0), tuple(range(1, 12, 2))),
    ("2^12 pairs of axes", lambda: _interleaved(3, (2,) * 12, 0.0), (0, 1, 4, 5, 8, 9)),
    # maxima near -750: every exp(a) underflows, so a partial that starts at 0, not -inf, shows
    ("odd sizes, max -750", lambda: _interleaved(4, (3, 4, 2, 5, 2, 3, 2), -750.0), (0, 2, 4, 6)),
    ("odd sizes, kept ends", lambda: _interleaved(5, (3, 4, 2, 5, 2, 3, 2), 0.0), (1, 3, 5)),
    ("Fortran order", lambda: np.asfortranarray(_interleaved(6, (2, 3) * 5, 0.0)), tuple(range(1, 10, 2))),
    ("transposed", lambda: _interleaved(7, (2, 3) * 5, 0.0).transpose(9, 0, 8, 1, 7, 2, 6, 3, 5, 4),
     tuple(range(0, 10, 2))),
    ("strided and reversed",
     lambda: _interleaved(8, (4, 6, 4, 6, 4, 6, 4), 0.0)[::2, ::-3, ::2, 1::2, ::-2, :, ::2], (1, 3, 5)),
    ("all axes, strided", lambda: _interleaved(9, (4, 6, 4, 6), -750.0)[::2, ::-3, ::2, 1::2], None),
]


@pytest.fixture(params=["gathered", "gathered in blocks of 24", "views in place"])
def interleaved_path(request, monkeypatch):
    """The path lsecore takes for layouts whose axes do not merge: gathered blocks (the
    default), gathered blocks small enough that a dim is cut into uneven chunks (kept and
    reduced ones), or one kernel call per 3-D view read in place."""
    from lsecore import _layout

    if request.param == "gathered in blocks of 24":
        monkeypatch.setattr(_layout, "_GATHER", 24)
    elif request.param == "views in place":
        monkeypatch.setattr(_layout, "_MIN_VIEW", 0)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make, axis", [pytest.param(m, ax, id=name) for name, m, ax in INTERLEAVED])
def test_interleaved_axes_match_the_reference(make, axis, dtype, interleaved_path):
    a = make().astype(dtype)
    rng = np.random.default_rng(seed_for(f"interleaved {a.shape} {axis}"))
    positive = rng.uniform(0.5, 1.5, a.shape)
    signed = rng.uniform(-1.0, 1.0, (1,) * (a.ndim - 1) + a.shape[-1:])  # broadcast: zero strides
    failures = []
    calls = [
        ("logsumexp", lsearray.logsumexp, slow_logsumexp, {}),
        ("logsumexp tau=0.5", lsearray.logsumexp, slow_logsumexp, dict(temperature=0.5)),
        ("logsumexp keepdims", lsearray.logsumexp, slow_logsumexp, dict(keepdims=True)),
        ("logsumexp b", lsearray.logsumexp, slow_logsumexp, dict(b=positive)),
        ("logsumexp signed b", lsearray.logsumexp, slow_logsumexp, dict(b=signed, return_sign=True)),
        ("logmeanexp", lsearray.logmeanexp, slow_logmeanexp, {}),
        ("logmeanexp b", lsearray.logmeanexp, slow_logmeanexp, dict(b=positive)),
        ("softmax", lsearray.softmax, slow_softmax, {}),
        ("log_softmax", lsearray.log_softmax, slow_log_softmax, dict(temperature=0.5)),
    ]
    for label, ours, slow, kwargs in calls:
        got = ours(a, axis=axis, **kwargs)
        ref = quiet(slow, a, axis=axis, **kwargs)
        for g, r in zip(got, ref) if isinstance(got, tuple) else [(got, ref)]:
            if np.shape(g) != np.shape(r):
                failures.append(f"{label}: shape {np.shape(g)}, expected {np.shape(r)}")
            elif not np.allclose(np.asarray(g, np.float64), r, equal_nan=True, **tolerances(dtype)):
                failures.append(f"{label}: {g!r} differs from {r!r}")
    assert not failures, "\n".join(failures)


def test_interleaved_axes_take_one_kernel_call_per_gathered_block(monkeypatch):
    """(2,) * 16 over every other axis: read in place, that was one kernel call for each
    8 elements (8192 calls, 2 us each; 27 s for (2,) * 24 against scipy's 4.5 s)."""
    from lsecore import _layout

    calls = []

    def counted(name):
        kernel = getattr(_layout._kernel, name)

        def call(*args):
            calls.append(name)
            return kernel(*args)

        return call

    for name in ("accumulate", "accumulate_weighted", "reduce_finalized"):
        monkeypatch.setattr(_layout._kernel, name, counted(name))
    a = np.random.default_rng(0).normal(size=(2,) * 16)
    blocks = a.size // _layout._GATHER
    for axis in (tuple(range(0, 16, 2)), tuple(range(1, 16, 2))):
        calls.clear()
        ref = slow_logsumexp(a, axis=axis)
        np.testing.assert_allclose(lsearray.logsumexp(a, axis=axis), ref, rtol=1e-13)
        np.testing.assert_allclose(lsearray.logsumexp(a, axis=axis, b=0.5), ref + np.log(0.5), rtol=1e-13)
        assert len(calls) == 2 * blocks, calls[:10]
