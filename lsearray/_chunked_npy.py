"""Write a seeded random .npy file chunk by chunk, whole or not at all (the demo's and the disk benchmark's data)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TextIO

import numpy as np

__all__ = ["write_chunked_npy"]


def _standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values of ``shape``."""
    return rng.standard_normal(shape)


def write_chunked_npy(
    path: str,
    shape: tuple[int, ...],
    chunk_bytes: int,
    seed: int,
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray] = _standard_normal,
    *,
    dtype: np.dtype | type = np.float64,
    progress: TextIO | None = None,
) -> None:
    """Write a .npy file of ``shape`` whose values ``draw`` makes, a chunk of rows at a time.

    The whole array is never in memory: the file is a memory map that receives one
    chunk of axis-0 rows after the other, each ``draw(rng, chunk_shape)`` with one
    ``numpy.random.default_rng(seed)``. A ``draw`` that takes its values from ``rng``
    in C order (as its ``standard_normal`` does) writes the same file for every
    ``chunk_bytes``.

    The data go to a temporary file beside ``path``, renamed to ``path`` once whole:
    an error, Ctrl-C or a signal raised as an exception removes it, and a reader never
    sees a partial file (whose unwritten rows would read as zeros).

    Parameters
    ----------
    path : str
        The .npy file to write; replaced if it exists.
    shape : tuple of int
        The array's shape, at least one axis.
    chunk_bytes : int
        About the bytes of one chunk: as many whole rows as fit, at least one.
    seed : int
        The seed of the random generator handed to ``draw``.
    draw : callable, optional
        ``draw(rng, chunk_shape)``: the values of one chunk (default: standard normal).
    dtype : data-type, optional
        The file's dtype (default float64); ``draw``'s values are cast to it.
    progress : file, optional
        Where to show ``writing PATH: NN%`` on one line, ended by a newline whether
        the writing ends or fails (default: nowhere).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = os.path.join(directory, "x.npy")
    ...     write_chunked_npy(path, (5, 3), chunk_bytes=24, seed=0)
    ...     x = np.load(path)
    >>> x.shape, x.dtype
    ((5, 3), dtype('float64'))
    >>> bool(np.all(x == np.random.default_rng(0).standard_normal((5, 3))))
    True
    """
    dtype = np.dtype(dtype)
    rows, row_shape = shape[0], tuple(shape[1:])
    row_bytes = max(1, dtype.itemsize * int(np.prod(row_shape, dtype=np.int64)))
    chunk_rows = max(1, chunk_bytes // row_bytes)
    rng = np.random.default_rng(seed)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    out = None
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
        try:
            for start in range(0, rows, chunk_rows):
                stop = min(rows, start + chunk_rows)
                out[start:stop] = draw(rng, (stop - start, *row_shape))
                if progress is not None:
                    print(f"\rwriting {path}: {100 * stop // rows:3d}%", end="", file=progress,
                          flush=True)
        finally:  # the progress line ends before anything else is said, interrupted or not
            if progress is not None:
                print(file=progress)
        out.flush()
        out = None  # closes the map: Windows renames or removes no file that is mapped
        os.replace(tmp, path)
    except BaseException:  # a full disk, and Ctrl-C or SIGTERM raised as an exception too
        out = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
