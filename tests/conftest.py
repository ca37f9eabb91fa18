import os
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The benchmark data folder: SKOOD_DATA, else ../shared/data beside the repository."""
    path = Path(os.environ.get("SKOOD_DATA", _SHARED_DATA))
    if not (path / "odds").is_dir():
        pytest.skip(f"benchmark data not found at {path}; set SKOOD_DATA")
    return path
