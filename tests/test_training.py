"""The skorch training engine in skood._training, used directly (no detector): in-memory
batches (with targets), optimizer groups, ``step_optimizers`` and skorch's step closure,
learning-rate schedules of every optimizer, gradient clipping, loss records, divergence
checks, seeded random numbers, pickling, warm continuation and Ctrl-C."""

import math
import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.history import History

from skood._training import (
    EveryOptimizerLRScheduler,
    FiniteGradientNormClipping,
    InMemoryBatches,
    MultiModuleNet,
)
from skood.exceptions import TrainingDivergedError


def _rows(batches) -> list[int]:
    return [int(row) for batch in batches for row in batch[:, 0].tolist()]


def _sizes(n_rows: int, batch_size: int, min_rows: int = 1) -> list[int]:
    """Batch sizes computed independently of InMemoryBatches."""
    sizes = [batch_size] * (n_rows // batch_size)
    if n_rows % batch_size:
        sizes.append(n_rows % batch_size)
    if len(sizes) > 1 and sizes[-1] < min_rows:
        sizes[-2:] = [sizes[-2] + sizes[-1]]
    return sizes


def _seeded_linear(n_in: int, n_out: int, seed: int) -> torch.nn.Linear:
    layer = torch.nn.Linear(n_in, n_out)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return layer


def _ids(parameters) -> list[int]:
    return [id(parameter) for parameter in parameters]


def _snapshot(net) -> dict[str, list[torch.Tensor]]:
    return {
        name: [p.detach().clone() for p in network.parameters()]
        for name, network in net.networks().items()
    }


def _lrs(net) -> list[float]:
    return [
        group["lr"]
        for name in net.optimizer_names()
        for group in getattr(net, name + "_").param_groups
    ]


class _GradientRecorder(Callback):
    """Records every ``on_grad_computed``: which parameters, their values and gradients."""

    def initialize(self):
        self.calls = []
        return self

    def on_grad_computed(self, net, named_parameters, batch=None, training=None, **kwargs):
        pairs = list(named_parameters)
        self.calls.append(
            {
                "ids": _ids(p for _, p in pairs),
                "values": [p.detach().clone() for _, p in pairs],
                "grads": [None if p.grad is None else p.grad.detach().clone() for _, p in pairs],
                "norm": float(
                    torch.linalg.vector_norm(
                        torch.stack([p.grad.norm() for _, p in pairs if p.grad is not None])
                    )
                ),
                "batch": batch,
                "training": training,
            }
        )


def _recorder(net) -> _GradientRecorder:
    return dict(net.callbacks_)["grads"]


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


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "min_rows", "sizes"),
    [
        (9, 4, 2, [4, 5]),  # a 1-row last batch joins the one before
        (13, 4, 2, [4, 4, 5]),
        (11, 4, 2, [4, 4, 3]),  # 3 rows are enough
        (12, 4, 2, [4, 4, 4]),
        (10, 4, 3, [4, 6]),
        (5, 2, 2, [2, 3]),
        (1, 4, 2, [1]),  # a single batch stays, however short
        (7, 1, 2, [1] * 5 + [2]),  # min_rows > batch_size: only the last batch joins
    ],
)
@pytest.mark.parametrize("shuffle", [False, True])
def test_min_rows_joins_a_short_last_batch_to_the_one_before(
    n_rows, batch_size, min_rows, sizes, shuffle
):
    assert sizes == _sizes(n_rows, batch_size, min_rows)
    data = torch.arange(float(n_rows)).unsqueeze(1)
    batches = InMemoryBatches(data, batch_size, shuffle=shuffle, seed=0, min_rows=min_rows)
    for _ in range(2):
        assert [len(batch) for batch in batches] == sizes
        assert len(batches) == len(sizes)
        assert sorted(_rows(batches)) == list(range(n_rows))


def test_unshuffled_batches_keep_the_row_order():
    data = torch.arange(7.0).unsqueeze(1)
    batches = InMemoryBatches(data, batch_size=3)
    assert [b[:, 0].tolist() for b in batches] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]
    assert _rows(batches) == list(range(7))  # and again the next epoch


def test_a_skorch_dataset_contributes_its_tensor():
    data = torch.arange(6.0).unsqueeze(1)
    batches = InMemoryBatches(Dataset(data, None), batch_size=4)
    assert batches.data is data
    assert batches.targets is None
    assert _rows(batches) == list(range(6))


@pytest.mark.parametrize("shuffle", [False, True])
def test_targets_stay_paired_with_their_rows(shuffle):
    n = 11
    data = torch.arange(float(n)).unsqueeze(1).repeat(1, 2)
    targets = 100 + torch.arange(n)  # integer targets of another dtype and shape
    batches = InMemoryBatches(Dataset(data, targets), 4, shuffle=shuffle, seed=3, min_rows=2)
    assert batches.targets is targets
    orders = []
    for _ in range(3):
        epoch = list(batches)
        assert len(epoch) == len(batches) == 3
        assert [len(x) for x, _ in epoch] == [len(y) for _, y in epoch] == [4, 4, 3]
        for x, y in epoch:
            assert y.dtype == targets.dtype and y.shape == (len(x),)
            assert torch.equal(y, 100 + x[:, 0].long())  # each target with its own row
        order = [int(row) for x, _ in epoch for row in x[:, 0].tolist()]
        assert sorted(order) == list(range(n))
        orders.append(order)
    if shuffle:
        assert len({tuple(order) for order in orders}) == 3
    else:
        assert orders == [list(range(n))] * 3


def test_multi_column_targets_keep_whole_rows():
    data = torch.arange(10.0).unsqueeze(1)
    targets = torch.arange(10.0).unsqueeze(1) * torch.tensor([[1.0, -1.0]])
    for x, y in InMemoryBatches(Dataset(data, targets), 3, shuffle=True, seed=0):
        assert torch.equal(y, x * torch.tensor([[1.0, -1.0]]))


@pytest.mark.parametrize(
    "data",
    [np.zeros((3, 1)), [[0.0], [1.0]], Dataset(np.zeros((3, 1)), None)],
    ids=["ndarray", "list", "dataset-of-ndarray"],
)
def test_non_tensor_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="torch.Tensor"):
        InMemoryBatches(data, batch_size=2)


@pytest.mark.parametrize(
    "targets",
    [torch.zeros(4), torch.zeros(6, 1), np.zeros(5)],
    ids=["too-short", "too-long", "ndarray"],
)
def test_targets_of_the_wrong_length_or_type_are_a_type_error(targets):
    dataset = Dataset(torch.zeros(5, 2), None)
    dataset.y = targets  # skorch's Dataset would refuse a length mismatch itself
    with pytest.raises(TypeError, match="one row per X row"):
        InMemoryBatches(dataset, batch_size=2)


# --------------------------------------------------------------------------- networks, groups
def _bare_net(cls=None, **kwargs) -> MultiModuleNet:
    settings = {
        "partners": {"critic": torch.nn.Linear(2, 1)},
        "loss_names": ("critic_loss",),
        "criterion": torch.nn.MSELoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.1,
        "device": "cpu",
    } | kwargs
    net = (cls or MultiModuleNet)(torch.nn.Linear(2, 2), **settings).initialize()
    net.history = History()
    net.history.new_epoch()
    net.history.new_batch()
    return net


def test_partners_are_registered_with_their_own_optimizer_by_default():
    net = _bare_net(partners={"critic": torch.nn.Linear(2, 1), "encoder": torch.nn.Linear(2, 3)})
    assert isinstance(net.critic_, torch.nn.Linear) and isinstance(net.encoder_, torch.nn.Linear)
    assert net.network_names() == ("module", "critic", "encoder")
    assert list(net.networks()) == ["module", "critic", "encoder"]
    assert net.networks()["critic"] is net.critic_ and net.networks()["module"] is net.module_
    assert net.optimizer_names() == ("optimizer", "optimizer_critic", "optimizer_encoder")
    assert net.optimizer_groups() == {
        "optimizer": (("module",), {}),
        "optimizer_critic": (("critic",), {}),
        "optimizer_encoder": (("encoder",), {}),
    }
    for optimizer, network in (
        (net.optimizer_, net.module_),
        (net.optimizer_critic_, net.critic_),
        (net.optimizer_encoder_, net.encoder_),
    ):
        assert isinstance(optimizer, torch.optim.Adam)
        [group] = optimizer.param_groups
        assert _ids(group["params"]) == _ids(network.parameters())
        assert group["lr"] == 0.1
    assert net.criterion_names() == ("criterion",)


def test_a_net_without_partners_has_one_optimizer():
    net = MultiModuleNet(torch.nn.Linear(2, 1), lr=0.1).initialize()
    assert net.network_names() == ("module",)
    assert net.optimizer_names() == ("optimizer",)
    assert net.partners == {}


class _GroupedNet(MultiModuleNet):
    """One optimizer over the main network and the encoder, one of its own lr for the critic."""

    def optimizer_groups(self):
        return {
            "optimizer": (("module", "encoder"), {}),
            "optimizer_critic": (("critic",), {"lr": 0.01, "momentum": 0.5}),
        }


def _grouped(cls=None, **kwargs) -> _GroupedNet:
    settings = {
        "partners": {"critic": _seeded_linear(3, 1, 1), "encoder": _seeded_linear(3, 3, 2)},
        "optimizer": torch.optim.SGD,
        "optimizer__momentum": 0.9,
        "optimizer__weight_decay": 1e-3,
        "lr": 0.1,
        "device": "cpu",
    } | kwargs
    return (cls or _GroupedNet)(_seeded_linear(3, 1, 0), **settings)


def test_optimizer_groups_decide_the_parameters_and_options_of_each_optimizer():
    net = _grouped().initialize()
    assert net.optimizer_names() == ("optimizer", "optimizer_critic")
    assert net.network_names() == ("module", "critic", "encoder")
    [main] = net.optimizer_.param_groups
    assert _ids(main["params"]) == _ids([*net.module_.parameters(), *net.encoder_.parameters()])
    assert (main["lr"], main["momentum"], main["weight_decay"]) == (0.1, 0.9, 1e-3)
    [critic] = net.optimizer_critic_.param_groups
    assert _ids(critic["params"]) == _ids(net.critic_.parameters())
    # The group's options override the shared ones; the others are still shared.
    assert (critic["lr"], critic["momentum"], critic["weight_decay"]) == (0.01, 0.5, 1e-3)


def test_optimizer_groups_combine_with_skorch_param_groups():
    net = _grouped(optimizer__param_groups=[("weight", {"lr": 0.3})]).initialize()
    for optimizer, networks in (
        (net.optimizer_, (net.module_, net.encoder_)),
        (net.optimizer_critic_, (net.critic_,)),
    ):
        groups = optimizer.param_groups
        everything = [p for network in networks for p in network.parameters()]
        assert sorted(_ids(p for g in groups for p in g["params"])) == sorted(_ids(everything))
        weights = [g for g in groups if g["lr"] == 0.3]
        assert [sorted(_ids(g["params"])) for g in weights] == [
            sorted(_ids(n.weight for n in networks))
        ]


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
    assert "Lower the learning rate (lr=0.1 now)" in message
    assert message.endswith("; the detector was left unfitted.")
    assert "critic_loss" not in net.history[-1, "batches", -1]


class _AdvisedNet(MultiModuleNet):
    divergence_advice = "Try lr={lr:g} below {net.lr}, seed {net.seed} or {net.hint}"
    hint = "fewer layers"


def test_divergence_advice_is_formatted_with_the_lr_and_the_net():
    net = _bare_net(_AdvisedNet, lr=0.0025, seed=17)
    net.optimizer_.param_groups[0]["lr"] = 1.5e-4  # the lr in effect, not the setting
    with pytest.raises(TrainingDivergedError) as info:
        net.record_losses({"critic_loss": float("nan")})
    assert str(info.value) == (
        "Training diverged at epoch 1, batch 1: critic_loss became nan. "
        "Try lr=0.00015 below 0.0025, seed 17 or fewer layers; the detector was left unfitted."
    )


# --------------------------------------------------------------------------- step_optimizers
def _three_networks(**kwargs) -> _GroupedNet:
    net = _grouped(
        optimizer__momentum=0.0,
        optimizer__weight_decay=0.0,
        callbacks=[("grads", _GradientRecorder())],
        **kwargs,
    ).initialize()
    net.history = History()
    net.history.new_epoch()
    net.history.new_batch()
    return net


def _joint_loss(net, x):
    return net.module_(x).pow(2).sum() + net.critic_(x).pow(2).mean() + net.encoder_(x).sin().sum()


@pytest.mark.parametrize(
    ("names", "stepped"),
    [
        (["optimizer_critic"], ["critic"]),
        (["optimizer"], ["module", "encoder"]),
        (["optimizer", "optimizer_critic"], ["module", "encoder", "critic"]),
    ],
)
def test_step_optimizers_notifies_the_gradients_of_its_networks_then_steps_them(names, stepped):
    net = _three_networks()
    x = torch.linspace(-1, 1, 12).reshape(4, 3)
    before = _snapshot(net)
    notified = [p for name in stepped for p in net.networks()[name].parameters()]
    values = [value for name in stepped for value in before[name]]
    expected = torch.autograd.grad(_joint_loss(net, x), notified)
    for parameter in net.critic_.parameters():
        parameter.grad = torch.full_like(parameter, 1e6)  # stale: must be zeroed first

    net.step_optimizers(_joint_loss(net, x), names, x)

    [call] = _recorder(net).calls  # once per call
    assert call["ids"] == _ids(notified)
    assert call["batch"] is x and call["training"] is True
    for grad, want in zip(call["grads"], expected, strict=True):
        torch.testing.assert_close(grad, want)  # computed afresh, not accumulated
    for value, old in zip(call["values"], values, strict=True):
        assert torch.equal(value, old)  # notified before the step
    after = _snapshot(net)
    lrs = {"module": 0.1, "encoder": 0.1, "critic": 0.01}
    for name in net.network_names():
        for old, new, parameter in zip(
            before[name], after[name], net.networks()[name].parameters(), strict=True
        ):
            if name in stepped:
                torch.testing.assert_close(new, old - lrs[name] * parameter.grad)
                assert not torch.equal(new, old)
            else:
                assert torch.equal(new, old)  # that optimizer did not step


@pytest.mark.parametrize(
    ("names", "untouched"),
    [(["optimizer_critic"], ["module", "encoder"]), (["optimizer"], ["critic"])],
)
def test_step_optimizers_back_propagates_into_its_own_networks_only(names, untouched):
    # The loss reaches every network; the others' gradients must stay exactly as they were
    # (neither accumulated into nor zeroed), so a step needs no requires_grad switching.
    net = _three_networks()
    x = torch.linspace(-1, 1, 12).reshape(4, 3)
    stale = {}
    for name in untouched:
        for parameter in net.networks()[name].parameters():
            parameter.grad = torch.full_like(parameter, 3.0)
            stale[id(parameter)] = parameter.grad.clone()

    net.step_optimizers(_joint_loss(net, x), names, x)

    for name in untouched:
        for parameter in net.networks()[name].parameters():
            assert torch.equal(parameter.grad, stale[id(parameter)])


def test_step_optimizers_with_a_frozen_network_in_its_group_steps_the_rest():
    net = _three_networks()
    x = torch.linspace(-1, 1, 12).reshape(4, 3)
    net.encoder_.requires_grad_(False)
    before = _snapshot(net)
    net.step_optimizers(_joint_loss(net, x), ["optimizer"], x)
    after = _snapshot(net)
    assert all(p.grad is None for p in net.encoder_.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before["encoder"], after["encoder"], strict=True))
    assert not any(
        torch.equal(a, b) for a, b in zip(before["module"], after["module"], strict=True)
    )


def test_step_optimizers_in_a_fit_notifies_every_update_of_an_alternating_step():
    net = _toy(callbacks=[("grads", _GradientRecorder())], max_epochs=2).fit(DATA, None)
    calls = _recorder(net).calls
    assert len(calls) == 2 * 3 * 2  # epochs x batches x optimizers
    module, critic = _ids(net.module_.parameters()), _ids(net.critic_.parameters())
    assert [call["ids"] for call in calls] == [module, critic] * 6
    assert all(grad is not None for call in calls for grad in call["grads"])


# --------------------------------------------------------------------------- skorch's closure
class _Regressor(MultiModuleNet):
    """A single-optimizer net on skorch's own step closure and criterion."""


def _regression_data(n=11):
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=generator)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return X, y


def test_a_single_optimizer_net_trains_on_targets_through_skorchs_closure():
    X, y = _regression_data()
    net = _Regressor(
        _seeded_linear(3, 1, 0),
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=3,
        batch_size=4,
        iterator_train__min_rows=2,
        callbacks=[("grads", _GradientRecorder())],
    ).fit(X, y)
    assert net.criterion_names() == ("criterion",)
    for epoch in net.history:
        assert [b["train_batch_size"] for b in epoch["batches"]] == [4, 4, 3]
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    calls = _recorder(net).calls
    assert len(calls) == 3 * 3  # on_grad_computed once per batch
    assert all(call["ids"] == _ids(net.module_.parameters()) for call in calls)
    assert all(isinstance(call["batch"], tuple) for call in calls)
    for call in calls:
        rows, targets = call["batch"]
        match = (rows.unsqueeze(1) == X.unsqueeze(0)).all(-1).float().argmax(1)
        assert torch.equal(targets, y[match])  # X and y rows stay paired in a fit too


class _AutoencoderNet(MultiModuleNet):
    """No criterion: the step computes its loss; one optimizer over two networks."""

    def optimizer_groups(self):
        return {"optimizer": (("module", "encoder"), {})}

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        reconstruction = self.module_(self.encoder_(batch))
        loss = (batch - reconstruction).pow(2).mean()
        loss.backward()
        self.record_losses({"train_loss": loss})
        return {"loss": loss, "y_pred": reconstruction}


def _autoencoder(**kwargs) -> _AutoencoderNet:
    settings = {
        "partners": {"encoder": _seeded_linear(3, 2, 1)},
        "optimizer": torch.optim.Adam,
        "lr": 0.05,
        "max_epochs": 4,
        "batch_size": 4,
        "callbacks": [("grads", _GradientRecorder())],
    } | kwargs
    return _AutoencoderNet(_seeded_linear(2, 3, 0), **settings)


def test_a_net_without_criterion_trains_and_pickles():
    net = _autoencoder().fit(DATA, None)
    assert net.criterion is None
    assert net.criterion_names() == ()
    assert not hasattr(net, "criterion_")
    assert net.optimizer_names() == ("optimizer",)
    losses = net.history[:, "train_loss"]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    calls = _recorder(net).calls
    assert len(calls) == 4 * 3  # skorch's closure: on_grad_computed once per batch
    both = _ids([*net.module_.parameters(), *net.encoder_.parameters()])
    assert all(call["ids"] == both for call in calls)
    restored = pickle.loads(pickle.dumps(net))
    assert restored.criterion is None and restored.criterion_names() == ()
    assert restored.encoder_ is restored.partners["encoder"]
    assert restored.module_ is restored.module
    torch.testing.assert_close(
        restored.module_(restored.encoder_(DATA)), net.module_(net.encoder_(DATA)), rtol=0, atol=0
    )
    restored.partial_fit(DATA, epochs=1)  # and trains on after loading
    assert len(restored.history) == 5


# --------------------------------------------------------------------------- a toy GAN-like net
class _ToyNet(MultiModuleNet):
    """A generator fitted to the net's seeded noise and a critic fitted to zero, updated in
    turn by ``step_optimizers``; ``replace`` swaps the values record_losses sees at chosen
    (epoch, batch) positions; ``interrupt_at`` raises Ctrl-C at one."""

    def __init__(self, module, *, replace=None, interrupt_at=None, **kwargs):
        self.replace = replace
        self.interrupt_at = interrupt_at
        super().__init__(module, **kwargs)

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        position = (len(self.history), len(self.history[-1, "batches"]))
        if position == self.interrupt_at:
            raise KeyboardInterrupt
        noise = self.randn(len(batch), 1)
        loss = (self.module_(batch) - noise).pow(2).mean()
        self.step_optimizers(loss, ["optimizer"], batch)
        critic_loss = self.critic_(batch).pow(2).mean()
        self.step_optimizers(critic_loss, ["optimizer_critic"], batch)
        losses = {"train_loss": loss, "critic_loss": critic_loss}
        losses |= (self.replace or {}).get(position, {})
        self.history.record_batch("noise_sum", noise.sum().item())
        self.history.record_batch("rows", batch[:, 0].tolist())
        self.record_losses(losses)
        return {"loss": loss}


def _toy(seed=0, **kwargs) -> _ToyNet:
    settings = {
        "partners": {"critic": _seeded_linear(3, 1, 1)},
        "loss_names": ("critic_loss",),
        "optimizer": torch.optim.SGD,
        "lr": 0.1,
        "max_epochs": 3,
        "batch_size": 4,
        "device": "cpu",
        "seed": seed,
    } | kwargs
    return _ToyNet(_seeded_linear(3, 1, 0), **settings)


DATA = torch.arange(30.0).reshape(10, 3) / 30


def _trace(net, key="noise_sum"):
    return [batch[key] for epoch in net.history for batch in epoch["batches"]]


def test_a_fit_trains_on_every_row_and_records_epoch_means():
    net = _toy().fit(DATA, None)
    assert len(net.history) == 3
    for epoch in net.history:
        sizes = [batch["train_batch_size"] for batch in epoch["batches"]]
        assert sizes == [4, 4, 2]  # no validation split: every row, every epoch
        rows = sorted(row for batch in epoch["batches"] for row in batch["rows"])
        assert rows == DATA[:, 0].tolist()
        for key in ("train_loss", "critic_loss"):
            values = [batch[key] for batch in epoch["batches"]]
            assert epoch[key] == pytest.approx(np.average(values, weights=sizes), rel=1e-12)
            assert math.isfinite(epoch[key])
        assert epoch["dur"] > 0


def test_random_numbers_and_batch_order_come_from_the_seed():
    torch.manual_seed(1)
    first = _toy(seed=5).fit(DATA, None)
    torch.manual_seed(2)  # the global generator plays no part
    second = _toy(seed=5).fit(DATA, None)
    other = _toy(seed=6).fit(DATA, None)
    assert _trace(first) == _trace(second)
    assert _trace(first, "rows") == _trace(second, "rows")
    assert _trace(first) != _trace(other)
    assert _trace(first, "rows") != _trace(other, "rows")
    for a, b in zip(first.module_.parameters(), second.module_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_second_fit_starts_the_streams_again():
    net = _toy(seed=5).fit(DATA, None)
    first = (_trace(net), _trace(net, "rows"))
    net.fit(DATA, None)  # no warm start: re-initialized and reseeded
    assert (_trace(net), _trace(net, "rows")) == first


def test_fitted_net_drops_its_generator_and_pickles():
    net = _toy().fit(DATA, None)
    assert not hasattr(net, "_random") and not hasattr(net, "_train_batches")
    restored = pickle.loads(pickle.dumps(net))
    assert restored.module_ is restored.module
    assert restored.critic_ is restored.partners["critic"]
    assert torch.equal(restored.critic_.weight, net.critic_.weight)
    assert torch.equal(restored.module_(DATA), net.module_(DATA))


def test_a_non_finite_loss_during_fit_names_epoch_and_batch():
    nan = {(2, 3): {"critic_loss": torch.tensor(float("nan"))}}
    with pytest.raises(TrainingDivergedError, match="epoch 2, batch 3: critic_loss became nan"):
        _toy(replace=nan).fit(DATA, None)


@pytest.mark.parametrize("limit", [None, 1e3])
def test_a_train_loss_grown_past_the_limit_is_divergence(limit, monkeypatch):
    monkeypatch.setattr(_ToyNet, "loss_growth_limit", limit)
    huge = {(2, 2): {"train_loss": 1e12}}
    if limit is None:
        _toy(replace=huge, max_epochs=2).fit(DATA, None)
        return
    with pytest.raises(
        TrainingDivergedError, match=r"on the first batch\) became 1000000000000.0\."
    ) as e:
        _toy(replace=huge, max_epochs=2).fit(DATA, None)
    assert "epoch 2, batch 2: train_loss (" in str(e.value)


def test_ctrl_c_reaches_the_caller_after_training_ends():
    net = _toy(interrupt_at=(2, 2))
    with pytest.raises(KeyboardInterrupt):
        net.fit(DATA, None)
    assert len(net.history) == 2
    [done, interrupted] = net.history[-1, "batches"]
    assert "train_loss" in done and "train_loss" not in interrupted
    # on_train_end ran: the streams were saved and the generator dropped
    assert hasattr(net, "_noise_state") and hasattr(net, "_batch_order_state")
    assert not hasattr(net, "_random") and "_interrupt" not in net.__dict__
    net.interrupt_at = None
    net.partial_fit(DATA, epochs=1)  # the old interrupt is not raised again
    assert len(net.history) == 3


# --------------------------------------------------------------------------- warm continuation
def _schedule(gamma=0.5):
    return EveryOptimizerLRScheduler(policy=torch.optim.lr_scheduler.ExponentialLR, gamma=gamma)


def _scheduled(**kwargs) -> _ToyNet:
    return _toy(
        callbacks=[("lr_decay", _schedule())],
        optimizer__momentum=0.9,
        optimizer__param_groups=[("weight", {"lr": 0.3})],
        **kwargs,
    )


def test_the_schedule_decays_every_group_of_every_optimizer():
    initial = _lrs(_scheduled().initialize())
    assert sorted(initial) == [0.1, 0.1, 0.3, 0.3]  # 2 optimizers x 2 param groups
    net = _scheduled().fit(DATA, None)
    assert _lrs(net) == [lr * 0.5 * 0.5 * 0.5 for lr in initial]
    main = initial[0]
    assert net.history[:, "event_lr"] == [main, main * 0.5, main * 0.5 * 0.5]


class _GroupedTrainer(_GroupedNet):
    def train_step(self, batch, **fit_params):
        loss = self.module_(self.encoder_(batch)).pow(2).mean() + self.critic_(batch).mean()
        self.step_optimizers(loss, self.optimizer_names(), batch)
        return {"loss": loss}


def test_the_schedule_decays_an_optimizer_group_with_its_own_lr():
    net = _grouped(
        _GroupedTrainer, callbacks=[("lr_decay", _schedule(0.9))], max_epochs=3, batch_size=4
    )
    initial = _lrs(net.initialize())
    assert initial == [0.1, 0.01]
    net.fit(DATA, None)
    assert _lrs(net) == [lr * 0.9 * 0.9 * 0.9 for lr in initial]
    assert net.history[:, "event_lr"] == [0.1, 0.1 * 0.9, 0.1 * 0.9 * 0.9]


def test_the_lr_in_the_divergence_message_is_the_scheduled_one():
    nan = {(3, 1): {"critic_loss": float("nan")}}
    with pytest.raises(TrainingDivergedError, match=r"epoch 3, batch 1: .*\(lr=0.075 now\)"):
        _scheduled(replace=nan).fit(DATA, None)  # the first group's 0.3, decayed twice


def _assert_same_training(net, reference):
    assert _lrs(net) == _lrs(reference)
    assert net.history[:, "event_lr"] == reference.history[:, "event_lr"]
    assert _trace(net) == _trace(reference)
    assert _trace(net, "rows") == _trace(reference, "rows")
    for name, network in reference.networks().items():
        for a, b in zip(net.networks()[name].parameters(), network.parameters(), strict=True):
            assert torch.equal(a, b)


def test_partial_fit_continues_exactly_as_one_longer_fit():
    reference = _scheduled(max_epochs=3).fit(DATA, None)
    net = _scheduled(max_epochs=2).fit(DATA, None)
    assert _lrs(net) != _lrs(reference)
    net.partial_fit(DATA, epochs=1)
    _assert_same_training(net, reference)


def test_warm_start_fit_continues_exactly_as_one_longer_fit():
    reference = _scheduled(max_epochs=3).fit(DATA, None)
    net = _scheduled(max_epochs=1, warm_start=True).fit(DATA, None)
    net.set_params(max_epochs=2)
    net.fit(DATA, None)
    _assert_same_training(net, reference)


def test_training_continued_after_pickling_is_one_longer_fit():
    reference = _scheduled(max_epochs=3).fit(DATA, None)
    net = pickle.loads(pickle.dumps(_scheduled(max_epochs=2).fit(DATA, None)))
    net.partial_fit(DATA, epochs=1)
    _assert_same_training(net, reference)


# --------------------------------------------------------------------------- gradient clipping
def _gradients(seed=0, scale=10.0):
    generator = torch.Generator().manual_seed(seed)
    parameters = [torch.nn.Parameter(torch.zeros(shape)) for shape in ((3, 2), (2,), (4,))]
    for parameter in parameters:
        parameter.grad = scale * torch.randn(parameter.shape, generator=generator)
    return parameters


def test_clipping_scales_the_total_gradient_norm_to_the_limit():
    parameters = _gradients()
    copies = [torch.nn.Parameter(p.detach().clone()) for p in parameters]
    for copy, parameter in zip(copies, parameters, strict=True):
        copy.grad = parameter.grad.clone()
    assert torch.nn.utils.clip_grad_norm_(copies, 1.0) > 1.0  # there is something to clip
    clipping = FiniteGradientNormClipping(gradient_clip_value=1.0)
    clipping.on_grad_computed(
        _bare_net(), named_parameters=((str(i), p) for i, p in enumerate(parameters))
    )
    for copy, parameter in zip(copies, parameters, strict=True):
        assert torch.equal(parameter.grad, copy.grad)
    norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in parameters]))
    assert norm.item() == pytest.approx(1.0, rel=1e-5)


def test_clipping_leaves_small_gradients_and_a_none_limit_alone():
    small = _gradients(scale=1e-3)
    before = [p.grad.clone() for p in small]
    FiniteGradientNormClipping(1.0).on_grad_computed(None, named_parameters=enumerate(small))
    assert all(torch.equal(p.grad, b) for p, b in zip(small, before, strict=True))
    large = _gradients()
    large[0].grad[0, 0] = float("nan")
    before = [p.grad.clone() for p in large]
    FiniteGradientNormClipping(None).on_grad_computed(None, named_parameters=enumerate(large))
    for p, b in zip(large, before, strict=True):
        assert torch.equal(p.grad.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_gradient_norm_is_divergence(bad):
    parameters = _gradients()
    parameters[1].grad[0] = bad
    with pytest.raises(TrainingDivergedError, match=f"the parameter gradient norm became {bad}"):
        FiniteGradientNormClipping(1.0).on_grad_computed(
            _bare_net(), named_parameters=enumerate(parameters)
        )


@pytest.mark.parametrize("make", [_toy, _autoencoder], ids=["step_optimizers", "closure"])
def test_clipping_in_a_fit_limits_every_update(make):
    callbacks = [("clip", FiniteGradientNormClipping(1.0)), ("grads", _GradientRecorder())]
    net = make(callbacks=callbacks, lr=0.01, max_epochs=2).fit(DATA * 30, None)
    norms = [call["norm"] for call in _recorder(net).calls]
    assert norms and max(norms) <= 1.0 + 1e-5
    unclipped = make(callbacks=[("grads", _GradientRecorder())], lr=0.01, max_epochs=1)
    unclipped.fit(DATA * 30, None)
    assert _recorder(unclipped).calls[0]["norm"] > 1.0  # there was something to clip


def test_a_non_finite_gradient_during_fit_names_epoch_and_batch():
    net = _toy(callbacks=[("clip", FiniteGradientNormClipping(1.0))]).initialize()
    calls = []

    def poison(grad):
        calls.append(None)
        return grad * float("nan") if len(calls) == 5 else grad

    net.critic_.bias.register_hook(poison)
    net.warm_start = True
    with pytest.raises(
        TrainingDivergedError, match="epoch 2, batch 2: the parameter gradient norm became nan"
    ):
        net.fit(DATA, None)


def test_autocast_follows_mixed_precision_on_the_cpu():
    with _toy(mixed_precision=True).autocast():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with _toy(mixed_precision=False).autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_a_float32_step_inside_a_callers_autocast_region_stays_float32():
    net = _toy(mixed_precision=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with net.autocast():
            assert not torch.is_autocast_enabled("cpu")
            product = torch.ones(2, 2) @ torch.ones(2, 2)
        assert torch.is_autocast_enabled("cpu")  # the caller's region is restored
    assert product.dtype == torch.float32


def test_set_training_switches_a_network_with_any_module_in_the_other_mode():
    net = MultiModuleNet(
        torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)),
        partners={"critic": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))},
    ).initialize()
    net._set_training(True)
    assert all(layer.training for network in net.networks().values() for layer in network.modules())
    # One submodule left in eval mode (as a step that evaluates a part of a network would).
    next(iter(net.critic_.children())).eval()
    net._set_training(True)
    assert all(layer.training for layer in net.critic_.modules())
    net._set_training(False)
    assert not any(
        layer.training for network in net.networks().values() for layer in network.modules()
    )


# --------------------------------------------------------------------------- edge cases
def test_no_rows_give_no_batches():
    batches = InMemoryBatches(torch.zeros(0, 2), batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 0
    assert list(batches) == []


class _CriticFirst(_GroupedTrainer):
    """The critic's optimizer listed before the main one."""

    def optimizer_groups(self):
        groups = super().optimizer_groups()
        return {"optimizer_critic": groups["optimizer_critic"], "optimizer": groups["optimizer"]}


def test_event_lr_is_the_main_optimizers_whatever_the_order_of_the_groups():
    net = _grouped(_CriticFirst, callbacks=[("lr_decay", _schedule(0.5))], max_epochs=2)
    net.fit(DATA, None)
    assert net.history[:, "event_lr"] == [0.1, 0.05]


def test_a_plateau_policy_is_refused_with_a_pointer_to_skorchs_scheduler():
    scheduler = EveryOptimizerLRScheduler(
        policy=torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0
    )
    with pytest.raises(TypeError, match="use skorch.s LRScheduler for ReduceLROnPlateau"):
        _toy(callbacks=[("plateau", scheduler)]).fit(DATA, None)


class _WithTeacher(MultiModuleNet):
    """One optimizer over the module; a trainable partner no optimizer updates."""

    def optimizer_groups(self):
        return {"optimizer": (("module",), {})}

    def train_step_single(self, batch, **fit_params):
        loss = (self.module_(batch) - self.teacher_(batch)).pow(2).mean()
        loss.backward()
        return {"loss": loss, "y_pred": None}


def test_the_closure_reports_only_the_parameters_the_optimizers_update():
    net = _WithTeacher(
        _seeded_linear(3, 1, 0),
        partners={"teacher": _seeded_linear(3, 1, 1)},
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=1,
        batch_size=4,
        callbacks=[("grads", _GradientRecorder())],
    ).fit(DATA, None)
    calls = _recorder(net).calls
    assert calls and all(call["ids"] == _ids(net.module_.parameters()) for call in calls)
