"""Shared helpers of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_home() -> Path:
    """``SKOOD_DATA`` when set, else the ``shared/data`` folder beside the repository."""
    return Path(os.environ.get("SKOOD_DATA", DEFAULT_DATA))


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy
    import sklearn
    import skorch
    import torch

    import skood

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": {
            "skood": skood.__version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__,
        },
    }


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def write_markdown(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    return path


def write_results(name: str, payload: dict, text: str) -> None:
    """Write ``results/<name>.json`` and ``.md`` and print the Markdown."""
    write_json(name, payload)
    write_markdown(name, text)
    print(text)


def machine_markdown(info: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (
        f"Measured {info['date']} on {info['platform']} ({info['cpu_count']} CPUs, "
        f"torch threads {info['torch_threads']}, CUDA: {info['cuda'] or 'none'}).  \n"
        f"Versions: {versions}.  \nCommand: `{info['command']}`\n"
    )
