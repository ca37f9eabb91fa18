"""Sphinx configuration of the skood documentation site.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (``pip install -e ".[docs]"``).
"""

import os
import re
import sys
from pathlib import Path

import skood

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "skood"
author = "The skood developers"
copyright = "The skood developers"  # noqa: A001 (the name Sphinx reads)
version = release = skood.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "offline_inventories",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
default_role = "literal"

# API reference: one page per public name, generated from the numpydoc docstrings.
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
# Only the names below become links; the rest of a type ("of shape (n_samples,)") stays text.
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "array-like": ":term:`array-like`",
    "int": ":class:`python:int`",
    "float": ":class:`python:float`",
    "str": ":class:`python:str`",
    "bool": ":class:`python:bool`",
    "dict": ":class:`python:dict`",
    "list": ":class:`python:list`",
    "tuple": ":class:`python:tuple`",
    "None": ":data:`python:None`",
    "callable": ":func:`python:callable`",
    "ndarray": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "Figure": "matplotlib.figure.Figure",
    "Axes": "matplotlib.axes.Axes",
    "Tensor": "torch.Tensor",
    "Module": "torch.nn.Module",
    "RandomState": "numpy.random.RandomState",
    "Generator": "numpy.random.Generator",
}
# Docstrings of the public API are validated while the site builds; a failed check is a warning,
# and the CI build turns warnings into errors. Checks left out: the extended summary (ES01),
# See Also (SA01) and Examples (EX01) are not required on every method, only where they help;
# GL08 (no docstring) is reported for attributes that numpydoc lists from the class page; named
# return values (RT02) and summaries over two lines (SS06) are how scikit-learn writes them.
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01", "GL08", "RT02", "SS06"}
numpydoc_validation_exclude = {
    # Methods that scikit-learn's base classes give every estimator, documented there.
    r"\.get_metadata_routing$",
    r"\.set_\w+_request$",
    r"\.set_output$",
    r"\.get_params$",
    r"\.set_params$",
    r"\.fit_transform$",
    r"\.__init__$",
    # Constants: numpydoc validates the docstring of their type (int, dict), not their own.
    r"^skood\.io\.FORMAT_VERSION$",
    r"^skood\.datasets\.corruptions\.CORRUPTIONS$",
    r"^skood\.posthoc\.SCORE_TYPES$",
    r"^skood\.metrics\.outlier_\w+_scorer$",
}

# MyST turns the Markdown pages of the user guide into Sphinx documents.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
# Without a network the inventories above are written from the installed packages
# (docs/_ext/offline_inventories.py), so links still point at the projects' real pages.

# The gallery: every script in examples/ runs while the site builds and its figures are shown.
# SKOOD_EXAMPLES_QUICK=1 (set by CI) makes the slow examples train on a small setting.
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"/_",
    "doc_module": ("skood",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skood": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
    "show_memory": False,
    "min_reported_time": 5,
}
os.environ.setdefault("MPLBACKEND", "Agg")


def _skip_routing_methods(app, what, name, obj, skip, options):
    """Leave scikit-learn's metadata-routing and output-container methods to its own pages."""
    if (
        name == "get_metadata_routing"
        or name == "set_output"
        or (name.startswith("set_") and name.endswith("_request"))
    ):
        return True
    return None


_GUIDE_PAGE = re.compile(r"``docs/([\w-]+)\.md``")


def _link_guide_pages(app, what, name, obj, options, lines):
    """Turn the docstrings' ``docs/<page>.md`` (read as is in ``help()``) into site links."""
    lines[:] = [_GUIDE_PAGE.sub(r":doc:`/\1`", line) for line in lines]


def setup(app):
    app.connect("autodoc-skip-member", _skip_routing_methods)
    app.connect("autodoc-process-docstring", _link_guide_pages)


html_theme = "pydata_sphinx_theme"
html_title = f"skood {release}"
html_static_path = ["_static"]
html_css_files = ["skood.css"]
html_show_sourcelink = False
html_theme_options = {
    "github_url": "https://github.com/skood/skood",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
# Pages without sub-pages get the full width instead of an empty navigation column.
html_sidebars = {"index": [], "benchmarks": [], "api": []}
