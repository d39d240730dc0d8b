"""The partial algebra on whole blocks: NumPy (lsecore) and array-API blocks (the dask chunk step
for non-NumPy chunks) split, merged in any order and finalized give the one-shot answer."""

import itertools

import numpy as np
import pytest

import lsearray
from lsearray._delegation import executor

inf, nan = np.inf, np.nan

ROWS = np.array([
    [0.0, -50.0, -3.0, 1.0, 1.0, -inf],
    [-inf, -inf, -inf, -inf, -inf, -inf],
    [1.0, inf, 2.0, -1.0, 0.0, 0.5],
    [1.0, 2.0, nan, 0.0, -2.0, 3.0],
    [700.0, 699.0, -700.0, 0.0, 698.5, 700.0],
    [-1e4, -1e4 - 1, -1e4 + 2, -1e4, -1e4, -1e4 - 30],
])
WEIGHTS = np.array([1.0, 0.5, 2.0, 0.0, 3.0, 1.0])


def _namespaces():
    out = [pytest.param(np, id="numpy")]
    for name in ("torch", "array_api_strict"):
        try:
            out.append(pytest.param(pytest.importorskip(name), id=name))
        except pytest.skip.Exception:
            pass
    return out


def _to_numpy(x):
    return np.asarray(x.cpu() if hasattr(x, "cpu") else np.from_dlpack(x) if hasattr(x, "__dlpack__") else x)


@pytest.mark.parametrize("mod", _namespaces())
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_split_merge_finalize_matches_one_shot(mod, weighted, tau):
    a = mod.asarray(ROWS)
    b = mod.asarray(np.broadcast_to(WEIGHTS, ROWS.shape).copy()) if weighted else None
    expected = lsearray.logsumexp(ROWS, axis=1, b=WEIGHTS if weighted else None,
                                  return_sign=True, temperature=tau)
    cuts = [(0, 2), (2, 3), (3, 6)]
    ex = executor(a)  # the partial algebra's verbs on the arrays of a's library
    parts = [ex.partial(a[:, i:j], None if b is None else b[:, i:j], (1,), 1.0 / tau) for i, j in cuts]
    for order in itertools.permutations(range(3)):
        out, sign, _ = ex.finalize(ex.merge([parts[k] for k in order], 1.0 / tau), tau)
        out, sign = _to_numpy(out)[:, 0], _to_numpy(sign)[:, 0]
        np.testing.assert_allclose(out, expected[0], rtol=1e-13, err_msg=str(order))
        np.testing.assert_array_equal(sign, expected[1], err_msg=str(order))


@pytest.mark.parametrize("mod", _namespaces())
def test_empty_block_is_neutral(mod):
    a = mod.asarray(ROWS)
    ex = executor(a)
    empty = ex.partial(mod.asarray(np.zeros((ROWS.shape[0], 0))), None, (1,), 1.0)
    out, sign, _ = ex.finalize(ex.merge([empty, ex.partial(a, None, (1,), 1.0), empty], 1.0), 1.0)
    expected = lsearray.logsumexp(ROWS, axis=1, return_sign=True)
    np.testing.assert_allclose(_to_numpy(out)[:, 0], expected[0], rtol=1e-13)
    np.testing.assert_array_equal(_to_numpy(sign)[:, 0], expected[1])
    only_empty, sign, _ = ex.finalize(empty, 1.0)
    assert np.all(_to_numpy(only_empty) == -inf) and np.all(_to_numpy(sign) == 0)
