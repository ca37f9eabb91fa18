"""Log-densities of Gaussians, per row, shared by the flows and InvGAN."""

from __future__ import annotations

import math

import torch

__all__ = ["diagonal_normal_log_prob", "standard_normal_log_prob"]

_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` per row of ``z`` (any shape ``(n, ...)``), shape ``(n,)``."""
    flat = z.flatten(1)
    return -0.5 * (flat.pow(2).sum(dim=1) + flat.shape[1] * _LOG_2PI)


def diagonal_normal_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor
) -> torch.Tensor:
    """``log N(x; mean, diag(exp(2 * log_sigma)))`` per row of 2-D ``x``, shape ``(n,)``."""
    squared = (x - mean).pow(2) * torch.exp(-2 * log_sigma)
    return (-0.5 * squared - log_sigma - 0.5 * _LOG_2PI).sum(1)
