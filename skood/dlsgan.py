"""DLSGANDetector: a GAN with a dynamic latent scale whose encoder scores out-of-distribution data.

Method reference: J. Cho and A. Krzyzak, "Dynamic Latent Scale for GAN Inversion", ICPRAM 2022;
J. Cho, "Unsupervised Out-of-distribution Detection with DLSGAN" and "Applications of Dynamic
Latent Scale GAN: OOD Detection and Continuous Attribute Editing".
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ._docstrings import fill_doc
from ._latent import LatentModelMixin
from ._training import MultiModuleNet, optimized_parameters
from .base import BaseDetector

__all__ = ["DLSGANDetector"]

# Floor on the traced variance in the NLP score: a collapsed coordinate would otherwise divide
# by (almost) zero and let its noise dominate the sum.
_VARIANCE_FLOOR = 1e-6
# variance_decay="auto": on tables DLSGAN's EMA spans about 100 steps, so that the latent scale
# moves within the few hundred steps a fit makes (chosen on validation rows,
# benchmarks/results/fit_speed_validation_dlsgan-decay.md); images and the baselines (whose
# scale the trace never moves) keep the paper's.
_TABLE_VARIANCE_DECAY = 0.99
_PAPER_VARIANCE_DECAY = 0.999
# Encoder predictions of N(0, 1) latents whose second moment exceeds this have diverged.
_VARIANCE_ALARM = 1e4


def encoder_loss_terms(
    variant: str,
    latent: torch.Tensor,
    predicted: torch.Tensor,
    log_variance: torch.Tensor | None,
    scale: torch.Tensor,
) -> torch.Tensor:
    """The encoder loss of each variant per row and coordinate (the papers' definitions); the
    loss of a step is their mean (per member in a stacked step).

    DLSGAN: squared error in the scaled latent space; MSEGAN: plain squared error; InfoGAN:
    Gaussian negative log-likelihood with a learned per-coordinate log-variance.
    """
    error = latent - predicted
    if variant == "dlsgan":
        return (error * scale).pow(2)
    if variant == "msegan":
        return error.pow(2)
    return log_variance + error.pow(2) / (log_variance.exp() + 1e-7)


def _nsgan_terms(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Per-row NSGAN terms: softplus(-a) for "real", softplus(a) for "fake" (BCE with logits)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def _member_means(terms: torch.Tensor) -> torch.Tensor:
    """Each stacked member's mean of its terms (the member axis leads)."""
    return terms.flatten(start_dim=1).mean(dim=1)


def _optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=optimized_parameters([optimizer]))
    optimizer.step()


def _as_float32(outputs: tuple) -> tuple:
    # The critic's heads under autocast come out in bfloat16; losses are taken in float32.
    return tuple(None if output is None else output.float() for output in outputs)


def _critic_on_samples(generator, critic, scaled_latent, autocast) -> tuple:
    """The critic's outputs on samples of ``scaled_latent``, through the generator's graph
    (the generator's update), in float32."""
    with autocast():
        return _as_float32(critic(generator(scaled_latent)))


def _critic_outputs(generator, critic, x_real, scaled_latent, *, r1_step, autocast, r1_output=None):
    """The critic's outputs on the real rows and on samples of ``scaled_latent`` (made without
    the generator's graph), and on R1 steps the input gradient R1 penalises (else None).

    ``r1_output`` maps the critic's logits on real rows to the per-row output R1 takes the
    gradient of (default: the logits). Shared by the single and the stacked step, so that both
    run the same operations in the same order.
    """
    if r1_step:
        x_real = x_real.detach().requires_grad_(True)
    gradient = None
    with autocast():
        with torch.no_grad():
            x_fake = generator(scaled_latent)
        if r1_step:
            logit_real, _, _ = critic(x_real)
            logit_fake, predicted_fake, log_variance_fake = _as_float32(critic(x_fake))
            output = logit_real if r1_output is None else r1_output(logit_real)
            (gradient,) = torch.autograd.grad(output.sum(), x_real, create_graph=True)
        else:
            # One pass over the real and the generated rows: half the kernel launches and
            # weight reads of two. The critic has no batch statistics, so each row's outputs
            # are those of its own pass. R1 steps keep two passes, so that the penalty's
            # double backward runs through the real rows only.
            rows = x_real.dim() - 2  # the row axis (after the member axis of a stacked step)
            n_real, n_fake = x_real.shape[rows], x_fake.shape[rows]
            both = critic(torch.cat([x_real, x_fake], dim=rows))
            logit_real = both[0].narrow(rows, 0, n_real)
            logit_fake, predicted_fake, log_variance_fake = _as_float32(
                tuple(
                    None if output is None else output.narrow(rows, n_real, n_fake)
                    for output in both
                )
            )
    return logit_real, logit_fake, predicted_fake, log_variance_fake, gradient


class _DLSGANNet(MultiModuleNet):
    """One training step of DLSGAN and its baselines (NSGAN loss, R1 penalty, traced variance).

    ``module_`` is the :class:`~skood.nn.ScaledLatentGenerator`, ``discriminator_`` the
    discriminator/encoder. ``train_loss`` in the history is the discriminator/encoder loss.
    """

    def __init__(
        self,
        module,
        *,
        variant: str = "dlsgan",
        lambda_enc: float = 1.0,
        lambda_r1: float = 0.1,
        r1_interval: int = 1,
        variance_decay: float = 0.999,
        **kwargs,
    ) -> None:
        self.variant = variant
        self.lambda_enc = lambda_enc
        self.lambda_r1 = lambda_r1
        self.r1_interval = r1_interval
        self.variance_decay = variance_decay
        super().__init__(
            module, loss_names=("generator_loss", "encoder_loss", "r1_penalty"), **kwargs
        )

    unprinted_keys = ("traced_variance",)

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        # Steps of the earlier epochs (warm starts and pickles included, since they carry the
        # history): the lazy R1 schedule counts steps over the whole training.
        self._steps_before_epoch = sum(
            epoch.get("train_batch_count", 0) for epoch in self.history[:-1]
        )

    def _is_r1_step(self) -> bool:
        """Whether this step takes the R1 penalty: every ``r1_interval``-th, the first included."""
        if self.r1_interval == 1:
            return True
        step = self._steps_before_epoch + len(self.history[-1, "batches"]) - 1
        return step % self.r1_interval == 0

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        # The trace after every epoch: its sorted spectrum shows which latent coordinates the
        # generator keeps (DLSGAN's unused ones shrink; the baselines' stay flat).
        self.history.record("traced_variance", self.module_.traced_variance.tolist())

    def _adversarial(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        # NSGAN: softplus(-a) for "real", softplus(a) for "fake", i.e. BCE with logits.
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    # Hooks of a conditional GAN (skood.conditional): labels of the real rows, pseudo labels of
    # generated ones, and the adversarial terms and R1 output that read them. Unconditional:
    # no labels, one logit.
    def _split_batch(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real rows of a batch and their labels (None: unconditional)."""
        return batch, None

    def _pseudo_labels(self, scaled_latent: torch.Tensor) -> torch.Tensor | None:
        """Labels of the samples generated from ``scaled_latent`` (None: unconditional)."""
        return None

    def _adversarial_loss(
        self, logits: torch.Tensor, labels: torch.Tensor | None, real: bool
    ) -> torch.Tensor:
        """Batch mean of the NSGAN term of ``logits`` taken as real or as fake."""
        return self._adversarial(logits, real)

    def _r1_output(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Per-row output of the critic on real rows whose input gradient R1 penalises."""
        return logits

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        generator, critic = self.module_, self.discriminator_
        x_real, labels_real = self._split_batch(batch)
        n_rows = x_real.shape[0]
        scale = generator.latent_scale()

        # Discriminator/encoder update on a real batch and a fake batch made without G's graph.
        latent = self.randn(n_rows, generator.latent_dim)
        labels_fake = self._pseudo_labels(latent * scale)
        # Lazy R1 (StyleGAN2): the penalty on every r1_interval-th step, weighted by the
        # interval so that its average weight stays lambda_r1.
        r1_step = self._is_r1_step()
        logit_real, logit_fake, predicted_fake, log_variance_fake, gradient = _critic_outputs(
            generator,
            critic,
            x_real,
            latent * scale,
            r1_step=r1_step,
            autocast=self.autocast,
            r1_output=lambda logits: self._r1_output(logits, labels_real),
        )
        logit_real = logit_real.float()
        enc_loss = encoder_loss_terms(
            self.variant, latent, predicted_fake, log_variance_fake, scale
        ).mean()
        critic_loss = (
            self._adversarial_loss(logit_real, labels_real, real=True)
            + self._adversarial_loss(logit_fake, labels_fake, real=False)
            + self.lambda_enc * enc_loss
        )
        if r1_step:
            r1_penalty = gradient.float().pow(2).sum(dim=1).mean()
            critic_loss = critic_loss + self.lambda_r1 * self.r1_interval * r1_penalty
        self.step_optimizers(critic_loss, ["optimizer_discriminator"], batch)

        # Generator update through the critic (which the generator's optimizer step leaves as
        # it is: step_optimizers back-propagates into the generator alone), fresh latents.
        latent_g = self.randn(n_rows, generator.latent_dim)
        labels_g = self._pseudo_labels(latent_g * scale)
        logit_g, predicted_g, log_variance_g = _critic_on_samples(
            generator, critic, latent_g * scale, self.autocast
        )
        enc_loss_g = encoder_loss_terms(
            self.variant, latent_g, predicted_g, log_variance_g, scale
        ).mean()
        generator_loss = (
            self._adversarial_loss(logit_g, labels_g, real=True) + self.lambda_enc * enc_loss_g
        )
        self.step_optimizers(generator_loss, ["optimizer"], batch)

        generator.trace(torch.cat([predicted_fake, predicted_g]).detach(), self.variance_decay)
        losses = {
            "train_loss": critic_loss,
            "generator_loss": generator_loss,
            "encoder_loss": enc_loss,
        }
        if r1_step:  # the epoch's r1_penalty is the mean over the steps that took it
            losses["r1_penalty"] = r1_penalty
        self.record_losses(losses)
        self.check_finite(
            "the traced latent variance", generator.traced_variance.sum(), positive=True
        )
        return {"loss": critic_loss}

    @classmethod
    def joint_train_step(
        cls,
        nets: list[_DLSGANNet],
        networks: dict[str, torch.nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batches: tuple[torch.Tensor, ...],
    ) -> list[dict]:
        """:meth:`train_step` of every member of a stacked training (:mod:`skood._joint`).

        ``networks`` are the members' networks stacked by :func:`skood.nn.stack_networks`
        and ``optimizers`` the optimizers of the stacked weights. Each member's latents are
        drawn from its own net's stream, in the order of its own step; its losses are the
        means over its own rows, and the stacked losses are summed before the backward pass,
        so each member's weights get exactly its own gradients. Returns each member's step
        output, after recording its losses in its own history.
        """
        lead = nets[0]
        generator, critic = networks["module"], networks["discriminator"]
        x_real = torch.stack(batches)
        n_rows, latent_dim = x_real.shape[1], generator.latent_dim
        scale = generator.latent_scale().unsqueeze(1)  # (members, 1, latent_dim)

        latent = torch.stack([net.randn(n_rows, latent_dim) for net in nets])
        r1_step = lead._is_r1_step()
        logit_real, logit_fake, predicted_fake, log_variance_fake, gradient = _critic_outputs(
            generator, critic, x_real, latent * scale, r1_step=r1_step, autocast=lead.autocast
        )
        enc_loss = _member_means(
            encoder_loss_terms(lead.variant, latent, predicted_fake, log_variance_fake, scale)
        )
        critic_loss = (
            _member_means(_nsgan_terms(logit_real.float(), real=True))
            + _member_means(_nsgan_terms(logit_fake, real=False))
            + lead.lambda_enc * enc_loss
        )
        if r1_step:
            r1_penalty = gradient.float().pow(2).sum(dim=-1).mean(dim=-1)
            critic_loss = critic_loss + lead.lambda_r1 * lead.r1_interval * r1_penalty
        _optimizer_step(optimizers["optimizer_discriminator"], critic_loss.sum())

        latent_g = torch.stack([net.randn(n_rows, latent_dim) for net in nets])
        logit_g, predicted_g, log_variance_g = _critic_on_samples(
            generator, critic, latent_g * scale, lead.autocast
        )
        enc_loss_g = _member_means(
            encoder_loss_terms(lead.variant, latent_g, predicted_g, log_variance_g, scale)
        )
        generator_loss = (
            _member_means(_nsgan_terms(logit_g, real=True)) + lead.lambda_enc * enc_loss_g
        )
        _optimizer_step(optimizers["optimizer"], generator_loss.sum())

        generator.trace(torch.cat([predicted_fake, predicted_g], dim=1), lead.variance_decay)
        steps = []
        for index, net in enumerate(nets):
            losses = {
                "train_loss": critic_loss[index],
                "generator_loss": generator_loss[index],
                "encoder_loss": enc_loss[index],
            }
            if r1_step:
                losses["r1_penalty"] = r1_penalty[index]
            net.record_losses(losses)
            net.check_finite(
                "the traced latent variance",
                generator.traced_variance[index].sum(),
                positive=True,
            )
            steps.append({"loss": critic_loss[index]})
        return steps


@fill_doc
class DLSGANDetector(LatentModelMixin, BaseDetector):
    """Out-of-distribution detector based on a GAN with a dynamic latent scale (DLSGAN).

    A generator ``G`` and a network ``DE`` that is both discriminator and encoder are trained
    with the non-saturating GAN loss, an R1 penalty and an encoder loss on generated samples.
    Each latent coordinate is multiplied by a scale derived from the variance the encoder can
    recover in it (the traced variance, an EMA), so coordinates the generator ignores shrink and
    the encoder becomes an approximate inverse of the generator. In-distribution data then
    encode to high-likelihood latent codes: the default score is minus the negative
    log-likelihood of ``E(x)`` under ``N(0, diag(v))`` ("NLP").

    Read more in the user guide, ``docs/dlsgan.md``.

    Parameters
    ----------
    latent_dim : int, default=32
        Number of latent coordinates ``d``. The papers use 256 for images; 32 suits tables.
    hidden_dims : tuple of int, default=(128, 128)
        Hidden widths of the generator and of the discriminator/encoder MLPs (tables).
    input_shape : tuple (channels, height, width) or None, default=None
        Set it for images: ``X`` stays 2-D, one flattened image per row (``C * H * W``
        columns, channel-major as ``images.reshape(n, -1)`` gives), and the networks become
        convolutional. None (default) treats ``X`` as a table and uses MLPs.
    architecture : {"small", "reference"}, default="small"
        Convolutional networks when ``input_shape`` is set: ``"small"`` is the CPU-tolerable
        default (sides divisible by 4, e.g. 28 x 28); ``"reference"`` is the papers' network
        (sides divisible by 8, e.g. MNIST zero-padded to 32 x 32; tens of millions of
        parameters, a GPU network). Ignored for tables.
    variant : {"dlsgan", "msegan", "infogan"}, default="dlsgan"
        ``"dlsgan"`` scales the latent dynamically and uses the scaled squared error as encoder
        loss. ``"msegan"`` (no scaling, plain squared error) and ``"infogan"`` (no scaling,
        Gaussian negative log-likelihood with a learned log-variance) are the baselines of the
        follow-up paper, trained identically otherwise.
    score_type : {"nlp", "reconstruction"}, default="nlp"
        ``"nlp"``: ``score_samples = sum_i log N(E(x)_i; 0, v_i)``, minus the negative
        log-likelihood of the encoded latent. ``"reconstruction"``:
        ``score_samples = -mean((x - G(E(x) * s))**2)`` in standardized units. (Not named
        ``score``: that name is the estimator method scikit-learn calls.)
        Changing it on a fitted detector changes ``score_samples`` at once;
        ``decision_function`` and ``predict`` raise until the detector is refitted, because
        ``offset_`` is a threshold on the fit-time score.
    lambda_enc : float, default=1.0
        Weight of the encoder loss in both the discriminator/encoder and the generator loss.
    lambda_r1 : float, default=0.1
        Weight of the R1 penalty (squared norm of the real logit's input gradient).
    r1_interval : int, default=4
        Lazy R1 (StyleGAN2's): the penalty on every ``r1_interval``-th step only, weighted by
        ``r1_interval`` so its average weight stays ``lambda_r1``. 1 is the paper's step;
        larger intervals skip the double backward on most steps (``docs/training.md`` gives
        the measured speed-up).
    variance_decay : float or "auto", default="auto"
        Decay of the EMA that traces the latent variance. The paper's 0.999 averages over
        about 1,000 steps, more than a fit on a table of a few hundred rows makes (30 epochs
        of 271 rows are 270 steps), so its latent scale barely leaves 1. ``"auto"``: 0.99 for
        DLSGAN on tables, chosen on validation rows (the scale then moves:
        ``docs/dlsgan.md``), and the paper's 0.999 for images and for the baselines (whose
        scale stays 1 whatever the trace: it feeds only their NLP score).
    lr : float, default=1e-3
        Adam learning rate of both networks.
    betas : tuple of float, default=(0.0, 0.99)
        Adam coefficients of both networks.
    lr_decay : float, default=0.95
        Factor applied to both learning rates after every epoch.
    max_epochs : int, default=30
        Passes over the training data.
    %(warm_start)s
    batch_size : int, default=32
        Rows per training step.
    equalized_lr : bool, default=True
        Equalized-learning-rate layers (weights ``N(0, 1)`` scaled by ``sqrt(2 / fan_in)`` at
        run time), as in the reference networks. False uses PyTorch's default initialisation.
    negative_slope : float, default=0.2
        LeakyReLU slope.
    standardize : bool or "auto", default="auto"
        Standardize features with the training mean and standard deviation inside the
        detector (constant features keep scale 1). ``"auto"`` standardizes tables and leaves
        images as they are: pass pixels scaled to [-1, 1], as the papers do
        (``x / 127.5 - 1``).
    %(contamination)s
    inference_batch_size : int, default=8192
        Rows converted and scored at a time; bounds memory when scoring large inputs.
    %(device)s
    %(mixed_precision)s
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, latent sampling and batch order. Same seed, same data and
        CPU give identical scores.
    %(verbose)s

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the generator, ``net_.discriminator_`` the
        discriminator/encoder.
    history_ : skorch.history.History
        Every recorded loss, per batch and per epoch, and the traced variance after each
        epoch (``history_[:, "traced_variance"]``).
    latent_variance_ : ndarray of shape (latent_dim,)
        Final traced variance ``v`` used by the NLP score.
    latent_scale_ : ndarray of shape (latent_dim,)
        Final latent scale ``s`` (all ones for the baselines).
    typical_latent_radius_ : float
        Median over the training rows of the Mahalanobis radius
        ``sqrt(sum_i E(x)_i**2 / v_i)`` of their codes under ``N(0, diag(v))``: the edge of
        the typical region that :meth:`explain` shrinks codes into.
    %(offset_)s
    %(input_scaling_)s
    %(n_features_in_)s
    %(feature_names_in_)s

    See Also
    --------
    sklearn.ensemble.IsolationForest : Tree-based outlier detector.
    sklearn.svm.OneClassSVM : Kernel outlier detector.

    References
    ----------
    .. [1] J. Cho and A. Krzyzak, "Dynamic Latent Scale for GAN Inversion", ICPRAM 2022.
    .. [2] J. Cho, "Unsupervised Out-of-distribution Detection with DLSGAN".

    Examples
    --------
    >>> import numpy as np
    >>> from skood import DLSGANDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> detector = DLSGANDetector(max_epochs=2, random_state=0).fit(X)
    >>> detector.predict(np.array([[0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0]]))
    array([ 1, -1])
    >>> detector.transform(X[:3]).shape
    (3, 32)
    >>> detector = detector.set_params(warm_start=True).fit(X)  # two more epochs
    >>> len(detector.history_)
    4
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        **LatentModelMixin._network_constraints,
        "variant": [StrOptions({"dlsgan", "msegan", "infogan"})],
        "score_type": [StrOptions({"nlp", "reconstruction"})],
        "lambda_enc": [Interval(Real, 0, None, closed="left")],
        "lambda_r1": [Interval(Real, 0, None, closed="left")],
        "r1_interval": [Interval(Integral, 1, None, closed="left")],
        "variance_decay": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
    }

    _scoring_parameters = ("score_type",)
    _supports_warm_start = True

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        hidden_dims: tuple[int, ...] = (128, 128),
        input_shape: tuple[int, int, int] | None = None,
        architecture: str = "small",
        variant: str = "dlsgan",
        score_type: str = "nlp",
        lambda_enc: float = 1.0,
        lambda_r1: float = 0.1,
        r1_interval: int = 4,
        variance_decay: float | str = "auto",
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
        self.variant = variant
        self.score_type = score_type
        self.lambda_enc = lambda_enc
        self.lambda_r1 = lambda_r1
        self.r1_interval = r1_interval
        self.variance_decay = variance_decay
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

    # ------------------------------------------------------------------ training
    def _dynamic_scale(self) -> bool:
        return self.variant == "dlsgan"

    def _log_variance_head(self) -> bool:
        return self.variant == "infogan"

    _net_class = _DLSGANNet

    def _net_params(self) -> dict:
        return {
            "variant": self.variant,
            "lambda_enc": self.lambda_enc,
            "lambda_r1": self.lambda_r1,
            "r1_interval": self.r1_interval,
            "variance_decay": self._variance_decay(),
        }

    def _variance_decay(self) -> float:
        """``variance_decay`` with ``"auto"`` resolved: 0.99 for DLSGAN on tables, else 0.999."""
        if self.variance_decay != "auto":
            return float(self.variance_decay)
        if self.input_shape is None and self._dynamic_scale():
            return _TABLE_VARIANCE_DECAY
        return _PAPER_VARIANCE_DECAY

    def _after_training(self, X: torch.Tensor) -> None:
        generator = self.net_.module_
        self.latent_variance_ = generator.traced_variance.double().cpu().numpy()
        self.latent_scale_ = generator.latent_scale().double().cpu().numpy()
        if self.latent_variance_.max() > _VARIANCE_ALARM:
            warnings.warn(
                f"The traced latent variance reached {self.latent_variance_.max():.3g} (latent "
                "codes are drawn with variance 1): the encoder diverged and its scores are "
                f"unreliable. Lower lr (now {self.lr:g}) or raise lambda_r1.",
                ConvergenceWarning,
                stacklevel=2,
            )

    def _latent_prior_variance(self, networks: dict) -> torch.Tensor:
        # The NLP score's prior of the (unscaled) codes: N(0, diag(v)).
        return networks["module"].traced_variance.clamp_min(_VARIANCE_FLOOR)

    # ------------------------------------------------------------------ scoring
    def _score_batch(self, X: torch.Tensor, networks: dict) -> torch.Tensor:
        generator, critic = networks["module"], networks["discriminator"]
        predicted = critic.encode(X)
        if self.score_type == "nlp":
            variance = generator.traced_variance.clamp_min(_VARIANCE_FLOOR)
            log_likelihood = -0.5 * (
                torch.log(2 * math.pi * variance) + predicted.pow(2) / variance
            )
            return log_likelihood.sum(dim=1)
        reconstruction = generator(predicted * generator.latent_scale())
        return -(X - reconstruction).pow(2).mean(dim=1)
