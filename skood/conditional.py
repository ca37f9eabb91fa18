"""ConditionalDLSGAN: a class- or attribute-conditional DLSGAN that edits inputs continuously.

Method reference: J. Cho, "Applications of Dynamic Latent Scale GAN: OOD Detection and
Continuous Attribute Editing" (spec: ``docs/conditional.md``). A fixed random linear classifier
on the scaled latent labels the generated samples; the discriminator is conditional on the
labels, so the generator learns to make each class or attribute linearly separable along the
classifier's directions, and an input is edited by moving its scaled code along them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._docstrings import fill_doc
from ._supervised import _check_label_types
from ._validation import check_n_samples
from .dlsgan import _VARIANCE_FLOOR, DLSGANDetector, _DLSGANNet
from .nn import FixedLatentClassifier

__all__ = ["ConditionalDLSGAN"]

# Tag mixed into the seed of the fixed classifier's stream, so that it is independent of the
# streams that initialise the networks from the same seed.
_CLASSIFIER_STREAM = 0x5C1A55
# Latent draws per round of the rejection sampler, and the most draws per requested sample.
_SAMPLE_BLOCK = 4096
_MAX_DRAWS_PER_SAMPLE = 1000


class _ConditionalDLSGANNet(_DLSGANNet):
    """DLSGAN's step with a conditional discriminator (spec section 10).

    Batches are ``(rows, labels)``: ``labels`` one-hot per attribute (``M`` values for
    classes, ``[c, 1 - c]`` for ``A`` binary attributes). ``classifier_`` is the fixed
    :class:`~skood.nn.FixedLatentClassifier` whose outputs on ``z * s`` give the pseudo
    labels of generated samples; it has no parameters and no optimizer. The critic has one
    logit per label value and the adversarial terms are
    ``(1/A) sum_j softplus(-+a_j) c_j``; R1 penalises the input gradient of
    ``r(x) = (1/A) sum_j a_j(x) c_j`` on real rows.
    """

    # Its labels and per-label terms have no stacked step (skood._joint): members of a
    # conditional DLSGAN train one by one.
    joint_train_step = None

    def __init__(self, module, *, n_attributes: int = 1, **kwargs) -> None:
        self.n_attributes = n_attributes
        super().__init__(module, **kwargs)

    def optimizer_groups(self):
        # The fixed classifier is never trained: no optimizer for it.
        return {
            "optimizer": (("module",), {}),
            "optimizer_discriminator": (("discriminator",), {}),
        }

    def _split_batch(self, batch):
        rows, labels = batch
        return rows, labels

    def _pseudo_labels(self, scaled_latent: torch.Tensor) -> torch.Tensor:
        return self.classifier_.pseudo_labels(scaled_latent)

    def _adversarial_loss(self, logits, labels, real: bool) -> torch.Tensor:
        terms = F.softplus(-logits) if real else F.softplus(logits)
        return (terms * labels).sum(dim=1).mean() / self.n_attributes

    def _r1_output(self, logits, labels) -> torch.Tensor:
        return (logits * labels).sum(dim=1) / self.n_attributes


def _finite_values(value, what: str) -> np.ndarray:
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be real numbers, got {value!r}.") from error
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} must be finite (no NaN or infinity), got {value!r}.")
    return values


@fill_doc
class ConditionalDLSGAN(DLSGANDetector):
    """Class- or attribute-conditional DLSGAN: continuous editing and OOD detection.

    A DLSGAN (:class:`DLSGANDetector`: dynamic latent scale, encoder loss, R1, traced
    variance) whose discriminator is conditional on labels. A fixed random linear classifier
    ``W`` (never trained) on the scaled latent ``u = z * s`` labels every generated sample:

    * class labels ``y`` (1-D, ``M`` classes): ``onehot(argmax(u W + b))``;
    * binary attributes ``y`` (shape ``(n, A)``, 0/1): ``c_a = 1[u . W[:, a] + b_a > 0]``,
      encoded ``[c, 1 - c]``.

    Real rows carry their true labels. The discriminator has one logit per label value plus
    the latent head, and is trained with the conditional NSGAN loss of the follow-up paper;
    the generator learns to make each class or attribute linearly separable along the columns
    of ``W`` in the scaled latent space. :meth:`edit` then moves the code ``u = E(x) * s`` of
    an input along them and decodes: for a binary attribute ``a`` with ``w = W[:, a]``, the
    output ``k = u . w + b_a`` is set to ``t = value * sigma_w`` by the projection
    ``u' = u - ((k - t) / ||w||^2) w``, with ``sigma_w = sqrt(sum_i s_i^2 w_i^2)`` the
    standard deviation of the output over the latent prior (``value`` is in standard
    deviations; the paper's ``sqrt(d)`` is its expectation over the random ``W``). For a
    target class ``m``, the direction is ``W[:, m] - W[:, m']`` toward ``m`` from the
    strongest other class ``m'`` of the input (its current class when that is not ``m``), and
    ``value`` sets the margin ``output_m - output_m'`` the same way.

    It is also an outlier detector with DLSGAN's scores (``score_type``).

    Read more in the user guide, ``docs/conditional.md``.

    Parameters
    ----------
    latent_dim : int, default=32
        Number of latent coordinates ``d`` (the papers use 256 for images).
    hidden_dims : tuple of int, default=(128, 128)
        Hidden widths of the generator and discriminator/encoder MLPs (tables).
    input_shape : tuple (channels, height, width) or None, default=None
        Set it for images (rows of ``X`` are flattened images, channel-major): convolutional
        networks, as in :class:`DLSGANDetector`.
    architecture : {"small", "reference"}, default="small"
        The convolutional networks when ``input_shape`` is set (see
        :class:`DLSGANDetector`).
    classifier_bias : bool, default=False
        Draw the fixed classifier's offsets ``b ~ N(0, 1)`` (the paper's ``+ b``). False, the
        default, as the reference code and the spec's recommendation: with ``b = 0`` the
        pseudo labels depend on the direction of ``u`` only, so the latent scale never
        changes which share of the generated samples each label gets, and attribute outputs
        are symmetric about 0.
    score_type : {"nlp", "reconstruction"}, default="nlp"
        Outlier score, as in :class:`DLSGANDetector` (the NLP of the encoder's code
        ``E(x)`` under ``N(0, diag(v))``, or the reconstruction error).
    lambda_enc : float, default=1.0
        Weight of the encoder loss in both networks' losses.
    lambda_r1 : float, default=0.1
        Weight of the R1 penalty on the labelled real logit.
    r1_interval : int, default=4
        Lazy R1: the penalty every ``r1_interval`` steps, weighted by the interval, as in
        :class:`DLSGANDetector`.
    variance_decay : float, default=0.999
        Decay of the EMA that traces the latent variance.
    lr : float, default=1e-3
        Adam learning rate of both networks.
    betas : tuple of float, default=(0.0, 0.99)
        Adam coefficients.
    lr_decay : float, default=0.95
        Factor applied to both learning rates after every epoch.
    max_epochs : int, default=30
        Passes over the training data.
    %(warm_start)s
    batch_size : int, default=32
        Rows per training step.
    equalized_lr : bool, default=True
        Equalized-learning-rate layers, as in the reference networks.
    negative_slope : float, default=0.2
        LeakyReLU slope.
    standardize : bool or "auto", default="auto"
        Standardize features inside the detector; ``"auto"``: tables yes, images no (pass
        pixels in [-1, 1]).
    %(contamination)s
    inference_batch_size : int, default=8192
        Rows converted and scored (or edited) at a time.
    %(device)s
    %(mixed_precision)s
    random_state : int, RandomState instance or None, default=None
        Seeds the fixed classifier, weight initialisation, latent sampling and batch order.
    %(verbose)s

    Attributes
    ----------
    label_type_ : {"classes", "attributes"}
        What ``y`` held: class labels (1-D) or binary attribute columns (2-D).
    classes_ : ndarray of shape (n_classes,)
        Class labels (``label_type_ == "classes"`` only); column ``m`` of ``W`` is
        ``classes_[m]``.
    n_attributes_ : int
        Number of binary attributes ``A`` (1 for class labels: one categorical attribute).
    attribute_names_ : ndarray of str or None
        Column names of ``y`` when it was a DataFrame with string columns (attribute mode).
    classifier_weights_ : ndarray of shape (latent_dim, n_columns)
        The fixed classifier ``W`` (one column per class or attribute).
    classifier_intercept_ : ndarray of shape (n_columns,)
        Its offsets ``b`` (zeros unless ``classifier_bias``).
    net_ : skorch.NeuralNet
        ``net_.module_`` is the generator, ``net_.discriminator_`` the conditional
        discriminator/encoder, ``net_.classifier_`` the fixed classifier (buffers only).
    history_ : skorch.history.History
        Every recorded loss, and the traced variance after each epoch.
    latent_variance_ : ndarray of shape (latent_dim,)
        Final traced variance ``v``.
    latent_scale_ : ndarray of shape (latent_dim,)
        Final latent scale ``s``.
    typical_latent_radius_ : float
        Median Mahalanobis radius of the training codes ``u`` under ``N(0, diag(v s^2))``
        (used by :meth:`explain`).
    %(offset_)s
    %(input_scaling_)s
    %(n_features_in_)s
    %(feature_names_in_)s

    See Also
    --------
    DLSGANDetector : The unconditional model.

    Notes
    -----
    Unlike :class:`DLSGANDetector`, whose ``transform`` returns the unscaled ``E(x)``,
    :meth:`transform` returns the scaled code ``u = E(x) * s`` that the classifier and the
    edits work on, and :meth:`inverse_transform` decodes ``G(u)``.

    References
    ----------
    .. [1] J. Cho, "Applications of Dynamic Latent Scale GAN: OOD Detection and Continuous
       Attribute Editing".

    Examples
    --------
    >>> import numpy as np
    >>> from skood import ConditionalDLSGAN
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat([0, 1], 100)
    >>> X = rng.normal(size=(200, 3)) + 3 * y[:, None]
    >>> model = ConditionalDLSGAN(latent_dim=4, max_epochs=2, random_state=0).fit(X, y)
    >>> model.edit(X[:2], attribute=1, value=1.0).shape
    (2, 3)
    >>> model.edit_path(X[:2], attribute=1, values=[-1.0, 0.0, 1.0]).shape
    (2, 3, 3)
    >>> model.sample(3, attributes=1, random_state=0).shape
    (3, 3)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in DLSGANDetector._parameter_constraints.items()
            if name != "variant"
        },
        "classifier_bias": ["boolean"],
    }

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        hidden_dims: tuple[int, ...] = (128, 128),
        input_shape: tuple[int, int, int] | None = None,
        architecture: str = "small",
        classifier_bias: bool = False,
        score_type: str = "nlp",
        lambda_enc: float = 1.0,
        lambda_r1: float = 0.1,
        r1_interval: int = 4,
        variance_decay: float = 0.999,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        lr_decay: float = 0.95,
        max_epochs: int = 30,
        warm_start: bool = False,
        batch_size: int = 32,
        equalized_lr: bool = True,
        negative_slope: float = 0.2,
        standardize: bool | str = "auto",
        contamination: float = 0.1,
        inference_batch_size: int = 8192,
        device: str = "auto",
        mixed_precision: bool | str = "auto",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.input_shape = input_shape
        self.architecture = architecture
        self.classifier_bias = classifier_bias
        self.score_type = score_type
        self.lambda_enc = lambda_enc
        self.lambda_r1 = lambda_r1
        self.r1_interval = r1_interval
        self.variance_decay = variance_decay
        self.lr = lr
        self.betas = betas
        self.lr_decay = lr_decay
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.batch_size = batch_size
        self.equalized_lr = equalized_lr
        self.negative_slope = negative_slope
        self.standardize = standardize
        self.contamination = contamination
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit the conditional GAN on labelled in-distribution data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (flattened images when ``input_shape`` is set).
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Class labels (1-D, at least two classes), or a 0/1 (or boolean) matrix with one
            column per binary attribute, each taking both values; a DataFrame's column names
            become ``attribute_names_``. Required.

        Returns
        -------
        self : object
            The fitted model.
        """
        return super().fit(X, y)

    def fit_predict(self, X, y=None):
        """Fit on ``(X, y)`` and label the training samples inlier (+1) or outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels, as in :meth:`fit`; required.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 for outliers, +1 for inliers.
        """
        return self.fit(X, y).predict(X)

    def _validate_training_data(self, X, y, *, reset: bool = True):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "fit it with class labels (1-D) or binary attribute columns: fit(X, y)."
            )
        columns = getattr(y, "columns", None)
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            multi_output=True,
            reset=reset,
        )
        self._image_shape(X.shape[1])
        y = np.asarray(y)
        if y.ndim == 1:
            fitted = self._encode_classes(y, reset=reset)
        else:
            fitted = self._encode_attributes(y, columns, reset=reset)
        labels, attributes = fitted
        if reset:
            for name in ("classes_", "attribute_names_"):
                self.__dict__.pop(name, None)
            vars(self).update(attributes)
        return X, labels

    def _encode_classes(self, y: np.ndarray, *, reset: bool) -> tuple[np.ndarray, dict]:
        _check_label_types(y)
        check_classification_targets(y)
        if reset:
            classes = LabelEncoder().fit(y).classes_
            if classes.size < 2:
                raise ValueError(
                    f"{type(self).__name__} needs training samples of at least 2 classes; y "
                    f"has only {classes.size}."
                )
        else:
            self._check_same_label_type("classes")
            classes = self.classes_
            unknown = ~np.isin(y, classes)
            if np.any(unknown):
                raise ValueError(
                    f"y contains labels not seen in the first fit: {np.unique(y[unknown])[:5]}."
                )
        encoded = np.eye(classes.size, dtype=np.float32)[np.searchsorted(classes, y)]
        attributes = {"label_type_": "classes", "classes_": classes, "n_attributes_": 1}
        return encoded, attributes

    def _encode_attributes(self, y: np.ndarray, columns, *, reset: bool) -> tuple:
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"A 2-D y holds binary attributes: 0/1 or boolean values, got {y.dtype} values."
                ) from error
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError(
                "A 2-D y holds binary attributes, one column each, with values 0 and 1 (or "
                "booleans); pass class labels as a 1-D array."
            )
        n_attributes = y.shape[1]
        if reset:
            constant = [a for a in range(n_attributes) if np.unique(y[:, a]).size < 2]
            if constant:
                raise ValueError(
                    f"Attribute columns {constant} of y take only one value; every attribute "
                    "needs training rows with both values."
                )
        else:
            self._check_same_label_type("attributes")
            if n_attributes != self.n_attributes_:
                raise ValueError(
                    f"y has {n_attributes} attribute columns, but the first fit had "
                    f"{self.n_attributes_}."
                )
        positive = y.astype(np.float32)
        encoded = np.concatenate([positive, 1.0 - positive], axis=1)
        names = None
        if columns is not None and all(isinstance(name, str) for name in columns):
            names = np.asarray(list(columns), dtype=object)
        attributes = {
            "label_type_": "attributes",
            "attribute_names_": names,
            "n_attributes_": n_attributes,
        }
        return encoded, attributes

    def _check_same_label_type(self, label_type: str) -> None:
        if self.label_type_ != label_type:
            raise ValueError(
                f"warm_start=True continues a model fitted with {self.label_type_} labels; y "
                f"now holds {label_type}. Set warm_start=False to fit a new model."
            )

    def _training_data(self, X: torch.Tensor, y: torch.Tensor) -> tuple:
        return X, y.to(torch.float32)

    # ------------------------------------------------------------------ networks
    def _dynamic_scale(self) -> bool:
        return True

    def _log_variance_head(self) -> bool:
        return False

    def _n_columns(self) -> int:
        """Columns of ``W``: one per class, or one per binary attribute."""
        return len(self.classes_) if self.label_type_ == "classes" else self.n_attributes_

    def _adversarial_logits(self) -> int:
        n_columns = self._n_columns()
        return n_columns if self.label_type_ == "classes" else 2 * n_columns

    def _build_networks(self, n_features: int, seed: int) -> dict[str, torch.nn.Module]:
        networks = super()._build_networks(n_features, seed)
        # Drawn from the seed alone, on a stream of its own (no global random state).
        rng = np.random.default_rng([seed, _CLASSIFIER_STREAM])
        n_columns = self._n_columns()
        weight = rng.standard_normal((self.latent_dim, n_columns))
        bias = rng.standard_normal(n_columns) if self.classifier_bias else np.zeros(n_columns)
        networks["classifier"] = FixedLatentClassifier(
            torch.as_tensor(weight, dtype=torch.float32),
            torch.as_tensor(bias, dtype=torch.float32),
            kind=self.label_type_,
        )
        return networks

    _net_class = _ConditionalDLSGANNet

    def _net_params(self) -> dict:
        return {
            "variant": "dlsgan",
            "lambda_enc": self.lambda_enc,
            "lambda_r1": self.lambda_r1,
            "r1_interval": self.r1_interval,
            "variance_decay": self.variance_decay,
            "n_attributes": self.n_attributes_,
        }

    def _after_training(self, X: torch.Tensor) -> None:
        super()._after_training(X)
        classifier = self.net_.classifier_
        self.classifier_weights_ = classifier.weight.double().cpu().numpy()
        self.classifier_intercept_ = classifier.bias.double().cpu().numpy()

    # ------------------------------------------------------------------ latent space
    def _encode(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        generator = networks["module"]
        return networks["discriminator"].encode(X) * generator.latent_scale()

    def _decode(self, latents: torch.Tensor, networks: dict) -> torch.Tensor:
        return networks["module"](latents)

    def _latent_prior_variance(self, networks: dict) -> torch.Tensor:
        # u = E(x) * s with E(x) ~ N(0, diag(v)).
        generator = networks["module"]
        variance = generator.traced_variance.clamp_min(_VARIANCE_FLOOR)
        return variance * generator.latent_scale().pow(2)

    def transform(self, X):
        """Encode samples to their scaled latent codes ``u = E(x) * s``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to encode.

        Returns
        -------
        latents : ndarray of shape (n_samples, latent_dim)
            The scaled codes, the space of the fixed classifier and of the edits.
        """
        return super().transform(X)

    def inverse_transform(self, X):
        """Decode scaled latent codes ``u`` to samples, ``G(u)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Scaled codes, as :meth:`transform` returns them.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Decoded samples in the original feature units.
        """
        return super().inverse_transform(X)

    def _decoded(self, latents: np.ndarray) -> np.ndarray:
        decoded = self._map_batches(latents, self._decode, standardize=False, task="decoding")
        return self._unstandardize(decoded)

    # ------------------------------------------------------------------ attributes
    def _column(self, attribute) -> int:
        """The column of ``W`` that ``attribute`` names (a class, an index or a name)."""
        check_is_fitted(self)
        if self.label_type_ == "classes":
            for index, label in enumerate(self.classes_.tolist()):
                comparable = type(label) is type(attribute) or (
                    isinstance(label, Real) and isinstance(attribute, Real)
                )
                if comparable and label == attribute:
                    return index
            raise ValueError(
                f"Unknown class {attribute!r}: {type(self).__name__} was fitted with the "
                f"classes {self.classes_.tolist()}."
            )
        names = self.attribute_names_
        if names is not None and isinstance(attribute, str) and attribute in names.tolist():
            return names.tolist().index(attribute)
        if (
            isinstance(attribute, Integral)
            and not isinstance(attribute, bool | np.bool_)
            and 0 <= int(attribute) < self.n_attributes_
        ):
            return int(attribute)
        named = "" if names is None else f" or one of the names {names.tolist()}"
        raise ValueError(
            f"Unknown attribute {attribute!r}: use a column index in [0, "
            f"{self.n_attributes_}){named}."
        )

    def _directions(self, latents: np.ndarray, column: int) -> tuple:
        """Per row: the edit direction, its offset and the output's standard deviation.

        Binary attribute ``a``: ``w = W[:, a]``, offset ``b_a``. Target class ``m``:
        ``w = W[:, m] - W[:, m']`` with ``m'`` the strongest other class of the row,
        offset ``b_m - b_m'``. The standard deviation of ``u . w`` over the latent prior is
        ``sqrt(sum_i s_i^2 w_i^2)``.
        """
        weights, intercept = self.classifier_weights_, self.classifier_intercept_
        n_rows = latents.shape[0]
        if self.label_type_ == "attributes":
            direction = np.broadcast_to(weights[:, column], (n_rows, weights.shape[0]))
            offset = np.full(n_rows, intercept[column])
        else:
            outputs = latents @ weights + intercept
            outputs[:, column] = -np.inf
            other = np.argmax(outputs, axis=1)
            direction = weights[:, column][None, :] - weights[:, other].T
            offset = intercept[column] - intercept[other]
        std = np.sqrt(np.sum((self.latent_scale_ * direction) ** 2, axis=1))
        return direction, offset, std

    def _encoded(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._map_batches(X, self._encode, task="encoding")

    def attribute_value(self, X, attribute) -> np.ndarray:
        """The fixed classifier's output on each row's code, in standard deviations.

        The value that :meth:`edit` with the same ``attribute`` leaves unchanged: for a binary
        attribute ``(u . w + b_a) / sigma_w``; for a class ``m``, the margin of ``m`` over the
        strongest other class, divided by its standard deviation (positive where the fixed
        classifier assigns the code to ``m``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        attribute : class label, int or str
            A class of ``classes_``; or a binary attribute's column index or name.

        Returns
        -------
        values : ndarray of shape (n_samples,)
            The classifier output of each row, in the units ``value`` takes in :meth:`edit`.
        """
        column = self._column(attribute)
        latents = self._encoded(X)
        direction, offset, std = self._directions(latents, column)
        return (np.sum(latents * direction, axis=1) + offset) / std

    def _edited_latents(self, latents: np.ndarray, column: int, values: np.ndarray) -> np.ndarray:
        """Codes moved along their direction so that the output is ``values`` (n, V) stds."""
        direction, offset, std = self._directions(latents, column)
        current = np.sum(latents * direction, axis=1) + offset
        target = values * std[:, None]
        step = (current[:, None] - target) / np.sum(direction**2, axis=1)[:, None]
        return latents[:, None, :] - step[:, :, None] * direction[:, None, :]

    def edit(self, X, attribute, value):
        """Edit samples so that the fixed classifier's output on their code is ``value``.

        ``u = E(x) * s`` is projected along the attribute's direction ``w`` onto the output
        ``t = value * sigma_w`` (``u' = u - ((k - t) / ||w||^2) w``, with ``k`` the current
        output; see the class docstring), then decoded: ``G(u')``. Editing to the current
        output (:meth:`attribute_value`) returns the reconstruction ``G(E(x) * s)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to edit.
        attribute : class label, int or str
            The target class (one of ``classes_``); or a binary attribute's column index,
            or its name when ``y`` was a DataFrame.
        value : float or array-like of shape (n_samples,)
            Target output in standard deviations of the output over the latent prior:
            positive for "has the attribute" (or "is of the target class": the margin over
            the strongest other class), negative for "has not"; 1.0 is a clear edit, as the
            paper's sweep of +-1 standard deviation.

        Returns
        -------
        edited : ndarray of shape (n_samples, n_features)
            Edited samples in the units of ``X``.
        """
        column = self._column(attribute)
        latents = self._encoded(X)
        values = _finite_values(value, "value")
        if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != latents.shape[0]):
            raise ValueError(
                f"value must be a number or one per row (shape ({latents.shape[0]},)), got "
                f"shape {values.shape}."
            )
        values = np.broadcast_to(values, (latents.shape[0],))[:, None]
        edited = self._edited_latents(latents, column, values)[:, 0]
        return self._decoded(edited)

    def edit_path(self, X, attribute, values):
        """Edit every sample to each of several outputs: a continuous edit path.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to edit.
        attribute : class label, int or str
            As in :meth:`edit`.
        values : array-like of shape (n_values,)
            Target outputs in standard deviations, e.g. ``np.linspace(-1, 1, 5)``.

        Returns
        -------
        paths : ndarray of shape (n_samples, n_values, n_features)
            ``paths[i, j]`` is ``edit(X[i:i+1], attribute, values[j])``.
        """
        column = self._column(attribute)
        targets = _finite_values(values, "values")
        if targets.ndim != 1 or targets.size == 0:
            raise ValueError(f"values must be a non-empty 1-D sequence, got shape {targets.shape}.")
        latents = self._encoded(X)
        edited = self._edited_latents(
            latents, column, np.broadcast_to(targets, (len(latents), targets.size))
        )
        decoded = self._decoded(edited.reshape(-1, latents.shape[1]))
        return decoded.reshape(latents.shape[0], targets.size, -1)

    # ------------------------------------------------------------------ sampling
    def _sample_constraints(self, attributes) -> tuple[np.ndarray, np.ndarray] | int:
        """The requested labels: a class column, or (attribute columns, 0/1 values)."""
        if self.label_type_ == "classes":
            return self._column(attributes)
        if isinstance(attributes, Mapping):
            items = list(attributes.items())
        else:
            values = np.asarray(attributes)
            if values.ndim != 1 or values.shape[0] != self.n_attributes_:
                raise ValueError(
                    "attributes must be a mapping {attribute: 0 or 1} or a sequence of "
                    f"{self.n_attributes_} values 0/1, got {attributes!r}."
                )
            items = list(enumerate(values.tolist()))
        columns, wanted = [], []
        for attribute, value in items:
            if value not in (0, 1) or isinstance(value, float) and math.isnan(value):
                raise ValueError(f"Attribute values are 0 or 1, got {value!r} for {attribute!r}.")
            columns.append(self._column(attribute))
            wanted.append(bool(value))
        if len(set(columns)) != len(columns):
            raise ValueError(f"attributes names an attribute more than once: {attributes!r}.")
        return np.asarray(columns, dtype=np.int64), np.asarray(wanted)

    def sample(self, n_samples: int = 1, *, attributes=None, random_state=None) -> np.ndarray:
        """Generate samples, optionally with given attributes or of a given class.

        Latent codes ``u = z * s`` with ``z ~ N(0, I)`` are decoded. With ``attributes``,
        only codes whose fixed-classifier labels are the requested ones are kept (rejection
        sampling): an exact draw from the prior restricted to that region, the way training
        labels generated samples. It raises when fewer than one draw in
        ``1000`` is accepted.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        attributes : class label, mapping, sequence or None, default=None
            For class labels, the class to generate. For binary attributes, a mapping
            ``{attribute: 0 or 1}`` (by column index or name; unnamed attributes are free) or
            a sequence of ``n_attributes_`` values 0/1. None: no condition.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent draws.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples in the original feature units.
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        rng = check_random_state(random_state)
        scale, dim = self.latent_scale_, self.latent_scale_.shape[0]
        if attributes is None:
            return self._decoded(rng.standard_normal((n_samples, dim)) * scale)
        constraints = self._sample_constraints(attributes)
        kept, n_kept, n_drawn = [], 0, 0
        limit = _MAX_DRAWS_PER_SAMPLE * n_samples
        while n_kept < n_samples:
            if n_drawn >= limit:
                raise ValueError(
                    f"Only {n_kept} of {n_drawn} latent draws had the attributes "
                    f"{attributes!r}: that region of the latent space is too small to sample "
                    "by rejection."
                )
            latents = rng.standard_normal((_SAMPLE_BLOCK, dim)) * scale
            n_drawn += _SAMPLE_BLOCK
            outputs = latents @ self.classifier_weights_ + self.classifier_intercept_
            if self.label_type_ == "classes":
                accepted = np.argmax(outputs, axis=1) == constraints
            else:
                columns, wanted = constraints
                accepted = np.all((outputs[:, columns] > 0) == wanted, axis=1)
            kept.append(latents[accepted])
            n_kept += int(accepted.sum())
        return self._decoded(np.concatenate(kept)[:n_samples])
