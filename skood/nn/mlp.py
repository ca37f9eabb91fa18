"""Multilayer perceptrons for tabular data and the linear layer every network builds on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .equalized import EqualizedLinear

__all__ = ["MLP", "make_linear"]


def make_linear(
    in_features: int,
    out_features: int,
    *,
    equalized_lr: bool = True,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A linear layer, equalized-lr or with PyTorch's default initialisation.

    The default-initialised variant draws from ``generator`` so that a fitted model depends
    only on the seed it was given, never on PyTorch's global random state.
    """
    if equalized_lr:
        return EqualizedLinear(in_features, out_features, generator=generator)
    # skip_init: nn.Linear's own initialisation would draw from (and advance) the global random
    # state before the weights are drawn again from ``generator``.
    layer = nn.utils.skip_init(nn.Linear, in_features, out_features)
    # Same bounds as nn.Linear.reset_parameters (kaiming_uniform with a=sqrt(5)).
    bound = 1.0 / math.sqrt(in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


class MLP(nn.Sequential):
    """Linear layers with LeakyReLU between them and a linear output.

    Parameters
    ----------
    in_features : int
        Input width.
    hidden_dims : sequence of int
        Widths of the hidden layers, each followed by LeakyReLU.
    out_features : int or None
        Width of the final linear layer; ``None`` ends the network on the last hidden
        activation (a feature body).
    negative_slope : float, default=0.2
        Slope of LeakyReLU for negative inputs.
    equalized_lr : bool, default=True
        Use :class:`EqualizedLinear` layers.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.
    """

    def __init__(
        self,
        in_features: int,
        hidden_dims: Sequence[int],
        out_features: int | None,
        *,
        negative_slope: float = 0.2,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers.append(
                make_linear(width, hidden, equalized_lr=equalized_lr, generator=generator)
            )
            layers.append(nn.LeakyReLU(negative_slope))
            width = hidden
        if out_features is not None:
            layers.append(
                make_linear(width, out_features, equalized_lr=equalized_lr, generator=generator)
            )
            width = out_features
        super().__init__(*layers)
        self.out_features = width
