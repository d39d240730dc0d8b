"""logmatmulexp on every backend against its definition: out[.., i, j] = lse_k(a[.., i, k] + b[.., k, j]).

References (tests/reference.py): `slow_logmatmulexp` evaluates the definition with the whole
(.., n, k, m) array of sums and scipy.special.logsumexp over k (nan, +inf and -inf as the definition
gives them); `mp_logmatmulexp` evaluates it in mpmath from the exact float inputs; gradients are
checked against the closed form d out_ij / d a_ik = d out_ij / d b_kj = softmax over k of a_ik + b_kj
(`logmatmulexp_grads`).
"""

import math
import tracemalloc

import mpmath
import numpy as np
import pytest

from lsearray import logmatmulexp
from lsearray._executors import matmul as _matmul
from backends import assert_values, make_backend
from reference import logmatmulexp_grads, mp_logmatmulexp, slow_logmatmulexp

inf = math.inf
nan = math.nan


def max_ulp(got, exact, dtype):
    """The largest |got - exact| in units of the spacing of max(|exact|, 1) in dtype."""
    worst = 0.0
    for g, e in zip(np.asarray(got, dtype=np.float64).ravel().tolist(), exact.ravel().tolist()):
        with mpmath.workdps(50):
            unit = float(np.spacing(np.asarray(max(abs(float(e)), 1.0), dtype=dtype)))
            worst = max(worst, float(abs(mpmath.mpf(g) - e)) / unit)
    return worst


def data(shape, seed=0, scale=4.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def special_values():
    """a (5, 6) and b (6, 7) holding rows and columns that are all -inf, hold nan, hold +inf,
    +inf facing -inf (nan by the definition), and -inf masks."""
    a, b = data((5, 6), seed=1), data((6, 7), seed=2)
    a[0] = -inf                 # an all -inf row
    a[1, 2] = nan
    a[2, 3] = inf
    a[2, 0] = 800.0             # beside +inf, its exp overflows too
    a[3, [0, 4]] = -inf         # a masked row
    b[:, 0] = -inf              # an all -inf column
    b[1, 1] = nan
    b[3, 2] = -inf              # faces a[2, 3] = +inf: nan in row 2
    b[5, 3] = inf               # faces a[0, 5] = -inf: nan in row 0
    b[[0, 2], 4] = -inf
    b[4, 5] = inf               # faces a[3, 4] = -inf: nan in row 3
    return a, b


def adversarial(seed, n=6, k=9, m=5, gap=300.0):
    """Row maxima of a at k = 0 and column maxima of b at k = 1, ``gap`` above the rest, so
    that the result is moderate while the shifted product underflows or loses its digits."""
    a, b = data((n, k), seed=seed, scale=2.0), data((k, m), seed=seed + 1, scale=2.0)
    a[:, 0] += gap
    b[1, :] += gap
    return a - gap, b


SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((3, 4), (2, 4, 2)),
    ((1, 1), (1, 1)),
    ((2, 3, 0), (0, 4)),
    ((0, 3), (3, 2)),
    ((2, 0, 3, 2), (1, 2, 4)),
]
SHAPE_IDS = [f"{sa}@{sb}".replace(" ", "") for sa, sb in SHAPES]
KEEP = {((3, 4), (4, 5)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 0), (0, 4))}


# ---- values, shapes, dtypes on every backend ---------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shapes", SHAPES, ids=SHAPE_IDS)
def test_matches_definition(xp, shapes, dtype):
    xp.subset(shapes in KEEP and dtype == "float64",
              jax_keep=(shapes, dtype) in ((SHAPES[0], "float64"), (SHAPES[4], "float32")))
    a, b = data(shapes[0], seed=3).astype(dtype), data(shapes[1], seed=4).astype(dtype)
    A, B = xp.make(a), xp.make(b)
    out = logmatmulexp(A, B)
    expected = slow_logmatmulexp(a, b)
    xp.check(out, A, dtype, expected.shape, scalar=True)
    assert_values(xp.to_numpy(out), expected, dtype)


def test_special_values_follow_the_definition(xp):
    a, b = special_values()
    A, B = xp.make(a), xp.make(b)
    out = logmatmulexp(A, B)
    xp.check(out, A, "float64", (5, 7))
    got, expected = xp.to_numpy(out), slow_logmatmulexp(a, b)
    assert_values(got, expected, "float64")
    assert np.isnan(expected).any() and np.isposinf(expected).any()
    # the all -inf row 0 and column 0 give -inf, not nan, against rows and columns free of nan and +inf
    clean_rows = ~np.any(np.isnan(a) | (a == inf), axis=1)
    clean_cols = ~np.any(np.isnan(b) | (b == inf), axis=0)
    assert clean_rows.sum() == 3 and clean_cols.sum() == 4
    assert np.all(got[0, clean_cols] == -inf) and np.all(got[clean_rows, 0] == -inf)


def test_rows_and_columns_on_different_scales(xp):
    xp.subset(False)
    # the shifted product exp(a - max) @ exp(b - max) is exp(-800) + exp(-800): 0 in float64
    A, B = xp.make(np.array([[0.0, -800.0]])), xp.make(np.array([[-800.0], [0.0]]))
    got = xp.to_numpy(logmatmulexp(A, B))
    with mpmath.workdps(50):
        exact = mpmath.mpf(-800) + mpmath.log(2)
    assert max_ulp(got, np.array([exact]), np.float64) <= 0.5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_different_scales_against_mpmath(xp, dtype):
    xp.subset(dtype == "float64", jax_keep=False)    # jax: test_jax_gradients_are_the_softmax
    a, b = adversarial(seed=5, gap=300.0)
    a[2, 3:] = -inf                               # masks next to the large gap
    b[4:, 1] = -inf
    a, b = a.astype(dtype), b.astype(dtype)
    got = xp.to_numpy(logmatmulexp(xp.make(a), xp.make(b)))
    exact = mp_logmatmulexp(a.astype(np.float64), b.astype(np.float64))
    # NumPy computes float32 in float64; the array-API code in float32
    bound = 0.5 + 1e-6 if (dtype == "float32" and xp.name.startswith("numpy")) else 4.0
    assert max_ulp(got, exact, dtype) <= bound


def _accuracy_cases():
    rng = np.random.default_rng(7)
    cases = {}
    for sigma in (1.0, 30.0, 1000.0):
        cases[f"normal-{sigma:g}"] = (rng.standard_normal((7, 20)) * sigma,
                                      rng.standard_normal((20, 6)) * sigma)
    cases["gap-300"] = adversarial(seed=8, n=7, k=20, m=6, gap=300.0)
    cases["gap-40-result-near-0"] = adversarial(seed=9, n=7, k=20, m=6, gap=40.0)
    cases["spread-result-near-0"] = (rng.standard_normal((7, 20)) * 10,
                                     rng.standard_normal((20, 6)) * 10 - 35)
    cases["uniform-800"] = (rng.uniform(-800, 0, (7, 20)), rng.uniform(-800, 0, (20, 6)))
    cases["offset-200"] = (rng.standard_normal((7, 20)) * 5 + 200, rng.standard_normal((20, 6)) * 5 - 200)
    with np.errstate(divide="ignore"):
        cases["log-stochastic"] = (np.log(rng.dirichlet(np.full(20, 0.3), size=7)),
                                   np.log(rng.dirichlet(np.full(6, 0.3), size=20)))
    return cases


ACCURACY = _accuracy_cases()


@pytest.mark.parametrize("case", sorted(ACCURACY))
def test_numpy_accuracy_against_mpmath(case):
    a, b = ACCURACY[case]
    exact = mp_logmatmulexp(a, b)
    assert max_ulp(logmatmulexp(a, b), exact, np.float64) <= 4.0
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    exact32 = mp_logmatmulexp(a32.astype(np.float64), b32.astype(np.float64))
    assert max_ulp(logmatmulexp(a32, b32), exact32, np.float32) <= 0.5 + 1e-6


def test_long_inner_axis_against_mpmath():
    a, b = data((3, 3000), seed=10, scale=3.0), data((3000, 2), seed=11, scale=3.0)
    assert max_ulp(logmatmulexp(a, b), mp_logmatmulexp(a, b, dps=30), np.float64) <= 4.0


# Rows of a and columns of b whose product (one entry) was among the worst of a random search
# (draws of `_random_product` and its like, some 5e4 for each path, against mpmath): 3.2 to
# 3.95 ulp in float64 before the shifts were rounded to integers and the differences carried
# in double-double (the shift ma + mb rounded by up to 2 ulp of the result, x - shift up to
# 1 more), 0.05 to 1.25 after; the last two are the worst found since, 1.98 and 2.35 ulp.
WORST_FLOAT64 = [
    ([48.06520891526433, 19.297407578905222, -16.713655841949862, 89.34286587865564, -8.895098440142839,
      1.9823331826695918],
     [-103.82965893916517, -40.194828831411364, -50.40343050438821, -70.56883751142307, 60.19711749603485,
      -30.339546001178423]),
    ([-9.912741469743251, -17.19472107784872, 26.92483113258043, 33.44233175776233, -21.345633622868355,
      -11.789648019228329, -8.681820955953963, -3.424196475783241],
     [8.433435790166985, -16.244097096838136, -30.368019417355402, -28.373772462058156, 14.37119917238141,
      -15.093445363673567, 36.27464205551855, 15.837127283497841]),
    ([7.214794927506402, -13.525385560188248, -11.088120513120156, -11.093519650901078, -11.878475782291346,
      -11.971880956827919, -13.17292681645036],
     [0.09250377490522599, 10.928618710298796, 0.8048212523793127, -3.1441102609203306, 1.6557641711692657,
      -4.0769938014043, -3.6376689318564708]),
    ([2.858022172799188, -2.0254104535077797], [-1.2621301884387417, 2.3672556070911748]),
    ([-58.20459354860759, 0.7226473619346582, -70.84462674673075],
     [35.90899320060344, 11.573482830402293, 9.131701827850794]),
    ([-0.24232911641004007, -2.7244712231113866, -4.418793319804147],
     [0.28479254341307736, 4.437696356475205, 0.2873322186214374]),
    ([0.24272491158876663, -2.360349125472573, -2.0087494277150393, -3.2563308248838174, -1.8585491901138773,
      -1.6171042528816573, -1.147359398226567],
     [1.0249767758158006, 2.6569388850584197, 0.7596551220192297, 0.1978097430689534, -0.04578969023457441,
      -0.08029031207485302, -0.04308318242525622]),
    ([-0.6965085773607137, -2.677925501395942, -1.214047781826971, 1.2827060040985614, -1.7874286202069014,
      -0.6125915921546865],
     [2.156374225638033, 2.794473590180167, -1.5968433902732933, -2.135138615361999, -2.5074217376255388,
      -3.5873443141109447]),
]
# float32 in float32 (the array-API code): 3.8 ulp before, 0.2 after; then the worst found since, 2.15.
WORST_FLOAT32 = [
    ([1.4469705820083618, -5.756345272064209, -5.9767584800720215, -5.564263820648193, -6.471983432769775,
      -8.803544998168945, -4.391636848449707],
     [1.3246610164642334, 6.7836809158325195, 1.7690222263336182, -2.4515533447265625, -1.2361466884613037,
      0.8236199021339417, 0.239376962184906]),
    ([-3.1596341133117676, -5.836135387420654, -6.50096321105957, -9.299358367919922, -7.678717613220215,
      -5.817126274108887, -3.658460855484009],
     [1.2476930618286133, 7.172730445861816, 0.27575361728668213, -1.6424330472946167, -3.987548589706421,
      -0.710393488407135, 2.2127878665924072]),
]


def _random_product(rng):
    """Small a and b of one of seven kinds: normal on scales from 0.1 to 1000; row maxima of a
    and column maxima of b at different k, up to 1000 apart; offsets up to 1e4 that cancel;
    results near 0 from a wide spread; uniform on [-800, 0]; large values of either sign;
    and shifted products whose log lies just above -2 max(|out|, 1), where they are kept."""
    n, k, m = rng.integers(1, 5), rng.integers(1, 9), rng.integers(1, 5)
    kind = rng.integers(0, 7)
    if kind == 0:
        scale = 10 ** rng.uniform(-1, 3)
        return rng.standard_normal((n, k)) * scale, rng.standard_normal((k, m)) * scale
    if kind == 1:
        gap = 10 ** rng.uniform(0, 3)
        a, b = rng.standard_normal((n, k)) * 2, rng.standard_normal((k, m)) * 2
        a[:, 0] += gap
        b[min(1, k - 1), :] += gap
        return a - gap, b
    if kind == 2:
        offset, scale = 10 ** rng.uniform(0, 4), 10 ** rng.uniform(-1, 2)
        return rng.standard_normal((n, k)) * scale + offset, rng.standard_normal((k, m)) * scale - offset
    if kind == 3:
        scale = 10 ** rng.uniform(0, 2.5)
        a, b = rng.standard_normal((n, k)) * scale, rng.standard_normal((k, m)) * scale
        return a - a.max(axis=1, keepdims=True) * rng.uniform(0, 1), b
    if kind == 4:
        return rng.uniform(-800, 0, (n, k)), rng.uniform(-800, 0, (k, m))
    if kind == 5:
        gap = 10 ** rng.uniform(0, 3)
        return (rng.standard_normal((n, k)) * 3 + rng.choice([-1, 1], (n, k)) * gap,
                rng.standard_normal((k, m)) * 3 + rng.choice([-1, 1], (k, m)) * gap)
    out = 10 ** rng.uniform(-0.5, 3) * rng.choice([-1, 1])
    gap = rng.uniform(1.5, 2.0) * max(abs(out), 1.0)
    scale = rng.uniform(0.01, 1.0)
    a, b = rng.standard_normal((n, k)) * scale, rng.standard_normal((k, m)) * scale
    a[:, 0] += gap
    b[min(1, k - 1), :] += gap
    return a - gap, b + out + gap - math.log(k)


# float64 within 2.5 ulp of max(|out|, 1), as documented (a measured bound: the worst cases
# above come within 0.15 ulp of it); float32: NumPy computes it in float64 (rounded once), the
# array-API code in float32 (3 ulp documented).
BOUNDS = {("numpy", "float64"): 2.5, ("torch", "float64"): 2.5, ("numpy", "float32"): 0.5 + 1e-6,
          ("torch", "float32"): 3.0}


@pytest.mark.parametrize("library, dtype", sorted(BOUNDS))
def test_accuracy_on_adversarial_random_products(library, dtype):
    backend = make_backend(library)
    bound = BOUNDS[library, dtype]
    rng = np.random.default_rng(31)
    cases = [_random_product(rng) for _ in range(2000)]
    cases += [(np.array([a]), np.array([b]).T) for a, b in WORST_FLOAT64 + WORST_FLOAT32]
    failures = []
    for a, b in cases:
        a, b = a.astype(dtype), b.astype(dtype)
        got = backend.to_numpy(logmatmulexp(backend.make(a), backend.make(b)))
        err = max_ulp(got, mp_logmatmulexp(a.astype(np.float64), b.astype(np.float64)), dtype)
        if err > bound:
            failures.append(f"{err:.2f} ulp: a={a.tolist()}, b={b.tolist()}")
    assert not failures, f"beyond {bound} ulp:\n" + "\n".join(failures)


@pytest.mark.parametrize("a_dtype,b_dtype", [("int64", "int64"), ("bool", "float32"), ("float32", "float64"),
                                             ("int32", "float32")])
def test_dtypes(xp, a_dtype, b_dtype):
    xp.subset((a_dtype, b_dtype) == ("int64", "int64"), jax_keep=False)
    a = np.arange(-3, 3).reshape(2, 3) % 2 if a_dtype == "bool" else np.arange(-3, 3).reshape(2, 3)
    b = np.arange(12).reshape(3, 4) % 5
    A, B = xp.make(a.astype(a_dtype)), xp.make(b.astype(b_dtype))
    out = logmatmulexp(A, B)
    ns = xp.namespace(A)
    if b_dtype == "int64":
        dtype = xp.default_float(A)
    elif xp.name == "array_api_strict":  # it does not mix kinds: the integer or bool counts as float64
        dtype = xp.dtype_name(ns.result_type(ns.float64, B.dtype))
    else:  # as the namespace promotes
        dtype = xp.dtype_name(ns.result_type(A.dtype, B.dtype))
    xp.check(out, A, dtype, (2, 4))
    assert_values(xp.to_numpy(out), slow_logmatmulexp(a.astype(a_dtype), b.astype(b_dtype)), dtype)


def test_half_precision_keeps_its_dtype(xp):
    xp.subset(True, jax_keep=False)
    a, b = data((3, 5), seed=12).astype(np.float16), data((5, 2), seed=13).astype(np.float16)
    A, B = xp.make(a, "float16"), xp.make(b, "float16")
    out = logmatmulexp(A, B)
    xp.check(out, A, "float16", (3, 2))
    assert_values(xp.to_numpy(out), slow_logmatmulexp(a, b), "float16")


def test_lists_and_two_vectors():
    got = logmatmulexp([[0, 1]], [[1.0], [2.0]])
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert got[0, 0] == pytest.approx(math.log(math.e + math.e ** 3), rel=1e-15)
    scalar = logmatmulexp(np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    assert isinstance(scalar, np.float32) and scalar == np.float32(math.log(3))


# ---- the tiles ------------------------------------------------------------------------------------

@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of a few elements, so that every loop (batch, rows, columns, k) runs several times."""
    monkeypatch.setattr(_matmul, "_TILE", 12)
    monkeypatch.setattr(_matmul, "_ROWS", 3)
    monkeypatch.setattr(_matmul, "_COLS", 2)
    monkeypatch.setattr(_matmul, "_K_TILE", 4)


def test_small_tiles(xp, small_tiles):
    xp.subset(xp.name == "dask")
    a, b = data((2, 1, 7, 9), seed=14), data((3, 9, 5), seed=15)
    a[0, 0, 1] = -inf
    b[1, :, 2] = -inf
    a[1, 0, 4, 2], b[2, 6, 3] = nan, inf
    a[1, 0, 5, 0] += 400.0                      # entries to recompute, in several tiles
    b[0, 3, :] += 400.0
    A, B = xp.make(a), xp.make(b)
    out = logmatmulexp(A, B)
    xp.check(out, A, "float64", (2, 3, 7, 5))
    assert_values(xp.to_numpy(out), slow_logmatmulexp(a, b), "float64")


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_only_entries_the_product_misses_are_recomputed(monkeypatch, library):
    backend = make_backend(library)
    counts = []
    recompute, gathered = _matmul._recompute, _matmul._gathered

    def spy_numpy(r, bad, a, b):
        counts.append(int(bad.sum()))
        recompute(r, bad, a, b)

    def spy_array_api(a, b, bad, ex):
        counts.append(int(ex.xp.sum(ex.xp.astype(bad, ex.xp.int64))))
        return gathered(a, b, bad, ex)

    monkeypatch.setattr(_matmul, "_recompute", spy_numpy)
    monkeypatch.setattr(_matmul, "_gathered", spy_array_api)

    def check(a, b):
        got = backend.to_numpy(logmatmulexp(backend.make(a), backend.make(b)))
        assert_values(got, slow_logmatmulexp(a, b), "float64")

    a, b = data((5, 6), seed=28), data((6, 7), seed=29)
    a[0], a[1, 2], a[3, [0, 4]] = -inf, nan, -inf         # -inf and nan come out of the product
    b[:, 0], b[1, 1], b[[0, 2], 4] = -inf, nan, -inf
    check(a, b)
    assert counts == []
    a[2, 3] = inf                                          # +inf or nan: only the exact sum tells
    check(a, b)
    assert counts == [5]                                   # row 2 against the 5 columns of finite max
    counts.clear()
    check(*adversarial(seed=30, n=6, k=9, m=5, gap=300.0))
    assert counts == [30]
    counts.clear()
    # result 400 + log 2, shifted product 2 exp(-650): its log is within 2 |result|, but the
    # product is below smallest_normal / eps**2 (2**-918), where the threshold takes over
    check(np.array([[1050.0, 400.0]]), np.array([[-650.0], [0.0]]))
    assert counts == [1]


def test_many_small_matrices_share_a_tile():
    assert _matmul._tiles(_matmul._shapes((300, 2, 3), (300, 3, 4))).batch > 1
    a, b = data((300, 2, 3), seed=16), data((1, 3, 4), seed=17)
    a[7, 1] = -inf
    b[0, 0, 0] += 900.0
    assert_values(logmatmulexp(a, b), slow_logmatmulexp(a, b), "float64")


def test_memory_is_the_result_plus_tiles():
    a, b = data((3000, 200), seed=18), data((200, 3000), seed=19)
    result = 3000 * 3000 * 8                    # exp(a) @ exp(b) alone would be another one
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = logmatmulexp(a, b)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert out.shape == (3000, 3000)
    assert peak < result + 48 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {result / 2**20:.1f} MiB result"
    rows = np.random.default_rng(0).integers(0, 3000, 5)
    assert_values(out[rows, :7], slow_logmatmulexp(a[rows], b[:, :7]), "float64")


def test_inputs_are_not_written():
    a, b = special_values()
    a0, b0 = a.copy(), b.copy()
    logmatmulexp(a, b)
    logmatmulexp(np.asfortranarray(a), b[:, ::-1])
    assert np.array_equal(a, a0, equal_nan=True) and np.array_equal(b, b0, equal_nan=True)


# ---- dask -------------------------------------------------------------------------------------------

def test_dask_merges_chunks_of_k():
    da = pytest.importorskip("dask.array")
    a, b = data((2, 6, 10), seed=20), data((10, 5), seed=21)
    a[0, 1] = -inf
    a[1, 2, 0] += 500.0
    b[7, :] += 500.0
    A = da.from_array(a, chunks=(1, 4, 3))
    B = da.from_array(b, chunks=(4, 2))
    out = logmatmulexp(A, B)
    assert isinstance(out, da.Array) and out.dtype == np.float64 and out.shape == (2, 6, 5)
    assert_values(out.compute(scheduler="synchronous"), slow_logmatmulexp(a, b), "float64")
    mixed = logmatmulexp(A.astype(np.float32), b.astype(np.float32))   # a NumPy b joins the graph
    assert isinstance(mixed, da.Array) and mixed.dtype == np.float32
    assert_values(mixed.compute(scheduler="synchronous"), slow_logmatmulexp(a.astype(np.float32), b.astype(np.float32)),
                  "float32")


# ---- gradients ------------------------------------------------------------------------------------

def _gradient_inputs():
    a, b = adversarial(seed=22, n=4, k=6, m=5, gap=300.0)    # some entries recomputed exactly
    a[2] = -inf                                               # zero gradient, not nan
    b[:, 3] = -inf
    a[0, 4] = -inf
    g = data((4, 5), seed=23, scale=1.0)
    return a, b, g


def test_torch_gradients_are_the_softmax():
    torch = pytest.importorskip("torch")
    a, b, g = _gradient_inputs()
    ga, gb = logmatmulexp_grads(a, b, g)
    A = torch.tensor(a, requires_grad=True)
    B = torch.tensor(b, requires_grad=True)
    out = logmatmulexp(A, B)
    assert out.requires_grad and out.dtype == torch.float64
    assert_values(out.detach().numpy(), slow_logmatmulexp(a, b), "float64")
    (out * torch.tensor(g)).sum().backward()
    assert_values(A.grad.numpy(), ga, "float64", "d/da")
    assert_values(B.grad.numpy(), gb, "float64", "d/db")
    A32, B32 = (torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in (a, b))
    (logmatmulexp(A32, B32) * torch.tensor(g, dtype=torch.float32)).sum().backward()
    assert A32.grad.dtype == torch.float32
    assert_values(A32.grad.numpy(), ga, "float32", "d/da float32")


def test_torch_gradcheck():
    torch = pytest.importorskip("torch")
    a = torch.tensor(data((3, 4), seed=24, scale=1.0), requires_grad=True)
    b = torch.tensor(data((2, 4, 2), seed=25, scale=1.0), requires_grad=True)
    assert torch.autograd.gradcheck(logmatmulexp, (a, b), eps=1e-6, atol=1e-7, rtol=1e-5)
    v = torch.tensor(data((4,), seed=26, scale=1.0), requires_grad=True)
    assert torch.autograd.gradcheck(logmatmulexp, (a, v), eps=1e-6, atol=1e-7, rtol=1e-5)


def _jax():
    """jax (64-bit types on, as the backend fixture sets them) and jax.numpy."""
    jnp = make_backend("jax").lib
    import jax

    return jax, jnp


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_jax_gradients_are_the_softmax(jit):
    jax, jnp = _jax()
    a, b, g = _gradient_inputs()
    ga, gb = logmatmulexp_grads(a, b, g)

    def loss(x, y):
        out = logmatmulexp(x, y)
        return jnp.sum(out * jnp.asarray(g)), out

    grad = jax.grad(loss, argnums=(0, 1), has_aux=True)
    (da_, db_), out = (jax.jit(grad) if jit else grad)(jnp.asarray(a), jnp.asarray(b))
    assert max_ulp(np.asarray(out)[np.isfinite(out)], mp_logmatmulexp(a, b)[np.isfinite(slow_logmatmulexp(a, b))],
                   np.float64) <= 4.0
    assert np.array_equal(np.isfinite(out), np.isfinite(slow_logmatmulexp(a, b)))
    assert_values(np.asarray(da_), ga, "float64", "d/da")
    assert_values(np.asarray(db_), gb, "float64", "d/db")


def test_jax_jit_values():
    jax, jnp = _jax()
    a, b = special_values()
    c, d = adversarial(seed=27, gap=300.0)
    f = jax.jit(logmatmulexp)
    assert_values(np.asarray(f(jnp.asarray(a), jnp.asarray(b))), slow_logmatmulexp(a, b), "float64")
    assert_values(np.asarray(f(jnp.asarray(c), jnp.asarray(d))), slow_logmatmulexp(c, d), "float64")
    assert max_ulp(np.asarray(f(jnp.asarray(c), jnp.asarray(d))), mp_logmatmulexp(c, d), np.float64) <= 4.0


# ---- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sa,sb,match", [
    ((3, 4), (5, 2), r"a with shape \(3, 4\) and b with shape \(5, 2\) do not align: "
                     r"a's last axis has 4 elements, b's second-to-last 5"),
    ((4,), (3,), r"a with shape \(4,\) and b with shape \(3,\) do not align: a's last axis has 4 "
                 r"elements, b's only axis 3"),
    ((2, 3, 4), (3, 4, 5), r"a with shape \(2, 3, 4\) and b with shape \(3, 4, 5\) do not broadcast: "
                           r"batch dimensions \(2,\) and \(3,\)"),
    ((), (3,), r"logmatmulexp: a must have at least one dimension; got a 0-d array"),
    ((3,), (), r"logmatmulexp: b must have at least one dimension; got a 0-d array"),
])
def test_bad_shapes(xp, sa, sb, match):
    xp.subset(sa == (3, 4))
    A, B = xp.make(np.zeros(sa)), xp.make(np.zeros(sb))
    with pytest.raises(ValueError, match=match):
        logmatmulexp(A, B)


def test_complex_input(xp):
    xp.subset(True, jax_keep=False)
    A = xp.make(np.zeros((2, 3)), "complex128")
    B = xp.make(np.zeros((3, 2)))
    message = "logmatmulexp: complex input is not supported; {} has dtype .*complex128"
    with pytest.raises(TypeError, match=message.format("a")):
        logmatmulexp(A, B)
    with pytest.raises(TypeError, match=message.format("b")):
        logmatmulexp(xp.make(np.zeros((2, 3))), xp.make(np.zeros((3, 2)), "complex128"))


def test_non_numeric_input():
    with pytest.raises(TypeError, match="logmatmulexp expects a of a real numeric dtype"):
        logmatmulexp(np.array([["x", "y"]]), np.zeros((2, 1)))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="arrays of one library expected"):
        logmatmulexp(np.zeros((2, 2)), torch.zeros((2, 2)))
