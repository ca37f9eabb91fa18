"""Convolutional generators and discriminator bodies for images stored as flat rows.

Detectors keep scikit-learn's 2-D input ``(n_samples, C * H * W)``; these modules reshape to
``(n, C, H, W)`` on the way in and flatten on the way out. Two families:

* ``"small"``: the CPU-tolerable default (nearest-neighbour upsampling, average pooling,
  channels 128-64-32), for sides divisible by 4 (28 x 28 MNIST needs no padding).
* ``"reference"``: the AnoDLSGAN reference network (channels 1024-512-256-128, upsampling by
  zero insertion and a binomial blur, blur-then-stride-2 downsampling), for sides divisible by
  8 (MNIST zero-padded to 32 x 32). Tens of millions of parameters: a GPU network.

Every convolution and linear layer can use an equalized learning rate; there is no
normalisation layer (R1 and per-sample encoder targets assume per-sample networks). The
LeakyReLU activations run in place, over the output of the layer before them, which nothing
else reads: the values are the same, and a CPU training step is about 10 % faster without
the extra pass over memory (a forward hook on a convolution therefore sees its output after
the activation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .equalized import EqualizedConv2d
from .init import seeded_layer
from .mlp import make_linear

__all__ = ["ConvDiscriminatorBody", "ConvGenerator", "conv_networks"]

_BINOMIAL = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _make_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    equalized_lr: bool,
    generator: torch.Generator | None,
) -> nn.Module:
    if equalized_lr:
        return EqualizedConv2d(in_channels, out_channels, kernel_size, generator=generator)
    return seeded_layer(
        nn.Conv2d,
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        generator=generator,
    )


class _BlurUpsample(nn.Module):
    """2x upsampling by zero insertion followed by a 4x4 binomial blur (times 4)."""

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.outer(_BINOMIAL, _BINOMIAL)
        self.register_buffer("kernel", 4 * kernel / kernel.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        weight = self.kernel.to(x.dtype).view(1, 1, 4, 4)
        # Channels folded into the batch: one single-channel filter instead of a depthwise
        # (grouped) one, whose double backward (the R1 penalty's) runs per group.
        planes = x.reshape(n * channels, 1, height, width)
        out = F.conv_transpose2d(planes, weight, stride=2, padding=1)
        return out.view(n, channels, 2 * height, 2 * width)


class _BlurDownsample(nn.Module):
    """4x4 binomial blur, then stride-2 subsampling."""

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.outer(_BINOMIAL, _BINOMIAL)
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        weight = self.kernel.to(x.dtype).view(1, 1, 4, 4)
        # Single-channel filter over channels folded into the batch, as in _BlurUpsample.
        planes = F.pad(x.reshape(n * channels, 1, height, width), (1, 1, 1, 1))
        out = F.conv2d(planes, weight, stride=2)
        return out.view(n, channels, height // 2, width // 2)


class ConvGenerator(nn.Module):
    """Latent vector to a flat image.

    ``Linear(d -> widths[0] * h0 * w0)`` and LeakyReLU, then one stage per remaining width (2x
    upsampling, two 3x3 convolutions with LeakyReLU), then a linear 1x1 convolution to the
    image channels. Output shape ``(n, C * H * W)``.

    Parameters
    ----------
    latent_dim : int
        Width ``d`` of the latent input.
    input_shape : tuple (channels, height, width)
        Shape ``(C, H, W)`` of the generated images; ``H`` and ``W`` divisible by
        ``2 ** (len(widths) - 1)``.
    widths : tuple or list of int
        Channels of the first feature map, then of each upsampling stage.
    upsampling : {"nearest", "blur"}, default="nearest"
        Nearest-neighbour 2x upsampling, or zero insertion and a binomial blur (the
        reference network's).
    negative_slope : float, default=0.2
        LeakyReLU slope.
    equalized_lr : bool, default=True
        Equalized-learning-rate layers (:class:`EqualizedLinear`, :class:`EqualizedConv2d`);
        otherwise PyTorch's default layers and initialisation.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.
    """

    def __init__(
        self,
        latent_dim: int,
        input_shape: Sequence[int],
        widths: Sequence[int],
        *,
        upsampling: str = "nearest",
        negative_slope: float = 0.2,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        factor = 2 ** (len(widths) - 1)
        self.start_shape = (widths[0], height // factor, width // factor)
        self.input_shape = tuple(input_shape)
        options = {"equalized_lr": equalized_lr, "generator": generator}
        self.project = make_linear(
            latent_dim, widths[0] * (height // factor) * (width // factor), **options
        )
        self.activation = nn.LeakyReLU(negative_slope, inplace=True)
        stages: list[nn.Module] = []
        previous = widths[0]
        for current in widths[1:]:
            upsample = _BlurUpsample() if upsampling == "blur" else nn.Upsample(scale_factor=2)
            stages += [
                upsample,
                _make_conv(previous, current, 3, **options),
                nn.LeakyReLU(negative_slope, inplace=True),
                _make_conv(current, current, 3, **options),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
            previous = current
        self.stages = nn.Sequential(*stages)
        self.to_image = _make_conv(previous, channels, 1, **options)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.project(latent)).view(-1, *self.start_shape)
        return self.to_image(self.stages(x)).flatten(1)


class ConvDiscriminatorBody(nn.Module):
    """Flat image to a feature vector.

    A 1x1 stem, then per stage two 3x3 convolutions with LeakyReLU and 2x downsampling; the
    output is the flattened last feature map (``out_features`` wide).

    Parameters
    ----------
    input_shape : tuple (channels, height, width)
        Shape ``(C, H, W)`` of the images, taken as flat rows ``(n, C * H * W)``; ``H`` and
        ``W`` divisible by ``2 ** len(stages)``.
    stem_width : int
        Channels of the 1x1 stem convolution.
    stages : tuple or list of (int, int)
        ``(middle, out)`` channels of the two convolutions of each stage.
    downsampling : {"average", "blur"}, default="average"
        2x2 average pooling, or a binomial blur then stride-2 subsampling (the reference
        network's).
    negative_slope : float, default=0.2
        LeakyReLU slope.
    equalized_lr : bool, default=True
        Equalized-learning-rate convolutions (:class:`EqualizedConv2d`); otherwise PyTorch's
        default layers and initialisation.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        stem_width: int,
        stages: Sequence[tuple[int, int]],
        *,
        downsampling: str = "average",
        negative_slope: float = 0.2,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.input_shape = tuple(input_shape)
        options = {"equalized_lr": equalized_lr, "generator": generator}
        layers: list[nn.Module] = [
            _make_conv(channels, stem_width, 1, **options),
            nn.LeakyReLU(negative_slope, inplace=True),
        ]
        previous = stem_width
        for middle, out in stages:
            layers += [
                _make_conv(previous, middle, 3, **options),
                nn.LeakyReLU(negative_slope, inplace=True),
                _make_conv(middle, out, 3, **options),
                nn.LeakyReLU(negative_slope, inplace=True),
                _BlurDownsample() if downsampling == "blur" else nn.AvgPool2d(2),
            ]
            previous = out
        self.layers = nn.Sequential(*layers)
        factor = 2 ** len(stages)
        self.out_features = previous * (height // factor) * (width // factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.view(-1, *self.input_shape)).flatten(1)


def conv_networks(
    architecture: str,
    latent_dim: int,
    input_shape: Sequence[int],
    *,
    negative_slope: float = 0.2,
    equalized_lr: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[ConvGenerator, ConvDiscriminatorBody]:
    """Build the generator and discriminator body of ``architecture``.

    Parameters
    ----------
    architecture : {"small", "reference"}
        ``"small"``: channels 128-64-32, nearest upsampling and average pooling, sides
        divisible by 4. ``"reference"``: the AnoDLSGAN reference network (channels
        1024-512-256-128, blurred resampling), sides divisible by 8.
    latent_dim : int
        Width of the generator's latent input.
    input_shape : tuple (channels, height, width)
        Shape of the images.
    negative_slope : float, default=0.2
        LeakyReLU slope.
    equalized_lr : bool, default=True
        Equalized-learning-rate layers.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Returns
    -------
    generator_network : ConvGenerator
        Latent codes ``(n, latent_dim)`` to flat images ``(n, C * H * W)``.
    body : ConvDiscriminatorBody
        Flat images to features ``(n, body.out_features)``.

    Raises
    ------
    ValueError
        When the image sides are not divisible by 4 (``"small"``) or 8 (``"reference"``).
    """
    channels, height, width = input_shape
    divisor = 4 if architecture == "small" else 8
    if height % divisor or width % divisor:
        raise ValueError(
            f"architecture={architecture!r} needs image sides divisible by {divisor}, got "
            f"input_shape={tuple(input_shape)}; pad the images (MNIST: 28 -> 32 for 'reference')."
        )
    options = {
        "negative_slope": negative_slope,
        "equalized_lr": equalized_lr,
        "generator": generator,
    }
    if architecture == "small":
        gen = ConvGenerator(latent_dim, input_shape, (128, 64, 32), **options)
        body = ConvDiscriminatorBody(input_shape, 32, ((32, 64), (64, 128)), **options)
    else:
        gen = ConvGenerator(
            latent_dim, input_shape, (1024, 512, 256, 128), upsampling="blur", **options
        )
        body = ConvDiscriminatorBody(
            input_shape, 128, ((128, 256), (256, 512), (512, 1024)), downsampling="blur", **options
        )
    return gen, body
