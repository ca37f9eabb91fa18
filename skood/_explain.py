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
* the autoencoder (no latent prior): its reconstruction ``G(E(x))``.

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
    per-coordinate variance of the prior of the codes that ``_encode`` returns. One without
    (``_has_latent_prior = False``) explains by its reconstruction.
    """

    # Whether codes are shrunk into the typical region of a latent prior before decoding.
    _has_latent_prior: bool = True

    def _latent_prior_variance(self, networks: dict) -> torch.Tensor:
        raise NotImplementedError

    def _latent_radius(self, codes: torch.Tensor, networks: dict) -> torch.Tensor:
        """Mahalanobis radius of ``codes`` under the latent prior ``N(0, diag(variance))``."""
        variance = self._latent_prior_variance(networks).to(device=codes.device, dtype=codes.dtype)
        return (codes.pow(2) / variance).sum(dim=1).sqrt()

    def _fit_explanation(self, X: torch.Tensor) -> None:
        """``typical_latent_radius_``: the median prior radius of the training codes.

        ``X`` is what the networks trained on (standardized, on the training device).
        """
        if not self._has_latent_prior:
            return
        networks = self._inference_networks()
        radii = []
        # Batches of the training tensor itself: no float64 copy of the whole training set.
        with torch.inference_mode():
            for rows in X.detach().split(self.inference_batch_size):
                codes = self._encode(rows.to(self._inference_dtype), networks)
                radii.append(self._latent_radius(codes, networks).double().cpu())
        self.typical_latent_radius_ = float(np.median(torch.cat(radii).numpy()))

    def _train_networks(self, X: torch.Tensor, y: torch.Tensor | None) -> None:
        super()._train_networks(X, y)
        self._fit_explanation(X)

    def _nearest_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        """Nearest in-distribution versions of a standardized batch, standardized."""
        codes = self._encode(X, networks)
        if self._has_latent_prior:
            radius = self._latent_radius(codes, networks)
            typical = torch.as_tensor(self.typical_latent_radius_, dtype=codes.dtype)
            # Codes inside the typical region stay; those beyond it move to its edge.
            shrink = torch.where(radius > typical, typical / radius, torch.ones_like(radius))
            codes = codes * shrink[:, None]
        return self._decode(codes, networks)

    def explain(self, X):
        """The nearest in-distribution version of each row, and the per-feature deviation.

        What "nearest" means depends on the detector: for detectors with a latent prior
        (DLSGAN and its variants, ConditionalDLSGAN, InvGAN) the row's code is shrunk toward
        the origin until its negative log-likelihood under the prior is at most that of a
        typical training row (the median, ``typical_latent_radius_``), then decoded; an
        inlier's code is kept, so its nearest version is its reconstruction. For the
        autoencoder, the reconstruction. Large deviations name the features that make a row
        unusual.

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
