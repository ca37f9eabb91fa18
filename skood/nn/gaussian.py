"""Log-densities of Gaussians, per row, shared by the flows and InvGAN."""

from __future__ import annotations

import math

import torch

__all__ = ["diagonal_normal_log_prob", "standard_normal_log_prob"]

_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor, *, batch_dims: int = 1) -> torch.Tensor:
    """Compute the standard normal log-density ``log N(z; 0, I)`` of each row of ``z``.

    Parameters
    ----------
    z : torch.Tensor of shape (n, ...)
        A batch of points; every dimension after the first ``batch_dims`` is flattened into
        one vector of ``D`` values per row.
    batch_dims : int, default=1
        How many leading dimensions index rows (2 for stacked networks' ``(k, n, D)``).

    Returns
    -------
    log_prob : torch.Tensor of shape z.shape[:batch_dims]
        ``-0.5 * (||z_b||^2 + D log(2 pi))`` for each row ``b``.
    """
    flat = z.flatten(batch_dims)
    return -0.5 * (flat.pow(2).sum(dim=-1) + flat.shape[-1] * _LOG_2PI)


def diagonal_normal_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor
) -> torch.Tensor:
    """Compute the diagonal Gaussian log-density ``log N(x; mean, diag(exp(2 * log_sigma)))``.

    Parameters
    ----------
    x : torch.Tensor of shape (n, D)
        The points, one per row.
    mean : torch.Tensor of shape (n, D) or (D,)
        Mean of the Gaussian, per row or shared (anything that broadcasts to ``x``).
    log_sigma : torch.Tensor of shape (n, D) or (D,)
        Log standard deviation of each dimension, broadcastable to ``x`` like ``mean``.

    Returns
    -------
    log_prob : torch.Tensor of shape (n,)
        The log-density of each row of ``x``, summed over its ``D`` independent dimensions.
    """
    squared = (x - mean).pow(2) * torch.exp(-2 * log_sigma)
    return (-0.5 * squared - log_sigma - 0.5 * _LOG_2PI).sum(1)
