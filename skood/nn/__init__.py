"""Plain PyTorch modules used by skood's detectors. Nothing here depends on scikit-learn."""

from .conv import ConvDiscriminatorBody, ConvGenerator, conv_networks
from .equalized import EqualizedConv2d, EqualizedLinear
from .heads import DiscriminatorEncoder
from .latent_scale import ScaledLatentGenerator
from .mlp import MLP, make_linear

__all__ = [
    "MLP",
    "ConvDiscriminatorBody",
    "ConvGenerator",
    "DiscriminatorEncoder",
    "EqualizedConv2d",
    "EqualizedLinear",
    "ScaledLatentGenerator",
    "conv_networks",
    "make_linear",
]
