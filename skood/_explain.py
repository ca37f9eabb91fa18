"""``explain``: the nearest in-distribution version of each row, and the per-feature deviation.

:class:`ExplainMixin` is shared by every detector with an encoder and a decoder (it is part of
:class:`~skood._latent.LatentSpaceMixin`): DLSGAN and its variants, the conditional DLSGAN,
InvGAN and the autoencoder. "Nearest in-distribution version" means, per detector:

* a detector with a latent prior (DLSGAN, ConditionalDLSGAN, InvGAN): the decoded code of the
  row, ``G(alpha * E(x))``, where the code is first shrunk toward the origin just enough
  (``alpha = min(1, r_typical / r(x))``) that its Mahalanobis radius ``r`` under the latent
  prior, and hence its negative log-likelihood there, is no larger than that of a typical
  training row (``r_typical``, the median radius of the training codes, fitted as
  ``typical_latent_radius_``). An inlier keeps its code (``alpha = 1``: the reconstruction);
  an outlier whose code lies far out is pulled to the edge of the typical region, along the
  ray to the origin, the mode of the prior;
* the autoencoder, whose latent has no prior: the same, with the prior replaced by a diagonal
  Gaussian fitted to its training codes (``code_mean_``, ``code_variance_``), and the code
  shrunk toward that mean.

The deviation ``X - nearest`` is in the units of ``X``: the features to blame for an outlier
are those with large deviations, relative to each feature's spread (divide by
``input_scale_`` to compare features of different units).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ExplainMixin"]


class ExplainMixin:
    """``explain(X)`` from a detector's ``_encode`` and ``_decode`` (see the module docstring).

    A detector with a latent prior implements ``_latent_prior_variance(networks)``: the
    per-coordinate variance of the centred prior of the codes that ``_encode`` returns. One
    without (``_has_latent_prior = False``) gets a diagonal Gaussian fitted to its training
    codes, ``code_mean_`` and ``code_variance_``.
    """

    # Whether the model has a prior of its codes; without one, the training codes give it.
    _has_latent_prior: bool = True

    def _latent_prior_variance(self, networks: dict) -> torch.Tensor:
        return torch.as_tensor(self.code_variance_)

    def _latent_prior_mean(self, codes: torch.Tensor) -> torch.Tensor | float:
        if self._has_latent_prior:
            return 0.0
        return torch.as_tensor(self.code_mean_, device=codes.device, dtype=codes.dtype)

    def _latent_radius(self, codes: torch.Tensor, networks: dict) -> torch.Tensor:
        """Mahalanobis radius of ``codes`` under the latent prior ``N(mean, diag(variance))``."""
        variance = self._latent_prior_variance(networks).to(device=codes.device, dtype=codes.dtype)
        centred = codes - self._latent_prior_mean(codes)
        return (centred.pow(2) / variance).sum(dim=1).sqrt()

    def _fit_code_distribution(self, X: torch.Tensor, networks: dict) -> None:
        """``code_mean_`` and ``code_variance_`` of the training codes (float64)."""
        total = squares = None
        with torch.inference_mode():
            for rows in X.detach().split(self.inference_batch_size):
                codes = self._encode(rows.to(self._inference_dtype), networks).double().cpu()
                batch_total, batch_squares = codes.sum(dim=0), codes.pow(2).sum(dim=0)
                total = batch_total if total is None else total + batch_total
                squares = batch_squares if squares is None else squares + batch_squares
        mean = total / X.shape[0]
        variance = (squares / X.shape[0] - mean.pow(2)).clamp_min(1e-12)
        self.code_mean_, self.code_variance_ = mean.numpy(), variance.numpy()

    def _fit_explanation(self, X: torch.Tensor) -> None:
        """``typical_latent_radius_``: the median prior radius of the training codes.

        ``X`` is what the networks trained on (standardized, on the training device).
        """
        networks = self._inference_networks()
        if not self._has_latent_prior:
            self._fit_code_distribution(X, networks)
        radii = []
        # Batches of the training tensor itself: no float64 copy of the whole training set.
        with torch.inference_mode():
            for rows in X.detach().split(self.inference_batch_size):
                codes = self._encode(rows.to(self._inference_dtype), networks)
                radii.append(self._latent_radius(codes, networks).double().cpu())
        self.typical_latent_radius_ = float(np.median(torch.cat(radii).numpy()))

    def _complete_training(self, X: torch.Tensor) -> None:
        super()._complete_training(X)
        self._fit_explanation(X)

    def _nearest_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        """Nearest in-distribution versions of a standardized batch, standardized."""
        codes = self._encode(X, networks)
        radius = self._latent_radius(codes, networks)
        typical = torch.as_tensor(self.typical_latent_radius_, dtype=codes.dtype)
        # Codes inside the typical region stay; those beyond it move to its edge, along the
        # line to the prior's mean.
        shrink = torch.where(radius > typical, typical / radius, torch.ones_like(radius))
        mean = self._latent_prior_mean(codes)
        return self._decode(mean + (codes - mean) * shrink[:, None], networks)

    def explain(self, X):
        """The nearest in-distribution version of each row, and the per-feature deviation.

        What "nearest" means depends on the detector: for detectors with a latent prior
        (DLSGAN and its variants, ConditionalDLSGAN, InvGAN) the row's code is shrunk toward
        the origin until its negative log-likelihood under the prior is at most that of a
        typical training row (the median, ``typical_latent_radius_``), then decoded; an
        inlier's code is kept, so its nearest version is its reconstruction. The autoencoder,
        whose latent has no prior, does the same under a diagonal Gaussian fitted to its
        training codes (``code_mean_``, ``code_variance_``). Large deviations name the
        features that make a row unusual.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to explain.

        Returns
        -------
        nearest : ndarray or DataFrame of shape (n_samples, n_features)
            The nearest in-distribution versions, in the units of ``X``.
        deviation : ndarray or DataFrame of shape (n_samples, n_features)
            ``X - nearest``. DataFrames with the columns (and index) of ``X`` when ``X`` is
            a DataFrame.
        """
        check_is_fitted(self)
        values = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        nearest = self._unstandardize(
            self._map_batches(values, self._nearest_batch, task="explaining")
        )
        deviation = values.astype(np.float64) - nearest
        if hasattr(X, "columns") and hasattr(X, "iloc"):
            import pandas as pd

            def frame(data: np.ndarray):
                return pd.DataFrame(data, columns=X.columns, index=X.index)

            return frame(nearest), frame(deviation)
        return nearest, deviation
