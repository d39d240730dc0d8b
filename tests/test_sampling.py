"""categorical and gumbel_softmax: the draws' distribution against closed forms (chi-square and
Kolmogorov-Smirnov tests with fixed seeds, whose power is shown on wrong samplers), shapes, seeds,
special values, errors, and the straight-through gradient on torch and jax."""

import math
import re

import numpy as np
import pytest
import scipy.stats

from lsearray import categorical, gumbel_softmax
from reference import concrete_cdf, gumbel_softmax_grad, numpy_gumbel_noise, slow_softmax

inf, nan = np.inf, np.nan

# Significance of the goodness-of-fit tests. The seeds are fixed, so every test is deterministic; a
# correct sampler passes each test at this level with probability 1 - ALPHA, and the wrong samplers
# below fail it (test_goodness_of_fit_tests_reject_wrong_samplers).
ALPHA = 1e-3
# Rows of probabilities, one distribution per row; zeros are -inf logits.
PROBS = np.array([
    [0.05, 0.1, 0.15, 0.3, 0.4],
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.9, 0.0, 0.05, 0.0, 0.05],
    [1e-3, 0.5, 0.0, 0.499, 0.0],
])
DRAWS = 20_000


def _logits(probs=PROBS):
    with np.errstate(divide="ignore"):
        return np.log(probs) + 3.0  # unnormalized: the shift must not matter


def _chi2_pvalue(draws, probs):
    """Pearson's chi-square test of integer draws against category probabilities `probs`;
    a draw of a category of probability 0 gives p-value 0."""
    counts = np.bincount(np.asarray(draws).ravel(), minlength=probs.size)
    if counts.size > probs.size or np.any(counts[probs == 0]):
        return 0.0
    keep = probs > 0
    expected = counts.sum() * probs[keep]
    stat = np.sum((counts[keep] - expected) ** 2 / expected)
    return scipy.stats.chi2.sf(stat, keep.sum() - 1)


def _assert_rows_fit(draws, probs, what):
    """draws[..., r] against probs[r] for each row r."""
    for r in range(probs.shape[0]):
        p = _chi2_pvalue(draws[..., r], probs[r])
        assert p > ALPHA, f"{what}: row {r} fails the chi-square test, p = {p:.3g}"


# --------------------------------------------------------------------------------------------
# The tests' power: samplers that are wrong in the ways a Gumbel-max sampler goes wrong fail them
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong", ["argmax", "noise sign", "noise scale", "gaussian noise"])
def test_goodness_of_fit_tests_reject_wrong_samplers(wrong):
    logits = _logits()[0]
    shape = (DRAWS, logits.size)
    noise = {
        "argmax": np.zeros(shape),
        "noise sign": -numpy_gumbel_noise(1, shape),
        "noise scale": 1.3 * numpy_gumbel_noise(1, shape),
        "gaussian noise": np.random.default_rng(1).normal(size=shape),
    }[wrong]
    assert _chi2_pvalue(np.argmax(logits + noise, axis=-1), PROBS[0]) < ALPHA
    assert _chi2_pvalue(np.argmax(logits + numpy_gumbel_noise(1, shape), axis=-1), PROBS[0]) > ALPHA


# --------------------------------------------------------------------------------------------
# categorical
# --------------------------------------------------------------------------------------------

def test_categorical_frequencies(xp):
    logits = xp.make(_logits())
    draws = categorical(logits, shape=(DRAWS, PROBS.shape[0]), rng=7)
    xp.check(draws, logits, "int64", (DRAWS, PROBS.shape[0]))
    _assert_rows_fit(xp.to_numpy(draws), PROBS, xp.name)
    if xp.name == "numpy-readonly":
        np.testing.assert_array_equal(logits, _logits())


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_categorical_dtypes(xp, dtype):
    xp.subset(dtype == "float32", jax_keep=False)
    logits = np.array([[0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    draws = categorical(xp.make(logits, dtype), shape=(DRAWS, 2), rng=3)
    xp.check(draws, xp.make(logits, dtype), "int64", (DRAWS, 2))
    _assert_rows_fit(xp.to_numpy(draws), slow_softmax(logits, axis=-1), f"{xp.name} {dtype}")


def test_categorical_along_axis_0(xp):
    xp.subset(True, jax_keep=False)
    logits = _logits().T  # categories along axis 0, one distribution per column
    draws = categorical(xp.make(logits), axis=0, shape=(DRAWS, 4), rng=11)
    xp.check(draws, xp.make(logits), "int64", (DRAWS, 4))
    _assert_rows_fit(xp.to_numpy(draws), PROBS, f"{xp.name} axis=0")


def test_categorical_shifts_by_the_max_first(xp):
    # float32 logits spaced 2 apart at 3e7: added to unshifted logits, the noise would round to
    # multiples of 2 and the draws would favour the first index on ties.
    logits = np.array([[3e7, 3e7 + 2.0]], dtype=np.float32)
    draws = categorical(xp.make(logits), shape=(DRAWS, 1), rng=5)
    _assert_rows_fit(xp.to_numpy(draws), slow_softmax(np.array([[0.0, 2.0]]), axis=-1), xp.name)


def test_categorical_default_shape_is_the_batch_shape(xp):
    xp.subset(True, jax_keep=False)
    logits = np.zeros((2, 3, 4))
    for axis, shape in [(-1, (2, 3)), (0, (3, 4)), (1, (2, 4))]:
        draws = categorical(xp.make(logits), axis=axis, rng=0)
        xp.check(draws, xp.make(logits), "int64", shape)
        values = xp.to_numpy(draws)
        assert values.min() >= 0 and values.max() < logits.shape[axis]


def test_categorical_one_draw_from_1d_logits_is_a_scalar(xp):
    xp.subset(True, jax_keep=False)
    logits = xp.make(np.array([0.0, -inf, -inf]))
    draw = categorical(logits, rng=0)
    xp.check(draw, logits, "int64", (), scalar=True)
    assert int(xp.to_numpy(draw)) == 0


@pytest.mark.parametrize("logits_shape, axis, shape", [
    ((3,), -1, (1000,)),
    ((5, 3), -1, (1000, 5)),
    ((1, 3), -1, (7, 4)),
    ((3, 1), 0, (2, 5)),
    ((2, 1, 3), -1, (6, 2, 4)),
])
def test_categorical_shape_broadcasts_the_batch(logits_shape, axis, shape):
    # Every slice of the logits is the same distribution; what matters is the result's shape and
    # that the draws along every new or broadcast axis are independent (not repeated).
    p = np.array([0.2, 0.3, 0.5])
    view = [1] * len(logits_shape)
    view[axis] = 3
    logits = np.broadcast_to(np.log(p).reshape(view), logits_shape)
    draws = categorical(logits, axis=axis, shape=shape, rng=2)
    assert draws.shape == shape and draws.dtype == np.int64
    assert _chi2_pvalue(draws, p) > ALPHA
    for k in range(draws.ndim):
        assert np.any(np.diff(draws, axis=k) != 0), f"draws repeat along axis {k}"


@pytest.mark.parametrize("logits_shape, shape", [((5, 3), (1000, 4)), ((5, 3), ()), ((2, 5, 3), (5,)),
                                                 ((5, 3), (5, -1))])
def test_categorical_incompatible_shape(logits_shape, shape):
    message = (f"shape {shape} is not broadcast-compatible with the logits: logits of shape {logits_shape} "
               f"without axis -1 have shape {logits_shape[:-1]}")
    with pytest.raises(ValueError, match=re.escape(message)):
        categorical(np.zeros(logits_shape), shape=shape)


def test_categorical_plus_inf_is_chosen_with_probability_one(xp):
    xp.subset(True, jax_keep=False)
    logits = np.array([[0.0, inf, 1.0, -inf], [0.0, inf, inf, 1e300], [inf, inf, inf, inf]])
    draws = xp.to_numpy(categorical(xp.make(logits), shape=(DRAWS, 3), rng=4))
    assert np.all(draws[:, 0] == 1)
    _assert_rows_fit(draws[:, 1:], np.array([[0, 0.5, 0.5, 0], [0.25] * 4]), xp.name)


def test_categorical_all_minus_inf_row_raises(xp):
    if xp.name == "dask":
        pytest.skip("lazy: the values cannot be read (documented)")
    logits = xp.make(np.array([[0.0, 1.0], [2.0, -inf], [-inf, -inf]]))
    with pytest.raises(ValueError, match=r"logits row \(2,\) along axis -1 are all -inf: no category"):
        categorical(logits, rng=0)
    with pytest.raises(ValueError, match=r"logits along axis 0 are all -inf"):
        categorical(xp.make(np.full(3, -inf)), axis=0, rng=0)


def test_categorical_nan_raises(xp):
    if xp.name == "dask":
        pytest.skip("lazy: the values cannot be read (documented)")
    logits = xp.make(np.array([[[0.0, 1.0], [2.0, 3.0]], [[0.0, 1.0], [nan, -inf]]]))
    with pytest.raises(ValueError, match=r"logits row \(1, 1\) along axis 2 contain nan"):
        categorical(logits, axis=2, rng=0)


def test_categorical_bad_arguments():
    with pytest.raises(ValueError, match="no categories along axis -1"):
        categorical(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="at least one axis"):
        categorical(np.float64(1.0))
    with pytest.raises(np.exceptions.AxisError):
        categorical(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be an integer; got tuple"):
        categorical(np.zeros((2, 3)), axis=(0, 1))
    with pytest.raises(TypeError, match="complex"):
        categorical(np.zeros(3, dtype=complex))
    with pytest.raises(TypeError, match="categorical expects logits of a real numeric dtype"):
        categorical(np.array(["a", "b"]))


def test_categorical_wrong_kind_of_rng(xp):
    xp.subset(True, jax_keep=False)
    expected = {"torch": "torch.Generator", "jax": "PRNG key", "dask": "numpy or dask Generator"}.get(
        xp.name, "numpy.random.Generator")
    with pytest.raises(TypeError, match=rf"rng for .* must be a {expected}.*got builtins.object"):
        categorical(xp.make(np.zeros(3)), rng=object())


def test_categorical_backend_generator_is_not_numpy_rng():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="rng for torch logits must be a torch.Generator.*numpy"):
        categorical(torch.zeros(3), rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng for numpy logits must be a numpy.random.Generator.*torch"):
        categorical(np.zeros(3), rng=torch.Generator())


def test_categorical_seeds_reproduce_and_differ(xp):
    logits = xp.make(_logits())
    draw = lambda rng: xp.to_numpy(categorical(logits, shape=(200, 4), rng=rng))  # noqa: E731
    np.testing.assert_array_equal(draw(12), draw(12))
    assert np.mean(draw(12) != draw(13)) > 0.2
    if xp.name in ("numpy", "array_api_strict", "dask"):
        np.testing.assert_array_equal(draw(np.random.default_rng(12)), draw(np.random.default_rng(12)))
        generator = np.random.default_rng(12)
        assert np.mean(draw(generator) != draw(generator)) > 0.2  # the generator advances
    if xp.name == "torch":
        torch = xp.lib
        np.testing.assert_array_equal(draw(torch.Generator().manual_seed(3)),
                                      draw(torch.Generator().manual_seed(3)))
        generator = torch.Generator().manual_seed(3)
        assert np.mean(draw(generator) != draw(generator)) > 0.2
    if xp.name == "jax":
        import jax

        np.testing.assert_array_equal(draw(jax.random.key(3)), draw(jax.random.PRNGKey(3)))
    assert np.mean(draw(None) != draw(None)) > 0.2  # fresh entropy


def test_categorical_is_jax_random_categorical():
    # Same key, same noise shape: the draws are jax's own, eagerly and under jit.
    jax = pytest.importorskip("jax")
    from backends import make_backend

    jnp = make_backend("jax").lib
    logits = jnp.asarray(_logits())
    key = jax.random.key(42)
    expected = np.asarray(jax.random.categorical(key, logits, axis=-1, shape=(50, 4)))
    np.testing.assert_array_equal(np.asarray(categorical(logits, shape=(50, 4), rng=key)), expected)
    jitted = jax.jit(lambda x, k: categorical(x, shape=(50, 4), rng=k))
    np.testing.assert_array_equal(np.asarray(jitted(logits, key)), expected)
    # Traced values cannot be checked: an all -inf row gives an index, not an error (documented).
    assert jitted(jnp.full((4, 5), -inf), key).shape == (50, 4)


def test_categorical_dask_is_lazy_and_chunked_like_the_logits():
    pytest.importorskip("dask")
    import dask.array as da

    logits = da.from_array(_logits(), chunks=(2, 5))
    draws = categorical(logits, shape=(DRAWS, 4), rng=np.random.default_rng(9))
    assert isinstance(draws, da.Array) and draws.chunks[1] == (2, 2)
    _assert_rows_fit(draws.compute(), PROBS, "dask")


# --------------------------------------------------------------------------------------------
# gumbel_softmax
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_gumbel_softmax_distribution(xp, tau):
    xp.subset(tau == 1.0)
    delta = 0.7
    logits = xp.make(np.tile([[delta, 0.0]], (4000, 1)))
    y = xp.to_numpy(gumbel_softmax(logits, temperature=tau, rng=21))
    p = scipy.stats.kstest(y[:, 0], lambda q: concrete_cdf(q, delta, tau)).pvalue
    assert p > ALPHA, f"{xp.name}: the samples fail the Kolmogorov-Smirnov test, p = {p:.3g}"


def test_kolmogorov_smirnov_test_rejects_a_wrong_temperature():
    # softmax(logits / tau + G): the noise not scaled by the temperature.
    delta, tau = 0.7, 0.3
    noise = numpy_gumbel_noise(21, (4000, 2))
    wrong = scipy.special.expit(delta / tau + noise[:, 0] - noise[:, 1])
    assert scipy.stats.kstest(wrong, lambda q: concrete_cdf(q, delta, tau)).pvalue < ALPHA
    right = scipy.special.expit((delta + noise[:, 0] - noise[:, 1]) / tau)
    assert scipy.stats.kstest(right, lambda q: concrete_cdf(q, delta, tau)).pvalue > ALPHA


def test_gumbel_softmax_argmax_is_categorical(xp):
    xp.subset(True, jax_keep=False)
    logits = np.tile(_logits()[:2], (DRAWS // 4, 1, 1))  # (draws, 2 rows, 5)
    y = xp.to_numpy(gumbel_softmax(xp.make(logits), temperature=0.5, rng=8))
    _assert_rows_fit(np.argmax(y, axis=-1), PROBS[:2], xp.name)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64"])
def test_gumbel_softmax_shape_dtype_and_sum(xp, dtype):
    xp.subset(dtype == "float32")
    values = np.array([[0, 1, 2], [3, -4, 1]]) if dtype == "int64" else np.array([[0, 1, 2], [3, -inf, 1]])
    logits = xp.make(values, dtype)
    y = gumbel_softmax(logits, temperature=0.7, rng=1)
    want = xp.default_float(logits) if dtype == "int64" else dtype
    xp.check(y, logits, want, (2, 3))
    values = xp.to_numpy(y).astype(np.float64)
    tol = {"float16": 2e-3, "float32": 1e-6}.get(want, 1e-13)
    np.testing.assert_allclose(values.sum(axis=-1), 1.0, rtol=0, atol=tol)
    assert np.all(values >= 0)
    if dtype != "int64":
        assert values[1, 1] == 0.0  # a -inf logit has probability 0


def test_gumbel_softmax_along_axis_0(xp):
    xp.subset(True, jax_keep=False)
    y = gumbel_softmax(xp.make(np.zeros((3, 2))), axis=0, rng=1)
    np.testing.assert_allclose(xp.to_numpy(y).sum(axis=0), 1.0, rtol=1e-13)


def test_gumbel_softmax_hard_is_the_one_hot_of_the_soft_sample(xp):
    xp.subset(True, jax_keep=False)
    logits = xp.make(_logits(), "float32")
    soft = xp.to_numpy(gumbel_softmax(logits, temperature=0.5, rng=6))
    hard = gumbel_softmax(logits, temperature=0.5, hard=True, rng=6)
    xp.check(hard, logits, "float32", PROBS.shape)
    expected = np.zeros(PROBS.shape, np.float32)
    expected[np.arange(4), np.argmax(soft, axis=-1)] = 1.0
    np.testing.assert_array_equal(xp.to_numpy(hard), expected)  # exact ones and zeros


def test_gumbel_softmax_nan_slices_as_softmax():
    y = gumbel_softmax(np.array([[0.0, nan], [-inf, -inf], [0.0, 1.0]]), hard=True, rng=0)
    assert np.all(np.isnan(y[:2])) and sorted(y[2]) == [0.0, 1.0]


@pytest.mark.parametrize("temperature", [0.0, -1.0, inf, nan])
def test_gumbel_softmax_bad_temperature(temperature):
    with pytest.raises(ValueError, match="gumbel_softmax: temperature must be positive, finite and at least"):
        gumbel_softmax(np.zeros(3), temperature=temperature)


def test_gumbel_softmax_seeds_reproduce_and_differ(xp):
    xp.subset(True, jax_keep=False)
    logits = xp.make(np.zeros((5, 4)))
    draw = lambda rng: xp.to_numpy(gumbel_softmax(logits, rng=rng))  # noqa: E731
    np.testing.assert_array_equal(draw(1), draw(1))
    assert not np.any(draw(1) == draw(2))
    with pytest.raises(TypeError, match="rng for .* must be"):
        gumbel_softmax(logits, rng="seed")


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_gradient_torch(hard):
    torch = pytest.importorskip("torch")
    tau = 0.6
    w = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
    y_soft = gumbel_softmax(torch.asarray(_logits()), temperature=tau, rng=4).numpy()
    logits = torch.asarray(_logits(), requires_grad=True)
    y = gumbel_softmax(logits, temperature=tau, hard=hard, rng=4)
    (y * torch.asarray(w)).sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), gumbel_softmax_grad(y_soft, w, tau), rtol=1e-12,
                               atol=1e-14)
    if hard:
        assert set(np.unique(y.detach().numpy())) == {0.0, 1.0}


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_gradient_jax(hard):
    jax = pytest.importorskip("jax")
    from backends import make_backend

    jnp = make_backend("jax").lib
    tau = 0.6
    w = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
    key = jax.random.key(4)
    y_soft = np.asarray(gumbel_softmax(jnp.asarray(_logits()), temperature=tau, rng=key))

    def loss(logits):
        return jnp.sum(gumbel_softmax(logits, temperature=tau, hard=hard, rng=key) * w)

    grad = jax.jit(jax.grad(loss))(jnp.asarray(_logits()))
    np.testing.assert_allclose(np.asarray(grad), gumbel_softmax_grad(y_soft, w, tau), rtol=1e-12,
                               atol=1e-14)
    if hard:
        y = np.asarray(jax.jit(lambda x: gumbel_softmax(x, temperature=tau, hard=True, rng=key))(
            jnp.asarray(_logits())))
        assert set(np.unique(y)) == {0.0, 1.0} and np.all(y.sum(axis=-1) == 1.0)


def test_gumbel_softmax_numpy_input_is_not_written():
    logits = _logits()
    logits.flags.writeable = False
    gumbel_softmax(logits, hard=True, rng=0)
    np.testing.assert_array_equal(logits, _logits())


def test_no_nan_or_inf_noise_at_the_uniform_endpoints(monkeypatch):
    # U = 0 is moved to the smallest normal number: the noise stays finite, so the draw is not nan.
    class Zeros:
        def random(self, shape):
            return np.zeros(shape)

    from lsearray._executors import array_api

    monkeypatch.setattr(array_api, "numpy_generator", lambda rng, kind, func: Zeros())
    y = gumbel_softmax(np.zeros(3), rng=0)
    assert np.all(np.isfinite(y)) and math.isclose(y.sum(), 1.0)
    assert categorical(np.array([0.0, 1.0]), rng=0) in (0, 1)
