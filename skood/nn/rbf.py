"""RBF variance network: a per-dimension standard deviation that grows away from its centres.

Used by InvGAN (Ren et al., WWW 2020) to make a generator stochastic, after the RBF precision
network of Arvanitidis et al. ("Latent Space Oddity", ICLR 2018). For a latent code ``z``::

    v_k(z)   = exp(-lambda_k * ||z - c_k||^2)                  k = 1..K
    beta_i(z) = sum_k W_ik^2 * v_k(z) + floor                  precision of output i
    sigma_i(z) = beta_i(z) ** -0.5

Only ``W`` is trained. Far from every centre ``v -> 0``, so ``sigma`` rises to
``floor ** -0.5``: large variance where the generator has seen no latent codes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RBFVariance", "rbf_bandwidths"]


def rbf_bandwidths(
    points: torch.Tensor,
    centres: torch.Tensor,
    labels: torch.Tensor,
    scale: float = 1.0,
) -> torch.Tensor:
    """Compute the bandwidths ``lambda_k = 0.5 * (scale * r_k) ** -2`` from a clustering.

    ``r_k`` is the mean Euclidean distance of cluster ``k``'s members to its centre. A cluster
    with no spread (empty, or a single point) takes the median ``r`` of the others, so no
    bandwidth is infinite.

    Parameters
    ----------
    points : torch.Tensor of shape (n_points, d)
        The clustered points.
    centres : torch.Tensor of shape (K, d)
        Cluster centres.
    labels : torch.Tensor of shape (n_points,)
        Index of each point's cluster.
    scale : float, default=1.0
        The kernel scale ``a``: larger values widen every kernel.

    Returns
    -------
    bandwidths : torch.Tensor of shape (K,)
        The positive, finite ``lambda_k``, in the dtype of ``points``.

    Raises
    ------
    ValueError
        If ``scale`` is not positive or every cluster has zero spread.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}.")
    labels = labels.long()
    n_centres = centres.shape[0]
    distances = (points - centres[labels]).norm(dim=1)
    totals = torch.zeros(n_centres, dtype=points.dtype).index_add_(0, labels, distances)
    counts = torch.bincount(labels, minlength=n_centres).to(points.dtype)
    spread = totals / counts.clamp_min(1)
    valid = spread > 0
    if not bool(valid.any()):
        raise ValueError(
            "Every cluster has zero spread: each holds copies of a single point (there are no "
            "more distinct points than clusters)."
        )
    spread = torch.where(valid, spread, spread[valid].median())
    return 0.5 / (scale * spread) ** 2


class RBFVariance(nn.Module):
    """Standard deviations ``sigma(z)`` in ``R^D_{>0}`` from a radial-basis network on ``R^d``.

    Parameters
    ----------
    centres : torch.Tensor of shape (K, d)
        Frozen kernel centres (InvGAN: K-means centres of prior samples).
    bandwidths : torch.Tensor of shape (K,)
        Frozen positive ``lambda_k`` (see :func:`rbf_bandwidths`).
    out_features : int
        ``D``, the number of standard deviations per code.
    floor : float, default=1e-6
        Added to every precision, so ``sigma <= floor ** -0.5`` stays finite far from the
        centres.
    generator : torch.Generator, optional
        Source of the ``W ~ N(0, 1)`` initialisation. ``W`` must not start at zero: the
        precisions are ``W ** 2``-weighted sums, and a random full-rank start is what keeps the
        Jacobian of ``sigma`` of full rank (InvGAN's Lemma 1, with ``K >= d + 1``).
    """

    def __init__(
        self,
        centres: torch.Tensor,
        bandwidths: torch.Tensor,
        out_features: int,
        *,
        floor: float = 1e-6,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        centres = torch.as_tensor(centres, dtype=torch.float32)
        bandwidths = torch.as_tensor(bandwidths, dtype=torch.float32)
        if centres.ndim != 2 or bandwidths.shape != (centres.shape[0],):
            raise ValueError(
                f"centres must be (K, d) and bandwidths (K,); got {tuple(centres.shape)} and "
                f"{tuple(bandwidths.shape)}."
            )
        if not bool(torch.all(bandwidths > 0)) or not bool(torch.all(torch.isfinite(bandwidths))):
            raise ValueError("bandwidths must be positive and finite.")
        if floor <= 0:
            raise ValueError(f"floor must be positive, got {floor!r}.")
        self.register_buffer("centres", centres)
        self.register_buffer("bandwidths", bandwidths)
        self.floor = float(floor)
        self.out_features = int(out_features)
        weight = torch.randn(self.out_features, centres.shape[0], generator=generator)
        self.weight = nn.Parameter(weight)

    @property
    def n_centres(self) -> int:
        return self.centres.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.centres.shape[1]

    def activations(self, z: torch.Tensor) -> torch.Tensor:
        """Compute the kernel values ``v_k(z) = exp(-lambda_k * ||z - c_k||^2)``.

        Parameters
        ----------
        z : torch.Tensor of shape (n, d)
            Latent codes, one per row.

        Returns
        -------
        activations : torch.Tensor of shape (n, K)
            The value of every kernel at every code, in ``(0, 1]``.
        """
        # ||z||^2 - 2 z.c + ||c||^2, clamped: rounding can make a tiny distance negative.
        squared = (
            z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.centres.T + self.centres.pow(2).sum(-1)
        ).clamp_min(0)
        return torch.exp(-self.bandwidths * squared)

    def precision(self, z: torch.Tensor) -> torch.Tensor:
        """Compute the precisions ``beta(z)``, including the floor.

        Parameters
        ----------
        z : torch.Tensor of shape (n, d)
            Latent codes, one per row.

        Returns
        -------
        precision : torch.Tensor of shape (n, D)
            ``beta_i(z) = sum_k W_ik^2 v_k(z) + floor``, at least ``floor``.
        """
        return self.activations(z) @ self.weight.pow(2).T + self.floor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Compute the standard deviations ``sigma(z) = beta(z) ** -0.5``.

        Parameters
        ----------
        z : torch.Tensor of shape (n, d)
            Latent codes, one per row.

        Returns
        -------
        sigma : torch.Tensor of shape (n, D)
            Positive standard deviations, at most ``floor ** -0.5``.
        """
        return self.precision(z).rsqrt()

    def log_sigma(self, z: torch.Tensor) -> torch.Tensor:
        """Compute ``log sigma(z)`` as ``-0.5 log beta(z)`` (no overflow for tiny precisions).

        Parameters
        ----------
        z : torch.Tensor of shape (n, d)
            Latent codes, one per row.

        Returns
        -------
        log_sigma : torch.Tensor of shape (n, D)
            Log standard deviations, at most ``-0.5 log floor``.
        """
        return -0.5 * self.precision(z).log()

    def jacobian(self, z: torch.Tensor) -> torch.Tensor:
        """Compute the closed-form Jacobian ``d sigma / d z`` of each code.

        ``d sigma_i / d z = beta_i ** -1.5 * sum_k W_ik^2 lambda_k v_k(z) (z - c_k)``.

        Parameters
        ----------
        z : torch.Tensor of shape (n, d)
            Latent codes, one per row.

        Returns
        -------
        jacobian : torch.Tensor of shape (n, D, d)
            Entry ``[b, i, j]`` is ``d sigma_i / d z_j`` at code ``z_b``.
        """
        v = self.activations(z)  # (n, K)
        weights = self.bandwidths * v  # (n, K)
        # sum_k weights_k (z - c_k) = (sum_k weights_k) z - weights @ c, per output row i.
        w2 = self.weight.pow(2)  # (D, K)
        mixed = weights @ w2.T  # (n, D)
        centred = torch.einsum("nk,ik,kj->nij", weights, w2, self.centres)  # (n, D, d)
        gradient = mixed[..., None] * z[:, None, :] - centred
        return self.precision(z).pow(-1.5)[..., None] * gradient

    def extra_repr(self) -> str:
        return (
            f"latent_dim={self.latent_dim}, n_centres={self.n_centres}, "
            f"out_features={self.out_features}, floor={self.floor:g} "
            f"(sigma <= {1 / math.sqrt(self.floor):g})"
        )
