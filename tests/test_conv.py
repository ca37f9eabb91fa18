"""Convolutional networks for images: blur resampling and the reference architecture."""

from copy import deepcopy as copy_module

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from skood import DLSGANDetector
from skood.nn.conv import _BlurDownsample, _BlurUpsample, conv_networks


def _depthwise(kernel: torch.Tensor, channels: int) -> torch.Tensor:
    return kernel.expand(channels, 1, 4, 4)


def test_blur_upsample_is_the_depthwise_binomial_filter():
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    up = _BlurUpsample().double()
    expected = F.conv_transpose2d(x, _depthwise(up.kernel, 5), stride=2, padding=1, groups=5)
    torch.testing.assert_close(up(x), expected)
    # Zero insertion then a kernel that sums to 4 keeps a constant image constant inside.
    constant = up(torch.ones(1, 2, 8, 8, dtype=torch.float64))
    torch.testing.assert_close(constant[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12).double())


def test_blur_downsample_is_the_depthwise_binomial_filter():
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    down = _BlurDownsample().double()
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1)), _depthwise(down.kernel, 5), stride=2, groups=5)
    torch.testing.assert_close(down(x), expected)
    assert down(x).shape == (3, 5, 4, 4)


def test_blur_double_backward_matches_the_depthwise_filter():
    # The R1 penalty differentiates a gradient: both paths must agree to second order.
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    down = _BlurDownsample().double()

    def penalty(function):
        (gradient,) = torch.autograd.grad(function(x).pow(3).sum(), x, create_graph=True)
        (second,) = torch.autograd.grad(gradient.pow(2).sum(), x)
        return second

    def depthwise(inputs):
        kernel = _depthwise(down.kernel, 3)
        return F.conv2d(F.pad(inputs, (1, 1, 1, 1)), kernel, stride=2, groups=3)

    torch.testing.assert_close(penalty(down), penalty(depthwise))


def test_reference_networks_shapes():
    generator, body = conv_networks("reference", 8, (1, 32, 32))
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 32 * 32)
    assert body(images).shape == (2, body.out_features)
    with pytest.raises(ValueError, match="divisible by 8"):
        conv_networks("reference", 8, (1, 28, 28))


def test_reference_architecture_fits_and_scores():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(6, 32 * 32)).astype(np.float32)
    det = DLSGANDetector(
        input_shape=(1, 32, 32), architecture="reference", latent_dim=8, max_epochs=1,
        batch_size=3, random_state=0, device="cpu",
    )  # fmt: skip
    scores = det.fit(X).score_samples(X)
    assert scores.shape == (6,) and np.all(np.isfinite(scores))


def _out_of_place(network: torch.nn.Module) -> torch.nn.Module:
    copy = copy_module(network)
    for layer in copy.modules():
        if isinstance(layer, torch.nn.LeakyReLU):
            layer.inplace = False
    return copy


@pytest.mark.parametrize("architecture", ["small", "reference"])
def test_in_place_activations_compute_what_out_of_place_ones_do(architecture):
    # Values, weight gradients and R1's double backward through the critic body.
    side = 8 if architecture == "small" else 16
    generator, body = conv_networks(
        architecture, 4, (1, side, side), generator=torch.Generator().manual_seed(0)
    )
    assert any(
        isinstance(layer, torch.nn.LeakyReLU) and layer.inplace
        for network in (generator, body)
        for layer in network.modules()
    )
    references = [_out_of_place(network) for network in (generator, body)]
    latent = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))

    def step(generator, body):
        images = generator(latent)
        x = images.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(body(x).sum(), x, create_graph=True)
        loss = body(images).pow(2).mean() + gradient.pow(2).sum()
        parameters = [*generator.parameters(), *body.parameters()]
        return [images.detach(), gradient.detach(), *torch.autograd.grad(loss, parameters)]

    for ours, reference in zip(step(generator, body), step(*references), strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
