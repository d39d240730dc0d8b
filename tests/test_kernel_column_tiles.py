"""The column-tile path: 64 columns x 256 rows at a time."""

import numpy as np
import pytest

import lsearray
from kernel_support import DTYPES, assert_no_failures, kernel_rng, needs_ld, tile_columns, ulp_failures
from reference import ld_lse


COL_R = [1, 255, 256, 257, 600]
COL_C = [63, 64, 65, 129]


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_tiles_match_reference(dtype):
    failures = []
    for r in COL_R:
        for c in COL_C:
            a = tile_columns(r, c, kernel_rng(f"cols-{r}-{c}")).astype(dtype)
            ref = ld_lse(a, axis=0)
            big = np.full((r, 2 * c), 5.0, dtype=dtype)
            big[:, ::2] = a
            views = {
                "C": np.ascontiguousarray(a),
                "strided-columns": big[:, ::2],
                "negative-columns": np.ascontiguousarray(a[:, ::-1])[:, ::-1],
                "F": np.asfortranarray(a),
            }
            for name, view in views.items():
                got = lsearray.logsumexp(view, axis=0)
                failures += ulp_failures(got, ref, dtype, label=f"r={r} c={c} {name}")
            # 3-D: outer x rows x columns, the tile loop once per outer index
            a3 = np.stack([a, a[::-1]])
            got = lsearray.logsumexp(a3, axis=1)
            failures += ulp_failures(got, np.stack([ref, ref]), dtype, label=f"r={r} c={c} 3-D")
    assert_no_failures(failures)


@needs_ld
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_tiles_with_temperature_and_weights(dtype):
    failures = []
    for r, c in [(255, 64), (257, 65), (600, 129)]:
        rng = kernel_rng(f"cols-tw-{r}-{c}")
        a = tile_columns(r, c, rng).astype(dtype)
        for tau in (0.5, 2.0):
            got = lsearray.logsumexp(a, axis=0, temperature=tau)
            failures += ulp_failures(got, ld_lse(a, 0, tau=tau), dtype, label=f"r={r} c={c} tau={tau}")
        b = rng.uniform(0.5, 2.0, size=a.shape)
        b[rng.random(a.shape) < 0.1] = 0.0
        b = b.astype(dtype)
        got = lsearray.logsumexp(a, axis=0, b=b)
        failures += ulp_failures(got, ld_lse(a, 0, b), dtype, label=f"r={r} c={c} b")
    assert_no_failures(failures)
