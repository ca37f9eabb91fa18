"""Classifiers that expose their penultimate features: a feature body and a linear head.

Post-hoc OOD scores (energy, ReAct, Mahalanobis, ViM, ...) and DMR's rejection network need the
representation ``h(x)`` that enters the last layer and that layer's weights, not only the logits
``f(x) = W h(x) + b``. :class:`FeatureClassifier` keeps the two apart: ``features(x)`` is
``h(x)`` and ``head`` is the final :class:`torch.nn.Linear`. :func:`mlp_classifier` and
:func:`conv_classifier` build the default networks (ReLU activations, so ``h(x) >= 0`` as
ReAct's clipping assumes); :func:`as_feature_classifier` adapts a user's trained module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .init import seeded_layer
from .mlp import MLP, make_linear

__all__ = [
    "FeatureClassifier",
    "RejectionHead",
    "as_feature_classifier",
    "conv_classifier",
    "layer_features",
    "mlp_classifier",
]


class FeatureClassifier(nn.Module):
    """A feature body followed by a linear classification head.

    Parameters
    ----------
    body : torch.nn.Module
        Maps a batch of inputs to features ``(n, n_features_out)``.
    head : torch.nn.Linear
        The last layer: ``logits = head(body(x))``.
    input_shape : tuple (channels, height, width) or None, default=None
        When set, flat rows ``(n, C * H * W)`` are reshaped to ``(n, C, H, W)`` before the body,
        so that image networks take scikit-learn's 2-D input.
    """

    def __init__(
        self,
        body: nn.Module,
        head: nn.Linear,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"head must be a torch.nn.Linear, got {type(head).__name__}.")
        self.body = body
        self.head = head
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)

    @property
    def n_classes(self) -> int:
        return self.head.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the penultimate features ``h(x)``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, ...)
            A batch of inputs: whatever ``body`` takes, or flat rows ``(n, C * H * W)`` when
            ``input_shape`` is set.

        Returns
        -------
        features : torch.Tensor of shape (n, head.in_features)
            The body's output, flattened to one row per input.
        """
        if self.input_shape is not None:
            x = x.reshape(-1, *self.input_shape)
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits ``W h(x) + b``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, ...)
            A batch of inputs, as for :meth:`features`.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes)
            The head applied to the penultimate features.
        """
        return self.head(self.features(x))


class _FeaturesMethod(nn.Module):
    """The ``features`` method of a user's module, as a module (so it moves and pickles)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)


def as_feature_classifier(
    module: nn.Module, *, input_shape: Sequence[int] | None = None
) -> FeatureClassifier:
    """Adapt a trained classifier to :class:`FeatureClassifier` without copying its weights.

    Accepted forms:

    * a :class:`FeatureClassifier` (returned as it is);
    * a module with a ``features(x)`` method and a ``head`` attribute that is a
      :class:`torch.nn.Linear`, such that ``module(x) == module.head(module.features(x))``;
    * a :class:`torch.nn.Sequential` whose last layer is a :class:`torch.nn.Linear`: the layers
      before it are the feature body.

    Parameters
    ----------
    module : torch.nn.Module
        The trained classifier, in one of the forms above. Its parameters are shared with the
        result, not copied.
    input_shape : tuple (channels, height, width) or None, default=None
        When set, flat rows ``(n, C * H * W)`` are reshaped to ``(n, C, H, W)`` before the
        module sees them. A :class:`FeatureClassifier` that already has an ``input_shape``
        keeps its own.

    Returns
    -------
    classifier : FeatureClassifier
        ``module`` itself when it is a :class:`FeatureClassifier` needing no new
        ``input_shape``, otherwise a :class:`FeatureClassifier` wrapping its layers.

    Raises
    ------
    TypeError
        If ``module`` has none of the accepted forms.
    """
    if isinstance(module, FeatureClassifier):
        if input_shape is not None and module.input_shape is None:
            return FeatureClassifier(module.body, module.head, input_shape=input_shape)
        return module
    head = getattr(module, "head", None)
    if callable(getattr(module, "features", None)) and isinstance(head, nn.Linear):
        return FeatureClassifier(_FeaturesMethod(module), head, input_shape=input_shape)
    if isinstance(module, nn.Sequential) and len(module) >= 2 and isinstance(module[-1], nn.Linear):
        return FeatureClassifier(module[:-1], module[-1], input_shape=input_shape)
    raise TypeError(
        f"Cannot find the penultimate features of {type(module).__name__}: pass a module with "
        "a features(x) method and a torch.nn.Linear attribute 'head' (logits = "
        "head(features(x))), or a torch.nn.Sequential ending in a torch.nn.Linear."
    )


def mlp_classifier(
    n_features: int,
    hidden_dims: Sequence[int],
    n_classes: int,
    *,
    generator: torch.Generator | None = None,
) -> FeatureClassifier:
    """Build a tabular classifier: a ReLU multilayer perceptron and a linear head.

    The body maps ``n_features`` inputs through the widths ``hidden_dims[0]``, ...,
    ``hidden_dims[-1]``, each followed by ReLU; the features are the last hidden ReLU outputs
    and the head maps them to ``n_classes`` logits. The layers use PyTorch's default
    initialisation.

    Parameters
    ----------
    n_features : int
        Input width ``D``, the number of columns of the data.
    hidden_dims : sequence of int
        Widths of the hidden layers (at least one); the last is the feature dimension.
    n_classes : int
        Number of classes, the width of the head.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Returns
    -------
    classifier : FeatureClassifier
        The untrained classifier, taking inputs of shape ``(n, n_features)``.

    Raises
    ------
    ValueError
        If ``hidden_dims`` is empty.
    """
    if not hidden_dims:
        raise ValueError("hidden_dims must name at least one hidden layer (the features).")
    body = MLP(
        n_features, hidden_dims, None, activation="relu", equalized_lr=False, generator=generator
    )
    head = make_linear(hidden_dims[-1], n_classes, equalized_lr=False, generator=generator)
    return FeatureClassifier(body, head)


def conv_classifier(
    input_shape: Sequence[int],
    hidden_dims: Sequence[int],
    n_classes: int,
    *,
    channels: Sequence[int] = (32, 64),
    generator: torch.Generator | None = None,
) -> FeatureClassifier:
    """Build a small image classifier: convolutions, fully connected ReLU layers, a linear head.

    Per entry of ``channels`` a 3x3 convolution (padding 1), ReLU and 2x2 max pooling; then
    fully connected ReLU layers of ``hidden_dims``; then a linear head. With the defaults a
    1 x 28 x 28 image becomes 64 x 7 x 7 = 3,136 values, then ``hidden_dims`` (e.g.
    256 -> 128): the 128 post-ReLU values are the features.

    Parameters
    ----------
    input_shape : tuple (channels, height, width)
        Image shape; ``height`` and ``width`` must be at least ``2 ** len(channels)``. Flat
        rows ``(n, C * H * W)`` are reshaped to it before the first convolution.
    hidden_dims : sequence of int
        Widths of the fully connected hidden layers (at least one); the last is the feature
        dimension.
    n_classes : int
        Number of classes, the width of the head.
    channels : sequence of int, default=(32, 64)
        Output channels of the convolutions, one convolution and pooling stage per entry.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Returns
    -------
    classifier : FeatureClassifier
        The untrained classifier, taking images ``(n, C, H, W)`` or flat rows
        ``(n, C * H * W)``.

    Raises
    ------
    ValueError
        If the image is too small for the pooling stages or ``hidden_dims`` is empty.
    """
    n_channels, height, width = (int(s) for s in input_shape)
    factor = 2 ** len(channels)
    if height < factor or width < factor:
        raise ValueError(
            f"input_shape={tuple(input_shape)} is too small for {len(channels)} pooling stages "
            f"(height and width must be at least {factor})."
        )
    if not hidden_dims:
        raise ValueError("hidden_dims must name at least one hidden layer (the features).")
    layers: list[nn.Module] = []
    previous = n_channels
    for current in channels:
        conv = seeded_layer(nn.Conv2d, previous, current, 3, padding=1, generator=generator)
        layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
        previous = current
        height, width = height // 2, width // 2
    layers.append(nn.Flatten(1))
    # The MLP's layers join the convolutions' Sequential (keys "<index>.weight" run on).
    layers += MLP(
        previous * height * width,
        hidden_dims,
        None,
        activation="relu",
        equalized_lr=False,
        generator=generator,
    )
    head = make_linear(hidden_dims[-1], n_classes, equalized_lr=False, generator=generator)
    return FeatureClassifier(nn.Sequential(*layers), head, input_shape=input_shape)


def layer_features(
    classifier: FeatureClassifier, x: torch.Tensor, layer: str | None = None
) -> torch.Tensor:
    """Compute the features of ``x`` at the penultimate layer or at a named submodule.

    Parameters
    ----------
    classifier : FeatureClassifier
        The classifier to run.
    x : torch.Tensor of shape (n, ...)
        A batch of inputs, as for :meth:`FeatureClassifier.forward`.
    layer : str or None, default=None
        Name of a submodule of ``classifier``, as in ``classifier.named_modules()`` (e.g.
        ``"body.1"``). None takes the penultimate features ``h(x)``.

    Returns
    -------
    features : torch.Tensor of shape (n, n_features_out)
        ``classifier.features(x)`` when ``layer`` is None, else the output of the submodule
        ``layer`` in a forward pass of ``classifier``, flattened to one row per input.

    Raises
    ------
    ValueError
        If ``classifier`` has no submodule named ``layer`` or that submodule does not output
        a tensor.
    """
    if layer is None:
        return classifier.features(x)
    submodule = dict(classifier.named_modules()).get(layer)
    if submodule is None:
        raise ValueError(f"The classifier has no submodule named {layer!r}.")
    captured: list[torch.Tensor] = []
    handle = submodule.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        classifier(x)
    finally:
        handle.remove()
    if not captured or not isinstance(captured[-1], torch.Tensor):
        raise ValueError(f"Submodule {layer!r} did not produce a tensor in the forward pass.")
    return captured[-1].flatten(1)


class RejectionHead(nn.Module):
    """DMR's rejection network ``B``: ``Linear(in -> hidden) -> ReLU -> Linear(hidden -> 1)``.

    Its forward pass maps features ``(n, in_features)`` to one logit per row (shape
    ``(n,)``); higher means more likely out-of-distribution.

    Parameters
    ----------
    in_features : int
        Width of the input features (the classifier's feature dimension).
    hidden : int
        Width of the hidden layer.
    generator : torch.Generator, optional
        Source of randomness for the initialisation (PyTorch's default scheme).
    """

    def __init__(
        self, in_features: int, hidden: int, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.hidden = make_linear(in_features, hidden, equalized_lr=False, generator=generator)
        self.activation = nn.ReLU()
        self.output = make_linear(hidden, 1, equalized_lr=False, generator=generator)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.hidden(features))).squeeze(-1)
