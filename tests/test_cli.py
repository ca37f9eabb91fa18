"""python -m skood: the demo and info commands."""

import io
import subprocess
import sys

import numpy as np
import pytest

from skood.__main__ import main, run_demo


def test_demo_prints_the_comparison_table_and_writes_its_plot(tmp_path):
    pytest.importorskip("matplotlib")
    stream, path = io.StringIO(), tmp_path / "demo.png"
    results = run_demo(n_seeds=1, device="cpu", stream=stream, plot=path)
    text = stream.getvalue()
    names = (
        "DLSGAN (NLP)",
        "10 DLSGANs, half the features (reconstruction)",
        "5 flows (log-likelihood)",
        "IsolationForest",
        "OneClassSVM",
    )
    for name in names:
        assert name in text
        assert 0.6 < np.mean(results[name]["roc_auc"]) <= 1.0
    assert "ROC AUC" in text and "F1" in text
    assert "best configuration over the 31 tables" in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in text


def test_info_and_argument_errors(capsys):
    assert main(["info"]) == 0
    assert "skood" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demo", "--seeds", "0"])


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "skood", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_demo_command_passes_its_options_to_the_demo(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("skood.__main__.run_demo", lambda **options: calls.append(options) or {})
    path = tmp_path / "demo.png"
    assert main(["demo", "--seeds", "2", "--device", "cpu", "--plot", str(path)]) == 0
    assert calls == [{"n_seeds": 2, "device": "cpu", "plot": str(path)}]
