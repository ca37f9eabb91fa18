"""Shared parts of the detectors built on a generator and an encoder.

:class:`LatentSpaceMixin` is the latent-space API (``transform``, ``inverse_transform``,
``sample``, and ``explain`` from ``skood/_explain.py``) of every detector with an encoder and a
decoder (DLSGAN, the autoencoder, InvGAN);
:class:`LatentModelMixin` adds the networks of DLSGAN and the autoencoder (MLPs for tables,
convolutional networks behind ``input_shape`` for images) and their parameter constraints.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._explain import ExplainMixin
from ._validation import Betas, ImageShape, IntegerWidths, check_n_samples
from .nn import MLP, DiscriminatorEncoder, ScaledLatentGenerator, conv_networks

__all__ = ["LatentModelMixin", "LatentSpaceMixin"]


class LatentSpaceMixin(ExplainMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """The latent-space API of a fitted detector with an encoder and a decoder.

    ``transform`` encodes, ``inverse_transform`` decodes (to the original feature units),
    ``sample`` decodes draws of the prior ``N(0, I)`` and ``explain`` gives the nearest
    in-distribution version of rows (:class:`~skood._explain.ExplainMixin`). A detector
    implements ``_encode`` and ``_decode`` on batches of its scoring networks, and
    ``_fitted_latent_dim``; a stochastic decoder also ``_noise_scale`` (the per-feature
    standard deviation added by ``_sample(..., noise=True)``).
    """

    @property
    def _fitted_latent_dim(self) -> int:
        # The width the networks were built with: latent_dim may have been set since the fit.
        return self.net_.module_.latent_dim

    @property
    def _n_features_out(self) -> int:
        # Output width of transform, used by get_feature_names_out.
        return self._fitted_latent_dim

    def _encode(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, latents: torch.Tensor, networks: dict) -> torch.Tensor:
        raise NotImplementedError

    def _noise_scale(self, latents: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has a deterministic decoder.")

    # ------------------------------------------------------------------ latent space
    def transform(self, X):
        """Encode samples to their latent codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to encode.

        Returns
        -------
        latents : ndarray of shape (n_samples, latent_dim)
            The encoder's codes (unscaled: DLSGAN's scale applies when decoding).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._map_batches(X, self._encode, task="encoding")

    def _check_latents(self, X) -> np.ndarray:
        latents = check_array(X, dtype=[np.float64, np.float32])
        if latents.shape[1] != self._fitted_latent_dim:
            raise ValueError(
                f"X has {latents.shape[1]} latent coordinates, but {type(self).__name__} "
                f"was fitted with latent_dim={self._fitted_latent_dim}."
            )
        return latents

    def inverse_transform(self, X):
        """Decode latent codes to samples in the original feature units.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Latent codes, as returned by :meth:`transform`.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Decoded samples (the decoder's means for a stochastic one).
        """
        check_is_fitted(self)
        latents = self._check_latents(X)
        return self._unstandardize(
            self._map_batches(latents, self._decode, standardize=False, task="decoding")
        )

    def sample(self, n_samples: int = 1, *, random_state=None) -> np.ndarray:
        """Decode draws of the prior ``N(0, I)`` on the latent space.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the latent draws.

        Returns
        -------
        samples : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples in the original feature units.
        """
        return self._sample(n_samples, random_state)

    def _sample(self, n_samples: int, random_state, *, noise: bool = False) -> np.ndarray:
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = check_random_state(random_state)
        latents = rng.standard_normal((n_samples, self._fitted_latent_dim))
        samples = self._map_batches(latents, self._decode, standardize=False, task="sampling")
        if noise:
            samples = samples + self._noise_scale(latents) * rng.standard_normal(samples.shape)
        return self._unstandardize(samples)


class LatentModelMixin(LatentSpaceMixin):
    """Generator/encoder networks and the latent-space API of a fitted detector.

    The detector's skorch net keeps the generator (a :class:`~skood.nn.ScaledLatentGenerator`)
    as ``net_.module_`` and the encoder (a :class:`~skood.nn.DiscriminatorEncoder`) under
    ``_encoder_key`` (``net_.discriminator_`` for DLSGAN, ``net_.encoder_`` for the
    autoencoder).
    """

    _network_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": [IntegerWidths()],
        "input_shape": [ImageShape(), None],
        "architecture": [StrOptions({"small", "reference"})],
        "betas": [Betas()],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "equalized_lr": ["boolean"],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "mixed_precision": ["boolean", StrOptions({"auto"})],
        "warm_start": ["boolean"],
    }

    # Images are pixels scaled to [-1, 1], as in the DLSGAN papers.
    _pixel_range = (-1.0, 1.0)
    # The convolutional networks of skood.nn.conv train faster channels-last on the CPU.
    _channels_last_on_cpu = True

    def _dynamic_scale(self) -> bool:
        return False

    def _log_variance_head(self) -> bool:
        return False

    # The name of the encoder network among the net's networks.
    _encoder_key = "discriminator"

    def _adversarial_logits(self) -> int:
        # Width of the critic's adversarial head: one logit, or one per label value for a
        # conditional critic.
        return 1

    def _build_networks(self, n_features: int, seed: int) -> dict[str, torch.nn.Module]:
        init = torch.Generator().manual_seed(seed)
        options = {
            "negative_slope": self.negative_slope,
            "equalized_lr": self.equalized_lr,
            "generator": init,
        }
        shape = self._image_shape(n_features)
        if shape is None:
            hidden = tuple(self.hidden_dims)
            network = MLP(self.latent_dim, hidden, n_features, **options)
            body = MLP(n_features, hidden, None, **options)
        else:
            network, body = conv_networks(self.architecture, self.latent_dim, shape, **options)
        generator = ScaledLatentGenerator(
            network, self.latent_dim, dynamic_scale=self._dynamic_scale()
        )
        critic = DiscriminatorEncoder(
            body,
            self.latent_dim,
            log_variance_head=self._log_variance_head(),
            n_logits=self._adversarial_logits(),
            equalized_lr=self.equalized_lr,
            generator=init,
        )
        return {"module": generator, self._encoder_key: critic}

    def _encode(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        return networks[self._encoder_key].encode(X)

    def _decode(self, latents: torch.Tensor, networks: dict) -> torch.Tensor:
        generator = networks["module"]
        return generator(latents * generator.latent_scale())
