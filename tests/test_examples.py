"""The gallery scripts in examples/ run as they are, print what they promise and draw figures.

The documentation build runs them too (sphinx-gallery); these tests run them one after another
in one fresh interpreter (each in a namespace of its own, as sphinx-gallery does) with the
non-interactive matplotlib backend, and count the figures each leaves open, so that a script
that stops drawing fails here and not only on the site.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import data_home_with

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Runs each script as __main__ in one interpreter (the imports of torch, scikit-learn and
# skood cost seconds per process) and reports, per script, what it printed, the figures open at
# its end (plt.show is a no-op under Agg, so every figure an example draws is still open) and
# the traceback it raised, if any.
_RUNNER = """
import contextlib, io, json, runpy, sys, traceback
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
reports = {}
for path in sys.argv[1:]:
    plt.close("all")
    printed, error = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(path, run_name="__main__")
    except BaseException:
        error = traceback.format_exc()
    reports[path] = {"output": printed.getvalue(), "figures": len(plt.get_fignums()),
                     "error": error}
print(json.dumps(reports))
"""
_NEED_IMAGES = {"plot_mnist_vs_fashion.py", "plot_corruptions.py"}


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory) -> dict[str, dict]:
    """Every example run once, by file name; those needing the image data only when it is there."""
    pytest.importorskip("matplotlib")
    # "smoke": the image example trains on its smallest setting (the site's build runs "1").
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKOOD_EXAMPLES_QUICK": "smoke"}
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    images = data_home_with("mnist", "fashion_mnist")
    if images is None:
        scripts = [script for script in scripts if script not in _NEED_IMAGES]
    else:
        env["SKOOD_DATA"] = str(images)  # the fixture's folder, also without SKOOD_DATA set
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *(str(EXAMPLES / script) for script in scripts)],
        cwd=tmp_path_factory.mktemp("examples"),
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout.rstrip().splitlines()[-1])
    return {Path(path).name: report for path, report in reports.items()}


def _run(example_runs: dict, script: str) -> tuple[str, int]:
    report = example_runs[script]
    assert report["error"] is None, report["error"]
    return report["output"], report["figures"]


def test_every_example_is_covered_here():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == [
        "plot_compare_detectors.py",
        "plot_corruptions.py",
        "plot_edit_and_explain.py",
        "plot_ensemble_and_conformal.py",
        "plot_grid_search_arrhythmia.py",
        "plot_mnist_vs_fashion.py",
    ]


@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("*.py")))
def test_example_has_a_gallery_header(script):
    # sphinx-gallery needs a docstring that opens with an underlined title.
    text = (EXAMPLES / script).read_text()
    assert text.startswith('"""\n=')
    _, title, underline = text.splitlines()[1:4]
    assert len(underline) >= len(title) and set(underline) == {"="}


def test_compare_detectors(example_runs):
    output, figures = _run(example_runs, "plot_compare_detectors.py")
    for name in ("DLSGAN NLP", "DLSGAN reconstruction", "IsolationForest", "OneClassSVM"):
        assert name in output
    assert figures == 3


def test_grid_search_arrhythmia(example_runs):
    output, figures = _run(example_runs, "plot_grid_search_arrhythmia.py")
    assert "best parameters:" in output
    assert "held-out ROC AUC:" in output
    assert figures == 1


def test_ensemble_and_conformal(example_runs):
    output, figures = _run(example_runs, "plot_ensemble_and_conformal.py")
    assert "ensemble of 5, ROC AUC:" in output
    assert "inliers flagged at alpha=0.1:" in output
    assert figures == 2


def test_edit_and_explain(example_runs):
    output, figures = _run(example_runs, "plot_edit_and_explain.py")
    assert "judge accuracy on clean test rows:" in output
    assert "outliers whose two largest deviations are columns 2 and 5:" in output
    assert figures == 2


def test_mnist_vs_fashion(example_runs, data_folders):
    data_folders("mnist", "fashion_mnist")  # skips when missing; fails in CI
    output, figures = _run(example_runs, "plot_mnist_vs_fashion.py")
    assert "setting:" in output and "epoch 1: NLP AUROC" in output
    assert "nlp" in output and "reconstruction" in output
    assert figures == 2


def test_plot_corruptions(example_runs, data_folders):
    data_folders("mnist", "fashion_mnist")  # skips when missing; fails in CI
    _, figures = _run(example_runs, "plot_corruptions.py")
    assert figures == 1
