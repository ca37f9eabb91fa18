"""A discriminator that is also an encoder (one feature body, three linear heads), and the
fixed random latent classifier of the conditional DLSGAN."""

from __future__ import annotations

import torch
from torch import nn

from .mlp import make_linear

__all__ = ["DiscriminatorEncoder", "FixedLatentClassifier"]


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
    n_logits : int, default=1
        Width of the adversarial head. 1 (the unconditional discriminator) returns the logit
        with shape ``(n,)``; more (a conditional discriminator, one logit per label value)
        returns shape ``(n, n_logits)``.
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
        n_logits: int = 1,
        equalized_lr: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.n_logits = n_logits
        width = body.out_features
        kwargs = {"equalized_lr": equalized_lr, "generator": generator}
        self.adversarial_head = make_linear(width, n_logits, **kwargs)
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
        logit : torch.Tensor of shape (n,) or (n, n_logits)
            The adversarial logits: one per row, or one per label value when
            ``n_logits > 1``.
        latent : torch.Tensor of shape (n, latent_dim)
            The predicted latent codes.
        log_variance : torch.Tensor of shape (n, latent_dim) or None
            The predicted per-coordinate log-variances; None without the log-variance head.
        """
        features = self.body(x)
        logit = self.adversarial_head(features)
        if self.n_logits == 1:
            logit = logit.squeeze(-1)
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


class FixedLatentClassifier(nn.Module):
    """A fixed random linear classifier on the scaled latent ``u``: ``u @ weight + bias``.

    The conditional DLSGAN's pseudo labels. ``weight`` (``latent_dim x n_columns``) and
    ``bias`` are buffers: saved, moved and pickled with the module, never trained (the module
    has no parameters, so no optimizer can update it).

    Parameters
    ----------
    weight : torch.Tensor of shape (latent_dim, n_columns)
        One column per class (``kind="classes"``) or per binary attribute
        (``kind="attributes"``).
    bias : torch.Tensor of shape (n_columns,)
        Offsets of the outputs (zeros for none).
    kind : {"classes", "attributes"}
        ``"classes"``: the label is ``onehot(argmax(u @ weight + bias))`` (``n_columns``
        values). ``"attributes"``: one binary label per column, ``c = 1[output > 0]``, encoded
        as ``[c, 1 - c]`` (``2 * n_columns`` values).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, *, kind: str) -> None:
        super().__init__()
        if kind not in ("classes", "attributes"):
            raise ValueError(f"kind must be 'classes' or 'attributes', got {kind!r}.")
        self.kind = kind
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())

    @property
    def n_labels(self) -> int:
        """Width of the label encoding: the number of logits of the conditional critic."""
        n_columns = self.weight.shape[1]
        return n_columns if self.kind == "classes" else 2 * n_columns

    def forward(self, scaled_latent: torch.Tensor) -> torch.Tensor:
        """Compute the classifier outputs ``u @ weight + bias``.

        Parameters
        ----------
        scaled_latent : torch.Tensor of shape (n, latent_dim)
            Scaled latent codes ``u``.

        Returns
        -------
        torch.Tensor of shape (n, n_columns)
            One output per class or per binary attribute.
        """
        return scaled_latent @ self.weight.to(scaled_latent.dtype) + self.bias.to(
            scaled_latent.dtype
        )

    @torch.no_grad()
    def pseudo_labels(self, scaled_latent: torch.Tensor) -> torch.Tensor:
        """Compute the encoded labels of scaled latent codes, as floats.

        Parameters
        ----------
        scaled_latent : torch.Tensor of shape (n, latent_dim)
            Scaled latent codes ``u``.

        Returns
        -------
        torch.Tensor of shape (n, n_columns) or (n, 2 * n_columns)
            ``kind="classes"``: the one-hot ``argmax`` of the outputs. ``kind="attributes"``:
            ``[c, 1 - c]`` with ``c = 1[output > 0]`` per column.
        """
        outputs = self(scaled_latent)
        if self.kind == "classes":
            return nn.functional.one_hot(outputs.argmax(dim=1), outputs.shape[1]).to(outputs.dtype)
        positive = (outputs > 0).to(outputs.dtype)
        return torch.cat([positive, 1.0 - positive], dim=1)
