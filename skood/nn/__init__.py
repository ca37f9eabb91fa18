"""Plain PyTorch modules used by skood's detectors. Nothing here depends on scikit-learn."""

from .conv import ConvDiscriminatorBody, ConvGenerator, conv_networks
from .equalized import EqualizedConv2d, EqualizedLinear
from .heads import DiscriminatorEncoder, FixedLatentClassifier
from .init import default_bound, default_init_, default_uniform_, seeded_layer, zero_init_
from .invgan import (
    InvGANConvGenerator,
    InvGANConvNetwork,
    invgan_networks,
    running_statistics_kept,
)
from .latent_scale import ScaledLatentGenerator
from .mlp import MLP, make_linear
from .stacked import StackedLinear, copy_stacked_into, stack_networks

__all__ = [
    "MLP",
    "ConvDiscriminatorBody",
    "ConvGenerator",
    "DiscriminatorEncoder",
    "EqualizedConv2d",
    "EqualizedLinear",
    "FixedLatentClassifier",
    "InvGANConvGenerator",
    "InvGANConvNetwork",
    "ScaledLatentGenerator",
    "StackedLinear",
    "conv_networks",
    "copy_stacked_into",
    "default_bound",
    "default_init_",
    "default_uniform_",
    "invgan_networks",
    "make_linear",
    "running_statistics_kept",
    "seeded_layer",
    "stack_networks",
    "zero_init_",
]
