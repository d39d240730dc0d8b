"""What a user meets before the first call: the namespace, the build report and the build's messages."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import lsearray
import lsecore

__all__ = []

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_namespace_is_the_public_api():
    public = {name for name in dir(lsearray) if not name.startswith("_")}
    # lsearray.dask and lsearray.xarray are submodules: attributes once some test has imported them.
    assert public - {"dask", "xarray"} == set(lsearray.__all__) - {"__version__"}
    for leaked in ("version", "PackageNotFoundError", "metadata"):
        assert not hasattr(lsearray, leaked)


def test_version_is_the_installed_distributions():
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("lsearray")
    except PackageNotFoundError:
        pytest.skip("lsearray is imported from a source tree that is not installed")
    assert lsearray.__version__ == installed
    assert installed.count(".") >= 2


def test_build_info_reports_the_build():
    info = lsecore.build_info()
    assert set(info) == {"openmp", "simd_compiled", "simd", "max_threads"}
    assert isinstance(info["openmp"], bool)
    assert info["simd"] in ("avx512", "generic")
    assert any(path.startswith(info["simd"]) for path in info["simd_compiled"])
    assert info["max_threads"] >= 1
    if not info["openmp"]:
        assert info["max_threads"] == 1


def test_build_info_follows_the_simd_override():
    code = "import lsecore; print(lsecore.build_info()['simd'])"
    env = dict(os.environ, LSECORE_SIMD="generic")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "generic", out.stderr


def test_unbuilt_source_tree_says_what_to_do(tmp_path):
    """A checkout's lsecore/ without the compiled kernel shadows the installed package."""
    shutil.copytree(pathlib.Path(lsecore.__file__).parent, tmp_path / "lsecore",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: no site-packages, so no editable install's import hook, which would come before the copy
    out = subprocess.run([sys.executable, "-S", "-c", "import lsecore"], capture_output=True, text=True,
                         cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lsecore: the compiled kernel is not built in ")
    assert str(tmp_path / "lsecore") in last and "pip install -e ." in last


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree's setup.py")
@pytest.mark.skipif(sys.platform == "win32", reason="the compiler is looked up as CC on POSIX")
def test_build_without_a_compiler_says_so():
    env = dict(os.environ, CC="/nonexistent/cc")
    out = subprocess.run([sys.executable, "setup.py", "--name"], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "lsecore: building lsearray from source needs a C compiler, and '/nonexistent/cc' was not found. "
        "Install one (gcc or clang; Xcode's command line tools on macOS; Microsoft C++ Build Tools on "
        "Windows) or set CC, then run pip again; a platform with a published wheel needs none."]
