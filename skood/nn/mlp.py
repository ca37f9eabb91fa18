"""Multilayer perceptrons for tabular data and the linear layer every network builds on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .equalized import EqualizedLinear
from .init import seeded_layer

__all__ = ["MLP", "make_linear"]

_ACTIVATIONS = ("leaky_relu", "relu")


def make_linear(
    in_features: int,
    out_features: int,
    *,
    equalized_lr: bool = True,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Build a linear layer, equalized-lr or with PyTorch's default initialisation.

    The default-initialised variant draws from ``generator`` so that a fitted model depends
    only on the seed it was given, never on PyTorch's global random state.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    equalized_lr : bool, default=True
        Build an :class:`EqualizedLinear` (``N(0, 1)`` weight, zero bias) instead of a
        :class:`torch.nn.Linear` (uniform weight, then bias, ``1 / sqrt(in_features)`` bound).
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Returns
    -------
    layer : torch.nn.Module
        An :class:`EqualizedLinear` or a :class:`torch.nn.Linear`, initialised.
    """
    if equalized_lr:
        return EqualizedLinear(in_features, out_features, generator=generator)
    return seeded_layer(nn.Linear, in_features, out_features, generator=generator)


class MLP(nn.Sequential):
    """Linear layers with an activation between them and a linear output.

    Every hidden layer is ``Linear``, then ``BatchNorm1d`` when ``batch_norm``, then the
    activation, all in one :class:`torch.nn.Sequential` (state-dict keys ``"0.weight"``,
    ``"1.weight"``, ...); the output layer, if any, comes last. The layers are initialised in
    that order from ``generator`` (batch normalisation draws nothing).

    Parameters
    ----------
    in_features : int
        Input width.
    hidden_dims : tuple or list of int
        Widths of the hidden layers, each followed by the activation.
    out_features : int or None
        Width of the final linear layer; ``None`` ends the network on the last hidden
        activation (a feature body).
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Activation after every hidden layer.
    negative_slope : float, default=0.2
        Slope of LeakyReLU for negative inputs (ignored for ``"relu"``).
    batch_norm : bool, default=False
        Batch normalisation between every hidden linear layer and its activation.
    zero_output : bool, default=False
        Start the output layer at zero weight and bias (nothing drawn for it), so that the
        network starts as the constant 0; needs ``equalized_lr=False`` and ``out_features``.
    equalized_lr : bool, default=True
        Use :class:`EqualizedLinear` layers; otherwise :class:`torch.nn.Linear` layers with
        PyTorch's default initialisation drawn from ``generator``.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Examples
    --------
    >>> import torch
    >>> from skood.nn import MLP
    >>> network = MLP(4, (8,), 2, activation="relu", batch_norm=True, equalized_lr=False)
    >>> [type(layer).__name__ for layer in network]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    >>> network.out_features
    2
    """

    def __init__(
        self,
        in_features: int,
        hidden_dims: Sequence[int],
        out_features: int | None,
        *,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        batch_norm: bool = False,
        zero_output: bool = False,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}.")
        if zero_output and (equalized_lr or out_features is None):
            raise ValueError(
                "zero_output=True needs an output layer (out_features) of PyTorch's default "
                "kind (equalized_lr=False)."
            )
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers.append(
                make_linear(width, hidden, equalized_lr=equalized_lr, generator=generator)
            )
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.LeakyReLU(negative_slope) if activation == "leaky_relu" else nn.ReLU())
            width = hidden
        if zero_output:
            layers.append(seeded_layer(nn.Linear, width, out_features, zero=True))
            width = out_features
        elif out_features is not None:
            layers.append(
                make_linear(width, out_features, equalized_lr=equalized_lr, generator=generator)
            )
            width = out_features
        super().__init__(*layers)
        self.out_features = width
