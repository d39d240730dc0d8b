"""Build the lsecore Cython kernel, with OpenMP when the compiler has it."""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

NO_COMPILER = (
    "lsecore: building lsearray from source needs a C compiler, and {cc!r} was not found. "
    "Install one (gcc or clang; Xcode's command line tools on macOS; Microsoft C++ Build Tools "
    "on Windows) or set CC, then run pip again; a platform with a published wheel needs none."
)
OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def c_compiler():
    """The C compiler command the build will call; exits with one clear line when it is missing."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if sys.platform != "win32" and shutil.which(cc[0]) is None:
        sys.exit(NO_COMPILER.format(cc=cc[0]))
    return cc


def openmp_flags(cc):
    """The compile and link flags for OpenMP, or none when the compiler `cc` lacks it."""
    if os.environ.get("LSECORE_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        compile_flags, link_flags = ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    else:
        compile_flags, link_flags = ["-fopenmp"], ["-fopenmp"]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        cmd = cc + compile_flags + [src, "-o", os.path.join(tmp, "probe")] + link_flags
        try:
            ok = subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            ok = False
    if not ok:
        print("lsecore: the C compiler has no OpenMP, so the kernel is built single-threaded "
              "(lsecore.build_info() reports it)", file=sys.stderr)
        return [], []
    return compile_flags, link_flags


def render_templates():
    """Write each lsecore/*.h.src Tempita template out as the header it names: the loops that
    are written once and repeated for each float type (Cython ships Tempita)."""
    from Cython import Tempita

    for src in sorted(glob.glob(os.path.join("lsecore", "*.h.src"))):
        dst = src[:-len(".src")]
        with open(src) as f:
            text = Tempita.Template(f.read(), name=src).substitute()
        text = f"/* Generated from {os.path.basename(src)} by setup.py: edit that file. */\n" + text
        old = None
        if os.path.exists(dst):
            with open(dst) as f:
                old = f.read()
        if text != old:  # an unchanged header keeps its time, and the kernel is not rebuilt
            with open(dst, "w") as f:
                f.write(text)


# An sdist only packs the sources; anything else builds (or prepares to build) the kernel, and a
# missing compiler is said before the build tools are imported.
builds = "sdist" not in sys.argv[1:]
compile_openmp, link_openmp = openmp_flags(c_compiler()) if builds else ([], [])

import numpy as np  # noqa: E402
from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, setup  # noqa: E402

if builds:
    render_templates()

# -fno-trapping-math lets the compiler vectorize the selects on nan/inf in the kernels;
# results are unchanged (never -ffast-math: it would break inf and nan). -g0 overrides the
# -g of Python's own flags: debug info would make the extension several times larger.
optimize = [] if sys.platform == "win32" else ["-O3", "-fno-trapping-math", "-g0"]

extensions = [
    Extension(
        "lsecore._kernel",
        ["lsecore/_kernel.pyx"],
        include_dirs=[np.get_include(), "lsecore"],
        depends=["lsecore/_lse_common.h", "lsecore/_lse_avx512_math.h", "lsecore/_lse_xla.h",
                 "lsecore/vendor/xla_ffi_c_api.h",
                 *sorted(glob.glob("lsecore/_lse_*.h.src"))],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        extra_compile_args=optimize + compile_openmp,
        extra_link_args=link_openmp,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
