"""The layering: only the delegation layer and the executors know array libraries or the kernel."""

import ast
import pathlib

import pytest

import lsearray

PACKAGE = pathlib.Path(lsearray.__file__).parent
# Array libraries (and the kernel) whose names are backend knowledge.
BACKENDS = {"dask", "torch", "jax", "jaxlib", "cupy", "lsecore"}
# array_api_compat's predicates that tell libraries apart, e.g. is_dask_namespace.
PREDICATES = {f"is_{lib}_{kind}" for lib in ("dask", "torch", "jax", "cupy", "numpy")
              for kind in ("namespace", "array")}
# Where backend knowledge belongs.
KNOWING = {"_delegation.py"}
# Modules about one library by design: the public dask module wraps its executor, and the
# command line builds dask arrays from files (through dask's own API and lsearray.dask).
ABOUT_ONE_LIBRARY = {"dask.py": {"dask"}, "_cli.py": {"dask", "zarr"}}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("_executors/") or rel in KNOWING:
            continue
        yield rel, ast.parse(path.read_text(), filename=str(path))


def _imported(tree):
    """``(top-level module, full name)`` of every import in ``tree``, and every name
    imported from a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module.split(".")[0], node.module, alias.name


@pytest.mark.parametrize("rel,tree", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_backend_knowledge_outside_the_executors(rel, tree):
    allowed = ABOUT_ONE_LIBRARY.get(rel, set())
    for top, full, name in _imported(tree):
        assert top not in BACKENDS - allowed, f"lsearray/{rel} imports {full}"
        assert name not in PREDICATES, f"lsearray/{rel} imports {name} from {full}"
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & PREDICATES, f"lsearray/{rel} calls {sorted(names & PREDICATES)}"


@pytest.mark.parametrize("rel", ["_reductions.py", "_softmax.py", "_pairwise.py", "_difference.py",
                                 "_scan.py", "_matmul.py"])
def test_public_functions_hand_their_calls_to_the_delegation_layer(rel):
    tree = ast.parse((PACKAGE / rel).read_text())
    modules = {full for top, full, _ in _imported(tree) if top == "lsearray"}
    assert modules == {"lsearray._delegation"}, f"lsearray/{rel} imports {sorted(modules)}"


def test_the_command_line_uses_the_public_api():
    tree = ast.parse((PACKAGE / "_cli.py").read_text())
    private = sorted(full for top, full, name in _imported(tree)
                     if top == "lsearray" and any(part.startswith("_") for part in full.split(".")[1:])
                     and not full.startswith("lsearray._chunked"))
    assert not private, f"lsearray/_cli.py imports private modules {private}"


def test_only_the_executors_import_the_kernel():
    importers = sorted(
        path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
        if any(top == "lsecore" for top, _, _ in _imported(ast.parse(path.read_text())))
    )
    assert importers and all(rel.startswith("_executors/") for rel in importers), importers


def test_validation_depends_on_no_other_module_of_the_package():
    # the checks sit below the executors: an executor may use them, never the reverse
    tree = ast.parse((PACKAGE / "_validation.py").read_text())
    inner = sorted(full for top, full, _ in _imported(tree) if top == "lsearray")
    assert not inner, f"lsearray/_validation.py imports {inner}"
