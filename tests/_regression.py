"""The fixed fits behind the committed score fixture (``tests/fixtures/regression_scores.npz``).

Every detector configuration of ``_detectors.VARIANTS`` plus the options that change how the
networks are built or trained (PyTorch's default initialisation, warm start, the other score
types, the image networks) is fitted on fixed data with a fixed seed, and its outputs are
recorded: ``score_samples`` of held-out rows and, where the detector has them, ``transform``
and ``sample``. ``tests/test_regression_scores.py`` refits and compares; after a change to
training or scoring that is meant to keep behaviour, the scores must not move.

The fits run in a fresh interpreter whose math kernels are pinned (``PINNED_KERNELS``), so that
every x86-64 machine computes the same bits: left to themselves, PyTorch's, oneDNN's, MKL's,
OpenBLAS's and NumPy's kernels pick their code by the processor (AVX-512 where it has it, AVX2
where not), and those last-bit differences, grown by training, moved InvGAN's and the image
networks' scores by up to 11% between an AVX-512 and an AVX2 machine.

Rerun ``python tests/_regression.py`` from the repository root to record the fixture again,
only when a change is meant to alter the numbers (and say why in the commit).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from _detectors import SUPERVISED, VARIANTS, build
from sklearn.datasets import load_digits

from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    DLSGANDetector,
    DMRDetector,
    InvGANDetector,
    PostHocDetector,
)
from skood._latent import LatentModelMixin

FIXTURE = Path(__file__).parent / "fixtures" / "regression_scores.npz"

#: The environment the fits run in: every library's kernels capped at AVX2 (which every x86-64
#: server of the last decade has) and one thread, so that the summation orders are the same.
PINNED_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """120 training rows of 5 correlated features, 3 classes; 40 held-out rows, 10 shifted."""
    rng = np.random.RandomState(0)
    mixing = rng.normal(size=(5, 5))
    labels = rng.randint(3, size=160)
    X = rng.normal(size=(160, 5)) @ mixing + 2.0 * labels[:, None]
    X[150:] += 6.0  # the held-out outliers
    return X[:120], labels[:120], X[120:], labels[120:]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 digits scaled to [-1, 1], in a fixed order."""
    data = load_digits()
    X = (data.data / 8.0 - 1.0).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(X))
    return X[order], data.target[order]


def _outputs(detector, X_test: np.ndarray) -> dict[str, np.ndarray]:
    outputs = {"score_samples": detector.score_samples(X_test)}
    if hasattr(detector, "transform"):
        outputs["transform"] = detector.transform(X_test[:8])
    if hasattr(detector, "sample"):
        outputs["sample"] = detector.sample(4, random_state=0)
    return outputs


def _papers_r1(detector):
    """The detector with the settings that were the defaults when the fixture was recorded, in
    it and in the detectors it holds: R1 on every step (the paper's; tests/test_training_speed.py
    covers lazy R1) and the paper's variance decay 0.999 (tests/test_dlsgan.py covers "auto")."""
    params = detector.get_params(deep=True)
    pinned = {key: 1 for key in params if key.endswith("r1_interval")}
    pinned |= {
        key: 0.999
        for key, value in params.items()
        if key.endswith("variance_decay") and value == "auto"
    }
    return detector.set_params(**pinned)


def _table_cases() -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    X, y, X_test, _ = table()
    cases = {}

    def fitted(name, params, warm=False):
        detector = _papers_r1(build(name, **params))
        targets = (y,) if name in SUPERVISED else ()
        detector.fit(X, *targets)
        if warm:
            detector.set_params(warm_start=True, max_epochs=1).fit(X)
        return detector

    for variant_id, name, params in VARIANTS:
        cases[f"table/{variant_id}"] = lambda n=name, p=params: _outputs(fitted(n, p), X_test)
    for name in ("dlsgan", "autoencoder"):
        cases[f"table/{name}-default-init"] = lambda n=name: _outputs(
            fitted(n, {"equalized_lr": False}), X_test
        )
    # The flow's case keeps the score it was recorded with (the default on tables is now the
    # log-likelihood, recorded by table/flow-log_likelihood).
    warm = {"flow": {"score_type": "approximate_mass"}}
    for name in ("dlsgan", "autoencoder", "flow", "invgan"):
        cases[f"table/{name}-warm-start"] = lambda n=name: _outputs(
            fitted(n, warm.get(n, {}), True), X_test
        )
    cases["table/invgan-encoded-warm-start"] = lambda: _outputs(
        fitted("invgan", {"kmeans_on": "encoded"}, True), X_test
    )

    def other_scores(name, params, score_types):
        detector = fitted(name, params)
        outputs = {}
        for score_type in score_types:
            detector.set_params(score_type=score_type)
            outputs[f"score_samples-{score_type}"] = detector.score_samples(X_test)
        return outputs

    cases["table/dlsgan-scores"] = lambda: other_scores("dlsgan", {}, ["reconstruction"])
    cases["table/invgan-scores"] = lambda: other_scores("invgan", {}, ["llk_residual"])
    cases["table/posthoc-scores"] = lambda: other_scores(
        "posthoc", {}, ["msp", "maxlogit", "react", "mahalanobis", "kl_matching"]
    )
    return cases


def _image_cases() -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    X, y = digits()
    train, X_test = X[:200], X[-30:]
    common = {"input_shape": (1, 8, 8), "device": "cpu", "random_state": 0}
    # The committed step: float32 and NCHW convolution weights. The defaults on the CPU
    # (bfloat16 where the processor has it, channels-last weights) change the float rounding
    # and so, after training, the last digits; tests/test_training_speed.py covers them.
    gan = {"latent_dim": 8, "max_epochs": 2, "batch_size": 16, "mixed_precision": False, **common}

    def unsupervised(detector):
        return _outputs(_papers_r1(detector).fit(train), X_test)

    def dmr():
        generator = _papers_r1(DLSGANDetector(**gan)).fit(train)
        detector = DMRDetector(
            generator=generator,
            hidden_dims=(16,),
            classifier_epochs=2,
            max_epochs=2,
            batch_size=32,
            **common,
        )
        return _outputs(detector.fit(train, y[:200]), X_test)

    cases = {
        "image/dlsgan": lambda: unsupervised(DLSGANDetector(**gan)),
        "image/infogan": lambda: unsupervised(DLSGANDetector(variant="infogan", **gan)),
        "image/autoencoder": lambda: unsupervised(AutoencoderDetector(**gan)),
        "image/flow": lambda: unsupervised(
            ApproximateMassFlowDetector(
                n_blocks=1, mid_channels=4, max_epochs=2, batch_size=16, **common
            )
        ),
        "image/invgan": lambda: unsupervised(
            InvGANDetector(
                latent_dim=4, n_centres=10, n_kmeans_samples=300, max_epochs=2, batch_size=16,
                **common,
            )
        ),
        "image/posthoc": lambda: _outputs(
            PostHocDetector(hidden_dims=(16,), max_epochs=2, **common).fit(train, y[:200]),
            X_test,
        ),
        "image/dmr": dmr,
    }  # fmt: skip
    return {name: _in_nchw(case) for name, case in cases.items()}


def _in_nchw(case: Callable[[], dict[str, np.ndarray]]) -> Callable[[], dict[str, np.ndarray]]:
    def run() -> dict[str, np.ndarray]:
        with mock.patch.object(LatentModelMixin, "_channels_last_on_cpu", False):
            return case()

    return run


def cases() -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    """Case name -> function that fits and returns the case's outputs by name."""
    return {**_table_cases(), **_image_cases()}


class KernelsNotPinnable(RuntimeError):
    """This processor cannot run the recording's kernels (it is not an x86-64 with AVX2)."""


# The exit status of the fitting interpreter when the pin did not take (PyTorch's kernels there
# are not AVX2 ones): the processor lacks AVX2, or is not an x86-64 one.
_NOT_PINNABLE = 3


def fit_pinned(path: Path) -> None:
    """Fit every case in a fresh interpreter with ``PINNED_KERNELS`` and save the outputs to
    ``path`` (an ``.npz`` file of ``"case/output"`` arrays).

    Raises ``KernelsNotPinnable`` where the processor cannot run those kernels.
    """
    completed = subprocess.run(
        [sys.executable, __file__, "--here", str(path)],
        env={**os.environ, **PINNED_KERNELS},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode == _NOT_PINNABLE:
        raise KernelsNotPinnable(completed.stderr.strip())
    if completed.returncode != 0:
        raise RuntimeError(f"the regression fits failed:\n{completed.stderr[-4000:]}")


def _fit_here(path: Path) -> None:
    # Asked in the pinned interpreter: the capability PyTorch runs with under the pin, whatever
    # the calling process's own environment asked for.
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        print(f"PyTorch's kernels here are {capability}, not AVX2", file=sys.stderr)
        sys.exit(_NOT_PINNABLE)
    arrays = {}
    torch.set_num_threads(1)
    for case, run in cases().items():
        for output, values in run().items():
            arrays[f"{case}/{output}"] = np.asarray(values, dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"{len(arrays)} arrays of {len(cases())} cases written to {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--here"]:
        _fit_here(Path(sys.argv[2]))
    else:
        fit_pinned(FIXTURE)
        print(f"fixture recorded in {FIXTURE}")
