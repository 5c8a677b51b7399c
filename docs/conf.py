"""Sphinx configuration of mixtura's documentation site (docs/build.sh builds it).

docs/ is the source folder: the Markdown pages here are the site's pages as they are (MyST), the
notebooks come in through the docs/notebooks link and run during the build (myst-nb), the Python API
reference is generated from the docstrings (autosummary + numpydoc).
"""
import os
import pathlib
import re
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
# The package from this checkout unless one is installed (CI installs it with `pip install .`).
try:
    import mixtura  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))
    # The notebooks' kernels too: they run in another process, in notebooks/.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "python"), os.environ.get("PYTHONPATH")]))
    import mixtura  # noqa: F401

project = "mixtura"
author = "the mixtura authors"
copyright = "2026, the mixtura authors"
release = re.search(r'#define MIXTURA_VERSION_STRING "([0-9.]+)"',
                    (ROOT / "include" / "mixtura" / "version.hpp").read_text(encoding="utf-8")).group(1)
version = release

extensions = [
    "myst_nb",  # Markdown pages (MyST) and notebooks executed during the build
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["notebooks/.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# MyST: the existing pages are plain Markdown (GitHub renders them too); headings get anchors so
# that links such as model-format.md#reliability resolve.
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 4

# Notebooks: executed on every build, in their own folder (they find the bundled data from there),
# a failing cell fails the build, and no cell may run longer than nb_execution_timeout seconds.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_in_temp = False
nb_execution_show_tb = True
# The kernels draw with ipykernel's inline backend, which puts each cell's figures into its outputs; a
# backend named in the environment (MPLBACKEND=Agg on a headless runner) would leave the pages without them.
os.environ.pop("MPLBACKEND", None)

# Python API: one page per public name, from the docstrings (numpydoc sections).
autosummary_generate = True
# Without scikit-learn's metadata-routing setters (set_fit_request, ...): generated methods whose
# docstrings point into scikit-learn's own documentation.
autodoc_default_options = {
    "members": True,
    "member-order": "groupwise",
    "exclude-members": "set_fit_request, set_partial_fit_request, set_predict_proba_request, set_score_request",
}
autodoc_typehints = "none"  # the docstrings state types; the .pyi stubs are for type checkers
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"mixtura {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
html_copy_source = False
