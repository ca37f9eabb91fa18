"""A generator that carries DLSGAN's traced latent variance and the scale derived from it."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ScaledLatentGenerator"]


class ScaledLatentGenerator(nn.Module):
    """Wrap a generator network with the traced variance ``v`` of its latent coordinates.

    ``v`` is a buffer (saved, moved and pickled with the module, never trained). The latent scale
    is ``s_i = sqrt(d * v_i / sum_j v_j)``, so that ``sum_i s_i**2 = d`` and a uniform ``v``
    gives ``s = 1``. The network itself receives the scaled latent ``u = z * s``.

    Parameters
    ----------
    network : torch.nn.Module
        Maps a scaled latent of shape ``(n, latent_dim)`` to a sample.
    latent_dim : int
        Number of latent coordinates.
    dynamic_scale : bool, default=True
        Derive the scale from ``v`` (DLSGAN). When False the scale stays 1 and ``v`` is only
        traced (the InfoGAN and MSEGAN baselines, whose NLP score still uses it).
    """

    def __init__(self, network: nn.Module, latent_dim: int, *, dynamic_scale: bool = True) -> None:
        super().__init__()
        self.network = network
        self.latent_dim = latent_dim
        self.dynamic_scale = dynamic_scale
        self.register_buffer("traced_variance", torch.ones(latent_dim))

    def latent_scale(self) -> torch.Tensor:
        """Compute the scale ``s`` from the current traced variance (no gradient).

        Returns
        -------
        scale : torch.Tensor of shape (latent_dim,)
            ``sqrt(d * v / sum(v))``, or ones when ``dynamic_scale`` is False.
        """
        v = self.traced_variance
        if not self.dynamic_scale:
            return torch.ones_like(v)
        # Sums over the last axis: the stacked generators of skood.nn.stacked keep one traced
        # variance per member, shape (members, latent_dim).
        return torch.sqrt(self.latent_dim * v / v.sum(dim=-1, keepdim=True))

    @torch.no_grad()
    def trace(self, latent_predictions: torch.Tensor, decay: float) -> None:
        """Update ``v`` in place: an EMA of the uncentred second moment of encoder predictions.

        ``v <- decay * v + (1 - decay) * mean(latent_predictions ** 2, axis=0)``.

        Parameters
        ----------
        latent_predictions : torch.Tensor of shape (n, latent_dim)
            Latent codes predicted by the encoder (no gradient flows back to them); shape
            ``(members, n, latent_dim)`` for a generator made by
            :func:`~skood.nn.stack_networks`.
        decay : float
            Weight of the previous ``v``.
        """
        # Over the rows (the second-to-last axis: stacked members lead with their own axis).
        second_moment = latent_predictions.detach().pow(2).mean(dim=-2)
        self.traced_variance.mul_(decay).add_(second_moment, alpha=1.0 - decay)

    def forward(self, scaled_latent: torch.Tensor) -> torch.Tensor:
        return self.network(scaled_latent)
