"""The scripts in examples/ run as documented and print what their docstrings promise."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd: Path, data_home: Path | None = None) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    if data_home is not None:
        env["SKOOD_DATA"] = str(data_home)  # the fixture's folder, also without SKOOD_DATA set
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_example_is_covered_here():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == [
        "compare_detectors.py",
        "grid_search_arrhythmia.py",
        "mnist_vs_fashion.py",
        "plot_corruptions.py",
    ]


def test_compare_detectors(tmp_path):
    pytest.importorskip("matplotlib")
    output = _run("compare_detectors.py", "--plot", "scores.png", cwd=tmp_path)
    for name in ("DLSGAN NLP", "IsolationForest", "OneClassSVM"):
        assert name in output
    assert (tmp_path / "scores.png").stat().st_size > 0


def test_grid_search_arrhythmia(tmp_path):
    output = _run("grid_search_arrhythmia.py", cwd=tmp_path)
    assert "best parameters:" in output
    assert "held-out ROC AUC:" in output


def test_mnist_vs_fashion(tmp_path, data_folders):
    pytest.importorskip("matplotlib")
    data_home = data_folders("mnist", "fashion_mnist")  # skips when missing; fails in CI
    # A few training steps only: this checks the script, not the detector (test_images.py does).
    args = ("--train-size", "128", "--test-size", "64", "--epochs", "2", "--plot", "ood.png")
    output = _run("mnist_vs_fashion.py", *args, cwd=tmp_path, data_home=data_home)
    assert "epoch 1: NLP AUROC" in output and "epoch 2: NLP AUROC" in output
    assert "nlp" in output and "reconstruction" in output and "AUROC" in output
    assert (tmp_path / "ood.png").stat().st_size > 0
    assert (tmp_path / "ood_images.png").stat().st_size > 0


def test_plot_corruptions(tmp_path, data_folders):
    pytest.importorskip("matplotlib")
    data_home = data_folders("mnist")  # skips when missing; fails in CI
    output = _run("plot_corruptions.py", "grid.png", cwd=tmp_path, data_home=data_home)
    assert "wrote grid.png" in output
    assert (tmp_path / "grid.png").stat().st_size > 0
