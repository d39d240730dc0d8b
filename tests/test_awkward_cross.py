"""Every public function (tests/registry.py) on every awkward input (tests/awkward_arrays.py), on every backend."""

import warnings

import numpy as np
import pytest

import lsearray
from awkward_arrays import (awkward_inputs, degenerate_logits, matmul_partner, pair_partner,
                            sampling_logits, seed_for)
from backends import ALL_CASES, BACKEND_NAMES, assert_values, make_backend
from registry import EXEMPT, REGISTRY, mask_for, masked, weights_for
from reference import tolerances

__all__ = []

CASES = awkward_inputs()

# jax compiles every function anew for each shape, dtype and keyword (seconds each) and dask builds
# a graph per call, so those two take a representative subset of the value cases (specials, 0-d,
# empty, every dtype kind; jax one shape), as does numpy-readonly, whose values the numpy cases
# already cover (its point is the flag, which readonly-2d also checks); all of them with
# LSEARRAY_TEST_ALL_BACKEND_CASES=1 (as in tests/backends.py).
_REPRESENTATIVE = {
    "jax": ("float64-2d-special", "int32-2d"),
    "dask": ("float64-1d-special", "float64-2d-special", "float64-0d-nan", "float64-empty-3x0",
             "float64-all-neginf", "float32-4d-special", "int32-2d", "bool-2d"),
    "numpy-readonly": ("float64-1d-special", "float64-2d-special", "float64-4d-special", "float64-0d-nan",
                       "float64-empty-3x0", "float64-empty-0x4", "float64-size1-5x1", "float64-all-neginf",
                       "float32-2d-special", "float32-0d-inf", "int32-2d", "bool-2d", "float16-special"),
}

# Real library bugs the cross finds: {(entry, backend, case id): reason}; each is an xfail(strict=True).
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases_for(backend):
    """The awkward cases a backend takes: NumPy every one; the others the value cases (their arrays
    are copies, so NumPy's layouts would only repeat them), a subset on some (see _REPRESENTATIVE)."""
    if backend == "numpy":
        return CASES
    cases = [case for case in CASES if not case.numpy_only]
    if backend in _REPRESENTATIVE and not ALL_CASES:
        cases = [case for case in cases if case.id in _REPRESENTATIVE[backend]]
    return cases


def _params(sampler):
    params = []
    for entry in REGISTRY.values():
        if entry.sampler != sampler:
            continue
        for backend in entry.backends or BACKEND_NAMES:
            for case in _cases_for(backend):
                marks = []
                reason = KNOWN_BUGS.get((entry.name, backend, case.id))
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                params.append(pytest.param(entry, backend, case, marks=marks,
                                           id=f"{entry.name}-{backend}-{case.id}"))
    return params


def quiet(fn, *args, **kwargs):
    """fn(*args, **kwargs) with floating-point warnings silenced (the references warn on inf/nan)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _native(x):
    """A NumPy copy of x in native byte order (what the oracles read)."""
    x = np.array(x)
    return x.astype(x.dtype.newbyteorder("=")) if x.dtype.byteorder not in "=|" else x


def _on(xp, x):
    """The backend's array with the values of NumPy array x (its dtype kept; skips if missing)."""
    return xp.make(_native(x), dtype=x.dtype.newbyteorder("=").name)


def _input(xp, case, tmp_path):
    """(the backend's input, its NumPy copy): on NumPy the awkward array itself, memory and all."""
    a = case.make(tmp_path)
    if xp.name == "numpy":
        return a, _native(a)
    return _on(xp, a), _native(a)


def _expected_dtype(xp, like, operands):
    """scipy's rule on this backend: integer and boolean operands count as the namespace's
    default floating dtype (float64 on NumPy), floating ones promote among themselves."""
    dtypes = []
    for x in operands:
        dt = np.asarray(x).dtype
        dtypes.append(dt if np.issubdtype(dt, np.floating) else np.dtype(xp.default_float(like)))
    return np.result_type(*dtypes).name


def test_registry_covers_the_public_api():
    """Every public name is in the registry or exempt with a reason, and nothing else is."""
    public = set(lsearray.__all__)
    try:
        import lsearray.dask as ldask
    except ImportError:
        dask_names = {name for name in set(REGISTRY) | set(EXEMPT) if name.startswith("dask.")}
    else:
        dask_names = {f"dask.{name}" for name in ldask.__all__}
    assert set(REGISTRY) | set(EXEMPT) == public | dask_names
    assert not set(REGISTRY) & set(EXEMPT)
    assert all(reason for reason in EXEMPT.values())


def test_partners_broadcast_and_multiply():
    """The generator's second operands fit their functions: x2 broadcasts against x1, b's rows
    match a's columns."""
    for case in CASES:
        assert np.broadcast_shapes(case.shape, pair_partner(case).shape) == case.shape, case.id
        if case.ndim:
            assert matmul_partner(case).shape == (case.shape[-1], 3), case.id


@pytest.mark.parametrize("entry, backend, case", _params(sampler=False))
def test_function_on_awkward_input(entry, backend, case, tmp_path):
    xp = make_backend(backend)
    a, a_np = _input(xp, case, tmp_path)
    before = a_np.tobytes()
    partners = {"a": (a, a_np)}
    if "pair" in {op for call in entry.calls(case.ndim) for op in call.operands}:
        x2 = pair_partner(case)
        partners["pair"] = (x2 if xp.name == "numpy" else _on(xp, x2), x2)
    if entry.name in ("logmatmulexp", "logeinsumexp"):
        if not case.ndim:              # matmul needs an axis on either side, as numpy.matmul
            with pytest.raises(ValueError, match="at least (one|1) dimension"):
                entry.fast(a, xp.make(np.zeros((1, 3))))
            return
        b = matmul_partner(case)
        partners["matrix"] = (b if xp.name == "numpy" else _on(xp, b), b)
    failures = []
    for call in entry.calls(case.ndim):
        args = [partners[op][0] for op in call.operands]
        args_np = [partners[op][1] for op in call.operands]
        kwargs, kwargs_np = dict(call.kwargs), dict(call.kwargs)
        if call.weights:
            w = weights_for(a_np)
            kwargs["b"], kwargs_np["b"] = (w if xp.name == "numpy" else _on(xp, w)), w
        slow = entry.slow
        if call.mask:
            mask = mask_for(a_np)
            kwargs["where"], kwargs_np["where"] = (mask if xp.name == "numpy" else _on(xp, mask)), mask
            slow = masked(entry)
        label = f"{entry.name} {call.label}"
        try:
            got = entry.fast(*args, **kwargs)
        except Exception as exc:        # report every call, not only the first
            failures.append(f"{label}: raised {exc!r}")
            continue
        expected = quiet(slow, *args_np, **kwargs_np)
        got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
        dtype = _expected_dtype(xp, a, args_np + ([kwargs_np["b"]] if call.weights else []))
        if len(got) != len(expected):
            failures.append(f"{label}: {len(got)} results, expected {len(expected)}")
            continue
        for part, (g, e) in enumerate(zip(got, expected)):
            what = f"{label} [{part}]"
            try:
                xp.check(g, a, dtype, np.shape(e), scalar=None, what=what)
                assert_values(quiet(xp.to_numpy, g), e, dtype, what)   # dask computes here
            except AssertionError as exc:
                failures.append(str(exc))
    assert a_np.tobytes() == before
    if xp.name == "numpy":
        assert _native(a).tobytes() == before, "the input was modified"
    assert not failures, f"{len(failures)} failing calls:\n" + "\n".join(failures)


def _sample(entry, xp, logits, seed, **kwargs):
    """One draw from the backend's copy of the NumPy `logits`, as NumPy, with the raw result."""
    out = entry.fast(xp.make(logits), axis=-1, rng=seed, **kwargs)
    return out, xp.to_numpy(out)


@pytest.mark.parametrize("entry, backend, case", _params(sampler=True))
def test_sampler_on_awkward_input(entry, backend, case, tmp_path):
    """No value to compare: the draw's shape and dtype, its support (never a -inf logit, a +inf
    one when the slice has one), the same draw for the same seed, the only choice of a degenerate
    distribution, and the errors of inputs that cannot be sampled."""
    xp = make_backend(backend)
    a, a_np = _input(xp, case, tmp_path)
    gumbel = entry.name == "gumbel_softmax"
    if not case.ndim:
        with pytest.raises(ValueError, match="at least one axis"):
            entry.fast(a, rng=0)
        return
    k = case.shape[-1]
    if not gumbel and k == 0:
        with pytest.raises(ValueError, match="no categories"):
            entry.fast(a, rng=0)
        return
    x = a_np.astype(np.float64)
    unsampleable = np.any(np.isnan(x), axis=-1) | np.all(x == -np.inf, axis=-1)
    if not gumbel and np.any(unsampleable) and not xp.lazy:
        # nan, or no category of positive probability: an error where the values can be read
        with pytest.raises(ValueError, match="nan|all -inf"):
            entry.fast(a, rng=0)
    dtype = "int" if not gumbel else (case.dtype.name if np.issubdtype(case.dtype, np.floating)
                                      else xp.default_float(a))
    shape = case.shape if gumbel else case.shape[:-1]

    def check_kind(out, what, dtype=dtype):
        if gumbel:
            xp.check(out, a, dtype, shape, scalar=None, what=what)
        else:
            assert tuple(out.shape) == shape, f"{what}: shape {tuple(out.shape)} != {shape}"
            assert np.issubdtype(xp.to_numpy(out).dtype, np.integer), f"{what}: dtype {out.dtype}"

    seed = seed_for(case.id) % 2**31
    if gumbel:
        out = entry.fast(a, rng=seed)
        check_kind(out, "gumbel_softmax")
        y = xp.to_numpy(out).astype(np.float64)
        # as softmax: a slice holding nan or +inf, or only -inf, is all nan
        dead = np.any(np.isnan(x) | (x == np.inf), axis=-1) | np.all(x == -np.inf, axis=-1)
        assert np.all(np.isnan(y[dead])), "slices softmax makes nan"
        live = y[~dead]
        assert not np.any(np.isnan(live)) and np.all((live >= 0) & (live <= 1)), live
        assert np.all(live[x[~dead] == -np.inf] == 0.0), "mass at a -inf logit"
        atol = 4 * k * tolerances(dtype)["rtol"]
        np.testing.assert_allclose(live.sum(axis=-1), 1.0, rtol=0, atol=atol, err_msg="sum along the axis")
    # support, on logits that can be sampled: the input's +inf and -inf kept, nan made -inf
    fdtype = case.dtype.name if np.issubdtype(case.dtype, np.floating) else "float64"
    logits = sampling_logits(x).astype(fdtype)
    if 0 in logits.shape:
        out, _ = _sample(entry, xp, logits, seed)
        check_kind(out, "empty", fdtype)
        return
    out, got = _sample(entry, xp, logits, seed)
    check_kind(out, "draw", fdtype)
    has_inf = np.any(logits == np.inf, axis=-1)
    if gumbel:
        # a slice holding +inf is all nan, hard or not (as softmax); the others are one-hot
        hard_out, hard = _sample(entry, xp, logits, seed, hard=True)
        check_kind(hard_out, "hard draw", fdtype)
        assert np.all(np.isnan(hard[has_inf])), "a hard draw of a slice holding +inf"
        one_hot = hard[~has_inf]
        assert np.all((one_hot == 0.0) | (one_hot == 1.0)) and np.all(np.sum(one_hot, axis=-1) == 1), one_hot
        index = np.argmax(np.nan_to_num(hard), axis=-1)
    else:
        index = got
        assert np.all((0 <= index) & (index < k)), index
    drawn = np.take_along_axis(logits, np.asarray(index)[..., None], axis=-1)[..., 0]
    if gumbel:
        drawn = drawn[~has_inf]
    else:
        assert np.all(drawn[has_inf] == np.inf), "a slice holding +inf drew a finite logit"
    assert np.all(drawn > -np.inf), "a draw at a -inf logit"
    # the same seed gives the same draw
    _, again = _sample(entry, xp, logits, seed)
    np.testing.assert_array_equal(again, got, err_msg="the same seed gave another draw")
    # a degenerate distribution gives its only choice
    logits, only = degenerate_logits(case.shape, seed)
    out, got = _sample(entry, xp, logits.astype(fdtype), seed)
    if gumbel:
        expected = np.zeros(case.shape)
        np.put_along_axis(expected, only[..., None], 1.0, axis=-1)
        np.testing.assert_array_equal(got, expected, err_msg="a one-hot softmax")
    else:
        np.testing.assert_array_equal(got, only, err_msg="the only category")
