"""Sphinx configuration of the sketchlearn documentation.

Build with ``make -C docs html`` (warnings are errors). Nothing here needs the
network: intersphinx has no inventories, and every example runs locally.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

import sketchlearn  # noqa: E402  (installed editable; imported for the version)

# -- Project -------------------------------------------------------------------------
project = "sketchlearn"
author = "sketchlearn developers"
copyright = "sketchlearn developers"
release = sketchlearn.__version__
version = release

# -- General ---------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sketchlearn_docs",  # docs/sphinxext: benchmark tables, example time limit
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "sphinxext",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/**/*.ipynb",
    "auto_examples/**/*.py",
    "auto_examples/**/*.zip",
    "auto_examples/**/*.json",
    "auto_examples/**/*.md5",
]
default_role = "literal"
nitpicky = True
# Genuine references to other projects, which resolve only when intersphinx has
# inventories (it has none offline, see below).
nitpick_ignore = [
    ("py:func", "scipy.stats.energy_distance"),
    # In BaseEstimator.set_params, inherited by the estimators. Their template
    # (_templates/autosummary/estimator.rst) leaves out the metadata-routing
    # methods, whose docstrings point at scikit-learn's own labels and glossary.
    ("py:class", "sklearn.pipeline.Pipeline"),
    # In RegressorMixin.score and TransformerMixin.set_output, inherited.
    ("std:ref", "r2_score"),
    ("py:func", "sklearn.metrics.r2_score"),
    ("py:class", "sklearn.multioutput.MultiOutputRegressor"),
    ("std:ref", "set_output"),
    ("std:ref", "df_output_transform"),
    ("std:ref", "sphx_glr_auto_examples_miscellaneous_plot_set_output.py"),
    ("py:class", "sklearn.linear_model.Ridge"),
    ("py:class", "sklearn.exceptions.ConvergenceWarning"),
]

# -- autodoc / autosummary / numpydoc --------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# No autodoc_default_options: under Sphinx 9, {"members": False} there also switches
# off an explicit ``:members:`` option, which left the kernel classes' methods out.
# numpydoc already lists the types in "Parameters"; annotations in signatures would
# point at private modules (sketchlearn.kernels._kernels.Kernel) and break -n.
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No inventories: CI reaches package registries only. Keep the extension so
# cross-project links can be turned on where the network is available.
intersphinx_mapping: dict = {}
intersphinx_disabled_reftypes = ["*"]

# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # execute every plot_*.py
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("sketchlearn",),
    "reference_url": {"sketchlearn": None},
    "backreferences_dir": "api/generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "plot_gallery": os.environ.get("SKETCHLEARN_PLOT_GALLERY", "True"),
    # "matplotlib" is sphinx-gallery's own reset; the second fails any example
    # that runs longer than 30 s (DESIGN.md).
    "reset_modules": ("matplotlib", "sketchlearn_docs.example_time_limit"),
    "reset_modules_order": "both",
}

# -- Benchmarks --------------------------------------------------------------------------
benchmark_results_dir = "../benchmarks/results"

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sketchlearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
