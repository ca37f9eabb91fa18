"""tests/conftest.py's benchmark-data look-up: a missing folder skips a test, but fails it in CI."""

from pathlib import Path

import pytest

NOT_CI = [None, "", "0", "false", "False"]
CI = ["true", "1", "yes"]


def _set_ci(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)


@pytest.mark.parametrize("ci", NOT_CI)
def test_missing_data_skips_outside_ci(data_folders, monkeypatch, tmp_path, ci):
    _set_ci(monkeypatch, ci)
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="SKOOD_DATA") as error:
        data_folders("odds")
    assert str(tmp_path / "odds") in str(error.value)


@pytest.mark.parametrize("ci", CI)
def test_missing_data_fails_in_ci(data_folders, monkeypatch, tmp_path, ci):
    _set_ci(monkeypatch, ci)
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    with pytest.raises(pytest.fail.Exception, match="SKOOD_DATA") as error:
        data_folders("mnist", "fashion_mnist")  # the first is there, the second is not
    assert str(tmp_path / "fashion_mnist") in str(error.value)
    assert "CI" in str(error.value)


@pytest.mark.parametrize("ci", [None, "true"])
def test_present_data_is_returned(data_folders, monkeypatch, tmp_path, ci):
    _set_ci(monkeypatch, ci)
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    (tmp_path / "odds").mkdir()
    (tmp_path / "mnist").mkdir()
    assert data_folders("odds", "mnist") == tmp_path.resolve()
    # Without SKOOD_DATA: ../shared/data beside the repository (resolved: it may be a link).
    monkeypatch.delenv("SKOOD_DATA")
    expected = Path(__file__).resolve().parents[2] / "shared" / "data"
    assert data_folders() == expected.resolve()
