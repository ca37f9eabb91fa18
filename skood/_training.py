"""The skorch training engine of every detector: one net over a set of networks.

:class:`MultiModuleNet` is a skorch ``NeuralNet`` whose ``module`` is the main network and
whose ``partners`` are further networks (a discriminator/encoder, an inference network, a
frozen classifier, ...). :meth:`MultiModuleNet.optimizer_groups` says which optimizer updates
which networks. A net with one optimizer trains through skorch's own step closure (a subclass
implements ``train_step_single``); a net that alternates between optimizers (a GAN) overrides
``train_step`` and updates each in turn with :meth:`MultiModuleNet.step_optimizers`, which
notifies ``on_grad_computed`` as skorch's closure does, so gradient callbacks see every update.
The engine also provides per-epoch learning-rate schedules for every optimizer
(:class:`EveryOptimizerLRScheduler`), a history of every loss (printed per epoch when
``verbose``), progress by batch at ``verbose >= 2``
(:class:`~skood._progress.TrainingProgress`), divergence checks, seeded random numbers and
batches sliced from tensors that stay on the training device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from skorch import NeuralNet
from skorch.callbacks import (
    EpochTimer,
    GradientNormClipping,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
)
from skorch.dataset import get_len
from skorch.utils import TeeGenerator

from ._progress import TrainingProgress
from .exceptions import TrainingDivergedError

__all__ = [
    "LOSS_GROWTH_LIMIT",
    "EveryOptimizerLRScheduler",
    "FiniteGradientNormClipping",
    "InMemoryBatches",
    "MultiModuleNet",
    "clip_member_gradients",
    "fused_optimizer_options",
]

#: ``MultiModuleNet.loss_growth_limit`` of the nets whose ``train_loss`` cannot be negative.
LOSS_GROWTH_LIMIT = 1e3


@functools.cache
def _fused_step_runs(optimizer: type[torch.optim.Optimizer], device_type: str) -> bool:
    """Whether ``optimizer(fused=True)`` takes a step on ``device_type`` with this PyTorch."""
    try:
        parameter = torch.zeros(2, device=device_type, requires_grad=True)
        parameter.grad = torch.ones_like(parameter)
        optimizer([parameter], lr=1e-3, fused=True).step()
    except (RuntimeError, ValueError, TypeError, AssertionError, NotImplementedError):
        return False
    return True


def fused_optimizer_options(optimizer: type[torch.optim.Optimizer], device) -> dict:
    """``{"optimizer__fused": True}`` where ``optimizer`` is Adam or AdamW and PyTorch has its
    fused kernel for ``device``, else ``{}``.

    The fused step updates every parameter of a group in one kernel; the default for-loop step
    runs several operations per parameter tensor, which on the small networks of a table is
    about a third of a training step's time (docs/training.md). Both compute Adam's update;
    they differ in the last bits, since the fused kernel orders its arithmetic differently.
    """
    if optimizer not in (torch.optim.Adam, torch.optim.AdamW):
        return {}
    if not _fused_step_runs(optimizer, torch.device(device).type):
        return {}
    return {"optimizer__fused": True}


class InMemoryBatches:
    """Mini-batches sliced from tensors that already sit on the training device.

    skorch's default ``DataLoader`` collates every batch from per-row ``__getitem__`` calls,
    which costs more than the forward pass of a small MLP. This iterator draws one random
    permutation per epoch and slices the tensors with it: ``X[rows]`` alone, or
    ``(X[rows], y[rows])`` when the dataset has targets.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.Tensor
        The data; a skorch ``Dataset`` contributes its ``X`` attribute, which must be a tensor,
        and its ``y`` attribute, a tensor with one row per ``X`` row or None.
    batch_size : int
        Rows per batch; the last batch of an epoch may be smaller.
    shuffle : bool, default=False
        Draw a new order of the rows every epoch.
    seed : int, optional
        Seed of the permutation generator (created once, so epochs differ).
    min_rows : int, default=1
        A last batch with fewer rows joins the batch before it (BatchNorm and batch
        statistics need at least two rows).

    Attributes
    ----------
    generator : torch.Generator
        The stream the permutations are drawn from; :class:`MultiModuleNet` carries its state
        from one training call to the next.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        min_rows: int = 1,
    ) -> None:
        data = getattr(dataset, "X", dataset)
        if not isinstance(data, torch.Tensor):
            raise TypeError(
                f"InMemoryBatches needs the data as a torch.Tensor, got {type(data).__name__}."
            )
        targets = getattr(dataset, "y", None)
        if targets is not None and (
            not isinstance(targets, torch.Tensor) or len(targets) != len(data)
        ):
            raise TypeError("InMemoryBatches needs the targets as a tensor with one row per X row.")
        self.data = data
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.min_rows = min_rows
        self.generator = torch.Generator(device=data.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n_batches = math.ceil(len(self.data) / self.batch_size)
        last = len(self.data) - (n_batches - 1) * self.batch_size
        return n_batches - 1 if n_batches > 1 and last < self.min_rows else n_batches

    def _row_blocks(self) -> Iterator[torch.Tensor | slice]:
        n_rows = len(self.data)
        if n_rows == 0:
            return
        starts = list(range(0, n_rows, self.batch_size))
        if len(starts) > 1 and n_rows - starts[-1] < self.min_rows:
            starts.pop()  # the short last batch joins the one before
        ends = [*starts[1:], n_rows]
        if self.shuffle:
            order = torch.randperm(n_rows, generator=self.generator, device=self.data.device)
            for start, end in zip(starts, ends, strict=True):
                yield order[start:end]
        else:
            for start, end in zip(starts, ends, strict=True):
                yield slice(start, end)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        for rows in self._row_blocks():
            if self.targets is None:
                yield self.data[rows]
            else:
                yield self.data[rows], self.targets[rows]


class _SchedulerOfEveryOptimizer:
    """One PyTorch scheduler per optimizer of a net, stepped together."""

    def __init__(self, schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler]) -> None:
        self.schedulers = list(schedulers)

    def step(self, *args) -> None:
        for scheduler in self.schedulers:
            scheduler.step(*args)

    def get_last_lr(self) -> list[float]:
        return self.schedulers[0].get_last_lr()


class EveryOptimizerLRScheduler(LRScheduler):
    """skorch's :class:`~skorch.callbacks.LRScheduler` applied to every optimizer of the net.

    skorch schedules ``net.optimizer_`` alone; a net of several networks has one optimizer per
    group of networks (:meth:`MultiModuleNet.optimizer_groups`), and each gets its own
    scheduler of ``policy``. The recorded ``event_lr`` is the main optimizer's.

    A training call that continues a fit (warm start, ``partial_fit``) starts each scheduler
    from the learning rates the optimizers hold: chainable policies such as
    :class:`~torch.optim.lr_scheduler.ExponentialLR` then go on exactly as in one longer call.
    """

    def __getstate__(self) -> dict:
        # The schedulers hold the net's optimizers, whose state lives on the net's device: a
        # pickle of them here would bypass skorch's device-aware pickling of ``optimizer_``, and
        # a net fitted on CUDA would then not load where there is none (skorch issue #1096).
        # ``on_train_begin`` builds them anew from the optimizers.
        state = self.__dict__.copy()
        state.pop("lr_scheduler_", None)
        return state

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        if issubclass(policy, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # skorch passes the monitored score only to a scheduler that is one itself.
            raise TypeError(
                "EveryOptimizerLRScheduler takes epoch- or batch-based policies; use skorch's "
                "LRScheduler for ReduceLROnPlateau."
            )
        scheduler_kwargs.setdefault("last_epoch", -1)
        # The main optimizer first: its learning rate is the one recorded as event_lr.
        names = sorted(net.optimizer_names(), key=lambda name: name != "optimizer")
        return _SchedulerOfEveryOptimizer(
            [policy(getattr(net, name + "_"), **scheduler_kwargs) for name in names]
        )


class FiniteGradientNormClipping(GradientNormClipping):
    """skorch's :class:`~skorch.callbacks.GradientNormClipping`, raising on non-finite norms.

    A non-finite gradient norm means training has diverged; clipping would turn it into a
    step of NaNs, so the net's :meth:`MultiModuleNet.raise_divergence` is called instead.
    """

    def on_grad_computed(self, net, named_parameters, **kwargs) -> None:
        if self.gradient_clip_value is None:
            return
        total = torch.nn.utils.clip_grad_norm_(
            (parameter for _, parameter in named_parameters),
            max_norm=self.gradient_clip_value,
            norm_type=self.gradient_clip_norm_type,
        )
        if net is not None:
            _check_gradient_norm(net, total)


def _check_gradient_norm(net: MultiModuleNet, total: torch.Tensor) -> None:
    if net.defers_loss_checks():
        net.defer_check("the parameter gradient norm", total)
        return
    norm = total.item()
    if not math.isfinite(norm):
        net.raise_divergence("the parameter gradient norm", norm)


def clip_member_gradients(
    nets: Sequence[MultiModuleNet], callback_name: str, parameters: Sequence[torch.Tensor]
) -> None:
    """Clip each stacked member's slice of the gradients of ``parameters`` (leading member
    axis) as its :class:`FiniteGradientNormClipping` callback ``callback_name`` clips a fit of
    its own: the same norm over the member's whole gradient, the same checks, in its own net."""
    callback = dict(nets[0].callbacks_)[callback_name]
    if callback.gradient_clip_value is None:
        return
    norm_type = callback.gradient_clip_norm_type
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    per_parameter = torch.stack(
        [torch.linalg.vector_norm(gradient.flatten(1), norm_type, dim=1) for gradient in gradients]
    )
    totals = torch.linalg.vector_norm(per_parameter, norm_type, dim=0)
    # torch.nn.utils.clip_grad_norm_'s coefficient, one per member.
    coefficients = (callback.gradient_clip_value / (totals + 1e-6)).clamp(max=1.0)
    for gradient in gradients:
        gradient.mul_(coefficients.view(-1, *[1] * (gradient.dim() - 1)))
    for net, total in zip(nets, totals, strict=True):
        _check_gradient_norm(net, total)


def optimized_parameters(optimizers: Sequence[torch.optim.Optimizer]) -> list[torch.Tensor]:
    """The parameters ``optimizers`` update that take gradients."""
    return [
        parameter
        for optimizer in optimizers
        for group in optimizer.param_groups
        for parameter in group["params"]
        if parameter.requires_grad
    ]


def _autocast_active(device_type: str) -> bool:
    """Whether an autocast region of ``device_type`` is open (True where PyTorch cannot say)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # PyTorch before 2.4 takes no device type
        return True


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


class QuietPrintLog(PrintLog):
    """skorch's ``PrintLog``, which formats the epoch's table row only when it is shown.

    skorch's formats every epoch and then drops the text when ``verbose`` is 0; on a small
    table that formatting costs about as much as a training step per epoch. The header is
    printed before the first row that is shown (a warm start that turns ``verbose`` on).
    """

    def on_epoch_end(self, net, **kwargs):
        if net.verbose or self.sink is not print:
            super().on_epoch_end(net, **kwargs)


class MultiModuleNet(NeuralNet):
    """A skorch net that trains a set of networks, each with the optimizer of its group.

    Parameters
    ----------
    module : torch.nn.Module
        The main network, already initialised (detectors seed their own initialisation).
    partners : mapping of str to torch.nn.Module, optional
        Further networks; ``partners["discriminator"]`` becomes ``net.discriminator_``. Which
        optimizer updates which network is :meth:`optimizer_groups`'s to say; all optimizers
        share the class and the ``optimizer__*`` settings.
    loss_names : sequence of str
        Losses that the step records per batch with :meth:`record_losses`; each gets a
        per-epoch mean in the history and a column in the printed log. ``train_loss`` is the
        ``"loss"`` that the step returns.
    seed : int, default=0
        Seed of the net's random numbers (latent samples, noise, batch order).
    mixed_precision : bool, default=False
        Run forward passes under bfloat16 autocast (see :meth:`autocast`).
    channels_last : bool, default=False
        Keep the convolution weights of every network in channels-last memory order, so
        that convolutions, pooling and their gradients run on channels-last activations
        (oneDNN's fast path on the CPU; NCHW average pooling is many times slower there).
        The values are the same; only the kernels, so the float rounding, differ.
    criterion : torch.nn.Module class or None, default=None
        skorch's criterion, for nets whose step uses ``get_loss``; None for nets whose step
        computes its losses itself.
    **kwargs
        Passed on to :class:`skorch.NeuralNet` (``optimizer``, ``lr``, ``max_epochs``,
        ``batch_size``, ``device``, ``callbacks``, ``verbose``, ...).

    Notes
    -----
    ``train_split`` is ``None`` (skorch would otherwise hold out 20% of the rows) and batches
    come from :class:`InMemoryBatches`, so ``fit`` expects the training data as tensors on
    ``device``.
    """

    #: History keys recorded per epoch but left out of the printed log (vectors, say).
    unprinted_keys: tuple[str, ...] = ()
    #: For a ``train_loss`` that cannot be negative (a cross-entropy, a squared error): the
    #: factor by which a batch's loss may exceed the first batch's before training counts as
    #: diverged. Such losses start near their largest sensible value, so growing a thousandfold
    #: means the weights blew up, even while every number stays finite. None: no such check.
    loss_growth_limit: float | None = None
    #: Whether batch losses and gradient norms stay on the device until the epoch ends, then
    #: come to the host in one transfer and are checked there, instead of one host
    #: synchronisation per loss per batch. None: on CUDA, where each synchronisation stalls
    #: the GPU; on the CPU reading a number costs nothing and every batch is checked at once.
    deferred_loss_checks: bool | None = None
    #: What the divergence error advises, after saying where training blew up.
    divergence_advice: str = (
        "Lower the learning rate (lr={lr:g} now), standardize the inputs, or raise the "
        "gradient penalty"
    )

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        partners: Mapping[str, torch.nn.Module] | None = None,
        loss_names: Sequence[str] = (),
        seed: int = 0,
        mixed_precision: bool = False,
        channels_last: bool = False,
        criterion=None,
        **kwargs,
    ) -> None:
        self.partners = dict(partners or {})
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        self.loss_names = tuple(loss_names)
        self.seed = seed
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("iterator_train", InMemoryBatches)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__seed", seed)
        kwargs.setdefault("iterator_valid", InMemoryBatches)
        super().__init__(module, criterion=criterion, **kwargs)

    def get_default_callbacks(self):
        losses = [(name, PassthroughScoring(name=name, on_train=True)) for name in self.loss_names]
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            *losses,
            # Before the table: a bar is erased before the epoch's row is printed.
            ("progress", TrainingProgress()),
            ("print_log", QuietPrintLog(keys_ignored=list(self.unprinted_keys))),
        ]

    # ------------------------------------------------------------------ networks
    def network_names(self) -> tuple[str, ...]:
        """Names of the networks, ``"module"`` first (``net.<name>_`` is the network)."""
        return tuple(self._modules)

    def networks(self) -> dict[str, torch.nn.Module]:
        """The networks by name, ``"module"`` first."""
        return {name: getattr(self, name + "_") for name in self._modules}

    def optimizer_names(self) -> tuple[str, ...]:
        """Names of the optimizers (``net.<name>_`` is the optimizer)."""
        return tuple(self._optimizers)

    def criterion_names(self) -> tuple[str, ...]:
        """Names of the criteria (none for nets that compute their losses in the step)."""
        return tuple(self._criteria)

    def optimizer_groups(self) -> dict[str, tuple[tuple[str, ...], dict]]:
        """Optimizer name -> (names of the networks it updates, options over the shared ones).

        By default ``optimizer`` updates ``module`` and ``optimizer_<name>`` each partner.
        """
        groups = {"optimizer": (("module",), {})}
        for name in self.partners:
            groups[f"optimizer_{name}"] = ((name,), {})
        return groups

    # ------------------------------------------------------------------ initialization
    def initialize(self):
        # A fresh start draws from the seeds again (``fit`` without warm start re-initializes).
        for attribute in ("_noise_state", "_batch_order_state"):
            self.__dict__.pop(attribute, None)
        return super().initialize()

    def initialize_module(self):
        super().initialize_module()
        for name, partner in self.partners.items():
            # skorch registers attributes ending in "_" set here as modules (device, pickling).
            setattr(self, name + "_", partner)
        if self.channels_last:
            # Only 4-D tensors change order; moving to the device keeps it (preserve_format).
            for network in self.networks().values():
                network.to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        if self.criterion is None:
            return self
        return super().initialize_criterion()

    def initialize_optimizer(self, *args, **kwargs):
        networks = self.networks()
        for name, (network_names, options) in self.optimizer_groups().items():
            named = [
                pair for network in network_names for pair in networks[network].named_parameters()
            ]
            params, shared = self.get_params_for_optimizer("optimizer", named)
            setattr(self, name + "_", self.optimizer(*params, **{**shared, **options}))
        return self

    # ------------------------------------------------------------------ training calls
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self.__dict__.pop("_interrupt", None)
        super().partial_fit(X, y, classes, **fit_params)
        # skorch ends training quietly on Ctrl-C; a detector must not then pass a half-trained
        # model off as fitted, so the interrupt goes on to the caller once training has ended.
        interrupt = self.__dict__.pop("_interrupt", None)
        if interrupt is not None:
            raise interrupt
        return self

    def fit_loop(self, X, y=None, **fit_params):
        try:
            return super().fit_loop(X, y, **fit_params)
        except BaseException as error:
            self.close_progress()
            if isinstance(error, KeyboardInterrupt):
                self._interrupt = error
            raise

    def close_progress(self) -> None:
        """Close the progress bar of a failed or interrupted training call (no summary)."""
        for _, callback in self.callbacks_:
            if isinstance(callback, TrainingProgress):
                callback.close()

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        if training and isinstance(iterator, InMemoryBatches):
            # A later training call (partial_fit, a detector's warm start) continues the
            # batch order where the last one stopped instead of repeating it.
            self._restore_stream(iterator.generator, "_batch_order_state", self.seed)
            self._train_batches = iterator
        return iterator

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._random = torch.Generator(device=self.device)
        # Offset from the batch-order seed so the two streams differ.
        self._restore_stream(self._random, "_noise_state", self.seed + 1)

    def _set_training(self, training: bool = True) -> None:
        # skorch's sets the mode through every submodule's __setattr__ on every step (about
        # 2 % of a small table step); a network whose modules are all in the mode already is
        # left alone. The same for every module whose ``train`` only sets the mode (PyTorch's
        # and skood's).
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and any(
                layer.training != training for layer in module.modules()
            ):
                module.train(training)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        # Saved with the net as byte arrays (generators do not pickle, and tensors pickled
        # outside skorch's device-aware path are avoided), so that training continued later,
        # after pickling too, draws what one longer call would have drawn.
        self._noise_state = self.__dict__.pop("_random").get_state().numpy().copy()
        batches = self.__dict__.pop("_train_batches", None)
        if batches is not None:
            self._batch_order_state = batches.generator.get_state().numpy().copy()

    def _restore_stream(self, generator: torch.Generator, attribute: str, seed: int) -> None:
        """Continue the stream saved in ``attribute`` by the last training call, or seed it.

        A state saved on another kind of device (a net trained on CUDA, loaded on a CPU-only
        machine) does not fit this generator; the stream then restarts from a seed that
        depends on the epochs already trained, so that it does not repeat the first call's.
        """
        state = getattr(self, attribute, None)
        if state is not None:
            try:
                generator.set_state(torch.from_numpy(state))
                return
            except RuntimeError:
                seed += 7919 * len(self.history)
        generator.manual_seed(seed)

    # ------------------------------------------------------------------ inside a step
    def step_optimizers(self, loss: torch.Tensor, names: Sequence[str], batch) -> None:
        """One update of the optimizers ``names`` on ``loss``: what skorch's step closure does.

        Zero their gradients, back-propagate into their parameters alone, notify
        ``on_grad_computed`` with the parameters of the networks they update (so gradient
        callbacks see every update of a step that alternates between optimizers), then step
        them.

        The backward pass computes no gradient for the other networks' parameters (a frozen
        critic's in a generator update, say), so a step need not switch their
        ``requires_grad`` off and on: the gradients it does compute are the same operations.
        """
        optimizers = [getattr(self, name + "_") for name in names]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=optimized_parameters(optimizers) or None)
        groups = self.optimizer_groups()
        networks = [network for name in names for network in groups[name][0]]
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self._named_parameters_of(networks)),
            batch=batch,
            training=True,
        )
        for optimizer in optimizers:
            optimizer.step()

    def get_all_learnable_params(self):
        """The parameters the optimizers update (what skorch's step closure reports to
        ``on_grad_computed``): frozen partners, which no optimizer updates, are left out."""
        networks = dict.fromkeys(
            network for names, _ in self.optimizer_groups().values() for network in names
        )
        return self._named_parameters_of(list(networks))

    def _named_parameters_of(self, network_names: Sequence[str]):
        for name in network_names:
            yield from getattr(self, name + "_").named_parameters()

    def autocast(self) -> AbstractContextManager:
        """Context for the forward passes of a training step.

        bfloat16 autocast when ``mixed_precision`` is set: convolutions and matrix products
        run in bfloat16 (tensor cores on CUDA, AVX512-BF16/AMX on processors that have it),
        while losses, reductions and the optimizer stay in float32 (bfloat16 keeps float32's
        range, so no loss scaling is needed). Disabled otherwise: within a caller's autocast
        region a disabling ``torch.autocast``, outside one a context that does nothing (a
        disabled ``torch.autocast`` costs a small table step about 1.5 %).
        """
        device_type = torch.device(self.device).type
        enabled = bool(self.mixed_precision) and device_type in ("cuda", "cpu")
        if not enabled and not _autocast_active(device_type):
            return nullcontext()
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal samples on the net's device from the net's seeded generator."""
        return torch.randn(*shape, generator=self._random, device=self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform samples in [0, 1) on the net's device from the net's seeded generator."""
        return torch.rand(*shape, generator=self._random, device=self.device)

    @property
    def random_generator(self) -> torch.Generator:
        """The net's seeded generator of the current training call (noise, augmentation)."""
        return self._random

    def defers_loss_checks(self) -> bool:
        """Whether this net checks its batch losses at the end of each epoch (see the attribute
        ``deferred_loss_checks``)."""
        if self.deferred_loss_checks is not None:
            return bool(self.deferred_loss_checks)
        return torch.device(self.device).type == "cuda"

    def record_losses(self, losses: Mapping[str, torch.Tensor]) -> None:
        """Check that every batch loss is finite and record those named in ``loss_names``.

        Losses not in ``loss_names`` (such as ``train_loss``, which skorch records itself from
        the step's ``"loss"``) are only checked. With deferred checks the values stay tensors
        on the device until :meth:`run_single_epoch` settles the epoch.
        """
        if self.defers_loss_checks():
            for name, value in losses.items():
                if name in self.loss_names:
                    self.history.record_batch(name, _detached(value))
                else:
                    self.defer_check(name, value)
            return
        for name, value in losses.items():
            number = value.item() if isinstance(value, torch.Tensor) else float(value)
            self._check_loss(name, number)
            if name in self.loss_names:
                self.history.record_batch(name, number)

    def check_finite(self, quantity: str, value, *, positive: bool = False) -> None:
        """Raise :class:`TrainingDivergedError` unless ``value`` is finite (and > 0 if asked).

        With deferred checks the tensor stays on the device and is checked when the epoch ends.
        """
        if self.defers_loss_checks():
            self.defer_check(quantity, value, positive=positive)
            return
        number = value.item() if isinstance(value, torch.Tensor) else float(value)
        self._check_loss(quantity, number, positive=positive)

    def defer_check(self, quantity: str, value, *, positive: bool = False) -> None:
        """Check ``value`` for finiteness when the epoch ends (deferred checks only)."""
        batch = len(self.history[-1, "batches"])
        self._deferred_values.append((batch, quantity, _detached(value), positive))

    def _check_loss(
        self, name: str, number: float, batch: int | None = None, *, positive: bool = False
    ) -> None:
        if not math.isfinite(number) or (positive and number <= 0):
            self.raise_divergence(name, number, batch=batch)
        if name == "train_loss" and self.loss_growth_limit is not None:
            first = self._first_train_loss()
            if first is not None and first > 0 and number > self.loss_growth_limit * first:
                self.raise_divergence(
                    f"train_loss ({first:.4g} on the first batch)", number, batch=batch
                )

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop; with deferred checks, without reading a loss per batch.

        skorch records ``train_loss`` with ``loss.item()``, a host synchronisation per batch;
        with deferred checks the loss is recorded as a device tensor, and once the epoch has
        run every tensor of it comes to the host in one transfer, is written back into the
        history as a float and checked batch by batch (the error names the first bad batch).
        """
        if not training:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if iterator is None:
            return
        self.begin_training_epoch()
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            self.record_training_step(batch, step_fn(batch, **fit_params), prefix=prefix)
            batch_count += 1
        self.end_training_epoch(batch_count, prefix=prefix)

    # What the epoch loop does around each step, in three parts, so that a loop that runs the
    # steps of several nets at once (skood._joint) records exactly what this one does.
    def begin_training_epoch(self) -> None:
        """Start collecting the deferred checks of a training epoch."""
        self._deferred_values = []

    def record_training_step(self, batch, step: Mapping, *, prefix: str = "train") -> None:
        """Record a step's loss and batch size and notify ``on_batch_end``, as skorch does
        (the loss as a device tensor with deferred checks, a float otherwise)."""
        loss = step["loss"].detach()
        self.history.record_batch(
            prefix + "_loss", loss if self.defers_loss_checks() else loss.item()
        )
        rows = get_len(batch[0]) if isinstance(batch, tuple | list) else get_len(batch)
        self.history.record_batch(prefix + "_batch_size", rows)
        self.notify("on_batch_end", batch=batch, training=True, **step)

    def end_training_epoch(self, batch_count: int, *, prefix: str = "train") -> None:
        """Record the epoch's batch count; with deferred checks, settle the epoch."""
        self.history.record(prefix + "_batch_count", batch_count)
        if self.defers_loss_checks():
            self._settle_epoch()
        else:
            self.__dict__.pop("_deferred_values", None)

    def _settle_epoch(self) -> None:
        """Bring the epoch's deferred tensors to the host at once, record and check them."""
        rows = self.history[-1]["batches"]
        recorded = [
            (index, key, value, False)
            for index, row in enumerate(rows, start=1)
            for key, value in row.items()
            if isinstance(value, torch.Tensor)
        ]
        pending = recorded + self.__dict__.pop("_deferred_values", [])
        if not pending:
            return
        numbers = torch.stack([value.double().reshape(()) for _, _, value, _ in pending]).tolist()
        for (index, key, _, _), number in zip(recorded, numbers, strict=False):
            rows[index - 1][key] = number
        # In the order the values arose, so that the error names the first bad batch.
        checks = sorted(
            (index, order, key, number, positive)
            for order, ((index, key, _, positive), number) in enumerate(
                zip(pending, numbers, strict=True)
            )
        )
        for index, _, key, number, positive in checks:
            self._check_loss(key, number, batch=index, positive=positive)

    def _first_train_loss(self) -> float | None:
        """``train_loss`` of the first batch ever trained (None while that batch runs)."""
        try:
            return float(self.history[0, "batches", 0, "train_loss"])
        except (IndexError, KeyError):
            return None

    def raise_divergence(self, quantity: str, value: float, *, batch: int | None = None) -> None:
        """Raise :class:`TrainingDivergedError` naming where training blew up and what to do.

        ``batch`` is the 1-based batch of the current epoch (default: the batch running now).
        """
        epoch = len(self.history)
        if batch is None:
            batch = len(self.history[-1, "batches"]) if epoch else 0
        lr = self.optimizer_.param_groups[0]["lr"]
        advice = self.divergence_advice.format(lr=lr, net=self)
        raise TrainingDivergedError(
            f"Training diverged at epoch {epoch}, batch {batch}: {quantity} became {value}. "
            f"{advice}; the detector was left unfitted."
        )

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_random", None)
        state.pop("_train_batches", None)
        state.pop("_deferred_values", None)
        if getattr(self, "initialized_", False):
            # ``module`` and ``partners`` hold the very networks that skorch pickles in its
            # device-aware way as ``module_`` and the partner attributes; pickled again as
            # plain objects they would only load where the training device exists.
            state["module"] = None
            state["partners"] = dict.fromkeys(self.partners)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if self.module is None and getattr(self, "initialized_", False):
            self.module = self.module_
            self.partners = {name: getattr(self, name + "_") for name in self.partners}
