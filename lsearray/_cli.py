"""The ``lsearray`` command line: ``reduce`` a .npy file or .zarr store by chunks, or run the ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import numpy as np

from lsearray import __version__
from lsearray._chunked_npy import write_chunked_npy

__all__ = ["main"]

_NPY_MAGIC = b"\x93NUMPY"
_PREFIXES = "KMGT"  # kilo to tera: powers of 1000, or of 1024 with an i (KiB to TiB)
# The metadata of an array or group in a zarr store: zarr formats 2 and 3.
_ZARR_FILES = (".zarray", ".zgroup", "zarr.json")
_DEMO_COLUMNS = 1000
_DEMO_SEED = 20240601
_RTOL = 1e-10


class CommandError(Exception):
    """A problem with what the command was given: reported as one line, exit status 2."""


def _not_an_input(path: str) -> CommandError:
    """``path`` exists but is neither a .npy file nor a zarr store."""
    return CommandError(f"{path}: not a .npy file or a zarr store")


def _unreadable(path: str, exc: Exception) -> CommandError:
    """Reading ``path`` failed with ``exc``."""
    return CommandError(f"cannot read {path}: {exc}")


def _unwritable(path: str, exc: Exception) -> CommandError:
    """Writing ``path`` failed with ``exc``."""
    return CommandError(f"cannot write {path}: {exc}")


def _no_workdir(parent: str, exc: Exception) -> CommandError:
    """The demo's directory in ``parent`` could not be made (or its room not known)."""
    return CommandError(f"cannot create a directory in {parent}: {exc}")


_STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")


class _Terminated(BaseException):
    """SIGTERM (or SIGHUP) received: raised in the main thread so that, as on Ctrl-C,
    cleanups run on the way out.

    Parameters
    ----------
    signum : int
        The signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors become `CommandError`."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


class _NpyFile:
    """A .npy file read through a read-only memory map.

    Slicing returns views of the map, so a chunk is read from the file when it is
    used; pickling keeps only the path, so a cluster's workers open the file
    themselves rather than receive its bytes.

    Parameters
    ----------
    path : str
        The .npy file (kept as an absolute path).
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._mm = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = self._mm.shape, self._mm.dtype, self._mm.ndim

    def __getitem__(self, index: Any) -> np.ndarray:
        return self._mm[index]

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (_NpyFile, (self.path,))


def _nbytes(text: str) -> int:
    """A positive size such as ``2GB``, ``200M``, ``1500`` (bytes) or ``2GiB``.

    K, M, G and T are powers of 1000; Ki, Mi, Gi and Ti powers of 1024; the final B
    is optional.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(?:([KMGT])(i?))?B?\s*", text,
                         flags=re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 2GB, 200M, 2GiB or 1500; got {text!r}")
    prefix, binary = match[2], match[3]
    power = 0 if prefix is None else _PREFIXES.index(prefix.upper()) + 1
    size = int(float(match[1]) * (1024 if binary else 1000) ** power)
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size; got {text!r}")
    return size


def _fan_in(text: str) -> int:
    """A tree reduction's fan-in: an integer of at least 2."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2; got {text!r}")
    return value


def _chunks(spec: str, ndim: int) -> Any:
    """The ``chunks`` argument of `dask.array.from_array` for a ``--chunks`` spec.

    ``auto``; a size such as ``100MB``; one chunk length for every axis (``1000``);
    or one per axis (``1000,500``), each a positive integer, ``-1`` (the whole axis)
    or ``auto``.
    """
    from dask.utils import parse_bytes

    text = spec.strip()
    if text == "auto":
        return text
    if "," not in text and not re.fullmatch(r"-?\d+", text):
        try:
            if parse_bytes(text) > 0:
                return text
        except ValueError:
            pass
        raise CommandError(
            f"--chunks expects auto, a size such as 100MB, or chunk lengths such as 1000,500; "
            f"got {spec!r}"
        )
    lengths = [part.strip() for part in text.split(",")]
    if len(lengths) > 1 and len(lengths) != ndim:
        raise CommandError(
            f"--chunks {spec!r} gives {len(lengths)} chunk lengths for an array with {ndim} "
            f"dimensions"
        )
    if not all(n == "auto" or re.fullmatch(r"[1-9]\d*|-1", n) for n in lengths):
        raise CommandError(
            f"--chunks expects chunk lengths that are positive integers, -1 or auto; got {spec!r}"
        )
    parsed = tuple(n if n == "auto" else int(n) for n in lengths)
    return parsed if "," in text else parsed[0]


def _zarr_array(path: str) -> Any:
    """The array in the zarr store at directory ``path``, opened read-only."""
    if not any(os.path.isfile(os.path.join(path, name)) for name in _ZARR_FILES):
        raise _not_an_input(path)
    try:
        import zarr
    except ImportError:
        raise CommandError(f"{path}: reading a zarr store needs zarr: pip install zarr") from None
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:  # zarr's errors for a damaged store are of many kinds
        raise _unreadable(path, exc) from None
    if isinstance(node, zarr.Group):
        arrays = ", ".join(sorted(node.array_keys())) or "none"
        raise CommandError(f"{path}: a zarr group, not an array; name one of its arrays "
                           f"as {os.path.join(path, 'NAME')} (arrays here: {arrays})")
    return node


def _npy_file(path: str) -> _NpyFile:
    """The .npy file at ``path``, memory-mapped."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
        if magic != _NPY_MAGIC:
            raise _not_an_input(path)
        return _NpyFile(path)
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


def _check_dtype(path: str, dtype: np.dtype) -> None:
    """Refuse data that lsearray does not reduce, naming the file rather than a parameter."""
    if dtype.kind not in "biufc":
        raise CommandError(
            f"{path}: dtype {dtype} is not numeric; expected bool, integer, floating or complex "
            f"values"
        )
    if dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16):
        raise CommandError(f"{path}: dtype {dtype} is wider than lsearray computes in (64-bit "
                           f"floating point); convert it to float64 first")


def _source(path: str) -> Any:
    """The array-like in a .npy file (memory-mapped) or a zarr store (opened read-only)."""
    if not os.path.exists(path):
        raise CommandError(f"{path}: no such file or directory")
    source = _zarr_array(path) if os.path.isdir(path) else _npy_file(path)
    _check_dtype(path, np.dtype(source.dtype))
    return source


def _as_dask(source: Any, chunks: Any, spec: str) -> Any:
    """``source`` as a dask array of ``chunks`` (None: a store's own); ``spec`` names them
    in errors."""
    import dask.array as da

    try:
        if isinstance(source, _NpyFile):
            return da.from_array(source, chunks=chunks)
        return da.from_zarr(source, chunks=chunks)
    except ValueError as exc:
        raise CommandError(f"--chunks {spec!r} does not fit shape {source.shape}: {exc}") from None


def _weight_chunks(shape: tuple[int, ...], a: Any) -> tuple[Any, ...]:
    """Chunks for weights of ``shape`` that line up with ``a``'s where they broadcast."""
    chunks = []
    for i, n in enumerate(shape):
        j = a.ndim - len(shape) + i
        chunks.append(a.chunks[j] if j >= 0 and n == a.shape[j] else 1 if n == 1 else "auto")
    return tuple(chunks)


def _open_inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    """INPUT and the weights (or None) as dask arrays."""
    source = _source(args.input)
    is_npy = isinstance(source, _NpyFile)
    spec = args.chunks if args.chunks is not None else "auto" if is_npy else None
    a = _as_dask(source, None if spec is None else _chunks(spec, source.ndim), str(spec))
    if args.weights is None:
        return a, None
    weights = _source(args.weights)
    try:
        np.broadcast_shapes(weights.shape, a.shape)
    except ValueError:
        raise CommandError(
            f"--weights with shape {weights.shape} does not broadcast against INPUT with shape "
            f"{a.shape}"
        ) from None
    return a, _as_dask(weights, _weight_chunks(weights.shape, a), "auto")


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an OUT that exists (without --force), is an input, or has no directory."""
    out = args.out
    inputs = [p for p in (args.input, args.weights) if p is not None]
    if any(os.path.realpath(out) == os.path.realpath(p) for p in inputs):
        raise CommandError(f"--out {out} would replace an input")
    if os.path.exists(out) and not args.force:
        raise CommandError(f"{out} exists; pass --force to replace it")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise CommandError(f"cannot write {out}: no directory {directory}")


def _save(path: str, result: np.ndarray) -> None:
    """Write ``result`` to ``path`` through a temporary file, so it is whole or absent."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        f = open(tmp, "xb")  # exclusive: another run's temporary is never taken over
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with f:
            np.save(f, result)
        os.replace(tmp, path)
    except BaseException as exc:  # a full disk, and Ctrl-C or SIGTERM too, leave nothing behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from None
        raise


@contextlib.contextmanager
def _client(address: str | None) -> Iterator[Any]:
    """A `distributed.Client` connected to ``address`` (failing within 10 s), or None."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise CommandError("--scheduler needs dask.distributed: pip install 'lsearray[dask]'") \
            from None
    try:
        client = Client(address, timeout="8s")  # with set-up, the whole refusal stays under 10 s
    except (OSError, ValueError, TypeError) as exc:
        raise CommandError(f"cannot reach the scheduler at {address}: {exc}") from None
    with client:
        yield client


def _compute(x: Any, client: Any) -> np.ndarray:
    """Compute ``x`` with a progress bar on stderr, on ``client`` or with local threads."""
    if client is None:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return np.asarray(x.compute())
    from distributed import progress

    future = client.compute(x)
    with contextlib.redirect_stdout(sys.stderr):
        progress(future)
    return np.asarray(future.result())


def _describe(result: np.ndarray) -> str:
    """The result itself when it has at most 10 elements, else its shape and range."""
    if result.size <= 10:
        return np.array2string(result, floatmode="unique", separator=", ")
    return (
        f"shape {result.shape}, min {result.min():.10g}, mean {result.mean():.10g}, "
        f"max {result.max():.10g}"
    )


def _size(nbytes: float) -> str:
    """``nbytes`` in the largest unit (powers of 1000, up to TB) that keeps it at least 1."""
    for power in range(len(_PREFIXES), 0, -1):
        if nbytes >= 1000**power:
            return f"{nbytes / 1000**power:.2f} {_PREFIXES[power - 1]}B"
    return f"{nbytes:.0f} B"


def _rate(nbytes: int, seconds: float) -> str:
    """Throughput in GB/s."""
    return f"{nbytes / 1e9 / seconds:.3g} GB/s" if seconds > 0 else "n/a"


def _dtype_name(dtype: np.dtype) -> str:
    """``float64``, or ``float64, big-endian`` for data not in the machine's byte order."""
    if dtype.isnative:
        return str(dtype)
    order = "big" if dtype.byteorder == ">" else "little"
    return f"{dtype.newbyteorder('=')}, {order}-endian"


def _kernel() -> str:
    """What the kernel runs on this machine: its SIMD loops and threads (on a cluster, the
    workers' own may differ)."""
    import lsearray

    info = lsearray.build_info()
    threads = (f"{info['max_threads']} OpenMP threads" if info["openmp"]
               else "1 thread (built without OpenMP)")
    return f"lsecore {info['simd']} loops, {threads}"


def _print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """Summary lines ``key value``, flushed: a pipe shows them as they come."""
    for key, value in fields:
        print(f"{key:<11} {value}")
    sys.stdout.flush()


def _reduce(args: argparse.Namespace) -> int:
    """``lsearray reduce``: one pass over INPUT; what it reads on stdout, then the result."""
    import lsearray.dask

    a, b = _open_inputs(args)
    if args.out is not None:
        _check_out(args)
    func = lsearray.dask.logmeanexp if args.mean else lsearray.dask.logsumexp
    axis = None if args.axis is None else tuple(args.axis)
    try:
        lazy = func(a, axis, b, args.keepdims, temperature=args.temperature,
                    split_every=args.split_every)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    axes = tuple(range(a.ndim)) if axis is None else np.lib.array_utils.normalize_axis_tuple(
        axis, max(a.ndim, 1))
    with _client(args.scheduler) as client:
        _print_fields([  # before the progress bar, so that a long run says what it does
            ("input", args.input),
            ("shape", str(a.shape)),
            ("dtype", _dtype_name(a.dtype)),
            ("chunks", f"{a.chunksize} x {a.npartitions}"),
            ("weights", "none" if b is None else f"{args.weights}, shape {b.shape}"),
            ("function", f"{func.__name__}, temperature {args.temperature:g}"
                         + (", keepdims" if args.keepdims else "")),
            ("axes", str(axes)),
            ("kernel", _kernel()),
        ])
        start = time.perf_counter()
        result = _compute(lazy, client)
        seconds = time.perf_counter() - start
    if args.out is not None:
        _save(args.out, result)
    _print_fields([
        ("result", _describe(result)),
        ("wall time", f"{seconds:.3f} s"),
        ("throughput", f"{_rate(a.nbytes, seconds)} ({_size(a.nbytes)} of input read)"),
        *([] if args.out is None else [("output", args.out)]),
    ])
    return 0


def _loglik(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal log-likelihoods ``-z**2/2 - log(sqrt(2 pi))`` of ``shape``, ``z``
    drawn from ``rng``."""
    z = rng.standard_normal(shape)
    z *= z
    z *= -0.5
    z -= 0.5 * math.log(2 * math.pi)
    return z


def _measured(x: Any) -> tuple[np.ndarray, float, int]:
    """``x`` computed by the threaded scheduler with a progress bar: the value, the
    seconds it took and the tracemalloc peak while it ran."""
    from dask.diagnostics import ProgressBar

    tracemalloc.start()
    try:
        start = time.perf_counter()
        with ProgressBar(out=sys.stderr):
            value = np.asarray(x.compute(scheduler="threads"))
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return value, seconds, peak


def _recipes(x: Any) -> list[tuple[str, str, Any]]:
    """The demo's reductions of ``x``, lazy: two in one pass, then the two-pass recipe."""
    import dask.array as da

    import lsearray.dask

    m = x.max()
    return [
        ("one pass", "lsearray.dask.logsumexp(x)", lsearray.dask.logsumexp(x)),
        ("one pass", "lsearray.dask.logsumexp(x, axis=1)", lsearray.dask.logsumexp(x, axis=1)),
        ("two pass", "m = x.max(); log(exp(x - m).sum()) + m", da.log(da.exp(x - m).sum()) + m),
    ]


def _check_space(directory: str, nbytes: int) -> None:
    """Refuse a data set of ``nbytes`` that ``directory``'s file system has no room for,
    rather than fill the disk and fail part way."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        raise _no_workdir(directory, exc) from None
    if nbytes > free:
        raise CommandError(
            f"the demo needs {_size(nbytes)} in {directory} but only {_size(free)} is free; "
            f"pass a smaller --size or a --dir with more room"
        )


def _demo(args: argparse.Namespace) -> int:
    """``lsearray demo``: write synthetic log-likelihoods, reduce them in one pass and in two."""
    import dask.array as da

    row_bytes = 8 * _DEMO_COLUMNS
    rows = max(1, args.size // row_bytes)
    chunk_rows = max(1, min(rows, args.chunk // row_bytes))
    parent = tempfile.gettempdir() if args.dir is None else args.dir
    _check_space(parent, rows * row_bytes)
    try:
        workdir = tempfile.mkdtemp(prefix="lsearray-demo-", dir=parent)
    except OSError as exc:
        raise _no_workdir(parent, exc) from None
    kept = False
    try:
        path = os.path.join(workdir, "loglik.npy")
        start = time.perf_counter()
        write_chunked_npy(path, (rows, _DEMO_COLUMNS), chunk_rows * row_bytes, _DEMO_SEED,
                          _loglik, progress=sys.stderr)
        nbytes = rows * row_bytes
        print(f"data        {path}: {rows} x {_DEMO_COLUMNS} float64, {_size(nbytes)}, "
              f"written in {time.perf_counter() - start:.2f} s")
        x = da.from_array(_NpyFile(path), chunks=(chunk_rows, _DEMO_COLUMNS))
        print(f"chunks      {x.chunksize} x {x.npartitions} ({_size(chunk_rows * row_bytes)} each)")
        print(f"kernel      {_kernel()}")
        for _, _, lazy in _recipes(x[:1]):  # imports and thread start-up, outside the timings
            lazy.compute(scheduler="threads")
        measured = []
        for label, expression, lazy in _recipes(x):
            value, seconds, peak = _measured(lazy)
            measured.append((value, seconds, peak))
            print(f"{label:<11} {expression}\n{'':<11} result {_describe(value)}\n"
                  f"{'':<11} {seconds:.3f} s, {_rate(nbytes, seconds)}, peak memory {_size(peak)}")
        print("peak memory: tracemalloc peak around each compute() on the threaded scheduler "
              "(numpy's allocations are traced; the memory-mapped file's pages are not)")
        (one, one_s, one_peak), _, (two, two_s, two_peak) = measured
        print(f"two pass / one pass: {two_s / one_s:.2f}x the time, "
              f"{two_peak / max(one_peak, 1):.1f}x the peak memory")
        agree = bool(np.allclose(one, two, rtol=_RTOL, atol=0))
        print(f"results {'agree' if agree else 'differ'} (rtol {_RTOL:g}): "
              f"{_describe(one)} and {_describe(two)}")
        kept = args.keep
        if kept:
            print(f"kept        {path}")
        return 0 if agree else 1
    finally:
        if not kept:  # --keep keeps only a data set that was written whole and reduced
            shutil.rmtree(workdir, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    """The ``lsearray`` argument parser."""
    parser = _Parser(prog="lsearray", description="Log-sum-exp of arrays larger than memory.")
    parser.add_argument("--version", action="version", version=f"lsearray {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reduce = commands.add_parser(
        "reduce", help="logsumexp (or logmeanexp) of a .npy file or .zarr store, by chunks",
        description="Reduce INPUT in one pass over its chunks and print a summary.")
    reduce.add_argument("input", metavar="INPUT", help="a .npy file or a .zarr store")
    reduce.add_argument("--axis", type=int, action="append", metavar="A",
                        help="an axis to reduce; repeat for several (default: all)")
    reduce.add_argument("--temperature", type=float, default=1.0, metavar="T",
                        help="temperature, finite and at least 2.2e-308 (default: 1)")
    reduce.add_argument("--weights", metavar="W",
                        help="weights b (a .npy file or .zarr store) broadcast against INPUT")
    reduce.add_argument("--keepdims", action="store_true", help="keep reduced axes as size 1")
    reduce.add_argument("--mean", action="store_true", help="logmeanexp instead of logsumexp")
    reduce.add_argument("--out", metavar="OUT.npy", help="write the result to this .npy file")
    reduce.add_argument("--force", action="store_true", help="replace an existing OUT")
    reduce.add_argument("--chunks", metavar="SPEC",
                        help="auto, a size such as 100MB, or lengths such as 1000,500 "
                             "(default: auto for .npy, the store's chunks for .zarr)")
    reduce.add_argument("--scheduler", metavar="ADDRESS",
                        help="a dask.distributed scheduler, e.g. tcp://host:8786 "
                             "(default: local threads)")
    reduce.add_argument("--split-every", type=_fan_in, metavar="N",
                        help="fan-in of the tree reduction (default: dask's)")
    reduce.set_defaults(run=_reduce)

    demo = commands.add_parser(
        "demo", help="write synthetic log-likelihoods and reduce them in one pass and in two",
        description="Write a float64 .npy of synthetic log-likelihoods chunk by chunk, reduce it "
                    "with lsearray.dask.logsumexp and with the two-pass recipe, and compare.")
    demo.add_argument("--size", type=_nbytes, default=_nbytes("2GB"),
                      help="size of the data set, e.g. 2GB, 200M or 1500 (bytes); KB, MB, GB "
                           "and TB are powers of 1000, KiB, MiB, GiB and TiB of 1024 "
                           "(default: 2GB)")
    demo.add_argument("--dir", help="where to write it, in a new directory removed afterwards "
                                    "(default: the system's temporary directory)")
    demo.add_argument("--chunk", type=_nbytes, default=_nbytes("64MB"),
                      help="size of a chunk, as --size (default: 64MB)")
    demo.add_argument("--keep", action="store_true", help="keep the data set afterwards")
    demo.set_defaults(run=_demo)
    return parser


def _ignored(signum: int, frame: Any) -> None:
    """A handler that does nothing. Unlike SIG_IGN it also takes a signal that arrived
    before it was set and waits for Python to run its handler (for which SIG_IGN would
    print "Signal ... ignored due to race condition")."""


def _ignore_further_signals() -> None:
    """Ignore the stopping signals from now on: a second Ctrl-C or SIGTERM would otherwise
    interrupt the cleanups that the first one started (`_terminating_signals_raise` puts
    the handlers back)."""
    for name in _STOPPING:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _ignored)


def _raise_terminated(signum: int, frame: Any) -> NoReturn:
    """The handler of SIGTERM and SIGHUP (see `_terminating_signals_raise`)."""
    _ignore_further_signals()
    raise _Terminated(signum)


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    """The handler of SIGINT: Python's KeyboardInterrupt, once."""
    _ignore_further_signals()
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminating_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `_Terminated` in the main thread, and
    SIGINT KeyboardInterrupt; after the first, all three are ignored until the block ends.

    Their default ends the process at once, leaving the demo's data set or a temporary
    OUT behind; raised, they unwind through the cleanups as Ctrl-C does, and a second
    signal cannot cut those short. A signal that is ignored or handled already keeps its
    disposition, and so does every signal when called outside the main thread (where
    handlers cannot be set).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Windows has no SIGHUP; the first stopping signal sets them all to SIG_IGN, so all are put back
    before = {getattr(signal, n): signal.getsignal(getattr(signal, n)) for n in _STOPPING
              if hasattr(signal, n)}
    for signum, handler in before.items():
        if signum == signal.SIGINT and handler is signal.default_int_handler:
            signal.signal(signum, _raise_interrupt)
        elif signum != signal.SIGINT and handler == signal.SIG_DFL:
            signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:  # None: set outside Python, which cannot be put back
                signal.signal(signum, handler)


def _run(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its command."""
    args = _parser().parse_args(argv)
    if importlib.util.find_spec("dask") is None:
        raise CommandError("the command line needs dask: pip install 'lsearray[dask]'")
    return args.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lsearray`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 when the demo's two results differ, 2 for bad input (after
        one line on stderr that starts ``lsearray: error:``), 130 after Ctrl-C and
        128 + the signal's number after SIGTERM or SIGHUP (after one line on stderr,
        with nothing left behind).
    """
    with _terminating_signals_raise():
        try:
            return _run(argv)
        except CommandError as exc:
            print(f"lsearray: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # the cleanups have run; a traceback would say nothing more
            print("lsearray: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT  # a shell's status for a command ended by the signal
        except _Terminated as exc:
            print(f"lsearray: terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
            return 128 + exc.signum
