"""Several detectors of one configuration fitted in one training, their networks stacked.

On tables a training step costs its fixed overhead (Python dispatch, kernel launches, the
optimizer's per-tensor work), not its arithmetic, so the members of an ensemble train for
little more than one of them when their networks run as one: :func:`skood.nn.stack_networks`
puts each network's weights side by side, one optimizer updates the stacked weights (Adam
acts on each element alone, so this is each member's own Adam), and the net class's
``joint_train_step`` computes every member's losses in one pass.

Each member keeps everything a fit of its own gives it: its skorch net, with its callbacks,
history, random streams (batch order and noise are drawn from each member's own, in the same
order as its own fit would), learning-rate schedule and checks; the trained weights, buffers and
optimizer moments are written back into it. A jointly fitted member therefore equals the member
fitted alone up to float rounding (a batched matrix product rounds differently from a single
one), and warm starts, pickling and scoring are those of any fitted detector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from skorch.callbacks import Callback

from ._training import MultiModuleNet
from .base import _same_value
from .nn.stacked import copy_stacked_into, stack_networks

__all__ = ["can_fit_jointly", "fit_jointly", "train_nets_jointly"]


def can_fit_jointly(detector) -> bool:
    """Whether clones of ``detector`` can be fitted in one stacked training."""
    check = getattr(detector, "_can_train_jointly", None)
    return bool(check is not None and check())


def fit_jointly(detectors: Sequence, datasets: Sequence[np.ndarray]) -> None:
    """Fit fresh ``detectors`` (clones of one, seeds apart) on ``datasets`` in one training.

    Parameters
    ----------
    detectors : sequence of skood detectors
        Unfitted or to be refitted from scratch; one class and one set of parameters but
        ``random_state`` (:func:`can_fit_jointly` must hold).
    datasets : sequence of array-like of shape (n_samples, n_features)
        Each detector's training rows; one shape for all.

    Raises
    ------
    ValueError
        If the detectors differ in class, parameters or epochs, or the datasets in shape.
    """
    detectors = list(detectors)
    if len(detectors) != len(datasets):
        raise ValueError("fit_jointly needs one dataset per detector.")
    first = detectors[0]
    settings = first.get_params(deep=False)
    for detector in detectors:
        if type(detector) is not type(first) or not can_fit_jointly(detector):
            raise ValueError("fit_jointly needs detectors of one class that can train jointly.")
        if any(
            not _same_value(settings[name], value)
            for name, value in detector.get_params(deep=False).items()
            if name != "random_state"
        ):
            raise ValueError("fit_jointly needs detectors whose parameters differ by seed only.")
    with contextlib.ExitStack() as stack:
        tensors = [
            stack.enter_context(detector._fitting(X, None, continue_training=False, epochs=None))
            for detector, X in zip(detectors, datasets, strict=True)
        ]
        train_nets_jointly(
            [detector.net_ for detector in detectors],
            [
                detector._training_data(X_train, y_train)[0]
                for detector, (X_train, y_train) in zip(detectors, tensors, strict=True)
            ],
        )
        for detector, (X_train, _) in zip(detectors, tensors, strict=True):
            detector._complete_training(X_train)


def train_nets_jointly(nets: Sequence[MultiModuleNet], inputs: Sequence[torch.Tensor]) -> None:
    """Train skorch nets of one class and configuration in lockstep, their networks stacked.

    What ``net.partial_fit(X)`` does for each net (its callbacks, history, random streams and
    checks), with one step of ``type(net).joint_train_step`` per batch for all of them.

    Parameters
    ----------
    nets : sequence of MultiModuleNet
        Nets whose class defines ``joint_train_step``; one structure, one number of epochs.
    inputs : sequence of torch.Tensor
        Each net's training tensor, on its device; one shape for all.
    """
    nets = list(nets)
    lead = nets[0]
    step = type(lead).joint_train_step
    if any(type(net) is not type(lead) for net in nets):
        raise ValueError("train_nets_jointly needs nets of one class.")
    if len({net.max_epochs for net in nets}) != 1 or len({x.shape for x in inputs}) != 1:
        raise ValueError("train_nets_jointly needs one number of epochs and one data shape.")
    for net in nets:
        if not net.initialized_:
            net.initialize()
        net.check_training_readiness()
        _check_no_gradient_callbacks(net)
    stacked = {
        name: stack_networks([net.networks()[name] for net in nets])
        for name in lead.network_names()
    }
    optimizers = _stacked_optimizers(lead, stacked)
    for net in nets:
        for name in net.optimizer_names():
            # Their updates are made by the stacked optimizer; the learning-rate schedulers
            # that step them must not warn that they never stepped.
            getattr(net, name + "_")._opt_called = True
    datasets = [net.get_dataset(X) for net, X in zip(nets, inputs, strict=True)]
    for net, X in zip(nets, inputs, strict=True):
        net.__dict__.pop("_interrupt", None)
        net.notify("on_train_begin", X=X, y=None)
    iterators = [
        net.get_iterator(dataset, training=True)
        for net, dataset in zip(nets, datasets, strict=True)
    ]
    try:
        for _ in range(lead.max_epochs):
            for net, dataset in zip(nets, datasets, strict=True):
                net.notify("on_epoch_begin", dataset_train=dataset, dataset_valid=None)
                net.begin_training_epoch()
            _follow_learning_rates(lead, optimizers)
            batch_count = 0
            for batches in zip(*iterators, strict=True):
                for net, batch in zip(nets, batches, strict=True):
                    net.notify("on_batch_begin", batch=batch, training=True)
                steps = step(nets, stacked, optimizers, batches)
                for net, batch, member_step in zip(nets, batches, steps, strict=True):
                    net.record_training_step(batch, member_step)
                batch_count += 1
            # The epoch's callbacks (the traced variance, say) read the members' networks.
            for name, network in stacked.items():
                copy_stacked_into(network, [net.networks()[name] for net in nets])
            for net, dataset in zip(nets, datasets, strict=True):
                net.end_training_epoch(batch_count)
                net.notify("on_epoch_end", dataset_train=dataset, dataset_valid=None)
    except BaseException:
        for net in nets:
            net.close_progress()
        raise
    _copy_optimizer_states(lead, nets, stacked, optimizers)
    for net, X in zip(nets, inputs, strict=True):
        net.notify("on_train_end", X=X, y=None)


def _check_no_gradient_callbacks(net: MultiModuleNet) -> None:
    # The stacked step updates stacked weights: callbacks on the members' gradients (clipping,
    # say) would see none, so nets that have them train one by one, unless the net class's
    # stacked step does their work itself (joint_step_callbacks names those).
    done_by_step = getattr(type(net), "joint_step_callbacks", ())
    for name, callback in net.callbacks_:
        if name in done_by_step:
            continue
        if type(callback).on_grad_computed is not Callback.on_grad_computed:
            raise TypeError(
                f"Joint training cannot run the gradient callback {name!r} of "
                f"{type(net).__name__}; fit the members one by one."
            )


def _stacked_optimizers(
    lead: MultiModuleNet, stacked: dict[str, torch.nn.Module]
) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per optimizer group of the nets, over the stacked networks."""
    optimizers = {}
    for name, (network_names, _) in lead.optimizer_groups().items():
        member = getattr(lead, name + "_")
        if len(member.param_groups) != 1:
            raise TypeError("Joint training needs optimizers with one parameter group.")
        parameters = [p for network in network_names for p in stacked[network].parameters()]
        optimizers[name] = type(member)(parameters, **member.defaults)
    return optimizers


def _follow_learning_rates(lead: MultiModuleNet, optimizers: dict) -> None:
    # The members' schedulers decay their own optimizers' rates after each epoch.
    for name, optimizer in optimizers.items():
        optimizer.param_groups[0]["lr"] = getattr(lead, name + "_").param_groups[0]["lr"]


def _copy_optimizer_states(
    lead: MultiModuleNet,
    nets: Sequence[MultiModuleNet],
    stacked: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> None:
    """Give each member's optimizers their slice of the stacked optimizers' state (Adam's
    moments and step count), so that a warm start continues as after a fit of its own."""
    for name, optimizer in optimizers.items():
        network_names = lead.optimizer_groups()[name][0]
        for index, net in enumerate(nets):
            member = getattr(net, name + "_")
            for network in network_names:
                stacked_parameters = dict(stacked[network].named_parameters())
                for parameter_name, parameter in net.networks()[network].named_parameters():
                    source = stacked_parameters[parameter_name]
                    state = optimizer.state.get(source)
                    if not state:
                        continue
                    member.state[parameter] = {
                        key: _member_slice(value, source, index) for key, value in state.items()
                    }


def _member_slice(value, parameter: torch.Tensor, index: int):
    if isinstance(value, torch.Tensor):
        if value.shape == parameter.shape:
            return value[index].clone()
        return value.clone()  # a step count
    return value
