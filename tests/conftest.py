import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# No per-example deadline: the examples fit networks, and how long one takes depends on the
# machine (CI's have run 3-4 times slower than a workstation); a slow example is not a failure.
settings.register_profile("skood", deadline=None)
settings.load_profile("skood")

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def in_ci() -> bool:
    """Whether the environment variable CI is set (to anything but "", "0" or "false")."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _data_path() -> Path:
    """SKOOD_DATA, else ../shared/data beside the repository, made absolute (the example scripts
    the tests run work in another directory)."""
    return Path(os.environ.get("SKOOD_DATA", _SHARED_DATA)).resolve()


def _missing_folder(path: Path, folders: tuple[str, ...]) -> Path | None:
    return next((path / folder for folder in folders if not (path / folder).is_dir()), None)


def data_home_with(*folders: str) -> Path | None:
    """The benchmark data folder (as find_data_home) when it holds ``folders``, else None."""
    path = _data_path()
    return None if _missing_folder(path, folders) else path


def find_data_home(*folders: str) -> Path:
    """The benchmark data folder, SKOOD_DATA, else ../shared/data beside the repository.

    When one of ``folders`` is not in it, the test calling this skips, or fails in CI: CI always
    has the data, so there every data test must run, never skip silently.
    """
    path = _data_path()
    missing = _missing_folder(path, folders)
    if missing is not None:
        message = (
            f"benchmark data not found: no folder {missing}; set SKOOD_DATA to the "
            "folder that holds odds/, adbench/, mnist/ and fashion_mnist/"
        )
        if in_ci():
            pytest.fail(f"{message} (CI is set: data tests must run there)", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The benchmark data folder (with its odds/ files): see find_data_home."""
    return find_data_home("odds")


@pytest.fixture(scope="session")
def data_folders():
    """find_data_home, for tests that need other folders: ``data_folders("mnist")``."""
    return find_data_home


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module of tiny networks.

    They gain nothing from threads, and on a busy machine an idle-spinning thread pool slows
    every small operation down many times over.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """64 tiny 8 x 8 images: smooth blobs on a dark background, flattened, in [-1, 1]."""
    rng = np.random.RandomState(0)
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"))
    centres = rng.uniform(2, 6, size=(64, 2, 1, 1))
    blobs = np.exp(-((grid[None] - centres) ** 2).sum(axis=1) / 4.0)
    return (np.round(255 * blobs) / 127.5 - 1.0).reshape(64, -1).astype(np.float32)
