"""Differential fuzz test: every public function against scipy.special and a 60-digit mpmath reference.

Each test draws awkward inputs with hypothesis (tests/fuzz_support.py: log-probability rows whose
normalizer is near 1, cancelling pairs, ties at the max, huge, tiny and negative weights,
-inf/+inf/nan, subnormals, offsets near +-700 and +-1e4, temperatures from 1e-300 to 1e300 and the
float32 and float64 limits, 0-d to 2-d arrays with every kind of axis, keepdims, empty slices,
several memory layouts) and checks, on NumPy input (float64 and float32), through the array-API
code (array_api_strict, skipped when it is not installed) and on dask arrays (skipped likewise):

* against scipy.special (logsumexp with b / return_sign / axis / keepdims, softmax, log_softmax;
  at temperature 1): the shape, the dtype, NumPy scalar or array, and the pattern of
  nan / +inf / -inf and signs, except the documented differences (docs/user_guide/semantics.md: an empty
  reduction's sign is 0, an element of weight 0 is removed, even an inf or nan one and even
  when nothing else is left;
  the contract: softmax of an empty array is an empty array) and where scipy's own rounding
  makes a special value of a finite exact result, or scipy on float32 input differs from scipy
  on the same values in float64 (lsearray is held to the exact value there);
  a Python float b is weak (NEP 50): it takes a's dtype;
* against the exact value (tests/reference.py, mpmath with 60 digits, every special value by the
  semantics contract): the special-value class and sign of every element and its error in ulp
  of the result's dtype, within the contract's targets:

  - NumPy kernel: logsumexp, logmeanexp, log_softmax, logaddexp, logcumsumexp within 1 ulp, plus
    2**-100 * max(|max a|, tau) absolute in float64 (the double-double limit where the result is
    tiny against the max; for log_softmax, in units of a / tau); softmax and gumbel_softmax
    2 ulp; OnlineLogSumExp 2 ulp ("an ulp or two"); with negative weights, plus
    tau * eps * kappa (kappa the condition number of the sum; docs/user_guide/limits.md, tests/test_accuracy.py),
    and nothing is asserted of a slice whose eps * kappa >= 1/2 (its sign is not determined);
  - logmatmulexp: 2.5 ulp of max(|out|, 1) in float64; float32 1 ulp of max(|out|, 1) on NumPy,
    3 on the array-API path (its docstring);
  - array-API path and dask (whose bounds are not documented yet): 4 ulp plus 64 * eps times the
    result's scale (max(|max a|, tau, |out|); kappa times that with negative weights; relative to
    the value, times 1 + |a - max| / tau + log n, for softmax);
  - categorical: the index drawn is an exact argmax of logits - max + G (G the Gumbel noise
    rebuilt from the same seed) up to the rounding of that sum; gumbel_softmax: the softmax of
    (logits + G) / tau, and hard=True its one-hot argmax.

An invalid temperature (not finite, not positive, or below 2.2250738585072014e-308) must raise
ValueError naming the bound.

Each failure class (function, check, path; for accuracy, the kind of input: extreme temperature,
negative weights, a result tiny against the max, far from the max ...) raises its own
AssertionError subclass, so hypothesis reports a minimal example for each.

Environment:

* LSEARRAY_FUZZ=long: the run before a release, 50 times as many examples and no deadline
  (about half an hour on 2 cores). The default run is derandomized and bounded for CI (about
  35 s on 2 cores while nothing fails; shrinking failures to minimal examples takes minutes).
* LSEARRAY_FUZZ_SEED=<int>: other examples (reproducible) instead of the derandomized ones.
* LSEARRAY_FUZZ_STATS=<file>: also write the statistics table (cases, values checked, worst ulp
  per function, path and dtype; printed at the end of the module in any case) to that file.
* LSEARRAY_FUZZ_ONLY=<regex>: raise only the failure classes whose name ("logsumexp accuracy
  tiny result numpy") matches; the others are counted in the table and go on. With
  LSEARRAY_FUZZ_LOG=<file>, every failing example (class, message, input) is appended there.
"""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("mpmath")
sc = pytest.importorskip("scipy.special")

import mpmath  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import lsearray  # noqa: E402
from fuzz_support import (  # noqa: E402
    INVALID_TAUS, SLACK, STATS, TAU_MESSAGE, Checker, classify, logaddexp_cases, logmatmulexp_cases,
    reduction_cases, ref_reduce, ref_softmax, round_to, spacing_of, stats_table, weak,
)
from reference import (  # noqa: E402
    numpy_gumbel_noise,
    MP_DPS, MP_NAN, mp_logcumsumexp_slice, mp_logmatmulexp, mp_lse_slice, normalize_axes,
)

LONG = os.environ.get("LSEARRAY_FUZZ", "").lower() == "long"
SEED = os.environ.get("LSEARRAY_FUZZ_SEED")
SCALE = 50 if LONG else 1


def fuzz(examples: int):
    """hypothesis settings: `examples` (50x with LSEARRAY_FUZZ=long), seeded."""
    conf = settings(
        max_examples=examples * SCALE,
        deadline=None if LONG else 5000,
        derandomize=SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )

    def wrap(f):
        f = conf(f)
        return seed(int(SEED))(f) if SEED is not None else f

    return wrap


def run(body, path_name: str, dtype, weight: float = 1.0, **params) -> None:
    """Run body(path, dtype, data, **params) under hypothesis with the path's number of examples."""
    path = Path(path_name)
    dtype = np.dtype(dtype)

    @fuzz(max(1, round(EXAMPLES[path_name] * weight)))
    @given(data=st.data())
    def fuzz_example(data):
        body(path, dtype, data, **params)

    fuzz_example()


DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
PATHS = ["numpy", "array_api_strict", "dask"]
# examples per parametrization in the default run (the long run takes 50 times as many): a NumPy
# call takes microseconds, an array_api_strict one a millisecond, a dask one tens of them
EXAMPLES = {"numpy": 200, "array_api_strict": 80, "dask": 40}


@pytest.fixture(scope="module", autouse=True)
def _statistics(request):
    """Print (and with LSEARRAY_FUZZ_STATS, write) the statistics table once the module is done."""
    STATS.clear()
    yield
    if not STATS:
        return
    text = ("\nlsearray fuzz statistics (" + ("long run" if LONG else "default run")
            + (f", seed {SEED}" if SEED else ", derandomized") + "):\n" + stats_table() + "\n")
    path = os.environ.get("LSEARRAY_FUZZ_STATS")
    if path:
        with open(path, "w") as f:
            f.write(text)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown without -s too
            reporter.write_line(text)
    else:  # pragma: no cover
        print(text)


# --------------------------------------------------------------------------------------------
# Paths: NumPy (the kernel), array_api_strict (the array-API code), dask (lazy)
# --------------------------------------------------------------------------------------------

class Path:
    def __init__(self, name: str) -> None:
        self.name = name
        self.kernel = name == "numpy"
        if name == "array_api_strict":
            self.xp = pytest.importorskip("array_api_strict")
        elif name == "dask":
            self.da = pytest.importorskip("dask.array")
            import lsearray.dask

            self.dask = lsearray.dask

    def put(self, x):
        """x (NumPy array, None or Python float) as this path's input."""
        if x is None or isinstance(x, float) or self.name == "numpy":
            return x
        x = np.asarray(x)
        if self.name == "array_api_strict":
            return self.xp.asarray(np.array(x, order="C"))
        chunks = tuple(max(1, (n + 1) // 2) for n in x.shape)
        return self.da.from_array(np.array(x, order="C"), chunks=chunks)

    def kind_error(self, r, scalar: bool):
        """None if r is this path's kind of result (a NumPy scalar for a 0-d NumPy reduction)."""
        if self.name == "numpy":
            want = np.generic if scalar else np.ndarray
            return None if isinstance(r, want) else f"expected {want.__name__}, got {type(r).__name__}"
        if self.name == "dask":
            return None if isinstance(r, self.da.Array) else f"expected a lazy dask array, got {type(r).__name__}"
        return None if type(r).__module__.startswith("array_api_strict") else \
            f"expected an array_api_strict array, got {type(r).__name__}"

    def get(self, r) -> np.ndarray:
        if self.name == "numpy":
            return np.asarray(r)
        if self.name == "dask":
            return np.asarray(r.compute(scheduler="synchronous"))
        return np.asarray(r._array)

    def dtype_name(self, r) -> str:
        return np.dtype(r.dtype).name if self.name != "array_api_strict" else str(r.dtype).split(".")[-1]

    def looser(self, dtype):
        """(ulps, scale factor) of the bound (docs/user_guide/limits.md) for the array-API and dask paths."""
        return 4.0, 64.0 * float(np.finfo(dtype).eps)


def _call(chk: Checker, fn):
    try:
        with np.errstate(all="ignore"):
            return fn(), True
    except Exception as exc:  # noqa: BLE001 - every exception is a finding
        chk.fail(f"raised {type(exc).__name__}", f"{type(exc).__name__}: {exc}")
        return None, False


def _rejection_failure(fn, tau):
    """None if fn raises ValueError naming the temperature bound (the semantics contract), else why not."""
    try:
        with np.errstate(all="ignore"):
            r = fn()
        if hasattr(r, "compute"):
            r = r.compute(scheduler="synchronous")
    except ValueError as exc:
        if TAU_MESSAGE not in str(exc):
            return f"temperature {tau!r}: ValueError {str(exc)!r} does not say {TAU_MESSAGE!r}"
        return None
    except Exception as exc:  # noqa: BLE001
        return f"temperature {tau!r}: {type(exc).__name__}: {exc} (expected ValueError)"
    return f"temperature {tau!r} accepted; result {r!r}"


def _result_dtype(a, b) -> np.dtype:
    """Floating a keeps its dtype; array b promotes with it; a Python float b does not widen."""
    if b is None or isinstance(b, float):
        return np.dtype(a.dtype)
    return np.result_type(a.dtype, np.asarray(b).dtype)


def _exact_classes(exact, dtype) -> np.ndarray:
    out = np.empty(np.shape(exact), dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = classify(round_to(exact[idx], dtype))
    return out


def _absf(exact) -> np.ndarray:
    """|exact| as floats (0 for special values)."""
    out = np.zeros(np.shape(exact))
    for idx in np.ndindex(out.shape):
        v = float(exact[idx])
        out[idx] = abs(v) if math.isfinite(v) else 0.0
    return out


def _extreme(tau: float) -> bool:
    return not 1e-30 <= tau <= 1e30


def _lse_tags(ref: dict, tau: float, exact) -> np.ndarray:
    """The accuracy failure class of each element of a log-sum-exp-like result: extreme
    temperature, negative weights, a result tiny against max(|max a|, tau), or other."""
    tags = np.empty(np.shape(exact), dtype=object)
    m = np.asarray(ref["m"], dtype=np.float64)
    signed = np.asarray(ref["signed"], dtype=bool)
    for idx in np.ndindex(tags.shape):
        v = float(exact[idx])
        scale = max(abs(m[idx]) if math.isfinite(m[idx]) else 0.0, tau)
        if _extreme(tau):
            tags[idx] = "extreme temperature"
        elif signed[idx]:
            tags[idx] = "negative weights"
        elif math.isfinite(v) and abs(v) < 2.0**-20 * scale:
            tags[idx] = "tiny result"
        else:
            tags[idx] = "other"
    return tags


def _softmax_tags(z: np.ndarray, tau: float) -> np.ndarray:
    """extreme temperature; far from the max (|x - max| / tau > 1); near the max."""
    if _extreme(tau):
        return np.full(np.shape(z), "extreme temperature", dtype=object)
    return np.where(np.asarray(z) > 1.0, "far from the max", "near the max").astype(object)


def _lse_bounds(path: Path, dtype, ref: dict, tau: float, exact, ulps: float = 1.0) -> dict:
    """Checker.values' bounds for a log-sum-exp-like result: ulps, abs_slack (2**-100 max(|m|, tau)
    in float64; tau * eps * kappa with negative weights), looser (array-API and dask paths) and skip
    (negative weights whose sum's sign is not determined: eps * kappa >= 1/2)."""
    eps = float(np.finfo(dtype).eps)
    m = np.asarray(ref["m"], dtype=np.float64)
    mabs = np.where(np.isfinite(m), np.abs(m), 0.0)
    kappa = np.asarray(ref["kappa"], dtype=np.float64)
    signed = np.asarray(ref["signed"], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        skip = signed & ~(eps * kappa < 0.5)
        conditioned = signed & ~skip
        slack = SLACK * np.maximum(mabs, tau) if np.dtype(dtype) == np.float64 else np.zeros_like(mabs)
        slack = slack + np.where(conditioned, tau * eps * kappa, 0.0)
        if path.kernel:
            return dict(ulps=ulps, abs_slack=slack, skip=skip)
        u, f = path.looser(dtype)
        scale = np.maximum(np.maximum(mabs, tau), _absf(exact)) * np.where(conditioned, kappa, 1.0)
        return dict(ulps=u, abs_slack=slack, looser=f * scale, skip=skip)


# --------------------------------------------------------------------------------------------
# Invalid temperatures
# --------------------------------------------------------------------------------------------

def _with_tau(path: Path, func: str, tau: float):
    """A call of func at temperature tau on a small input of the path."""
    x = path.put(np.array([[0.0, -1.0], [2.0, 3.0]]))
    if func == "OnlineLogSumExp":
        return lambda: lsearray.OnlineLogSumExp(axis=0, temperature=tau).update(x).result()
    if func == "logaddexp":
        return lambda: lsearray.logaddexp(x, x, temperature=tau)
    if func == "logdiffexp":
        return lambda: lsearray.logdiffexp(x, x, temperature=tau)
    if func in ("gumbel_softmax",):
        return lambda: lsearray.gumbel_softmax(x, temperature=tau, rng=0)
    mod = path.dask if path.name == "dask" and func in ("logsumexp", "logmeanexp", "softmax", "log_softmax") \
        else lsearray
    return lambda: getattr(mod, func)(x, axis=-1, temperature=tau)


TAU_FUNCS = ["logsumexp", "logmeanexp", "softmax", "log_softmax", "logaddexp", "logdiffexp",
             "logcumsumexp", "gumbel_softmax", "OnlineLogSumExp"]


@pytest.mark.parametrize("func", TAU_FUNCS)
@pytest.mark.parametrize("path_name", PATHS)
def test_invalid_temperature(path_name, func):
    """Temperatures that are not finite, not positive or below the smallest normal float64 raise
    ValueError naming the bound, on every path (the semantics contract, item 1)."""
    path = Path(path_name)
    if path_name == "dask" and func in ("gumbel_softmax", "OnlineLogSumExp"):
        pytest.skip("covered on NumPy and array-API input")
    failures = [f for f in (_rejection_failure(_with_tau(path, func, tau), tau) for tau in INVALID_TAUS) if f]
    assert not failures, f"{func} [{path_name}]:\n  " + "\n  ".join(failures)


# --------------------------------------------------------------------------------------------
# logsumexp and logmeanexp
# --------------------------------------------------------------------------------------------

def _split_every(data, path: Path):
    return data.draw(st.sampled_from([None, 2, 3]), label="split_every") if path.name == "dask" else None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_logsumexp(path_name, dtype):
    run(_logsumexp, path_name, dtype)


def _logsumexp(path, dtype, data):
    case = data.draw(reduction_cases(dtype), label="case")
    rs = data.draw(st.booleans(), label="return_sign")
    split = _split_every(data, path)
    chk = Checker("logsumexp", path.name, dtype, case, return_sign=rs, split_every=split)
    a, b = path.put(case.a), path.put(case.b)

    def call():
        kw = dict(axis=case.axis, b=b, keepdims=case.keepdims, return_sign=rs, temperature=case.tau)
        if path.name == "dask":
            return path.dask.logsumexp(a, split_every=split, **kw)
        return lsearray.logsumexp(a, **kw)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    ref = ref_reduce(case)
    rdtype = _result_dtype(case.a, case.b)
    outs = got if rs else (got,)
    if rs and not (isinstance(got, tuple) and len(got) == 2):
        chk.fail("type", f"return_sign=True should give a pair, got {type(got).__name__}")
        return chk.finish()
    for r in outs:
        err = path.kind_error(r, scalar=ref["shape"] == ())
        if err:
            chk.fail("type", err)
        chk.meta("dtype", path.dtype_name(r), rdtype.name)
    vals, ok = _call(chk, lambda: [path.get(r) for r in outs])
    if not ok:
        return chk.finish()
    chk.meta("shape", vals[0].shape, ref["shape"])
    if chk.failures:
        return chk.finish()

    exact = ref["value"].copy()
    if not rs:
        for idx in np.ndindex(exact.shape):
            if ref["sign"][idx] < 0:
                exact[idx] = MP_NAN
    bounds = _lse_bounds(path, rdtype, ref, case.tau, exact)
    chk.values(vals[0], exact, rdtype, **bounds, tag=_lse_tags(ref, case.tau, exact))
    if rs:
        chk.signs(vals[1], ref["sign"], skip=bounds["skip"])

    if case.tau == 1.0:  # scipy has no temperature
        _against_scipy_lse(chk, case, rs, got, vals, ref, exact, rdtype, bounds["skip"], path)
    chk.finish()


def _against_scipy_lse(chk, case, rs, got, vals, ref, exact, rdtype, undetermined, path):
    try:
        with np.errstate(all="ignore"):
            b = None if case.b is None else weak(case.b, case.a.dtype)
            sp = sc.logsumexp(case.a, axis=case.axis, b=b, keepdims=case.keepdims, return_sign=rs)
    except Exception:  # noqa: BLE001 - scipy's own limits: nothing to compare
        return
    sps = sp if rs else (sp,)
    if path.kernel:
        for r, s in zip(got if rs else (got,), sps):
            if isinstance(r, np.generic) != isinstance(s, np.generic):
                chk.fail("type scipy", f"lsearray gives {type(r).__name__}, scipy {type(s).__name__}")
    if not isinstance(case.b, float):  # a Python float b is weak here (contract item 4)
        chk.meta("dtype scipy", vals[0].dtype.name, np.asarray(sps[0]).dtype.name)
    chk.meta("shape scipy", vals[0].shape, np.shape(sps[0]))
    wide = None
    if rdtype != np.float64:  # scipy in float64 tells its float32 rounding from its semantics
        try:
            with np.errstate(all="ignore"):
                wide = sc.logsumexp(case.a.astype(np.float64), axis=case.axis, keepdims=case.keepdims,
                                    b=None if b is None else b.astype(np.float64), return_sign=True)
        except Exception:  # noqa: BLE001
            wide = None
    removed = _removed_nan(case)
    chk.against_scipy(vals[0], sps[0], _exact_classes(exact, rdtype), inf_weight=_inf_weight(case),
                      got_sign=vals[1] if rs else None, sp_sign=sps[1] if rs else None,
                      exp_sign=ref["sign"], empty=ref["n"] == 0, removed_nan=removed,
                      undetermined=undetermined, sum_class=_exact_classes(ref["value"], rdtype),
                      sp_wide=None if wide is None else (wide[0] if rs else np.where(wide[1] < 0, np.nan, wide[0])),
                      sp_wide_sign=None if wide is None or not rs else wide[1])


def _removed_nan(case) -> np.ndarray:
    """Per result element: whether its slice holds an element of weight 0 (lsearray removes it,
    even an inf or nan one: docs/user_guide/semantics.md; scipy does not always)."""
    a = np.atleast_1d(np.asarray(case.a, dtype=np.float64))
    if case.b is None:
        flag = np.zeros(a.shape, bool)
    else:
        flag = np.broadcast_to(weak(case.b, case.a.dtype), a.shape) == 0
    axes = normalize_axes(case.axis, a.ndim)
    return np.any(flag, axis=axes, keepdims=case.keepdims)


def _inf_weight(case) -> np.ndarray:
    """Per result element: whether its slice gives a finite element an infinite weight. The exact
    sum is then infinite (or nan where weights of both signs are); scipy's nan there is its
    arithmetic, inf * 0 where exp(a - max) underflowed or inf / inf where it divides by the
    max's weight."""
    a = np.atleast_1d(np.asarray(case.a))
    flag = np.zeros(a.shape, bool)
    if case.b is not None:
        flag = np.isinf(np.broadcast_to(weak(case.b, case.a.dtype), a.shape)) & np.isfinite(a)
    return np.any(flag, axis=normalize_axes(case.axis, a.ndim), keepdims=case.keepdims)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_logmeanexp(path_name, dtype):
    run(_logmeanexp, path_name, dtype)


def _logmeanexp(path, dtype, data):
    case = data.draw(reduction_cases(dtype, finite_weights=True), label="case")
    split = _split_every(data, path)
    chk = Checker("logmeanexp", path.name, dtype, case, split_every=split)
    a, b = path.put(case.a), path.put(case.b)

    def call():
        kw = dict(axis=case.axis, b=b, keepdims=case.keepdims, temperature=case.tau)
        if path.name == "dask":
            return path.dask.logmeanexp(a, split_every=split, **kw)
        return lsearray.logmeanexp(a, **kw)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    ref = ref_reduce(case, mean=True)
    rdtype = _result_dtype(case.a, case.b)
    err = path.kind_error(got, scalar=ref["shape"] == ())
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), rdtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, ref["shape"])
    if chk.failures:
        return chk.finish()
    bounds = _lse_bounds(path, rdtype, ref, case.tau, ref["value"])
    chk.values(val, ref["value"], rdtype, **bounds, tag=_lse_tags(ref, case.tau, ref["value"]))
    chk.finish()


# --------------------------------------------------------------------------------------------
# softmax and log_softmax
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_softmax(path_name, dtype, log):
    run(_softmax, path_name, dtype, log=log)


def _softmax(path, dtype, data, log):
    func = "log_softmax" if log else "softmax"
    case = data.draw(reduction_cases(dtype, weights=False), label="case")
    chk = Checker(func, path.name, dtype, case)
    a = path.put(case.a)

    def call():
        mod = path.dask if path.name == "dask" else lsearray
        return getattr(mod, func)(a, axis=case.axis, temperature=case.tau)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    dtype = np.dtype(case.a.dtype)
    err = path.kind_error(got, scalar=case.a.ndim == 0)
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), dtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, case.a.shape)
    if chk.failures:
        return chk.finish()
    exact, m = ref_softmax(case.a, case.axis, case.tau, log)
    tau = case.tau
    x = case.a.astype(np.float64)
    u, f = path.looser(dtype)
    with np.errstate(all="ignore"):
        z = np.where(np.isfinite(x) & np.isfinite(m), np.abs(x - m) / tau, 0.0)
        if log:  # in units of a / tau: 2**-100 max(|m| / tau, 1)
            slack = SLACK * np.maximum(np.where(np.isfinite(m), np.abs(m), 0.0) / tau, 1.0) \
                if dtype == np.float64 else 0.0
            # 2 ulp on the kernel (docs/user_guide/limits.md): the normalizer keeps its terms'
            # error, up to 0.7 ulp each, and the output rounds once more
            bounds = dict(ulps=2.0, abs_slack=slack) if path.kernel else \
                dict(ulps=u, abs_slack=slack, looser=f * np.maximum(_absf(exact), 1.0))
        else:  # relative: the exp of (x - m) / tau carries its argument's rounding
            bounds = dict(ulps=2.0) if path.kernel else \
                dict(ulps=u, looser=f * _absf(exact) * (1.0 + z + math.log(max(case.a.size, 1))))
    chk.values(val, exact, dtype, **bounds, tag=_softmax_tags(z, tau))
    if tau == 1.0 and case.a.size:
        try:
            with np.errstate(all="ignore"):
                sp = getattr(sc, func)(case.a, axis=case.axis)
        except Exception:  # noqa: BLE001 - e.g. scipy's AxisError for axis (0,) of a 0-d array
            sp = None
        if sp is not None:
            if path.kernel and isinstance(got, np.generic) != isinstance(sp, np.generic):
                chk.fail("type scipy", f"lsearray gives {type(got).__name__}, scipy {type(sp).__name__}")
            chk.meta("dtype scipy", val.dtype.name, np.asarray(sp).dtype.name)
            chk.against_scipy(val, sp, _exact_classes(exact, dtype))
    chk.finish()


# --------------------------------------------------------------------------------------------
# logaddexp, logcumsumexp, logmatmulexp
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_logaddexp(path_name, dtype):
    run(_logaddexp, path_name, dtype)


def _logaddexp(path, dtype, data):
    case = data.draw(logaddexp_cases(dtype), label="case")
    x1, x2, tau = case.a, case.b, case.tau
    chk = Checker("logaddexp", path.name, dtype, case)

    def call():
        return lsearray.logaddexp(path.put(x1), path.put(x2), temperature=tau)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    with np.errstate(all="ignore"):
        npr = np.logaddexp(x1, x2)
    rdtype = np.dtype(npr.dtype)
    shape = np.shape(npr)
    err = path.kind_error(got, scalar=isinstance(npr, np.generic))
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), rdtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, shape)
    if chk.failures:
        return chk.finish()
    b1, b2 = np.broadcast_arrays(np.asarray(x1), weak(x2, np.asarray(x1).dtype))
    ref = {"value": np.empty(shape, object), "m": np.zeros(shape), "kappa": np.ones(shape),
           "signed": np.zeros(shape, bool)}
    for idx in np.ndindex(shape):
        r = mp_lse_slice(np.array([b1[idx], b2[idx]]), None, tau)
        ref["value"][idx], ref["m"][idx] = r.value, r.m
    bounds = _lse_bounds(path, rdtype, ref, tau, ref["value"])
    chk.values(val, ref["value"], rdtype, **bounds, tag=_lse_tags(ref, tau, ref["value"]))
    chk.finish()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_logcumsumexp(path_name, dtype):
    run(_logcumsumexp, path_name, dtype)


def _logcumsumexp(path, dtype, data):
    case = data.draw(reduction_cases(dtype, weights=False, ints_only=True), label="case")
    axis = None if data.draw(st.integers(0, 3), label="flatten") == 3 else case.axis
    chk = Checker("logcumsumexp", path.name, dtype, case, cumsum_axis=axis)

    def call():
        return lsearray.logcumsumexp(path.put(case.a), axis=axis, temperature=case.tau)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    expected_shape = np.shape(np.cumsum(np.zeros_like(case.a), axis=axis))
    dtype = np.dtype(case.a.dtype)
    err = path.kind_error(got, scalar=False)
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), dtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, expected_shape)
    if chk.failures:
        return chk.finish()
    a = np.atleast_1d(case.a)
    if axis is None:
        a, ax = a.reshape(-1), 0
    else:
        ax = axis % a.ndim
    moved = np.moveaxis(a, ax, -1)
    exact = np.empty(moved.shape, object)
    m = np.zeros(moved.shape)
    for idx in np.ndindex(moved.shape[:-1]):
        for k, r in enumerate(mp_logcumsumexp_slice(moved[idx], case.tau)):
            exact[idx + (k,)], m[idx + (k,)] = r.value, r.m
    exact, m = np.moveaxis(exact, -1, ax), np.moveaxis(m, -1, ax)
    ref = {"m": m, "kappa": np.ones(m.shape), "signed": np.zeros(m.shape, bool)}
    bounds = _lse_bounds(path, dtype, ref, case.tau, exact)
    chk.values(val.reshape(exact.shape), exact, dtype, **bounds, tag=_lse_tags(ref, case.tau, exact))
    chk.finish()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS)
def test_logmatmulexp(path_name, dtype):
    run(_logmatmulexp, path_name, dtype, weight=0.75)


def _logmatmulexp(path, dtype, data):
    case = data.draw(logmatmulexp_cases(dtype), label="case")
    a, b = case.a, case.b
    chk = Checker("logmatmulexp", path.name, dtype, case)
    got, ok = _call(chk, lambda: lsearray.logmatmulexp(path.put(a), path.put(b)))
    if not ok:
        return chk.finish()
    with np.errstate(all="ignore"):
        npr = np.matmul(a, b)
    rdtype = np.dtype(npr.dtype)
    err = path.kind_error(got, scalar=isinstance(npr, np.generic))
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), rdtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, np.shape(npr))
    if chk.failures:
        return chk.finish()
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, batch + a2.shape[-2:])
    B = np.broadcast_to(b2, batch + b2.shape[-2:])
    exact = np.empty(batch + (a2.shape[-2], b2.shape[-1]), object)
    for idx in np.ndindex(batch):
        exact[idx] = mp_logmatmulexp(A[idx], B[idx])
    exact = exact.reshape(np.shape(npr))
    if rdtype == np.float64:
        # logmatmulexp's bound: 2.5 ulp and the BLAS's sum of k terms, (k - 1) / 2 ulp at worst
        bound = 2.5 + (a.shape[-1] - 1) / 2
    else:
        bound = 1.0 if path.kernel else 3.0
    unit = np.ones(exact.shape)  # ulp of max(|out|, 1)
    for idx in np.ndindex(exact.shape):
        r = round_to(exact[idx], rdtype)
        if math.isfinite(r):
            unit[idx] = spacing_of(max(abs(r), 1.0), rdtype)
    chk.values(val, exact, rdtype, ulps=bound, unit=unit)
    chk.finish()


# --------------------------------------------------------------------------------------------
# OnlineLogSumExp
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS[:2])
def test_online(path_name, dtype):
    run(_online, path_name, dtype)


def _online(path, dtype, data):
    mean = data.draw(st.booleans(), label="mean")
    case = data.draw(reduction_cases(dtype, finite_weights=mean, ints_only=True, min_ndim=1), label="case")
    if data.draw(st.integers(0, 3), label="axis None") == 3:
        case.axis = None
    # with mean=True the sign of what is ambiguous (the sum's or the mean's): not asked
    rs = False if mean else data.draw(st.booleans(), label="return_sign")
    case.keepdims = False
    a = case.a
    b = None if case.b is None else np.array(np.broadcast_to(np.asarray(case.b), a.shape))
    case.b = b
    ax = 0 if case.axis is None else case.axis % a.ndim
    n = a.shape[ax]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3), label="cuts"))
    edges = [0] + cuts + [n]
    parts = [(np.take(a, range(lo, hi), axis=ax), None if b is None else np.take(b, range(lo, hi), axis=ax))
             for lo, hi in zip(edges[:-1], edges[1:])]
    split = data.draw(st.integers(0, len(parts)), label="merge point")
    chk = Checker("OnlineLogSumExp", path.name, dtype, case, mean=mean, return_sign=rs, cuts=cuts, merge_point=split)

    def call():
        left = lsearray.OnlineLogSumExp(axis=case.axis, temperature=case.tau)
        right = lsearray.OnlineLogSumExp(axis=case.axis, temperature=case.tau)
        for i, (pa, pb) in enumerate(parts):
            (left if i < split else right).update(path.put(pa), b=path.put(pb))
        if path.kernel:
            right = pickle.loads(pickle.dumps(right))
        return left.merge(right).result(return_sign=rs, mean=mean)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    ref = ref_reduce(case, mean=mean)
    rdtype = _result_dtype(case.a, case.b)
    outs = got if rs else (got,)
    for r in outs:
        err = path.kind_error(r, scalar=ref["shape"] == ())
        if err:
            chk.fail("type", err)
        chk.meta("dtype", path.dtype_name(r), rdtype.name)
    vals, ok = _call(chk, lambda: [path.get(r) for r in outs])
    if not ok:
        return chk.finish()
    chk.meta("shape", vals[0].shape, ref["shape"])
    if chk.failures:
        return chk.finish()
    exact = ref["value"].copy()
    if not rs and not mean:
        for idx in np.ndindex(exact.shape):
            if ref["sign"][idx] < 0:
                exact[idx] = MP_NAN
    bounds = _lse_bounds(path, rdtype, ref, case.tau, exact, ulps=2.0)
    # The documented bound: the stream is not kept, so terms below the max stay rounded to
    # float64 (2^-53 of themselves and of their arguments) where a result cancels.
    bounds["abs_slack"] = bounds["abs_slack"] + 2.0**-50 * np.asarray(ref["tail"], dtype=np.float64)
    chk.values(vals[0], exact, rdtype, **bounds, tag=_lse_tags(ref, case.tau, exact))
    if rs:
        chk.signs(vals[1], ref["sign"], skip=bounds["skip"])
    chk.finish()


# --------------------------------------------------------------------------------------------
# categorical and gumbel_softmax: the noise rebuilt from the same seed
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS[:2])
def test_gumbel_softmax(path_name, dtype):
    run(_gumbel_softmax, path_name, dtype)


def _gumbel_softmax(path, dtype, data):
    case = data.draw(reduction_cases(dtype, weights=False, ints_only=True, min_ndim=1), label="case")
    hard = data.draw(st.booleans(), label="hard")
    rng = data.draw(st.integers(0, 2**32 - 1), label="rng")
    chk = Checker("gumbel_softmax", path.name, dtype, case, hard=hard, rng=rng)
    x = case.a

    def call(h=hard):
        return lsearray.gumbel_softmax(path.put(x), axis=case.axis, temperature=case.tau, hard=h, rng=rng)

    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    err = path.kind_error(got, scalar=False)
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), x.dtype.name)
    val, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", val.shape, x.shape)
    if chk.failures:
        return chk.finish()
    g = numpy_gumbel_noise(rng, x.shape)
    with np.errstate(all="ignore"):
        if path.kernel or x.dtype == np.float64:
            z = x.astype(np.float64) + g
        else:
            z = x + g.astype(x.dtype)
    exact, m = ref_softmax(z, case.axis, case.tau, log=False)
    if hard:
        soft, ok = _call(chk, lambda: path.get(call(False)))
        if not ok:
            return chk.finish()
        ax = case.axis % x.ndim
        if x.shape[ax]:
            # all nan where the soft sample is; else exactly one 1, at a maximum of the soft sample
            # (any of tied maxima: the soft sample is rounded to the logits' dtype)
            nan_slices = np.all(np.isnan(soft), axis=ax, keepdims=True)
            top = np.max(np.where(np.isnan(soft), -1.0, soft), axis=ax, keepdims=True)
            one_hot = (np.sum(val == 1.0, axis=ax, keepdims=True) == 1) & np.all((val == 0.0) | (val == 1.0), axis=ax,
                                                                                  keepdims=True)
            at_top = np.all((val == 0.0) | (soft == top), axis=ax, keepdims=True)
            ok_slices = np.where(nan_slices, np.all(np.isnan(val), axis=ax, keepdims=True), one_hot & at_top)
            if not np.all(ok_slices):
                chk.fail("hard one-hot", f"hard sample {val.tolist()!r} is not a one-hot argmax of the soft sample "
                                         f"{soft.tolist()!r}")
        return chk.finish()
    with np.errstate(all="ignore"):
        zz = np.where(np.isfinite(z) & np.isfinite(m), np.abs(z - m) / case.tau, 0.0)
    if path.kernel:
        bounds = dict(ulps=2.0)
    else:
        u, f = path.looser(x.dtype)
        with np.errstate(invalid="ignore"):  # 0 * inf where an output is 0 far from the max
            bounds = dict(ulps=u, looser=f * _absf(exact) * (1.0 + zz + math.log(max(x.size, 1))))
    chk.values(val, exact, x.dtype, **bounds, tag=_softmax_tags(zz, case.tau))
    chk.finish()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path_name", PATHS[:2])
def test_categorical(path_name, dtype):
    run(_categorical, path_name, dtype)


def _categorical(path, dtype, data):
    case = data.draw(reduction_cases(dtype, weights=False, ints_only=True, min_ndim=1, tau=False), label="case")
    rng = data.draw(st.integers(0, 2**32 - 1), label="rng")
    x = case.a
    ax = case.axis % x.ndim
    k = x.shape[ax]
    batch = x.shape[:ax] + x.shape[ax + 1:]
    shape = data.draw(st.sampled_from([None, batch, (2,) + batch]), label="shape")
    chk = Checker("categorical", path.name, dtype, case, shape=shape, rng=rng)

    def call():
        return lsearray.categorical(path.put(x), axis=case.axis, shape=shape, rng=rng)

    with np.errstate(invalid="ignore"):
        bad = k == 0 or bool(np.any(np.isnan(x))) or bool(np.any(np.all(x == -np.inf, axis=ax)))
    if bad:
        try:
            r = call()
        except ValueError:
            return chk.finish()
        except Exception as exc:  # noqa: BLE001
            chk.fail("raised", f"{type(exc).__name__}: {exc} (expected ValueError)")
            return chk.finish()
        chk.fail("reject accepted", f"logits with nan, an all -inf slice or no category gave {r!r}")
        return chk.finish()
    got, ok = _call(chk, call)
    if not ok:
        return chk.finish()
    out_shape = batch if shape is None else tuple(shape)
    err = path.kind_error(got, scalar=out_shape == ())
    if err:
        chk.fail("type", err)
    chk.meta("dtype", path.dtype_name(got), "int64")
    idx_arr, ok = _call(chk, lambda: path.get(got))
    if not ok:
        return chk.finish()
    chk.meta("shape", idx_arr.shape, out_shape)
    if chk.failures:
        return chk.finish()
    lead = len(out_shape) - len(batch)
    noise_shape = (*out_shape[:lead + ax], k, *out_shape[lead + ax:])
    g = numpy_gumbel_noise(rng, noise_shape)
    cdt = np.float64 if (path.kernel or x.dtype == np.float64) else np.float32
    g = g.astype(cdt)
    xs = x.astype(cdt)
    chk.entry.values += idx_arr.size
    for oi in np.ndindex(out_shape):
        bi = oi[lead:]
        xsl = xs[bi[:ax] + (slice(None),) + bi[ax:]]
        gsl = g[oi[:lead + ax] + (slice(None),) + oi[lead + ax:]]
        i = int(idx_arr[oi])
        if not 0 <= i < k:
            chk.fail("categorical index", f"draw {oi}: index {i} outside 0..{k - 1}")
            continue
        top = float(np.max(xsl))
        if top == math.inf:
            cand = [j for j in range(k) if xsl[j] == math.inf]
            shifted = [0.0 if j in cand else -math.inf for j in range(k)]
        else:
            cand = [j for j in range(k) if xsl[j] > -math.inf]
            shifted = [float(v) - top if v > -math.inf else -math.inf for v in xsl.tolist()]
        if i not in cand:
            chk.fail("categorical index", f"draw {oi}: index {i} (logit {float(xsl[i])!r}) cannot be drawn from "
                                          f"logits {xsl.tolist()!r}")
            continue
        with mpmath.workdps(MP_DPS):
            zs = {j: mpmath.mpf(float(xsl[j])) - (mpmath.mpf(top) if top != math.inf else 0) + mpmath.mpf(float(gsl[j]))
                  if top != math.inf else mpmath.mpf(float(gsl[j])) for j in cand}
            best = max(zs.values())
            gap = float(best - zs[i])
        scale = max(abs(float(best)), abs(shifted[i]), abs(float(gsl[i])))
        slack = 4.0 * spacing_of(scale, cdt)
        if gap > slack:
            chk.fail("categorical argmax", f"draw {oi}: index {i} is {gap:.3g} below the exact argmax of logits - max + G "
                                           f"(allowed {slack:.3g}); logits {xsl.tolist()!r}, noise {gsl.tolist()!r}")
    chk.finish()
