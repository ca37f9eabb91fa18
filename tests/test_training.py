"""The skorch training engine: in-memory batches, learning-rate decay, divergence checks."""

import numpy as np
import pytest
import torch
from skorch.history import History

from skood import TrainingDivergedError
from skood._training import AdversarialNet, InMemoryBatches, LearningRateDecay


def _rows(batches):
    return torch.cat([batch for batch in batches]).squeeze(1).tolist()


def test_batches_cover_every_row_once_per_epoch():
    data = torch.arange(10.0).unsqueeze(1)
    batches = InMemoryBatches(data, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3
    first = list(batches)
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(_rows(first)) == list(range(10))
    second = _rows(batches)
    assert sorted(second) == list(range(10))
    assert second != _rows(first)  # a new order every epoch
    again = InMemoryBatches(data, batch_size=4, shuffle=True, seed=0)
    assert _rows(again) == _rows(first)  # reproducible from the seed


def test_unshuffled_batches_keep_order_and_reject_arrays():
    data = torch.arange(5.0).unsqueeze(1)
    assert _rows(InMemoryBatches(data, batch_size=2)) == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="torch.Tensor"):
        InMemoryBatches(np.zeros((3, 1)), batch_size=2)


class _FakeNet:
    def __init__(self):
        self.optimizer_ = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        self.optimizer_partner_ = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
        self._optimizers = ["optimizer", "optimizer_partner"]


def test_learning_rate_decay_scales_every_optimizer():
    net = _FakeNet()
    decay = LearningRateDecay(0.5)
    decay.on_epoch_end(net)
    decay.on_epoch_end(net)
    assert net.optimizer_.param_groups[0]["lr"] == 0.25
    assert net.optimizer_partner_.param_groups[0]["lr"] == 0.5


def _net():
    net = AdversarialNet(
        torch.nn.Linear(2, 2),
        partners={"critic": torch.nn.Linear(2, 1)},
        loss_names=("critic_loss",),
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=0.1,
        device="cpu",
    ).initialize()
    net.history = History()
    net.history.new_epoch()
    net.history.new_batch()
    return net


def test_partners_get_their_own_optimizer():
    net = _net()
    critic_params = {id(p) for p in net.critic_.parameters()}
    assert {id(p) for p in net.optimizer_critic_.param_groups[0]["params"]} == critic_params
    assert not critic_params & {id(p) for p in net.optimizer_.param_groups[0]["params"]}


def test_record_losses_records_named_losses_and_rejects_non_finite():
    net = _net()
    net.record_losses({"critic_loss": torch.tensor(1.5), "train_loss": torch.tensor(2.0)})
    assert net.history[-1, "batches", -1, "critic_loss"] == 1.5
    assert "train_loss" not in net.history[-1, "batches", -1]  # skorch records that one
    for bad in (float("nan"), float("inf")):
        with pytest.raises(TrainingDivergedError, match="critic_loss became"):
            net.record_losses({"critic_loss": torch.tensor(bad)})
