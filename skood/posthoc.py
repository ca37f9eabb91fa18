"""PostHocDetector: out-of-distribution scores computed from a trained classifier.

The classic baselines of OOD detection (MSP, MaxLogit, Energy, Entropy, ReAct, ODIN, Mahalanobis,
ViM, KL-Matching) as one scikit-learn outlier detector: ``fit(X, y)`` trains a classifier on
labelled in-distribution data (or adopts a trained one), estimates the few statistics some scores
need, and ``score_samples`` returns the chosen score, oriented "higher = more normal".
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.nn import functional as F

from ._docstrings import fill_doc
from ._progress import epochs_text
from ._supervised import ClassifierDetector, _ClassifierNet
from .base import BaseDetector

__all__ = ["SCORE_TYPES", "PostHocDetector"]

SCORE_TYPES = (
    "msp",
    "maxlogit",
    "energy",
    "entropy",
    "react",
    "odin",
    "mahalanobis",
    "vim",
    "kl_matching",
)
# Guard inside the logarithms of KL-Matching (baselines.md section 6).
_KL_EPS = 1e-12
# Within-class variation below this fraction of the total makes the tied covariance degenerate.
_DEGENERATE_COVARIANCE = 1e-12
# Parameters the fitted statistics depend on: changing them needs fit_statistics or a refit.
_STATISTICS_PARAMS = {"react": ("react_percentile", "react_clip"), "vim": ("vim_dim",)}


def default_vim_dim(n_features: int) -> int:
    """ViM's principal dimension for ``n_features`` penultimate features (baselines.md §5)."""
    if n_features >= 2048:
        return 1000
    if n_features >= 1024:
        return 512
    return n_features // 2


@fill_doc
class PostHocDetector(ClassifierDetector):
    """Out-of-distribution scores of a classifier trained on labelled in-distribution data.

    ``fit(X, y)`` trains a classifier (an MLP for tables, a small CNN when ``input_shape`` is
    set) with cross-entropy, or adopts a trained torch module (``classifier``), freezes it, and
    estimates the statistics of the scores that need them on the training data. The classifier
    has penultimate features ``h(x)`` and logits ``f(x) = W h(x) + b``; ``score_samples`` is the
    negation of the published OOD score (higher = more normal):

    =================  ==========================================================================
    ``score_type``     ``score_samples(x)``
    =================  ==========================================================================
    ``"msp"``          ``max_k softmax(f(x) / T)_k``
    ``"maxlogit"``     ``max_k f_k(x)``
    ``"energy"``       ``T * logsumexp(f(x) / T)`` (minus the energy)
    ``"entropy"``      ``sum_k p_k log p_k`` (minus the entropy of ``p = softmax(f)``)
    ``"react"``        energy of ``W min(h(x), c) + b``, ``c`` the ``react_percentile`` quantile
                       of the training activations (ReAct + Energy)
    ``"odin"``         ``max_k softmax(f(x~) / T)_k`` at ``x~ = x - eps sign(grad_x CE(f(x)/T,
                       argmax f(x)))`` (``eps = odin_epsilon``)
    ``"mahalanobis"``  ``-min_c (h - mu_c)^T Sigma^+ (h - mu_c)``, class means ``mu_c`` and tied
                       covariance ``Sigma`` of the training features (optionally at a perturbed
                       input, ``mahalanobis_epsilon``)
    ``"vim"``          ``logsumexp f(x) - alpha ||(h(x) - u) R||``, the residual of the
                       principal subspace of the training features (Virtual-logit Matching)
    ``"kl_matching"``  ``-KL(p(x) || d_k)`` with ``d_k`` the mean softmax of the training samples
                       predicted as class ``k``, ``k`` the predicted class of ``x``
    =================  ==========================================================================

    The statistics of every score are estimated at fit, so ``set_params(score_type=...)`` on a
    fitted detector scores with another method without retraining. ``offset_`` stays that of
    the fitted ``score_type``, so ``decision_function`` and ``predict`` raise until
    :meth:`fit_statistics` sets it for the new one. :meth:`fit_statistics` re-estimates the
    statistics, and ``offset_``, on other in-distribution data (a validation split, or the
    evaluation fold to reproduce the DLSGAN paper's ReAct table).

    The classifier also classifies: :meth:`predict_class` and :meth:`predict_class_proba`
    (``predict`` is the outlier detector's and returns -1/+1).

    Read more in the user guide, ``docs/posthoc.md``.

    Parameters
    ----------
    score_type : {"msp", "maxlogit", "energy", "entropy", "react", "odin", "mahalanobis", \
"vim", "kl_matching"}, default="energy"
        The score ``score_samples`` returns (table above).
    temperature : float or None, default=None
        Softmax temperature ``T`` of MSP, Energy, ReAct and ODIN. None uses each score's
        published default: 1000 for ODIN, 1 for the others.
    react_percentile : float in (0, 1], default=0.9
        ReAct clips activations at this quantile of the training activations; 1.0 is the
        largest training activation (no clipping of in-distribution data).
    react_clip : {"pooled", "per_unit"}, default="pooled"
        ``"pooled"``: one threshold, the quantile of all activation values of all units, as in
        the ReAct paper, the ViM code and the DLSGAN follow-up. ``"per_unit"``: a threshold per
        feature, the quantile of that unit's training activations.
    odin_epsilon : float, default=0.002
        Size of ODIN's input perturbation, in the units the classifier sees (standardized
        features for tables, pixels for images); 0.002 as in the DMR benchmark.
    mahalanobis_epsilon : float, default=0.0
        Input perturbation of Mahalanobis towards the closest class mean (0: none, the skood
        default; 0.002 reproduces the DMR benchmark). Needs input gradients when positive.
    vim_dim : int or None, default=None
        Dimension ``D`` of ViM's principal subspace. None: 1000 for at least 2048 features, 512
        for at least 1024, else half the number of features. Must be below the feature count.
    kl_matching : {"predicted", "min"}, default="predicted"
        KL-Matching compares ``p(x)`` with the template of its predicted class (Hendrycks et
        al.) or takes the minimum over all templates (the ViM code).
    classifier : torch.nn.Module, skorch.NeuralNet or None, default=None
        A trained classifier to use instead of training one: a module with a ``features(x)``
        method and a ``torch.nn.Linear`` attribute ``head`` (``module(x) ==
        head(features(x))``), or a ``torch.nn.Sequential`` ending in a ``torch.nn.Linear``, or
        a fitted skorch net holding such a module. It receives rows of ``X`` (reshaped to
        ``(n, C, H, W)`` when ``input_shape`` is set) and is copied and frozen, never trained;
        ``y`` then holds the indices of its logits. ``clone`` (hence ``GridSearchCV``)
        returns an unfitted copy of a skorch net: pass its ``module_`` there.
    hidden_dims : tuple of int, default=(256, 128)
        Hidden widths of the built-in classifier. Tables: an MLP ``D -> 256 -> 128`` with ReLU;
        images: two 3x3 convolutions (32 and 64 channels, ReLU, 2x2 max pooling) followed by
        these fully connected ReLU layers. The last width is the feature dimension.
    input_shape : tuple (channels, height, width) or None, default=None
        Set it for images: rows of ``X`` are flattened images (``C * H * W`` columns, as
        ``images.reshape(n, -1)`` gives) and the classifier is convolutional.
    lr : float, default=1e-3
        Adam learning rate of the classifier.
    max_epochs : int, default=30
        Passes over the training data for the classifier.
    batch_size : int, default=128
        Rows per training step.
    standardize : bool or "auto", default="auto"
        Standardize features with the training mean and standard deviation before the
        classifier. ``"auto"``: tables with the built-in classifier are standardized; images
        and user-supplied classifiers receive ``X`` unchanged.
    %(contamination)s
    inference_batch_size : int, default=8192
        Rows scored at a time.
    %(device)s
    random_state : int, RandomState instance or None, default=None
        Seeds the classifier's initialisation and batch order.
    %(verbose)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in fit (with a user classifier: ``arange(n_logits)``).
    net_ : skorch.NeuralNet
        The classifier's skorch net; ``net_.module_`` is the frozen
        :class:`~skood.nn.classifier.FeatureClassifier`.
    history_ : skorch.history.History
        Cross-entropy and accuracy per batch and per epoch (empty for a user classifier).
    react_threshold_ : ndarray of shape (1,) or (n_features_out,)
        ReAct's clipping threshold ``c``.
    class_means_ : ndarray of shape (n_classes_present, n_features_out)
        Mahalanobis class means of the penultimate features.
    precision_ : ndarray of shape (n_features_out, n_features_out)
        Pseudo-inverse of the tied class covariance (of the covariance of all training
        features when there is no variation within the classes, as with one sample per class).
    vim_origin_ : ndarray of shape (n_features_out,)
        ViM's origin ``u = -pinv(W) b``.
    vim_residual_basis_ : ndarray of shape (n_features_out, n_features_out - vim_dim)
        Orthonormal basis ``R`` of the residual space.
    vim_alpha_ : float
        ViM's scale of the virtual logit.
    kl_templates_ : ndarray of shape (n_classes, n_classes)
        Mean softmax of the training samples predicted as each class.
    %(offset_)s
    %(input_scaling_)s
    %(n_features_in_)s
    %(feature_names_in_)s

    See Also
    --------
    DMRDetector : Rejection network trained on synthetic outliers, on the same classifier.
    DLSGANDetector : Unsupervised detector (no labels).

    References
    ----------
    .. [1] D. Hendrycks and K. Gimpel, "A Baseline for Detecting Misclassified and
       Out-of-Distribution Examples in Neural Networks", ICLR 2017.
    .. [2] S. Liang, Y. Li and R. Srikant, "Enhancing The Reliability of Out-of-distribution
       Image Detection in Neural Networks", ICLR 2018.
    .. [3] K. Lee, K. Lee, H. Lee and J. Shin, "A Simple Unified Framework for Detecting
       Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018.
    .. [4] W. Liu, X. Wang, J. Owens and Y. Li, "Energy-based Out-of-distribution Detection",
       NeurIPS 2020.
    .. [5] Y. Sun, C. Guo and Y. Li, "ReAct: Out-of-distribution Detection With Rectified
       Activations", NeurIPS 2021.
    .. [6] D. Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World
       Settings", ICML 2022 (MaxLogit, KL-Matching).
    .. [7] H. Wang, Z. Li, L. Feng and W. Zhang, "ViM: Out-Of-Distribution with Virtual-logit
       Matching", CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skood.posthoc import PostHocDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(-3, 1, size=(100, 2)), rng.normal(3, 1, size=(100, 2))])
    >>> y = np.r_[np.zeros(100), np.ones(100)]
    >>> detector = PostHocDetector(score_type="mahalanobis", max_epochs=5, random_state=0)
    >>> detector = detector.fit(X, y)
    >>> detector.predict(np.array([[-3.0, -3.0], [30.0, -30.0]]))
    array([ 1, -1])
    >>> detector.predict_class(np.array([[-3.0, -3.0], [3.0, 3.0]]))
    array([0., 1.])
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        **ClassifierDetector._classifier_constraints,
        "score_type": [StrOptions(set(SCORE_TYPES))],
        "temperature": [Interval(Real, 0, None, closed="neither"), None],
        "react_percentile": [Interval(Real, 0, 1, closed="right")],
        "react_clip": [StrOptions({"pooled", "per_unit"})],
        "odin_epsilon": [Interval(Real, 0, None, closed="left")],
        "mahalanobis_epsilon": [Interval(Real, 0, None, closed="left")],
        "vim_dim": [Interval(Integral, 0, None, closed="left"), None],
        "kl_matching": [StrOptions({"predicted", "min"})],
    }

    _scoring_parameters = ("score_type",)

    def __init__(
        self,
        *,
        score_type: str = "energy",
        temperature: float | None = None,
        react_percentile: float = 0.9,
        react_clip: str = "pooled",
        odin_epsilon: float = 0.002,
        mahalanobis_epsilon: float = 0.0,
        vim_dim: int | None = None,
        kl_matching: str = "predicted",
        classifier=None,
        hidden_dims: tuple[int, ...] = (256, 128),
        input_shape: tuple[int, int, int] | None = None,
        lr: float = 1e-3,
        max_epochs: int = 30,
        batch_size: int = 128,
        standardize: bool | str = "auto",
        contamination: float = 0.1,
        inference_batch_size: int = 8192,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.score_type = score_type
        self.temperature = temperature
        self.react_percentile = react_percentile
        self.react_clip = react_clip
        self.odin_epsilon = odin_epsilon
        self.mahalanobis_epsilon = mahalanobis_epsilon
        self.vim_dim = vim_dim
        self.kl_matching = kl_matching
        self.classifier = classifier
        self.hidden_dims = hidden_dims
        self.input_shape = input_shape
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.standardize = standardize
        self.contamination = contamination
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _scoring_needs_grad(self) -> bool:
        # ODIN and perturbed Mahalanobis differentiate the network with respect to its input.
        return self.score_type == "odin" or (
            self.score_type == "mahalanobis" and self.mahalanobis_epsilon > 0
        )

    def _temperature(self) -> float:
        if self.temperature is not None:
            return float(self.temperature)
        return 1000.0 if self.score_type == "odin" else 1.0

    # ------------------------------------------------------------------ fit
    _net_class = _ClassifierNet

    def _build_networks(self, n_features: int, seed: int) -> dict[str, torch.nn.Module]:
        return {"module": self._classifier_module(n_features, seed)}

    def _prepare_networks(self, X, y, *, seed: int, device: torch.device) -> None:
        if self.classifier is not None:
            self._check_user_classifier(X)

    def _train_networks(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if self.classifier is None:
            self._announce_stage(1, 2, f"classifier ({epochs_text(self.max_epochs)})")
        else:
            self._announce_stage(1, 2, "classifier (the given one, not trained)")
        self._train_classifier(self.net_, X, y)
        self._announce_stage(2, 2, "statistics of the scores on the training features")
        self._estimate_statistics(X.cpu().numpy(), y.cpu().numpy(), standardize=False)

    def _features_and_logits(
        self, X: np.ndarray, *, standardize: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        def outputs(batch, networks):
            classifier = networks["module"]
            features = classifier.features(batch)
            return torch.cat([features, classifier.head(features)], dim=1)

        both = self._map_batches(X, outputs, standardize=standardize, task="features")
        n_logits = self.net_.module_.n_classes
        return both[:, :-n_logits], both[:, -n_logits:]

    def _estimate_statistics(self, X: np.ndarray, labels: np.ndarray | None, *, standardize: bool):
        """Every score's statistics from the features and logits of in-distribution ``X``.

        ``labels`` (class indices) give the Mahalanobis class means; None uses the predicted
        classes.
        """
        features, logits = self._features_and_logits(X, standardize=standardize)
        n_rows, n_features = features.shape
        n_classes = logits.shape[1]
        predicted = np.argmax(logits, axis=1)
        labels = predicted if labels is None else labels

        vim_dim = default_vim_dim(n_features) if self.vim_dim is None else int(self.vim_dim)
        if vim_dim >= n_features:
            raise ValueError(
                f"vim_dim={vim_dim} must be smaller than the number of penultimate features "
                f"({n_features})."
            )

        # ReAct: one quantile over every activation value, or one per unit.
        axis = None if self.react_clip == "pooled" else 0
        threshold = np.atleast_1d(np.quantile(features, self.react_percentile, axis=axis))

        # Mahalanobis: class means and the tied covariance around them, pseudo-inverted.
        present = np.unique(labels)
        means = np.stack([features[labels == c].mean(axis=0) for c in present])
        centred = features - means[np.searchsorted(present, labels)]
        covariance = centred.T @ centred / n_rows
        spread = features - features.mean(axis=0)
        total = spread.T @ spread / n_rows
        if np.trace(covariance) <= _DEGENERATE_COVARIANCE * np.trace(total):
            # No variation within the classes (one sample per class, or classes of identical
            # rows): the pseudo-inverse of a zero covariance is zero and every distance would be
            # 0, however far a sample lies. The covariance of all rows is the estimate left.
            if self.score_type == "mahalanobis":
                warnings.warn(
                    f"The tied class covariance of the Mahalanobis score is degenerate: the "
                    f"{n_rows} training rows of {present.size} classes vary too little within "
                    "their classes (one sample per class?). The covariance of all training "
                    "features is used instead; give several samples per class for the "
                    "published estimate.",
                    UserWarning,
                    stacklevel=2,
                )
            covariance = total
        precision = np.linalg.pinv(covariance, hermitian=True)

        # ViM: origin u = -pinv(W) b, residual space of the uncentred covariance of h - u.
        head = self.net_.module_.head
        weight = head.weight.detach().double().cpu().numpy()
        bias = head.bias.detach().double().cpu().numpy()
        origin = -np.linalg.pinv(weight) @ bias
        shifted = features - origin
        eigenvalues, eigenvectors = np.linalg.eigh(shifted.T @ shifted / n_rows)
        residual_basis = eigenvectors[:, np.argsort(eigenvalues)[::-1][vim_dim:]]
        residual = np.linalg.norm(shifted @ residual_basis, axis=1)
        mean_residual = residual.mean()
        # A residual that is zero on every training row carries no information.
        alpha = logits.max(axis=1).mean() / mean_residual if mean_residual > 0 else 0.0

        # KL-Matching: mean softmax of the rows predicted as each class; a class never
        # predicted falls back to the rows labelled with it, then to all rows.
        probabilities = softmax(logits, axis=1)
        templates = np.empty((n_classes, n_classes))
        for k in range(n_classes):
            rows = predicted == k
            if not rows.any():
                rows = labels == k
            templates[k] = probabilities[rows].mean(axis=0) if rows.any() else probabilities.mean(0)

        self.react_threshold_ = threshold
        self.class_means_ = means
        self.precision_ = precision
        self.vim_origin_ = origin
        self.vim_residual_basis_ = residual_basis
        self.vim_alpha_ = float(alpha)
        self.kl_templates_ = templates
        self.statistics_params_ = {
            name: getattr(self, name) for names in _STATISTICS_PARAMS.values() for name in names
        }

    def fit_statistics(self, X, y=None):
        """Re-estimate the statistics of the scores and ``offset_`` on in-distribution ``X``.

        The classifier is not retrained. Use it to fit the statistics on a validation split
        instead of the training data, to apply a changed ``react_percentile``, ``react_clip``
        or ``vim_dim``, or to reproduce the DLSGAN follow-up's ReAct table, which takes the
        clipping threshold from the in-distribution evaluation fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution samples.
        y : array-like of shape (n_samples,), default=None
            Their class labels, for the Mahalanobis class means; None uses the classes the
            classifier predicts.

        Returns
        -------
        self : object
            The detector, with new statistics and ``offset_``.
        """
        check_is_fitted(self)
        self._validate_params()
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], reset=False, ensure_min_samples=2
        )
        labels = None
        if y is not None:
            labels = self._encode_labels(y)
            if len(labels) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(labels)}.")
        self._estimate_statistics(X, labels, standardize=True)
        self._set_offset(self._score_validated(X))
        return self

    # ------------------------------------------------------------------ scoring
    def _score_validated(self, X: np.ndarray) -> np.ndarray:
        for name in _STATISTICS_PARAMS.get(self.score_type, ()):
            if getattr(self, name) != self.statistics_params_[name]:
                raise ValueError(
                    f"{name} is {getattr(self, name)!r} but the fitted statistics use "
                    f"{self.statistics_params_[name]!r}; call fit_statistics(X) with "
                    "in-distribution data, or fit again."
                )
        return super()._score_validated(X)

    def _inference_networks(self) -> dict:
        networks = super()._inference_networks()
        device = self._device()
        # Statistics in float64 on the scoring device, converted once per scoring call (none
        # yet while fit computes the features they are estimated from).
        networks["statistics"] = {
            name: torch.as_tensor(getattr(self, name), dtype=torch.float64, device=device)
            for name in (
                "react_threshold_",
                "class_means_",
                "precision_",
                "vim_origin_",
                "vim_residual_basis_",
                "kl_templates_",
            )
            if hasattr(self, name)
        }
        return networks

    @staticmethod
    def _mahalanobis_distances(features: torch.Tensor, statistics: dict) -> torch.Tensor:
        """Squared Mahalanobis distance of every row to every class mean, ``(n, n_means)``."""
        precision, means = statistics["precision_"], statistics["class_means_"]
        h = features.double()
        projected = h @ precision
        # (h - mu)^T P (h - mu) expanded: memory O(n * classes), not O(n * classes * features).
        distances = (
            (projected * h).sum(dim=1, keepdim=True)
            - 2.0 * projected @ means.T
            + ((means @ precision) * means).sum(dim=1)
        )
        return distances.clamp_min(0.0)

    def _score_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        classifier, statistics = networks["module"], networks["statistics"]
        score_type = self.score_type
        temperature = self._temperature()
        if score_type == "odin":
            X = self._odin_input(X, classifier, temperature)
        elif score_type == "mahalanobis" and self.mahalanobis_epsilon > 0:
            X = self._mahalanobis_input(X, classifier, statistics)
        features = classifier.features(X)
        logits = classifier.head(features).double()

        if score_type in ("msp", "odin"):
            return torch.softmax(logits / temperature, dim=1).max(dim=1).values
        if score_type == "maxlogit":
            return logits.max(dim=1).values
        if score_type == "energy":
            return temperature * torch.logsumexp(logits / temperature, dim=1)
        if score_type == "entropy":
            log_p = torch.log_softmax(logits, dim=1)
            return (log_p.exp() * log_p).sum(dim=1)
        if score_type == "react":
            clipped = torch.minimum(features.double(), statistics["react_threshold_"])
            head = classifier.head
            rectified = F.linear(clipped, head.weight.double(), head.bias.double())
            return temperature * torch.logsumexp(rectified / temperature, dim=1)
        if score_type == "mahalanobis":
            return -self._mahalanobis_distances(features, statistics).min(dim=1).values
        if score_type == "vim":
            shifted = features.double() - statistics["vim_origin_"]
            residual = torch.linalg.vector_norm(shifted @ statistics["vim_residual_basis_"], dim=1)
            return torch.logsumexp(logits, dim=1) - self.vim_alpha_ * residual
        # KL-Matching
        p = torch.softmax(logits, dim=1)
        templates = statistics["kl_templates_"]
        log_p = torch.log(p + _KL_EPS)
        # KL(p || d_k) for every template k: sum_j p_j (log p_j - log d_kj).
        divergences = (p * log_p).sum(dim=1, keepdim=True) - p @ torch.log(templates + _KL_EPS).T
        if self.kl_matching == "min":
            return -divergences.min(dim=1).values
        return -divergences.gather(1, logits.argmax(dim=1, keepdim=True)).squeeze(1)

    def _odin_input(self, X: torch.Tensor, classifier, temperature: float) -> torch.Tensor:
        # One backward pass gives every row's input gradient: the loss is a sum of per-row
        # terms and rows do not interact in the network.
        X = X.detach().requires_grad_(True)
        logits = classifier(X)
        loss = F.cross_entropy(logits / temperature, logits.argmax(dim=1), reduction="sum")
        (gradient,) = torch.autograd.grad(loss, X)
        return (X - self.odin_epsilon * gradient.sign()).detach()

    def _mahalanobis_input(self, X: torch.Tensor, classifier, statistics: dict) -> torch.Tensor:
        X = X.detach().requires_grad_(True)
        distances = self._mahalanobis_distances(classifier.features(X), statistics)
        (gradient,) = torch.autograd.grad(distances.min(dim=1).values.sum(), X)
        return (X - self.mahalanobis_epsilon * gradient.sign()).detach()
