"""gumbel_topk and categorical(replace=False) against exact probabilities by enumeration, known noise and errors."""

# The chi-square tests use fixed seeds; their power is shown on wrong samplers. Shapes, special
# values, torch.compile and jax.jit are covered too.

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from lsearray import categorical, gumbel_topk
from reference import numpy_gumbel_noise

inf, nan = np.inf, np.nan

# torch's compiler warns of its own choices while it traces (array-api-compat's cached namespace
# lookups, traced through), as in test_transforms.py
pytestmark = [
    pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning"),
]

# Significance of the goodness-of-fit tests. The seeds are fixed, so every test is deterministic: a
# correct sampler passes each at this level with probability 1 - ALPHA, and the wrong samplers of
# test_enumeration_tests_reject_wrong_samplers fail them.
ALPHA = 1e-4
DRAWS = 200_000        # NumPy: each sample a row of a (DRAWS, n) batch, drawn in one call
BACKEND_DRAWS = 20_000  # the other libraries
# (probabilities, k): zeros are -inf logits
CASES = {
    "n4-k2": (np.array([0.1, 0.2, 0.3, 0.4]), 2),
    "n5-k3": (np.array([0.05, 0.1, 0.15, 0.3, 0.4]), 3),
    "n5-k2-zero": (np.array([0.5, 0.0, 0.2, 0.2, 0.1]), 2),
    "n4-k4": (np.array([0.7, 0.1, 0.1, 0.1]), 4),
}


def _logits(probs):
    with np.errstate(divide="ignore"):
        return np.log(probs) - 1.5  # unnormalized: the shift must not matter


def ordered_probabilities(probs, k):
    """{ordered k-sequence of distinct indices: its probability}, by enumeration of the
    successive draws: P(i_1..i_k) = prod_j p[i_j] / (1 - sum_{l<j} p[i_l])."""
    out = {}
    for seq in itertools.permutations(range(len(probs)), k):
        prob, left = 1.0, 1.0
        for i in seq:
            prob *= probs[i] / left if left > 0 else 0.0
            left -= probs[i]
        out[seq] = prob
    return out


def unordered_probabilities(probs, k):
    """{sorted k-set: its probability}, the sum over its orders."""
    out = {}
    for seq, prob in ordered_probabilities(probs, k).items():
        key = tuple(sorted(seq))
        out[key] = out.get(key, 0.0) + prob
    return out


def fit(draws, expected):
    """(chi-square p-value, total-variation distance) of the rows of integer `draws` (one
    sample per row, as tuples) against `expected` ({tuple: probability}); a row outside the
    support of positive probability gives p-value 0."""
    keys, counts = np.unique(np.asarray(draws), axis=0, return_counts=True)
    observed = {tuple(int(i) for i in key): int(c) for key, c in zip(keys, counts)}
    support = {key for key, p in expected.items() if p > 0}
    total = sum(observed.values())
    tv = 0.5 * sum(abs(observed.get(key, 0) / total - expected.get(key, 0.0))
                   for key in support | set(observed))
    if not set(observed) <= support:
        return 0.0, tv
    if len(support) == 1:  # one possible outcome (the set of k = n): nothing to test beyond support
        return 1.0, tv
    exp = np.array([total * expected[key] for key in sorted(support)])
    obs = np.array([observed.get(key, 0) for key in sorted(support)])
    stat = np.sum((obs - exp) ** 2 / exp)
    return scipy.stats.chi2.sf(stat, len(support) - 1), tv


def assert_fits(draws, probs, k, what):
    draws = np.asarray(draws)
    assert draws.shape[-1] == k
    p_ordered, tv_ordered = fit(draws, ordered_probabilities(probs, k))
    p_set, tv_set = fit(np.sort(draws, axis=-1), unordered_probabilities(probs, k))
    assert p_ordered > ALPHA, f"{what}: ordered samples fail the chi-square test, p = {p_ordered:.3g}"
    assert p_set > ALPHA, f"{what}: unordered samples fail the chi-square test, p = {p_set:.3g}"
    # a bound that holds comfortably at these sample sizes (sqrt(cells / draws) order)
    cells = math.perm(len(probs), k)
    assert tv_ordered < 2 * math.sqrt(cells / len(draws)), f"{what}: total variation {tv_ordered:.3g}"
    return p_ordered, p_set, tv_ordered, tv_set


# --------------------------------------------------------------------------------------------
# The references and the tests' power
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_enumerated_probabilities_sum_to_one_and_chain(case):
    probs, k = CASES[case]
    ordered = ordered_probabilities(probs, k)
    assert math.isclose(sum(ordered.values()), 1.0, rel_tol=1e-12)
    assert math.isclose(sum(unordered_probabilities(probs, k).values()), 1.0, rel_tol=1e-12)
    # the first index alone is a categorical draw
    for i, p in enumerate(probs):
        first = sum(prob for seq, prob in ordered.items() if seq[0] == i)
        assert math.isclose(first, p, rel_tol=1e-12, abs_tol=1e-15)


def test_enumeration_by_hand():
    # p = (1/2, 1/4, 1/4): P(0, 1) = 1/2 * (1/4) / (1/2) = 1/4, P(1, 0) = 1/4 * (1/2) / (3/4) = 1/6
    ordered = ordered_probabilities(np.array([0.5, 0.25, 0.25]), 2)
    assert math.isclose(ordered[(0, 1)], 1 / 4) and math.isclose(ordered[(1, 0)], 1 / 6)
    assert math.isclose(unordered_probabilities(np.array([0.5, 0.25, 0.25]), 2)[(0, 1)], 1 / 4 + 1 / 6)


@pytest.mark.parametrize("wrong", ["sorted indices", "noise scale", "gaussian noise", "inclusion order"])
def test_enumeration_tests_reject_wrong_samplers(wrong):
    probs, k = CASES["n5-k3"]
    logits = _logits(probs)
    shape = (DRAWS, probs.size)
    g = numpy_gumbel_noise(5, shape)
    z = {
        "sorted indices": logits + g,
        "noise scale": logits + 1.2 * g,
        "gaussian noise": logits + np.random.default_rng(5).normal(size=shape),
        "inclusion order": logits + g,
    }[wrong]
    draws = np.argsort(-z, axis=-1, kind="stable")[:, :k]
    if wrong == "sorted indices":
        draws = np.sort(draws, axis=-1)
    if wrong == "inclusion order":  # the right sets, in the order of their probabilities
        draws = np.take_along_axis(draws, np.argsort(-probs[draws], axis=-1, kind="stable"), axis=-1)
    p_ordered, _ = fit(draws, ordered_probabilities(probs, k))
    assert p_ordered < ALPHA
    if wrong in ("noise scale", "gaussian noise"):
        assert fit(np.sort(draws, axis=-1), unordered_probabilities(probs, k))[0] < ALPHA
    # the same noise, used right, passes
    right = np.argsort(-(logits + g), axis=-1, kind="stable")[:, :k]
    assert_fits(right, probs, k, "the Gumbel-top-k reference")


# --------------------------------------------------------------------------------------------
# Distribution
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_numpy_distribution_by_enumeration(case):
    probs, k = CASES[case]
    logits = np.broadcast_to(_logits(probs), (DRAWS, probs.size))
    draws = gumbel_topk(logits, k, rng=2024)
    assert draws.shape == (DRAWS, k) and draws.dtype == np.int64
    assert_fits(draws, probs, k, case)


def test_numpy_distribution_along_axis_0():
    probs, k = CASES["n5-k3"]
    logits = np.broadcast_to(_logits(probs)[:, None], (probs.size, DRAWS))
    draws = gumbel_topk(logits, k, axis=0, rng=11)
    assert draws.shape == (k, DRAWS)
    assert_fits(draws.T, probs, k, "axis=0")


@pytest.mark.parametrize("case", ["n5-k3", "n5-k2-zero"])
def test_distribution_on_every_backend(xp, case):
    xp.subset(case == "n5-k3")
    probs, k = CASES[case]
    logits = xp.make(np.tile(_logits(probs), (BACKEND_DRAWS, 1)))
    draws = gumbel_topk(logits, k, rng=17)
    xp.check(draws, logits, "int64", (BACKEND_DRAWS, k))
    assert_fits(xp.to_numpy(draws), probs, k, xp.name)


def test_categorical_without_replacement_distribution():
    # logits of one row broadcast to DRAWS samples: each column its own sample of 3 distinct draws
    probs, k = CASES["n5-k3"]
    draws = categorical(_logits(probs)[None, :], shape=(k, DRAWS), replace=False, rng=8)
    assert draws.shape == (k, DRAWS)
    assert_fits(draws.T, probs, k, "categorical(replace=False)")


# --------------------------------------------------------------------------------------------
# Exact draws of known noise, and the relations to categorical
# --------------------------------------------------------------------------------------------

def test_numpy_draws_are_the_top_k_of_logits_plus_the_noise():
    logits = np.random.default_rng(0).normal(size=(6, 7)) * 3
    logits[1, 2] = -inf
    index, values = gumbel_topk(logits, 4, rng=123, return_values=True)
    z = logits + numpy_gumbel_noise(123, logits.shape)
    expected = np.argsort(-z, axis=-1)[:, :4]
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_allclose(values, np.take_along_axis(z, expected, axis=-1), rtol=1e-13, atol=1e-13)
    assert np.all(np.diff(values, axis=-1) < 0)


def test_top_1_is_categorical(xp):
    logits = xp.make(np.random.default_rng(1).normal(size=(30, 6)))
    first = xp.to_numpy(gumbel_topk(logits, 1, rng=9))
    np.testing.assert_array_equal(first[:, 0], xp.to_numpy(categorical(logits, rng=9)))


def test_categorical_without_replacement_is_gumbel_topk_moved_first(xp):
    xp.subset(True)
    logits = xp.make(np.random.default_rng(2).normal(size=(3, 4, 6)))
    got = xp.to_numpy(categorical(logits, shape=(2, 2, 3, 4), replace=False, rng=5))
    top = xp.to_numpy(gumbel_topk(logits, 4, rng=5))  # the same noise: the logits' shape
    np.testing.assert_array_equal(got, np.moveaxis(top, -1, 0).reshape(2, 2, 3, 4))
    assert all(len(set(got[:, :, i, j].ravel())) == 4 for i in range(3) for j in range(4))


def test_categorical_without_replacement_along_axis_0():
    logits = np.random.default_rng(3).normal(size=(6, 4))
    got = categorical(logits, axis=0, shape=(3, 4), replace=False, rng=1)
    np.testing.assert_array_equal(got, gumbel_topk(logits, 3, axis=0, rng=1))


def test_categorical_without_replacement_one_draw_is_with_replacement():
    logits = np.random.default_rng(4).normal(size=(5, 6))
    np.testing.assert_array_equal(categorical(logits, replace=False, rng=3), categorical(logits, rng=3))
    assert isinstance(categorical(logits[0], replace=False, rng=3), np.int64)


def test_categorical_without_replacement_is_jax_random_categorical():
    jax = pytest.importorskip("jax")
    from backends import make_backend

    jnp = make_backend("jax").lib
    logits = jnp.asarray(np.random.default_rng(6).normal(size=(4, 7)))
    key = jax.random.key(42)
    expected = np.asarray(jax.random.categorical(key, logits, shape=(5, 4), replace=False))
    np.testing.assert_array_equal(np.asarray(categorical(logits, shape=(5, 4), replace=False, rng=key)),
                                  expected)
    jitted = jax.jit(lambda x, k: categorical(x, shape=(5, 4), replace=False, rng=k))
    np.testing.assert_array_equal(np.asarray(jitted(logits, key)), expected)


# --------------------------------------------------------------------------------------------
# Shapes, dtypes, special values
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_shape_dtype_distinct_and_values(xp, dtype):
    xp.subset(dtype == "float32")
    x = np.random.default_rng(7).normal(size=(3, 5, 2)) * 2
    logits = xp.make(x.round() if dtype == "int64" else x, dtype)
    index, values = gumbel_topk(logits, 3, axis=1, rng=1, return_values=True)
    xp.check(index, logits, "int64", (3, 3, 2))
    vdtype = dtype if dtype != "int64" else xp.default_float(logits)
    xp.check(values, logits, vdtype, (3, 3, 2))
    i, v = xp.to_numpy(index), xp.to_numpy(values)
    assert np.all(np.sort(i, axis=1)[:, 1:] != np.sort(i, axis=1)[:, :-1]), "repeated index"
    assert np.all(np.diff(v, axis=1) <= 0), "values not decreasing"
    # the values are logits + G at the drawn indices: their gaps to the logits are Gumbel draws,
    # never below -log(-log(tiny)) of the dtype
    g = v - np.take_along_axis(x.round() if dtype == "int64" else x.astype(dtype), i, axis=1)
    assert np.all(np.isfinite(g)) and np.all(np.abs(g) < 50)


def test_k_equal_to_n_is_a_permutation(xp):
    xp.subset(True)
    logits = xp.make(np.random.default_rng(8).normal(size=(50, 5)))
    perm = xp.to_numpy(gumbel_topk(logits, 5, rng=2))
    np.testing.assert_array_equal(np.sort(perm, axis=-1), np.broadcast_to(np.arange(5), (50, 5)))


def test_k_zero_is_empty(xp):
    logits = xp.make(np.zeros((2, 4)))
    index = gumbel_topk(logits, 0, rng=0)
    xp.check(index, logits, "int64", (2, 0))
    index, values = gumbel_topk(logits, 0, axis=0, rng=0, return_values=True)
    xp.check(index, logits, "int64", (0, 4))
    xp.check(values, logits, "float64", (0, 4))
    xp.check(gumbel_topk(xp.make(np.zeros((0, 4))), 2, rng=0), logits, "int64", (0, 2))


def test_minus_inf_is_never_chosen(xp):
    with np.errstate(divide="ignore"):  # log 0: the -inf logits
        x = np.log(np.array([[0.2, 0.0, 0.3, 0.0, 0.5], [0.0, 0.0, 1.0, 1e-300, 0.0]]))
    logits = xp.make(np.tile(x, (100, 1)))
    draws = xp.to_numpy(gumbel_topk(logits, 2, rng=3)).reshape(100, 2, 2)
    assert np.all(np.isin(draws[:, 0], [0, 2, 4])) and np.all(np.sort(draws[:, 1], axis=-1) == [2, 3])


def test_plus_inf_categories_come_first_in_random_order():
    x = np.tile([0.0, inf, 5.0, inf], (4000, 1))
    index, values = gumbel_topk(x, 2, rng=4, return_values=True)
    assert np.all(np.sort(index, axis=-1) == [1, 3]) and np.all(values == inf)
    assert abs(np.mean(index[:, 0] == 1) - 0.5) < 0.05  # uniform: 4000 draws, 6 standard deviations
    with pytest.raises(ValueError, match=r"have 2 categories of positive probability .* fewer than the 3"):
        gumbel_topk(x, 3, rng=4)


def test_fewer_positive_categories_than_k_raises(xp):
    xp.subset(True, jax_keep=True)
    x = np.array([[0.0, 1.0, 2.0], [0.0, -inf, -inf]])
    if xp.lazy:  # no values to read: the finite category first, then an arbitrary other
        draws = xp.to_numpy(gumbel_topk(xp.make(x), 2, rng=0))
        assert draws[1, 0] == 0 and draws[1, 1] in (1, 2)
        return
    with pytest.raises(ValueError, match=r"gumbel_topk: logits row \(1,\) along axis -1 have 1 category of "
                                         r"positive probability .* fewer than the 2 draws"):
        gumbel_topk(xp.make(x), 2, rng=0)
    with pytest.raises(ValueError, match=r"categorical: logits row \(1,\) .* fewer than the 2 draws"):
        categorical(xp.make(x), shape=(2, 2), replace=False, rng=0)
    with pytest.raises(ValueError, match="are all -inf"):
        gumbel_topk(xp.make(np.full((2, 3), -inf)), 1, rng=0)
    with pytest.raises(ValueError, match="contain nan"):
        gumbel_topk(xp.make(np.array([0.0, nan, 1.0])), 1, rng=0)


def test_traced_fewer_positive_categories_than_k_draws_the_positive_first():
    jax = pytest.importorskip("jax")
    from backends import make_backend

    jnp = make_backend("jax").lib
    x = jnp.asarray([[0.0, -inf, 1.0, -inf]])
    draws = np.asarray(jax.jit(lambda x: gumbel_topk(x, 3, rng=0))(x))
    assert set(draws[0, :2]) == {0, 2} and len(set(draws[0])) == 3


# --------------------------------------------------------------------------------------------
# Seeds and errors
# --------------------------------------------------------------------------------------------

def test_seeds_reproduce_and_differ(xp):
    xp.subset(True, jax_keep=False)
    logits = xp.make(np.zeros((300, 5)))
    draw = lambda rng: xp.to_numpy(gumbel_topk(logits, 3, rng=rng))  # noqa: E731
    np.testing.assert_array_equal(draw(12), draw(12))
    assert np.mean(draw(12) != draw(13)) > 0.3
    if xp.name in ("numpy", "array_api_strict", "dask"):
        generator = np.random.default_rng(12)
        assert np.mean(draw(generator) != draw(generator)) > 0.3  # the generator advances
    if xp.name == "torch":
        torch = xp.lib
        np.testing.assert_array_equal(draw(torch.Generator().manual_seed(3)),
                                      draw(torch.Generator().manual_seed(3)))
    assert np.mean(draw(None) != draw(None)) > 0.3  # fresh entropy


def test_bad_arguments():
    logits = np.zeros((2, 4))
    for k in (5, -1):
        with pytest.raises(ValueError, match=rf"gumbel_topk: k must satisfy 0 <= k <= 4 .*; got k = {k}"):
            gumbel_topk(logits, k)
    for k, name in ((2.0, "float"), (True, "bool"), (None, "NoneType"), (np.array([1, 2]), "ndarray")):
        with pytest.raises(TypeError, match=f"gumbel_topk: k must be an integer; got {name}"):
            gumbel_topk(logits, k)
    assert gumbel_topk(logits, np.int32(2), rng=0).shape == (2, 2)
    with pytest.raises(ValueError, match="gumbel_topk: logits of shape .* have no categories along axis -1"):
        gumbel_topk(np.zeros((3, 0)), 1)
    with pytest.raises(ValueError, match="gumbel_topk: logits must have at least one axis"):
        gumbel_topk(np.float64(1.0), 1)
    with pytest.raises(np.exceptions.AxisError):
        gumbel_topk(logits, 1, axis=2)
    with pytest.raises(TypeError, match="gumbel_topk: axis must be an integer; got tuple"):
        gumbel_topk(logits, 1, axis=(0, 1))
    with pytest.raises(TypeError, match="gumbel_topk: return_values must be a bool"):
        gumbel_topk(logits, 1, return_values=1)
    with pytest.raises(TypeError, match="rng for numpy logits must be a numpy.random.Generator"):
        gumbel_topk(logits, 1, rng=object())
    with pytest.raises(TypeError, match="complex"):
        gumbel_topk(np.zeros(3, dtype=complex), 1)


def test_categorical_without_replacement_bad_arguments():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"categorical: 6 draws without replacement \(the leading axes "
                                         r"\(2, 3\) of shape \(2, 3, 3\)\) exceed the 4 categories"):
        categorical(logits, shape=(2, 3, 3), replace=False)
    with pytest.raises(TypeError, match="categorical: replace must be a bool"):
        categorical(logits, replace="no")
    assert categorical(logits, shape=(0, 3), replace=False).shape == (0, 3)


def test_wrong_kind_of_rng(xp):
    xp.subset(True, jax_keep=False)
    expected = {"torch": "torch.Generator", "jax": "PRNG key", "dask": "numpy or dask Generator"}.get(
        xp.name, "numpy.random.Generator")
    with pytest.raises(TypeError, match=rf"gumbel_topk: rng for .* must be a {expected}"):
        gumbel_topk(xp.make(np.zeros(3)), 2, rng=object())


# --------------------------------------------------------------------------------------------
# dask, torch.compile, jax.jit
# --------------------------------------------------------------------------------------------

def test_dask_is_lazy_with_k_above_the_chunks():
    pytest.importorskip("dask")
    import dask.array as da

    probs, k = CASES["n5-k3"]
    logits = da.from_array(np.tile(_logits(probs), (BACKEND_DRAWS, 1)), chunks=(5000, 2))
    index, values = gumbel_topk(logits, k, rng=np.random.default_rng(9), return_values=True)
    assert isinstance(index, da.Array) and index.chunks == ((5000,) * 4, (3,))
    got, v = da.compute(index, values)
    assert np.all(np.diff(v, axis=-1) < 0)
    assert_fits(got, probs, k, "dask")


def test_torch_compile():
    torch = pytest.importorskip("torch")
    probs, k = CASES["n5-k3"]
    logits = torch.asarray(np.tile(_logits(probs), (BACKEND_DRAWS, 1)))
    torch._dynamo.reset()
    # from torch's default generator, in one graph
    draws = torch.compile(lambda x: gumbel_topk(x, k), fullgraph=True)(logits)
    assert draws.dtype == torch.int64 and draws.shape == (BACKEND_DRAWS, k)
    assert_fits(draws.numpy(), probs, k, "torch.compile")
    # a seed (a generator, which dynamo cannot put in a graph) breaks the graph; the same draws
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: gumbel_topk(x, k, rng=4, return_values=True))
    index, values = compiled(logits)
    eager = gumbel_topk(logits, k, rng=4, return_values=True)
    torch.testing.assert_close(index, eager[0])
    torch.testing.assert_close(values, eager[1])


def test_jax_jit():
    jax = pytest.importorskip("jax")
    from backends import make_backend

    jnp = make_backend("jax").lib
    probs, k = CASES["n5-k3"]
    logits = jnp.asarray(np.tile(_logits(probs), (BACKEND_DRAWS, 1)))
    key = jax.random.key(1)
    jitted = jax.jit(lambda x, key: gumbel_topk(x, k, rng=key, return_values=True))
    index, values = jitted(logits, key)
    assert index.dtype == jnp.int64 and index.shape == (BACKEND_DRAWS, k)
    eager = gumbel_topk(logits, k, rng=key, return_values=True)
    np.testing.assert_array_equal(np.asarray(index), np.asarray(eager[0]))
    np.testing.assert_allclose(np.asarray(values), np.asarray(eager[1]), rtol=1e-13)
    # the values are jax's own Gumbel noise added to the logits
    z = logits + jax.random.gumbel(key, logits.shape, jnp.float64)
    np.testing.assert_allclose(np.asarray(values), np.asarray(jax.lax.top_k(z, k)[0]), rtol=1e-12)
    assert_fits(np.asarray(index), probs, k, "jax.jit")
