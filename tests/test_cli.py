"""Tests of the ``lsearray`` command line: ``reduce`` and ``demo``, in-process and as ``python -m``."""

import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import lsearray
from lsearray._cli import main

__all__ = []

zarr = pytest.importorskip("zarr")


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


@pytest.fixture
def data(tmp_path):
    """x (40, 30) and weights w (30,) as .npy files, and x as a .zarr store."""
    rng = np.random.default_rng(7)
    x = 3 * rng.standard_normal((40, 30))
    w = rng.random(30) + 0.1
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    z = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, chunks=(16, 8),
                          dtype=x.dtype)
    z[:] = x
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


@pytest.mark.parametrize("fmt", ["npy", "zarr"])
@pytest.mark.parametrize(("args", "expected"), CASES, ids=lambda v: " ".join(v) if
                         isinstance(v, list) else "")
def test_reduce_matches_library(data, capsys, fmt, args, expected):
    args = [data["wnpy"] if a == "W" else a for a in args]
    got = reduce_to_array(data, capsys, *args, fmt=fmt)
    want = np.asarray(expected(data["x"], data["w"]))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_zarr_weights(data, capsys):
    got = reduce_to_array(data, capsys, "--weights", data["zarr"], "--axis", "0")
    np.testing.assert_allclose(got, lsearray.logsumexp(data["x"], axis=0, b=data["x"]),
                               rtol=1e-12)


def test_summary_shows_small_result_and_stats_of_large_one(data, capsys):
    assert main(["reduce", data["npy"]]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
    assert float(fields["result"]) == pytest.approx(lsearray.logsumexp(data["x"]), rel=1e-14)
    assert fields["shape"].strip() == "(40, 30)"
    assert fields["dtype"].strip() == "float64"
    assert fields["axes"].strip() == "(0, 1)"
    assert "GB/s" in fields["throughput"] and fields["wall"].strip().endswith(" s")

    assert main(["reduce", data["zarr"], "--axis", "0"]) == 0
    out = capsys.readouterr().out
    want = lsearray.logsumexp(data["x"], axis=0)
    assert f"shape (30,), min {want.min():.10g}, mean {want.mean():.10g}" in out
    assert "chunks      (16, 8) x 12" in out


def test_subprocess_reduce(data):
    before = tree_digest(data["npy"])
    proc = run_module("reduce", "x.npy", "--axis", "1", "--out", "r.npy", cwd=data["dir"])
    assert proc.returncode == 0, proc.stderr
    assert "Completed" in proc.stderr  # the progress bar
    np.testing.assert_allclose(np.load(data["dir"] / "r.npy"),
                               lsearray.logsumexp(data["x"], axis=1), rtol=1e-12)
    assert tree_digest(data["npy"]) == before


def test_inputs_are_never_written(data, capsys):
    paths = [data["npy"], data["wnpy"], data["zarr"]]
    before = [tree_digest(p) for p in paths]
    for fmt in ("npy", "zarr"):
        assert main(["reduce", data[fmt], "--weights", data["wnpy"], "--mean"]) == 0
    capsys.readouterr()
    assert main(["reduce", data["npy"], "--out", data["npy"], "--force"]) == 2
    assert_one_error_line(capsys.readouterr().err)
    assert [tree_digest(p) for p in paths] == before


def test_out_is_not_overwritten_without_force(data, capsys):
    out = data["dir"] / "out.npy"
    out.write_bytes(b"precious")
    assert main(["reduce", data["npy"], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "--force" in err
    assert out.read_bytes() == b"precious"

    assert main(["reduce", data["npy"], "--axis", "0", "--out", str(out), "--force"]) == 0
    np.testing.assert_allclose(np.load(out), lsearray.logsumexp(data["x"], axis=0), rtol=1e-12)
    assert sorted(os.listdir(data["dir"])) == ["out.npy", "w.npy", "x.npy", "x.zarr"]


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


@pytest.mark.parametrize("argv", [["reduce", "missing.npy"],
                                  ["reduce", "x.npy", "--temperature", "-2"],
                                  ["reduce", "x.npy", "--bogus"],
                                  []])
def test_bad_input_exit_status_in_a_process(data, argv):
    proc = run_module(*argv, cwd=data["dir"])
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr)


def test_unreachable_scheduler_fails_fast(data):
    start = time.monotonic()
    proc = run_module("reduce", "x.npy", "--scheduler", "tcp://127.0.0.1:9", "--out", "o.npy",
                      cwd=data["dir"])
    assert time.monotonic() - start < 15
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr)
    assert "tcp://127.0.0.1:9" in proc.stderr
    assert not (data["dir"] / "o.npy").exists()


def test_demo_cleans_up(tmp_path):
    proc = run_module("demo", "--size", "2MB", "--chunk", "500KB", "--dir", tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "250 x 1000 float64, 2.00 MB" in out
    assert out.count("GB/s, peak memory") == 3
    assert "one pass" in out and "two pass" in out and "tracemalloc" in out
    assert "results agree (rtol 1e-10)" in out
    assert os.listdir(tmp_path) == []


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
