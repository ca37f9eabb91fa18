"""Test set-up shared by the test suite and the doctests of the package."""

import sys

import pytest

try:
    import matplotlib
except ImportError:  # the plotting tests skip themselves; everything else runs
    pass
else:
    matplotlib.use("Agg")  # no display in CI; figures are inspected, never shown


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test or doctest opened, so that they do not pile up."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
