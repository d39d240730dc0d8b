"""Every script in examples/ runs to completion and prints the agreement it promises.

Each runs twice: with matplotlib where it is installed (the script then draws its figures, off screen),
and with an import of matplotlib that fails, as where it is not installed (the script only prints).
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))

# What each script promises on stdout: its final verdict against its independent reference (the
# quick start, which has no reference, prints the accurate value of logsumexp([0, -50])).
PROMISES = {
    "quickstart.py": r"logsumexp\(\[0, -50\]\) = \S*1\.92874984796391\d*e-22",
    "hmm_forward.py": r"^agrees with brute-force enumeration .* and the scaled forward algorithm",
    "particle_filter.py": r"^agrees with the Kalman filter \(log-likelihood error 0\.\d+, tolerance 0\.8;",
    "model_averaging.py": r"^agrees with direct normalization in 50-digit decimal arithmetic",
    "stepping_stone.py": r"^agrees with the closed-form log marginal likelihood \(error 0\.0\d+, tolerance",
    "felsenstein_pruning.py": r"^agrees with direct summation over ancestral states .* rescaled pruning",
    "ising_chain.py": r"^agrees with the exact transfer-matrix eigenvalues",
    "gumbel_boxes.py": r"^agrees with the Gumbel max-stability theorem \(lse_beta within 2 ulp of decimal: "
                       r"True; intersection laws: True; Gumbel-max frequencies: True\)",
    "contrastive_losses.py": r"^agrees with the direct formula .* and decimal arithmetic",
    "streaming_attention.py": r"^agrees with scipy's softmax and an exactly rounded sum .* one-shot softmax_average",
    "graph_attention.py": r"^agrees with a per-node loop of scipy's softmax \(coefficients within .* nodes without "
                          r"incoming edges have normalizer -inf",
    "crf_partition.py": r"^agrees with brute-force enumeration of all 65536 label sequences \(log Z relative error",
}


def test_every_example_has_a_promise():
    names = {p.name for p in EXAMPLES}
    assert names == set(PROMISES), f"scripts without a promise: {names - set(PROMISES)}; " \
                                   f"promises without a script: {set(PROMISES) - names}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_gallery_title_is_valid_rst(script):
    # sphinx-gallery renders the docstring's first line as the page title; an underline shorter
    # than it is a docutils warning, an error in the documentation build.
    lines = script.read_text().splitlines()
    assert lines[0] in ('"""', 'r"""'), f"{script.name}: the docstring does not open the file"
    title, underline = lines[1], lines[2]
    assert set(underline) == {"="} and len(underline) >= len(title), \
        f"{script.name}: the title {title!r} needs an '=' underline of at least {len(title)} characters"


@pytest.fixture(scope="module")
def no_matplotlib(tmp_path_factory):
    """A folder whose ``matplotlib`` package fails to import, to put first on PYTHONPATH."""
    root = tmp_path_factory.mktemp("no_matplotlib")
    (root / "matplotlib").mkdir()
    (root / "matplotlib" / "__init__.py").write_text('raise ImportError("No module named \'matplotlib\'")\n')
    return root


@pytest.mark.parametrize("matplotlib", ["with matplotlib", "without matplotlib"])
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, matplotlib, no_matplotlib):
    # Agg: figures are drawn off screen, so no window opens on a machine with a display.
    env = dict(os.environ, MPLBACKEND="Agg")
    if matplotlib == "without matplotlib":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(no_matplotlib), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(PROMISES[script.name], out.stdout, re.MULTILINE), out.stdout
    assert "DISAGREES" not in out.stdout
    assert "Warning" not in out.stderr, out.stderr
