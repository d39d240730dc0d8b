"""Integer and bool arrays beside floating ones (a or b): the integers read as the default real
floating dtype first, then the usual promotion, as scipy.special.logsumexp does."""

import numpy as np
import pytest

import lsearray
from reference import slow_logmeanexp, slow_logsumexp

A_INT = np.array([[1, 2, 3, -4], [0, 5, -1, 2]])
A_FLOAT = np.array([[0.5, -1.25, 3.0, 2.0], [1.5, 0.0, -2.5, 4.0]])
B_INT = np.array([[1, 2, 0, 3], [2, 1, 1, 0]])
B_FLOAT = np.array([[0.5, 1.5, 2.0, 0.25], [1.0, 0.75, 3.0, 2.5]])
B_BOOL = np.array([[True, False, True, True], [False, True, True, False]])

CASES = {
    "int a, float b": (A_INT, B_FLOAT),
    "float a, int b": (A_FLOAT, B_INT),
    "float a, bool b": (A_FLOAT, B_BOOL),
    "int a, bool b": (A_INT, B_BOOL),
}


def _namespace(name):
    if name == "array_api_strict":
        xp = pytest.importorskip("array_api_strict")
        return xp, lambda x: np.asarray(x)
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch, lambda x: x.numpy()
    jnp = pytest.importorskip("jax.numpy")
    return jnp, np.asarray


@pytest.mark.parametrize("backend", ["array_api_strict", "torch", "jax"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("axis", [None, 1])
def test_integer_and_floating_operands(backend, case, axis):
    xp, to_numpy = _namespace(backend)
    a_np, b_np = CASES[case]
    a, b = xp.asarray(a_np), xp.asarray(b_np)
    a64, b64 = a_np.astype(np.float64), b_np.astype(np.float64)
    for func, reference in ((lsearray.logsumexp, slow_logsumexp),
                            (lsearray.logmeanexp, slow_logmeanexp)):
        got = func(a, axis=axis, b=b)
        # the result's dtype is the namespace's own promotion of the floating operands
        assert np.dtype(to_numpy(got).dtype).kind == "f"
        rtol = 1e-13 if np.dtype(to_numpy(got).dtype) == np.float64 else 1e-6
        np.testing.assert_allclose(to_numpy(got), reference(a64, axis=axis, b=b64), rtol=rtol,
                                   err_msg=f"{func.__name__}, {case}")
