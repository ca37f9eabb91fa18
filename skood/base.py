"""BaseDetector: the scikit-learn outlier-detection contract shared by every skood detector.

A detector subclasses :class:`BaseDetector`, declares its own ``_parameter_constraints`` on top of
the shared ones, and declares its networks, its training step and its score: ``_build_networks``
(the networks, seeded), ``_net_class`` (the skorch net whose step trains them) and
``_score_batch`` (float64 scores of one batch, higher = more normal). Optional hooks add the
step's settings (``_net_params``), work before the networks are built (``_prepare_networks``)
and fitted attributes read off them after training (``_after_training``). Everything else lives
here, on one path for a fresh fit and a warm start: input validation, feature names,
standardization, device and seed handling, building the skorch net from the shared settings,
training, batched scoring with bounded memory, progress (a bar or lines per batch at
``verbose >= 2``, one line per stage of a multi-stage fit at ``verbose >= 1``), ``offset_``
from ``contamination``, ``decision_function``, ``predict`` and ``fit_predict``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._dask import row_blocks
from ._outlier import OffsetThresholdMixin
from ._precision import resolve_mixed_precision
from ._progress import row_progress
from ._training import EveryOptimizerLRScheduler, MultiModuleNet, fused_optimizer_options
from ._validation import check_input_shape

__all__ = ["BaseDetector", "resolve_device"]

# Standardized inputs are clipped to this magnitude before the float32 cast: a feature a million
# standard deviations out is as anomalous as it gets, and beyond float32's range it would be inf.
_INPUT_CLIP = 1e6
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def _same_value(before, now) -> bool:
    """Whether a parameter kept its value (tuples and lists of equal items count as equal)."""
    if isinstance(before, (tuple, list)) and isinstance(now, (tuple, list)):
        return len(before) == len(now) and all(map(_same_value, before, now))
    try:
        return bool(before == now)
    except (TypeError, ValueError):  # values without a usable == (arrays of several items)
        return before is now


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. Asking for CUDA on a
    machine without it is an error rather than a silent fallback.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (device index ``N``) or ``"mps"``, or
        a :class:`torch.device` of one of these kinds.

    Returns
    -------
    device : torch.device
        The resolved device, available on this machine.

    Raises
    ------
    ValueError
        If ``device`` is not understood, or names a backend or CUDA device index that this
        machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not _DEVICE_PATTERN.match(device):
        raise ValueError(
            f"device={device!r} is not understood; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but MPS is not available on this machine.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or device='cpu'."
            )
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist."
            )
    return torch.device(device)


class BaseDetector(OffsetThresholdMixin, OutlierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of skood's neural outlier detectors.

    Not meant to be used directly: see :class:`skood.DLSGANDetector`.

    Scores follow scikit-learn's orientation: ``score_samples`` is higher for more normal
    samples, ``decision_function(X) = score_samples(X) - offset_`` is negative for outliers,
    and ``predict`` returns -1 for outliers and +1 for inliers. ``offset_`` is the
    ``100 * contamination`` percentile of the training scores.
    """

    _parameter_constraints: dict = {
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "standardize": ["boolean", StrOptions({"auto"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # Image sides must be multiples of this (stride-2 layers halve them).
    _image_side_multiple: int = 1
    # The pixel range the image networks are built for (None: no particular range); fit warns
    # when images that are not standardized lie far outside it (raw 0-255 pixels, say).
    _pixel_range: tuple[float, float] | None = None
    # True where ``_score_batch`` differentiates through the networks (input-gradient norms,
    # Jacobian log-determinants): scoring then runs with autograd enabled.
    _scoring_needs_grad: bool = False
    # Parameters that change score_samples without a refit; offset_ belongs to their fit-time
    # values.
    _scoring_parameters: tuple[str, ...] = ()
    # Whether image networks train with channels-last convolution weights on the CPU
    # (measured faster for the networks of skood.nn.conv; see docs/training.md).
    _channels_last_on_cpu: bool = False
    # Whether the nets use the optimizer's fused kernel where PyTorch has one for the device
    # (Adam's: measured faster for every detector's networks; see docs/training.md).
    _fused_optimizer: bool = True
    # Whether ``warm_start=True`` makes ``fit`` continue training the fitted networks.
    _supports_warm_start: bool = False
    # ``max_epochs="auto"``, where a detector allows it: ``_auto_max_epochs`` epochs, or fewer
    # on large data, as many as make about ``_auto_training_steps`` optimisation steps.
    _auto_max_epochs: int = 1
    _auto_training_steps: int = 1
    # Parameters a warm-started fit may change: none of them defines the networks or their
    # training (``max_epochs`` is the length of the next call, ``random_state`` only seeds a
    # fresh fit). Every other parameter must keep its value between warm-started fits.
    _warm_start_free_parameters: tuple[str, ...] = (
        "warm_start",
        "max_epochs",
        "verbose",
        "contamination",
        "inference_batch_size",
        "device",
        "random_state",
    )

    @property
    def _inference_dtype(self) -> torch.dtype:
        """Precision of the network copies that score.

        Float64 for tables: the score of a row is then independent of the batch it is scored
        in (float32 matrix products round differently for different batch sizes), as
        scikit-learn's invariance checks require, at a small cost for MLPs. Convolutional image
        networks score in float32, where float64 would be several times slower; training is
        float32 in both cases.
        """
        return torch.float64 if getattr(self, "input_shape", None) is None else torch.float32

    # ------------------------------------------------------------------ hooks
    #: The skorch net (a :class:`~skood._training.MultiModuleNet` subclass) whose step trains
    #: the networks.
    _net_class: type[MultiModuleNet]

    @abstractmethod
    def _build_networks(self, n_features: int, seed: int) -> dict[str, torch.nn.Module]:
        """The networks, initialised from ``seed``: ``{"module": main, partner: network, ...}``.

        Built from the parameters and the fitted attributes that :meth:`_prepare_networks`
        sets; :func:`skood.io.load` calls it too, to rebuild a fitted detector's networks
        before their weights are loaded.
        """

    def _prepare_networks(
        self, X: torch.Tensor, y: torch.Tensor | None, *, seed: int, device: torch.device
    ) -> None:
        """Set what the networks are built from before a fresh fit builds them (RBF centres,
        a classifier trained first, ...). ``X`` is standardized, on ``device``."""

    def _net_params(self) -> dict:
        """Keyword arguments of ``_net_class`` beyond the shared ones: the step's settings."""
        return {}

    def _optimizer_params(self) -> dict:
        """The optimizer and its ``optimizer__*`` settings: Adam, with ``betas`` if given."""
        params: dict = {"optimizer": torch.optim.Adam}
        if hasattr(self, "betas"):
            params["optimizer__betas"] = tuple(float(beta) for beta in self.betas)
        return params

    def _net_callbacks(self) -> list:
        """Callbacks of the net: a learning rate decayed by ``lr_decay`` after each epoch."""
        if not hasattr(self, "lr_decay"):
            return []
        decay = EveryOptimizerLRScheduler(
            policy=torch.optim.lr_scheduler.ExponentialLR, gamma=self.lr_decay
        )
        return [("lr_decay", decay)]

    def _training_data(self, X: torch.Tensor, y: torch.Tensor | None) -> tuple:
        """What the net trains on: ``(inputs, targets)`` for skorch's ``partial_fit``."""
        return X, y

    def _after_training(self, X: torch.Tensor) -> None:
        """Fitted attributes read off the trained networks (``X`` is what they trained on)."""

    def _check_training_rows(self, X: np.ndarray) -> None:
        """Refuse validated rows the networks cannot train on, before anything changes."""

    def _warn_on_pixel_range(self, X: np.ndarray) -> None:
        """Warn when training images lie far outside ``_pixel_range``.

        Far: further out than the width of the range, which scaling slips (raw 0-255 pixels
        for [-1, 1]) are and noise or rounding are not.
        """
        if self._pixel_range is None or getattr(self, "input_shape", None) is None:
            return
        if self._standardizes() or not X.size:
            return
        low, high = self._pixel_range
        width = high - low
        smallest, largest = float(X.min()), float(X.max())
        if smallest < low - width or largest > high + width:
            warnings.warn(
                f"{type(self).__name__} got images with values in [{smallest:g}, "
                f"{largest:g}], far outside [{low:g}, {high:g}], the pixel range its image "
                "networks are built for. Scale 8-bit pixels with x / 127.5 - 1 (the "
                "skood.datasets loaders do by default), or set standardize=True.",
                UserWarning,
                stacklevel=2,
            )

    @abstractmethod
    def _score_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        """Scores of one batch, higher = more normal, shape (n,).

        ``networks`` maps the skorch network names (``"module"``, ``"discriminator"``, ...)
        to evaluation copies of the fitted networks in ``_inference_dtype``.
        """

    # ------------------------------------------------------------------ the lifecycle
    def _make_net(
        self,
        networks: dict[str, torch.nn.Module],
        *,
        seed: int,
        device: torch.device,
        net_class: type[MultiModuleNet] | None = None,
        **params,
    ) -> MultiModuleNet:
        """A skorch net over ``networks`` from the shared settings, ``params`` on top.

        The detector's own net (``_net_class`` with ``_net_params``) unless ``net_class`` is
        given (a second net of the detector, such as InvGAN's variance refit).
        """
        shared = {
            "partners": {name: network for name, network in networks.items() if name != "module"},
            "seed": seed,
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "device": str(device),
            "verbose": self.verbose,
            "callbacks": self._net_callbacks(),
            # What the progress shown at verbose >= 2 names as training.
            "callbacks__progress__label": type(self).__name__,
            **self._optimizer_params(),
        }
        if self._fused_optimizer and "optimizer__fused" not in shared:
            shared.update(fused_optimizer_options(shared["optimizer"], device))
        if net_class is None:
            net_class = self._net_class
            shared.update(self._net_params())
        if hasattr(self, "mixed_precision"):
            shared["mixed_precision"] = resolve_mixed_precision(
                self.mixed_precision, device, images=self.input_shape is not None
            )
        if self._channels_last_on_cpu and getattr(self, "input_shape", None) is not None:
            shared["channels_last"] = torch.device(device).type == "cpu"
        return net_class(networks["module"], **{**shared, **params})

    def _train_networks(self, X: torch.Tensor, y: torch.Tensor | None) -> None:
        """Train ``net_`` for ``max_epochs`` epochs from where it stands."""
        self.net_.partial_fit(*self._training_data(X, y))
        self._complete_training(X)

    def _complete_training(self, X: torch.Tensor) -> None:
        """Everything read off the networks once ``net_`` has trained: ``_after_training``,
        and what mixins add to it."""
        self._after_training(X)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the detector on unlabelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; may contain some outliers (see ``contamination``).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        warm = self._supports_warm_start and self.warm_start  # only those detectors have it
        return self._fit(X, y, continue_training=warm, epochs=None)

    def _epochs_for(self, n_rows: int) -> int:
        """Epochs of a fit on ``n_rows`` rows: ``max_epochs``, with ``"auto"`` resolved."""
        if self.max_epochs != "auto":
            return self.max_epochs
        steps_per_epoch = math.ceil(n_rows / self.batch_size)
        epochs_for_steps = math.ceil(self._auto_training_steps / steps_per_epoch)
        return max(1, min(self._auto_max_epochs, epochs_for_steps))

    def _can_train_incrementally(self) -> bool:
        return self._supports_warm_start

    @available_if(_can_train_incrementally)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train one pass over ``X``, continuing the networks of the earlier calls.

        For data that come in chunks or do not fit in memory (``dask_ml.wrappers.Incremental``
        calls it once per block of a dask array). The first call builds the networks and fixes
        the input standardization from its chunk (pass data scaled beforehand with
        ``standardize=False`` to fix it yourself); every call then trains one epoch over its
        chunk and carries on the optimizers, the learning-rate schedule (``lr_decay`` applies
        once per call) and the random streams, exactly as ``fit`` with ``warm_start=True``
        and ``max_epochs=1`` would. ``max_epochs`` is not used. ``offset_`` is set from the
        scores of the last chunk under the updated model (the ``contamination`` quantile of
        that chunk alone); refit it on representative rows with ``fit`` for a threshold of
        the whole data, or use :class:`~skood.ConformalDetector`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The next chunk of training data.
        y : array-like of shape (n_samples,), default=None
            Labels, for the detectors whose ``fit`` needs them; ignored otherwise.

        Returns
        -------
        self : object
            The detector, trained one more pass.
        """
        return self._fit(X, y, continue_training=True, epochs=1)

    def _fit(self, X, y, *, continue_training: bool, epochs: int | None):
        with self._fitting(X, y, continue_training=continue_training, epochs=epochs) as data:
            self._train_networks(*data)
        return self

    @contextlib.contextmanager
    def _fitting(self, X, y, *, continue_training: bool, epochs: int | None):
        """Everything of a fit around the training itself, which the ``with`` body does.

        Validates the rows, fixes the input scaling and builds the skorch net (or readies the
        fitted one to continue), then yields the standardized training tensors ``(X, y)`` on
        the training device; after the body has trained the networks, scores the training
        rows and sets ``offset_``. A body that fails (divergence, interruption) leaves the
        detector unfitted. :func:`skood._joint.fit_jointly` enters this for several detectors
        and trains their nets in one.
        """
        # The device first: a bad one must fail before anything fitted changes.
        device = resolve_device(self.device)
        # warm_start=True on a fitted detector: the networks, their optimizers (moments and
        # decayed learning rates), the input standardization and the random streams carry
        # on, so that fits of 2 and then 3 epochs train exactly as one fit of 5 does.
        continuing = self._supports_warm_start and continue_training and hasattr(self, "net_")
        if continuing:
            self._check_warm_start(device)
        X, targets = self._validate_training_data(X, y, reset=not continuing)
        if epochs is None:
            epochs = self._epochs_for(X.shape[0])
        self._check_training_rows(X)
        self._warn_on_pixel_range(X)
        if not continuing:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        try:
            if continuing:
                self.net_.max_epochs = epochs
                self.net_.verbose = self.verbose
            else:
                self._fit_input_scaling(X)
            X_train = self._as_tensor(X, device)
            # Unsupervised detectors take no targets; supervised ones the encoded labels.
            y_train = None if targets is None else torch.as_tensor(targets, device=device)
            if not continuing:
                self._prepare_networks(X_train, y_train, seed=seed, device=device)
                networks = self._build_networks(X.shape[1], seed)
                self.net_ = self._make_net(networks, seed=seed, device=device, max_epochs=epochs)
            yield X_train, y_train
            scores = self._score_validated(X)
        except BaseException:
            # A failed fit (divergence, interruption) must not leave a half-fitted model behind.
            self._forget_fit()
            raise
        self._set_offset(scores)
        if self._supports_warm_start and not continuing:
            self._training_parameters = self._network_parameters()

    # ------------------------------------------------------------------ joint training
    def _can_train_jointly(self) -> bool:
        """Whether fresh fits of clones of this detector can train as one stacked net.

        Where the net class has a step over stacked members (``joint_train_step``) and the
        networks are MLPs (tables), which :func:`skood.nn.stack_networks` stacks.
        """
        step = getattr(self._net_class, "joint_train_step", None)
        return step is not None and getattr(self, "input_shape", None) is None

    # ------------------------------------------------------------------ warm start
    def _network_parameters(self) -> dict:
        """The parameters that a warm-started fit must find unchanged."""
        free = {*self._warm_start_free_parameters, *self._scoring_parameters}
        return {
            name: copy.deepcopy(value)
            for name, value in self.get_params(deep=False).items()
            if name not in free
        }

    def _check_warm_start(self, device: torch.device) -> None:
        """Refuse a warm start whose parameters or device differ from the fitted networks'."""
        changed = {
            name: (before, getattr(self, name))
            for name, before in self._training_parameters.items()
            if not _same_value(before, getattr(self, name))
        }
        if changed:
            listed = ", ".join(
                f"{name} (was {old!r}, now {new!r})" for name, (old, new) in changed.items()
            )
            raise ValueError(
                f"warm_start=True continues training the fitted networks, so the parameters "
                f"they were built and trained with must stay the same; changed: {listed}. Set "
                "them back, or set warm_start=False to train new networks."
            )
        trained_on = self._device()
        if (device.type, device.index or 0) != (trained_on.type, trained_on.index or 0):
            raise ValueError(
                f"warm_start=True continues training on the device the networks are on "
                f"({trained_on}), but device={self.device!r} resolves to {device}. Set device "
                f"to {str(trained_on)!r}, or set warm_start=False to train new networks."
            )

    def _set_offset(self, training_scores: np.ndarray) -> None:
        """``offset_`` from ``contamination``, remembering the scoring parameters it is for."""
        self.offset_ = float(np.percentile(training_scores, 100.0 * self.contamination))
        self._offset_scoring = {name: getattr(self, name) for name in self._scoring_parameters}

    def _check_offset_matches_scoring(self) -> None:
        # offset_ is a threshold on the fit-time score; compared with another score's values
        # (a gradient norm against a log-likelihood, say) it would label rows arbitrarily.
        fitted = getattr(self, "_offset_scoring", None)
        if fitted is None:
            return
        for name, value in fitted.items():
            current = getattr(self, name)
            if current != value:
                raise ValueError(
                    f"offset_ was set for {name}={value!r}, but {name} is now {current!r}. "
                    f"score_samples works with any {name}; decision_function and predict need "
                    f"an offset_ for {current!r}: refit the detector, or set {name} back to "
                    f"{value!r}."
                )

    def _validate_training_data(
        self, X, y, *, reset: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate the training rows; return them and the targets the networks train on.

        Unsupervised detectors ignore ``y`` and return ``None`` for the targets; a supervised
        detector overrides this to validate and encode its labels. ``reset=False`` (a warm
        start) checks the rows against the features seen in the first fit.
        """
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset
        )
        self._image_shape(X.shape[1])
        return X, None

    def _image_shape(self, n_features: int) -> tuple[int, int, int] | None:
        """``input_shape`` checked against ``n_features`` columns; None for tables."""
        if getattr(self, "input_shape", None) is None:
            return None
        return check_input_shape(
            self.input_shape, n_features, side_multiple=self._image_side_multiple
        )

    def _forget_fit(self) -> None:
        for name in [key for key in vars(self) if key.endswith("_") and not key.startswith("__")]:
            delattr(self, name)

    def _standardizes(self) -> bool:
        """Whether to standardize; ``"auto"`` standardizes tables but not images."""
        if self.standardize == "auto":
            return getattr(self, "input_shape", None) is None
        return bool(self.standardize)

    def _fit_input_scaling(self, X: np.ndarray) -> None:
        if self._standardizes():
            with np.errstate(over="ignore", invalid="ignore"):
                mean = X.mean(axis=0, dtype=np.float64)
                scale = X.std(axis=0, dtype=np.float64)
            overflowed = ~(np.isfinite(mean) & np.isfinite(scale))
            if np.any(overflowed):
                # Columns beyond about 1e154 overflow the sum of squares (or the sum): their
                # statistics are taken on the column divided by its largest magnitude instead.
                # Only those columns, so that the statistics of all others keep their bits.
                columns = X[:, overflowed].astype(np.float64)
                magnitude = np.max(np.abs(columns), axis=0)
                mean[overflowed] = (columns / magnitude).mean(axis=0) * magnitude
                scale[overflowed] = (columns / magnitude).std(axis=0) * magnitude
            # Constant columns keep scale 1 instead of dividing by (almost) zero.
            # Relative test, so that features on a tiny scale are not mistaken for constants.
            scale[(scale == 0) | (scale <= 10 * np.finfo(np.float64).eps * np.abs(mean))] = 1.0
        else:
            mean = np.zeros(X.shape[1])
            scale = np.ones(X.shape[1])
        self.input_mean_ = mean
        self.input_scale_ = scale

    # ------------------------------------------------------------------ tensors
    def _device(self) -> torch.device:
        return torch.device(self.net_.device)

    def _as_tensor(
        self,
        X: np.ndarray,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Standardize, clip and cast a validated block of rows to a tensor on ``device``."""
        with np.errstate(over="ignore"):  # overflow gives inf, which the clip below bounds
            standardized = (X - self.input_mean_) / self.input_scale_
        np.clip(standardized, -_INPUT_CLIP, _INPUT_CLIP, out=standardized)
        device = self._device() if device is None else device
        # C order whatever the layout of X (Fortran-ordered X gives Fortran-ordered results):
        # matrix products round differently on transposed strides, and a fitted detector must
        # score the same values the same, whatever their memory layout.
        return torch.as_tensor(np.ascontiguousarray(standardized), dtype=dtype).to(device)

    def _inference_networks(self) -> dict[str, torch.nn.Module]:
        """The fitted networks in ``_inference_dtype``, for scoring.

        Float64 copies for tables, so that scoring never changes the fitted estimator; the
        float32 networks themselves for images.
        """
        networks = {}
        for name, module in self.net_.networks().items():
            if self._inference_dtype == torch.float32:
                # Already in the training precision, and forward passes change no state (there
                # are no normalisation or dropout layers): no copy of a large image network.
                networks[name] = module
            else:
                networks[name] = copy.deepcopy(module).to(self._inference_dtype).eval()
        return networks

    def _unstandardize(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            X = X * self.input_scale_ + self.input_mean_
        # In a column near float64's limit, a value that rounds past the largest float is that
        # float, not inf (DMR's generator trains on these rows; samples must stay finite).
        largest = np.finfo(np.float64).max
        return np.clip(X, -largest, largest, out=X)

    # ------------------------------------------------------------------ progress
    def _progress(self, n_rows: int, task: str):
        """Progress of a pass over ``n_rows`` rows in ``inference_batch_size`` batches, named
        ``task``: shown at ``verbose >= 2`` when there is more than one batch (a context
        manager; ``update(rows)`` after each batch)."""
        desc = f"[{type(self).__name__}] {task}"
        return row_progress(self.verbose, n_rows, self.inference_batch_size, desc)

    def _announce_stage(self, index: int, total: int, what: str) -> None:
        """One line naming the stage of a multi-stage fit that starts, at ``verbose >= 1``
        (beside the epoch tables of its nets)."""
        if self.verbose >= 1:
            print(f"[{type(self).__name__}] stage {index}/{total}: {what}", flush=True)

    def _map_batches(
        self,
        X: np.ndarray,
        function: Callable[[torch.Tensor, dict], torch.Tensor],
        *,
        standardize: bool = True,
        task: str = "inference",
    ) -> np.ndarray:
        """Apply ``function(batch, networks)`` to batches of ``X``; stack the float64 results.

        Only ``inference_batch_size`` rows are converted and on the device at any time, so
        memory stays bounded however many rows are scored. ``standardize=False`` passes the
        rows as they are (latent codes, for instance). ``task`` names the pass in the progress
        shown at ``verbose >= 2`` for more than one batch (counted from the rows of each batch:
        no device synchronisation beyond the copy of its results).
        """
        networks = self._inference_networks()
        device = self._device()
        output = None
        # Scores built from input gradients or Jacobians need autograd; the others run in
        # inference mode, which is cheaper.
        mode = torch.enable_grad() if self._scoring_needs_grad else torch.inference_mode()
        with mode, self._progress(X.shape[0], task) as progress:
            for start in range(0, X.shape[0], self.inference_batch_size):
                block = X[start : start + self.inference_batch_size]
                if standardize:
                    batch = self._as_tensor(block, device, self._inference_dtype)
                else:
                    block = np.ascontiguousarray(block)  # as in _as_tensor
                    batch = torch.as_tensor(block, dtype=self._inference_dtype, device=device)
                result = function(batch, networks).double().cpu().numpy()
                if output is None:
                    # One preallocated result: per-batch pieces kept alive between the large
                    # freed temporaries fragment the heap and inflate memory on big inputs.
                    output = np.empty((X.shape[0], *result.shape[1:]))
                output[start : start + len(result)] = result
                progress.update(len(result))
        return output

    # ------------------------------------------------------------------ scores
    def _score_validated(self, X: np.ndarray) -> np.ndarray:
        scores = self._map_batches(X, self._score_batch, task="scoring")
        if not np.all(np.isfinite(scores)):
            raise FloatingPointError(
                f"{type(self).__name__} produced non-finite scores for finite inputs; the "
                "trained networks are numerically unstable. Refit with a lower lr or "
                "standardize=True."
            )
        return scores

    @row_blocks(np.float64)
    def score_samples(self, X):
        """Normality score of each sample: the higher, the more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Float64 scores; outliers get low values.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._score_validated(X)

    # ------------------------------------------------------------------ history
    @property
    def history_(self):
        """The skorch :class:`~skorch.history.History` of the last fit.

        Every recorded loss, per epoch and per batch.
        """
        check_is_fitted(self, "net_")
        return self.net_.history

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        # scikit-learn records its own version only for classes of its own modules; a skood
        # detector records skood's (nested detectors, such as DMR's generator, record theirs).
        from ._versioning import skood_version  # skood/__init__ imports this module first

        return {**super().__getstate__(), "_skood_version": skood_version()}

    def __setstate__(self, state):
        from ._versioning import skood_version, warn_if_inconsistent

        state = dict(state)
        # Pickles written before skood recorded its version carry none: they differ too.
        original = state.pop("_skood_version", None)
        warn_if_inconsistent(
            type(self).__name__,
            {"skood": original},
            {"skood": skood_version()},
            operation="unpickle",
        )
        super().__setstate__(state)
