"""The committed fixture of detectors fitted on a GPU (``tests/fixtures/cuda/``), and its recorder.

Every configuration of ``_detectors.VARIANTS`` and the flow's image networks is fitted on CUDA on
the fixed data of ``_regression.py`` and written twice: pickled (a net fitted on a GPU pickles
its tensors tagged with their CUDA device) and as a :mod:`skood.io` archive. Beside them go the
scores computed on the GPU and a manifest of the machine, versions and commit.
``tests/test_cuda_fixture.py`` loads them where there is no CUDA and compares.

Run ``python tests/_cuda_fixture.py`` from the repository root on a machine with CUDA
(``benchmarks/gpu_suite.sh`` does, first), then commit ``tests/fixtures/cuda/``.
"""

from __future__ import annotations

import json
import pickle
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from _detectors import SUPERVISED, VARIANTS, build
from _regression import digits, table

import skood
import skood.io
from skood import ApproximateMassFlowDetector

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "cuda"
MANIFEST = FIXTURE_DIR / "manifest.json"
SCORES = FIXTURE_DIR / "scores.npz"


def _on_cuda(detector):
    """The detector with every ``device`` parameter, its nested estimators' too, set to CUDA."""
    params = detector.get_params(deep=True)
    return detector.set_params(**{key: "cuda" for key in params if key.endswith("device")})


def _fits():
    """Case name -> (fitted detector, the rows it scores), all fitted on CUDA."""
    X, y, X_test, _ = table()
    for variant_id, name, params in VARIANTS:
        detector = _on_cuda(build(name, **params))
        detector.fit(X, y) if name in SUPERVISED else detector.fit(X)
        yield f"table-{variant_id}", detector, X_test
    images, _ = digits()
    # The flow's convolutional networks, small enough to commit (DLSGAN's pickle: 7 MB).
    detector = _on_cuda(
        ApproximateMassFlowDetector(
            input_shape=(1, 8, 8), n_blocks=1, mid_channels=4, max_epochs=2, batch_size=16,
            random_state=0,
        )
    )  # fmt: skip
    yield "image-flow", detector.fit(images[:200]), images[-30:]


def _commit() -> str | None:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return described.stdout.strip()


def record(folder: Path = FIXTURE_DIR) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("the CUDA fixture must be recorded on a machine with a GPU")
    folder.mkdir(parents=True, exist_ok=True)
    scores = {}
    for case, detector, X_test in _fits():
        if not str(detector.net_.device).startswith("cuda"):
            raise RuntimeError(f"{case} was not fitted on CUDA: net_.device {detector.net_.device}")
        scores[case] = detector.score_samples(X_test)
        scores[f"{case}/X"] = X_test
        (folder / f"{case}.pkl").write_bytes(pickle.dumps(detector))
        skood.io.save(detector, folder / f"{case}.skood")
    np.savez_compressed(folder / SCORES.name, **scores)
    manifest = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "gpu": torch.cuda.get_device_name(0),
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "skood": skood.__version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "cases": sorted(case for case in scores if "/" not in case),
    }
    (folder / MANIFEST.name).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(manifest['cases'])} detectors fitted on {manifest['gpu']} written to {folder}")


if __name__ == "__main__":
    record()
