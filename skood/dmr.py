"""DMRDetector: a rejection network trained on synthetic outliers made by disentangling marginal
representations (DMR) in the latent space of a generative model.

Method reference: D. Choi and D. Na, "DMR: Disentangling Marginal Representations for
Out-of-Distribution Detection", CVPR 2024 Workshops (VAND 2.0).
"""

from __future__ import annotations

from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch.nn import functional as F

from ._docstrings import fill_doc
from ._progress import epochs_text
from ._supervised import ClassifierDetector
from ._training import LOSS_GROWTH_LIMIT, EveryOptimizerLRScheduler, MultiModuleNet
from .base import BaseDetector
from .dlsgan import DLSGANDetector
from .nn.classifier import RejectionHead, layer_features

__all__ = ["DMRDetector", "augment_images"]

# Rows of uniform noise drawn at once when choosing distinct classes (bounds memory).
_CHOICE_CELLS = 10_000_000


def augment_images(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    input_shape: tuple[int, int, int],
    low: float,
    high: float,
) -> torch.Tensor:
    """Apply DMR's augmentation to a batch of synthetic outliers: flat rows in, flat rows out.

    Per image: horizontal flip with probability 1/2; zoom by a factor drawn from U(1, 1.5)
    about the centre (an affine map with scale only, bilinear sampling, border padding); with
    probability 0.2 autocontrast (each channel stretched to ``[low, high]``; constant channels
    stay as they are); with probability 0.2 inversion (``low + high - x``). Every image draws
    its own transformations.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C * H * W)
        Flattened images, floating point.
    generator : torch.Generator
        Source of the random transformations; it must live on the device of ``images``.
    input_shape : tuple (channels, height, width)
        Shape ``(C, H, W)`` of each image.
    low : float
        Smallest pixel value of the training data.
    high : float
        Largest pixel value of the training data.

    Returns
    -------
    augmented : torch.Tensor of shape (n, C * H * W)
        The augmented images, flattened again, with the dtype and device of ``images``.
    """
    n_rows = images.shape[0]
    device, dtype = images.device, images.dtype

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device).to(dtype)

    x = images.reshape(n_rows, *input_shape)
    flip = uniform(n_rows) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    # Sampling the grid at coordinates / zoom enlarges the image about its centre.
    zoom = 1.0 + 0.5 * uniform(n_rows)
    theta = torch.zeros(n_rows, 2, 3, device=device, dtype=dtype)
    theta[:, 0, 0] = 1.0 / zoom
    theta[:, 1, 1] = 1.0 / zoom
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = uniform(n_rows) < 0.2
    smallest = x.amin(dim=(2, 3), keepdim=True)
    spread = x.amax(dim=(2, 3), keepdim=True) - smallest
    stretched = low + (x - smallest) * (high - low) / spread.clamp_min(1e-12)
    # Constant channels have nothing to stretch and stay as they are.
    stretched = torch.where(spread > 0, stretched, x)
    x = torch.where(contrast[:, None, None, None], stretched, x)
    invert = uniform(n_rows) < 0.2
    x = torch.where(invert[:, None, None, None], low + high - x, x)
    return x.reshape(n_rows, -1)


class _RejectionNet(MultiModuleNet):
    """Binary cross-entropy training of the rejection head ``module_`` on frozen features,
    through skorch's step closure.

    ``classifier_`` is the frozen classifier (a partner, so that the fitted net holds every
    network the scores need; no optimizer updates it); it stays in evaluation mode. Batches
    are ``(inputs, targets)`` with target 1 for synthetic outliers. Without ``augment`` the
    inputs are precomputed features; with it they are images, the outliers among them are
    augmented, and the features are computed for every batch.
    """

    loss_growth_limit = LOSS_GROWTH_LIMIT

    def __init__(
        self,
        module,
        *,
        augment=None,
        feature_layer: str | None = None,
        pos_weight: float = 1.0,
        **kwargs,
    ) -> None:
        self.augment = augment
        self.feature_layer = feature_layer
        self.pos_weight = pos_weight
        super().__init__(module, **kwargs)

    def optimizer_groups(self):
        return {"optimizer": (("module",), {})}

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        classifier = self.classifier_.eval()
        inputs, targets = batch
        if self.augment is not None:
            outliers = targets > 0.5
            if bool(outliers.any()):
                inputs = inputs.clone()
                inputs[outliers] = self.augment(inputs[outliers], self.random_generator)
            with torch.no_grad():
                inputs = layer_features(classifier, inputs, self.feature_layer)
        logits = self.module_(inputs)
        pos_weight = torch.tensor(self.pos_weight, device=logits.device, dtype=logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
        loss.backward()
        self.record_losses({"train_loss": loss})
        return {"loss": loss, "y_pred": logits}


@fill_doc
class DMRDetector(ClassifierDetector):
    """OOD detector trained on synthetic outliers from disentangled marginal representations.

    ``fit(X, y)`` follows the DMR paper's six steps:

    1. a classifier (feature map ``F`` and linear head) is trained on ``(X, y)`` with
       cross-entropy, or a user's trained one is adopted; it is frozen;
    2. a generative model with an encoder ``E`` and a generator ``G`` (``transform`` and
       ``inverse_transform`` of a skood detector: a :class:`~skood.DLSGANDetector` by default,
       or for instance an :class:`~skood.AutoencoderDetector`) is fitted on ``X``;
    3. class latent means ``mu_y = mean E(x_i)`` over the samples of class ``y``;
    4. ``n_synthetic`` outliers: for each, ``k`` distinct classes, one random training sample
       ``x_j`` of each, the marginal codes ``w_j = E(x_j) - mu_{y_j}`` (what is left once the
       class content is removed), and ``x_ood = G(lambda * mean_j w_j)`` with an emphasis
       ``lambda`` drawn per outlier;
    5. a rejection network ``B`` (``Linear -> ReLU -> Linear``) on the frozen features ``F(x)``
       is trained with binary cross-entropy to tell training data (0) from the synthetic
       outliers (1), balanced 1:1;
    6. ``score_samples(x) = -B(F(x))``: minus the logit of the probability that ``x`` is
       out-of-distribution (the paper's ``sigmoid(B(F(x)))``, which ranks identically;
       :meth:`ood_probability` returns it).

    The classifier keeps classifying: :meth:`predict_class`, :meth:`predict_class_proba`.

    Read more in the user guide, ``docs/dmr.md``.

    Parameters
    ----------
    generator : estimator or None, default=None
        The encoder/generator pair: a skood detector with ``transform`` (``E``) and
        ``inverse_transform`` (``G``) that works on rows of ``X`` in their original units.
        None fits a ``DLSGANDetector(input_shape=input_shape)`` with its default settings.
        An unfitted estimator is cloned and fitted on ``X`` (labels are not used; its
        ``random_state`` is set from this detector's when it is None); a fitted one is used as
        it is, so several detectors can share one generative model.
    synthesis : {"mlm+dmr", "mlm", "dmr"}, default="mlm+dmr"
        How outliers are made. ``"mlm+dmr"``: the full method above (paper Eq. 7).
        ``"mlm"``: the multiple-latent mix-up ablation, ``G(mean_j E(x_j))`` over ``k``
        distinct classes, no class means and no emphasis (Eq. 4). ``"dmr"``: the
        single-latent ablation, ``G(lambda * (E(x) - mu_y))`` for one random training sample
        (Eq. 6; ``k`` is ignored). ``"mlm+dmr"`` with ``k=1`` is the same as ``"dmr"``.
    k : int, default=5
        Number of distinct classes mixed per outlier (3 to 5 recommended); the number of
        classes when there are fewer.
    emphasis : tuple (low, high), default=(1.0, 3.0)
        Range of the emphasis ``lambda``.
    emphasis_mode : {"uniform", "binary"}, default="uniform"
        ``"uniform"``: ``lambda ~ U(low, high)``, as the paper states. ``"binary"``: ``low`` or
        ``high`` with probability 1/2 each, as the authors' code does.
    n_synthetic : int or None, default=None
        Number of synthetic outliers; None makes as many as there are training samples. The
        loss weights the outliers so that both sides count equally either way.
    augment_ood : bool or "auto", default="auto"
        Augment the synthetic outliers (images only; see :func:`augment_images`) afresh in
        every epoch. ``"auto"``: for images. Training data is never augmented.
    feature_layer : str or None, default=None
        The features ``B`` sees: None for the classifier's penultimate features (the input of
        its head), or the name of a submodule of the classifier (as listed by
        ``net_.classifier_.named_modules()``) whose flattened output is used.
    rejection_hidden : int or None, default=None
        Hidden width ``H`` of ``B``. None: 2048 for features of at least 2048 dimensions,
        otherwise twice the feature dimension, at least 64 and at most 2048.
    lr : float, default=0.01
        SGD learning rate of ``B`` (cosine annealing to 0 over ``max_epochs``).
    momentum : float, default=0.9
        Nesterov momentum of ``B``'s SGD (0 for plain SGD).
    weight_decay : float, default=5e-4
        Weight decay of ``B``'s SGD.
    max_epochs : int, default=10
        Epochs of ``B`` over the training data and the synthetic outliers together.
    batch_size : int, default=128
        Rows per step of ``B``.
    classifier : torch.nn.Module, skorch.NeuralNet or None, default=None
        A trained classifier to use instead of training one, as in
        :class:`~skood.posthoc.PostHocDetector` (``features(x)`` and a linear ``head``, or a
        ``Sequential`` ending in a ``Linear``); copied and frozen. ``y`` then holds indices of
        its logits.
    hidden_dims : tuple of int, default=(256, 128)
        Hidden widths of the built-in classifier (an MLP for tables; for images, two
        convolutional stages followed by these layers). The last width is the feature
        dimension.
    input_shape : tuple (channels, height, width) or None, default=None
        Set it for images: rows of ``X`` are flattened images; the classifier is
        convolutional, and so is the default generator.
    classifier_lr : float, default=1e-3
        Adam learning rate of the built-in classifier.
    classifier_epochs : int, default=30
        Epochs of the built-in classifier.
    classifier_batch_size : int, default=128
        Rows per step of the built-in classifier.
    standardize : bool or "auto", default="auto"
        Standardize features before the classifier (the generator standardizes on its own).
        ``"auto"``: tables with the built-in classifier; not images, not a user classifier.
    %(contamination)s
    inference_batch_size : int, default=8192
        Rows scored at a time.
    %(device)s
    random_state : int, RandomState instance or None, default=None
        Seeds the classifier, the generator (when its own is None), the synthesis and ``B``.
    %(verbose)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in fit.
    net_ : skorch.NeuralNet
        The rejection network's skorch net: ``net_.module_`` is ``B`` and
        ``net_.classifier_`` the frozen :class:`~skood.nn.classifier.FeatureClassifier`.
    history_ : skorch.history.History
        Loss of ``B`` per batch and per epoch.
    classifier_history_ : skorch.history.History
        Cross-entropy and accuracy of the classifier (empty for a user classifier).
    generator_ : estimator
        The fitted encoder/generator detector.
    class_latent_means_ : ndarray of shape (n_classes, latent_dim)
        Mean latent code of each class (zeros for a class absent from ``y``).
    latent_codes_ : ndarray of shape (n_samples, latent_dim), float32
        Latent codes of the training samples, kept for :meth:`synthesize`.
    latent_labels_ : ndarray of shape (n_samples,)
        Their class indices.
    %(offset_)s
    %(input_scaling_)s
    %(n_features_in_)s
    %(feature_names_in_)s

    See Also
    --------
    PostHocDetector : Post-hoc scores (MSP, Energy, ViM, ...) of the same kind of classifier.
    DLSGANDetector : The default encoder/generator pair.

    References
    ----------
    .. [1] D. Choi and D. Na, "DMR: Disentangling Marginal Representations for
       Out-of-Distribution Detection", CVPR 2024 Workshops (VAND 2.0).

    Examples
    --------
    >>> import numpy as np
    >>> from skood import DLSGANDetector
    >>> from skood.dmr import DMRDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(-3, 1, size=(150, 3)), rng.normal(3, 1, size=(150, 3))])
    >>> y = np.r_[np.zeros(150), np.ones(150)]
    >>> generator = DLSGANDetector(latent_dim=4, max_epochs=5, random_state=0)
    >>> detector = DMRDetector(generator=generator, classifier_epochs=10, random_state=0)
    >>> detector = detector.fit(X, y)
    >>> detector.synthesize(4, random_state=0).shape
    (4, 3)
    >>> detector.predict_class(np.array([[-3.0, -3.0, -3.0], [3.0, 3.0, 3.0]]))
    array([0., 1.])
    """

    _classifier_key = "classifier"

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        **ClassifierDetector._classifier_constraints,
        "generator": [None, HasMethods(["fit", "transform", "inverse_transform"])],
        "synthesis": [StrOptions({"mlm+dmr", "mlm", "dmr"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "emphasis": [tuple, list],
        "emphasis_mode": [StrOptions({"uniform", "binary"})],
        "n_synthetic": [Interval(Integral, 1, None, closed="left"), None],
        "augment_ood": ["boolean", StrOptions({"auto"})],
        "feature_layer": [str, None],
        "rejection_hidden": [Interval(Integral, 1, None, closed="left"), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "classifier_lr": [Interval(Real, 0, None, closed="neither")],
        "classifier_epochs": [Interval(Integral, 1, None, closed="left")],
        "classifier_batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        generator=None,
        synthesis: str = "mlm+dmr",
        k: int = 5,
        emphasis: tuple[float, float] = (1.0, 3.0),
        emphasis_mode: str = "uniform",
        n_synthetic: int | None = None,
        augment_ood: bool | str = "auto",
        feature_layer: str | None = None,
        rejection_hidden: int | None = None,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        max_epochs: int = 10,
        batch_size: int = 128,
        classifier=None,
        hidden_dims: tuple[int, ...] = (256, 128),
        input_shape: tuple[int, int, int] | None = None,
        classifier_lr: float = 1e-3,
        classifier_epochs: int = 30,
        classifier_batch_size: int = 128,
        standardize: bool | str = "auto",
        contamination: float = 0.1,
        inference_batch_size: int = 8192,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.generator = generator
        self.synthesis = synthesis
        self.k = k
        self.emphasis = emphasis
        self.emphasis_mode = emphasis_mode
        self.n_synthetic = n_synthetic
        self.augment_ood = augment_ood
        self.feature_layer = feature_layer
        self.rejection_hidden = rejection_hidden
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.classifier = classifier
        self.hidden_dims = hidden_dims
        self.input_shape = input_shape
        self.classifier_lr = classifier_lr
        self.classifier_epochs = classifier_epochs
        self.classifier_batch_size = classifier_batch_size
        self.standardize = standardize
        self.contamination = contamination
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _emphasis_range(self) -> tuple[float, float]:
        if len(self.emphasis) != 2:
            raise ValueError(f"emphasis must be a pair (low, high), got {self.emphasis!r}.")
        low, high = (float(value) for value in self.emphasis)
        if not 0 <= low <= high or not np.isfinite(high):
            raise ValueError(f"emphasis must satisfy 0 <= low <= high, got {self.emphasis!r}.")
        return low, high

    def _augments(self) -> bool:
        if self.augment_ood == "auto":
            return self.input_shape is not None
        if self.augment_ood and self.input_shape is None:
            raise ValueError("augment_ood=True augments images: it needs input_shape.")
        return bool(self.augment_ood)

    # ------------------------------------------------------------------ fit
    def _fitted_generator(self, X_raw: np.ndarray, seed: int):
        generator = self.generator
        if generator is None:
            self._announce_stage(2, 3, "generator (DLSGANDetector, fitted on X)")
            generator = DLSGANDetector(
                input_shape=self.input_shape,
                device=self.device,
                random_state=seed,
                verbose=self.verbose,
            )
        else:
            name = type(generator).__name__
            try:
                check_is_fitted(generator)
            except NotFittedError:
                self._announce_stage(2, 3, f"generator ({name}, fitted on X)")
                generator = clone(generator)
                if generator.get_params().get("random_state", 0) is None:
                    generator.set_params(random_state=seed)
            else:
                if getattr(generator, "n_features_in_", X_raw.shape[1]) != X_raw.shape[1]:
                    raise ValueError(
                        f"The fitted generator expects {generator.n_features_in_} features, "
                        f"X has {X_raw.shape[1]}."
                    )
                self._announce_stage(2, 3, f"generator ({name}, the given fitted one)")
                return generator
        return generator.fit(X_raw)

    _net_class = _RejectionNet

    def _prepare_networks(self, X, y, *, seed: int, device: torch.device) -> None:
        """Steps 1 to 5: the classifier, the generator, the latent statistics and the
        synthetic outliers; what the rejection network then trains on."""
        self._emphasis_range()
        augments = self._augments()
        rng = np.random.RandomState(seed)
        if self.classifier is None:
            self._announce_stage(1, 3, f"classifier ({epochs_text(self.classifier_epochs)})")
        else:
            self._announce_stage(1, 3, "classifier (the given one, not trained)")
        classifier_net = self._fit_classifier(
            X,
            y,
            seed=seed,
            device=device,
            lr=self.classifier_lr,
            max_epochs=self.classifier_epochs,
            batch_size=self.classifier_batch_size,
        )
        self.classifier_history_ = classifier_net.history
        classifier = classifier_net.module_

        # The generator works in the original units of X.
        if self._standardizes():
            X_raw = self._unstandardize(X.double().cpu().numpy())
        else:
            X_raw = X.cpu().numpy()
        self.generator_ = self._fitted_generator(X_raw, int(rng.randint(np.iinfo(np.int32).max)))
        latents = np.asarray(self.generator_.transform(X_raw), dtype=np.float64)
        labels = y.cpu().numpy()
        means = np.zeros((len(self.classes_), latents.shape[1]))
        for label in np.unique(labels):
            means[label] = latents[labels == label].mean(axis=0)
        self.class_latent_means_ = means
        self.latent_codes_ = latents.astype(np.float32)
        self.latent_labels_ = labels
        del X_raw, latents

        n_rows = X.shape[0]
        n_synthetic = n_rows if self.n_synthetic is None else int(self.n_synthetic)
        rejection = f"rejection network ({epochs_text(self.max_epochs)})"
        self._announce_stage(3, 3, f"{n_synthetic} synthetic outliers, {rejection}")
        synthetic = self._as_tensor(self._synthesize(n_synthetic, rng), device)
        if augments:
            inputs = torch.cat([X, synthetic])
        else:
            inputs = torch.cat(
                [self._features(classifier, X), self._features(classifier, synthetic)]
            )
        del synthetic
        targets = torch.cat(
            [torch.zeros(n_rows, device=device), torch.ones(n_synthetic, device=device)]
        )
        with torch.no_grad():
            n_features = layer_features(classifier, X[:1], self.feature_layer).shape[1]
        hidden = self.rejection_hidden
        if hidden is None:
            hidden = 2048 if n_features >= 2048 else min(2048, max(64, 2 * n_features))
        self.rejection_hidden_ = int(hidden)
        self.pixel_range_ = (float(X.min()), float(X.max())) if augments else None
        # Handed on to _build_networks and _training_data within this fit, then dropped.
        self._fit_state_ = {"classifier": classifier, "data": (inputs, targets)}

    def _build_networks(self, n_features: int, seed: int) -> dict[str, torch.nn.Module]:
        fit_state = getattr(self, "_fit_state_", None)
        if fit_state is not None:
            classifier = fit_state["classifier"]
        else:  # rebuilt to load a fitted detector's weights into
            classifier = self._build_classifier(n_features, len(self.classes_), seed)
        with torch.no_grad():
            probe = torch.zeros(1, n_features, device=next(classifier.parameters()).device)
            width = layer_features(classifier, probe, self.feature_layer).shape[1]
        head = RejectionHead(
            width, self.rejection_hidden_, generator=torch.Generator().manual_seed(seed)
        )
        return {"module": head, "classifier": classifier}

    def _net_params(self) -> dict:
        augment = None
        if self.pixel_range_ is not None:
            low, high = self.pixel_range_
            shape = tuple(int(size) for size in self.input_shape)
            augment = partial(augment_images, input_shape=shape, low=low, high=high)
        n_rows = self.latent_labels_.shape[0]
        n_synthetic = n_rows if self.n_synthetic is None else int(self.n_synthetic)
        return {
            "augment": augment,
            "feature_layer": self.feature_layer,
            "pos_weight": n_rows / n_synthetic,
        }

    def _optimizer_params(self) -> dict:
        return {
            "optimizer": torch.optim.SGD,
            "optimizer__momentum": self.momentum,
            "optimizer__nesterov": self.momentum > 0,
            "optimizer__weight_decay": self.weight_decay,
        }

    def _net_callbacks(self) -> list:
        cosine = EveryOptimizerLRScheduler(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs
        )
        return [("cosine", cosine)]

    def _training_data(self, X: torch.Tensor, y) -> tuple:
        return self._fit_state_["data"]

    def _train_networks(self, X: torch.Tensor, y: torch.Tensor) -> None:
        try:
            super()._train_networks(X, y)
        finally:
            self.__dict__.pop("_fit_state_", None)
        self.net_.classifier_.eval()

    def _features(self, classifier, X: torch.Tensor) -> torch.Tensor:
        """Frozen features of ``X`` in training precision, computed in bounded batches."""
        parts = []
        with torch.no_grad(), self._progress(X.shape[0], "features") as progress:
            for start in range(0, X.shape[0], self.inference_batch_size):
                block = X[start : start + self.inference_batch_size]
                parts.append(layer_features(classifier, block, self.feature_layer))
                progress.update(block.shape[0])
        return torch.cat(parts)

    # ------------------------------------------------------------------ synthesis
    def _synthetic_latents(self, n_samples: int, rng: np.random.RandomState) -> np.ndarray:
        labels = self.latent_labels_
        counts = np.bincount(labels, minlength=len(self.classes_))
        present = np.flatnonzero(counts)
        order = np.argsort(labels, kind="stable")
        starts = np.cumsum(counts) - counts
        k = 1 if self.synthesis == "dmr" else min(int(self.k), present.size)

        # k distinct classes per outlier: the k smallest of uniform draws, a random subset.
        chosen = np.empty((n_samples, k), dtype=np.int64)
        step = max(1, _CHOICE_CELLS // present.size)
        for start in range(0, n_samples, step):
            stop = min(n_samples, start + step)
            noise = rng.random_sample((stop - start, present.size))
            chosen[start:stop] = present[np.argsort(noise, axis=1)[:, :k]]
        # One uniformly drawn training sample of each chosen class.
        offsets = (rng.random_sample((n_samples, k)) * counts[chosen]).astype(np.int64)
        rows = order[starts[chosen] + offsets]

        codes = self.latent_codes_
        total = np.zeros((n_samples, codes.shape[1]))
        for j in range(k):
            total += codes[rows[:, j]]
            if self.synthesis != "mlm":
                total -= self.class_latent_means_[chosen[:, j]]
        mixed = total / k
        if self.synthesis == "mlm":
            return mixed
        low, high = self._emphasis_range()
        if self.emphasis_mode == "uniform":
            emphasis = rng.uniform(low, high, size=n_samples)
        else:
            emphasis = np.where(rng.random_sample(n_samples) < 0.5, low, high)
        return emphasis[:, None] * mixed

    def _synthesize(self, n_samples: int, rng: np.random.RandomState) -> np.ndarray:
        return self.generator_.inverse_transform(self._synthetic_latents(n_samples, rng))

    def synthesize(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Draw synthetic outliers as ``fit`` makes them, in the units of ``X``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of outliers.
        random_state : int, RandomState instance or None, default=None
            Seed of the classes, samples and emphases drawn.

        Returns
        -------
        outliers : ndarray of shape (n_samples, `n_features_in_`)
            Decoded synthetic outliers (flattened images when ``input_shape`` is set).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        return self._synthesize(int(n_samples), check_random_state(random_state))

    # ------------------------------------------------------------------ scoring
    def _score_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        features = layer_features(networks["classifier"], X, self.feature_layer)
        return -networks["module"](features).double()

    def ood_probability(self, X):
        """Probability that each sample is out-of-distribution, ``sigmoid(B(F(x)))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        probability : ndarray of shape (n_samples,)
            The rejection network's output, in [0, 1]; ``expit(-score_samples(X))``.
        """
        return expit(-self.score_samples(X))
