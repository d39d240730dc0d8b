"""The benchmark suite cannot silently rot: asv_bench/side_by_side.py runs, asv finds the suite."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

__all__ = []

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASV_DIR = ROOT / "asv_bench"
SCRIPT = ASV_DIR / "side_by_side.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def has(module):
    return importlib.util.find_spec(module) is not None


def run_script(*args):
    """Run side_by_side.py on a small quick case; its CompletedProcess (exit status checked)."""
    cmd = [sys.executable, str(SCRIPT), "--size", "2e4", "--repeat", "1", "--quick", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def test_side_by_side_prints_every_table():
    out = run_script().stdout
    for title in ("logsumexp, time per call", "softmax and log_softmax, time per call",
                  "small calls (10 elements), time per call", "Peak extra memory of one call",
                  "logaddexp, time per call", "logcumsumexp, time per call", "logmatmulexp, time per call",
                  "Peak extra memory of one logmatmulexp call", "segment_logsumexp, time per call",
                  "segment_softmax, time per call", "softmax_average, time per call",
                  "logeinsumexp, time per call"):
        assert title in out
    for header in ("| case | lsearray ms | scipy ms | scipy / lsearray |", "two-pass / lsearray",
                   "lsearray / x.sum()", "lsearray / np.exp", "| case | lsearray µs |",
                   "| case | lsearray ms | np.logaddexp ms | np.logaddexp / lsearray |",
                   "| accumulate ms | accumulate / lsearray |",
                   "| naive ms | naive / lsearray | shifted ms | shifted / lsearray |",
                   "| naive numpy MiB | naive numpy % of input | shifted numpy MiB |",
                   "| ufunc.at ms | ufunc.at / lsearray |", "| recipe ms | recipe / lsearray |"):
        assert header in out
    for name, installed in (("torch", has("torch")), ("jax", has("jax"))):
        assert (f"{name} ms" in out) == installed
    for case in ("1-D float64 n=2e+04", "1-D float32 n=2e+04", "2-D float64 (20, 1000) axis=1",
                 "2-D float64 (20, 1000) axis=0", "short rows float64 (1000, 10) axis=1",
                 "tall float64 (10, 1000) axis=0", "softmax float64 (20, 1000) axis=1",
                 "log_softmax float32 (20, 1000) axis=1", "logsumexp float64 n=10",
                 "softmax float64 n=10", "logaddexp float64 n=1e+04", "logcumsumexp 1-D float64 n=1e+04",
                 "logcumsumexp float64 (1000, 10) axis=0", "logcumsumexp float64 (1000, 10) axis=1",
                 "logmatmulexp float64 (63, 63) @ (63, 63)",
                 "segment_logsumexp float64 n=1e+04 into 100 segments",
                 "segment_logsumexp float64 n=1e+04, sorted ids",
                 "segment_softmax float64 n=1e+04 into 100 segments",
                 "softmax_average float64 (1, 1000) x 16 features",
                 "logeinsumexp float64 ij,jk,kl->il of (31, 31)"):
        assert f"| {case} |" in out
    assert "All contenders agree with the reference" in out
    assert "FAILED" not in out


@pytest.mark.parametrize("library, rows", [
    ("torch", ("torch 1-D float64 n=2e+04", "torch (20, 1000) axis=1", "torch softmax (20, 1000) axis=1",
               "torch (64, 10) axis=1")),
    ("jax", ("jax.jit 1-D float64 n=2e+04", "jax.jit (20, 1000) axis=1", "jax.jit softmax (20, 1000) axis=1")),
])
def test_side_by_side_times_lsearray_on_each_librarys_arrays(library, rows):
    pytest.importorskip(library)
    out = run_script("--cases", library).stdout
    assert f"lsearray on {library} " in out
    assert f"| case | lsearray ms | {library} ms | {library} / lsearray |" in out
    for case in rows:
        assert f"| {case} |" in out
    assert "All contenders agree with the reference" in out
    assert "FAILED" not in out


def test_side_by_side_scaling_times_lsearray_on_one_and_more_threads():
    out = run_script("--scaling", "--threads", "2", "--cases", "1d,tall,softmax,small").stdout
    assert "lsearray on 1 and 2 threads, time per call" in out
    assert "| case | 1 thread ms | 2 threads ms | speed-up |" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "case" not in line]
    labels = [row.split(" | ")[0][2:] for row in rows]
    assert labels == ["1-D float64 n=2e+04", "1-D float32 n=2e+04", "tall float64 (10, 1000) axis=0",
                      "softmax float64 (20, 1000) axis=1", "softmax float32 (20, 1000) axis=1",
                      "log_softmax float64 (20, 1000) axis=1", "log_softmax float32 (20, 1000) axis=1"]
    for row in rows:
        one, two, speedup = (float(v) for v in row.strip(" |").split(" | ")[1:])
        assert speedup > 0 and speedup == pytest.approx(one / two, rel=0.1)  # printed rounded
    assert "scipy" not in out.split("lsearray on 1 and 2 threads")[1]


def test_side_by_side_relatives_alone_with_accuracy():
    out = run_script("--cases", "relatives", "--accuracy").stdout
    assert "| logsumexp float64 n=10 |" not in out and "| 1-D float64 n=2e+04 |" not in out
    assert "| logcumsumexp 1-D float64 n=1e+04 |" in out
    assert ("accumulate / lsearray | torch ms | torch / lsearray |" in out) == has("torch")
    assert "jax ms" not in out
    assert "Max ulp error against mpmath" in out
    assert "logcumsumexp, max ulp error over the prefixes against mpmath" in out
    assert "| case (float64) | mpmath, last prefix | lsearray ulp | np.logaddexp.accumulate ulp |" in out
    assert "| [0, 1e4 x (-50)] | 1.9287498479639178e-18 |" in out
    assert "All contenders agree with the reference" in out
    assert "error:" not in out and "FAILED" not in out


def test_figures_writes_the_backends_block_alone(tmp_path):
    """--cases torch: the backends block gets lsearray on tensors against torch; the NumPy
    tables' block is left as it was."""
    pytest.importorskip("torch")
    page = tmp_path / "page.md"
    before = "<!-- figures:tables -->\nkept\n<!-- /figures:tables -->\n"
    page.write_text(before + "<!-- figures:backends -->\n<!-- /figures:backends -->\n")
    cmd = [sys.executable, str(ASV_DIR / "figures.py"), "--runs", "1", "--cases", "torch", "--update", str(page),
           "--", "--size", "2e4", "--repeat", "1", "--quick"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    text = page.read_text()
    assert text.startswith(before)
    assert "| case | lsearray ms | torch / lsearray |" in text and "| torch (64, 10) axis=1 | " in text


@pytest.mark.skipif(not has("matplotlib"), reason="--plot needs matplotlib (the bench extra)")
def test_side_by_side_plot_writes_a_png(tmp_path):
    png = tmp_path / "throughput.png"
    out = run_script("--cases", "small", "--plot", str(png)).stdout
    assert "| logsumexp float64 n=10 |" in out
    assert "| 1-D float64 n=2e+04 |" not in out and "| softmax float64 (20" not in out
    assert "Throughput, 1-D float64 logsumexp" in out
    assert "| lsearray, 1 thread |" in out and "| x.sum() |" in out
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_side_by_side_rejects_unknown_cases():
    out = subprocess.run([sys.executable, str(SCRIPT), "--cases", "1d,nope"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 2
    assert "--cases expects" in out.stderr and "nope" in out.stderr


def test_asv_config_is_strict_json():
    conf = json.loads((ASV_DIR / "asv.conf.json").read_text())
    assert conf["benchmark_dir"] == "benchmarks"


@pytest.mark.skipif(not has("asv"), reason="asv is in the bench extra")
def test_asv_finds_the_suite():
    cmd = [sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ASV_DIR)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout


def asv_quick(tmp_path, pattern):
    """asv run --quick --dry-run of the benchmarks whose names match ``pattern``: its stdout."""
    # asv run needs a machine description; one in a temporary home, not the user's.
    env = dict(os.environ, HOME=str(tmp_path))
    subprocess.run([sys.executable, "-m", "asv", "machine", "--yes"], capture_output=True,
                   text=True, timeout=60, cwd=ASV_DIR, env=env, check=True)
    cmd = [sys.executable, "-m", "asv", "run", "-E", f"existing:{sys.executable}", "--quick", "--dry-run",
           "--show-stderr", "--bench", pattern]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ASV_DIR, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "failed" not in out.stdout
    return out.stdout


@pytest.mark.skipif(not has("asv"), reason="asv is in the bench extra")
def test_asv_runs_the_relatives_and_the_stream_quick(tmp_path):
    """Every relatives and streaming benchmark runs once (asv --quick), on its smallest parameters."""
    smallest = (r"^(bench_relatives\..*\((1000000|500|'float64', '2d-axis1')\)"
                r"|bench_online\..*\('float64', 10\))$")
    assert "Running 19 total benchmarks" in asv_quick(tmp_path, smallest)


@pytest.mark.skipif(not has("asv"), reason="asv is in the bench extra")
def test_asv_runs_the_sampling_and_dask_benchmarks_quick(tmp_path):
    """Every sampling and lsearray.dask benchmark runs once (asv --quick), on its smallest parameters
    (without dask, its benchmarks are skipped, not failed)."""
    smallest = r"^(bench_sampling\..*\('float64', 10(, False)?\)|bench_dask\..*\(('all', )?1\))$"
    assert "Running 13 total benchmarks" in asv_quick(tmp_path, smallest)


@pytest.mark.skipif(not has("asv"), reason="asv is in the bench extra")
def test_asv_runs_the_torch_and_jax_benchmarks_quick(tmp_path):
    """Every torch and jax benchmark runs once (asv --quick) on rows (without the library,
    its benchmarks are skipped, not failed)."""
    pattern = r"^bench_backends\..*\(('logsumexp', 'rows'|False)\)$"
    assert "Running 6 total benchmarks" in asv_quick(tmp_path, pattern)


def load_figures():
    """asv_bench/figures.py as a module (asv_bench is not a package)."""
    spec = importlib.util.spec_from_file_location("figures", ASV_DIR / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(lsearray, scipy, x_sum):
    """A run's record with one case timed for three contenders in one process."""
    label = "1-D float64 n=1e+06"
    return {"cases": [{"label": label, "group": "1d", "kind": "logsumexp"}],
            "times": [[label, name, t, lsearray] for name, t in
                      (("lsearray", lsearray), ("scipy", scipy), ("x.sum()", x_sum))]}


def test_figures_takes_each_ratio_within_its_run_then_the_median_and_range():
    figures = load_figures()
    runs = [fake_run(1.0, 10.0, 0.5), fake_run(2.0, 30.0, 0.5), fake_run(1.5, 12.0, 1.0)]
    table = figures.summarize(runs, ("1d",), "ms")
    # scipy / lsearray per run: 10, 15, 8; lsearray / x.sum(): 2, 4, 1.5; lsearray: 1, 2, 1.5 s.
    assert "| 1-D float64 n=1e+06 | 1500.0 (1000.0–2000.0) | 10.00 (8.00–15.00) | 2.00 (1.50–4.00) |" \
        in table.splitlines()
    assert table.splitlines()[0] == "| case | lsearray ms | scipy / lsearray | lsearray / x.sum() |"


def test_figures_replaces_only_its_marked_blocks(tmp_path):
    figures = load_figures()
    path = tmp_path / "page.md"
    path.write_text("before\n<!-- figures:headline -->\nold\n<!-- /figures:headline -->\nafter\n")
    assert figures.update_file(str(path), {"headline": "new\ntable", "tables": "unused"}) == ["headline"]
    assert path.read_text() == "before\n<!-- figures:headline -->\nnew\ntable\n<!-- /figures:headline -->\nafter\n"
    assert sorted(os.listdir(tmp_path)) == ["page.md"]


def test_figures_runs_separate_processes_and_names_the_machine(tmp_path):
    """Two runs of two groups (and jax's processes where jax is installed)."""
    page = tmp_path / "page.md"
    page.write_text("<!-- figures:tables -->\n<!-- /figures:tables -->\n")
    record = tmp_path / "runs.json"
    cmd = [sys.executable, str(ASV_DIR / "figures.py"), "--runs", "2", "--cases", "1d,small", "--scaling", "2",
           "--record", str(record), "--update", str(page), "--",
           "--size", "2e4", "--repeat", "1", "--quick"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    text = page.read_text()
    assert "2 runs, each a process per case group" in text and "lsecore SIMD path" in text
    assert "| 1-D float32 n=2e+04 |" in text and "Max ulp error against mpmath" in text
    assert ("jax / lsearray" in text) == has("jax")
    assert "| case | 1 thread ms | 2 threads ms | speed-up |" in text and "| 1-D float64 n=2e+04 | " in text

    # the record gives the same tables again, without measuring
    again = tmp_path / "again.md"
    again.write_text("<!-- figures:tables -->\n<!-- /figures:tables -->\n")
    out = subprocess.run([sys.executable, str(ASV_DIR / "figures.py"), "--from-record", str(record),
                          "--update", str(again)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert again.read_text() == text


@pytest.mark.skipif(not has("matplotlib"), reason="--plot needs matplotlib (the bench extra)")
def test_figures_plots_the_runs_throughput(tmp_path):
    """--plot: a process per run times the throughput series; the PNG is drawn from all."""
    png, record = tmp_path / "throughput.png", tmp_path / "runs.json"
    cmd = [sys.executable, str(ASV_DIR / "figures.py"), "--runs", "2", "--cases", "small", "--no-jax",
           "--plot", str(png), "--record", str(record), "--", "--size", "2e4", "--repeat", "1", "--quick",
           "--no-jax"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    runs = json.loads(record.read_text())
    assert [len(run["throughput"]["series"]["x.sum()"]) for run in runs] == [4, 4]
    assert [run["throughput"]["sizes"] for run in runs] == [[1000, 2714, 7368, 20000]] * 2
