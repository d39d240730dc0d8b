"""Check what the sdist and the wheel carry: python .ci/check_dist_contents.py SDIST WHEEL."""

import fnmatch
import sys
import tarfile
import zipfile

# The sdist builds the package and runs its tests and examples.
SDIST_NEEDS = ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in",
               "conftest.py", "lsecore/_kernel.pyx", "lsecore/_lse_common.h", "lsecore/_lse_avx512_math.h",
               "lsecore/_lse_portable.h.src", "lsecore/_lse_avx512.h.src", "lsecore/_lse_exact.h.src",
               "lsecore/_lse_dispatch.h.src", "lsecore/_lse_scan.h.src", "lsecore/_lse_xla.h",
               "lsecore/vendor/xla_ffi_c_api.h", "lsecore/vendor/README.md", "lsearray/py.typed",
               "tests/conftest.py", "tests/awkward_arrays.py", "tests/reference.py", "tests/backends.py",
               "tests/fuzz_support.py", "examples/quickstart.py", "asv_bench/side_by_side.py",
               "docs/conf.py")
# The headers rendered from the templates are build outputs.
SDIST_NEVER = ("*.so", "*.pyd", "*/__pycache__/*", "lsecore/_kernel.c", "lsecore/_lse_avx512.h",
               "lsecore/_lse_dispatch.h", "lsecore/_lse_exact.h", "lsecore/_lse_portable.h",
               "lsecore/_lse_scan.h", "docs/_build/*",
               "docs/auto_examples/*", "docs/generated/*", "docs/sg_execution_times.rst")
# The wheel: the packages, the compiled kernel, the license; no sources of the kernel.
WHEEL_NEEDS = ("lsearray/__init__.py", "lsearray/py.typed", "lsecore/__init__.py", "lsecore/_kernel.*",
               "lsearray-*.dist-info/licenses/LICENSE")
WHEEL_NEVER = ("*.pyx", "*.h", "*.h.src", "*.c", "tests/*", "*/__pycache__/*")


def check(kind, names, needs, never):
    """Problems with ``names`` (archive members relative to the top)."""
    missing = [p for p in needs if not fnmatch.filter(names, p)]
    extra = sorted({n for p in never for n in fnmatch.filter(names, p)})
    return [f"{kind} lacks {p}" for p in missing] + [f"{kind} should not carry {n}" for n in extra]


def main(sdist, wheel):
    """Print what is missing from or extra in each archive; 1 if anything is, else 0."""
    with tarfile.open(sdist) as tar:
        sdist_names = [m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name and m.isfile()]
    with zipfile.ZipFile(wheel) as zf:
        wheel_names = zf.namelist()
        kernel = [n for n in wheel_names if fnmatch.fnmatch(n, "lsecore/_kernel.*")]
        debug = [n for n in kernel if b".debug_info" in zf.read(n)]
        sizes = ", ".join(f"{n} {zf.getinfo(n).file_size / 1e6:.2f} MB" for n in kernel)
    problems = check("sdist", sdist_names, SDIST_NEEDS, SDIST_NEVER)
    problems += check("wheel", wheel_names, WHEEL_NEEDS, WHEEL_NEVER)
    # Every module of the packages, subpackages too (setuptools lists packages one by one).
    problems += [f"wheel lacks {n}" for n in sdist_names
                 if n.startswith(("lsearray/", "lsecore/")) and n.endswith(".py") and n not in wheel_names]
    problems += [f"wheel's {n} carries debug info" for n in debug]
    for p in problems:
        print(p)
    print(f"sdist: {len(sdist_names)} files; wheel: {len(wheel_names)} files ({sizes})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
