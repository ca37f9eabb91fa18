"""The gallery scripts in examples/ run as they are, print what they promise and draw figures.

The documentation build runs them too (sphinx-gallery); these tests run each in a fresh
interpreter with the non-interactive matplotlib backend and count the figures it leaves open,
so that a script that stops drawing fails here and not only on the site.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Runs the script as __main__ and reports the figures open at its end (plt.show is a no-op
# under Agg, so every figure an example draws is still open).
_RUNNER = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
print("FIGURES", len(plt.get_fignums()))
"""


def _run(script: str, *, cwd: Path, data_home: Path | None = None) -> tuple[str, int]:
    pytest.importorskip("matplotlib")
    # "smoke": the image example trains on its smallest setting (the site's build runs "1").
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKOOD_EXAMPLES_QUICK": "smoke"}
    if data_home is not None:
        env["SKOOD_DATA"] = str(data_home)  # the fixture's folder, also without SKOOD_DATA set
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(EXAMPLES / script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    *printed, last = result.stdout.rstrip().splitlines()
    assert last.startswith("FIGURES ")
    return "\n".join(printed), int(last.split()[1])


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


def test_compare_detectors(tmp_path):
    output, figures = _run("plot_compare_detectors.py", cwd=tmp_path)
    for name in ("DLSGAN NLP", "DLSGAN reconstruction", "IsolationForest", "OneClassSVM"):
        assert name in output
    assert figures == 3


def test_grid_search_arrhythmia(tmp_path):
    output, figures = _run("plot_grid_search_arrhythmia.py", cwd=tmp_path)
    assert "best parameters:" in output
    assert "held-out ROC AUC:" in output
    assert figures == 1


def test_ensemble_and_conformal(tmp_path):
    output, figures = _run("plot_ensemble_and_conformal.py", cwd=tmp_path)
    assert "ensemble of 5, ROC AUC:" in output
    assert "inliers flagged at alpha=0.1:" in output
    assert figures == 2


def test_edit_and_explain(tmp_path):
    output, figures = _run("plot_edit_and_explain.py", cwd=tmp_path)
    assert "judge accuracy on clean test rows:" in output
    assert "outliers whose two largest deviations are columns 2 and 5:" in output
    assert figures == 2


def test_mnist_vs_fashion(tmp_path, data_folders):
    data_home = data_folders("mnist", "fashion_mnist")  # skips when missing; fails in CI
    output, figures = _run("plot_mnist_vs_fashion.py", cwd=tmp_path, data_home=data_home)
    assert "setting:" in output and "epoch 1: NLP AUROC" in output
    assert "nlp" in output and "reconstruction" in output
    assert figures == 2


def test_plot_corruptions(tmp_path, data_folders):
    data_home = data_folders("mnist", "fashion_mnist")  # skips when missing; fails in CI
    _, figures = _run("plot_corruptions.py", cwd=tmp_path, data_home=data_home)
    assert figures == 1
