"""Tests of the ``lsearray`` command line: ``reduce`` and ``demo``, in-process and as ``python -m``."""

import argparse
import collections
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lsearray
from lsearray import _cli
from lsearray._cli import main

__all__ = []

HAVE_ZARR = importlib.util.find_spec("zarr") is not None
needs_zarr = pytest.mark.skipif(not HAVE_ZARR, reason="zarr is not installed")
needs_dask = pytest.mark.skipif(importlib.util.find_spec("dask") is None,
                                reason="dask is not installed")
needs_distributed = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                       reason="distributed is not installed")
# Windows has no SIGHUP, and a child gets no SIGINT from send_signal: Ctrl-C is a console event there.
posix_signals = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
FORMATS = ["npy", pytest.param("zarr", marks=needs_zarr)]


def run_module(*args, cwd):
    """``python -m lsearray ARGS`` in ``cwd``: the completed process."""
    return subprocess.run([sys.executable, "-m", "lsearray", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def tree_digest(path):
    """A digest of a file's bytes, or of every file under a directory."""
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, files in os.walk(path) for f in files)
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.relpath(p, path).encode())
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def assert_one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lsearray: error: "), err
    assert "Traceback" not in err


def messages(err):
    """The lines of ``err`` less progress lines (dask's bar, the demo's "writing ...: 40%"),
    which are redrawn after carriage returns."""
    return [line for line in err.splitlines()
            if line.strip() and "% Completed" not in line and not line.endswith("%")]


def write_zarr(path, x, **kwargs):
    """``x`` as a zarr store at ``path`` in chunks of (16, 8)."""
    import zarr

    z = zarr.create_array(store=str(path), shape=x.shape, chunks=(16, 8), dtype=x.dtype,
                          **kwargs)
    z[:] = x


@pytest.fixture
def data(tmp_path):
    """x (40, 30) and weights w (30,) as .npy files, and x as a .zarr store where zarr is
    installed."""
    rng = np.random.default_rng(7)
    x = 3 * rng.standard_normal((40, 30))
    w = rng.random(30) + 0.1
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    if HAVE_ZARR:
        write_zarr(tmp_path / "x.zarr", x)
    return {"x": x, "w": w, "dir": tmp_path, "npy": str(tmp_path / "x.npy"),
            "wnpy": str(tmp_path / "w.npy"), "zarr": str(tmp_path / "x.zarr")}


def reduce_to_array(data, capsys, *args, fmt="npy"):
    """``main(["reduce", INPUT, *args, "--out", OUT])``: the array written to OUT."""
    out = data["dir"] / "out.npy"
    status = main(["reduce", data[fmt], *args, "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"input       {data[fmt]}" in captured.out
    return np.load(out)


CASES = [
    ([], lambda x, w: lsearray.logsumexp(x)),
    (["--mean"], lambda x, w: lsearray.logmeanexp(x)),
    (["--weights", "W"], lambda x, w: lsearray.logsumexp(x, b=w)),
    (["--axis", "0", "--axis", "1"], lambda x, w: lsearray.logsumexp(x, axis=(0, 1))),
    (["--axis", "1", "--keepdims"], lambda x, w: lsearray.logsumexp(x, axis=1, keepdims=True)),
    (["--temperature", "2.5", "--axis", "0"],
     lambda x, w: lsearray.logsumexp(x, axis=0, temperature=2.5)),
    (["--mean", "--weights", "W", "--axis", "-1"],
     lambda x, w: lsearray.logmeanexp(x, axis=-1, b=w)),
    (["--chunks", "7,5", "--split-every", "2", "--axis", "0"],
     lambda x, w: lsearray.logsumexp(x, axis=0)),
    (["--chunks", "1KB", "--keepdims"], lambda x, w: lsearray.logsumexp(x, keepdims=True)),
]


@needs_dask
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("args", "expected"), CASES, ids=lambda v: " ".join(v) if
                         isinstance(v, list) else "")
def test_reduce_matches_library(data, capsys, fmt, args, expected):
    args = [data["wnpy"] if a == "W" else a for a in args]
    got = reduce_to_array(data, capsys, *args, fmt=fmt)
    want = np.asarray(expected(data["x"], data["w"]))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


@needs_dask
@needs_zarr
def test_zarr_weights(data, capsys):
    got = reduce_to_array(data, capsys, "--weights", data["zarr"], "--axis", "0")
    np.testing.assert_allclose(got, lsearray.logsumexp(data["x"], axis=0, b=data["x"]),
                               rtol=1e-12)


def fields_of(out):
    """The summary's ``key value`` lines as a dict (the first word is the key)."""
    return {key: value.strip() for key, value in
            (line.split(None, 1) for line in out.splitlines() if " " in line)}


@needs_dask
def test_summary_shows_small_result(data, capsys):
    assert main(["reduce", data["npy"]]) == 0
    fields = fields_of(capsys.readouterr().out)
    assert float(fields["result"]) == pytest.approx(lsearray.logsumexp(data["x"]), rel=1e-14)
    assert fields["shape"] == "(40, 30)"
    assert fields["dtype"] == "float64"
    assert fields["axes"] == "(0, 1)"
    assert "GB/s" in fields["throughput"] and fields["wall"].endswith(" s")
    assert re.fullmatch(r"lsecore (avx512|generic) loops, (\d+ OpenMP threads|1 thread \(built without "
                        r"OpenMP\))", fields["kernel"]), fields["kernel"]


@needs_dask
@needs_zarr
def test_summary_shows_stats_of_large_result(data, capsys):
    assert main(["reduce", data["zarr"], "--axis", "0"]) == 0
    out = capsys.readouterr().out
    want = lsearray.logsumexp(data["x"], axis=0)
    assert f"shape (30,), min {want.min():.10g}, mean {want.mean():.10g}" in out
    assert "chunks      (16, 8) x 12" in out


@needs_dask
def test_subprocess_reduce(data):
    before = tree_digest(data["npy"])
    proc = run_module("reduce", "x.npy", "--axis", "1", "--out", "r.npy", cwd=data["dir"])
    assert proc.returncode == 0, proc.stderr
    assert "Completed" in proc.stderr  # the progress bar
    np.testing.assert_allclose(np.load(data["dir"] / "r.npy"),
                               lsearray.logsumexp(data["x"], axis=1), rtol=1e-12)
    assert tree_digest(data["npy"]) == before


@needs_dask
@pytest.mark.parametrize("fmt", FORMATS)
def test_inputs_are_never_written(data, capsys, fmt):
    paths = [data[fmt], data["wnpy"]]
    before = [tree_digest(p) for p in paths]
    assert main(["reduce", data[fmt], "--weights", data["wnpy"], "--mean"]) == 0
    capsys.readouterr()
    assert main(["reduce", data[fmt], "--out", data[fmt], "--force"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert [tree_digest(p) for p in paths] == before


@needs_dask
def test_out_is_not_overwritten_without_force(data, capsys):
    listing = os.listdir(data["dir"])
    out = data["dir"] / "out.npy"
    out.write_bytes(b"precious")
    assert main(["reduce", data["npy"], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "--force" in err
    assert out.read_bytes() == b"precious"

    assert main(["reduce", data["npy"], "--axis", "0", "--out", str(out), "--force"]) == 0
    np.testing.assert_allclose(np.load(out), lsearray.logsumexp(data["x"], axis=0), rtol=1e-12)
    assert sorted(os.listdir(data["dir"])) == sorted([*listing, "out.npy"])


def _bad_inputs(data):
    """name -> argv after ``reduce`` that must fail with status 2."""
    d = data["dir"]
    (d / "table.csv").write_text("1,2,3\n")
    (d / "fake.npy").write_text("not an array")
    (d / "short.npy").write_bytes((d / "x.npy").read_bytes()[:20])
    np.save(d / "w7.npy", np.ones(7))
    os.mkdir(d / "empty.zarr")
    return {
        "missing file": [str(d / "missing.npy")],
        "missing store": [str(d / "missing.zarr")],
        "unsupported format": [str(d / "table.csv")],
        "not a .npy": [str(d / "fake.npy")],
        "truncated .npy": [str(d / "short.npy")],
        "empty store": [str(d / "empty.zarr")],
        "missing weights": [data["npy"], "--weights", str(d / "nope.npy")],
        "chunks not a spec": [data["npy"], "--chunks", "lots"],
        "chunks per axis count": [data["npy"], "--chunks", "5,5,5"],
        "chunks zero": [data["npy"], "--chunks", "0,5"],
        "axis out of range": [data["npy"], "--axis", "2"],
        "negative axis out of range": [data["npy"], "--axis", "-3"],
        "repeated axis": [data["npy"], "--axis", "1", "--axis", "-1"],
        "weights do not broadcast": [data["npy"], "--weights", str(d / "w7.npy")],
        "negative temperature": [data["npy"], "--temperature", "-1"],
        "zero temperature": [data["npy"], "--temperature", "0"],
        "nan temperature": [data["npy"], "--temperature", "nan"],
        "inf temperature": [data["npy"], "--temperature", "inf"],
        "temperature not a number": [data["npy"], "--temperature", "hot"],
        "split-every 1": [data["npy"], "--split-every", "1"],
        "out directory missing": [data["npy"], "--out", str(d / "no" / "such.npy")],
        "no input": [],
    }


BAD = ["missing file", "missing store", "unsupported format", "not a .npy", "truncated .npy",
       "empty store", "missing weights", "chunks not a spec", "chunks per axis count",
       "chunks zero", "axis out of range", "negative axis out of range", "repeated axis",
       "weights do not broadcast", "negative temperature", "zero temperature", "nan temperature",
       "inf temperature", "temperature not a number", "split-every 1", "out directory missing",
       "no input"]


@needs_dask
@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_status_2(data, capsys, case):
    argv = _bad_inputs(data)[case]
    if "--out" not in argv:
        argv = [*argv, "--out", str(data["dir"] / "out.npy")]
    listing = sorted(os.listdir(data["dir"]))
    digest = tree_digest(data["npy"])
    assert main(["reduce", *argv]) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err)
    assert captured.out == ""
    assert sorted(os.listdir(data["dir"])) == listing
    assert tree_digest(data["npy"]) == digest


@needs_dask
@pytest.mark.parametrize("argv", [["reduce", "missing.npy"],
                                  ["reduce", "x.npy", "--temperature", "-2"],
                                  ["reduce", "x.npy", "--bogus"],
                                  []])
def test_bad_input_exit_status_in_a_process(data, argv):
    proc = run_module(*argv, cwd=data["dir"])
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr)


@needs_distributed
def test_unreachable_scheduler_fails_fast(data):
    start = time.monotonic()
    proc = run_module("reduce", "x.npy", "--scheduler", "tcp://127.0.0.1:9", "--out", "o.npy",
                      cwd=data["dir"])
    assert time.monotonic() - start < 15
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr)
    assert "tcp://127.0.0.1:9" in proc.stderr
    assert not (data["dir"] / "o.npy").exists()


@needs_dask
def test_demo_cleans_up(tmp_path):
    proc = run_module("demo", "--size", "2MB", "--chunk", "500KB", "--dir", tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "250 x 1000 float64, 2.00 MB" in out
    assert out.count("GB/s, peak memory") == 3
    assert "one pass" in out and "two pass" in out and "tracemalloc" in out
    assert "results agree (rtol 1e-10)" in out
    assert os.listdir(tmp_path) == []


@needs_dask
def test_demo_keep(tmp_path, capsys):
    assert main(["demo", "--size", "1MB", "--chunk", "100KB", "--dir", str(tmp_path), "--keep"]) == 0
    out = capsys.readouterr().out
    (workdir,) = os.listdir(tmp_path)
    x = np.load(tmp_path / workdir / "loglik.npy")
    assert x.shape == (125, 1000) and x.dtype == np.float64
    assert np.all(x <= -0.5 * np.log(2 * np.pi))
    result = next(line for line in out.splitlines() if "result" in line)
    assert float(result.split()[-1]) == pytest.approx(lsearray.logsumexp(x), rel=1e-12)
    assert "results agree" in out


@needs_dask
@pytest.mark.parametrize("argv", [["demo", "--size", "2XB"], ["demo", "--chunk", "0MB"],
                                  ["demo", "--size", "1MB", "--dir", "/nonexistent/lsearray"]])
def test_demo_bad_input(argv, capsys):
    assert main(argv) == 2
    assert_one_error_line(capsys.readouterr().err)


def test_without_dask_one_clear_line(monkeypatch, capsys):
    """Installed without the [dask] extra, the command line says what to install."""
    import importlib.util

    from lsearray._cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "dask" else real(name, *a))
    assert main(["demo", "--size", "2MB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lsearray: error:") and "lsearray[dask]" in err[0]


# ---------------------------------------------------------------------------------------------
# data in the other byte order (a big-endian file on a little-endian machine)


def swapped(dtype):
    """``dtype`` in the byte order this machine does not use."""
    return np.dtype(dtype).newbyteorder("S")


@needs_dask
@pytest.mark.parametrize("args", [["--axis", "-1"], ["--mean", "--weights", "W"]])
def test_other_byte_order_gives_the_native_answer(data, capsys, args):
    d = data["dir"]
    np.save(d / "xo.npy", data["x"].astype(swapped(np.float64)))
    np.save(d / "wo.npy", data["w"].astype(swapped(np.float64)))
    results = []
    for x, w in ((data["npy"], data["wnpy"]), (str(d / "xo.npy"), str(d / "wo.npy"))):
        out = str(d / f"r{len(results)}.npy")
        assert main(["reduce", x, *[w if a == "W" else a for a in args], "--out", out]) == 0
        results.append(np.load(out))
    order = "big" if swapped(np.float64).byteorder == ">" else "little"
    assert fields_of(capsys.readouterr().out)["dtype"] == f"float64, {order}-endian"
    native, other = results
    assert other.dtype.isnative
    np.testing.assert_array_equal(other, native)


@needs_dask
@needs_zarr
def test_other_byte_order_zarr_store(data):
    store, out = str(data["dir"] / "xo.zarr"), str(data["dir"] / "out.npy")
    write_zarr(store, data["x"].astype(swapped(np.float64)), zarr_format=2)
    assert main(["reduce", store, "--axis", "0", "--out", out]) == 0
    np.testing.assert_allclose(np.load(out), lsearray.logsumexp(data["x"], axis=0), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM: status 128 + the signal, one line on stderr, nothing left behind

# Runs main(ARGV) with one stage of the run slowed down: it says PAUSED on stdout and
# waits, so that a signal sent on reading PAUSED arrives in that stage.
_PAUSING = """
import sys, time
import numpy as np
from lsearray import _cli

stage, *argv = sys.argv[1:]

def pause(seconds):
    print("PAUSED", flush=True)
    time.sleep(seconds)

def paused(func):
    def wrapper(*args, **kwargs):
        pause(0.5)
        return func(*args, **kwargs)
    return wrapper

def half_save(f, result):
    f.write(b"half an array")
    f.flush()
    pause(30)

if stage == "open":  # opening the inputs, before the summary
    _cli._open_inputs = paused(_cli._open_inputs)
elif stage == "compute":  # each chunk read by a worker thread, the main thread waiting
    _cli._NpyFile.__getitem__ = paused(_cli._NpyFile.__getitem__)
elif stage == "write":  # the temporary OUT half written
    np.save = half_save
sys.exit(_cli.main(argv))
"""

_SIGNAL_LINES = {signal.SIGINT: "lsearray: interrupted",
                 signal.SIGTERM: "lsearray: terminated by SIGTERM"}


def signalled(argv, signum, cwd, after, delay=0.0, before=lambda: None):
    """Start ``argv`` (python's arguments) in ``cwd``; ``delay`` seconds after stdout shows
    a line that starts with ``after``, call ``before`` and send ``signum``: the completed
    process."""
    proc = subprocess.Popen([sys.executable, *map(str, argv)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in proc.stdout:
            if line.startswith(after):
                break
        time.sleep(delay)
        before()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_signal_handled(proc, signum):
    """The process ended as the signal asks: status 128 + signum, one line, no traceback."""
    assert proc.returncode == 128 + signum, proc.stderr
    assert "Traceback" not in proc.stderr
    assert messages(proc.stderr) == [_SIGNAL_LINES[signum]], proc.stderr


@posix_signals
@needs_dask
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["open", "compute", "write"])
def test_signal_at_each_stage_leaves_nothing_behind(data, stage, signum):
    listing = sorted(os.listdir(data["dir"]))
    argv = ["-c", _PAUSING, stage, "reduce", "x.npy", "--chunks", "1,30", "--axis", "1",
            "--out", "r.npy"]
    signalled_in = []
    proc = signalled(argv, signum, data["dir"], after="PAUSED",
                     before=lambda: signalled_in.append(os.listdir(data["dir"])))
    assert_signal_handled(proc, signum)
    if stage == "write":
        assert any(name.endswith(".tmp") for name in signalled_in[0]), signalled_in
    assert sorted(os.listdir(data["dir"])) == listing


@posix_signals
@needs_dask
@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_ctrl_c_while_reducing(tmp_path, delay):
    """A real run, its compute long enough (10000 chunks) to be interrupted."""
    np.save(tmp_path / "big.npy", np.zeros((10000, 10)))
    argv = ["-m", "lsearray", "reduce", "big.npy", "--chunks", "1,10", "--axis", "1",
            "--out", "r.npy"]
    proc = signalled(argv, signal.SIGINT, tmp_path, after="axes", delay=delay)
    assert_signal_handled(proc, signal.SIGINT)
    assert os.listdir(tmp_path) == ["big.npy"]
    assert "result" not in proc.stdout


@posix_signals
@needs_dask
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("keep", [[], ["--keep"]], ids=["", "keep"])
@pytest.mark.parametrize("again", [None, signal.SIGTERM], ids=["once", "then-SIGTERM"])
def test_demo_removes_its_data_on_a_signal(tmp_path, signum, keep, again):
    """Stopped while writing, the demo leaves nothing, even with --keep (its data would be
    partial); a second signal at once cannot cut its clean-up short."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsearray", "demo", "--size", "200MB", "--chunk", "1MB",
         "--dir", str(tmp_path), *keep], cwd=tmp_path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(True for d in tmp_path.iterdir() for _ in d.iterdir()):  # writing began
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signum)
        if again is not None:
            proc.send_signal(again)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert_signal_handled(subprocess.CompletedProcess(proc.args, proc.returncode, "", err),
                          signum)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# the demo's size


DiskUsage = collections.namedtuple("DiskUsage", "total used free")


@needs_dask
def test_demo_refuses_a_size_beyond_the_free_space(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 95 * 10**10,
                                                                     5 * 10**10))
    monkeypatch.setattr(_cli, "write_chunked_npy",
                        lambda *args, **kwargs: pytest.fail("began writing"))
    assert main(["demo", "--size", "5TB", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "needs 5.00 TB" in err and "50.00 GB is free" in err and str(tmp_path) in err
    assert os.listdir(tmp_path) == []


@needs_dask
def test_demo_refuses_a_size_no_disk_has(tmp_path, capsys):
    assert main(["demo", "--size", "1000000TB", "--dir", str(tmp_path)]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("text", "nbytes"), [
    ("1500", 1500), ("1500B", 1500), ("64MB", 64 * 10**6), ("200M", 200 * 10**6),
    ("2G", 2 * 10**9), ("2GB", 2 * 10**9), ("2 gb", 2 * 10**9), ("1.5TB", 15 * 10**11),
    ("500KB", 500_000), ("2GiB", 2 * 2**30), ("64MiB", 64 * 2**20), ("3Ki", 3 * 1024),
])
def test_sizes(text, nbytes):
    assert _cli._nbytes(text) == nbytes


@pytest.mark.parametrize("text", ["2XB", "0MB", "2iB", "GB", "-1GB", "", "2 G B", "2GiBB"])
def test_sizes_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a"):
        _cli._nbytes(text)


def test_help_documents_the_sizes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "200M" in help_text and "powers of 1000" in help_text and "GiB" in help_text


# ---------------------------------------------------------------------------------------------
# what reduce says, and when


@needs_dask
def test_summary_header_comes_before_the_compute(data, capsys, monkeypatch):
    seen = []
    compute = _cli._compute

    def watched(x, client):
        seen.append(capsys.readouterr().out)
        return compute(x, client)

    monkeypatch.setattr(_cli, "_compute", watched)
    assert main(["reduce", data["npy"], "--axis", "1"]) == 0
    (header,) = seen
    fields = fields_of(header)
    assert fields["input"] == data["npy"] and fields["shape"] == "(40, 30)"
    assert fields["dtype"] == "float64" and "x" in fields["chunks"]
    assert "result" not in fields
    assert "result" in fields_of(capsys.readouterr().out)


@needs_dask
@pytest.mark.parametrize("values", [np.array(["a", "bb"]), np.array(["2024-06-01"], "M8[D]"),
                                    np.zeros(3, [("a", "f8")]), np.ones(3, np.longdouble)],
                         ids=["strings", "dates", "records", "longdouble"])
@pytest.mark.parametrize("role", ["input", "weights"])
def test_unsupported_dtype_names_the_file(data, capsys, values, role):
    if values.dtype == np.longdouble and values.dtype.itemsize == 8:
        pytest.skip("long double is float64 here")
    path = str(data["dir"] / "odd.npy")
    np.save(path, values)
    argv = [path] if role == "input" else [data["npy"], "--weights", path]
    assert main(["reduce", *argv]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert f"{path}: dtype {values.dtype}" in err


@needs_dask
@pytest.mark.parametrize("zarr_installed", [True, False])
def test_directory_that_is_no_store(data, capsys, monkeypatch, zarr_installed):
    if not zarr_installed:
        monkeypatch.setitem(sys.modules, "zarr", None)
    plain = data["dir"] / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not an array")
    assert main(["reduce", str(plain)]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert f"{plain}: not a .npy file or a zarr store" in err


@needs_dask
@needs_zarr
def test_store_without_zarr_says_what_to_install(data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    assert main(["reduce", data["zarr"]]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "needs zarr: pip install zarr" in err


@needs_dask
@needs_zarr
def test_zarr_group_names_its_arrays(data, capsys):
    import zarr

    group = zarr.open_group(str(data["dir"] / "g.zarr"), mode="w")
    group.create_array("loglik", shape=(3,), dtype="f8")
    assert main(["reduce", str(data["dir"] / "g.zarr")]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "a zarr group, not an array" in err and "loglik" in err


@needs_dask
def test_without_distributed_scheduler_says_what_to_install(data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["reduce", data["npy"], "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "pip install 'lsearray[dask]'" in err


_WITHOUT_DASK = "import sys; sys.modules['dask'] = sys.modules['dask.array'] = None; "


def test_without_dask_the_library_and_the_command_line_say_the_same():
    library = subprocess.run([sys.executable, "-c", _WITHOUT_DASK + "import lsearray.dask"],
                             capture_output=True, text=True, timeout=60)
    command = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DASK + "from lsearray._cli import main; "
                                               "sys.exit(main(['demo']))"],
        capture_output=True, text=True, timeout=60)
    assert library.returncode == 1
    assert library.stderr.strip().splitlines()[-1] == (
        "ImportError: lsearray.dask needs dask: pip install 'lsearray[dask]'")
    assert command.returncode == 2
    assert_one_error_line(command.stderr)
    assert command.stderr.strip().endswith("pip install 'lsearray[dask]'")


# ---------------------------------------------------------------------------------------------
# the demo's data set: the chunked writer, shared with asv_bench/dask_from_disk.py


def test_chunked_writer_gives_the_same_file_for_every_chunk_size(tmp_path):
    from lsearray._chunked_npy import write_chunked_npy

    for chunk_bytes in (1, 1000, 10**6):
        write_chunked_npy(str(tmp_path / f"{chunk_bytes}.npy"), (7, 5, 3), chunk_bytes, 3)
    files = [np.load(tmp_path / f"{n}.npy") for n in (1, 1000, 10**6)]
    expected = np.random.default_rng(3).standard_normal((7, 5, 3))
    for x in files:
        np.testing.assert_array_equal(x, expected)
    assert sorted(os.listdir(tmp_path)) == ["1.npy", "1000.npy", "1000000.npy"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_chunked_writer_leaves_nothing_when_stopped(tmp_path, error):
    from lsearray._chunked_npy import write_chunked_npy

    calls = []

    def draw(rng, shape):
        calls.append(shape)
        if len(calls) == 2:
            raise error
        return rng.standard_normal(shape)

    with pytest.raises(type(error)):
        write_chunked_npy(str(tmp_path / "x.npy"), (10, 4), 32, 0, draw)
    assert calls == [(1, 4), (1, 4)]
    assert os.listdir(tmp_path) == []


def test_the_command_line_uses_the_public_api():
    """No lsecore and no private lsearray module but the demo's writer: the command line
    reaches the kernel only through lsearray and lsearray.dask."""
    import ast

    tree = ast.parse(open(_cli.__file__, encoding="utf-8").read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    ours = sorted(name for name in imported if name.split(".")[0] in ("lsearray", "lsecore"))
    assert ours == ["lsearray", "lsearray._chunked_npy", "lsearray.dask"]


# ---------------------------------------------------------------------------------------------
# --version


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    try:
        installed = importlib.metadata.version("lsearray")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("lsearray is imported from a source tree that is not installed")
    assert capsys.readouterr().out == f"lsearray {installed}\n"
