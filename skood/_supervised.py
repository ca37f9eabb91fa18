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

from ._training import LOSS_GROWTH_LIMIT, MultiModuleNet
from ._validation import ImageShape, IntegerWidths
from .base import BaseDetector
from .nn.classifier import FeatureClassifier, as_feature_classifier, conv_classifier, mlp_classifier

__all__ = ["ClassifierDetector"]


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


class _ClassifierNet(MultiModuleNet):
    """Cross-entropy training of a :class:`~skood.nn.classifier.FeatureClassifier` (``module_``)
    through skorch's own step (its criterion and step closure).

    ``train_loss`` is the cross-entropy; ``train_accuracy`` the fraction of the batch classified
    correctly (per epoch: the mean over batches).
    """

    loss_growth_limit = LOSS_GROWTH_LIMIT

    def __init__(self, module, **kwargs) -> None:
        kwargs.setdefault("criterion", torch.nn.CrossEntropyLoss)
        super().__init__(module, loss_names=("train_accuracy",), **kwargs)

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        _, targets = batch
        accuracy = (step["y_pred"].detach().argmax(dim=1) == targets).double().mean()
        self.record_losses({"train_loss": step["loss"], "train_accuracy": accuracy})
        return step


class ClassifierDetector(BaseDetector):
    """Base of the detectors that need class labels: ``fit(X, y)`` and a classifier.

    Subclasses set ``_classifier_key``, the name under which the classifier appears among the
    scoring networks (``"module"`` when it is the skorch net's main module); the classifier is
    built by :meth:`_classifier_module` and trained by :meth:`_fit_classifier` or as the
    detector's own net.
    """

    _classifier_key: str = "module"

    _classifier_constraints: dict = {
        "classifier": [None, torch.nn.Module, NeuralNet],
        "hidden_dims": [IntegerWidths()],
        "input_shape": [ImageShape(), None],
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

    def _validate_training_data(self, X, y, *, reset: bool = True):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "fit it with the class labels of the training data: fit(X, y)."
            )
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset
        )
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

    def _build_classifier(self, n_features: int, n_classes: int, seed: int) -> FeatureClassifier:
        hidden = tuple(self.hidden_dims)
        init = torch.Generator().manual_seed(seed)
        shape = self._image_shape(n_features)
        if shape is None:
            return mlp_classifier(n_features, hidden, n_classes, generator=init)
        return conv_classifier(shape, hidden, n_classes, generator=init)

    def _user_module(self) -> torch.nn.Module:
        """A copy of the user's classifier module, in evaluation mode: fitting must neither
        move nor freeze the object the user passed."""
        original = self.classifier
        if isinstance(original, NeuralNet):
            original = original.module_
        return copy.deepcopy(original).eval()

    def _check_user_classifier(self, X: torch.Tensor) -> None:
        """Check on a few training rows that the user's classifier returns its logits, and
        that they are ``head(features(x))``."""
        original = self._user_module().to(X.device)
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

    def _classifier_module(self, n_features: int, seed: int) -> FeatureClassifier:
        """The built-in classifier, initialised from ``seed``, or a copy of the user's."""
        if self.classifier is not None:
            return as_feature_classifier(self._user_module(), input_shape=self.input_shape)
        return self._build_classifier(n_features, len(self.classes_), seed)

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
        """A classifier net trained on ``(X, y)`` (the user's, only wrapped); frozen after."""
        if self.classifier is not None:
            self._check_user_classifier(X)
        net = _ClassifierNet(
            self._classifier_module(X.shape[1], seed),
            seed=seed,
            optimizer=torch.optim.Adam,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            device=str(device),
            verbose=self.verbose,
            callbacks__progress__label=f"{type(self).__name__} classifier",
        )
        self._train_classifier(net, X, y)
        return net

    def _train_classifier(self, net: _ClassifierNet, X: torch.Tensor, y: torch.Tensor) -> None:
        """Train the built-in classifier; a user's is trained already. Frozen either way."""
        if self.classifier is not None:
            net.initialize()
        else:
            net.partial_fit(X, y)
        net.module_.eval().requires_grad_(False)

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
        # The logits first: they check that the detector is fitted before classes_ is read.
        logits = self._class_logits(X)
        return self.classes_[np.argmax(logits, axis=1)]
