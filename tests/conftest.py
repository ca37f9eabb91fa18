import os
from pathlib import Path

import numpy as np
import pytest
import torch

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The benchmark data folder: SKOOD_DATA, else ../shared/data beside the repository."""
    path = Path(os.environ.get("SKOOD_DATA", _SHARED_DATA))
    if not (path / "odds").is_dir():
        pytest.skip(f"benchmark data not found at {path}; set SKOOD_DATA")
    return path


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
