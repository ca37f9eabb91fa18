"""Layers with an equalized learning rate (Karras et al., 2018).

Weights are stored with unit variance and multiplied at run time by the He constant
``gain / sqrt(fan_in)``. With Adam, every layer then learns at the same effective rate whatever
its fan-in, which is what the DLSGAN reference networks rely on together with ``betas=(0, 0.99)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EqualizedConv2d", "EqualizedLinear"]

_HE_GAIN = math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    """Fully connected layer whose weight is scaled by ``gain / sqrt(in_features)`` at run time.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths.
    bias : bool, default=True
        Whether to learn an additive bias (initialised at zero).
    gain : float, default=sqrt(2)
        Numerator of the run-time weight scale.
    generator : torch.Generator, optional
        Source of randomness for the ``N(0, 1)`` weight initialisation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        gain: float = _HE_GAIN,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight_scale = gain / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            self.weight.normal_(generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_scale, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class EqualizedConv2d(nn.Module):
    """2-D convolution whose kernel is scaled by ``gain / sqrt(fan_in)`` at run time.

    ``fan_in`` is ``in_channels * kernel_size ** 2``. Padding defaults to "same" for odd kernels.

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels.
    kernel_size : int
        Side of the square kernel.
    stride : int, default=1
        Stride of the convolution.
    padding : int or None, default=None
        Zero padding on each side; None is ``kernel_size // 2``.
    bias : bool, default=True
        Whether to learn an additive bias (initialised at zero).
    gain : float, default=sqrt(2)
        Numerator of the run-time weight scale.
    generator : torch.Generator, optional
        Source of randomness for the ``N(0, 1)`` weight initialisation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        gain: float = _HE_GAIN,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            self.weight.normal_(generator=generator)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight * self.weight_scale, self.bias, stride=self.stride, padding=self.padding
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
