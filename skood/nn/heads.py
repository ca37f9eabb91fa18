"""A discriminator that is also an encoder: one feature body, three linear heads."""

from __future__ import annotations

import torch
from torch import nn

from .mlp import make_linear

__all__ = ["DiscriminatorEncoder"]


class DiscriminatorEncoder(nn.Module):
    """One network that is both a GAN discriminator and an encoder.

    A shared feature body feeds three linear heads: the adversarial logit, the predicted latent
    code and (optionally) a predicted per-coordinate log-variance.

    Parameters
    ----------
    body : torch.nn.Module
        Maps a batch of flat samples ``(n, n_features)`` to features ``(n, body.out_features)``.
    latent_dim : int
        Width of the latent and log-variance heads.
    log_variance_head : bool, default=False
        Whether to build the log-variance head (InfoGAN's encoder loss needs it).
    equalized_lr : bool, default=True
        Equalized-learning-rate heads.
    generator : torch.Generator, optional
        Source of randomness for the initialisation of the heads.
    """

    def __init__(
        self,
        body: nn.Module,
        latent_dim: int,
        *,
        log_variance_head: bool = False,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        width = body.out_features
        kwargs = {"equalized_lr": equalized_lr, "generator": generator}
        self.adversarial_head = make_linear(width, 1, **kwargs)
        self.latent_head = make_linear(width, latent_dim, **kwargs)
        self.log_variance_head = (
            make_linear(width, latent_dim, **kwargs) if log_variance_head else None
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Return the adversarial logit, the latent code and the log-variance of ``x``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            A batch of flat samples.

        Returns
        -------
        logit : torch.Tensor of shape (n,)
            The adversarial logits.
        latent : torch.Tensor of shape (n, latent_dim)
            The predicted latent codes.
        log_variance : torch.Tensor of shape (n, latent_dim) or None
            The predicted per-coordinate log-variances; None without the log-variance head.
        """
        features = self.body(x)
        logit = self.adversarial_head(features).squeeze(-1)
        latent = self.latent_head(features)
        log_variance = (
            self.log_variance_head(features) if self.log_variance_head is not None else None
        )
        return logit, latent, log_variance

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x`` with the latent head alone (skips the other heads when scoring).

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            A batch of flat samples.

        Returns
        -------
        latent : torch.Tensor of shape (n, latent_dim)
            The predicted latent codes.
        """
        return self.latent_head(self.body(x))
