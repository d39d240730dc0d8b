"""Every public name has an asv benchmark in asv_bench/benchmarks/ (as numpy's benchmarks check)."""

import ast
import importlib.util
import pathlib

import pytest

import lsearray

__all__ = []

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "asv_bench" / "benchmarks"

# The prefixes by which asv recognises a benchmark (time_, peakmem_, mem_, track_, timeraw_).
ASV_PREFIXES = ("time_", "timeraw_", "peakmem_", "mem_", "track_")

# Public names with nothing to time, and why.
EXEMPT = {
    "lsearray.__version__": "a string",
    "lsearray.build_info": "reports how the kernel was built; it does no numerical work",
}


def _dask_all():
    """lsearray.dask.__all__, read from the source: importing the module needs dask."""
    origin = importlib.util.find_spec("lsearray.dask").origin
    for node in ast.parse(pathlib.Path(origin).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("lsearray.dask has no __all__")


def public_names():
    """Every public name, qualified: lsearray.<name> and lsearray.dask.<name>."""
    return ([f"lsearray.{name}" for name in lsearray.__all__]
            + [f"lsearray.dask.{name}" for name in _dask_all()])


def _module_aliases(tree):
    """{local name: "lsearray" or "lsearray.dask"} for `import lsearray`, `import lsearray.dask as
    ldask`, `from lsearray import dask`; and {local name: qualified name} for `from lsearray[.dask]
    import name`."""
    modules, names = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("lsearray", "lsearray.dask"):
                    # `import lsearray.dask` binds lsearray; only `as` binds the submodule
                    modules[alias.asname or "lsearray"] = alias.name if alias.asname else "lsearray"
        elif isinstance(node, ast.ImportFrom) and node.module in ("lsearray", "lsearray.dask"):
            for alias in node.names:
                local = alias.asname or alias.name
                if node.module == "lsearray" and alias.name == "dask":
                    modules[local] = "lsearray.dask"
                else:
                    names[local] = f"{node.module}.{alias.name}"
    return modules, names


def _used(node, modules, names):
    """The qualified public names that the code under `node` refers to."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            # lsearray.dask.softmax, ldask.softmax, lsearray.softmax
            base = sub.value
            if (isinstance(base, ast.Attribute) and base.attr == "dask" and isinstance(base.value, ast.Name)
                    and modules.get(base.value.id) == "lsearray"):
                found.add(f"lsearray.dask.{sub.attr}")
            elif isinstance(base, ast.Name) and base.id in modules:
                found.add(f"{modules[base.id]}.{sub.attr}")
        elif isinstance(sub, ast.Name) and sub.id in names:
            found.add(names[sub.id])
    return found


def _is_benchmark(func):
    return isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) and func.name.startswith(ASV_PREFIXES)


def benchmarked_names():
    """{qualified name: [benchmark files]}: a name is benchmarked where a module-level benchmark
    function, or a class holding benchmark methods (its setup and helpers included: what a
    `time_` method times is often built there), refers to it."""
    covered = {}
    for path in sorted(BENCHMARKS.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        modules, names = _module_aliases(tree)
        for node in tree.body:
            if _is_benchmark(node) or (isinstance(node, ast.ClassDef) and any(map(_is_benchmark, node.body))):
                for name in _used(node, modules, names):
                    covered.setdefault(name, []).append(path.name)
    return covered


def test_the_parser_finds_the_logsumexp_benchmarks():
    """The guard can fail: the benchmarks of logsumexp are found, and a name only imported is not."""
    covered = benchmarked_names()
    assert "bench_logsumexp.py" in covered.get("lsearray.logsumexp", []), covered
    tree = ast.parse("import lsearray\nclass A:\n    def setup(self):\n        lsearray.softmax\n"
                     "    def helper(self):\n        pass\n")
    modules, names = _module_aliases(tree)
    assert not any(map(_is_benchmark, tree.body[1].body))
    assert _used(tree.body[1], modules, names) == {"lsearray.softmax"}
    tree = ast.parse("import lsearray.dask as ldask\nfrom lsearray import logaddexp as lae\n"
                     "def time_x():\n    ldask.softmax(lae(1, 2))\n")
    modules, names = _module_aliases(tree)
    assert _used(tree.body[2], modules, names) == {"lsearray.dask.softmax", "lsearray.logaddexp"}


def test_exemptions_name_public_names():
    assert set(EXEMPT) <= set(public_names()), set(EXEMPT) - set(public_names())


@pytest.mark.parametrize("name", [n for n in public_names() if n not in EXEMPT])
def test_public_name_has_a_benchmark(name):
    covered = benchmarked_names()
    assert name in covered, (
        f"{name} has no asv benchmark: add a time_/peakmem_ benchmark calling it to "
        f"asv_bench/benchmarks/, or exempt it in EXEMPT with the reason")
