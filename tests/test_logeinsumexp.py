"""logeinsumexp against its definition: log of the sum, over every index left out of the output,
of the products of the operands' exps.

References: `mp_logeinsumexp` enumerates every assignment of the indices and sums the products of
exps in mpmath, from the exact float inputs (subscripts parsed here, by its own small parser);
`naive` is numpy's ``log(einsum(exp(...)))`` on data whose exps neither overflow nor underflow;
logmatmulexp for the products it spells. Gradients: torch's gradcheck (finite differences) and
jax's autodiff of the naive formula.
"""

import itertools
import math
import sys

import mpmath
import numpy as np
import pytest

import lsearray
from lsearray import logeinsumexp, logmatmulexp
from backends import assert_values, make_backend

inf = math.inf
nan = math.nan


def data(shape, seed=0, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _output(inputs, output):
    """The output letters: explicit, or numpy's implicit rule (the letters that appear once, sorted)."""
    if output is not None:
        return output
    letters = "".join(inputs)
    return "".join(sorted(c for c in set(letters) if letters.count(c) == 1))


def mp_logeinsumexp(subscripts, *operands, dps=50):
    """The definition in mpmath, by enumeration: for each output entry, the log of the sum over
    every assignment of the other indices of prod_t exp(operand_t[its indices]). Letters only."""
    inputs, arrow, output = subscripts.partition("->")
    inputs = inputs.split(",")
    output = _output(inputs, output if arrow else None)
    sizes = {}
    for term, x in zip(inputs, operands):
        for c, n in zip(term, np.shape(x)):
            sizes[c] = n
    summed = sorted(set("".join(inputs)) - set(output))
    out = np.empty(tuple(sizes[c] for c in output))
    with mpmath.workdps(dps):
        for out_index in itertools.product(*(range(sizes[c]) for c in output)):
            total = mpmath.mpf(0)
            for sum_index in itertools.product(*(range(sizes[c]) for c in summed)):
                where = dict(zip(output, out_index)) | dict(zip(summed, sum_index))
                exponent = mpmath.mpf(0)
                for term, x in zip(inputs, operands):
                    exponent += mpmath.mpf(float(np.asarray(x)[tuple(where[c] for c in term)]))
                total += mpmath.exp(exponent)
            out[out_index] = float(mpmath.log(total)) if total else -inf
    return out


def naive(subscripts, *operands):
    """numpy's einsum of the exps, logged (-inf for 0)."""
    with np.errstate(divide="ignore"):
        return np.log(np.einsum(subscripts, *[np.exp(np.asarray(x, dtype=np.float64)) for x in operands]))


# (subscripts, operand shapes): every pattern the contraction meets
CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),                        # a matrix product
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 3)]),               # a batched one
    ("ij,jk,kl,lm->im", [(2, 3), (3, 4), (4, 3), (3, 2)]),  # a chain
    ("ab,bc,ca->", [(3, 3), (3, 3), (3, 3)]),               # a closed ring
    ("ii->", [(4, 4)]),                                     # the trace
    ("ii->i", [(4, 4)]),                                    # the diagonal
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),                    # a diagonal, then a product
    ("i,j->ij", [(3,), (4,)]),                              # an outer product
    ("ij,kl->ijkl", [(2, 3), (2, 2)]),
    ("ij->i", [(3, 5)]),                                    # one operand, reduced
    ("ij->", [(3, 5)]),
    ("ij->ji", [(3, 5)]),                                   # one operand, transposed
    ("ijk,k->j", [(2, 3, 4), (4,)]),                        # i summed within one operand
    ("ij,ij->i", [(3, 4), (3, 4)]),                         # kept from both: a batch index
    ("ij,jk", [(3, 4), (4, 2)]),                            # implicit output: ik
    ("ba,ac", [(3, 4), (4, 2)]),                            # implicit output, sorted: bc
    ("i,i", [(5,), (5,)]),                                  # implicit: a scalar
    ("a,ab,b,bc,c", [(3,), (3, 3), (3,), (3, 3), (3,)]),    # a CRF chain, implicit scalar
]


def _operands(shapes, seed, scale=2.0):
    return [data(shape, seed=seed + t, scale=scale) for t, shape in enumerate(shapes)]


@pytest.mark.parametrize("subscripts, shapes", CASES, ids=[c[0] for c in CASES])
def test_matches_the_exact_sum(subscripts, shapes):
    ops = _operands(shapes, seed=len(subscripts))
    got = logeinsumexp(subscripts, *ops)
    exact = mp_logeinsumexp(subscripts, *ops)
    assert np.shape(got) == exact.shape
    # a few ulp of max(|out|, 1) per pairwise step
    np.testing.assert_allclose(got, exact, rtol=0, atol=2e-15 * len(shapes) * max(1.0, np.max(np.abs(exact))))


@pytest.mark.parametrize("subscripts, shapes", CASES, ids=[c[0] for c in CASES])
def test_huge_inputs_do_not_overflow(subscripts, shapes):
    """The same sums shifted by +-1000 per operand, where every exp overflows or underflows."""
    ops = _operands(shapes, seed=len(subscripts) + 100)
    for shift in (1000.0, -1000.0):
        shifted = [x + shift for x in ops]
        got = logeinsumexp(subscripts, *shifted)
        exact = mp_logeinsumexp(subscripts, *shifted)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, exact, rtol=0, atol=4e-15 * len(shapes) * np.max(np.abs(exact)))


@pytest.mark.parametrize("subscripts, shapes", CASES + [
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),      # the ellipsis broadcast
    ("...ij,jk", [(2, 3, 4), (4, 5)]),                       # implicit: the ellipsis first
    ("i...,i...->...", [(3, 2, 2), (3, 2, 1)]),
    ("ij,ij->ij", [(1, 4), (3, 4)]),                         # a size-1 axis broadcast
    ("abc,cd,de,ebf->af", [(4, 5, 6), (6, 7), (7, 3), (3, 5, 2)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_matches_numpy_einsum_on_moderate_data(subscripts, shapes):
    ops = _operands(shapes, seed=7, scale=1.0)
    got = logeinsumexp(subscripts, *ops)
    expected = naive(subscripts, *ops)
    assert isinstance(got, np.ndarray if np.ndim(expected) else np.generic)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_two_operands_are_logmatmulexp_itself():
    a, b = data((4, 5, 6), seed=1, scale=30.0), data((4, 6, 3), seed=2, scale=30.0)
    np.testing.assert_array_equal(logeinsumexp("bij,bjk->bik", a, b), logmatmulexp(a, b))
    np.testing.assert_array_equal(logeinsumexp("ij,jk->ik", a[0], b[0]), logmatmulexp(a[0], b[0]))
    # the rows and columns whose maxima sit at different k, which logmatmulexp recomputes
    np.testing.assert_allclose(logeinsumexp("ik,kj->ij", [[0.0, -800.0]], [[-800.0], [0.0]]),
                               [[-800.0 + math.log(2.0)]], rtol=1e-15)


def test_reordered_indices_against_logmatmulexp():
    """A product whose operands' axes come in another order: transposed before logmatmulexp."""
    a, b = data((6, 4, 3), seed=3, scale=10.0), data((3, 5, 6), seed=4, scale=10.0)
    got = logeinsumexp("kib,bjk->bji", a, b)
    expected = logmatmulexp(np.transpose(a, (2, 1, 0)), np.transpose(b, (0, 2, 1)))  # (b, i, j)
    np.testing.assert_allclose(got, np.transpose(expected, (0, 2, 1)), rtol=1e-15, atol=1e-14)


def test_minus_inf_and_nan():
    a = data((3, 4), seed=5)
    b = data((4, 2), seed=6)
    a[0] = -inf                 # an all -inf row: every product of it is 0
    b[:, 1] = -inf
    a[1, 2] = nan
    with np.errstate(all="raise"):
        out = logeinsumexp("ij,jk->ik", a, b)
    assert np.all(out[0] == -inf) and np.all(out[:, 1][[0, 2]] == -inf)
    assert np.isnan(out[1, 0]) and not np.isnan(out[2, 0])
    # nan in a column that meets only -inf rows is still nan, as the definition's 0 * nan
    assert np.isnan(out[1, 1])
    np.testing.assert_allclose(out[2, 0], mp_logeinsumexp("ij,jk->ik", a[2:], b[:, :1])[0, 0], rtol=1e-15)
    # all -inf: -inf, no nan, in a reduction, an outer product and a diagonal
    x = np.full((3, 3), -inf)
    assert logeinsumexp("ij->", x) == -inf
    assert np.all(logeinsumexp("ij,kl->ijkl", x, x) == -inf)
    assert np.all(logeinsumexp("ii->i", x) == -inf)
    assert logeinsumexp("ij,jk,ki", x, x, x) == -inf
    # +inf facing -inf is nan (inf * 0)
    assert np.isnan(logeinsumexp("i,i", [inf, 0.0], [-inf, 0.0]))
    assert logeinsumexp("i,i", [inf, 0.0], [0.0, 0.0]) == inf


def test_empty_sums_are_minus_inf():
    np.testing.assert_array_equal(logeinsumexp("ij,jk->ik", np.zeros((2, 0)), np.zeros((0, 3))),
                                  np.full((2, 3), -inf))
    assert logeinsumexp("i->", np.zeros(0)) == -inf
    assert logeinsumexp("ij->i", np.zeros((0, 3))).shape == (0,)


def test_dtypes():
    a, b = data((3, 4), seed=8), data((4, 2), seed=9)
    assert logeinsumexp("ij,jk", a.astype(np.float32), b.astype(np.float32)).dtype == np.float32
    assert logeinsumexp("ij,jk", a.astype(np.float32), b).dtype == np.float64
    got = logeinsumexp("ij,jk", np.arange(12).reshape(3, 4), np.ones((4, 2), dtype=bool))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, naive("ij,jk", np.arange(12).reshape(3, 4), np.ones((4, 2))), rtol=1e-15)
    # float32 NumPy input computes in float64: the result is its correctly rounded value
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    exact = mp_logeinsumexp("ij,jk", a32, b32)
    np.testing.assert_array_equal(logeinsumexp("ij,jk", a32, b32), exact.astype(np.float32))
    assert logeinsumexp("ij,jk", [[0.0, 1.0]], [[1.0], [0.0]]).shape == (1, 1)


def test_path_without_opt_einsum_is_left_to_right(monkeypatch):
    """With opt_einsum missing the chain still contracts, from the left, to the same value."""
    ops = _operands([(2, 3), (3, 4), (4, 5), (5, 2)], seed=11)
    expected = mp_logeinsumexp("ij,jk,kl,lm->im", *ops)
    monkeypatch.setitem(sys.modules, "opt_einsum", None)   # import opt_einsum raises ImportError
    calls = []
    monkeypatch.setattr(lsearray._einsum, "logmatmulexp",
                        lambda a, b: calls.append((a.shape, b.shape)) or logmatmulexp(a, b))
    got = logeinsumexp("ij,jk,kl,lm->im", *ops)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
    # ((a b) c) d: j, then k, then l summed
    assert [a[-1] for a, _ in calls] == [3, 4, 5], calls


def test_path_follows_opt_einsum(monkeypatch):
    opt_einsum = pytest.importorskip("opt_einsum")
    paths = []
    original = opt_einsum.contract_path

    def recorded(*args, **kwargs):
        path = original(*args, **kwargs)
        paths.append(path[0])
        return path

    monkeypatch.setattr(opt_einsum, "contract_path", recorded)
    lsearray._einsum._opt_einsum_path.cache_clear()   # paths found before are kept
    # a chain whose cheapest order depends on the output kept (a full sum would take another)
    ops = _operands([(2, 50), (50, 3), (3, 50), (50, 2)], seed=12, scale=1.0)
    got = logeinsumexp("ij,jk,kl,lm->im", *ops)
    assert paths == [original("ij,jk,kl,lm->im", *ops)[0]]
    np.testing.assert_allclose(got, naive("ij,jk,kl,lm->im", *ops), rtol=1e-13)


@pytest.mark.parametrize("args, error, match", [
    (("ij,jk", np.ones((2, 2))), ValueError, r"logeinsumexp: subscripts 'ij,jk' name 2 operand\(s\); got 1"),
    (("ij", np.ones(3)), ValueError, r"logeinsumexp: subscripts 'ij' of operand 0 name 2 dimension\(s\); "
                                     r"operand 0 has 1"),
    (("ij,jk", np.ones((2, 3)), np.ones((4, 2))), ValueError,
     r"logeinsumexp: index 'j' of 'ij,jk' has size 3 in operand 0 and 4 in operand 1"),
    (("i->j", np.ones(3)), ValueError, r"logeinsumexp: output index 'j' appears in no operand"),
    (("ij->ii", np.ones((2, 2))), ValueError, r"logeinsumexp: output index 'i' appears more than once"),
    (("i1", np.ones((2, 2))), ValueError, r"logeinsumexp: subscripts are letters .* got '1'"),
    (("i.j", np.ones((2, 2))), ValueError, r"logeinsumexp: an ellipsis is '...'"),
    (("...i->i", np.ones((2, 2))), ValueError, r"logeinsumexp: the output of '...i->i' needs '...'"),
    (("i->i->i", np.ones(2)), ValueError, r"logeinsumexp: '->' at most once"),
    ((3, np.ones(2)), TypeError, r"logeinsumexp: subscripts as a string .* got int"),
    (("ij",), ValueError, r"logeinsumexp: at least one operand expected; got none"),
    (("i", np.ones(2, dtype=complex)), TypeError, r"logeinsumexp: complex input is not supported; operand 0"),
    (("i", np.array(["a", "b"])), TypeError, r"logeinsumexp expects operand 0 of a real numeric dtype"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_errors(args, error, match):
    with pytest.raises(error, match=match):
        logeinsumexp(*args)


# ---- backends --------------------------------------------------------------------------------

BACKEND_CASES = [
    ("iij,jk,kl->il", [(3, 3, 4), (4, 5), (5, 2)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 2)]),
    ("ij,kl->", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("subscripts, shapes", BACKEND_CASES, ids=[c[0] for c in BACKEND_CASES])
def test_every_backend(xp, subscripts, shapes):
    xp.subset(subscripts == "iij,jk,kl->il", jax_keep=subscripts == "ij,kl->")  # jax compiles each op
    ops = _operands(shapes, seed=13)
    ops[0][0, 0] = -inf
    expected = naive(subscripts, *ops)
    arrays = [xp.make(x) for x in ops]
    out = logeinsumexp(subscripts, *arrays)
    xp.check(out, arrays[0], "float64", np.shape(expected), scalar=True)
    assert_values(xp.to_numpy(out), expected, "float64")
    out32 = logeinsumexp(subscripts, *[xp.make(x, "float32") for x in ops])
    assert_values(xp.to_numpy(out32), expected, "float32")
    assert str(xp.to_numpy(out32).dtype) == "float32"


def test_every_backend_huge_and_minus_inf(xp):
    a, b = data((3, 4), seed=14) + 1000.0, data((4, 2), seed=15) - 1000.0
    a[0] = -inf
    out = xp.to_numpy(logeinsumexp("ij,jk->ik", xp.make(a), xp.make(b)))
    expected = mp_logeinsumexp("ij,jk->ik", a, b)
    assert np.all(out[0] == -inf) and not np.any(np.isnan(out))
    np.testing.assert_allclose(out[1:], expected[1:], rtol=1e-14)


def test_torch_gradcheck():
    torch = pytest.importorskip("torch")
    a = torch.tensor(data((3, 3, 4), seed=16, scale=1.0), requires_grad=True)
    b = torch.tensor(data((4, 2), seed=17, scale=1.0), requires_grad=True)
    c = torch.tensor(data((2, 3), seed=18, scale=1.0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: logeinsumexp("iij,jk,kl->il", a, b, c), (a, b, c),
                                    eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradcheck(lambda a, b: logeinsumexp("ij,kl->ijkl", a, b), (b, c),
                                    eps=1e-6, atol=1e-7, rtol=1e-5)


def test_jax_gradients_match_the_naive_formula():
    jnp = make_backend("jax").lib
    import jax

    ops = [jnp.asarray(x) for x in _operands([(3, 3, 4), (4, 2)], seed=19, scale=1.0)]

    def fast(*xs):
        return jnp.sum(jnp.sin(logeinsumexp("iij,jk->ik", *xs)))

    def slow(*xs):  # safe data: the exps neither overflow nor underflow
        return jnp.sum(jnp.sin(jnp.log(jnp.einsum("iij,jk->ik", *[jnp.exp(x) for x in xs]))))

    got = jax.grad(fast, argnums=(0, 1))(*ops)
    expected = jax.grad(slow, argnums=(0, 1))(*ops)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-12, atol=1e-14)
