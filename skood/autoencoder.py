"""AutoencoderDetector: reconstruction error of an autoencoder, the DLSGAN papers' baseline."""

from __future__ import annotations

import torch

from ._docstrings import fill_doc
from ._latent import LatentModelMixin
from ._training import LOSS_GROWTH_LIMIT, MultiModuleNet
from .base import BaseDetector

__all__ = ["AutoencoderDetector"]


class _AutoencoderNet(MultiModuleNet):
    """Encoder (``encoder_``, the DLSGAN discriminator/encoder network's body and latent head)
    and decoder (``module_``) trained jointly on the mean squared reconstruction error, through
    skorch's step closure; ``train_loss`` is that error."""

    loss_growth_limit = LOSS_GROWTH_LIMIT

    def optimizer_groups(self):
        # One optimizer over both networks: they minimise one loss together. The adversarial
        # head of the encoder network is unused and gets no gradient.
        return {"optimizer": (("module", "encoder"), {})}

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        with self.autocast():
            reconstruction = self.module_(self.encoder_.encode(batch))
        loss = (batch - reconstruction.float()).pow(2).mean()
        loss.backward()
        self.record_losses({"train_loss": loss})
        return {"loss": loss, "y_pred": reconstruction}


@fill_doc
class AutoencoderDetector(LatentModelMixin, BaseDetector):
    """Outlier detector scoring samples by the reconstruction error of an autoencoder.

    The encoder is the DLSGAN discriminator/encoder network's body and latent head, the decoder
    is the DLSGAN generator network, and both minimise ``mean((x - G(E(x)))**2)`` with the same
    optimizer settings and schedule as :class:`~skood.DLSGANDetector`: the autoencoder baseline
    of the follow-up DLSGAN paper. ``score_samples = -mean((x - G(E(x)))**2)`` per sample.

    Parameters
    ----------
    latent_dim : int, default=32
        Width of the bottleneck.
    hidden_dims : tuple of int, default=(128, 128)
        Hidden widths of the encoder and decoder MLPs (tables).
    input_shape : tuple (channels, height, width) or None, default=None
        Convolutional networks for flattened images, as in :class:`~skood.DLSGANDetector`.
    architecture : {"small", "reference"}, default="small"
        Convolutional architecture when ``input_shape`` is set.
    lr : float, default=1e-3
        Adam learning rate.
    betas : tuple of float, default=(0.0, 0.99)
        Adam coefficients.
    lr_decay : float, default=0.95
        Learning-rate factor applied after every epoch.
    max_epochs : int, default=30
        Passes over the training data.
    %(warm_start)s
    batch_size : int, default=32
        Rows per step.
    equalized_lr : bool, default=True
        Equalized-learning-rate layers.
    negative_slope : float, default=0.2
        LeakyReLU slope.
    standardize : bool or "auto", default="auto"
        Standardize tables inside the detector; images are taken as given (``"auto"``).
    %(contamination)s
    inference_batch_size : int, default=8192
        Rows scored at a time.
    %(device)s
    %(mixed_precision)s
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and batch order.
    %(verbose)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        ``net_.module_`` is the decoder, ``net_.encoder_`` the encoder.
    history_ : skorch.history.History
        The reconstruction loss per batch and per epoch.
    code_mean_, code_variance_ : ndarray of shape (latent_dim,)
        Mean and variance of the training rows' codes ``E(x)``: the diagonal Gaussian that
        :meth:`explain` uses as the latent prior the autoencoder does not have.
    typical_latent_radius_ : float
        Median Mahalanobis radius of the training codes under that Gaussian: the edge of the
        typical region that :meth:`explain` shrinks codes into.
    %(offset_)s
    %(input_scaling_)s
    %(n_features_in_)s
    %(feature_names_in_)s

    See Also
    --------
    DLSGANDetector : The GAN whose networks this autoencoder shares.

    Examples
    --------
    >>> import numpy as np
    >>> from skood import AutoencoderDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> detector = AutoencoderDetector(max_epochs=5, latent_dim=2, random_state=0).fit(X)
    >>> detector.predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, -9.0, 9.0, -9.0]]))
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        **LatentModelMixin._network_constraints,
    }

    _supports_warm_start = True

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        hidden_dims: tuple[int, ...] = (128, 128),
        input_shape: tuple[int, int, int] | None = None,
        architecture: str = "small",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        lr_decay: float = 0.95,
        max_epochs: int = 30,
        warm_start: bool = False,
        batch_size: int = 32,
        equalized_lr: bool = True,
        negative_slope: float = 0.2,
        standardize: bool | str = "auto",
        contamination: float = 0.1,
        inference_batch_size: int = 8192,
        device: str = "auto",
        mixed_precision: bool | str = "auto",
        random_state=None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.input_shape = input_shape
        self.architecture = architecture
        self.lr = lr
        self.betas = betas
        self.lr_decay = lr_decay
        self.max_epochs = max_epochs
        self.warm_start = warm_start
        self.batch_size = batch_size
        self.equalized_lr = equalized_lr
        self.negative_slope = negative_slope
        self.standardize = standardize
        self.contamination = contamination
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.verbose = verbose

    _net_class = _AutoencoderNet
    _encoder_key = "encoder"
    # No latent prior: explain() fits a diagonal Gaussian to the training codes instead.
    _has_latent_prior = False

    def _score_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        reconstruction = networks["module"](networks["encoder"].encode(X))
        return -(X - reconstruction).pow(2).mean(dim=1)
