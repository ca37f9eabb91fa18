"""InvGAN's generator, discriminator and inference networks (Ren et al., WWW 2020).

Tables get the paper's Appendix B multilayer perceptrons (optional batch normalisation, ReLU,
linear output); images its Appendix A convolutional networks. Every linear and convolution
layer has PyTorch's default initialisation drawn from one :class:`torch.Generator`, layer by
layer in the order of ``modules()``, and nothing is drawn from PyTorch's global random state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .init import seeded_layer
from .mlp import MLP

__all__ = [
    "InvGANConvGenerator",
    "InvGANConvNetwork",
    "invgan_networks",
    "running_statistics_kept",
]


class InvGANConvGenerator(nn.Module):
    """Appendix A generator: FC to 128 x (H/8) x (W/8), three 4x4 stride-2 transposed
    convolutions (128, 64, C channels) with ReLU between them and tanh at the end.

    Parameters
    ----------
    latent_dim : int
        Width of the latent codes.
    input_shape : tuple (channels, height, width)
        Image shape; height and width divisible by 8 (checked by the detector, see
        ``skood._validation.check_input_shape``).
    generator : torch.Generator, optional
        Source of randomness for the initialisation.
    """

    def __init__(
        self,
        latent_dim: int,
        input_shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.start = (128, height // 8, width // 8)
        self.project = seeded_layer(
            nn.Linear, latent_dim, math.prod(self.start), generator=generator
        )
        self.layers = nn.Sequential(
            nn.ReLU(),
            _transposed_conv(128, 128, generator),
            nn.ReLU(),
            _transposed_conv(128, 64, generator),
            nn.ReLU(),
            _transposed_conv(64, channels, generator),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(z).view(-1, *self.start)).flatten(1)


class InvGANConvNetwork(nn.Module):
    """Appendix A discriminator and inference body: three 4x4 stride-2 convolutions (64, 128,
    128 channels) with ReLU, then a linear head of ``out_features`` (1 logit or the code).

    Parameters
    ----------
    input_shape : tuple (channels, height, width)
        Image shape; height and width divisible by 8.
    out_features : int
        Width of the linear head.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.input_shape = tuple(input_shape)
        self.body = nn.Sequential(
            _strided_conv(channels, 64, generator),
            nn.ReLU(),
            _strided_conv(64, 128, generator),
            nn.ReLU(),
            _strided_conv(128, 128, generator),
            nn.ReLU(),
        )
        self.head = seeded_layer(
            nn.Linear, 128 * (height // 8) * (width // 8), out_features, generator=generator
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.view(-1, *self.input_shape)).flatten(1))


def _strided_conv(
    in_channels: int, out_channels: int, generator: torch.Generator | None
) -> nn.Conv2d:
    # 4x4, stride 2, padding 1: halves each side.
    return seeded_layer(
        nn.Conv2d, in_channels, out_channels, 4, stride=2, padding=1, generator=generator
    )


def _transposed_conv(
    in_channels: int, out_channels: int, generator: torch.Generator | None
) -> nn.ConvTranspose2d:
    # 4x4, stride 2, padding 1: doubles each side. Its default bound counts the *output*
    # channels (fan_in = weight.size(1) * 16), as PyTorch's own initialisation does.
    return seeded_layer(
        nn.ConvTranspose2d, in_channels, out_channels, 4, stride=2, padding=1, generator=generator
    )


def invgan_networks(
    n_features: int,
    latent_dim: int,
    *,
    hidden_dims: Sequence[int] = (256, 128),
    batch_norm: bool = True,
    input_shape: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Build InvGAN's generator ``g``, discriminator and inference network ``h``.

    Built in that order, each layer initialised from ``generator`` in module order (the
    default bounds, weight then bias), without any draw from PyTorch's global random state.

    Parameters
    ----------
    n_features : int
        Width ``D`` of the data rows (``C * H * W`` for flat images).
    latent_dim : int
        Width ``d`` of the latent codes.
    hidden_dims : tuple or list of int, default=(256, 128)
        Hidden widths of the tabular discriminator and inference network, from the input; the
        generator uses them reversed. Ignored for images.
    batch_norm : bool, default=True
        Batch normalisation after every hidden linear layer of the tabular networks. Ignored
        for images.
    input_shape : tuple (channels, height, width) or None, default=None
        None for tables; for images the Appendix A networks, which need
        ``channels * height * width == n_features`` and sides divisible by 8 (the caller
        checks, e.g. with ``skood._validation.check_input_shape(..., side_multiple=8)``).
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Returns
    -------
    generator_network : torch.nn.Module
        ``(n, d) -> (n, D)``.
    discriminator : torch.nn.Module
        ``(n, D) -> (n, 1)`` logits.
    inference : torch.nn.Module
        ``(n, D) -> (n, d)`` codes.

    Examples
    --------
    >>> import torch
    >>> from skood.nn import invgan_networks
    >>> g, critic, h = invgan_networks(5, 2, hidden_dims=(8,), generator=torch.Generator())
    >>> tuple(g(torch.zeros(3, 2)).shape), tuple(critic(torch.zeros(3, 5)).shape)
    ((3, 5), (3, 1))
    """
    if input_shape is not None:
        shape = tuple(int(size) for size in input_shape)
        return (
            InvGANConvGenerator(latent_dim, shape, generator=generator),
            InvGANConvNetwork(shape, 1, generator=generator),
            InvGANConvNetwork(shape, latent_dim, generator=generator),
        )
    hidden = [int(width) for width in hidden_dims]
    options = {
        "activation": "relu",
        "batch_norm": bool(batch_norm),
        "equalized_lr": False,
        "generator": generator,
    }
    return (
        MLP(latent_dim, hidden[::-1], n_features, **options),
        MLP(n_features, hidden, 1, **options),
        MLP(n_features, hidden, latent_dim, **options),
    )


@contextmanager
def running_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Restore the running statistics of ``module``'s normalisation layers on exit.

    The inference network encodes real rows when scoring, in evaluation mode, so its running
    BatchNorm statistics must describe real rows; the cycle step passes generated batches
    through it (normalised with their own batch statistics), and those must not leak into the
    running ones.

    Parameters
    ----------
    module : torch.nn.Module
        Its batch-normalisation buffers (running mean, variance and batch count) are saved on
        entry and copied back on exit, even when the block raises.

    Yields
    ------
    None
        Control to the body of the ``with`` block.
    """
    saved = [
        (buffer, buffer.clone())
        for layer in module.modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm)
        for buffer in layer.buffers()
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
