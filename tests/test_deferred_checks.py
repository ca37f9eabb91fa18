"""Sync-free loss accounting: batch losses stay on the device until the epoch ends.

On CUDA every ``loss.item()`` is a host synchronisation that stalls the GPU; with
``MultiModuleNet.deferred_loss_checks`` (the default on CUDA) a net records its losses as
device tensors and brings them to the host once per epoch. These tests force it on the CPU:
the fit must be the same to the last bit, no loss may be read per batch, and divergence must
still stop training with TrainingDivergedError.
"""

import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from _detectors import fit

from skood import TrainingDivergedError
from skood._training import MultiModuleNet

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["dlsgan", "autoencoder", "flow", "invgan", "posthoc", "conditional"]
SKOOD = str(Path(__file__).resolve().parents[1] / "skood")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 5))
    return X, (X[:, 0] > 0).astype(int)


def _reads_per_batch(monkeypatch) -> list:
    """Record every ``Tensor.item()`` called from skood's code or skorch's epoch loop."""
    reads = []
    original = torch.Tensor.item

    def item(tensor):
        caller = traceback.extract_stack(limit=2)[0]
        if caller.filename.startswith(SKOOD) or caller.filename.endswith("skorch/net.py"):
            reads.append(f"{caller.filename}:{caller.lineno}")
        return original(tensor)

    monkeypatch.setattr(torch.Tensor, "item", item)
    return reads


@pytest.mark.parametrize("name", NAMES)
def test_deferred_checks_train_the_same_model_without_reading_losses(name, data, monkeypatch):
    X, y = data
    immediate = fit(name, X, y, max_epochs=3)
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", True)
    reads = _reads_per_batch(monkeypatch)
    deferred = fit(name, X, y, max_epochs=3)
    monkeypatch.undo()
    assert reads == [], f"losses read on the host during training: {reads[:3]}"
    np.testing.assert_array_equal(deferred.score_samples(X), immediate.score_samples(X))
    for before, after in zip(immediate.history_, deferred.history_, strict=True):
        assert after["batches"] == before["batches"]
        assert all(
            isinstance(value, int | float) for row in after["batches"] for value in row.values()
        )


def _outcome(name, X, y):
    """What a fit at a huge learning rate ends in: the error message, or the warnings."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            detector = fit(name, X, y, lr=1e6, max_epochs=3)
        except TrainingDivergedError as error:
            return "error", str(error).split(":")[0]
    assert np.all(np.isfinite(detector.score_samples(X))), "NaN scores after divergence"
    return "warned", sorted({type(warning.message).__name__ for warning in caught})


@pytest.mark.parametrize("name", ["dlsgan", "autoencoder", "flow", "invgan"])
def test_divergence_ends_as_with_immediate_checks(name, data, monkeypatch):
    # A huge learning rate stops with TrainingDivergedError (the same epoch and batch named)
    # or fits with the same warning, never with NaN scores.
    X, y = data
    immediate = _outcome(name, X, y)
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", True)
    deferred = _outcome(name, X, y)
    assert deferred[0] == immediate[0]
    if immediate[0] == "warned":
        assert deferred == immediate
    else:
        assert deferred[1].startswith("Training diverged at epoch")


def test_a_nan_loss_is_named_with_its_epoch_and_batch(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", True)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch \d+: train_loss became"):
        fit("autoencoder", X, y, lr=1e6, max_epochs=3)


def test_checks_are_deferred_on_cuda_only_by_default(data):
    X, y = data
    net = fit("dlsgan", X, y).net_
    assert not net.defers_loss_checks()
    net.device = "cuda"  # the attribute alone: no GPU needed to read the policy
    assert net.defers_loss_checks()
    net.deferred_loss_checks = False
    assert not net.defers_loss_checks()
