"""Detectors fitted and pickled on a real GPU load and score on a machine without CUDA.

The fixture (``tests/fixtures/cuda/``) is recorded by ``tests/_cuda_fixture.py`` on a GPU
machine; the simulated checks (``check_cuda_marked_model_loads_on_cpu``, ``test_io.py``) cover
the same path everywhere, these the files a GPU actually wrote.
"""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from _cuda_fixture import FIXTURE_DIR, MANIFEST, SCORES
from skorch.exceptions import DeviceWarning

import skood.io
from skood.utils.estimator_checks import _nets, _tensors

pytestmark = pytest.mark.skipif(
    not MANIFEST.exists(),
    reason="not recorded yet: needs a GPU (tests/_cuda_fixture.py, run by benchmarks/gpu_suite.sh)",
)
CASES = json.loads(MANIFEST.read_text())["cases"] if MANIFEST.exists() else []


@pytest.fixture
def no_cuda(monkeypatch):
    """This process as one without CUDA, also where a GPU exists."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture(scope="module")
def recorded():
    return dict(np.load(SCORES))


def _assert_on_the_cpu(detector, case):
    nets = _nets(detector)
    assert nets and {str(net.device) for net in nets} == {"cpu"}, case
    tensors = list(_tensors(detector, set()))
    assert tensors, f"{case}: no tensors found"
    assert {tensor.device.type for tensor in tensors} == {"cpu"}, case


def _assert_scores_as_on_the_gpu(detector, recorded, case):
    scores = detector.score_samples(recorded[f"{case}/X"])
    expected = recorded[case]
    # The GPU's kernels round differently from the CPU's: agreement to float32 rounding.
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5 * np.max(np.abs(expected)))
    return scores


def test_the_fixture_was_written_on_a_gpu():
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["gpu"] and manifest["cuda"], manifest
    for case in CASES:
        # torch tags each pickled storage with its device's name.
        assert b"cuda:0" in (FIXTURE_DIR / f"{case}.pkl").read_bytes(), case


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("case", CASES)
def test_a_pickle_from_the_gpu_loads_and_scores_on_the_cpu(case, recorded):
    with pytest.warns(DeviceWarning, match="CUDA"):
        detector = pickle.loads((FIXTURE_DIR / f"{case}.pkl").read_bytes())
    _assert_on_the_cpu(detector, case)
    scores = _assert_scores_as_on_the_gpu(detector, recorded, case)
    decision = detector.decision_function(recorded[f"{case}/X"])
    np.testing.assert_array_equal(decision, scores - detector.offset_)
    assert set(np.unique(detector.predict(recorded[f"{case}/X"]))) <= {-1, 1}


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("case", CASES)
def test_an_archive_from_the_gpu_loads_on_the_cpu_as_its_pickle(case, recorded):
    with pytest.warns(DeviceWarning, match="'cuda"):
        detector = skood.io.load(FIXTURE_DIR / f"{case}.skood")
    _assert_on_the_cpu(detector, case)
    scores = _assert_scores_as_on_the_gpu(detector, recorded, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeviceWarning)
        from_pickle = pickle.loads((FIXTURE_DIR / f"{case}.pkl").read_bytes())
    # The same weights on the same processor: the same scores, bit for bit.
    np.testing.assert_array_equal(scores, from_pickle.score_samples(recorded[f"{case}/X"]))
