"""The skorch training engine in skood._training: in-memory batches, learning-rate decay,
partner networks, loss records and divergence checks, used directly (no detector)."""

import math
import pickle

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset
from skorch.history import History

from skood import TrainingDivergedError
from skood._training import AdversarialNet, InMemoryBatches, LearningRateDecay


def _rows(batches) -> list[int]:
    return [int(row) for batch in batches for row in batch[:, 0].tolist()]


# --------------------------------------------------------------------------- InMemoryBatches
def test_every_row_once_per_epoch_in_a_new_shuffled_order():
    n = 50
    data = torch.arange(float(n)).unsqueeze(1).repeat(1, 3)
    batches = InMemoryBatches(data, batch_size=8, shuffle=True, seed=0)
    epochs = [_rows(batches) for _ in range(4)]
    for order in epochs:
        assert sorted(order) == list(range(n))  # every row exactly once
        assert order != list(range(n))  # shuffled
    assert len({tuple(order) for order in epochs}) == len(epochs)  # a new order every epoch


def test_shuffled_batches_are_reproducible_from_the_seed():
    data = torch.arange(30.0).unsqueeze(1)
    first = InMemoryBatches(data, batch_size=4, shuffle=True, seed=7)
    second = InMemoryBatches(data, batch_size=4, shuffle=True, seed=7)
    other = InMemoryBatches(data, batch_size=4, shuffle=True, seed=8)
    for _ in range(3):
        order = _rows(first)
        assert _rows(second) == order
        assert _rows(other) != order


def test_batches_keep_whole_rows():
    data = torch.arange(40.0).reshape(10, 4)
    for batch in InMemoryBatches(data, batch_size=3, shuffle=True, seed=0):
        assert batch.shape[1:] == (4,)
        assert batch.dtype == data.dtype and batch.device == data.device
        np.testing.assert_array_equal(batch[:, 1:] - batch[:, :1], [[1.0, 2.0, 3.0]] * len(batch))


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "sizes"),
    [
        (10, 4, [4, 4, 2]),
        (10, 5, [5, 5]),
        (10, 10, [10]),
        (3, 8, [3]),
        (1, 1, [1]),
        (7, 1, [1] * 7),
    ],
)
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_sizes_and_len(n_rows, batch_size, sizes, shuffle):
    batches = InMemoryBatches(torch.zeros(n_rows, 2), batch_size, shuffle=shuffle, seed=0)
    assert len(batches) == len(sizes) == math.ceil(n_rows / batch_size)
    assert [len(batch) for batch in batches] == sizes


def test_unshuffled_batches_keep_the_row_order():
    data = torch.arange(7.0).unsqueeze(1)
    batches = InMemoryBatches(data, batch_size=3)
    assert [b[:, 0].tolist() for b in batches] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]
    assert _rows(batches) == list(range(7))  # and again the next epoch


def test_a_skorch_dataset_contributes_its_tensor():
    data = torch.arange(6.0).unsqueeze(1)
    batches = InMemoryBatches(Dataset(data, None), batch_size=4)
    assert batches.data is data
    assert _rows(batches) == list(range(6))


@pytest.mark.parametrize(
    "data",
    [np.zeros((3, 1)), [[0.0], [1.0]], Dataset(np.zeros((3, 1)), None)],
    ids=["ndarray", "list", "dataset-of-ndarray"],
)
def test_non_tensor_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="torch.Tensor"):
        InMemoryBatches(data, batch_size=2)


# --------------------------------------------------------------------------- LearningRateDecay
class _TwoOptimizers:
    """The attributes LearningRateDecay reads from a net: ``_optimizers`` and the optimizers."""

    def __init__(self):
        weights = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
        self.optimizer_ = torch.optim.SGD(
            [{"params": [weights[0]]}, {"params": [weights[1]], "lr": 3.0}], lr=1.0
        )
        self.optimizer_partner_ = torch.optim.SGD([weights[2]], lr=2.0)
        self._optimizers = ["optimizer", "optimizer_partner"]


def _lrs(net) -> list[float]:
    return [g["lr"] for opt in (net.optimizer_, net.optimizer_partner_) for g in opt.param_groups]


def test_learning_rate_decay_scales_every_group_of_every_optimizer_each_epoch():
    net = _TwoOptimizers()
    decay = LearningRateDecay(0.5)
    decay.on_epoch_end(net)
    assert _lrs(net) == [0.5, 1.5, 1.0]
    decay.on_epoch_end(net)
    assert _lrs(net) == [0.25, 0.75, 0.5]


def test_learning_rate_decay_of_one_changes_nothing():
    net = _TwoOptimizers()
    for _ in range(3):
        LearningRateDecay(1.0).on_epoch_end(net)
    assert _lrs(net) == [1.0, 3.0, 2.0]


# --------------------------------------------------------------------------- AdversarialNet
def _bare_net(**kwargs) -> AdversarialNet:
    net = AdversarialNet(
        torch.nn.Linear(2, 2),
        partners={"critic": torch.nn.Linear(2, 1)},
        loss_names=("critic_loss",),
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=0.1,
        device="cpu",
        **kwargs,
    ).initialize()
    net.history = History()
    net.history.new_epoch()
    net.history.new_batch()
    return net


def test_partners_are_registered_with_their_own_optimizer():
    net = _bare_net()
    assert isinstance(net.critic_, torch.nn.Linear)
    critic = {id(p) for p in net.critic_.parameters()}
    generator = {id(p) for p in net.module_.parameters()}
    assert {id(p) for p in net.optimizer_critic_.param_groups[0]["params"]} == critic
    assert {id(p) for p in net.optimizer_.param_groups[0]["params"]} == generator
    assert net.optimizer_critic_.param_groups[0]["lr"] == 0.1
    # Registered with skorch, so device moves, pickling and LearningRateDecay see them.
    assert sorted(net._modules) == ["critic", "module"]
    assert sorted(net._optimizers) == ["optimizer", "optimizer_critic"]


def test_record_losses_records_named_losses_only():
    net = _bare_net()
    net.record_losses({"critic_loss": torch.tensor(1.5), "train_loss": torch.tensor(2.0)})
    assert net.history[-1, "batches", -1, "critic_loss"] == 1.5
    assert "train_loss" not in net.history[-1, "batches", -1]  # skorch records that one
    net.record_losses({"critic_loss": 0.25})  # plain numbers are fine too
    assert net.history[-1, "batches", -1, "critic_loss"] == 0.25


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", ["critic_loss", "train_loss"])
def test_record_losses_rejects_non_finite_values(name, bad):
    net = _bare_net()
    with pytest.raises(TrainingDivergedError, match=f"{name} became {bad}") as info:
        net.record_losses({name: torch.tensor(bad)})
    assert isinstance(info.value, FloatingPointError)
    message = str(info.value)
    assert "epoch 1, batch 1" in message
    assert "lr=0.1" in message
    assert "critic_loss" not in net.history[-1, "batches", -1]


class _ToyNet(AdversarialNet):
    """A generator fitted to the net's seeded noise and a critic fitted to zero; optionally
    a NaN loss at one (epoch, batch)."""

    def __init__(self, module, *, nan_at=None, **kwargs):
        self.nan_at = nan_at
        super().__init__(module, **kwargs)

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        noise = self.randn(len(batch), 1)
        loss = (self.module_(batch) - noise).pow(2).mean()
        critic_loss = self.critic_(batch).pow(2).mean()
        for optimizer, value in ((self.optimizer_, loss), (self.optimizer_critic_, critic_loss)):
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        position = (len(self.history), len(self.history[-1, "batches"]))
        if position == self.nan_at:
            critic_loss = torch.tensor(float("nan"))
        self.history.record_batch("noise_sum", noise.sum().item())
        self.record_losses({"train_loss": loss, "critic_loss": critic_loss})
        return {"loss": loss}


def _toy(seed=0, **kwargs) -> _ToyNet:
    gen = torch.Generator().manual_seed(0)
    module, critic = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    with torch.no_grad():
        for layer in (module, critic):
            for p in layer.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
    return _ToyNet(
        module,
        partners={"critic": critic},
        loss_names=("critic_loss",),
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=3,
        batch_size=4,
        device="cpu",
        seed=seed,
        **kwargs,
    )


DATA = torch.arange(30.0).reshape(10, 3) / 30


def test_a_fit_trains_on_every_row_and_records_epoch_means():
    net = _toy(lr_decay=0.5).fit(DATA, None)
    assert len(net.history) == 3
    for epoch in net.history:
        sizes = [batch["train_batch_size"] for batch in epoch["batches"]]
        assert sizes == [4, 4, 2]  # no validation split: every row, every epoch
        for key in ("train_loss", "critic_loss"):
            values = [batch[key] for batch in epoch["batches"]]
            assert epoch[key] == pytest.approx(np.average(values, weights=sizes), rel=1e-12)
            assert math.isfinite(epoch[key])
        assert epoch["dur"] > 0
    for optimizer in (net.optimizer_, net.optimizer_critic_):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3, rel=1e-12)


def test_random_numbers_and_batch_order_come_from_the_seed():
    def trace(net):
        return [batch["noise_sum"] for epoch in net.history for batch in epoch["batches"]]

    torch.manual_seed(1)
    first = _toy(seed=5).fit(DATA, None)
    torch.manual_seed(2)  # the global generator plays no part
    second = _toy(seed=5).fit(DATA, None)
    other = _toy(seed=6).fit(DATA, None)
    assert trace(first) == trace(second)
    assert trace(first) != trace(other)
    for a, b in zip(first.module_.parameters(), second.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fitted_net_drops_its_generator_and_pickles():
    net = _toy().fit(DATA, None)
    assert not hasattr(net, "_random")
    restored = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(restored.critic_.weight, net.critic_.weight, rtol=0, atol=0)
    torch.testing.assert_close(restored.module_(DATA), net.module_(DATA), rtol=0, atol=0)


def test_a_non_finite_loss_during_fit_names_epoch_and_batch():
    with pytest.raises(TrainingDivergedError, match="epoch 2, batch 3: critic_loss became nan"):
        _toy(nan_at=(2, 3)).fit(DATA, None)
