"""skood.datasets: the embedded Arrhythmia data and the ODDS, ADBench and MNIST loaders."""

import numpy as np
import pytest

from skood.datasets import (
    get_data_home,
    list_adbench,
    list_odds,
    load_adbench,
    load_arrhythmia,
    load_fashion_mnist,
    load_mnist,
    load_odds,
)


def test_embedded_arrhythmia():
    bunch = load_arrhythmia()
    assert bunch.data.shape == (452, 274) and bunch.data.dtype == np.float64
    assert set(np.unique(bunch.target)) == {-1, 1}
    assert int((bunch.target == -1).sum()) == 66
    assert "Guvenir" in bunch.DESCR and "Rayana" in bunch.DESCR
    X, y = load_arrhythmia(return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)


def test_arrhythmia_as_frame():
    pytest.importorskip("pandas")
    frame, target = load_arrhythmia(return_X_y=True, as_frame=True)
    assert frame.shape == (452, 274) and target.shape == (452,)


def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    assert get_data_home("/elsewhere").as_posix() == "/elsewhere"
    monkeypatch.delenv("SKOOD_DATA")
    assert get_data_home().name == "skood_data"


def test_missing_file_error_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="SKOOD_DATA") as error:
        load_odds("arrhythmia", data_home=tmp_path)
    assert str(tmp_path / "odds" / "arrhythmia.mat") in str(error.value)
    with pytest.raises(FileNotFoundError, match="adbench"):
        load_adbench("breastw", data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="mnist"):
        load_mnist(data_home=tmp_path)


def test_odds_file_equals_embedded_copy(data_home):
    X, y = load_odds("arrhythmia", data_home=data_home, return_X_y=True)
    X_embedded, y_embedded = load_arrhythmia(return_X_y=True)
    np.testing.assert_array_equal(X, X_embedded)
    np.testing.assert_array_equal(y, y_embedded)


def test_environment_variable_is_honoured(data_home, monkeypatch):
    monkeypatch.setenv("SKOOD_DATA", str(data_home))
    assert load_odds("wbc", return_X_y=True)[0].shape == (378, 30)


def test_adbench_names(data_home):
    a = load_adbench("breastw", data_home=data_home, return_X_y=True)
    b = load_adbench("4_breastw", data_home=data_home, return_X_y=True)
    c = load_adbench("BreastW", data_home=data_home, return_X_y=True)
    for other in (b, c):
        np.testing.assert_array_equal(a[0], other[0])
    assert a[0].shape == (683, 9) and int((a[1] == -1).sum()) == 239


def test_every_file_loads(data_home):
    odds, adbench = list_odds(data_home), list_adbench(data_home)
    assert "arrhythmia" in odds and "breastw" in adbench
    try:
        import h5py  # noqa: F401
    except ImportError:
        odds = [name for name in odds if name != "smtp"]
    for name in odds:
        X, y = load_odds(name, data_home=data_home, return_X_y=True)
        assert X.dtype == np.float64 and np.all(np.isfinite(X)) and len(X) == len(y)
        assert set(np.unique(y)) == {-1, 1}
    for name in adbench:
        X, y = load_adbench(name, data_home=data_home, return_X_y=True)
        assert X.dtype == np.float64 and np.all(np.isfinite(X)) and len(X) == len(y)
        assert set(np.unique(y)) == {-1, 1}


def test_smtp_without_h5py_points_to_adbench(data_home):
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="load_adbench"):
            load_odds("smtp", data_home=data_home)
    else:
        assert load_odds("smtp", data_home=data_home, return_X_y=True)[0].shape == (95156, 3)


def test_mnist_and_fashion_mnist(data_home):
    X, y = load_mnist(subset="test", data_home=data_home, return_X_y=True)
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert X.min() == -1.0 and X.max() == 1.0
    assert np.bincount(y).tolist()[:3] == [980, 1135, 1032]
    bunch = load_fashion_mnist(subset="test", data_home=data_home, scale="unit")
    assert bunch.data.shape == (10000, 784) and 0.0 <= bunch.data.min() <= bunch.data.max() <= 1
    assert bunch.images.shape == (10000, 28, 28) and bunch.target_names[0] == "T-shirt/top"
    with pytest.raises(ValueError, match="subset"):
        load_mnist(subset="validation", data_home=data_home)


def test_corrupt_idx_file_is_refused(data_home, tmp_path):
    import gzip

    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(data_home / "mnist" / f"{stem}.gz") as handle:
            content = handle.read()
        if stem.startswith("t10k-images"):
            content = content[:-1] + bytes([content[-1] ^ 1])
        (folder / stem).write_bytes(content)
    with pytest.raises(OSError, match="MD5"):
        load_mnist(subset="test", data_home=tmp_path)
