"""Sphinx configuration of the lsearray documentation.

Build it from the repository root, warnings as errors (the gallery runs every example):

    pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# An installed lsearray (pip install -e .) is used as it is; from a source checkout whose kernel
# is built in place, the checkout is put first on the path.
try:
    import lsearray
except ImportError:
    sys.path.insert(0, str(ROOT))
    import lsearray

# The examples run in this process under the gallery: matplotlib draws off screen.
os.environ.setdefault("MPLBACKEND", "Agg")

# -- Project -------------------------------------------------------------------------------------

project = "lsearray"
author = "The lsearray developers"
copyright = "The lsearray developers"
release = lsearray.__version__
if release == "unknown":  # imported from a checkout that is not installed: read the metadata
    release = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
version = release

# -- Extensions ----------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = ["_templates"]

# `name` in docstrings links to the object when Sphinx knows it (lsearray's own names), and is
# set in code style otherwise.
default_role = "py:obj"

# -- Markdown (MyST) -----------------------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# -- API reference -------------------------------------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"  # the docstrings' Parameters sections say the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Gallery -------------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example: each prints its check and draws its figures
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "ExampleTitleSortKey",
    "image_scrapers": ("matplotlib",),
    "doc_module": ("lsearray",),
    "reference_url": {"lsearray": None},
    "backreferences_dir": "generated/backreferences",
    "min_reported_time": 1,
    "capture_repr": (),
    "remove_config_comments": True,
    "download_all_examples": False,
    "matplotlib_animations": False,
}

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"lsearray {release}"
html_static_path = ["_static"]
html_css_files = ["lsearray.css"]
html_theme_options = {
    "github_url": "https://github.com/lsearray/lsearray",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_context = {"default_mode": "light"}
# Pages without subpages need no section navigation: their text takes the width.
html_sidebars = {page: [] for page in ("index", "installation", "performance", "development",
                                        "releasing", "changelog")}
html_show_sourcelink = False
