"""Shared parts of the detectors fitted with class labels (post-hoc classifier scores, DMR).

:class:`ClassifierDetector` extends :class:`~skood.base.BaseDetector` with ``fit(X, y)``: label
validation (``classes_``), a classifier trained with cross-entropy through skorch (or a user's
trained module), and the classifier's own predictions under names that leave
``OutlierMixin.predict`` (which returns -1/+1) alone: ``predict_class`` and
``predict_class_proba``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.special import softmax
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from skorch import NeuralNet

from ._training import LOSS_GROWTH_LIMIT, AdversarialNet, InMemoryBatches
from .base import BaseDetector, IntegerWidths
from .nn.classifier import FeatureClassifier, as_feature_classifier, conv_classifier, mlp_classifier

__all__ = ["ClassifierDetector", "LabelledBatches"]


def _check_label_types(y: np.ndarray) -> None:
    """Refuse labels that mix strings with numbers: they cannot be sorted into ``classes_``.

    scikit-learn's own label checks fail on them with a TypeError from the sort.
    """
    if y.dtype.kind != "O":
        return
    strings = np.array([isinstance(label, str) for label in y])
    if strings.any() and not strings.all():
        raise ValueError(
            f"Unknown label type: y mixes strings and numbers (for instance "
            f"{y[strings][0]!r} and {y[~strings][0]!r}). Use labels of one type: all strings "
            "or all numbers."
        )


class LabelledBatches(InMemoryBatches):
    """Mini-batches ``(X[rows], y[rows])`` sliced from two tensors on the training device.

    The labelled counterpart of :class:`~skood._training.InMemoryBatches`: skorch's
    ``Dataset`` contributes ``X`` and ``y``, both tensors with the same number of rows.
    """

    def __init__(self, dataset, batch_size: int, *, shuffle: bool = False, seed=None) -> None:
        super().__init__(dataset, batch_size, shuffle=shuffle, seed=seed)
        targets = getattr(dataset, "y", None)
        if not isinstance(targets, torch.Tensor) or len(targets) != len(self.data):
            raise TypeError("LabelledBatches needs the targets as a tensor with one row per X row.")
        self.targets = targets

    def __iter__(self):
        n_rows = len(self.data)
        if self.shuffle:
            order = torch.randperm(n_rows, generator=self.generator, device=self.data.device)
        else:
            order = torch.arange(n_rows, device=self.data.device)
        for start in range(0, n_rows, self.batch_size):
            rows = order[start : start + self.batch_size]
            yield self.data[rows], self.targets[rows]


class _ClassifierNet(AdversarialNet):
    """Cross-entropy training of a :class:`~skood.nn.classifier.FeatureClassifier` (``module_``).

    ``train_loss`` is the cross-entropy; ``train_accuracy`` the fraction of the batch classified
    correctly (per epoch: the mean over batches).
    """

    loss_growth_limit = LOSS_GROWTH_LIMIT

    def __init__(self, module, **kwargs) -> None:
        kwargs.setdefault("partners", {})
        kwargs.setdefault("iterator_train", LabelledBatches)
        super().__init__(
            module, loss_names=("train_accuracy",), criterion=torch.nn.CrossEntropyLoss, **kwargs
        )

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        inputs, targets = batch
        logits = self.module_(inputs)
        loss = self.criterion_(logits, targets)
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_.step()
        accuracy = (logits.detach().argmax(dim=1) == targets).double().mean()
        self.record_losses({"train_loss": loss, "train_accuracy": accuracy})
        return {"loss": loss, "y_pred": logits}


class ClassifierDetector(BaseDetector):
    """Base of the detectors that need class labels: ``fit(X, y)`` and a classifier.

    Subclasses set ``_classifier_key``, the name under which the classifier appears among the
    scoring networks (``"module"`` when it is the skorch net's main module), and call
    :meth:`_fit_classifier` from ``_fit_networks``.
    """

    _classifier_key: str = "module"

    _classifier_constraints: dict = {
        "classifier": [None, torch.nn.Module, NeuralNet],
        "hidden_dims": [IntegerWidths()],
        "input_shape": [tuple, list, None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the classifier on labelled in-distribution data, then fit the detector.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution training data (flattened images when ``input_shape`` is set).
        y : array-like of shape (n_samples,)
            Class labels (at least two classes); required, the default None is an error. With
            a user-supplied ``classifier``, integer labels in ``[0, n_logits)`` that index the
            classifier's outputs.

        Returns
        -------
        self : object
            The fitted detector.
        """
        return super().fit(X, y)

    def fit_predict(self, X, y=None):
        """Fit on ``(X, y)`` and label the training samples inlier (+1) or outlier (-1).

        ``OutlierMixin.fit_predict`` ignores ``y``; a supervised detector needs it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels; required.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 for outliers, +1 for inliers.
        """
        return self.fit(X, y).predict(X)

    def _standardizes(self) -> bool:
        # "auto": a user's trained classifier sees the inputs it was trained on, unchanged;
        # the built-in classifier gets standardized tables and images as they are.
        if self.standardize == "auto":
            return self.classifier is None and getattr(self, "input_shape", None) is None
        return bool(self.standardize)

    def _validate_training_data(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "fit it with the class labels of the training data: fit(X, y)."
            )
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        _check_label_types(y)
        check_classification_targets(y)
        if self.classifier is None:
            encoder = LabelEncoder().fit(y)
            classes, encoded = encoder.classes_, encoder.transform(y)
        else:
            n_logits = self._adapted_user_classifier().n_classes
            encoded = self._user_class_indices(y, n_logits)
            classes = np.arange(n_logits)
        n_present = np.unique(encoded).size
        if n_present < 2:
            raise ValueError(
                f"{type(self).__name__} needs training samples of at least 2 classes; y has "
                f"only {n_present}."
            )
        self.classes_ = classes
        return X, encoded.astype(np.int64)

    @staticmethod
    def _user_class_indices(y: np.ndarray, n_logits: int) -> np.ndarray:
        values = np.asarray(y)
        if values.dtype.kind not in "iuf" or not np.all(np.mod(values, 1) == 0):
            raise ValueError(
                "With a user-supplied classifier, y must hold integer class indices (the "
                f"positions of the classifier's {n_logits} logits); got {values.dtype} values."
            )
        if values.min() < 0 or values.max() >= n_logits:
            raise ValueError(
                f"y holds class indices outside [0, {n_logits}), the range of the "
                f"classifier's {n_logits} logits."
            )
        return values.astype(np.int64)

    def _encode_labels(self, y) -> np.ndarray:
        """Encode labels of a fitted detector to class indices (for re-estimated statistics)."""
        y = column_or_1d(y, warn=True)
        _check_label_types(y)
        if self.classifier is not None:
            return self._user_class_indices(y, len(self.classes_))
        unknown = ~np.isin(y, self.classes_)
        if np.any(unknown):
            raise ValueError(f"y contains labels not seen in fit: {np.unique(y[unknown])[:5]}.")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    # ------------------------------------------------------------------ classifier
    def _adapted_user_classifier(self) -> FeatureClassifier:
        module = self.classifier
        if isinstance(module, NeuralNet):
            if not getattr(module, "initialized_", False):
                raise ValueError(
                    "classifier is a skorch net that is not fitted (cloning a skorch net, as "
                    "GridSearchCV does, returns an unfitted one); pass its fitted module_ "
                    "instead."
                )
            module = module.module_
        return as_feature_classifier(module, input_shape=self.input_shape)

    def _check_input_shape(self, n_features: int) -> tuple[int, int, int] | None:
        if self.input_shape is None:
            return None
        shape = tuple(int(size) for size in self.input_shape)
        if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != n_features:
            raise ValueError(
                f"input_shape={self.input_shape!r} must be (channels, height, width) with "
                f"channels * height * width == n_features ({n_features})."
            )
        return shape

    def _build_classifier(self, n_features: int, n_classes: int, seed: int) -> FeatureClassifier:
        hidden = tuple(int(width) for width in self.hidden_dims)
        if not hidden or any(width < 1 for width in hidden):
            raise ValueError(f"hidden_dims must hold positive widths, got {self.hidden_dims!r}.")
        init = torch.Generator().manual_seed(seed)
        shape = self._check_input_shape(n_features)
        if shape is None:
            return mlp_classifier(n_features, hidden, n_classes, generator=init)
        return conv_classifier(shape, hidden, n_classes, generator=init)

    def _user_classifier_copy(self, X: torch.Tensor, device: torch.device) -> FeatureClassifier:
        """A frozen copy of the user's classifier on ``device``, checked against its logits."""
        self._check_input_shape(X.shape[1])
        original = self.classifier
        if isinstance(original, NeuralNet):
            original = original.module_
        # Copy first: fitting must neither move nor freeze the object the user passed.
        original = copy.deepcopy(original).to(device).eval()
        adapted = as_feature_classifier(original, input_shape=self.input_shape)
        probe = X[:8]
        with torch.no_grad():
            shaped = probe if self.input_shape is None else probe.reshape(-1, *adapted.input_shape)
            direct, split = original(shaped), adapted(probe)
        if not isinstance(direct, torch.Tensor) or direct.shape != split.shape:
            raise ValueError(
                "The classifier's forward must return the logits, of shape (n, n_logits); got "
                f"{getattr(direct, 'shape', type(direct).__name__)}."
            )
        if not torch.allclose(direct, split, rtol=1e-4, atol=1e-5):
            raise ValueError(
                "The classifier's logits differ from head(features(x)): features must be the "
                "input of the linear head."
            )
        return adapted

    def _fit_classifier(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        seed: int,
        device: torch.device,
        lr: float,
        max_epochs: int,
        batch_size: int,
    ) -> _ClassifierNet:
        """Train the built-in classifier on ``(X, y)``, or wrap the user's; frozen either way."""
        user = self.classifier is not None
        if user:
            module = self._user_classifier_copy(X, device)
        else:
            module = self._build_classifier(X.shape[1], len(self.classes_), seed)
        net = _ClassifierNet(
            module,
            seed=seed,
            optimizer=torch.optim.Adam,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            device=str(device),
            verbose=self.verbose,
        )
        if user:
            net.initialize()
        else:
            net.fit(X, y)
        net.module_.eval().requires_grad_(False)
        return net

    def _inference_networks(self) -> dict:
        networks = super()._inference_networks()
        for network in networks.values():
            # A user's classifier may hold dropout or batch normalisation.
            network.eval()
        return networks

    # ------------------------------------------------------------------ classification
    def _class_logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        key = self._classifier_key
        return self._map_batches(X, lambda batch, networks: networks[key](batch))

    def predict_class_proba(self, X):
        """Class probabilities of the classifier (softmax of its logits, temperature 1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return softmax(self._class_logits(X), axis=1)

    def predict_class(self, X):
        """Class predicted by the classifier (the detector's ``predict`` flags outliers).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        classes : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        return self.classes_[np.argmax(self._class_logits(X), axis=1)]
