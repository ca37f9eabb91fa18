"""RealNVP normalizing flows with affine coupling layers and exact log-determinants.

Two flows share one coupling layer (:class:`AffineCoupling`):

* :class:`RealNVPTabular` for vectors: alternating half masks over the features and MLP
  scale/translation networks (the tabular RealNVP of Kirichenko et al.'s UCI experiments).
* :class:`RealNVPImage` for images ``(C, H, W)``: the multi-scale RealNVP of Dinh et al. with
  checkerboard and channel masks, 2 x 2 squeezes, half of the channels factored out after each
  scale, ResNet scale/translation networks, and the dequantisation + logit preprocessing as its
  first (log-determinant-carrying) step.

Every flow maps ``x`` to ``z`` with ``forward(x) -> (z, log_det)`` (``z`` flat, shape
``(n, D)``), inverts it with ``inverse(z)``, and gives ``log_prob(x) = log N(z; 0, I) + log_det``.
The output layer of every scale/translation network starts at zero, so a new flow is the
identity (after the preprocessing, for images). Scales are ``w * tanh(s_raw)`` with a learnable
multiplier ``w``, which bounds each layer's log-scale. Everything is built from differentiable
torch operations, so gradients of ``log_prob`` with respect to the input can themselves be
differentiated (double backprop, as the approximate-mass penalty needs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .gaussian import standard_normal_log_prob
from .init import default_uniform_, seeded_layer
from .mlp import MLP

__all__ = [
    "AffineCoupling",
    "DequantizeLogit",
    "RealNVPImage",
    "RealNVPTabular",
    "squeeze2x2",
    "unsqueeze2x2",
]


class AffineCoupling(nn.Module):
    """Affine coupling layer ``y = b*x + (1-b) * (x + t) * exp(s)`` with ``(s, t)`` from ``b*x``.

    ``b`` is a fixed binary mask (1 = passed through). The network receives ``b * x`` and returns
    ``2 * channels`` outputs along dimension 1, split into ``s_raw`` and ``t``; the log-scale is
    ``s = w * tanh(s_raw)`` with a learnable multiplier ``w`` (one per feature or channel), so
    ``|s| <= |w|``. ``log|det dy/dx| = sum((1 - b) * s)`` per sample; the inverse is
    ``x = b*y + (1-b) * (y * exp(-s) - t)``.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``b * x`` (shape ``(n, channels, ...)``) to ``(n, 2 * channels, ...)``.
    mask : torch.Tensor
        Broadcastable to ``x`` without its batch dimension prepended as size 1, e.g.
        ``(1, D)`` for vectors, ``(1, 1, H, W)`` or ``(1, C, 1, 1)`` for images.
    scale_shape : tuple of int
        Shape of ``w``, broadcastable to ``x`` (``(1, D)`` or ``(1, C, 1, 1)``).

    Notes
    -----
    The layer also runs on inputs with leading axes before the batch (the members of
    :func:`~skood.nn.stack_networks`, whose ``w`` and ``b`` gain the same axis): it splits and
    sums over the trailing feature (or channel, height, width) axes only.
    """

    # Parameters that :func:`skood.nn.stack_networks` may stack along a new leading axis: they
    # broadcast against inputs with one too.
    stackable_parameters = ("scale",)

    def __init__(self, network: nn.Module, mask: torch.Tensor, scale_shape: Sequence[int]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mask", mask.float())
        self.scale = nn.Parameter(torch.ones(tuple(scale_shape)))
        # The axis of features (tables) or channels (images), counted from the end.
        self.channel_axis = 1 - len(scale_shape)

    def _channels(self) -> int:
        # Layers pickled before channel_axis existed ran on (n, ...) inputs only.
        return getattr(self, "channel_axis", 1)

    def _scale_and_shift(self, x_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s_raw, t = self.network(x_id).chunk(2, dim=self._channels())
        free = 1.0 - self.mask
        return self.scale * torch.tanh(s_raw) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_id = x * self.mask
        s, t = self._scale_and_shift(x_id)
        y = x_id + (1.0 - self.mask) * (x + t) * torch.exp(s)
        return y, s.flatten(self._channels()).sum(dim=-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y_id = y * self.mask
        s, t = self._scale_and_shift(y_id)
        return y_id + (1.0 - self.mask) * (y * torch.exp(-s) - t)


class _Flow(nn.Module):
    """``log_prob`` from ``forward``; subclasses define ``forward`` and ``inverse``."""

    def log_prob(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Exact ``log p(x) = log N(z; 0, I) + log|det dz/dx|`` per sample, shape ``(n,)``."""
        z, log_det = self(x, **kwargs)
        return standard_normal_log_prob(z, batch_dims=log_det.dim()) + log_det


# ----------------------------------------------------------------------------- tabular
def _coupling_mlp(
    n_features: int, hidden_dims: Sequence[int], generator: torch.Generator | None
) -> MLP:
    # Zero output layer: s = t = 0, so every coupling starts as the identity.
    return MLP(
        n_features,
        hidden_dims,
        2 * n_features,
        activation="relu",
        zero_output=True,
        equalized_lr=False,
        generator=generator,
    )


class RealNVPTabular(_Flow):
    """RealNVP for vectors: affine couplings with alternating half masks and MLP networks.

    The first mask passes the first ``D // 2`` features through and transforms the rest; the
    next one is its complement, and so on. Each network is ``Linear(D, H), ReLU``, then a
    ``Linear, ReLU`` pair per further hidden width, then a zero-initialised ``Linear(H, 2D)``;
    its input is the full vector with the transformed features zeroed. The prior is
    ``N(0, I_D)``.

    Parameters
    ----------
    n_features : int
        Dimension ``D`` (at least 2).
    n_couplings : int, default=8
        Number of coupling layers.
    hidden_dims : sequence of int, default=(256, 256)
        Hidden widths of every scale/translation MLP (``(H, H)`` is the reference's one hidden
        ``H x H`` layer after the input layer).
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Examples
    --------
    >>> import torch
    >>> from skood.nn.realnvp import RealNVPTabular
    >>> flow = RealNVPTabular(3, n_couplings=2, hidden_dims=(8,))
    >>> x = torch.randn(5, 3)
    >>> z, log_det = flow(x)
    >>> bool(torch.allclose(flow.inverse(z), x)), log_det.shape
    (True, torch.Size([5]))
    """

    def __init__(
        self,
        n_features: int,
        *,
        n_couplings: int = 8,
        hidden_dims: Sequence[int] = (256, 256),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if n_features < 2:
            raise ValueError(
                f"RealNVPTabular needs at least 2 features to split between the masks, got "
                f"n_features = {n_features}."
            )
        if n_couplings < 1:
            raise ValueError(f"n_couplings must be at least 1, got {n_couplings}.")
        hidden = [int(width) for width in hidden_dims]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_dims must hold positive widths, got {hidden_dims!r}.")
        self.n_features = n_features
        first = torch.zeros(1, n_features)
        first[:, : n_features // 2] = 1.0
        self.couplings = nn.ModuleList(
            AffineCoupling(
                _coupling_mlp(n_features, hidden, generator),
                first if index % 2 == 0 else 1.0 - first,
                (1, n_features),
            )
            for index in range(n_couplings)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map data ``x`` to latent codes ``z`` and the log-determinant of the map.

        Parameters
        ----------
        x : torch.Tensor of shape (n, D)
            A batch of vectors.

        Returns
        -------
        z : torch.Tensor of shape (n, D)
            The latent codes, after every coupling layer.
        log_det : torch.Tensor of shape (n,)
            ``log|det dz/dx|`` per sample, summed over the coupling layers.
        """
        log_det = x.new_zeros(x.shape[:-1])
        for coupling in self.couplings:
            x, step = coupling(x)
            log_det = log_det + step
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent codes ``z`` back to data, inverting :meth:`forward`.

        Parameters
        ----------
        z : torch.Tensor of shape (n, D)
            A batch of latent codes.

        Returns
        -------
        x : torch.Tensor of shape (n, D)
            The vectors that :meth:`forward` maps to ``z``.
        """
        for coupling in reversed(self.couplings):
            z = coupling.inverse(z)
        return z


# ----------------------------------------------------------------------------- images
def squeeze2x2(x: torch.Tensor) -> torch.Tensor:
    """Rearrange each 2 x 2 block of pixels into four channels (space to depth).

    The map is a permutation of the values: volume preserving, with log-determinant 0.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        A batch of images; ``H`` and ``W`` must be even.

    Returns
    -------
    squeezed : torch.Tensor of shape (n, 4 * C, H / 2, W / 2)
        Channel ``4 c + 2 i + j`` holds the pixels at offset ``(i, j)`` of each 2 x 2 block of
        input channel ``c``.
    """
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze2x2(x: torch.Tensor) -> torch.Tensor:
    """Invert :func:`squeeze2x2`: move each group of four channels back into 2 x 2 blocks.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        A batch of squeezed images; ``C`` must be divisible by 4.

    Returns
    -------
    unsqueezed : torch.Tensor of shape (n, C / 4, 2 * H, 2 * W)
        The images that :func:`squeeze2x2` maps to ``x``.
    """
    n, c, h, w = x.shape
    x = x.reshape(n, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, 2 * h, 2 * w)


class DequantizeLogit(nn.Module):
    """Dequantise 8-bit pixels and map them to logit space; carries its log-determinant.

    For ``x`` in ``[0, 1]`` (pixel / (levels - 1)) and noise ``u`` in ``[0, 1)``:
    ``x~ = ((levels - 1) x + u) / levels``, ``y = (1 - c)/2 + c x~``,
    ``l = log y - log(1 - y)``, and per sample
    ``log|det dl/dx| = sum(log c + log((levels - 1)/levels) - log y - log(1 - y))``.
    ``noise=None`` uses the midpoint ``u = 0.5`` (deterministic scores).

    Parameters
    ----------
    constraint : float, default=0.9
        ``c``: the squash keeps ``y`` in ``[(1 - c)/2, (1 + c)/2]``, away from the logit's poles.
    levels : int, default=256
        Number of quantisation levels of the pixels.
    """

    def __init__(self, constraint: float = 0.9, levels: int = 256) -> None:
        super().__init__()
        if not 0 < constraint < 1:
            raise ValueError(f"constraint must be in (0, 1), got {constraint!r}.")
        self.constraint = float(constraint)
        self.levels = int(levels)

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = 0.5 if noise is None else noise
        dequantized = ((self.levels - 1) * x + u) / self.levels
        y = 0.5 * (1.0 - self.constraint) + self.constraint * dequantized
        logits = torch.log(y) - torch.log1p(-y)
        # -log y - log(1 - y) = softplus(l) + softplus(-l), accurate at both ends.
        per_pixel = F.softplus(logits) + F.softplus(-logits)
        constant = math.log(self.constraint) + math.log((self.levels - 1) / self.levels)
        log_det = per_pixel.flatten(1).sum(dim=1) + constant * x[0].numel()
        return logits, log_det

    def inverse(self, logits: torch.Tensor) -> torch.Tensor:
        """Map logits back to pixels in [0, 1], inverting :meth:`forward` with midpoint noise.

        Parameters
        ----------
        logits : torch.Tensor of shape (n, ...)
            Values in logit space, as :meth:`forward` returns them.

        Returns
        -------
        pixels : torch.Tensor of the same shape as ``logits``
            Continuous pixel values ``x`` with ``forward(x) == logits`` for ``noise=None``;
            not clipped, so they may leave [0, 1] slightly for logits :meth:`forward` cannot
            produce.
        """
        y = torch.sigmoid(logits)
        dequantized = (y - 0.5 * (1.0 - self.constraint)) / self.constraint
        return (self.levels * dequantized - 0.5) / (self.levels - 1)


class _WeightNormConv2d(nn.Module):
    """Convolution with weight ``g * v / ||v||`` (per output channel), zero bias.

    Written out rather than with ``torch.nn.utils`` parametrizations so that the module pickles
    like any other.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        self.direction = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        )
        # fan_in = in_channels * kernel_size ** 2, from the kernel's shape.
        default_uniform_(self.direction, generator)
        # g starts at ||v||: the initial weight is the default-initialised v itself.
        self.gain = nn.Parameter(self.direction.detach().flatten(1).norm(dim=1).clone())
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.direction.flatten(1).norm(dim=1)
        weight = self.direction * (self.gain / norm).view(-1, 1, 1, 1)
        return F.conv2d(x, weight, self.bias, padding=self.padding)


class _ResidualBlock(nn.Module):
    """Pre-activation residual block ``h + conv(relu(conv(relu(h))))`` without normalisation
    (batch statistics would couple the samples of a batch, see the module docstring)."""

    def __init__(self, channels: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.conv1 = _WeightNormConv2d(channels, channels, 3, generator)
        self.conv2 = _WeightNormConv2d(channels, channels, 3, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv2(F.relu(self.conv1(F.relu(h))))


class _ResNet(nn.Module):
    """Scale/translation network of the image couplings.

    ``[x, -x] -> ReLU -> WN-Conv3x3 (mid)``, then ``n_blocks`` residual blocks, each feeding a
    1 x 1 skip convolution into a summed output, then ``ReLU -> Conv1x1 (2 C)`` initialised at
    zero.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        n_blocks: int,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.in_conv = _WeightNormConv2d(2 * in_channels, mid_channels, 3, generator)
        self.in_skip = _WeightNormConv2d(mid_channels, mid_channels, 1, generator)
        self.blocks = nn.ModuleList(
            _ResidualBlock(mid_channels, generator) for _ in range(n_blocks)
        )
        self.skips = nn.ModuleList(
            _WeightNormConv2d(mid_channels, mid_channels, 1, generator) for _ in range(n_blocks)
        )
        self.out_conv = seeded_layer(nn.Conv2d, mid_channels, 2 * in_channels, 1, zero=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_conv(F.relu(torch.cat([x, -x], dim=1)))
        skip = self.in_skip(h)
        for block, skip_conv in zip(self.blocks, self.skips, strict=True):
            h = block(h)
            skip = skip + skip_conv(h)
        return self.out_conv(F.relu(skip))


def _checkerboard(height: int, width: int, parity: int) -> torch.Tensor:
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    return ((rows + cols) % 2 == parity).float().view(1, 1, height, width)


def _channel_mask(channels: int, first_half: bool) -> torch.Tensor:
    mask = torch.zeros(1, channels, 1, 1)
    half = channels // 2
    if first_half:
        mask[:, :half] = 1.0
    else:
        mask[:, half:] = 1.0
    return mask


class RealNVPImage(_Flow):
    """Multi-scale RealNVP for images, with its dequantisation and logit preprocessing.

    Input: pixels in ``[0, 1]`` (pixel / 255), shape ``(n, C, H, W)`` or flat ``(n, C*H*W)``.
    First :class:`DequantizeLogit` (its log-determinant is part of the flow's), then, for each
    scale but the last: 3 couplings with checkerboard masks of alternating parity, a 2 x 2
    squeeze, 3 couplings with channel masks (alternating halves), and half of the channels
    factored out to the latent; the last scale has 4 checkerboard couplings. The
    scale/translation networks are ResNets (weight-normalised convolutions, no batch
    normalisation) whose width doubles after every squeeze.

    Parameters
    ----------
    input_shape : tuple (channels, height, width)
        Image shape; ``height`` and ``width`` must be divisible by ``2 ** (n_scales - 1)``.
    n_scales : int, default=2
        Number of scales (2 for 28 x 28 grey images: the last scale runs at 14 x 14).
    n_blocks : int, default=2
        Residual blocks per scale/translation network.
    mid_channels : int, default=32
        Width of the networks at the first scale.
    constraint : float, default=0.9
        Logit squash of :class:`DequantizeLogit`.
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Examples
    --------
    >>> import torch
    >>> from skood.nn.realnvp import RealNVPImage
    >>> flow = RealNVPImage((1, 8, 8), n_blocks=1, mid_channels=4)
    >>> pixels = torch.rand(2, 1, 8, 8)
    >>> z, log_det = flow(pixels)
    >>> z.shape, log_det.shape
    (torch.Size([2, 64]), torch.Size([2]))
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        n_scales: int = 2,
        n_blocks: int = 2,
        mid_channels: int = 32,
        constraint: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        shape = tuple(int(size) for size in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (channels, height, width), got {input_shape!r}.")
        if n_scales < 1 or n_blocks < 0 or mid_channels < 1:
            raise ValueError(
                "n_scales and mid_channels must be positive and n_blocks non-negative, got "
                f"n_scales={n_scales}, n_blocks={n_blocks}, mid_channels={mid_channels}."
            )
        channels, height, width = shape
        factor = 2 ** (n_scales - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"input_shape {shape}: height and width must be divisible by 2 ** (n_scales - 1)"
                f" = {factor} for {n_scales} scales."
            )
        self.input_shape = shape
        self.preprocess = DequantizeLogit(constraint)

        def coupling(mask, n_channels, mid):
            scale_shape = (1, n_channels, 1, 1)
            return AffineCoupling(_ResNet(n_channels, mid, n_blocks, generator), mask, scale_shape)

        self.spatial = nn.ModuleList()  # checkerboard couplings, one list per scale
        self.channelwise = nn.ModuleList()  # channel couplings after each squeeze
        mid = mid_channels
        for scale in range(n_scales):
            last = scale == n_scales - 1
            n_checker = 4 if last else 3
            self.spatial.append(
                nn.ModuleList(
                    coupling(_checkerboard(height, width, index % 2), channels, mid)
                    for index in range(n_checker)
                )
            )
            if last:
                break
            channels, height, width = 4 * channels, height // 2, width // 2
            mid *= 2
            self.channelwise.append(
                nn.ModuleList(
                    coupling(_channel_mask(channels, index % 2 == 0), channels, mid)
                    for index in range(3)
                )
            )
            channels //= 2  # the other half is factored out

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.input_shape)

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map pixels in [0, 1] to flat latent codes ``z`` and the log-determinant of the map.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W) or (n, C * H * W)
            Pixels scaled to [0, 1] (pixel / 255), as images or flat rows.
        noise : torch.Tensor of the same shape as ``x`` or None, default=None
            Dequantisation noise in [0, 1); None uses the midpoint 0.5 (deterministic).

        Returns
        -------
        z : torch.Tensor of shape (n, C * H * W)
            The latent codes: the halves factored out after each squeeze, then the output of
            the last scale, flattened and concatenated.
        log_det : torch.Tensor of shape (n,)
            ``log|det dz/dx|`` per sample, including that of the dequantisation and logit
            preprocessing.
        """
        h, log_det = self.preprocess(
            self._as_images(x), None if noise is None else self._as_images(noise)
        )
        latents = []
        for scale, spatial in enumerate(self.spatial):
            for layer in spatial:
                h, step = layer(h)
                log_det = log_det + step
            if scale == len(self.channelwise):
                break
            h = squeeze2x2(h)
            for layer in self.channelwise[scale]:
                h, step = layer(h)
                log_det = log_det + step
            half = h.shape[1] // 2
            latents.append(h[:, half:].flatten(1))
            h = h[:, :half]
        latents.append(h.flatten(1))
        return torch.cat(latents, dim=1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Map flat latent codes back to pixels in [0, 1], inverting :meth:`forward`.

        Parameters
        ----------
        z : torch.Tensor of shape (n, C * H * W)
            Flat latent codes, laid out as :meth:`forward` returns them.

        Returns
        -------
        x : torch.Tensor of shape (n, C, H, W)
            Continuous, unclipped pixels (the inverse with midpoint dequantisation noise).
        """
        n = z.shape[0]
        channels, height, width = self.input_shape
        shapes = [(channels, height, width)]  # shape of h entering each scale
        for _ in self.channelwise:
            channels, height, width = 2 * channels, height // 2, width // 2
            shapes.append((channels, height, width))
        # Latent pieces in forward order: the half factored out after each squeeze (the same
        # shape as the half kept), then what the last scale outputs.
        sizes = [math.prod(shape) for shape in shapes[1:]] + [math.prod(shapes[-1])]
        pieces = torch.split(z, sizes, dim=1)
        h = pieces[-1].reshape(n, *shapes[-1])
        for layer in reversed(self.spatial[-1]):
            h = layer.inverse(h)
        for scale in range(len(self.channelwise) - 1, -1, -1):
            factored = pieces[scale].reshape(n, *shapes[scale + 1])
            h = torch.cat([h, factored], dim=1)
            for layer in reversed(self.channelwise[scale]):
                h = layer.inverse(h)
            h = unsqueeze2x2(h)
            for layer in reversed(self.spatial[scale]):
                h = layer.inverse(h)
        return self.preprocess.inverse(h)
