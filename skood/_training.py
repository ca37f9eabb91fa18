"""skorch training engine for detectors made of several networks.

:class:`AdversarialNet` is a skorch ``NeuralNet`` whose ``module`` is the generator and whose
``partners`` are further networks (a discriminator/encoder, an inference network, ...), each with
its own optimizer. A detector subclasses it and overrides :meth:`train_step` only; the engine
provides the rest: optimizers per network, per-epoch learning-rate decay, a history of every
loss (printed per epoch when ``verbose``), divergence checks, seeded random numbers and
batches sliced from tensors that stay on the training device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog

from .exceptions import TrainingDivergedError

__all__ = ["LOSS_GROWTH_LIMIT", "AdversarialNet", "InMemoryBatches", "LearningRateDecay"]

#: ``AdversarialNet.loss_growth_limit`` of the nets whose ``train_loss`` cannot be negative.
LOSS_GROWTH_LIMIT = 1e3


class InMemoryBatches:
    """Mini-batches sliced from a tensor that already sits on the training device.

    skorch's default ``DataLoader`` collates every batch from per-row ``__getitem__`` calls,
    which costs more than the forward pass of a small MLP. This iterator draws one random
    permutation per epoch and slices the tensor with it.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.Tensor
        The data; a skorch ``Dataset`` contributes its ``X`` attribute, which must be a tensor.
    batch_size : int
        Rows per batch; the last batch of an epoch may be smaller.
    shuffle : bool, default=False
        Draw a new order of the rows every epoch.
    seed : int, optional
        Seed of the permutation generator (created once, so epochs differ).

    Attributes
    ----------
    generator : torch.Generator
        The stream the permutations are drawn from; :class:`AdversarialNet` carries its state
        from one training call to the next.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        data = getattr(dataset, "X", dataset)
        if not isinstance(data, torch.Tensor):
            raise TypeError(
                f"InMemoryBatches needs the data as a torch.Tensor, got {type(data).__name__}."
            )
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator(device=data.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        n_rows = len(self.data)
        if self.shuffle:
            order = torch.randperm(n_rows, generator=self.generator, device=self.data.device)
            for start in range(0, n_rows, self.batch_size):
                yield self.data[order[start : start + self.batch_size]]
        else:
            for start in range(0, n_rows, self.batch_size):
                yield self.data[start : start + self.batch_size]


class LearningRateDecay(Callback):
    """Multiply the learning rate of every optimizer of the net by ``gamma`` after each epoch."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def on_epoch_end(self, net, **kwargs) -> None:
        if self.gamma == 1.0:
            return
        for name in net._optimizers:
            for group in getattr(net, name + "_").param_groups:
                group["lr"] *= self.gamma


class AdversarialNet(NeuralNet):
    """A skorch net that trains a generator together with partner networks.

    Parameters
    ----------
    module : torch.nn.Module
        The generator, already initialised (detectors seed their own initialisation).
    partners : mapping of str to torch.nn.Module
        Further networks; ``partners["discriminator"]`` becomes ``net.discriminator_`` with the
        optimizer ``net.optimizer_discriminator_``. All optimizers share the class and the
        ``optimizer__*`` settings of the generator's.
    loss_names : sequence of str
        Losses that :meth:`train_step` records per batch with :meth:`record_losses`; each gets
        a per-epoch mean in the history and a column in the printed log. ``train_loss`` is the
        ``"loss"`` that :meth:`train_step` returns.
    lr_decay : float, default=1.0
        Factor applied to every learning rate after each epoch.
    seed : int, default=0
        Seed of the net's random numbers (latent samples, batch order).
    mixed_precision : bool, default=False
        Run the forward passes of :meth:`train_step` under bfloat16 autocast on CUDA (see
        :meth:`autocast`); no effect on other devices.
    **kwargs
        Passed on to :class:`skorch.NeuralNet` (``criterion``, ``optimizer``, ``lr``,
        ``max_epochs``, ``batch_size``, ``device``, ``verbose``, ...).

    Notes
    -----
    ``train_split`` is ``None`` (skorch would otherwise hold out 20% of the rows) and batches
    come from :class:`InMemoryBatches`, so ``fit`` expects the training data as a tensor on
    ``device``.
    """

    #: History keys recorded per epoch but left out of the printed log (vectors, say).
    unprinted_keys: tuple[str, ...] = ()
    #: For a ``train_loss`` that cannot be negative (a cross-entropy, a squared error): the
    #: factor by which a batch's loss may exceed the first batch's before training counts as
    #: diverged. Such losses start near their largest sensible value, so growing a thousandfold
    #: means the weights blew up, even while every number stays finite. None: no such check.
    loss_growth_limit: float | None = None

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        partners: Mapping[str, torch.nn.Module],
        loss_names: Sequence[str] = (),
        lr_decay: float = 1.0,
        seed: int = 0,
        mixed_precision: bool = False,
        **kwargs,
    ) -> None:
        self.partners = dict(partners)
        self.mixed_precision = mixed_precision
        self.loss_names = tuple(loss_names)
        self.lr_decay = lr_decay
        self.seed = seed
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("iterator_train", InMemoryBatches)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__seed", seed)
        kwargs.setdefault("iterator_valid", InMemoryBatches)
        super().__init__(module, **kwargs)

    def get_default_callbacks(self):
        losses = [(name, PassthroughScoring(name=name, on_train=True)) for name in self.loss_names]
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            *losses,
            ("lr_decay", LearningRateDecay(self.lr_decay)),
            ("print_log", PrintLog(keys_ignored=list(self.unprinted_keys))),
        ]

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
        return self

    def initialize_optimizer(self, *args, **kwargs):
        networks = {"": self.module_} | {name: getattr(self, name + "_") for name in self.partners}
        for name, network in networks.items():
            params, options = self.get_params_for_optimizer("optimizer", network.named_parameters())
            attribute = f"optimizer_{name}_" if name else "optimizer_"
            setattr(self, attribute, self.optimizer(*params, **options))
        return self

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
        except KeyboardInterrupt as interrupt:
            self._interrupt = interrupt
            raise

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

    def autocast(self) -> torch.autocast:
        """Context for the forward passes of a training step.

        bfloat16 autocast on CUDA when ``mixed_precision`` is set: convolutions and matrix
        products run on tensor cores, while losses, reductions and the optimizer stay in
        float32 (bfloat16 keeps float32's range, so no loss scaling is needed). Disabled
        otherwise.
        """
        device_type = torch.device(self.device).type
        enabled = bool(self.mixed_precision) and device_type == "cuda"
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal samples on the net's device from the net's seeded generator."""
        return torch.randn(*shape, generator=self._random, device=self.device)

    def record_losses(self, losses: Mapping[str, torch.Tensor]) -> None:
        """Check that every batch loss is finite and record those named in ``loss_names``.

        Losses not in ``loss_names`` (such as ``train_loss``, which skorch records itself from
        the step's ``"loss"``) are only checked.
        """
        for name, value in losses.items():
            number = value.item() if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(number):
                self.raise_divergence(name, number)
            if name == "train_loss" and self.loss_growth_limit is not None:
                first = self._first_train_loss()
                if first is not None and first > 0 and number > self.loss_growth_limit * first:
                    self.raise_divergence(f"train_loss ({first:.4g} on the first batch)", number)
            if name in self.loss_names:
                self.history.record_batch(name, number)

    def _first_train_loss(self) -> float | None:
        """``train_loss`` of the first batch ever trained (None while that batch runs)."""
        try:
            return float(self.history[0, "batches", 0, "train_loss"])
        except (IndexError, KeyError):
            return None

    def raise_divergence(self, quantity: str, value: float) -> None:
        """Raise :class:`TrainingDivergedError` naming where training blew up."""
        epoch = len(self.history)
        batch = len(self.history[-1, "batches"]) if epoch else 0
        lr = self.optimizer_.param_groups[0]["lr"]
        raise TrainingDivergedError(
            f"Training diverged at epoch {epoch}, batch {batch}: {quantity} became {value}. "
            f"Lower the learning rate (lr={lr:g} now), standardize the inputs, or raise the "
            "gradient penalty; the detector was left unfitted."
        )

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_random", None)
        state.pop("_train_batches", None)
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
