"""PyTorch's default initialisation, drawn from a given generator.

``nn.Linear`` and the convolutions initialise themselves when they are built, from PyTorch's
global random state. A fitted skood model must depend only on the seed it was given, so every
network here is built with :func:`torch.nn.utils.skip_init` (no draw at all) and then filled
from a :class:`torch.Generator` with the same bounds: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
for the weight, then for the bias, ``fan_in`` as
:func:`torch.nn.init._calculate_fan_in_and_fan_out` counts it (``weight.size(1)`` times the
kernel size, which for a transposed convolution is its *output* channels, as in PyTorch).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["default_bound", "default_init_", "default_uniform_", "seeded_layer", "zero_init_"]

_Layer = TypeVar("_Layer", bound=nn.Module)


def default_bound(weight: torch.Tensor) -> float:
    """``1 / sqrt(fan_in)`` of a weight tensor (at least 2-D), PyTorch's default bound.

    Parameters
    ----------
    weight : torch.Tensor
        A linear weight ``(out, in)`` or a convolution kernel ``(out, in, *kernel)`` (for a
        transposed convolution ``(in, out, *kernel)``).

    Returns
    -------
    bound : float
        ``1 / sqrt(fan_in)``, with ``fan_in = weight.size(1)`` times the kernel size.
    """
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    return 1.0 / math.sqrt(fan_in)


def default_uniform_(
    tensor: torch.Tensor,
    generator: torch.Generator | None,
    *,
    bound: float | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place from ``U(-bound, bound)`` drawn from ``generator``.

    Parameters
    ----------
    tensor : torch.Tensor
        The tensor to fill (a parameter is filled without recording a gradient).
    generator : torch.Generator or None
        Source of the draws; None draws from PyTorch's global random state.
    bound : float, optional
        Half-width of the interval; by default :func:`default_bound` of ``tensor`` itself.

    Returns
    -------
    tensor : torch.Tensor
        The same tensor.
    """
    if bound is None:
        bound = default_bound(tensor)
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)
    return tensor


def default_init_(layer: _Layer, generator: torch.Generator | None) -> _Layer:
    """Initialise a linear or convolution layer as PyTorch does, drawing from ``generator``.

    The weight is drawn first, then the bias (when the layer has one), both with the bound of
    the weight's ``fan_in``: the order and bounds of ``reset_parameters``, so that networks
    built this way draw the same numbers as the hand-written initialisations they replace.

    Parameters
    ----------
    layer : torch.nn.Module
        A module with a ``weight`` of at least 2 dimensions and a ``bias`` (a tensor or None),
        such as :class:`torch.nn.Linear`, :class:`torch.nn.Conv2d` or
        :class:`torch.nn.ConvTranspose2d`.
    generator : torch.Generator or None
        Source of the draws; None draws from PyTorch's global random state.

    Returns
    -------
    layer : torch.nn.Module
        The same layer, initialised in place.
    """
    bound = default_bound(layer.weight)
    default_uniform_(layer.weight, generator, bound=bound)
    if layer.bias is not None:
        default_uniform_(layer.bias, generator, bound=bound)
    return layer


def zero_init_(layer: _Layer) -> _Layer:
    """Set a layer's weight and bias to zero (no draw): an output layer that starts at 0.

    Parameters
    ----------
    layer : torch.nn.Module
        A module with a ``weight`` and a ``bias`` (a tensor or None).

    Returns
    -------
    layer : torch.nn.Module
        The same layer.
    """
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def seeded_layer(
    layer_class: type[_Layer],
    *args: Any,
    generator: torch.Generator | None = None,
    zero: bool = False,
    **kwargs: Any,
) -> _Layer:
    """Build ``layer_class(*args, **kwargs)`` without touching the global random state.

    The layer is built with :func:`torch.nn.utils.skip_init`, so its own initialisation never
    runs, then initialised by :func:`default_init_` from ``generator`` (or set to zero).

    Parameters
    ----------
    layer_class : type
        A linear or convolution class whose constructor takes a ``device`` keyword.
    *args
        Positional arguments of the constructor.
    generator : torch.Generator or None, default=None
        Source of the draws; None draws from PyTorch's global random state.
    zero : bool, default=False
        Zero weight and bias instead (nothing is drawn).
    **kwargs
        Keyword arguments of the constructor.

    Returns
    -------
    layer : torch.nn.Module
        The new ``layer_class`` instance, initialised.

    Examples
    --------
    >>> import torch
    >>> from skood.nn.init import seeded_layer
    >>> state = torch.random.get_rng_state()
    >>> layer = seeded_layer(torch.nn.Linear, 4, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(layer.weight.abs().max() <= 0.5), torch.equal(state, torch.random.get_rng_state())
    (True, True)
    """
    layer = nn.utils.skip_init(layer_class, *args, **kwargs)
    if zero:
        return zero_init_(layer)
    return default_init_(layer, generator)
