"""Shared parts of the detectors built on a generator and an encoder (DLSGAN, autoencoder).

The networks (MLPs for tables, convolutional networks behind ``input_shape`` for images), their
parameter constraints, and the latent-space methods ``transform``, ``inverse_transform`` and
``sample``.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .base import IntegerWidths
from .nn import MLP, DiscriminatorEncoder, ScaledLatentGenerator, conv_networks

__all__ = ["LatentModelMixin"]


class LatentModelMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Generator/encoder networks and the latent-space API of a fitted detector.

    The detector's skorch net keeps the generator (a :class:`~skood.nn.ScaledLatentGenerator`)
    as ``net_.module_`` and the encoder (a :class:`~skood.nn.DiscriminatorEncoder`) as
    ``net_.discriminator_``.
    """

    _network_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": [IntegerWidths()],
        "input_shape": [tuple, list, None],
        "architecture": [StrOptions({"small", "reference"})],
        "betas": [tuple, list],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "equalized_lr": ["boolean"],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "mixed_precision": ["boolean"],
        "warm_start": ["boolean"],
    }

    # Images are pixels scaled to [-1, 1], as in the DLSGAN papers.
    _pixel_range = (-1.0, 1.0)

    def _dynamic_scale(self) -> bool:
        return False

    def _log_variance_head(self) -> bool:
        return False

    def _adam_betas(self) -> tuple[float, float]:
        if len(self.betas) != 2:
            raise ValueError(f"betas must be a pair of floats, got {self.betas!r}.")
        return tuple(float(beta) for beta in self.betas)

    def _build_networks(self, n_features: int, seed: int):
        init = torch.Generator().manual_seed(seed)
        options = {
            "negative_slope": self.negative_slope,
            "equalized_lr": self.equalized_lr,
            "generator": init,
        }
        if self.input_shape is None:
            hidden = tuple(int(width) for width in self.hidden_dims)
            if not hidden or any(width < 1 for width in hidden):
                raise ValueError(
                    f"hidden_dims must hold positive widths, got {self.hidden_dims!r}."
                )
            network = MLP(self.latent_dim, hidden, n_features, **options)
            body = MLP(n_features, hidden, None, **options)
        else:
            shape = tuple(int(size) for size in self.input_shape)
            if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != n_features:
                raise ValueError(
                    f"input_shape={self.input_shape!r} must be (channels, height, width) with "
                    f"channels * height * width == n_features ({n_features})."
                )
            network, body = conv_networks(self.architecture, self.latent_dim, shape, **options)
        generator = ScaledLatentGenerator(
            network, self.latent_dim, dynamic_scale=self._dynamic_scale()
        )
        critic = DiscriminatorEncoder(
            body,
            self.latent_dim,
            log_variance_head=self._log_variance_head(),
            equalized_lr=self.equalized_lr,
            generator=init,
        )
        return generator, critic

    @property
    def _fitted_latent_dim(self) -> int:
        # The width the networks were built with: latent_dim may have been set since the fit.
        return self.net_.module_.latent_dim

    @property
    def _n_features_out(self) -> int:
        # Output width of transform, used by get_feature_names_out.
        return self._fitted_latent_dim

    @staticmethod
    def _encode(X: torch.Tensor, networks: dict) -> torch.Tensor:
        return networks["discriminator"].encode(X)

    @staticmethod
    def _decode(latents: torch.Tensor, networks: dict) -> torch.Tensor:
        generator = networks["module"]
        return generator(latents * generator.latent_scale())

    # ------------------------------------------------------------------ latent space
    def transform(self, X):
        """Encode samples to their predicted (unscaled) latent codes ``E(x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to encode.

        Returns
        -------
        latents : ndarray of shape (n_samples, latent_dim)
            The latent head of the discriminator/encoder.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._map_batches(X, self._encode)

    def inverse_transform(self, X):
        """Decode latent codes to samples: ``G(z * s)`` in the original feature units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Unscaled latent codes, as returned by :meth:`transform`.

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features_in_)
            Generated samples.
        """
        check_is_fitted(self)
        latents = check_array(X, dtype=[np.float64, np.float32])
        if latents.shape[1] != self._fitted_latent_dim:
            raise ValueError(
                f"X has {latents.shape[1]} latent coordinates, but {type(self).__name__} "
                f"was fitted with latent_dim={self._fitted_latent_dim}."
            )
        return self._unstandardize(self._map_batches(latents, self._decode, standardize=False))

    def sample(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Draw samples from the generator.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent draws.

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features_in_)
            Generated samples in the original feature units.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        latents = check_random_state(random_state).standard_normal(
            (n_samples, self._fitted_latent_dim)
        )
        return self.inverse_transform(latents)
